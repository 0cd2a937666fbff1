//! The Debian package as `scripts/package.sh` builds it (cargo-deb, from the release
//! build): its files with their owners and modes, its control data (conffiles, computed
//! dependencies), the unit agreeing with the files the package ships, the packaged config
//! accepted by `check-config`, and what the maintainer scripts do, run with the commands
//! that would change this machine (adduser, install, systemctl, ...) replaced by stubs
//! that only record their arguments.
//!
//! Needs `cargo-deb` (`cargo install cargo-deb --locked`; scripts/test.sh installs it)
//! and `dpkg-deb`. The first test to run builds the package once for all of them.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{stderr, stdout};

/// The package, and what `dpkg-deb` says of it and unpacks from it.
struct Package {
    deb: PathBuf,
    /// `dpkg-deb -x`: the files as installed, under this root.
    root: PathBuf,
    /// `dpkg-deb -e`: control, conffiles, postinst, prerm, postrm.
    control: PathBuf,
    /// `dpkg-deb -c`: path (`./usr/bin/mwlbridge`) to its mode and owner
    /// (`-rwxr-xr-x`, `root/root`).
    listing: BTreeMap<String, (String, String)>,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd` and returns its stdout; any failure fails the test with its output.
fn checked(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} could not run: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn package() -> &'static Package {
    static PACKAGE: OnceLock<Package> = OnceLock::new();
    PACKAGE.get_or_init(|| {
        let printed = checked(Command::new(repo().join("scripts/package.sh")).current_dir(repo()));
        let arch = checked(Command::new("dpkg").arg("--print-architecture"));
        let name = format!(
            "mwlbridge_{}-1_{}.deb",
            env!("CARGO_PKG_VERSION"),
            arch.trim()
        );
        let deb = repo().join("target/debian").join(&name);
        assert!(
            deb.is_file(),
            "no {}; package.sh printed:\n{printed}",
            deb.display()
        );

        let work = repo().join("target/package-e2e");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).expect("target/package-e2e");
        let (root, control) = (work.join("root"), work.join("control"));
        checked(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
        checked(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
        let listing = checked(Command::new("dpkg-deb").arg("-c").arg(&deb))
            .lines()
            .filter_map(|line| {
                // -rwxr-xr-x root/root  12345 2026-12-06 03:00 ./usr/bin/mwlbridge
                let f: Vec<&str> = line.split_whitespace().collect();
                // cargo-deb records owners by number (0/0): the same as root/root.
                let owner = if f.get(1) == Some(&"0/0") {
                    "root/root"
                } else {
                    f.get(1)?
                };
                (f.len() >= 6).then(|| (f[5].to_string(), (f[0].to_string(), owner.to_string())))
            })
            .collect();
        Package {
            deb,
            root,
            control,
            listing,
        }
    })
}

/// Mode and owner of `path` (`./etc/...`) in the package.
fn entry(path: &str) -> (&'static str, &'static str) {
    let p = package();
    let (mode, owner) = p
        .listing
        .get(path)
        .unwrap_or_else(|| panic!("{path} is not in the package: {:#?}", p.listing));
    (mode, owner)
}

#[test]
fn binary_unit_config_and_credentials_have_their_places_owners_and_modes() {
    assert_eq!(entry("./usr/bin/mwlbridge"), ("-rwxr-xr-x", "root/root"));
    assert_eq!(
        entry("./usr/lib/systemd/system/mwlbridge.service"),
        ("-rw-r--r--", "root/root")
    );
    assert_eq!(
        entry("./etc/mwlbridge/mwlbridge.toml"),
        ("-rw-r--r--", "root/root")
    );
    // Read by systemd as root (EnvironmentFile) before it drops to the service's user.
    assert_eq!(
        entry("./etc/mwlbridge/credentials"),
        ("-rw-------", "root/root")
    );
    let version = checked(Command::new(package().root.join("usr/bin/mwlbridge")).arg("--version"));
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
}

#[test]
fn config_and_credentials_are_conffiles_and_dependencies_are_computed() {
    let p = package();
    let conffiles = std::fs::read_to_string(p.control.join("conffiles")).expect("conffiles");
    let mut listed: Vec<&str> = conffiles.lines().collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "/etc/mwlbridge/credentials",
            "/etc/mwlbridge/mwlbridge.toml"
        ]
    );

    let info = checked(Command::new("dpkg-deb").arg("-I").arg(&p.deb));
    let depends = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends: {info}"));
    // libc6 comes from the binary's shared libraries ($auto), adduser from postinst,
    // ca-certificates is what HTTPS to the sources is verified against.
    assert!(depends.contains("libc6 (>="), "{depends}");
    assert!(depends.contains("adduser"), "{depends}");
    assert!(depends.contains("ca-certificates"), "{depends}");
    let arch = checked(Command::new("dpkg").arg("--print-architecture"));
    assert!(
        info.contains(&format!("Architecture: {}", arch.trim())),
        "{info}"
    );
}

/// The packaged unit is `scripts/mwlbridge.service` byte for byte, and every path it
/// names is one the package ships or postinst creates.
#[test]
fn packaged_unit_is_the_repositorys_and_names_the_packaged_paths() {
    let p = package();
    let unit = std::fs::read_to_string(p.root.join("usr/lib/systemd/system/mwlbridge.service"))
        .expect("unit");
    let source = std::fs::read_to_string(repo().join("scripts/mwlbridge.service")).expect("unit");
    assert_eq!(
        unit, source,
        "the package's unit differs from scripts/mwlbridge.service"
    );

    let value = |key: &str| -> &str {
        unit.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .unwrap_or_else(|| panic!("no {key}= in the unit"))
    };
    assert_eq!(value("User"), "mwlbridge");
    assert_eq!(value("Group"), "mwlbridge");
    assert_eq!(value("EnvironmentFile"), "/etc/mwlbridge/credentials");
    for key in ["ExecStartPre", "ExecStart"] {
        let words: Vec<&str> = value(key).split_whitespace().collect();
        assert_eq!(words[0], "/usr/bin/mwlbridge", "{key}");
        let config = words
            .windows(2)
            .find_map(|w| (w[0] == "--config").then_some(w[1]))
            .unwrap_or_else(|| panic!("{key} has no --config"));
        assert_eq!(config, "/etc/mwlbridge/mwlbridge.toml", "{key}");
    }
    for shipped in [
        "/usr/bin/mwlbridge",
        "/etc/mwlbridge/mwlbridge.toml",
        "/etc/mwlbridge/credentials",
    ] {
        assert!(p.listing.contains_key(&format!(".{shipped}")), "{shipped}");
    }
    // The one directory the service may write: the one postinst creates, holding the
    // packaged config's database.
    assert_eq!(value("ReadWritePaths"), "/var/lib/mwlbridge");
    let config =
        std::fs::read_to_string(p.root.join("etc/mwlbridge/mwlbridge.toml")).expect("toml");
    assert!(
        config.contains("\npath = \"/var/lib/mwlbridge/worklist.db\"\n"),
        "the packaged config's [store] path is not in /var/lib/mwlbridge"
    );
}

/// `check-config` on the packaged config, in a shell without the service's credentials:
/// usable, warning only that the Calpendo user name and password are not set here (and,
/// when this user may not create /var/lib/mwlbridge, that it may not).
#[test]
fn packaged_config_passes_check_config_apart_from_the_credentials() {
    let p = package();
    let config = p.root.join("etc/mwlbridge/mwlbridge.toml");
    let out: Output = Command::new(p.root.join("usr/bin/mwlbridge"))
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .env_remove("CALPENDO_USERNAME")
        .env_remove("CALPENDO_PASSWORD")
        .env_remove("CALPENDO_API_URL")
        .env_remove("MWLBRIDGE_CONFIG")
        .output()
        .expect("check-config runs");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let warnings: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("warning: "))
        .collect();
    let credential = |w: &str| {
        w.starts_with("environment CALPENDO_USERNAME: not set")
            || w.starts_with("environment CALPENDO_PASSWORD: not set")
    };
    let (credentials, others): (Vec<&str>, Vec<&str>) =
        warnings.into_iter().partition(|w| credential(w));
    assert_eq!(credentials.len(), 2, "{text}");
    for w in others {
        assert!(
            w.starts_with("store.path: cannot create files in") && w.contains("as this user"),
            "unexpected warning: {w}\n{text}"
        );
    }
    assert!(
        text.contains("database: /var/lib/mwlbridge/worklist.db"),
        "{text}"
    );
}

/// A maintainer script of the package run by `sh` with `args`, every command that would
/// change this machine replaced by a stub that appends its command line to a log.
/// `user_exists` is what `getent passwd mwlbridge` answers. Returns (log, stdout).
fn run_script(script: &str, args: &[&str], user_exists: bool) -> (String, String) {
    let p = package();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("calls.log");
    let stubs = dir.path().join("bin");
    std::fs::create_dir(&stubs).expect("stub dir");
    let stub = |name: &str, body: &str| {
        let path = stubs.join(name);
        let text = format!(
            "#!/bin/sh\necho \"{name} $*\" >> \"{}\"\n{body}\nexit 0\n",
            log.display()
        );
        std::fs::write(&path, text).expect("stub");
        let mut mode = std::fs::metadata(&path).expect("stub").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o755);
        std::fs::set_permissions(&path, mode).expect("chmod stub");
    };
    stub("getent", if user_exists { "" } else { "exit 2" });
    // No statoverride set by the admin; a first install's unit never enabled or known.
    stub("dpkg-statoverride", "exit 1");
    stub(
        "deb-systemd-helper",
        "case \"$1\" in debian-installed|was-enabled|--quiet) exit 1;; esac",
    );
    for name in [
        "adduser",
        "useradd",
        "deluser",
        "userdel",
        "install",
        "mkdir",
        "chown",
        "chmod",
        "rm",
        "rmdir",
        "systemctl",
        "deb-systemd-invoke",
    ] {
        stub(name, "");
    }
    let path = format!(
        "{}:{}",
        stubs.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = checked(
        Command::new("sh")
            .arg(p.control.join(script))
            .args(args)
            .env("PATH", path),
    );
    (std::fs::read_to_string(&log).unwrap_or_default(), out)
}

#[test]
fn first_install_creates_the_user_and_the_data_directory_and_starts_nothing() {
    let (calls, said) = run_script("postinst", &["configure", ""], false);
    let adduser = calls
        .lines()
        .find(|l| l.starts_with("adduser ") || l.starts_with("useradd "))
        .unwrap_or_else(|| panic!("no user created:\n{calls}"));
    for part in [
        "--system",
        "--home /var/lib/mwlbridge",
        "--shell /usr/sbin/nologin",
    ] {
        assert!(adduser.contains(part), "{part} missing: {adduser}");
    }
    assert!(adduser.ends_with(" mwlbridge"), "{adduser}");
    assert!(
        calls
            .lines()
            .any(|l| l == "install -d -o mwlbridge -g mwlbridge -m 0750 /var/lib/mwlbridge"),
        "/var/lib/mwlbridge not made 0750 mwlbridge:mwlbridge:\n{calls}"
    );
    for l in calls.lines() {
        let service = l.starts_with("systemctl") || l.starts_with("deb-systemd");
        assert!(
            !(service && (l.contains("start") || l.contains(" enable"))),
            "a first install enables or starts the service: {l}\n{calls}"
        );
    }
    assert!(said.contains("not enabled and not started"), "{said}");
    assert!(said.contains("/etc/mwlbridge/credentials"), "{said}");
    assert!(said.contains("systemctl enable --now mwlbridge"), "{said}");
}

#[test]
fn an_upgrade_keeps_the_existing_user_and_says_nothing() {
    let (calls, said) = run_script("postinst", &["configure", "0.0.1-1"], true);
    assert!(
        !calls
            .lines()
            .any(|l| l.starts_with("adduser") || l.starts_with("useradd")),
        "{calls}"
    );
    assert!(
        calls
            .lines()
            .any(|l| l == "install -d -o mwlbridge -g mwlbridge -m 0750 /var/lib/mwlbridge"),
        "{calls}"
    );
    assert!(said.is_empty(), "{said}");
}

/// Purge leaves the database (health data) and its user, and says so.
#[test]
fn purge_keeps_the_database_and_the_user_and_says_so() {
    let (calls, said) = run_script("postrm", &["purge"], true);
    for l in calls.lines() {
        assert!(
            !(l.contains("/var/lib/mwlbridge")
                || l.starts_with("deluser")
                || l.starts_with("userdel")),
            "purge removes data or the user: {l}"
        );
    }
    assert!(said.contains("Not removed: /var/lib/mwlbridge"), "{said}");
    let (calls, said) = run_script("postrm", &["remove"], true);
    assert!(!calls.contains("/var/lib/mwlbridge"), "{calls}");
    assert!(said.is_empty(), "{said}");
}
