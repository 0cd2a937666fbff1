//! How the REDCap source fails (refusals, server errors, invalid answers, a hung server)
//! and how many requests a cycle makes.

mod common;

use std::time::{Duration, Instant};

use jiff::Timestamp;
use redcap_fake::{Fault, FaultScope, synthetic_records};
use serde_json::json;
use worklist_store::source::{ConfigFailure, FetchFailure};
use worklist_store::{DataSource, Fetched, SourceError, SourceMetrics};

use common::{age_all_records, fake_with_sample_day, source, source_with_token};

/// The error's text and its whole chain, and its `Debug`: none may hold the token.
fn assert_no_token(e: &SourceError, token: &str) {
    let mut text = format!("{e} {e:?}");
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = cur {
        text.push_str(&s.to_string());
        cur = s.source();
    }
    assert!(!text.contains(token), "token in {text}");
}

#[tokio::test]
async fn wrong_token_is_refused_as_a_configuration_error() {
    let (fake, _) = fake_with_sample_day().await;
    let token = "FEDCBA9876543210FEDCBA9876543210";
    let src = source_with_token(&fake, token, json!({}));
    let err = src
        .fetch(&src.sync_window(Timestamp::now()))
        .await
        .expect_err("refused");
    match &err {
        SourceError::Config(ConfigFailure::Refused {
            status: 403,
            message,
        }) => {
            assert!(
                message.contains("You do not have permissions to use the API"),
                "{message}"
            );
            assert!(message.contains("check the API token"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_no_token(&err, token);
    assert!(!format!("{src:?}").contains(token));
    assert_eq!(fake.stats().forbidden, 1, "a refusal is not retried");
}

#[tokio::test]
async fn status_401_and_400_are_refusals() {
    let (fake, _) = fake_with_sample_day().await;
    let src = source(&fake, json!({}));
    let window = src.sync_window(Timestamp::now());
    fake.set_fault(Fault::Status(401), FaultScope::All);
    let err = src.fetch(&window).await.expect_err("refused");
    assert!(
        matches!(
            err,
            SourceError::Config(ConfigFailure::Refused { status: 401, .. })
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("injected fault"),
        "REDCap's message is kept: {err}"
    );
    assert_no_token(&err, fake.token());
    fake.clear_fault();
    // A field the dictionary lacks is never asked for; a bad date field is refused by us.
    let src = source(&fake, json!({"date_field": "no_such_field"}));
    let err = src.fetch(&window).await.expect_err("no field");
    assert!(
        matches!(err, SourceError::Config(ConfigFailure::Setup { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("no_such_field"), "{err}");
}

#[tokio::test]
async fn server_errors_are_retried_then_fail_the_fetch() {
    let (fake, _) = fake_with_sample_day().await;
    let src = source(&fake, json!({"max_retries": 2}));
    let window = src.sync_window(Timestamp::now());
    fake.set_fault(Fault::Status(500), FaultScope::Record);
    let err = src.fetch(&window).await.expect_err("fails");
    match &err {
        SourceError::Fetch(FetchFailure::Status {
            status: 500,
            message,
        }) => {
            assert!(message.contains("after 3 attempts"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_no_token(&err, fake.token());
    assert_eq!(fake.stats().record_requests, 3);
    // Twice 503, then an answer: the cycle succeeds.
    fake.set_fault_times(Fault::Status(503), FaultScope::Record, 2);
    assert!(
        matches!(src.fetch(&window).await.expect("retried"), Fetched::Complete(e) if e.len() == 6)
    );
}

#[tokio::test]
async fn invalid_json_and_a_wrong_shape_are_invalid_responses() {
    let (fake, _) = fake_with_sample_day().await;
    let src = source(&fake, json!({}));
    let window = src.sync_window(Timestamp::now());
    fake.set_fault(Fault::InvalidJson, FaultScope::Record);
    let err = src.fetch(&window).await.expect_err("invalid");
    assert!(
        matches!(
            err,
            SourceError::Fetch(FetchFailure::InvalidResponse { .. })
        ),
        "{err:?}"
    );
    assert_no_token(&err, fake.token());
    fake.set_fault(Fault::InvalidJson, FaultScope::Metadata);
    let err = src.fetch(&window).await.expect_err("invalid");
    assert!(
        matches!(
            err,
            SourceError::Fetch(FetchFailure::InvalidResponse { .. })
        ),
        "{err:?}"
    );
    fake.clear_fault();
    assert!(src.fetch(&window).await.is_ok());
}

#[tokio::test]
async fn a_hung_server_times_out_as_a_transport_failure() {
    let (fake, _) = fake_with_sample_day().await;
    let src = source(&fake, json!({"request_timeout": 0.3, "max_retries": 1}));
    let window = src.sync_window(Timestamp::now());
    fake.set_fault(Fault::Hang, FaultScope::All);
    let started = Instant::now();
    let err = src.fetch(&window).await.expect_err("times out");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    match &err {
        SourceError::Fetch(FetchFailure::Transport { message, .. }) => {
            assert!(message.contains("after 2 attempts"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_no_token(&err, fake.token());
    // The whole cycle's deadline cuts retries short.
    let src = source(
        &fake,
        json!({"request_timeout": 0.3, "max_retries": 10, "sync_deadline": 0.5}),
    );
    let err = src.fetch(&window).await.expect_err("deadline");
    assert!(
        matches!(err, SourceError::Fetch(FetchFailure::Deadline { .. })),
        "{err:?}"
    );
}

/// Requests of one complete and one incremental cycle over `n` synthetic records.
async fn requests_per_cycle(n: usize) -> (u64, u64, usize) {
    let (fake, today) = fake_with_sample_day().await;
    fake.set_records(synthetic_records(n, today, 7));
    age_all_records(&fake);
    let src = source(&fake, json!({}));
    let metrics = SourceMetrics::new();
    src.attach_metrics(&metrics);
    let t0 = Timestamp::now();
    let window = src.sync_window(t0);
    let started = Instant::now();
    let Fetched::Complete(entries) = src.fetch(&window).await.expect("complete") else {
        panic!("complete");
    };
    let complete_ms = started.elapsed().as_millis();
    let complete = fake.stats().requests;
    src.cycle_committed(t0);
    fake.set_field("1", "demo_sex", "1");
    fake.reset_stats();
    let Fetched::Changed(_) = src.fetch(&window).await.expect("changed") else {
        panic!("changed");
    };
    let stats = fake.stats();
    assert_eq!(stats.records_returned, 1, "only the changed record");
    assert_eq!(metrics.requests("redcap", "metadata", "2xx").get(), 1);
    assert_eq!(metrics.requests("redcap", "records", "2xx").get(), 2);
    eprintln!(
        "{n} records: complete cycle {complete} requests ({} entries today, {complete_ms} ms), \
         incremental cycle {} request(s)",
        entries.len(),
        stats.requests
    );
    (complete, stats.requests, entries.len())
}

#[tokio::test]
async fn requests_per_cycle_do_not_grow_with_records() {
    for n in [100, 2_000] {
        let (complete, incremental, entries) = requests_per_cycle(n).await;
        assert_eq!((complete, incremental), (2, 1), "{n} records");
        assert!(entries > 0);
    }
}
