//! The named queries of the load generator.
//!
//! Every query asks for the keys a console usually asks for (patient, study, requested
//! procedure, and one Scheduled Procedure Step item with station, date, time, modality,
//! performing physician, description, step ID, station name, status); they differ in
//! the keys that carry a value:
//!
//! | name | matching keys |
//! |---|---|
//! | `busy-station` | SPS start date = the day, ScheduledStationAETitle = the busy station, Modality = the modality |
//! | `today-station-modality` | SPS start date = the day, ScheduledStationAETitle = the station, Modality = the modality |
//! | `patient-id` | PatientID = a random existing subject's ID |
//! | `universal` | none: every item |
//! | `date-range` | SPS start date = a range of `range_days` days from the day |
//! | `name-wildcard` | PatientName = a wildcard pattern (`Sim*`) |
//!
//! `busy-station` is `today-station-modality` on the station the benchmark's data fills
//! with ~100 steps today (`calpendo-fake --busy-today`): the worst case of a console's
//! default query, whatever the worklist's size.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use jiff::civil::Date;

use crate::client::encode;

/// A named query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueryKind {
    /// Today's items of the busiest station and the modality.
    BusyStation,
    /// Today's items of one station and modality: a console's own worklist.
    TodayStationModality,
    /// One subject by exact PatientID.
    PatientId,
    /// Every item.
    Universal,
    /// A range of days.
    DateRange,
    /// PatientName with a wildcard.
    NameWildcard,
}

impl QueryKind {
    /// Every query, in display order.
    pub const ALL: [QueryKind; 6] = [
        QueryKind::BusyStation,
        QueryKind::TodayStationModality,
        QueryKind::PatientId,
        QueryKind::Universal,
        QueryKind::DateRange,
        QueryKind::NameWildcard,
    ];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            QueryKind::BusyStation => "busy-station",
            QueryKind::TodayStationModality => "today-station-modality",
            QueryKind::PatientId => "patient-id",
            QueryKind::Universal => "universal",
            QueryKind::DateRange => "date-range",
            QueryKind::NameWildcard => "name-wildcard",
        }
    }

    /// The query of this name.
    pub fn parse(name: &str) -> Result<QueryKind, UnknownQuery> {
        QueryKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| UnknownQuery(name.to_string()))
    }
}

/// A query name that is none of [`QueryKind::ALL`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown query {0:?}; known: {names}", names = known_names())]
pub struct UnknownQuery(pub String);

fn known_names() -> String {
    let names: Vec<&str> = QueryKind::ALL.iter().map(|k| k.name()).collect();
    names.join(", ")
}

/// The values the queries match on.
#[derive(Debug, Clone)]
pub struct QueryParams {
    /// "Today" (the site's local date).
    pub day: Date,
    /// ScheduledStationAETitle of `today-station-modality`.
    pub station: String,
    /// ScheduledStationAETitle of `busy-station`.
    pub busy_station: String,
    /// Modality of `today-station-modality` and `busy-station`.
    pub modality: String,
    /// Length of the `date-range` range, in days (at least 1).
    pub range_days: u32,
    /// PatientName pattern of `name-wildcard`.
    pub name_pattern: String,
    /// PatientIDs that `patient-id` picks from.
    pub patient_ids: Vec<String>,
}

/// A small deterministic random generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// `YYYYMMDD`.
pub fn format_da(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

fn element(tag: Tag, vr: VR, value: &str) -> DataElement<InMemDicomObject> {
    if value.is_empty() {
        DataElement::new(tag, vr, PrimitiveValue::Empty)
    } else {
        DataElement::new(tag, vr, PrimitiveValue::from(value.to_string()))
    }
}

/// The identifier of one query, with the matching values given (empty: return key).
struct Keys<'a> {
    patient_id: &'a str,
    patient_name: &'a str,
    station: &'a str,
    date: &'a str,
    modality: &'a str,
}

fn identifier(k: &Keys<'_>) -> InMemDicomObject {
    let mut obj = InMemDicomObject::from_element_iter([
        element(tags::ACCESSION_NUMBER, VR::SH, ""),
        element(tags::REFERRING_PHYSICIAN_NAME, VR::PN, ""),
        element(tags::PATIENT_NAME, VR::PN, k.patient_name),
        element(tags::PATIENT_ID, VR::LO, k.patient_id),
        element(tags::PATIENT_BIRTH_DATE, VR::DA, ""),
        element(tags::PATIENT_SEX, VR::CS, ""),
        element(tags::STUDY_INSTANCE_UID, VR::UI, ""),
        element(tags::REQUESTED_PROCEDURE_DESCRIPTION, VR::LO, ""),
        element(tags::REQUESTED_PROCEDURE_ID, VR::SH, ""),
    ]);
    let item = InMemDicomObject::from_element_iter([
        element(tags::MODALITY, VR::CS, k.modality),
        element(tags::SCHEDULED_STATION_AE_TITLE, VR::AE, k.station),
        element(tags::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, k.date),
        element(tags::SCHEDULED_PROCEDURE_STEP_START_TIME, VR::TM, ""),
        element(tags::SCHEDULED_PERFORMING_PHYSICIAN_NAME, VR::PN, ""),
        element(tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION, VR::LO, ""),
        element(tags::SCHEDULED_STATION_NAME, VR::SH, ""),
        element(tags::SCHEDULED_PROCEDURE_STEP_ID, VR::SH, ""),
    ]);
    obj.put(DataElement::new(
        tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![item]),
    ));
    obj
}

/// The encoded identifier of `patient-id` for `id`.
pub fn patient_id_query(id: &str) -> Vec<u8> {
    encode(&identifier(&Keys {
        patient_id: id,
        patient_name: "",
        station: "",
        date: "",
        modality: "",
    }))
}

/// The encoded identifier (Implicit VR LE) of one query of `kind`; `patient-id` picks
/// its ID with `rng`. `None` for `patient-id` without IDs.
pub fn build(kind: QueryKind, p: &QueryParams, rng: &mut Rng) -> Option<Vec<u8>> {
    let day = format_da(p.day);
    let range;
    let keys = match kind {
        QueryKind::TodayStationModality => Keys {
            patient_id: "",
            patient_name: "",
            station: &p.station,
            date: &day,
            modality: &p.modality,
        },
        QueryKind::BusyStation => Keys {
            patient_id: "",
            patient_name: "",
            station: &p.busy_station,
            date: &day,
            modality: &p.modality,
        },
        QueryKind::PatientId => {
            if p.patient_ids.is_empty() {
                return None;
            }
            let id = &p.patient_ids[rng.below(p.patient_ids.len())];
            return Some(patient_id_query(id));
        }
        QueryKind::Universal => Keys {
            patient_id: "",
            patient_name: "",
            station: "",
            date: "",
            modality: "",
        },
        QueryKind::DateRange => {
            let last = p
                .day
                .checked_add(jiff::Span::new().days(i64::from(p.range_days.max(1)) - 1))
                .unwrap_or(p.day);
            range = format!("{day}-{}", format_da(last));
            Keys {
                patient_id: "",
                patient_name: "",
                station: "",
                date: &range,
                modality: "",
            }
        }
        QueryKind::NameWildcard => Keys {
            patient_id: "",
            patient_name: &p.name_pattern,
            station: "",
            date: "",
            modality: "",
        },
    };
    Some(encode(&identifier(&keys)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in QueryKind::ALL {
            assert_eq!(QueryKind::parse(k.name()), Ok(k));
        }
        assert!(QueryKind::parse("nope").is_err());
    }

    #[test]
    fn date_range_spans_the_days() {
        let p = QueryParams {
            day: jiff::civil::date(2026, 11, 30),
            station: "S".into(),
            busy_station: "BUSY".into(),
            modality: "MR".into(),
            range_days: 3,
            name_pattern: "Sim*".into(),
            patient_ids: vec!["SUB1".into()],
        };
        let mut rng = Rng::new(1);
        for k in QueryKind::ALL {
            assert!(build(k, &p, &mut rng).is_some_and(|b| !b.is_empty()));
        }
        let bytes = build(QueryKind::DateRange, &p, &mut rng).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("20261130-20261202"), "{text}");
        let busy = build(QueryKind::BusyStation, &p, &mut rng).unwrap_or_default();
        let text = String::from_utf8_lossy(&busy);
        assert!(text.contains("BUSY") && text.contains("20261130"), "{text}");
    }
}
