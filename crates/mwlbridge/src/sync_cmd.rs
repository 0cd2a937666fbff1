//! `mwlbridge sync`: the sync worker without the DICOM server, once (`--once`: one cycle
//! per source and a summary line each) or until stopped.

use std::path::Path;

use anyhow::anyhow;
use worklist_store::{MassChangeGuard, SyncOutcome};

use crate::failure::Failure;
use crate::load::{load, open_store, site_zone};
use crate::shutdown::{OnHangup, stop_on_signal};
use crate::sources;
use crate::sync_worker::{self, FirstCycle, SyncContext, SyncRequests, WorkerOptions};

/// Syncs every enabled source of the config at `path`; `accept_mass_change` turns the
/// mass-change guard off for this one run (`--once` only).
pub async fn run(path: &Path, once: bool, accept_mass_change: bool) -> Result<(), Failure> {
    let loaded = load(path, &sources::process_env)?;
    loaded.log_warnings();
    let store = open_store(&loaded.config)?;
    crate::import_pylantir::log_pending(&loaded.config, &store);
    let ctx = SyncContext {
        store,
        site_zone: site_zone(&loaded.config, &loaded.zones)?,
        retention_days: loaded.config.store.retention_days,
        metrics: crate::metrics::SyncMetrics::default(),
        guard: if accept_mass_change {
            MassChangeGuard::Off
        } else {
            loaded.config.store.mass_change_guard()
        },
        said: Default::default(),
    };
    tracing::info!(
        tzdata = %loaded.zones.describe(),
        database = %loaded.config.store.path.display(),
        sources = loaded.sources.len(),
        "mwlbridge sync starting"
    );
    if loaded.sources.is_empty() {
        println!(
            "no enabled data sources in {}",
            loaded.config.file.display()
        );
        return Ok(());
    }
    if !once {
        let stop = stop_on_signal(
            "shutting down: finishing the current sync cycle",
            OnHangup::Ignore,
        );
        let options = WorkerOptions {
            first_cycle: FirstCycle::AtStart,
            sync_now: SyncRequests::new(),
        };
        sync_worker::run_forever(loaded.sources, ctx, stop, options).await;
        return Ok(());
    }
    let mut failed = Vec::new();
    for s in &loaded.sources {
        let run = sync_worker::run_cycle(s.source.as_ref(), &ctx).await;
        match run.outcome {
            SyncOutcome::Success => println!("{}: ok: {}", run.source, run.counts),
            SyncOutcome::Failed => {
                let reason = run.error.unwrap_or_default();
                println!("{}: FAILED: {reason}", run.source);
                failed.push(run.source);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow!(
            "sync failed for {} (the worklist keeps its previous state)",
            failed.join(", ")
        )))
    }
}
