//! The benchmark's command line and its fixed settings.

use std::path::PathBuf;

use clap::Parser;

/// Query benchmark of mwlbridge against wlmscpfs and Pylantir.
#[derive(Debug, Parser)]
#[command(about)]
pub(crate) struct Args {
    /// Worklist sizes (bookings).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    pub(crate) sizes: Vec<usize>,
    /// Seconds of load per server, query and round.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) seconds: f64,
    /// Rounds (each runs every server once, in turn).
    #[arg(long, default_value_t = 2)]
    pub(crate) rounds: usize,
    /// Concurrent clients of every query but `universal` (1 client).
    #[arg(long, default_value_t = 8)]
    pub(crate) clients: usize,
    /// Queries, in the order run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "busy-station,today-station-modality,patient-id,universal"
    )]
    pub(crate) mix: Vec<String>,
    /// Servers to measure (`replay`: `mwl-replay` with mwlbridge's recorded answers, the
    /// client's ceiling).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "mwlbridge,wlmscpfs,pylantir,replay"
    )]
    pub(crate) servers: Vec<String>,
    /// Directory of mwlbridge, calpendo-fake and mwl-loadgen.
    #[arg(long, default_value = "target/release")]
    pub(crate) bin_dir: PathBuf,
    /// Working directory (databases, worklist files, logs, results).
    #[arg(long, default_value = "target/bench")]
    pub(crate) work_dir: PathBuf,
    /// Python of the Pylantir virtual environment.
    #[arg(long, default_value = "target/bench/pylantir-venv/bin/python")]
    pub(crate) pylantir_python: PathBuf,
    /// Why Pylantir is not available (set by bench.sh when its installation failed).
    #[arg(long)]
    pub(crate) pylantir_unavailable: Option<String>,
    /// Largest size Pylantir is measured at.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) pylantir_max: usize,
    /// Largest size wlmscpfs is measured at.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) wlmscpfs_max: usize,
    /// Seconds Pylantir's initial sync may take.
    #[arg(long, default_value_t = 600)]
    pub(crate) pylantir_load_timeout: u64,
    /// Bookings per fake Calpendo (and per source): at ~37 bookings a day, 10,000 span
    /// ~280 days, inside the 366-day sync window.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) per_source: usize,
    /// Bookings of the first fake Calpendo that fill today on its "3T Busy" resource
    /// (station BUSY_STATION), for `busy-station`; the same at every size.
    #[arg(long, default_value_t = 100)]
    pub(crate) busy_today: usize,
    /// Seconds one query may take before it counts as an error.
    #[arg(long, default_value_t = 180.0)]
    pub(crate) query_timeout: f64,
    /// Markdown file whose query-benchmark section (between markers) is replaced.
    #[arg(long)]
    pub(crate) doc: Option<PathBuf>,
    /// PNG plot of today-station-modality queries/s against N (needs gnuplot).
    #[arg(long)]
    pub(crate) plot: Option<PathBuf>,
    /// The command line to show in the document.
    #[arg(long, default_value = "scripts/bench.sh")]
    pub(crate) command_line: String,
    /// Measure nothing: write the report, plot and document from the results of an
    /// earlier run (its query-results.json).
    #[arg(long)]
    pub(crate) from_json: Option<PathBuf>,
}

/// The called AE title of every server measured.
pub(crate) const AE: &str = "MWLBRIDGE";
/// The station whose today's MR steps `today-station-modality` asks for.
pub(crate) const STATION: &str = "MRI_DIAG_01";
/// The station whose today's MR steps `busy-station` asks for ("3T Busy" of the first
/// source).
pub(crate) const BUSY_STATION: &str = "MRI_BUSY";
