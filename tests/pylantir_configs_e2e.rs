//! Pylantir 0.4.6's own example configs, as its package ships them and as its README
//! prints them (`tests/fixtures/pylantir-0.4.6/`, see its README.md), used with
//! mwlbridge unmodified but for the database paths and the Calpendo URL: each through
//! `check-config`, `sync --once` against the fakes, and Pylantir's own command line
//! (`mwlbridge start --ip --port --AEtitle --pylantir_config`) queried with DCMTK's
//! `findscu`, then stopped with SIGTERM (issue 13).
//!
//! Beside them, the smaller promises of the switch: `start --help`, config warnings in
//! the logs, an unwritable database named by `check-config`, and the reminder to import
//! an existing Pylantir database.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use calpendo_fake::FakeBooking;
use common::harness::{runtime, start_fake};
use common::scp::{FindResult, findscu, sps_item, text, with_status};
use common::serve::{Launch, Serve, ServeOpts, USER, Until};
use common::{booking, stderr, stdout, today};
use dicom_dictionary_std::tags;
use redcap_fake::{FakeConfig, FakeRedcap, SAMPLE_FIXTURE, load_fixture};
use serde_json::Value;
use worklist_store::{EntryFilter, Store};

/// Where the fixtures are.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pylantir-0.4.6");

/// The AE title given with `--AEtitle`.
const AE_TITLE: &str = "PYLANTIR_MWL";

/// The calling AE title of the queries: one of `allowed_aet` in
/// `calpendo_config_example.json` (the other configs allow every AE title).
const CALLING: &str = "MRI_SCANNER";

/// The Calpendo password of the fake (the user is [`USER`]).
const PASSWORD: &str = "secret";

/// The database paths of the fixtures (values of `db_path` / `users_db_path`).
const DB_PATHS: [&str; 2] = ["/path/to/worklist.db", "~/Desktop/worklist.db"];
const USERS_DB_PATH: &str = "/path/to/users.db";
/// The Calpendo URLs of the fixtures (values of `base_url`).
const CALPENDO_URLS: [&str; 2] = [
    "https://sfc-calgary.calpendo.com",
    "https://your-institution.calpendo.com",
];

/// The README's "Full Configuration with All Options" is one `data_sources` entry, not a
/// whole config: it is used as the one entry of a config that has only a `db_path`.
const DATA_SOURCE_ONLY: &str = "readme_calpendo_full.json";

/// The fixture's text, as shipped.
fn fixture(file: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(file))
        .unwrap_or_else(|e| panic!("fixture {file}: {e}"))
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// The fixture `file` with its database paths and Calpendo URL replaced (in memory, as
/// text: nothing else changes, which is checked), written to `dir/file`. The database is
/// `dir/worklist.db`.
fn materialize(file: &str, dir: &Path, calpendo_url: &str) -> PathBuf {
    let original = fixture(file);
    let db = dir.join("worklist.db");
    let mut text = if file == DATA_SOURCE_ONLY {
        format!(
            "{{\"db_path\": {}, \"data_sources\": [\n{original}]}}\n",
            json_str(&db.display().to_string())
        )
    } else {
        original.clone()
    };
    for path in DB_PATHS {
        text = text.replace(&json_str(path), &json_str(&db.display().to_string()));
    }
    text = text.replace(
        &json_str(USERS_DB_PATH),
        &json_str(&dir.join("users.db").display().to_string()),
    );
    for url in CALPENDO_URLS {
        text = text.replace(&json_str(url), &json_str(calpendo_url));
    }
    assert_only_paths_and_urls_changed(file, &original, &text, &db, calpendo_url);
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write the config");
    path
}

/// Panics unless `changed` is `original` but for `db_path` (now `db`), `users_db_path`
/// and every Calpendo `base_url` (now `calpendo_url`).
fn assert_only_paths_and_urls_changed(
    file: &str,
    original: &str,
    changed: &str,
    db: &Path,
    calpendo_url: &str,
) {
    let original: Value = serde_json::from_str(original).expect("the fixture is JSON");
    let mut changed: Value = serde_json::from_str(changed).expect("the config is JSON");
    assert_eq!(changed["db_path"], db.display().to_string(), "{file}");
    if file == DATA_SOURCE_ONLY {
        let Value::Array(sources) = changed["data_sources"].take() else {
            panic!("{file}: data_sources");
        };
        let [source] = <[Value; 1]>::try_from(sources).expect("one entry");
        changed = source;
    } else {
        changed["db_path"] = original["db_path"].clone();
    }
    if let Some(users) = original.get("users_db_path") {
        let ours = db.with_file_name("users.db").display().to_string();
        assert_eq!(changed["users_db_path"], ours, "{file}");
        changed["users_db_path"] = users.clone();
    }
    restore_base_urls(&mut changed, &original, calpendo_url, file);
    assert_eq!(changed, original, "{file}: only paths and URLs change");
}

/// Sets back every Calpendo `config.base_url` of `changed` (a config or one data source)
/// to `original`'s, after checking it is `calpendo_url`.
fn restore_base_urls(changed: &mut Value, original: &Value, calpendo_url: &str, file: &str) {
    let pairs: Vec<(&mut Value, &Value)> = match (changed.get_mut("data_sources"), original) {
        (Some(Value::Array(c)), o) => c
            .iter_mut()
            .zip(o["data_sources"].as_array().expect("data_sources").iter())
            .collect(),
        (None, o) if o.get("type").is_some() => vec![(changed, o)],
        _ => Vec::new(),
    };
    for (c, o) in pairs {
        if o["type"] == "calpendo" {
            assert_eq!(c["config"]["base_url"], calpendo_url, "{file}");
            c["config"]["base_url"] = o["config"]["base_url"].clone();
        }
    }
}

/// The bookings of the fake Calpendo, today (site zone America/Edmonton, the configs'
/// `timezone` or Pylantir's default): the configs' two resources, a resource only the
/// full README config names, and a booking that is not Approved. The hours are inside
/// every window of these configs at any time of day: they have no `daily_window`, their
/// `operation_interval` is `[0,0]`–`[23,59]` (always), and the rolling window holds the
/// whole of today.
fn bookings() -> Vec<FakeBooking> {
    vec![
        booking(101, "SUB101_Doe_Jane", "3T Diagnostic", 9),
        booking(102, "SUB102_Roe_Rick", "EEG Lab", 10),
        booking(103, "SUB103_Mock_Max", "Mock Scanner", 11),
        with_status(
            booking(104, "SUB104_Pending_Pat", "3T Diagnostic", 12),
            "Pending",
        ),
    ]
}

/// The fake REDCap's visits of today (its sample day; 109's visit has no time and is
/// skipped, as Pylantir skips it): study id, family id, session, AccessionNumber
/// (record:instance), start time.
const REDCAP_TODAY: [(&str, &str, &str, &str, &str); 6] = [
    ("FAKE101", "FAKE01", "1", "101:1", "080000"),
    ("FAKE102", "FAKE01", "1", "102:1", "093000"),
    ("FAKE103", "FAKE03", "2", "103:2", "110000"),
    ("ng_FAKE104", "FAKE04", "1", "104:1", "130000"),
    ("FAKE105", "FAKE05", "1", "105:1", "143000"),
    ("ng_FAKE111", "FAKE11", "1", "111:1", "160000"),
];

/// The rows of today's REDCap visits for a source of `site` with `protocol`, named as
/// Pylantir names them (`sub_…_site_792`, `cpip-id-…^fa-…`).
fn redcap_rows(site: &str, protocol: &str) -> Vec<Row> {
    let date = today().strftime("%Y%m%d").to_string();
    REDCAP_TODAY
        .iter()
        .map(|(study, family, session, accession, time)| {
            [
                format!("sub_{study}_ses_{session}_fam_{family}_site_{site}"),
                format!("cpip-id-{study}^fa-{family}"),
                accession.to_string(),
                "MR".into(),
                date.clone(),
                time.to_string(),
                protocol.into(),
                String::new(),
            ]
        })
        .collect()
}

/// The row of a booking of [`bookings`]: the title's two parts as PatientID and
/// PatientName (the configs' `_extract` patterns), the booking id as AccessionNumber,
/// the project's name before its parenthesis as the descriptions.
fn calpendo_row(id: u32, name: &str, modality: &str, hour: u32) -> Row {
    [
        format!("SUB{id}"),
        name.into(),
        id.to_string(),
        modality.into(),
        today().strftime("%Y%m%d").to_string(),
        format!("{hour:02}0000"),
        "BRISKP".into(),
        "BRISKP".into(),
    ]
}

/// Both fakes of one test, on their own runtime.
struct Fakes {
    calpendo: calpendo_fake::FakeCalpendo,
    redcap: FakeRedcap,
    _rt: tokio::runtime::Runtime,
}

impl Fakes {
    fn start() -> Fakes {
        let rt = runtime();
        let calpendo = start_fake(&rt, PASSWORD, bookings());
        let redcap = rt.block_on(async {
            let fake = FakeRedcap::start(FakeConfig::default())
                .await
                .expect("fake REDCap starts");
            fake.set_records(load_fixture(SAMPLE_FIXTURE, today()).expect("fixture loads"));
            fake
        });
        Fakes {
            calpendo,
            redcap,
            _rt: rt,
        }
    }

    /// Both sources' credentials, as a Pylantir site sets them.
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("CALPENDO_USERNAME".into(), USER.into()),
            ("CALPENDO_PASSWORD".into(), PASSWORD.into()),
            ("REDCAP_API_URL".into(), self.redcap.api_url()),
            ("REDCAP_API_TOKEN".into(), self.redcap.token().into()),
        ]
    }

    /// Runs the binary with both sources' credentials.
    fn run(&self, args: &[&str]) -> Output {
        common::command(args)
            .envs(self.env())
            .output()
            .expect("mwlbridge runs")
    }
}

/// What one fixture must do.
struct Expect {
    /// The fixture's file name.
    file: &'static str,
    /// The sources `check-config` lists: (name, type); none: it warns that nothing runs.
    sources: &'static [(&'static str, &'static str)],
    /// The steps stored by `sync --once` and offered by `start`.
    rows: Vec<Row>,
}

/// The strings, sorted.
fn sorted<S: AsRef<str>>(ids: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut v: Vec<String> = ids.into_iter().map(|s| s.as_ref().to_string()).collect();
    v.sort();
    v
}

/// The PatientIDs of every stored entry, sorted.
fn stored_ids(db: &Path) -> Vec<String> {
    if !db.exists() {
        return Vec::new();
    }
    let store = Store::open(db).expect("open the store");
    sorted(
        store
            .list(&EntryFilter::default())
            .expect("list")
            .iter()
            .map(|s| s.entry.patient_id.clone()),
    )
}

/// The query of a console: our AE title, a calling AE title the configs allow.
fn query(port: u16, keys: &[&str]) -> FindResult {
    findscu(port, keys, &["-aet", CALLING, "-aec", AE_TITLE])
}

/// Waits until the offered PatientIDs are `expected` (every source's first cycle done);
/// panics with the log after 30 s.
fn wait_for_worklist(serve: &Serve, expected: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = query(serve.port, &["PatientID"]);
        found.assert_success();
        if found.patient_ids() == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "offered {:?}, expected {expected:?}:\n{}",
            found.patient_ids(),
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The whole path of one fixture: `check-config`, `sync --once`, then Pylantir's `start`
/// on a fresh database, queried with findscu and stopped with SIGTERM.
fn switch_over(expect: &Expect) {
    let fakes = Fakes::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = expect.file;
    let mut expected = expect.rows.clone();
    expected.sort();
    let patient_ids = sorted(expected.iter().map(|r| &r[0]));

    // (a) check-config lists every source it will run, or warns that none runs.
    let checked_dir = dir.path().join("check");
    std::fs::create_dir(&checked_dir).expect("mkdir");
    let config = materialize(file, &checked_dir, &fakes.calpendo.base_url());
    let c = config.to_str().expect("utf-8");
    let check = fakes.run(&["check-config", "--config", c]);
    let said = stdout(&check);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{file}: {said}{}",
        stderr(&check)
    );
    let listed: Vec<&str> = said
        .lines()
        .filter(|l| l.trim_start().starts_with("source \""))
        .collect();
    let wanted: Vec<String> = expect
        .sources
        .iter()
        .map(|(name, kind)| format!("source \"{name}\": {kind}, enabled"))
        .collect();
    assert_eq!(listed.len(), wanted.len(), "{file}: {said}");
    for w in &wanted {
        assert!(said.contains(w.as_str()), "{file}: {w:?} missing:\n{said}");
    }
    let first = said.lines().next().unwrap_or_default();
    assert!(first.contains("(Pylantir JSON)"), "{file}: {said}");
    if expect.sources.is_empty() {
        assert!(
            !first.contains(": OK") && first.contains("usable, with"),
            "{file}: no source runs, yet {first:?}"
        );
        assert!(
            said.contains("warning: data_sources: no enabled data source: nothing will be synced"),
            "{file}: {said}"
        );
    }

    // (b) sync --once against the fakes stores the entries.
    let synced = fakes.run(&["sync", "--once", "--config", c]);
    assert_eq!(
        synced.status.code(),
        Some(0),
        "{file}: {}{}",
        stdout(&synced),
        stderr(&synced)
    );
    assert_eq!(
        stored_ids(&checked_dir.join("worklist.db")),
        patient_ids,
        "{file}: stored by sync --once\n{}",
        stderr(&synced)
    );

    // (c) Pylantir's command line on a fresh database: the worklist as consoles see it.
    let served_dir = dir.path().join("start");
    std::fs::create_dir(&served_dir).expect("mkdir");
    let config = materialize(file, &served_dir, &fakes.calpendo.base_url());
    let db = served_dir.join("worklist.db");
    let opts = ServeOpts {
        launch: Launch::PylantirStart {
            ae_title: AE_TITLE.into(),
        },
        until: if expect.sources.is_empty() {
            Until::Listening
        } else {
            Until::Synced
        },
        password: PASSWORD.into(),
        env: fakes.env(),
        ..ServeOpts::synced()
    };
    let mut serve = Serve::start(&config, &db, &opts);
    wait_for_worklist(&serve, &patient_ids);
    let found = query(serve.port, &KEYS);
    found.assert_success();
    assert_eq!(rows(&found), expected, "{file}: the worklist");
    let log = serve.log();
    assert_eq!(serve.stop(), Some(0), "{file}: SIGTERM\n{log}");
}

/// What a console reads of one step: PatientID, PatientName, AccessionNumber, Modality,
/// step start date and time, step description, StudyDescription.
type Row = [String; 8];

/// The keys of [`Row`], and StudyInstanceUID.
const KEYS: [&str; 9] = [
    "PatientID",
    "PatientName",
    "AccessionNumber",
    "StudyInstanceUID",
    "StudyDescription",
    "ScheduledProcedureStepSequence[0].Modality",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription",
];

/// The [`Row`]s of a C-FIND of [`KEYS`], sorted; every StudyInstanceUID is a derived
/// `2.25.` UID (never a booking id or record id, whatever the config maps to it).
fn rows(found: &FindResult) -> Vec<Row> {
    let mut v: Vec<Row> = found
        .responses
        .iter()
        .map(|o| {
            let uid = text(o, tags::STUDY_INSTANCE_UID);
            assert!(uid.starts_with("2.25."), "StudyInstanceUID {uid}");
            let sps = sps_item(o);
            [
                text(o, tags::PATIENT_ID),
                text(o, tags::PATIENT_NAME),
                text(o, tags::ACCESSION_NUMBER),
                text(sps, tags::MODALITY),
                text(sps, tags::SCHEDULED_PROCEDURE_STEP_START_DATE),
                text(sps, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
                text(sps, tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION),
                text(o, tags::STUDY_DESCRIPTION),
            ]
        })
        .collect();
    v.sort();
    v
}

/// Pylantir's shipped Calpendo example: its two resources, Approved bookings only, the
/// resource → modality prefixes, its `allowed_aet` (the query comes from MRI_SCANNER).
#[test]
fn calpendo_config_example() {
    switch_over(&Expect {
        file: "calpendo_config_example.json",
        sources: &[("calpendo", "calpendo")],
        rows: vec![
            calpendo_row(101, "Doe_Jane", "MR", 9),
            calpendo_row(102, "Roe_Rick", "EEG", 10),
        ],
    });
}

/// The README's minimal Calpendo config: every status (the Pending booking too), no
/// modality mapping. Pylantir would send the resource name ("3T Diagnostic") as the
/// Modality; mwlbridge sends `OT` (other), as consoles such as GE's reject an item
/// without a modality (issue 16 point 4).
#[test]
fn readme_calpendo_minimal() {
    switch_over(&Expect {
        file: "readme_calpendo_minimal.json",
        sources: &[("calpendo_mri", "calpendo")],
        rows: vec![
            calpendo_row(101, "Doe_Jane", "OT", 9),
            calpendo_row(102, "Roe_Rick", "OT", 10),
            calpendo_row(104, "Pending_Pat", "OT", 12),
        ],
    });
}

/// The README's full Calpendo data source (the one entry of `data_sources`): three
/// resources, the mock scanner as OT, Approved only.
#[test]
fn readme_calpendo_full() {
    switch_over(&Expect {
        file: DATA_SOURCE_ONLY,
        sources: &[("calpendo_scanners", "calpendo")],
        rows: vec![
            calpendo_row(101, "Doe_Jane", "MR", 9),
            calpendo_row(102, "Roe_Rick", "EEG", 10),
            calpendo_row(103, "Mock_Max", "OT", 11),
        ],
    });
}

/// Pylantir's shipped `mwl_config.json`: `data_sources` is empty, which (as in Pylantir)
/// turns off the conversion of its legacy `redcap2wl`: no source runs, `check-config`
/// says so, and the server offers nothing.
#[test]
fn mwl_config() {
    switch_over(&Expect {
        file: "mwl_config.json",
        sources: &[],
        rows: Vec::new(),
    });
}

/// Pylantir's shipped `config_example_with_cors.json`: the legacy `redcap2wl` form, one
/// REDCap source `redcap_legacy` of site 792 with the site's protocol.
#[test]
fn config_example_with_cors() {
    switch_over(&Expect {
        file: "config_example_with_cors.json",
        sources: &[("redcap_legacy", "redcap")],
        rows: redcap_rows("792", "BRAIN_MRI_3T"),
    });
}

/// The README's "New Data Sources Format" REDCap example.
#[test]
fn readme_redcap_data_sources() {
    switch_over(&Expect {
        file: "readme_redcap_data_sources.json",
        sources: &[("main_redcap", "redcap")],
        rows: redcap_rows("792", "BRAIN_MRI_3T"),
    });
}

/// The README's "Multiple Data Sources Example": two REDCap sources (both read the
/// project of REDCAP_API_URL, as in Pylantir), each naming the visits with its own site
/// and protocol.
#[test]
fn readme_multiple_data_sources() {
    let mut rows = redcap_rows("792", "BRAIN_MRI_3T");
    rows.extend(redcap_rows("793", "CARDIAC_MRI"));
    switch_over(&Expect {
        file: "readme_multiple_data_sources.json",
        sources: &[("site_792_redcap", "redcap"), ("site_793_redcap", "redcap")],
        rows,
    });
}

/// The README's "Legacy Configuration Format" example (`redcap2wl` maps only two fields:
/// the visit's date and time are REDCap's `mri_date` / `mri_time`, as in Pylantir).
#[test]
fn readme_legacy() {
    switch_over(&Expect {
        file: "readme_legacy.json",
        sources: &[("redcap_legacy", "redcap")],
        rows: redcap_rows("792", "BRAIN_MRI_3T"),
    });
}

/// `start` exists for Pylantir's service units, and without `--port` it listens on
/// Pylantir's 4242.
#[test]
fn start_help_names_pylantir_and_port_4242() {
    let out = common::run(&["start", "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let help = stdout(&out);
    assert!(help.contains("Pylantir"), "{help}");
    let port = help
        .split_once("--port <PORT>")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no --port in:\n{help}"));
    let port = port.split("\n      --").next().unwrap_or_default();
    assert!(port.contains("[default: 4242]"), "--port:{port}");
}

/// The warning of `calpendo_config_example.json`'s `study_instance_uid` → `id` (dropped:
/// a booking id is no UID) once each: in `check-config`'s report, `sync --once`'s stderr
/// and `serve`'s log.
#[test]
fn a_config_warning_is_logged_once_by_sync_and_serve() {
    let fakes = Fakes::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = "calpendo_config_example.json";
    let config = materialize(file, dir.path(), &fakes.calpendo.base_url());
    let warning = "data_sources[0].config.field_mapping.study_instance_uid: a booking id is \
                   not a globally unique DICOM UID";

    let c = config.to_str().expect("utf-8");
    let checked = stdout(&fakes.run(&["check-config", "--config", c]));
    assert_eq!(
        checked.matches(warning).count(),
        1,
        "check-config:\n{checked}"
    );

    let synced = fakes.run(&["sync", "--once", "--config", c]);
    assert_eq!(synced.status.code(), Some(0), "{}", stderr(&synced));
    let err = stderr(&synced);
    assert_eq!(err.matches(warning).count(), 1, "sync --once:\n{err}");
    assert!(
        err.lines()
            .any(|l| l.contains(warning) && l.contains(" WARN ")),
        "{err}"
    );

    let db = dir.path().join("worklist.db");
    let serve = Serve::start(
        &config,
        &db,
        &ServeOpts {
            env: fakes.env(),
            password: PASSWORD.into(),
            ..ServeOpts::synced()
        },
    );
    let log = serve.log();
    assert_eq!(log.matches(warning).count(), 1, "serve:\n{log}");
    assert!(
        log.lines()
            .any(|l| l.contains(warning) && l.contains(" WARN ")),
        "{log}"
    );
}

/// `check-config` names a database file the user cannot write. Root writes any file, so
/// as root `check-config` runs as `nobody` (setpriv); without setpriv the assertion is
/// skipped as root.
#[test]
fn check_config_says_when_the_database_is_not_writable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = materialize("mwl_config.json", dir.path(), "http://127.0.0.1:9");
    let db = dir.path().join("worklist.db");
    std::fs::write(&db, b"").expect("create the database file");
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    mode(&db, 0o444);
    // Readable by `nobody` when run as root (the config and the directory).
    mode(dir.path(), 0o755);
    mode(&config, 0o644);
    let root = running_as_root();
    let mut cmd = if root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(common::bin());
        c
    } else {
        std::process::Command::new(common::bin())
    };
    cmd.args(["check-config", "--config", config.to_str().expect("utf-8")])
        .env_remove("MWLBRIDGE_CONFIG");
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if root => {
            eprintln!("skipped: running as root and setpriv does not run ({e})");
            return;
        }
        Err(e) => panic!("check-config: {e}"),
    };
    let said = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    assert!(
        said.contains(&format!(
            "warning: db_path: cannot write {}: Permission denied",
            db.display()
        )),
        "{said}"
    );
    assert!(said.contains("(not writable by this user;"), "{said}");
}

/// Whether this process runs as root (its effective uid is 0).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// A Pylantir database (its `worklist_items` table, rows as Pylantir writes them) where
/// the config's `db_path` points: a booking of Calpendo and a walk-in added through its
/// API.
fn pylantir_database(db: &Path) {
    let iso = today().strftime("%Y-%m-%d").to_string();
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
             (1, 'SUB101', 'Doe_Jane', '{iso}', '09:00', 'MR', 'SCHEDULED', 'calpendo_mri', '101'),
             (2, 'WALKIN01', 'Walk^In', '{iso}', '14:30', 'MR', 'SCHEDULED', NULL, NULL);"
    ))
    .expect("Pylantir's rows");
}

/// With Pylantir's rows not imported yet, `worklist` and `serve` say what to run.
#[test]
fn an_unimported_pylantir_database_is_named_by_worklist_and_serve() {
    let fakes = Fakes::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = materialize(
        "readme_calpendo_minimal.json",
        dir.path(),
        &fakes.calpendo.base_url(),
    );
    let db = dir.path().join("worklist.db");
    pylantir_database(&db);
    let reminder = format!(
        "holds 2 Pylantir worklist rows (worklist_items) that are not in the worklist; \
         consoles do not see them until you run `mwlbridge import-pylantir --config {}`",
        config.display()
    );

    let listed = fakes.run(&["worklist", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let said = format!("{}{}", stdout(&listed), stderr(&listed));
    assert_eq!(said.matches(&reminder).count(), 1, "worklist:\n{said}");

    let serve = Serve::start(
        &config,
        &db,
        &ServeOpts {
            env: fakes.env(),
            password: PASSWORD.into(),
            ..ServeOpts::synced()
        },
    );
    let log = serve.log();
    assert_eq!(log.matches(&reminder).count(), 1, "serve:\n{log}");
    assert!(
        log.lines()
            .any(|l| l.contains(" WARN ") && l.contains(&reminder)),
        "serve:\n{log}"
    );
}
