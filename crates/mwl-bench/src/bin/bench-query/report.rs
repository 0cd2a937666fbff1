//! The Markdown report of a benchmark: how it was run, the comparison table, the detail
//! per server and query, loading and memory, the performance targets, and notes; and
//! its section of docs/benchmarks.md, between markers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::args::{Args, BUSY_STATION, STATION};
use crate::results::{Pooled, Results, ServerKind, SizeResult, pooled};

pub(crate) const BEGIN: &str = "<!-- BEGIN query-benchmark: written by scripts/bench.sh (crates/mwl-bench/src/bin/bench-query.rs); edit there -->";
pub(crate) const END: &str = "<!-- END query-benchmark -->";

pub(crate) fn fmt_num(x: f64) -> String {
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

pub(crate) fn fmt_ms(x: f64) -> String {
    if x >= 100.0 {
        fmt_num(x)
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

pub(crate) fn mib(kib: Option<u64>) -> String {
    kib.map_or("–".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

pub(crate) fn skip_reason(size: &SizeResult, kind: ServerKind) -> Option<String> {
    size.servers.get(&kind).and_then(|i| i.skipped.clone())
}

/// The value compared for a query: items/s for `universal`, queries/s otherwise.
pub(crate) fn figure(p: &Pooled, query: &str) -> f64 {
    if query == "universal" {
        p.items_per_s()
    } else {
        p.qps()
    }
}

/// The servers compared, in the order of the comparison table.
const PEERS: [ServerKind; 3] = [
    ServerKind::Mwlbridge,
    ServerKind::Wlmscpfs,
    ServerKind::Pylantir,
];

/// Every server, in the order of the other tables.
const KINDS: [ServerKind; 4] = [
    ServerKind::Mwlbridge,
    ServerKind::Wlmscpfs,
    ServerKind::Pylantir,
    ServerKind::Replay,
];

/// The report's Markdown section: how it was measured, then the tables, targets and notes.
pub(crate) fn markdown(r: &Results, args: &Args, plot_name: Option<&str>) -> String {
    let mut s = String::new();
    intro(&mut s, r, args);
    comparison_table(&mut s, r);
    crate::ceiling::section(&mut s, r);
    if let Some(name) = plot_name {
        let _ = writeln!(
            s,
            "![today-station-modality queries/s against worklist size, log-log]({name})\n"
        );
    }
    detail_table(&mut s, r);
    memory_table(&mut s, r);
    let _ = writeln!(s, "Targets of the performance issue, as measured here:\n");
    for line in targets(r) {
        let _ = writeln!(s, "- {line}");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Notes:\n");
    for n in notes(r) {
        let _ = writeln!(s, "- {n}");
    }
    s
}

/// Title, when, where, versions, and how the benchmark runs.
fn intro(s: &mut String, r: &Results, args: &Args) {
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

Queries: **busy-station** = SPS start date today, ScheduledStationAETitle `{BUSY_STATION}`,
Modality `MR`: the first fake fills today on its "3T Busy" resource with {busy} bookings in
short slots (`calpendo-fake --busy-today`), the same at every size, so that this is the
busiest console's default query ({clients} clients); **today-station-modality** = SPS start
date today, ScheduledStationAETitle `{STATION}`, Modality `MR` ({clients} clients); **patient-id** = exact PatientID of a random
offered subject ({clients} clients); **universal** = every item (1 client; compared in items/s).

```sh
scripts/bench.sh                                   # BENCH_SIZES="1000 10000 100000" BENCH_SECONDS=5 BENCH_ROUNDS=2
target/release/mwl-loadgen --port 11112 --called-ae MWLBRIDGE --clients 8 --duration 10 \
    --mix busy-station,patient-id,universal --patient-ids ids.txt   # any MWL SCP
```
"#,
        per = args.per_source,
        busy = args.busy_today,
        secs = r.seconds,
        rounds = r.rounds,
        clients = r.clients,
    );
}

/// One row per size and query: each server's figure and p99, and mwlbridge's ratios.
fn comparison_table(s: &mut String, r: &Results) {
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
            for kind in PEERS {
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
}

/// Per size, server and query, pooled over the rounds.
fn detail_table(s: &mut String, r: &Results) {
    let _ = writeln!(s, "Per server and query (pooled over the rounds):\n");
    let _ = writeln!(
        s,
        "| items | server | query | queries | errors | q/s | p50 ms | p99 ms per round | matches/query | server CPU ms/query | server CPU (cores) | loadgen CPU (cores) | other processes (cores) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for size in &r.sizes {
        for kind in KINDS {
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
}

/// Per size and server: items loaded, load time, memory.
fn memory_table(s: &mut String, r: &Results) {
    let _ = writeln!(s, "Loading and memory:\n");
    let _ = writeln!(
        s,
        "| items | server | loaded items | load time (s) | peak RSS MB (VmHWM, main process) | peak RSS during queries MB (sum over the process tree) | idle RSS after the warm-up MB (tree, 12 s after it) | idle RSS after load MB (tree, 12 s after the last run) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for size in &r.sizes {
        for kind in KINDS {
            let Some(info) = size.servers.get(&kind) else {
                continue;
            };
            if let Some(why) = &info.skipped {
                let _ = writeln!(
                    s,
                    "| {} | {} | skipped: {why} | | | | | |",
                    fmt_num(size.n as f64),
                    kind.label()
                );
                continue;
            }
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                fmt_num(size.n as f64),
                kind.label(),
                info.items.map_or("–".into(), |i| fmt_num(i as f64)),
                info.load_s.map_or("–".into(), |t| format!("{t:.1}")),
                mib(info.vmhwm_kib),
                mib(info.peak_load_rss_kib),
                mib(info.warm_idle_rss_kib),
                mib(info.idle_rss_kib),
            );
        }
    }
    let _ = writeln!(s);
}

/// The notes: skipped servers, how each server was loaded and measured, facts per size,
/// errors, and the run's own notes.
fn notes(r: &Results) -> Vec<String> {
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
        "Warm-up: before the rounds, each server answers 20 queries of each query of the mix \
         (1 client); with the replay, mwlbridge then also answers each query once more for the \
         recording (patient-id: every offered PatientID once). The replay's load time is that \
         recording's."
            .into(),
    );
    notes.push(
        "Cancelled bookings are DISCONTINUED in mwlbridge and not offered (nor exported), so \
         mwlbridge and wlmscpfs hold ~95% of N."
            .into(),
    );
    notes.extend(size_notes(r));
    notes.extend(r.notes.iter().cloned());
    notes
}

/// Per size: its sources, days and today's items, mwlbridge's RSS per run, and errors.
fn size_notes(r: &Results) -> Vec<String> {
    let mut notes = Vec::new();
    for size in &r.sizes {
        notes.push(format!(
            "{} items: {} fake Calpendo(s)/source(s), {} days, {} items for {STATION} today{}.",
            fmt_num(size.n as f64),
            size.sources,
            size.days,
            size.today_station_items,
            size.busy_station_items
                .map(|b| format!(", {b} for {BUSY_STATION}"))
                .unwrap_or_default()
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
        for kind in KINDS {
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
    notes
}

pub(crate) fn find_size(r: &Results, n: usize) -> Option<&SizeResult> {
    r.sizes.iter().find(|s| s.n == n)
}

pub(crate) fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**missed**" }
}

pub(crate) fn targets(r: &Results) -> Vec<String> {
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

pub(crate) fn update_doc(doc: &Path, section: &str) -> anyhow::Result<()> {
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
    fn formats_numbers() {
        assert_eq!(fmt_num(1234567.0), "1,234,567");
        assert_eq!(fmt_num(123.4), "123");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(1.234), "1.23");
    }
}
