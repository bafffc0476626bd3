//! Parking: how a driver call sleeps until its socket is ready. The one thing that differs
//! between a connection that blocks its thread and one that runs in a green task.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::transport::{Reactor, Ready, Transport};

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

        /// Sleeps until `transport` is ready for one of `interest` or `timeout` passes (then
        /// neither flag is set).
        fn park(
            &self,
            transport: &Transport,
            interest: Ready,
            timeout: Option<Duration>,
        ) -> io::Result<Ready>;
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

    fn park(
        &self,
        transport: &Transport,
        interest: Ready,
        timeout: Option<Duration>,
    ) -> io::Result<Ready> {
        transport.poll_one(interest, timeout)
    }
}

/// Never waits: reports "would block" so that a `co_*` operation can hand the wait to a
/// foreign event loop. Used only inside the crate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct External;

#[allow(private_interfaces)]
impl sealed::Sealed for External {
    fn reactor(&self) -> Option<&Arc<Reactor>> {
        None
    }

    fn park(&self, _: &Transport, _: Ready, _: Option<Duration>) -> io::Result<Ready> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

/// Whether an error is [`External`]'s "would block": the operation can go on once the socket
/// is ready.
pub(crate) fn is_poll_needed(e: &crate::Error) -> bool {
    matches!(e, crate::Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}
