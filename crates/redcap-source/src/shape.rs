//! Export rows → visits → worklist entries, as Pylantir's `redcap_plugin.py` shapes them
//! (`_filter_mri_records`, `_transform_records`). Pure.
//!
//! - Rows are grouped by record id; a record's baseline row is its first row without a
//!   repeat instrument. Each row of the configured instrument (`mri`) is one visit: a
//!   field takes the visit row's value when it has one (not empty, not `NaN`), else the
//!   baseline's.
//! - A visit without instance, date or time is skipped; so is one whose subject (the first
//!   field the patient ID template names, `study_id` by default) is empty, or whose date
//!   or time none of the accepted forms reads ([`crate::values`]).
//! - `study_id` and `family_id` keep the part after their last `-`
//!   (`CPIP-FAKE101` → `FAKE101`); when `neuro_pcp` is `1` or `true` the study part gets
//!   `ng_` in front (unless it has it), in both the patient ID and the name.
//! - The start is the mapped `scheduled_start_date`/`_time` field when it has a value,
//!   else the date and time fields, read as the site's local time.
//! - Each entry's record id is `"{record_id}:{n}"`, `n` the row's REDCap repeat instance
//!   (`redcap_repeat_instance`; the instance field's value when the export has none):
//!   stable per visit, also when the session number is edited, so its StudyInstanceUID
//!   is too.

use std::collections::HashMap;

use jiff::civil::DateTime;
use worklist_store::{StepStatus, WorklistEntry};

use crate::config::{RedcapConfig, Target};
use crate::export::{Metadata, REPEAT_INSTANCE, REPEAT_INSTRUMENT, Row, SEX_FIELD};
use crate::values;

/// One visit: a record's baseline merged with one instance of the visit instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    /// The REDCap record id.
    pub record_id: String,
    /// The visit's instance (session) value.
    pub instance: String,
    /// REDCap's number of the instrument's instance (`redcap_repeat_instance`), when the
    /// export has it.
    pub repeat_instance: Option<String>,
    /// Field → value, the visit row's over the baseline's; only non-empty values.
    pub fields: HashMap<String, String>,
}

impl Visit {
    /// The value of `field`, if non-empty.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    /// The entry's record id: `"{record_id}:{repeat instance}"`, or with the instance
    /// (session) value when the export has no repeat instance.
    pub fn entry_record_id(&self) -> String {
        let n = self.repeat_instance.as_deref().unwrap_or(&self.instance);
        format!("{}:{n}", self.record_id)
    }
}

/// Why a row gave no entry; logged with the record id only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// A required field (instance, date, time, the subject) is empty.
    Missing(String),
    /// A date or time none of the accepted forms reads.
    Unreadable(String),
}

impl Skip {
    /// The field the skip is about.
    pub fn field(&self) -> &str {
        match self {
            Skip::Missing(f) | Skip::Unreadable(f) => f,
        }
    }
}

/// The protocol of a visit, for a Scheduled Protocol Code Sequence: its name and the
/// coding scheme designator (Pylantir's `hisris_coding_designator`) when mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// The protocol name (code value and meaning).
    pub name: String,
    /// The coding scheme designator, if mapped.
    pub coding_designator: Option<String>,
}

fn has_value(v: &str) -> bool {
    !v.is_empty() && v != "NaN"
}

/// Merges each record's baseline row with each of its visit rows. Returns the visits in
/// export order and the skipped rows as `(record id, why)`.
pub fn visits(
    rows: &[Row],
    record_id_field: &str,
    config: &RedcapConfig,
) -> (Vec<Visit>, Vec<(String, Skip)>) {
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<&Row>> = HashMap::new();
    for row in rows {
        let Some(id) = row
            .get(record_id_field)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        groups
            .entry(id)
            .or_insert_with(|| {
                order.push(id);
                Vec::new()
            })
            .push(row);
    }
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let required = [
        &config.instance_field,
        &config.date_field,
        &config.time_field,
    ];
    for id in order {
        let group = groups.get(id).map(Vec::as_slice).unwrap_or_default();
        let baseline = group
            .iter()
            .find(|r| r.get(REPEAT_INSTRUMENT).is_none_or(|s| s.is_empty()));
        for row in group
            .iter()
            .filter(|r| r.get(REPEAT_INSTRUMENT) == Some(&config.instrument))
        {
            if let Some(f) = required
                .iter()
                .find(|f| !row.get(f.as_str()).is_some_and(|v| has_value(v)))
            {
                skipped.push((id.to_string(), Skip::Missing(f.to_string())));
                continue;
            }
            let mut fields: HashMap<String, String> = HashMap::new();
            for source in baseline.into_iter().copied().chain([*row]) {
                for (k, v) in source {
                    if has_value(v) && k != REPEAT_INSTRUMENT {
                        fields.insert(k.clone(), v.clone());
                    }
                }
            }
            let instance = fields
                .get(config.instance_field.as_str())
                .cloned()
                .unwrap_or_default();
            let repeat_instance = row
                .get(REPEAT_INSTANCE)
                .map(|n| n.trim())
                .filter(|n| !n.is_empty())
                .map(str::to_string);
            out.push(Visit {
                record_id: id.to_string(),
                instance,
                repeat_instance,
                fields,
            });
        }
    }
    (out, skipped)
}

/// The part after the last `-` (`CPIP-FAKE101` → `FAKE101`).
pub fn after_last_dash(v: &str) -> &str {
    v.rsplit('-').next().unwrap_or(v)
}

/// The study part of the identifiers: after the last `-`, with `ng_` in front for a
/// neurology patient (`neuro_pcp` `1` or `true`).
pub fn study_part(study_id: &str, neuro_pcp: Option<&str>) -> String {
    let study = after_last_dash(study_id);
    let neuro =
        neuro_pcp.is_some_and(|n| matches!(n.trim().to_ascii_lowercase().as_str(), "1" | "true"));
    if neuro && !study.starts_with("ng_") {
        format!("ng_{study}")
    } else {
        study.to_string()
    }
}

/// The visit's value of a template placeholder field (shaped for `study_id` and
/// `family_id`).
fn placeholder(visit: &Visit, field: &str) -> String {
    match field {
        "study_id" => study_part(
            visit.get("study_id").unwrap_or_default(),
            visit.get("neuro_pcp"),
        ),
        "family_id" => after_last_dash(visit.get("family_id").unwrap_or_default()).to_string(),
        f => visit.get(f).unwrap_or_default().to_string(),
    }
}

/// The protocol of a visit: the mapped `protocol_name` field, else the configured one.
/// Kept apart so a Scheduled Protocol Code Sequence can be filled from it.
pub fn protocol(visit: &Visit, config: &RedcapConfig) -> Option<Protocol> {
    let mapped = |t: Target| config.field_mapping.field_for(t).and_then(|f| visit.get(f));
    let name = mapped(Target::ProtocolName)
        .map(str::to_string)
        .or_else(|| config.protocol.clone())?;
    Some(Protocol {
        name,
        coding_designator: mapped(Target::HisrisCodingDesignator).map(str::to_string),
    })
}

/// A status term of REDCap (`SCHEDULED`, `IN_PROGRESS`, `COMPLETED`, `CANCELLED`, ...).
pub fn step_status(term: &str) -> StepStatus {
    match term.trim().to_ascii_uppercase().replace(' ', "_").as_str() {
        "CANCELLED" | "CANCELED" => StepStatus::Discontinued,
        "IN_PROGRESS" => StepStatus::Started,
        t => t.parse().unwrap_or(StepStatus::Scheduled),
    }
}

/// The visit's start: the mapped start fields when they have a value, else the visit's
/// date and time fields.
fn start(visit: &Visit, config: &RedcapConfig) -> Result<DateTime, Skip> {
    let pick = |target: Target, fallback: &str| -> String {
        config
            .field_mapping
            .field_for(target)
            .filter(|f| visit.get(f).is_some())
            .unwrap_or(fallback)
            .to_string()
    };
    let date_field = pick(Target::ScheduledStartDate, &config.date_field);
    let time_field = pick(Target::ScheduledStartTime, &config.time_field);
    let date = visit
        .get(&date_field)
        .and_then(values::parse_date)
        .ok_or(Skip::Unreadable(date_field))?;
    let time = visit
        .get(&time_field)
        .and_then(values::parse_time)
        .ok_or(Skip::Unreadable(time_field))?;
    Ok(date.to_datetime(time))
}

/// The worklist entry of one visit.
pub fn entry(
    source: &str,
    visit: &Visit,
    config: &RedcapConfig,
    meta: &Metadata,
) -> Result<WorklistEntry, Skip> {
    let start = start(visit, config)?;
    let field = |f: &str| placeholder(visit, f);
    if let Some(subject) = config.patient_id_template.fields().next()
        && field(subject).is_empty()
    {
        return Err(Skip::Missing(subject.to_string()));
    }
    let patient_id = config
        .patient_id_template
        .render(&config.site, &visit.instance, &field);
    let mut e = WorklistEntry::new(source, visit.entry_record_id(), patient_id, start);
    e.patient_name = Some(config.patient_name_template.render(
        &config.site,
        &visit.instance,
        &field,
    ));
    e.modality = Some(config.modality.clone());
    if let Some(p) = protocol(visit, config) {
        let scheme = p
            .coding_designator
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(&config.protocol_coding_scheme);
        e.set_protocol(&p.name, scheme);
        // Pylantir sends the protocol as the step description too.
        e.sps_description = Some(p.name);
    }
    let sex_field = config
        .field_mapping
        .field_for(Target::PatientSex)
        .unwrap_or(SEX_FIELD);
    e.patient_sex = visit.get(sex_field).and_then(|code| {
        let label = meta
            .choices
            .get(sex_field)
            .and_then(|c| values::choice_label(c, code));
        values::dicom_sex(label.unwrap_or(code)).map(str::to_string)
    });
    for (f, target) in &config.field_mapping.rules {
        if let Some(v) = visit.get(f) {
            apply(&mut e, *target, v);
        }
    }
    Ok(e)
}

/// Sets one mapped value on the entry.
fn apply(e: &mut WorklistEntry, target: Target, v: &str) {
    let text = Some(v.trim().to_string());
    match target {
        // Read by `start`, `protocol` and the sex look-up.
        Target::ScheduledStartDate
        | Target::ScheduledStartTime
        | Target::ProtocolName
        | Target::HisrisCodingDesignator
        | Target::PatientSex => {}
        Target::ReferringPhysicianName => e.referring_physician_name = text,
        Target::PerformingPhysician => e.performing_physician_name = text,
        Target::StationName => e.station_name = text,
        Target::ScheduledStationAeTitle => e.station_ae_title = text,
        Target::PatientWeightLb => e.patient_weight_kg = values::pounds_to_kg(v),
        Target::PatientWeightKg => e.patient_weight_kg = values::kilograms(v),
        Target::PerformedProcedureStepStatus => e.status = step_status(v),
        Target::ProcedureDescription => e.requested_procedure_description = text,
        Target::StudyDescription => e.study_description = text,
        Target::Modality => e.modality = Some(v.trim().to_ascii_uppercase()),
        Target::PatientName => e.patient_name = text,
        Target::PatientId => e.patient_id = v.trim().to_string(),
        Target::PatientBirthDate => e.patient_birth_date = values::birth_date(v),
        Target::AccessionNumber => e.accession_number = v.trim().to_string(),
    }
}

#[cfg(test)]
mod tests;
