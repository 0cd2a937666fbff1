//! Tests of the keys and defaults that let a Pylantir JSON config run unedited.

use serde_json::{Value, json};

use super::env_ok;
use crate::config::*;

fn base() -> Value {
    json!({"base_url": "https://x", "resources": ["3T"], "station_aet_mapping": {"3T": "MR3T"}})
}

fn with(extra: Value) -> Value {
    let mut v = base();
    if let (Value::Object(o), Value::Object(x)) = (&mut v, extra) {
        o.extend(x);
    }
    v
}

fn site(dialect: Dialect) -> SiteContext {
    SiteContext {
        dialect,
        ..Default::default()
    }
}

#[test]
fn api_path_default_follows_the_dialect() {
    let c = parse_settings(&base(), &env_ok, &site(Dialect::Pylantir)).unwrap();
    assert_eq!(c.api_path, "/api");
    let c = parse_settings(&base(), &env_ok, &site(Dialect::Mwlbridge)).unwrap();
    assert_eq!(c.api_path, "/webdav");
    let c = parse_config(&base(), &env_ok).unwrap();
    assert_eq!(c.api_path, DEFAULT_API_PATH);
    // Given, it wins in either dialect.
    for d in [Dialect::Pylantir, Dialect::Mwlbridge] {
        let c = parse_settings(&with(json!({"api_path": "/webdav/"})), &env_ok, &site(d)).unwrap();
        assert_eq!(c.api_path, "/webdav");
    }
}

#[test]
fn allowed_studies_forms() {
    let c = parse_config(
        &with(json!({"allowed_studies": [" BRISKP ", "Pilot", "BRISKP"]})),
        &env_ok,
    )
    .unwrap();
    assert_eq!(c.allowed_studies, vec!["BRISKP", "Pilot"]);
    assert!(c.study_allowed(Some("BRISKP")));
    assert!(c.study_allowed(Some("  Pilot ")));
    assert!(!c.study_allowed(Some("briskp")));
    assert!(!c.study_allowed(Some("Other")));
    assert!(!c.study_allowed(None));
    let c = parse_config(&with(json!({"allowed_studies": null})), &env_ok).unwrap();
    assert!(c.allowed_studies.is_empty());
    assert!(c.study_allowed(None));
    for (bad, key) in [
        (json!([]), "allowed_studies"),
        (json!("BRISKP"), "allowed_studies"),
        (json!(["BRISKP", " "]), "allowed_studies[1]"),
        (json!([3]), "allowed_studies[0]"),
    ] {
        let problems = parse_config(&with(json!({"allowed_studies": bad})), &env_ok).unwrap_err();
        let k: Vec<&str> = problems.iter().map(|p| p.key.name()).collect();
        assert_eq!(k, vec![key]);
    }
}

#[test]
fn site_and_protocol_are_accepted() {
    // A name, whatever the site.
    let c = parse_config(&with(json!({"protocol": "BRAIN"})), &env_ok).unwrap();
    assert_eq!(c.protocol.as_deref(), Some("BRAIN"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // A table: the site's entry; a numeric site is read as text.
    let table = json!({"792": "BRAIN_792", "800": "BRAIN_800"});
    for site in [json!("800"), json!(800)] {
        let v = with(json!({"site": site, "protocol": table}));
        let c = parse_config(&v, &env_ok).unwrap();
        assert_eq!(c.site.as_deref(), Some("800"));
        assert_eq!(c.protocol.as_deref(), Some("BRAIN_800"));
    }
    // Pylantir's site_id spelling.
    let v = with(json!({"site_id": "792", "protocol": table}));
    let c = parse_config(&v, &env_ok).unwrap();
    assert_eq!(c.protocol.as_deref(), Some("BRAIN_792"));
    // No entry for the site, or no site: a warning, no protocol.
    for v in [
        with(json!({"site": "1", "protocol": table})),
        with(json!({"protocol": table})),
    ] {
        let c = parse_config(&v, &env_ok).unwrap();
        assert_eq!(c.protocol, None);
        let k: Vec<&str> = c.warnings.iter().map(|p| p.key.name()).collect();
        assert_eq!(k, vec!["protocol"]);
    }
    // Wrong shapes are problems at their keys.
    let v = with(json!({"site": [1], "protocol": {"792": 5}}));
    let problems = parse_config(&v, &env_ok).unwrap_err();
    let mut k: Vec<&str> = problems.iter().map(|p| p.key.name()).collect();
    k.sort();
    assert_eq!(k, vec!["protocol.792", "site"]);
}

#[test]
fn pylantir_field_targets_are_accepted() {
    let v = with(json!({"field_mapping": {
        "protocol_name": "title",
        "patient_weight_lb": "properties.weight",
        "procedure_description": "title",
        "performed_procedure_step_status": "status",
        "hisris_coding_designator": "properties.coding",
    }}));
    let c = parse_config(&v, &env_ok).unwrap();
    for t in [
        Target::ProtocolName,
        Target::PatientWeightLb,
        Target::RequestedProcedureDescription,
        Target::PerformedProcedureStepStatus,
        Target::HisrisCodingDesignator,
    ] {
        assert!(c.field_mapping.get(t).is_some(), "{t}");
    }
    // Each has its home now (the designator: the protocol code): no warning.
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // procedure_description is Pylantir's name of requested_procedure_description.
    let v = with(json!({"field_mapping": {
        "procedure_description": "title", "requested_procedure_description": "title"}}));
    let problems = parse_config(&v, &env_ok).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
}
