//! Phase 2: many green tasks on the one-thread runtime, each with its own connection doing
//! `per_task` pipelined requests through cofunctions (a seeded mix of small GETs, large
//! GETs and POSTs, see [`Mix`]); a seeded choice of them is cancelled with [`Task::cancel`].
//!
//! A doomed task is cancelled from outside at a random point: once it has read a random
//! number of its responses (0 to `per_task - 1`), it spawns a canceller task, which waits a
//! random while (a number of `yield_now`s, or a short sleep) and then cancels it, while it
//! goes on sending and reading. So the cancel lands wherever the task happens to be: in the
//! cofunction's own wait while sending, waiting for a response head, in the middle of a large
//! body — or nowhere, if the task finished first (then it must be complete, like any other).
//! A few doomed tasks are cancelled right after they are spawned, before they ever run.
//!
//! The tasks run in waves (all at once unless descriptors forbid), each on its own runtime
//! that is run until every task has finished: nothing is left for the runtime's drop to
//! cancel.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use dugong::green::{JoinHandle, Runtime, Task};
use dugong::{Config, Error};

use crate::pipeliner::{Mix, Pipeliner, Probe, Tally, Where};
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
    pub(crate) mix: Mix,
}

/// Where cancellations landed.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Landings {
    /// Cancelled after spawning, before the task ran: it never ran.
    pub(crate) before_start: usize,
    /// In `send_request_cofun` or the cofunction's own wait (sending, or reconnecting).
    pub(crate) sending: usize,
    /// Waiting for a response head, between sends / in a cofunction's loop body.
    pub(crate) head: usize,
    pub(crate) head_in_cofun: usize,
    /// In the middle of a body, between sends / in a cofunction's loop body.
    pub(crate) body: usize,
    pub(crate) body_in_cofun: usize,
    /// Of the body landings, those in a large body.
    pub(crate) large_body: usize,
    /// The task had finished when its canceller came: cancelling it did nothing.
    pub(crate) missed: usize,
}

/// What happened.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) waves: usize,
    /// All tasks' pipeliners, the cancelled ones' included.
    pub(crate) tally: Tally,
    /// Requests of cancelled tasks left in their pipeline when they stopped (sent, neither
    /// answered nor listed unanswered): nginx may or may not have received them.
    pub(crate) unresolved: u64,
    pub(crate) survivors: usize,
    /// Survivors that got all `per_task` responses, each exactly once and right.
    pub(crate) survivors_complete: usize,
    /// Tasks chosen for cancelling.
    pub(crate) doomed: usize,
    /// Doomed tasks whose cancellation took (`Err(Cancelled)`, or never started).
    pub(crate) cancelled: usize,
    /// Doomed tasks that ended as they must: cancelled ones with `Error::Cancelled` after a
    /// correct prefix of their responses, never-started ones with an error join and no
    /// request; missed ones complete.
    pub(crate) doomed_correct: usize,
    pub(crate) landings: Landings,
    /// Complete responses cancelled tasks read after the cancel (data already there: a task
    /// notices the cancel at its next wait): total and most for one task.
    pub(crate) answered_after_cancel: (u64, u64),
    /// RSS and fds each time another tenth of the tasks finished.
    pub(crate) curve: Curve,
    /// RSS and fds after each wave's runtime was dropped (`at`: tasks run so far).
    pub(crate) after_waves: Curve,
    pub(crate) problems: Vec<String>,
    pub(crate) duration: Duration,
}

impl Report {
    fn problem(&mut self, what: String) {
        if self.problems.len() < 20 {
            self.problems.push(what);
        }
    }
}

/// How a doomed task is cancelled.
#[derive(Debug, Clone, Copy)]
enum Doom {
    /// Right after it is spawned.
    BeforeStart,
    /// Once it has read `answered` responses, after `delay` (and then, if aimed, once it is
    /// seen in that kind of call).
    After {
        answered: u64,
        delay: Delay,
        aim: Aim,
    },
}

/// Where an aimed cancel waits for its task to be. Unaimed cancels land mostly on head waits
/// (that is where tasks spend their time), so some are aimed at the rarer waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aim {
    Anywhere,
    /// In a cofunction's send (armed a little before one of the task's POSTs is sent).
    Sending,
    /// Reading a large body (armed a little before one of the task's large responses).
    LargeBody,
}

/// Polls an aimed canceller makes at most before it cancels wherever its task is.
const AIM_POLLS: u32 = 20_000;

#[derive(Debug, Clone, Copy)]
enum Delay {
    Yields(u32),
    Sleep(Duration),
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

/// Which tasks are cancelled, and how.
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
    for (nth, &task) in order[..doomed.min(plan.tasks)].iter().enumerate() {
        let first = task as u64 * plan.per_task;
        let ids = first..first + plan.per_task;
        let posts: Vec<u64> = ids.clone().filter(|&id| plan.mix.is_post(id)).collect();
        let larges: Vec<u64> = ids.filter(|&id| plan.mix.is_large(id)).collect();
        let delay = if rng.below(2) == 0 {
            Delay::Yields(rng.below(64) as u32)
        } else {
            Delay::Sleep(Duration::from_micros(rng.below(2000)))
        };
        let depth = plan.depth as u64;
        let pick = |rng: &mut Rng, of: &[u64]| of[rng.below(of.len() as u64) as usize] - first;
        // The first, and about one in ten of the rest, never start.
        let roll = if nth == 0 { 0 } else { rng.below(10) };
        dooms[task] = Some(match roll {
            0 => Doom::BeforeStart,
            // Armed before the POST is sent: its request enters the window `depth`
            // answers before its own.
            1 | 2 if !posts.is_empty() => {
                let at = pick(&mut rng, &posts);
                Doom::After {
                    answered: at.saturating_sub(depth + rng.below(3)),
                    delay: Delay::Yields(0),
                    aim: Aim::Sending,
                }
            }
            3 | 4 if !larges.is_empty() => {
                let at = pick(&mut rng, &larges);
                Doom::After {
                    answered: at.saturating_sub(rng.below(3)),
                    delay: Delay::Yields(0),
                    aim: Aim::LargeBody,
                }
            }
            _ => Doom::After {
                answered: rng.below(plan.per_task),
                delay,
                aim: Aim::Anywhere,
            },
        });
    }
    dooms
}

/// Thousands of tasks connect at once; a wait longer than this means something hangs.
fn config() -> Config {
    Config::default()
        .connect_timeout(Some(Duration::from_secs(60)))
        .timeout(Some(Duration::from_secs(60)))
}

/// How a task ended, as it recorded it.
#[derive(Debug)]
struct Outcome {
    tally: Tally,
    result: Result<(), Error>,
    /// Its answered responses are exactly its first requests.
    prefix: bool,
    /// Requests sent, neither answered nor listed unanswered, when it stopped.
    in_flight: u64,
}

/// A task as its canceller sees it.
#[derive(Debug, Default)]
struct Watch {
    probe: Probe,
    started: Cell<bool>,
    /// Responses answered when the cancel was issued, if it was issued before the task
    /// finished.
    cancelled_at: Cell<Option<u64>>,
}

/// What a wave's tasks share (all on one thread; borrowed only between waits).
struct Wave {
    first: usize,
    watches: Vec<Watch>,
    handles: RefCell<Vec<Option<JoinHandle<Outcome>>>>,
}

/// What all waves share.
#[derive(Debug, Default)]
struct Shared {
    /// Tasks finished.
    settled: Cell<usize>,
    /// Settled count at which the next sample is taken.
    next_sample: Cell<usize>,
    sample_step: usize,
    curve: RefCell<Curve>,
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
        report.waves += 1;
        report.after_waves.push(Sample::take(wave.end as u64));
    }
    report.curve = shared.curve.take();
    report.duration = started.elapsed();
    report
}

/// Runs tasks `wave` on a new runtime until all have finished, and checks each.
fn run_wave(
    plan: &Plan,
    range: std::ops::Range<usize>,
    dooms: &[Option<Doom>],
    shared: &Rc<Shared>,
    report: &mut Report,
) {
    let mut runtime = match Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            report.problem(format!("no green runtime: {e}"));
            return;
        }
    };
    let wave = Rc::new(Wave {
        first: range.start,
        watches: range.clone().map(|_| Watch::default()).collect(),
        handles: RefCell::new(Vec::with_capacity(range.len())),
    });
    for index in range.clone() {
        let (plan, shared_, wave_) = (*plan, Rc::clone(shared), Rc::clone(&wave));
        let doom = dooms[index];
        let handle = runtime.spawn(move |task| {
            let outcome = run_task(task, &plan, index, doom, &wave_);
            shared_.settle();
            outcome
        });
        if let Some(Doom::BeforeStart) = doom {
            runtime.cancel(&handle);
            // It never runs, so it never settles itself.
            shared.settle();
        }
        wave.handles.borrow_mut().push(Some(handle));
    }
    if let Err(e) = runtime.run() {
        report.problem(format!("green runtime: {e}"));
    }
    let handles = std::mem::take(&mut *wave.handles.borrow_mut());
    for (index, handle) in range.zip(handles) {
        let Some(handle) = handle else { continue };
        if !handle.is_finished() {
            report.problem(format!("task {index} never finished (hangs)"));
            continue;
        }
        let joined = runtime.block_on(handle);
        check(
            plan,
            index,
            dooms[index],
            &wave.watches[index - wave.first],
            joined,
            report,
        );
    }
    // Nothing is left for the drop to cancel: every task has finished.
    drop(runtime);
}

/// One task: its requests over its own connection; if doomed, it spawns its canceller once
/// it has read the chosen number of responses.
fn run_task(
    task: &Task<'_>,
    plan: &Plan,
    index: usize,
    doom: Option<Doom>,
    wave: &Rc<Wave>,
) -> Outcome {
    let watch = &wave.watches[index - wave.first];
    watch.started.set(true);
    let trigger = match doom {
        Some(Doom::After {
            answered,
            delay,
            aim,
        }) => Some((answered, delay, aim)),
        _ => None,
    };
    let arm = |answered: u64| {
        if let Some((_, delay, aim)) = trigger.filter(|&(at, ..)| at == answered) {
            let wave = Rc::clone(wave);
            // Detached: it finishes on its own; the runtime runs until it has.
            let _canceller = task.spawn(move |task| cancel_later(task, &wave, index, delay, aim));
        }
    };
    arm(0);
    let first = index as u64 * plan.per_task;
    let mut outcome = Outcome {
        tally: Tally::default(),
        result: Ok(()),
        prefix: true,
        in_flight: 0,
    };
    match task.connect_with("127.0.0.1", plan.port, config()) {
        Ok(conn) => {
            let shrunk = Cell::new(-1);
            let on_answer = |answered: u64| {
                shrink_send_buffer(&conn, &shrunk);
                arm(answered);
            };
            let mut pipeliner = Pipeliner::new(&conn, plan.depth, first, plan.per_task)
                .mix(plan.mix)
                .watched(&watch.probe, &on_answer);
            outcome.result = pipeliner.run();
            outcome.prefix = pipeliner.answered_prefix();
            outcome.tally = pipeliner.tally;
            outcome.in_flight = watch.probe.in_flight.get();
        }
        Err(e) => outcome.result = Err(e),
    }
    outcome
}

/// Socket send buffer the tasks' connections get once open. Loopback sockets otherwise take
/// a 128 KiB POST body in one write, and a cofunction's send never waits.
const SEND_BUFFER: libc::c_int = 8 * 1024;

/// Sets `conn`'s socket send buffer to [`SEND_BUFFER`], once per socket (`done` holds the
/// last descriptor done).
#[allow(unsafe_code)] // setsockopt has no safe wrapper among the dependencies
fn shrink_send_buffer<P: dugong::Park>(conn: &dugong::HttpConnection<P>, done: &Cell<i32>) {
    use std::os::fd::AsRawFd;
    let fd = conn.as_raw_fd();
    if fd < 0 || fd == done.get() {
        return;
    }
    done.set(fd);
    let size = SEND_BUFFER;
    // SAFETY: `fd` is the connection's open socket; `size` is a valid `c_int` read by the
    // call only, and its length is passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            std::ptr::addr_of!(size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// A doomed task's canceller: waits `delay` (and, if aimed, until the task is seen in that
/// kind of call), then cancels task `index`.
fn cancel_later(task: &Task<'_>, wave: &Wave, index: usize, delay: Delay, aim: Aim) {
    match delay {
        Delay::Yields(n) => (0..n).for_each(|_| task.yield_now()),
        Delay::Sleep(d) => task.sleep(d),
    }
    let watch = &wave.watches[index - wave.first];
    let finished = || {
        wave.handles.borrow()[index - wave.first]
            .as_ref()
            .is_none_or(JoinHandle::is_finished)
    };
    let there = || {
        let p = &watch.probe;
        match aim {
            Aim::Anywhere => true,
            Aim::Sending => p.at.get() == Where::Sending && p.in_cofun.get(),
            Aim::LargeBody => p.at.get() == Where::Body && p.large_body.get(),
        }
    };
    // A zero sleep lets the runtime poll its sockets (a yield would not: only the ready
    // tasks would run), so the task moves on between looks.
    let mut polls = 0;
    while !there() && !finished() && polls < AIM_POLLS {
        task.sleep(Duration::ZERO);
        polls += 1;
    }
    let handles = wave.handles.borrow();
    let Some(Some(handle)) = handles.get(index - wave.first) else {
        return;
    };
    if !handle.is_finished() {
        watch.cancelled_at.set(Some(watch.probe.answered.get()));
        task.cancel(handle);
    }
}

/// Checks how task `index` ended against its plan.
fn check(
    plan: &Plan,
    index: usize,
    doom: Option<Doom>,
    watch: &Watch,
    joined: std::thread::Result<Outcome>,
    report: &mut Report,
) {
    let outcome = match (doom, joined) {
        (Some(Doom::BeforeStart), Err(_)) => {
            report.doomed += 1;
            report.cancelled += 1;
            report.landings.before_start += 1;
            if watch.started.get() {
                report.problem(format!(
                    "task {index} was cancelled before it started, yet ran"
                ));
            } else {
                report.doomed_correct += 1;
            }
            return;
        }
        (Some(Doom::BeforeStart), Ok(_)) => {
            report.doomed += 1;
            report.problem(format!(
                "task {index} was cancelled before it started, yet returned"
            ));
            return;
        }
        (_, Err(_)) => {
            report.problem(format!("task {index} panicked"));
            return;
        }
        (_, Ok(outcome)) => outcome,
    };
    report.tally.add(&outcome.tally);
    let clean = outcome.tally.anomaly_count == 0 && outcome.prefix;
    let complete = clean && outcome.result.is_ok() && outcome.tally.answered == plan.per_task;
    let Some(Doom::After { answered, .. }) = doom else {
        report.unresolved += outcome.in_flight;
        report.survivors += 1;
        if complete {
            report.survivors_complete += 1;
        } else if let Err(e) = &outcome.result {
            report.problem(format!("task {index}: {e}"));
        }
        return;
    };
    report.doomed += 1;
    report.unresolved += outcome.in_flight;
    let at_cancel = watch.cancelled_at.get();
    match (&outcome.result, at_cancel) {
        // Its canceller came after it had finished, or it did not wait again after the
        // cancel (cancelling takes effect at the next wait): it must be complete.
        (Ok(()), _) => {
            report.landings.missed += 1;
            if complete {
                report.doomed_correct += 1;
            } else {
                report.problem(format!(
                    "task {index} (cancel missed) incomplete: {} answered",
                    outcome.tally.answered
                ));
            }
        }
        (Err(Error::Cancelled), Some(at_cancel)) => {
            report.cancelled += 1;
            let probe = &watch.probe;
            let in_cofun = probe.in_cofun.get();
            let l = &mut report.landings;
            match probe.at.get() {
                Where::Sending => l.sending += 1,
                Where::Head if in_cofun => l.head_in_cofun += 1,
                Where::Head => l.head += 1,
                Where::Body => {
                    if in_cofun {
                        l.body_in_cofun += 1;
                    } else {
                        l.body += 1;
                    }
                    l.large_body += usize::from(probe.large_body.get());
                }
                Where::Idle => report.problem(format!("task {index} cancelled outside any call")),
            }
            let after = outcome.tally.answered.saturating_sub(at_cancel);
            report.answered_after_cancel.0 += after;
            report.answered_after_cancel.1 = report.answered_after_cancel.1.max(after);
            if clean && outcome.tally.answered >= answered {
                report.doomed_correct += 1;
            } else {
                report.problem(format!(
                    "task {index} cancelled: {} answered (cancel armed at {answered}), prefix {}, {} anomalies",
                    outcome.tally.answered, outcome.prefix, outcome.tally.anomaly_count
                ));
            }
        }
        (other, at_cancel) => report.problem(format!(
            "task {index} (cancel issued after {at_cancel:?} answers) ended with {other:?} \
             ({} answered)",
            outcome.tally.answered
        )),
    }
}
