//! A small DICOM client on dicom-ul's (synchronous) `ClientAssociation`, for what
//! `findscu` cannot do: choosing how a C-FIND is split into PDUs and fragments, sending
//! raw identifier bytes, cancelling after N responses, several operations and C-ECHOs on
//! one association, and reading every response command (statuses, message IDs,
//! OffendingElement).

use std::net::TcpStream;
use std::time::Duration;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::{
    EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
};
use dicom_ul::association::client::{ClientAssociation, ClientAssociationOptions};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu, PresentationContextResultReason};

/// Verification SOP class.
pub const VERIFICATION: &str = "1.2.840.10008.1.1";
/// Modality Worklist Information Model – FIND.
pub const MWL_FIND: &str = "1.2.840.10008.5.1.4.31";

/// How a C-FIND request is put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Command and data set as two PDVs of one P-DATA PDU.
    OnePdu,
    /// Command in one P-DATA PDU, data set in the next.
    SeparatePdus,
    /// The command set cut in two fragments (each in its own PDU), then the data set.
    FragmentedCommand,
}

/// The responses to one request.
#[derive(Debug, Default)]
pub struct Responses {
    /// Every response command set, in order.
    pub commands: Vec<InMemDicomObject>,
    /// Every status (0000,0900), in order.
    pub statuses: Vec<u16>,
    /// The identifiers (data sets) received, in order.
    pub identifiers: Vec<InMemDicomObject>,
    /// The identifiers' bytes as received, in order.
    pub raw_identifiers: Vec<Vec<u8>>,
}

impl Responses {
    /// The last status.
    pub fn final_status(&self) -> Option<u16> {
        self.statuses.last().copied()
    }
    /// The last command set.
    pub fn final_command(&self) -> &InMemDicomObject {
        self.commands.last().expect("a response")
    }
    /// The top-level values of `tag` in the identifiers, sorted.
    pub fn values(&self, tag: Tag) -> Vec<String> {
        let mut v: Vec<String> = self
            .identifiers
            .iter()
            .map(|o| super::scp::text(o, tag))
            .collect();
        v.sort();
        v
    }
}

/// An open association with the server.
pub struct Client {
    assoc: ClientAssociation<TcpStream>,
    next_id: u16,
    /// Identifiers travel in Explicit VR Little Endian (else Implicit).
    explicit: bool,
}

/// A u16 of a command set.
pub fn command_u16(obj: &InMemDicomObject, tag: Tag) -> Option<u16> {
    obj.get(tag).and_then(|e| e.to_int::<u16>().ok())
}

/// A UI value padded to even length.
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
    obj.write_dataset_with_ts(&mut out, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .expect("encode");
    out
}

/// A C-ECHO-RQ command set, encoded.
fn echo_rq(id: u16) -> Vec<u8> {
    encode(&InMemDicomObject::command_from_element_iter([
        DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, uid(VERIFICATION)),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(0x0030u16)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(id)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(0x0101u16),
        ),
    ]))
}

/// A C-CANCEL-RQ command set for message `id`, encoded.
fn cancel_rq(id: u16) -> Vec<u8> {
    encode(&InMemDicomObject::command_from_element_iter([
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(0x0FFFu16)),
        DataElement::new(
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            VR::US,
            PrimitiveValue::from(id),
        ),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(0x0101u16),
        ),
    ]))
}

fn pdv(ctx: u8, value_type: PDataValueType, is_last: bool, data: Vec<u8>) -> PDataValue {
    PDataValue {
        presentation_context_id: ctx,
        value_type,
        is_last,
        data,
    }
}

impl Client {
    /// Associates with 127.0.0.1:`port` as `calling` calling `called`, proposing
    /// Verification and MWL FIND in Implicit VR Little Endian.
    pub fn connect(
        port: u16,
        calling: &str,
        called: &str,
    ) -> Result<Client, dicom_ul::association::Error> {
        let assoc = ClientAssociationOptions::new()
            .calling_ae_title(calling.to_string())
            .called_ae_title(called.to_string())
            .with_presentation_context(VERIFICATION, vec![IMPLICIT_VR_LITTLE_ENDIAN.uid()])
            .with_presentation_context(MWL_FIND, vec![IMPLICIT_VR_LITTLE_ENDIAN.uid()])
            .read_timeout(Duration::from_secs(60))
            .establish(("127.0.0.1", port))?;
        Ok(Client {
            assoc,
            next_id: 1,
            explicit: false,
        })
    }

    /// Associates proposing exactly `abstract_syntaxes`, each in Implicit and Explicit VR
    /// Little Endian.
    pub fn connect_with(
        port: u16,
        calling: &str,
        called: &str,
        abstract_syntaxes: &[&str],
    ) -> Result<Client, dicom_ul::association::Error> {
        let mut options = ClientAssociationOptions::new()
            .calling_ae_title(calling.to_string())
            .called_ae_title(called.to_string())
            .read_timeout(Duration::from_secs(20));
        for a in abstract_syntaxes {
            options = options.with_presentation_context(
                a.to_string(),
                vec![
                    IMPLICIT_VR_LITTLE_ENDIAN.uid().to_string(),
                    "1.2.840.10008.1.2.1".to_string(),
                ],
            );
        }
        let assoc = options.establish(("127.0.0.1", port))?;
        Ok(Client {
            assoc,
            next_id: 1,
            explicit: false,
        })
    }

    /// Associates proposing MWL FIND in Explicit VR Little Endian only: identifiers are
    /// sent (by [`find_raw`](Self::find_raw)) and read in Explicit VR.
    pub fn connect_explicit(
        port: u16,
        calling: &str,
        called: &str,
    ) -> Result<Client, dicom_ul::association::Error> {
        let assoc = ClientAssociationOptions::new()
            .calling_ae_title(calling.to_string())
            .called_ae_title(called.to_string())
            .with_presentation_context(MWL_FIND, vec![EXPLICIT_VR_LITTLE_ENDIAN.uid()])
            .read_timeout(Duration::from_secs(20))
            .establish(("127.0.0.1", port))?;
        Ok(Client {
            assoc,
            next_id: 1,
            explicit: true,
        })
    }

    fn context(&self, abstract_syntax: &str) -> u8 {
        self.assoc
            .presentation_contexts()
            .iter()
            .find(|pc| {
                pc.abstract_syntax.trim_end_matches('\0') == abstract_syntax
                    && pc.reason == PresentationContextResultReason::Acceptance
            })
            .map(|pc| pc.id)
            .expect("accepted presentation context")
    }

    /// A fresh message ID.
    pub fn message_id(&mut self) -> u16 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// C-ECHO; returns the response command.
    pub fn echo(&mut self) -> InMemDicomObject {
        let ctx = self.context(VERIFICATION);
        let id = self.message_id();
        let cmd = echo_rq(id);
        self.send(vec![pdv(ctx, PDataValueType::Command, true, cmd)]);
        self.receive_until_final(None).commands.remove(0)
    }

    /// C-ECHO that reports a broken association instead of panicking; the status.
    pub fn try_echo(&mut self) -> Result<u16, String> {
        let ctx = self.context(VERIFICATION);
        let id = self.message_id();
        let cmd = echo_rq(id);
        self.assoc
            .send(&Pdu::PData {
                data: vec![pdv(ctx, PDataValueType::Command, true, cmd)],
            })
            .map_err(|e| e.to_string())?;
        match self.assoc.receive().map_err(|e| e.to_string())? {
            Pdu::PData { data } if !data.is_empty() => {
                let cmd = InMemDicomObject::read_dataset_with_ts(
                    data[0].data.as_slice(),
                    &IMPLICIT_VR_LITTLE_ENDIAN.erased(),
                )
                .map_err(|e| e.to_string())?;
                command_u16(&cmd, tags::STATUS).ok_or_else(|| "no status".to_string())
            }
            other => Err(format!("{other:?}")),
        }
    }

    /// C-FIND with `identifier` (encoded in Implicit VR LE) under message ID `id`.
    pub fn find(&mut self, identifier: &InMemDicomObject, split: Split, id: u16) -> Responses {
        self.find_raw(&encode(identifier), split, id, None)
    }

    /// C-FIND with raw identifier bytes; sends C-CANCEL-RQ after `cancel_after` pending
    /// responses when set. Reads until the final response.
    pub fn find_raw(
        &mut self,
        data: &[u8],
        split: Split,
        id: u16,
        cancel_after: Option<usize>,
    ) -> Responses {
        let ctx = self.context(MWL_FIND);
        let cmd = encode(&InMemDicomObject::command_from_element_iter([
            DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, uid(MWL_FIND)),
            DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(0x0020u16)),
            DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(id)),
            DataElement::new(tags::PRIORITY, VR::US, PrimitiveValue::from(0u16)),
            DataElement::new(
                tags::COMMAND_DATA_SET_TYPE,
                VR::US,
                PrimitiveValue::from(0x0000u16),
            ),
        ]));
        let data_pdv = pdv(ctx, PDataValueType::Data, true, data.to_vec());
        let mut pdus = match split {
            Split::OnePdu => vec![vec![pdv(ctx, PDataValueType::Command, true, cmd), data_pdv]],
            Split::SeparatePdus => vec![
                vec![pdv(ctx, PDataValueType::Command, true, cmd)],
                vec![data_pdv],
            ],
            Split::FragmentedCommand => {
                let (a, b) = cmd.split_at(cmd.len() / 2);
                vec![
                    vec![pdv(ctx, PDataValueType::Command, false, a.to_vec())],
                    vec![pdv(ctx, PDataValueType::Command, true, b.to_vec())],
                    vec![data_pdv],
                ]
            }
        };
        let cancel =
            cancel_after.map(|n| (n, pdv(ctx, PDataValueType::Command, true, cancel_rq(id))));
        match cancel {
            Some((0, c)) => {
                // Right behind the request: in the same write, so that the cancel has
                // arrived by the time the server has read the request, however fast it
                // answers.
                pdus.push(vec![c]);
                self.send_together(pdus);
                self.receive_until_final(None)
            }
            cancel => {
                for p in pdus {
                    self.send(p);
                }
                self.receive_until_final(cancel)
            }
        }
    }

    /// Sends `command` (and `data`) in one P-DATA PDU on the context of
    /// `abstract_syntax`, then reads until a final response.
    pub fn request(
        &mut self,
        abstract_syntax: &str,
        command: &InMemDicomObject,
        data: Option<&[u8]>,
    ) -> Responses {
        let ctx = self.context(abstract_syntax);
        let mut pdvs = vec![pdv(ctx, PDataValueType::Command, true, encode(command))];
        if let Some(d) = data {
            pdvs.push(pdv(ctx, PDataValueType::Data, true, d.to_vec()));
        }
        self.send(pdvs);
        self.receive_until_final(None)
    }

    /// Sends PDVs on the context of `abstract_syntax` as one P-DATA PDU, then returns the
    /// next PDU the server sends (or why there is none).
    pub fn send_raw(
        &mut self,
        abstract_syntax: &str,
        pdvs: Vec<(PDataValueType, bool, Vec<u8>)>,
    ) -> Result<Pdu, String> {
        let ctx = self.context(abstract_syntax);
        let data = pdvs
            .into_iter()
            .map(|(t, last, bytes)| pdv(ctx, t, last, bytes))
            .collect();
        self.assoc
            .send(&Pdu::PData { data })
            .map_err(|e| e.to_string())?;
        self.assoc.receive().map_err(|e| e.to_string())
    }

    /// Sends a C-CANCEL-RQ for message `id` and does not wait for anything.
    pub fn cancel(&mut self, id: u16) {
        let ctx = self.context(MWL_FIND);
        self.send(vec![pdv(ctx, PDataValueType::Command, true, cancel_rq(id))]);
    }

    fn send(&mut self, data: Vec<PDataValue>) {
        self.assoc.send(&Pdu::PData { data }).expect("send P-DATA");
    }

    /// Sends one P-DATA PDU for each of `pdus`, all in one write.
    fn send_together(&mut self, pdus: Vec<Vec<PDataValue>>) {
        let mut bytes = Vec::new();
        for data in pdus {
            dicom_ul::pdu::write_pdu(&mut bytes, &Pdu::PData { data }).expect("encode P-DATA");
        }
        std::io::Write::write_all(self.assoc.inner_stream(), &bytes).expect("send P-DATA");
    }

    /// Reads responses until a non-pending status; sends the cancel PDV once that many
    /// pending responses have arrived.
    fn receive_until_final(&mut self, mut cancel: Option<(usize, PDataValue)>) -> Responses {
        let mut out = Responses::default();
        let mut command_bytes = Vec::new();
        let mut data_bytes = Vec::new();
        let mut awaiting_data = false;
        loop {
            let pdu = self.assoc.receive().expect("receive a PDU");
            let Pdu::PData { data } = pdu else {
                panic!("unexpected PDU {pdu:?}");
            };
            for v in data {
                match v.value_type {
                    PDataValueType::Command => {
                        command_bytes.extend_from_slice(&v.data);
                        if !v.is_last {
                            continue;
                        }
                        let cmd = InMemDicomObject::read_dataset_with_ts(
                            command_bytes.as_slice(),
                            &IMPLICIT_VR_LITTLE_ENDIAN.erased(),
                        )
                        .expect("response command set");
                        command_bytes.clear();
                        let status = command_u16(&cmd, tags::STATUS).expect("status");
                        awaiting_data =
                            command_u16(&cmd, tags::COMMAND_DATA_SET_TYPE) != Some(0x0101);
                        out.statuses.push(status);
                        out.commands.push(cmd);
                    }
                    PDataValueType::Data => {
                        data_bytes.extend_from_slice(&v.data);
                        if !v.is_last {
                            continue;
                        }
                        let ts = if self.explicit {
                            EXPLICIT_VR_LITTLE_ENDIAN.erased()
                        } else {
                            IMPLICIT_VR_LITTLE_ENDIAN.erased()
                        };
                        let obj =
                            InMemDicomObject::read_dataset_with_ts(data_bytes.as_slice(), &ts)
                                .expect("response identifier");
                        out.raw_identifiers.push(std::mem::take(&mut data_bytes));
                        awaiting_data = false;
                        out.identifiers.push(obj);
                    }
                }
            }
            if awaiting_data || !command_bytes.is_empty() {
                continue;
            }
            let last = out.final_status();
            if !matches!(last, Some(0xFF00 | 0xFF01)) && last.is_some() {
                return out;
            }
            if let Some((n, _)) = &cancel
                && out.identifiers.len() >= *n
            {
                let (_, c) = cancel.take().expect("cancel");
                self.send(vec![c]);
            }
        }
    }

    /// A-RELEASE.
    pub fn release(self) {
        self.assoc.release().expect("release");
    }
}

/// An identifier from `(tag, VR, value)` top-level keys and, when `sps` is given, one
/// Scheduled Procedure Step item with those keys.
pub fn identifier(top: &[(Tag, VR, &str)], sps: Option<&[(Tag, VR, &str)]>) -> InMemDicomObject {
    let elem = |(tag, vr, v): &(Tag, VR, &str)| {
        if v.is_empty() {
            DataElement::new(*tag, *vr, PrimitiveValue::Empty)
        } else {
            DataElement::new(*tag, *vr, PrimitiveValue::from(v.to_string()))
        }
    };
    let mut obj = InMemDicomObject::from_element_iter(top.iter().map(elem));
    if let Some(keys) = sps {
        let item = InMemDicomObject::from_element_iter(keys.iter().map(elem));
        obj.put(DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            dicom_core::value::DataSetSequence::from(vec![item]),
        ));
    }
    obj
}
