//! The one send driver: defects found on review of the two send paths it replaced, each
//! pinned by a test that failed before the redesign.

mod support;

use std::io::Cursor;
use std::os::fd::AsRawFd;
use std::time::Duration;

use dugong::{Body, CoStep, Error, Interest, PoisonCause, StateError};
use http::{HeaderMap, Method, StatusCode};
use support::{connection, drive, headers, pattern, ScriptedServer, Step};

/// The chunked wire form of one chunk `data` and the last chunk.
fn one_chunk_then_end(data: &[u8]) -> Vec<u8> {
    let mut wire = format!("{:x}\r\n", data.len()).into_bytes();
    wire.extend_from_slice(data);
    wire.extend_from_slice(b"\r\n0\r\n\r\n");
    wire
}

/// A `co_*` send with `Expect: 100-continue` hands the wait for `100 Continue` to the
/// caller's loop (a `Poll` for readability carrying the continue timeout) instead of
/// blocking inside `step()`; the body follows once the 100 arrives.
#[test]
fn a_co_send_request_waits_for_100_continue_in_the_callers_loop() {
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::Sleep(Duration::from_millis(200)),
        Step::reply_str("HTTP/1.1 100 Continue\r\n\r\n"),
        Step::expect_str("hello"),
        Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    let conn = connection(server.port());
    let h = headers(&[("expect", "100-continue")]);
    let mut send = conn
        .co_send_request(&Method::PUT, "/up", &h, Body::Bytes(b"hello"))
        .expect("start");
    let mut polls = Vec::new();
    loop {
        match send.step() {
            CoStep::Done(result) => break result.expect("sent"),
            CoStep::Poll(need) => {
                polls.push((need.interest, need.timeout));
                let wait = need.timeout.unwrap_or(Duration::from_secs(5));
                support::poll_fds(&[(need.fd.as_raw_fd(), need.interest)], wait);
            }
        }
    }
    assert_eq!(
        polls.first(),
        Some(&(Interest::Read, Some(Duration::from_secs(1)))),
        "the first wait is for the 100, through the loop, with the continue timeout: {polls:?}"
    );
    let mut head = conn.co_read_response();
    let resp = drive(&mut head).expect("response");
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(drive(&mut conn.co_read_all()).expect("body"), b"ok");
    server.finish().assert_ok();
}

/// Dropping a `sendfile_cofun` before it first runs leaves the connection and the reader
/// exactly as they were: nothing was read from the reader, the body is still owed, and
/// sending it afterwards puts a well-framed body on the wire (content length).
#[test]
fn dropping_an_unstarted_sendfile_cofun_reads_and_sends_nothing() {
    let data = pattern(200_000);
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::Expect(data.clone()),
        Step::reply_str("HTTP/1.1 204 No Content\r\n\r\n"),
    ]);
    let conn = connection(server.port());
    let h = HeaderMap::new();
    conn.send_request(&Method::PUT, "/f", &h, Body::Following(data.len() as u64))
        .expect("head");
    let mut reader = Cursor::new(data.clone());
    drop(conn.sendfile_cofun(&mut reader).expect("cofun"));
    assert_eq!(reader.position(), 0, "nothing was read from the source");
    assert!(conn.is_writing_body());
    for step in conn.sendfile_cofun(&mut reader).expect("cofun") {
        step.expect("send");
    }
    assert_eq!(conn.read_response().expect("response").status, 204);
    server.finish().assert_ok();
}

/// A chunk that `write_partial` started (its size line is out) is finished before anything
/// else, even when a `sendfile_cofun` is created and dropped unstarted in between: the
/// server receives exactly one well-framed chunked body.
#[test]
fn a_chunk_cut_short_survives_a_dropped_sendfile_cofun() {
    let big = pattern(8 << 20);
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        // Not reading yet: the socket fills and `write_partial` is cut short.
        Step::Stall(Duration::from_millis(300)),
        Step::Expect(one_chunk_then_end(&big)),
        Step::reply_str("HTTP/1.1 204 No Content\r\n\r\n"),
    ]);
    let conn = connection(server.port());
    conn.send_request(&Method::PUT, "/c", &HeaderMap::new(), Body::Chunked)
        .expect("head");
    let accepted = loop {
        match conn.write_partial(&big).expect("write_partial") {
            0 => std::thread::sleep(Duration::from_millis(5)),
            n => break n,
        }
    };
    assert_eq!(accepted, big.len(), "a started chunk counts as accepted");
    let mut tail = Cursor::new(b"never sent".to_vec());
    drop(conn.sendfile_cofun(&mut tail).expect("cofun"));
    assert_eq!(tail.position(), 0);
    conn.finish_body().expect("finish");
    assert_eq!(conn.read_response().expect("response").status, 204);
    server.finish().assert_ok();
}

/// A `sendfile_cofun` dropped after it ran (here: it yielded for an early 413 while the
/// upload was going out) poisons the connection; the next send reconnects and nothing
/// mis-framed ever follows on the old connection.
#[test]
fn dropping_a_started_sendfile_cofun_poisons_and_the_next_send_reconnects() {
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::Discard(1000),
        Step::reply_str("HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n"),
        Step::Stall(Duration::from_secs(3)),
        Step::Accept,
        Step::ExpectHead,
        Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    let conn = connection(server.port());
    let h = HeaderMap::new();
    let len = 64u64 << 20;
    conn.send_request(&Method::PUT, "/big", &h, Body::Following(len))
        .expect("head");
    let mut source = std::io::repeat(b'u');
    let mut cofun = conn.sendfile_cofun(&mut source).expect("cofun");
    assert!(matches!(cofun.next(), Some(Ok(()))), "yields for the 413");
    drop(cofun);
    assert!(!conn.is_writing_body());
    assert!(
        !conn.response_pending(),
        "the cancelled upload is not pending"
    );
    assert!(matches!(
        conn.read_response(),
        Err(Error::Poisoned {
            cause: PoisonCause::Cancelled,
            ..
        })
    ));
    conn.send_request(&Method::GET, "/again", &h, Body::Empty)
        .expect("reconnects");
    assert_eq!(conn.read_response().expect("response").path, "/again");
    assert_eq!(conn.read_all().expect("body"), b"ok");
    let transcript = server.finish();
    transcript.assert_ok();
    assert_eq!(transcript.connections, 2);
}

/// `write_partial` before any request is a misuse, like `write`: a `StateError`, not a
/// "connection closed by the server" that never happened.
#[test]
fn write_partial_on_a_fresh_connection_is_a_state_error() {
    let conn = dugong::HttpConnection::new("127.0.0.1", 9).expect("conn");
    for result in [
        conn.write(b"x").map(|()| 0),
        conn.write_partial(b"x"),
        conn.finish_body().map(|()| 0),
    ] {
        match result {
            Err(Error::State(StateError::NoBodyExpected)) => {}
            other => panic!("expected NoBodyExpected, got {other:?}"),
        }
    }
}

/// `take_trailers` returns the trailers of the last chunked body that had any, also after
/// a later response without trailers, and after a response that closed the connection.
#[test]
fn trailers_survive_later_responses_and_the_close() {
    let chunked_with_trailer =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-sum: 42\r\n\r\n";
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::ExpectHead,
        Step::reply_str(chunked_with_trailer),
        Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno"),
        Step::Accept,
        Step::ExpectHead,
        Step::reply_str(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\
             1\r\nz\r\n0\r\nx-last: 1\r\n\r\n",
        ),
        Step::Close,
    ]);
    let conn = connection(server.port());
    let h = HeaderMap::new();
    for target in ["/t", "/plain"] {
        conn.send_request(&Method::GET, target, &h, Body::Empty)
            .expect("send");
    }
    for body in [&b"abc"[..], b"no"] {
        conn.read_response().expect("head");
        assert_eq!(conn.read_all().expect("body"), body);
    }
    let trailers = conn.take_trailers().expect("the chunked body's trailers");
    assert_eq!(trailers["x-sum"], "42");
    assert!(conn.take_trailers().is_none(), "taking clears them");
    conn.send_request(&Method::GET, "/closing", &h, Body::Empty)
        .expect("send");
    conn.read_response().expect("head");
    assert_eq!(conn.read_all().expect("body"), b"z");
    assert_eq!(conn.take_trailers().expect("kept")["x-last"], "1");
    server.finish().assert_ok();
}

/// An early response that arrives between two pieces of a streamed body (the socket never
/// filled) is offered to the loop body at once; dropping the cofunction there poisons the
/// connection like any other partial send.
#[test]
fn dropping_a_sendfile_cofun_at_an_early_response_between_pieces_poisons() {
    let len = 1u64 << 20;
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::reply_str("HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n"),
        Step::Drain(Duration::from_secs(2)),
        Step::Accept,
        Step::ExpectHead,
        Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    let conn = connection(server.port());
    let h = HeaderMap::new();
    conn.send_request(&Method::PUT, "/big", &h, Body::Following(len))
        .expect("head");
    // Let the 413 reach our socket before the body starts.
    std::thread::sleep(Duration::from_millis(100));
    let mut source = std::io::repeat(b'u');
    let mut cofun = conn.sendfile_cofun(&mut source).expect("cofun");
    assert!(matches!(cofun.next(), Some(Ok(()))), "yields for the 413");
    assert!(conn.has_buffered_data());
    drop(cofun);
    assert!(!conn.is_writing_body(), "the half-sent body is abandoned");
    assert!(matches!(
        conn.read_response(),
        Err(Error::Poisoned {
            cause: PoisonCause::Cancelled,
            ..
        })
    ));
    conn.send_request(&Method::GET, "/again", &h, Body::Empty)
        .expect("reconnects");
    assert_eq!(conn.read_response().expect("response").path, "/again");
    assert_eq!(conn.read_all().expect("body"), b"ok");
    server.finish().assert_ok();
}

/// A body being written when the server closes stays "being written" for the caller: once a
/// read has reported the close (and its unanswered request), the caller's next body write
/// says the connection closed — not "no body owed", a misuse error for a body the caller was
/// in the middle of. The next request starts clean. (Found as a race in `tests/sigpipe.rs`:
/// a cofunction's loop body read the close before the send side met it.)
#[test]
fn a_body_write_after_a_read_reported_the_close_says_closed() {
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::Close,
        Step::Accept,
        Step::ExpectHead,
        Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    let conn = connection(server.port());
    let h = HeaderMap::new();
    conn.send_request(&Method::PUT, "/up", &h, Body::Following(1 << 20))
        .expect("head goes out");
    match conn.read_response() {
        Err(Error::ConnectionClosed { unanswered, .. }) => {
            assert_eq!(unanswered.len(), 1, "the PUT is reported unanswered");
        }
        other => panic!("expected the close, got {other:?}"),
    }
    for _ in 0..2 {
        match conn.write(b"more") {
            Err(Error::ConnectionClosed { unanswered, .. }) => {
                assert!(unanswered.is_empty(), "already reported once");
            }
            other => panic!("expected ConnectionClosed, got {other:?}"),
        }
    }
    assert!(matches!(
        conn.write_partial(b"more"),
        Err(Error::ConnectionClosed { .. })
    ));
    assert!(matches!(
        conn.finish_body(),
        Err(Error::ConnectionClosed { .. })
    ));
    conn.send_request(&Method::GET, "/again", &h, Body::Empty)
        .expect("reconnects");
    assert_eq!(
        conn.read_response().expect("response").status,
        StatusCode::OK
    );
    assert_eq!(conn.read_all().expect("body"), b"ok");
    assert!(
        matches!(
            conn.write(b"x"),
            Err(Error::State(StateError::NoBodyExpected))
        ),
        "a new request without a body owes none"
    );
    server.finish().assert_ok();
}
