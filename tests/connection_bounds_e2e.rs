//! The DICOM port's connection bounds against the real `mwlbridge serve` (issue 17 point
//! 1): one calling AE title or one address cannot hold every association, keep-alive
//! C-ECHOs do not hold a slot, connections that never speak are bounded in number (so a
//! flood cannot use up file descriptors), a real descriptor shortage is logged once per
//! burst and survived, and AE titles are escaped in the log.

mod common;

use std::net::{Ipv4Addr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::booking;
use common::dicom_client::Client;
use common::raw_pdu::RawAssoc;
use common::scp::{AE, Site, echo_within, findscu};
use common::serve::Serve;

fn site(server_keys: &str) -> Site {
    Site::start(
        vec![booking(1, "SUB1_A_B", "3T Diagnostic", 9)],
        server_keys,
    )
}

/// C-ECHO on a fresh association as `calling`.
fn echo_as(port: u16, calling: &str) -> Result<(), String> {
    let mut c = Client::connect(port, calling, AE).map_err(|e| e.to_string())?;
    let status = c.try_echo()?;
    c.release();
    if status == 0 {
        Ok(())
    } else {
        Err(format!("C-ECHO status {status:#06x}"))
    }
}

/// How many file descriptors the server has open.
fn open_fds(server: &Serve) -> usize {
    let pid = server.pid().expect("server pid");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .expect("read the server's /proc/PID/fd")
}

/// `count` connections that never send a byte.
fn silent(port: u16, count: usize) -> Vec<TcpStream> {
    (0..count)
        .filter_map(|_| TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok())
        .collect()
}

/// Opens an association for each of `callings` in turn and keeps those still served (a
/// C-ECHO answered) after all were tried. A request that raced another for the last
/// place may be aborted once established, and then an earlier one may be the one aborted:
/// which ones are served can vary, how many cannot.
fn served(port: u16, callings: &[&str]) -> Vec<Client> {
    let opened: Vec<Client> = callings
        .iter()
        .filter_map(|ae| Client::connect(port, ae, AE).ok())
        .collect();
    opened
        .into_iter()
        .filter_map(|mut c| c.try_echo().ok().filter(|s| *s == 0).map(|_| c))
        .collect()
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn one_calling_ae_title_cannot_hold_every_association() {
    let site = site("max_associations = 8\nmax_associations_per_ae = 2");
    let port = site.port();
    let mut held = served(port, &["GREEDY", "GREEDY", "GREEDY"]);
    assert_eq!(held.len(), 2, "GREEDY associations served at once");
    let refused = findscu(port, &["PatientID"], &["-aet", "GREEDY"]);
    assert!(refused.patient_ids().is_empty(), "{}", refused.output);
    // Another console is not kept out.
    echo_as(port, "CONSOLE").expect("another calling AE gets in");
    findscu(port, &["PatientID"], &["-aet", "MRI_3T"]).assert_success();
    // The refusal names the limit and the calling AE title (not a subject).
    let log = site.server.log();
    let line = log
        .lines()
        .find(|l| {
            l.contains("the peer has as many open associations as allowed") && l.contains("GREEDY")
        })
        .unwrap_or_else(|| panic!("no refusal line:\n{log}"));
    assert!(
        line.contains("max_associations_per_ae") && line.contains("GREEDY"),
        "{line}"
    );
    // Counted out when released.
    if let Some(c) = held.pop() {
        c.release();
    }
    echo_as(port, "GREEDY").expect("GREEDY gets in again after releasing one");
}

#[test]
fn one_address_cannot_hold_every_association() {
    let site = site("max_associations = 8\nmax_associations_per_peer = 3");
    let port = site.port();
    let held = served(port, &["A1", "A2", "A3", "A4"]);
    assert_eq!(held.len(), 3, "associations served at once from 127.0.0.1");
    assert!(
        site.server.log().contains("max_associations_per_peer"),
        "{}",
        site.server.log()
    );
    for c in held {
        c.release();
    }
    echo_as(port, "A5").expect("accepted once the others are released");
}

#[test]
fn keep_alive_echoes_do_not_hold_a_slot() {
    let site = site("idle_timeout = 2");
    let port = site.port();
    let mut client = Client::connect(port, "KEEPALIVE", AE).expect("associate");
    let started = Instant::now();
    let ended = loop {
        match client.try_echo() {
            Ok(0) => {}
            Ok(status) => panic!("C-ECHO status {status:#06x}"),
            Err(e) => break (started.elapsed(), e),
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "C-ECHO every 0.5 s kept the association open for 15 s with idle_timeout = 2"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("association ended after {:?}: {}", ended.0, ended.1);
    assert!(ended.0 >= Duration::from_millis(1500), "{ended:?}");
    assert!(
        site.server.log().contains("only C-ECHO"),
        "{}",
        site.server.log()
    );
    // A console doing work is unaffected by the rule.
    findscu(port, &["PatientID"], &[]).assert_success();
}

/// 500 connections that never speak, with `max_associations = 8` (so 64 pending places):
/// the server closes the oldest for each newer one and keeps few descriptors open. Before,
/// every one stayed open for the idle timeout (60 s), and about 1,100 of them exhausted
/// the descriptors of a service with the default limit.
#[test]
fn connections_that_never_speak_are_bounded_in_number() {
    let site = site("max_associations = 8");
    let port = site.port();
    let before = open_fds(&site.server);
    let flood = silent(port, 500);
    std::thread::sleep(Duration::from_millis(1500));
    let during = open_fds(&site.server);
    eprintln!(
        "server descriptors: {before} before, {during} with {} silent connections open",
        flood.len()
    );
    assert_eq!(flood.len(), 500);
    assert!(
        during <= before + 64 + 16,
        "{during} descriptors open with 500 silent connections (before: {before})"
    );
    echo_within(port, Duration::from_secs(5)).expect("a console is answered during the flood");
    drop(flood);
}

/// The server's open-files limit lowered (`prlimit`) to a few more than it uses, then more
/// connections than that: `accept()` fails with "Too many open files". The failure is
/// logged once (then once a minute), the server keeps running, and once the connections
/// are gone it answers again and says so. Before, every failed accept was logged (one line
/// per 50 ms: 1,511 lines in 75 s).
#[test]
fn running_out_of_descriptors_is_logged_once_and_survived() {
    let site = site("max_associations = 8\nidle_timeout = 30");
    let port = site.port();
    let pid = site.server.pid().expect("server pid");
    let limit = open_fds(&site.server) + 12;
    let status = Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .expect("run prlimit (util-linux)");
    assert!(status.success(), "prlimit failed");
    let flood = silent(port, 100);
    std::thread::sleep(Duration::from_secs(3));
    let log = site.server.log();
    let failures = count(&log, "accepting a connection failed");
    assert_eq!(
        failures, 1,
        "failed accepts logged {failures} times:\n{log}"
    );
    assert!(log.contains("Too many open files"), "{log}");
    drop(flood);
    echo_within(port, Duration::from_secs(10)).expect("answered once the flood is gone");
    let log = site.server.log();
    assert!(
        log.contains("accepting connections works again"),
        "no recovery line:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn ae_titles_are_escaped_in_the_log() {
    let site = site("");
    let port = site.port();
    let calling = "EVIL\u{1b}[2J";
    match RawAssoc::establish(port, calling) {
        Ok(a) => {
            a.release();
        }
        Err(e) => eprintln!("association with an escape in its calling AE title: {e}"),
    }
    echo_as(port, "CONSOLE").expect("still answering");
    let log = site.server.log();
    assert!(
        !log.contains('\u{1b}'),
        "a raw escape character reached the log:\n{log}"
    );
    assert!(log.contains(r"EVIL\u{1b}[2J"), "{log}");
}
