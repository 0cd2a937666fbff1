//! The Modality Performed Procedure Step service (N-CREATE, N-SET): what a console
//! reports about a scan it started or finished, checked, stored and applied to the
//! worklist.
//!
//! `handle` answers one request on the MPPS presentation context: [`create`] or [`set`]
//! decides the [`MppsOutcome`], which is counted, logged when refused, and sent.
//!
//! Who may change a status: here, a request is checked (an N-CREATE must report IN
//! PROGRESS; an N-SET a known term, never on a step already COMPLETED or DISCONTINUED),
//! with the terms read by [`PerformedStatus::from_dicom`]. The store then applies it
//! ([`Store::mpps_create`], [`Store::mpps_update`]): the linked worklist entries take the
//! matching step status, marked as set by MPPS, which no sync resets.

use std::time::Instant;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntax;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use jiff::Timestamp;
use worklist_store::{LinkedSteps, MppsError, PerformedStatus, ScheduledStepRef, Store};

use crate::connection::{AssocError, Peer, PeerStream};
use crate::context::{AssocStats, Context};
use crate::describe::tag_name;
use crate::dimse::{self, Command, Message, command, status};
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
    let (operation, outcome, rsp_field) = if cmd.field == command::N_CREATE_RQ {
        let outcome = create(&cx.store, &calling, cmd, data, ts).await;
        (MppsOperation::NCreate, outcome, command::N_CREATE_RSP)
    } else {
        let outcome = set(&cx.store, &calling, cmd, data, ts).await;
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
    let rsp = dimse::response_command(
        rsp_field,
        MPPS,
        cmd.id(),
        false,
        outcome.status,
        outcome.response_elements(),
    );
    peer.send(message.context_id, &rsp).await
}

/// Attributes an N-CREATE must carry with a value (PS3.4 F.7.2.1, type 1).
const REQUIRED_ON_CREATE: [Tag; 6] = [
    tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
    tags::PERFORMED_PROCEDURE_STEP_ID,
    tags::PERFORMED_PROCEDURE_STEP_START_DATE,
    tags::PERFORMED_PROCEDURE_STEP_START_TIME,
    tags::PERFORMED_PROCEDURE_STEP_STATUS,
    tags::MODALITY,
];

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
}

impl MppsOutcome {
    fn success(instance_uid: String) -> Self {
        MppsOutcome {
            status: status::SUCCESS,
            instance_uid: Some(instance_uid),
            comment: None,
            attributes: Vec::new(),
        }
    }

    fn failure(status: u16, instance_uid: Option<String>, comment: impl Into<String>) -> Self {
        MppsOutcome {
            status,
            instance_uid,
            comment: Some(comment.into()),
            attributes: Vec::new(),
        }
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

fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches(|c: char| c == ' ' || c == '\0').to_string())
        .filter(|s| !s.is_empty())
}

/// Whether a performed step's Discontinuation Reason Code Sequence (0040,0281) says the
/// wrong worklist entry was selected: code 110514 of DICOM's own scheme (DCM, PS3.16
/// CID 9300). IHE Scheduled Workflow then treats the scheduled step as never performed.
fn wrong_entry_selected(obj: &InMemDicomObject) -> bool {
    obj.get(tags::PERFORMED_PROCEDURE_STEP_DISCONTINUATION_REASON_CODE_SEQUENCE)
        .and_then(|e| e.items())
        .is_some_and(|items| {
            items.iter().any(|item| {
                text(item, tags::CODE_VALUE).as_deref() == Some(WRONG_ENTRY_CODE)
                    && text(item, tags::CODING_SCHEME_DESIGNATOR).as_deref() == Some("DCM")
            })
        })
}

/// DCM 110514, "Incorrect worklist entry selected".
const WRONG_ENTRY_CODE: &str = "110514";

fn has_value(obj: &InMemDicomObject, tag: Tag) -> bool {
    match obj.get(tag) {
        None => false,
        Some(e) => match e.items() {
            Some(items) => !items.is_empty(),
            None => text(obj, tag).is_some(),
        },
    }
}

fn references(obj: &InMemDicomObject) -> Vec<ScheduledStepRef> {
    obj.get(tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE)
        .and_then(|e| e.items())
        .map(|items| {
            items
                .iter()
                .map(|item| ScheduledStepRef {
                    study_instance_uid: text(item, tags::STUDY_INSTANCE_UID),
                    accession_number: text(item, tags::ACCESSION_NUMBER),
                    requested_procedure_id: text(item, tags::REQUESTED_PROCEDURE_ID),
                    sps_id: text(item, tags::SCHEDULED_PROCEDURE_STEP_ID),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn valid_uid(uid: &str) -> bool {
    worklist_store::validate::uid_problem(uid).is_none()
}

fn encode(obj: &InMemDicomObject) -> Result<Vec<u8>, DataSetError> {
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
        .map_err(|e| DataSetError::Encode(Box::new(e)))?;
    Ok(out)
}

/// A new SOP instance UID for an N-CREATE that did not name one.
fn new_instance_uid(calling_ae: &str) -> String {
    let nanos = Timestamp::now().as_nanosecond();
    worklist_store::identifiers::study_instance_uid(
        "mpps",
        &format!("{calling_ae}/{nanos}/{}", std::process::id()),
    )
}

fn decode(data: Option<&[u8]>, ts: &TransferSyntax) -> Result<InMemDicomObject, DataSetError> {
    let data = data.ok_or(DataSetError::Missing)?;
    crate::wire_check::decode(data, ts).map_err(DataSetError::Refused)
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
            MppsOutcome::failure(
                status::PROCESSING_FAILURE,
                Some(uid),
                "worklist database unavailable",
            )
        }
    }
}

/// Handles an N-CREATE-RQ: validates, stores, links and updates the worklist.
pub async fn create(
    store: &Store,
    calling_ae: &str,
    command: &Command,
    data: Option<&[u8]>,
    ts: &TransferSyntax,
) -> MppsOutcome {
    let uid = match command.text(tags::AFFECTED_SOP_INSTANCE_UID) {
        Some(u) if !valid_uid(&u) => {
            return MppsOutcome::failure(
                status::INVALID_OBJECT_INSTANCE,
                None,
                "Affected SOP Instance UID is not a valid UID",
            );
        }
        Some(u) => u,
        None => new_instance_uid(calling_ae),
    };
    let dataset = match decode(data, ts) {
        Ok(d) => d,
        Err(e) => {
            return MppsOutcome::failure(status::PROCESSING_FAILURE, Some(uid), e.to_string());
        }
    };
    let missing: Vec<Tag> = REQUIRED_ON_CREATE
        .into_iter()
        .filter(|t| !has_value(&dataset, *t))
        .collect();
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|t| tag_name(*t)).collect();
        let mut outcome = MppsOutcome::failure(
            status::MISSING_ATTRIBUTE,
            Some(uid),
            format!("missing {}", names.join(", ")),
        );
        outcome.attributes = missing;
        return outcome;
    }
    let status_term = text(&dataset, tags::PERFORMED_PROCEDURE_STEP_STATUS).unwrap_or_default();
    if PerformedStatus::from_dicom(&status_term) != Some(PerformedStatus::InProgress) {
        let mut outcome = MppsOutcome::failure(
            status::INVALID_ATTRIBUTE_VALUE,
            Some(uid),
            "N-CREATE must set Performed Procedure Step Status to IN PROGRESS",
        );
        outcome.attributes = vec![tags::PERFORMED_PROCEDURE_STEP_STATUS];
        return outcome;
    }
    let refs = references(&dataset);
    let attributes = match encode(&dataset) {
        Ok(a) => a,
        Err(e) => {
            return MppsOutcome::failure(status::PROCESSING_FAILURE, Some(uid), e.to_string());
        }
    };
    let (u, ae) = (uid.clone(), calling_ae.to_string());
    let result = store
        .run(move |s| {
            Ok(s.mpps_create(
                &u,
                &ae,
                PerformedStatus::InProgress,
                &attributes,
                &refs,
                Timestamp::now(),
            ))
        })
        .await;
    match result {
        Ok(Ok(linked)) => {
            if linked.is_empty() {
                tracing::warn!(
                    sop_instance_uid = %uid, calling_ae,
                    "MPPS IN PROGRESS matches no scheduled step (an unscheduled scan?); stored"
                );
            } else {
                tracing::info!(sop_instance_uid = %uid, calling_ae, linked = linked.len(), "MPPS IN PROGRESS");
            }
            MppsOutcome::success(uid)
        }
        Ok(Err(e)) => store_failure(e, uid),
        Err(e) => store_failure(MppsError::Store(e), uid),
    }
}

/// Handles an N-SET-RQ: merges the modification list and applies a status change.
pub async fn set(
    store: &Store,
    calling_ae: &str,
    command: &Command,
    data: Option<&[u8]>,
    ts: &TransferSyntax,
) -> MppsOutcome {
    let Some(uid) = command.text(tags::REQUESTED_SOP_INSTANCE_UID) else {
        return MppsOutcome::failure(
            status::MISSING_ATTRIBUTE,
            None,
            "N-SET without Requested SOP Instance UID",
        );
    };
    let modifications = match decode(data, ts) {
        Ok(d) => d,
        Err(e) => {
            return MppsOutcome::failure(status::PROCESSING_FAILURE, Some(uid), e.to_string());
        }
    };
    let u = uid.clone();
    let current = match store.run(move |s| s.mpps_get(&u)).await {
        Ok(Some(c)) => c,
        Ok(None) => return store_failure(MppsError::NoSuchInstance(uid.clone()), uid),
        Err(e) => return store_failure(MppsError::Store(e), uid),
    };
    if current.status.is_final() {
        return store_failure(MppsError::AlreadyFinal(current.status.as_dicom()), uid);
    }
    let new_status = match modifications.get(tags::PERFORMED_PROCEDURE_STEP_STATUS) {
        None => current.status,
        Some(_) => {
            let term =
                text(&modifications, tags::PERFORMED_PROCEDURE_STEP_STATUS).unwrap_or_default();
            match PerformedStatus::from_dicom(&term) {
                Some(s) => s,
                None => {
                    let mut outcome = MppsOutcome::failure(
                        status::INVALID_ATTRIBUTE_VALUE,
                        Some(uid),
                        "Performed Procedure Step Status must be IN PROGRESS, COMPLETED or DISCONTINUED",
                    );
                    outcome.attributes = vec![tags::PERFORMED_PROCEDURE_STEP_STATUS];
                    return outcome;
                }
            }
        }
    };
    let mut merged = match crate::wire_check::decode(
        &current.attributes[..],
        &EXPLICIT_VR_LITTLE_ENDIAN.erased(),
    ) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(sop_instance_uid = %uid, error = %e, "stored MPPS attributes unreadable");
            return MppsOutcome::failure(
                status::PROCESSING_FAILURE,
                Some(uid),
                "stored attributes unreadable",
            );
        }
    };
    for element in modifications.into_iter() {
        merged.put(element);
    }
    let attributes = match encode(&merged) {
        Ok(a) => a,
        Err(e) => {
            return MppsOutcome::failure(status::PROCESSING_FAILURE, Some(uid), e.to_string());
        }
    };
    let steps = if new_status == PerformedStatus::Discontinued && wrong_entry_selected(&merged) {
        LinkedSteps::Reschedule
    } else {
        LinkedSteps::FollowStatus
    };
    let u = uid.clone();
    let result = store
        .run(move |s| Ok(s.mpps_update(&u, new_status, &attributes, steps, Timestamp::now())))
        .await;
    match result {
        Ok(Ok(linked)) => {
            tracing::info!(
                sop_instance_uid = %uid, calling_ae, status = new_status.as_dicom(),
                linked = linked.len(),
                wrong_entry_selected = steps == LinkedSteps::Reschedule,
                "MPPS updated"
            );
            MppsOutcome::success(uid)
        }
        Ok(Err(e)) => store_failure(e, uid),
        Err(e) => store_failure(MppsError::Store(e), uid),
    }
}
