//! Green tasks: many blocking-style HTTP tasks on one thread.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use dugong::green::{self, Runtime};
use dugong::{Body, Config, Error};
use http::{HeaderMap, Method};
use support::{pattern, LoopbackServer, ScriptedServer, Step};

#[test]
fn many_tasks_interleave_on_one_thread() {
    // A round trip through the proxy takes milliseconds, so every task must wait for its
    // responses, and the others run meanwhile.
    let server = LoopbackServer::start();
    let proxy = support::DelayProxy::start(server.addr(), Duration::from_millis(1));
    let port = proxy.port();
    let thread = std::thread::current().id();
    // Requests sent but not yet answered, across all tasks, and the most there ever were.
    let in_flight = Rc::new(RefCell::new((0usize, 0usize)));
    let counter = Rc::clone(&in_flight);
    let sizes = green::run(move |task| {
        let handles: Vec<_> = (0..50)
            .map(|t| {
                let counter = Rc::clone(&counter);
                task.spawn(move |task| -> Result<usize, Error> {
                    assert_eq!(std::thread::current().id(), thread);
                    let conn = task.connect("127.0.0.1", port)?;
                    let mut total = 0;
                    for i in 0..10 {
                        let target = format!("/bytes/{}", t * 100 + i);
                        conn.send_request(&Method::GET, &target, &HeaderMap::new(), Body::Empty)?;
                        {
                            let mut c = counter.borrow_mut();
                            c.0 += 1;
                            c.1 = c.1.max(c.0);
                        }
                        conn.read_response()?;
                        let body = conn.read_all()?;
                        counter.borrow_mut().0 -= 1;
                        assert_eq!(body, pattern(t * 100 + i));
                        total += body.len();
                    }
                    Ok(total)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| task.join(h).expect("no panic").expect("no error"))
            .collect::<Vec<_>>()
    })
    .expect("main task");
    let want: Vec<usize> = (0..50)
        .map(|t| (0..10).map(|i| t * 100 + i).sum())
        .collect();
    assert_eq!(sizes, want);
    // While one task waited for a response, others sent theirs: they interleaved.
    let most = in_flight.borrow().1;
    assert!(
        most > 1,
        "requests were never in flight together (max {most})"
    );
    assert_eq!(server.connections_accepted(), 50);
}

#[test]
fn a_panicking_task_does_not_take_down_the_others() {
    let server = LoopbackServer::start();
    let port = server.port();
    let results = green::run(move |task| {
        let bad = task.spawn(|task| -> usize {
            task.yield_now();
            panic!("task went wrong");
        });
        let good: Vec<_> = (0..5)
            .map(|i| {
                task.spawn(move |task| {
                    let conn = task.connect("127.0.0.1", port).expect("conn");
                    conn.send_request(
                        &Method::GET,
                        &format!("/bytes/{i}"),
                        &HeaderMap::new(),
                        Body::Empty,
                    )
                    .expect("send");
                    conn.read_response().expect("head");
                    conn.read_all().expect("body").len()
                })
            })
            .collect();
        let bad = task
            .join(bad)
            .expect_err("the panic reaches the join handle");
        assert_eq!(bad.downcast_ref::<&str>(), Some(&"task went wrong"));
        good.into_iter()
            .map(|h| task.join(h).expect("no panic"))
            .collect::<Vec<_>>()
    })
    .expect("main task");
    assert_eq!(results, vec![0, 1, 2, 3, 4]);
}

#[test]
fn a_stalled_server_times_out_one_task_while_the_rest_finish() {
    let fast = LoopbackServer::start();
    let stalled =
        ScriptedServer::start(vec![Step::ExpectHead, Step::Sleep(Duration::from_secs(3))]);
    let (fast_port, stalled_port) = (fast.port(), stalled.port());
    let start = Instant::now();
    let (slow, quick) = green::run(move |task| {
        let slow = task.spawn(move |task| -> Result<(), Error> {
            let config = Config::default().timeout(Some(Duration::from_millis(300)));
            let conn = task.connect_with("127.0.0.1", stalled_port, config)?;
            conn.send_request(&Method::GET, "/slow", &HeaderMap::new(), Body::Empty)?;
            conn.read_response().map(|_| ())
        });
        let quick: Vec<_> = (0..20)
            .map(|i| {
                task.spawn(move |task| -> Result<Duration, Error> {
                    let conn = task.connect("127.0.0.1", fast_port)?;
                    conn.send_request(
                        &Method::GET,
                        &format!("/bytes/{i}"),
                        &HeaderMap::new(),
                        Body::Empty,
                    )?;
                    conn.read_response()?;
                    conn.read_all()?;
                    Ok(start.elapsed())
                })
            })
            .collect();
        let quick: Vec<_> = quick
            .into_iter()
            .map(|h| task.join(h).expect("no panic"))
            .collect();
        (task.join(slow).expect("no panic"), quick)
    })
    .expect("main task");
    assert!(matches!(slow, Err(Error::Timeout { .. })), "{slow:?}");
    for done in quick {
        // Each quick task finished long before the slow one's deadline.
        assert!(done.expect("quick task") < Duration::from_millis(300));
    }
    assert!(start.elapsed() < Duration::from_millis(300 + 1500));
    drop(stalled);
}

#[test]
fn cofunctions_pipeline_inside_green_tasks() {
    let server = LoopbackServer::start();
    let port = server.port();
    let got = green::run(move |task| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                task.spawn(move |task| -> Result<Vec<u64>, Error> {
                    let conn = task.connect("127.0.0.1", port)?;
                    let upload = vec![b'u'; 200_000];
                    let mut received = Vec::new();
                    let mut read_one =
                        |conn: &dugong::HttpConnection<green::Green<'_>>| -> Result<(), Error> {
                            let resp = conn.read_response()?;
                            let n = resp.headers["x-received-bytes"]
                                .to_str()
                                .map_or(0, |v| v.parse().unwrap_or(0));
                            received.push(n);
                            Ok(())
                        };
                    for i in 0..10 {
                        let target = format!("/t{t}/{i}");
                        for step in conn.send_request_cofun(
                            &Method::PUT,
                            &target,
                            &HeaderMap::new(),
                            Body::Bytes(&upload),
                        )? {
                            step?;
                            if conn.response_pending() {
                                read_one(&conn)?;
                            }
                        }
                    }
                    while conn.response_pending() {
                        read_one(&conn)?;
                    }
                    Ok(received)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| task.join(h).expect("no panic").expect("no error"))
            .collect::<Vec<_>>()
    })
    .expect("main task");
    for per_task in got {
        assert_eq!(per_task, vec![200_000; 10]);
    }
}

#[test]
fn sleep_and_yield_order_tasks() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = Rc::clone(&log);
    green::run(move |task| {
        let (a, b) = (Rc::clone(&l), Rc::clone(&l));
        let slow = task.spawn(move |task| {
            task.sleep(Duration::from_millis(50));
            a.borrow_mut().push("slow");
        });
        let fast = task.spawn(move |task| {
            task.yield_now();
            b.borrow_mut().push("fast");
        });
        task.join(slow).expect("slow");
        task.join(fast).expect("fast");
        l.borrow_mut().push("main");
    })
    .expect("main task");
    assert_eq!(*log.borrow(), ["fast", "slow", "main"]);
}

#[test]
fn dropping_a_runtime_cancels_suspended_tasks() {
    let stalled =
        ScriptedServer::start(vec![Step::ExpectHead, Step::Sleep(Duration::from_secs(3))]);
    let port = stalled.port();
    let outcome = Rc::new(RefCell::new(None));
    let seen = Rc::clone(&outcome);
    let mut runtime = Runtime::new().expect("runtime");
    let _stuck = runtime.spawn(move |task| {
        let conn = task.connect("127.0.0.1", port).expect("conn");
        conn.send_request(&Method::GET, "/never", &HeaderMap::new(), Body::Empty)
            .expect("send");
        *seen.borrow_mut() = Some(conn.read_response().map(|_| ()));
    });
    let quick = runtime.spawn(|task| {
        task.sleep(Duration::from_millis(50));
        7
    });
    assert_eq!(runtime.block_on(quick).expect("quick"), 7);
    assert!(
        outcome.borrow().is_none(),
        "the stuck task is still waiting"
    );
    let start = Instant::now();
    drop(runtime);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "cancellation does not wait for timeouts"
    );
    match outcome.borrow().as_ref() {
        Some(Err(Error::Cancelled)) => {}
        other => panic!("expected the pending read to fail with Cancelled, got {other:?}"),
    }
    drop(stalled);
}

/// Cancellation of a runtime (or a pool) with suspended tasks must not unwind their stacks:
/// an example built with `panic = "abort"` drops such a runtime and such a pool and must exit
/// normally.
#[test]
fn dropping_a_runtime_works_under_panic_abort() {
    let stdout = support::run_example_with_panic_abort("green_cancel_abort");
    assert!(stdout.contains("cancelled 10 suspended tasks"), "{stdout}");
    assert!(
        stdout.contains("pool: cancelled 10 suspended tasks on 2 workers"),
        "{stdout}"
    );
}

/// The crawl example over 600 documents, 12 connections x depth 4, 1 ms RTT, with `extra`
/// arguments; checks it fetched them all and returns its output.
fn crawl(extra: &[&str]) -> String {
    let mut args = vec![
        "--documents",
        "600",
        "--connections",
        "12",
        "--depth",
        "4",
        "--rtt-ms",
        "1",
    ];
    args.extend(extra);
    let stdout = support::run_example("crawl", &args);
    assert!(
        stdout.contains("crawl: 600 documents over 12 connections x depth 4"),
        "{stdout}"
    );
    stdout
}

#[test]
fn the_crawl_example_fetches_everything_on_one_thread() {
    let stdout = crawl(&[]);
    assert!(stdout.contains("requests/s, peak RSS"), "{stdout}");
}

#[test]
fn the_crawl_example_spreads_over_a_pool_of_threads() {
    let stdout = crawl(&["--threads", "2"]);
    assert!(stdout.contains("2 worker threads (2 used)"), "{stdout}");
}

/// `cancel`: a task waiting on a silent server, one mid-sleep and one not started yet are
/// cancelled from another task; the first two see `Cancelled` at their wait (and at every
/// wait after it) and return through their own code, the third never runs. The others
/// finish normally.
#[test]
fn cancelled_tasks_stop_at_their_wait_and_the_rest_finish() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let server = LoopbackServer::start();
    let port = server.port();
    let ran = Rc::new(RefCell::new(false));
    let flag = Rc::clone(&ran);
    let started = Instant::now();
    let (waiting, sleeping, unstarted, normal) = green::run(move |task| {
        let waiting = task.spawn(move |task| -> Result<(), Error> {
            let conn = task.connect("127.0.0.1", silent_port)?;
            conn.send_request(&Method::GET, "/", &HeaderMap::new(), Body::Empty)?;
            let first = conn.read_response().map(drop);
            // Every later wait is cancelled too: the task cannot get stuck on another one.
            let again = conn.read_response().map(drop);
            assert!(matches!(again, Err(Error::Cancelled)), "{again:?}");
            first
        });
        let sleeping = task.spawn(move |task| -> Result<(), Error> {
            task.sleep(Duration::from_secs(30));
            let conn = task.connect("127.0.0.1", port)?;
            conn.send_request(&Method::GET, "/bytes/1", &HeaderMap::new(), Body::Empty)?;
            conn.read_response().map(drop)
        });
        let normal = task.spawn(move |task| -> Result<Vec<u8>, Error> {
            let conn = task.connect("127.0.0.1", port)?;
            conn.send_request(&Method::GET, "/bytes/5", &HeaderMap::new(), Body::Empty)?;
            conn.read_response()?;
            conn.read_all()
        });
        task.sleep(Duration::from_millis(50));
        let unstarted = task.spawn(move |_| *flag.borrow_mut() = true);
        task.cancel(&unstarted);
        task.cancel(&waiting);
        task.cancel(&sleeping);
        (
            task.join(waiting).expect("no panic"),
            task.join(sleeping).expect("no panic"),
            task.join(unstarted).is_err(),
            task.join(normal).expect("no panic"),
        )
    })
    .expect("main task");
    assert!(matches!(waiting, Err(Error::Cancelled)), "{waiting:?}");
    // Its sleep ended early and its first connection wait was cancelled.
    assert!(matches!(sleeping, Err(Error::Cancelled)), "{sleeping:?}");
    assert!(
        unstarted,
        "a task cancelled before it started joins with an error"
    );
    assert!(
        !*ran.borrow(),
        "a task cancelled before it started never runs"
    );
    assert_eq!(normal.expect("the uncancelled task finishes"), pattern(5));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cancelled at once"
    );
}

/// A join is a wait like any other: a task cancelled while it is parked in one, or while it
/// is queued and has yet to reach one, gets the cancellation there, not when the task it
/// joins ends.
#[test]
fn a_cancelled_task_stops_waiting_in_a_join() {
    let started = Instant::now();
    let mut runtime = Runtime::new().expect("a runtime");
    let sleeper = |task: &green::Task<'_>| task.sleep(Duration::from_secs(30));
    let (first, second) = (runtime.spawn(sleeper), runtime.spawn(sleeper));
    // Parked in its join when it is cancelled.
    let parked = runtime.spawn(move |task| {
        let joined = task.join(first).is_err_and(|e| is_join_cancel(&*e));
        (joined, ends_at_once(task))
    });
    // Yielding, so queued, when it is cancelled; it joins after.
    let go = Rc::new(std::cell::Cell::new(false));
    let told = Rc::clone(&go);
    let queued = runtime.spawn(move |task| {
        while !told.get() {
            task.yield_now();
        }
        task.join(second).is_err_and(|e| is_join_cancel(&*e))
    });
    let main = runtime.spawn(move |task| {
        task.sleep(Duration::from_millis(20));
        task.cancel(&parked);
        let parked = task.join(parked).expect("no panic");
        task.cancel(&queued);
        go.set(true);
        (parked, task.join(queued).expect("no panic"))
    });
    let (parked, queued) = runtime.block_on(main).expect("main task");
    assert_eq!(
        parked,
        (true, true),
        "the join it was parked in ended with the cancel"
    );
    assert!(queued, "the join it reached after the cancel ended at once");
    drop(runtime); // cancels the two sleepers
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "nobody waited for the 30 s sleepers"
    );
}

/// Whether `payload` is what [`green::Task::join`] gives when the joining task is cancelled.
fn is_join_cancel(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.downcast_ref::<&str>() == Some(&"cancelled while joining")
}

/// Whether a sleep of `task` ends at once: every wait of a cancelled task does.
fn ends_at_once(task: &green::Task<'_>) -> bool {
    let before = Instant::now();
    task.sleep(Duration::from_secs(30));
    before.elapsed() < Duration::from_secs(10)
}

/// The reactor is edge-triggered: a response that arrives while its task sleeps is reported
/// to nobody, and must still end the task's next wait at once (the first wait after a send
/// on an idle connection parks before trying to receive). Likewise for a server's close.
#[test]
fn readiness_that_arrives_while_a_task_sleeps_is_not_lost() {
    let server = LoopbackServer::start();
    let port = server.port();
    let took = green::run(move |task| -> Result<Duration, Error> {
        let config = Config::default().timeout(Some(Duration::from_secs(5)));
        let conn = task.connect_with("127.0.0.1", port, config)?;
        let mut longest = Duration::ZERO;
        for i in 0..5 {
            conn.send_request(&Method::GET, "/bytes/3", &HeaderMap::new(), Body::Empty)?;
            // The answer arrives during the sleep; the runtime's wait sees it first.
            task.sleep(Duration::from_millis(20 + i));
            let started = Instant::now();
            conn.read_response()?;
            assert_eq!(conn.read_all()?, pattern(3));
            longest = longest.max(started.elapsed());
        }
        Ok(longest)
    })
    .expect("no panic")
    .expect("answered");
    assert!(
        took < Duration::from_secs(1),
        "a read waited {took:?} for readiness reported while its task slept"
    );
}

/// A task that only yields does not starve the tasks waiting on sockets: each pass over the
/// ready tasks is followed by a look at the sockets.
#[test]
fn a_task_that_keeps_yielding_does_not_starve_socket_waiters() {
    let server = LoopbackServer::start();
    let port = server.port();
    let done = Rc::new(RefCell::new(false));
    let (spins, answered) = green::run(move |task| {
        let flag = Rc::clone(&done);
        let fetcher = task.spawn(move |task| -> Result<usize, Error> {
            let conn = task.connect("127.0.0.1", port)?;
            let mut n = 0;
            for _ in 0..20 {
                conn.send_request(&Method::GET, "/bytes/2", &HeaderMap::new(), Body::Empty)?;
                conn.read_response()?;
                n += conn.read_all()?.len();
            }
            *flag.borrow_mut() = true;
            Ok(n)
        });
        let flag = Rc::clone(&done);
        let spinner = task.spawn(move |task| {
            let mut spins = 0u64;
            // Bounded: starvation would end here, with the fetcher unfinished.
            while !*flag.borrow() && spins < 5_000_000 {
                task.yield_now();
                spins += 1;
            }
            spins
        });
        (
            task.join(spinner).expect("no panic"),
            task.join(fetcher).expect("no panic"),
        )
    })
    .expect("main task");
    assert_eq!(answered.expect("answered"), 40);
    assert!(
        spins < 5_000_000,
        "the fetcher never ran while a task yielded"
    );
}

/// `Task::blocking` runs its work on another thread while the runtime's other tasks go on:
/// the work waits for a ticking task to tick five times, which it could not do if the work
/// blocked the runtime's thread. A panic in the work comes back as the call's error and
/// harms nothing else.
#[test]
fn blocking_work_runs_off_the_runtime_thread() {
    let runtime_thread = std::thread::current().id();
    let (worker, ticked, panicked) = green::run(move |task| {
        let (go, ticks_done) = std::sync::mpsc::channel::<()>();
        let ticker = task.spawn(move |task| {
            for _ in 0..5 {
                task.sleep(Duration::from_millis(10));
            }
            go.send(()).expect("the work waits");
        });
        let (ticked, worker) = task
            .blocking(move || {
                let ticked = ticks_done.recv_timeout(Duration::from_secs(10)).is_ok();
                (ticked, std::thread::current().id())
            })
            .expect("no panic");
        task.join(ticker).expect("ticker");
        let panicked = task
            .blocking(|| -> u32 { panic!("work that fails") })
            .expect_err("the panic comes back");
        let message = panicked.downcast_ref::<&str>().copied().unwrap_or_default();
        (worker, ticked, message.to_owned())
    })
    .expect("no panic in the task");
    assert!(ticked, "the ticking task ran while the work blocked");
    assert_ne!(worker, runtime_thread);
    assert_eq!(panicked, "work that fails");
}

/// A task cancelled while it waits for blocking work returns with an error before the work
/// ends (the work waits for the test's signal); the work then runs on by itself.
#[test]
fn a_task_cancelled_during_blocking_work_returns_before_the_work_ends() {
    let mut runtime = Runtime::new().expect("runtime");
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (finish, finished) = std::sync::mpsc::channel();
    let waiting = runtime.spawn(move |task| {
        task.blocking(move || {
            let _ = released.recv_timeout(Duration::from_secs(10));
            finish.send("finished").expect("send");
        })
    });
    let canceller = runtime.spawn(|task| task.sleep(Duration::from_millis(20)));
    runtime.block_on(canceller).expect("canceller");
    runtime.cancel(&waiting);
    let outcome = runtime.block_on(waiting).expect("no panic in the task");
    assert!(outcome.is_err(), "cancelled: {outcome:?}");
    assert!(finished.try_recv().is_err(), "the work had not ended");
    release.send(()).expect("the work waits");
    assert_eq!(
        finished.recv_timeout(Duration::from_secs(10)),
        Ok("finished"),
        "the work ran on to its end"
    );
}
