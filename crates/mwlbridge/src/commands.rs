//! The subcommands.

use std::path::Path;

use anyhow::{Context, anyhow};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio::sync::watch;
use worklist_store::{Store, SyncOutcome, ZoneDb};

use crate::Failure;
use crate::cli::Command;
use crate::config::{Config, ConfigError, ConfigFormat};
use crate::config_reader::Problem;
use crate::sources;
use crate::sync_worker::{self, ScheduledSource, SyncContext};
use crate::worklist_view;

/// Runs one subcommand.
pub async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::CheckConfig(c) => check_config(&c.config),
        Command::Serve {
            config,
            port,
            bind,
            ae_title,
        } => {
            let loaded = load(&config.config, &sources::process_env)?;
            crate::serve::serve(
                loaded,
                crate::serve::Overrides {
                    port,
                    bind,
                    ae_title,
                },
            )
            .await
        }
        Command::Demo { port, admin_port } => crate::serve::demo(port, admin_port).await,
        Command::Export { config, dir } => crate::export::export(&config.config, &dir).await,
        Command::Sync { config, once } => sync(&config.config, once).await,
        Command::Worklist { config, date, json } => worklist(&config.config, &date, json).await,
        Command::Token { action } => crate::token_cmd::run(action).await,
    }
}

/// A config with its sources built.
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// Zone rules.
    pub zones: ZoneDb,
    /// The enabled sources, built.
    pub sources: Vec<ScheduledSource>,
}

fn report(err: &ConfigError, extra: Vec<Problem>) -> Failure {
    let mut all = err.problems.clone();
    all.extend(extra);
    Failure::Usage(anyhow!(
        "{}",
        ConfigError {
            file: err.file.clone(),
            problems: all,
            partial: None,
        }
    ))
}

fn zones_of(config: &Config) -> Result<ZoneDb, Problem> {
    match &config.site.tzdir {
        Some(dir) => ZoneDb::from_dir(dir).map_err(|e| Problem {
            key: "site.tzdir".into(),
            message: e.to_string(),
        }),
        None => Ok(ZoneDb::bundled()),
    }
}

/// Loads a config file and builds its sources, or reports every problem in it.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, Failure> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(err) => {
            // Check the sources of what could be read, to report everything in one run.
            let extra = match &err.partial {
                Some(partial) => sources::build_all(partial, env).err().unwrap_or_default(),
                None => Vec::new(),
            };
            return Err(report(&err, extra));
        }
    };
    let fail = |problems: Vec<Problem>| {
        report(
            &ConfigError {
                file: config.file.clone(),
                problems: Vec::new(),
                partial: None,
            },
            problems,
        )
    };
    let zones = zones_of(&config).map_err(|p| fail(vec![p]))?;
    let built = sources::build_all(&config, env).map_err(fail)?;
    if !config.ignored_keys.is_empty() {
        tracing::warn!(
            keys = ?config.ignored_keys,
            "Pylantir config keys that mwlbridge does not use were ignored"
        );
    }
    let sources = built
        .into_iter()
        .map(|(cfg, source)| ScheduledSource {
            source,
            operation_interval: cfg.operation_interval,
        })
        .collect();
    Ok(Loaded {
        config,
        zones,
        sources,
    })
}

/// The site's zone.
pub fn site_zone(loaded: &Loaded) -> Result<TimeZone, Failure> {
    loaded
        .zones
        .get(&loaded.config.site.timezone)
        .map_err(|e| Failure::Usage(anyhow!("site.timezone: {e}")))
}

/// Opens the configured store; a missing directory is named.
pub fn open_store(config: &Config) -> Result<Store, Failure> {
    let path = &config.store.path;
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        return Err(Failure::Runtime(anyhow!(
            "the database directory {} does not exist (store.path / db_path in {}); \
             create it or choose another path",
            parent.display(),
            config.file.display()
        )));
    }
    Store::open(path).map_err(|e| Failure::Runtime(e.into()))
}

fn check_config(path: &Path) -> Result<(), Failure> {
    let loaded = load(path, &sources::process_env)?;
    let c = &loaded.config;
    let format = match c.format {
        ConfigFormat::Toml => "mwlbridge TOML",
        ConfigFormat::PylantirJson => "Pylantir JSON",
    };
    println!("{}: OK ({format})", c.file.display());
    println!(
        "  DICOM server: AE title {} on {}:{}{}",
        c.server.ae_title,
        c.server.bind,
        c.server.port,
        if c.server.allowed_calling_aets.is_empty() {
            String::new()
        } else {
            format!(
                ", calling AE titles allowed: {}",
                c.server.allowed_calling_aets.join(", ")
            )
        }
    );
    println!(
        "  database: {} (entries kept {} days after their step ends)",
        c.store.path.display(),
        c.store.retention_days
    );
    println!(
        "  site time zone: {} ({})",
        c.site.timezone,
        loaded.zones.describe()
    );
    if c.admin.enabled {
        let scheme = if c.admin.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let addr = std::net::SocketAddr::new(c.admin.bind, c.admin.port);
        println!("  admin interface: {scheme}://{addr}/ (tokens: mwlbridge token create)");
    } else {
        println!("  admin interface: off");
    }
    if c.sources.is_empty() {
        println!("  no data sources: the worklist holds only what is already stored");
    }
    for s in &c.sources {
        println!(
            "  source {:?}: {:?}, {}",
            s.name,
            s.kind,
            if s.enabled { "enabled" } else { "disabled" }
        );
    }
    if !c.ignored_keys.is_empty() {
        println!(
            "  ignored (Pylantir keys mwlbridge does not use): {}",
            c.ignored_keys.join(", ")
        );
    }
    Ok(())
}

async fn sync(path: &Path, once: bool) -> Result<(), Failure> {
    let loaded = load(path, &sources::process_env)?;
    let store = open_store(&loaded.config)?;
    let ctx = SyncContext {
        store,
        site_zone: site_zone(&loaded)?,
        retention_days: loaded.config.store.retention_days,
        metrics: crate::metrics::SyncMetrics::default(),
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
    if once {
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
    } else {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: finishing the current sync cycle");
            let _ = stop_tx.send(true);
        });
        sync_worker::run_forever(loaded.sources, ctx, stop_rx, false, Default::default()).await;
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

async fn worklist(path: &Path, date: &str, json: bool) -> Result<(), Failure> {
    // The worklist view needs only the generic settings: a source whose credentials are
    // not in this shell's environment must not stop an admin from looking.
    let config = Config::load(path).map_err(|e| report(&e, Vec::new()))?;
    let zones = zones_of(&config).map_err(|p| Failure::Usage(anyhow!("{p}")))?;
    let zone = zones
        .get(&config.site.timezone)
        .map_err(|e| Failure::Usage(anyhow!("site.timezone: {e}")))?;
    let today = Timestamp::now().to_zoned_datetime(zone).date();
    let day = worklist_view::parse_day(date, today).map_err(|e| Failure::Usage(anyhow!(e)))?;
    if !config.store.path.exists() {
        return Err(Failure::Runtime(anyhow!(
            "no worklist database at {} yet; run `mwlbridge sync --once --config {}` first",
            config.store.path.display(),
            config.file.display()
        )));
    }
    let store = open_store(&config)?;
    let filter = worklist_view::filter(day);
    let entries = store
        .run(move |s| s.list(&filter))
        .await
        .context("reading the worklist")
        .map_err(Failure::Runtime)?;
    if json {
        let text = serde_json::to_string_pretty(&entries)
            .context("writing JSON")
            .map_err(Failure::Runtime)?;
        println!("{text}");
    } else if entries.is_empty() {
        println!("{}", worklist_view::empty_message(day));
    } else {
        print!("{}", worklist_view::table(&entries));
    }
    Ok(())
}
