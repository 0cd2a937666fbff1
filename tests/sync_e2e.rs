//! `mwlbridge sync` and `mwlbridge worklist` against the fake Calpendo over real HTTP,
//! with a real SQLite file.

mod common;

use std::time::{Duration, Instant};

use calpendo_fake::{Fault, FaultScope};
use common::{booking, fake, run_async, stderr, stdout, today, write_config};
use worklist_store::{StepStatus, Store, SyncOutcome};

fn worklist_json(config: &str) -> serde_json::Value {
    let out = common::run(&["worklist", "--config", config, "--date", "today", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_once_fills_the_worklist_and_follows_changes() {
    fills_the_worklist_and_follows_changes("auto").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_once_fills_the_worklist_and_follows_changes_reading_details() {
    fills_the_worklist_and_follows_changes("details").await;
}

/// One `sync --once` after another in `fetch_mode`, following Calpendo's changes.
async fn fills_the_worklist_and_follows_changes(mode: &str) {
    let fake = fake(vec![
        booking(101, "SUB001_Tremblay_Marie", "3T Diagnostic", 9),
        booking(102, "SUB002_Novak_Jan", "EEG Lab Room A", 10),
        booking(103, "SUB003_Other_Resource", "Mock Scanner", 11),
    ])
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = format!("fetch_mode = \"{mode}\"\n");
    let config = write_config(dir.path(), &fake.base_url(), &keys);
    let config = config.to_str().expect("utf-8");

    let out = run_async(&["sync", "--once", "--config", config]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stats = fake.stats();
    assert_eq!(stats.list_requests, 1, "{mode}");
    assert_eq!(stats.detail_requests > 0, mode == "details", "{mode}");
    assert!(
        stdout(&out).contains("calpendo: ok: fetched 2, inserted 2"),
        "{}",
        stdout(&out)
    );

    let list = worklist_json(config);
    let entries = list.as_array().expect("array");
    assert_eq!(
        entries.len(),
        2,
        "the Mock Scanner is not a configured resource"
    );
    let first = &entries[0];
    assert_eq!(first["patient_id"], "SUB001");
    assert_eq!(first["patient_name"], "Tremblay^Marie");
    assert_eq!(first["station_ae_title"], "MRI_3T");
    assert_eq!(first["modality"], "MR");
    assert_eq!(first["study_description"], "BRISKP");
    assert_eq!(first["accession_number"], "101");
    assert_eq!(first["status"], "SCHEDULED");
    assert_eq!(first["start"], format!("{}T09:00:00", today()));
    assert_eq!(entries[1]["modality"], "EEG");

    // A table for people: the subject shows, the header too.
    let out = common::run(&["worklist", "--config", config]);
    let table = stdout(&out);
    assert!(table.starts_with("START"), "{table}");
    assert!(table.contains("SUB002"), "{table}");

    // Nothing changed: nothing written.
    let out = run_async(&["sync", "--once", "--config", config]).await;
    assert!(stdout(&out).contains("unchanged 2"), "{}", stdout(&out));

    // Moved, retitled and cancelled in Calpendo.
    let mut moved = booking(101, "SUB001_Tremblay_Marie-Eve", "3T Diagnostic", 14);
    moved.project = Some("NEWPROJ (renamed)".into());
    fake.upsert_booking(moved);
    let mut cancelled = booking(102, "SUB002_Novak_Jan", "EEG Lab Room A", 10);
    cancelled.status = "Cancelled".into();
    fake.upsert_booking(cancelled);
    let out = run_async(&["sync", "--once", "--config", config]).await;
    assert!(stdout(&out).contains("updated 1"), "{}", stdout(&out));
    assert!(stdout(&out).contains("discontinued 1"), "{}", stdout(&out));
    let list = worklist_json(config);
    let by_id = |id: &str| {
        list.as_array()
            .expect("array")
            .iter()
            .find(|e| e["source_record_id"] == id)
            .cloned()
            .expect("entry")
    };
    assert_eq!(by_id("101")["start"], format!("{}T14:00:00", today()));
    assert_eq!(by_id("101")["patient_name"], "Tremblay^Marie-Eve");
    assert_eq!(by_id("101")["study_description"], "NEWPROJ");
    assert_eq!(by_id("102")["status"], "DISCONTINUED");

    // Deleted from Calpendo: vanished from the window.
    fake.remove_booking(101);
    let out = run_async(&["sync", "--once", "--config", config]).await;
    assert!(stdout(&out).contains("discontinued 1"), "{}", stdout(&out));
    let store = Store::open(dir.path().join("worklist.db")).expect("open");
    let e = store.get("calpendo", "101").expect("get").expect("kept");
    assert_eq!(e.entry.status, StepStatus::Discontinued);
    assert_eq!(store.recent_sync_runs(None, 10).expect("runs").len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_sync_exits_1_and_changes_nothing() {
    let fake = fake(vec![booking(201, "SUB010_A_B", "3T Diagnostic", 9)]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The details path, whose detail requests a fault below fails (the bulk path's
    // faults: tests/faults_e2e.rs runs every fault in both modes).
    let config = write_config(dir.path(), &fake.base_url(), "fetch_mode = \"details\"\n");
    let config = config.to_str().expect("utf-8");
    let out = run_async(&["sync", "--once", "--config", config]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = worklist_json(config);

    for (fault, scope) in [
        (Fault::Status(500), FaultScope::All),
        (Fault::Status(401), FaultScope::All),
        (Fault::InvalidJson, FaultScope::List),
        (Fault::Status(503), FaultScope::Details),
    ] {
        fake.set_fault(fault.clone(), scope);
        let out = run_async(&["sync", "--once", "--config", config]).await;
        assert_eq!(out.status.code(), Some(1), "{fault:?}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("calpendo: FAILED"),
            "{fault:?}: {}",
            stdout(&out)
        );
        assert!(
            stderr(&out).contains("sync failed for calpendo"),
            "{fault:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("secret"), "no credential in output");
        assert_eq!(
            worklist_json(config),
            before,
            "{fault:?} changed the worklist"
        );
        fake.clear_fault();
    }
    // Unreachable: nothing listens there any more.
    let addr = fake.local_addr();
    fake.shutdown().await;
    let out = run_async(&["sync", "--once", "--config", config]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "unreachable {addr}: {}",
        stderr(&out)
    );
    assert_eq!(worklist_json(config), before);

    let store = Store::open(dir.path().join("worklist.db")).expect("open");
    let runs = store.recent_sync_runs(Some("calpendo"), 10).expect("runs");
    assert_eq!(runs.len(), 6);
    assert!(
        runs[..5]
            .iter()
            .all(|r| r.outcome == SyncOutcome::Failed && r.error.is_some())
    );
    assert_eq!(runs[5].outcome, SyncOutcome::Success);
}

#[tokio::test(flavor = "multi_thread")]
async fn pylantir_json_config_syncs_without_edits() {
    let fake = fake(vec![booking(
        301,
        "SUB301_Example_Person",
        "3T Diagnostic",
        9,
    )])
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Pylantir's documented Calpendo example, with this site's server and database.
    let example = include_str!("../config/pylantir-example.json")
        .replace("https://calpendo.example.org", &fake.base_url())
        .replace(
            "/var/lib/mwlbridge/worklist.db",
            &dir.path().join("w.db").display().to_string(),
        );
    let path = dir.path().join("pylantir.json");
    std::fs::write(&path, example).expect("write");
    let config = path.to_str().expect("utf-8");
    let out = run_async(&["sync", "--once", "--config", config]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list = worklist_json(config);
    assert_eq!(list[0]["patient_id"], "SUB301");
    assert_eq!(list[0]["patient_name"], "Example_Person");
    assert_eq!(list[0]["modality"], "MR");
}

#[cfg(unix)]
/// `mwlbridge sync` (no `--once`) runs its cycles until SIGTERM, then exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn sync_worker_stops_cleanly_on_sigterm() {
    let fake = fake(vec![booking(401, "SUB401_A_B", "3T Diagnostic", 9)]).await;
    // Two cycles: at start, then after the interval; the helper asserts the clean exit.
    sync_loop_log(&fake, 2).await;
}

/// A typo in a resource prefix used to drop that scanner without a word: the sync names
/// the prefix that matched no booking, and the resources it did see.
#[tokio::test(flavor = "multi_thread")]
async fn a_resource_prefix_that_matches_nothing_is_named() {
    let fake = fake(vec![
        booking(101, "SUB001_Tremblay_Marie", "3T Diagnostic", 9),
        booking(102, "SUB002_Novak_Jan", "EEG Lab Room A", 10),
    ])
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    let config = common::config::SiteConfig {
        resources: &[("3T", "MR", "MRI_3T"), ("EGG", "EEG", "EEG_LAB")],
        source_keys: "sync_deadline = 10\nrequest_timeout = 5",
        ..common::config::SiteConfig::new(&fake.base_url(), &db)
    }
    .write(&dir.path().join("mwlbridge.toml"));
    let config = config.to_str().expect("utf-8");
    let out = run_async(&["sync", "--once", "--config", config]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = stderr(&out);
    let line = log
        .lines()
        .find(|l| l.contains("resource prefix matched none"))
        .unwrap_or_else(|| panic!("no warning in:\n{log}"));
    assert!(
        line.contains("WARN") && line.contains("prefix=EGG"),
        "{line}"
    );
    assert!(
        line.contains("EEG Lab Room A"),
        "the resources seen: {line}"
    );
    assert!(!log.contains("prefix=3T"), "{log}");
}

/// A Calpendo that cannot be reached is named by host and port, with what to check.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_calpendo_is_named_with_what_to_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "http://127.0.0.1:9", "");
    let config = config.to_str().expect("utf-8");
    let out = run_async(&["sync", "--once", "--config", config]).await;
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("cannot connect to 127.0.0.1:9") && text.contains("check base_url"),
        "{text}"
    );
}

/// A Calpendo that suddenly answers an empty list, or no booking's details, would
/// discontinue the whole day: the cycle is refused and changes nothing, says how to apply
/// it when it is real, and `--accept-mass-change` applies it once.
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_that_would_empty_the_day_is_refused_until_accepted() {
    let day: Vec<_> = (1..=5)
        .map(|i| {
            booking(
                200 + i,
                &format!("SUB00{i}_Doe"),
                "3T Diagnostic",
                8 + i as i8,
            )
        })
        .collect();
    let fake = fake(day.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Every detail 404 is the details path's case (the bulk path reads no details).
    let config = write_config(dir.path(), &fake.base_url(), "fetch_mode = \"details\"\n");
    let config = config.to_str().expect("utf-8");
    let out = run_async(&["sync", "--once", "--config", config]).await;
    assert!(stdout(&out).contains("inserted 5"), "{}", stdout(&out));
    let scheduled = || {
        worklist_json(config)
            .as_array()
            .expect("array")
            .iter()
            .filter(|e| e["status"] == "SCHEDULED")
            .count()
    };

    // Every detail request answers 404.
    fake.set_fault(Fault::Status(404), FaultScope::Details);
    let out = run_async(&["sync", "--once", "--config", config]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("all 5 bookings whose details were asked for had none"),
        "{}",
        stdout(&out)
    );
    assert_eq!(scheduled(), 5);
    fake.clear_fault();

    // An empty list.
    fake.set_bookings(Vec::new());
    let out = run_async(&["sync", "--once", "--config", config]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("would discontinue or delete 5 of its 5 active entries")
            && text.contains("--accept-mass-change"),
        "{text}"
    );
    assert_eq!(scheduled(), 5, "nothing changed");

    let out = run_async(&["sync", "--once", "--accept-mass-change", "--config", config]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("discontinued 5"), "{}", stdout(&out));
    assert_eq!(scheduled(), 0);
}

/// Runs `mwlbridge sync` (no `--once`) at a one-second interval against `fake` until
/// `cycles` cycles are recorded, stops it with SIGTERM (it must exit 0), and returns its
/// log (WARN and above).
async fn sync_loop_log(fake: &calpendo_fake::FakeCalpendo, cycles: usize) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &fake.base_url(), "sync_interval = 1");
    let log_path = dir.path().join("log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = common::command(&["sync", "--config", config.to_str().expect("utf-8")])
        .stderr(log)
        .spawn()
        .expect("spawn");
    let db = dir.path().join("worklist.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = Store::open(&db)
            .ok()
            .and_then(|s| s.recent_sync_runs(None, 10).ok())
            .map_or(0, |r| r.len());
        if runs >= cycles {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{cycles} sync cycles not recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let waited = tokio::task::spawn_blocking(move || child.wait()).await;
    assert_eq!(waited.expect("join").expect("wait").code(), Some(0));
    std::fs::read_to_string(&log_path).expect("log")
}

/// An older Calpendo that ignores `paths`, or refuses STARTS_WITH, is said once at WARN
/// when the fallback starts, not on every cycle.
#[tokio::test(flavor = "multi_thread")]
async fn each_fallback_is_said_once() {
    let fake = fake(vec![booking(501, "SUB501_A_B", "3T Diagnostic", 9)]).await;
    fake.set_ignore_paths(true);
    let log = sync_loop_log(&fake, 3).await;
    assert_eq!(log.matches("without the asked paths").count(), 1, "{log}");
    assert!(
        fake.stats().detail_requests >= 1,
        "the details path is taken"
    );

    let fake = common::fake(vec![booking(502, "SUB502_A_B", "3T Diagnostic", 9)]).await;
    fake.set_refuse_starts_with(true);
    let log = sync_loop_log(&fake, 3).await;
    assert_eq!(
        log.matches("refused the resource prefixes").count(),
        1,
        "{log}"
    );
    assert_eq!(
        fake.stats().detail_requests,
        0,
        "still one list query per cycle"
    );
}
