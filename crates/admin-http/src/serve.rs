//! Serving the router on a listener, over plain HTTP or HTTPS (rustls), until shutdown.
//!
//! Every connection is bounded ([`ServeLimits`]), so that idle, slow or stuck clients can
//! neither keep the server from answering others (monitors' `/healthz` included) nor keep
//! it from stopping:
//!
//! - a request's head must arrive within `header_read_timeout` (HTTP/1.1; the clock also
//!   runs while a kept-alive connection waits for its next request, so an idle HTTP/1.1
//!   connection is closed then too);
//! - a connection with no request under way and nothing sent for `idle_timeout` is
//!   closed (every protocol: also HTTP/2, and connections that never send a byte);
//! - a request body must arrive within `body_timeout` of its request;
//! - a response the client stops reading is dropped after `stall_timeout` without
//!   progress (a response hyper holds in one piece is covered by the idle timeout: its
//!   request no longer counts as under way, but every write that goes out delays it);
//! - at most `max_connections` are open: a new one beyond the cap closes the connection
//!   that has been idle the longest (a slow-loris head counts as idle: no request yet),
//!   or, when every connection has a request under way, is closed itself;
//! - at shutdown no connection is accepted, idle ones are closed at once, requests under
//!   way may finish until `shutdown_grace`, and whatever is still open then is dropped.
//!
//! Each request carries its client's address ([`ConnectInfo`]), for the per-client bounds
//! of the token checks and for the log.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Why the admin server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AdminServeError {
    /// The plain-HTTP server failed.
    #[error("admin HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The bounds of the admin server's connections.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// A request's head (request line and headers) must arrive within this time; an
    /// HTTP/1.1 connection waiting for its next request is closed after it too.
    pub header_read_timeout: Duration,
    /// A connection with no request under way that has not sent anything for this time
    /// is closed.
    pub idle_timeout: Duration,
    /// A request's body must arrive within this time of its request.
    pub body_timeout: Duration,
    /// A response that makes no progress (the client does not read it) for this time
    /// is dropped with its connection.
    pub stall_timeout: Duration,
    /// A TLS handshake must finish within this time.
    pub handshake_timeout: Duration,
    /// At most this many connections are open.
    pub max_connections: usize,
    /// At shutdown, requests under way may finish for this long; then every connection
    /// still open is dropped.
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 256,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, with the default
/// [`ServeLimits`]; with `tls`, over HTTPS.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AdminServeError> {
    serve_with_limits(listener, router, tls, shutdown, ServeLimits::default()).await
}

/// Serves `router` on `listener` until `shutdown` resolves, within `limits`; with `tls`,
/// over HTTPS. Returns at most `limits.shutdown_grace` after `shutdown` resolved.
pub async fn serve_with_limits(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ServeLimits,
) -> Result<(), AdminServeError> {
    let shared = Arc::new(Shared::new(limits));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut accept_failures: u32 = 0;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    if accept_failures > 0 {
                        tracing::info!(
                            failures = accept_failures,
                            "admin HTTP: accepting connections again"
                        );
                        accept_failures = 0;
                    }
                    let Some(conn) = shared.admit() else {
                        drop(socket);
                        continue;
                    };
                    tasks.spawn(connection(
                        Arc::clone(&shared),
                        conn,
                        socket,
                        peer,
                        router.clone(),
                        acceptor.clone(),
                        stop_rx.clone(),
                    ));
                }
                Err(e) => {
                    // Out of descriptors, typically: one line per burst, and a growing
                    // pause so that the loop does not spin.
                    accept_failures = accept_failures.saturating_add(1);
                    if accept_failures == 1 {
                        tracing::warn!(
                            error = %e,
                            "admin HTTP: accepting a connection failed; retrying"
                        );
                    }
                    let pause = Duration::from_millis(25 << accept_failures.min(6));
                    tokio::time::sleep(pause.min(Duration::from_secs(1))).await;
                }
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let grace = tokio::time::sleep(shared.limits.shutdown_grace);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            joined = tasks.join_next() => if joined.is_none() { break },
            () = &mut grace => {
                tracing::info!(
                    connections = tasks.len(),
                    grace_seconds = shared.limits.shutdown_grace.as_secs_f64(),
                    "admin HTTP: dropping the connections still open at the shutdown grace time"
                );
                tasks.shutdown().await;
                break;
            }
        }
    }
    Ok(())
}

/// Logs an event that may repeat quickly: the first at once, then at most once per
/// interval, with how many happened since the last line.
#[derive(Debug)]
struct LogEvery {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogEvery {
    fn new(interval: Duration) -> LogEvery {
        LogEvery {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// Counts one event; `Some(n)` when a line is due now, `n` being the events since the
    /// last line (this one included).
    fn note(&self) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.1 += 1;
        if s.0.is_some_and(|at| at.elapsed() < self.interval) {
            return None;
        }
        let n = s.1;
        *s = (Some(Instant::now()), 0);
        Some(n)
    }
}

/// What the server's connections share.
#[derive(Debug)]
struct Shared {
    limits: ServeLimits,
    epoch: Instant,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    cap_log: LogEvery,
    tls_log: LogEvery,
}

/// One open connection's state, as the cap and the timeouts see it.
#[derive(Debug)]
struct Conn {
    epoch: Instant,
    /// Requests dispatched whose response is not completely sent.
    in_flight: AtomicUsize,
    /// Of those, the ones whose response is being sent.
    responding: AtomicUsize,
    /// When `in_flight` last became 0 (or the connection opened), ms since `epoch`.
    idle_since: AtomicU64,
    /// When bytes were last sent, ms since `epoch`.
    last_write: AtomicU64,
    /// Chosen to make room at the cap.
    evicted: AtomicBool,
    evict: Notify,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Conn {
    fn now(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    /// Notes that bytes were sent.
    fn wrote(&self) {
        self.last_write.store(self.now(), Ordering::Relaxed);
    }

    /// Since when the connection has had no request under way and sent nothing.
    fn quiet_since(&self) -> u64 {
        self.idle_since
            .load(Ordering::Acquire)
            .max(self.last_write.load(Ordering::Relaxed))
    }

    /// Why the connection must be closed now, if it must.
    fn verdict(&self, limits: &ServeLimits) -> Option<&'static str> {
        let now = self.now();
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let idle = now.saturating_sub(self.quiet_since());
            return (idle >= millis(limits.idle_timeout)).then_some("idle");
        }
        if self.responding.load(Ordering::Acquire) > 0 {
            let still = now.saturating_sub(self.last_write.load(Ordering::Relaxed));
            return (still >= millis(limits.stall_timeout))
                .then_some("the client does not read its response");
        }
        None
    }

    /// How long until [`Conn::verdict`] may change by the clock alone.
    fn next_check(&self, limits: &ServeLimits) -> Duration {
        let now = self.now();
        let due = if self.in_flight.load(Ordering::Acquire) == 0 {
            self.quiet_since()
                .saturating_add(millis(limits.idle_timeout))
        } else if self.responding.load(Ordering::Acquire) > 0 {
            self.last_write
                .load(Ordering::Relaxed)
                .saturating_add(millis(limits.stall_timeout))
        } else {
            now.saturating_add(millis(limits.idle_timeout))
        };
        Duration::from_millis(due.saturating_sub(now)).max(Duration::from_millis(50))
    }
}

impl Shared {
    fn new(limits: ServeLimits) -> Shared {
        Shared {
            limits,
            epoch: Instant::now(),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            cap_log: LogEvery::new(Duration::from_secs(60)),
            tls_log: LogEvery::new(Duration::from_secs(60)),
        }
    }

    /// Registers a new connection, making room at the cap by closing the connection idle
    /// the longest; `None` when the cap is reached and every connection has a request
    /// under way (the new one is then closed).
    fn admit(self: &Arc<Self>) -> Option<Arc<Conn>> {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let live = conns
            .values()
            .filter(|c| !c.evicted.load(Ordering::Relaxed))
            .count();
        if live >= self.limits.max_connections {
            // The longest idle; of those idle since the same moment, the oldest.
            let victim = conns
                .iter()
                .filter(|(_, c)| {
                    !c.evicted.load(Ordering::Relaxed) && c.in_flight.load(Ordering::Acquire) == 0
                })
                .min_by_key(|(id, c)| (c.idle_since.load(Ordering::Acquire), **id))
                .map(|(_, c)| Arc::clone(c));
            let max = self.limits.max_connections;
            match victim {
                Some(v) => {
                    v.evicted.store(true, Ordering::Relaxed);
                    v.evict.notify_one();
                    if let Some(n) = self.cap_log.note() {
                        tracing::warn!(
                            max_connections = max,
                            times = n,
                            "admin HTTP: connection cap reached; closed the connection idle \
                             the longest to make room"
                        );
                    }
                }
                None => {
                    if let Some(n) = self.cap_log.note() {
                        tracing::warn!(
                            max_connections = max,
                            times = n,
                            "admin HTTP: connection cap reached with a request under way on \
                             every connection; closed the new connection"
                        );
                    }
                    return None;
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = millis(self.epoch.elapsed());
        let conn = Arc::new(Conn {
            epoch: self.epoch,
            in_flight: AtomicUsize::new(0),
            responding: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now),
            last_write: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        });
        conns.insert(id, Arc::clone(&conn));
        drop(conns);
        Some(conn)
    }

    fn forget(&self, conn: &Arc<Conn>) {
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, c| !Arc::ptr_eq(c, conn));
    }
}

/// Removes a connection from the count when its task ends (also when it is aborted).
struct Registered {
    shared: Arc<Shared>,
    conn: Arc<Conn>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.forget(&self.conn);
    }
}

async fn connection(
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    socket: TcpStream,
    peer: SocketAddr,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let _registered = Registered {
        shared: Arc::clone(&shared),
        conn: Arc::clone(&conn),
    };
    let _ = socket.set_nodelay(true);
    let Some(acceptor) = tls else {
        return drive(&shared, &conn, socket, peer, router, stop).await;
    };
    let handshake = tokio::time::timeout(shared.limits.handshake_timeout, acceptor.accept(socket));
    let failed = |why: String| {
        if let Some(n) = shared.tls_log.note() {
            tracing::info!(%peer, times = n, error = %why, "admin HTTPS: TLS handshake failed");
        }
    };
    let stream = tokio::select! {
        r = handshake => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return failed(e.to_string()),
            Err(_) => return failed("timed out".into()),
        },
        () = conn.evict.notified() => return,
        _ = stop.wait_for(|s| *s) => return,
    };
    drive(&shared, &conn, stream, peer, router, stop).await;
}

/// Serves HTTP on `io` until the client or a bound ends the connection.
async fn drive<S>(
    shared: &Shared,
    conn: &Arc<Conn>,
    io: S,
    peer: SocketAddr,
    router: Router,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &shared.limits;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(32);
    let service = ConnService {
        router,
        peer,
        conn: Arc::clone(conn),
        body_timeout: limits.body_timeout,
    };
    let io = CountingIo {
        inner: io,
        conn: Arc::clone(conn),
    };
    let served = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(served);
    let mut stopping = false;
    loop {
        let check = conn.next_check(limits);
        tokio::select! {
            r = served.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "admin HTTP connection ended with an error");
                }
                return;
            }
            () = conn.evict.notified() => {
                tracing::debug!(%peer, "admin HTTP: connection closed to make room at the cap");
                return;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                if conn.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                served.as_mut().graceful_shutdown();
                stopping = true;
            }
            () = tokio::time::sleep(check) => {
                if let Some(why) = conn.verdict(limits) {
                    tracing::debug!(%peer, why, "admin HTTP: connection closed");
                    return;
                }
            }
        }
    }
}

/// The router, for one connection: each request gets the client's address, a body
/// deadline, and is counted as under way until its response is sent.
#[derive(Clone)]
struct ConnService {
    router: Router,
    peer: SocketAddr,
    conn: Arc<Conn>,
    body_timeout: Duration,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, mut request: Request<Incoming>) -> ResponseFuture {
        let busy = Busy::enter(Arc::clone(&self.conn));
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let deadline = Box::pin(tokio::time::sleep(self.body_timeout));
        let request = request.map(|inner| Body::new(TimedBody { inner, deadline }));
        let router = TowerToHyperService::new(self.router.clone());
        Box::pin(async move {
            let response = hyper::service::Service::call(&router, request).await?;
            let guard = Responding::enter(busy);
            Ok(response.map(|inner| {
                Body::new(GuardedBody {
                    inner,
                    _guard: guard,
                })
            }))
        })
    }
}

/// A request under way on its connection.
struct Busy(Arc<Conn>);

impl Busy {
    fn enter(conn: Arc<Conn>) -> Busy {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(conn)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle_since.store(self.0.now(), Ordering::Release);
        }
    }
}

/// A request whose response is being sent.
struct Responding(Busy);

impl Responding {
    fn enter(busy: Busy) -> Responding {
        busy.0.wrote();
        busy.0.responding.fetch_add(1, Ordering::AcqRel);
        Responding(busy)
    }
}

impl Drop for Responding {
    fn drop(&mut self) {
        self.0.0.responding.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as under way until it is sent (or
/// dropped).
struct GuardedBody {
    inner: Body,
    _guard: Responding,
}

impl hyper::body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body that fails once its deadline has passed.
struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(BoxError::from))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BoxError::from(
                    "the request body did not arrive in time",
                )))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's byte stream, noting when bytes are sent (for the idle and stall
/// timeouts; bytes received do not count, or a client sending a byte now and then would
/// keep its connection).
struct CountingIo<S> {
    inner: S,
    conn: Arc<Conn>,
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.conn.wrote();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.conn.wrote();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
