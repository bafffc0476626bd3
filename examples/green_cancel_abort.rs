//! Drops a green runtime while ten tasks are suspended on a server that never answers, then a
//! two-worker `green::Pool` with ten such tasks spread over its workers, in a build with
//! `panic = "abort"`: cancellation must resume them until they return (never unwind their
//! stacks, which would abort the process). Exits 0 when that holds.
//!
//! `CARGO_PROFILE_RELEASE_PANIC=abort cargo run --release --example green_cancel_abort`

use std::cell::Cell;
use std::collections::HashSet;
use std::net::TcpListener;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use dugong::green::{Pool, Runtime};
use dugong::Body;
use dugong_harness::{ScriptedServer, Step};
use http::{HeaderMap, Method};

fn main() {
    let mut steps = Vec::new();
    for _ in 0..10 {
        steps.extend([Step::ExpectHead, Step::Accept]);
    }
    steps.push(Step::Sleep(Duration::from_secs(3)));
    let server = ScriptedServer::start(steps);
    let port = server.port();
    let returned = Rc::new(Cell::new(0));
    let mut runtime = Runtime::new().expect("runtime");
    for _ in 0..10 {
        let returned = Rc::clone(&returned);
        let _ = runtime.spawn(move |task| {
            let conn = task.connect("127.0.0.1", port).expect("conn");
            conn.send_request(&Method::GET, "/never", &HeaderMap::new(), Body::Empty)
                .expect("send");
            let _ = conn.read_response();
            returned.set(returned.get() + 1);
        });
    }
    let started = runtime.spawn(|task| task.sleep(Duration::from_millis(100)));
    runtime.block_on(started).expect("the sleeper finishes");
    drop(runtime);
    assert_eq!(returned.get(), 10);
    println!(
        "cancelled {} suspended tasks without unwinding",
        returned.get()
    );
    pool();
}

/// The same on every worker of a pool.
fn pool() {
    // Accepts connections (into its backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let pool = Pool::new(2).expect("pool");
    let (parked, all_parked) = mpsc::channel();
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let parked = parked.clone();
            pool.spawn(move |task| {
                let conn = task.connect("127.0.0.1", port).expect("conn");
                conn.send_request(&Method::GET, "/never", &HeaderMap::new(), Body::Empty)
                    .expect("send");
                parked
                    .send(std::thread::current().id())
                    .expect("main waits");
                conn.read_response().is_err()
            })
        })
        .collect();
    let workers: HashSet<_> = (0..10)
        .map(|_| {
            all_parked
                .recv_timeout(Duration::from_secs(20))
                .expect("parked")
        })
        .collect();
    drop(pool);
    let cancelled = handles
        .into_iter()
        .map(|h| h.join().expect("returned through its own code"))
        .filter(|&failed| failed)
        .count();
    assert_eq!(cancelled, 10);
    println!(
        "pool: cancelled {cancelled} suspended tasks on {} workers without unwinding",
        workers.len()
    );
}
