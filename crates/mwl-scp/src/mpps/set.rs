//! N-SET: a console updates, completes or discontinues a performed procedure step.
//!
//! The decision ([`decide`]) runs inside the store's transaction
//! ([`Store::mpps_modify`]) on the step as stored, so two N-SETs of one step never
//! overwrite each other's changes, and a refused one changes nothing.

use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntax;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use jiff::Timestamp;
use worklist_store::{LinkedSteps, MppsChange, MppsError, PerformedStatus, PerformedStep, Store};

use super::create::Requester;
use super::dataset::{decode, encode, text, wrong_entry_selected};
use super::{MppsOutcome, store_failure};
use crate::describe::printable;
use crate::dimse::{Command, status};

/// Why an N-SET was refused: by the store (unknown or final step, database) or by the
/// rules applied to the step as stored.
enum Refusal {
    Store(MppsError),
    Outcome(MppsOutcome),
}

impl From<MppsError> for Refusal {
    fn from(e: MppsError) -> Self {
        Refusal::Store(e)
    }
}

/// Handles an N-SET-RQ: merges the modification list and applies a status change.
pub async fn set(
    store: &Store,
    who: &Requester<'_>,
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
    set_dataset(store, who, uid, modifications).await
}

/// Applies a decoded modification list to the step `uid`: merges it and applies a status
/// change. The one N-SET, for DIMSE and DICOMweb.
pub async fn set_dataset(
    store: &Store,
    who: &Requester<'_>,
    uid: String,
    modifications: InMemDicomObject,
) -> MppsOutcome {
    let requested = match requested_status(&modifications) {
        Ok(s) => s,
        Err(()) => {
            let mut outcome = MppsOutcome::failure(
                status::INVALID_ATTRIBUTE_VALUE,
                Some(uid),
                "Performed Procedure Step Status must be IN PROGRESS, COMPLETED or DISCONTINUED",
            );
            outcome.attributes = vec![tags::PERFORMED_PROCEDURE_STEP_STATUS];
            return outcome;
        }
    };
    let (u, ae, policy) = (uid.clone(), who.calling_ae.to_string(), who.policy);
    let result = store
        .run(move |s| {
            let mut decided = None;
            let result = s.mpps_modify(&u, Timestamp::now(), |current| {
                let change = decide(current, &u, &ae, policy, requested, modifications)?;
                decided = Some((change.status, change.linked));
                Ok::<_, Refusal>(change)
            });
            Ok(result.map(|linked| (linked, decided)))
        })
        .await;
    match result {
        Ok(Ok((linked, Some((new_status, steps))))) => {
            tracing::info!(
                sop_instance_uid = %uid, calling_ae = %printable(who.calling_ae),
                status = new_status.as_dicom(), linked = linked.len(),
                wrong_entry_selected = steps == LinkedSteps::Reschedule,
                "MPPS updated"
            );
            MppsOutcome::success(uid)
        }
        Ok(Ok((_, None))) => MppsOutcome::success(uid),
        Ok(Err(Refusal::Outcome(outcome))) => outcome,
        Ok(Err(Refusal::Store(e))) => store_failure(e, uid),
        Err(e) => store_failure(MppsError::Store(e), uid),
    }
}

/// The status an N-SET asks for: `None` when it does not set one; `Err` for a term
/// that is not a performed step status.
fn requested_status(modifications: &InMemDicomObject) -> Result<Option<PerformedStatus>, ()> {
    if modifications
        .get(tags::PERFORMED_PROCEDURE_STEP_STATUS)
        .is_none()
    {
        return Ok(None);
    }
    let term = text(modifications, tags::PERFORMED_PROCEDURE_STEP_STATUS).unwrap_or_default();
    PerformedStatus::from_dicom(&term).map(Some).ok_or(())
}

/// What the N-SET makes of `current` (not final: the store checked), or why not: another
/// console's step, too many N-SETs, too large once merged, unreadable as stored.
fn decide(
    current: &PerformedStep,
    uid: &str,
    calling_ae: &str,
    policy: super::MppsPolicy,
    requested: Option<PerformedStatus>,
    modifications: InMemDicomObject,
) -> Result<MppsChange, Refusal> {
    let refuse = |status, comment: String| {
        Refusal::Outcome(MppsOutcome::failure(status, Some(uid.to_string()), comment))
    };
    if policy.same_ae_only && current.calling_ae.trim() != calling_ae.trim() {
        return Err(refuse(
            status::NOT_AUTHORIZED,
            format!(
                "performed procedure step was created by {:?}; only it may change it",
                current.calling_ae
            ),
        ));
    }
    if current.set_count >= policy.max_sets {
        return Err(refuse(
            status::RESOURCE_LIMITATION,
            format!(
                "performed procedure step has taken {} N-SETs, the most allowed",
                policy.max_sets
            ),
        ));
    }
    let mut merged = crate::wire_check::decode(
        &current.attributes[..],
        &EXPLICIT_VR_LITTLE_ENDIAN.erased(),
    )
    .map_err(|e| {
        tracing::error!(sop_instance_uid = %uid, error = %e, "stored MPPS attributes unreadable");
        refuse(
            status::PROCESSING_FAILURE,
            "stored attributes unreadable".into(),
        )
    })?;
    for element in modifications.into_iter() {
        merged.put(element);
    }
    let attributes =
        encode(&merged).map_err(|e| refuse(status::PROCESSING_FAILURE, e.to_string()))?;
    if attributes.len() > policy.max_stored_bytes {
        return Err(Refusal::Outcome(MppsOutcome::too_large(
            uid.to_string(),
            attributes.len(),
            policy.max_stored_bytes,
        )));
    }
    let new_status = requested.unwrap_or(current.status);
    let linked = if new_status == PerformedStatus::Discontinued && wrong_entry_selected(&merged) {
        LinkedSteps::Reschedule
    } else {
        LinkedSteps::FollowStatus
    };
    Ok(MppsChange {
        status: new_status,
        attributes,
        linked,
    })
}
