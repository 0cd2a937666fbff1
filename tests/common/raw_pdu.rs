//! A raw-socket DICOM peer for hostile-client tests: PDUs built by hand (valid or not),
//! written to a plain `TcpStream`, and the server's answers read back with dicom-ul's PDU
//! reader.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::time::{Duration, Instant};

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::pdu::{PDataValueType, Pdu, PresentationContextResultReason, read_pdu as parse_pdu};

use super::dicom_client::{MWL_FIND, VERIFICATION, command_u16, encode, uid};

/// DICOM application context name.
pub const APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";
/// CT Image Storage: an abstract syntax the server does not support.
pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
/// Implicit VR Little Endian.
pub const IMPLICIT: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT: &str = "1.2.840.10008.1.2.1";

/// What the server did after we wrote something.
#[derive(Debug)]
pub enum Reply {
    /// It sent this PDU.
    Pdu(Pdu),
    /// It closed the connection (EOF) without sending a (further) PDU.
    Closed,
    /// It reset the connection.
    Reset(String),
    /// Nothing within the time allowed.
    Silent,
    /// Bytes that are not a PDU.
    Garbage(String),
}

impl Reply {
    /// Short text for logs and assertion messages.
    pub fn describe(&self) -> String {
        match self {
            Reply::Pdu(Pdu::AssociationAC(_)) => "A-ASSOCIATE-AC".into(),
            Reply::Pdu(Pdu::AssociationRJ(rj)) => format!("A-ASSOCIATE-RJ {rj:?}"),
            Reply::Pdu(Pdu::AbortRQ { source }) => format!("A-ABORT {source:?}"),
            Reply::Pdu(Pdu::PData { data }) => format!("P-DATA ({} PDVs)", data.len()),
            Reply::Pdu(Pdu::ReleaseRP) => "A-RELEASE-RP".into(),
            Reply::Pdu(other) => format!("{other:?}"),
            Reply::Closed => "connection closed".into(),
            Reply::Reset(e) => format!("connection reset ({e})"),
            Reply::Silent => "no answer".into(),
            Reply::Garbage(e) => format!("unreadable answer ({e})"),
        }
    }

    /// Whether the server ended the connection: A-ABORT, A-ASSOCIATE-RJ, close or reset.
    pub fn ends_connection(&self) -> bool {
        matches!(
            self,
            Reply::Pdu(Pdu::AbortRQ { .. } | Pdu::AssociationRJ(_))
                | Reply::Closed
                | Reply::Reset(_)
        )
    }
}

/// A plain TCP connection to the server.
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects to 127.0.0.1:`port`.
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes bytes; an error when the server already closed the connection.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Closes our sending side (the server reads EOF).
    pub fn close_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// The next PDU the server sends, or what happened instead, waiting up to `timeout`.
    pub fn read(&mut self, timeout: Duration) -> Reply {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.buf.is_empty() {
                match parse_pdu(self.buf.as_slice(), dicom_ul::pdu::MAXIMUM_PDU_SIZE, false) {
                    Ok(Some(pdu)) => {
                        let used = 6 + u32::from_be_bytes([
                            self.buf[2],
                            self.buf[3],
                            self.buf[4],
                            self.buf[5],
                        ]) as usize;
                        self.buf.drain(..used);
                        return Reply::Pdu(pdu);
                    }
                    Ok(None) => {}
                    Err(e) => return Reply::Garbage(e.to_string()),
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Reply::Silent;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("set read timeout");
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Reply::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Reply::Silent;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Reply::Reset(e.to_string()),
            }
        }
    }

    /// Reads until the server ends the connection (A-ABORT, A-ASSOCIATE-RJ, close or reset);
    /// the first such event, or [`Reply::Silent`] when it keeps the connection open for
    /// `timeout`. PDUs that do not end the connection are skipped.
    pub fn until_ended(&mut self, timeout: Duration) -> Reply {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = self.read(left);
            if r.ends_connection() || matches!(r, Reply::Silent | Reply::Garbage(_)) {
                return r;
            }
        }
    }
}

/// A PDU of `pdu_type` around `body` (the length field is the body's length).
pub fn pdu(pdu_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![pdu_type, 0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// One proposed presentation context: id, abstract syntax, transfer syntaxes.
pub type Proposed<'a> = (u8, &'a str, &'a [&'a str]);

fn item(item_type: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![item_type, 0];
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out
}

fn ae(title: &str) -> [u8; 16] {
    let mut out = [b' '; 16];
    for (o, b) in out.iter_mut().zip(title.bytes()) {
        *o = b;
    }
    out
}

/// An A-ASSOCIATE-RQ, byte by byte (PS3.8 9.3.2), with `protocol_version`, the AE
/// titles, the proposed contexts and a maximum PDU length of `max_pdu`.
pub fn associate_rq(
    protocol_version: u16,
    called: &str,
    calling: &str,
    contexts: &[Proposed],
    max_pdu: u32,
) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&protocol_version.to_be_bytes());
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&ae(called));
    body.extend_from_slice(&ae(calling));
    body.extend_from_slice(&[0; 32]);
    body.extend(item(0x10, APPLICATION_CONTEXT.as_bytes()));
    for (id, abstract_syntax, transfer_syntaxes) in contexts {
        let mut pc = vec![*id, 0, 0, 0];
        pc.extend(item(0x30, abstract_syntax.as_bytes()));
        for ts in *transfer_syntaxes {
            pc.extend(item(0x40, ts.as_bytes()));
        }
        body.extend(item(0x20, &pc));
    }
    let mut user = item(0x51, &max_pdu.to_be_bytes());
    user.extend(item(0x52, b"1.2.826.0.1.3680043.10.9999"));
    body.extend(item(0x50, &user));
    pdu(0x01, &body)
}

/// The contexts the hostile tests propose: 1 Verification, 3 MWL FIND, 5 CT Image
/// Storage (rejected by the server).
pub const CONTEXTS: [Proposed<'static>; 3] = [
    (1, VERIFICATION, &[IMPLICIT]),
    (3, MWL_FIND, &[IMPLICIT]),
    (5, CT_IMAGE_STORAGE, &[IMPLICIT]),
];

/// One PDV: context id, command (else data set), last fragment, bytes.
pub type Pdv<'a> = (u8, bool, bool, &'a [u8]);

/// A P-DATA-TF PDU holding `pdvs`.
pub fn pdata(pdvs: &[Pdv]) -> Vec<u8> {
    let mut body = Vec::new();
    for (ctx, command, last, data) in pdvs {
        body.extend_from_slice(&(data.len() as u32 + 2).to_be_bytes());
        body.push(*ctx);
        body.push(u8::from(*command) | (u8::from(*last) << 1));
        body.extend_from_slice(data);
    }
    pdu(0x04, &body)
}

/// A-RELEASE-RQ.
pub fn release_rq() -> Vec<u8> {
    pdu(0x05, &[0; 4])
}

/// `n` pseudo-random bytes (xorshift64*, reproducible from `seed`).
pub fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// A C-ECHO-RQ command set.
pub fn echo_command(message_id: u16) -> Vec<u8> {
    encode(&InMemDicomObject::command_from_element_iter([
        DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, uid(VERIFICATION)),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(0x0030u16)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(message_id)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(0x0101u16),
        ),
    ]))
}

/// An MWL C-FIND-RQ command set announcing a data set.
pub fn find_command(message_id: u16) -> Vec<u8> {
    encode(&InMemDicomObject::command_from_element_iter([
        DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, uid(MWL_FIND)),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(0x0020u16)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(message_id)),
        DataElement::new(tags::PRIORITY, VR::US, PrimitiveValue::from(0u16)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(0x0000u16),
        ),
    ]))
}

/// A hand-made association.
pub struct RawAssoc {
    /// The connection.
    pub raw: Raw,
    /// The accepted presentation contexts: id and abstract syntax.
    pub accepted: Vec<(u8, String)>,
    /// The ids of the rejected ones.
    pub rejected: Vec<u8>,
}

/// A response's status and command field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Command Field (0000,0100).
    pub field: u16,
    /// Status (0000,0900).
    pub status: u16,
}

impl RawAssoc {
    /// Associates with 127.0.0.1:`port` (called MWLBRIDGE, calling `calling`), proposing
    /// [`CONTEXTS`].
    pub fn establish(port: u16, calling: &str) -> Result<RawAssoc, String> {
        RawAssoc::establish_with(port, calling, &CONTEXTS)
    }

    /// Associates proposing `contexts`.
    pub fn establish_with(
        port: u16,
        calling: &str,
        contexts: &[Proposed],
    ) -> Result<RawAssoc, String> {
        let mut raw = Raw::connect(port);
        raw.send(&associate_rq(1, super::scp::AE, calling, contexts, 16_384))
            .map_err(|e| e.to_string())?;
        match raw.read(Duration::from_secs(10)) {
            Reply::Pdu(Pdu::AssociationAC(ac)) => {
                let mut accepted = Vec::new();
                let mut rejected = Vec::new();
                for pc in &ac.presentation_contexts {
                    if pc.reason == PresentationContextResultReason::Acceptance {
                        let (_, syntax, _) = contexts
                            .iter()
                            .find(|(id, _, _)| *id == pc.id)
                            .ok_or_else(|| format!("unknown context {}", pc.id))?;
                        accepted.push((pc.id, syntax.to_string()));
                    } else {
                        rejected.push(pc.id);
                    }
                }
                Ok(RawAssoc {
                    raw,
                    accepted,
                    rejected,
                })
            }
            other => Err(other.describe()),
        }
    }

    /// The accepted context of `abstract_syntax`.
    pub fn context(&self, abstract_syntax: &str) -> u8 {
        self.accepted
            .iter()
            .find(|(_, s)| s == abstract_syntax)
            .map(|(id, _)| *id)
            .expect("an accepted context")
    }

    /// Reads response commands until a final (non-pending) one; its status, with the
    /// number of pending responses before it. Anything else the server does (A-ABORT,
    /// close...) is the error.
    pub fn final_response(&mut self, timeout: Duration) -> Result<(Status, usize), Box<Reply>> {
        let deadline = Instant::now() + timeout;
        let mut command = Vec::new();
        let mut pending = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let data = match self.raw.read(left) {
                Reply::Pdu(Pdu::PData { data }) => data,
                other => return Err(Box::new(other)),
            };
            for pdv in data {
                if pdv.value_type != PDataValueType::Command {
                    continue;
                }
                command.extend_from_slice(&pdv.data);
                if !pdv.is_last {
                    continue;
                }
                let obj = InMemDicomObject::read_dataset_with_ts(
                    command.as_slice(),
                    &IMPLICIT_VR_LITTLE_ENDIAN.erased(),
                )
                .map_err(|e| Box::new(Reply::Garbage(e.to_string())))?;
                command.clear();
                let status = Status {
                    field: command_u16(&obj, tags::COMMAND_FIELD).unwrap_or(0),
                    status: command_u16(&obj, tags::STATUS).unwrap_or(0xFFFF),
                };
                if matches!(status.status, 0xFF00 | 0xFF01) {
                    pending += 1;
                } else {
                    return Ok((status, pending));
                }
            }
        }
    }

    /// C-ECHO on this association; the response's status.
    pub fn echo(&mut self, message_id: u16) -> Result<Status, Box<Reply>> {
        let ctx = self.context(VERIFICATION);
        self.raw
            .send(&pdata(&[(ctx, true, true, &echo_command(message_id))]))
            .map_err(|e| Box::new(Reply::Reset(e.to_string())))?;
        self.final_response(Duration::from_secs(10)).map(|(s, _)| s)
    }

    /// Sends a C-FIND-RQ and its identifier `data`, the identifier cut into P-DATA PDUs
    /// of at most `fragment` bytes. A write error (the server closed the connection
    /// meanwhile) is returned as [`Reply::Reset`].
    pub fn send_find(
        &mut self,
        message_id: u16,
        data: &[u8],
        fragment: usize,
    ) -> Result<(), Box<Reply>> {
        let ctx = self.context(MWL_FIND);
        let err = |e: std::io::Error| Box::new(Reply::Reset(e.to_string()));
        self.raw
            .send(&pdata(&[(ctx, true, true, &find_command(message_id))]))
            .map_err(err)?;
        let n = data.len().div_ceil(fragment).max(1);
        for (i, chunk) in data.chunks(fragment.max(1)).enumerate() {
            self.raw
                .send(&pdata(&[(ctx, false, i + 1 == n, chunk)]))
                .map_err(err)?;
        }
        if data.is_empty() {
            self.raw
                .send(&pdata(&[(ctx, false, true, &[])]))
                .map_err(err)?;
        }
        Ok(())
    }

    /// A-RELEASE: true when the server answered A-RELEASE-RP.
    pub fn release(mut self) -> bool {
        if self.raw.send(&release_rq()).is_err() {
            return false;
        }
        matches!(
            self.raw.read(Duration::from_secs(10)),
            Reply::Pdu(Pdu::ReleaseRP)
        )
    }
}
