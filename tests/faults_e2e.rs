//! Calpendo failing while `mwlbridge serve` runs: every failure mode of the fake Calpendo
//! (HTTP 500, 503, 401, 403, 400, invalid JSON, truncated body, hang, slow body,
//! connection reset, and a 500 on the booking details only), a name that does not
//! resolve, and TLS failures (a self-signed certificate; https:// spoken to a plain-HTTP
//! port).
//!
//! For each: a failed sync run is recorded whose error names the cause and holds no
//! credential; the server logs an ERROR line with that error; the stored entries do not
//! change; C-FIND keeps answering the same items during the fault; and, once the fault
//! is cleared, the next cycle succeeds and shows what changed in Calpendo meanwhile,
//! without a restart.
//!
//! Timing: the product retries transient failures after 1, 2 and 4 s, so a cycle that
//! meets a 5xx, a reset, a timeout or a truncated body fails after about 7 s (plus four
//! `request_timeout`s of 1 s when the request hangs).

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use calpendo_fake::{FakeBooking, Fault, FaultScope};
use common::harness::{
    Item, entries, find_all, json_lines, level, runtime, start_fake, write_config,
};
use common::scp::mwl_bookings;
use common::serve::{Serve, ServeOpts, USER};
use common::{booking, stderr, stdout};
use jiff::Timestamp;
use worklist_store::{SyncOutcome, SyncRun};

/// A password no other text contains.
const PASSWORD: &str = "Flt-pw_Q7vX2kZ9";

/// Source settings of the fault tests: a cycle every second, 1 s per request, and a
/// deadline long enough for the three retries of a transient failure.
const FAST: &str = "sync_interval = 1\nrequest_timeout = 1\nsync_deadline = 20";

fn credential_forms() -> Vec<String> {
    vec![
        PASSWORD.to_string(),
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")),
    ]
}

fn assert_no_credential(what: &str, text: &str) {
    for c in credential_forms() {
        assert!(
            !text.contains(&c),
            "{what} holds the credential {c:?}:\n{text}"
        );
    }
}

/// The ERROR log line of a failed cycle carries the recorded error.
fn assert_error_logged(serve: &Serve, run: &SyncRun) {
    let error = run.error.as_deref().expect("an error");
    let log = serve.log();
    let found = json_lines(&log).into_iter().any(|l| {
        level(&l) == "ERROR"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("sync cycle failed"))
            && l["error"].as_str() == Some(error)
    });
    assert!(found, "no ERROR line with {error:?}:\n{log}");
}

/// Whether `text` holds one of `needles`, ignoring case.
fn names_any(text: &str, needles: &[&str]) -> bool {
    let t = text.to_lowercase();
    needles.iter().any(|n| t.contains(&n.to_lowercase()))
}

struct Case {
    name: &'static str,
    fault: Fault,
    scope: FaultScope,
    /// The error must hold each of these groups (one of each group's words).
    must_name: &'static [&'static [&'static str]],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "HTTP 500",
            fault: Fault::Status(500),
            scope: FaultScope::All,
            must_name: &[&["HTTP 500"], &["after 4 attempts"]],
        },
        Case {
            name: "HTTP 503",
            fault: Fault::Status(503),
            scope: FaultScope::All,
            must_name: &[&["HTTP 503"], &["after 4 attempts"]],
        },
        Case {
            name: "HTTP 401",
            fault: Fault::Status(401),
            scope: FaultScope::All,
            must_name: &[&["HTTP 401"], &["credentials"]],
        },
        Case {
            name: "HTTP 403",
            fault: Fault::Status(403),
            scope: FaultScope::All,
            must_name: &[&["HTTP 403"], &["permission"]],
        },
        Case {
            name: "HTTP 400",
            fault: Fault::Status(400),
            scope: FaultScope::All,
            must_name: &[&["HTTP 400"]],
        },
        Case {
            name: "invalid JSON",
            fault: Fault::InvalidJson,
            scope: FaultScope::All,
            must_name: &[&["invalid JSON"]],
        },
        Case {
            name: "truncated body",
            fault: Fault::TruncatedBody,
            scope: FaultScope::All,
            must_name: &[&["body"], &["after 4 attempts"]],
        },
        Case {
            name: "hang",
            fault: Fault::Hang,
            scope: FaultScope::All,
            must_name: &[&["timed out", "timeout", "deadline"]],
        },
        Case {
            name: "slow body",
            fault: Fault::SlowBody(Duration::from_secs(4)),
            scope: FaultScope::All,
            must_name: &[&["timed out", "timeout", "deadline"]],
        },
        Case {
            name: "connection reset",
            fault: Fault::ConnectionReset,
            scope: FaultScope::All,
            must_name: &[
                &["reset", "connection closed", "closed before"],
                &["after 4 attempts"],
            ],
        },
        Case {
            name: "HTTP 500 on the booking details only",
            fault: Fault::Status(500),
            scope: FaultScope::Details,
            must_name: &[&["HTTP 500"], &["booking details"]],
        },
    ]
}

/// The booking added while fault `k` is on.
fn added(k: usize) -> FakeBooking {
    booking(
        300 + k as i64,
        &format!("SUB3{k:02}_Added_Case{k}"),
        "3T Diagnostic",
        18,
    )
}

fn has_accession(items: &[Item], id: &str) -> bool {
    items.iter().any(|i| i.0 == id)
}

/// The cases for `fetch_mode`: the bulk path (`auto`) reads no details, so the
/// details-only fault becomes a list-only one there.
fn cases_for(mode: &str) -> Vec<Case> {
    cases()
        .into_iter()
        .map(|c| match c.scope {
            FaultScope::Details if mode != "details" => Case {
                name: "HTTP 500 on the booking list only",
                scope: FaultScope::List,
                must_name: &[&["HTTP 500"], &["booking list"]],
                ..c
            },
            _ => c,
        })
        .collect()
}

#[test]
fn serve_survives_every_calpendo_fault_and_recovers_without_restart() {
    survives_every_calpendo_fault_and_recovers("auto");
}

#[test]
fn serve_survives_every_calpendo_fault_and_recovers_reading_details() {
    survives_every_calpendo_fault_and_recovers("details");
}

/// Every fault of [`cases_for`] `mode`, one after another, against one `serve`.
fn survives_every_calpendo_fault_and_recovers(mode: &str) {
    let rt = runtime();
    let fake = start_fake(&rt, PASSWORD, mwl_bookings());
    let tmp = tempfile::Builder::new()
        .prefix("mwlbridge-faults-")
        .tempdir()
        .expect("tempdir");
    let db = tmp.path().join("worklist.db");
    let keys = format!("{FAST}\nfetch_mode = \"{mode}\"");
    let config = write_config(
        &tmp.path().join("faults.toml"),
        &fake.base_url(),
        &db,
        &keys,
    );
    let serve = Serve::start(&config, &db, &ServeOpts::json(PASSWORD, "info"));
    let first = serve.next_run(Timestamp::UNIX_EPOCH, Duration::from_secs(30));
    assert_eq!(first.outcome, SyncOutcome::Success, "{:?}", first.error);

    let mut report = Vec::new();
    for (k, case) in cases_for(mode).into_iter().enumerate() {
        // A steady state: a successful cycle after the previous case's change.
        let before_entries = entries(&db);
        let before_items = find_all(serve.port);
        assert!(!before_items.is_empty());

        let fault_on = Timestamp::now();
        fake.set_fault(case.fault.clone(), case.scope);
        // Calpendo changes while it fails: one booking retitled, one added, one removed.
        let mut retitled = booking(101, &format!("SUB101_Tremblay_Case{k}"), "3T Diagnostic", 8);
        retitled.operator = Some("Jane Smith".into());
        fake.upsert_booking(retitled);
        fake.upsert_booking(added(k));
        let removed = if k == 10 { Some(104) } else { None };
        if let Some(id) = removed {
            assert!(fake.remove_booking(id));
        }

        // C-FIND answers while the failing cycle runs (the retries take seconds).
        assert_eq!(
            find_all(serve.port),
            before_items,
            "{}: C-FIND during the fault",
            case.name
        );
        let run = serve.next_run(fault_on, Duration::from_secs(40));
        let error = run.error.clone().unwrap_or_default();
        eprintln!("{}: {error}", case.name);
        assert_eq!(
            run.outcome,
            SyncOutcome::Failed,
            "{}: the cycle during the fault did not fail",
            case.name
        );
        for group in case.must_name {
            assert!(
                names_any(&error, group),
                "{}: the error does not name {group:?}: {error}",
                case.name
            );
        }
        assert_no_credential(case.name, &error);
        assert_error_logged(&serve, &run);
        // Still during the fault: the worklist is unchanged.
        assert_eq!(
            find_all(serve.port),
            before_items,
            "{}: C-FIND after the failed cycle",
            case.name
        );
        assert_eq!(
            entries(&db),
            before_entries,
            "{}: a failed cycle changed the store",
            case.name
        );
        report.push(format!(
            "{} ({:.1} s): {error}",
            case.name,
            (run.finished_at - run.started_at).as_secs_f64()
        ));

        // Recovery: the next cycle after the fault is cleared succeeds and shows the
        // changes.
        let fault_off = Timestamp::now();
        fake.clear_fault();
        let run = serve.next_run(fault_off, Duration::from_secs(30));
        assert_eq!(
            run.outcome,
            SyncOutcome::Success,
            "{}: no recovery: {:?}",
            case.name,
            run.error
        );
        let after = find_all(serve.port);
        let renamed = after
            .iter()
            .find(|i| i.0 == "101")
            .unwrap_or_else(|| panic!("{}: 101 missing: {after:?}", case.name));
        assert_eq!(renamed.2, format!("Tremblay^Case{k}"), "{}", case.name);
        assert!(
            has_accession(&after, &(300 + k).to_string()),
            "{}: the added booking is missing: {after:?}",
            case.name
        );
        if let Some(id) = removed {
            assert!(
                !has_accession(&after, &id.to_string()),
                "{}: the removed booking is still offered",
                case.name
            );
        }
    }
    assert_no_credential("the server log", &serve.log());
    eprintln!("failure modes and their recorded errors:");
    for line in &report {
        eprintln!("  {line}");
    }
    drop(serve);
    drop(fake);
}

/// A hang longer than `sync_deadline`: the cycle ends at the deadline, named as such.
#[test]
fn a_hang_is_cut_by_the_sync_deadline() {
    let rt = runtime();
    let fake = start_fake(&rt, PASSWORD, mwl_bookings());
    let tmp = tempfile::Builder::new()
        .prefix("mwlbridge-deadline-")
        .tempdir()
        .expect("tempdir");
    let db = tmp.path().join("worklist.db");
    let config = write_config(
        &tmp.path().join("deadline.toml"),
        &fake.base_url(),
        &db,
        "sync_interval = 1\nrequest_timeout = 10\nsync_deadline = 2",
    );
    let serve = Serve::start(&config, &db, &ServeOpts::json(PASSWORD, "info"));
    let first = serve.next_run(Timestamp::UNIX_EPOCH, Duration::from_secs(30));
    assert_eq!(first.outcome, SyncOutcome::Success, "{:?}", first.error);
    let before_entries = entries(&db);
    let before_items = find_all(serve.port);

    let fault_on = Timestamp::now();
    fake.set_fault(Fault::Hang, FaultScope::All);
    fake.upsert_booking(added(0));
    assert_eq!(find_all(serve.port), before_items);
    let run = serve.next_run(fault_on, Duration::from_secs(20));
    assert_eq!(run.outcome, SyncOutcome::Failed);
    let error = run.error.clone().unwrap_or_default();
    assert!(
        names_any(&error, &["deadline"]) && error.contains("sync_deadline"),
        "{error}"
    );
    let took = (run.finished_at - run.started_at).as_secs_f64();
    assert!(
        (1.9..5.0).contains(&took),
        "the cycle took {took} s, not the 2 s deadline"
    );
    assert_error_logged(&serve, &run);
    assert_eq!(find_all(serve.port), before_items);
    assert_eq!(entries(&db), before_entries);
    eprintln!("hang beyond the deadline ({took:.1} s): {error}");

    let fault_off = Timestamp::now();
    fake.clear_fault();
    let run = serve.next_run(fault_off, Duration::from_secs(20));
    assert_eq!(run.outcome, SyncOutcome::Success, "{:?}", run.error);
    assert!(has_accession(&find_all(serve.port), "300"));
    assert_no_credential("the server log", &serve.log());
}

// ---------------------------------------------------------------------------------------
// DNS and TLS failures: each needs another base_url, hence another config and server.

/// A self-signed certificate for 127.0.0.1 and localhost (EC P-256, valid 2020–2120, not a
/// CA), made for these tests only.
const SELF_SIGNED_CERT: &str = "
MIIBnjCCAUWgAwIBAgIUDhajrPW876C5mtIHDI+Xg7v/3qUwCgYIKoZIzj0EAwIw
JTEjMCEGA1UEAwwabXdsYnJpZGdlLXRlc3Qtc2VsZi1zaWduZWQwIBcNMjAwMTAx
MDAwMDAwWhgPMjEyMDAxMDEwMDAwMDBaMCUxIzAhBgNVBAMMGm13bGJyaWRnZS10
ZXN0LXNlbGYtc2lnbmVkMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEXo/tV3Rm
kg2qldlCteDq7nraOvVa2k+sFWkYp81hvwMNyLKYYywI5YfGGIgCoJIC0kPqx8tg
p4GcigTU8Q45raNRME8wGgYDVR0RBBMwEYcEfwAAAYIJbG9jYWxob3N0MAwGA1Ud
EwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMAoG
CCqGSM49BAMCA0cAMEQCIGBNntjdCAZZDkJpH9CroODNgqLHmbWcZVtYQz+5qxjI
AiBVibafg8Yuup/3qQTPPeYUk0qYT5y9OhBTC/ZhgYlpkQ==";

/// Its private key (PKCS#8).
const SELF_SIGNED_KEY: &str = "
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIR+Xp3GSNbP7pudM
BxR3Z6FVjM/Yl6LdFQN+cmRSoo2hRANCAARej+1XdGaSDaqV2UK14Orueto69Vra
T6wVaRinzWG/Aw3IsphjLAjlh8YYiAKgkgLSQ+rHy2CngZyKBNTxDjmt";

fn der(base64_text: &str) -> Vec<u8> {
    let compact: String = base64_text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .expect("base64")
}

/// A TLS server on 127.0.0.1 with the self-signed certificate; it completes handshakes
/// with clients that accept the certificate and then closes. Its port.
fn start_tls_server(rt: &tokio::runtime::Runtime) -> u16 {
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cert = rustls::pki_types::CertificateDer::from(der(SELF_SIGNED_CERT));
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        der(SELF_SIGNED_KEY),
    ));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("certificate and key");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // The client refuses the certificate: the handshake fails.
                    let _ = acceptor.accept(stream).await;
                });
            }
        });
        port
    })
}

/// One server whose Calpendo cannot be reached, on a database filled beforehand.
struct Unreachable {
    name: &'static str,
    serve: Serve,
    items: Vec<Item>,
    entries: Vec<worklist_store::StoredEntry>,
    must_name: &'static [&'static [&'static str]],
}

/// What an unreachable Calpendo's error must name: each group, one of its words.
type MustName = &'static [&'static [&'static str]];

/// For each `(name, base_url, must_name)` from `variants`: a database filled by a
/// `sync --once` from a working fake, then `serve` on it with that base_url. Checks the
/// failed first cycle (error, log, credentials) and that C-FIND keeps answering.
fn check_unreachable(
    variants: impl FnOnce(
        &tokio::runtime::Runtime,
        &calpendo_fake::FakeCalpendo,
    ) -> Vec<(&'static str, String, MustName)>,
) {
    let rt = runtime();
    let fake = start_fake(&rt, PASSWORD, mwl_bookings());
    let tmp = tempfile::Builder::new()
        .prefix("mwlbridge-unreachable-")
        .tempdir()
        .expect("tempdir");
    let mut servers = Vec::new();
    for (i, (name, base_url, must_name)) in variants(&rt, &fake).into_iter().enumerate() {
        // Fill the database from the working fake, then serve it with the bad base_url.
        let db = tmp.path().join(format!("worklist-{i}.db"));
        let good = write_config(
            &tmp.path().join(format!("good-{i}.toml")),
            &fake.base_url(),
            &db,
            FAST,
        );
        let good = good.to_str().expect("utf-8").to_string();
        let out = rt.block_on(async {
            tokio::task::spawn_blocking(move || {
                common::command(&["sync", "--once", "--config", &good])
                    .env("CALPENDO_USERNAME", USER)
                    .env("CALPENDO_PASSWORD", PASSWORD)
                    .output()
                    .expect("runs")
            })
            .await
            .expect("join")
        });
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        let entries = entries(&db);
        let bad = write_config(
            &tmp.path().join(format!("bad-{i}.toml")),
            &base_url,
            &db,
            FAST,
        );
        let started = Timestamp::now();
        let serve = Serve::start(&bad, &db, &ServeOpts::json(PASSWORD, "info"));
        let items = find_all(serve.port);
        assert!(!items.is_empty());
        servers.push((
            started,
            Unreachable {
                name,
                serve,
                items,
                entries,
                must_name,
            },
        ));
    }
    for (started, u) in &servers {
        // C-FIND during the failing first cycle, and after it.
        assert_eq!(find_all(u.serve.port), u.items, "{}", u.name);
        let run = u.serve.next_run(*started, Duration::from_secs(40));
        assert_eq!(run.outcome, SyncOutcome::Failed, "{}", u.name);
        let error = run.error.clone().unwrap_or_default();
        eprintln!("{}: {error}", u.name);
        assert_no_credential(u.name, &error);
        assert_error_logged(&u.serve, &run);
        assert_eq!(find_all(u.serve.port), u.items, "{}", u.name);
        assert_eq!(entries(&u.serve.db), u.entries, "{}", u.name);
        assert_no_credential("the server log", &u.serve.log());
        for group in u.must_name {
            assert!(
                names_any(&error, group),
                "{}: the error does not name {group:?}: {error}",
                u.name
            );
        }
    }
}

/// A name that never resolves (RFC 6761 `.invalid`), and a TLS server whose certificate
/// is self-signed (made with tokio-rustls from the certificate above).
#[test]
fn dns_and_certificate_failures_are_named_and_the_worklist_keeps_answering() {
    check_unreachable(|rt, _fake| {
        let tls_port = start_tls_server(rt);
        vec![
            (
                "DNS failure",
                "http://calpendo.invalid".to_string(),
                &[
                    &["dns", "resolve", "lookup", "name or service"],
                    &["calpendo.invalid"],
                ],
            ),
            (
                "TLS: self-signed certificate",
                format!("https://127.0.0.1:{tls_port}"),
                &[&["certificate"]],
            ),
        ]
    });
}

/// `https://` spoken to a plain-HTTP server (the fake's port): the handshake fails, and
/// the recorded error says it is TLS and that the server may not speak https.
#[test]
fn https_to_a_plain_http_port_is_named_as_a_tls_failure() {
    check_unreachable(|_rt, fake| {
        vec![(
            "TLS: https:// to a plain-HTTP port",
            format!("https://127.0.0.1:{}", fake.local_addr().port()),
            &[&["tls", "ssl", "handshake"]],
        )]
    });
}
