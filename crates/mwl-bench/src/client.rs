//! A small async DICOM client for Modality Worklist C-FIND load.
//!
//! It associates with dicom-ul's async client (Implicit VR Little Endian), sends a C-FIND
//! request as one P-DATA PDU and reads the responses until the final one. Response
//! command sets are read with a tiny Implicit VR LE scanner (status and data set type
//! only) and identifiers are counted, not decoded: the load generator must not be the
//! bottleneck of the servers it measures.

use std::time::Duration;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::association::client::{AsyncClientAssociation, ClientAssociationOptions};
use dicom_ul::pdu::{
    AbortRQSource, PDataValue, PDataValueType, Pdu, PresentationContextResultReason,
};
use tokio::net::TcpStream;

/// Modality Worklist Information Model – FIND.
pub const MWL_FIND: &str = uids::MODALITY_WORKLIST_INFORMATION_MODEL_FIND;
/// Implicit VR Little Endian.
pub const IMPLICIT_LE: &str = uids::IMPLICIT_VR_LITTLE_ENDIAN;

/// Why an association or a C-FIND failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The association could not be established.
    #[error("association: {0}")]
    Associate(#[source] dicom_ul::association::Error),
    /// The server did not accept the MWL FIND presentation context.
    #[error("MWL FIND was not accepted")]
    NotAccepted,
    /// Sending the request failed.
    #[error("send: {0}")]
    Send(#[source] dicom_ul::association::Error),
    /// Receiving a response failed.
    #[error("receive: {0}")]
    Receive(#[source] dicom_ul::association::Error),
    /// The server aborted the association.
    #[error("aborted by the server: {0:?}")]
    Aborted(AbortRQSource),
    /// The server released the association in the middle of a C-FIND.
    #[error("the server released the association")]
    Released,
    /// A PDU that has no place in a C-FIND exchange (its name).
    #[error("unexpected PDU: {0}")]
    UnexpectedPdu(&'static str),
    /// A response whose command set has no status.
    #[error("response command set without a status")]
    NoStatus,
    /// A received PDU could not be re-encoded for a recording.
    #[error("recording a PDU: {0}")]
    Record(#[source] dicom_ul::pdu::WriteError),
    /// The A-RELEASE exchange failed.
    #[error("release: {0}")]
    Release(#[source] dicom_ul::association::Error),
}

/// Where and as whom to associate.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Our AE title.
    pub calling_ae: String,
    /// The server's AE title.
    pub called_ae: String,
    /// Largest PDU we accept.
    pub max_pdu: u32,
    /// Timeout of connecting and of each socket read or write.
    pub io_timeout: Duration,
}

/// What one C-FIND returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindOutcome {
    /// The final status (0000: success).
    pub status: u16,
    /// Identifiers received with pending (FF00 / FF01) responses.
    pub matches: u64,
    /// How many of the pending responses were FF01 (optional keys not supported).
    pub pending_ff01: u64,
}

/// An established association with an MWL SCP.
#[derive(Debug)]
pub struct Connection {
    assoc: AsyncClientAssociation<TcpStream>,
    context_id: u8,
    next_id: u16,
    command_buf: Vec<u8>,
}

impl Connection {
    /// Connects and associates, proposing MWL FIND in Implicit VR Little Endian.
    pub async fn open(target: &Target) -> Result<Connection, ClientError> {
        let assoc = ClientAssociationOptions::new()
            .calling_ae_title(target.calling_ae.clone())
            .called_ae_title(target.called_ae.clone())
            .with_presentation_context(MWL_FIND, vec![IMPLICIT_LE])
            .max_pdu_length(target.max_pdu)
            .connection_timeout(target.io_timeout)
            .read_timeout(target.io_timeout)
            .write_timeout(target.io_timeout)
            .establish_async((target.host.as_str(), target.port))
            .await
            .map_err(ClientError::Associate)?;
        let context_id = assoc
            .presentation_contexts()
            .iter()
            .find(|pc| {
                pc.abstract_syntax.trim_end_matches('\0') == MWL_FIND
                    && pc.reason == PresentationContextResultReason::Acceptance
            })
            .map(|pc| pc.id)
            .ok_or(ClientError::NotAccepted)?;
        Ok(Connection {
            assoc,
            context_id,
            next_id: 1,
            command_buf: Vec::new(),
        })
    }

    /// The presentation context ID the server accepted for MWL FIND.
    pub fn context_id(&self) -> u8 {
        self.context_id
    }

    /// Sends a C-FIND with `identifier` (an Implicit VR LE data set) and reads every
    /// response until the final one.
    pub async fn find(&mut self, identifier: &[u8]) -> Result<FindOutcome, ClientError> {
        self.find_inner(identifier, None).await
    }

    /// [`find`](Self::find), appending each P-DATA-TF PDU of the answer to `pdus` as it
    /// came (re-encoded from dicom-ul's parse, which gives the same bytes).
    pub async fn find_recorded(
        &mut self,
        identifier: &[u8],
        pdus: &mut Vec<u8>,
    ) -> Result<FindOutcome, ClientError> {
        self.find_inner(identifier, Some(pdus)).await
    }

    async fn find_inner(
        &mut self,
        identifier: &[u8],
        mut record: Option<&mut Vec<u8>>,
    ) -> Result<FindOutcome, ClientError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let command = find_command(id);
        let pdvs = vec![
            PDataValue {
                presentation_context_id: self.context_id,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command,
            },
            PDataValue {
                presentation_context_id: self.context_id,
                value_type: PDataValueType::Data,
                is_last: true,
                data: identifier.to_vec(),
            },
        ];
        self.assoc
            .send(&Pdu::PData { data: pdvs })
            .await
            .map_err(ClientError::Send)?;
        let mut matches = 0u64;
        let mut pending_ff01 = 0u64;
        let mut awaiting_data = false;
        let mut last_pending = false;
        let mut final_status = None;
        self.command_buf.clear();
        loop {
            let pdu = self.assoc.receive().await.map_err(ClientError::Receive)?;
            if let (Some(out), Pdu::PData { .. }) = (record.as_deref_mut(), &pdu) {
                dicom_ul::pdu::write_pdu(out, &pdu).map_err(ClientError::Record)?;
            }
            let data = match pdu {
                Pdu::PData { data } => data,
                Pdu::AbortRQ { source } => return Err(ClientError::Aborted(source)),
                Pdu::ReleaseRQ => return Err(ClientError::Released),
                other => return Err(ClientError::UnexpectedPdu(pdu_name(&other))),
            };
            for v in data {
                match v.value_type {
                    PDataValueType::Command => {
                        self.command_buf.extend_from_slice(&v.data);
                        if !v.is_last {
                            continue;
                        }
                        let (status, data_set_type) =
                            scan_command(&self.command_buf).ok_or(ClientError::NoStatus)?;
                        self.command_buf.clear();
                        awaiting_data = data_set_type != 0x0101;
                        last_pending = matches!(status, 0xFF00 | 0xFF01);
                        if status == 0xFF01 {
                            pending_ff01 += 1;
                        }
                        if !last_pending {
                            final_status = Some(status);
                        }
                    }
                    PDataValueType::Data => {
                        if v.is_last {
                            if awaiting_data && last_pending {
                                matches += 1;
                            }
                            awaiting_data = false;
                        }
                    }
                }
            }
            if let Some(status) = final_status
                && !awaiting_data
            {
                return Ok(FindOutcome {
                    status,
                    matches,
                    pending_ff01,
                });
            }
        }
    }

    /// Releases the association (A-RELEASE), bounded by the I/O timeout.
    pub async fn release(self) -> Result<(), ClientError> {
        self.assoc.release().await.map_err(ClientError::Release)
    }
}

fn pdu_name(pdu: &Pdu) -> &'static str {
    match pdu {
        Pdu::Unknown { .. } => "unknown",
        Pdu::AssociationRQ(_) => "A-ASSOCIATE-RQ",
        Pdu::AssociationAC(_) => "A-ASSOCIATE-AC",
        Pdu::AssociationRJ(_) => "A-ASSOCIATE-RJ",
        Pdu::PData { .. } => "P-DATA-TF",
        Pdu::ReleaseRQ => "A-RELEASE-RQ",
        Pdu::ReleaseRP => "A-RELEASE-RP",
        Pdu::AbortRQ { .. } => "A-ABORT",
    }
}

/// A C-FIND-RQ command set for MWL FIND, encoded in Implicit VR LE.
pub fn find_command(message_id: u16) -> Vec<u8> {
    let obj = InMemDicomObject::command_from_element_iter([
        DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, uid(MWL_FIND)),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(0x0020u16)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(message_id)),
        DataElement::new(tags::PRIORITY, VR::US, PrimitiveValue::from(0u16)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(0x0000u16),
        ),
    ]);
    encode(&obj)
}

/// A UI value, padded with NUL to an even length.
pub fn uid(s: &str) -> PrimitiveValue {
    let mut s = s.to_string();
    if s.len() % 2 == 1 {
        s.push('\0');
    }
    PrimitiveValue::from(s)
}

/// A data set in Implicit VR Little Endian.
pub fn encode(obj: &InMemDicomObject) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing plain elements into a Vec cannot fail.
    let _ = obj.write_dataset_with_ts(&mut out, &IMPLICIT_VR_LITTLE_ENDIAN.erased());
    out
}

/// Status (0000,0900) and CommandDataSetType (0000,0800) of an Implicit VR LE command
/// set, without decoding the rest. `None` without a status.
pub fn scan_command(bytes: &[u8]) -> Option<(u16, u16)> {
    let mut status = None;
    let mut data_set_type = 0x0101;
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let group = u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let element = u16::from_le_bytes([bytes[at + 2], bytes[at + 3]]);
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let start = at + 8;
        let end = start.checked_add(len)?;
        if end > bytes.len() || group != 0 {
            break;
        }
        let value = &bytes[start..end];
        if len >= 2 {
            let v = u16::from_le_bytes([value[0], value[1]]);
            match element {
                0x0900 => status = Some(v),
                0x0800 => data_set_type = v,
                _ => {}
            }
        }
        at = end;
    }
    status.map(|s| (s, data_set_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_a_command_set() {
        let obj = InMemDicomObject::command_from_element_iter([
            DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(0x8020u16)),
            DataElement::new(
                tags::COMMAND_DATA_SET_TYPE,
                VR::US,
                PrimitiveValue::from(0x0000u16),
            ),
            DataElement::new(tags::STATUS, VR::US, PrimitiveValue::from(0xFF00u16)),
        ]);
        assert_eq!(scan_command(&encode(&obj)), Some((0xFF00, 0x0000)));
        let fin = InMemDicomObject::command_from_element_iter([
            DataElement::new(
                tags::COMMAND_DATA_SET_TYPE,
                VR::US,
                PrimitiveValue::from(0x0101u16),
            ),
            DataElement::new(tags::STATUS, VR::US, PrimitiveValue::from(0x0000u16)),
        ]);
        assert_eq!(scan_command(&encode(&fin)), Some((0x0000, 0x0101)));
        assert_eq!(scan_command(&[1, 2, 3]), None);
    }
}
