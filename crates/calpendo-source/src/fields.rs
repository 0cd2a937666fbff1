//! Field mapping at sync time: which booking field fills which entry field
//! ([`FieldMapping`], [`FieldRule`], [`Extract::apply`]) and the resource-name prefix
//! maps of modality and station AE title ([`PrefixMap::lookup`]).
//!
//! The settings that build them are read in [`crate::config`]; the defaults used when no
//! rule is configured (the title → patient ID rule among them) live in [`crate::mapping`].

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

/// Resource-name prefix → value (a modality or a station AE title).
///
/// [`PrefixMap::lookup`] prefers an exact match, then the longest matching prefix, so the
/// result does not depend on the order the keys were written in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixMap {
    entries: Vec<(String, String)>,
}

impl PrefixMap {
    /// A map from `(prefix, value)` pairs.
    pub fn new(entries: Vec<(String, String)>) -> PrefixMap {
        PrefixMap { entries }
    }

    /// The value for a resource name: exact match first, then the longest prefix.
    pub fn lookup(&self, name: &str) -> Option<&str> {
        if let Some((_, v)) = self.entries.iter().find(|(k, _)| k == name) {
            return Some(v);
        }
        self.entries
            .iter()
            .filter(|(k, _)| name.starts_with(k.as_str()))
            .max_by_key(|(k, _)| k.len())
            .map(|(_, v)| v.as_str())
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The pairs, as configured.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }
}

/// An entry field that `field_mapping` can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// `patient_id`.
    PatientId,
    /// `patient_name`.
    PatientName,
    /// `patient_birth_date` (`YYYY-MM-DD` or `YYYYMMDD`).
    PatientBirthDate,
    /// `patient_sex` (`M`/`F`/`O`, or `male`/`female`/`other`).
    PatientSex,
    /// `study_description`.
    StudyDescription,
    /// `accession_number`.
    AccessionNumber,
    /// `study_instance_uid` (used only when the value is a valid UID).
    StudyInstanceUid,
    /// `referring_physician_name`.
    ReferringPhysicianName,
    /// `requested_procedure_id`.
    RequestedProcedureId,
    /// `requested_procedure_description` (Pylantir: `procedure_description`).
    RequestedProcedureDescription,
    /// `sps_id` (Pylantir: `scheduled_procedure_step_id`).
    SpsId,
    /// `performing_physician_name` (Pylantir: `performing_physician`).
    PerformingPhysicianName,
    /// `modality`.
    Modality,
    /// `station_ae_title` (Pylantir: `scheduled_station_aetitle`).
    StationAeTitle,
    /// `station_name`.
    StationName,
    /// `sps_description` (Pylantir: `scheduled_procedure_step_description`).
    SpsDescription,
    /// `sps_location`.
    SpsLocation,
    /// `protocol_name` (Pylantir's column): the protocol code (value and meaning), and the
    /// Scheduled Procedure Step Description when `sps_description` is not mapped, as
    /// Pylantir sends it; it wins over `protocol`.
    ProtocolName,
    /// `patient_weight_lb` (Pylantir's column): a weight in pounds, sent as Patient's
    /// Weight in kg (DICOM's unit).
    PatientWeightLb,
    /// `performed_procedure_step_status` (Pylantir's column): the step status through the
    /// status mapping, used when the booking has no status (Pylantir's status wins too).
    PerformedProcedureStepStatus,
    /// `hisris_coding_designator` (Pylantir's column): the Coding Scheme Designator of the
    /// protocol code (Scheduled Protocol Code Sequence); `protocol_coding_scheme` when
    /// the booking's is blank or not a valid designator.
    HisrisCodingDesignator,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 21] = [
        Target::PatientId,
        Target::PatientName,
        Target::PatientBirthDate,
        Target::PatientSex,
        Target::StudyDescription,
        Target::AccessionNumber,
        Target::StudyInstanceUid,
        Target::ReferringPhysicianName,
        Target::RequestedProcedureId,
        Target::RequestedProcedureDescription,
        Target::SpsId,
        Target::PerformingPhysicianName,
        Target::Modality,
        Target::StationAeTitle,
        Target::StationName,
        Target::SpsDescription,
        Target::SpsLocation,
        Target::ProtocolName,
        Target::PatientWeightLb,
        Target::PerformedProcedureStepStatus,
        Target::HisrisCodingDesignator,
    ];

    /// Our name of the field.
    pub fn name(self) -> &'static str {
        match self {
            Target::PatientId => "patient_id",
            Target::PatientName => "patient_name",
            Target::PatientBirthDate => "patient_birth_date",
            Target::PatientSex => "patient_sex",
            Target::StudyDescription => "study_description",
            Target::AccessionNumber => "accession_number",
            Target::StudyInstanceUid => "study_instance_uid",
            Target::ReferringPhysicianName => "referring_physician_name",
            Target::RequestedProcedureId => "requested_procedure_id",
            Target::RequestedProcedureDescription => "requested_procedure_description",
            Target::SpsId => "sps_id",
            Target::PerformingPhysicianName => "performing_physician_name",
            Target::Modality => "modality",
            Target::StationAeTitle => "station_ae_title",
            Target::StationName => "station_name",
            Target::SpsDescription => "sps_description",
            Target::SpsLocation => "sps_location",
            Target::ProtocolName => "protocol_name",
            Target::PatientWeightLb => "patient_weight_lb",
            Target::PerformedProcedureStepStatus => "performed_procedure_step_status",
            Target::HisrisCodingDesignator => "hisris_coding_designator",
        }
    }

    /// The target of a field name: ours, or Pylantir's column name.
    pub fn from_name(name: &str) -> Option<Target> {
        let alias = match name {
            "scheduled_procedure_step_id" => Some(Target::SpsId),
            "performing_physician" => Some(Target::PerformingPhysicianName),
            "scheduled_station_aetitle" => Some(Target::StationAeTitle),
            "scheduled_procedure_step_description" => Some(Target::SpsDescription),
            "procedure_description" => Some(Target::RequestedProcedureDescription),
            _ => None,
        };
        alias.or_else(|| Target::ALL.into_iter().find(|t| t.name() == name))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an extract yields from a match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractOutput {
    /// A capture group (0 is the whole match).
    Group(usize),
    /// A replacement template over the match's groups, e.g. `$2^$1`.
    Template(String),
}

/// A regex extract applied to a source field's text.
#[derive(Debug, Clone)]
pub struct Extract {
    /// The pattern, matched at the start of the text.
    pub pattern: Regex,
    /// What the value is made of.
    pub output: ExtractOutput,
}

impl Extract {
    /// The extracted value: the group or the expanded template when the pattern matches
    /// at the start of `text`; `text` itself when it does not (Pylantir compatible);
    /// `None` when the chosen group did not take part in the match.
    pub fn apply(&self, text: &str) -> Option<String> {
        let caps = match self.pattern.captures(text) {
            Some(c) if c.get(0).is_some_and(|m| m.start() == 0) => c,
            _ => return Some(text.to_string()),
        };
        match &self.output {
            ExtractOutput::Group(n) => caps.get(*n).map(|m| m.as_str().to_string()),
            ExtractOutput::Template(t) => {
                let mut out = String::new();
                caps.expand(t, &mut out);
                Some(out)
            }
        }
    }
}

/// How one entry field is filled from a booking.
#[derive(Debug, Clone)]
pub struct FieldRule {
    /// Dot path into the booking details.
    pub source_field: String,
    /// Optional regex extract.
    pub extract: Option<Extract>,
}

/// The configured field mapping: at most one rule per [`Target`].
#[derive(Debug, Clone, Default)]
pub struct FieldMapping {
    rules: BTreeMap<Target, FieldRule>,
}

impl FieldMapping {
    /// The rule for a target, if one is configured.
    pub fn get(&self, target: Target) -> Option<&FieldRule> {
        self.rules.get(&target)
    }

    /// Sets the rule for a target.
    pub fn insert(&mut self, target: Target, rule: FieldRule) {
        self.rules.insert(target, rule);
    }

    /// Every configured rule.
    pub fn iter(&self) -> impl Iterator<Item = (Target, &FieldRule)> {
        self.rules.iter().map(|(t, r)| (*t, r))
    }

    /// Whether no rule is configured.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_matches_at_start_only() {
        let e = Extract {
            pattern: Regex::new("([0-9]+)").unwrap(),
            output: ExtractOutput::Group(1),
        };
        assert_eq!(e.apply("123abc").as_deref(), Some("123"));
        // Python's re.match would not match here: the text is kept.
        assert_eq!(e.apply("abc123").as_deref(), Some("abc123"));
    }

    #[test]
    fn prefix_map_prefers_exact_then_longest() {
        let m = PrefixMap::new(vec![
            ("3T".into(), "MR".into()),
            ("3T Research".into(), "OT".into()),
            ("EEG".into(), "EEG".into()),
        ]);
        assert_eq!(m.lookup("3T Diagnostic"), Some("MR"));
        assert_eq!(m.lookup("3T Research Scanner"), Some("OT"));
        assert_eq!(m.lookup("Mock Scanner"), None);
    }
}
