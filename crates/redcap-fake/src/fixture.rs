//! Records to serve: the sample day (a JSON fixture with dates relative to today) and
//! synthetic records for benchmarks. Every identifier is obviously fake.

use std::collections::HashSet;

use jiff::Span;
use jiff::civil::Date;
use serde::Deserialize;

use crate::records::{FakeRecord, RepeatInstance};

/// A realistic day of the CPIP layout ([`crate::Project::cpip`]) relative to "today":
/// MRI visits today (some times `HH:MM:SS`, free-text scheduled dates and times in
/// other formats), one yesterday, some in the next days, a record with two sessions,
/// an instance without a time, a baseline-only record and a neurology patient.
///
/// `fixtures/sample_day.pylantir.json` beside it holds what Pylantir's own REDCap
/// plugin (through PyCap, against this fake) makes of it: the reference entries for
/// a REDCap source's tests.
pub const SAMPLE_FIXTURE: &str = include_str!("../fixtures/sample_day.json");

/// Why a fixture could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// Not JSON, or not the expected layout.
    #[error("invalid fixture JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A `{today...}` placeholder that cannot be resolved.
    #[error("record {record}: invalid placeholder {placeholder:?}: {reason}")]
    Placeholder {
        /// Record id.
        record: String,
        /// The placeholder as written.
        placeholder: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two records share an id.
    #[error("duplicate record id {0:?}")]
    DuplicateRecord(String),
    /// A record has two instances with the same instrument and number.
    #[error("record {record}: duplicate instance {instrument} #{instance}")]
    DuplicateInstance {
        /// Record id.
        record: String,
        /// Instrument.
        instrument: String,
        /// Instance number.
        instance: u32,
    },
}

/// The fixture document: `{"records": [...]}` (other members, such as a
/// `description`, are ignored).
#[derive(Debug, Deserialize)]
struct Document {
    records: Vec<FakeRecord>,
}

/// Loads a fixture, resolving date placeholders against `today` (the REDCap server's
/// local date).
///
/// A record is `{"record_id": "1", "fields": {"study_id": "CPIP-FAKE001", ...},
/// "repeats": [{"instrument": "mri", "instance": 1, "fields": {"mri_date":
/// "{today}", ...}}]}`. In any value, `{today}`, `{today+N}` and `{today-N}` become
/// that date as `YYYY-MM-DD`; `{today+N|FORMAT}` formats it with a strftime format
/// instead (`{today+2|%Y/%m/%d}`, `{today|%Y%m%d}`). Records keep file order.
pub fn load_fixture(json: &str, today: Date) -> Result<Vec<FakeRecord>, FixtureError> {
    let doc: Document = serde_json::from_str(json)?;
    let mut ids = HashSet::new();
    let mut out = Vec::with_capacity(doc.records.len());
    for mut record in doc.records {
        if !ids.insert(record.record_id.clone()) {
            return Err(FixtureError::DuplicateRecord(record.record_id));
        }
        let id = record.record_id.clone();
        for value in record.fields.values_mut() {
            *value = resolve(&id, value, today)?;
        }
        let mut instances = HashSet::new();
        for r in &mut record.repeats {
            if !instances.insert((r.instrument.clone(), r.instance)) {
                return Err(FixtureError::DuplicateInstance {
                    record: id,
                    instrument: r.instrument.clone(),
                    instance: r.instance,
                });
            }
            for value in r.fields.values_mut() {
                *value = resolve(&id, value, today)?;
            }
        }
        out.push(record);
    }
    Ok(out)
}

/// Replaces every `{today...}` placeholder in `value`.
fn resolve(record: &str, value: &str, today: Date) -> Result<String, FixtureError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("{today") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(end) = tail.find('}') else {
            out.push_str(tail);
            return Ok(out);
        };
        let placeholder = &tail[..=end];
        out.push_str(&placeholder_value(record, placeholder, today)?);
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn placeholder_value(record: &str, placeholder: &str, today: Date) -> Result<String, FixtureError> {
    let invalid = |reason: String| FixtureError::Placeholder {
        record: record.to_owned(),
        placeholder: placeholder.to_owned(),
        reason,
    };
    let inner = placeholder
        .trim_start_matches("{today")
        .trim_end_matches('}');
    let (offset, format) = inner.split_once('|').unwrap_or((inner, "%Y-%m-%d"));
    let days: i64 = match offset.trim() {
        "" => 0,
        o => o
            .strip_prefix('+')
            .unwrap_or(o)
            .parse()
            .map_err(|e: std::num::ParseIntError| invalid(e.to_string()))?,
    };
    let span = Span::new()
        .try_days(days)
        .map_err(|e| invalid(e.to_string()))?;
    let date = today
        .checked_add(span)
        .map_err(|e| invalid(e.to_string()))?;
    jiff::fmt::strtime::format(format, date).map_err(|e| invalid(e.to_string()))
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
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `n` synthetic records of the CPIP layout, deterministic for a `seed`: record ids
/// `1..=n`, study ids `CPIP-SYN00001`..., families of two (`FAM-SYN00001`...), each
/// with one or two `mri` sessions between today - 3 and today + 4 (07:00 to 19:30 in
/// 30-minute slots; every tenth time `HH:MM:SS`), weights, physicians and stations.
pub fn synthetic_records(n: usize, today: Date, seed: u64) -> Vec<FakeRecord> {
    let mut rng = SplitMix64(seed);
    (1..=n)
        .map(|i| synthetic_record(&mut rng, i, today))
        .collect()
}

fn synthetic_record(rng: &mut SplitMix64, i: usize, today: Date) -> FakeRecord {
    let mut record = FakeRecord::new(&i.to_string())
        .with("study_id", &format!("CPIP-SYN{i:05}"))
        .with("family_id", &format!("FAM-SYN{:05}", i.div_ceil(2)))
        .with("youth_dob_y", &(2008 + rng.below(10)).to_string())
        .with("demo_sex", if rng.below(2) == 0 { "1" } else { "2" })
        .with("neuro_pcp", if i.is_multiple_of(7) { "1" } else { "0" })
        .with("baseline_complete", "2");
    let sessions = 1 + u32::from(rng.below(4) == 0);
    for session in 1..=sessions {
        let day = i64::try_from(rng.below(8)).unwrap_or(0) - 3;
        let date = today.checked_add(Span::new().days(day)).unwrap_or(today);
        let slot = rng.below(26);
        let (hour, minute) = (7 + slot / 2, (slot % 2) * 30);
        let time = if i.is_multiple_of(10) {
            format!("{hour:02}:{minute:02}:00")
        } else {
            format!("{hour:02}:{minute:02}")
        };
        let station = ["FAKE_MR1", "FAKE_MR2"][usize::from(rng.below(2) == 1)];
        let date = date.strftime("%Y-%m-%d").to_string();
        record.put_instance(
            RepeatInstance::new("mri", session)
                .with("mri_instance", &session.to_string())
                .with("mri_date", &date)
                .with("mri_time", &time)
                .with(
                    "mri_wt_lbs",
                    &format!("{}.{}", 60 + rng.below(120), rng.below(10)),
                )
                .with("scheduled_date", &date)
                .with("scheduled_time", &time)
                .with("referring_physician", "Synthetic^Referrer")
                .with("performing_physician", "Synthetic^Performer")
                .with("station_name", station)
                .with("status", "SCHEDULED")
                .with("mri_complete", "2"),
        );
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Date = Date::constant(2026, 11, 26);

    #[test]
    fn placeholders_resolve() {
        assert_eq!(resolve("1", "{today}", TODAY).unwrap(), "2026-11-26");
        assert_eq!(resolve("1", "{today+6}", TODAY).unwrap(), "2026-12-02");
        assert_eq!(resolve("1", "{today-1|%Y%m%d}", TODAY).unwrap(), "20261125");
        assert_eq!(
            resolve("1", "on {today+2|%Y/%m/%d} at 9", TODAY).unwrap(),
            "on 2026/11/28 at 9"
        );
        assert_eq!(
            resolve("1", "no {placeholder}", TODAY).unwrap(),
            "no {placeholder}"
        );
        assert!(matches!(
            resolve("1", "{today+x}", TODAY),
            Err(FixtureError::Placeholder { .. })
        ));
    }

    #[test]
    fn sample_fixture_loads() {
        let records = load_fixture(SAMPLE_FIXTURE, TODAY).unwrap();
        assert!(records.len() >= 8);
        assert!(
            records.iter().flat_map(|r| &r.repeats).any(|i| i
                .fields
                .get("mri_date")
                .map(String::as_str)
                == Some("2026-11-26"))
        );
    }

    #[test]
    fn synthetic_is_deterministic_and_sized() {
        let a = synthetic_records(100, TODAY, 7);
        assert_eq!(a.len(), 100);
        assert_eq!(a, synthetic_records(100, TODAY, 7));
        assert_ne!(a, synthetic_records(100, TODAY, 8));
        assert_eq!(a[99].fields["study_id"], "CPIP-SYN00100");
        let sessions: usize = a.iter().map(|r| r.repeats.len()).sum();
        assert!((100..=200).contains(&sessions));
    }
}
