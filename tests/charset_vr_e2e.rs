//! Issue 16 end to end, with the real binary: responses in the console's character set
//! (a Latin-1 query is answered in Latin-1, a response that does not fit falls back to
//! UTF-8 on its own, a Japanese ISO 2022 query matches with FF00), group lengths that draw
//! no FF01, and keys sent with a VR other than their own (read by the dictionary VR when
//! they can be, refused with A900 naming the key when not).

mod common;

use std::ffi::OsString;
use std::sync::OnceLock;

use common::dicom_client::{Client, Split, identifier};
use common::scp::{AE, Site, dump2dcm, findscu_raw, text};
use common::{booking, today};
use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use worklist_store::format_da;

/// The bookings: a name in Latin-1, one outside it (Ł), an ASCII one, a Japanese one.
fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        Site::start(
            vec![
                booking(201, "SUB201_Bélanger_Sophie", "3T Diagnostic", 9),
                booking(202, "SUB202_Łukasz_Anna", "3T Diagnostic", 10),
                booking(203, "SUB203_Tremblay_Marie", "EEG Lab Room A", 11),
                booking(204, "SUB204_山田_太郎", "7T Research", 12),
            ],
            "",
        )
    })
}

fn ids(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn charset_of(rsp: &InMemDicomObject) -> Vec<String> {
    rsp.get(tags::SPECIFIC_CHARACTER_SET)
        .and_then(|e| e.to_multi_str().ok())
        .map(|v| v.iter().map(|s| s.trim().to_string()).collect())
        .unwrap_or_default()
}

/// An element with a string value (zero-length when empty).
fn el(tag: Tag, vr: VR, v: &str) -> DataElement<InMemDicomObject> {
    if v.is_empty() {
        DataElement::new(tag, vr, PrimitiveValue::Empty)
    } else {
        DataElement::new(tag, vr, PrimitiveValue::from(v))
    }
}

fn explicit(obj: &InMemDicomObject) -> Vec<u8> {
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
        .expect("encode");
    out
}

// ---------------------------------------------------------------------------------------
// Character sets

#[test]
fn a_latin1_query_is_answered_in_latin1_each_response_falling_back_on_its_own() {
    let port = site().port();
    let query = |scs: &str| {
        let keys: Vec<OsString> = vec![
            format!("SpecificCharacterSet={scs}").into(),
            "PatientName".into(),
            "PatientID=SUB201\\SUB202\\SUB203".into(),
        ];
        let r = findscu_raw(port, &keys, &[], None);
        r.assert_success();
        assert_eq!(
            r.patient_ids(),
            ids(&["SUB201", "SUB202", "SUB203"]),
            "{}",
            r.output
        );
        r
    };
    for scs in ["ISO_IR 100", "ISO 2022 IR 6\\ISO 2022 IR 100"] {
        let r = query(scs);
        let rsp = |id: &str| r.by_patient_id(id);
        // Latin-1 asked, Latin-1 answered: Bélanger read back through ISO_IR 100.
        assert_eq!(charset_of(rsp("SUB201")), ["ISO_IR 100"], "{scs}");
        assert_eq!(text(rsp("SUB201"), tags::PATIENT_NAME), "Bélanger^Sophie");
        assert_eq!(charset_of(rsp("SUB203")), ["ISO_IR 100"], "{scs}");
        // Ł is not Latin-1: that response alone is sent in UTF-8, and says so.
        assert_eq!(charset_of(rsp("SUB202")), ["ISO_IR 192"], "{scs}");
        assert_eq!(text(rsp("SUB202"), tags::PATIENT_NAME), "Łukasz^Anna");
    }
    // No character set in the query: the configured default (ISO_IR 192) for every one.
    let keys: Vec<OsString> = vec!["PatientName".into(), "PatientID=SUB201\\SUB203".into()];
    let r = findscu_raw(port, &keys, &[], None);
    r.assert_success();
    assert_eq!(r.responses.len(), 2, "{}", r.output);
    for rsp in &r.responses {
        assert_eq!(charset_of(rsp), ["ISO_IR 192"]);
    }
}

#[test]
fn a_latin1_response_carries_the_latin1_byte_on_the_wire() {
    let mut c = Client::connect(site().port(), "CONSOLE", AE).expect("associate");
    let q = identifier(
        &[
            (tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100"),
            (tags::PATIENT_NAME, VR::PN, ""),
            (tags::PATIENT_ID, VR::LO, "SUB201"),
        ],
        None,
    );
    let r = c.find(&q, Split::OnePdu, 1);
    assert_eq!(r.statuses, vec![0xFF00, 0x0000]);
    let raw = &r.raw_identifiers[0];
    assert!(
        raw.windows(10).any(|w| w == b"ISO_IR 100"),
        "{:?}",
        String::from_utf8_lossy(raw)
    );
    // é is the one byte E9, not UTF-8's C3 A9.
    assert!(raw.windows(8).any(|w| w == b"B\xe9langer"));
    assert!(!raw.windows(2).any(|w| w == b"\xc3\xa9"));
    c.release();
}

#[test]
fn a_dump2dcm_latin1_query_file_is_answered_in_latin1_as_dcmdump_shows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("query.dump");
    std::fs::write(
        &dump,
        "(0008,0005) CS [ISO_IR 100]\n(0010,0010) PN []\n(0010,0020) LO [SUB201]\n",
    )
    .expect("write dump");
    let query = dir.path().join("query.dcm");
    dump2dcm(&dump, &query);
    let out = dir.path().join("rsp");
    std::fs::create_dir(&out).expect("mkdir");
    let o = std::process::Command::new("findscu")
        .args([
            "-W",
            "-aet",
            "CONSOLE",
            "-aec",
            AE,
            "-X",
            "--output-directory",
        ])
        .arg(&out)
        .arg("127.0.0.1")
        .arg(site().port().to_string())
        .arg(&query)
        .output()
        .expect("findscu runs");
    let files: Vec<_> = std::fs::read_dir(&out)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&files[0]).expect("read response");
    assert!(bytes.windows(8).any(|w| w == b"B\xe9langer"));
    // dcmdump prints values as their bytes: B, E9, langer, in a data set saying ISO_IR 100.
    let o = std::process::Command::new("dcmdump")
        .arg(&files[0])
        .output()
        .expect("dcmdump runs");
    let dump = o.stdout;
    let shown = String::from_utf8_lossy(&dump).into_owned();
    assert!(shown.contains("(0008,0005) CS [ISO_IR 100]"), "{shown}");
    assert!(
        dump.windows(20).any(|w| w == b"PN [B\xe9langer^Sophie]"),
        "{shown}"
    );
}

#[test]
fn a_japanese_iso_2022_query_matches_with_ff00_and_is_answered_in_utf8() {
    let mut c = Client::connect(site().port(), "CONSOLE", AE).expect("associate");
    let mut q = identifier(
        &[
            (tags::PATIENT_NAME, VR::PN, ""),
            (tags::PATIENT_ID, VR::LO, "SUB201\\SUB204"),
        ],
        None,
    );
    q.put(DataElement::new(
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        PrimitiveValue::Strs(["".to_string(), "ISO 2022 IR 87".to_string()].into()),
    ));
    let r = c.find(&q, Split::OnePdu, 1);
    assert_eq!(r.statuses, vec![0xFF00, 0xFF00, 0x0000]);
    assert_eq!(r.values(tags::PATIENT_ID), ids(&["SUB201", "SUB204"]));
    for rsp in &r.identifiers {
        assert_eq!(charset_of(rsp), ["ISO_IR 192"]);
    }
    assert_eq!(
        r.values(tags::PATIENT_NAME),
        ["Bélanger^Sophie", "山田^太郎"]
    );

    // A name in JIS X 0208 (ESC $ B, 山田 = 3B 33 45 44, ESC ( B) is read as Japanese.
    let mut q = identifier(
        &[
            (tags::PATIENT_NAME, VR::PN, "\u{1b}$B;3ED\u{1b}(B"),
            (tags::PATIENT_ID, VR::LO, ""),
        ],
        None,
    );
    q.put(DataElement::new(
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        PrimitiveValue::Strs(["".to_string(), "ISO 2022 IR 87".to_string()].into()),
    ));
    let r = c.find(&q, Split::OnePdu, 2);
    assert_eq!(r.statuses, vec![0xFF00, 0x0000]);
    assert_eq!(r.values(tags::PATIENT_ID), ["SUB204"]);
    // The same with katakana designated too (ISO 2022 IR 13 first).
    q.put(DataElement::new(
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        PrimitiveValue::Strs(["ISO 2022 IR 13".to_string(), "ISO 2022 IR 87".to_string()].into()),
    ));
    let r = c.find(&q, Split::OnePdu, 3);
    assert_eq!(r.statuses, vec![0xFF00, 0x0000]);
    assert_eq!(r.values(tags::PATIENT_ID), ["SUB204"]);
    assert_eq!(charset_of(&r.identifiers[0]), ["ISO_IR 192"]);
    c.release();
}

// ---------------------------------------------------------------------------------------
// Group lengths

#[test]
fn group_lengths_at_the_top_and_inside_sequence_items_draw_no_ff01() {
    let length =
        |group: u16, n: u32| DataElement::new(Tag(group, 0x0000), VR::UL, PrimitiveValue::from(n));
    let step = InMemDicomObject::from_element_iter([
        length(0x0008, 10),
        el(tags::MODALITY, VR::CS, "MR"),
        length(0x0040, 8),
        el(tags::SCHEDULED_STATION_AE_TITLE, VR::AE, ""),
    ]);
    let study = InMemDicomObject::from_element_iter([
        length(0x0008, 8),
        el(tags::REFERENCED_SOP_CLASS_UID, VR::UI, ""),
    ]);
    let q = InMemDicomObject::from_element_iter([
        length(0x0008, 8),
        DataElement::new(
            tags::REFERENCED_STUDY_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![study]),
        ),
        length(0x0010, 8),
        el(tags::PATIENT_ID, VR::LO, ""),
        length(0x0040, 8),
        DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![step]),
        ),
    ]);
    for explicit_vr in [false, true] {
        let mut c = if explicit_vr {
            Client::connect_explicit(site().port(), "CONSOLE", AE)
        } else {
            Client::connect(site().port(), "CONSOLE", AE)
        }
        .expect("associate");
        let bytes = if explicit_vr {
            explicit(&q)
        } else {
            common::dicom_client::encode(&q)
        };
        let r = c.find_raw(&bytes, Split::OnePdu, 1, None);
        // MR: the 3T and 7T bookings.
        assert_eq!(
            r.statuses,
            vec![0xFF00, 0xFF00, 0xFF00, 0x0000],
            "explicit {explicit_vr}"
        );
        assert_eq!(
            r.values(tags::PATIENT_ID),
            ids(&["SUB201", "SUB202", "SUB204"])
        );
        c.release();
    }
}

// ---------------------------------------------------------------------------------------
// Lenient VRs

/// Sends `q` in Explicit VR (its elements keep the VRs they were built with).
fn find_explicit(q: &InMemDicomObject) -> common::dicom_client::Responses {
    let mut c = Client::connect_explicit(site().port(), "CONSOLE", AE).expect("associate");
    let r = c.find_raw(&explicit(q), Split::OnePdu, 1, None);
    c.release();
    r
}

fn with_step(
    top: Vec<DataElement<InMemDicomObject>>,
    step: Vec<DataElement<InMemDicomObject>>,
) -> InMemDicomObject {
    let mut q = InMemDicomObject::from_element_iter(top);
    if q.get(tags::PATIENT_ID).is_none() {
        q.put(el(tags::PATIENT_ID, VR::LO, ""));
    }
    q.put(DataElement::new(
        tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![InMemDicomObject::from_element_iter(step)]),
    ));
    q
}

/// The PatientIDs matched; every status must be a success.
fn matched(q: &InMemDicomObject) -> Vec<String> {
    let r = find_explicit(q);
    assert_eq!(r.final_status(), Some(0x0000), "{:04X?}", r.statuses);
    assert!(
        r.statuses[..r.statuses.len() - 1]
            .iter()
            .all(|s| *s == 0xFF00),
        "{:04X?}",
        r.statuses
    );
    r.values(tags::PATIENT_ID)
}

#[test]
fn keys_sent_with_another_readable_vr_are_read_by_their_dictionary_vr() {
    let today = format_da(today());
    // PN as LO.
    let q = with_step(vec![el(tags::PATIENT_NAME, VR::LO, "tremblay")], vec![]);
    assert_eq!(matched(&q), ["SUB203"]);
    // AE as SH.
    let q = with_step(
        vec![],
        vec![el(tags::SCHEDULED_STATION_AE_TITLE, VR::SH, "MRI_3T")],
    );
    assert_eq!(matched(&q), ids(&["SUB201", "SUB202"]));
    // CS as LO.
    let q = with_step(vec![], vec![el(tags::MODALITY, VR::LO, "EEG")]);
    assert_eq!(matched(&q), ["SUB203"]);
    // DA as DT, TM as DT.
    let q = with_step(
        vec![],
        vec![
            el(tags::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DT, &today),
            el(
                tags::SCHEDULED_PROCEDURE_STEP_START_TIME,
                VR::DT,
                "0930-1030",
            ),
        ],
    );
    assert_eq!(matched(&q), ["SUB202"]);
    // UN: the bytes read as the dictionary's LO.
    let q = with_step(
        vec![DataElement::new(
            tags::PATIENT_ID,
            VR::UN,
            PrimitiveValue::U8(b"SUB203".iter().copied().collect()),
        )],
        vec![],
    );
    assert_eq!(matched(&q), ["SUB203"]);
    // UN for a name, in the query's character set (ISO_IR 100: é is E9).
    let q = with_step(
        vec![
            el(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100"),
            DataElement::new(
                tags::PATIENT_NAME,
                VR::UN,
                PrimitiveValue::U8(b"B\xe9langer".iter().copied().collect()),
            ),
        ],
        vec![],
    );
    assert_eq!(matched(&q), ["SUB201"]);
    // The step sequence as UN: its bytes are the item in Implicit VR Little Endian.
    let mut item = vec![0xFE, 0xFF, 0x00, 0xE0, 12, 0, 0, 0];
    item.extend_from_slice(&[0x08, 0x00, 0x60, 0x00, 4, 0, 0, 0]);
    item.extend_from_slice(b"EEG ");
    let mut q = InMemDicomObject::from_element_iter([el(tags::PATIENT_ID, VR::LO, "")]);
    q.put(DataElement::new(
        tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
        VR::UN,
        PrimitiveValue::U8(item.into_iter().collect()),
    ));
    assert_eq!(matched(&q), ["SUB203"]);
    // DS as FD: a number. No booking has a weight, so nothing matches, without an error.
    let q = with_step(
        vec![DataElement::new(
            tags::PATIENT_WEIGHT,
            VR::FD,
            PrimitiveValue::from(70.5f64),
        )],
        vec![],
    );
    assert_eq!(matched(&q), Vec::<String>::new());
    // A universal weight sent as FD is no condition.
    let q = with_step(
        vec![el(tags::PATIENT_WEIGHT, VR::FD, "")],
        vec![el(tags::MODALITY, VR::CS, "EEG")],
    );
    assert_eq!(matched(&q), ["SUB203"]);
}

#[test]
fn keys_that_cannot_be_read_as_their_vr_are_refused_naming_the_key() {
    let refused = |q: &InMemDicomObject, named: &str| {
        let r = find_explicit(q);
        assert_eq!(r.statuses, vec![0xA900], "{named}");
        let cmd = r.final_command();
        let comment = text(cmd, tags::ERROR_COMMENT);
        assert!(comment.contains(named), "{comment:?} names {named}");
        assert!(cmd.get(tags::OFFENDING_ELEMENT).is_some(), "{named}");
    };
    // A name sent as a binary number.
    let q = with_step(
        vec![DataElement::new(
            tags::PATIENT_NAME,
            VR::US,
            PrimitiveValue::from(7u16),
        )],
        vec![],
    );
    refused(&q, "(0010,0010)");
    // A date sent as a floating-point number.
    let q = with_step(
        vec![],
        vec![DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
            VR::FD,
            PrimitiveValue::from(20_261_126f64),
        )],
    );
    refused(&q, "(0040,0002)");
    // And the association is fine for the next query.
    let q = with_step(vec![], vec![el(tags::MODALITY, VR::CS, "EEG")]);
    assert_eq!(matched(&q), ["SUB203"]);
}
