//! The read model ([`Store::enable_read_model`]) against a real SQLite file: its scans
//! give exactly what the database's do, for every kind of filter; a write, in this
//! process or another, is seen by the next scan; a scan running while a sync commits
//! sees the worklist before it, whole.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::civil::{DateTime, date};
use worklist_store::{
    EntryFilter, OnCancel, ScanEnd, StatusSetBy, StepStatus, Store, StoredEntry, SyncWindow,
    WorklistEntry,
};

const SRC: &str = "calpendo";

fn at(day: i8, hour: i8, minute: i8) -> DateTime {
    date(2026, 12, day).at(hour, minute, 0, 0)
}

fn window() -> SyncWindow {
    SyncWindow {
        start: at(5, 0, 0),
        end: date(2026, 12, 9).at(0, 0, 0, 0),
    }
}

/// `n` bookings over four days, three stations and two modalities, some sharing a
/// subject, some without a name, one with a name of two component groups.
fn bookings(n: usize, version: &str) -> Vec<WorklistEntry> {
    (0..n)
        .map(|i| {
            let start = at(5 + (i % 4) as i8, 8 + (i % 9) as i8, (i * 7 % 60) as i8);
            let mut e = WorklistEntry::new(SRC, format!("B{i}"), format!("SUB{}", i % 37), start);
            e.end = Some(start + jiff::Span::new().minutes(30));
            e.patient_name = match i % 11 {
                0 => None,
                1 => Some(format!("Yamada^Taro{version}=山田^太郎")),
                _ => Some(format!("{}^{version}", ["Doe", "Smith", "Dupont"][i % 3])),
            };
            e.modality = Some(if i % 4 == 0 { "EEG" } else { "MR" }.into());
            e.station_ae_title = Some(["MRI_3T", "MRI_7T", "EEG_LAB"][i % 3].into());
            e.station_name = Some("Scanner room".into());
            e.patient_weight_kg = (i % 2 == 0).then_some(70.0 + i as f64 / 10.0);
            e
        })
        .collect()
}

fn now() -> Timestamp {
    Timestamp::from_second(1_795_100_000).expect("timestamp")
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

fn scanned(store: &Store, filter: &EntryFilter) -> Vec<StoredEntry> {
    let mut out = Vec::new();
    let end = store
        .scan_entries(filter, |s| {
            out.push(s.clone());
            ControlFlow::Continue(())
        })
        .expect("scan");
    assert_eq!(end, ScanEnd::Finished);
    out
}

/// Scans until the read model serves them (it is rebuilt on a thread of its own after a
/// write), then returns what it gave; at most 10 s.
fn scanned_from_memory(store: &Store, filter: &EntryFilter) -> Vec<StoredEntry> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.read_model_is_current() {
        assert!(Instant::now() < deadline, "the read model was not rebuilt");
        std::thread::sleep(Duration::from_millis(5));
    }
    scanned(store, filter)
}

fn filters() -> Vec<EntryFilter> {
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    vec![
        EntryFilter::default(),
        EntryFilter::offered(),
        EntryFilter {
            from_date: Some(date(2026, 12, 6)),
            to_date: Some(date(2026, 12, 6)),
            station_ae_title: Some("MRI_3T".into()),
            modality: Some("MR".into()),
            ..EntryFilter::offered()
        },
        EntryFilter {
            patient_id: Some("SUB7".into()),
            ..EntryFilter::default()
        },
        EntryFilter {
            patient_id: Some("NOBODY".into()),
            ..EntryFilter::default()
        },
        EntryFilter {
            modality: Some("EEG".into()),
            to_date: Some(date(2026, 12, 6)),
            ..EntryFilter::default()
        },
        EntryFilter {
            from_date: Some(date(2026, 12, 7)),
            statuses: vec![StepStatus::Discontinued],
            ..EntryFilter::default()
        },
        EntryFilter {
            patient_name_prefixes: names(&["doe", "dup"]),
            ..EntryFilter::offered()
        },
        EntryFilter {
            patient_name_prefixes: names(&["yamada"]),
            station_ae_title: Some("MRI_7T".into()),
            ..EntryFilter::default()
        },
        EntryFilter {
            source: Some("redcap".into()),
            ..EntryFilter::default()
        },
        EntryFilter {
            source: Some(SRC.into()),
            from_date: Some(date(2026, 12, 9)),
            ..EntryFilter::default()
        },
    ]
}

#[test]
fn memory_scans_give_what_the_database_gives_for_every_filter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("worklist.db");
    let store = Store::open(&path).expect("open");
    sync(&store, bookings(300, "V1"), 0);
    // Some history: discontinued (gone from the source) and MPPS-set statuses.
    sync(&store, bookings(260, "V1"), 1);
    let b3 = store.get(SRC, "B3").expect("get").expect("B3");
    store
        .set_status(
            b3.meta.row_id,
            StepStatus::Started,
            StatusSetBy::Mpps,
            now(),
        )
        .expect("status");

    // The same file read by a store without the model: the database's answers.
    let database = Store::open(&path).expect("second handle");
    store.enable_read_model();
    assert!(store.read_model_is_current());
    for filter in filters() {
        let expected = scanned(&database, &filter);
        assert_eq!(scanned(&store, &filter), expected, "{filter:?}");
    }
    assert_eq!(scanned(&store, &EntryFilter::default()).len(), 300);
    assert_eq!(scanned(&store, &filters()[3]).len(), 8);

    // Stopping early stops.
    let mut seen = 0;
    let end = store
        .scan_entries(&EntryFilter::default(), |_| {
            seen += 1;
            if seen == 5 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .expect("scan");
    assert_eq!((end, seen), (ScanEnd::Stopped, 5));
}

#[test]
fn every_write_is_seen_by_the_next_scan_whichever_process_makes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("worklist.db");
    let store = Store::open(&path).expect("open");
    sync(&store, bookings(40, "V1"), 0);
    store.enable_read_model();
    let names = |entries: &[StoredEntry]| -> Vec<Option<String>> {
        entries
            .iter()
            .map(|e| e.entry.patient_name.clone())
            .collect()
    };
    let everything = EntryFilter::default();
    let before = scanned_from_memory(&store, &everything);

    // A write of this store: the very next scan sees it (from the database while the
    // model is rebuilt), and so do scans from memory afterwards.
    sync(&store, bookings(40, "V2"), 1);
    let next = scanned(&store, &everything);
    assert_ne!(names(&next), names(&before));
    assert_eq!(scanned_from_memory(&store, &everything), next);

    // A status set by MPPS.
    let b5 = store.get(SRC, "B5").expect("get").expect("B5");
    store
        .set_status(
            b5.meta.row_id,
            StepStatus::Completed,
            StatusSetBy::Mpps,
            now(),
        )
        .expect("status");
    let status_of_b5 = |entries: Vec<StoredEntry>| {
        entries
            .into_iter()
            .find(|e| e.entry.source_record_id == "B5")
            .map(|e| e.entry.status)
    };
    assert_eq!(
        status_of_b5(scanned(&store, &everything)),
        Some(StepStatus::Completed)
    );

    // Another process (another handle with its own connections): seen as well.
    let other = Store::open(&path).expect("other process");
    sync(&other, bookings(30, "V3"), 2);
    let after_other = scanned(&store, &everything);
    assert_eq!(
        after_other
            .iter()
            .filter(|e| e.entry.status == StepStatus::Discontinued)
            .count(),
        10
    );
    assert_eq!(scanned_from_memory(&store, &everything), after_other);
    assert!(scanned(&store, &EntryFilter::offered()).len() < 40);
}

#[test]
fn a_scan_from_memory_running_while_a_sync_commits_sees_the_worklist_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("worklist.db")).expect("open");
    sync(&store, bookings(60, "V1"), 0);
    store.enable_read_model();
    assert!(store.read_model_is_current());
    let mut seen = Vec::new();
    store
        .scan_entries(&EntryFilter::default(), |s| {
            if seen.is_empty() {
                // Mid-scan: a sync renames every subject and drops 20 bookings.
                sync(&store, bookings(40, "V2"), 1);
            }
            seen.push(s.clone());
            ControlFlow::Continue(())
        })
        .expect("scan");
    assert_eq!(seen.len(), 60);
    assert!(
        seen.iter().all(|e| e.entry.status == StepStatus::Scheduled
            && e.entry
                .patient_name
                .as_deref()
                .is_none_or(|n| n.contains("V1"))),
        "a scan saw part of the sync"
    );
    // The next scan sees all of it.
    let after = scanned(&store, &EntryFilter::default());
    assert_eq!(
        after
            .iter()
            .filter(|e| e.entry.status == StepStatus::Discontinued)
            .count(),
        20
    );
}
