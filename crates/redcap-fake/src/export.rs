//! The flat record export: which columns a request selects, which records it
//! matches, and the rows REDCap would answer. Pure: no I/O, no state.
//!
//! Rules, as REDCap applies them to a classic project:
//! - the record id field is always a column, first; `redcap_repeat_instrument` and
//!   `redcap_repeat_instance` follow when the project has repeating instruments;
//!   the other columns keep data-dictionary order whatever the request's order;
//! - every matching record has one row for its non-repeating instruments, with the
//!   two repeat columns and every repeating instrument's fields empty;
//! - each instance of a repeating instrument has one more row (instrument name,
//!   instance number), with only that instrument's fields filled, when at least one
//!   selected column (other than the record id) belongs to that instrument;
//! - every value is a string; a field without a value is `""`;
//! - `records[]` keeps the named records (unknown ids are no error);
//!   `dateRangeBegin` <= modification time < `dateRangeEnd`. REDCap's documentation
//!   says "after" and "before" without saying whether a bound counts: the half-open
//!   range is the fake's choice, and a client keeps a safety margin either way.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::params::{ParamError, RecordQuery};
use crate::project::{Column, Project};
use crate::records::{FakeRecord, Stored};

/// Name of the column holding a repeat row's instrument.
pub const REPEAT_INSTRUMENT: &str = "redcap_repeat_instrument";
/// Name of the column holding a repeat row's instance number.
pub const REPEAT_INSTANCE: &str = "redcap_repeat_instance";

/// One row of a flat export: `(column, value)` in column order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row(Vec<(String, String)>);

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The answer to a record export.
#[derive(Debug)]
pub(crate) struct Export {
    pub(crate) rows: Vec<Row>,
    /// Distinct records in `rows`.
    pub(crate) records: usize,
}

/// The rows `query` selects from `records` (already in export order).
pub(crate) fn export(
    project: &Project,
    records: &[&Stored],
    query: &RecordQuery,
) -> Result<Export, ParamError> {
    let columns = select_columns(project, query)?;
    let repeating: Vec<&str> = project
        .repeating_forms()
        .iter()
        .map(String::as_str)
        .filter(|form| columns.iter().any(|c| c.form == *form))
        .collect();
    let mut out = Export {
        rows: Vec::new(),
        records: 0,
    };
    for stored in records.iter().filter(|s| matches(s, query)) {
        out.records += 1;
        out.rows.push(base_row(project, &columns, &stored.record));
        for form in &repeating {
            let mut instances: Vec<_> = stored
                .record
                .repeats
                .iter()
                .filter(|r| r.instrument == *form)
                .collect();
            instances.sort_by_key(|r| r.instance);
            for instance in instances {
                out.rows
                    .push(repeat_row(project, &columns, instance, &stored.record));
            }
        }
    }
    Ok(out)
}

/// The selected columns other than the record id, in export order; unknown names
/// are a 400. `{form}_complete` counts as a field, as in REDCap.
fn select_columns(project: &Project, query: &RecordQuery) -> Result<Vec<Column>, ParamError> {
    let all = project.export_columns();
    let unknown: Vec<String> = query
        .fields
        .iter()
        .filter(|f| !all.iter().any(|c| &c.name == *f))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(ParamError::UnknownNames {
            param: "fields",
            names: unknown,
        });
    }
    let unknown_forms: Vec<String> = query
        .forms
        .iter()
        .filter(|f| !all.iter().any(|c| &c.form == *f))
        .cloned()
        .collect();
    if !unknown_forms.is_empty() {
        return Err(ParamError::UnknownNames {
            param: "forms",
            names: unknown_forms,
        });
    }
    let everything = query.fields.is_empty() && query.forms.is_empty();
    let id = project.record_id_field();
    Ok(all
        .into_iter()
        .filter(|c| c.name != id)
        .filter(|c| everything || query.fields.contains(&c.name) || query.forms.contains(&c.form))
        .collect())
}

fn matches(stored: &Stored, query: &RecordQuery) -> bool {
    (query.records.is_empty() || query.records.contains(&stored.record.record_id))
        && query.begin.is_none_or(|begin| stored.modified >= begin)
        && query.end.is_none_or(|end| stored.modified < end)
}

/// The leading cells every row has: the record id, then the repeat columns when the
/// project has repeating instruments.
fn lead(project: &Project, record_id: &str, instrument: &str, instance: &str) -> Row {
    let mut cells = vec![(project.record_id_field().to_owned(), record_id.to_owned())];
    if !project.repeating_forms().is_empty() {
        cells.push((REPEAT_INSTRUMENT.to_owned(), instrument.to_owned()));
        cells.push((REPEAT_INSTANCE.to_owned(), instance.to_owned()));
    }
    Row(cells)
}

fn base_row(project: &Project, columns: &[Column], record: &FakeRecord) -> Row {
    let mut row = lead(project, &record.record_id, "", "");
    for c in columns {
        let value = if project.is_repeating(&c.form) {
            ""
        } else {
            record.fields.get(&c.name).map_or("", String::as_str)
        };
        row.0.push((c.name.clone(), value.to_owned()));
    }
    row
}

fn repeat_row(
    project: &Project,
    columns: &[Column],
    instance: &crate::records::RepeatInstance,
    record: &FakeRecord,
) -> Row {
    let number = instance.instance.to_string();
    let mut row = lead(project, &record.record_id, &instance.instrument, &number);
    for c in columns {
        let value = if c.form == instance.instrument {
            instance.fields.get(&c.name).map_or("", String::as_str)
        } else {
            ""
        };
        row.0.push((c.name.clone(), value.to_owned()));
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::RepeatInstance;

    fn stored(record: FakeRecord, modified: jiff::civil::DateTime) -> Stored {
        Stored { record, modified }
    }

    fn json(rows: &[Row]) -> String {
        serde_json::to_string(rows).unwrap()
    }

    #[test]
    fn repeat_rows_follow_the_base_row_in_column_order() {
        let at = jiff::civil::date(2026, 11, 26).at(8, 0, 0, 0);
        let record = FakeRecord::new("7")
            .with("study_id", "CPIP-FAKE7")
            .with_instance(RepeatInstance::new("mri", 2).with("mri_date", "2026-11-27"))
            .with_instance(RepeatInstance::new("mri", 1).with("mri_date", "2026-11-26"));
        let s = stored(record, at);
        let query = RecordQuery {
            fields: vec!["mri_date".into(), "study_id".into()],
            ..RecordQuery::default()
        };
        let out = export(&Project::cpip(), &[&s], &query).unwrap();
        assert_eq!(out.records, 1);
        assert_eq!(
            json(&out.rows),
            concat!(
                r#"[{"record_id":"7","redcap_repeat_instrument":"","redcap_repeat_instance":"","study_id":"CPIP-FAKE7","mri_date":""},"#,
                r#"{"record_id":"7","redcap_repeat_instrument":"mri","redcap_repeat_instance":"1","study_id":"","mri_date":"2026-11-26"},"#,
                r#"{"record_id":"7","redcap_repeat_instrument":"mri","redcap_repeat_instance":"2","study_id":"","mri_date":"2026-11-27"}]"#
            )
        );
        // Only baseline fields: no repeat rows.
        let query = RecordQuery {
            fields: vec!["study_id".into()],
            ..RecordQuery::default()
        };
        assert_eq!(
            export(&Project::cpip(), &[&s], &query).unwrap().rows.len(),
            1
        );
    }

    #[test]
    fn unknown_fields_and_forms_are_refused() {
        let query = RecordQuery {
            fields: vec!["study_id".into(), "t1_date".into(), "nope".into()],
            ..RecordQuery::default()
        };
        assert_eq!(
            export(&Project::cpip(), &[], &query).unwrap_err(),
            ParamError::UnknownNames {
                param: "fields",
                names: vec!["t1_date".into(), "nope".into()]
            }
        );
        let query = RecordQuery {
            fields: vec!["mri_complete".into()],
            forms: vec!["consent".into()],
            ..RecordQuery::default()
        };
        assert!(matches!(
            export(&Project::cpip(), &[], &query),
            Err(ParamError::UnknownNames { param: "forms", .. })
        ));
    }
}
