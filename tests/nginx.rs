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

use dugong::{Body, ClosePhase, Config, Error, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use nginx::{Listener, Nginx, NginxOptions};
use support::{headers, Client, SendPath};

/// Reads the next response and its whole body.
fn response(conn: &Client<'_>) -> (Response, Vec<u8>) {
    let resp = conn.read_response().expect("response head");
    let body = conn.read_all().expect("response body");
    (resp, body)
}

/// GETs `target` and returns the response and its body.
fn get(conn: &Client<'_>, target: &str) -> (Response, Vec<u8>) {
    conn.get(target).expect("send GET");
    response(conn)
}

fn header<'r>(resp: &'r Response, name: &str) -> &'r str {
    resp.headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing in {resp:?}"))
        .to_str()
        .expect("ASCII header")
}

/// Sends the body owed by the last request from `source`, the client's path's way: `write`
/// calls (and `finish_body` for chunked) on the blocking and green paths, `sendfile_cofun`
/// on the cofunction path, `co_write` on the `co_*` path.
fn send_body(conn: &Client<'_>, source: &mut impl Read) {
    conn.stream(source).expect("send the body");
    assert!(
        !conn.is_writing_body(),
        "{:?}: the whole body went out",
        conn.path()
    );
}

/// A file of `len` upload bytes in nginx's temp dir, for `sendfile_cofun` and `write`.
fn upload_source(nginx: &Nginx, name: &str, len: u64) -> (std::path::PathBuf, Vec<u8>) {
    let data = nginx::upload_bytes(0, len as usize);
    let file = nginx.www().join(name);
    File::create(&file)
        .and_then(|mut f| f.write_all(&data))
        .expect("write upload source");
    (file, data)
}

/// GETs `/m100`, checks every byte through one reused 1 MiB buffer, and returns how long
/// the response took from its head on.
fn get_m100(conn: &Client<'_>) -> Duration {
    let path = conn.path();
    conn.get("/m100").expect("send GET /m100");
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
    took
}

#[test]
fn small_and_100_mib_gets() {
    let Some(nginx) = Nginx::start() else { return };
    for &path in SendPath::ALL {
        path.run(nginx.port(), Config::default(), move |conn| {
            let (resp, body) = get(conn, "/b100");
            assert_eq!(resp.status, StatusCode::OK);
            assert_eq!(resp.length, Some(100));
            assert_eq!(body, nginx::b100(), "{path:?}");

            let took = get_m100(conn);
            println!(
                "100 MiB GET ({path:?}): {:.3} s, {:.2} GB/s (debug builds verify every byte)",
                took.as_secs_f64(),
                nginx::M100_LEN as f64 / took.as_secs_f64() / 1e9
            );
            // The connection is still in step after the big body.
            let (_, body) = get(conn, "/b100");
            assert_eq!(body, nginx::b100());
            assert!(!conn.response_pending());
        });
    }
}

#[test]
fn head_204_and_304() {
    let Some(nginx) = Nginx::start() else { return };
    for &path in SendPath::ALL {
        path.run(nginx.port(), Config::default(), move |conn| {
            let none = HeaderMap::new();
            // Pipelined: HEAD of the big file, a 204, then a GET whose body must be in step.
            conn.send(&Method::HEAD, "/m100", &none, Body::Empty)
                .expect("send HEAD");
            conn.get("/r204").expect("send GET /r204");
            conn.get("/b100").expect("send GET /b100");

            let head = conn.read_response().expect("HEAD response");
            assert_eq!(head.status, StatusCode::OK);
            assert_eq!(head.method, Method::HEAD);
            assert_eq!(header(&head, "content-length"), "104857600");
            assert_eq!(head.length, Some(0), "a HEAD response has no body");
            assert!(!conn.has_active_response());
            assert_eq!(conn.read(&mut [0u8; 16]).expect("read after HEAD"), 0);

            let (no_content, body) = response(conn);
            assert_eq!(no_content.status, StatusCode::NO_CONTENT);
            assert_eq!(no_content.length, Some(0));
            assert!(body.is_empty());

            let (full, body) = response(conn);
            assert_eq!(full.status, StatusCode::OK);
            assert_eq!(body, nginx::b100());
            let etag = full.headers["etag"].clone();
            let modified = full.headers["last-modified"].clone();

            // Pipelined conditional GETs, then an unconditional one.
            let mut by_etag = HeaderMap::new();
            by_etag.insert("if-none-match", etag.clone());
            let mut by_date = HeaderMap::new();
            by_date.insert("if-modified-since", modified);
            conn.send(&Method::GET, "/b100", &by_etag, Body::Empty)
                .expect("send If-None-Match");
            conn.send(&Method::GET, "/b100", &by_date, Body::Empty)
                .expect("send If-Modified-Since");
            conn.get("/b100").expect("send GET");
            for what in ["If-None-Match", "If-Modified-Since"] {
                let (resp, body) = response(conn);
                assert_eq!(resp.status, StatusCode::NOT_MODIFIED, "{path:?} {what}");
                assert_eq!(resp.length, Some(0), "a 304 has no body");
                assert!(body.is_empty());
                assert_eq!(resp.headers["etag"], etag);
            }
            let (resp, body) = response(conn);
            assert_eq!(resp.status, StatusCode::OK);
            assert_eq!(body, nginx::b100());
            assert!(!conn.response_pending());
        });
    }
}

#[test]
fn chunked_responses() {
    let Some(nginx) = Nginx::start() else { return };
    let echo = nginx.require_echo();
    let upload = nginx::upload_bytes(0, 3 << 20);
    for &path in SendPath::ALL {
        let upload = upload.clone();
        path.run(nginx.port(), Config::default(), move |conn| {
            // SSI output (no echo module needed).
            conn.get("/ssi/t.html").expect("send GET ssi");
            conn.get("/b100").expect("send GET /b100");
            let (resp, body) = response(conn);
            assert_eq!(resp.status, StatusCode::OK);
            assert_eq!(header(&resp, "transfer-encoding"), "chunked");
            assert_eq!(resp.length, None);
            assert_eq!(body, b"<p>GET /ssi/t.html</p>\n", "{path:?}");
            assert_eq!(response(conn).1, nginx::b100(), "in step after chunked");
            if !echo {
                return;
            }
            // The echo module: a small chunked body, and a 3 MiB request body echoed chunked.
            conn.get("/chunked").expect("send GET /chunked");
            conn.send(
                &Method::PUT,
                "/echo",
                &HeaderMap::new(),
                Body::Bytes(&upload),
            )
            .expect("send PUT /echo");
            conn.get("/b100").expect("send GET /b100");
            let (resp, body) = response(conn);
            assert_eq!(header(&resp, "transfer-encoding"), "chunked");
            assert_eq!(body, b"hello\nworld\n");
            let (resp, body) = response(conn);
            assert_eq!(resp.status, StatusCode::OK);
            assert_eq!(header(&resp, "transfer-encoding"), "chunked");
            assert_eq!(body.len(), upload.len(), "{path:?}");
            assert!(body == upload, "{path:?}: echoed body differs");
            assert_eq!(response(conn).1, nginx::b100());
            assert!(!conn.response_pending());
        });
    }
}

/// `PUT` with `Content-Length` (`Body::Following` + `write`, or `sendfile_cofun`) and chunked
/// (`Body::Chunked`): to WebDAV, which stores the body so every byte can be checked, and to
/// the sinks, pipelined with a GET.
#[test]
fn put_uploads_content_length_and_chunked() {
    let Some(nginx) = Nginx::start() else { return };
    let echo = nginx.require_echo();
    const LEN: u64 = 24 << 20;
    let (source, data) = upload_source(&nginx, "upload.src", LEN);
    for &path in SendPath::ALL {
        let (source, data, dav) = (source.clone(), data.clone(), nginx.dav_dir());
        path.run(nginx.port(), Config::default(), move |conn| {
            let none = HeaderMap::new();
            for (chunked, body) in [(false, Body::Following(LEN)), (true, Body::Chunked)] {
                let name = format!("{path:?}-{}", if chunked { "chunked" } else { "length" });
                let target = format!("/dav/{name}");
                conn.send(&Method::PUT, &target, &none, body)
                    .expect("send PUT head");
                let started = Instant::now();
                send_body(conn, &mut File::open(&source).expect("open"));
                let (resp, _) = response(conn);
                let took = started.elapsed();
                assert_eq!(resp.status, StatusCode::CREATED, "{name}: {resp:?}");
                let stored = std::fs::read(dav.join(&name)).expect("stored file");
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
                conn.send(
                    &Method::PUT,
                    sink,
                    &none,
                    Body::Following(small.len() as u64),
                )
                .expect("send PUT sink");
                send_body(conn, &mut &small[..]);
                conn.send(&Method::PUT, sink, &none, Body::Chunked)
                    .expect("send chunked PUT sink");
                send_body(conn, &mut &small[..]);
                conn.get("/b100").expect("send GET");
                for _ in 0..2 {
                    let (resp, body) = response(conn);
                    assert_eq!(resp.status, StatusCode::NO_CONTENT, "{path:?} {sink}");
                    assert!(body.is_empty());
                }
                assert_eq!(response(conn).1, nginx::b100(), "{path:?} {sink}");
            }
            assert!(!conn.response_pending());
        });
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
        let (source, data, dav, expect) = (
            source.clone(),
            data.clone(),
            nginx.dav_dir(),
            expect.clone(),
        );
        path.run(
            nginx.port(),
            Config::default().continue_timeout(Some(patience)),
            move |conn| {
                // In-memory body, sent after 100 Continue, to WebDAV.
                let started = Instant::now();
                let name = format!("{path:?}-expect");
                conn.send(
                    &Method::PUT,
                    &format!("/dav/{name}"),
                    &expect,
                    Body::Bytes(&data),
                )
                .expect("send PUT with Expect");
                let (resp, _) = response(conn);
                assert_eq!(resp.status, StatusCode::CREATED, "{path:?}");
                assert!(std::fs::read(dav.join(&name)).expect("stored") == data);
                assert!(
                    started.elapsed() < patience / 2,
                    "{path:?}: waited for the continue timeout, so no 100 Continue came"
                );

                // `return 204` also answers 100 Continue and discards the body.
                conn.send(&Method::PUT, "/r204", &expect, Body::Following(LEN))
                    .expect("send PUT /r204");
                assert!(conn.is_writing_body(), "{path:?}: the body was not refused");
                send_body(conn, &mut File::open(&source).expect("open"));
                assert_eq!(response(conn).0.status, StatusCode::NO_CONTENT);

                if echo {
                    // Streamed body after 100 Continue, echoed back.
                    let started = Instant::now();
                    conn.send(&Method::PUT, "/echo", &expect, Body::Following(LEN))
                        .expect("send PUT /echo with Expect");
                    send_body(conn, &mut File::open(&source).expect("open"));
                    let (resp, body) = response(conn);
                    assert_eq!(resp.status, StatusCode::OK);
                    assert!(body == data, "{path:?}: echoed body differs");
                    assert!(
                        started.elapsed() < patience / 2,
                        "{path:?}: no 100 Continue"
                    );
                }
                // The connection is still usable.
                assert_eq!(get(conn, "/b100").1, nginx::b100());
                assert!(!conn.response_pending());
            },
        );
    }
}

/// Sends `n` GETs of `/b100` keeping up to `depth` in flight, either as a sliding window
/// (`lockstep == false`) or in lockstep batches of `depth` (send all, read all); checks every
/// body.
fn pipelined_batch(conn: &Client<'_>, n: usize, depth: usize, lockstep: bool) {
    let want = nginx::b100();
    let (mut sent, mut got) = (0, 0);
    while got < n {
        if !lockstep || sent == got {
            while sent < n && sent - got < depth {
                conn.get("/b100").expect("send GET");
                sent += 1;
            }
        }
        let (resp, body) = response(conn);
        assert_eq!(resp.status, StatusCode::OK);
        assert!(body == want, "{:?}: body {got} differs", conn.path());
        got += 1;
    }
}

/// Both nginx configurations, including Debian's `sendfile on; tcp_nopush on` (which stalls a
/// client that does not ACK quickly), answer pipelined batches in order through every path.
/// How fast is measured by `benches/nginx_batches.rs`.
#[test]
fn pipelined_batches_are_answered_in_order_in_both_sendfile_configs() {
    for sendfile_nopush in [false, true] {
        let options = NginxOptions {
            sendfile_nopush,
            ..NginxOptions::default()
        };
        let Some(nginx) = Nginx::start_with(options) else {
            return;
        };
        for depth in [16, 64] {
            for lockstep in [false, true] {
                for &path in SendPath::ALL {
                    path.run(nginx.port(), Config::default(), move |conn| {
                        pipelined_batch(conn, 200, depth, lockstep);
                        assert!(!conn.response_pending());
                    });
                }
            }
        }
    }
}

/// `keepalive_requests 100`: nginx closes after response 100 (announcing it); the other 50
/// pipelined requests come back in `ConnectionClosed::unanswered`, in order, and succeed when
/// resent on the new connection. A path that reads while it sends may meet the close before
/// all 150 are out: the send that meets it reports the unanswered ones and is not sent
/// itself, so it and the rest are resent too.
#[test]
fn keepalive_requests_100_then_resend_the_unanswered() {
    keepalive_requests_100_then_resend(Listener::Plain);
}

/// The body of the `keepalive_requests 100` tests, over `listener`.
fn keepalive_requests_100_then_resend(listener: Listener) {
    let options = NginxOptions {
        keepalive_requests: 100,
        listener,
        ..NginxOptions::default()
    };
    let Some(nginx) = Nginx::start_with(options) else {
        return;
    };
    const TOTAL: usize = 150;
    for &path in SendPath::ALL {
        path.run_on(nginx.origin(), nginx.client_config(), move |conn| {
            let mut sent = 0;
            let mut met_while_sending = None;
            while sent < TOTAL {
                match conn.get(&format!("/f{sent}")) {
                    Ok(()) => sent += 1,
                    Err(Error::ConnectionClosed { phase, unanswered }) => {
                        assert_eq!(phase, ClosePhase::Announced, "{path:?}");
                        met_while_sending = Some(unanswered);
                        break;
                    }
                    Err(other) => panic!("{path:?}: send {sent}: {other:?}"),
                }
            }
            let mut answered = 0;
            let mut unanswered = loop {
                if answered == 100 {
                    if let Some(unanswered) = met_while_sending.take() {
                        // Reported once, by the send that met the close.
                        assert!(!conn.response_pending(), "{path:?}");
                        break unanswered;
                    }
                }
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
            // Never sent: the send that met the close, and those after it.
            unanswered.extend((sent..TOTAL).map(|i| dugong::InFlight {
                method: Method::GET,
                target: format!("/f{i}"),
            }));
            let targets: Vec<String> = unanswered.iter().map(|r| r.target.clone()).collect();
            let want: Vec<String> = (100..TOTAL).map(|i| format!("/f{i}")).collect();
            assert_eq!(targets, want, "{path:?}: the unanswered requests, in order");
            assert!(unanswered.iter().all(|r| r.method == Method::GET));
            assert!(!conn.response_pending(), "reported once");

            for request in &unanswered {
                conn.send(
                    &request.method,
                    &request.target,
                    &HeaderMap::new(),
                    Body::Empty,
                )
                .expect("resend (reconnects)");
            }
            for i in 100..TOTAL {
                let (resp, body) = response(conn);
                assert_eq!(resp.path, format!("/f{i}"));
                assert_eq!(body, nginx::numbered_body(i), "{path:?}");
            }
            assert!(!conn.response_pending());
        });
    }
    assert!(
        !nginx.error_log().contains("[alert]"),
        "{}",
        nginx.error_log()
    );
}

/// nginx with `listen … ssl` (see `support/nginx.rs`).
#[cfg(feature = "tls")]
fn start_tls() -> Option<Nginx> {
    Nginx::start_with(NginxOptions {
        listener: Listener::Tls,
        ..NginxOptions::default()
    })
}

/// 1,000 pipelined GETs of distinct files over TLS, sent before any is read, come back in
/// order with their bodies through every path.
#[cfg(feature = "tls")]
#[test]
fn tls_1000_pipelined_gets() {
    let Some(nginx) = start_tls() else { return };
    for &path in SendPath::ALL {
        path.run_on(nginx.origin(), nginx.client_config(), move |conn| {
            let started = Instant::now();
            const N: usize = 1000;
            for i in 0..N {
                conn.get(&format!("/f{}", i % nginx::NUMBERED_FILES))
                    .expect("send GET");
            }
            for i in 0..N {
                let (resp, body) = response(conn);
                let file = i % nginx::NUMBERED_FILES;
                assert_eq!(resp.status, StatusCode::OK);
                assert_eq!(resp.path, format!("/f{file}"), "{path:?}");
                assert_eq!(body, nginx::numbered_body(file), "{path:?}: response {i}");
            }
            assert!(!conn.response_pending());
            println!(
                "1,000 pipelined GETs over TLS ({path:?}): {:.3} s",
                started.elapsed().as_secs_f64()
            );
        });
    }
}

/// 100 MiB GET (every byte checked) and 100 MiB PUT to WebDAV (the stored file compared)
/// over TLS through every path, then a small GET in step.
#[cfg(feature = "tls")]
#[test]
fn tls_100_mib_get_and_put() {
    let Some(nginx) = start_tls() else { return };
    let (source, data) = upload_source(&nginx, "m100-upload.src", nginx::M100_LEN);
    let data = std::sync::Arc::new(data);
    for &path in SendPath::ALL {
        let (source, data, dav) = (source.clone(), data.clone(), nginx.dav_dir());
        path.run_on(nginx.origin(), nginx.client_config(), move |conn| {
            let took = get_m100(conn);
            println!(
                "100 MiB GET over TLS ({path:?}): {:.3} s (debug builds verify every byte)",
                took.as_secs_f64()
            );
            let name = format!("{path:?}-m100");
            conn.send(
                &Method::PUT,
                &format!("/dav/{name}"),
                &HeaderMap::new(),
                Body::Following(nginx::M100_LEN),
            )
            .expect("send PUT head");
            let started = Instant::now();
            send_body(conn, &mut File::open(&source).expect("open"));
            let (resp, _) = response(conn);
            let took = started.elapsed();
            assert_eq!(resp.status, StatusCode::CREATED, "{path:?}: {resp:?}");
            let stored = std::fs::read(dav.join(&name)).expect("stored file");
            assert_eq!(stored.len() as u64, nginx::M100_LEN, "{path:?}");
            assert!(stored == *data, "{path:?}: stored bytes differ");
            let _ = std::fs::remove_file(dav.join(&name));
            println!(
                "100 MiB PUT to WebDAV over TLS ({path:?}): {:.3} s",
                took.as_secs_f64()
            );
            assert_eq!(get(conn, "/b100").1, nginx::b100());
            assert!(!conn.response_pending());
        });
    }
}

/// [`keepalive_requests_100_then_resend_the_unanswered`] over TLS: nginx's close after
/// response 100 comes with `close_notify`, and the resend handshakes anew.
#[cfg(feature = "tls")]
#[test]
fn tls_keepalive_requests_100_then_resend_the_unanswered() {
    keepalive_requests_100_then_resend(Listener::Tls);
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

/// `send_batch` against `keepalive_requests 100`: 1,000 pipelined GETs (depth 64) over ten
/// connections, each response handed over once, in order, with its own body — blocking
/// and in a green task, plain and over TLS.
#[test]
fn send_batch_resends_across_keepalive_closes() {
    for listener in [Listener::Plain, Listener::Tls] {
        if cfg!(not(feature = "tls")) && listener == Listener::Tls {
            continue;
        }
        let options = NginxOptions {
            keepalive_requests: 100,
            listener,
            ..NginxOptions::default()
        };
        let Some(nginx) = Nginx::start_with(options) else {
            return;
        };
        const TOTAL: usize = 1_000;
        let requests: Vec<_> = (0..TOTAL)
            .map(|i| dugong::BatchRequest::get(format!("/f{}?n={i}", i % 150)))
            .collect();
        fn check(seen: &mut Vec<usize>, i: usize, resp: &Response, body: Vec<u8>) {
            assert_eq!(resp.path, format!("/f{}?n={i}", i % 150));
            assert_eq!(body, nginx::numbered_body(i % 150));
            seen.push(i);
        }
        let retry = dugong::Retry::default();
        let conn =
            dugong::HttpConnection::open(&nginx.origin(), nginx.client_config()).expect("conn");
        let mut seen = Vec::new();
        conn.send_batch(&requests, 64, &retry, |i, resp, conn| {
            check(&mut seen, i, &resp, conn.read_all()?);
            Ok(())
        })
        .expect("every request answered");
        assert_eq!(seen, (0..TOTAL).collect::<Vec<_>>(), "{listener:?}");

        let (origin, config) = (nginx.origin(), nginx.client_config());
        let seen = dugong::green::run(move |task| {
            let conn = task.open(&origin, config).expect("conn");
            let mut seen = Vec::new();
            conn.send_batch(&requests, 64, &retry, |i, resp, conn| {
                check(&mut seen, i, &resp, conn.read_all()?);
                Ok(())
            })
            .expect("every request answered");
            seen
        })
        .expect("no panic");
        assert_eq!(seen, (0..TOTAL).collect::<Vec<_>>(), "green, {listener:?}");
    }
}
