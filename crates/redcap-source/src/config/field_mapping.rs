//! `field_mapping`: `{redcap_field: worklist_column}`, Pylantir's direction, with
//! Pylantir's column names as targets ([`Target`]).

use std::fmt;

use config_reader::{Report, kind, suggestion};
use serde_json::Value;

/// A worklist column a REDCap field may fill (Pylantir's `WorklistItem` column names,
/// plus `patient_weight_kg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// The step's start date (wins over `date_field` when it has a value).
    ScheduledStartDate,
    /// The step's start time (wins over `time_field` when it has a value).
    ScheduledStartTime,
    /// Referring Physician's Name.
    ReferringPhysicianName,
    /// Scheduled Performing Physician's Name.
    PerformingPhysician,
    /// Scheduled Station Name.
    StationName,
    /// Scheduled Station AE Title.
    ScheduledStationAeTitle,
    /// Patient's Weight, given in pounds: stored in kilograms.
    PatientWeightLb,
    /// Patient's Weight in kilograms.
    PatientWeightKg,
    /// The step's status (`SCHEDULED`, `COMPLETED`, `CANCELLED`, ...).
    PerformedProcedureStepStatus,
    /// The protocol name (wins over `protocol`).
    ProtocolName,
    /// Requested Procedure Description.
    ProcedureDescription,
    /// Study Description.
    StudyDescription,
    /// The coding scheme designator of the protocol code (kept for the Scheduled
    /// Protocol Code Sequence; see [`crate::shape::protocol`]).
    HisrisCodingDesignator,
    /// Modality (wins over `modality`).
    Modality,
    /// Patient's Name (wins over `patient_name_template`).
    PatientName,
    /// Patient ID (wins over `patient_id_template`).
    PatientId,
    /// Patient's Birth Date (a date, or a year alone as 1 January).
    PatientBirthDate,
    /// Patient's Sex (a choice code or label: Male/Female/Other, M/F/O).
    PatientSex,
    /// Accession Number.
    AccessionNumber,
}

impl Target {
    /// Every target, in the order of the docs.
    pub const ALL: [Target; 19] = [
        Target::ScheduledStartDate,
        Target::ScheduledStartTime,
        Target::ReferringPhysicianName,
        Target::PerformingPhysician,
        Target::StationName,
        Target::ScheduledStationAeTitle,
        Target::PatientWeightLb,
        Target::PatientWeightKg,
        Target::PerformedProcedureStepStatus,
        Target::ProtocolName,
        Target::ProcedureDescription,
        Target::StudyDescription,
        Target::HisrisCodingDesignator,
        Target::Modality,
        Target::PatientName,
        Target::PatientId,
        Target::PatientBirthDate,
        Target::PatientSex,
        Target::AccessionNumber,
    ];

    /// The column name, as written in `field_mapping`.
    pub fn name(self) -> &'static str {
        match self {
            Target::ScheduledStartDate => "scheduled_start_date",
            Target::ScheduledStartTime => "scheduled_start_time",
            Target::ReferringPhysicianName => "referring_physician_name",
            Target::PerformingPhysician => "performing_physician",
            Target::StationName => "station_name",
            Target::ScheduledStationAeTitle => "scheduled_station_aetitle",
            Target::PatientWeightLb => "patient_weight_lb",
            Target::PatientWeightKg => "patient_weight_kg",
            Target::PerformedProcedureStepStatus => "performed_procedure_step_status",
            Target::ProtocolName => "protocol_name",
            Target::ProcedureDescription => "procedure_description",
            Target::StudyDescription => "study_description",
            Target::HisrisCodingDesignator => "hisris_coding_designator",
            Target::Modality => "modality",
            Target::PatientName => "patient_name",
            Target::PatientId => "patient_id",
            Target::PatientBirthDate => "patient_birth_date",
            Target::PatientSex => "patient_sex",
            Target::AccessionNumber => "accession_number",
        }
    }

    /// The target of a column name.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The checked `field_mapping`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMapping {
    /// REDCap field → worklist column, in the order written.
    pub rules: Vec<(String, Target)>,
    /// Fields mapped to their own name (`"study_id": "study_id"`, as Pylantir's example
    /// config does) or to a name that is no column (with a warning): asked for, filling
    /// no column (Pylantir drops them too).
    pub fetch_only: Vec<String>,
}

impl FieldMapping {
    /// The REDCap field mapped to `target`, if any.
    pub fn field_for(&self, target: Target) -> Option<&str> {
        self.rules
            .iter()
            .find(|(_, t)| *t == target)
            .map(|(f, _)| f.as_str())
    }

    /// Every REDCap field the mapping names.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .map(|(f, _)| f.as_str())
            .chain(self.fetch_only.iter().map(String::as_str))
    }
}

/// Whether `name` is a REDCap field (or instrument) name: lower-case letters, digits
/// and `_`, starting with a letter.
pub fn is_field_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Reads `field_mapping` (at key `key`), every problem at its key path.
pub(crate) fn parse_field_mapping(v: &Value, key: &str, r: &mut Report) -> FieldMapping {
    let mut mapping = FieldMapping::default();
    let Value::Object(m) = v else {
        r.problem(
            key,
            format!(
                "must be a table/object of redcap_field = worklist column, not {}",
                kind(v)
            ),
        );
        return mapping;
    };
    for (field, target) in m {
        let path = format!("{key}.{field}");
        if !is_field_name(field) {
            r.problem(
                path.as_str(),
                "not a REDCap field name (lower-case letters, digits and _)",
            );
            continue;
        }
        let Value::String(name) = target else {
            r.problem(
                path,
                format!("expected a worklist column name, found {}", kind(target)),
            );
            continue;
        };
        let name = name.trim();
        match Target::from_name(name) {
            Some(t) => {
                if let Some((other, _)) = mapping.rules.iter().find(|(_, o)| *o == t) {
                    r.problem(path, format!("{t} is already filled by {key}.{other}"));
                } else {
                    mapping.rules.push((field.clone(), t));
                }
            }
            None if name == field => mapping.fetch_only.push(field.clone()),
            // Pylantir asks REDCap for the field and drops the value, as it fills no
            // column; its own documented example maps `"session_id": "mri_instance"`
            // and the like. Refusing would stop a Pylantir config; silence would hide a
            // typo: a warning names it.
            None => {
                let known = Target::ALL.map(Target::name);
                r.warn(
                    path,
                    format!(
                        "{name:?} is not a worklist column{}, so {field} fills nothing (as in \
                         Pylantir); known columns: {}",
                        suggestion(name, known),
                        known.join(", ")
                    ),
                );
                mapping.fetch_only.push(field.clone());
            }
        }
    }
    mapping
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pylantir_example_mapping_reads() {
        let v = json!({
            "study_id": "study_id", "family_id": "family_id", "youth_dob_y": "youth_dob_y",
            "t1_date": "t1_date", "demo_sex": "demo_sex",
            "scheduled_date": "scheduled_start_date", "scheduled_time": "scheduled_start_time",
            "mri_wt_lbs": "patient_weight_lb", "referring_physician": "referring_physician_name",
            "performing_physician": "performing_physician", "station_name": "station_name",
            "status": "performed_procedure_step_status"
        });
        let mut r = Report::new();
        let m = parse_field_mapping(&v, "field_mapping", &mut r);
        assert!(r.is_ok(), "{:?}", r.problems());
        assert_eq!(m.rules.len(), 7);
        assert_eq!(m.fetch_only.len(), 5);
        assert_eq!(m.field_for(Target::PatientWeightLb), Some("mri_wt_lbs"));
        assert_eq!(m.fields().count(), 12);
    }

    #[test]
    fn duplicates_and_bad_names_are_problems_unknown_targets_warnings() {
        let v = json!({"a": "station_nme", "b": "station_name", "c": "station_name",
                       "Bad Field": "modality", "d": 3});
        let mut r = Report::new();
        let m = parse_field_mapping(&v, "field_mapping", &mut r);
        let text: Vec<String> = r.problems().iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text.iter()
                .any(|t| t.starts_with("field_mapping.c: station_name is already"))
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("field_mapping.Bad Field"))
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("field_mapping.d: expected"))
        );
        let warnings: Vec<String> = r.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("field_mapping.a: \"station_nme\" is not a worklist column")
                && warnings[0].contains("did you mean \"station_name\""),
            "{warnings:?}"
        );
        assert_eq!(m.fetch_only, ["a"], "asked for, filling nothing");
    }

    #[test]
    fn pylantir_readme_mapping_is_taken_with_warnings() {
        // The REDCap example of Pylantir 0.4.6's README, whose reversed pairs Pylantir
        // asks for and drops.
        let v = json!({
            "study_id": "study_id", "instrument": "redcap_repeat_instrument",
            "session_id": "mri_instance", "family_id": "family_id",
            "youth_dob_y": "youth_dob_y", "t1_date": "t1_date", "demo_sex": "demo_sex",
            "scheduled_date": "mri_date", "scheduled_time": "mri_time",
            "mri_wt_lbs": "patient_weight_lb",
            "referring_physician": "referring_physician_name",
            "performing_physician": "performing_physician",
            "station_name": "station_name", "status": "performed_procedure_step_status"
        });
        let mut r = Report::new();
        let m = parse_field_mapping(&v, "field_mapping", &mut r);
        assert!(r.is_ok(), "{:?}", r.problems());
        let warned: Vec<String> = r.warnings().iter().map(|w| w.to_string()).collect();
        assert_eq!(warned.len(), 4, "{warned:?}");
        assert_eq!(m.field_for(Target::PatientWeightLb), Some("mri_wt_lbs"));
        assert_eq!(m.field_for(Target::StationName), Some("station_name"));
    }
}
