//! A booking's details → a [`WorklistEntry`].
//!
//! Each entry field comes from its `field_mapping` rule when one is configured (and is
//! absent when the rule finds nothing), otherwise from these defaults:
//!
//! | field | default |
//! |---|---|
//! | patient ID | the title's text before the first `_`; the whole title when it has none (`SUB001_Doe_John` → `SUB001`) |
//! | patient name | none (titles often carry names; map it explicitly to send one) |
//! | study description | the project's name before its first `(`, trimmed |
//! | requested procedure description | the study description, else the resource name |
//! | protocol (code sequence) | `protocol_name` if mapped, else `project_protocol_mapping` (project-name prefix), else `resource_protocol_mapping`, else the `protocol` of the site (as Pylantir) |
//! | SPS description | the protocol, else as the requested procedure description |
//! | patient's weight | `patient_weight_lb` if mapped, converted to kg |
//! | modality | `resource_modality_mapping` (exact resource name, else longest prefix) |
//! | station AE title | `station_aet_mapping` (likewise) |
//! | station name | the resource name |
//! | performing physician | the MRI operator, as a person name (`Jane Smith` → `Smith^Jane`) |
//! | status | `Approved`/`Pending` → SCHEDULED, `Cancelled` → DISCONTINUED, `In Progress` → STARTED, `Completed` → COMPLETED, others → SCHEDULED; a booking without a status takes a mapped `performed_procedure_step_status` (a DICOM term, else through the same mapping) |
//! | accession number, requested procedure ID, SPS ID, study instance UID | derived from the booking id by [`WorklistEntry::new`] |
//!
//! Values are cleaned where that is harmless: control characters and backslashes are
//! replaced, person-name words reordered into `Family^Given`, identifiers longer than 16
//! characters replaced by their stable short form. A value that still does not fit (an
//! unknown sex, an invalid modality) is left out. Names and descriptions are not cut here:
//! the sync fits them to their DICOM length with a warning naming the booking and the
//! field ([`worklist_store::fit`]); a subject ID is never cut (a longer one is refused with
//! a warning). Mapped identifiers go through [`worklist_store::identifiers::short_id`]; a
//! mapped study instance UID is used only when it is a valid UID with at least two
//! components.

use jiff::civil::{Date, DateTime};
use worklist_store::identifiers::short_id;
use worklist_store::validate::{
    LO_MAX, ae_problem, coding_scheme_problem, cs_problem, uid_problem,
};
use worklist_store::{StepStatus, WorklistEntry};

use crate::booking::{Booking, lookup_with_properties, value_text};
use crate::config::{CalpendoConfig, FieldRule, Target};

/// Why a booking gives no entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// No subject ID (patient ID) could be read.
    NoSubjectId,
    /// No start time could be read.
    NoStartTime,
}

impl SkipReason {
    /// The missing field's name, for logs.
    pub fn field(self) -> &'static str {
        match self {
            SkipReason::NoSubjectId => "patient_id",
            SkipReason::NoStartTime => "start",
        }
    }
}

/// Calpendo's booking status → the step status (case-insensitive; a booking flagged
/// `cancelled` is DISCONTINUED whatever its status says).
pub fn map_status(status: Option<&str>, cancelled: bool) -> StepStatus {
    if cancelled {
        return StepStatus::Discontinued;
    }
    let Some(s) = status else {
        return StepStatus::Scheduled;
    };
    match s.trim().to_ascii_lowercase().as_str() {
        "approved" | "pending" => StepStatus::Scheduled,
        "cancelled" | "canceled" => StepStatus::Discontinued,
        "in progress" | "inprogress" | "in_progress" => StepStatus::Started,
        "completed" => StepStatus::Completed,
        _ => {
            tracing::debug!(status = s, "unknown Calpendo status; taken as SCHEDULED");
            StepStatus::Scheduled
        }
    }
}

/// A mapped `performed_procedure_step_status`: a DICOM step status term (Pylantir's
/// `IN_PROGRESS` too), else a Calpendo status through [`map_status`].
pub fn mapped_status(value: &str) -> StepStatus {
    value
        .parse::<StepStatus>()
        .unwrap_or_else(|_| map_status(Some(value), false))
}

/// Kilograms per pound (exact, by definition).
const KG_PER_LB: f64 = 0.453_592_37;

/// A weight in pounds as kilograms, to 10 g; `None` unless a positive number.
pub fn pounds_to_kg(value: &str) -> Option<f64> {
    let lb: f64 = value.trim().parse().ok()?;
    let kg = (lb * KG_PER_LB * 100.0).round() / 100.0;
    (kg.is_finite() && kg > 0.0).then_some(kg)
}

/// The value a `field_mapping` rule gives for a booking.
pub fn rule_value(rule: &FieldRule, booking: &Booking) -> Option<String> {
    let text = lookup_with_properties(&booking.raw, &rule.source_field).and_then(value_text)?;
    match &rule.extract {
        Some(e) => e.apply(&text),
        None => Some(text),
    }
}

/// The default subject ID of a title: the text before the first `_`, or the whole title.
pub fn default_subject_id(title: &str) -> &str {
    title.split('_').next().unwrap_or(title).trim()
}

/// The default study description of a project name: the text before the first `(`.
pub fn default_study_description(project: &str) -> &str {
    project.split('(').next().unwrap_or(project).trim()
}

/// A text cleaned for a DICOM string of at most `max` characters: control characters
/// become spaces, backslashes `/`, surrounding blanks go; `None` when nothing is left.
pub fn clean_text(s: &str, max: usize) -> Option<String> {
    let cleaned: String = s
        .chars()
        .map(|c| match c {
            '\\' => '/',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let cut: String = cleaned.trim().chars().take(max).collect();
    let cut = cut.trim_end();
    (!cut.is_empty()).then(|| cut.to_string())
}

/// A name as a DICOM person name: a value that already has `^` (or `=`) is kept as is;
/// otherwise a name of words that are all letters (with `-`, `'` and `.`) is reordered to
/// `Family^Given` (the last word is the family name: `Jane Smith` → `Smith^Jane`), and any
/// other text (`SUB515_Phantom scan`) is kept whole as the family name rather than split
/// at a guess. Components past the fifth join the fifth. Lengths, titles and `=` are the
/// sync's to fit, with a warning ([`worklist_store::fit`]).
pub fn person_name(s: &str) -> Option<String> {
    let s = clean_text(s, usize::MAX)?.replace('/', " ");
    let looks_like_words = |w: &str| {
        w.chars()
            .all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '.'))
    };
    let pn = if s.contains('^') || s.contains('=') {
        s
    } else {
        let words: Vec<&str> = s.split_whitespace().collect();
        match words.split_last() {
            Some((family, given))
                if !given.is_empty() && words.iter().all(|w| looks_like_words(w)) =>
            {
                format!("{family}^{}", given.join(" "))
            }
            _ => s,
        }
    };
    let groups: Vec<String> = pn
        .split('=')
        .map(|g| {
            let mut comps: Vec<&str> = g.split('^').collect();
            let tail = if comps.len() > 5 {
                comps.split_off(4).join(" ")
            } else {
                String::new()
            };
            if !tail.is_empty() {
                comps.push(&tail);
            }
            comps.join("^")
        })
        .collect();
    let out = groups.join("=");
    (!out.trim_matches(['^', '=', ' ']).is_empty()).then_some(out)
}

/// A modality code: upper case; `None` when not a valid DICOM code string.
pub fn clean_code(s: &str) -> Option<String> {
    let c = s.trim().to_ascii_uppercase();
    cs_problem(&c).is_none().then_some(c)
}

/// An AE title: trimmed, cut to 16 characters; `None` when not a valid AE title.
pub fn clean_ae(s: &str) -> Option<String> {
    let a: String = s.trim().chars().take(16).collect();
    let a = a.trim_end().to_string();
    ae_problem(&a).is_none().then_some(a)
}

fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    let ok_shape = (s.len() == 10 && s.as_bytes().get(4) == Some(&b'-'))
        || (s.len() == 8 && digits.len() == 8);
    if !ok_shape || digits.len() != 8 {
        return None;
    }
    let y = digits[0..4].parse().ok()?;
    let m = digits[4..6].parse().ok()?;
    let d = digits[6..8].parse().ok()?;
    Date::new(y, m, d).ok()
}

fn parse_sex(s: &str) -> Option<String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "m" | "male" => Some("M".into()),
        "f" | "female" => Some("F".into()),
        "o" | "other" => Some("O".into()),
        _ => None,
    }
}

fn valid_mapped_uid(v: &str) -> bool {
    uid_problem(v).is_none() && v.contains('.')
}

/// The booking's local start and end, from the display range when it has one (it wins),
/// else from the ISO range.
pub fn local_range(
    booking: &Booking,
    config: &CalpendoConfig,
) -> Option<(DateTime, Option<DateTime>)> {
    let (src, site) = (&config.source_tz, &config.tz);
    let naive = |dt| crate::time::naive_to_local(dt, src, site);
    let from_iso = booking.range_start.map(|s| {
        (
            s.to_local(src, site),
            booking.range_end.map(|e| e.to_local(src, site)),
        )
    });
    match booking.display_range {
        Some((s, e)) => {
            let shown = (naive(s), Some(naive(e)));
            if let Some(iso) = from_iso
                && iso.0 != shown.0
            {
                tracing::debug!(
                    booking_id = %booking.id,
                    "display time and ISO time of a booking disagree; the display time is used"
                );
            }
            Some(shown)
        }
        None => from_iso,
    }
}

/// A booking's study description as mapped (or by default, the project's name before its
/// first `(`), before it is cleaned for DICOM: the value `allowed_studies` is matched
/// against, as Pylantir matches its extracted value.
pub fn study_description(config: &CalpendoConfig, booking: &Booking) -> Option<String> {
    match config.field_mapping.get(Target::StudyDescription) {
        Some(rule) => rule_value(rule, booking),
        None => booking
            .project
            .as_deref()
            .map(|p| default_study_description(p).to_string()),
    }
}

/// Maps a booking to a worklist entry of source `source`.
pub fn map_booking(
    source: &str,
    config: &CalpendoConfig,
    booking: &Booking,
) -> Result<WorklistEntry, SkipReason> {
    let mapped = |t: Target| config.field_mapping.get(t).map(|r| rule_value(r, booking));
    let pick = |t: Target, default: Option<String>| mapped(t).unwrap_or(default);
    let resource = booking.resource.clone();

    let patient_id = pick(
        Target::PatientId,
        booking
            .title
            .as_deref()
            .map(|t| default_subject_id(t).to_string()),
    )
    .and_then(|v| clean_text(&v, usize::MAX))
    .ok_or(SkipReason::NoSubjectId)?;
    let (start, end) = local_range(booking, config).ok_or(SkipReason::NoStartTime)?;

    let mut e = WorklistEntry::new(source, booking.id.clone(), patient_id, start);
    e.end = end.filter(|end| *end >= start);
    if let Some(end) = e.end
        && end.date() != start.date()
    {
        tracing::info!(
            booking_id = %booking.id,
            start = %start.date(),
            end = %end.date(),
            "booking spans several days; its start date and time are used"
        );
    }

    e.patient_name = pick(Target::PatientName, None).and_then(|v| person_name(&v));
    e.patient_birth_date = pick(Target::PatientBirthDate, None).and_then(|v| parse_date(&v));
    e.patient_sex = pick(Target::PatientSex, None).and_then(|v| parse_sex(&v));
    e.study_description =
        study_description(config, booking).and_then(|v| clean_text(&v, usize::MAX));
    let description_default = e
        .study_description
        .clone()
        .or_else(|| resource.as_deref().and_then(|r| clean_text(r, usize::MAX)));

    set_identifiers(&mut e, source, booking, &|t| pick(t, None));

    e.referring_physician_name =
        pick(Target::ReferringPhysicianName, None).and_then(|v| person_name(&v));
    e.requested_procedure_description = pick(
        Target::RequestedProcedureDescription,
        description_default.clone(),
    )
    .and_then(|v| clean_text(&v, usize::MAX));
    e.performing_physician_name = pick(Target::PerformingPhysicianName, booking.operator.clone())
        .and_then(|v| person_name(&v));
    e.modality = pick(
        Target::Modality,
        resource
            .as_deref()
            .and_then(|r| config.resource_modality_mapping.lookup(r))
            .map(str::to_string),
    )
    .and_then(|v| clean_code(&v));
    e.station_ae_title = pick(
        Target::StationAeTitle,
        resource
            .as_deref()
            .and_then(|r| config.station_aet_mapping.lookup(r))
            .map(str::to_string),
    )
    .and_then(|v| clean_ae(&v));
    e.station_name =
        pick(Target::StationName, resource.clone()).and_then(|v| clean_text(&v, usize::MAX));
    let configured = booking
        .project
        .as_deref()
        .and_then(|p| config.project_protocol_mapping.lookup(p))
        .or_else(|| {
            resource
                .as_deref()
                .and_then(|r| config.resource_protocol_mapping.lookup(r))
        })
        .map(str::to_string)
        .or_else(|| config.protocol.clone());
    let protocol = pick(Target::ProtocolName, configured);
    if let Some(name) = protocol.as_deref().and_then(|v| clean_text(v, LO_MAX)) {
        let scheme = pick(Target::HisrisCodingDesignator, None)
            .map(|v| v.trim().to_string())
            .filter(|v| coding_scheme_problem(v).is_none())
            .unwrap_or_else(|| config.protocol_coding_scheme.clone());
        e.set_protocol(&name, &scheme);
    }
    let step_default = protocol.or(description_default);
    e.sps_description =
        pick(Target::SpsDescription, step_default).and_then(|v| clean_text(&v, usize::MAX));
    e.sps_location = pick(Target::SpsLocation, None).and_then(|v| clean_text(&v, usize::MAX));
    e.patient_weight_kg = pick(Target::PatientWeightLb, None).and_then(|v| pounds_to_kg(&v));
    e.status = match (
        &booking.status,
        mapped(Target::PerformedProcedureStepStatus).flatten(),
    ) {
        (None, Some(v)) if !booking.cancelled => mapped_status(&v),
        (status, _) => map_status(status.as_deref(), booking.cancelled),
    };

    tracing::trace!(
        booking_id = %booking.id,
        title = booking.title.as_deref().unwrap_or(""),
        patient_id = %e.patient_id,
        "booking mapped"
    );
    Ok(e)
}

/// Sets the mapped identifiers (accession number, requested procedure ID, step ID,
/// study instance UID); each one not mapped keeps the value `WorklistEntry::new` derived.
fn set_identifiers(
    e: &mut WorklistEntry,
    source: &str,
    booking: &Booking,
    mapped: &dyn Fn(Target) -> Option<String>,
) {
    let identifier = |t: Target| {
        mapped(t)
            .and_then(|v| clean_text(&v, usize::MAX))
            .map(|v| short_id(source, &v))
    };
    if let Some(v) = identifier(Target::AccessionNumber) {
        e.accession_number = v;
    }
    if let Some(v) = identifier(Target::RequestedProcedureId) {
        e.requested_procedure_id = v;
    }
    if let Some(v) = identifier(Target::SpsId) {
        e.sps_id = v;
    }
    if let Some(v) = mapped(Target::StudyInstanceUid) {
        let v = v.trim();
        if valid_mapped_uid(v) {
            e.study_instance_uid = v.to_string();
        } else {
            tracing::debug!(
                booking_id = %booking.id,
                "mapped study_instance_uid is not a valid UID; the derived UID is used"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config;
    use jiff::civil::date;
    use serde_json::{Value, json};

    fn env_ok(k: &str) -> Option<String> {
        match k {
            "CALPENDO_USERNAME" => Some("u".into()),
            "CALPENDO_PASSWORD" => Some("p".into()),
            _ => None,
        }
    }

    fn config(extra: Value) -> CalpendoConfig {
        let mut v = json!({"base_url": "https://x", "resources": ["3T", "EEG"],
            "resource_modality_mapping": {"3T": "MR", "EEG": "EEG"},
            "station_aet_mapping": {"3T": "MRI_3T"}});
        if let (Value::Object(o), Value::Object(x)) = (&mut v, extra) {
            o.extend(x);
        }
        parse_config(&v, &env_ok).unwrap()
    }

    fn classic(id: i64, title: &str, status: &str, resource: &str, project: &str) -> Booking {
        Booking::from_json(
            json!({
                "id": id,
                "formattedName": "[2026-11-26 09:00:00.0, 2026-11-26 10:30:00.0]",
                "title": title, "status": status, "biskitType": "MRIScan",
                "properties": {
                    "project": {"formattedName": project},
                    "resource": {"name": resource, "formattedName": resource}
                }
            }),
            &id.to_string(),
        )
        .unwrap()
    }

    #[test]
    fn defaults() {
        let c = config(json!({}));
        let mut b = classic(
            12345,
            "SUB001_Doe_John",
            "Approved",
            "3T Diagnostic Scanner",
            "BRISKP (Brain network models in schizophrenia)",
        );
        b.set_operator(Some("Jane Smith".into()));
        let e = map_booking("calpendo", &c, &b).unwrap();
        assert_eq!(e.source, "calpendo");
        assert_eq!(e.source_record_id, "12345");
        assert_eq!(e.patient_id, "SUB001");
        assert_eq!(e.patient_name, None);
        assert_eq!(e.study_description.as_deref(), Some("BRISKP"));
        assert_eq!(e.sps_description.as_deref(), Some("BRISKP"));
        assert_eq!(e.requested_procedure_description.as_deref(), Some("BRISKP"));
        assert_eq!(e.start, date(2026, 11, 26).at(9, 0, 0, 0));
        assert_eq!(e.end, Some(date(2026, 11, 26).at(10, 30, 0, 0)));
        assert_eq!(e.modality.as_deref(), Some("MR"));
        assert_eq!(e.station_ae_title.as_deref(), Some("MRI_3T"));
        assert_eq!(e.station_name.as_deref(), Some("3T Diagnostic Scanner"));
        assert_eq!(e.performing_physician_name.as_deref(), Some("Smith^Jane"));
        assert_eq!(e.status, StepStatus::Scheduled);
        assert_eq!(e.accession_number, "12345");
        assert_eq!(e.sps_id, "12345");
        assert_eq!(e.requested_procedure_id, "12345");
        assert!(e.study_instance_uid.starts_with("2.25."));
        // The station name is the sync's to fit (SH: 16 characters).
        let mut e = e;
        let fitted = worklist_store::fit::fit(&mut e);
        assert_eq!(fitted.len(), 1, "{fitted:?}");
        assert_eq!(e.station_name.as_deref(), Some("3T Diagnostic"));
        assert!(e.problems().is_empty(), "{:?}", e.problems());
    }

    #[test]
    fn defaults_without_project_parentheses_or_underscore() {
        let c = config(json!({}));
        let b = classic(1, "PILOT7", "Approved", "EEG Lab", "Memory Research");
        let e = map_booking("calpendo", &c, &b).unwrap();
        assert_eq!(e.patient_id, "PILOT7");
        assert_eq!(e.study_description.as_deref(), Some("Memory Research"));
        assert_eq!(e.modality.as_deref(), Some("EEG"));
        assert_eq!(e.station_ae_title, None);
        assert_eq!(e.performing_physician_name, None);
        // No project: the resource name describes the step.
        let mut b = classic(2, "X_1", "Approved", "EEG Lab", "P");
        b.project = None;
        let e = map_booking("calpendo", &c, &b).unwrap();
        assert_eq!(e.study_description, None);
        assert_eq!(e.sps_description.as_deref(), Some("EEG Lab"));
        // Unknown resource: no modality.
        let b = classic(3, "X_1", "Approved", "Mock Scanner", "P");
        assert_eq!(map_booking("calpendo", &c, &b).unwrap().modality, None);
    }

    #[test]
    fn pylantir_mapping() {
        let c = config(json!({"field_mapping": {
            "patient_id": {"source_field": "title", "_extract": {"pattern": "^([A-Z0-9]+)_.*", "group": 1}},
            "patient_name": {"source_field": "title", "_extract": {"pattern": "^[A-Z0-9]+_(.+)$", "group": 1}},
            "study_description": {"source_field": "properties.project.formattedName",
                "_extract": {"pattern": "^([^(]+)", "group": 1}},
            "accession_number": "id",
            "study_instance_uid": "id",
            "performing_physician": "operator",
            "sps_location": "properties.resource.formattedName",
        }}));
        let mut b = classic(
            12345,
            "SUB001_John_Doe",
            "Approved",
            "3T Diagnostic",
            "BRISKP (Brain)",
        );
        b.set_operator(Some("Tech John Smith".into()));
        let e = map_booking("calpendo", &c, &b).unwrap();
        assert_eq!(e.patient_id, "SUB001");
        assert_eq!(e.patient_name.as_deref(), Some("John_Doe"));
        assert_eq!(e.study_description.as_deref(), Some("BRISKP"));
        assert_eq!(e.accession_number, "12345");
        assert!(e.study_instance_uid.starts_with("2.25."));
        assert_eq!(
            e.performing_physician_name.as_deref(),
            Some("Smith^Tech John")
        );
        assert_eq!(e.sps_location.as_deref(), Some("3T Diagnostic"));
        assert!(e.problems().is_empty(), "{:?}", e.problems());
        // Lowercase title: no match, the title as is (Pylantir compatible).
        let b = classic(2, "pilot", "Approved", "3T", "P");
        let e = map_booking("calpendo", &c, &b).unwrap();
        assert_eq!(e.patient_id, "pilot");
    }

    #[test]
    fn template_name_mapping() {
        let c = config(json!({"field_mapping": {
            "patient_name": {"source_field": "title",
                "_extract": {"pattern": "^([^_]+)_([^_]+)_(.+)$", "template": "$2^$3"}},
            "study_instance_uid": "properties.uid",
            "patient_sex": "properties.sex",
            "patient_birth_date": "properties.dob",
            "modality": "properties.mod",
        }}));
        let mut raw = json!({"id": 5, "formattedName": "[2026-11-26 09:00:00.0, 2026-11-26 10:00:00.0]",
            "title": "SUB001_Doe_John", "status": "Approved",
            "properties": {"resource": {"name": "3T"}, "uid": "1.2.3.4", "sex": "female",
                "dob": "1990-05-17", "mod": "mr"}});
        let b = Booking::from_json(raw.clone(), "5").unwrap();
        let e = map_booking("calpendo", &c, &b).unwrap();
        assert_eq!(e.patient_name.as_deref(), Some("Doe^John"));
        assert_eq!(e.study_instance_uid, "1.2.3.4");
        assert_eq!(e.patient_sex.as_deref(), Some("F"));
        assert_eq!(e.patient_birth_date, Some(date(1990, 5, 17)));
        assert_eq!(e.modality.as_deref(), Some("MR"));
        // Invalid mapped values are left out (the UID falls back to the derived one).
        raw["properties"]["uid"] = json!("12345");
        raw["properties"]["sex"] = json!("unknown");
        raw["properties"]["dob"] = json!("17/05/1990");
        raw["properties"]["mod"] = json!("M-R!");
        let b = Booking::from_json(raw, "5").unwrap();
        let e = map_booking("calpendo", &c, &b).unwrap();
        assert!(e.study_instance_uid.starts_with("2.25."));
        assert_eq!(e.patient_sex, None);
        assert_eq!(e.patient_birth_date, None);
        assert_eq!(e.modality, None);
        assert!(e.problems().is_empty(), "{:?}", e.problems());
    }

    #[test]
    fn protocol_by_project_then_resource_then_site() {
        let c = config(json!({
            "protocol": "DEFAULT",
            "project_protocol_mapping": {"BRISKP": "BRAIN_RESEARCH", "BRISKP (Brain) long": "X"},
            "resource_protocol_mapping": {"3T": "MR_3T", "EEG": "EEG_64"}
        }));
        let code = |b: &Booking| map_booking("calpendo", &c, b).unwrap().protocol_code_value;
        let by_project = classic(1, "S_1", "Approved", "3T Diagnostic", "BRISKP (Brain)");
        assert_eq!(code(&by_project).as_deref(), Some("BRAIN_RESEARCH"));
        let by_resource = classic(2, "S_2", "Approved", "EEG Lab", "OTHER (Study)");
        assert_eq!(code(&by_resource).as_deref(), Some("EEG_64"));
        let by_site = classic(3, "S_3", "Approved", "Mock", "OTHER (Study)");
        assert_eq!(code(&by_site).as_deref(), Some("DEFAULT"));
        // A mapped protocol_name wins over every configured one.
        let c = config(json!({
            "project_protocol_mapping": {"BRISKP": "BRAIN_RESEARCH"},
            "field_mapping": {"protocol_name": "title"}
        }));
        let e = map_booking("calpendo", &c, &by_project).unwrap();
        assert_eq!(e.protocol_code_value.as_deref(), Some("S_1"));
        assert_eq!(e.sps_description.as_deref(), Some("S_1"));
    }

    #[test]
    fn protocol_is_the_step_description() {
        let c = config(json!({"site": 792, "protocol": {"792": "BRAIN"}}));
        let b = classic(1, "S_1", "Approved", "3T", "BRISKP (Brain)");
        let e = map_booking("calpendo", &c, &b).unwrap();
        assert_eq!(e.sps_description.as_deref(), Some("BRAIN"));
        assert_eq!(e.requested_procedure_description.as_deref(), Some("BRISKP"));
        // A mapped sps_description (mwlbridge's own key; Pylantir has none) wins.
        let c = config(json!({"protocol": "BRAIN", "field_mapping": {"sps_description": "title"}}));
        let e = map_booking("calpendo", &c, &b).unwrap();
        assert_eq!(e.sps_description.as_deref(), Some("S_1"));
        // Without a protocol: the study description, and no protocol code.
        let e = map_booking("calpendo", &config(json!({})), &b).unwrap();
        assert_eq!(e.sps_description.as_deref(), Some("BRISKP"));
        assert_eq!(e.protocol_code_value, None);
        assert_eq!(e.protocol_coding_scheme, None);
    }

    #[test]
    fn protocol_code_scheme_is_mapped_configured_or_the_default() {
        let b = classic(1, "S_1", "Approved", "3T", "BRISKP (Brain)");
        let e = map_booking("calpendo", &config(json!({"protocol": "BRAIN"})), &b).unwrap();
        assert_eq!(e.protocol_code_value.as_deref(), Some("BRAIN"));
        assert_eq!(e.protocol_coding_scheme.as_deref(), Some("99MWLBRIDGE"));
        let c = config(json!({"protocol": "BRAIN", "protocol_coding_scheme": "99SITE"}));
        let e = map_booking("calpendo", &c, &b).unwrap();
        assert_eq!(e.protocol_coding_scheme.as_deref(), Some("99SITE"));
        // A mapped designator that is not one (too long) falls back to the configured one.
        let c = config(
            json!({"protocol": "BRAIN", "protocol_coding_scheme": "99SITE",
            "field_mapping": {"hisris_coding_designator": "title"}}),
        );
        let long = classic(
            2,
            "A_DESIGNATOR_TOO_LONG",
            "Approved",
            "3T",
            "BRISKP (Brain)",
        );
        let e = map_booking("calpendo", &c, &long).unwrap();
        assert_eq!(e.protocol_coding_scheme.as_deref(), Some("99SITE"));
        assert!(e.problems().is_empty(), "{:?}", e.problems());
        let e = map_booking("calpendo", &c, &b).unwrap();
        assert_eq!(
            e.protocol_coding_scheme.as_deref(),
            Some("S_1"),
            "a mapped one wins"
        );
    }

    #[test]
    fn pylantir_columns_have_their_homes() {
        let c = config(json!({"protocol": "FROM_CONFIG", "field_mapping": {
            "protocol_name": "properties.protocol",
            "patient_weight_lb": "properties.weight",
            "procedure_description": "properties.procedure",
            "performed_procedure_step_status": "properties.pstatus",
            "hisris_coding_designator": "properties.coding",
        }}));
        let mut raw = json!({"id": 5, "title": "SUB001_Doe_John",
            "formattedName": "[2026-11-26 09:00:00.0, 2026-11-26 10:00:00.0]",
            "properties": {"resource": {"name": "3T"}, "protocol": "BRAIN_ROUTINE",
                "weight": "150", "procedure": "MRI brain", "pstatus": "IN_PROGRESS",
                "coding": "GEHC"}});
        let e = map_booking(
            "calpendo",
            &c,
            &Booking::from_json(raw.clone(), "5").unwrap(),
        )
        .unwrap();
        // protocol_name is Pylantir's step description; it wins over `protocol`.
        assert_eq!(e.sps_description.as_deref(), Some("BRAIN_ROUTINE"));
        // ... and the protocol code, under the mapped coding scheme designator.
        assert_eq!(e.protocol_code_value.as_deref(), Some("BRAIN_ROUTINE"));
        assert_eq!(e.protocol_code_meaning.as_deref(), Some("BRAIN_ROUTINE"));
        assert_eq!(e.protocol_coding_scheme.as_deref(), Some("GEHC"));
        // 150 lb = 68.04 kg.
        assert_eq!(e.patient_weight_kg, Some(68.04));
        assert_eq!(
            e.requested_procedure_description.as_deref(),
            Some("MRI brain")
        );
        // The booking has no status: the mapped one, through the status mapping.
        assert_eq!(e.status, StepStatus::Started);
        assert!(e.problems().is_empty(), "{:?}", e.problems());
        // The booking's own status wins, as in Pylantir; DICOM terms are read too.
        raw["status"] = json!("Completed");
        let e = map_booking(
            "calpendo",
            &c,
            &Booking::from_json(raw.clone(), "5").unwrap(),
        )
        .unwrap();
        assert_eq!(e.status, StepStatus::Completed);
        raw["status"] = Value::Null;
        raw["properties"]["pstatus"] = json!("DISCONTINUED");
        raw["properties"]["weight"] = json!("n/a");
        let e = map_booking("calpendo", &c, &Booking::from_json(raw, "5").unwrap()).unwrap();
        assert_eq!(e.status, StepStatus::Discontinued);
        assert_eq!(e.patient_weight_kg, None);
        assert_eq!(pounds_to_kg("0"), None);
        assert_eq!(pounds_to_kg("-3"), None);
        assert_eq!(pounds_to_kg(" 220.5 "), Some(100.02));
    }

    #[test]
    fn status_mapping() {
        assert_eq!(map_status(Some("Approved"), false), StepStatus::Scheduled);
        assert_eq!(map_status(Some("Pending"), false), StepStatus::Scheduled);
        assert_eq!(
            map_status(Some("Cancelled"), false),
            StepStatus::Discontinued
        );
        assert_eq!(map_status(Some("In Progress"), false), StepStatus::Started);
        assert_eq!(map_status(Some("Completed"), false), StepStatus::Completed);
        assert_eq!(map_status(Some("Tentative"), false), StepStatus::Scheduled);
        assert_eq!(map_status(None, false), StepStatus::Scheduled);
        assert_eq!(map_status(Some("Approved"), true), StepStatus::Discontinued);
    }

    #[test]
    fn skips_without_subject_or_start() {
        let c = config(json!({}));
        let b = Booking::from_json(
            json!({"id": 1, "formattedName": "[2026-11-26 09:00:00.0, 2026-11-26 10:00:00.0]"}),
            "1",
        )
        .unwrap();
        assert_eq!(
            map_booking("calpendo", &c, &b),
            Err(SkipReason::NoSubjectId)
        );
        let b = Booking::from_json(json!({"id": 1, "title": "_x"}), "1").unwrap();
        assert_eq!(
            map_booking("calpendo", &c, &b),
            Err(SkipReason::NoSubjectId)
        );
        let b = Booking::from_json(json!({"id": 1, "title": "SUB1_x"}), "1").unwrap();
        assert_eq!(
            map_booking("calpendo", &c, &b),
            Err(SkipReason::NoStartTime)
        );
    }

    #[test]
    fn calpendo11_shape_and_display_wins() {
        let c = config(json!({}));
        let raw = json!({"id": 9, "biskitType": "MRIScan", "properties": {
            "title": "SUB009_X_Y", "status": "Cancelled",
            "dateRange": {"start": "2026-11-26T15:00:00Z", "finish": "2026-11-26T16:00:00Z"},
            "resource": {"name": "3T Diagnostic"}}});
        let b = Booking::from_json(raw.clone(), "9").unwrap();
        let e = map_booking("calpendo", &c, &b).unwrap();
        assert_eq!(e.patient_id, "SUB009");
        assert_eq!(e.start, date(2026, 11, 26).at(9, 0, 0, 0));
        assert_eq!(e.end, Some(date(2026, 11, 26).at(10, 0, 0, 0)));
        assert_eq!(e.status, StepStatus::Discontinued);
        // With both forms, the display time wins.
        let mut raw = raw;
        raw["formattedName"] = json!("[2026-11-26 11:00:00.0, 2026-11-26 12:00:00.0]");
        let b = Booking::from_json(raw, "9").unwrap();
        let e = map_booking("calpendo", &c, &b).unwrap();
        assert_eq!(e.start, date(2026, 11, 26).at(11, 0, 0, 0));
    }

    #[test]
    fn source_timezone_converts_display_times() {
        let c = config(json!({"source_timezone": "America/Toronto"}));
        let b = classic(1, "S_1", "Approved", "3T", "P");
        let e = map_booking("calpendo", &c, &b).unwrap();
        // 09:00 Toronto (EST, -5) = 08:00 Edmonton (-6).
        assert_eq!(e.start, date(2026, 11, 26).at(8, 0, 0, 0));
    }

    #[test]
    fn multi_day_booking_uses_its_start() {
        let c = config(json!({}));
        let b = Booking::from_json(
            json!({"id": 3, "title": "S_1",
                "formattedName": "[2026-11-26 20:00:00.0, 2026-11-28 08:00:00.0]"}),
            "3",
        )
        .unwrap();
        let e = map_booking("calpendo", &c, &b).unwrap();
        assert_eq!(e.start, date(2026, 11, 26).at(20, 0, 0, 0));
        assert_eq!(e.end, Some(date(2026, 11, 28).at(8, 0, 0, 0)));
    }

    #[test]
    fn cleaning() {
        assert_eq!(person_name("Jane Smith").as_deref(), Some("Smith^Jane"));
        assert_eq!(person_name("Madonna").as_deref(), Some("Madonna"));
        assert_eq!(person_name("Doe^John").as_deref(), Some("Doe^John"));
        assert_eq!(person_name(" ").as_deref(), None);
        assert_eq!(person_name("a\\b c").as_deref(), Some("c^a b"));
        assert_eq!(
            person_name("a^b^c^d^e^f^g").as_deref(),
            Some("a^b^c^d^e f g")
        );
        // Not reordered at a guess: an ID and a word, digits.
        assert_eq!(
            person_name("SUB515_Phantom scan").as_deref(),
            Some("SUB515_Phantom scan")
        );
        assert_eq!(person_name("Jo 2nd").as_deref(), Some("Jo 2nd"));
        assert_eq!(
            person_name("Marie-Ève O'Neil").as_deref(),
            Some("O'Neil^Marie-Ève")
        );
        // Lengths are the sync's to fit, with a warning (worklist_store::fit).
        let long = "x".repeat(100);
        assert_eq!(person_name(&long).unwrap().len(), 100);
        assert_eq!(clean_text(" a\\b\tc ", 64).as_deref(), Some("a/b c"));
        assert_eq!(clean_text(&"y".repeat(80), 64).unwrap().len(), 64);
        assert_eq!(clean_text("  ", 64), None);
        assert_eq!(
            clean_ae("A_VERY_LONG_AE_TITLE").as_deref(),
            Some("A_VERY_LONG_AE_T")
        );
        assert_eq!(clean_code(" mr ").as_deref(), Some("MR"));
        assert_eq!(clean_code("M-R"), None);
        assert_eq!(default_subject_id("SUB001_Family_Given"), "SUB001");
        assert_eq!(default_subject_id("SUB001"), "SUB001");
        assert_eq!(default_study_description("BRISKP (Brain (x))"), "BRISKP");
        assert_eq!(parse_date("19900517"), Some(date(1990, 5, 17)));
        assert_eq!(parse_date("1990-02-30"), None);
    }

    #[test]
    fn long_values_are_fitted_by_the_sync_and_subject_ids_never_cut() {
        let c = config(
            json!({"field_mapping": {"accession_number": "properties.acc",
            "sps_location": "properties.loc"}}),
        );
        let b = Booking::from_json(
            json!({"id": 4, "title": format!("{}_x", "S".repeat(80)),
                "formattedName": "[2026-11-26 09:00:00.0, 2026-11-26 10:00:00.0]",
                "properties": {"acc": "ACC-0123456789-ABCDEF", "loc": "L".repeat(70),
                    "project": {"formattedName": "P".repeat(90)},
                    "resource": {"name": "3T Very Long Resource Name"}}}),
            "4",
        )
        .unwrap();
        let mut e = map_booking("calpendo", &c, &b).unwrap();
        assert_eq!(
            e.accession_number.len(),
            16,
            "an identifier's stable short form"
        );
        worklist_store::fit::fit(&mut e);
        assert_eq!(e.sps_location.as_deref().map(str::len), Some(64));
        assert_eq!(e.study_description.as_deref().map(str::len), Some(64));
        // A cut subject ID could be another subject's: refused instead.
        assert_eq!(e.patient_id.len(), 80);
        let problems = e.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "patient_id");
    }
}
