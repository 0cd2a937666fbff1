//! Response identifiers.

use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;
use worklist_store::WorklistEntry;

use super::{KeyKind, MwlQuery, ResponseCharset, ReturnKey};

/// The value each returned key carries for this entry (`None`: zero-length).
fn values<'k>(
    keys: &'k [ReturnKey],
    entry: &'k WorklistEntry,
) -> impl Iterator<Item = (&'k ReturnKey, Option<String>)> + 'k {
    keys.iter().map(move |k| {
        let v = match k.kind {
            KeyKind::Field(f) => f.response_value(entry),
            KeyKind::NoValue => None,
        };
        (k, v)
    })
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
    let fits = values(&keys, entry).all(|(_, v)| v.is_none_or(|v| preferred.can_represent(&v)));
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
            item.put(element(key, value));
        }
        obj.put(DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            Value::Sequence(DataSetSequence::from(vec![item])),
        ));
    }
    obj
}
