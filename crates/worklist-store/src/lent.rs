//! An entry lent by a scan ([`Store::scan_entries_derived`](crate::Store::scan_entries_derived)),
//! with its derived bytes, and made into a [`StoredEntry`] only when asked: a caller that
//! needs only the bytes kept for it (an encoded response) never pays for the copy.

use worklist_model::StoredEntry;

use crate::derived::Derived;
use crate::read_model::Held;

/// One entry of a scan, lent for the time of one call.
pub struct Lent<'a> {
    source: Source<'a>,
    derived: Derived<'a>,
}

enum Source<'a> {
    /// Read from SQLite: already an entry.
    Entry(&'a StoredEntry),
    /// Held by the read model: copied into `scratch` (reused from entry to entry) on the
    /// first [`Lent::entry`].
    Record {
        record: Held<'a>,
        scratch: &'a mut Option<StoredEntry>,
        filled: bool,
    },
}

impl<'a> Lent<'a> {
    /// An entry read from SQLite.
    pub(crate) fn entry_of(stored: &'a StoredEntry, derived: Derived<'a>) -> Lent<'a> {
        Lent {
            source: Source::Entry(stored),
            derived,
        }
    }

    /// An entry of the read model, to be copied into `scratch` when asked.
    pub(crate) fn record(
        record: Held<'a>,
        scratch: &'a mut Option<StoredEntry>,
        derived: Derived<'a>,
    ) -> Lent<'a> {
        Lent {
            source: Source::Record {
                record,
                scratch,
                filled: false,
            },
            derived,
        }
    }

    /// Its derived bytes (see [`derived`](crate::derived)).
    pub fn derived(&self) -> Derived<'a> {
        self.derived
    }

    /// The entry.
    pub fn entry(&mut self) -> &StoredEntry {
        match &mut self.source {
            Source::Entry(e) => e,
            Source::Record {
                record,
                scratch,
                filled,
            } => {
                if !*filled {
                    match scratch.as_mut() {
                        Some(s) => record.fill(s),
                        None => **scratch = Some(record.to_stored()),
                    }
                    *filled = true;
                }
                scratch.get_or_insert_with(|| record.to_stored())
            }
        }
    }
}
