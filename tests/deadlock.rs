//! Pipelining cannot deadlock: a server that writes each whole response before it reads the
//! next request, while the client pipelines large uploads. Every test is bounded by the
//! connection's operation timeout and the scripted server's own limits, so a regression fails
//! instead of hanging.

mod support;

use std::sync::Arc;
use std::time::Duration;

use dugong::{Body, Config, Error, HttpConnection, PoisonCause};
use http::{HeaderMap, Method, StatusCode};
use support::{connection_with, ScriptedServer, SendPath, Step};

const REQUESTS: usize = 200;
const UPLOAD: usize = 256 * 1024;
const RESPONSE_BODY: usize = 1 << 20;

/// The server: per request, read the head and the whole upload, then write the whole 1 MiB
/// response before reading anything else.
fn answer_after_reading_each() -> ScriptedServer {
    let mut reply =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {RESPONSE_BODY}\r\n\r\n").into_bytes();
    reply.extend(std::iter::repeat_n(b'r', RESPONSE_BODY));
    let reply: Arc<[u8]> = reply.into();
    let mut steps = Vec::new();
    for _ in 0..REQUESTS {
        steps.push(Step::ExpectHead);
        steps.push(Step::Discard(UPLOAD as u64));
        steps.push(Step::ReplyShared(Arc::clone(&reply)));
    }
    ScriptedServer::start(steps)
}

/// Reads a little of whatever response data is there, as the seed's loop body does; counts
/// heads and body bytes, checking that responses come back in request order.
struct Reader {
    heads: usize,
    body_bytes: usize,
}

impl Reader {
    fn read_some(&mut self, conn: &HttpConnection) -> Result<(), Error> {
        if conn.has_active_response() {
            let mut buf = [0u8; 65536];
            self.body_bytes += conn.read(&mut buf)?;
        } else {
            let resp = conn.read_response()?;
            assert_eq!(resp.status, StatusCode::OK);
            assert_eq!(resp.path, format!("/{}", self.heads));
            self.heads += 1;
        }
        Ok(())
    }
}

#[test]
fn cofunctions_pipeline_200_large_uploads_against_a_server_that_answers_first() {
    let server = answer_after_reading_each();
    let conn = connection_with(server.port(), Config::default());
    let upload = vec![b'u'; UPLOAD];
    let mut reader = Reader {
        heads: 0,
        body_bytes: 0,
    };
    let mut suspensions = 0;
    for i in 0..REQUESTS {
        let target = format!("/{i}");
        for step in conn
            .send_request_cofun(
                &Method::PUT,
                &target,
                &HeaderMap::new(),
                Body::Bytes(&upload),
            )
            .expect("start")
        {
            step.expect("sending");
            suspensions += 1;
            reader.read_some(&conn).expect("reading while sending");
        }
    }
    while conn.response_pending() {
        reader.read_some(&conn).expect("reading the rest");
    }
    assert_eq!(
        (reader.heads, reader.body_bytes),
        (REQUESTS, REQUESTS * RESPONSE_BODY)
    );
    // The loop body really ran while requests were going out.
    assert!(suspensions > REQUESTS, "only {suspensions} suspensions");
    server.finish().assert_ok();
}

#[test]
fn blocking_sends_pipeline_200_large_uploads_against_the_same_server() {
    let server = answer_after_reading_each();
    let conn = connection_with(server.port(), Config::default());
    let upload = vec![b'u'; UPLOAD];
    let mut reader = Reader {
        heads: 0,
        body_bytes: 0,
    };
    const WINDOW: usize = 8;
    for i in 0..REQUESTS {
        // Keep up to WINDOW requests in flight; the blocking send buffers the responses that
        // arrive while it waits for the server to read.
        while i - reader.heads >= WINDOW {
            reader.read_some(&conn).expect("reading");
        }
        let target = format!("/{i}");
        conn.send_request(
            &Method::PUT,
            &target,
            &HeaderMap::new(),
            Body::Bytes(&upload),
        )
        .expect("sending");
    }
    while conn.response_pending() {
        reader.read_some(&conn).expect("reading the rest");
    }
    assert_eq!(
        (reader.heads, reader.body_bytes),
        (REQUESTS, REQUESTS * RESPONSE_BODY)
    );
    server.finish().assert_ok();
}

/// A server that stops reading altogether: sending times out cleanly, and the requests that
/// went out are named so they can be resent.
#[test]
fn a_server_that_stops_reading_gives_a_timeout_naming_the_unanswered_requests() {
    // Not through `CoOps`: `co_*` operations have no operation timeout (the loop decides).
    for path in [SendPath::Blocking, SendPath::Cofun, SendPath::Green] {
        let server =
            ScriptedServer::start(vec![Step::ExpectHead, Step::Stall(Duration::from_secs(10))]);
        let config = Config::default().timeout(Some(Duration::from_millis(500)));
        path.run(server.port(), config, move |conn| {
            let upload = vec![b'u'; UPLOAD];
            let mut sent = Vec::new();
            let error = loop {
                let target = format!("/{}", sent.len());
                let result = conn.send(
                    &Method::PUT,
                    &target,
                    &HeaderMap::new(),
                    Body::Bytes(&upload),
                );
                sent.push(target);
                if let Err(e) = result {
                    break e;
                }
                assert!(sent.len() < 1000, "the socket never filled");
            };
            assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
            match conn.read_response() {
                Err(Error::Poisoned {
                    cause: PoisonCause::Timeout(_),
                    unanswered,
                }) => {
                    let named: Vec<&str> = unanswered.iter().map(|r| r.target.as_str()).collect();
                    assert_eq!(named, sent);
                }
                other => panic!("expected Poisoned naming the requests, got {other:?}"),
            }
            conn.disconnect();
        });
        drop(server);
    }
}
