//! N-CREATE: a console starts a performed procedure step.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntax;
use dicom_object::InMemDicomObject;
use jiff::Timestamp;
use worklist_store::{MppsError, PerformedStatus, Store};

use super::dataset::{decode, encode, has_value, new_instance_uid, references, text, valid_uid};
use super::{MppsOutcome, store_failure};
use crate::config::MppsPolicy;
use crate::describe::printable;
use crate::describe::tag_name;
use crate::dimse::{Command, status};

/// Attributes an N-CREATE must carry with a value (PS3.4 F.7.2.1, type 1).
const REQUIRED_ON_CREATE: [Tag; 6] = [
    tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
    tags::PERFORMED_PROCEDURE_STEP_ID,
    tags::PERFORMED_PROCEDURE_STEP_START_DATE,
    tags::PERFORMED_PROCEDURE_STEP_START_TIME,
    tags::PERFORMED_PROCEDURE_STEP_STATUS,
    tags::MODALITY,
];

/// Who is asking, and under which rules.
#[derive(Debug, Clone)]
pub struct Requester<'a> {
    /// The console's calling AE title.
    pub calling_ae: &'a str,
    /// Size and count bounds, and whether only the creator may N-SET.
    pub policy: MppsPolicy,
    /// Only steps scheduled on the calling AE title may be linked (and so changed), as
    /// `station_filter_by_calling_ae` restricts what the console sees.
    pub own_station_only: bool,
}

/// Handles an N-CREATE-RQ: reads its Affected SOP Instance UID and data set, then
/// [`create_dataset`].
pub async fn create(
    store: &Store,
    who: &Requester<'_>,
    command: &Command,
    data: Option<&[u8]>,
    ts: &TransferSyntax,
) -> MppsOutcome {
    let requested = command.text(tags::AFFECTED_SOP_INSTANCE_UID);
    if requested.as_deref().is_some_and(|u| !valid_uid(u)) {
        return MppsOutcome::failure(
            status::INVALID_OBJECT_INSTANCE,
            None,
            "Affected SOP Instance UID is not a valid UID",
        );
    }
    let uid = requested.unwrap_or_else(|| new_instance_uid(who.calling_ae));
    let dataset = match decode(data, ts) {
        Ok(d) => d,
        Err(e) => {
            return MppsOutcome::failure(status::PROCESSING_FAILURE, Some(uid), e.to_string());
        }
    };
    create_dataset(store, who, Some(uid), dataset).await
}

/// Creates the step `uid` (a new UID when `None`) from a decoded data set: validates,
/// stores, links and updates the worklist. The one N-CREATE, for DIMSE and DICOMweb.
pub async fn create_dataset(
    store: &Store,
    who: &Requester<'_>,
    uid: Option<String>,
    dataset: InMemDicomObject,
) -> MppsOutcome {
    let calling_ae = who.calling_ae;
    let uid = match uid {
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
    if attributes.len() > who.policy.max_stored_bytes {
        return MppsOutcome::too_large(uid, attributes.len(), who.policy.max_stored_bytes);
    }
    let (u, ae) = (uid.clone(), calling_ae.to_string());
    let station = who.own_station_only.then(|| calling_ae.to_string());
    let result = store
        .run(move |s| {
            Ok(s.mpps_create(
                &u,
                &ae,
                PerformedStatus::InProgress,
                &attributes,
                &refs,
                station.as_deref(),
                Timestamp::now(),
            ))
        })
        .await;
    match result {
        Ok(Ok(links)) => {
            if links.other_station > 0 {
                tracing::warn!(
                    sop_instance_uid = %uid, calling_ae = %printable(calling_ae), not_linked = links.other_station,
                    "MPPS references steps scheduled on another station; they are not changed \
                     (station_filter_by_calling_ae)"
                );
            }
            if links.linked.is_empty() {
                tracing::warn!(
                    sop_instance_uid = %uid, calling_ae = %printable(calling_ae),
                    "MPPS IN PROGRESS matches no scheduled step (an unscheduled scan?); stored"
                );
            } else {
                tracing::info!(
                    sop_instance_uid = %uid, calling_ae = %printable(calling_ae), linked = links.linked.len(),
                    "MPPS IN PROGRESS"
                );
            }
            MppsOutcome::success(uid)
        }
        Ok(Err(e)) => store_failure(e, uid),
        Err(e) => store_failure(MppsError::Store(e), uid),
    }
}
