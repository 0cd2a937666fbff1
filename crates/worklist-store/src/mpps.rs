//! Performed procedure steps (MPPS): what consoles report, stored, and linked to the
//! worklist entries they perform. A linked entry's status follows the performed step
//! ([`PerformedStatus::step_status`]) and is marked as set by MPPS
//! ([`StatusSetBy::Mpps`]), so no sync resets it. A step discontinued because the wrong
//! worklist entry was selected puts its entries back to SCHEDULED instead
//! ([`LinkedSteps::Reschedule`]).

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use worklist_model::{StatusSetBy, StepStatus};

use crate::error::StoreError;

// Its old path (`mpps::PerformedStatus`): the MPPS terms live in the model now.
pub use worklist_model::PerformedStatus;

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
    /// How many N-SETs it has taken.
    pub set_count: u32,
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

/// What an N-SET does to the scheduled steps its performed step is linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkedSteps {
    /// They take the performed step's status (IHE's normal case).
    FollowStatus,
    /// They are offered again, SCHEDULED: the performed step was discontinued because
    /// the wrong worklist entry had been selected (reason 110514, DCM), so IHE treats
    /// the scheduled step as never performed.
    Reschedule,
}

/// The entries linked to a performed step take `status`, set by MPPS.
fn set_linked_status(
    tx: &Transaction<'_>,
    performed_id: i64,
    status: StepStatus,
    now: &str,
) -> Result<(), rusqlite::Error> {
    tx.execute(
        "UPDATE worklist_entries
            SET status = ?2, status_set_by = ?3, status_changed_at = ?4, last_updated = ?4
          WHERE id IN (SELECT entry_id FROM performed_step_links WHERE performed_step_id = ?1)
            AND NOT (status = ?2 AND status_set_by = ?3)",
        params![
            performed_id,
            status.as_dicom(),
            StatusSetBy::Mpps.as_str(),
            now
        ],
    )?;
    Ok(())
}

/// The row ids of the entries a performed step is linked to, ascending.
fn linked_entries(conn: &Connection, performed_id: i64) -> Result<Vec<i64>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT entry_id FROM performed_step_links WHERE performed_step_id = ?1 ORDER BY entry_id",
    )?
    .query_map([performed_id], |r| r.get(0))?
    .collect()
}

/// Which worklist entries an N-CREATE linked its performed step to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatedLinks {
    /// Row ids of the linked entries, ascending; they took the step's status.
    pub linked: Vec<i64>,
    /// Entries the references designate that are scheduled on another station than the
    /// one the N-CREATE was restricted to: not linked, not changed.
    pub other_station: usize,
}

/// The station AE title of an entry.
fn station_of(tx: &Transaction<'_>, entry_id: i64) -> Result<Option<String>, rusqlite::Error> {
    tx.query_row(
        "SELECT station_ae_title FROM worklist_entries WHERE id = ?1",
        [entry_id],
        |r| r.get(0),
    )
}

/// Stores a new performed step (N-CREATE) and links it to the worklist entries its
/// references designate; they take its status, set by MPPS. With `station`, only entries
/// scheduled on that station AE title are linked (a console changes only its own steps).
/// Refused, with nothing changed, when the instance exists.
#[allow(clippy::too_many_arguments)]
pub(crate) fn create(
    tx: &Transaction<'_>,
    sop_instance_uid: &str,
    calling_ae: &str,
    status: PerformedStatus,
    attributes: &[u8],
    refs: &[ScheduledStepRef],
    station: Option<&str>,
    now: Timestamp,
) -> Result<CreatedLinks, MppsError> {
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
    let now = now.to_string();
    tx.execute(
        "INSERT INTO performed_steps
             (sop_instance_uid, status, calling_ae, attributes, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![
            sop_instance_uid,
            status.as_dicom(),
            calling_ae,
            attributes,
            now
        ],
    )?;
    let performed_id = tx.last_insert_rowid();
    let mut designated = Vec::new();
    for r in refs {
        for id in find_entries(tx, r)? {
            if !designated.contains(&id) {
                designated.push(id);
            }
        }
    }
    designated.sort_unstable();
    let mut links = CreatedLinks::default();
    for id in designated {
        let theirs = match station {
            Some(own) => station_of(tx, id)?.is_none_or(|s| s.trim() != own.trim()),
            None => false,
        };
        if theirs {
            links.other_station += 1;
        } else {
            links.linked.push(id);
        }
    }
    for id in &links.linked {
        tx.execute(
            "INSERT INTO performed_step_links (performed_step_id, entry_id) VALUES (?1, ?2)",
            params![performed_id, id],
        )?;
    }
    set_linked_status(tx, performed_id, status.step_status(), &now)?;
    Ok(links)
}

/// What an N-SET makes of a performed step, decided by the caller from the step as
/// stored ([`modify`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MppsChange {
    /// Its new status (the current one when the N-SET does not change it).
    pub status: PerformedStatus,
    /// Every attribute, merged with the N-SET's, as an Explicit VR Little Endian data set.
    pub attributes: Vec<u8>,
    /// What the linked scheduled steps do.
    pub linked: LinkedSteps,
}

/// Updates a performed step (N-SET) in one transaction: `decide` sees the step as stored
/// and returns the change, or refuses it; the read, the decision and the write are one
/// unit, so concurrent N-SETs of one step are applied one after the other and none is
/// lost. Returns the linked entries' row ids. Refused, with nothing changed, when the step
/// is unknown or already final, or when `decide` refuses.
pub(crate) fn modify<E: From<MppsError>>(
    tx: &Transaction<'_>,
    sop_instance_uid: &str,
    now: Timestamp,
    decide: impl FnOnce(&PerformedStep) -> Result<MppsChange, E>,
) -> Result<Vec<i64>, E> {
    let Some(current) = get(tx, sop_instance_uid).map_err(MppsError::Store)? else {
        return Err(MppsError::NoSuchInstance(sop_instance_uid.to_string()).into());
    };
    if current.status.is_final() {
        return Err(MppsError::AlreadyFinal(current.status.as_dicom()).into());
    }
    let change = decide(&current)?;
    let performed_id: i64 = tx
        .query_row(
            "SELECT id FROM performed_steps WHERE sop_instance_uid = ?1",
            [sop_instance_uid],
            |r| r.get(0),
        )
        .map_err(MppsError::from)?;
    let now = now.to_string();
    tx.execute(
        "UPDATE performed_steps
            SET status = ?2, attributes = ?3, updated_at = ?4, set_count = set_count + 1
          WHERE id = ?1",
        params![
            performed_id,
            change.status.as_dicom(),
            change.attributes,
            now
        ],
    )
    .map_err(MppsError::from)?;
    let step_status = match change.linked {
        LinkedSteps::FollowStatus => change.status.step_status(),
        LinkedSteps::Reschedule => StepStatus::Scheduled,
    };
    set_linked_status(tx, performed_id, step_status, &now).map_err(MppsError::from)?;
    Ok(current.linked_entries)
}

/// The performed step with that SOP Instance UID.
pub(crate) fn get(
    conn: &Connection,
    sop_instance_uid: &str,
) -> Result<Option<PerformedStep>, StoreError> {
    let row = conn
        .query_row(
            "SELECT id, status, calling_ae, attributes, created_at, updated_at, set_count
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
                    r.get::<_, u32>(6)?,
                ))
            },
        )
        .optional()?;
    let Some((id, status, calling_ae, attributes, created, updated, set_count)) = row else {
        return Ok(None);
    };
    let corrupt = |column: &'static str, reason: String| StoreError::Corrupt {
        row_id: id,
        column,
        reason,
    };
    let linked_entries = linked_entries(conn, id)?;
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
        set_count,
        linked_entries,
    }))
}

/// Removes performed steps not changed since before `cutoff`. Returns how many.
pub(crate) fn purge_before(conn: &Connection, cutoff: Timestamp) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM performed_steps WHERE updated_at < ?1",
        [cutoff.to_string()],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OnCancel, StepStatus, Store, SyncWindow, WorklistEntry};
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
    fn a_wrong_entry_discontinuation_offers_the_step_again() {
        let (_d, store) = setup();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let refs = [reference(&store, "1")];
        store
            .mpps_create(
                "1.2.3",
                "MRI_3T",
                PerformedStatus::InProgress,
                b"x",
                &refs,
                None,
                now,
            )
            .unwrap();
        assert_eq!(status(&store, "1").0, StepStatus::Started);
        let linked = store
            .mpps_update(
                "1.2.3",
                PerformedStatus::Discontinued,
                b"d",
                LinkedSteps::Reschedule,
                now,
            )
            .unwrap();
        assert_eq!(linked.len(), 1);
        assert_eq!(
            status(&store, "1"),
            (StepStatus::Scheduled, StatusSetBy::Mpps),
            "offered again; the performed step stays recorded"
        );
        let performed = store.mpps_get("1.2.3").unwrap().unwrap();
        assert_eq!(performed.status, PerformedStatus::Discontinued);
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
                None,
                now,
            )
            .unwrap();
        assert_eq!(linked.linked.len(), 1);
        assert_eq!(
            status(&store, "1"),
            (StepStatus::Started, StatusSetBy::Mpps)
        );
        assert_eq!(
            status(&store, "2"),
            (StepStatus::Scheduled, StatusSetBy::Sync)
        );
        store
            .mpps_update(
                "1.2.3",
                PerformedStatus::Completed,
                b"xy",
                LinkedSteps::FollowStatus,
                now,
            )
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
                None,
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
                None,
                now
            ),
            Err(MppsError::Duplicate(_))
        ));
        assert_eq!(
            status(&store, "2"),
            (StepStatus::Scheduled, StatusSetBy::Sync)
        );
        assert!(matches!(
            store.mpps_update(
                "9.9",
                PerformedStatus::Completed,
                b"z",
                LinkedSteps::FollowStatus,
                now
            ),
            Err(MppsError::NoSuchInstance(_))
        ));
        store
            .mpps_update(
                "1.2.3",
                PerformedStatus::Discontinued,
                b"d",
                LinkedSteps::FollowStatus,
                now,
            )
            .unwrap();
        assert!(matches!(
            store.mpps_update(
                "1.2.3",
                PerformedStatus::Completed,
                b"c",
                LinkedSteps::FollowStatus,
                now
            ),
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
                None,
                now,
            )
            .unwrap();
        assert!(linked.linked.is_empty());
        assert!(
            store
                .mpps_get("5.6")
                .unwrap()
                .unwrap()
                .linked_entries
                .is_empty()
        );
    }

    #[test]
    fn a_restricted_create_links_only_its_own_stations_steps() {
        let (dir, _) = setup();
        let store = Store::open(dir.path().join("w.db")).unwrap();
        let on = |id: &str, station: Option<&str>| {
            let mut e = WorklistEntry::new("calpendo", id, "S", date(2026, 11, 26).at(9, 0, 0, 0));
            e.station_ae_title = station.map(str::to_string);
            e
        };
        let window = SyncWindow {
            start: date(2026, 11, 26).at(0, 0, 0, 0),
            end: date(2026, 11, 27).at(0, 0, 0, 0),
        };
        store
            .reconcile(
                "calpendo",
                &window,
                vec![on("1", Some("MRI_3T")), on("2", Some("EEG")), on("3", None)],
                OnCancel::Discontinue,
                Timestamp::UNIX_EPOCH,
            )
            .unwrap();
        let refs: Vec<_> = ["1", "2", "3"].map(|id| reference(&store, id)).into();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let links = store
            .mpps_create(
                "7.7",
                "MRI_3T",
                PerformedStatus::InProgress,
                b"x",
                &refs,
                Some("MRI_3T"),
                now,
            )
            .unwrap();
        assert_eq!(links.linked.len(), 1, "only MRI_3T's own step");
        assert_eq!(links.other_station, 2, "EEG's, and one with no station");
        assert_eq!(status(&store, "1").0, StepStatus::Started);
        assert_eq!(
            status(&store, "2"),
            (StepStatus::Scheduled, StatusSetBy::Sync)
        );
        assert_eq!(
            status(&store, "3"),
            (StepStatus::Scheduled, StatusSetBy::Sync)
        );
    }

    #[test]
    fn a_refused_decision_changes_nothing_and_sets_are_counted() {
        let (_d, store) = setup();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        store
            .mpps_create(
                "1.2.3",
                "MRI_3T",
                PerformedStatus::InProgress,
                b"x",
                &[reference(&store, "1")],
                None,
                now,
            )
            .unwrap();
        assert_eq!(store.mpps_get("1.2.3").unwrap().unwrap().set_count, 0);
        let refused = store.mpps_modify("1.2.3", now, |current| {
            assert_eq!(current.calling_ae, "MRI_3T");
            Err::<MppsChange, _>(MppsError::Duplicate("refused".into()))
        });
        assert!(refused.is_err());
        let p = store.mpps_get("1.2.3").unwrap().unwrap();
        assert_eq!((p.set_count, p.attributes.as_slice()), (0, &b"x"[..]));
        store
            .mpps_update(
                "1.2.3",
                PerformedStatus::InProgress,
                b"xy",
                LinkedSteps::FollowStatus,
                now,
            )
            .unwrap();
        assert_eq!(store.mpps_get("1.2.3").unwrap().unwrap().set_count, 1);
    }

    #[test]
    fn concurrent_sets_of_one_step_lose_no_update() {
        let (_d, store) = setup();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        store
            .mpps_create(
                "1.2.3",
                "MRI_3T",
                PerformedStatus::InProgress,
                b"",
                &[],
                None,
                now,
            )
            .unwrap();
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        store
                            .mpps_modify("1.2.3", now, |current| {
                                let mut attributes = current.attributes.clone();
                                attributes.push(b'a' + t);
                                std::thread::yield_now();
                                Ok::<_, MppsError>(MppsChange {
                                    status: PerformedStatus::InProgress,
                                    attributes,
                                    linked: LinkedSteps::FollowStatus,
                                })
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let p = store.mpps_get("1.2.3").unwrap().unwrap();
        assert_eq!(p.set_count, 100);
        assert_eq!(p.attributes.len(), 100, "every N-SET's change is kept");
    }
}
