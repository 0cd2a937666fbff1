//! Streaming reads ([`Store::read_snapshot`], [`Store::scan_entries`]) against a real
//! SQLite file: same rows as `list`, one snapshot per scan, transaction released on stop.

use std::ops::ControlFlow;
use std::sync::mpsc;

use jiff::Timestamp;
use jiff::civil::{DateTime, date};
use worklist_store::{
    EntryFilter, OnCancel, ScanEnd, StepStatus, Store, SyncWindow, WorklistEntry,
};

const SRC: &str = "calpendo";

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("worklist.db")).expect("open");
    (dir, store)
}

fn at(day: i8, hour: i8, minute: i8) -> DateTime {
    date(2026, 11, day).at(hour, minute, 0, 0)
}

/// The window of 2026-11-26 and 2026-11-27.
fn window() -> SyncWindow {
    SyncWindow {
        start: at(26, 0, 0),
        end: date(2026, 11, 28).at(0, 0, 0, 0),
    }
}

/// `n` bookings over the two days of the window, every fifth on another station.
fn bookings(n: usize, version: &str) -> Vec<WorklistEntry> {
    (0..n)
        .map(|i| {
            let start = at(26 + (i % 2) as i8, 8 + (i % 10) as i8, (i % 60) as i8);
            let mut e = WorklistEntry::new(SRC, format!("B{i}"), format!("SUB{i}"), start);
            e.end = Some(start + jiff::Span::new().minutes(30));
            e.patient_name = Some(format!("Subject{i}^{version}"));
            e.modality = Some("MR".into());
            e.station_ae_title = Some(if i % 5 == 0 { "EEG_LAB" } else { "MRI_3T" }.into());
            e
        })
        .collect()
}

fn sync(store: &Store, entries: Vec<WorklistEntry>, t: i64) {
    store
        .reconcile(
            SRC,
            &window(),
            entries,
            OnCancel::Discontinue,
            Timestamp::from_second(1_795_000_000 + t).expect("timestamp"),
        )
        .expect("reconcile");
}

fn scanned(store: &Store, filter: &EntryFilter) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let end = store
        .scan_entries(filter, |s| {
            out.push((
                s.entry.source_record_id.clone(),
                s.entry.patient_name.clone().unwrap_or_default(),
            ));
            ControlFlow::Continue(())
        })
        .expect("scan");
    assert_eq!(end, ScanEnd::Finished);
    out
}

#[test]
fn scan_gives_the_rows_of_list_in_its_order() {
    let (_dir, store) = store();
    sync(&store, bookings(60, "V1"), 0);
    let filters = [
        EntryFilter::default(),
        EntryFilter {
            station_ae_title: Some("MRI_3T".into()),
            from_date: Some(date(2026, 11, 27)),
            statuses: vec![StepStatus::Scheduled, StepStatus::Started],
            ..EntryFilter::default()
        },
        EntryFilter {
            patient_id: Some("SUB7".into()),
            ..EntryFilter::default()
        },
        EntryFilter {
            modality: Some("CT".into()),
            ..EntryFilter::default()
        },
    ];
    for filter in &filters {
        let listed: Vec<(String, String)> = store
            .list(filter)
            .expect("list")
            .into_iter()
            .map(|s| {
                (
                    s.entry.source_record_id,
                    s.entry.patient_name.unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(scanned(&store, filter), listed, "{filter:?}");
    }
    assert_eq!(scanned(&store, &filters[0]).len(), 60);
    assert_eq!(scanned(&store, &filters[2]).len(), 1);
    assert!(scanned(&store, &filters[3]).is_empty());
}

#[test]
fn a_sync_committed_during_a_scan_is_not_seen_by_it() {
    let (_dir, store) = store();
    sync(&store, bookings(40, "V1"), 0);
    let mut seen = Vec::new();
    let (end, count_inside) = store
        .read_snapshot(|snapshot| {
            let end = snapshot.scan_entries(&EntryFilter::default(), |s| {
                if seen.is_empty() {
                    // Mid-iteration: a sync renames every subject, adds 20 bookings and
                    // (gone from the source) discontinues B0..B9. It commits at once.
                    let mut next = bookings(60, "V2");
                    next.drain(0..10);
                    sync(&store, next, 1);
                }
                seen.push((
                    s.entry.source_record_id,
                    s.entry.patient_name,
                    s.entry.status,
                ));
                ControlFlow::Continue(())
            })?;
            Ok((end, snapshot.count()?))
        })
        .expect("snapshot");
    assert_eq!(end, ScanEnd::Finished);
    // The whole scan, and a second read in the same snapshot, saw the state before.
    assert_eq!(seen.len(), 40);
    assert_eq!(count_inside, 40);
    for (id, name, status) in &seen {
        let i: usize = id[1..].parse().expect("id");
        assert_eq!(name.as_deref(), Some(format!("Subject{i}^V1").as_str()));
        assert_eq!(*status, StepStatus::Scheduled);
    }
    // The next scan sees the sync.
    let after = scanned(&store, &EntryFilter::default());
    assert_eq!(after.len(), 60);
    assert!(
        after
            .iter()
            .all(|(_, name)| name.ends_with("^V2") || name.ends_with("^V1"))
    );
    let discontinued = store
        .list(&EntryFilter {
            statuses: vec![StepStatus::Discontinued],
            ..EntryFilter::default()
        })
        .expect("list");
    assert_eq!(discontinued.len(), 10);
}

/// `PRAGMA wal_checkpoint(PASSIVE)` on a connection of its own: (WAL frames, frames
/// copied into the database). A reader's snapshot keeps the frames after it from being
/// copied.
fn checkpoint(path: &std::path::Path) -> (i64, i64) {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
    .expect("checkpoint")
}

#[test]
fn stopping_a_scan_early_releases_its_transaction() {
    let (dir, store) = store();
    let path = dir.path().join("worklist.db");
    sync(&store, bookings(50, "V1"), 0);

    // A scan that stops after 3 rows, then waits (still inside the snapshot) until told.
    let (stopped_tx, stopped_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let scanner = {
        let store = store.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            store
                .read_snapshot(|snapshot| {
                    let end = snapshot.scan_entries(&EntryFilter::default(), |_| {
                        n += 1;
                        if n == 3 {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        }
                    })?;
                    stopped_tx.send(end).expect("send");
                    go_rx.recv().expect("recv");
                    Ok(n)
                })
                .expect("snapshot")
        })
    };
    assert_eq!(stopped_rx.recv().expect("recv"), ScanEnd::Stopped);
    // While the snapshot is held, a write commits but cannot be checkpointed past it.
    sync(&store, bookings(50, "V2"), 1);
    let (frames, copied) = checkpoint(&path);
    assert!(
        copied < frames,
        "checkpoint went past an open snapshot: {copied}/{frames}"
    );
    go_tx.send(()).expect("send");
    assert_eq!(scanner.join().expect("scanner"), 3);
    // Released: the checkpoint now copies every frame, and the pooled connection reads
    // the new state (it is not left inside the old transaction).
    let (frames, copied) = checkpoint(&path);
    assert_eq!(copied, frames);
    let after = scanned(&store, &EntryFilter::default());
    assert!(after.iter().all(|(_, name)| name.ends_with("^V2")));

    // A callback that stops at once, on this thread: the transaction is gone as soon as
    // scan_entries returns, so a checkpoint right after copies everything.
    sync(&store, bookings(50, "V3"), 2);
    let end = store
        .scan_entries(&EntryFilter::default(), |_| ControlFlow::Break(()))
        .expect("scan");
    assert_eq!(end, ScanEnd::Stopped);
    sync(&store, bookings(50, "V4"), 3);
    let (frames, copied) = checkpoint(&path);
    assert_eq!(copied, frames);
}

#[test]
fn an_error_inside_the_snapshot_releases_it_too() {
    let (dir, store) = store();
    let path = dir.path().join("worklist.db");
    sync(&store, bookings(10, "V1"), 0);
    let failed: Result<(), _> = store.read_snapshot(|snapshot| {
        snapshot.scan_entries(&EntryFilter::default(), |_| ControlFlow::Continue(()))?;
        Err(worklist_store::StoreError::Task("stop here".into()))
    });
    assert!(failed.is_err());
    sync(&store, bookings(10, "V2"), 1);
    let (frames, copied) = checkpoint(&path);
    assert_eq!(copied, frames);
    assert!(
        scanned(&store, &EntryFilter::default())
            .iter()
            .all(|(_, name)| name.ends_with("^V2"))
    );
}
