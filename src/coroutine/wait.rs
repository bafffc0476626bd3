//! The coroutine's wait: instead of blocking when the socket is full, hand control back to the
//! caller whenever response data is available, so the caller can read it.

use std::time::Duration;

use corosensei::Yielder;

use super::{Resume, Suspend};
use crate::error::{Error, Operation};
use crate::io::{Deadline, Ready, Transport, Wait};

/// A [`Wait`] that suspends the coroutine to its caller when the socket becomes readable.
pub(crate) struct CoWait<'y> {
    pub(crate) yielder: &'y Yielder<Resume, Suspend>,
    pub(crate) operation: Operation,
    pub(crate) timeout: Option<Duration>,
    pub(crate) deadline: Deadline,
    /// Whether readability counts (false once the server has closed its side, which would
    /// otherwise report "readable" forever).
    pub(crate) watch_reads: bool,
}

impl CoWait<'_> {
    /// Hands control to the caller; returns when resumed. Time spent in the caller's loop
    /// body does not count against the deadline.
    fn suspend(&mut self) -> Result<(), Error> {
        match self.yielder.suspend(Suspend::Readable) {
            Resume::Go { watch_reads } => {
                self.watch_reads = watch_reads;
                self.deadline = Deadline::new(self.operation, self.timeout);
                Ok(())
            }
            Resume::Cancel => Err(Error::Cancelled),
            Resume::Send(_) | Resume::Finish => Err(Error::Cancelled),
        }
    }
}

impl Wait for CoWait<'_> {
    fn writable(&mut self, transport: &Transport) -> Result<(), Error> {
        loop {
            let timeout = self.deadline.remaining()?;
            let interest = Ready {
                readable: self.watch_reads,
                writable: true,
            };
            let ready = transport.wait(interest, timeout)?;
            if ready.readable {
                self.suspend()?;
            } else if ready.writable {
                return Ok(());
            } else if timeout.is_some_and(|t| t.is_zero()) {
                return Err(self.deadline.expired());
            }
        }
    }

    fn readable(&mut self, transport: &Transport) -> Result<(), Error> {
        loop {
            let timeout = self.deadline.remaining()?;
            let ready = transport.wait(
                Ready {
                    readable: true,
                    writable: false,
                },
                timeout,
            )?;
            if ready.readable {
                return Ok(());
            }
            if timeout.is_some_and(|t| t.is_zero()) {
                return Err(self.deadline.expired());
            }
        }
    }
}
