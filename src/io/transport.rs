//! The non-blocking TCP socket and its `polling` registration: the only `unsafe` in the crate.
#![allow(unsafe_code)]

use std::io::{self, IoSlice, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use polling::{Event, Events, PollMode, Poller};

use super::park::sealed::Sealed;
use socket2::{Domain, Protocol, Socket, Type};

/// The poller of one `HttpConnection`: created with its first socket and kept across
/// reconnects (a new `Poller` costs microseconds and three descriptors).
pub(crate) struct Reactor {
    poller: Poller,
    events: Mutex<Events>,
    next_key: AtomicUsize,
    /// Level-triggered for a connection's own poller (re-armed only when the interest
    /// changes); oneshot for a poller shared by many sockets, where a ready socket whose
    /// owner is not waiting must not be reported again and again.
    mode: PollMode,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Reactor {
    /// A poller for one connection's sockets.
    pub(crate) fn level_triggered() -> io::Result<Arc<Self>> {
        Self::with_mode(PollMode::Level)
    }

    /// A poller shared by many sockets.
    pub(crate) fn oneshot() -> io::Result<Arc<Self>> {
        Self::with_mode(PollMode::Oneshot)
    }

    fn with_mode(mode: PollMode) -> io::Result<Arc<Self>> {
        Ok(Arc::new(Reactor {
            poller: Poller::new()?,
            events: Mutex::new(Events::with_capacity(std::num::NonZeroUsize::MIN)),
            next_key: AtomicUsize::new(0),
            mode,
        }))
    }

    /// Waits for events on any registered socket, calling `ready` with each one's key.
    pub(crate) fn poll(
        &self,
        events: &mut Events,
        timeout: Option<Duration>,
        mut ready: impl FnMut(usize, Ready),
    ) -> io::Result<()> {
        events.clear();
        self.poller.wait(events, timeout)?;
        for ev in events.iter() {
            ready(
                ev.key,
                Ready {
                    readable: ev.readable,
                    writable: ev.writable,
                },
            );
        }
        events.clear();
        Ok(())
    }
}

/// A connected non-blocking socket, registered with its connection's [`Reactor`].
///
/// `Sync` and cheap to share by `Arc`, so a coroutine can own a handle while the connection
/// keeps another.
#[derive(Debug)]
pub(crate) struct Transport {
    /// INVARIANT: registered with `reactor.poller` under `key` from construction until `drop`.
    socket: Socket,
    reactor: Arc<Reactor>,
    /// Distinguishes this socket's events from those of an earlier socket of the same
    /// connection that a coroutine may still hold.
    key: usize,
    /// The interest currently registered (`Ready::bits`). The registration is level-triggered,
    /// so it needs a syscall only when the interest changes, not before every wait.
    interest: AtomicU8,
}

/// What a wait reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Ready {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
}

impl Ready {
    fn bits(self) -> u8 {
        u8::from(self.readable) | u8::from(self.writable) << 1
    }
}

impl Transport {
    /// Connects to `addr`, waiting at most until `deadline`. `Ok(None)` means the deadline
    /// passed first.
    pub(crate) fn connect(
        addr: SocketAddr,
        deadline: Option<Instant>,
        reactor: &Arc<Reactor>,
        park: &dyn Sealed,
    ) -> io::Result<Option<Self>> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        socket.set_tcp_nodelay(true)?;
        #[cfg(any(target_os = "macos", target_os = "ios"))]
        socket.set_nosigpipe(true)?;
        let transport = Transport::register(socket, reactor)?;
        match transport.socket.connect(&addr.into()) {
            Ok(()) => return Ok(Some(transport)),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        loop {
            let timeout = match deadline {
                Some(at) => match at.checked_duration_since(Instant::now()) {
                    Some(left) => Some(left),
                    None => return Ok(None),
                },
                None => None,
            };
            let ready = park.park(
                &transport,
                Ready {
                    readable: false,
                    writable: true,
                },
                timeout,
            )?;
            if ready.writable {
                break;
            }
        }
        match transport.socket.take_error()? {
            Some(e) => Err(e),
            None => Ok(Some(transport)),
        }
    }

    fn register(socket: Socket, reactor: &Arc<Reactor>) -> io::Result<Self> {
        let key = reactor.next_key.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `Transport::drop` deletes the registration before `socket` is closed, and
        // `socket` is never replaced while registered (see the field INVARIANT).
        unsafe {
            reactor
                .poller
                .add_with_mode(&socket, Event::none(key), reactor.mode)?
        };
        Ok(Transport {
            socket,
            reactor: Arc::clone(reactor),
            key,
            interest: AtomicU8::new(0),
        })
    }

    /// Resolves `host:port` (blocking; the OS resolver has no timeout parameter). An IPv6
    /// literal may be given with or without brackets.
    pub(crate) fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let addrs: Vec<SocketAddr> = (bare, port).to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "host has no addresses",
            ));
        }
        Ok(addrs)
    }

    /// One non-blocking gathering send. Never raises SIGPIPE. A zero-byte send of non-empty
    /// data is reported as `WriteZero`.
    pub(crate) fn send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        loop {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            let result = self
                .socket
                .send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL);
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let result = self.socket.send_vectored(bufs);
            match result {
                Ok(0) if bufs.iter().any(|b| !b.is_empty()) => {
                    return Err(io::ErrorKind::WriteZero.into())
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// One non-blocking receive; `Ok(0)` is end of stream.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&self.socket).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Registers `interest` with the reactor before a wait. A level-triggered registration
    /// needs a syscall only when the interest changes; a oneshot one is disarmed by each event
    /// and re-armed every time.
    pub(crate) fn arm(&self, interest: Ready) -> io::Result<()> {
        if interest.readable {
            // About to wait for the server: acknowledge what it sent at once. A server that
            // corks its output (nginx with `tcp_nopush on`) otherwise waits for our delayed
            // ACK, ~40 ms, before it sends the rest of a batch. Linux clears the flag by
            // itself, so it is set before every wait (a cheap call on the slow path only).
            #[cfg(any(target_os = "linux", target_os = "android"))]
            let _ = self.socket.set_tcp_quickack(true);
        }
        let mode = self.reactor.mode;
        let changed = self.interest.swap(interest.bits(), Ordering::Relaxed) != interest.bits();
        if changed || mode == PollMode::Oneshot {
            let key = self.key;
            let event = match (interest.readable, interest.writable) {
                (true, true) => Event::all(key),
                (true, false) => Event::readable(key),
                (false, true) => Event::writable(key),
                (false, false) => Event::none(key),
            };
            if let Err(e) = self
                .reactor
                .poller
                .modify_with_mode(&self.socket, event, mode)
            {
                self.interest.store(u8::MAX, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    }

    /// The key this socket's events carry in its reactor.
    pub(crate) fn key(&self) -> usize {
        self.key
    }

    /// Waits in the socket's own reactor until the socket is ready for one of `interest`, or
    /// `timeout` passes (then neither flag is set). `None` waits without limit.
    pub(crate) fn wait(&self, interest: Ready, timeout: Option<Duration>) -> io::Result<Ready> {
        self.arm(interest)?;
        let mut events = self
            .reactor
            .events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut ready = Ready::default();
        let key = self.key;
        self.reactor.poll(&mut events, timeout, |k, r| {
            if k == key {
                ready.readable |= r.readable;
                ready.writable |= r.writable;
            }
        })?;
        Ok(ready)
    }

    /// The raw descriptor, for callers that poll it themselves.
    #[cfg(unix)]
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.socket.as_raw_fd()
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        // Errors are ignored: the descriptor is closed right after either way.
        let _ = self.reactor.poller.delete(&self.socket);
    }
}
