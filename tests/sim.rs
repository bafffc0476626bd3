//! Deterministic simulation of the driver against random servers (feature `sim`).
//!
//! Each schedule is generated from a seed: a few requests (methods, bodies sent in memory,
//! streamed by length or chunked, `Expect: 100-continue`), a send path, connection settings,
//! and a server model that answers with random framings (Content-Length, chunked with
//! extensions and trailers, close-delimited, HEAD/204/304, 1xx), splits every read and write
//! at random down to one byte, stalls on a virtual clock (so timeouts fire), closes or resets
//! at any byte, says `Connection: close`, answers uploads early, sends garbage after a
//! response. The connection runs in-process on dugong's simulated transport: no sockets, no
//! real time.
//!
//! The client sends its requests in rounds: faulty rounds, then one round on a fresh
//! connection to a faultless server that resends whatever was not answered. The invariants
//! ([`check`]): no panic; no hang (virtual time and world steps bounded); every response read
//! is the one the server sent for that request, byte for byte; a request is reported at most
//! once per attempt (answered, listed unanswered, or failed), and exactly once if it was sent
//! or reached the server; a closed connection lists only requests whose response never
//! started; the faultless round answers everything (unless the buffer limit is set below what
//! the responses need); the receive buffer stays within the configured limits; the server
//! receives every request's bytes once, in order, framed exactly.
//!
//! - `DUGONG_SIM_SEED=N cargo test --features sim --test sim` replays schedule N and prints
//!   its trace (`DUGONG_SIM_PATH=Green`, say, on another path than its own).
//! - `sim_slice` (CI) runs schedules for `DUGONG_SIM_SECONDS` (default 20) from a random base
//!   seed it prints; `DUGONG_SIM_BASE=B` fixes the base.
//! - `sim_million` (ignored; run in release) runs `DUGONG_SIM_COUNT` (default 1,000,000)
//!   schedules and prints how long they took.
//! - Every failing seed found is kept in [`REGRESSIONS`].

#[path = "sim/check.rs"]
mod check;
#[path = "sim/client.rs"]
mod client;
#[path = "sim/green.rs"]
mod green;
#[path = "sim/rng.rs"]
mod rng;
#[path = "sim/server.rs"]
mod server;
#[path = "sim/world.rs"]
mod world;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use dugong::sim::Sim;
use dugong::{Config, HttpConnection, Origin, Park, Scheme};
use http::Method;

use client::{BodyKind, Client, Log, Path, ReqSpec};
use rng::Rng;
use world::World;

/// Seeds that once failed, kept so the bugs they found stay fixed, with the path each ran on
/// (before the green paths were added, a seed's path was `Path::ALL[seed % 4]`).
const REGRESSIONS: &[(u64, Path)] = &[
    // A send timed out (poisoning the connection) while the loop body was reading a body:
    // `has_active_response` turned false as if that body were complete.
    (189, Path::Cofun),
    // A cofunction's first turn went to the loop body, which read a response that closed
    // the link; the request's transmit then failed with a misuse error (`NoBodyExpected`)
    // instead of reporting the request unanswered, and would have written to the old socket.
    (1449, Path::Cofun),
    // A `co_read` receiving straight into the caller's buffer waited; meanwhile the `co_*`
    // send beside it took response bytes into the receive buffer; the read then returned
    // newer bytes from the socket before them (a body with bytes swapped).
    (1603, Path::CoOps),
    // A request waiting for `100 Continue` got the start of a final response, then the
    // close: it was listed unanswered (to be resent) though its response had started.
    (2697, Path::Cofun),
    // The server answered an upload early, then closed without reading the body (the send
    // failed: broken pipe). Once the answer was read, every send failed with the misuse
    // error `BodyIncomplete` for the body that could never go out, instead of reconnecting.
    (5023, Path::CoOps),
    // (The harness's own bug: its `co_*` loop never read beside a send that had expected
    // `100 Continue`, and deadlocked once the body went out against a server answering
    // before it read.)
    (14203, Path::CoOps),
    // (The model's: a closing server blocked forever on writing garbage nobody reads while
    // the `co_*` client, without a timeout, blocked on writing a body it no longer reads.
    // Servers give up on a lingering close; the model now does.)
    (42731, Path::CoOps),
    // A `co_read` waited for the socket while the `co_*` send beside it took response bytes
    // in up to `max_buffered`; the read then tried to receive into the full buffer and
    // failed with an I/O error ("receive buffer is at its limit") instead of reading them.
    (647003, Path::CoOps),
];

/// Virtual time no schedule may exceed: a few rounds of stalls and timeouts.
const VIRTUAL_TIME_LIMIT: Duration = Duration::from_secs(600);

/// A failed schedule.
#[derive(Debug)]
struct Failure {
    seed: u64,
    path: Path,
    broken: Vec<String>,
}

/// The path schedule `seed` takes.
fn path_of(seed: u64) -> Path {
    Path::ALL[(seed % Path::ALL.len() as u64) as usize]
}

/// Runs schedule `seed` on `path`; with `trace`, prints what happened.
fn run(seed: u64, path: Path, trace: bool) -> Result<Duration, Failure> {
    let mut rng = Rng::new(seed);
    let requests: Vec<ReqSpec> = (0..rng.range(1, 6))
        .map(|id| request(&mut rng, id))
        .collect();
    let max_buffered = rng.pick(&[2048, 1 << 20, 1 << 20]);
    // `None` waits for `100 Continue` up to the operation timeout; `co_*` operations have
    // none, so against a server that ignores the expectation they would wait forever, as
    // configured.
    let continue_timeout = match rng.pick(&[Some(Duration::from_millis(200)), None]) {
        None if path == Path::CoOps => Some(Duration::from_millis(300)),
        other => other,
    };
    let config = Config::default()
        .timeout(Some(Duration::from_secs(1)))
        .connect_timeout(Some(Duration::from_secs(1)))
        .continue_timeout(continue_timeout)
        .max_buffered(max_buffered);
    let memory_bound = (64 * 1024)
        .max(config.max_buffered)
        .max(config.limits.max_head_bytes + 1);
    // Enough buffer for every response at once: the faultless round must answer everything.
    let liveness = max_buffered >= 1 << 20;
    let faulty_rounds = rng.range(1, 2);
    let world = World::new(Rng::new(rng.next_u64()), trace);
    for r in &requests {
        world.expect_body(r.id, r.body.clone());
    }
    world.note(|| format!("schedule {seed}: {path:?}, {config:?}"));
    let schedule = Schedule {
        path,
        world: world.clone(),
        requests: requests.clone(),
        rng: Rng::new(rng.next_u64()),
        memory_bound,
        faulty_rounds,
    };
    let origin = Origin::new(Scheme::Http, "127.0.0.1", 80);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if path.is_green() {
            return green::run(schedule, origin, config, Rng::new(rng.next_u64()));
        }
        let conn = HttpConnection::simulated(&origin, config, Sim::new(world.network()))
            .expect("a connection");
        schedule.drive(&conn)
    }));
    dugong::sim::set_now(None);
    let report = world.finish();
    let broken = match outcome {
        Ok(log) => {
            let mut broken = check::check(&requests, &log, &report, liveness);
            if report.elapsed > VIRTUAL_TIME_LIMIT {
                broken.push(format!("hang: {:?} of virtual time", report.elapsed));
            }
            broken
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into());
            vec![format!("panic: {message}")]
        }
    };
    if trace {
        for line in world.take_trace() {
            println!("{line}");
        }
        println!(
            "schedule {seed} ({path:?}): {} requests, {:?} virtual, {}",
            requests.len(),
            report.elapsed,
            if broken.is_empty() { "ok" } else { "FAILED" }
        );
    }
    if broken.is_empty() {
        Ok(report.elapsed)
    } else {
        Err(Failure { seed, path, broken })
    }
}

/// What a schedule's client does, whatever its connection's park.
struct Schedule {
    path: Path,
    world: World,
    requests: Vec<ReqSpec>,
    rng: Rng,
    memory_bound: usize,
    faulty_rounds: usize,
}

impl Schedule {
    /// Sends the requests in rounds on `conn`: faulty rounds, then a faultless one on a
    /// fresh connection for whatever was not answered.
    fn drive<P: Park>(self, conn: &HttpConnection<P>) -> Log {
        let client = Client::new(self.path, conn, &self.world, self.rng, self.memory_bound);
        for round in 0..=self.faulty_rounds {
            let faultless = round == self.faulty_rounds;
            self.world.set_round(round, !faultless);
            if faultless {
                // Resend on a fresh connection.
                conn.disconnect();
            }
            let todo: Vec<&ReqSpec> = self
                .requests
                .iter()
                .filter(|r| !client.log.borrow().is_answered(r.id))
                .collect();
            if todo.is_empty() {
                break;
            }
            client.run_round(round, &todo);
        }
        client.log.into_inner()
    }
}

fn request(rng: &mut Rng, id: usize) -> ReqSpec {
    let methods = [
        Method::GET,
        Method::GET,
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
    ];
    let method = methods[rng.range(0, methods.len() - 1)].clone();
    let (kind, body) = if method == Method::POST || method == Method::PUT {
        let kind = rng.pick(&[
            BodyKind::Empty,
            BodyKind::Bytes,
            BodyKind::Following,
            BodyKind::Chunked,
        ]);
        let size = if kind == BodyKind::Empty {
            0
        } else {
            rng.size()
        };
        (kind, rng.bytes(size))
    } else {
        (BodyKind::Empty, Vec::new())
    };
    let expect = rng.chance(300);
    ReqSpec {
        id,
        method,
        body,
        kind,
        expect,
    }
}

/// Runs schedules `base..` until `done` says stop; returns how many ran, or the first
/// failure.
fn run_many(base: u64, mut done: impl FnMut(u64) -> bool) -> Result<u64, Failure> {
    let mut n = 0;
    while !done(n) {
        let seed = base.wrapping_add(n);
        run(seed, path_of(seed), false)?;
        n += 1;
    }
    Ok(n)
}

fn report_failure(f: &Failure) -> String {
    format!(
        "schedule {} ({:?}) failed; replay with DUGONG_SIM_SEED={} DUGONG_SIM_PATH={:?} cargo test --features sim --test sim -- --nocapture\n  {}",
        f.seed,
        f.path,
        f.seed,
        f.path,
        f.broken.join("\n  ")
    )
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}

/// `DUGONG_SIM_SEED=N`: replays one schedule with its trace, on its own path or on
/// `DUGONG_SIM_PATH` (a path's name, as `Path` spells it).
#[test]
fn replay_seed() {
    let Some(seed) = env_u64("DUGONG_SIM_SEED") else {
        return;
    };
    let path = match std::env::var("DUGONG_SIM_PATH") {
        Ok(name) => *Path::ALL
            .iter()
            .find(|p| format!("{p:?}") == name)
            .unwrap_or_else(|| panic!("DUGONG_SIM_PATH: no path {name:?} in {:?}", Path::ALL)),
        Err(_) => path_of(seed),
    };
    if let Err(f) = run(seed, path, true) {
        panic!("{}", report_failure(&f));
    }
}

/// Whether one seed is being replayed: the other tests then stand aside.
fn replaying() -> bool {
    std::env::var_os("DUGONG_SIM_SEED").is_some()
}

/// Seeds that once failed.
#[test]
fn regressions() {
    if replaying() {
        return;
    }
    for &(seed, path) in REGRESSIONS {
        if let Err(f) = run(seed, path, false) {
            panic!("{}", report_failure(&f));
        }
    }
}

/// A fixed set of schedules, the same on every run.
#[test]
fn fixed_seeds() {
    if replaying() {
        return;
    }
    if let Err(f) = run_many(0, |n| n == 300) {
        panic!("{}", report_failure(&f));
    }
}

/// The CI slice: schedules for `DUGONG_SIM_SECONDS` (default 20) from a random base seed.
#[test]
fn sim_slice() {
    if replaying() {
        return;
    }
    let seconds = env_u64("DUGONG_SIM_SECONDS").unwrap_or(20);
    let base = env_u64("DUGONG_SIM_BASE").unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (t.as_nanos() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    });
    println!("sim_slice: base seed {base} (DUGONG_SIM_BASE={base} reruns this slice), {seconds} s");
    let started = Instant::now();
    let limit = Duration::from_secs(seconds);
    match run_many(base, |_| started.elapsed() >= limit) {
        Ok(n) => println!(
            "sim_slice: {n} schedules in {:.1?} ({:.0}/s)",
            started.elapsed(),
            n as f64 / started.elapsed().as_secs_f64()
        ),
        Err(f) => panic!("{}", report_failure(&f)),
    }
}

/// The big run: `DUGONG_SIM_COUNT` schedules (default 1,000,000) from `DUGONG_SIM_BASE`
/// (default 0), every failure listed at the end. Run in release:
/// `cargo test --release --features sim --test sim -- --ignored --nocapture sim_million`.
#[test]
#[ignore = "minutes of CPU; run in release"]
fn sim_million() {
    let count = env_u64("DUGONG_SIM_COUNT").unwrap_or(1_000_000);
    let base = env_u64("DUGONG_SIM_BASE").unwrap_or(0);
    let started = Instant::now();
    let mut failures = Vec::new();
    for n in 0..count {
        if n > 0 && n % 100_000 == 0 {
            println!("sim_million: {n} schedules, {:.1?}", started.elapsed());
        }
        let seed = base.wrapping_add(n);
        if let Err(f) = run(seed, path_of(seed), false) {
            println!("{}", report_failure(&f));
            failures.push(f.seed);
        }
    }
    println!(
        "sim_million: {count} schedules from seed {base} in {:.1?} ({:.0}/s), {} failed: {failures:?}",
        started.elapsed(),
        count as f64 / started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

/// The oracle must be able to fail: planted violations are caught.
mod oracle {
    use super::check::check;
    use super::client::{BodyKind, Log, Outcome, ReqSpec};
    use super::rng::Rng;
    use super::server::{plan_response, Latitude, ReqEvent, RequestParser};
    use super::world::{Answer, Report};
    use http::Method;

    fn one_get() -> (Vec<ReqSpec>, Report, Vec<u8>) {
        let mut rng = Rng::new(7);
        let planned = loop {
            let p = plan_response(&mut rng, "GET", Latitude { faults: false }, None);
            if !p.body.is_empty() {
                break p;
            }
        };
        let body = planned.body.clone();
        let mut report = Report::default();
        report.seen.insert((0, 0, 0));
        let sent = planned.wire.len();
        report.answers.insert((0, 0, 0), Answer { planned, sent });
        let request = ReqSpec {
            id: 0,
            method: Method::GET,
            body: Vec::new(),
            kind: BodyKind::Empty,
            expect: false,
        };
        (vec![request], report, body)
    }

    fn log(outcomes: Vec<Outcome>) -> Log {
        let mut log = Log::default();
        log.attempts.push((0, 0));
        log.sent_ok.insert((0, 0));
        log.outcomes = outcomes.into_iter().map(|o| (0, 0, o)).collect();
        log
    }

    #[test]
    fn a_faithful_answer_passes() {
        let (requests, report, body) = one_get();
        let status = report.answers[&(0, 0, 0)].planned.status;
        let log = log(vec![Outcome::Answered {
            conn: 0,
            status,
            body,
        }]);
        assert_eq!(check(&requests, &log, &report, true), Vec::<String>::new());
    }

    #[test]
    fn planted_violations_are_caught() {
        let (requests, report, body) = one_get();
        let status = report.answers[&(0, 0, 0)].planned.status;
        let answered = |body: Vec<u8>| Outcome::Answered {
            conn: 0,
            status,
            body,
        };
        let mut swapped = body.clone();
        swapped.reverse();
        swapped.push(0);
        let cases = [
            ("neither", vec![]),
            (
                "both",
                vec![answered(body.clone()), Outcome::Listed { closed: false }],
            ),
            (
                "twice",
                vec![answered(body.clone()), answered(body.clone())],
            ),
            ("wrong bytes", vec![answered(swapped)]),
            (
                "listed after it started",
                vec![Outcome::Listed { closed: true }],
            ),
        ];
        for (name, outcomes) in cases {
            let broken = check(&requests, &log(outcomes), &report, true);
            assert!(!broken.is_empty(), "{name}: not caught");
        }
    }

    #[test]
    fn the_request_parser_takes_any_split_and_rejects_misframing() {
        let wire = b"PUT /r3 HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\nGET /r4 HTTP/1.1\r\nhost: h\r\n\r\n";
        for split in 0..wire.len() {
            let mut parser = RequestParser::default();
            let mut events = Vec::new();
            parser.feed(&wire[..split], &mut events).expect("valid");
            parser.feed(&wire[split..], &mut events).expect("valid");
            let bodies: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    ReqEvent::Body { id, body } => Some((*id, body.clone())),
                    ReqEvent::Head { .. } => None,
                })
                .collect();
            assert_eq!(bodies, vec![(3, b"abc".to_vec()), (4, Vec::new())]);
            assert!(parser.is_idle());
        }
        let mut parser = RequestParser::default();
        let bad = b"PUT /r3 HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabX\r\n";
        assert!(parser.feed(bad, &mut Vec::new()).is_err());
    }
}
