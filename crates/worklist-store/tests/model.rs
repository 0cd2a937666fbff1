//! Model-based test of the store: random sequences of syncs (bookings new, moved inside or
//! outside the window, retitled, cancelled, restored, vanished; `on_cancel` discontinue or
//! delete) and MPPS N-CREATE / N-SET, applied both to the real [`Store`] (a temporary
//! SQLite file) and to a small in-memory model written from the documented rules
//! (`Store::reconcile`'s doc comment, `Store::mpps_create` / `mpps_update`):
//!
//! - a fetched entry is inserted when new (not when it is cancelled and `on_cancel` is
//!   delete); a stored one is rewritten only when a value or its status changed;
//! - a cancelled entry (DISCONTINUED from the source) becomes DISCONTINUED, or is deleted
//!   with `on_cancel = delete`;
//! - a stored entry of the synced source that starts inside the window and was not
//!   fetched has vanished: DISCONTINUED, or deleted with `on_cancel = delete`;
//! - a status set by MPPS is never changed by a sync, nor is such an entry deleted; its
//!   other values still follow the source;
//! - entries outside the window, and other sources' entries, are left alone;
//! - MPPS N-CREATE links the entries its references designate (all identifiers agreeing)
//!   and makes them STARTED, set by MPPS; N-SET moves them to COMPLETED or DISCONTINUED; a
//!   final step refuses any further N-SET, changing nothing.
//!
//! After every step the store's entries (values, status, who set it, when they last
//! changed) must equal the model's.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use jiff::civil::{Date, date};
use proptest::prelude::*;
use worklist_store::{
    EntryFilter, MppsError, OnCancel, PerformedStatus, ScheduledStepRef, StatusSetBy, StepStatus,
    Store, SyncWindow, WorklistEntry,
};

const SOURCES: [&str; 2] = ["calpendo", "other"];
/// Record ids per source.
const IDS: u8 = 6;

fn day(d: u8) -> Date {
    date(2026, 11, 23) + jiff::Span::new().days(i64::from(d))
}

/// A booking as its source holds it.
#[derive(Debug, Clone, PartialEq)]
struct Booking {
    day: u8,
    hour: i8,
    title: u8,
    status: StepStatus,
    /// A value that breaks its DICOM rules: the entry is rejected by the store.
    invalid: bool,
}

impl Booking {
    fn entry(&self, source: &str, id: u8) -> WorklistEntry {
        let start = day(self.day).at(self.hour, 30 * (self.hour % 2), 0, 0);
        let mut e = WorklistEntry::new(source, id.to_string(), format!("SUB{id}"), start);
        e.patient_name =
            Some(["Doe^Jane", "Doe^John", "Hébert^Zoë"][usize::from(self.title)].into());
        e.modality = Some("MR".into());
        e.station_ae_title = Some("MRI_3T".into());
        e.end = Some(start + jiff::Span::new().hours(1));
        e.sps_description = Some(format!("title {}", self.title));
        e.status = self.status;
        if self.invalid {
            e.patient_id = "X".repeat(65);
        }
        e
    }
}

/// A change in a source before a sync.
#[derive(Debug, Clone)]
enum Change {
    New {
        id: u8,
        day: u8,
        hour: i8,
        title: u8,
    },
    Move {
        id: u8,
        day: u8,
        hour: i8,
    },
    Retitle {
        id: u8,
        title: u8,
    },
    Status {
        id: u8,
        status: StepStatus,
    },
    Invalid {
        id: u8,
        invalid: bool,
    },
    Vanish {
        id: u8,
    },
}

#[derive(Debug, Clone)]
enum Op {
    /// Changes in a source, then a sync of `source` over `[day, day + days)`.
    Sync {
        source: usize,
        changes: Vec<Change>,
        day: u8,
        days: u8,
        delete: bool,
    },
    /// N-CREATE (IN PROGRESS) referencing a stored entry (or none: an unscheduled scan).
    MppsCreate { target: Option<u8> },
    /// N-SET of a created step to a new status.
    MppsSet { which: u8, status: PerformedStatus },
}

fn hour() -> impl Strategy<Value = i8> {
    prop::sample::select(vec![0i8, 7, 8, 12, 23])
}

fn step_status() -> impl Strategy<Value = StepStatus> {
    prop::sample::select(StepStatus::ALL.to_vec())
}

fn change() -> impl Strategy<Value = Change> {
    let id = 0..IDS;
    prop_oneof![
        3 => (id.clone(), 0u8..6, hour(), 0u8..3)
            .prop_map(|(id, day, hour, title)| Change::New { id, day, hour, title }),
        2 => (id.clone(), 0u8..6, hour()).prop_map(|(id, day, hour)| Change::Move { id, day, hour }),
        2 => (id.clone(), 0u8..3).prop_map(|(id, title)| Change::Retitle { id, title }),
        2 => (id.clone(), step_status()).prop_map(|(id, status)| Change::Status { id, status }),
        1 => (id.clone(), any::<bool>()).prop_map(|(id, invalid)| Change::Invalid { id, invalid }),
        2 => id.prop_map(|id| Change::Vanish { id }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..2, prop::collection::vec(change(), 0..5), 0u8..5, 1u8..3, any::<bool>())
            .prop_map(|(source, changes, day, days, delete)| Op::Sync {
                source,
                changes,
                day,
                days,
                delete,
            }),
        2 => prop::option::weighted(0.85, any::<u8>())
            .prop_map(|target| Op::MppsCreate { target }),
        2 => (
            any::<u8>(),
            prop::sample::select(vec![
                PerformedStatus::InProgress,
                PerformedStatus::Completed,
                PerformedStatus::Discontinued,
            ])
        )
            .prop_map(|(which, status)| Op::MppsSet { which, status }),
    ]
}

/// What the model expects of one stored entry.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    entry: WorklistEntry,
    set_by: StatusSetBy,
    last_updated: Timestamp,
    status_changed_at: Timestamp,
}

/// A performed step in the model.
#[derive(Debug, Clone)]
struct Performed {
    uid: String,
    status: PerformedStatus,
    linked: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct Model {
    entries: HashMap<(String, String), Expected>,
    performed: Vec<Performed>,
}

impl Model {
    /// `Store::reconcile`, as documented.
    fn reconcile(
        &mut self,
        source: &str,
        window: &SyncWindow,
        fetched: &[WorklistEntry],
        on_cancel: OnCancel,
        now: Timestamp,
    ) {
        let mut seen = Vec::new();
        for e in fetched {
            let key = (e.source.clone(), e.source_record_id.clone());
            seen.push(key.clone());
            if !e.problems().is_empty() {
                continue;
            }
            let cancelled = e.status == StepStatus::Discontinued;
            match self.entries.get_mut(&key) {
                None => {
                    if cancelled && on_cancel == OnCancel::Delete {
                        continue;
                    }
                    self.entries.insert(
                        key,
                        Expected {
                            entry: e.clone(),
                            set_by: StatusSetBy::Sync,
                            last_updated: now,
                            status_changed_at: now,
                        },
                    );
                }
                Some(stored) => {
                    let protected = stored.set_by != StatusSetBy::Sync;
                    if !protected && cancelled && on_cancel == OnCancel::Delete {
                        self.entries.remove(&key);
                        continue;
                    }
                    let mut incoming = e.clone();
                    if protected {
                        incoming.status = stored.entry.status;
                    }
                    if incoming == stored.entry {
                        continue;
                    }
                    if incoming.status != stored.entry.status {
                        stored.set_by = StatusSetBy::Sync;
                        stored.status_changed_at = now;
                    }
                    stored.entry = incoming;
                    stored.last_updated = now;
                }
            }
        }
        let vanished: Vec<(String, String)> = self
            .entries
            .iter()
            .filter(|(k, x)| {
                k.0 == source
                    && window.contains(x.entry.start)
                    && !seen.contains(k)
                    && x.set_by == StatusSetBy::Sync
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in vanished {
            match on_cancel {
                OnCancel::Delete => {
                    self.entries.remove(&key);
                }
                OnCancel::Discontinue => {
                    let x = self.entries.get_mut(&key).unwrap();
                    if x.entry.status != StepStatus::Discontinued {
                        x.entry.status = StepStatus::Discontinued;
                        x.set_by = StatusSetBy::Sync;
                        x.status_changed_at = now;
                        x.last_updated = now;
                    }
                }
            }
        }
    }

    fn set_linked(&mut self, linked: &[(String, String)], status: PerformedStatus, now: Timestamp) {
        for key in linked {
            if let Some(x) = self.entries.get_mut(key) {
                let s = status.step_status();
                if !(x.entry.status == s && x.set_by == StatusSetBy::Mpps) {
                    x.entry.status = s;
                    x.set_by = StatusSetBy::Mpps;
                    x.status_changed_at = now;
                    x.last_updated = now;
                }
            }
        }
    }
}

/// The store's entries as the model holds them.
fn snapshot(store: &Store) -> BTreeMap<(String, String), Expected> {
    store
        .list(&EntryFilter::default())
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                (s.entry.source.clone(), s.entry.source_record_id.clone()),
                Expected {
                    entry: s.entry,
                    set_by: s.meta.status_set_by,
                    last_updated: s.meta.last_updated,
                    status_changed_at: s.meta.status_changed_at,
                },
            )
        })
        .collect()
}

fn reference(e: &WorklistEntry) -> ScheduledStepRef {
    ScheduledStepRef {
        study_instance_uid: Some(e.study_instance_uid.clone()),
        accession_number: Some(e.accession_number.clone()),
        requested_procedure_id: Some(e.requested_procedure_id.clone()),
        sps_id: Some(e.sps_id.clone()),
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("w.db")).unwrap();
    let mut model = Model::default();
    let mut truth: [BTreeMap<u8, Booking>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for (step, op) in ops.iter().enumerate() {
        let now = Timestamp::from_second(1_800_000_000 + step as i64 * 60).unwrap();
        match op {
            Op::Sync {
                source,
                changes,
                day: first,
                days,
                delete,
            } => {
                let bookings = &mut truth[*source];
                for c in changes {
                    match *c {
                        Change::New {
                            id,
                            day,
                            hour,
                            title,
                        } => {
                            bookings.entry(id).or_insert(Booking {
                                day,
                                hour,
                                title,
                                status: StepStatus::Scheduled,
                                invalid: false,
                            });
                        }
                        Change::Move { id, day, hour } => {
                            if let Some(b) = bookings.get_mut(&id) {
                                b.day = day;
                                b.hour = hour;
                            }
                        }
                        Change::Retitle { id, title } => {
                            if let Some(b) = bookings.get_mut(&id) {
                                b.title = title;
                            }
                        }
                        Change::Status { id, status } => {
                            if let Some(b) = bookings.get_mut(&id) {
                                b.status = status;
                            }
                        }
                        Change::Invalid { id, invalid } => {
                            if let Some(b) = bookings.get_mut(&id) {
                                b.invalid = invalid;
                            }
                        }
                        Change::Vanish { id } => {
                            bookings.remove(&id);
                        }
                    }
                }
                let source_name = SOURCES[*source];
                let window = SyncWindow {
                    start: day(*first).at(0, 0, 0, 0),
                    end: day(first + days).at(0, 0, 0, 0),
                };
                // A complete fetch: every booking whose step starts inside the window.
                let fetched: Vec<WorklistEntry> = bookings
                    .iter()
                    .map(|(id, b)| b.entry(source_name, *id))
                    .filter(|e| window.contains(e.start))
                    .collect();
                let on_cancel = if *delete {
                    OnCancel::Delete
                } else {
                    OnCancel::Discontinue
                };
                store
                    .reconcile(source_name, &window, fetched.clone(), on_cancel, now)
                    .unwrap();
                model.reconcile(source_name, &window, &fetched, on_cancel, now);
            }
            Op::MppsCreate { target } => {
                let uid = format!("1.2.826.0.1.3680043.10.2.{step}");
                let mut keys: Vec<&(String, String)> = model.entries.keys().collect();
                keys.sort();
                let picked = match target {
                    Some(i) if !keys.is_empty() => Some(keys[usize::from(*i) % keys.len()].clone()),
                    _ => None,
                };
                let refs = match &picked {
                    Some(k) => vec![reference(&model.entries[k].entry)],
                    None => vec![ScheduledStepRef {
                        study_instance_uid: Some("1.2.3.999".into()),
                        ..Default::default()
                    }],
                };
                let linked = store
                    .mpps_create(
                        &uid,
                        "MRI_3T",
                        PerformedStatus::InProgress,
                        b"x",
                        &refs,
                        None,
                        now,
                    )
                    .unwrap()
                    .linked;
                prop_assert_eq!(linked.len(), usize::from(picked.is_some()), "step {}", step);
                let linked: Vec<(String, String)> = picked.into_iter().collect();
                model.set_linked(&linked, PerformedStatus::InProgress, now);
                model.performed.push(Performed {
                    uid,
                    status: PerformedStatus::InProgress,
                    linked,
                });
            }
            Op::MppsSet { which, status } => {
                if model.performed.is_empty() {
                    continue;
                }
                let i = usize::from(*which) % model.performed.len();
                let p = model.performed[i].clone();
                let result = store.mpps_update(
                    &p.uid,
                    *status,
                    b"y",
                    worklist_store::LinkedSteps::FollowStatus,
                    now,
                );
                if p.status.is_final() {
                    prop_assert!(
                        matches!(result, Err(MppsError::AlreadyFinal(_))),
                        "step {}: N-SET of a final step gave {:?}",
                        step,
                        result
                    );
                } else {
                    prop_assert!(result.is_ok(), "step {}: {:?}", step, result);
                    model.performed[i].status = *status;
                    model.set_linked(&p.linked, *status, now);
                }
            }
        }
        let actual = snapshot(&store);
        let expected: BTreeMap<(String, String), Expected> = model
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if actual != expected {
            let mut diff = String::new();
            for key in actual.keys().chain(expected.keys()) {
                let (a, e) = (actual.get(key), expected.get(key));
                if a != e {
                    diff.push_str(&format!(
                        "\n  {key:?}:\n    store: {:?}\n    model: {:?}",
                        a.map(|x| (
                            x.entry.start,
                            x.entry.status,
                            x.set_by,
                            &x.entry.patient_name,
                            x.last_updated
                        )),
                        e.map(|x| (
                            x.entry.start,
                            x.entry.status,
                            x.set_by,
                            &x.entry.patient_name,
                            x.last_updated
                        )),
                    ));
                }
            }
            return Err(TestCaseError::fail(format!(
                "after step {step} ({op:?}) the store differs from the model:{diff}"
            )));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn store_follows_the_documented_rules(ops in prop::collection::vec(op(), 1..24)) {
        run(&ops)?;
    }
}

/// The scenario the rules name, step by step: a booking vanishes, comes back; one started
/// by MPPS is cancelled in the source and keeps STARTED.
#[test]
fn a_hand_written_sequence_follows_the_rules() {
    let ops = vec![
        Op::Sync {
            source: 0,
            changes: vec![
                Change::New {
                    id: 1,
                    day: 1,
                    hour: 8,
                    title: 0,
                },
                Change::New {
                    id: 2,
                    day: 1,
                    hour: 12,
                    title: 1,
                },
            ],
            day: 0,
            days: 2,
            delete: false,
        },
        Op::MppsCreate { target: Some(0) },
        Op::Sync {
            source: 0,
            changes: vec![
                Change::Status {
                    id: 1,
                    status: StepStatus::Discontinued,
                },
                Change::Vanish { id: 2 },
            ],
            day: 0,
            days: 2,
            delete: true,
        },
        Op::MppsSet {
            which: 0,
            status: PerformedStatus::Completed,
        },
        Op::MppsSet {
            which: 0,
            status: PerformedStatus::Discontinued,
        },
    ];
    run(&ops).unwrap();
}
