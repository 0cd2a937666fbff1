//! Tests of reading a REDCap source's settings.

use std::time::Duration;

use serde_json::json;

use super::*;

fn env_ok(k: &str) -> Option<String> {
    match k {
        "REDCAP_API_URL" => Some("https://redcap.example.org/api/".into()),
        "REDCAP_API_TOKEN" => Some("TOKEN-s3cr3t".into()),
        _ => None,
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(v: serde_json::Value) -> Result<RedcapConfig, Vec<Problem>> {
    parse_settings(&v, RedcapKind::Redcap, &env_ok, &SiteContext::default())
}

fn texts(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

#[test]
fn pylantir_legacy_config_reads_with_defaults() {
    let c = parse(json!({
        "site": "792",
        "protocol": {"792": "BRAIN_MRI_3T", "793": "OTHER"},
        "field_mapping": {"mri_wt_lbs": "patient_weight_lb", "study_id": "study_id"},
        "sync_interval": 60
    }))
    .expect("valid");
    assert_eq!(c.site, "792");
    assert_eq!(c.protocol.as_deref(), Some("BRAIN_MRI_3T"));
    assert_eq!(c.mwl_days_ahead, 0);
    assert_eq!(c.modality, "MR");
    assert_eq!(
        (c.instrument.as_str(), c.date_field.as_str()),
        ("mri", "mri_date")
    );
    assert_eq!(
        (c.time_field.as_str(), c.instance_field.as_str()),
        ("mri_time", "mri_instance")
    );
    assert_eq!(c.full_refresh, Duration::from_secs(3600));
    assert_eq!(c.modified_margin, Duration::from_secs(300));
    assert_eq!(c.max_retries, 3);
    assert_eq!(c.api_url, "https://redcap.example.org/api/");
    assert_eq!(c.token.expose(), "TOKEN-s3cr3t");
    assert_eq!(c.timezone, "America/Edmonton");
    assert!(!format!("{c:?}").contains("s3cr3t"));
    assert!(c.warnings.is_empty());
}

#[test]
fn site_id_number_and_protocol_name() {
    let c = parse(json!({"site_id": 792, "protocol": "P1", "mwl_days_ahead": 2})).expect("valid");
    assert_eq!(c.site, "792");
    assert_eq!(c.protocol.as_deref(), Some("P1"));
    assert_eq!(c.mwl_days_ahead, 2);
    let c = parse(json!({"site": "793", "protocol": {"792": "P1"}})).expect("valid");
    assert_eq!(c.protocol, None);
    assert_eq!(c.warnings.len(), 1);
    let e = parse(json!({"site": "1", "site_id": "2"})).expect_err("disagree");
    assert_eq!(
        texts(&e),
        vec!["site_id: \"2\" differs from site \"1\"; give one of them"]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let v = json!({
        "protocol": 3,
        "mwl_days_ahead": -1,
        "field_mapping": {"mri_wt_lbs": 3},
        "modality": "M-R?",
        "date_field": "Date",
        "patient_id_template": "sub_{study_id",
        "full_refrsh": 10,
        "on_cancel": "drop",
        "max_retries": 99
    });
    let e = parse_settings(&v, RedcapKind::Concussion, &no_env, &SiteContext::default())
        .expect_err("invalid");
    let keys: Vec<&str> = e.iter().map(|p| p.key.name()).collect();
    for k in [
        "site",
        "protocol",
        "mwl_days_ahead",
        "field_mapping.mri_wt_lbs",
        "modality",
        "date_field",
        "patient_id_template",
        "full_refrsh",
        "on_cancel",
        "max_retries",
        "REDCAP_API_URL_CONCUSSION",
        "REDCAP_API_TOKEN_CONCUSSION",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    let t = texts(&e);
    assert!(
        t.iter()
            .any(|m| m.contains("did you mean \"full_refresh\"")),
        "{t:?}"
    );
    assert!(
        t.iter()
            .any(|m| m.starts_with("environment REDCAP_API_TOKEN_CONCUSSION"))
    );
}

#[test]
fn api_url_key_and_token_file_win_over_the_environment() {
    let dir = std::env::temp_dir().join(format!("redcap-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("token");
    std::fs::write(&file, "FILE-TOKEN\n").expect("write token");
    let c = parse(json!({
        "site": "1",
        "api_url": "http://127.0.0.1:8080/api/",
        "api_token_file": file.to_string_lossy()
    }))
    .expect("valid");
    assert_eq!(c.api_url, "http://127.0.0.1:8080/api/");
    assert_eq!(c.token.expose(), "FILE-TOKEN");
    let e = parse(json!({"site": "1", "api_url": "ftp://u:pw@x/",
                         "api_token_file": dir.join("absent").to_string_lossy()}))
    .expect_err("invalid");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(!texts(&e).iter().any(|m| m.contains("pw")));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn docs_configuration_md_holds_the_generated_table() {
    let docs = include_str!("../../../../docs/configuration.md");
    let start = docs
        .find("### REDCap source keys")
        .expect("docs/configuration.md has a REDCap key section");
    let table: String = docs[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect();
    if table != docs_table() {
        println!("{}", docs_table());
    }
    assert_eq!(
        table,
        docs_table(),
        "docs/configuration.md's REDCap table differs from the keys' definitions \
         (crates/redcap-source/src/config/keys.rs); paste docs_table()'s output there"
    );
}

#[test]
fn docs_table_lists_every_key() {
    let table = docs_table();
    for k in known_keys() {
        assert!(table.contains(&format!("| `{k}` |")), "{k}");
    }
    assert_eq!(table.lines().count(), KEYS.len() + 2);
}

#[test]
fn concussion_reads_its_own_variables() {
    let env = |k: &str| match k {
        "REDCAP_API_URL_CONCUSSION" => Some("https://c.example.org/api/".to_string()),
        "REDCAP_API_TOKEN_CONCUSSION" => Some("C-TOKEN".to_string()),
        _ => env_ok(k),
    };
    let c = parse_settings(
        &json!({"site": 1}),
        RedcapKind::Concussion,
        &env,
        &SiteContext::default(),
    )
    .expect("valid");
    assert_eq!(c.api_url, "https://c.example.org/api/");
    assert_eq!(c.token.expose(), "C-TOKEN");
    let site = SiteContext {
        timezone: Some("America/Toronto".into()),
        ..SiteContext::default()
    };
    let c = parse_settings(&json!({"site": 1}), RedcapKind::Redcap, &env_ok, &site).expect("valid");
    assert_eq!(c.timezone, "America/Toronto");
    let e = parse_settings(
        &json!({"site": 1, "timezone": "America/Edmonton"}),
        RedcapKind::Redcap,
        &env_ok,
        &site,
    )
    .expect_err("zones differ");
    assert_eq!(e[0].key.name(), "timezone");
}
