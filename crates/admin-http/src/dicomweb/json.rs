//! A data set in the DICOM JSON model (PS3.18 Annex F.2): an object keyed by the tag's
//! eight upper-case hex digits, each attribute `{"vr": ..., "Value": [...]}`.
//!
//! - a zero-length attribute, and a sequence without items, have no `Value` (F.2.5);
//!   an empty value among several is `null`;
//! - PN values are objects with `Alphabetic`, `Ideographic` and `Phonetic` (only the
//!   component groups present);
//! - IS, DS and the binary numbers are JSON numbers (a DS or IS that does not read as one
//!   stays a string); AT is eight hex digits; DA, TM, DT and other text are strings,
//!   without DICOM padding;
//! - sequences are arrays of objects; OB, OW and the other bulk VRs are `InlineBinary`
//!   (base64).
//!
//! Written here rather than with dicom-rs' `dicom-json` 0.10.1, which writes a sequence
//! without items as `"Value": []` and empty values among several as `""`, and would turn
//! on serde_json's `preserve_order` for the whole workspace.

use base64::Engine;
use dicom_core::header::Header;
use dicom_core::value::Value as DicomValue;
use dicom_core::{PrimitiveValue, VR};
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Number, Value, json};

/// A data set in the DICOM JSON model, written by serde: attributes in tag order, each
/// with `vr` first, as PS3.18's examples show them.
pub(crate) struct DataSet<'a>(pub(crate) &'a InMemDicomObject);

impl Serialize for DataSet<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for e in self.0 {
            let tag = e.tag();
            map.serialize_entry(
                &format!("{:04X}{:04X}", tag.group(), tag.element()),
                &Attribute(e),
            )?;
        }
        map.end()
    }
}

/// One attribute: `{"vr": ..., "Value": [...]}`.
struct Attribute<'a>(&'a InMemElement);

impl Serialize for Attribute<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("vr", e.vr().to_string())?;
        match e.value() {
            DicomValue::Sequence(seq) => {
                if !seq.items().is_empty() {
                    let items: Vec<DataSet<'_>> = seq.items().iter().map(DataSet).collect();
                    map.serialize_entry("Value", &items)?;
                }
            }
            DicomValue::Primitive(PrimitiveValue::Empty) => {}
            DicomValue::Primitive(v) => {
                if let Some((key, value)) = primitive(e.vr(), v) {
                    map.serialize_entry(key, &value)?;
                }
            }
            // Never in a worklist response.
            DicomValue::PixelSequence(_) => {}
        }
        map.end()
    }
}

/// A data set as a [`Value`] (tests).
#[cfg(test)]
fn dataset(obj: &InMemDicomObject) -> Value {
    serde_json::to_value(DataSet(obj)).unwrap_or(Value::Null)
}

/// The `Value` (or `InlineBinary`) of a primitive attribute; `None` when it holds no value.
fn primitive(vr: VR, v: &PrimitiveValue) -> Option<(&'static str, Value)> {
    match vr {
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN => {
            let bytes = v.to_bytes();
            if bytes.is_empty() {
                return None;
            }
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            return Some(("InlineBinary", Value::String(text)));
        }
        _ => {}
    }
    let values: Vec<String> = match vr {
        // One value, whatever it holds (a backslash is text there).
        VR::LT | VR::ST | VR::UT | VR::UR => vec![v.to_str().into_owned()],
        _ => v
            .to_multi_str()
            .iter()
            .flat_map(|s| s.split('\\'))
            .map(str::to_string)
            .collect(),
    };
    let values: Vec<Value> = values.iter().map(|s| one(vr, s)).collect();
    if values.iter().all(Value::is_null) {
        return None;
    }
    Some(("Value", Value::Array(values)))
}

/// One value of `vr`; `null` when empty.
fn one(vr: VR, raw: &str) -> Value {
    let s = match vr {
        // Leading spaces are significant there.
        VR::LT | VR::ST | VR::UT => raw.trim_end_matches([' ', '\0']),
        _ => raw.trim_matches([' ', '\0']),
    };
    if s.is_empty() {
        return Value::Null;
    }
    match vr {
        VR::PN => person_name(s),
        VR::IS | VR::SS | VR::SL | VR::SV | VR::US | VR::UL | VR::UV => s
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| s.parse::<u64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(s.into())),
        VR::DS | VR::FL | VR::FD => s
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(s.into()), Value::Number),
        _ => Value::String(s.into()),
    }
}

/// A PN value: its component groups (`=`-separated) by name, empty ones left out.
fn person_name(s: &str) -> Value {
    let mut name = Map::new();
    for (group, key) in s.split('=').zip(["Alphabetic", "Ideographic", "Phonetic"]) {
        if !group.is_empty() {
            name.insert(key.into(), Value::String(group.into()));
        }
    }
    if name.is_empty() {
        return json!({});
    }
    Value::Object(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::DataElement;
    use dicom_core::value::DataSetSequence;
    use dicom_dictionary_std::tags;

    #[test]
    fn the_f2_model() {
        let mut step = InMemDicomObject::new_empty();
        step.put(DataElement::new(
            tags::MODALITY,
            VR::CS,
            PrimitiveValue::from("MR"),
        ));
        step.put(DataElement::new(
            tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(Vec::<InMemDicomObject>::new()),
        ));
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::PATIENT_NAME,
            VR::PN,
            PrimitiveValue::from("Doe^Jane "),
        ));
        obj.put(DataElement::new(
            tags::PATIENT_ID,
            VR::LO,
            PrimitiveValue::Empty,
        ));
        obj.put(DataElement::new(
            tags::PATIENT_WEIGHT,
            VR::DS,
            PrimitiveValue::from("72.5"),
        ));
        obj.put(DataElement::new(
            dicom_core::Tag(0x0010, 0x1000), // OtherPatientIDs (retired)
            VR::LO,
            PrimitiveValue::Strs(["A".to_string(), String::new()].into_iter().collect()),
        ));
        obj.put(DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![step]),
        ));
        assert_eq!(
            dataset(&obj),
            json!({
                "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
                "00100020": {"vr": "LO"},
                "00101000": {"vr": "LO", "Value": ["A", null]},
                "00101030": {"vr": "DS", "Value": [72.5]},
                "00400100": {"vr": "SQ", "Value": [{
                    "00080060": {"vr": "CS", "Value": ["MR"]},
                    "00400008": {"vr": "SQ"},
                }]},
            })
        );
    }

    #[test]
    fn name_groups() {
        assert_eq!(
            person_name("Wang^XiaoDong=王^小东"),
            json!({"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小东"})
        );
        assert_eq!(
            person_name("=^=ヤマダ"),
            json!({"Ideographic": "^", "Phonetic": "ヤマダ"})
        );
    }
}
