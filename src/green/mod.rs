//! Green threads: many blocking-style HTTP tasks on one OS thread ([`run`], [`Runtime`]), or
//! on one per core ([`Pool`]).
//!
//! Each task is an ordinary closure that creates connections, sends (blocking calls or
//! cofunctions) and reads, written exactly as it would be for a thread. It runs as a
//! corosensei coroutine on a pooled stack; whenever one of its connections would block, the
//! task suspends and the [`Runtime`] resumes whichever task's socket became ready — one
//! poller for all of them (edge-triggered epoll on Linux, `polling` elsewhere), deadlines in
//! a timer heap. The HTTP driver is the same one the blocking API uses: a green connection
//! differs only in how it waits, and that is chosen when it is made ([`Task::connect`]) and
//! visible in its type (`HttpConnection<Green<'_>>`).
//!
//! ```
//! # let server = dugong_harness::LoopbackServer::start();
//! # let port = server.port();
//! use dugong::Body;
//! use http::{HeaderMap, Method};
//!
//! let total = dugong::green::run(move |task| {
//!     let handles: Vec<_> = (0..8)
//!         .map(|i| {
//!             task.spawn(move |task| -> Result<usize, dugong::Error> {
//!                 let conn = task.connect("127.0.0.1", port)?;
//!                 conn.send_request(&Method::GET, &format!("/bytes/{i}"), &HeaderMap::new(), Body::Empty)?;
//!                 conn.read_response()?;
//!                 Ok(conn.read_all()?.len())
//!             })
//!         })
//!         .collect();
//!     handles.into_iter().map(|h| task.join(h).expect("no panic").expect("no error")).sum::<usize>()
//! })
//! .expect("the main task did not panic");
//! assert_eq!(total, (0..8).sum());
//! ```

mod park;
mod pool;
mod runtime;

pub use park::Green;
pub use pool::{Pool, PoolHandle, Spawner};
pub use runtime::{run, JoinHandle, Runtime, Task};
