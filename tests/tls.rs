#![cfg(feature = "tls")]
//! HTTPS: the one driver over a rustls session, through every send path, against a TLS
//! terminator in front of the harness servers, with certificates made at test time.

mod support;

use std::time::Duration;

use dugong::rustls::pki_types::CertificateDer;
use dugong::rustls::{CertificateError, RootCertStore};
use dugong::{Body, ClosePhase, Config, Error, HttpConnection, Origin, Scheme, TlsConfig};
use dugong_harness::{CloseMode, Identity, TestCa, TlsTerminator, Validity};
use http::{HeaderMap, Method, StatusCode};
use support::{pattern, LoopbackServer, ScriptedServer, SendPath, Step};

/// A client configuration that trusts `root` only.
fn trusting(root: CertificateDer<'static>) -> Config {
    let mut roots = RootCertStore::empty();
    roots.add(root).expect("a valid root");
    let tls = TlsConfig::with_root_certificates(roots).expect("tls config");
    Config::default()
        .tls(tls)
        .connect_timeout(Some(Duration::from_secs(5)))
}

/// A CA, a certificate from it for 127.0.0.1 and localhost, and a client that trusts it.
fn pki() -> (Identity, Config) {
    let ca = TestCa::new();
    let identity = ca.issue(&["127.0.0.1", "localhost"], Validity::Current);
    (identity, trusting(ca.root()))
}

fn https(port: u16) -> Origin {
    Origin::new(Scheme::Https, "127.0.0.1", port)
}

/// Pipelined GETs of many sizes, plain and chunked, come back byte-exact over TLS through
/// every send path; uploads are echoed.
#[test]
fn pipelining_over_tls_through_every_path() {
    let server = LoopbackServer::start();
    let (identity, config) = pki();
    let tls = TlsTerminator::start(server.addr(), identity, CloseMode::CloseNotify);
    for &path in SendPath::ALL {
        path.run_on(https(tls.port()), config.clone(), |conn| {
            let targets: Vec<String> = (0..60)
                .map(|i| match i % 3 {
                    0 => format!("/bytes/{}", i * 997),
                    1 => format!("/chunked/{}/333", i * 1013),
                    _ => format!("/bytes/{}", 200_000 + i),
                })
                .collect();
            support::pipeline_and_check(conn, &targets);
            let upload = pattern(3 << 20);
            conn.send(
                &Method::PUT,
                "/echo",
                &HeaderMap::new(),
                Body::Bytes(&upload),
            )
            .expect("upload");
            assert_eq!(conn.read_response().expect("head").status, StatusCode::OK);
            assert_eq!(conn.read_all().expect("echo"), upload);
            assert!(!conn.response_pending());
        });
    }
    assert!(server.errors().is_empty(), "{:?}", server.errors());
}

/// `HttpConnection::from_url` with `https://` and `new_tls` reach the same server; the
/// `Host` header leaves out the default port only (443), so here it carries the port.
#[test]
fn https_urls_and_constructors() {
    let server = ScriptedServer::start(vec![
        Step::expect_str("GET /x?y HTTP/1.1\r\nhost: localhost:"),
        Step::Drain(Duration::from_millis(300)),
    ]);
    let (identity, config) = pki();
    let tls = TlsTerminator::start(server.addr(), identity, CloseMode::CloseNotify);
    let url = format!("https://localhost:{}/x?y", tls.port());
    let (origin, target) = Origin::parse_url(&url).expect("url");
    let conn = HttpConnection::open(&origin, config).expect("conn");
    conn.send_request(&Method::GET, &target, &HeaderMap::new(), Body::Empty)
        .expect("sent over tls");
    drop(conn);
    server.finish().assert_ok();
    assert!(HttpConnection::from_url("https://127.0.0.1:1/").is_ok());
    assert!(HttpConnection::new_tls("127.0.0.1", 1).is_ok());
}

/// The handshake sends the host name by SNI (none for an IP address, which SNI cannot
/// carry) and agrees on ALPN `http/1.1`.
#[test]
fn sni_names_the_host_and_alpn_agrees_on_http_1_1() {
    let server = LoopbackServer::start();
    let (identity, config) = pki();
    let tls = TlsTerminator::start(server.addr(), identity, CloseMode::CloseNotify);
    for host in ["localhost", "127.0.0.1"] {
        let origin = Origin::new(Scheme::Https, host, tls.port());
        let conn = HttpConnection::open(&origin, config.clone()).expect("conn");
        conn.send_request(&Method::GET, "/bytes/2", &HeaderMap::new(), Body::Empty)
            .expect("sent");
        conn.read_response().expect("head");
        assert_eq!(conn.read_all().expect("body"), b"ab");
    }
    let seen: Vec<_> = tls
        .handshakes()
        .into_iter()
        .map(|h| (h.server_name, h.alpn))
        .collect();
    let alpn = Some(b"http/1.1".to_vec());
    assert_eq!(
        seen,
        [(Some("localhost".to_owned()), alpn.clone()), (None, alpn)]
    );
}

/// What `connect` reports for a server whose certificate the client must refuse.
fn refused(identity: Identity, config: Config, host: &str) -> Error {
    let server = LoopbackServer::start();
    let tls = TlsTerminator::start(server.addr(), identity, CloseMode::CloseNotify);
    let conn =
        HttpConnection::open(&Origin::new(Scheme::Https, host, tls.port()), config).expect("conn");
    let error = conn.connect().expect_err("the certificate is refused");
    assert_eq!(server.requests_served(), 0, "no request went out");
    error
}

#[test]
fn certificate_problems_are_typed_tls_errors() {
    let ca = TestCa::new();
    let good = ca.issue(&["127.0.0.1", "localhost"], Validity::Current);
    let cases = [
        (
            "unknown issuer",
            good.clone(),
            trusting(TestCa::new().root()),
            "127.0.0.1",
        ),
        (
            "wrong name",
            ca.issue(&["other.example"], Validity::Current),
            trusting(ca.root()),
            "localhost",
        ),
        (
            "wrong address",
            good.clone(),
            trusting(ca.root()),
            "127.0.0.2",
        ),
        (
            "expired",
            ca.issue(&["127.0.0.1"], Validity::Expired),
            trusting(ca.root()),
            "127.0.0.1",
        ),
    ];
    for (what, identity, config, host) in cases {
        if host == "127.0.0.2" {
            // The terminator listens on 127.0.0.1 only; the name check is what matters, so
            // the address case connects to 127.0.0.1 with a certificate for 127.0.0.2.
            let wrong = ca.issue(&["127.0.0.2"], Validity::Current);
            let error = refused(wrong, config, "127.0.0.1");
            assert!(
                matches!(
                    &error,
                    Error::Tls(dugong::rustls::Error::InvalidCertificate(
                        CertificateError::NotValidForName
                            | CertificateError::NotValidForNameContext { .. }
                    ))
                ),
                "{what}: {error:?}"
            );
            continue;
        }
        let error = refused(identity, config, host);
        let Error::Tls(dugong::rustls::Error::InvalidCertificate(cause)) = &error else {
            panic!("{what}: expected a certificate error, got {error:?}");
        };
        let expected = match what {
            "unknown issuer" => matches!(cause, CertificateError::UnknownIssuer),
            "wrong name" => matches!(
                cause,
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ),
            _ => matches!(
                cause,
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            ),
        };
        assert!(expected, "{what}: {cause:?}");
        assert!(
            std::error::Error::source(&error).is_some(),
            "the cause is kept"
        );
    }
}

/// A close-delimited body is complete only with `close_notify`; without it, it is a
/// truncation. A framed body cut short is `ConnectionClosed { InBody }` either way.
#[test]
fn truncation_is_detected() {
    let close_delimited = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello";
    let framed_cut = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello";
    for (reply, mode, want) in [
        (
            close_delimited,
            CloseMode::CloseNotify,
            Ok(b"hello".to_vec()),
        ),
        (close_delimited, CloseMode::Abrupt, Err(ClosePhase::InBody)),
        (framed_cut, CloseMode::CloseNotify, Err(ClosePhase::InBody)),
        (framed_cut, CloseMode::Abrupt, Err(ClosePhase::InBody)),
    ] {
        let server =
            ScriptedServer::start(vec![Step::ExpectHead, Step::reply_str(reply), Step::Close]);
        let (identity, config) = pki();
        let tls = TlsTerminator::start(server.addr(), identity, mode);
        let conn = HttpConnection::open(&https(tls.port()), config).expect("conn");
        conn.send_request(&Method::GET, "/t", &HeaderMap::new(), Body::Empty)
            .expect("send");
        conn.read_response().expect("head");
        match (conn.read_all(), want) {
            (Ok(body), Ok(want)) => assert_eq!(body, want, "{mode:?}"),
            (Err(Error::ConnectionClosed { phase, .. }), Err(want)) => {
                assert_eq!(phase, want, "{reply:?} {mode:?}")
            }
            (got, want) => panic!("{reply:?} {mode:?}: got {got:?}, want {want:?}"),
        }
        server.finish().assert_ok();
    }
}

/// A plain-HTTP server on the port a client expects TLS on: a clear TLS error, not a hang.
#[test]
fn plain_http_on_the_tls_port_is_a_clear_error() {
    let server = ScriptedServer::start(vec![
        Step::reply_str("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        Step::Drain(Duration::from_millis(500)),
    ]);
    let (_, config) = pki();
    let conn = HttpConnection::open(&https(server.port()), config).expect("conn");
    match conn.connect() {
        Err(Error::Tls(_)) => {}
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

/// A server that accepts TCP and never speaks TLS: the handshake is bounded by the connect
/// timeout.
#[test]
fn a_silent_server_times_out_the_handshake() {
    let server = ScriptedServer::start(vec![Step::Drain(Duration::from_secs(3))]);
    let (_, config) = pki();
    let config = config.connect_timeout(Some(Duration::from_millis(300)));
    let conn = HttpConnection::open(&https(server.port()), config).expect("conn");
    match conn.connect() {
        Err(Error::Timeout { operation, .. }) => {
            assert_eq!(operation, dugong::Operation::Connect)
        }
        other => panic!("expected a connect timeout, got {other:?}"),
    }
}

/// Response bytes already decrypted and held by the TLS session count as available response
/// data, though they are not in the connection's buffer and the socket is not readable:
/// `has_buffered_data` says so, and a cofunction lets its loop body read them before sending.
#[test]
fn plaintext_held_by_the_tls_session_is_response_data() {
    // The first response fills the connection's initial 4 KiB read exactly, so the second,
    // sent in the same TLS record, stays decrypted inside the session.
    let head = |len: usize| format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
    let mut body_len = 4096 - head(4000).len();
    while head(body_len).len() + body_len != 4096 {
        body_len -= 1;
    }
    let mut both = head(body_len).into_bytes();
    both.extend(std::iter::repeat_n(b'x', body_len));
    both.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::ExpectHead,
        Step::Reply(both),
        Step::ExpectHead,
        Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nthird"),
    ]);
    let (identity, config) = pki();
    let tls = TlsTerminator::start(server.addr(), identity, CloseMode::CloseNotify);
    let conn = HttpConnection::open(&https(tls.port()), config).expect("conn");
    let h = HeaderMap::new();
    for target in ["/1", "/2"] {
        conn.send_request(&Method::GET, target, &h, Body::Empty)
            .expect("send");
    }
    conn.read_response().expect("head 1");
    assert_eq!(conn.read_all().expect("body 1").len(), body_len);
    assert!(
        conn.has_buffered_data(),
        "response 2 waits in the TLS session"
    );
    let mut cofun = conn
        .send_request_cofun(&Method::GET, "/3", &h, Body::Empty)
        .expect("cofun");
    assert!(
        matches!(cofun.next(), Some(Ok(()))),
        "the loop body gets response 2 before /3 goes out"
    );
    assert_eq!(conn.read_response().expect("head 2").path, "/2");
    assert_eq!(conn.read_all().expect("body 2"), b"ok");
    for step in cofun {
        step.expect("send /3");
    }
    assert_eq!(conn.read_response().expect("head 3").path, "/3");
    assert_eq!(conn.read_all().expect("body 3"), b"third");
    server.finish().assert_ok();
}
