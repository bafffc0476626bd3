//! Python dugong's mistakes (`dugong-pitfalls.md`, rows B2–B14, B16–B20, B25–B29) and proof,
//! one test (or a few) per row, that this crate does what the "Recommendation" column asks
//! instead. Every test that sends goes through every [`SendPath`].
//!
//! Rows not covered here: B1 (peer-gone mapping) belongs to the driver tests; B15 (CONNECT
//! proxies), B21 (tracefile), B22 (TLS peer certificates), B23 (asyncio fd registries) and
//! B24 (the EARLY cofunction API) have no counterpart in this API.

mod support;
#[path = "support/wire.rs"]
mod wire;

use std::thread;
use std::time::{Duration, Instant};

use dugong::{
    Body, ClosePhase, Config, Error, HttpConnection, Operation, PoisonCause, ProtocolError,
    RequestError, StateError,
};
use http::header::HOST;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use support::{headers, pattern, Client, LoopbackServer, ScriptedServer, SendPath, Step};
use wire::{
    cat, check_reply, expect_poisoned, expect_response, get, get_after_report, in_flight, ok,
    read_full, Want, ABANDON, SLACK,
};

/// Runs a `(name, reply to GET /a, outcome)` table through every send path.
fn run_table(config: &Config, cases: &[(&str, &[u8], Want)]) {
    for path in SendPath::ALL {
        for (name, reply, want) in cases {
            check_reply(*path, name, config, &Method::GET, reply, *want);
        }
    }
}

/// A chunked `200 OK` whose body (framing included) is `$body`.
macro_rules! chunked {
    ($body:literal) => {
        concat!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            $body
        )
        .as_bytes()
    };
}

/// A `200 OK` with one `Content-Length` line `$cl` (as written) and then `$rest`.
macro_rules! with_length {
    ($cl:literal, $rest:literal) => {
        concat!(
            "HTTP/1.1 200 OK\r\nContent-Length: ",
            $cl,
            "\r\n\r\n",
            $rest
        )
        .as_bytes()
    };
}

// ---------------------------------------------------------------------------------------------
// B2
// ---------------------------------------------------------------------------------------------

/// B2: "A zero-length body completes at `send_request`. `write(b'')` is a no-op."
///
/// (`send()` returning 0 being WriteZero is a property of the socket layer that a loopback
/// peer cannot provoke; it is not tested here.)
#[test]
fn b02_zero_length_body_completes_at_send_and_empty_write_is_a_no_op() {
    for path in SendPath::ALL {
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::Reply(ok("zero")),
            Step::ExpectHead,
            Step::Discard(3),
            Step::Reply(ok("len")),
            Step::ExpectHead,
            Step::Expect(b"3\r\nabc\r\n0\r\n\r\n".to_vec()),
            Step::Reply(ok("chunked")),
        ]);
        let port = server.port();
        path.run(
            port,
            Config::default().timeout(Some(Duration::from_millis(300))),
            move |conn| {
                let none = HeaderMap::new();

                // Following(0): complete at send_request, its response readable without any write.
                conn.send(&Method::PUT, "/zero", &none, Body::Following(0))
                    .expect("send Following(0)");
                assert!(!conn.is_writing_body(), "Following(0) must not owe a body");
                expect_response(conn, "/zero", 200, b"zero");

                // Following(3): an empty write is a no-op that neither blocks nor counts.
                conn.send(&Method::PUT, "/len", &none, Body::Following(3))
                    .expect("send Following(3)");
                // Bounded: the 300 ms timeout would end a write that waited.
                let start = Instant::now();
                conn.write(b"").expect("empty write");
                assert!(
                    start.elapsed() < SLACK,
                    "write(b\"\") on a Following body waited"
                );
                assert!(
                    conn.is_writing_body(),
                    "an empty write must not complete the body"
                );
                conn.write(b"abc").expect("write");
                assert!(!conn.is_writing_body());
                expect_response(conn, "/len", 200, b"len");

                // Chunked: an empty write neither blocks nor sends the last-chunk.
                conn.send(&Method::PUT, "/chunk", &none, Body::Chunked)
                    .expect("send Chunked");
                // Bounded: the 300 ms timeout would end a write that waited.
                let start = Instant::now();
                conn.write(b"").expect("empty write");
                assert!(
                    start.elapsed() < SLACK,
                    "write(b\"\") on a chunked body waited"
                );
                assert!(
                    conn.is_writing_body(),
                    "an empty write must not end a chunked body"
                );
                conn.write(b"abc").expect("write");
                conn.write(b"").expect("empty write");
                assert!(conn.is_writing_body());
                conn.finish_body().expect("finish_body");
                assert!(!conn.is_writing_body());
                expect_response(conn, "/chunk", 200, b"chunked");
            },
        );

        let t = server.finish();
        t.assert_ok();
        let host = format!("host: 127.0.0.1:{port}\r\n");
        let want = format!(
            "PUT /zero HTTP/1.1\r\n{host}content-length: 0\r\n\r\n\
             PUT /len HTTP/1.1\r\n{host}content-length: 3\r\n\r\nabc\
             PUT /chunk HTTP/1.1\r\n{host}transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        );
        assert_eq!(t.received_str(0), want);
        assert_eq!(t.connections, 1);
    }
}

// ---------------------------------------------------------------------------------------------
// B3 – B6
// ---------------------------------------------------------------------------------------------

/// B3: "Accept only `1*DIGIT` within u64. Identical duplicates or lists may collapse;
/// differing ones → InvalidResponse and the connection is closed."
#[test]
fn b03_content_length_is_strict() {
    use ProtocolError::{ConflictingContentLength as Conflict, InvalidContentLength as Invalid};
    let dup_differ = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd";
    let dup_same = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc";
    let cases: &[(&str, &[u8], Want)] = &[
        (
            "negative",
            with_length!("-1", "ab"),
            Want::HeadError(Invalid),
        ),
        (
            "plus sign",
            with_length!("+3", "abc"),
            Want::HeadError(Invalid),
        ),
        (
            "underscore",
            with_length!("1_0", "abc"),
            Want::HeadError(Invalid),
        ),
        (
            "inner space",
            with_length!("1 0", "abc"),
            Want::HeadError(Invalid),
        ),
        ("hex", with_length!("0x3", "abc"), Want::HeadError(Invalid)),
        (
            "letters",
            with_length!("abc", "abc"),
            Want::HeadError(Invalid),
        ),
        ("empty", with_length!("", "abc"), Want::HeadError(Invalid)),
        (
            "u64 overflow",
            with_length!("18446744073709551616", "a"),
            Want::HeadError(Invalid),
        ),
        (
            "differing list",
            with_length!("3, 4", "abcd"),
            Want::HeadError(Conflict),
        ),
        (
            "differing duplicates",
            dup_differ,
            Want::HeadError(Conflict),
        ),
        (
            "identical list",
            with_length!("3, 3", "abc"),
            Want::Body(200, b"abc"),
        ),
        ("identical duplicates", dup_same, Want::Body(200, b"abc")),
        (
            "leading zeros",
            with_length!("003", "abc"),
            Want::Body(200, b"abc"),
        ),
    ];
    run_table(&Config::default(), cases);
}

/// B4: "Accept only `1*HEXDIG` (bounded …), optional BWS before `;ext`, and CRLF (optionally
/// bare LF). Error otherwise."
#[test]
fn b04_chunk_size_is_strict() {
    use ProtocolError::InvalidChunkSize as Invalid;
    let cases: &[(&str, &[u8], Want)] = &[
        (
            "negative size (dugong truncated the body)",
            chunked!("3\r\nabc\r\n-2\r\nxy\r\n0\r\n\r\n"),
            Want::BodyError(Invalid),
        ),
        (
            "plus sign",
            chunked!("+3\r\nabc\r\n0\r\n\r\n"),
            Want::BodyError(Invalid),
        ),
        (
            "0x prefix",
            chunked!("0x3\r\nabc\r\n0\r\n\r\n"),
            Want::BodyError(Invalid),
        ),
        (
            "underscore",
            chunked!("1_0\r\n0123456789\r\n0\r\n\r\n"),
            Want::BodyError(Invalid),
        ),
        (
            "leading space",
            chunked!(" 3\r\nabc\r\n0\r\n\r\n"),
            Want::BodyError(Invalid),
        ),
        (
            "junk after BWS",
            chunked!("3 x\r\nabc\r\n0\r\n\r\n"),
            Want::BodyError(Invalid),
        ),
        (
            "empty size line",
            chunked!("\r\nabc\r\n0\r\n\r\n"),
            Want::BodyError(Invalid),
        ),
        (
            "CR without LF",
            chunked!("3\rabc\r\n0\r\n\r\n"),
            Want::BodyError(Invalid),
        ),
        (
            "17 hex digits overflow u64",
            chunked!("fffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
            Want::BodyError(Invalid),
        ),
        (
            "extension",
            chunked!("3;name=value\r\nabc\r\n0\r\n\r\n"),
            Want::Body(200, b"abc"),
        ),
        (
            "BWS before extension",
            chunked!("3 \t;x\r\nabc\r\n0\r\n\r\n"),
            Want::Body(200, b"abc"),
        ),
        (
            "upper-case hex",
            chunked!("A\r\n0123456789\r\n0\r\n\r\n"),
            Want::Body(200, b"0123456789"),
        ),
        (
            "16 hex digits",
            chunked!("0000000000000003\r\nabc\r\n0\r\n\r\n"),
            Want::Body(200, b"abc"),
        ),
        (
            "bare LF",
            chunked!("3\nabc\n0\n\n"),
            Want::Body(200, b"abc"),
        ),
    ];
    run_table(&Config::default(), cases);
}

/// B5: "Require CRLF exactly after the chunk data."
#[test]
fn b05_chunk_data_must_end_with_crlf() {
    use ProtocolError::MissingChunkCrlf as Missing;
    let cases: &[(&str, &[u8], Want)] = &[
        (
            "junk before CRLF",
            chunked!("3\r\nabcX\r\n0\r\n\r\n"),
            Want::BodyError(Missing),
        ),
        (
            "next size line right after the data (dugong swallowed it)",
            chunked!("3\r\nabc0\r\n\r\n"),
            Want::BodyError(Missing),
        ),
        (
            "CR then junk",
            chunked!("3\r\nabc\rX\n0\r\n\r\n"),
            Want::BodyError(Missing),
        ),
        (
            "CRLF",
            chunked!("3\r\nabc\r\n0\r\n\r\n"),
            Want::Body(200, b"abc"),
        ),
    ];
    run_table(&Config::default(), cases);
}

/// B6: "Use chunked framing but mark the connection non-reusable (RFC 9112 §6.3), or reject."
/// We reject.
#[test]
fn b06_length_with_transfer_encoding_is_rejected() {
    use ProtocolError::LengthWithTransferEncoding as Both;
    let cases: &[(&str, &[u8], Want)] = &[
        (
            "CL then TE",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            Want::HeadError(Both),
        ),
        (
            "TE then CL",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            Want::HeadError(Both),
        ),
        (
            "non-chunked TE with CL",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
            Want::HeadError(Both),
        ),
    ];
    run_table(&Config::default(), cases);
}

// ---------------------------------------------------------------------------------------------
// B7, B8
// ---------------------------------------------------------------------------------------------

/// B7: "Never mutate caller headers. Recompute derived headers each time. Make auto headers
/// overridable or reject conflicts explicitly." No Content-MD5, no other added header.
#[test]
fn b07_caller_headers_are_not_mutated_and_nothing_is_added() {
    for path in SendPath::ALL {
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::Discard(3),
            Step::Reply(ok("one")),
            Step::ExpectHead,
            Step::Discard(5),
            Step::Reply(ok("two")),
            Step::ExpectHead,
            Step::Reply(ok("three")),
        ]);
        let port = server.port();
        path.run(port, Config::default(), move |conn| {
            let mut map = HeaderMap::new();
            map.insert(HOST, HeaderValue::from_static("example.test"));
            map.append("x-a", HeaderValue::from_static("1"));
            map.append("x-a", HeaderValue::from_static("2"));
            let before = map.clone();

            conn.send(&Method::PUT, "/one", &map, Body::Bytes(b"abc"))
                .expect("send /one");
            assert_eq!(map, before, "caller headers changed by a send");
            // The same map with another body: the derived length is recomputed.
            conn.send(&Method::PUT, "/two", &map, Body::Bytes(b"hello"))
                .expect("send /two");
            assert_eq!(map, before, "caller headers changed by a second send");

            // Framing headers conflict with the Body argument: rejected, nothing sent.
            for (name, value) in [
                ("content-length", "3"),
                ("Content-Length", "0"),
                ("transfer-encoding", "chunked"),
                ("Transfer-Encoding", "gzip"),
            ] {
                let mut bad = map.clone();
                bad.insert(
                    HeaderName::from_bytes(name.as_bytes()).expect("name"),
                    HeaderValue::from_static(value),
                );
                let got = conn.send(&Method::PUT, "/bad", &bad, Body::Bytes(b"abc"));
                assert!(
                    matches!(got, Err(Error::InvalidRequest(RequestError::FramingHeader))),
                    "{name}: {value}: {got:?}"
                );
            }
            assert!(!conn.is_writing_body());
            conn.get("/three").expect("send /three");

            expect_response(conn, "/one", 200, b"one");
            expect_response(conn, "/two", 200, b"two");
            expect_response(conn, "/three", 200, b"three");
        });

        let t = server.finish();
        t.assert_ok();
        let want = cat(&[
            b"PUT /one HTTP/1.1\r\nhost: example.test\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 3\r\n\r\nabc",
            b"PUT /two HTTP/1.1\r\nhost: example.test\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 5\r\n\r\nhello",
            &get(port, "/three"),
        ]);
        assert_eq!(t.received_str(0), String::from_utf8_lossy(&want));
        assert_eq!(t.connections, 1);
    }
}

/// B8: "Validate tokens and field-values and reject CTLs with a dedicated error before sending
/// anything."
#[test]
fn b08_injection_is_rejected_before_anything_is_sent() {
    // Method tokens and header names/values are validated by `http`'s safe constructors, so a
    // request cannot even be built with CR/LF/NUL in them.
    for bad in [&b"GET /x HTTP/1.1\r\n"[..], b"GE T", b"GET\0", b""] {
        assert!(Method::from_bytes(bad).is_err(), "{bad:?}");
    }
    for bad in [&b"v\r\nX-Injected: 1"[..], b"v\nw", b"v\rw", b"v\0w"] {
        assert!(HeaderValue::from_bytes(bad).is_err(), "{bad:?}");
    }
    for bad in [&b"x a"[..], b"x:a", b"x\r\n", b""] {
        assert!(HeaderName::from_bytes(bad).is_err(), "{bad:?}");
    }

    for path in SendPath::ALL {
        let server = ScriptedServer::start(vec![Step::ExpectHead, Step::Reply(ok("fine"))]);
        let port = server.port();
        // The host becomes a header value too, and, through a forward proxy, part of an
        // absolute-form target: nothing that would move the authority elsewhere (user info,
        // a port, a path) gets in.
        for host in [
            "a\r\nX-Injected: 1",
            "a b",
            "a\0",
            "",
            "trusted.test@inner.test",
            "a:b",
            "a/b",
            "a?b",
            "a#b",
        ] {
            let got = HttpConnection::new(host, port);
            assert!(
                matches!(got, Err(Error::InvalidRequest(RequestError::InvalidHost))),
                "{host:?}: {got:?}"
            );
        }
        path.run(port, Config::default(), move |conn| {
            let targets = [
                "/a b",
                "/a\r\nX-Injected: 1",
                "/a\r\n\r\nGET /smuggled HTTP/1.1",
                "/a\nb",
                "/a\rb",
                "/\0",
                "/\t",
                "/\x7f",
                "/\u{e9}",
                "",
            ];
            for target in targets {
                let got = conn.get(target);
                assert!(
                    matches!(got, Err(Error::InvalidRequest(RequestError::InvalidTarget))),
                    "{target:?}: {got:?}"
                );
                assert!(!conn.response_pending(), "{target:?} joined the pipeline");
            }
            // A valid request with an extension method and a tab in a value goes out verbatim, and
            // is the only thing the server ever received.
            let purge = Method::from_bytes(b"PURGE").expect("extension method");
            let extra = headers(&[("x-v", "a\tb")]);
            conn.send(&purge, "/ok?q=%20", &extra, Body::Empty)
                .expect("valid request");
            expect_response(conn, "/ok?q=%20", 200, b"fine");
        });

        let t = server.finish();
        t.assert_ok();
        assert_eq!(t.connections, 1);
        assert_eq!(
            t.received_str(0),
            format!("PURGE /ok?q=%20 HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nx-v: a\tb\r\n\r\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// B9
// ---------------------------------------------------------------------------------------------

/// B9: "Either make every operation resumable (state changes only after full items are
/// parsed), or poison the connection on timeout and say so." We resume: a timeout anywhere in
/// a head or body loses nothing, and the connection stays usable.
#[test]
fn b09_timeouts_lose_nothing_and_reads_resume() {
    const HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    const CHUNKED: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    const HEAD_: Operation = Operation::ReadResponse;
    const BODY_: Operation = Operation::ReadBody;
    // (name, bytes before the pause, bytes after it, where the timeout hits)
    let cases: &[(&'static str, String, &'static str, Operation)] = &[
        (
            "inside the status line",
            "HTTP/1.1 20".into(),
            "0 OK\r\nContent-Length: 5\r\n\r\nhello",
            HEAD_,
        ),
        (
            "after the status line",
            "HTTP/1.1 200 OK\r\n".into(),
            "Content-Length: 5\r\n\r\nhello",
            HEAD_,
        ),
        (
            "inside a field",
            "HTTP/1.1 200 OK\r\nContent-Le".into(),
            "ngth: 5\r\n\r\nhello",
            HEAD_,
        ),
        (
            "before the blank line",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n".into(),
            "\r\nhello",
            HEAD_,
        ),
        (
            "between CR and LF",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r".into(),
            "\nhello",
            HEAD_,
        ),
        ("inside an identity body", format!("{HEAD}he"), "llo", BODY_),
        (
            "inside a chunk-size line",
            format!("{CHUNKED}5"),
            "\r\nhello\r\n0\r\n\r\n",
            BODY_,
        ),
        (
            "inside chunk data",
            format!("{CHUNKED}5\r\nhe"),
            "llo\r\n0\r\n\r\n",
            BODY_,
        ),
        (
            "before the chunk CRLF",
            format!("{CHUNKED}5\r\nhello"),
            "\r\n0\r\n\r\n",
            BODY_,
        ),
        (
            "before the last chunk",
            format!("{CHUNKED}5\r\nhello\r\n"),
            "0\r\n\r\n",
            BODY_,
        ),
        (
            "inside the trailers",
            format!("{CHUNKED}5\r\nhello\r\n0\r\nX-T: 1"),
            "\r\n\r\n",
            BODY_,
        ),
    ];
    let timeout = Duration::from_millis(250);
    // Not CoOps: co_* operations have no operation timeout by design.
    for path in [SendPath::Blocking, SendPath::Cofun, SendPath::Green] {
        for (name, before, after, op) in cases {
            let (name, op) = (*name, *op);
            let server = ScriptedServer::start(vec![
                Step::ExpectHead,
                Step::Reply(before.as_bytes().to_vec()),
                Step::Sleep(Duration::from_millis(700)),
                Step::Reply(after.as_bytes().to_vec()),
                Step::ExpectHead,
                Step::Reply(ok("next")),
            ]);
            let port = server.port();
            path.run(
                port,
                Config::default().timeout(Some(timeout)),
                move |conn| {
                    conn.get("/a").expect("send");

                    let mut timeouts = Vec::new();
                    let note = |timeouts: &mut Vec<Operation>, e: Error| match e {
                        Error::Timeout { operation, after } if after == timeout => {
                            timeouts.push(operation)
                        }
                        other => panic!("{name}: expected only timeouts, got {other:?}"),
                    };
                    let response = loop {
                        match conn.read_response() {
                            Ok(r) => break r,
                            Err(e) => note(&mut timeouts, e),
                        }
                        assert!(timeouts.len() < 20, "{name}: never completed");
                    };
                    assert_eq!(
                        (response.path.as_str(), response.status.as_u16()),
                        ("/a", 200),
                        "{name}"
                    );
                    let mut body = Vec::new();
                    let mut buf = [0u8; 64];
                    loop {
                        match conn.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => body.extend_from_slice(&buf[..n]),
                            Err(e) => note(&mut timeouts, e),
                        }
                        assert!(timeouts.len() < 20, "{name}: never completed");
                    }
                    assert_eq!(body, b"hello", "{name}: bytes lost across a timeout");
                    assert!(
                        !timeouts.is_empty(),
                        "{name}: the pause did not cause a timeout"
                    );
                    assert!(timeouts.iter().all(|o| *o == op), "{name}: {timeouts:?}");
                    if name.contains("trailers") {
                        let trailers = conn
                            .take_trailers()
                            .expect("trailers kept across a timeout");
                        assert_eq!(
                            trailers.get("x-t").map(HeaderValue::as_bytes),
                            Some(&b"1"[..])
                        );
                    }
                    // The connection is still in sync and reused.
                    conn.get("/next").expect("send /next");
                    expect_response(conn, "/next", 200, b"next");
                },
            );
            let t = server.finish();
            t.assert_ok();
            assert_eq!(t.connections, 1, "{name}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// B10, B11, B12, B13
// ---------------------------------------------------------------------------------------------

/// B10: "Treat 101 as final (return it and hand off the stream, or raise Unsupported). Cap
/// interim responses." 100 and 103 are skipped.
#[test]
fn b10_interim_responses_are_capped_and_101_is_refused() {
    const FINAL: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const CONTINUE: &str = "HTTP/1.1 100 Continue\r\n\r\n";
    const HINTS: &str = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";
    let cases: &[(&str, &[u8], Want)] = &[
        ("100", concat!("HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").as_bytes(), Want::Body(200, b"ok")),
        ("103 with fields", format!("{HINTS}{FINAL}").leak().as_bytes(), Want::Body(200, b"ok")),
        ("exactly the cap", format!("{CONTINUE}{HINTS}{FINAL}").leak().as_bytes(), Want::Body(200, b"ok")),
        (
            "one over the cap",
            format!("{CONTINUE}{HINTS}{HINTS}{FINAL}").leak().as_bytes(),
            Want::HeadError(ProtocolError::TooManyInterimResponses { limit: 2 }),
        ),
        (
            "101 with an upgraded stream behind it",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x05hello",
            Want::HeadError(ProtocolError::SwitchingProtocols),
        ),
        (
            "101 after a 100",
            format!("{CONTINUE}HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n{FINAL}").leak().as_bytes(),
            Want::HeadError(ProtocolError::SwitchingProtocols),
        ),
    ];
    run_table(&Config::default().max_interim_responses(2), cases);
}

/// B11: "Implement RFC 9112 §6.3 rule 8 and the HTTP/1.0 keep-alive rules."
#[test]
fn b11_close_delimited_bodies_and_http10_persistence() {
    // (name, reply, server closes after it, body, version, connection reused)
    type Case = (
        &'static str,
        &'static [u8],
        bool,
        &'static [u8],
        Version,
        bool,
    );
    let cases: &[Case] = &[
        (
            "1.1, no length: until close",
            b"HTTP/1.1 200 OK\r\n\r\nuntil close",
            true,
            b"until close",
            Version::HTTP_11,
            false,
        ),
        (
            "1.0, no length: until close",
            b"HTTP/1.0 200 OK\r\n\r\nold",
            true,
            b"old",
            Version::HTTP_10,
            false,
        ),
        (
            "1.0 with length, no keep-alive",
            b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold",
            false,
            b"old",
            Version::HTTP_10,
            false,
        ),
        (
            "1.0 with length and keep-alive",
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\nold",
            false,
            b"old",
            Version::HTTP_10,
            true,
        ),
        (
            "1.1 with length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnew",
            false,
            b"new",
            Version::HTTP_11,
            true,
        ),
    ];
    for path in SendPath::ALL {
        for &(name, reply, closes, body, version, reused) in cases {
            let mut steps = vec![Step::ExpectHead, Step::Reply(reply.to_vec())];
            match (reused, closes) {
                (true, _) => {}
                (false, true) => steps.extend([Step::Close, Step::Accept]),
                (false, false) => steps.extend([Step::Drain(ABANDON), Step::Accept]),
            }
            steps.extend([Step::ExpectHead, Step::Reply(ok("next"))]);
            let server = ScriptedServer::start(steps);
            let port = server.port();
            path.run(port, Config::default(), move |conn| {
                conn.get("/a").expect("send");
                let (response, got) = read_full(conn, name);
                assert_eq!(got, body, "{name}");
                assert_eq!(response.version, version, "{name}");
                let length = if closes {
                    None
                } else {
                    Some(body.len() as u64)
                };
                assert_eq!(response.length, length, "{name}");
                assert!(!conn.response_pending(), "{name}");

                conn.get("/next").expect("send /next");
                expect_response(conn, "/next", 200, b"next");
            });
            let t = server.finish();
            t.assert_ok();
            if reused {
                assert_eq!(t.connections, 1, "{name}");
                let both = cat(&[&get(port, "/a"), &get(port, "/next")]);
                assert_eq!(t.received_str(0), String::from_utf8_lossy(&both), "{name}");
            } else {
                assert_eq!(
                    t.connections, 2,
                    "{name}: the connection must not be reused"
                );
                assert_eq!(
                    t.received_str(0),
                    String::from_utf8_lossy(&get(port, "/a")),
                    "{name}"
                );
                assert_eq!(
                    t.received_str(1),
                    String::from_utf8_lossy(&get(port, "/next")),
                    "{name}"
                );
            }
        }
    }
}

/// `Connection` values that announce a close, however they are spelled in the list.
const CLOSE_TOKENS: &[&str] = &["foo, close", "close, foo", "Close", "keep-alive,CLOSE"];

/// The server of [`announced_close`]: a close-announcing response to the first of three
/// pipelined GETs, then the other two on a new connection.
fn announced_close_server(token: &str) -> ScriptedServer {
    let first = format!("HTTP/1.1 200 OK\r\nConnection: {token}\r\nContent-Length: 5\r\n\r\nfirst");
    ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::Reply(first.into_bytes()),
        // Keep the connection open: the client must close it by itself.
        Step::Drain(ABANDON),
        Step::Accept,
        Step::ExpectHead,
        Step::ExpectHead,
        Step::Reply(cat(&[&ok("two"), &ok("three")])),
    ])
}

/// Sends three pipelined GETs to [`announced_close_server`] and returns the error
/// `read_response` gives for the other two (after checking it).
fn announced_close(conn: &Client<'_>, token: &str) -> Error {
    for target in ["/1", "/2", "/3"] {
        conn.get(target).expect("pipelined send");
    }
    expect_response(conn, "/1", 200, b"first");
    assert!(
        conn.response_pending(),
        "{token}: the queued requests must still be reported"
    );
    let err = conn
        .read_response()
        .expect_err("the requests behind a close were never processed");
    let unanswered = [in_flight(Method::GET, "/2"), in_flight(Method::GET, "/3")];
    assert!(
        matches!(
            &err,
            Error::ConnectionClosed { phase: ClosePhase::Announced, unanswered: u } if u[..] == unanswered
        ),
        "{token}: {err:?}"
    );
    err
}

/// Checks the transcript of [`announced_close`] after `/2` and `/3` were resent.
fn check_resent(server: ScriptedServer, token: &str) {
    let port = server.port();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.connections, 2, "{token}");
    let first = cat(&[&get(port, "/1"), &get(port, "/2"), &get(port, "/3")]);
    assert_eq!(
        t.received_str(0),
        String::from_utf8_lossy(&first),
        "{token}"
    );
    let again = cat(&[&get(port, "/2"), &get(port, "/3")]);
    assert_eq!(
        t.received_str(1),
        String::from_utf8_lossy(&again),
        "{token}"
    );
}

/// B12: "Parse Connection as a token list. After a close response, mark the connection
/// closing; fail queued requests with a clear 'not processed, retry' error; reconnect on the
/// next send."
#[test]
fn b12_connection_close_is_a_token_and_fails_queued_requests() {
    for path in SendPath::ALL {
        for &token in CLOSE_TOKENS {
            let server = announced_close_server(token);
            path.run(server.port(), Config::default(), move |conn| {
                let err = announced_close(conn, token);
                for request in err.unanswered() {
                    get_after_report(conn, &request.target, &err);
                }
                expect_response(conn, "/2", 200, b"two");
                expect_response(conn, "/3", 200, b"three");
            });
            check_resent(server, token);
        }
    }
}

/// B12: "… fail queued requests with a clear 'not processed, retry' error; reconnect on the
/// next send." Once `read_response` has reported them, nothing is pending any more and the
/// very next send goes out on a new connection.
#[test]

fn b12_after_the_report_the_next_send_reconnects() {
    for path in SendPath::ALL {
        for &token in CLOSE_TOKENS {
            let server = announced_close_server(token);
            path.run(server.port(), Config::default(), move |conn| {
                let err = announced_close(conn, token);
                assert!(
                    !conn.response_pending(),
                    "{token}: the failed requests are still pending"
                );
                for request in err.unanswered() {
                    conn.get(&request.target)
                        .unwrap_or_else(|e| panic!("{token}: resending {request}: {e:?}"));
                }
                expect_response(conn, "/2", 200, b"two");
                expect_response(conn, "/3", 200, b"three");
            });
            check_resent(server, token);
        }
    }
}

/// B13: "Before reusing an idle connection, poll for readability. EOF or data → reconnect."
#[test]
fn b13_stale_idle_connections_are_not_reused() {
    const EVIL: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL";
    // (name, reply to GET /a, what the server does next with the idle connection)
    let cases: &[(&'static str, Vec<u8>, Vec<Step>)] = &[
        (
            "unsolicited bytes behind the response",
            cat(&[&ok("first"), EVIL]),
            vec![Step::Drain(ABANDON)],
        ),
        (
            "unsolicited bytes later",
            ok("first"),
            vec![
                Step::Sleep(Duration::from_millis(50)),
                Step::Reply(EVIL.to_vec()),
                Step::Drain(ABANDON),
            ],
        ),
        ("closed by the server", ok("first"), vec![Step::Close]),
        ("reset by the server", ok("first"), vec![Step::Reset]),
    ];
    for path in SendPath::ALL {
        for (name, reply, then) in cases {
            let name = *name;
            let mut steps = vec![Step::ExpectHead, Step::Reply(reply.clone())];
            steps.extend(then.iter().cloned());
            steps.extend([Step::Accept, Step::ExpectHead, Step::Reply(ok("next"))]);
            let server = ScriptedServer::start(steps);
            let port = server.port();
            path.run(port, Config::default(), move |conn| {
                conn.get("/a").expect("send");
                expect_response(conn, "/a", 200, b"first");
                // Let the server's bytes or close reach us: the connection is idle meanwhile.
                thread::sleep(Duration::from_millis(300));
                conn.get("/b")
                    .unwrap_or_else(|e| panic!("{name}: send on a stale connection: {e:?}"));
                expect_response(conn, "/b", 200, b"next");
            });
            let t = server.finish();
            t.assert_ok();
            assert_eq!(t.connections, 2, "{name}");
            assert_eq!(
                t.received_str(0),
                String::from_utf8_lossy(&get(port, "/a")),
                "{name}"
            );
            assert_eq!(
                t.received_str(1),
                String::from_utf8_lossy(&get(port, "/b")),
                "{name}"
            );
        }
    }
}

/// B13 for a green task that sleeps on its runtime rather than blocking its thread: the
/// runtime's edge-triggered poller reports the close or the bytes while nobody waits on the
/// idle connection (the edge is kept, unclaimed), and the connection is still found stale.
#[test]
fn b13_a_green_task_that_slept_does_not_reuse_a_stale_connection() {
    const EVIL: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL";
    let cases: &[(&'static str, Vec<Step>)] = &[
        ("closed by the server", vec![Step::Close]),
        ("reset by the server", vec![Step::Reset]),
        (
            "unsolicited bytes later",
            vec![
                Step::Sleep(Duration::from_millis(50)),
                Step::Reply(EVIL.to_vec()),
                Step::Drain(ABANDON),
            ],
        ),
    ];
    for (name, then) in cases {
        let name = *name;
        let mut steps = vec![Step::ExpectHead, Step::Reply(ok("first"))];
        steps.extend(then.iter().cloned());
        steps.extend([Step::Accept, Step::ExpectHead, Step::Reply(ok("next"))]);
        let server = ScriptedServer::start(steps);
        let port = server.port();
        let bodies = dugong::green::run(move |task| {
            let conn = task.connect("127.0.0.1", port).expect("connect");
            let mut bodies = Vec::new();
            for (i, target) in ["/a", "/b"].into_iter().enumerate() {
                if i == 1 {
                    // The runtime polls while the task sleeps.
                    task.sleep(Duration::from_millis(300));
                }
                conn.send_request(&Method::GET, target, &HeaderMap::new(), Body::Empty)
                    .unwrap_or_else(|e| panic!("{name}: send {target}: {e:?}"));
                conn.read_response()
                    .unwrap_or_else(|e| panic!("{name}: response to {target}: {e:?}"));
                bodies.push(conn.read_all().expect("body"));
            }
            bodies
        })
        .expect("no panic");
        assert_eq!(bodies, [b"first".to_vec(), b"next".to_vec()], "{name}");
        let t = server.finish();
        t.assert_ok();
        assert_eq!(t.connections, 2, "{name}");
    }
}

/// B13 for a green task that reuses its connection at once, without the probe (the runtime's
/// poller vouches for it): a close that arrived together with the response, and was reported
/// by the poll that the read took its wake-up from, still marks the connection stale. The
/// response and the close are both in before the task parks to read (it sleeps first).
#[test]
fn b13_a_close_reported_with_the_response_makes_a_green_connection_stale() {
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::Reply(ok("first")),
        Step::Close,
        Step::Accept,
        Step::ExpectHead,
        Step::Reply(ok("next")),
    ]);
    let port = server.port();
    let bodies = dugong::green::run(move |task| {
        let conn = task.connect("127.0.0.1", port).expect("connect");
        let mut bodies = Vec::new();
        for (i, target) in ["/a", "/b"].into_iter().enumerate() {
            conn.send_request(&Method::GET, target, &HeaderMap::new(), Body::Empty)
                .unwrap_or_else(|e| panic!("send {target}: {e:?}"));
            if i == 0 {
                // The answer and the close arrive while the runtime polls.
                task.sleep(Duration::from_millis(200));
            }
            conn.read_response()
                .unwrap_or_else(|e| panic!("response to {target}: {e:?}"));
            bodies.push(conn.read_all().expect("body"));
        }
        bodies
    })
    .expect("no panic");
    assert_eq!(bodies, [b"first".to_vec(), b"next".to_vec()]);
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.connections, 2, "the closed connection was reused");
}

// ---------------------------------------------------------------------------------------------
// B14
// ---------------------------------------------------------------------------------------------

/// B14: "Separate connect timeout, I/O inactivity timeout, and optionally a total deadline.
/// Zero is not infinity." A trickling server cannot extend a call's deadline.
#[test]
fn b14_zero_is_not_infinity_and_trickling_cannot_extend_a_deadline() {
    for path in SendPath::ALL {
        // Zero is "now": a response that has already arrived is read.
        let server = ScriptedServer::start(vec![Step::ExpectHead, Step::Reply(ok("now"))]);
        path.run(
            server.port(),
            Config::default().timeout(Some(Duration::ZERO)),
            move |conn| {
                conn.get("/a").expect("send");
                thread::sleep(Duration::from_millis(300));
                expect_response(conn, "/a", 200, b"now");
            },
        );
        server.finish().assert_ok();
    }
    // Not CoOps: co_* operations have no operation timeout by design.
    for path in [SendPath::Blocking, SendPath::Cofun, SendPath::Green] {
        // Zero against a silent server: an immediate timeout.
        let server = ScriptedServer::start(vec![Step::ExpectHead, Step::Drain(ABANDON)]);
        path.run(
            server.port(),
            Config::default().timeout(Some(Duration::ZERO)),
            move |conn| {
                assert_eq!(conn.config().timeout, Some(Duration::ZERO));
                conn.get("/a")
                    .expect("a head that fits the socket needs no wait");
                let start = Instant::now();
                let got = conn.read_response();
                assert!(
                    matches!(
                        got,
                        Err(Error::Timeout {
                            operation: Operation::ReadResponse,
                            after: Duration::ZERO
                        })
                    ),
                    "{got:?}"
                );
                assert!(
                    start.elapsed() < SLACK,
                    "zero timeout waited {:?}",
                    start.elapsed()
                );
            },
        );
        server.finish().assert_ok();

        // One byte every 100 ms, into the head and then into the body.
        let timeout = Duration::from_millis(500);
        let head = b"HTTP/1.1 200 OK\r\nX-Padding: ................................................\r\nContent-Length: 2\r\n\r\nok";
        let body_head = b"HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n";
        let trickle = |bytes: &[u8]| Step::Trickle {
            bytes: bytes.to_vec(),
            interval: Duration::from_millis(100),
        };
        let cases = [
            (
                "head",
                vec![Step::ExpectHead, trickle(head)],
                Operation::ReadResponse,
            ),
            (
                "body",
                vec![
                    Step::ExpectHead,
                    Step::Reply(body_head.to_vec()),
                    trickle(&[b'x'; 64]),
                ],
                Operation::ReadBody,
            ),
        ];
        for (name, steps, op) in cases {
            let server = ScriptedServer::start(steps);
            path.run(server.port(), Config::default().timeout(Some(timeout)), move |conn| {
            conn.get("/a").expect("send");
            let start = Instant::now();
            let got = match op {
                Operation::ReadResponse => conn.read_response().map(|_| Vec::new()),
                _ => conn.read_response().and_then(|_| conn.read_all()),
            };
            let elapsed = start.elapsed();
            assert!(
                matches!(&got, Err(Error::Timeout { operation, after }) if *operation == op && *after == timeout),
                "{name}: {got:?}"
            );
            assert!(
                elapsed < timeout + SLACK,
                "{name}: a trickle held the call for {elapsed:?}"
            );
            });
            drop(server);
        }
    }
}

/// B14: "Separate connect timeout … Zero is not infinity." A connection attempt that gets no
/// answer ends at the connect timeout, with its own `Operation`.
///
/// Linux only: an unanswered connect is made with a loopback listener whose accept queue is
/// full, which Linux answers by dropping SYNs (other systems may reset instead). The listener
/// is bound to 127.0.0.1:0 with `socket2` because the harness has no way to set a backlog.
#[cfg(target_os = "linux")]
#[test]
fn b14_connect_timeout_is_separate_and_zero_is_not_infinity() {
    let (_listener, _fillers, port) = wire::full_backlog_listener();
    for path in SendPath::ALL {
        for connect_timeout in [Duration::from_millis(300), Duration::ZERO] {
            // A long operation timeout: the connect timeout alone must end the attempt.
            let config = Config::default()
                .connect_timeout(Some(connect_timeout))
                .timeout(Some(Duration::from_secs(30)));
            path.run(port, config, move |conn| {
            let start = Instant::now();
            let got = conn.get("/a");
            let elapsed = start.elapsed();
            assert!(
                matches!(got, Err(Error::Timeout { operation: Operation::Connect, after }) if after == connect_timeout),
                "{connect_timeout:?}: {got:?}"
            );
            assert!(
                elapsed < connect_timeout + SLACK,
                "connect took {elapsed:?}"
            );
            assert!(!conn.response_pending());
            let start = Instant::now();
            let got = conn.connect();
            assert!(
                matches!(
                    got,
                    Err(Error::Timeout {
                        operation: Operation::Connect,
                        ..
                    })
                ),
                "connect(): {got:?}"
            );
            assert!(start.elapsed() < connect_timeout + SLACK);
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// B16, B17
// ---------------------------------------------------------------------------------------------

/// B16: "Apply the no-body rules first." A bad `Content-Length` on a HEAD, 204 or 304 response
/// is ignored and the connection is reused.
#[test]
fn b16_no_body_rules_come_before_content_length() {
    // (name, request method, reply)
    let cases: &[(&str, Method, &[u8], u16)] = &[
        (
            "HEAD, negative",
            Method::HEAD,
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            200,
        ),
        (
            "HEAD, differing list",
            Method::HEAD,
            b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n",
            200,
        ),
        (
            "HEAD, overflow",
            Method::HEAD,
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
            200,
        ),
        (
            "HEAD, CL with TE",
            Method::HEAD,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            200,
        ),
        (
            "204, letters",
            Method::GET,
            b"HTTP/1.1 204 No Content\r\nContent-Length: abc\r\n\r\n",
            204,
        ),
        (
            "304, negative",
            Method::GET,
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: -5\r\n\r\n",
            304,
        ),
        (
            "304, differing duplicates",
            Method::GET,
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            304,
        ),
    ];
    for path in SendPath::ALL {
        for (name, method, reply, status) in cases {
            check_reply(
                *path,
                name,
                &Config::default(),
                method,
                reply,
                Want::Body(*status, b""),
            );
        }
    }
}

/// The server of [`broken_body`]: a broken chunked body for `GET /a` (with `GET /b`
/// pipelined behind it when `queued`), then `/next` on a new connection.
fn broken_body_server(queued: bool) -> ScriptedServer {
    let mut steps = vec![Step::ExpectHead];
    if queued {
        steps.push(Step::ExpectHead);
    }
    steps.extend([
        Step::Reply(chunked!("3\r\nabc\r\nzz\r\n0\r\n\r\n").to_vec()),
        Step::Drain(ABANDON),
        Step::Accept,
        Step::ExpectHead,
        Step::Reply(ok("next")),
    ]);
    ScriptedServer::start(steps)
}

/// Plays [`broken_body_server`] and returns the report of the poisoned connection.
fn broken_body(conn: &Client<'_>, queued: bool) -> Error {
    conn.get("/a").expect("send /a");
    if queued {
        conn.get("/b").expect("send /b");
    }
    let response = conn.read_response().expect("the head is fine");
    assert_eq!(response.path, "/a");
    let mut buf = [0u8; 64];
    assert_eq!(conn.read(&mut buf).expect("the first chunk is fine"), 3);
    assert_eq!(&buf[..3], b"abc");
    let got = conn.read(&mut buf);
    assert!(
        matches!(got, Err(Error::Protocol(ProtocolError::InvalidChunkSize))),
        "{got:?}"
    );
    // Poisoned, with the cause, on every later read: no stuck state error, no hang.
    let queue = if queued {
        vec![in_flight(Method::GET, "/b")]
    } else {
        Vec::new()
    };
    let again = conn.read(&mut buf);
    assert!(
        matches!(
            &again,
            Err(Error::Poisoned { cause: PoisonCause::Protocol(ProtocolError::InvalidChunkSize), unanswered })
                if *unanswered == queue
        ),
        "read after the error: {again:?}"
    );
    // The queue was reported once, by the read above; later calls still say "poisoned".
    expect_poisoned(conn, ProtocolError::InvalidChunkSize, &[], "read_response")
}

/// Checks the transcript of [`broken_body`] after `target` was sent again.
fn check_reconnected(server: ScriptedServer, queued: bool, target: &str) {
    let port = server.port();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.connections, 2);
    let first = if queued {
        cat(&[&get(port, "/a"), &get(port, "/b")])
    } else {
        get(port, "/a")
    };
    assert_eq!(t.received_str(0), String::from_utf8_lossy(&first));
    assert_eq!(
        t.received_str(1),
        String::from_utf8_lossy(&get(port, target))
    );
}

/// B17: "Surface the error and auto-poison/close the connection (framing lost), so the next
/// send reconnects."
#[test]
fn b17_body_framing_error_poisons_and_next_send_reconnects() {
    for path in SendPath::ALL {
        let server = broken_body_server(false);
        path.run(server.port(), Config::default(), |conn| {
            broken_body(conn, false);
            assert!(!conn.response_pending());
            conn.get("/next").expect("the next send reconnects");
            expect_response(conn, "/next", 200, b"next");
        });
        check_reconnected(server, false, "/next");

        // With a request queued behind the broken body it is reported as unanswered and can
        // be resent (allowing the documented one-time re-report by send_request).
        let server = broken_body_server(true);
        path.run(server.port(), Config::default(), |conn| {
            let report = broken_body(conn, true);
            get_after_report(conn, "/b", &report);
            expect_response(conn, "/b", 200, b"next");
        });
        check_reconnected(server, true, "/b");
    }
}

/// B17: "… so the next send reconnects", also when the poisoned connection had requests
/// queued: once `read_response` has reported them, the next send goes out.
#[test]

fn b17_after_the_report_the_next_send_reconnects() {
    for path in SendPath::ALL {
        let server = broken_body_server(true);
        path.run(server.port(), Config::default(), |conn| {
            broken_body(conn, true);
            conn.get("/b").expect("the next send reconnects");
            expect_response(conn, "/b", 200, b"next");
        });
        check_reconnected(server, true, "/b");
    }
}

// ---------------------------------------------------------------------------------------------
// B18, B19, B20
// ---------------------------------------------------------------------------------------------

/// B18: "Close the connection after a non-100 final response unless the server clearly did
/// not expect the body." The body is never sent after a final response instead of 100.
///
/// (A server that never answers the expectation gets the body after
/// `Config::continue_timeout`, RFC 9110 §10.1.1's fallback: see
/// `a_server_that_ignores_expect_continue_gets_the_body_after_the_continue_timeout` in
/// `tests/driver.rs`.)
#[test]
fn b18_expect_continue_final_response_withholds_the_body_and_closes() {
    let expect = headers(&[("expect", "100-continue")]);
    for path in SendPath::ALL {
        for following in [false, true] {
            let server = ScriptedServer::start(vec![
                Step::ExpectHead,
                Step::reply_str("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 4\r\n\r\nnope"),
                Step::Drain(ABANDON),
                Step::Accept,
                Step::ExpectHead,
                Step::Reply(ok("next")),
            ]);
            let port = server.port();
            let expect = expect.clone();
            path.run(port, Config::default(), move |conn| {
                let body = if following {
                    Body::Following(5)
                } else {
                    Body::Bytes(b"hello")
                };
                conn.send(&Method::PUT, "/up", &expect, body).expect("send");
                assert!(!conn.is_writing_body(), "the body was refused");
                if following {
                    let got = conn.write(b"hello");
                    assert!(
                        matches!(got, Err(Error::State(StateError::BodyRefused))),
                        "{got:?}"
                    );
                }
                expect_response(conn, "/up", 417, b"nope");
                conn.get("/next").expect("send /next");
                expect_response(conn, "/next", 200, b"next");
            });

            let t = server.finish();
            t.assert_ok();
            let head = format!(
                "PUT /up HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n"
            );
            assert_eq!(t.received_str(0), head, "the body must never be sent");
            assert_eq!(t.connections, 2, "the connection must close after the 417");
            assert_eq!(
                t.received_str(1),
                String::from_utf8_lossy(&get(port, "/next"))
            );
        }

        // With a 100 the body goes out and the final response is read.
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::reply_str("HTTP/1.1 100 Continue\r\n\r\n"),
            Step::expect_str("hello"),
            Step::Reply(ok("stored")),
            Step::ExpectHead,
            Step::Reply(ok("next")),
        ]);
        let port = server.port();
        let expect = expect.clone();
        path.run(port, Config::default(), move |conn| {
            conn.send(&Method::PUT, "/up", &expect, Body::Bytes(b"hello"))
                .expect("send");
            expect_response(conn, "/up", 200, b"stored");
            conn.get("/next").expect("send /next");
            expect_response(conn, "/next", 200, b"next");
        });
        let t = server.finish();
        t.assert_ok();
        assert_eq!(t.connections, 1);
    }
}

/// B19: "Queue the request as soon as the header is sent. Let `read_response` wait rather than
/// error while a send is in progress. Monitor for early responses during upload."
#[test]
fn b19_early_response_during_upload_is_readable_and_matched() {
    for path in SendPath::ALL {
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::Reply(ok("first")),
            Step::ExpectHead,
            Step::reply_str(
                "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big!",
            ),
            Step::Drain(ABANDON),
        ]);
        let port = server.port();
        path.run(port, Config::default(), move |conn| {
            conn.get("/first").expect("send /first");
            conn.send(
                &Method::PUT,
                "/up",
                &HeaderMap::new(),
                Body::Following(64 << 20),
            )
            .expect("send the upload head");
            assert!(conn.is_writing_body());
            // The reader may run ahead of the sender.
            expect_response(conn, "/first", 200, b"first");
            assert!(
                conn.response_pending(),
                "the upload is queued once its head is out"
            );
            conn.write(&pattern(64 * 1024))
                .expect("write part of the body");
            let (response, body) = read_full(conn, "/up");
            assert_eq!(
                (
                    response.method,
                    response.path.as_str(),
                    response.status.as_u16()
                ),
                (Method::PUT, "/up", 413)
            );
            assert_eq!(body, b"too big!");
            assert!(!conn.response_pending());
        });

        let t = server.finish();
        t.assert_ok();
        let head = cat(&[
            &get(port, "/first"),
            format!(
                "PUT /up HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: 67108864\r\n\r\n"
            )
            .as_bytes(),
        ]);
        assert!(
            t.received[0].starts_with(&head),
            "{:?}",
            t.received_str(0).get(..200)
        );
        assert_eq!(t.connections, 1);
    }
}

/// B20: "Clear or fail all queued requests on disconnect, with a well-defined error."
#[test]
fn b20_disconnect_forgets_requests_in_flight() {
    for path in SendPath::ALL {
        let server = ScriptedServer::start(vec![
            Step::Drain(ABANDON),
            Step::Accept,
            Step::ExpectHead,
            Step::Reply(ok("c")),
        ]);
        let port = server.port();
        path.run(port, Config::default(), move |conn| {
            conn.get("/a").expect("send /a");
            conn.send(&Method::PUT, "/b", &HeaderMap::new(), Body::Following(10))
                .expect("send /b");
            conn.write(b"abc").expect("part of the body");
            assert!(conn.response_pending() && conn.is_writing_body());

            conn.disconnect();
            assert!(
                !conn.response_pending(),
                "response_pending() lies after disconnect"
            );
            assert!(!conn.is_writing_body());
            assert!(!conn.has_active_response());
            let got = conn.read_response();
            assert!(
                matches!(got, Err(Error::State(StateError::NoResponsePending))),
                "{got:?}"
            );
            let got = conn.write(b"defghij");
            assert!(
                matches!(got, Err(Error::State(StateError::NoBodyExpected))),
                "{got:?}"
            );
            let mut buf = [0u8; 8];
            assert_eq!(conn.read(&mut buf).expect("no body is active"), 0);

            conn.get("/c").expect("the next send reconnects");
            expect_response(conn, "/c", 200, b"c");
        });

        let t = server.finish();
        t.assert_ok();
        assert_eq!(t.connections, 2);
        let first = cat(&[
            &get(port, "/a"),
            format!("PUT /b HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: 10\r\n\r\nabc")
                .as_bytes(),
        ]);
        assert_eq!(t.received_str(0), String::from_utf8_lossy(&first));
        assert_eq!(t.received_str(1), String::from_utf8_lossy(&get(port, "/c")));
    }
}

// ---------------------------------------------------------------------------------------------
// B25 – B29
// ---------------------------------------------------------------------------------------------

/// B25: "Use an HTTP parser (httparse): reject obs-fold or replace it with SP, reject
/// whitespace before the colon, no MIME decoding."
#[test]
fn b25_headers_are_parsed_as_http_not_mime() {
    use ProtocolError::MalformedHead;
    let cases: &[(&str, &[u8], Want)] = &[
        (
            "obs-fold",
            b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\nok",
            Want::HeadError(MalformedHead("invalid header name")),
        ),
        (
            "whitespace before the colon",
            b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
            Want::HeadError(MalformedHead("invalid header name")),
        ),
        (
            "colon-less line (dugong ended the head there)",
            b"HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 2\r\n\r\nok",
            Want::HeadError(MalformedHead("invalid header name")),
        ),
        (
            "RFC 2047 word stays as sent",
            b"HTTP/1.1 200 OK\r\nX-Enc: =?utf-8?b?aGk=?=\r\nContent-Length: 2\r\n\r\nok",
            Want::Header("x-enc", b"=?utf-8?b?aGk=?=", b"ok"),
        ),
    ];
    run_table(&Config::default(), cases);
}

/// B26: "Implement chunked upload for `BodyFollowing(None)`; keep identity default."
#[test]
fn b26_chunked_uploads() {
    for path in SendPath::ALL {
        // Exact framing on the wire.
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::expect_str("3\r\nabc\r\n11\r\n0123456789abcdefg\r\n0\r\n\r\n"),
            Step::Reply(ok("stored")),
        ]);
        let port = server.port();
        path.run(port, Config::default(), move |conn| {
            conn.send(&Method::PUT, "/up", &HeaderMap::new(), Body::Chunked)
                .expect("send");
            conn.write(b"abc").expect("write");
            conn.write(b"0123456789abcdefg").expect("write");
            conn.finish_body().expect("finish_body");
            expect_response(conn, "/up", 200, b"stored");
        });
        let t = server.finish();
        t.assert_ok();
        assert_eq!(
            t.received_str(0),
            format!(
                "PUT /up HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ntransfer-encoding: chunked\r\n\r\n\
                 3\r\nabc\r\n11\r\n0123456789abcdefg\r\n0\r\n\r\n"
            )
        );

        // A real server gets the exact bytes back, for an echo and a sink.
        let server = LoopbackServer::start();
        path.run(server.port(), Config::default(), move |conn| {
            let big = pattern(100_000);
            let pieces: [&[u8]; 4] = [b"hello ", b"", b"chunked ", &big];
            let whole = pieces.concat();
            for (method, target) in [(Method::POST, "/echo"), (Method::PUT, "/sink")] {
                conn.send(&method, target, &HeaderMap::new(), Body::Chunked)
                    .expect("send");
                for piece in pieces {
                    conn.write(piece).expect("write");
                }
                conn.finish_body().expect("finish_body");
            }
            expect_response(conn, "/echo", 200, &whole);
            let (sink, body) = read_full(conn, "/sink");
            assert_eq!((sink.status.as_u16(), body.len()), (204, 0));
            let sum = whole
                .iter()
                .fold(0u64, |s, &b| s.wrapping_add(u64::from(b)));
            assert_eq!(
                sink.headers["x-received-bytes"],
                whole.len().to_string().as_str()
            );
            assert_eq!(sink.headers["x-body-sum"], sum.to_string().as_str());
            assert_eq!(server.connections_accepted(), 1);
            assert!(server.errors().is_empty(), "{:?}", server.errors());
        });
    }
}

/// B27: "Status = exactly 3 digits. Version must be `HTTP/1.<DIGIT>` (case-sensitive) …;
/// reject anything else. Optionally tolerate one leading CRLF."
#[test]
fn b27_status_line_is_strict() {
    use ProtocolError::MalformedHead;
    let version = Want::HeadError(MalformedHead("invalid HTTP version"));
    let status = Want::HeadError(MalformedHead("invalid status code"));
    let cases: &[(&str, &[u8], Want)] = &[
        (
            "signed status",
            b"HTTP/1.1 +200 OK\r\nContent-Length: 2\r\n\r\nok",
            status,
        ),
        (
            "two digits",
            b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok",
            status,
        ),
        (
            "four digits",
            b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
            status,
        ),
        (
            "letter in status",
            b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok",
            status,
        ),
        (
            "HTTP/1x",
            b"HTTP/1x 200 OK\r\nContent-Length: 2\r\n\r\nok",
            version,
        ),
        (
            "lower-case name",
            b"http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            version,
        ),
        (
            "major version 2",
            b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
            version,
        ),
        (
            "two-digit minor",
            b"HTTP/1.10 200 OK\r\nContent-Length: 2\r\n\r\nok",
            version,
        ),
        (
            "leading CRLF",
            b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            Want::Body(200, b"ok"),
        ),
    ];
    run_table(&Config::default(), cases);
}

/// B27: "… treat a minor > 1 as 1.1 (RFC 9110 §2.5)".
#[test]

fn b27_higher_minor_version_is_read_as_http11() {
    for path in SendPath::ALL {
        for line in ["HTTP/1.2 200 OK", "HTTP/1.9 200 OK"] {
            let reply = format!("{line}\r\nContent-Length: 2\r\n\r\nok");
            let server =
                ScriptedServer::start(vec![Step::ExpectHead, Step::Reply(reply.into_bytes())]);
            path.run(server.port(), Config::default(), move |conn| {
                conn.get("/a").expect("send");
                let (response, body) = read_full(conn, line);
                assert_eq!(
                    (response.version, body.as_slice()),
                    (Version::HTTP_11, &b"ok"[..])
                );
            });
            server.finish().assert_ok();
        }
    }
}

/// B28: "Either accept LF (RFC 9112 §2.2 MAY) or fail fast with InvalidResponse." We accept.
#[test]
fn b28_bare_lf_responses_parse() {
    let cases: &[(&str, &[u8], Want)] = &[
        (
            "head and length",
            b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
            Want::Body(200, b"ok"),
        ),
        (
            "mixed line ends",
            b"HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\nok",
            Want::Body(200, b"ok"),
        ),
        (
            "chunked",
            b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n",
            Want::Body(200, b"ok"),
        ),
        (
            "chunked with trailers",
            b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\nX-T: 1\n\n",
            Want::Body(200, b"ok"),
        ),
        (
            "interim then final",
            b"HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\nContent-Length: 2\n\nok",
            Want::Body(200, b"ok"),
        ),
        (
            "no body",
            b"HTTP/1.1 204 No Content\n\n",
            Want::Body(204, b""),
        ),
    ];
    run_table(&Config::default(), cases);
}

/// B29: "Complete an identity response as soon as its last byte is delivered. For chunked,
/// complete once the last chunk and trailer are parsed; consume them eagerly if they are
/// already buffered, otherwise let `read_response` finish them."
#[test]
fn b29_responses_complete_on_their_last_byte() {
    const BIG: usize = 40_000;
    for path in SendPath::ALL {
        let big = cat(&[
            format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n").as_bytes(),
            &pattern(BIG),
        ]);
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::ExpectHead,
            Step::Reply(cat(&[
                &ok("hello"),
                chunked!("5\r\nworld\r\n0\r\nX-T: 1\r\n\r\n"),
            ])),
            Step::ExpectHead,
            Step::ExpectHead,
            Step::Reply(chunked!("5\r\nabcde\r\n").to_vec()),
            Step::Sleep(Duration::from_millis(300)),
            Step::Reply(cat(&[b"0\r\n\r\n", &ok("last")])),
            Step::ExpectHead,
            Step::Reply(big),
        ]);
        let port = server.port();
        path.run(port, Config::default(), move |conn| {
            let mut five = [0u8; 5];

            conn.get("/a").expect("send /a");
            conn.get("/b").expect("send /b");
            let a = conn.read_response().expect("/a");
            assert_eq!((a.path.as_str(), a.length), ("/a", Some(5)));
            assert_eq!(conn.read(&mut five).expect("read /a"), 5);
            assert_eq!(&five, b"hello");
            assert!(
                !conn.has_active_response(),
                "identity body complete on its last byte"
            );
            // No empty read in between.
            let b = conn.read_response().expect("/b right after /a's last byte");
            assert_eq!((b.path.as_str(), b.length), ("/b", None));
            assert_eq!(conn.read(&mut five).expect("read /b"), 5);
            assert_eq!(&five, b"world");
            assert!(
                !conn.has_active_response(),
                "buffered last-chunk and trailers taken eagerly"
            );
            let trailers = conn.take_trailers().expect("trailers");
            assert_eq!(
                trailers.get("x-t").map(HeaderValue::as_bytes),
                Some(&b"1"[..])
            );
            assert_eq!(conn.read(&mut five).expect("nothing active"), 0);

            // The last-chunk arrives later: read_response finishes it.
            conn.get("/c").expect("send /c");
            conn.get("/d").expect("send /d");
            let c = conn.read_response().expect("/c");
            assert_eq!(c.path, "/c");
            assert_eq!(conn.read(&mut five).expect("read /c"), 5);
            assert_eq!(&five, b"abcde");
            expect_response(conn, "/d", 200, b"last");

            // A large identity body read in large pieces ends with its last byte too.
            conn.get("/e").expect("send /e");
            let e = conn.read_response().expect("/e");
            assert_eq!(e.length, Some(BIG as u64));
            let mut got = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            while got.len() < BIG {
                let n = conn.read(&mut buf).expect("read /e");
                assert!(n > 0, "body ended early at {}", got.len());
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got == pattern(BIG), "body of /e differs");
            assert!(
                !conn.has_active_response(),
                "large identity body complete on its last byte"
            );
            assert!(!conn.response_pending());
        });

        let t = server.finish();
        t.assert_ok();
        assert_eq!(
            t.connections, 1,
            "every response was complete, so the connection was reused"
        );
        let all = cat(&[
            &get(port, "/a"),
            &get(port, "/b"),
            &get(port, "/c"),
            &get(port, "/d"),
            &get(port, "/e"),
        ]);
        assert_eq!(t.received_str(0), String::from_utf8_lossy(&all));
    }
}
