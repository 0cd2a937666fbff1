//! The SQLite worklist store: opening, reading and writing entries.
//!
//! One writer connection and a small pool of reader connections, all on one file in WAL
//! mode, so reads never wait for a sync's write. Every method is blocking; async callers use
//! [`Store::run`], which moves the work to tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use crate::error::StoreError;
use crate::model::{EntryMeta, StatusSetBy, StepStatus, StoredEntry, WorklistEntry};
use crate::schema;

/// How many idle reader connections are kept.
const READER_POOL: usize = 8;
/// SQLite page cache of each reader connection, KiB (SQLite's default: 2000). Each
/// connection keeps its cache for life, so this multiplies by the readers in use; reads
/// that miss it are served from the OS page cache. Measured at 100,000 items: 1 MiB keeps
/// the indexed lookups' p99 of the 2 MiB default (256 KiB doubled it) and saves ~1 MB
/// resident per reader.
const READER_CACHE_KIB: i64 = 1024;
/// How long a statement waits for a lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A handle on the worklist database. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// Which entries a listing returns. Every field narrows; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    /// First scheduled start date (inclusive).
    pub from_date: Option<Date>,
    /// Last scheduled start date (inclusive).
    pub to_date: Option<Date>,
    /// Scheduled Station AE Title, exact.
    pub station_ae_title: Option<String>,
    /// Modality, exact.
    pub modality: Option<String>,
    /// Patient ID, exact.
    pub patient_id: Option<String>,
    /// Only these statuses (empty: all).
    pub statuses: Vec<StepStatus>,
    /// Data source name, exact.
    pub source: Option<String>,
    /// Patient-name search-key prefixes, folded as [`crate::pn::fold`] folds: only
    /// entries whose key starts with one of them, and every entry whose name has several
    /// component groups or whose key is not computed yet (see [`crate::pn`]). Empty (or
    /// holding an empty prefix): any name.
    pub patient_name_prefixes: Vec<String>,
}

pub(crate) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let open = || -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(conn)
    };
    // Switching a file to WAL (and the WAL recovery of another connection's first open)
    // can answer SQLITE_BUSY without consulting the busy handler, so a process opening
    // the file while another one does gets a short retry loop of its own.
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match open() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => {
                return other.map_err(|source| StoreError::Open {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it to the current
    /// schema. The parent directory must exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut writer = open_connection(&path)?;
        schema::migrate(&mut writer, &path)?;
        refresh_name_keys(&mut writer)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs blocking store work on tokio's blocking pool, so the async runtime is never
    /// held up by SQLite.
    pub async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// The writer connection (one writer at a time).
    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back
        // an unfinished transaction when it is dropped.
        self.inner
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on a reader connection from the pool.
    pub(crate) fn with_reader<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let pooled = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let conn = open_connection(&self.inner.path)?;
                // Negative: a size in KiB.
                conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
                conn
            }
        };
        let result = f(&conn);
        let mut pool = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < READER_POOL {
            pool.push(conn);
        }
        result
    }

    /// The entry of `(source, record id)`, if stored.
    pub fn get(&self, source: &str, record_id: &str) -> Result<Option<StoredEntry>, StoreError> {
        self.with_reader(|conn| get_entry(conn, source, record_id))
    }

    /// The entry with that row id, if stored.
    pub fn get_by_row_id(&self, row_id: i64) -> Result<Option<StoredEntry>, StoreError> {
        self.with_reader(|conn| {
            let sql = format!(
                "SELECT {} FROM worklist_entries WHERE id = ?1",
                *ENTRY_COLUMNS
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let raw = stmt.query_row([row_id], RawEntry::from_row).optional()?;
            raw.map(RawEntry::into_stored).transpose()
        })
    }

    /// Entries matching `filter`, ordered by scheduled start.
    pub fn list(&self, filter: &EntryFilter) -> Result<Vec<StoredEntry>, StoreError> {
        let (sql, args) = crate::stream::entries_query(filter);
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows =
                stmt.query_map(rusqlite::params_from_iter(args.iter()), RawEntry::from_row)?;
            rows.map(|r| r.map_err(StoreError::from).and_then(RawEntry::into_stored))
                .collect()
        })
    }

    /// How many entries the store holds.
    pub fn count(&self) -> Result<u64, StoreError> {
        self.with_reader(|conn| {
            Ok(conn.query_row("SELECT count(*) FROM worklist_entries", [], |r| r.get(0))?)
        })
    }

    /// How many entries the store holds in each status (statuses with none are absent).
    pub fn count_by_status(&self) -> Result<Vec<(StepStatus, u64)>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT status, count(*) FROM worklist_entries GROUP BY status")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (status, n) = row?;
                if let Ok(s) = status.parse::<StepStatus>() {
                    out.push((s, n));
                }
            }
            Ok(out)
        })
    }

    /// Sets an entry's status on behalf of `by` (MPPS or an administrator). A status set
    /// this way is never changed by a sync. Returns false when no such row exists.
    pub fn set_status(
        &self,
        row_id: i64,
        status: StepStatus,
        by: StatusSetBy,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let conn = self.writer();
        let now = now.to_string();
        let n = conn.execute(
            "UPDATE worklist_entries
                SET status = ?2, status_set_by = ?3, status_changed_at = ?4, last_updated = ?4
              WHERE id = ?1",
            params![row_id, status.as_dicom(), by.as_str(), now],
        )?;
        Ok(n == 1)
    }

    /// Removes entries whose step ended (or, without an end, started) before `cutoff`,
    /// local time. Returns how many were removed.
    pub fn purge_ended_before(&self, cutoff: DateTime) -> Result<usize, StoreError> {
        let conn = self.writer();
        let (d, t) = (format_da(cutoff.date()), format_tm(cutoff.time()));
        let n = conn.execute(
            "DELETE FROM worklist_entries
              WHERE coalesce(sps_end_date, sps_start_date) || coalesce(sps_end_time, sps_start_time)
                    < ?1 || ?2",
            params![d, t],
        )?;
        Ok(n)
    }
}

/// DICOM DA form of a date: `YYYYMMDD`.
pub fn format_da(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

/// DICOM TM form of a time, to the second: `HHMMSS`.
pub fn format_tm(t: Time) -> String {
    format!("{:02}{:02}{:02}", t.hour(), t.minute(), t.second())
}

/// Parses DICOM DA `YYYYMMDD`.
pub fn parse_da(s: &str) -> Option<Date> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i16 = s[0..4].parse().ok()?;
    let m: i8 = s[4..6].parse().ok()?;
    let d: i8 = s[6..8].parse().ok()?;
    Date::new(y, m, d).ok()
}

/// Parses DICOM TM `HHMMSS` (also `HHMM` and `HH`; a fraction is ignored).
pub fn parse_tm(s: &str) -> Option<Time> {
    let whole = s.split('.').next().unwrap_or("");
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !matches!(whole.len(), 2 | 4 | 6) {
        return None;
    }
    let part = |i: usize| -> Option<i8> {
        if whole.len() > i {
            whole[i..i + 2].parse().ok()
        } else {
            Some(0)
        }
    };
    Time::new(part(0)?, part(2)?, part(4)?, 0).ok()
}

/// The columns holding an entry's values, in [`crate::reconcile`]'s write order and the
/// order [`RawEntry::into_stored`] reads them.
pub(crate) const CONTENT_COLUMNS: [&str; 25] = [
    "source",
    "source_record_id",
    "patient_name",
    "patient_id",
    "patient_birth_date",
    "patient_sex",
    "patient_weight_kg",
    "study_instance_uid",
    "accession_number",
    "study_description",
    "referring_physician_name",
    "requested_procedure_id",
    "requested_procedure_description",
    "sps_id",
    "station_ae_title",
    "station_name",
    "sps_start_date",
    "sps_start_time",
    "sps_end_date",
    "sps_end_time",
    "modality",
    "performing_physician_name",
    "sps_description",
    "sps_location",
    "status",
];

/// The columns derived from the content ones, written with them by [`crate::reconcile`]
/// (never read back into an entry): the patient name's search key and group count
/// ([`crate::pn::name_search_key`]), in [`name_key_values`]' order.
pub(crate) const NAME_KEY_COLUMNS: [&str; 2] = ["patient_name_key", "patient_name_groups"];

/// The values of [`NAME_KEY_COLUMNS`] for a patient name.
pub(crate) fn name_key_values(patient_name: Option<&str>) -> [rusqlite::types::Value; 2] {
    use rusqlite::types::Value;
    let (key, groups) = crate::pn::name_search_key(patient_name);
    [key.map_or(Value::Null, Value::Text), Value::Integer(groups)]
}

/// The `store_settings` row naming the case folding that wrote the name keys.
const NAME_KEY_FOLDING: &str = "patient_name_key_folding";

/// Computes the name search keys ([`NAME_KEY_COLUMNS`]) of the rows that have none yet
/// (written before schema version 5, or by an older mwlbridge still running), or of every
/// row when they were written with another case folding ([`crate::pn::fold_version`]), in
/// one transaction. Takes the write lock only when there is something to do.
fn refresh_name_keys(conn: &mut Connection) -> Result<(), StoreError> {
    let current = crate::pn::fold_version();
    let needs = |conn: &Connection| -> Result<(bool, bool), rusqlite::Error> {
        let folding: Option<String> = conn
            .query_row(
                "SELECT value FROM store_settings WHERE name = ?1",
                [NAME_KEY_FOLDING],
                |r| r.get(0),
            )
            .optional()?;
        let refold = folding.as_deref() != Some(current.as_str());
        let missing: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM worklist_entries WHERE patient_name_groups IS NULL)",
            [],
            |r| r.get(0),
        )?;
        Ok((refold, missing))
    };
    if needs(conn)? == (false, false) {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Again under the write lock: another process may have done it meanwhile.
    let (refold, missing) = needs(&tx)?;
    if refold || missing {
        let rows: Vec<(i64, Option<String>)> = {
            let sql = if refold {
                "SELECT id, patient_name FROM worklist_entries"
            } else {
                "SELECT id, patient_name FROM worklist_entries WHERE patient_name_groups IS NULL"
            };
            let mut stmt = tx.prepare(sql)?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        let sets: Vec<String> = NAME_KEY_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ?{}", i + 2))
            .collect();
        let mut stmt = tx.prepare(&format!(
            "UPDATE worklist_entries SET {} WHERE id = ?1",
            sets.join(", ")
        ))?;
        for (id, name) in &rows {
            let [key, groups] = name_key_values(name.as_deref());
            stmt.execute(params![id, key, groups])?;
        }
        drop(stmt);
        tx.execute(
            "INSERT INTO store_settings (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            params![NAME_KEY_FOLDING, current],
        )?;
        tracing::info!(
            rows = rows.len(),
            folding = %current,
            "patient name search keys computed"
        );
    }
    tx.commit()?;
    Ok(())
}

/// The bookkeeping columns, after the content ones.
const META_COLUMNS: [&str; 4] = [
    "status_set_by",
    "first_seen",
    "last_updated",
    "status_changed_at",
];

/// The columns every entry query selects: `id`, [`CONTENT_COLUMNS`], [`META_COLUMNS`].
pub(crate) static ENTRY_COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "id, {}, {}",
        CONTENT_COLUMNS.join(", "),
        META_COLUMNS.join(", ")
    )
});

pub(crate) fn get_entry(
    conn: &Connection,
    source: &str,
    record_id: &str,
) -> Result<Option<StoredEntry>, StoreError> {
    let sql = format!(
        "SELECT {} FROM worklist_entries WHERE source = ?1 AND source_record_id = ?2",
        *ENTRY_COLUMNS
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let raw = stmt
        .query_row([source, record_id], RawEntry::from_row)
        .optional()?;
    raw.map(RawEntry::into_stored).transpose()
}

/// A row as SQLite gives it, before the typed values are parsed.
pub(crate) struct RawEntry {
    id: i64,
    values: Vec<rusqlite::types::Value>,
}

impl RawEntry {
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<RawEntry> {
        // By position: looking 29 columns up by name costs more than reading them.
        let values = (1..=CONTENT_COLUMNS.len() + META_COLUMNS.len())
            .map(|i| row.get::<_, rusqlite::types::Value>(i))
            .collect::<rusqlite::Result<_>>()?;
        Ok(RawEntry {
            id: row.get(0)?,
            values,
        })
    }

    pub(crate) fn into_stored(self) -> Result<StoredEntry, StoreError> {
        use rusqlite::types::Value;
        let id = self.id;
        let weight_at = CONTENT_COLUMNS
            .iter()
            .position(|c| *c == "patient_weight_kg")
            .unwrap_or(usize::MAX);
        let weight = match self.values.get(weight_at) {
            Some(Value::Real(r)) => Some(*r),
            Some(Value::Integer(n)) => Some(*n as f64),
            _ => None,
        };
        let mut it = self
            .values
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i != weight_at)
            .map(|(_, v)| match v {
                Value::Text(t) => Some(t),
                _ => None,
            });
        let mut next = move || it.next().flatten();
        let (source, source_record_id, patient_name, patient_id, birth, patient_sex) =
            (next(), next(), next(), next(), next(), next());
        let (study_instance_uid, accession_number, study_description, referring_physician_name) =
            (next(), next(), next(), next());
        let (requested_procedure_id, requested_procedure_description, sps_id) =
            (next(), next(), next());
        let (station_ae_title, station_name, start_date, start_time, end_date, end_time) =
            (next(), next(), next(), next(), next(), next());
        let (modality, performing_physician_name, sps_description, sps_location) =
            (next(), next(), next(), next());
        let (status, set_by, first_seen, last_updated, status_changed_at) =
            (next(), next(), next(), next(), next());
        let corrupt = |column: &'static str, reason: &str| StoreError::Corrupt {
            row_id: id,
            column,
            reason: reason.to_string(),
        };
        let req =
            |v: Option<String>, column: &'static str| v.ok_or_else(|| corrupt(column, "missing"));
        let date = |v: &str, column| parse_da(v).ok_or_else(|| corrupt(column, "not a DICOM date"));
        let time = |v: &str, column| parse_tm(v).ok_or_else(|| corrupt(column, "not a DICOM time"));
        let ts = |v: Option<String>, column: &'static str| -> Result<Timestamp, StoreError> {
            req(v, column)?
                .parse::<Timestamp>()
                .map_err(|e| corrupt(column, &e.to_string()))
        };
        let start = date(&req(start_date, "sps_start_date")?, "sps_start_date")?
            .to_datetime(time(&req(start_time, "sps_start_time")?, "sps_start_time")?);
        let end = match (end_date, end_time) {
            (Some(d), Some(t)) => {
                Some(date(&d, "sps_end_date")?.to_datetime(time(&t, "sps_end_time")?))
            }
            (None, None) => None,
            _ => {
                return Err(corrupt(
                    "sps_end_date",
                    "end date and time must both be set",
                ));
            }
        };
        let entry = WorklistEntry {
            source: req(source, "source")?,
            source_record_id: req(source_record_id, "source_record_id")?,
            patient_name,
            patient_id: req(patient_id, "patient_id")?,
            patient_birth_date: birth.map(|b| date(&b, "patient_birth_date")).transpose()?,
            patient_sex,
            patient_weight_kg: weight,
            study_instance_uid: req(study_instance_uid, "study_instance_uid")?,
            accession_number: req(accession_number, "accession_number")?,
            study_description,
            referring_physician_name,
            requested_procedure_id: req(requested_procedure_id, "requested_procedure_id")?,
            requested_procedure_description,
            sps_id: req(sps_id, "sps_id")?,
            station_ae_title,
            station_name,
            start,
            end,
            modality,
            performing_physician_name,
            sps_description,
            sps_location,
            status: req(status, "status")?
                .parse()
                .map_err(|e: crate::model::UnknownTerm| corrupt("status", &e.to_string()))?,
        };
        let meta = EntryMeta {
            row_id: id,
            first_seen: ts(first_seen, "first_seen")?,
            last_updated: ts(last_updated, "last_updated")?,
            status_changed_at: ts(status_changed_at, "status_changed_at")?,
            status_set_by: req(set_by, "status_set_by")?
                .parse()
                .map_err(|e: crate::model::UnknownTerm| corrupt("status_set_by", &e.to_string()))?,
        };
        Ok(StoredEntry { entry, meta })
    }
}
