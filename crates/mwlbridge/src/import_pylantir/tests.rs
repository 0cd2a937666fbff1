use jiff::civil::date;
use worklist_store::pylantir::{PROVISIONAL_PREFIX, PylantirRow};
use worklist_store::{ImportItem, MANUAL_SOURCE, StatusSetBy, StepStatus, WorklistEntry};

use super::{SkipReason, plan};
use crate::config::{SourceConfig, SourceKind};

fn source(name: &str, named: bool, kind: SourceKind) -> SourceConfig {
    SourceConfig {
        name: name.into(),
        named,
        kind,
        enabled: true,
        key: "data_sources[0]".into(),
        operation_interval: None,
        settings: Default::default(),
        written_as: &[],
    }
}

fn row(id: i64) -> PylantirRow {
    PylantirRow {
        id,
        patient_id: Some("sub_1001_ses_1_fam_20_site_792".into()),
        patient_name: Some("cpip-id-1001^fa-20".into()),
        scheduled_start_date: Some("2026-12-05".into()),
        scheduled_start_time: Some("09:30".into()),
        ..PylantirRow::default()
    }
}

fn planned(r: PylantirRow, sources: &[SourceConfig]) -> (WorklistEntry, StatusSetBy) {
    let p = plan(&[r], sources).pop().expect("one");
    match p.item {
        ImportItem::Entry { entry, set_by, .. } => (*entry, set_by),
        ImportItem::Skipped { .. } => panic!("skipped: {:?}", p.skipped),
    }
}

fn skipped(r: PylantirRow) -> SkipReason {
    plan(&[r], &[])
        .pop()
        .expect("one")
        .skipped
        .expect("skipped")
}

#[test]
fn a_calpendo_row_with_its_booking_id_is_linked_to_the_booking() {
    let sources = [source("calpendo_main", true, SourceKind::Calpendo)];
    let mut r = row(3);
    r.data_source = Some("calpendo_main".into());
    r.source_record_id = Some("412".into());
    let (e, set_by) = planned(r, &sources);
    assert_eq!(
        (e.source.as_str(), e.source_record_id.as_str()),
        ("calpendo_main", "412")
    );
    assert_eq!(set_by, StatusSetBy::Sync);
    assert_eq!(e.start, date(2026, 12, 5).at(9, 30, 0, 0));
}

#[test]
fn a_redcap_row_waits_for_its_source_under_a_provisional_id() {
    let sources = [source("redcap_legacy", true, SourceKind::Redcap)];
    let mut r = row(8);
    r.data_source = Some("redcap_legacy".into());
    r.performed_procedure_step_status = Some("COMPLETED".into());
    let (e, set_by) = planned(r, &sources);
    assert_eq!(e.source, "redcap_legacy");
    assert_eq!(e.source_record_id, format!("{PROVISIONAL_PREFIX}8"));
    assert_eq!(e.status, StepStatus::Completed);
    assert_eq!(
        set_by,
        StatusSetBy::Mpps,
        "Pylantir's MPPS status is kept from syncs"
    );
}

#[test]
fn pylantir_names_for_unnamed_sources_and_plugins_find_the_one_source() {
    let sources = [
        source("calpendo", false, SourceKind::Calpendo),
        source("visits", true, SourceKind::Redcap),
    ];
    for (data_source, expected) in [
        ("unknown", "calpendo"),
        ("Calpendo", "calpendo"),
        ("REDCap", "visits"),
    ] {
        let mut r = row(1);
        r.data_source = Some(data_source.into());
        assert_eq!(planned(r, &sources).0.source, expected, "{data_source}");
    }
}

#[test]
fn rows_of_no_configured_source_become_manual_entries() {
    let sources = [source("calpendo", true, SourceKind::Calpendo)];
    for data_source in [None, Some("old_source"), Some("REDCap")] {
        let mut r = row(5);
        r.data_source = data_source.map(str::to_string);
        r.source_record_id = Some("99".into());
        let (e, set_by) = planned(r, &sources);
        assert_eq!(e.source, MANUAL_SOURCE, "{data_source:?}");
        assert_eq!(e.source_record_id, "pylantir-5");
        assert_eq!(set_by, StatusSetBy::Admin);
    }
}

#[test]
fn values_are_read_in_pylantirs_and_dicom_forms() {
    let mut r = row(2);
    r.scheduled_start_date = Some("20261205".into());
    r.scheduled_start_time = Some("143000".into());
    r.patient_birth_date = Some("2012-01-01".into());
    r.patient_sex = Some("f".into());
    r.patient_weight_lb = Some("100".into());
    r.modality = None;
    r.protocol_name = Some("BRAIN_MRI_3T".into());
    r.hisris_coding_designator = Some("scannermapper".into());
    r.study_instance_uid = Some("1.2.826.0.1.3680043.8.498.1".into());
    r.performed_procedure_step_status = Some("IN_PROGRESS".into());
    let (e, set_by) = planned(r, &[]);
    assert_eq!(e.start, date(2026, 12, 5).at(14, 30, 0, 0));
    assert_eq!(e.patient_birth_date, Some(date(2012, 1, 1)));
    assert_eq!(e.patient_sex.as_deref(), Some("F"));
    assert_eq!(e.patient_weight_kg, Some(45.36));
    assert_eq!(e.modality.as_deref(), Some("MR"), "Pylantir's default");
    assert_eq!(e.sps_description.as_deref(), Some("BRAIN_MRI_3T"));
    assert_eq!(e.protocol_code_value.as_deref(), Some("BRAIN_MRI_3T"));
    assert_eq!(e.protocol_coding_scheme.as_deref(), Some("scannermapper"));
    assert_eq!(e.study_instance_uid, "1.2.826.0.1.3680043.8.498.1");
    assert_eq!(e.status, StepStatus::Started);
    assert_eq!(set_by, StatusSetBy::Mpps);
}

#[test]
fn rows_that_cannot_be_entries_say_why() {
    let mut r = row(1);
    r.patient_id = Some("  ".into());
    assert_eq!(skipped(r), SkipReason::NoPatientId);
    let mut r = row(1);
    r.scheduled_start_date = Some("next tuesday".into());
    assert_eq!(skipped(r), SkipReason::NoDate);
    let mut r = row(1);
    r.scheduled_start_time = None;
    assert_eq!(skipped(r), SkipReason::NoTime);
    let mut r = row(1);
    r.performed_procedure_step_status = Some("ARCHIVED".into());
    assert_eq!(skipped(r), SkipReason::Status);
    let mut r = row(1);
    r.patient_id = Some("x".repeat(80));
    assert!(matches!(skipped(r), SkipReason::Invalid(f) if f.contains("patient_id")));
}
