//! The non-blocking TCP socket and its waits (`poll(2)`, or a [`Reactor`] registration for
//! green tasks). Under the `sim` feature the byte stream may be
//! simulated instead ([`sim`](super::sim)), behind the same calls.
#![allow(unsafe_code)]

use std::io::{self, IoSlice, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::queue::{mark_dirty, QUEUE_LIMIT};
use super::reactor::Reactor;
use super::wire_log::WireLog;

/// A socket's place in a [`Reactor`].
#[derive(Debug)]
struct Registration {
    reactor: Arc<Reactor>,
    key: usize,
}

/// A connected non-blocking socket. A blocking connection waits on it with `poll(2)`; a
/// green one registers it with its runtime's [`Reactor`].
///
/// `Sync` and cheap to share by `Arc`, so a coroutine can own a handle while the connection
/// keeps another.
#[derive(Debug)]
pub(crate) struct Transport {
    /// INVARIANT: a socket is registered with `registration`'s poller (if any) from
    /// construction until `drop`.
    stream: Stream,
    registration: Option<Registration>,
    /// Plaintext written but not yet sent (see [`queue`](super::queue)): it goes out before
    /// any other byte, with the next send, receive or wait.
    queued: Mutex<Vec<u8>>,
    /// The socket is in blocking mode, for [`recv_blocking`](Self::recv_blocking); every
    /// other call passes `MSG_DONTWAIT`.
    blocking_reads: bool,
    /// The receive timeout last set on the socket, in microseconds (`u64::MAX`: none set
    /// yet; 0: no limit), so a wait with the same timeout sets nothing.
    receive_timeout: AtomicU64,
    /// The TLS session over the socket, for an `https` connection. Boxed: the session is
    /// about a kilobyte, and a transport moves by value while it is set up, which every
    /// green task's stack would otherwise pay for.
    #[cfg(feature = "tls")]
    tls: Option<Box<super::tls::TlsSession>>,
    /// The connection's number and the wire log's state (see [`wire_log`](super::wire_log)).
    log: WireLog,
}

/// What carries the bytes: a socket, or (feature `sim`) a simulated peer.
#[derive(Debug)]
enum Stream {
    Socket(Socket),
    /// A simulated connection. It has no descriptor of its own: callers that ask for one
    /// (`as_raw_fd`, a `co_*` step's `PollNeeded`) are lent standard input's, which nothing
    /// polls in a simulation.
    #[cfg(feature = "sim")]
    Sim(Arc<dyn super::sim::Peer>, io::Stdin),
}

/// The raw byte stream: non-blocking (on a socket, `MSG_DONTWAIT` on every call, so it does
/// not matter whether the socket itself is in blocking mode), retrying `EINTR`, never
/// raising `SIGPIPE`.
struct Wire<'a>(&'a Stream);

impl Wire<'_> {
    /// One gathering send. A zero-byte send of non-empty data is reported as `WriteZero`.
    fn send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.0 {
            Stream::Socket(socket) => send_socket(socket, bufs),
            #[cfg(feature = "sim")]
            Stream::Sim(peer, _) => peer.send(bufs),
        }
    }
}

/// [`Wire::send`] on a socket.
fn send_socket(socket: &Socket, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    loop {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let result = socket.send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let result = socket.send_vectored_with_flags(bufs, libc::MSG_DONTWAIT);
        match result {
            Ok(0) if bufs.iter().any(|b| !b.is_empty()) => {
                return Err(io::ErrorKind::WriteZero.into())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// One receive on a socket with `flags`; `EINTR` is returned as `Interrupted`.
fn recv_socket(socket: &Socket, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call,
    // and the descriptor is owned by `socket`, which outlives the call.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast::<libc::c_void>(),
            buf.len(),
            flags,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0 {
            Stream::Socket(socket) => loop {
                match recv_socket(socket, buf, libc::MSG_DONTWAIT) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => return other,
                }
            },
            #[cfg(feature = "sim")]
            Stream::Sim(peer, _) => peer.recv(buf),
        }
    }
}

impl io::Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.send(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a wait reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Ready {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
}

/// Readiness to wait for when reading (or for a wake-up socket to be closed).
pub(crate) const READABLE: Ready = Ready {
    readable: true,
    writable: false,
};

impl Ready {
    pub(crate) fn is_empty(self) -> bool {
        !self.readable && !self.writable
    }

    /// What is in both.
    pub(crate) fn and(self, other: Ready) -> Ready {
        Ready {
            readable: self.readable && other.readable,
            writable: self.writable && other.writable,
        }
    }

    /// What is in either.
    pub(crate) fn or(self, other: Ready) -> Ready {
        Ready {
            readable: self.readable || other.readable,
            writable: self.writable || other.writable,
        }
    }

    /// What is in `self` and not in `other`.
    pub(crate) fn without(self, other: Ready) -> Ready {
        Ready {
            readable: self.readable && !other.readable,
            writable: self.writable && !other.writable,
        }
    }
}

impl Transport {
    /// Starts connecting to `addr` without waiting. Returns the socket and whether the
    /// connection is already established; if not, wait for writability and then call
    /// [`finish_connect`](Self::finish_connect). (Under `sim`, a simulated reactor gives a
    /// simulated connection instead, established already.)
    pub(crate) fn start_connect(
        addr: SocketAddr,
        reactor: Option<&Arc<Reactor>>,
    ) -> io::Result<(Self, bool)> {
        #[cfg(feature = "sim")]
        if let Some(opened) = reactor.and_then(|r| r.connect_simulated()) {
            let (key, peer) = opened?;
            let registration = reactor.map(|reactor| Registration {
                reactor: Arc::clone(reactor),
                key,
            });
            return Ok((
                Transport::over(Stream::Sim(peer, io::stdin()), registration),
                true,
            ));
        }
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        socket.set_tcp_nodelay(true)?;
        #[cfg(any(target_os = "macos", target_os = "ios"))]
        socket.set_nosigpipe(true)?;
        let connecting = socket.connect(&addr.into());
        let transport = Transport::register(socket, reactor)?;
        match connecting {
            Ok(()) => Ok((transport, true)),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok((transport, false)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok((transport, false)),
            Err(e) => Err(e),
        }
    }

    /// A socket that is only waited on, never read as a stream (a name lookup's wake-up),
    /// registered with `reactor` if there is one.
    pub(crate) fn waker(socket: Socket, reactor: Option<&Arc<Reactor>>) -> io::Result<Self> {
        Transport::register(socket, reactor)
    }

    /// A simulated connection to `peer`, established already.
    #[cfg(feature = "sim")]
    pub(crate) fn simulated(peer: Arc<dyn super::sim::Peer>) -> Self {
        Transport::over(Stream::Sim(peer, io::stdin()), None)
    }

    /// A transport over `stream`, with nothing queued, no TLS and non-blocking reads.
    fn over(stream: Stream, registration: Option<Registration>) -> Self {
        Transport {
            stream,
            registration,
            queued: Mutex::default(),
            blocking_reads: false,
            receive_timeout: AtomicU64::new(u64::MAX),
            #[cfg(feature = "tls")]
            tls: None,
            log: WireLog::default(),
        }
    }

    /// Numbers the transport as a new connection in log lines; returns its number.
    pub(crate) fn assign_log_id(&mut self) -> u64 {
        self.log.assign_id()
    }

    /// The connection's number in log lines (0: not a connection).
    pub(crate) fn log_id(&self) -> u64 {
        self.log.id()
    }

    /// The address connected to, if the stream is a socket.
    pub(crate) fn peer_addr(&self) -> Option<SocketAddr> {
        self.socket()?.peer_addr().ok()?.as_socket()
    }

    /// For the log: the TLS version and ALPN protocol agreed, or `None` without TLS.
    pub(crate) fn tls_summary(&self) -> Option<String> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return Some(tls.summary());
        }
        None
    }

    /// The socket, if the stream is one.
    fn socket(&self) -> Option<&Socket> {
        match &self.stream {
            Stream::Socket(socket) => Some(socket),
            #[cfg(feature = "sim")]
            Stream::Sim(..) => None,
        }
    }

    /// Whether a started connect has finished, without waiting: `Ok(true)` connected,
    /// `Ok(false)` still in progress, `Err` with why it failed.
    pub(crate) fn connect_state(&self) -> io::Result<bool> {
        let Some(socket) = self.socket() else {
            return Ok(true);
        };
        if let Some(e) = socket.take_error()? {
            return Err(e);
        }
        match socket.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn register(socket: Socket, reactor: Option<&Arc<Reactor>>) -> io::Result<Self> {
        let Some(reactor) = reactor else {
            return Ok(Transport::over(Stream::Socket(socket), None));
        };
        // SAFETY: `Transport::drop` deletes the registration before `socket` is closed, and
        // `socket` is never replaced while registered (see the field INVARIANT).
        let key = unsafe { reactor.register(&socket)? };
        let registration = Some(Registration {
            reactor: Arc::clone(reactor),
            key,
        });
        Ok(Transport::over(Stream::Socket(socket), registration))
    }

    fn lock_queue(&self) -> MutexGuard<'_, Vec<u8>> {
        // Nothing is left half-done under this lock: a panic cannot have broken the queue.
        self.queued
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `bufs` to go out with the next send, receive or wait on this transport (or
    /// any park of this thread), if the queue stays within its limit. Returns `false`, having
    /// queued nothing, if it would not.
    pub(crate) fn queue(self: &Arc<Self>, bufs: &[IoSlice<'_>]) -> bool {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut queued = self.lock_queue();
        if queued.len() + total > QUEUE_LIMIT {
            return false;
        }
        let was_empty = queued.is_empty();
        for buf in bufs {
            queued.extend_from_slice(buf);
        }
        drop(queued);
        if was_empty && total > 0 {
            mark_dirty(self);
        }
        true
    }

    /// Whether queued bytes wait to go out.
    pub(crate) fn has_queued(&self) -> bool {
        !self.lock_queue().is_empty()
    }

    /// Sends queued bytes as far as the socket takes them without waiting: `Ok(true)` when
    /// none are left. After a failure the queue is dropped: those bytes can never be sent,
    /// and the requests they carried stay unanswered.
    pub(crate) fn flush(&self) -> io::Result<bool> {
        let mut queued = self.lock_queue();
        while !queued.is_empty() {
            match self.send_now(&[IoSlice::new(&queued)]) {
                Ok(n) => drop(queued.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => {
                    queued.clear();
                    return Err(e);
                }
            }
        }
        Ok(true)
    }

    /// One non-blocking gathering send of plaintext, after the queued bytes (in the same
    /// send): returns how many bytes of `bufs` the connection took (over TLS: encrypted, and
    /// sent as far as the socket takes them); `WouldBlock` while queued bytes remain. Never
    /// raises SIGPIPE. A zero-byte send of non-empty data is reported as `WriteZero`.
    pub(crate) fn send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut queued = self.lock_queue();
        if queued.is_empty() {
            drop(queued);
            return self.send_now(bufs);
        }
        const MAX: usize = 8;
        if bufs.len() >= MAX {
            drop(queued);
            if !self.flush()? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            return self.send_now(bufs);
        }
        let mut all = [IoSlice::new(&[]); MAX];
        all[0] = IoSlice::new(&queued);
        all[1..=bufs.len()].copy_from_slice(bufs);
        let sent = match self.send_now(&all[..=bufs.len()]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
            Err(e) => {
                queued.clear();
                return Err(e);
            }
        };
        let from_queue = sent.min(queued.len());
        queued.drain(..from_queue);
        match sent - from_queue {
            0 if bufs.iter().any(|b| !b.is_empty()) => Err(io::ErrorKind::WouldBlock.into()),
            taken => Ok(taken),
        }
    }

    /// [`send`](Self::send) without the queue: the one place plaintext leaves, so the wire
    /// log sees each byte taken once.
    fn send_now(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let sent = self.send_plaintext(bufs);
        self.log.sent(bufs, &sent);
        sent
    }

    fn send_plaintext(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.send(&mut Wire(&self.stream), bufs);
        }
        Wire(&self.stream).send(bufs)
    }

    /// One non-blocking receive of plaintext, after sending what is queued (a caller never
    /// waits for the answer to bytes we hold); `Ok(0)` is a clean end of stream (over TLS:
    /// only after `close_notify`; a bare close is `UnexpectedEof`). A failed flush is left
    /// for the receive, or the next send, to report.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let _ = self.flush();
        let got = self.recv_plaintext(buf);
        self.log.received(buf, &got);
        got
    }

    fn recv_plaintext(&self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.recv(&mut Wire(&self.stream), buf);
        }
        Wire(&self.stream).read(buf)
    }

    /// Puts the connected socket into blocking mode, so that a thread that may block can
    /// wait for bytes and receive them in one syscall ([`recv_blocking`](Self::recv_blocking)).
    /// Every other call stays non-blocking. Not for a socket registered with a reactor, nor
    /// one under TLS.
    pub(crate) fn block_reads(&mut self) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return Ok(());
        }
        if let (None, Some(socket)) = (&self.registration, self.socket()) {
            socket.set_nonblocking(false)?;
            self.blocking_reads = true;
        }
        Ok(())
    }

    /// Whether the socket is in blocking mode, for [`recv_blocking`](Self::recv_blocking).
    pub(crate) fn reads_block(&self) -> bool {
        self.blocking_reads
    }

    /// Waits up to `timeout` (`None`: no limit; never zero) for bytes and receives them: one
    /// syscall where a wait and a receive cost two. `WouldBlock` when the time passed. Only
    /// when [`reads_block`](Self::reads_block) and nothing is queued (a wait must then include
    /// writability).
    pub(crate) fn recv_blocking(
        &self,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        debug_assert!(self.blocking_reads && timeout != Some(Duration::ZERO));
        // Microseconds, rounded up so a wait never ends early; 0 is "no limit" to the OS.
        let micros = timeout.map_or(0, |t| {
            u64::try_from(t.as_nanos().div_ceil(1_000))
                .unwrap_or(u64::MAX - 1)
                .max(1)
        });
        let Some(socket) = self.socket() else {
            return Err(io::ErrorKind::Unsupported.into());
        };
        if self.receive_timeout.load(Ordering::Relaxed) != micros {
            let limit = (micros > 0).then(|| Duration::from_micros(micros));
            socket.set_read_timeout(limit)?;
            self.receive_timeout.store(micros, Ordering::Relaxed);
        }
        let got = recv_socket(socket, buf, 0);
        self.log.received(buf, &got);
        match got {
            // A signal: the caller works out how much of its deadline is left and waits again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                Err(io::ErrorKind::WouldBlock.into())
            }
            other => other,
        }
    }

    /// Puts a TLS session over the (connected) socket; drive it with
    /// [`handshake`](Self::handshake).
    #[cfg(feature = "tls")]
    pub(crate) fn with_tls(mut self, session: super::tls::TlsSession) -> Self {
        self.tls = Some(Box::new(session));
        self
    }

    /// Advances the TLS handshake without waiting: `Ok(None)` when it is complete (or there
    /// is no TLS), otherwise the readiness it waits for.
    #[cfg(feature = "tls")]
    pub(crate) fn handshake(&self) -> io::Result<Option<Ready>> {
        match &self.tls {
            Some(tls) => tls.handshake(&mut Wire(&self.stream)),
            None => Ok(None),
        }
    }

    /// The readiness to wait for when the caller wants `want`: with queued bytes or TLS
    /// records still to flush, writability too (a caller must never wait on bytes we hold).
    pub(crate) fn interest(&self, want: Ready) -> Ready {
        #[cfg(feature = "tls")]
        let tls_pending = self.tls.as_ref().is_some_and(|tls| tls.wants_write());
        #[cfg(not(feature = "tls"))]
        let tls_pending = false;
        Ready {
            readable: want.readable,
            writable: want.writable || tls_pending || self.has_queued(),
        }
    }

    /// Whether plaintext is already decrypted and waiting in the TLS session: response data
    /// that is available though the socket may not be readable.
    pub(crate) fn has_plaintext(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.has_plaintext();
        }
        false
    }

    /// About to wait for the server: acknowledge what it sent at once. A server that corks
    /// its output (nginx with `tcp_nopush on`) otherwise waits for our delayed ACK, ~40 ms,
    /// before it sends the rest of a batch. Linux clears the flag by itself, so the driver
    /// sets it before a wait for reading, unless a request it just sent carries the ACK.
    pub(crate) fn quick_ack(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(socket) = self.socket() {
            let _ = socket.set_tcp_quickack(true);
        }
    }

    /// Waits with `poll(2)` on this one socket: one syscall, and no poller to create.
    pub(crate) fn poll_one(&self, interest: Ready, timeout: Option<Duration>) -> io::Result<Ready> {
        #[cfg(feature = "sim")]
        if let Stream::Sim(peer, _) = &self.stream {
            return Ok(peer.wait(interest.into(), timeout).into());
        }
        let mut events = 0;
        if interest.readable {
            events |= libc::POLLIN;
        }
        if interest.writable {
            events |= libc::POLLOUT;
        }
        let mut pfd = libc::pollfd {
            fd: self.raw_fd(),
            events,
            revents: 0,
        };
        // Round up so a wait never ends early; cap at what an int holds.
        let ms = timeout.map_or(-1, |t| {
            let ms = t.as_nanos().div_ceil(1_000_000);
            i32::try_from(ms).unwrap_or(i32::MAX)
        });
        // SAFETY: `pfd` is one valid, exclusively borrowed `pollfd` for the duration of the
        // call, and its descriptor is owned by `self.stream`, which outlives the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(Ready::default());
            }
            return Err(e);
        }
        let failed = pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0;
        Ok(Ready {
            readable: pfd.revents & libc::POLLIN != 0 || failed,
            writable: pfd.revents & libc::POLLOUT != 0 || failed,
        })
    }

    /// Prepares the socket's registration for a park on `interest`: returns its key, and
    /// what of `interest` is known ready already (then the task must not sleep; see
    /// [`Reactor::arm`]).
    ///
    /// # Errors
    ///
    /// When the socket is not registered with a reactor (a blocking connection's), or the
    /// poller refuses.
    pub(crate) fn arm(&self, interest: Ready) -> io::Result<(usize, Ready)> {
        let Some(Registration { reactor, key }) = &self.registration else {
            return Err(io::Error::other("socket is not registered with a reactor"));
        };
        Ok((*key, reactor.arm(self.socket(), *key, interest)?))
    }

    /// Whether this socket's poller vouches that nothing arrived on it lately (see
    /// [`Reactor::is_quiet`]): never for a socket without one, nor under TLS, whose
    /// receives do not show whether the socket was read empty.
    pub(crate) fn is_quiet(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return false;
        }
        self.registration
            .as_ref()
            .is_some_and(|r| r.reactor.is_quiet(r.key))
    }

    /// The raw descriptor, for callers that poll it themselves.
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.fd().as_raw_fd()
    }

    /// The descriptor, borrowed for as long as this transport is.
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match &self.stream {
            Stream::Socket(socket) => socket.as_fd(),
            #[cfg(feature = "sim")]
            Stream::Sim(_, stdin) => stdin.as_fd(),
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        // Queued requests go out as far as the socket takes them at once: a request sent
        // just before the connection is dropped still reaches the server.
        let _ = self.flush();
        self.log.closed();
        // Errors are ignored: the descriptor is closed right after either way.
        if let Some(Registration { reactor, key }) = &self.registration {
            reactor.deregister(self.socket(), *key);
        }
    }
}
