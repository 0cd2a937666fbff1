//! MWL query parsing, matching and responses: the pure part of the Modality Worklist
//! C-FIND service (PS3.4 C.2.2.2 and Annex K), with no I/O.
//!
//! The DIMSE layer decodes a C-FIND identifier into an [`InMemDicomObject`] (text is
//! decoded with the identifier's own Specific Character Set by dicom-rs while reading:
//! its parser switches character set when it meets (0008,0005)), then:
//!
//! 1. [`MwlQuery::parse`] — an error becomes status A900 with OffendingElement;
//! 2. [`MwlQuery::candidate_filter`] narrows the store's listing on indexed columns;
//! 3. [`MwlQuery::matches`] decides each candidate exactly;
//! 4. [`MwlQuery::response`] builds each pending identifier (FF01 instead of FF00 when
//!    [`MwlQuery::has_unsupported_keys`]).
//!
//! # Keys
//!
//! Matching keys are the attributes the store holds (see `fields.rs`): at the top level
//! PatientName, PatientID, PatientBirthDate, PatientSex, PatientWeight, AccessionNumber,
//! ReferringPhysicianName, StudyInstanceUID, StudyDescription, RequestedProcedureID and
//! RequestedProcedureDescription; inside the one Scheduled Procedure Step Sequence item
//! ScheduledStationAETitle, SPS Start/End Date and Time, Modality,
//! ScheduledPerformingPhysicianName, SPS Description, ScheduledStationName, SPS Location,
//! SPS ID and SPS Status, and the Scheduled Protocol Code Sequence with, in its one item,
//! CodeValue, CodingSchemeDesignator, CodeMeaning and LongCodeValue. Any other key
//! (OtherPatientIDs, MedicalAlerts, ReferencedStudySequence, a step key at the top level, ...)
//! is returned zero-length ("no value") and matches universally when it is empty or `*`;
//! with another value it is *unsupported*: ignored for matching and reported through
//! [`MwlQuery::unsupported_keys`] (status FF01). Private keys are unsupported when they
//! carry a value and are never returned. Group lengths (gggg,0000) and private creators
//! (gggg,0010-00FF of an odd group) are no keys, at any level. A Specific Character Set
//! with a term neither we nor dicom-rs know is also reported as unsupported, since text
//! keys may then have been misread; known terms are not, even of sets we cannot write
//! (`\ISO 2022 IR 87`).
//!
//! # Character sets
//!
//! The query's Specific Character Set picks the set its responses prefer
//! ([`MwlQuery::response_charset`]; the rules are in `charset.rs`): the set it names when we
//! can write it (also an ISO 2022 form naming one such set besides ASCII), `ISO_IR 192` when
//! it names one we cannot, the configured set when it names none. Each response falls back
//! to `ISO_IR 192` on its own when one of its values does not fit. Text dicom-rs read with
//! the wrong set (an ISO 2022 form, `ISO_IR 148`, which it lacks) is read again before
//! matching.
//!
//! # VRs
//!
//! A key is read by its dictionary VR whatever VR it was sent with, when its value can be
//! read so: text VRs for text VRs (a PN sent as LO, a DA sent as DT), a binary number (FD,
//! FL, US, UL, SS, SL, SV, UV) for a DS or IS key, and UN, whose bytes are decoded as the
//! dictionary VR's text, or as items in Implicit VR Little Endian for a sequence. A
//! zero-length key is universal whatever its VR. Keys we only return are returned with
//! their dictionary VR.
//!
//! # Matching
//!
//! - **Universal**: an empty value, or `*` alone, matches every entry, also one without a
//!   value. Any other value never matches an entry that has no value for the key.
//! - **Single value**: exact, ignoring padding spaces around values; case-sensitive for
//!   every VR but PN.
//! - **Wildcards** `*` (any run) and `?` (exactly one *character*, so `H?bert` matches
//!   `Hébert`) on AE, CS, LO, SH and PN keys. Not on UI, DA, TM, DS (an error, A900).
//! - **Lists** `A\B` on text, UID and DS keys match when any element matches; each
//!   element of a text list may carry wildcards.
//! - **Person names** match case-insensitively (Unicode lower-casing, character by
//!   character). Values are normalized first (components trimmed, trailing empty
//!   components dropped: `DOE^JOHN^^^` is `DOE^JOHN`; `^^^^` is universal). A query
//!   matches a name when it matches the whole name, or:
//!   - without `^` (`DOE`, `DO*`): when it matches the family-name component, so `DOE`
//!     finds `DOE^JOHN`;
//!   - with `^` (`DOE^J*`, `^JOHN`): component by component, where an empty or absent
//!     query component matches anything, so `DOE^JOHN` also finds `DOE^JOHN^Q`.
//!
//!   A query without `=` is tried on each component group of the name (alphabetic,
//!   ideographic, phonetic); one with `=` is compared whole. Names are not
//!   Unicode-normalized (a decomposed `é` differs from a precomposed one).
//! - **Ranges** on DA and TM: `a-b`, `-b`, `a-`, inclusive. Dates are `YYYYMMDD` (the
//!   ACR-NEMA `YYYY.MM.DD` is accepted). Times are `HH`, `HHMM`, `HHMMSS` or
//!   `HHMMSS.F…` (and `HH:MM[:SS]`); a time names the whole span of its precision:
//!   `1000` alone matches 10:00:00 through 10:00:59, a lower end starts at the start of its
//!   span, an upper end stops at the end of its span (`-1159` includes 11:59:59). This
//!   differs from DCMTK, which compares zero-padded strings. A time range alone whose
//!   lower end is after its upper end (`2200-0200`) wraps around midnight.
//! - **Combined date-time**: a date key and its time key (SPS Start Date + Start Time,
//!   and End Date + End Time) are one range from the first date at the lower time to the
//!   last date at the upper time (PS3.4 C.2.2.2.5): `20261126-20261127` + `0800-1200` is
//!   26 Nov 08:00 to 27 Nov 12:00, so `20261126-20261127` + `2200-0200` crosses midnight;
//!   one date + `0800-1200` is that morning; a date range + one time `1000` runs from the
//!   first date 10:00:00 to the last date 10:00:59; a missing time end is 00:00 / end of
//!   day; an open date end stays open (its time is then irrelevant). A single date with a
//!   reversed time range matches nothing. A date alone is whole days; a time alone is
//!   that time of day on any date. Several values (`\`) in a DA or TM key are an error.
//! - **Status**: a ScheduledProcedureStepStatus with a value (`SCHEDULED\STARTED`,
//!   `COMPLETED`, wildcards) filters on the step's status; without one (absent, empty,
//!   or `*`), only steps [`offered_by_default`](worklist_store::StepStatus::offered_by_default)
//!   (SCHEDULED, STARTED) are offered, also when the query has no step sequence at all.
//! - **Sequence**: the Scheduled Procedure Step Sequence holds one item; an item with no
//!   keys, or a sequence with no items, asks for every step attribute (the Scheduled
//!   Protocol Code Sequence included). Two or more items are an error (A900, offending
//!   (0040,0100)).
//! - **Protocol code** (PS3.4 C.2.2.2.6): the Scheduled Protocol Code Sequence in the step
//!   item holds at most one item (two or more: A900, offending (0040,0100), (0040,0008)).
//!   Its keys match the entry's protocol code with the text rules above (a Long Code Value
//!   key, and a Code Value key, match the whole code); an entry without a protocol does not
//!   match a key with a value. The response holds one item with the keys asked (Code
//!   Value, Coding Scheme Designator and Code Meaning for an empty item or a sequence with
//!   no item), or no item when the entry has no protocol. A code longer than SH's 16
//!   characters is sent as Long Code Value (0008,0119, UC) with Code Value zero-length
//!   (PS3.3 8.8), Long Code Value added when only Code Value was asked.
//!
//! Invalid identifiers (A900): a key of ours sent with a VR its value cannot be read as (a
//! name as US, a date as FD, a number as OB), a value that is not a date, time, date/time range, UID or number where one is
//! needed, several SPS items, a sequence key that is not a sequence, or a command-group
//! (0000,xxxx) or file-meta (0002,xxxx) element.

mod charset;
mod encode;
mod fields;
mod matching;
mod parse;
#[cfg(test)]
mod protocol_tests;
mod response;
#[cfg(test)]
mod tests;

use dicom_core::{Tag, VR};
use dicom_object::InMemDicomObject;
use worklist_store::{EntryFilter, StepStatus, WorklistEntry};

pub use charset::ResponseCharset;

use charset::QueryCharset;

use fields::Field;
use matching::{DateRange, DateTimeMatcher, NumberMatcher, PnMatcher, TextMatcher, UidMatcher};

/// Why an identifier cannot be processed: C-FIND status A900 ("identifier does not
/// match SOP class"), with the offending tags for OffendingElement (0000,0901).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The identifier breaks the MWL information model. For a key inside the Scheduled
    /// Procedure Step Sequence, `offending` holds the sequence tag, then the key's tag.
    #[error("invalid identifier: {reason} (offending {offending:?})")]
    InvalidIdentifier {
        /// The offending elements.
        offending: Vec<Tag>,
        /// What is wrong, for ErrorComment and logs (no patient values).
        reason: String,
    },
}

impl QueryError {
    /// The offending tags, for OffendingElement (0000,0901).
    pub fn offending(&self) -> &[Tag] {
        match self {
            QueryError::InvalidIdentifier { offending, .. } => offending,
        }
    }
}

/// One matching condition on a field of the entry.
#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Text(Field, TextMatcher),
    Name(Field, PnMatcher),
    Uid(Field, UidMatcher),
    Number(Field, NumberMatcher),
    Date(Field, DateRange),
}

impl Condition {
    fn matches(&self, e: &WorklistEntry) -> bool {
        match self {
            Condition::Text(f, m) => m.matches(f.text(e).as_deref()),
            Condition::Name(f, m) => m.matches(f.text(e).as_deref()),
            Condition::Uid(f, m) => f.text(e).is_some_and(|v| m.matches(&v)),
            Condition::Number(Field::PatientWeight, m) => m.matches(e.patient_weight_kg),
            Condition::Date(Field::PatientBirthDate, m) => m.matches(e.patient_birth_date),
            // Only the fields above are built with these kinds.
            Condition::Number(..) | Condition::Date(..) => false,
        }
    }
}

/// What a requested key returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    /// A value the store holds.
    Field(Field),
    /// No value: sent zero-length (an empty sequence for SQ).
    NoValue,
    /// The Scheduled Protocol Code Sequence: one item with the keys of
    /// [`MwlQuery::protocol`] when the entry has a protocol code, else no item.
    Protocol,
}

/// A key the response carries, at its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReturnKey {
    tag: Tag,
    vr: VR,
    kind: KeyKind,
}

/// A parsed MWL C-FIND identifier: its matching conditions and the keys to return.
///
/// See the [module documentation](self) for the matching rules.
#[derive(Debug, Clone, PartialEq)]
pub struct MwlQuery {
    /// Top-level keys to return, in tag order (without Specific Character Set and the
    /// step sequence).
    top: Vec<ReturnKey>,
    /// The step item's keys to return, when the query has the sequence.
    sps: Option<Vec<ReturnKey>>,
    /// The protocol code item's keys to return, when the step item asks for the
    /// Scheduled Protocol Code Sequence.
    protocol: Option<Vec<ReturnKey>>,
    /// Conditions on fields other than status and the date-time pairs.
    conditions: Vec<Condition>,
    /// SPS Start Date + Start Time.
    start: DateTimeMatcher,
    /// SPS End Date + End Time.
    end: DateTimeMatcher,
    /// SPS Status; `None`: the statuses offered by default.
    status: Option<TextMatcher>,
    /// Keys not supported for matching (FF01).
    unsupported: Vec<Tag>,
    /// Every key asked, for logs.
    requested: Vec<Tag>,
    /// The query's Specific Character Set, read.
    charset: QueryCharset,
}

impl MwlQuery {
    /// Parses a C-FIND identifier. Its text must already be decoded (dicom-rs does so when
    /// reading, following the identifier's Specific Character Set).
    pub fn parse(identifier: &InMemDicomObject) -> Result<MwlQuery, QueryError> {
        parse::parse(identifier)
    }

    /// A query that matches every entry offered by default and returns every attribute
    /// we hold (all top-level keys and an empty step item): what a worklist file exported
    /// for another server carries.
    pub fn every_attribute() -> MwlQuery {
        let obj = Self::every_attribute_identifier();
        // Every key here is one of ours with no value: parsing cannot fail.
        parse::parse(&obj).unwrap_or_else(|_| MwlQuery {
            top: Vec::new(),
            sps: None,
            protocol: None,
            conditions: Vec::new(),
            start: DateTimeMatcher::default(),
            end: DateTimeMatcher::default(),
            status: None,
            unsupported: Vec::new(),
            requested: Vec::new(),
            charset: QueryCharset::NONE,
        })
    }

    /// The identifier of [`every_attribute`](Self::every_attribute): every top-level key
    /// we hold, zero-length, and a Scheduled Procedure Step Sequence with one empty item
    /// (every step attribute). No Specific Character Set: the text is already decoded.
    pub fn every_attribute_identifier() -> InMemDicomObject {
        use dicom_core::{DataElement, PrimitiveValue};
        let mut obj = InMemDicomObject::new_empty();
        for f in fields::TOP_FIELDS {
            obj.put(DataElement::new(f.tag(), f.vr(), PrimitiveValue::Empty));
        }
        obj.put(DataElement::new(
            dicom_dictionary_std::tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            dicom_core::value::DataSetSequence::from(vec![InMemDicomObject::new_empty()]),
        ));
        obj
    }

    /// A Scheduled Procedure Step Sequence item asking, key by key, for what an empty
    /// item asks: every step attribute zero-length, and the Scheduled Protocol Code
    /// Sequence with one empty item. Unlike an empty item, it can take matching keys
    /// beside (a DICOMweb search with `includefield=all` and a step key).
    pub fn every_step_attribute_item() -> InMemDicomObject {
        use dicom_core::{DataElement, PrimitiveValue};
        let mut item = InMemDicomObject::new_empty();
        for f in fields::SPS_FIELDS {
            item.put(DataElement::new(f.tag(), f.vr(), PrimitiveValue::Empty));
        }
        item.put(DataElement::new(
            dicom_dictionary_std::tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE,
            VR::SQ,
            dicom_core::value::DataSetSequence::from(vec![InMemDicomObject::new_empty()]),
        ));
        item
    }

    /// The character set this query's responses prefer: the one its Specific Character
    /// Set names when we can write it (`ISO_IR 100`, `ISO 2022 IR 6\ISO 2022 IR 100`, ...),
    /// `ISO_IR 192` when it names a set we cannot write (`\ISO 2022 IR 87`), and
    /// `configured` when it names none. Each response still falls back to `ISO_IR 192`
    /// when one of its values does not fit (see [`response`](Self::response)).
    pub fn response_charset(&self, configured: ResponseCharset) -> ResponseCharset {
        self.charset.preferred(configured)
    }

    /// Restricts the query to steps scheduled on `station` unless the query itself puts a
    /// condition on the Scheduled Station AE Title: per-console station filtering (a
    /// console that asks for "everything" sees its own station's steps). Returns whether
    /// the restriction was added.
    pub fn restrict_to_station(&mut self, station: &str) -> bool {
        let constrained = self
            .conditions
            .iter()
            .any(|c| matches!(c, Condition::Text(Field::StationAeTitle, _)));
        if constrained || station.trim().is_empty() {
            return false;
        }
        self.conditions.push(Condition::Text(
            Field::StationAeTitle,
            TextMatcher::new(&[station.trim().to_string()]),
        ));
        true
    }

    /// Whether an entry matches every key of the query.
    pub fn matches(&self, entry: &WorklistEntry) -> bool {
        let status_ok = match &self.status {
            None => entry.status.offered_by_default(),
            Some(m) => m.matches(Some(entry.status.as_dicom())),
        };
        status_ok
            && self.start.matches(Some(entry.start))
            && self.end.matches(entry.end)
            && self.conditions.iter().all(|c| c.matches(entry))
    }

    /// A store filter that keeps every entry [`matches`](Self::matches) accepts (and
    /// usually many fewer others). Pushed down: an exact single-valued Scheduled Station
    /// AE Title, Modality and Patient ID; the dates bounding the SPS start date-time range;
    /// the statuses the status key admits; the literal starts of the PatientName values
    /// (`Sim*`, `DOE^J*`, `Doe`; not `*son` nor `^JOHN`), as ranges of the store's folded
    /// patient-name search key ([`worklist_store::pn`]). Everything else is left to
    /// `matches`.
    ///
    /// The store compares these columns exactly, so this relies on stored AE titles,
    /// modalities and patient IDs carrying no leading or trailing spaces.
    pub fn candidate_filter(&self) -> EntryFilter {
        let exact = |field: Field| {
            self.conditions.iter().find_map(|c| match c {
                Condition::Text(f, m) if *f == field => m.exact_single().map(str::to_owned),
                _ => None,
            })
        };
        let (from_date, to_date) = self.start.date_bounds();
        let statuses = self.statuses();
        EntryFilter {
            from_date,
            to_date,
            station_ae_title: exact(Field::StationAeTitle),
            modality: exact(Field::Modality),
            patient_id: exact(Field::PatientId),
            statuses,
            patient_name_prefixes: self.patient_name_prefixes(),
            ..EntryFilter::default()
        }
    }

    /// The statuses the status key admits (those offered by default without one).
    fn statuses(&self) -> Vec<StepStatus> {
        StepStatus::ALL
            .into_iter()
            .filter(|s| match &self.status {
                None => s.offered_by_default(),
                Some(m) => m.matches(Some(s.as_dicom())),
            })
            .collect()
    }

    /// Whether [`candidate_filter`](Self::candidate_filter) keeps exactly the entries
    /// [`matches`](Self::matches) accepts, so that a scan of it need not match again: the
    /// query's only conditions are single exact values of Scheduled Station AE Title,
    /// Modality and Patient ID (each at most once), its SPS start is whole days (no time
    /// key), its SPS end is universal, and its status key admits at least one status (a
    /// filter with no status admits every status).
    ///
    /// Like the filter, this relies on stored station AE titles, modalities and patient
    /// IDs carrying no leading or trailing spaces.
    pub fn candidate_filter_is_exact(&self) -> bool {
        let mut seen: Vec<Field> = Vec::new();
        self.start.time.is_none()
            && self.end.is_universal()
            && !self.statuses().is_empty()
            && self.conditions.iter().all(|c| match c {
                Condition::Text(
                    f @ (Field::StationAeTitle | Field::Modality | Field::PatientId),
                    m,
                ) if m.exact_single().is_some() && !seen.contains(f) => {
                    seen.push(*f);
                    true
                }
                _ => false,
            })
    }

    /// The folded prefixes of the patient-name search key that the PatientName key
    /// admits ([`PnMatcher::name_key_prefixes`]); empty when it admits any name.
    fn patient_name_prefixes(&self) -> Vec<String> {
        self.conditions
            .iter()
            .find_map(|c| match c {
                Condition::Name(Field::PatientName, m) => m.name_key_prefixes(),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Whether some keys were not supported for matching: pending responses then carry
    /// status FF01 instead of FF00.
    pub fn has_unsupported_keys(&self) -> bool {
        !self.unsupported.is_empty()
    }

    /// The keys ignored for matching (a value on a key we do not store, a private key
    /// with a value, a Specific Character Set with an unknown term).
    pub fn unsupported_keys(&self) -> &[Tag] {
        &self.unsupported
    }

    /// Every key the query asked for, for logs: top-level keys, and after the step
    /// sequence tag, the keys of its item. Tags only, never values.
    pub fn requested_keys(&self) -> Vec<Tag> {
        self.requested.clone()
    }

    /// The response identifier for a matching entry: exactly the keys asked, at the level
    /// they were asked (step keys inside a one-item step sequence), zero-length where the
    /// entry has no value, and Specific Character Set (0008,0005) at the top level.
    ///
    /// `charset` is a preference (from [`response_charset`](Self::response_charset)): when
    /// a value of this response cannot be represented in
    /// it (a `Ł` in Latin-1, an `é` in ASCII), the whole response is sent in UTF-8
    /// (`ISO_IR 192`) instead, so that nothing is lost or fails when it is written.
    /// [`charset_used`](Self::charset_used) tells which one was chosen (to log it); the
    /// response's (0008,0005) always names it. dicom-rs cannot write `ISO_IR 148`: a
    /// response in that set is written with [`encode_response`](Self::encode_response),
    /// as the server does.
    pub fn response(&self, entry: &WorklistEntry, charset: ResponseCharset) -> InMemDicomObject {
        response::build(self, entry, charset)
    }

    /// The same response as [`response`](Self::response), written straight into `out` in
    /// Little Endian, Implicit VR or (`explicit`) Explicit VR: what the server sends. Returns
    /// the character set used.
    pub fn encode_response(
        &self,
        entry: &WorklistEntry,
        charset: ResponseCharset,
        explicit: bool,
        out: &mut Vec<u8>,
    ) -> ResponseCharset {
        encode::encode(self, entry, charset, explicit, out)
    }

    /// What [`encode_response`](Self::encode_response) takes from this query: two queries
    /// of equal shapes (with the same `charset` and `explicit`) encode every entry to the
    /// same bytes, whatever their matching keys. C-FIND keeps encoded responses by it.
    pub fn response_shape(&self, charset: ResponseCharset, explicit: bool) -> Vec<u8> {
        encode::shape(self, charset, explicit)
    }

    /// The character set [`response`](Self::response) uses for this entry: `preferred`
    /// when every returned value can be written in it, else [`ResponseCharset::Utf8`].
    pub fn charset_used(
        &self,
        entry: &WorklistEntry,
        preferred: ResponseCharset,
    ) -> ResponseCharset {
        response::charset_for(self, entry, preferred)
    }
}
