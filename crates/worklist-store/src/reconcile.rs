//! Reconcile: apply one complete fetch of a source to the store, in one transaction.

use std::collections::HashSet;

use jiff::Timestamp;
use rusqlite::{Connection, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::{StatusSetBy, StepStatus, StoredEntry, WorklistEntry};
use crate::source::{OnCancel, SyncWindow};
use crate::store::{
    CONTENT_COLUMNS, ENTRY_COLUMNS, NAME_KEY_COLUMNS, RawEntry, Store, format_da, format_tm,
    get_entry, name_key_values,
};

/// What one reconcile did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileCounts {
    /// Entries the fetch returned.
    pub fetched: u64,
    /// New entries stored.
    pub inserted: u64,
    /// Stored entries whose values or status changed (other than to DISCONTINUED).
    pub updated: u64,
    /// Stored entries the fetch confirmed as they were.
    pub unchanged: u64,
    /// Entries that became DISCONTINUED (cancelled, or vanished from the window).
    pub discontinued: u64,
    /// Entries removed (cancelled or vanished, with `on_cancel = "delete"`).
    pub deleted: u64,
    /// Fetched entries not stored because a value breaks its DICOM rules.
    pub rejected: u64,
}

impl std::fmt::Display for ReconcileCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fetched {}, inserted {}, updated {}, unchanged {}, discontinued {}, deleted {}, rejected {}",
            self.fetched,
            self.inserted,
            self.updated,
            self.unchanged,
            self.discontinued,
            self.deleted,
            self.rejected
        )
    }
}

impl Store {
    /// Applies a complete fetch of `source` covering `window`:
    ///
    /// - new entries are inserted; stored ones are updated only when a value changed;
    /// - an entry the source reports DISCONTINUED (a cancelled booking), and a stored entry
    ///   of this source that starts inside `window` but is missing from `entries`, becomes
    ///   DISCONTINUED, or is deleted when `on_cancel` is [`OnCancel::Delete`];
    /// - a status set by MPPS or an administrator is never changed (nor is such an entry
    ///   deleted); the entry's other values still follow the source;
    /// - entries outside `window` are left alone.
    ///
    /// All of it happens in one transaction: on error nothing changes.
    pub fn reconcile(
        &self,
        source: &str,
        window: &SyncWindow,
        entries: Vec<WorklistEntry>,
        on_cancel: OnCancel,
        now: Timestamp,
    ) -> Result<ReconcileCounts, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let counts = reconcile_in(&tx, source, window, entries, on_cancel, now)?;
        tx.commit()?;
        // Keeps the query planner's statistics current, so consoles' lookups use the most
        // selective index. Sampled (a thousand rows per index): milliseconds, not a scan.
        if counts.inserted + counts.updated + counts.deleted + counts.discontinued > 0 {
            conn.execute_batch("PRAGMA analysis_limit = 1000; ANALYZE worklist_entries;")?;
        }
        Ok(counts)
    }
}

fn reconcile_in(
    tx: &Transaction<'_>,
    source: &str,
    window: &SyncWindow,
    entries: Vec<WorklistEntry>,
    on_cancel: OnCancel,
    now: Timestamp,
) -> Result<ReconcileCounts, StoreError> {
    let now_s = now.to_string();
    let mut counts = ReconcileCounts {
        fetched: entries.len() as u64,
        ..Default::default()
    };
    let mut seen: HashSet<String> = HashSet::with_capacity(entries.len());

    for entry in entries {
        if entry.source != source {
            return Err(StoreError::SourceMismatch {
                expected: source.to_string(),
                found: entry.source,
                record_id: entry.source_record_id,
            });
        }
        seen.insert(entry.source_record_id.clone());
        let problems = entry.problems();
        if !problems.is_empty() {
            let fields: Vec<&str> = problems.iter().map(|(f, _)| *f).collect();
            // Field names and rule texts only: values may identify a subject.
            tracing::warn!(
                source,
                record_id = %entry.source_record_id,
                fields = ?fields,
                problem = %problems[0].1,
                "entry not stored: a value breaks its DICOM rules"
            );
            counts.rejected += 1;
            continue;
        }
        let cancelled = entry.status == StepStatus::Discontinued;
        match get_entry(tx, source, &entry.source_record_id)? {
            None => {
                if cancelled && on_cancel == OnCancel::Delete {
                    continue;
                }
                insert(tx, &entry, StatusSetBy::Sync, &now_s)?;
                counts.inserted += 1;
            }
            Some(stored) => {
                let protected = !stored.meta.status_set_by.sync_may_change();
                if protected {
                    if cancelled && stored.entry.status == StepStatus::Started {
                        tracing::warn!(
                            source,
                            record_id = %entry.source_record_id,
                            "booking cancelled in the source while the scan is in progress; \
                             keeping STARTED (set by {})",
                            stored.meta.status_set_by
                        );
                    }
                } else if cancelled && on_cancel == OnCancel::Delete {
                    delete(tx, stored.meta.row_id)?;
                    counts.deleted += 1;
                    continue;
                }
                let new_status = if protected {
                    stored.entry.status
                } else {
                    entry.status
                };
                let status_changed = new_status != stored.entry.status;
                let mut incoming = entry;
                incoming.status = stored.entry.status;
                if incoming == stored.entry && !status_changed {
                    counts.unchanged += 1;
                    continue;
                }
                incoming.status = new_status;
                update(
                    tx,
                    &stored,
                    &incoming,
                    status_changed.then_some(StatusSetBy::Sync),
                    &now_s,
                )?;
                if status_changed && new_status == StepStatus::Discontinued {
                    counts.discontinued += 1;
                } else {
                    counts.updated += 1;
                }
            }
        }
    }

    for stored in in_window(tx, source, window)? {
        if seen.contains(&stored.entry.source_record_id)
            || !stored.meta.status_set_by.sync_may_change()
        {
            continue;
        }
        match on_cancel {
            OnCancel::Delete => {
                delete(tx, stored.meta.row_id)?;
                counts.deleted += 1;
            }
            OnCancel::Discontinue if stored.entry.status != StepStatus::Discontinued => {
                tx.execute(
                    "UPDATE worklist_entries
                        SET status = 'DISCONTINUED', status_set_by = 'sync',
                            status_changed_at = ?2, last_updated = ?2
                      WHERE id = ?1",
                    params![stored.meta.row_id, now_s],
                )?;
                counts.discontinued += 1;
            }
            OnCancel::Discontinue => {}
        }
    }
    Ok(counts)
}

/// The source's stored entries whose step starts inside the window.
fn in_window(
    conn: &Connection,
    source: &str,
    window: &SyncWindow,
) -> Result<Vec<StoredEntry>, StoreError> {
    let sql = format!(
        "SELECT {} FROM worklist_entries
          WHERE source = ?1 AND sps_start_date >= ?2 AND sps_start_date <= ?3",
        *ENTRY_COLUMNS
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            source,
            format_da(window.start.date()),
            format_da(window.end.date())
        ],
        RawEntry::from_row,
    )?;
    let mut out = Vec::new();
    for row in rows {
        let stored = RawEntry::into_stored(row?)?;
        if window.contains(stored.entry.start) {
            out.push(stored);
        }
    }
    Ok(out)
}

fn delete(conn: &Connection, row_id: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM worklist_entries WHERE id = ?1", [row_id])?;
    Ok(())
}

/// The columns an entry's write sets: [`CONTENT_COLUMNS`], then [`NAME_KEY_COLUMNS`].
fn written_columns() -> impl Iterator<Item = &'static str> {
    CONTENT_COLUMNS.into_iter().chain(NAME_KEY_COLUMNS)
}

/// The values of an entry's columns, in [`written_columns`] order.
fn values(e: &WorklistEntry) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value;
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
    let mut values = vec![
        Value::Text(e.source.clone()),
        Value::Text(e.source_record_id.clone()),
        text(&e.patient_name),
        Value::Text(e.patient_id.clone()),
        e.patient_birth_date
            .map_or(Value::Null, |d| Value::Text(format_da(d))),
        text(&e.patient_sex),
        e.patient_weight_kg.map_or(Value::Null, Value::Real),
        Value::Text(e.study_instance_uid.clone()),
        Value::Text(e.accession_number.clone()),
        text(&e.study_description),
        text(&e.referring_physician_name),
        Value::Text(e.requested_procedure_id.clone()),
        text(&e.requested_procedure_description),
        Value::Text(e.sps_id.clone()),
        text(&e.station_ae_title),
        text(&e.station_name),
        Value::Text(format_da(e.start.date())),
        Value::Text(format_tm(e.start.time())),
        e.end
            .map_or(Value::Null, |t| Value::Text(format_da(t.date()))),
        e.end
            .map_or(Value::Null, |t| Value::Text(format_tm(t.time()))),
        text(&e.modality),
        text(&e.performing_physician_name),
        text(&e.sps_description),
        text(&e.sps_location),
        Value::Text(e.status.as_dicom().to_string()),
    ];
    values.extend(name_key_values(e.patient_name.as_deref()));
    values
}

/// Stores a new entry whose status was set by `set_by`.
pub(crate) fn insert(
    conn: &Connection,
    e: &WorklistEntry,
    set_by: StatusSetBy,
    now: &str,
) -> Result<(), StoreError> {
    let cols: Vec<&str> = written_columns().collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let n = cols.len() + 1;
    let cols = cols.join(", ");
    let sql = format!(
        "INSERT INTO worklist_entries ({cols}, status_set_by, first_seen, last_updated, status_changed_at)
         VALUES ({}, ?{m}, ?{n}, ?{n}, ?{n})",
        marks.join(", "),
        m = n + 1,
    );
    let mut args = values(e);
    args.push(rusqlite::types::Value::Text(now.to_string()));
    args.push(rusqlite::types::Value::Text(set_by.as_str().to_string()));
    conn.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(args))?;
    Ok(())
}

/// Rewrites a stored entry's values; `status_set_by` is `Some` when the status changed
/// (and says who changed it).
pub(crate) fn update(
    conn: &Connection,
    stored: &StoredEntry,
    e: &WorklistEntry,
    status_set_by: Option<StatusSetBy>,
    now: &str,
) -> Result<(), StoreError> {
    let sets: Vec<String> = written_columns()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect();
    let n = sets.len();
    let status_sql = match status_set_by {
        Some(by) => format!(
            ", status_set_by = '{}', status_changed_at = ?{}",
            by.as_str(),
            n + 1
        ),
        None => String::new(),
    };
    let sql = format!(
        "UPDATE worklist_entries SET {}, last_updated = ?{}{status_sql} WHERE id = ?{}",
        sets.join(", "),
        n + 1,
        n + 2
    );
    let mut args = values(e);
    args.push(rusqlite::types::Value::Text(now.to_string()));
    args.push(rusqlite::types::Value::Integer(stored.meta.row_id));
    conn.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(args))?;
    Ok(())
}
