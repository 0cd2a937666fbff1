//! A Pylantir site switching to mwlbridge with nothing to edit: its service unit's
//! `pylantir start` command line, its JSON config with mwlbridge's own sections beside
//! Pylantir's keys, and an admin interface nobody configured that never takes the DICOM
//! service down.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::harness::{runtime, start_fake};
use common::scp::{echoscu, findscu};
use common::serve::{Launch, Serve, ServeOpts};
use common::{booking, run, stderr, stdout};

/// A Pylantir JSON config (new form) with one Calpendo source at `base_url`, database
/// `db`, and `extra` top-level members (`"key": value,` each).
fn pylantir_json(dir: &Path, base_url: &str, db: &Path, extra: &str) -> PathBuf {
    let path = dir.join("pylantir.json");
    let text = format!(
        r#"{{
  {extra}
  "db_path": "{db}",
  "db_update_interval": 60,
  "data_sources": [
    {{
      "name": "calpendo",
      "type": "calpendo",
      "enabled": true,
      "config": {{
        "base_url": "{base_url}",
        "resources": ["3T"],
        "timezone": "America/Edmonton",
        "resource_modality_mapping": {{"3T": "MR"}}
      }}
    }}
  ]
}}"#,
        db = db.display(),
    );
    std::fs::write(&path, text).expect("write the config");
    path
}

/// A fake Calpendo (the harness's password) holding one booking today, of SUB001.
fn one_booking(rt: &tokio::runtime::Runtime) -> calpendo_fake::FakeCalpendo {
    start_fake(
        rt,
        "secret",
        vec![booking(1, "SUB001_Doe", "3T Diagnostic", 9)],
    )
}

/// `check-config` on `config`, with Calpendo credentials in the environment.
fn check_config(config: &Path) -> Output {
    common::command(&["check-config", "--config", config.to_str().expect("utf-8")])
        .env("CALPENDO_USERNAME", "u")
        .env("CALPENDO_PASSWORD", "p")
        .output()
        .expect("runs")
}

#[test]
fn pylantir_start_command_line_serves_the_worklist() {
    let rt = runtime();
    let fake = one_booking(&rt);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    let config = pylantir_json(dir.path(), &fake.base_url(), &db, "");
    let opts = ServeOpts {
        launch: Launch::PylantirStart {
            ae_title: "PYLANTIR_AE".into(),
        },
        ..ServeOpts::synced()
    };
    let serve = Serve::start(&config, &db, &opts);
    // The AE title of --AEtitle is the one consoles call.
    assert!(echoscu(serve.port, "CONSOLE", "PYLANTIR_AE").success());
    let found = findscu(
        serve.port,
        &["PatientID", "AccessionNumber"],
        &["-aec", "PYLANTIR_AE"],
    );
    found.assert_success();
    assert_eq!(found.patient_ids(), ["SUB001"]);
    assert!(!echoscu(serve.port, "CONSOLE", "MWLBRIDGE").success());
}

#[test]
fn start_without_port_listens_where_pylantir_would() {
    let out = run(&["start", "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let help = stdout(&out);
    for flag in [
        "--ip",
        "--port",
        "--AEtitle",
        "--pylantir_config",
        "[default: 4242]",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn a_taken_admin_port_nobody_configured_leaves_dicom_running() {
    // Pylantir JSONs have no admin section, so the admin interface takes its default
    // 127.0.0.1:8080; hold that port (if another process holds it, it is taken anyway).
    let _holder = TcpListener::bind(("127.0.0.1", 8080)).ok();
    let rt = runtime();
    let fake = one_booking(&rt);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    let config = pylantir_json(dir.path(), &fake.base_url(), &db, "");
    let serve = Serve::start(&config, &db, &ServeOpts::synced());
    assert!(echoscu(serve.port, "CONSOLE", "MWLBRIDGE").success());
    let log = serve.log();
    assert!(
        log.contains("cannot listen for the admin interface") && log.contains("127.0.0.1:8080"),
        "{log}"
    );
}

#[test]
fn an_admin_port_configured_explicitly_still_fails_fast() {
    let holder = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let port = holder.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    let config = pylantir_json(
        dir.path(),
        "http://127.0.0.1:9",
        &db,
        &format!(r#""admin": {{"bind": "127.0.0.1", "port": {port}}},"#),
    );
    let out = common::command(&[
        "serve",
        "--config",
        config.to_str().expect("utf-8"),
        "--port",
        &common::scp::free_port().to_string(),
        "--bind",
        "127.0.0.1",
    ])
    .env("CALPENDO_USERNAME", "u")
    .env("CALPENDO_PASSWORD", "p")
    .output()
    .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("127.0.0.1:{port}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn mwlbridge_sections_sit_beside_pylantir_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    let config = pylantir_json(
        dir.path(),
        "https://calpendo.example.org",
        &db,
        r#""server": {"ae_title": "SITE_MWL", "allowed_calling_aets": ["MRI_3T"]},
  "admin": {"enabled": false},
  "store": {"retention_days": 7},
  "site": {"timezone": "America/Regina"},"#,
    );
    let out = check_config(&config);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("AE title SITE_MWL"), "{text}");
    assert!(text.contains("calling AE titles allowed: MRI_3T"), "{text}");
    assert!(text.contains("admin interface: off"), "{text}");
    assert!(text.contains("kept 7 days"), "{text}");
    assert!(text.contains("site time zone: America/Regina"), "{text}");
    assert!(text.contains(&db.display().to_string()), "{text}");

    // A key of mwlbridge's own sections is checked like in TOML; allowed_aet and
    // server.allowed_calling_aets together are one too many.
    let bad = pylantir_json(
        dir.path(),
        "https://calpendo.example.org",
        &db,
        r#""server": {"ae_titel": "X", "allowed_calling_aets": ["MRI_3T"]},
  "allowed_aet": ["CT"],"#,
    );
    let out = check_config(&bad);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("server.ae_titel"), "{err}");
    assert!(
        err.contains("allowed_aet: server.allowed_calling_aets is set too"),
        "{err}"
    );
}

/// A Pylantir legacy `site` (a site id, not a table) is not mistaken for mwlbridge's
/// `site` section.
#[test]
fn pylantir_legacy_site_id_is_not_the_site_section() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    let config = pylantir_json(
        dir.path(),
        "https://calpendo.example.org",
        &db,
        r#""site": "792","#,
    );
    let out = check_config(&config);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("site time zone: America/Edmonton"),
        "{}",
        stdout(&out)
    );
}

/// Pylantir's default database lives in a directory that may not exist yet
/// (`~/Desktop/worklist.db`): `check-config` says it will be created, `serve` creates it
/// (0750) and the database is not readable by other users.
#[test]
fn a_missing_database_directory_is_created_and_the_file_kept_private() {
    use std::os::unix::fs::PermissionsExt;
    let rt = runtime();
    let fake = one_booking(&rt);
    let dir = tempfile::tempdir().expect("tempdir");
    let db_dir = dir.path().join("Desktop").join("mwl");
    let db = db_dir.join("worklist.db");
    let config = pylantir_json(dir.path(), &fake.base_url(), &db, "");
    let out = check_config(&config);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "created at first start, with {}",
            db_dir.display()
        )),
        "{text}"
    );
    assert!(!db_dir.exists(), "check-config changes nothing");

    let serve = Serve::start(&config, &db, &ServeOpts::synced());
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&db_dir), 0o750);
    assert_eq!(mode(&db) & 0o007, 0, "database mode {:o}", mode(&db));
    assert_eq!(
        findscu(serve.port, &["PatientID"], &[]).patient_ids(),
        ["SUB001"]
    );
}
