//! Work run on a thread of its own, waited for like a socket: the thread closes its end of a
//! socket pair when the result is in, which makes the caller's end readable. Any park can
//! wait for that (with a timeout, or suspending a green task), so a name lookup or a
//! caller's blocking closure never blocks a green runtime's thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread;

use socket2::{Domain, Socket, Type};

use super::reactor::Reactor;
use super::transport::Transport;

/// What the work's thread leaves for its caller: its value, or its panic.
type Slot<T> = Arc<Mutex<Option<thread::Result<T>>>>;

/// Work running on its own thread.
pub(crate) struct Offload<T> {
    waker: Transport,
    slot: Slot<T>,
}

impl<T: Send + 'static> Offload<T> {
    /// Starts `work` on a new thread named `name`; the wait side is registered with
    /// `reactor` if there is one.
    pub(crate) fn start(
        name: &str,
        work: impl FnOnce() -> T + Send + 'static,
        reactor: Option<&Arc<Reactor>>,
    ) -> std::io::Result<Self> {
        let (ours, theirs) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
        ours.set_nonblocking(true)?;
        let waker = Transport::waker(ours, reactor)?;
        let slot: Slot<T> = Arc::default();
        let result = Arc::clone(&slot);
        thread::Builder::new().name(name.into()).spawn(move || {
            let value = catch_unwind(AssertUnwindSafe(work));
            *result.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
            // Closing our end makes the waiting side readable (end of stream).
            drop(theirs);
        })?;
        Ok(Offload { waker, slot })
    }
}

impl<T> Offload<T> {
    /// What to park on for readability: ready once the result is in.
    pub(crate) fn transport(&self) -> &Transport {
        &self.waker
    }

    /// The result, if it is in (once: later calls give `None`).
    pub(crate) fn take(&self) -> Option<thread::Result<T>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}
