//! The REDCap source against the fake REDCap over real HTTP: the sample day's entries
//! (checked against what Pylantir 0.4.6 made of it), the window, incremental cycles.

mod common;

use jiff::civil::{Date, DateTime};
use jiff::{Span, Timestamp};
use redcap_source::values::{parse_date, parse_time};
use serde_json::{Value, json};
use worklist_store::{DataSource, Fetched, StepStatus, WorklistEntry};

use common::{TestClock, age_all_records, fake_with_sample_day, source};

/// Pylantir's entries for the sample day, dates resolved against `today`.
fn pylantir_entries(today: Date) -> Vec<Value> {
    let text = include_str!("../../redcap-fake/fixtures/sample_day.pylantir.json");
    let doc: Value = serde_json::from_str(text).expect("reference JSON");
    doc["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let date = e["scheduled_start_date"]
                .as_str()
                .expect("date")
                .to_string();
            let offset: i64 = date
                .trim_start_matches("{today")
                .trim_end_matches('}')
                .parse()
                .unwrap_or(0);
            let day = today.checked_add(Span::new().days(offset)).expect("date");
            e["scheduled_start_date"] = json!(day.strftime("%Y-%m-%d").to_string());
            e
        })
        .collect()
}

fn start_of(e: &Value) -> DateTime {
    let d = parse_date(e["scheduled_start_date"].as_str().expect("date")).expect("date");
    let t = parse_time(e["scheduled_start_time"].as_str().expect("time")).expect("time");
    d.to_datetime(t)
}

/// Checks our entries against Pylantir's in the window `[today, today + days]`.
fn assert_matches_pylantir(ours: &[WorklistEntry], today: Date, days: i64) {
    let last = today.checked_add(Span::new().days(days)).expect("date");
    let mut expected: Vec<Value> = pylantir_entries(today)
        .into_iter()
        .filter(|e| (today..=last).contains(&start_of(e).date()))
        .collect();
    expected.sort_by_key(start_of);
    assert_eq!(
        ours.len(),
        expected.len(),
        "{:?}",
        ours.iter().map(|e| &e.patient_id).collect::<Vec<_>>()
    );
    for (e, p) in ours.iter().zip(&expected) {
        assert_eq!(e.patient_id, p["patient_id"].as_str().expect("id"));
        assert_eq!(e.patient_name.as_deref(), p["patient_name"].as_str());
        assert_eq!(e.start, start_of(p), "{}", e.patient_id);
        let lb: f64 = p["patient_weight_lb"]
            .as_str()
            .expect("lb")
            .parse()
            .expect("number");
        let kg = (lb * 0.453_592_37 * 100.0).round() / 100.0;
        assert_eq!(e.patient_weight_kg, Some(kg), "{}", e.patient_id);
        assert_eq!(e.station_name.as_deref(), p["station_name"].as_str());
        assert_eq!(
            e.referring_physician_name.as_deref(),
            p["referring_physician_name"].as_str()
        );
        assert_eq!(
            e.performing_physician_name.as_deref(),
            p["performing_physician"].as_str()
        );
        assert_eq!(e.sps_description.as_deref(), p["protocol_name"].as_str());
        assert_eq!(e.modality.as_deref(), p["modality"].as_str());
        let status = p["performed_procedure_step_status"]
            .as_str()
            .expect("status");
        assert_eq!(e.status.as_dicom(), status);
        let sex = match p["demo_sex"].as_str() {
            Some("1") => "M",
            _ => "F",
        };
        assert_eq!(e.patient_sex.as_deref(), Some(sex));
        assert!(e.problems().is_empty(), "{:?}", e.problems());
    }
}

#[tokio::test]
async fn sample_day_gives_pylantirs_entries_for_today() {
    let (fake, today) = fake_with_sample_day().await;
    let src = source(&fake, json!({}));
    let window = src.sync_window(Timestamp::now());
    assert_eq!(
        window.start,
        today.to_datetime(jiff::civil::Time::midnight())
    );
    let Fetched::Complete(entries) = src.fetch(&window).await.expect("fetch") else {
        panic!("the first cycle is complete");
    };
    assert_matches_pylantir(&entries, today, 0);
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| e.source_record_id.as_str())
        .collect();
    assert_eq!(ids, ["101:1", "102:1", "103:2", "104:1", "105:1", "111:1"]);
    // Record ids are stable per visit, and so are the StudyInstanceUIDs.
    let again = src.fetch_entries(&window).await.expect("fetch");
    assert_eq!(
        entries
            .iter()
            .map(|e| &e.study_instance_uid)
            .collect::<Vec<_>>(),
        again
            .iter()
            .map(|e| &e.study_instance_uid)
            .collect::<Vec<_>>()
    );
    let stats = fake.stats();
    assert_eq!((stats.metadata_requests, stats.record_requests), (2, 2));
    assert!(
        !stats
            .last_params
            .iter()
            .any(|(k, _)| k.starts_with("dateRange"))
    );
    let fields: Vec<&str> = stats
        .last_params
        .iter()
        .filter(|(k, _)| k.starts_with("fields["))
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(
        fields.contains(&"neuro_pcp") && fields.contains(&"mri_wt_lbs"),
        "{fields:?}"
    );
    assert!(
        !fields.contains(&"t1_date"),
        "fields the project lacks are not asked for"
    );
}

#[tokio::test]
async fn mwl_days_ahead_two_adds_the_next_days() {
    let (fake, today) = fake_with_sample_day().await;
    let src = source(&fake, json!({"mwl_days_ahead": 2}));
    let window = src.sync_window(Timestamp::now());
    assert_eq!(
        window.end,
        today
            .checked_add(Span::new().days(3))
            .expect("date")
            .to_datetime(jiff::civil::Time::midnight())
    );
    let entries = src.fetch_entries(&window).await.expect("fetch");
    assert_matches_pylantir(&entries, today, 2);
    assert_eq!(entries.len(), 8);
}

#[tokio::test]
async fn incremental_cycles_ask_for_changes_and_return_them() {
    let (fake, today) = fake_with_sample_day().await;
    let src = source(&fake, json!({}));
    let t0 = Timestamp::now();
    let window = src.sync_window(t0);
    assert!(matches!(
        src.fetch(&window).await.expect("fetch"),
        Fetched::Complete(_)
    ));
    // Not committed yet: still complete.
    assert!(matches!(
        src.fetch(&window).await.expect("fetch"),
        Fetched::Complete(_)
    ));
    src.cycle_committed(t0);
    fake.reset_stats();

    // Nothing changed: an empty change set, one request, with a date range.
    let Fetched::Changed(none) = src.fetch(&window).await.expect("fetch") else {
        panic!("after a committed cycle, incremental");
    };
    assert!(none.is_empty(), "{none:?}");
    let stats = fake.stats();
    assert_eq!((stats.metadata_requests, stats.record_requests), (0, 1));
    let begin = stats
        .last_params
        .iter()
        .find(|(k, _)| k == "dateRangeBegin")
        .map(|(_, v)| v.clone())
        .expect("dateRangeBegin sent");
    let five_min_before = worklist_store::ZoneDb::bundled()
        .get("America/Edmonton")
        .expect("zone")
        .to_datetime(t0.checked_sub(Span::new().minutes(5)).expect("instant"));
    assert_eq!(
        begin,
        five_min_before.strftime("%Y-%m-%d %H:%M:%S").to_string()
    );

    // 101 changes its time; 102 moves to next week (delivered before: returned); 108
    // changes but starts outside the window and was never delivered: left out.
    fake.set_instance_field("101", "mri", 1, "scheduled_time", "12:00");
    let next_week = today
        .checked_add(Span::new().days(7))
        .expect("date")
        .to_string();
    fake.set_instance_field("102", "mri", 1, "scheduled_date", &next_week);
    fake.set_instance_field("108", "mri", 1, "station_name", "FAKE_MR2");
    let t1 = Timestamp::now();
    let Fetched::Changed(changed) = src.fetch(&window).await.expect("fetch") else {
        panic!("incremental");
    };
    let got: Vec<(&str, DateTime)> = changed
        .iter()
        .map(|e| (e.source_record_id.as_str(), e.start))
        .collect();
    assert_eq!(
        got,
        [
            ("101:1", today.at(12, 0, 0, 0)),
            (
                "102:1",
                today
                    .checked_add(Span::new().days(7))
                    .expect("date")
                    .at(9, 30, 0, 0)
            ),
        ]
    );
    assert_eq!(changed[0].status, StepStatus::Scheduled);
    src.cycle_committed(t1);
    age_all_records(&fake);
    let Fetched::Changed(none) = src.fetch(&window).await.expect("fetch") else {
        panic!("incremental");
    };
    assert!(none.is_empty());
}

#[tokio::test]
async fn full_refresh_makes_the_cycle_complete_again() {
    let (fake, _) = fake_with_sample_day().await;
    let clock = TestClock::default();
    let c = clock.clone();
    let src = source(&fake, json!({"full_refresh": 600})).with_clock(move || c.now());
    let window = src.sync_window(Timestamp::now());
    assert!(matches!(
        src.fetch(&window).await.expect("fetch"),
        Fetched::Complete(_)
    ));
    src.cycle_committed(clock.now());
    clock.advance(300);
    assert!(matches!(
        src.fetch(&window).await.expect("fetch"),
        Fetched::Changed(_)
    ));
    src.cycle_committed(clock.now());
    clock.advance(301);
    fake.reset_stats();
    let Fetched::Complete(all) = src.fetch(&window).await.expect("fetch") else {
        panic!("full_refresh passed: complete");
    };
    assert_eq!(all.len(), 6);
    assert_eq!(
        fake.stats().metadata_requests,
        1,
        "the dictionary is asked again"
    );
}

#[tokio::test]
async fn a_failed_complete_cycle_is_followed_by_a_complete_one() {
    let (fake, _) = fake_with_sample_day().await;
    let clock = TestClock::default();
    let c = clock.clone();
    let src =
        source(&fake, json!({"full_refresh": 600, "max_retries": 0})).with_clock(move || c.now());
    let window = src.sync_window(Timestamp::now());
    assert!(matches!(
        src.fetch(&window).await.expect("fetch"),
        Fetched::Complete(_)
    ));
    src.cycle_committed(clock.now());
    clock.advance(601);
    fake.set_fault_times(
        redcap_fake::Fault::Status(500),
        redcap_fake::FaultScope::Record,
        1,
    );
    assert!(src.fetch(&window).await.is_err());
    assert!(matches!(
        src.fetch(&window).await.expect("fetch"),
        Fetched::Complete(_)
    ));
    // Fetched but never committed (the store failed): complete again.
    assert!(matches!(
        src.fetch(&window).await.expect("fetch"),
        Fetched::Complete(_)
    ));
    src.cycle_committed(clock.now());
    assert!(matches!(
        src.fetch(&window).await.expect("fetch"),
        Fetched::Changed(_)
    ));
}

#[tokio::test]
async fn a_new_window_makes_the_cycle_complete() {
    let (fake, today) = fake_with_sample_day().await;
    let src = source(&fake, json!({"full_refresh": 86_400}));
    let t0 = Timestamp::now();
    let window = src.sync_window(t0);
    assert!(matches!(
        src.fetch(&window).await.expect("fetch"),
        Fetched::Complete(_)
    ));
    src.cycle_committed(t0);
    assert!(matches!(
        src.fetch(&window).await.expect("fetch"),
        Fetched::Changed(_)
    ));
    // After midnight: tomorrow's visits nobody edited must come in, so complete.
    let tomorrow = worklist_store::SyncWindow {
        start: window.end,
        end: window.end.checked_add(Span::new().days(1)).expect("date"),
    };
    let Fetched::Complete(entries) = src.fetch(&tomorrow).await.expect("fetch") else {
        panic!("a new window is fetched complete");
    };
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| e.source_record_id.as_str())
        .collect();
    assert_eq!(ids, ["107:1"]);
    assert_eq!(entries[0].start.date(), today.tomorrow().expect("date"));
}
