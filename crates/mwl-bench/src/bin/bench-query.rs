//! Query benchmark: the same worklist served by `mwlbridge serve`, by DCMTK `wlmscpfs`
//! (from `mwlbridge export` files) and by Pylantir (through its own Calpendo sync), all
//! fed from `calpendo-fake --synthetic`, queried with `mwl-loadgen` in interleaved
//! rounds. Run by `scripts/bench.sh`, which installs the peers and builds the binaries.
//!
//! For each size N: start ⌈N / per-source⌉ fakes (each `calpendo-fake --synthetic n
//! --seed g`: about 37 bookings a day from today on, so 10,000 span ~280 days, inside
//! mwlbridge's 366-day window) and one Calpendo source per fake; `mwlbridge sync --once`
//! into a fresh database; `mwlbridge export` for wlmscpfs; Pylantir's own sync; then
//! the servers, and rounds of `mwl-loadgen` runs (one per server and query: A B C A B C)
//! while this program samples each server's CPU time and memory from `/proc`.
//! Writes the results as JSON, a Markdown section (optionally into docs/benchmarks.md
//! between markers) and a gnuplot plot.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use mwl_bench::procfs::{self, TreeMeter};
use mwl_bench::stats::{LoadReport, PhaseReport};
use serde::{Deserialize, Serialize};

/// Query benchmark of mwlbridge against wlmscpfs and Pylantir.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Worklist sizes (bookings).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<usize>,
    /// Seconds of load per server, query and round.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Rounds (each runs every server once, in turn).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Concurrent clients of every query but `universal` (1 client).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Queries, in the order run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "today-station-modality,patient-id,universal"
    )]
    mix: Vec<String>,
    /// Servers to measure.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "mwlbridge,wlmscpfs,pylantir"
    )]
    servers: Vec<String>,
    /// Directory of mwlbridge, calpendo-fake and mwl-loadgen.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Working directory (databases, worklist files, logs, results).
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
    /// Python of the Pylantir virtual environment.
    #[arg(long, default_value = "target/bench/pylantir-venv/bin/python")]
    pylantir_python: PathBuf,
    /// Why Pylantir is not available (set by bench.sh when its installation failed).
    #[arg(long)]
    pylantir_unavailable: Option<String>,
    /// Largest size Pylantir is measured at.
    #[arg(long, default_value_t = 10_000)]
    pylantir_max: usize,
    /// Largest size wlmscpfs is measured at.
    #[arg(long, default_value_t = 100_000)]
    wlmscpfs_max: usize,
    /// Seconds Pylantir's initial sync may take.
    #[arg(long, default_value_t = 600)]
    pylantir_load_timeout: u64,
    /// Bookings per fake Calpendo (and per source): at ~37 bookings a day, 10,000 span
    /// ~280 days, inside the 366-day sync window.
    #[arg(long, default_value_t = 10_000)]
    per_source: usize,
    /// Seconds one query may take before it counts as an error.
    #[arg(long, default_value_t = 180.0)]
    query_timeout: f64,
    /// Markdown file whose query-benchmark section (between markers) is replaced.
    #[arg(long)]
    doc: Option<PathBuf>,
    /// PNG plot of today-station-modality queries/s against N (needs gnuplot).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// The command line to show in the document.
    #[arg(long, default_value = "scripts/bench.sh")]
    command_line: String,
    /// Measure nothing: write the report, plot and document from the results of an
    /// earlier run (its query-results.json).
    #[arg(long)]
    from_json: Option<PathBuf>,
}

const AE: &str = "MWLBRIDGE";
const STATION: &str = "MRI_DIAG_01";
const BEGIN: &str = "<!-- BEGIN query-benchmark: written by scripts/bench.sh (crates/mwl-bench/src/bin/bench-query.rs); edit there -->";
const END: &str = "<!-- END query-benchmark -->";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ServerKind {
    Mwlbridge,
    Wlmscpfs,
    Pylantir,
}

impl ServerKind {
    fn parse(s: &str) -> anyhow::Result<ServerKind> {
        match s {
            "mwlbridge" => Ok(ServerKind::Mwlbridge),
            "wlmscpfs" => Ok(ServerKind::Wlmscpfs),
            "pylantir" => Ok(ServerKind::Pylantir),
            other => bail!("unknown server {other:?} (mwlbridge, wlmscpfs, pylantir)"),
        }
    }
    fn label(self) -> &'static str {
        match self {
            ServerKind::Mwlbridge => "mwlbridge",
            ServerKind::Wlmscpfs => "wlmscpfs",
            ServerKind::Pylantir => "Pylantir",
        }
    }
}

/// A child process, stopped (SIGTERM, then SIGKILL after 10 s) when dropped.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command, log: &Path) -> anyhow::Result<Proc> {
        let out = std::fs::File::create(log).with_context(|| format!("{}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn stop(&mut self) {
        if self.exited() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.exited() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop on SIGTERM: killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

fn wait_port(port: u16, proc: &mut Proc, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if proc.exited() {
            bail!("{} exited:\n{}", proc.name, proc.log_tail());
        }
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} does not listen on {port}:\n{}",
                proc.name,
                proc.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One loadgen run against one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Run {
    server: ServerKind,
    round: usize,
    phase: PhaseReport,
    /// Server CPU time (process tree) over the run, in ms.
    server_cpu_ms: f64,
    /// Largest sum of VmRSS over the server's processes during the run, KiB.
    peak_tree_rss_kib: u64,
    /// Seconds from the loadgen's start to the last sample (the CPU window).
    window_s: f64,
    /// CPU time of the whole machine over that window, in seconds (all processes).
    machine_busy_s: f64,
}

/// One server at one size.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ServerInfo {
    /// Why it was not measured.
    skipped: Option<String>,
    /// Seconds to load the items (mwlbridge: sync --once; wlmscpfs: export; Pylantir:
    /// its first sync).
    load_s: Option<f64>,
    /// Items it holds.
    items: Option<u64>,
    /// VmHWM of the main process after the runs, KiB.
    vmhwm_kib: Option<u64>,
    /// Largest sampled VmRSS sum of the process tree during the runs, KiB.
    peak_load_rss_kib: Option<u64>,
    /// VmRSS sum of the process tree after the runs, settled, KiB.
    idle_rss_kib: Option<u64>,
}

/// Everything measured at one size.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SizeResult {
    n: usize,
    sources: usize,
    days: usize,
    /// Items offered to consoles by mwlbridge (scheduled / started).
    offered: u64,
    /// Items of today-station-modality in mwlbridge's store.
    today_station_items: u64,
    servers: BTreeMap<ServerKind, ServerInfo>,
    runs: Vec<Run>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Results {
    date: String,
    machine: String,
    versions: Vec<String>,
    seconds: f64,
    rounds: usize,
    clients: usize,
    mix: Vec<String>,
    sizes: Vec<SizeResult>,
    notes: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(args.seconds > 0.0 && args.seconds <= 600.0) {
        bail!("--seconds must be in (0, 600]");
    }
    if args.rounds == 0 || args.rounds > 20 {
        bail!("--rounds must be 1..=20");
    }
    let servers: Vec<ServerKind> = args
        .servers
        .iter()
        .map(|s| ServerKind::parse(s.trim()))
        .collect::<Result<_, _>>()?;
    for bin in ["mwlbridge", "calpendo-fake", "mwl-loadgen"] {
        let p = args.bin_dir.join(bin);
        if !p.exists() {
            bail!(
                "{} not found: build it first (cargo build --release -p mwlbridge -p mwl-bench -p calpendo-fake)",
                p.display()
            );
        }
    }
    std::fs::create_dir_all(&args.work_dir)?;
    let work_dir = std::fs::canonicalize(&args.work_dir)?;
    if let Some(path) = &args.from_json {
        let results: Results = serde_json::from_str(
            &std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?,
        )?;
        return report(&args, &results, &work_dir);
    }
    let mut results = Results {
        date: today().to_string(),
        machine: machine(),
        versions: versions(&args),
        seconds: args.seconds,
        rounds: args.rounds,
        clients: args.clients,
        mix: args.mix.clone(),
        ..Results::default()
    };
    let started = Instant::now();
    let load_before = procfs::loadavg();
    for &n in &args.sizes {
        eprintln!("== {n} items ==");
        let r = run_size(&args, &work_dir, n, &servers)?;
        let json = work_dir.join(format!("query-{n}.json"));
        std::fs::write(&json, serde_json::to_string_pretty(&r)?)?;
        results.sizes.push(r);
    }
    results.notes.push(format!(
        "Whole run: {:.1} min. Load average (1, 5, 15 min) before: {load_before}; after: {}. \
         The machine is shared: \"other processes\" is the CPU the rest of the machine used \
         during the runs (from /proc/stat), which the servers did not get.",
        started.elapsed().as_secs_f64() / 60.0,
        procfs::loadavg()
    ));
    std::fs::write(
        work_dir.join("query-results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    report(&args, &results, &work_dir)
}

/// Writes the plot, the Markdown section (printed, and into the document).
fn report(args: &Args, results: &Results, work_dir: &Path) -> anyhow::Result<()> {
    let plot_name = args.plot.as_ref().and_then(|p| {
        let ok = plot(results, p, work_dir)
            .map_err(|e| eprintln!("no plot: {e:#}"))
            .is_ok();
        ok.then(|| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .flatten()
    });
    let section = markdown(results, args, plot_name.as_deref());
    std::fs::write(work_dir.join("query-benchmark.md"), &section)?;
    println!("{section}");
    if let Some(doc) = &args.doc {
        update_doc(doc, &section)?;
        eprintln!("updated {}", doc.display());
    }
    Ok(())
}

fn today() -> jiff::civil::Date {
    let tz = jiff::tz::TimeZoneDatabase::bundled()
        .get("America/Edmonton")
        .unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::now().to_zoned_datetime(tz).date()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|s| s.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {cores} cores, {:.0} GiB, Linux {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::piped()).output().ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

fn versions(args: &Args) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(l) = first_line(Command::new(args.bin_dir.join("mwlbridge")).arg("--version")) {
        let built = std::fs::metadata(args.bin_dir.join("mwlbridge"))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| jiff::Timestamp::try_from(t).ok())
            .map(|t| format!(", binary built {}", t.strftime("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default();
        let head = first_line(Command::new("git").args(["rev-parse", "--short", "HEAD"]));
        let dirty = Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty());
        let source = head.map_or(String::new(), |h| {
            format!(
                " from {h}{}",
                if dirty { " + uncommitted changes" } else { "" }
            )
        });
        v.push(format!("{l}{source}{built}"));
    }
    if let Some(l) = first_line(Command::new("wlmscpfs").arg("--version")) {
        v.push(l.trim_matches('$').trim().to_string());
    }
    if args.pylantir_python.exists()
        && let Some(l) = first_line(Command::new(&args.pylantir_python).args([
            "-c",
            "import sys, importlib.metadata as m; print('Pylantir', m.version('pylantir'), 'on Python', sys.version.split()[0])",
        ]))
    {
        v.push(l);
    }
    v
}

/// Splits `n` bookings over ⌈n / per_source⌉ sources.
fn split(n: usize, per_source: usize) -> Vec<usize> {
    let groups = n.div_ceil(per_source.max(1)).max(1);
    (0..groups)
        .map(|g| n / groups + usize::from(g < n % groups))
        .collect()
}

fn mwlbridge_config(dir: &Path, urls: &[String], enabled: bool) -> String {
    let mut s = format!(
        r#"# Written by bench-query.
[server]
ae_title = "{AE}"
max_associations = 64

[admin]
enabled = false

[store]
path = "{db}"
retention_days = 30

[site]
timezone = "America/Edmonton"
"#,
        db = dir.join("worklist.db").display()
    );
    for (i, url) in urls.iter().enumerate() {
        let g = i + 1;
        let _ = write!(
            s,
            r#"
[[sources]]
name = "calpendo{g:02}"
type = "calpendo"
enabled = {enabled}
base_url = "{url}"
resources = ["3T", "EEG", "Mock"]
resource_modality_mapping = {{ "3T" = "MR", "EEG" = "EEG", "Mock" = "OT" }}
station_aet_mapping = {{ "3T Diagnostic" = "MRI_DIAG_{g:02}", "3T Research" = "MRI_RES_{g:02}", "EEG" = "EEG_{g:02}", "Mock" = "MOCK_{g:02}" }}
window_future_days = 366
max_workers = 32
sync_interval = 86400
sync_deadline = 3600

[sources.field_mapping]
patient_id = {{ source_field = "title", _extract = {{ pattern = "^([A-Za-z0-9]+)_", group = 1 }} }}
patient_name = {{ source_field = "title", _extract = {{ pattern = "^[A-Za-z0-9]+_([^_]+)_(.+)$", template = "$1^$2" }} }}
"#
        );
    }
    s
}

fn pylantir_config(dir: &Path, urls: &[String]) -> anyhow::Result<String> {
    let sources: Vec<serde_json::Value> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            serde_json::json!({
                "name": format!("calpendo{:02}", i + 1),
                "type": "calpendo",
                "enabled": true,
                "sync_interval": 86400,
                "config": {
                    "base_url": url,
                    "api_path": "/webdav",
                    "resources": ["3T Diagnostic", "3T Research", "EEG Lab Room A", "Mock Scanner"],
                    "timezone": "America/Edmonton",
                    "resource_modality_mapping": {"3T": "MR", "EEG": "EEG", "Mock": "OT"}
                },
                "field_mapping": {
                    "patient_id": {"source_field": "title", "_extract": {"pattern": "^([A-Za-z0-9]+)_", "group": 1}},
                    "patient_name": {"source_field": "title", "_extract": {"pattern": "^[A-Za-z0-9]+_(.+)$", "group": 1}},
                    "study_description": {"source_field": "properties.project.formattedName", "_extract": {"pattern": "^([^(]+)", "group": 1}},
                    "accession_number": "id"
                }
            })
        })
        .collect();
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "db_path": dir.join("pylantir.db"),
        "db_echo": "False",
        "allowed_aet": [],
        "operation_interval": {"start_time": [0, 0], "end_time": [23, 59]},
        "data_sources": sources,
    }))?)
}

/// Starts Pylantir's `main()` with one change: the Calpendo fetch window (Pylantir's
/// rolling window ends 24 h after now, so it would never see the synthetic bookings of
/// the following months) spans from yesterday to ten years ahead.
const PYLANTIR_LAUNCHER: &str = r#"# Written by bench-query: `pylantir start` with a wider Calpendo fetch window.
import sys
from datetime import datetime, time, timedelta
from pylantir.data_sources import calpendo_plugin

def _window(self, now, interval):
    day = now.date()
    start = self._timezone.localize(datetime.combine(day - timedelta(days=1), time.min))
    end = self._timezone.localize(datetime.combine(day + timedelta(days=3660), time.min))
    return start, end

calpendo_plugin.CalendoPlugin._calculate_fetch_window = _window
from pylantir.cli.run import main
sys.argv[0] = "pylantir"
main()
"#;

fn env_credentials(cmd: &mut Command) -> &mut Command {
    cmd.env("CALPENDO_USERNAME", "mwlbridge")
        .env("CALPENDO_PASSWORD", "secret")
        .env_remove("MWLBRIDGE_CONFIG")
        .env("NO_COLOR", "1")
}

struct Server {
    kind: ServerKind,
    proc: Proc,
    port: u16,
}

fn run_size(
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
    // The fake Calpendos.
    let mut fakes = Vec::new();
    let mut urls = Vec::new();
    for (i, &count) in groups.iter().enumerate() {
        let port = free_port()?;
        let mut p = Proc::spawn(
            "calpendo-fake",
            Command::new(args.bin_dir.join("calpendo-fake"))
                .arg("--synthetic")
                .arg(count.to_string())
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
    // mwlbridge: the real sync into a fresh database.
    let sync_cfg = dir.join("sync.toml");
    std::fs::write(&sync_cfg, mwlbridge_config(&dir, &urls, true))?;
    let serve_cfg = dir.join("serve.toml");
    std::fs::write(&serve_cfg, mwlbridge_config(&dir, &urls, false))?;
    let mwlbridge = args.bin_dir.join("mwlbridge");
    let t = Instant::now();
    let out = env_credentials(
        Command::new(&mwlbridge)
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
    let (stored, offered, today_station, days, ids) = store_facts(&dir.join("worklist.db"))?;
    result.offered = offered;
    result.today_station_items = today_station;
    result.days = days;
    let ids_file = dir.join("patient-ids.txt");
    std::fs::write(&ids_file, ids.join("\n") + "\n")?;
    eprintln!(
        "{stored} entries ({offered} offered) over {days} days; {today_station} for {STATION} today"
    );
    if today_station == 0 {
        eprintln!("warning: no item for {STATION} today: today-station-modality finds nothing");
    }
    let mut running: Vec<Server> = Vec::new();
    for &kind in servers {
        let mut info = ServerInfo::default();
        match kind {
            ServerKind::Mwlbridge => {
                info.load_s = Some(sync_s);
                info.items = Some(offered);
            }
            ServerKind::Wlmscpfs if n > args.wlmscpfs_max => {
                info.skipped = Some(format!("above --wlmscpfs-max {}", args.wlmscpfs_max));
            }
            ServerKind::Wlmscpfs => {
                let wl = dir.join("wlmscpfs").join(AE);
                let t = Instant::now();
                let out = Command::new(&mwlbridge)
                    .args(["--log-level", "warn", "export", "--config"])
                    .arg(&sync_cfg)
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
                info.load_s = Some(t.elapsed().as_secs_f64());
                info.items = Some(
                    std::fs::read_dir(&wl)?
                        .flatten()
                        .filter(|e| e.path().extension().is_some_and(|x| x == "wl"))
                        .count() as u64,
                );
            }
            ServerKind::Pylantir => {
                if let Some(why) = &args.pylantir_unavailable {
                    info.skipped = Some(why.clone());
                } else if !args.pylantir_python.exists() {
                    info.skipped = Some(format!("{} not found", args.pylantir_python.display()));
                } else if n > args.pylantir_max {
                    info.skipped = Some(format!("above --pylantir-max {}", args.pylantir_max));
                } else {
                    match start_pylantir(args, &dir, &urls) {
                        Ok((server, load_s, items)) => {
                            info.load_s = Some(load_s);
                            info.items = Some(items);
                            running.push(server);
                        }
                        Err(e) => {
                            eprintln!("Pylantir skipped: {e:#}");
                            info.skipped = Some(format!("could not be loaded: {e}"));
                        }
                    }
                }
            }
        }
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
        match kind {
            ServerKind::Mwlbridge => {
                let port = free_port()?;
                let mut proc = Proc::spawn(
                    "mwlbridge serve",
                    env_credentials(
                        Command::new(&mwlbridge)
                            .args(["--log-level", "warn", "serve", "--config"])
                            .arg(&serve_cfg)
                            .args(["--bind", "127.0.0.1", "--port", &port.to_string()]),
                    ),
                    &dir.join("mwlbridge-serve.log"),
                )?;
                wait_port(port, &mut proc, Duration::from_secs(60))?;
                running.push(Server { kind, proc, port });
            }
            ServerKind::Wlmscpfs => {
                let port = free_port()?;
                // Default (forking) mode: one child process per association, as sites
                // run it; -q: no per-file warnings (they would cost it log writes).
                let mut proc = Proc::spawn(
                    "wlmscpfs",
                    Command::new("wlmscpfs")
                        .args(["-q", "-dhl", "--keep-char-set", "-dfp"])
                        .arg(dir.join("wlmscpfs"))
                        .arg(port.to_string()),
                    &dir.join("wlmscpfs.log"),
                )?;
                wait_port(port, &mut proc, Duration::from_secs(60))?;
                running.push(Server { kind, proc, port });
            }
            ServerKind::Pylantir => {}
        }
    }
    running.sort_by_key(|s| s.kind);
    std::thread::sleep(Duration::from_secs(1));
    for round in 1..=args.rounds {
        for server in &mut running {
            for query in &args.mix {
                let run = load_run(args, server, query, round, &ids_file, &dir)?;
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
    // Idle memory: after the load, settled (tokio's idle blocking threads exit after 10 s).
    std::thread::sleep(Duration::from_secs(12));
    for server in &mut running {
        let pid = server.proc.pid();
        let info = result.servers.entry(server.kind).or_default();
        info.vmhwm_kib = procfs::status_kib(pid, "VmHWM");
        info.idle_rss_kib = Some(
            procfs::tree(pid)
                .into_iter()
                .filter_map(|p| procfs::status_kib(p, "VmRSS"))
                .sum(),
        );
        info.peak_load_rss_kib = result
            .runs
            .iter()
            .filter(|r| r.server == server.kind)
            .map(|r| r.peak_tree_rss_kib)
            .max();
        server.proc.stop();
    }
    Ok(result)
}

/// Stored entries, offered entries, today's items of the benchmark station, days
/// spanned, and the offered entries' PatientIDs.
fn store_facts(db: &Path) -> anyhow::Result<(u64, u64, u64, usize, Vec<String>)> {
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
    let today_station = offered
        .iter()
        .filter(|e| {
            e.start.date() == day
                && e.station_ae_title.as_deref() == Some(STATION)
                && e.modality.as_deref() == Some("MR")
        })
        .count() as u64;
    let days = all
        .iter()
        .map(|s| s.entry.start.date())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut ids: Vec<String> = offered.iter().map(|e| e.patient_id.clone()).collect();
    ids.sort();
    ids.dedup();
    Ok((stored, offered.len() as u64, today_station, days, ids))
}

fn start_pylantir(args: &Args, dir: &Path, urls: &[String]) -> anyhow::Result<(Server, f64, u64)> {
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

fn load_run(
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
    let mut child = Command::new(args.bin_dir.join("mwl-loadgen"))
        .args(["--host", "127.0.0.1", "--port"])
        .arg(server.port.to_string())
        .args(["--called-ae", AE, "--station", STATION, "--mix", query])
        .arg("--clients")
        .arg(args.clients.to_string())
        .arg("--duration")
        .arg(args.seconds.to_string())
        .arg("--query-timeout")
        .arg(args.query_timeout.to_string())
        .arg("--patient-ids")
        .arg(ids_file)
        .arg("--seed")
        .arg(round.to_string())
        .arg("--json")
        .stdin(Stdio::null())
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

/// The runs of one server and query pooled over the rounds.
#[derive(Debug, Clone, Default)]
struct Pooled {
    queries: u64,
    errors: u64,
    wall_s: f64,
    matches: f64,
    p50_mean: f64,
    p99_max: f64,
    p99_rounds: Vec<f64>,
    server_cpu_ms: f64,
    loadgen_cpu_max: f64,
    /// CPU seconds of every other process (neither the server nor the loadgen) over
    /// the runs' windows, and the windows' length.
    other_cpu_s: f64,
    window_s: f64,
    error_samples: Vec<String>,
}

impl Pooled {
    fn qps(&self) -> f64 {
        self.queries as f64 / self.wall_s.max(1e-9)
    }
    fn items_per_s(&self) -> f64 {
        self.matches / self.wall_s.max(1e-9)
    }
    fn matches_per_query(&self) -> f64 {
        self.matches / self.queries.max(1) as f64
    }
    fn cpu_ms_per_query(&self) -> f64 {
        self.server_cpu_ms / self.queries.max(1) as f64
    }
    fn server_cores(&self) -> f64 {
        self.server_cpu_ms / 1000.0 / self.wall_s.max(1e-9)
    }
    fn other_cores(&self) -> f64 {
        self.other_cpu_s / self.window_s.max(1e-9)
    }
}

fn pooled(size: &SizeResult, server: ServerKind, query: &str) -> Option<Pooled> {
    let runs: Vec<&Run> = size
        .runs
        .iter()
        .filter(|r| r.server == server && r.phase.query == query)
        .collect();
    if runs.is_empty() {
        return None;
    }
    let mut p = Pooled::default();
    for r in &runs {
        p.queries += r.phase.queries_ok;
        p.errors += r.phase.errors;
        p.wall_s += r.phase.wall_s;
        p.matches += r.phase.matches_mean * r.phase.queries_ok as f64;
        p.p50_mean += r.phase.latency_ms.p50 / runs.len() as f64;
        p.p99_max = p.p99_max.max(r.phase.latency_ms.p99);
        p.p99_rounds.push(r.phase.latency_ms.p99);
        p.server_cpu_ms += r.server_cpu_ms;
        p.loadgen_cpu_max = p.loadgen_cpu_max.max(r.phase.loadgen_cpu_share);
        let loadgen_s = r.phase.loadgen_cpu_share * r.phase.wall_s;
        p.other_cpu_s += (r.machine_busy_s - r.server_cpu_ms / 1000.0 - loadgen_s).max(0.0);
        p.window_s += r.window_s;
        for s in &r.phase.error_samples {
            if !p.error_samples.contains(s) {
                p.error_samples.push(s.clone());
            }
        }
    }
    Some(p)
}

fn fmt_num(x: f64) -> String {
    if x >= 100.0 {
        let s = format!("{:.0}", x);
        // Thousands separators.
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else if x >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn fmt_ms(x: f64) -> String {
    if x >= 100.0 {
        fmt_num(x)
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("–".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn skip_reason(size: &SizeResult, kind: ServerKind) -> Option<String> {
    size.servers.get(&kind).and_then(|i| i.skipped.clone())
}

/// The value compared for a query: items/s for `universal`, queries/s otherwise.
fn figure(p: &Pooled, query: &str) -> f64 {
    if query == "universal" {
        p.items_per_s()
    } else {
        p.qps()
    }
}

fn markdown(r: &Results, args: &Args, plot_name: Option<&str>) -> String {
    let kinds = [
        ServerKind::Mwlbridge,
        ServerKind::Wlmscpfs,
        ServerKind::Pylantir,
    ];
    let mut s = String::new();
    let _ = writeln!(s, "## Query benchmark\n");
    let _ = writeln!(
        s,
        "Measured {} by `{}` on {}. {}.\n",
        r.date,
        args.command_line,
        r.machine,
        r.versions.join("; ")
    );
    let _ = writeln!(
        s,
        r#"How: for each size N, ⌈N / {per}⌉ `calpendo-fake --synthetic` servers (about 37 bookings a
day from today on per fake, so one fake's 10,000 span ~280 days; larger N means more fakes,
i.e. more scanners, not more bookings per scanner) feed, through each server's own path:
**mwlbridge** (`mwlbridge sync --once` into a fresh database, then `mwlbridge serve` with the
sources disabled, so that no sync runs during the load), **wlmscpfs** (DCMTK 3.6.7,
`mwlbridge export` files, default forking mode, `-q -dhl --keep-char-set`) and **Pylantir**
(`pylantir start` with its own Calpendo sync; see notes). `mwl-loadgen` (crates/mwl-bench)
then runs each query for {secs} s per server and round, rounds interleaved (A B C A B C,
{rounds} rounds), on persistent associations (one per client), Implicit VR LE, requesting the
usual return keys. Server CPU and memory come from `/proc` (the whole process tree for
forking wlmscpfs), sampled every 50 ms. The load generator shares the 2 cores with the servers.

Queries: **today-station-modality** = SPS start date today, ScheduledStationAETitle
`{STATION}`, Modality `MR` ({clients} clients); **patient-id** = exact PatientID of a random
offered subject ({clients} clients); **universal** = every item (1 client; compared in items/s).

```sh
scripts/bench.sh                                   # BENCH_SIZES="1000 10000 100000" BENCH_SECONDS=5 BENCH_ROUNDS=2
target/release/mwl-loadgen --port 11112 --called-ae MWLBRIDGE --clients 8 --duration 10 \
    --mix today-station-modality,patient-id,universal --patient-ids ids.txt   # any MWL SCP
```
"#,
        per = args.per_source,
        secs = r.seconds,
        rounds = r.rounds,
        clients = r.clients,
    );
    // Main table.
    let _ = writeln!(
        s,
        "q/s = successful queries per second (universal: items per second), pooled over the rounds; \
         p99 = the worst round's 99th-percentile latency.\n"
    );
    let _ = writeln!(
        s,
        "| items | query (clients) | mwlbridge q/s | p99 ms | wlmscpfs q/s | p99 ms | Pylantir q/s | p99 ms | mwlbridge ÷ wlmscpfs | mwlbridge ÷ Pylantir |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for size in &r.sizes {
        for query in &r.mix {
            let clients = if query == "universal" { 1 } else { r.clients };
            let mut row = format!("| {} | {query} ({clients}) |", fmt_num(size.n as f64));
            let ours = pooled(size, ServerKind::Mwlbridge, query);
            let mut ratios = Vec::new();
            for kind in kinds {
                match pooled(size, kind, query) {
                    Some(p) => {
                        let unit = if query == "universal" { " items/s" } else { "" };
                        let _ = write!(
                            row,
                            " {}{unit} | {} |",
                            fmt_num(figure(&p, query)),
                            fmt_ms(p.p99_max)
                        );
                        if kind != ServerKind::Mwlbridge {
                            ratios.push(match &ours {
                                Some(o) if figure(&p, query) > 0.0 => {
                                    format!("{}×", fmt_num(figure(o, query) / figure(&p, query)))
                                }
                                _ => "–".into(),
                            });
                        }
                    }
                    None => {
                        let mark = if skip_reason(size, kind).is_some() {
                            "skipped¹"
                        } else {
                            "not run"
                        };
                        let _ = write!(row, " {mark} | – |");
                        if kind != ServerKind::Mwlbridge {
                            ratios.push("–".into());
                        }
                    }
                }
            }
            let _ = writeln!(row, " {} |", ratios.join(" | "));
            s.push_str(&row);
        }
    }
    let _ = writeln!(s);
    if let Some(name) = plot_name {
        let _ = writeln!(
            s,
            "![today-station-modality queries/s against worklist size, log-log]({name})\n"
        );
    }
    // Detail table.
    let _ = writeln!(s, "Per server and query (pooled over the rounds):\n");
    let _ = writeln!(
        s,
        "| items | server | query | queries | errors | q/s | p50 ms | p99 ms per round | matches/query | server CPU ms/query | server CPU (cores) | loadgen CPU (cores) | other processes (cores) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for size in &r.sizes {
        for kind in kinds {
            for query in &r.mix {
                if let Some(p) = pooled(size, kind, query) {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {query} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
                        fmt_num(size.n as f64),
                        kind.label(),
                        p.queries,
                        p.errors,
                        fmt_num(p.qps()),
                        fmt_ms(p.p50_mean),
                        p.p99_rounds
                            .iter()
                            .map(|x| fmt_ms(*x))
                            .collect::<Vec<_>>()
                            .join(" / "),
                        fmt_num(p.matches_per_query()),
                        fmt_ms(p.cpu_ms_per_query()),
                        p.server_cores(),
                        p.loadgen_cpu_max,
                        p.other_cores(),
                    );
                }
            }
        }
    }
    let _ = writeln!(s);
    // Load and memory.
    let _ = writeln!(s, "Loading and memory:\n");
    let _ = writeln!(
        s,
        "| items | server | loaded items | load time (s) | peak RSS MB (VmHWM, main process) | peak RSS during queries MB (sum over the process tree) | idle RSS after load MB (tree, 12 s after the last run) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for size in &r.sizes {
        for kind in kinds {
            let Some(info) = size.servers.get(&kind) else {
                continue;
            };
            if let Some(why) = &info.skipped {
                let _ = writeln!(
                    s,
                    "| {} | {} | skipped: {why} | | | | |",
                    fmt_num(size.n as f64),
                    kind.label()
                );
                continue;
            }
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                fmt_num(size.n as f64),
                kind.label(),
                info.items.map_or("–".into(), |i| fmt_num(i as f64)),
                info.load_s.map_or("–".into(), |t| format!("{t:.1}")),
                mib(info.vmhwm_kib),
                mib(info.peak_load_rss_kib),
                mib(info.idle_rss_kib),
            );
        }
    }
    let _ = writeln!(s);
    // Targets.
    let _ = writeln!(s, "Targets of the performance issue, as measured here:\n");
    for line in targets(r) {
        let _ = writeln!(s, "- {line}");
    }
    let _ = writeln!(s);
    // Notes.
    let _ = writeln!(s, "Notes:\n");
    let mut notes: Vec<String> = Vec::new();
    let mut skipped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for size in &r.sizes {
        for (kind, info) in &size.servers {
            if let Some(why) = &info.skipped {
                skipped
                    .entry(format!("{} ({why})", kind.label()))
                    .or_default()
                    .push(fmt_num(size.n as f64));
            }
        }
    }
    for (what, sizes) in &skipped {
        notes.push(format!("¹ Skipped at {} items: {what}.", sizes.join(", ")));
    }
    if r.sizes.iter().any(|s| {
        s.servers.get(&ServerKind::Pylantir).is_some_and(|i| {
            i.skipped
                .as_deref()
                .is_some_and(|w| w.contains("pylantir-max"))
        })
    }) {
        notes.push(
            "Pylantir is not run above 10,000 items: its today query returns every item (it \
             matches only PatientName and PatientID), which takes tens of seconds per query at \
             10,000 already, and its sync upserts row by row with unindexed look-ups (see its \
             load time at 10,000)."
                .into(),
        );
    }
    notes.push(
        "Pylantir (0.4.6) filters C-FIND only on PatientName and PatientID: its \
         today-station-modality and universal queries return every item it holds, cancelled \
         bookings included (as DISCONTINUED), hence its matches/query. Its Calpendo fetch window \
         ends 24 h after now (rolling mode), so the benchmark starts it through a small launcher \
         (target/bench/nN/pylantir/pylantir_launch.py) that widens only that window; everything else is \
         `pylantir start` as shipped, logging at INFO."
            .into(),
    );
    notes.push(
        "Load time: mwlbridge = `mwlbridge sync --once` (whole process); wlmscpfs = \
         `mwlbridge export` of the same database; Pylantir = from its start to its \"Sync \
         completed successfully\" log line. Pylantir's VmHWM includes that in-process sync; \
         mwlbridge's and wlmscpfs's do not (separate processes)."
            .into(),
    );
    notes.push(
        "wlmscpfs reads and parses every worklist file of the called AE's directory for each \
         query, in a child process per association; its CPU figures are the whole process tree."
            .into(),
    );
    notes.push(
        "Cancelled bookings are DISCONTINUED in mwlbridge and not offered (nor exported), so \
         mwlbridge and wlmscpfs hold ~95% of N."
            .into(),
    );
    for size in &r.sizes {
        notes.push(format!(
            "{} items: {} fake Calpendo(s)/source(s), {} days, {} items for {STATION} today.",
            fmt_num(size.n as f64),
            size.sources,
            size.days,
            size.today_station_items
        ));
        let rss: Vec<String> = size
            .runs
            .iter()
            .filter(|run| run.server == ServerKind::Mwlbridge)
            .map(|run| {
                format!(
                    "{} {}: {}",
                    run.round,
                    run.phase.query,
                    mib(Some(run.peak_tree_rss_kib))
                )
            })
            .collect();
        if !rss.is_empty() {
            notes.push(format!(
                "{} items, mwlbridge's largest RSS (MB) sampled during each run, in order (round query): {}.",
                fmt_num(size.n as f64),
                rss.join(", ")
            ));
        }
        for kind in kinds {
            for query in &r.mix {
                if let Some(p) = pooled(size, kind, query)
                    && p.errors > 0
                {
                    notes.push(format!(
                        "{} items, {} {query}: {} errors ({}).",
                        fmt_num(size.n as f64),
                        kind.label(),
                        p.errors,
                        p.error_samples.join("; ")
                    ));
                }
            }
        }
    }
    notes.extend(r.notes.iter().cloned());
    for n in notes {
        let _ = writeln!(s, "- {n}");
    }
    s
}

fn find_size(r: &Results, n: usize) -> Option<&SizeResult> {
    r.sizes.iter().find(|s| s.n == n)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**missed**" }
}

fn targets(r: &Results) -> Vec<String> {
    let mut out = Vec::new();
    let q_today = "today-station-modality";
    if let Some(s) = find_size(r, 10_000) {
        if let (Some(o), Some(w)) = (
            pooled(s, ServerKind::Mwlbridge, q_today),
            pooled(s, ServerKind::Wlmscpfs, q_today),
        ) {
            let ratio = o.qps() / w.qps().max(1e-9);
            out.push(format!(
                "today+station+modality at 10,000 items, {} clients: ≥ 100× wlmscpfs q/s: {} ({} vs {} q/s, {}×); p99 < 10 ms: {} ({} ms).",
                r.clients,
                verdict(ratio >= 100.0),
                fmt_num(o.qps()),
                fmt_num(w.qps()),
                fmt_num(ratio),
                verdict(o.p99_max < 10.0),
                fmt_ms(o.p99_max)
            ));
        }
        if let (Some(o), Some(p)) = (
            pooled(s, ServerKind::Mwlbridge, "patient-id"),
            pooled(s, ServerKind::Pylantir, "patient-id"),
        ) {
            let ratio = o.qps() / p.qps().max(1e-9);
            out.push(format!(
                "PatientID exact at 10,000 items, {} clients: ≥ 10× Pylantir: {} ({} vs {} q/s, {}×).",
                r.clients,
                verdict(ratio >= 10.0),
                fmt_num(o.qps()),
                fmt_num(p.qps()),
                fmt_num(ratio)
            ));
        }
        if let (Some(o), Some(w)) = (
            pooled(s, ServerKind::Mwlbridge, "universal"),
            pooled(s, ServerKind::Wlmscpfs, "universal"),
        ) {
            let ratio = o.items_per_s() / w.items_per_s().max(1e-9);
            out.push(format!(
                "universal at 10,000 items: ≥ 10× wlmscpfs items/s: {} ({} vs {} items/s, {}×).",
                verdict(ratio >= 10.0),
                fmt_num(o.items_per_s()),
                fmt_num(w.items_per_s()),
                fmt_num(ratio)
            ));
        }
        let idle = |k| s.servers.get(&k).and_then(|i| i.idle_rss_kib);
        if let (Some(o), Some(w)) = (idle(ServerKind::Mwlbridge), idle(ServerKind::Wlmscpfs)) {
            out.push(format!(
                "idle RSS at 10,000 items ≤ wlmscpfs: {} ({} MB vs {} MB).",
                verdict(o <= w),
                mib(Some(o)),
                mib(Some(w))
            ));
        }
    }
    if let Some(s) = find_size(r, 100_000) {
        if let Some(o) = pooled(s, ServerKind::Mwlbridge, q_today) {
            out.push(format!(
                "today+station at 100,000 items: p99 < 20 ms: {} ({} ms).",
                verdict(o.p99_max < 20.0),
                fmt_ms(o.p99_max)
            ));
        }
        if let Some(info) = s.servers.get(&ServerKind::Mwlbridge) {
            let peak = info.vmhwm_kib.max(info.peak_load_rss_kib);
            if let Some(peak) = peak {
                // The runs before the first universal query, for the reader.
                let before_universal = s
                    .runs
                    .iter()
                    .filter(|run| run.server == ServerKind::Mwlbridge)
                    .take_while(|run| run.phase.query != "universal")
                    .map(|run| run.peak_tree_rss_kib)
                    .max();
                let before = before_universal.map_or(String::new(), |k| {
                    format!("; {} MB before the first universal query", mib(Some(k)))
                });
                out.push(format!(
                    "RSS at 100,000 items < 100 MB: {} (peak {} MB, idle {} MB{before}).",
                    verdict(peak < 100 * 1024),
                    mib(Some(peak)),
                    mib(info.idle_rss_kib)
                ));
            }
        }
    }
    if out.is_empty() {
        out.push("not evaluated: the run did not include 10,000 or 100,000 items.".into());
    }
    out
}

fn plot(r: &Results, png: &Path, work_dir: &Path) -> anyhow::Result<()> {
    let dat = work_dir.join("query-today.dat");
    let mut text = String::from("# N mwlbridge wlmscpfs pylantir (today-station-modality q/s)\n");
    for size in &r.sizes {
        let v = |k| {
            pooled(size, k, "today-station-modality")
                .map_or("NaN".to_string(), |p| format!("{:.4}", p.qps()))
        };
        let _ = writeln!(
            text,
            "{} {} {} {}",
            size.n,
            v(ServerKind::Mwlbridge),
            v(ServerKind::Wlmscpfs),
            v(ServerKind::Pylantir)
        );
    }
    std::fs::write(&dat, text)?;
    let values: Vec<f64> = r
        .sizes
        .iter()
        .flat_map(|size| {
            [
                ServerKind::Mwlbridge,
                ServerKind::Wlmscpfs,
                ServerKind::Pylantir,
            ]
            .into_iter()
            .filter_map(|k| pooled(size, k, "today-station-modality").map(|p| p.qps()))
        })
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    if values.is_empty() {
        bail!("no today-station-modality figures to plot");
    }
    let gp = work_dir.join("query-today.gp");
    let script = format!(
        r##"set terminal pngcairo size 960,640 font "DejaVu Sans,12"
set output '{png}'
set title "today + station + modality C-FIND, {clients} clients, persistent associations\n({date}, {machine})" noenhanced
set logscale xy
set xlabel "worklist items (N)"
set ylabel "queries per second (log scale)"
set format x "%.0f"
set xrange [{xmin}:{xmax}]
set grid xtics ytics mxtics mytics
set key bottom left box opaque
set yrange [{ymin}:{ymax}]
set datafile missing "NaN"
label(v) = v >= 100 ? sprintf("%.0f", v) : sprintf("%.3g", v)
plot '{dat}' using 1:2 with linespoints lw 2 pt 7 ps 1.3 lc rgb "#1b7837" title "mwlbridge", \
     '' using 1:2:(label($2)) with labels offset 0,1 tc rgb "#1b7837" notitle, \
     '' using 1:3 with linespoints lw 2 pt 5 ps 1.3 lc rgb "#2166ac" title "DCMTK wlmscpfs 3.6.7", \
     '' using 1:3:(label($3)) with labels offset 0,1 tc rgb "#2166ac" notitle, \
     '' using 1:4 with linespoints lw 2 pt 9 ps 1.5 lc rgb "#b2182b" title "Pylantir 0.4.6", \
     '' using 1:4:(label($4)) with labels offset 0,-1 tc rgb "#b2182b" notitle
"##,
        png = png.display(),
        dat = dat.display(),
        clients = r.clients,
        date = r.date,
        machine = r.machine.split(',').take(2).collect::<Vec<_>>().join(","),
        xmin = r.sizes.iter().map(|s| s.n).min().unwrap_or(1) as f64 / 1.6,
        xmax = r.sizes.iter().map(|s| s.n).max().unwrap_or(1) as f64 * 1.6,
        ymin = lo / 4.0,
        ymax = hi * 4.0,
    );
    std::fs::write(&gp, script)?;
    let out = Command::new("gnuplot")
        .arg(&gp)
        .output()
        .context("running gnuplot")?;
    if !out.status.success() {
        bail!("gnuplot: {}", String::from_utf8_lossy(&out.stderr));
    }
    eprintln!("wrote {}", png.display());
    Ok(())
}

fn update_doc(doc: &Path, section: &str) -> anyhow::Result<()> {
    // Read right before writing: others may edit the rest of the file.
    let text = std::fs::read_to_string(doc).with_context(|| format!("{}", doc.display()))?;
    let block = format!("{BEGIN}\n{}\n{END}", section.trim_end());
    let new = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{block}{}", &text[..b], &text[e + END.len()..])
        }
        _ => format!("{}\n\n{block}\n", text.trim_end()),
    };
    std::fs::write(doc, new)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sizes() {
        assert_eq!(split(1000, 10_000), vec![1000]);
        assert_eq!(split(10_000, 10_000), vec![10_000]);
        assert_eq!(split(100_000, 10_000), vec![10_000; 10]);
        assert_eq!(split(25_001, 10_000), vec![8334, 8334, 8333]);
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(fmt_num(1234567.0), "1,234,567");
        assert_eq!(fmt_num(123.4), "123");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(1.234), "1.23");
    }
}
