//! The row codec of `worklist_entries`: the columns an entry query selects and how such a
//! row becomes a [`StoredEntry`] ([`decode`]); the columns an entry's write sets and the
//! values bound to them ([`WRITTEN_COLUMNS`], [`values`]).
//!
//! The text attributes come from the model's table ([`TEXT_ATTRIBUTES`]), in its order;
//! the identity, the values that are not text and the bookkeeping are written out here.
//! Columns are read by position: looking 29 columns up by name costs more than reading
//! them.

use std::sync::LazyLock;

use jiff::Timestamp;
use jiff::civil::DateTime;
use rusqlite::Row;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use worklist_model::{
    EntryMeta, Presence, StoredEntry, TEXT_ATTRIBUTES, WorklistEntry, format_da, format_tm,
    parse_da, parse_tm,
};

use crate::error::StoreError;
use crate::name_keys;

/// The identity columns, first after `id`.
const IDENTITY_COLUMNS: [&str; 2] = ["source", "source_record_id"];

/// The columns of the values that are not text, after the text attributes.
const OTHER_COLUMNS: [&str; 7] = [
    "patient_birth_date",
    "patient_weight_kg",
    "sps_start_date",
    "sps_start_time",
    "sps_end_date",
    "sps_end_time",
    "status",
];

/// The bookkeeping columns, last (selected, never written from an entry).
const META_COLUMNS: [&str; 4] = [
    "status_set_by",
    "first_seen",
    "last_updated",
    "status_changed_at",
];

/// Position of the first text attribute in a selected row (after `id` and the identity).
const TEXT_AT: usize = 1 + IDENTITY_COLUMNS.len();
/// Position of the first of [`OTHER_COLUMNS`] in a selected row.
const OTHER_AT: usize = TEXT_AT + TEXT_ATTRIBUTES.len();
/// Positions of [`OTHER_COLUMNS`] in a selected row.
const BIRTH_DATE_AT: usize = OTHER_AT;
const WEIGHT_AT: usize = OTHER_AT + 1;
const START_AT: usize = OTHER_AT + 2;
const END_AT: usize = OTHER_AT + 4;
const STATUS_AT: usize = OTHER_AT + 6;
/// Position of the first of [`META_COLUMNS`] in a selected row.
const META_AT: usize = OTHER_AT + OTHER_COLUMNS.len();

/// The columns an entry's content occupies, in write order: identity, text attributes,
/// the other values.
fn content_columns() -> impl Iterator<Item = &'static str> {
    IDENTITY_COLUMNS
        .into_iter()
        .chain(TEXT_ATTRIBUTES.iter().map(|a| a.column))
        .chain(OTHER_COLUMNS)
}

/// The select list of every entry query, in the order [`decode`] reads: `id`, the content
/// columns, the bookkeeping columns.
pub(crate) static SELECT_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<&str> = std::iter::once("id")
        .chain(content_columns())
        .chain(META_COLUMNS)
        .collect();
    columns.join(", ")
});

/// The columns an entry's write sets, in [`values`]' order: the content columns, then the
/// name-key columns derived from the patient name ([`name_keys::COLUMNS`]).
pub(crate) static WRITTEN_COLUMNS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| content_columns().chain(name_keys::COLUMNS).collect());

/// The values of an entry's [`WRITTEN_COLUMNS`], borrowing the entry's text.
pub(crate) fn values(e: &WorklistEntry) -> Vec<ToSqlOutput<'_>> {
    fn text(v: Option<&str>) -> ToSqlOutput<'_> {
        v.map_or(ToSqlOutput::Owned(Value::Null), |s| {
            ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))
        })
    }
    let owned = |v: Option<String>| ToSqlOutput::Owned(v.map_or(Value::Null, Value::Text));
    let mut values = Vec::with_capacity(WRITTEN_COLUMNS.len());
    values.push(text(Some(&e.source)));
    values.push(text(Some(&e.source_record_id)));
    values.extend(TEXT_ATTRIBUTES.iter().map(|a| text((a.get)(e))));
    values.extend([
        owned(e.patient_birth_date.map(format_da)),
        ToSqlOutput::Owned(e.patient_weight_kg.map_or(Value::Null, Value::Real)),
        owned(Some(format_da(e.start.date()))),
        owned(Some(format_tm(e.start.time()))),
        owned(e.end.map(|t| format_da(t.date()))),
        owned(e.end.map(|t| format_tm(t.time()))),
        text(Some(e.status.as_dicom())),
    ]);
    values.extend(name_keys::values(e.patient_name.as_deref()).map(ToSqlOutput::Owned));
    values
}

/// One selected row ([`SELECT_COLUMNS`]) read back, with the errors of a damaged row.
struct Cells<'r, 's> {
    row: &'r Row<'s>,
    id: i64,
}

impl<'r> Cells<'r, '_> {
    fn corrupt(&self, column: &'static str, reason: &str) -> StoreError {
        StoreError::Corrupt {
            row_id: self.id,
            column,
            reason: reason.to_string(),
        }
    }

    /// The text at `i`; `None` for NULL or a value that is not text.
    fn text(&self, i: usize, column: &'static str) -> Result<Option<&'r str>, StoreError> {
        match self.row.get_ref(i)? {
            ValueRef::Text(bytes) => std::str::from_utf8(bytes)
                .map(Some)
                .map_err(|_| self.corrupt(column, "not UTF-8 text")),
            _ => Ok(None),
        }
    }

    fn required(&self, i: usize, column: &'static str) -> Result<&'r str, StoreError> {
        self.text(i, column)?
            .ok_or_else(|| self.corrupt(column, "missing"))
    }

    /// The date-time of the DA column at `i` and the TM column after it.
    fn date_time(&self, i: usize, date: &str, time: &str) -> Result<DateTime, StoreError> {
        let [date_column, time_column] =
            [OTHER_COLUMNS[i - OTHER_AT], OTHER_COLUMNS[i + 1 - OTHER_AT]];
        let d = parse_da(date).ok_or_else(|| self.corrupt(date_column, "not a DICOM date"))?;
        let t = parse_tm(time).ok_or_else(|| self.corrupt(time_column, "not a DICOM time"))?;
        Ok(d.to_datetime(t))
    }

    fn timestamp(&self, i: usize, column: &'static str) -> Result<Timestamp, StoreError> {
        self.required(i, column)?
            .parse()
            .map_err(|e: jiff::Error| self.corrupt(column, &e.to_string()))
    }
}

/// The entry of one selected row ([`SELECT_COLUMNS`]). A value that cannot be read back
/// (the file was edited by hand or is damaged) is [`StoreError::Corrupt`].
///
/// Allocates one string per text value present and nothing else: this runs once per
/// candidate row of every C-FIND.
pub(crate) fn decode(row: &Row<'_>) -> Result<StoredEntry, StoreError> {
    let cells = Cells {
        row,
        id: row.get(0)?,
    };
    let mut entry = WorklistEntry {
        source: cells.required(1, "source")?.to_owned(),
        source_record_id: cells.required(2, "source_record_id")?.to_owned(),
        ..WorklistEntry::default()
    };
    for (i, attribute) in TEXT_ATTRIBUTES.iter().enumerate() {
        let value = cells.text(TEXT_AT + i, attribute.column)?;
        if value.is_none() && attribute.presence != Presence::Optional {
            return Err(cells.corrupt(attribute.column, "missing"));
        }
        (attribute.set)(&mut entry, value.map(str::to_owned));
    }
    entry.patient_birth_date = cells
        .text(BIRTH_DATE_AT, "patient_birth_date")?
        .map(|b| parse_da(b).ok_or_else(|| cells.corrupt("patient_birth_date", "not a DICOM date")))
        .transpose()?;
    entry.patient_weight_kg = match row.get_ref(WEIGHT_AT)? {
        ValueRef::Real(r) => Some(r),
        ValueRef::Integer(n) => Some(n as f64),
        _ => None,
    };
    entry.start = cells.date_time(
        START_AT,
        cells.required(START_AT, "sps_start_date")?,
        cells.required(START_AT + 1, "sps_start_time")?,
    )?;
    let end_date = cells.text(END_AT, "sps_end_date")?;
    entry.end = match (end_date, cells.text(END_AT + 1, "sps_end_time")?) {
        (Some(d), Some(t)) => Some(cells.date_time(END_AT, d, t)?),
        (None, None) => None,
        _ => {
            let both = "end date and time must both be set";
            return Err(cells.corrupt("sps_end_date", both));
        }
    };
    entry.status = cells
        .required(STATUS_AT, "status")?
        .parse()
        .map_err(|e: worklist_model::UnknownTerm| cells.corrupt("status", &e.to_string()))?;
    let meta = EntryMeta {
        row_id: cells.id,
        status_set_by: cells.required(META_AT, "status_set_by")?.parse().map_err(
            |e: worklist_model::UnknownTerm| cells.corrupt("status_set_by", &e.to_string()),
        )?,
        first_seen: cells.timestamp(META_AT + 1, "first_seen")?,
        last_updated: cells.timestamp(META_AT + 2, "last_updated")?,
        status_changed_at: cells.timestamp(META_AT + 3, "status_changed_at")?,
    };
    Ok(StoredEntry { entry, meta })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_name_their_columns() {
        let select: Vec<&str> = SELECT_COLUMNS.split(", ").collect();
        assert_eq!(select[1..TEXT_AT], IDENTITY_COLUMNS);
        assert_eq!(select[TEXT_AT], TEXT_ATTRIBUTES[0].column);
        assert_eq!(select[BIRTH_DATE_AT], "patient_birth_date");
        assert_eq!(select[WEIGHT_AT], "patient_weight_kg");
        assert_eq!(
            select[START_AT..START_AT + 2],
            ["sps_start_date", "sps_start_time"]
        );
        assert_eq!(select[END_AT..END_AT + 2], ["sps_end_date", "sps_end_time"]);
        assert_eq!(select[STATUS_AT], "status");
        assert_eq!(select[META_AT..], META_COLUMNS);
    }

    /// Every text attribute of the table is written and read back by its own column.
    #[test]
    fn every_text_attribute_round_trips() {
        use jiff::civil::date;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::Store::open(dir.path().join("w.db")).expect("open");
        let mut e = WorklistEntry::new("manual", "r1", "P1", date(2026, 11, 26).at(9, 0, 0, 0));
        for (i, a) in TEXT_ATTRIBUTES.iter().enumerate() {
            let value = match (a.vr.to_string(), a.column) {
                ("UI", _) => format!("1.2.{i}"),
                (_, "patient_sex") => "O".to_string(),
                _ => format!("V{i}"),
            };
            (a.set)(&mut e, Some(value));
        }
        e.end = Some(date(2026, 11, 26).at(10, 30, 0, 0));
        e.patient_birth_date = Some(date(1990, 1, 2));
        e.patient_weight_kg = Some(70.5);
        assert!(e.problems().is_empty(), "{:?}", e.problems());
        let stored = store.create_manual(&e, Timestamp::now()).expect("create");
        assert_eq!(stored.entry, e);
        let none = WorklistEntry::new("manual", "r2", "P2", date(2026, 11, 26).at(9, 0, 0, 0));
        let stored = store
            .create_manual(&none, Timestamp::now())
            .expect("create");
        assert_eq!(stored.entry, none);
    }
}
