//! A structural check of an encoded data set before dicom-rs decodes it.
//!
//! dicom-rs allocates the length an element announces before reading its value, so a
//! dozen bytes announcing a 2 GiB value would make it allocate 2 GiB. This walk refuses
//! any element whose announced length runs past the end of the bytes we actually hold, so
//! nothing decoded can be larger than what was received (and that is bounded by the
//! identifier size limit).

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_dictionary_std::{StandardDataDictionary, uids};

/// Undefined length.
const UNDEFINED: u32 = 0xFFFF_FFFF;
/// How deep sequences may nest.
const MAX_DEPTH: usize = 32;

/// Why a data set is refused before decoding. The text of each variant is what the
/// ErrorComment and the logs say.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes end inside an element or item header.
    #[error("data set ends inside an element header at byte {at}")]
    Truncated {
        /// Where the header starts.
        at: usize,
    },
    /// A defined-length item announces more bytes than follow.
    #[error("an item announces {len} bytes; only {left} follow")]
    ItemTooLong {
        /// The announced length.
        len: u32,
        /// The bytes that follow.
        left: usize,
    },
    /// An item or sequence delimiter with a length.
    #[error("delimiter {tag} has a non-zero length")]
    DelimiterLength {
        /// The delimiter's tag.
        tag: Tag,
    },
    /// A (FFFE,xxxx) tag that is no item nor delimiter.
    #[error("unknown item tag {tag}")]
    UnknownItemTag {
        /// The tag.
        tag: Tag,
    },
    /// An explicit VR that PS3.5 does not define.
    #[error("element {tag} has an unknown VR {vr:?}")]
    UnknownVr {
        /// The element.
        tag: Tag,
        /// The VR bytes, as text.
        vr: String,
    },
    /// A binary value that is not a whole number of values.
    #[error("element {tag} has {len} bytes, not a multiple of its value size {unit}")]
    PartialValue {
        /// The element.
        tag: Tag,
        /// Its length.
        len: u32,
        /// The size of one value of its VR.
        unit: u32,
    },
    /// A defined-length sequence announces more bytes than follow.
    #[error("sequence {tag} announces {len} bytes; only {left} follow")]
    SequenceTooLong {
        /// The sequence.
        tag: Tag,
        /// The announced length.
        len: u32,
        /// The bytes that follow.
        left: usize,
    },
    /// An element other than a sequence with undefined length.
    #[error("element {tag} has an undefined length")]
    UndefinedLength {
        /// The element.
        tag: Tag,
    },
    /// An element announces more bytes than follow.
    #[error("element {tag} announces {len} bytes; only {left} follow")]
    ElementTooLong {
        /// The element.
        tag: Tag,
        /// The announced length.
        len: u32,
        /// The bytes that follow.
        left: usize,
    },
    /// Sequences nest deeper than 32 levels.
    #[error("sequences nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The data set's transfer syntax is none of the Little Endian ones we accept.
    #[error("transfer syntax {0} is not accepted")]
    TransferSyntax(String),
    /// dicom-rs could not decode the (structurally sound) data set.
    #[error("not a valid DICOM data set: {0}")]
    Decode(#[source] Box<crate::read_set::ReadSetError>),
}

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
/// ambiguous), and whether it is a sequence: one dictionary lookup.
fn implicit_vr(tag: Tag) -> ([u8; 2], bool) {
    match StandardDataDictionary.by_tag(tag).map(|e| e.vr()) {
        Some(VirtualVr::Exact(vr)) => (vr.to_bytes(), vr == dicom_core::VR::SQ),
        // Ambiguous (US or SS, OB or OW ...): the 2-byte reading is the strictest common rule.
        Some(VirtualVr::Xs) => (*b"US", false),
        Some(VirtualVr::Ox) | Some(VirtualVr::Px) => (*b"OB", false),
        _ => (*b"UN", false),
    }
}

/// One element header, read.
struct Header {
    /// Value length as announced.
    len: u32,
    /// Bytes of the header itself.
    size: usize,
    /// Whether items follow (a sequence, or UN of undefined length).
    is_sequence: bool,
    /// The VR that gives the value's unit size.
    vr: [u8; 2],
}

/// Explicit VRs with a 2-byte reserved field and a 4-byte length.
fn long_explicit(vr: &[u8]) -> bool {
    matches!(
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
    )
}

/// Reads the header of the (non-item) element at `pos`.
fn element_header(bytes: &[u8], pos: usize, tag: Tag, explicit: bool) -> Result<Header, WireError> {
    let short = || WireError::Truncated { at: pos };
    if !explicit {
        let len = u32_at(bytes, pos + 4).ok_or_else(short)?;
        let (vr, sequence) = implicit_vr(tag);
        return Ok(Header {
            len,
            size: 8,
            is_sequence: sequence || len == UNDEFINED,
            vr,
        });
    }
    let vr = bytes.get(pos + 4..pos + 6).ok_or_else(short)?;
    let code: [u8; 2] = [vr[0], vr[1]];
    if !KNOWN_VRS.contains(&&code[..]) {
        return Err(WireError::UnknownVr {
            tag,
            vr: String::from_utf8_lossy(&code).into_owned(),
        });
    }
    if long_explicit(vr) {
        let len = u32_at(bytes, pos + 8).ok_or_else(short)?;
        Ok(Header {
            len,
            size: 12,
            is_sequence: vr == b"SQ" || (vr == b"UN" && len == UNDEFINED),
            vr: code,
        })
    } else {
        let len = u16_at(bytes, pos + 6).ok_or_else(short)?;
        Ok(Header {
            len: u32::from(len),
            size: 8,
            is_sequence: false,
            vr: code,
        })
    }
}

/// Where the walk is: the position, and the sequences and items it is inside.
#[derive(Default)]
struct Walk {
    pos: usize,
    /// Ends of the defined-length sequences and items we are inside, innermost last.
    open: Vec<usize>,
    /// Undefined-length sequences and items we are inside.
    undefined_depth: usize,
}

impl Walk {
    /// An item, item delimiter or sequence delimiter at `pos`: always a 4-byte length.
    fn item(&mut self, bytes: &[u8], tag: Tag) -> Result<(), WireError> {
        let len = u32_at(bytes, self.pos + 4).ok_or(WireError::Truncated { at: self.pos })?;
        self.pos += 8;
        match tag.element() {
            0xE000 if len == UNDEFINED => self.undefined_depth += 1,
            0xE000 => {
                let left = bytes.len() - self.pos;
                if len as usize > left {
                    return Err(WireError::ItemTooLong { len, left });
                }
                self.open.push(self.pos + len as usize);
            }
            0xE00D | 0xE0DD if len != 0 => return Err(WireError::DelimiterLength { tag }),
            0xE00D | 0xE0DD => self.undefined_depth = self.undefined_depth.saturating_sub(1),
            _ => return Err(WireError::UnknownItemTag { tag }),
        }
        Ok(())
    }

    /// Any other element at `pos`.
    fn element(&mut self, bytes: &[u8], tag: Tag, explicit: bool) -> Result<(), WireError> {
        let Header {
            len,
            size,
            is_sequence,
            vr,
        } = element_header(bytes, self.pos, tag, explicit)?;
        // A binary value must hold whole numbers: a reader would otherwise go on out of
        // step and take value bytes for a header.
        let unit = binary_unit(&vr);
        if len != UNDEFINED && unit > 1 && len % unit != 0 {
            return Err(WireError::PartialValue { tag, len, unit });
        }
        self.pos += size;
        let left = bytes.len() - self.pos;
        if is_sequence {
            if len == UNDEFINED {
                self.undefined_depth += 1;
            } else if len as usize > left {
                return Err(WireError::SequenceTooLong { tag, len, left });
            } else {
                self.open.push(self.pos + len as usize);
            }
        } else if len == UNDEFINED {
            return Err(WireError::UndefinedLength { tag });
        } else if len as usize > left {
            return Err(WireError::ElementTooLong { tag, len, left });
        } else {
            self.pos += len as usize;
        }
        Ok(())
    }
}

/// Checks a Little Endian data set (`explicit`: Explicit VR, else Implicit VR): every
/// announced length must fit in the bytes that follow it, and sequences may not nest deeper
/// than 32 levels.
pub fn check_lengths(bytes: &[u8], explicit: bool) -> Result<(), WireError> {
    let mut walk = Walk::default();
    while walk.pos < bytes.len() {
        while walk.open.last().is_some_and(|&end| walk.pos >= end) {
            walk.open.pop();
        }
        let at = walk.pos;
        let group = u16_at(bytes, at).ok_or(WireError::Truncated { at })?;
        let element = u16_at(bytes, at + 2).ok_or(WireError::Truncated { at })?;
        let tag = Tag(group, element);
        if group == 0xFFFE {
            walk.item(bytes, tag)?;
        } else {
            walk.element(bytes, tag, explicit)?;
        }
        if walk.open.len() + walk.undefined_depth > MAX_DEPTH {
            return Err(WireError::TooDeep);
        }
    }
    Ok(())
}

/// Whether `ts`, one of the Little Endian syntaxes we accept, is Explicit VR; an error for
/// any other.
pub fn explicit_vr(ts: &dicom_encoding::TransferSyntax) -> Result<bool, WireError> {
    match ts.uid().trim_end_matches('\0') {
        uids::IMPLICIT_VR_LITTLE_ENDIAN => Ok(false),
        uids::EXPLICIT_VR_LITTLE_ENDIAN => Ok(true),
        other => Err(WireError::TransferSyntax(other.to_string())),
    }
}

/// Decodes a data set received in transfer syntax `ts` after [`check_lengths`]; only the
/// Little Endian syntaxes we accept are supported.
pub fn decode(
    bytes: &[u8],
    ts: &dicom_encoding::TransferSyntax,
) -> Result<dicom_object::InMemDicomObject, WireError> {
    check_lengths(bytes, explicit_vr(ts)?)?;
    crate::read_set::read(bytes, ts).map_err(|e| WireError::Decode(Box::new(e)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dicom_core::value::{DataSetSequence, PrimitiveValue};
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::InMemDicomObject;
    use dicom_transfer_syntax_registry::entries::{
        EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
    };

    /// A data set with a step sequence of one item.
    pub(crate) fn sample() -> InMemDicomObject {
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
        assert!(
            err.to_string().contains("announces 2147483632 bytes"),
            "{err}"
        );
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
