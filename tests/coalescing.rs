//! Write coalescing (`Config::coalesce_writes`, on by default): a small request may wait in
//! the connection's queue, but never while anyone waits for its answer.
//!
//! Only a request sent behind unanswered ones is queued, so each test sends two requests on
//! connection A (the first goes out, the second waits in the queue) and then waits some other
//! way. Where the wait is on a second connection B, B's server answers only once A's server
//! has received both of A's requests: if A's second request stayed queued, B's answer never
//! comes and the test fails (B's server gives up after 10 s and closes, so nothing hangs).
//! Also: coalesced and uncoalesced sends put the same bytes on the wire.
#![allow(unsafe_code)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use dugong::{green, Body, CoStep, Config, HttpConnection};
use http::{HeaderMap, Method, StatusCode};
use proptest::prelude::*;

/// How long a server waits for anything before it gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// Reads from `stream` until `n` whole request heads (without bodies) have arrived.
fn read_heads(stream: &mut TcpStream, n: usize) -> bool {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.windows(4).filter(|w| w == b"\r\n\r\n").count() < n {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// A one-connection server that waits for `heads` GETs, reports through `heard` that they
/// arrived, waits for `gate` (if any) to fire, and then answers each with `body`. Returns its
/// port.
fn server(
    body: &'static str,
    heads: usize,
    heard: mpsc::Sender<()>,
    gate: Option<mpsc::Receiver<()>>,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
        if !read_heads(&mut stream, heads) {
            return;
        }
        let _ = heard.send(());
        if let Some(gate) = gate {
            if gate.recv_timeout(PATIENCE).is_err() {
                return; // closes without answering: the client sees the failure
            }
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        for _ in 0..heads {
            let _ = stream.write_all(response.as_bytes());
        }
        let _ = stream.read(&mut [0u8; 1]); // until the client closes
    });
    port
}

/// Servers A and B: A waits for two requests, B for one, and B answers only after A has
/// heard both of its requests.
fn pair() -> (u16, u16) {
    let (a_heard, gate) = mpsc::channel();
    let a = server("a", 2, a_heard, None);
    let (b_heard, _) = mpsc::channel();
    let b = server("b", 1, b_heard, Some(gate));
    (a, b)
}

fn config() -> Config {
    Config::default().timeout(Some(Duration::from_secs(20)))
}

fn get(conn: &HttpConnection<impl dugong::Park>) {
    conn.send_request(&Method::GET, "/", &HeaderMap::new(), Body::Empty)
        .expect("send");
}

fn read_body(conn: &HttpConnection<impl dugong::Park>) -> Vec<u8> {
    let response = conn.read_response().expect("the response arrives");
    assert_eq!(response.status, StatusCode::OK);
    conn.read_all().expect("body")
}

/// A's second request is queued (nothing else could have sent it), B's blocking read waits:
/// A's queue goes out first, so B is answered.
#[test]
fn a_blocking_wait_on_another_connection_sends_the_queue_first() {
    let (a, b) = pair();
    let conn_a = HttpConnection::with_config("127.0.0.1", a, config()).expect("a");
    let conn_b = HttpConnection::with_config("127.0.0.1", b, config()).expect("b");
    conn_a.connect().expect("connect a");
    conn_b.connect().expect("connect b");
    get(&conn_a);
    get(&conn_a);
    get(&conn_b);
    assert_eq!(read_body(&conn_b), b"b");
    assert_eq!(read_body(&conn_a), b"a");
    assert_eq!(read_body(&conn_a), b"a");
}

/// The same with A's second request sent by a cofunction, which ends with it queued.
#[test]
fn a_cofunction_request_is_sent_before_another_connection_waits() {
    let (a, b) = pair();
    let conn_a = HttpConnection::with_config("127.0.0.1", a, config()).expect("a");
    let conn_b = HttpConnection::with_config("127.0.0.1", b, config()).expect("b");
    conn_a.connect().expect("connect a");
    conn_b.connect().expect("connect b");
    get(&conn_a);
    for step in conn_a
        .send_request_cofun(&Method::GET, "/", &HeaderMap::new(), Body::Empty)
        .expect("cofun")
    {
        step.expect("step");
    }
    get(&conn_b);
    assert_eq!(read_body(&conn_b), b"b");
    assert_eq!(read_body(&conn_a), b"a");
    assert_eq!(read_body(&conn_a), b"a");
}

/// `co_*` operations: B's read returning `Poll` to the caller's loop sends A's queue.
#[test]
fn a_co_op_returning_poll_sends_the_queue_first() {
    let (a, b) = pair();
    let conn_a = HttpConnection::with_config("127.0.0.1", a, config()).expect("a");
    let conn_b = HttpConnection::with_config("127.0.0.1", b, config()).expect("b");
    conn_a.connect().expect("connect a");
    conn_b.connect().expect("connect b");
    let h = HeaderMap::new();
    for conn in [&conn_a, &conn_a, &conn_b] {
        let mut send = conn
            .co_send_request(&Method::GET, "/", &h, Body::Empty)
            .expect("start");
        match send.step() {
            CoStep::Done(result) => result.expect("sent"),
            CoStep::Poll(need) => panic!("a small GET waited: {need:?}"),
        }
    }
    let mut read = conn_b.co_read_response();
    let head = loop {
        match read.step() {
            CoStep::Done(result) => break result.expect("head"),
            CoStep::Poll(need) => {
                let mut pfd = libc::pollfd {
                    fd: need.fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for the duration of the call.
                let n = unsafe { libc::poll(&mut pfd, 1, 20_000) };
                assert_eq!(n, 1, "B's answer never came: A's request stayed queued");
            }
        }
    };
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(conn_b.read_all().expect("b"), b"b");
    assert_eq!(read_body(&conn_a), b"a");
    assert_eq!(read_body(&conn_a), b"a");
}

/// Green tasks: one task queues A's second request, another reads B; the runtime sends every
/// queue before it blocks in its poller.
#[test]
fn a_green_runtime_sends_every_queue_before_it_blocks() {
    let (a, b) = pair();
    let bodies = green::run(move |task| {
        let conn_a = task.connect_with("127.0.0.1", a, config()).expect("a");
        conn_a.connect().expect("connect a");
        get(&conn_a);
        get(&conn_a);
        // This task now waits on the other, not on a socket; the other waits on B.
        let reader = task.spawn(move |task| {
            let conn_b = task.connect_with("127.0.0.1", b, config()).expect("b");
            get(&conn_b);
            read_body(&conn_b)
        });
        let b_body = task.join(reader).expect("task");
        (read_body(&conn_a), read_body(&conn_a), b_body)
    })
    .expect("runtime");
    assert_eq!(bodies, (b"a".to_vec(), b"a".to_vec(), b"b".to_vec()));
}

/// The seed's poll loop asks for the descriptor and waits on it: asking sends the queue.
#[test]
fn as_raw_fd_sends_the_queue() {
    let (heard, _) = mpsc::channel();
    let port = server("a", 2, heard, None);
    let conn = HttpConnection::with_config("127.0.0.1", port, config()).expect("conn");
    conn.connect().expect("connect");
    get(&conn);
    get(&conn);
    let mut pfd = libc::pollfd {
        fd: conn.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, 20_000) };
    assert_eq!(
        n, 1,
        "the answers never came: the second request stayed queued"
    );
    assert_eq!(read_body(&conn), b"a");
    assert_eq!(read_body(&conn), b"a");
}

/// A wait the crate cannot see (a channel here) needs `flush()` first; with it the server
/// hears the request while the client waits.
#[test]
fn flush_sends_the_queue_before_a_foreign_wait() {
    let (heard, heard_rx) = mpsc::channel();
    let port = server("a", 2, heard, None);
    let conn = HttpConnection::with_config("127.0.0.1", port, config()).expect("conn");
    conn.connect().expect("connect");
    get(&conn);
    get(&conn);
    conn.flush().expect("flush");
    heard_rx
        .recv_timeout(PATIENCE)
        .expect("the server heard the flushed requests");
    assert_eq!(read_body(&conn), b"a");
    assert_eq!(read_body(&conn), b"a");
}

/// Dropping a connection sends what it queued.
#[test]
fn dropping_a_connection_sends_its_queue() {
    let (heard, heard_rx) = mpsc::channel();
    let port = server("a", 2, heard, None);
    let conn = HttpConnection::with_config("127.0.0.1", port, config()).expect("conn");
    conn.connect().expect("connect");
    get(&conn);
    get(&conn);
    drop(conn);
    heard_rx
        .recv_timeout(PATIENCE)
        .expect("the server heard the requests of the dropped connection");
}

/// With coalescing off, `send_request` returns only once the request is handed to the OS,
/// and with it on, the first request on an idle connection does too.
#[test]
fn without_coalescing_a_request_is_sent_by_send_request() {
    let (heard, heard_rx) = mpsc::channel();
    let port = server("a", 2, heard, None);
    let conn =
        HttpConnection::with_config("127.0.0.1", port, config().coalesce_writes(false)).expect("c");
    conn.connect().expect("connect");
    get(&conn);
    get(&conn);
    heard_rx
        .recv_timeout(PATIENCE)
        .expect("the server heard the requests without any further call");
    assert_eq!(read_body(&conn), b"a");
    assert_eq!(read_body(&conn), b"a");
}

/// With coalescing on, the first request on an idle connection is not queued: the server
/// works on it while the caller does something else (here: waits on a channel).
#[test]
fn the_first_request_on_an_idle_connection_goes_out_at_once() {
    let (heard, heard_rx) = mpsc::channel();
    let port = server("a", 1, heard, None);
    let conn = HttpConnection::with_config("127.0.0.1", port, config()).expect("conn");
    conn.connect().expect("connect");
    get(&conn);
    heard_rx
        .recv_timeout(PATIENCE)
        .expect("the server heard the request without any further call");
    assert_eq!(read_body(&conn), b"a");
}

/// A sink that records every byte of one connection until the client closes it.
fn recording_sink() -> (u16, thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let sink = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let mut got = Vec::new();
        stream.read_to_end(&mut got).expect("read");
        got
    });
    (port, sink)
}

/// One request of a generated sequence.
#[derive(Debug, Clone)]
enum Sent {
    Get(String),
    Bytes(usize),
    Following(Vec<usize>),
    Chunked(Vec<usize>),
}

fn sent() -> impl Strategy<Value = Sent> {
    prop_oneof![
        "/[a-z0-9]{0,40}".prop_map(Sent::Get),
        (0usize..40_000).prop_map(Sent::Bytes),
        prop::collection::vec(0usize..20_000, 0..4).prop_map(Sent::Following),
        prop::collection::vec(0usize..20_000, 0..4).prop_map(Sent::Chunked),
    ]
}

/// The bytes a sequence puts on the wire, through blocking calls or cofunctions.
fn wire(requests: &[Sent], coalesce: bool, cofun: bool) -> Vec<u8> {
    let (port, sink) = recording_sink();
    let config = config().coalesce_writes(coalesce);
    let conn = HttpConnection::with_config("127.0.0.1", port, config).expect("conn");
    // The same `Host` for both runs, whose sinks listen on different ports.
    let mut h = HeaderMap::new();
    h.insert(http::header::HOST, http::HeaderValue::from_static("sink"));
    let data = |n: usize| -> Vec<u8> { (0..n).map(|i| (i % 251) as u8).collect() };
    let send = |method: &Method, target: &str, body: Body<'_>| {
        if cofun {
            for step in conn
                .send_request_cofun(method, target, &h, body)
                .expect("cofun")
            {
                step.expect("step");
            }
        } else {
            conn.send_request(method, target, &h, body).expect("send");
        }
    };
    for request in requests {
        match request {
            Sent::Get(target) => send(&Method::GET, target, Body::Empty),
            Sent::Bytes(n) => send(&Method::PUT, "/b", Body::Bytes(&data(*n))),
            Sent::Following(pieces) => {
                let total = pieces.iter().sum::<usize>() as u64;
                send(&Method::PUT, "/f", Body::Following(total));
                for &n in pieces {
                    conn.write(&data(n)).expect("write");
                }
            }
            Sent::Chunked(pieces) => {
                send(&Method::POST, "/c", Body::Chunked);
                for &n in pieces {
                    conn.write(&data(n)).expect("write");
                }
                conn.finish_body().expect("finish");
            }
        }
    }
    conn.flush().expect("flush");
    drop(conn);
    sink.join().expect("sink")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Coalescing changes when bytes go out, never which bytes or their order.
    #[test]
    fn coalesced_and_uncoalesced_sends_put_the_same_bytes_on_the_wire(
        requests in prop::collection::vec(sent(), 1..12),
        cofun in any::<bool>(),
    ) {
        let plain = wire(&requests, false, cofun);
        let coalesced = wire(&requests, true, cofun);
        prop_assert_eq!(plain.len(), coalesced.len());
        prop_assert!(plain == coalesced, "the bytes differ");
    }
}
