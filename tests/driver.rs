//! Driver behaviour against the loopback server, through every send path.

mod support;

use std::io::Read;
use std::time::{Duration, Instant};

use dugong::{Body, Config, Error, StateError};
use http::{HeaderMap, Method, StatusCode};
use support::{headers, pattern, LoopbackServer, ScriptedServer, SendPath, Step};

#[test]
fn pipelined_batch_of_1000_gets_is_answered_in_order() {
    let server = LoopbackServer::start();
    for &path in SendPath::ALL {
        path.run(server.port(), Config::default(), move |conn| {
            for i in 0..1000 {
                conn.get(&format!("/bytes/{}", i % 50)).expect("send");
            }
            for i in 0..1000 {
                let resp = conn.read_response().expect("response");
                assert_eq!(resp.path, format!("/bytes/{}", i % 50));
                assert_eq!(resp.length, Some((i % 50) as u64));
                assert_eq!(conn.read_all().expect("body"), pattern(i % 50));
            }
            assert!(!conn.response_pending());
        });
    }
    assert_eq!(server.connections_accepted(), SendPath::ALL.len() as u64);
}

#[test]
fn sliding_window_reads_interleave_with_sends() {
    let server = LoopbackServer::start();
    for &path in SendPath::ALL {
        path.run(server.port(), Config::default(), move |conn| {
            let (mut sent, mut read) = (0, 0);
            while read < 300 {
                while sent < 300 && sent - read < 16 {
                    conn.get(&format!("/doc/{sent}")).expect("send");
                    sent += 1;
                }
                let resp = conn.read_response().expect("response");
                assert_eq!(resp.path, format!("/doc/{read}"));
                assert_eq!(
                    conn.read_all().expect("body"),
                    format!("document /doc/{read}\n").into_bytes()
                );
                read += 1;
            }
        });
    }
}

#[test]
fn bodies_are_read_with_read_read_all_discard_and_io_read() {
    let server = LoopbackServer::start();
    for &path in SendPath::ALL {
        path.run(server.port(), Config::default(), move |conn| {
            for target in [
                "/bytes/100000",
                "/chunked/100000/777",
                "/chunked/5000",
                "/bytes/70000",
            ] {
                conn.get(target).expect("send");
            }
            let head = conn.read_response().expect("head");
            assert_eq!(head.length, Some(100_000));
            let mut buf = [0u8; 1000];
            let mut body = Vec::new();
            loop {
                let n = conn.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..n]);
            }
            assert_eq!(body, pattern(100_000));

            let head = conn.read_response().expect("head");
            assert_eq!(head.length, None);
            assert_eq!(conn.read_all().expect("chunked"), pattern(100_000));
            conn.read_response().expect("head");
            assert_eq!(conn.discard().expect("discard"), 5000);
            conn.read_response().expect("head");
            let mut via_io = Vec::new();
            let mut reader = conn;
            reader.read_to_end(&mut via_io).expect("io::Read");
            assert_eq!(via_io, pattern(70_000));
            assert!(!conn.has_active_response());
        });
    }
}

#[test]
fn large_reads_go_straight_into_the_callers_buffer() {
    let server = LoopbackServer::start();
    for &path in SendPath::ALL {
        path.run(server.port(), Config::default(), move |conn| {
            conn.get("/bytes/10000000").expect("send");
            conn.get("/bytes/3").expect("send");
            conn.read_response().expect("head");
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0usize;
            let want = pattern(10_000_000);
            loop {
                let n = conn.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                assert_eq!(&buf[..n], &want[total..total + n]);
                total += n;
            }
            assert_eq!(total, 10_000_000);
            // The direct path must not have eaten the next response.
            assert_eq!(conn.read_response().expect("next").path, "/bytes/3");
            assert_eq!(conn.read_all().expect("body"), b"abc");
        });
    }
}

#[test]
fn uploads_with_following_and_chunked_bodies() {
    let server = LoopbackServer::start();
    let data = pattern(300_000);
    for &path in SendPath::ALL {
        let data = data.clone();
        path.run(server.port(), Config::default(), move |conn| {
            conn.send(
                &Method::PUT,
                "/echo",
                &HeaderMap::new(),
                Body::Following(data.len() as u64),
            )
            .expect("send");
            assert!(conn.is_writing_body());
            for piece in data.chunks(65_536) {
                conn.write(piece).expect("write");
            }
            assert!(!conn.is_writing_body());
            conn.send(&Method::POST, "/echo", &HeaderMap::new(), Body::Chunked)
                .expect("send");
            for piece in data.chunks(10_000) {
                conn.write(piece).expect("write");
            }
            conn.finish_body().expect("finish");
            conn.send(&Method::PUT, "/sink", &HeaderMap::new(), Body::Bytes(&data))
                .expect("send");

            for _ in 0..2 {
                let resp = conn.read_response().expect("echo");
                assert_eq!(resp.status, StatusCode::OK);
                assert_eq!(conn.read_all().expect("body"), data);
            }
            let resp = conn.read_response().expect("sink");
            assert_eq!(resp.status, StatusCode::NO_CONTENT);
            assert_eq!(resp.headers["x-received-bytes"], "300000");
        });
    }
}

#[test]
fn body_misuse_is_a_typed_error() {
    let server = LoopbackServer::start();
    for &path in SendPath::ALL {
        path.run(server.port(), Config::default(), move |conn| {
            let state = |r: Result<(), Error>| match r {
                Err(Error::State(s)) => s,
                other => panic!("expected a state error, got {other:?}"),
            };
            assert_eq!(state(conn.write(b"x")), StateError::NoBodyExpected);
            conn.send(&Method::PUT, "/sink", &HeaderMap::new(), Body::Following(3))
                .expect("send");
            assert_eq!(state(conn.write(b"abcd")), StateError::BodyTooLong);
            assert_eq!(state(conn.get("/x")), StateError::BodyIncomplete);
            assert_eq!(state(conn.finish_body()), StateError::BodyTooShort);
            conn.write(b"abc").expect("write");
            assert!(matches!(conn.read_response(), Ok(r) if r.status == StatusCode::NO_CONTENT));
            assert!(matches!(
                conn.read_response(),
                Err(Error::State(StateError::NoResponsePending))
            ));
            conn.get("/bytes/10").expect("send");
            conn.read_response().expect("head");
            conn.get("/bytes/1").expect("send");
            assert!(matches!(
                conn.read_response(),
                Err(Error::State(StateError::BodyUnread))
            ));
            assert_eq!(conn.read_all().expect("body"), pattern(10));
            // With no body active, reading gives nothing rather than the next response.
            assert!(conn.read_all().expect("no body").is_empty());
            conn.read_response().expect("head");
            assert_eq!(conn.read_all().expect("body"), b"a");
        });
    }
}

#[test]
fn expect_continue_waits_for_100_then_sends_the_body() {
    let server = LoopbackServer::start();
    let data = pattern(50_000);
    for &path in SendPath::ALL {
        let data = data.clone();
        path.run(server.port(), Config::default(), move |conn| {
            let h = headers(&[("expect", "100-continue")]);
            conn.send(&Method::PUT, "/echo", &h, Body::Bytes(&data))
                .expect("send");
            let resp = conn.read_response().expect("final");
            assert_eq!(resp.status, StatusCode::OK);
            assert_eq!(conn.read_all().expect("echo"), data);

            conn.send(
                &Method::PUT,
                "/echo",
                &h,
                Body::Following(data.len() as u64),
            )
            .expect("send");
            assert!(conn.is_writing_body());
            conn.write(&data).expect("write");
            assert_eq!(conn.read_response().expect("final").status, StatusCode::OK);
            assert_eq!(conn.read_all().expect("echo"), data);

            conn.get("/bytes/1").expect("send");
            assert!(matches!(
                conn.send(&Method::PUT, "/echo", &h, Body::Bytes(b"x")),
                Err(Error::State(StateError::ContinueWhilePipelining))
            ));
            conn.read_response().expect("head");
            conn.discard().expect("body");
        });
    }
}

/// A server that writes each whole 1 MiB response before it reads the next request, while
/// the client pipelines 256 KiB uploads: the sender must keep draining responses.
#[test]
fn blocking_pipelining_does_not_deadlock_against_a_server_that_stops_reading() {
    const N: usize = 40;
    let upload = vec![b'u'; 256 * 1024];
    let mut reply = b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n".to_vec();
    reply.extend(std::iter::repeat_n(b'r', 1 << 20));
    for &path in SendPath::ALL_AND_DECLINING {
        let mut steps = Vec::new();
        for _ in 0..N {
            steps.push(Step::ExpectHead);
            steps.push(Step::Discard(upload.len() as u64));
            steps.push(Step::Reply(reply.clone()));
        }
        let server = ScriptedServer::start(steps);
        let upload = upload.clone();
        path.run(
            server.port(),
            Config::default().max_buffered(64 << 20),
            move |conn| {
                for i in 0..N {
                    conn.send(
                        &Method::PUT,
                        &format!("/{i}"),
                        &HeaderMap::new(),
                        Body::Bytes(&upload),
                    )
                    .expect("send");
                }
                for i in 0..N {
                    let resp = conn.read_response().expect("response");
                    assert_eq!(resp.path, format!("/{i}"));
                    assert_eq!(conn.discard().expect("body"), 1 << 20);
                }
                server.finish().assert_ok();
            },
        );
    }
}

#[test]
fn the_buffer_bound_while_sending_is_an_error_not_a_deadlock() {
    // Larger than loopback's send and receive buffers together can grow to (4 + 6 MiB by
    // default), so the second upload must block: 8 MiB sometimes fit and the send succeeded.
    let upload = vec![b'u'; 32 << 20];
    let mut reply = b"HTTP/1.1 200 OK\r\nContent-Length: 4194304\r\n\r\n".to_vec();
    reply.extend(std::iter::repeat_n(b'r', 4 << 20));
    // Only paths that leave responses unread while sending: Cofun and CoOps read the 4 MiB
    // as it arrives, so nothing is buffered (`blocking_pipelining_...` covers them).
    for path in [
        SendPath::Blocking,
        SendPath::CofunDeclining,
        SendPath::Green,
    ] {
        // Answers the first request with 4 MiB, then stops reading.
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::Discard(upload.len() as u64),
            Step::Reply(reply.clone()),
            Step::Stall(Duration::from_secs(5)),
        ]);
        let upload = upload.clone();
        path.run(
            server.port(),
            Config::default().max_buffered(1 << 20),
            move |conn| {
                conn.send(&Method::PUT, "/a", &HeaderMap::new(), Body::Bytes(&upload))
                    .expect("first");
                let got = conn.send(&Method::PUT, "/b", &HeaderMap::new(), Body::Bytes(&upload));
                assert!(
                    matches!(got, Err(Error::BufferFull { limit }) if limit == 1 << 20),
                    "{got:?}"
                );
                conn.disconnect();
            },
        );
        drop(server);
    }
}

/// `max_buffered` bounds what a waiting send holds, not reads: with it at 0, a chunked body
/// whose last chunk comes later is still read to its end, by `read_response` taking the
/// last chunk of a body read up to its data, and by `read_all`.
#[test]
fn max_buffered_does_not_bound_reads() {
    let chunked = |last_chunk_later: &str| {
        [
            Step::ExpectHead,
            Step::reply_str("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
            Step::Sleep(Duration::from_millis(50)),
            Step::reply_str(last_chunk_later),
        ]
    };
    for &path in SendPath::ALL {
        let mut steps = Vec::new();
        steps.extend(chunked("0\r\n\r\n"));
        steps.extend(chunked("5\r\nworld\r\n0\r\n\r\n"));
        let server = ScriptedServer::start(steps);
        path.run(server.port(), Config::default().max_buffered(0), |conn| {
            let h = HeaderMap::new();
            conn.send(&Method::GET, "/a", &h, Body::Empty).expect("a");
            conn.read_response().expect("head a");
            let mut buf = [0u8; 5];
            let mut got = 0;
            while got < buf.len() {
                let n = conn.read(&mut buf[got..]).expect("body a");
                assert!(n > 0, "body a ended early");
                got += n;
            }
            assert_eq!(&buf, b"hello");
            conn.send(&Method::GET, "/b", &h, Body::Empty).expect("b");
            let head = conn.read_response().expect("head b, after a's last chunk");
            assert_eq!(head.status, StatusCode::OK);
            assert_eq!(conn.read_all().expect("body b"), b"helloworld");
        });
        server.finish().assert_ok();
    }
}

/// Sends `PUT /up` with a 256 MiB body to a server that has stopped reading, writing 1 MiB
/// at a time until a write times out (which it must, long before the end).
fn upload_until_the_write_times_out(conn: &support::Client<'_>) {
    let total: u64 = 256 << 20;
    conn.send(
        &Method::PUT,
        "/up",
        &HeaderMap::new(),
        Body::Following(total),
    )
    .expect("head");
    let piece = vec![b'u'; 1 << 20];
    let mut sent = 0u64;
    let stopped = loop {
        assert!(sent < total, "the server took the whole upload");
        match conn.write(&piece) {
            Ok(()) => sent += piece.len() as u64,
            Err(e) => break e,
        }
    };
    assert!(matches!(stopped, Error::Timeout { .. }), "{stopped:?}");
}

/// A server that answers an upload early (403) and then stops reading: the write times out,
/// but the answer that arrived is not lost with the connection. It is read as usual, and the
/// next request goes out on a new connection.
#[test]
fn an_answer_that_arrived_before_a_write_timed_out_is_read() {
    for path in [SendPath::Blocking, SendPath::Green] {
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::reply_str("HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope"),
            Step::Stall(Duration::from_secs(2)),
            Step::Accept,
            Step::ExpectHead,
            Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ]);
        let config = Config::default().timeout(Some(Duration::from_millis(500)));
        path.run(server.port(), config, |conn| {
            let h = HeaderMap::new();
            upload_until_the_write_times_out(conn);
            let head = conn.read_response().expect("the early answer");
            assert_eq!(head.status, StatusCode::FORBIDDEN);
            assert_eq!(conn.read_all().expect("its body"), b"nope");
            assert!(!conn.response_pending());
            conn.send(&Method::GET, "/next", &h, Body::Empty)
                .expect("a new connection");
            // The script answers it once its stall on the first connection is over: until
            // then a read times out, losing nothing.
            let next = (0..10)
                .find_map(|_| match conn.read_response() {
                    Err(Error::Timeout { .. }) => None,
                    other => Some(other),
                })
                .expect("answered within 5 s")
                .expect("next");
            assert_eq!(next.status, StatusCode::OK);
            assert_eq!(conn.read_all().expect("next body"), b"ok");
        });
        server.finish().assert_ok();
    }
}

/// As above, but the answer that arrived is for the request before the upload: it is read,
/// and the upload's request, cut short on a server that no longer reads, is reported
/// unanswered at once instead of being waited for.
#[test]
fn after_a_write_timed_out_only_what_arrived_is_read() {
    for path in [SendPath::Blocking, SendPath::Green] {
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::ExpectHead,
            Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            Step::Stall(Duration::from_secs(2)),
        ]);
        let config = Config::default().timeout(Some(Duration::from_millis(500)));
        path.run(server.port(), config, |conn| {
            let h = HeaderMap::new();
            conn.send(&Method::GET, "/a", &h, Body::Empty).expect("a");
            upload_until_the_write_times_out(conn);
            assert_eq!(conn.read_response().expect("a").status, StatusCode::OK);
            assert_eq!(conn.read_all().expect("a's body"), b"ok");
            match conn.read_response() {
                Err(Error::Poisoned { unanswered, .. }) => {
                    assert_eq!(unanswered.len(), 1, "{unanswered:?}");
                    assert_eq!(unanswered[0].target, "/up");
                }
                other => panic!("expected the upload reported unanswered, got {other:?}"),
            }
            assert!(!conn.response_pending());
        });
        server.finish().assert_ok();
    }
}

#[test]
fn a_server_that_never_answers_times_out_within_the_deadline() {
    // Not CoOps: co_* operations have no operation timeout by design.
    for path in [SendPath::Blocking, SendPath::Cofun, SendPath::Green] {
        let server =
            ScriptedServer::start(vec![Step::ExpectHead, Step::Sleep(Duration::from_secs(3))]);
        path.run(
            server.port(),
            Config::default().timeout(Some(Duration::from_millis(300))),
            move |conn| {
                conn.get("/slow").expect("send");
                let start = Instant::now();
                let got = conn.read_response();
                assert!(matches!(got, Err(Error::Timeout { .. })), "{got:?}");
                assert!(start.elapsed() < Duration::from_millis(300 + 1500));
                // A read timeout loses nothing: the request is still pending.
                assert!(conn.response_pending());
            },
        );
    }
}

#[test]
fn connection_refused_is_a_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    for &path in SendPath::ALL {
        path.run(port, Config::default(), move |conn| {
            let got = conn.get("/");
            assert!(
                matches!(&got, Err(Error::Connect { port: p, .. }) if *p == port),
                "{got:?}"
            );
            assert!(!conn.response_pending());
        });
    }
}

#[test]
fn every_resolved_address_is_tried() {
    // "localhost" may resolve to ::1 first, where nothing listens: the IPv4 address must
    // still be tried.
    let server = LoopbackServer::start();
    let conn = dugong::HttpConnection::new("localhost", server.port()).expect("conn");
    conn.send_request(&Method::GET, "/bytes/2", &HeaderMap::new(), Body::Empty)
        .expect("send");
    conn.read_response().expect("head");
    assert_eq!(conn.read_all().expect("body"), b"ab");
}

#[test]
fn expect_continue_with_an_empty_body_does_not_wait() {
    let server = LoopbackServer::start();
    for &path in SendPath::ALL {
        path.run(server.port(), Config::default(), move |conn| {
            let h = headers(&[("expect", "100-continue")]);
            for body in [Body::Following(0), Body::Bytes(b"")] {
                conn.send(&Method::PUT, "/sink", &h, body).expect("send");
                let resp = conn.read_response().expect("final");
                assert_eq!(resp.headers["x-received-bytes"], "0");
            }
        });
    }
    // No refusal, so no reconnects: one connection per path.
    assert_eq!(server.connections_accepted(), SendPath::ALL.len() as u64);
}

#[test]
fn a_server_that_ignores_expect_continue_gets_the_body_after_the_continue_timeout() {
    let reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    for &path in SendPath::ALL {
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::Discard(5),
            Step::reply_str(reply),
        ]);
        let config = Config::default().continue_timeout(Some(Duration::from_millis(200)));
        path.run(server.port(), config, move |conn| {
            let h = headers(&[("expect", "100-continue")]);
            let start = Instant::now();
            conn.send(&Method::PUT, "/x", &h, Body::Bytes(b"hello"))
                .expect("send");
            assert!(start.elapsed() >= Duration::from_millis(200));
            assert_eq!(conn.read_response().expect("final").status, StatusCode::OK);
            assert_eq!(conn.read_all().expect("body"), b"ok");
        });
        let transcript = server.finish();
        transcript.assert_ok();
        assert!(transcript.received_str(0).ends_with("\r\n\r\nhello"));
    }
    // Without a continue timeout, the operation timeout applies and is an error. Not CoOps:
    // co_* operations have no operation timeout by design.
    for path in [SendPath::Blocking, SendPath::Cofun, SendPath::Green] {
        let server =
            ScriptedServer::start(vec![Step::ExpectHead, Step::Sleep(Duration::from_secs(2))]);
        let config = Config::default()
            .continue_timeout(None)
            .timeout(Some(Duration::from_millis(200)));
        path.run(server.port(), config, move |conn| {
            let h = headers(&[("expect", "100-continue")]);
            let got = conn.send(&Method::PUT, "/x", &h, Body::Bytes(b"hello"));
            assert!(
                matches!(
                    got,
                    Err(Error::Timeout {
                        operation: dugong::Operation::AwaitContinue,
                        ..
                    })
                ),
                "{got:?}"
            );
        });
        drop(server);
    }
}

#[test]
fn connect_errors_name_the_host_as_given() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let conn = dugong::HttpConnection::new("::1", port).expect("conn");
    match conn.connect() {
        Err(e @ Error::Connect { .. }) => assert!(
            e.to_string()
                .starts_with(&format!("cannot connect to [::1]:{port}")),
            "{e}"
        ),
        other => panic!("expected a connect error, got {other:?}"),
    }
}

/// Pitfall B9: `read_all` must not silently lose the bytes it took before a timeout.
#[test]
fn read_all_timeout_after_partial_body_poisons_instead_of_losing_bytes() {
    // Not CoOps: co_* operations have no operation timeout by design.
    for path in [SendPath::Blocking, SendPath::Cofun, SendPath::Green] {
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
            Step::Sleep(Duration::from_millis(800)),
            Step::reply_str("defghij"),
        ]);
        path.run(
            server.port(),
            Config::default().timeout(Some(Duration::from_millis(300))),
            move |conn| {
                conn.get("/a").expect("send");
                conn.get("/b").expect("send");
                conn.read_response().expect("head");
                let got = conn.read_all();
                assert!(matches!(got, Err(Error::Timeout { .. })), "{got:?}");
                // The three bytes cannot be handed back, so the connection says it is unusable
                // (once listing the request behind) instead of continuing with the body's tail.
                match conn.read_response() {
                    Err(Error::Poisoned {
                        cause: dugong::PoisonCause::Timeout(_),
                        unanswered,
                    }) => {
                        assert_eq!(unanswered.len(), 1);
                        assert_eq!(unanswered[0].target, "/b");
                    }
                    other => panic!("expected Poisoned, got {other:?}"),
                }
                drop(server);
            },
        );
    }
}
