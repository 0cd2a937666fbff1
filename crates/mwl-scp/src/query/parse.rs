//! From a C-FIND identifier to an [`MwlQuery`].

use dicom_core::dictionary::{DataDictionary, VirtualVr};
use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_encoding::text::{DefaultCharacterSetCodec, SpecificCharacterSet, TextCodec};
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

use super::charset::QueryCharset;
use super::fields::{Field, Level, PROTOCOL_FIELDS, SPS_FIELDS};
use super::matching::{
    DateRange, DateTimeMatcher, NumberMatcher, PnMatcher, TextMatcher, TimeRange, UidMatcher,
};
use super::{Condition, KeyKind, MwlQuery, QueryError, ReturnKey};

/// Where an error is: the top level, or inside the step item.
fn offending(level: Level, tag: Tag) -> Vec<Tag> {
    match level {
        Level::Top => vec![tag],
        Level::Sps => vec![tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE, tag],
        Level::Protocol => vec![
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE,
            tag,
        ],
    }
}

fn invalid(offending: Vec<Tag>, reason: impl Into<String>) -> QueryError {
    QueryError::InvalidIdentifier {
        offending,
        reason: reason.into(),
    }
}

/// The error for a key of ours whose value is refused.
fn invalid_key(level: Level, tag: Tag, reason: impl std::fmt::Display) -> QueryError {
    invalid(offending(level, tag), reason.to_string())
}

/// Why a key's value cannot be read as text.
#[derive(Debug, thiserror::Error)]
enum KeyError {
    /// A sequence where a primitive value belongs.
    #[error("{tag} ({vr}) must not be a sequence")]
    Sequence { tag: Tag, vr: VR },
    /// A value sent with a VR that cannot be read as the attribute's own.
    #[error("{tag} must have VR {vr}; a value sent as {sent} cannot be read as {vr}")]
    Unreadable { tag: Tag, vr: VR, sent: VR },
    /// A UN value that the query's character set cannot decode.
    #[error("{tag}: cannot decode the value: {source}")]
    Undecodable {
        tag: Tag,
        #[source]
        source: dicom_encoding::text::DecodeTextError,
    },
}

/// The query being built.
struct Builder {
    query: MwlQuery,
    /// The query's first character set term (the one dicom-rs decoded with), to decode
    /// keys sent as UN or read with the default repertoire.
    charset: Option<String>,
    /// What the query's character set means for its text.
    text: QueryCharset,
}

pub(super) fn parse(identifier: &InMemDicomObject) -> Result<MwlQuery, QueryError> {
    let mut b = Builder {
        query: MwlQuery {
            top: Vec::new(),
            sps: None,
            protocol: None,
            conditions: Vec::new(),
            start: DateTimeMatcher::default(),
            end: DateTimeMatcher::default(),
            status: None,
            unsupported: Vec::new(),
            requested: Vec::new(),
            charset: QueryCharset::NONE,
        },
        charset: None,
        text: QueryCharset::NONE,
    };
    if let Some(scs) = identifier.get(tags::SPECIFIC_CHARACTER_SET) {
        b.character_set(scs);
    }
    for elem in identifier.iter() {
        let tag = elem.tag();
        check_group(tag, Level::Top)?;
        if !is_key(tag) {
            continue;
        }
        b.query.requested.push(tag);
        if tag == tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE {
            b.step_sequence(elem)?;
        } else {
            b.key(elem, Level::Top)?;
        }
    }
    Ok(b.query)
}

/// Whether an element of the identifier is a key. Specific Character Set says how to read
/// the others; group lengths (gggg,0000) and private creators (gggg,0010-00FF of an odd
/// group, PS3.5 7.8.1) only describe the encoding or reserve a block of private
/// elements: they are no keys at any level, are never returned and never make the status
/// FF01 (such as a GE console's `(0009,0010) GEMS_IDEN_01` beside its empty private keys).
fn is_key(tag: Tag) -> bool {
    let private_creator = tag.group() % 2 == 1 && (0x0010..=0x00FF).contains(&tag.element());
    tag != tags::SPECIFIC_CHARACTER_SET && tag.element() != 0x0000 && !private_creator
}

/// Command-group and file-meta elements have no place in an identifier.
fn check_group(tag: Tag, level: Level) -> Result<(), QueryError> {
    if tag.group() == 0x0000 || tag.group() == 0x0002 {
        return Err(invalid(
            offending(level, tag),
            "command-group or file-meta element in the identifier",
        ));
    }
    Ok(())
}

impl Builder {
    /// Records the query's Specific Character Set (see [`QueryCharset::from_terms`]); one
    /// with a term neither we nor dicom-rs know is reported as unsupported, since its text
    /// may have been misread.
    fn character_set(&mut self, elem: &InMemElement) {
        let terms: Vec<String> = match elem.value() {
            Value::Primitive(p) => p
                .to_multi_str()
                .iter()
                .map(|s| s.trim().to_owned())
                .collect(),
            _ => vec!["?".to_owned()],
        };
        let text = QueryCharset::from_terms(&terms);
        if !text.understood {
            self.query.unsupported.push(tags::SPECIFIC_CHARACTER_SET);
        }
        self.text = text;
        self.query.charset = text;
        self.charset = terms.into_iter().next().filter(|t| !t.is_empty());
    }

    /// Parses the Scheduled Procedure Step Sequence.
    fn step_sequence(&mut self, elem: &InMemElement) -> Result<(), QueryError> {
        let read = read_un(elem, Level::Top)?;
        let elem = read.as_ref().unwrap_or(elem);
        let item = one_item(elem, Level::Top, "Scheduled Procedure Step Sequence")?;
        self.query.sps = Some(Vec::new());
        let mut any_key = false;
        for inner in item.into_iter().flat_map(|i| i.iter()) {
            let t = inner.tag();
            check_group(t, Level::Sps)?;
            if !is_key(t) {
                continue;
            }
            any_key = true;
            self.query.requested.push(t);
            self.key(inner, Level::Sps)?;
        }
        if !any_key {
            // An empty item (or no item): every step attribute, the protocol code too.
            let mut keys: Vec<ReturnKey> = SPS_FIELDS
                .iter()
                .map(|&f| ReturnKey {
                    tag: f.tag(),
                    vr: f.vr(),
                    kind: KeyKind::Field(f),
                })
                .collect();
            keys.push(protocol_return_key());
            keys.sort_by_key(|k| k.tag);
            self.query.sps = Some(keys);
            self.query.protocol = Some(every_protocol_key());
        }
        Ok(())
    }

    /// Parses the Scheduled Protocol Code Sequence inside the step item (PS3.4
    /// C.2.2.2.6): its one item's keys match and return the protocol code; an empty item
    /// or no item asks for Code Value, Coding Scheme Designator and Code Meaning.
    fn protocol_sequence(&mut self, elem: &InMemElement) -> Result<(), QueryError> {
        let read = read_un(elem, Level::Sps)?;
        let elem = read.as_ref().unwrap_or(elem);
        let item = one_item(elem, Level::Sps, "Scheduled Protocol Code Sequence")?;
        self.query.protocol = Some(Vec::new());
        let mut any_key = false;
        for inner in item.into_iter().flat_map(|i| i.iter()) {
            let t = inner.tag();
            check_group(t, Level::Protocol)?;
            if !is_key(t) {
                continue;
            }
            any_key = true;
            self.key(inner, Level::Protocol)?;
        }
        if !any_key {
            self.query.protocol = Some(every_protocol_key());
        }
        self.push_return(Level::Sps, protocol_return_key());
        Ok(())
    }

    fn push_return(&mut self, level: Level, key: ReturnKey) {
        match level {
            Level::Top => self.query.top.push(key),
            Level::Sps => self.query.sps.get_or_insert_with(Vec::new).push(key),
            Level::Protocol => self.query.protocol.get_or_insert_with(Vec::new).push(key),
        }
    }

    /// Parses one key (not the step sequence, not Specific Character Set).
    fn key(&mut self, elem: &InMemElement, level: Level) -> Result<(), QueryError> {
        let tag = elem.tag();
        if tag.group() % 2 == 1 {
            // Private: never returned; a value cannot be honoured.
            if !is_empty_key(elem) {
                self.query.unsupported.push(tag);
            }
            return Ok(());
        }
        if level == Level::Sps && tag == tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE {
            return self.protocol_sequence(elem);
        }
        match Field::from_tag(tag, level) {
            Some(field) => {
                self.field_key(elem, field, level)?;
                self.push_return(
                    level,
                    ReturnKey {
                        tag,
                        vr: field.vr(),
                        kind: KeyKind::Field(field),
                    },
                );
            }
            None => {
                // A UN value read as its dictionary VR (a sequence's items too), so that
                // an empty one is seen as empty; one that cannot be read keeps its bytes.
                let read = match elem.vr() {
                    VR::UN => read_un(elem, level).ok().flatten(),
                    _ => None,
                };
                if !is_empty_key(read.as_ref().unwrap_or(elem)) {
                    self.query.unsupported.push(tag);
                }
                // Returned with the attribute's own VR, whatever VR it was sent with.
                let vr = match StandardDataDictionary.by_tag(tag).map(|e| e.vr) {
                    Some(VirtualVr::Exact(vr)) => vr,
                    _ => elem.vr(),
                };
                self.push_return(
                    level,
                    ReturnKey {
                        tag,
                        vr,
                        kind: KeyKind::NoValue,
                    },
                );
            }
        }
        Ok(())
    }

    /// Parses a key of ours into its condition (none when universal).
    fn field_key(
        &mut self,
        elem: &InMemElement,
        field: Field,
        level: Level,
    ) -> Result<(), QueryError> {
        let tag = elem.tag();
        let err = |reason: &dyn std::fmt::Display| invalid_key(level, tag, reason);
        let vr = field.vr();
        let values = key_values(elem, vr, self.charset.as_deref())
            .map_err(|e| err(&e))?
            .into_iter()
            .map(|v| self.text.reread(v))
            .collect();
        let Some(values) = non_universal(values) else {
            return Ok(());
        };
        let single = |values: &[String]| -> Result<String, QueryError> {
            match values {
                [one] => Ok(one.clone()),
                _ => Err(err(&format_args!(
                    "{tag} ({vr}) takes one value or one range"
                ))),
            }
        };
        let q = &mut self.query;
        match field {
            Field::SpsStartDate => {
                q.start.date = Some(DateRange::parse(&single(&values)?).map_err(|e| err(&e))?);
            }
            Field::SpsEndDate => {
                q.end.date = Some(DateRange::parse(&single(&values)?).map_err(|e| err(&e))?);
            }
            Field::SpsStartTime => {
                q.start.time = Some(TimeRange::parse(&single(&values)?).map_err(|e| err(&e))?);
            }
            Field::SpsEndTime => {
                q.end.time = Some(TimeRange::parse(&single(&values)?).map_err(|e| err(&e))?);
            }
            Field::PatientBirthDate => {
                let range = DateRange::parse(&single(&values)?).map_err(|e| err(&e))?;
                q.conditions.push(Condition::Date(field, range));
            }
            Field::SpsStatus => q.status = Some(TextMatcher::new(&values)),
            _ => match vr {
                VR::PN => {
                    if let Some(m) = PnMatcher::new(&values) {
                        q.conditions.push(Condition::Name(field, m));
                    }
                }
                VR::UI => {
                    let m = UidMatcher::new(&values).map_err(|e| err(&e))?;
                    q.conditions.push(Condition::Uid(field, m));
                }
                VR::DS => {
                    let m = NumberMatcher::new(&values).map_err(|e| err(&e))?;
                    q.conditions.push(Condition::Number(field, m));
                }
                _ => q
                    .conditions
                    .push(Condition::Text(field, TextMatcher::new(&values))),
            },
        }
        Ok(())
    }
}

/// A key sent as UN with a defined length, read as its dictionary VR: a sequence's bytes
/// are its items in Implicit VR Little Endian (PS3.5 6.2.2), and our transfer syntaxes are
/// all Little Endian, so the value is read as an Implicit VR Little Endian element. The
/// bytes pass the same length check as a whole identifier first. `None` when the key is
/// not such a UN value; an error when its bytes cannot be read so.
fn read_un(elem: &InMemElement, level: Level) -> Result<Option<InMemElement>, QueryError> {
    let (VR::UN, Value::Primitive(PrimitiveValue::U8(bytes))) = (elem.vr(), elem.value()) else {
        return Ok(None);
    };
    let tag = elem.tag();
    let unreadable = |why: &dyn std::fmt::Display| {
        invalid(
            offending(level, tag),
            format!("{tag} sent as UN cannot be read as its own VR: {why}"),
        )
    };
    let len = u32::try_from(bytes.len()).map_err(|e| unreadable(&e))?;
    let mut data = Vec::with_capacity(bytes.len() + 8);
    data.extend_from_slice(&tag.group().to_le_bytes());
    data.extend_from_slice(&tag.element().to_le_bytes());
    data.extend_from_slice(&len.to_le_bytes());
    data.extend_from_slice(bytes);
    let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let obj = crate::wire_check::decode(&data, &ts).map_err(|e| unreadable(&e))?;
    Ok(obj.get(tag).cloned())
}

/// The one item of a sequence key (`None`: no item, or a zero-length value); several
/// items, or a value that is not a sequence, are an error. `level` is the sequence's.
fn one_item<'a>(
    elem: &'a InMemElement,
    level: Level,
    name: &str,
) -> Result<Option<&'a InMemDicomObject>, QueryError> {
    let tag = elem.tag();
    let items: &[InMemDicomObject] = match elem.value() {
        Value::Sequence(seq) => seq.items(),
        Value::Primitive(PrimitiveValue::Empty) => &[],
        _ => {
            return Err(invalid(
                offending(level, tag),
                format!("{tag} must be a sequence (SQ), not {}", elem.vr()),
            ));
        }
    };
    match items {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(invalid(
            offending(level, tag),
            format!("the {name} has {} items; MWL allows one", items.len()),
        )),
    }
}

/// The step item's key for the Scheduled Protocol Code Sequence.
fn protocol_return_key() -> ReturnKey {
    ReturnKey {
        tag: tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE,
        vr: VR::SQ,
        kind: KeyKind::Protocol,
    }
}

/// What an empty protocol code item asks for: Code Value, Coding Scheme Designator and
/// Code Meaning.
fn every_protocol_key() -> Vec<ReturnKey> {
    PROTOCOL_FIELDS[..3]
        .iter()
        .map(|&f| ReturnKey {
            tag: f.tag(),
            vr: f.vr(),
            kind: KeyKind::Field(f),
        })
        .collect()
}

/// The non-empty values of a key, or `None` when the key is universal (no value, empty
/// values only, or `*` alone).
fn non_universal(values: Vec<String>) -> Option<Vec<String>> {
    let values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
    match values.as_slice() {
        [] => None,
        [one] if one == "*" => None,
        _ => Some(values),
    }
}

/// The values of a primitive key as decoded text: split on `\` (except for the
/// single-valued text VRs), each trimmed of padding.
///
/// `vr` is the attribute's own VR; the value may have been sent with another one (see
/// [`readable_as`]). A value sent as UN is decoded as `vr`'s text: with the query's
/// character set, or the default repertoire for AE, CS, DA, TM, UI, DS (every attribute we
/// match on has a text VR, so the transfer syntax's byte order never matters). Numbers
/// sent in binary (FD, FL, US, UL, ...) for a DS or IS attribute are written as decimal
/// strings. Text sent with a VR dicom-rs decodes in the default repertoire (AE, AS, CS, UR)
/// for an attribute whose VR follows the query's character set is decoded again with that
/// set.
fn key_values(elem: &InMemElement, vr: VR, charset: Option<&str>) -> Result<Vec<String>, KeyError> {
    let tag = elem.tag();
    let sent = elem.vr();
    let prim = match elem.value() {
        Value::Primitive(p) => p,
        _ => return Err(KeyError::Sequence { tag, vr }),
    };
    // No value reads as no value, whatever the VR.
    if !readable_as(sent, vr) && !matches!(prim, PrimitiveValue::Empty) {
        return Err(KeyError::Unreadable { tag, vr, sent });
    }
    let unreadable = || KeyError::Unreadable { tag, vr, sent };
    let raw: Vec<String> = match prim {
        PrimitiveValue::Empty => Vec::new(),
        PrimitiveValue::Str(s) => vec![redecode(s.clone(), sent, vr, charset)],
        PrimitiveValue::Strs(v) => v
            .iter()
            .map(|s| redecode(s.clone(), sent, vr, charset))
            .collect(),
        PrimitiveValue::Date(v) => v.iter().map(|d| d.to_encoded()).collect(),
        PrimitiveValue::Time(v) => v.iter().map(|t| t.to_encoded()).collect(),
        PrimitiveValue::DateTime(v) => v.iter().map(|d| d.to_encoded()).collect(),
        PrimitiveValue::U8(bytes) if sent == VR::UN => {
            vec![
                decode_un(bytes, vr, charset)
                    .map_err(|source| KeyError::Undecodable { tag, source })?,
            ]
        }
        other if is_number(vr) => numbers(other).ok_or_else(unreadable)?,
        _ => return Err(unreadable()),
    };
    let split = !matches!(vr, VR::ST | VR::LT | VR::UT | VR::UR);
    Ok(raw
        .iter()
        .flat_map(|s| {
            if split {
                s.split('\\').collect::<Vec<_>>()
            } else {
                vec![s.as_str()]
            }
        })
        .map(|s| s.trim_matches([' ', '\0']).to_owned())
        .collect())
}

/// The text VRs: a value sent with one can be read as any other.
fn is_text(vr: VR) -> bool {
    matches!(
        vr,
        VR::AE
            | VR::AS
            | VR::CS
            | VR::DA
            | VR::DS
            | VR::DT
            | VR::IS
            | VR::LO
            | VR::LT
            | VR::PN
            | VR::SH
            | VR::ST
            | VR::TM
            | VR::UC
            | VR::UI
            | VR::UR
            | VR::UT
    )
}

/// The decimal-string VRs, whose values a binary number can stand for.
fn is_number(vr: VR) -> bool {
    matches!(vr, VR::DS | VR::IS)
}

/// Whether a value sent as `sent` can be read as the attribute's own VR `vr`: the same
/// VR, UN (its bytes are read as `vr`), text for text, or a binary number (FD, FL, US,
/// UL, SS, SL, SV, UV) for a decimal string (DS, IS). Anything else (text sent as OB, a
/// date sent as FD, a name sent as US) cannot be read.
pub(super) fn readable_as(sent: VR, vr: VR) -> bool {
    sent == vr
        || sent == VR::UN
        || (is_text(sent) && is_text(vr))
        || (is_number(vr)
            && matches!(
                sent,
                VR::FD | VR::FL | VR::US | VR::UL | VR::SS | VR::SL | VR::SV | VR::UV
            ))
}

/// A binary number value as decimal strings, one per value; `None` for other values.
fn numbers(p: &PrimitiveValue) -> Option<Vec<String>> {
    fn all<T: ToString>(v: &[T]) -> Vec<String> {
        v.iter().map(T::to_string).collect()
    }
    Some(match p {
        PrimitiveValue::F64(v) => all(v),
        PrimitiveValue::F32(v) => all(v),
        PrimitiveValue::U16(v) => all(v),
        PrimitiveValue::U32(v) => all(v),
        PrimitiveValue::U64(v) => all(v),
        PrimitiveValue::I16(v) => all(v),
        PrimitiveValue::I32(v) => all(v),
        PrimitiveValue::I64(v) => all(v),
        _ => return None,
    })
}

/// Text that dicom-rs decoded in the default repertoire because of the VR it was sent
/// with (AE, AS, CS, UR), decoded again with the query's character set when the
/// attribute's own VR follows it. The default decoder keeps each byte as one character, so
/// the bytes are recovered exactly.
fn redecode(s: String, sent: VR, vr: VR, charset: Option<&str>) -> String {
    let default_read = |v: VR| matches!(v, VR::AE | VR::AS | VR::CS | VR::UR);
    if s.is_ascii() || !default_read(sent) || default_read(vr) {
        return s;
    }
    let Some(codec) = charset.and_then(SpecificCharacterSet::from_code) else {
        return s;
    };
    let Some(bytes) = s
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
    else {
        return s;
    };
    codec.decode(&bytes).unwrap_or(s)
}

fn decode_un(
    bytes: &[u8],
    vr: VR,
    charset: Option<&str>,
) -> Result<String, dicom_encoding::text::DecodeTextError> {
    let default_repertoire = matches!(
        vr,
        VR::AE | VR::AS | VR::CS | VR::DA | VR::DS | VR::DT | VR::IS | VR::TM | VR::UI
    );
    if default_repertoire {
        DefaultCharacterSetCodec.decode(bytes)
    } else {
        charset
            .and_then(SpecificCharacterSet::from_code)
            .unwrap_or_default()
            .decode(bytes)
    }
}

/// Whether a key asks for nothing but its return: no value, empty values or `*`; for a
/// sequence, items whose keys are all empty.
fn is_empty_key(elem: &InMemElement) -> bool {
    match elem.value() {
        Value::Primitive(p) => match p {
            PrimitiveValue::Empty => true,
            PrimitiveValue::Str(_) | PrimitiveValue::Strs(_) => {
                let s = p.to_str();
                let s = s.trim_matches([' ', '\0']);
                s.is_empty() || s == "*" || s.split('\\').all(|v| v.trim().is_empty())
            }
            PrimitiveValue::U8(b) => b.iter().all(|&c| c == b' ' || c == 0),
            _ => false,
        },
        // Group lengths (gggg,0000) in an item are no keys.
        Value::Sequence(seq) => seq.items().iter().all(|item| {
            item.iter()
                .all(|e| e.tag().element() == 0x0000 || is_empty_key(e))
        }),
        Value::PixelSequence(_) => false,
    }
}
