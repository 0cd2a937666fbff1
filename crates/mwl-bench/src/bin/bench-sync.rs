//! Sync benchmark against a fake Calpendo that answers every request after a fixed
//! latency, with `max_workers` 1 and 5 and each `fetch_mode` side by side (`bulk`: one
//! list query with `?paths=` and one operator query; `details`: the list, then each
//! booking's details and operator). Two parts, each printing a Markdown table:
//!
//! - process: the real `mwlbridge sync --once`, run twice (a first sync, then a resync
//!   when nothing changed). Each run is a new process, so it starts with an empty detail
//!   cache and reads every booking's details.
//! - library: one `CalpendoSource` in this process (built with
//!   `calpendo_source::parse_config` and `CalpendoSource::new`, as `serve` builds it),
//!   whose `fetch_entries` runs three cycles: the first, a resync when nothing changed
//!   (the steady state of `serve`: the detail cache answers, only the list is requested),
//!   and a resync after a booking's title was changed in the fake, with a check line
//!   proving the change shows.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use calpendo_fake::{FakeCalpendo, FakeConfig, Stats, synthetic_bookings};
use calpendo_source::CalpendoSource;
use clap::{Parser, ValueEnum};
use jiff::civil::Date;
use worklist_store::{DataSource, WorklistEntry};

/// Which parts of the benchmark to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Both parts.
    All,
    /// `mwlbridge sync --once` processes only.
    Process,
    /// The Calpendo source driven in this process only (no mwlbridge binary needed).
    Library,
}

/// Measures how long a Calpendo sync takes against a slow Calpendo.
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
    /// Which parts to run.
    #[arg(long, value_enum, default_value_t = Mode::All)]
    mode: Mode,
    /// `fetch_mode` values to compare.
    #[arg(long, value_delimiter = ',', default_value = "bulk,details")]
    fetch_modes: Vec<String>,
}

/// Whole days after today the window needs to hold `n` synthetic bookings (about 40 a
/// day), with a margin.
fn window_days(n: usize) -> usize {
    (n / 30 + 2).clamp(60, 366)
}

/// One in-process measurement: three cycles of one `CalpendoSource`.
struct LibRow {
    fetch_mode: String,
    bookings: usize,
    workers: usize,
    first: Duration,
    first_requests: Stats,
    resync: Duration,
    resync_requests: Stats,
    changed: Duration,
    changed_requests: Stats,
    entries: usize,
    check: String,
}

/// The Calpendo settings of the in-process part, as the binary hands them over.
fn library_settings(base_url: &str, workers: usize, n: usize, mode: &str) -> serde_json::Value {
    serde_json::json!({
        "base_url": base_url,
        "resources": ["3T", "EEG", "Mock", "7T", "MEG"],
        "resource_modality_mapping": {"3T": "MR", "7T": "MR", "EEG": "EEG"},
        "window_future_days": window_days(n),
        "fetch_mode": mode,
        "max_workers": workers,
        "sync_deadline": 3600,
    })
}

async fn timed_cycle(
    source: &CalpendoSource,
    fake: &FakeCalpendo,
    window: &worklist_store::SyncWindow,
) -> anyhow::Result<(Duration, Vec<WorklistEntry>, Stats)> {
    fake.reset_stats();
    let started = Instant::now();
    let entries = source.fetch_entries(window).await?;
    Ok((started.elapsed(), entries, fake.stats()))
}

async fn library_run(
    mode: &str,
    n: usize,
    workers: usize,
    latency: Duration,
    today: Date,
) -> anyhow::Result<LibRow> {
    let fake = FakeCalpendo::start(FakeConfig {
        latency,
        ..FakeConfig::default()
    })
    .await?;
    fake.set_bookings(synthetic_bookings(n, today, 7));
    let env = |k: &str| match k {
        "CALPENDO_USERNAME" => Some("mwlbridge".to_string()),
        "CALPENDO_PASSWORD" => Some("secret".to_string()),
        _ => None,
    };
    let config =
        calpendo_source::parse_config(&library_settings(&fake.base_url(), workers, n, mode), &env)
            .map_err(|problems| {
                let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
                anyhow!("invalid settings: {}", text.join("; "))
            })?;
    let source = CalpendoSource::new("calpendo", config)?;
    let window = source.sync_window(jiff::Timestamp::now());

    let (first, first_entries, first_requests) = timed_cycle(&source, &fake, &window).await?;
    let (resync, resync_entries, resync_requests) = timed_cycle(&source, &fake, &window).await?;
    if resync_entries != first_entries {
        bail!("{n} bookings: the unchanged resync returned different entries");
    }

    // Change a list field (the title, hence the patient ID) of one kept booking.
    let target = first_entries
        .first()
        .context("no entries to change")?
        .clone();
    let id: i64 = target.source_record_id.parse()?;
    let mut booking = fake
        .bookings()
        .into_iter()
        .find(|b| b.id == id)
        .context("the changed booking is not in the fake")?;
    let new_subject = format!("CHG{id}");
    booking.title = format!("{new_subject}_Changed_Title");
    fake.upsert_booking(booking);
    let (changed, changed_entries, changed_requests) = timed_cycle(&source, &fake, &window).await?;
    let shown = changed_entries
        .iter()
        .find(|e| e.source_record_id == target.source_record_id)
        .map(|e| e.patient_id.clone());
    let others_same = changed_entries
        .iter()
        .filter(|e| e.source_record_id != target.source_record_id)
        .eq(first_entries
            .iter()
            .filter(|e| e.source_record_id != target.source_record_id));
    let ok = shown.as_deref() == Some(new_subject.as_str()) && others_same;
    let check = format!(
        "check ({mode}, {n} bookings, max_workers {workers}): title of booking {id} changed in the fake \
         between cycles; the next cycle gives patient ID {} (was {}, expected {new_subject}), \
         other entries unchanged: {others_same}; {} requests ({} list, {} details, {} \
         operator): {}",
        shown.as_deref().unwrap_or("none"),
        target.patient_id,
        changed_requests.requests,
        changed_requests.list_requests,
        changed_requests.detail_requests,
        changed_requests.operator_requests,
        if ok { "OK" } else { "FAILED" }
    );
    fake.shutdown().await;
    if !ok {
        bail!("{check}");
    }
    Ok(LibRow {
        fetch_mode: mode.to_string(),
        bookings: n,
        workers,
        first,
        first_requests,
        resync,
        resync_requests,
        changed,
        changed_requests,
        entries: first_entries.len(),
        check,
    })
}

fn print_library_table(rows: &[LibRow], latency_ms: u64) {
    println!(
        "| fetch_mode | bookings | max_workers | first cycle (s) | requests | resync, nothing changed (s) | requests | resync after a title change (s) | requests | entries |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.2} | {} | {:.3} | {} | {:.2} | {} | {} |",
            r.fetch_mode,
            r.bookings,
            r.workers,
            r.first.as_secs_f64(),
            r.first_requests.requests,
            r.resync.as_secs_f64(),
            r.resync_requests.requests,
            r.changed.as_secs_f64(),
            r.changed_requests.requests,
            r.entries
        );
    }
    println!();
    for r in rows {
        println!("{}", r.check);
    }
    println!(
        "\nLatency {latency_ms} ms per request; wall time of `CalpendoSource::fetch_entries` \
         (one source, one process, default detail_refresh 600 s)."
    );
}

struct Row {
    fetch_mode: String,
    bookings: usize,
    workers: usize,
    first: Duration,
    first_requests: u64,
    max_in_flight: u64,
    resync: Duration,
    resync_requests: u64,
    stored: u64,
}

fn config(
    dir: &Path,
    base_url: &str,
    workers: usize,
    n: usize,
    mode: &str,
) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("bench-{mode}-{n}-{workers}.toml"));
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
window_future_days = {days}
fetch_mode = "{mode}"
max_workers = {workers}
sync_deadline = 3600
"#,
        db = dir.join(format!("bench-{mode}-{n}-{workers}.db")).display(),
        days = window_days(n),
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
    let today = worklist_store::ZoneDb::bundled()
        .get(worklist_store::DEFAULT_TIMEZONE)
        .map(|tz| jiff::Timestamp::now().to_zoned_datetime(tz).date())?;
    if args.mode != Mode::Process {
        let mut rows = Vec::new();
        for &n in &args.bookings {
            for &workers in &args.workers {
                for mode in &args.fetch_modes {
                    let latency = Duration::from_millis(args.latency_ms);
                    let row = library_run(mode, n, workers, latency, today).await?;
                    eprintln!(
                        "in process, {mode}, {n} bookings, max_workers {workers}: first {:.2} s \
                         ({} requests), unchanged resync {:.3} s ({} requests)",
                        row.first.as_secs_f64(),
                        row.first_requests.requests,
                        row.resync.as_secs_f64(),
                        row.resync_requests.requests
                    );
                    rows.push(row);
                }
            }
        }
        println!("## In process: one CalpendoSource, steady-state resync\n");
        print_library_table(&rows, args.latency_ms);
        if args.mode == Mode::Library {
            return Ok(());
        }
        println!();
    }
    if !args.mwlbridge.exists() {
        bail!(
            "{} not found: build it first (cargo build --release)",
            args.mwlbridge.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for &n in &args.bookings {
        for &workers in &args.workers {
            for mode in &args.fetch_modes {
                let fake = FakeCalpendo::start(FakeConfig {
                    latency: Duration::from_millis(args.latency_ms),
                    ..FakeConfig::default()
                })
                .await?;
                fake.set_bookings(synthetic_bookings(n, today, 7));
                let cfg = config(dir.path(), &fake.base_url(), workers, n, mode)?;
                let bin = args.mwlbridge.clone();
                let cfg2 = cfg.clone();
                let first = tokio::task::spawn_blocking(move || sync_once(&bin, &cfg2)).await??;
                let s1 = fake.stats();
                fake.reset_stats();
                let bin = args.mwlbridge.clone();
                let cfg2 = cfg.clone();
                let resync = tokio::task::spawn_blocking(move || sync_once(&bin, &cfg2)).await??;
                let s2 = fake.stats();
                let stored = worklist_store::Store::open(
                    dir.path().join(format!("bench-{mode}-{n}-{workers}.db")),
                )?
                .count()?;
                eprintln!(
                    "{mode}, {n} bookings, max_workers {workers}: first {:.2} s, resync {:.2} s",
                    first.as_secs_f64(),
                    resync.as_secs_f64()
                );
                rows.push(Row {
                    fetch_mode: mode.clone(),
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
    }
    println!("## Process: `mwlbridge sync --once`, run twice\n");
    println!(
        "| fetch_mode | bookings | max_workers | first sync (s) | requests | max in flight | resync, nothing changed (s) | requests | entries stored | speed-up vs max_workers {} |",
        args.workers.first().copied().unwrap_or(1)
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let base = rows
            .iter()
            .find(|b| {
                b.fetch_mode == r.fetch_mode
                    && b.bookings == r.bookings
                    && Some(&b.workers) == args.workers.first()
            })
            .map_or(r.first, |b| b.first);
        println!(
            "| {} | {} | {} | {:.2} | {} | {} | {:.2} | {} | {} | {:.1}× |",
            r.fetch_mode,
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
        "\nLatency {} ms per request; wall time of the whole `mwlbridge sync --once` process \
         (each a new process: its detail cache starts empty).",
        args.latency_ms
    );
    Ok(())
}
