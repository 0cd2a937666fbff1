//! Latency percentiles and this process's own CPU time.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Latency summary, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// What the load generator measured for one named query (one phase).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// Query name (`today-station-modality`, ...).
    pub query: String,
    /// Concurrent clients.
    pub clients: usize,
    /// `persistent` (one association per client) or `fresh` (one per query).
    pub mode: String,
    /// Wall time of the phase, from the first query to the last response, in seconds.
    pub wall_s: f64,
    /// Queries that ended with status 0000.
    pub queries_ok: u64,
    /// Queries that ended with another final status, a transport error or a timeout
    /// (and associations that could not be established).
    pub errors: u64,
    /// A few error messages, for the reader.
    pub error_samples: Vec<String>,
    /// Successful queries per second.
    pub qps: f64,
    /// Latency of the successful queries (request sent, or connection started in fresh
    /// mode, to final response received).
    pub latency_ms: Latency,
    /// Mean number of matches (pending responses with an identifier) per successful query.
    pub matches_mean: f64,
    /// Matches per second.
    pub items_per_s: f64,
    /// Pending responses with status FF01 (optional keys not supported), all queries.
    pub pending_ff01: u64,
    /// The load generator's own CPU time over the phase divided by its wall time
    /// (1.0 = one core busy).
    pub loadgen_cpu_share: f64,
}

/// The load generator's whole output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// `host:port`.
    pub target: String,
    /// Called AE title.
    pub called_ae: String,
    /// The day of `today-station-modality` / `date-range` (YYYYMMDD).
    pub day: String,
    /// The station of `today-station-modality`.
    pub station: String,
    /// One entry per query, in the order run.
    pub phases: Vec<PhaseReport>,
}

impl LoadReport {
    /// Prints the report as a table, one line per phase.
    pub fn print_table(&self) {
        println!(
            "target {} (called AE {}), day {}, station {}",
            self.target, self.called_ae, self.day, self.station
        );
        println!(
            "{:<24} {:>7} {:>10} {:>8} {:>6} {:>9} {:>8} {:>8} {:>8} {:>9} {:>10} {:>8}",
            "query",
            "clients",
            "mode",
            "queries",
            "errors",
            "q/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "matches/q",
            "items/s",
            "own CPU"
        );
        for p in &self.phases {
            println!(
                "{:<24} {:>7} {:>10} {:>8} {:>6} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>9.1} {:>10.0} {:>7.0}%",
                p.query,
                p.clients,
                p.mode,
                p.queries_ok,
                p.errors,
                p.qps,
                p.latency_ms.p50,
                p.latency_ms.p95,
                p.latency_ms.p99,
                p.matches_mean,
                p.items_per_s,
                p.loadgen_cpu_share * 100.0
            );
            for s in &p.error_samples {
                println!("    error: {s}");
            }
        }
        println!("own CPU: the load generator's CPU time / wall time (100% = one core busy)");
    }
}

/// The nearest-rank percentile `q` (0..=1) of sorted values.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarises latencies given in microseconds (sorts them).
pub fn summarize(latencies_us: &mut [u64]) -> Latency {
    latencies_us.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    let n = latencies_us.len().max(1) as f64;
    Latency {
        p50: ms(percentile(latencies_us, 0.50)),
        p95: ms(percentile(latencies_us, 0.95)),
        p99: ms(percentile(latencies_us, 0.99)),
        max: ms(latencies_us.last().copied().unwrap_or(0)),
        mean: latencies_us.iter().sum::<u64>() as f64 / n / 1000.0,
    }
}

/// CPU time (user + system, all threads) used so far by this process, as the kernel
/// accounts it in `/proc/self/stat` (the figures `getrusage(RUSAGE_SELF)` reports, at
/// clock-tick resolution).
pub fn own_cpu_time() -> Duration {
    crate::procfs::cpu_ticks(std::process::id())
        .map(|t| crate::procfs::ticks_to_duration(t.utime + t.stime))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
        let mut w = vec![3000, 1000, 2000];
        let s = summarize(&mut w);
        assert_eq!((s.p50, s.max, s.mean), (2.0, 3.0, 2.0));
    }
}
