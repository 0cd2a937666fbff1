//! The query layer's rules, key by key.

#![allow(clippy::unwrap_used)]

use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags as t;
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;
use jiff::civil::{DateTime, date};
use worklist_store::{StepStatus, WorklistEntry};

use super::{MwlQuery, QueryError, ResponseCharset};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A key: tag, VR, value (`\` separates values; `""` is zero-length).
type Key<'a> = (Tag, VR, &'a str);

const SPS: Tag = t::SCHEDULED_PROCEDURE_STEP_SEQUENCE;
const ETHNIC_GROUP: Tag = Tag(0x0010, 0x2160);
const OTHER_PATIENT_IDS: Tag = Tag(0x0010, 0x1000);

fn elem(tag: Tag, vr: VR, v: &str) -> InMemElement {
    let value: Value<InMemDicomObject> = if vr == VR::SQ {
        Value::Sequence(DataSetSequence::from(Vec::<InMemDicomObject>::new()))
    } else if v.is_empty() {
        PrimitiveValue::Empty.into()
    } else if matches!(vr, VR::ST | VR::LT | VR::UT) {
        PrimitiveValue::Str(v.to_owned()).into()
    } else {
        PrimitiveValue::Strs(v.split('\\').map(str::to_owned).collect()).into()
    };
    DataElement::new(tag, vr, value)
}

fn item(keys: &[Key]) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(keys.iter().map(|&(tag, vr, v)| elem(tag, vr, v)))
}

/// Builds a query identifier: top-level keys, and when `sps` is given, a Scheduled
/// Procedure Step Sequence with one item holding those keys (`Some(&[])`: an empty item).
fn q(keys: &[Key], sps: Option<&[Key]>) -> InMemDicomObject {
    let mut obj = item(keys);
    if let Some(sps) = sps {
        obj.put(DataElement::new(
            SPS,
            VR::SQ,
            Value::Sequence(DataSetSequence::from(vec![item(sps)])),
        ));
    }
    obj
}

fn parse(keys: &[Key], sps: Option<&[Key]>) -> MwlQuery {
    MwlQuery::parse(&q(keys, sps)).unwrap()
}

fn parse_err(obj: &InMemDicomObject) -> (Vec<Tag>, String) {
    match MwlQuery::parse(obj) {
        Err(QueryError::InvalidIdentifier { offending, reason }) => (offending, reason),
        Ok(q) => panic!("expected an error, parsed {q:?}"),
    }
}

/// Whether a query with one top-level key matches the entry.
fn top(tag: Tag, vr: VR, v: &str, e: &WorklistEntry) -> bool {
    parse(&[(tag, vr, v)], None).matches(e)
}

/// Whether a query with one step key matches the entry.
fn step(tag: Tag, vr: VR, v: &str, e: &WorklistEntry) -> bool {
    parse(&[], Some(&[(tag, vr, v)])).matches(e)
}

fn at(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> DateTime {
    date(y, mo, d).at(h, mi, 0, 0)
}

/// An entry with every value filled.
fn entry() -> WorklistEntry {
    let mut e = WorklistEntry::new("calpendo", "B1", "SUB001", at(2026, 11, 26, 9, 30));
    e.patient_name = Some("DOE^JOHN".into());
    e.patient_birth_date = Some(date(1980, 5, 17));
    e.patient_sex = Some("M".into());
    e.patient_weight_kg = Some(72.5);
    e.study_instance_uid = "1.2.826.0.1.3680043.10.1.1".into();
    e.accession_number = "ACC001".into();
    e.study_description = Some("Brain MRI".into());
    e.referring_physician_name = Some("WHO^GREGORY".into());
    e.requested_procedure_id = "RP001".into();
    e.requested_procedure_description = Some("MRI head".into());
    e.sps_id = "SPS001".into();
    e.station_ae_title = Some("MRI_3T".into());
    e.station_name = Some("PRISMA".into());
    e.end = Some(at(2026, 11, 26, 10, 30));
    e.modality = Some("MR".into());
    e.performing_physician_name = Some("Hébert^Anne".into());
    e.sps_description = Some("Protocol A".into());
    e.sps_location = Some("Room 1".into());
    e
}

/// An entry with only the values every entry has.
fn bare() -> WorklistEntry {
    WorklistEntry::new("calpendo", "B2", "SUB002", at(2026, 11, 26, 14, 0))
}

/// Every optional key of ours, at its level, with a value that matches `entry()`.
const OPTIONAL_TOP: [Key; 6] = [
    (t::PATIENT_NAME, VR::PN, "DOE^JOHN"),
    (t::PATIENT_BIRTH_DATE, VR::DA, "19800517"),
    (t::PATIENT_SEX, VR::CS, "M"),
    (t::PATIENT_WEIGHT, VR::DS, "72.5"),
    (t::STUDY_DESCRIPTION, VR::LO, "Brain MRI"),
    (t::REFERRING_PHYSICIAN_NAME, VR::PN, "WHO^GREGORY"),
];
const OPTIONAL_STEP: [Key; 9] = [
    (t::SCHEDULED_STATION_AE_TITLE, VR::AE, "MRI_3T"),
    (t::MODALITY, VR::CS, "MR"),
    (
        t::SCHEDULED_PERFORMING_PHYSICIAN_NAME,
        VR::PN,
        "Hébert^Anne",
    ),
    (
        t::SCHEDULED_PROCEDURE_STEP_DESCRIPTION,
        VR::LO,
        "Protocol A",
    ),
    (t::SCHEDULED_STATION_NAME, VR::SH, "PRISMA"),
    (t::SCHEDULED_PROCEDURE_STEP_LOCATION, VR::SH, "Room 1"),
    (t::SCHEDULED_PROCEDURE_STEP_END_DATE, VR::DA, "20261126"),
    (t::SCHEDULED_PROCEDURE_STEP_END_TIME, VR::TM, "1030"),
    (t::SCHEDULED_PROCEDURE_STEP_END_DATE, VR::DA, "20261126-"),
];

// ---------------------------------------------------------------------------------------
// Universal matching, missing values
// ---------------------------------------------------------------------------------------

#[test]
fn universal_keys_match_entries_with_and_without_values() {
    for e in [entry(), bare()] {
        for (tag, vr, _) in OPTIONAL_TOP {
            for v in ["", "*", " * "] {
                assert!(top(tag, vr, v, &e), "{tag} {v:?} on {}", e.source_record_id);
            }
        }
        for (tag, vr, _) in OPTIONAL_STEP {
            for v in ["", "*"] {
                assert!(step(tag, vr, v, &e), "{tag} {v:?}");
            }
        }
    }
}

#[test]
fn a_value_never_matches_an_entry_without_one() {
    let (full, bare) = (entry(), bare());
    for (tag, vr, v) in OPTIONAL_TOP {
        assert!(
            top(tag, vr, v, &full),
            "{tag} {v} should match the full entry"
        );
        assert!(!top(tag, vr, v, &bare), "{tag} {v} matched a missing value");
    }
    for (tag, vr, v) in OPTIONAL_STEP {
        assert!(
            step(tag, vr, v, &full),
            "{tag} {v} should match the full entry"
        );
        assert!(
            !step(tag, vr, v, &bare),
            "{tag} {v} matched a missing value"
        );
    }
    // A wildcard that matches any value still needs a value.
    assert!(!step(t::MODALITY, VR::CS, "**", &bare));
    assert!(!top(t::PATIENT_NAME, VR::PN, "?*", &bare));
    assert!(!step(t::SCHEDULED_STATION_AE_TITLE, VR::AE, "MR\\*", &bare));
}

// ---------------------------------------------------------------------------------------
// Text keys, one by one
// ---------------------------------------------------------------------------------------

/// Single value, padding, case, wildcard, list and mismatch for a case-sensitive text key.
fn text_key_rules(tag: Tag, vr: VR, value: &str, in_step: bool) {
    let e = entry();
    let m = |v: &str| {
        if in_step {
            step(tag, vr, v, &e)
        } else {
            top(tag, vr, v, &e)
        }
    };
    assert!(m(value), "{tag}: exact {value}");
    assert!(m(&format!(" {value} ")), "{tag}: padding");
    assert!(!m(&format!("{value}X")), "{tag}: longer value");
    assert!(
        !m(&value[..value.len() - 1]),
        "{tag}: prefix is not a match"
    );
    let lower = value.to_lowercase();
    if lower != value {
        assert!(!m(&lower), "{tag}: {vr} is case-sensitive");
    }
    assert!(m(&format!("{}*", &value[..1])), "{tag}: trailing *");
    assert!(
        m(&format!("*{}", &value[value.len() - 1..])),
        "{tag}: leading *"
    );
    assert!(m(&format!("{}?", &value[..value.len() - 1])), "{tag}: ?");
    assert!(
        !m(&format!("{}??", &value[..value.len() - 1])),
        "{tag}: ?? too long"
    );
    assert!(!m("NOPE*"), "{tag}: wildcard mismatch");
    assert!(m(&format!("NOPE\\{value}")), "{tag}: list, second element");
    assert!(m(&format!("{value}\\NOPE")), "{tag}: list, first element");
    assert!(!m("NOPE\\NADA"), "{tag}: list mismatch");
    assert!(
        m(&format!("NOPE\\{}*", &value[..2])),
        "{tag}: list with a wildcard"
    );
}

#[test]
fn patient_id() {
    text_key_rules(t::PATIENT_ID, VR::LO, "SUB001", false);
}

#[test]
fn accession_number() {
    text_key_rules(t::ACCESSION_NUMBER, VR::SH, "ACC001", false);
}

#[test]
fn study_description() {
    text_key_rules(t::STUDY_DESCRIPTION, VR::LO, "Brain MRI", false);
}

#[test]
fn requested_procedure_id() {
    text_key_rules(t::REQUESTED_PROCEDURE_ID, VR::SH, "RP001", false);
}

#[test]
fn requested_procedure_description() {
    text_key_rules(
        t::REQUESTED_PROCEDURE_DESCRIPTION,
        VR::LO,
        "MRI head",
        false,
    );
}

#[test]
fn patient_sex() {
    let e = entry();
    assert!(top(t::PATIENT_SEX, VR::CS, "M", &e));
    assert!(!top(t::PATIENT_SEX, VR::CS, "F", &e));
    assert!(top(t::PATIENT_SEX, VR::CS, "F\\M", &e));
    assert!(top(t::PATIENT_SEX, VR::CS, "?", &e));
}

#[test]
fn scheduled_station_ae_title() {
    text_key_rules(t::SCHEDULED_STATION_AE_TITLE, VR::AE, "MRI_3T", true);
    let e = entry();
    assert!(step(
        t::SCHEDULED_STATION_AE_TITLE,
        VR::AE,
        "CT_1\\MRI_3T",
        &e
    ));
    assert!(!step(
        t::SCHEDULED_STATION_AE_TITLE,
        VR::AE,
        "CT_1\\MRI_1T5",
        &e
    ));
}

#[test]
fn modality() {
    let e = entry();
    assert!(step(t::MODALITY, VR::CS, "MR", &e));
    assert!(!step(t::MODALITY, VR::CS, "CT", &e));
    assert!(!step(t::MODALITY, VR::CS, "mr", &e));
    assert!(step(t::MODALITY, VR::CS, "CT\\MR", &e));
    assert!(step(t::MODALITY, VR::CS, "CT\\MR\\PT", &e));
    assert!(!step(t::MODALITY, VR::CS, "CT\\PT", &e));
    assert!(step(t::MODALITY, VR::CS, "M?", &e));
    assert!(step(t::MODALITY, VR::CS, "*R", &e));
    assert!(!step(t::MODALITY, VR::CS, "M??", &e));
}

#[test]
fn sps_description() {
    text_key_rules(
        t::SCHEDULED_PROCEDURE_STEP_DESCRIPTION,
        VR::LO,
        "Protocol A",
        true,
    );
}

#[test]
fn scheduled_station_name() {
    text_key_rules(t::SCHEDULED_STATION_NAME, VR::SH, "PRISMA", true);
}

#[test]
fn sps_location() {
    text_key_rules(t::SCHEDULED_PROCEDURE_STEP_LOCATION, VR::SH, "Room 1", true);
}

#[test]
fn sps_id() {
    text_key_rules(t::SCHEDULED_PROCEDURE_STEP_ID, VR::SH, "SPS001", true);
}

#[test]
fn question_mark_is_one_unicode_character() {
    let mut e = entry();
    e.study_description = Some("Hébert study".into());
    assert!(top(t::STUDY_DESCRIPTION, VR::LO, "H?bert study", &e));
    assert!(!top(t::STUDY_DESCRIPTION, VR::LO, "H??bert study", &e));
    assert!(step(
        t::SCHEDULED_PERFORMING_PHYSICIAN_NAME,
        VR::PN,
        "H?bert^Anne",
        &e
    ));
    assert!(top(t::PATIENT_NAME, VR::PN, "D?E", &e));
}

// ---------------------------------------------------------------------------------------
// Person names
// ---------------------------------------------------------------------------------------

/// The PN rules, on one PN key.
fn pn_key_rules(tag: Tag, in_step: bool, stored: &str) {
    let mut e = entry();
    match tag {
        t::PATIENT_NAME => e.patient_name = Some(stored.into()),
        t::REFERRING_PHYSICIAN_NAME => e.referring_physician_name = Some(stored.into()),
        _ => e.performing_physician_name = Some(stored.into()),
    }
    let m = |v: &str| {
        if in_step {
            step(tag, VR::PN, v, &e)
        } else {
            top(tag, VR::PN, v, &e)
        }
    };
    // stored is `Family^Given` with a non-ASCII given name: `Müller^Zoë`-like.
    let (family, given) = stored.split_once('^').unwrap();
    assert!(m(stored), "{tag}: exact");
    assert!(m(&stored.to_uppercase()), "{tag}: upper case");
    assert!(m(&stored.to_lowercase()), "{tag}: lower case");
    assert!(
        m(&format!("{stored}^^^")),
        "{tag}: trailing empty components"
    );
    assert!(m(family), "{tag}: family name alone");
    assert!(
        m(&family.to_lowercase()),
        "{tag}: family name alone, lower case"
    );
    assert!(!m(given), "{tag}: the given name is not the family name");
    let chars = |s: &str| s.chars().collect::<Vec<char>>();
    let (fam, giv) = (chars(family), chars(given));
    let part = |c: &[char]| c.iter().collect::<String>();
    assert!(!m(&part(&fam[..fam.len() - 1])), "{tag}: family prefix");
    assert!(m(&format!("{family}^{}*", giv[0])), "{tag}: DOE^J*");
    assert!(
        m(&format!("{family}^{}?", part(&giv[..giv.len() - 1]))),
        "{tag}: DOE^JOH?"
    );
    assert!(m(&format!("^{given}")), "{tag}: given name only");
    assert!(
        m(&format!("{}*", part(&fam[..2]))),
        "{tag}: family prefix wildcard"
    );
    assert!(
        m(&format!("*{}", giv[giv.len() - 1])),
        "{tag}: whole-name wildcard"
    );
    assert!(!m(&format!("{family}^X*")), "{tag}: given mismatch");
    assert!(!m("NOBODY"), "{tag}: mismatch");
    assert!(m(&format!("NOBODY\\{family}")), "{tag}: list");
}

#[test]
fn patient_name() {
    pn_key_rules(t::PATIENT_NAME, false, "Doe^John");
    pn_key_rules(t::PATIENT_NAME, false, "Müller^Zoë");
}

#[test]
fn referring_physician_name() {
    pn_key_rules(t::REFERRING_PHYSICIAN_NAME, false, "Who^Gregory");
}

#[test]
fn scheduled_performing_physician_name() {
    pn_key_rules(t::SCHEDULED_PERFORMING_PHYSICIAN_NAME, true, "Hébert^Anne");
    let e = entry();
    // Unicode case folding: É / é.
    assert!(step(
        t::SCHEDULED_PERFORMING_PHYSICIAN_NAME,
        VR::PN,
        "HÉBERT",
        &e
    ));
    assert!(step(
        t::SCHEDULED_PERFORMING_PHYSICIAN_NAME,
        VR::PN,
        "H?BERT^ANNE",
        &e
    ));
}

#[test]
fn pn_query_of_carets_only_is_universal() {
    assert!(top(t::PATIENT_NAME, VR::PN, "^^^^", &bare()));
    assert!(top(t::PATIENT_NAME, VR::PN, "^", &entry()));
}

// ---------------------------------------------------------------------------------------
// UIDs, numbers, dates
// ---------------------------------------------------------------------------------------

#[test]
fn study_instance_uid_list() {
    let e = entry();
    let uid = e.study_instance_uid.clone();
    assert!(top(t::STUDY_INSTANCE_UID, VR::UI, &uid, &e));
    assert!(top(
        t::STUDY_INSTANCE_UID,
        VR::UI,
        &format!("1.2.3\\{uid}"),
        &e
    ));
    assert!(top(
        t::STUDY_INSTANCE_UID,
        VR::UI,
        &format!("{uid}\\1.2.3\\1.2.4"),
        &e
    ));
    assert!(!top(t::STUDY_INSTANCE_UID, VR::UI, "1.2.3\\1.2.4", &e));
    assert!(!top(t::STUDY_INSTANCE_UID, VR::UI, &format!("{uid}.1"), &e));
    let (off, _) = parse_err(&q(&[(t::STUDY_INSTANCE_UID, VR::UI, "1.2.*")], None));
    assert_eq!(off, vec![t::STUDY_INSTANCE_UID]);
}

#[test]
fn patient_weight() {
    let e = entry();
    assert!(top(t::PATIENT_WEIGHT, VR::DS, "72.5", &e));
    assert!(top(t::PATIENT_WEIGHT, VR::DS, "72.50", &e));
    assert!(top(t::PATIENT_WEIGHT, VR::DS, "60\\72.5", &e));
    assert!(!top(t::PATIENT_WEIGHT, VR::DS, "72", &e));
    let (off, _) = parse_err(&q(&[(t::PATIENT_WEIGHT, VR::DS, "7*")], None));
    assert_eq!(off, vec![t::PATIENT_WEIGHT]);
}

#[test]
fn patient_birth_date() {
    let e = entry(); // 1980-05-17
    let m = |v: &str| top(t::PATIENT_BIRTH_DATE, VR::DA, v, &e);
    assert!(m("19800517"));
    assert!(m("1980.05.17"));
    assert!(!m("19800518"));
    assert!(m("19800101-19801231"));
    assert!(m("19800517-19800517"));
    assert!(!m("19810101-19811231"));
    assert!(m("-19800517"));
    assert!(!m("-19800516"));
    assert!(m("19800517-"));
    assert!(!m("19800518-"));
    assert!(!m("19801231-19800101"), "reversed range matches nothing");
    for bad in [
        "1980*",
        "198005",
        "19800532",
        "-",
        "1980-05-17",
        "19800517\\19800518",
    ] {
        let (off, _) = parse_err(&q(&[(t::PATIENT_BIRTH_DATE, VR::DA, bad)], None));
        assert_eq!(off, vec![t::PATIENT_BIRTH_DATE], "{bad}");
    }
}

// ---------------------------------------------------------------------------------------
// SPS start: date, time, combined
// ---------------------------------------------------------------------------------------

fn starting(start: DateTime) -> WorklistEntry {
    let mut e = entry();
    e.start = start;
    e.end = None;
    e
}

/// Whether a start date / time query matches a step starting at `start`.
fn when(d: &str, tm: &str, start: DateTime) -> bool {
    let mut keys = Vec::new();
    if d != "-" {
        keys.push((t::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, d));
    }
    if tm != "-" {
        keys.push((t::SCHEDULED_PROCEDURE_STEP_START_TIME, VR::TM, tm));
    }
    parse(&[], Some(&keys)).matches(&starting(start))
}

#[test]
fn start_date_alone_is_whole_days() {
    assert!(when("20261126", "", at(2026, 11, 26, 0, 0)));
    assert!(when("20261126", "", at(2026, 11, 26, 23, 59)));
    assert!(!when("20261126", "", at(2026, 11, 27, 0, 0)));
    assert!(!when("20261126", "", at(2026, 11, 25, 23, 59)));
    assert!(when("20261125-20261126", "-", at(2026, 11, 26, 23, 59)));
    assert!(when("20261126-", "*", at(2030, 1, 1, 0, 0)));
    assert!(!when("20261126-", "", at(2026, 11, 25, 23, 59)));
    assert!(when("-20261126", "", at(2000, 1, 1, 0, 0)));
    assert!(!when("-20261126", "", at(2026, 11, 27, 0, 0)));
}

#[test]
fn start_time_alone_is_any_date() {
    assert!(when("", "0800-1200", at(2026, 1, 1, 8, 0)));
    assert!(when("-", "0800-1200", at(2027, 6, 30, 12, 0)));
    assert!(!when("", "0800-1200", at(2026, 11, 26, 12, 1)));
    assert!(!when("", "0800-1200", at(2026, 11, 26, 7, 59)));
    assert!(when("", "-1159", at(2026, 11, 26, 11, 59)));
    assert!(when("", "1000-", at(2026, 11, 26, 23, 59)));
    assert!(when("", "0930", at(2026, 11, 26, 9, 30)));
    assert!(!when("", "0930", at(2026, 11, 26, 9, 31)));
    // Reversed time range alone wraps around midnight.
    assert!(when("", "2200-0200", at(2026, 11, 26, 23, 0)));
    assert!(when("", "2200-0200", at(2026, 11, 27, 1, 30)));
    assert!(!when("", "2200-0200", at(2026, 11, 26, 12, 0)));
}

#[test]
fn combined_date_time_range() {
    // The reference example: 26 Nov 08:00 to 27 Nov 12:00.
    let (d, tm) = ("20261126-20261127", "080000-120000");
    assert!(when(d, tm, at(2026, 11, 26, 8, 0)));
    assert!(
        when(d, tm, at(2026, 11, 26, 20, 0)),
        "evening of the first day is inside the combined range"
    );
    assert!(when(d, tm, at(2026, 11, 27, 3, 0)));
    assert!(when(d, tm, at(2026, 11, 27, 12, 0)));
    assert!(!when(d, tm, at(2026, 11, 26, 7, 59)));
    assert!(!when(d, tm, at(2026, 11, 27, 12, 1)));
    assert!(!when(d, tm, at(2026, 11, 28, 9, 0)));
}

#[test]
fn combined_range_across_midnight() {
    let (d, tm) = ("20261126-20261127", "2200-0200");
    assert!(when(d, tm, at(2026, 11, 26, 22, 0)));
    assert!(when(d, tm, at(2026, 11, 26, 23, 30)));
    assert!(when(d, tm, at(2026, 11, 27, 0, 0)));
    assert!(when(d, tm, at(2026, 11, 27, 1, 45)));
    assert!(when(d, tm, at(2026, 11, 27, 2, 0)), "0200 runs to 02:00:59");
    assert!(!when(d, tm, at(2026, 11, 27, 2, 1)));
    assert!(!when(d, tm, at(2026, 11, 26, 21, 59)));
    // One date with a reversed time range is empty.
    assert!(!when("20261126", "2200-0200", at(2026, 11, 26, 23, 0)));
    assert!(!when("20261126", "2200-0200", at(2026, 11, 26, 1, 0)));
}

#[test]
fn single_date_with_time_range() {
    assert!(when("20261126", "0800-1200", at(2026, 11, 26, 9, 30)));
    assert!(!when("20261126", "0800-1200", at(2026, 11, 26, 13, 0)));
    assert!(!when("20261126", "0800-1200", at(2026, 11, 27, 9, 30)));
    assert!(when("20261126", "-1000", at(2026, 11, 26, 0, 0)));
    assert!(!when("20261126", "-1000", at(2026, 11, 26, 11, 0)));
    assert!(when("20261126", "1000-", at(2026, 11, 26, 23, 59)));
    assert!(!when("20261126", "1000-", at(2026, 11, 27, 0, 0)));
}

#[test]
fn date_range_with_single_time() {
    // From the first date at 10:00:00 to the last date at 10:00:59.
    assert!(when("20261126-20261127", "1000", at(2026, 11, 26, 10, 0)));
    assert!(when("20261126-20261127", "1000", at(2026, 11, 26, 18, 0)));
    assert!(when("20261126-20261127", "1000", at(2026, 11, 27, 10, 0)));
    assert!(!when("20261126-20261127", "1000", at(2026, 11, 26, 9, 59)));
    assert!(!when("20261126-20261127", "1000", at(2026, 11, 27, 10, 1)));
    // One date, one time: that minute.
    assert!(when("20261126", "0930", at(2026, 11, 26, 9, 30)));
    assert!(!when("20261126", "0930", at(2026, 11, 26, 9, 31)));
}

#[test]
fn open_ended_combined_ranges() {
    // From 26 Nov 08:00 on.
    assert!(when("20261126-", "0800-", at(2026, 11, 26, 8, 0)));
    assert!(when("20261126-", "0800-", at(2031, 1, 1, 0, 0)));
    assert!(!when("20261126-", "0800-", at(2026, 11, 26, 7, 59)));
    // Up to 27 Nov 12:00.
    assert!(when("-20261127", "-1200", at(2020, 1, 1, 23, 0)));
    assert!(when("-20261127", "-1200", at(2026, 11, 27, 12, 0)));
    assert!(!when("-20261127", "-1200", at(2026, 11, 27, 12, 1)));
    // An open date end leaves the time's end irrelevant there.
    assert!(when("20261126-", "0800-1200", at(2026, 12, 1, 20, 0)));
    assert!(!when("20261126-", "0800-1200", at(2026, 11, 26, 7, 0)));
    assert!(when("-20261127", "0800-1200", at(2026, 11, 20, 6, 0)));
    assert!(!when("-20261127", "0800-1200", at(2026, 11, 27, 13, 0)));
}

#[test]
fn end_date_and_time_combine_too() {
    let e = entry(); // ends 2026-11-26 10:30
    let m = |d: &str, tm: &str| {
        parse(
            &[],
            Some(&[
                (t::SCHEDULED_PROCEDURE_STEP_END_DATE, VR::DA, d),
                (t::SCHEDULED_PROCEDURE_STEP_END_TIME, VR::TM, tm),
            ]),
        )
        .matches(&e)
    };
    assert!(m("20261126", "1000-1100"));
    assert!(!m("20261126", "1100-1200"));
    assert!(m("20261125-20261126", "2200-1030"));
    assert!(!m("20261125-20261126", "2200-1029"));
    assert!(m("", "1030"));
}

#[test]
fn bad_dates_and_times_are_errors_naming_the_key() {
    for (tag, vr, v) in [
        (t::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, "2026112"),
        (t::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, "20261126-x"),
        (t::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, "2026*"),
        (
            t::SCHEDULED_PROCEDURE_STEP_START_DATE,
            VR::DA,
            "20261126\\20261127",
        ),
        (t::SCHEDULED_PROCEDURE_STEP_START_TIME, VR::TM, "25"),
        (t::SCHEDULED_PROCEDURE_STEP_START_TIME, VR::TM, "0800-12000"),
        (t::SCHEDULED_PROCEDURE_STEP_START_TIME, VR::TM, "08*"),
        (t::SCHEDULED_PROCEDURE_STEP_END_TIME, VR::TM, "-"),
    ] {
        let (off, reason) = parse_err(&q(&[], Some(&[(tag, vr, v)])));
        assert_eq!(off, vec![SPS, tag], "{v}: {reason}");
    }
}

// ---------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------

fn with_status(s: StepStatus) -> WorklistEntry {
    let mut e = entry();
    e.status = s;
    e
}

#[test]
fn status_default_offers_scheduled_and_started_only() {
    let status = t::SCHEDULED_PROCEDURE_STEP_STATUS;
    let queries = [
        parse(&[], None),
        parse(&[(t::PATIENT_ID, VR::LO, "")], None),
        parse(&[], Some(&[])),
        parse(&[], Some(&[(status, VR::CS, "")])),
        parse(&[], Some(&[(status, VR::CS, "*")])),
        parse(&[], Some(&[(t::MODALITY, VR::CS, "MR")])),
    ];
    for (i, query) in queries.iter().enumerate() {
        assert!(
            query.matches(&with_status(StepStatus::Scheduled)),
            "query {i}"
        );
        assert!(
            query.matches(&with_status(StepStatus::Started)),
            "query {i}"
        );
        assert!(
            !query.matches(&with_status(StepStatus::Completed)),
            "query {i}"
        );
        assert!(
            !query.matches(&with_status(StepStatus::Discontinued)),
            "query {i}"
        );
    }
}

#[test]
fn status_explicit_values_filter() {
    let m = |v: &str, s: StepStatus| {
        step(
            t::SCHEDULED_PROCEDURE_STEP_STATUS,
            VR::CS,
            v,
            &with_status(s),
        )
    };
    assert!(m("COMPLETED", StepStatus::Completed));
    assert!(!m("COMPLETED", StepStatus::Scheduled));
    assert!(m("DISCONTINUED", StepStatus::Discontinued));
    assert!(!m("SCHEDULED", StepStatus::Started));
    assert!(m("SCHEDULED\\STARTED", StepStatus::Started));
    assert!(!m("SCHEDULED\\STARTED", StepStatus::Completed));
    assert!(m("SCHEDULED\\COMPLETED", StepStatus::Completed));
    assert!(m("S*", StepStatus::Started));
    assert!(!m("S*", StepStatus::Discontinued));
    assert!(!m("ARRIVED", StepStatus::Scheduled));
}

// ---------------------------------------------------------------------------------------
// Sequence, errors, unsupported keys
// ---------------------------------------------------------------------------------------

#[test]
fn two_sps_items_are_an_error_on_the_sequence() {
    let mut obj = q(&[(t::PATIENT_NAME, VR::PN, "")], None);
    obj.put(DataElement::new(
        SPS,
        VR::SQ,
        Value::Sequence(DataSetSequence::from(vec![
            item(&[(t::MODALITY, VR::CS, "MR")]),
            item(&[(t::MODALITY, VR::CS, "CT")]),
        ])),
    ));
    let (off, reason) = parse_err(&obj);
    assert_eq!(off, vec![SPS]);
    assert!(reason.contains("2 items"), "{reason}");
}

#[test]
fn a_key_sent_with_another_text_vr_is_read_with_its_own() {
    let e = entry();
    let start_date = t::SCHEDULED_PROCEDURE_STEP_START_DATE;
    let start_time = t::SCHEDULED_PROCEDURE_STEP_START_TIME;
    // PN as LO, AE as SH, CS as LO, UI as LO: the value is read as the attribute's VR.
    assert!(top(t::PATIENT_NAME, VR::LO, "doe", &e));
    assert!(!top(t::PATIENT_NAME, VR::LO, "SMITH", &e));
    assert!(step(t::SCHEDULED_STATION_AE_TITLE, VR::SH, "MRI_3T", &e));
    assert!(!step(t::SCHEDULED_STATION_AE_TITLE, VR::SH, "MRI_7T", &e));
    assert!(step(t::MODALITY, VR::LO, "MR\\CT", &e));
    assert!(!step(t::MODALITY, VR::LO, "CT", &e));
    let uid = "1.2.826.0.1.3680043.10.1.1";
    assert!(top(t::STUDY_INSTANCE_UID, VR::LO, uid, &e));
    // DA as DT and TM as DT: still date and time ranges.
    assert!(step(start_date, VR::DT, "20261126", &e));
    assert!(step(start_date, VR::DT, "20261120-20261130", &e));
    assert!(!step(start_date, VR::DT, "20261127", &e));
    assert!(step(start_time, VR::DT, "0900-1000", &e));
    assert!(!step(start_time, VR::DT, "1000-1100", &e));
    // A malformed value is still refused, naming the key.
    let (off, _) = parse_err(&q(&[], Some(&[(start_date, VR::DT, "2026112612")])));
    assert_eq!(off, vec![SPS, start_date]);
}

#[test]
fn a_number_sent_in_binary_is_read_as_a_decimal_string() {
    let weight = |value: PrimitiveValue, vr: VR| {
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(t::PATIENT_WEIGHT, vr, value));
        MwlQuery::parse(&obj).unwrap()
    };
    let e = entry(); // 72.5 kg
    assert!(weight(PrimitiveValue::from(72.5f64), VR::FD).matches(&e));
    assert!(!weight(PrimitiveValue::from(80.0f64), VR::FD).matches(&e));
    assert!(weight(PrimitiveValue::from(72.5f32), VR::FL).matches(&e));
    assert!(!weight(PrimitiveValue::from(72u16), VR::US).matches(&e));
    let mut heavy = entry();
    heavy.patient_weight_kg = Some(90.0);
    assert!(weight(PrimitiveValue::from(90u16), VR::US).matches(&heavy));
    assert!(weight(PrimitiveValue::from(90u32), VR::UL).matches(&heavy));
    // Two values are a list, like `72.5\\90`.
    let list = weight(
        PrimitiveValue::F64([1.0, 90.0].into_iter().collect()),
        VR::FD,
    );
    assert!(list.matches(&heavy));
    assert!(!list.matches(&e));
}

#[test]
fn a_value_that_cannot_be_read_as_its_vr_is_an_error_naming_the_key() {
    let with = |tag: Tag, vr: VR, value: PrimitiveValue, in_step: bool| {
        let mut obj = InMemDicomObject::new_empty();
        let elem = DataElement::new(tag, vr, value);
        if in_step {
            obj.put(DataElement::new(
                SPS,
                VR::SQ,
                Value::Sequence(DataSetSequence::from(vec![
                    InMemDicomObject::from_element_iter([elem]),
                ])),
            ));
        } else {
            obj.put(elem);
        }
        parse_err(&obj)
    };
    // A name sent as a binary number.
    let (off, reason) = with(t::PATIENT_NAME, VR::US, PrimitiveValue::from(7u16), false);
    assert_eq!(off, vec![t::PATIENT_NAME]);
    assert!(reason.contains("(0010,0010)"), "{reason}");
    assert!(reason.contains("US"), "{reason}");
    // A date sent as FD: a number is no date.
    let start = t::SCHEDULED_PROCEDURE_STEP_START_DATE;
    let (off, reason) = with(start, VR::FD, PrimitiveValue::from(20261126f64), true);
    assert_eq!(off, vec![SPS, start]);
    assert!(reason.contains("(0040,0002)"), "{reason}");
    // A weight sent as OB: bytes are no number.
    let bytes = PrimitiveValue::U8([1u8, 2].into_iter().collect());
    let (off, _) = with(t::PATIENT_WEIGHT, VR::OB, bytes, false);
    assert_eq!(off, vec![t::PATIENT_WEIGHT]);
    // The sequence itself as a string.
    let (off, _) = parse_err(&q(&[(SPS, VR::LO, "MR")], None));
    assert_eq!(off, vec![SPS]);
}

#[test]
fn text_decoded_in_the_default_repertoire_for_its_sent_vr_is_decoded_again() {
    // A UTF-8 name sent as CS: dicom-rs reads CS in the default repertoire, one character
    // per byte, so `é` (C3 A9) arrives as `Ã©`.
    let query = parse(
        &[(t::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192")],
        Some(&[(
            t::SCHEDULED_PERFORMING_PHYSICIAN_NAME,
            VR::CS,
            "H\u{c3}\u{a9}bert^Anne",
        )]),
    );
    assert!(query.matches(&entry()));
}

/// One item in Implicit VR Little Endian holding `(tag, text)` elements: what a sequence
/// sent as UN carries.
fn implicit_item(elements: &[(Tag, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (tag, text) in elements {
        let mut v = text.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(b' ');
        }
        body.extend_from_slice(&tag.group().to_le_bytes());
        body.extend_from_slice(&tag.element().to_le_bytes());
        body.extend_from_slice(&(v.len() as u32).to_le_bytes());
        body.extend_from_slice(&v);
    }
    let mut item = vec![0xFE, 0xFF, 0x00, 0xE0];
    item.extend_from_slice(&(body.len() as u32).to_le_bytes());
    item.extend_from_slice(&body);
    item
}

fn un(tag: Tag, bytes: Vec<u8>) -> InMemElement {
    DataElement::new(tag, VR::UN, PrimitiveValue::U8(bytes.into_iter().collect()))
}

#[test]
fn a_sequence_sent_as_un_is_read_as_its_items() {
    let with_step = |bytes: Vec<u8>| {
        let mut obj = item(&[(t::PATIENT_ID, VR::LO, "")]);
        obj.put(un(SPS, bytes));
        MwlQuery::parse(&obj)
    };
    let mr = with_step(implicit_item(&[(t::MODALITY, "MR")])).unwrap();
    assert!(mr.matches(&entry()));
    let ct = with_step(implicit_item(&[(t::MODALITY, "CT")])).unwrap();
    assert!(!ct.matches(&entry()));
    let rsp = mr.response(&entry(), ResponseCharset::Utf8);
    let step = rsp.get(SPS).and_then(|e| e.items()).unwrap();
    assert_eq!(text(&step[0], t::MODALITY), "MR");
    // Bytes that are no items: A900 naming the sequence.
    let err = with_step(b"garbage!".to_vec()).unwrap_err();
    assert_eq!(err.offending(), [SPS]);
    // A sequence we do not store, as UN with an empty item: no value, so no FF01.
    let mut obj = item(&[(t::PATIENT_ID, VR::LO, "")]);
    obj.put(un(t::REFERENCED_STUDY_SEQUENCE, implicit_item(&[])));
    let query = MwlQuery::parse(&obj).unwrap();
    assert!(
        !query.has_unsupported_keys(),
        "{:?}",
        query.unsupported_keys()
    );
    // ... and with a value in its item: FF01.
    let mut obj = item(&[(t::PATIENT_ID, VR::LO, "")]);
    obj.put(un(
        t::REFERENCED_STUDY_SEQUENCE,
        implicit_item(&[(t::REFERENCED_SOP_INSTANCE_UID, "1.2.3")]),
    ));
    let query = MwlQuery::parse(&obj).unwrap();
    assert_eq!(query.unsupported_keys(), [t::REFERENCED_STUDY_SEQUENCE]);
}

#[test]
fn an_empty_key_reads_as_empty_whatever_its_vr() {
    let query = parse(
        &[(t::PATIENT_NAME, VR::US, ""), (t::PATIENT_ID, VR::OB, "")],
        Some(&[(t::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::FD, "")]),
    );
    assert!(query.matches(&entry()));
    assert!(query.matches(&bare()));
    let rsp = query.response(&entry(), ResponseCharset::Utf8);
    assert_eq!(rsp.get(t::PATIENT_NAME).map(|e| e.vr()), Some(VR::PN));
}

#[test]
fn a_non_standard_vr_on_a_key_we_do_not_store_is_returned_with_the_dictionary_vr() {
    let query = parse(
        &[
            (OTHER_PATIENT_IDS, VR::SH, ""),
            (t::PATIENT_AGE, VR::LO, ""),
        ],
        None,
    );
    assert!(!query.has_unsupported_keys());
    let rsp = query.response(&entry(), ResponseCharset::Utf8);
    assert_eq!(rsp.get(OTHER_PATIENT_IDS).map(|e| e.vr()), Some(VR::LO));
    assert_eq!(rsp.get(t::PATIENT_AGE).map(|e| e.vr()), Some(VR::AS));
}

#[test]
fn group_lengths_are_no_keys_at_any_level() {
    let length =
        |group: u16| DataElement::new(Tag(group, 0x0000), VR::UL, PrimitiveValue::from(24u32));
    let mut step_item = item(&[(t::MODALITY, VR::CS, "MR")]);
    step_item.put(length(0x0040));
    step_item.put(length(0x0008));
    let mut study_item = item(&[(t::REFERENCED_SOP_INSTANCE_UID, VR::UI, "")]);
    study_item.put(length(0x0008));
    let mut obj = item(&[(t::PATIENT_ID, VR::LO, "")]);
    obj.put(length(0x0010));
    obj.put(length(0x0008));
    obj.put(DataElement::new(
        SPS,
        VR::SQ,
        Value::Sequence(DataSetSequence::from(vec![step_item])),
    ));
    obj.put(DataElement::new(
        t::REFERENCED_STUDY_SEQUENCE,
        VR::SQ,
        Value::Sequence(DataSetSequence::from(vec![study_item])),
    ));
    let query = MwlQuery::parse(&obj).unwrap();
    assert!(
        !query.has_unsupported_keys(),
        "{:?}",
        query.unsupported_keys()
    );
    assert!(query.matches(&entry()));
    let rsp = query.response(&entry(), ResponseCharset::Utf8);
    assert!(rsp.get(Tag(0x0010, 0x0000)).is_none());
}

#[test]
fn responses_prefer_the_query_character_set() {
    let with_scs = |scs: &str| {
        parse(
            &[
                (t::SPECIFIC_CHARACTER_SET, VR::CS, scs),
                (t::PATIENT_NAME, VR::PN, ""),
            ],
            None,
        )
    };
    let no_scs = parse(&[(t::PATIENT_NAME, VR::PN, "")], None);
    // No character set in the query: the configured one.
    assert_eq!(
        no_scs.response_charset(ResponseCharset::Latin1),
        ResponseCharset::Latin1
    );
    assert_eq!(
        with_scs("").response_charset(ResponseCharset::Utf8),
        ResponseCharset::Utf8
    );
    // A set we write: that one, whatever is configured.
    for (scs, cs) in [
        ("ISO_IR 100", ResponseCharset::Latin1),
        ("ISO_IR 6", ResponseCharset::Ascii),
        ("ISO_IR 101", ResponseCharset::Latin2),
        ("ISO_IR 148", ResponseCharset::Latin5),
        ("ISO 2022 IR 100", ResponseCharset::Latin1),
        ("ISO 2022 IR 6\\ISO 2022 IR 100", ResponseCharset::Latin1),
        ("ISO_IR 192", ResponseCharset::Utf8),
    ] {
        let query = with_scs(scs);
        assert_eq!(query.response_charset(ResponseCharset::Utf8), cs, "{scs}");
        assert_eq!(query.response_charset(ResponseCharset::Ascii), cs, "{scs}");
        assert!(!query.has_unsupported_keys(), "{scs}");
    }
    // A set we cannot write: UTF-8, and no FF01 for it.
    let japanese = with_scs("\\ISO 2022 IR 87");
    assert_eq!(
        japanese.response_charset(ResponseCharset::Latin1),
        ResponseCharset::Utf8
    );
    assert!(!japanese.has_unsupported_keys());
    assert!(japanese.matches(&entry()));

    // Each response falls back on its own: a Latin-1 query, one name that fits and one
    // that does not.
    let latin1 = with_scs("ISO_IR 100");
    let preferred = latin1.response_charset(ResponseCharset::Utf8);
    let mut belanger = entry();
    belanger.patient_name = Some("Bélanger^Sophie".into());
    let mut polish = entry();
    polish.patient_name = Some("Łukasz^Anna".into());
    let mut out = Vec::new();
    assert_eq!(
        latin1.encode_response(&belanger, preferred, true, &mut out),
        ResponseCharset::Latin1
    );
    assert!(out.windows(10).any(|w| w == b"ISO_IR 100"));
    assert!(out.windows(8).any(|w| w == b"B\xe9langer"));
    assert_eq!(
        latin1.encode_response(&polish, preferred, true, &mut out),
        ResponseCharset::Utf8
    );
    assert!(out.windows(10).any(|w| w == b"ISO_IR 192"));
    assert!(out.windows(7).any(|w| w == "Łukasz".as_bytes()));
}

#[test]
fn text_of_a_query_in_a_set_dicom_rs_lacks_is_read_in_that_set() {
    // ISO_IR 148 (Turkish): dicom-rs does not know it and reads its bytes as ISO 8859-1,
    // so Ş (DE) arrives as Þ.
    let query = parse(
        &[
            (t::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 148"),
            (t::PATIENT_NAME, VR::PN, "\u{de}ahin"),
        ],
        None,
    );
    let mut e = entry();
    e.patient_name = Some("Şahin^Ayşe".into());
    assert!(query.matches(&e));
    assert!(!query.has_unsupported_keys());
}

#[test]
fn command_and_file_meta_elements_are_errors() {
    for tag in [
        t::COMMAND_FIELD,
        t::TRANSFER_SYNTAX_UID,
        Tag(0x0000, 0x0000),
    ] {
        let (off, _) = parse_err(&q(&[(tag, VR::UI, "1.2")], None));
        assert_eq!(off, vec![tag]);
    }
    let (off, _) = parse_err(&q(&[], Some(&[(t::TRANSFER_SYNTAX_UID, VR::UI, "1.2")])));
    assert_eq!(off, vec![SPS, t::TRANSFER_SYNTAX_UID]);
}

#[test]
fn a_key_sent_as_un_is_read_as_text() {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        t::PATIENT_ID,
        VR::UN,
        PrimitiveValue::U8(b"SUB001".iter().copied().collect()),
    ));
    let query = MwlQuery::parse(&obj).unwrap();
    assert!(query.matches(&entry()));
    assert!(!query.matches(&bare()));
}

#[test]
fn return_only_keys_empty_are_supported_and_returned_empty() {
    let query = parse(
        &[
            (OTHER_PATIENT_IDS, VR::LO, ""),
            (t::PATIENT_AGE, VR::AS, ""),
            (t::MEDICAL_ALERTS, VR::LO, ""),
            (t::ALLERGIES, VR::LO, ""),
            (t::PREGNANCY_STATUS, VR::US, ""),
            (t::ADMISSION_ID, VR::LO, "*"),
            (t::CURRENT_PATIENT_LOCATION, VR::LO, ""),
            (t::REQUESTED_PROCEDURE_PRIORITY, VR::SH, ""),
            (t::REFERENCED_STUDY_SEQUENCE, VR::SQ, ""),
            (t::REFERENCED_PATIENT_SEQUENCE, VR::SQ, ""),
            (t::REQUESTING_PHYSICIAN, VR::PN, ""),
            (t::ISSUER_OF_PATIENT_ID, VR::LO, ""),
            (t::PATIENT_COMMENTS, VR::LT, ""),
            (ETHNIC_GROUP, VR::SH, ""),
        ],
        Some(&[(t::SCHEDULED_PROTOCOL_CODE_SEQUENCE, VR::SQ, "")]),
    );
    assert!(
        !query.has_unsupported_keys(),
        "{:?}",
        query.unsupported_keys()
    );
    assert!(query.matches(&entry()));
    assert!(query.matches(&bare()));
    let rsp = query.response(&entry(), ResponseCharset::Utf8);
    for tag in [
        OTHER_PATIENT_IDS,
        t::PREGNANCY_STATUS,
        t::PATIENT_COMMENTS,
        ETHNIC_GROUP,
    ] {
        let el = rsp.get(tag).unwrap();
        assert!(
            el.value()
                .primitive()
                .is_some_and(|p| p.to_str().is_empty()),
            "{tag}"
        );
    }
    for tag in [t::REFERENCED_STUDY_SEQUENCE, t::REFERENCED_PATIENT_SEQUENCE] {
        assert_eq!(
            rsp.get(tag).unwrap().items().map(<[_]>::len),
            Some(0),
            "{tag}"
        );
    }
    let sps_item = &rsp.get(SPS).unwrap().items().unwrap()[0];
    assert_eq!(
        sps_item
            .get(t::SCHEDULED_PROTOCOL_CODE_SEQUENCE)
            .unwrap()
            .items()
            .map(<[_]>::len),
        Some(0)
    );
}

#[test]
fn values_on_keys_we_do_not_store_are_unsupported_and_ignored() {
    let mut code_item = InMemDicomObject::new_empty();
    code_item.put(elem(t::CODE_VALUE, VR::SH, "X123"));
    let mut obj = q(
        &[
            (t::PATIENT_ID, VR::LO, "SUB001"),
            (t::MEDICAL_ALERTS, VR::LO, "none"),
            (OTHER_PATIENT_IDS, VR::LO, "XYZ"),
        ],
        Some(&[
            (t::MODALITY, VR::CS, "MR"),
            (t::REQUESTED_PROCEDURE_PRIORITY, VR::SH, "HIGH"),
        ]),
    );
    obj.put(DataElement::new(
        t::REFERENCED_STUDY_SEQUENCE,
        VR::SQ,
        Value::Sequence(DataSetSequence::from(vec![code_item])),
    ));
    // A step key at the top level is not a step key.
    obj.put(elem(t::SCHEDULED_STATION_AE_TITLE, VR::AE, "CT_1"));
    let query = MwlQuery::parse(&obj).unwrap();
    assert!(query.has_unsupported_keys());
    let mut got = query.unsupported_keys().to_vec();
    got.sort();
    let mut want = vec![
        t::MEDICAL_ALERTS,
        OTHER_PATIENT_IDS,
        t::REFERENCED_STUDY_SEQUENCE,
        t::REQUESTED_PROCEDURE_PRIORITY,
        t::SCHEDULED_STATION_AE_TITLE,
    ];
    want.sort();
    assert_eq!(got, want);
    // Ignored for matching: the supported keys still decide.
    assert!(query.matches(&entry()));
    let mut other = entry();
    other.patient_id = "SUB009".into();
    assert!(!query.matches(&other));
    // Returned, empty.
    let rsp = query.response(&entry(), ResponseCharset::Utf8);
    assert_eq!(
        rsp.get(t::MEDICAL_ALERTS).unwrap().value().primitive(),
        Some(&PrimitiveValue::Empty)
    );
    assert_eq!(
        rsp.get(t::SCHEDULED_STATION_AE_TITLE)
            .unwrap()
            .value()
            .primitive(),
        Some(&PrimitiveValue::Empty)
    );
}

#[test]
fn private_keys_are_never_returned() {
    let query = parse(
        &[
            (Tag(0x0029, 0x0010), VR::LO, "SIEMENS CSA HEADER"),
            (Tag(0x0029, 0x1010), VR::OB, ""),
            (t::PATIENT_ID, VR::LO, ""),
        ],
        None,
    );
    // The creator only reserves the block: no key, so no FF01 for empty private keys.
    assert!(!query.has_unsupported_keys());
    let rsp = query.response(&entry(), ResponseCharset::Utf8);
    assert!(rsp.get(Tag(0x0029, 0x0010)).is_none());
    assert!(rsp.get(Tag(0x0029, 0x1010)).is_none());
    assert!(rsp.get(t::PATIENT_ID).is_some());
}

#[test]
fn private_creators_are_no_keys_a_private_key_with_a_value_is_unsupported() {
    let gems = (Tag(0x0009, 0x0010), VR::LO, "GEMS_IDEN_01");
    // GE's shape: the creator and an empty private key, at the top and in the step item.
    let query = parse(
        &[
            gems,
            (Tag(0x0009, 0x1001), VR::LO, ""),
            (t::PATIENT_ID, VR::LO, ""),
        ],
        Some(&[
            gems,
            (Tag(0x0009, 0x1001), VR::LO, ""),
            (t::MODALITY, VR::CS, ""),
        ]),
    );
    assert!(!query.has_unsupported_keys());
    assert!(!query.requested_keys().contains(&Tag(0x0009, 0x0010)));
    let rsp = query.response(&entry(), ResponseCharset::Utf8);
    let step = rsp.get(SPS).unwrap().items().unwrap()[0].clone();
    for obj in [&rsp, &step] {
        assert!(obj.get(Tag(0x0009, 0x0010)).is_none());
        assert!(obj.get(Tag(0x0009, 0x1001)).is_none());
    }
    assert!(step.get(t::MODALITY).is_some());
    // A value on a private key cannot be honoured: FF01, naming the key, not the creator.
    let query = parse(
        &[
            gems,
            (Tag(0x0009, 0x1001), VR::LO, "X"),
            (t::PATIENT_ID, VR::LO, ""),
        ],
        None,
    );
    assert_eq!(query.unsupported_keys(), &[Tag(0x0009, 0x1001)]);
}

#[test]
fn undecodable_query_character_set_is_unsupported() {
    let ok = parse(&[(t::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100")], None);
    assert!(!ok.has_unsupported_keys());
    let ok = parse(&[(t::SPECIFIC_CHARACTER_SET, VR::CS, "")], None);
    assert!(!ok.has_unsupported_keys());
    // Known terms, even of sets we do not write, are read (see
    // responses_prefer_the_query_character_set); unknown ones are not.
    for scs in ["ISO_IR 999", "\\ISO 2022 IR 87\\KLINGON"] {
        let query = parse(&[(t::SPECIFIC_CHARACTER_SET, VR::CS, scs)], None);
        assert_eq!(
            query.unsupported_keys(),
            &[t::SPECIFIC_CHARACTER_SET],
            "{scs}"
        );
    }
}

#[test]
fn requested_keys_lists_tags_in_order_with_step_keys_after_the_sequence() {
    let query = parse(
        &[
            (t::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"),
            (t::PATIENT_NAME, VR::PN, "DOE"),
            (t::ACCESSION_NUMBER, VR::SH, ""),
            (t::REQUESTED_PROCEDURE_ID, VR::SH, ""),
        ],
        Some(&[
            (t::MODALITY, VR::CS, "MR"),
            (t::SCHEDULED_STATION_AE_TITLE, VR::AE, ""),
        ]),
    );
    assert_eq!(
        query.requested_keys(),
        vec![
            t::ACCESSION_NUMBER,
            t::PATIENT_NAME,
            SPS,
            t::MODALITY,
            t::SCHEDULED_STATION_AE_TITLE,
            t::REQUESTED_PROCEDURE_ID,
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Decoding the query's own character set
// ---------------------------------------------------------------------------------------

#[test]
fn query_text_is_decoded_with_its_specific_character_set() {
    use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
    let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
    // Written in Latin-1 by dicom-rs (it follows the object's (0008,0005))...
    let obj = q(
        &[
            (t::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100"),
            (t::PATIENT_NAME, VR::PN, "HÉBERT"),
        ],
        None,
    );
    let mut bytes = Vec::new();
    obj.write_dataset_with_ts(&mut bytes, &ts).unwrap();
    assert!(bytes.windows(2).any(|w| w == [b'H', 0xC9]), "Latin-1 É");
    // ... and read back as Unicode, so it matches the stored name.
    let read = InMemDicomObject::read_dataset_with_ts(bytes.as_slice(), &ts).unwrap();
    let query = MwlQuery::parse(&read).unwrap();
    let mut e = entry();
    e.patient_name = Some("Hébert^Anne".into());
    assert!(query.matches(&e));
    assert!(!query.matches(&entry()));
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

fn tags_of(obj: &InMemDicomObject) -> Vec<Tag> {
    obj.tags().collect()
}

fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    obj.get(tag).unwrap().to_str().unwrap().into_owned()
}

#[test]
fn response_has_exactly_the_requested_keys_at_their_levels() {
    let query = parse(
        &[
            (t::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"),
            (t::PATIENT_NAME, VR::PN, ""),
            (t::PATIENT_ID, VR::LO, "SUB001"),
            (t::PATIENT_BIRTH_DATE, VR::DA, ""),
            (t::PATIENT_WEIGHT, VR::DS, ""),
            (t::ACCESSION_NUMBER, VR::SH, ""),
            (t::STUDY_INSTANCE_UID, VR::UI, ""),
            (t::MEDICAL_ALERTS, VR::LO, ""),
        ],
        Some(&[
            (t::SCHEDULED_STATION_AE_TITLE, VR::AE, ""),
            (t::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, "20261126"),
            (t::SCHEDULED_PROCEDURE_STEP_START_TIME, VR::TM, ""),
            (t::MODALITY, VR::CS, "MR"),
            (t::SCHEDULED_PROCEDURE_STEP_STATUS, VR::CS, ""),
        ]),
    );
    let e = entry();
    assert!(query.matches(&e));
    let rsp = query.response(&e, ResponseCharset::Utf8);
    assert_eq!(
        tags_of(&rsp),
        vec![
            t::SPECIFIC_CHARACTER_SET,
            t::ACCESSION_NUMBER,
            t::PATIENT_NAME,
            t::PATIENT_ID,
            t::PATIENT_BIRTH_DATE,
            t::PATIENT_WEIGHT,
            t::MEDICAL_ALERTS,
            t::STUDY_INSTANCE_UID,
            SPS,
        ]
    );
    let items = rsp.get(SPS).unwrap().items().unwrap();
    assert_eq!(items.len(), 1);
    let step_item = &items[0];
    assert_eq!(
        tags_of(step_item),
        vec![
            t::MODALITY,
            t::SCHEDULED_STATION_AE_TITLE,
            t::SCHEDULED_PROCEDURE_STEP_START_DATE,
            t::SCHEDULED_PROCEDURE_STEP_START_TIME,
            t::SCHEDULED_PROCEDURE_STEP_STATUS,
        ]
    );
    // Values and VRs.
    assert_eq!(text(&rsp, t::SPECIFIC_CHARACTER_SET), "ISO_IR 192");
    assert_eq!(text(&rsp, t::PATIENT_NAME), "DOE^JOHN");
    assert_eq!(rsp.get(t::PATIENT_NAME).unwrap().vr(), VR::PN);
    assert_eq!(text(&rsp, t::PATIENT_BIRTH_DATE), "19800517");
    assert_eq!(rsp.get(t::PATIENT_BIRTH_DATE).unwrap().vr(), VR::DA);
    assert_eq!(text(&rsp, t::PATIENT_WEIGHT), "72.5");
    assert_eq!(rsp.get(t::PATIENT_WEIGHT).unwrap().vr(), VR::DS);
    assert_eq!(text(&rsp, t::STUDY_INSTANCE_UID), e.study_instance_uid);
    assert_eq!(rsp.get(t::STUDY_INSTANCE_UID).unwrap().vr(), VR::UI);
    assert_eq!(text(step_item, t::SCHEDULED_STATION_AE_TITLE), "MRI_3T");
    assert_eq!(
        step_item.get(t::SCHEDULED_STATION_AE_TITLE).unwrap().vr(),
        VR::AE
    );
    assert_eq!(
        text(step_item, t::SCHEDULED_PROCEDURE_STEP_START_DATE),
        "20261126"
    );
    assert_eq!(
        text(step_item, t::SCHEDULED_PROCEDURE_STEP_START_TIME),
        "093000"
    );
    assert_eq!(
        step_item
            .get(t::SCHEDULED_PROCEDURE_STEP_START_TIME)
            .unwrap()
            .vr(),
        VR::TM
    );
    assert_eq!(
        text(step_item, t::SCHEDULED_PROCEDURE_STEP_STATUS),
        "SCHEDULED"
    );
    // Zero-length where we have no value.
    let rsp = query.response(&bare(), ResponseCharset::Utf8);
    for tag in [t::PATIENT_NAME, t::PATIENT_BIRTH_DATE, t::PATIENT_WEIGHT] {
        assert_eq!(
            rsp.get(tag).unwrap().value().primitive(),
            Some(&PrimitiveValue::Empty),
            "{tag}"
        );
    }
}

#[test]
fn response_without_step_sequence_has_no_step_keys() {
    let query = parse(&[(t::PATIENT_ID, VR::LO, "")], None);
    let rsp = query.response(&entry(), ResponseCharset::Utf8);
    assert_eq!(
        tags_of(&rsp),
        vec![t::SPECIFIC_CHARACTER_SET, t::PATIENT_ID]
    );
}

#[test]
fn empty_step_item_returns_every_step_attribute() {
    let all_step_keys = vec![
        t::MODALITY,
        t::SCHEDULED_STATION_AE_TITLE,
        t::SCHEDULED_PROCEDURE_STEP_START_DATE,
        t::SCHEDULED_PROCEDURE_STEP_START_TIME,
        t::SCHEDULED_PROCEDURE_STEP_END_DATE,
        t::SCHEDULED_PROCEDURE_STEP_END_TIME,
        t::SCHEDULED_PERFORMING_PHYSICIAN_NAME,
        t::SCHEDULED_PROCEDURE_STEP_DESCRIPTION,
        t::SCHEDULED_PROTOCOL_CODE_SEQUENCE,
        t::SCHEDULED_PROCEDURE_STEP_ID,
        t::SCHEDULED_STATION_NAME,
        t::SCHEDULED_PROCEDURE_STEP_LOCATION,
        t::SCHEDULED_PROCEDURE_STEP_STATUS,
    ];
    let mut zero_items = q(&[(t::PATIENT_ID, VR::LO, "")], None);
    zero_items.put(elem(SPS, VR::SQ, ""));
    for query in [
        parse(&[(t::PATIENT_ID, VR::LO, "")], Some(&[])),
        MwlQuery::parse(&zero_items).unwrap(),
    ] {
        assert!(query.matches(&entry()));
        let rsp = query.response(&entry(), ResponseCharset::Utf8);
        let step_item = &rsp.get(SPS).unwrap().items().unwrap()[0];
        assert_eq!(tags_of(step_item), all_step_keys);
        assert_eq!(
            text(step_item, t::SCHEDULED_PROCEDURE_STEP_END_TIME),
            "103000"
        );
        assert_eq!(text(step_item, t::SCHEDULED_PROCEDURE_STEP_ID), "SPS001");
        assert_eq!(
            text(step_item, t::SCHEDULED_PERFORMING_PHYSICIAN_NAME),
            "Hébert^Anne"
        );
    }
}

#[test]
fn type_1_keys_are_always_filled() {
    let query = parse(
        &[
            (t::STUDY_INSTANCE_UID, VR::UI, ""),
            (t::REQUESTED_PROCEDURE_ID, VR::SH, ""),
            (t::REQUESTED_PROCEDURE_DESCRIPTION, VR::LO, ""),
            (t::STUDY_DESCRIPTION, VR::LO, ""),
        ],
        Some(&[
            (t::SCHEDULED_PROCEDURE_STEP_ID, VR::SH, ""),
            (t::SCHEDULED_PROCEDURE_STEP_DESCRIPTION, VR::LO, ""),
        ]),
    );
    let rsp_step = |e: &WorklistEntry| {
        let rsp = query.response(e, ResponseCharset::Utf8);
        let step_item = rsp.get(SPS).unwrap().items().unwrap()[0].clone();
        (rsp, step_item)
    };
    // Bare entry: identifiers from the record, descriptions fall back to "Scan".
    let e = bare();
    let (rsp, step_item) = rsp_step(&e);
    assert_eq!(text(&rsp, t::STUDY_INSTANCE_UID), e.study_instance_uid);
    assert!(!e.study_instance_uid.is_empty());
    assert_eq!(
        text(&rsp, t::REQUESTED_PROCEDURE_ID),
        e.requested_procedure_id
    );
    assert_eq!(text(&step_item, t::SCHEDULED_PROCEDURE_STEP_ID), e.sps_id);
    assert_eq!(text(&rsp, t::REQUESTED_PROCEDURE_DESCRIPTION), "Scan");
    assert_eq!(
        text(&step_item, t::SCHEDULED_PROCEDURE_STEP_DESCRIPTION),
        "Scan"
    );
    // Study description is not type 1: stays empty.
    assert_eq!(text(&rsp, t::STUDY_DESCRIPTION), "");
    // The modality before "Scan".
    let mut e = bare();
    e.modality = Some("MR".into());
    let (rsp, step_item) = rsp_step(&e);
    assert_eq!(text(&rsp, t::REQUESTED_PROCEDURE_DESCRIPTION), "MR");
    assert_eq!(
        text(&step_item, t::SCHEDULED_PROCEDURE_STEP_DESCRIPTION),
        "MR"
    );
    // The display description before the modality.
    e.study_description = Some("Brain".into());
    let (rsp, step_item) = rsp_step(&e);
    assert_eq!(text(&rsp, t::REQUESTED_PROCEDURE_DESCRIPTION), "Brain");
    assert_eq!(
        text(&step_item, t::SCHEDULED_PROCEDURE_STEP_DESCRIPTION),
        "Brain"
    );
    e.requested_procedure_description = Some("Head".into());
    let (rsp, step_item) = rsp_step(&e);
    assert_eq!(text(&rsp, t::REQUESTED_PROCEDURE_DESCRIPTION), "Head");
    assert_eq!(
        text(&step_item, t::SCHEDULED_PROCEDURE_STEP_DESCRIPTION),
        "Head"
    );
    // Own values win.
    let e = entry();
    let (rsp, step_item) = rsp_step(&e);
    assert_eq!(text(&rsp, t::REQUESTED_PROCEDURE_DESCRIPTION), "MRI head");
    assert_eq!(
        text(&step_item, t::SCHEDULED_PROCEDURE_STEP_DESCRIPTION),
        "Protocol A"
    );
}

#[test]
fn status_is_returned_as_its_defined_term() {
    let query = parse(
        &[],
        Some(&[(t::SCHEDULED_PROCEDURE_STEP_STATUS, VR::CS, "STARTED")]),
    );
    let rsp = query.response(&with_status(StepStatus::Started), ResponseCharset::Utf8);
    let step_item = &rsp.get(SPS).unwrap().items().unwrap()[0];
    assert_eq!(
        text(step_item, t::SCHEDULED_PROCEDURE_STEP_STATUS),
        "STARTED"
    );
}

#[test]
fn charset_falls_back_to_utf8_when_a_value_does_not_fit() {
    let query = parse(&[(t::PATIENT_NAME, VR::PN, "")], Some(&[]));
    let ascii_only = {
        let mut e = entry();
        e.performing_physician_name = Some("HEBERT^ANNE".into());
        e
    };
    let latin = entry(); // Hébert
    let polish = {
        let mut e = entry();
        e.patient_name = Some("Łukasz^Anna".into());
        e
    };
    let cases = [
        (&ascii_only, ResponseCharset::Ascii, ResponseCharset::Ascii),
        (
            &ascii_only,
            ResponseCharset::Latin1,
            ResponseCharset::Latin1,
        ),
        (&latin, ResponseCharset::Ascii, ResponseCharset::Utf8),
        (&latin, ResponseCharset::Latin1, ResponseCharset::Latin1),
        (&latin, ResponseCharset::Utf8, ResponseCharset::Utf8),
        (&polish, ResponseCharset::Latin1, ResponseCharset::Utf8),
    ];
    for (e, preferred, used) in cases {
        assert_eq!(query.charset_used(e, preferred), used, "{preferred}");
        let rsp = query.response(e, preferred);
        assert_eq!(text(&rsp, t::SPECIFIC_CHARACTER_SET), used.term());
    }
    // A name that does not fit only matters when it is returned.
    let ids_only = parse(&[(t::PATIENT_ID, VR::LO, "")], None);
    assert_eq!(
        ids_only.charset_used(&polish, ResponseCharset::Latin1),
        ResponseCharset::Latin1
    );
}

#[test]
fn responses_are_written_in_the_charset_they_name() {
    use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
    let ts = EXPLICIT_VR_LITTLE_ENDIAN.erased();
    let query = parse(&[(t::PATIENT_NAME, VR::PN, "")], None);
    let write = |e: &WorklistEntry, cs| {
        let mut out = Vec::new();
        query
            .response(e, cs)
            .write_dataset_with_ts(&mut out, &ts)
            .unwrap();
        out
    };
    let mut e = entry();
    e.patient_name = Some("Hébert^Anne".into());
    let latin = write(&e, ResponseCharset::Latin1);
    assert!(latin.windows(2).any(|w| w == [b'H', 0xE9]), "é in Latin-1");
    e.patient_name = Some("Łukasz^Hébert".into());
    let fallback = write(&e, ResponseCharset::Latin1);
    assert!(fallback.windows(2).any(|w| w == [0xC5, 0x81]), "Ł in UTF-8");
    assert!(fallback.windows(2).any(|w| w == [0xC3, 0xA9]), "é in UTF-8");
    let back = InMemDicomObject::read_dataset_with_ts(fallback.as_slice(), &ts).unwrap();
    assert_eq!(text(&back, t::PATIENT_NAME), "Łukasz^Hébert");
}

// ---------------------------------------------------------------------------------------
// Candidate filter
// ---------------------------------------------------------------------------------------

#[test]
fn candidate_filter_pushes_down_only_safe_keys() {
    let f = parse(
        &[(t::PATIENT_ID, VR::LO, "SUB001")],
        Some(&[
            (t::SCHEDULED_STATION_AE_TITLE, VR::AE, "MRI_3T"),
            (t::MODALITY, VR::CS, "MR"),
            (
                t::SCHEDULED_PROCEDURE_STEP_START_DATE,
                VR::DA,
                "20261126-20261127",
            ),
            (t::SCHEDULED_PROCEDURE_STEP_START_TIME, VR::TM, "2200-0200"),
        ]),
    )
    .candidate_filter();
    assert_eq!(f.patient_id.as_deref(), Some("SUB001"));
    assert_eq!(f.station_ae_title.as_deref(), Some("MRI_3T"));
    assert_eq!(f.modality.as_deref(), Some("MR"));
    assert_eq!(f.from_date, Some(date(2026, 11, 26)));
    assert_eq!(f.to_date, Some(date(2026, 11, 27)));
    assert_eq!(f.statuses, vec![StepStatus::Scheduled, StepStatus::Started]);
    assert_eq!(f.source, None);

    let f = parse(
        &[(t::PATIENT_ID, VR::LO, "SUB*")],
        Some(&[
            (t::SCHEDULED_STATION_AE_TITLE, VR::AE, "MRI_3T\\CT_1"),
            (t::MODALITY, VR::CS, "M?"),
            (t::SCHEDULED_PROCEDURE_STEP_START_TIME, VR::TM, "0800-1200"),
            (
                t::SCHEDULED_PROCEDURE_STEP_STATUS,
                VR::CS,
                "COMPLETED\\DISCONTINUED",
            ),
        ]),
    )
    .candidate_filter();
    assert_eq!(f.patient_id, None);
    assert_eq!(f.station_ae_title, None);
    assert_eq!(f.modality, None);
    assert_eq!((f.from_date, f.to_date), (None, None));
    assert_eq!(
        f.statuses,
        vec![StepStatus::Completed, StepStatus::Discontinued]
    );
    // Open-ended date range.
    let f = parse(
        &[],
        Some(&[(t::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, "20261126-")]),
    )
    .candidate_filter();
    assert_eq!((f.from_date, f.to_date), (Some(date(2026, 11, 26)), None));
}

/// The patient-name key prefixes a PatientName value pushes down to the store.
fn name_prefixes(value: &str) -> Vec<String> {
    parse(&[(t::PATIENT_NAME, VR::PN, value)], None)
        .candidate_filter()
        .patient_name_prefixes
}

#[test]
fn patient_name_prefixes_of_query_forms() {
    // A literal start before the first wildcard, folded.
    assert_eq!(name_prefixes("SIM*"), ["sim"]);
    assert_eq!(name_prefixes("sim*"), ["sim"]);
    assert_eq!(name_prefixes("Sim?n"), ["sim"]);
    assert_eq!(name_prefixes("Si*m?n"), ["si"]);
    // No wildcard: the family name (or the whole name) is the start.
    assert_eq!(name_prefixes("Doe"), ["doe"]);
    assert_eq!(name_prefixes(" Doe ^^"), ["doe"]);
    // Component-wise: only the family component's start.
    assert_eq!(name_prefixes("DOE^J*"), ["doe"]);
    assert_eq!(name_prefixes("DOE^JOHN"), ["doe"]);
    assert_eq!(name_prefixes("D?E^JOHN"), ["d"]);
    // Unicode case folding, one character per character.
    assert_eq!(name_prefixes("Élise*"), ["élise"]);
    assert_eq!(name_prefixes("ÖZGÜR^*"), ["özgür"]);
    assert_eq!(name_prefixes("İZ*"), ["İz"]);
    // Lists: one prefix per value, those covered by a shorter one dropped, in order.
    assert_eq!(name_prefixes("DOE\\SMITH"), ["doe", "smith"]);
    assert_eq!(name_prefixes("SMITH*\\Sm*\\DOE"), ["doe", "sm"]);
    // `=`: compared whole; the start of the first group only.
    assert_eq!(name_prefixes("Yamada^T*=山田"), ["yamada^t"]);
    assert_eq!(name_prefixes("Yamada=山田*"), ["yamada"]);
    // No literal start: no narrowing on the name.
    for none in [
        "*son",
        "?im*",
        "^JOHN",
        "^J*",
        "=ideo*",
        "=山田^太郎",
        "DOE\\*son",
        "*",
        "^^",
        "",
    ] {
        assert!(name_prefixes(none).is_empty(), "{none:?}");
    }
    // Too many values: not pushed down (one index range each).
    let many: Vec<String> = (0..17).map(|i| format!("N{i:02}*")).collect();
    assert!(name_prefixes(&many.join("\\")).is_empty());
    let sixteen: Vec<String> = (0..16).map(|i| format!("N{i:02}*")).collect();
    assert_eq!(name_prefixes(&sixteen.join("\\")).len(), 16);
    // Only PatientName: other person names are matched in Rust.
    let f = parse(&[(t::REFERRING_PHYSICIAN_NAME, VR::PN, "WHO*")], None).candidate_filter();
    assert!(f.patient_name_prefixes.is_empty());
}

/// Entries that differ in every pushed-down column, around midnight, in every status.
fn population() -> Vec<WorklistEntry> {
    let names = [
        Some("DOE^JOHN"),
        Some("doe^jane"),
        Some("Hébert^Anne"),
        None,
    ];
    let stations = [Some("MRI_3T"), Some("CT_1"), None];
    let modalities = [Some("MR"), Some("CT"), None];
    let starts = [
        at(2026, 11, 25, 23, 30),
        at(2026, 11, 26, 0, 0),
        at(2026, 11, 26, 8, 0),
        at(2026, 11, 26, 22, 15),
        at(2026, 11, 27, 1, 59),
        at(2026, 11, 27, 12, 0),
        at(2026, 11, 28, 9, 0),
    ];
    let mut out = Vec::new();
    let mut n = 0usize;
    for (i, start) in starts.into_iter().enumerate() {
        for (j, station) in stations.into_iter().enumerate() {
            for (k, modality) in modalities.into_iter().enumerate() {
                n += 1;
                let mut e = WorklistEntry::new(
                    "calpendo",
                    format!("B{n:03}"),
                    format!("SUB{:03}", (i + j + k) % 4),
                    start,
                );
                e.patient_name = names[(i + k) % names.len()].map(str::to_owned);
                e.station_ae_title = station.map(str::to_owned);
                e.modality = modality.map(str::to_owned);
                e.status = StepStatus::ALL[(i + 2 * j + k) % 4];
                e.end = Some(start + jiff::Span::new().hours(1));
                out.push(e);
            }
        }
    }
    // Random patient names (for PatientName queries and the name search key): mixed
    // case, accents, several components, `=` groups, shared starts.
    let mut rng = Rng(0x5EED_0F4A);
    for i in 0..NAMED_ENTRIES {
        let start = starts[rng.below(starts.len())];
        let mut e = WorklistEntry::new("calpendo", format!("N{i:03}"), format!("NAMED{i}"), start);
        e.patient_name = Some(random_name(&mut rng));
        e.station_ae_title = Some(["MRI_3T", "CT_1"][rng.below(2)].to_owned());
        e.modality = Some("MR".to_owned());
        e.status = StepStatus::ALL[rng.below(8).min(3)];
        out.push(e);
    }
    out
}

/// How many entries with random names [`population`] adds.
const NAMED_ENTRIES: usize = 300;

/// A small deterministic generator (SplitMix64), for random names and name queries.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Pieces of names: shared starts (`sim`, `Sim`, `SIM`), accents in both cases, letters
/// whose lower case is not one character (`İ`) or whose upper case is not (`ß`), Greek
/// final sigma, CJK, spaces and punctuation.
const SYLLABLES: [&str; 24] = [
    "sim", "Sim", "SIM", "son", "pson", "mons", "é", "É", "lise", "Ö", "zg", "ür", "Mc", "o'", "ß",
    "İ", "Σ", "ς", "a", "B", "de ", "-", "ñ", "Ñ",
];
const IDEOGRAMS: [&str; 6] = ["山", "田", "太", "郎", "やま", "だ"];

fn random_word(rng: &mut Rng, pieces: &[&str], max: usize) -> String {
    (0..1 + rng.below(max))
        .map(|_| pieces[rng.below(pieces.len())])
        .collect()
}

/// A random valid patient name: 1 to 3 components (some empty, some padded), and now
/// and then ideographic / phonetic groups (also with an empty first group).
fn random_name(rng: &mut Rng) -> String {
    let group = |rng: &mut Rng, pieces: &[&str]| -> String {
        let n = 1 + rng.below(3);
        (0..n)
            .map(|i| {
                if i > 0 && rng.chance(5) {
                    String::new()
                } else {
                    let w = random_word(rng, pieces, 3);
                    if rng.chance(6) { format!(" {w} ") } else { w }
                }
            })
            .collect::<Vec<_>>()
            .join("^")
    };
    let mut name = group(rng, &SYLLABLES);
    match rng.below(8) {
        0 => name = format!("{name}={}", group(rng, &IDEOGRAMS)),
        1 => name = format!("={}", group(rng, &IDEOGRAMS)),
        2 => {
            name = format!(
                "{name}={}={}",
                group(rng, &IDEOGRAMS),
                group(rng, &SYLLABLES)
            )
        }
        3 => name.push_str("^^"),
        _ => {}
    }
    name
}

/// Each character in upper or lower case at random (when that is one character).
fn random_case(rng: &mut Rng, s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut m: Vec<char> = if rng.chance(2) {
                c.to_uppercase().collect()
            } else {
                c.to_lowercase().collect()
            };
            if m.len() == 1 { m.remove(0) } else { c }
        })
        .collect()
}

/// A random PatientName query value, usually built from a name of `names` so that it
/// matches something: a start of a component with `*`, `?` in place of a character, an
/// exact family name, component-wise forms (`FAMILY^G*`, `^GIVEN`, `FAMILY^*`), a
/// leading wildcard, lists, `=` forms, or random pieces.
fn random_name_query(rng: &mut Rng, names: &[String]) -> (String, usize) {
    let picked = rng.below(names.len());
    let name = &names[picked];
    let groups: Vec<&str> = name.split('=').collect();
    let group = groups[rng.below(groups.len())];
    let comps: Vec<String> = group.split('^').map(|c| c.trim().to_owned()).collect();
    let comp = |i: usize| comps.get(i).cloned().unwrap_or_default();
    let start = |rng: &mut Rng, s: &str| -> String {
        let chars: Vec<char> = s.chars().collect();
        chars[..rng.below(chars.len() + 1)].iter().collect()
    };
    let q = match rng.below(12) {
        0 | 1 => format!("{}*", start(rng, &comp(0))),
        2 => {
            let mut chars: Vec<char> = comp(0).chars().collect();
            if !chars.is_empty() {
                let i = rng.below(chars.len());
                chars[i] = '?';
            }
            chars.into_iter().collect()
        }
        3 => comp(0),
        4 => format!("{}^{}*", comp(0), start(rng, &comp(1))),
        5 => format!("^{}", comp(1)),
        6 => format!("{}^*", comp(0)),
        7 => format!("*{}", comp(0).chars().rev().take(2).collect::<String>()),
        8 => {
            let other = &names[rng.below(names.len())];
            format!("{}*\\{}*", start(rng, &comp(0)), start(rng, other))
        }
        9 => format!("{}*", start(rng, name)),
        10 => format!("={}*", start(rng, groups.last().copied().unwrap_or(""))),
        _ => format!("{}*", random_word(rng, &SYLLABLES, 2)),
    };
    (random_case(rng, &q), picked)
}

fn query_set() -> Vec<MwlQuery> {
    let ae = t::SCHEDULED_STATION_AE_TITLE;
    let sd = t::SCHEDULED_PROCEDURE_STEP_START_DATE;
    let st = t::SCHEDULED_PROCEDURE_STEP_START_TIME;
    let status = t::SCHEDULED_PROCEDURE_STEP_STATUS;
    let steps: Vec<Vec<Key>> = vec![
        vec![],
        vec![(ae, VR::AE, "MRI_3T")],
        vec![(ae, VR::AE, " MRI_3T ")],
        vec![(ae, VR::AE, "MRI_3T\\CT_1")],
        vec![(ae, VR::AE, "MRI*")],
        vec![(ae, VR::AE, "*")],
        vec![(t::MODALITY, VR::CS, "MR")],
        vec![(t::MODALITY, VR::CS, "CT\\MR")],
        vec![(t::MODALITY, VR::CS, "?R")],
        vec![(sd, VR::DA, "20261126")],
        vec![(sd, VR::DA, "20261126-20261127"), (st, VR::TM, "2200-0200")],
        vec![
            (sd, VR::DA, "20261126-20261127"),
            (st, VR::TM, "080000-120000"),
        ],
        vec![(sd, VR::DA, "20261126"), (st, VR::TM, "0800")],
        vec![(sd, VR::DA, "20261126-"), (st, VR::TM, "2200-")],
        vec![(sd, VR::DA, "-20261126"), (st, VR::TM, "-0000")],
        vec![(st, VR::TM, "2200-0200")],
        vec![(status, VR::CS, "COMPLETED")],
        vec![(status, VR::CS, "SCHEDULED\\DISCONTINUED")],
        vec![(status, VR::CS, "*ED")],
        vec![
            (ae, VR::AE, "MRI_3T"),
            (t::MODALITY, VR::CS, "MR"),
            (sd, VR::DA, "20261125-20261127"),
            (st, VR::TM, "2300-0200"),
            (
                status,
                VR::CS,
                "SCHEDULED\\STARTED\\COMPLETED\\DISCONTINUED",
            ),
        ],
    ];
    let tops: Vec<Vec<Key>> = vec![
        vec![],
        vec![(t::PATIENT_ID, VR::LO, "SUB001")],
        vec![(t::PATIENT_ID, VR::LO, "SUB001 ")],
        vec![(t::PATIENT_ID, VR::LO, "SUB00?")],
        vec![(t::PATIENT_ID, VR::LO, "SUB001\\SUB002")],
        vec![(t::PATIENT_NAME, VR::PN, "doe")],
        vec![(t::PATIENT_NAME, VR::PN, "D*")],
        vec![(t::PATIENT_NAME, VR::PN, "hé*")],
        vec![(t::PATIENT_NAME, VR::PN, "DOE\\H?bert")],
        vec![(t::PATIENT_NAME, VR::PN, "^JOHN")],
    ];
    let mut out = Vec::new();
    for top_keys in &tops {
        for step_keys in &steps {
            out.push(parse(top_keys, Some(step_keys)));
        }
        out.push(parse(top_keys, None));
    }
    out.extend(name_queries());
    out
}

/// How many random PatientName queries [`name_queries`] makes.
const NAME_QUERIES: usize = 600;

/// Random PatientName queries on the names of [`population`], some with step keys.
fn name_queries() -> Vec<MwlQuery> {
    let (ids, names): (Vec<String>, Vec<String>) = population()
        .into_iter()
        .filter_map(|e| Some((e.patient_id, e.patient_name?)))
        .unzip();
    let mut rng = Rng(0xA11CE);
    let status = t::SCHEDULED_PROCEDURE_STEP_STATUS;
    (0..NAME_QUERIES)
        .map(|_| {
            let (value, picked) = random_name_query(&mut rng, &names);
            let top = [(t::PATIENT_NAME, VR::PN, value.as_str())];
            match rng.below(4) {
                0 => parse(&top, None),
                // With an exact PatientID: the store tests the name key row by row.
                3 => parse(
                    &[top[0], (t::PATIENT_ID, VR::LO, ids[picked].as_str())],
                    None,
                ),
                1 => parse(&top, Some(&[(status, VR::CS, "*ED\\S*")])),
                _ => parse(
                    &top,
                    Some(&[(t::SCHEDULED_STATION_AE_TITLE, VR::AE, "MRI_3T")]),
                ),
            }
        })
        .collect()
}

#[test]
fn candidate_filter_never_excludes_a_match_in_the_real_store() {
    use worklist_store::{EntryFilter, OnCancel, Store, SyncWindow};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("wl.db")).unwrap();
    let entries = population();
    let window = SyncWindow {
        start: at(2026, 11, 1, 0, 0),
        end: at(2026, 12, 1, 0, 0),
    };
    let counts = store
        .reconcile(
            "calpendo",
            &window,
            entries.clone(),
            OnCancel::Discontinue,
            jiff::Timestamp::UNIX_EPOCH,
        )
        .unwrap();
    assert_eq!(counts.inserted, entries.len() as u64);
    let all = store.list(&EntryFilter::default()).unwrap();
    assert_eq!(all.len(), entries.len());

    let mut narrowed = 0;
    let mut matched_somewhere = 0;
    let (mut name_narrowed, mut name_matched) = (0, 0);
    let queries = query_set();
    let first_random = queries.len() - NAME_QUERIES;
    for (i, query) in queries.iter().enumerate() {
        let candidates: Vec<String> = store
            .list(&query.candidate_filter())
            .unwrap()
            .into_iter()
            .map(|s| s.entry.source_record_id)
            .collect();
        let matching: Vec<&str> = all
            .iter()
            .filter(|s| query.matches(&s.entry))
            .map(|s| s.entry.source_record_id.as_str())
            .collect();
        for id in &matching {
            assert!(
                candidates.iter().any(|c| c == id),
                "query {i} ({:?}) matches {id} but the filter {:?} drops it",
                query.requested_keys(),
                query.candidate_filter()
            );
        }
        if candidates.len() < all.len() {
            narrowed += 1;
        }
        if !matching.is_empty() {
            matched_somewhere += 1;
        }
        if i >= first_random {
            // Random name queries: narrowed by the name key alone when the query says
            // nothing else, and matching.
            let name_only = EntryFilter {
                statuses: Vec::new(),
                station_ae_title: None,
                ..query.candidate_filter()
            };
            if store.list(&name_only).unwrap().len() * 2 < all.len() {
                name_narrowed += 1;
            }
            if !matching.is_empty() {
                name_matched += 1;
            }
        }
    }
    // The check means something: filters narrow, and queries match.
    let total = queries.len();
    assert!(narrowed * 2 > total, "{narrowed} of {total} narrowed");
    assert!(
        matched_somewhere * 2 > total,
        "{matched_somewhere} of {total} matched"
    );
    assert!(
        name_narrowed * 2 > NAME_QUERIES,
        "{name_narrowed} of {NAME_QUERIES} name queries narrowed by the name key"
    );
    assert!(
        name_matched * 2 > NAME_QUERIES,
        "{name_matched} of {NAME_QUERIES} name queries matched"
    );
}

/// The bytes the server sends ([`MwlQuery::encode_response`]) decode, with dicom-rs, to
/// exactly the object [`MwlQuery::response`] builds: same tags, levels, VRs and values,
/// in both transfer syntaxes and every character set (with the UTF-8 fallback).
#[test]
fn direct_encoding_equals_the_dicom_rs_object() {
    use dicom_transfer_syntax_registry::entries::{
        EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
    };

    fn flatten(obj: &InMemDicomObject, prefix: &str, out: &mut Vec<String>) {
        for e in obj.iter() {
            let here = format!("{prefix}{:?}", e.header().tag);
            match e.items() {
                Some(items) => {
                    out.push(format!("{here} SQ items={}", items.len()));
                    for (i, item) in items.iter().enumerate() {
                        flatten(item, &format!("{here}[{i}]."), out);
                    }
                }
                None => out.push(format!(
                    "{here} {:?} {:?}",
                    e.header().vr(),
                    e.to_str()
                        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
                        .unwrap_or_default()
                )),
            }
        }
    }

    let mut latin = entry();
    latin.patient_name = Some("Łukasz^Zoë".into());
    let mut protocol = entry();
    protocol.set_protocol("BRAIN_ROUTINE", "GEHC");
    let mut long_protocol = latin.clone();
    long_protocol.set_protocol("Cerveau routine avec contraste 3T", "");
    let entries = [entry(), bare(), latin, protocol, long_protocol];
    let mut protocol_item = q(&[], Some(&[(t::MODALITY, VR::CS, "")]));
    if let Some(Value::Sequence(seq)) = protocol_item.get(SPS).map(|e| e.value().clone()) {
        let mut step = seq.items()[0].clone();
        step.put(DataElement::new(
            t::SCHEDULED_PROTOCOL_CODE_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![item(&[
                (t::CODE_VALUE, VR::SH, ""),
                (t::CODE_MEANING, VR::LO, ""),
            ])]),
        ));
        protocol_item.put(DataElement::new(
            SPS,
            VR::SQ,
            DataSetSequence::from(vec![step]),
        ));
    }
    let queries = [
        MwlQuery::parse(&protocol_item).unwrap(),
        parse(&[], Some(&[])),
        MwlQuery::every_attribute(),
        parse(
            &[
                (t::PATIENT_NAME, VR::PN, ""),
                (t::PATIENT_ID, VR::LO, ""),
                (ETHNIC_GROUP, VR::SH, ""),
                (OTHER_PATIENT_IDS, VR::LO, ""),
                (t::REFERENCED_STUDY_SEQUENCE, VR::SQ, ""),
                (t::REQUESTED_PROCEDURE_ID, VR::SH, ""),
                (t::PATIENT_WEIGHT, VR::DS, ""),
            ],
            Some(&[
                (t::MODALITY, VR::CS, ""),
                (t::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, ""),
                (t::SCHEDULED_PROTOCOL_CODE_SEQUENCE, VR::SQ, ""),
            ]),
        ),
        parse(&[(t::ACCESSION_NUMBER, VR::SH, "")], None),
    ];
    for q in &queries {
        for e in &entries {
            for charset in [
                ResponseCharset::Utf8,
                ResponseCharset::Latin1,
                ResponseCharset::Ascii,
            ] {
                for (ts, explicit) in [
                    (IMPLICIT_VR_LITTLE_ENDIAN.erased(), false),
                    (EXPLICIT_VR_LITTLE_ENDIAN.erased(), true),
                ] {
                    let mut bytes = Vec::new();
                    let used = q.encode_response(e, charset, explicit, &mut bytes);
                    assert_eq!(used, q.charset_used(e, charset));
                    // Written once: a response begun in another set is not left in front.
                    let charset_tag = [0x08, 0x00, 0x05, 0x00];
                    assert!(bytes.starts_with(&charset_tag));
                    assert_eq!(bytes.windows(4).filter(|w| *w == charset_tag).count(), 1);
                    let decoded = InMemDicomObject::read_dataset_with_ts(&bytes[..], &ts)
                        .expect("dicom-rs reads the direct encoding");
                    let (mut got, mut want) = (Vec::new(), Vec::new());
                    flatten(&decoded, "", &mut got);
                    flatten(&q.response(e, charset), "", &mut want);
                    assert_eq!(got, want, "{charset:?} explicit={explicit}");
                }
            }
        }
    }
}

#[test]
fn station_restriction_applies_only_to_open_queries() {
    let mut e = entry();
    e.station_ae_title = Some("MRI_3T".into());
    let mut open = parse(&[], Some(&[(t::SCHEDULED_STATION_AE_TITLE, VR::AE, "")]));
    assert!(open.restrict_to_station("EEG_LAB"));
    assert!(!open.matches(&e));
    assert_eq!(
        open.candidate_filter().station_ae_title.as_deref(),
        Some("EEG_LAB")
    );
    let mut mine = parse(&[], None);
    assert!(mine.restrict_to_station("MRI_3T"));
    assert!(mine.matches(&e));
    // A query that names a station keeps it.
    let mut named = parse(
        &[],
        Some(&[(t::SCHEDULED_STATION_AE_TITLE, VR::AE, "MRI_3T")]),
    );
    assert!(!named.restrict_to_station("EEG_LAB"));
    assert!(named.matches(&e));
}

/// Equal response shapes mean equal bytes for every entry (C-FIND keeps encoded responses
/// by shape); matching values do not change a shape, return keys, their level, the
/// character set and the transfer syntax do.
#[test]
fn equal_response_shapes_encode_every_entry_alike() {
    let mut latin = entry();
    latin.patient_name = Some("Łukasz^Zoë".into());
    let mut protocol = entry();
    protocol.set_protocol("BRAIN_ROUTINE", "GEHC");
    let entries = [entry(), bare(), latin, protocol];
    let step = |modality: &'static str| {
        [
            (t::MODALITY, VR::CS, modality),
            (t::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, ""),
        ]
    };
    let queries = [
        parse(&[(t::PATIENT_ID, VR::LO, "")], Some(&step(""))),
        parse(&[(t::PATIENT_ID, VR::LO, "SUB1")], Some(&step("MR"))),
        parse(&[(t::PATIENT_ID, VR::LO, "")], Some(&step("")[..1])),
        parse(&[(t::PATIENT_NAME, VR::PN, "")], Some(&step(""))),
        parse(&[(t::PATIENT_ID, VR::LO, "")], None),
        parse(
            &[
                (t::PATIENT_ID, VR::LO, ""),
                (t::MODALITY, VR::CS, ""),
                (t::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, ""),
            ],
            None,
        ),
        parse(&[], Some(&[])),
        MwlQuery::every_attribute(),
    ];
    let variants = [
        (ResponseCharset::Utf8, false),
        (ResponseCharset::Utf8, true),
        (ResponseCharset::Latin1, false),
    ];
    let shape = |i: usize, v: usize| queries[i].response_shape(variants[v].0, variants[v].1);
    assert_eq!(shape(0, 0), shape(1, 0), "matching values do not count");
    for (i, j, v, w) in [
        (0, 2, 0, 0),
        (0, 3, 0, 0),
        (4, 5, 0, 0),
        (0, 0, 0, 1),
        (0, 0, 0, 2),
    ] {
        assert_ne!(
            shape(i, v),
            shape(j, w),
            "queries {i} and {j}, variants {v} and {w}"
        );
    }
    for i in 0..queries.len() {
        for j in 0..queries.len() {
            for v in 0..variants.len() {
                for w in 0..variants.len() {
                    if shape(i, v) != shape(j, w) {
                        continue;
                    }
                    for e in &entries {
                        let (mut a, mut b) = (Vec::new(), Vec::new());
                        queries[i].encode_response(e, variants[v].0, variants[v].1, &mut a);
                        queries[j].encode_response(e, variants[w].0, variants[w].1, &mut b);
                        assert_eq!(a, b, "queries {i} and {j}, variants {v} and {w}");
                    }
                }
            }
        }
    }
}
