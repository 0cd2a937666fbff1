//! The config's unit tests: both forms, defaults and every problem reported.

use super::*;

fn toml(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("test.toml"))
}

fn keys(err: &ConfigError) -> Vec<&str> {
    err.problems.iter().map(|p| p.key.name()).collect()
}

#[test]
fn empty_toml_gives_defaults() {
    let c = toml("").expect("valid");
    assert_eq!(c.server.ae_title, DEFAULT_AE_TITLE);
    assert_eq!(c.server.port, DEFAULT_PORT);
    assert_eq!(c.server.character_set, "ISO_IR 192");
    assert_eq!(c.store.retention_days, 30);
    assert_eq!(c.site.timezone, "America/Edmonton");
    assert!(c.sources.is_empty());
}

#[test]
fn shipped_example_parses() {
    let text = include_str!("../../../../config/mwlbridge.toml");
    let c = toml(text).expect("the shipped example is valid");
    assert_eq!(c.sources.len(), 1);
    let s = &c.sources[0];
    assert_eq!(
        (s.name.as_str(), s.kind, s.enabled),
        ("calpendo", SourceKind::Calpendo, true)
    );
    // Source-specific keys are handed over whole, generic ones are not.
    assert!(s.settings.contains_key("base_url"));
    assert!(s.settings.contains_key("field_mapping"));
    assert!(!s.settings.contains_key("name"));
    assert!(!s.settings.contains_key("type"));
}

#[test]
fn pylantir_json_without_db_path_uses_pylantirs_default_file() {
    let c = Config::from_pylantir_json("{}", Path::new("p.json")).expect("valid");
    assert!(
        c.store.path.ends_with("Desktop/worklist.db"),
        "{}",
        c.store.path.display()
    );
    let c = Config::from_pylantir_json(
        r#"{"store": {"path": "/srv/mwl/worklist.db", "retention_days": 7}}"#,
        Path::new("p.json"),
    )
    .expect("valid");
    assert_eq!(c.store.path, Path::new("/srv/mwl/worklist.db"));
    assert_eq!(c.store.retention_days, 7);
}

#[test]
fn a_legacy_or_fixed_offset_site_zone_is_a_warning() {
    let c = toml("[site]\ntimezone = \"MST\"\n").expect("usable");
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(
        c.warnings[0]
            .to_string()
            .starts_with("site.timezone: \"MST\" is a legacy or fixed-offset zone"),
        "{:?}",
        c.warnings
    );
    let c = toml("[site]\ntimezone = \"Etc/GMT+7\"\n").expect("usable");
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    for zone in ["UTC", "America/Edmonton", "America/Regina"] {
        let c = toml(&format!("[site]\ntimezone = \"{zone}\"\n")).expect("usable");
        assert_eq!(
            c.warnings.len(),
            1,
            "{zone}: only 'no source': {:?}",
            c.warnings
        );
    }
}

#[test]
fn unnamed_sources_get_distinct_names_and_named_ones_keep_theirs() {
    let c = Config::from_pylantir_json(
        r#"{"data_sources": [
            {"type": "calpendo", "config": {}},
            {"type": "calpendo", "config": {}},
            {"name": "calpendo-2", "type": "calpendo", "config": {}}
        ]}"#,
        Path::new("p.json"),
    )
    .expect("valid");
    let names: Vec<&str> = c.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["calpendo", "calpendo-3", "calpendo-2"]);
}

#[test]
fn admin_defaults_to_loopback_8080() {
    let c = toml("").expect("valid");
    assert_eq!(c.admin, AdminConfig::default());
    assert!(c.admin.enabled);
    assert_eq!(c.admin.bind, IpAddr::from([127, 0, 0, 1]));
    assert_eq!(c.admin.port, 8080);
    let c = toml(
        "[admin]\nenabled = false\nbind = \"0.0.0.0\"\nport = 9443\nunready_after_intervals = 5\nsession_hours = 2\n",
    )
    .expect("valid");
    assert!(!c.admin.enabled);
    assert_eq!(c.admin.port, 9443);
    assert_eq!(c.admin.unready_after_intervals, 5);
    assert_eq!(c.admin.session_lifetime, Duration::from_secs(7200));
}

#[test]
fn dicomweb_is_on_at_dicomweb_by_default_and_its_base_is_checked() {
    let c = toml("").expect("valid");
    assert_eq!(
        c.admin.dicomweb,
        DicomwebConfig {
            enabled: true,
            base: "/dicomweb".into()
        }
    );
    let c = toml("[admin.dicomweb]\nenabled = false\nbase = \"/pacs/dicom-web\"\n").expect("valid");
    assert!(!c.admin.dicomweb.enabled);
    assert_eq!(c.admin.dicomweb.base, "/pacs/dicom-web");
    for bad in ["dicomweb", "/dicomweb/", "/", "/a//b", "/{x}", "/dicom web"] {
        let err = toml(&format!("[admin.dicomweb]\nbase = {bad:?}\n")).expect_err(bad);
        assert_eq!(keys(&err), ["admin.dicomweb.base"], "{bad}");
    }
    let err = toml("[admin.dicomweb]\nenable = true\n").expect_err("unknown key");
    assert_eq!(keys(&err), ["admin.dicomweb.enable"]);
}

#[test]
fn admin_problems_and_the_reserved_source_name_are_reported() {
    let err = toml(
        r#"
        [admin]
        bind = "localhost:80"
        port = 0
        tls = { certificate = "/nonexistent/cert.pem" }
        colour = "blue"
        [[sources]]
        name = "manual"
        type = "calpendo"
        "#,
    )
    .expect_err("invalid");
    let keys = keys(&err);
    for key in [
        "admin.bind",
        "admin.port",
        "admin.tls.certificate",
        "admin.colour",
        "sources[0].name",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert!(err.to_string().contains("reserved"), "{err}");
}

#[test]
fn character_set_takes_the_scp_terms_and_refuses_others() {
    let c = toml("[server]\ncharacter_set = \"ISO_IR_100\"").unwrap();
    assert_eq!(c.server.character_set, "ISO_IR 100");
    for bad in ["ISO_IR 13", "", "GB18030"] {
        let err = toml(&format!("[server]\ncharacter_set = {bad:?}")).unwrap_err();
        assert_eq!(keys(&err), ["server.character_set"], "{bad:?}: {err}");
    }
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let err = toml(
        r#"
        [server]
        port = 70000
        ae_title = "THIS_AE_TITLE_IS_TOO_LONG"
        colour = "blue"
        [store]
        retention_days = "thirty"
        [site]
        timezone = "America/Edmonten"
        [[sources]]
        type = "ftp"
        "#,
    )
    .expect_err("invalid");
    assert_eq!(
        keys(&err),
        [
            "server.ae_title",
            "server.port",
            "server.colour",
            "store.retention_days",
            "site.timezone",
            "sources[0].type",
        ]
    );
    let text = err.to_string();
    assert!(text.starts_with("test.toml has 6 problems:"), "{text}");
    assert!(
        text.contains("test.toml: server.port: 70000 is out of range"),
        "{text}"
    );
}

#[test]
fn toml_syntax_error_is_one_problem_with_position() {
    let err = toml("[server\nport = 1").expect_err("invalid");
    assert_eq!(err.problems.len(), 1);
    assert!(err.problems[0].message.contains("not valid TOML"), "{err}");
    assert!(err.problems[0].message.contains("line 1"), "{err}");
}

#[test]
fn duplicate_source_names_are_reported() {
    let err = toml(
        r#"
        [[sources]]
        type = "calpendo"
        name = "scanners"
        [[sources]]
        type = "calpendo"
        name = "scanners"
        "#,
    )
    .expect_err("duplicate");
    assert_eq!(keys(&err), ["sources[1].name"]);
    assert!(
        err.partial.is_some(),
        "the rest is still there for the source checks"
    );
}

#[test]
fn pylantir_json_is_accepted_as_is() {
    let text = include_str!("../../../../config/pylantir-example.json");
    let c = Config::from_pylantir_json(text, Path::new("p.json")).expect("valid");
    assert_eq!(c.format, ConfigFormat::PylantirJson);
    assert_eq!(
        c.store.path,
        PathBuf::from("/var/lib/mwlbridge/worklist.db")
    );
    assert_eq!(c.server.allowed_calling_aets, ["MRI_SCANNER", "CT_SCANNER"]);
    assert_eq!(c.site.timezone, "America/Edmonton");
    assert_eq!(c.ignored_keys, ["db_echo"]);
    let s = &c.sources[0];
    assert_eq!((s.name.as_str(), s.enabled), ("calpendo", true));
    assert_eq!(s.operation_interval, None, "[0,0]-[23,59] means always");
    assert_eq!(
        s.settings["sync_interval"], 60,
        "db_update_interval is the default"
    );
    assert_eq!(s.settings["resources"][0], "3T Diagnostic");
    assert!(s.settings.contains_key("field_mapping"));
}

#[test]
fn pylantir_source_level_keys_and_home_paths() {
    let text = r#"{
        "db_path": "~/Desktop/worklist.db",
        "api": {"cors_allowed_origins": []},
        "data_sources": [
            {"name": "main_redcap", "type": "redcap", "enabled": false, "config": {}},
            {"name": "scanners", "type": "calpendo", "enabled": true, "sync_interval": 120,
             "operation_interval": {"start_time": [7, 0], "end_time": [19, 30]},
             "config": {"base_url": "https://c.example.org", "resources": ["3T"]},
             "field_mapping": {"patient_id": "title"}}
        ]
    }"#;
    let c = Config::from_pylantir_json(text, Path::new("p.json")).expect("valid");
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(
        c.store.path,
        PathBuf::from(format!("{home}/Desktop/worklist.db"))
    );
    assert_eq!(c.ignored_keys, ["api", "data_sources[0]"]);
    let s = &c.sources[0];
    assert_eq!(s.name, "scanners");
    assert_eq!(s.settings["sync_interval"], 120);
    assert_eq!(s.settings["field_mapping"]["patient_id"], "title");
    let t = |h, m| Time::new(h, m, 0, 0).expect("time");
    assert_eq!(s.operation_interval, Some((t(7, 0), t(19, 30))));
}

#[test]
fn pylantir_problems_are_all_reported() {
    let text = r#"{
        "db_update_interval": -5,
        "allowed_aet": ["OK", 7],
        "data_sources": [{"type": "calpendo", "enabled": "maybe", "sync": 1}]
    }"#;
    let err = Config::from_pylantir_json(text, Path::new("p.json")).expect_err("invalid");
    assert_eq!(
        keys(&err),
        [
            "db_update_interval",
            "allowed_aet[1]",
            "data_sources[0].enabled",
            "data_sources[0].sync",
        ]
    );
}

#[test]
fn invalid_json_is_one_problem() {
    let err =
        Config::from_pylantir_json("{\"db_path\": ", Path::new("p.json")).expect_err("invalid");
    assert!(err.to_string().contains("not valid JSON"), "{err}");
}
