//! Pipelined batches of 1000 GETs of `/b100` against a real nginx (`cargo bench --bench
//! nginx_batches`), in both of nginx's transfer configurations (`sendfile off; tcp_nopush
//! off;` and Debian's `sendfile on; tcp_nopush on;`), at depth 16 and 64, as a sliding window
//! and in lockstep batches, through blocking `send_request` and `send_request_cofun`. Prints
//! one line per run; every status and body is checked.
//!
//! nginx is started as in `tests/nginx.rs` (`tests/support/nginx.rs`: a temp-dir config on a
//! free loopback port). Without nginx the bench prints `SKIPPED` and exits 0, except under CI
//! (`CI` set), where it fails.

#[path = "../tests/support/nginx.rs"]
mod nginx;

use std::time::{Duration, Instant};

use dugong::{Body, Config, Error, HttpConnection, Response};
use http::{HeaderMap, Method, StatusCode};
use nginx::{Nginx, NginxOptions};

/// How a request is sent (as `SendPath` in `tests/support/mod.rs`).
#[derive(Debug, Clone, Copy)]
enum SendPath {
    /// `HttpConnection::send_request`.
    Blocking,
    /// `HttpConnection::send_request_cofun`, iterated with an empty loop body.
    Cofun,
}

impl SendPath {
    const ALL: [SendPath; 2] = [SendPath::Blocking, SendPath::Cofun];

    /// Sends a GET of `target` with no headers.
    fn get(self, conn: &HttpConnection, target: &str) -> Result<(), Error> {
        let none = HeaderMap::new();
        match self {
            SendPath::Blocking => conn.send_request(&Method::GET, target, &none, Body::Empty),
            SendPath::Cofun => {
                for step in conn.send_request_cofun(&Method::GET, target, &none, Body::Empty)? {
                    step?;
                }
                Ok(())
            }
        }
    }
}

/// Reads the next response and its whole body.
fn response(conn: &HttpConnection) -> (Response, Vec<u8>) {
    let resp = conn.read_response().expect("response head");
    let body = conn.read_all().expect("response body");
    (resp, body)
}

/// Sends `n` GETs of `/b100` keeping up to `depth` in flight, either as a sliding window
/// (`lockstep == false`) or in lockstep batches of `depth` (send all, read all); checks every
/// body and returns the time taken.
fn pipelined_batch(
    path: SendPath,
    conn: &HttpConnection,
    n: usize,
    depth: usize,
    lockstep: bool,
) -> Duration {
    let want = nginx::b100();
    let started = Instant::now();
    let (mut sent, mut got) = (0, 0);
    while got < n {
        if !lockstep || sent == got {
            while sent < n && sent - got < depth {
                path.get(conn, "/b100").expect("send GET");
                sent += 1;
            }
        }
        let (resp, body) = response(conn);
        assert_eq!(resp.status, StatusCode::OK);
        assert!(body == want, "{path:?}: body {got} differs");
        got += 1;
    }
    started.elapsed()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // criterion-style probes from `cargo bench` list targets
    }
    for sendfile_nopush in [false, true] {
        let options = NginxOptions {
            sendfile_nopush,
            ..NginxOptions::default()
        };
        // Prints `SKIPPED: nginx not found ...` (or panics under CI).
        let Some(nginx) = Nginx::start_with(options) else {
            return;
        };
        let config = if sendfile_nopush {
            "sendfile on; tcp_nopush on;"
        } else {
            "sendfile off; tcp_nopush off;"
        };
        for depth in [16, 64] {
            for lockstep in [false, true] {
                for path in SendPath::ALL {
                    // As the tests' connections: a timeout, so a stuck run ends.
                    let conn = HttpConnection::with_config(
                        "127.0.0.1",
                        nginx.port(),
                        Config::default().timeout(Some(Duration::from_secs(5))),
                    )
                    .expect("valid host");
                    path.get(&conn, "/b100").expect("send GET"); // connect and warm up
                    response(&conn);
                    let took = pipelined_batch(path, &conn, 1000, depth, lockstep);
                    assert!(!conn.response_pending());
                    println!(
                        "nginx {config:<30} depth {depth:>2} {mode:<8} {path:<8?}: \
                         1000 GETs in {ms:8.2} ms ({rate:>7.0} req/s)",
                        mode = if lockstep { "lockstep" } else { "window" },
                        ms = took.as_secs_f64() * 1e3,
                        rate = 1000.0 / took.as_secs_f64(),
                    );
                }
            }
        }
    }
}
