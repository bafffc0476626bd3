//! Cofunction-specific behaviour: misuse, cancellation, and the `panic = "abort"` build.

mod support;

use std::time::Duration;

use dugong::{Body, Error, PoisonCause, StateError};
use http::{HeaderMap, Method};
use support::{connection, pattern, LoopbackServer, ScriptedServer, Step};

fn state(e: Error) -> StateError {
    match e {
        Error::State(s) => s,
        other => panic!("expected a state error, got {other:?}"),
    }
}

#[test]
fn misuse_while_a_cofunction_is_alive_is_a_typed_error() {
    let server = LoopbackServer::start();
    let conn = connection(server.port());
    let h = HeaderMap::new();
    let cofun = conn
        .send_request_cofun(&Method::PUT, "/sink", &h, Body::Following(3))
        .expect("start");
    let second = conn.send_request_cofun(&Method::GET, "/x", &h, Body::Empty);
    assert_eq!(
        state(second.expect_err("second cofunction")),
        StateError::CofunctionActive
    );
    assert_eq!(
        state(
            conn.send_request(&Method::GET, "/x", &h, Body::Empty)
                .expect_err("send")
        ),
        StateError::CofunctionActive
    );
    assert_eq!(
        state(conn.write(b"abc").expect_err("write")),
        StateError::CofunctionActive
    );
    assert_eq!(
        state(conn.write_partial(b"abc").expect_err("write_partial")),
        StateError::CofunctionActive
    );
    for step in cofun {
        step.expect("send");
    }
    conn.write(b"abc")
        .expect("the body may follow once the head is out");
    assert_eq!(
        conn.read_response().expect("response").headers["x-received-bytes"],
        "3"
    );
    assert_eq!(
        state(conn.read_response().expect_err("nothing pending")),
        StateError::NoResponsePending
    );
}

#[test]
fn dropping_a_cofunction_that_never_ran_unsends_its_request() {
    let server = LoopbackServer::start();
    let conn = connection(server.port());
    let h = HeaderMap::new();
    let cofun = conn
        .send_request_cofun(&Method::GET, "/first", &h, Body::Empty)
        .expect("start");
    drop(cofun);
    assert!(!conn.response_pending(), "the request was never sent");
    conn.send_request(&Method::GET, "/bytes/2", &h, Body::Empty)
        .expect("send");
    let resp = conn.read_response().expect("response");
    assert_eq!(resp.path, "/bytes/2");
    assert_eq!(conn.read_all().expect("body"), pattern(2));
    assert_eq!(
        server.connections_accepted(),
        1,
        "the connection stayed usable"
    );
}

/// The server answers early (413) while the upload is going out and then stops reading, so
/// the cofunction suspends mid-upload; dropping it there poisons the connection, and the next
/// send reconnects at once: the cancelled request is not reported back as unanswered (the
/// caller cancelled it), and nothing else was pending.
pub(crate) fn early_answer_then_stall() -> ScriptedServer {
    ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::Discard(1000),
        Step::reply_str("HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n"),
        Step::Stall(Duration::from_secs(3)),
        Step::Accept,
        Step::ExpectHead,
        Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ])
}

#[test]
fn dropping_a_cofunction_mid_upload_poisons_and_the_next_send_reconnects() {
    let server = early_answer_then_stall();
    let conn = connection(server.port());
    let upload = vec![b'u'; 64 << 20];
    let h = HeaderMap::new();
    let mut cofun = conn
        .send_request_cofun(&Method::PUT, "/big", &h, Body::Bytes(&upload))
        .expect("start");
    assert!(
        matches!(cofun.next(), Some(Ok(()))),
        "suspends with response data mid-upload"
    );
    drop(cofun);
    assert!(
        !conn.response_pending(),
        "the cancelled request is not pending"
    );
    match conn.read(&mut [0u8; 8]) {
        Err(Error::Poisoned {
            cause: PoisonCause::Cancelled,
            unanswered,
        }) => assert_eq!(unanswered, []),
        other => panic!("expected poisoned after the drop, got {other:?}"),
    }
    conn.send_request(&Method::GET, "/again", &h, Body::Empty)
        .expect("the next send reconnects");
    let resp = conn
        .read_response()
        .expect("response on the new connection");
    assert_eq!(resp.path, "/again");
    assert_eq!(conn.read_all().expect("body"), b"ok");
    let transcript = server.finish();
    transcript.assert_ok();
    assert_eq!(transcript.connections, 2);
}

/// The acceptance test for cancellation: an example built with `panic = "abort"` drops a
/// cofunction mid-upload and must exit normally (corosensei's forced unwinding would abort).
#[test]
fn cancelling_mid_upload_works_under_panic_abort() {
    let stdout = support::run_example_with_panic_abort("cancel_abort");
    assert!(stdout.contains("reconnected"), "{stdout}");
}

#[test]
fn sendfile_cofun_streams_exactly_the_declared_length_or_the_whole_chunked_reader() {
    let server = LoopbackServer::start();
    let conn = connection(server.port());
    let h = HeaderMap::new();
    let data = pattern(3 << 20);
    // A reader longer than the declared length: only the declared bytes go out.
    for step in conn
        .send_request_cofun(&Method::PUT, "/echo", &h, Body::Following(1_000_000))
        .expect("start")
    {
        step.expect("head");
    }
    let mut reader = &data[..];
    for step in conn.sendfile_cofun(&mut reader).expect("body") {
        step.expect("body");
    }
    assert_eq!(
        reader.len(),
        data.len() - 1_000_000,
        "the reader is not read past the length"
    );
    assert_eq!(conn.read_response().expect("echo").length, Some(1_000_000));
    assert_eq!(conn.read_all().expect("echo body"), &data[..1_000_000]);
    // Chunked: everything the reader has, then the last-chunk.
    for step in conn
        .send_request_cofun(&Method::POST, "/echo", &h, Body::Chunked)
        .expect("start")
    {
        step.expect("head");
    }
    let mut reader = &data[..];
    for step in conn.sendfile_cofun(&mut reader).expect("body") {
        step.expect("body");
    }
    assert_eq!(
        conn.read_response().expect("echo").length,
        Some(data.len() as u64)
    );
    assert_eq!(conn.read_all().expect("echo body"), data);
    assert_eq!(server.connections_accepted(), 1);
}

#[test]
fn sendfile_cofun_reports_a_reader_that_ends_early_or_fails() {
    struct Failing(usize);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(b'f');
            self.0 -= n;
            Ok(n)
        }
    }
    let server = LoopbackServer::start();
    let conn = connection(server.port());
    let h = HeaderMap::new();
    // Ends early: 10 bytes for a declared 100.
    for step in conn
        .send_request_cofun(&Method::PUT, "/sink", &h, Body::Following(100))
        .expect("start")
    {
        step.expect("head");
    }
    let mut short = &[b's'; 10][..];
    let outcome: Vec<_> = conn.sendfile_cofun(&mut short).expect("body").collect();
    assert!(
        matches!(
            outcome.last(),
            Some(Err(Error::State(StateError::SourceTooShort)))
        ),
        "{outcome:?}"
    );
    // Part of the body went out, so the connection cannot continue; it says so, then
    // reconnects on the next send.
    assert!(matches!(conn.read_response(), Err(Error::Poisoned { .. })));
    conn.send_request(&Method::GET, "/bytes/1", &h, Body::Empty)
        .expect("reconnects");
    assert_eq!(
        conn.read_response().expect("head").status,
        http::StatusCode::OK
    );
    assert_eq!(conn.read_all().expect("body"), b"a");

    // Fails: the reader's own error, with its message.
    for step in conn
        .send_request_cofun(&Method::PUT, "/sink", &h, Body::Chunked)
        .expect("start")
    {
        step.expect("head");
    }
    let mut failing = Failing(200_000);
    let outcome: Vec<_> = conn.sendfile_cofun(&mut failing).expect("body").collect();
    match outcome.last() {
        Some(Err(Error::Io(e))) => assert_eq!(e.to_string(), "disk on fire"),
        other => panic!("expected the reader's error, got {other:?}"),
    }
    assert!(matches!(conn.read_response(), Err(Error::Poisoned { .. })));
}

/// A reader offered when no body is owed — none declared, or one already complete — is
/// refused before anything is read from it: its bytes could not be sent, and taking it
/// quietly would lose them. A request that declared an empty body (`Content-Length: 0`)
/// takes a reader and nothing from it, as a `Following` body is never read past its length
/// (the seed's upload loop streams every file this way, empty ones too).
#[test]
fn a_reader_is_refused_unread_when_no_body_is_owed() {
    let server = LoopbackServer::start();
    let conn = connection(server.port());
    let h = HeaderMap::new();
    let refused = |conn: &dugong::HttpConnection, what: &str| {
        let mut reader = &b"unsendable"[..];
        let cofun = conn.sendfile_cofun(&mut reader).map(|_| ());
        assert_eq!(
            state(cofun.expect_err(what)),
            StateError::NoBodyExpected,
            "sendfile_cofun {what}"
        );
        let mut reader = &b"unsendable"[..];
        let op = conn.co_write(&mut reader).map(|_| ());
        assert_eq!(
            state(op.expect_err(what)),
            StateError::NoBodyExpected,
            "co_write {what}"
        );
    };
    let answered = |conn: &dugong::HttpConnection, what: &str| {
        let resp = conn.read_response().expect(what);
        assert!(resp.status.is_success(), "{what}: {}", resp.status);
        conn.discard().expect(what);
    };
    refused(&conn, "before any request");
    conn.send_request(&Method::GET, "/sink", &h, Body::Empty)
        .expect("GET");
    refused(&conn, "after a GET");
    answered(&conn, "GET");
    conn.send_request(&Method::POST, "/sink", &h, Body::Bytes(b"abc"))
        .expect("bytes");
    refused(&conn, "after a whole Bytes body");
    answered(&conn, "bytes");
    conn.send_request(&Method::PUT, "/sink", &h, Body::Following(3))
        .expect("following");
    conn.write(b"abc").expect("write");
    refused(&conn, "after a Following body written whole");
    answered(&conn, "following");
    conn.send_request(&Method::POST, "/sink", &h, Body::Chunked)
        .expect("chunked");
    conn.write(b"abc").expect("chunk");
    conn.finish_body().expect("last chunk");
    refused(&conn, "after a finished chunked body");
    answered(&conn, "chunked");

    conn.send_request(&Method::PUT, "/sink", &h, Body::Following(0))
        .expect("empty");
    let mut reader = &b"beyond the length"[..];
    for step in conn.sendfile_cofun(&mut reader).expect("empty body") {
        step.expect("empty body");
    }
    assert_eq!(
        reader, b"beyond the length",
        "nothing is read for an empty body"
    );
    answered(&conn, "empty");
    assert_eq!(server.connections_accepted(), 1);
}

/// A loop body that resets the connection (here `disconnect`; a read that meets a broken
/// response does the same) ends the cofunction with an error, and the connection is usable
/// for the next request.
#[test]
fn a_connection_reset_inside_the_loop_body_ends_the_cofunction_cleanly() {
    let server = early_answer_then_stall();
    let conn = connection(server.port());
    let upload = vec![b'u'; 64 << 20];
    let h = HeaderMap::new();
    let mut outcome = Vec::new();
    for step in conn
        .send_request_cofun(&Method::PUT, "/big", &h, Body::Bytes(&upload))
        .expect("start")
    {
        outcome.push(step.is_ok());
        if step.is_ok() {
            conn.disconnect();
        }
    }
    assert_eq!(outcome, [true, false], "one suspension, then the error");
    assert!(!conn.response_pending());
    conn.send_request(&Method::GET, "/again", &h, Body::Empty)
        .expect("a new send works");
    assert_eq!(conn.read_all().expect("no body active"), b"");
    assert_eq!(conn.read_response().expect("response").path, "/again");
    assert_eq!(conn.read_all().expect("body"), b"ok");
}
