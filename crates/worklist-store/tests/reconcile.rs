//! Reconcile against a real SQLite file: every rule of the sync, and idempotence.

use jiff::Timestamp;
use jiff::civil::{DateTime, date};
use worklist_store::{
    EntryFilter, Fetched, MassChangeGuard, OnCancel, ReconcileCounts, StatusSetBy, StepStatus,
    Store, StoreError, SyncWindow, WorklistEntry,
};

const SRC: &str = "calpendo";

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("worklist.db")).expect("open");
    (dir, store)
}

fn at(day: i8, hour: i8) -> DateTime {
    date(2026, 11, day).at(hour, 0, 0, 0)
}

/// The window of 2026-11-26 and 2026-11-27.
fn window() -> SyncWindow {
    SyncWindow {
        start: at(26, 0),
        end: date(2026, 11, 28).at(0, 0, 0, 0),
    }
}

fn booking(id: &str, subject: &str, start: DateTime) -> WorklistEntry {
    let mut e = WorklistEntry::new(SRC, id, subject, start);
    e.end = Some(start + jiff::Span::new().hours(1));
    e.patient_name = Some(format!("{subject}^Test"));
    e.modality = Some("MR".into());
    e.station_ae_title = Some("MRI_3T".into());
    e.study_description = Some("BRISKP".into());
    e.patient_weight_kg = Some(72.5);
    e.patient_birth_date = Some(date(1990, 2, 28));
    e
}

fn now(sec: i64) -> Timestamp {
    Timestamp::from_second(1_795_000_000 + sec).expect("timestamp")
}

fn sync(store: &Store, entries: Vec<WorklistEntry>, policy: OnCancel, t: i64) -> ReconcileCounts {
    store
        .reconcile(SRC, &window(), entries, policy, now(t))
        .expect("reconcile")
}

fn status_of(store: &Store, id: &str) -> Option<(StepStatus, StatusSetBy)> {
    store
        .get(SRC, id)
        .expect("get")
        .map(|s| (s.entry.status, s.meta.status_set_by))
}

#[test]
fn inserts_new_entries() {
    let (_d, store) = store();
    let c = sync(
        &store,
        vec![
            booking("1", "SUB001", at(26, 9)),
            booking("2", "SUB002", at(27, 10)),
        ],
        OnCancel::Discontinue,
        0,
    );
    assert_eq!(
        (c.fetched, c.inserted, c.updated, c.unchanged),
        (2, 2, 0, 0)
    );
    let stored = store.get(SRC, "1").expect("get").expect("stored");
    assert_eq!(stored.entry, booking("1", "SUB001", at(26, 9)));
    assert_eq!(stored.meta.status_set_by, StatusSetBy::Sync);
    assert_eq!(stored.meta.first_seen, now(0));
    assert_eq!(store.count().expect("count"), 2);
}

#[test]
fn second_identical_run_changes_nothing() {
    let (_d, store) = store();
    let entries = vec![
        booking("1", "SUB001", at(26, 9)),
        booking("2", "SUB002", at(27, 10)),
    ];
    sync(&store, entries.clone(), OnCancel::Discontinue, 0);
    let before = store.list(&EntryFilter::default()).expect("list");
    let c = sync(&store, entries, OnCancel::Discontinue, 60);
    assert_eq!(
        c,
        ReconcileCounts {
            fetched: 2,
            unchanged: 2,
            ..Default::default()
        }
    );
    // Not even the bookkeeping moved.
    assert_eq!(store.list(&EntryFilter::default()).expect("list"), before);
}

#[test]
fn changed_values_update_the_same_row() {
    let (_d, store) = store();
    sync(
        &store,
        vec![booking("1", "SUB001", at(26, 9))],
        OnCancel::Discontinue,
        0,
    );
    let first = store.get(SRC, "1").expect("get").expect("stored");

    let mut moved = booking("1", "SUB001", at(26, 14));
    moved.patient_name = Some("Retitled^Subject".into());
    let c = sync(&store, vec![moved.clone()], OnCancel::Discontinue, 60);
    assert_eq!((c.updated, c.inserted, c.unchanged), (1, 0, 0));

    let after = store.get(SRC, "1").expect("get").expect("stored");
    assert_eq!(after.entry, moved);
    assert_eq!(after.meta.row_id, first.meta.row_id);
    assert_eq!(
        after.entry.study_instance_uid,
        first.entry.study_instance_uid
    );
    assert_eq!(after.meta.first_seen, now(0));
    assert_eq!(after.meta.last_updated, now(60));
    assert_eq!(
        after.meta.status_changed_at,
        now(0),
        "status did not change"
    );
}

#[test]
fn cancelled_booking_is_discontinued() {
    let (_d, store) = store();
    sync(
        &store,
        vec![booking("1", "SUB001", at(26, 9))],
        OnCancel::Discontinue,
        0,
    );
    let mut cancelled = booking("1", "SUB001", at(26, 9));
    cancelled.status = StepStatus::Discontinued;
    let c = sync(&store, vec![cancelled], OnCancel::Discontinue, 60);
    assert_eq!((c.discontinued, c.updated), (1, 0));
    assert_eq!(
        status_of(&store, "1"),
        Some((StepStatus::Discontinued, StatusSetBy::Sync))
    );
    // Approved again: back on the list.
    let c = sync(
        &store,
        vec![booking("1", "SUB001", at(26, 9))],
        OnCancel::Discontinue,
        120,
    );
    assert_eq!(c.updated, 1);
    assert_eq!(
        status_of(&store, "1"),
        Some((StepStatus::Scheduled, StatusSetBy::Sync))
    );
}

#[test]
fn cancelled_booking_is_deleted_by_policy() {
    let (_d, store) = store();
    sync(
        &store,
        vec![booking("1", "SUB001", at(26, 9))],
        OnCancel::Delete,
        0,
    );
    let mut cancelled = booking("1", "SUB001", at(26, 9));
    cancelled.status = StepStatus::Discontinued;
    let c = sync(&store, vec![cancelled.clone()], OnCancel::Delete, 60);
    assert_eq!(c.deleted, 1);
    assert_eq!(status_of(&store, "1"), None);
    // A booking first seen already cancelled is not stored at all under this policy.
    let c = sync(&store, vec![cancelled], OnCancel::Delete, 120);
    assert_eq!((c.inserted, c.deleted), (0, 0));
    assert_eq!(store.count().expect("count"), 0);
}

#[test]
fn vanished_inside_window_is_discontinued_outside_is_kept() {
    let (_d, store) = store();
    // Yesterday's scan, outside today's window.
    store
        .reconcile(
            SRC,
            &SyncWindow {
                start: at(25, 0),
                end: at(26, 0),
            },
            vec![booking("0", "SUB000", at(25, 15))],
            OnCancel::Discontinue,
            now(0),
        )
        .expect("reconcile");
    sync(
        &store,
        vec![
            booking("1", "SUB001", at(26, 9)),
            booking("2", "SUB002", at(27, 10)),
        ],
        OnCancel::Discontinue,
        10,
    );
    let c = sync(
        &store,
        vec![booking("2", "SUB002", at(27, 10))],
        OnCancel::Discontinue,
        60,
    );
    assert_eq!((c.discontinued, c.unchanged), (1, 1));
    assert_eq!(
        status_of(&store, "1"),
        Some((StepStatus::Discontinued, StatusSetBy::Sync))
    );
    assert_eq!(
        status_of(&store, "0"),
        Some((StepStatus::Scheduled, StatusSetBy::Sync))
    );
    // Already discontinued: a further run does not count it again.
    let c = sync(
        &store,
        vec![booking("2", "SUB002", at(27, 10))],
        OnCancel::Discontinue,
        120,
    );
    assert_eq!(c.discontinued, 0);
}

#[test]
fn a_fetch_of_changes_discontinues_nothing_it_lacks() {
    let (_d, store) = store();
    sync(
        &store,
        vec![
            booking("1", "SUB001", at(26, 9)),
            booking("2", "SUB002", at(27, 10)),
        ],
        OnCancel::Delete,
        0,
    );
    // Only booking 2 changed (it moved to another day, outside any window) and booking 3
    // is new; booking 1 is simply not part of the answer.
    let mut moved = booking("2", "SUB002", at(29, 8));
    moved.study_description = Some("MOVED".into());
    let c = store
        .apply_fetched(
            SRC,
            &window(),
            Fetched::Changed(vec![moved.clone(), booking("3", "SUB003", at(26, 11))]),
            OnCancel::Delete,
            now(60),
            MassChangeGuard::Off,
        )
        .expect("reconcile changed");
    assert_eq!(
        (c.fetched, c.inserted, c.updated, c.discontinued, c.deleted),
        (2, 1, 1, 0, 0)
    );
    assert_eq!(
        status_of(&store, "1"),
        Some((StepStatus::Scheduled, StatusSetBy::Sync))
    );
    assert_eq!(
        store.get(SRC, "2").expect("get").expect("kept").entry,
        moved
    );
    // A change that is a cancellation still applies.
    let mut cancelled = booking("3", "SUB003", at(26, 11));
    cancelled.status = StepStatus::Discontinued;
    let c = store
        .reconcile_changed(SRC, vec![cancelled], OnCancel::Discontinue, now(120))
        .expect("reconcile changed");
    assert_eq!((c.discontinued, c.deleted), (1, 0));
    assert_eq!(store.count().expect("count"), 3);
    // The complete fetch that follows removes what is gone from the window.
    let c = store
        .apply_fetched(
            SRC,
            &window(),
            Fetched::Complete(vec![booking("1", "SUB001", at(26, 9))]),
            OnCancel::Delete,
            now(180),
            MassChangeGuard::Off,
        )
        .expect("reconcile complete");
    assert_eq!(
        c.deleted, 1,
        "booking 3 is gone from the window; booking 2 is outside it"
    );
    assert_eq!(store.count().expect("count"), 2);
}

#[test]
fn vanished_is_deleted_by_policy() {
    let (_d, store) = store();
    sync(
        &store,
        vec![
            booking("1", "SUB001", at(26, 9)),
            booking("2", "SUB002", at(27, 10)),
        ],
        OnCancel::Delete,
        0,
    );
    let c = sync(
        &store,
        vec![booking("2", "SUB002", at(27, 10))],
        OnCancel::Delete,
        60,
    );
    assert_eq!(c.deleted, 1);
    assert_eq!(status_of(&store, "1"), None);
}

#[test]
fn window_end_is_exclusive() {
    let (_d, store) = store();
    let w = SyncWindow {
        start: at(26, 0),
        end: at(26, 12),
    };
    store
        .reconcile(
            SRC,
            &w,
            vec![booking("noon", "SUB9", at(26, 12))],
            OnCancel::Discontinue,
            now(0),
        )
        .expect("reconcile");
    let c = store
        .reconcile(SRC, &w, vec![], OnCancel::Discontinue, now(1))
        .expect("reconcile");
    assert_eq!(
        c.discontinued, 0,
        "a step starting at the window's end is outside it"
    );
}

#[test]
fn other_sources_are_untouched() {
    let (_d, store) = store();
    store
        .reconcile(
            "other",
            &window(),
            vec![WorklistEntry::new("other", "1", "X1", at(26, 9))],
            OnCancel::Discontinue,
            now(0),
        )
        .expect("reconcile");
    let c = sync(&store, vec![], OnCancel::Delete, 60);
    assert_eq!(c.deleted, 0);
    assert!(store.get("other", "1").expect("get").is_some());
}

#[test]
fn status_set_by_mpps_is_never_reset_by_sync() {
    let (_d, store) = store();
    sync(
        &store,
        vec![
            booking("1", "SUB001", at(26, 9)),
            booking("2", "SUB002", at(26, 11)),
        ],
        OnCancel::Delete,
        0,
    );
    let row1 = store
        .get(SRC, "1")
        .expect("get")
        .expect("stored")
        .meta
        .row_id;
    let row2 = store
        .get(SRC, "2")
        .expect("get")
        .expect("stored")
        .meta
        .row_id;
    assert!(
        store
            .set_status(row1, StepStatus::Completed, StatusSetBy::Mpps, now(10))
            .expect("set")
    );
    assert!(
        store
            .set_status(row2, StepStatus::Started, StatusSetBy::Mpps, now(10))
            .expect("set")
    );

    // Booking 1 comes back Approved (SCHEDULED) with a new time; booking 2 comes back
    // cancelled while its scan is in progress.
    let mut cancelled = booking("2", "SUB002", at(26, 11));
    cancelled.status = StepStatus::Discontinued;
    let c = sync(
        &store,
        vec![booking("1", "SUB001", at(26, 10)), cancelled],
        OnCancel::Delete,
        60,
    );
    assert_eq!((c.deleted, c.discontinued), (0, 0));
    assert_eq!(
        status_of(&store, "1"),
        Some((StepStatus::Completed, StatusSetBy::Mpps))
    );
    assert_eq!(
        status_of(&store, "2"),
        Some((StepStatus::Started, StatusSetBy::Mpps))
    );
    // Other values still follow the source.
    let e1 = store.get(SRC, "1").expect("get").expect("stored");
    assert_eq!(e1.entry.start, at(26, 10));
    assert_eq!(e1.meta.status_changed_at, now(10));

    // Vanishing does not touch them either.
    let c = sync(&store, vec![], OnCancel::Delete, 120);
    assert_eq!((c.deleted, c.discontinued), (0, 0));
    assert_eq!(
        status_of(&store, "1"),
        Some((StepStatus::Completed, StatusSetBy::Mpps))
    );
    assert_eq!(
        status_of(&store, "2"),
        Some((StepStatus::Started, StatusSetBy::Mpps))
    );
}

#[test]
fn invalid_entries_are_rejected_not_discontinued() {
    let (_d, store) = store();
    sync(
        &store,
        vec![booking("1", "SUB001", at(26, 9))],
        OnCancel::Discontinue,
        0,
    );
    let mut bad = booking("1", "SUB001", at(26, 9));
    bad.station_ae_title = Some("THIS_AE_TITLE_IS_TOO_LONG".into());
    let c = sync(&store, vec![bad], OnCancel::Discontinue, 60);
    assert_eq!((c.rejected, c.discontinued, c.updated), (1, 0, 0));
    assert_eq!(
        status_of(&store, "1"),
        Some((StepStatus::Scheduled, StatusSetBy::Sync))
    );
}

#[test]
fn entry_of_another_source_fails_the_whole_transaction() {
    let (_d, store) = store();
    let err = store
        .reconcile(
            SRC,
            &window(),
            vec![
                booking("1", "SUB001", at(26, 9)),
                WorklistEntry::new("other", "2", "X", at(26, 9)),
            ],
            OnCancel::Discontinue,
            now(0),
        )
        .expect_err("mismatch");
    assert!(err.to_string().contains("belongs to source"), "{err}");
    assert_eq!(
        store.count().expect("count"),
        0,
        "the first insert was rolled back"
    );
}

#[test]
fn purge_removes_entries_that_ended_before_the_cutoff() {
    let (_d, store) = store();
    let old = booking("old", "SUB1", date(2026, 10, 1).at(9, 0, 0, 0));
    let mut no_end = WorklistEntry::new(SRC, "noend", "SUB2", date(2026, 10, 2).at(9, 0, 0, 0));
    no_end.end = None;
    let recent = booking("recent", "SUB3", at(26, 9));
    store
        .reconcile(
            SRC,
            &SyncWindow {
                start: date(2026, 10, 1).at(0, 0, 0, 0),
                end: at(28, 0),
            },
            vec![old, no_end, recent],
            OnCancel::Discontinue,
            now(0),
        )
        .expect("reconcile");
    let n = store
        .purge_ended_before(date(2026, 10, 27).at(0, 0, 0, 0))
        .expect("purge");
    assert_eq!(n, 2);
    assert!(store.get(SRC, "recent").expect("get").is_some());
}

#[test]
fn list_filters_by_date_station_and_status() {
    let (_d, store) = store();
    let mut eeg = booking("3", "SUB003", at(26, 13));
    eeg.station_ae_title = Some("EEG_1".into());
    eeg.modality = Some("EEG".into());
    let mut cancelled = booking("4", "SUB004", at(26, 15));
    cancelled.status = StepStatus::Discontinued;
    sync(
        &store,
        vec![
            booking("1", "SUB001", at(26, 9)),
            booking("2", "SUB002", at(27, 10)),
            eeg,
            cancelled,
        ],
        OnCancel::Discontinue,
        0,
    );
    let ids = |f: EntryFilter| -> Vec<String> {
        store
            .list(&f)
            .expect("list")
            .into_iter()
            .map(|s| s.entry.source_record_id)
            .collect()
    };
    let today = date(2026, 11, 26);
    assert_eq!(
        ids(EntryFilter {
            from_date: Some(today),
            to_date: Some(today),
            ..Default::default()
        }),
        ["1", "3", "4"]
    );
    assert_eq!(
        ids(EntryFilter {
            station_ae_title: Some("EEG_1".into()),
            ..Default::default()
        }),
        ["3"]
    );
    assert_eq!(
        ids(EntryFilter {
            statuses: vec![StepStatus::Scheduled],
            ..Default::default()
        }),
        ["1", "3", "2"]
    );
    assert_eq!(
        ids(EntryFilter {
            patient_id: Some("SUB002".into()),
            ..Default::default()
        }),
        ["2"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_run_while_a_sync_transaction_is_open() {
    let (_d, store) = store();
    sync(
        &store,
        vec![booking("1", "SUB001", at(26, 9))],
        OnCancel::Discontinue,
        0,
    );
    // Hold the write lock inside an open transaction, as a long sync would.
    let writer_store = store.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(writer_store.path()).expect("open");
        conn.execute_batch("BEGIN IMMEDIATE; DELETE FROM worklist_entries;")
            .expect("begin");
        locked_tx.send(()).expect("send");
        release_rx.recv().expect("recv");
        conn.execute_batch("ROLLBACK").expect("rollback");
    });
    locked_rx.recv().expect("locked");
    let n = store
        .run(|s| s.count())
        .await
        .expect("a reader is not blocked by the open write transaction");
    assert_eq!(n, 1, "the reader sees the last committed state");
    release_tx.send(()).expect("release");
    writer.join().expect("writer");
}

/// The patient-name search key columns of an entry, read from the file.
fn name_key(store: &Store, source: &str, id: &str) -> (Option<String>, Option<i64>) {
    let conn = rusqlite::Connection::open(store.path()).expect("open");
    conn.query_row(
        "SELECT patient_name_key, patient_name_groups FROM worklist_entries
          WHERE source = ?1 AND source_record_id = ?2",
        [source, id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .expect("row")
}

#[test]
fn sync_writes_and_rewrites_the_patient_name_key() {
    let (_dir, store) = store();
    let mut a = booking("1", "SIMPSON", at(26, 9));
    a.patient_name = Some(" Simpson ^Élise^^".into());
    let mut b = booking("2", "YAMADA", at(26, 10));
    b.patient_name = Some("Yamada^Tarou=山田^太郎".into());
    let mut c = booking("3", "ANON", at(26, 11));
    c.patient_name = None;
    sync(
        &store,
        vec![a.clone(), b.clone(), c.clone()],
        OnCancel::Discontinue,
        0,
    );
    assert_eq!(
        name_key(&store, SRC, "1"),
        (Some("simpson^élise".into()), Some(1))
    );
    assert_eq!(name_key(&store, SRC, "2"), (None, Some(2)));
    assert_eq!(name_key(&store, SRC, "3"), (None, Some(0)));
    // A renamed subject gets its new key; a name removed, none.
    a.patient_name = Some("MÜLLER^Zoë".into());
    b.patient_name = Some("Yamada^Tarou".into());
    c.patient_name = Some("Doe".into());
    let counts = sync(&store, vec![a, b.clone(), c], OnCancel::Discontinue, 1);
    assert_eq!(counts.updated, 3);
    assert_eq!(
        name_key(&store, SRC, "1"),
        (Some("müller^zoë".into()), Some(1))
    );
    assert_eq!(
        name_key(&store, SRC, "2"),
        (Some("yamada^tarou".into()), Some(1))
    );
    assert_eq!(name_key(&store, SRC, "3"), (Some("doe".into()), Some(1)));
    b.patient_name = None;
    sync(&store, vec![b], OnCancel::Discontinue, 2);
    assert_eq!(name_key(&store, SRC, "2"), (None, Some(0)));
    // Listings by key prefix find them.
    let ids = |prefixes: &[&str]| -> Vec<String> {
        store
            .list(&EntryFilter {
                patient_name_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
                ..Default::default()
            })
            .expect("list")
            .into_iter()
            .map(|s| s.entry.source_record_id)
            .collect()
    };
    assert_eq!(ids(&["mü"]), ["1"]);
    // With a patient ID (another SQL form, same rows).
    let with_id = |subject: &str, prefixes: &[&str]| -> usize {
        store
            .list(&EntryFilter {
                patient_id: Some(subject.into()),
                patient_name_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
                ..Default::default()
            })
            .expect("list")
            .len()
    };
    assert_eq!(with_id("SIMPSON", &["mü"]), 1);
    assert_eq!(with_id("SIMPSON", &["do"]), 0);
    assert_eq!(with_id("ANON", &["do", "x"]), 1);
    assert_eq!(ids(&["do", "m"]), ["1", "3"]);
    assert_eq!(ids(&["d", "x"]), ["3"]);
    assert!(ids(&["yamada"]).is_empty());
}

#[test]
fn manual_entries_write_the_patient_name_key() {
    let (_dir, store) = store();
    let mut e = WorklistEntry::new(worklist_store::MANUAL_SOURCE, "w1", "PHANTOM01", at(26, 14));
    e.patient_name = Some("Phantom^Water".into());
    store.create_manual(&e, now(0)).expect("create");
    assert_eq!(
        name_key(&store, worklist_store::MANUAL_SOURCE, "w1"),
        (Some("phantom^water".into()), Some(1))
    );
    e.patient_name = Some("ÉCHO^Fantôme=エコー".into());
    store.update_manual(&e, now(1)).expect("update");
    assert_eq!(
        name_key(&store, worklist_store::MANUAL_SOURCE, "w1"),
        (None, Some(2))
    );
    e.patient_name = Some("Écho".into());
    store.update_manual(&e, now(2)).expect("update");
    assert_eq!(
        name_key(&store, worklist_store::MANUAL_SOURCE, "w1"),
        (Some("écho".into()), Some(1))
    );
}

/// `n` bookings of the window, ids 1..=n.
fn day_of(n: usize) -> Vec<WorklistEntry> {
    (1..=n)
        .map(|i| booking(&i.to_string(), &format!("SUB{i:03}"), at(26, 8)))
        .collect()
}

fn guarded(
    store: &Store,
    entries: Vec<WorklistEntry>,
    guard: MassChangeGuard,
) -> Result<ReconcileCounts, StoreError> {
    store.apply_fetched(
        SRC,
        &window(),
        Fetched::Complete(entries),
        OnCancel::Discontinue,
        now(60),
        guard,
    )
}

#[test]
fn a_fetch_that_would_empty_the_window_is_refused_unless_accepted() {
    let (_d, store) = store();
    sync(&store, day_of(5), OnCancel::Discontinue, 0);
    let half = MassChangeGuard::MaxFraction(0.5);
    let e = guarded(&store, Vec::new(), half).expect_err("refused");
    assert!(
        matches!(
            e,
            StoreError::MassChange {
                removing: 5,
                active: 5,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("5 of its 5 active entries"), "{e}");
    for i in 1..=5 {
        assert_eq!(
            status_of(&store, &i.to_string()),
            Some((StepStatus::Scheduled, StatusSetBy::Sync)),
            "nothing changed"
        );
    }
    // Accepted once, the same fetch applies.
    let c = guarded(&store, Vec::new(), MassChangeGuard::Off).expect("accepted");
    assert_eq!(c.discontinued, 5);
}

#[test]
fn ordinary_cancellations_pass_the_guard() {
    let half = MassChangeGuard::MaxFraction(0.5);
    // Two of two: fewer than the guard's minimum, whatever the share.
    let (_d, st) = store();
    sync(&st, day_of(2), OnCancel::Discontinue, 0);
    assert_eq!(
        guarded(&st, Vec::new(), half)
            .expect("applies")
            .discontinued,
        2
    );
    // Four of ten: under half.
    let (_d, st) = store();
    sync(&st, day_of(10), OnCancel::Discontinue, 0);
    let kept: Vec<WorklistEntry> = day_of(10).into_iter().take(6).collect();
    assert_eq!(guarded(&st, kept, half).expect("applies").discontinued, 4);
    // Six of ten, reported as cancelled by the source: refused like vanished ones.
    let (_d, st) = store();
    sync(&st, day_of(10), OnCancel::Discontinue, 0);
    let mut fetched = day_of(10);
    for e in fetched.iter_mut().take(6) {
        e.status = StepStatus::Discontinued;
    }
    assert!(guarded(&st, fetched, half).is_err());
}

/// A fetch for the preview tests: 1 as it is, 2 with a new time, 3 gone, 4 new, 5
/// cancelled, and 6 with an empty subject ID (rejected).
fn preview_fetch() -> Vec<WorklistEntry> {
    let mut moved = booking("2", "SUB002", at(26, 11));
    moved.study_description = Some("REST".into());
    let mut cancelled = booking("5", "SUB005", at(26, 8));
    cancelled.status = StepStatus::Discontinued;
    vec![
        booking("1", "SUB001", at(26, 8)),
        moved,
        booking("4", "SUB004", at(27, 9)),
        cancelled,
        booking("6", "", at(27, 9)),
    ]
}

#[test]
fn a_preview_lists_each_change_and_changes_nothing() {
    let (_d, store) = store();
    let mut before = day_of(3);
    before.push(booking("5", "SUB005", at(26, 8)));
    sync(&store, before, OnCancel::Discontinue, 0);
    let stored_before = store.list(&EntryFilter::default()).expect("list");

    let preview = store
        .preview_fetched(
            SRC,
            &window(),
            Fetched::Complete(preview_fetch()),
            OnCancel::Discontinue,
            now(60),
            MassChangeGuard::MaxFraction(0.5),
        )
        .expect("preview");
    let listed: Vec<(String, String, Vec<String>)> = preview
        .changes
        .iter()
        .map(|c| {
            let id = c.entry.source_record_id.clone();
            (c.kind.to_string(), id, c.fields.clone())
        })
        .collect();
    let fields = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        listed,
        vec![
            (
                "update".into(),
                "2".into(),
                fields(&["end", "start", "study_description"])
            ),
            ("insert".into(), "4".into(), vec![]),
            ("discontinue".into(), "5".into(), fields(&["status"])),
            ("reject".into(), "6".into(), fields(&["patient_id"])),
            ("discontinue".into(), "3".into(), fields(&["status"])),
        ]
    );
    let c = preview.counts;
    assert_eq!(
        (
            c.fetched,
            c.inserted,
            c.updated,
            c.unchanged,
            c.discontinued,
            c.rejected
        ),
        (5, 1, 1, 1, 2, 1)
    );
    assert_eq!(preview.refused, None, "2 of 4: under the guard's minimum");
    assert_eq!(
        store.list(&EntryFilter::default()).expect("list"),
        stored_before,
        "a preview changes nothing"
    );
}

#[test]
fn a_preview_says_when_the_guard_would_refuse() {
    let (_d, store) = store();
    sync(&store, day_of(5), OnCancel::Discontinue, 0);
    let preview = store
        .preview_fetched(
            SRC,
            &window(),
            Fetched::Complete(Vec::new()),
            OnCancel::Discontinue,
            now(60),
            MassChangeGuard::MaxFraction(0.5),
        )
        .expect("preview");
    assert_eq!(preview.changes.len(), 5);
    let refused = preview.refused.expect("refused");
    assert!(refused.contains("5 of its 5 active entries"), "{refused}");
    assert_eq!(
        status_of(&store, "1"),
        Some((StepStatus::Scheduled, StatusSetBy::Sync))
    );
}

#[test]
fn a_copy_holds_the_original_and_leaves_it_as_it_was() {
    let (dir, store) = store();
    sync(&store, day_of(3), OnCancel::Discontinue, 0);
    let original = dir.path().join("worklist.db");
    let bytes = std::fs::read(&original).expect("read");
    let copy = Store::open_copy_of(&original, &dir.path().join("copy.db")).expect("copy");
    assert_eq!(copy.count().expect("count"), 3);
    sync(&copy, Vec::new(), OnCancel::Delete, 60);
    assert_eq!(copy.count().expect("count"), 0);
    assert_eq!(store.count().expect("count"), 3);
    assert_eq!(std::fs::read(&original).expect("read"), bytes);
    // No original: an empty store.
    let fresh = Store::open_copy_of(&dir.path().join("none.db"), &dir.path().join("fresh.db"))
        .expect("new");
    assert_eq!(fresh.count().expect("count"), 0);
    assert!(!dir.path().join("none.db").exists());
}
