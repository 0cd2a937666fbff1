//! Response identifiers written straight to bytes (Implicit or Explicit VR Little
//! Endian), for the C-FIND hot path.
//!
//! [`super::MwlQuery::response`] builds a dicom-rs object, which the writer then walks;
//! for a large worklist that costs several microseconds per item. The keys of a response
//! are known in advance (tag order, VR, value), so they are written directly here. The
//! test below checks that dicom-rs reads these bytes back as exactly the object
//! `response` builds.

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use worklist_store::WorklistEntry;

use super::{KeyKind, MwlQuery, ResponseCharset, ReturnKey, response};

fn put_header(out: &mut Vec<u8>, tag: Tag, vr: VR, len: u32, explicit: bool) {
    out.extend_from_slice(&tag.group().to_le_bytes());
    out.extend_from_slice(&tag.element().to_le_bytes());
    if explicit {
        out.extend_from_slice(vr.to_string().as_bytes());
        if matches!(vr, VR::SQ | VR::UC) {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&len.to_le_bytes());
        } else {
            // Our other values are short (at most 64 characters): a 16-bit length fits.
            out.extend_from_slice(&(len as u16).to_le_bytes());
        }
    } else {
        out.extend_from_slice(&len.to_le_bytes());
    }
}

fn text_bytes(value: &str, charset: ResponseCharset) -> Vec<u8> {
    // `charset` was chosen because every value fits in it; UTF-8 bytes are only a
    // formality for a value that (impossibly) does not.
    charset
        .encode(value)
        .unwrap_or_else(|| value.as_bytes().to_vec())
}

fn put_value(
    out: &mut Vec<u8>,
    key: &ReturnKey,
    value: Option<&str>,
    charset: ResponseCharset,
    explicit: bool,
) {
    if key.vr == VR::SQ {
        put_header(out, key.tag, VR::SQ, 0, explicit);
        return;
    }
    let mut bytes = value.map(|v| text_bytes(v, charset)).unwrap_or_default();
    if bytes.len() % 2 == 1 {
        bytes.push(if key.vr == VR::UI { 0 } else { b' ' });
    }
    put_header(out, key.tag, key.vr, bytes.len() as u32, explicit);
    out.extend_from_slice(&bytes);
}

fn value_of(key: &ReturnKey, entry: &WorklistEntry) -> Option<String> {
    match key.kind {
        KeyKind::Field(f) => f.response_value(entry),
        KeyKind::NoValue | KeyKind::Protocol => None,
    }
}

/// Writes the Scheduled Protocol Code Sequence: one item (`item`), or none.
fn put_protocol(
    out: &mut Vec<u8>,
    item: Option<&[(ReturnKey, Option<String>)]>,
    charset: ResponseCharset,
    explicit: bool,
) {
    let tag = tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE;
    let Some(keys) = item else {
        put_header(out, tag, VR::SQ, 0, explicit);
        return;
    };
    let mut bytes = Vec::with_capacity(96);
    for (k, v) in keys {
        put_value(&mut bytes, k, v.as_deref(), charset, explicit);
    }
    put_header(out, tag, VR::SQ, bytes.len() as u32 + 8, explicit);
    out.extend_from_slice(&0xFFFEu16.to_le_bytes());
    out.extend_from_slice(&0xE000u16.to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&bytes);
}

/// Writes the response identifier for `entry` into `out` (cleared first); returns the
/// character set used (see [`super::MwlQuery::charset_used`]).
pub(super) fn encode(
    q: &MwlQuery,
    entry: &WorklistEntry,
    preferred: ResponseCharset,
    explicit: bool,
    out: &mut Vec<u8>,
) -> ResponseCharset {
    out.clear();
    let top: Vec<(&ReturnKey, Option<String>)> =
        q.top.iter().map(|k| (k, value_of(k, entry))).collect();
    let sps: Option<Vec<(&ReturnKey, Option<String>)>> = q
        .sps
        .as_ref()
        .map(|keys| keys.iter().map(|k| (k, value_of(k, entry))).collect());
    let protocol = response::protocol_item(q, entry);
    let fits = top
        .iter()
        .chain(sps.iter().flatten())
        .map(|(_, v)| v)
        .chain(protocol.iter().flatten().map(|(_, v)| v))
        .all(|v| v.as_deref().is_none_or(|v| preferred.can_represent(v)));
    let charset = if fits {
        preferred
    } else {
        ResponseCharset::Utf8
    };

    let term = charset.term();
    let mut cs = term.as_bytes().to_vec();
    if cs.len() % 2 == 1 {
        cs.push(b' ');
    }
    put_header(
        out,
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        cs.len() as u32,
        explicit,
    );
    out.extend_from_slice(&cs);

    let sequence_tag = tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE;
    let (before, after): (Vec<_>, Vec<_>) = top.iter().partition(|(k, _)| k.tag < sequence_tag);
    for (k, v) in before {
        put_value(out, k, v.as_deref(), charset, explicit);
    }
    if let Some(items) = &sps {
        let mut item = Vec::with_capacity(256);
        for (k, v) in items {
            if k.kind == KeyKind::Protocol {
                put_protocol(&mut item, protocol.as_deref(), charset, explicit);
            } else {
                put_value(&mut item, k, v.as_deref(), charset, explicit);
            }
        }
        put_header(out, sequence_tag, VR::SQ, item.len() as u32 + 8, explicit);
        out.extend_from_slice(&0xFFFEu16.to_le_bytes());
        out.extend_from_slice(&0xE000u16.to_le_bytes());
        out.extend_from_slice(&(item.len() as u32).to_le_bytes());
        out.extend_from_slice(&item);
    }
    for (k, v) in after {
        put_value(out, k, v.as_deref(), charset, explicit);
    }
    charset
}
