//! The HTTP side: one API URL (`/api/`, also `/api`) taking POSTed forms; method and
//! token checks, latency, dispatch by `content`, fault injection and counters.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::export::export;
use crate::params::{ApiRequest, ParamError, Params, parse_request};
use crate::{Counters, Fault, FaultScope, Shared};

/// REDCap's answer to a missing or wrong token.
const NO_PERMISSION: &str = "You do not have permissions to use the API";

/// The version `content=version` reports.
const VERSION: &str = "14.5.0";

/// Serves until the handle's shutdown signal.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut stop = shared.shutdown.subscribe();
    let router = Router::new()
        .route("/api/", any(api))
        .route("/api", any(api))
        .fallback(not_found)
        .with_state(shared);
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stopped(&mut stop).await })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "fake REDCap: server stopped with an error");
    }
}

/// Resolves once the shutdown flag is set (or the handle is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn enter(counters: &'a Counters) -> Self {
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(counters)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::SeqCst);
}

/// The API URL: latency, method, token, then the request itself.
async fn api(State(shared): State<Arc<Shared>>, method: Method, body: Bytes) -> Response {
    let _in_flight = InFlight::enter(&shared.counters);
    bump(&shared.counters.requests);
    let latency = shared.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if method != Method::POST {
        bump(&shared.counters.bad);
        let mut resp = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "The REDCap API takes POST requests only",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let params = Params::parse(&body);
    shared.lock().last_params = params.without_token();
    if params.get("token") != Some(shared.token.as_str()) {
        bump(&shared.counters.forbidden);
        return error(StatusCode::FORBIDDEN, NO_PERMISSION);
    }
    let request = match parse_request(&params) {
        Ok(request) => request,
        Err(e) => return bad_request(&shared, &e),
    };
    bump(match request {
        ApiRequest::Metadata { .. } => &shared.counters.metadata,
        ApiRequest::Records(_) => &shared.counters.record,
        ApiRequest::Project | ApiRequest::Version => &shared.counters.other,
    });
    let answer = match answer(&shared, &request) {
        Ok(answer) => answer,
        Err(e) => return bad_request(&shared, &e),
    };
    match shared.take_fault(&request) {
        Some(fault) => inject(&shared, fault, answer.response).await,
        None => {
            let c = &shared.counters;
            c.records_returned
                .fetch_add(answer.records, Ordering::SeqCst);
            c.rows_returned.fetch_add(answer.rows, Ordering::SeqCst);
            answer.response
        }
    }
}

/// A normal answer and what it holds, for the counters.
struct Answer {
    response: Response,
    records: u64,
    rows: u64,
}

impl Answer {
    fn json(body: &Value) -> Answer {
        Answer {
            response: json_response(StatusCode::OK, body.to_string()),
            records: 0,
            rows: 0,
        }
    }
}

fn answer(shared: &Shared, request: &ApiRequest) -> Result<Answer, ParamError> {
    let state = shared.lock();
    match request {
        ApiRequest::Metadata { fields, forms } => {
            check_names(&state.project, fields, forms)?;
            Ok(Answer::json(&state.project.metadata(fields, forms)))
        }
        ApiRequest::Project => Ok(Answer::json(&state.project.info())),
        ApiRequest::Version => Ok(Answer {
            response: (StatusCode::OK, VERSION).into_response(),
            records: 0,
            rows: 0,
        }),
        ApiRequest::Records(query) => {
            let records = state.store.in_export_order();
            let out = export(&state.project, &records, query)?;
            let body = serde_json::to_string(&out.rows).unwrap_or_else(|_| "[]".to_owned());
            Ok(Answer {
                response: json_response(StatusCode::OK, body),
                records: u64::try_from(out.records).unwrap_or(u64::MAX),
                rows: u64::try_from(out.rows.len()).unwrap_or(u64::MAX),
            })
        }
    }
}

/// Metadata's `fields[]` / `forms[]` must name what the project has.
fn check_names(
    project: &crate::Project,
    fields: &[String],
    forms: &[String],
) -> Result<(), ParamError> {
    let unknown: Vec<String> = fields
        .iter()
        .filter(|f| project.field(f).is_none())
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(ParamError::UnknownNames {
            param: "fields",
            names: unknown,
        });
    }
    let known_forms = project.forms();
    let unknown: Vec<String> = forms
        .iter()
        .filter(|f| !known_forms.contains(&f.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(ParamError::UnknownNames {
            param: "forms",
            names: unknown,
        });
    }
    Ok(())
}

impl Shared {
    /// The fault to inject into this request, if any (counting down one-shot faults).
    fn take_fault(&self, request: &ApiRequest) -> Option<Fault> {
        let mut state = self.lock();
        let active = state.fault.as_mut()?;
        let in_scope = match active.scope {
            FaultScope::All => true,
            FaultScope::Metadata => matches!(request, ApiRequest::Metadata { .. }),
            FaultScope::Record => matches!(request, ApiRequest::Records(_)),
        };
        if !in_scope {
            return None;
        }
        let fault = active.fault.clone();
        if let Some(remaining) = active.remaining.as_mut() {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                state.fault = None;
            }
        }
        Some(fault)
    }
}

/// Replaces or spoils the normal answer.
async fn inject(shared: &Shared, fault: Fault, normal: Response) -> Response {
    tracing::debug!(?fault, "fake REDCap: injecting fault");
    match fault {
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(
                status,
                &format!("injected fault (HTTP {})", status.as_u16()),
            )
        }
        Fault::InvalidJson => json_response(
            StatusCode::OK,
            "[{\"record_id\":\"1\",\"study_id\":\"CPIP-\u{0}<br />\n<b>Fatal error</b>".to_owned(),
        ),
        Fault::TruncatedBody => truncated(normal).await,
        Fault::Hang => {
            stopped(&mut shared.shutdown.subscribe()).await;
            error(StatusCode::SERVICE_UNAVAILABLE, "server shutting down")
        }
        Fault::EndlessBody => endless_body(Arc::clone(&shared.counters.fault_body_bytes)),
        Fault::OversizedBody(len) => {
            oversized_body(len, Arc::clone(&shared.counters.fault_body_bytes))
        }
        Fault::Redirect { status, to } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
            let target = format!("{}/api/", to.trim_end_matches('/'));
            let mut resp = error(status, "moved");
            match HeaderValue::from_str(&target) {
                Ok(v) => {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                Err(_) => *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
            }
            resp
        }
    }
}

/// A 200 answer whose chunked body never ends (see [`Fault::EndlessBody`]); each chunk
/// produced is counted in `sent`.
fn endless_body(sent: Arc<AtomicU64>) -> Response {
    let row = "{\"record_id\": \"1\", \"study_id\": \"CPIP-endless\"}, ";
    let mut chunk = String::with_capacity(crate::ENDLESS_CHUNK);
    while chunk.len() + row.len() <= crate::ENDLESS_CHUNK {
        chunk.push_str(row);
    }
    while chunk.len() < crate::ENDLESS_CHUNK {
        chunk.push(' ');
    }
    let chunk = Bytes::from(chunk);
    let stream = futures::stream::unfold(true, move |first| {
        let sent = Arc::clone(&sent);
        let chunk = chunk.clone();
        async move {
            let out = if first {
                Bytes::from_static(b"[")
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                chunk
            };
            sent.fetch_add(out.len() as u64, Ordering::SeqCst);
            Some((Ok::<Bytes, Infallible>(out), false))
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// A 200 answer of exactly `len` bytes (`[]` padded with spaces, or spaces alone when
/// `len` is below 2), announced in `Content-Length` and produced chunk by chunk as it is
/// sent; each chunk is counted in `sent`.
fn oversized_body(len: u64, sent: Arc<AtomicU64>) -> Response {
    const CHUNK: u64 = 64 * 1024;
    let json = len >= 2;
    let stream = futures::stream::unfold(0u64, move |at| {
        let sent = Arc::clone(&sent);
        async move {
            if at >= len {
                return None;
            }
            let n = (len - at).min(CHUNK);
            let mut out = vec![b' '; usize::try_from(n).unwrap_or(0)];
            if json && at == 0 {
                out[0] = b'[';
            }
            if json
                && at + n == len
                && let Some(last) = out.last_mut()
            {
                *last = b']';
            }
            sent.fetch_add(n, Ordering::SeqCst);
            Some((Ok::<Bytes, Infallible>(Bytes::from(out)), at + n))
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

/// The normal answer's bytes under a `Content-Length` 256 bytes larger: hyper sees
/// the body end short and closes the connection.
async fn truncated(normal: Response) -> Response {
    let (parts, body) = normal.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let declared = bytes.len() + 256;
    // Yield the real bytes, pause so hyper flushes them, then end early.
    let stream = futures::stream::unfold(Some(bytes), |pending| async move {
        match pending {
            Some(bytes) => Some((Ok::<Bytes, Infallible>(bytes), None)),
            None => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                None
            }
        }
    });
    let mut resp = Response::from_parts(parts, Body::from_stream(stream));
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(declared));
    resp
}

fn bad_request(shared: &Shared, e: &ParamError) -> Response {
    bump(&shared.counters.bad);
    error(StatusCode::BAD_REQUEST, &e.to_string())
}

async fn not_found(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    bump(&shared.counters.requests);
    bump(&shared.counters.bad);
    error(
        StatusCode::NOT_FOUND,
        &format!("no such resource: {} (the API is at /api/)", uri.path()),
    )
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// REDCap's error shape: `{"error": "..."}`.
fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({ "error": message }).to_string())
}
