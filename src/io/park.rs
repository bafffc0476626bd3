//! Parking: how a driver call sleeps until its socket is ready — the one wait seam. A
//! connection that blocks its thread, one in a green task, and a coroutine that hands the
//! wait to its caller differ only here.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::reactor::Reactor;
use super::transport::{Ready, Transport};

/// How a park ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The socket is ready for what is set (a subset of the interest).
    Ready(Ready),
    /// The timeout passed (or the wait ended early for no reason, like a signal): the caller
    /// checks its deadline and parks again.
    TimedOut,
    /// Control went to the caller and came back (a cofunction's loop body ran): nothing is
    /// known about the socket, so try again; the time the caller took does not count against
    /// the deadline.
    Resumed,
    /// The wait will never end: its owner is going away (a cofunction dropped, a green
    /// runtime dropped). The operation returns `Error::Cancelled`.
    Cancelled,
}

pub(crate) mod sealed {
    // The sealed-trait pattern: `Sealed` is public only so that `Park` can name it as a
    // supertrait. It cannot be named outside the crate, so its methods (which use
    // crate-private types) cannot be called from outside either.
    #![allow(private_interfaces)]

    use super::*;

    /// The methods of [`Park`](super::Park), private to the crate.
    pub trait Sealed: std::fmt::Debug {
        /// The reactor a new socket registers with, if it waits through one.
        fn reactor(&self) -> Option<&Arc<Reactor>>;

        /// Whether this park blocks the calling thread (so a wait may also be a blocking
        /// receive, see [`Transport::recv_blocking`]).
        fn blocks_thread(&self) -> bool {
            false
        }

        /// Starts connecting to `addr` (see [`Transport::start_connect`]): a socket
        /// registered with [`reactor`](Self::reactor), or a simulated connection.
        fn open(&self, addr: SocketAddr) -> io::Result<(Transport, bool)> {
            Transport::start_connect(addr, self.reactor())
        }

        /// Sleeps for `duration` without waiting on any socket (a retry's backoff): the
        /// thread sleeps, a green task suspends. Queued bytes go out first.
        fn sleep(&self, duration: Duration) {
            super::super::queue::flush_thread();
            std::thread::sleep(duration);
        }

        /// Sleeps until `transport` is ready for some of `interest`, `timeout` passes, or
        /// the wait is cut short (see [`Wake`]).
        fn park(
            &self,
            transport: &Transport,
            interest: Ready,
            timeout: Option<Duration>,
        ) -> io::Result<Wake>;
    }
}

/// How a connection waits for its socket: [`Blocking`] blocks the thread; a green task's park
/// suspends the task. Chosen when the connection is made and visible in its type.
///
/// This trait is sealed: the crate provides its implementations.
pub trait Park: sealed::Sealed {}

/// Blocks the calling thread in `poll(2)` on the connection's socket: one syscall per wait,
/// no poller to create, no descriptors besides the socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Blocking;

impl Park for Blocking {}

#[allow(private_interfaces)]
impl sealed::Sealed for Blocking {
    fn reactor(&self) -> Option<&Arc<Reactor>> {
        None
    }

    fn blocks_thread(&self) -> bool {
        true
    }

    fn park(
        &self,
        transport: &Transport,
        interest: Ready,
        timeout: Option<Duration>,
    ) -> io::Result<Wake> {
        // Nothing this thread queued may wait while it sleeps.
        super::queue::flush_thread();
        let ready = transport.poll_one(interest, timeout)?;
        Ok(if ready == Ready::default() {
            Wake::TimedOut
        } else {
            Wake::Ready(ready)
        })
    }
}
