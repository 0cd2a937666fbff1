//! Upper-layer framing the replay needs, on bytes: the PDU header, the PDV items of a
//! P-DATA-TF PDU (PS3.8 9.3.5), and a DIMSE request assembled from its PDVs.

/// Bytes of a PDU header: type, reserved, length (u32 BE).
pub const PDU_HEADER: usize = 6;
/// PDU types.
pub const A_ASSOCIATE_RQ: u8 = 0x01;
/// P-DATA-TF.
pub const P_DATA_TF: u8 = 0x04;
/// A-RELEASE-RQ.
pub const A_RELEASE_RQ: u8 = 0x05;
/// A-ABORT.
pub const A_ABORT: u8 = 0x07;
/// An A-RELEASE-RP PDU.
pub const RELEASE_RP: [u8; 10] = [0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0];
/// An A-ABORT PDU (source: service user, no reason).
pub const ABORT: [u8; 10] = [0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0];
/// CommandField of a C-FIND-RQ.
pub const C_FIND_RQ: u16 = 0x0020;

/// Why PDVs could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// A PDV item runs past its PDU, or is shorter than its header (its offset).
    #[error("bad PDV item at byte {0}")]
    BadItem(usize),
    /// A fragment's presentation context differs from the message's first one.
    #[error("presentation context {got} in a message on context {expected}")]
    MixedContexts {
        /// The context of the message's first fragment.
        expected: u8,
        /// The fragment's.
        got: u8,
    },
    /// A data fragment before the command set is complete.
    #[error("data set before the end of the command set")]
    DataBeforeCommand,
    /// The command set has no CommandField.
    #[error("command set without CommandField")]
    NoCommandField,
}

/// The type and length of a PDU from its header.
pub fn pdu_header(h: &[u8; PDU_HEADER]) -> (u8, u32) {
    (h[0], u32::from_be_bytes([h[2], h[3], h[4], h[5]]))
}

/// One PDV item of a P-DATA-TF PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pdv<'a> {
    /// Presentation context ID.
    pub context_id: u8,
    /// A command fragment (else a data set fragment).
    pub command: bool,
    /// The last fragment of its command or data set.
    pub last: bool,
    /// The fragment.
    pub data: &'a [u8],
}

/// The PDV items of a P-DATA-TF PDU's body (the bytes after its header).
pub fn pdvs(body: &[u8]) -> impl Iterator<Item = Result<Pdv<'_>, FramingError>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at >= body.len() {
            return None;
        }
        let item = (|| {
            let head = body.get(at..at + 6)?;
            let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let end = at.checked_add(4)?.checked_add(len)?;
            let data = body.get(at + 6..end).filter(|_| len >= 2)?;
            Some((end, head[4], head[5], data))
        })();
        match item {
            Some((end, context_id, mch, data)) => {
                at = end;
                Some(Ok(Pdv {
                    context_id,
                    command: mch & 1 == 1,
                    last: mch & 2 == 2,
                    data,
                }))
            }
            None => {
                let bad = at;
                at = body.len();
                Some(Err(FramingError::BadItem(bad)))
            }
        }
    })
}

/// One P-DATA-TF PDU holding one PDV item.
pub fn pdata(context_id: u8, command: bool, last: bool, data: &[u8]) -> Vec<u8> {
    let item_len = data.len() + 2;
    let mut out = Vec::with_capacity(PDU_HEADER + 4 + item_len);
    out.extend_from_slice(&[P_DATA_TF, 0]);
    out.extend_from_slice(
        &u32::try_from(item_len + 4)
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&u32::try_from(item_len).unwrap_or(u32::MAX).to_be_bytes());
    out.push(context_id);
    out.push(u8::from(command) | (u8::from(last) << 1));
    out.extend_from_slice(data);
    out
}

/// Whether `bytes` is one or more whole P-DATA-TF PDUs with well-formed PDV items.
pub fn is_pdata_sequence(mut bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return false;
    }
    while !bytes.is_empty() {
        let Some(h) = bytes.first_chunk::<PDU_HEADER>() else {
            return false;
        };
        let (kind, len) = pdu_header(h);
        let Some(body) = bytes.get(PDU_HEADER..PDU_HEADER + len as usize) else {
            return false;
        };
        if kind != P_DATA_TF || pdvs(body).any(|p| p.is_err()) {
            return false;
        }
        bytes = &bytes[PDU_HEADER + len as usize..];
    }
    true
}

/// A DIMSE request, assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its presentation context ID.
    pub context_id: u8,
    /// CommandField (0x0020: C-FIND-RQ).
    pub command_field: u16,
    /// The data set (empty when the command says there is none).
    pub identifier: Vec<u8>,
}

/// Assembles requests from PDV items, across PDUs.
#[derive(Debug, Default)]
pub struct Assembler {
    context_id: Option<u8>,
    command: Vec<u8>,
    command_field: Option<u16>,
    data: Vec<u8>,
}

impl Assembler {
    /// Takes one PDV item; a request when it completes one.
    pub fn push(&mut self, pdv: Pdv<'_>) -> Result<Option<Request>, FramingError> {
        let expected = *self.context_id.get_or_insert(pdv.context_id);
        if pdv.context_id != expected {
            return Err(FramingError::MixedContexts {
                expected,
                got: pdv.context_id,
            });
        }
        if pdv.command {
            self.command.extend_from_slice(pdv.data);
            if !pdv.last {
                return Ok(None);
            }
            let (field, data_set_type) =
                command_fields(&self.command).ok_or(FramingError::NoCommandField)?;
            self.command.clear();
            if data_set_type == 0x0101 {
                return Ok(Some(self.finish(field)));
            }
            self.command_field = Some(field);
            return Ok(None);
        }
        let field = self.command_field.ok_or(FramingError::DataBeforeCommand)?;
        self.data.extend_from_slice(pdv.data);
        Ok(pdv.last.then(|| self.finish(field)))
    }

    fn finish(&mut self, command_field: u16) -> Request {
        let request = Request {
            context_id: self.context_id.take().unwrap_or(0),
            command_field,
            identifier: std::mem::take(&mut self.data),
        };
        self.command_field = None;
        request
    }
}

/// CommandField (0000,0100) and CommandDataSetType (0000,0800, default 0x0101: none) of
/// an Implicit VR LE command set; `None` without a CommandField.
fn command_fields(bytes: &[u8]) -> Option<(u16, u16)> {
    let (mut field, mut data_set_type) = (None, 0x0101);
    let mut at = 0usize;
    while let Some(h) = bytes.get(at..at + 8) {
        let (group, element) = (
            u16::from_le_bytes([h[0], h[1]]),
            u16::from_le_bytes([h[2], h[3]]),
        );
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let value = bytes.get(at + 8..(at + 8).checked_add(len)?)?;
        if group != 0 {
            break;
        }
        if let [a, b, ..] = value {
            match element {
                0x0100 => field = Some(u16::from_le_bytes([*a, *b])),
                0x0800 => data_set_type = u16::from_le_bytes([*a, *b]),
                _ => {}
            }
        }
        at += 8 + len;
    }
    field.map(|f| (f, data_set_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::find_command;

    fn body(pdu: &[u8]) -> &[u8] {
        &pdu[PDU_HEADER..]
    }

    #[test]
    fn builds_and_reads_pdv_items() {
        let pdu = pdata(3, true, false, b"abcd");
        let h = pdu.first_chunk::<PDU_HEADER>().copied().unwrap_or_default();
        assert_eq!(pdu_header(&h), (P_DATA_TF, pdu.len() as u32 - 6));
        let items: Vec<_> = pdvs(body(&pdu)).collect();
        assert_eq!(
            items,
            vec![Ok(Pdv {
                context_id: 3,
                command: true,
                last: false,
                data: b"abcd"
            })]
        );
        let mut two = pdata(1, true, true, b"xy");
        two.extend(pdata(1, false, true, b"z"));
        assert!(is_pdata_sequence(&two));
        assert!(!is_pdata_sequence(&two[..two.len() - 1]));
        assert!(!is_pdata_sequence(&RELEASE_RP));
        // An item claiming more bytes than its PDU holds.
        let mut bad = pdata(1, true, true, b"xy");
        bad[9] = 200;
        assert_eq!(pdvs(body(&bad)).next(), Some(Err(FramingError::BadItem(0))));
    }

    #[test]
    fn assembles_a_fragmented_c_find() {
        let command = find_command(7);
        let (c1, c2) = command.split_at(10);
        let mut a = Assembler::default();
        let pdv = |command, last, data| Pdv {
            context_id: 1,
            command,
            last,
            data,
        };
        assert_eq!(a.push(pdv(true, false, c1)), Ok(None));
        assert_eq!(a.push(pdv(true, true, c2)), Ok(None));
        assert_eq!(a.push(pdv(false, false, b"iden")), Ok(None));
        assert_eq!(
            a.push(pdv(false, true, b"tifier")),
            Ok(Some(Request {
                context_id: 1,
                command_field: C_FIND_RQ,
                identifier: b"identifier".to_vec(),
            }))
        );
        // The next request starts afresh.
        assert_eq!(
            a.push(pdv(false, true, b"x")),
            Err(FramingError::DataBeforeCommand)
        );
        let mut a = Assembler::default();
        assert_eq!(
            a.push(pdv(true, true, b"\0\0")),
            Err(FramingError::NoCommandField)
        );
        let mut a = Assembler::default();
        assert_eq!(a.push(pdv(true, false, c1)), Ok(None));
        assert_eq!(
            a.push(Pdv {
                context_id: 3,
                ..pdv(true, true, c2)
            }),
            Err(FramingError::MixedContexts {
                expected: 1,
                got: 3
            })
        );
    }
}
