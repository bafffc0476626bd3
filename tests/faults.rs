//! Hostile-server fault injection: one test per row of the fault matrix, each through every
//! [`SendPath`]. Every test asserts the exact error (variant and plain data), that its message
//! names the fault, the connection's state afterwards (reused, or reconnected by the next
//! send, checked in the server's transcript), and that no response byte is lost or invented.
//!
//! Every table also has a TLS column (with the `tls` feature): the same rows through a
//! [`TlsTerminator`](dugong_harness::TlsTerminator) in front of the same scripted or loopback
//! server ([`Front::ALL`]), with the same assertions and the same server transcripts. Over
//! TLS the server's clean close arrives as `close_notify` and its reset as an abortive close
//! without it; every row reads the same. The release-only table (unchecked header values)
//! has its TLS column too.
//!
//! Rows already proven by `tests/pitfalls.rs` are not repeated here:
//!
//! | fault | covered by |
//! |---|---|
//! | chunk size overflow `fffffffffffffffff`, negative / signed / `0x` sizes | `b04_chunk_size_is_strict` |
//! | missing CRLF after chunk data | `b05_chunk_data_must_end_with_crlf` |
//! | negative / signed / overflowing `Content-Length`, differing duplicates and lists | `b03_content_length_is_strict` |
//! | `Content-Length` with `Transfer-Encoding` | `b06_length_with_transfer_encoding_is_rejected` |
//! | CR/LF/NUL/controls in the target, both paths; safe header constructors | `b08_injection_is_rejected_before_anything_is_sent` |
//! | a timeout at any point of a head or body loses nothing | `b09_timeouts_lose_nothing_and_reads_resume` |
//! | 101, interim cap with a custom limit, 100/103 skipped | `b10_interim_responses_are_capped_and_101_is_refused` |
//! | HTTP/1.0 with and without keep-alive, close-delimited bodies | `b11_close_delimited_bodies_and_http10_persistence` |
//! | `Connection: close` fails the queued requests (phase `Announced`) | `b12_*` |
//! | unsolicited bytes / close / reset on an idle connection, both paths | `b13_stale_idle_connections_are_not_reused` |
//! | zero timeout; a trickle cannot extend a deadline (500 ms) | `b14_*` |
//! | early response during an upload written with one `write` | `b19_early_response_during_upload_is_readable_and_matched` |
//! | obs-fold, whitespace before the colon | `b25_headers_are_parsed_as_http_not_mime` |
//! | bare-LF responses | `b28_bare_lf_responses_parse` |
//!
//! `tests/driver.rs` has `a_server_that_never_answers_times_out_within_the_deadline` (the
//! timeout alone); the row here adds that the late response is then read, matched and the
//! connection reused.

#[path = "support/faults.rs"]
mod faults;
mod support;
#[path = "support/wire.rs"]
#[allow(dead_code)] // shared with tests/pitfalls.rs, which uses the rest
mod wire;

use std::thread;
use std::time::{Duration, Instant};

use dugong::{
    Body, ClosePhase, Config, Error, InFlight, Operation, PoisonCause, ProtocolError, RequestError,
    StateError,
};
use dugong_harness::pattern_byte;
use http::{HeaderMap, HeaderValue, Method};
use support::{Front, LoopbackServer, ScriptedServer, SendPath, Step};
use wire::{cat, expect_poisoned, expect_response, get, in_flight, ok, request, ABANDON};

use faults::{
    assert_closed, assert_poisoned, assert_protocol, assert_says, read_response_patiently,
    read_until_end, upload, End, Go,
};

/// The slack allowed on top of a 400 ms deadline (the matrix asks for < timeout + 1 s).
const DEADLINE_SLACK: Duration = Duration::from_secs(1);

/// `GET target`, as listed by `Error::unanswered()`.
fn g(target: &str) -> InFlight {
    in_flight(Method::GET, target)
}

/// Every send path in front of plain and (with the `tls` feature) TLS peers: the rows of
/// every table.
fn fronts_and_paths() -> impl Iterator<Item = (Front, SendPath)> {
    Front::ALL
        .iter()
        .flat_map(|&front| SendPath::ALL.iter().map(move |&path| (front, path)))
}

/// The paths with an operation timeout (not `CoOps`: co_* operations have none by design) in
/// front of plain and TLS peers, for the tables about deadlines.
fn fronts_and_timed_paths() -> impl Iterator<Item = (Front, SendPath)> {
    const TIMED: [SendPath; 3] = [SendPath::Blocking, SendPath::Cofun, SendPath::Green];
    Front::ALL
        .iter()
        .flat_map(|&front| TIMED.iter().map(move |&path| (front, path)))
}

/// The exact bytes of several `GET`s without headers.
fn gets(port: u16, targets: &[&str]) -> String {
    targets
        .iter()
        .map(|t| String::from_utf8_lossy(&get(port, t)).into_owned())
        .collect()
}

/// A chunked `200 OK` head.
const CHUNKED: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

// ---------------------------------------------------------------------------------------------
// Close and reset at every phase
// ---------------------------------------------------------------------------------------------

/// Where the server's bytes for `GET /a` stop before it closes or resets the connection, with
/// `GET /b` pipelined behind: what the client must report.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// `read_response` fails with this phase; these requests are listed as unanswered.
    Head(ClosePhase, &'static [&'static str]),
    /// The head is read; `read` delivers exactly these bytes and then fails with
    /// `ConnectionClosed { InBody, [GET /b] }`.
    Body(&'static str),
}

/// Reset and clean close at every phase of a response, for identity, chunked and
/// close-delimited bodies. The connection then reconnects on the next send.
///
/// | phase | error |
/// |---|---|
/// | before the status line | `ConnectionClosed { BeforeResponse, [GET /a, GET /b] }` |
/// | inside the status line / head / final CRLF | `ConnectionClosed { InHead, [GET /b] }` |
/// | inside a Content-Length / chunked body, inside trailers | `ConnectionClosed { InBody, [GET /b] }` after every byte that arrived |
/// | end of a close-delimited body, clean close | success; then `ConnectionClosed { Announced, [GET /b] }` |
///
/// (A reset ending a close-delimited body has its own test below.)
///
/// The table runs over TLS too (a terminator in front of the scripted server): a clean close
/// arrives as `close_notify`, a reset as a close without it, and every row reads the same.
#[test]
fn close_or_reset_at_every_phase_reports_the_phase_and_the_requests_behind() {
    use ClosePhase::{BeforeResponse, InHead};
    let cases: &[(&'static str, String, Cut)] = &[
        (
            "before the status line",
            String::new(),
            Cut::Head(BeforeResponse, &["/a", "/b"]),
        ),
        (
            "inside the status line",
            "HTTP/1.1 20".into(),
            Cut::Head(InHead, &["/b"]),
        ),
        (
            "after the status line",
            "HTTP/1.1 200 OK\r\n".into(),
            Cut::Head(InHead, &["/b"]),
        ),
        (
            "inside a field",
            "HTTP/1.1 200 OK\r\nContent-Len".into(),
            Cut::Head(InHead, &["/b"]),
        ),
        (
            "between CR and LF of the blank line",
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r".into(),
            Cut::Head(InHead, &["/b"]),
        ),
        (
            "Content-Length body, no byte of it",
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n".into(),
            Cut::Body(""),
        ),
        (
            "Content-Length body, half of it",
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello".into(),
            Cut::Body("hello"),
        ),
        (
            "Content-Length body, one byte short",
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello wor".into(),
            Cut::Body("hello wor"),
        ),
        (
            "chunked, inside the first size line",
            format!("{CHUNKED}1"),
            Cut::Body(""),
        ),
        (
            "chunked, inside chunk data",
            format!("{CHUNKED}5\r\nhel"),
            Cut::Body("hel"),
        ),
        (
            "chunked, before the chunk CRLF",
            format!("{CHUNKED}5\r\nhello"),
            Cut::Body("hello"),
        ),
        (
            "chunked, before the next size line",
            format!("{CHUNKED}5\r\nhello\r\n"),
            Cut::Body("hello"),
        ),
        (
            "chunked, after the last-chunk line",
            format!("{CHUNKED}5\r\nhello\r\n0\r\n"),
            Cut::Body("hello"),
        ),
        (
            "chunked, inside a trailer field",
            format!("{CHUNKED}5\r\nhello\r\n0\r\nX-T: 1"),
            Cut::Body("hello"),
        ),
        (
            "chunked, after a trailer field, before the blank line",
            format!("{CHUNKED}5\r\nhello\r\n0\r\nX-T: 1\r\n"),
            Cut::Body("hello"),
        ),
    ];
    for (front, path) in fronts_and_paths() {
        for end in End::ALL {
            for (name, reply, cut) in cases {
                let cut = *cut;
                let what = format!("{front:?} {path:?}, {end:?} {name}");
                let mut steps = vec![
                    Step::ExpectHead,
                    Step::ExpectHead,
                    Step::Reply(reply.clone().into_bytes()),
                ];
                steps.extend(end.steps());
                steps.extend([Step::Accept, Step::ExpectHead, Step::Reply(ok("next"))]);
                let server = ScriptedServer::start(steps);
                let (origin, config, _front) = front.open(server.addr());
                let port = origin.port;
                let run_what = what.clone();
                path.run_on(origin, config, move |conn| {
                    let what = run_what;
                    conn.get("/a").expect("send /a");
                    conn.get("/b").expect("send /b");

                    let error = match cut {
                        Cut::Head(phase, unanswered) => {
                            let error = conn
                                .read_response()
                                .expect_err("the response was cut off in its head");
                            let unanswered: Vec<InFlight> =
                                unanswered.iter().map(|t| g(t)).collect();
                            assert_closed(&error, phase, &unanswered, &what);
                            error
                        }
                        Cut::Body(before) => {
                            let response = conn.read_response().expect("the head is complete");
                            assert_eq!(response.path, "/a", "{what}");
                            let (got, ended) = read_until_end(conn);
                            assert_eq!(
                                String::from_utf8_lossy(&got),
                                *before,
                                "{what}: bytes before the cut"
                            );
                            let Err(error) = ended else {
                                panic!("{what}: the cut body was delivered as complete")
                            };
                            assert_closed(&error, ClosePhase::InBody, &[g("/b")], &what);
                            error
                        }
                    };
                    // Reported once: the connection is now simply closed.
                    assert!(!conn.response_pending(), "{what}: still pending");
                    assert!(!conn.has_active_response(), "{what}: body still active");
                    let again = conn.read_response();
                    assert!(
                        matches!(again, Err(Error::State(StateError::NoResponsePending))),
                        "{what}: after {error}: {again:?}"
                    );
                    conn.get("/next").expect("the next send reconnects");
                    expect_response(conn, "/next", 200, b"next");
                });

                let t = server.finish();
                t.assert_ok();
                assert_eq!(t.connections, 2, "{what}");
                assert_eq!(t.received_str(0), gets(port, &["/a", "/b"]), "{what}");
                assert_eq!(t.received_str(1), gets(port, &["/next"]), "{what}");
            }
        }
    }
}

/// A close-delimited body ended by a clean close is complete: every byte is delivered, the
/// response ends with `Ok(0)`, and the request pipelined behind it is reported as
/// `ConnectionClosed { Announced, [GET /b] }` (a close-delimited response cannot leave the
/// connection open).
#[test]
fn a_clean_close_ends_a_close_delimited_body() {
    for (front, path) in fronts_and_paths() {
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::ExpectHead,
            Step::reply_str("HTTP/1.1 200 OK\r\n\r\nuntil the close"),
            Step::Close,
            Step::Accept,
            Step::ExpectHead,
            Step::Reply(ok("b again")),
        ]);
        let (origin, config, _front) = front.open(server.addr());
        let port = origin.port;
        path.run_on(origin, config, move |conn| {
            conn.get("/a").expect("send /a");
            conn.get("/b").expect("send /b");
            let response = conn.read_response().expect("head");
            assert_eq!((response.path.as_str(), response.length), ("/a", None));
            let (got, ended) = read_until_end(conn);
            ended.expect("a clean close ends a close-delimited body");
            assert_eq!(got, b"until the close");
            let error = conn.read_response().expect_err("/b was never answered");
            assert_closed(
                &error,
                ClosePhase::Announced,
                &[g("/b")],
                &format!("{front:?} {path:?}"),
            );
            conn.get("/b").expect("resend /b");
            expect_response(conn, "/b", 200, b"b again");
        });
        let t = server.finish();
        t.assert_ok();
        assert_eq!(t.connections, 2);
        assert_eq!(t.received_str(0), gets(port, &["/a", "/b"]));
        assert_eq!(t.received_str(1), gets(port, &["/b"]));
    }
}

/// A reset is not the end of a close-delimited body: it is an abortive close (RFC 9112 §9.6:
/// a reset may erase data the client has not read yet), so the client cannot know that it
/// has the whole body, and RFC 9112 §8 requires an incomplete message to be recorded as such.
/// Decided behaviour: every byte that arrived is delivered, then `read` fails with
/// `ConnectionClosed { InBody, [GET /b] }`, exactly as for a cut `Content-Length` body.
///
/// Over TLS the terminator answers the server's reset by ending the client connection
/// abortively (SO_LINGER 0), without `close_notify`: the body is just as cut short, and the
/// row reads the same. (`tests/tls.rs` has a clean TCP close without `close_notify`.)
#[test]
fn a_reset_inside_a_close_delimited_body_is_a_truncation() {
    for (front, path) in fronts_and_paths() {
        let what = format!("{front:?} {path:?}");
        let mut steps = vec![
            Step::ExpectHead,
            Step::ExpectHead,
            Step::reply_str("HTTP/1.1 200 OK\r\n\r\ncut short by a reset"),
        ];
        steps.extend(End::Reset.steps());
        steps.extend([Step::Accept, Step::ExpectHead, Step::Reply(ok("next"))]);
        let server = ScriptedServer::start(steps);
        let (origin, config, _front) = front.open(server.addr());
        let port = origin.port;
        let run_what = what.clone();
        path.run_on(origin, config, move |conn| {
            let what = run_what;
            conn.get("/a").expect("send /a");
            conn.get("/b").expect("send /b");
            let response = conn.read_response().expect("head");
            assert_eq!(
                (response.path.as_str(), response.length),
                ("/a", None),
                "{what}"
            );
            let (got, ended) = read_until_end(conn);
            assert_eq!(
                got, b"cut short by a reset",
                "{what}: bytes before the reset"
            );
            let error = ended.expect_err("a reset must not pass for the end of the body");
            assert_closed(&error, ClosePhase::InBody, &[g("/b")], &what);
            assert!(!conn.response_pending(), "{what}");
            conn.get("/next").expect("the next send reconnects");
            expect_response(conn, "/next", 200, b"next");
        });
        let t = server.finish();
        t.assert_ok();
        assert_eq!(t.connections, 2, "{what}");
        assert_eq!(t.received_str(0), gets(port, &["/a", "/b"]), "{what}");
        assert_eq!(t.received_str(1), gets(port, &["/next"]), "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// Close with k of N pipelined requests outstanding
// ---------------------------------------------------------------------------------------------

/// Five pipelined GETs; the server answers the first 5 - k and then closes or resets. The
/// answered ones read normally, then `read_response` fails with
/// `ConnectionClosed { BeforeResponse, unanswered }` naming exactly the last k (method and
/// target, oldest first), once; resending them reconnects and works.
#[test]
fn close_with_k_of_5_pipelined_requests_outstanding_names_exactly_those() {
    const TARGETS: [&str; 5] = ["/1", "/2", "/3", "/4", "/5"];
    for (front, path) in fronts_and_paths() {
        for end in End::ALL {
            for k in 1..=4 {
                let what = format!("{front:?} {path:?}, {end:?} with {k} of 5 outstanding");
                let answered = &TARGETS[..5 - k];
                let outstanding = &TARGETS[5 - k..];
                let replies: Vec<Vec<u8>> =
                    answered.iter().map(|t| ok(&format!("re {t}"))).collect();
                let mut steps = vec![Step::ExpectHead; 5];
                steps.push(Step::Reply(replies.concat()));
                steps.extend(end.steps());
                steps.push(Step::Accept);
                steps.extend(vec![Step::ExpectHead; k]);
                let again: Vec<Vec<u8>> = outstanding
                    .iter()
                    .map(|t| ok(&format!("again {t}")))
                    .collect();
                steps.push(Step::Reply(again.concat()));
                let server = ScriptedServer::start(steps);
                let (origin, config, _front) = front.open(server.addr());
                let port = origin.port;
                let run_what = what.clone();
                path.run_on(origin, config, move |conn| {
                    let what = run_what;
                    for t in TARGETS {
                        conn.get(t).expect("pipelined send");
                    }
                    for t in answered {
                        expect_response(conn, t, 200, format!("re {t}").as_bytes());
                    }
                    assert!(conn.response_pending(), "{what}");
                    let error = conn
                        .read_response()
                        .expect_err("the rest were never answered");
                    let want: Vec<InFlight> = outstanding.iter().map(|t| g(t)).collect();
                    assert_closed(&error, ClosePhase::BeforeResponse, &want, &what);
                    assert_eq!(error.unanswered(), &want[..], "{what}");
                    // Exactly once: nothing is pending now, nothing is re-reported.
                    assert!(!conn.response_pending(), "{what}");
                    for request in error.unanswered() {
                        conn.send(
                            &request.method,
                            &request.target,
                            &HeaderMap::new(),
                            Body::Empty,
                        )
                        .unwrap_or_else(|e| panic!("{what}: resending {request}: {e:?}"));
                    }
                    for t in outstanding {
                        expect_response(conn, t, 200, format!("again {t}").as_bytes());
                    }
                    assert!(!conn.response_pending());
                });

                let t = server.finish();
                t.assert_ok();
                assert_eq!(t.connections, 2, "{what}");
                assert_eq!(t.received_str(0), gets(port, &TARGETS), "{what}");
                assert_eq!(t.received_str(1), gets(port, outstanding), "{what}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Slow and silent servers
// ---------------------------------------------------------------------------------------------

/// One byte per 100 ms against a 400 ms timeout:
///
/// - into a head: `read_response` fails with `Timeout { ReadResponse, 400ms }` within
///   400 ms + 1 s; calling again resumes (nothing lost) and the connection is reused;
/// - into a body read with `read_all` (one deadline for the whole call): `Timeout { ReadBody }`
///   in time; since bytes were taken the connection is poisoned
///   (`Poisoned { Timeout(ReadBody), [] }`) and the next send reconnects;
/// - into a body read with `read`: each call returns the next byte, the body is exact.
#[test]
fn a_trickling_server_cannot_extend_a_deadline_and_resuming_loses_nothing() {
    const TIMEOUT: Duration = Duration::from_millis(400);
    let trickle = |bytes: &str| Step::Trickle {
        bytes: bytes.as_bytes().to_vec(),
        interval: Duration::from_millis(100),
    };
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Reader {
        Head,
        ReadAll,
        Read,
    }
    let cases: &[(&str, &str, &str, Reader, &str)] = &[
        (
            "head",
            "HTTP/1.1 200 OK\r\n",
            "Content-Length: 2\r\n\r\nok",
            Reader::Head,
            "ok",
        ),
        (
            "identity body, read_all",
            "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",
            "hello world!",
            Reader::ReadAll,
            "",
        ),
        (
            "chunked body, read_all",
            CHUNKED,
            "5\r\nhello\r\n0\r\n\r\n",
            Reader::ReadAll,
            "",
        ),
        (
            "identity body, read",
            "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",
            "hello world!",
            Reader::Read,
            "hello world!",
        ),
    ];
    for (front, path) in fronts_and_timed_paths() {
        for (name, first, trickled, reader, body) in cases {
            let what = format!("{front:?} {path:?}, {name}");
            let mut steps = vec![Step::ExpectHead, Step::reply_str(first), trickle(trickled)];
            if *reader == Reader::ReadAll {
                steps.push(Step::Accept);
            }
            steps.extend([Step::ExpectHead, Step::Reply(ok("next"))]);
            let server = ScriptedServer::start(steps);
            let timeout = Config::default().timeout(Some(TIMEOUT));
            let (origin, config, _front) = front.open_with(server.addr(), timeout);
            let port = origin.port;
            let run_what = what.clone();
            path.run_on(origin, config, move |conn| {
                let what = run_what;
                conn.get("/a").expect("send");

                let timed = |op: Operation, f: &dyn Fn() -> Result<(), Error>| {
                    let start = Instant::now();
                    let got = f();
                    let elapsed = start.elapsed();
                    let error = got.expect_err("the deadline passed while bytes trickled in");
                    let in_time = matches!(
                        error,
                        Error::Timeout { operation, after } if operation == op && after == TIMEOUT
                    );
                    assert!(in_time, "{what}: {error:?}");
                    assert_says(&error, &["timed out after 400ms", &op.to_string()], &what);
                    assert!(
                        elapsed >= TIMEOUT - Duration::from_millis(20)
                            && elapsed < TIMEOUT + DEADLINE_SLACK,
                        "{what}: the call took {elapsed:?}"
                    );
                };
                match reader {
                    Reader::Head => {
                        timed(Operation::ReadResponse, &|| conn.read_response().map(drop));
                        assert!(conn.response_pending(), "{what}: lost the request");
                        let response = read_response_patiently(conn, 20, &what);
                        assert_eq!(response.path, "/a", "{what}");
                        assert_eq!(conn.read_all().expect("body"), body.as_bytes(), "{what}");
                    }
                    Reader::ReadAll => {
                        conn.read_response().expect("head");
                        timed(Operation::ReadBody, &|| conn.read_all().map(drop));
                        let report = conn.read_response().expect_err("poisoned");
                        assert_poisoned(
                            &report,
                            PoisonCause::Timeout(Operation::ReadBody),
                            &[],
                            &what,
                        );
                    }
                    Reader::Read => {
                        conn.read_response().expect("head");
                        let start = Instant::now();
                        let (got, ended) = read_until_end(conn);
                        ended.expect("every read returns the next byte before the deadline");
                        assert_eq!(String::from_utf8_lossy(&got), *body, "{what}");
                        assert!(start.elapsed() < Duration::from_secs(5), "{what}");
                    }
                }
                conn.get("/next").expect("send /next");
                // The connection is usable: /next is answered. How fast is not the point
                // (the 400 ms timeout is for the trickle; a reconnect through the TLS
                // terminator on a loaded machine can take longer), so timeouts are retried.
                let next = read_response_patiently(conn, 20, &what);
                assert_eq!(
                    (next.path.as_str(), next.status.as_u16()),
                    ("/next", 200),
                    "{what}"
                );
                assert_eq!(conn.read_all().expect("body"), b"next", "{what}");
            });

            let t = server.finish();
            t.assert_ok();
            if *reader == Reader::ReadAll {
                assert_eq!(t.connections, 2, "{what}: a poisoned connection was reused");
                assert_eq!(t.received_str(0), gets(port, &["/a"]), "{what}");
                assert_eq!(t.received_str(1), gets(port, &["/next"]), "{what}");
            } else {
                assert_eq!(t.connections, 1, "{what}: a timeout closed the connection");
                assert_eq!(t.received_str(0), gets(port, &["/a", "/next"]), "{what}");
            }
        }
    }
}

/// A server that accepts and reads the request but answers only after 1 s, against a 400 ms
/// timeout: `Timeout { ReadResponse }` (twice), the request stays pending, no body becomes
/// active; when the response finally comes it is read, matched to the request, and the
/// connection is reused.
#[test]
fn a_server_that_never_answers_times_out_and_loses_nothing() {
    const TIMEOUT: Duration = Duration::from_millis(400);
    for (front, path) in fronts_and_timed_paths() {
        let what = format!("{front:?} {path:?}");
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::Sleep(Duration::from_millis(1000)),
            Step::Reply(ok("late")),
            Step::ExpectHead,
            Step::Reply(ok("next")),
        ]);
        let timeout = Config::default().timeout(Some(TIMEOUT));
        let (origin, config, _front) = front.open_with(server.addr(), timeout);
        let port = origin.port;
        let run_what = what.clone();
        path.run_on(origin, config, move |conn| {
            let what = run_what;
            conn.get("/a").expect("send");
            for attempt in 0..2 {
                let start = Instant::now();
                let error = conn.read_response().expect_err("nothing arrived yet");
                let elapsed = start.elapsed();
                let in_time = matches!(
                    error,
                    Error::Timeout { operation: Operation::ReadResponse, after } if after == TIMEOUT
                );
                assert!(in_time, "{what} attempt {attempt}: {error:?}");
                assert_says(
                    &error,
                    &["timed out after 400ms reading a response head"],
                    &what,
                );
                assert!(
                    elapsed < TIMEOUT + DEADLINE_SLACK,
                    "{what}: took {elapsed:?}"
                );
                assert!(
                    conn.response_pending(),
                    "{what}: the request was lost by a timeout"
                );
                assert!(!conn.has_active_response(), "{what}");
            }
            let response = read_response_patiently(conn, 10, &what);
            assert_eq!(response.path, "/a", "{what}");
            assert_eq!(conn.read_all().expect("body"), b"late", "{what}");
            assert!(!conn.response_pending(), "{what}");
            conn.get("/next").expect("send /next");
            expect_response(conn, "/next", 200, b"next");
        });
        let t = server.finish();
        t.assert_ok();
        assert_eq!(t.connections, 1, "{what}");
        assert_eq!(t.received_str(0), gets(port, &["/a", "/next"]), "{what}");
    }
}

/// A server that reads the head of a 64 MiB `Body::Following` upload and then stops reading:
/// the upload (`write` pieces, or `sendfile_cofun`) fails with `Timeout { WriteBody }` in time;
/// part of the body is out, so the connection is poisoned: the next read says
/// `Poisoned { Timeout(WriteBody), [PUT /up] }` (once), a write says `Poisoned` too, and the
/// next send reconnects.
#[test]
fn a_server_that_stops_reading_an_upload_times_out_and_poisons() {
    const TIMEOUT: Duration = Duration::from_millis(500);
    const LEN: u64 = 64 << 20;
    for (front, path) in fronts_and_timed_paths() {
        let what = format!("{front:?} {path:?}");
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::Stall(Duration::from_millis(1500)),
            Step::Accept,
            Step::ExpectHead,
            Step::Reply(ok("next")),
        ]);
        let timeout = Config::default().timeout(Some(TIMEOUT));
        let (origin, config, _front) = front.open_with(server.addr(), timeout);
        let port = origin.port;
        let run_what = what.clone();
        path.run_on(origin, config, move |conn| {
            let what = run_what;
            conn.send(&Method::PUT, "/up", &HeaderMap::new(), Body::Following(LEN))
                .expect("the head goes out");
            let start = Instant::now();
            let up = upload(conn, LEN, |_| Go::On);
            let elapsed = start.elapsed();
            let error = up.error.expect("the upload cannot finish");
            let in_time = matches!(
                error,
                Error::Timeout { operation: Operation::WriteBody, after } if after == TIMEOUT
            );
            assert!(in_time, "{what}: {error:?}");
            assert_says(
                &error,
                &["timed out after 500ms writing a request body"],
                &what,
            );
            assert!(up.handed_over < LEN, "{what}");
            // Filling the socket buffers is quick; the deadline then ends the call.
            assert!(elapsed < Duration::from_secs(3), "{what}: took {elapsed:?}");
            assert!(!conn.is_writing_body(), "{what}");

            let report = conn.read_response().expect_err("poisoned");
            assert_poisoned(
                &report,
                PoisonCause::Timeout(Operation::WriteBody),
                &[in_flight(Method::PUT, "/up")],
                &what,
            );
            let again = conn.write(b"more");
            let poisoned = matches!(
                &again,
                Err(Error::Poisoned {
                    cause: PoisonCause::Timeout(Operation::WriteBody),
                    unanswered,
                }) if unanswered.is_empty()
            );
            assert!(poisoned, "{what}: write after the report: {again:?}");
            conn.get("/next").expect("the next send reconnects");
            let response = read_response_patiently(conn, 10, &what);
            assert_eq!(response.path, "/next", "{what}");
            assert_eq!(conn.read_all().expect("body"), b"next", "{what}");
        });

        let t = server.finish();
        t.assert_ok();
        assert_eq!(t.connections, 2, "{what}");
        let head =
            format!("PUT /up HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: {LEN}\r\n\r\n");
        assert!(t.received_str(0).starts_with(&head), "{what}");
        assert_eq!(t.received_str(1), gets(port, &["/next"]), "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// Early final response during an upload
// ---------------------------------------------------------------------------------------------

/// Plays an early `413` to a 64 MiB `PUT /up`: the server reads 1 MiB of the body, answers
/// (with or without `Connection: close`), pauses reading for 1 s when `pause` (so the
/// client's socket fills up), and then reads and discards everything until the client closes
/// (the lingering close of RFC 9112 §9.6).
///
/// Caller pattern, blocking and green paths: write the body in 256 KiB pieces and, before
/// each piece, check for response data with `has_buffered_data()` (it takes in what the
/// socket holds — over TLS the session tickets too, which make the descriptor readable with
/// no response behind them); once there is some, stop writing and read the response.
/// Cofunction path:
/// `sendfile_cofun` the body; the loop body runs when response data is available, reads the
/// response there and stops the upload by leaving the loop (which drops the cofunction).
/// `co_*` path: `co_write` the body through a poll loop that also
/// waits for readability, making the same check whenever the write waits, and dropping the
/// operation to stop.
///
/// Either way the 413 is matched to `PUT /up`, far less than the body went out, and the next
/// send reconnects and works. With `Connection: close` the library closes the connection after
/// the 413 (the owed body goes with it); without it the body is still owed (blocking) or the
/// dropped cofunction poisoned the connection, and the caller abandons it with `disconnect()`.
#[cfg(unix)]
fn early_413(front: Front, path: SendPath, announces_close: bool, pause: bool) {
    const LEN: u64 = 64 << 20;
    let what = format!("{front:?} {path:?}, Connection: close {announces_close}, pause {pause}");
    let close = if announces_close {
        "Connection: close\r\n"
    } else {
        ""
    };
    let early =
        format!("HTTP/1.1 413 Content Too Large\r\n{close}Content-Length: 8\r\n\r\ntoo big!");
    let mut steps = vec![
        Step::ExpectHead,
        Step::Discard(1 << 20),
        Step::Reply(early.into_bytes()),
    ];
    if pause {
        steps.push(Step::Stall(Duration::from_secs(1)));
    }
    steps.extend([
        Step::Drain(ABANDON),
        Step::Accept,
        Step::ExpectHead,
        Step::Reply(ok("next")),
    ]);
    let server = ScriptedServer::start(steps);
    let (origin, config, _front) = front.open(server.addr());
    let port = origin.port;
    let run_what = what.clone();
    path.run_on(origin, config, move |conn| {
        let what = run_what;
        conn.send(&Method::PUT, "/up", &HeaderMap::new(), Body::Following(LEN))
            .expect("the head goes out");

        let mut early_response = None;
        let up = upload(conn, LEN, |conn| {
            let has_data = match path {
                // The cofunction yields only when response data is there.
                SendPath::Cofun | SendPath::CofunDeclining => true,
                // Takes in what the socket holds (over TLS the session tickets too, which make
                // the descriptor readable with no response behind them).
                _ => conn.has_buffered_data(),
            };
            if !has_data {
                return Go::On;
            }
            let response = conn.read_response().expect("the early response");
            let body = conn.read_all().expect("its body");
            early_response = Some((response, body));
            Go::Stop
        });
        assert!(
            up.error.is_none(),
            "{what}: the upload failed: {:?}",
            up.error
        );
        assert!(
            up.stopped,
            "{what}: the 413 was not seen during the upload; {} body bytes went out",
            up.handed_over
        );
        let (response, body) = early_response.expect("the 413 was read during the upload");
        assert_eq!(
            (
                response.method.clone(),
                response.path.as_str(),
                response.status.as_u16()
            ),
            (Method::PUT, "/up", 413),
            "{what}"
        );
        assert_eq!(body, b"too big!", "{what}");
        assert!(
            up.handed_over < LEN / 2,
            "{what}: {} bytes went out",
            up.handed_over
        );
        assert!(!conn.response_pending(), "{what}");
        if announces_close {
            assert!(
                !conn.is_writing_body(),
                "{what}: the announced close must drop the owed body"
            );
            assert!(
                matches!(
                    conn.read_response(),
                    Err(Error::State(StateError::NoResponsePending))
                ),
                "{what}"
            );
        } else {
            conn.disconnect();
        }
        conn.get("/next").expect("the next send reconnects");
        expect_response(conn, "/next", 200, b"next");
    });

    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.connections, 2, "{what}");
    let head =
        format!("PUT /up HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: {LEN}\r\n\r\n");
    assert!(t.received_str(0).starts_with(&head), "{what}");
    assert!(
        (t.received[0].len() as u64) < LEN / 2,
        "{what}: the server got {} bytes",
        t.received[0].len()
    );
    assert_eq!(t.received_str(1), gets(port, &["/next"]), "{what}");
}

/// An early 413 during a 64 MiB upload, from a server that pauses reading after answering
/// (so the send blocks): see [`early_413`].
#[cfg(unix)]
#[test]
fn an_early_413_during_a_large_upload_is_read_and_stops_the_upload() {
    for (front, path) in fronts_and_paths() {
        for announces_close in [true, false] {
            early_413(front, path, announces_close, true);
        }
    }
}

/// An early 413 during a 64 MiB upload, from a server that keeps reading after answering (a
/// lingering close, as nginx does), so sends never block: the response is in the socket for
/// almost the whole upload and must still be read during it. See [`early_413`].
#[cfg(unix)]
#[test]
fn an_early_413_from_a_server_that_keeps_reading_is_read_during_the_upload() {
    for (front, path) in fronts_and_paths() {
        for announces_close in [true, false] {
            early_413(front, path, announces_close, false);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Unsolicited responses
// ---------------------------------------------------------------------------------------------

/// Bytes the server sends beyond the response to the only request — a second response to
/// the same request (small, or larger than the receive buffer), a stray `100 Continue`, a body
/// on a HEAD response, or extra bytes behind a chunked body's end — are never taken as a
/// response: with nothing pending, `read_response` says `State(NoResponsePending)`, and the
/// next send goes out on a new connection and gets its own response.
///
/// (B13 covers a small unsolicited response and an idle close/reset; a second response that
/// arrives after the client pipelined the next request is indistinguishable from that
/// request's response in HTTP/1.1 and cannot be detected by any client.)
#[test]
fn unsolicited_bytes_on_an_idle_connection_are_never_a_response() {
    let big = cat(&[
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
        &vec![b'E'; 100_000],
    ]);
    // (name, method of /a, server's bytes for /a, the body /a must read)
    let cases: &[(&str, Method, Vec<u8>, &'static str)] = &[
        (
            "a second small response",
            Method::GET,
            cat(&[&ok("first"), &ok("EVIL")]),
            "first",
        ),
        (
            "a second response larger than the receive buffer",
            Method::GET,
            cat(&[&ok("first"), &big]),
            "first",
        ),
        (
            "a stray 100 Continue",
            Method::GET,
            cat(&[&ok("first"), b"HTTP/1.1 100 Continue\r\n\r\n"]),
            "first",
        ),
        (
            "a body on a HEAD response",
            Method::HEAD,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!".to_vec(),
            "",
        ),
        (
            "a response behind a chunked body's end",
            Method::GET,
            cat(&[
                format!("{CHUNKED}5\r\nfirst\r\n0\r\n\r\n").as_bytes(),
                &ok("EVIL"),
            ]),
            "first",
        ),
    ];
    for (front, path) in fronts_and_paths() {
        for (name, method, reply, body) in cases {
            let (method_run, body) = (method.clone(), *body);
            let what = format!("{front:?} {path:?}, {name}");
            let server = ScriptedServer::start(vec![
                Step::ExpectHead,
                Step::Reply(reply.clone()),
                Step::Drain(ABANDON),
                Step::Accept,
                Step::ExpectHead,
                Step::Reply(ok("next")),
            ]);
            let (origin, config, _front) = front.open(server.addr());
            let port = origin.port;
            let run_what = what.clone();
            path.run_on(origin, config, move |conn| {
                let what = run_what;
                conn.send(&method_run, "/a", &HeaderMap::new(), Body::Empty)
                    .expect("send /a");
                expect_response(conn, "/a", 200, body.as_bytes());
                // Let everything the server sent arrive while the connection is idle.
                thread::sleep(Duration::from_millis(200));
                assert!(!conn.response_pending(), "{what}");
                let got = conn.read_response();
                assert!(
                    matches!(got, Err(Error::State(StateError::NoResponsePending))),
                    "{what}: an unsolicited response was read: {got:?}"
                );
                let mut buf = [0u8; 16];
                assert_eq!(conn.read(&mut buf).expect("no body is active"), 0, "{what}");
                conn.get("/b").expect("the next send reconnects");
                expect_response(conn, "/b", 200, b"next");
                assert!(!conn.response_pending(), "{what}");
            });

            let t = server.finish();
            t.assert_ok();
            assert_eq!(t.connections, 2, "{what}: the stale connection was reused");
            let first = request(port, method.as_str(), "/a");
            assert_eq!(t.received_str(0), String::from_utf8_lossy(&first), "{what}");
            assert_eq!(t.received_str(1), gets(port, &["/b"]), "{what}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Protocol errors in heads and bodies
// ---------------------------------------------------------------------------------------------
//
// Each check below runs one row: a path, in front of a plain or TLS peer.

/// Plays `reply` to `GET /a` with `GET /b` pipelined behind and checks a head error: exactly
/// `Protocol(want)` (message naming it with `phrase`), then `Poisoned` listing `GET /b` once,
/// then resending `/b` reconnects and works.
fn check_head_error(
    (front, path): (Front, SendPath),
    what: &str,
    config: &Config,
    reply: &[u8],
    want: ProtocolError,
    phrase: &str,
) {
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::ExpectHead,
        Step::Reply(reply.to_vec()),
        Step::Drain(ABANDON),
        Step::Accept,
        Step::ExpectHead,
        Step::Reply(ok("b again")),
    ]);
    let what = &format!("{front:?} {path:?}, {what}");
    let (origin, config, _front) = front.open_with(server.addr(), config.clone());
    let port = origin.port;
    let (what_run, phrase) = (what.to_owned(), phrase.to_owned());
    path.run_on(origin, config, move |conn| {
        let (what, phrase) = (what_run.as_str(), phrase.as_str());
        conn.get("/a").expect("send /a");
        conn.get("/b").expect("send /b");
        let error = conn.read_response().expect_err("the head is invalid");
        assert_protocol(&error, want, phrase, what);
        assert_eq!(error.unanswered(), &[], "{what}");
        let report = expect_poisoned(conn, want, &[g("/b")], what);
        assert_poisoned(&report, PoisonCause::Protocol(want), &[g("/b")], what);
        expect_poisoned(conn, want, &[], what);
        assert!(!conn.response_pending(), "{what}");
        conn.get("/b").expect("resend /b");
        expect_response(conn, "/b", 200, b"b again");
    });
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.connections, 2, "{what}: a poisoned connection was reused");
    assert_eq!(t.received_str(0), gets(port, &["/a", "/b"]), "{what}");
    assert_eq!(t.received_str(1), gets(port, &["/b"]), "{what}");
}

/// Plays `reply` (head and part of a body) to `GET /a` and checks that the body delivers
/// exactly `before` and then fails with `Protocol(want)`, after which the connection is
/// poisoned (listing `GET /b` once) and resending `/b` reconnects.
fn check_body_error(
    (front, path): (Front, SendPath),
    what: &str,
    config: &Config,
    reply: &[u8],
    before: &[u8],
    want: ProtocolError,
    phrase: &str,
) {
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::ExpectHead,
        Step::Reply(reply.to_vec()),
        Step::Drain(ABANDON),
        Step::Accept,
        Step::ExpectHead,
        Step::Reply(ok("b again")),
    ]);
    let what = &format!("{front:?} {path:?}, {what}");
    let (origin, config, _front) = front.open_with(server.addr(), config.clone());
    let port = origin.port;
    let (what_run, phrase, before) = (what.to_owned(), phrase.to_owned(), before.to_vec());
    path.run_on(origin, config, move |conn| {
        let (what, phrase) = (what_run.as_str(), phrase.as_str());
        conn.get("/a").expect("send /a");
        conn.get("/b").expect("send /b");
        let response = conn.read_response().expect("the head is fine");
        assert_eq!(response.path, "/a", "{what}");
        let (got, ended) = read_until_end(conn);
        assert!(got == before, "{what}: delivered {} bytes", got.len());
        let error = ended.expect_err("the body is invalid");
        assert_protocol(&error, want, phrase, what);
        let report = expect_poisoned(conn, want, &[g("/b")], what);
        assert_poisoned(&report, PoisonCause::Protocol(want), &[g("/b")], what);
        conn.get("/b").expect("resend /b");
        expect_response(conn, "/b", 200, b"b again");
    });
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.connections, 2, "{what}: a poisoned connection was reused");
    assert_eq!(t.received_str(0), gets(port, &["/a", "/b"]), "{what}");
    assert_eq!(t.received_str(1), gets(port, &["/b"]), "{what}");
}

/// Plays `reply_a` to `GET /a` and a plain 200 to the pipelined `GET /b`, and checks that
/// both are read, exactly, on one connection.
fn check_good(
    (front, path): (Front, SendPath),
    what: &str,
    config: &Config,
    reply_a: &[u8],
    body_a: &[u8],
) {
    let what = &format!("{front:?} {path:?}, {what}");
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::ExpectHead,
        Step::Reply(cat(&[reply_a, &ok("b")])),
    ]);
    let (origin, config, _front) = front.open_with(server.addr(), config.clone());
    let port = origin.port;
    let body_a = body_a.to_vec();
    path.run_on(origin, config, move |conn| {
        conn.get("/a").expect("send /a");
        conn.get("/b").expect("send /b");
        expect_response(conn, "/a", 200, &body_a);
        expect_response(conn, "/b", 200, b"b");
    });
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.connections, 1, "{what}");
    assert_eq!(t.received_str(0), gets(port, &["/a", "/b"]), "{what}");
}

/// Interim responses beyond what `tests/pitfalls.rs` (B10, custom cap 2) covers: the default
/// cap of 8, the count starting afresh for each response, and a 101 with a request queued
/// behind it (named by the poisoned connection).
#[test]
fn interim_responses_default_cap_counts_per_response_and_101_names_the_queue() {
    const CONTINUE: &str = "HTTP/1.1 100 Continue\r\n\r\n";
    let final_ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let eight = CONTINUE.repeat(8);
    let nine = CONTINUE.repeat(9);
    let default = Config::default();
    for row in fronts_and_paths() {
        check_good(
            row,
            "8 interim responses",
            &default,
            format!("{eight}{final_ok}").as_bytes(),
            b"ok",
        );
        // 8 before each of two responses: 16 in a row on the connection, each under the cap.
        check_good(
            row,
            "8 interim responses before each of two",
            &default,
            format!("{eight}{final_ok}{eight}").as_bytes(),
            b"ok",
        );
        check_head_error(
            row,
            "9 interim responses",
            &default,
            format!("{nine}{final_ok}").as_bytes(),
            ProtocolError::TooManyInterimResponses { limit: 8 },
            "more than 8 interim (1xx) responses",
        );
        check_head_error(
            row,
            "101 with a request behind it",
            &default,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n\x00\x00\x12\x04",
            ProtocolError::SwitchingProtocols,
            "101 switching protocols is not supported",
        );
        check_head_error(
            row,
            "cap 0: a single 100",
            &Config::default().max_interim_responses(0),
            format!("{CONTINUE}{final_ok}").as_bytes(),
            ProtocolError::TooManyInterimResponses { limit: 0 },
            "more than 0 interim (1xx) responses",
        );
    }
}

/// Oversize heads: a 64 KiB header line and 10,000 header fields, against the default limits
/// (64 KiB, 100 fields) and custom lower ones, with the exact limit accepted.
#[test]
fn oversize_heads_hit_the_default_and_custom_limits() {
    fn head_with(fields: &str) -> Vec<u8> {
        format!("HTTP/1.1 200 OK\r\n{fields}Content-Length: 2\r\n\r\nok").into_bytes()
    }
    let long_line = head_with(&format!("X-Long: {}\r\n", "v".repeat(64 * 1024)));
    let many = head_with(&"a:1\r\n".repeat(10_000));
    // "HTTP/1.1 200 OK\r\n" + "X-Pad: …\r\n" + "Content-Length: 2\r\n\r\n" = exactly `n` bytes.
    let exactly = |n: usize| {
        let fixed = "HTTP/1.1 200 OK\r\nX-Pad: \r\nContent-Length: 2\r\n\r\n".len();
        head_with(&format!("X-Pad: {}\r\n", "p".repeat(n - fixed)))
    };
    let fields = |n: usize| head_with(&"a:1\r\n".repeat(n - 1)); // plus Content-Length
    let default = Config::default();
    let small_head = Config::default().max_head_bytes(4096);
    let few_fields = Config::default().max_headers(10);
    for row in fronts_and_paths() {
        check_head_error(
            row,
            "64 KiB line, default limit",
            &default,
            &long_line,
            ProtocolError::HeadTooLarge { limit: 64 * 1024 },
            "response head exceeds the limit of 65536 bytes",
        );
        check_head_error(
            row,
            "64 KiB line, 4 KiB limit",
            &small_head,
            &long_line,
            ProtocolError::HeadTooLarge { limit: 4096 },
            "response head exceeds the limit of 4096 bytes",
        );
        check_head_error(
            row,
            "10,000 fields, default limit",
            &default,
            &many,
            ProtocolError::TooManyHeaders { limit: 100 },
            "response head has more than 100 header fields",
        );
        check_head_error(
            row,
            "10,000 fields, limit 10",
            &few_fields,
            &many,
            ProtocolError::TooManyHeaders { limit: 10 },
            "response head has more than 10 header fields",
        );
        // The limits are inclusive.
        let at_limit = exactly(4096);
        assert_eq!(at_limit.len(), 4096 + 2);
        check_good(
            row,
            "head of exactly 4096 bytes",
            &small_head,
            &at_limit,
            b"ok",
        );
        check_head_error(
            row,
            "head of 4097 bytes",
            &small_head,
            &exactly(4097),
            ProtocolError::HeadTooLarge { limit: 4096 },
            "exceeds the limit of 4096 bytes",
        );
        check_good(row, "exactly 10 fields", &few_fields, &fields(10), b"ok");
        check_head_error(
            row,
            "11 fields",
            &few_fields,
            &fields(11),
            ProtocolError::TooManyHeaders { limit: 10 },
            "more than 10 header fields",
        );
    }
}

/// Chunked-body limits not covered by `tests/pitfalls.rs` (B4/B5 cover sizes and CRLFs): a
/// trailer section over `max_trailer_bytes` (default 16 KiB and a custom 64), more trailer
/// fields than `max_headers`, a malformed trailer line, and a chunk-size line (extensions)
/// beyond the 4 KiB line bound. The body bytes before the fault are all delivered.
#[test]
fn trailer_and_chunk_line_limits_poison_the_connection() {
    let big_trailer = format!(
        "{CHUNKED}5\r\nhello\r\n0\r\nX-Big: {}\r\n\r\n",
        "t".repeat(17 * 1024)
    );
    let trailer_100 = format!(
        "{CHUNKED}5\r\nhello\r\n0\r\nX-T: {}\r\n\r\n",
        "t".repeat(100)
    );
    let many_fields = format!("{CHUNKED}5\r\nhello\r\n0\r\n{}\r\n", "t:1\r\n".repeat(101));
    let malformed = format!("{CHUNKED}5\r\nhello\r\n0\r\nno colon here\r\n\r\n");
    let long_ext = format!("{CHUNKED}5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(70_000));
    for row in fronts_and_paths() {
        check_body_error(
            row,
            "17 KiB trailer, default limit",
            &Config::default(),
            big_trailer.as_bytes(),
            b"hello",
            ProtocolError::TrailerTooLarge { limit: 16 * 1024 },
            "trailer section exceeds the limit of 16384 bytes",
        );
        check_body_error(
            row,
            "100-byte trailer, limit 64",
            &Config::default().max_trailer_bytes(64),
            trailer_100.as_bytes(),
            b"hello",
            ProtocolError::TrailerTooLarge { limit: 64 },
            "trailer section exceeds the limit of 64 bytes",
        );
        // The field limit applies to trailers too, and says so.
        check_body_error(
            row,
            "101 trailer fields",
            &Config::default(),
            many_fields.as_bytes(),
            b"hello",
            ProtocolError::TooManyHeaders { limit: 100 },
            "more than 100 header fields",
        );
        check_body_error(
            row,
            "trailer line without a colon",
            &Config::default(),
            malformed.as_bytes(),
            b"hello",
            ProtocolError::MalformedTrailer,
            "malformed trailer section",
        );
        check_body_error(
            row,
            "70,000-byte chunk extension",
            &Config::default(),
            long_ext.as_bytes(),
            b"",
            ProtocolError::ChunkLineTooLong,
            "chunk-size line too long",
        );
    }
}

/// `max_trailer_bytes` bounds the trailer section, which RFC 9112 §7.1.2 defines as the
/// field lines (`*( field-line CRLF )`), not the blank line that ends the chunked body: a
/// section of exactly the limit is accepted, one byte more is not, and a limit of 0 still
/// accepts a chunked body without trailers.
#[test]
fn trailer_limit_counts_the_trailer_section_only() {
    // "X-T: 123456\r\n" is 13 bytes.
    let thirteen = format!("{CHUNKED}5\r\nhello\r\n0\r\nX-T: 123456\r\n\r\n");
    let fourteen = format!("{CHUNKED}5\r\nhello\r\n0\r\nX-T: 1234567\r\n\r\n");
    let none = format!("{CHUNKED}5\r\nhello\r\n0\r\n\r\n");
    for row in fronts_and_paths() {
        let limit = Config::default().max_trailer_bytes(13);
        check_good(
            row,
            "13-byte trailer section, limit 13",
            &limit,
            thirteen.as_bytes(),
            b"hello",
        );
        check_body_error(
            row,
            "14-byte trailer section, limit 13",
            &limit,
            fourteen.as_bytes(),
            b"hello",
            ProtocolError::TrailerTooLarge { limit: 13 },
            "trailer section exceeds the limit of 13 bytes",
        );
        let zero = Config::default().max_trailer_bytes(0);
        check_good(
            row,
            "no trailers, limit 0",
            &zero,
            none.as_bytes(),
            b"hello",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bounded memory
// ---------------------------------------------------------------------------------------------

/// A 1 GiB body from the loopback server, read with `read` into a 64 KiB buffer: the byte
/// count is exact, sampled bytes match the pattern at their offsets (nothing dropped, shifted
/// or invented), and the receive buffer never grows past its initial 16 KiB — it grows only
/// for heads (and for what a blocking send must buffer), and a 64 KiB caller buffer is filled
/// straight from the socket. The connection is then reused.
///
/// Over TLS the bound is on the same buffer (the body comes out of the TLS session's
/// plaintext); rustls's own record buffers are not counted here.
#[test]
fn a_gigabyte_body_streams_through_a_64k_buffer_in_bounded_memory() {
    const LEN: u64 = 1 << 30;
    const BOUND: usize = 16 * 1024;
    for (front, path) in fronts_and_paths() {
        let server = LoopbackServer::start();
        let (origin, config, _front) = front.open(server.addr());
        path.run_on(origin, config, move |conn| {
            let start = Instant::now();
            conn.get(&format!("/bytes/{LEN}")).expect("send");
            let response = conn.read_response().expect("head");
            assert_eq!(response.length, Some(LEN));
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0u64;
            let mut largest = conn.receive_buffer_capacity();
            loop {
                let n = conn.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                for i in [0, n / 2, n - 1] {
                    assert_eq!(
                        buf[i],
                        pattern_byte(total + i as u64),
                        "{front:?} {path:?}: byte {} differs",
                        total + i as u64
                    );
                }
                total += n as u64;
                largest = largest.max(conn.receive_buffer_capacity());
                assert!(
                    largest <= BOUND,
                    "{front:?} {path:?}: receive buffer grew to {largest} bytes at offset {total}"
                );
            }
            assert_eq!(total, LEN, "{front:?} {path:?}");
            assert!(
                !conn.has_active_response() && !conn.response_pending(),
                "{front:?} {path:?}"
            );
            let elapsed = start.elapsed();
            assert!(
                elapsed < Duration::from_secs(60),
                "{front:?} {path:?}: took {elapsed:?}"
            );
            conn.get("/bytes/5").expect("send");
            expect_response(conn, "/bytes/5", 200, b"abcde");
            assert!(
                conn.receive_buffer_capacity() <= BOUND,
                "{front:?} {path:?}"
            );
        });
        assert_eq!(server.connections_accepted(), 1, "{front:?} {path:?}");
        assert!(server.errors().is_empty(), "{:?}", server.errors());
    }
}

// ---------------------------------------------------------------------------------------------
// Request side
// ---------------------------------------------------------------------------------------------

/// A header value built without validation (http re-validates such values in debug builds and
/// panics, so the test that uses it runs only in release builds).
#[allow(unsafe_code)]
fn unchecked(bytes: &'static [u8]) -> HeaderValue {
    // SAFETY: `from_maybe_shared_unchecked` only skips http's byte validation; the value is
    // stored and handed to dugong, whose own validation is what this test checks. Nothing
    // reads it as `str`.
    unsafe { HeaderValue::from_maybe_shared_unchecked(bytes) }
}

/// CR, LF, NUL, other controls and DEL in header values that bypassed http's validation
/// (including a caller's `Host`) are rejected with `InvalidRequest(InvalidHeaderValue)`
/// before anything happens: through both paths, no connection is even opened, nothing joins
/// the pipeline, and the server only ever receives the valid request sent afterwards.
/// (B8 covers the target through both paths and the safe constructors.)
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "needs --release: http panics on invalid unchecked header values in debug builds"
)]
fn unchecked_header_values_with_controls_are_rejected_before_anything_is_sent() {
    let bad: &[&'static [u8]] = &[
        b"v\r\nX-Injected: 1",
        b"v\r\n\r\nGET /smuggled HTTP/1.1",
        b"v\nw",
        b"v\rw",
        b"v\0w",
        b"v\x01w",
        b"v\x1bw",
        b"v\x7fw",
    ];
    for (front, path) in fronts_and_paths() {
        let server = ScriptedServer::start(vec![Step::ExpectHead, Step::Reply(ok("fine"))]);
        let (origin, config, _front) = front.open(server.addr());
        let port = origin.port;
        path.run_on(origin, config, move |conn| {
            for value in bad {
                for name in ["x-v", "host"] {
                    let value_text = String::from_utf8_lossy(value);
                    let what = format!("{front:?} {path:?}, {name}: {value_text:?}");
                    let mut map = HeaderMap::new();
                    map.insert(name, unchecked(value));
                    let got = conn.send(&Method::GET, "/a", &map, Body::Empty);
                    let error = got.expect_err("an unsafe header value must be refused");
                    assert!(
                        matches!(
                            error,
                            Error::InvalidRequest(RequestError::InvalidHeaderValue)
                        ),
                        "{what}: {error:?}"
                    );
                    assert_eq!(
                        faults::full_message(&error),
                        "invalid request: invalid header value",
                        "{what}"
                    );
                    assert!(!conn.response_pending(), "{what}: joined the pipeline");
                    assert_eq!(
                        std::os::fd::AsRawFd::as_raw_fd(conn),
                        -1,
                        "{what}: a connection was opened"
                    );
                }
            }
            conn.get("/ok").expect("a valid request");
            expect_response(conn, "/ok", 200, b"fine");
        });
        let t = server.finish();
        t.assert_ok();
        assert_eq!(t.connections, 1, "{front:?} {path:?}");
        assert_eq!(
            t.received_str(0),
            gets(port, &["/ok"]),
            "{front:?} {path:?}"
        );
    }
}
