//! [`RedcapSource`]: the [`DataSource`] of a REDCap project.
//!
//! # Window
//!
//! A cycle starting at `now` covers the site's local `[today 00:00, today +
//! mwl_days_ahead + 1 days 00:00)`: today only by default, as Pylantir's
//! `mwl_days_ahead` shows today and that many days after.
//!
//! # Complete and incremental cycles
//!
//! A complete cycle asks for the data dictionary (`content=metadata`, cached for the
//! cycles between) and exports every record: 2 requests, whatever the number of records.
//! It returns [`Fetched::Complete`] with the visits that start inside the window.
//!
//! Between complete cycles, a cycle exports only the records modified since the start of
//! the last committed cycle minus `modified_margin` (`dateRangeBegin`, the REDCap
//! server's local time, which is the site's zone): 1 request. It returns
//! [`Fetched::Changed`] with the changed records' visits that start inside the window,
//! **plus those outside it that an earlier cycle of this process delivered** (a visit
//! moved to another day: the store must learn its new date, else it would be offered on
//! the old one). A visit never delivered that starts outside the window is left out, so
//! old visits of an edited record do not enter the store. No `dateRangeEnd` is sent: the
//! next cycle's begin lies before this cycle's start anyway, and an end taken from our
//! clock could drop saves when REDCap's clock runs ahead.
//!
//! A cycle is complete when no cycle has been committed yet, when no complete one has,
//! when `full_refresh` has passed since the start of the last committed complete cycle,
//! and when its window is not that cycle's (after midnight: the new day's visits that
//! nobody edited must come in too). What a fetch returned counts only once the scheduler says it is stored
//! ([`DataSource::cycle_committed`]): after a failed fetch, or a fetch the store could not
//! take, the next cycle is complete again if this one was meant to be, and an incremental
//! one reaches back to the last committed start. Deleted instances and records, which an
//! incremental export cannot show, leave the worklist at the next complete cycle.
//!
//! Logs name records by id and give counts; subject IDs, names and dates are never
//! logged.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use worklist_store::source::{ConfigFailure, FetchFailure};
use worklist_store::{
    DataSource, Fetched, OnCancel, SourceError, SourceMetrics, SyncWindow, WorklistEntry,
};

use crate::client::Client;
use crate::config::RedcapConfig;
use crate::error::{AttemptError, Request};
use crate::export::{Metadata, parse_rows, wanted_fields};
use crate::shape::{self, Skip};

/// The REDCap data source.
pub struct RedcapSource {
    name: String,
    config: Arc<RedcapConfig>,
    client: Client,
    clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    state: Mutex<SyncState>,
}

impl fmt::Debug for RedcapSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedcapSource")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What the source remembers between cycles.
#[derive(Debug, Default)]
struct SyncState {
    /// The data dictionary, asked again by every complete cycle.
    metadata: Option<Arc<Metadata>>,
    /// Start of the last committed cycle.
    last_committed: Option<Timestamp>,
    /// Start and window of the last committed complete cycle.
    last_complete: Option<(Timestamp, SyncWindow)>,
    /// What the last successful fetch returned, until committed.
    pending: Option<Pending>,
    /// Entry record ids (`record:instance`) delivered by committed cycles since the last
    /// committed complete one.
    delivered: HashSet<String>,
}

#[derive(Debug)]
struct Pending {
    complete: bool,
    window: SyncWindow,
    ids: Vec<String>,
}

/// Which export a cycle makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Complete,
    ChangedSince(Timestamp),
}

impl RedcapSource {
    /// A source named `name` (entries carry it), with one HTTP client for its requests.
    pub fn new(name: &str, config: RedcapConfig) -> Result<RedcapSource, SourceError> {
        let client = Client::new(
            name,
            &config.api_url,
            config.token.clone(),
            config.request_timeout,
            config.max_retries,
            config.max_response_bytes,
        )?;
        Ok(RedcapSource {
            name: name.to_string(),
            config: Arc::new(config),
            client,
            clock: Arc::new(Timestamp::now),
            state: Mutex::new(SyncState::default()),
        })
    }

    /// Sets the back-off before the first retry (doubled for each further retry).
    pub fn with_backoff_base(mut self, base: Duration) -> RedcapSource {
        self.client.backoff_base = base;
        self
    }

    /// Sets the clock that decides when a complete cycle is due (default: the system's).
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> Timestamp + Send + Sync + 'static,
    ) -> RedcapSource {
        self.clock = Arc::new(clock);
        self
    }

    /// The source's settings.
    pub fn config(&self) -> &RedcapConfig {
        &self.config
    }

    fn state(&self) -> MutexGuard<'_, SyncState> {
        // Every critical section is a few assignments: poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the next cycle over `window` is complete, or changed since when.
    fn next_mode(&self, now: Timestamp, window: &SyncWindow) -> Mode {
        let s = self.state();
        let refresh =
            SignedDuration::try_from(self.config.full_refresh).unwrap_or(SignedDuration::MAX);
        let margin =
            SignedDuration::try_from(self.config.modified_margin).unwrap_or(SignedDuration::ZERO);
        match (s.last_committed, s.last_complete) {
            (Some(committed), Some((complete, covered)))
                if covered == *window && now.duration_since(complete) < refresh =>
            {
                Mode::ChangedSince(committed.checked_sub(margin).unwrap_or(Timestamp::MIN))
            }
            _ => Mode::Complete,
        }
    }

    /// The data dictionary: asked for on a complete cycle or when none is cached.
    async fn metadata(&self, refresh: bool) -> Result<Arc<Metadata>, SourceError> {
        if !refresh && let Some(m) = self.state().metadata.clone() {
            return Ok(m);
        }
        let params = [
            ("content", "metadata"),
            ("format", "json"),
            ("returnFormat", "json"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let v = self.client.post(&params, Request::Metadata).await?;
        let m = Arc::new(Metadata::from_json(&v).map_err(|e| invalid(Request::Metadata, &e.0))?);
        self.state().metadata = Some(Arc::clone(&m));
        Ok(m)
    }

    /// The record export's form.
    fn record_params(&self, fields: &[String], mode: Mode) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = [
            ("content", "record"),
            ("format", "json"),
            ("type", "flat"),
            ("returnFormat", "json"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        for (i, f) in fields.iter().enumerate() {
            p.push((format!("fields[{i}]"), f.clone()));
        }
        if let Mode::ChangedSince(since) = mode {
            let local = self.config.tz.to_datetime(since);
            p.push((
                "dateRangeBegin".into(),
                local.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            ));
        }
        p
    }

    /// One cycle's export, shaped into entries.
    async fn run(
        &self,
        window: &SyncWindow,
        mode: Mode,
    ) -> Result<Vec<WorklistEntry>, SourceError> {
        let started = std::time::Instant::now();
        self.state().pending = None;
        let meta = self.metadata(mode == Mode::Complete).await?;
        let c = &self.config;
        for (key, field) in [
            ("date_field", &c.date_field),
            ("time_field", &c.time_field),
            ("instance_field", &c.instance_field),
        ] {
            if !meta.has(field) {
                return Err(SourceError::Config(ConfigFailure::Setup {
                    message: format!(
                        "the REDCap project has no field {field:?} ({key}); check {key} against \
                         its data dictionary"
                    ),
                    source: None,
                }));
            }
        }
        let fields = wanted_fields(c, &meta);
        let answer = self
            .client
            .post(&self.record_params(&fields, mode), Request::Records)
            .await?;
        let rows = parse_rows(answer).map_err(|e| invalid(Request::Records, &e.0))?;
        let (visits, mut skipped) = shape::visits(&rows, meta.record_id_field(), c);
        let delivered = match mode {
            Mode::Complete => HashSet::new(),
            Mode::ChangedSince(_) => self.state().delivered.clone(),
        };
        let mut seen = HashSet::new();
        let (mut entries, mut outside, mut duplicates) = (Vec::new(), 0usize, 0usize);
        for visit in &visits {
            let e = match shape::entry(&self.name, visit, c, &meta) {
                Ok(e) => e,
                Err(skip) => {
                    skipped.push((visit.record_id.clone(), skip));
                    continue;
                }
            };
            if !seen.insert(e.source_record_id.clone()) {
                duplicates += 1;
                tracing::warn!(source = %self.name, record_id = %visit.record_id,
                    "two visits of a record have the same instance; the first is kept");
                continue;
            }
            if window.contains(e.start) || delivered.contains(&e.source_record_id) {
                entries.push(e);
            } else {
                outside += 1;
            }
        }
        for (record_id, skip) in &skipped {
            let why = match skip {
                Skip::Missing(_) => "has no value",
                Skip::Unreadable(_) => "is not a date or time in an accepted form",
            };
            tracing::warn!(source = %self.name, %record_id, field = skip.field(), "visit skipped: the field {why}");
        }
        entries.sort_by(|a, b| (a.start, &a.source_record_id).cmp(&(b.start, &b.source_record_id)));
        self.state().pending = Some(Pending {
            complete: mode == Mode::Complete,
            window: *window,
            ids: entries.iter().map(|e| e.source_record_id.clone()).collect(),
        });
        tracing::info!(
            source = %self.name,
            mode = if mode == Mode::Complete { "complete" } else { "changed" },
            window = %window,
            rows = rows.len(),
            visits = visits.len(),
            entries = entries.len(),
            outside_window = outside,
            skipped = skipped.len(),
            duplicates,
            duration_ms = started.elapsed().as_millis() as u64,
            "REDCap fetch done"
        );
        Ok(entries)
    }

    /// [`RedcapSource::run`] within the cycle's deadline.
    async fn run_with_deadline(
        &self,
        window: &SyncWindow,
        mode: Mode,
    ) -> Result<Vec<WorklistEntry>, SourceError> {
        let deadline = self.config.sync_deadline;
        tokio::time::timeout(deadline, self.run(window, mode))
            .await
            .unwrap_or_else(|_| {
                Err(SourceError::Fetch(FetchFailure::Deadline {
                    message: format!(
                        "deadline exceeded: the REDCap sync did not finish within {:.1} s (sync_deadline)",
                        deadline.as_secs_f64()
                    ),
                }))
            })
    }
}

/// An answer of the wrong shape.
fn invalid(req: Request, what: &str) -> SourceError {
    match AttemptError::invalid(format!("the REDCap {} answer: {what}", req.what()), None) {
        AttemptError::Final(e) => e,
        transient => transient.exhausted(req, 1),
    }
}

/// The site-local window of a cycle starting at `now`: today and `days_ahead` more days.
pub fn sync_window(tz: &jiff::tz::TimeZone, days_ahead: u32, now: Timestamp) -> SyncWindow {
    let today = tz.to_datetime(now).date();
    let start = today.to_datetime(jiff::civil::Time::midnight());
    let end = start
        .checked_add(jiff::Span::new().days(i64::from(days_ahead) + 1))
        .unwrap_or(jiff::civil::DateTime::MAX);
    SyncWindow { start, end }
}

#[async_trait::async_trait]
impl DataSource for RedcapSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn sync_window(&self, now: Timestamp) -> SyncWindow {
        sync_window(&self.config.tz, self.config.mwl_days_ahead, now)
    }

    fn sync_interval(&self) -> Duration {
        self.config.sync_interval
    }

    fn on_cancel(&self) -> OnCancel {
        self.config.on_cancel
    }

    /// Requests are counted by kind (`metadata`, `records`) and outcome, each attempt.
    fn attach_metrics(&self, metrics: &SourceMetrics) {
        self.client.attach_metrics(metrics);
    }

    /// A complete export, whatever the state (it counts as complete once committed).
    async fn fetch_entries(&self, window: &SyncWindow) -> Result<Vec<WorklistEntry>, SourceError> {
        self.run_with_deadline(window, Mode::Complete).await
    }

    async fn fetch(&self, window: &SyncWindow) -> Result<Fetched, SourceError> {
        let mode = self.next_mode((self.clock)(), window);
        let entries = self.run_with_deadline(window, mode).await?;
        Ok(match mode {
            Mode::Complete => Fetched::Complete(entries),
            Mode::ChangedSince(_) => Fetched::Changed(entries),
        })
    }

    fn cycle_committed(&self, started_at: Timestamp) {
        let mut s = self.state();
        if let Some(p) = s.pending.take() {
            if p.complete {
                s.last_complete = Some((started_at, p.window));
                s.delivered = p.ids.into_iter().collect();
            } else {
                s.delivered.extend(p.ids);
            }
            s.last_committed = Some(s.last_committed.map_or(started_at, |t| t.max(started_at)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn window_is_today_and_days_ahead() {
        let tz = worklist_store::ZoneDb::bundled()
            .get("America/Edmonton")
            .expect("zone");
        // 2026-12-05 23:30 in Edmonton (UTC-6) is 2026-12-06 05:30 UTC.
        let now: Timestamp = "2026-12-06T05:30:00Z".parse().expect("instant");
        let w = sync_window(&tz, 0, now);
        assert_eq!(w.start, date(2026, 12, 5).at(0, 0, 0, 0));
        assert_eq!(w.end, date(2026, 12, 6).at(0, 0, 0, 0));
        let w = sync_window(&tz, 2, now);
        assert_eq!(w.end, date(2026, 12, 8).at(0, 0, 0, 0));
    }
}
