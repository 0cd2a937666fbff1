//! `mwlbridge check-config` on real files: every problem at once, the exit codes, and
//! Pylantir's JSON format accepted as is.

mod common;

use common::{run, stderr, stdout};

#[test]
fn three_independent_mistakes_are_all_reported_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[server]
port = 99999

[site]
timezone = "America/Edmonten"

[[sources]]
type = "calpendo"
base_url = "https://calpendo.example.org"
resources = ["3T"]
max_workers = 0
"#,
    )
    .expect("write");
    let out = run(&["check-config", "--config", path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("has 3 problems"), "{err}");
    assert!(err.contains("server.port: 99999 is out of range"), "{err}");
    assert!(
        err.contains("site.timezone: unknown time zone \"America/Edmonten\""),
        "{err}"
    );
    assert!(err.contains("sources[0].max_workers"), "{err}");
}

#[test]
fn missing_credentials_are_named_and_never_echoed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = common::write_config(dir.path(), "https://calpendo.example.org", "");
    let out = common::command(&["check-config", "--config", path.to_str().expect("utf-8")])
        .env_remove("CALPENDO_PASSWORD")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("CALPENDO_PASSWORD"), "{err}");
    assert!(!err.contains("CALPENDO_USERNAME"), "{err}");
}

#[test]
fn shipped_pylantir_example_validates() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/pylantir-example.json");
    let out = run(&["check-config", "--config", example]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("OK (Pylantir JSON)"), "{text}");
    assert!(
        text.contains("calling AE titles allowed: MRI_SCANNER, CT_SCANNER"),
        "{text}"
    );
    assert!(
        text.contains("ignored (Pylantir keys mwlbridge does not use): db_echo"),
        "{text}"
    );
}

#[test]
fn shipped_toml_example_validates() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/mwlbridge.toml");
    let out = run(&["check-config", "--config", example]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn unreadable_file_and_bad_usage() {
    let out = run(&["check-config", "--config", "/nonexistent/mwlbridge.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read the file"),
        "{}",
        stderr(&out)
    );
    let out = run(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&[
        "--log-level",
        "loud=?",
        "check-config",
        "--config",
        "x.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn version_names_the_tzdata() {
    let out = run(&["--version"]);
    assert!(
        stdout(&out).contains("bundled tzdata 2026"),
        "{}",
        stdout(&out)
    );
}
