//! Phase 2: many green tasks on the one-thread runtime, each with its own connection doing
//! `per_task` pipelined GETs through cofunctions; a seeded choice of them is cancelled.
//!
//! The runtime cancels tasks in one way only: dropping it resumes every suspended task with a
//! cancel signal, so its pending wait fails with `Error::Cancelled` and the task returns (no
//! unwinding). There is no call to cancel one task. So the tasks run in waves, each on its own
//! runtime; a doomed task does a random number of its requests, then sends one nginx never
//! answers (`/hang/…`) with up to three more pipelined behind it, and waits for its answer.
//! Once the wave's other tasks are done and every doomed task waits, the runtime is dropped:
//! each doomed task is cancelled from outside, inside `read_response`, with requests in
//! flight, after exactly the number of responses chosen for it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use dugong::green::{Runtime, Task};
use dugong::{Body, Config, Error};
use http::{HeaderMap, Method};

use crate::pipeliner::{Pipeliner, Tally};
use crate::probe::{Curve, Sample};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) port: u16,
    pub(crate) tasks: usize,
    pub(crate) per_task: u64,
    pub(crate) depth: usize,
    pub(crate) cancel_percent: u32,
    pub(crate) seed: u64,
    /// Tasks alive at once at most.
    pub(crate) wave: usize,
}

/// What happened.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) waves: usize,
    /// All tasks' pipeliners, the cancelled ones' first requests included.
    pub(crate) tally: Tally,
    pub(crate) survivors: usize,
    /// Survivors that got all `per_task` responses, each exactly once and right.
    pub(crate) survivors_complete: usize,
    pub(crate) cancelled: usize,
    /// Cancelled tasks that stopped exactly where planned, with `Error::Cancelled`.
    pub(crate) cancelled_as_planned: usize,
    /// `/hang/` requests sent (nginx counts them).
    pub(crate) hangs: u64,
    /// RSS and fds each time another tenth of the tasks finished or began to wait for
    /// cancellation.
    pub(crate) curve: Curve,
    /// RSS and fds after each wave's runtime was dropped (`at`: tasks run so far).
    pub(crate) after_waves: Curve,
    pub(crate) problems: Vec<String>,
    pub(crate) duration: Duration,
}

/// How a task ended, as it recorded it.
#[derive(Debug)]
struct Outcome {
    task: usize,
    tally: Tally,
    /// For a doomed task: its wait ended with `Error::Cancelled`.
    cancelled: bool,
    error: Option<String>,
}

/// What the tasks of a wave share (all on one thread; borrowed only between waits).
#[derive(Debug, Default)]
struct Shared {
    outcomes: RefCell<Vec<Outcome>>,
    /// Tasks finished, or doomed and waiting to be cancelled.
    settled: Cell<usize>,
    /// Doomed tasks of the current wave that wait (or failed before they could).
    doomed_waiting: Cell<usize>,
    /// Settled count at which the next sample is taken.
    next_sample: Cell<usize>,
    sample_step: usize,
    curve: RefCell<Curve>,
    hangs: Cell<u64>,
}

impl Shared {
    fn settle(&self) {
        let settled = self.settled.get() + 1;
        self.settled.set(settled);
        if settled >= self.next_sample.get() {
            self.next_sample.set(settled + self.sample_step);
            self.curve.borrow_mut().push(Sample::take(settled as u64));
        }
    }
}

/// A doomed task's plan: responses to get, then requests to pipeline behind the hang.
#[derive(Debug, Clone, Copy)]
struct Doom {
    answered: u64,
    behind: u64,
}

/// xorshift64*: a tiny seeded generator, enough to pick tasks and points.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// Which tasks are cancelled, and where.
fn dooms(plan: &Plan) -> Vec<Option<Doom>> {
    let mut rng = Rng::new(plan.seed);
    let doomed = (plan.tasks * plan.cancel_percent as usize + 50) / 100;
    // A partial Fisher-Yates shuffle: the first `doomed` entries are a uniform choice.
    let mut order: Vec<usize> = (0..plan.tasks).collect();
    for i in 0..doomed.min(plan.tasks) {
        let j = i + rng.below((plan.tasks - i) as u64) as usize;
        order.swap(i, j);
    }
    let mut dooms = vec![None; plan.tasks];
    for &task in &order[..doomed.min(plan.tasks)] {
        dooms[task] = Some(Doom {
            answered: rng.below(plan.per_task),
            behind: rng.below(4),
        });
    }
    dooms
}

/// Green connections may wait long: thousands of tasks connect at once, and a doomed task
/// waits for its cancellation until its whole wave is done.
fn config() -> Config {
    Config::default()
        .connect_timeout(Some(Duration::from_secs(60)))
        .timeout(Some(Duration::from_secs(600)))
}

pub(crate) fn run(plan: Plan) -> Report {
    let started = Instant::now();
    let dooms = dooms(&plan);
    let shared = Rc::new(Shared {
        next_sample: Cell::new(plan.tasks.div_ceil(10)),
        sample_step: plan.tasks.div_ceil(10).max(1),
        ..Shared::default()
    });
    let mut report = Report::default();
    for wave_start in (0..plan.tasks).step_by(plan.wave.max(1)) {
        let wave = wave_start..(wave_start + plan.wave).min(plan.tasks);
        run_wave(&plan, wave.clone(), &dooms, &shared, &mut report);
        // Checked and dropped wave by wave, so what the soak itself keeps does not grow
        // with the number of tasks (the RSS after each wave should be flat).
        check(
            &plan,
            wave.clone(),
            &dooms,
            &shared.outcomes.take(),
            &mut report,
        );
        report.waves += 1;
        report.after_waves.push(Sample::take(wave.end as u64));
    }
    report.curve = shared.curve.take();
    report.hangs = shared.hangs.get();
    report.duration = started.elapsed();
    report
}

/// Runs tasks `wave` on a new runtime, then drops it to cancel the doomed ones.
fn run_wave(
    plan: &Plan,
    wave: std::ops::Range<usize>,
    dooms: &[Option<Doom>],
    shared: &Rc<Shared>,
    report: &mut Report,
) {
    let mut runtime = match Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            report.problems.push(format!("no green runtime: {e}"));
            return;
        }
    };
    shared.doomed_waiting.set(0);
    let mut survivors = Vec::new();
    let mut doomed = 0;
    for index in wave {
        let (plan, shared) = (*plan, Rc::clone(shared));
        let doom = dooms[index];
        let handle = runtime.spawn(move |task| {
            let outcome = match doom {
                None => survive(task, &plan, index),
                Some(doom) => await_cancel(task, &plan, index, doom, &shared),
            };
            shared.outcomes.borrow_mut().push(outcome);
            if doom.is_none() {
                shared.settle();
            }
        });
        match doom {
            None => survivors.push(handle),
            Some(_) => doomed += 1,
        }
    }
    let waiting = Rc::clone(shared);
    let supervisor = runtime.spawn(move |task| {
        let mut panics = 0;
        for handle in survivors {
            panics += usize::from(task.join(handle).is_err());
        }
        while waiting.doomed_waiting.get() < doomed {
            task.sleep(Duration::from_millis(5));
        }
        panics
    });
    match runtime.block_on(supervisor) {
        Ok(0) => {}
        Ok(panics) => report.problems.push(format!("{panics} tasks panicked")),
        Err(_) => report.problems.push("the supervisor task failed".into()),
    }
    // The cancellation: every task still suspended (the doomed ones) is resumed with a
    // cancel signal until it returns.
    drop(runtime);
}

/// A task that does all its requests.
fn survive(task: &Task<'_>, plan: &Plan, index: usize) -> Outcome {
    let first = index as u64 * plan.per_task;
    let mut outcome = Outcome {
        task: index,
        tally: Tally::default(),
        cancelled: false,
        error: None,
    };
    match task.connect_with("127.0.0.1", plan.port, config()) {
        Ok(conn) => {
            let mut pipeliner = Pipeliner::new(&conn, plan.depth, first, plan.per_task);
            outcome.error = pipeliner.run().err().map(|e| e.to_string());
            outcome.tally = pipeliner.tally;
        }
        Err(e) => outcome.error = Some(e.to_string()),
    }
    outcome
}

/// A doomed task: `doom.answered` requests, then a request that is never answered with
/// `doom.behind` more behind it, and a wait that only cancellation ends.
fn await_cancel(
    task: &Task<'_>,
    plan: &Plan,
    index: usize,
    doom: Doom,
    shared: &Shared,
) -> Outcome {
    let first = index as u64 * plan.per_task;
    let mut outcome = Outcome {
        task: index,
        tally: Tally::default(),
        cancelled: false,
        error: None,
    };
    let mut waiting = false;
    let waited = task
        .connect_with("127.0.0.1", plan.port, config())
        .and_then(|conn| {
            let mut pipeliner = Pipeliner::new(&conn, plan.depth, first, doom.answered);
            let done = pipeliner.run();
            outcome.tally = pipeliner.tally;
            done?;
            let none = HeaderMap::new();
            conn.send_request(&Method::GET, &format!("/hang/{index}"), &none, Body::Empty)?;
            shared.hangs.set(shared.hangs.get() + 1);
            for j in 0..doom.behind {
                let target = format!("/n/{}", first + doom.answered + j);
                conn.send_request(&Method::GET, &target, &none, Body::Empty)?;
            }
            // Settled: from here on only the runtime's drop ends the wait.
            waiting = true;
            shared.doomed_waiting.set(shared.doomed_waiting.get() + 1);
            shared.settle();
            conn.read_response().map(|resp| Some(resp.path))
        });
    match waited {
        Err(Error::Cancelled) => outcome.cancelled = true,
        Ok(path) => outcome.error = Some(format!("{path:?} answered; it never should be")),
        Err(e) => outcome.error = Some(e.to_string()),
    }
    if !waiting {
        // Failed before it could wait: the supervisor must not wait for it.
        shared.doomed_waiting.set(shared.doomed_waiting.get() + 1);
        shared.settle();
    }
    outcome
}

/// Checks the outcome of every task of `wave` against its plan.
fn check(
    plan: &Plan,
    wave: std::ops::Range<usize>,
    dooms: &[Option<Doom>],
    outcomes: &[Outcome],
    report: &mut Report,
) {
    let mut seen = vec![false; wave.len()];
    for outcome in outcomes {
        let Some(seen) = outcome
            .task
            .checked_sub(wave.start)
            .and_then(|i| seen.get_mut(i))
        else {
            report
                .problems
                .push(format!("task {} ended outside its wave", outcome.task));
            continue;
        };
        if std::mem::replace(seen, true) {
            report
                .problems
                .push(format!("task {} ended twice", outcome.task));
        }
        report.tally.add(&outcome.tally);
        let clean = outcome.tally.anomaly_count == 0 && outcome.error.is_none();
        match dooms[outcome.task] {
            None => {
                report.survivors += 1;
                if clean && outcome.tally.answered == plan.per_task {
                    report.survivors_complete += 1;
                }
            }
            Some(doom) => {
                report.cancelled += 1;
                if clean && outcome.cancelled && outcome.tally.answered == doom.answered {
                    report.cancelled_as_planned += 1;
                }
            }
        }
        if let Some(e) = &outcome.error {
            if report.problems.len() < 10 {
                report.problems.push(format!("task {}: {e}", outcome.task));
            }
        }
    }
    let missing = seen.iter().filter(|&&s| !s).count();
    if missing > 0 {
        report
            .problems
            .push(format!("{missing} tasks never recorded how they ended"));
    }
}
