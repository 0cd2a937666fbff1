//! The worklist attributes we store, where they live in an MWL identifier, and how an
//! entry's value is read and formatted.

use std::borrow::Cow;

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use worklist_store::{WorklistEntry, format_da, format_tm};

/// Where a key sits in an MWL identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// The top level of the identifier.
    Top,
    /// Inside the (one) Scheduled Procedure Step Sequence item.
    Sps,
    /// Inside the (one) Scheduled Protocol Code Sequence item of the step item.
    Protocol,
}

/// An attribute the store holds a value for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    PatientName,
    PatientId,
    PatientBirthDate,
    PatientSex,
    PatientWeight,
    AccessionNumber,
    ReferringPhysicianName,
    StudyInstanceUid,
    StudyDescription,
    RequestedProcedureId,
    RequestedProcedureDescription,
    StationAeTitle,
    SpsStartDate,
    SpsStartTime,
    SpsEndDate,
    SpsEndTime,
    Modality,
    PerformingPhysicianName,
    SpsDescription,
    StationName,
    SpsLocation,
    SpsId,
    SpsStatus,
    ProtocolCodeValue,
    ProtocolCodingScheme,
    ProtocolCodeMeaning,
    ProtocolLongCodeValue,
}

/// The top-level fields, in tag order.
pub(crate) const TOP_FIELDS: [Field; 11] = [
    Field::AccessionNumber,
    Field::ReferringPhysicianName,
    Field::StudyDescription,
    Field::PatientName,
    Field::PatientId,
    Field::PatientBirthDate,
    Field::PatientSex,
    Field::PatientWeight,
    Field::StudyInstanceUid,
    Field::RequestedProcedureDescription,
    Field::RequestedProcedureId,
];

/// The step fields, in tag order: what an empty SPS item asks for.
pub(crate) const SPS_FIELDS: [Field; 12] = [
    Field::Modality,
    Field::StationAeTitle,
    Field::SpsStartDate,
    Field::SpsStartTime,
    Field::SpsEndDate,
    Field::SpsEndTime,
    Field::PerformingPhysicianName,
    Field::SpsDescription,
    Field::SpsId,
    Field::StationName,
    Field::SpsLocation,
    Field::SpsStatus,
];

/// The protocol code item's fields, in tag order. An empty item asks for the first three;
/// Long Code Value is sent as well when the code value is longer than SH allows.
pub(crate) const PROTOCOL_FIELDS: [Field; 4] = [
    Field::ProtocolCodeValue,
    Field::ProtocolCodingScheme,
    Field::ProtocolCodeMeaning,
    Field::ProtocolLongCodeValue,
];

/// The longest Code Value (SH); a longer code is sent as Long Code Value (PS3.3 8.8).
pub(crate) const CODE_VALUE_MAX: usize = 16;

impl Field {
    /// The field stored for `tag` at `level`, if any. A step key at the top level (or a
    /// top-level key inside the step item) is not one of ours.
    pub(crate) fn from_tag(tag: Tag, level: Level) -> Option<Field> {
        let list: &[Field] = match level {
            Level::Top => &TOP_FIELDS,
            Level::Sps => &SPS_FIELDS,
            Level::Protocol => &PROTOCOL_FIELDS,
        };
        list.iter().copied().find(|f| f.tag() == tag)
    }

    /// The attribute's tag.
    pub(crate) fn tag(self) -> Tag {
        match self {
            Field::PatientName => tags::PATIENT_NAME,
            Field::PatientId => tags::PATIENT_ID,
            Field::PatientBirthDate => tags::PATIENT_BIRTH_DATE,
            Field::PatientSex => tags::PATIENT_SEX,
            Field::PatientWeight => tags::PATIENT_WEIGHT,
            Field::AccessionNumber => tags::ACCESSION_NUMBER,
            Field::ReferringPhysicianName => tags::REFERRING_PHYSICIAN_NAME,
            Field::StudyInstanceUid => tags::STUDY_INSTANCE_UID,
            Field::StudyDescription => tags::STUDY_DESCRIPTION,
            Field::RequestedProcedureId => tags::REQUESTED_PROCEDURE_ID,
            Field::RequestedProcedureDescription => tags::REQUESTED_PROCEDURE_DESCRIPTION,
            Field::StationAeTitle => tags::SCHEDULED_STATION_AE_TITLE,
            Field::SpsStartDate => tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
            Field::SpsStartTime => tags::SCHEDULED_PROCEDURE_STEP_START_TIME,
            Field::SpsEndDate => tags::SCHEDULED_PROCEDURE_STEP_END_DATE,
            Field::SpsEndTime => tags::SCHEDULED_PROCEDURE_STEP_END_TIME,
            Field::Modality => tags::MODALITY,
            Field::PerformingPhysicianName => tags::SCHEDULED_PERFORMING_PHYSICIAN_NAME,
            Field::SpsDescription => tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION,
            Field::StationName => tags::SCHEDULED_STATION_NAME,
            Field::SpsLocation => tags::SCHEDULED_PROCEDURE_STEP_LOCATION,
            Field::SpsId => tags::SCHEDULED_PROCEDURE_STEP_ID,
            Field::SpsStatus => tags::SCHEDULED_PROCEDURE_STEP_STATUS,
            Field::ProtocolCodeValue => tags::CODE_VALUE,
            Field::ProtocolCodingScheme => tags::CODING_SCHEME_DESIGNATOR,
            Field::ProtocolCodeMeaning => tags::CODE_MEANING,
            Field::ProtocolLongCodeValue => tags::LONG_CODE_VALUE,
        }
    }

    /// The attribute's value representation.
    pub(crate) fn vr(self) -> VR {
        match self {
            Field::PatientName | Field::ReferringPhysicianName | Field::PerformingPhysicianName => {
                VR::PN
            }
            Field::PatientId
            | Field::StudyDescription
            | Field::RequestedProcedureDescription
            | Field::SpsDescription
            | Field::ProtocolCodeMeaning => VR::LO,
            Field::AccessionNumber
            | Field::RequestedProcedureId
            | Field::StationName
            | Field::SpsLocation
            | Field::SpsId
            | Field::ProtocolCodeValue
            | Field::ProtocolCodingScheme => VR::SH,
            Field::ProtocolLongCodeValue => VR::UC,
            Field::PatientBirthDate | Field::SpsStartDate | Field::SpsEndDate => VR::DA,
            Field::SpsStartTime | Field::SpsEndTime => VR::TM,
            Field::PatientSex | Field::Modality | Field::SpsStatus => VR::CS,
            Field::PatientWeight => VR::DS,
            Field::StudyInstanceUid => VR::UI,
            Field::StationAeTitle => VR::AE,
        }
    }

    /// The entry's value as text, for text matching (AE, CS, LO, PN, SH). `None` when the
    /// entry has no value, and for the fields matched some other way.
    pub(crate) fn text<'e>(self, e: &'e WorklistEntry) -> Option<Cow<'e, str>> {
        let s: Option<&str> = match self {
            Field::PatientName => e.patient_name.as_deref(),
            Field::PatientId => Some(&e.patient_id),
            Field::PatientSex => e.patient_sex.as_deref(),
            Field::AccessionNumber => Some(&e.accession_number),
            Field::ReferringPhysicianName => e.referring_physician_name.as_deref(),
            Field::StudyInstanceUid => Some(&e.study_instance_uid),
            Field::StudyDescription => e.study_description.as_deref(),
            Field::RequestedProcedureId => Some(&e.requested_procedure_id),
            Field::RequestedProcedureDescription => e.requested_procedure_description.as_deref(),
            Field::StationAeTitle => e.station_ae_title.as_deref(),
            Field::Modality => e.modality.as_deref(),
            Field::PerformingPhysicianName => e.performing_physician_name.as_deref(),
            Field::SpsDescription => e.sps_description.as_deref(),
            Field::StationName => e.station_name.as_deref(),
            Field::SpsLocation => e.sps_location.as_deref(),
            Field::SpsId => Some(&e.sps_id),
            Field::SpsStatus => Some(e.status.as_dicom()),
            // A code value key matches the code whatever its length (so also one sent as
            // Long Code Value); only the response splits them.
            Field::ProtocolCodeValue | Field::ProtocolLongCodeValue => {
                e.protocol_code_value.as_deref()
            }
            Field::ProtocolCodingScheme => e.protocol_coding_scheme.as_deref(),
            Field::ProtocolCodeMeaning => e.protocol_code_meaning.as_deref(),
            Field::PatientBirthDate
            | Field::PatientWeight
            | Field::SpsStartDate
            | Field::SpsStartTime
            | Field::SpsEndDate
            | Field::SpsEndTime => None,
        };
        s.map(Cow::Borrowed)
    }

    /// The value sent back for this field, formatted for its VR; `None` for "no value"
    /// (sent zero-length). Type-1 descriptions are filled here: a description the entry
    /// lacks becomes the entry's display description, else its modality, else `Scan`.
    pub(crate) fn response_value(self, e: &WorklistEntry) -> Option<String> {
        self.response_text(e).map(Cow::into_owned)
    }

    /// [`response_value`](Self::response_value), borrowed from the entry where it is
    /// stored as sent (every text value; dates, times and numbers are formatted).
    pub(crate) fn response_text(self, e: &WorklistEntry) -> Option<Cow<'_, str>> {
        let owned = |v: Option<String>| v.map(Cow::Owned);
        match self {
            Field::PatientBirthDate => owned(e.patient_birth_date.map(format_da)),
            Field::PatientWeight => owned(e.patient_weight_kg.and_then(format_ds)),
            Field::SpsStartDate => owned(Some(format_da(e.start.date()))),
            Field::SpsStartTime => owned(Some(format_tm(e.start.time()))),
            Field::SpsEndDate => owned(e.end.map(|d| format_da(d.date()))),
            Field::SpsEndTime => owned(e.end.map(|d| format_tm(d.time()))),
            Field::SpsDescription | Field::RequestedProcedureDescription => Some(
                self.text(e)
                    .or_else(|| e.display_description().map(Cow::Borrowed))
                    .or_else(|| e.modality.as_deref().map(Cow::Borrowed))
                    .unwrap_or(Cow::Borrowed("Scan")),
            ),
            Field::ProtocolCodeValue => e
                .protocol_code_value
                .as_deref()
                .filter(|v| v.chars().count() <= CODE_VALUE_MAX)
                .map(Cow::Borrowed),
            Field::ProtocolLongCodeValue => e
                .protocol_code_value
                .as_deref()
                .filter(|v| v.chars().count() > CODE_VALUE_MAX)
                .map(Cow::Borrowed),
            other => other.text(e),
        }
    }
}

/// DICOM DS form of a number: at most 16 characters, no exponent for ordinary weights.
/// `None` for a value that has no such form (not finite, or too large).
pub(crate) fn format_ds(v: f64) -> Option<String> {
    if !v.is_finite() {
        return None;
    }
    let plain = format!("{v}");
    if plain.len() <= 16 {
        return Some(plain);
    }
    for decimals in (0..=6).rev() {
        let s = format!("{v:.decimals$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        };
        if s.len() <= 16 {
            return Some(s);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_found_at_its_level_only() {
        for f in TOP_FIELDS {
            assert_eq!(Field::from_tag(f.tag(), Level::Top), Some(f));
            assert_eq!(Field::from_tag(f.tag(), Level::Sps), None);
        }
        for f in SPS_FIELDS {
            assert_eq!(Field::from_tag(f.tag(), Level::Sps), Some(f));
            assert_eq!(Field::from_tag(f.tag(), Level::Top), None);
        }
        for f in PROTOCOL_FIELDS {
            assert_eq!(Field::from_tag(f.tag(), Level::Protocol), Some(f));
            assert_eq!(Field::from_tag(f.tag(), Level::Sps), None);
        }
    }

    #[test]
    fn ds_formatting() {
        assert_eq!(format_ds(72.5).as_deref(), Some("72.5"));
        assert_eq!(format_ds(70.0).as_deref(), Some("70"));
        let long = format_ds(72.333_333_333_333_33).unwrap_or_default();
        assert!(long.len() <= 16 && long.starts_with("72.333"), "{long}");
        assert_eq!(format_ds(f64::NAN), None);
    }
}
