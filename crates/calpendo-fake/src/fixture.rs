//! Fixture loading and synthetic booking generation.

use std::collections::HashSet;

use jiff::civil::{Date, DateTime, Time};
use jiff::{SignedDuration, Span};
use serde::Deserialize;
use serde_json::Value;

use crate::{BookingShape, FakeBooking};

/// Why a fixture could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// Not JSON, or an entry does not have the expected fields.
    #[error("invalid fixture JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The document is neither an array of bookings nor an object with a `bookings`
    /// array.
    #[error("a fixture must be a JSON array of bookings or an object with a \"bookings\" array")]
    Layout,
    /// A `start`/`end` value is neither `HH:MM[:SS]` nor a civil date-time.
    #[error("booking {id}: invalid {field} {value:?}: {reason}")]
    InvalidTime {
        /// Booking id.
        id: i64,
        /// `start` or `end`.
        field: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The booking does not end after it starts.
    #[error("booking {id}: end {end} is not after start {start}")]
    EndNotAfterStart {
        /// Booking id.
        id: i64,
        /// Resolved start.
        start: DateTime,
        /// Resolved end.
        end: DateTime,
    },
    /// Two entries share an id.
    #[error("duplicate booking id {0}")]
    DuplicateId(i64),
}

/// One fixture entry. `start`/`end` are `HH:MM` (or `HH:MM:SS`) on the day `today +
/// day` (`end_day` for the end, default `day`), or absolute civil date-times
/// (`2026-11-26T08:00`), in which case `day`/`end_day` are ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: i64,
    #[serde(default)]
    day: i64,
    #[serde(default)]
    end_day: Option<i64>,
    start: String,
    end: String,
    title: String,
    status: String,
    biskit_type: String,
    resource: String,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    booker: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    operator: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    shape: BookingShape,
}

/// Loads a fixture, resolving relative `day` offsets against `today` (Calpendo's local
/// date).
///
/// The document is a JSON array of entries, or an object whose `bookings` member is
/// one (other members, such as a `description`, are ignored). An entry looks like
/// `{"id": 1001, "day": 0, "start": "08:00", "end": "09:00", "title":
/// "SUB101_Tremblay_Marie", "status": "Approved", "biskit_type": "MRIScan",
/// "resource": "3T Diagnostic", "project": "BRISKP (...)", "operator": "Jane Smith",
/// "shape": "classic"}`; `end_day` (default `day`) lets a booking span days, and
/// `project`, `booker`, `owner`, `operator`, `description` and `shape` (default
/// `classic`) are optional. Bookings are returned in file order.
pub fn load_fixture(json: &str, today: Date) -> Result<Vec<FakeBooking>, FixtureError> {
    let doc: Value = serde_json::from_str(json)?;
    let entries = match doc {
        Value::Array(_) => doc,
        Value::Object(mut map) => match map.remove("bookings") {
            Some(list @ Value::Array(_)) => list,
            _ => return Err(FixtureError::Layout),
        },
        _ => return Err(FixtureError::Layout),
    };
    let entries: Vec<Entry> = serde_json::from_value(entries)?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        if !seen.insert(e.id) {
            return Err(FixtureError::DuplicateId(e.id));
        }
        let start = resolve(e.id, "start", &e.start, today, e.day)?;
        let end = resolve(e.id, "end", &e.end, today, e.end_day.unwrap_or(e.day))?;
        if end <= start {
            return Err(FixtureError::EndNotAfterStart {
                id: e.id,
                start,
                end,
            });
        }
        out.push(FakeBooking {
            id: e.id,
            start,
            end,
            title: e.title,
            status: e.status,
            biskit_type: e.biskit_type,
            resource: e.resource,
            project: e.project,
            booker: e.booker,
            owner: e.owner,
            operator: e.operator,
            description: e.description,
            shape: e.shape,
        });
    }
    Ok(out)
}

fn resolve(
    id: i64,
    field: &'static str,
    value: &str,
    today: Date,
    day: i64,
) -> Result<DateTime, FixtureError> {
    let invalid = |reason: String| FixtureError::InvalidTime {
        id,
        field,
        value: value.to_owned(),
        reason,
    };
    if value.contains('-') {
        return value
            .parse::<DateTime>()
            .map_err(|e| invalid(e.to_string()));
    }
    let time: Time = value
        .parse()
        .map_err(|e: jiff::Error| invalid(e.to_string()))?;
    let date = today
        .checked_add(
            Span::new()
                .try_days(day)
                .map_err(|e| invalid(e.to_string()))?,
        )
        .map_err(|e| invalid(e.to_string()))?;
    Ok(date.to_datetime(time))
}

/// SplitMix64: tiny, deterministic across platforms and crate versions.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Resources of the synthetic site: name and booking type.
const RESOURCES: [(&str, &str); 4] = [
    ("3T Diagnostic", "MRIScan"),
    ("3T Research", "MRIScan"),
    ("EEG Lab Room A", "EEGScan"),
    ("Mock Scanner", "MockScan"),
];

const FAMILY_NAMES: &[&str] = &[
    "Tremblay",
    "Gagnon",
    "Roy",
    "Côté",
    "Bouchard",
    "Gauthier",
    "Morin",
    "Lavoie",
    "Fortin",
    "Gagné",
    "Ouellet",
    "Pelletier",
    "Bélanger",
    "Lévesque",
    "Bergeron",
    "Leblanc",
    "Girard",
    "Simard",
    "Boucher",
    "Caron",
    "Müller",
    "Schäfer",
    "Nguyen",
    "Singh",
    "Okafor",
    "Haddad",
    "Kowalski",
    "Rossi",
    "Campbell",
    "MacDonald",
    "Wong",
    "Chen",
];

const GIVEN_NAMES: &[&str] = &[
    "Marie", "Jean", "Sophie", "Éric", "Olivia", "Liam", "Noah", "Emma", "Chloé", "Lucas", "Zoé",
    "Jonas", "Priya", "Daniel", "Omar", "Anna", "Giulia", "Ian", "Yusuf", "Hélène", "Mateo",
    "Aiko", "Kwame", "Sven",
];

const PROJECTS: &[&str] = &[
    "BRISKP (Brain network models in schizophrenia)",
    "NEURODEV (Neurodevelopment cohort)",
    "SLEEPEEG (Sleep spindles and memory)",
    "Memory Consolidation Study",
    "STROKEREC (Motor recovery after stroke)",
    "Pilot Sequences",
];

const STAFF: &[&str] = &[
    "Dr. Helen Marchetti",
    "Dr. Samuel Osei",
    "Dr. Ingrid Halvorsen",
    "Dr. Paulo Mendes",
    "Dr. Farah Siddiqui",
];

const OPERATORS: &[&str] = &[
    "Nadia Okoye",
    "Tomasz Wilk",
    "Rafael Ortega",
    "Mei Lindqvist",
    "Jonah Pereira",
];

const DURATIONS_MIN: &[i64] = &[30, 45, 60, 60, 60, 75, 90];
const GAPS_MIN: &[i64] = &[0, 0, 0, 15, 15, 30, 60];

/// Generates `n` deterministic, realistic bookings from `first_day` on.
///
/// Each day, each of four resources ("3T Diagnostic", "3T Research", "EEG Lab Room
/// A", "Mock Scanner") is booked back to back between 08:00 and 20:00 in slots of
/// 30–90 minutes with small gaps, until `n` bookings exist (about 40 a day). About 10%
/// are `Pending`, 5% `Cancelled`, the rest `Approved`; about 10% use the Calpendo 11
/// detail shape. Titles are `SUB%05d_Family_Given`. Ids are `100000 + index`. The same
/// `(n, first_day, seed)` always gives the same bookings.
pub fn synthetic_bookings(n: usize, first_day: Date, seed: u64) -> Vec<FakeBooking> {
    let mut rng = SplitMix64(seed ^ 0x6d77_6c62_7269_6467);
    let mut out = Vec::with_capacity(n);
    let day_start = Time::constant(8, 0, 0, 0);
    let day_end = Time::constant(20, 0, 0, 0);
    let mut day = first_day;
    while out.len() < n {
        for (resource, biskit_type) in RESOURCES {
            let mut at = day.to_datetime(day_start);
            let closing = day.to_datetime(day_end);
            loop {
                if out.len() >= n {
                    break;
                }
                let gap = GAPS_MIN[rng.below(GAPS_MIN.len())];
                let minutes = DURATIONS_MIN[rng.below(DURATIONS_MIN.len())];
                let Ok(start) = at.checked_add(SignedDuration::from_mins(gap)) else {
                    break;
                };
                let Ok(end) = start.checked_add(SignedDuration::from_mins(minutes)) else {
                    break;
                };
                if end > closing {
                    break;
                }
                at = end;
                let id = 100_000 + i64::try_from(out.len()).unwrap_or(i64::MAX - 100_000);
                out.push(synthetic_booking(
                    &mut rng,
                    id,
                    start,
                    end,
                    resource,
                    biskit_type,
                ));
            }
        }
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    out
}

/// The resource of [`busy_day_bookings`]: a console booked in short slots all day.
pub const BUSY_RESOURCE: &str = "3T Busy";

/// Most bookings [`busy_day_bookings`] fits in one day (one-minute slots, 08:00–20:00).
pub const BUSY_DAY_MAX: usize = 720;

/// `count` (at most [`BUSY_DAY_MAX`]) `Approved` MR bookings on [`BUSY_RESOURCE`] on
/// `day`, back to back in equal slots between 08:00 and 20:00 (100 bookings: 7 minutes
/// each), with ids from `first_id` on. They model the busiest console's day, the worst
/// case of its default "today, this station, this modality" query; the other fields
/// vary as [`synthetic_bookings`]' do. The same arguments always give the same bookings.
pub fn busy_day_bookings(count: usize, day: Date, first_id: i64, seed: u64) -> Vec<FakeBooking> {
    let count = count.min(BUSY_DAY_MAX);
    if count == 0 {
        return Vec::new();
    }
    let mut rng = SplitMix64(seed ^ 0x6275_7379_6461_7921);
    let slot = i64::try_from(BUSY_DAY_MAX / count).unwrap_or(1);
    let opening = day.to_datetime(Time::constant(8, 0, 0, 0));
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let offset = slot * i64::try_from(i).unwrap_or(0);
        let (Ok(start), Ok(end)) = (
            opening.checked_add(SignedDuration::from_mins(offset)),
            opening.checked_add(SignedDuration::from_mins(offset + slot)),
        ) else {
            break;
        };
        let id = first_id.saturating_add(i64::try_from(i).unwrap_or(0));
        let mut b = synthetic_booking(&mut rng, id, start, end, BUSY_RESOURCE, "MRIScan");
        b.status = "Approved".to_owned();
        out.push(b);
    }
    out
}

fn synthetic_booking(
    rng: &mut SplitMix64,
    id: i64,
    start: DateTime,
    end: DateTime,
    resource: &str,
    biskit_type: &str,
) -> FakeBooking {
    let roll = rng.below(100);
    let status = if roll < 5 {
        "Cancelled"
    } else if roll < 15 {
        "Pending"
    } else {
        "Approved"
    };
    let subject = 1 + rng.below(99_999);
    let title = format!(
        "SUB{subject:05}_{}_{}",
        rng.pick(FAMILY_NAMES),
        rng.pick(GIVEN_NAMES)
    );
    let project = (!rng.chance(5)).then(|| rng.pick(PROJECTS).to_owned());
    let booker = rng.pick(STAFF).to_owned();
    let owner = if rng.chance(70) {
        booker.clone()
    } else {
        rng.pick(STAFF).to_owned()
    };
    let operator = if biskit_type == "MRIScan" {
        match rng.below(100) {
            0..5 => Some("<Hidden>".to_owned()),
            5..15 => None,
            _ => Some(rng.pick(OPERATORS).to_owned()),
        }
    } else {
        None
    };
    let description = rng.chance(20).then(|| {
        rng.pick(&[
            "Baseline session",
            "Follow-up visit",
            "Pilot scan",
            "Repeat: motion in run 2",
        ])
        .to_owned()
    });
    let shape = if rng.chance(10) {
        BookingShape::Calpendo11
    } else {
        BookingShape::Classic
    };
    FakeBooking {
        id,
        start,
        end,
        title,
        status: status.to_owned(),
        biskit_type: biskit_type.to_owned(),
        resource: resource.to_owned(),
        project,
        booker: Some(booker),
        owner: Some(owner),
        operator,
        description,
        shape,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SAMPLE_FIXTURE;
    use jiff::civil::date;

    #[test]
    fn sample_fixture_resolves_days_against_today() {
        let today = date(2026, 11, 26);
        let bookings = load_fixture(SAMPLE_FIXTURE, today).unwrap();
        assert!((12..=16).contains(&bookings.len()), "{}", bookings.len());
        let days: HashSet<Date> = bookings.iter().map(|b| b.start.date()).collect();
        assert!(days.contains(&date(2026, 11, 25)));
        assert!(days.contains(&today));
        assert!(days.contains(&date(2026, 11, 27)));
        let first = bookings.iter().find(|b| b.id == 1001).unwrap();
        assert_eq!(first.start, today.at(8, 0, 0, 0));
        assert_eq!(first.end, today.at(9, 0, 0, 0));

        // The same file against another day moves every booking by the same amount.
        let later = load_fixture(SAMPLE_FIXTURE, date(2027, 3, 1)).unwrap();
        for (a, b) in bookings.iter().zip(&later) {
            assert_eq!(a.id, b.id);
            assert_eq!(a.end.duration_since(a.start), b.end.duration_since(b.start));
            assert_eq!(a.start.time(), b.start.time());
        }
    }

    #[test]
    fn sample_fixture_covers_the_awkward_cases() {
        let bookings = load_fixture(SAMPLE_FIXTURE, date(2026, 11, 26)).unwrap();
        let has = |f: &dyn Fn(&FakeBooking) -> bool| bookings.iter().any(f);
        assert!(has(&|b| b.shape == BookingShape::Calpendo11));
        assert!(has(&|b| b.start.date() != b.end.date()));
        assert!(has(&|b| b.operator.as_deref() == Some("<Hidden>")));
        assert!(has(&|b| b
            .project
            .as_deref()
            .is_some_and(|p| !p.contains('('))));
        assert!(has(&|b| b.title.contains('é')));
        assert!(has(&|b| b.title.contains('ü')));
        for status in ["Approved", "Pending", "Cancelled"] {
            assert!(has(&|b| b.status == status), "{status}");
        }
        for resource in [
            "3T Diagnostic",
            "3T Research",
            "EEG Lab Room A",
            "Mock Scanner",
        ] {
            assert!(has(&|b| b.resource == resource), "{resource}");
        }
    }

    #[test]
    fn fixture_forms_and_errors() {
        let today = date(2026, 1, 10);
        let doc = r#"[{"id": 1, "day": -2, "end_day": -1, "start": "23:30", "end": "00:30:15",
            "title": "T", "status": "Approved", "biskit_type": "MRIScan", "resource": "R"},
            {"id": 2, "start": "2026-02-01T10:00", "end": "2026-02-01T11:00", "title": "T",
            "status": "Pending", "biskit_type": "EEGScan", "resource": "R", "shape": "calpendo11"}]"#;
        let b = load_fixture(doc, today).unwrap();
        assert_eq!(b[0].start, date(2026, 1, 8).at(23, 30, 0, 0));
        assert_eq!(b[0].end, date(2026, 1, 9).at(0, 30, 15, 0));
        assert_eq!(b[0].shape, BookingShape::Classic);
        assert_eq!(b[1].start, date(2026, 2, 1).at(10, 0, 0, 0));
        assert_eq!(b[1].shape, BookingShape::Calpendo11);

        let wrapped = format!(r#"{{"description": "x", "bookings": {doc}}}"#);
        assert_eq!(load_fixture(&wrapped, today).unwrap(), b);

        let entry = |id: i64, start: &str, end: &str| {
            format!(
                r#"{{"id": {id}, "start": "{start}", "end": "{end}", "title": "T", "status": "Approved", "biskit_type": "MRIScan", "resource": "R"}}"#
            )
        };
        assert!(matches!(
            load_fixture("{", today),
            Err(FixtureError::Json(_))
        ));
        assert!(matches!(
            load_fixture("42", today),
            Err(FixtureError::Layout)
        ));
        assert!(matches!(
            load_fixture(r#"{"x": []}"#, today),
            Err(FixtureError::Layout)
        ));
        assert!(matches!(
            load_fixture(&format!("[{}]", entry(1, "25:00", "26:00")), today),
            Err(FixtureError::InvalidTime {
                id: 1,
                field: "start",
                ..
            })
        ));
        assert!(matches!(
            load_fixture(&format!("[{}]", entry(1, "10:00", "09:00")), today),
            Err(FixtureError::EndNotAfterStart { id: 1, .. })
        ));
        assert!(matches!(
            load_fixture(
                &format!(
                    "[{},{}]",
                    entry(3, "08:00", "09:00"),
                    entry(3, "10:00", "11:00")
                ),
                today
            ),
            Err(FixtureError::DuplicateId(3))
        ));
        // Unknown fields are typos, not silently ignored.
        let typo = r#"[{"id": 1, "start": "08:00", "end": "09:00", "title": "T", "status": "Approved", "biskit_type": "MRIScan", "resource": "R", "operater": "X"}]"#;
        assert!(matches!(
            load_fixture(typo, today),
            Err(FixtureError::Json(_))
        ));
    }

    #[test]
    fn synthetic_is_deterministic_and_realistic() {
        let first_day = date(2026, 11, 26);
        let a = synthetic_bookings(500, first_day, 7);
        assert_eq!(a, synthetic_bookings(500, first_day, 7));
        assert_ne!(a, synthetic_bookings(500, first_day, 8));
        // A prefix of a longer run is the shorter run.
        assert_eq!(synthetic_bookings(100, first_day, 7)[..], a[..100]);
        assert_eq!(a.len(), 500);

        let ids: HashSet<i64> = a.iter().map(|b| b.id).collect();
        assert_eq!(ids.len(), a.len());
        let days: HashSet<Date> = a.iter().map(|b| b.start.date()).collect();
        assert!(days.len() >= 5, "{} days", days.len());
        assert!(a.iter().all(|b| b.start.date() >= first_day));
        let resources: HashSet<&str> = a.iter().map(|b| b.resource.as_str()).collect();
        assert_eq!(resources.len(), 4);
        for b in &a {
            assert!(b.start.time() >= Time::constant(8, 0, 0, 0), "{b:?}");
            assert!(b.end.time() <= Time::constant(20, 0, 0, 0), "{b:?}");
            assert_eq!(b.start.date(), b.end.date());
            let mins = b.end.duration_since(b.start).as_mins();
            assert!((30..=90).contains(&mins), "{mins}");
            assert!(
                b.title.starts_with("SUB") && b.title.split('_').count() == 3,
                "{}",
                b.title
            );
            assert_eq!(b.title[3..8].len(), 5);
            assert!(b.title[3..8].bytes().all(|c| c.is_ascii_digit()));
        }
        // No overlaps on one resource.
        for resource in resources {
            let mut on: Vec<_> = a.iter().filter(|b| b.resource == resource).collect();
            on.sort_by_key(|b| b.start);
            assert!(on.windows(2).all(|w| w[0].end <= w[1].start));
        }
        let share = |status: &str| a.iter().filter(|b| b.status == status).count() * 100 / a.len();
        assert!((5..=16).contains(&share("Pending")), "{}", share("Pending"));
        assert!(
            (1..=10).contains(&share("Cancelled")),
            "{}",
            share("Cancelled")
        );
        assert!(a.iter().any(|b| b.shape == BookingShape::Calpendo11));
        assert!(
            a.iter()
                .filter(|b| b.biskit_type != "MRIScan")
                .all(|b| b.operator.is_none())
        );
        assert!(synthetic_bookings(0, first_day, 1).is_empty());
    }

    #[test]
    fn busy_day_fills_one_resource_of_one_day() {
        let day = date(2026, 11, 26);
        let a = busy_day_bookings(100, day, 500, 3);
        assert_eq!(a, busy_day_bookings(100, day, 500, 3));
        assert_eq!(a.len(), 100);
        assert!(a.iter().all(|b| b.resource == BUSY_RESOURCE
            && b.status == "Approved"
            && b.biskit_type == "MRIScan"
            && b.start.date() == day
            && b.end.time() <= Time::constant(20, 0, 0, 0)));
        assert!(a.windows(2).all(|w| w[0].end <= w[1].start));
        let ids: HashSet<i64> = a.iter().map(|b| b.id).collect();
        assert_eq!(ids, (500..600).collect());
        assert_eq!(busy_day_bookings(5000, day, 1, 1).len(), BUSY_DAY_MAX);
        assert!(busy_day_bookings(0, day, 1, 1).is_empty());
    }
}
