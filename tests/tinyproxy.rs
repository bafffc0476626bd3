//! Interop with a real forward proxy, Debian's tinyproxy (see `support/tinyproxy.rs`):
//! plain GETs in absolute-form, `CONNECT` tunnels for `http` and `https`, pipelining through
//! them, and its 407 without credentials. Without tinyproxy the tests print `SKIPPED` and
//! pass, except under CI, where they fail.

mod support;
#[path = "support/tinyproxy.rs"]
mod tinyproxy;

use std::time::Duration;

use dugong::{Body, Config, Error, HttpConnection, HttpVia, Origin, Proxy, Scheme};
use http::{HeaderMap, Method, StatusCode};
use support::{pattern, LoopbackServer, SendPath};
use tinyproxy::{Tinyproxy, PASSWORD, USER};

fn proxy(tp: &Tinyproxy) -> Proxy {
    Proxy::new("127.0.0.1", tp.port()).basic_auth(USER, PASSWORD)
}

fn config_via(proxy: Proxy) -> Config {
    Config::default()
        .proxy(proxy)
        .connect_timeout(Some(Duration::from_secs(5)))
        .timeout(Some(Duration::from_secs(5)))
}

fn get(conn: &HttpConnection, target: &str) -> Result<(StatusCode, Vec<u8>), Error> {
    conn.send_request(&Method::GET, target, &HeaderMap::new(), Body::Empty)?;
    let status = conn.read_response()?.status;
    Ok((status, conn.read_all()?))
}

/// A plain GET through tinyproxy with credentials; without them, its 407 is an ordinary
/// response (a forward proxy answers the request itself).
#[test]
fn plain_get_through_tinyproxy() {
    let Some(tp) = Tinyproxy::start() else { return };
    let server = LoopbackServer::start();
    let origin = Origin::new(Scheme::Http, "127.0.0.1", server.port());
    let conn = HttpConnection::open(&origin, config_via(proxy(&tp))).expect("valid");
    assert_eq!(
        get(&conn, "/bytes/5").expect("through tinyproxy"),
        (StatusCode::OK, b"abcde".to_vec())
    );
    let anonymous = config_via(Proxy::new("127.0.0.1", tp.port()));
    let conn = HttpConnection::open(&origin, anonymous).expect("valid");
    let (status, _) = get(&conn, "/bytes/5").expect("an answer");
    assert_eq!(status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
}

/// tinyproxy answers one absolute-form request per connection and then closes: requests
/// pipelined behind it come back as unanswered, in order, and go out again on a new
/// connection through the proxy, until all 100 bodies have arrived byte-exact.
#[test]
fn plain_pipelining_through_tinyproxy_resends_the_unanswered() {
    let Some(tp) = Tinyproxy::start() else { return };
    let server = LoopbackServer::start();
    let origin = Origin::new(Scheme::Http, "127.0.0.1", server.port());
    let conn = HttpConnection::open(&origin, config_via(proxy(&tp))).expect("valid");
    let mut pending: Vec<String> = (0..100).map(|i| format!("/bytes/{}", i * 101)).collect();
    let mut done = 0;
    for _round in 0..200 {
        if pending.is_empty() {
            break;
        }
        for target in &pending {
            conn.send_request(&Method::GET, target, &HeaderMap::new(), Body::Empty)
                .expect("send");
        }
        let mut answered = 0;
        let resent = loop {
            match conn.read_response() {
                Ok(resp) => {
                    let n: usize = resp.path[7..].parse().expect("size");
                    assert_eq!(conn.read_all().expect("body"), pattern(n), "{}", resp.path);
                    answered += 1;
                }
                Err(e @ Error::ConnectionClosed { .. }) => {
                    break e.unanswered().iter().map(|r| r.target.clone()).collect();
                }
                Err(e) => panic!("after {done} answers: {e}"),
            }
            if answered == pending.len() {
                break Vec::new();
            }
        };
        assert_eq!(
            pending[answered..],
            resent[..],
            "unanswered are reported in order"
        );
        done += answered;
        pending = resent;
    }
    assert_eq!(done, 100);
}

/// Pipelining through tinyproxy's `CONNECT` tunnel, for an `http` origin, through every
/// send path.
#[test]
fn pipelining_through_a_tinyproxy_tunnel() {
    let Some(tp) = Tinyproxy::start() else { return };
    let server = LoopbackServer::start();
    for &path in SendPath::ALL {
        let config = config_via(proxy(&tp).http_via(HttpVia::Tunnel));
        path.run(server.port(), config, |conn| {
            let targets: Vec<String> = (0..100)
                .map(|i| format!("/chunked/{}/77", i * 89))
                .collect();
            support::pipeline_and_check(conn, &targets);
        });
    }
    assert!(server.errors().is_empty(), "{:?}", server.errors());
}

/// HTTPS through tinyproxy's `CONNECT`, pipelined, to the harness TLS server; without
/// credentials the tunnel is refused with a typed 407 carrying tinyproxy's challenge.
#[cfg(feature = "tls")]
#[test]
fn https_through_tinyproxy_connect() {
    use dugong::rustls::RootCertStore;
    use dugong::TlsConfig;
    use dugong_harness::{CloseMode, TestCa, TlsTerminator, Validity};

    let Some(tp) = Tinyproxy::start() else { return };
    let server = LoopbackServer::start();
    let ca = TestCa::new();
    let identity = ca.issue(&["127.0.0.1"], Validity::Current);
    let tls = TlsTerminator::start(server.addr(), identity, CloseMode::CloseNotify);
    let mut roots = RootCertStore::empty();
    roots.add(ca.root()).expect("a valid root");
    let tls_config = TlsConfig::with_root_certificates(roots).expect("tls config");
    let origin = Origin::new(Scheme::Https, "127.0.0.1", tls.port());

    let conn = HttpConnection::open(&origin, config_via(proxy(&tp)).tls(tls_config.clone()))
        .expect("valid");
    let targets: Vec<String> = (0..100).map(|i| format!("/bytes/{}", i * 997)).collect();
    for target in &targets {
        conn.send_request(&Method::GET, target, &HeaderMap::new(), Body::Empty)
            .expect("send");
    }
    for (i, _) in targets.iter().enumerate() {
        conn.read_response().expect("head");
        assert_eq!(conn.read_all().expect("body"), pattern(i * 997));
    }

    let anonymous = config_via(Proxy::new("127.0.0.1", tp.port())).tls(tls_config);
    let conn = HttpConnection::open(&origin, anonymous).expect("valid");
    match conn.connect() {
        Err(Error::ProxyRefused {
            status,
            proxy_authenticate,
        }) => {
            assert_eq!(status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
            assert_eq!(proxy_authenticate, ["Basic realm=\"Tinyproxy\""]);
        }
        other => panic!("expected a 407, got {other:?}"),
    }
}
