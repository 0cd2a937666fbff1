//! A structural check of an encoded data set before dicom-rs decodes it.
//!
//! dicom-rs allocates the length an element announces before reading its value, so a
//! dozen bytes announcing a 2 GiB value would make it allocate 2 GiB. This walk refuses
//! any element whose announced length runs past the end of the bytes we actually hold, so
//! nothing decoded can be larger than what was received (and that is bounded by the
//! identifier size limit).

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_dictionary_std::StandardDataDictionary;

/// Undefined length.
const UNDEFINED: u32 = 0xFFFF_FFFF;
/// How deep sequences may nest.
const MAX_DEPTH: usize = 32;

/// Why a data set is refused before decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    b.get(i..i + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    b.get(i..i + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Every VR code PS3.5 defines.
const KNOWN_VRS: [&[u8]; 34] = [
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"OB",
    b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM",
    b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
];

/// The size of one value of a binary VR (1 for text and bytes).
fn binary_unit(vr: &[u8; 2]) -> u32 {
    match vr {
        b"US" | b"SS" | b"OW" => 2,
        b"UL" | b"SL" | b"FL" | b"AT" | b"OF" | b"OL" => 4,
        b"FD" | b"OD" | b"SV" | b"UV" | b"OV" => 8,
        _ => 1,
    }
}

/// The VR an implicit-VR reader gives a tag (by the dictionary; `UN` when unknown or
/// ambiguous).
fn implicit_vr(tag: Tag) -> [u8; 2] {
    match StandardDataDictionary.by_tag(tag).map(|e| e.vr()) {
        Some(VirtualVr::Exact(vr)) => {
            let s = vr.to_string();
            let b = s.as_bytes();
            if b.len() == 2 { [b[0], b[1]] } else { *b"UN" }
        }
        // Ambiguous (US or SS, OB or OW ...): the 2-byte reading is the strictest common rule.
        Some(VirtualVr::Xs) => *b"US",
        Some(VirtualVr::Ox) | Some(VirtualVr::Px) => *b"OB",
        _ => *b"UN",
    }
}

/// Whether an implicit-VR element is a sequence (by the dictionary).
fn implicit_is_sequence(tag: Tag) -> bool {
    StandardDataDictionary
        .by_tag(tag)
        .is_some_and(|e| matches!(e.vr(), VirtualVr::Exact(dicom_core::VR::SQ)))
}

/// Checks a Little Endian data set (`explicit`: Explicit VR, else Implicit VR): every
/// announced length must fit in the bytes that follow it, and sequences may not nest deeper
/// than 32 levels.
pub fn check_lengths(bytes: &[u8], explicit: bool) -> Result<(), WireError> {
    let short = |at: usize| {
        WireError(format!(
            "data set ends inside an element header at byte {at}"
        ))
    };
    let mut pos = 0usize;
    // Ends of the defined-length sequences and items we are inside, innermost last.
    let mut open: Vec<usize> = Vec::new();
    let mut undefined_depth = 0usize;
    while pos < bytes.len() {
        while open.last().is_some_and(|&end| pos >= end) {
            open.pop();
        }
        let group = u16_at(bytes, pos).ok_or_else(|| short(pos))?;
        let element = u16_at(bytes, pos + 2).ok_or_else(|| short(pos))?;
        let tag = Tag(group, element);
        if group == 0xFFFE {
            // Item, item delimiter or sequence delimiter: always a 4-byte length.
            let len = u32_at(bytes, pos + 4).ok_or_else(|| short(pos))?;
            pos += 8;
            match element {
                0xE000 if len == UNDEFINED => undefined_depth += 1,
                0xE000 => {
                    if len as usize > bytes.len() - pos {
                        return Err(WireError(format!(
                            "an item announces {len} bytes; only {} follow",
                            bytes.len() - pos
                        )));
                    }
                    open.push(pos + len as usize);
                }
                0xE00D | 0xE0DD if len != 0 => {
                    return Err(WireError(format!("delimiter {tag} has a non-zero length")));
                }
                0xE00D | 0xE0DD => undefined_depth = undefined_depth.saturating_sub(1),
                _ => return Err(WireError(format!("unknown item tag {tag}"))),
            }
        } else {
            let (len, header, is_sequence, vr_code) = if explicit {
                let vr = bytes.get(pos + 4..pos + 6).ok_or_else(|| short(pos))?;
                let code: [u8; 2] = [vr[0], vr[1]];
                if !KNOWN_VRS.contains(&&code[..]) {
                    return Err(WireError(format!(
                        "element {tag} has an unknown VR {:?}",
                        String::from_utf8_lossy(&code)
                    )));
                }
                let long = matches!(
                    vr,
                    b"OB"
                        | b"OD"
                        | b"OF"
                        | b"OL"
                        | b"OV"
                        | b"OW"
                        | b"SQ"
                        | b"SV"
                        | b"UC"
                        | b"UN"
                        | b"UR"
                        | b"UT"
                        | b"UV"
                );
                if long {
                    let len = u32_at(bytes, pos + 8).ok_or_else(|| short(pos))?;
                    (
                        len,
                        12,
                        vr == b"SQ" || (vr == b"UN" && len == UNDEFINED),
                        code,
                    )
                } else {
                    let len = u16_at(bytes, pos + 6).ok_or_else(|| short(pos))?;
                    (u32::from(len), 8, false, code)
                }
            } else {
                let len = u32_at(bytes, pos + 4).ok_or_else(|| short(pos))?;
                (
                    len,
                    8,
                    implicit_is_sequence(tag) || len == UNDEFINED,
                    implicit_vr(tag),
                )
            };
            // A binary value must hold whole numbers: a reader would otherwise go on out of
            // step and take value bytes for a header.
            let unit = binary_unit(&vr_code);
            if len != UNDEFINED && unit > 1 && len % unit != 0 {
                return Err(WireError(format!(
                    "element {tag} has {len} bytes, not a multiple of its value size {unit}"
                )));
            }
            pos += header;
            if is_sequence {
                if len == UNDEFINED {
                    undefined_depth += 1;
                } else if len as usize > bytes.len() - pos {
                    return Err(WireError(format!(
                        "sequence {tag} announces {len} bytes; only {} follow",
                        bytes.len() - pos
                    )));
                } else {
                    open.push(pos + len as usize);
                }
            } else if len == UNDEFINED {
                return Err(WireError(format!("element {tag} has an undefined length")));
            } else if len as usize > bytes.len() - pos {
                return Err(WireError(format!(
                    "element {tag} announces {len} bytes; only {} follow",
                    bytes.len() - pos
                )));
            } else {
                pos += len as usize;
            }
        }
        if open.len() + undefined_depth > MAX_DEPTH {
            return Err(WireError(format!(
                "sequences nest deeper than {MAX_DEPTH} levels"
            )));
        }
    }
    Ok(())
}

/// Decodes a data set received in transfer syntax `ts` after [`check_lengths`]; only the
/// Little Endian syntaxes we accept are supported.
pub fn decode(
    bytes: &[u8],
    ts: &dicom_encoding::TransferSyntax,
) -> Result<dicom_object::InMemDicomObject, WireError> {
    let explicit = match ts.uid().trim_end_matches('\0') {
        "1.2.840.10008.1.2" => false,
        "1.2.840.10008.1.2.1" => true,
        other => {
            return Err(WireError(format!(
                "transfer syntax {other} is not accepted"
            )));
        }
    };
    check_lengths(bytes, explicit)?;
    dicom_object::InMemDicomObject::read_dataset_with_ts(bytes, ts)
        .map_err(|e| WireError(format!("not a valid DICOM data set: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::{DataSetSequence, PrimitiveValue};
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::InMemDicomObject;
    use dicom_transfer_syntax_registry::entries::{
        EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
    };

    fn sample() -> InMemDicomObject {
        let item = InMemDicomObject::from_element_iter([
            DataElement::new(tags::MODALITY, VR::CS, PrimitiveValue::from("MR")),
            DataElement::new(
                tags::SCHEDULED_STATION_AE_TITLE,
                VR::AE,
                PrimitiveValue::Empty,
            ),
        ]);
        InMemDicomObject::from_element_iter([
            DataElement::new(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from("DOE^JOHN")),
            DataElement::new(
                tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(vec![item]),
            ),
        ])
    }

    #[test]
    fn well_formed_data_sets_pass_in_both_syntaxes() {
        for (ts, explicit) in [
            (IMPLICIT_VR_LITTLE_ENDIAN.erased(), false),
            (EXPLICIT_VR_LITTLE_ENDIAN.erased(), true),
        ] {
            let mut bytes = Vec::new();
            sample().write_dataset_with_ts(&mut bytes, &ts).unwrap();
            check_lengths(&bytes, explicit).unwrap();
            assert!(
                check_lengths(&bytes[..bytes.len() - 1], explicit).is_err(),
                "truncated"
            );
        }
    }

    #[test]
    fn huge_announced_lengths_are_refused() {
        // (0010,0010) implicit VR, length 0x7FFFFFF0, four bytes of value.
        let mut bytes = vec![0x10, 0x00, 0x10, 0x00, 0xF0, 0xFF, 0xFF, 0x7F];
        bytes.extend_from_slice(b"DOE^");
        let err = check_lengths(&bytes, false).unwrap_err();
        assert!(err.0.contains("announces 2147483632 bytes"), "{err}");
        // The same inside a defined-length sequence item, explicit VR.
        let mut seq = vec![0x40, 0x00, 0x00, 0x01, b'S', b'Q', 0, 0, 20, 0, 0, 0];
        seq.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 12, 0, 0, 0]);
        seq.extend_from_slice(&[
            0x08, 0x00, 0x60, 0x00, b'U', b'T', 0, 0, 0xF0, 0xFF, 0xFF, 0x7F,
        ]);
        assert!(check_lengths(&seq, true).is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = Vec::new();
        for _ in 0..40 {
            bytes.extend_from_slice(&[0x40, 0x00, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF]);
            bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        assert!(check_lengths(&bytes, false).is_err());
    }
}
