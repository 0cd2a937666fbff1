//! The Scheduled Protocol Code Sequence inside the step item: parsing, sequence matching
//! (PS3.4 C.2.2.2.6) and the item returned.

use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags as t;
use dicom_object::InMemDicomObject;
use jiff::civil::date;
use worklist_store::WorklistEntry;

use super::{MwlQuery, QueryError, ResponseCharset};

const SPS: Tag = t::SCHEDULED_PROCEDURE_STEP_SEQUENCE;
const PROTOCOL: Tag = t::SCHEDULED_PROTOCOL_CODE_SEQUENCE;

fn item(keys: &[(Tag, VR, &str)]) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(keys.iter().map(|&(tag, vr, v)| {
        let value = if v.is_empty() {
            PrimitiveValue::Empty
        } else {
            PrimitiveValue::from(v)
        };
        DataElement::new(tag, vr, value)
    }))
}

/// A query whose step item holds Modality and a protocol sequence with these items.
fn query(protocol_items: Vec<InMemDicomObject>) -> InMemDicomObject {
    let mut step = item(&[(t::MODALITY, VR::CS, "")]);
    step.put(DataElement::new(
        PROTOCOL,
        VR::SQ,
        DataSetSequence::from(protocol_items),
    ));
    let mut obj = item(&[(t::PATIENT_ID, VR::LO, "")]);
    obj.put(DataElement::new(
        SPS,
        VR::SQ,
        DataSetSequence::from(vec![step]),
    ));
    obj
}

fn parse(protocol_items: Vec<InMemDicomObject>) -> MwlQuery {
    MwlQuery::parse(&query(protocol_items)).expect("parses")
}

fn with_protocol(name: &str, scheme: &str) -> WorklistEntry {
    let mut e = WorklistEntry::new("redcap", "V1", "SUB001", date(2026, 11, 26).at(9, 0, 0, 0));
    e.modality = Some("MR".into());
    e.set_protocol(name, scheme);
    e
}

fn without_protocol() -> WorklistEntry {
    with_protocol("", "")
}

/// The returned protocol items: each as (tag, value) pairs.
fn returned(q: &MwlQuery, e: &WorklistEntry) -> Vec<Vec<(Tag, String)>> {
    let rsp = q.response(e, ResponseCharset::Utf8);
    let step = &rsp
        .get(SPS)
        .and_then(|s| s.items())
        .expect("a step sequence")[0];
    let seq = step
        .get(PROTOCOL)
        .expect("the protocol sequence is returned");
    seq.items()
        .expect("a sequence")
        .iter()
        .map(|i| {
            i.iter()
                .map(|el| {
                    let v = el.to_str().map(|s| s.trim_end().to_string());
                    (el.header().tag, v.unwrap_or_default())
                })
                .collect()
        })
        .collect()
}

#[test]
fn zero_length_or_empty_item_returns_the_three_attributes() {
    let e = with_protocol("BRAIN_ROUTINE", "GEHC");
    for q in [parse(Vec::new()), parse(vec![item(&[])])] {
        assert!(q.matches(&e) && q.matches(&without_protocol()));
        assert!(!q.has_unsupported_keys());
        assert_eq!(
            returned(&q, &e),
            [vec![
                (t::CODE_VALUE, "BRAIN_ROUTINE".to_string()),
                (t::CODING_SCHEME_DESIGNATOR, "GEHC".to_string()),
                (t::CODE_MEANING, "BRAIN_ROUTINE".to_string()),
            ]]
        );
        // No protocol: the sequence is sent with no item.
        assert!(returned(&q, &without_protocol()).is_empty());
    }
}

#[test]
fn an_item_returns_only_its_keys() {
    let q = parse(vec![item(&[(t::CODE_VALUE, VR::SH, "")])]);
    assert_eq!(
        returned(&q, &with_protocol("BRAIN_ROUTINE", "")),
        [vec![(t::CODE_VALUE, "BRAIN_ROUTINE".to_string())]]
    );
}

#[test]
fn code_value_matching() {
    let e = with_protocol("BRAIN_ROUTINE", "99MWLBRIDGE");
    let by_code = |v: &str| parse(vec![item(&[(t::CODE_VALUE, VR::SH, v)])]);
    assert!(by_code("BRAIN_ROUTINE").matches(&e));
    assert!(by_code("BRAIN*").matches(&e));
    assert!(by_code("SPINE\\BRAIN_ROUTINE").matches(&e));
    assert!(!by_code("brain_routine").matches(&e));
    assert!(!by_code("SPINE").matches(&e));
    assert!(by_code("*").matches(&without_protocol()));
    // An entry without a protocol does not match a non-empty key (K.6).
    assert!(!by_code("BRAIN_ROUTINE").matches(&without_protocol()));
    assert!(!by_code("BRAIN_ROUTINE").has_unsupported_keys());

    let both = parse(vec![item(&[
        (t::CODE_VALUE, VR::SH, "BRAIN_ROUTINE"),
        (t::CODING_SCHEME_DESIGNATOR, VR::SH, "GEHC"),
    ])]);
    assert!(!both.matches(&e));
    assert!(both.matches(&with_protocol("BRAIN_ROUTINE", "GEHC")));
}

#[test]
fn a_long_code_is_sent_as_long_code_value() {
    let name = "Cerveau routine avec contraste";
    let e = with_protocol(name, "");
    let q = parse(vec![item(&[(t::CODE_VALUE, VR::SH, "")])]);
    assert_eq!(
        returned(&q, &e),
        [vec![
            (t::CODE_VALUE, String::new()),
            (t::LONG_CODE_VALUE, name.to_string()),
        ]]
    );
    let rsp = q.response(&e, ResponseCharset::Utf8);
    let step = &rsp.get(SPS).and_then(|s| s.items()).expect("step")[0];
    let item = &step.get(PROTOCOL).and_then(|s| s.items()).expect("item")[0];
    assert_eq!(item.get(t::LONG_CODE_VALUE).map(|e| e.vr()), Some(VR::UC));
    // Matching uses the whole code.
    let by_code = parse(vec![item_of(name)]);
    assert!(by_code.matches(&e));
}

fn item_of(code: &str) -> InMemDicomObject {
    item(&[(t::CODE_VALUE, VR::SH, code)])
}

#[test]
fn several_items_or_a_primitive_are_refused() {
    let err = MwlQuery::parse(&query(vec![item(&[]), item(&[])])).unwrap_err();
    let QueryError::InvalidIdentifier { offending, .. } = err;
    assert_eq!(offending, [SPS, PROTOCOL]);

    let mut step = item(&[(PROTOCOL, VR::SH, "X")]);
    step.put(DataElement::new(t::MODALITY, VR::CS, PrimitiveValue::Empty));
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        SPS,
        VR::SQ,
        DataSetSequence::from(vec![step]),
    ));
    let err = MwlQuery::parse(&obj).unwrap_err();
    assert_eq!(err.offending(), [SPS, PROTOCOL]);

    // A code sent as a binary number cannot be read as text.
    let bad_vr = query(vec![item(&[(t::CODE_VALUE, VR::US, "7")])]);
    let err = MwlQuery::parse(&bad_vr).unwrap_err();
    assert_eq!(err.offending(), [SPS, PROTOCOL, t::CODE_VALUE]);
}

#[test]
fn every_attribute_includes_the_protocol() {
    let q = MwlQuery::every_attribute();
    assert_eq!(returned(&q, &with_protocol("P1", "")).len(), 1);
}
