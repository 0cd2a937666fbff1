//! `redcap-fake`: serves a fake REDCap API until Ctrl-C (or SIGTERM).
//!
//! Prints the API URL (what `REDCAP_API_URL` should hold) on the first line of
//! standard output.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use redcap_fake::{
    DEFAULT_TOKEN, FakeConfig, FakeRedcap, SAMPLE_FIXTURE, load_fixture, synthetic_records,
};

/// A fake REDCap API server (CPIP project layout) for tests, benchmarks and demos.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8091")]
    bind: SocketAddr,
    /// Environment variable holding the token to accept; if it is unset, the fixed
    /// development token 0123456789ABCDEF0123456789ABCDEF is accepted.
    #[arg(long, default_value = "REDCAP_API_TOKEN", value_name = "VAR")]
    token_env: String,
    /// Fixture file (JSON, dates relative to today); default: the built-in sample day.
    #[arg(long, conflicts_with = "synthetic")]
    fixture: Option<PathBuf>,
    /// Serve N synthetic records instead of a fixture.
    #[arg(long, value_name = "N")]
    synthetic: Option<usize>,
    /// Seed of the synthetic records.
    #[arg(long, default_value_t = 1, requires = "synthetic")]
    seed: u64,
    /// Delay before answering each request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// The REDCap server's time zone (IANA name): "today" and modification times.
    #[arg(long, default_value = "America/Edmonton")]
    timezone: String,
}

/// Why the binary stops with an error.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("unknown time zone {zone:?}: {source}")]
    TimeZone {
        zone: String,
        #[source]
        source: jiff::Error,
    },
    #[error("{path}: {source}")]
    ReadFixture {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Fixture {
        path: String,
        #[source]
        source: redcap_fake::FixtureError,
    },
    #[error("cannot start on {bind}: {source}")]
    Start {
        bind: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("waiting for a stop signal: {0}")]
    Signal(#[source] std::io::Error),
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redcap-fake: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), RunError> {
    let tz = jiff::tz::TimeZoneDatabase::bundled()
        .get(&args.timezone)
        .map_err(|source| RunError::TimeZone {
            zone: args.timezone.clone(),
            source,
        })?;
    let today = jiff::Timestamp::now().to_zoned_datetime(tz).date();
    let records = match (&args.synthetic, &args.fixture) {
        (Some(n), _) => synthetic_records(*n, today, args.seed),
        (None, Some(path)) => {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| RunError::ReadFixture {
                path: shown.clone(),
                source,
            })?;
            load_fixture(&text, today).map_err(|source| RunError::Fixture {
                path: shown,
                source,
            })?
        }
        (None, None) => {
            load_fixture(SAMPLE_FIXTURE, today).map_err(|source| RunError::Fixture {
                path: "built-in sample day".to_owned(),
                source,
            })?
        }
    };
    let (token, token_origin) = match std::env::var(&args.token_env) {
        Ok(token) if !token.is_empty() => (token, format!("from ${}", args.token_env)),
        _ => (
            DEFAULT_TOKEN.to_owned(),
            format!(
                "${} unset: development token {DEFAULT_TOKEN}",
                args.token_env
            ),
        ),
    };
    let count = records.len();
    let server = FakeRedcap::start(FakeConfig {
        bind: args.bind,
        token,
        timezone: args.timezone.clone(),
        latency: Duration::from_millis(args.latency_ms),
        ..FakeConfig::default()
    })
    .await
    .map_err(|source| RunError::Start {
        bind: args.bind,
        source,
    })?;
    server.set_records(records);
    println!("{}", server.api_url());
    eprintln!(
        "redcap-fake: {count} records (today {today} in {}); token {token_origin}; Ctrl-C to stop",
        args.timezone,
    );
    stop_signal().await.map_err(RunError::Signal)?;
    let stats = server.stats();
    server.shutdown().await;
    eprintln!("redcap-fake: stopped after {} requests", stats.requests);
    Ok(())
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one.
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
