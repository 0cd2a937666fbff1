//! The Modality Performed Procedure Step service (N-CREATE, N-SET): what a console
//! reports about a scan it started or finished, checked, stored and applied to the
//! worklist.
//!
//! `handle` answers one request on the MPPS presentation context: [`create`] or [`set`]
//! decides the [`MppsOutcome`], which is counted, logged when refused, and sent.
//! `dataset` reads the request's values and encodes what is stored. [`create_dataset`]
//! and [`set_dataset`] are the N-CREATE and N-SET on a decoded data set: the DIMSE
//! handlers call them after decoding, and the admin interface's DICOMweb MPPS service
//! after reading DICOM JSON, so both follow the same rules; [`stored_attributes`] reads a
//! step back for its retrieve.
//!
//! Who may change a status: here, a request is checked (an N-CREATE must report IN
//! PROGRESS; an N-SET a known term, never on a step already COMPLETED or DISCONTINUED),
//! with the terms read by [`PerformedStatus::from_dicom`](worklist_store::PerformedStatus).
//! The store then applies it (`Store::mpps_create`, `Store::mpps_modify`): the linked
//! worklist entries take the matching step status, marked as set by MPPS, which no sync
//! resets. Bounds and authorization ([`MppsPolicy`]): a step's stored size and its
//! N-SET count are capped (0213); only the AE title that created a step may N-SET it
//! (0124); with `station_filter_by_calling_ae`, an N-CREATE links only steps scheduled
//! on the caller's own station.

mod create;
mod dataset;
mod set;

use std::time::Instant;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntax;
use dicom_object::InMemDicomObject;
use worklist_store::MppsError;

pub use self::create::{Requester, create, create_dataset};
pub use self::set::{set, set_dataset};
pub use crate::config::MppsPolicy;
use crate::connection::{AssocError, Peer, PeerStream};
use crate::context::{AssocStats, Context};
use crate::dimse::{self, Message, command, status};
use crate::metrics::MppsOperation;

/// Modality Performed Procedure Step SOP class.
pub use crate::dimse::sop_class::MPPS;

/// Why a request's data set cannot be used; the text is the response's ErrorComment.
#[derive(Debug, thiserror::Error)]
enum DataSetError {
    /// N-CREATE and N-SET need one.
    #[error("the request has no data set")]
    Missing,
    /// It is not a valid data set.
    #[error("data set refused: {0}")]
    Refused(#[source] crate::wire_check::WireError),
    /// It could not be encoded for storage.
    #[error("{0}")]
    Encode(#[source] Box<dicom_object::WriteError>),
}

/// Answers an N-CREATE-RQ or N-SET-RQ on the MPPS presentation context, whose transfer
/// syntax is `ts`.
pub(crate) async fn handle<S: PeerStream>(
    cx: &Context,
    peer: &mut Peer<S>,
    stats: &mut AssocStats,
    message: &Message,
    ts: &TransferSyntax,
) -> Result<(), AssocError> {
    stats.mpps += 1;
    let cmd = &message.command;
    let calling = peer.calling_ae();
    let data = message.data.as_deref();
    let started = Instant::now();
    let who = Requester {
        calling_ae: &calling,
        policy: cx.config.mpps,
        own_station_only: cx.config.station_filter_by_calling_ae,
    };
    let (operation, outcome, rsp_field) = if cmd.field == command::N_CREATE_RQ {
        let outcome = create(&cx.store, &who, cmd, data, ts).await;
        (MppsOperation::NCreate, outcome, command::N_CREATE_RSP)
    } else {
        let outcome = set(&cx.store, &who, cmd, data, ts).await;
        (MppsOperation::NSet, outcome, command::N_SET_RSP)
    };
    let success = outcome.status == status::SUCCESS;
    cx.metrics.mpps_done(operation, success, started.elapsed());
    if !success {
        stats.failed += 1;
        tracing::info!(
            status = format!("{:#06x}", outcome.status),
            reason = outcome.comment.as_deref().unwrap_or(""),
            "MPPS request refused"
        );
    }
    let head = dimse::ResponseHead {
        field: rsp_field,
        sop_class: MPPS,
        responding_to: cmd.id(),
        has_data_set: false,
        status: outcome.status,
    };
    let rsp = dimse::response_command(head, outcome.response_elements());
    peer.send(message.context_id, &rsp).await
}

/// The answer to one MPPS request.
#[derive(Debug, Clone, PartialEq)]
pub struct MppsOutcome {
    /// DIMSE status.
    pub status: u16,
    /// The SOP instance concerned (echoed, or created for an N-CREATE without one).
    pub instance_uid: Option<String>,
    /// Error Comment for failures.
    pub comment: Option<String>,
    /// Attribute Identifier List (0000,1005) for 0106.
    pub attributes: Vec<Tag>,
    /// The worklist database failed. DIMSE says 0110, as for a step already final; the web
    /// service tells the two apart (503, not 409).
    pub database_failed: bool,
}

impl MppsOutcome {
    fn success(instance_uid: String) -> Self {
        MppsOutcome {
            status: status::SUCCESS,
            instance_uid: Some(instance_uid),
            comment: None,
            attributes: Vec::new(),
            database_failed: false,
        }
    }

    fn failure(status: u16, instance_uid: Option<String>, comment: impl Into<String>) -> Self {
        MppsOutcome {
            status,
            instance_uid,
            comment: Some(comment.into()),
            attributes: Vec::new(),
            database_failed: false,
        }
    }

    /// The step would be stored larger than the policy allows.
    fn too_large(instance_uid: String, bytes: usize, max: usize) -> Self {
        MppsOutcome::failure(
            status::RESOURCE_LIMITATION,
            Some(instance_uid),
            format!("performed procedure step would be {bytes} bytes; at most {max} are kept"),
        )
    }

    /// The extra command elements of the response.
    pub fn response_elements(&self) -> Vec<DataElement<InMemDicomObject>> {
        let mut out = Vec::new();
        if let Some(uid) = &self.instance_uid {
            out.push(DataElement::new(
                tags::AFFECTED_SOP_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from(dimse::uid_value(uid)),
            ));
        }
        if !self.attributes.is_empty() {
            out.push(DataElement::new(
                tags::ATTRIBUTE_IDENTIFIER_LIST,
                VR::AT,
                PrimitiveValue::Tags(self.attributes.iter().copied().collect()),
            ));
        }
        if let Some(c) = &self.comment {
            out.push(dimse::error_comment(c));
        }
        out
    }
}

/// The attributes of a step as stored (N-CREATE merged with each N-SET), for a
/// retrieve.
pub fn stored_attributes(
    step: &worklist_store::PerformedStep,
) -> Result<InMemDicomObject, crate::wire_check::WireError> {
    crate::wire_check::decode(
        &step.attributes[..],
        &dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased(),
    )
}

fn store_failure(e: MppsError, uid: String) -> MppsOutcome {
    match e {
        MppsError::Duplicate(_) => MppsOutcome::failure(
            status::DUPLICATE_SOP_INSTANCE,
            Some(uid),
            "performed procedure step already exists",
        ),
        MppsError::NoSuchInstance(_) => MppsOutcome::failure(
            status::NO_SUCH_OBJECT_INSTANCE,
            Some(uid),
            "no such performed procedure step",
        ),
        MppsError::AlreadyFinal(s) => MppsOutcome::failure(
            status::PROCESSING_FAILURE,
            Some(uid),
            format!("performed procedure step is already {s}"),
        ),
        MppsError::Store(e) => {
            tracing::error!(error = %e, "MPPS not stored: the worklist database failed");
            MppsOutcome {
                database_failed: true,
                ..MppsOutcome::failure(
                    status::PROCESSING_FAILURE,
                    Some(uid),
                    "worklist database unavailable",
                )
            }
        }
    }
}
