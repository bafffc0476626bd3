//! The green park: a connection made in a task suspends the task instead of blocking.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::runtime::{Parked, Task, Wake};
use crate::io::{Park, ParkImpl, Reactor, Ready, Transport};

/// How a connection made inside a green task waits: it suspends the task until the runtime's
/// poller reports its socket ready (or its deadline passes). Obtained through
/// [`Task::connect`]; the lifetime ties the connection to its task.
#[derive(Debug, Clone, Copy)]
pub struct Green<'a> {
    pub(super) task: &'a Task<'a>,
}

impl Park for Green<'_> {}

#[allow(private_interfaces)]
impl ParkImpl for Green<'_> {
    fn reactor(&self) -> Option<&Arc<Reactor>> {
        Some(self.task.reactor())
    }

    fn sleep(&self, duration: Duration) {
        // The runtime sends queued bytes before it polls.
        self.task.sleep(duration);
    }

    fn park(
        &self,
        transport: &Transport,
        interest: Ready,
        timeout: Option<Duration>,
    ) -> io::Result<crate::io::Wake> {
        let (key, ready) = transport.arm(interest)?;
        if !ready.is_empty() {
            return Ok(crate::io::Wake::Ready(ready));
        }
        let deadline = timeout.map(|t| crate::io::now() + t);
        Ok(
            match self.task.suspend(Parked::Io {
                key,
                interest,
                deadline,
            }) {
                Wake::Ready(ready) => crate::io::Wake::Ready(ready),
                Wake::TimedOut | Wake::Start => crate::io::Wake::TimedOut,
                Wake::Cancel => crate::io::Wake::Cancelled,
            },
        )
    }
}
