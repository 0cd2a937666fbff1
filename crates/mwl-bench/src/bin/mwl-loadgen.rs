//! `mwl-loadgen`: Modality Worklist C-FIND load against any MWL SCP (mwlbridge, DCMTK
//! `wlmscpfs`, Pylantir, ...).
//!
//! Runs each named query of `--mix` in turn (one phase each) with `--clients`
//! concurrent clients (`universal`: `--universal-clients`, 1 by default), for
//! `--duration` seconds or `--queries` queries, each client on one persistent
//! association (`--mode persistent`) or a fresh association per query (`--mode fresh`).
//! Reports per query: queries/s, latency percentiles, mean matches, errors (a final
//! status other than 0000, a transport error or a timeout) and the load generator's own
//! CPU share. `--json` prints the report as JSON for scripts. `--record FILE` runs
//! each query once instead and keeps the server's answers for `mwl-replay`.
//!
//! ```text
//! mwl-loadgen --port 11112 --called-ae MWLBRIDGE --clients 8 --duration 10 \
//!     --mix today-station-modality,patient-id,universal --patient-ids ids.txt
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::{Parser, ValueEnum};
use mwl_bench::client::{ClientError, Connection, FindOutcome, Target};
use mwl_bench::queries::{QueryKind, QueryParams, Rng, build, format_da, patient_id_query};
use mwl_bench::query_args::QueryArgs;
use mwl_bench::replay::recording::Recording;
use mwl_bench::stats::{LoadReport, PhaseReport, own_cpu_time, summarize};

/// How clients use associations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// One association per client for the whole phase (opened before the clock starts).
    Persistent,
    /// A fresh association for every query (connect, associate, find, release).
    Fresh,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Persistent => "persistent",
            Mode::Fresh => "fresh",
        }
    }
}

/// Modality Worklist C-FIND load generator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long)]
    port: u16,
    /// The server's AE title.
    #[arg(long, default_value = "MWLBRIDGE")]
    called_ae: String,
    /// Our AE title.
    #[arg(long, default_value = "MWLLOADGEN")]
    calling_ae: String,
    /// Concurrent clients per query (except `universal`).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Concurrent clients of the `universal` query.
    #[arg(long, default_value_t = 1)]
    universal_clients: usize,
    /// Seconds per query of the mix (default 10; at most 3600). New queries stop then;
    /// queries in flight finish (each bounded by --query-timeout).
    #[arg(long)]
    duration: Option<f64>,
    /// Queries per query of the mix, over all clients (stops at --duration too, default
    /// 600 s then).
    #[arg(long)]
    queries: Option<u64>,
    /// Association use.
    #[arg(long, value_enum, default_value_t = Mode::Persistent)]
    mode: Mode,
    /// Queries to run, in turn: busy-station, today-station-modality, patient-id, universal,
    /// date-range, name-wildcard.
    #[arg(long, value_delimiter = ',', default_value = "today-station-modality")]
    mix: Vec<String>,
    /// The queries' options.
    #[command(flatten)]
    query: QueryArgs,
    /// File of PatientIDs (one per line) for patient-id; default: asked from the server
    /// with one universal query first.
    #[arg(long)]
    patient_ids: Option<PathBuf>,
    /// Seconds one query may take (association included in fresh mode); longer is an
    /// error.
    #[arg(long, default_value_t = 60.0)]
    query_timeout: f64,
    /// Largest PDU we accept, in bytes.
    #[arg(long, default_value_t = 16384)]
    max_pdu: u32,
    /// Runtime worker threads (1: a single-threaded runtime, the lightest).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seed of the patient-id picks.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Record instead of loading: run each query of the mix once (patient-id: once per
    /// PatientID) and write the answers' PDUs to this file, for `mwl-replay`.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Upper bound on the queries of one phase, whatever the options.
const MAX_QUERIES_PER_PHASE: u64 = 5_000_000;
/// Upper bound on a phase's duration.
const MAX_DURATION_S: f64 = 3600.0;

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mwl-loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mwl-loadgen: {e}");
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
    let duration = match (args.duration, args.queries) {
        (Some(d), _) => d,
        (None, Some(_)) => 600.0,
        (None, None) => 10.0,
    };
    if !(duration > 0.0 && duration <= MAX_DURATION_S) {
        bail!("--duration must be in (0, {MAX_DURATION_S}]");
    }
    if !(args.query_timeout > 0.0 && args.query_timeout <= MAX_DURATION_S) {
        bail!("--query-timeout must be in (0, {MAX_DURATION_S}]");
    }
    if args.clients == 0 || args.clients > 1000 || args.universal_clients == 0 {
        bail!("--clients and --universal-clients must be 1..=1000");
    }
    let day = args.query.day()?;
    let target = Arc::new(Target {
        host: args.host.clone(),
        port: args.port,
        calling_ae: args.calling_ae.clone(),
        called_ae: args.called_ae.clone(),
        max_pdu: args.max_pdu,
        io_timeout: Duration::from_secs_f64(args.query_timeout),
    });
    let mut params = args.query.params(day);
    if kinds.contains(&QueryKind::PatientId) {
        params.patient_ids = match &args.patient_ids {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
            None => ids_from_server(&target).await?,
        };
        if params.patient_ids.is_empty() {
            bail!("no PatientIDs for the patient-id query");
        }
    }
    if let Some(path) = &args.record {
        return record(&target, &kinds, &params, path).await;
    }
    let params = Arc::new(params);
    let mut report = LoadReport {
        target: format!("{}:{}", args.host, args.port),
        called_ae: args.called_ae.clone(),
        day: format_da(day),
        station: args.query.station.clone(),
        phases: Vec::new(),
    };
    for (i, kind) in kinds.iter().enumerate() {
        let clients = if *kind == QueryKind::Universal {
            args.universal_clients
        } else {
            args.clients
        };
        let phase = Phase {
            kind: *kind,
            clients,
            mode: args.mode,
            duration: Duration::from_secs_f64(duration),
            queries: args.queries.unwrap_or(u64::MAX).min(MAX_QUERIES_PER_PHASE),
            query_timeout: Duration::from_secs_f64(args.query_timeout),
            seed: args.seed.wrapping_add(i as u64 * 1000),
        };
        let r = run_phase(&phase, &target, &params).await;
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

/// Runs each query of `kinds` once on one association (patient-id: once per PatientID)
/// and writes the answers to `path` as a [`Recording`].
async fn record(
    target: &Target,
    kinds: &[QueryKind],
    params: &QueryParams,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let mut conn = Connection::open(target).await?;
    let mut rec = Recording::new(target.max_pdu, conn.context_id());
    let mut rng = Rng::new(0);
    for &kind in kinds {
        let identifiers: Vec<Vec<u8>> = if kind == QueryKind::PatientId {
            params
                .patient_ids
                .iter()
                .map(|id| patient_id_query(id))
                .collect()
        } else {
            build(kind, params, &mut rng).into_iter().collect()
        };
        let (mut matches, count) = (0u64, identifiers.len());
        for identifier in identifiers {
            let mut pdus = Vec::new();
            let outcome = conn.find_recorded(&identifier, &mut pdus).await?;
            if outcome.status != 0 {
                bail!("{}: final status {:04X}", kind.name(), outcome.status);
            }
            matches += outcome.matches;
            rec.insert(identifier, pdus);
        }
        eprintln!(
            "recorded {}: {count} quer{}, {matches} matches",
            kind.name(),
            if count == 1 { "y" } else { "ies" }
        );
    }
    conn.release().await?;
    std::fs::write(path, rec.to_bytes()).with_context(|| format!("{}", path.display()))?;
    eprintln!("{} answers written to {}", rec.len(), path.display());
    Ok(())
}

/// PatientIDs of every item, from one universal query asking only for PatientID.
async fn ids_from_server(target: &Target) -> anyhow::Result<Vec<String>> {
    // A dedicated decoding client would cost more code than this: run the universal
    // query with the full decoder of dicom-object, once.
    use dicom_dictionary_std::tags;
    use dicom_object::InMemDicomObject;
    use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
    use dicom_ul::association::client::ClientAssociationOptions;
    use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
    let mut assoc = ClientAssociationOptions::new()
        .calling_ae_title(target.calling_ae.clone())
        .called_ae_title(target.called_ae.clone())
        .with_presentation_context(
            mwl_bench::client::MWL_FIND,
            vec![mwl_bench::client::IMPLICIT_LE],
        )
        .max_pdu_length(target.max_pdu)
        .read_timeout(target.io_timeout)
        .write_timeout(target.io_timeout)
        .connection_timeout(target.io_timeout)
        .establish_async((target.host.as_str(), target.port))
        .await
        .map_err(ClientError::Associate)?;
    let ctx = assoc
        .presentation_contexts()
        .first()
        .map(|pc| pc.id)
        .context("no presentation context")?;
    let ident = InMemDicomObject::from_element_iter([dicom_core::DataElement::new(
        tags::PATIENT_ID,
        dicom_core::VR::LO,
        dicom_core::PrimitiveValue::Empty,
    )]);
    assoc
        .send(&Pdu::PData {
            data: vec![
                PDataValue {
                    presentation_context_id: ctx,
                    value_type: PDataValueType::Command,
                    is_last: true,
                    data: mwl_bench::client::find_command(1),
                },
                PDataValue {
                    presentation_context_id: ctx,
                    value_type: PDataValueType::Data,
                    is_last: true,
                    data: mwl_bench::client::encode(&ident),
                },
            ],
        })
        .await
        .map_err(ClientError::Send)?;
    let mut ids = Vec::new();
    let (mut cmd, mut data) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(600);
    'outer: while Instant::now() < deadline {
        let Pdu::PData { data: pdvs } = assoc.receive().await.map_err(ClientError::Receive)? else {
            bail!("unexpected PDU while reading PatientIDs");
        };
        for v in pdvs {
            match v.value_type {
                PDataValueType::Command => {
                    cmd.extend_from_slice(&v.data);
                    if v.is_last {
                        let (status, _) =
                            mwl_bench::client::scan_command(&cmd).context("no status")?;
                        cmd.clear();
                        if !matches!(status, 0xFF00 | 0xFF01) {
                            break 'outer;
                        }
                    }
                }
                PDataValueType::Data => {
                    data.extend_from_slice(&v.data);
                    if v.is_last {
                        let obj = InMemDicomObject::read_dataset_with_ts(
                            data.as_slice(),
                            &IMPLICIT_VR_LITTLE_ENDIAN.erased(),
                        )?;
                        data.clear();
                        if let Some(id) = obj
                            .element(tags::PATIENT_ID)
                            .ok()
                            .and_then(|e| e.to_str().ok())
                            .map(|s| s.trim().to_string())
                            && !id.is_empty()
                        {
                            ids.push(id);
                        }
                    }
                }
            }
        }
    }
    let _ = assoc.release().await;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

struct Phase {
    kind: QueryKind,
    clients: usize,
    mode: Mode,
    duration: Duration,
    queries: u64,
    query_timeout: Duration,
    seed: u64,
}

#[derive(Default)]
struct ClientResult {
    latencies_us: Vec<u64>,
    ok: u64,
    errors: u64,
    matches: u64,
    ff01: u64,
    samples: Vec<String>,
}

impl ClientResult {
    fn error(&mut self, msg: String) {
        self.errors += 1;
        if self.samples.len() < 3 && !self.samples.contains(&msg) {
            self.samples.push(msg);
        }
    }
}

async fn run_phase(phase: &Phase, target: &Arc<Target>, params: &Arc<QueryParams>) -> PhaseReport {
    let mut setup = ClientResult::default();
    // Persistent associations are opened before the clock starts.
    let mut conns: Vec<Option<Connection>> = Vec::with_capacity(phase.clients);
    for _ in 0..phase.clients {
        if phase.mode == Mode::Persistent {
            match tokio::time::timeout(phase.query_timeout, Connection::open(target)).await {
                Ok(Ok(c)) => conns.push(Some(c)),
                Ok(Err(e)) => {
                    setup.error(e.to_string());
                    conns.push(None);
                }
                Err(_) => {
                    setup.error("association: timeout".into());
                    conns.push(None);
                }
            }
        } else {
            conns.push(None);
        }
    }
    let budget = Arc::new(AtomicU64::new(phase.queries));
    let cpu0 = own_cpu_time();
    let t0 = Instant::now();
    let deadline = t0 + phase.duration;
    let mut tasks = Vec::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let target = Arc::clone(target);
        let params = Arc::clone(params);
        let budget = Arc::clone(&budget);
        let (kind, mode, query_timeout) = (phase.kind, phase.mode, phase.query_timeout);
        let mut rng = Rng::new(phase.seed.wrapping_add(i as u64));
        tasks.push(tokio::spawn(async move {
            client_loop(
                kind,
                mode,
                conn,
                &target,
                &params,
                &mut rng,
                &budget,
                deadline,
                query_timeout,
            )
            .await
        }));
    }
    let mut all = setup;
    for t in tasks {
        match t.await {
            Ok(r) => {
                all.latencies_us.extend(r.latencies_us);
                all.ok += r.ok;
                all.matches += r.matches;
                all.ff01 += r.ff01;
                all.errors += r.errors;
                for s in r.samples {
                    if all.samples.len() < 5 && !all.samples.contains(&s) {
                        all.samples.push(s);
                    }
                }
            }
            Err(e) => all.error(format!("client task: {e}")),
        }
    }
    let wall = t0.elapsed().as_secs_f64().max(1e-9);
    let cpu = own_cpu_time().saturating_sub(cpu0).as_secs_f64();
    let latency = summarize(&mut all.latencies_us);
    PhaseReport {
        query: phase.kind.name().to_string(),
        clients: phase.clients,
        mode: phase.mode.name().to_string(),
        wall_s: wall,
        queries_ok: all.ok,
        errors: all.errors,
        error_samples: all.samples,
        qps: all.ok as f64 / wall,
        latency_ms: latency,
        matches_mean: if all.ok > 0 {
            all.matches as f64 / all.ok as f64
        } else {
            0.0
        },
        items_per_s: all.matches as f64 / wall,
        pending_ff01: all.ff01,
        loadgen_cpu_share: cpu / wall,
    }
}

async fn query_once(
    conn: &mut Option<Connection>,
    target: &Target,
    identifier: &[u8],
) -> Result<FindOutcome, ClientError> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(Connection::open(target).await?),
    };
    c.find(identifier).await
}

#[allow(clippy::too_many_arguments)]
async fn client_loop(
    kind: QueryKind,
    mode: Mode,
    mut conn: Option<Connection>,
    target: &Target,
    params: &QueryParams,
    rng: &mut Rng,
    budget: &AtomicU64,
    deadline: Instant,
    query_timeout: Duration,
) -> ClientResult {
    let mut r = ClientResult::default();
    while Instant::now() < deadline {
        if budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1))
            .is_err()
        {
            break;
        }
        let Some(identifier) = build(kind, params, rng) else {
            r.error("no identifier".into());
            break;
        };
        let started = Instant::now();
        let result =
            tokio::time::timeout(query_timeout, query_once(&mut conn, target, &identifier)).await;
        let elapsed = started.elapsed();
        match result {
            Ok(Ok(outcome)) if outcome.status == 0x0000 => {
                r.ok += 1;
                r.matches += outcome.matches;
                r.ff01 += outcome.pending_ff01;
                r.latencies_us
                    .push(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
            }
            Ok(Ok(outcome)) => r.error(format!("final status {:04X}", outcome.status)),
            Ok(Err(e)) => {
                r.error(e.to_string());
                conn = None;
                // Do not spin on a server that refuses.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => {
                r.error(format!(
                    "no final response within {:.0} s",
                    query_timeout.as_secs_f64()
                ));
                conn = None;
            }
        }
        if mode == Mode::Fresh
            && let Some(c) = conn.take()
        {
            let _ = tokio::time::timeout(query_timeout, c.release()).await;
        }
    }
    if let Some(c) = conn {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.release()).await;
    }
    r
}
