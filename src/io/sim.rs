//! The simulation seam (feature `sim`, for tests only): a connection whose bytes go to an
//! in-memory peer and whose clock is virtual, so a whole conversation runs in one thread from
//! a seed, without sockets or real time. The driver does not know: it sees a `Transport`
//! and a park like any other, and reads the time through `now()`.
//!
//! Owns the traits a test implements ([`Network`], [`Peer`]), the [`Sim`] park, the
//! edge-triggered poller of a simulated green runtime (`Selector`) and the virtual clock. Nothing here exists without the feature, so the real path pays nothing.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::park::{sealed, Park, Wake};
use super::reactor::Reactor;
use super::transport::{Ready, Transport};

/// Readiness of a simulated connection, as a [`Peer`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readiness {
    /// Bytes (or the end of the stream) to receive.
    pub readable: bool,
    /// Room to send.
    pub writable: bool,
}

impl From<Ready> for Readiness {
    fn from(r: Ready) -> Self {
        Readiness {
            readable: r.readable,
            writable: r.writable,
        }
    }
}

impl From<Readiness> for Ready {
    fn from(r: Readiness) -> Self {
        Ready {
            readable: r.readable,
            writable: r.writable,
        }
    }
}

/// The far end of one simulated connection, as the client sees it: the calls a socket would
/// answer. Implementations are the test's server model.
pub trait Peer: Send + Sync + fmt::Debug {
    /// One non-blocking gathering send: how many bytes the peer took, `WouldBlock` when it
    /// takes none now, or the error a socket would give (a reset, a broken pipe).
    fn send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// One non-blocking receive: `Ok(0)` at a clean end of stream, `WouldBlock` when nothing
    /// is there, or the error a socket would give.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Runs the simulated world (its clock included, see [`set_now`]) until the client's
    /// `interest` is ready or `timeout` has passed on the virtual clock. Returns what is
    /// ready: nothing means the timeout passed.
    fn wait(&self, interest: Readiness, timeout: Option<Duration>) -> Readiness;
}

/// Where a simulated connection's [`Peer`]s come from: one per connect.
pub trait Network: Send + Sync + fmt::Debug {
    /// A new connection (already established), or the error connecting gives.
    fn connect(&self) -> io::Result<Arc<dyn Peer>>;

    /// Runs the simulated world while the client waits on no connection (a green task's
    /// sleep), until `duration` has passed on the virtual clock.
    fn sleep(&self, duration: Duration);
}

/// The park of a simulated connection: it waits by running the world ([`Peer::wait`]) and
/// opens connections from its [`Network`].
#[derive(Debug, Clone)]
pub struct Sim {
    network: Rc<dyn Network>,
}

impl Sim {
    /// A park whose connections come from `network`.
    pub fn new(network: Rc<dyn Network>) -> Self {
        Sim { network }
    }
}

impl Park for Sim {}

#[allow(private_interfaces)]
impl sealed::Sealed for Sim {
    fn reactor(&self) -> Option<&Arc<Reactor>> {
        None
    }

    fn open(&self, _: SocketAddr) -> io::Result<(Transport, bool)> {
        Ok((Transport::simulated(self.network.connect()?), true))
    }

    fn park(
        &self,
        transport: &Transport,
        interest: Ready,
        timeout: Option<Duration>,
    ) -> io::Result<Wake> {
        // A simulated transport's `poll_one` runs the world: the blocking park's wait.
        sealed::Sealed::park(&super::Blocking, transport, interest, timeout)
    }
}

/// The poller of a simulated green runtime ([`Runtime::simulated`](crate::green::Runtime::simulated)),
/// edge-triggered like the runtime's epoll, and strictly so: a direction of a connection
/// reports readiness once, and again only after the client's call in that direction would
/// block (`WouldBlock`, or a short send). A driver that parks without having run out of
/// bytes to read would wait forever here — and, with no more bytes coming, on a real
/// socket too. A wait runs the world through the connection's [`Peer::wait`], so only one
/// connection may be waited on at a time.
pub(crate) struct Selector {
    network: Arc<dyn Network>,
    peers: Mutex<HashMap<usize, Arc<EdgePeer>>>,
}

impl Selector {
    pub(crate) fn new(network: Arc<dyn Network>) -> Self {
        Selector {
            network,
            peers: Mutex::default(),
        }
    }

    fn peers(&self) -> MutexGuard<'_, HashMap<usize, Arc<EdgePeer>>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new connection from the network, under `key`: the peer the transport talks to.
    pub(crate) fn connect(&self, key: usize) -> io::Result<Arc<dyn Peer>> {
        let peer = Arc::new(EdgePeer {
            peer: self.network.connect()?,
            // Like `EPOLL_CTL_ADD`, which reports what is ready already.
            armed: Mutex::new(Readiness {
                readable: true,
                writable: true,
            }),
        });
        self.peers().insert(key, Arc::clone(&peer));
        Ok(peer)
    }

    pub(crate) fn delete(&self, key: usize) {
        self.peers().remove(&key);
    }

    /// Runs the world until an armed direction of a connection is ready or `timeout`
    /// passes, and reports that edge to `each`.
    ///
    /// # Errors
    ///
    /// When more than one connection could report an edge, or none could and there is no
    /// timeout (the runtime would wait forever).
    pub(crate) fn wait(
        &self,
        timeout: Option<Duration>,
        mut each: impl FnMut(usize, Ready),
    ) -> io::Result<()> {
        let armed: Vec<(usize, Arc<EdgePeer>, Readiness)> = self
            .peers()
            .iter()
            .map(|(key, peer)| (*key, Arc::clone(peer), peer.armed()))
            .filter(|(_, _, armed)| *armed != Readiness::default())
            .collect();
        match (armed.as_slice(), timeout) {
            ([], Some(timeout)) => self.network.sleep(timeout),
            ([], None) => {
                return Err(io::Error::other(
                    "the simulated runtime would wait forever: no connection can report readiness",
                ))
            }
            ([(key, peer, armed)], _) => {
                let ready = peer.peer.wait(*armed, timeout);
                if ready != Readiness::default() {
                    peer.disarm(ready);
                    each(*key, ready.into());
                }
            }
            _ => {
                return Err(io::Error::other(
                    "a simulated runtime waits on one connection at a time",
                ))
            }
        }
        Ok(())
    }
}

/// A connection as the edge-triggered [`Selector`] sees it: the client's calls pass through,
/// and one that would block arms its direction for the next edge.
#[derive(Debug)]
struct EdgePeer {
    peer: Arc<dyn Peer>,
    /// The directions whose next readiness is an edge.
    armed: Mutex<Readiness>,
}

impl EdgePeer {
    fn lock(&self) -> MutexGuard<'_, Readiness> {
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn armed(&self) -> Readiness {
        *self.lock()
    }

    fn arm(&self, readable: bool, writable: bool) {
        let mut armed = self.lock();
        armed.readable |= readable;
        armed.writable |= writable;
    }

    fn disarm(&self, reported: Readiness) {
        let mut armed = self.lock();
        armed.readable &= !reported.readable;
        armed.writable &= !reported.writable;
    }
}

impl Peer for EdgePeer {
    fn send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let result = self.peer.send(bufs);
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let short = match &result {
            Ok(n) => *n < total,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        };
        self.arm(false, short);
        result
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.peer.recv(buf);
        let blocked = matches!(&result, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        self.arm(blocked, false);
        result
    }

    fn wait(&self, interest: Readiness, timeout: Option<Duration>) -> Readiness {
        self.peer.wait(interest, timeout)
    }
}

thread_local! {
    /// The virtual time of this thread's simulation, while one runs.
    static VIRTUAL_NOW: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Sets this thread's virtual time (`None`: back to the real clock). A simulation sets it
/// as its world advances; the driver's deadlines then run on it.
pub fn set_now(now: Option<Instant>) {
    VIRTUAL_NOW.with(|v| v.set(now));
}

/// The time the driver's deadlines use: this thread's virtual time while a simulation runs,
/// else the real clock.
pub(crate) fn now() -> Instant {
    VIRTUAL_NOW.with(Cell::get).unwrap_or_else(Instant::now)
}
