//! Sync benchmark: the real `mwlbridge sync --once` against a fake Calpendo that answers
//! every request after a fixed latency, with `max_workers` 1 and 5, and a resync when
//! nothing changed. Prints a Markdown table.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use calpendo_fake::{FakeCalpendo, FakeConfig, synthetic_bookings};
use clap::Parser;

/// Measures how long `mwlbridge sync --once` takes against a slow Calpendo.
#[derive(Debug, Parser)]
struct Args {
    /// The mwlbridge binary to measure.
    #[arg(long, default_value = "target/release/mwlbridge")]
    mwlbridge: PathBuf,
    /// Booking counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "50,500")]
    bookings: Vec<usize>,
    /// `max_workers` values to compare.
    #[arg(long, value_delimiter = ',', default_value = "1,5")]
    workers: Vec<usize>,
    /// Latency of every fake Calpendo request, in milliseconds.
    #[arg(long, default_value_t = 200)]
    latency_ms: u64,
}

struct Row {
    bookings: usize,
    workers: usize,
    first: Duration,
    first_requests: u64,
    max_in_flight: u64,
    resync: Duration,
    resync_requests: u64,
    stored: u64,
}

fn config(dir: &Path, base_url: &str, workers: usize, n: usize) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("bench-{n}-{workers}.toml"));
    // The synthetic bookings span several days: fetch enough of them.
    let text = format!(
        r#"
[store]
path = "{db}"
[[sources]]
name = "calpendo"
type = "calpendo"
base_url = "{base_url}"
resources = ["3T", "EEG", "Mock", "7T", "MEG"]
resource_modality_mapping = {{ "3T" = "MR", "7T" = "MR", "EEG" = "EEG" }}
window_future_days = 60
max_workers = {workers}
sync_deadline = 3600
"#,
        db = dir.join(format!("bench-{n}-{workers}.db")).display()
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

fn sync_once(bin: &Path, config: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = Command::new(bin)
        .args(["--log-level", "warn", "sync", "--once", "--config"])
        .arg(config)
        .env("CALPENDO_USERNAME", "mwlbridge")
        .env("CALPENDO_PASSWORD", "secret")
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        bail!(
            "sync failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.mwlbridge.exists() {
        bail!(
            "{} not found: build it first (cargo build --release)",
            args.mwlbridge.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let today = worklist_store::ZoneDb::bundled()
        .get(worklist_store::DEFAULT_TIMEZONE)
        .map(|tz| jiff::Timestamp::now().to_zoned_datetime(tz).date())?;
    let mut rows = Vec::new();
    for &n in &args.bookings {
        for &workers in &args.workers {
            let fake = FakeCalpendo::start(FakeConfig {
                latency: Duration::from_millis(args.latency_ms),
                ..FakeConfig::default()
            })
            .await?;
            fake.set_bookings(synthetic_bookings(n, today, 7));
            let cfg = config(dir.path(), &fake.base_url(), workers, n)?;
            let bin = args.mwlbridge.clone();
            let cfg2 = cfg.clone();
            let first = tokio::task::spawn_blocking(move || sync_once(&bin, &cfg2)).await??;
            let s1 = fake.stats();
            fake.reset_stats();
            let bin = args.mwlbridge.clone();
            let cfg2 = cfg.clone();
            let resync = tokio::task::spawn_blocking(move || sync_once(&bin, &cfg2)).await??;
            let s2 = fake.stats();
            let stored =
                worklist_store::Store::open(dir.path().join(format!("bench-{n}-{workers}.db")))?
                    .count()?;
            eprintln!(
                "{n} bookings, max_workers {workers}: first {:.2} s, resync {:.2} s",
                first.as_secs_f64(),
                resync.as_secs_f64()
            );
            rows.push(Row {
                bookings: n,
                workers,
                first,
                first_requests: s1.requests,
                max_in_flight: s1.max_in_flight,
                resync,
                resync_requests: s2.requests,
                stored,
            });
            fake.shutdown().await;
        }
    }
    println!(
        "| bookings | max_workers | first sync (s) | requests | max in flight | resync, nothing changed (s) | requests | entries stored | speed-up vs max_workers {} |",
        args.workers.first().copied().unwrap_or(1)
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let base = rows
            .iter()
            .find(|b| b.bookings == r.bookings && Some(&b.workers) == args.workers.first())
            .map_or(r.first, |b| b.first);
        println!(
            "| {} | {} | {:.2} | {} | {} | {:.2} | {} | {} | {:.1}× |",
            r.bookings,
            r.workers,
            r.first.as_secs_f64(),
            r.first_requests,
            r.max_in_flight,
            r.resync.as_secs_f64(),
            r.resync_requests,
            r.stored,
            base.as_secs_f64() / r.first.as_secs_f64()
        );
    }
    println!(
        "\nLatency {} ms per request; wall time of the whole `mwlbridge sync --once` process.",
        args.latency_ms
    );
    Ok(())
}
