//! Pylantir's database: the rows of its `worklist_items` table as Pylantir wrote them
//! ([`PylantirRow`], read by [`read_rows`]), and the record of which rows were imported
//! (`pylantir_imports`, schema version 7), so that an import handles each row once and
//! [`Store::pylantir_pending`](crate::Store::pylantir_pending) can say what is left.
//!
//! Pylantir keeps its worklist in the same kind of SQLite file (often the very file
//! mwlbridge is pointed at). Turning a row into a [`WorklistEntry`] needs the config
//! (which source a row came from) and is the binary's; this module only reads rows and
//! writes entries in one transaction ([`import`]).

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use worklist_model::{StatusSetBy, WorklistEntry};

use crate::entries;
use crate::error::StoreError;

/// The table Pylantir keeps its worklist in.
pub const PYLANTIR_TABLE: &str = "worklist_items";

/// The record id prefix of an imported entry that belongs to a configured source but
/// whose record there could not be recovered from the row (a REDCap visit, an older
/// Pylantir's Calpendo row): `pylantir:{row id}`. The source's first sync that brings an
/// entry with the same Patient ID and start date takes it over (see
/// [`reconcile`](crate::reconcile)), so no twin appears.
pub const PROVISIONAL_PREFIX: &str = "pylantir:";

/// One row of Pylantir's `worklist_items`, every column as text (`None`: NULL, empty or
/// absent from this Pylantir version's table). Pylantir's own column names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Pylantir's column names say what each holds.
pub struct PylantirRow {
    pub id: i64,
    pub study_instance_uid: Option<String>,
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
    pub patient_weight_lb: Option<String>,
    pub accession_number: Option<String>,
    pub referring_physician_name: Option<String>,
    pub modality: Option<String>,
    pub study_description: Option<String>,
    pub scheduled_station_aetitle: Option<String>,
    pub scheduled_start_date: Option<String>,
    pub scheduled_start_time: Option<String>,
    pub performing_physician: Option<String>,
    pub procedure_description: Option<String>,
    pub protocol_name: Option<String>,
    pub station_name: Option<String>,
    pub hisris_coding_designator: Option<String>,
    pub performed_procedure_step_status: Option<String>,
    pub data_source: Option<String>,
    pub source_record_id: Option<String>,
}

/// The text columns read, in [`PylantirRow`] order after `id`.
const COLUMNS: [&str; 21] = [
    "study_instance_uid",
    "patient_name",
    "patient_id",
    "patient_birth_date",
    "patient_sex",
    "patient_weight_lb",
    "accession_number",
    "referring_physician_name",
    "modality",
    "study_description",
    "scheduled_station_aetitle",
    "scheduled_start_date",
    "scheduled_start_time",
    "performing_physician",
    "procedure_description",
    "protocol_name",
    "station_name",
    "hisris_coding_designator",
    "performed_procedure_step_status",
    "data_source",
    "source_record_id",
];

/// What becomes of one Pylantir row.
#[derive(Debug, Clone)]
pub enum ImportItem {
    /// The row as an entry, its status set by `set_by`.
    Entry {
        /// The Pylantir row id.
        row_id: i64,
        /// The entry.
        entry: Box<WorklistEntry>,
        /// Who the status counts as set by (a sync may change only `sync`).
        set_by: StatusSetBy,
    },
    /// The row cannot be imported (the caller says why); recorded, so it is not pending.
    Skipped {
        /// The Pylantir row id.
        row_id: i64,
    },
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Rows stored as new entries.
    pub imported: u64,
    /// Rows whose entry was stored already (a sync brought the booking first): kept as
    /// stored.
    pub present: u64,
    /// Rows recorded as skipped.
    pub skipped: u64,
    /// Rows an earlier import handled: nothing done.
    pub already_imported: u64,
}

/// Whether `conn`'s database has Pylantir's table.
fn has_table(conn: &Connection) -> Result<bool, rusqlite::Error> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [PYLANTIR_TABLE],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// The rows of Pylantir's table in the file at `path`, opened read-only; `None` when the
/// file has no such table. Columns an older Pylantir did not have read as `None`.
pub fn read_rows(path: &Path) -> Result<Option<Vec<PylantirRow>>, StoreError> {
    let conn = open_read_only(path)?;
    if !has_table(&conn)? {
        return Ok(None);
    }
    let present: Vec<String> = conn
        .prepare(&format!("PRAGMA table_info({PYLANTIR_TABLE})"))?
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<Result<_, _>>()?;
    let select: Vec<String> = COLUMNS
        .iter()
        .map(|c| {
            if present.iter().any(|p| p == c) {
                format!("\"{c}\"")
            } else {
                "NULL".to_string()
            }
        })
        .collect();
    let sql = format!(
        "SELECT id, {} FROM {PYLANTIR_TABLE} ORDER BY id",
        select.join(", ")
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |r| {
        let mut text = (1..=COLUMNS.len()).map(|i| r.get::<_, Value>(i).map(as_text));
        let mut next = || text.next().transpose().map(Option::flatten);
        Ok(PylantirRow {
            id: r.get(0)?,
            study_instance_uid: next()?,
            patient_name: next()?,
            patient_id: next()?,
            patient_birth_date: next()?,
            patient_sex: next()?,
            patient_weight_lb: next()?,
            accession_number: next()?,
            referring_physician_name: next()?,
            modality: next()?,
            study_description: next()?,
            scheduled_station_aetitle: next()?,
            scheduled_start_date: next()?,
            scheduled_start_time: next()?,
            performing_physician: next()?,
            procedure_description: next()?,
            protocol_name: next()?,
            station_name: next()?,
            hisris_coding_designator: next()?,
            performed_procedure_step_status: next()?,
            data_source: next()?,
            source_record_id: next()?,
        })
    })?;
    Ok(Some(rows.collect::<Result<_, _>>()?))
}

/// A column's value as text: SQLite may hold a number where Pylantir meant text (a
/// weight of `100`, a date written as an integer). Blank text reads as `None`.
fn as_text(v: Value) -> Option<String> {
    let s = match v {
        Value::Null | Value::Blob(_) => return None,
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(s) => s,
    };
    (!s.trim().is_empty()).then_some(s)
}

/// How many rows of Pylantir's table in `conn`'s own file no import has handled (0
/// without the table; all of them in a file mwlbridge has not opened yet).
pub(crate) fn pending(conn: &Connection) -> Result<u64, StoreError> {
    if !has_table(conn)? {
        return Ok(0);
    }
    let imported = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'pylantir_imports'",
        [],
        |r| r.get::<_, i64>(0),
    )? > 0;
    let sql = if imported {
        format!(
            "SELECT count(*) FROM {PYLANTIR_TABLE}
             WHERE id NOT IN (SELECT pylantir_row_id FROM pylantir_imports)"
        )
    } else {
        format!("SELECT count(*) FROM {PYLANTIR_TABLE}")
    };
    let n: i64 = conn.query_row(&sql, [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// [`pending`] of the file at `path`, opened read-only and changed in no way (for
/// `check-config`, which must not migrate a file the service will open).
pub fn pending_at(path: &Path) -> Result<u64, StoreError> {
    let conn = open_read_only(path)?;
    pending(&conn)
}

fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

/// Applies `items` inside `tx`: each row not imported before is stored (unless its entry
/// is stored already, which wins) or recorded as skipped.
pub(crate) fn import(
    tx: &Transaction<'_>,
    items: Vec<ImportItem>,
    now: &str,
) -> Result<ImportCounts, StoreError> {
    let mut counts = ImportCounts::default();
    for item in items {
        let row_id = match &item {
            ImportItem::Entry { row_id, .. } | ImportItem::Skipped { row_id } => *row_id,
        };
        let done: Option<i64> = tx
            .query_row(
                "SELECT pylantir_row_id FROM pylantir_imports WHERE pylantir_row_id = ?1",
                [row_id],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_some() {
            counts.already_imported += 1;
            continue;
        }
        let (outcome, key) = match item {
            ImportItem::Skipped { .. } => {
                counts.skipped += 1;
                ("skipped", None)
            }
            ImportItem::Entry { entry, set_by, .. } => {
                let key = (entry.source.clone(), entry.source_record_id.clone());
                if entries::get(tx, &key.0, &key.1)?.is_some() {
                    counts.present += 1;
                    ("present", Some(key))
                } else {
                    entries::insert(tx, &entry, set_by, now)?;
                    counts.imported += 1;
                    ("imported", Some(key))
                }
            }
        };
        let (source, record_id) = key.unzip();
        tx.execute(
            "INSERT INTO pylantir_imports
                 (pylantir_row_id, outcome, source, source_record_id, imported_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![row_id, outcome, source, record_id, now],
        )?;
    }
    Ok(counts)
}
