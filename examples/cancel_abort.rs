//! Drops a cofunction in the middle of an upload, in a build with `panic = "abort"`:
//! cancellation must stop the coroutine by resuming it (never by unwinding its stack, which
//! would abort the process here), leave the connection poisoned, and let the next request
//! reconnect and succeed. Exits 0 when all of that holds.
//!
//! `CARGO_PROFILE_RELEASE_PANIC=abort cargo run --release --example cancel_abort`

use std::process::ExitCode;

use dugong::{Body, Error, HttpConnection};
use std::time::Duration;

use dugong_harness::{ScriptedServer, Step};
use http::{HeaderMap, Method, StatusCode};

fn run() -> Result<(), Error> {
    // The server answers early while the upload is still going out, then stops reading:
    // the cofunction suspends mid-upload.
    let server = ScriptedServer::start(vec![
        Step::ExpectHead,
        Step::Discard(1000),
        Step::reply_str("HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n"),
        Step::Stall(Duration::from_secs(3)),
        Step::Accept,
        Step::ExpectHead,
        Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"),
    ]);
    let conn = HttpConnection::new("127.0.0.1", server.port())?;
    let upload = vec![b'x'; 64 << 20];
    let h = HeaderMap::new();
    let mut cofun = conn.send_request_cofun(&Method::PUT, "/sink", &h, Body::Bytes(&upload))?;
    // One step: part of the body is out when it suspends; then drop it mid-upload.
    assert!(matches!(cofun.next(), Some(Ok(()))), "suspended mid-upload");
    drop(cofun);
    match conn.read_response() {
        Err(Error::Poisoned { .. }) => {}
        other => panic!("expected a poisoned connection, got {other:?}"),
    }
    conn.send_request(&Method::GET, "/bytes/3", &HeaderMap::new(), Body::Empty)?;
    let resp = conn.read_response()?;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(conn.read_all()?, b"abc");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => {
            println!("cancelled mid-upload without unwinding; reconnected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
