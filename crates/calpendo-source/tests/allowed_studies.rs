//! `allowed_studies` against the fake Calpendo server: only allowed studies are fetched,
//! and a booking whose study leaves the list is no longer returned (the store then
//! discontinues it, as for any booking that vanished from the window).

#![allow(clippy::unwrap_used, missing_docs)]

use calpendo_fake::{BookingShape, FakeBooking, FakeCalpendo, FakeConfig};
use calpendo_source::{CalpendoSource, parse_config};
use jiff::civil::{Date, date};
use serde_json::{Value, json};
use worklist_store::{DataSource, SyncWindow};

const DAY: Date = date(2026, 11, 26);

fn env(k: &str) -> Option<String> {
    match k {
        "CALPENDO_USERNAME" => Some("mwlbridge".into()),
        "CALPENDO_PASSWORD" => Some("secret".into()),
        _ => None,
    }
}

fn booking(id: i64, hour: i8, project: &str) -> FakeBooking {
    let start = DAY.at(hour, 0, 0, 0);
    FakeBooking {
        id,
        start,
        end: start + jiff::SignedDuration::from_mins(60),
        title: format!("SUB{id:03}_Doe_John"),
        status: "Approved".into(),
        biskit_type: "EEGScan".into(),
        resource: "EEG Lab".into(),
        project: Some(project.into()),
        booker: None,
        owner: None,
        operator: None,
        description: None,
        shape: BookingShape::Classic,
    }
}

fn source(server: &FakeCalpendo, extra: Value) -> CalpendoSource {
    let mut v = json!({"base_url": server.base_url(), "resources": ["EEG"],
        "detail_refresh": 0, "request_timeout": 5});
    if let (Value::Object(o), Value::Object(x)) = (&mut v, extra) {
        o.extend(x);
    }
    CalpendoSource::new("calpendo", parse_config(&v, &env).unwrap()).unwrap()
}

async fn fetched_ids(src: &CalpendoSource) -> Vec<String> {
    let window = SyncWindow {
        start: DAY.at(0, 0, 0, 0),
        end: DAY.tomorrow().unwrap().at(0, 0, 0, 0),
    };
    let mut ids: Vec<String> = src
        .fetch_entries(&window)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.source_record_id)
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn only_allowed_studies_are_fetched() {
    let server = FakeCalpendo::start(FakeConfig::default()).await.unwrap();
    server.set_bookings(vec![
        booking(1, 9, "BRISKP (Brain network models)"),
        booking(2, 10, "MEMORY (Memory study)"),
        booking(3, 11, "Pilot"),
    ]);
    // The default study description (the project's name before its first `(`, trimmed).
    let src = source(&server, json!({"allowed_studies": [" BRISKP ", "Pilot"]}));
    assert_eq!(fetched_ids(&src).await, vec!["1", "3"]);
    // A mapped study description is matched as mapped; case matters, as in Pylantir.
    let src = source(
        &server,
        json!({"allowed_studies": ["MEMORY (Memory study)", "pilot"],
            "field_mapping": {"study_description": "properties.project.formattedName"}}),
    );
    assert_eq!(fetched_ids(&src).await, vec!["2"]);
    // Booking 1's study leaves the list: it is no longer returned.
    let src = source(&server, json!({"allowed_studies": ["BRISKP"]}));
    assert_eq!(fetched_ids(&src).await, vec!["1"]);
    server.set_bookings(vec![
        booking(1, 9, "OTHER (moved)"),
        booking(3, 11, "Pilot"),
    ]);
    assert!(fetched_ids(&src).await.is_empty());
    // Without the key every study is kept.
    let src = source(&server, json!({}));
    assert_eq!(fetched_ids(&src).await, vec!["1", "3"]);
}
