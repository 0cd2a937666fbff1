//! CPU time and memory of processes, from Linux's `/proc`.

use std::collections::BTreeMap;
use std::time::Duration;

/// Clock ticks per second of `/proc/PID/stat` times (`USER_HZ`, 100 on Linux).
pub const TICKS_PER_SECOND: u64 = 100;

/// CPU times of a process, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// User time of the process.
    pub utime: u64,
    /// System time of the process.
    pub stime: u64,
    /// User time of its waited-for children.
    pub cutime: u64,
    /// System time of its waited-for children.
    pub cstime: u64,
}

/// Clock ticks as a duration.
pub fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

/// The fields of `/proc/PID/stat` after the command name (field 3, the state, first).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// CPU times of `pid` (also readable for a zombie, until it is reaped).
pub fn cpu_ticks(pid: u32) -> Option<CpuTicks> {
    let f = stat_fields(pid)?;
    // Fields 14..=17 of stat(5); f[0] is field 3.
    let get = |field: usize| f.get(field - 3)?.parse::<u64>().ok();
    Some(CpuTicks {
        utime: get(14)?,
        stime: get(15)?,
        cutime: get(16)?,
        cstime: get(17)?,
    })
}

/// Busy CPU time of the whole machine so far (all cores: user, nice, system, irq,
/// softirq, steal), in clock ticks, from the first line of `/proc/stat`.
pub fn machine_busy_ticks() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7)?;
    Some(busy)
}

/// The 1-, 5- and 15-minute load averages, as `/proc/loadavg` shows them.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `kB` line of `/proc/PID/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The direct children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    // Each thread lists the children it forked.
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                out.extend(
                    text.split_whitespace()
                        .filter_map(|s| s.parse::<u32>().ok()),
                );
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// `pid` and all its descendants.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() && out.len() < 10_000 {
        let kids = children(out[i]);
        out.extend(kids);
        i += 1;
    }
    out
}

/// Accumulates the CPU time and memory of a server's process tree from repeated
/// samples: the main process's own time, plus each descendant's last-seen time (a
/// forking server's children count while they live, even if they are reaped later).
#[derive(Debug, Clone)]
pub struct TreeMeter {
    root: u32,
    root_start: CpuTicks,
    root_last: CpuTicks,
    /// Last-seen CPU ticks (utime + stime) of each descendant seen since the start.
    children: BTreeMap<u32, u64>,
    /// Descendants that already existed at the start, with their ticks then.
    children_at_start: BTreeMap<u32, u64>,
    /// Largest sum of VmRSS over the tree, in KiB.
    pub peak_tree_rss_kib: u64,
}

impl TreeMeter {
    /// Starts measuring `root` now.
    pub fn start(root: u32) -> TreeMeter {
        let root_start = cpu_ticks(root).unwrap_or_default();
        let mut children_at_start = BTreeMap::new();
        for pid in tree(root).into_iter().skip(1) {
            if let Some(t) = cpu_ticks(pid) {
                children_at_start.insert(pid, t.utime + t.stime);
            }
        }
        let mut m = TreeMeter {
            root,
            root_start,
            root_last: root_start,
            children: children_at_start.clone(),
            children_at_start,
            peak_tree_rss_kib: 0,
        };
        m.sample();
        m
    }

    /// Takes one sample.
    pub fn sample(&mut self) {
        if let Some(t) = cpu_ticks(self.root) {
            self.root_last = t;
        }
        let mut rss = 0;
        for (i, pid) in tree(self.root).into_iter().enumerate() {
            rss += status_kib(pid, "VmRSS").unwrap_or(0);
            if i > 0
                && let Some(t) = cpu_ticks(pid)
            {
                self.children.insert(pid, t.utime + t.stime);
            }
        }
        self.peak_tree_rss_kib = self.peak_tree_rss_kib.max(rss);
    }

    /// CPU time used by the tree since the start (up to the last sample).
    pub fn cpu(&self) -> Duration {
        let own = (self.root_last.utime + self.root_last.stime)
            .saturating_sub(self.root_start.utime + self.root_start.stime);
        let kids: u64 = self
            .children
            .iter()
            .map(|(pid, t)| t.saturating_sub(self.children_at_start.get(pid).copied().unwrap_or(0)))
            .sum();
        ticks_to_duration(own + kids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(status_kib(me, "VmRSS").is_some_and(|k| k > 0));
        assert!(status_kib(me, "VmHWM").is_some_and(|k| k > 0));
        assert!(machine_busy_ticks().is_some());
        assert_eq!(loadavg().split(' ').count(), 3);
        let m = TreeMeter::start(me);
        assert!(m.peak_tree_rss_kib > 0);
    }
}
