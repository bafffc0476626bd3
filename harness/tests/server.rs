//! LoopbackServer driven by plain std::net clients.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;

use common::{connect, Client};
use dugong_harness::{pattern, pattern_byte, LoopbackServer, ServerOptions};

fn sum(b: &[u8]) -> u64 {
    b.iter().map(|&x| u64::from(x)).sum()
}

#[test]
fn pattern_is_deterministic() {
    assert_eq!(pattern(28), b"abcdefghijklmnopqrstuvwxyzab");
    assert_eq!(pattern_byte(27), b'b');
}

#[test]
fn pipelined_batch_of_200_in_one_write() {
    let server = LoopbackServer::start();
    let mut c = Client::new(server.addr());
    let mut batch = String::new();
    for i in 0..200 {
        if i % 2 == 0 {
            batch.push_str(&format!("GET /bytes/{i} HTTP/1.1\r\nHost: x\r\n\r\n"));
        } else {
            batch.push_str(&format!(
                "GET /doc/{i}.html?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"
            ));
        }
    }
    c.send(batch.as_bytes());
    for i in 0..200 {
        let r = c.response(false);
        assert_eq!(r.status, 200);
        assert!(r.header("date").is_none());
        if i % 2 == 0 {
            assert_eq!(r.body, pattern(i));
        } else {
            assert_eq!(r.header("content-type"), Some("text/plain"));
            assert_eq!(r.body, format!("document /doc/{i}.html?q=1\n").as_bytes());
        }
    }
    assert_eq!(server.requests_served(), 200);
    assert_eq!(server.connections_accepted(), 1);
    assert!(server.errors().is_empty(), "{:?}", server.errors());
}

#[test]
fn requests_split_at_odd_boundaries() {
    let server = LoopbackServer::start();
    let mut c = Client::new(server.addr());
    let mut batch = Vec::new();
    for i in 0..40 {
        batch.extend_from_slice(
            format!("POST /echo HTTP/1.1\r\nContent-Length: {i}\r\n\r\n").as_bytes(),
        );
        batch.extend_from_slice(&pattern(i));
        batch.extend_from_slice(
            b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        );
    }
    let mut size = 1;
    let mut rest = &batch[..];
    while !rest.is_empty() {
        let k = size.min(rest.len());
        c.send(&rest[..k]);
        rest = &rest[k..];
        size = size % 7 + 1;
    }
    for i in 0..40 {
        let echo = c.response(false);
        assert_eq!(echo.body, pattern(i));
        let sink = c.response(false);
        assert_eq!(sink.status, 204);
        assert_eq!(sink.header("x-received-bytes"), Some("3"));
    }
}

#[test]
fn chunked_route_decodes_to_the_pattern() {
    let server = LoopbackServer::start();
    let mut c = Client::new(server.addr());
    c.send(b"GET /chunked/10000/333 HTTP/1.1\r\n\r\nGET /chunked/2500 HTTP/1.1\r\n\r\nGET /chunked/0 HTTP/1.1\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.header("content-length").is_none());
    assert_eq!(r.body, pattern(10000));
    assert_eq!(c.response(false).body, pattern(2500));
    assert_eq!(c.response(false).body, b"");
}

#[test]
fn large_bodies_stream_correctly() {
    let server = LoopbackServer::start();
    let mut c = Client::new(server.addr());
    let n = 5 * 1024 * 1024 + 7;
    c.send(
        format!("GET /bytes/{n} HTTP/1.1\r\n\r\nGET /chunked/{n}/70000 HTTP/1.1\r\n\r\n")
            .as_bytes(),
    );
    let want = pattern(n);
    assert!(c.response(false).body == want);
    assert!(c.response(false).body == want);
}

#[test]
fn put_sink_counts_and_sums_bytes() {
    let server = LoopbackServer::start();
    let mut c = Client::new(server.addr());
    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7) as u8).collect();
    c.send(
        format!(
            "PUT /upload HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    c.send(&body);
    let r = c.response(false);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("x-received-bytes"), Some("1000000"));
    assert_eq!(
        r.header("x-body-sum"),
        Some(sum(&body).to_string().as_str())
    );
    assert!(r.header("content-length").is_none());
}

#[test]
fn chunked_upload_with_trailers() {
    let server = LoopbackServer::start();
    let mut c = Client::new(server.addr());
    c.send(b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: yes\r\n\r\n");
    c.send(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.header("x-received-bytes"), Some("31"));
    assert_eq!(
        r.header("x-body-sum"),
        Some(sum(b"helloabcdefghijklmnopqrstuvwxyz").to_string().as_str())
    );
    let r = c.response(false);
    assert_eq!(r.body, b"abcde");
    assert_eq!(r.header("content-length"), Some("5"));
}

#[test]
fn expect_100_continue_comes_before_the_body_is_sent() {
    let server = LoopbackServer::start();
    let mut c = Client::new(server.addr());
    c.send(b"PUT /up HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.response(false);
    assert_eq!(interim.status, 100);
    c.send(b"data");
    let r = c.response(false);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("x-received-bytes"), Some("4"));
    assert_eq!(server.requests_served(), 1);
}

#[test]
fn keep_alive_limit_closes_after_n() {
    let server = LoopbackServer::start_with(ServerOptions {
        max_requests_per_connection: Some(3),
    });
    let mut c = Client::new(server.addr());
    c.send(&b"GET /bytes/3 HTTP/1.1\r\n\r\n".repeat(5));
    for i in 1..=3 {
        let r = c.response(false);
        assert_eq!(r.body, b"abc");
        assert_eq!(r.header("connection") == Some("close"), i == 3);
    }
    assert!(c.at_eof());
    assert_eq!(server.requests_served(), 3);
}

#[test]
fn client_connection_close_is_honoured() {
    let server = LoopbackServer::start();
    let mut c = Client::new(server.addr());
    c.send(b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body, b"document /a\n");
    assert!(c.at_eof());
}

#[test]
fn status_head_and_close_routes() {
    let server = LoopbackServer::start();
    let mut c = Client::new(server.addr());
    c.send(b"GET /status/204 HTTP/1.1\r\n\r\nGET /status/304 HTTP/1.1\r\n\r\nPOST /status/503 HTTP/1.1\r\nContent-Length: 2\r\n\r\nxx");
    c.send(b"HEAD /bytes/100 HTTP/1.1\r\n\r\nHEAD /chunked/100 HTTP/1.1\r\n\r\nGET /close/5000 HTTP/1.1\r\n\r\n");
    let r = c.response(false);
    assert_eq!((r.status, r.header("content-length")), (204, None));
    assert_eq!(r.raw_head, "HTTP/1.1 204 No Content\r\n");
    let r = c.response(false);
    assert_eq!((r.status, r.header("content-length")), (304, None));
    let r = c.response(false);
    assert_eq!((r.status, r.header("content-length")), (503, Some("0")));
    let r = c.response(true);
    assert_eq!((r.status, r.header("content-length")), (200, Some("100")));
    let r = c.response(true);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let r = c.response(false);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.header("content-length").is_none());
    assert_eq!(r.body, pattern(5000));
}

#[test]
fn malformed_request_gets_400_and_close() {
    let server = LoopbackServer::start();
    let mut c = Client::new(server.addr());
    c.send(b"GET /ok HTTP/1.1\r\n\r\nGET /bad HTTP/9.9\r\n\r\nGET /never HTTP/1.1\r\n\r\n");
    assert_eq!(c.response(false).status, 200);
    let r = c.response(false);
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.at_eof());
    assert_eq!(server.errors().len(), 1, "{:?}", server.errors());
}

#[test]
fn half_closed_client_still_gets_every_response() {
    let server = LoopbackServer::start();
    let mut s = connect(server.addr());
    s.write_all(&b"GET /bytes/10 HTTP/1.1\r\n\r\n".repeat(3))
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    assert_eq!(all.matches("abcdefghij").count(), 3);
}

#[test]
fn drop_closes_idle_connections() {
    let server = LoopbackServer::start();
    let mut c = Client::new(server.addr());
    c.send(b"GET /x HTTP/1.1\r\n\r\n");
    assert_eq!(c.response(false).status, 200);
    drop(server);
    assert!(c.at_eof());
}
