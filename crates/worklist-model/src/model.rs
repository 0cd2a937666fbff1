//! The worklist entry: one [`WorklistEntry`] per scheduled procedure step, with the
//! table of its text attributes ([`TEXT_ATTRIBUTES`]) from which its value checks and the
//! store's columns follow. [`StoredEntry`] is an entry with the store's bookkeeping.

use dicom_core::{Tag, VR};
use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use serde::{Deserialize, Serialize};

use crate::identifiers;
use crate::validate::{AE_MAX, CS_MAX, LO_MAX, PN_GROUP_MAX, SH_MAX, UI_MAX, vr_problem};

// The status terms are part of the entry; their old paths (`model::StepStatus`) stay.
pub use crate::status::{StatusSetBy, StepStatus, UnknownTerm};

/// One scheduled procedure step, as a data source describes it.
///
/// Dates and times are the site's local civil time; they become DICOM DA (`YYYYMMDD`) and
/// TM (`HHMMSS`) only at the edges. The identity of an entry is
/// `(source, source_record_id)`, never the patient ID.
///
/// Its text attributes are listed once more, with their DICOM tag, VR and column, in
/// [`TEXT_ATTRIBUTES`]. `Default` is an empty entry (blank identifiers, start at
/// 0000-01-01): a starting point for decoders and [`WorklistEntry::new`], not a valid
/// step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

    /// The protocol the console should run: Code Value of the one item of the Scheduled
    /// Protocol Code Sequence (0040,0008) in the step. Up to 64 characters: the SCP sends
    /// one of at most 16 as Code Value (0008,0100) and a longer one as Long Code Value
    /// (0008,0119), as PS3.3 8.8 asks, so a protocol name is never cut.
    pub protocol_code_value: Option<String>,
    /// Coding Scheme Designator (0008,0102) of the protocol code; sources fill
    /// [`DEFAULT_PROTOCOL_CODING_SCHEME`] (or their configured one) when they have none.
    pub protocol_coding_scheme: Option<String>,
    /// Code Meaning (0008,0104) of the protocol code.
    pub protocol_code_meaning: Option<String>,
}

/// The Coding Scheme Designator of a protocol code whose source names none: a local
/// (private) designator, since PS3.16 8.2 reserves designators starting with `99` for
/// local coding schemes.
pub const DEFAULT_PROTOCOL_CODING_SCHEME: &str = "99MWLBRIDGE";

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
            patient_id: patient_id.into(),
            start,
            status: StepStatus::Scheduled,
            ..WorklistEntry::default()
        }
    }

    /// Checks every value against its DICOM value representation; returns each problem
    /// as `(field, what is wrong)`: the text attributes in [`TEXT_ATTRIBUTES`] order
    /// ([`TextAttribute::problems`]), then the weight and the end. An entry with problems
    /// is not stored.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for attribute in TEXT_ATTRIBUTES {
            if let Some(v) = (attribute.get)(self) {
                out.extend(attribute.problems(v).map(|p| (attribute.column, p)));
            }
        }
        if let Some(w) = self.patient_weight_kg
            && !(w.is_finite() && w > 0.0 && w < 1000.0)
        {
            out.push((
                "patient_weight_kg",
                "weight must be a positive number of kg".into(),
            ));
        }
        if let Some(end) = self.end
            && end < self.start
        {
            out.push(("end", "step ends before it starts".into()));
        }
        let code_part =
            self.protocol_coding_scheme.is_some() || self.protocol_code_meaning.is_some();
        if code_part && self.protocol_code_value.is_none() {
            out.push((
                "protocol_code_value",
                "a protocol code needs a code value".into(),
            ));
        }
        out
    }

    /// Sets the protocol code from a protocol name: the name is both the Code Value and
    /// the Code Meaning (as Pylantir sends it), under `coding_scheme`. A blank name clears
    /// the code; a blank scheme becomes [`DEFAULT_PROTOCOL_CODING_SCHEME`].
    pub fn set_protocol(&mut self, name: &str, coding_scheme: &str) {
        let name = name.trim();
        if name.is_empty() {
            self.protocol_code_value = None;
            self.protocol_coding_scheme = None;
            self.protocol_code_meaning = None;
            return;
        }
        let scheme = match coding_scheme.trim() {
            "" => DEFAULT_PROTOCOL_CODING_SCHEME,
            s => s,
        };
        self.protocol_code_value = Some(name.to_owned());
        self.protocol_coding_scheme = Some(scheme.to_owned());
        self.protocol_code_meaning = Some(name.to_owned());
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

/// Whether a text attribute always has a value, and what a blank one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// May be absent: an `Option<String>` field, a NULL-able column.
    Optional,
    /// Always present: a `String` field, a `NOT NULL` column.
    Required,
    /// Always present and never blank: the problem a blank value is.
    NotBlank(&'static str),
}

/// The values a text attribute admits beyond what its VR allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Any value its VR allows ([`vr_problem`]).
    Vr,
    /// Only these defined terms; any other value is `problem`.
    Terms {
        /// The defined terms.
        terms: &'static [&'static str],
        /// What is wrong with any other value.
        problem: &'static str,
    },
}

/// One text attribute of a [`WorklistEntry`]: a row of [`TEXT_ATTRIBUTES`].
#[derive(Debug, Clone, Copy)]
pub struct TextAttribute {
    /// The column in the store, which is also the field's name in [`WorklistEntry`] (and
    /// in its JSON) and the field [`WorklistEntry::problems`] names.
    pub column: &'static str,
    /// The DICOM tag of the attribute in an MWL identifier (for the protocol code: inside
    /// the item of the Scheduled Protocol Code Sequence).
    pub tag: Tag,
    /// The DICOM keyword of the tag.
    pub keyword: &'static str,
    /// The value representation the attribute is sent with and checked against.
    pub vr: VR,
    /// The longest value allowed, in characters (PN: per component group).
    pub max_chars: usize,
    /// Whether the entry always has a value.
    pub presence: Presence,
    /// Which values are allowed.
    pub allowed: Allowed,
    /// The entry's value (`None`: no value).
    pub get: fn(&WorklistEntry) -> Option<&str>,
    /// Sets the entry's value. `None` leaves a [`Presence::Required`] field empty: only
    /// for decoders that report a missing value themselves.
    pub set: fn(&mut WorklistEntry, Option<String>),
    /// Sets the entry's value to a copy of `v`, reusing the string the entry holds (no
    /// allocation when it is long enough): for a scan that refills one entry from record
    /// to record. `None` as for [`set`](Self::set).
    pub assign: fn(&mut WorklistEntry, Option<&str>),
}

/// `slot` becomes `v`, reusing its string.
fn assign_optional(slot: &mut Option<String>, v: Option<&str>) {
    match (slot.as_mut(), v) {
        (Some(s), Some(v)) => v.clone_into(s),
        (_, v) => *slot = v.map(str::to_owned),
    }
}

/// `slot` becomes `v` (empty for `None`), reusing its string.
fn assign_required(slot: &mut String, v: Option<&str>) {
    v.unwrap_or_default().clone_into(slot);
}

impl TextAttribute {
    /// What is wrong with `v` as this attribute's value: that it is blank (for a
    /// [`Presence::NotBlank`] attribute), then what its VR or defined terms say.
    pub fn problems(&self, v: &str) -> impl Iterator<Item = String> + use<> {
        let blank = match self.presence {
            Presence::NotBlank(problem) if v.trim().is_empty() => Some(problem.to_string()),
            _ => None,
        };
        let value = match self.allowed {
            Allowed::Vr => vr_problem(self.vr, self.max_chars, v),
            Allowed::Terms { terms, problem } => (!terms.contains(&v)).then(|| problem.to_string()),
        };
        blank.into_iter().chain(value)
    }
}

/// The text attributes of a [`WorklistEntry`], in field order: one row per attribute with
/// its column, DICOM tag, keyword, VR, longest value and accessors. The value checks
/// ([`WorklistEntry::problems`]) and the store's entry columns (its SELECT list, row
/// decoding and INSERT/UPDATE binds) iterate it. The identity (`source`,
/// `source_record_id`) and the values that are not text (birth date, weight, start, end,
/// status) are written out by hand where they are used.
///
/// # Adding a text attribute
///
/// What a new attribute (say the protocol code a REDCap source fills) still touches:
///
/// The protocol code (`protocol_*`) was the last one added this way.
///
/// 1. here: the field in [`WorklistEntry`] (with its doc) and its row in this table.
///    [`WorklistEntry::new`], the value checks, the store's column lists, row decoding
///    and binds, reconcile's change detection and the JSON form follow from these two;
/// 2. the store's schema (`worklist-store/src/schema.rs`): a migration
///    `ALTER TABLE worklist_entries ADD COLUMN <column> TEXT` (and an index if consoles
///    query by it). Rows written before it read the column as NULL, so the attribute is
///    [`Presence::Optional`] (or the migration fills every row);
/// 3. the sources that fill it (their field mapping, e.g. calpendo-source's `Target`);
/// 4. until they read this table: the SCP's field list (`mwl-scp` `query/fields.rs`) to
///    match and return it, and the admin API's entry type (`admin-http` `api_types.rs`).
pub static TEXT_ATTRIBUTES: &[TextAttribute] = &[
    TextAttribute {
        column: "patient_name",
        tag: Tag(0x0010, 0x0010),
        keyword: "PatientName",
        vr: VR::PN,
        max_chars: PN_GROUP_MAX,
        presence: Presence::Optional,
        allowed: Allowed::Vr,
        get: |e| e.patient_name.as_deref(),
        set: |e, v| e.patient_name = v,
        assign: |e, v| assign_optional(&mut e.patient_name, v),
    },
    TextAttribute {
        column: "patient_id",
        tag: Tag(0x0010, 0x0020),
        keyword: "PatientID",
        vr: VR::LO,
        max_chars: LO_MAX,
        presence: Presence::NotBlank("patient ID is blank"),
        allowed: Allowed::Vr,
        get: |e| Some(e.patient_id.as_str()),
        set: |e, v| e.patient_id = v.unwrap_or_default(),
        assign: |e, v| assign_required(&mut e.patient_id, v),
    },
    TextAttribute {
        column: "patient_sex",
        tag: Tag(0x0010, 0x0040),
        keyword: "PatientSex",
        vr: VR::CS,
        max_chars: CS_MAX,
        presence: Presence::Optional,
        allowed: Allowed::Terms {
            terms: &["M", "F", "O"],
            problem: "patient sex must be M, F or O",
        },
        get: |e| e.patient_sex.as_deref(),
        set: |e, v| e.patient_sex = v,
        assign: |e, v| assign_optional(&mut e.patient_sex, v),
    },
    TextAttribute {
        column: "study_instance_uid",
        tag: Tag(0x0020, 0x000D),
        keyword: "StudyInstanceUID",
        vr: VR::UI,
        max_chars: UI_MAX,
        presence: Presence::Required,
        allowed: Allowed::Vr,
        get: |e| Some(e.study_instance_uid.as_str()),
        set: |e, v| e.study_instance_uid = v.unwrap_or_default(),
        assign: |e, v| assign_required(&mut e.study_instance_uid, v),
    },
    TextAttribute {
        column: "accession_number",
        tag: Tag(0x0008, 0x0050),
        keyword: "AccessionNumber",
        vr: VR::SH,
        max_chars: SH_MAX,
        presence: Presence::NotBlank("identifier is blank"),
        allowed: Allowed::Vr,
        get: |e| Some(e.accession_number.as_str()),
        set: |e, v| e.accession_number = v.unwrap_or_default(),
        assign: |e, v| assign_required(&mut e.accession_number, v),
    },
    TextAttribute {
        column: "study_description",
        tag: Tag(0x0008, 0x1030),
        keyword: "StudyDescription",
        vr: VR::LO,
        max_chars: LO_MAX,
        presence: Presence::Optional,
        allowed: Allowed::Vr,
        get: |e| e.study_description.as_deref(),
        set: |e, v| e.study_description = v,
        assign: |e, v| assign_optional(&mut e.study_description, v),
    },
    TextAttribute {
        column: "referring_physician_name",
        tag: Tag(0x0008, 0x0090),
        keyword: "ReferringPhysicianName",
        vr: VR::PN,
        max_chars: PN_GROUP_MAX,
        presence: Presence::Optional,
        allowed: Allowed::Vr,
        get: |e| e.referring_physician_name.as_deref(),
        set: |e, v| e.referring_physician_name = v,
        assign: |e, v| assign_optional(&mut e.referring_physician_name, v),
    },
    TextAttribute {
        column: "requested_procedure_id",
        tag: Tag(0x0040, 0x1001),
        keyword: "RequestedProcedureID",
        vr: VR::SH,
        max_chars: SH_MAX,
        presence: Presence::NotBlank("identifier is blank"),
        allowed: Allowed::Vr,
        get: |e| Some(e.requested_procedure_id.as_str()),
        set: |e, v| e.requested_procedure_id = v.unwrap_or_default(),
        assign: |e, v| assign_required(&mut e.requested_procedure_id, v),
    },
    TextAttribute {
        column: "requested_procedure_description",
        tag: Tag(0x0032, 0x1060),
        keyword: "RequestedProcedureDescription",
        vr: VR::LO,
        max_chars: LO_MAX,
        presence: Presence::Optional,
        allowed: Allowed::Vr,
        get: |e| e.requested_procedure_description.as_deref(),
        set: |e, v| e.requested_procedure_description = v,
        assign: |e, v| assign_optional(&mut e.requested_procedure_description, v),
    },
    TextAttribute {
        column: "sps_id",
        tag: Tag(0x0040, 0x0009),
        keyword: "ScheduledProcedureStepID",
        vr: VR::SH,
        max_chars: SH_MAX,
        presence: Presence::NotBlank("identifier is blank"),
        allowed: Allowed::Vr,
        get: |e| Some(e.sps_id.as_str()),
        set: |e, v| e.sps_id = v.unwrap_or_default(),
        assign: |e, v| assign_required(&mut e.sps_id, v),
    },
    TextAttribute {
        column: "station_ae_title",
        tag: Tag(0x0040, 0x0001),
        keyword: "ScheduledStationAETitle",
        vr: VR::AE,
        max_chars: AE_MAX,
        presence: Presence::Optional,
        allowed: Allowed::Vr,
        get: |e| e.station_ae_title.as_deref(),
        set: |e, v| e.station_ae_title = v,
        assign: |e, v| assign_optional(&mut e.station_ae_title, v),
    },
    TextAttribute {
        column: "station_name",
        tag: Tag(0x0040, 0x0010),
        keyword: "ScheduledStationName",
        vr: VR::SH,
        max_chars: SH_MAX,
        presence: Presence::Optional,
        allowed: Allowed::Vr,
        get: |e| e.station_name.as_deref(),
        set: |e, v| e.station_name = v,
        assign: |e, v| assign_optional(&mut e.station_name, v),
    },
    TextAttribute {
        column: "modality",
        tag: Tag(0x0008, 0x0060),
        keyword: "Modality",
        vr: VR::CS,
        max_chars: CS_MAX,
        presence: Presence::Optional,
        allowed: Allowed::Vr,
        get: |e| e.modality.as_deref(),
        set: |e, v| e.modality = v,
        assign: |e, v| assign_optional(&mut e.modality, v),
    },
    TextAttribute {
        column: "performing_physician_name",
        tag: Tag(0x0040, 0x0006),
        keyword: "ScheduledPerformingPhysicianName",
        vr: VR::PN,
        max_chars: PN_GROUP_MAX,
        presence: Presence::Optional,
        allowed: Allowed::Vr,
        get: |e| e.performing_physician_name.as_deref(),
        set: |e, v| e.performing_physician_name = v,
        assign: |e, v| assign_optional(&mut e.performing_physician_name, v),
    },
    TextAttribute {
        column: "sps_description",
        tag: Tag(0x0040, 0x0007),
        keyword: "ScheduledProcedureStepDescription",
        vr: VR::LO,
        max_chars: LO_MAX,
        presence: Presence::Optional,
        allowed: Allowed::Vr,
        get: |e| e.sps_description.as_deref(),
        set: |e, v| e.sps_description = v,
        assign: |e, v| assign_optional(&mut e.sps_description, v),
    },
    TextAttribute {
        column: "sps_location",
        tag: Tag(0x0040, 0x0011),
        keyword: "ScheduledProcedureStepLocation",
        vr: VR::SH,
        // DICOM's SH allows 16; the store has accepted up to 64 (LO's limit) since its
        // first version, and the SCP sends what it has. Kept, to change no behaviour.
        max_chars: LO_MAX,
        presence: Presence::Optional,
        allowed: Allowed::Vr,
        get: |e| e.sps_location.as_deref(),
        set: |e, v| e.sps_location = v,
        assign: |e, v| assign_optional(&mut e.sps_location, v),
    },
    TextAttribute {
        column: "protocol_code_value",
        tag: Tag(0x0008, 0x0100),
        keyword: "CodeValue",
        vr: VR::SH,
        // Up to LO's 64: a longer value than SH's 16 is sent as Long Code Value (UC).
        max_chars: LO_MAX,
        presence: Presence::Optional,
        allowed: Allowed::Vr,
        get: |e| e.protocol_code_value.as_deref(),
        set: |e, v| e.protocol_code_value = v,
        assign: |e, v| assign_optional(&mut e.protocol_code_value, v),
    },
    TextAttribute {
        column: "protocol_coding_scheme",
        tag: Tag(0x0008, 0x0102),
        keyword: "CodingSchemeDesignator",
        vr: VR::SH,
        max_chars: SH_MAX,
        presence: Presence::Optional,
        allowed: Allowed::Vr,
        get: |e| e.protocol_coding_scheme.as_deref(),
        set: |e, v| e.protocol_coding_scheme = v,
        assign: |e, v| assign_optional(&mut e.protocol_coding_scheme, v),
    },
    TextAttribute {
        column: "protocol_code_meaning",
        tag: Tag(0x0008, 0x0104),
        keyword: "CodeMeaning",
        vr: VR::LO,
        max_chars: LO_MAX,
        presence: Presence::Optional,
        allowed: Allowed::Vr,
        get: |e| e.protocol_code_meaning.as_deref(),
        set: |e, v| e.protocol_code_meaning = v,
        assign: |e, v| assign_optional(&mut e.protocol_code_meaning, v),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn protocol_from_a_name() {
        let mut e = WorklistEntry::new("redcap", "1", "SUB", date(2026, 11, 26).at(9, 0, 0, 0));
        e.set_protocol(" BRAIN_ROUTINE ", "");
        assert_eq!(e.protocol_code_value.as_deref(), Some("BRAIN_ROUTINE"));
        assert_eq!(e.protocol_coding_scheme.as_deref(), Some("99MWLBRIDGE"));
        assert_eq!(e.protocol_code_meaning.as_deref(), Some("BRAIN_ROUTINE"));
        e.set_protocol("P", "GEHC");
        assert_eq!(e.protocol_coding_scheme.as_deref(), Some("GEHC"));
        e.set_protocol(" ", "GEHC");
        assert_eq!(e.protocol_code_value, None);
        assert_eq!(e.protocol_coding_scheme, None);
        e.protocol_code_meaning = Some("meaning".into());
        assert_eq!(
            e.problems(),
            [(
                "protocol_code_value",
                "a protocol code needs a code value".to_string()
            )]
        );
    }

    #[test]
    fn good_entry_has_no_problems() {
        let mut e =
            WorklistEntry::new("calpendo", "1", "SUB001", date(2026, 11, 26).at(9, 0, 0, 0));
        e.patient_name = Some("Doe^John".into());
        e.station_ae_title = Some("MRI_3T".into());
        e.modality = Some("MR".into());
        assert!(e.problems().is_empty(), "{:?}", e.problems());
    }

    #[test]
    fn bad_values_are_named() {
        let mut e = WorklistEntry::new("calpendo", "1", " ", date(2026, 11, 26).at(9, 0, 0, 0));
        e.station_ae_title = Some("A_VERY_LONG_AE_TITLE".into());
        e.modality = Some("mr".into());
        e.accession_number = " 12".into();
        e.study_instance_uid = "1.02.3".into();
        e.end = Some(date(2026, 11, 26).at(8, 0, 0, 0));
        let fields: Vec<_> = e.problems().into_iter().map(|(f, _)| f).collect();
        for f in [
            "patient_id",
            "station_ae_title",
            "modality",
            "study_instance_uid",
            "end",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn problems_come_in_table_order() {
        let mut e = WorklistEntry::new("calpendo", "1", " ", date(2026, 11, 26).at(9, 0, 0, 0));
        e.sps_id = String::new();
        e.patient_sex = Some("X".into());
        e.patient_weight_kg = Some(-1.0);
        e.sps_location = Some("L".repeat(65));
        e.study_description = Some("a\\b".into());
        assert_eq!(
            e.problems(),
            [
                ("patient_id", "patient ID is blank".to_string()),
                (
                    "patient_id",
                    "LO value has leading or trailing spaces".to_string()
                ),
                ("patient_sex", "patient sex must be M, F or O".to_string()),
                (
                    "study_description",
                    "LO value must not contain a backslash".to_string()
                ),
                ("sps_id", "identifier is blank".to_string()),
                (
                    "sps_location",
                    "SH value is 65 characters; DICOM allows at most 64".to_string()
                ),
                (
                    "patient_weight_kg",
                    "weight must be a positive number of kg".to_string()
                ),
            ]
        );
    }

    /// Each row's tag, keyword and VR are the DICOM dictionary's, and its longest value
    /// is its VR's (but for the documented exception).
    #[test]
    fn rows_agree_with_the_dictionary() {
        use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
        let dict = dicom_dictionary_std::StandardDataDictionary;
        for a in TEXT_ATTRIBUTES {
            let entry = dict.by_tag(a.tag).expect("a standard tag");
            assert_eq!(entry.alias(), a.keyword, "{}", a.column);
            assert_eq!(
                entry.vr().relaxed(),
                a.vr,
                "{}: the dictionary's VR",
                a.column
            );
            let vr_max = match a.vr {
                VR::AE | VR::SH | VR::CS => 16,
                VR::LO | VR::UI | VR::PN => 64,
                other => panic!("{}: unexpected VR {other:?}", a.column),
            };
            if !["sps_location", "protocol_code_value"].contains(&a.column) {
                assert_eq!(a.max_chars, vr_max, "{}", a.column);
            }
        }
    }

    /// Each row's accessors reach the field named by its column, and columns are unique.
    #[test]
    fn accessors_reach_the_named_field() {
        let mut columns = std::collections::HashSet::new();
        for a in TEXT_ATTRIBUTES {
            assert!(columns.insert(a.column), "{} twice", a.column);
            let mut e = WorklistEntry::default();
            (a.set)(&mut e, Some("VALUE".into()));
            assert_eq!((a.get)(&e), Some("VALUE"), "{}", a.column);
            let json = serde_json::to_value(&e).expect("json");
            assert_eq!(json[a.column], "VALUE", "{}", a.column);
            let others = TEXT_ATTRIBUTES
                .iter()
                .filter(|o| o.column != a.column)
                .filter(|o| (o.get)(&e) == Some("VALUE"))
                .count();
            assert_eq!(others, 0, "{} sets another field", a.column);
            let optional = a.presence == Presence::Optional;
            (a.set)(&mut e, None);
            assert_eq!((a.get)(&e).is_none(), optional, "{}", a.column);
            // `assign` is `set` with a borrowed value.
            let mut assigned = WorklistEntry::default();
            for v in [Some("VALUE"), Some("V2"), None, Some("LONGER VALUE")] {
                (a.set)(&mut e, v.map(str::to_owned));
                (a.assign)(&mut assigned, v);
                assert_eq!(assigned, e, "{} assigned {v:?}", a.column);
            }
        }
    }

    /// Every `String` and `Option<String>` field but the identity is in the table.
    #[test]
    fn every_text_field_is_in_the_table() {
        let json = serde_json::to_value(WorklistEntry::default()).expect("json");
        let text_fields: Vec<&str> = json
            .as_object()
            .expect("an object")
            .iter()
            .filter(|(_, v)| v.is_string() || v.is_null())
            .map(|(k, _)| k.as_str())
            .filter(|k| !["source", "source_record_id", "status", "start"].contains(k))
            .filter(|k| !["patient_birth_date", "patient_weight_kg", "end"].contains(k))
            .collect();
        let mut table: Vec<&str> = TEXT_ATTRIBUTES.iter().map(|a| a.column).collect();
        let mut text_fields = text_fields;
        text_fields.sort_unstable();
        table.sort_unstable();
        assert_eq!(text_fields, table);
    }
}
