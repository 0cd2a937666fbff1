//! Helpers of the reliability and privacy tests (`faults_e2e`, `crash_e2e`,
//! `privacy_e2e`): a fake Calpendo with a chosen password, configs with chosen source
//! settings, `mwlbridge serve` started with chosen credentials and log settings (without
//! requiring its first sync to succeed), the recorded sync runs, JSON log lines, and the
//! worklist as `findscu` sees it.

use std::ffi::OsString;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use calpendo_fake::{FakeBooking, FakeCalpendo, FakeConfig};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use jiff::Timestamp;
use worklist_store::{EntryFilter, Store, StoredEntry, SyncRun};

use super::scp::{FindResult, Guarded, findscu, free_port, sps_item, text};

/// The Calpendo user name of these tests.
pub const USER: &str = "mwlbridge";

/// A config for one Calpendo source at `base_url` with the resources of
/// [`super::scp::write_server_config`] (3T, 7T → MR; EEG; Mock → OT), the `title` →
/// PatientName template, the database `db`, and `source_keys` (sync_interval,
/// request_timeout, ...) added to the source's table. Written to `path`.
pub fn write_config(path: &Path, base_url: &str, db: &Path, source_keys: &str) -> PathBuf {
    let text = format!(
        r#"
[server]
ae_title = "MWLBRIDGE"

[admin]
enabled = false

[store]
path = "{db}"

[site]
timezone = "America/Edmonton"

[[sources]]
name = "calpendo"
type = "calpendo"
base_url = "{base_url}"
resources = ["3T", "7T", "EEG", "Mock"]
resource_modality_mapping = {{ "3T" = "MR", "7T" = "MR", "EEG" = "EEG", "Mock" = "OT" }}
station_aet_mapping = {{ "3T" = "MRI_3T", "7T" = "MRI_7T", "EEG" = "EEG_LAB", "Mock" = "MOCK" }}
{source_keys}

[sources.field_mapping]
patient_name = {{ source_field = "title", _extract = {{ pattern = "^[A-Za-z0-9]+_([^_]+)_(.+)$", template = "$1^$2" }} }}
"#,
        db = db.display(),
    );
    std::fs::write(path, text).expect("write config");
    path.to_path_buf()
}

/// How `mwlbridge serve` is started.
#[derive(Debug, Clone)]
pub struct ServeOpts {
    /// CALPENDO_PASSWORD.
    pub password: String,
    /// `--log-level`.
    pub log_level: String,
    /// `--log-format json` (else text).
    pub json: bool,
}

impl ServeOpts {
    /// JSON logs at `level`, with `password`.
    pub fn json(password: &str, level: &str) -> ServeOpts {
        ServeOpts {
            password: password.to_string(),
            log_level: level.to_string(),
            json: true,
        }
    }
}

/// A running `mwlbridge serve` (a child under the watchdog of [`Guarded`]).
pub struct Serve {
    /// Its DICOM port on 127.0.0.1.
    pub port: u16,
    /// Its config file.
    pub config: PathBuf,
    /// Its database.
    pub db: PathBuf,
    proc: Guarded,
}

impl Serve {
    /// Starts `mwlbridge [--log-format json] --log-level L serve --config CONFIG --port P
    /// --bind 127.0.0.1` and waits until it listens. Does not wait for a sync.
    pub fn start(config: &Path, db: &Path, opts: &ServeOpts) -> Serve {
        for _attempt in 0..5 {
            let port = free_port();
            let mut args: Vec<OsString> = vec!["--log-level".into(), opts.log_level.clone().into()];
            if opts.json {
                args.push("--log-format".into());
                args.push("json".into());
            }
            args.extend([
                "serve".into(),
                "--config".into(),
                config.into(),
                "--port".into(),
                port.to_string().into(),
                "--bind".into(),
                "127.0.0.1".into(),
            ]);
            let log = config.with_file_name(format!(
                "{}-serve-{port}.log",
                config
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            let mut proc = Guarded::spawn(
                &super::bin(),
                &args,
                &[
                    ("CALPENDO_USERNAME", USER),
                    ("CALPENDO_PASSWORD", &opts.password),
                    ("MWLBRIDGE_CONFIG", ""),
                    ("NO_COLOR", "1"),
                ],
                &log,
                None,
            );
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if proc.exited() {
                    let text = proc.log_text();
                    assert!(
                        text.contains("cannot listen"),
                        "mwlbridge serve exited:\n{text}"
                    );
                    break;
                }
                if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                    std::thread::sleep(Duration::from_millis(30));
                    if proc.exited() {
                        continue;
                    }
                    return Serve {
                        port,
                        config: config.to_path_buf(),
                        db: db.to_path_buf(),
                        proc,
                    };
                }
                assert!(
                    Instant::now() < deadline,
                    "mwlbridge serve does not listen:\n{}",
                    proc.log_text()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("mwlbridge serve did not start on 5 ports");
    }

    /// The log so far (stdout and stderr together).
    pub fn log(&self) -> String {
        self.proc.log_text()
    }

    /// Stops it with SIGTERM (SIGKILL after 5 s); its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        self.proc.stop()
    }

    /// The sync run that started first at or after `since` (waits for it up to
    /// `timeout`; panics with the log when none comes).
    pub fn next_run(&self, since: Timestamp, timeout: Duration) -> SyncRun {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(run) = runs(&self.db)
                .into_iter()
                .rev()
                .find(|r| r.started_at >= since)
            {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "no sync run started after {since} within {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Every recorded sync run, newest first (none when the database is not there yet).
pub fn runs(db: &Path) -> Vec<SyncRun> {
    if !db.exists() {
        return Vec::new();
    }
    Store::open(db)
        .ok()
        .and_then(|s| s.recent_sync_runs(None, 100_000).ok())
        .unwrap_or_default()
}

/// Every stored entry (all dates and statuses), in the store's order.
pub fn entries(db: &Path) -> Vec<StoredEntry> {
    Store::open(db)
        .expect("open the store")
        .list(&EntryFilter::default())
        .expect("list the store")
}

/// A fake Calpendo accepting [`USER`] / `password`, holding `bookings`, on `rt`.
pub fn start_fake(
    rt: &tokio::runtime::Runtime,
    password: &str,
    bookings: Vec<FakeBooking>,
) -> FakeCalpendo {
    rt.block_on(async {
        let fake = FakeCalpendo::start(FakeConfig {
            username: USER.to_string(),
            password: password.to_string(),
            ..FakeConfig::default()
        })
        .await
        .expect("fake Calpendo starts");
        fake.set_bookings(bookings);
        fake
    })
}

/// A small runtime for the fake Calpendo (and other servers) of one test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The JSON objects of a `--log-format json` log (other lines, such as the watchdog's,
/// are skipped).
pub fn json_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(serde_json::Value::is_object)
        .collect()
}

/// The level of a JSON log line ("ERROR", "WARN", "INFO", "DEBUG", "TRACE").
pub fn level(line: &serde_json::Value) -> &str {
    line["level"].as_str().unwrap_or("")
}

/// Whether a JSON log line is at INFO or above.
pub fn info_or_above(line: &serde_json::Value) -> bool {
    matches!(level(line), "ERROR" | "WARN" | "INFO")
}

/// One worklist item as a console sees it: (AccessionNumber, PatientID, PatientName,
/// SPS start date, SPS start time, ScheduledStationAETitle).
pub type Item = (String, String, String, String, String, String);

/// The findscu keys that [`items`] reads.
pub const ITEM_KEYS: [&str; 6] = [
    "AccessionNumber",
    "PatientID",
    "PatientName",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime",
    "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
];

/// One C-FIND response identifier as an [`Item`].
pub fn item_of(o: &InMemDicomObject) -> Item {
    let sps = sps_item(o);
    (
        text(o, tags::ACCESSION_NUMBER),
        text(o, tags::PATIENT_ID),
        text(o, tags::PATIENT_NAME),
        text(sps, tags::SCHEDULED_PROCEDURE_STEP_START_DATE),
        text(sps, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
        text(sps, tags::SCHEDULED_STATION_AE_TITLE),
    )
}

/// The items of a successful C-FIND, sorted.
pub fn items(r: &FindResult) -> Vec<Item> {
    r.assert_success();
    let mut v: Vec<Item> = r.responses.iter().map(item_of).collect();
    v.sort();
    v
}

/// Every offered item (a C-FIND with universal matching of [`ITEM_KEYS`]).
pub fn find_all(port: u16) -> Vec<Item> {
    items(&findscu(port, &ITEM_KEYS, &[]))
}
