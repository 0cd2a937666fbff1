//! Where C-FIND's pending responses come from: one store snapshot, read row by row on a
//! few dedicated reader threads, matched and encoded there, handed to the association in
//! pieces.
//!
//! Two paths, both reading one committed state of the store (one SQLite read transaction,
//! or one image of the in-memory worklist), so one query's responses never mix the
//! worklist before and after a concurrent sync:
//!
//! - **Small** ([`small_answer`]): the whole answer, encoded, in one buffer of at most
//!   about [`SMALL_ANSWER_BYTES`], from at most [`SMALL_SCAN_ROWS`] rows read, in one
//!   trip to a reader thread. Most console queries (today's steps of one station, one
//!   patient) end here, and while the worklist is in memory they do not even take that
//!   trip: [`inline_answer`] gathers them on the association's task when the filter leaves
//!   at most [`INLINE_CANDIDATES`] entries to look at.
//! - **Streamed** ([`Stream::start`]): an answer larger than that, or a query reading
//!   more rows (a long scan would hold a small-answer thread), is abandoned before
//!   anything of it was sent, and the query starts again (a new snapshot) as a producer
//!   that hands encoded responses to the association over a bounded channel,
//!   [`STREAM_CHUNK_BYTES`] at a time and at most [`STREAM_CHANNEL_CHUNKS`] ahead of the
//!   writer. Memory per query is therefore bounded, whatever the number of matches.
//!
//! # Kept responses
//!
//! While the store holds the worklist in memory (its read model), it also keeps each
//! entry's encoded response identifier, per *response shape*
//! ([`MwlQuery::response_shape`]: the return keys, the character set, the transfer
//! syntax), for as long as that committed state lasts (see `worklist_store::derived`).
//! A query of a shape asked before copies the bytes instead of encoding the entry again;
//! and when its candidate filter is exact ([`MwlQuery::candidate_filter_is_exact`]: the
//! console's usual today + station + modality, a PatientID, every entry) the entry is not
//! even copied out of the store to be matched. Any write makes a new image, whose cache
//! starts empty: a kept response is never older than the worklist the query reads.
//!
//! The reader threads are the process's own, not tokio's blocking pool: a console slow
//! to read a long answer holds a streaming thread, never a thread the sync worker, MPPS or
//! other queries need. [`SMALL_READERS`] threads read small answers and
//! [`MAX_STREAMING_QUERIES`] threads run producers; work beyond that waits in their queue
//! without holding any thread. Few, long-lived threads also keep memory down: every
//! thread that reads SQLite keeps allocator memory of its own (SQLite allocates through
//! the C allocator, one arena per thread), which tokio's pool, starting a thread whenever
//! none is idle at that instant, multiplied by tens under load.
//!
//! The producer stops at its next row when the association's side goes away (a
//! C-CANCEL, `max_responses` reached and counted, a write error, an association dropped
//! or aborted at shutdown): it notices the closed channel, returns, and its read
//! transaction ends.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, OnceLock};

use dicom_object::InMemDicomObject;
use tokio::sync::{mpsc, oneshot};
use worklist_store::{EntryFilter, Lent, ScanEnd, Store, StoreError, WorklistEntry};

use crate::dimse;
use crate::query::{MwlQuery, ResponseCharset};

/// An answer whose encoded responses exceed this many bytes is streamed instead.
pub const SMALL_ANSWER_BYTES: usize = 64 * 1024;
/// A query reading more rows than this (a few tens of milliseconds) is streamed instead,
/// so that the small-answer threads are never held long.
pub const SMALL_SCAN_ROWS: usize = 10_000;
/// Bytes of encoded responses a streaming producer gathers before handing them over.
pub const STREAM_CHUNK_BYTES: usize = 64 * 1024;
/// Chunks a streaming producer may be ahead of the writer.
pub const STREAM_CHANNEL_CHUNKS: usize = 2;
/// Threads reading small answers, process-wide. Reading is CPU work: more at once than
/// the cores do not answer faster.
pub const SMALL_READERS: usize = 2;
/// Streaming producers running at once, process-wide; more wait for one to finish.
pub const MAX_STREAMING_QUERIES: usize = 2;
/// A query whose filter leaves at most this many entries of the in-memory worklist to
/// look at is answered on the association's own task ([`inline_answer`]): tens of
/// microseconds at most, less than the two thread switches of a reader thread.
pub const INLINE_CANDIDATES: usize = 256;

/// A job of a reader thread.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of threads taking jobs from one queue.
struct Readers {
    queue: Mutex<std::sync::mpsc::Sender<Job>>,
    /// Threads started; 0 when none could be (jobs then go to tokio's blocking pool).
    threads: usize,
}

impl Readers {
    fn start(name: &str, n: usize) -> Readers {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = 0;
        for i in 0..n {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(job) = job else { return };
                        // A panicking job drops its result sender (its query fails);
                        // the thread goes on.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                });
            match spawned {
                Ok(_) => threads += 1,
                Err(e) => tracing::error!(error = %e, "cannot start a C-FIND reader thread"),
            }
        }
        Readers {
            queue: Mutex::new(tx),
            threads,
        }
    }

    /// Runs `job` on one of the threads, as soon as one is free.
    fn submit(&self, job: Job) {
        let job = if self.threads > 0 {
            let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            match queue.send(job) {
                Ok(()) => return,
                // Every thread is gone (they never exit while the queue lives): run it
                // on tokio's blocking pool instead.
                Err(std::sync::mpsc::SendError(job)) => job,
            }
        } else {
            job
        };
        tokio::task::spawn_blocking(job);
    }
}

/// The threads of small answers, started on first use.
fn small_readers() -> &'static Readers {
    static READERS: OnceLock<Readers> = OnceLock::new();
    READERS.get_or_init(|| Readers::start("mwl-find", SMALL_READERS))
}

/// The threads of streaming producers, started on first use.
fn stream_readers() -> &'static Readers {
    static READERS: OnceLock<Readers> = OnceLock::new();
    READERS.get_or_init(|| Readers::start("mwl-stream", MAX_STREAMING_QUERIES))
}

/// Why responses could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The store failed (the database is unavailable or holds an unreadable row).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How the pending responses of one query are encoded.
#[derive(Debug, Clone)]
pub struct ResponseEncoder {
    /// The query: matching and the keys to return.
    query: Arc<MwlQuery>,
    /// Preferred character set of the responses.
    charset: ResponseCharset,
    /// Explicit VR Little Endian (else Implicit).
    explicit: bool,
    /// Presentation context of the responses.
    context_id: u8,
    /// The encoded pending C-FIND-RSP command (the same for every item).
    pending_command: Arc<[u8]>,
    /// The peer's maximum PDU length.
    peer_max_pdu: u32,
    /// [`MwlQuery::response_shape`] of `query`, `charset` and `explicit`: the name under
    /// which the store keeps the encoded responses of this encoder.
    shape: Arc<[u8]>,
}

impl ResponseEncoder {
    /// The encoder of `query`'s responses in `charset`, in Explicit VR Little Endian when
    /// `explicit`, on presentation context `context_id`, each after `pending_command`,
    /// in PDUs of at most `peer_max_pdu` bytes.
    pub fn new(
        query: Arc<MwlQuery>,
        charset: ResponseCharset,
        explicit: bool,
        context_id: u8,
        pending_command: Arc<[u8]>,
        peer_max_pdu: u32,
    ) -> ResponseEncoder {
        let shape = query.response_shape(charset, explicit).into();
        ResponseEncoder {
            query,
            charset,
            explicit,
            context_id,
            pending_command,
            peer_max_pdu,
            shape,
        }
    }

    /// Appends the PDUs of the pending response for the entry `lent` to `out`: its
    /// identifier as the store keeps it, else encoded into `data` (and offered to the store).
    fn push(&self, lent: &mut Lent<'_>, data: &mut Vec<u8>, out: &mut Items) {
        let derived = lent.derived();
        let identifier: &[u8] = match derived.get() {
            Some(kept) => kept,
            None => {
                data.clear();
                self.query
                    .encode_response(&lent.entry().entry, self.charset, self.explicit, data);
                derived.keep(data);
                data
            }
        };
        dimse::encode_message_into(
            &mut out.bytes,
            self.context_id,
            &self.pending_command,
            Some(identifier),
            self.peer_max_pdu,
        );
        out.ends.push(out.bytes.len());
    }
}

/// Encoded pending responses, one after another, each ready to write as is.
#[derive(Debug, Default)]
pub struct Items {
    bytes: Vec<u8>,
    /// Where each response ends in `bytes`.
    ends: Vec<usize>,
}

impl Items {
    fn with_capacity(bytes: usize) -> Items {
        Items {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::new(),
        }
    }

    /// The responses, in order: each one's PDUs.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.bytes[start..end])
    }

    /// How many responses.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn byte_len(&self) -> usize {
        self.bytes.len()
    }
}

/// What [`collect_small`] found.
#[derive(Debug)]
pub enum SmallAnswer {
    /// The whole answer: the responses to send (at most `limit`) and how many entries
    /// matched (more than `limit` when truncated).
    Complete {
        /// The responses.
        items: Items,
        /// Matches in all.
        matched: u64,
    },
    /// More than [`SMALL_ANSWER_BYTES`] of responses, or more than [`SMALL_SCAN_ROWS`]
    /// rows to read: nothing kept; stream it.
    Large,
}

/// [`collect_small`] on a reader thread (waiting for a free one holds no thread). The
/// outer error says the reader failed (it panicked).
pub async fn small_answer(
    store: &Store,
    filter: EntryFilter,
    encoder: ResponseEncoder,
    limit: usize,
) -> Result<Result<SmallAnswer, ProduceError>, StoreError> {
    let (tx, rx) = oneshot::channel();
    let store = store.clone();
    small_readers().submit(Box::new(move || {
        // Asked by an association that has gone meanwhile: nothing to read.
        if tx.is_closed() {
            return;
        }
        let _ = tx.send(collect_small(
            &store,
            &filter,
            &encoder,
            limit,
            SMALL_ANSWER_BYTES,
            SMALL_SCAN_ROWS,
        ));
    }));
    rx.await
        .map_err(|_| StoreError::Task("a C-FIND reader thread failed".into()))
}

/// A row of a [`scan_matches`] listing.
#[derive(Debug, Clone, Copy)]
pub enum Row<'a> {
    /// A row the candidate filter let through but the query does not match.
    Rejected,
    /// An entry the query matches.
    Match(&'a WorklistEntry),
}

/// Where a query meets the store: reads the rows `filter` (normally
/// [`MwlQuery::candidate_filter`]) lets through, in the store's order, from one snapshot,
/// and hands each to `visit`, as a [`Row::Match`] when [`MwlQuery::matches`] accepts it.
/// The DICOMweb search ([`search_page`]) goes through it; both C-FIND paths (small and
/// streamed) go through its twin `scan_matches_lent`, which lends the same matches in the
/// same order with their kept responses (a test holds the two to the same entries), so a
/// web search matches exactly what the same C-FIND matches. Blocking.
pub fn scan_matches(
    store: &Store,
    filter: &EntryFilter,
    query: &MwlQuery,
    mut visit: impl FnMut(Row<'_>) -> ControlFlow<()>,
) -> Result<ScanEnd, StoreError> {
    store.scan_entries(filter, |stored| {
        if query.matches(&stored.entry) {
            visit(Row::Match(&stored.entry))
        } else {
            visit(Row::Rejected)
        }
    })
}

/// [`scan_matches`] for C-FIND's encoders: hands `visit` each entry the query matches
/// ([`Lent`], with the bytes the store keeps for it under `shape`, an encoder's
/// [`ResponseEncoder::shape`]), and `None` for each row the candidate filter let through
/// but the query does not match. When the filter is exact
/// ([`MwlQuery::candidate_filter_is_exact`]) entries are not matched again, so one whose
/// response is kept is never copied out of the store.
fn scan_matches_lent(
    store: &Store,
    filter: &EntryFilter,
    query: &MwlQuery,
    shape: &[u8],
    mut visit: impl FnMut(Option<&mut Lent<'_>>) -> ControlFlow<()>,
) -> Result<ScanEnd, StoreError> {
    let exact = query.candidate_filter_is_exact();
    store.scan_entries_derived(filter, shape, |mut lent| {
        visit(matched(query, exact, &mut lent))
    })
}

/// `lent` when `query` matches it (without looking when the candidate filter is `exact`).
fn matched<'a, 'b>(
    query: &MwlQuery,
    exact: bool,
    lent: &'a mut Lent<'b>,
) -> Option<&'a mut Lent<'b>> {
    (exact || query.matches(&lent.entry().entry)).then_some(lent)
}

/// One page of a search: the responses of the matches `offset..offset + limit`.
#[derive(Debug, Clone)]
pub struct SearchPage {
    /// The response identifiers, as [`MwlQuery::response`] builds them (in UTF-8).
    pub items: Vec<InMemDicomObject>,
    /// Whether more matches follow this page.
    pub more: bool,
}

/// The matches `offset..offset + limit` of `query`, in the store's order (the order of
/// C-FIND's pending responses), as response identifiers in UTF-8 (`ISO_IR 192`), from one
/// snapshot through [`scan_matches`]; reading stops at the first match past the page.
/// Blocking: the DICOMweb worklist search (PS3.18 chapter 14).
pub fn search_page(
    store: &Store,
    query: &MwlQuery,
    offset: usize,
    limit: usize,
) -> Result<SearchPage, StoreError> {
    let mut items = Vec::new();
    let mut skipped = 0;
    let mut more = false;
    scan_matches(store, &query.candidate_filter(), query, |row| {
        let Row::Match(entry) = row else {
            return ControlFlow::Continue(());
        };
        if skipped < offset {
            skipped += 1;
            return ControlFlow::Continue(());
        }
        if items.len() == limit {
            more = true;
            return ControlFlow::Break(());
        }
        items.push(query.response(entry, ResponseCharset::Utf8));
        ControlFlow::Continue(())
    })?;
    Ok(SearchPage { items, more })
}

/// Reads the matches of `filter` + `encoder.query` in one snapshot and encodes the
/// responses of the first `limit` of them, counting the rest; gives up as soon as the
/// encoded responses exceed `budget` bytes or more than `max_rows` rows were read.
/// Blocking.
pub fn collect_small(
    store: &Store,
    filter: &EntryFilter,
    encoder: &ResponseEncoder,
    limit: usize,
    budget: usize,
    max_rows: usize,
) -> Result<SmallAnswer, ProduceError> {
    let mut answer = Collector::new(encoder, limit, budget, max_rows);
    scan_matches_lent(store, filter, &encoder.query, &encoder.shape, |row| {
        answer.row(row)
    })?;
    Ok(answer.finish())
}

/// [`collect_small`] without waiting, on the caller's thread, when the store holds the
/// worklist in memory as it is now and `filter` leaves at most [`INLINE_CANDIDATES`]
/// entries to look at (a console's day, a patient); `None`, with nothing read, otherwise
/// (the caller then asks a reader thread, [`small_answer`]). Most console queries are
/// answered so, without two thread switches each.
pub fn inline_answer(
    store: &Store,
    filter: &EntryFilter,
    encoder: &ResponseEncoder,
    limit: usize,
) -> Option<SmallAnswer> {
    let exact = encoder.query.candidate_filter_is_exact();
    let mut answer = Collector::new(encoder, limit, SMALL_ANSWER_BYTES, SMALL_SCAN_ROWS);
    store.scan_resident_derived(filter, &encoder.shape, INLINE_CANDIDATES, |mut lent| {
        answer.row(matched(&encoder.query, exact, &mut lent))
    })?;
    Some(answer.finish())
}

/// A small answer being gathered, row by row.
struct Collector<'e> {
    encoder: &'e ResponseEncoder,
    limit: usize,
    budget: usize,
    max_rows: usize,
    items: Items,
    data: Vec<u8>,
    matched: u64,
    rows: usize,
    too_large: bool,
}

impl<'e> Collector<'e> {
    fn new(encoder: &'e ResponseEncoder, limit: usize, budget: usize, max_rows: usize) -> Self {
        Collector {
            encoder,
            limit,
            budget,
            max_rows,
            items: Items::default(),
            data: Vec::with_capacity(1024),
            matched: 0,
            rows: 0,
            too_large: false,
        }
    }

    /// One row of the scan: a match (encoded unless past the limit) or `None`.
    fn row(&mut self, row: Option<&mut Lent<'_>>) -> ControlFlow<()> {
        self.rows += 1;
        if self.rows > self.max_rows {
            self.too_large = true;
            return ControlFlow::Break(());
        }
        let Some(lent) = row else {
            return ControlFlow::Continue(());
        };
        self.matched += 1;
        if self.matched > self.limit as u64 {
            // Past max_responses: only counted, for the log.
            return ControlFlow::Continue(());
        }
        self.encoder.push(lent, &mut self.data, &mut self.items);
        if self.items.byte_len() > self.budget {
            self.too_large = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn finish(self) -> SmallAnswer {
        if self.too_large {
            SmallAnswer::Large
        } else {
            SmallAnswer::Complete {
                items: self.items,
                matched: self.matched,
            }
        }
    }
}

/// What a streaming producer hands over.
#[derive(Debug)]
pub enum StreamEvent {
    /// The next responses.
    Items(Items),
    /// Every row was read: how many entries matched in all (responses were sent for at
    /// most `limit` of them).
    Done {
        /// Matches in all.
        matched: u64,
    },
    /// The producer failed; nothing follows.
    Failed(ProduceError),
}

/// A running streaming producer: the receiving end of its channel.
#[derive(Debug)]
pub struct Stream {
    rx: mpsc::Receiver<StreamEvent>,
    /// Sent chunks go back to the producer to be filled again: its buffers are allocated
    /// once per query, on its thread, instead of once per chunk and freed on another
    /// thread (which the allocator reclaims only lazily).
    spent: std::sync::mpsc::Sender<Items>,
}

impl Stream {
    /// Starts a producer, on a streaming thread as soon as one is free, that reads the
    /// matches of `filter` + `encoder.query` in one snapshot, encodes the responses of the
    /// first `limit`, counts the rest, and hands them over in chunks. Dropping the
    /// [`Stream`] stops the producer at its next row (or before it starts).
    pub fn start(
        store: &Store,
        filter: EntryFilter,
        encoder: ResponseEncoder,
        limit: usize,
    ) -> Stream {
        let (tx, rx) = mpsc::channel(STREAM_CHANNEL_CHUNKS);
        let (spent, spent_rx) = std::sync::mpsc::channel();
        let store = store.clone();
        stream_readers().submit(Box::new(move || {
            produce(&store, &filter, &encoder, limit, &tx, &spent_rx);
        }));
        Stream { rx, spent }
    }

    /// Hands a sent chunk back to the producer, to be filled again.
    pub fn recycle(&self, items: Items) {
        // The producer may be gone: the chunk is then simply freed.
        let _ = self.spent.send(items);
    }

    /// The next event; `None` when the producer ended without [`StreamEvent::Done`] or
    /// [`StreamEvent::Failed`] (it panicked).
    pub async fn next(&mut self) -> Option<StreamEvent> {
        self.rx.recv().await
    }
}

/// The streaming producer's loop (blocking).
fn produce(
    store: &Store,
    filter: &EntryFilter,
    encoder: &ResponseEncoder,
    limit: usize,
    tx: &mpsc::Sender<StreamEvent>,
    spent: &std::sync::mpsc::Receiver<Items>,
) {
    let fresh = || match spent.try_recv() {
        Ok(mut items) => {
            items.bytes.clear();
            items.ends.clear();
            items
        }
        Err(_) => Items::with_capacity(STREAM_CHUNK_BYTES + 4096),
    };
    let mut items = fresh();
    let mut data = Vec::with_capacity(1024);
    let mut matched: u64 = 0;
    let mut gone = false;
    let scanned = scan_matches_lent(store, filter, &encoder.query, &encoder.shape, |row| {
        if tx.is_closed() {
            gone = true;
            return ControlFlow::Break(());
        }
        let Some(lent) = row else {
            return ControlFlow::Continue(());
        };
        matched += 1;
        if matched > limit as u64 {
            return ControlFlow::Continue(());
        }
        encoder.push(lent, &mut data, &mut items);
        if items.byte_len() >= STREAM_CHUNK_BYTES {
            let full = std::mem::replace(&mut items, fresh());
            if tx.blocking_send(StreamEvent::Items(full)).is_err() {
                gone = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    if gone {
        return;
    }
    let last = match scanned {
        Err(e) => StreamEvent::Failed(e.into()),
        Ok(_) => {
            if !items.is_empty() && tx.blocking_send(StreamEvent::Items(items)).is_err() {
                return;
            }
            StreamEvent::Done { matched }
        }
    };
    // The transaction has ended; whether the writer still listens no longer matters.
    let _ = tx.blocking_send(last);
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::{DataSetSequence, PrimitiveValue};
    use dicom_core::{DataElement, Tag, VR};
    use dicom_dictionary_std::tags;
    use jiff::civil::date;
    use worklist_store::{OnCancel, StepStatus, SyncWindow};

    /// A store holding `n` scheduled steps on 2026-11-26, and its directory.
    fn store(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("worklist.db")).expect("open");
        sync(&store, n, "Test");
        (dir, store)
    }

    /// Syncs `n` scheduled steps on 2026-11-26 into `store`, named `Subject<i>^<given>`.
    fn sync(store: &Store, n: usize, given: &str) {
        let day = date(2026, 11, 26);
        let entries = (0..n)
            .map(|i| {
                let start = day.at(8 + (i / 60) as i8 % 10, (i % 60) as i8, 0, 0);
                let mut e =
                    WorklistEntry::new("calpendo", format!("B{i}"), format!("SUB{i}"), start);
                e.patient_name = Some(format!("Subject{i}^{given}"));
                e.modality = Some("MR".into());
                e
            })
            .collect();
        put(store, entries, 1);
    }

    /// Syncs `entries` from 2026-11-26 for `days` days into `store`.
    fn put(store: &Store, entries: Vec<WorklistEntry>, days: i64) {
        let day = date(2026, 11, 26);
        let window = SyncWindow {
            start: day.at(0, 0, 0, 0),
            end: day
                .saturating_add(jiff::Span::new().days(days))
                .at(0, 0, 0, 0),
        };
        store
            .reconcile(
                "calpendo",
                &window,
                entries,
                OnCancel::Discontinue,
                jiff::Timestamp::from_second(1_795_000_000).expect("timestamp"),
            )
            .expect("reconcile");
    }

    fn encoder() -> ResponseEncoder {
        ResponseEncoder::new(
            Arc::new(MwlQuery::every_attribute()),
            ResponseCharset::Utf8,
            false,
            1,
            Arc::from(&b"pending"[..]),
            16_384,
        )
    }

    fn collect(store: &Store, limit: usize, budget: usize, rows: usize) -> SmallAnswer {
        let filter = encoder().query.candidate_filter();
        collect_small(store, &filter, &encoder(), limit, budget, rows).expect("collect")
    }

    #[test]
    fn search_pages_follow_the_c_find_order_and_say_whether_more_follow() {
        let (_dir, store) = store(7);
        let query = MwlQuery::every_attribute();
        let id = |o: &InMemDicomObject| {
            o.get(dicom_dictionary_std::tags::PATIENT_ID)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.to_string())
                .unwrap_or_default()
        };
        let page = |offset, limit| search_page(&store, &query, offset, limit).expect("page");
        let first = page(0, 3);
        assert_eq!(
            first.items.iter().map(id).collect::<Vec<_>>(),
            ["SUB0", "SUB1", "SUB2"]
        );
        assert!(first.more);
        let last = page(4, 3);
        assert_eq!(
            last.items.iter().map(id).collect::<Vec<_>>(),
            ["SUB4", "SUB5", "SUB6"]
        );
        assert!(!last.more, "exactly the rest: nothing more");
        assert!(page(7, 3).items.is_empty());
        // The same matches C-FIND's small path counts.
        let SmallAnswer::Complete { matched, .. } = collect(&store, 100, usize::MAX, 100) else {
            panic!("small");
        };
        assert_eq!(matched, 7);
    }

    /// An identifier: top-level keys, and step keys in one step item.
    fn identifier(top: &[(Tag, VR, &str)], step: &[(Tag, VR, &str)]) -> InMemDicomObject {
        let element = |(tag, vr, v): &(Tag, VR, &str)| {
            DataElement::new(*tag, *vr, PrimitiveValue::from(v.to_string()))
        };
        let mut obj = InMemDicomObject::from_element_iter(top.iter().map(element));
        obj.put(DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![InMemDicomObject::from_element_iter(
                step.iter().map(element),
            )]),
        ));
        obj
    }

    /// Without matching again, a scan of an exact candidate filter lends exactly the
    /// entries the query matches; with any other filter, entries are matched.
    #[test]
    fn entries_are_matched_again_unless_the_filter_is_exact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("worklist.db")).expect("open");
        let day = date(2026, 11, 26);
        let statuses = [
            StepStatus::Scheduled,
            StepStatus::Started,
            StepStatus::Completed,
        ];
        let entries = (0..120)
            .map(|i| {
                let start = day.saturating_add(jiff::Span::new().days(i % 3)).at(
                    8 + (i % 9) as i8,
                    0,
                    0,
                    0,
                );
                let mut e =
                    WorklistEntry::new("calpendo", format!("B{i}"), format!("SUB{}", i % 7), start);
                e.station_ae_title =
                    Some(["MRI_A", "MRI_B", "EEG_1"][(i % 4).min(2) as usize].into());
                e.modality = Some(["MR", "EEG"][(i % 5 == 0) as usize].into());
                e.status = statuses[(i % 6).min(2) as usize];
                e
            })
            .collect();
        put(&store, entries, 4);
        assert_eq!(store.enable_read_model(), Some(120));
        let (ae, mo, da, tm, st, pid, name) = (
            tags::SCHEDULED_STATION_AE_TITLE,
            tags::MODALITY,
            tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
            tags::SCHEDULED_PROCEDURE_STEP_START_TIME,
            tags::SCHEDULED_PROCEDURE_STEP_STATUS,
            tags::PATIENT_ID,
            tags::PATIENT_NAME,
        );
        let cases: Vec<(InMemDicomObject, bool)> = vec![
            (identifier(&[], &[]), true),
            (
                identifier(
                    &[],
                    &[
                        (ae, VR::AE, "MRI_A"),
                        (mo, VR::CS, "MR"),
                        (da, VR::DA, "20261126"),
                    ],
                ),
                true,
            ),
            (
                identifier(&[(pid, VR::LO, "SUB3")], &[(st, VR::CS, "COMPLETED")]),
                true,
            ),
            (
                identifier(
                    &[],
                    &[
                        (da, VR::DA, "20261127-"),
                        (st, VR::CS, "SCHEDULED\\STARTED"),
                    ],
                ),
                true,
            ),
            (
                identifier(&[], &[(da, VR::DA, "20261126"), (tm, VR::TM, "1000-1200")]),
                false,
            ),
            (identifier(&[], &[(ae, VR::AE, "MRI_*")]), false),
            (identifier(&[], &[(mo, VR::CS, "MR\\EEG")]), false),
            (
                identifier(&[(name, VR::PN, "")], &[(tm, VR::TM, "0900")]),
                false,
            ),
            // A status no step has: the filter, holding no status, admits every status.
            (identifier(&[], &[(st, VR::CS, "BOGUS")]), false),
        ];
        let shape = encoder().shape;
        for (i, (obj, exact)) in cases.iter().enumerate() {
            let q = MwlQuery::parse(obj).expect("query");
            assert_eq!(q.candidate_filter_is_exact(), *exact, "case {i}");
            let filter = q.candidate_filter();
            let mut matched = Vec::new();
            scan_matches(&store, &filter, &q, |row| {
                if let Row::Match(e) = row {
                    matched.push(e.source_record_id.clone());
                }
                ControlFlow::Continue(())
            })
            .expect("scan");
            let mut lent_ids = Vec::new();
            scan_matches_lent(&store, &filter, &q, &shape, |row| {
                if let Some(lent) = row {
                    lent_ids.push(lent.entry().entry.source_record_id.clone());
                }
                ControlFlow::Continue(())
            })
            .expect("scan");
            assert_eq!(lent_ids, matched, "case {i}");
            assert!(
                !matched.is_empty() || i == 2 || i == 8,
                "case {i} matches something"
            );
        }
    }

    /// The bytes of a small answer of every entry.
    fn answer_bytes(store: &Store) -> Vec<u8> {
        match collect(store, usize::MAX, SMALL_ANSWER_BYTES, SMALL_SCAN_ROWS) {
            SmallAnswer::Complete { items, .. } => items.bytes,
            SmallAnswer::Large => panic!("a small answer"),
        }
    }

    #[test]
    fn kept_responses_equal_encoded_ones_and_follow_writes() {
        let (dir, store) = store(40);
        assert_eq!(store.enable_read_model(), Some(40));
        // Another handle on the same database, reading SQLite and encoding every time.
        let plain = Store::open(dir.path().join("worklist.db")).expect("open");
        let encoded = answer_bytes(&plain);
        assert_eq!(
            answer_bytes(&store),
            encoded,
            "first answer: encoded and kept"
        );
        assert_eq!(answer_bytes(&store), encoded, "second answer: kept bytes");
        // A write makes a new image: nothing kept of the old one is sent again.
        sync(&store, 40, "Renamed");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !store.read_model_is_current() {
            assert!(std::time::Instant::now() < deadline, "the image is rebuilt");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let renamed = answer_bytes(&plain);
        assert_ne!(renamed, encoded);
        assert_eq!(answer_bytes(&store), renamed);
        assert_eq!(answer_bytes(&store), renamed);
    }

    #[test]
    fn inline_answers_come_only_from_a_current_in_memory_worklist_of_few_candidates() {
        let (dir, store) = store(40);
        let enc = encoder();
        let filter = enc.query.candidate_filter();
        assert!(
            inline_answer(&store, &filter, &enc, usize::MAX).is_none(),
            "not while the worklist is read from SQLite"
        );
        assert_eq!(store.enable_read_model(), Some(40));
        let plain = Store::open(dir.path().join("worklist.db")).expect("open");
        match inline_answer(&store, &filter, &enc, 5) {
            Some(SmallAnswer::Complete { items, matched }) => {
                assert_eq!((items.len(), matched), (5, 40));
            }
            other => panic!("an inline answer of 5: {other:?}"),
        }
        match inline_answer(&store, &filter, &enc, usize::MAX) {
            Some(SmallAnswer::Complete { items, .. }) => {
                assert_eq!(items.bytes, answer_bytes(&plain), "the same bytes");
            }
            other => panic!("an inline answer: {other:?}"),
        }
        // More candidates than INLINE_CANDIDATES: left to a reader thread.
        sync(&store, INLINE_CANDIDATES + 1, "Test");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !store.read_model_is_current() {
            assert!(std::time::Instant::now() < deadline, "the image is rebuilt");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(inline_answer(&store, &filter, &enc, usize::MAX).is_none());
    }

    #[test]
    fn small_answers_are_whole_and_large_ones_are_given_up() {
        let (_dir, store) = store(30);
        match collect(&store, usize::MAX, SMALL_ANSWER_BYTES, SMALL_SCAN_ROWS) {
            SmallAnswer::Complete { items, matched } => {
                assert_eq!(items.len(), 30);
                assert_eq!(matched, 30);
                assert!(items.iter().all(|i| i.len() > 100));
            }
            SmallAnswer::Large => panic!("30 entries are a small answer"),
        }
        // Past max_responses: that many responses, every match counted.
        match collect(&store, 5, SMALL_ANSWER_BYTES, SMALL_SCAN_ROWS) {
            SmallAnswer::Complete { items, matched } => {
                assert_eq!((items.len(), matched), (5, 30));
            }
            SmallAnswer::Large => panic!("5 responses are a small answer"),
        }
        // Too many bytes, or too many rows to read: streamed instead.
        assert!(matches!(
            collect(&store, usize::MAX, 1000, SMALL_SCAN_ROWS),
            SmallAnswer::Large
        ));
        assert!(matches!(
            collect(&store, usize::MAX, SMALL_ANSWER_BYTES, 10),
            SmallAnswer::Large
        ));
    }

    /// Every event of a stream: (responses, matched in all).
    async fn drain(mut stream: Stream) -> (usize, u64) {
        let mut responses = 0;
        loop {
            match stream.next().await {
                Some(StreamEvent::Items(items)) => {
                    responses += items.len();
                    stream.recycle(items);
                }
                Some(StreamEvent::Done { matched }) => return (responses, matched),
                Some(StreamEvent::Failed(e)) => panic!("stream failed: {e}"),
                None => panic!("stream ended without Done"),
            }
        }
    }

    #[tokio::test]
    async fn streams_hand_over_every_response_and_stop_when_dropped() {
        let (_dir, store) = store(600);
        let filter = encoder().query.candidate_filter();
        let all = Stream::start(&store, filter.clone(), encoder(), usize::MAX);
        assert_eq!(drain(all).await, (600, 600));
        let limited = Stream::start(&store, filter.clone(), encoder(), 100);
        assert_eq!(drain(limited).await, (100, 600));
        // Streams given up after their first chunk (more than there are streaming
        // threads): each producer stops, and the next stream still runs to its end.
        for _ in 0..MAX_STREAMING_QUERIES + 2 {
            let mut stream = Stream::start(&store, filter.clone(), encoder(), usize::MAX);
            assert!(matches!(stream.next().await, Some(StreamEvent::Items(_))));
        }
        let last = Stream::start(&store, filter, encoder(), usize::MAX);
        let done = tokio::time::timeout(std::time::Duration::from_secs(30), drain(last)).await;
        assert_eq!(
            done.expect("a stream after dropped ones finishes"),
            (600, 600)
        );
    }
}
