//! Green threads on every core: `green::Pool` places tasks on worker threads, each with its
//! own runtime; handles join from any thread, and from tasks through `Task::blocking`.

mod support;

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use dugong::green::{Pool, Task};
use dugong::{Body, Config, Error};
use http::{HeaderMap, Method};
use support::{pattern, DelayProxy, LoopbackServer};

/// 10,000 tasks spawned at once over two workers, each pipelining 4 GETs of varied sizes
/// through a 1 ms delay proxy: every body is right, both workers ran tasks, and neither the
/// proxy nor the server saw an error.
///
/// The tasks cannot all hold a connection at once: `ulimit -n` is 20,000 here, and 10,000
/// connections through a proxy take 40,000 sockets (the proxy alone 20,000, so not even
/// peers in another process would do). The harness runs threads per connection: a live
/// connection costs this process 13 descriptors (the task's socket; the proxy's registry
/// clones of its two sockets and the eight clones its four threads read and write through;
/// the server's socket and its registry clone) and 5 threads (4 in the proxy, 1 in the
/// server). So a [`Window`] lets at most [`LIVE`] = 1,000 tasks hold a connection at a time:
/// 13,000 descriptors, and 5,000 threads, well inside the machine's `pid_max` of 32,768.
/// (The peers accept behind the tasks and close a few milliseconds after them, so the peaks
/// measured were lower: about 10,000 descriptors and 3,700 threads.) All 10,000 tasks are in
/// the pool from the start; one outside the window sleeps on its worker, beside the
/// connected ones, until enough tasks ahead of it have finished.
#[test]
fn ten_thousand_pooled_tasks_pipeline_on_every_worker() {
    const TASKS: usize = 10_000;
    const DEPTH: usize = 4;
    let server = LoopbackServer::start();
    let proxy = DelayProxy::start(server.addr(), Duration::from_millis(1));
    let port = proxy.port();
    let window = Arc::new(Window::new(LIVE));
    let deadline = Instant::now() + Duration::from_secs(120);
    let pool = Pool::new(2).expect("pool");
    assert_eq!(pool.workers(), 2);
    let handles: Vec<_> = (0..TASKS)
        .map(|t| {
            let window = Arc::clone(&window);
            pool.spawn(move |task| -> Result<_, Error> {
                // Declared first, so dropped last: the connection is closed before the seat
                // is given up.
                let _seat = window.enter(task, t, deadline);
                let conn = task.connect("127.0.0.1", port)?;
                let sizes: Vec<usize> = (0..DEPTH).map(|i| (t * 7 + i * 131) % 3000).collect();
                for size in &sizes {
                    let target = format!("/bytes/{size}");
                    conn.send_request(&Method::GET, &target, &HeaderMap::new(), Body::Empty)?;
                }
                for size in sizes {
                    conn.read_response()?;
                    assert_eq!(conn.read_all()?, pattern(size), "task {t}");
                }
                Ok(std::thread::current().id())
            })
        })
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
    // The peers' errors first: they explain a task's failure.
    assert_eq!(proxy.errors(), Vec::<String>::new());
    assert_eq!(server.errors(), Vec::<String>::new());
    let workers: HashSet<_> = outcomes
        .into_iter()
        .map(|outcome| outcome.expect("no panic").expect("no error"))
        .collect();
    assert_eq!(workers.len(), 2, "tasks ran on both workers");
    assert!(!workers.contains(&std::thread::current().id()));
    assert!(
        window.peak() <= LIVE,
        "{} connections at once",
        window.peak()
    );
    assert_eq!(server.connections_accepted(), TASKS as u64);
    assert_eq!(server.requests_served(), (TASKS * DEPTH) as u64);
}

/// Most connections the 10,000-task test holds at once (its doc comment has the budget).
const LIVE: usize = 1_000;

/// How long a waiting task sleeps per task that must still finish before its turn: a bit
/// under the time between finishes seen here (1.5 to 2 ms in debug on 2 cores), so a task far
/// back wakes a few dozen times, not every millisecond. Finishes coming faster only make
/// tasks wake late, never early.
const WAIT_PER_TASK: Duration = Duration::from_millis(1);

/// A window sliding over the tasks in spawn order: task `t` may connect once `t + 1 - width`
/// tasks have finished. At most `width` are inside at any time: all of them have numbers
/// below `finished + width`, and the `finished` that left had such numbers too.
struct Window {
    width: usize,
    finished: AtomicUsize,
    inside: AtomicUsize,
    peak: AtomicUsize,
}

impl Window {
    fn new(width: usize) -> Self {
        Window {
            width,
            finished: AtomicUsize::new(0),
            inside: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Suspends `task` (number `t`) until its turn, panicking at `deadline`; the seat it
    /// returns leaves the window when dropped, panic or not.
    fn enter<'w>(&'w self, task: &Task<'_>, t: usize, deadline: Instant) -> Seat<'w> {
        loop {
            let ahead = (t + 1).saturating_sub(self.width + self.finished.load(Ordering::SeqCst));
            if ahead == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "task {t} never got its turn");
            task.sleep(WAIT_PER_TASK * u32::try_from(ahead).expect("fewer than 2^32 tasks"));
        }
        let inside = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(inside, Ordering::SeqCst);
        Seat { window: self }
    }

    /// Most tasks inside at once so far.
    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// A task's place in the [`Window`].
struct Seat<'w> {
    window: &'w Window,
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        self.window.inside.fetch_sub(1, Ordering::SeqCst);
        self.window.finished.fetch_add(1, Ordering::SeqCst);
    }
}

/// A panicking task reports its panic through its handle and harms no other task; handles
/// join from a plain thread, and from a task on another worker through `Task::blocking`.
#[test]
fn panics_stay_in_their_task_and_handles_join_from_anywhere() {
    let pool = Pool::new(2).expect("pool");
    let bad = pool.spawn(|_| -> u32 { panic!("this task fails") });
    let good = pool.spawn(|task| {
        task.sleep(Duration::from_millis(20));
        7u32
    });
    let payload = bad.join().expect_err("the panic comes back");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"this task fails"));
    // Joined from a plain thread.
    let from_thread = std::thread::spawn(move || good.join().expect("no panic"));
    assert_eq!(from_thread.join().expect("thread"), 7);
    // Joined from a task, without blocking its worker.
    let spawner = pool.spawner();
    let outer = pool.spawn(move |task| {
        let inner = spawner.spawn(|task| {
            task.sleep(Duration::from_millis(10));
            35u32
        });
        let joined = task.blocking(move || inner.join()).expect("blocking");
        joined.expect("no panic") + 7
    });
    assert_eq!(outer.join().expect("no panic"), 42);
}

/// Dropping the pool cancels tasks suspended on every worker: each one's wait ends with
/// `Error::Cancelled` and its handle returns; what is spawned afterwards never runs.
#[test]
fn dropping_the_pool_cancels_tasks_parked_on_every_worker() {
    // A server that accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let pool = Pool::new(2).expect("pool");
    let (parked, all_parked) = mpsc::channel();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let parked = parked.clone();
            pool.spawn(move |task| -> Result<(), Error> {
                let config = Config::default().timeout(Some(Duration::from_secs(60)));
                let conn = task.connect_with("127.0.0.1", port, config)?;
                conn.send_request(&Method::GET, "/", &HeaderMap::new(), Body::Empty)?;
                parked
                    .send(std::thread::current().id())
                    .expect("test waits");
                conn.read_response()?;
                Ok(())
            })
        })
        .collect();
    let workers: HashSet<_> = (0..8)
        .map(|_| {
            all_parked
                .recv_timeout(Duration::from_secs(20))
                .expect("parked")
        })
        .collect();
    assert_eq!(workers.len(), 2, "tasks parked on both workers");
    let spawner = pool.spawner();
    // Dropped on another thread, so that a hang fails the test instead of stalling it.
    let (dropped, done) = mpsc::channel();
    std::thread::spawn(move || {
        drop(pool);
        dropped.send(()).expect("test waits");
    });
    done.recv_timeout(Duration::from_secs(20))
        .expect("the pool stops without waiting for its tasks' deadlines");
    for handle in handles {
        let outcome = handle.join().expect("no panic");
        assert!(matches!(outcome, Err(Error::Cancelled)), "{outcome:?}");
    }
    let late = spawner.spawn(|_| 1u32);
    assert!(
        late.join().is_err(),
        "a task spawned after the pool stopped never runs"
    );
}

/// A task whose server stalls times out on its own worker, while the tasks beside it on the
/// same worker finish.
#[test]
fn a_stalled_task_times_out_while_its_neighbours_finish() {
    let server = LoopbackServer::start();
    let port = server.port();
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let stalled_port = silent.local_addr().expect("addr").port();
    let pool = Pool::new(1).expect("pool");
    let stalled = pool.spawn(move |task| -> Result<(), Error> {
        let config = Config::default().timeout(Some(Duration::from_millis(300)));
        let conn = task.connect_with("127.0.0.1", stalled_port, config)?;
        conn.send_request(&Method::GET, "/", &HeaderMap::new(), Body::Empty)?;
        conn.read_response().map(drop)
    });
    let neighbours: Vec<_> = (0..20)
        .map(|i| {
            pool.spawn(move |task| -> Result<Vec<u8>, Error> {
                let conn = task.connect("127.0.0.1", port)?;
                let target = format!("/bytes/{}", i * 10);
                conn.send_request(&Method::GET, &target, &HeaderMap::new(), Body::Empty)?;
                conn.read_response()?;
                conn.read_all()
            })
        })
        .collect();
    for (i, handle) in neighbours.into_iter().enumerate() {
        assert_eq!(
            handle.join().expect("no panic").expect("body"),
            pattern(i * 10)
        );
    }
    let outcome = stalled.join().expect("no panic");
    assert!(matches!(outcome, Err(Error::Timeout { .. })), "{outcome:?}");
}
