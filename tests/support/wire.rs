//! Wire-level helpers for `tests/pitfalls.rs`: exact request bytes, canned responses, the
//! driver of "this reply gives that outcome" tables.

use std::time::Duration;

use dugong::{Body, Config, Error, InFlight, PoisonCause, ProtocolError, Response};
use http::{HeaderMap, Method};

use crate::support::{Client, ScriptedServer, SendPath, Step};

/// Slack allowed on top of a deadline before a "finished in time" check fails.
pub(crate) const SLACK: Duration = Duration::from_millis(1500);

/// How long a scripted server waits for the client to close a connection it must abandon.
/// `Drain` returns as soon as the client closes, so correct behaviour never waits this long.
pub(crate) const ABANDON: Duration = Duration::from_secs(3);

/// The exact bytes dugong sends for a request without body framing and without headers.
pub(crate) fn request(port: u16, method: &str, target: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n").into_bytes()
}

/// The exact bytes of `GET target` with no headers.
pub(crate) fn get(port: u16, target: &str) -> Vec<u8> {
    request(port, "GET", target)
}

/// The concatenation of several byte strings.
pub(crate) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `200 OK` with a `Content-Length` body.
pub(crate) fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A request in flight, as listed by `Error::unanswered()`.
pub(crate) fn in_flight(method: Method, target: &str) -> InFlight {
    InFlight {
        method,
        target: target.to_owned(),
    }
}

/// Reads the next response and its whole body, panicking with `what` on error.
pub(crate) fn read_full(conn: &Client<'_>, what: &str) -> (Response, Vec<u8>) {
    let response = conn
        .read_response()
        .unwrap_or_else(|e| panic!("{what}: read_response: {e:?}"));
    let body = conn
        .read_all()
        .unwrap_or_else(|e| panic!("{what}: read_all: {e:?}"));
    (response, body)
}

/// Reads the next response and checks its request, status and body.
#[track_caller]
pub(crate) fn expect_response(conn: &Client<'_>, target: &str, status: u16, body: &[u8]) {
    let (response, got) = read_full(conn, target);
    assert_eq!(
        (response.path.as_str(), response.status.as_u16()),
        (target, status),
        "response matched to the wrong request or wrong status"
    );
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(body),
        "body of {target}"
    );
    assert!(!conn.has_active_response(), "{target}: body still active");
}

/// Sends `GET target` on a connection whose dead link was just reported by a read as
/// `report`: the report was the one and only, so this send must reconnect and go out.
pub(crate) fn get_after_report(conn: &Client<'_>, target: &str, report: &Error) {
    conn.get(target)
        .unwrap_or_else(|e| panic!("send of {target} after the report {report:?} failed: {e:?}"));
}

/// Checks that the connection is poisoned by `cause` (the next read says so, listing
/// `unanswered`), and returns that report.
#[track_caller]
pub(crate) fn expect_poisoned(
    conn: &Client<'_>,
    cause: ProtocolError,
    unanswered: &[InFlight],
    what: &str,
) -> Error {
    let report = conn
        .read_response()
        .expect_err("a poisoned connection must not read another response");
    match &report {
        Error::Poisoned {
            cause: PoisonCause::Protocol(got),
            unanswered: listed,
        } if *got == cause && listed == unanswered => {}
        other => {
            panic!("{what}: expected Poisoned by {cause:?} listing {unanswered:?}, got {other:?}")
        }
    }
    assert!(!conn.has_active_response(), "{what}: body still active");
    report
}

/// What a scripted reply to `GET /a` must produce.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Want {
    /// A response with this status and body; the connection is then reused.
    Body(u16, &'static [u8]),
    /// As `Body(200, body)`, and the response has this header with exactly this raw value.
    Header(&'static str, &'static [u8], &'static [u8]),
    /// The head is rejected with this error; the connection is poisoned.
    HeadError(ProtocolError),
    /// The head is accepted, the body is rejected with this error; the connection is
    /// poisoned.
    BodyError(ProtocolError),
}

/// Plays `reply` to `GET /a` (or `method /a`), checks the outcome against `want`, then checks
/// that `GET /next` works: on the same connection after a good response, on a new one after an
/// error (and that nothing more was sent on the poisoned one).
pub(crate) fn check_reply(
    path: SendPath,
    name: &str,
    config: &Config,
    method: &Method,
    reply: &[u8],
    want: Want,
) {
    let failing = matches!(want, Want::HeadError(_) | Want::BodyError(_));
    let mut steps = vec![Step::ExpectHead, Step::Reply(reply.to_vec())];
    if failing {
        steps.extend([Step::Drain(ABANDON), Step::Accept]);
    }
    steps.extend([Step::ExpectHead, Step::Reply(ok("next"))]);
    let server = ScriptedServer::start(steps);
    let port = server.port();
    let name_owned = name.to_owned();
    let method_owned = method.clone();
    path.run(port, config.clone(), move |conn| {
        play_reply(conn, &name_owned, &method_owned, want);
    });

    let t = server.finish();
    t.assert_ok();
    let first = request(port, method.as_str(), "/a");
    if failing {
        assert_eq!(
            t.connections, 2,
            "{name}: a poisoned connection must not be reused"
        );
        assert_eq!(t.received_str(0), String::from_utf8_lossy(&first), "{name}");
        assert_eq!(
            t.received_str(1),
            String::from_utf8_lossy(&get(port, "/next")),
            "{name}"
        );
    } else {
        assert_eq!(t.connections, 1, "{name}: a good connection must be reused");
        let both = cat(&[&first, &get(port, "/next")]);
        assert_eq!(t.received_str(0), String::from_utf8_lossy(&both), "{name}");
    }
}

/// The client side of [`check_reply`].
fn play_reply(conn: &Client<'_>, name: &str, method: &Method, want: Want) {
    conn.send(method, "/a", &HeaderMap::new(), Body::Empty)
        .unwrap_or_else(|e| panic!("{name}: send: {e:?}"));

    match want {
        Want::Body(status, body) => expect_response(conn, "/a", status, body),
        Want::Header(field, value, body) => {
            let (response, got) = read_full(conn, name);
            assert_eq!(
                response.headers.get(field).map(|v| v.as_bytes()),
                Some(value),
                "{name}: header {field}"
            );
            assert_eq!(got, body, "{name}: body");
        }
        Want::HeadError(e) => {
            let got = conn.read_response();
            assert!(
                matches!(&got, Err(Error::Protocol(p)) if *p == e),
                "{name}: expected Protocol({e:?}), got {got:?}"
            );
            // The request whose response was invalid is this error's subject, not
            // "unanswered" (the server acted on it); nothing was behind it.
            let report = expect_poisoned(conn, e, &[], name);
            get_after_report(conn, "/next", &report);
        }
        Want::BodyError(e) => {
            let response = conn
                .read_response()
                .unwrap_or_else(|err| panic!("{name}: head: {err:?}"));
            assert_eq!(response.path, "/a", "{name}");
            let got = conn.read_all();
            assert!(
                matches!(&got, Err(Error::Protocol(p)) if *p == e),
                "{name}: expected Protocol({e:?}), got {got:?}"
            );
            let report = expect_poisoned(conn, e, &[], name);
            // Nothing was left unanswered, so nothing is re-reported: the next send reconnects.
            conn.get("/next")
                .unwrap_or_else(|err| panic!("{name}: send after {report:?}: {err:?}"));
        }
    }
    let failing = matches!(want, Want::HeadError(_) | Want::BodyError(_));
    if !failing {
        conn.get("/next")
            .unwrap_or_else(|e| panic!("{name}: second send: {e:?}"));
    }
    expect_response(conn, "/next", 200, b"next");
}

/// A listener on 127.0.0.1:0 whose accept queue is full, so a new connection attempt gets
/// no answer (Linux drops SYNs to a listener with a full accept queue). Returns the listener
/// and the connections that filled it; both must stay alive while the queue is to stay full.
#[cfg(target_os = "linux")]
pub(crate) fn full_backlog_listener() -> (socket2::Socket, Vec<std::net::TcpStream>, u16) {
    use socket2::{Domain, Socket, Type};
    use std::net::{SocketAddr, TcpStream};

    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    listener.bind(&any.into()).expect("bind 127.0.0.1:0");
    listener.listen(0).expect("listen");
    let addr = listener
        .local_addr()
        .expect("local addr")
        .as_socket()
        .expect("inet");
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return (listener, fillers, addr.port())
            }
            Err(e) => panic!("filling the accept queue: {e}"),
        }
    }
    panic!("the accept queue never filled");
}
