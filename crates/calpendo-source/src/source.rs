//! [`CalpendoSource`]: fetches a window's bookings from Calpendo as worklist entries.
//!
//! # Fetch modes (`fetch_mode`)
//!
//! **Bulk** (`bulk`, and `auto` first; `source/bulk.rs`): Calpendo's query API returns,
//! for every matching biskit, the property paths asked with `?paths=` (Exprodo's "Query
//! API"). So a cycle makes one or two requests, whatever the window holds:
//!
//! 1. `q/Calpendo.Booking/AND/{window}/OR/resource.name/STARTS_WITH/{prefix}/.../CLOSE/
//!    {statuses}?paths=...`: the bookings of the window whose resource starts with a
//!    configured prefix and whose status passes the filter, each with the paths
//!    [`crate::paths::list_paths`] derives from the mapping (the defaults' title, status,
//!    type, display range, `dateRange`, resource and project, plus every `field_mapping`
//!    source field);
//! 2. only when a kept booking is an MRI scan: `q/MRIScan/AND/{window}?paths=Operator.name`,
//!    the operators of the whole window, joined by booking id (both operator shapes read);
//! 3. only when the server answered 1. with HTTP 400: 1. again without `STARTS_WITH`
//!    (the prefixes are filtered on our side, as they always are too); later cycles of
//!    the source no longer send it, and a WARN says so once;
//! 4. only when a `resources` prefix matched none of the bookings listed, and is about to
//!    be named at WARN (once, until it matches): the window's resource names
//!    (`?paths=resource.name`, no prefixes), so that the warning shows what the server
//!    left out (a typo such as `EGG` next to `EEG Lab`).
//!
//! The bookings are then filtered and mapped exactly as details are (below); the detail
//! cache is not used. A failed operator query keeps the bookings without operators.
//!
//! **Fall-back**: in `auto` mode, a list answered without the asked paths (an older
//! server, or one that ignores `paths`) is taken as the list of the details path below,
//! which goes on from there (no second list request); a WARN says so once per source. In
//! `bulk` mode such an answer fails the cycle. `details` mode never tries the bulk list.
//!
//! # Details mode
//!
//! One sync cycle (`details`, or `auto`'s fall-back):
//!
//! 1. lists the bookings whose start lies in the window (one request);
//! 2. reads each listed booking's details (or takes them from the [detail
//!    cache](#detail-cache)), keeping those whose resource name starts with a configured
//!    prefix, whose status passes the status filter and whose study description passes
//!    `allowed_studies` (a booking skipped here is not fetched: one that was stored
//!    vanishes from the window);
//! 3. looks up the operator of each kept `MRIScan` booking (unless cached);
//! 4. maps the bookings to entries.
//!
//! All requests share one HTTP client (connections are reused) and one semaphore of
//! `max_workers` permits, so no more than `max_workers` requests are ever in flight. A
//! permit is held for one attempt only, not during a retry's back-off.
//!
//! Errors: HTTP 400, 401 and 403 are configuration errors (never retried); 5xx, 408, 429,
//! timeouts and connection failures are retried after 1 s, 2 s and 4 s (the base is
//! [`CalpendoSource::with_backoff_base`]) and then fail the cycle; an invalid JSON body
//! fails the cycle; a 404 on a booking's details skips that booking; a failed operator
//! lookup leaves the operator out. The whole cycle is bounded by `sync_deadline`.
//!
//! # Bounded answers
//!
//! A response body is read chunk by chunk and may have at most `max_response_bytes`
//! (default 64 MiB): a `Content-Length` over it is refused before reading, and reading
//! stops at the limit (an endless body included). Such a request fails with
//! [`ResponseTooLarge`](crate::error::ResponseTooLarge), is not retried, and fails the
//! cycle (a failed operator look-up only leaves the operator out, as always). A redirect
//! is followed only to the same scheme, host and port as the request, at most
//! [`MAX_REDIRECTS`] in a row; any other is refused before anything is sent to its target
//! ([`RedirectRefused`](bounded_http::RedirectRefused)), so the Basic credentials never
//! leave the configured server.
//!
//! Logs name bookings by id only: titles, subject IDs and names appear at TRACE level at
//! most.
//!
//! # Detail cache
//!
//! Every cycle lists the whole window (a booking missing from it has vanished, which a
//! "modified since" query, `updated/GT/...`, cannot tell); but in details mode it need not
//! read every booking's details again. The source keeps, per booking id, the
//! details response it last fetched, the MRI operator it looked up, the list item
//! ([`ListedBooking::item`]: time range, title, status, type) the details were fetched
//! for, and when. A listed booking whose list item is unchanged and whose details are
//! younger than `detail_refresh` is not fetched again: its cached details are filtered and
//! mapped again with the current settings. A booking whose list item changed, or whose
//! details are older, is fetched again (with its operator). So a change the list shows
//! (time, title, status) reaches the worklist in the next cycle; a change only the
//! details carry (project, resource, operator, description) within `detail_refresh`.
//!
//! The cache is replaced at the end of each successful cycle by the entries of the
//! bookings that cycle listed, so it never holds more than one window's bookings; a
//! failed cycle leaves it as it was. Only successfully read details are stored (not a 404
//! or an unreadable body); a failed operator look-up is stored as "not looked up", so the
//! next cycle retries it without fetching the details again. `detail_refresh = 0` turns
//! the cache off. It lives in memory: it helps `serve` and looping `sync`, not a single
//! `sync --once`.
//!
//! The cache is bounded in bytes, counted as received (the details response, the list
//! item, the operator's name): a booking taking more than
//! [`DETAIL_CACHE_ITEM_MAX_BYTES`](crate::config::DETAIL_CACHE_ITEM_MAX_BYTES) (1 MiB), or
//! more than `detail_cache_bytes`, is never kept; when the bookings of a cycle take more
//! than `detail_cache_bytes` (default 16 MiB) together, the details fetched longest ago
//! are dropped first (already while the cycle runs, so it never holds more either), and
//! fetched again in the next cycle. `detail_cache_bytes = 0` keeps nothing.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use prometheus_client::metrics::counter::Counter;
use reqwest::{StatusCode, Url, header};
use serde_json::Value;
use tokio::sync::Semaphore;
use worklist_store::{
    DataSource, KnownStation, OnCancel, SourceError, SourceMetrics, SyncWindow, WorklistEntry,
};

use worklist_store::source::{ConfigFailure, FetchFailure};

use crate::booking::{Booking, ListedBooking, parse_list, parse_operator};
use crate::config::CalpendoConfig;
use crate::config::DETAIL_CACHE_ITEM_MAX_BYTES;
use crate::error::{AttemptError, Failure, Request, ResponseTooLarge, status_error};
use crate::mapping::{SkipReason, map_booking};
use crate::query::{self, UrlError};
use bounded_http::{BodyError, Follow, Redirects};

mod bulk;

/// Retries after the first attempt of a request that failed transiently.
pub const RETRIES: u32 = 3;
/// The default back-off before the first retry (then doubled: 1 s, 2 s, 4 s).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The most redirects (each to the request's own scheme, host and port) followed in a
/// row.
pub const MAX_REDIRECTS: usize = bounded_http::redirect::MAX_REDIRECTS;

/// The redirect policy of every request: follow only to the first URL's origin (scheme,
/// host, port), at most [`MAX_REDIRECTS`] times; else fail with
/// [`bounded_http::RedirectRefused`] before anything is sent to the target.
fn redirect_policy() -> reqwest::redirect::Policy {
    Redirects {
        system: "Calpendo",
        setting: "base_url",
        follow: Follow::Any,
    }
    .policy()
}

/// Reads a response body of at most `limit` bytes ([`bounded_http::read_body`]).
async fn read_body(
    response: reqwest::Response,
    limit: u64,
    req: Request,
) -> Result<Vec<u8>, AttemptError> {
    bounded_http::read_body(response, limit)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge { announced, read } => AttemptError::too_large(ResponseTooLarge {
                system: "Calpendo",
                request: req.what(),
                limit,
                key: "max_response_bytes",
                announced,
                read,
            }),
            BodyError::Transport(e) => AttemptError::from_body(e),
        })
}

/// The Calpendo data source.
#[derive(Debug)]
pub struct CalpendoSource {
    name: String,
    config: Arc<CalpendoConfig>,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    backoff_base: Duration,
    cache: DetailCache,
    clock: Clock,
    /// The last transient failure of the current cycle, named when the deadline cuts it.
    last_failure: std::sync::Mutex<Option<String>>,
    /// Request counters, once [`DataSource::attach_metrics`] gave them.
    requests: OnceLock<RequestCounters>,
    /// The `resources` prefixes already said to match nothing (until they match again).
    unmatched_warned: Mutex<HashSet<String>>,
    /// The server refused `STARTS_WITH`: bulk lists filter resource prefixes locally.
    starts_with_refused: AtomicBool,
    /// The fall-back from a list without paths to per-booking details was said.
    paths_fallback_warned: AtomicBool,
}

/// The `outcome` label values of the request counters, by index.
const OUTCOMES: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "error"];
/// The index of `error` in [`OUTCOMES`].
const OUTCOME_ERROR: usize = 4;

/// One source's request counters, `[kind][outcome]`, created once so that counting a
/// request is one atomic add.
#[derive(Debug)]
struct RequestCounters([[Counter; OUTCOMES.len()]; Request::ALL.len()]);

/// Counts one request when dropped: as `error` unless a complete response was noted, so
/// that a request abandoned midway (the cycle's deadline) is counted too.
struct RequestTally<'a> {
    counters: Option<&'a [Counter; OUTCOMES.len()]>,
    outcome: usize,
}

impl RequestTally<'_> {
    /// The response's status class.
    fn status(&mut self, status: StatusCode) {
        self.outcome = match status.as_u16() {
            200..=299 => 0,
            300..=399 => 1,
            400..=499 => 2,
            500..=599 => 3,
            _ => OUTCOME_ERROR,
        };
    }

    /// No complete response after all (the body could not be read).
    fn failed(&mut self) {
        self.outcome = OUTCOME_ERROR;
    }
}

impl Drop for RequestTally<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.counters.and_then(|row| row.get(self.outcome)) {
            c.inc();
        }
    }
}

/// The time source of the detail cache's ages (tests inject their own).
#[derive(Clone)]
struct Clock(Arc<dyn Fn() -> Instant + Send + Sync>);

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// One booking's details as last fetched, with what a later cycle needs to map it again.
struct CachedDetails {
    /// The list item the details were fetched for.
    listed: Value,
    /// The details response (a JSON object), as sent.
    raw: Value,
    /// The MRI operator: `Some(None)` when looked up and absent or hidden; `None` when not
    /// looked up (not an MRI scan, filtered out, or the look-up failed).
    operator: Option<Option<String>>,
    /// When the details were fetched, by the source's clock.
    fetched_at: Instant,
    /// The bytes of the details response and of the list item, as received.
    base_bytes: u64,
}

impl CachedDetails {
    /// What the entry counts against the cache's budget: its details response and list
    /// item as received, and the operator's name.
    fn size(&self) -> u64 {
        let operator = self.operator.as_ref().and_then(Option::as_ref);
        self.base_bytes + operator.map_or(0, |o| o.len() as u64)
    }
}

/// Booking id → its cached details. Its `Debug` shows only the size: the details hold
/// subject IDs and names.
#[derive(Default)]
struct DetailCache(Mutex<HashMap<String, Arc<CachedDetails>>>);

impl DetailCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<CachedDetails>>> {
        // Every critical section is a lookup or a whole-map replacement: a panic cannot
        // leave the map half-updated, so poisoning is ignored.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for DetailCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cache = self.lock();
        let bytes: u64 = cache.values().map(|c| c.size()).sum();
        write!(f, "DetailCache({} bookings, {bytes} bytes)", cache.len())
    }
}

/// The cache entries of a cycle's resolved bookings, kept within a byte budget while they
/// arrive: past the budget, the entries fetched longest ago are dropped first.
struct CacheBudget {
    budget: u64,
    total: u64,
    /// (fetched at, index into the resolved list) of each kept entry, oldest first out.
    oldest: BinaryHeap<Reverse<(Instant, usize)>>,
    evicted: usize,
}

impl CacheBudget {
    fn new(budget: u64) -> CacheBudget {
        CacheBudget {
            budget,
            total: 0,
            oldest: BinaryHeap::new(),
            evicted: 0,
        }
    }

    /// Adds `r` to `resolved`, then drops the oldest cache entries until the total fits.
    fn push(&mut self, resolved: &mut Vec<Resolved>, r: Resolved) {
        if let Some(c) = &r.cache {
            self.total += c.size();
            self.oldest.push(Reverse((c.fetched_at, resolved.len())));
        }
        resolved.push(r);
        while self.total > self.budget {
            let Some(Reverse((_, i))) = self.oldest.pop() else {
                break;
            };
            if let Some(c) = resolved.get_mut(i).and_then(|r| r.cache.take()) {
                self.total = self.total.saturating_sub(c.size());
                self.evicted += 1;
            }
        }
    }
}

/// What became of one listed booking.
enum Outcome {
    Kept(Box<WorklistEntry>),
    Skipped(Skip),
}

/// One listed booking, resolved from fetched or cached details.
struct Resolved {
    id: String,
    outcome: Outcome,
    /// The cache entry to keep for the booking, if any.
    cache: Option<Arc<CachedDetails>>,
    /// Whether the details were fetched in this cycle (else they came from the cache).
    fetched: bool,
    /// The booking's resource name, when its details were read.
    resource: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Resource,
    Status,
    Study,
    NotFound,
    Unreadable,
    Mapping(SkipReason),
}

#[derive(Debug, Default)]
struct Tally {
    kept: usize,
    /// Skipped for their status in the list, before any detail request.
    listed_status: usize,
    resource: usize,
    status: usize,
    study: usize,
    not_found: usize,
    unreadable: usize,
    no_subject: usize,
    no_start: usize,
}

impl Tally {
    /// Counts one resolved booking; a kept one's entry goes to `entries`.
    fn add(&mut self, outcome: Outcome, entries: &mut Vec<WorklistEntry>) {
        match outcome {
            Outcome::Kept(e) => {
                self.kept += 1;
                entries.push(*e);
            }
            Outcome::Skipped(Skip::Resource) => self.resource += 1,
            Outcome::Skipped(Skip::Status) => self.status += 1,
            Outcome::Skipped(Skip::Study) => self.study += 1,
            Outcome::Skipped(Skip::NotFound) => self.not_found += 1,
            Outcome::Skipped(Skip::Unreadable) => self.unreadable += 1,
            Outcome::Skipped(Skip::Mapping(SkipReason::NoSubjectId)) => self.no_subject += 1,
            Outcome::Skipped(Skip::Mapping(SkipReason::NoStartTime)) => self.no_start += 1,
        }
    }

    /// Whether details were asked for and none came (every one 404): a failing server,
    /// not a day whose bookings were all deleted between two requests. Applied, such a
    /// cycle would discontinue the whole window. (A status skip may come from the list
    /// alone, so it proves nothing either way.)
    fn no_details_answered(&self) -> bool {
        self.not_found > 0
            && self.kept
                + self.resource
                + self.study
                + self.unreadable
                + self.no_subject
                + self.no_start
                == 0
    }
}

impl CalpendoSource {
    /// A source named `name` (entries carry it) with one HTTP client for all its requests.
    pub fn new(name: &str, config: CalpendoConfig) -> Result<CalpendoSource, SourceError> {
        let mut headers = header::HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            header::HeaderValue::from_static("application/json"),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("mwlbridge/", env!("CARGO_PKG_VERSION")))
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(redirect_policy())
            .build()
            .map_err(|e| {
                SourceError::Config(ConfigFailure::Setup {
                    message: format!(
                        "cannot build the HTTP client: {} (on a new machine: are the CA \
                         certificates installed? Debian: ca-certificates)",
                        crate::error::error_chain(&e)
                    ),
                    source: Some(Box::new(e)),
                })
            })?;
        let permits = Arc::new(Semaphore::new(config.max_workers.max(1)));
        Ok(CalpendoSource {
            name: name.to_string(),
            config: Arc::new(config),
            client,
            permits,
            backoff_base: DEFAULT_BACKOFF_BASE,
            cache: DetailCache::default(),
            last_failure: std::sync::Mutex::new(None),
            clock: Clock(Arc::new(Instant::now)),
            requests: OnceLock::new(),
            unmatched_warned: Mutex::new(HashSet::new()),
            starts_with_refused: AtomicBool::new(false),
            paths_fallback_warned: AtomicBool::new(false),
        })
    }

    /// Sets the clock the detail cache measures ages with (default [`Instant::now`]);
    /// tests use it to age the cache without sleeping.
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> Instant + Send + Sync + 'static,
    ) -> CalpendoSource {
        self.clock = Clock(Arc::new(clock));
        self
    }

    /// The ids of the bookings whose details are cached, sorted.
    pub fn cached_booking_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.cache.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The bytes the detail cache holds, as counted against `detail_cache_bytes`.
    pub fn cached_bytes(&self) -> u64 {
        self.cache.lock().values().map(|c| c.size()).sum()
    }

    fn now(&self) -> Instant {
        (self.clock.0)()
    }

    /// Sets the back-off before the first retry (doubled for each further retry).
    pub fn with_backoff_base(mut self, base: Duration) -> CalpendoSource {
        self.backoff_base = base;
        self
    }

    /// The source's settings.
    pub fn config(&self) -> &CalpendoConfig {
        &self.config
    }

    /// One attempt: a GET holding one permit, the body read (at most
    /// `max_response_bytes`) and parsed as JSON; with the body's size.
    async fn attempt(&self, url: &Url, req: Request) -> Result<(Value, u64), AttemptError> {
        let _permit = self.permits.acquire().await.map_err(|_| {
            AttemptError::Final(Failure::Fetch(FetchFailure::Stopped {
                message: "source is shutting down".into(),
            }))
        })?;
        let mut tally = RequestTally {
            counters: self.requests.get().and_then(|c| c.0.get(req as usize)),
            outcome: OUTCOME_ERROR,
        };
        let response = self
            .client
            .get(url.clone())
            .basic_auth(&self.config.username, Some(self.config.password.expose()))
            .send()
            .await
            .map_err(|e| AttemptError::from_send(e, req))?;
        let status = response.status();
        tally.status(status);
        if !status.is_success() {
            return Err(status_error(status, req));
        }
        let body = read_body(response, self.config.max_response_bytes, req)
            .await
            .inspect_err(|_| tally.failed())?;
        let size = body.len() as u64;
        let value = serde_json::from_slice(&body).map_err(|e| AttemptError::from_json(e, req))?;
        Ok((value, size))
    }

    /// A GET with retries of transient failures; the JSON body and its size in bytes.
    async fn get_json(&self, url: Url, req: Request) -> Result<(Value, u64), Failure> {
        let mut retry = 0;
        loop {
            match self.attempt(&url, req).await {
                Ok(v) => return Ok(v),
                Err(AttemptError::Final(f)) => return Err(f),
                Err(AttemptError::Transient(t)) if retry < RETRIES => {
                    let msg = t.message;
                    if let Ok(mut last) = self.last_failure.lock() {
                        *last = Some(msg.clone());
                    }
                    let wait = self.backoff_base * 2u32.pow(retry);
                    tracing::debug!(
                        source = %self.name,
                        request = req.what(),
                        error = %msg,
                        retry = retry + 1,
                        wait_ms = wait.as_millis() as u64,
                        "Calpendo request failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                Err(AttemptError::Transient(t)) => {
                    let message = format!(
                        "{} request failed after {} attempts: {}",
                        req.what(),
                        RETRIES + 1,
                        t.message
                    );
                    return Err(t.into_failure(message));
                }
            }
        }
    }

    /// The MRI operator: `Some(None)` when absent or hidden, `None` when the look-up
    /// failed.
    async fn operator(&self, id: &str) -> Option<Option<String>> {
        let url = match query::operator_url(&self.config, id) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(source = %self.name, booking_id = id, error = %e, "operator lookup skipped");
                return None;
            }
        };
        match self.get_json(url, Request::Operator).await {
            Ok((v, _)) => Some(parse_operator(&v)),
            Err(f) => {
                tracing::warn!(
                    source = %self.name,
                    booking_id = id,
                    error = %f.message(),
                    "MRI operator lookup failed; the booking is kept without an operator"
                );
                None
            }
        }
    }

    /// Resolves one listed booking: from `cached` details when given (the caller checked
    /// that they are fresh and were fetched for the same list item), else from fetched
    /// ones.
    async fn fetch_booking(
        &self,
        listed: ListedBooking,
        cached: Option<Arc<CachedDetails>>,
    ) -> Result<Resolved, SourceError> {
        let id = listed.id.as_str();
        let fetched = cached.is_none();
        let resolved =
            |outcome: Outcome, cache: Option<Arc<CachedDetails>>, resource: Option<&str>| {
                Resolved {
                    id: listed.id.clone(),
                    outcome,
                    cache,
                    fetched,
                    resource: resource.map(str::to_string),
                }
            };
        let (raw, fetched_at, mut operator, base_bytes) = match &cached {
            Some(c) => (
                c.raw.clone(),
                c.fetched_at,
                c.operator.clone(),
                c.base_bytes,
            ),
            None => {
                let url = query::detail_url(&self.config, id).map_err(url_error)?;
                match self.get_json(url, Request::Detail).await {
                    Ok((v, size)) => {
                        let listed_size = serde_json::to_vec(&listed.item).map_or(0, |b| b.len());
                        (v, self.now(), None, size + listed_size as u64)
                    }
                    Err(Failure::NotFound) => {
                        tracing::warn!(
                            source = %self.name,
                            booking_id = id,
                            "booking details not found (deleted meanwhile?); booking skipped"
                        );
                        return Ok(resolved(Outcome::Skipped(Skip::NotFound), None, None));
                    }
                    Err(f) => return Err(f.into_source_error(Request::Detail)),
                }
            }
        };
        let Some(mut booking) = Booking::from_json(raw.clone(), id) else {
            tracing::warn!(
                source = %self.name,
                booking_id = id,
                "booking details are not a JSON object; booking skipped"
            );
            return Ok(resolved(Outcome::Skipped(Skip::Unreadable), None, None));
        };
        let operator_before = operator.clone();
        let caching = !self.config.detail_refresh.is_zero() && self.config.detail_cache_bytes > 0;
        let item_max = DETAIL_CACHE_ITEM_MAX_BYTES.min(self.config.detail_cache_bytes);
        // The entry to cache once the operator is known: the same one when nothing
        // changed, else a new one with the details' original fetch time; none for a
        // booking over the per-item budget.
        let entry = |operator: Option<Option<String>>| -> Option<Arc<CachedDetails>> {
            if !caching {
                return None;
            }
            let c = match &cached {
                Some(c) if operator == operator_before => Arc::clone(c),
                _ => Arc::new(CachedDetails {
                    listed: listed.item.clone(),
                    raw,
                    operator,
                    fetched_at,
                    base_bytes,
                }),
            };
            (c.size() <= item_max).then_some(c)
        };
        if booking.status.is_none() {
            booking.status = listed.status.clone();
        }
        if booking.biskit_type.is_none() {
            booking.biskit_type = listed.biskit_type.clone();
        }
        if let Some(skip) = self.not_selected(id, &booking) {
            return Ok(resolved(
                Outcome::Skipped(skip),
                entry(operator),
                booking.resource.as_deref(),
            ));
        }
        if booking.is_mri_scan() {
            if operator.is_none() {
                operator = self.operator(id).await;
            }
            booking.set_operator(operator.clone().flatten());
        }
        let outcome = match map_booking(&self.name, &self.config, &booking) {
            Ok(e) => Outcome::Kept(Box::new(e)),
            Err(reason) => {
                tracing::warn!(
                    source = %self.name,
                    booking_id = id,
                    field = reason.field(),
                    "booking has no value for a required field; booking skipped"
                );
                Outcome::Skipped(Skip::Mapping(reason))
            }
        };
        Ok(resolved(
            outcome,
            entry(operator),
            booking.resource.as_deref(),
        ))
    }

    /// Why the booking's resource, status or study keeps it out of the worklist, if any
    /// does (checked in that order).
    fn not_selected(&self, id: &str, booking: &Booking) -> Option<Skip> {
        if !booking
            .resource
            .as_deref()
            .is_some_and(|r| self.config.resource_selected(r))
        {
            tracing::debug!(source = %self.name, booking_id = id, "resource not selected");
            return Some(Skip::Resource);
        }
        if let Some(s) = &booking.status
            && !self.config.status_selected(s)
        {
            tracing::debug!(source = %self.name, booking_id = id, status = %s, "status not selected");
            return Some(Skip::Status);
        }
        let study = crate::mapping::study_description(&self.config, booking);
        if !self.config.study_allowed(study.as_deref()) {
            tracing::debug!(source = %self.name, booking_id = id, "study not allowed");
            return Some(Skip::Study);
        }
        None
    }

    /// Says (WARN, once until it matches again) which `resources` prefix matched none of
    /// the resources of the bookings listed: a typo there drops a scanner silently.
    /// Resource names are not subject data.
    fn warn_unmatched_prefixes(&self, seen: &BTreeSet<String>, listed: usize) {
        let Ok(mut warned) = self.unmatched_warned.lock() else {
            return;
        };
        for prefix in &self.config.resources {
            let matched = seen.iter().any(|r| r.starts_with(prefix.as_str()));
            if matched {
                warned.remove(prefix);
            } else if warned.insert(prefix.clone()) {
                let names: Vec<&str> = seen.iter().map(String::as_str).take(12).collect();
                tracing::warn!(
                    source = %self.name,
                    prefix = %prefix,
                    listed,
                    resources_seen = ?names,
                    "resource prefix matched none of the bookings listed in the window: \
                     check `resources` for a typo (said once, until it matches)"
                );
            }
        }
    }

    /// The cached details of `listed` when they may be used instead of a fetch: fetched
    /// for the same list item, less than `detail_refresh` ago.
    fn fresh_details(
        cache: &HashMap<String, Arc<CachedDetails>>,
        listed: &ListedBooking,
        now: Instant,
        refresh: Duration,
    ) -> Option<Arc<CachedDetails>> {
        cache
            .get(&listed.id)
            .filter(|c| {
                c.listed == listed.item && now.saturating_duration_since(c.fetched_at) < refresh
            })
            .cloned()
    }

    async fn fetch_cycle(&self, window: &SyncWindow) -> Result<Vec<WorklistEntry>, SourceError> {
        let started = Instant::now();
        let list = if self.config.fetch_mode == crate::config::FetchMode::Details {
            let url = query::list_url(&self.config, window).map_err(url_error)?;
            self.get_json(url, Request::List)
                .await
                .map_err(|f| f.into_source_error(Request::List))?
                .0
        } else {
            match self.bulk_cycle(window, started).await? {
                bulk::BulkList::Done(entries) => return Ok(entries),
                bulk::BulkList::WithoutPaths(list) => list,
            }
        };
        let (items, without_id) = parse_list(&list).map_err(|e| {
            SourceError::Fetch(FetchFailure::InvalidResponse {
                message: e.to_string(),
                source: Some(Box::new(e)),
            })
        })?;
        if without_id > 0 {
            tracing::warn!(
                source = %self.name,
                count = without_id,
                "booking list items without an id were ignored"
            );
        }
        let listed = items.len();
        let mut seen = HashSet::new();
        let mut tally = Tally::default();
        let mut candidates = Vec::with_capacity(items.len());
        for item in items {
            if !seen.insert(item.id.clone()) {
                continue;
            }
            // The server applies the status filter too; this spares the detail request
            // when a server ignores it.
            if let Some(s) = &item.status
                && !self.config.status_selected(s)
            {
                tally.listed_status += 1;
                continue;
            }
            candidates.push(item);
        }

        let refresh = self.config.detail_refresh;
        let candidates: Vec<(ListedBooking, Option<Arc<CachedDetails>>)> = if refresh.is_zero() {
            candidates.into_iter().map(|item| (item, None)).collect()
        } else {
            let now = self.now();
            let cache = self.cache.lock();
            candidates
                .into_iter()
                .map(|item| {
                    let cached = Self::fresh_details(&cache, &item, now, refresh);
                    (item, cached)
                })
                .collect()
        };

        // Collected within the cache's byte budget as they come.
        let mut budget = CacheBudget::new(self.config.detail_cache_bytes);
        let mut resolved: Vec<Resolved> = Vec::with_capacity(candidates.len());
        let mut pending = stream::iter(candidates)
            .map(|(item, cached)| self.fetch_booking(item, cached))
            .buffer_unordered(self.config.max_workers.max(1));
        while let Some(r) = pending.try_next().await? {
            budget.push(&mut resolved, r);
        }
        drop(pending);
        if budget.evicted > 0 {
            tracing::debug!(
                source = %self.name,
                evicted = budget.evicted,
                budget = budget.budget,
                "detail cache over detail_cache_bytes: the details fetched longest ago are \
                 dropped (fetched again next cycle)"
            );
        }

        // The cycle succeeded: the cache becomes the details of the bookings it listed.
        let mut details_fetched = 0;
        let mut next_cache = HashMap::with_capacity(resolved.len());
        let mut outcomes = Vec::with_capacity(resolved.len());
        let mut resources_seen: BTreeSet<String> = BTreeSet::new();
        for r in resolved {
            resources_seen.extend(r.resource);
            if r.fetched {
                details_fetched += 1;
            }
            if let Some(c) = r.cache {
                next_cache.insert(r.id, c);
            }
            outcomes.push(r.outcome);
        }
        let details_cached = outcomes.len() - details_fetched;
        *self.cache.lock() = next_cache;

        let mut entries = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            tally.add(o, &mut entries);
        }
        entries.sort_by(|a, b| (a.start, &a.source_record_id).cmp(&(b.start, &b.source_record_id)));
        tracing::info!(
            source = %self.name,
            window = %window,
            listed,
            kept = tally.kept,
            skipped_resource = tally.resource,
            skipped_status = tally.status + tally.listed_status,
            skipped_study = tally.study,
            skipped_not_found = tally.not_found,
            skipped_unreadable = tally.unreadable + without_id,
            skipped_no_subject_id = tally.no_subject,
            skipped_no_start = tally.no_start,
            details_fetched,
            details_cached,
            detail_cache_bytes = budget.total,
            duration_ms = started.elapsed().as_millis() as u64,
            "Calpendo fetch done"
        );
        self.warn_unmatched_prefixes(&resources_seen, listed);
        if tally.no_details_answered() {
            return Err(SourceError::Fetch(FetchFailure::Status {
                status: 404,
                message: format!(
                    "all {} bookings whose details were asked for had none (404 Not \
                     Found): the cycle is not applied",
                    tally.not_found
                ),
            }));
        }
        Ok(entries)
    }
}

/// A URL the base URL cannot give: a configuration error.
fn url_error(e: UrlError) -> SourceError {
    SourceError::Config(ConfigFailure::Setup {
        message: e.to_string(),
        source: Some(Box::new(e)),
    })
}

#[async_trait::async_trait]
impl DataSource for CalpendoSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn sync_window(&self, now: jiff::Timestamp) -> SyncWindow {
        self.config.sync_window(now)
    }

    fn sync_interval(&self) -> Duration {
        self.config.sync_interval
    }

    fn on_cancel(&self) -> OnCancel {
        self.config.on_cancel
    }

    /// Each `station_aet_mapping` value once, with the Modality
    /// `resource_modality_mapping` gives its resource prefix (the modality a booking of
    /// that resource gets).
    fn stations(&self) -> Vec<KnownStation> {
        let mut out: Vec<KnownStation> = Vec::new();
        for (prefix, ae_title) in self.config.station_aet_mapping.entries() {
            if out.iter().any(|s| s.ae_title == *ae_title) {
                continue;
            }
            out.push(KnownStation {
                ae_title: ae_title.clone(),
                modality: self
                    .config
                    .resource_modality_mapping
                    .lookup(prefix)
                    .map(str::to_string),
            });
        }
        out
    }

    /// Every request (each attempt, retries included) is counted by kind (`list`,
    /// `detail`, `operator`) and outcome; a second call keeps the first counters.
    fn attach_metrics(&self, metrics: &SourceMetrics) {
        let counters = RequestCounters(Request::ALL.map(|kind| {
            OUTCOMES.map(|outcome| metrics.requests(&self.name, kind.label(), outcome))
        }));
        let _ = self.requests.set(counters);
    }

    async fn fetch_entries(&self, window: &SyncWindow) -> Result<Vec<WorklistEntry>, SourceError> {
        let deadline = self.config.sync_deadline;
        if let Ok(mut last) = self.last_failure.lock() {
            *last = None;
        }
        match tokio::time::timeout(deadline, self.fetch_cycle(window)).await {
            Ok(result) => result,
            Err(_) => {
                let last = self
                    .last_failure
                    .lock()
                    .ok()
                    .and_then(|l| l.clone())
                    .map(|m| format!("; last failure: {m}"))
                    .unwrap_or_default();
                Err(SourceError::Fetch(FetchFailure::Deadline {
                    message: format!(
                        "deadline exceeded: the Calpendo sync did not finish within {:.1} s \
                         (sync_deadline){last}",
                        deadline.as_secs_f64()
                    ),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config;
    use serde_json::json;

    fn env_ok(k: &str) -> Option<String> {
        match k {
            "CALPENDO_USERNAME" => Some("u".into()),
            "CALPENDO_PASSWORD" => Some("topsecret".into()),
            _ => None,
        }
    }

    #[test]
    fn stations_are_the_mapped_ae_titles_with_their_resources_modality() {
        let c = parse_config(
            &json!({"base_url": "http://127.0.0.1:9", "resources": ["3T", "7T", "EEG"],
                    "resource_modality_mapping": {"3T": "MR", "7T": "MR"},
                    "station_aet_mapping": {"3T Diagnostic": "MRI_3T", "3T Research": "MRI_3T",
                                            "7T": "MRI_7T", "EEG": "EEG_LAB"}}),
            &env_ok,
        )
        .unwrap();
        let src = CalpendoSource::new("calpendo", c).unwrap();
        let stations: Vec<(String, Option<String>)> = src
            .stations()
            .into_iter()
            .map(|k| (k.ae_title, k.modality))
            .collect();
        let mut stations = stations;
        stations.sort();
        assert_eq!(
            stations,
            [
                ("EEG_LAB".to_string(), None),
                ("MRI_3T".to_string(), Some("MR".to_string())),
                ("MRI_7T".to_string(), Some("MR".to_string())),
            ]
        );
    }

    #[tokio::test]
    async fn unreachable_server_fails_after_retries_without_credentials_in_message() {
        let c = parse_config(
            &json!({"base_url": "http://127.0.0.1:9", "resources": ["3T"], "request_timeout": 1}),
            &env_ok,
        )
        .unwrap();
        let src = CalpendoSource::new("calpendo", c)
            .unwrap()
            .with_backoff_base(Duration::from_millis(5));
        assert_eq!(DataSource::sync_interval(&src), Duration::from_secs(60));
        assert_eq!(DataSource::on_cancel(&src), OnCancel::Discontinue);
        let now = jiff::Timestamp::from_second(1_795_705_200).unwrap();
        let window = src.sync_window(now);
        let err = src.fetch_entries(&window).await.unwrap_err();
        match err {
            SourceError::Fetch(f) => {
                let m = f.to_string();
                assert!(m.contains("after 4 attempts"), "{m}");
                assert!(!m.contains("topsecret"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{src:?}").contains("topsecret"));
    }
}
