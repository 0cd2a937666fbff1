//! DIMSE messages over P-DATA: the SOP classes, command fields and statuses we use
//! (each defined here once), command sets, message assembly from fragments, and packing
//! responses into PDUs no larger than the peer accepts.

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};

/// The SOP classes we serve, as negotiated in presentation contexts.
pub mod sop_class {
    use dicom_dictionary_std::uids;

    /// Verification SOP class (C-ECHO).
    pub const VERIFICATION: &str = uids::VERIFICATION;
    /// Modality Worklist Information Model – FIND (C-FIND).
    pub const MWL_FIND: &str = uids::MODALITY_WORKLIST_INFORMATION_MODEL_FIND;
    /// Modality Performed Procedure Step SOP class (N-CREATE, N-SET).
    pub const MPPS: &str = uids::MODALITY_PERFORMED_PROCEDURE_STEP;
}

/// Command Field (0000,0100) values we handle.
pub mod command {
    /// C-FIND-RQ.
    pub const C_FIND_RQ: u16 = 0x0020;
    /// C-FIND-RSP.
    pub const C_FIND_RSP: u16 = 0x8020;
    /// C-ECHO-RQ.
    pub const C_ECHO_RQ: u16 = 0x0030;
    /// C-ECHO-RSP.
    pub const C_ECHO_RSP: u16 = 0x8030;
    /// C-CANCEL-RQ.
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
    /// N-CREATE-RQ.
    pub const N_CREATE_RQ: u16 = 0x0140;
    /// N-CREATE-RSP.
    pub const N_CREATE_RSP: u16 = 0x8140;
    /// N-SET-RQ.
    pub const N_SET_RQ: u16 = 0x0120;
    /// N-SET-RSP.
    pub const N_SET_RSP: u16 = 0x8120;
    /// The response's command field for a request's: the same with bit 15 set.
    pub const fn response_to(request: u16) -> u16 {
        request | 0x8000
    }
    /// Command Data Set Type (0000,0800) value meaning "no data set".
    pub const NO_DATA_SET: u16 = 0x0101;
    /// Command Data Set Type value for "a data set follows" (any other value means so).
    pub const DATA_SET_PRESENT: u16 = 0x0000;
}

/// DIMSE status codes (0000,0900) we send: C-FIND's and the DIMSE-N ones of MPPS.
pub mod status {
    /// Success (every service).
    pub const SUCCESS: u16 = 0x0000;
    /// Pending: a match follows.
    pub const PENDING: u16 = 0xFF00;
    /// Pending, some optional keys were not supported.
    pub const PENDING_WARNING: u16 = 0xFF01;
    /// Cancelled after C-CANCEL-RQ.
    pub const CANCEL: u16 = 0xFE00;
    /// Identifier does not match SOP class.
    pub const IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
    /// Unable to process.
    pub const UNABLE_TO_PROCESS: u16 = 0xC000;
    /// SOP class not supported.
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Unrecognized operation.
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
    /// DIMSE-N: invalid attribute value.
    pub const INVALID_ATTRIBUTE_VALUE: u16 = 0x0106;
    /// DIMSE-N: processing failure.
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    /// DIMSE-N: duplicate SOP instance.
    pub const DUPLICATE_SOP_INSTANCE: u16 = 0x0111;
    /// DIMSE-N: no such object instance.
    pub const NO_SUCH_OBJECT_INSTANCE: u16 = 0x0112;
    /// DIMSE-N: invalid object instance (a SOP instance UID that is not a UID).
    pub const INVALID_OBJECT_INSTANCE: u16 = 0x0117;
    /// DIMSE-N: missing attribute.
    pub const MISSING_ATTRIBUTE: u16 = 0x0120;
    /// DIMSE-N: refused, not authorized (the peer may not change that instance).
    pub const NOT_AUTHORIZED: u16 = 0x0124;
    /// DIMSE-N: resource limitation (the operation would exceed a configured bound).
    pub const RESOURCE_LIMITATION: u16 = 0x0213;
}

/// Largest command set we accept (they are a few hundred bytes).
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// A received command set, with the fields we read.
#[derive(Debug, Clone)]
pub struct Command {
    /// The whole command set.
    pub object: InMemDicomObject,
    /// Command Field (0000,0100).
    pub field: u16,
    /// Message ID (0000,0110), for requests.
    pub message_id: Option<u16>,
    /// Message ID Being Responded To (0000,0120), for C-CANCEL.
    pub responding_to: Option<u16>,
    /// Affected SOP Class UID (0000,0002), or for N-SET and the like the Requested SOP
    /// Class UID (0000,0003), trimmed.
    pub affected_sop_class: Option<String>,
    /// Whether a data set follows.
    pub has_data_set: bool,
}

/// Why a command set could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Its structure is broken (a length running past its end, ...).
    #[error("command set is not valid DICOM: {0}")]
    Malformed(#[source] Box<crate::wire_check::WireError>),
    /// dicom-rs cannot read it as Implicit VR Little Endian.
    #[error("command set is not valid DICOM: {0}")]
    Decode(#[source] Box<crate::read_set::ReadSetError>),
    /// A required command element is missing or malformed.
    #[error("command set lacks a valid {0}")]
    Missing(&'static str),
}

fn u16_of(obj: &InMemDicomObject, tag: Tag) -> Option<u16> {
    obj.get(tag).and_then(|e| e.to_int::<u16>().ok())
}

fn str_of(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
}

impl Command {
    /// Decodes a command set (always Implicit VR Little Endian).
    pub fn decode(bytes: &[u8]) -> Result<Command, CommandError> {
        crate::wire_check::check_lengths(bytes, false)
            .map_err(|e| CommandError::Malformed(Box::new(e)))?;
        let object = crate::read_set::read(bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
            .map_err(|e| CommandError::Decode(Box::new(e)))?;
        let field =
            u16_of(&object, tags::COMMAND_FIELD).ok_or(CommandError::Missing("Command Field"))?;
        let data_set_type = u16_of(&object, tags::COMMAND_DATA_SET_TYPE)
            .ok_or(CommandError::Missing("Command Data Set Type"))?;
        Ok(Command {
            field,
            message_id: u16_of(&object, tags::MESSAGE_ID),
            responding_to: u16_of(&object, tags::MESSAGE_ID_BEING_RESPONDED_TO),
            affected_sop_class: str_of(&object, tags::AFFECTED_SOP_CLASS_UID)
                .or_else(|| str_of(&object, tags::REQUESTED_SOP_CLASS_UID)),
            has_data_set: data_set_type != command::NO_DATA_SET,
            object,
        })
    }

    /// The Message ID its responses name: 0 when the request has none.
    pub fn id(&self) -> u16 {
        self.message_id.unwrap_or(0)
    }

    /// A text element of the command set (a SOP instance UID, ...) without its padding.
    pub fn text(&self, tag: Tag) -> Option<String> {
        str_of(&self.object, tag)
    }
}

/// What every response command set says.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    /// The command field (C-FIND-RSP, ...).
    pub field: u16,
    /// The SOP class (Affected SOP Class UID).
    pub sop_class: &'a str,
    /// The request's message ID.
    pub responding_to: u16,
    /// Whether a data set follows.
    pub has_data_set: bool,
    /// The status.
    pub status: u16,
}

impl ResponseHead<'_> {
    /// The Command Data Set Type value.
    fn data_set_type(&self) -> u16 {
        if self.has_data_set {
            command::DATA_SET_PRESENT
        } else {
            command::NO_DATA_SET
        }
    }
}

/// Builds a response command set: `head`, plus any extra elements (ErrorComment, ...).
pub fn response_command(
    head: ResponseHead<'_>,
    extra: Vec<DataElement<InMemDicomObject>>,
) -> InMemDicomObject {
    let us = |v: u16| PrimitiveValue::from(v);
    let mut elements = vec![
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(uid_value(head.sop_class)),
        ),
        DataElement::new(tags::COMMAND_FIELD, VR::US, us(head.field)),
        DataElement::new(
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            VR::US,
            us(head.responding_to),
        ),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            us(head.data_set_type()),
        ),
        DataElement::new(tags::STATUS, VR::US, us(head.status)),
    ];
    elements.extend(extra);
    InMemDicomObject::command_from_element_iter(elements)
}

/// [`response_command`], encoded (Implicit VR Little Endian, with its group length). A
/// response of the head alone (every C-FIND pending response, most final ones) is
/// written straight to bytes: building and walking a dicom-rs object for it was a tenth
/// of a one-patient query's work. With `extra` elements it is built as before.
pub fn encode_response_command(
    head: ResponseHead<'_>,
    extra: Vec<DataElement<InMemDicomObject>>,
) -> Result<Vec<u8>, EncodeError> {
    if !extra.is_empty() {
        return encode_command(&response_command(head, extra));
    }
    let uid = uid_value(head.sop_class);
    let put = |out: &mut Vec<u8>, tag: Tag, value: &[u8]| {
        out.extend_from_slice(&tag.group().to_le_bytes());
        out.extend_from_slice(&tag.element().to_le_bytes());
        // Command values are short: a UID of at most 64 bytes, or a US.
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    };
    let mut body = Vec::with_capacity(128);
    put(&mut body, tags::AFFECTED_SOP_CLASS_UID, uid.as_bytes());
    for (tag, value) in [
        (tags::COMMAND_FIELD, head.field),
        (tags::MESSAGE_ID_BEING_RESPONDED_TO, head.responding_to),
        (tags::COMMAND_DATA_SET_TYPE, head.data_set_type()),
        (tags::STATUS, head.status),
    ] {
        put(&mut body, tag, &value.to_le_bytes());
    }
    let mut out = Vec::with_capacity(body.len() + 12);
    put(
        &mut out,
        tags::COMMAND_GROUP_LENGTH,
        &(body.len() as u32).to_le_bytes(),
    );
    out.extend_from_slice(&body);
    Ok(out)
}

/// A UI value padded to even length with NUL, as PS3.5 requires.
pub fn uid_value(uid: &str) -> String {
    let mut s = uid.to_string();
    if s.len() % 2 == 1 {
        s.push('\0');
    }
    s
}

/// Error Comment (0000,0902): at most 64 characters.
pub fn error_comment(text: &str) -> DataElement<InMemDicomObject> {
    // Command sets are in the default repertoire: anything else would not encode.
    let mut t: String = text
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c.is_ascii() && c != '\\' { c } else { '?' })
        .take(64)
        .collect();
    if t.len() % 2 == 1 {
        t.push(' ');
    }
    DataElement::new(tags::ERROR_COMMENT, VR::LO, PrimitiveValue::from(t))
}

/// Offending Element (0000,0901).
pub fn offending_elements(list: &[Tag]) -> DataElement<InMemDicomObject> {
    DataElement::new(
        tags::OFFENDING_ELEMENT,
        VR::AT,
        PrimitiveValue::Tags(list.iter().copied().collect()),
    )
}

/// Why a response could not be encoded (the association cannot go on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// dicom-rs could not write the command set.
    #[error("{0}")]
    Command(#[source] Box<dicom_object::WriteError>),
    /// dicom-ul could not write a P-DATA PDU.
    #[error("{0}")]
    Pdu(#[source] Box<dicom_ul::pdu::WriteError>),
}

/// Encodes a command set (Implicit VR Little Endian).
pub fn encode_command(obj: &InMemDicomObject) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(256);
    obj.write_dataset_with_ts(&mut out, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .map_err(|e| EncodeError::Command(Box::new(e)))?;
    Ok(out)
}

/// A complete DIMSE message: its command and, when announced, its data set bytes.
#[derive(Debug)]
pub struct Message {
    /// Presentation context the command arrived on.
    pub context_id: u8,
    /// The command.
    pub command: Command,
    /// The data set, still encoded in the context's transfer syntax.
    pub data: Option<Vec<u8>>,
}

/// Why the P-DATA stream cannot be followed; the association should be aborted.
#[derive(Debug, thiserror::Error)]
pub enum AssemblyError {
    /// The command set could not be read.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A fragment came on another presentation context than its message.
    #[error("fragment on presentation context {got} while a message on {expected} is open")]
    ContextSwitch {
        /// Context of the message being assembled.
        expected: u8,
        /// Context of the fragment.
        got: u8,
    },
    /// Data arrived before any command, or after a command that announced none.
    #[error("data set fragment without a command that announces one")]
    UnexpectedData,
    /// A command or data set is larger than we accept.
    #[error("{what} larger than {limit} bytes")]
    TooLarge {
        /// Command set or data set.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
}

/// Collects command and data fragments (in one PDU or spread over several) into
/// messages.
#[derive(Debug)]
pub struct Assembler {
    max_data_bytes: usize,
    context: Option<u8>,
    command_bytes: Vec<u8>,
    command: Option<Command>,
    data: Vec<u8>,
}

impl Assembler {
    /// An assembler accepting data sets up to `max_data_bytes`.
    pub fn new(max_data_bytes: usize) -> Assembler {
        Assembler {
            max_data_bytes,
            context: None,
            command_bytes: Vec::new(),
            command: None,
            data: Vec::new(),
        }
    }

    /// Feeds one PDV; returns a message when this fragment completes one.
    pub fn push(&mut self, pdv: PDataValue) -> Result<Option<Message>, AssemblyError> {
        if let Some(expected) = self.context
            && expected != pdv.presentation_context_id
        {
            return Err(AssemblyError::ContextSwitch {
                expected,
                got: pdv.presentation_context_id,
            });
        }
        self.context = Some(pdv.presentation_context_id);
        match pdv.value_type {
            PDataValueType::Command => {
                if self.command.is_some() {
                    // A new command while a data set is awaited: the old message is broken.
                    return Err(AssemblyError::UnexpectedData);
                }
                if self.command_bytes.len() + pdv.data.len() > MAX_COMMAND_BYTES {
                    return Err(AssemblyError::TooLarge {
                        what: "command set",
                        limit: MAX_COMMAND_BYTES,
                    });
                }
                self.command_bytes.extend_from_slice(&pdv.data);
                if !pdv.is_last {
                    return Ok(None);
                }
                let command = Command::decode(&self.command_bytes)?;
                self.command_bytes.clear();
                if command.has_data_set {
                    self.command = Some(command);
                    Ok(None)
                } else {
                    Ok(Some(self.finish(command, None)))
                }
            }
            PDataValueType::Data => {
                let Some(_) = &self.command else {
                    return Err(AssemblyError::UnexpectedData);
                };
                if self.data.len() + pdv.data.len() > self.max_data_bytes {
                    return Err(AssemblyError::TooLarge {
                        what: "data set",
                        limit: self.max_data_bytes,
                    });
                }
                self.data.extend_from_slice(&pdv.data);
                if !pdv.is_last {
                    return Ok(None);
                }
                let command = self.command.take().ok_or(AssemblyError::UnexpectedData)?;
                let data = std::mem::take(&mut self.data);
                Ok(Some(self.finish(command, Some(data))))
            }
        }
    }

    fn finish(&mut self, command: Command, data: Option<Vec<u8>>) -> Message {
        let context_id = self.context.take().unwrap_or(0);
        Message {
            context_id,
            command,
            data,
        }
    }
}

/// The largest PDV payload that fits the peer's maximum PDU length (`0` means no limit).
pub fn max_fragment(peer_max_pdu: u32) -> usize {
    let max = if peer_max_pdu == 0 {
        1 << 20
    } else {
        peer_max_pdu.min(1 << 24) as usize
    };
    // 6 bytes of PDV header (length + context + control); keep fragments even.
    (max.saturating_sub(6).max(2)) & !1
}

/// Packs a command and an optional data set into as few P-DATA PDUs as the peer's
/// maximum allows (command and data share one PDU when they fit) and encodes them, ready
/// for one write.
pub fn encode_message(
    context_id: u8,
    command: &[u8],
    data: Option<&[u8]>,
    peer_max_pdu: u32,
) -> Result<Vec<u8>, EncodeError> {
    let frag = max_fragment(peer_max_pdu);
    let budget = frag + 6;
    let mut pieces: Vec<PDataValue> = Vec::new();
    let mut push_all = |bytes: &[u8], value_type: PDataValueType| {
        if bytes.is_empty() {
            pieces.push(PDataValue {
                presentation_context_id: context_id,
                value_type,
                is_last: true,
                data: Vec::new(),
            });
            return;
        }
        let n = bytes.len().div_ceil(frag);
        for (i, chunk) in bytes.chunks(frag).enumerate() {
            pieces.push(PDataValue {
                presentation_context_id: context_id,
                value_type: value_type.clone(),
                is_last: i + 1 == n,
                data: chunk.to_vec(),
            });
        }
    };
    push_all(command, PDataValueType::Command);
    if let Some(d) = data {
        push_all(d, PDataValueType::Data);
    }
    // Greedily put consecutive PDVs into one PDU while they fit.
    let mut out = Vec::with_capacity(command.len() + data.map_or(0, <[u8]>::len) + 64);
    let mut current: Vec<PDataValue> = Vec::new();
    let mut used = 0usize;
    for p in pieces {
        let size = p.data.len() + 6;
        if !current.is_empty() && used + size > budget {
            dicom_ul::pdu::write_pdu(
                &mut out,
                &Pdu::PData {
                    data: std::mem::take(&mut current),
                },
            )
            .map_err(|e| EncodeError::Pdu(Box::new(e)))?;
            used = 0;
        }
        used += size;
        current.push(p);
    }
    if !current.is_empty() {
        dicom_ul::pdu::write_pdu(&mut out, &Pdu::PData { data: current })
            .map_err(|e| EncodeError::Pdu(Box::new(e)))?;
    }
    Ok(out)
}

/// [`encode_message`] appended to `out`, written directly: the same bytes, without the
/// intermediate values (a pending C-FIND response per matching entry goes this way).
pub fn encode_message_into(
    out: &mut Vec<u8>,
    context_id: u8,
    command: &[u8],
    data: Option<&[u8]>,
    peer_max_pdu: u32,
) {
    let frag = max_fragment(peer_max_pdu);
    let budget = frag + 6;
    // The fragments of one value, each with whether it is the last.
    let fragments = |bytes: &'_ [u8]| -> Vec<(usize, usize, bool)> {
        if bytes.is_empty() {
            return vec![(0, 0, true)];
        }
        let n = bytes.len().div_ceil(frag);
        (0..n)
            .map(|i| (i * frag, ((i + 1) * frag).min(bytes.len()), i + 1 == n))
            .collect()
    };
    // Fills in the length of the PDU that starts at `start`.
    let close = |out: &mut Vec<u8>, start: usize| {
        let length = (out.len() - start - 6) as u32;
        out[start + 2..start + 6].copy_from_slice(&length.to_be_bytes());
    };
    let mut pdu_start: Option<usize> = None;
    let mut used = 0usize;
    let values = std::iter::once((command, true)).chain(data.map(|d| (d, false)));
    for (bytes, is_command) in values {
        for (from, to, last) in fragments(bytes) {
            let size = to - from + 6;
            if let Some(start) = pdu_start
                && used + size > budget
            {
                close(out, start);
                pdu_start = None;
                used = 0;
            }
            if pdu_start.is_none() {
                pdu_start = Some(out.len());
                // P-DATA-TF, reserved, length (filled in by `close`).
                out.extend_from_slice(&[0x04, 0, 0, 0, 0, 0]);
            }
            used += size;
            out.extend_from_slice(&((to - from + 2) as u32).to_be_bytes());
            out.push(context_id);
            out.push(u8::from(is_command) | (u8::from(last) << 1));
            out.extend_from_slice(&bytes[from..to]);
        }
    }
    if let Some(start) = pdu_start {
        close(out, start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_written_directly_are_the_pdus_dicom_ul_writes() {
        let bytes = |n: usize| (0..n).map(|i| i as u8).collect::<Vec<u8>>();
        for max_pdu in [0, 16, 100, 1024, 16_384] {
            for command in [0, 1, 90, 200] {
                for data in [None, Some(0), Some(1), Some(95), Some(1000), Some(40_000)] {
                    let (command, data) = (bytes(command), data.map(bytes));
                    let expected = encode_message(7, &command, data.as_deref(), max_pdu)
                        .expect("dicom-ul writes it");
                    let mut out = vec![0xAA];
                    encode_message_into(&mut out, 7, &command, data.as_deref(), max_pdu);
                    assert_eq!(out[0], 0xAA, "appended");
                    assert_eq!(
                        &out[1..],
                        expected,
                        "max {max_pdu}, data {:?}",
                        data.map(|d| d.len())
                    );
                }
            }
        }
    }

    fn echo_rq(message_id: u16) -> Vec<u8> {
        let obj = InMemDicomObject::command_from_element_iter([
            DataElement::new(
                tags::AFFECTED_SOP_CLASS_UID,
                VR::UI,
                PrimitiveValue::from(uid_value(sop_class::VERIFICATION)),
            ),
            DataElement::new(
                tags::COMMAND_FIELD,
                VR::US,
                PrimitiveValue::from(command::C_ECHO_RQ),
            ),
            DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(message_id)),
            DataElement::new(
                tags::COMMAND_DATA_SET_TYPE,
                VR::US,
                PrimitiveValue::from(command::NO_DATA_SET),
            ),
        ]);
        encode_command(&obj).unwrap()
    }

    fn pdv(ctx: u8, t: PDataValueType, last: bool, data: &[u8]) -> PDataValue {
        PDataValue {
            presentation_context_id: ctx,
            value_type: t,
            is_last: last,
            data: data.to_vec(),
        }
    }

    #[test]
    fn responses_written_directly_are_the_command_sets_dicom_rs_writes() {
        let odd = "1.2.840.10008.5.1.4.31";
        let even = "1.2.840.10008.1.1";
        for (field, sop_class) in [(command::C_FIND_RSP, odd), (0x8030, even)] {
            for has_data_set in [true, false] {
                for status in [status::SUCCESS, status::PENDING, status::CANCEL, 0xA700] {
                    let head = ResponseHead {
                        field,
                        sop_class,
                        responding_to: 0xBEEF,
                        has_data_set,
                        status,
                    };
                    let direct = encode_response_command(head, vec![]).expect("direct");
                    let built = encode_command(&response_command(head, vec![])).expect("dicom-rs");
                    assert_eq!(direct, built, "{head:?}");
                }
            }
        }
        let head = ResponseHead {
            field: command::C_FIND_RSP,
            sop_class: odd,
            responding_to: 1,
            has_data_set: false,
            status: 0xA900,
        };
        let comment = || vec![error_comment("x")];
        let built = encode_command(&response_command(head, comment())).expect("dicom-rs");
        assert_eq!(
            encode_response_command(head, comment()).expect("extra"),
            built
        );
    }

    #[test]
    fn command_in_several_fragments() {
        let bytes = echo_rq(7);
        let mut a = Assembler::new(1024);
        let (first, rest) = bytes.split_at(10);
        assert!(
            a.push(pdv(1, PDataValueType::Command, false, first))
                .unwrap()
                .is_none()
        );
        let msg = a
            .push(pdv(1, PDataValueType::Command, true, rest))
            .unwrap()
            .unwrap();
        assert_eq!(msg.command.field, command::C_ECHO_RQ);
        assert_eq!(msg.command.message_id, Some(7));
        assert_eq!(
            msg.command.affected_sop_class.as_deref(),
            Some(sop_class::VERIFICATION)
        );
        assert!(msg.data.is_none());
        assert_eq!(msg.context_id, 1);
    }

    #[test]
    fn data_without_command_is_an_error() {
        let mut a = Assembler::new(1024);
        assert!(matches!(
            a.push(pdv(1, PDataValueType::Data, true, b"xx")),
            Err(AssemblyError::UnexpectedData)
        ));
    }

    #[test]
    fn garbage_command_is_an_error() {
        let mut a = Assembler::new(1024);
        assert!(
            a.push(pdv(1, PDataValueType::Command, true, &[1, 2, 3]))
                .is_err()
        );
    }

    #[test]
    fn oversized_data_is_refused() {
        let mut cmd = InMemDicomObject::command_from_element_iter([
            DataElement::new(
                tags::COMMAND_FIELD,
                VR::US,
                PrimitiveValue::from(command::C_FIND_RQ),
            ),
            DataElement::new(
                tags::COMMAND_DATA_SET_TYPE,
                VR::US,
                PrimitiveValue::from(0u16),
            ),
        ]);
        cmd.put(DataElement::new(
            tags::MESSAGE_ID,
            VR::US,
            PrimitiveValue::from(1u16),
        ));
        let mut a = Assembler::new(8);
        a.push(pdv(
            1,
            PDataValueType::Command,
            true,
            &encode_command(&cmd).unwrap(),
        ))
        .unwrap();
        assert!(matches!(
            a.push(pdv(1, PDataValueType::Data, true, &[0u8; 10])),
            Err(AssemblyError::TooLarge { .. })
        ));
    }

    #[test]
    fn packing_respects_the_peer_maximum() {
        let command = vec![0u8; 100];
        let data = vec![1u8; 1000];
        // Everything fits one PDU.
        let one = encode_message(3, &command, Some(&data), 16384).unwrap();
        assert_eq!(one.len(), 6 + (100 + 6) + (1000 + 6));
        // A small peer maximum forces several PDUs, none over the limit.
        let many = encode_message(3, &command, Some(&data), 256).unwrap();
        let mut pos = 0;
        let mut pdus = 0;
        let mut payload = 0;
        while pos < many.len() {
            let len = u32::from_be_bytes(many[pos + 2..pos + 6].try_into().unwrap()) as usize;
            assert!(len <= 256, "PDU of {len} bytes");
            let pdu = dicom_ul::pdu::read_pdu(&many[pos..pos + 6 + len], 16384, true)
                .unwrap()
                .unwrap();
            let Pdu::PData { data } = pdu else {
                panic!("not P-DATA")
            };
            payload += data.iter().map(|d| d.data.len()).sum::<usize>();
            pos += 6 + len;
            pdus += 1;
        }
        assert_eq!(payload, 1100);
        assert!(pdus >= 5);
    }
}
