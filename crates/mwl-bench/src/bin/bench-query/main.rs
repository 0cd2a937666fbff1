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
//! while this program samples each server's CPU time and memory from `/proc`. With
//! `replay` among the servers, mwlbridge's answers are recorded after the warm-up and
//! `mwl-replay` serves them in the same rounds: the client's ceiling, and each query's
//! share of it (`ceiling`).
//! Writes the results as JSON, a Markdown section (optionally into docs/benchmarks.md
//! between markers) and a gnuplot plot.

mod args;
mod ceiling;
mod configs;
mod machine;
mod plot;
mod procs;
mod report;
mod results;
mod runner;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use mwl_bench::procfs;

use crate::args::Args;
use crate::results::{Results, ServerKind};

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
    for bin in ["mwlbridge", "calpendo-fake", "mwl-loadgen", "mwl-replay"] {
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
        return write_report(&args, &results, &work_dir);
    }
    let mut results = Results {
        date: machine::today().to_string(),
        machine: machine::machine(),
        versions: machine::versions(&args),
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
        let r = runner::run_size(&args, &work_dir, n, &servers)?;
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
    write_report(&args, &results, &work_dir)
}

/// Writes the plot, the Markdown section (printed, and into the document).
fn write_report(args: &Args, results: &Results, work_dir: &Path) -> anyhow::Result<()> {
    let plot_name = args.plot.as_ref().and_then(|p| {
        let ok = plot::plot(results, p, work_dir)
            .map_err(|e| eprintln!("no plot: {e:#}"))
            .is_ok();
        ok.then(|| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .flatten()
    });
    let section = report::markdown(results, args, plot_name.as_deref());
    std::fs::write(work_dir.join("query-benchmark.md"), &section)?;
    println!("{section}");
    if let Some(doc) = &args.doc {
        report::update_doc(doc, &section)?;
        eprintln!("updated {}", doc.display());
    }
    Ok(())
}
