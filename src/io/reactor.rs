//! The green runtime's readiness source: one poller for many sockets.
//!
//! On Linux it is a raw epoll instance with edge-triggered registrations: a socket is added
//! once, never re-armed, and a wait is a single `epoll_wait` — so a sequential request costs
//! its send, one wait and its receive. An edge is reported once: readiness that arrives for a
//! socket nobody waits on (or for the half nobody waits for) is kept as *unclaimed* and
//! handed to the next park on that socket, which then does not sleep. A kept edge may be
//! stale (the bytes were read meanwhile); the driver retries its call after every wake, so
//! that costs one failed non-blocking call, never a lost wake-up.
//!
//! Because an edge-triggered registration watches a socket even while nobody waits on it, the
//! epoll reactor also vouches for idle sockets ([`Reactor::is_quiet`]): one that its last poll,
//! less than [`QUIET_FOR`] ago, reported nothing for (no unclaimed bytes, no hang-up ever) had
//! nothing arrive up to that poll. A connection read empty since uses that instead of a probe
//! before it is reused.
//!
//! Elsewhere it is the `polling` crate with oneshot registrations, armed before each park.
//!
//! Under the `sim` feature a reactor may instead wait on simulated connections
//! ([`sim::Selector`](super::sim::Selector)), so the green runtime runs in the deterministic
//! simulation like every other send path.
#![allow(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use socket2::Socket;

use super::id_map::IdMap;
use super::transport::Ready;

/// How long after a poll the reactor still vouches for a socket it reported nothing for
/// ([`Reactor::is_quiet`]). A connection reused within it skips its stale-connection probe;
/// a green task that ran (or blocked its thread) longer since the last poll probes as a
/// blocking connection does. Tasks of a busy runtime run well within it between polls.
pub(crate) const QUIET_FOR: Duration = Duration::from_millis(1);

/// A poller shared by the sockets of one green runtime.
pub(crate) struct Reactor {
    selector: Selector,
    next_key: AtomicUsize,
    seen: Mutex<Seen>,
}

/// What polls reported that no park took.
#[derive(Default)]
struct Seen {
    /// Readiness reported for a key while nobody waited for it, and hang-ups (kept until the
    /// key is deregistered, whoever took the readiness).
    unclaimed: IdMap<usize, Kept>,
    /// When the last poll returned.
    polled_at: Option<Instant>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Kept {
    ready: Ready,
    hung_up: bool,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor").finish_non_exhaustive()
    }
}

/// Where readiness comes from.
enum Selector {
    /// The OS: epoll, or `polling`.
    Os(sys::Selector),
    /// A simulated network.
    #[cfg(feature = "sim")]
    Sim(super::sim::Selector),
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Arc<Self>> {
        Ok(Self::with(Selector::Os(sys::Selector::new()?)))
    }

    /// A reactor whose connections come from `network` and whose waits run it.
    #[cfg(feature = "sim")]
    pub(crate) fn simulated(network: Arc<dyn super::sim::Network>) -> Arc<Self> {
        Self::with(Selector::Sim(super::sim::Selector::new(network)))
    }

    fn with(selector: Selector) -> Arc<Self> {
        Arc::new(Reactor {
            selector,
            next_key: AtomicUsize::new(0),
            seen: Mutex::default(),
        })
    }

    /// A new simulated connection and its key, or `None` if this reactor waits on sockets.
    #[cfg(feature = "sim")]
    pub(crate) fn connect_simulated(
        &self,
    ) -> Option<io::Result<(usize, Arc<dyn super::sim::Peer>)>> {
        let Selector::Sim(selector) = &self.selector else {
            return None;
        };
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        Some(selector.connect(key).map(|peer| (key, peer)))
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        // Nothing is left half-done under this lock.
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `socket`, returning its key.
    ///
    /// # Safety
    ///
    /// `socket` must be [deregistered](Self::deregister) before it is closed.
    pub(crate) unsafe fn register(&self, socket: &Socket) -> io::Result<usize> {
        #[cfg_attr(not(feature = "sim"), allow(irrefutable_let_patterns))]
        let Selector::Os(sys) = &self.selector
        else {
            return Err(io::Error::other("a simulated reactor has no sockets"));
        };
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's promise.
        unsafe { sys.add(socket, key)? };
        Ok(key)
    }

    /// Removes key `key` (with its `socket`, if it is one) and forgets its unclaimed
    /// readiness.
    pub(crate) fn deregister(&self, socket: Option<&Socket>, key: usize) {
        match (&self.selector, socket) {
            // An error is ignored: the descriptor is closed right after, which removes it too.
            (Selector::Os(sys), Some(socket)) => drop(sys.delete(socket)),
            #[cfg(feature = "sim")]
            (Selector::Sim(selector), _) => selector.delete(key),
            _ => {}
        }
        self.seen().unclaimed.remove(&key);
    }

    /// Prepares key `key` (with its `socket`, if it is one) for a park on `interest`:
    /// returns the part of `interest` that is known ready already (the park then does not
    /// sleep), or nothing when the park must wait for the key's next event.
    pub(crate) fn arm(
        &self,
        socket: Option<&Socket>,
        key: usize,
        interest: Ready,
    ) -> io::Result<Ready> {
        if let Some(kept) = self.seen().unclaimed.get_mut(&key) {
            let ready = kept.ready.and(interest);
            if !ready.is_empty() {
                kept.ready = kept.ready.without(ready);
                return Ok(ready);
            }
        }
        match (&self.selector, socket) {
            (Selector::Os(sys), Some(socket)) => sys.arm(socket, key, interest)?,
            // Edge-triggered, like epoll: nothing to arm.
            #[cfg(feature = "sim")]
            (Selector::Sim(_), _) => {}
            _ => return Err(io::Error::other("arming a key with no socket")),
        }
        Ok(Ready::default())
    }

    /// Waits up to `timeout` for events and offers each to `claim` (key, readiness), which
    /// returns the part it took; the rest is kept for the key's next [`arm`](Self::arm).
    /// Returns when the events were taken.
    pub(crate) fn poll(
        &self,
        timeout: Option<Duration>,
        mut claim: impl FnMut(usize, Ready) -> Ready,
    ) -> io::Result<Instant> {
        let mut left = Vec::new();
        let mut each = |key, ready: Ready, hung_up: bool| {
            let rest = ready.without(claim(key, ready));
            if !rest.is_empty() || hung_up {
                left.push((key, rest, hung_up));
            }
        };
        match &self.selector {
            Selector::Os(sys) => sys.wait(timeout, &mut each)?,
            #[cfg(feature = "sim")]
            Selector::Sim(selector) => {
                selector.wait(timeout, |key, ready| each(key, ready, false))?
            }
        }
        let now = super::now();
        let mut seen = self.seen();
        seen.polled_at = Some(now);
        for (key, rest, hung_up) in left {
            let kept = seen.unclaimed.entry(key).or_default();
            kept.ready = kept.ready.or(rest);
            kept.hung_up |= hung_up;
        }
        Ok(now)
    }

    /// Whether the socket of key `key` is known to have had nothing arrive (no bytes, no
    /// hang-up) since it was last read empty: the last poll was less than [`QUIET_FOR`] ago
    /// and no poll reported it readable without a park taking that, nor ever hung up.
    ///
    /// Only an edge-triggered poller watches idle sockets; any other says `false`.
    pub(crate) fn is_quiet(&self, key: usize) -> bool {
        let watches_idle = match &self.selector {
            Selector::Os(_) => sys::WATCHES_IDLE,
            // Its edges come only for what a park armed.
            #[cfg(feature = "sim")]
            Selector::Sim(_) => false,
        };
        if !watches_idle {
            return false;
        }
        let seen = self.seen();
        let recent = seen
            .polled_at
            .is_some_and(|at| super::now().saturating_duration_since(at) < QUIET_FOR);
        recent
            && seen
                .unclaimed
                .get(&key)
                .is_none_or(|kept| !kept.ready.readable && !kept.hung_up)
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::Mutex;
    use std::time::Duration;

    use socket2::Socket;

    use super::Ready;

    /// Events taken per `epoll_wait`.
    const BATCH: usize = 256;

    /// Registrations are edge-triggered and stay armed, so an idle socket is watched too.
    pub(super) const WATCHES_IDLE: bool = true;

    pub(super) struct Selector {
        epoll: OwnedFd,
        events: Mutex<Vec<libc::epoll_event>>,
    }

    impl Selector {
        pub(super) fn new() -> io::Result<Self> {
            // SAFETY: plain syscall; the result is checked before use.
            let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Selector {
                // SAFETY: `fd` is a new descriptor owned by nothing else.
                epoll: unsafe { OwnedFd::from_raw_fd(fd) },
                events: Mutex::new(vec![libc::epoll_event { events: 0, u64: 0 }; BATCH]),
            })
        }

        fn ctl(
            &self,
            op: libc::c_int,
            socket: &Socket,
            event: Option<libc::epoll_event>,
        ) -> io::Result<()> {
            let mut event = event;
            let ptr = event
                .as_mut()
                .map_or(std::ptr::null_mut(), |e| e as *mut libc::epoll_event);
            // SAFETY: both descriptors are open; `ptr` is null (allowed for DEL) or points to
            // an event that lives across the call.
            let r = unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, socket.as_raw_fd(), ptr) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        /// # Safety
        ///
        /// `socket` must be deleted before it is closed.
        pub(super) unsafe fn add(&self, socket: &Socket, key: usize) -> io::Result<()> {
            let flags = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;
            let event = libc::epoll_event {
                events: flags as u32,
                u64: key as u64,
            };
            self.ctl(libc::EPOLL_CTL_ADD, socket, Some(event))
        }

        pub(super) fn delete(&self, socket: &Socket) -> io::Result<()> {
            self.ctl(libc::EPOLL_CTL_DEL, socket, None)
        }

        /// Edge-triggered registrations stay armed.
        pub(super) fn arm(&self, _: &Socket, _: usize, _: Ready) -> io::Result<()> {
            Ok(())
        }

        pub(super) fn wait(
            &self,
            timeout: Option<Duration>,
            mut each: impl FnMut(usize, Ready, bool),
        ) -> io::Result<()> {
            // Rounded up: a wait that ends before its timer would only wait again.
            let ms = timeout.map_or(-1, |t| {
                let ms = t.as_nanos().div_ceil(1_000_000);
                i32::try_from(ms).unwrap_or(i32::MAX)
            });
            let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
            // SAFETY: `events` holds `BATCH` writable entries for the kernel to fill.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    events.as_mut_ptr(),
                    BATCH as libc::c_int,
                    ms,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::Interrupted => Ok(()),
                    _ => Err(e),
                };
            }
            for event in &events[..n as usize] {
                let flags = event.events as libc::c_int;
                let failed = flags & (libc::EPOLLERR | libc::EPOLLHUP) != 0;
                let hung_up = failed || flags & libc::EPOLLRDHUP != 0;
                let ready = Ready {
                    readable: flags & libc::EPOLLIN != 0 || hung_up,
                    writable: flags & libc::EPOLLOUT != 0 || failed,
                };
                each(event.u64 as usize, ready, hung_up);
            }
            Ok(())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::sync::Mutex;
    use std::time::Duration;

    use polling::{Event, Events, PollMode, Poller};
    use socket2::Socket;

    use super::Ready;

    pub(super) struct Selector {
        poller: Poller,
        events: Mutex<Events>,
    }

    /// Oneshot registrations report only what a park armed: an idle socket is not watched.
    pub(super) const WATCHES_IDLE: bool = false;

    impl Selector {
        pub(super) fn new() -> io::Result<Self> {
            Ok(Selector {
                poller: Poller::new()?,
                events: Mutex::new(Events::new()),
            })
        }

        /// # Safety
        ///
        /// `socket` must be deleted before it is closed.
        pub(super) unsafe fn add(&self, socket: &Socket, key: usize) -> io::Result<()> {
            // SAFETY: the caller's promise.
            unsafe {
                self.poller
                    .add_with_mode(socket, Event::none(key), PollMode::Oneshot)
            }
        }

        pub(super) fn delete(&self, socket: &Socket) -> io::Result<()> {
            self.poller.delete(socket)
        }

        /// Oneshot registrations are armed before each park.
        pub(super) fn arm(&self, socket: &Socket, key: usize, interest: Ready) -> io::Result<()> {
            let event = match (interest.readable, interest.writable) {
                (true, true) => Event::all(key),
                (true, false) => Event::readable(key),
                (false, true) => Event::writable(key),
                (false, false) => Event::none(key),
            };
            self.poller
                .modify_with_mode(socket, event, PollMode::Oneshot)
        }

        pub(super) fn wait(
            &self,
            timeout: Option<Duration>,
            mut each: impl FnMut(usize, Ready, bool),
        ) -> io::Result<()> {
            let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
            events.clear();
            self.poller.wait(&mut events, timeout)?;
            for ev in events.iter() {
                each(
                    ev.key,
                    Ready {
                        readable: ev.readable,
                        writable: ev.writable,
                    },
                    false,
                );
            }
            events.clear();
            Ok(())
        }
    }
}
