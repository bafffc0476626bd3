//! Green-thread figures (`cargo bench --bench green`), printed as a small table:
//!
//! - 10,000 tasks each holding an idle connection: peak RSS;
//! - spawn + first resume per task, with the stack pool warm;
//! - task switch cost: a `yield_now` round, and a wake-up through the poller;
//! - 64 connections x depth 16 through a 5 ms-RTT proxy: green tasks on one thread vs 64 OS
//!   threads with cofunctions vs 64 threads one request at a time.
//!
//! `cargo bench --bench green -- --only switch` runs one group (idle, spawn, switch,
//! pipelines); `--quick` runs each briefly.
//!
//! The idle connections' server side lives in a child process (this binary re-run with
//! `--idle-server`), so both ends fit under the descriptor limit.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use dugong::green::{self, Runtime};
use dugong::{Body, HttpConnection};
use dugong_harness::{DelayProxy, LoopbackServer};
use http::{HeaderMap, Method};

fn main() {
    if std::env::args().any(|a| a == "--idle-server") {
        return idle_server();
    }
    if std::env::args().any(|a| a == "--list") {
        return; // criterion-style probes from `cargo bench` list targets
    }
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--only NAME` (idle, spawn, switch, pipelines) runs one group.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1));
    let run = |name: &str| only.is_none_or(|o| o == name);
    println!("| measurement | figure |");
    println!("|---|---|");
    if run("idle") {
        idle_tasks(if quick { 500 } else { 10_000 });
    }
    if run("spawn") {
        spawn_cost(if quick { 1_000 } else { 100_000 });
    }
    if run("switch") {
        switch_cost(if quick { 1_000 } else { 200_000 });
    }
    if run("pipelines") {
        pipelines(if quick { 640 } else { 20_480 });
    }
}

/// Accepts connections and keeps them open until stdin closes.
fn idle_server() {
    hold_idle_connections(&stdin_closed());
}

fn peak_rss_kib() -> u64 {
    dugong_harness::peak_rss_kib().unwrap_or(0)
}

/// `tasks` tasks, each connected and waiting on its idle connection, all at once.
fn idle_tasks(tasks: usize) {
    let exe = std::env::current_exe().expect("exe");
    let mut child = Command::new(exe)
        .arg("--idle-server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("idle server");
    let mut port = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut port)
        .expect("port");
    let port: u16 = port.trim().parse().expect("port number");

    let before = peak_rss_kib();
    let mut runtime = Runtime::new().expect("runtime");
    let connected = Rc::new(std::cell::Cell::new(0usize));
    for _ in 0..tasks {
        let connected = Rc::clone(&connected);
        let _ = runtime.spawn(move |task| -> Result<(), dugong::Error> {
            let config = dugong::Config::default().timeout(Some(Duration::from_secs(60)));
            let conn = task.connect_with("127.0.0.1", port, config)?;
            conn.connect()?;
            connected.set(connected.get() + 1);
            // Idle: wait for a response that never comes (until the runtime is dropped).
            conn.send_request(&Method::GET, "/", &HeaderMap::new(), Body::Empty)?;
            conn.read_response().map(|_| ())
        });
    }
    // Wait (up to 30 s) until every task holds its connection.
    let all_in = Rc::clone(&connected);
    let probe = runtime.spawn(move |task| {
        for _ in 0..3000 {
            if all_in.get() == tasks {
                break;
            }
            task.sleep(Duration::from_millis(10));
        }
    });
    let _ = runtime.block_on(probe);
    let all = connected.get();
    let peak = peak_rss_kib();
    drop(runtime);
    drop(child.stdin.take());
    let _ = child.wait();
    println!("| {tasks} tasks holding idle connections ({all} connected): peak RSS | {} MiB (growth {} MiB) |", peak / 1024, (peak - before) / 1024);
}

/// Spawn + first resume of trivial tasks, pool warm.
fn spawn_cost(tasks: usize) {
    let mut runtime = Runtime::new().expect("runtime");
    for round in 0..2 {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks).map(|i| runtime.spawn(move |_| i)).collect();
        runtime.run().expect("run");
        let elapsed = start.elapsed();
        assert!(handles.iter().all(|h| h.is_finished()));
        if round == 1 {
            println!(
                "| spawn + first resume + finish, pool warm | {:.3} µs per task |",
                elapsed.as_secs_f64() * 1e6 / tasks as f64
            );
        }
    }
}

/// Two tasks yielding to each other, and a wake-up through the poller (a 100-byte GET round
/// trip on loopback from a green task, which parks once per request).
fn switch_cost(rounds: usize) {
    let per = yield_switch_ns(rounds);
    println!("| task switch (yield_now, suspend + resume) | {per:.0} ns |");

    let server = LoopbackServer::start();
    let port = server.port();
    let requests = rounds / 20;
    let (green_us, blocking_us) = green::run(move |task| {
        let conn = task.connect("127.0.0.1", port).expect("conn");
        let mut buf = [0u8; 4096];
        let mut one = |conn: &HttpConnection<green::Green<'_>>| {
            conn.send_request(&Method::GET, "/bytes/100", &HeaderMap::new(), Body::Empty)
                .expect("send");
            conn.read_response().expect("head");
            while conn.read(&mut buf).expect("body") > 0 {}
        };
        one(&conn);
        let start = Instant::now();
        for _ in 0..requests {
            one(&conn);
        }
        let green = start.elapsed().as_secs_f64() * 1e6 / requests as f64;
        let blocking = HttpConnection::new("127.0.0.1", port).expect("conn");
        let start = Instant::now();
        for _ in 0..requests {
            blocking
                .send_request(&Method::GET, "/bytes/100", &HeaderMap::new(), Body::Empty)
                .expect("send");
            blocking.read_response().expect("head");
            while blocking.read(&mut buf).expect("body") > 0 {}
        }
        (green, start.elapsed().as_secs_f64() * 1e6 / requests as f64)
    })
    .expect("io switch");
    println!("| 100-byte GET from a green task (one poller wake-up each) | {green_us:.1} µs (blocking thread: {blocking_us:.1} µs) |");
}

/// 64 connections x depth 16 through a 5 ms round trip.
fn pipelines(documents: usize) {
    const CONNECTIONS: usize = 64;
    const DEPTH: usize = 16;
    let server = LoopbackServer::start();
    let proxy = DelayProxy::start(server.addr(), Duration::from_micros(2500));
    let port = proxy.port();
    let per_conn = documents / CONNECTIONS;

    let start = Instant::now();
    green::run(move |task| {
        let handles: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                task.spawn(move |task| {
                    window(
                        &task.connect("127.0.0.1", port).expect("conn"),
                        per_conn,
                        DEPTH,
                    )
                })
            })
            .collect();
        for h in handles {
            task.join(h).expect("task");
        }
    })
    .expect("green");
    let green_rate = documents as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..CONNECTIONS {
            s.spawn(move || {
                // The seed's loop, with the window kept at DEPTH: responses are read in the
                // loop body whenever data is there, and before sending when DEPTH are out.
                let conn = HttpConnection::new("127.0.0.1", port).expect("conn");
                let read_one = || {
                    conn.read_response().expect("head");
                    conn.discard().expect("body");
                };
                let (mut sent, mut done) = (0, 0);
                while sent < per_conn {
                    while sent - done >= DEPTH {
                        read_one();
                        done += 1;
                    }
                    let target = "/doc/x";
                    for step in conn
                        .send_request_cofun(&Method::GET, target, &HeaderMap::new(), Body::Empty)
                        .expect("cofun")
                    {
                        step.expect("send");
                        if done < sent {
                            read_one();
                            done += 1;
                        }
                    }
                    sent += 1;
                }
                while done < sent {
                    read_one();
                    done += 1;
                }
            });
        }
    });
    let threads_cofun = documents as f64 / start.elapsed().as_secs_f64();

    let one_at_a_time_docs = CONNECTIONS * 20;
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..CONNECTIONS {
            s.spawn(move || {
                window(
                    &HttpConnection::new("127.0.0.1", port).expect("conn"),
                    20,
                    1,
                )
            });
        }
    });
    let threads_serial = one_at_a_time_docs as f64 / start.elapsed().as_secs_f64();
    println!("| 64 conns x depth 16, 5 ms RTT: green, 1 thread | {green_rate:.0} req/s |");
    println!("| 64 conns x depth 16, 5 ms RTT: 64 threads, cofunctions | {threads_cofun:.0} req/s (green/threads = {:.2}) |", green_rate / threads_cofun);
    println!("| 64 conns, 5 ms RTT: 64 threads, one request at a time | {threads_serial:.0} req/s (green/this = {:.1}) |", green_rate / threads_serial);
}

/// Fetches `n` documents keeping `depth` in flight.
fn window<P: dugong::Park>(conn: &HttpConnection<P>, n: usize, depth: usize) {
    let (mut sent, mut done) = (0, 0);
    while done < n {
        if sent < n && sent - done < depth {
            conn.send_request(&Method::GET, "/doc/x", &HeaderMap::new(), Body::Empty)
                .expect("send");
            sent += 1;
        } else {
            conn.read_response().expect("head");
            conn.discard().expect("body");
            done += 1;
        }
    }
}

include!("common/switch.rs");
include!("common/idle_server.rs");
