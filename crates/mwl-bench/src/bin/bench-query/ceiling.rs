//! The client's ceiling in the report: per size and query, mwlbridge's figure next to
//! `mwl-replay`'s (the same client against a server that sends recorded answers without
//! work) and its share of it; and mwlbridge's idle memory after the warm-up and after the
//! load, the two figures of the memory target.

use std::fmt::Write as _;

use crate::report::{figure, fmt_ms, fmt_num, mib, verdict};
use crate::results::{Results, ServerKind, SizeResult, pooled};

/// `ours` as a share of `ceiling` (0.27: 27 %); `None` without a ceiling.
pub(crate) fn share(ours: f64, ceiling: f64) -> Option<f64> {
    (ceiling > 0.0 && ours.is_finite()).then(|| ours / ceiling)
}

/// Idle RSS after the load over idle RSS after the warm-up.
pub(crate) fn idle_growth(warm_kib: u64, after_kib: u64) -> Option<f64> {
    (warm_kib > 0).then(|| after_kib as f64 / warm_kib as f64)
}

/// The share-of-ceiling table and the idle-memory lines; nothing without replay runs.
pub(crate) fn section(s: &mut String, r: &Results) {
    let has_replay = r
        .sizes
        .iter()
        .any(|size| size.runs.iter().any(|run| run.server == ServerKind::Replay));
    if !has_replay {
        return;
    }
    let _ = writeln!(
        s,
        "The client's ceiling: `mwl-replay` answers each query with mwlbridge's own answer \
         PDUs, recorded once after the warm-up (`mwl-loadgen --record`), without any work; \
         it ran in the same rounds. share = mwlbridge ÷ ceiling (q/s; universal: items/s).\n"
    );
    let _ = writeln!(
        s,
        "| items | query (clients) | mwlbridge | p99 ms | ceiling (replay) | p99 ms | share of ceiling |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for size in &r.sizes {
        for query in &r.mix {
            let clients = if query == "universal" { 1 } else { r.clients };
            let unit = if query == "universal" {
                " items/s"
            } else {
                " q/s"
            };
            let cell = |kind| {
                pooled(size, kind, query).map_or(
                    ("–".to_string(), "–".to_string(), None),
                    |p| {
                        let f = figure(&p, query);
                        (format!("{}{unit}", fmt_num(f)), fmt_ms(p.p99_max), Some(f))
                    },
                )
            };
            let (ours, ours_p99, ours_f) = cell(ServerKind::Mwlbridge);
            let (ceil, ceil_p99, ceil_f) = cell(ServerKind::Replay);
            let share = match (ours_f, ceil_f) {
                (Some(o), Some(c)) => {
                    share(o, c).map_or("–".into(), |x| format!("{:.0} %", x * 100.0))
                }
                _ => "–".into(),
            };
            let _ = writeln!(
                s,
                "| {} | {query} ({clients}) | {ours} | {ours_p99} | {ceil} | {ceil_p99} | {share} |",
                fmt_num(size.n as f64)
            );
        }
    }
    let _ = writeln!(s);
    for size in &r.sizes {
        if let Some(line) = idle_line(size) {
            let _ = writeln!(s, "- {line}");
        }
    }
    let _ = writeln!(s);
}

/// mwlbridge's idle RSS after the warm-up and after the load at one size.
fn idle_line(size: &SizeResult) -> Option<String> {
    let info = size.servers.get(&ServerKind::Mwlbridge)?;
    let (warm, after) = (info.warm_idle_rss_kib?, info.idle_rss_kib?);
    let growth = idle_growth(warm, after)?;
    let wlmscpfs = size
        .servers
        .get(&ServerKind::Wlmscpfs)
        .and_then(|i| i.idle_rss_kib)
        .map_or(String::new(), |k| {
            format!("; wlmscpfs idle: {} MB", mib(Some(k)))
        });
    Some(format!(
        "{} items: mwlbridge's idle RSS (process tree, {} s idle) {} MB after the warm-up, \
         {} MB after the load: {:.2}× (issue 19: ≤ 1.25×: {}; ≤ 20 MB after the warm-up: {}){wlmscpfs}.",
        fmt_num(size.n as f64),
        crate::runner::SETTLE_S,
        mib(Some(warm)),
        mib(Some(after)),
        growth,
        verdict(growth <= 1.25),
        verdict(warm <= 20 * 1024),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_growth() {
        assert_eq!(
            share(3308.0, 12234.0).map(|x| (x * 100.0).round()),
            Some(27.0)
        );
        assert_eq!(share(1.0, 0.0), None);
        assert_eq!(idle_growth(20 * 1024, 25 * 1024), Some(1.25));
        assert_eq!(idle_growth(0, 1), None);
    }
}
