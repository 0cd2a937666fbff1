//! `calpendo-fake`: serves a fake Calpendo API until Ctrl-C (or SIGTERM).
//!
//! Prints the base URL (API paths `/webdav` and `/api` under it) on the first line of
//! standard output.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use calpendo_fake::{
    BUSY_RESOURCE, FakeCalpendo, FakeConfig, SAMPLE_FIXTURE, busy_day_bookings, load_fixture,
    synthetic_bookings,
};
use clap::Parser;

/// A fake Calpendo HTTP server for tests, benchmarks and demos.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8089")]
    bind: SocketAddr,
    /// Fixture file (JSON, days relative to today); default: the built-in sample day.
    #[arg(long, conflicts_with = "synthetic")]
    fixture: Option<PathBuf>,
    /// Serve N synthetic bookings from today on instead of a fixture.
    #[arg(long, value_name = "N")]
    synthetic: Option<usize>,
    /// Of the N synthetic bookings, this many fill today on the resource "3T Busy" in
    /// short slots (the busiest console's day; at most 720).
    #[arg(long, default_value_t = 0, requires = "synthetic")]
    busy_today: usize,
    /// Seed of the synthetic bookings.
    #[arg(long, default_value_t = 1, requires = "synthetic")]
    seed: u64,
    /// Delay before answering each request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Calpendo's local time zone (IANA name).
    #[arg(long, default_value = "America/Edmonton")]
    timezone: String,
    /// Basic-auth user name to accept.
    #[arg(long, default_value = "mwlbridge")]
    username: String,
    /// Basic-auth password to accept.
    #[arg(long, default_value = "secret")]
    password: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("calpendo-fake: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let tz = jiff::tz::TimeZoneDatabase::bundled()
        .get(&args.timezone)
        .map_err(|e| format!("unknown time zone {:?}: {e}", args.timezone))?;
    let today = jiff::Timestamp::now().to_zoned_datetime(tz).date();
    let bookings = match (&args.synthetic, &args.fixture) {
        (Some(n), _) => {
            let busy = args.busy_today.min(*n);
            let mut bookings = synthetic_bookings(n - busy, today, args.seed);
            let first_id = 100_000 + i64::try_from(bookings.len()).unwrap_or(0);
            bookings.extend(busy_day_bookings(busy, today, first_id, args.seed));
            if busy > 0 {
                eprintln!("calpendo-fake: {} of them today on {BUSY_RESOURCE:?}", busy);
            }
            bookings
        }
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            load_fixture(&text, today).map_err(|e| format!("{}: {e}", path.display()))?
        }
        (None, None) => load_fixture(SAMPLE_FIXTURE, today)?,
    };
    let count = bookings.len();
    let server = FakeCalpendo::start(FakeConfig {
        bind: args.bind,
        username: args.username.clone(),
        password: args.password,
        timezone: args.timezone.clone(),
        latency: Duration::from_millis(args.latency_ms),
    })
    .await
    .map_err(|e| format!("cannot start on {}: {e}", args.bind))?;
    server.set_bookings(bookings);
    println!("{}", server.base_url());
    eprintln!(
        "calpendo-fake: {count} bookings (today {today} in {}); API at {url}/webdav and {url}/api, user {:?}; Ctrl-C to stop",
        args.timezone,
        args.username,
        url = server.base_url(),
    );
    stop_signal().await?;
    let stats = server.stats();
    server.shutdown().await;
    eprintln!("calpendo-fake: stopped after {} requests", stats.requests);
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
