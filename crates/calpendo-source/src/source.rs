//! [`CalpendoSource`]: fetches a window's bookings from Calpendo as worklist entries.
//!
//! One sync cycle:
//!
//! 1. lists the bookings whose start lies in the window (one request);
//! 2. reads each listed booking's details, keeping those whose resource name starts with
//!    a configured prefix and whose status passes the status filter;
//! 3. looks up the operator of each kept `MRIScan` booking;
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
//! Logs name bookings by id only: titles, subject IDs and names appear at TRACE level at
//! most.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use reqwest::{StatusCode, Url, header};
use serde_json::Value;
use tokio::sync::Semaphore;
use worklist_store::{DataSource, OnCancel, SourceError, SyncWindow, WorklistEntry};

use crate::booking::{Booking, ListedBooking, parse_list, parse_operator};
use crate::config::CalpendoConfig;
use crate::mapping::{SkipReason, map_booking};
use crate::query;

/// Retries after the first attempt of a request that failed transiently.
pub const RETRIES: u32 = 3;
/// The default back-off before the first retry (then doubled: 1 s, 2 s, 4 s).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(1);

/// The Calpendo data source.
#[derive(Debug)]
pub struct CalpendoSource {
    name: String,
    config: Arc<CalpendoConfig>,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    backoff_base: Duration,
}

/// Which request failed, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    List,
    Detail,
    Operator,
}

impl Request {
    fn what(self) -> &'static str {
        match self {
            Request::List => "booking list",
            Request::Detail => "booking details",
            Request::Operator => "MRI operator",
        }
    }
}

/// How a request failed, after any retries.
#[derive(Debug)]
enum Failure {
    /// HTTP 404.
    NotFound,
    /// Not worth retrying, and not the network's fault.
    Config(String),
    /// The network or the server failed (after retries), or sent something unreadable.
    Fetch(String),
}

impl Failure {
    fn into_source_error(self, req: Request) -> SourceError {
        match self {
            Failure::NotFound => SourceError::Config(format!(
                "Calpendo answered 404 Not Found for the {}: check base_url and api_path",
                req.what()
            )),
            Failure::Config(m) => SourceError::Config(m),
            Failure::Fetch(m) => SourceError::Fetch(m),
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::NotFound => "HTTP 404 Not Found".into(),
            Failure::Config(m) | Failure::Fetch(m) => m.clone(),
        }
    }
}

/// One attempt's failure.
enum AttemptError {
    Transient(String),
    Final(Failure),
}

/// What became of one listed booking.
enum Outcome {
    Kept(Box<WorklistEntry>),
    Skipped(Skip),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Resource,
    Status,
    NotFound,
    Unreadable,
    Mapping(SkipReason),
}

#[derive(Debug, Default)]
struct Tally {
    kept: usize,
    resource: usize,
    status: usize,
    not_found: usize,
    unreadable: usize,
    no_subject: usize,
    no_start: usize,
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = inner.source();
    }
    s
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
            .build()
            .map_err(|e| SourceError::Config(format!("cannot build the HTTP client: {e}")))?;
        let permits = Arc::new(Semaphore::new(config.max_workers.max(1)));
        Ok(CalpendoSource {
            name: name.to_string(),
            config: Arc::new(config),
            client,
            permits,
            backoff_base: DEFAULT_BACKOFF_BASE,
        })
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

    /// One attempt: a GET holding one permit, the body read and parsed as JSON.
    async fn attempt(&self, url: &Url, req: Request) -> Result<Value, AttemptError> {
        let _permit =
            self.permits.acquire().await.map_err(|_| {
                AttemptError::Final(Failure::Fetch("source is shutting down".into()))
            })?;
        let response = self
            .client
            .get(url.clone())
            .basic_auth(&self.config.username, Some(self.config.password.expose()))
            .send()
            .await
            .map_err(|e| {
                if e.is_builder() {
                    AttemptError::Final(Failure::Config(format!(
                        "cannot build the {} request: {}",
                        req.what(),
                        error_chain(&e)
                    )))
                } else {
                    AttemptError::Transient(error_chain(&e))
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_error(status, req));
        }
        let body = response.bytes().await.map_err(|e| {
            AttemptError::Transient(format!("reading the body: {}", error_chain(&e)))
        })?;
        serde_json::from_slice(&body).map_err(|e| {
            AttemptError::Final(Failure::Fetch(format!(
                "invalid JSON in the {} response: {e}",
                req.what()
            )))
        })
    }

    /// A GET with retries of transient failures.
    async fn get_json(&self, url: Url, req: Request) -> Result<Value, Failure> {
        let mut retry = 0;
        loop {
            match self.attempt(&url, req).await {
                Ok(v) => return Ok(v),
                Err(AttemptError::Final(f)) => return Err(f),
                Err(AttemptError::Transient(msg)) if retry < RETRIES => {
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
                Err(AttemptError::Transient(msg)) => {
                    return Err(Failure::Fetch(format!(
                        "{} request failed after {} attempts: {msg}",
                        req.what(),
                        RETRIES + 1
                    )));
                }
            }
        }
    }

    async fn operator(&self, id: &str) -> Option<String> {
        let url = match query::operator_url(&self.config, id) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(source = %self.name, booking_id = id, error = %e, "operator lookup skipped");
                return None;
            }
        };
        match self.get_json(url, Request::Operator).await {
            Ok(v) => parse_operator(&v),
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

    async fn fetch_booking(&self, listed: ListedBooking) -> Result<Outcome, SourceError> {
        let id = listed.id.as_str();
        let url =
            query::detail_url(&self.config, id).map_err(|e| SourceError::Config(e.to_string()))?;
        let raw = match self.get_json(url, Request::Detail).await {
            Ok(v) => v,
            Err(Failure::NotFound) => {
                tracing::warn!(
                    source = %self.name,
                    booking_id = id,
                    "booking details not found (deleted meanwhile?); booking skipped"
                );
                return Ok(Outcome::Skipped(Skip::NotFound));
            }
            Err(f) => return Err(f.into_source_error(Request::Detail)),
        };
        let Some(mut booking) = Booking::from_json(raw, id) else {
            tracing::warn!(
                source = %self.name,
                booking_id = id,
                "booking details are not a JSON object; booking skipped"
            );
            return Ok(Outcome::Skipped(Skip::Unreadable));
        };
        if booking.status.is_none() {
            booking.status = listed.status.clone();
        }
        if booking.biskit_type.is_none() {
            booking.biskit_type = listed.biskit_type.clone();
        }
        if !booking
            .resource
            .as_deref()
            .is_some_and(|r| self.config.resource_selected(r))
        {
            tracing::debug!(source = %self.name, booking_id = id, "resource not selected");
            return Ok(Outcome::Skipped(Skip::Resource));
        }
        if let Some(s) = &booking.status
            && !self.config.status_selected(s)
        {
            tracing::debug!(source = %self.name, booking_id = id, status = %s, "status not selected");
            return Ok(Outcome::Skipped(Skip::Status));
        }
        if booking.is_mri_scan() {
            let op = self.operator(id).await;
            booking.set_operator(op);
        }
        match map_booking(&self.name, &self.config, &booking) {
            Ok(entry) => Ok(Outcome::Kept(Box::new(entry))),
            Err(reason) => {
                tracing::warn!(
                    source = %self.name,
                    booking_id = id,
                    field = reason.field(),
                    "booking has no value for a required field; booking skipped"
                );
                Ok(Outcome::Skipped(Skip::Mapping(reason)))
            }
        }
    }

    async fn fetch_cycle(&self, window: &SyncWindow) -> Result<Vec<WorklistEntry>, SourceError> {
        let started = Instant::now();
        let url = query::list_url(&self.config, window)
            .map_err(|e| SourceError::Config(e.to_string()))?;
        let list = self
            .get_json(url, Request::List)
            .await
            .map_err(|f| f.into_source_error(Request::List))?;
        let (items, without_id) =
            parse_list(&list).map_err(|e| SourceError::Fetch(e.to_string()))?;
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
                tally.status += 1;
                continue;
            }
            candidates.push(item);
        }

        let outcomes: Vec<Outcome> = stream::iter(candidates)
            .map(|item| self.fetch_booking(item))
            .buffer_unordered(self.config.max_workers.max(1))
            .try_collect()
            .await?;

        let mut entries = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            match o {
                Outcome::Kept(e) => {
                    tally.kept += 1;
                    entries.push(*e);
                }
                Outcome::Skipped(Skip::Resource) => tally.resource += 1,
                Outcome::Skipped(Skip::Status) => tally.status += 1,
                Outcome::Skipped(Skip::NotFound) => tally.not_found += 1,
                Outcome::Skipped(Skip::Unreadable) => tally.unreadable += 1,
                Outcome::Skipped(Skip::Mapping(SkipReason::NoSubjectId)) => tally.no_subject += 1,
                Outcome::Skipped(Skip::Mapping(SkipReason::NoStartTime)) => tally.no_start += 1,
            }
        }
        entries.sort_by(|a, b| (a.start, &a.source_record_id).cmp(&(b.start, &b.source_record_id)));
        tracing::info!(
            source = %self.name,
            window = %window,
            listed,
            kept = tally.kept,
            skipped_resource = tally.resource,
            skipped_status = tally.status,
            skipped_not_found = tally.not_found,
            skipped_unreadable = tally.unreadable + without_id,
            skipped_no_subject_id = tally.no_subject,
            skipped_no_start = tally.no_start,
            duration_ms = started.elapsed().as_millis() as u64,
            "Calpendo fetch done"
        );
        Ok(entries)
    }
}

fn status_error(status: StatusCode, req: Request) -> AttemptError {
    let what = req.what();
    match status.as_u16() {
        400 => AttemptError::Final(Failure::Config(format!(
            "Calpendo rejected the {what} request as malformed (HTTP 400): check api_path \
             and status_filter"
        ))),
        401 => AttemptError::Final(Failure::Config(format!(
            "Calpendo refused the credentials for the {what} request (HTTP 401 Unauthorized): \
             check CALPENDO_USERNAME and CALPENDO_PASSWORD"
        ))),
        403 => AttemptError::Final(Failure::Config(format!(
            "Calpendo denied the {what} request (HTTP 403 Forbidden): the account lacks \
             permission"
        ))),
        404 => AttemptError::Final(Failure::NotFound),
        408 | 429 => AttemptError::Transient(format!("HTTP {status}")),
        s if s >= 500 => AttemptError::Transient(format!("HTTP {status}")),
        _ => AttemptError::Final(Failure::Fetch(format!(
            "unexpected HTTP {status} for the {what} request"
        ))),
    }
}

#[async_trait::async_trait]
impl DataSource for CalpendoSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// The settings were checked when they were parsed ([`crate::parse_config`]) and the
    /// credentials read then; nothing is left to check without the network.
    fn validate_config(&self) -> Result<(), Vec<SourceError>> {
        Ok(())
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

    async fn fetch_entries(&self, window: &SyncWindow) -> Result<Vec<WorklistEntry>, SourceError> {
        let deadline = self.config.sync_deadline;
        match tokio::time::timeout(deadline, self.fetch_cycle(window)).await {
            Ok(result) => result,
            Err(_) => Err(SourceError::Fetch(format!(
                "deadline exceeded: the Calpendo sync did not finish within {:.1} s \
                 (sync_deadline)",
                deadline.as_secs_f64()
            ))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
    fn status_errors_are_classified() {
        let is_config = |s: u16| {
            matches!(
                status_error(StatusCode::from_u16(s).unwrap(), Request::List),
                AttemptError::Final(Failure::Config(_))
            )
        };
        let is_transient = |s: u16| {
            matches!(
                status_error(StatusCode::from_u16(s).unwrap(), Request::List),
                AttemptError::Transient(_)
            )
        };
        assert!(is_config(400) && is_config(401) && is_config(403));
        assert!(is_transient(500) && is_transient(502) && is_transient(503) && is_transient(429));
        assert!(matches!(
            status_error(StatusCode::NOT_FOUND, Request::Detail),
            AttemptError::Final(Failure::NotFound)
        ));
        assert!(matches!(
            status_error(StatusCode::from_u16(418).unwrap(), Request::Detail),
            AttemptError::Final(Failure::Fetch(_))
        ));
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
            SourceError::Fetch(m) => {
                assert!(m.contains("after 4 attempts"), "{m}");
                assert!(!m.contains("topsecret"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{src:?}").contains("topsecret"));
    }
}
