//! Privacy of the logs and of every command's output.
//!
//! Bookings carry unusual subject IDs and names (`QXS7731_Zyxwvut_Qponml`), so a substring
//! search is meaningful, and the fake Calpendo takes a distinctive password. A full sync
//! and C-FINDs by PatientName and PatientID run against `mwlbridge serve` with JSON logs at
//! info, debug and trace:
//!
//! - no subject ID or name appears in any INFO, WARN or ERROR line (debug lines are
//!   checked against the product's own promise too: "titles, subject IDs and names
//!   appear at TRACE level at most");
//! - the password (and the Basic credential that carries it) appears nowhere, at any
//!   level, nor in the output of `check-config`, of failing `sync --once` runs (HTTP 500,
//!   HTTP 401, a wrong password, a base_url holding the password), of a successful one
//!   at trace level, or of `worklist`; nor does the database.

mod common;

use std::time::Duration;

use base64::Engine as _;
use calpendo_fake::{FakeBooking, Fault, FaultScope};
use common::booking;
use common::harness::{info_or_above, json_lines, level, runtime, start_fake, write_config};
use common::scp::findscu;
use common::serve::{Serve, ServeOpts, USER};
use jiff::Timestamp;
use worklist_store::SyncOutcome;

const PASSWORD: &str = "Pw-Privacy_7Hq3Zk";
const WRONG_PASSWORD: &str = "Wr0ng-Pw_Zq81Lx";

/// The subject IDs and name parts of the bookings: none may show in INFO+ lines.
const SUBJECT_TOKENS: [&str; 14] = [
    "QXS7731", "Zyxwvut", "Qponml", "QXS7732", "Kjhgfdsq", "Wvbnmlk", "QXS7733", "Plmoknij",
    "Uhbygvt", "QXS7734", "Qazwsx", "Rfvtgbyh", "QXS7736", "Mnbvcxzl",
];

/// Bookings that walk the sync's logging paths: kept ones (MRI with an operator, EEG), a
/// cancelled one, one whose name needs cleaning (a backslash), one without a title
/// (skipped with a warning), and one whose details answer 404 (skipped with a warning).
fn bookings() -> Vec<FakeBooking> {
    let mut eeg = booking(502, "QXS7732_Kjhgfdsq_Wvbnmlk", "EEG Lab Room A", 10);
    eeg.biskit_type = "EEGScan".into();
    let mut cancelled = booking(503, "QXS7733_Plmoknij_Uhbygvt", "3T Diagnostic", 11);
    cancelled.status = "Cancelled".into();
    vec![
        booking(501, "QXS7731_Zyxwvut_Qponml", "3T Diagnostic", 9),
        eeg,
        cancelled,
        booking(504, "QXS7734_Qazwsx\\Edc_Rfvtgbyh", "3T Diagnostic", 12),
        booking(505, "", "7T Research", 13),
        booking(506, "QXS7736_Mnbvcxzl_Poiuytr", "3T Diagnostic", 14),
    ]
}

fn credentials() -> Vec<String> {
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    vec![
        PASSWORD.to_string(),
        WRONG_PASSWORD.to_string(),
        b64(format!("{USER}:{PASSWORD}")),
        b64(format!("{USER}:{WRONG_PASSWORD}")),
    ]
}

/// Panics when `text` holds a credential.
fn assert_no_password(what: &str, text: &str) {
    for c in credentials() {
        if let Some(line) = text.lines().find(|l| l.contains(&c)) {
            panic!("{what} holds the credential {c:?}: {line}");
        }
    }
}

/// The subject tokens in `text`.
fn subject_tokens(text: &str) -> Vec<&'static str> {
    SUBJECT_TOKENS
        .iter()
        .copied()
        .filter(|t| text.contains(t))
        .collect()
}

/// A full sync and C-FINDs against `serve` with JSON logs at `log_level`; returns the log.
fn serve_round(log_level: &str) -> (String, Vec<String>) {
    let rt = runtime();
    let fake = start_fake(&rt, PASSWORD, bookings());
    fake.set_fault(Fault::Status(404), FaultScope::Booking(506));
    let tmp = tempfile::Builder::new()
        .prefix("mwlbridge-privacy-")
        .tempdir()
        .expect("tempdir");
    let db = tmp.path().join("worklist.db");
    let config = write_config(
        &tmp.path().join(format!("privacy-{log_level}.toml")),
        &fake.base_url(),
        &db,
        "sync_interval = 3600\nrequest_timeout = 5\nsync_deadline = 20",
    );
    let mut serve = Serve::start(&config, &db, &ServeOpts::json(PASSWORD, log_level));
    let run = serve.next_run(Timestamp::UNIX_EPOCH, Duration::from_secs(30));
    assert_eq!(run.outcome, SyncOutcome::Success, "{:?}", run.error);

    let by_name = findscu(
        serve.port,
        &["PatientName=Zyxwvut^Qponml", "PatientID"],
        &[],
    );
    by_name.assert_success();
    assert_eq!(by_name.patient_ids(), vec!["QXS7731".to_string()]);
    let by_prefix = findscu(serve.port, &["PatientName=Kjhg*", "PatientID"], &[]);
    by_prefix.assert_success();
    assert_eq!(by_prefix.patient_ids(), vec!["QXS7732".to_string()]);
    let by_id = findscu(serve.port, &["PatientID=QXS7732", "PatientName"], &[]);
    by_id.assert_success();
    assert_eq!(by_id.patient_ids(), vec!["QXS7732".to_string()]);
    let none = findscu(serve.port, &["PatientID=QXS7733", "PatientName"], &[]);
    none.assert_success();
    assert!(
        none.responses.is_empty(),
        "the cancelled booking is not offered"
    );

    assert_eq!(serve.stop(), Some(0), "{}", serve.log());
    let log = serve.log();
    let mut debug_leaks = Vec::new();
    let lines = json_lines(&log);
    assert!(
        lines.iter().any(|l| l["message"] == "sync cycle done"),
        "{log}"
    );
    for raw in log.lines() {
        let parsed: Option<serde_json::Value> = serde_json::from_str(raw).ok();
        // A line that is not JSON (the watchdog's) counts as INFO.
        let at_info = parsed.as_ref().is_none_or(info_or_above);
        let found = subject_tokens(raw);
        if found.is_empty() {
            continue;
        }
        if at_info {
            panic!("subject data {found:?} in a log line at info or above ({log_level}): {raw}");
        }
        let lvl = parsed.as_ref().map(level).unwrap_or("").to_string();
        if lvl == "DEBUG" {
            debug_leaks.push(raw.to_string());
        }
    }
    assert_no_password(&format!("the serve log at {log_level}"), &log);
    // Nor does the database (sync runs, entries) hold it.
    for suffix in ["", "-wal"] {
        let bytes = std::fs::read(format!("{}{suffix}", db.display())).unwrap_or_default();
        assert_no_password("the database", &String::from_utf8_lossy(&bytes));
    }
    drop(fake);
    (log, debug_leaks)
}

#[test]
fn serve_logs_hold_no_subject_data_at_info_and_never_the_password() {
    let (info_log, _) = serve_round("info");
    assert!(
        json_lines(&info_log).iter().all(info_or_above),
        "--log-level info shows only INFO and above"
    );
    let (debug_log, debug_leaks) = serve_round("debug");
    assert!(
        json_lines(&debug_log).iter().any(|l| level(l) == "DEBUG"),
        "debug lines are shown"
    );
    let (trace_log, _) = serve_round("trace");
    eprintln!(
        "log lines checked: info {}, debug {}, trace {}",
        info_log.lines().count(),
        debug_log.lines().count(),
        trace_log.lines().count()
    );
    assert!(
        debug_leaks.is_empty(),
        "subject data in DEBUG lines, though the product promises TRACE at most:\n{}",
        debug_leaks.join("\n")
    );
}

/// Runs mwlbridge with `args` and the given password in its environment (stdout and
/// stderr together).
fn output(args: &[&str], password: &str) -> (Option<i32>, String) {
    let out = common::command(args)
        .env("CALPENDO_USERNAME", USER)
        .env("CALPENDO_PASSWORD", password)
        .output()
        .expect("mwlbridge runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn no_command_output_holds_the_password() {
    let rt = runtime();
    let fake = start_fake(&rt, PASSWORD, bookings());
    let tmp = tempfile::Builder::new()
        .prefix("mwlbridge-privacy-cli-")
        .tempdir()
        .expect("tempdir");
    let db = tmp.path().join("worklist.db");
    let config = write_config(
        &tmp.path().join("cli.toml"),
        &fake.base_url(),
        &db,
        "request_timeout = 2\nsync_deadline = 20",
    );
    let config = config.to_str().expect("utf-8").to_string();
    let mut checked = Vec::new();
    let mut check = |what: &str, args: &[&str], password: &str, code: Option<i32>| {
        let (got, text) = rt.block_on(async {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let password = password.to_string();
            tokio::task::spawn_blocking(move || {
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                output(&refs, &password)
            })
            .await
            .expect("join")
        });
        if code.is_some() {
            assert_eq!(got, code, "{what}: {text}");
        }
        assert_no_password(what, &text);
        checked.push(format!(
            "{what} (exit {}, {} lines)",
            got.map_or("-".to_string(), |c| c.to_string()),
            text.lines().count()
        ));
        text
    };

    for level in ["debug", "trace"] {
        check(
            &format!("check-config at {level}"),
            &["--log-level", level, "check-config", "--config", &config],
            PASSWORD,
            Some(0),
        );
    }
    check(
        "sync --once at trace",
        &[
            "--log-level",
            "trace",
            "sync",
            "--once",
            "--config",
            &config,
        ],
        PASSWORD,
        Some(0),
    );
    fake.set_fault(Fault::Status(500), FaultScope::List);
    check(
        "sync --once, HTTP 500",
        &[
            "--log-level",
            "debug",
            "sync",
            "--once",
            "--config",
            &config,
        ],
        PASSWORD,
        Some(1),
    );
    fake.set_fault(Fault::Status(401), FaultScope::List);
    check(
        "sync --once, HTTP 401",
        &[
            "--log-level",
            "debug",
            "sync",
            "--once",
            "--config",
            &config,
        ],
        PASSWORD,
        Some(1),
    );
    fake.clear_fault();
    check(
        "sync --once, wrong password",
        &[
            "--log-level",
            "trace",
            "sync",
            "--once",
            "--config",
            &config,
        ],
        WRONG_PASSWORD,
        Some(1),
    );
    for json in [false, true] {
        let mut args = vec!["--log-level", "debug", "worklist", "--config", &config];
        args.extend(["--date", "today"]);
        if json {
            args.push("--json");
        }
        let text = check(
            if json { "worklist --json" } else { "worklist" },
            &args,
            PASSWORD,
            Some(0),
        );
        assert!(
            text.contains("QXS7731"),
            "the worklist shows its subjects: {text}"
        );
    }
    // A base_url holding the password: refused without echoing it.
    let with_credential = fake
        .base_url()
        .replace("http://", &format!("http://{USER}:{PASSWORD}@"));
    let bad = write_config(
        &tmp.path().join("credential-in-url.toml"),
        &with_credential,
        &db,
        "",
    );
    let bad = bad.to_str().expect("utf-8").to_string();
    for (args, code) in [
        (
            vec!["--log-level", "trace", "check-config", "--config", &bad],
            Some(2),
        ),
        (
            vec!["--log-level", "trace", "sync", "--once", "--config", &bad],
            Some(2),
        ),
        // The worklist view reads only the generic settings: it may run.
        (
            vec!["--log-level", "trace", "worklist", "--config", &bad],
            None,
        ),
    ] {
        let what = format!("{} with the password in base_url", args[2]);
        check(&what, &args, PASSWORD, code);
    }
    eprintln!("outputs checked:");
    for c in &checked {
        eprintln!("  {c}");
    }
}
