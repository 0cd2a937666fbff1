//! Response identifiers.

use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;
use worklist_store::WorklistEntry;

use super::fields::Field;
use super::{KeyKind, MwlQuery, ResponseCharset, ReturnKey};

/// The value each returned key carries for this entry (`None`: zero-length).
fn values<'k>(
    keys: &'k [ReturnKey],
    entry: &'k WorklistEntry,
) -> impl Iterator<Item = (&'k ReturnKey, Option<String>)> + 'k {
    keys.iter().map(move |k| {
        let v = match k.kind {
            KeyKind::Field(f) => f.response_value(entry),
            KeyKind::NoValue | KeyKind::Protocol => None,
        };
        (k, v)
    })
}

/// The protocol code item sent for `entry`: the item's keys with their values, in tag
/// order, with Long Code Value added when Code Value is asked and the code is longer
/// than SH allows (PS3.3 8.8). `None` when the entry has no protocol code or the query
/// does not ask for it: the sequence is then sent with no item.
pub(super) fn protocol_item(
    q: &MwlQuery,
    entry: &WorklistEntry,
) -> Option<Vec<(ReturnKey, Option<String>)>> {
    let keys = q.protocol.as_deref()?;
    entry.protocol_code_value.as_ref()?;
    let mut out: Vec<(ReturnKey, Option<String>)> =
        values(keys, entry).map(|(k, v)| (*k, v)).collect();
    let asks_code = keys
        .iter()
        .any(|k| k.kind == KeyKind::Field(Field::ProtocolCodeValue));
    let asks_long = keys.iter().any(|k| k.tag == tags::LONG_CODE_VALUE);
    let long = Field::ProtocolLongCodeValue;
    if asks_code
        && !asks_long
        && let Some(v) = long.response_value(entry)
    {
        let key = ReturnKey {
            tag: long.tag(),
            vr: long.vr(),
            kind: KeyKind::Field(long),
        };
        out.push((key, Some(v)));
    }
    out.sort_by_key(|(k, _)| k.tag);
    Some(out)
}

fn all_keys(q: &MwlQuery) -> impl Iterator<Item = &ReturnKey> {
    q.top.iter().chain(q.sps.iter().flatten())
}

pub(super) fn charset_for(
    q: &MwlQuery,
    entry: &WorklistEntry,
    preferred: ResponseCharset,
) -> ResponseCharset {
    let keys: Vec<ReturnKey> = all_keys(q).copied().collect();
    let protocol = protocol_item(q, entry).unwrap_or_default();
    let fits = values(&keys, entry)
        .map(|(_, v)| v)
        .chain(protocol.into_iter().map(|(_, v)| v))
        .all(|v| v.is_none_or(|v| preferred.can_represent(&v)));
    if fits {
        preferred
    } else {
        ResponseCharset::Utf8
    }
}

fn element(key: &ReturnKey, value: Option<String>) -> InMemElement {
    match (key.vr, value) {
        (VR::SQ, _) => DataElement::new(
            key.tag,
            VR::SQ,
            Value::Sequence(DataSetSequence::from(Vec::<InMemDicomObject>::new())),
        ),
        (vr, Some(v)) => DataElement::new(key.tag, vr, PrimitiveValue::from(v)),
        (vr, None) => DataElement::new(key.tag, vr, PrimitiveValue::Empty),
    }
}

/// The Scheduled Protocol Code Sequence for `entry`: one item, or none.
fn protocol_element(q: &MwlQuery, entry: &WorklistEntry) -> InMemElement {
    let items: Vec<InMemDicomObject> = protocol_item(q, entry)
        .map(|keys| {
            let mut item = InMemDicomObject::new_empty();
            for (key, value) in keys {
                item.put(element(&key, value));
            }
            item
        })
        .into_iter()
        .collect();
    DataElement::new(
        tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE,
        VR::SQ,
        Value::Sequence(DataSetSequence::from(items)),
    )
}

pub(super) fn build(
    q: &MwlQuery,
    entry: &WorklistEntry,
    preferred: ResponseCharset,
) -> InMemDicomObject {
    let charset = charset_for(q, entry, preferred);
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        PrimitiveValue::from(charset.term()),
    ));
    for (key, value) in values(&q.top, entry) {
        obj.put(element(key, value));
    }
    if let Some(sps_keys) = &q.sps {
        let mut item = InMemDicomObject::new_empty();
        for (key, value) in values(sps_keys, entry) {
            if key.kind == KeyKind::Protocol {
                item.put(protocol_element(q, entry));
            } else {
                item.put(element(key, value));
            }
        }
        obj.put(DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            Value::Sequence(DataSetSequence::from(vec![item])),
        ));
    }
    obj
}
