//! The query parameters of a worklist search (PS3.18 8.3.4) turned into a C-FIND
//! identifier, so that the search goes through [`MwlQuery::parse`](mwl_scp::MwlQuery::parse)
//! like any C-FIND:
//!
//! - `{attribute}={value}`: a matching key. `{attribute}` is a keyword
//!   (`PatientID`) or eight hex digits (`00100020`), or a dotted path through sequences
//!   (`00400100.00080060`, `ScheduledProcedureStepSequence.Modality`), each sequence
//!   holding one item. An empty value is a universal key (returned, matches all). For a
//!   UID, `,` separates a list like `\` does.
//! - `includefield={attribute}[,{attribute}...]` (repeatable): return keys, or `all`: every
//!   attribute we hold ([`MwlQuery::every_attribute_identifier`], its step item key by key:
//!   [`MwlQuery::every_step_attribute_item`]). Naming the step sequence itself
//!   (`includefield=00400100`) asks for every step attribute.
//!   Without `all`, the [`DEFAULT_TOP`] and [`DEFAULT_STEP`] keys are returned.
//! - `fuzzymatching=true|false`: accepted, not applied (matching is PS3.4's, exact;
//!   person names are already case-insensitive).
//! - `offset` (from 0, at most [`MAX_OFFSET`]) and `limit` (1 to [`MAX_LIMIT`], default
//!   [`DEFAULT_LIMIT`]).
//!
//! Parsing only validates; the search runs later.

use std::collections::BTreeMap;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::Header;
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_object::InMemDicomObject;
use mwl_scp::MwlQuery;

use crate::paging::{MAX_LIMIT, MAX_OFFSET};

/// The page size when `limit` is not given (the API worklist's default page).
pub(crate) const DEFAULT_LIMIT: usize = crate::paging::WORKLIST_DEFAULT;

/// Top-level return keys without `includefield=all`: those a console's typical worklist
/// query asks for (the patient, the order, the study).
pub(crate) const DEFAULT_TOP: [Tag; 9] = [
    tags::ACCESSION_NUMBER,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::STUDY_INSTANCE_UID,
    tags::REQUESTED_PROCEDURE_DESCRIPTION,
    tags::REQUESTED_PROCEDURE_ID,
];

/// Scheduled Procedure Step Sequence item keys without `includefield=all`.
pub(crate) const DEFAULT_STEP: [Tag; 10] = [
    tags::MODALITY,
    tags::SCHEDULED_STATION_AE_TITLE,
    tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
    tags::SCHEDULED_PROCEDURE_STEP_START_TIME,
    tags::SCHEDULED_PERFORMING_PHYSICIAN_NAME,
    tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION,
    tags::SCHEDULED_STATION_NAME,
    tags::SCHEDULED_PROCEDURE_STEP_LOCATION,
    tags::SCHEDULED_PROCEDURE_STEP_ID,
    tags::SCHEDULED_PROCEDURE_STEP_STATUS,
];

/// A refused query parameter: a `400` naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query parameter {parameter:?}: {problem}")]
pub(crate) struct ParamError {
    /// The parameter as the client wrote it (its name, or `name=value` for a bad
    /// `includefield` item).
    pub(crate) parameter: String,
    /// What is wrong.
    pub(crate) problem: String,
}

fn refuse(parameter: &str, problem: impl Into<String>) -> ParamError {
    ParamError {
        parameter: parameter.to_string(),
        problem: problem.into(),
    }
}

/// A search, validated.
#[derive(Debug, Clone)]
pub(crate) struct Search {
    /// The C-FIND identifier the parameters stand for.
    pub(crate) identifier: InMemDicomObject,
    /// Matches to skip.
    pub(crate) offset: usize,
    /// Matches to return at most.
    pub(crate) limit: usize,
    /// Each matching parameter's name and the tag path it names, to name the parameter
    /// when the query refuses a key.
    pub(crate) keys: Vec<(String, Vec<Tag>)>,
}

impl Search {
    /// The parameter whose path ends with the last of `offending` (a refused key).
    pub(crate) fn parameter_of(&self, offending: &[Tag]) -> Option<&str> {
        let last = offending.last()?;
        self.keys
            .iter()
            .find(|(_, path)| path.last() == Some(last))
            .map(|(name, _)| name.as_str())
    }
}

/// One attribute of a path: its tag and dictionary VR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Attribute {
    tag: Tag,
    vr: VR,
}

/// A keyword or `ggggeeee`, through the standard dictionary.
fn attribute(name: &str) -> Option<Attribute> {
    let dict = StandardDataDictionary;
    let hex = |s: &str| u16::from_str_radix(s, 16).ok();
    let (tag, entry) = if name.len() == 8 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        let tag = Tag(hex(&name[..4])?, hex(&name[4..])?);
        (tag, dict.by_tag(tag)?)
    } else {
        let entry = dict.by_name(name)?;
        (entry.tag_range().inner(), entry)
    };
    Some(Attribute {
        tag,
        vr: entry.vr().relaxed(),
    })
}

/// A dotted attribute path; every attribute but the last must be a sequence.
fn path(parameter: &str, text: &str) -> Result<Vec<Attribute>, ParamError> {
    let mut out = Vec::new();
    let parts: Vec<&str> = text.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let a = attribute(part).ok_or_else(|| {
            refuse(
                parameter,
                format!("{part:?} is not a DICOM keyword or tag (ggggeeee) we know"),
            )
        })?;
        if i + 1 < parts.len() && a.vr != VR::SQ {
            return Err(refuse(
                parameter,
                format!("{part:?} is not a sequence: only a sequence may be followed by '.'"),
            ));
        }
        out.push(a);
    }
    Ok(out)
}

/// A key of the identifier being built.
#[derive(Debug, Clone)]
enum Key {
    /// A primitive attribute: its value (`None`: zero-length, a return key).
    Value(VR, Option<String>),
    /// A sequence with one item.
    Sequence(Node),
}

/// One data set of the identifier being built.
#[derive(Debug, Clone, Default)]
struct Node(BTreeMap<Tag, Key>);

impl Node {
    /// Puts `path` into this node: a match (`value` is `Some`) replaces a return key; a
    /// return key never replaces a match. Errors name `parameter`.
    fn put(
        &mut self,
        parameter: &str,
        path: &[Attribute],
        value: Option<String>,
    ) -> Result<(), ParamError> {
        let Some((first, rest)) = path.split_first() else {
            return Ok(());
        };
        if first.vr == VR::SQ {
            if rest.is_empty() && value.is_some() {
                return Err(refuse(
                    parameter,
                    "a sequence takes no value: name an attribute inside it with '.'",
                ));
            }
            let key = self
                .0
                .entry(first.tag)
                .or_insert_with(|| Key::Sequence(Node::default()));
            return match key {
                // The step sequence named whole: every step attribute, key by key, so
                // that matching keys and default keys can stand beside them.
                Key::Sequence(item)
                    if rest.is_empty() && first.tag == tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE =>
                {
                    item.put_object(&MwlQuery::every_step_attribute_item());
                    Ok(())
                }
                Key::Sequence(item) => item.put(parameter, rest, value),
                Key::Value(..) => Err(refuse(parameter, "not a sequence")),
            };
        }
        match (self.0.get(&first.tag), &value) {
            (Some(Key::Value(_, Some(_))), Some(_)) => {
                Err(refuse(parameter, "this attribute is matched twice"))
            }
            (Some(Key::Value(_, Some(_))), None) => Ok(()),
            _ => {
                self.0.insert(first.tag, Key::Value(first.vr, value));
                Ok(())
            }
        }
    }

    /// Puts every attribute of `obj` (return keys, zero-length) into this node.
    fn put_object(&mut self, obj: &InMemDicomObject) {
        for e in obj {
            let key = match e.items() {
                Some(items) => {
                    let mut item = Node::default();
                    if let Some(first) = items.first() {
                        item.put_object(first);
                    }
                    Key::Sequence(item)
                }
                None => Key::Value(e.vr(), None),
            };
            match (self.0.get_mut(&e.tag()), key) {
                (Some(Key::Sequence(mine)), Key::Sequence(theirs)) => {
                    for (tag, k) in theirs.0 {
                        mine.0.entry(tag).or_insert(k);
                    }
                }
                (Some(_), _) => {}
                (None, key) => {
                    self.0.insert(e.tag(), key);
                }
            }
        }
    }

    fn into_object(self) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        for (tag, key) in self.0 {
            match key {
                Key::Value(vr, value) => {
                    let v = match value {
                        // A backslash separates values, as in a C-FIND identifier.
                        Some(v) if !v.is_empty() => {
                            PrimitiveValue::Strs(v.split('\\').map(String::from).collect())
                        }
                        _ => PrimitiveValue::Empty,
                    };
                    obj.put(DataElement::new(tag, vr, v));
                }
                Key::Sequence(item) => {
                    obj.put(DataElement::new(
                        tag,
                        VR::SQ,
                        DataSetSequence::from(vec![item.into_object()]),
                    ));
                }
            }
        }
        obj
    }
}

/// A whole number parameter.
fn number(parameter: &str, value: &str) -> Result<usize, ParamError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| refuse(parameter, format!("{value:?} is not a whole number")))
}

/// Validates the query parameters of a search, in the order given.
pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Search, ParamError> {
    let mut offset = 0;
    let mut limit = DEFAULT_LIMIT;
    let mut all = false;
    let mut includes: Vec<(String, Vec<Attribute>)> = Vec::new();
    let mut matches: Vec<(String, Vec<Attribute>, String)> = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "offset" => {
                offset = number(name, value)?;
                if offset > MAX_OFFSET {
                    return Err(refuse(name, format!("offset reaches {MAX_OFFSET} at most")));
                }
            }
            "limit" => {
                limit = number(name, value)?;
                if !(1..=MAX_LIMIT).contains(&limit) {
                    return Err(refuse(name, format!("use 1 to {MAX_LIMIT}")));
                }
            }
            "fuzzymatching" => {
                if value != "true" && value != "false" {
                    return Err(refuse(name, "use true or false"));
                }
            }
            "includefield" => {
                for item in value.split(',').map(str::trim) {
                    if item == "all" {
                        all = true;
                    } else if item.is_empty() {
                        return Err(refuse(name, "an empty attribute"));
                    } else {
                        let p = path(&format!("includefield={item}"), item)?;
                        includes.push((name.clone(), p));
                    }
                }
            }
            _ => {
                let p = path(name, name)?;
                if p.first()
                    .is_some_and(|a| a.tag == tags::SPECIFIC_CHARACTER_SET)
                {
                    return Err(refuse(
                        name,
                        "a search's values are Unicode (UTF-8 in the URL); it takes no \
                         character set",
                    ));
                }
                let value = match p.last() {
                    Some(a) if a.vr == VR::UI => value.replace(',', "\\"),
                    _ => value.clone(),
                };
                matches.push((name.clone(), p, value));
            }
        }
    }
    let mut root = Node::default();
    let mut keys = Vec::new();
    for (name, p, value) in matches {
        keys.push((name.clone(), p.iter().map(|a| a.tag).collect()));
        let value = if p.last().is_some_and(|a| a.vr == VR::SQ) && value.is_empty() {
            None
        } else {
            Some(value)
        };
        root.put(&name, &p, value)?;
    }
    for (name, p) in includes {
        root.put(&name, &p, None)?;
    }
    if all {
        let mut every = MwlQuery::every_attribute_identifier();
        every.put(DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![MwlQuery::every_step_attribute_item()]),
        ));
        root.put_object(&every);
    } else {
        root.put_object(&default_identifier());
    }
    Ok(Search {
        identifier: root.into_object(),
        offset,
        limit,
        keys,
    })
}

/// The return keys without `includefield=all`: [`DEFAULT_TOP`], and [`DEFAULT_STEP`] in
/// one step item.
fn default_identifier() -> InMemDicomObject {
    let dict = StandardDataDictionary;
    let vr = |tag: Tag| dict.by_tag(tag).map_or(VR::UN, |e| e.vr().relaxed());
    let empty = |tag: Tag| DataElement::new(tag, vr(tag), PrimitiveValue::Empty);
    let mut step = InMemDicomObject::new_empty();
    for tag in DEFAULT_STEP {
        step.put(empty(tag));
    }
    let mut obj = InMemDicomObject::new_empty();
    for tag in DEFAULT_TOP {
        obj.put(empty(tag));
    }
    obj.put(DataElement::new(
        tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![step]),
    ));
    obj
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn step(obj: &InMemDicomObject) -> InMemDicomObject {
        obj.get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            .and_then(|e| e.items())
            .and_then(|items| items.first().cloned())
            .unwrap_or_else(InMemDicomObject::new_empty)
    }

    fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
        obj.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.to_string())
    }

    #[test]
    fn the_b36_example_becomes_a_step_item_with_three_keys() {
        let s = parse(&pairs(&[
            ("00400100.00400010", "CTSCANNER"),
            ("00400100.00400002", "20250101"),
            ("00400100.00080060", "CT"),
            ("limit", "20"),
            ("offset", "0"),
            ("includefield", "all"),
        ]))
        .expect("valid");
        assert_eq!((s.offset, s.limit), (0, 20));
        let item = step(&s.identifier);
        assert_eq!(
            text(&item, tags::SCHEDULED_STATION_NAME).as_deref(),
            Some("CTSCANNER")
        );
        assert_eq!(text(&item, tags::MODALITY).as_deref(), Some("CT"));
        assert_eq!(
            text(&item, tags::SCHEDULED_PROCEDURE_STEP_START_DATE).as_deref(),
            Some("20250101")
        );
        // includefield=all: every top-level key we hold is asked, and every step key
        // beside the three matched.
        assert!(s.identifier.get(tags::PATIENT_WEIGHT).is_some());
        for tag in [
            tags::SCHEDULED_PROCEDURE_STEP_END_TIME,
            tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE,
            tags::SCHEDULED_PROCEDURE_STEP_STATUS,
        ] {
            assert!(item.get(tag).is_some(), "{tag}");
        }
    }

    #[test]
    fn keywords_and_tags_name_the_same_key() {
        let a = parse(&pairs(&[("ScheduledProcedureStepSequence.Modality", "MR")])).expect("valid");
        let b = parse(&pairs(&[("00400100.00080060", "MR")])).expect("valid");
        assert_eq!(
            text(&step(&a.identifier), tags::MODALITY).as_deref(),
            Some("MR")
        );
        assert_eq!(
            text(&step(&b.identifier), tags::MODALITY).as_deref(),
            Some("MR")
        );
        // Default return keys are there, empty.
        assert_eq!(
            a.identifier.get(tags::PATIENT_NAME).map(|e| matches!(
                e.value(),
                dicom_core::value::Value::Primitive(PrimitiveValue::Empty)
            )),
            Some(true)
        );
        assert!(a.identifier.get(tags::PATIENT_WEIGHT).is_none());
    }

    #[test]
    fn includefield_adds_return_keys_without_replacing_a_match() {
        let s = parse(&pairs(&[
            ("PatientID", "P1"),
            ("includefield", "PatientWeight,PatientID"),
            ("includefield", "00400100.00400011"),
        ]))
        .expect("valid");
        assert_eq!(text(&s.identifier, tags::PATIENT_ID).as_deref(), Some("P1"));
        assert!(s.identifier.get(tags::PATIENT_WEIGHT).is_some());
        assert!(
            step(&s.identifier)
                .get(tags::SCHEDULED_PROCEDURE_STEP_LOCATION)
                .is_some()
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        for (q, named) in [
            (vec![("NoSuchKeyword", "x")], "NoSuchKeyword"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "5001")], "limit"),
            (vec![("limit", "ten")], "limit"),
            (vec![("offset", "-1")], "offset"),
            (vec![("fuzzymatching", "maybe")], "fuzzymatching"),
            (vec![("PatientID.Modality", "MR")], "PatientID.Modality"),
            (
                vec![("ScheduledProcedureStepSequence", "x")],
                "ScheduledProcedureStepSequence",
            ),
            (vec![("includefield", "Bogus")], "includefield=Bogus"),
            (vec![("PatientID", "a"), ("PatientID", "b")], "PatientID"),
            (vec![("00080005", "ISO_IR 100")], "00080005"),
        ] {
            let e = parse(&pairs(&q)).expect_err("refused");
            assert_eq!(e.parameter, named, "{q:?}");
        }
    }

    #[test]
    fn uid_lists_take_commas() {
        let s = parse(&pairs(&[("StudyInstanceUID", "1.2.3,1.2.4")])).expect("valid");
        assert_eq!(
            s.identifier
                .get(tags::STUDY_INSTANCE_UID)
                .and_then(|e| e.to_multi_str().ok())
                .map(|v| v.to_vec()),
            Some(vec!["1.2.3".to_string(), "1.2.4".to_string()])
        );
    }
}
