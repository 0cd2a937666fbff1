//! `mwlbridge serve` (the DICOM server and the sync worker in one process) and
//! `mwlbridge demo`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use calpendo_fake::{FakeCalpendo, FakeConfig, SAMPLE_FIXTURE, load_fixture};
use jiff::Timestamp;
use mwl_scp::{AePolicy, MwlServer, ResponseCharset, ScpConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use worklist_store::validate::ae_problem;

use crate::Failure;
use crate::commands::{Loaded, load, open_store, shutdown_signal, site_zone};
use crate::config::Config;
use crate::sync_control::WorkerControl;
use crate::sync_worker::{self, SyncContext};

/// Command-line values that override the config file.
#[derive(Debug, Default)]
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
    let charset = ResponseCharset::from_term(&s.character_set).ok_or_else(|| {
        Failure::Usage(anyhow!(
            "server.character_set {:?} is not supported",
            s.character_set
        ))
    })?;
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
        idle_timeout: s.idle_timeout,
        max_pdu_length: s.max_pdu_length,
        charset,
        max_identifier_bytes: s.max_identifier_bytes as usize,
        max_responses: (s.max_responses > 0).then_some(s.max_responses as usize),
        station_filter_by_calling_ae: s.station_filter_by_calling_ae,
        tls,
    })
}

/// Runs the SCP and the sync worker until Ctrl-C / SIGTERM.
pub async fn serve(mut loaded: Loaded, overrides: Overrides) -> Result<(), Failure> {
    if let Some(ae) = overrides.ae_title {
        if let Some(p) = ae_problem(&ae) {
            return Err(Failure::Usage(anyhow!("--ae-title {ae:?}: {p}")));
        }
        loaded.config.server.ae_title = ae;
    }
    if let Some(port) = overrides.port {
        loaded.config.server.port = port;
    }
    if let Some(bind) = overrides.bind {
        loaded.config.server.bind = bind;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing responses in flight and the current sync");
        let _ = stop_tx.send(true);
    });
    run(loaded, stop_rx, None).await
}

/// The server and the worker, until `stop` turns true. `ready` is told once the socket
/// listens and every source has had its first sync (the demo waits for it).
async fn run(
    loaded: Loaded,
    stop: watch::Receiver<bool>,
    ready: Option<tokio::sync::oneshot::Sender<(SocketAddr, Option<SocketAddr>)>>,
) -> Result<(), Failure> {
    let config = &loaded.config;
    let store = open_store(config)?;
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
    let metrics = crate::metrics::build(loaded.sources.iter().map(|s| s.source.as_ref()));
    let ctx = SyncContext {
        store: store.clone(),
        site_zone: site_zone(&loaded)?,
        retention_days: config.store.retention_days,
        metrics: metrics.sync.clone(),
    };
    let (control, requests) = WorkerControl::new(&loaded.sources);
    let admin = admin_server(config, &ctx, &metrics, Arc::new(control), stop.clone()).await?;
    let admin_addr = admin.as_ref().map(|(addr, _)| *addr);
    let server = MwlServer::new(scp, store).with_metrics(metrics.scp.clone());
    let scp_task = {
        let stop = stop.clone();
        tokio::spawn(async move { server.serve(listener, stop).await })
    };
    let first_cycle_done = ready.is_some();
    if let Some(ready) = ready {
        for s in &loaded.sources {
            sync_worker::run_cycle(s.source.as_ref(), &ctx).await;
        }
        let _ = ready.send((local, admin_addr));
    }
    let sync_task = tokio::spawn(sync_worker::run_forever(
        loaded.sources,
        ctx,
        stop,
        first_cycle_done,
        requests,
    ));
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
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {addr} for the admin interface (admin.bind / admin.port; \
                 [admin] enabled = false turns it off)"
            )
        })
        .map_err(Failure::Runtime)?;
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
        },
        started_at: Timestamp::now(),
    });
    tracing::info!(
        address = %local,
        https = tls.is_some(),
        "admin HTTP interface listening"
    );
    let task = tokio::spawn(admin_http::serve(listener, router, tls, stop));
    Ok(Some((local, task)))
}

/// The demo: a fake Calpendo with a day of sample bookings, a temporary database, and
/// the server on 127.0.0.1:`port`.
pub async fn demo(port: u16, admin_port: u16) -> Result<(), Failure> {
    let runtime = |e: anyhow::Error| Failure::Runtime(e);
    let zone = worklist_store::ZoneDb::bundled()
        .get(worklist_store::DEFAULT_TIMEZONE)
        .map_err(|e| runtime(e.into()))?;
    let today = Timestamp::now().to_zoned_datetime(zone).date();
    let bookings = load_fixture(SAMPLE_FIXTURE, today)
        .context("the built-in sample bookings")
        .map_err(runtime)?;
    let fake_config = FakeConfig::default();
    let (user, password) = (fake_config.username.clone(), fake_config.password.clone());
    let fake = FakeCalpendo::start(fake_config)
        .await
        .context("starting the fake Calpendo")
        .map_err(runtime)?;
    fake.set_bookings(bookings);
    let dir = tempfile::Builder::new()
        .prefix("mwlbridge-demo-")
        .tempdir()
        .context("creating a temporary directory")
        .map_err(runtime)?;
    let config_path = dir.path().join("mwlbridge.toml");
    let admin_port = demo_admin_port(admin_port);
    std::fs::write(
        &config_path,
        demo_config(&fake.base_url(), dir.path(), port, admin_port),
    )
    .context("writing the demo config")
    .map_err(runtime)?;
    // A write token for the status page, made before the server starts.
    let token = if admin_port == 0 {
        None
    } else {
        let store = worklist_store::Store::open(dir.path().join("worklist.db"))
            .map_err(|e| runtime(e.into()))?;
        let created = admin_http::tokens::create_token(
            &store,
            "demo",
            worklist_store::TokenRole::Write,
            Timestamp::now(),
        )
        .map_err(|e| runtime(e.into()))?;
        Some(created.token)
    };
    // The fake's credentials go straight to the source, not into the environment.
    let env = move |name: &str| match name {
        "CALPENDO_USERNAME" => Some(user.clone()),
        "CALPENDO_PASSWORD" => Some(password.clone()),
        _ => None,
    };
    let loaded = load(&config_path, &env)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(run(loaded, stop_rx, Some(ready_tx)));
    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    if let Ok((addr, admin)) = ready_rx.await {
        println!("{}", demo_banner(addr, &fake.base_url(), dir.path(), today));
        if let (Some(admin), Some(token)) = (admin, token) {
            println!(
                "\nAdmin interface: http://{admin}/  (sign in with the demo's write token)\n  {token}\n\
                 REST API: curl -H \"Authorization: Bearer {token}\" http://{admin}/api/v1/worklist?date=today"
            );
        }
    }
    let result = server
        .await
        .map_err(|e| Failure::Runtime(anyhow!("the demo server failed: {e}")))?;
    signal.abort();
    fake.shutdown().await;
    result
}

/// The demo's admin port: the one asked for, or a free one when it is taken (8080 often
/// is on a developer's machine); 0 stays 0 (off).
fn demo_admin_port(asked: u16) -> u16 {
    if asked == 0 || std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, asked)).is_ok() {
        return asked;
    }
    match std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()) {
        Ok(free) => {
            eprintln!(
                "port {asked} is taken; the admin interface uses {} instead",
                free.port()
            );
            free.port()
        }
        Err(_) => asked,
    }
}

fn demo_config(base_url: &str, dir: &std::path::Path, port: u16, admin_port: u16) -> String {
    format!(
        r#"# Written by `mwlbridge demo`.
[server]
ae_title = "MWLBRIDGE"
bind = "127.0.0.1"
port = {port}

[admin]
enabled = {admin_enabled}
bind = "127.0.0.1"
port = {admin_port_or_default}

[store]
path = "{db}"

[site]
timezone = "America/Edmonton"

[[sources]]
name = "calpendo"
type = "calpendo"
base_url = "{base_url}"
resources = ["3T", "EEG", "Mock"]
resource_modality_mapping = {{ "3T" = "MR", "EEG" = "EEG", "Mock" = "OT" }}
station_aet_mapping = {{ "3T Diagnostic" = "MRI_3T_DIAG", "3T Research" = "MRI_3T_RES", "EEG" = "EEG_LAB", "Mock" = "MOCK" }}
sync_interval = 30

[sources.field_mapping]
patient_name = {{ source_field = "title", _extract = {{ pattern = "^[A-Za-z0-9]+_([^_]+)_(.+)$", template = "$1^$2" }} }}
"#,
        db = dir.join("worklist.db").display(),
        admin_enabled = admin_port != 0,
        admin_port_or_default = if admin_port == 0 { 8080 } else { admin_port },
    )
}

fn demo_banner(
    addr: SocketAddr,
    fake_url: &str,
    dir: &std::path::Path,
    today: jiff::civil::Date,
) -> String {
    let ip = if addr.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    let day = worklist_store::format_da(today);
    format!(
        r#"
mwlbridge demo is running: DICOM worklist server MWLBRIDGE on {ip}:{port}
  fake Calpendo with a day of sample bookings: {fake_url}
  database and config: {dir}

Today's worklist, as a console sees it (DCMTK: apt-get install dcmtk):

  findscu -v -W -aet CONSOLE -aec MWLBRIDGE \
    -k PatientName -k PatientID -k AccessionNumber -k StudyInstanceUID \
    -k "ScheduledProcedureStepSequence[0].ScheduledStationAETitle" \
    -k "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={day}" \
    -k "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime" \
    -k "ScheduledProcedureStepSequence[0].Modality" \
    -k "ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription" \
    {ip} {port}

Only one scanner's list: add -k "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=MRI_3T_DIAG"
The stored worklist: mwlbridge worklist --config {dir}/mwlbridge.toml
Stop with Ctrl-C."#,
        port = addr.port(),
        dir = dir.display(),
    )
}
