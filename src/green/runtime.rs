//! The single-threaded scheduler: tasks as coroutines, one poller, a timer heap.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::Yielder;

use super::Green;
use crate::coroutine::{Cancel, Fiber, Resumed, StackPool};
use crate::io::{IdMap, Offload, ParkImpl, Reactor, Ready, Wake as ParkWake, READABLE};
use crate::{Config, Error, HttpConnection};

/// Stack per task. Reserved, not committed: 10,000 idle tasks touch a few pages each.
const STACK_SIZE: usize = 128 * 1024;

/// Why a task suspended.
#[derive(Debug)]
pub(super) enum Parked {
    /// Its socket with reactor key `key` was armed; wake it when ready for some of
    /// `interest` or at `deadline`.
    Io {
        key: usize,
        interest: Ready,
        deadline: Option<Instant>,
    },
    /// Wake it at this instant.
    Sleep(Instant),
    /// Wake it after the others had a turn.
    Yield,
    /// Wake it when task `id` has finished.
    Join(u64),
}

/// What a task is resumed with.
#[derive(Debug)]
pub(super) enum Wake {
    /// First run.
    Start,
    /// Its socket is ready (or: its sleep, yield or join is over).
    Ready(Ready),
    /// Its deadline passed first.
    TimedOut,
    /// The runtime is going away: return as soon as possible.
    Cancel,
}

impl Cancel for Wake {
    fn cancel() -> Self {
        Wake::Cancel
    }
}

type TaskFiber = Fiber<'static, Wake, Parked, ()>;
type PanicSink = Box<dyn FnOnce(Box<dyn Any + Send>)>;
type Body = Box<dyn FnOnce(&Task<'_>)>;

/// What the runtime and its tasks share.
struct Shared {
    reactor: Arc<Reactor>,
    /// Tasks spawned since the scheduler last looked.
    spawned: RefCell<Vec<(u64, Body, PanicSink)>>,
    /// Tasks cancelled since the scheduler last looked.
    cancelled: RefCell<Vec<u64>>,
    next_id: Cell<u64>,
}

/// A running task's handle to its runtime, passed to the task's closure: spawn, join, sleep,
/// yield, and make connections that suspend the task instead of blocking.
pub struct Task<'a> {
    yielder: &'a Yielder<Wake, Parked>,
    shared: &'a Rc<Shared>,
    id: u64,
}

impl fmt::Debug for Task<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").field("id", &self.id).finish()
    }
}

impl<'a> Task<'a> {
    pub(super) fn suspend(&self, parked: Parked) -> Wake {
        self.yielder.suspend(parked)
    }

    pub(super) fn reactor(&self) -> &Arc<Reactor> {
        &self.shared.reactor
    }

    /// A connection to `host:port` that suspends this task whenever it would block. Its
    /// type says so (`HttpConnection<Green<'_>>`), and its lifetime keeps it in this task.
    ///
    /// # Errors
    ///
    /// As [`HttpConnection::new`].
    pub fn connect(&self, host: &str, port: u16) -> Result<HttpConnection<Green<'_>>, Error> {
        self.connect_with(host, port, Config::default())
    }

    /// As [`connect`](Self::connect), with `config`.
    ///
    /// # Errors
    ///
    /// As [`HttpConnection::new`].
    pub fn connect_with(
        &self,
        host: &str,
        port: u16,
        config: Config,
    ) -> Result<HttpConnection<Green<'_>>, Error> {
        let origin = crate::proto::Origin::new(crate::proto::Scheme::Http, host, port);
        self.open(&origin, config)
    }

    /// A connection to `origin` (`http` or `https`) with `config` that suspends this task
    /// whenever it would block.
    ///
    /// # Errors
    ///
    /// As [`HttpConnection::open`].
    pub fn open(
        &self,
        origin: &crate::proto::Origin,
        config: Config,
    ) -> Result<HttpConnection<Green<'_>>, Error> {
        HttpConnection::with_park(origin, config, Green { task: self })
    }

    /// Starts a new task on this runtime. It first runs when this task next suspends.
    pub fn spawn<T: 'static>(&self, f: impl FnOnce(&Task<'_>) -> T + 'static) -> JoinHandle<T> {
        spawn_on(self.shared, f)
    }

    /// Suspends this task until the task behind `handle` has finished, and returns its
    /// result, or its panic.
    ///
    /// # Errors
    ///
    /// The task's panic payload; or, if this task is cancelled while waiting (by
    /// [`Task::cancel`], [`Runtime::cancel`] or its runtime being dropped), the payload
    /// `"cancelled while joining"` (a `&'static str`).
    pub fn join<T>(&self, handle: JoinHandle<T>) -> std::thread::Result<T> {
        loop {
            if let Some(result) = handle.slot.borrow_mut().take() {
                return result;
            }
            if let Wake::Cancel = self.suspend(Parked::Join(handle.id)) {
                return Err(Box::new("cancelled while joining"));
            }
        }
    }

    /// Runs `work` on a thread of its own and suspends this task until it returns; the
    /// runtime's other tasks run meanwhile. For work that would block the runtime's thread:
    /// file I/O, a synchronous library call, a long computation. Each call starts a thread
    /// (some tens of microseconds), so it suits work that takes longer than that.
    ///
    /// ```
    /// let (answer, worker) = dugong::green::run(|task| {
    ///     task.blocking(|| (6 * 7, std::thread::current().id()))
    /// })
    /// .expect("no panic in the task")
    /// .expect("no panic in the work");
    /// assert_eq!(answer, 42);
    /// assert_ne!(worker, std::thread::current().id());
    /// ```
    ///
    /// # Errors
    ///
    /// `work`'s panic payload. If this task is cancelled (or its runtime dropped) while it
    /// waits, a payload saying so: the work runs on to its end regardless, and its result
    /// is dropped. If no thread or socket pair could be had, the `io::Error` as payload.
    pub fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::Result<T> {
        let offload = Offload::start("dugong-blocking", work, Some(self.reactor()))
            .map_err(|e| Box::new(e) as Box<dyn Any + Send>)?;
        let park = Green { task: self };
        loop {
            if let Some(result) = offload.take() {
                return result;
            }
            match park.park(offload.transport(), READABLE, None) {
                Ok(ParkWake::Cancelled) => return Err(Box::new("cancelled while waiting")),
                Ok(_) => {}
                Err(e) => return Err(Box::new(e)),
            }
        }
    }

    /// Suspends this task for `duration`; the others run meanwhile.
    pub fn sleep(&self, duration: Duration) {
        self.suspend(Parked::Sleep(crate::io::now() + duration));
    }

    /// Lets the other ready tasks run before this one continues.
    pub fn yield_now(&self) {
        self.suspend(Parked::Yield);
    }

    /// Cancels the task behind `handle` (see [`Runtime::cancel`]); it notices when this task
    /// next suspends.
    pub fn cancel<T>(&self, handle: &JoinHandle<T>) {
        self.shared.cancelled.borrow_mut().push(handle.id);
    }
}

/// The result of a spawned task, once it has finished: [`Task::join`] inside the runtime,
/// [`Runtime::block_on`] outside it.
#[must_use = "a task's result and panic are only seen through its handle"]
pub struct JoinHandle<T> {
    id: u64,
    slot: Rc<RefCell<Option<std::thread::Result<T>>>>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = self.slot.borrow().is_some();
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .field("finished", &done)
            .finish()
    }
}

impl<T> JoinHandle<T> {
    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        self.slot.borrow().is_some()
    }
}

fn spawn_on<T: 'static>(
    shared: &Rc<Shared>,
    f: impl FnOnce(&Task<'_>) -> T + 'static,
) -> JoinHandle<T> {
    let id = shared.next_id.get();
    shared.next_id.set(id + 1);
    let slot = Rc::new(RefCell::new(None));
    let (on_return, on_panic) = (Rc::clone(&slot), Rc::clone(&slot));
    let body: Body = Box::new(move |task| {
        let value = f(task);
        *on_return.borrow_mut() = Some(Ok(value));
    });
    let sink: PanicSink = Box::new(move |payload| *on_panic.borrow_mut() = Some(Err(payload)));
    shared.spawned.borrow_mut().push((id, body, sink));
    JoinHandle { id, slot }
}

/// A task's code: not started yet (no stack taken, so a burst of spawns costs no memory), or
/// a coroutine.
enum Run {
    NotStarted(Option<Body>),
    Started(TaskFiber),
}

/// A suspended or ready task.
struct Slot {
    run: Run,
    on_panic: Option<PanicSink>,
    /// The reactor key it waits on, if it waits for a socket.
    io_key: Option<u64>,
    /// When its current park times out, if it does.
    deadline: Option<Instant>,
    /// Its entry in `Sched::timers`, if it has one: never later than `deadline`, and kept
    /// when the task wakes for another reason (see `Sched::timers`).
    timer: Option<Instant>,
    /// Whether it is in the ready queue already.
    queued: bool,
    /// Whether it was cancelled: every park of it ends at once with `Wake::Cancel`.
    cancelled: bool,
}

/// What the scheduler keeps besides the task table: the ready queue, timers and socket
/// waiters. Kept apart from `Runtime::tasks` so a task's slot, once looked up, can be
/// parked and queued without looking it up again.
#[derive(Default)]
struct Sched {
    ready: VecDeque<(u64, Wake)>,
    /// Timer entries, soonest first: one per task at most, removed when the task ends.
    ///
    /// An entry is not removed when its task wakes before it (nearly every I/O wait ends
    /// that way, and each wait sets a deadline): the next park with a deadline no earlier
    /// reuses it, so a run of waits costs no tree operations. An entry that fires early is
    /// moved to its task's current deadline, or dropped if the task has none.
    timers: BTreeSet<(Instant, u64)>,
    /// How many tasks have a deadline (their entries are the live ones).
    deadlines: usize,
    io_waiters: IdMap<usize, (u64, Ready)>,
    /// The most timers ever held at once (for tests of the bound).
    #[cfg(test)]
    peak_timers: usize,
}

/// A single-threaded runtime for green tasks. [`run`] covers the common case.
///
/// Dropping a runtime with suspended tasks cancels them: each is resumed with a cancel signal
/// (its pending operation fails with [`Error::Cancelled`]) until it
/// returns. No stack is unwound, so this is safe under `panic = "abort"`.
pub struct Runtime {
    shared: Rc<Shared>,
    tasks: IdMap<u64, Slot>,
    sched: Sched,
    joiners: IdMap<u64, Vec<u64>>,
    stacks: StackPool,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime with its poller.
    ///
    /// # Errors
    ///
    /// When the OS refuses a poller (out of descriptors).
    pub fn new() -> std::io::Result<Self> {
        Ok(Self::with_reactor(Reactor::new()?))
    }

    /// A runtime whose tasks' connections (made with [`Task::open`] and the like, to any
    /// address) come from `network`, and whose waits and timers run on the simulation's
    /// virtual clock: the green path in a deterministic simulation. One connection may
    /// wait at a time; a second one waiting makes the runtime fail with an I/O error.
    #[cfg(feature = "sim")]
    pub fn simulated(network: Arc<dyn crate::sim::Network>) -> Self {
        Self::with_reactor(Reactor::simulated(network))
    }

    fn with_reactor(reactor: Arc<Reactor>) -> Self {
        Runtime {
            shared: Rc::new(Shared {
                reactor,
                spawned: RefCell::new(Vec::new()),
                cancelled: RefCell::new(Vec::new()),
                next_id: Cell::new(0),
            }),
            tasks: IdMap::default(),
            sched: Sched::default(),
            joiners: IdMap::default(),
            stacks: StackPool::new(STACK_SIZE, usize::MAX),
        }
    }

    /// Starts a task. It runs once the runtime runs ([`run`](Self::run) or
    /// [`block_on`](Self::block_on)).
    pub fn spawn<T: 'static>(&mut self, f: impl FnOnce(&Task<'_>) -> T + 'static) -> JoinHandle<T> {
        spawn_on(&self.shared, f)
    }

    /// Cancels the task behind `handle`: its current wait (or its next, if it is running or
    /// ready) ends at once — a connection's call with [`Error::Cancelled`], a
    /// [`join`](Task::join) with an error payload, a sleep early — and so does every wait
    /// after it, so the task returns soon, through its own code: no stack is unwound. Its
    /// connections are closed when they drop. A task that has not started never runs, and
    /// its join gives an error payload. Cancelling a finished task does nothing.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // A server that accepts connections and never answers.
    /// let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let port = silent.local_addr()?.port();
    ///
    /// let mut runtime = dugong::green::Runtime::new()?;
    /// let slow = runtime.spawn(move |task| -> Result<(), dugong::Error> {
    ///     let conn = task.connect("127.0.0.1", port)?;
    ///     conn.send_request(&http::Method::GET, "/", &http::HeaderMap::new(), dugong::Body::Empty)?;
    ///     conn.read_response()?; // waits for the 30 s operation timeout, unless cancelled
    ///     Ok(())
    /// });
    /// let canceller = runtime.spawn(move |task| task.sleep(Duration::from_millis(20)));
    /// runtime.block_on(canceller).expect("no panic");
    /// runtime.cancel(&slow);
    /// let outcome = runtime.block_on(slow).expect("no panic");
    /// assert!(matches!(outcome, Err(dugong::Error::Cancelled)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cancel<T>(&mut self, handle: &JoinHandle<T>) {
        self.shared.cancelled.borrow_mut().push(handle.id);
    }

    /// Runs until every task has finished.
    ///
    /// # Errors
    ///
    /// When waiting on the poller fails.
    pub fn run(&mut self) -> std::io::Result<()> {
        self.run_while(|| true)
    }

    /// Runs until the task behind `handle` has finished and returns its result; other tasks
    /// run as needed and may stay suspended afterwards.
    ///
    /// # Errors
    ///
    /// The task's panic payload, or a payload describing a poller failure or tasks that can
    /// never finish (all waiting on each other).
    pub fn block_on<T>(&mut self, handle: JoinHandle<T>) -> std::thread::Result<T> {
        let slot = Rc::clone(&handle.slot);
        if let Err(e) = self.run_while(|| slot.borrow().is_none()) {
            return Err(Box::new(e));
        }
        let result = slot.borrow_mut().take();
        result.unwrap_or_else(|| Err(Box::new("the task can never finish")))
    }

    /// Runs while `go_on` says so and some task can make progress.
    fn run_while(&mut self, mut go_on: impl FnMut() -> bool) -> std::io::Result<()> {
        loop {
            self.adopt_spawned()?;
            // One pass over the tasks ready now. A task readied meanwhile (one that yields,
            // a joiner, a new task) runs in the next pass, after the sockets and timers were
            // looked at: a task that keeps yielding cannot starve those that wait on them.
            for _ in 0..self.sched.ready.len() {
                let Some((id, wake)) = self.sched.ready.pop_front() else {
                    break;
                };
                self.resume(id, wake);
                self.adopt_spawned()?;
            }
            if !go_on() || self.tasks.is_empty() {
                return Ok(());
            }
            let waiting = !self.sched.io_waiters.is_empty() || self.sched.deadlines > 0;
            if self.sched.ready.is_empty() {
                if !waiting {
                    // Everything left waits on a join that cannot happen.
                    return Ok(());
                }
                self.poll(false)?;
            } else if waiting {
                self.poll(true)?;
            }
        }
    }

    /// Moves newly spawned tasks into the table, ready to start, and files cancellations.
    ///
    /// Checked after every resume: most find nothing, and taking two empty vectors (and
    /// dropping their iterators) cost more than a task switch's own work.
    #[inline]
    fn adopt_spawned(&mut self) -> std::io::Result<()> {
        if self.shared.spawned.borrow().is_empty() && self.shared.cancelled.borrow().is_empty() {
            return Ok(());
        }
        self.adopt_spawned_now()
    }

    #[inline(never)]
    fn adopt_spawned_now(&mut self) -> std::io::Result<()> {
        let spawned = std::mem::take(&mut *self.shared.spawned.borrow_mut());
        for (id, body, on_panic) in spawned {
            let slot = Slot {
                run: Run::NotStarted(Some(body)),
                on_panic: Some(on_panic),
                io_key: None,
                deadline: None,
                timer: None,
                queued: false,
                cancelled: false,
            };
            self.tasks.insert(id, slot);
            self.wake(id, Wake::Start);
        }
        let cancelled = std::mem::take(&mut *self.shared.cancelled.borrow_mut());
        for id in cancelled {
            let Some(slot) = self.tasks.get_mut(&id) else {
                continue;
            };
            slot.cancelled = true;
            if let Run::NotStarted(body) = &mut slot.run {
                // Dropped unrun; its `Start` wake-up, if queued, finds nothing to start.
                drop(body.take());
                self.finished(id, Some(Box::new("cancelled before it started")));
            } else {
                // Suspended: woken now. Queued or running: its next park is cancelled.
                self.wake(id, Wake::Cancel);
            }
        }
        Ok(())
    }

    /// The coroutine of task `id`, created on a pooled stack when it first runs.
    fn start(&mut self, id: u64) -> std::io::Result<()> {
        let Some(slot) = self.tasks.get_mut(&id) else {
            return Ok(());
        };
        let Run::NotStarted(body) = &mut slot.run else {
            return Ok(());
        };
        let Some(body) = body.take() else {
            return Ok(());
        };
        let stack = self.stacks.take()?;
        let shared = Rc::clone(&self.shared);
        let fiber = Fiber::new(stack, move |yielder: &Yielder<Wake, Parked>, first| {
            if let Wake::Cancel = first {
                return;
            }
            body(&Task {
                yielder,
                shared: &shared,
                id,
            });
        });
        slot.run = Run::Started(fiber);
        Ok(())
    }

    /// Runs task `id` until it suspends or finishes, and files it accordingly.
    fn resume(&mut self, id: u64, wake: Wake) {
        let Some(slot) = self.tasks.get_mut(&id) else {
            return;
        };
        if let Some(key) = slot.io_key.take() {
            self.sched.io_waiters.remove(&(key as usize));
        }
        if slot.deadline.take().is_some() {
            self.sched.deadlines -= 1;
        }
        slot.queued = false;
        let slot = match slot.run {
            Run::Started(_) => slot,
            Run::NotStarted(_) => {
                if let Err(e) = self.start(id) {
                    // No stack for it: the task fails as if it had panicked with the error.
                    return self.finished(id, Some(Box::new(e)));
                }
                match self.tasks.get_mut(&id) {
                    Some(slot) => slot,
                    None => return,
                }
            }
        };
        let Run::Started(fiber) = &mut slot.run else {
            return;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| fiber.resume(wake)));
        match outcome {
            Ok(Some(Resumed::Yield(parked))) => {
                if let Some(other) = self.sched.park(id, slot, parked) {
                    self.join_wait(id, other);
                }
            }
            Ok(Some(Resumed::Return(())) | None) => self.finished(id, None),
            Err(payload) => self.finished(id, Some(payload)),
        }
    }

    /// Task `id` waits for task `other` to finish (it is not cancelled: see [`Sched::park`]).
    fn join_wait(&mut self, id: u64, other: u64) {
        if self.tasks.contains_key(&other) {
            self.joiners.entry(other).or_default().push(id);
        } else {
            self.wake(id, Wake::Ready(Ready::default()));
        }
    }

    /// Queues task `id` to be resumed with `wake` (see [`Sched::wake`]).
    fn wake(&mut self, id: u64, wake: Wake) {
        if let Some(slot) = self.tasks.get_mut(&id) {
            self.sched.wake(id, slot, wake);
        }
    }

    fn finished(&mut self, id: u64, panic: Option<Box<dyn Any + Send>>) {
        let Some(mut slot) = self.tasks.remove(&id) else {
            return;
        };
        if let (Some(payload), Some(sink)) = (panic, slot.on_panic.take()) {
            sink(payload);
        }
        if let Some(at) = slot.timer {
            self.sched.timers.remove(&(at, id));
        }
        if slot.deadline.is_some() {
            self.sched.deadlines -= 1;
        }
        if let Run::Started(fiber) = slot.run {
            if let Some(stack) = fiber.into_stack() {
                self.stacks.put(stack);
            }
        }
        for joiner in self.joiners.remove(&id).unwrap_or_default() {
            self.wake(joiner, Wake::Ready(Ready::default()));
        }
    }

    /// Waits for sockets or the next timer (only looks, with `now_only`), and readies the
    /// tasks concerned.
    fn poll(&mut self, now_only: bool) -> std::io::Result<()> {
        let now = crate::io::now();
        let timeout = match self.sched.timers.first() {
            _ if now_only => Some(Duration::ZERO),
            // Entries left by tasks that woke early need no wait of their own.
            _ if self.sched.deadlines == 0 => None,
            Some((at, _)) => Some(at.saturating_duration_since(now)),
            None => None,
        };
        // Nothing a task queued may wait while the thread sleeps.
        crate::io::flush_thread();
        let mut woken = Vec::new();
        let waiters = &self.sched.io_waiters;
        let now = self.shared.reactor.poll(timeout, |key, r| {
            let Some(&(id, interest)) = waiters.get(&key) else {
                return Ready::default();
            };
            let claimed = r.and(interest);
            if !claimed.is_empty() {
                woken.push((id, Wake::Ready(claimed)));
            }
            claimed
        })?;
        for (id, wake) in woken {
            self.wake(id, wake);
        }
        while let Some(&(at, id)) = self.sched.timers.first() {
            if at > now {
                break;
            }
            self.sched.timers.pop_first();
            let Some(slot) = self.tasks.get_mut(&id) else {
                continue;
            };
            slot.timer = None;
            match slot.deadline {
                None => continue,
                Some(deadline) if deadline > now => {
                    // The task woke early and parked again with a later deadline.
                    slot.timer = Some(deadline);
                    self.sched.timers.insert((deadline, id));
                    continue;
                }
                Some(_) => {}
            }
            slot.deadline = None;
            self.sched.deadlines -= 1;
            let wake = if slot.io_key.is_some() {
                Wake::TimedOut
            } else {
                Wake::Ready(Ready::default())
            };
            self.sched.wake(id, slot, wake);
        }
        Ok(())
    }
}

impl Sched {
    /// Files task `id` (its `slot`), just suspended with `parked`. A join is left to the
    /// caller, which knows the other tasks: its id is returned.
    fn park(&mut self, id: u64, slot: &mut Slot, parked: Parked) -> Option<u64> {
        if slot.cancelled {
            self.wake(id, slot, Wake::Cancel);
            return None;
        }
        match parked {
            Parked::Io {
                key,
                interest,
                deadline,
            } => {
                slot.io_key = Some(key as u64);
                self.io_waiters.insert(key, (id, interest));
                if let Some(at) = deadline {
                    self.set_timer(id, slot, at);
                }
            }
            Parked::Sleep(at) => self.set_timer(id, slot, at),
            Parked::Yield => self.wake(id, slot, Wake::Ready(Ready::default())),
            Parked::Join(other) => return Some(other),
        }
        None
    }

    /// Sets task `id`'s deadline (it has none: deadlines are cleared whenever a task
    /// resumes), reusing its timer entry if that fires no later.
    fn set_timer(&mut self, id: u64, slot: &mut Slot, at: Instant) {
        if slot.deadline.replace(at).is_none() {
            self.deadlines += 1;
        }
        match slot.timer {
            Some(entry) if entry <= at => return,
            Some(entry) => {
                self.timers.remove(&(entry, id));
            }
            None => {}
        }
        slot.timer = Some(at);
        self.timers.insert((at, id));
        #[cfg(test)]
        {
            self.peak_timers = self.peak_timers.max(self.timers.len());
        }
    }

    /// Queues task `id` to be resumed with `wake` (once: a second wake-up before it ran is
    /// dropped, e.g. its deadline passing just as its socket became ready).
    fn wake(&mut self, id: u64, slot: &mut Slot, wake: Wake) {
        if slot.queued {
            return;
        }
        slot.queued = true;
        if let Some(key) = slot.io_key.take() {
            self.io_waiters.remove(&(key as usize));
        }
        self.ready.push_back((id, wake));
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.tasks.keys().copied().collect();
        for id in ids {
            let Some(slot) = self.tasks.remove(&id) else {
                continue;
            };
            // A task that never ran has no stack to leave: dropping its closure is enough.
            let Run::Started(mut fiber) = slot.run else {
                continue;
            };
            // Cancelled by resuming it with `Wake::Cancel` until it returns; one that will
            // not is leaked with its stack rather than unwound.
            if catch_unwind(AssertUnwindSafe(|| fiber.cancel())).is_err() {
                continue;
            }
        }
        self.shared.spawned.borrow_mut().clear();
    }
}

/// Runs `main` as the first task of a new runtime, until every task has finished, and
/// returns `main`'s result (or its panic).
///
/// # Panics
///
/// When the OS refuses a poller or a task stack.
pub fn run<T: 'static>(main: impl FnOnce(&Task<'_>) -> T + 'static) -> std::thread::Result<T> {
    let mut runtime = Runtime::new().expect("a poller for the green runtime");
    let handle = runtime.spawn(main);
    let slot = Rc::clone(&handle.slot);
    runtime.run().expect("the green runtime's poller");
    let result = slot.borrow_mut().take();
    result.unwrap_or_else(|| Err(Box::new("the main task can never finish")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::io::{ParkImpl, Transport, Wake as ParkWake, READABLE};

    /// A socket pair: one end registered with `task`'s reactor, as a transport; the other
    /// to write to it.
    fn registered_pair(task: &Task<'_>) -> (Transport, socket2::Socket) {
        use socket2::{Domain, Socket, Type};
        let (ours, theirs) = Socket::pair(Domain::UNIX, Type::STREAM, None).expect("pair");
        ours.set_nonblocking(true).expect("nonblocking");
        let transport = Transport::waker(ours, Some(task.reactor())).expect("register");
        (transport, theirs)
    }

    /// A task that parks 200,000 times with a 30 s deadline, each wait ended at once by a
    /// byte it wrote to the other end of its socket pair (an edge-triggered registration
    /// needs a new event per wait): the timer set holds at most the task's one entry
    /// throughout, nothing is left behind, and the runtime exits as soon as the task is done.
    #[test]
    fn timers_of_early_wakes_are_removed() {
        const PARKS: usize = 200_000;
        let mut runtime = Runtime::new().expect("runtime");
        let handle = runtime.spawn(move |task| {
            let park = Green { task };
            let (transport, theirs) = registered_pair(task);
            let mut woken = 0;
            let mut byte = [0u8; 1];
            for _ in 0..PARKS {
                theirs.send(b"x").expect("send");
                let wake = park.park(&transport, READABLE, Some(Duration::from_secs(30)));
                if matches!(wake, Ok(ParkWake::Ready(r)) if r.readable) {
                    woken += 1;
                }
                transport.recv(&mut byte).expect("the byte");
            }
            woken
        });
        let started = Instant::now();
        let woken = runtime.block_on(handle).expect("no panic");
        assert_eq!(woken, PARKS);
        assert_eq!(runtime.sched.peak_timers, 1, "one live timer at a time");
        assert!(runtime.sched.timers.is_empty());
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no stale timer delayed the end"
        );
    }

    /// Timer entries kept across early wakes never change when a wait ends: a short
    /// deadline after a long one that woke early times out on time, and a long wait after a
    /// short one that woke early is not ended when the short one's entry fires.
    #[test]
    fn kept_timer_entries_end_no_wait_early_or_late() {
        let mut runtime = Runtime::new().expect("runtime");
        let handle = runtime.spawn(move |task| {
            let park = Green { task };
            let (transport, theirs) = registered_pair(task);
            let mut byte = [0u8; 1];
            let mut wait = |timeout: Duration| {
                let started = Instant::now();
                let wake = park.park(&transport, READABLE, Some(timeout));
                let woke = match wake {
                    Ok(ParkWake::Ready(r)) if r.readable => {
                        transport.recv(&mut byte).expect("the byte");
                        "ready"
                    }
                    Ok(ParkWake::TimedOut) => "timed out",
                    other => panic!("unexpected wake {other:?}"),
                };
                (woke, started.elapsed())
            };
            // A long wait ended early leaves its entry; a shorter one still times out on time.
            theirs.send(b"x").expect("send");
            assert_eq!(wait(Duration::from_secs(30)).0, "ready");
            let (woke, took) = wait(Duration::from_millis(100));
            assert_eq!(woke, "timed out");
            assert!(
                took >= Duration::from_millis(100) && took < Duration::from_secs(5),
                "timed out after {took:?}"
            );
            // A short wait ended early leaves its entry; a longer one outlives it.
            theirs.send(b"x").expect("send");
            assert_eq!(wait(Duration::from_millis(50)).0, "ready");
            let sender = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                theirs.send(b"x").expect("send");
                theirs
            });
            let (woke, took) = wait(Duration::from_secs(30));
            assert_eq!(woke, "ready", "the short wait's entry ended the long wait");
            assert!(took >= Duration::from_millis(250), "woke after {took:?}");
            drop(sender.join());
        });
        runtime.block_on(handle).expect("no panic");
        assert_eq!(runtime.sched.peak_timers, 1, "one entry per task");
        assert!(runtime.sched.timers.is_empty());
        assert_eq!(runtime.sched.deadlines, 0);
    }
}
