//! A fake REDCap API server.
//!
//! - [`project`]: the data dictionary ([`Project`], [`Field`]): fields, instruments,
//!   which instruments repeat; the CPIP layout Pylantir expects is the default.
//! - [`records`]: the data ([`FakeRecord`], [`RepeatInstance`]), each record's
//!   modification time and the clock (real, or set by a test) that stamps it.
//! - [`params`]: reading a POSTed form into a typed [`ApiRequest`], and the 400
//!   messages ([`ParamError`]); pure.
//! - [`export`]: the flat record export (column selection, record filter, repeat
//!   rows); pure.
//! - [`fixture`]: the sample day ([`SAMPLE_FIXTURE`], [`load_fixture`], dates relative
//!   to today) and [`synthetic_records`] for benchmarks.
//! - `server`: the HTTP side: routing, method and token checks, latency, faults,
//!   counters.
//! - this file: [`FakeRedcap`], the handle a test holds (start, edit the data while
//!   running, latency, faults, [`Stats`], shutdown), and its [`FakeConfig`].
//!
//! Life of a request: a client POSTs `token=...&content=record&format=json&type=flat
//! &fields[0]=study_id&dateRangeBegin=...` to [`FakeRedcap::api_url`]. `server` counts
//! it, sleeps the configured latency, refuses anything but POST (405) and a missing or
//! wrong token (403, `{"error": "You do not have permissions to use the API"}`), then
//! hands the body to [`params`], which decodes the form and checks `content`, `format`,
//! `type` and the date range (400 with `{"error": ...}` otherwise). For a record export
//! `server` takes the records, in export order, from the [`records`] store under the
//! state lock and [`export`] selects columns (400 for a field the [`Project`] lacks),
//! keeps the records modified in the range and builds one row per record plus one per
//! repeating-instrument instance. `server` then serializes the rows, lets an injected
//! [`Fault`] replace or spoil the answer, and counts what was returned.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use redcap_fake::{FakeConfig, FakeRedcap, SAMPLE_FIXTURE, load_fixture};
//!
//! let server = FakeRedcap::start(FakeConfig::default()).await?;
//! let today = jiff::civil::date(2026, 11, 26);
//! server.set_records(load_fixture(SAMPLE_FIXTURE, today).map_err(std::io::Error::other)?);
//! println!("REDCap API at {} (token {})", server.api_url(), server.token());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::SignedDuration;
use jiff::civil::DateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub mod export;
pub mod fixture;
pub mod params;
pub mod project;
pub mod records;
mod server;

pub use fixture::{FixtureError, SAMPLE_FIXTURE, load_fixture, synthetic_records};
pub use params::{ApiRequest, ParamError, RecordQuery};
pub use project::{Field, Project, ProjectError};
pub use records::{FakeRecord, RepeatInstance};

use records::{Clock, RecordStore};

/// The token a [`FakeConfig::default`] accepts: 32 hexadecimal digits, like a real
/// REDCap project token.
pub const DEFAULT_TOKEN: &str = "0123456789ABCDEF0123456789ABCDEF";

/// How long a shutdown waits for requests in progress before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Configuration of a [`FakeRedcap`].
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Address to listen on; port 0 picks a free port (default `127.0.0.1:0`).
    pub bind: SocketAddr,
    /// The API token the server accepts (default [`DEFAULT_TOKEN`]).
    pub token: String,
    /// The REDCap server's IANA time zone (default `America/Edmonton`), from the
    /// bundled database: modification times and the date range are civil times there.
    pub timezone: String,
    /// Delay before answering each request (default zero).
    pub latency: Duration,
    /// The data dictionary (default [`Project::cpip`]).
    pub project: Project,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            token: DEFAULT_TOKEN.to_owned(),
            timezone: "America/Edmonton".to_owned(),
            latency: Duration::ZERO,
            project: Project::cpip(),
        }
    }
}

/// A failure to inject into answers; see [`FakeRedcap::set_fault`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and `{"error": "injected fault (HTTP n)"}`.
    Status(u16),
    /// Answer 200 with a body that is not valid JSON.
    InvalidJson,
    /// Answer 200 with the normal body cut short of its `Content-Length`, then close
    /// the connection.
    TruncatedBody,
    /// Never answer (until the server shuts down, which answers 503).
    Hang,
    /// Answer 200 with a chunked body (no `Content-Length`) that never ends: a JSON array
    /// opening, then one [`ENDLESS_CHUNK`]-byte chunk of rows after another, about one a
    /// millisecond (a bounded rate, so that a client that buffers it all grows by tens
    /// of MB a second, not by GB). The bytes produced are counted in
    /// [`Stats::fault_body_bytes`].
    EndlessBody,
    /// Answer 200 with a `Content-Length` of this many bytes and a body of that length
    /// (an empty JSON array padded with spaces), produced as it is sent and counted in
    /// [`Stats::fault_body_bytes`].
    OversizedBody(u64),
    /// Answer with this redirect status (301, 302, 303, 307 or 308) and a `Location` of
    /// `to` (`http://host:port`, no path) followed by `/api/`: to another server
    /// (another port is another host), or to this one. A client that follows a 307 or
    /// 308 sends the form, token included, again.
    Redirect {
        /// The status.
        status: u16,
        /// Scheme, host and port of the target.
        to: String,
    },
}

/// The size of each chunk of a [`Fault::EndlessBody`].
pub const ENDLESS_CHUNK: usize = 64 * 1024;

/// Which requests a [`Fault`] applies to (always after the token check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultScope {
    /// Every authorized request.
    All,
    /// `content=metadata`.
    Metadata,
    /// `content=record`.
    Record,
}

/// A snapshot of the server's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every HTTP request received.
    pub requests: u64,
    /// Authorized `content=metadata` requests.
    pub metadata_requests: u64,
    /// Authorized `content=record` requests (including those refused with 400).
    pub record_requests: u64,
    /// Authorized requests of another known content (`project`, `version`).
    pub other_requests: u64,
    /// Requests refused with 403 (missing or wrong token).
    pub forbidden: u64,
    /// Requests refused with 400, 404 or 405.
    pub bad_requests: u64,
    /// Records in record exports answered normally (each distinct record once per
    /// answer); an answer a fault replaced or spoiled does not count.
    pub records_returned: u64,
    /// Rows in those answers (one per record plus one per repeat instance).
    pub rows_returned: u64,
    /// Highest number of requests in flight at once (latency included).
    pub max_in_flight: u64,
    /// The form of the last POST, in order, without the `token`.
    pub last_params: Vec<(String, String)>,
    /// Body bytes produced by [`Fault::EndlessBody`] and [`Fault::OversizedBody`]
    /// answers (what the client was sent, up to one chunk more than it read).
    pub fault_body_bytes: u64,
}

/// The fault currently injected, if any.
#[derive(Clone, Debug)]
struct ActiveFault {
    fault: Fault,
    scope: FaultScope,
    /// `None`: until cleared; `Some(n)`: for the next `n` matching requests.
    remaining: Option<u32>,
}

/// The mutable part of the server state.
#[derive(Debug)]
struct State {
    project: Project,
    store: RecordStore,
    latency: Duration,
    fault: Option<ActiveFault>,
    last_params: Vec<(String, String)>,
}

/// Request counters.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    metadata: AtomicU64,
    record: AtomicU64,
    other: AtomicU64,
    forbidden: AtomicU64,
    bad: AtomicU64,
    records_returned: AtomicU64,
    rows_returned: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    fault_body_bytes: Arc<AtomicU64>,
}

/// State shared between the handle and the request handlers.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    counters: Counters,
    token: String,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state whole (single assignments, or a
        // record edit a panicking closure may leave half done, which a test sees), so
        // poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake REDCap. Dropping it stops the server too (without waiting).
#[derive(Debug)]
pub struct FakeRedcap {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl FakeRedcap {
    /// Binds `config.bind` and starts serving in the background, with no records.
    ///
    /// Fails if the address cannot be bound or `config.timezone` is not a zone of the
    /// bundled time zone database (`InvalidInput`).
    pub async fn start(config: FakeConfig) -> std::io::Result<FakeRedcap> {
        let tz = jiff::tz::TimeZoneDatabase::bundled()
            .get(&config.timezone)
            .map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("unknown time zone {:?}: {e}", config.timezone),
                )
            })?;
        let listener = TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                project: config.project,
                store: RecordStore::new(tz),
                latency: config.latency,
                fault: None,
                last_params: Vec::new(),
            }),
            counters: Counters::default(),
            token: config.token,
            shutdown,
        });
        let task = tokio::spawn(server::serve(listener, Arc::clone(&shared)));
        tracing::debug!(%addr, "fake REDCap listening");
        Ok(FakeRedcap {
            shared,
            addr,
            task: Some(task),
        })
    }

    /// `http://IP:PORT`, without the API path.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API URL clients POST to: `http://IP:PORT/api/` (as `REDCAP_API_URL`).
    pub fn api_url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token the server accepts.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Replaces the data dictionary (the records stay).
    pub fn set_project(&self, project: Project) {
        self.shared.lock().project = project;
    }

    /// The data dictionary.
    pub fn project(&self) -> Project {
        self.shared.lock().project.clone()
    }

    /// Replaces all records (a later record with the same id wins), all modified now.
    pub fn set_records(&self, records: Vec<FakeRecord>) {
        self.shared.lock().store.replace_all(records);
    }

    /// Adds a record, or replaces the record with the same id; modified now.
    pub fn upsert_record(&self, record: FakeRecord) {
        self.shared.lock().store.upsert(record);
    }

    /// Changes a record in place (its id stays) and marks it modified now; false if
    /// there is no such record.
    pub fn edit_record(&self, record_id: &str, edit: impl FnOnce(&mut FakeRecord)) -> bool {
        self.shared.lock().store.edit(record_id, edit)
    }

    /// Sets a value on a record's non-repeating instruments; false if no such record.
    pub fn set_field(&self, record_id: &str, field: &str, value: &str) -> bool {
        self.edit_record(record_id, |r| {
            r.fields.insert(field.to_owned(), value.to_owned());
        })
    }

    /// Adds a repeating-instrument instance to a record, or replaces the instance with
    /// the same instrument and number; false if no such record.
    pub fn upsert_instance(&self, record_id: &str, instance: RepeatInstance) -> bool {
        self.edit_record(record_id, |r| r.put_instance(instance))
    }

    /// Sets a value on one instance; false if the record or the instance is missing
    /// (then nothing changes, not even the modification time).
    pub fn set_instance_field(
        &self,
        record_id: &str,
        instrument: &str,
        instance: u32,
        field: &str,
        value: &str,
    ) -> bool {
        let mut state = self.shared.lock();
        let exists = state.store.get(record_id).is_some_and(|s| {
            s.record
                .repeats
                .iter()
                .any(|r| r.instrument == instrument && r.instance == instance)
        });
        exists
            && state.store.edit(record_id, |r| {
                if let Some(i) = r.instance_mut(instrument, instance) {
                    i.fields.insert(field.to_owned(), value.to_owned());
                }
            })
    }

    /// Deletes one instance (REDCap logs it on the record, so the record counts as
    /// modified now); false if the record or the instance is missing.
    pub fn remove_instance(&self, record_id: &str, instrument: &str, instance: u32) -> bool {
        let mut state = self.shared.lock();
        let exists = state.store.get(record_id).is_some_and(|s| {
            s.record
                .repeats
                .iter()
                .any(|r| r.instrument == instrument && r.instance == instance)
        });
        exists
            && state.store.edit(record_id, |r| {
                r.remove_instance(instrument, instance);
            })
    }

    /// Deletes a record; returns whether it existed. A deleted record is in no
    /// export, whatever the date range.
    pub fn remove_record(&self, record_id: &str) -> bool {
        self.shared.lock().store.remove(record_id)
    }

    /// A record, if present.
    pub fn record(&self, record_id: &str) -> Option<FakeRecord> {
        let state = self.shared.lock();
        state.store.get(record_id).map(|s| s.record.clone())
    }

    /// All records, in export order.
    pub fn records(&self) -> Vec<FakeRecord> {
        let state = self.shared.lock();
        state
            .store
            .in_export_order()
            .into_iter()
            .map(|s| s.record.clone())
            .collect()
    }

    /// When a record was last modified (server-local civil time), if present.
    pub fn modified_at(&self, record_id: &str) -> Option<DateTime> {
        self.shared.lock().store.get(record_id).map(|s| s.modified)
    }

    /// Back- or forward-dates a record's modification time; false if no such record.
    pub fn set_modified_at(&self, record_id: &str, at: DateTime) -> bool {
        self.shared.lock().store.set_modified(record_id, at)
    }

    /// The clock's current time (server-local civil time, whole seconds).
    pub fn now(&self) -> DateTime {
        self.shared.lock().store.now()
    }

    /// Fixes the clock that stamps modifications at `at` (server-local civil time).
    pub fn set_now(&self, at: DateTime) {
        self.shared.lock().store.set_clock(Clock::Fixed(at));
    }

    /// Moves the clock by `by`; a real clock becomes fixed at now + `by`.
    pub fn advance_clock(&self, by: SignedDuration) {
        self.shared.lock().store.advance(by);
    }

    /// Stamps modifications with the real clock again.
    pub fn use_real_clock(&self) {
        self.shared.lock().store.set_clock(Clock::Real);
    }

    /// Sets the delay before answering each request (from the next request on).
    pub fn set_latency(&self, per_request: Duration) {
        self.shared.lock().latency = per_request;
    }

    /// Injects `fault` into every request in `scope` until [`clear_fault`] (replaces
    /// the current fault).
    ///
    /// [`clear_fault`]: FakeRedcap::clear_fault
    pub fn set_fault(&self, fault: Fault, scope: FaultScope) {
        self.shared.lock().fault = Some(ActiveFault {
            fault,
            scope,
            remaining: None,
        });
    }

    /// Injects `fault` into the next `times` requests in `scope` only, then clears it
    /// (replaces the current fault): "fail twice, then succeed".
    pub fn set_fault_times(&self, fault: Fault, scope: FaultScope, times: u32) {
        self.shared.lock().fault = (times > 0).then_some(ActiveFault {
            fault,
            scope,
            remaining: Some(times),
        });
    }

    /// Removes the current fault.
    pub fn clear_fault(&self) {
        self.shared.lock().fault = None;
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let load = |a: &AtomicU64| a.load(Ordering::SeqCst);
        Stats {
            requests: load(&c.requests),
            metadata_requests: load(&c.metadata),
            record_requests: load(&c.record),
            other_requests: load(&c.other),
            forbidden: load(&c.forbidden),
            bad_requests: load(&c.bad),
            records_returned: load(&c.records_returned),
            rows_returned: load(&c.rows_returned),
            max_in_flight: load(&c.max_in_flight),
            last_params: self.shared.lock().last_params.clone(),
            fault_body_bytes: load(&c.fault_body_bytes),
        }
    }

    /// Zeroes the counters and forgets the last params; `max_in_flight` restarts from
    /// the requests now in flight.
    pub fn reset_stats(&self) {
        let c = &self.shared.counters;
        for counter in [
            &c.requests,
            &c.metadata,
            &c.record,
            &c.other,
            &c.forbidden,
            &c.bad,
            &c.records_returned,
            &c.rows_returned,
            &c.fault_body_bytes,
        ] {
            counter.store(0, Ordering::SeqCst);
        }
        c.max_in_flight
            .store(c.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
        self.shared.lock().last_params.clear();
    }

    /// Stops accepting connections, answers hung requests 503, lets requests in
    /// progress finish (anything still running after a grace period is dropped) and
    /// waits for the server task.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for FakeRedcap {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}
