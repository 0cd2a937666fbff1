//! The client's ceiling in the report: per size and query, mwlbridge's figure next to
//! `mwl-replay`'s (the same client against a server that sends recorded answers without
//! work) and its share of it.

use std::fmt::Write as _;

use crate::report::{figure, fmt_ms, fmt_num};
use crate::results::{Results, ServerKind, pooled};

/// `ours` as a share of `ceiling` (0.27: 27 %); `None` without a ceiling.
pub(crate) fn share(ours: f64, ceiling: f64) -> Option<f64> {
    (ceiling > 0.0 && ours.is_finite()).then(|| ours / ceiling)
}

/// The share-of-ceiling table; nothing without replay runs.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares() {
        assert_eq!(
            share(3308.0, 12234.0).map(|x| (x * 100.0).round()),
            Some(27.0)
        );
        assert_eq!(share(1.0, 0.0), None);
    }
}
