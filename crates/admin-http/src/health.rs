//! Unauthenticated endpoints for monitors: liveness, readiness and Prometheus metrics.
//! None of them carries subject data (source names, outcomes, times and counts only).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use worklist_store::StepStatus;

use crate::{AppState, readiness};

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

/// `GET /readyz`: 200 when the store answers (its file still the one opened, its newest
/// write not failed) and every enabled source is ready by the
/// rule in [`crate::readiness`] (no `unready_after_intervals` of its intervals without a
/// successful sync); 503 otherwise.
async fn readyz(State(state): State<AppState>) -> Response {
    let ctx = &state.ctx;
    let (store_state, states) = match readiness::source_states(ctx).await {
        // The file deleted or replaced under the process, or the newest write failed:
        // what consoles are answered may be stale and nothing new is stored.
        Ok(states) => match ctx.store.problem() {
            None => ("ok".to_string(), states),
            Some(problem) => (problem.to_string(), states),
        },
        Err(e) => {
            tracing::error!(error = %e, "readiness: the worklist database is unavailable");
            let sources = ctx.sync.sources();
            let none = vec![(None, None); sources.len()];
            (
                "unavailable".to_string(),
                readiness::judge_all(ctx, sources, none),
            )
        }
    };
    let mut ready = store_state == "ok";
    let mut out = Vec::new();
    for st in states {
        ready &= st.ready;
        out.push(SourceReadiness {
            name: st.info.name,
            last_outcome: st.last.as_ref().map(|r| r.outcome.as_str().to_string()),
            last_run_at: st.last.as_ref().map(|r| r.finished_at.to_string()),
            last_success_at: st.success.as_ref().map(|r| r.finished_at.to_string()),
            seconds_since_success: st.seconds_since_success,
            interval_seconds: st.info.interval.as_secs(),
            ready: st.ready,
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
