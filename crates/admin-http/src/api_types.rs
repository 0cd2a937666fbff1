//! The REST API's JSON shapes. Dates and times are DICOM DA (`YYYYMMDD`) and TM
//! (`HHMMSS`) in the site's zone, exactly as consoles receive them.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use worklist_store::{
    MANUAL_SOURCE, StepStatus, StoredEntry, SyncRun, WorklistEntry, format_da, format_tm, parse_da,
    parse_tm,
};

/// A worklist entry as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct EntryView {
    /// Data source (`calpendo`, ..., or `manual`).
    pub source: String,
    /// The record's id in its source.
    pub record_id: String,
    /// Patient's Name (PN).
    pub patient_name: Option<String>,
    /// Patient ID.
    pub patient_id: String,
    /// Patient's Birth Date (DA).
    pub patient_birth_date: Option<String>,
    /// Patient's Sex (M, F, O).
    pub patient_sex: Option<String>,
    /// Patient's Weight in kg.
    pub patient_weight_kg: Option<f64>,
    /// Study Instance UID.
    pub study_instance_uid: String,
    /// Accession Number.
    pub accession_number: String,
    /// Study Description.
    pub study_description: Option<String>,
    /// Referring Physician's Name (PN).
    pub referring_physician_name: Option<String>,
    /// Requested Procedure ID.
    pub requested_procedure_id: String,
    /// Requested Procedure Description.
    pub requested_procedure_description: Option<String>,
    /// Scheduled Procedure Step ID.
    pub sps_id: String,
    /// Scheduled Station AE Title.
    pub station_ae_title: Option<String>,
    /// Scheduled Station Name.
    pub station_name: Option<String>,
    /// Scheduled start date (DA).
    pub start_date: String,
    /// Scheduled start time (TM).
    pub start_time: String,
    /// Scheduled end date (DA).
    pub end_date: Option<String>,
    /// Scheduled end time (TM).
    pub end_time: Option<String>,
    /// Modality.
    pub modality: Option<String>,
    /// Scheduled Performing Physician's Name (PN).
    pub performing_physician_name: Option<String>,
    /// Scheduled Procedure Step Description.
    pub sps_description: Option<String>,
    /// Scheduled Procedure Step Location.
    pub sps_location: Option<String>,
    /// Protocol code (Scheduled Protocol Code Sequence): Code Value.
    pub protocol_code_value: Option<String>,
    /// Protocol code: Coding Scheme Designator.
    pub protocol_coding_scheme: Option<String>,
    /// Protocol code: Code Meaning.
    pub protocol_code_meaning: Option<String>,
    /// SCHEDULED, STARTED, COMPLETED or DISCONTINUED.
    pub status: String,
    /// Who set the status: `sync`, `mpps` or `admin`.
    pub status_set_by: String,
    /// When the status last changed (RFC 3339).
    pub status_changed_at: String,
    /// When the entry was first stored (RFC 3339).
    pub first_seen: String,
    /// When any value last changed (RFC 3339).
    pub last_updated: String,
}

impl From<&StoredEntry> for EntryView {
    fn from(s: &StoredEntry) -> Self {
        let e = &s.entry;
        EntryView {
            source: e.source.clone(),
            record_id: e.source_record_id.clone(),
            patient_name: e.patient_name.clone(),
            patient_id: e.patient_id.clone(),
            patient_birth_date: e.patient_birth_date.map(format_da),
            patient_sex: e.patient_sex.clone(),
            patient_weight_kg: e.patient_weight_kg,
            study_instance_uid: e.study_instance_uid.clone(),
            accession_number: e.accession_number.clone(),
            study_description: e.study_description.clone(),
            referring_physician_name: e.referring_physician_name.clone(),
            requested_procedure_id: e.requested_procedure_id.clone(),
            requested_procedure_description: e.requested_procedure_description.clone(),
            sps_id: e.sps_id.clone(),
            station_ae_title: e.station_ae_title.clone(),
            station_name: e.station_name.clone(),
            start_date: format_da(e.start.date()),
            start_time: format_tm(e.start.time()),
            end_date: e.end.map(|t| format_da(t.date())),
            end_time: e.end.map(|t| format_tm(t.time())),
            modality: e.modality.clone(),
            performing_physician_name: e.performing_physician_name.clone(),
            sps_description: e.sps_description.clone(),
            sps_location: e.sps_location.clone(),
            protocol_code_value: e.protocol_code_value.clone(),
            protocol_coding_scheme: e.protocol_coding_scheme.clone(),
            protocol_code_meaning: e.protocol_code_meaning.clone(),
            status: e.status.as_dicom().to_string(),
            status_set_by: s.meta.status_set_by.as_str().to_string(),
            status_changed_at: s.meta.status_changed_at.to_string(),
            first_seen: s.meta.first_seen.to_string(),
            last_updated: s.meta.last_updated.to_string(),
        }
    }
}

/// A manual entry to create or replace. Identifiers left out are derived from the record
/// id like those of every other source.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManualEntryInput {
    /// Record id (letters, digits, `-`, `_`, `.`; 1–64); generated when left out on create.
    pub record_id: Option<String>,
    /// Patient ID (required).
    pub patient_id: String,
    /// Patient's Name, DICOM PN (`Family^Given`).
    pub patient_name: Option<String>,
    /// Patient's Birth Date, DA (`YYYYMMDD`).
    pub patient_birth_date: Option<String>,
    /// Patient's Sex: M, F or O.
    pub patient_sex: Option<String>,
    /// Patient's Weight in kg.
    pub patient_weight_kg: Option<f64>,
    /// Study Instance UID; derived from the record id when left out.
    pub study_instance_uid: Option<String>,
    /// Accession Number; derived from the record id when left out.
    pub accession_number: Option<String>,
    /// Study Description.
    pub study_description: Option<String>,
    /// Referring Physician's Name (PN).
    pub referring_physician_name: Option<String>,
    /// Requested Procedure ID; derived when left out.
    pub requested_procedure_id: Option<String>,
    /// Requested Procedure Description.
    pub requested_procedure_description: Option<String>,
    /// Scheduled Procedure Step ID; derived when left out.
    pub sps_id: Option<String>,
    /// Scheduled Station AE Title (the console that should see it).
    pub station_ae_title: Option<String>,
    /// Scheduled Station Name.
    pub station_name: Option<String>,
    /// Scheduled start date, DA (`YYYYMMDD`, required).
    pub start_date: String,
    /// Scheduled start time, TM (`HHMM` or `HHMMSS`, required).
    pub start_time: String,
    /// Scheduled end date, DA.
    pub end_date: Option<String>,
    /// Scheduled end time, TM.
    pub end_time: Option<String>,
    /// Modality (e.g. MR).
    pub modality: Option<String>,
    /// Scheduled Performing Physician's Name (PN).
    pub performing_physician_name: Option<String>,
    /// Scheduled Procedure Step Description.
    pub sps_description: Option<String>,
    /// Scheduled Procedure Step Location.
    pub sps_location: Option<String>,
    /// The protocol the console should run (Scheduled Protocol Code Sequence Code Value,
    /// up to 64 characters; past 16 it is sent as Long Code Value).
    pub protocol_code_value: Option<String>,
    /// The protocol code's Coding Scheme Designator; `99MWLBRIDGE` when left out.
    pub protocol_coding_scheme: Option<String>,
    /// The protocol code's Code Meaning; the code value when left out.
    pub protocol_code_meaning: Option<String>,
    /// Status; SCHEDULED when left out.
    pub status: Option<String>,
}

/// A field that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct FieldProblem {
    /// The field's name in the request.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

/// An error answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// The fields at fault, when the request's values were refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldProblem>,
}

fn valid_record_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn blank_to_none(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

impl ManualEntryInput {
    /// The entry this input describes, or every problem with it (by field name).
    pub(crate) fn to_entry(&self, record_id: &str) -> Result<WorklistEntry, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let mut problem = |field: &str, why: String| {
            problems.push(FieldProblem {
                field: field.to_string(),
                problem: why,
            })
        };
        if !valid_record_id(record_id) {
            problem(
                "record_id",
                "use 1 to 64 letters, digits, '-', '_' or '.'".into(),
            );
        }
        if self.patient_id.trim().is_empty() {
            problem("patient_id", "required".into());
        }
        let date = |field: &str, v: &str, problem: &mut dyn FnMut(&str, String)| {
            let parsed = (v.len() == 8).then(|| parse_da(v)).flatten();
            if parsed.is_none() {
                problem(field, format!("{v:?} is not a DICOM date (YYYYMMDD)"));
            }
            parsed
        };
        let time = |field: &str, v: &str, problem: &mut dyn FnMut(&str, String)| {
            let ok_form = matches!(v.len(), 4 | 6) && v.bytes().all(|b| b.is_ascii_digit());
            let parsed = ok_form.then(|| parse_tm(v)).flatten();
            if parsed.is_none() {
                problem(field, format!("{v:?} is not a DICOM time (HHMM or HHMMSS)"));
            }
            parsed
        };
        let start_date = date("start_date", self.start_date.trim(), &mut problem);
        let start_time = time("start_time", self.start_time.trim(), &mut problem);
        let birth = blank_to_none(&self.patient_birth_date)
            .and_then(|v| date("patient_birth_date", &v, &mut problem));
        let end_date =
            blank_to_none(&self.end_date).and_then(|v| date("end_date", &v, &mut problem));
        let end_time =
            blank_to_none(&self.end_time).and_then(|v| time("end_time", &v, &mut problem));
        let end_given = (
            blank_to_none(&self.end_date).is_some(),
            blank_to_none(&self.end_time).is_some(),
        );
        if end_given.0 != end_given.1 {
            problem(
                "end_time",
                "give both end_date and end_time, or neither".into(),
            );
        }
        let status = match blank_to_none(&self.status) {
            None => Some(StepStatus::Scheduled),
            Some(s) => match s.to_ascii_uppercase().parse::<StepStatus>() {
                Ok(st) => Some(st),
                Err(_) => {
                    problem(
                        "status",
                        format!("{s:?} is not SCHEDULED, STARTED, COMPLETED or DISCONTINUED"),
                    );
                    None
                }
            },
        };
        if let Some(w) = self.patient_weight_kg
            && !(w.is_finite() && w > 0.0 && w < 1000.0)
        {
            problem("patient_weight_kg", format!("{w} is not a weight in kg"));
        }
        let (Some(start_date), Some(start_time), Some(status)) = (start_date, start_time, status)
        else {
            return Err(problems);
        };
        let mut e = WorklistEntry::new(
            MANUAL_SOURCE,
            record_id,
            self.patient_id.trim(),
            start_date.to_datetime(start_time),
        );
        e.patient_name = blank_to_none(&self.patient_name);
        e.patient_birth_date = birth;
        e.patient_sex = blank_to_none(&self.patient_sex);
        e.patient_weight_kg = self.patient_weight_kg;
        if let Some(v) = blank_to_none(&self.study_instance_uid) {
            e.study_instance_uid = v;
        }
        if let Some(v) = blank_to_none(&self.accession_number) {
            e.accession_number = v;
        }
        if let Some(v) = blank_to_none(&self.requested_procedure_id) {
            e.requested_procedure_id = v;
        }
        if let Some(v) = blank_to_none(&self.sps_id) {
            e.sps_id = v;
        }
        e.study_description = blank_to_none(&self.study_description);
        e.referring_physician_name = blank_to_none(&self.referring_physician_name);
        e.requested_procedure_description = blank_to_none(&self.requested_procedure_description);
        e.station_ae_title = blank_to_none(&self.station_ae_title);
        e.station_name = blank_to_none(&self.station_name);
        e.end = end_date.zip(end_time).map(|(d, t)| d.to_datetime(t));
        e.modality = blank_to_none(&self.modality);
        e.performing_physician_name = blank_to_none(&self.performing_physician_name);
        e.sps_description = blank_to_none(&self.sps_description);
        e.sps_location = blank_to_none(&self.sps_location);
        self.protocol(&mut e);
        e.status = status;
        // The DICOM value rules every stored entry obeys (PN, AE, UID, lengths...).
        for (field, why) in e.problems() {
            problem(api_field(field), why);
        }
        if problems.is_empty() {
            Ok(e)
        } else {
            Err(problems)
        }
    }
}

impl ManualEntryInput {
    /// Sets the protocol code: a code value with its scheme (the default when left out)
    /// and meaning (the code value when left out). A scheme or meaning without a code
    /// value is kept, for the model's check to name.
    fn protocol(&self, e: &mut WorklistEntry) {
        let scheme = blank_to_none(&self.protocol_coding_scheme);
        let meaning = blank_to_none(&self.protocol_code_meaning);
        match blank_to_none(&self.protocol_code_value) {
            Some(code) => {
                e.set_protocol(&code, scheme.as_deref().unwrap_or_default());
                if meaning.is_some() {
                    e.protocol_code_meaning = meaning;
                }
            }
            None => {
                e.protocol_coding_scheme = scheme;
                e.protocol_code_meaning = meaning;
            }
        }
    }
}

/// The request's name of a store field.
fn api_field(store_field: &str) -> &str {
    match store_field {
        "source_record_id" => "record_id",
        "start" => "start_date",
        "end" => "end_date",
        other => other,
    }
}

/// A status override.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusInput {
    /// SCHEDULED, STARTED, COMPLETED or DISCONTINUED.
    pub status: String,
}

/// A sync run as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct SyncRunView {
    /// Source name.
    pub source: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339).
    pub finished_at: String,
    /// `success` or `failed`.
    pub outcome: String,
    /// Bookings fetched.
    pub fetched: u64,
    /// Entries inserted.
    pub inserted: u64,
    /// Entries updated.
    pub updated: u64,
    /// Entries unchanged.
    pub unchanged: u64,
    /// Entries discontinued.
    pub discontinued: u64,
    /// Entries deleted.
    pub deleted: u64,
    /// Entries rejected (invalid values).
    pub rejected: u64,
    /// Why the run failed.
    pub error: Option<String>,
}

impl From<&SyncRun> for SyncRunView {
    fn from(r: &SyncRun) -> Self {
        SyncRunView {
            source: r.source.clone(),
            started_at: r.started_at.to_string(),
            finished_at: r.finished_at.to_string(),
            outcome: r.outcome.as_str().to_string(),
            fetched: r.counts.fetched,
            inserted: r.counts.inserted,
            updated: r.counts.updated,
            unchanged: r.counts.unchanged,
            discontinued: r.counts.discontinued,
            deleted: r.counts.deleted,
            rejected: r.counts.rejected,
            error: r.error.clone(),
        }
    }
}

/// A configured source and its newest run.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct SourceView {
    /// Source name.
    pub name: String,
    /// Sync interval in seconds.
    pub interval_seconds: u64,
    /// Always true: only enabled sources are listed (kept for the API's clients).
    pub enabled: bool,
    /// Its newest sync run.
    pub last_run: Option<SyncRunView>,
}

/// Filters of `GET /api/v1/worklist`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorklistQuery {
    /// One day: `today`, `tomorrow` or `YYYYMMDD` (default: every day).
    pub date: Option<String>,
    /// First day of a range (`YYYYMMDD`, inclusive).
    pub from: Option<String>,
    /// Last day of a range (`YYYYMMDD`, inclusive).
    pub to: Option<String>,
    /// Scheduled Station AE Title, exact.
    pub station: Option<String>,
    /// Modality, exact.
    pub modality: Option<String>,
    /// Status (comma-separated for several).
    pub status: Option<String>,
    /// Source name, exact (`manual` for manual entries).
    pub source: Option<String>,
    /// Entries per page: 1 to 5000 (default 500). While more follow, the answer has a
    /// `Link: <...>; rel="next"` header.
    pub limit: Option<usize>,
    /// Where the page starts: copy it from the previous page's `next` link (opaque).
    pub cursor: Option<String>,
}

/// Filters of `GET /api/v1/sync-runs`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SyncRunsQuery {
    /// Only this source.
    pub source: Option<String>,
    /// Runs per page: 1 to 5000 (default 20). While more follow, the answer has a
    /// `Link: <...>; rel="next"` header.
    pub limit: Option<usize>,
    /// Where the page starts: copy it from the previous page's `next` link (opaque).
    pub cursor: Option<String>,
}

/// Paging of `GET /api/v1/sources`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    /// Items per page: 1 to 5000 (default 500). While more follow, the answer has a
    /// `Link: <...>; rel="next"` header.
    pub limit: Option<usize>,
    /// Where the page starts: copy it from the previous page's `next` link (opaque).
    pub cursor: Option<String>,
}

/// Options of `POST /api/v1/sources/{name}/sync`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SyncNowQuery {
    /// Wait for the run and return it (default: return at once with 202).
    pub wait: Option<bool>,
    /// Apply this one cycle even when it would discontinue or delete more than
    /// `store.max_discontinue_fraction` of the source's entries (after checking that the
    /// source really changed that much; default: false).
    pub accept_mass_change: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ManualEntryInput {
        ManualEntryInput {
            patient_id: "PHANTOM".into(),
            start_date: "20261126".into(),
            start_time: "1430".into(),
            ..ManualEntryInput::default()
        }
    }

    #[test]
    fn a_minimal_input_is_an_entry() {
        let e = input().to_entry("walkin-1").expect("valid");
        assert_eq!(e.source, MANUAL_SOURCE);
        assert_eq!(format_tm(e.start.time()), "143000");
        assert_eq!(e.status, StepStatus::Scheduled);
        assert!(e.study_instance_uid.starts_with("2.25."));
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = ManualEntryInput {
            patient_id: " ".into(),
            start_date: "2026-11-26".into(),
            start_time: "25:00".into(),
            patient_birth_date: Some("19991332".into()),
            status: Some("DONE".into()),
            ..input()
        };
        let problems = bad.to_entry("bad id!").expect_err("invalid");
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "record_id",
                "patient_id",
                "start_date",
                "start_time",
                "patient_birth_date",
                "status"
            ]
        );
        let dicom = ManualEntryInput {
            station_ae_title: Some("A_STATION_TITLE_TOO_LONG".into()),
            study_instance_uid: Some("1.2.abc".into()),
            patient_name: Some("a^b^c^d^e^f".into()),
            ..input()
        };
        let problems = dicom.to_entry("ok").expect_err("invalid");
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        for f in ["station_ae_title", "study_instance_uid", "patient_name"] {
            assert!(fields.contains(&f), "{f} not in {fields:?}");
        }
    }

    #[test]
    fn a_protocol_code_is_taken_and_checked() {
        let with = ManualEntryInput {
            protocol_code_value: Some(" PHANTOM_QA ".into()),
            ..input()
        };
        let e = with.to_entry("qa-1").expect("valid");
        assert_eq!(e.protocol_code_value.as_deref(), Some("PHANTOM_QA"));
        assert_eq!(e.protocol_coding_scheme.as_deref(), Some("99MWLBRIDGE"));
        assert_eq!(e.protocol_code_meaning.as_deref(), Some("PHANTOM_QA"));
        let view = EntryView::from(&StoredEntry {
            entry: e,
            meta: worklist_store::EntryMeta {
                row_id: 1,
                first_seen: jiff::Timestamp::UNIX_EPOCH,
                last_updated: jiff::Timestamp::UNIX_EPOCH,
                status_changed_at: jiff::Timestamp::UNIX_EPOCH,
                status_set_by: worklist_store::StatusSetBy::Admin,
            },
        });
        assert_eq!(view.protocol_coding_scheme.as_deref(), Some("99MWLBRIDGE"));

        let bad = ManualEntryInput {
            protocol_code_value: Some("P".repeat(65)),
            protocol_coding_scheme: Some("A_SCHEME_TOO_LONG".into()),
            ..input()
        };
        let problems = bad.to_entry("qa-2").expect_err("invalid");
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        // The meaning defaults to the (too long) code value.
        assert_eq!(
            fields,
            [
                "protocol_code_value",
                "protocol_coding_scheme",
                "protocol_code_meaning"
            ]
        );
        let orphan = ManualEntryInput {
            protocol_code_meaning: Some("Phantom".into()),
            ..input()
        };
        let problems = orphan.to_entry("qa-3").expect_err("invalid");
        assert_eq!(problems[0].field, "protocol_code_value");
    }
}
