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

/// `check-config` runs in an admin's shell, not the service's environment: a missing
/// credential is a warning saying where the service reads it; `sync` and `serve`, which
/// need it, refuse to start and name it. Its value is never shown.
#[test]
fn missing_credentials_are_named_and_never_echoed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = common::write_config(dir.path(), "https://calpendo.example.org", "");
    let config = path.to_str().expect("utf-8");
    let out = common::command(&["check-config", "--config", config])
        .env_remove("CALPENDO_PASSWORD")
        .env("CALPENDO_USERNAME", "user-name-value")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("warning: environment CALPENDO_PASSWORD: not set in this shell")
            && text.contains("/etc/mwlbridge/credentials"),
        "{text}"
    );
    assert!(!text.contains("CALPENDO_USERNAME"), "{text}");
    assert!(!text.contains("user-name-value"), "{text}");

    let out = common::command(&["sync", "--once", "--config", config])
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
    // Its study_instance_uid mapping is dropped (the derived UID is stable), and said so.
    assert!(text.contains(": usable, with "), "{text}");
    assert!(
        text.contains("warning: data_sources[0].config.field_mapping.study_instance_uid"),
        "{text}"
    );
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
fn a_config_that_runs_no_source_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("empty.toml");
    std::fs::write(&path, "[server]\nport = 11112\n").expect("write");
    let out = run(&["check-config", "--config", path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("usable, with 1 warning"), "{text}");
    assert!(
        text.contains("warning: sources: no enabled data source"),
        "{text}"
    );
    assert!(!text.contains(": OK"), "{text}");
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

/// A database the running user cannot write (e.g. created by `sudo mwlbridge token
/// create` before the service's first start) stops the command at once with the file,
/// its owner and what to do, instead of failing every later write.
#[test]
fn a_database_this_user_cannot_write_is_named_with_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let db = dir.path().join("worklist.db");
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\n\n[admin]\nenabled = false\n",
            db.display()
        ),
    )
    .expect("write");
    let c = config.to_str().expect("utf-8");
    let created = run(&[
        "token", "create", "--config", c, "--name", "x", "--role", "read",
    ]);
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    let args = ["worklist", "--config", c];
    let as_root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let out = if as_root.unwrap_or(false) {
        // Root writes any file: run as another user, as a service would.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        std::process::Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(common::bin())
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .expect("runuser runs")
    } else {
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        run(&args)
    };
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot write {}", db.display())),
        "{err}"
    );
    assert!(err.contains("the file belongs to uid"), "{err}");
    assert!(err.contains("chown"), "{err}");
}
