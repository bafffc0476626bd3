//! Green threads at work: fetch N documents from the embedded server (optionally through the
//! delaying proxy) over C connections, each pipelining D deep, all on ONE OS thread. Each
//! connection is an ordinary blocking-style task; the runtime switches between them whenever
//! one would wait.
//!
//! `cargo run --release --example crawl -- --documents 20000 --connections 64 --depth 16 --rtt-ms 5`

use std::cell::Cell;
use std::error::Error;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use dugong::green;
use dugong::Body;
use dugong_harness::{DelayProxy, LoopbackServer};
use http::{HeaderMap, Method, StatusCode};

/// Fetch documents over many pipelined connections from one thread.
#[derive(Debug, Parser)]
#[command(name = "crawl")]
struct Args {
    /// Documents to fetch in all
    #[arg(long, default_value_t = 20_000)]
    documents: usize,
    /// Connections (one green task each)
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Requests in flight per connection
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    depth: u32,
    /// Round trip the delaying proxy adds, in milliseconds (0: no proxy)
    #[arg(long, default_value_t = 5.0)]
    rtt_ms: f64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let server = LoopbackServer::start();
    let proxy = (args.rtt_ms > 0.0)
        .then(|| DelayProxy::start(server.addr(), Duration::from_secs_f64(args.rtt_ms / 2000.0)));
    let port = proxy.as_ref().map_or(server.port(), DelayProxy::port);
    let (connections, depth, documents) = (
        args.connections as usize,
        args.depth as usize,
        args.documents,
    );

    let thread = std::thread::current().id();
    let next = Rc::new(Cell::new(0usize));
    let start = Instant::now();
    let fetched = green::run(move |task| -> Result<usize, String> {
        let handles: Vec<_> = (0..connections)
            .map(|_| {
                let next = Rc::clone(&next);
                task.spawn(move |task| -> Result<usize, dugong::Error> {
                    assert_eq!(std::thread::current().id(), thread, "one OS thread");
                    let conn = task.connect("127.0.0.1", port)?;
                    let mut in_flight = std::collections::VecDeque::new();
                    let mut done = 0;
                    loop {
                        // Claim documents while the window has room.
                        while in_flight.len() < depth && next.get() < documents {
                            let i = next.get();
                            next.set(i + 1);
                            let target = format!("/doc/{i}.html");
                            conn.send_request(
                                &Method::GET,
                                &target,
                                &HeaderMap::new(),
                                Body::Empty,
                            )?;
                            in_flight.push_back(target);
                        }
                        let Some(target) = in_flight.pop_front() else {
                            return Ok(done);
                        };
                        let resp = conn.read_response()?;
                        let body = conn.read_all()?;
                        assert_eq!(
                            (resp.status, resp.path.as_str()),
                            (StatusCode::OK, target.as_str())
                        );
                        assert_eq!(body, format!("document {target}\n").into_bytes());
                        done += 1;
                    }
                })
            })
            .collect();
        let mut total = 0;
        for handle in handles {
            total += task
                .join(handle)
                .map_err(|_| "a task panicked")?
                .map_err(|e| e.to_string())?;
        }
        Ok(total)
    })
    .map_err(|_| "the main task panicked")??;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "crawl: {fetched} documents over {connections} connections x depth {depth}, {:.1} ms RTT, one OS thread",
        args.rtt_ms
    );
    println!(
        "  {:.0} ms, {:.0} requests/s, peak RSS {} KiB",
        secs * 1000.0,
        fetched as f64 / secs,
        peak_rss_kib()
    );
    if fetched != documents {
        return Err(format!("fetched {fetched} of {documents}").into());
    }
    Ok(())
}

/// The process's peak resident set size, or 0 where unknown.
fn peak_rss_kib() -> u64 {
    dugong_harness::peak_rss_kib().unwrap_or(0)
}
