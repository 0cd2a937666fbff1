//! What every sync cycle does to a source's fetched entries before the store sees them:
//! invisible characters taken out, values fitted to what consoles accept, steps far
//! outside the sync window dropped. Each change is logged at WARN with the record id and
//! the field, never the value.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use worklist_store::fit::{self, Fix};
use worklist_store::{DataSource, Fetched, SyncWindow};

/// Takes invisible and direction-changing characters out of the fetched entries
/// ([`worklist_store::tidy`]), with a WARN per entry naming its record id and the fields
/// (never the values).
fn strip_invisible_characters(source: &str, fetched: &mut Fetched) {
    let (Fetched::Complete(entries) | Fetched::Changed(entries)) = fetched;
    for entry in entries {
        let changed = worklist_store::tidy::strip_invisible(entry);
        if !changed.is_empty() {
            let fields: Vec<&str> = changed.iter().map(|s| s.column).collect();
            tracing::warn!(
                source,
                record_id = %entry.source_record_id,
                ?fields,
                "invisible or direction-changing characters removed from the source's values"
            );
        }
    }
}

/// The fitted-value warnings already logged, so that a value a source keeps sending the
/// same way is said once per process, not on every cycle. Bounded: when full, it is
/// cleared and later warnings are said again.
#[derive(Clone, Default)]
pub struct Said(Arc<Mutex<HashSet<String>>>);

/// How many warnings [`Said`] remembers.
const SAID_MAX: usize = 100_000;

impl Said {
    /// Whether `key` is new (then it is remembered).
    fn first_time(&self, key: String) -> bool {
        let mut said = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if said.len() >= SAID_MAX {
            said.clear();
        }
        said.insert(key)
    }
}

/// Fits every fetched entry's values to what consoles accept ([`worklist_store::fit`]),
/// with a WARN naming the record id, the field and the change (never the value), once per
/// record, field and change. A station AE title or modality filled in is said once per
/// station name instead (resource names are not subject data), as it holds for every
/// booking of that resource.
fn fit_values(source: &str, fetched: &mut Fetched, said: &Said) {
    let (Fetched::Complete(entries) | Fetched::Changed(entries)) = fetched;
    for entry in entries {
        for fitted in fit::fit(entry) {
            let (column, fix) = (fitted.column, fitted.fix);
            if fix == Fix::Filled {
                let station = entry.station_name.clone().unwrap_or_default();
                if said.first_time(format!("{source}\0{column}\0station\0{station}")) {
                    let value = match column {
                        "station_ae_title" => entry.station_ae_title.clone(),
                        _ => entry.modality.clone(),
                    };
                    tracing::warn!(
                        source,
                        station_name = %station,
                        field = column,
                        value = value.unwrap_or_default(),
                        "the source gives this station's steps no {column}; filled in so that \
                         consoles accept them (map the resource in station_aet_mapping / \
                         resource_modality_mapping to choose it; said once per station)"
                    );
                }
                continue;
            }
            let record_id = &entry.source_record_id;
            if said.first_time(format!("{source}\0{record_id}\0{column}\0{fix}")) {
                tracing::warn!(
                    source,
                    record_id = %record_id,
                    field = column,
                    change = %fix,
                    "a value was changed to fit what consoles accept (said once per record \
                     and field)"
                );
            }
        }
    }
}

/// How far before or after the sync window a fetched step may start and still be kept.
const FAR_OUTSIDE_DAYS: i64 = 366;

/// Drops fetched entries whose step starts more than [`FAR_OUTSIDE_DAYS`] before or after
/// `window` (a mistyped year such as 9999 in a source), with a WARN naming the record id
/// and never its values: the retention purge counts from a step's end, so such an entry
/// would stay on every console's universal query for good. Returns how many were dropped.
fn drop_far_outside(source: &str, window: &SyncWindow, fetched: &mut Fetched) -> usize {
    let margin = jiff::Span::new().days(FAR_OUTSIDE_DAYS);
    let (Ok(earliest), Ok(latest)) = (
        window.start.checked_sub(margin),
        window.end.checked_add(margin),
    ) else {
        return 0;
    };
    let (Fetched::Complete(entries) | Fetched::Changed(entries)) = fetched;
    let before = entries.len();
    entries.retain(|e| {
        let keep = earliest <= e.start && e.start < latest;
        if !keep {
            tracing::warn!(
                source,
                record_id = %e.source_record_id,
                start_year = e.start.year(),
                "ignored a step that starts more than {FAR_OUTSIDE_DAYS} days outside the \
                 sync window (a mistyped date in the source?)"
            );
        }
        keep
    });
    before - entries.len()
}

/// One fetch of `source` for `window`, tidied as every cycle tidies it before the store
/// sees it: invisible characters taken out, values fitted to what consoles accept, steps
/// far outside the window dropped (each with a WARN naming the record id; a fitted value's
/// WARN once per record, field and change, as `said` remembers). The error is the
/// source's, as the log says it.
pub async fn fetch_tidied(
    source: &dyn DataSource,
    window: &SyncWindow,
    said: &Said,
) -> Result<Fetched, String> {
    let name = source.name();
    let mut fetched = source.fetch(window).await.map_err(|e| e.to_string())?;
    strip_invisible_characters(name, &mut fetched);
    fit_values(name, &mut fetched, said);
    drop_far_outside(name, window, &mut fetched);
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_far_outside_the_window_are_dropped() {
        use jiff::civil::date;
        use worklist_store::WorklistEntry;
        let window = SyncWindow {
            start: date(2026, 12, 5).at(0, 0, 0, 0),
            end: date(2026, 12, 12).at(0, 0, 0, 0),
        };
        let entry = |id: &str, start| WorklistEntry::new("calpendo", id, "SUB1", start);
        let mut fetched = Fetched::Complete(vec![
            entry("in", date(2026, 12, 6).at(9, 0, 0, 0)),
            entry("next-summer", date(2027, 7, 1).at(9, 0, 0, 0)),
            entry("year-9999", date(9999, 12, 6).at(9, 0, 0, 0)),
            entry("long-ago", date(2020, 1, 1).at(9, 0, 0, 0)),
        ]);
        assert_eq!(drop_far_outside("calpendo", &window, &mut fetched), 2);
        let Fetched::Complete(kept) = fetched else {
            panic!("mode changed")
        };
        let ids: Vec<&str> = kept.iter().map(|e| e.source_record_id.as_str()).collect();
        assert_eq!(ids, ["in", "next-summer"]);
    }
}
