//! Several processes on one file (serve's sync, `mwlbridge token`, `sync`, `export`): a
//! write waits for another process's write lock instead of failing with "database is
//! locked", and opening a current file takes no write lock at all.

use std::thread;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::date;
use worklist_store::{OnCancel, Store, SyncWindow, WorklistEntry};

const SRC: &str = "calpendo";

fn window() -> SyncWindow {
    SyncWindow {
        start: date(2026, 11, 26).at(0, 0, 0, 0),
        end: date(2026, 11, 28).at(0, 0, 0, 0),
    }
}

fn booking(description: &str) -> WorklistEntry {
    let mut e = WorklistEntry::new(SRC, "1", "SUB001", date(2026, 11, 26).at(9, 0, 0, 0));
    e.study_description = Some(description.into());
    e
}

fn now() -> Timestamp {
    Timestamp::from_second(1_795_000_000).expect("timestamp")
}

/// Another process's write transaction on `path`, open until the returned sender is
/// dropped or sent to (then it commits).
fn hold_write_lock(
    path: &std::path::Path,
) -> (std::sync::mpsc::Sender<()>, thread::JoinHandle<()>) {
    let other = rusqlite::Connection::open(path).expect("other connection");
    other.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = thread::spawn(move || {
        let _ = released.recv();
        other.execute_batch("COMMIT").expect("commit");
    });
    (release, holder)
}

#[test]
fn a_sync_waits_for_another_process_write_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("worklist.db");
    let store = Store::open(&path).expect("open");
    store
        .reconcile(
            SRC,
            &window(),
            vec![booking("A")],
            OnCancel::Discontinue,
            now(),
        )
        .expect("first sync");

    let (release, holder) = hold_write_lock(&path);
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        let _ = release.send(());
    });
    // The reconcile reads the stored entry before it writes; it must wait for the lock
    // (busy timeout), not fail once it has read.
    let counts = store
        .reconcile(
            SRC,
            &window(),
            vec![booking("B")],
            OnCancel::Discontinue,
            now(),
        )
        .expect("a sync while another process writes");
    assert_eq!(counts.updated, 1);
    releaser.join().expect("releaser");
    holder.join().expect("holder");
}

#[test]
fn opening_a_current_file_takes_no_write_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("worklist.db");
    drop(Store::open(&path).expect("create"));

    let (release, holder) = hold_write_lock(&path);
    // Held for the whole open: an open that wanted the lock would wait out the busy
    // timeout and fail.
    let store = Store::open(&path).expect("open while another process writes");
    assert_eq!(store.count().expect("count"), 0);
    drop(release);
    holder.join().expect("holder");
}
