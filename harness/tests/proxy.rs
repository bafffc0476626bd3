//! DelayProxy in front of the loopback and scripted servers.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::time::{Duration, Instant};

use common::{connect, Client};
use dugong_harness::{pattern, DelayProxy, LoopbackServer, ScriptedServer, Step};

const ONE_WAY: Duration = Duration::from_millis(25);

#[test]
fn a_single_round_trip_pays_both_delays() {
    let server = LoopbackServer::start();
    let proxy = DelayProxy::start(server.addr(), ONE_WAY);
    let mut c = Client::new(proxy.addr());
    let started = Instant::now();
    c.send(b"GET /bytes/10 HTTP/1.1\r\n\r\n");
    assert_eq!(c.response(false).body, pattern(10));
    assert!(started.elapsed() >= 2 * ONE_WAY, "{:?}", started.elapsed());
}

#[test]
fn a_pipelined_batch_pays_about_one_round_trip() {
    let server = LoopbackServer::start();
    let proxy = DelayProxy::start(server.addr(), ONE_WAY);
    let mut c = Client::new(proxy.addr());
    // Warm up so connection setup is not measured.
    c.send(b"GET /warm HTTP/1.1\r\n\r\n");
    c.response(false);
    let started = Instant::now();
    let batch: String = (0..16)
        .map(|i| format!("GET /bytes/{} HTTP/1.1\r\nHost: x\r\n\r\n", 100 + i))
        .collect();
    c.send(batch.as_bytes());
    for i in 0..16 {
        assert_eq!(c.response(false).body, pattern(100 + i));
    }
    let took = started.elapsed();
    // Generous: proves segments overlap (sequential would be 16 × 50 ms).
    assert!(
        took < 8 * 2 * ONE_WAY,
        "16 pipelined requests took {took:?}"
    );
    assert_eq!(server.requests_served(), 17);
}

#[test]
fn large_transfers_arrive_intact_both_ways() {
    let server = LoopbackServer::start();
    let proxy = DelayProxy::start(server.addr(), Duration::from_millis(2));
    let mut c = Client::new(proxy.addr());
    let n = 3 * 1024 * 1024;
    let body = pattern(n);
    c.send(format!("POST /echo HTTP/1.1\r\nContent-Length: {n}\r\n\r\n").as_bytes());
    let writer = {
        let mut s = c.stream.try_clone().unwrap();
        let body = body.clone();
        std::thread::spawn(move || s.write_all(&body).unwrap())
    };
    assert!(c.response(false).body == body);
    writer.join().unwrap();
}

#[test]
fn half_close_is_forwarded_after_the_data() {
    let server = LoopbackServer::start();
    let proxy = DelayProxy::start(server.addr(), Duration::from_millis(5));
    let mut s = connect(proxy.addr());
    s.write_all(b"GET /bytes/5 HTTP/1.1\r\n\r\nGET /bytes/6 HTTP/1.1\r\n\r\n")
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    assert!(all.ends_with("\r\n\r\nabcdef"), "{all:?}");
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2);
}

#[test]
fn upstream_reset_closes_the_client() {
    let upstream = ScriptedServer::start(vec![Step::ExpectHead, Step::Reset]);
    let proxy = DelayProxy::start(upstream.addr(), Duration::from_millis(5));
    let mut s = connect(proxy.addr());
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    // Either a clean EOF or an error is fine; no data and no hang.
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty());
    upstream.finish().assert_ok();
}

#[test]
fn unreachable_upstream_closes_the_client_and_is_recorded() {
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let proxy = DelayProxy::start(addr, ONE_WAY);
    let mut s = connect(proxy.addr());
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert_eq!(proxy.errors().len(), 1, "{:?}", proxy.errors());
}

#[test]
fn drop_stops_an_idle_proxied_connection() {
    let server = LoopbackServer::start();
    let proxy = DelayProxy::start(server.addr(), ONE_WAY);
    let mut c = Client::new(proxy.addr());
    c.send(b"GET /x HTTP/1.1\r\n\r\n");
    c.response(false);
    drop(proxy);
    assert!(c.at_eof());
}
