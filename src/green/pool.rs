//! Green threads on every core: a [`Pool`] of worker threads, each running its own
//! [`Runtime`] (scheduler, poller, timers). A task stays on the worker that started it: its
//! stack never moves, so nothing `!Send` inside it is ever touched from another thread. Only
//! spawn requests (`Send` closures) and results (`Send` values) cross threads.
//!
//! A worker's runtime has one task of its own, the *mailbox*: it sleeps on a socket pair's
//! read end (in the runtime's poller like any socket), and a spawn pushes its closure into the
//! worker's inbox and writes one byte to wake it.

use std::any::Any;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread;

use socket2::Socket;

use super::{Green, Runtime, Task};
use crate::io::{ParkImpl, Transport, Wake, READABLE};

/// A spawn request: the task's body, run on the worker's runtime.
type Job = Box<dyn FnOnce(&Task<'_>) + Send>;

/// A worker as spawners see it.
struct Slot {
    inbox: Mutex<Inbox>,
    /// Writing a byte wakes the worker's mailbox task.
    bell: UnixStream,
    /// Tasks placed on this worker and not finished: placement picks the fewest.
    live: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Inbox {
    jobs: Vec<Job>,
    /// The worker has stopped: new jobs are dropped (their handles then report it).
    closed: bool,
    /// Asked to stop.
    stop: bool,
}

impl Slot {
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        // Nothing is left half-done under this lock.
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ring(&self) {
        // A full socket buffer means the worker has bytes to read already: it will look.
        let _ = (&self.bell).write(&[1]);
    }

    fn post(&self, job: Job) {
        let mut inbox = self.inbox();
        if inbox.closed {
            drop(inbox);
            // Dropping the job drops its completer, which reports that it never ran.
            return drop(job);
        }
        inbox.jobs.push(job);
        drop(inbox);
        self.ring();
    }
}

/// What spawners share: the workers' inboxes.
struct Shared {
    slots: Vec<Slot>,
}

impl Shared {
    fn spawn<T, F>(&self, f: F) -> PoolHandle<T>
    where
        F: FnOnce(&Task<'_>) -> T + Send + 'static,
        T: Send + 'static,
    {
        let slot = self
            .slots
            .iter()
            .min_by_key(|s| s.live.load(Ordering::Relaxed))
            .expect("a pool has at least one worker");
        slot.live.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(JoinState::default());
        let completer = Completer {
            state: Some(Arc::clone(&state)),
            live: Arc::clone(&slot.live),
        };
        slot.post(Box::new(move |task| {
            let mut completer = completer;
            completer.complete(catch_unwind(AssertUnwindSafe(|| f(task))));
        }));
        PoolHandle { state }
    }
}

/// A multi-threaded green runtime: `workers` threads, each with its own scheduler, poller and
/// timers. [`spawn`](Self::spawn) places a task on the worker with the fewest live tasks,
/// where it runs to its end. Dropping the pool stops every worker: tasks still suspended are
/// cancelled as when a [`Runtime`] is dropped (their waits end with
/// [`Error::Cancelled`](crate::Error::Cancelled), no stack is unwound), and tasks that had
/// not started never run; their handles report it.
///
/// ```
/// # let server = dugong_harness::LoopbackServer::start();
/// # let port = server.port();
/// use dugong::Body;
/// use http::{HeaderMap, Method};
///
/// let pool = dugong::green::Pool::new(2)?;
/// let handles: Vec<_> = (0..8)
///     .map(|i| {
///         pool.spawn(move |task| -> Result<usize, dugong::Error> {
///             let conn = task.connect("127.0.0.1", port)?;
///             conn.send_request(&Method::GET, &format!("/bytes/{i}"), &HeaderMap::new(), Body::Empty)?;
///             conn.read_response()?;
///             Ok(conn.read_all()?.len())
///         })
///     })
///     .collect();
/// let total: usize = handles.into_iter().map(|h| h.join().expect("no panic").expect("no error")).sum();
/// assert_eq!(total, (0..8).sum());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Pool {
    shared: Arc<Shared>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of `workers` threads (at least one).
    ///
    /// # Errors
    ///
    /// When the OS refuses a thread, a poller or a socket pair.
    pub fn new(workers: usize) -> io::Result<Self> {
        let mut slots = Vec::new();
        let mut doors = Vec::new();
        for _ in 0..workers.max(1) {
            let (bell, door) = UnixStream::pair()?;
            bell.set_nonblocking(true)?;
            door.set_nonblocking(true)?;
            slots.push(Slot {
                inbox: Mutex::default(),
                bell,
                live: Arc::default(),
            });
            doors.push(door);
        }
        let shared = Arc::new(Shared { slots });
        let mut pool = Pool {
            shared,
            threads: Vec::new(),
        };
        for (index, door) in doors.into_iter().enumerate() {
            let shared = Arc::clone(&pool.shared);
            let (ready, started) = mpsc::channel();
            let thread = thread::Builder::new()
                .name(format!("dugong-green-{index}"))
                .spawn(move || worker(shared, index, door, &ready))?;
            pool.threads.push(thread);
            // Dropping `pool` on an error stops the workers started so far.
            started
                .recv()
                .unwrap_or_else(|_| Err(io::Error::other("a worker thread died at start")))?;
        }
        Ok(pool)
    }

    /// A pool with one worker per available core ([`std::thread::available_parallelism`]).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn per_core() -> io::Result<Self> {
        Self::new(thread::available_parallelism().map_or(1, usize::from))
    }

    /// Starts `f` as a task on the worker with the fewest live tasks.
    pub fn spawn<T, F>(&self, f: F) -> PoolHandle<T>
    where
        F: FnOnce(&Task<'_>) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.shared.spawn(f)
    }

    /// A handle that spawns on this pool from anywhere, tasks included. Once the pool is
    /// dropped, what it spawns never runs (its handle says so).
    pub fn spawner(&self) -> Spawner {
        Spawner {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.threads.len()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for slot in &self.shared.slots {
            slot.inbox().stop = true;
            slot.ring();
        }
        for thread in self.threads.drain(..) {
            // A worker's panic was its own; the others still stop.
            let _ = thread.join();
        }
    }
}

/// Spawns on a [`Pool`] from any thread or task ([`Pool::spawner`]).
#[derive(Clone)]
pub struct Spawner {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawner").finish_non_exhaustive()
    }
}

impl Spawner {
    /// As [`Pool::spawn`].
    pub fn spawn<T, F>(&self, f: F) -> PoolHandle<T>
    where
        F: FnOnce(&Task<'_>) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.shared.spawn(f)
    }
}

/// One worker thread: its runtime runs the mailbox task until the pool stops, then is
/// dropped, which cancels the tasks still suspended. Jobs that arrive after that are
/// dropped unrun.
fn worker(
    shared: Arc<Shared>,
    index: usize,
    door: UnixStream,
    ready: &mpsc::Sender<io::Result<()>>,
) {
    let mut runtime = match Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return drop(ready.send(Err(e))),
    };
    let _ = ready.send(Ok(()));
    let inboxes = Arc::clone(&shared);
    let mailbox = runtime.spawn(move |task| mailbox(task, &inboxes.slots[index], door));
    if let Ok(Err(e)) = runtime.block_on(mailbox) {
        log::error!(target: crate::io::LOG_TARGET, "green pool worker {index}: {e}");
    }
    drop(runtime);
    let orphans = {
        let mut inbox = shared.slots[index].inbox();
        inbox.closed = true;
        std::mem::take(&mut inbox.jobs)
    };
    drop(orphans);
}

/// The worker's own task: spawns what arrives in its inbox, sleeping on `door` in between,
/// until the pool stops (or the runtime cancels it).
fn mailbox(task: &Task<'_>, slot: &Slot, door: UnixStream) -> io::Result<()> {
    let door = Transport::waker(
        Socket::from(std::os::fd::OwnedFd::from(door)),
        Some(task.reactor()),
    )?;
    let park = Green { task };
    let mut bytes = [0u8; 64];
    loop {
        // Edge-triggered: read the door empty before sleeping on it again.
        loop {
            match door.recv(&mut bytes) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        let (jobs, stop) = {
            let mut inbox = slot.inbox();
            (std::mem::take(&mut inbox.jobs), inbox.stop)
        };
        if stop {
            // Dropped unrun: their handles report that the pool stopped.
            drop(jobs);
            return Ok(());
        }
        for job in jobs {
            drop(task.spawn(move |task| job(task)));
        }
        if let Wake::Cancelled = park.park(&door, READABLE, None)? {
            return Ok(());
        }
    }
}

/// Where a pooled task's result goes.
struct JoinState<T> {
    result: Mutex<Option<thread::Result<T>>>,
    done: Condvar,
}

impl<T> Default for JoinState<T> {
    fn default() -> Self {
        JoinState {
            result: Mutex::new(None),
            done: Condvar::new(),
        }
    }
}

impl<T> JoinState<T> {
    fn lock(&self) -> MutexGuard<'_, Option<thread::Result<T>>> {
        self.result.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Delivers a pooled task's result once, and counts the task off its worker. Dropped
/// without a result (the task never ran, or its stack was leaked), it reports that.
struct Completer<T> {
    state: Option<Arc<JoinState<T>>>,
    live: Arc<AtomicUsize>,
}

impl<T> Completer<T> {
    fn complete(&mut self, result: thread::Result<T>) {
        if let Some(state) = self.state.take() {
            *state.lock() = Some(result);
            state.done.notify_all();
            self.live.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        let never: Box<dyn Any + Send> = Box::new("the pool stopped before the task finished");
        self.complete(Err(never));
    }
}

/// The result of a task spawned on a [`Pool`]: [`join`](Self::join) from any thread; from a
/// green task, join through [`Task::blocking`] (`task.blocking(move || handle.join())`), so
/// the task's worker is not blocked.
#[must_use = "a task's result and panic are only seen through its handle"]
pub struct PoolHandle<T> {
    state: Arc<JoinState<T>>,
}

impl<T> std::fmt::Debug for PoolHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> PoolHandle<T> {
    /// Whether the task has finished (or will never run).
    pub fn is_finished(&self) -> bool {
        self.state.lock().is_some()
    }

    /// Blocks the calling thread until the task has finished, and returns its result.
    ///
    /// # Errors
    ///
    /// The task's panic payload; or a payload saying the pool stopped before the task
    /// finished.
    pub fn join(self) -> thread::Result<T> {
        let mut result = self.state.lock();
        loop {
            if let Some(result) = result.take() {
                return result;
            }
            result = self
                .state
                .done
                .wait(result)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}
