//! The README's showcase: the same GETs over one connection, one at a time and then
//! pipelined, through a proxy that adds a round trip. Runs in seconds, with no network: the
//! server and the proxy are the loopback peers of `dugong-harness`.
//!
//! ```text
//! cargo run --release --example demo -- --rtt-ms 5 --requests 300
//! ```

use std::error::Error;
use std::time::{Duration, Instant};

use clap::Parser;
use dugong::{Body, Config, HttpConnection};
use dugong_harness::{DelayProxy, LoopbackServer};
use http::{HeaderMap, Method, StatusCode};

/// How requests are sent in one row of the table.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Blocking sends, at most this many requests in flight.
    Window(usize),
    /// Cofunctions, the seed's loop: the loop body reads whenever response data is there.
    Cofun,
}

/// The rows of the table: a name and a mode.
const MODES: [(&str, Mode); 4] = [
    ("one at a time", Mode::Window(1)),
    ("pipelined", Mode::Window(16)),
    ("pipelined", Mode::Window(64)),
    ("pipelined, cofunction", Mode::Cofun),
];

/// Fetch small documents over one connection with a simulated round trip, one at a time and
/// pipelined, and print how long each mode took.
#[derive(Debug, Parser)]
#[command(name = "demo")]
struct Args {
    /// Round-trip time the delay proxy adds, in milliseconds (half of it each way)
    #[arg(long, value_name = "F", default_value_t = 5.0, value_parser = parse_rtt, allow_negative_numbers = true)]
    rtt_ms: f64,
    /// Documents fetched in each mode
    #[arg(long, value_name = "N", default_value_t = 300,
          value_parser = clap::value_parser!(u32).range(1..))]
    requests: u32,
}

fn parse_rtt(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(ms) if ms.is_finite() && (0.0..=10_000.0).contains(&ms) => Ok(ms),
        _ => Err("expected a number of milliseconds from 0 to 10000".into()),
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let server = LoopbackServer::start();
    let one_way = Duration::from_secs_f64(args.rtt_ms / 2000.0);
    let proxy = DelayProxy::start(server.addr(), one_way);
    let config = Config::default().timeout(Some(Duration::from_secs(10)));
    let conn = HttpConnection::with_config("127.0.0.1", proxy.port(), config)?;
    conn.connect()?;
    let paths: Vec<String> = (0..args.requests)
        .map(|i| format!("/doc/{i}.html"))
        .collect();

    println!(
        "dugong demo: {} GETs over one connection, {:.1} ms round trip (loopback + delay proxy)\n",
        args.requests, args.rtt_ms
    );
    println!("| mode                  | depth | time (ms) | requests/s | speed-up |");
    println!("|-----------------------|------:|----------:|-----------:|---------:|");
    let mut baseline = None;
    for (name, mode) in MODES {
        let (elapsed, depth) = match mode {
            Mode::Window(depth) => (fetch_all(&conn, &paths, depth)?, depth.to_string()),
            Mode::Cofun => (fetch_cofun(&conn, &paths)?, "any".to_owned()),
        };
        let secs = elapsed.as_secs_f64();
        let base = *baseline.get_or_insert(secs);
        println!(
            "| {name:<21} | {depth:>5} | {:>9.1} | {:>10.0} | {:>7.1}x |",
            secs * 1000.0,
            f64::from(args.requests) / secs,
            base / secs
        );
    }
    if server.connections_accepted() != 1 {
        return Err(format!(
            "expected one connection, the server accepted {}",
            server.connections_accepted()
        )
        .into());
    }
    Ok(())
}

/// GETs every path, keeping up to `depth` requests in flight (a sliding window: send while
/// fewer are in flight and paths remain, else read the oldest response), and checks every
/// body. Returns the time taken.
fn fetch_all(
    conn: &HttpConnection,
    paths: &[String],
    depth: usize,
) -> Result<Duration, Box<dyn Error>> {
    let headers = HeaderMap::new();
    let start = Instant::now();
    let (mut sent, mut done) = (0, 0);
    while done < paths.len() {
        if sent < paths.len() && sent - done < depth {
            conn.send_request(&Method::GET, &paths[sent], &headers, Body::Empty)?;
            sent += 1;
        } else {
            read_checked(conn, &paths[done])?;
            done += 1;
        }
    }
    Ok(start.elapsed())
}

/// GETs every path with cofunctions, reading responses in the loop body whenever data is
/// there (the seed's first loop), then the rest. Returns the time taken.
fn fetch_cofun(conn: &HttpConnection, paths: &[String]) -> Result<Duration, Box<dyn Error>> {
    let headers = HeaderMap::new();
    let start = Instant::now();
    let mut done = 0;
    for path in paths {
        for step in conn.send_request_cofun(&Method::GET, path, &headers, Body::Empty)? {
            step?;
            read_checked(conn, &paths[done])?;
            done += 1;
        }
    }
    while done < paths.len() {
        read_checked(conn, &paths[done])?;
        done += 1;
    }
    Ok(start.elapsed())
}

/// Reads the next response and checks it answers `GET path` with the expected document.
fn read_checked(conn: &HttpConnection, path: &str) -> Result<(), Box<dyn Error>> {
    let response = conn.read_response()?;
    let body = conn.read_all()?;
    let expected = format!("document {path}\n");
    if response.status != StatusCode::OK || response.path != *path || body != expected.as_bytes() {
        return Err(format!(
            "GET {path}: expected 200 {expected:?}, got {} for {} with body {:?}",
            response.status,
            response.path,
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    Ok(())
}
