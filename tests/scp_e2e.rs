//! `mwlbridge serve` end to end: the real binary, fed by the fake Calpendo over HTTP,
//! queried with DCMTK's `findscu` / `echoscu` and with a small dicom-ul client.
//!
//! Most tests share one server ([`main_site`]) holding [`mwl_bookings`]; tests that need
//! other `[server]` settings start their own.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use calpendo_fake::FakeBooking;
use common::dicom_client::{Client, MWL_FIND, Split, VERIFICATION, command_u16, identifier};
use common::scp::{
    AE, OFFERED, Site, dcmdump, echoscu, findscu, findscu_env, findscu_raw, mwl_bookings, raw_arg,
    sps_item, tags_of, text,
};
use common::{booking, today};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use worklist_store::format_da;

const SPS: &str = "ScheduledProcedureStepSequence[0]";

fn sps(key: &str) -> String {
    format!("{SPS}.{key}")
}

fn today_da() -> String {
    format_da(today())
}

fn tomorrow_da() -> String {
    format_da(today().tomorrow().expect("tomorrow"))
}

fn ids(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

static MAIN: OnceLock<Site> = OnceLock::new();

fn main_site() -> &'static Site {
    MAIN.get_or_init(|| Site::start(mwl_bookings(), ""))
}

/// PatientIDs matched by a findscu query (PatientID is always asked), which must succeed.
fn matched(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<&str> = keys.to_vec();
    if !keys.iter().any(|k| k.starts_with("PatientID")) {
        keys.push("PatientID");
    }
    let r = findscu(main_site().port(), &keys, &[]);
    r.assert_success();
    r.patient_ids()
}

// ---------------------------------------------------------------------------------------
// 1. Associations: C-ECHO and AE titles

#[test]
fn echo_succeeds_and_a_wrong_called_ae_title_is_rejected() {
    let port = main_site().port();
    let ok = echoscu(port, "CONSOLE", AE);
    assert!(ok.success(), "{}", ok.output);
    let wrong = echoscu(port, "CONSOLE", "NOT_OURS");
    assert!(!wrong.success(), "{}", wrong.output);
    assert!(
        wrong.output.contains("Called AE Title Not Recognized"),
        "{}",
        wrong.output
    );
    // The Rust client sees the same.
    let mut c = Client::connect(port, "CONSOLE", AE).expect("associate");
    let rsp = c.echo();
    assert_eq!(command_u16(&rsp, tags::STATUS), Some(0x0000));
    assert_eq!(command_u16(&rsp, tags::COMMAND_FIELD), Some(0x8030));
    c.release();
    assert!(Client::connect(port, "CONSOLE", "NOT_OURS").is_err());
}

#[test]
fn calling_ae_allow_list() {
    let site = Site::start(
        vec![booking(1, "SUB1_A_B", "3T Diagnostic", 9)],
        r#"allowed_calling_aets = ["CONSOLE1"]"#,
    );
    let other = echoscu(site.port(), "OTHER", AE);
    assert!(!other.success(), "{}", other.output);
    assert!(
        other.output.contains("Calling AE Title Not Recognized"),
        "{}",
        other.output
    );
    let console = echoscu(site.port(), "CONSOLE1", AE);
    assert!(console.success(), "{}", console.output);
    let r = findscu(site.port(), &["PatientID"], &["-aet", "CONSOLE1"]);
    r.assert_success();
    assert_eq!(r.patient_ids(), ids(&["SUB1"]));
    // The allow-list does not relax the called AE title check.
    let wrong_called = echoscu(site.port(), "CONSOLE1", "NOT_OURS");
    assert!(
        wrong_called
            .output
            .contains("Called AE Title Not Recognized"),
        "{}",
        wrong_called.output
    );
    // Each refusal's log line says what the console sent, and from where.
    let log = site.server.log();
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{log}"))
            .to_string()
    };
    let calling = line("calling AE title is not in");
    assert!(calling.contains("calling_ae=\"OTHER\""), "{calling}");
    assert!(calling.contains("peer=127.0.0.1:"), "{calling}");
    let called = line("called AE title is not ours");
    assert!(
        called.contains("NOT_OURS") && called.contains("CONSOLE1"),
        "{called}"
    );
    assert!(called.contains("peer=127.0.0.1:"), "{called}");
}

#[test]
fn accept_any_called_ae_title() {
    let site = Site::start(
        vec![booking(1, "SUB1_A_B", "3T Diagnostic", 9)],
        "accept_any_called_ae = true",
    );
    for called in ["NOT_OURS", "ANY-SCP", AE] {
        let e = echoscu(site.port(), "CONSOLE", called);
        assert!(e.success(), "{called}: {}", e.output);
    }
    let r = findscu(site.port(), &["PatientID"], &["-aec", "SOMETHING_ELSE"]);
    r.assert_success();
    assert_eq!(r.patient_ids(), ids(&["SUB1"]));
}

// ---------------------------------------------------------------------------------------
// 2. Matching, through findscu

#[test]
fn universal_query_offers_every_scheduled_and_started_step() {
    assert_eq!(matched(&["PatientName"]), ids(&OFFERED));
    // `*` alone is universal too.
    assert_eq!(matched(&["PatientName=*"]), ids(&OFFERED));
    // The same with an empty step item.
    assert_eq!(matched(&[&sps("Modality")]), ids(&OFFERED));
}

#[test]
fn single_value_patient_id() {
    assert_eq!(matched(&["PatientID=SUB103"]), ids(&["SUB103"]));
    assert_eq!(matched(&["PatientID=SUB10"]), ids(&[]));
    // Not offered: a discontinued step stays hidden even when asked by ID.
    assert_eq!(matched(&["PatientID=SUB107"]), ids(&[]));
}

#[test]
fn patient_name_wildcards_ignore_case() {
    assert_eq!(matched(&["PatientName=TREM*"]), ids(&["SUB101", "SUB104"]));
    assert_eq!(
        matched(&["PatientName=*marie*"]),
        ids(&["SUB101", "SUB103"])
    );
    assert_eq!(
        matched(&["PatientName=Tre?blay"]),
        ids(&["SUB101", "SUB104"])
    );
    assert_eq!(matched(&["PatientName=tremblay^p*"]), ids(&["SUB104"]));
    // `?` is one character, also a multi-byte one.
    assert_eq!(matched(&["PatientName=H?bert"]), ids(&["SUB105"]));
    assert_eq!(matched(&["PatientName=m?ller^J?rgen"]), ids(&["SUB106"]));
    assert_eq!(matched(&["PatientName=H??bert"]), ids(&[]));
}

#[test]
fn family_name_alone_finds_family_given() {
    assert_eq!(matched(&["PatientName=NOVAK"]), ids(&["SUB102"]));
    assert_eq!(
        matched(&["PatientName=tremblay"]),
        ids(&["SUB101", "SUB104"])
    );
    assert_eq!(matched(&["PatientName=TREMBLAY^MARIE"]), ids(&["SUB101"]));
    assert_eq!(matched(&["PatientName=Tremblay^Jan"]), ids(&[]));
    assert_eq!(matched(&["PatientName=Jan"]), ids(&[]));
}

#[test]
fn station_ae_title_single_value_and_list() {
    let station = |v: &str| format!("{}={v}", sps("ScheduledStationAETitle"));
    assert_eq!(
        matched(&[&station("MRI_3T")]),
        ids(&["SUB101", "SUB105", "SUB108"])
    );
    assert_eq!(
        matched(&[&station("MRI_7T\\MOCK")]),
        ids(&["SUB103", "SUB104", "SUB110"])
    );
    assert_eq!(
        matched(&[&station("MRI_*")]),
        ids(&["SUB101", "SUB103", "SUB105", "SUB108", "SUB110"])
    );
    assert_eq!(matched(&[&station("MRI_3")]), ids(&[]));
    // The station is returned inside the item.
    let r = findscu(main_site().port(), &["PatientID", &station("EEG_LAB")], &[]);
    r.assert_success();
    assert_eq!(r.patient_ids(), ids(&["SUB102", "SUB106"]));
    for rsp in &r.responses {
        assert_eq!(
            text(sps_item(rsp), tags::SCHEDULED_STATION_AE_TITLE),
            "EEG_LAB"
        );
    }
}

#[test]
fn modality_single_value_and_list() {
    let modality = |v: &str| format!("{}={v}", sps("Modality"));
    let mr = ["SUB101", "SUB103", "SUB105", "SUB108", "SUB110"];
    assert_eq!(matched(&[&modality("MR")]), ids(&mr));
    assert_eq!(
        matched(&[&modality("MR\\EEG")]),
        ids(&[
            "SUB101", "SUB102", "SUB103", "SUB105", "SUB106", "SUB108", "SUB110"
        ])
    );
    assert_eq!(matched(&[&modality("OT")]), ids(&["SUB104"]));
    assert_eq!(matched(&[&modality("CT")]), ids(&[]));
}

#[test]
fn date_ranges() {
    let (t, t1) = (today_da(), tomorrow_da());
    let date = |v: &str| format!("{}={v}", sps("ScheduledProcedureStepStartDate"));
    let today_ids = [
        "SUB101", "SUB102", "SUB103", "SUB104", "SUB105", "SUB106", "SUB110",
    ];
    assert_eq!(matched(&[&date(&t)]), ids(&today_ids));
    assert_eq!(matched(&[&date(&t1)]), ids(&["SUB108"]));
    assert_eq!(matched(&[&date(&format!("{t}-{t}"))]), ids(&today_ids));
    assert_eq!(matched(&[&date(&format!("{t}-{t1}"))]), ids(&OFFERED));
    assert_eq!(matched(&[&date(&format!("{t1}-"))]), ids(&["SUB108"]));
    assert_eq!(matched(&[&date(&format!("-{t}"))]), ids(&today_ids));
    assert_eq!(matched(&[&date("19990101-19991231")]), ids(&[]));
}

#[test]
fn combined_start_date_and_time_range() {
    let (t, t1) = (today_da(), tomorrow_da());
    let date = |v: &str| format!("{}={v}", sps("ScheduledProcedureStepStartDate"));
    let time = |v: &str| format!("{}={v}", sps("ScheduledProcedureStepStartTime"));
    // Today 09:00 to 11:00: the 9:00 and 10:00 bookings only.
    assert_eq!(
        matched(&[&date(&t), &time("0900-1100")]),
        ids(&["SUB102", "SUB103"])
    );
    assert_eq!(
        matched(&[&date(&t), &time("090000-100000")]),
        ids(&["SUB102", "SUB103"])
    );
    // Today 16:00 to tomorrow 10:00: one date-time range, across midnight (109 is
    // completed, so hidden).
    assert_eq!(
        matched(&[&date(&format!("{t}-{t1}")), &time("1600-1000")]),
        ids(&["SUB108", "SUB110"])
    );
    // A time alone is that time of day on any date.
    assert_eq!(
        matched(&[&time("1200-1400")]),
        ids(&["SUB104", "SUB105", "SUB106"])
    );
    // The times come back in the item.
    let r = findscu(
        main_site().port(),
        &[
            "PatientID",
            &date(&t),
            &time("0900-1100"),
            &sps("ScheduledStationAETitle"),
        ],
        &[],
    );
    r.assert_success();
    let item = sps_item(r.by_patient_id("SUB103"));
    assert_eq!(text(item, tags::SCHEDULED_PROCEDURE_STEP_START_DATE), t);
    assert_eq!(
        text(item, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
        "100000"
    );
    assert_eq!(text(item, tags::SCHEDULED_STATION_AE_TITLE), "MRI_7T");
}

#[test]
fn study_instance_uid_list() {
    let all = findscu(main_site().port(), &["PatientID", "StudyInstanceUID"], &[]);
    all.assert_success();
    let uid = |id: &str| text(all.by_patient_id(id), tags::STUDY_INSTANCE_UID);
    let uids: BTreeSet<String> = OFFERED.iter().map(|id| uid(id)).collect();
    assert_eq!(uids.len(), OFFERED.len(), "UIDs are distinct: {uids:?}");
    assert!(uids.iter().all(|u| u.starts_with("2.25.")), "{uids:?}");
    let list = format!("StudyInstanceUID={}\\{}", uid("SUB101"), uid("SUB104"));
    assert_eq!(matched(&[&list]), ids(&["SUB101", "SUB104"]));
    let one = format!("StudyInstanceUID={}", uid("SUB106"));
    assert_eq!(matched(&[&one]), ids(&["SUB106"]));
    assert_eq!(matched(&["StudyInstanceUID=1.2.3.4"]), ids(&[]));
}

#[test]
fn accession_number_and_requested_procedure_id() {
    assert_eq!(matched(&["AccessionNumber=103"]), ids(&["SUB103"]));
    assert_eq!(matched(&["AccessionNumber=10"]), ids(&[]));
    assert_eq!(matched(&["RequestedProcedureID=104"]), ids(&["SUB104"]));
    let r = findscu(
        main_site().port(),
        &[
            "PatientID=SUB105",
            "AccessionNumber",
            "RequestedProcedureID",
        ],
        &[],
    );
    r.assert_success();
    assert_eq!(r.values(tags::ACCESSION_NUMBER), ids(&["105"]));
    assert_eq!(r.values(tags::REQUESTED_PROCEDURE_ID), ids(&["105"]));
    // Type-1 return keys carry a value.
    let r = findscu(
        main_site().port(),
        &[
            "PatientID=SUB105",
            "StudyInstanceUID",
            "RequestedProcedureDescription",
            &sps("ScheduledProcedureStepID"),
        ],
        &[],
    );
    r.assert_success();
    let rsp = r.by_patient_id("SUB105");
    assert!(text(rsp, tags::STUDY_INSTANCE_UID).starts_with("2.25."));
    assert_eq!(text(rsp, tags::REQUESTED_PROCEDURE_DESCRIPTION), "BRISKP");
    assert_eq!(
        text(sps_item(rsp), tags::SCHEDULED_PROCEDURE_STEP_ID),
        "105"
    );
}

#[test]
fn empty_step_item_returns_every_step_attribute() {
    let r = findscu(
        main_site().port(),
        &["PatientID=SUB101", "ScheduledProcedureStepSequence[0]"],
        &[],
    );
    r.assert_success();
    assert_eq!(r.patient_ids(), ids(&["SUB101"]), "{}", r.output);
    let item = sps_item(&r.responses[0]);
    let expect = [
        (tags::MODALITY, "MR".to_string()),
        (tags::SCHEDULED_STATION_AE_TITLE, "MRI_3T".into()),
        (tags::SCHEDULED_PROCEDURE_STEP_START_DATE, today_da()),
        (tags::SCHEDULED_PROCEDURE_STEP_START_TIME, "080000".into()),
        (tags::SCHEDULED_PROCEDURE_STEP_END_DATE, today_da()),
        (tags::SCHEDULED_PROCEDURE_STEP_END_TIME, "090000".into()),
        (tags::SCHEDULED_PROCEDURE_STEP_ID, "101".into()),
        (tags::SCHEDULED_PROCEDURE_STEP_STATUS, "SCHEDULED".into()),
        (
            tags::SCHEDULED_PERFORMING_PHYSICIAN_NAME,
            "Smith^Jane".into(),
        ),
        (tags::SCHEDULED_STATION_NAME, "3T Diagnostic".into()),
        (tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION, "BRISKP".into()),
    ];
    for (tag, value) in expect {
        assert_eq!(text(item, tag), value, "{tag}:\n{}", r.output);
    }
    // Step attributes stay in the item.
    let top = tags_of(&r.responses[0]);
    assert!(!top.contains(&tags::MODALITY), "{top:?}");
    assert!(!top.contains(&tags::SCHEDULED_STATION_AE_TITLE), "{top:?}");
}

#[test]
fn response_holds_exactly_the_requested_keys_at_their_levels() {
    let r = findscu(
        main_site().port(),
        &[
            "PatientName",
            "PatientID=SUB102",
            "AccessionNumber",
            "MedicalAlerts",
            &sps("Modality"),
            &sps("ScheduledStationAETitle"),
        ],
        &[],
    );
    r.assert_success();
    assert_eq!(r.responses.len(), 1, "{}", r.output);
    let rsp = &r.responses[0];
    assert_eq!(
        tags_of(rsp),
        vec![
            tags::SPECIFIC_CHARACTER_SET,
            tags::ACCESSION_NUMBER,
            tags::PATIENT_NAME,
            tags::PATIENT_ID,
            tags::MEDICAL_ALERTS,
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
        ]
    );
    assert_eq!(
        tags_of(sps_item(rsp)),
        vec![tags::MODALITY, tags::SCHEDULED_STATION_AE_TITLE]
    );
    assert_eq!(text(rsp, tags::SPECIFIC_CHARACTER_SET), "ISO_IR 192");
    assert_eq!(text(rsp, tags::PATIENT_NAME), "Novak^Jan");
    assert_eq!(text(rsp, tags::ACCESSION_NUMBER), "102");
    assert_eq!(text(rsp, tags::MEDICAL_ALERTS), "", "no value: zero-length");
    assert_eq!(text(sps_item(rsp), tags::MODALITY), "EEG");
    // A step key asked at the top level is answered at the top level (we have no value
    // there), not inside an item.
    let r = findscu(main_site().port(), &["PatientID=SUB102", "Modality"], &[]);
    assert_eq!(r.responses.len(), 1, "{}", r.output);
    assert_eq!(
        tags_of(&r.responses[0]),
        vec![
            tags::SPECIFIC_CHARACTER_SET,
            tags::MODALITY,
            tags::PATIENT_ID
        ]
    );
}

#[test]
fn step_status_filtering() {
    let status = |v: &str| format!("{}={v}", sps("ScheduledProcedureStepStatus"));
    // Cancelled in Calpendo: not offered by default...
    assert!(!matched(&["PatientName"]).contains(&"SUB107".to_string()));
    // ...but returned when asked for.
    assert_eq!(matched(&[&status("DISCONTINUED")]), ids(&["SUB107"]));
    assert_eq!(matched(&[&status("COMPLETED")]), ids(&["SUB109"]));
    assert_eq!(matched(&[&status("STARTED")]), ids(&["SUB110"]));
    assert_eq!(
        matched(&[&status("SCHEDULED")]),
        ids(&[
            "SUB101", "SUB102", "SUB103", "SUB104", "SUB105", "SUB106", "SUB108"
        ])
    );
    assert_eq!(
        matched(&[&status("DISCONTINUED\\COMPLETED")]),
        ids(&["SUB107", "SUB109"])
    );
    let r = findscu(
        main_site().port(),
        &["PatientID", &status("DISCONTINUED")],
        &[],
    );
    assert_eq!(
        text(
            sps_item(r.by_patient_id("SUB107")),
            tags::SCHEDULED_PROCEDURE_STEP_STATUS
        ),
        "DISCONTINUED"
    );
}

// ---------------------------------------------------------------------------------------
// 3. Character sets

#[test]
fn utf8_names_round_trip() {
    let r = findscu(
        main_site().port(),
        &["PatientName", "PatientID=SUB105\\SUB106"],
        &[],
    );
    r.assert_success();
    assert_eq!(r.patient_ids(), ids(&["SUB105", "SUB106"]), "{}", r.output);
    for rsp in &r.responses {
        assert_eq!(text(rsp, tags::SPECIFIC_CHARACTER_SET), "ISO_IR 192");
    }
    assert_eq!(
        text(r.by_patient_id("SUB105"), tags::PATIENT_NAME),
        "Hébert^Zoë"
    );
    assert_eq!(
        text(r.by_patient_id("SUB106"), tags::PATIENT_NAME),
        "Müller^Jürgen"
    );
    // Exact non-ASCII values match too, in a query that says it is UTF-8.
    let utf8 = "SpecificCharacterSet=ISO_IR 192";
    assert_eq!(matched(&[utf8, "PatientName=Hébert^Zoë"]), ids(&["SUB105"]));
    assert_eq!(matched(&[utf8, "PatientName=MÜLLER"]), ids(&["SUB106"]));
    assert_eq!(matched(&[utf8, "PatientName=*ë"]), ids(&["SUB105"]));
}

#[test]
fn latin1_responses_fall_back_to_utf8_and_latin1_queries_match() {
    let site = Site::start(
        vec![
            booking(7, "SUB7_Hébert_Zoë", "3T Diagnostic", 9),
            booking(8, "SUB8_Müller_Jürgen", "EEG Lab Room A", 10),
            booking(9, "SUB9_Łukasz_Anna", "3T Diagnostic", 11),
        ],
        r#"character_set = "ISO_IR 100""#,
    );
    let r = findscu(site.port(), &["PatientName", "PatientID"], &[]);
    r.assert_success();
    assert_eq!(
        r.patient_ids(),
        ids(&["SUB7", "SUB8", "SUB9"]),
        "{}",
        r.output
    );
    let charset = |id: &str| text(r.by_patient_id(id), tags::SPECIFIC_CHARACTER_SET);
    let name = |id: &str| text(r.by_patient_id(id), tags::PATIENT_NAME);
    assert_eq!(charset("SUB7"), "ISO_IR 100");
    assert_eq!(charset("SUB8"), "ISO_IR 100");
    assert_eq!(name("SUB7"), "Hébert^Zoë");
    assert_eq!(name("SUB8"), "Müller^Jürgen");
    // Ł is not Latin-1: that response is sent in UTF-8 and says so.
    assert_eq!(charset("SUB9"), "ISO_IR 192");
    assert_eq!(name("SUB9"), "Łukasz^Anna");

    // The bytes on the wire really are Latin-1 (é = E9), not UTF-8 labelled Latin-1.
    let r = findscu(site.port(), &["PatientName", "PatientID=SUB7"], &[]);
    assert_eq!(r.responses.len(), 1, "{}", r.output);
    let mut bytes = Vec::new();
    r.responses[0]
        .write_dataset_with_ts(
            &mut bytes,
            &dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased(),
        )
        .expect("re-encode");
    assert!(
        bytes.windows(6).any(|w| w == b"H\xe9bert"),
        "Latin-1 é expected"
    );

    // A query in Latin-1 (é as the byte E9) is decoded before matching, on both servers.
    let latin1_query = |port: u16, name: &[u8]| {
        let keys: Vec<OsString> = vec![
            "SpecificCharacterSet=ISO_IR 100".into(),
            raw_arg(&[b"PatientName=".as_slice(), name].concat()),
            "PatientID".into(),
        ];
        let r = findscu_raw(port, &keys, &[], None);
        r.assert_success();
        r.patient_ids()
    };
    assert_eq!(latin1_query(site.port(), b"H\xe9bert*"), ids(&["SUB7"]));
    assert_eq!(latin1_query(site.port(), b"h\xc9BERT"), ids(&["SUB7"]));
    assert_eq!(latin1_query(site.port(), b"H?bert"), ids(&["SUB7"]));
    assert_eq!(
        latin1_query(main_site().port(), b"H\xe9bert^Zo\xeb"),
        ids(&["SUB105"])
    );
    assert_eq!(
        latin1_query(main_site().port(), b"M\xfcller"),
        ids(&["SUB106"])
    );
}

// ---------------------------------------------------------------------------------------
// 4. C-CANCEL

/// Items of the C-CANCEL test.
const CANCEL_ITEMS: usize = 200;

fn many_bookings(n: usize, first_id: i64) -> Vec<FakeBooking> {
    (0..n)
        .map(|i| {
            let id = first_id + i as i64;
            let mut b = booking(id, &format!("SUB{id}_Subject_N{i}"), "3T Diagnostic", 8);
            // Spread over 08:00 to 18:00.
            let minutes = i * 600 / n;
            b.start = today().at(8 + (minutes / 60) as i8, (minutes % 60) as i8, 0, 0);
            b.end = b.start + jiff::Span::new().minutes(2);
            b
        })
        .collect()
}

#[test]
fn c_cancel_ends_the_query_with_fe00() {
    let site = Site::start(many_bookings(CANCEL_ITEMS, 1000), "");
    let all = findscu(site.port(), &["PatientName", "PatientID"], &[]);
    all.assert_success();
    assert_eq!(all.responses.len(), CANCEL_ITEMS, "{}", all.output);

    // findscu asks for small socket buffers (DCMTK's TCP_BUFFER_LENGTH), so that the
    // responses (an empty step item returns every step attribute: ~100 KB in all) cannot
    // all be queued in the sockets before its C-CANCEL arrives: the server is still
    // sending then, however fast it is.
    let keys: Vec<OsString> = ["PatientName", "PatientID", "StudyInstanceUID", SPS]
        .iter()
        .map(OsString::from)
        .collect();
    let r = findscu_env(
        site.port(),
        &keys,
        &["--cancel", "3"],
        None,
        &[("TCP_BUFFER_LENGTH", "4096")],
    );
    assert!(
        r.output.contains("Sending Cancel Request"),
        "findscu sent no cancel:\n{}",
        r.output
    );
    eprintln!(
        "findscu --cancel 3: {} responses, final status {:04X?}",
        r.responses.len(),
        r.final_status()
    );
    // Whether findscu's cancel lands before the last item depends on timing (how much
    // the sockets queue); both outcomes are correct (PS3.7: a cancel after the final
    // response is ignored), but never a mix. The deterministic check is the Rust client's
    // below.
    match r.final_status() {
        Some(0xFE00) => {
            assert!(
                r.output
                    .contains("Cancel: Matching terminated due to Cancel Request"),
                "{}",
                r.output
            );
            assert!(
                r.responses.len() >= 3 && r.responses.len() < CANCEL_ITEMS,
                "{} responses:\n{}",
                r.responses.len(),
                r.output
            );
        }
        Some(0x0000) => assert_eq!(r.responses.len(), CANCEL_ITEMS, "{}", r.output),
        other => panic!("final status {other:04X?}:\n{}", r.output),
    }
    // The server still answers, on a new association...
    let e = echoscu(site.port(), "CONSOLE", AE);
    assert!(e.success(), "{}", e.output);
    let again = findscu(site.port(), &["PatientID"], &[]);
    again.assert_success();
    assert_eq!(again.responses.len(), CANCEL_ITEMS);

    // ...and on the same association after a cancel (Rust client). A C-CANCEL sent right
    // behind the request (in the same write) ends it before anything is sent, even when
    // the answer is gathered without leaving the association's task.
    let mut c = Client::connect(site.port(), "CONSOLE", AE).expect("associate");
    let q = identifier(&[(tags::PATIENT_ID, VR::LO, "")], None);
    let id = c.message_id();
    let cancelled = c.find_raw(&encode_implicit(&q), Split::OnePdu, id, Some(0));
    eprintln!(
        "Rust client, cancel right behind the request: {} responses, final {:04X?}",
        cancelled.identifiers.len(),
        cancelled.final_status()
    );
    assert_eq!(cancelled.final_status(), Some(0xFE00));
    assert!(cancelled.identifiers.len() < CANCEL_ITEMS);
    for cmd in &cancelled.commands {
        assert_eq!(
            command_u16(cmd, tags::MESSAGE_ID_BEING_RESPONDED_TO),
            Some(id)
        );
    }
    let id = c.message_id();
    let full = c.find(&q, Split::OnePdu, id);
    assert_eq!(full.final_status(), Some(0x0000));
    assert_eq!(full.identifiers.len(), CANCEL_ITEMS);
    // A cancel after the final response is ignored: the next answer is the echo's.
    c.cancel(id);
    let echo = c.echo();
    assert_eq!(command_u16(&echo, tags::COMMAND_FIELD), Some(0x8030));
    assert_eq!(command_u16(&echo, tags::STATUS), Some(0x0000));
    let id = c.message_id();
    let again = c.find(&q, Split::SeparatePdus, id);
    assert_eq!(again.final_status(), Some(0x0000));
    assert_eq!(again.identifiers.len(), CANCEL_ITEMS);
    c.release();
}

/// Items of the mid-stream cancel test: an answer far larger than what is read and
/// encoded in one go (64 KiB), so it is streamed from the store.
const STREAMED_ITEMS: usize = 3000;

#[test]
fn a_streamed_universal_query_cancelled_midway_leaves_the_association_usable() {
    let site = Site::start(many_bookings(STREAMED_ITEMS, 20_000), "");
    let mut c = Client::connect(site.port(), "CONSOLE", AE).expect("associate");
    let q = identifier(
        &[
            (tags::PATIENT_NAME, VR::PN, ""),
            (tags::PATIENT_ID, VR::LO, ""),
            (tags::STUDY_INSTANCE_UID, VR::UI, ""),
            (tags::ACCESSION_NUMBER, VR::SH, ""),
        ],
        Some(&[]),
    );
    let bytes = encode_implicit(&q);
    // More cancelled streams than there are streaming threads: each one's producer must
    // stop and let the next query have its thread.
    for round in 0..4 {
        let id = c.message_id();
        let r = c.find_raw(&bytes, Split::OnePdu, id, Some(50));
        eprintln!(
            "round {round}: cancelled after 50: {} responses, final {:04X?}",
            r.identifiers.len(),
            r.final_status()
        );
        assert_eq!(r.final_status(), Some(0xFE00), "round {round}");
        assert!(
            r.identifiers.len() >= 50 && r.identifiers.len() < STREAMED_ITEMS,
            "round {round}: {} responses",
            r.identifiers.len()
        );
        // The association still answers, in order: the echo's response is next.
        let echo = c.echo();
        assert_eq!(command_u16(&echo, tags::COMMAND_FIELD), Some(0x8030));
        assert_eq!(command_u16(&echo, tags::STATUS), Some(0x0000));
    }
    // A whole answer after the cancels: every item once.
    let id = c.message_id();
    let full = c.find_raw(&bytes, Split::OnePdu, id, None);
    assert_eq!(full.final_status(), Some(0x0000));
    let mut want: Vec<String> = (0..STREAMED_ITEMS)
        .map(|i| format!("SUB{}", 20_000 + i))
        .collect();
    want.sort();
    assert_eq!(full.values(tags::PATIENT_ID), want);
    c.release();
    let log = site.server.log();
    assert!(!log.contains("C-FIND failed"), "{log}");
}

fn encode_implicit(obj: &InMemDicomObject) -> Vec<u8> {
    let mut out = Vec::new();
    obj.write_dataset_with_ts(
        &mut out,
        &dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN.erased(),
    )
    .expect("encode");
    out
}

// ---------------------------------------------------------------------------------------
// 5. Association limit

#[test]
fn associations_beyond_the_limit_are_rejected() {
    let site = Site::start(
        vec![booking(1, "SUB1_A_B", "3T Diagnostic", 9)],
        "max_associations = 2",
    );
    let mut first = Client::connect(site.port(), "CONSOLE_A", AE).expect("first");
    let mut second = Client::connect(site.port(), "CONSOLE_B", AE).expect("second");
    assert_eq!(command_u16(&first.echo(), tags::STATUS), Some(0x0000));
    assert_eq!(command_u16(&second.echo(), tags::STATUS), Some(0x0000));

    let third = echoscu(site.port(), "CONSOLE_C", AE);
    assert!(!third.success(), "{}", third.output);
    assert!(
        third.output.contains("Rejected Transient"),
        "{}",
        third.output
    );
    assert!(
        third.output.contains("Local Limit Exceeded"),
        "{}",
        third.output
    );
    // The two open ones still work.
    assert_eq!(command_u16(&first.echo(), tags::STATUS), Some(0x0000));

    first.release();
    second.release();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let e = echoscu(site.port(), "CONSOLE_C", AE);
        if e.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still rejected after release: {}",
            e.output
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_silent_association_is_dropped_after_the_idle_timeout() {
    let site = Site::start(
        vec![booking(1, "SUB1_A_B", "3T Diagnostic", 9)],
        "max_associations = 1\nidle_timeout = 1",
    );
    let mut silent = Client::connect(site.port(), "CONSOLE_A", AE).expect("first");
    assert_eq!(command_u16(&silent.echo(), tags::STATUS), Some(0x0000));
    // While it is open, it holds the only slot.
    let busy = echoscu(site.port(), "CONSOLE_B", AE);
    assert!(
        busy.output.contains("Rejected Transient"),
        "{}",
        busy.output
    );
    // Silent for longer than idle_timeout: dropped, and its slot freed.
    std::thread::sleep(Duration::from_millis(1500));
    let e = echoscu(site.port(), "CONSOLE_B", AE);
    assert!(e.success(), "{}", e.output);
    assert!(
        silent.try_echo().is_err(),
        "the silent association should have been aborted"
    );
}

// ---------------------------------------------------------------------------------------
// 6. DIMSE details, with the Rust client

fn universal_query() -> InMemDicomObject {
    identifier(
        &[
            (tags::PATIENT_NAME, VR::PN, ""),
            (tags::PATIENT_ID, VR::LO, ""),
        ],
        Some(&[
            (tags::MODALITY, VR::CS, ""),
            (tags::SCHEDULED_STATION_AE_TITLE, VR::AE, ""),
        ]),
    )
}

fn encoded(identifiers: &[InMemDicomObject]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = identifiers.iter().map(encode_implicit).collect();
    v.sort();
    v
}

#[test]
fn pdu_layouts_give_the_same_answers_and_message_ids_are_echoed() {
    let mut c = Client::connect(main_site().port(), "CONSOLE", AE).expect("associate");
    let q = universal_query();
    let mut answers = Vec::new();
    for (split, id) in [
        (Split::OnePdu, 7),
        (Split::SeparatePdus, 4242),
        (Split::FragmentedCommand, 65535),
    ] {
        let r = c.find(&q, split, id);
        assert_eq!(r.final_status(), Some(0x0000), "{split:?}");
        assert!(
            r.statuses[..r.statuses.len() - 1]
                .iter()
                .all(|s| *s == 0xFF00),
            "{split:?}: {:04X?}",
            r.statuses
        );
        assert_eq!(r.values(tags::PATIENT_ID), ids(&OFFERED), "{split:?}");
        for cmd in &r.commands {
            assert_eq!(
                command_u16(cmd, tags::MESSAGE_ID_BEING_RESPONDED_TO),
                Some(id),
                "{split:?}"
            );
            assert_eq!(command_u16(cmd, tags::COMMAND_FIELD), Some(0x8020));
        }
        answers.push(encoded(&r.identifiers));
    }
    assert_eq!(answers[0], answers[1], "one PDU vs separate PDUs");
    assert_eq!(answers[0], answers[2], "one PDU vs fragmented command");
    // C-ECHO's message ID too.
    let expected = c.message_id();
    let rsp = c.echo();
    assert_eq!(
        command_u16(&rsp, tags::MESSAGE_ID_BEING_RESPONDED_TO),
        Some(expected + 1)
    );
    c.release();
}

fn offending(cmd: &InMemDicomObject) -> Vec<Tag> {
    match cmd.get(tags::OFFENDING_ELEMENT).map(|e| e.value()) {
        Some(dicom_core::value::Value::Primitive(dicom_core::PrimitiveValue::Tags(t))) => {
            t.to_vec()
        }
        other => panic!("no OffendingElement: {other:?}"),
    }
}

#[test]
fn two_step_items_are_refused_with_a900() {
    let mut c = Client::connect(main_site().port(), "CONSOLE", AE).expect("associate");
    let mut q = identifier(&[(tags::PATIENT_ID, VR::LO, "")], None);
    let item = |m: &str| {
        InMemDicomObject::from_element_iter([dicom_core::DataElement::new(
            tags::MODALITY,
            VR::CS,
            dicom_core::PrimitiveValue::from(m),
        )])
    };
    q.put(dicom_core::DataElement::new(
        tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
        VR::SQ,
        dicom_core::value::DataSetSequence::from(vec![item("MR"), item("EEG")]),
    ));
    let r = c.find(&q, Split::OnePdu, 31);
    assert_eq!(r.statuses, vec![0xA900]);
    assert!(r.identifiers.is_empty());
    assert_eq!(
        offending(r.final_command()),
        vec![tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE]
    );
    assert_eq!(
        command_u16(r.final_command(), tags::MESSAGE_ID_BEING_RESPONDED_TO),
        Some(31)
    );
    assert!(
        !text(r.final_command(), tags::ERROR_COMMENT).is_empty(),
        "an ErrorComment says why"
    );
    // Other invalid identifiers: a date that is not one, a wildcard on a UID.
    let bad_date = identifier(
        &[(tags::PATIENT_ID, VR::LO, "")],
        Some(&[(
            tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
            VR::DA,
            "2026XX01",
        )]),
    );
    let r = c.find(&bad_date, Split::OnePdu, 33);
    assert_eq!(r.statuses, vec![0xA900]);
    assert_eq!(
        offending(r.final_command()),
        vec![
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            tags::SCHEDULED_PROCEDURE_STEP_START_DATE
        ]
    );
    let uid_wildcard = identifier(&[(tags::STUDY_INSTANCE_UID, VR::UI, "2.25.*")], None);
    let r = c.find(&uid_wildcard, Split::OnePdu, 34);
    assert_eq!(r.statuses, vec![0xA900]);
    assert_eq!(offending(r.final_command()), vec![tags::STUDY_INSTANCE_UID]);
    // The association goes on.
    let r = c.find(&universal_query(), Split::OnePdu, 32);
    assert_eq!(r.final_status(), Some(0x0000));
    c.release();
}

#[test]
fn garbage_identifier_is_a900_and_the_association_survives() {
    let mut c = Client::connect(main_site().port(), "CONSOLE", AE).expect("associate");
    // (0010,0010) announcing 64 KiB, followed by 4 bytes.
    let garbage: Vec<u8> = vec![
        0x10, 0x00, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0xDE, 0xAD, 0xBE, 0xEF,
    ];
    let r = c.find_raw(&garbage, Split::SeparatePdus, 41, None);
    assert_eq!(r.statuses, vec![0xA900]);
    assert!(r.identifiers.is_empty());
    assert_eq!(
        command_u16(r.final_command(), tags::MESSAGE_ID_BEING_RESPONDED_TO),
        Some(41)
    );
    // Same association: C-ECHO and a real query still work.
    assert_eq!(command_u16(&c.echo(), tags::STATUS), Some(0x0000));
    let r = c.find(&universal_query(), Split::OnePdu, 42);
    assert_eq!(r.final_status(), Some(0x0000));
    assert_eq!(r.values(tags::PATIENT_ID), ids(&OFFERED));
    c.release();
    // And the server.
    let e = echoscu(main_site().port(), "CONSOLE", AE);
    assert!(e.success(), "{}", e.output);
}

/// Ethnic Group (0010,2160): retired, and not a key the store holds.
const ETHNIC_GROUP: Tag = Tag(0x0010, 0x2160);

/// A 12-byte identifier whose one element announces a length of 0x7FFFFFF0 bytes: the
/// server hands it to dicom-rs, which allocates (and fills) the announced ~2 GiB before
/// finding the data short. Measured: peak RSS 27 MB → 2.1 GB and 12.6 s (debug build)
/// before the A900; a few such requests at once exhaust the host. The identifier is far
/// below `max_identifier_bytes` (1 MiB), which only bounds the bytes received.
#[test]

fn an_element_announcing_gigabytes_is_refused_without_allocating_them() {
    let site = Site::start(vec![booking(1, "SUB1_A_B", "3T Diagnostic", 9)], "");
    let mut c = Client::connect(site.port(), "CONSOLE", AE).expect("associate");
    let mut garbage = vec![0x10, 0x00, 0x10, 0x00];
    garbage.extend_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
    garbage.extend_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]);
    let started = Instant::now();
    let r = c.find_raw(&garbage, Split::OnePdu, 81, None);
    let elapsed = started.elapsed();
    let peak = site.server.peak_rss_kib().expect("the server's VmHWM");
    eprintln!("A900 after {elapsed:?}; server peak RSS {peak} KiB");
    assert_eq!(r.statuses, vec![0xA900]);
    assert!(peak < 256 * 1024, "server peak RSS {peak} KiB");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

#[test]
fn value_on_a_key_we_do_not_store_gives_ff01() {
    let mut c = Client::connect(main_site().port(), "CONSOLE", AE).expect("associate");
    let q = identifier(
        &[
            (tags::PATIENT_ID, VR::LO, "SUB101\\SUB102"),
            (ETHNIC_GROUP, VR::SH, "X"),
        ],
        None,
    );
    let r = c.find(&q, Split::OnePdu, 51);
    assert_eq!(
        r.statuses,
        vec![0xFF01, 0xFF01, 0x0000],
        "{:04X?}",
        r.statuses
    );
    // Ignored for matching, returned without a value.
    assert_eq!(r.values(tags::PATIENT_ID), ids(&["SUB101", "SUB102"]));
    for i in &r.identifiers {
        assert_eq!(text(i, ETHNIC_GROUP), "");
        assert!(i.get(ETHNIC_GROUP).is_some());
    }
    // Without a value the key is fine: FF00.
    let q = identifier(
        &[
            (tags::PATIENT_ID, VR::LO, "SUB101"),
            (ETHNIC_GROUP, VR::SH, ""),
        ],
        None,
    );
    let r = c.find(&q, Split::OnePdu, 52);
    assert_eq!(r.statuses, vec![0xFF00, 0x0000]);
    // A Specific Character Set we cannot decode: FF01 too (text read as Latin-1).
    let mut q = identifier(&[(tags::PATIENT_ID, VR::LO, "SUB101")], None);
    q.put(dicom_core::DataElement::new(
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        dicom_core::PrimitiveValue::from("ISO_IR 999"),
    ));
    let r = c.find(&q, Split::OnePdu, 53);
    assert_eq!(r.statuses, vec![0xFF01, 0x0000]);
    assert_eq!(r.values(tags::PATIENT_ID), ids(&["SUB101"]));
    c.release();
}

// ---------------------------------------------------------------------------------------
// 7. Export

#[test]
fn export_writes_worklist_files_dcmtk_reads() {
    let site = main_site();
    let out_dir = tempfile::tempdir().expect("tempdir");
    let dir = out_dir.path().join("MWLBRIDGE");
    let config = site.config().to_str().expect("utf-8").to_string();
    let o = common::run(&[
        "export",
        "--config",
        &config,
        "--dir",
        dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    assert!(
        common::stdout(&o).contains("8 worklist files written"),
        "{}",
        common::stdout(&o)
    );
    assert!(dir.join("lockfile").is_file(), "lockfile");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wl"))
        .collect();
    files.sort();
    assert_eq!(files.len(), OFFERED.len(), "{files:?}");
    let mut patient_ids: Vec<String> = files
        .iter()
        .map(|f| {
            let obj = dicom_object::open_file(f).expect("a DICOM file");
            text(&obj, tags::PATIENT_ID)
        })
        .collect();
    patient_ids.sort();
    assert_eq!(patient_ids, ids(&OFFERED));
    let dump = files
        .iter()
        .map(|f| dcmdump(f))
        .find(|d| d.contains("[SUB105]"))
        .expect("SUB105's file");
    for needle in [
        "(0008,0005) CS [ISO_IR 192]",
        "(0010,0010) PN [Hébert^Zoë]",
        "(0040,0100) SQ",
        "(0040,0001) AE [MRI_3T]",
        "(0008,0060) CS [MR]",
        "(0040,0020) CS [SCHEDULED]",
        "MediaStorageSOPClassUID",
        // mwlbridge's own identity, not dicom-rs's.
        "(0002,0012) UI [2.25.334732025013351261267767958350300486179]",
        "(0002,0013) SH [MWLBRIDGE_",
    ] {
        assert!(dump.contains(needle), "{needle} in:\n{dump}");
    }
    // A second export replaces the first one's files.
    let o = common::run(&[
        "export",
        "--config",
        &config,
        "--dir",
        dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let n = std::fs::read_dir(&dir)
        .expect("read dir")
        .filter(|e| {
            e.as_ref()
                .expect("entry")
                .path()
                .extension()
                .is_some_and(|x| x == "wl")
        })
        .count();
    assert_eq!(n, OFFERED.len());
}

fn command(sop_class: &str, field: u16, message_id: u16) -> InMemDicomObject {
    use dicom_core::{DataElement, PrimitiveValue};
    let mut uid = sop_class.to_string();
    if uid.len() % 2 == 1 {
        uid.push('\0');
    }
    InMemDicomObject::command_from_element_iter([
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(uid),
        ),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(field)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(message_id)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(0u16),
        ),
    ])
}

/// Patient Root Query/Retrieve Information Model – FIND.
const PATIENT_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.1.1";

#[test]
fn other_sop_classes_and_operations_are_refused() {
    let mut c = Client::connect(main_site().port(), "CONSOLE", AE).expect("associate");
    let data = encode_implicit(&universal_query());
    // A Patient Root C-FIND on the MWL context: 0122.
    let r = c.request(
        MWL_FIND,
        &command(PATIENT_ROOT_FIND, 0x0020, 61),
        Some(&data),
    );
    assert_eq!(r.statuses, vec![0x0122]);
    assert!(r.identifiers.is_empty());
    // A C-GET-RQ: unrecognized operation, 0211, in a C-GET-RSP.
    let r = c.request(MWL_FIND, &command(MWL_FIND, 0x0010, 62), Some(&data));
    assert_eq!(r.statuses, vec![0x0211]);
    assert_eq!(
        command_u16(r.final_command(), tags::COMMAND_FIELD),
        Some(0x8010)
    );
    // The association goes on.
    assert_eq!(command_u16(&c.echo(), tags::STATUS), Some(0x0000));
    c.release();
}

/// PS3.7: a message's Affected SOP Class must be the abstract syntax of the presentation
/// context it comes on. The server takes the command's SOP class and ignores the
/// context's, so an MWL C-FIND sent on the Verification context is answered with the
/// worklist.
#[test]

fn a_find_on_the_verification_context_is_refused() {
    let mut c = Client::connect(main_site().port(), "CONSOLE", AE).expect("associate");
    let data = encode_implicit(&universal_query());
    let r = c.request(VERIFICATION, &command(MWL_FIND, 0x0020, 71), Some(&data));
    assert!(
        r.identifiers.is_empty(),
        "{} items answered",
        r.identifiers.len()
    );
    assert!(
        !matches!(r.final_status(), Some(0x0000 | 0xFF00 | 0xFF01)),
        "{:04X?}",
        r.statuses
    );
}

#[test]
fn a_malformed_command_set_aborts_only_that_association() {
    let port = main_site().port();
    let mut other = Client::connect(port, "CONSOLE_B", AE).expect("associate");
    let mut c = Client::connect(port, "CONSOLE", AE).expect("associate");
    let answer = c.send_raw(
        MWL_FIND,
        vec![(
            dicom_ul::pdu::PDataValueType::Command,
            true,
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
        )],
    );
    assert!(
        matches!(answer, Ok(dicom_ul::pdu::Pdu::AbortRQ { .. }) | Err(_)),
        "{answer:?}"
    );
    // The other association and new ones are unaffected.
    assert_eq!(command_u16(&other.echo(), tags::STATUS), Some(0x0000));
    other.release();
    let e = echoscu(port, "CONSOLE", AE);
    assert!(e.success(), "{}", e.output);
}
