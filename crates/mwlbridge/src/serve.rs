//! `mwlbridge serve`: the DICOM server, the sync worker and the admin interface in one
//! process, until Ctrl-C or SIGTERM ([`run`] is also what `mwlbridge demo` runs).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use jiff::Timestamp;
use mwl_scp::mpps::MppsPolicy;
use mwl_scp::{AePolicy, MwlServer, ScpConfig};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use worklist_store::ServeLock;
use worklist_store::validate::ae_problem;

use crate::config::Config;
use crate::failure::Failure;
use crate::load::{Loaded, load, open_store, response_charset, site_zone};
use crate::reload::{self, Reloader};
use crate::shutdown::{OnHangup, hangups, stop_on_signal, stopped};
use crate::sources;
use crate::sync_control::WorkerControl;
use crate::sync_worker::{self, FirstCycle, SyncContext, WorkerOptions};

/// Command-line values that override the config file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--port`.
    pub port: Option<u16>,
    /// `--bind`.
    pub bind: Option<IpAddr>,
    /// `--ae-title`.
    pub ae_title: Option<String>,
}

fn scp_config(config: &Config) -> Result<ScpConfig, Failure> {
    let s = &config.server;
    let charset = response_charset(config)?;
    let tls = match &s.tls {
        None => None,
        Some(f) => Some(
            mwl_scp::tls::server_config(&f.certificate, &f.private_key, f.client_ca.as_deref())
                .map_err(|e| Failure::Usage(anyhow!("server.tls: {e}")))?,
        ),
    };
    Ok(ScpConfig {
        ae_title: s.ae_title.clone(),
        policy: AePolicy {
            accept_any_called_ae: s.accept_any_called_ae,
            allowed_calling_aets: s.allowed_calling_aets.clone(),
        },
        max_associations: s.max_associations as usize,
        max_associations_per_peer: s.max_associations_per_peer as usize,
        max_associations_per_ae: s.max_associations_per_ae as usize,
        idle_timeout: s.idle_timeout,
        max_pdu_length: s.max_pdu_length,
        charset,
        max_identifier_bytes: s.max_identifier_bytes as usize,
        max_responses: (s.max_responses > 0).then_some(s.max_responses as usize),
        station_filter_by_calling_ae: s.station_filter_by_calling_ae,
        tls,
        mpps: MppsPolicy {
            max_stored_bytes: s.mpps_max_stored_bytes as usize,
            max_sets: s.mpps_max_sets,
            same_ae_only: s.mpps_same_ae_only,
        },
    })
}

impl Overrides {
    /// Puts the command line's values into `loaded`'s config.
    pub fn apply(&self, loaded: &mut Loaded) -> Result<(), Failure> {
        if let Some(ae) = &self.ae_title {
            if let Some(p) = ae_problem(ae) {
                return Err(Failure::Usage(anyhow!("--ae-title {ae:?}: {p}")));
            }
            loaded.config.server.ae_title = ae.clone();
        }
        if let Some(port) = self.port {
            loaded.config.server.port = port;
        }
        if let Some(bind) = self.bind {
            loaded.config.server.bind = bind;
        }
        Ok(())
    }
}

/// Loads the config at `path`, applies `overrides`, and runs the SCP, the sync worker and
/// the admin interface until Ctrl-C / SIGTERM; SIGHUP reloads the config ([`Reloader`]).
pub async fn serve(path: &Path, overrides: Overrides) -> Result<(), Failure> {
    // Listening first: from here on SIGHUP never ends the process.
    let hangups = hangups();
    let mut loaded = load(path, &sources::process_env)?;
    overrides.apply(&mut loaded)?;
    let stop = stop_on_signal(SHUTTING_DOWN, OnHangup::Listen);
    let reloader = Reloader::new(path.to_path_buf(), overrides, hangups);
    run(loaded, stop, None, Some(reloader)).await
}

/// What is logged when a stop signal comes.
pub const SHUTTING_DOWN: &str = "shutting down: finishing responses in flight and the current sync";

/// Where the server listens, told to the caller who waits for it: the DICOM address and
/// the admin interface's (when on).
pub type Ready = oneshot::Sender<(SocketAddr, Option<SocketAddr>)>;

/// The server, the worker and the admin interface, until `stop` turns true. `ready`, when
/// given, is told once the socket listens and every source has had its first sync (the
/// demo waits for it); `reload`, when given, applies the config read again on SIGHUP.
pub async fn run(
    loaded: Loaded,
    stop: watch::Receiver<bool>,
    ready: Option<Ready>,
    reload: Option<Reloader>,
) -> Result<(), Failure> {
    let config = &loaded.config;
    let store = open_store(config)?;
    // One serving process per database; then the file's own health, so a damaged or
    // unwritable database stops the start rather than every later write.
    let _lock = ServeLock::acquire(store.path()).map_err(|e| Failure::Runtime(e.into()))?;
    store.verify().map_err(|e| {
        Failure::Runtime(anyhow::Error::new(e).context(format!(
            "the database {} failed its start-up check (store.path / db_path in {})",
            store.path().display(),
            config.file.display()
        )))
    })?;
    // Queries read the worklist from memory, kept fresh after every write.
    match store.enable_read_model() {
        Some(entries) => tracing::info!(entries, "worklist held in memory for queries"),
        None => tracing::info!("worklist not held in memory: queries read the database"),
    }
    let scp = scp_config(config)?;
    let addr = SocketAddr::new(config.server.bind, config.server.port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (server.bind / server.port)"))
        .map_err(Failure::Runtime)?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        tzdata = %loaded.zones.describe(),
        ae_title = %scp.ae_title,
        address = %local,
        database = %config.store.path.display(),
        sources = loaded.sources.len(),
        character_set = scp.charset.term(),
        tls = scp.tls.is_some(),
        "mwlbridge serving"
    );
    loaded.log_warnings();
    crate::import_pylantir::log_pending(config, &store);
    let metrics = crate::metrics::build(loaded.sources.iter().map(|s| s.source.as_ref()));
    let ctx = SyncContext {
        store: store.clone(),
        site_zone: site_zone(config, &loaded.zones)?,
        retention_days: config.store.retention_days,
        metrics: metrics.sync.clone(),
        guard: config.store.mass_change_guard(),
        said: Default::default(),
    };
    let (control, requests) = WorkerControl::new(&loaded.sources);
    let control = Arc::new(control);
    let admin = admin_server(config, &ctx, &metrics, control.clone(), stop.clone()).await?;
    let admin_addr = admin.as_ref().map(|(addr, _)| *addr);
    let server = MwlServer::new(scp, store).with_metrics(metrics.scp.clone());
    let scp_task = {
        let stop = stop.clone();
        tokio::spawn(async move { server.serve(listener, stop).await })
    };
    let first_cycle = match ready {
        Some(ready) => {
            for s in &loaded.sources {
                sync_worker::run_cycle(s.source.as_ref(), &ctx).await;
            }
            let _ = ready.send((local, admin_addr));
            FirstCycle::AlreadyRun
        }
        None => FirstCycle::AtStart,
    };
    let options = WorkerOptions {
        first_cycle,
        sync_now: requests,
    };
    let reload = reload.map(|r| (r, loaded.config.clone()));
    let worker = reload::run_worker(loaded.sources, ctx, stop, options, control, reload);
    let sync_task = tokio::spawn(worker);
    let admin_task = async move {
        match admin {
            Some((_, task)) => match task.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "the admin HTTP server stopped");
                    Ok(())
                }
                Err(e) => Err(e),
            },
            None => Ok(()),
        }
    };
    let (scp_result, sync_result, admin_result) = tokio::join!(scp_task, sync_task, admin_task);
    scp_result
        .and(sync_result)
        .and(admin_result)
        .map_err(|e| Failure::Runtime(anyhow!("a server task failed: {e}")))?;
    tracing::info!("mwlbridge stopped");
    Ok(())
}

type AdminTask = tokio::task::JoinHandle<Result<(), admin_http::AdminServeError>>;

/// Starts the admin HTTP interface when `[admin]` enables it; returns its address and
/// task.
async fn admin_server(
    config: &Config,
    ctx: &SyncContext,
    metrics: &crate::metrics::Metrics,
    control: Arc<WorkerControl>,
    stop: watch::Receiver<bool>,
) -> Result<Option<(SocketAddr, AdminTask)>, Failure> {
    let a = &config.admin;
    if !a.enabled {
        tracing::info!("admin HTTP interface disabled ([admin] enabled = false)");
        return Ok(None);
    }
    let tls = match &a.tls {
        None => None,
        Some(f) => {
            let mut cfg = mwl_scp::tls::server_config(&f.certificate, &f.private_key, None)
                .map_err(|e| Failure::Usage(anyhow!("admin.tls: {e}")))?;
            let cfg = Arc::make_mut(&mut cfg);
            cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Some(Arc::new(cfg.clone()))
        }
    };
    let addr = SocketAddr::new(a.bind, a.port);
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        // Nobody asked for it: the DICOM service goes on without it.
        Err(e) if !a.explicit => {
            tracing::error!(
                address = %addr,
                error = %e,
                "cannot listen for the admin interface, which the config does not set up \
                 (no admin section); DICOM service continues without it. Set admin.port \
                 to another port, or admin.enabled = false"
            );
            return Ok(None);
        }
        Err(e) => {
            return Err(Failure::Runtime(anyhow::Error::new(e).context(format!(
                "cannot listen on {addr} for the admin interface (admin.bind / admin.port; \
                 [admin] enabled = false turns it off)"
            ))));
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    let entries = metrics.entries.clone();
    let export = admin_http::MetricsExport {
        registry: metrics.registry.clone(),
        set_entries: Arc::new(move |status, n| {
            entries
                .get_or_create(&crate::metrics::EntryStatusLabels {
                    status: status.as_dicom().to_string(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }),
    };
    let router = admin_http::router(admin_http::AdminContext {
        store: ctx.store.clone(),
        sync: control,
        metrics: Some(export),
        zone: ctx.site_zone.clone(),
        settings: admin_http::AdminSettings {
            unready_after_intervals: a.unready_after_intervals,
            session_lifetime: a.session_lifetime,
            https: tls.is_some(),
            dicomweb_base: a.dicomweb.enabled.then(|| a.dicomweb.base.clone()),
            mpps: MppsPolicy {
                max_stored_bytes: config.server.mpps_max_stored_bytes as usize,
                max_sets: config.server.mpps_max_sets,
                same_ae_only: config.server.mpps_same_ae_only,
            },
            mpps_own_station_only: config.server.station_filter_by_calling_ae,
        },
        started_at: Timestamp::now(),
    });
    tracing::info!(
        address = %local,
        https = tls.is_some(),
        "admin HTTP interface listening"
    );
    let task = tokio::spawn(admin_http::serve(listener, router, tls, stopped(stop)));
    Ok(Some((local, task)))
}
