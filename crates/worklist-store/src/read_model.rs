//! The read model: every worklist entry held in memory, compactly, so that listings
//! ([`Store::scan_entries`](crate::Store::scan_entries), which C-FIND and the DICOMweb
//! search go through) read neither SQLite nor allocate per entry.
//!
//! # What it holds
//!
//! An [`Image`]: the entries of one committed state of the database, in the store's
//! listing order (scheduled start, then row id), each as one [`Record`] (its text values
//! in a single allocation, its other values inline), with indexes by Patient ID (the
//! positions sorted by it), Scheduled Station AE Title and Modality (maps). An image is
//! immutable: a scan holds an `Arc` of it for as long as it runs, so a scan never sees a
//! half-applied sync, whatever commits meanwhile. A newer state gets a new image, built in
//! one read transaction and swapped in whole.
//!
//! # Freshness
//!
//! Every change to `worklist_entries` bumps `worklist_generation` (triggers, schema
//! version 9), whichever process makes it (`serve`'s sync and MPPS, a `sync --once` or an
//! administrator's command beside it). Before each scan, [`ReadModel::current`] asks
//! SQLite whether any connection committed since it last looked (`PRAGMA data_version`,
//! no table read), and only then reads the generation. When the image is of an older
//! generation, the scan reads SQLite as before, and the image is rebuilt on a thread of
//! its own; scans use it again once it is current. A scan therefore always sees every
//! write committed before it started, as the SQLite path does.
//!
//! # Bounds
//!
//! At most [`MAX_RESIDENT_ENTRIES`] entries are held (about 400 bytes each with the
//! indexes, measured: 40 MB at 100,000); a larger store is read from SQLite, said once at
//! WARN. While an image is rebuilt the old one stays until the last scan using it ends.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use rusqlite::Connection;
use worklist_model::{
    EntryMeta, StatusSetBy, StepStatus, StoredEntry, TEXT_ATTRIBUTES, WorklistEntry, pn,
};

use crate::connections::{self, Connections, Create};
use crate::derived::{DerivedCache, Gathered, KEEP_FROM_CANDIDATES};
use crate::entries;
use crate::error::StoreError;
use crate::filter::EntryFilter;
use crate::lent::Lent;
use crate::stream::{self, ScanEnd};

/// A store with more entries than this is not held in memory: its scans read SQLite.
pub const MAX_RESIDENT_ENTRIES: usize = 250_000;

/// Text values of a record: the model's text attributes, then the identity.
const TEXTS: usize = TEXT_ATTRIBUTES.len() + 2;
/// Position of `source` among a record's text values.
const SOURCE_AT: usize = TEXT_ATTRIBUTES.len();
/// Position of `source_record_id` among a record's text values.
const RECORD_ID_AT: usize = SOURCE_AT + 1;
const _: () = assert!(TEXTS <= 32, "a record's presence bits are a u32");

/// Position of a text attribute among a record's text values.
fn text_at(column: &str) -> usize {
    TEXT_ATTRIBUTES
        .iter()
        .position(|a| a.column == column)
        .unwrap_or(usize::MAX)
}

/// One entry, compact: its text values in one allocation.
pub(crate) struct Record {
    start: DateTime,
    end: Option<DateTime>,
    birth: Option<Date>,
    weight: Option<f64>,
    status: StepStatus,
    set_by: StatusSetBy,
    row_id: i64,
    /// First seen, last updated, status changed: positions in the image's [`Times`].
    times: [u32; 3],
    /// The text values, one after another.
    text: Box<str>,
    /// Where each text value ends in `text` (an absent one: where the previous ended).
    ends: [u16; TEXTS],
    /// Bit `i`: text value `i` is present.
    present: u32,
}

/// The timestamps of an image's records, each held once: a sync run stores and updates
/// many entries at one time, so they share a handful (48 bytes per entry saved: a tenth of
/// the read model).
#[derive(Default)]
pub(crate) struct Times {
    list: Vec<Timestamp>,
    /// Where each is in `list`, while records are made.
    index: HashMap<Timestamp, u32>,
}

impl Times {
    /// The position of `t`, added when new; `None` past `u32::MAX` distinct times.
    fn position(&mut self, t: Timestamp) -> Option<u32> {
        if let Some(&at) = self.index.get(&t) {
            return Some(at);
        }
        let at = u32::try_from(self.list.len()).ok()?;
        self.list.push(t);
        self.index.insert(t, at);
        Some(at)
    }

    /// Done adding: the index goes, the list stays.
    fn finish(mut self) -> Times {
        self.index = HashMap::new();
        self.list.shrink_to_fit();
        self
    }

    /// The time at `position` (a position [`position`](Self::position) gave).
    fn at(&self, position: u32) -> Timestamp {
        self.list
            .get(position as usize)
            .copied()
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

/// A record with the image's times: what it takes to give back its entry.
#[derive(Clone, Copy)]
pub(crate) struct Held<'a> {
    pub(crate) record: &'a Record,
    pub(crate) times: &'a Times,
}

/// The text values of an entry, in a record's order.
fn texts(e: &WorklistEntry) -> impl Iterator<Item = Option<&str>> {
    TEXT_ATTRIBUTES
        .iter()
        .map(|a| (a.get)(e))
        .chain([Some(e.source.as_str()), Some(e.source_record_id.as_str())])
}

impl Record {
    /// The record of `stored`; `None` when its text does not fit 64 KiB (no entry of ours
    /// comes near: values are at most a few hundred bytes).
    fn new(stored: &StoredEntry, times: &mut Times) -> Option<Record> {
        let e = &stored.entry;
        let mut text = String::new();
        let mut ends = [0u16; TEXTS];
        let mut present = 0u32;
        for (i, value) in texts(e).enumerate() {
            if let Some(v) = value {
                text.push_str(v);
                present |= 1 << i;
            }
            ends[i] = u16::try_from(text.len()).ok()?;
        }
        let m = &stored.meta;
        Some(Record {
            start: e.start,
            end: e.end,
            birth: e.patient_birth_date,
            weight: e.patient_weight_kg,
            status: e.status,
            set_by: m.status_set_by,
            row_id: m.row_id,
            times: [
                times.position(m.first_seen)?,
                times.position(m.last_updated)?,
                times.position(m.status_changed_at)?,
            ],
            text: text.into_boxed_str(),
            ends,
            present,
        })
    }

    /// Text value `i`.
    fn text(&self, i: usize) -> Option<&str> {
        if i >= TEXTS || self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(usize::from(start)..usize::from(self.ends[i]))
    }
}

impl Held<'_> {
    /// The entry, new.
    pub(crate) fn to_stored(self) -> StoredEntry {
        let r = self.record;
        let text = |i| r.text(i).unwrap_or_default().to_string();
        let mut stored = StoredEntry {
            entry: WorklistEntry::new(text(SOURCE_AT), text(RECORD_ID_AT), "", r.start),
            meta: self.meta(),
        };
        self.fill(&mut stored);
        stored
    }

    /// The entry's bookkeeping.
    fn meta(self) -> EntryMeta {
        let (r, t) = (self.record, self.times);
        EntryMeta {
            row_id: r.row_id,
            first_seen: t.at(r.times[0]),
            last_updated: t.at(r.times[1]),
            status_changed_at: t.at(r.times[2]),
            status_set_by: r.set_by,
        }
    }

    /// Makes `into` this entry, reusing its strings: a value equal to the one `into`
    /// holds (a station, a modality, a description shared by many entries) is not copied.
    pub(crate) fn fill(self, into: &mut StoredEntry) {
        let r = self.record;
        let e = &mut into.entry;
        for (i, attribute) in TEXT_ATTRIBUTES.iter().enumerate() {
            let value = r.text(i);
            if (attribute.get)(e) != value {
                (attribute.assign)(e, value);
            }
        }
        for (i, field) in [
            (SOURCE_AT, &mut e.source),
            (RECORD_ID_AT, &mut e.source_record_id),
        ] {
            let value = r.text(i).unwrap_or_default();
            if field != value {
                value.clone_into(field);
            }
        }
        e.start = r.start;
        e.end = r.end;
        e.patient_birth_date = r.birth;
        e.patient_weight_kg = r.weight;
        e.status = r.status;
        into.meta = self.meta();
    }
}

thread_local! {
    /// The entry the last scan on this thread lent (refilled from record to record), for
    /// the next one: its strings are reused, so a query of one patient allocates nothing
    /// for the values (station, modality, descriptions) it shares with the last one. A
    /// scan takes it for its duration (a scan within a scan would start empty).
    static SCRATCH: Cell<Option<StoredEntry>> = const { Cell::new(None) };
}

/// Where the indexed text values sit in a record.
struct Columns {
    patient_id: usize,
    station: usize,
    modality: usize,
    patient_name: usize,
}

impl Columns {
    fn new() -> Columns {
        Columns {
            patient_id: text_at("patient_id"),
            station: text_at("station_ae_title"),
            modality: text_at("modality"),
            patient_name: text_at("patient_name"),
        }
    }
}

/// The entries of one committed state of the database.
pub(crate) struct Image {
    /// The `worklist_generation` it was read at.
    generation: i64,
    /// In listing order: scheduled start, then row id.
    records: Vec<Record>,
    /// The records' timestamps.
    times: Times,
    columns: Columns,
    /// Positions in `records` of the entries with a Patient ID, ordered by it, then by
    /// position: the positions of one Patient ID are a run, ascending. (Most Patient IDs
    /// have one or two entries: a map of them cost ~70 bytes per entry at 100,000, this 4.)
    by_patient: Vec<u32>,
    /// Positions in `records` (ascending) of each station and modality.
    by_station: HashMap<Box<str>, Vec<u32>>,
    by_modality: HashMap<Box<str>, Vec<u32>>,
    /// Bytes derived from its entries (encoded responses), kept as long as it is.
    derived: DerivedCache,
}

impl Image {
    /// The image of `stored` (in listing order), read at `generation`, with its indexes.
    fn new(generation: i64, stored: Vec<Record>, times: Times) -> Image {
        let columns = Columns::new();
        let mut by_station: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        let mut by_modality: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        for (i, r) in stored.iter().enumerate() {
            // Positions fit: at most MAX_RESIDENT_ENTRIES records.
            let pos = i as u32;
            for (index, at) in [
                (&mut by_station, columns.station),
                (&mut by_modality, columns.modality),
            ] {
                if let Some(v) = r.text(at) {
                    match index.get_mut(v) {
                        Some(list) => list.push(pos),
                        None => {
                            index.insert(v.into(), vec![pos]);
                        }
                    }
                }
            }
        }
        for index in [&mut by_station, &mut by_modality] {
            index.values_mut().for_each(|l| l.shrink_to_fit());
            index.shrink_to_fit();
        }
        let patient = |pos: &u32| stored[*pos as usize].text(columns.patient_id);
        // Positions fit: at most MAX_RESIDENT_ENTRIES records.
        let mut by_patient: Vec<u32> = (0..stored.len() as u32)
            .filter(|p| patient(p).is_some())
            .collect();
        // Stable: ascending positions stay so within one Patient ID.
        by_patient.sort_by(|a, b| patient(a).cmp(&patient(b)));
        Image {
            generation,
            derived: DerivedCache::new(stored.len()),
            records: stored,
            times,
            columns,
            by_patient,
            by_station,
            by_modality,
        }
    }

    /// How many entries it holds.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Calls `f` with each entry `filter` admits, in listing order, exactly as
    /// [`Snapshot::scan_entries`](crate::Snapshot::scan_entries) does on the database
    /// this image was read from. The entry lent to `f` is reused for the next one.
    pub(crate) fn scan(
        &self,
        filter: &EntryFilter,
        mut f: impl FnMut(&StoredEntry) -> ControlFlow<()>,
    ) -> ScanEnd {
        self.scan_derived(filter, None, |mut lent| f(lent.entry()))
    }

    /// [`scan`](Self::scan), lending each entry with its bytes derived in `shape`
    /// (see [`derived`](crate::derived)), made into a [`StoredEntry`] only when asked.
    pub(crate) fn scan_derived(
        &self,
        filter: &EntryFilter,
        shape: Option<&[u8]>,
        f: impl FnMut(Lent<'_>) -> ControlFlow<()>,
    ) -> ScanEnd {
        self.scan_candidates(filter, shape, usize::MAX, f)
            .unwrap_or(ScanEnd::Finished)
    }

    /// [`scan_derived`](Self::scan_derived) when `filter`'s index and date bounds leave
    /// at most `max_candidates` entries to look at; `None` (nothing scanned) otherwise.
    pub(crate) fn scan_candidates(
        &self,
        filter: &EntryFilter,
        shape: Option<&[u8]>,
        max_candidates: usize,
        mut f: impl FnMut(Lent<'_>) -> ControlFlow<()>,
    ) -> Option<ScanEnd> {
        let positions: Option<&[u32]> = if let Some(v) = &filter.patient_id {
            Some(self.of_patient(v))
        } else if let Some(v) = &filter.station_ae_title {
            Some(indexed(&self.by_station, v))
        } else if let Some(v) = &filter.modality {
            Some(indexed(&self.by_modality, v))
        } else {
            None
        };
        let date = |pos: usize| self.records[pos].start.date();
        let after_from = |pos: usize| filter.from_date.is_none_or(|d| date(pos) >= d);
        let until_to = |pos: usize| filter.to_date.is_none_or(|d| date(pos) <= d);
        // The candidates: an index's positions or all, within the date range.
        let (list, lo, hi) = match positions {
            Some(list) => {
                let lo = list.partition_point(|&p| !after_from(p as usize));
                (
                    Some(list),
                    lo,
                    list.partition_point(|&p| until_to(p as usize)).max(lo),
                )
            }
            None => {
                let n = self.records.len();
                let lo = partition(n, |p| !after_from(p));
                (None, lo, partition(n, until_to).max(lo))
            }
        };
        if hi - lo > max_candidates {
            return None;
        }
        let keep = hi - lo >= KEEP_FROM_CANDIDATES;
        let kept = shape.and_then(|s| self.derived.shape(s, keep));
        let gather = RefCell::new(Gathered::default());
        let keeping = keep.then_some(&gather);
        let mut scratch = SCRATCH.take();
        let mut visit = |pos: usize| -> ControlFlow<()> {
            let record = &self.records[pos];
            if !self.admits(record, filter) {
                return ControlFlow::Continue(());
            }
            let derived = self.derived.derived(kept.as_deref(), pos, keeping);
            let held = Held {
                record,
                times: &self.times,
            };
            f(Lent::record(held, &mut scratch, derived))
        };
        let stopped = match list {
            Some(list) => list[lo..hi].iter().any(|&p| visit(p as usize).is_break()),
            None => (lo..hi).any(|p| visit(p).is_break()),
        };
        SCRATCH.set(scratch);
        if let Some(kept) = &kept {
            self.derived.publish(kept, &mut gather.borrow_mut());
        }
        Some(if stopped {
            ScanEnd::Stopped
        } else {
            ScanEnd::Finished
        })
    }

    /// The positions (ascending) of the entries of Patient ID `id`.
    fn of_patient(&self, id: &str) -> &[u32] {
        let patient = |pos: &u32| self.records[*pos as usize].text(self.columns.patient_id);
        let lo = self.by_patient.partition_point(|p| patient(p) < Some(id));
        // A Patient ID has few entries: counted forward rather than searched again.
        let run = self.by_patient[lo..]
            .iter()
            .take_while(|p| patient(p) == Some(id))
            .count();
        &self.by_patient[lo..lo + run]
    }

    /// Whether `filter` admits `record`: the condition of `filter::condition`, evaluated
    /// in memory.
    fn admits(&self, record: &Record, filter: &EntryFilter) -> bool {
        let c = &self.columns;
        let date = record.start.date();
        let exact = |want: &Option<String>, at: usize| {
            want.as_deref().is_none_or(|w| record.text(at) == Some(w))
        };
        filter.from_date.is_none_or(|d| date >= d)
            && filter.to_date.is_none_or(|d| date <= d)
            && exact(&filter.station_ae_title, c.station)
            && exact(&filter.modality, c.modality)
            && exact(&filter.patient_id, c.patient_id)
            && exact(&filter.source, SOURCE_AT)
            && (filter.statuses.is_empty() || filter.statuses.contains(&record.status))
            // Without prefixes the name is not even looked at: reading it is the first
            // touch of the record's text, a cache miss per entry on a universal query.
            && (filter.patient_name_prefixes.is_empty()
                || admits_name(&filter.patient_name_prefixes, record.text(c.patient_name)))
    }
}

/// The positions `index` lists for `key` (none when it has none).
fn indexed<'i>(index: &'i HashMap<Box<str>, Vec<u32>>, key: &str) -> &'i [u32] {
    index.get(key).map_or(&[][..], Vec::as_slice)
}

/// The first position in `0..n` where `pred` is false (`pred` true then false).
fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The patient-name condition of `filter::condition`: no prefixes (or an empty one)
/// admit any name; else a name of several component groups, or one whose search key
/// starts with one of the prefixes.
fn admits_name(prefixes: &[String], name: Option<&str>) -> bool {
    if prefixes.is_empty() || prefixes.iter().any(String::is_empty) {
        return true;
    }
    let (key, groups) = pn::name_search_key(name);
    if groups > 1 {
        return true;
    }
    let Some(key) = key.filter(|_| groups == 1) else {
        return false;
    };
    prefixes.iter().any(|p| {
        key.as_str() >= p.as_str()
            && pn::prefix_upper_bound(p).is_none_or(|upper| key.as_str() < upper.as_str())
    })
}

/// Whether a freshness check may wait: for another check under way (the lock), or to
/// open its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// A reader thread: it waits.
    Yes,
    /// An async task ([`Store::scan_resident_derived`](crate::Store::scan_resident_derived)):
    /// when it would wait, it gets no answer and leaves the scan to a reader thread.
    No,
}

/// What the freshness check last saw.
struct Seen {
    /// Its own connection: `PRAGMA data_version` tells what other connections committed.
    conn: Option<Connection>,
    data_version: i64,
    generation: i64,
}

/// The read model of one store: the current image, and how fresh it is.
#[derive(Default)]
pub(crate) struct ReadModel {
    seen: Mutex<Option<Seen>>,
    image: RwLock<Option<Arc<Image>>>,
    building: AtomicBool,
    /// A build found more than [`MAX_RESIDENT_ENTRIES`] (said once).
    too_large: AtomicBool,
}

impl ReadModel {
    /// The database's generation now; `None` when `wait` is [`Wait::No`] and the check
    /// would have to wait.
    fn generation(&self, path: &Path, wait: Wait) -> Result<Option<i64>, StoreError> {
        let mut seen = match wait {
            Wait::Yes => self.seen.lock().unwrap_or_else(|p| p.into_inner()),
            Wait::No => match self.seen.try_lock() {
                Ok(guard) => guard,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
            },
        };
        let seen = match &mut *seen {
            Some(s) => s,
            None => seen.insert(Seen {
                conn: None,
                data_version: i64::MIN,
                generation: 0,
            }),
        };
        let conn = match &mut seen.conn {
            Some(c) => c,
            None if wait == Wait::No => return Ok(None),
            None => seen.conn.insert(connections::open(path, Create::No)?),
        };
        // Cached: parsing the statement again was a fifth of the check's cost.
        let data_version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if data_version != seen.data_version {
            seen.generation = generation(conn)?;
            seen.data_version = data_version;
        }
        Ok(Some(seen.generation))
    }

    /// The image, when it holds the database as it is now; otherwise `None` (the caller
    /// reads SQLite), and a rebuild starts unless one runs. Also `None`, with nothing
    /// started, when `wait` is [`Wait::No`] and the check would wait.
    pub(crate) fn current(&self, connections: &Arc<Connections>, wait: Wait) -> Option<Arc<Image>> {
        let generation = match self.generation(connections.path(), wait) {
            Ok(Some(g)) => g,
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "read model: cannot check the generation");
                return None;
            }
        };
        let image = self.image.read().unwrap_or_else(|p| p.into_inner()).clone();
        match image {
            Some(image) if image.generation == generation => Some(image),
            _ => {
                self.rebuild(connections);
                None
            }
        }
    }

    /// Starts building a new image on a thread of its own, unless one is being built.
    pub(crate) fn rebuild(&self, connections: &Arc<Connections>) {
        if self.building.swap(true, Ordering::AcqRel) {
            return;
        }
        let connections = Arc::clone(connections);
        let spawned = std::thread::Builder::new()
            .name("mwl-read-model".into())
            .spawn(move || {
                let model = connections.read_model();
                let _held = model.install(build(&connections));
                model.building.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "read model: cannot start the thread that builds it");
            self.building.store(false, Ordering::Release);
        }
    }

    /// Builds the image now, on this thread (at start, so that the first queries find
    /// it), and opens the freshness check's connection, so that a check that may not
    /// wait ([`Wait::No`]) has it from the first query on.
    pub(crate) fn build_now(&self, connections: &Connections) -> Option<usize> {
        let held = self.install(build(connections));
        if let Err(e) = self.generation(connections.path(), Wait::Yes) {
            tracing::debug!(error = %e, "read model: cannot check the generation");
        }
        held
    }

    /// Makes `built` the current image; returns how many entries it holds.
    fn install(&self, built: Result<Option<Image>, StoreError>) -> Option<usize> {
        match built {
            Ok(Some(image)) => {
                let held = image.len();
                self.too_large.store(false, Ordering::Relaxed);
                tracing::debug!(
                    entries = image.len(),
                    generation = image.generation,
                    "read model rebuilt"
                );
                let mut current = self.image.write().unwrap_or_else(|p| p.into_inner());
                if current
                    .as_ref()
                    .is_none_or(|c| c.generation <= image.generation)
                {
                    *current = Some(Arc::new(image));
                }
                Some(held)
            }
            Ok(None) => {
                *self.image.write().unwrap_or_else(|p| p.into_inner()) = None;
                if !self.too_large.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        limit = MAX_RESIDENT_ENTRIES,
                        "the worklist holds more entries than are kept in memory: \
                         queries read the database (slower)"
                    );
                }
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "read model: cannot read the worklist; queries read the database");
                None
            }
        }
    }
}

/// The `worklist_generation` counter.
fn generation(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.prepare_cached("SELECT n FROM worklist_generation WHERE id = 1")?
        .query_row([], |r| r.get(0))
}

/// Reads every entry in one read transaction into a new image; `None` when there are
/// more than [`MAX_RESIDENT_ENTRIES`] or an entry cannot be held.
fn build(connections: &Connections) -> Result<Option<Image>, StoreError> {
    connections.with_reader(|conn| {
        stream::read(conn, |snapshot| {
            let generation = generation(conn)?;
            let count = entries::count(conn)?;
            if count > MAX_RESIDENT_ENTRIES as u64 {
                return Ok(None);
            }
            let mut records = Vec::with_capacity(count as usize);
            let mut times = Times::default();
            let mut fits = true;
            snapshot.scan_entries(&EntryFilter::default(), |stored| {
                match Record::new(&stored, &mut times) {
                    Some(r) if records.len() < MAX_RESIDENT_ENTRIES => records.push(r),
                    _ => {
                        fits = false;
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            })?;
            Ok(fits.then(|| Image::new(generation, records, times.finish())))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use jiff::civil::date;
    use worklist_model::StatusSetBy;

    fn stored(i: i64) -> StoredEntry {
        let start = date(2026, 12, 6).at(8, 0, 0, 0);
        let mut e = WorklistEntry::new("calpendo", format!("B{i}"), format!("SUB{i}"), start);
        e.patient_name = Some(format!("Doe{i}^Jane"));
        e.station_name = Some("MRI 3T".into());
        e.modality = Some("MR".into());
        e.patient_weight_kg = Some(71.5);
        e.patient_birth_date = Some(date(1980, 1, 2));
        e.end = Some(start.saturating_add(jiff::SignedDuration::from_mins(30)));
        let now = Timestamp::from_second(1_795_000_000).expect("timestamp");
        StoredEntry {
            entry: e,
            meta: EntryMeta {
                row_id: i,
                first_seen: now,
                last_updated: now,
                status_changed_at: now,
                status_set_by: StatusSetBy::Sync,
            },
        }
    }

    #[test]
    fn a_record_gives_back_the_entry_and_refills_a_used_one() {
        let a = stored(1);
        let mut b = stored(2);
        b.entry.patient_name = None;
        b.entry.station_ae_title = Some("MRI_3T".into());
        b.entry.status = StepStatus::Started;
        b.meta.last_updated = Timestamp::from_second(1_796_000_000).expect("timestamp");
        let mut times = Times::default();
        let (ra, rb) = (
            Record::new(&a, &mut times).expect("a"),
            Record::new(&b, &mut times).expect("b"),
        );
        let times = times.finish();
        assert_eq!(times.list.len(), 2, "each time held once");
        let (ra, rb) = (
            Held {
                record: &ra,
                times: &times,
            },
            Held {
                record: &rb,
                times: &times,
            },
        );
        assert_eq!(ra.to_stored(), a);
        let mut scratch = ra.to_stored();
        rb.fill(&mut scratch);
        assert_eq!(scratch, b);
        ra.fill(&mut scratch);
        assert_eq!(scratch, a);
    }

    /// Keeps `b"kept"` for each entry `filter` admits, then says how many entries of a
    /// universal scan have bytes kept.
    fn kept_after(image: &Image, filter: &EntryFilter) -> usize {
        image.scan_derived(filter, Some(b"shape"), |lent| {
            lent.derived().keep(b"kept");
            ControlFlow::Continue(())
        });
        let mut kept = 0;
        image.scan_derived(&EntryFilter::default(), Some(b"shape"), |lent| {
            kept += usize::from(lent.derived().get().is_some());
            ControlFlow::Continue(())
        });
        kept
    }

    #[test]
    fn only_scans_of_many_candidates_keep_bytes() {
        let n = KEEP_FROM_CANDIDATES + 4;
        let mut times = Times::default();
        let records = (0..n as i64)
            .map(|i| Record::new(&stored(i), &mut times).expect("record"))
            .collect();
        let image = Image::new(1, records, times.finish());
        let one_patient = EntryFilter {
            patient_id: Some("SUB3".into()),
            ..EntryFilter::default()
        };
        assert_eq!(kept_after(&image, &one_patient), 0, "one candidate");
        // A universal scan looks at every entry: it keeps (and the small scan's check
        // above kept nothing either, since it had too few candidates).
        assert_eq!(kept_after(&image, &EntryFilter::default()), n);
        // What a large scan kept serves a small one too.
        let mut seen = None;
        image.scan_derived(&one_patient, Some(b"shape"), |lent| {
            seen = lent.derived().get().map(<[u8]>::to_vec);
            ControlFlow::Continue(())
        });
        assert_eq!(seen.as_deref(), Some(&b"kept"[..]));
    }

    #[test]
    fn a_check_that_may_not_wait_gives_no_image_rather_than_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("worklist.db");
        crate::Store::open(&path).expect("store");
        let writer = connections::open(&path, Create::No).expect("writer");
        let conns = Arc::new(Connections::new(path, writer));
        let model = conns.read_model();
        // An image, but the check's connection is not open yet.
        assert_eq!(model.install(build(&conns)), Some(0));
        assert!(
            model.current(&conns, Wait::No).is_none(),
            "no connection opened yet"
        );
        assert_eq!(model.build_now(&conns), Some(0));
        assert!(model.current(&conns, Wait::No).is_some());
        let held = model.seen.lock().expect("lock");
        assert!(
            model.current(&conns, Wait::No).is_none(),
            "a check under way"
        );
        drop(held);
        assert!(model.current(&conns, Wait::No).is_some());
        assert!(model.current(&conns, Wait::Yes).is_some());
    }

    #[test]
    fn text_too_long_for_a_record_is_refused() {
        let mut e = stored(1);
        e.entry.study_description = Some("x".repeat(70_000));
        assert!(Record::new(&e, &mut Times::default()).is_none());
    }

    #[test]
    fn names_are_admitted_as_the_sql_condition_admits_them() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(admits_name(&[], None));
        assert!(admits_name(&p(&["doe"]), Some("Doe^Jane")));
        assert!(!admits_name(&p(&["smi"]), Some("Doe^Jane")));
        assert!(!admits_name(&p(&["doe"]), None));
        assert!(admits_name(&p(&["doe"]), Some("Yamada^Taro=山田^太郎")));
        assert!(admits_name(&p(&["smi", ""]), Some("Doe^Jane")));
    }
}
