//! CalpendoSource against the fake Calpendo server, reading each booking's details
//! (`fetch_mode = "details"`).

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use calpendo_fake::{BookingShape, FakeBooking, FakeCalpendo, FakeConfig, Fault, FaultScope};
use calpendo_source::{CalpendoSource, parse_config};
use jiff::civil::{Date, DateTime, date};
use serde_json::{Value, json};
use worklist_store::{DataSource, SourceError, StepStatus, SyncWindow, WorklistEntry};

const DAY: Date = date(2026, 11, 26);

fn env(k: &str) -> Option<String> {
    match k {
        "CALPENDO_USERNAME" => Some("mwlbridge".into()),
        "CALPENDO_PASSWORD" => Some("secret".into()),
        _ => None,
    }
}

fn at(h: i8, m: i8) -> DateTime {
    DAY.at(h, m, 0, 0)
}

fn booking(id: i64, start: DateTime, resource: &str, status: &str) -> FakeBooking {
    let mri = resource.starts_with("3T");
    FakeBooking {
        id,
        start,
        end: start + jiff::SignedDuration::from_mins(60),
        title: format!("SUB{id:03}_Doe_John"),
        status: status.into(),
        biskit_type: if mri { "MRIScan" } else { "EEGScan" }.into(),
        resource: resource.into(),
        project: Some("BRISKP (Brain network models)".into()),
        booker: Some("Alice Williams".into()),
        owner: Some("Alice Williams".into()),
        operator: mri.then(|| "Jane Smith".to_string()),
        description: None,
        shape: BookingShape::Classic,
    }
}

fn day_window(d: Date) -> SyncWindow {
    SyncWindow {
        start: d.at(0, 0, 0, 0),
        end: d.tomorrow().unwrap().at(0, 0, 0, 0),
    }
}

async fn fake(bookings: Vec<FakeBooking>) -> FakeCalpendo {
    let server = FakeCalpendo::start(FakeConfig::default()).await.unwrap();
    server.set_bookings(bookings);
    server
}

/// A source reading each booking's details (`fetch_mode = "details"`, unless `extra`
/// says otherwise): these tests count detail requests and inject faults into them. The
/// bulk path has its own tests in `tests/bulk.rs`, which also runs the mode-independent
/// cases of this file in both modes.
fn source_for(server: &FakeCalpendo, extra: Value) -> CalpendoSource {
    let mut v = json!({
        "fetch_mode": "details",
        "base_url": server.base_url(),
        "resources": ["3T", "EEG"],
        "resource_modality_mapping": {"3T": "MR", "EEG": "EEG"},
        "station_aet_mapping": {"3T Diagnostic": "MRI_3T_DIAG", "3T": "MRI_3T"},
        "request_timeout": 5,
        "sync_deadline": 20,
    });
    if let (Value::Object(o), Value::Object(x)) = (&mut v, extra) {
        o.extend(x);
    }
    let config = parse_config(&v, &env).unwrap();
    CalpendoSource::new("calpendo", config)
        .unwrap()
        .with_backoff_base(Duration::from_millis(10))
}

fn ids(entries: &[WorklistEntry]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e.source_record_id.as_str())
        .collect()
}

fn by_id<'a>(entries: &'a [WorklistEntry], id: &str) -> &'a WorklistEntry {
    entries.iter().find(|e| e.source_record_id == id).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn approved_bookings_are_fetched_and_mapped() {
    let server = fake(vec![
        booking(2, at(9, 0), "3T Diagnostic", "Approved"),
        booking(3, at(10, 30), "EEG Lab Room A", "Approved"),
        // Outside the window.
        booking(
            4,
            DAY.tomorrow().unwrap().at(9, 0, 0, 0),
            "3T Diagnostic",
            "Approved",
        ),
    ])
    .await;
    let src = source_for(&server, json!({}));
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["2", "3"]);

    let mri = by_id(&entries, "2");
    assert_eq!(mri.source, "calpendo");
    assert_eq!(mri.patient_id, "SUB002");
    assert_eq!(mri.patient_name, None);
    assert_eq!(mri.study_description.as_deref(), Some("BRISKP"));
    assert_eq!(mri.sps_description.as_deref(), Some("BRISKP"));
    assert_eq!(mri.start, at(9, 0));
    assert_eq!(mri.end, Some(at(10, 0)));
    assert_eq!(mri.modality.as_deref(), Some("MR"));
    assert_eq!(mri.station_ae_title.as_deref(), Some("MRI_3T_DIAG"));
    assert_eq!(mri.station_name.as_deref(), Some("3T Diagnostic"));
    assert_eq!(mri.performing_physician_name.as_deref(), Some("Smith^Jane"));
    assert_eq!(mri.status, StepStatus::Scheduled);
    assert_eq!(mri.accession_number, "2");
    assert!(mri.study_instance_uid.starts_with("2.25."));
    assert!(mri.problems().is_empty(), "{:?}", mri.problems());

    let eeg = by_id(&entries, "3");
    assert_eq!(eeg.modality.as_deref(), Some("EEG"));
    assert_eq!(eeg.station_ae_title, None);
    assert_eq!(eeg.performing_physician_name, None);

    let stats = server.stats();
    assert_eq!(stats.list_requests, 1);
    assert_eq!(stats.detail_requests, 2);
    // Only the MRI scan has an operator to look up.
    assert_eq!(stats.operator_requests, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn pylantir_field_mapping_end_to_end() {
    let server = fake(vec![booking(12, at(9, 0), "3T Diagnostic", "Approved")]).await;
    let src = source_for(
        &server,
        json!({"field_mapping": {
            "patient_id": {"source_field": "title", "_extract": {"pattern": "^([A-Z0-9]+)_.*", "group": 1}},
            "patient_name": {"source_field": "title",
                "_extract": {"pattern": "^([^_]+)_([^_]+)_(.+)$", "template": "$2^$3"}},
            "study_description": {"source_field": "properties.project.formattedName",
                "_extract": {"pattern": "^([^(]+)", "group": 1}},
            "accession_number": "id",
            "study_instance_uid": "id",
            "performing_physician": "operator"
        }}),
    );
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    let e = by_id(&entries, "12");
    assert_eq!(e.patient_id, "SUB012");
    assert_eq!(e.patient_name.as_deref(), Some("Doe^John"));
    assert_eq!(e.study_description.as_deref(), Some("BRISKP"));
    assert_eq!(e.accession_number, "12");
    assert!(e.study_instance_uid.starts_with("2.25."));
    assert_eq!(e.performing_physician_name.as_deref(), Some("Smith^Jane"));
}

#[tokio::test(flavor = "multi_thread")]
async fn several_resources_and_prefix_filter() {
    let server = fake(vec![
        booking(1, at(8, 0), "3T Diagnostic", "Approved"),
        booking(2, at(9, 0), "3T Research", "Approved"),
        booking(3, at(10, 0), "EEG Lab Room A", "Approved"),
        booking(4, at(11, 0), "Mock Scanner", "Approved"),
    ])
    .await;
    let src = source_for(&server, json!({}));
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["1", "2", "3"]);
    assert_eq!(
        by_id(&entries, "2").station_ae_title.as_deref(),
        Some("MRI_3T")
    );

    // A narrower prefix: only the diagnostic scanner (prefixes never go to the server,
    // so every listed booking's details are read and filtered here).
    let src = source_for(&server, json!({"resources": ["3T Diag"]}));
    let before = server.stats().detail_requests;
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["1"]);
    assert_eq!(server.stats().detail_requests - before, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_filter_one_and_several() {
    let server = fake(vec![
        booking(1, at(8, 0), "3T Diagnostic", "Approved"),
        booking(2, at(9, 0), "3T Diagnostic", "Pending"),
        booking(3, at(10, 0), "EEG Lab Room A", "Cancelled"),
        booking(4, at(11, 0), "EEG Lab Room A", "Approved"),
    ])
    .await;
    let src = source_for(&server, json!({"status_filter": "Approved"}));
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["1", "4"]);
    // The server filtered: only the approved bookings' details were read.
    assert_eq!(server.stats().detail_requests, 2);

    let src = source_for(&server, json!({"status_filter": ["Approved", "Pending"]}));
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["1", "2", "4"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_resource_filters_combine() {
    let server = fake(vec![
        booking(1, at(8, 0), "3T Diagnostic", "Approved"),
        booking(2, at(9, 0), "3T Diagnostic", "Pending"),
        booking(3, at(10, 0), "EEG Lab Room A", "Pending"),
        booking(4, at(11, 0), "EEG Lab Room A", "Approved"),
        booking(5, at(12, 0), "Mock Scanner", "Approved"),
    ])
    .await;
    let src = source_for(
        &server,
        json!({"resources": ["EEG"], "status_filter": ["Approved"]}),
    );
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["4"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_bookings_are_discontinued() {
    let server = fake(vec![
        booking(1, at(8, 0), "3T Diagnostic", "Cancelled"),
        booking(2, at(9, 0), "3T Diagnostic", "In Progress"),
        booking(3, at(10, 0), "3T Diagnostic", "Completed"),
        booking(4, at(11, 0), "3T Diagnostic", "Pending"),
    ])
    .await;
    let src = source_for(&server, json!({}));
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    let status = |id| by_id(&entries, id).status;
    assert_eq!(status("1"), StepStatus::Discontinued);
    assert_eq!(status("2"), StepStatus::Started);
    assert_eq!(status("3"), StepStatus::Completed);
    assert_eq!(status("4"), StepStatus::Scheduled);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_are_a_config_error_without_retry() {
    let server = FakeCalpendo::start(FakeConfig {
        password: "other".into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    server.set_bookings(vec![booking(1, at(8, 0), "3T Diagnostic", "Approved")]);
    let src = source_for(&server, json!({}));
    let err = src.fetch_entries(&day_window(DAY)).await.unwrap_err();
    match err {
        SourceError::Config(m) => {
            let m = m.to_string();
            assert!(m.contains("401"), "{m}");
            assert!(!m.contains("secret"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.stats().unauthorized, 1);
    assert_eq!(server.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn forbidden_and_bad_request_are_config_errors() {
    let server = fake(vec![booking(1, at(8, 0), "3T Diagnostic", "Approved")]).await;
    let src = source_for(&server, json!({}));
    for code in [400u16, 403] {
        server.set_fault(Fault::Status(code), FaultScope::List);
        let before = server.stats().requests;
        let err = src.fetch_entries(&day_window(DAY)).await.unwrap_err();
        assert!(
            matches!(&err, SourceError::Config(m) if m.to_string().contains(&code.to_string())),
            "{err:?}"
        );
        assert_eq!(server.stats().requests - before, 1, "no retry on {code}");
    }
    // A 403 on a booking's details fails the cycle as a config error too.
    server.set_fault(Fault::Status(403), FaultScope::Details);
    let err = src.fetch_entries(&day_window(DAY)).await.unwrap_err();
    assert!(matches!(err, SourceError::Config(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_then_fail() {
    let server = fake(vec![booking(1, at(8, 0), "3T Diagnostic", "Approved")]).await;
    let src = source_for(&server, json!({}));
    server.set_fault(Fault::Status(500), FaultScope::List);
    let started = Instant::now();
    let err = src.fetch_entries(&day_window(DAY)).await.unwrap_err();
    assert!(
        matches!(&err, SourceError::Fetch(m) if m.to_string().contains("500") && m.to_string().contains("4 attempts")),
        "{err:?}"
    );
    // 1 attempt + 3 retries, with back-off 10 + 20 + 40 ms.
    assert_eq!(server.stats().requests, 4);
    assert!(started.elapsed() >= Duration::from_millis(70));

    // Two failures, then success: the cycle succeeds.
    server.set_fault_times(Fault::Status(503), FaultScope::Details, 2);
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_resets_and_truncated_bodies_are_retried() {
    let server = fake(vec![booking(1, at(8, 0), "3T Diagnostic", "Approved")]).await;
    let src = source_for(&server, json!({}));
    for fault in [Fault::ConnectionReset, Fault::TruncatedBody] {
        server.set_fault_times(fault.clone(), FaultScope::List, 2);
        let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
        assert_eq!(ids(&entries), vec!["1"], "{fault:?}");

        server.set_fault(fault.clone(), FaultScope::List);
        let err = src.fetch_entries(&day_window(DAY)).await.unwrap_err();
        assert!(matches!(err, SourceError::Fetch(_)), "{fault:?}: {err:?}");
        server.clear_fault();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_json_is_a_fetch_error() {
    let server = fake(vec![booking(1, at(8, 0), "3T Diagnostic", "Approved")]).await;
    let src = source_for(&server, json!({}));
    for scope in [FaultScope::List, FaultScope::Details] {
        server.set_fault(Fault::InvalidJson, scope);
        let err = src.fetch_entries(&day_window(DAY)).await.unwrap_err();
        assert!(
            matches!(&err, SourceError::Fetch(m) if m.to_string().contains("invalid JSON")),
            "{scope:?}: {err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_server_fails_within_the_deadline() {
    let server = fake(vec![booking(1, at(8, 0), "3T Diagnostic", "Approved")]).await;
    let src = source_for(&server, json!({"sync_deadline": 1, "request_timeout": 30}));
    server.set_fault(Fault::Hang, FaultScope::Details);
    let started = Instant::now();
    let err = src.fetch_entries(&day_window(DAY)).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&err, SourceError::Fetch(m) if m.to_string().contains("deadline exceeded")),
        "{err:?}"
    );
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_bodies_hit_the_request_timeout_and_are_retried() {
    let server = fake(vec![booking(1, at(8, 0), "3T Diagnostic", "Approved")]).await;
    let src = source_for(&server, json!({"request_timeout": 0.3}));
    server.set_fault_times(Fault::SlowBody(Duration::from_secs(2)), FaultScope::List, 1);
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["1"]);
    assert!(server.stats().list_requests >= 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vanished_booking_detail_is_skipped() {
    let server = fake(vec![
        booking(1, at(8, 0), "3T Diagnostic", "Approved"),
        booking(2, at(9, 0), "3T Diagnostic", "Approved"),
        booking(3, at(10, 0), "EEG Lab Room A", "Approved"),
    ])
    .await;
    let src = source_for(&server, json!({}));
    server.set_fault(Fault::Status(404), FaultScope::Booking(2));
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["1", "3"]);
}

/// Every listed booking without details is a failing server, not a deleted day: the
/// cycle fails (and changes nothing) instead of emptying the window.
#[tokio::test(flavor = "multi_thread")]
async fn every_booking_detail_missing_fails_the_cycle() {
    let server = fake(vec![
        booking(1, at(8, 0), "3T Diagnostic", "Approved"),
        booking(2, at(9, 0), "3T Diagnostic", "Approved"),
    ])
    .await;
    let src = source_for(&server, json!({}));
    server.set_fault(Fault::Status(404), FaultScope::Details);
    let e = src
        .fetch_entries(&day_window(DAY))
        .await
        .expect_err("fails");
    assert!(
        e.to_string()
            .contains("all 2 bookings whose details were asked for had none"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_in_flight_stay_within_max_workers() {
    let bookings: Vec<FakeBooking> = (0..24)
        .map(|i| {
            let resource = if i % 2 == 0 {
                "3T Diagnostic"
            } else {
                "EEG Lab Room A"
            };
            booking(
                100 + i,
                at(8, 0) + jiff::SignedDuration::from_mins(i * 20),
                resource,
                "Approved",
            )
        })
        .collect();
    let server = fake(bookings).await;
    server.set_latency(Duration::from_millis(40));
    for workers in [3usize, 5] {
        server.reset_stats();
        let src = source_for(&server, json!({"max_workers": workers}));
        let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
        assert_eq!(entries.len(), 24);
        let stats = server.stats();
        assert_eq!(stats.detail_requests, 24);
        assert_eq!(stats.operator_requests, 12);
        assert!(
            stats.max_in_flight <= workers as u64,
            "{} in flight with max_workers {workers}",
            stats.max_in_flight
        );
        assert!(stats.max_in_flight > 1, "no parallelism: {stats:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn calpendo11_shape() {
    // Ids 20..24 cover both end keys (finish/end) and both ISO forms (Z/offset).
    let bookings: Vec<FakeBooking> = (20..24)
        .map(|id| FakeBooking {
            shape: BookingShape::Calpendo11,
            ..booking(id, at(8 + id as i8 - 20, 15), "3T Diagnostic", "Approved")
        })
        .collect();
    let server = fake(bookings).await;
    let src = source_for(&server, json!({}));
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["20", "21", "22", "23"]);
    for (i, e) in entries.iter().enumerate() {
        let h = 8 + i as i8;
        assert_eq!(e.start, at(h, 15), "{}", e.source_record_id);
        assert_eq!(e.end, Some(at(h + 1, 15)), "{}", e.source_record_id);
        assert_eq!(e.patient_id, format!("SUB0{}", e.source_record_id));
        assert_eq!(e.status, StepStatus::Scheduled);
        assert_eq!(e.study_description.as_deref(), Some("BRISKP"));
        assert_eq!(e.performing_physician_name.as_deref(), Some("Smith^Jane"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hidden_or_failing_operator_is_absent() {
    let mut hidden_even = booking(30, at(8, 0), "3T Diagnostic", "Approved");
    hidden_even.operator = Some("<Hidden>".into());
    let mut hidden_odd = booking(31, at(9, 0), "3T Diagnostic", "Approved");
    hidden_odd.operator = Some("<Hidden>".into());
    let mut none = booking(32, at(10, 0), "3T Diagnostic", "Approved");
    none.operator = None;
    let mut odd_shape = booking(33, at(11, 0), "3T Diagnostic", "Approved");
    odd_shape.operator = Some("Tech John Smith".into());
    let server = fake(vec![hidden_even, hidden_odd, none, odd_shape]).await;
    let src = source_for(&server, json!({}));
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["30", "31", "32", "33"]);
    for id in ["30", "31", "32"] {
        assert_eq!(by_id(&entries, id).performing_physician_name, None, "{id}");
    }
    assert_eq!(
        by_id(&entries, "33").performing_physician_name.as_deref(),
        Some("Smith^Tech John")
    );

    // A failing operator lookup keeps the booking, without an operator (a new source:
    // this one would take the operators from its detail cache).
    server.set_fault(Fault::Status(500), FaultScope::Operator);
    let src = source_for(&server, json!({}));
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(entries.len(), 4);
    assert!(
        entries
            .iter()
            .all(|e| e.performing_physician_name.is_none())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_path_and_source_timezone() {
    let server = FakeCalpendo::start(FakeConfig {
        timezone: "America/Toronto".into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let mut iso = booking(41, DAY.at(11, 0, 0, 0), "3T Diagnostic", "Approved");
    iso.shape = BookingShape::Calpendo11;
    server.set_bookings(vec![
        booking(40, DAY.at(10, 0, 0, 0), "3T Diagnostic", "Approved"),
        iso,
        // 00:30 in Toronto is 23:30 the day before in Edmonton: outside the window.
        booking(42, DAY.at(0, 30, 0, 0), "3T Diagnostic", "Approved"),
        // 00:30 in Toronto the next day is 23:30 in Edmonton: inside.
        booking(
            43,
            DAY.tomorrow().unwrap().at(0, 30, 0, 0),
            "3T Diagnostic",
            "Approved",
        ),
    ]);
    let src = source_for(
        &server,
        json!({"api_path": "/api", "source_timezone": "America/Toronto"}),
    );
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["40", "41", "43"]);
    assert_eq!(by_id(&entries, "40").start, at(9, 0));
    assert_eq!(by_id(&entries, "41").start, at(10, 0));
    assert_eq!(by_id(&entries, "43").start, at(23, 30));
}

#[tokio::test(flavor = "multi_thread")]
async fn rolling_window_from_now_covers_today_and_tomorrow() {
    let src_cfg = parse_config(
        &json!({"base_url": "http://127.0.0.1:1", "resources": ["3T"]}),
        &env,
    )
    .unwrap();
    let now = jiff::Timestamp::now();
    let today = src_cfg.tz.to_datetime(now).date();
    let tomorrow = today.tomorrow().unwrap();
    let after = tomorrow.tomorrow().unwrap();
    let server = fake(vec![
        booking(50, today.at(9, 0, 0, 0), "3T Diagnostic", "Approved"),
        booking(51, tomorrow.at(9, 0, 0, 0), "3T Diagnostic", "Approved"),
        booking(52, after.at(9, 0, 0, 0), "3T Diagnostic", "Approved"),
    ])
    .await;
    let src = source_for(&server, json!({}));
    let window = src.sync_window(now);
    assert_eq!(window.start, today.at(0, 0, 0, 0));
    assert_eq!(window.end, after.at(0, 0, 0, 0));
    let entries = src.fetch_entries(&window).await.unwrap();
    assert_eq!(ids(&entries), vec!["50", "51"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn synthetic_day_maps_cleanly() {
    let bookings = calpendo_fake::synthetic_bookings(80, DAY, 7);
    let server = fake(bookings.clone()).await;
    let src = source_for(&server, json!({"resources": ["3T", "EEG", "Mock"]}));
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    let on_day = bookings.iter().filter(|b| b.start.date() == DAY).count();
    assert_eq!(entries.len(), on_day);
    for e in &entries {
        assert!(
            e.problems().is_empty(),
            "{}: {:?}",
            e.source_record_id,
            e.problems()
        );
    }
}

// ---------------------------------------------------------------------------------------
// The detail cache.

/// A clock the test moves by hand, for the detail cache's ages.
#[derive(Clone)]
struct TestClock {
    base: Instant,
    offset_ms: Arc<AtomicU64>,
}

impl TestClock {
    fn new() -> TestClock {
        TestClock {
            base: Instant::now(),
            offset_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    fn source(&self, src: CalpendoSource) -> CalpendoSource {
        let (base, offset) = (self.base, Arc::clone(&self.offset_ms));
        src.with_clock(move || base + Duration::from_millis(offset.load(Ordering::SeqCst)))
    }
}

fn four_bookings() -> Vec<FakeBooking> {
    let mut c11 = booking(4, at(11, 0), "3T Research", "Approved");
    c11.shape = BookingShape::Calpendo11;
    vec![
        booking(1, at(8, 0), "3T Diagnostic", "Approved"),
        booking(2, at(9, 0), "3T Diagnostic", "Approved"),
        booking(3, at(10, 0), "EEG Lab Room A", "Approved"),
        c11,
        // Filtered out by resource: its details are cached too, so it costs no request.
        booking(5, at(12, 0), "Mock Scanner", "Approved"),
    ]
}

fn changed(server: &FakeCalpendo, id: i64, f: impl FnOnce(&mut FakeBooking)) {
    let mut b = server.bookings().into_iter().find(|b| b.id == id).unwrap();
    f(&mut b);
    server.upsert_booking(b);
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_resync_makes_only_the_list_request() {
    let server = fake(four_bookings()).await;
    let src = source_for(&server, json!({}));
    let first = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&first), vec!["1", "2", "3", "4"]);
    let s = server.stats();
    assert_eq!(
        (s.list_requests, s.detail_requests, s.operator_requests),
        (1, 5, 3)
    );
    assert_eq!(src.cached_booking_ids(), vec!["1", "2", "3", "4", "5"]);
    // The cached details (titles, subject IDs) stay out of Debug output.
    let dbg = format!("{src:?}");
    assert!(
        !dbg.contains("SUB001") && dbg.contains("5 bookings"),
        "{dbg}"
    );

    server.reset_stats();
    let second = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(second, first);
    let s = server.stats();
    assert_eq!(s.requests, 1, "{s:?}");
    assert_eq!(s.list_requests, 1);
    // The operator came from the cache too.
    assert_eq!(
        by_id(&second, "1").performing_physician_name.as_deref(),
        Some("Smith^Jane")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_field_changes_show_in_the_next_cycle() {
    let server = fake(four_bookings()).await;
    let src = source_for(&server, json!({}));
    src.fetch_entries(&day_window(DAY)).await.unwrap();

    // Title, status and time are in the list; the project changes too, and shows because
    // the changed bookings' details are fetched again.
    changed(&server, 1, |b| {
        b.title = "SUB901_Doe_John".into();
        b.project = Some("NEWPROJ (renamed)".into());
    });
    changed(&server, 2, |b| b.status = "Cancelled".into());
    changed(&server, 3, |b| {
        b.start = at(15, 0);
        b.end = at(16, 0);
    });
    server.reset_stats();
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    let s = server.stats();
    assert_eq!(s.list_requests, 1);
    assert_eq!(s.detail_requests, 3, "only the changed bookings: {s:?}");
    // Bookings 1 and 2 are MRI scans: their operators are looked up again.
    assert_eq!(s.operator_requests, 2, "{s:?}");
    assert_eq!(by_id(&entries, "1").patient_id, "SUB901");
    assert_eq!(
        by_id(&entries, "1").study_description.as_deref(),
        Some("NEWPROJ")
    );
    assert_eq!(by_id(&entries, "2").status, StepStatus::Discontinued);
    assert_eq!(by_id(&entries, "3").start, at(15, 0));
    assert_eq!(by_id(&entries, "4").patient_id, "SUB004");

    // And the cycle after that is back to the list alone.
    server.reset_stats();
    let again = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(again, entries);
    assert_eq!(server.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn detail_only_changes_wait_for_detail_refresh() {
    let server = fake(four_bookings()).await;
    let clock = TestClock::new();
    let src = clock.source(source_for(&server, json!({"detail_refresh": 600})));
    src.fetch_entries(&day_window(DAY)).await.unwrap();

    // Project and operator are not in the list.
    changed(&server, 1, |b| {
        b.project = Some("NEWPROJ (renamed)".into());
        b.operator = Some("Tech John Smith".into());
    });
    clock.advance(Duration::from_secs(599));
    server.reset_stats();
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(server.stats().requests, 1);
    let e = by_id(&entries, "1");
    assert_eq!(e.study_description.as_deref(), Some("BRISKP"));
    assert_eq!(e.performing_physician_name.as_deref(), Some("Smith^Jane"));

    // Past detail_refresh every booking is fetched again, and the change shows.
    clock.advance(Duration::from_secs(2));
    server.reset_stats();
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    let s = server.stats();
    assert_eq!(
        (s.list_requests, s.detail_requests, s.operator_requests),
        (1, 5, 3)
    );
    let e = by_id(&entries, "1");
    assert_eq!(e.study_description.as_deref(), Some("NEWPROJ"));
    assert_eq!(
        e.performing_physician_name.as_deref(),
        Some("Smith^Tech John")
    );

    // The refetched details start a new age.
    clock.advance(Duration::from_secs(300));
    server.reset_stats();
    let again = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(again, entries);
    assert_eq!(server.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn detail_refresh_zero_fetches_everything_every_cycle() {
    let server = fake(four_bookings()).await;
    let src = source_for(&server, json!({"detail_refresh": 0}));
    let first = src.fetch_entries(&day_window(DAY)).await.unwrap();
    for _ in 0..2 {
        server.reset_stats();
        let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
        assert_eq!(entries, first);
        let s = server.stats();
        assert_eq!(
            (s.list_requests, s.detail_requests, s.operator_requests),
            (1, 5, 3)
        );
        assert!(src.cached_booking_ids().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unlisted_bookings_leave_the_cache() {
    let server = fake(four_bookings()).await;
    let src = source_for(&server, json!({}));
    src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(src.cached_booking_ids(), vec!["1", "2", "3", "4", "5"]);

    // Deleted, and moved out of the window.
    let two = server.bookings().into_iter().find(|b| b.id == 2).unwrap();
    assert!(server.remove_booking(2));
    changed(&server, 3, |b| {
        b.start = DAY.tomorrow().unwrap().at(10, 0, 0, 0);
        b.end = DAY.tomorrow().unwrap().at(11, 0, 0, 0);
    });
    server.reset_stats();
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["1", "4"]);
    assert_eq!(server.stats().requests, 1);
    assert_eq!(src.cached_booking_ids(), vec!["1", "4", "5"]);

    // Back unchanged: fetched again, as the cache forgot it.
    server.upsert_booking(two);
    server.reset_stats();
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["1", "2", "4"]);
    let s = server.stats();
    assert_eq!(
        (s.list_requests, s.detail_requests, s.operator_requests),
        (1, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_cycle_does_not_poison_the_cache() {
    let server = fake(four_bookings()).await;
    let src = source_for(&server, json!({}));
    let first = src.fetch_entries(&day_window(DAY)).await.unwrap();

    // Changes, then a cycle that fails on the details of the changed bookings.
    changed(&server, 1, |b| b.title = "SUB901_Doe_John".into());
    changed(&server, 2, |b| b.status = "Cancelled".into());
    server.set_fault(Fault::Status(500), FaultScope::Booking(2));
    let err = src.fetch_entries(&day_window(DAY)).await.unwrap_err();
    assert!(matches!(err, SourceError::Fetch(_)), "{err:?}");
    assert_eq!(src.cached_booking_ids(), vec!["1", "2", "3", "4", "5"]);

    server.clear_fault();
    // A failed cycle returns at its first error; requests it had already sent may still
    // reach the server: let them land before counting.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    server.reset_stats();
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(by_id(&entries, "1").patient_id, "SUB901");
    assert_eq!(by_id(&entries, "2").status, StepStatus::Discontinued);
    assert_eq!(by_id(&entries, "3"), by_id(&first, "3"));
    assert_eq!(server.stats().detail_requests, 2);

    // A first cycle that fails stores nothing, not even the details it did read.
    let src = source_for(&server, json!({}));
    server.set_fault(Fault::InvalidJson, FaultScope::Booking(3));
    assert!(src.fetch_entries(&day_window(DAY)).await.is_err());
    assert!(src.cached_booking_ids().is_empty());
    server.clear_fault();
    // A failed cycle returns at its first error; requests it had already sent may still
    // reach the server: let them land before counting.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    server.reset_stats();
    let fresh = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(fresh, entries);
    assert_eq!(server.stats().detail_requests, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_details_and_failed_operators_are_retried() {
    let server = fake(four_bookings()).await;
    let src = source_for(&server, json!({}));
    // A 404 on booking 2's details and operator, a 500 on every operator look-up.
    server.set_fault(Fault::Status(404), FaultScope::Booking(2));
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["1", "3", "4"]);
    assert_eq!(src.cached_booking_ids(), vec!["1", "3", "4", "5"]);

    server.set_fault(Fault::Status(500), FaultScope::Operator);
    let src = source_for(&server, json!({}));
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e.performing_physician_name.is_none())
    );

    // Next cycle: the details come from the cache, the failed look-ups are retried.
    server.clear_fault();
    server.reset_stats();
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    let s = server.stats();
    assert_eq!(
        (s.list_requests, s.detail_requests, s.operator_requests),
        (1, 0, 3)
    );
    assert_eq!(
        by_id(&entries, "1").performing_physician_name.as_deref(),
        Some("Smith^Jane")
    );
    server.reset_stats();
    src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(server.stats().requests, 1);
}

/// The request counters of `source` in `metrics`, as encoded: `(kind, outcome) -> n`.
fn request_counts(
    metrics: &worklist_store::SourceMetrics,
    source: &str,
) -> std::collections::BTreeMap<(String, String), u64> {
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let prefix = format!("mwlbridge_source_requests_total{{source=\"{source}\",kind=\"");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (kind, rest) = rest.split_once("\",outcome=\"")?;
            let (outcome, value) = rest.split_once("\"} ")?;
            Some((
                (kind.to_string(), outcome.to_string()),
                value.parse().unwrap(),
            ))
        })
        .collect()
}

fn sum(counts: &std::collections::BTreeMap<(String, String), u64>, kind: &str) -> u64 {
    counts
        .iter()
        .filter(|((k, _), _)| k == kind)
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn request_counters_match_the_requests_the_server_saw() {
    let server = fake(vec![
        booking(1, at(8, 0), "3T Diagnostic", "Approved"),
        booking(2, at(9, 0), "3T Diagnostic", "Approved"),
        booking(3, at(10, 0), "EEG Lab Room A", "Approved"),
    ])
    .await;
    let metrics = worklist_store::SourceMetrics::new();
    let src = source_for(&server, json!({"detail_refresh": 0}));
    src.attach_metrics(&metrics);
    // Every series exists, at zero, before the first request.
    let zero = request_counts(&metrics, "calpendo");
    assert_eq!(zero.len(), 15, "{zero:?}");
    assert!(zero.values().all(|n| *n == 0), "{zero:?}");

    // Two 503s on details (retried), then a truncated list body (retried).
    server.set_fault_times(Fault::Status(503), FaultScope::Details, 2);
    let entries = src.fetch_entries(&day_window(DAY)).await.unwrap();
    assert_eq!(ids(&entries), vec!["1", "2", "3"]);
    server.set_fault_times(Fault::TruncatedBody, FaultScope::List, 1);
    src.fetch_entries(&day_window(DAY)).await.unwrap();

    let stats = server.stats();
    let counts = request_counts(&metrics, "calpendo");
    let get = |kind: &str, outcome: &str| {
        counts
            .get(&(kind.to_string(), outcome.to_string()))
            .copied()
            .unwrap_or_default()
    };
    assert_eq!(counts.values().sum::<u64>(), stats.requests, "{counts:?}");
    assert_eq!(sum(&counts, "list"), stats.list_requests, "{counts:?}");
    assert_eq!(sum(&counts, "detail"), stats.detail_requests, "{counts:?}");
    assert_eq!(
        sum(&counts, "operator"),
        stats.operator_requests,
        "{counts:?}"
    );
    assert_eq!(get("detail", "5xx"), 2, "{counts:?}");
    assert_eq!(get("detail", "2xx"), 6, "two cycles of three: {counts:?}");
    assert_eq!(get("list", "error"), 1, "the truncated body: {counts:?}");
    assert_eq!(get("list", "2xx"), 2, "{counts:?}");
    assert_eq!(
        get("operator", "2xx"),
        4,
        "two MRI bookings, twice: {counts:?}"
    );

    // Another source with bad credentials: its own series, one 401, no retry.
    let bad_env = |k: &str| match k {
        "CALPENDO_USERNAME" => Some("mwlbridge".to_string()),
        "CALPENDO_PASSWORD" => Some("wrong".to_string()),
        _ => None,
    };
    let config = parse_config(
        &json!({"base_url": server.base_url(), "resources": ["3T"], "request_timeout": 5}),
        &bad_env,
    )
    .unwrap();
    let other = CalpendoSource::new("other", config).unwrap();
    other.attach_metrics(&metrics);
    other.fetch_entries(&day_window(DAY)).await.unwrap_err();
    let other_counts = request_counts(&metrics, "other");
    assert_eq!(
        other_counts.get(&("list".to_string(), "4xx".to_string())),
        Some(&1),
        "{other_counts:?}"
    );
    assert_eq!(other_counts.values().sum::<u64>(), 1, "{other_counts:?}");
    assert_eq!(server.stats().unauthorized, 1);
    assert_eq!(
        request_counts(&metrics, "calpendo"),
        counts,
        "the first source's counters did not move"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_that_get_no_response_count_as_errors() {
    // Nothing listens on port 1: each attempt (the first and RETRIES retries) fails.
    let config = parse_config(
        &json!({"base_url": "http://127.0.0.1:1", "resources": ["3T"], "request_timeout": 2}),
        &env,
    )
    .unwrap();
    let src = CalpendoSource::new("down", config)
        .unwrap()
        .with_backoff_base(Duration::from_millis(5));
    let metrics = worklist_store::SourceMetrics::new();
    src.attach_metrics(&metrics);
    src.fetch_entries(&day_window(DAY)).await.unwrap_err();
    let counts = request_counts(&metrics, "down");
    assert_eq!(
        counts.get(&("list".to_string(), "error".to_string())),
        Some(&u64::from(calpendo_source::source::RETRIES + 1)),
        "{counts:?}"
    );
    assert_eq!(
        counts.values().sum::<u64>(),
        u64::from(calpendo_source::source::RETRIES + 1)
    );
}
