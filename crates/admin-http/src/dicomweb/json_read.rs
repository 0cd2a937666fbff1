//! Reading a request body in the DICOM JSON model (PS3.18 Annex F.2) into a data set: the
//! inverse of [`json`](super::json), for the MPPS create and update bodies.
//!
//! - keys are eight hex digits; each attribute needs a known `vr`;
//! - no `Value` (or `[]`) is a zero-length attribute; `null` among values is an empty one;
//! - PN values are objects: `Alphabetic`, `Ideographic`, `Phonetic` joined by `=`;
//! - IS and DS may be numbers or strings; US, SS, UL, SL, FL, FD and their 64-bit kin must be
//!   numbers; AT is eight hex digits;
//! - SQ values are arrays of objects, read the same way, nesting at most 32 levels;
//! - `InlineBinary` and `BulkDataURI` are refused: an MPPS carries no bulk data.
//!
//! Every refusal names the attribute and the problem; the handler answers it with 400.

use std::str::FromStr;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_object::InMemDicomObject;
use serde_json::{Map, Value};

/// Sequences nest no deeper than this (as on the DIMSE side).
const MAX_DEPTH: usize = 32;

/// Why a body is not a DICOM JSON data set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub(crate) struct JsonReadError {
    /// The attribute's key (`00400270/0/00400009`), or `body`.
    pub(crate) at: String,
    /// What is wrong with it.
    pub(crate) problem: String,
}

/// Reads `body`: one JSON object, or an array holding exactly one.
pub(crate) fn read(body: &[u8]) -> Result<InMemDicomObject, JsonReadError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| fail("body", e.to_string()))?;
    let object = match value {
        Value::Object(o) => o,
        Value::Array(mut a) if a.len() == 1 => match a.pop() {
            Some(Value::Object(o)) => o,
            _ => return Err(fail("body", "the array must hold one data set object")),
        },
        _ => return Err(fail("body", "expected a data set object")),
    };
    data_set(&object, "", 0)
}

fn fail(at: &str, problem: impl Into<String>) -> JsonReadError {
    JsonReadError {
        at: at.to_string(),
        problem: problem.into(),
    }
}

fn data_set(
    object: &Map<String, Value>,
    path: &str,
    depth: usize,
) -> Result<InMemDicomObject, JsonReadError> {
    if depth > MAX_DEPTH {
        return Err(fail(
            path,
            format!("sequences nest deeper than {MAX_DEPTH}"),
        ));
    }
    let mut out = InMemDicomObject::new_empty();
    for (key, attribute) in object {
        let at = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}/{key}")
        };
        let tag = tag_of(key).ok_or_else(|| fail(&at, "not a tag (eight hex digits)"))?;
        let Value::Object(attribute) = attribute else {
            return Err(fail(&at, "an attribute must be an object"));
        };
        let vr = attribute
            .get("vr")
            .and_then(Value::as_str)
            .and_then(|v| VR::from_str(v).ok())
            .ok_or_else(|| fail(&at, "missing or unknown \"vr\""))?;
        if attribute.contains_key("InlineBinary") || attribute.contains_key("BulkDataURI") {
            return Err(fail(
                &at,
                "bulk data (InlineBinary, BulkDataURI) is not accepted",
            ));
        }
        let values: &[Value] = match attribute.get("Value") {
            None => &[],
            Some(Value::Array(a)) => a,
            Some(_) => return Err(fail(&at, "\"Value\" must be an array")),
        };
        if vr == VR::SQ {
            let mut items = Vec::with_capacity(values.len());
            for (i, item) in values.iter().enumerate() {
                let item_at = format!("{at}/{i}");
                let Value::Object(item) = item else {
                    return Err(fail(&item_at, "a sequence item must be an object"));
                };
                items.push(data_set(item, &item_at, depth + 1)?);
            }
            out.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
        } else {
            out.put(DataElement::new(tag, vr, primitive(vr, values, &at)?));
        }
    }
    Ok(out)
}

fn tag_of(key: &str) -> Option<Tag> {
    if key.len() != 8 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let group = u16::from_str_radix(&key[..4], 16).ok()?;
    let element = u16::from_str_radix(&key[4..], 16).ok()?;
    Some(Tag(group, element))
}

fn primitive(vr: VR, values: &[Value], at: &str) -> Result<PrimitiveValue, JsonReadError> {
    if values.is_empty() {
        return Ok(PrimitiveValue::Empty);
    }
    macro_rules! numbers {
        ($variant:ident, $conv:expr) => {{
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                out.push(
                    $conv(v)
                        .ok_or_else(|| fail(at, format!("{vr} values must be numbers in range")))?,
                );
            }
            Ok(PrimitiveValue::$variant(out.into_iter().collect()))
        }};
    }
    let unsigned = |v: &Value| v.as_u64();
    let signed = |v: &Value| v.as_i64();
    match vr {
        VR::US => numbers!(U16, |v| unsigned(v).and_then(|n| u16::try_from(n).ok())),
        VR::UL => numbers!(U32, |v| unsigned(v).and_then(|n| u32::try_from(n).ok())),
        VR::UV => numbers!(U64, unsigned),
        VR::SS => numbers!(I16, |v| signed(v).and_then(|n| i16::try_from(n).ok())),
        VR::SL => numbers!(I32, |v| signed(v).and_then(|n| i32::try_from(n).ok())),
        VR::SV => numbers!(I64, signed),
        // JSON numbers are f64; an FL keeps the nearest f32 (`as` rounds).
        VR::FL => numbers!(F32, |v: &Value| v.as_f64().map(|n| n as f32)),
        VR::FD => numbers!(F64, |v: &Value| v.as_f64()),
        VR::AT => numbers!(Tags, |v: &Value| v.as_str().and_then(tag_of)),
        VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::UN => Err(fail(
            at,
            format!("{vr} takes bulk data, which is not accepted"),
        )),
        _ => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                out.push(text(vr, v).ok_or_else(|| {
                    fail(
                        at,
                        if vr == VR::PN {
                            "PN values must be objects with Alphabetic, Ideographic or Phonetic strings".to_string()
                        } else {
                            format!("{vr} values must be strings")
                        },
                    )
                })?);
            }
            Ok(PrimitiveValue::Strs(out.into_iter().collect()))
        }
    }
}

/// One text value; `null` is empty. IS and DS may be JSON numbers.
fn text(vr: VR, v: &Value) -> Option<String> {
    match (vr, v) {
        (_, Value::Null) => Some(String::new()),
        (VR::PN, Value::Object(groups)) => {
            let group = |k: &str| match groups.get(k) {
                None | Some(Value::Null) => Some(""),
                Some(Value::String(s)) => Some(s.as_str()),
                Some(_) => None,
            };
            let parts = [
                group("Alphabetic")?,
                group("Ideographic")?,
                group("Phonetic")?,
            ];
            let used = parts
                .iter()
                .rposition(|p| !p.is_empty())
                .map_or(0, |i| i + 1);
            Some(parts[..used].join("="))
        }
        (VR::PN, _) => None,
        (VR::IS | VR::DS, Value::Number(n)) => Some(n.to_string()),
        (_, Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use dicom_dictionary_std::tags;

    use super::*;

    #[test]
    fn reads_the_model() {
        let body = br#"{
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
            "00400252": {"vr": "CS", "Value": ["IN PROGRESS"]},
            "00201208": {"vr": "IS", "Value": [3]},
            "00280010": {"vr": "US", "Value": [512]},
            "00080050": {"vr": "SH"},
            "00400270": {"vr": "SQ", "Value": [{"00400009": {"vr": "SH", "Value": ["SPS1"]}}]}
        }"#;
        let obj = read(body).expect("reads");
        let s = |t| {
            obj.get(t)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.to_string())
        };
        assert_eq!(s(tags::PATIENT_NAME).as_deref(), Some("Doe^Jane"));
        assert_eq!(
            s(tags::PERFORMED_PROCEDURE_STEP_STATUS).as_deref(),
            Some("IN PROGRESS")
        );
        assert_eq!(
            s(tags::NUMBER_OF_STUDY_RELATED_INSTANCES).as_deref(),
            Some("3")
        );
        assert_eq!(
            obj.get(tags::ROWS).and_then(|e| e.to_int::<u16>().ok()),
            Some(512)
        );
        assert_eq!(s(tags::ACCESSION_NUMBER).as_deref(), Some(""));
        let items = obj
            .get(tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE)
            .and_then(|e| e.items())
            .expect("sequence");
        assert_eq!(items.len(), 1);
    }

    #[test]
    fn refusals_name_the_attribute() {
        for (body, at) in [
            (&b"{"[..], "body"),
            (br#"[1]"#, "body"),
            (br#"{"0010001": {"vr": "PN"}}"#, "0010001"),
            (br#"{"00100010": {"vr": "XX"}}"#, "00100010"),
            (br#"{"00100010": {"vr": "PN", "Value": ["Doe"]}}"#, "00100010"),
            (br#"{"00280010": {"vr": "US", "Value": ["512"]}}"#, "00280010"),
            (br#"{"7FE00010": {"vr": "OB", "InlineBinary": "AAAA"}}"#, "7FE00010"),
            (
                br#"{"00400270": {"vr": "SQ", "Value": [{"00400009": {"vr": "SH", "Value": [1]}}]}}"#,
                "00400270/0/00400009",
            ),
        ] {
            let e = read(body).expect_err("refused");
            assert_eq!(e.at, at, "{e}");
        }
    }
}
