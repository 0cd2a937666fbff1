//! Response identifiers written straight to bytes (Implicit or Explicit VR Little
//! Endian), for the C-FIND hot path.
//!
//! [`super::MwlQuery::response`] builds a dicom-rs object, which the writer then walks;
//! for a large worklist that costs several microseconds per item. The keys of a response
//! are known in advance (tag order, VR, value), so they are written directly here. The
//! test below checks that dicom-rs reads these bytes back as exactly the object
//! `response` builds.

use std::borrow::Cow;

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use jiff::civil::{Date, Time};
use worklist_store::{WorklistEntry, format_da, format_tm};

use super::fields::Field;
use super::{KeyKind, MwlQuery, ResponseCharset, ReturnKey, response};

fn put_header(out: &mut Vec<u8>, tag: Tag, vr: VR, len: u32, explicit: bool) {
    out.extend_from_slice(&tag.group().to_le_bytes());
    out.extend_from_slice(&tag.element().to_le_bytes());
    if explicit {
        out.extend_from_slice(&vr.to_bytes());
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

/// Writes the element of `key` with its value (`None`: zero-length), padded to even
/// length. Text is copied as it is when the set writes it as UTF-8 does (every set we
/// write is ASCII-compatible), and converted otherwise. Returns false, having written
/// nothing, when `charset` cannot represent the value.
#[must_use]
fn put_value(
    out: &mut Vec<u8>,
    key: &ReturnKey,
    value: Option<&str>,
    charset: ResponseCharset,
    explicit: bool,
) -> bool {
    if key.vr == VR::SQ {
        put_header(out, key.tag, VR::SQ, 0, explicit);
        return true;
    }
    let converted;
    let bytes: &[u8] = match value {
        None => &[],
        Some(v) if charset == ResponseCharset::Utf8 || v.is_ascii() => v.as_bytes(),
        Some(v) => match charset
            .can_represent(v)
            .then(|| charset.encode(v))
            .flatten()
        {
            Some(c) => {
                converted = c;
                &converted
            }
            None => return false,
        },
    };
    let odd = bytes.len() % 2 == 1;
    put_header(
        out,
        key.tag,
        key.vr,
        (bytes.len() + usize::from(odd)) as u32,
        explicit,
    );
    out.extend_from_slice(bytes);
    if odd {
        out.push(if key.vr == VR::UI { 0 } else { b' ' });
    }
    true
}

/// A value sent for a key: borrowed from the entry, or a date or time written on the
/// stack (the SPS start and end are in every step item: formatting them into new strings
/// was a fifth of the work of encoding an entry).
enum Sent<'e> {
    Text(Cow<'e, str>),
    Digits(Digits),
}

impl Sent<'_> {
    fn as_str(&self) -> &str {
        match self {
            Sent::Text(t) => t,
            Sent::Digits(d) => d.as_str(),
        }
    }
}

/// A DICOM DA (`YYYYMMDD`) or TM (`HHMMSS`) value, on the stack.
struct Digits {
    bytes: [u8; 8],
    len: usize,
}

impl Digits {
    /// `parts`, each zero-padded to its width; `None` when one does not fit (a year
    /// before 0 or after 9999).
    fn new(parts: &[(i32, u32)]) -> Option<Digits> {
        let mut d = Digits {
            bytes: [b'0'; 8],
            len: 0,
        };
        for &(value, width) in parts {
            let mut v = u32::try_from(value).ok()?;
            if v >= 10u32.pow(width) {
                return None;
            }
            let end = d.len + width as usize;
            for at in (d.len..end).rev() {
                // One decimal digit: fits a u8.
                d.bytes[at] = b'0' + (v % 10) as u8;
                v /= 10;
            }
            d.len = end;
        }
        Some(d)
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits were written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// The DA form of `d`, as [`worklist_store::format_da`] writes it.
fn da(d: Date) -> Sent<'static> {
    match Digits::new(&[
        (d.year().into(), 4),
        (d.month().into(), 2),
        (d.day().into(), 2),
    ]) {
        Some(digits) => Sent::Digits(digits),
        None => Sent::Text(Cow::Owned(format_da(d))),
    }
}

/// The TM form of `t`, as [`worklist_store::format_tm`] writes it.
fn tm(t: Time) -> Sent<'static> {
    match Digits::new(&[
        (t.hour().into(), 2),
        (t.minute().into(), 2),
        (t.second().into(), 2),
    ]) {
        Some(digits) => Sent::Digits(digits),
        None => Sent::Text(Cow::Owned(format_tm(t))),
    }
}

/// The value sent for `key`, borrowed from the entry where it can be.
fn value_of<'e>(key: &ReturnKey, entry: &'e WorklistEntry) -> Option<Sent<'e>> {
    match key.kind {
        KeyKind::Field(Field::SpsStartDate) => Some(da(entry.start.date())),
        KeyKind::Field(Field::SpsStartTime) => Some(tm(entry.start.time())),
        KeyKind::Field(Field::SpsEndDate) => entry.end.map(|e| da(e.date())),
        KeyKind::Field(Field::SpsEndTime) => entry.end.map(|e| tm(e.time())),
        KeyKind::Field(Field::PatientBirthDate) => entry.patient_birth_date.map(da),
        KeyKind::Field(f) => f.response_text(entry).map(Sent::Text),
        KeyKind::NoValue | KeyKind::Protocol => None,
    }
}

/// Opens a sequence of one item of defined length: writes the sequence and item headers
/// with lengths to fill in, and returns where the lengths are for [`close_item`].
fn open_item(out: &mut Vec<u8>, tag: Tag, explicit: bool) -> (usize, usize) {
    put_header(out, tag, VR::SQ, 0, explicit);
    let sequence_length_at = out.len() - 4;
    out.extend_from_slice(&0xFFFEu16.to_le_bytes());
    out.extend_from_slice(&0xE000u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    (sequence_length_at, out.len())
}

/// Fills in the lengths of the sequence [`open_item`] opened, now that its item is
/// written.
fn close_item(out: &mut [u8], (sequence_length_at, item_start): (usize, usize)) {
    let item = (out.len() - item_start) as u32;
    out[item_start - 4..item_start].copy_from_slice(&item.to_le_bytes());
    out[sequence_length_at..sequence_length_at + 4].copy_from_slice(&(item + 8).to_le_bytes());
}

/// Writes the Scheduled Protocol Code Sequence: one item (`item`), or none. False (see
/// [`put_value`]) when `charset` cannot represent one of its values.
#[must_use]
fn put_protocol(
    out: &mut Vec<u8>,
    item: Option<&[(ReturnKey, Option<String>)]>,
    charset: ResponseCharset,
    explicit: bool,
) -> bool {
    let tag = tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE;
    let Some(keys) = item else {
        put_header(out, tag, VR::SQ, 0, explicit);
        return true;
    };
    let opened = open_item(out, tag, explicit);
    for (k, v) in keys {
        if !put_value(out, k, v.as_deref(), charset, explicit) {
            return false;
        }
    }
    close_item(out, opened);
    true
}

/// Writes the response identifier for `entry` into `out` (cleared first); returns the
/// character set used (see [`super::MwlQuery::charset_used`]): `preferred`, unless one of
/// the values cannot be represented in it, and then UTF-8, the response written again.
/// Allocates nothing but the formatted numbers, and the protocol item when it is asked.
pub(super) fn encode(
    q: &MwlQuery,
    entry: &WorklistEntry,
    preferred: ResponseCharset,
    explicit: bool,
    out: &mut Vec<u8>,
) -> ResponseCharset {
    let protocol = response::protocol_item(q, entry);
    // One pass: a check of every value first formatted each value twice.
    if preferred != ResponseCharset::Utf8
        && write_in(q, entry, protocol.as_deref(), preferred, explicit, out)
    {
        return preferred;
    }
    // Every value can be written in UTF-8.
    let _ = write_in(
        q,
        entry,
        protocol.as_deref(),
        ResponseCharset::Utf8,
        explicit,
        out,
    );
    ResponseCharset::Utf8
}

/// Writes the response identifier for `entry` in `charset` into `out` (cleared first);
/// false (`out` holding a part) when `charset` cannot represent one of its values.
#[must_use]
fn write_in(
    q: &MwlQuery,
    entry: &WorklistEntry,
    protocol: Option<&[(ReturnKey, Option<String>)]>,
    charset: ResponseCharset,
    explicit: bool,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    let term = charset.term();
    let odd = term.len() % 2 == 1;
    put_header(
        out,
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        (term.len() + usize::from(odd)) as u32,
        explicit,
    );
    out.extend_from_slice(term.as_bytes());
    if odd {
        out.push(b' ');
    }

    let put = |out: &mut Vec<u8>, k: &ReturnKey| {
        put_value(
            out,
            k,
            value_of(k, entry).as_ref().map(Sent::as_str),
            charset,
            explicit,
        )
    };
    let sequence_tag = tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE;
    for k in q.top.iter().filter(|k| k.tag < sequence_tag) {
        if !put(out, k) {
            return false;
        }
    }
    if let Some(keys) = &q.sps {
        let opened = open_item(out, sequence_tag, explicit);
        for k in keys {
            let written = if k.kind == KeyKind::Protocol {
                put_protocol(out, protocol, charset, explicit)
            } else {
                put(out, k)
            };
            if !written {
                return false;
            }
        }
        close_item(out, opened);
    }
    q.top
        .iter()
        .filter(|k| k.tag >= sequence_tag)
        .all(|k| put(out, k))
}

/// A description of everything [`encode`] takes from the query besides the entry: the
/// preferred character set, the transfer syntax and the keys of each level (tag, VR, and
/// what the key returns), so that two queries with equal shapes encode every entry to the
/// same bytes. Sections are marked so that keys cannot move between levels unnoticed.
pub(super) fn shape(q: &MwlQuery, preferred: ResponseCharset, explicit: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(u8::from(explicit));
    out.extend_from_slice(preferred.term().as_bytes());
    for (marker, keys) in [
        (b'T', Some(q.top.as_slice())),
        (b'S', q.sps.as_deref()),
        (b'P', q.protocol.as_deref()),
    ] {
        let Some(keys) = keys else {
            out.push(marker.to_ascii_lowercase());
            continue;
        };
        out.push(marker);
        out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
        for k in keys {
            out.extend_from_slice(&k.tag.group().to_le_bytes());
            out.extend_from_slice(&k.tag.element().to_le_bytes());
            out.extend_from_slice(k.vr.to_string().as_bytes());
            // A field is known by its tag at its level; the kind says whether it is one.
            out.push(match k.kind {
                KeyKind::Field(_) => b'f',
                KeyKind::NoValue => b'n',
                KeyKind::Protocol => b'p',
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    #[test]
    fn dates_and_times_are_written_as_format_da_and_format_tm_write_them() {
        for d in [
            date(2026, 12, 6),
            date(1, 1, 1),
            date(999, 10, 31),
            date(9999, 12, 31),
            date(-5, 3, 4),
            date(0, 1, 1),
        ] {
            assert_eq!(da(d).as_str(), format_da(d), "{d}");
        }
        for t in [time(0, 0, 0, 0), time(9, 5, 7, 999), time(23, 59, 59, 0)] {
            assert_eq!(tm(t).as_str(), format_tm(t), "{t}");
        }
    }
}
