//! A fake Calpendo HTTP server.
//!
//! [`FakeCalpendo`] serves the parts of the Calpendo JSON API that mwlbridge uses
//! (booking list queries, booking details, MRI operator look-ups) over real HTTP on a
//! local socket, under both the `/webdav` and the `/api` path prefixes, with HTTP Basic
//! auth. Tests drive it through its handle: they replace the bookings, add latency,
//! inject faults (error statuses, invalid or truncated bodies, hangs, slow bodies,
//! connection resets, endless or oversized bodies, redirects), make it behave like an
//! older server (ignore `?paths=`, refuse `STARTS_WITH`) and read request statistics,
//! including the highest number of requests in flight at once.
//!
//! - this file: [`FakeCalpendo`] (the handle), [`FakeConfig`], [`FakeBooking`], faults and
//!   statistics.
//! - `fixture`: loading a JSON fixture of bookings ([`load_fixture`]) and generating many
//!   ([`synthetic_bookings`], and the busiest console's day: [`busy_day_bookings`]).
//! - `query`: the Calpendo query path language as Calpendo documents it
//!   (`AND/status/EQ/Approved/OR/resource.name/STARTS_WITH/3T/CLOSE`: `AND OR NAND NOR`,
//!   `CLOSE`, the text, time and number relations, `__NULL__`, `updated`), parsed and
//!   matched against bookings.
//! - `property`: a booking's values by data path, for query terms and for `?paths=`
//!   answers (each value named by its path, a reference as `{formattedName, id}`).
//! - `render`: the JSON bodies Calpendo answers with, in its two booking shapes.
//! - `server`: connections, routing, Basic auth, latency and fault injection.
//!
//! Life of a request: `server` accepts the connection, checks the Basic auth and any
//! injected fault or latency, and routes by path; a booking list query goes to `query`,
//! which parses the path and selects the matching bookings of the handle's current set;
//! `render` writes them (or one booking's details, or an MRI operator) as Calpendo would,
//! and the request is counted in the statistics the test reads back.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use calpendo_fake::{FakeCalpendo, FakeConfig, SAMPLE_FIXTURE, load_fixture};
//!
//! let server = FakeCalpendo::start(FakeConfig::default()).await?;
//! let today = jiff::civil::date(2026, 11, 26);
//! let bookings = load_fixture(SAMPLE_FIXTURE, today).map_err(std::io::Error::other)?;
//! server.set_bookings(bookings);
//! println!("Calpendo at {}/webdav", server.base_url());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod fixture;
mod property;
mod query;
mod render;
mod server;

pub use fixture::{
    BUSY_DAY_MAX, BUSY_RESOURCE, FixtureError, busy_day_bookings, load_fixture, synthetic_bookings,
};

/// A realistic day of bookings (plus one the day before and a few the day after), with
/// dates relative to "today": load it with [`load_fixture`].
pub const SAMPLE_FIXTURE: &str = include_str!("../fixtures/sample_day.json");

/// Configuration of a [`FakeCalpendo`].
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Address to listen on; port 0 picks a free port (default `127.0.0.1:0`).
    pub bind: SocketAddr,
    /// Basic-auth user name that the server accepts (default `mwlbridge`).
    pub username: String,
    /// Basic-auth password that the server accepts (default `secret`).
    pub password: String,
    /// Calpendo's local IANA time zone (default `America/Edmonton`), resolved with the
    /// bundled time zone database. Booking times are civil times in this zone.
    pub timezone: String,
    /// Delay before answering each request (default zero).
    pub latency: Duration,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            username: "mwlbridge".to_owned(),
            password: "secret".to_owned(),
            timezone: "America/Edmonton".to_owned(),
            latency: Duration::ZERO,
        }
    }
}

/// How the booking-detail response of a booking is shaped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BookingShape {
    /// Top-level `formattedName`, `title` and `status`.
    #[default]
    Classic,
    /// "Calpendo 11": no top-level `formattedName`/`title`/`status`; they are
    /// `properties.title`, `properties.status` and `properties.dateRange`.
    Calpendo11,
}

/// One booking held by the fake server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FakeBooking {
    /// Calpendo booking id.
    pub id: i64,
    /// Start, in Calpendo's local time ([`FakeConfig::timezone`]).
    pub start: jiff::civil::DateTime,
    /// End, in Calpendo's local time.
    pub end: jiff::civil::DateTime,
    /// Booking title, e.g. `SUB001_Doe_John`.
    pub title: String,
    /// `Approved`, `Pending`, `Cancelled`, `In Progress`, `Completed`, ...
    pub status: String,
    /// `MRIScan`, `EEGScan`, ...; only `MRIScan` bookings have an operator record.
    pub biskit_type: String,
    /// Resource name, e.g. `3T Diagnostic`.
    pub resource: String,
    /// Project formattedName, e.g. `BRISKP (Brain network models)`.
    pub project: Option<String>,
    /// Name of the person who made the booking.
    pub booker: Option<String>,
    /// Name of the booking's owner.
    pub owner: Option<String>,
    /// MRI operator name; `Some("<Hidden>")` mimics a permission-hidden operator.
    pub operator: Option<String>,
    /// Free-text description.
    pub description: Option<String>,
    /// How the detail response of this booking is shaped.
    pub shape: BookingShape,
}

/// A failure to inject into responses; see [`FakeCalpendo::set_fault`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and a small JSON error body.
    Status(u16),
    /// Answer 200 with a body that is not valid JSON (`{"biskits": [` and garbage).
    InvalidJson,
    /// Answer 200 with a `Content-Length` larger than the body, then close the
    /// connection.
    TruncatedBody,
    /// Never answer (until the server shuts down, which answers 503).
    Hang,
    /// Send the headers at once, then the normal body in small chunks spread over
    /// this duration.
    SlowBody(Duration),
    /// Close the TCP connection with a reset (SO_LINGER 0), without any response.
    ConnectionReset,
    /// Answer 200 with a chunked body (no `Content-Length`) that never ends: a JSON list
    /// opening, then one [`ENDLESS_CHUNK`]-byte chunk of list items after another, about
    /// one a millisecond (a bounded rate, so that a client that buffers it all grows by
    /// tens of MB a second, not by GB). The bytes produced are counted in
    /// [`Stats::fault_body_bytes`].
    EndlessBody,
    /// Answer 200 with a `Content-Length` of this many bytes and a body of that length
    /// (valid JSON padded with spaces), produced as it is sent and counted in
    /// [`Stats::fault_body_bytes`].
    OversizedBody(u64),
    /// Answer with this redirect status (301, 302, 303, 307 or 308) and a `Location` of
    /// `to` (`http://host:port`, no path) followed by the request's own path and query:
    /// to another server (another port is another host), or to this one.
    Redirect {
        /// The status.
        status: u16,
        /// Scheme, host and port of the target.
        to: String,
    },
}

/// The size of each chunk of a [`Fault::EndlessBody`].
pub const ENDLESS_CHUNK: usize = 64 * 1024;

/// Which requests a [`Fault`] applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultScope {
    /// Every API request (list, details, operator).
    All,
    /// Booking list queries (`q/Calpendo.Booking/...`).
    List,
    /// Booking details (`b/Calpendo.Booking/{id}`).
    Details,
    /// MRI operator queries (`q/MRIScan/id/eq/{id}`, or over a window).
    Operator,
    /// Only the details and the operator look-up of this booking id.
    Booking(i64),
    /// MRI operator queries other than the look-up of one id (the window's operators).
    OperatorWindow,
}

/// A snapshot of the server's request counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// All requests received, authorized or not.
    pub requests: u64,
    /// Authorized booking list queries.
    pub list_requests: u64,
    /// Authorized booking-detail requests.
    pub detail_requests: u64,
    /// Authorized MRI operator queries (one booking's, or a window's).
    pub operator_requests: u64,
    /// Highest number of requests in flight at once (from arrival until the handler
    /// has produced its response, latency included).
    pub max_in_flight: u64,
    /// Requests refused with 401 (missing or wrong credentials).
    pub unauthorized: u64,
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
#[derive(Debug, Default)]
struct State {
    bookings: BTreeMap<i64, FakeBooking>,
    /// When each booking was last set, in Calpendo's local time (the `updated` path).
    updated: BTreeMap<i64, jiff::civil::DateTime>,
    latency: Duration,
    fault: Option<ActiveFault>,
    /// Answer queries as if `?paths=` had not been given (an older server).
    ignore_paths: bool,
    /// Refuse queries using `STARTS_WITH` with 400 (a server without that relation).
    refuse_starts_with: bool,
}

/// Request counters.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    list: AtomicU64,
    detail: AtomicU64,
    operator: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    unauthorized: AtomicU64,
    fault_body_bytes: Arc<AtomicU64>,
}

/// State shared between the handle and the connection tasks.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    counters: Counters,
    tz: jiff::tz::TimeZone,
    username: String,
    password: String,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    /// Now, as a civil time in Calpendo's zone.
    fn local_now(&self) -> jiff::civil::DateTime {
        jiff::Timestamp::now()
            .to_zoned_datetime(self.tz.clone())
            .datetime()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent (each
        // critical section is a single assignment or read), so ignore poisoning.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake Calpendo server. Dropping it stops the server too (without waiting).
#[derive(Debug)]
pub struct FakeCalpendo {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl FakeCalpendo {
    /// Binds `config.bind` and starts serving in the background.
    ///
    /// Fails if the address cannot be bound or `config.timezone` is not a zone of the
    /// bundled time zone database (`InvalidInput`).
    pub async fn start(config: FakeConfig) -> std::io::Result<FakeCalpendo> {
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
                latency: config.latency,
                ..State::default()
            }),
            counters: Counters::default(),
            tz,
            username: config.username,
            password: config.password,
            shutdown,
        });
        let task = tokio::spawn(server::accept_loop(listener, Arc::clone(&shared)));
        tracing::debug!(%addr, "fake Calpendo listening");
        Ok(FakeCalpendo {
            shared,
            addr,
            task: Some(task),
        })
    }

    /// `http://IP:PORT`, without an API path (append `/webdav` or `/api`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces all bookings (a later booking with the same id wins).
    pub fn set_bookings(&self, bookings: Vec<FakeBooking>) {
        let now = self.shared.local_now();
        let map: BTreeMap<i64, FakeBooking> = bookings.into_iter().map(|b| (b.id, b)).collect();
        let mut state = self.shared.lock();
        state.updated = map.keys().map(|id| (*id, now)).collect();
        state.bookings = map;
    }

    /// Adds a booking, or replaces the booking with the same id.
    pub fn upsert_booking(&self, booking: FakeBooking) {
        let now = self.shared.local_now();
        let mut state = self.shared.lock();
        state.updated.insert(booking.id, now);
        state.bookings.insert(booking.id, booking);
    }

    /// Removes a booking; returns whether it existed.
    pub fn remove_booking(&self, id: i64) -> bool {
        let mut state = self.shared.lock();
        state.updated.remove(&id);
        state.bookings.remove(&id).is_some()
    }

    /// All bookings, ordered by id.
    pub fn bookings(&self) -> Vec<FakeBooking> {
        self.shared.lock().bookings.values().cloned().collect()
    }

    /// Makes the server answer queries as if no `?paths=` had been given (an older
    /// server, or one that ignores it): list items in the classic list shape, MRI
    /// operators in the two look-up shapes.
    pub fn set_ignore_paths(&self, ignore: bool) {
        self.shared.lock().ignore_paths = ignore;
    }

    /// Makes the server refuse every query that uses `STARTS_WITH` with 400, as a
    /// server without that relation would.
    pub fn set_refuse_starts_with(&self, refuse: bool) {
        self.shared.lock().refuse_starts_with = refuse;
    }

    /// Sets the delay before answering each request (from the next request on).
    pub fn set_latency(&self, per_request: Duration) {
        self.shared.lock().latency = per_request;
    }

    /// Injects `fault` into every request in `scope` until [`clear_fault`] (replaces
    /// the current fault).
    ///
    /// [`clear_fault`]: FakeCalpendo::clear_fault
    pub fn set_fault(&self, fault: Fault, scope: FaultScope) {
        self.shared.lock().fault = Some(ActiveFault {
            fault,
            scope,
            remaining: None,
        });
    }

    /// Injects `fault` into the next `times` requests in `scope` only, then clears it
    /// (replaces the current fault). Handy for retry tests: "fail twice, then succeed".
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

    /// A snapshot of the request counters.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            requests: c.requests.load(Ordering::SeqCst),
            list_requests: c.list.load(Ordering::SeqCst),
            detail_requests: c.detail.load(Ordering::SeqCst),
            operator_requests: c.operator.load(Ordering::SeqCst),
            max_in_flight: c.max_in_flight.load(Ordering::SeqCst),
            unauthorized: c.unauthorized.load(Ordering::SeqCst),
            fault_body_bytes: c.fault_body_bytes.load(Ordering::SeqCst),
        }
    }

    /// Zeroes the counters; `max_in_flight` restarts from the requests now in flight.
    pub fn reset_stats(&self) {
        let c = &self.shared.counters;
        c.requests.store(0, Ordering::SeqCst);
        c.list.store(0, Ordering::SeqCst);
        c.detail.store(0, Ordering::SeqCst);
        c.operator.store(0, Ordering::SeqCst);
        c.unauthorized.store(0, Ordering::SeqCst);
        c.fault_body_bytes.store(0, Ordering::SeqCst);
        c.max_in_flight
            .store(c.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Stops accepting connections, lets requests in progress finish (hung requests
    /// are answered 503; anything still running after a grace period is dropped) and
    /// waits for the server task.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeCalpendo {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}
