//! Unauthenticated endpoints for monitors: liveness, readiness and Prometheus metrics.
//! None of them carries subject data (source names, outcomes, times and counts only).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use serde::Serialize;
use worklist_store::StepStatus;

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// `GET /healthz`: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// One source's readiness.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SourceReadiness {
    /// Source name.
    name: String,
    /// Outcome of its newest sync run (`success` / `failed`), if any.
    last_outcome: Option<String>,
    /// When its newest sync run finished.
    last_run_at: Option<String>,
    /// When its newest successful sync run finished.
    last_success_at: Option<String>,
    /// Seconds since the newest success (or since start, when it never succeeded).
    seconds_since_success: i64,
    /// Its sync interval in seconds.
    interval_seconds: u64,
    /// Whether this source counts as ready.
    ready: bool,
}

/// `GET /readyz` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Readiness {
    /// Store reachable and every enabled source synced recently enough.
    ready: bool,
    /// `ok`, or what is wrong with the store.
    store: String,
    /// Each enabled source.
    sources: Vec<SourceReadiness>,
}

/// `GET /readyz`: 200 when the store answers (its file is still the one opened and its
/// newest write did not fail) and no enabled source has gone without a
/// successful sync for `unready_after_intervals` of its intervals (counted from start when
/// it never succeeded); 503 otherwise.
async fn readyz(State(state): State<AppState>) -> Response {
    let ctx = &state.ctx;
    let store = ctx.store.clone();
    let sources = ctx.sync.sources();
    let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let looked_up = store
        .run(move |s| {
            let problem = s.problem();
            s.count()?;
            names
                .iter()
                .map(|n| {
                    Ok((
                        s.recent_sync_runs(Some(n), 1)?.pop(),
                        s.last_successful_sync(n)?,
                    ))
                })
                .collect::<Result<Vec<_>, worklist_store::StoreError>>()
                .map(|runs| (problem, runs))
        })
        .await;
    let now = Timestamp::now();
    let (store_state, runs) = match looked_up {
        Ok((None, runs)) => ("ok".to_string(), runs),
        // Deleted or replaced under the process, or the newest write failed: the
        // worklist answered may be stale and nothing new is stored.
        Ok((Some(problem), runs)) => (problem.to_string(), runs),
        Err(e) => {
            tracing::error!(error = %e, "readiness: the worklist database is unavailable");
            ("unavailable".to_string(), vec![(None, None); sources.len()])
        }
    };
    let mut ready = store_state == "ok";
    let mut out = Vec::new();
    for (source, (last, success)) in sources.iter().zip(runs) {
        let since = success.as_ref().map_or(ctx.started_at, |r| r.finished_at);
        let age = now.duration_since(since).as_secs().max(0);
        let allowed = source
            .interval
            .as_secs()
            .saturating_mul(u64::from(ctx.settings.unready_after_intervals))
            .max(1);
        let source_ready = (age as u64) < allowed;
        ready &= source_ready;
        out.push(SourceReadiness {
            name: source.name.clone(),
            last_outcome: last.as_ref().map(|r| r.outcome.as_str().to_string()),
            last_run_at: last.as_ref().map(|r| r.finished_at.to_string()),
            last_success_at: success.as_ref().map(|r| r.finished_at.to_string()),
            seconds_since_success: age,
            interval_seconds: source.interval.as_secs(),
            ready: source_ready,
        });
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        ready,
        store: store_state,
        sources: out,
    };
    (code, axum::Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text exposition (OpenMetrics text, which Prometheus reads).
async fn metrics(State(state): State<AppState>) -> Response {
    let Some(export) = &state.ctx.metrics else {
        return (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response();
    };
    let store = state.ctx.store.clone();
    match store.run(|s| s.count_by_status()).await {
        Ok(counts) => {
            for status in [
                StepStatus::Scheduled,
                StepStatus::Started,
                StepStatus::Completed,
                StepStatus::Discontinued,
            ] {
                let n = counts
                    .iter()
                    .find(|(s, _)| *s == status)
                    .map_or(0, |(_, n)| *n);
                (export.set_entries)(status, n);
            }
        }
        Err(e) => tracing::error!(error = %e, "metrics: cannot count worklist entries"),
    }
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &export.registry) {
        tracing::error!(error = %e, "metrics: encoding failed");
        return (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
