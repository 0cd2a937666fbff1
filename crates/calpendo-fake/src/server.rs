//! Connection handling, routing, auth, latency and fault injection.
//!
//! Connections are accepted by hand and served by hyper's HTTP/1 server (the routes
//! are an axum `Router`), so that a fault can drop a connection with a TCP reset.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service as _, service_fn};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::query::{Op, QueryError, parse_query, percent_decode};
use crate::{FakeBooking, Fault, FaultScope, Shared, property, render};

/// How long a shutdown waits for requests in progress before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// API path prefixes served.
const PREFIXES: [&str; 2] = ["/webdav", "/api"];

/// Per-connection context, reachable from handlers through a request extension.
#[derive(Debug, Default)]
struct ConnCtx {
    reset: AtomicBool,
    notify: Notify,
}

impl ConnCtx {
    /// Asks the connection task to drop the connection with a TCP reset.
    fn request_reset(&self) {
        self.reset.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// The TCP stream of one connection; sets SO_LINGER 0 before closing when a reset was
/// requested, so that dropping it sends RST instead of FIN.
struct ConnIo {
    stream: TcpStream,
    ctx: Arc<ConnCtx>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.ctx.reset.load(Ordering::SeqCst) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Resolves once the server is stopping (or its handle is gone).
async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Accepts connections until shutdown, then drains them.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let router = router(Arc::clone(&shared));
    let mut shutdown = shared.shutdown.subscribe();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_connection(stream, router.clone(), Arc::clone(&shared)));
                }
                Err(e) => {
                    // E.g. too many open files: back off a little instead of spinning.
                    tracing::warn!(error = %e, "fake Calpendo: accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            _ = stopped(&mut shutdown) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), drain)
        .await
        .is_err()
    {
        conns.abort_all();
    }
}

/// Serves one connection until it closes, a reset is requested or the server stops.
async fn serve_connection(stream: TcpStream, router: Router, shared: Arc<Shared>) {
    let ctx = Arc::new(ConnCtx::default());
    let io = TokioIo::new(ConnIo {
        stream,
        ctx: Arc::clone(&ctx),
    });
    let mut shutdown = shared.shutdown.subscribe();
    let service = {
        let ctx = Arc::clone(&ctx);
        let router = TowerToHyperService::new(router);
        service_fn(move |req: Request<Incoming>| {
            let shared = Arc::clone(&shared);
            let ctx = Arc::clone(&ctx);
            let router = router.clone();
            async move { Ok::<_, Infallible>(handle(shared, ctx, router, req).await) }
        })
    };
    let conn = http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = ctx.notify.notified() => return,
        _ = stopped(&mut shutdown) => {}
    }
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = ctx.notify.notified() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {}
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a crate::Counters);

impl<'a> InFlight<'a> {
    fn enter(counters: &'a crate::Counters) -> Self {
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

/// Every request: in-flight tracking, latency, auth, then the router.
async fn handle(
    shared: Arc<Shared>,
    ctx: Arc<ConnCtx>,
    router: TowerToHyperService<Router>,
    req: Request<Incoming>,
) -> Response {
    let _in_flight = InFlight::enter(&shared.counters);
    shared.counters.requests.fetch_add(1, Ordering::SeqCst);
    let latency = shared.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if !authorized(&shared, req.headers()) {
        shared.counters.unauthorized.fetch_add(1, Ordering::SeqCst);
        let mut resp = json_response(
            StatusCode::UNAUTHORIZED,
            &json!({ "error": "Unauthorized", "message": "valid HTTP Basic credentials required" }),
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Calpendo\""),
        );
        return resp;
    }
    let mut req = req.map(Body::new);
    req.extensions_mut().insert(ctx);
    match router.call(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

/// Whether the request carries the configured Basic credentials.
fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("Basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    decoded.split_once(':') == Some((shared.username.as_str(), shared.password.as_str()))
}

fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new();
    for prefix in PREFIXES {
        router = router
            .route(
                &format!("{prefix}/q/Calpendo.Booking/{{*query}}"),
                get(list),
            )
            .route(&format!("{prefix}/q/Calpendo.Booking"), get(empty_query))
            .route(&format!("{prefix}/q/Calpendo.Booking/"), get(empty_query))
            .route(&format!("{prefix}/b/Calpendo.Booking/{{id}}"), get(detail))
            .route(&format!("{prefix}/q/MRIScan/{{*rest}}"), get(operator));
    }
    router.fallback(not_found).with_state(shared)
}

/// Which API request is being answered, for fault scoping.
#[derive(Debug, Clone, Copy)]
enum RouteKind {
    List,
    Detail(i64),
    Operator(i64),
}

impl RouteKind {
    fn in_scope(self, scope: FaultScope) -> bool {
        match (scope, self) {
            (FaultScope::All, _) => true,
            (FaultScope::List, RouteKind::List) => true,
            (FaultScope::Details, RouteKind::Detail(_)) => true,
            (FaultScope::Operator, RouteKind::Operator(_)) => true,
            (FaultScope::Booking(id), RouteKind::Detail(d) | RouteKind::Operator(d)) => id == d,
            (FaultScope::OperatorWindow, RouteKind::Operator(0)) => true,
            _ => false,
        }
    }
}

impl Shared {
    /// The fault to inject into this request, if any (counting down one-shot faults).
    fn take_fault(&self, route: RouteKind) -> Option<Fault> {
        let mut state = self.lock();
        let active = state.fault.as_mut()?;
        if !route.in_scope(active.scope) {
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

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    json_response(
        status,
        &json!({
            "error": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "message": message.into(),
        }),
    )
}

async fn not_found(uri: Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        format!("no such resource: {}", uri.path()),
    )
}

async fn empty_query() -> Response {
    error_response(StatusCode::BAD_REQUEST, "empty query")
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<Arc<ConnCtx>>,
    uri: Uri,
) -> Response {
    shared.counters.list.fetch_add(1, Ordering::SeqCst);
    // Parse the raw path (not axum's decoded capture), so that an encoded `/` stays
    // inside its value.
    let raw = uri
        .path()
        .split_once("/q/Calpendo.Booking/")
        .map_or("", |(_, query)| query);
    let normal = answer_query(&shared, raw, uri.query(), false, |b, _| {
        render::list_entry(b)
    });
    with_fault(&shared, &ctx, &uri, RouteKind::List, normal).await
}

/// The `paths` of a query string (`paths=a,b`), percent-decoded; `None` without one.
fn asked_paths(query: Option<&str>) -> Result<Option<Vec<String>>, QueryError> {
    let Some(query) = query else {
        return Ok(None);
    };
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("paths=") {
            let value = percent_decode(value)?;
            let paths: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            return Ok(Some(paths));
        }
    }
    Ok(None)
}

/// Answers a query over the bookings (only `MRIScan` ones when `mri_only`): each match
/// with the asked `paths`, or as `without_paths` renders it when none were asked (or
/// the server ignores them). A malformed query, or `STARTS_WITH` on a server that
/// refuses it, is a 400.
fn answer_query(
    shared: &Shared,
    raw: &str,
    query_string: Option<&str>,
    mri_only: bool,
    without_paths: impl Fn(&FakeBooking, &jiff::tz::TimeZone) -> Value,
) -> Response {
    let parsed = parse_query(raw).and_then(|q| Ok((q, asked_paths(query_string)?)));
    let (query, paths) = match parsed {
        Ok(p) => p,
        Err(e) => {
            return error_response(StatusCode::BAD_REQUEST, format!("malformed query: {e}"));
        }
    };
    let state = shared.lock();
    if state.refuse_starts_with && query.uses(Op::StartsWith) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "malformed query: unknown relation STARTS_WITH",
        );
    }
    let paths = paths.filter(|_| !state.ignore_paths);
    let mut matching: Vec<(&FakeBooking, jiff::civil::DateTime)> = state
        .bookings
        .values()
        .filter(|b| !mri_only || b.biskit_type == "MRIScan")
        .map(|b| (b, state.updated.get(&b.id).copied().unwrap_or_default()))
        .filter(|(b, updated)| query.matches(b, *updated))
        .collect();
    matching.sort_by_key(|(b, _)| (b.start, b.id));
    let items: Vec<Value> = matching
        .into_iter()
        .map(|(b, updated)| match &paths {
            Some(p) => property::with_paths(b, p, updated, &shared.tz),
            None => without_paths(b, &shared.tz),
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "biskits": items }))
}

async fn detail(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<Arc<ConnCtx>>,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    shared.counters.detail.fetch_add(1, Ordering::SeqCst);
    let Ok(id) = id.parse::<i64>() else {
        return error_response(
            StatusCode::BAD_REQUEST,
            format!("invalid booking id {id:?}"),
        );
    };
    let booking = shared.lock().bookings.get(&id).cloned();
    let normal = match booking {
        None => error_response(StatusCode::NOT_FOUND, format!("no booking with id {id}")),
        Some(b) => match render::detail(&b, &shared.tz) {
            Ok(body) => json_response(StatusCode::OK, &body),
            Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
    };
    with_fault(&shared, &ctx, &uri, RouteKind::Detail(id), normal).await
}

async fn operator(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<Arc<ConnCtx>>,
    uri: Uri,
) -> Response {
    shared.counters.operator.fetch_add(1, Ordering::SeqCst);
    let raw = uri.path().split_once("/q/MRIScan/").map_or("", |(_, q)| q);
    let query = parse_query(raw);
    // Pylantir's look-up, `id/eq/ID`: one booking, in the two shapes seen (by id parity),
    // whatever the paths.
    if let Some(id) = query.as_ref().ok().and_then(|q| q.single_id()) {
        let body = render::operator(shared.lock().bookings.get(&id));
        let normal = json_response(StatusCode::OK, &body);
        return with_fault(&shared, &ctx, &uri, RouteKind::Operator(id), normal).await;
    }
    let normal = answer_query(&shared, raw, uri.query(), true, |b, _| {
        render::operator(Some(b))["biskits"][0].clone()
    });
    with_fault(&shared, &ctx, &uri, RouteKind::Operator(0), normal).await
}

/// Applies the fault in scope, if any, to the normal response.
async fn with_fault(
    shared: &Shared,
    ctx: &ConnCtx,
    uri: &Uri,
    route: RouteKind,
    normal: Response,
) -> Response {
    let Some(fault) = shared.take_fault(route) else {
        return normal;
    };
    tracing::debug!(?fault, ?route, "fake Calpendo: injecting fault");
    match fault {
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error_response(status, "injected fault")
        }
        Fault::InvalidJson => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            "{\"biskits\": [ {\"id\": 12, \"formattedName\": \"[2026-0\u{0}<html>garbage",
        )
            .into_response(),
        Fault::TruncatedBody => {
            let (parts, bytes) = split_body(normal).await;
            let declared = bytes.len() + 256;
            // Yield the real bytes, pause so hyper flushes them, then end early: hyper
            // sees the body fall short of its Content-Length and closes the connection.
            let stream = futures::stream::unfold(0u8, move |step| {
                let bytes = bytes.clone();
                async move {
                    match step {
                        0 => Some((Ok::<Bytes, Infallible>(bytes), 1)),
                        _ => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            None
                        }
                    }
                }
            });
            let mut resp = Response::from_parts(parts, Body::from_stream(stream));
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(declared));
            resp
        }
        Fault::Hang => {
            stopped(&mut shared.shutdown.subscribe()).await;
            error_response(StatusCode::SERVICE_UNAVAILABLE, "server shutting down")
        }
        Fault::SlowBody(total) => {
            let (parts, bytes) = split_body(normal).await;
            let len = bytes.len();
            const CHUNKS: usize = 10;
            let chunk_size = len.div_ceil(CHUNKS).max(1);
            let chunks: Vec<Bytes> = (0..len)
                .step_by(chunk_size)
                .map(|at| bytes.slice(at..(at + chunk_size).min(len)))
                .collect();
            let pause = total / u32::try_from(chunks.len().max(1)).unwrap_or(1);
            let stream =
                futures::stream::unfold(chunks.into_iter(), move |mut chunks| async move {
                    let chunk = chunks.next()?;
                    tokio::time::sleep(pause).await;
                    Some((Ok::<Bytes, Infallible>(chunk), chunks))
                });
            let mut resp = Response::from_parts(parts, Body::from_stream(stream));
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            resp
        }
        Fault::ConnectionReset => {
            ctx.request_reset();
            std::future::pending::<Response>().await
        }
        Fault::EndlessBody => endless_body(Arc::clone(&shared.counters.fault_body_bytes)),
        Fault::OversizedBody(len) => {
            oversized_body(len, Arc::clone(&shared.counters.fault_body_bytes))
        }
        Fault::Redirect { status, to } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
            let target = format!(
                "{}{}",
                to.trim_end_matches('/'),
                uri.path_and_query().map_or("/", |p| p.as_str())
            );
            let mut resp = error_response(status, "moved");
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
fn endless_body(sent: Arc<std::sync::atomic::AtomicU64>) -> Response {
    let item = "{\"id\": 1, \"formattedName\": \"[2026-11-26 09:00 - 10:00] endless\"}, ";
    let mut chunk = String::with_capacity(crate::ENDLESS_CHUNK);
    while chunk.len() + item.len() <= crate::ENDLESS_CHUNK {
        chunk.push_str(item);
    }
    while chunk.len() < crate::ENDLESS_CHUNK {
        chunk.push(' ');
    }
    let chunk = Bytes::from(chunk);
    let head = Bytes::from_static(b"{\"biskits\": [");
    let stream = futures::stream::unfold(true, move |first| {
        let sent = Arc::clone(&sent);
        let chunk = chunk.clone();
        let head = head.clone();
        async move {
            let out = if first {
                head
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
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A 200 answer of exactly `len` bytes (an empty booking list padded with spaces, or
/// spaces alone when `len` is too short for it), announced in `Content-Length` and
/// produced chunk by chunk as it is sent; each chunk is counted in `sent`.
fn oversized_body(len: u64, sent: Arc<std::sync::atomic::AtomicU64>) -> Response {
    const HEAD: &[u8] = b"{\"biskits\": []";
    const CHUNK: u64 = 64 * 1024;
    let json = len > HEAD.len() as u64 + 1;
    let stream = futures::stream::unfold(0u64, move |at| {
        let sent = Arc::clone(&sent);
        async move {
            if at >= len {
                return None;
            }
            let n = (len - at).min(CHUNK);
            let mut out = vec![b' '; usize::try_from(n).unwrap_or(0)];
            if json && at == 0 {
                out[..HEAD.len()].copy_from_slice(HEAD);
            }
            if json
                && at + n == len
                && let Some(last) = out.last_mut()
            {
                *last = b'}';
            }
            sent.fetch_add(n, Ordering::SeqCst);
            Some((Ok::<Bytes, Infallible>(Bytes::from(out)), at + n))
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

/// Collects a (small, in-memory) response body.
async fn split_body(resp: Response) -> (axum::http::response::Parts, Bytes) {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    (parts, bytes)
}
