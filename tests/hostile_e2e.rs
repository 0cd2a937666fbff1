//! Hostile and broken peers against the real `mwlbridge serve`: malformed PDUs on raw
//! sockets, broken DIMSE messages inside valid associations, oversized PDUs, and a flood of
//! connections that never speak. After each case the server must still answer C-ECHO, and
//! at the end it must be running with no panic in its log.

mod common;

use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use common::booking;
use common::dicom_client::{Client, MWL_FIND, VERIFICATION, encode, identifier};
use common::raw_pdu::{
    CONTEXTS, EXPLICIT, Raw, RawAssoc, Reply, associate_rq, echo_command, find_command, pdata, pdu,
    random_bytes, release_rq,
};
use common::scp::{AE, Site, echo_within, echoscu, findscu};
use common::serve::Serve;
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_ul::pdu::{AssociationRJResult, Pdu};

/// How long a case waits for the server's reaction.
const REACTION: Duration = Duration::from_secs(10);

/// C-ECHO through the Rust client on a fresh association.
fn echo(port: u16) -> Result<(), String> {
    let mut c = Client::connect(port, "CONSOLE", AE).map_err(|e| e.to_string())?;
    let status = c.try_echo()?;
    if status != 0 {
        return Err(format!("C-ECHO status {status:#06x}"));
    }
    c.release();
    Ok(())
}

/// Whether `mwlbridge serve` is still running: its pid is found under the watchdog
/// ([`Serve`] keeps its `Guarded` private), and the watchdog has not logged its exit.
fn alive(server: &Serve) -> bool {
    server.peak_rss_kib().is_some() && !server.log().contains("watchdog: ")
}

fn assert_no_panic(server: &Serve) {
    let log = server.log();
    assert!(
        !log.contains("panicked") && !log.contains("RUST_BACKTRACE"),
        "the server's log shows a panic:\n{log}"
    );
}

/// One hostile case: a name, and what it does to the server at `port`; it returns what the
/// server did (and panics when that is wrong).
type Case = (&'static str, fn(u16) -> String);

/// Sends `bytes` on a fresh connection, closes our side, and returns how the server ended
/// the connection; it must end it (not keep it open).
fn send_and_close(port: u16, bytes: &[u8]) -> String {
    let mut raw = Raw::connect(port);
    // The server may close before everything is written: that is a fine reaction.
    let _ = raw.send(bytes);
    raw.close_write();
    let r = raw.until_ended(REACTION);
    assert!(
        r.ends_connection(),
        "server did not end the connection: {}",
        r.describe()
    );
    r.describe()
}

/// Sends `bytes` on a fresh connection and keeps it open: the server must end it by itself.
fn send_and_wait(port: u16, bytes: &[u8]) -> String {
    let mut raw = Raw::connect(port);
    let _ = raw.send(bytes);
    let r = raw.until_ended(REACTION);
    assert!(
        r.ends_connection(),
        "server did not end the connection: {}",
        r.describe()
    );
    r.describe()
}

fn established(port: u16) -> RawAssoc {
    let a = RawAssoc::establish(port, "HOSTILE").expect("associate");
    assert_eq!(
        a.rejected,
        vec![5],
        "CT Image Storage is rejected, the rest accepted"
    );
    a
}

/// Inside an association: sends `bytes`; the server must abort (or close) it.
fn abort_expected(port: u16, bytes: &[u8]) -> String {
    let mut a = established(port);
    let _ = a.raw.send(bytes);
    let r = a.raw.until_ended(REACTION);
    assert!(
        matches!(
            r,
            Reply::Pdu(Pdu::AbortRQ { .. }) | Reply::Closed | Reply::Reset(_)
        ),
        "expected an abort, got {}",
        r.describe()
    );
    r.describe()
}

/// Inside an association: a C-FIND with `data`; the final status must be `expected`, and
/// the association must go on (C-ECHO, then A-RELEASE).
fn find_refused(port: u16, data: &[u8], expected: u16) -> String {
    let mut a = established(port);
    a.send_find(7, data, 16_000).expect("send the C-FIND");
    let (status, pending) = a
        .final_response(REACTION)
        .unwrap_or_else(|r| panic!("no C-FIND response: {}", r.describe()));
    assert_eq!(
        (status.field, status.status, pending),
        (0x8020, expected, 0)
    );
    let echo = a
        .echo(8)
        .unwrap_or_else(|r| panic!("C-ECHO after: {}", r.describe()));
    assert_eq!(echo.status, 0);
    assert!(a.release(), "A-RELEASE after the refused C-FIND");
    format!("C-FIND-RSP {expected:#06X}; the association went on")
}

fn random_noise(port: u16) -> String {
    let mut reactions = Vec::new();
    for seed in 1..=4u64 {
        reactions.push(send_and_close(port, &random_bytes(seed, 4096)));
    }
    // Noise that starts like a PDU header: A-ASSOCIATE-RQ and P-DATA types.
    for first in [0x01u8, 0x04] {
        let mut bytes = random_bytes(u64::from(first) + 100, 512);
        bytes[0] = first;
        bytes[1] = 0;
        bytes[2..6].copy_from_slice(&506u32.to_be_bytes());
        reactions.push(send_and_close(port, &bytes));
    }
    reactions.join("; ")
}

fn wrong_protocol_version(port: u16) -> String {
    let mut raw = Raw::connect(port);
    raw.send(&associate_rq(2, AE, "HOSTILE", &CONTEXTS, 16_384))
        .expect("send");
    match raw.read(REACTION) {
        Reply::Pdu(Pdu::AssociationRJ(rj)) => {
            assert_eq!(rj.result, AssociationRJResult::Permanent);
            format!("A-ASSOCIATE-RJ {rj:?}")
        }
        other => panic!("expected A-ASSOCIATE-RJ, got {}", other.describe()),
    }
}

fn pdata_before_association(port: u16) -> String {
    send_and_wait(port, &pdata(&[(1, true, true, &echo_command(1))]))
}

fn release_before_association(port: u16) -> String {
    send_and_wait(port, &release_rq())
}

fn unknown_pdu_type(port: u16) -> String {
    send_and_wait(port, &pdu(0x0A, &[1, 2, 3, 4]))
}

fn zero_length_pdus(port: u16) -> String {
    [0x01u8, 0x04, 0x05, 0x07]
        .iter()
        .map(|t| format!("type {t:#04x}: {}", send_and_wait(port, &pdu(*t, &[]))))
        .collect::<Vec<_>>()
        .join("; ")
}

fn four_gib_announced(port: u16) -> String {
    let mut reactions = Vec::new();
    for t in [0x01u8, 0x04] {
        let mut bytes = vec![t, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        bytes.extend_from_slice(b"0123456789");
        reactions.push(format!("type {t:#04x}: {}", send_and_close(port, &bytes)));
    }
    // The same inside an association.
    let mut a = established(port);
    let mut bytes = vec![0x04, 0, 0xFF, 0xFF, 0xFF, 0xFF];
    bytes.extend_from_slice(b"0123456789");
    a.raw.send(&bytes).expect("send");
    a.raw.close_write();
    let r = a.raw.until_ended(REACTION);
    assert!(r.ends_connection(), "{}", r.describe());
    reactions.push(format!("in an association: {}", r.describe()));
    reactions.join("; ")
}

fn truncated_pdus(port: u16) -> String {
    let rq = associate_rq(1, AE, "HOSTILE", &CONTEXTS, 16_384);
    let header_only = send_and_close(port, &rq[..6]);
    let half = send_and_close(port, &rq[..rq.len() / 2]);
    let pdata_header = send_and_close(port, &[0x04, 0, 0, 0, 0, 100]);
    format!(
        "header only: {header_only}; half an A-ASSOCIATE-RQ: {half}; P-DATA header: {pdata_header}"
    )
}

fn invalid_identifier(port: u16) -> String {
    // (0010,0010) announcing 64 KiB with 4 bytes of value, and plain noise.
    let announcing = [
        0x10, 0x00, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0xDE, 0xAD, 0xBE, 0xEF,
    ];
    let a = find_refused(port, &announcing, 0xA900);
    let b = find_refused(port, &random_bytes(7, 300), 0xA900);
    format!("{a}; noise: {b}")
}

fn two_sps_items(port: u16) -> String {
    let mut q = identifier(&[(tags::PATIENT_ID, VR::LO, "")], None);
    let item = |m: &str| {
        InMemDicomObject::from_element_iter([DataElement::new(
            tags::MODALITY,
            VR::CS,
            PrimitiveValue::from(m),
        )])
    };
    q.put(DataElement::new(
        tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![item("MR"), item("EEG")]),
    ));
    find_refused(port, &encode(&q), 0xA900)
}

fn find_without_identifier(port: u16) -> String {
    let mut a = established(port);
    let ctx = a.context(MWL_FIND);
    // A C-FIND-RQ whose command says "no data set".
    let mut cmd = InMemDicomObject::read_dataset_with_ts(
        find_command(9).as_slice(),
        &dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN.erased(),
    )
    .expect("decode our command");
    cmd.put(DataElement::new(
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(0x0101u16),
    ));
    a.raw
        .send(&pdata(&[(ctx, true, true, &encode(&cmd))]))
        .expect("send");
    let (status, _) = a
        .final_response(REACTION)
        .unwrap_or_else(|r| panic!("no response: {}", r.describe()));
    assert_eq!(status.status, 0xA900);
    assert_eq!(a.echo(10).map(|s| s.status).ok(), Some(0));
    assert!(a.release());
    "C-FIND-RSP 0xA900; the association went on".into()
}

fn two_megabyte_identifier(port: u16) -> String {
    let mut a = established(port);
    // A valid identifier padded to 2 MB with a long value: above the 1 MiB limit.
    let mut q = identifier(&[(tags::PATIENT_ID, VR::LO, "")], None);
    q.put(DataElement::new(
        tags::PATIENT_COMMENTS,
        VR::LT,
        PrimitiveValue::from("x".repeat(2 * 1000 * 1000)),
    ));
    let data = encode(&q);
    assert!(data.len() > 2_000_000);
    let sent = a.send_find(11, &data, 16_000);
    let r = match sent {
        Err(r) => *r,
        Ok(()) => a.raw.until_ended(REACTION),
    };
    assert!(
        matches!(
            r,
            Reply::Pdu(Pdu::AbortRQ { .. }) | Reply::Closed | Reply::Reset(_)
        ),
        "expected the association to be aborted, got {}",
        r.describe()
    );
    r.describe()
}

fn unaccepted_contexts(port: u16) -> String {
    // 5 was proposed and rejected; 7 was never proposed; 2 is even (not a valid id).
    [5u8, 7, 2]
        .iter()
        .map(|ctx| {
            format!(
                "context {ctx}: {}",
                abort_expected(port, &pdata(&[(*ctx, true, true, &echo_command(3))]))
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn associate_rq_inside_association(port: u16) -> String {
    abort_expected(port, &associate_rq(1, AE, "HOSTILE", &CONTEXTS, 16_384))
}

fn broken_pdvs(port: u16) -> String {
    // A PDV item length of 1 (shorter than its own header), one running past its PDU, a
    // data set before any command, and a command set that is not DICOM.
    let mut short_item = pdu(0x04, &[0, 0, 0, 1, 1]);
    short_item.extend_from_slice(&[0; 4]);
    let past_end = pdu(0x04, &[0, 0, 0, 200, 1, 3, 1, 2, 3]);
    let data_first = pdata(&[(3, false, true, b"\x10\x00\x20\x00\x00\x00\x00\x00")]);
    let garbage_command = pdata(&[(1, true, true, &random_bytes(3, 64))]);
    [short_item, past_end, data_first, garbage_command]
        .iter()
        .map(|bytes| abort_expected(port, bytes))
        .collect::<Vec<_>>()
        .join("; ")
}

const CASES: [Case; 16] = [
    ("random bytes", random_noise),
    (
        "A-ASSOCIATE-RQ with protocol version 2",
        wrong_protocol_version,
    ),
    ("P-DATA before any association", pdata_before_association),
    (
        "A-RELEASE-RQ before any association",
        release_before_association,
    ),
    ("unknown PDU type 0x0A", unknown_pdu_type),
    ("PDUs whose length field is 0", zero_length_pdus),
    (
        "PDUs announcing 4 GiB, then a few bytes",
        four_gib_announced,
    ),
    ("truncated PDUs, then close", truncated_pdus),
    ("C-FIND identifier that is not DICOM", invalid_identifier),
    ("C-FIND with two SPS items", two_sps_items),
    ("C-FIND announcing no identifier", find_without_identifier),
    ("C-FIND with a 2 MB identifier", two_megabyte_identifier),
    (
        "P-DATA on presentation contexts not accepted",
        unaccepted_contexts,
    ),
    (
        "A-ASSOCIATE-RQ inside an association",
        associate_rq_inside_association,
    ),
    ("malformed PDVs inside an association", broken_pdvs),
    ("the same noise again, after everything", random_noise),
];

#[test]
fn hostile_peers_leave_the_server_answering() {
    let site = Site::start(vec![booking(1, "SUB1_A_B", "3T Diagnostic", 9)], "");
    let port = site.port();
    echo(port).expect("C-ECHO before the hostile cases");
    let mut inputs = 0;
    for (i, (name, case)) in CASES.iter().enumerate() {
        let reaction = case(port);
        // One reaction per hostile input (connection or message), separated by "; ".
        inputs += reaction.split("; ").count();
        eprintln!("case {:2} {name}: {reaction}", i + 1);
        if let Err(e) = echo(port) {
            panic!(
                "after case {} ({name}) the server no longer answers C-ECHO: {e}\n{}",
                i + 1,
                site.server.log()
            );
        }
    }
    eprintln!(
        "{} hostile cases sent ({inputs} hostile inputs), C-ECHO answered after each",
        CASES.len()
    );
    // A real console still gets answered.
    let e = echoscu(port, "CONSOLE", AE);
    assert!(e.success(), "{}", e.output);
    let r = findscu(port, &["PatientID"], &[]);
    r.assert_success();
    assert_eq!(r.patient_ids(), vec!["SUB1".to_string()]);
    assert!(alive(&site.server), "{}", site.server.log());
    assert_no_panic(&site.server);
}

/// The server's peak resident memory, in MiB.
fn peak_mib(server: &Serve) -> u64 {
    server.peak_rss_kib().expect("the server's VmHWM") / 1024
}

/// A PDU announcing 0xFFFFFFFF bytes, followed by 64 MiB of them, inside an association.
/// The server reads with dicom-ul in non-strict mode (`.strict(false)` in
/// crates/mwl-scp/src/server.rs `MwlServer::new`), which skips the check of the PDU length
/// against our maximum (65536): dicom-ul's `read_pdu_from_wire_async` then keeps growing its
/// read buffer until the announced length has arrived. Measured: peak RSS +64 MiB for
/// 64 MiB sent; 4 GiB per connection, 32 connections, before the idle timeout cuts it.
#[test]
fn a_pdu_announcing_4_gib_is_not_buffered() {
    let site = Site::start(vec![booking(1, "SUB1_A_B", "3T Diagnostic", 9)], "");
    let port = site.port();
    echo(port).expect("C-ECHO");
    let before = peak_mib(&site.server);
    let mut a = established(port);
    let mut header = vec![0x04, 0, 0xFF, 0xFF, 0xFF, 0xFF];
    header.extend_from_slice(&[0, 0, 0, 0]);
    let _ = a.raw.send(&header);
    let chunk = vec![0u8; 1 << 20];
    let mut sent_mib = 0;
    for _ in 0..64 {
        if a.raw.send(&chunk).is_err() {
            break;
        }
        sent_mib += 1;
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = peak_mib(&site.server);
    eprintln!("sent {sent_mib} MiB of one PDU; server peak RSS {before} MiB -> {after} MiB");
    drop(a);
    echo(port).expect("C-ECHO after");
    assert!(
        after < before + 16,
        "the server buffered {} MiB of one PDU (sent {sent_mib} MiB)",
        after - before
    );
}

/// An Explicit VR Little Endian identifier whose first element has a VR that is not one
/// (two zero bytes): `wire_check::check_lengths` (crates/mwl-scp/src/wire_check.rs, the
/// `long` VR list of the explicit branch) reads it with a 2-byte length (0) and finds the
/// rest well formed, while dicom-rs reads an unknown VR as UN, with a 4-byte length: here
/// 0x20000000, which it allocates before finding the data short. Found by the `identifier`
/// fuzz target (fuzz/regressions/identifier/); the same with 0xE0DD41DE allocates 3.7 GB.
///
/// Bytes: `10 00 10 00 | 00 00 | 00 00 | 00 00 00 20 | 'L' 'O' 04 00 'A' 'B' 'C' 'D'`:
/// check_lengths sees (0010,0010) "\0\0" length 0, then (0000,2000) LO length 4.
#[test]
fn an_unknown_explicit_vr_does_not_bypass_the_length_check() {
    let site = Site::start(vec![booking(1, "SUB1_A_B", "3T Diagnostic", 9)], "");
    let port = site.port();
    echo(port).expect("C-ECHO");
    let mut a = RawAssoc::establish_with(
        port,
        "HOSTILE",
        &[(1, VERIFICATION, &[EXPLICIT]), (3, MWL_FIND, &[EXPLICIT])],
    )
    .expect("associate in Explicit VR Little Endian");
    let mut data = vec![0x10, 0x00, 0x10, 0x00, 0, 0, 0, 0];
    data.extend_from_slice(&0x2000_0000u32.to_le_bytes());
    data.extend_from_slice(b"LO\x04\x00ABCD");
    let started = Instant::now();
    a.send_find(5, &data, 16_000).expect("send the C-FIND");
    let r = a.final_response(Duration::from_secs(60));
    let elapsed = started.elapsed();
    let peak = peak_mib(&site.server);
    eprintln!("{r:?} after {elapsed:?}; server peak RSS {peak} MiB");
    let (status, _) = r.unwrap_or_else(|r| panic!("no C-FIND response: {}", r.describe()));
    assert_eq!(status.status, 0xA900);
    assert!(peak < 256, "server peak RSS {peak} MiB");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

/// A command set whose first element, (0000,0000) CommandGroupLength (UL), has a length of
/// 2: `wire_check::check_lengths` skips 2 bytes, dicom-rs reads whole UL values only (none)
/// and reads the rest two bytes out of step: `10 00 10 00 | 00 00 00 10` becomes
/// (0010,0010) PN with a length of 0x10000000, which dicom-rs allocates and zero-fills
/// (`read_value_strs`: `resize_with`, no `try_reserve`, so where the allocation fails the
/// process aborts) before finding the data short. `dimse::Command::decode`
/// (crates/mwl-scp/src/dimse.rs) runs on every command of every association. Found by the
/// `command` and `pdu` fuzz targets (fuzz/regressions/command/, fuzz/regressions/pdu/),
/// where the same in 26 bytes announces 4 GiB.
#[test]
fn a_command_set_read_out_of_step_is_refused_without_allocating() {
    let site = Site::start(vec![booking(1, "SUB1_A_B", "3T Diagnostic", 9)], "");
    let port = site.port();
    echo(port).expect("C-ECHO");
    let before = peak_mib(&site.server);
    let mut a = established(port);
    let mut command = vec![0, 0, 0, 0, 2, 0, 0, 0, 0x10, 0x00, 0x10, 0x00, 0x00, 0x00];
    command.extend_from_slice(&0x1000u32.to_le_bytes()[..2]);
    command.extend_from_slice(&[0, 0]);
    command.extend(std::iter::repeat_n(b'A', 0x1000));
    let started = Instant::now();
    let _ = a.raw.send(&pdata(&[(1, true, true, &command)]));
    let r = a.raw.until_ended(Duration::from_secs(60));
    let elapsed = started.elapsed();
    let after = peak_mib(&site.server);
    eprintln!(
        "{} after {elapsed:?}; server peak RSS {before} MiB -> {after} MiB",
        r.describe()
    );
    assert!(r.ends_connection(), "{}", r.describe());
    echo(port).expect("C-ECHO after");
    assert!(
        after < before + 64,
        "server peak RSS {before} -> {after} MiB"
    );
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

/// An MPPS N-CREATE whose data set holds (0040,0254) UT announcing 0x10000000 bytes,
/// followed by 4: `mwl_scp::mpps::create` decodes data sets with dicom-rs directly
/// (`decode` in crates/mwl-scp/src/mpps.rs), without `wire_check`, so the announced length
/// is allocated and zero-filled (where it cannot be allocated, the process aborts: a 2 GiB
/// announcement under `ulimit -v 1000000` ends in "memory allocation of 2147483632 bytes
/// failed", SIGABRT). Found by the `mpps` fuzz target (fuzz/regressions/mpps/).
#[test]
fn an_mpps_data_set_announcing_gigabytes_is_refused_without_allocating_them() {
    const MPPS: &str = "1.2.840.10008.3.1.2.3.3";
    let site = Site::start(vec![booking(1, "SUB1_A_B", "3T Diagnostic", 9)], "");
    let port = site.port();
    echo(port).expect("C-ECHO");
    let before = peak_mib(&site.server);
    let mut a = RawAssoc::establish_with(
        port,
        "HOSTILE",
        &[(1, VERIFICATION, &[EXPLICIT]), (3, MPPS, &[EXPLICIT])],
    )
    .expect("associate with MPPS");
    let command = encode(&InMemDicomObject::command_from_element_iter([
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            common::dicom_client::uid(MPPS),
        ),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(0x0140u16)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(3u16)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(0u16),
        ),
        DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            common::dicom_client::uid("1.2.826.0.1.3680043.10.99.1"),
        ),
    ]));
    let mut data = vec![0x40, 0x00, 0x54, 0x02, b'U', b'T', 0, 0];
    data.extend_from_slice(&0x1000_0000u32.to_le_bytes());
    data.extend_from_slice(b"ABCD");
    let started = Instant::now();
    a.raw
        .send(&pdata(&[
            (3, true, true, &command),
            (3, false, true, &data),
        ]))
        .expect("send the N-CREATE");
    let r = a.final_response(Duration::from_secs(60));
    let elapsed = started.elapsed();
    let after = peak_mib(&site.server);
    eprintln!("{r:?} after {elapsed:?}; server peak RSS {before} MiB -> {after} MiB");
    let (status, _) = r.unwrap_or_else(|r| panic!("no N-CREATE response: {}", r.describe()));
    assert_eq!(status.field, 0x8140);
    assert_ne!(status.status, 0);
    assert!(
        after < before + 64,
        "server peak RSS {before} -> {after} MiB"
    );
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

/// The soft limit on open files of this process.
fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(1024)
}

/// Opens up to `wanted` TCP connections that never speak (fewer when the open-files limit
/// would not leave room for the rest of the test).
fn silent_connections(port: u16, wanted: usize) -> Vec<TcpStream> {
    let room = open_files_limit().saturating_sub(200) as usize;
    let n = wanted.min(room);
    let conns: Vec<TcpStream> = (0..n)
        .filter_map(|_| TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok())
        .collect();
    eprintln!(
        "{} silent connections open (wanted {wanted}, open-files limit {})",
        conns.len(),
        open_files_limit()
    );
    conns
}

/// 500 connections that never send an A-ASSOCIATE-RQ, with `max_associations = 8` and the
/// default `idle_timeout` (60 s): a console must still be answered within a few seconds.
///
/// It is not. `MwlServer::connection` (crates/mwl-scp/src/server.rs) means to take an
/// association slot only once the peer has spoken (`socket.readable()` under the idle
/// timeout, then `self.slots.try_acquire_owned()`), but tokio's `readable()` completes at
/// once on a freshly accepted connection that has sent nothing (a spurious readiness: a
/// 10-line tokio program shows `readable()` resolving and `try_read` then giving
/// WouldBlock). So the first 8 silent connections take all 8 slots and hold them in
/// `establish_async` for the idle timeout (60 s); the other 492 get `reject_busy`, which
/// waits up to 5 s for a request, then closes. Meanwhile every console is refused with
/// A-ASSOCIATE-RJ (transient, local limit exceeded); the log shows "association rejected:
/// too many open associations". Waiting for a byte for real (`socket.peek(&mut [0; 1])`,
/// `Ok(0)`: closed) would fix this case, not the next one
/// ([`a_flood_of_stalled_association_requests_does_not_lock_consoles_out`]).
#[test]
fn a_flood_of_silent_connections_does_not_lock_consoles_out() {
    let site = Site::start(
        vec![booking(1, "SUB1_A_B", "3T Diagnostic", 9)],
        "max_associations = 8",
    );
    let port = site.port();
    let flood = silent_connections(port, 500);
    std::thread::sleep(Duration::from_millis(500));
    // FLOOD_PATIENCE_SECS=70 measures when consoles get in again.
    let patience = std::env::var("FLOOD_PATIENCE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let waited = echo_within(port, Duration::from_secs(patience));
    let found = findscu(port, &["PatientID"], &[]);
    drop(flood);
    assert!(alive(&site.server));
    assert_no_panic(&site.server);
    let waited = waited.unwrap_or_else(|out| {
        let log = site.server.log();
        let tail: Vec<&str> = log.lines().rev().take(12).collect();
        panic!(
            "no C-ECHO answered within {patience} s of the flood:\n{out}\nserver log (last lines):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    });
    eprintln!("C-ECHO answered {waited:?} into the flood");
    found.assert_success();
}

/// 500 connections that each send the first 6 bytes of an A-ASSOCIATE-RQ (its PDU header,
/// announcing 200 bytes) and then nothing, with `max_associations = 8`: a console must still
/// be answered within a few seconds. An association slot is taken only once the association
/// is established (server.rs `MwlServer::established`); the stalled requests hold pending
/// places (at most 64 here), the oldest dropped for each newer request, so the console's
/// request gets a place and completes at once.
#[test]
fn a_flood_of_stalled_association_requests_does_not_lock_consoles_out() {
    let site = Site::start(
        vec![booking(1, "SUB1_A_B", "3T Diagnostic", 9)],
        "max_associations = 8",
    );
    let port = site.port();
    let flood = silent_connections(port, 500);
    let header = [0x01, 0x00, 0x00, 0x00, 0x00, 200];
    let mut stalled = 0;
    for mut c in &flood {
        if std::io::Write::write_all(&mut c, &header).is_ok() {
            stalled += 1;
        }
    }
    eprintln!("{stalled} connections sent a PDU header and stalled");
    std::thread::sleep(Duration::from_millis(500));
    let waited = echo_within(port, Duration::from_secs(5));
    drop(flood);
    assert!(alive(&site.server));
    assert_no_panic(&site.server);
    let waited = waited.unwrap_or_else(|out| {
        panic!("no C-ECHO answered within 5 s of the stalled requests:\n{out}")
    });
    eprintln!("C-ECHO answered {waited:?} into the flood");
}

/// The documented mitigation (docs/conformance-statement.md 2.2: the idle timeout "bounds
/// the association request itself"): with `idle_timeout = 2`, the silent connections lose
/// their slots after 2 s and a console is answered, even while the 500 stay open.
#[test]
fn a_short_idle_timeout_frees_slots_held_by_silent_connections() {
    let site = Site::start(
        vec![booking(1, "SUB1_A_B", "3T Diagnostic", 9)],
        "max_associations = 8\nidle_timeout = 2",
    );
    let port = site.port();
    let flood = silent_connections(port, 500);
    std::thread::sleep(Duration::from_millis(200));
    let first = echoscu(port, "CONSOLE", AE);
    eprintln!(
        "C-ECHO at once: {}",
        if first.success() {
            "answered"
        } else {
            "refused"
        }
    );
    let waited = echo_within(port, Duration::from_secs(8))
        .unwrap_or_else(|out| panic!("no C-ECHO answered within 8 s of the flood:\n{out}"));
    eprintln!("C-ECHO answered {waited:?} into the flood (idle_timeout 2 s)");
    let r = findscu(port, &["PatientID"], &[]);
    r.assert_success();
    // The flood is still open.
    assert!(flood.iter().filter(|c| c.peer_addr().is_ok()).count() > 0);
    drop(flood);
    assert!(alive(&site.server));
    assert_no_panic(&site.server);
    // Everything still works once the flood is gone.
    echo(port).expect("C-ECHO after the flood");
}
