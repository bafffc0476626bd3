//! Interop with two real servers besides nginx: Debian's lighttpd and apache2 (event MPM),
//! each started per test from a generated config (see `support/lighttpd.rs` and
//! `support/apache2.rs`) and serving the static files of `support/docroot.rs`. Every test
//! runs against both. Without one of them its tests print `SKIPPED` and pass, except under
//! CI, where they fail.
//!
//! What the two do differently, and the tests rely on:
//!
//! - Both close a connection when their keep-alive limit is reached — after one request more
//!   than the limit — announcing it with `Connection: close` on the last response.
//! - A `PUT` to a static file: lighttpd answers `501 Not Implemented` with
//!   `Connection: close` as soon as it has the head (to `Expect: 100-continue` too, instead
//!   of `100 Continue`), then closes, reading and discarding the body for a while (so a
//!   client that writes on may get all of it out, or meet the close); apache2 sends
//!   `100 Continue` when asked, reads and discards the whole body, and answers
//!   `405 Method Not Allowed` on a connection that stays open.

#[path = "support/apache2.rs"]
mod apache2;
#[path = "support/docroot.rs"]
mod docroot;
#[path = "support/lighttpd.rs"]
mod lighttpd;
mod support;

use std::io::Read;
use std::time::{Duration, Instant};

use apache2::Apache2;
use docroot::{Doc, Docroot};
use dugong::{
    BatchRequest, Body, ClosePhase, Config, Error, HttpConnection, Origin, Response, Retry, Scheme,
};
use http::{HeaderMap, Method, StatusCode};
use lighttpd::Lighttpd;
use support::{headers, Client, SendPath};

/// The servers every test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Lighttpd,
    Apache2,
}

/// A server started for a test; stopped on drop.
#[derive(Debug)]
enum Running {
    Lighttpd(Lighttpd),
    Apache2(Apache2),
}

impl Server {
    const ALL: [Server; 2] = [Server::Lighttpd, Server::Apache2];

    /// Starts it serving `docroot`, closing connections after `keep_alive_requests`; `None`
    /// when it is not installed (and `CI` is not set).
    fn start(self, docroot: &Docroot, keep_alive_requests: u32) -> Option<Running> {
        match self {
            Server::Lighttpd => {
                Lighttpd::start(docroot.path(), keep_alive_requests).map(Running::Lighttpd)
            }
            Server::Apache2 => {
                Apache2::start(docroot.path(), keep_alive_requests).map(Running::Apache2)
            }
        }
    }

    /// Its answer to a `PUT` of a static file: lighttpd's `mod_staticfile` implements no
    /// `PUT`; apache2's default handler does not allow it.
    fn put_refusal(self) -> StatusCode {
        match self {
            Server::Lighttpd => StatusCode::NOT_IMPLEMENTED,
            Server::Apache2 => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

impl Running {
    fn port(&self) -> u16 {
        match self {
            Running::Lighttpd(server) => server.port(),
            Running::Apache2(server) => server.port(),
        }
    }

    fn origin(&self) -> Origin {
        Origin::new(Scheme::Http, "127.0.0.1", self.port())
    }
}

/// Timeouts of a few seconds, so a test that goes wrong ends.
fn config() -> Config {
    Config::default()
        .connect_timeout(Some(Duration::from_secs(3)))
        .timeout(Some(Duration::from_secs(3)))
        .continue_timeout(Some(CONTINUE_TIMEOUT))
}

/// How long an `Expect: 100-continue` request waits for `100 Continue`.
const CONTINUE_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads the next response and its whole body.
fn response(conn: &Client<'_>) -> (Response, Vec<u8>) {
    let resp = conn.read_response().expect("response head");
    let body = conn.read_all().expect("response body");
    (resp, body)
}

/// Checks that `body` is the whole of `doc`, answering `resp`.
fn check_doc(server: Server, doc: Doc, resp: &Response, body: &[u8]) {
    assert_eq!(resp.status, StatusCode::OK, "{server:?} {}", resp.path);
    assert_eq!(
        body.len(),
        doc.contents().len(),
        "{server:?} {}: body length",
        resp.path
    );
    assert!(
        body == doc.contents(),
        "{server:?} {}: the body differs from the file",
        resp.path
    );
}

/// Checks an error page (a 404, a refusal): it has a body, read to its `Content-Length`.
fn check_error_page(server: Server, status: StatusCode, resp: &Response, body: &[u8]) {
    assert_eq!(resp.status, status, "{server:?} {}", resp.path);
    assert!(!body.is_empty(), "{server:?} {}: a page", resp.path);
    assert_eq!(
        resp.length,
        Some(body.len() as u64),
        "{server:?} {}: read to its Content-Length",
        resp.path
    );
}

/// Request `i` of [`pipelined_gets_of_every_file_and_missing_ones`]: its target, and the
/// file it fetches (`None` for a missing one). Mostly small files, every 8th the 1 MiB
/// file, two in 200 the 20 MiB file, every 7th a missing path.
fn mixed(i: usize) -> (String, Option<Doc>) {
    let doc = match i {
        _ if i % 100 == 50 => Some(Doc::M20),
        _ if i % 8 == 3 => Some(Doc::M1),
        _ if i % 7 == 5 => None,
        _ if i % 5 == 1 => Some(Doc::Index),
        _ => Some(Doc::B100),
    };
    let target = match doc {
        Some(doc) => format!("{}?n={i}", doc.target()),
        None => format!("/missing/{i}"),
    };
    (target, doc)
}

/// 200 GETs of every file and of missing paths, up to 16 in flight, through every send
/// path, on one connection (any close would fail a send or a read: nothing is resent):
/// every response answers its own request, every file byte for byte.
#[test]
fn pipelined_gets_of_every_file_and_missing_ones() {
    const TOTAL: usize = 200;
    const DEPTH: usize = 16;
    let docroot = Docroot::new();
    for server in Server::ALL {
        let Some(running) = server.start(&docroot, 1000) else {
            continue;
        };
        for &path in SendPath::ALL {
            path.run(running.port(), config(), move |conn| {
                let (mut sent, mut got) = (0, 0);
                while got < TOTAL {
                    while sent < TOTAL && sent - got < DEPTH {
                        conn.get(&mixed(sent).0).expect("send GET");
                        sent += 1;
                    }
                    let (target, doc) = mixed(got);
                    let (resp, body) = response(conn);
                    assert_eq!(resp.path, target, "{server:?}: response {got}");
                    match doc {
                        Some(doc) => check_doc(server, doc, &resp, &body),
                        None => check_error_page(server, StatusCode::NOT_FOUND, &resp, &body),
                    }
                    got += 1;
                }
                assert!(!conn.response_pending());
            });
        }
    }
}

/// The file request `i` of the batch fetches: mostly small, every 50th 1 MiB.
fn batch_doc(i: usize) -> Doc {
    match i {
        _ if i % 50 == 7 => Doc::M1,
        _ if i % 3 == 0 => Doc::Index,
        _ => Doc::B100,
    }
}

/// What `send_batch` handed over: the indices of the responses, in order, and of those
/// that announced a close.
#[derive(Debug, Default)]
struct Handed {
    seen: Vec<usize>,
    closes: Vec<usize>,
}

impl Handed {
    /// Checks response `i` of the batch, with its whole `body`, and notes it.
    fn take(&mut self, server: Server, i: usize, resp: &Response, body: &[u8]) {
        let doc = batch_doc(i);
        assert_eq!(resp.path, format!("{}?n={i}", doc.target()), "{server:?}");
        check_doc(server, doc, resp, body);
        if resp.headers.get("connection").is_some_and(|v| v == "close") {
            self.closes.push(i);
        }
        self.seen.push(i);
    }

    /// Checks that all `total` responses were handed over once, in order, and that the
    /// server closed after every `per_connection` of them.
    fn check(&self, what: &str, total: usize, per_connection: usize) {
        assert_eq!(self.seen, (0..total).collect::<Vec<_>>(), "{what}");
        let closes: Vec<usize> = (1..)
            .map(|k| k * per_connection - 1)
            .take_while(|&i| i < total)
            .collect();
        assert_eq!(
            self.closes, closes,
            "{what}: the responses that announced a close"
        );
    }
}

/// `send_batch` against a keep-alive limit of 100: 1,000 GETs, up to 64 in flight, over
/// the connections the server closes one after another; every response handed over once,
/// in order, with its own body — blocking and in a green task.
///
/// Both servers answer 101 requests on a connection with a limit of 100 (the limit counts
/// the requests after the first), and announce the close on the 101st.
#[test]
fn send_batch_resends_across_keep_alive_closes() {
    const TOTAL: usize = 1_000;
    const DEPTH: usize = 64;
    const LIMIT: u32 = 100;
    const PER_CONNECTION: usize = LIMIT as usize + 1;
    let docroot = Docroot::new();
    let requests: Vec<BatchRequest> = (0..TOTAL)
        .map(|i| BatchRequest::get(format!("{}?n={i}", batch_doc(i).target())))
        .collect();
    for server in Server::ALL {
        let Some(running) = server.start(&docroot, LIMIT) else {
            continue;
        };
        let conn = HttpConnection::open(&running.origin(), config()).expect("valid origin");
        let mut handed = Handed::default();
        conn.send_batch(&requests, DEPTH, &Retry::default(), |i, resp, conn| {
            handed.take(server, i, &resp, &conn.read_all()?);
            Ok(())
        })
        .expect("every request answered");
        handed.check(&format!("{server:?}"), TOTAL, PER_CONNECTION);

        let (origin, requests) = (running.origin(), requests.clone());
        let handed = dugong::green::run(move |task| {
            let conn = task.open(&origin, config()).expect("valid origin");
            let mut handed = Handed::default();
            conn.send_batch(&requests, DEPTH, &Retry::default(), |i, resp, conn| {
                handed.take(server, i, &resp, &conn.read_all()?);
                Ok(())
            })
            .expect("every request answered");
            handed
        })
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        handed.check(&format!("green, {server:?}"), TOTAL, PER_CONNECTION);
    }
}

/// 50 HEADs of the 1 MiB file, up to 16 in flight, and a GET of it behind them, through
/// every send path: each HEAD response reports the file's length and has no body, and the
/// GET gets the whole file.
#[test]
fn pipelined_heads_report_the_length_and_keep_the_connection_in_step() {
    const HEADS: usize = 50;
    const DEPTH: usize = 16;
    let docroot = Docroot::new();
    let length = Doc::M1.contents().len().to_string();
    for server in Server::ALL {
        let Some(running) = server.start(&docroot, 1000) else {
            continue;
        };
        for &path in SendPath::ALL {
            let length = length.clone();
            path.run(running.port(), config(), move |conn| {
                let none = HeaderMap::new();
                // Request `HEADS` is the GET.
                let send = |i: usize| {
                    let method = if i < HEADS { Method::HEAD } else { Method::GET };
                    let target = format!("{}?n={i}", Doc::M1.target());
                    conn.send(&method, &target, &none, Body::Empty)
                        .expect("send");
                };
                let (mut sent, mut got) = (0, 0);
                while got < HEADS {
                    while sent <= HEADS && sent - got < DEPTH {
                        send(sent);
                        sent += 1;
                    }
                    let resp = conn.read_response().expect("HEAD response");
                    assert_eq!(resp.method, Method::HEAD, "{server:?}");
                    assert_eq!(resp.path, format!("{}?n={got}", Doc::M1.target()));
                    assert_eq!(resp.status, StatusCode::OK, "{server:?}");
                    assert_eq!(
                        resp.headers.get("content-length").map(|v| v.as_bytes()),
                        Some(length.as_bytes()),
                        "{server:?}: the length of a GET"
                    );
                    assert_eq!(
                        resp.length,
                        Some(0),
                        "{server:?}: a HEAD response has no body"
                    );
                    assert!(!conn.has_active_response());
                    assert_eq!(conn.read(&mut [0u8; 16]).expect("read after HEAD"), 0);
                    got += 1;
                }
                while sent <= HEADS {
                    send(sent);
                    sent += 1;
                }
                let (resp, body) = response(conn);
                assert_eq!(resp.method, Method::GET);
                check_doc(server, Doc::M1, &resp, &body);
                assert!(!conn.response_pending());
            });
        }
    }
}

/// How a refused upload is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upload {
    /// With `Content-Length`.
    Length,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// With `Content-Length` and `Expect: 100-continue`.
    ExpectContinue,
}

/// A 20 MiB `PUT` of a static file, with `Content-Length`, chunked, and with
/// `Expect: 100-continue`, through every send path: the server's refusal arrives (whether it
/// read the body or closed the connection under it), and a GET on the same connection after
/// it gets the whole file.
#[test]
fn refused_uploads_then_a_get_on_the_same_connection() {
    const LEN: u64 = 20 << 20;
    let docroot = Docroot::new();
    for server in Server::ALL {
        let Some(running) = server.start(&docroot, 1000) else {
            continue;
        };
        for &path in SendPath::ALL {
            path.run(running.port(), config(), move |conn| {
                for upload in [Upload::Length, Upload::Chunked, Upload::ExpectContinue] {
                    let what = format!("{server:?} {path:?} {upload:?}");
                    let (fields, body) = match upload {
                        Upload::Length => (HeaderMap::new(), Body::Following(LEN)),
                        Upload::Chunked => (HeaderMap::new(), Body::Chunked),
                        Upload::ExpectContinue => {
                            (headers(&[("expect", "100-continue")]), Body::Following(LEN))
                        }
                    };
                    let started = Instant::now();
                    conn.send(&Method::PUT, Doc::M1.target(), &fields, body)
                        .expect("send PUT head");
                    if upload == Upload::ExpectContinue {
                        assert!(
                            started.elapsed() < CONTINUE_TIMEOUT / 2,
                            "{what}: waited for the continue timeout: no answer to the expectation"
                        );
                        // lighttpd refuses the body with its final answer; apache2 asks for it.
                        assert_eq!(conn.is_writing_body(), server == Server::Apache2, "{what}");
                    }
                    let streamed = if conn.is_writing_body() {
                        conn.stream(&mut std::io::repeat(b'u').take(LEN))
                    } else {
                        Ok(())
                    };
                    match streamed {
                        Ok(()) => {}
                        // lighttpd closed under the body: its answer can still be read.
                        Err(Error::ConnectionClosed {
                            phase: ClosePhase::WhileSending,
                            unanswered,
                        }) if server == Server::Lighttpd && unanswered.is_empty() => {}
                        Err(other) => panic!("{what}: the upload ended with {other:?}"),
                    }
                    let (resp, body) = response(conn);
                    check_error_page(server, server.put_refusal(), &resp, &body);
                    assert_eq!(resp.method, Method::PUT);

                    conn.get(Doc::B100.target())
                        .expect("send GET after the refusal");
                    let (resp, body) = response(conn);
                    check_doc(server, Doc::B100, &resp, &body);
                    assert!(!conn.response_pending(), "{what}");
                }
            });
        }
    }
}
