//! What dugong logs, seen through a capturing logger: lifecycle lines (connect, reuse, stale,
//! close with the unanswered count, poison with its cause, disconnect), request and response
//! lines, the wire bytes (every byte once, each direction, plaintext over TLS) and the
//! redaction of secret header values everywhere.
//!
//! The tests of this binary share one logger: each takes out the lines of its own
//! connections, found by the port in their connect lines.

mod support;

use std::sync::{Mutex, Once};
use std::time::Duration;

use dugong::{Body, ClosePhase, Config, Error, HttpConnection, HttpVia, Origin, Proxy, Scheme};
use dugong_harness::ForwardProxy;
use http::{HeaderMap, Method};
use log::{Level, LevelFilter, Log, Metadata, Record};
use support::{headers, Front, ScriptedServer, SendPath, Step};

/// One captured record.
#[derive(Debug, Clone)]
struct Line {
    level: Level,
    target: String,
    text: String,
}

/// Keeps every record.
struct Capture {
    lines: Mutex<Vec<Line>>,
}

static CAPTURE: Capture = Capture {
    lines: Mutex::new(Vec::new()),
};

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let line = Line {
            level: record.level(),
            target: record.target().to_owned(),
            text: record.args().to_string(),
        };
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    fn flush(&self) {}
}

/// Installs the capturing logger at trace level, once per test process.
fn capture() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in this test binary");
        log::set_max_level(LevelFilter::Trace);
    });
}

/// Takes out of the capture the lines of every connection made to 127.0.0.1:`port` (and
/// failed connects to it), in order.
fn lines_for(port: u16) -> Vec<Line> {
    let mut all = CAPTURE.lines.lock().unwrap_or_else(|p| p.into_inner());
    let connected = format!(" connected to 127.0.0.1:{port} (");
    let failed = format!("connecting to 127.0.0.1:{port} failed");
    let prefixes: Vec<String> = all
        .iter()
        .filter(|l| l.text.contains(&connected))
        .filter_map(|l| l.text.split(' ').next())
        .map(|id| format!("{id} "))
        .collect();
    let (mine, rest): (Vec<Line>, Vec<Line>) = all.drain(..).partition(|l| {
        l.text.starts_with(&failed) || prefixes.iter().any(|p| l.text.starts_with(p))
    });
    *all = rest;
    mine
}

/// The connection numbers (`#N`) in the connect lines, in order.
fn ids(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.text.contains(" connected to "))
        .filter_map(|l| l.text.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// The texts of the `dugong` lines at `level`.
fn texts(lines: &[Line], level: Level) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.target == "dugong" && l.level == level)
        .map(|l| l.text.as_str())
        .collect()
}

/// Every byte the wire log shows going `arrows` (`>>` or `<<`), in order, checking each line's
/// byte count.
fn wire_bytes(lines: &[Line], arrows: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut expected = 0;
    for line in lines.iter().filter(|l| l.target == "dugong::wire") {
        assert_eq!(line.level, Level::Trace, "{line:?}");
        let mut words = line.text.splitn(4, ' ');
        let (_id, dir, count) = (words.next(), words.next(), words.next());
        if dir != Some(arrows) || line.text.ends_with("end of stream") {
            continue;
        }
        let count: usize = count
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no byte count in {line:?}"));
        let quoted = &line.text[line.text.find('"').expect("a quoted piece") + 1..];
        let piece = unescape(quoted.strip_suffix('"').expect("closing quote"));
        if line.text.contains(" bytes: ") || line.text.contains(", 1/") {
            assert_eq!(expected, 0, "a transfer ended early before {line:?}");
            expected = count;
        }
        assert!(piece.len() <= 64 && piece.len() <= expected, "{line:?}");
        expected -= piece.len();
        bytes.extend(piece);
    }
    assert_eq!(expected, 0, "the last transfer ended early");
    bytes
}

/// Undoes `std::ascii::escape_default`.
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(b'x') => {
                let hex = [bytes.next(), bytes.next()].map(|d| d.expect("two hex digits"));
                let hex = std::str::from_utf8(&hex).expect("ASCII");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
            }
            Some(other) => out.push(other),
            None => panic!("a trailing backslash in {s:?}"),
        }
    }
    out
}

/// A 200 response with `body`.
fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Asserts that `wanted` appear among `lines`, in this order.
#[track_caller]
fn assert_in_order(lines: &[&str], wanted: &[String]) {
    let mut rest = lines.iter();
    for w in wanted {
        assert!(
            rest.any(|l| l == w),
            "missing or out of order: {w:?}\nin: {lines:#?}"
        );
    }
}

#[test]
fn every_byte_is_logged_once_each_way_through_every_path_and_over_tls() {
    capture();
    let reply = [ok("a"), ok(&"b\r\n\"".repeat(100)), ok("c")].concat();
    for &front in Front::ALL {
        // Large enough that sends are cut short: loopback TCP takes a few MiB at once, a TLS
        // session 64 KiB.
        let upload_len = if front == Front::Plain {
            4 << 20
        } else {
            1 << 20
        };
        for &path in SendPath::ALL {
            let server = ScriptedServer::start(vec![
                Step::ExpectHead,
                Step::ExpectHead,
                // The upload fills the socket: sends are cut short and wait.
                Step::Sleep(Duration::from_millis(100)),
                Step::Discard(upload_len as u64),
                Step::ExpectHead,
                Step::reply_str(&reply),
                Step::Drain(Duration::from_secs(5)),
            ]);
            let (origin, config, guard) = front.open(server.addr());
            let port = origin.port;
            let upload: Vec<u8> = (0..upload_len).map(|i| (i % 251) as u8).collect();
            let bodies = path.run_on(origin, config, move |c| {
                c.get("/a").expect("send /a");
                c.send(&Method::POST, "/b", &HeaderMap::new(), Body::Bytes(&upload))
                    .expect("send /b");
                c.get("/c").expect("send /c");
                let mut bodies = Vec::new();
                for _ in 0..3 {
                    c.read_response().expect("a response");
                    bodies.push(c.read_all().expect("a body"));
                }
                bodies
            });
            let at = format!("{path:?} over {front:?}");
            assert_eq!(bodies[2], b"c", "{at}");
            drop(guard);
            let transcript = server.finish();
            transcript.assert_ok();
            let lines = lines_for(port);
            assert_eq!(ids(&lines).len(), 1, "{at}: one connection");
            assert!(
                wire_bytes(&lines, ">>") == transcript.received[0],
                "{at}: the bytes logged as sent are not the bytes the server received"
            );
            assert!(
                wire_bytes(&lines, "<<") == reply.as_bytes(),
                "{at}: the bytes logged as received are not the bytes the server sent"
            );
            let debug = texts(&lines, Level::Debug);
            let id = &ids(&lines)[0];
            let security = if front == Front::Plain {
                "plain TCP)".to_owned()
            } else {
                "TLSv1_".to_owned()
            };
            assert!(
                debug[0].starts_with(&format!("{id} connected to 127.0.0.1:{port} (127.0.0.1:"))
                    && debug[0].contains(&security),
                "{at}: {debug:#?}"
            );
            let requests: Vec<&str> = debug
                .iter()
                .copied()
                .filter(|t| t.contains(" -> "))
                .collect();
            assert_eq!(requests.len(), 3, "{at}: {debug:#?}");
            for (line, request) in requests.iter().zip(["GET /a", "POST /b", "GET /c"]) {
                let sent = format!("{id} -> {request} HTTP/1.1");
                assert!(
                    *line == sent || *line == format!("{sent} (queued)"),
                    "{at}: {line:?}"
                );
            }
            assert_in_order(
                &debug,
                &[
                    format!("{id} <- 200 OK (GET /a)"),
                    format!("{id} <- 200 OK (POST /b)"),
                    format!("{id} <- 200 OK (GET /c)"),
                    format!("{id} socket closed"),
                ],
            );
        }
    }
}

#[test]
fn lifecycle_lines_tell_connect_stale_close_reuse_and_disconnect() {
    capture();
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::reply_str(&ok("a")),
        Step::Close,
        Step::ExpectHead,
        Step::ExpectHead,
        Step::reply_str(&ok("b")),
        Step::Close,
        Step::ExpectHead,
        Step::reply_str(&ok("d")),
        Step::ExpectHead,
        Step::Drain(Duration::from_secs(5)),
    ]);
    let port = server.port();
    let conn = support::connection(port);
    let get =
        |target: &str| conn.send_request(&Method::GET, target, &HeaderMap::new(), Body::Empty);
    get("/a").expect("send /a");
    conn.read_response().expect("response /a");
    conn.read_all().expect("body /a");
    // The server's close reaches the idle connection before the next request.
    std::thread::sleep(Duration::from_millis(200));
    get("/b").expect("send /b");
    get("/c").expect("send /c");
    conn.read_response().expect("response /b");
    conn.read_all().expect("body /b");
    let closed = conn.read_response();
    assert!(
        matches!(&closed, Err(Error::ConnectionClosed { phase: ClosePhase::BeforeResponse, unanswered }) if unanswered.len() == 1),
        "{closed:?}"
    );
    get("/d").expect("send /d");
    conn.read_response().expect("response /d");
    conn.read_all().expect("body /d");
    get("/e").expect("send /e");
    conn.disconnect();
    server.finish().assert_ok();
    drop(conn);

    let lines = lines_for(port);
    let ids = ids(&lines);
    assert_eq!(ids.len(), 3, "{lines:#?}");
    let (one, two, three) = (&ids[0], &ids[1], &ids[2]);
    let debug = texts(&lines, Level::Debug);
    assert_in_order(
        &debug,
        &[
            format!("{one} -> GET /a HTTP/1.1"),
            format!("{one} <- 200 OK (GET /a)"),
            format!(
                "{one} idle connection is stale (closed by the server, or unasked-for bytes): closed"
            ),
            format!("{two} -> GET /b HTTP/1.1"),
            format!("{two} <- 200 OK (GET /b)"),
            format!("{two} closed by the server before the response, 1 unanswered"),
            format!("{three} -> GET /d HTTP/1.1"),
            format!("{three} idle connection reused"),
            format!("{three} -> GET /e HTTP/1.1"),
            format!("{three} disconnected by the caller, 1 in flight forgotten"),
            format!("{three} socket closed"),
        ],
    );
    assert!(
        debug
            .iter()
            .any(|t| t.starts_with(&format!("{two} connected to 127.0.0.1:{port} ("))),
        "{debug:#?}"
    );
}

#[test]
fn a_poisoned_connection_says_why_and_what_is_unanswered_through_every_path() {
    capture();
    for &path in SendPath::ALL {
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::ExpectHead,
            Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n"),
            Step::Drain(Duration::from_secs(5)),
        ]);
        let port = server.port();
        path.run(port, Config::default(), |c| {
            c.get("/a").expect("send /a");
            c.get("/b").expect("send /b");
            let read = c.read_response();
            assert!(matches!(read, Err(Error::Protocol(_))), "{read:?}");
        });
        server.finish().assert_ok();
        let lines = lines_for(port);
        let id = &ids(&lines)[0];
        let debug = texts(&lines, Level::Debug);
        let poisoned = format!("{id} poisoned: invalid response: ");
        assert!(
            debug
                .iter()
                .any(|t| t.starts_with(&poisoned) && t.ends_with(", 1 unanswered")),
            "{path:?}: {debug:#?}"
        );
    }
}

#[test]
fn secret_header_values_never_reach_the_log() {
    capture();
    let secrets = headers(&[
        ("authorization", "Bearer SECRET-AUTH"),
        ("proxy-authorization", "Basic SECRET-PROXY"),
        ("cookie", "id=SECRET-COOKIE"),
        ("x-visible", "shown-value"),
    ]);
    let reply = "HTTP/1.1 200 OK\r\nSet-Cookie: id=SECRET-SET\r\nContent-Length: 2\r\n\r\nok";
    for &front in Front::ALL {
        for path in [SendPath::Blocking, SendPath::Cofun] {
            let server = ScriptedServer::start(vec![
                Step::ExpectHead,
                Step::reply_str(reply),
                Step::Drain(Duration::from_secs(5)),
            ]);
            let (origin, config, guard) = front.open(server.addr());
            let port = origin.port;
            let request_headers = secrets.clone();
            path.run_on(origin, config, move |c| {
                c.send(&Method::GET, "/private", &request_headers, Body::Empty)
                    .expect("send");
                c.read_response().expect("response");
                assert_eq!(c.read_all().expect("body"), b"ok");
            });
            drop(guard);
            let transcript = server.finish();
            transcript.assert_ok();
            assert!(transcript.received_str(0).contains("SECRET-AUTH"));
            let lines = lines_for(port);
            let at = format!("{path:?} over {front:?}");
            assert!(lines.len() > 5, "{at}: {lines:#?}");
            for line in &lines {
                assert!(!line.text.contains("SECRET"), "{at}: {line:?}");
            }
            let id = &ids(&lines)[0];
            let trace = texts(&lines, Level::Trace);
            for field in [
                "-> authorization: <redacted>",
                "-> proxy-authorization: <redacted>",
                "-> cookie: <redacted>",
                "-> x-visible: shown-value",
                "<- set-cookie: <redacted>",
                "<- content-length: 2",
            ] {
                let field = format!("{id} {field}");
                assert!(trace.contains(&field.as_str()), "{at}: {field}: {trace:#?}");
            }
            // The quoted pieces one after the other; a value cut by a line break shows as
            // redacted in both lines.
            let wire = |arrows: &str| -> String {
                let pieces: String = lines
                    .iter()
                    .filter(|l| l.target == "dugong::wire" && l.text.contains(arrows))
                    .filter_map(|l| l.text.split_once('"'))
                    .map(|(_, quoted)| quoted.strip_suffix('"').unwrap_or(quoted))
                    .collect();
                pieces.replace("<redacted><redacted>", "<redacted>")
            };
            let sent = wire(" >> ");
            for field in [
                "authorization: <redacted>\\r\\n",
                "proxy-authorization: <redacted>\\r\\n",
                "cookie: <redacted>\\r\\n",
                "x-visible: shown-value\\r\\n",
            ] {
                assert!(sent.contains(field), "{at}: {field}: {sent}");
            }
            assert!(
                wire(" << ").contains("Set-Cookie: <redacted>\\r\\n"),
                "{at}: {lines:#?}"
            );
        }
    }
}

/// Credentials given in a proxy's URL go out as `Proxy-Authorization` (in each absolute-form
/// request, or in the `CONNECT`), and are redacted in the log like a caller's own header.
#[test]
fn proxy_credentials_from_the_config_never_reach_the_log() {
    capture();
    let server = dugong_harness::LoopbackServer::start();
    for via in [HttpVia::AbsoluteForm, HttpVia::Tunnel] {
        let proxy = ForwardProxy::start();
        let url = format!("http://user:SECRET-PASS@127.0.0.1:{}", proxy.port());
        let config = Config::default()
            .proxy(Proxy::parse(&url).expect("valid").http_via(via))
            .timeout(Some(Duration::from_secs(5)));
        let conn = HttpConnection::open(
            &Origin::new(Scheme::Http, "127.0.0.1", server.port()),
            config,
        )
        .expect("valid");
        conn.send_request(&Method::GET, "/bytes/3", &HeaderMap::new(), Body::Empty)
            .expect("send");
        conn.read_response().expect("head");
        assert_eq!(conn.read_all().expect("body"), b"abc");
        drop(conn);
        let heads = proxy.heads().join("");
        // base64("user:SECRET-PASS"): the credentials did go out.
        assert!(
            heads.contains("dXNlcjpTRUNSRVQtUEFTUw=="),
            "{via:?}: {heads}"
        );
        // The connect line names the origin, and the proxy's address in parentheses.
        let lines = lines_for(server.port());
        assert!(lines.len() > 3, "{via:?}: {lines:#?}");
        let through = format!("(127.0.0.1:{}, plain TCP)", proxy.port());
        assert!(
            lines.iter().any(|l| l.text.contains(&through)),
            "{via:?}: {lines:#?}"
        );
        for line in &lines {
            assert!(
                !line.text.contains("SECRET") && !line.text.contains("dXNlcjpTRUNSRVQtUEFTUw"),
                "{via:?}: {line:?}"
            );
        }
        let id = &ids(&lines)[0];
        // On the wire, in the request or in the CONNECT, under the connection's number.
        let sent = format!("{id} >> ");
        assert!(
            lines.iter().any(|l| l.target == "dugong::wire"
                && l.text.starts_with(&sent)
                && l.text.contains("proxy-authorization: <redacted>")),
            "{via:?}: {lines:#?}"
        );
        if via == HttpVia::Tunnel {
            let debug = texts(&lines, Level::Debug);
            let opened = format!(
                "{id} tunnel to 127.0.0.1:{} open through the proxy",
                server.port()
            );
            assert!(debug.contains(&opened.as_str()), "{debug:#?}");
        }
    }
}
