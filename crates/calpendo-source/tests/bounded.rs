//! Calpendo answers are bounded (issue 17, point 4): a body larger than
//! `max_response_bytes`, or one that never ends, fails the request at the limit; a
//! redirect to another host (scheme, host or port) is never followed, so the credentials
//! never go there; the detail cache stays within its byte budget. Each cycle here is
//! what the scheduler does: fetch, then apply to a real store only when the fetch
//! succeeded.
//!
//! The figure of an endless body (bytes sent before the error, and how long it took):
//! `cargo test -p calpendo-source --test bounded endless -- --nocapture`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use calpendo_fake::{BookingShape, FakeBooking, FakeCalpendo, FakeConfig, Fault, FaultScope};
use calpendo_source::{CalpendoSource, parse_config};
use jiff::Timestamp;
use jiff::civil::{Date, DateTime, date};
use serde_json::{Value, json};
use worklist_store::source::{ConfigFailure, FetchFailure};
use worklist_store::{
    DataSource, EntryFilter, MassChangeGuard, SourceError, StepStatus, Store, SyncWindow,
};

const DAY: Date = date(2026, 11, 26);
const MIB: u64 = 1024 * 1024;
/// The default `max_response_bytes`.
const DEFAULT_LIMIT: u64 = 64 * MIB;

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

fn booking(id: i64, start: DateTime, resource: &str) -> FakeBooking {
    let mri = resource.starts_with("3T");
    FakeBooking {
        id,
        start,
        end: start + jiff::SignedDuration::from_mins(60),
        title: format!("SUB{id:03}_Doe_John"),
        status: "Approved".into(),
        biskit_type: if mri { "MRIScan" } else { "EEGScan" }.into(),
        resource: resource.into(),
        project: Some("BRISKP (Brain network models)".into()),
        booker: None,
        owner: None,
        operator: mri.then(|| "Jane Smith".to_string()),
        description: None,
        shape: BookingShape::Classic,
    }
}

fn window() -> SyncWindow {
    SyncWindow {
        start: DAY.at(0, 0, 0, 0),
        end: DAY.tomorrow().unwrap().at(0, 0, 0, 0),
    }
}

async fn fake(bookings: Vec<FakeBooking>) -> FakeCalpendo {
    let server = FakeCalpendo::start(FakeConfig::default()).await.unwrap();
    server.set_bookings(bookings);
    server
}

fn source_for(server: &FakeCalpendo, extra: Value) -> CalpendoSource {
    // Details mode: these cases bound the per-booking requests and their cache.
    let mut v = json!({
        "fetch_mode": "details",
        "base_url": server.base_url(),
        "resources": ["3T", "EEG"],
        "request_timeout": 10,
        "sync_deadline": 20,
    });
    if let (Value::Object(o), Value::Object(x)) = (&mut v, extra) {
        o.extend(x);
    }
    CalpendoSource::new("calpendo", parse_config(&v, &env).unwrap())
        .unwrap()
        .with_backoff_base(Duration::from_millis(10))
}

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store() -> (TempDir, Store) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("calpendo-bounded-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = Store::open(dir.join("worklist.db")).expect("store opens");
    (TempDir(dir), store)
}

/// One scheduler cycle: fetch; apply to the store only when the fetch succeeded.
async fn cycle(src: &CalpendoSource, store: &Store) -> Result<usize, SourceError> {
    let w = window();
    let fetched = src.fetch(&w).await?;
    let now = Timestamp::now();
    let counts = store
        .apply_fetched(
            src.name(),
            &w,
            fetched,
            src.on_cancel(),
            now,
            MassChangeGuard::Off,
        )
        .unwrap();
    src.cycle_committed(now);
    Ok(counts.fetched as usize)
}

/// What the store holds: (record id, status), sorted.
fn stored(store: &Store) -> Vec<(String, StepStatus)> {
    let mut v: Vec<(String, StepStatus)> = store
        .list(&EntryFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| (e.entry.source_record_id, e.entry.status))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn scheduled(ids: &[&str]) -> Vec<(String, StepStatus)> {
    ids.iter()
        .map(|id| (id.to_string(), StepStatus::Scheduled))
        .collect()
}

/// The error's message and every cause's, joined.
fn chain(e: &SourceError) -> String {
    let mut text = e.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = cur {
        text.push_str(" | ");
        text.push_str(&s.to_string());
        cur = s.source();
    }
    text
}

/// The too-large error a body over the limit ends the cycle with.
fn assert_too_large(err: &SourceError, limit: u64) {
    let SourceError::Fetch(FetchFailure::InvalidResponse { message, source }) = err else {
        panic!("expected an invalid-response failure, got {err:?}");
    };
    assert!(message.contains("max_response_bytes"), "{message}");
    assert!(message.contains(&limit.to_string()), "{message}");
    let typed = source
        .as_ref()
        .and_then(|s| s.downcast_ref::<calpendo_source::error::ResponseTooLarge>())
        .unwrap_or_else(|| panic!("the cause is ResponseTooLarge: {err:?}"));
    assert_eq!(typed.limit, limit);
    assert_eq!(typed.key, "max_response_bytes");
    // No body content in the message.
    assert!(
        !message.contains("biskits") && !message.contains("endless"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_list_body_fails_at_the_limit_promptly_and_changes_nothing() {
    let server = fake(vec![
        booking(1, at(9, 0), "3T Diagnostic"),
        booking(2, at(10, 0), "EEG Lab Room A"),
    ])
    .await;
    let src = source_for(&server, json!({}));
    let (_dir, store) = store();
    assert_eq!(cycle(&src, &store).await.unwrap(), 2);
    let before = stored(&store);
    assert_eq!(before, scheduled(&["1", "2"]));

    server.set_fault(Fault::EndlessBody, FaultScope::List);
    server.reset_stats();
    let started = Instant::now();
    let err = cycle(&src, &store).await.unwrap_err();
    let took = started.elapsed();
    let sent = server.stats().fault_body_bytes;
    eprintln!(
        "endless body: {sent} bytes ({:.1} MiB) sent before the cycle failed after {:.2} s \
         (limit {DEFAULT_LIMIT} bytes): {err}",
        sent as f64 / MIB as f64,
        took.as_secs_f64()
    );
    assert_too_large(&err, DEFAULT_LIMIT);
    // Stopped at the limit: no timeout waited for, no retry.
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(
        server.stats().list_requests,
        1,
        "a body over the limit is not retried"
    );
    assert!(sent < DEFAULT_LIMIT + 8 * MIB, "{sent} bytes sent");
    assert_eq!(stored(&store), before, "the store is unchanged");

    // The next cycle retries and works again.
    server.clear_fault();
    assert_eq!(cycle(&src, &store).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn announced_oversized_list_is_refused_before_reading() {
    let server = fake(vec![
        booking(1, at(9, 0), "3T Diagnostic"),
        booking(2, at(10, 0), "EEG Lab Room A"),
    ])
    .await;
    let src = source_for(&server, json!({}));
    let (_dir, store) = store();
    cycle(&src, &store).await.unwrap();
    let before = stored(&store);

    // A valid (empty) list of 80 MiB: read, it would discontinue both entries.
    server.set_fault(Fault::OversizedBody(80 * MIB), FaultScope::List);
    server.reset_stats();
    let err = cycle(&src, &store).await.unwrap_err();
    assert_too_large(&err, DEFAULT_LIMIT);
    assert!(err.to_string().contains("Content-Length"), "{err}");
    let sent = server.stats().fault_body_bytes;
    assert!(
        sent < 16 * MIB,
        "refused before reading, yet {sent} bytes were sent"
    );
    assert_eq!(stored(&store), before, "the store is unchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_limit_applies_to_every_request() {
    let mut big = booking(2, at(10, 0), "EEG Lab Room A");
    big.description = Some("x".repeat(200 * 1024));
    let server = fake(vec![booking(1, at(9, 0), "3T Diagnostic"), big]).await;
    let src = source_for(&server, json!({"max_response_bytes": 65536}));
    let (_dir, store) = store();
    let err = cycle(&src, &store).await.unwrap_err();
    assert_too_large(&err, 65536);
    assert!(err.to_string().contains("booking details"), "{err}");
    assert!(!err.to_string().contains("xxxx"), "{err}");
    assert!(stored(&store).is_empty());

    // A chunked body over the limit (no Content-Length) is cut while streaming.
    server.remove_booking(2);
    server.set_fault(Fault::EndlessBody, FaultScope::Operator);
    let err = cycle(&src, &store).await;
    // A failed operator look-up only leaves the operator out (as before).
    assert_eq!(err.unwrap(), 1);
    assert!(server.stats().fault_body_bytes < 4 * MIB);

    // The key's range.
    for bad in [json!(1000), json!(2_000_000_000_i64), json!("big")] {
        let v =
            json!({"base_url": server.base_url(), "resources": ["3T"], "max_response_bytes": bad});
        let problems = parse_config(&v, &env).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.to_string().contains("max_response_bytes")),
            "{problems:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_to_another_host_is_not_followed_and_sends_nothing_there() {
    let server = fake(vec![booking(1, at(9, 0), "3T Diagnostic")]).await;
    // Another host (another port) holding other bookings, with the same credentials.
    let other = fake(vec![booking(99, at(11, 0), "3T Diagnostic")]).await;
    let src = source_for(&server, json!({}));
    let (_dir, store) = store();
    cycle(&src, &store).await.unwrap();
    let before = stored(&store);
    let host = server.local_addr().to_string();
    let other_host = other.local_addr().to_string();

    for (status, scope) in [
        (302, FaultScope::List),
        (301, FaultScope::List),
        (307, FaultScope::List),
        (308, FaultScope::Details),
    ] {
        server.set_fault(
            Fault::Redirect {
                status,
                to: other.base_url(),
            },
            scope,
        );
        // A list item changed, so that the details are asked for again.
        server.upsert_booking({
            let mut b = booking(1, at(9, 0), "3T Diagnostic");
            b.title = format!("SUB001_Doe_{status}");
            b
        });
        let started = Instant::now();
        let err = cycle(&src, &store).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "not retried");
        let text = chain(&err);
        assert!(
            text.contains(&host) && text.contains(&other_host),
            "HTTP {status}: the message names both hosts: {text}"
        );
        assert!(text.contains("redirect"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert!(
            matches!(err, SourceError::Config(ConfigFailure::Setup { .. })),
            "HTTP {status}: {err:?}"
        );
        let o = other.stats();
        assert_eq!(
            o.requests, 0,
            "HTTP {status}: the other host got requests: {o:?}"
        );
        assert_eq!(
            stored(&store),
            before,
            "HTTP {status}: the store is unchanged"
        );
    }
    assert!(!stored(&store).iter().any(|(id, _)| id == "99"));
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_to_the_same_host_is_followed_a_few_times() {
    let server = fake(vec![
        booking(1, at(9, 0), "3T Diagnostic"),
        booking(2, at(10, 0), "EEG Lab Room A"),
    ])
    .await;
    let src = source_for(&server, json!({"detail_refresh": 0}));
    let (_dir, store) = store();
    for status in [301, 302, 303, 307, 308] {
        server.set_fault_times(
            Fault::Redirect {
                status,
                to: server.base_url(),
            },
            FaultScope::All,
            2,
        );
        server.reset_stats();
        assert_eq!(cycle(&src, &store).await.unwrap(), 2, "HTTP {status}");
        let s = server.stats();
        assert_eq!(s.unauthorized, 0, "credentials went along: {s:?}");
    }
    assert_eq!(stored(&store), scheduled(&["1", "2"]));

    // A redirect loop ends, promptly, as an error.
    let before = stored(&store);
    server.set_fault(
        Fault::Redirect {
            status: 302,
            to: server.base_url(),
        },
        FaultScope::List,
    );
    server.reset_stats();
    let started = Instant::now();
    let err = cycle(&src, &store).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(chain(&err).contains("redirect"), "{err}");
    assert!(server.stats().list_requests <= 12, "{:?}", server.stats());
    assert_eq!(stored(&store), before);
}

/// The size of one booking's details as the server sends them.
async fn detail_size(server: &FakeCalpendo, id: i64) -> u64 {
    let body = reqwest::Client::new()
        .get(format!(
            "{}/webdav/b/Calpendo.Booking/{id}",
            server.base_url()
        ))
        .basic_auth("mwlbridge", Some("secret"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    body.len() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn detail_cache_stays_within_its_default_budget() {
    // 40 bookings of about 512 KiB of details each (20 MiB), and one of 2 MiB.
    let mut bookings: Vec<FakeBooking> = (1..=40)
        .map(|id| {
            let mut b = booking(
                id,
                at(8, 0) + jiff::SignedDuration::from_mins(id),
                "EEG Lab",
            );
            b.description = Some(format!("{id:03}").repeat(512 * 1024 / 3));
            b
        })
        .collect();
    let mut huge = booking(41, at(20, 0), "EEG Lab");
    huge.description = Some("h".repeat(2 * 1024 * 1024));
    bookings.push(huge);
    let server = fake(bookings).await;
    let each = detail_size(&server, 1).await;
    let src = source_for(&server, json!({}));
    let (_dir, store) = store();
    assert_eq!(cycle(&src, &store).await.unwrap(), 41);

    let cached = src.cached_booking_ids();
    let budget = 16 * MIB;
    eprintln!(
        "detail cache: {} of 41 bookings cached ({} bytes of details each)",
        cached.len(),
        each
    );
    assert!(
        cached.len() as u64 * each <= budget,
        "{} bookings of {each} bytes cached, over {budget}",
        cached.len()
    );
    assert!(!cached.is_empty(), "the cache still works");
    assert!(
        !cached.contains(&"41".to_string()),
        "a detail over the per-item budget is not kept"
    );

    // The next cycle reuses what is cached and fetches the rest.
    server.reset_stats();
    assert_eq!(cycle(&src, &store).await.unwrap(), 41);
    assert_eq!(
        server.stats().detail_requests,
        41 - cached.len() as u64,
        "{:?}",
        server.stats()
    );
    assert!(src.cached_booking_ids().len() as u64 * each <= budget);
}

#[tokio::test(flavor = "multi_thread")]
async fn detail_cache_budget_is_configurable() {
    let bookings: Vec<FakeBooking> = (1..=20)
        .map(|id| {
            let mut b = booking(
                id,
                at(8, 0) + jiff::SignedDuration::from_mins(id),
                "EEG Lab",
            );
            b.description = Some("d".repeat(30 * 1024));
            b
        })
        .collect();
    let server = fake(bookings).await;
    let each = detail_size(&server, 1).await;
    let src = source_for(&server, json!({"detail_cache_bytes": 262_144}));
    let (_dir, store) = store();
    cycle(&src, &store).await.unwrap();
    let n = src.cached_booking_ids().len() as u64;
    assert!(n > 0 && n * each <= 262_144, "{n} × {each}");
    assert!(src.cached_bytes() <= 262_144, "{}", src.cached_bytes());
    // The newest details are kept: the cache is whole after the next cycle, too.
    cycle(&src, &store).await.unwrap();
    assert!(src.cached_bytes() <= 262_144);

    // 0 keeps nothing.
    let src = source_for(&server, json!({"detail_cache_bytes": 0}));
    cycle(&src, &store).await.unwrap();
    assert!(src.cached_booking_ids().is_empty());
}
