//! Interop with a real nginx (Debian `nginx-light` + `libnginx-mod-http-echo`), through every
//! [`SendPath`]. Each test starts its own nginx (see `support/nginx.rs`); without nginx the
//! tests print `SKIPPED` and pass, except under CI, where they fail.
//!
//! Timings are printed, never asserted: run with `--nocapture` to see them.

#[path = "support/nginx.rs"]
mod nginx;
mod support;

use std::fs::File;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use dugong::{Body, ClosePhase, Config, Error, HttpConnection, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use nginx::{Nginx, NginxOptions};
use support::{connection, connection_with, headers, SendPath};

/// Reads the next response and its whole body.
fn response(conn: &HttpConnection) -> (Response, Vec<u8>) {
    let resp = conn.read_response().expect("response head");
    let body = conn.read_all().expect("response body");
    (resp, body)
}

/// GETs `target` and returns the response and its body.
fn get(path: SendPath, conn: &HttpConnection, target: &str) -> (Response, Vec<u8>) {
    path.get(conn, target).expect("send GET");
    response(conn)
}

fn header<'r>(resp: &'r Response, name: &str) -> &'r str {
    resp.headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing in {resp:?}"))
        .to_str()
        .expect("ASCII header")
}

/// Sends the body owed by the last request from `source`: by `write` calls (and
/// `finish_body` for chunked) on the blocking path, by `co_sendfile` on the cofunction path.
fn send_body(path: SendPath, conn: &HttpConnection, source: &mut impl Read, chunked: bool) {
    match path {
        SendPath::Blocking => {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = source.read(&mut buf).expect("read body source");
                if n == 0 {
                    break;
                }
                conn.write(&buf[..n]).expect("write body");
            }
            if chunked {
                conn.finish_body().expect("finish chunked body");
            }
        }
        SendPath::Cofun => {
            for step in conn.co_sendfile(source).expect("co_sendfile") {
                step.expect("co_sendfile step");
            }
        }
    }
    assert!(!conn.is_writing_body(), "{path:?}: the whole body went out");
}

/// A file of `len` upload bytes in nginx's temp dir, for `co_sendfile` and `write`.
fn upload_source(nginx: &Nginx, name: &str, len: u64) -> (std::path::PathBuf, Vec<u8>) {
    let data = nginx::upload_bytes(0, len as usize);
    let file = nginx.www().join(name);
    File::create(&file)
        .and_then(|mut f| f.write_all(&data))
        .expect("write upload source");
    (file, data)
}

#[test]
fn small_and_100_mib_gets() {
    let Some(nginx) = Nginx::start() else { return };
    for &path in SendPath::ALL {
        let conn = connection(nginx.port());
        let (resp, body) = get(path, &conn, "/b100");
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.length, Some(100));
        assert_eq!(body, nginx::b100(), "{path:?}");

        path.get(&conn, "/m100").expect("send GET /m100");
        let started = Instant::now();
        let resp = conn.read_response().expect("head of /m100");
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.length, Some(nginx::M100_LEN));
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = conn.read(&mut buf).expect("read /m100");
            if n == 0 {
                break;
            }
            assert!(
                nginx::m100_check(total, &buf[..n]),
                "{path:?}: /m100 content wrong at {total}..{}",
                total + n as u64
            );
            total += n as u64;
        }
        let took = started.elapsed();
        assert_eq!(total, nginx::M100_LEN, "{path:?}: exact byte count");
        assert!(!conn.has_active_response());
        println!(
            "100 MiB GET ({path:?}): {:.3} s, {:.2} GB/s (debug builds verify every byte)",
            took.as_secs_f64(),
            nginx::M100_LEN as f64 / took.as_secs_f64() / 1e9
        );
        // The connection is still in step after the big body.
        let (_, body) = get(path, &conn, "/b100");
        assert_eq!(body, nginx::b100());
        assert!(!conn.response_pending());
    }
}

#[test]
fn head_204_and_304() {
    let Some(nginx) = Nginx::start() else { return };
    let none = HeaderMap::new();
    for &path in SendPath::ALL {
        let conn = connection(nginx.port());
        // Pipelined: HEAD of the big file, a 204, then a GET whose body must be in step.
        path.send(&conn, &Method::HEAD, "/m100", &none, Body::Empty)
            .expect("send HEAD");
        path.get(&conn, "/r204").expect("send GET /r204");
        path.get(&conn, "/b100").expect("send GET /b100");

        let head = conn.read_response().expect("HEAD response");
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.method, Method::HEAD);
        assert_eq!(header(&head, "content-length"), "104857600");
        assert_eq!(head.length, Some(0), "a HEAD response has no body");
        assert!(!conn.has_active_response());
        assert_eq!(conn.read(&mut [0u8; 16]).expect("read after HEAD"), 0);

        let (no_content, body) = response(&conn);
        assert_eq!(no_content.status, StatusCode::NO_CONTENT);
        assert_eq!(no_content.length, Some(0));
        assert!(body.is_empty());

        let (full, body) = response(&conn);
        assert_eq!(full.status, StatusCode::OK);
        assert_eq!(body, nginx::b100());
        let etag = full.headers["etag"].clone();
        let modified = full.headers["last-modified"].clone();

        // Pipelined conditional GETs, then an unconditional one.
        let mut by_etag = HeaderMap::new();
        by_etag.insert("if-none-match", etag.clone());
        let mut by_date = HeaderMap::new();
        by_date.insert("if-modified-since", modified);
        path.send(&conn, &Method::GET, "/b100", &by_etag, Body::Empty)
            .expect("send If-None-Match");
        path.send(&conn, &Method::GET, "/b100", &by_date, Body::Empty)
            .expect("send If-Modified-Since");
        path.get(&conn, "/b100").expect("send GET");
        for what in ["If-None-Match", "If-Modified-Since"] {
            let (resp, body) = response(&conn);
            assert_eq!(resp.status, StatusCode::NOT_MODIFIED, "{path:?} {what}");
            assert_eq!(resp.length, Some(0), "a 304 has no body");
            assert!(body.is_empty());
            assert_eq!(resp.headers["etag"], etag);
        }
        let (resp, body) = response(&conn);
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(body, nginx::b100());
        assert!(!conn.response_pending());
    }
}

#[test]
fn chunked_responses() {
    let Some(nginx) = Nginx::start() else { return };
    let echo = nginx.require_echo();
    let upload = nginx::upload_bytes(0, 3 << 20);
    for &path in SendPath::ALL {
        let conn = connection(nginx.port());
        // SSI output (no echo module needed).
        path.get(&conn, "/ssi/t.html").expect("send GET ssi");
        path.get(&conn, "/b100").expect("send GET /b100");
        let (resp, body) = response(&conn);
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(header(&resp, "transfer-encoding"), "chunked");
        assert_eq!(resp.length, None);
        assert_eq!(body, b"<p>GET /ssi/t.html</p>\n", "{path:?}");
        assert_eq!(response(&conn).1, nginx::b100(), "in step after chunked");
        if !echo {
            continue;
        }
        // The echo module: a small chunked body, and a 3 MiB request body echoed chunked.
        path.get(&conn, "/chunked").expect("send GET /chunked");
        path.send(
            &conn,
            &Method::PUT,
            "/echo",
            &HeaderMap::new(),
            Body::Bytes(&upload),
        )
        .expect("send PUT /echo");
        path.get(&conn, "/b100").expect("send GET /b100");
        let (resp, body) = response(&conn);
        assert_eq!(header(&resp, "transfer-encoding"), "chunked");
        assert_eq!(body, b"hello\nworld\n");
        let (resp, body) = response(&conn);
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(header(&resp, "transfer-encoding"), "chunked");
        assert_eq!(body.len(), upload.len(), "{path:?}");
        assert!(body == upload, "{path:?}: echoed body differs");
        assert_eq!(response(&conn).1, nginx::b100());
        assert!(!conn.response_pending());
    }
}

/// `PUT` with `Content-Length` (`Body::Following` + `write`, or `co_sendfile`) and chunked
/// (`Body::Chunked`): to WebDAV, which stores the body so every byte can be checked, and to
/// the sinks, pipelined with a GET.
#[test]
fn put_uploads_content_length_and_chunked() {
    let Some(nginx) = Nginx::start() else { return };
    let echo = nginx.require_echo();
    const LEN: u64 = 24 << 20;
    let (source, data) = upload_source(&nginx, "upload.src", LEN);
    let none = HeaderMap::new();
    for &path in SendPath::ALL {
        let conn = connection(nginx.port());
        for (chunked, body) in [(false, Body::Following(LEN)), (true, Body::Chunked)] {
            let name = format!("{path:?}-{}", if chunked { "chunked" } else { "length" });
            let target = format!("/dav/{name}");
            path.send(&conn, &Method::PUT, &target, &none, body)
                .expect("send PUT head");
            let started = Instant::now();
            send_body(
                path,
                &conn,
                &mut File::open(&source).expect("open"),
                chunked,
            );
            let (resp, _) = response(&conn);
            let took = started.elapsed();
            assert_eq!(resp.status, StatusCode::CREATED, "{name}: {resp:?}");
            let stored = std::fs::read(nginx.dav_file(&name)).expect("stored file");
            assert_eq!(stored.len() as u64, LEN, "{name}");
            assert!(stored == data, "{name}: stored bytes differ");
            println!("24 MiB PUT to WebDAV ({name}): {:.3} s", took.as_secs_f64());
        }
        // Sinks, pipelined with GETs behind them.
        let small = &data[..100_000];
        let sinks: &[&str] = if echo {
            &["/r204", "/sink"]
        } else {
            &["/r204"]
        };
        for &sink in sinks {
            path.send(
                &conn,
                &Method::PUT,
                sink,
                &none,
                Body::Following(small.len() as u64),
            )
            .expect("send PUT sink");
            send_body(path, &conn, &mut &small[..], false);
            path.send(&conn, &Method::PUT, sink, &none, Body::Chunked)
                .expect("send chunked PUT sink");
            send_body(path, &conn, &mut &small[..], true);
            path.get(&conn, "/b100").expect("send GET");
            for _ in 0..2 {
                let (resp, body) = response(&conn);
                assert_eq!(resp.status, StatusCode::NO_CONTENT, "{path:?} {sink}");
                assert!(body.is_empty());
            }
            assert_eq!(response(&conn).1, nginx::b100(), "{path:?} {sink}");
        }
        assert!(!conn.response_pending());
    }
}

#[test]
fn expect_100_continue() {
    let Some(nginx) = Nginx::start() else { return };
    let echo = nginx.require_echo();
    const LEN: u64 = 4 << 20;
    let (source, data) = upload_source(&nginx, "expect.src", LEN);
    let expect = headers(&[("expect", "100-continue")]);
    // A long continue timeout: finishing well inside it shows nginx sent `100 Continue`.
    let patience = Duration::from_secs(30);
    for &path in SendPath::ALL {
        let conn = connection_with(
            nginx.port(),
            Config::default().continue_timeout(Some(patience)),
        );
        // In-memory body, sent after 100 Continue, to WebDAV.
        let started = Instant::now();
        let name = format!("{path:?}-expect");
        path.send(
            &conn,
            &Method::PUT,
            &format!("/dav/{name}"),
            &expect,
            Body::Bytes(&data),
        )
        .expect("send PUT with Expect");
        let (resp, _) = response(&conn);
        assert_eq!(resp.status, StatusCode::CREATED, "{path:?}");
        assert!(std::fs::read(nginx.dav_file(&name)).expect("stored") == data);
        assert!(
            started.elapsed() < patience / 2,
            "{path:?}: waited for the continue timeout, so no 100 Continue came"
        );

        // `return 204` also answers 100 Continue and discards the body.
        path.send(&conn, &Method::PUT, "/r204", &expect, Body::Following(LEN))
            .expect("send PUT /r204");
        assert!(conn.is_writing_body(), "{path:?}: the body was not refused");
        send_body(path, &conn, &mut File::open(&source).expect("open"), false);
        assert_eq!(response(&conn).0.status, StatusCode::NO_CONTENT);

        if echo {
            // Streamed body after 100 Continue, echoed back.
            let started = Instant::now();
            path.send(&conn, &Method::PUT, "/echo", &expect, Body::Following(LEN))
                .expect("send PUT /echo with Expect");
            send_body(path, &conn, &mut File::open(&source).expect("open"), false);
            let (resp, body) = response(&conn);
            assert_eq!(resp.status, StatusCode::OK);
            assert!(body == data, "{path:?}: echoed body differs");
            assert!(
                started.elapsed() < patience / 2,
                "{path:?}: no 100 Continue"
            );
        }
        // The connection is still usable.
        assert_eq!(get(path, &conn, "/b100").1, nginx::b100());
        assert!(!conn.response_pending());
    }
}

/// `keepalive_requests 100`: nginx closes after response 100 (announcing it); the other 50
/// pipelined requests come back in `ConnectionClosed::unanswered`, in order, and succeed when
/// resent on the new connection.
#[test]
fn keepalive_requests_100_then_resend_the_unanswered() {
    let options = NginxOptions {
        keepalive_requests: 100,
        ..NginxOptions::default()
    };
    let Some(nginx) = Nginx::start_with(options) else {
        return;
    };
    const TOTAL: usize = 150;
    for &path in SendPath::ALL {
        let conn = connection(nginx.port());
        for i in 0..TOTAL {
            path.get(&conn, &format!("/f{i}")).expect("send GET");
        }
        let mut answered = 0;
        let unanswered = loop {
            match conn.read_response() {
                Ok(resp) => {
                    assert_eq!(resp.path, format!("/f{answered}"));
                    assert_eq!(resp.status, StatusCode::OK);
                    let body = conn.read_all().expect("body");
                    assert_eq!(body, nginx::numbered_body(answered), "{path:?}");
                    answered += 1;
                    if answered == 100 {
                        assert_eq!(
                            resp.headers.get("connection"),
                            Some(&HeaderValue::from_static("close")),
                            "response 100 announces the close"
                        );
                    }
                }
                Err(Error::ConnectionClosed { phase, unanswered }) => {
                    assert_eq!(phase, ClosePhase::Announced, "{path:?}");
                    break unanswered;
                }
                Err(other) => panic!("{path:?}: after {answered} responses: {other:?}"),
            }
        };
        assert_eq!(answered, 100, "{path:?}");
        let targets: Vec<String> = unanswered.iter().map(|r| r.target.clone()).collect();
        let want: Vec<String> = (100..TOTAL).map(|i| format!("/f{i}")).collect();
        assert_eq!(targets, want, "{path:?}: the unanswered requests, in order");
        assert!(unanswered.iter().all(|r| r.method == Method::GET));
        assert!(!conn.response_pending(), "reported once");

        for request in &unanswered {
            path.send(
                &conn,
                &request.method,
                &request.target,
                &HeaderMap::new(),
                Body::Empty,
            )
            .expect("resend (reconnects)");
        }
        for i in 100..TOTAL {
            let (resp, body) = response(&conn);
            assert_eq!(resp.path, format!("/f{i}"));
            assert_eq!(body, nginx::numbered_body(i), "{path:?}");
        }
        assert!(!conn.response_pending());
    }
    assert!(
        !nginx.error_log().contains("[alert]"),
        "{}",
        nginx.error_log()
    );
}

/// The `/m100` checker itself: it accepts the real content and rejects a changed byte or a
/// shifted block (no nginx needed).
#[test]
fn m100_checker_detects_corruption() {
    let mut real = vec![0u8; 3 << 20];
    for k in 0..3u64 {
        let at = ((k << 20) + nginx::M100_MARK) as usize;
        real[at..at + 8].copy_from_slice(&(k + 1).to_le_bytes());
    }
    assert!(nginx::m100_check(0, &real));
    for (from, to) in [
        (0, 1 << 20),
        (700, 800),
        (780, 2 << 20),
        ((1 << 20) + 780, 3 << 20),
    ] {
        assert!(
            nginx::m100_check(from as u64, &real[from..to]),
            "{from}..{to}"
        );
        assert!(
            !nginx::m100_check(from as u64 + 1, &real[from..to]),
            "shifted {from}..{to}"
        );
    }
    let mut changed = real.clone();
    changed[(2 << 20) + 5] = 1;
    assert!(!nginx::m100_check(0, &changed));
    let mut mark = real;
    mark[(1 << 20) + nginx::M100_MARK as usize] = 9;
    assert!(!nginx::m100_check(0, &mark));
}
