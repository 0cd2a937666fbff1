//! One size of the benchmark: the fakes, each server loaded its own way, then rounds of
//! `mwl-loadgen` against every server while its CPU and memory are sampled.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use mwl_bench::procfs::{self, TreeMeter};
use mwl_bench::stats::LoadReport;

use crate::args::{AE, Args, BUSY_STATION, STATION};
use crate::configs::{PYLANTIR_LAUNCHER, mwlbridge_config, pylantir_config, split};
use crate::machine::today;
use crate::procs::{Proc, env_credentials, free_port, wait_port};
use crate::results::{Run, ServerInfo, ServerKind, SizeResult};

/// A server listening for the load.
pub(crate) struct Server {
    pub(crate) kind: ServerKind,
    pub(crate) proc: Proc,
    pub(crate) port: u16,
}

/// Measures every server of `servers` at `n` bookings, in `work_dir/n<N>`.
pub(crate) fn run_size(
    args: &Args,
    work_dir: &Path,
    n: usize,
    servers: &[ServerKind],
) -> anyhow::Result<SizeResult> {
    let dir = work_dir.join(format!("n{n}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let groups = split(n, args.per_source);
    let mut result = SizeResult {
        n,
        sources: groups.len(),
        ..SizeResult::default()
    };
    let (fakes, urls) = start_fakes(args, &dir, &groups)?;
    let loaded = sync_mwlbridge(args, &dir, &urls)?;
    result.offered = loaded.offered;
    result.today_station_items = loaded.today_station;
    result.busy_station_items = Some(loaded.busy_station);
    result.days = loaded.days;
    let mut running: Vec<Server> = Vec::new();
    for &kind in servers {
        let (info, server) = load_server(args, kind, n, &dir, &urls, &loaded);
        let info = info?;
        running.extend(server);
        result.servers.insert(kind, info);
    }
    // Every server is loaded: the fakes are no longer needed.
    drop(fakes);
    for &kind in servers {
        if result
            .servers
            .get(&kind)
            .is_some_and(|i| i.skipped.is_some())
        {
            continue;
        }
        running.extend(start_server(args, kind, &dir)?);
    }
    running.sort_by_key(|s| s.kind);
    std::thread::sleep(Duration::from_secs(1));
    for server in &mut running {
        warm_up(args, server, &loaded.ids_file, &dir)?;
    }
    if servers.contains(&ServerKind::Replay) {
        let (info, server) = start_replay(args, &running, &dir, &loaded.ids_file)?;
        running.extend(server);
        result.servers.insert(ServerKind::Replay, info);
    }
    record_memory(&mut running, &mut result, Moment::AfterWarmUp);
    for round in 1..=args.rounds {
        for server in &mut running {
            for query in &args.mix {
                let run = load_run(args, server, query, round, &loaded.ids_file, &dir)?;
                eprintln!(
                    "round {round} {:<9} {:<22} {:>9.1} q/s  p99 {:>9.2} ms  {:>7.1} matches/q  {} errors  server CPU {:.2} ms/q",
                    server.kind.label(),
                    run.phase.query,
                    run.phase.qps,
                    run.phase.latency_ms.p99,
                    run.phase.matches_mean,
                    run.phase.errors,
                    run.server_cpu_ms / run.phase.queries_ok.max(1) as f64,
                );
                result.runs.push(run);
            }
        }
    }
    record_memory(&mut running, &mut result, Moment::AfterLoad);
    for server in &mut running {
        server.proc.stop();
    }
    Ok(result)
}

/// Starts one fake Calpendo per group of bookings; the fakes and their URLs.
fn start_fakes(
    args: &Args,
    dir: &Path,
    groups: &[usize],
) -> anyhow::Result<(Vec<Proc>, Vec<String>)> {
    let mut fakes = Vec::new();
    let mut urls = Vec::new();
    for (i, &count) in groups.iter().enumerate() {
        let port = free_port()?;
        // Only the first fake has the busy console: its day is the same at every size.
        let busy = if i == 0 { args.busy_today } else { 0 };
        let mut p = Proc::spawn(
            "calpendo-fake",
            Command::new(args.bin_dir.join("calpendo-fake"))
                .arg("--synthetic")
                .arg(count.to_string())
                .arg("--busy-today")
                .arg(busy.to_string())
                .arg("--seed")
                .arg((i + 1).to_string())
                .arg("--bind")
                .arg(format!("127.0.0.1:{port}")),
            &dir.join(format!("calpendo-fake-{}.log", i + 1)),
        )?;
        wait_port(port, &mut p, Duration::from_secs(60))?;
        urls.push(format!("http://127.0.0.1:{port}"));
        fakes.push(p);
    }
    Ok((fakes, urls))
}

/// mwlbridge's database after its sync, and what the other servers are loaded from.
struct Loaded {
    /// The config with the sources enabled (sync and export).
    sync_cfg: PathBuf,
    /// Seconds `mwlbridge sync --once` took.
    sync_s: f64,
    /// Entries offered to consoles.
    offered: u64,
    /// Today's items of the benchmark station.
    today_station: u64,
    /// Today's items of the busy station.
    busy_station: u64,
    /// Days the entries span.
    days: usize,
    /// The offered entries' PatientIDs, one a line (for `patient-id`).
    ids_file: PathBuf,
}

/// Writes mwlbridge's configs (sources enabled for the sync, disabled for serving) and
/// runs the real sync into a fresh database.
fn sync_mwlbridge(args: &Args, dir: &Path, urls: &[String]) -> anyhow::Result<Loaded> {
    let sync_cfg = dir.join("sync.toml");
    std::fs::write(&sync_cfg, mwlbridge_config(dir, urls, true))?;
    std::fs::write(dir.join("serve.toml"), mwlbridge_config(dir, urls, false))?;
    let t = Instant::now();
    let out = env_credentials(
        Command::new(args.bin_dir.join("mwlbridge"))
            .args(["--log-level", "warn", "sync", "--once", "--config"])
            .arg(&sync_cfg),
    )
    .output()?;
    if !out.status.success() {
        bail!(
            "mwlbridge sync failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let sync_s = t.elapsed().as_secs_f64();
    eprintln!("mwlbridge sync --once: {sync_s:.1} s");
    let facts = store_facts(&dir.join("worklist.db"))?;
    let (stored, offered, today_station, busy_station, days) = (
        facts.stored,
        facts.offered,
        facts.today_station,
        facts.busy_station,
        facts.days,
    );
    let ids = facts.patient_ids;
    let ids_file = dir.join("patient-ids.txt");
    std::fs::write(&ids_file, ids.join("\n") + "\n")?;
    eprintln!(
        "{stored} entries ({offered} offered) over {days} days; {today_station} for {STATION} \
         today, {busy_station} for {BUSY_STATION}"
    );
    if today_station == 0 {
        eprintln!("warning: no item for {STATION} today: today-station-modality finds nothing");
    }
    Ok(Loaded {
        sync_cfg,
        sync_s,
        offered,
        today_station,
        busy_station,
        days,
        ids_file,
    })
}

/// Loads one server its own way (mwlbridge: already synced; wlmscpfs: `mwlbridge
/// export`; Pylantir: its own sync, which also starts it), or says why it is skipped.
fn load_server(
    args: &Args,
    kind: ServerKind,
    n: usize,
    dir: &Path,
    urls: &[String],
    loaded: &Loaded,
) -> (anyhow::Result<ServerInfo>, Option<Server>) {
    let mut info = ServerInfo::default();
    match kind {
        ServerKind::Mwlbridge => {
            info.load_s = Some(loaded.sync_s);
            info.items = Some(loaded.offered);
        }
        // Started after the others' warm-up, from mwlbridge's answers.
        ServerKind::Replay => {}
        ServerKind::Wlmscpfs if n > args.wlmscpfs_max => {
            info.skipped = Some(format!("above --wlmscpfs-max {}", args.wlmscpfs_max));
        }
        ServerKind::Wlmscpfs => {
            return (export_for_wlmscpfs(args, dir, loaded), None);
        }
        ServerKind::Pylantir => {
            if let Some(why) = &args.pylantir_unavailable {
                info.skipped = Some(why.clone());
            } else if !args.pylantir_python.exists() {
                info.skipped = Some(format!("{} not found", args.pylantir_python.display()));
            } else if n > args.pylantir_max {
                info.skipped = Some(format!("above --pylantir-max {}", args.pylantir_max));
            } else {
                match start_pylantir(args, dir, urls) {
                    Ok((server, load_s, items)) => {
                        info.load_s = Some(load_s);
                        info.items = Some(items);
                        return (Ok(info), Some(server));
                    }
                    Err(e) => {
                        eprintln!("Pylantir skipped: {e:#}");
                        info.skipped = Some(format!("could not be loaded: {e}"));
                    }
                }
            }
        }
    }
    (Ok(info), None)
}

/// `mwlbridge export` of the synced database into wlmscpfs's directory of our AE title.
fn export_for_wlmscpfs(args: &Args, dir: &Path, loaded: &Loaded) -> anyhow::Result<ServerInfo> {
    let wl = dir.join("wlmscpfs").join(AE);
    let t = Instant::now();
    let out = Command::new(args.bin_dir.join("mwlbridge"))
        .args(["--log-level", "warn", "export", "--config"])
        .arg(&loaded.sync_cfg)
        .arg("--dir")
        .arg(&wl)
        .env_remove("MWLBRIDGE_CONFIG")
        .output()?;
    if !out.status.success() {
        bail!(
            "mwlbridge export failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(ServerInfo {
        load_s: Some(t.elapsed().as_secs_f64()),
        items: Some(
            std::fs::read_dir(&wl)?
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "wl"))
                .count() as u64,
        ),
        ..ServerInfo::default()
    })
}

/// Starts mwlbridge (sources disabled: no sync during the load) or wlmscpfs and waits
/// until it listens; Pylantir already runs since its load.
fn start_server(args: &Args, kind: ServerKind, dir: &Path) -> anyhow::Result<Option<Server>> {
    let port = free_port()?;
    let mut proc = match kind {
        ServerKind::Mwlbridge => Proc::spawn(
            "mwlbridge serve",
            env_credentials(
                Command::new(args.bin_dir.join("mwlbridge"))
                    .args(["--log-level", "warn", "serve", "--config"])
                    .arg(dir.join("serve.toml"))
                    .args(["--bind", "127.0.0.1", "--port", &port.to_string()]),
            ),
            &dir.join("mwlbridge-serve.log"),
        )?,
        // Default (forking) mode: one child process per association, as sites run it;
        // -q: no per-file warnings (they would cost it log writes).
        ServerKind::Wlmscpfs => Proc::spawn(
            "wlmscpfs",
            Command::new("wlmscpfs")
                .args(["-q", "-dhl", "--keep-char-set", "-dfp"])
                .arg(dir.join("wlmscpfs"))
                .arg(port.to_string()),
            &dir.join("wlmscpfs.log"),
        )?,
        // Pylantir runs since its load; the replay starts after the warm-up.
        ServerKind::Pylantir | ServerKind::Replay => return Ok(None),
    };
    wait_port(port, &mut proc, Duration::from_secs(60))?;
    Ok(Some(Server { kind, proc, port }))
}

/// When [`record_memory`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    /// After the warm-up, before the rounds.
    AfterWarmUp,
    /// After the last round.
    AfterLoad,
}

/// Seconds the servers idle before their memory is read: tokio's idle blocking threads
/// exit after 10 s.
pub(crate) const SETTLE_S: u64 = 12;

/// Records each server's memory, idle and settled, after the warm-up or after the load
/// (then also its peaks).
fn record_memory(running: &mut [Server], result: &mut SizeResult, moment: Moment) {
    std::thread::sleep(Duration::from_secs(SETTLE_S));
    for server in running {
        let pid = server.proc.pid();
        let info = result.servers.entry(server.kind).or_default();
        let idle = Some(
            procfs::tree(pid)
                .into_iter()
                .filter_map(|p| procfs::status_kib(p, "VmRSS"))
                .sum(),
        );
        if moment == Moment::AfterWarmUp {
            info.warm_idle_rss_kib = idle;
            continue;
        }
        info.idle_rss_kib = idle;
        info.vmhwm_kib = procfs::status_kib(pid, "VmHWM");
        info.peak_load_rss_kib = result
            .runs
            .iter()
            .filter(|r| r.server == server.kind)
            .map(|r| r.peak_tree_rss_kib)
            .max();
    }
}

/// `mwl-loadgen` against `port` with the benchmark's stations, PatientIDs and timeout.
fn loadgen(args: &Args, port: u16, mix: &str, ids_file: &Path) -> Command {
    let mut cmd = Command::new(args.bin_dir.join("mwl-loadgen"));
    cmd.args(["--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .args(["--called-ae", AE, "--station", STATION, "--mix", mix])
        .args(["--busy-station", BUSY_STATION])
        .arg("--query-timeout")
        .arg(args.query_timeout.to_string())
        .arg("--patient-ids")
        .arg(ids_file)
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to its end, its output in `dir/<name>.log`; fails with the log's tail.
fn run_logged(mut cmd: Command, name: &str, dir: &Path) -> anyhow::Result<()> {
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log)?;
    let status = cmd
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out))
        .status()
        .with_context(|| format!("starting {name}"))?;
    if !status.success() {
        bail!(
            "{name} failed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    Ok(())
}

/// Warm-up: every query of the mix, 1 client, [`WARM_UP_QUERIES`] each.
fn warm_up(args: &Args, server: &Server, ids_file: &Path, dir: &Path) -> anyhow::Result<()> {
    let mut cmd = loadgen(args, server.port, &args.mix.join(","), ids_file);
    // --duration bounds it for a slow server (Pylantir's queries take seconds).
    cmd.args([
        "--clients",
        "1",
        "--queries",
        WARM_UP_QUERIES,
        "--duration",
        "2",
    ]);
    let name = format!("warm-up-{}", server.kind.label().to_lowercase());
    run_logged(cmd, &name, dir)
}

/// Queries of each kind in the warm-up.
const WARM_UP_QUERIES: &str = "20";

/// Records mwlbridge's answers to every query of the mix (`mwl-loadgen --record`; every
/// PatientID for `patient-id`), then starts `mwl-replay` with them.
fn start_replay(
    args: &Args,
    running: &[Server],
    dir: &Path,
    ids_file: &Path,
) -> anyhow::Result<(ServerInfo, Option<Server>)> {
    let Some(source) = running.iter().find(|s| s.kind == ServerKind::Mwlbridge) else {
        let info = ServerInfo {
            skipped: Some("needs mwlbridge to record its answers".into()),
            ..ServerInfo::default()
        };
        return Ok((info, None));
    };
    let recording = dir.join("replay.rec");
    let mut cmd = loadgen(args, source.port, &args.mix.join(","), ids_file);
    cmd.arg("--record").arg(&recording);
    let t = Instant::now();
    run_logged(cmd, "replay-record", dir)?;
    let load_s = t.elapsed().as_secs_f64();
    let port = free_port()?;
    let mut proc = Proc::spawn(
        "mwl-replay",
        Command::new(args.bin_dir.join("mwl-replay"))
            .arg("--recording")
            .arg(&recording)
            .arg("--port")
            .arg(port.to_string()),
        &dir.join("mwl-replay.log"),
    )?;
    wait_port(port, &mut proc, Duration::from_secs(60))?;
    let info = ServerInfo {
        load_s: Some(load_s),
        ..ServerInfo::default()
    };
    let server = Server {
        kind: ServerKind::Replay,
        proc,
        port,
    };
    Ok((info, Some(server)))
}

/// What the synced store holds.
pub(crate) struct StoreFacts {
    pub(crate) stored: u64,
    pub(crate) offered: u64,
    /// Today's offered MR items of [`STATION`].
    pub(crate) today_station: u64,
    /// Today's offered MR items of [`BUSY_STATION`].
    pub(crate) busy_station: u64,
    /// Days the entries span.
    pub(crate) days: usize,
    /// The offered entries' PatientIDs, sorted, once each.
    pub(crate) patient_ids: Vec<String>,
}

/// Stored entries, offered entries, today's items of the benchmark stations, days
/// spanned, and the offered entries' PatientIDs.
pub(crate) fn store_facts(db: &Path) -> anyhow::Result<StoreFacts> {
    use worklist_store::{EntryFilter, StepStatus, Store};
    let store = Store::open(db)?;
    let stored = store.count()?;
    let all = store.list(&EntryFilter::default())?;
    let day = today();
    let offered: Vec<_> = all
        .iter()
        .map(|s| &s.entry)
        .filter(|e| matches!(e.status, StepStatus::Scheduled | StepStatus::Started))
        .collect();
    let today_on = |station: &str| {
        offered
            .iter()
            .filter(|e| {
                e.start.date() == day
                    && e.station_ae_title.as_deref() == Some(station)
                    && e.modality.as_deref() == Some("MR")
            })
            .count() as u64
    };
    let days = all
        .iter()
        .map(|s| s.entry.start.date())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut ids: Vec<String> = offered.iter().map(|e| e.patient_id.clone()).collect();
    ids.sort();
    ids.dedup();
    Ok(StoreFacts {
        stored,
        offered: offered.len() as u64,
        today_station: today_on(STATION),
        busy_station: today_on(BUSY_STATION),
        days,
        patient_ids: ids,
    })
}

pub(crate) fn start_pylantir(
    args: &Args,
    dir: &Path,
    urls: &[String],
) -> anyhow::Result<(Server, f64, u64)> {
    // Its own directory: Pylantir writes its database (and may create others) there.
    let dir = &dir.join("pylantir");
    std::fs::create_dir_all(dir)?;
    let launcher = dir.join("pylantir_launch.py");
    std::fs::write(&launcher, PYLANTIR_LAUNCHER)?;
    let config = dir.join("pylantir.json");
    std::fs::write(&config, pylantir_config(dir, urls)?)?;
    let port = free_port()?;
    let log = dir.join("pylantir.log");
    let t = Instant::now();
    let mut proc = Proc::spawn(
        "pylantir",
        env_credentials(
            Command::new(&args.pylantir_python)
                .arg(&launcher)
                .args(["start", "--AEtitle", AE, "--ip", "127.0.0.1", "--port"])
                .arg(port.to_string())
                .arg("--pylantir_config")
                .arg(&config)
                .current_dir(dir)
                .env("DB_PATH", dir.join("pylantir.db"))
                .env("PYTHONUNBUFFERED", "1"),
        ),
        &log,
    )?;
    wait_port(port, &mut proc, Duration::from_secs(120))?;
    let deadline = t + Duration::from_secs(args.pylantir_load_timeout);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let done = text.matches("Sync completed successfully").count();
        if done >= urls.len() {
            break;
        }
        for bad in [
            "Sync error",
            "Database error",
            "Plugin error",
            "Configuration validation failed",
            "Unexpected error",
        ] {
            if text.contains(bad) {
                bail!("Pylantir's sync failed ({bad}):\n{}", proc.log_tail());
            }
        }
        if proc.exited() {
            bail!("Pylantir exited:\n{}", proc.log_tail());
        }
        if Instant::now() > deadline {
            bail!(
                "its sync did not finish within {} s",
                args.pylantir_load_timeout
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let load_s = t.elapsed().as_secs_f64();
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("pylantir.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let items: u64 = conn.query_row(
        "SELECT count(*) FROM worklist_items WHERE performed_procedure_step_status \
         IN ('SCHEDULED', 'IN_PROGRESS', 'DISCONTINUED')",
        [],
        |r| r.get(0),
    )?;
    eprintln!("Pylantir loaded {items} items in {load_s:.1} s");
    Ok((
        Server {
            kind: ServerKind::Pylantir,
            proc,
            port,
        },
        load_s,
        items,
    ))
}

pub(crate) fn load_run(
    args: &Args,
    server: &mut Server,
    query: &str,
    round: usize,
    ids_file: &Path,
    dir: &Path,
) -> anyhow::Result<Run> {
    let out_path = dir.join(format!(
        "loadgen-{}-{query}-{round}.json",
        server.kind.label().to_lowercase()
    ));
    let out = std::fs::File::create(&out_path)?;
    let err_path = out_path.with_extension("err");
    let err = std::fs::File::create(&err_path)?;
    let busy0 = procfs::machine_busy_ticks().unwrap_or(0);
    let window = Instant::now();
    let mut meter = TreeMeter::start(server.proc.pid());
    let mut child = loadgen(args, server.port, query, ids_file)
        .arg("--clients")
        .arg(args.clients.to_string())
        .arg("--duration")
        .arg(args.seconds.to_string())
        .arg("--seed")
        .arg(round.to_string())
        .arg("--json")
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .context("starting mwl-loadgen")?;
    let limit =
        Instant::now() + Duration::from_secs_f64(args.seconds + 2.0 * args.query_timeout + 60.0);
    let status = loop {
        meter.sample();
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "mwl-loadgen did not finish in time against {}",
                server.kind.label()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let the server finish (a forking server's children exit after the release).
    std::thread::sleep(Duration::from_millis(500));
    meter.sample();
    let window_s = window.elapsed().as_secs_f64();
    let machine_busy_s = procfs::ticks_to_duration(
        procfs::machine_busy_ticks()
            .unwrap_or(0)
            .saturating_sub(busy0),
    )
    .as_secs_f64();
    if !status.success() {
        bail!(
            "mwl-loadgen failed against {}: {}",
            server.kind.label(),
            std::fs::read_to_string(&err_path).unwrap_or_default()
        );
    }
    let report: LoadReport = serde_json::from_str(&std::fs::read_to_string(&out_path)?)
        .with_context(|| format!("reading {}", out_path.display()))?;
    let phase = report
        .phases
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("empty loadgen report"))?;
    if server.proc.exited() {
        bail!(
            "{} exited during the load:\n{}",
            server.kind.label(),
            server.proc.log_tail()
        );
    }
    Ok(Run {
        server: server.kind,
        round,
        phase,
        server_cpu_ms: meter.cpu().as_secs_f64() * 1000.0,
        peak_tree_rss_kib: meter.peak_tree_rss_kib,
        window_s,
        machine_busy_s,
    })
}
