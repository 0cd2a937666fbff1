//! The sync worker: runs each source's cycles, records them, and keeps the store tidy.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Time;
use jiff::tz::TimeZone;
use tokio::sync::watch;
use worklist_store::{DataSource, ReconcileCounts, Store, SyncOutcome, SyncRun};

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
}

/// Runs one sync cycle of `source`: fetch, reconcile in one transaction, record the run.
/// A failure changes nothing in the store; it is logged and recorded, never raised.
pub async fn run_cycle(source: &dyn DataSource, ctx: &SyncContext) -> SyncRun {
    let name = source.name().to_string();
    let started_at = Timestamp::now();
    let clock = std::time::Instant::now();
    let window = source.sync_window(started_at);
    let result = match source.fetch_entries(&window).await {
        Ok(entries) => {
            let on_cancel = source.on_cancel();
            let src = name.clone();
            ctx.store
                .run(move |s| s.reconcile(&src, &window, entries, on_cancel, Timestamp::now()))
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
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
    let elapsed_ms = clock.elapsed().as_millis() as u64;
    match &run.error {
        None => tracing::info!(
            source = %name,
            window = %window,
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

/// Syncs every source every `sync_interval` — first at once, or after one interval when
/// `first_cycle_done` (the caller already ran it) — until `shutdown` turns true. At
/// shutdown a cycle still fetching is abandoned (fetching changes nothing); a reconcile
/// already running completes its transaction on the blocking pool.
pub async fn run_forever(
    sources: Vec<ScheduledSource>,
    ctx: SyncContext,
    shutdown: watch::Receiver<bool>,
    first_cycle_done: bool,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for s in sources {
        let ctx = ctx.clone();
        let mut shutdown = shutdown.clone();
        tasks.spawn(async move {
            let interval = s.source.sync_interval().max(Duration::from_secs(1));
            if first_cycle_done {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = wait_for(&mut shutdown) => return,
                }
            }
            loop {
                let local = Timestamp::now()
                    .to_zoned_datetime(ctx.site_zone.clone())
                    .time();
                if in_operation_hours(s.operation_interval, local) {
                    tokio::select! {
                        _ = run_cycle(s.source.as_ref(), &ctx) => {}
                        _ = wait_for(&mut shutdown) => break,
                    }
                } else {
                    tracing::debug!(source = s.source.name(), "outside operation hours; skipped");
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = wait_for(&mut shutdown) => break,
                }
            }
            tracing::info!(source = s.source.name(), "sync worker stopped");
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn wait_for(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: treat it as a shutdown too.
    let _ = shutdown.wait_for(|stop| *stop).await;
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
}
