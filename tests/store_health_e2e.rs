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
