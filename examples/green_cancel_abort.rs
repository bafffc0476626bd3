//! Drops a green runtime while ten tasks are suspended on a server that never answers, in a
//! build with `panic = "abort"`: cancellation must resume them until they return (never
//! unwind their stacks, which would abort the process). Exits 0 when that holds.
//!
//! `CARGO_PROFILE_RELEASE_PANIC=abort cargo run --release --example green_cancel_abort`

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use dugong::green::Runtime;
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
}
