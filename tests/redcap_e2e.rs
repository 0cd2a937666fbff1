//! REDCap sources end to end: the real `mwlbridge serve` syncing from the fake REDCap over
//! real HTTP, queried with DCMTK's `findscu`. Pylantir's REDCap configs (its current
//! `data_sources` form and its legacy `redcap2wl` form) are used as Pylantir documents
//! them, and a site running REDCap beside Calpendo gets both.

mod common;

use std::path::{Path, PathBuf};

use common::harness::{json_lines, level, runtime, start_fake};
use common::scp::{findscu, sps_item, text};
use common::serve::{Serve, ServeOpts};
use common::{booking, today};
use dicom_dictionary_std::tags;
use redcap_fake::{FakeConfig, FakeRedcap, Fault, FaultScope, SAMPLE_FIXTURE, load_fixture};
use worklist_store::{Store, SyncOutcome};

/// Pylantir's example `redcap2wl` (`config_example_with_cors.json`), as JSON text.
const PYLANTIR_MAPPING: &str = r#"{
    "study_id": "study_id", "family_id": "family_id", "youth_dob_y": "youth_dob_y",
    "t1_date": "t1_date", "demo_sex": "demo_sex",
    "scheduled_date": "scheduled_start_date", "scheduled_time": "scheduled_start_time",
    "mri_wt_lbs": "patient_weight_lb", "referring_physician": "referring_physician_name",
    "performing_physician": "performing_physician", "station_name": "station_name",
    "status": "performed_procedure_step_status"
}"#;

/// Subjects of the sample day scheduled today (Pylantir's own IDs for them).
const TODAY: [&str; 6] = [
    "sub_FAKE101_ses_1_fam_FAKE01_site_792",
    "sub_FAKE102_ses_1_fam_FAKE01_site_792",
    "sub_FAKE103_ses_2_fam_FAKE03_site_792",
    "sub_FAKE105_ses_1_fam_FAKE05_site_792",
    "sub_ng_FAKE104_ses_1_fam_FAKE04_site_792",
    "sub_ng_FAKE111_ses_1_fam_FAKE11_site_792",
];
/// Those of tomorrow and the day after.
const NEXT_TWO_DAYS: [&str; 2] = [
    "sub_FAKE107_ses_1_fam_FAKE07_site_792",
    "sub_FAKE108_ses_1_fam_FAKE08_site_792",
];

fn fake_redcap(rt: &tokio::runtime::Runtime) -> FakeRedcap {
    rt.block_on(async {
        let fake = FakeRedcap::start(FakeConfig::default())
            .await
            .expect("fake REDCap starts");
        fake.set_records(load_fixture(SAMPLE_FIXTURE, today()).expect("fixture loads"));
        fake
    })
}

/// The serve options with the fake's REDCap credentials in the environment.
fn opts(fake: &FakeRedcap) -> ServeOpts {
    ServeOpts {
        env: vec![
            ("REDCAP_API_URL".into(), fake.api_url()),
            ("REDCAP_API_TOKEN".into(), fake.token().to_string()),
        ],
        ..ServeOpts::synced()
    }
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("pylantir.json");
    std::fs::write(&path, text).expect("write the config");
    path
}

/// Every offered PatientID, sorted.
fn patient_ids(port: u16) -> Vec<String> {
    let mut ids = findscu(port, &["PatientID"], &[]).patient_ids();
    ids.sort();
    ids
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn pylantir_redcap_config_serves_its_visits_as_pylantir_names_them() {
    let rt = runtime();
    let fake = fake_redcap(&rt);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    let config = write(
        dir.path(),
        &format!(
            r#"{{
  "db_path": "{db}",
  "db_update_interval": 60,
  "allowed_aet": [],
  "data_sources": [
    {{
      "name": "main_redcap",
      "type": "redcap",
      "enabled": true,
      "sync_interval": 60,
      "operation_interval": {{"start_time": [0, 0], "end_time": [23, 59]}},
      "config": {{"site_id": "792", "protocol": {{"792": "BRAIN_MRI_3T"}}, "mwl_days_ahead": 2}},
      "field_mapping": {PYLANTIR_MAPPING}
    }}
  ]
}}"#,
            db = db.display()
        ),
    );
    let serve = Serve::start(&config, &db, &opts(&fake));
    let mut expected: Vec<&str> = TODAY.to_vec();
    expected.extend(NEXT_TWO_DAYS);
    assert_eq!(patient_ids(serve.port), sorted(&expected));

    // One visit, attribute by attribute: the name template, DICOM date and time, the
    // weight in kilograms (92.4 lb), the protocol as the step description.
    let r = findscu(
        serve.port,
        &[
            "PatientID=sub_FAKE101_ses_1_fam_FAKE01_site_792",
            "PatientName",
            "PatientWeight",
            "ReferringPhysicianName",
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate",
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime",
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription",
            "ScheduledProcedureStepSequence[0].ScheduledStationName",
            "ScheduledProcedureStepSequence[0].Modality",
            "ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence",
        ],
        &[],
    );
    let item = r.by_patient_id("sub_FAKE101_ses_1_fam_FAKE01_site_792");
    assert_eq!(text(item, tags::PATIENT_NAME), "cpip-id-FAKE101^fa-FAKE01");
    assert_eq!(text(item, tags::PATIENT_WEIGHT), "41.91");
    assert_eq!(
        text(item, tags::REFERRING_PHYSICIAN_NAME),
        "Fake^Referrer^A"
    );
    let sps = sps_item(item);
    assert_eq!(
        text(sps, tags::SCHEDULED_PROCEDURE_STEP_START_DATE),
        today().strftime("%Y%m%d").to_string()
    );
    assert_eq!(
        text(sps, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
        "080000"
    );
    assert_eq!(
        text(sps, tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION),
        "BRAIN_MRI_3T"
    );
    assert_eq!(text(sps, tags::SCHEDULED_STATION_NAME), "FAKE_MR1");
    assert_eq!(text(sps, tags::MODALITY), "MR");
    // The protocol as the Scheduled Protocol Code Sequence too, as Pylantir sends it,
    // under the default local coding scheme (no hisris_coding_designator mapped).
    let code = &sps
        .get(tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE)
        .and_then(|e| e.items())
        .expect("the protocol code sequence")[0];
    assert_eq!(text(code, tags::CODE_VALUE), "BRAIN_MRI_3T");
    assert_eq!(text(code, tags::CODING_SCHEME_DESIGNATOR), "99MWLBRIDGE");
    assert_eq!(text(code, tags::CODE_MEANING), "BRAIN_MRI_3T");

    // Nothing of a subject and no token in the log at INFO or above.
    let log = serve.log();
    for line in json_or_text_lines(&log) {
        for secret in [fake.token(), "FAKE101", "cpip-id", "Fake^Referrer"] {
            assert!(!line.contains(secret), "{secret:?} logged: {line}");
        }
    }
}

/// The log's lines at INFO or above (text logs: every line but DEBUG and TRACE).
fn json_or_text_lines(log: &str) -> Vec<String> {
    let json = json_lines(log);
    if !json.is_empty() {
        return json
            .iter()
            .filter(|l| matches!(level(l), "INFO" | "WARN" | "ERROR"))
            .map(|l| l.to_string())
            .collect();
    }
    log.lines()
        .filter(|l| !l.contains(" DEBUG ") && !l.contains(" TRACE "))
        .map(str::to_string)
        .collect()
}

#[test]
fn pylantir_legacy_redcap2wl_config_is_one_redcap_source() {
    let rt = runtime();
    let fake = fake_redcap(&rt);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    // The shape of Pylantir's config_example_with_cors.json: no data_sources.
    let config = write(
        dir.path(),
        &format!(
            r#"{{
  "db_path": "{db}",
  "db_echo": "False",
  "db_update_interval": 60,
  "operation_interval": {{"start_time": [0, 0], "end_time": [23, 59]}},
  "allowed_aet": [],
  "mri_visit_session_mapping": {{"t1_arm_1": "1", "t2_arm_1": "2"}},
  "site": "792",
  "redcap2wl": {PYLANTIR_MAPPING},
  "protocol": {{"792": "BRAIN_MRI_3T"}}
}}"#,
            db = db.display()
        ),
    );
    let check = common::command(&["check-config", "--config", config.to_str().expect("utf-8")])
        .env("REDCAP_API_URL", fake.api_url())
        .env("REDCAP_API_TOKEN", fake.token())
        .output()
        .expect("runs");
    let out = common::stdout(&check);
    assert_eq!(check.status.code(), Some(0), "{}", common::stderr(&check));
    assert!(
        out.contains(
            "source \"redcap_legacy\": redcap, enabled (Pylantir's legacy redcap2wl form)"
        ),
        "{out}"
    );
    let serve = Serve::start(&config, &db, &opts(&fake));
    assert_eq!(patient_ids(serve.port), sorted(&TODAY), "mwl_days_ahead 0");
}

#[test]
fn a_legacy_config_with_a_mistake_names_the_key_it_was_written_under() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(
        dir.path(),
        r#"{"site": "792", "redcap2wl": {"study_id": ["not", "a", "column"]}}"#,
    );
    let out = common::command(&["check-config", "--config", config.to_str().expect("utf-8")])
        .env_remove("REDCAP_API_TOKEN")
        .env("REDCAP_API_URL", "http://127.0.0.1:9/api/")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(err.contains("redcap2wl.study_id"), "{err}");
    assert!(err.contains("REDCAP_API_TOKEN"), "{err}");
}

#[test]
fn redcap_and_calpendo_sources_run_side_by_side() {
    let rt = runtime();
    let fake = fake_redcap(&rt);
    let calpendo = start_fake(
        &rt,
        "secret",
        vec![booking(1, "SUB001_Doe", "3T Diagnostic", 9)],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    let config = write(
        dir.path(),
        &format!(
            r#"{{
  "db_path": "{db}",
  "data_sources": [
    {{"name": "cpip", "type": "redcap", "enabled": true,
      "config": {{"site": "792", "protocol": {{"792": "BRAIN_MRI_3T"}}}},
      "field_mapping": {PYLANTIR_MAPPING}}},
    {{"name": "scanners", "type": "calpendo", "enabled": true,
      "config": {{"base_url": "{base}", "resources": ["3T"], "timezone": "America/Edmonton",
                 "resource_modality_mapping": {{"3T": "MR"}}}}}}
  ]
}}"#,
            db = db.display(),
            base = calpendo.base_url()
        ),
    );
    let serve = Serve::start(&config, &db, &opts(&fake));
    // Both first cycles are recorded before the test reads the worklist.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ids = patient_ids(serve.port);
        if ids.len() == TODAY.len() + 1 {
            let mut expected: Vec<&str> = TODAY.to_vec();
            expected.push("SUB001");
            assert_eq!(ids, sorted(&expected));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{ids:?}\n{}",
            serve.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The `sync cycle done` lines of a JSON log: (mode, discontinued).
fn cycles(log: &str) -> Vec<(String, u64)> {
    json_lines(log)
        .iter()
        .filter(|l| l["message"] == "sync cycle done")
        .map(|l| {
            (
                l["mode"].as_str().unwrap_or_default().to_string(),
                l["discontinued"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// Waits (at most 30 s) until `done` holds for the log; panics with the log otherwise.
fn wait_for(serve: &Serve, what: &str, done: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done(&serve.log()) {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not happen:\n{}",
            serve.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn an_edit_keeps_the_uid_and_a_deleted_visit_leaves_at_the_next_complete_export() {
    let rt = runtime();
    let fake = fake_redcap(&rt);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    let config = write(
        dir.path(),
        &format!(
            r#"{{
  "db_path": "{db}",
  "data_sources": [
    {{"name": "cpip", "type": "redcap", "enabled": true, "sync_interval": 1,
      "config": {{"site": "792", "protocol": {{"792": "BRAIN_MRI_3T"}}, "full_refresh": 5}},
      "field_mapping": {PYLANTIR_MAPPING}}}
  ]
}}"#,
            db = db.display()
        ),
    );
    let serve = Serve::start(
        &config,
        &db,
        &ServeOpts {
            json: true,
            ..opts(&fake)
        },
    );
    let uid_and_station = |id: &str| {
        let r = findscu(
            serve.port,
            &[
                &format!("PatientID={id}"),
                "StudyInstanceUID",
                "ScheduledProcedureStepSequence[0].ScheduledStationName",
            ],
            &[],
        );
        let item = r.by_patient_id(id);
        (
            text(item, tags::STUDY_INSTANCE_UID),
            text(sps_item(item), tags::SCHEDULED_STATION_NAME),
        )
    };
    let edited = "sub_FAKE101_ses_1_fam_FAKE01_site_792";
    let (uid, station) = uid_and_station(edited);
    assert_eq!(station, "FAKE_MR1");

    // An edit reaches the console through an incremental cycle, on the same study.
    assert!(fake.set_instance_field("101", "mri", 1, "station_name", "FAKE_MR2"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while uid_and_station(edited).1 != "FAKE_MR2" {
        assert!(std::time::Instant::now() < deadline, "{}", serve.log());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(
        uid_and_station(edited).0,
        uid,
        "the StudyInstanceUID is stable"
    );

    // Delete a visit just after a complete cycle: the incremental cycles that follow do
    // not take it as gone; the next complete one discontinues it.
    let complete = |log: &str| cycles(log).iter().filter(|(m, _)| m == "complete").count();
    let seen = complete(&serve.log());
    wait_for(&serve, "a complete cycle", |log| complete(log) > seen);
    assert!(fake.remove_instance("102", "mri", 1));
    let before = cycles(&serve.log()).len();
    wait_for(&serve, "the next complete cycle", |log| {
        complete(log) > seen + 1
    });
    let after: Vec<(String, u64)> = cycles(&serve.log()).split_off(before);
    let first_complete = after
        .iter()
        .position(|(m, _)| m == "complete")
        .expect("a complete cycle");
    assert!(
        first_complete >= 1,
        "an incremental cycle ran first: {after:?}"
    );
    assert!(
        after[..first_complete].iter().all(|(_, d)| *d == 0),
        "an incremental cycle discontinued: {after:?}"
    );
    assert_eq!(after[first_complete].1, 1, "{after:?}");
    let mut expected: Vec<&str> = TODAY.to_vec();
    expected.retain(|id| !id.contains("FAKE102"));
    assert_eq!(patient_ids(serve.port), sorted(&expected));
}

/// The number of sync runs recorded, and the newest one's outcome and error.
fn runs(db: &Path) -> (usize, Option<(SyncOutcome, Option<String>)>) {
    let runs = Store::open(db)
        .and_then(|s| s.recent_sync_runs(None, 1000))
        .unwrap_or_default();
    let newest = runs.first().map(|r| (r.outcome, r.error.clone()));
    (runs.len(), newest)
}

/// Waits (at most 30 s) for a run recorded after the first `after` with `outcome`; its
/// error.
fn next_run(serve: &Serve, db: &Path, after: usize, outcome: SyncOutcome) -> Option<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let (n, Some((o, error))) = runs(db)
            && n > after
            && o == outcome
        {
            return error;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {outcome:?} run:\n{}",
            serve.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// REDCap answering 500, invalid JSON, nothing at all, or refusing the token: the cycle
/// fails with the cause, the worklist stays as it was, and the next cycle after the fault
/// recovers, without a restart. The token never shows in the log.
#[test]
fn a_failing_redcap_leaves_the_worklist_and_the_next_cycle_recovers() {
    let rt = runtime();
    let fake = fake_redcap(&rt);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    let config = write(
        dir.path(),
        &format!(
            r#"{{
  "db_path": "{db}",
  "data_sources": [
    {{"name": "cpip", "type": "redcap", "enabled": true, "sync_interval": 1,
      "config": {{"site": "792", "protocol": {{"792": "BRAIN_MRI_3T"}}, "full_refresh": 0,
                 "max_retries": 0, "request_timeout": 1, "sync_deadline": 3}},
      "field_mapping": {PYLANTIR_MAPPING}}}
  ]
}}"#,
            db = db.display()
        ),
    );
    let serve = Serve::start(&config, &db, &opts(&fake));
    let offered = patient_ids(serve.port);
    assert_eq!(offered, sorted(&TODAY));
    for (fault, cause) in [
        (Fault::Status(500), "500"),
        (Fault::InvalidJson, "JSON"),
        (Fault::Hang, "timed out"),
        (Fault::Status(401), "401"),
    ] {
        fake.set_fault(fault.clone(), FaultScope::Record);
        let (seen, _) = runs(&db);
        let error = next_run(&serve, &db, seen, SyncOutcome::Failed).unwrap_or_default();
        assert!(error.contains(cause), "{fault:?}: {error}");
        assert_eq!(
            patient_ids(serve.port),
            offered,
            "{fault:?} changed the worklist"
        );
        fake.clear_fault();
        let (seen, _) = runs(&db);
        next_run(&serve, &db, seen, SyncOutcome::Success);
        assert_eq!(patient_ids(serve.port), offered);
    }
    assert!(!serve.log().contains(fake.token()), "the token was logged");
}

/// Pylantir 0.4.6's README example of the `data_sources` form, word for word but for the
/// two database paths. Its `field_mapping` has pairs the wrong way round
/// (`"session_id": "mri_instance"`, ...), which Pylantir asks for and drops: they are
/// warnings here, and the visits are served as Pylantir serves them.
const PYLANTIR_README_REDCAP: &str = r#"{
  "db_path": "DB_PATH",
  "users_db_path": "USERS_DB_PATH",
  "db_echo": "False",
  "allowed_aet": [],
  "data_sources": [
    {
      "name": "main_redcap",
      "type": "redcap",
      "enabled": true,
      "sync_interval": 60,
      "operation_interval": {
        "start_time": [0, 0],
        "end_time": [23, 59]
      },
      "config": {
        "site": "792",
        "protocol": "BRAIN_MRI_3T"
      },
      "field_mapping": {
        "study_id": "study_id",
        "instrument": "redcap_repeat_instrument",
        "session_id": "mri_instance",
        "family_id": "family_id",
        "youth_dob_y": "youth_dob_y",
        "t1_date": "t1_date",
        "demo_sex": "demo_sex",
        "scheduled_date": "mri_date",
        "scheduled_time": "mri_time",
        "mri_wt_lbs": "patient_weight_lb",
        "referring_physician": "referring_physician_name",
        "performing_physician": "performing_physician",
        "station_name": "station_name",
        "status": "performed_procedure_step_status"
      }
    }
  ],
  "protocol": {
    "792": "BRAIN_MRI_3T",
    "mapping": "GEHC"
  }
}
"#;

#[test]
fn pylantir_readme_redcap_config_works_as_written() {
    let rt = runtime();
    let fake = fake_redcap(&rt);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    let config = write(
        dir.path(),
        &PYLANTIR_README_REDCAP
            .replace(
                "USERS_DB_PATH",
                &dir.path().join("users.db").display().to_string(),
            )
            .replace("DB_PATH", &db.display().to_string()),
    );
    let run = |args: &[&str]| {
        common::command(args)
            .env("REDCAP_API_URL", fake.api_url())
            .env("REDCAP_API_TOKEN", fake.token())
            .output()
            .expect("mwlbridge runs")
    };
    let path = config.to_str().expect("utf-8");
    let check = run(&["check-config", "--config", path]);
    let said = format!("{}{}", common::stdout(&check), common::stderr(&check));
    assert_eq!(check.status.code(), Some(0), "{said}");
    assert!(
        said.contains("field_mapping.session_id") && said.contains("fills nothing"),
        "the reversed pairs are named: {said}"
    );
    let sync = run(&["sync", "--once", "--config", path]);
    assert_eq!(sync.status.code(), Some(0), "{}", common::stderr(&sync));

    let serve = Serve::start(&config, &db, &opts(&fake));
    assert_eq!(
        patient_ids(serve.port),
        sorted(&TODAY),
        "mwl_days_ahead 0: today"
    );
    let r = findscu(
        serve.port,
        &[
            "PatientID=sub_FAKE101_ses_1_fam_FAKE01_site_792",
            "PatientName",
            "PatientWeight",
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime",
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription",
            "ScheduledProcedureStepSequence[0].ScheduledStationName",
        ],
        &[],
    );
    let item = r.by_patient_id("sub_FAKE101_ses_1_fam_FAKE01_site_792");
    assert_eq!(text(item, tags::PATIENT_NAME), "cpip-id-FAKE101^fa-FAKE01");
    assert_eq!(text(item, tags::PATIENT_WEIGHT), "41.91");
    let sps = sps_item(item);
    assert_eq!(
        text(sps, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
        "080000"
    );
    assert_eq!(
        text(sps, tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION),
        "BRAIN_MRI_3T"
    );
    assert_eq!(text(sps, tags::SCHEDULED_STATION_NAME), "FAKE_MR1");

    // Record 109's visit has no time yet: skipped, as Pylantir skips it, with a WARN that
    // names the record id and the field, and nothing of the subject.
    let log = serve.log();
    let skipped: Vec<String> = json_or_text_lines(&log)
        .into_iter()
        .filter(|l| l.contains("visit skipped"))
        .collect();
    assert_eq!(skipped.len(), 1, "{log}");
    assert!(
        skipped[0].contains("WARN")
            && skipped[0].contains("109")
            && skipped[0].contains("mri_time"),
        "{}",
        skipped[0]
    );
    assert!(!skipped[0].contains("FAKE109"), "{}", skipped[0]);
}
