//! The DICOMweb services against a user agent nobody here wrote: `dicomweb-client` from
//! PyPI, with pydicom reading and writing the DICOM JSON (`tests/fixtures/dicomweb/
//! client.py`, run from the virtualenv `scripts/test.sh` makes in `target/test-venv`),
//! against the real `mwlbridge serve` fed by the fake Calpendo. What the client's search
//! finds must be what `findscu` finds, value for value; an MPPS that pydicom wrote and
//! the client posted must change what `findscu` is offered, and read back.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::scp::{Site, findscu, free_port, mwl_bookings, scheduled, sps_item, status_of, text};
use common::{stderr, stdout, today};
use dicom_dictionary_std::tags;
use serde_json::Value;
use worklist_store::format_da;

/// The virtualenv's Python: `MWLBRIDGE_TEST_PYTHON`, else `target/test-venv/bin/python`.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MWLBRIDGE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: scripts/test.sh makes it (python3 -m venv target/test-venv && \
         target/test-venv/bin/pip install -r tests/fixtures/dicomweb/requirements.txt)",
        venv.display()
    );
    venv
}

/// Runs `client.py` with `args` and reads the JSON it prints.
fn client(args: &[&str]) -> Value {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicomweb/client.py");
    let o = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .expect("run client.py");
    assert!(
        o.status.success(),
        "client.py {args:?} failed:\n{}",
        stderr(&o)
    );
    serde_json::from_str(&stdout(&o)).expect("client.py prints JSON")
}

/// A site with the admin interface on, and a write token named like a console's AE.
fn site() -> (Site, String, String) {
    let admin_port = free_port();
    let site = Site::start(
        mwl_bookings(),
        &format!("[admin]\nenabled = true\nbind = \"127.0.0.1\"\nport = {admin_port}\n"),
    );
    let c = site.config().to_str().expect("utf-8 path").to_string();
    let o = common::run(&[
        "token", "create", "--config", &c, "--name", "MRI_3T", "--role", "write",
    ]);
    assert!(o.status.success(), "token create: {}", stderr(&o));
    let token = stdout(&o).trim().to_string();
    let base = format!("http://127.0.0.1:{admin_port}/dicomweb");
    for _ in 0..100 {
        let up = std::net::TcpStream::connect(("127.0.0.1", admin_port)).is_ok();
        if up {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (site, base, token)
}

/// The fields `client.py search` prints, as `findscu` gets them for the same query.
fn findscu_rows(site: &Site, date: &str) -> Vec<Value> {
    let r = findscu(
        site.port(),
        &[
            "PatientID",
            "PatientName",
            "AccessionNumber",
            "StudyInstanceUID",
            "ScheduledProcedureStepSequence[0].Modality",
            "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
            &format!("ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={date}"),
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime",
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus",
        ],
        &[],
    );
    r.assert_success();
    r.responses
        .iter()
        .map(|item| {
            let step = sps_item(item);
            serde_json::json!({
                "PatientID": text(item, tags::PATIENT_ID),
                "PatientName": text(item, tags::PATIENT_NAME),
                "AccessionNumber": text(item, tags::ACCESSION_NUMBER),
                "StudyInstanceUID": text(item, tags::STUDY_INSTANCE_UID),
                "Modality": text(step, tags::MODALITY),
                "ScheduledStationAETitle": text(step, tags::SCHEDULED_STATION_AE_TITLE),
                "ScheduledProcedureStepStartDate":
                    text(step, tags::SCHEDULED_PROCEDURE_STEP_START_DATE),
                "ScheduledProcedureStepStartTime":
                    text(step, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
                "ScheduledProcedureStepStatus": text(step, tags::SCHEDULED_PROCEDURE_STEP_STATUS),
            })
        })
        .collect()
}

#[test]
fn the_python_client_pages_through_a_search_and_finds_what_findscu_finds() {
    let (site, base, token) = site();
    let date = format_da(today());
    let key = format!("00400100.00400002={date}");
    // A page of 3: the client asks again with a larger offset until a page is empty.
    let found = client(&["search", &base, &token, "3", &key]);
    let found = found.as_array().expect("an array");
    let expected = findscu_rows(&site, &date);
    assert!(
        expected.len() > 3,
        "the query must need several pages: {expected:?}"
    );
    assert_eq!(found, &expected);
    // Names with accents came through UTF-8 JSON and pydicom intact.
    assert!(
        found.iter().any(|r| r["PatientName"] == "Hébert^Zoë"),
        "{found:?}"
    );
}

#[test]
fn an_mpps_the_python_client_posts_changes_the_worklist_and_reads_back() {
    let (site, base, token) = site();
    let s = scheduled(&site, "SUB101");
    let uid = "1.2.826.0.1.3680043.10.1.777";
    let created = client(&[
        "create",
        &base,
        &token,
        uid,
        "SUB101",
        &s.study_uid,
        &s.accession,
        &s.sps_id,
    ]);
    assert_eq!(created["status"], 201, "{created}");
    assert!(
        created["location"]
            .as_str()
            .is_some_and(|l| l.ends_with(&format!("/modality-performed-procedure-steps/{uid}"))),
        "{created}"
    );
    assert_eq!(status_of(&site, "SUB101"), "STARTED");
    let read = client(&["retrieve", &base, &token, uid]);
    assert_eq!(read["PatientID"], "SUB101", "{read}");
    assert_eq!(
        read["PerformedProcedureStepStatus"], "IN PROGRESS",
        "{read}"
    );
    assert_eq!(read["PerformedStationAETitle"], "MRI_3T", "{read}");
}
