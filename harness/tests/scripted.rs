//! ScriptedServer driven by plain std::net clients.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use common::connect;
use dugong_harness::{ScriptedServer, Step};

const REQ: &str = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
const RESP: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

#[test]
fn expect_reply_close() {
    let server = ScriptedServer::start(vec![
        Step::expect_str(REQ),
        Step::reply_str(RESP),
        Step::Close,
    ]);
    let mut s = connect(server.addr());
    s.write_all(REQ.as_bytes()).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, RESP);
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.connections, 1);
    assert_eq!(t.received_str(0), REQ);
}

#[test]
fn expect_head_and_discard_then_expect() {
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::Discard(5),
        Step::expect_str("GET /next HTTP/1.1\n\n"),
        Step::reply_str(RESP),
    ]);
    let mut s = connect(server.addr());
    s.write_all(b"PUT /up HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\n\n")
        .unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, RESP);
    let t = server.finish();
    t.assert_ok();
    assert_eq!(
        t.heads,
        vec!["PUT /up HTTP/1.1\r\nContent-Length: 5\r\n\r\n"]
    );
}

#[test]
fn reset_is_seen_as_connection_reset() {
    let server = ScriptedServer::start(vec![Step::ExpectHead, Step::Reset]);
    let mut s = connect(server.addr());
    s.write_all(REQ.as_bytes()).unwrap();
    let mut buf = [0u8; 16];
    let err = s.read(&mut buf).expect_err("read after RST must fail");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    server.finish().assert_ok();
}

#[test]
fn trickle_sends_every_byte_separately() {
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::Trickle {
            bytes: RESP.as_bytes().to_vec(),
            interval: Duration::from_millis(3),
        },
        Step::Close,
    ]);
    let mut s = connect(server.addr());
    s.write_all(REQ.as_bytes()).unwrap();
    let (mut got, mut reads) = (Vec::new(), 0);
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        reads += 1;
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, RESP.as_bytes());
    assert!(reads > 5, "only {reads} reads for a trickled reply");
    server.finish().assert_ok();
}

#[test]
fn trickle_stops_quietly_when_the_client_leaves() {
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::Trickle {
            bytes: vec![b'x'; 200],
            interval: Duration::from_millis(2),
        },
    ]);
    let mut s = connect(server.addr());
    s.write_all(REQ.as_bytes()).unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).unwrap();
    drop(s);
    server.finish().assert_ok();
}

#[test]
fn mismatch_is_recorded_with_both_strings() {
    let server = ScriptedServer::start(vec![Step::expect_str(REQ), Step::reply_str(RESP)]);
    let mut s = connect(server.addr());
    s.write_all(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    // The script ends on the mismatch and closes: no reply is sent.
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let t = server.finish();
    assert_eq!(t.failures.len(), 1, "{:?}", t.failures);
    assert!(t.failures[0].contains("GET /a") && t.failures[0].contains("GET /b"));
    let panic = std::panic::catch_unwind(|| t.assert_ok()).expect_err("assert_ok must panic");
    let msg = panic.downcast_ref::<String>().unwrap();
    assert!(msg.contains("GET /b"), "{msg}");
}

#[test]
fn closed_too_early_is_a_failure() {
    let server = ScriptedServer::start(vec![Step::expect_str(REQ)]);
    let mut s = connect(server.addr());
    s.write_all(b"GET /a").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let t = server.finish();
    assert!(
        t.failures[0].contains("closed after 6 of"),
        "{:?}",
        t.failures
    );
}

#[test]
fn drain_without_any_client_is_fine() {
    let server = ScriptedServer::start(vec![Step::Drain(Duration::from_millis(300))]);
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.connections, 0);
    assert!(t.received.is_empty());
}

#[test]
fn drain_records_until_eof() {
    let server = ScriptedServer::start(vec![Step::Drain(Duration::from_secs(20))]);
    let mut s = connect(server.addr());
    s.write_all(b"hello ").unwrap();
    s.write_all(b"world").unwrap();
    drop(s);
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.received_str(0), "hello world");
}

#[test]
fn accept_moves_to_the_next_connection() {
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::reply_str("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\none"),
        Step::Accept,
        Step::ExpectHead,
        Step::reply_str(RESP),
        Step::Close,
    ]);
    for want in ["one", "hi"] {
        let mut s = connect(server.addr());
        s.write_all(REQ.as_bytes()).unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert!(got.ends_with(want), "{got:?}");
    }
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.connections, 2);
    assert_eq!(t.heads.len(), 2);
}

#[test]
fn stall_stops_reading_uploads() {
    let server = ScriptedServer::start(vec![Step::ExpectHead, Step::Stall(Duration::from_secs(2))]);
    let mut s = connect(server.addr());
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s.write_all(b"PUT /up HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n")
        .unwrap();
    let chunk = vec![b'u'; 1 << 20];
    let mut sent = 0usize;
    let err = loop {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) => break e,
        }
        assert!(sent < 512 << 20, "a stalled server took {sent} bytes");
    };
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    drop(s);
    server.finish().assert_ok();
}

#[test]
fn dropping_a_running_script_does_not_hang() {
    let server =
        ScriptedServer::start(vec![Step::ExpectHead, Step::Sleep(Duration::from_secs(60))]);
    let mut s = connect(server.addr());
    s.write_all(REQ.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(server);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty());
}
