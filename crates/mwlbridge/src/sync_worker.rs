//! The sync worker: runs each source's cycles, records them, and keeps the store tidy.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Time;
use jiff::tz::TimeZone;
use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot, watch};
use worklist_store::{
    DataSource, MassChangeGuard, ReconcileCounts, Store, StoreError, SyncOutcome, SyncRun,
};

use crate::metrics::SyncMetrics;
use crate::shutdown::stopped;
use crate::tidy::{Said, fetch_tidied};

/// A "sync now" request for a cycle.
#[derive(Debug, Default)]
pub struct SyncRequest {
    /// When present, gets the run.
    pub reply: Option<oneshot::Sender<SyncRun>>,
    /// Run the cycle without the mass-change guard (an admin accepted its changes).
    pub accept_mass_change: bool,
}

/// Each source's "sync now" requests, by source name (the admin side sends them; see
/// `sync_control`).
pub type SyncRequests = HashMap<String, mpsc::Receiver<SyncRequest>>;

/// When a source's first cycle runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstCycle {
    /// At once.
    AtStart,
    /// One interval after the start: the caller already ran it (the demo, which waits
    /// for its data before printing how to query it).
    AlreadyRun,
}

/// How [`run_forever`] runs besides the sources.
pub struct WorkerOptions {
    /// When the first cycles run.
    pub first_cycle: FirstCycle,
    /// Each source's "sync now" requests (empty: none come).
    pub sync_now: SyncRequests,
}

/// A source ready to sync, with the settings the worker needs.
#[derive(Clone)]
pub struct ScheduledSource {
    /// The source.
    pub source: Arc<dyn DataSource>,
    /// Local hours during which it syncs; `None`: always.
    pub operation_interval: Option<(Time, Time)>,
}

/// What the worker needs besides the sources.
#[derive(Clone)]
pub struct SyncContext {
    /// The store.
    pub store: Store,
    /// The site's zone, for retention and operation hours.
    pub site_zone: TimeZone,
    /// Purge entries that ended more than this many days ago.
    pub retention_days: u32,
    /// Where each cycle is counted.
    pub metrics: SyncMetrics,
    /// How much one complete cycle may remove (`store.max_discontinue_fraction`; off for
    /// `sync --once --accept-mass-change`).
    pub guard: MassChangeGuard,
    /// The fitted-value warnings already logged.
    pub said: Said,
}

/// Runs one sync cycle of `source`: fetch, reconcile in one transaction, record the run.
/// A failure changes nothing in the store; it is logged and recorded, never raised.
pub async fn run_cycle(source: &dyn DataSource, ctx: &SyncContext) -> SyncRun {
    let name = source.name().to_string();
    let started_at = Timestamp::now();
    let clock = std::time::Instant::now();
    let window = source.sync_window(started_at);
    let mut mode = "complete";
    let result = match fetch_tidied(source, &window, &ctx.said).await {
        Ok(fetched) => {
            mode = fetched.mode();
            let on_cancel = source.on_cancel();
            let src = name.clone();
            let guard = ctx.guard;
            ctx.store
                .run(move |s| {
                    s.apply_fetched(&src, &window, fetched, on_cancel, Timestamp::now(), guard)
                })
                .await
                .map_err(|e| match e {
                    StoreError::MassChange { .. } => format!(
                        "{e}. If the source really changed that much, apply it once with \
                         `mwlbridge sync --once --accept-mass-change`, the status page's \
                         \"Apply the mass change\", or the API's sync with \
                         accept_mass_change=true (store.max_discontinue_fraction)"
                    ),
                    e => e.to_string(),
                })
        }
        Err(e) => Err(e),
    };
    if result.is_ok() {
        source.cycle_committed(started_at);
    }
    let (outcome, counts, error) = match result {
        Ok(counts) => (SyncOutcome::Success, counts, None),
        Err(e) => (SyncOutcome::Failed, ReconcileCounts::default(), Some(e)),
    };
    let run = SyncRun {
        source: name.clone(),
        started_at,
        finished_at: Timestamp::now(),
        outcome,
        window: Some(window),
        counts,
        error,
    };
    let elapsed = clock.elapsed();
    ctx.metrics.record(&run, elapsed);
    let elapsed_ms = elapsed.as_millis() as u64;
    match &run.error {
        None => tracing::info!(
            source = %name,
            window = %window,
            mode,
            fetched = counts.fetched,
            inserted = counts.inserted,
            updated = counts.updated,
            unchanged = counts.unchanged,
            discontinued = counts.discontinued,
            deleted = counts.deleted,
            rejected = counts.rejected,
            elapsed_ms,
            "sync cycle done"
        ),
        Some(e) => tracing::error!(
            source = %name,
            window = %window,
            elapsed_ms,
            error = %e,
            "sync cycle failed; the worklist is unchanged and the next cycle will try again"
        ),
    }
    let record = run.clone();
    if let Err(e) = ctx.store.run(move |s| s.record_sync_run(&record)).await {
        tracing::error!(source = %name, error = %e, "could not record the sync run");
    }
    if run.outcome == SyncOutcome::Success {
        purge(ctx).await;
    }
    run
}

/// Removes entries past the retention period.
pub async fn purge(ctx: &SyncContext) {
    let now = Timestamp::now().to_zoned_datetime(ctx.site_zone.clone());
    let cutoff = match now.checked_sub(jiff::Span::new().days(i64::from(ctx.retention_days))) {
        Ok(t) => t.datetime(),
        Err(e) => {
            tracing::error!(error = %e, "cannot compute the retention cutoff");
            return;
        }
    };
    match ctx.store.run(move |s| s.purge_ended_before(cutoff)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            purged = n,
            retention_days = ctx.retention_days,
            "old entries purged"
        ),
        Err(e) => tracing::error!(error = %e, "purging old entries failed"),
    }
}

/// Whether local time `t` lies in the operation interval (inclusive; may cross midnight).
pub fn in_operation_hours(interval: Option<(Time, Time)>, t: Time) -> bool {
    match interval {
        None => true,
        Some((start, end)) if start <= end => start <= t && t <= end,
        Some((start, end)) => t >= start || t <= end,
    }
}

/// Syncs every source every `sync_interval` — first as `options.first_cycle` says — until
/// `shutdown` turns true. A request on the source's channel in `options.sync_now` ("sync
/// now" from the admin interface) runs a cycle at once, also outside operation hours, and
/// answers with its run. At shutdown a
/// cycle still fetching is abandoned (fetching changes nothing); a reconcile already
/// running completes its transaction on the blocking pool.
pub async fn run_forever(
    sources: Vec<ScheduledSource>,
    ctx: SyncContext,
    shutdown: watch::Receiver<bool>,
    options: WorkerOptions,
) {
    let WorkerOptions {
        first_cycle,
        sync_now: mut requests,
    } = options;
    let mut tasks = tokio::task::JoinSet::new();
    for s in sources {
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        let mut inbox = requests.remove(s.source.name());
        tasks.spawn(async move {
            let interval = s.source.sync_interval().max(Duration::from_secs(1));
            let mut waiting: Vec<oneshot::Sender<SyncRun>> = Vec::new();
            let (mut due, mut asked) = (first_cycle == FirstCycle::AtStart, false);
            let mut accepted = false;
            loop {
                if due {
                    let local = Timestamp::now()
                        .to_zoned_datetime(ctx.site_zone.clone())
                        .time();
                    if asked || in_operation_hours(s.operation_interval, local) {
                        let mut cycle_ctx = ctx.clone();
                        if std::mem::take(&mut accepted) {
                            tracing::warn!(
                                source = s.source.name(),
                                "this cycle runs without the mass-change guard, as an admin \
                                 accepted its changes"
                            );
                            cycle_ctx.guard = MassChangeGuard::Off;
                        }
                        let run = tokio::select! {
                            run = run_cycle(s.source.as_ref(), &cycle_ctx) => run,
                            _ = stopped(shutdown.clone()) => break,
                        };
                        for w in waiting.drain(..) {
                            let _ = w.send(run.clone());
                        }
                    } else {
                        tracing::debug!(
                            source = s.source.name(),
                            "outside operation hours; skipped"
                        );
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => (due, asked) = (true, false),
                    request = next_request(&mut inbox) => {
                        waiting.extend(request.reply);
                        accepted |= request.accept_mass_change;
                        (due, asked) = (true, true);
                    }
                    _ = stopped(shutdown.clone()) => break,
                }
            }
            tracing::info!(source = s.source.name(), "sync worker stopped");
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// The next "sync now" request; never returns once the channel is closed (or absent).
async fn next_request(inbox: &mut Option<mpsc::Receiver<SyncRequest>>) -> SyncRequest {
    if let Some(rx) = inbox {
        if let Some(request) = rx.recv().await {
            return request;
        }
        *inbox = None;
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i8, m: i8) -> Time {
        Time::new(h, m, 0, 0).expect("time")
    }

    #[test]
    fn operation_hours() {
        assert!(in_operation_hours(None, t(3, 0)));
        let day = Some((t(7, 0), t(19, 0)));
        assert!(in_operation_hours(day, t(7, 0)));
        assert!(in_operation_hours(day, t(19, 0)));
        assert!(!in_operation_hours(day, t(19, 1)));
        let night = Some((t(22, 0), t(6, 0)));
        assert!(in_operation_hours(night, t(23, 0)));
        assert!(in_operation_hours(night, t(5, 0)));
        assert!(!in_operation_hours(night, t(12, 0)));
    }

    /// A source that returns two entries, or fails while `fail` is set.
    struct Scripted {
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl DataSource for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn sync_window(&self, _now: Timestamp) -> worklist_store::SyncWindow {
            let d = jiff::civil::date(2026, 11, 26);
            worklist_store::SyncWindow {
                start: d.at(0, 0, 0, 0),
                end: d.at(23, 0, 0, 0),
            }
        }
        async fn fetch_entries(
            &self,
            _window: &worklist_store::SyncWindow,
        ) -> Result<Vec<worklist_store::WorklistEntry>, worklist_store::SourceError> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(worklist_store::SourceError::Fetch(
                    worklist_store::source::FetchFailure::Status {
                        status: 503,
                        message: "HTTP 503".into(),
                    },
                ));
            }
            let d = jiff::civil::date(2026, 11, 26);
            Ok(["1", "2"]
                .into_iter()
                .map(|id| {
                    worklist_store::WorklistEntry::new("scripted", id, "SUB", d.at(9, 0, 0, 0))
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn cycles_are_counted_by_outcome_with_their_changes() {
        use crate::metrics::tests::{text, value};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("worklist.db")).expect("store");
        let source = Scripted { fail: false.into() };
        let metrics = crate::metrics::build([&source as &dyn DataSource]);
        let ctx = SyncContext {
            store,
            site_zone: TimeZone::UTC,
            retention_days: 30,
            metrics: metrics.sync.clone(),
            guard: MassChangeGuard::MaxFraction(0.5),
            said: Default::default(),
        };
        let series = |outcome: &str| {
            format!("mwlbridge_sync_runs_total{{source=\"scripted\",outcome=\"{outcome}\"}}")
        };
        let inserted = "mwlbridge_sync_entries_total{source=\"scripted\",change=\"inserted\"}";
        let last = "mwlbridge_sync_last_success_timestamp_seconds{source=\"scripted\"}";
        let before = text(&metrics.registry);
        assert_eq!(value(&before, &series("success")), Some(0.0), "{before}");
        assert_eq!(value(&before, last), Some(0.0), "{before}");

        let run = run_cycle(&source, &ctx).await;
        assert_eq!(run.outcome, SyncOutcome::Success);
        let t = text(&metrics.registry);
        assert_eq!(value(&t, &series("success")), Some(1.0), "{t}");
        assert_eq!(value(&t, &series("failed")), Some(0.0), "{t}");
        assert_eq!(value(&t, inserted), Some(2.0), "{t}");
        assert_eq!(
            value(&t, last),
            Some(run.finished_at.as_second() as f64),
            "{t}"
        );

        source.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let failed = run_cycle(&source, &ctx).await;
        assert_eq!(failed.outcome, SyncOutcome::Failed);
        let t = text(&metrics.registry);
        assert_eq!(value(&t, &series("success")), Some(1.0), "{t}");
        assert_eq!(value(&t, &series("failed")), Some(1.0), "{t}");
        assert_eq!(
            value(&t, inserted),
            Some(2.0),
            "a failure changes nothing: {t}"
        );
        assert_eq!(
            value(&t, last),
            Some(run.finished_at.as_second() as f64),
            "the last success stays: {t}"
        );
        assert_eq!(
            value(
                &t,
                "mwlbridge_sync_duration_seconds_count{source=\"scripted\"}"
            ),
            Some(2.0),
            "{t}"
        );
    }

    /// "Sync now" runs a cycle at once, even outside operation hours and long before the
    /// interval is up, and answers with that run; unknown sources are refused.
    #[tokio::test]
    async fn sync_now_runs_a_cycle_at_once_and_answers_with_it() {
        use admin_http::{SyncControl, SyncTriggerError};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("worklist.db")).expect("store");
        let source: Arc<dyn DataSource> = Arc::new(Scripted { fail: false.into() });
        let metrics = crate::metrics::build([source.as_ref()]);
        let ctx = SyncContext {
            store: store.clone(),
            site_zone: TimeZone::UTC,
            retention_days: 30,
            metrics: metrics.sync.clone(),
            guard: MassChangeGuard::MaxFraction(0.5),
            said: Default::default(),
        };
        // Operation hours that never include now: only a request can run a cycle.
        let now = Timestamp::now().to_zoned_datetime(TimeZone::UTC).time();
        let shifted = |h: i8| Time::new((now.hour() + h) % 24, 0, 0, 0).expect("time");
        let scheduled = vec![ScheduledSource {
            source,
            operation_interval: Some((shifted(2), shifted(3))),
        }];
        let (control, requests) = crate::sync_control::WorkerControl::new(&scheduled);
        let (stop_tx, stop_rx) = watch::channel(false);
        let options = WorkerOptions {
            first_cycle: FirstCycle::AlreadyRun,
            sync_now: requests,
        };
        let worker = tokio::spawn(run_forever(scheduled, ctx, stop_rx, options));
        assert_eq!(control.sources()[0].name, "scripted");
        let run = tokio::time::timeout(
            Duration::from_secs(20),
            control.trigger(
                "scripted",
                admin_http::SyncNow {
                    wait: true,
                    ..Default::default()
                },
            ),
        )
        .await
        .expect("answered")
        .expect("triggered")
        .expect("a run");
        assert_eq!(run.outcome, SyncOutcome::Success);
        assert_eq!(run.counts.inserted, 2);
        assert_eq!(store.recent_sync_runs(None, 10).expect("runs").len(), 1);
        assert_eq!(
            control
                .trigger("nope", admin_http::SyncNow::default())
                .await,
            Err(SyncTriggerError::UnknownSource("nope".into()))
        );
        assert_eq!(
            control
                .trigger("scripted", admin_http::SyncNow::default())
                .await,
            Ok(None)
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while store.recent_sync_runs(None, 10).expect("runs").len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "queued request never ran"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop_tx.send(true).expect("stop");
        worker.await.expect("worker stops");
        assert_eq!(
            control
                .trigger(
                    "scripted",
                    admin_http::SyncNow {
                        wait: true,
                        ..Default::default()
                    }
                )
                .await,
            Err(SyncTriggerError::Stopping)
        );
    }
}
