//! The non-blocking TCP socket, its waits (`poll(2)`, or a `polling` registration for green
//! tasks): the only `unsafe` in the library. Under the `sim` feature the byte stream may be
//! simulated instead ([`sim`](super::sim)), behind the same calls.
#![allow(unsafe_code)]

use std::io::{self, IoSlice, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polling::{Event, Events, PollMode, Poller};

use socket2::{Domain, Protocol, Socket, Type};

/// A poller shared by many sockets (a green runtime's). Registrations are oneshot: a ready
/// socket whose task is not waiting must not be reported again and again.
pub(crate) struct Reactor {
    poller: Poller,
    next_key: AtomicUsize,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor").finish_non_exhaustive()
    }
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Arc<Self>> {
        Ok(Arc::new(Reactor {
            poller: Poller::new()?,
            next_key: AtomicUsize::new(0),
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
    /// The TLS session over the socket, for an `https` connection.
    #[cfg(feature = "tls")]
    tls: Option<super::tls::TlsSession>,
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

/// The raw byte stream: non-blocking, retrying `EINTR`, never raising `SIGPIPE`.
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
        let result = socket.send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let result = socket.send_vectored(bufs);
        match result {
            Ok(0) if bufs.iter().any(|b| !b.is_empty()) => {
                return Err(io::ErrorKind::WriteZero.into())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0 {
            Stream::Socket(socket) => {
                let mut socket: &Socket = socket;
                loop {
                    match socket.read(buf) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        other => return other,
                    }
                }
            }
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

impl Transport {
    /// Starts connecting to `addr` without waiting. Returns the socket and whether the
    /// connection is already established; if not, wait for writability and then call
    /// [`finish_connect`](Self::finish_connect).
    pub(crate) fn start_connect(
        addr: SocketAddr,
        reactor: Option<&Arc<Reactor>>,
    ) -> io::Result<(Self, bool)> {
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

    /// A simulated connection to `peer`, established already.
    #[cfg(feature = "sim")]
    pub(crate) fn simulated(peer: Arc<dyn super::sim::Peer>) -> Self {
        Transport {
            stream: Stream::Sim(peer, io::stdin()),
            registration: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The socket, if the stream is one.
    fn socket(&self) -> Option<&Socket> {
        match &self.stream {
            Stream::Socket(socket) => Some(socket),
            #[cfg(feature = "sim")]
            Stream::Sim(..) => None,
        }
    }

    /// After a started connect reported writability: whether it succeeded.
    pub(crate) fn finish_connect(&self) -> io::Result<()> {
        let Some(socket) = self.socket() else {
            return Ok(());
        };
        match socket.take_error()? {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn register(socket: Socket, reactor: Option<&Arc<Reactor>>) -> io::Result<Self> {
        let Some(reactor) = reactor else {
            return Ok(Transport {
                stream: Stream::Socket(socket),
                registration: None,
                #[cfg(feature = "tls")]
                tls: None,
            });
        };
        let key = reactor.next_key.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `Transport::drop` deletes the registration before `socket` is closed, and
        // `socket` is never replaced while registered (see the field INVARIANT).
        unsafe {
            reactor
                .poller
                .add_with_mode(&socket, Event::none(key), PollMode::Oneshot)?
        };
        let registration = Some(Registration {
            reactor: Arc::clone(reactor),
            key,
        });
        Ok(Transport {
            stream: Stream::Socket(socket),
            registration,
            #[cfg(feature = "tls")]
            tls: None,
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

    /// One non-blocking gathering send of plaintext: returns how many bytes the connection
    /// took (over TLS: encrypted, and sent as far as the socket takes them). Never raises
    /// SIGPIPE. A zero-byte send of non-empty data is reported as `WriteZero`.
    pub(crate) fn send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.send(&mut Wire(&self.stream), bufs);
        }
        Wire(&self.stream).send(bufs)
    }

    /// One non-blocking receive of plaintext; `Ok(0)` is a clean end of stream (over TLS:
    /// only after `close_notify`; a bare close is `UnexpectedEof`).
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.recv(&mut Wire(&self.stream), buf);
        }
        Wire(&self.stream).read(buf)
    }

    /// Puts a TLS session over the (connected) socket; drive it with
    /// [`handshake`](Self::handshake).
    #[cfg(feature = "tls")]
    pub(crate) fn with_tls(mut self, session: super::tls::TlsSession) -> Self {
        self.tls = Some(session);
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

    /// The readiness to wait for when the caller wants `want`: with TLS records still to
    /// flush, writability too (a caller must never wait on bytes we hold).
    pub(crate) fn interest(&self, want: Ready) -> Ready {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return Ready {
                readable: want.readable,
                writable: want.writable || tls.wants_write(),
            };
        }
        want
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
    /// before it sends the rest of a batch. Linux clears the flag by itself, so it is set
    /// before every wait for reading (one cheap call, on the slow path only).
    fn quick_ack(&self, interest: Ready) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let (true, Some(socket)) = (interest.readable, self.socket()) {
            let _ = socket.set_tcp_quickack(true);
        }
    }

    /// Waits with `poll(2)` on this one socket: one syscall, where a `polling` wait costs
    /// five (it arms a timerfd and re-arms its notifier every time).
    /// A simulated stream runs its world instead, on the virtual clock.
    pub(crate) fn poll_one(&self, interest: Ready, timeout: Option<Duration>) -> io::Result<Ready> {
        #[cfg(feature = "sim")]
        if let Stream::Sim(peer, _) = &self.stream {
            return Ok(peer.wait(interest.into(), timeout).into());
        }
        self.quick_ack(interest);
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

    /// Arms the socket's oneshot registration for `interest` before its task parks, and
    /// returns the key its event will carry.
    ///
    /// # Errors
    ///
    /// When the socket is not registered with a reactor (a blocking connection's), or the
    /// poller refuses.
    pub(crate) fn arm(&self, interest: Ready) -> io::Result<usize> {
        let (Some(Registration { reactor, key }), Some(socket)) =
            (&self.registration, self.socket())
        else {
            return Err(io::Error::other("socket is not registered with a reactor"));
        };
        self.quick_ack(interest);
        let event = match (interest.readable, interest.writable) {
            (true, true) => Event::all(*key),
            (true, false) => Event::readable(*key),
            (false, true) => Event::writable(*key),
            (false, false) => Event::none(*key),
        };
        reactor
            .poller
            .modify_with_mode(socket, event, PollMode::Oneshot)?;
        Ok(*key)
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
        // Errors are ignored: the descriptor is closed right after either way.
        if let (Some(Registration { reactor, .. }), Some(socket)) =
            (&self.registration, self.socket())
        {
            let _ = reactor.poller.delete(socket);
        }
    }
}
