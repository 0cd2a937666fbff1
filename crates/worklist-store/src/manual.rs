//! Manual entries: walk-ins and phantom scans an administrator puts on the worklist
//! (through the admin interface), kept under the reserved source name [`MANUAL_SOURCE`].
//!
//! No sync ever touches them (no configured source may be called `manual`); their status
//! is set by the administrator (recorded as [`StatusSetBy::Admin`]) or by MPPS.

use jiff::Timestamp;
use rusqlite::Transaction;
use worklist_model::{StatusSetBy, StoredEntry, WorklistEntry};

use crate::entries;
use crate::error::StoreError;

/// The source name of manual entries; reserved (no data source may use it).
pub const MANUAL_SOURCE: &str = "manual";

/// Why a manual entry could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ManualEntryError {
    /// Values break DICOM value rules; each problem names its field.
    #[error("invalid entry: {}", describe(.0))]
    Invalid(Vec<(&'static str, String)>),
    /// The entry does not carry the source `manual`.
    #[error("entry belongs to source {0:?}; only {MANUAL_SOURCE:?} entries can be written here")]
    NotManual(String),
    /// An entry with this record id exists already.
    #[error("a manual entry with id {0:?} exists already")]
    Exists(String),
    /// No manual entry with this record id exists.
    #[error("no manual entry with id {0:?}")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for ManualEntryError {
    fn from(e: rusqlite::Error) -> Self {
        ManualEntryError::Store(StoreError::from(e))
    }
}

fn describe(problems: &[(&'static str, String)]) -> String {
    problems
        .iter()
        .map(|(field, why)| format!("{field}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why `id` cannot name a new manual entry: it must be usable in a URL path segment and a
/// file name as it is (`/api/v1/manual/{id}`, `export`), so 1 to 64 of `A-Z a-z 0-9 . _ -`,
/// and not `.` or `..` (which a URL path resolves away).
pub fn record_id_problem(id: &str) -> Option<String> {
    if id.is_empty() || id.len() > 64 {
        return Some("must be 1 to 64 characters".into());
    }
    if id == "." || id == ".." {
        return Some("must not be `.` or `..`".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Some(format!(
            "{c:?} is not allowed: use letters, digits, '.', '_' and '-'"
        ));
    }
    None
}

fn check(entry: &WorklistEntry) -> Result<(), ManualEntryError> {
    if entry.source != MANUAL_SOURCE {
        return Err(ManualEntryError::NotManual(entry.source.clone()));
    }
    let problems = entry.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ManualEntryError::Invalid(problems))
    }
}

/// Stores a new manual entry (its status recorded as set by the administrator).
pub(crate) fn create(
    tx: &Transaction<'_>,
    entry: &WorklistEntry,
    now: Timestamp,
) -> Result<StoredEntry, ManualEntryError> {
    check(entry)?;
    if let Some(why) = record_id_problem(&entry.source_record_id) {
        return Err(ManualEntryError::Invalid(vec![("record_id", why)]));
    }
    if entries::get(tx, MANUAL_SOURCE, &entry.source_record_id)?.is_some() {
        return Err(ManualEntryError::Exists(entry.source_record_id.clone()));
    }
    entries::insert(tx, entry, StatusSetBy::Admin, &now.to_string())?;
    entries::get(tx, MANUAL_SOURCE, &entry.source_record_id)?
        .ok_or_else(|| ManualEntryError::NotFound(entry.source_record_id.clone()))
}

/// Replaces the values of an existing manual entry. A status change is recorded as set by
/// the administrator.
pub(crate) fn update(
    tx: &Transaction<'_>,
    entry: &WorklistEntry,
    now: Timestamp,
) -> Result<StoredEntry, ManualEntryError> {
    check(entry)?;
    let Some(stored) = entries::get(tx, MANUAL_SOURCE, &entry.source_record_id)? else {
        return Err(ManualEntryError::NotFound(entry.source_record_id.clone()));
    };
    let status_changed = stored.entry.status != entry.status;
    if stored.entry != *entry {
        let set_by = status_changed.then_some(StatusSetBy::Admin);
        entries::update(tx, stored.meta.row_id, entry, set_by, &now.to_string())?;
    }
    entries::get(tx, MANUAL_SOURCE, &entry.source_record_id)?
        .ok_or_else(|| ManualEntryError::NotFound(entry.source_record_id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use jiff::civil::date;
    use worklist_model::{OnCancel, StepStatus, SyncWindow};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("w.db")).expect("open");
        (dir, store)
    }

    fn walk_in(id: &str) -> WorklistEntry {
        let mut e = WorklistEntry::new(
            MANUAL_SOURCE,
            id,
            "PHANTOM01",
            date(2026, 11, 26).at(14, 30, 0, 0),
        );
        e.patient_name = Some("Phantom^Water".into());
        e.station_ae_title = Some("MRI_3T".into());
        e.modality = Some("MR".into());
        e
    }

    #[test]
    fn a_new_record_id_keeps_to_a_safe_alphabet() {
        let (_dir, store) = store();
        let now = jiff::Timestamp::UNIX_EPOCH;
        for bad in [".", "..", "a/b", "a b", "x\u{202e}y", ""] {
            let err = store.create_manual(&walk_in(bad), now).expect_err(bad);
            assert!(err.to_string().contains("record_id"), "{bad:?}: {err}");
        }
        for good in ["walk-in_1", "QA.2026-12-05"] {
            store.create_manual(&walk_in(good), now).expect(good);
        }
    }

    #[test]
    fn create_update_delete() {
        let (_dir, store) = store();
        let now = Timestamp::now();
        let created = store.create_manual(&walk_in("w1"), now).expect("create");
        assert_eq!(created.meta.status_set_by, StatusSetBy::Admin);
        assert!(matches!(
            store.create_manual(&walk_in("w1"), now),
            Err(ManualEntryError::Exists(_))
        ));
        let mut changed = walk_in("w1");
        changed.modality = Some("OT".into());
        changed.status = StepStatus::Discontinued;
        let updated = store.update_manual(&changed, now).expect("update");
        assert_eq!(updated.entry.modality.as_deref(), Some("OT"));
        assert_eq!(updated.entry.status, StepStatus::Discontinued);
        assert_eq!(updated.meta.status_set_by, StatusSetBy::Admin);
        assert_eq!(updated.meta.row_id, created.meta.row_id);
        assert!(matches!(
            store.update_manual(&walk_in("nope"), now),
            Err(ManualEntryError::NotFound(_))
        ));
        assert!(store.delete_manual("w1").expect("delete"));
        assert!(!store.delete_manual("w1").expect("delete again"));
        assert!(store.get(MANUAL_SOURCE, "w1").expect("get").is_none());
    }

    #[test]
    fn invalid_values_are_refused_with_their_fields() {
        let (_dir, store) = store();
        let mut e = walk_in("w2");
        e.station_ae_title = Some("A STATION NAME LONGER THAN SIXTEEN".into());
        e.patient_name = Some("a^b^c^d^e^f".into());
        match store.create_manual(&e, Timestamp::now()) {
            Err(ManualEntryError::Invalid(problems)) => {
                let fields: Vec<_> = problems.iter().map(|(f, _)| *f).collect();
                assert!(fields.contains(&"station_ae_title"), "{fields:?}");
                assert!(fields.contains(&"patient_name"), "{fields:?}");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert_eq!(store.count().expect("count"), 0);
        let mut other = walk_in("w3");
        other.source = "calpendo".into();
        assert!(matches!(
            store.create_manual(&other, Timestamp::now()),
            Err(ManualEntryError::NotManual(_))
        ));
    }

    #[test]
    fn a_sync_of_another_source_leaves_manual_entries_alone() {
        let (_dir, store) = store();
        let now = Timestamp::now();
        store.create_manual(&walk_in("w4"), now).expect("create");
        let window = SyncWindow {
            start: date(2026, 11, 26).at(0, 0, 0, 0),
            end: date(2026, 11, 28).at(0, 0, 0, 0),
        };
        store
            .reconcile("calpendo", &window, vec![], OnCancel::Discontinue, now)
            .expect("reconcile");
        let kept = store.get(MANUAL_SOURCE, "w4").expect("get").expect("kept");
        assert_eq!(kept.entry.status, StepStatus::Scheduled);
    }
}
