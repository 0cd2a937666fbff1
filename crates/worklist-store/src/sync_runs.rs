//! The record of sync cycles (`sync_runs`): when each source synced and how it went.

use jiff::Timestamp;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use worklist_model::SyncWindow;

use crate::error::StoreError;
use crate::reconcile::ReconcileCounts;

/// How a sync cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncOutcome {
    /// Fetched and reconciled.
    Success,
    /// The fetch or the reconcile failed; the store was not changed.
    Failed,
}

impl SyncOutcome {
    /// The stored name: `success` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncOutcome::Success => "success",
            SyncOutcome::Failed => "failed",
        }
    }
}

/// One sync cycle of one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRun {
    /// The source's name.
    pub source: String,
    /// When the cycle began.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Timestamp,
    /// How it ended.
    pub outcome: SyncOutcome,
    /// The window it covered, if it got that far.
    pub window: Option<SyncWindow>,
    /// What reconcile did (all zero on failure).
    pub counts: ReconcileCounts,
    /// Why it failed (never holds subject data or credentials).
    pub error: Option<String>,
}

/// How the error of a cycle refused by the mass-change guard begins
/// ([`StoreError::MassChange`]).
pub const MASS_CHANGE_REFUSED: &str = "mass change refused: ";

impl SyncRun {
    /// Whether the mass-change guard refused this cycle: an admin who checked the source
    /// may apply it once (`sync --once --accept-mass-change`, the status page, the API).
    pub fn refused_as_mass_change(&self) -> bool {
        self.outcome == SyncOutcome::Failed
            && self
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with(MASS_CHANGE_REFUSED))
    }
}

/// Records a finished sync cycle.
pub(crate) fn record(conn: &Connection, run: &SyncRun) -> Result<(), StoreError> {
    let fmt = |t: jiff::civil::DateTime| t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let c = &run.counts;
    conn.execute(
        "INSERT INTO sync_runs (source, started_at, finished_at, outcome, window_start,
                                    window_end, fetched, inserted, updated, unchanged,
                                    discontinued, deleted, rejected, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            run.source,
            run.started_at.to_string(),
            run.finished_at.to_string(),
            run.outcome.as_str(),
            run.window.map(|w| fmt(w.start)),
            run.window.map(|w| fmt(w.end)),
            c.fetched,
            c.inserted,
            c.updated,
            c.unchanged,
            c.discontinued,
            c.deleted,
            c.rejected,
            run.error,
        ],
    )?;
    Ok(())
}

/// The newest sync runs (at most `limit`), newest first, of one source or of all, of one
/// outcome or of both.
pub(crate) fn newest(
    conn: &Connection,
    source: Option<&str>,
    outcome: Option<SyncOutcome>,
    limit: usize,
) -> Result<Vec<SyncRun>, StoreError> {
    let outcome = outcome.map(|o| o.as_str());
    let mut stmt = conn.prepare_cached(
        "SELECT id, source, started_at, finished_at, outcome, window_start, window_end,
                        fetched, inserted, updated, unchanged, discontinued, deleted, rejected,
                        error
                   FROM sync_runs
                  WHERE (?1 IS NULL OR source = ?1) AND (?3 IS NULL OR outcome = ?3)
                  ORDER BY id DESC
                  LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![source, limit as i64, outcome], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            ReconcileCounts {
                fetched: r.get(7)?,
                inserted: r.get(8)?,
                updated: r.get(9)?,
                unchanged: r.get(10)?,
                discontinued: r.get(11)?,
                deleted: r.get(12)?,
                rejected: r.get(13)?,
            },
            r.get::<_, Option<String>>(14)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, source, started, finished, outcome, ws, we, counts, error) = row?;
        let corrupt = |column: &'static str, reason: String| StoreError::Corrupt {
            row_id: id,
            column,
            reason,
        };
        let ts = |v: &str, column| {
            v.parse::<Timestamp>()
                .map_err(|e| corrupt(column, e.to_string()))
        };
        let dt = |v: &str, column| {
            v.parse::<jiff::civil::DateTime>()
                .map_err(|e| corrupt(column, e.to_string()))
        };
        let window = match (ws, we) {
            (Some(s), Some(e)) => Some(SyncWindow {
                start: dt(&s, "window_start")?,
                end: dt(&e, "window_end")?,
            }),
            _ => None,
        };
        out.push(SyncRun {
            source,
            started_at: ts(&started, "started_at")?,
            finished_at: ts(&finished, "finished_at")?,
            outcome: match outcome.as_str() {
                "success" => SyncOutcome::Success,
                "failed" => SyncOutcome::Failed,
                other => return Err(corrupt("outcome", format!("unknown {other:?}"))),
            },
            window,
            counts,
            error,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn run(source: &str, outcome: SyncOutcome, at: i64) -> SyncRun {
        let t = Timestamp::from_second(at).expect("time");
        SyncRun {
            source: source.into(),
            started_at: t,
            finished_at: t,
            outcome,
            window: None,
            counts: ReconcileCounts::default(),
            error: (outcome == SyncOutcome::Failed).then(|| "boom".to_string()),
        }
    }

    #[test]
    fn last_successful_sync_skips_failures_and_other_sources() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("w.db")).expect("open");
        assert!(store.last_successful_sync("a").expect("query").is_none());
        store
            .record_sync_run(&run("a", SyncOutcome::Success, 1_000))
            .expect("record");
        store
            .record_sync_run(&run("a", SyncOutcome::Failed, 2_000))
            .expect("record");
        store
            .record_sync_run(&run("b", SyncOutcome::Success, 3_000))
            .expect("record");
        let last = store
            .last_successful_sync("a")
            .expect("query")
            .expect("one");
        assert_eq!(last.finished_at.as_second(), 1_000);
        let newest = store.recent_sync_runs(Some("a"), 1).expect("query");
        assert_eq!(newest[0].outcome, SyncOutcome::Failed);
        assert_eq!(store.recent_sync_runs(None, 10).expect("query").len(), 3);
    }

    #[test]
    fn a_refusal_of_the_guard_is_known_by_its_error() {
        let refusal = StoreError::MassChange {
            name: "calpendo".into(),
            removing: 5,
            active: 5,
            max_fraction: 0.5,
        };
        let run = |outcome, error: Option<String>| SyncRun {
            source: "calpendo".into(),
            started_at: Timestamp::UNIX_EPOCH,
            finished_at: Timestamp::UNIX_EPOCH,
            outcome,
            window: None,
            counts: ReconcileCounts::default(),
            error,
        };
        assert!(run(SyncOutcome::Failed, Some(refusal.to_string())).refused_as_mass_change());
        let other = Some("cannot connect to 127.0.0.1:9".to_string());
        assert!(!run(SyncOutcome::Failed, other).refused_as_mass_change());
        assert!(!run(SyncOutcome::Success, None).refused_as_mass_change());
    }
}
