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

/// Pylantir's table with rows as Pylantir writes them: a booking its MPPS completed
/// (kept with its booking id), a row of an older Pylantir without one, a walk-in added
/// through its API, and a row whose date reads in no form.
fn pylantir_database(db: &Path) {
    let today = common::today();
    let (dicom, iso) = (today.strftime("%Y%m%d"), today.strftime("%Y-%m-%d"));
    let conn = rusqlite::Connection::open(db).expect("create Pylantir's database");
    conn.execute_batch(&format!(
        "CREATE TABLE worklist_items (
             id INTEGER NOT NULL, study_instance_uid VARCHAR(100), patient_name VARCHAR(100),
             patient_id VARCHAR(50), patient_birth_date VARCHAR(8), patient_sex VARCHAR(1),
             patient_weight_lb VARCHAR(10), accession_number VARCHAR(50),
             referring_physician_name VARCHAR(100), modality VARCHAR(10),
             study_description VARCHAR(100), scheduled_station_aetitle VARCHAR(100),
             scheduled_start_date VARCHAR(8), scheduled_start_time VARCHAR(6),
             performing_physician VARCHAR(100), procedure_description VARCHAR(200),
             protocol_name VARCHAR(100), station_name VARCHAR(100),
             hisris_coding_designator VARCHAR(100), performed_procedure_step_status VARCHAR,
             data_source VARCHAR(255), source_record_id VARCHAR(255), PRIMARY KEY (id),
             CONSTRAINT uq_worklist_source_record UNIQUE (data_source, source_record_id));
         INSERT INTO worklist_items (id, patient_id, patient_name, scheduled_start_date,
             scheduled_start_time, modality, performed_procedure_step_status, data_source,
             source_record_id)
         VALUES
             (1, 'SUB001', 'Doe^Jane', '{iso}', '09:00', 'MR', 'COMPLETED', 'calpendo', '1'),
             (2, 'SUB002', 'Roe^Rick', '{iso}', '11:00', 'MR', 'SCHEDULED', 'calpendo', NULL),
             (3, 'WALKIN01', 'Walk^In', '{dicom}', '143000', NULL, 'SCHEDULED', NULL, NULL),
             (4, 'SUB004', NULL, 'next week', '10:00', 'MR', 'SCHEDULED', NULL, NULL);"
    ))
    .expect("Pylantir's rows");
}

fn with_credentials(args: &[&str]) -> Output {
    common::command(args)
        .env("CALPENDO_USERNAME", common::serve::USER)
        .env("CALPENDO_PASSWORD", "secret")
        .output()
        .expect("runs")
}

/// Pylantir's database, imported: every row with a home lands once, the booking Pylantir
/// linked stays COMPLETED, the row without a booking id is taken over by its booking at
/// the next sync (no twin), the API's walk-in is a manual entry; until then every
/// command says what to run.
#[test]
fn a_pylantir_database_is_imported_once_and_synced_without_twins() {
    let rt = runtime();
    let fake = start_fake(
        &rt,
        "secret",
        vec![
            booking(1, "SUB001_Doe", "3T Diagnostic", 9),
            booking(2, "SUB002_Roe", "3T Diagnostic", 11),
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    pylantir_database(&db);
    let config = pylantir_json(dir.path(), &fake.base_url(), &db, "");
    let c = config.to_str().expect("utf-8");

    let checked = check_config(&config);
    assert!(
        stdout(&checked).contains("holds 4 Pylantir worklist rows")
            && stdout(&checked).contains("mwlbridge import-pylantir --config"),
        "{}",
        stdout(&checked)
    );

    let imported = run(&["import-pylantir", "--config", c]);
    assert_eq!(imported.status.code(), Some(0), "{}", stderr(&imported));
    let text = stdout(&imported);
    assert!(
        text.contains("3 imported, 0 already in the worklist"),
        "{text}"
    );
    assert!(
        text.contains("1 skipped") && text.contains("row 4 skipped"),
        "{text}"
    );
    assert!(
        !text.contains("SUB00") && !text.contains("Doe"),
        "no subject data: {text}"
    );

    let again = run(&["import-pylantir", "--config", c]);
    assert!(
        stdout(&again).contains(": 0 imported,") && stdout(&again).contains("4 imported before"),
        "{}",
        stdout(&again)
    );
    assert!(!stdout(&check_config(&config)).contains("Pylantir worklist rows"));

    let synced = with_credentials(&["sync", "--once", "--config", c]);
    assert_eq!(synced.status.code(), Some(0), "{}", stderr(&synced));
    let store = worklist_store::Store::open(&db).expect("open");
    let all = store
        .list(&worklist_store::EntryFilter::default())
        .expect("list");
    let mut ids: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|s| {
            (
                s.entry.patient_id.as_str(),
                s.entry.source_record_id.as_str(),
                s.entry.status.as_dicom(),
            )
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            ("SUB001", "1", "COMPLETED"),
            ("SUB002", "2", "SCHEDULED"),
            ("WALKIN01", "pylantir-3", "SCHEDULED"),
        ],
        "one entry per row, no twins"
    );
    drop(store);

    let serve = Serve::start(&config, &db, &ServeOpts::synced());
    let mut offered = findscu(serve.port, &["PatientID"], &[]).patient_ids();
    offered.sort();
    assert_eq!(
        offered,
        ["SUB002", "WALKIN01"],
        "the completed booking stays done"
    );
}
