//! The coroutine's wait: when the socket is full, hand control back to the caller, which
//! waits in its own way (blocking or as a green task) and reads any response data first.

use corosensei::Yielder;

use super::{Resume, Suspend};
use crate::error::Error;
use crate::io::{Transport, Wait};

/// A [`Wait`] that suspends the coroutine to its caller instead of waiting.
pub(crate) struct CoWait<'y> {
    pub(crate) yielder: &'y Yielder<Resume, Suspend>,
}

impl CoWait<'_> {
    fn suspend(&mut self) -> Result<(), Error> {
        match self.yielder.suspend(Suspend::Blocked) {
            Resume::Go => Ok(()),
            Resume::Cancel | Resume::Send(_) | Resume::Finish => Err(Error::Cancelled),
        }
    }
}

impl Wait for CoWait<'_> {
    fn writable(&mut self, _: &Transport) -> Result<(), Error> {
        self.suspend()
    }

    fn readable(&mut self, _: &Transport) -> Result<(), Error> {
        self.suspend()
    }
}
