//! Streaming reads: the entries of one listing, row by row, from one consistent snapshot.
//!
//! [`Store::list`] collects every matching entry before returning, so its memory grows
//! with the number of matches. [`Store::read_snapshot`] instead opens one read
//! transaction on a pooled reader connection and hands a [`Snapshot`] to a closure;
//! [`Snapshot::scan_entries`] calls back once per row, in [`Store::list`]'s order, and
//! stops as soon as the callback says so. Everything read inside the closure comes from
//! the database as it was when the first row was read: a sync committing meanwhile is not
//! seen (SQLite WAL snapshot isolation). The transaction ends, and the connection goes
//! back to the pool, when the closure returns, whether it finished, stopped early, failed
//! or panicked, so a writer's checkpoint is held up only while a scan runs.

use std::ops::ControlFlow;

use rusqlite::Connection;

use crate::error::StoreError;
use crate::model::StoredEntry;
use crate::store::{ENTRY_COLUMNS, EntryFilter, RawEntry, Store, format_da};

/// One read transaction: every read through it sees the same state of the database.
///
/// Only lent to the closure of [`Store::read_snapshot`], which ends the transaction when
/// it returns.
pub struct Snapshot<'c> {
    conn: &'c Connection,
}

impl std::fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

/// How a [`Snapshot::scan_entries`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every row of the listing was handed to the callback.
    Finished,
    /// The callback asked to stop; the remaining rows were not read.
    Stopped,
}

impl Store {
    /// Runs `f` inside one read transaction on a pooled reader connection and returns its
    /// result. The transaction ends when `f` returns (or panics); nothing `f` reads
    /// through the [`Snapshot`] sees a write committed after the snapshot's first read.
    ///
    /// Blocking, like every store method: async callers run it on the blocking pool.
    pub fn read_snapshot<R>(
        &self,
        f: impl FnOnce(&Snapshot<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.with_reader(|conn| {
            // Deferred: the read transaction (and its snapshot) starts at the first read.
            // Dropped without commit (an error, a panic), it is rolled back: for a read
            // transaction that only releases it.
            let tx = conn.unchecked_transaction()?;
            let result = f(&Snapshot { conn: &tx })?;
            tx.commit()?;
            Ok(result)
        })
    }

    /// [`Snapshot::scan_entries`] in a snapshot of its own.
    pub fn scan_entries(
        &self,
        filter: &EntryFilter,
        f: impl FnMut(StoredEntry) -> ControlFlow<()>,
    ) -> Result<ScanEnd, StoreError> {
        self.read_snapshot(|snapshot| snapshot.scan_entries(filter, f))
    }
}

impl Snapshot<'_> {
    /// Calls `f` with each entry matching `filter`, ordered by scheduled start (as
    /// [`Store::list`]), one row at a time: memory does not grow with the number of rows.
    /// Stops, without reading further rows, when `f` returns [`ControlFlow::Break`].
    ///
    /// A row that cannot be read back ([`StoreError::Corrupt`]) ends the scan with that
    /// error; the entries before it were already handed to `f`.
    pub fn scan_entries(
        &self,
        filter: &EntryFilter,
        mut f: impl FnMut(StoredEntry) -> ControlFlow<()>,
    ) -> Result<ScanEnd, StoreError> {
        let (sql, args) = entries_query(filter);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
        while let Some(row) = rows.next()? {
            let entry = RawEntry::from_row(row)?.into_stored()?;
            if f(entry).is_break() {
                return Ok(ScanEnd::Stopped);
            }
        }
        Ok(ScanEnd::Finished)
    }

    /// How many entries the store holds, in this snapshot.
    pub fn count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM worklist_entries", [], |r| r.get(0))?)
    }
}

/// The SELECT of the entries matching `filter`, ordered by scheduled start then row id,
/// and its positional arguments.
pub(crate) fn entries_query(filter: &EntryFilter) -> (String, Vec<String>) {
    let mut sql = format!(
        "SELECT {} FROM worklist_entries WHERE 1 = 1",
        *ENTRY_COLUMNS
    );
    let mut args: Vec<String> = Vec::new();
    let mut push = |clause: &str, value: String, sql: &mut String| {
        args.push(value);
        sql.push_str(&format!(" AND {clause} ?{}", args.len()));
    };
    if let Some(d) = filter.from_date {
        push("sps_start_date >=", format_da(d), &mut sql);
    }
    if let Some(d) = filter.to_date {
        push("sps_start_date <=", format_da(d), &mut sql);
    }
    if let Some(v) = &filter.station_ae_title {
        push("station_ae_title =", v.clone(), &mut sql);
    }
    if let Some(v) = &filter.modality {
        push("modality =", v.clone(), &mut sql);
    }
    if let Some(v) = &filter.patient_id {
        push("patient_id =", v.clone(), &mut sql);
    }
    if let Some(v) = &filter.source {
        push("source =", v.clone(), &mut sql);
    }
    if !filter.patient_name_prefixes.is_empty()
        && filter.patient_name_prefixes.iter().all(|p| !p.is_empty())
    {
        // One key range per prefix, and the names that have no key: several component
        // groups (each is compared with the query), or not computed yet. Every term reads
        // a range of idx_entries_patient_name.
        let mut terms = vec![
            "patient_name_groups IS NULL".to_string(),
            "patient_name_groups > 1".to_string(),
        ];
        for prefix in &filter.patient_name_prefixes {
            args.push(prefix.clone());
            let mut term = format!(
                "(patient_name_groups = 1 AND patient_name_key >= ?{}",
                args.len()
            );
            if let Some(upper) = crate::pn::prefix_upper_bound(prefix) {
                args.push(upper);
                term.push_str(&format!(" AND patient_name_key < ?{}", args.len()));
            }
            term.push(')');
            terms.push(term);
        }
        let names = terms.join(" OR ");
        if filter.patient_id.is_some() {
            // The patient index finds a handful of rows; their names are tested as read.
            sql.push_str(&format!(" AND ({names})"));
        } else {
            // As a list of row ids read from the name index. Written as terms of this
            // WHERE, SQLite's planner (its sampled statistics take the status index for
            // selective) read nearly every row through the status index and tested each
            // name: 10x slower at 10,000 items.
            sql.push_str(&format!(
                " AND id IN (SELECT id FROM worklist_entries WHERE {names})"
            ));
        }
    }
    if !filter.statuses.is_empty() {
        let list: Vec<String> = filter
            .statuses
            .iter()
            .map(|s| format!("'{}'", s.as_dicom()))
            .collect();
        sql.push_str(&format!(" AND status IN ({})", list.join(", ")));
    }
    sql.push_str(" ORDER BY sps_start_date, sps_start_time, id");
    (sql, args)
}
