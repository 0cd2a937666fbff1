//! Streaming reads: the entries of one listing, row by row, from one consistent snapshot.
//!
//! [`Store::list`](crate::Store::list) collects every matching entry before returning, so its memory grows
//! with the number of matches. [`Store::read_snapshot`](crate::Store::read_snapshot) instead opens one read
//! transaction on a pooled reader connection and hands a [`Snapshot`] to a closure;
//! [`Snapshot::scan_entries`] calls back once per row, in [`Store::list`](crate::Store::list)'s order, and
//! stops as soon as the callback says so. Everything read inside the closure comes from
//! the database as it was when the first row was read: a sync committing meanwhile is not
//! seen (SQLite WAL snapshot isolation). The transaction ends, and the connection goes
//! back to the pool, when the closure returns, whether it finished, stopped early, failed
//! or panicked, so a writer's checkpoint is held up only while a scan runs.

use std::ops::ControlFlow;

use rusqlite::Connection;
use worklist_model::StoredEntry;

use crate::entries;
use crate::error::StoreError;
use crate::filter::EntryFilter;

/// One read transaction: every read through it sees the same state of the database.
///
/// Only lent to the closure of [`Store::read_snapshot`](crate::Store::read_snapshot), which ends the transaction when
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

/// Runs `f` inside one read transaction on `conn` and returns its result. The
/// transaction ends when `f` returns (or panics); nothing `f` reads through the
/// [`Snapshot`] sees a write committed after the snapshot's first read.
pub(crate) fn read<R>(
    conn: &Connection,
    f: impl FnOnce(&Snapshot<'_>) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    // Deferred: the read transaction (and its snapshot) starts at the first read.
    // Dropped without commit (an error, a panic), it is rolled back: for a read
    // transaction that only releases it.
    let tx = conn.unchecked_transaction()?;
    let result = f(&Snapshot { conn: &tx })?;
    tx.commit()?;
    Ok(result)
}

impl Snapshot<'_> {
    /// Calls `f` with each entry matching `filter`, ordered by scheduled start (as
    /// [`Store::list`](crate::Store::list)), one row at a time: memory does not grow with
    /// the number of rows. Stops, without reading further rows, when `f` returns
    /// [`ControlFlow::Break`].
    ///
    /// A row that cannot be read back ([`StoreError::Corrupt`]) ends the scan with that
    /// error; the entries before it were already handed to `f`.
    pub fn scan_entries(
        &self,
        filter: &EntryFilter,
        mut f: impl FnMut(StoredEntry) -> ControlFlow<()>,
    ) -> Result<ScanEnd, StoreError> {
        let (sql, args) = entries::listing(filter);
        let finished = entries::for_each(
            &mut *self.conn.prepare_cached(&sql)?,
            rusqlite::params_from_iter(args.iter()),
            |entry| f(entry).is_continue(),
        )?;
        Ok(if finished {
            ScanEnd::Finished
        } else {
            ScanEnd::Stopped
        })
    }

    /// How many entries the store holds, in this snapshot.
    pub fn count(&self) -> Result<u64, StoreError> {
        entries::count(self.conn)
    }
}
