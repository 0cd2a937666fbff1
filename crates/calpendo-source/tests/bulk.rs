//! CalpendoSource's bulk fetch (`fetch_mode = "auto"` and `"bulk"`) against the fake
//! Calpendo over real HTTP: the same entries as the details path in at most 3 requests,
//! and each fall-back (a list without paths, a refused `STARTS_WITH`).

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use calpendo_fake::{FakeCalpendo, FakeConfig, Fault, FaultScope, SAMPLE_FIXTURE, load_fixture};
use calpendo_source::{CalpendoSource, parse_config};
use jiff::civil::{Date, date};
use serde_json::{Value, json};
use worklist_store::{DataSource, SourceError, SyncWindow, WorklistEntry};

const DAY: Date = date(2026, 11, 26);

fn env(k: &str) -> Option<String> {
    match k {
        "CALPENDO_USERNAME" => Some("mwlbridge".into()),
        "CALPENDO_PASSWORD" => Some("secret".into()),
        _ => None,
    }
}

/// Today and tomorrow: the sample fixture's bookings of several resources, statuses,
/// both detail shapes, hidden and missing operators, an overnight booking.
fn window() -> SyncWindow {
    SyncWindow {
        start: DAY.at(0, 0, 0, 0),
        end: DAY.tomorrow().unwrap().tomorrow().unwrap().at(0, 0, 0, 0),
    }
}

async fn sample() -> FakeCalpendo {
    let server = FakeCalpendo::start(FakeConfig::default()).await.unwrap();
    server.set_bookings(load_fixture(SAMPLE_FIXTURE, DAY).unwrap());
    server
}

fn source(server: &FakeCalpendo, mode: &str, extra: &Value) -> CalpendoSource {
    let mut v = json!({
        "base_url": server.base_url(),
        "resources": ["3T", "EEG"],
        "resource_modality_mapping": {"3T": "MR", "EEG": "EEG"},
        "station_aet_mapping": {"3T Diagnostic": "MRI_3T_DIAG", "3T": "MRI_3T"},
        "request_timeout": 5,
        "sync_deadline": 20,
        "fetch_mode": mode,
    });
    if let (Value::Object(o), Value::Object(x)) = (&mut v, extra.clone()) {
        o.extend(x);
    }
    CalpendoSource::new("calpendo", parse_config(&v, &env).unwrap())
        .unwrap()
        .with_backoff_base(Duration::from_millis(10))
}

/// The entries of one cycle in `mode`, and the (list, detail, operator) requests it made.
async fn cycle(
    server: &FakeCalpendo,
    mode: &str,
    extra: &Value,
) -> (Vec<WorklistEntry>, (u64, u64, u64)) {
    server.reset_stats();
    let entries = source(server, mode, extra)
        .fetch_entries(&window())
        .await
        .unwrap();
    let s = server.stats();
    (
        entries,
        (s.list_requests, s.detail_requests, s.operator_requests),
    )
}

/// Settings whose outcome must not depend on the fetch mode.
fn settings() -> Vec<Value> {
    vec![
        json!({}),
        json!({"status_filter": ["Approved", "Pending"]}),
        json!({"status_filter": "Approved", "resources": ["3T Diagnostic"]}),
        json!({"resources": ["3T Research", "EEG", "Mock"]}),
        json!({"allowed_studies": ["BRISKP", "SLEEPEEG"]}),
        json!({"project_protocol_mapping": {"NEURODEV": "DEV"}, "field_mapping": {
            "patient_name": {"source_field": "title",
                "_extract": {"pattern": "^[^_]+_([^_]+)_(.+)$", "template": "$1^$2"}},
            "sps_location": "properties.description",
            "referring_physician_name": "properties.booker.name",
            "performing_physician": "operator",
            "accession_number": "id"}}),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_gives_the_entries_of_the_details_path_in_at_most_3_requests() {
    let server = sample().await;
    for extra in settings() {
        let (details, details_requests) = cycle(&server, "details", &extra).await;
        assert!(!details.is_empty() || extra.get("allowed_studies").is_some());
        assert!(details_requests.1 > 0, "{extra}");
        for mode in ["bulk", "auto"] {
            let (bulk, requests) = cycle(&server, mode, &extra).await;
            assert_eq!(bulk, details, "{mode} {extra}");
            assert_eq!(requests.0, 1, "{mode} {extra}: one list");
            assert_eq!(requests.1, 0, "{mode} {extra}: no details");
            assert!(
                requests.2 <= 1,
                "{mode} {extra}: at most one operator query"
            );
        }
    }
    // A mapped `properties.description` is asked for and arrives.
    let extra = &settings()[5];
    let (bulk, _) = cycle(&server, "bulk", extra).await;
    let e = bulk.iter().find(|e| e.source_record_id == "1001").unwrap();
    assert_eq!(e.sps_location.as_deref(), Some("Baseline session"));
    assert_eq!(e.performing_physician_name.as_deref(), Some("Okoye^Nadia"));
    assert_eq!(e.patient_name.as_deref(), Some("Tremblay^Marie"));
    assert_eq!(
        e.referring_physician_name.as_deref(),
        Some("Marchetti^Dr. Helen")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_falls_back_to_details_when_the_list_has_no_paths() {
    let server = sample().await;
    let (expected, _) = cycle(&server, "details", &json!({})).await;
    server.set_ignore_paths(true);
    let src = source(&server, "auto", &json!({}));
    for _ in 0..2 {
        server.reset_stats();
        let entries = src.fetch_entries(&window()).await.unwrap();
        assert_eq!(entries, expected);
        let s = server.stats();
        // The list without paths serves as the details path's list: no second list.
        assert_eq!(s.list_requests, 1);
        assert!(s.detail_requests > 0 || !src.cached_booking_ids().is_empty());
    }
    // Pinned to bulk, the same server fails the cycle (and changes nothing).
    let err = source(&server, "bulk", &json!({}))
        .fetch_entries(&window())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SourceError::Fetch(_)) && err.to_string().contains("paths"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_starts_with_falls_back_to_the_local_prefix_filter() {
    let server = sample().await;
    let extra = json!({"resources": ["3T Res", "EEG"]});
    let (expected, _) = cycle(&server, "details", &extra).await;
    assert!(!expected.is_empty());
    server.set_refuse_starts_with(true);
    let src = source(&server, "auto", &extra);
    server.reset_stats();
    assert_eq!(src.fetch_entries(&window()).await.unwrap(), expected);
    assert_eq!(server.stats().list_requests, 2, "refused, then without");
    // Later cycles do not ask again.
    server.reset_stats();
    assert_eq!(src.fetch_entries(&window()).await.unwrap(), expected);
    assert_eq!(server.stats().list_requests, 1);
    // Another 400 is still a configuration error.
    server.set_fault(Fault::Status(400), FaultScope::List);
    let err = src.fetch_entries(&window()).await.unwrap_err();
    assert!(matches!(err, SourceError::Config(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_operator_query_keeps_the_bookings_without_operators() {
    let server = sample().await;
    server.set_fault(Fault::Status(503), FaultScope::OperatorWindow);
    let (entries, requests) = cycle(&server, "bulk", &json!({})).await;
    assert!(!entries.is_empty());
    assert!(
        entries
            .iter()
            .all(|e| e.performing_physician_name.is_none())
    );
    assert_eq!(requests.0, 1);
    assert_eq!(requests.2, 4, "one operator query, retried 3 times");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_window_costs_one_request_once_its_prefixes_were_named() {
    let server = FakeCalpendo::start(FakeConfig::default()).await.unwrap();
    let src = source(&server, "auto", &json!({}));
    let requests =
        |s: calpendo_fake::Stats| (s.list_requests, s.detail_requests, s.operator_requests);
    // The first cycle names the prefixes that matched nothing, after asking which
    // resources the window holds.
    assert!(src.fetch_entries(&window()).await.unwrap().is_empty());
    assert_eq!(requests(server.stats()), (2, 0, 0));
    server.reset_stats();
    assert!(src.fetch_entries(&window()).await.unwrap().is_empty());
    assert_eq!(requests(server.stats()), (1, 0, 0));
}
