//! The admin server's connection bounds ([`admin_http::ServeLimits`]) on a real socket,
//! with short limits: idle, slow-loris and kept-alive connections are closed at their
//! timeouts, a slow request body fails at its deadline, an unread response is dropped,
//! the connection cap makes room by closing the connection idle the longest (or refuses
//! the newcomer when every connection is busy), and shutdown ends within its grace time
//! whatever the clients do.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use admin_http::{ServeLimits, serve_with_limits};
use axum::Router;
use axum::routing::{get, post};
use tokio::sync::oneshot;

fn limits() -> ServeLimits {
    ServeLimits {
        header_read_timeout: Duration::from_millis(800),
        idle_timeout: Duration::from_millis(1500),
        body_timeout: Duration::from_millis(1000),
        stall_timeout: Duration::from_millis(1000),
        handshake_timeout: Duration::from_millis(800),
        max_connections: 8,
        shutdown_grace: Duration::from_millis(700),
    }
}

/// A response body of `left` chunks of 64 KiB, made as they are asked for.
struct Chunks {
    left: usize,
}

impl hyper::body::Body for Chunks {
    type Data = hyper::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.left == 0 {
            return std::task::Poll::Ready(None);
        }
        this.left -= 1;
        let chunk = hyper::body::Bytes::from(vec![b'x'; 64 * 1024]);
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk))))
    }
}

fn app() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/echo",
            post(|body: String| async move { body.len().to_string() }),
        )
        // 64 MiB in one piece, and streamed.
        .route("/big", get(|| async { "x".repeat(64 << 20) }))
        .route(
            "/stream",
            get(|| async { axum::body::Body::new(Chunks { left: 1024 }) }),
        )
}

/// A server on a free port; its address, the trigger of its shutdown and its end.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: std::sync::mpsc::Receiver<Instant>,
    _rt: tokio::runtime::Runtime,
}

fn start(limits: ServeLimits) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let (done_tx, done) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        serve_with_limits(listener, app(), None, shutdown, limits)
            .await
            .expect("serve");
        let _ = done_tx.send(Instant::now());
    });
    Server {
        addr,
        stop: Some(stop),
        done,
        _rt: rt,
    }
}

/// `GET /healthz` on a new connection; the time it took.
fn healthz(addr: SocketAddr) -> Duration {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
    start.elapsed()
}

/// Whether the server closed `s` within `within` (what it sent first is ignored).
fn closed_within(s: &TcpStream, within: Duration) -> bool {
    let mut reader = s;
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).expect("timeout");
        match reader.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Writes `bytes` to `s` one every `every` on a thread, until sent or refused.
fn trickle(s: &TcpStream, bytes: Vec<u8>, every: Duration) {
    let mut s = s.try_clone().expect("clone");
    std::thread::spawn(move || {
        for b in bytes {
            if s.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(every);
        }
    });
}

#[test]
fn idle_slow_and_kept_alive_connections_are_closed_at_their_timeouts() {
    // The idle timeout later than the header timeout: the slow and the kept-alive
    // connections must go at the header timeout, the silent one at the idle timeout.
    let server = start(ServeLimits {
        idle_timeout: Duration::from_millis(3000),
        ..limits()
    });
    let opened = Instant::now();
    let idle = TcpStream::connect(server.addr).expect("connect");
    let loris = TcpStream::connect(server.addr).expect("connect");
    trickle(
        &loris,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa".to_vec(),
        Duration::from_millis(100),
    );
    let mut kept = TcpStream::connect(server.addr).expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut buf = [0u8; 256];
    kept.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let n = kept.read(&mut buf).expect("answer");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    assert!(healthz(server.addr) < Duration::from_secs(1));
    for (what, s, by) in [
        ("slow-loris", &loris, 2000),
        ("kept-alive", &kept, 2000),
        ("idle", &idle, 5000),
    ] {
        let left = Duration::from_millis(by).saturating_sub(opened.elapsed());
        assert!(
            closed_within(s, left),
            "{what} connection open after {:?}",
            opened.elapsed()
        );
    }
    // Not before the idle timeout.
    assert!(opened.elapsed() >= Duration::from_millis(2900));
}

#[test]
fn a_slow_body_fails_at_its_deadline_and_an_unread_response_is_dropped() {
    let server = start(limits());
    let mut slow = TcpStream::connect(server.addr).expect("connect");
    slow.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .expect("head");
    let start = Instant::now();
    trickle(&slow, vec![b'a'; 1000], Duration::from_millis(50));
    let mut answer = Vec::new();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = slow.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        !answer.contains("\r\n\r\n1000"),
        "the slow body was read whole: {answer}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    // 64 MiB asked for and not read, in one piece or streamed: dropped once nothing
    // goes out for the idle or stall timeout, so the client, reading at last, gets only
    // what the buffers held.
    for path in ["/big", "/stream"] {
        let mut greedy = TcpStream::connect(server.addr).expect("connect");
        greedy
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .expect("request");
        std::thread::sleep(Duration::from_millis(3000));
        greedy
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut received = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = greedy.read(&mut buf) {
            if n == 0 {
                break;
            }
            received += n;
        }
        assert!(
            received < 64 << 20,
            "{path}: the whole unread response was kept for the client ({received} bytes)"
        );
    }
}

#[test]
fn a_slow_reader_that_keeps_reading_gets_the_whole_response() {
    let server = start(limits());
    let mut reader = TcpStream::connect(server.addr).expect("connect");
    reader
        .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    reader
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // At most 1 MiB every 50 ms: 64 MiB (more than the socket buffers hold) take longer
    // than the idle timeout, but bytes move all the time.
    let start = Instant::now();
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e) => panic!("after {received} bytes: {e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(received > 64 << 20, "{received} bytes");
    assert!(
        start.elapsed() > limits().idle_timeout,
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn the_cap_closes_the_longest_idle_connection_or_refuses_when_all_are_busy() {
    let server = start(limits());
    let first: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    // Past the cap: the oldest idle connection makes room, /healthz is answered.
    assert!(healthz(server.addr) < Duration::from_secs(1));
    assert!(
        closed_within(&first[0], Duration::from_millis(300)),
        "the longest-idle connection was not closed"
    );
    drop(first);
    std::thread::sleep(Duration::from_millis(200));

    // Every connection busy with a request body under way: a newcomer is closed.
    let busy: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).expect("connect");
            s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\na")
                .expect("head");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let newcomer = TcpStream::connect(server.addr).expect("connect");
    assert!(closed_within(&newcomer, Duration::from_millis(500)));
    for s in &busy {
        assert!(
            !closed_within(s, Duration::from_millis(10)),
            "a busy one was closed"
        );
    }
    // Once their bodies time out, the server answers again.
    drop(busy);
    std::thread::sleep(Duration::from_millis(300));
    assert!(healthz(server.addr) < Duration::from_secs(1));
}

#[test]
fn shutdown_ends_within_its_grace_time_whatever_the_clients_do() {
    let mut server = start(ServeLimits {
        body_timeout: Duration::from_secs(60),
        header_read_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        ..limits()
    });
    let _idle = TcpStream::connect(server.addr).expect("connect");
    let slow = TcpStream::connect(server.addr).expect("connect");
    {
        let mut s = &slow;
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
            .expect("head");
    }
    trickle(&slow, vec![b'a'; 100_000], Duration::from_millis(20));
    let loris = TcpStream::connect(server.addr).expect("connect");
    trickle(
        &loris,
        b"GET / HTTP/1.1\r\nX: ".repeat(100),
        Duration::from_millis(20),
    );
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    server.stop.take().expect("stop").send(()).expect("send");
    let done = server
        .done
        .recv_timeout(Duration::from_secs(10))
        .expect("the server did not stop");
    let took = done - asked;
    assert!(took < Duration::from_millis(1500), "stopping took {took:?}");
    assert!(closed_within(&slow, Duration::from_secs(1)));
}
