//! Performed procedure steps (MPPS): what consoles report, stored, and linked to the
//! worklist entries they perform. A linked entry's status follows the performed step and
//! is marked as set by MPPS, so no sync resets it.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::{StatusSetBy, StepStatus};
use crate::store::Store;

/// Performed Procedure Step Status (0040,0252).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PerformedStatus {
    /// `IN PROGRESS`.
    InProgress,
    /// `COMPLETED`.
    Completed,
    /// `DISCONTINUED`.
    Discontinued,
}

impl PerformedStatus {
    /// The DICOM defined term.
    pub fn as_dicom(self) -> &'static str {
        match self {
            PerformedStatus::InProgress => "IN PROGRESS",
            PerformedStatus::Completed => "COMPLETED",
            PerformedStatus::Discontinued => "DISCONTINUED",
        }
    }

    /// Parses the defined term (surrounding spaces ignored).
    pub fn from_dicom(term: &str) -> Option<PerformedStatus> {
        match term.trim() {
            "IN PROGRESS" => Some(PerformedStatus::InProgress),
            "COMPLETED" => Some(PerformedStatus::Completed),
            "DISCONTINUED" => Some(PerformedStatus::Discontinued),
            _ => None,
        }
    }

    /// Whether no further change is allowed (COMPLETED or DISCONTINUED).
    pub fn is_final(self) -> bool {
        self != PerformedStatus::InProgress
    }

    /// The scheduled step status a linked worklist entry takes.
    pub fn step_status(self) -> StepStatus {
        match self {
            PerformedStatus::InProgress => StepStatus::Started,
            PerformedStatus::Completed => StepStatus::Completed,
            PerformedStatus::Discontinued => StepStatus::Discontinued,
        }
    }
}

/// One item of the Scheduled Step Attributes Sequence (0040,0270): which scheduled step
/// a performed step performs. Empty values are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduledStepRef {
    /// Study Instance UID (0020,000D).
    pub study_instance_uid: Option<String>,
    /// Accession Number (0008,0050).
    pub accession_number: Option<String>,
    /// Requested Procedure ID (0040,1001).
    pub requested_procedure_id: Option<String>,
    /// Scheduled Procedure Step ID (0040,0009).
    pub sps_id: Option<String>,
}

/// A performed procedure step as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PerformedStep {
    /// Affected SOP Instance UID of the MPPS.
    pub sop_instance_uid: String,
    /// Its status.
    pub status: PerformedStatus,
    /// The console's calling AE title.
    pub calling_ae: String,
    /// Every attribute received (N-CREATE, merged with each N-SET), as an Explicit VR Little
    /// Endian data set.
    pub attributes: Vec<u8>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Row ids of the worklist entries it performs.
    pub linked_entries: Vec<i64>,
}

/// Why an MPPS operation was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum MppsError {
    /// N-CREATE of an instance that exists (DIMSE 0111).
    #[error("performed procedure step {0} already exists")]
    Duplicate(String),
    /// N-SET of an unknown instance (DIMSE 0112).
    #[error("no performed procedure step {0}")]
    NoSuchInstance(String),
    /// N-SET of a step that is already COMPLETED or DISCONTINUED (DIMSE 0110).
    #[error("performed procedure step is already {0}; it cannot change")]
    AlreadyFinal(&'static str),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for MppsError {
    fn from(e: rusqlite::Error) -> Self {
        MppsError::Store(StoreError::Sqlite(e))
    }
}

/// Entries a reference designates: by Study Instance UID and SPS ID when both are given,
/// else by whichever identifiers it has (all of them must agree).
fn find_entries(tx: &Transaction<'_>, r: &ScheduledStepRef) -> Result<Vec<i64>, rusqlite::Error> {
    let mut clauses = Vec::new();
    let mut args: Vec<&str> = Vec::new();
    for (column, value) in [
        ("study_instance_uid", &r.study_instance_uid),
        ("sps_id", &r.sps_id),
        ("accession_number", &r.accession_number),
        ("requested_procedure_id", &r.requested_procedure_id),
    ] {
        if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            args.push(v);
            clauses.push(format!("{column} = ?{}", args.len()));
        }
    }
    if clauses.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id FROM worklist_entries WHERE {} ORDER BY id",
        clauses.join(" AND ")
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let ids = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(ids)
}

fn set_linked_status(
    tx: &Transaction<'_>,
    performed_id: i64,
    status: PerformedStatus,
    now: &str,
) -> Result<(), rusqlite::Error> {
    tx.execute(
        "UPDATE worklist_entries
            SET status = ?2, status_set_by = ?3, status_changed_at = ?4, last_updated = ?4
          WHERE id IN (SELECT entry_id FROM performed_step_links WHERE performed_step_id = ?1)
            AND NOT (status = ?2 AND status_set_by = ?3)",
        params![
            performed_id,
            status.step_status().as_dicom(),
            StatusSetBy::Mpps.as_str(),
            now
        ],
    )?;
    Ok(())
}

impl Store {
    /// Stores a new performed step (N-CREATE) and links it to the worklist entries its
    /// references designate; they become STARTED, set by MPPS. Returns the linked entries'
    /// row ids (empty: an unscheduled scan, stored all the same).
    pub fn mpps_create(
        &self,
        sop_instance_uid: &str,
        calling_ae: &str,
        status: PerformedStatus,
        attributes: &[u8],
        refs: &[ScheduledStepRef],
        now: Timestamp,
    ) -> Result<Vec<i64>, MppsError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT id FROM performed_steps WHERE sop_instance_uid = ?1",
                [sop_instance_uid],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(MppsError::Duplicate(sop_instance_uid.to_string()));
        }
        let now_s = now.to_string();
        tx.execute(
            "INSERT INTO performed_steps
                 (sop_instance_uid, status, calling_ae, attributes, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![
                sop_instance_uid,
                status.as_dicom(),
                calling_ae,
                attributes,
                now_s
            ],
        )?;
        let performed_id = tx.last_insert_rowid();
        let mut linked = Vec::new();
        for r in refs {
            for id in find_entries(&tx, r)? {
                if !linked.contains(&id) {
                    linked.push(id);
                }
            }
        }
        for id in &linked {
            tx.execute(
                "INSERT INTO performed_step_links (performed_step_id, entry_id) VALUES (?1, ?2)",
                params![performed_id, id],
            )?;
        }
        set_linked_status(&tx, performed_id, status, &now_s)?;
        tx.commit()?;
        Ok(linked)
    }

    /// Updates a performed step (N-SET): its attributes (already merged by the caller) and
    /// possibly its status, which linked entries follow. Refused, with nothing changed,
    /// when the step is unknown or already final.
    pub fn mpps_update(
        &self,
        sop_instance_uid: &str,
        status: PerformedStatus,
        attributes: &[u8],
        now: Timestamp,
    ) -> Result<Vec<i64>, MppsError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let current: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, status FROM performed_steps WHERE sop_instance_uid = ?1",
                [sop_instance_uid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((performed_id, current)) = current else {
            return Err(MppsError::NoSuchInstance(sop_instance_uid.to_string()));
        };
        if let Some(c) = PerformedStatus::from_dicom(&current)
            && c.is_final()
        {
            return Err(MppsError::AlreadyFinal(c.as_dicom()));
        }
        let now_s = now.to_string();
        tx.execute(
            "UPDATE performed_steps SET status = ?2, attributes = ?3, updated_at = ?4 WHERE id = ?1",
            params![performed_id, status.as_dicom(), attributes, now_s],
        )?;
        set_linked_status(&tx, performed_id, status, &now_s)?;
        let linked = tx
            .prepare_cached(
                "SELECT entry_id FROM performed_step_links WHERE performed_step_id = ?1 ORDER BY entry_id",
            )?
            .query_map([performed_id], |r| r.get(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        tx.commit()?;
        Ok(linked)
    }

    /// The performed step with that SOP Instance UID.
    pub fn mpps_get(&self, sop_instance_uid: &str) -> Result<Option<PerformedStep>, StoreError> {
        self.with_reader(|conn| {
            let row = conn
                .query_row(
                    "SELECT id, status, calling_ae, attributes, created_at, updated_at
                       FROM performed_steps WHERE sop_instance_uid = ?1",
                    [sop_instance_uid],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Vec<u8>>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                        ))
                    },
                )
                .optional()?;
            let Some((id, status, calling_ae, attributes, created, updated)) = row else {
                return Ok(None);
            };
            let corrupt = |column: &'static str, reason: String| StoreError::Corrupt {
                row_id: id,
                column,
                reason,
            };
            let linked_entries = conn
                .prepare_cached(
                    "SELECT entry_id FROM performed_step_links WHERE performed_step_id = ?1 ORDER BY entry_id",
                )?
                .query_map([id], |r| r.get(0))?
                .collect::<Result<Vec<i64>, _>>()?;
            Ok(Some(PerformedStep {
                sop_instance_uid: sop_instance_uid.to_string(),
                status: PerformedStatus::from_dicom(&status)
                    .ok_or_else(|| corrupt("status", format!("unknown {status:?}")))?,
                calling_ae,
                attributes,
                created_at: created
                    .parse()
                    .map_err(|e: jiff::Error| corrupt("created_at", e.to_string()))?,
                updated_at: updated
                    .parse()
                    .map_err(|e: jiff::Error| corrupt("updated_at", e.to_string()))?,
                linked_entries,
            }))
        })
    }

    /// Removes performed steps not changed since before `cutoff`. Returns how many.
    pub fn purge_performed_before(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        let conn = self.writer();
        Ok(conn.execute(
            "DELETE FROM performed_steps WHERE updated_at < ?1",
            [cutoff.to_string()],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OnCancel, SyncWindow, WorklistEntry};
    use jiff::civil::date;

    fn setup() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("w.db")).unwrap();
        let entries = vec![
            WorklistEntry::new("calpendo", "1", "SUB1", date(2026, 11, 26).at(9, 0, 0, 0)),
            WorklistEntry::new("calpendo", "2", "SUB2", date(2026, 11, 26).at(10, 0, 0, 0)),
        ];
        let window = SyncWindow {
            start: date(2026, 11, 26).at(0, 0, 0, 0),
            end: date(2026, 11, 27).at(0, 0, 0, 0),
        };
        store
            .reconcile(
                "calpendo",
                &window,
                entries,
                OnCancel::Discontinue,
                Timestamp::UNIX_EPOCH,
            )
            .unwrap();
        (dir, store)
    }

    fn reference(store: &Store, id: &str) -> ScheduledStepRef {
        let e = store.get("calpendo", id).unwrap().unwrap().entry;
        ScheduledStepRef {
            study_instance_uid: Some(e.study_instance_uid),
            accession_number: Some(e.accession_number),
            requested_procedure_id: Some(e.requested_procedure_id),
            sps_id: Some(e.sps_id),
        }
    }

    fn status(store: &Store, id: &str) -> (StepStatus, StatusSetBy) {
        let s = store.get("calpendo", id).unwrap().unwrap();
        (s.entry.status, s.meta.status_set_by)
    }

    #[test]
    fn create_then_complete_follows_the_entry() {
        let (_d, store) = setup();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let linked = store
            .mpps_create(
                "1.2.3",
                "MRI_3T",
                PerformedStatus::InProgress,
                b"x",
                &[reference(&store, "1")],
                now,
            )
            .unwrap();
        assert_eq!(linked.len(), 1);
        assert_eq!(
            status(&store, "1"),
            (StepStatus::Started, StatusSetBy::Mpps)
        );
        assert_eq!(
            status(&store, "2"),
            (StepStatus::Scheduled, StatusSetBy::Sync)
        );
        store
            .mpps_update("1.2.3", PerformedStatus::Completed, b"xy", now)
            .unwrap();
        assert_eq!(
            status(&store, "1"),
            (StepStatus::Completed, StatusSetBy::Mpps)
        );
        let p = store.mpps_get("1.2.3").unwrap().unwrap();
        assert_eq!(p.status, PerformedStatus::Completed);
        assert_eq!(p.attributes, b"xy");
        assert_eq!(p.calling_ae, "MRI_3T");
    }

    #[test]
    fn errors_change_nothing() {
        let (_d, store) = setup();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        store
            .mpps_create(
                "1.2.3",
                "A",
                PerformedStatus::InProgress,
                b"x",
                &[reference(&store, "1")],
                now,
            )
            .unwrap();
        assert!(matches!(
            store.mpps_create(
                "1.2.3",
                "A",
                PerformedStatus::InProgress,
                b"other",
                &[reference(&store, "2")],
                now
            ),
            Err(MppsError::Duplicate(_))
        ));
        assert_eq!(
            status(&store, "2"),
            (StepStatus::Scheduled, StatusSetBy::Sync)
        );
        assert!(matches!(
            store.mpps_update("9.9", PerformedStatus::Completed, b"z", now),
            Err(MppsError::NoSuchInstance(_))
        ));
        store
            .mpps_update("1.2.3", PerformedStatus::Discontinued, b"d", now)
            .unwrap();
        assert!(matches!(
            store.mpps_update("1.2.3", PerformedStatus::Completed, b"c", now),
            Err(MppsError::AlreadyFinal("DISCONTINUED"))
        ));
        let p = store.mpps_get("1.2.3").unwrap().unwrap();
        assert_eq!(
            (p.status, p.attributes.as_slice()),
            (PerformedStatus::Discontinued, &b"d"[..])
        );
        assert_eq!(
            status(&store, "1"),
            (StepStatus::Discontinued, StatusSetBy::Mpps)
        );
    }

    #[test]
    fn unscheduled_step_is_stored_unlinked() {
        let (_d, store) = setup();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let unknown = ScheduledStepRef {
            study_instance_uid: Some("1.2.999".into()),
            ..Default::default()
        };
        let linked = store
            .mpps_create(
                "5.6",
                "A",
                PerformedStatus::InProgress,
                b"x",
                &[unknown, ScheduledStepRef::default()],
                now,
            )
            .unwrap();
        assert!(linked.is_empty());
        assert!(
            store
                .mpps_get("5.6")
                .unwrap()
                .unwrap()
                .linked_entries
                .is_empty()
        );
    }
}
