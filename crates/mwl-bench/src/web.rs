//! The named queries of [`queries`](crate::queries) as DICOMweb searches (PS3.18 chapter
//! 14): the query parameters of `GET {base}/modality-scheduled-procedure-steps` that ask
//! what the C-FIND identifier of the same name asks. No `includefield`: the search's
//! default return keys are the identifier's return keys.

use crate::queries::{QueryKind, QueryParams, Rng, format_da};

/// The search's path under the DICOMweb base.
pub const SEARCH_PATH: &str = "/modality-scheduled-procedure-steps";

/// The query parameters of `kind` (`limit` included), or `None` when `patient-id` has no
/// PatientIDs to pick from.
pub fn search_params(
    kind: QueryKind,
    p: &QueryParams,
    rng: &mut Rng,
    limit: u32,
) -> Option<Vec<(&'static str, String)>> {
    let day = format_da(p.day);
    let mut q: Vec<(&'static str, String)> = match kind {
        QueryKind::TodayStationModality => vec![
            ("00400100.00400002", day),
            ("00400100.00400001", p.station.clone()),
            ("00400100.00080060", p.modality.clone()),
        ],
        QueryKind::BusyStation => vec![
            ("00400100.00400002", day),
            ("00400100.00400001", p.busy_station.clone()),
            ("00400100.00080060", p.modality.clone()),
        ],
        QueryKind::PatientId => {
            if p.patient_ids.is_empty() {
                return None;
            }
            vec![(
                "PatientID",
                p.patient_ids[rng.below(p.patient_ids.len())].clone(),
            )]
        }
        QueryKind::Universal => Vec::new(),
        QueryKind::DateRange => {
            let last = p
                .day
                .checked_add(jiff::Span::new().days(i64::from(p.range_days.max(1)) - 1))
                .unwrap_or(p.day);
            vec![("00400100.00400002", format!("{day}-{}", format_da(last)))]
        }
        QueryKind::NameWildcard => vec![("PatientName", p.name_pattern.clone())],
    };
    q.push(("limit", limit.to_string()));
    Some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> QueryParams {
        QueryParams {
            day: jiff::civil::date(2026, 12, 6),
            station: "MRI_DIAG_01".into(),
            busy_station: "MRI_BUSY".into(),
            modality: "MR".into(),
            range_days: 3,
            name_pattern: "Sim*".into(),
            patient_ids: vec!["A1".into(), "B2".into()],
        }
    }

    fn value<'a>(q: &'a [(&str, String)], key: &str) -> Option<&'a str> {
        q.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn each_query_asks_what_its_c_find_asks() {
        let (p, mut rng) = (params(), Rng::new(1));
        let q = search_params(QueryKind::TodayStationModality, &p, &mut rng, 500).expect("q");
        assert_eq!(value(&q, "00400100.00400002"), Some("20261206"));
        assert_eq!(value(&q, "00400100.00400001"), Some("MRI_DIAG_01"));
        assert_eq!(value(&q, "00400100.00080060"), Some("MR"));
        assert_eq!(value(&q, "limit"), Some("500"));
        let q = search_params(QueryKind::BusyStation, &p, &mut rng, 500).expect("q");
        assert_eq!(value(&q, "00400100.00400001"), Some("MRI_BUSY"));
        let q = search_params(QueryKind::DateRange, &p, &mut rng, 5).expect("q");
        assert_eq!(value(&q, "00400100.00400002"), Some("20261206-20261208"));
        let q = search_params(QueryKind::Universal, &p, &mut rng, 5000).expect("q");
        assert_eq!(q, vec![("limit", "5000".to_string())]);
        let q = search_params(QueryKind::PatientId, &p, &mut rng, 5).expect("q");
        assert!(matches!(value(&q, "PatientID"), Some("A1" | "B2")));
        let q = search_params(QueryKind::NameWildcard, &p, &mut rng, 5).expect("q");
        assert_eq!(value(&q, "PatientName"), Some("Sim*"));
    }

    #[test]
    fn patient_id_needs_ids() {
        let p = QueryParams {
            patient_ids: Vec::new(),
            ..params()
        };
        assert_eq!(
            search_params(QueryKind::PatientId, &p, &mut Rng::new(1), 5),
            None
        );
    }
}
