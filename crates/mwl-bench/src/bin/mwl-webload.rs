//! `mwl-webload`: the load of `mwl-loadgen`, sent as DICOMweb worklist searches (PS3.18
//! chapter 14) to mwlbridge's admin interface, with the same report, so that a search
//! and the C-FIND of the same name compare side by side on the same items.
//!
//! Each named query of `--mix` runs in turn with `--clients` concurrent clients
//! (`universal`: `--universal-clients`), each on one kept-alive HTTP/1.1 connection,
//! for `--duration` seconds. A query is one page of at most `--limit` results; its
//! matches are the page's results (the JSON array is counted, not decoded). The API
//! token comes from the environment, `MWL_WEBLOAD_TOKEN`.
//!
//! ```text
//! MWL_WEBLOAD_TOKEN=... mwl-webload --base http://127.0.0.1:8080/dicomweb \
//!     --clients 8 --duration 10 --mix today-station-modality,patient-id,universal
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use mwl_bench::queries::{QueryKind, QueryParams, Rng, format_da};
use mwl_bench::query_args::QueryArgs;
use mwl_bench::stats::{LoadReport, PhaseReport, own_cpu_time, summarize};
use mwl_bench::web::{SEARCH_PATH, search_params};
use serde::de::IgnoredAny;

/// DICOMweb worklist search load generator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The DICOMweb base URL (`http://127.0.0.1:8080/dicomweb`).
    #[arg(long)]
    base: String,
    /// Concurrent clients per query (except `universal`).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Concurrent clients of the `universal` query.
    #[arg(long, default_value_t = 1)]
    universal_clients: usize,
    /// Seconds per query of the mix (at most 3600).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Queries to run, in turn: busy-station, today-station-modality, patient-id, universal,
    /// date-range, name-wildcard.
    #[arg(long, value_delimiter = ',', default_value = "today-station-modality")]
    mix: Vec<String>,
    /// The queries' options.
    #[command(flatten)]
    query: QueryArgs,
    /// File of PatientIDs (one per line) for patient-id.
    #[arg(long)]
    patient_ids: Option<PathBuf>,
    /// Results per page (`limit`): mwlbridge answers at most 5000.
    #[arg(long, default_value_t = 5000)]
    limit: u32,
    /// Seconds one search may take; longer is an error.
    #[arg(long, default_value_t = 60.0)]
    query_timeout: f64,
    /// Seed of the patient-id picks.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Upper bound on a phase's duration.
const MAX_DURATION_S: f64 = 3600.0;

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mwl-webload: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mwl-webload: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let kinds: Vec<QueryKind> = args
        .mix
        .iter()
        .map(|n| QueryKind::parse(n.trim()))
        .collect::<Result<_, _>>()?;
    if kinds.is_empty() {
        bail!("--mix is empty");
    }
    if !(args.duration > 0.0 && args.duration <= MAX_DURATION_S) {
        bail!("--duration must be in (0, {MAX_DURATION_S}]");
    }
    if args.clients == 0 || args.clients > 1000 || args.universal_clients == 0 {
        bail!("--clients and --universal-clients must be 1..=1000");
    }
    let token = std::env::var("MWL_WEBLOAD_TOKEN")
        .context("MWL_WEBLOAD_TOKEN: the admin interface's API token is not set")?;
    let url = format!("{}{SEARCH_PATH}", args.base.trim_end_matches('/'));
    let day = args.query.day()?;
    let mut params = args.query.params(day);
    if kinds.contains(&QueryKind::PatientId) {
        let path = args
            .patient_ids
            .as_ref()
            .context("patient-id needs --patient-ids")?;
        params.patient_ids = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if params.patient_ids.is_empty() {
            bail!("{}: no PatientIDs", path.display());
        }
    }
    let mut report = LoadReport {
        target: url.clone(),
        called_ae: "DICOMweb".into(),
        day: format_da(day),
        station: args.query.station.clone(),
        phases: Vec::new(),
    };
    for (i, &kind) in kinds.iter().enumerate() {
        let clients = if kind == QueryKind::Universal {
            args.universal_clients
        } else {
            args.clients
        };
        let phase = Phase {
            kind,
            clients,
            duration: Duration::from_secs_f64(args.duration),
            timeout: Duration::from_secs_f64(args.query_timeout.clamp(0.001, MAX_DURATION_S)),
            limit: args.limit,
            seed: args.seed.wrapping_add(i as u64 * 1000),
        };
        let r = run_phase(&phase, &url, &token, &params).await?;
        if !args.json {
            eprintln!(
                "{}: {} ok, {} errors, {:.1} q/s",
                r.query, r.queries_ok, r.errors, r.qps
            );
        }
        report.phases.push(r);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print_table();
    }
    Ok(())
}

struct Phase {
    kind: QueryKind,
    clients: usize,
    duration: Duration,
    timeout: Duration,
    limit: u32,
    seed: u64,
}

/// One client's count.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    ok: u64,
    matches: u64,
    errors: u64,
    samples: Vec<String>,
}

impl Tally {
    fn error(&mut self, msg: String) {
        self.errors += 1;
        if self.samples.len() < 3 && !self.samples.contains(&msg) {
            self.samples.push(msg);
        }
    }
}

/// One search: the number of results on the page.
async fn search(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    query: &[(&str, String)],
) -> Result<u64, String> {
    let url = reqwest::Url::parse_with_params(url, query).map_err(|e| e.to_string())?;
    let r = http
        .get(url)
        .bearer_auth(token)
        .header("accept", "application/dicom+json")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let body = r.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let results: Vec<IgnoredAny> =
        serde_json::from_slice(&body).map_err(|e| format!("not a JSON array: {e}"))?;
    Ok(results.len() as u64)
}

async fn run_phase(
    phase: &Phase,
    url: &str,
    token: &str,
    params: &QueryParams,
) -> anyhow::Result<PhaseReport> {
    // One connection per client, opened by a first search before the clock starts.
    let mut clients = Vec::with_capacity(phase.clients);
    for i in 0..phase.clients {
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(1)
            .timeout(phase.timeout)
            .build()?;
        let mut rng = Rng::new(phase.seed.wrapping_add(i as u64));
        let query = search_params(phase.kind, params, &mut rng, phase.limit)
            .context("no PatientIDs for patient-id")?;
        search(&http, url, token, &query)
            .await
            .map_err(|e| anyhow!("{url}: {e}"))?;
        clients.push((http, rng));
    }
    let cpu0 = own_cpu_time();
    let t0 = Instant::now();
    let deadline = t0 + phase.duration;
    let loops = clients.into_iter().map(|(http, mut rng)| async move {
        let mut t = Tally::default();
        while Instant::now() < deadline {
            let Some(query) = search_params(phase.kind, params, &mut rng, phase.limit) else {
                break;
            };
            let started = Instant::now();
            match search(&http, url, token, &query).await {
                Ok(n) => {
                    t.ok += 1;
                    t.matches += n;
                    t.latencies_us
                        .push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
                }
                Err(e) => t.error(e),
            }
        }
        t
    });
    let tallies = futures::future::join_all(loops).await;
    let wall = t0.elapsed().as_secs_f64().max(1e-9);
    let cpu = own_cpu_time().saturating_sub(cpu0).as_secs_f64();
    let mut all = Tally::default();
    for t in tallies {
        all.latencies_us.extend(t.latencies_us);
        all.ok += t.ok;
        all.matches += t.matches;
        all.errors += t.errors;
        for s in t.samples {
            if all.samples.len() < 5 && !all.samples.contains(&s) {
                all.samples.push(s);
            }
        }
    }
    Ok(PhaseReport {
        query: phase.kind.name().to_string(),
        clients: phase.clients,
        mode: "persistent".into(),
        wall_s: wall,
        queries_ok: all.ok,
        errors: all.errors,
        error_samples: all.samples,
        qps: all.ok as f64 / wall,
        latency_ms: summarize(&mut all.latencies_us),
        matches_mean: if all.ok > 0 {
            all.matches as f64 / all.ok as f64
        } else {
            0.0
        },
        items_per_s: all.matches as f64 / wall,
        pending_ff01: 0,
        loadgen_cpu_share: cpu / wall,
    })
}
