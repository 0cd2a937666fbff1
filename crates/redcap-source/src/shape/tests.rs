//! Tests of shaping export rows into entries.

use jiff::civil::date;
use serde_json::json;

use super::*;
use crate::config::{RedcapKind, SiteContext, parse_settings};
use crate::export::parse_rows;

fn config(extra: serde_json::Value) -> RedcapConfig {
    let mut v = json!({
        "site": "792",
        "protocol": {"792": "BRAIN_MRI_3T"},
        "field_mapping": {
            "scheduled_date": "scheduled_start_date", "scheduled_time": "scheduled_start_time",
            "mri_wt_lbs": "patient_weight_lb", "status": "performed_procedure_step_status",
            "station_name": "station_name"
        }
    });
    if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    let env = |k: &str| match k {
        "REDCAP_API_URL" => Some("http://127.0.0.1:1/api/".to_string()),
        "REDCAP_API_TOKEN" => Some("T".to_string()),
        _ => None,
    };
    parse_settings(&v, RedcapKind::Redcap, &env, &SiteContext::default()).expect("valid config")
}

fn meta() -> Metadata {
    Metadata {
        fields: vec!["record_id".into()],
        choices: [("demo_sex".to_string(), "1, Male | 2, Female".to_string())].into(),
    }
}

fn rows() -> Vec<Row> {
    parse_rows(json!([
        {"record_id": "7", "redcap_repeat_instrument": "", "study_id": "CPIP-FAKE7",
         "family_id": "FAM-FAKE3", "demo_sex": "2", "neuro_pcp": "true", "mri_date": ""},
        {"record_id": "7", "redcap_repeat_instrument": "mri", "mri_instance": "2",
         "mri_date": "2026-12-05", "mri_time": "08:00", "scheduled_date": "2026/12/06",
         "scheduled_time": "0930", "mri_wt_lbs": "100", "status": "CANCELLED",
         "station_name": "NaN"},
        {"record_id": "7", "redcap_repeat_instrument": "mri", "mri_instance": "3",
         "mri_date": "2026-12-07", "mri_time": ""},
        {"record_id": "8", "redcap_repeat_instrument": "", "study_id": "", "family_id": "F"},
        {"record_id": "8", "redcap_repeat_instrument": "mri", "mri_instance": "1",
         "mri_date": "2026-12-05", "mri_time": "10:00"},
        {"record_id": "9", "redcap_repeat_instrument": "", "study_id": "S9"},
        {"record_id": "9", "redcap_repeat_instrument": "mri", "mri_instance": "1",
         "mri_date": "05/12/2026", "mri_time": "10:00"}
    ]))
    .expect("rows")
}

#[test]
fn baseline_merges_into_each_visit_and_incomplete_rows_are_skipped() {
    let c = config(json!({}));
    let (visits, skipped) = visits(&rows(), "record_id", &c);
    assert_eq!(visits.len(), 3);
    assert_eq!(visits[0].entry_record_id(), "7:2");
    assert_eq!(visits[0].get("study_id"), Some("CPIP-FAKE7"));
    assert_eq!(visits[0].get("station_name"), None, "NaN is no value");
    assert_eq!(
        skipped,
        vec![("7".to_string(), Skip::Missing("mri_time".into()))]
    );
}

#[test]
fn entries_follow_pylantir() {
    let c = config(json!({}));
    let (visits, _) = visits(&rows(), "record_id", &c);
    let e = entry("redcap", &visits[0], &c, &meta()).expect("entry");
    assert_eq!(e.patient_id, "sub_ng_FAKE7_ses_2_fam_FAKE3_site_792");
    assert_eq!(e.patient_name.as_deref(), Some("cpip-id-ng_FAKE7^fa-FAKE3"));
    assert_eq!(e.source_record_id, "7:2");
    assert_eq!(
        e.start,
        date(2026, 12, 6).at(9, 30, 0, 0),
        "mapped start wins"
    );
    assert_eq!(e.patient_weight_kg, Some(45.36));
    assert_eq!(e.patient_sex.as_deref(), Some("F"));
    assert_eq!(e.status, StepStatus::Discontinued);
    assert_eq!(e.modality.as_deref(), Some("MR"));
    assert_eq!(e.sps_description.as_deref(), Some("BRAIN_MRI_3T"));
    assert_eq!(e.protocol_code_value.as_deref(), Some("BRAIN_MRI_3T"));
    assert_eq!(e.protocol_coding_scheme.as_deref(), Some("99MWLBRIDGE"));
    assert_eq!(e.protocol_code_meaning.as_deref(), Some("BRAIN_MRI_3T"));
    assert!(e.problems().is_empty(), "{:?}", e.problems());
    assert_eq!(e.station_name, None);
    assert_eq!(e.patient_birth_date, None);
    // No subject: skipped; an unreadable date: skipped, naming the field.
    assert_eq!(
        entry("redcap", &visits[1], &c, &meta()),
        Err(Skip::Missing("study_id".into()))
    );
    assert_eq!(
        entry("redcap", &visits[2], &c, &meta()),
        Err(Skip::Unreadable("mri_date".into()))
    );
}

#[test]
fn templates_and_protocol_mapping() {
    let c = config(json!({
        "patient_id_template": "{study_id}-{instance}",
        "patient_name_template": "{family_id}^{site}",
        "protocol": "P",
        "field_mapping": {"station_name": "protocol_name", "demo_sex": "demo_sex"}
    }));
    let mut v = visits(&rows(), "record_id", &c).0.remove(0);
    assert_eq!(protocol(&v, &c).map(|p| p.name), Some("P".to_string()));
    v.fields.insert("station_name".into(), "CUSTOM".into());
    let e = entry("redcap", &v, &c, &Metadata::default()).expect("entry");
    assert_eq!(e.patient_id, "ng_FAKE7-2");
    assert_eq!(e.patient_name.as_deref(), Some("FAKE3^792"));
    assert_eq!(e.sps_description.as_deref(), Some("CUSTOM"));
    assert_eq!(e.start, date(2026, 12, 5).at(8, 0, 0, 0));
    assert_eq!(e.patient_sex, None, "code 2 without choices is not a sex");
}

#[test]
fn protocol_code_scheme_mapped_configured_or_default() {
    let c = config(json!({
        "protocol_coding_scheme": "99CPIP",
        "field_mapping": {"station_name": "hisris_coding_designator"}
    }));
    let mut v = visits(&rows(), "record_id", &c).0.remove(0);
    let e = entry("redcap", &v, &c, &meta()).expect("entry");
    assert_eq!(e.protocol_code_value.as_deref(), Some("BRAIN_MRI_3T"));
    assert_eq!(
        e.protocol_coding_scheme.as_deref(),
        Some("99CPIP"),
        "NaN: the configured one"
    );
    v.fields.insert("station_name".into(), "GEHC".into());
    let e = entry("redcap", &v, &c, &meta()).expect("entry");
    assert_eq!(
        e.protocol_coding_scheme.as_deref(),
        Some("GEHC"),
        "the mapped field wins"
    );

    let bad =
        serde_json::json!({"site": "792", "protocol_coding_scheme": "MUCH_TOO_LONG_DESIGNATOR"});
    let env = |k: &str| match k {
        "REDCAP_API_URL" => Some("http://127.0.0.1:1/api/".to_string()),
        "REDCAP_API_TOKEN" => Some("T".to_string()),
        _ => None,
    };
    assert!(parse_settings(&bad, RedcapKind::Redcap, &env, &SiteContext::default()).is_err());

    // No protocol at all: no code.
    let none = config(json!({"protocol": {"1": "OTHER"}}));
    let v = visits(&rows(), "record_id", &none).0.remove(0);
    let e = entry("redcap", &v, &none, &meta()).expect("entry");
    assert_eq!(e.protocol_code_value, None);
    assert_eq!(e.protocol_coding_scheme, None);
}

#[test]
fn identifier_shaping() {
    assert_eq!(after_last_dash("CPIP-X-123"), "123");
    assert_eq!(after_last_dash("123"), "123");
    assert_eq!(study_part("CPIP-1", Some("1")), "ng_1");
    assert_eq!(study_part("CPIP-ng_1", Some("TRUE")), "ng_1");
    assert_eq!(study_part("CPIP-1", Some("0")), "1");
    assert_eq!(study_part("CPIP-1", None), "1");
    assert_eq!(step_status("in progress"), StepStatus::Started);
    assert_eq!(step_status("COMPLETED"), StepStatus::Completed);
    assert_eq!(step_status("whatever"), StepStatus::Scheduled);
}

#[test]
fn a_protocol_tables_mapping_is_the_coding_scheme_not_a_site() {
    // Pylantir's legacy `"protocol": {"792": ..., "mapping": "GEHC"}`.
    let c = config(json!({"protocol": {"792": "BRAIN_MRI_3T", "mapping": "GEHC"}}));
    let v = visits(&rows(), "record_id", &c).0.remove(0);
    let e = entry("redcap", &v, &c, &meta()).expect("entry");
    assert_eq!(e.protocol_code_value.as_deref(), Some("BRAIN_MRI_3T"));
    assert_eq!(e.protocol_coding_scheme.as_deref(), Some("GEHC"));
    // An explicit protocol_coding_scheme wins.
    let c = config(json!({
        "protocol": {"792": "BRAIN_MRI_3T", "mapping": "GEHC"},
        "protocol_coding_scheme": "99CPIP"
    }));
    assert_eq!(c.protocol_coding_scheme, "99CPIP");
    // A mapping that is no designator: a warning, and the default.
    let c = config(json!({"protocol": {"792": "P", "mapping": "not a designator at all!"}}));
    assert_eq!(c.protocol_coding_scheme, "99MWLBRIDGE");
    assert!(
        c.warnings
            .iter()
            .any(|w| w.to_string().starts_with("protocol.mapping")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn a_visit_is_keyed_by_its_repeat_instance_so_an_edited_session_keeps_its_entry() {
    let c = config(json!({}));
    let export = |session: &str| {
        parse_rows(json!([
            {"record_id": "7", "redcap_repeat_instrument": "", "redcap_repeat_instance": "",
             "study_id": "CPIP-FAKE7", "family_id": "F3"},
            {"record_id": "7", "redcap_repeat_instrument": "mri", "redcap_repeat_instance": "4",
             "mri_instance": session, "mri_date": "2026-12-05", "mri_time": "08:00"}
        ]))
        .expect("rows")
    };
    let before = visits(&export("1"), "record_id", &c).0.remove(0);
    let after = visits(&export("2"), "record_id", &c).0.remove(0);
    assert_eq!(before.entry_record_id(), "7:4");
    assert_eq!(after.entry_record_id(), "7:4", "the same entry, updated");
    let e = entry("redcap", &after, &c, &meta()).expect("entry");
    assert!(e.patient_id.contains("_ses_2_"), "{}", e.patient_id);
}
