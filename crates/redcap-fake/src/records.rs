//! The project's data: records with their repeating-instrument instances, the
//! modification time of each record, and the clock those times come from.

use std::collections::BTreeMap;

use jiff::SignedDuration;
use jiff::civil::DateTime;
use serde::{Deserialize, Serialize};

/// One record: its values on the non-repeating instruments and its repeating-instrument
/// instances. Values are strings, as REDCap stores and exports them; values of fields
/// the project lacks are kept but never exported.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeRecord {
    /// The record id (value of the project's record id field).
    pub record_id: String,
    /// Values of the non-repeating instruments' fields, by field name.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Instances of repeating instruments.
    #[serde(default)]
    pub repeats: Vec<RepeatInstance>,
}

impl FakeRecord {
    /// A record with no values yet.
    pub fn new(record_id: &str) -> FakeRecord {
        FakeRecord {
            record_id: record_id.to_owned(),
            ..FakeRecord::default()
        }
    }

    /// The same record with `field` set to `value`.
    pub fn with(mut self, field: &str, value: &str) -> FakeRecord {
        self.fields.insert(field.to_owned(), value.to_owned());
        self
    }

    /// The same record with this instance added (or replacing the instance with the
    /// same instrument and number).
    pub fn with_instance(mut self, instance: RepeatInstance) -> FakeRecord {
        self.put_instance(instance);
        self
    }

    /// Adds an instance, or replaces the one with the same instrument and number.
    pub fn put_instance(&mut self, instance: RepeatInstance) {
        match self.instance_mut(&instance.instrument, instance.instance) {
            Some(existing) => *existing = instance,
            None => self.repeats.push(instance),
        }
    }

    /// The instance `number` of `instrument`, if any.
    pub fn instance_mut(&mut self, instrument: &str, number: u32) -> Option<&mut RepeatInstance> {
        self.repeats
            .iter_mut()
            .find(|r| r.instrument == instrument && r.instance == number)
    }

    /// Removes the instance `number` of `instrument`; returns whether it existed.
    pub fn remove_instance(&mut self, instrument: &str, number: u32) -> bool {
        let before = self.repeats.len();
        self.repeats
            .retain(|r| !(r.instrument == instrument && r.instance == number));
        self.repeats.len() != before
    }
}

/// One instance of a repeating instrument (one row of a flat export).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatInstance {
    /// The instrument's name, e.g. `mri` (`redcap_repeat_instrument`).
    pub instrument: String,
    /// The instance number, from 1 (`redcap_repeat_instance`).
    pub instance: u32,
    /// Values of the instrument's fields, by field name.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

impl RepeatInstance {
    /// An instance with no values yet.
    pub fn new(instrument: &str, instance: u32) -> RepeatInstance {
        RepeatInstance {
            instrument: instrument.to_owned(),
            instance,
            fields: BTreeMap::new(),
        }
    }

    /// The same instance with `field` set to `value`.
    pub fn with(mut self, field: &str, value: &str) -> RepeatInstance {
        self.fields.insert(field.to_owned(), value.to_owned());
        self
    }
}

/// Where modification times come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Clock {
    /// The real clock, read in the project's time zone.
    Real,
    /// A time set by a test.
    Fixed(DateTime),
}

/// A record as the server holds it: the data and when it last changed (REDCap's
/// server-local civil time, to the second, as `dateRangeBegin` compares it).
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) record: FakeRecord,
    pub(crate) modified: DateTime,
}

/// All records, keyed by record id, and the clock that stamps their changes.
#[derive(Debug)]
pub(crate) struct RecordStore {
    records: BTreeMap<String, Stored>,
    clock: Clock,
    tz: jiff::tz::TimeZone,
}

impl RecordStore {
    pub(crate) fn new(tz: jiff::tz::TimeZone) -> RecordStore {
        RecordStore {
            records: BTreeMap::new(),
            clock: Clock::Real,
            tz,
        }
    }

    /// The current time of the clock, truncated to the second.
    pub(crate) fn now(&self) -> DateTime {
        let now = match self.clock {
            Clock::Real => jiff::Timestamp::now()
                .to_zoned_datetime(self.tz.clone())
                .datetime(),
            Clock::Fixed(at) => at,
        };
        now.with().subsec_nanosecond(0).build().unwrap_or(now)
    }

    pub(crate) fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// Moves a fixed clock forward (or back); a real clock becomes fixed at now + by.
    pub(crate) fn advance(&mut self, by: SignedDuration) {
        let now = self.now();
        self.clock = Clock::Fixed(now.checked_add(by).unwrap_or(now));
    }

    /// Replaces every record, all stamped now.
    pub(crate) fn replace_all(&mut self, records: Vec<FakeRecord>) {
        let now = self.now();
        self.records = records
            .into_iter()
            .map(|record| {
                let id = record.record_id.clone();
                (
                    id,
                    Stored {
                        record,
                        modified: now,
                    },
                )
            })
            .collect();
    }

    /// Inserts or replaces a record, stamped now.
    pub(crate) fn upsert(&mut self, record: FakeRecord) {
        let modified = self.now();
        self.records
            .insert(record.record_id.clone(), Stored { record, modified });
    }

    /// Applies `edit` to a record and stamps it now; false if there is no such record.
    /// The edit may not change the record id (it is put back).
    pub(crate) fn edit(&mut self, id: &str, edit: impl FnOnce(&mut FakeRecord)) -> bool {
        let now = self.now();
        let Some(stored) = self.records.get_mut(id) else {
            return false;
        };
        edit(&mut stored.record);
        id.clone_into(&mut stored.record.record_id);
        stored.modified = now;
        true
    }

    pub(crate) fn remove(&mut self, id: &str) -> bool {
        self.records.remove(id).is_some()
    }

    pub(crate) fn set_modified(&mut self, id: &str, at: DateTime) -> bool {
        match self.records.get_mut(id) {
            Some(stored) => {
                stored.modified = at;
                true
            }
            None => false,
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Stored> {
        self.records.get(id)
    }

    /// All records in REDCap's export order: numeric ids by value first, then the
    /// others by text.
    pub(crate) fn in_export_order(&self) -> Vec<&Stored> {
        let mut all: Vec<&Stored> = self.records.values().collect();
        all.sort_by(|a, b| export_order(&a.record.record_id, &b.record.record_id));
        all
    }
}

/// Numeric record ids by value first (`2` before `10`), then the others by text.
fn export_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}
