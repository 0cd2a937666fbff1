//! The source-neutral domain model: one [`WorklistEntry`] per scheduled procedure step.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use serde::{Deserialize, Serialize};

use crate::identifiers;

/// Scheduled Procedure Step Status (0040,0020), with the defined terms sent in C-FIND
/// responses.
///
/// MPPS uses its own terms; `IN PROGRESS` maps to [`StepStatus::Started`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StepStatus {
    /// The step is booked and waiting (`SCHEDULED`).
    Scheduled,
    /// The modality has started the step (`STARTED`; MPPS `IN PROGRESS`).
    Started,
    /// The step was performed (`COMPLETED`).
    Completed,
    /// The step was cancelled or abandoned (`DISCONTINUED`).
    Discontinued,
}

impl StepStatus {
    /// Every status, in workflow order.
    pub const ALL: [StepStatus; 4] = [
        StepStatus::Scheduled,
        StepStatus::Started,
        StepStatus::Completed,
        StepStatus::Discontinued,
    ];

    /// The DICOM defined term, as sent in (0040,0020).
    pub fn as_dicom(self) -> &'static str {
        match self {
            StepStatus::Scheduled => "SCHEDULED",
            StepStatus::Started => "STARTED",
            StepStatus::Completed => "COMPLETED",
            StepStatus::Discontinued => "DISCONTINUED",
        }
    }

    /// Maps an MPPS Performed Procedure Step Status (0040,0252) to the step status.
    pub fn from_mpps(term: &str) -> Option<StepStatus> {
        match term.trim() {
            "IN PROGRESS" => Some(StepStatus::Started),
            "COMPLETED" => Some(StepStatus::Completed),
            "DISCONTINUED" => Some(StepStatus::Discontinued),
            _ => None,
        }
    }

    /// Whether consoles see this step in a query that does not ask for a status.
    pub fn offered_by_default(self) -> bool {
        matches!(self, StepStatus::Scheduled | StepStatus::Started)
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_dicom())
    }
}

/// A string that is not a known [`StepStatus`] or [`StatusSetBy`] term.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown term {0:?}")]
pub struct UnknownTerm(pub String);

impl FromStr for StepStatus {
    type Err = UnknownTerm;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        StepStatus::ALL
            .into_iter()
            .find(|st| st.as_dicom().eq_ignore_ascii_case(t))
            .or_else(|| StepStatus::from_mpps(&t.to_ascii_uppercase()))
            .ok_or_else(|| UnknownTerm(s.to_string()))
    }
}

/// Who set an entry's current status. A status not set by a sync is never reset by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusSetBy {
    /// The data source's sync (Calpendo's booking status, or a vanished booking).
    Sync,
    /// A Modality Performed Procedure Step message from a console.
    Mpps,
    /// An administrator's override.
    Admin,
}

impl StatusSetBy {
    /// The stored name: `sync`, `mpps` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusSetBy::Sync => "sync",
            StatusSetBy::Mpps => "mpps",
            StatusSetBy::Admin => "admin",
        }
    }

    /// Whether a sync may change a status set this way.
    pub fn sync_may_change(self) -> bool {
        self == StatusSetBy::Sync
    }
}

impl fmt::Display for StatusSetBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StatusSetBy {
    type Err = UnknownTerm;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sync" => Ok(StatusSetBy::Sync),
            "mpps" => Ok(StatusSetBy::Mpps),
            "admin" => Ok(StatusSetBy::Admin),
            other => Err(UnknownTerm(other.to_string())),
        }
    }
}

/// One scheduled procedure step, as a data source describes it.
///
/// Dates and times are the site's local civil time; they become DICOM DA (`YYYYMMDD`) and
/// TM (`HHMMSS`) only at the edges. The identity of an entry is
/// `(source, source_record_id)`, never the patient ID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorklistEntry {
    /// Name of the data source that produced this entry (e.g. `calpendo`).
    pub source: String,
    /// The record's identifier in its source (a Calpendo booking id).
    pub source_record_id: String,

    /// Patient's Name (0010,0010), DICOM PN (`Family^Given`).
    pub patient_name: Option<String>,
    /// Patient ID (0010,0020): the subject ID.
    pub patient_id: String,
    /// Patient's Birth Date (0010,0030).
    pub patient_birth_date: Option<Date>,
    /// Patient's Sex (0010,0040): `M`, `F` or `O`.
    pub patient_sex: Option<String>,
    /// Patient's Weight (0010,1030) in kilograms.
    pub patient_weight_kg: Option<f64>,

    /// Study Instance UID (0020,000D); stable, derived from the identity by default.
    pub study_instance_uid: String,
    /// Accession Number (0008,0050); the record id by default.
    pub accession_number: String,
    /// Study Description (0008,1030).
    pub study_description: Option<String>,
    /// Referring Physician's Name (0008,0090), PN.
    pub referring_physician_name: Option<String>,
    /// Requested Procedure ID (0040,1001); the record id by default.
    pub requested_procedure_id: String,
    /// Requested Procedure Description (0032,1060).
    pub requested_procedure_description: Option<String>,

    /// Scheduled Procedure Step ID (0040,0009); the record id by default.
    pub sps_id: String,
    /// Scheduled Station AE Title (0040,0001).
    pub station_ae_title: Option<String>,
    /// Scheduled Station Name (0040,0010).
    pub station_name: Option<String>,
    /// Scheduled Procedure Step Start Date (0040,0002) and Time (0040,0003), local.
    pub start: DateTime,
    /// Scheduled Procedure Step End Date (0040,0004) and Time (0040,0005), local.
    pub end: Option<DateTime>,
    /// Modality (0008,0060).
    pub modality: Option<String>,
    /// Scheduled Performing Physician's Name (0040,0006), PN (the scan operator).
    pub performing_physician_name: Option<String>,
    /// Scheduled Procedure Step Description (0040,0007).
    pub sps_description: Option<String>,
    /// Scheduled Procedure Step Location (0040,0011).
    pub sps_location: Option<String>,
    /// Scheduled Procedure Step Status (0040,0020).
    pub status: StepStatus,
}

impl WorklistEntry {
    /// A new scheduled entry with the identifiers consoles require already filled:
    /// a stable StudyInstanceUID derived from `(source, record id)`, and the record id as
    /// AccessionNumber, RequestedProcedureID and ScheduledProcedureStepID (shortened to a
    /// stable 16-character form when it is longer than DICOM SH allows).
    pub fn new(
        source: impl Into<String>,
        source_record_id: impl Into<String>,
        patient_id: impl Into<String>,
        start: DateTime,
    ) -> WorklistEntry {
        let source = source.into();
        let source_record_id = source_record_id.into();
        let short = identifiers::short_id(&source, &source_record_id);
        WorklistEntry {
            study_instance_uid: identifiers::study_instance_uid(&source, &source_record_id),
            accession_number: short.clone(),
            requested_procedure_id: short.clone(),
            sps_id: short,
            source,
            source_record_id,
            patient_name: None,
            patient_id: patient_id.into(),
            patient_birth_date: None,
            patient_sex: None,
            patient_weight_kg: None,
            study_description: None,
            referring_physician_name: None,
            requested_procedure_description: None,
            station_ae_title: None,
            station_name: None,
            start,
            end: None,
            modality: None,
            performing_physician_name: None,
            sps_description: None,
            sps_location: None,
            status: StepStatus::Scheduled,
        }
    }

    /// Checks every value against its DICOM value representation; returns each problem
    /// as `(field, what is wrong)`. An entry with problems is not stored.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        crate::validate::entry_problems(self)
    }

    /// The description consoles show for the step: the SPS description, else the
    /// requested procedure description, else the study description.
    pub fn display_description(&self) -> Option<&str> {
        self.sps_description
            .as_deref()
            .or(self.requested_procedure_description.as_deref())
            .or(self.study_description.as_deref())
    }
}

/// Bookkeeping the store keeps beside each entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryMeta {
    /// The row id in the store.
    pub row_id: i64,
    /// When the entry was first stored.
    pub first_seen: Timestamp,
    /// When any stored value last changed.
    pub last_updated: Timestamp,
    /// When the status last changed.
    pub status_changed_at: Timestamp,
    /// Who set the current status.
    pub status_set_by: StatusSetBy,
}

/// An entry as the store holds it: the source's values and the store's bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEntry {
    /// What the source said (with the status as it is now).
    #[serde(flatten)]
    pub entry: WorklistEntry,
    /// The store's bookkeeping.
    pub meta: EntryMeta,
}
