//! SIGHUP in `serve`: the configuration file is read again. What a running server can
//! take is applied at once (the sources and all their settings, the store's
//! `retention_days` and `max_discontinue_fraction`): the sync worker is restarted with the
//! new sources, each syncing at once. What it cannot (the DICOM and admin listeners, the
//! database file, the site's zone) is named in the log as waiting for a restart. A file
//! that cannot be used is logged with every problem, and the running configuration stays.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::load::{Loaded, load};
use crate::serve::Overrides;
use crate::shutdown::stopped;
use crate::sources;
use crate::sync_control::WorkerControl;
use crate::sync_worker::{self, FirstCycle, ScheduledSource, SyncContext, WorkerOptions};

/// Reads the configuration again on each SIGHUP.
pub struct Reloader {
    path: PathBuf,
    overrides: Overrides,
    hangups: mpsc::Receiver<()>,
}

impl Reloader {
    /// Reads `path` (with the command line's `overrides`) on each message of `hangups`.
    pub fn new(path: PathBuf, overrides: Overrides, hangups: mpsc::Receiver<()>) -> Reloader {
        Reloader {
            path,
            overrides,
            hangups,
        }
    }

    /// Waits for the next SIGHUP and returns the configuration read then. One that
    /// cannot be used is logged, and the next SIGHUP awaited; with no more signals to
    /// come, never returns.
    async fn next(&mut self) -> Loaded {
        loop {
            if self.hangups.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
            tracing::info!(
                file = %self.path.display(),
                "SIGHUP: reading the configuration again"
            );
            let loaded = load(&self.path, &sources::process_env)
                .and_then(|mut loaded| self.overrides.apply(&mut loaded).map(|()| loaded));
            match loaded {
                Ok(loaded) => return loaded,
                Err(e) => tracing::error!(
                    error = %format!("{:#}", e.error()),
                    "configuration not reloaded; the running configuration stays"
                ),
            }
        }
    }
}

/// What differs between the running configuration and `new` that only a restart applies.
fn needs_restart(running: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if running.server != new.server {
        keys.push("[server]");
    }
    if running.admin != new.admin {
        keys.push("[admin]");
    }
    if running.site != new.site {
        keys.push("[site]");
    }
    if running.store.path != new.store.path {
        keys.push("store.path");
    }
    keys
}

/// Takes what a reload applies from `new` into `running`, which then describes what runs.
fn take_applied(running: &mut Config, new: &Config) {
    running.sources = new.sources.clone();
    running.store.retention_days = new.store.retention_days;
    running.store.max_discontinue_fraction = new.store.max_discontinue_fraction;
}

/// The sync worker's run under `serve`: [`sync_worker::run_forever`] until `stop`, and,
/// with a `reload`, restarted with the sources of each configuration read again (the
/// admin interface's "Sync now" follows through `control`).
pub async fn run_worker(
    sources: Vec<ScheduledSource>,
    ctx: SyncContext,
    stop: watch::Receiver<bool>,
    options: WorkerOptions,
    control: Arc<WorkerControl>,
    reload: Option<(Reloader, Config)>,
) {
    let Some((mut reloader, mut running)) = reload else {
        sync_worker::run_forever(sources, ctx, stop, options).await;
        return;
    };
    let (mut sources, mut ctx, mut options) = (sources, ctx, options);
    loop {
        let (generation, generation_stop) = watch::channel(false);
        let worker = tokio::spawn(sync_worker::run_forever(
            sources,
            ctx.clone(),
            generation_stop,
            options,
        ));
        let next = tokio::select! {
            _ = stopped(stop.clone()) => None,
            loaded = reloader.next() => Some(loaded),
        };
        let _ = generation.send(true);
        if let Err(e) = worker.await {
            tracing::error!(error = %e, "the sync worker failed");
        }
        let Some(loaded) = next else { return };
        loaded.log_warnings();
        let restart = needs_restart(&running, &loaded.config);
        take_applied(&mut running, &loaded.config);
        ctx.retention_days = running.store.retention_days;
        ctx.guard = running.store.mass_change_guard();
        let names: Vec<&str> = loaded.sources.iter().map(|s| s.source.name()).collect();
        tracing::info!(
            sources = ?names,
            retention_days = ctx.retention_days,
            max_discontinue_fraction = running.store.max_discontinue_fraction,
            "configuration reloaded: sources and store limits applied; each source syncs now"
        );
        if !restart.is_empty() {
            tracing::warn!(
                changed = ?restart,
                "configuration changes that apply only after a restart \
                 (systemctl restart mwlbridge): the running server keeps its listeners, \
                 database and time zone"
            );
        }
        options = WorkerOptions {
            first_cycle: FirstCycle::AtStart,
            sync_now: control.replace(&loaded.sources),
        };
        sources = loaded.sources;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = "[[sources]]\ntype = \"calpendo\"\nbase_url = \"http://127.0.0.1:9\"\n";
        Config::from_toml(text, std::path::Path::new("t.toml")).expect("config")
    }

    #[test]
    fn listeners_database_and_zone_wait_for_a_restart() {
        let running = config();
        let mut new = running.clone();
        assert!(needs_restart(&running, &new).is_empty());
        new.server.port += 1;
        new.admin.port += 1;
        new.site.timezone = "America/Regina".into();
        new.store.path = "/elsewhere.db".into();
        new.store.retention_days += 1;
        assert_eq!(
            needs_restart(&running, &new),
            vec!["[server]", "[admin]", "[site]", "store.path"]
        );
    }

    #[test]
    fn a_reload_takes_sources_and_store_limits_only() {
        let mut running = config();
        let mut new = running.clone();
        new.sources.clear();
        new.store.retention_days = 7;
        new.store.max_discontinue_fraction = 0.9;
        new.server.port = 1;
        take_applied(&mut running, &new);
        assert!(running.sources.is_empty());
        assert_eq!(running.store.retention_days, 7);
        assert_eq!(running.store.max_discontinue_fraction, 0.9);
        assert_ne!(running.server.port, 1, "not applied");
        assert!(
            !needs_restart(&running, &new).is_empty(),
            "still said next time"
        );
    }
}
