//! Reconcile: one fetch of a source applied to the store, inside the caller's transaction
//! ([`Store::reconcile`](crate::Store::reconcile) holds the rules). Each fetched entry is
//! checked ([`WorklistEntry::problems`]), then inserted, updated or left as it is; after a
//! complete fetch, the source's stored entries in the window that the fetch lacks are
//! discontinued or deleted (a fetch of changes only, `window = None`, removes nothing). A status a sync may not change
//! ([`StatusSetBy::sync_may_change`]) is kept, whatever the source says.

use std::collections::HashSet;

use jiff::Timestamp;
use rusqlite::{Connection, Transaction};
use serde::{Deserialize, Serialize};
use worklist_model::{OnCancel, StatusSetBy, StepStatus, StoredEntry, SyncWindow, WorklistEntry};

use crate::entries;
use crate::error::StoreError;
use crate::pylantir::PROVISIONAL_PREFIX;

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

impl ReconcileCounts {
    /// Whether the reconcile changed any row.
    pub(crate) fn changed_rows(&self) -> bool {
        self.inserted + self.updated + self.deleted + self.discontinued > 0
    }
}

/// Whether a complete fetch may discontinue or delete a large part of a source's
/// entries at once, which is more often a failing or misconfigured server (an empty list,
/// a changed filter) than a real change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MassChangeGuard {
    /// Any change applies (an administrator accepted this one).
    Off,
    /// A fetch that would discontinue or delete more than this fraction (0 to 1) of the
    /// source's active entries in the window, and at least [`MASS_CHANGE_MIN`] of them,
    /// is refused: [`StoreError::MassChange`], nothing changes.
    MaxFraction(f64),
}

/// The fewest removals the guard refuses: a quiet day's one or two cancellations are
/// never held up, whatever their share.
pub const MASS_CHANGE_MIN: u64 = 3;

/// Applies `fetch` inside `tx` (the rules: [`Store::reconcile`](crate::Store::reconcile));
/// `guard` looks at complete fetches. On error the caller drops `tx`, and nothing
/// changes.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    fetch: &Fetch<'_>,
    entries: Vec<WorklistEntry>,
    guard: MassChangeGuard,
) -> Result<ReconcileCounts, StoreError> {
    let (counts, refused) = apply_guarded(tx, fetch, entries, guard, None)?;
    match refused {
        Some(refused) => Err(refused),
        None => Ok(counts),
    }
}

/// Applies `fetch` inside `tx` as [`apply`] does, and lists each change it makes; a fetch
/// the guard would refuse is applied too, with the refusal returned beside it. For a dry
/// run: the caller rolls `tx` back.
pub(crate) fn preview(
    tx: &Transaction<'_>,
    fetch: &Fetch<'_>,
    entries: Vec<WorklistEntry>,
    guard: MassChangeGuard,
) -> Result<Preview, StoreError> {
    let mut changes = Vec::new();
    let (counts, refused) = apply_guarded(tx, fetch, entries, guard, Some(&mut changes))?;
    Ok(Preview {
        counts,
        changes,
        refused: refused.map(|e| e.to_string()),
    })
}

/// What a fetch would change in the store, for `mwlbridge sync --dry-run`.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// The counts a sync would record.
    pub counts: ReconcileCounts,
    /// Each insert, update, discontinuation, deletion and rejection, in the order the
    /// reconcile meets them (unchanged entries are only counted).
    pub changes: Vec<Change>,
    /// Why the mass-change guard would refuse the whole fetch (then a sync changes
    /// nothing), if it would.
    pub refused: Option<String>,
}

/// One change a reconcile makes.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// What happens to the entry.
    pub kind: ChangeKind,
    /// The entry as it would be stored (insert, update, discontinue), as it is stored
    /// (delete), or as it was fetched (reject).
    pub entry: WorklistEntry,
    /// An update's changed fields, or the fields that break their rules in a rejected
    /// entry; empty otherwise.
    pub fields: Vec<String>,
}

/// What a reconcile does to one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// A new entry.
    Insert,
    /// A stored entry's values or status change (other than to DISCONTINUED).
    Update,
    /// A stored entry becomes DISCONTINUED.
    Discontinue,
    /// A stored entry is removed (`on_cancel = "delete"`).
    Delete,
    /// A fetched entry is not stored: a value breaks its DICOM rules.
    Reject,
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChangeKind::Insert => "insert",
            ChangeKind::Update => "update",
            ChangeKind::Discontinue => "discontinue",
            ChangeKind::Delete => "delete",
            ChangeKind::Reject => "reject",
        })
    }
}

/// One fetch of a source, as the reconcile applies it.
pub(crate) struct Fetch<'a> {
    /// The source's name.
    pub source: &'a str,
    /// The window of a complete fetch; `None` for changes only.
    pub window: Option<&'a SyncWindow>,
    /// What a cancelled or vanished entry becomes.
    pub on_cancel: OnCancel,
    /// When it is applied.
    pub now: Timestamp,
}

/// Counts what a reconcile does and, for a preview, lists it.
struct Tally<'a> {
    counts: ReconcileCounts,
    changes: Option<&'a mut Vec<Change>>,
}

impl Tally<'_> {
    /// Counts a change to `entry`; `fields` (only called for a preview) names the fields
    /// concerned.
    fn note(
        &mut self,
        kind: ChangeKind,
        entry: &WorklistEntry,
        fields: impl FnOnce() -> Vec<String>,
    ) {
        let count = match kind {
            ChangeKind::Insert => &mut self.counts.inserted,
            ChangeKind::Update => &mut self.counts.updated,
            ChangeKind::Discontinue => &mut self.counts.discontinued,
            ChangeKind::Delete => &mut self.counts.deleted,
            ChangeKind::Reject => &mut self.counts.rejected,
        };
        *count += 1;
        if let Some(changes) = self.changes.as_deref_mut() {
            changes.push(Change {
                kind,
                entry: entry.clone(),
                fields: fields(),
            });
        }
    }
}

/// Applies a fetch and says whether `guard` refuses it: the counts, and the refusal (the
/// caller then rolls back).
fn apply_guarded(
    tx: &Transaction<'_>,
    fetch: &Fetch<'_>,
    entries: Vec<WorklistEntry>,
    guard: MassChangeGuard,
    changes: Option<&mut Vec<Change>>,
) -> Result<(ReconcileCounts, Option<StoreError>), StoreError> {
    let active_before = match (fetch.window, guard) {
        (Some(window), MassChangeGuard::MaxFraction(_)) => in_window(tx, fetch.source, window)?
            .iter()
            .filter(|s| {
                s.entry.status != StepStatus::Discontinued && s.meta.status_set_by.sync_may_change()
            })
            .count() as u64,
        _ => 0,
    };
    let mut tally = Tally {
        counts: ReconcileCounts {
            fetched: entries.len() as u64,
            ..Default::default()
        },
        changes,
    };
    apply_unguarded(tx, fetch, entries, &mut tally)?;
    let counts = tally.counts;
    if let (Some(_), MassChangeGuard::MaxFraction(max)) = (fetch.window, guard) {
        let removing = counts.discontinued + counts.deleted;
        if removing >= MASS_CHANGE_MIN && removing as f64 > max * active_before as f64 {
            let refused = StoreError::MassChange {
                name: fetch.source.to_string(),
                removing,
                active: active_before,
                max_fraction: max,
            };
            return Ok((counts, Some(refused)));
        }
    }
    Ok((counts, None))
}

fn apply_unguarded(
    tx: &Transaction<'_>,
    fetch: &Fetch<'_>,
    entries: Vec<WorklistEntry>,
    tally: &mut Tally<'_>,
) -> Result<(), StoreError> {
    let (source, on_cancel) = (fetch.source, fetch.on_cancel);
    let now = fetch.now.to_string();
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
        if let Some(fields) = rejected(source, &entry) {
            tally.note(ChangeKind::Reject, &entry, || fields);
            continue;
        }
        let cancelled = entry.status == StepStatus::Discontinued;
        let stored = match entries::get(tx, source, &entry.source_record_id)? {
            Some(stored) => Some(stored),
            None => adopt_provisional(tx, source, &entry)?,
        };
        match stored {
            None if cancelled && on_cancel == OnCancel::Delete => {}
            None => {
                entries::insert(tx, &entry, StatusSetBy::Sync, &now)?;
                tally.note(ChangeKind::Insert, &entry, Vec::new);
            }
            Some(stored) => {
                sync_stored(tx, source, stored, entry, on_cancel, &now, tally)?;
            }
        }
    }
    let Some(window) = fetch.window else {
        return Ok(());
    };
    for stored in in_window(tx, source, window)? {
        if seen.contains(&stored.entry.source_record_id)
            || !stored.meta.status_set_by.sync_may_change()
        {
            continue;
        }
        match on_cancel {
            OnCancel::Delete => {
                entries::delete(tx, stored.meta.row_id)?;
                tally.note(ChangeKind::Delete, &stored.entry, Vec::new);
            }
            OnCancel::Discontinue if stored.entry.status != StepStatus::Discontinued => {
                let (row_id, status) = (stored.meta.row_id, StepStatus::Discontinued);
                entries::set_status(tx, row_id, status, StatusSetBy::Sync, &now)?;
                let mut entry = stored.entry;
                entry.status = status;
                tally.note(ChangeKind::Discontinue, &entry, || vec!["status".into()]);
            }
            OnCancel::Discontinue => {}
        }
    }
    Ok(())
}

/// The entry imported from Pylantir for `entry`'s subject and day, when its record
/// could not be recovered then: it takes `entry`'s record id (so its status, set by
/// Pylantir's MPPS, stays protected and no twin appears) and is returned to be updated.
fn adopt_provisional(
    tx: &Transaction<'_>,
    source: &str,
    entry: &WorklistEntry,
) -> Result<Option<StoredEntry>, StoreError> {
    let Some(mut stored) = entries::with_prefix_for(tx, source, PROVISIONAL_PREFIX, entry)? else {
        return Ok(None);
    };
    entries::rekey(tx, stored.meta.row_id, &entry.source_record_id)?;
    tracing::info!(
        source,
        record_id = %entry.source_record_id,
        imported_as = %stored.entry.source_record_id,
        "entry imported from Pylantir taken over by its record"
    );
    stored.entry.source_record_id = entry.source_record_id.clone();
    Ok(Some(stored))
}

/// The fields of a fetched entry that break their DICOM rules (then it is not stored),
/// said in the log; `None` when it keeps them all.
fn rejected(source: &str, entry: &WorklistEntry) -> Option<Vec<String>> {
    let problems = entry.problems();
    let (_, first) = problems.first()?;
    let fields: Vec<&str> = problems.iter().map(|(f, _)| *f).collect();
    // Field names and rule texts only: values may identify a subject.
    tracing::warn!(
        source,
        record_id = %entry.source_record_id,
        fields = ?fields,
        problem = %first,
        "entry not stored: a value breaks its DICOM rules"
    );
    Some(fields.into_iter().map(String::from).collect())
}

/// Applies a fetched entry to its stored row: its values always follow the source; its
/// status only when a sync may change it (a cancelled one is then deleted, with
/// `on_cancel = "delete"`).
fn sync_stored(
    tx: &Transaction<'_>,
    source: &str,
    stored: StoredEntry,
    entry: WorklistEntry,
    on_cancel: OnCancel,
    now: &str,
    tally: &mut Tally<'_>,
) -> Result<(), StoreError> {
    let cancelled = entry.status == StepStatus::Discontinued;
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
        entries::delete(tx, stored.meta.row_id)?;
        tally.note(ChangeKind::Delete, &stored.entry, Vec::new);
        return Ok(());
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
        tally.counts.unchanged += 1;
        return Ok(());
    }
    incoming.status = new_status;
    let set_by = status_changed.then_some(StatusSetBy::Sync);
    entries::update(tx, stored.meta.row_id, &incoming, set_by, now)?;
    let kind = if status_changed && new_status == StepStatus::Discontinued {
        ChangeKind::Discontinue
    } else {
        ChangeKind::Update
    };
    tally.note(kind, &incoming, || changed_fields(&stored.entry, &incoming));
    Ok(())
}

/// The names of the fields whose values differ between `before` and `after`.
fn changed_fields(before: &WorklistEntry, after: &WorklistEntry) -> Vec<String> {
    let (Ok(serde_json::Value::Object(before)), Ok(serde_json::Value::Object(after))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Vec::new();
    };
    after
        .iter()
        .filter(|(field, value)| before.get(*field) != Some(*value))
        .map(|(field, _)| field.clone())
        .collect()
}

/// The source's stored entries whose step starts inside the window.
fn in_window(
    conn: &Connection,
    source: &str,
    window: &SyncWindow,
) -> Result<Vec<StoredEntry>, StoreError> {
    let mut stored =
        entries::of_source_between(conn, source, window.start.date(), window.end.date())?;
    stored.retain(|s| window.contains(s.entry.start));
    Ok(stored)
}

/// Brings the query planner's statistics up to date after a reconcile changed rows, so
/// consoles' lookups use the most selective index. Sampled (a thousand rows per index):
/// milliseconds, not a scan.
pub(crate) fn refresh_statistics(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("PRAGMA analysis_limit = 1000; ANALYZE worklist_entries;")?;
    Ok(())
}
