//! MPPS end to end: a console's N-CREATE / N-SET through the real `mwlbridge serve`,
//! what the worklist then offers, and that neither a sync nor a restart undoes it.

mod common;

use common::dicom_client::{Client, encode, uid};
use common::scp::{Scheduled, Site, findscu, offered, scheduled, sps_item, status_of, text};
use common::serve::{Serve, ServeOpts};
use common::{booking, stderr};
use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use worklist_store::{PerformedStatus, StatusSetBy, StepStatus, Store};

const MPPS: &str = "1.2.840.10008.3.1.2.3.3";
const STATUS_KEY: &str = "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus";

fn el(tag: Tag, vr: VR, v: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::from(v.to_string()))
}

/// An N-CREATE data set for `s` (or with `without` left out, or another status).
fn create_data(s: &Scheduled, status: &str, without: Option<Tag>) -> Vec<u8> {
    let item = InMemDicomObject::from_element_iter([
        el(tags::ACCESSION_NUMBER, VR::SH, &s.accession),
        DataElement::new(tags::STUDY_INSTANCE_UID, VR::UI, uid(&s.study_uid)),
        el(tags::REQUESTED_PROCEDURE_ID, VR::SH, &s.accession),
        el(tags::SCHEDULED_PROCEDURE_STEP_ID, VR::SH, &s.sps_id),
    ]);
    let mut obj = InMemDicomObject::from_element_iter([
        el(tags::MODALITY, VR::CS, "MR"),
        el(tags::PERFORMED_STATION_AE_TITLE, VR::AE, "MRI_3T"),
        el(
            tags::PERFORMED_PROCEDURE_STEP_START_DATE,
            VR::DA,
            "20261126",
        ),
        el(tags::PERFORMED_PROCEDURE_STEP_START_TIME, VR::TM, "090500"),
        el(tags::PERFORMED_PROCEDURE_STEP_ID, VR::SH, "PPS1"),
        el(tags::PERFORMED_PROCEDURE_STEP_STATUS, VR::CS, status),
        el(tags::PATIENT_ID, VR::LO, "SUB101"),
    ]);
    obj.put(DataElement::new(
        tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![item]),
    ));
    if let Some(t) = without {
        obj.take(t);
    }
    encode(&obj)
}

fn command(field: u16, id: u16, instance: &str) -> InMemDicomObject {
    let (class_tag, instance_tag) = if field == 0x0140 {
        (
            tags::AFFECTED_SOP_CLASS_UID,
            tags::AFFECTED_SOP_INSTANCE_UID,
        )
    } else {
        (
            tags::REQUESTED_SOP_CLASS_UID,
            tags::REQUESTED_SOP_INSTANCE_UID,
        )
    };
    InMemDicomObject::command_from_element_iter([
        DataElement::new(class_tag, VR::UI, uid(MPPS)),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(field)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(id)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(0u16),
        ),
        DataElement::new(instance_tag, VR::UI, uid(instance)),
    ])
}

/// Sends N-CREATE; returns (status, Affected SOP Instance UID of the response).
fn n_create(client: &mut Client, instance: &str, data: &[u8]) -> (u16, String) {
    let id = client.message_id();
    let r = client.request(MPPS, &command(0x0140, id, instance), Some(data));
    let cmd = r.final_command();
    let echoed = text(cmd, tags::AFFECTED_SOP_INSTANCE_UID);
    assert_eq!(
        common::dicom_client::command_u16(cmd, tags::MESSAGE_ID_BEING_RESPONDED_TO),
        Some(id)
    );
    (r.final_status().expect("status"), echoed)
}

fn n_set(client: &mut Client, instance: &str, status: &str) -> u16 {
    let id = client.message_id();
    let data = encode(&InMemDicomObject::from_element_iter([
        el(tags::PERFORMED_PROCEDURE_STEP_STATUS, VR::CS, status),
        el(tags::PERFORMED_PROCEDURE_STEP_END_DATE, VR::DA, "20261126"),
        el(tags::PERFORMED_PROCEDURE_STEP_END_TIME, VR::TM, "094500"),
    ]));
    let r = client.request(MPPS, &command(0x0120, id, instance), Some(&data));
    r.final_status().expect("status")
}

fn mpps_client(site: &Site) -> Client {
    Client::connect_with(site.port(), "MRI_3T", "MWLBRIDGE", &[MPPS]).expect("associate")
}

fn site() -> Site {
    Site::start(
        vec![
            booking(101, "SUB101_Tremblay_Marie", "3T Diagnostic", 9),
            booking(102, "SUB102_Novak_Jan", "3T Diagnostic", 10),
            booking(103, "SUB103_Singh_Priya", "3T Diagnostic", 11),
        ],
        "",
    )
}

#[test]
fn performed_step_drives_the_worklist_across_sync_and_restart() {
    let mut site = site();
    let s = scheduled(&site, "SUB101");
    let mut client = mpps_client(&site);

    let (status, echoed) = n_create(
        &mut client,
        "1.2.826.0.1.3680043.10.1.1",
        &create_data(&s, "IN PROGRESS", None),
    );
    assert_eq!(status, 0x0000);
    assert_eq!(
        echoed, "1.2.826.0.1.3680043.10.1.1",
        "Affected SOP Instance UID echoed"
    );
    assert_eq!(status_of(&site, "SUB101"), "STARTED");
    assert!(
        offered(&site, "SUB101"),
        "a STARTED step is still offered (consoles resume it)"
    );
    assert_eq!(
        status_of(&site, "SUB102"),
        "SCHEDULED",
        "only the linked step changed"
    );

    assert_eq!(
        n_set(&mut client, "1.2.826.0.1.3680043.10.1.1", "COMPLETED"),
        0x0000
    );
    client.release();
    assert_eq!(status_of(&site, "SUB101"), "COMPLETED");
    assert!(
        !offered(&site, "SUB101"),
        "a default query no longer offers a completed step"
    );
    assert!(offered(&site, "SUB102"));

    // A sync does not undo it.
    let out = common::run(&[
        "sync",
        "--once",
        "--config",
        site.config().to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(status_of(&site, "SUB101"), "COMPLETED");

    // Nor does a restart; SIGTERM stops the server cleanly.
    let config = site.config().to_path_buf();
    let db = site.dir.join("worklist.db");
    assert_eq!(
        site.server.stop(),
        Some(0),
        "serve exits 0 on SIGTERM:\n{}",
        site.server.log()
    );
    assert!(
        site.server.log().contains("mwlbridge stopped"),
        "{}",
        site.server.log()
    );
    site.server = Serve::start(&config, &db, &ServeOpts::synced());
    assert_eq!(status_of(&site, "SUB101"), "COMPLETED");
    assert!(!offered(&site, "SUB101"));

    // Stored with what the console sent, and who set the entry's status.
    let store = Store::open(&db).expect("open");
    let p = store
        .mpps_get("1.2.826.0.1.3680043.10.1.1")
        .expect("get")
        .expect("stored");
    assert_eq!(p.status, PerformedStatus::Completed);
    assert_eq!(p.calling_ae, "MRI_3T");
    assert_eq!(p.linked_entries.len(), 1);
    let e = store.get("calpendo", "101").expect("get").expect("entry");
    assert_eq!(
        (e.entry.status, e.meta.status_set_by),
        (StepStatus::Completed, StatusSetBy::Mpps)
    );
    let out = common::run(&["worklist", "--config", config.to_str().expect("utf-8")]);
    let table = common::stdout(&out);
    let line = table.lines().find(|l| l.contains("SUB101")).expect("row");
    assert!(
        line.contains("COMPLETED") && line.contains("mpps"),
        "{line}"
    );
}

#[test]
fn refused_requests_change_nothing() {
    let site = site();
    let s = scheduled(&site, "SUB102");
    let mut client = mpps_client(&site);
    let db = site.dir.join("worklist.db");
    let snapshot = || {
        let store = Store::open(&db).expect("open");
        store.list(&Default::default()).expect("list")
    };

    // Missing required attribute: 0120, nothing stored.
    let before = snapshot();
    let (status, _) = n_create(
        &mut client,
        "1.2.826.0.1.3680043.10.1.20",
        &create_data(
            &s,
            "IN PROGRESS",
            Some(tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE),
        ),
    );
    assert_eq!(status, 0x0120);
    assert_eq!(
        n_set(&mut client, "1.2.826.0.1.3680043.10.1.20", "COMPLETED"),
        0x0112,
        "not stored"
    );
    // N-CREATE must start IN PROGRESS: 0106.
    let (status, _) = n_create(
        &mut client,
        "1.2.826.0.1.3680043.10.1.21",
        &create_data(&s, "COMPLETED", None),
    );
    assert_eq!(status, 0x0106);
    // N-SET of an unknown instance: 0112.
    assert_eq!(
        n_set(&mut client, "1.2.826.0.1.3680043.10.1.99", "COMPLETED"),
        0x0112
    );
    assert_eq!(snapshot(), before, "no error changed the worklist");

    // Duplicate N-CREATE: 0111, the first one stands.
    let (status, _) = n_create(
        &mut client,
        "1.2.826.0.1.3680043.10.1.22",
        &create_data(&s, "IN PROGRESS", None),
    );
    assert_eq!(status, 0x0000);
    let started = snapshot();
    let (status, _) = n_create(
        &mut client,
        "1.2.826.0.1.3680043.10.1.22",
        &create_data(&s, "IN PROGRESS", None),
    );
    assert_eq!(status, 0x0111);
    assert_eq!(snapshot(), started);

    // A finished step cannot change: 0110.
    assert_eq!(
        n_set(&mut client, "1.2.826.0.1.3680043.10.1.22", "DISCONTINUED"),
        0x0000
    );
    let discontinued = snapshot();
    assert_eq!(
        n_set(&mut client, "1.2.826.0.1.3680043.10.1.22", "COMPLETED"),
        0x0110
    );
    assert_eq!(snapshot(), discontinued);
    assert_eq!(status_of(&site, "SUB102"), "DISCONTINUED");
    let p = Store::open(&db)
        .expect("open")
        .mpps_get("1.2.826.0.1.3680043.10.1.22")
        .expect("get")
        .expect("stored");
    assert_eq!(p.status, PerformedStatus::Discontinued);
    client.release();
}

#[test]
fn unscheduled_scan_is_stored_and_answered_with_success() {
    let site = site();
    let mut client = mpps_client(&site);
    let nowhere = Scheduled {
        study_uid: "1.2.826.0.1.3680043.10.9.9".into(),
        accession: "NONE".into(),
        sps_id: "NONE".into(),
    };
    let (status, _) = n_create(
        &mut client,
        "1.2.826.0.1.3680043.10.1.30",
        &create_data(&nowhere, "IN PROGRESS", None),
    );
    assert_eq!(status, 0x0000);
    client.release();
    let p = Store::open(site.dir.join("worklist.db"))
        .expect("open")
        .mpps_get("1.2.826.0.1.3680043.10.1.30")
        .expect("get")
        .expect("stored");
    assert!(p.linked_entries.is_empty());
    let log = site.server.log();
    assert!(log.contains("matches no scheduled step"), "{log}");
    for id in ["SUB101", "SUB102", "SUB103"] {
        assert_eq!(status_of(&site, id), "SCHEDULED");
    }
}

#[test]
fn booking_cancelled_while_in_progress_stays_started() {
    let site = site();
    let s = scheduled(&site, "SUB103");
    let mut client = mpps_client(&site);
    let (status, _) = n_create(
        &mut client,
        "1.2.826.0.1.3680043.10.1.40",
        &create_data(&s, "IN PROGRESS", None),
    );
    assert_eq!(status, 0x0000);
    client.release();
    let mut cancelled = booking(103, "SUB103_Singh_Priya", "3T Diagnostic", 11);
    cancelled.status = "Cancelled".into();
    site.fake.upsert_booking(cancelled);
    let out = common::run(&[
        "sync",
        "--once",
        "--config",
        site.config().to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cancelled in the source while the scan is in progress"),
        "the conflict is logged: {}",
        stderr(&out)
    );
    assert_eq!(
        status_of(&site, "SUB103"),
        "STARTED",
        "the scan is real: STARTED wins"
    );
}

/// An N-SET DISCONTINUED whose reason is `code` of `scheme`.
fn n_set_discontinued_because(
    client: &mut Client,
    instance: &str,
    code: &str,
    scheme: &str,
) -> u16 {
    let id = client.message_id();
    let reason = InMemDicomObject::from_element_iter([
        el(tags::CODE_VALUE, VR::SH, code),
        el(tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme),
        el(
            tags::CODE_MEANING,
            VR::LO,
            "Incorrect worklist entry selected",
        ),
    ]);
    let mut data = InMemDicomObject::from_element_iter([
        el(
            tags::PERFORMED_PROCEDURE_STEP_STATUS,
            VR::CS,
            "DISCONTINUED",
        ),
        el(tags::PERFORMED_PROCEDURE_STEP_END_DATE, VR::DA, "20261126"),
        el(tags::PERFORMED_PROCEDURE_STEP_END_TIME, VR::TM, "091000"),
    ]);
    data.put(DataElement::new(
        tags::PERFORMED_PROCEDURE_STEP_DISCONTINUATION_REASON_CODE_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![reason]),
    ));
    let r = client.request(MPPS, &command(0x0120, id, instance), Some(&encode(&data)));
    r.final_status().expect("status")
}

/// IHE's undo of a wrong pick: the technician discontinues the performed step with reason
/// 110514 (DCM) "Incorrect worklist entry selected"; the scheduled step is offered again
/// (and stays offered across a sync). Any other reason discontinues it as before.
#[test]
fn a_wrong_entry_discontinuation_offers_the_step_again() {
    let site = site();
    let mut client = mpps_client(&site);
    let wrong = scheduled(&site, "SUB101");
    let (st, _) = n_create(
        &mut client,
        "1.2.826.0.1.3680043.10.1.1",
        &create_data(&wrong, "IN PROGRESS", None),
    );
    assert_eq!(st, 0x0000);
    assert_eq!(status_of(&site, "SUB101"), "STARTED");
    assert_eq!(
        n_set_discontinued_because(&mut client, "1.2.826.0.1.3680043.10.1.1", "110514", "DCM"),
        0x0000
    );
    assert_eq!(status_of(&site, "SUB101"), "SCHEDULED");
    assert!(offered(&site, "SUB101"), "the wrong pick is offered again");

    // Another reason (110513, "Equipment failure") discontinues the step.
    let other = scheduled(&site, "SUB102");
    let (st, _) = n_create(
        &mut client,
        "1.2.826.0.1.3680043.10.1.2",
        &create_data(&other, "IN PROGRESS", None),
    );
    assert_eq!(st, 0x0000);
    assert_eq!(
        n_set_discontinued_because(&mut client, "1.2.826.0.1.3680043.10.1.2", "110513", "DCM"),
        0x0000
    );
    assert_eq!(status_of(&site, "SUB102"), "DISCONTINUED");
    assert!(!offered(&site, "SUB102"));
    client.release();
}

/// An N-SET with `extra` elements beside the status; returns (status, Error Comment).
fn n_set_with(
    client: &mut Client,
    instance: &str,
    status: &str,
    extra: Vec<DataElement<InMemDicomObject>>,
) -> (u16, String) {
    let id = client.message_id();
    let mut obj = InMemDicomObject::from_element_iter([el(
        tags::PERFORMED_PROCEDURE_STEP_STATUS,
        VR::CS,
        status,
    )]);
    for e in extra {
        obj.put(e);
    }
    let r = client.request(MPPS, &command(0x0120, id, instance), Some(&encode(&obj)));
    (
        r.final_status().expect("status"),
        text(r.final_command(), tags::ERROR_COMMENT),
    )
}

fn stored(site: &Site, instance: &str) -> worklist_store::PerformedStep {
    Store::open(site.dir.join("worklist.db"))
        .expect("open")
        .mpps_get(instance)
        .expect("get")
        .expect("stored")
}

#[test]
fn only_the_console_that_created_a_step_may_change_it() {
    let site = site();
    let s = scheduled(&site, "SUB101");
    let mut mri = mpps_client(&site);
    let instance = "1.2.826.0.1.3680043.10.1.40";
    let (status, _) = n_create(&mut mri, instance, &create_data(&s, "IN PROGRESS", None));
    assert_eq!(status, 0x0000);

    let mut other =
        Client::connect_with(site.port(), "EEG_LAB", "MWLBRIDGE", &[MPPS]).expect("associate");
    let (status, comment) = n_set_with(&mut other, instance, "DISCONTINUED", vec![]);
    assert_eq!(status, 0x0124, "refused, not authorized: {comment}");
    assert!(comment.contains("MRI_3T"), "{comment}");
    other.release();
    assert_eq!(status_of(&site, "SUB101"), "STARTED", "unchanged");
    assert_eq!(stored(&site, instance).status, PerformedStatus::InProgress);

    assert_eq!(n_set(&mut mri, instance, "COMPLETED"), 0x0000);
    mri.release();
    assert_eq!(status_of(&site, "SUB101"), "COMPLETED");
}

#[test]
fn a_performed_step_is_bounded_in_size_and_in_n_sets() {
    let site = Site::start(
        vec![booking(101, "SUB101_Tremblay_Marie", "3T Diagnostic", 9)],
        "mpps_max_sets = 3\nmpps_max_stored_bytes = 8192",
    );
    let s = scheduled(&site, "SUB101");
    let mut client = mpps_client(&site);
    let instance = "1.2.826.0.1.3680043.10.1.41";
    let (status, _) = n_create(&mut client, instance, &create_data(&s, "IN PROGRESS", None));
    assert_eq!(status, 0x0000);
    let before = stored(&site, instance);

    // One N-SET that would make the stored step larger than 8 KiB: 0213, nothing kept.
    let big = DataElement::new(
        tags::PATIENT_COMMENTS,
        VR::LT,
        PrimitiveValue::from("x".repeat(10_000)),
    );
    let (status, comment) = n_set_with(&mut client, instance, "IN PROGRESS", vec![big]);
    assert_eq!(status, 0x0213, "resource limitation: {comment}");
    assert!(comment.contains("8192"), "{comment}");
    let after = stored(&site, instance);
    assert_eq!(
        (after.attributes, after.set_count),
        (before.attributes, 0),
        "store unchanged"
    );

    // Three N-SETs are taken, the fourth is refused, and the step is left as it was.
    for n in 0..3 {
        let comments = el(
            tags::COMMENTS_ON_THE_PERFORMED_PROCEDURE_STEP,
            VR::ST,
            &format!("update {n}"),
        );
        let (status, comment) = n_set_with(&mut client, instance, "IN PROGRESS", vec![comments]);
        assert_eq!(status, 0x0000, "N-SET {n}: {comment}");
    }
    let (status, comment) = n_set_with(&mut client, instance, "COMPLETED", vec![]);
    assert_eq!(status, 0x0213, "{comment}");
    client.release();
    let after = stored(&site, instance);
    assert_eq!(
        (after.status, after.set_count),
        (PerformedStatus::InProgress, 3)
    );
    assert_eq!(status_of(&site, "SUB101"), "STARTED");
}

#[test]
fn with_the_station_filter_a_console_starts_only_its_own_steps() {
    let site = Site::start(
        vec![
            booking(101, "SUB101_Tremblay_Marie", "3T Diagnostic", 9),
            booking(102, "SUB102_Novak_Jan", "EEG Lab Room A", 10),
        ],
        "station_filter_by_calling_ae = true",
    );
    // The EEG lab's step, as a console would copy it (asked for by station explicitly).
    let r = findscu(
        site.port(),
        &[
            "PatientID=SUB102",
            "StudyInstanceUID",
            "AccessionNumber",
            "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=EEG_LAB",
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID",
        ],
        &[],
    );
    let item = r.by_patient_id("SUB102");
    let eeg = Scheduled {
        study_uid: text(item, tags::STUDY_INSTANCE_UID),
        accession: text(item, tags::ACCESSION_NUMBER),
        sps_id: text(sps_item(item), tags::SCHEDULED_PROCEDURE_STEP_ID),
    };
    let mut mri = mpps_client(&site);
    let instance = "1.2.826.0.1.3680043.10.1.42";
    let (status, _) = n_create(&mut mri, instance, &create_data(&eeg, "IN PROGRESS", None));
    assert_eq!(status, 0x0000, "stored, as an unscheduled scan of MRI_3T");
    mri.release();
    assert!(stored(&site, instance).linked_entries.is_empty());
    let r = findscu(
        site.port(),
        &[
            "PatientID=SUB102",
            "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=EEG_LAB",
            &format!("{STATUS_KEY}=SCHEDULED\\STARTED\\COMPLETED\\DISCONTINUED"),
        ],
        &[],
    );
    assert_eq!(
        text(
            sps_item(r.by_patient_id("SUB102")),
            tags::SCHEDULED_PROCEDURE_STEP_STATUS
        ),
        "SCHEDULED",
        "the EEG lab's step is not touched by MRI_3T"
    );
    assert!(
        site.server
            .log()
            .contains("MPPS references steps scheduled on another station"),
        "{}",
        site.server.log()
    );
}
