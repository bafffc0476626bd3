//! Proxies on the wire: absolute-form requests to a forward proxy, `CONNECT` tunnels (for
//! `https` always, for `http` on request), credentials to the proxy only, the proxy's
//! refusals and failures as typed errors, pipelining and every send path through both kinds,
//! reconnects through the proxy again; and the `NO_PROXY` and environment rules.

mod support;

use std::time::Duration;

use dugong::{
    Body, Config, Error, HttpConnection, HttpVia, NoProxy, Origin, Proxies, Proxy, Scheme,
    TunnelFailure,
};
use dugong_harness::{ForwardProxy, ProxyAnswer};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use support::{pattern, LoopbackServer, ScriptedServer, SendPath, Step};

/// `Basic base64("user:pa@ss")`: what the proxy must see for `user:pa%40ss`.
const CREDENTIALS: &str = "proxy-authorization: Basic dXNlcjpwYUBzcw==";

/// The harness proxy as a [`Proxy`] with credentials `user:pa@ss` (percent-encoded in the
/// URL).
fn proxy_to(proxy: &ForwardProxy) -> Proxy {
    Proxy::parse(&format!("http://user:pa%40ss@127.0.0.1:{}", proxy.port())).expect("valid url")
}

fn config_via(proxy: Proxy) -> Config {
    Config::default()
        .proxy(proxy)
        .connect_timeout(Some(Duration::from_secs(5)))
        .timeout(Some(Duration::from_secs(5)))
}

fn http(host: &str, port: u16) -> Origin {
    Origin::new(Scheme::Http, host, port)
}

/// A GET through a forward proxy goes out in absolute-form, with the origin's `Host` and the
/// proxy's credentials; the proxy forwards it and the answer comes back.
#[test]
fn plain_proxy_gets_absolute_form_with_credentials() {
    let server = LoopbackServer::start();
    let proxy = ForwardProxy::start();
    let conn = HttpConnection::open(
        &http("127.0.0.1", server.port()),
        config_via(proxy_to(&proxy)),
    )
    .expect("valid");
    conn.send_request(&Method::GET, "/bytes/3?q=1", &HeaderMap::new(), Body::Empty)
        .expect("send");
    let resp = conn.read_response().expect("head");
    assert_eq!(
        (resp.status, resp.path.as_str()),
        (StatusCode::OK, "/bytes/3?q=1")
    );
    assert_eq!(conn.read_all().expect("body"), b"abc");
    let port = server.port();
    assert_eq!(
        proxy.heads(),
        [format!(
            "GET http://127.0.0.1:{port}/bytes/3?q=1 HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\
             {CREDENTIALS}\r\n\r\n"
        )]
    );
    assert!(proxy.errors().is_empty(), "{:?}", proxy.errors());
}

/// With `HttpVia::Tunnel`, an `http` origin gets `CONNECT host:port HTTP/1.1` with `Host`
/// and the credentials; the requests go through the tunnel in origin-form, and the origin
/// never sees the credentials.
#[test]
fn connect_request_line_host_and_credentials_to_the_proxy_only() {
    let origin = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        Step::Drain(Duration::from_secs(2)),
    ]);
    let proxy = ForwardProxy::start();
    let config = config_via(proxy_to(&proxy).http_via(HttpVia::Tunnel));
    let port = origin.port();
    let conn = HttpConnection::open(&http("127.0.0.1", port), config).expect("valid");
    conn.send_request(&Method::GET, "/a", &HeaderMap::new(), Body::Empty)
        .expect("send");
    conn.read_response().expect("head");
    assert_eq!(conn.read_all().expect("body"), b"ok");
    drop(conn);
    assert_eq!(
        proxy.heads(),
        [format!(
            "CONNECT 127.0.0.1:{port} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n{CREDENTIALS}\r\n\r\n"
        )]
    );
    let transcript = origin.finish();
    transcript.assert_ok();
    assert_eq!(
        transcript.received_str(0),
        format!("GET /a HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n")
    );
}

/// An IPv6 literal origin is bracketed in the `CONNECT` target, its `Host`, and the
/// absolute-form target. (The harness proxy answers 502 when `[::1]` does not answer, which
/// is all this needs: the bytes it received.)
#[test]
fn ipv6_literals_are_bracketed() {
    let proxy = ForwardProxy::start();
    let tunnel = config_via(Proxy::new("127.0.0.1", proxy.port()).http_via(HttpVia::Tunnel));
    let conn = HttpConnection::open(&http("::1", 9), tunnel).expect("valid");
    match conn.connect() {
        Err(Error::ProxyRefused { status, .. }) => assert_eq!(status, StatusCode::BAD_GATEWAY),
        other => panic!("expected a 502 refusal, got {other:?}"),
    }
    let forward = config_via(Proxy::new("127.0.0.1", proxy.port()));
    let conn = HttpConnection::open(&http("[::1]", 9), forward).expect("valid");
    conn.send_request(&Method::GET, "/x", &HeaderMap::new(), Body::Empty)
        .expect("send");
    assert_eq!(
        conn.read_response().expect("head").status,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        proxy.heads(),
        [
            "CONNECT [::1]:9 HTTP/1.1\r\nhost: [::1]:9\r\n\r\n",
            "GET http://[::1]:9/x HTTP/1.1\r\nhost: [::1]:9\r\n\r\n",
        ]
    );
}

/// A 407 is `Error::ProxyRefused` with the status and every `Proxy-Authenticate` value,
/// through every send path; another refusal carries its status.
#[test]
fn refusals_are_typed_errors_with_the_proxy_authenticate_values() {
    let answer = "HTTP/1.1 407 Proxy Authentication Required\r\n\
        Proxy-Authenticate: Basic realm=\"dugong\"\r\nProxy-Authenticate: Negotiate\r\n\
        Content-Length: 0\r\n\r\n";
    let proxy = ForwardProxy::start_with(ProxyAnswer::Refuse(answer.into()));
    for &path in SendPath::ALL {
        let config = config_via(Proxy::new("127.0.0.1", proxy.port()).http_via(HttpVia::Tunnel));
        path.run_on(http("127.0.0.1", 9), config, |conn| match conn.get("/") {
            Err(Error::ProxyRefused {
                status,
                proxy_authenticate,
            }) => {
                assert_eq!(status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
                assert_eq!(
                    proxy_authenticate,
                    [
                        HeaderValue::from_static("Basic realm=\"dugong\""),
                        HeaderValue::from_static("Negotiate"),
                    ]
                );
            }
            other => panic!("expected a 407, got {other:?}"),
        });
    }
    let forbidden = ForwardProxy::start_with(ProxyAnswer::Refuse(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope".to_vec(),
    ));
    let config = config_via(Proxy::new("127.0.0.1", forbidden.port()).http_via(HttpVia::Tunnel));
    let conn = HttpConnection::open(&http("127.0.0.1", 9), config).expect("valid");
    let got = conn.connect();
    assert!(
        matches!(&got, Err(Error::ProxyRefused { status, proxy_authenticate })
            if *status == StatusCode::FORBIDDEN && proxy_authenticate.is_empty()),
        "{got:?}"
    );
}

/// A proxy that closes during `CONNECT`, answers garbage, or never answers: a typed error,
/// never a hang; the connect timeout covers the exchange.
#[test]
fn a_failing_proxy_is_a_typed_error_never_a_hang() {
    type Expected = fn(&Error) -> bool;
    let cases: [(&[u8], Expected); 3] = [
        (b"", |e| {
            matches!(e, Error::ProxyTunnel(TunnelFailure::Closed))
        }),
        (b"HTTP/1.1 200 Conn", |e| {
            matches!(e, Error::ProxyTunnel(TunnelFailure::Closed))
        }),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", |e| {
            matches!(e, Error::ProxyTunnel(TunnelFailure::Protocol(_)))
        }),
    ];
    for (answer, expected) in cases {
        let proxy = ForwardProxy::start_with(ProxyAnswer::Refuse(answer.to_vec()));
        let config = config_via(Proxy::new("127.0.0.1", proxy.port()).http_via(HttpVia::Tunnel));
        let conn = HttpConnection::open(&http("127.0.0.1", 9), config).expect("valid");
        match conn.connect() {
            Err(e) if expected(&e) => {}
            other => panic!("answer {answer:?}: got {other:?}"),
        }
    }
    // A "proxy" that reads the CONNECT and says nothing.
    let silent = ScriptedServer::start(vec![Step::ExpectHead, Step::Stall(Duration::from_secs(5))]);
    let config = config_via(Proxy::new("127.0.0.1", silent.port()).http_via(HttpVia::Tunnel))
        .connect_timeout(Some(Duration::from_millis(300)));
    let conn = HttpConnection::open(&http("127.0.0.1", 9), config).expect("valid");
    let started = std::time::Instant::now();
    match conn.connect() {
        Err(Error::Timeout { operation, .. }) => assert_eq!(operation, dugong::Operation::Connect),
        other => panic!("expected a connect timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Bytes that arrive with the proxy's answer belong to the tunnel: over plain HTTP they are
/// the start of the stream (here, a response), not lost.
#[test]
fn bytes_after_the_connect_answer_are_kept() {
    let origin = ScriptedServer::start(vec![Step::Drain(Duration::from_secs(2))]);
    let answer = b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly";
    let proxy = ForwardProxy::start_with(ProxyAnswer::TunnelAfter(answer.to_vec()));
    let config = config_via(Proxy::new("127.0.0.1", proxy.port()).http_via(HttpVia::Tunnel));
    let conn = HttpConnection::open(&http("127.0.0.1", origin.port()), config).expect("valid");
    conn.send_request(&Method::GET, "/", &HeaderMap::new(), Body::Empty)
        .expect("send");
    conn.read_response().expect("head");
    assert_eq!(conn.read_all().expect("body"), b"early");
}

/// 100 pipelined GETs, bodies byte-checked, through every send path and each kind of proxy.
#[test]
fn pipelining_through_both_kinds_of_proxy() {
    let server = LoopbackServer::start();
    let proxy = ForwardProxy::start();
    for via in [HttpVia::AbsoluteForm, HttpVia::Tunnel] {
        for &path in SendPath::ALL {
            let config = config_via(proxy_to(&proxy).http_via(via));
            path.run_on(http("127.0.0.1", server.port()), config, pipeline_100);
        }
    }
    let heads = proxy.heads();
    let connects = heads.iter().filter(|h| h.starts_with("CONNECT ")).count();
    assert_eq!(connects, SendPath::ALL.len(), "one tunnel per connection");
    assert_eq!(heads.len(), SendPath::ALL.len() * 101);
    assert!(proxy.errors().is_empty(), "{:?}", proxy.errors());
    assert!(server.errors().is_empty(), "{:?}", server.errors());
}

/// Uploads in absolute-form, with a length and chunked, through every send path: the
/// proxy forwards the bodies and the echoes come back whole.
#[test]
fn uploads_through_a_forward_proxy() {
    let server = LoopbackServer::start();
    let proxy = ForwardProxy::start();
    for &path in SendPath::ALL {
        let config = config_via(proxy_to(&proxy));
        path.run_on(http("127.0.0.1", server.port()), config, |conn| {
            let upload = pattern(300_000);
            for body in [Body::Bytes(&upload), Body::Chunked] {
                conn.send(&Method::PUT, "/echo", &HeaderMap::new(), body)
                    .expect("send");
                if body == Body::Chunked {
                    conn.stream(&mut &upload[..]).expect("chunked body");
                }
                assert_eq!(conn.read_response().expect("head").status, StatusCode::OK);
                assert_eq!(conn.read_all().expect("echo"), upload);
            }
        });
    }
    assert!(proxy.errors().is_empty(), "{:?}", proxy.errors());
}

/// 100 GETs of assorted sizes sent before any is read, then every body checked.
fn pipeline_100(conn: &support::Client<'_>) {
    let targets: Vec<String> = (0..100)
        .map(|i| match i % 3 {
            0 => format!("/bytes/{}", i * 37),
            1 => format!("/chunked/{}/100", i * 53),
            _ => format!("/bytes/{}", 40_000 + i),
        })
        .collect();
    support::pipeline_and_check(conn, &targets);
}

/// After a response that closes the connection, the next request reconnects through the
/// proxy again: a second absolute-form connection, or a second tunnel.
#[test]
fn reconnects_go_through_the_proxy_again() {
    let server = LoopbackServer::start();
    for via in [HttpVia::AbsoluteForm, HttpVia::Tunnel] {
        let proxy = ForwardProxy::start();
        let config = config_via(Proxy::new("127.0.0.1", proxy.port()).http_via(via));
        let conn = HttpConnection::open(&http("127.0.0.1", server.port()), config).expect("valid");
        for (target, body) in [("/close/4", "abcd"), ("/bytes/2", "ab")] {
            conn.send_request(&Method::GET, target, &HeaderMap::new(), Body::Empty)
                .expect("send");
            conn.read_response().expect("head");
            assert_eq!(conn.read_all().expect("body"), body.as_bytes(), "{via:?}");
        }
        assert_eq!(proxy.connections(), 2, "{via:?}");
        let port = server.port();
        let want: Vec<String> = match via {
            HttpVia::Tunnel => vec![format!("CONNECT 127.0.0.1:{port} HTTP/1.1"); 2],
            _ => ["/close/4", "/bytes/2"]
                .map(|t| format!("GET http://127.0.0.1:{port}{t} HTTP/1.1"))
                .to_vec(),
        };
        let got: Vec<String> = proxy
            .heads()
            .iter()
            .map(|h| h.lines().next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(got, want);
    }
}

/// A host listed in `NO_PROXY` goes direct: the proxy sees nothing.
#[test]
fn no_proxy_hosts_go_direct() {
    let server = LoopbackServer::start();
    let proxy = ForwardProxy::start();
    let env = [
        (
            "http_proxy".to_owned(),
            format!("http://127.0.0.1:{}", proxy.port()),
        ),
        ("NO_PROXY".to_owned(), "localhost, 127.0.0.1".to_owned()),
    ];
    let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let config = Config::default().proxies(Proxies::from_lookup(lookup).expect("valid"));
    let conn = HttpConnection::open(&http("127.0.0.1", server.port()), config).expect("valid");
    conn.send_request(&Method::GET, "/bytes/1", &HeaderMap::new(), Body::Empty)
        .expect("send");
    conn.read_response().expect("head");
    assert_eq!(conn.read_all().expect("body"), b"a");
    assert_eq!(proxy.connections(), 0);
}

/// curl's `NO_PROXY` rules, one row per (list, host, goes direct).
#[test]
fn no_proxy_rule_table() {
    let rows: &[(&str, &str, bool)] = &[
        ("", "example.com", false),
        ("*", "example.com", true),
        ("*", "127.0.0.1", true),
        ("*", "::1", true),
        (" * ", "example.com", true),
        ("*", "", false),
        ("example.com", "example.com", true),
        ("example.com", "www.example.com", true),
        ("example.com", "a.b.example.com", true),
        ("example.com", "badexample.com", false),
        ("example.com", "example.com.evil", false),
        (".example.com", "example.com", true),
        (".example.com", "www.example.com", true),
        (".example.com", "badexample.com", false),
        ("..example.com", "www.example.com", false),
        ("EXAMPLE.com", "www.Example.COM", true),
        ("example.com.", "example.com", true),
        ("example.com", "example.com.", true),
        // An entry with a port matches nothing, as in curl.
        ("example.com:8080", "example.com", false),
        ("a.test, b.test ,c.test", "b.test", true),
        ("a.test,,c.test", "c.test", true),
        ("a.test,b.test", "d.test", false),
        ("\ta.test\t,\tb.test", "b.test", true),
        // A blank inside an entry ends the list, as in curl.
        ("localhost .example.com", "localhost", true),
        ("localhost .example.com", "www.example.com", false),
        ("a.test b.test, c.test", "c.test", false),
        ("localhost", "localhost", true),
        ("127.0.0.1", "127.0.0.1", true),
        ("127.0.0.1", "127.0.0.10", false),
        ("127.0.0.1", "127.0.0.1.", true),
        ("127.0.0.0/8", "127.0.0.1.", true),
        ("0.0.1", "127.0.0.1", false),
        ("127.0.0.1:3128", "127.0.0.1", false),
        ("10.0.0.1:80", "10.0.0.1", false),
        // IPv4 networks.
        ("10.0.0.0/8", "10.1.2.3", true),
        ("10.0.0.0/8", "10.255.255.255", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("192.168.1.0/24", "192.168.1.200", true),
        ("192.168.1.0/24", "192.168.2.1", false),
        ("192.168.1.7/32", "192.168.1.7", true),
        ("192.168.1.7/32", "192.168.1.8", false),
        ("192.168.1.7/08", "192.1.1.1", true),
        // `/0` is no prefix to curl: the whole address must match.
        ("0.0.0.0/0", "10.1.2.3", false),
        ("10.1.2.3/0", "10.1.2.3", true),
        ("10.0.0.0/33", "10.0.0.0", false),
        ("10.0.0.0/8a", "10.1.2.3", false),
        ("10.0.0.0/+8", "10.1.2.3", false),
        ("10.0.0.0/", "10.0.0.0", false),
        ("10.0.0.0/8", "10.example", false),
        ("::1", "::1", true),
        ("[::1]", "::1", true),
        ("[::1]:443", "::1", false),
        ("::1", "[::1]", true),
        ("::1", "::2", false),
        ("fe80::1", "FE80::1", true),
        // IPv6 networks.
        ("fe80::/10", "fe80::1", true),
        ("fe80::/10", "febf::1", true),
        ("fe80::/10", "fec0::1", false),
        ("[fe80::]/10", "[fe80::1]", true),
        ("2001:db8::/65", "2001:db8::8000:0:0:1", false),
        ("2001:db8::/65", "2001:db8::7fff:0:0:1", true),
        ("::1/128", "::1", true),
        ("::1/128", "::2", false),
        ("::1/129", "::1", false),
        // Neither family maps to the other.
        ("::ffff:10.0.0.1", "10.0.0.1", false),
        ("::ffff:0:0/96", "10.0.0.1", false),
        ("10.0.0.1", "::ffff:10.0.0.1", false),
        ("10.0.0.0/8", "::1", false),
        ("*.example.com", "www.example.com", false),
        ("example.com", "", false),
        // `*` is a wildcard only as the whole list.
        ("*, example.com", "other.test", false),
        ("*, example.com", "example.com", true),
        ("example.com,*", "other.test", false),
    ];
    for &(list, host, direct) in rows {
        assert_eq!(
            NoProxy::parse(list).matches(host),
            direct,
            "NO_PROXY={list:?} host={host:?}"
        );
    }
    for list in [" , ", "*,", "host:80, 10.0.0.0/33, ::1/129"] {
        assert!(NoProxy::parse(list).is_empty(), "{list:?}");
    }
}

/// `(http proxy "host:port", https proxy "host:port")` that `env` gives for origins on
/// `example.com`.
fn read_env(env: &[(&str, &str)]) -> Result<(Option<String>, Option<String>), Error> {
    let proxies = Proxies::from_lookup(|name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })?;
    let via = |scheme| {
        proxies
            .for_origin(&Origin::new(scheme, "example.com", 1))
            .map(|p| format!("{}:{}", p.host(), p.port()))
    };
    Ok((via(Scheme::Http), via(Scheme::Https)))
}

/// The environment variables, as curl reads them.
#[test]
fn environment_table() {
    let some = |s: &str| Some(s.to_owned());
    type Row<'a> = (&'a [(&'a str, &'a str)], Option<String>, Option<String>);
    let rows: &[Row<'_>] = &[
        (&[], None, None),
        (&[("http_proxy", "http://h:1")], some("h:1"), None),
        // Uppercase HTTP_PROXY is never read, CGI ("httpoxy") or not.
        (&[("HTTP_PROXY", "http://H:2")], None, None),
        (
            &[("HTTP_PROXY", "http://H:2"), ("ALL_PROXY", "a:4")],
            some("a:4"),
            some("a:4"),
        ),
        (&[("HTTP_PROXY", "https://not-even-valid")], None, None),
        (&[("HTTPS_PROXY", "up:2")], None, some("up:2")),
        // Lowercase wins, as in curl.
        (
            &[
                ("HTTP_PROXY", "http://up:2"),
                ("http_proxy", "http://low:1"),
            ],
            some("low:1"),
            None,
        ),
        (
            &[("HTTPS_PROXY", "up:2"), ("https_proxy", "low:1")],
            None,
            some("low:1"),
        ),
        (&[("https_proxy", "http://s:3")], None, some("s:3")),
        // Empty is unset.
        (
            &[("http_proxy", ""), ("HTTP_PROXY", "http://up:2")],
            None,
            None,
        ),
        (
            &[("https_proxy", ""), ("HTTPS_PROXY", "http://up:2")],
            None,
            some("up:2"),
        ),
        (
            &[("http_proxy", " "), ("all_proxy", "a:4")],
            some("a:4"),
            some("a:4"),
        ),
        (&[("http_proxy", "  ")], None, None),
        // ALL_PROXY is the fallback for both.
        (&[("ALL_PROXY", "a:4")], some("a:4"), some("a:4")),
        (
            &[("ALL_PROXY", "A:5"), ("all_proxy", "a:4")],
            some("a:4"),
            some("a:4"),
        ),
        // The scheme's variable comes before all_proxy.
        (
            &[("all_proxy", "a:4"), ("https_proxy", "s:3")],
            some("a:4"),
            some("s:3"),
        ),
        (
            &[("ALL_PROXY", "a:4"), ("HTTPS_PROXY", "S:3")],
            some("a:4"),
            some("S:3"),
        ),
        (
            &[("all_proxy", "a:4"), ("http_proxy", "h:1")],
            some("h:1"),
            some("a:4"),
        ),
        // NO_PROXY applies to both schemes; lowercase wins.
        (
            &[("all_proxy", "a:4"), ("NO_PROXY", "example.com")],
            None,
            None,
        ),
        (
            &[
                ("all_proxy", "a:4"),
                ("no_proxy", "other.test"),
                ("NO_PROXY", "example.com"),
            ],
            some("a:4"),
            some("a:4"),
        ),
        (&[("all_proxy", "a:4"), ("no_proxy", "*")], None, None),
        (
            &[
                ("all_proxy", "a:4"),
                ("no_proxy", ""),
                ("NO_PROXY", "example.com"),
            ],
            None,
            None,
        ),
        // httpoxy: in a CGI program, HTTP_PROXY is a request header.
        (
            &[("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "evil:1")],
            None,
            None,
        ),
        (
            &[("REQUEST_METHOD", "GET"), ("http_proxy", "ok:1")],
            some("ok:1"),
            None,
        ),
        (
            &[("REQUEST_METHOD", "GET"), ("HTTPS_PROXY", "up:2")],
            None,
            some("up:2"),
        ),
        // Surrounding spaces and a trailing slash are fine; the default port is 80.
        (&[("http_proxy", " http://h/ ")], some("h:80"), None),
    ];
    for (env, http, https) in rows {
        assert_eq!(
            read_env(env).expect("valid"),
            (http.clone(), https.clone()),
            "{env:?}"
        );
    }
    for env in [
        ("https_proxy", "socks5://s:1080"),
        ("HTTPS_PROXY", "https://h:443"),
        ("http_proxy", "http://h:port"),
        ("ALL_PROXY", "socks4://a:1080"),
    ] {
        assert!(
            matches!(read_env(&[env]), Err(Error::InvalidProxy(_))),
            "{env:?}"
        );
    }
}

/// HTTPS origins through the tunnel: TLS end to end, credentials to the proxy only.
#[cfg(feature = "tls")]
mod https {
    use super::*;
    use dugong::rustls::RootCertStore;
    use dugong::TlsConfig;
    use dugong_harness::{CloseMode, TestCa, TlsTerminator, Validity};

    /// A TLS terminator for `127.0.0.1` in front of `upstream`, and a config through `proxy`
    /// that trusts it.
    fn tls_via(upstream: std::net::SocketAddr, proxy: Proxy) -> (TlsTerminator, Config) {
        let ca = TestCa::new();
        let identity = ca.issue(&["127.0.0.1"], Validity::Current);
        let tls = TlsTerminator::start(upstream, identity, CloseMode::CloseNotify);
        let mut roots = RootCertStore::empty();
        roots.add(ca.root()).expect("a valid root");
        let config =
            config_via(proxy).tls(TlsConfig::with_root_certificates(roots).expect("tls config"));
        (tls, config)
    }

    fn https(port: u16) -> Origin {
        Origin::new(Scheme::Https, "127.0.0.1", port)
    }

    /// The proxy gets `CONNECT` with the credentials; the origin, behind TLS, receives
    /// exactly the request and no `Proxy-Authorization`.
    #[test]
    fn credentials_never_reach_a_tls_origin() {
        let origin = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            Step::Drain(Duration::from_secs(2)),
        ]);
        let proxy = ForwardProxy::start();
        let (tls, config) = tls_via(origin.addr(), proxy_to(&proxy));
        let conn = HttpConnection::open(&https(tls.port()), config).expect("valid");
        conn.send_request(&Method::GET, "/secret", &HeaderMap::new(), Body::Empty)
            .expect("send");
        conn.read_response().expect("head");
        assert_eq!(conn.read_all().expect("body"), b"ok");
        drop(conn);
        let port = tls.port();
        assert_eq!(
            proxy.heads(),
            [format!(
                "CONNECT 127.0.0.1:{port} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n{CREDENTIALS}\r\n\r\n"
            )]
        );
        let transcript = origin.finish();
        transcript.assert_ok();
        let received = transcript.received_str(0);
        assert_eq!(
            received,
            format!("GET /secret HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n")
        );
        assert!(!received
            .to_ascii_lowercase()
            .contains("proxy-authorization"));
    }

    /// 100 pipelined GETs over TLS through the tunnel, through every send path.
    #[test]
    fn pipelining_over_tls_through_the_tunnel() {
        let server = LoopbackServer::start();
        let proxy = ForwardProxy::start();
        let (tls, config) = tls_via(server.addr(), proxy_to(&proxy));
        for &path in SendPath::ALL {
            path.run_on(https(tls.port()), config.clone(), pipeline_100);
        }
        assert_eq!(proxy.heads().len(), SendPath::ALL.len());
        assert!(proxy.errors().is_empty(), "{:?}", proxy.errors());
    }

    /// A cofunction uploads through the tunnel while its loop body reads the responses.
    #[test]
    fn cofunction_send_through_the_tunnel() {
        let server = LoopbackServer::start();
        let proxy = ForwardProxy::start();
        let (tls, config) = tls_via(server.addr(), proxy_to(&proxy));
        let conn = HttpConnection::open(&https(tls.port()), config).expect("valid");
        let upload = pattern(2 << 20);
        let mut echoed = Vec::new();
        let mut heads = 0;
        for _ in 0..3 {
            let cofun = conn
                .send_request_cofun(
                    &Method::PUT,
                    "/echo",
                    &HeaderMap::new(),
                    Body::Bytes(&upload),
                )
                .expect("send");
            for step in cofun {
                step.expect("step");
                read_some(&conn, &mut heads, &mut echoed);
            }
        }
        while conn.response_pending() {
            read_some(&conn, &mut heads, &mut echoed);
        }
        assert_eq!(heads, 3);
        assert_eq!(echoed.len(), 3 * upload.len());
        assert!(echoed.chunks(upload.len()).all(|c| c == upload));
        assert_eq!(proxy.heads().len(), 1);
    }

    fn read_some(conn: &HttpConnection, heads: &mut usize, echoed: &mut Vec<u8>) {
        if conn.has_active_response() {
            let mut buf = [0u8; 16 * 1024];
            let n = conn.read(&mut buf).expect("read");
            echoed.extend_from_slice(&buf[..n]);
        } else if conn.response_pending() {
            assert_eq!(conn.read_response().expect("head").status, StatusCode::OK);
            *heads += 1;
        }
    }

    /// Bytes before the TLS handshake cannot be part of it: a clear error.
    #[test]
    fn bytes_before_the_tls_handshake_are_refused() {
        let server = LoopbackServer::start();
        let answer = b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01".to_vec();
        let proxy = ForwardProxy::start_with(ProxyAnswer::TunnelAfter(answer));
        let (tls, config) = tls_via(server.addr(), Proxy::new("127.0.0.1", proxy.port()));
        let conn = HttpConnection::open(&https(tls.port()), config).expect("valid");
        match conn.connect() {
            Err(Error::ProxyTunnel(TunnelFailure::EarlyData)) => {}
            other => panic!("expected EarlyData, got {other:?}"),
        }
    }
}

/// Without the `tls` feature an `https` origin is refused as before, proxy or not.
#[cfg(not(feature = "tls"))]
#[test]
fn https_without_tls_is_the_usual_error() {
    let config = config_via(Proxy::new("127.0.0.1", 9));
    let got = HttpConnection::open(&Origin::new(Scheme::Https, "127.0.0.1", 443), config);
    assert!(
        matches!(
            got,
            Err(Error::InvalidRequest(
                dugong::RequestError::UnsupportedScheme
            ))
        ),
        "{got:?}"
    );
}
