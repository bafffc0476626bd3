//! The simulation seam (feature `sim`, for tests only): a connection whose bytes go to an
//! in-memory peer and whose clock is virtual, so a whole conversation runs in one thread from
//! a seed, without sockets or real time. The driver does not know: it sees a `Transport`
//! and a park like any other, and reads the time through `now()`.
//!
//! Owns the traits a test implements ([`Network`], [`Peer`]), the [`Sim`] park and the
//! virtual clock. Nothing here exists without the feature, so the real path pays nothing.

use std::cell::Cell;
use std::fmt;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
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
pub trait Network: fmt::Debug {
    /// A new connection (already established), or the error connecting gives.
    fn connect(&self) -> io::Result<Arc<dyn Peer>>;
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
