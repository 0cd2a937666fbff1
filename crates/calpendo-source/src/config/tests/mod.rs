//! Tests of reading a Calpendo source's settings.

use std::time::Duration;

use serde_json::{Value, json};
use worklist_store::OnCancel;

use super::*;

pub(crate) fn env_ok(k: &str) -> Option<String> {
    match k {
        "CALPENDO_USERNAME" => Some("mwlbridge".into()),
        "CALPENDO_PASSWORD" => Some("s3cr3t-pw".into()),
        _ => None,
    }
}

pub(crate) fn keys(problems: &[ConfigProblem]) -> Vec<&str> {
    problems.iter().map(|p| p.key.name()).collect()
}

const PYLANTIR: &str = r#"{"base_url":"https://x.calpendo.com","resources":["3T Diagnostic","EEG Lab"],"status_filter":"Approved","lookback_multiplier":2,"timezone":"America/Edmonton","resource_modality_mapping":{"3T":"MR","EEG":"EEG","Mock":"OT"},"field_mapping":{"patient_id":{"source_field":"title","_extract":{"pattern":"^([A-Z0-9]+)_.*","group":1}},"patient_name":{"source_field":"title","_extract":{"pattern":"^[A-Z0-9]+_(.+)$","group":1}},"study_description":{"source_field":"properties.project.formattedName","_extract":{"pattern":"^([^(]+)","group":1}},"accession_number":"id","study_instance_uid":"id"}}"#;

#[test]
fn pylantir_example_parses() {
    let v: Value = serde_json::from_str(PYLANTIR).unwrap();
    let c = parse_config(&v, &env_ok).unwrap();
    assert_eq!(c.base_url, "https://x.calpendo.com");
    assert_eq!(c.api_path, "/webdav");
    assert_eq!(c.resources, vec!["3T Diagnostic", "EEG Lab"]);
    assert_eq!(c.status_filter, vec!["Approved"]);
    assert_eq!(c.lookback_multiplier, Some(2.0));
    assert_eq!(c.timezone, "America/Edmonton");
    assert_eq!(c.source_timezone, "America/Edmonton");
    assert_eq!(
        c.resource_modality_mapping.lookup("3T Diagnostic"),
        Some("MR")
    );
    assert_eq!(c.resource_modality_mapping.lookup("EEG Lab"), Some("EEG"));
    assert_eq!(c.resource_modality_mapping.lookup("7T"), None);
    assert!(c.field_mapping.get(Target::PatientId).is_some());
    assert!(c.field_mapping.get(Target::PatientName).is_some());
    assert!(c.field_mapping.get(Target::AccessionNumber).is_some());
    // study_instance_uid → id is dropped, with a note.
    assert!(c.field_mapping.get(Target::StudyInstanceUid).is_none());
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings[0].to_string().contains("study_instance_uid"));
    // Pylantir sends no Scheduled Station AE Title; without a mapping neither do we.
    assert!(
        c.warnings[1].to_string().starts_with(
            "station_aet_mapping: no entry for the resources \"3T Diagnostic\", \"EEG Lab\""
        ),
        "{}",
        c.warnings[1]
    );
    assert_eq!(
        c.window_mode,
        WindowMode::Rolling {
            past_days: 0,
            future_days: 1
        }
    );
    assert_eq!(c.max_workers, 5);
    assert_eq!(c.sync_interval, Duration::from_secs(60));
    assert_eq!(c.sync_deadline, Duration::from_secs(90));
    assert_eq!(c.request_timeout, Duration::from_secs(30));
    assert_eq!(c.detail_refresh, Duration::from_secs(600));
    assert_eq!(c.on_cancel, OnCancel::Discontinue);
    assert_eq!(c.username, "mwlbridge");
    assert_eq!(c.password.expose(), "s3cr3t-pw");
}

#[test]
fn debug_redacts_the_password() {
    let v: Value = serde_json::from_str(PYLANTIR).unwrap();
    let c = parse_config(&v, &env_ok).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("s3cr3t-pw"));
    assert!(dbg.contains("redacted"));
}

#[test]
fn every_problem_is_reported() {
    let v = json!({
        "base_url": "ftp://x",
        "resources": [],
        "timezone": "America/Edmonten",
        "max_workers": 64,
        "on_cancel": "remove",
        "window_mode": "weekly",
        "sync_deadline": -1,
        "station_aet_mapping": {"3T": "A_VERY_LONG_AE_TITLE_X"},
        "resource_modality_mapping": {"3T": "M-R"},
        "field_mapping": {
            "patient_idd": "title",
            "patient_name": {"source_field": "title", "_extract": {"pattern": "([a-z"}},
            "study_description": {"_extract": {"pattern": "x", "group": 3}},
        },
        "resourcez": ["3T"],
    });
    let problems = parse_config(&v, &|_| None).unwrap_err();
    let k = keys(&problems);
    for expected in [
        "base_url",
        "resources",
        "timezone",
        "max_workers",
        "on_cancel",
        "window_mode",
        "sync_deadline",
        "station_aet_mapping.3T",
        "resource_modality_mapping.3T",
        "field_mapping.patient_idd",
        "field_mapping.patient_name._extract.pattern",
        "field_mapping.study_description.source_field",
        "field_mapping.study_description._extract.group",
        "resourcez",
        "CALPENDO_USERNAME",
        "CALPENDO_PASSWORD",
    ] {
        assert!(k.contains(&expected), "{expected} missing from {k:?}");
    }
    let typo = problems
        .iter()
        .find(|p| p.key.name() == "resourcez")
        .unwrap();
    assert!(typo.message.contains("resourcez"), "{}", typo.message);
    assert!(
        typo.message.contains("did you mean \"resources\""),
        "{}",
        typo.message
    );
    let unknown = problems
        .iter()
        .find(|p| p.key.name() == "field_mapping.patient_idd")
        .unwrap();
    assert!(
        unknown.message.contains("patient_id"),
        "{}",
        unknown.message
    );
}

#[test]
fn missing_env_vars_are_named_and_password_never_shown() {
    let v = json!({"base_url": "https://x", "resources": ["3T"]});
    let only_user = |k: &str| (k == "CALPENDO_USERNAME").then(|| "u".to_string());
    let problems = parse_config(&v, &only_user).unwrap_err();
    assert_eq!(keys(&problems), vec!["CALPENDO_PASSWORD"]);
    assert!(problems[0].to_string().contains("CALPENDO_PASSWORD"));

    let only_pw = |k: &str| (k == "CALPENDO_PASSWORD").then(|| "hunter2".to_string());
    let problems = parse_config(&v, &only_pw).unwrap_err();
    assert_eq!(keys(&problems), vec!["CALPENDO_USERNAME"]);
    for p in &problems {
        assert!(!p.to_string().contains("hunter2"));
    }
}

#[test]
fn base_url_from_env_only_when_config_has_none() {
    let env = |k: &str| match k {
        "CALPENDO_API_URL" => Some("https://env.example/".to_string()),
        _ => env_ok(k),
    };
    let c = parse_config(&json!({"resources": ["3T"]}), &env).unwrap();
    assert_eq!(c.base_url, "https://env.example");
    let c = parse_config(
        &json!({"base_url": "http://cfg.example:8080", "resources": ["3T"]}),
        &env,
    )
    .unwrap();
    assert_eq!(c.base_url, "http://cfg.example:8080");
    let problems = parse_config(&json!({"resources": ["3T"]}), &env_ok).unwrap_err();
    assert_eq!(keys(&problems), vec!["base_url"]);
    assert!(problems[0].message.contains("CALPENDO_API_URL"));
}

#[test]
fn base_url_with_credentials_is_rejected_without_echo() {
    let v = json!({"base_url": "https://user:topsecret@x.example", "resources": ["3T"]});
    let problems = parse_config(&v, &env_ok).unwrap_err();
    assert_eq!(keys(&problems), vec!["base_url"]);
    assert!(!problems[0].message.contains("topsecret"));
}

#[test]
fn bad_regex_is_a_problem_at_its_path() {
    let v = json!({"base_url": "https://x", "resources": ["3T"], "field_mapping": {
        "patient_id": {"source_field": "title", "_extract": {"pattern": "^(unclosed", "group": 1}}
    }});
    let problems = parse_config(&v, &env_ok).unwrap_err();
    assert_eq!(
        keys(&problems),
        vec!["field_mapping.patient_id._extract.pattern"]
    );
    assert!(problems[0].message.contains("invalid regular expression"));
}

#[test]
fn template_extract() {
    let v = json!({"base_url": "https://x", "resources": ["3T"], "field_mapping": {
        "patient_name": {"source_field": "title",
            "_extract": {"pattern": "^([^_]+)_([^_]+)_(.+)$", "template": "$2^$3"}}
    }});
    let c = parse_config(&v, &env_ok).unwrap();
    let rule = c.field_mapping.get(Target::PatientName).unwrap();
    let e = rule.extract.as_ref().unwrap();
    assert_eq!(e.apply("SUB001_Doe_John").as_deref(), Some("Doe^John"));
    // No match: the text as is.
    assert_eq!(e.apply("SUB001").as_deref(), Some("SUB001"));
}

#[test]
fn template_refs_to_missing_groups_are_problems() {
    let v = json!({"base_url": "https://x", "resources": ["3T"], "field_mapping": {
        "patient_name": {"source_field": "title",
            "_extract": {"pattern": "^([^_]+)_(.+)$", "template": "$1_$2"}},
        "patient_id": {"source_field": "title",
            "_extract": {"pattern": "^(x)", "group": 1, "template": "$1"}},
    }});
    let problems = parse_config(&v, &env_ok).unwrap_err();
    let k = keys(&problems);
    assert!(
        k.contains(&"field_mapping.patient_name._extract.template"),
        "{k:?}"
    );
    assert!(k.contains(&"field_mapping.patient_id._extract"), "{k:?}");
    // ${1}_${2} is fine.
    let v = json!({"base_url": "https://x", "resources": ["3T"], "field_mapping": {
        "patient_name": {"source_field": "title",
            "_extract": {"pattern": "^(?P<a>[^_]+)_(.+)$", "template": "${1}_$2 $a $$"}},
    }});
    assert!(parse_config(&v, &env_ok).is_ok());
}

#[test]
fn aliases_map_to_the_same_targets() {
    assert_eq!(Target::from_name("sps_id"), Some(Target::SpsId));
    assert_eq!(
        Target::from_name("scheduled_procedure_step_id"),
        Some(Target::SpsId)
    );
    assert_eq!(
        Target::from_name("performing_physician"),
        Some(Target::PerformingPhysicianName)
    );
    assert_eq!(
        Target::from_name("scheduled_station_aetitle"),
        Some(Target::StationAeTitle)
    );
    assert_eq!(
        Target::from_name("scheduled_procedure_step_description"),
        Some(Target::SpsDescription)
    );
    for t in Target::ALL {
        assert_eq!(Target::from_name(t.name()), Some(t));
    }
    let v = json!({"base_url": "https://x", "resources": ["3T"], "field_mapping": {
        "sps_id": "id", "scheduled_procedure_step_id": "id"
    }});
    let problems = parse_config(&v, &env_ok).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
}

#[test]
fn status_filter_forms() {
    let base =
        |sf: Value| json!({"base_url": "https://x", "resources": ["3T"], "status_filter": sf});
    let c = parse_config(
        &base(json!(["Approved", "In Progress", "Approved"])),
        &env_ok,
    )
    .unwrap();
    assert_eq!(c.status_filter, vec!["Approved", "In Progress"]);
    assert!(c.status_selected("In Progress"));
    assert!(!c.status_selected("Cancelled"));
    let c = parse_config(&base(json!("")), &env_ok).unwrap();
    assert!(c.status_filter.is_empty());
    assert!(c.status_selected("Cancelled"));
    assert!(parse_config(&base(json!(5)), &env_ok).is_err());
}

#[test]
fn numbers_and_limits() {
    let v = json!({"base_url": "https://x/", "api_path": "api/", "resources": ["3T"],
        "sync_deadline": 0.5, "request_timeout": 2, "max_workers": 32, "on_cancel": "delete",
        "lookback_multiplier": 0.5, "source_timezone": "America/Toronto"});
    let c = parse_config(&v, &env_ok).unwrap();
    assert_eq!(c.base_url, "https://x");
    assert_eq!(c.api_path, "/api");
    assert_eq!(c.sync_deadline, Duration::from_millis(500));
    assert_eq!(c.request_timeout, Duration::from_secs(2));
    assert_eq!(c.max_workers, 32);
    assert_eq!(c.on_cancel, OnCancel::Delete);
    assert_eq!(c.source_timezone, "America/Toronto");
    let v = json!({"base_url": "https://x", "resources": ["3T"], "max_workers": 0,
        "lookback_multiplier": 0, "source_timezone": "Mars/Olympus"});
    let problems = parse_config(&v, &env_ok).unwrap_err();
    let mut k = keys(&problems);
    k.sort();
    assert_eq!(
        k,
        vec!["lookback_multiplier", "max_workers", "source_timezone"]
    );
}

#[test]
fn detail_refresh_range() {
    let with =
        |v: Value| json!({"base_url": "https://x", "resources": ["3T"], "detail_refresh": v});
    let c = parse_config(&with(json!(0)), &env_ok).unwrap();
    assert_eq!(c.detail_refresh, Duration::ZERO);
    let c = parse_config(&with(json!(86_400)), &env_ok).unwrap();
    assert_eq!(c.detail_refresh, Duration::from_secs(86_400));
    let c = parse_config(&with(json!(1.5)), &env_ok).unwrap();
    assert_eq!(c.detail_refresh, Duration::from_millis(1500));
    for bad in [json!(-1), json!(86_401), json!("600"), json!(true)] {
        let problems = parse_config(&with(bad.clone()), &env_ok).unwrap_err();
        assert_eq!(keys(&problems), vec!["detail_refresh"], "{bad}");
    }
}

#[test]
fn bad_tzdir_is_a_problem() {
    let v = json!({"base_url": "https://x", "resources": ["3T"], "tzdir": "/nonexistent/zoneinfo"});
    let problems = parse_config(&v, &env_ok).unwrap_err();
    assert_eq!(keys(&problems), vec!["tzdir"]);
}

#[test]
fn not_an_object() {
    let problems = parse_config(&json!([1]), &env_ok).unwrap_err();
    assert!(problems.iter().any(|p| p.key.name().is_empty()));
}

#[test]
fn every_key_is_defined_once_and_the_docs_table_matches() {
    let mut names: Vec<&str> = known_keys().collect();
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n, "a key is defined twice");
    let docs = include_str!("../../../../../docs/configuration.md");
    let start = docs
        .find("### Calpendo source keys")
        .expect("docs/configuration.md has a Calpendo key section");
    let table: String = docs[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        table,
        docs_table(),
        "docs/configuration.md's Calpendo table differs from the keys' definitions \
         (crates/calpendo-source/src/config/keys.rs); paste docs_table()'s output there"
    );
}

mod pylantir;
mod window;

#[test]
fn resources_without_a_station_are_named() {
    let parse = |extra: Value| {
        let mut v = json!({"base_url": "https://x.calpendo.com", "resources": ["3T", "EEG"]});
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        parse_config(&v, &env_ok).expect("valid")
    };
    let texts = |c: &CalpendoConfig| c.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let partly = parse(json!({"station_aet_mapping": {"3T Diagnostic": "MR3T"}}));
    assert_eq!(texts(&partly).len(), 1, "{:?}", texts(&partly));
    assert!(
        texts(&partly)[0].contains("the resources \"EEG\":"),
        "{:?}",
        texts(&partly)
    );
    let covered = parse(json!({"station_aet_mapping": {"3T": "MR3T", "EEG": "EEG1"}}));
    assert!(covered.warnings.is_empty(), "{:?}", texts(&covered));
    let mapped = parse(json!({"field_mapping": {"station_ae_title": "properties.description"}}));
    assert!(mapped.warnings.is_empty(), "{:?}", texts(&mapped));
}

#[test]
fn fetch_mode_is_auto_bulk_or_details() {
    let parse = |extra: Value| {
        let mut v = json!({"base_url": "https://x.calpendo.com", "resources": ["3T"]});
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        parse_config(&v, &env_ok)
    };
    assert_eq!(parse(json!({})).unwrap().fetch_mode, FetchMode::Auto);
    for (text, mode) in [
        ("auto", FetchMode::Auto),
        ("bulk", FetchMode::Bulk),
        (" Details ", FetchMode::Details),
    ] {
        assert_eq!(parse(json!({"fetch_mode": text})).unwrap().fetch_mode, mode);
    }
    for bad in [json!("fast"), json!(1)] {
        let problems = parse(json!({"fetch_mode": bad})).unwrap_err();
        assert_eq!(keys(&problems), vec!["fetch_mode"], "{problems:?}");
    }
}
