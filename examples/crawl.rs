//! Green threads at work: fetch N documents from the embedded server (optionally through the
//! delaying proxy) over C connections, each pipelining D deep, all on ONE OS thread, or
//! spread over a pool of worker threads (`--threads`). Each connection is an ordinary
//! blocking-style task; its runtime switches between tasks whenever one would wait.
//!
//! `cargo run --release --example crawl -- --documents 20000 --connections 64 --depth 16 --rtt-ms 5`
//! `cargo run --release --example crawl -- --threads 2`
//!
//! `--parse-passes N` gives each document some CPU work, as a crawler that parses its pages
//! has (N passes of a hash over the body): then the work, not the server, sets the pace,
//! and a pool's workers can show what more cores buy.

use std::collections::{HashSet, VecDeque};
use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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
    /// OS threads: 1 runs every task on this thread (`green::run`); more spreads them over a
    /// `green::Pool` of that many workers
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    threads: u32,
    /// Passes of a hash over each document's body once it is checked (0: none)
    #[arg(long, default_value_t = 0)]
    parse_passes: u32,
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let server = LoopbackServer::start();
    let proxy = (args.rtt_ms > 0.0)
        .then(|| DelayProxy::start(server.addr(), Duration::from_secs_f64(args.rtt_ms / 2000.0)));
    let port = proxy.as_ref().map_or(server.port(), DelayProxy::port);
    let job = Crawl {
        port,
        depth: args.depth as usize,
        documents: args.documents,
        parse_passes: args.parse_passes,
        next: Arc::new(AtomicUsize::new(0)),
    };
    let connections = args.connections as usize;
    let start = Instant::now();
    let (fetched, threads) = if args.threads == 1 {
        (
            on_one_thread(&job, connections)?,
            "one OS thread".to_owned(),
        )
    } else {
        let (fetched, used) = on_a_pool(&job, connections, args.threads as usize)?;
        (
            fetched,
            format!("{} worker threads ({used} used)", args.threads),
        )
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "crawl: {fetched} documents over {connections} connections x depth {}, {:.1} ms RTT, {} parse passes, {threads}",
        job.depth, args.rtt_ms, job.parse_passes
    );
    println!(
        "  {:.0} ms, {:.0} requests/s, peak RSS {} KiB",
        secs * 1000.0,
        fetched as f64 / secs,
        peak_rss_kib()
    );
    if fetched != job.documents {
        return Err(format!("fetched {fetched} of {}", job.documents).into());
    }
    Ok(())
}

/// What every connection's task shares: where to fetch from, and the next document to claim.
#[derive(Debug, Clone)]
struct Crawl {
    port: u16,
    depth: usize,
    documents: usize,
    parse_passes: u32,
    next: Arc<AtomicUsize>,
}

impl Crawl {
    /// One connection's task: claims documents while its window has room, pipelining up to
    /// `depth`, and checks every response. Returns how many it fetched.
    fn connection(&self, task: &green::Task<'_>) -> Result<usize, dugong::Error> {
        let conn = task.connect("127.0.0.1", self.port)?;
        let mut in_flight = VecDeque::new();
        let mut done = 0;
        loop {
            while in_flight.len() < self.depth {
                let i = self.next.fetch_add(1, Ordering::Relaxed);
                if i >= self.documents {
                    break;
                }
                let target = format!("/doc/{i}.html");
                conn.send_request(&Method::GET, &target, &HeaderMap::new(), Body::Empty)?;
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
            std::hint::black_box(parse(&body, self.parse_passes));
            done += 1;
        }
    }
}

/// Every connection a task of one runtime on this thread.
fn on_one_thread(job: &Crawl, connections: usize) -> Result<usize, Box<dyn Error>> {
    let thread = std::thread::current().id();
    let job = job.clone();
    let fetched = green::run(move |task| -> Result<usize, String> {
        let handles: Vec<_> = (0..connections)
            .map(|_| {
                let job = job.clone();
                task.spawn(move |task| {
                    assert_eq!(std::thread::current().id(), thread, "one OS thread");
                    job.connection(task)
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
    Ok(fetched)
}

/// The connections' tasks spread over a pool of `threads` workers. Returns the documents
/// fetched and how many workers ran tasks.
fn on_a_pool(
    job: &Crawl,
    connections: usize,
    threads: usize,
) -> Result<(usize, usize), Box<dyn Error>> {
    let pool = green::Pool::new(threads)?;
    let handles: Vec<_> = (0..connections)
        .map(|_| {
            let job = job.clone();
            pool.spawn(move |task| {
                job.connection(task)
                    .map(|n| (n, std::thread::current().id()))
            })
        })
        .collect();
    let mut total = 0;
    let mut workers = HashSet::new();
    for handle in handles {
        let (n, worker) = handle.join().map_err(|_| "a task panicked")??;
        total += n;
        workers.insert(worker);
    }
    Ok((total, workers.len()))
}

/// Stands in for parsing a page: `passes` rounds of FNV-1a over `body`.
fn parse(body: &[u8], passes: u32) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for _ in 0..passes {
        for &b in std::hint::black_box(body) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The process's peak resident set size, or 0 where unknown.
fn peak_rss_kib() -> u64 {
    dugong_harness::peak_rss_kib().unwrap_or(0)
}
