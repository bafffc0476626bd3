//! `send_batch` and its `Retry` policy against scripted servers: what is resent, what is
//! not, and how failures in a row back off (the nginx `keepalive_requests` run is in
//! `tests/nginx.rs`).

mod support;

use std::time::{Duration, Instant};

use dugong::{BatchRequest, ClosePhase, Error, HttpConnection, Retry};
use http::Method;
use support::{connection, ScriptedServer, Step};

fn ok(body: &str) -> Step {
    Step::reply_str(&format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

fn post(target: &str) -> BatchRequest {
    BatchRequest {
        method: Method::POST,
        target: target.into(),
        headers: http::HeaderMap::new(),
        body: b"form".to_vec(),
    }
}

/// `(index, body)` of each response, in the order handed over.
type Got = Vec<(usize, Vec<u8>)>;

/// Runs a batch and collects what it handed over.
fn collect(
    conn: &HttpConnection,
    requests: &[BatchRequest],
    retry: &Retry,
) -> (Got, Result<(), Error>) {
    let mut got = Vec::new();
    let result = conn.send_batch(requests, 8, retry, |i, _, conn| {
        got.push((i, conn.read_all()?));
        Ok(())
    });
    (got, result)
}

/// A server that closes without answering everything: idempotent requests are resent on a
/// new connection and answered once; the first connection's transcript shows they were
/// sent there too.
#[test]
fn unanswered_gets_are_resent_once() {
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::ExpectHead,
        Step::ExpectHead,
        ok("a"),
        Step::Close,
        Step::Accept,
        Step::ExpectHead,
        Step::ExpectHead,
        ok("b"),
        ok("c"),
    ]);
    let conn = connection(server.port());
    let requests: Vec<_> = ["/a", "/b", "/c"].map(BatchRequest::get).into();
    let (got, result) = collect(&conn, &requests, &Retry::default());
    result.expect("answered after a resend");
    assert_eq!(
        got,
        [(0, b"a".to_vec()), (1, b"b".to_vec()), (2, b"c".to_vec())]
    );
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.connections, 2);
}

/// A `POST` left unanswered is not resent unless the policy allows non-idempotent
/// requests: the error comes back with it listed.
#[test]
fn an_unanswered_post_is_resent_only_when_allowed() {
    let script = || {
        vec![
            Step::ExpectHead,
            Step::Discard(4),
            Step::ExpectHead,
            Step::Discard(4),
            ok("1"),
            Step::Close,
            Step::Accept,
            Step::ExpectHead,
            Step::Discard(4),
            ok("2"),
        ]
    };
    let requests = [post("/1"), post("/2")];

    let server = ScriptedServer::start(script());
    let conn = connection(server.port());
    let (got, result) = collect(&conn, &requests, &Retry::default());
    assert_eq!(got, [(0, b"1".to_vec())]);
    match result {
        Err(e @ Error::ConnectionClosed { .. }) => {
            assert_eq!(e.unanswered().len(), 1);
            assert_eq!(e.unanswered()[0].target, "/2");
        }
        other => panic!("expected the close, got {other:?}"),
    }
    drop(server);

    let server = ScriptedServer::start(script());
    let conn = connection(server.port());
    let (got, result) = collect(&conn, &requests, &Retry::default().non_idempotent(true));
    result.expect("resent when allowed");
    assert_eq!(got, [(0, b"1".to_vec()), (1, b"2".to_vec())]);
    server.finish().assert_ok();
}

/// Failures in a row with nothing answered between them wait `backoff`, doubling, and
/// stop after `attempts`.
#[test]
fn failures_in_a_row_back_off_and_give_up() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let conn = connection(port);
    let retry = Retry::default()
        .attempts(3)
        .backoff(Duration::from_millis(30), Duration::from_secs(1));
    let started = Instant::now();
    let (got, result) = collect(&conn, &[BatchRequest::get("/")], &retry);
    let took = started.elapsed();
    assert!(got.is_empty());
    match result {
        Err(e @ Error::Connect { .. }) => assert!(e.is_temporary()),
        other => panic!("expected the connect error, got {other:?}"),
    }
    // Four tries: at once, then after 30, 60 and 120 ms.
    assert!(
        took >= Duration::from_millis(210) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

/// A response cut off inside its body is not resent: `each` saw part of it.
#[test]
fn a_body_cut_short_is_returned_not_resent() {
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
        Step::Close,
    ]);
    let conn = connection(server.port());
    let mut calls = 0;
    let result = conn.send_batch(
        &[BatchRequest::get("/")],
        1,
        &Retry::default(),
        |_, _, c| {
            calls += 1;
            c.read_all().map(drop)
        },
    );
    assert_eq!(calls, 1);
    match result {
        Err(Error::ConnectionClosed {
            phase: ClosePhase::InBody,
            ..
        }) => {}
        other => panic!("expected the cut body, got {other:?}"),
    }
    server.finish().assert_ok();
}

/// An error after a response was handed over is returned, even a temporary one `each`
/// returns itself: resending would hand that response over a second time.
#[test]
fn an_error_after_the_hand_over_is_returned_not_resent() {
    let server = ScriptedServer::start(vec![Step::ExpectHead, ok("a")]);
    let conn = connection(server.port());
    let mut calls = 0;
    let result = conn.send_batch(
        &[BatchRequest::get("/")],
        1,
        &Retry::default(),
        |_, _, _| {
            calls += 1;
            Err(Error::Io(std::io::ErrorKind::TimedOut.into()))
        },
    );
    assert_eq!(calls, 1);
    match result {
        Err(e @ Error::Io(_)) => assert!(e.is_temporary(), "the case a retry would take"),
        other => panic!("expected each's error, got {other:?}"),
    }
    drop(conn);
    server.finish().assert_ok();
}

/// A connection that answered and then closed is resent at once: no backoff, and it does
/// not count against `attempts` (here, one).
#[test]
fn a_close_after_answers_is_resent_at_once() {
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::ExpectHead,
        Step::ExpectHead,
        ok("a"),
        Step::Close,
        Step::Accept,
        Step::ExpectHead,
        Step::ExpectHead,
        ok("b"),
        Step::Close,
        Step::Accept,
        Step::ExpectHead,
        ok("c"),
    ]);
    let conn = connection(server.port());
    let requests = ["/1", "/2", "/3"].map(BatchRequest::get);
    let retry = Retry::default()
        .attempts(1)
        .backoff(Duration::from_secs(5), Duration::from_secs(5));
    let started = Instant::now();
    let (got, result) = collect(&conn, &requests, &retry);
    result.expect("resent after each close");
    assert!(started.elapsed() < Duration::from_secs(4), "no backoff");
    assert_eq!(
        got,
        [(0, b"a".to_vec()), (1, b"b".to_vec()), (2, b"c".to_vec())]
    );
    server.finish().assert_ok();
}
