//! What is measured: the runs of each server and query at each size (saved as JSON, read
//! back by `--from-json`), and their figures pooled over the rounds.

use std::collections::BTreeMap;

use anyhow::bail;
use mwl_bench::stats::PhaseReport;
use serde::{Deserialize, Serialize};

/// A server measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ServerKind {
    Mwlbridge,
    Wlmscpfs,
    Pylantir,
    /// `mwl-replay` with mwlbridge's recorded answers: the client's ceiling.
    Replay,
}

impl ServerKind {
    pub(crate) fn parse(s: &str) -> anyhow::Result<ServerKind> {
        match s {
            "mwlbridge" => Ok(ServerKind::Mwlbridge),
            "wlmscpfs" => Ok(ServerKind::Wlmscpfs),
            "pylantir" => Ok(ServerKind::Pylantir),
            "replay" => Ok(ServerKind::Replay),
            other => bail!("unknown server {other:?} (mwlbridge, wlmscpfs, pylantir, replay)"),
        }
    }
    pub(crate) fn label(self) -> &'static str {
        match self {
            ServerKind::Mwlbridge => "mwlbridge",
            ServerKind::Wlmscpfs => "wlmscpfs",
            ServerKind::Pylantir => "Pylantir",
            ServerKind::Replay => "replay",
        }
    }
}

/// One loadgen run against one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Run {
    pub(crate) server: ServerKind,
    pub(crate) round: usize,
    pub(crate) phase: PhaseReport,
    /// Server CPU time (process tree) over the run, in ms.
    pub(crate) server_cpu_ms: f64,
    /// Largest sum of VmRSS over the server's processes during the run, KiB.
    pub(crate) peak_tree_rss_kib: u64,
    /// Seconds from the loadgen's start to the last sample (the CPU window).
    pub(crate) window_s: f64,
    /// CPU time of the whole machine over that window, in seconds (all processes).
    pub(crate) machine_busy_s: f64,
}

/// One server at one size.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ServerInfo {
    /// Why it was not measured.
    pub(crate) skipped: Option<String>,
    /// Seconds to load the items (mwlbridge: sync --once; wlmscpfs: export; Pylantir:
    /// its first sync).
    pub(crate) load_s: Option<f64>,
    /// Items it holds.
    pub(crate) items: Option<u64>,
    /// VmHWM of the main process after the runs, KiB.
    pub(crate) vmhwm_kib: Option<u64>,
    /// Largest sampled VmRSS sum of the process tree during the runs, KiB.
    pub(crate) peak_load_rss_kib: Option<u64>,
    /// VmRSS sum of the process tree after the runs, settled, KiB.
    pub(crate) idle_rss_kib: Option<u64>,
    /// VmRSS sum of the process tree after the warm-up (one pass of every query), settled,
    /// before the rounds, KiB (absent in older results).
    #[serde(default)]
    pub(crate) warm_idle_rss_kib: Option<u64>,
}

/// Everything measured at one size.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SizeResult {
    pub(crate) n: usize,
    pub(crate) sources: usize,
    pub(crate) days: usize,
    /// Items offered to consoles by mwlbridge (scheduled / started).
    pub(crate) offered: u64,
    /// Items of today-station-modality in mwlbridge's store.
    pub(crate) today_station_items: u64,
    /// Items of busy-station in mwlbridge's store (absent in older results).
    #[serde(default)]
    pub(crate) busy_station_items: Option<u64>,
    pub(crate) servers: BTreeMap<ServerKind, ServerInfo>,
    pub(crate) runs: Vec<Run>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Results {
    pub(crate) date: String,
    pub(crate) machine: String,
    pub(crate) versions: Vec<String>,
    pub(crate) seconds: f64,
    pub(crate) rounds: usize,
    pub(crate) clients: usize,
    pub(crate) mix: Vec<String>,
    pub(crate) sizes: Vec<SizeResult>,
    pub(crate) notes: Vec<String>,
}

/// The runs of one server and query pooled over the rounds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pooled {
    pub(crate) queries: u64,
    pub(crate) errors: u64,
    pub(crate) wall_s: f64,
    pub(crate) matches: f64,
    pub(crate) p50_mean: f64,
    pub(crate) p99_max: f64,
    pub(crate) p99_rounds: Vec<f64>,
    pub(crate) server_cpu_ms: f64,
    pub(crate) loadgen_cpu_max: f64,
    /// CPU seconds of every other process (neither the server nor the loadgen) over
    /// the runs' windows, and the windows' length.
    pub(crate) other_cpu_s: f64,
    pub(crate) window_s: f64,
    pub(crate) error_samples: Vec<String>,
}

impl Pooled {
    pub(crate) fn qps(&self) -> f64 {
        self.queries as f64 / self.wall_s.max(1e-9)
    }
    pub(crate) fn items_per_s(&self) -> f64 {
        self.matches / self.wall_s.max(1e-9)
    }
    pub(crate) fn matches_per_query(&self) -> f64 {
        self.matches / self.queries.max(1) as f64
    }
    pub(crate) fn cpu_ms_per_query(&self) -> f64 {
        self.server_cpu_ms / self.queries.max(1) as f64
    }
    pub(crate) fn server_cores(&self) -> f64 {
        self.server_cpu_ms / 1000.0 / self.wall_s.max(1e-9)
    }
    pub(crate) fn other_cores(&self) -> f64 {
        self.other_cpu_s / self.window_s.max(1e-9)
    }
}

pub(crate) fn pooled(size: &SizeResult, server: ServerKind, query: &str) -> Option<Pooled> {
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
