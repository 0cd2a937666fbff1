//! Reading an MPPS data set: its values, its references to scheduled steps, and its
//! encoding for storage.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntax;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use jiff::Timestamp;
use worklist_store::ScheduledStepRef;

use super::DataSetError;

pub(super) fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches(|c: char| c == ' ' || c == '\0').to_string())
        .filter(|s| !s.is_empty())
}

/// Whether a performed step's Discontinuation Reason Code Sequence (0040,0281) says the
/// wrong worklist entry was selected: code 110514 of DICOM's own scheme (DCM, PS3.16
/// CID 9300). IHE Scheduled Workflow then treats the scheduled step as never performed.
pub(super) fn wrong_entry_selected(obj: &InMemDicomObject) -> bool {
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

pub(super) fn has_value(obj: &InMemDicomObject, tag: Tag) -> bool {
    match obj.get(tag) {
        None => false,
        Some(e) => match e.items() {
            Some(items) => !items.is_empty(),
            None => text(obj, tag).is_some(),
        },
    }
}

pub(super) fn references(obj: &InMemDicomObject) -> Vec<ScheduledStepRef> {
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

pub(super) fn valid_uid(uid: &str) -> bool {
    worklist_store::validate::uid_problem(uid).is_none()
}

pub(super) fn encode(obj: &InMemDicomObject) -> Result<Vec<u8>, DataSetError> {
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
        .map_err(|e| DataSetError::Encode(Box::new(e)))?;
    Ok(out)
}

/// A new SOP instance UID for an N-CREATE that did not name one.
pub(super) fn new_instance_uid(calling_ae: &str) -> String {
    let nanos = Timestamp::now().as_nanosecond();
    worklist_store::identifiers::study_instance_uid(
        "mpps",
        &format!("{calling_ae}/{nanos}/{}", std::process::id()),
    )
}

pub(super) fn decode(
    data: Option<&[u8]>,
    ts: &TransferSyntax,
) -> Result<InMemDicomObject, DataSetError> {
    let data = data.ok_or(DataSetError::Missing)?;
    crate::wire_check::decode(data, ts).map_err(DataSetError::Refused)
}
