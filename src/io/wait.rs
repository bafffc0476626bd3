//! The wait seam: what the driver does when a socket call would block.
//!
//! The driver is written once, in blocking style, against [`Wait`]. The blocking API passes a
//! [`BlockingWait`], which sleeps in the connection's park until the deadline; a coroutine passes a wait
//! that suspends to its caller instead.

use std::io;
use std::time::{Duration, Instant};

use super::transport::Ready;
use super::{is_peer_gone, ParkImpl, ReadBuffer, Transport};
use crate::error::{Error, Operation};

/// What the driver calls when a send or receive returned `WouldBlock`.
pub(crate) trait Wait {
    /// A send would block: return once the socket may take more bytes. Response bytes that
    /// arrive meanwhile must not be left to congest the connection.
    fn writable(&mut self, transport: &Transport) -> Result<(), Error>;
    /// A receive would block: return once the socket may have bytes.
    fn readable(&mut self, transport: &Transport) -> Result<(), Error>;
}

/// The deadline of one blocking operation: `timeout` from its first wait. The clock is read
/// only when a call actually has to wait, so the fast path never touches it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    operation: Operation,
    timeout: Option<Duration>,
    at: Option<Instant>,
}

impl Deadline {
    pub(crate) fn new(operation: Operation, timeout: Option<Duration>) -> Self {
        Deadline {
            operation,
            timeout,
            at: None,
        }
    }

    /// Time left: `Ok(None)` without a timeout, `Err(Timeout)` once it has passed. A zero
    /// timeout is not "forever": it allows exactly one non-blocking check.
    pub(crate) fn remaining(&mut self) -> Result<Option<Duration>, Error> {
        let Some(timeout) = self.timeout else {
            return Ok(None);
        };
        let now = Instant::now();
        let at = *self.at.get_or_insert(now + timeout);
        match at.checked_duration_since(now) {
            Some(left) if !left.is_zero() || timeout.is_zero() => Ok(Some(left)),
            _ => Err(self.expired()),
        }
    }

    /// The error for this deadline having passed.
    pub(crate) fn expired(&self) -> Error {
        Error::Timeout {
            operation: self.operation,
            after: self.timeout.unwrap_or_default(),
        }
    }
}

/// Blocks the caller in its park (the thread in `poll(2)`, or a green task in its runtime).
/// While waiting to send it moves arriving response bytes into
/// `inbox` (up to `inbox_limit` bytes), so a server that will not read before it has written
/// cannot deadlock a pipelining sender.
#[derive(Debug)]
pub(crate) struct BlockingWait<'a> {
    deadline: Deadline,
    park: &'a dyn ParkImpl,
    inbox: Option<(&'a mut ReadBuffer, usize)>,
}

impl<'a> BlockingWait<'a> {
    /// A wait for the receive side, which reads into its own buffer.
    pub(crate) fn reading(park: &'a dyn ParkImpl, deadline: Deadline) -> Self {
        BlockingWait {
            deadline,
            park,
            inbox: None,
        }
    }

    /// A wait for the send side, which moves arriving bytes into `inbox` (at most `limit`).
    pub(crate) fn sending(
        deadline: Deadline,
        park: &'a dyn ParkImpl,
        inbox: &'a mut ReadBuffer,
        limit: usize,
    ) -> Self {
        BlockingWait {
            deadline,
            park,
            inbox: Some((inbox, limit)),
        }
    }

    fn wait_for(&mut self, transport: &Transport, interest: Ready) -> Result<Ready, Error> {
        let timeout = self.deadline.remaining()?;
        let ready = self.park.park(transport, interest, timeout)?;
        if ready == Ready::default() && timeout.is_some_and(|t| t.is_zero()) {
            return Err(self.deadline.expired());
        }
        Ok(ready)
    }
}

/// Moves every byte the socket holds into `inbox`, failing once it holds `limit` bytes.
pub(crate) fn drain(
    inbox: &mut ReadBuffer,
    limit: usize,
    transport: &Transport,
) -> Result<(), Error> {
    loop {
        if inbox.len() >= limit {
            return Err(Error::BufferFull { limit });
        }
        match inbox.fill_from(transport, limit) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            // The send that follows reports the reset; what arrived before it is kept.
            Err(e) if is_peer_gone(&e) => {
                inbox.set_reset();
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl Wait for BlockingWait<'_> {
    fn writable(&mut self, transport: &Transport) -> Result<(), Error> {
        loop {
            let readable = self
                .inbox
                .as_ref()
                .is_some_and(|(inbox, _)| !inbox.is_eof());
            let ready = self.wait_for(
                transport,
                Ready {
                    readable,
                    writable: true,
                },
            )?;
            if ready.writable {
                return Ok(());
            }
            if let (true, Some((inbox, limit))) = (ready.readable, self.inbox.as_mut()) {
                drain(inbox, *limit, transport)?;
            }
        }
    }

    fn readable(&mut self, transport: &Transport) -> Result<(), Error> {
        loop {
            let ready = self.wait_for(
                transport,
                Ready {
                    readable: true,
                    writable: false,
                },
            )?;
            if ready.readable {
                return Ok(());
            }
        }
    }
}
