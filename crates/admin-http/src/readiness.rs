//! Whether each source has synced recently enough: the one rule that `/readyz` answers
//! with and the status page's "may be stale" banner shows.
//!
//! A source is *ready* while its newest successful sync finished less than
//! `unready_after_intervals` of its sync intervals ago; a source that never succeeded is
//! counted from the process's start (so a fresh start has that long to sync once).

use jiff::Timestamp;
use worklist_store::{StoreError, SyncRun};

use crate::AdminContext;
use crate::sync_control::SourceInfo;

/// One source's sync history and whether it counts as ready.
#[derive(Debug, Clone)]
pub(crate) struct SourceState {
    /// The source.
    pub(crate) info: SourceInfo,
    /// Its newest run, successful or not.
    pub(crate) last: Option<SyncRun>,
    /// Its newest successful run.
    pub(crate) success: Option<SyncRun>,
    /// Seconds since the newest success (or since start, when it never succeeded).
    pub(crate) seconds_since_success: i64,
    /// Whether it synced recently enough.
    pub(crate) ready: bool,
}

impl SourceState {
    /// Judges `info` at `now` from its newest run and newest success.
    pub(crate) fn judge(
        info: SourceInfo,
        last: Option<SyncRun>,
        success: Option<SyncRun>,
        unready_after_intervals: u32,
        started_at: Timestamp,
        now: Timestamp,
    ) -> SourceState {
        let since = success.as_ref().map_or(started_at, |r| r.finished_at);
        let age = now.duration_since(since).as_secs().max(0);
        let allowed = info
            .interval
            .as_secs()
            .saturating_mul(u64::from(unready_after_intervals))
            .max(1);
        let ready = age.unsigned_abs() < allowed;
        SourceState {
            info,
            last,
            success,
            seconds_since_success: age,
            ready,
        }
    }
}

/// Every enabled source with its runs, judged now. Fails when the store does not answer
/// (the store's entry count is read too, so a broken database is noticed here).
pub(crate) async fn source_states(ctx: &AdminContext) -> Result<Vec<SourceState>, StoreError> {
    let sources = ctx.sync.sources();
    let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let runs = ctx
        .store
        .run(move |s| {
            s.count()?;
            names
                .iter()
                .map(|n| {
                    Ok((
                        s.recent_sync_runs(Some(n), 1)?.pop(),
                        s.last_successful_sync(n)?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await?;
    Ok(judge_all(ctx, sources, runs))
}

/// Every source judged from its `(newest run, newest success)`.
pub(crate) fn judge_all(
    ctx: &AdminContext,
    sources: Vec<SourceInfo>,
    runs: Vec<(Option<SyncRun>, Option<SyncRun>)>,
) -> Vec<SourceState> {
    let now = Timestamp::now();
    sources
        .into_iter()
        .zip(runs)
        .map(|(info, (last, success))| {
            SourceState::judge(
                info,
                last,
                success,
                ctx.settings.unready_after_intervals,
                ctx.started_at,
                now,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use worklist_store::{ReconcileCounts, SyncOutcome};

    use super::*;

    fn run(finished_at: Timestamp, outcome: SyncOutcome) -> SyncRun {
        SyncRun {
            source: "calpendo".into(),
            started_at: finished_at,
            finished_at,
            outcome,
            window: None,
            counts: ReconcileCounts::default(),
            error: None,
        }
    }

    fn info() -> SourceInfo {
        SourceInfo {
            name: "calpendo".into(),
            interval: Duration::from_secs(60),
            stations: Vec::new(),
        }
    }

    #[test]
    fn a_source_is_unready_after_its_intervals_without_a_success() {
        let now: Timestamp = "2026-12-04T15:00:00Z".parse().expect("instant");
        let ago = |s: i64| now - jiff::SignedDuration::from_secs(s);
        let judge = |success: Option<SyncRun>| {
            SourceState::judge(info(), None, success, 3, ago(10_000), now)
        };
        assert!(judge(Some(run(ago(179), SyncOutcome::Success))).ready);
        let stale = judge(Some(run(ago(180), SyncOutcome::Success)));
        assert!(!stale.ready);
        assert_eq!(stale.seconds_since_success, 180);
        // Never succeeded: counted from start.
        assert!(!judge(None).ready);
        assert!(SourceState::judge(info(), None, None, 3, ago(30), now).ready);
    }
}
