//! REDCap answers are bounded (issue 17, point 4): a body larger than
//! `max_response_bytes`, or one that never ends, fails the request at the limit; a
//! redirect to another host (scheme, host or port) is never followed, so the token (which
//! travels in the POSTed form, and which a followed 307 or 308 would send again) never
//! goes there. Each cycle here is what the scheduler does: fetch, then apply to a real
//! store only when the fetch succeeded.
//!
//! The figure of an endless body (bytes sent before the error, and how long it took):
//! `cargo test -p redcap-source --test bounded endless -- --nocapture`.

mod common;

use std::time::{Duration, Instant};

use jiff::Timestamp;
use redcap_fake::{FakeConfig, FakeRedcap, Fault, FaultScope, SAMPLE_FIXTURE, load_fixture};
use redcap_source::RedcapSource;
use serde_json::json;
use worklist_store::source::{ConfigFailure, FetchFailure};
use worklist_store::{DataSource, EntryFilter, MassChangeGuard, SourceError, StepStatus, Store};

use common::{fake_with_sample_day, source};

const MIB: u64 = 1024 * 1024;
/// The default `max_response_bytes`.
const DEFAULT_LIMIT: u64 = 64 * MIB;

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
    let dir = std::env::temp_dir().join(format!("redcap-bounded-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = Store::open(dir.join("worklist.db")).expect("store opens");
    (TempDir(dir), store)
}

/// One scheduler cycle: fetch; apply to the store only when the fetch succeeded.
async fn cycle(src: &RedcapSource, store: &Store) -> Result<usize, SourceError> {
    let now = Timestamp::now();
    let window = src.sync_window(now);
    let fetched = src.fetch(&window).await?;
    let counts = store
        .apply_fetched(
            src.name(),
            &window,
            fetched,
            src.on_cancel(),
            now,
            MassChangeGuard::Off,
        )
        .expect("applied");
    src.cycle_committed(now);
    Ok(counts.fetched as usize)
}

/// What the store holds: (record id, status), sorted.
fn stored(store: &Store) -> Vec<(String, StepStatus)> {
    let mut v: Vec<(String, StepStatus)> = store
        .list(&EntryFilter::default())
        .expect("list")
        .into_iter()
        .map(|e| (e.entry.source_record_id, e.entry.status))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The error's message and every cause's, joined.
fn chain(e: &SourceError) -> String {
    let mut text = format!("{e} {e:?}");
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
        .and_then(|s| s.downcast_ref::<redcap_source::error::ResponseTooLarge>())
        .unwrap_or_else(|| panic!("the cause is ResponseTooLarge: {err:?}"));
    assert_eq!(typed.limit, limit);
    assert_eq!(typed.key, "max_response_bytes");
    assert!(
        !message.contains("CPIP") && !message.contains("record_id"),
        "{message}"
    );
}

fn long_source(fake: &FakeRedcap, extra: serde_json::Value) -> RedcapSource {
    let mut v = json!({"request_timeout": 10, "sync_deadline": 20, "full_refresh": 0});
    if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    source(fake, v)
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_record_export_fails_at_the_limit_promptly_and_changes_nothing() {
    let (fake, _) = fake_with_sample_day().await;
    let src = long_source(&fake, json!({}));
    let (_dir, store) = store();
    assert_eq!(cycle(&src, &store).await.expect("first cycle"), 6);
    let before = stored(&store);

    fake.set_fault(Fault::EndlessBody, FaultScope::Record);
    fake.reset_stats();
    let started = Instant::now();
    let err = cycle(&src, &store).await.expect_err("too large");
    let took = started.elapsed();
    let sent = fake.stats().fault_body_bytes;
    eprintln!(
        "endless body: {sent} bytes ({:.1} MiB) sent before the cycle failed after {:.2} s \
         (limit {DEFAULT_LIMIT} bytes): {err}",
        sent as f64 / MIB as f64,
        took.as_secs_f64()
    );
    assert_too_large(&err, DEFAULT_LIMIT);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(fake.stats().record_requests, 1, "not retried");
    assert!(sent < DEFAULT_LIMIT + 8 * MIB, "{sent} bytes sent");
    assert_eq!(stored(&store), before, "the store is unchanged");

    fake.clear_fault();
    assert_eq!(cycle(&src, &store).await.expect("works again"), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn announced_oversized_export_is_refused_before_reading() {
    let (fake, _) = fake_with_sample_day().await;
    let src = long_source(&fake, json!({}));
    let (_dir, store) = store();
    cycle(&src, &store).await.expect("first cycle");
    let before = stored(&store);

    // A valid (empty) export of 80 MiB: read, it would discontinue every visit.
    fake.set_fault(Fault::OversizedBody(80 * MIB), FaultScope::Record);
    fake.reset_stats();
    let err = cycle(&src, &store).await.expect_err("too large");
    assert_too_large(&err, DEFAULT_LIMIT);
    assert!(err.to_string().contains("Content-Length"), "{err}");
    let sent = fake.stats().fault_body_bytes;
    assert!(
        sent < 16 * MIB,
        "refused before reading, yet {sent} bytes were sent"
    );
    assert_eq!(stored(&store), before, "the store is unchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_limit_applies_to_answers_and_error_bodies() {
    let (fake, _) = fake_with_sample_day().await;
    let src = long_source(&fake, json!({"max_response_bytes": 65536}));
    let (_dir, store) = store();
    // The sample day fits.
    assert_eq!(cycle(&src, &store).await.expect("fits"), 6);
    let before = stored(&store);
    fake.set_fault(Fault::OversizedBody(100_000), FaultScope::Metadata);
    let err = cycle(&src, &store).await.expect_err("too large");
    assert_too_large(&err, 65536);
    assert!(err.to_string().contains("metadata"), "{err}");
    fake.set_fault(Fault::EndlessBody, FaultScope::Record);
    fake.reset_stats();
    let err = cycle(&src, &store).await.expect_err("too large");
    assert_too_large(&err, 65536);
    assert!(fake.stats().fault_body_bytes < 4 * MIB);
    assert!(!chain(&err).contains(fake.token()));
    assert_eq!(stored(&store), before);

    // The key's range.
    for bad in [json!(1000), json!(2_000_000_000_i64), json!("big")] {
        let url = fake.api_url();
        let env = move |k: &str| match k {
            "REDCAP_API_URL" => Some(url.clone()),
            "REDCAP_API_TOKEN" => Some("0123456789ABCDEF0123456789ABCDEF".to_string()),
            _ => None,
        };
        let problems = redcap_source::parse_settings(
            &common::settings(json!({"max_response_bytes": bad})),
            redcap_source::RedcapKind::Redcap,
            &env,
            &redcap_source::SiteContext::default(),
        )
        .expect_err("out of range");
        assert!(
            problems
                .iter()
                .any(|p| p.to_string().contains("max_response_bytes")),
            "{problems:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_to_another_host_is_not_followed_and_the_token_stays_home() {
    let (fake, today) = fake_with_sample_day().await;
    // Another host (another port) with other data that takes the same token.
    let other = FakeRedcap::start(FakeConfig::default())
        .await
        .expect("other starts");
    other.set_records(load_fixture(SAMPLE_FIXTURE, today).expect("fixture"));
    let src = long_source(&fake, json!({}));
    let (_dir, store) = store();
    cycle(&src, &store).await.expect("first cycle");
    let before = stored(&store);
    let host = fake.local_addr().to_string();
    let other_host = other.local_addr().to_string();

    for (status, scope) in [
        (307, FaultScope::Record),
        (308, FaultScope::Metadata),
        (302, FaultScope::Record),
        (301, FaultScope::All),
        (303, FaultScope::Record),
    ] {
        fake.set_fault(
            Fault::Redirect {
                status,
                to: other.base_url(),
            },
            scope,
        );
        fake.reset_stats();
        let started = Instant::now();
        let err = cycle(&src, &store).await.expect_err("refused");
        assert!(started.elapsed() < Duration::from_secs(5), "not retried");
        let text = chain(&err);
        assert!(
            text.contains(&host) && text.contains(&other_host),
            "HTTP {status}: the message names both hosts: {text}"
        );
        assert!(text.contains("redirect"), "{text}");
        assert!(!text.contains(fake.token()), "{text}");
        assert!(
            matches!(err, SourceError::Config(ConfigFailure::Setup { .. })),
            "HTTP {status}: {err:?}"
        );
        // The dictionary first, then the export: the redirected one once, not retried.
        let asked = if scope == FaultScope::Record { 2 } else { 1 };
        assert_eq!(fake.stats().requests, asked, "HTTP {status}: not retried");
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
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_to_the_same_host_keeps_the_post_or_fails_clearly() {
    let (fake, _) = fake_with_sample_day().await;
    let src = long_source(&fake, json!({}));
    let (_dir, store) = store();
    // 307 and 308 keep the method and the form: followed on the same host.
    for status in [307, 308] {
        fake.set_fault_times(
            Fault::Redirect {
                status,
                to: fake.base_url(),
            },
            FaultScope::All,
            2,
        );
        fake.reset_stats();
        assert_eq!(
            cycle(&src, &store).await.expect("followed"),
            6,
            "HTTP {status}"
        );
        assert_eq!(fake.stats().forbidden, 0);
    }
    // 301, 302 and 303 would turn the POST into a GET without the form: an error that
    // says so, and no request follows.
    let before = stored(&store);
    for status in [301, 302, 303] {
        fake.set_fault(
            Fault::Redirect {
                status,
                to: fake.base_url(),
            },
            FaultScope::Metadata,
        );
        fake.reset_stats();
        let err = cycle(&src, &store).await.expect_err("refused");
        let text = chain(&err);
        assert!(text.contains("redirect") && text.contains("POST"), "{text}");
        assert_eq!(
            fake.stats().requests,
            1,
            "HTTP {status}: {:?}",
            fake.stats()
        );
    }
    // A redirect loop ends promptly as an error.
    fake.set_fault(
        Fault::Redirect {
            status: 307,
            to: fake.base_url(),
        },
        FaultScope::All,
    );
    fake.reset_stats();
    let started = Instant::now();
    let err = cycle(&src, &store).await.expect_err("loop");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(chain(&err).contains("redirect"), "{err}");
    assert!(fake.stats().requests <= 12, "{:?}", fake.stats());
    assert_eq!(stored(&store), before);
}
