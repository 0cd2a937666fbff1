//! Helpers of the reliability and privacy tests (`faults_e2e`, `crash_e2e`,
//! `privacy_e2e`): a fake Calpendo with a chosen password, configs with chosen source
//! settings, the recorded entries, JSON log lines, and the worklist as `findscu` sees it.
//! `mwlbridge serve` is started by [`super::serve::Serve`] with chosen
//! credentials and log settings, without requiring its first sync to succeed.

use std::path::{Path, PathBuf};

use calpendo_fake::{FakeBooking, FakeCalpendo, FakeConfig};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use worklist_store::{EntryFilter, Store, StoredEntry};

use super::config::SiteConfig;
use super::scp::{FindResult, findscu, sps_item, text};
use super::serve::USER;

/// A config for one Calpendo source at `base_url` with the [`FOUR_RESOURCES`](super::config::FOUR_RESOURCES), the
/// database `db`, and `source_keys` (sync_interval, request_timeout, ...) added to the
/// source's table. Written to `path`.
pub fn write_config(path: &Path, base_url: &str, db: &Path, source_keys: &str) -> PathBuf {
    SiteConfig {
        server: Some("ae_title = \"MWLBRIDGE\""),
        source_keys,
        ..SiteConfig::new(base_url, db)
    }
    .write(path)
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
