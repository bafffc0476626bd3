//! Green threads on every core: `green::Pool` places tasks on worker threads, each with its
//! own runtime; handles join from any thread, and from tasks through `Task::blocking`.

mod support;

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use dugong::green::Pool;
use dugong::{Body, Config, Error};
use http::{HeaderMap, Method};
use support::{pattern, DelayProxy, LoopbackServer};

/// 500 tasks over two workers, each pipelining 4 GETs through a 1 ms delay proxy (the
/// harness runs threads per connection, so not thousands at once): every
/// body is right, and both workers ran tasks.
#[test]
fn pooled_tasks_pipeline_on_every_worker() {
    const TASKS: usize = 500;
    const DEPTH: usize = 4;
    let server = LoopbackServer::start();
    let proxy = DelayProxy::start(server.addr(), Duration::from_millis(1));
    let port = proxy.port();
    let pool = Pool::new(2).expect("pool");
    assert_eq!(pool.workers(), 2);
    let handles: Vec<_> = (0..TASKS)
        .map(|t| {
            pool.spawn(move |task| -> Result<_, Error> {
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
    let workers: HashSet<_> = handles
        .into_iter()
        .map(|h| h.join().expect("no panic").expect("no error"))
        .collect();
    assert_eq!(workers.len(), 2, "tasks ran on both workers");
    assert!(!workers.contains(&std::thread::current().id()));
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
