//! The park of a coroutine: instead of waiting, it suspends to whoever resumed it, saying what
//! it waits for. That caller waits in its own way (the connection's park, a foreign event
//! loop) or lets its loop body read first, then resumes it with how the wait ended.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use corosensei::Yielder;

use super::Cancel;
use crate::io::{ParkImpl, Reactor, Ready, Transport, Wake};

/// What a suspended coroutine waits for: readiness of its connection's socket, for at most
/// `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Blocked {
    pub(crate) interest: Ready,
    pub(crate) timeout: Option<Duration>,
}

/// What a coroutine is resumed with: how its wait ended, or why the caller's wait failed.
pub(crate) type Resume = io::Result<Wake>;

impl Cancel for Resume {
    fn cancel() -> Self {
        Ok(Wake::Cancelled)
    }
}

/// A park that suspends the coroutine it runs in.
pub(crate) struct Suspending<'y> {
    yielder: &'y Yielder<Resume, Blocked>,
    /// The connection's own park, which opens new connections.
    owner: &'y dyn ParkImpl,
}

impl<'y> Suspending<'y> {
    /// The park for code running on `yielder`'s coroutine; new connections are opened by
    /// `owner` (the connection's own park: registered with its reactor, say).
    pub(crate) fn new(yielder: &'y Yielder<Resume, Blocked>, owner: &'y dyn ParkImpl) -> Self {
        Suspending { yielder, owner }
    }
}

impl std::fmt::Debug for Suspending<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suspending").finish_non_exhaustive()
    }
}

impl ParkImpl for Suspending<'_> {
    fn reactor(&self) -> Option<&Arc<Reactor>> {
        self.owner.reactor()
    }

    fn open(&self, addr: SocketAddr) -> io::Result<(Transport, bool)> {
        self.owner.open(addr)
    }

    fn park(&self, _: &Transport, interest: Ready, timeout: Option<Duration>) -> io::Result<Wake> {
        self.yielder.suspend(Blocked { interest, timeout })
    }
}
