//! The database's health against the real `mwlbridge serve` (issue 17 point 6): a file
//! deleted while serving turns `/readyz` unready and is never silently recreated; a
//! damaged file stops the start with the file named; a second `serve` on one database
//! exits naming the first one's process.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::booking;
use common::scp::{Site, findscu, free_port};

fn bookings() -> Vec<calpendo_fake::FakeBooking> {
    (0..40)
        .map(|i| booking(700 + i, &format!("SUB7{i:02}_A_B"), "3T Diagnostic", 8))
        .collect()
}

fn admin_keys(port: u16) -> String {
    format!("[admin]\nenabled = true\nbind = \"127.0.0.1\"\nport = {port}\n")
}

/// `GET path` on the admin port: status code and body.
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

/// Runs another `mwlbridge serve` on `site`'s config until it exits (it must not start).
fn serve_once(site: &Site) -> std::process::Output {
    common::command(&[
        "serve",
        "--config",
        site.config().to_str().expect("utf-8"),
        "--port",
        &free_port().to_string(),
        "--bind",
        "127.0.0.1",
    ])
    .output()
    .expect("run serve")
}

#[test]
fn a_deleted_database_turns_readyz_unready_and_is_never_recreated() {
    let admin = free_port();
    let site = Site::start(bookings(), &admin_keys(admin));
    let db = site.server.db.clone();
    let (code, body) = get(admin, "/readyz");
    assert_eq!(code, 200, "{body}");
    std::fs::rename(&db, db.with_file_name("moved-away.db")).expect("move the database away");
    let (code, body) = get(admin, "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("was deleted while in use"), "{body}");
    // Consoles keep asking: their reads must not create an empty database at the path.
    for _ in 0..6 {
        let _ = findscu(site.port(), &["PatientID"], &[]);
    }
    assert!(
        !db.exists(),
        "a file was created where the database was deleted"
    );
}

/// Overwrites 4 KiB pages 2 to 4 of `db` (the tables' and indexes' pages, not the header).
fn damage(db: &Path) {
    let mut bytes = std::fs::read(db).expect("read the database");
    let page = 4096;
    assert!(bytes.len() > 5 * page, "{} bytes", bytes.len());
    for b in &mut bytes[page + 100..4 * page] {
        *b = 0x5A;
    }
    std::fs::write(db, &bytes).expect("write it back");
}

#[test]
fn a_damaged_database_stops_the_start_naming_the_file() {
    let mut site = Site::start(bookings(), "");
    let db = site.server.db.clone();
    site.server.stop();
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        assert!(
            !Path::new(&name).exists(),
            "the WAL is checkpointed at a clean stop"
        );
    }
    damage(&db);
    let out = serve_once(&site);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&db.display().to_string()), "{err}");
    assert!(
        err.contains("damaged") || err.contains("malformed") || err.contains("not a database"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_second_serve_on_one_database_exits_naming_the_first() {
    let site = Site::start(bookings(), "");
    let first = site.server.pid().expect("first server's pid");
    let out = serve_once(&site);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("process {first}")) && err.contains("already using the database"),
        "{err}"
    );
    // The first one is untouched.
    findscu(site.port(), &["PatientID"], &[]).assert_success();
}

/// A small tmpfs mounted at a directory for the test's life (this machine's tests run as
/// root, as CI does): a disk that really fills up.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs (root needed)");
        SmallDisk(dir.to_path_buf())
    }

    /// Fills what is left with one file; returns it.
    fn fill(&self) -> std::path::PathBuf {
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 16 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Waits until `GET /readyz` answers `code`; returns its body.
fn readyz_until(admin: u16, code: u16) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (got, body) = get(admin, "/readyz");
        if got == code {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz never answered {code}: {got} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A full disk: the failing sync turns `/readyz` unready with the reason while consoles
/// are still answered, and once space is back the next sync succeeds, `/readyz` is ready
/// again, and the failed run is in `sync_runs` too (it was kept until it could be
/// written).
#[test]
fn a_full_disk_is_seen_in_readyz_and_the_failed_sync_is_recorded_later() {
    use common::config::SiteConfig;
    use common::serve::{Serve, ServeOpts, runs};
    use worklist_store::SyncOutcome;

    let rt = common::harness::runtime();
    let fake = common::harness::start_fake(&rt, "secret", bookings());
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = SmallDisk::mount(&dir.path().join("disk"), "2m");
    let db = disk.0.join("worklist.db");
    let admin = free_port();
    let admin_table = admin_keys(admin);
    let config = SiteConfig {
        server: Some("ae_title = \"MWLBRIDGE\""),
        admin: Some(&admin_table),
        source_keys: "sync_interval = 1\nrequest_timeout = 5\n",
        ..SiteConfig::new(&fake.base_url(), &db)
    }
    .write(&dir.path().join("c.toml"));
    let serve = Serve::start(&config, &db, &ServeOpts::synced());
    readyz_until(admin, 200);

    // The disk fills up; Calpendo has new bookings to write.
    let filler = disk.fill();
    let mut more = bookings();
    more.extend((0..400).map(|i| booking(900 + i, &format!("SUB9{i:03}_A_B"), "3T Diagnostic", 9)));
    fake.set_bookings(more);
    let body = readyz_until(admin, 503);
    assert!(
        body.contains("the last write to the database failed") && body.contains("full"),
        "{body}"
    );
    let r = findscu(serve.port, &["PatientID"], &[]);
    r.assert_success();

    // Space is back.
    std::fs::remove_file(&filler).expect("remove the filler");
    readyz_until(admin, 200);
    // The runs kept while the disk was full are written with the next one that can be.
    let failed_for_space = |r: &worklist_store::SyncRun| {
        r.outcome == SyncOutcome::Failed && r.error.as_deref().is_some_and(|e| e.contains("full"))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let recorded = runs(&db);
        if recorded.iter().any(failed_for_space)
            && recorded.first().map(|r| r.outcome) == Some(SyncOutcome::Success)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the failed run is never recorded: {recorded:?}\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = findscu(serve.port, &["PatientID"], &[]);
    assert_eq!(r.patient_ids().len(), 440, "{}", serve.log());
}
