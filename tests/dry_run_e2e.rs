//! `mwlbridge sync --dry-run` against the fake Calpendo over real HTTP: what a sync would
//! change is printed (table and JSON), and the database file stays byte for byte as it was.

mod common;

use std::path::Path;
use std::process::Output;

use common::{booking, fake, run_async, stderr, stdout, write_config};

/// Runs the binary logging at INFO, its scratch files in `tmp`.
async fn run_logged(args: &[&str], tmp: &Path) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let tmp = tmp.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        common::command(&refs)
            .env("MWLBRIDGE_LOG", "info")
            .env("TMPDIR", &tmp)
            .output()
            .expect("mwlbridge runs")
    })
    .await
    .expect("join")
}

/// The database file's bytes, and the names of the files beside it.
#[derive(PartialEq)]
struct DatabaseState {
    bytes: Vec<u8>,
    files: Vec<String>,
}

impl std::fmt::Debug for DatabaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sum = self
            .bytes
            .iter()
            .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(*b));
        write!(
            f,
            "{} bytes (checksum {sum:x}), files {:?}",
            self.bytes.len(),
            self.files
        )
    }
}

fn database_state(dir: &Path) -> DatabaseState {
    let bytes = std::fs::read(dir.join("worklist.db")).expect("the database");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    DatabaseState { bytes, files }
}

fn empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).expect("dir").next().is_none()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_shows_what_a_sync_would_change_and_writes_nothing() {
    let fake = fake(vec![
        booking(101, "SUB001_Tremblay_Marie", "3T Diagnostic", 9),
        booking(102, "SUB002_Novak_Jan", "EEG Lab Room A", 10),
        booking(103, "SUB003_Okafor_Ada", "3T Diagnostic", 11),
    ])
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &fake.base_url(), "");
    let config = config.to_str().expect("utf-8");
    let db = dir.path().join("worklist.db");

    // Before the first sync there is no database: everything would be new, and the dry
    // run does not create it.
    let out = run_logged(
        &["sync", "--once", "--dry-run", "--config", config],
        tmp.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("would insert 3, update 0"), "{text}");
    assert!(
        text.contains("Tremblay^Marie") && text.contains("SUB003"),
        "{text}"
    );
    assert!(!db.exists(), "a dry run creates no database");
    assert!(empty(tmp.path()), "the private copy is removed");

    let out = run_async(&["sync", "--once", "--config", config]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = database_state(dir.path());

    // Moved, cancelled and new in Calpendo; 103 as it was.
    fake.upsert_booking(booking(101, "SUB001_Tremblay_Marie", "3T Diagnostic", 14));
    let mut cancelled = booking(102, "SUB002_Novak_Jan", "EEG Lab Room A", 10);
    cancelled.status = "Cancelled".into();
    fake.upsert_booking(cancelled);
    fake.upsert_booking(booking(104, "SUB004_Lindqvist_Eva", "EEG Lab Room A", 15));

    let out = run_logged(
        &["sync", "--once", "--dry-run", "--config", config],
        tmp.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("would insert 1, update 1, discontinue 1, delete 0, reject 0; 1 unchanged"),
        "{text}"
    );
    let row = |id: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| panic!("no row for {id} in\n{text}"))
            .to_string()
    };
    assert!(row("104").starts_with("  insert") && row("104").contains("Lindqvist^Eva"));
    assert!(row("101").starts_with("  update") && row("101").contains("end,start"));
    assert!(row("102").starts_with("  discontinue") && row("102").contains("SUB002"));
    // Subject IDs and names go to the terminal, never to the log.
    let log = stderr(&out);
    assert!(log.contains("dry run"), "{log}");
    for private in ["SUB00", "Tremblay", "Novak", "Lindqvist"] {
        assert!(!log.contains(private), "{private} in the log:\n{log}");
    }
    assert_eq!(
        database_state(dir.path()),
        before,
        "the database is untouched"
    );
    assert!(empty(tmp.path()), "the private copy is removed");

    // The same as JSON.
    let out = run_logged(
        &["sync", "--dry-run", "--json", "--config", config],
        tmp.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let source = &json["sources"][0];
    assert_eq!(source["source"], "calpendo");
    assert_eq!(source["counts"]["updated"], 1);
    assert_eq!(source["refused"], serde_json::Value::Null);
    let changes: Vec<(String, String)> = source["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            let kind = c["kind"].as_str().expect("kind").to_string();
            let id = c["entry"]["source_record_id"].as_str().expect("id");
            (kind, id.to_string())
        })
        .collect();
    let expected = [("insert", "104"), ("update", "101"), ("discontinue", "102")];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, id)| (k.to_string(), id.to_string()))
        .collect();
    assert_eq!(changes, expected);
    assert_eq!(source["changes"][0]["entry"]["patient_id"], "SUB004");
    assert_eq!(
        database_state(dir.path()),
        before,
        "the database is untouched"
    );

    // A real sync then does what the dry run said.
    let out = run_async(&["sync", "--once", "--config", config]).await;
    assert!(
        stdout(&out).contains("inserted 1, updated 1, unchanged 1, discontinued 1"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_says_when_a_sync_would_be_refused_or_fail() {
    let fake = fake(vec![
        booking(201, "SUB201_Doe_Jane", "3T Diagnostic", 9),
        booking(202, "SUB202_Doe_John", "3T Diagnostic", 10),
        booking(203, "SUB203_Roe_Ann", "EEG Lab Room A", 11),
    ])
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &fake.base_url(), "");
    let config = config.to_str().expect("utf-8");
    let out = run_async(&["sync", "--once", "--config", config]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = database_state(dir.path());

    // An empty list: every entry would go, so the guard would refuse the sync.
    fake.set_bookings(Vec::new());
    let out = run_logged(&["sync", "--dry-run", "--config", config], tmp.path()).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("would insert 0, update 0, discontinue 3"),
        "{text}"
    );
    assert!(
        text.contains("REFUSED") && text.contains("--accept-mass-change"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("a sync would fail for calpendo"),
        "{}",
        stderr(&out)
    );
    assert_eq!(database_state(dir.path()), before);

    // An unreachable Calpendo: said, and nothing else happens.
    drop(fake);
    let out = run_logged(&["sync", "--dry-run", "--config", config], tmp.path()).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("FAILED"), "{}", stdout(&out));
    assert_eq!(database_state(dir.path()), before);
    assert!(empty(tmp.path()), "the private copy is removed");
}
