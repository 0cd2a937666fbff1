//! The SQL of `worklist_entries`, as functions over a connection or transaction: reading
//! entries (one, a listing, counts) and writing them (insert, update, status, delete,
//! purge). Rows are read and written through the [row codec](crate::row).

use std::sync::LazyLock;

use jiff::civil::DateTime;
use rusqlite::{Connection, Params, Statement, params};
use worklist_model::{StatusSetBy, StepStatus, StoredEntry, WorklistEntry, format_da, format_tm};

use crate::error::StoreError;
use crate::filter::{self, EntryFilter};
use crate::row;

/// The entries of `stmt` run with `params`, each handed to `f` as it is read; stops at the
/// first error, or when `f` returns false.
pub(crate) fn for_each(
    stmt: &mut Statement<'_>,
    params: impl Params,
    mut f: impl FnMut(StoredEntry) -> bool,
) -> Result<bool, StoreError> {
    let mut rows = stmt.query(params)?;
    while let Some(row) = rows.next()? {
        if !f(row::decode(row)?) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The first entry of `stmt` run with `params`, if any.
fn first(stmt: &mut Statement<'_>, params: impl Params) -> Result<Option<StoredEntry>, StoreError> {
    stmt.query(params)?.next()?.map(row::decode).transpose()
}

/// The entry of `(source, record id)`, if stored.
pub(crate) fn get(
    conn: &Connection,
    source: &str,
    record_id: &str,
) -> Result<Option<StoredEntry>, StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM worklist_entries WHERE source = ?1 AND source_record_id = ?2",
            *row::SELECT_COLUMNS
        )
    });
    first(&mut *conn.prepare_cached(&SQL)?, [source, record_id])
}

/// The entry with that row id, if stored.
pub(crate) fn get_by_row_id(
    conn: &Connection,
    row_id: i64,
) -> Result<Option<StoredEntry>, StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM worklist_entries WHERE id = ?1",
            *row::SELECT_COLUMNS
        )
    });
    first(&mut *conn.prepare_cached(&SQL)?, [row_id])
}

/// The SELECT of the entries matching `filter`, ordered by scheduled start then row id,
/// and its positional arguments.
pub(crate) fn listing(filter: &EntryFilter) -> (String, Vec<String>) {
    let (condition, args) = filter::condition(filter);
    let sql = format!(
        "SELECT {} FROM worklist_entries WHERE {condition} ORDER BY sps_start_date, sps_start_time, id",
        *row::SELECT_COLUMNS
    );
    (sql, args)
}

/// The entries matching `filter`, ordered by scheduled start.
pub(crate) fn list(
    conn: &Connection,
    filter: &EntryFilter,
) -> Result<Vec<StoredEntry>, StoreError> {
    let (sql, args) = listing(filter);
    let mut out = Vec::new();
    for_each(
        &mut *conn.prepare_cached(&sql)?,
        rusqlite::params_from_iter(args.iter()),
        |e| {
            out.push(e);
            true
        },
    )?;
    Ok(out)
}

/// The source's stored entries whose step starts on the dates from `first_day` to
/// `last_day` (in no particular order).
pub(crate) fn of_source_between(
    conn: &Connection,
    source: &str,
    first_day: jiff::civil::Date,
    last_day: jiff::civil::Date,
) -> Result<Vec<StoredEntry>, StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM worklist_entries
              WHERE source = ?1 AND sps_start_date >= ?2 AND sps_start_date <= ?3",
            *row::SELECT_COLUMNS
        )
    });
    let mut out = Vec::new();
    for_each(
        &mut *conn.prepare_cached(&SQL)?,
        params![source, format_da(first_day), format_da(last_day)],
        |e| {
            out.push(e);
            true
        },
    )?;
    Ok(out)
}

/// How many entries the store holds.
pub(crate) fn count(conn: &Connection) -> Result<u64, StoreError> {
    Ok(conn.query_row("SELECT count(*) FROM worklist_entries", [], |r| r.get(0))?)
}

/// How many entries the store holds in each status (statuses with none are absent).
pub(crate) fn count_by_status(conn: &Connection) -> Result<Vec<(StepStatus, u64)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT status, count(*) FROM worklist_entries GROUP BY status")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (status, n) = row?;
        if let Ok(s) = status.parse::<StepStatus>() {
            out.push((s, n));
        }
    }
    Ok(out)
}

/// Stores a new entry whose status was set by `set_by`.
pub(crate) fn insert(
    conn: &Connection,
    e: &WorklistEntry,
    set_by: StatusSetBy,
    now: &str,
) -> Result<(), StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let columns = &*row::WRITTEN_COLUMNS;
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let n = columns.len() + 1;
        format!(
            "INSERT INTO worklist_entries ({}, status_set_by, first_seen, last_updated, status_changed_at)
             VALUES ({}, ?{m}, ?{n}, ?{n}, ?{n})",
            columns.join(", "),
            marks.join(", "),
            m = n + 1,
        )
    });
    let mut args = row::values(e);
    args.push(now.into());
    args.push(set_by.as_str().into());
    conn.prepare_cached(&SQL)?
        .execute(rusqlite::params_from_iter(args))?;
    Ok(())
}

/// Rewrites a stored entry's values; `status_set_by` is `Some` when the status changed
/// (and says who changed it).
pub(crate) fn update(
    conn: &Connection,
    row_id: i64,
    e: &WorklistEntry,
    status_set_by: Option<StatusSetBy>,
    now: &str,
) -> Result<(), StoreError> {
    /// The UPDATE of the written columns and `last_updated`, then, with `status`, of who
    /// set the status and when.
    fn sql(status: bool) -> String {
        let columns = &*row::WRITTEN_COLUMNS;
        let sets: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ?{}", i + 1))
            .collect();
        let n = sets.len();
        let status_sql = if status {
            format!(
                ", status_set_by = ?{}, status_changed_at = ?{}",
                n + 3,
                n + 1
            )
        } else {
            String::new()
        };
        format!(
            "UPDATE worklist_entries SET {}, last_updated = ?{}{status_sql} WHERE id = ?{}",
            sets.join(", "),
            n + 1,
            n + 2
        )
    }
    static VALUES_ONLY: LazyLock<String> = LazyLock::new(|| sql(false));
    static WITH_STATUS: LazyLock<String> = LazyLock::new(|| sql(true));
    let mut args = row::values(e);
    args.push(now.into());
    args.push(row_id.into());
    let sql = match status_set_by {
        Some(by) => {
            args.push(by.as_str().into());
            &*WITH_STATUS
        }
        None => &*VALUES_ONLY,
    };
    conn.prepare_cached(sql)?
        .execute(rusqlite::params_from_iter(args))?;
    Ok(())
}

/// Sets an entry's status on behalf of `by`. Returns false when no such row exists.
pub(crate) fn set_status(
    conn: &Connection,
    row_id: i64,
    status: StepStatus,
    by: StatusSetBy,
    now: &str,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE worklist_entries
            SET status = ?2, status_set_by = ?3, status_changed_at = ?4, last_updated = ?4
          WHERE id = ?1",
        params![row_id, status.as_dicom(), by.as_str(), now],
    )?;
    Ok(n == 1)
}

/// The first entry of `source` whose record id starts with `prefix` and that has the
/// same Patient ID and start date as `e` (an entry imported from Pylantir without its
/// record, which a sync bringing `e` takes over).
pub(crate) fn with_prefix_for(
    conn: &Connection,
    source: &str,
    prefix: &str,
    e: &WorklistEntry,
) -> Result<Option<StoredEntry>, StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM worklist_entries
              WHERE source = ?1 AND patient_id = ?2 AND sps_start_date = ?3
                AND substr(source_record_id, 1, length(?4)) = ?4
              ORDER BY id LIMIT 1",
            *row::SELECT_COLUMNS,
        )
    });
    let date = format_da(e.start.date());
    first(
        &mut *conn.prepare_cached(&SQL)?,
        params![source, e.patient_id, date, prefix],
    )
}

/// Gives the entry with that row id another record id (a provisional entry taken over by
/// its source's record).
pub(crate) fn rekey(conn: &Connection, row_id: i64, record_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE worklist_entries SET source_record_id = ?2 WHERE id = ?1",
        params![row_id, record_id],
    )?;
    Ok(())
}

/// Removes the entry with that row id.
pub(crate) fn delete(conn: &Connection, row_id: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM worklist_entries WHERE id = ?1", [row_id])?;
    Ok(())
}

/// Removes the entry of `(source, record id)`; false when there was none.
pub(crate) fn delete_record(
    conn: &Connection,
    source: &str,
    record_id: &str,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "DELETE FROM worklist_entries WHERE source = ?1 AND source_record_id = ?2",
        params![source, record_id],
    )?;
    Ok(n == 1)
}

/// Removes entries whose step ended (or, without an end, started) before `cutoff`, local
/// time. Returns how many were removed.
pub(crate) fn purge_ended_before(conn: &Connection, cutoff: DateTime) -> Result<usize, StoreError> {
    let (d, t) = (format_da(cutoff.date()), format_tm(cutoff.time()));
    let n = conn.execute(
        "DELETE FROM worklist_entries
          WHERE coalesce(sps_end_date, sps_start_date) || coalesce(sps_end_time, sps_start_time)
                < ?1 || ?2",
        params![d, t],
    )?;
    Ok(n)
}
