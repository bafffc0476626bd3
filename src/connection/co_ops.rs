//! `co_*` operations: the driver's calls as steps that a foreign event loop (polling, mio, a
//! raw `poll(2)`) drives, each step either finishing or saying which readiness it waits for.
//!
//! Reads run the ordinary driver with a park that never waits: a read that would block
//! returns without having changed anything, so the next step simply tries again. Sends run
//! the cofunction's coroutine, which keeps its place when the socket is full.

use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};

use http::{HeaderMap, Method};

use super::cofun::Cofun;
use super::{HttpConnection, Response};
use crate::error::{Error, StateError};
use crate::io::{is_poll_needed, External, Park};
use crate::proto::Body;

/// What an operation waits for: poll `fd` for these, then call [`CoOp::step`] again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollNeeded {
    /// The connection's socket.
    pub fd: RawFd,
    /// Wait for readability.
    pub readable: bool,
    /// Wait for writability.
    pub writable: bool,
}

/// One step of a [`CoOp`].
#[derive(Debug)]
pub enum CoStep<T> {
    /// The operation waits for the socket.
    Poll(PollNeeded),
    /// The operation finished.
    Done(Result<T, Error>),
}

/// A `co_*` operation on a connection, for a foreign event loop: call [`step`](Self::step)
/// until it returns [`CoStep::Done`]; after a [`CoStep::Poll`], step again once the
/// descriptor is ready. Several operations may be alive on one connection (a send and a read
/// driven side by side is how a foreign loop pipelines without deadlock); each step borrows
/// the connection only while it runs.
///
/// A `co_*` operation has no deadline of its own: the loop decides how long to wait.
#[must_use = "an operation does nothing until it is stepped"]
pub struct CoOp<'c, T> {
    attempt: Box<dyn FnMut() -> Result<T, Error> + 'c>,
    fd: Box<dyn Fn() -> RawFd + 'c>,
    readable: bool,
    done: bool,
}

impl<T> std::fmt::Debug for CoOp<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoOp")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<'c, T> CoOp<'c, T> {
    fn new<P: Park>(
        conn: &'c HttpConnection<P>,
        readable: bool,
        attempt: impl FnMut() -> Result<T, Error> + 'c,
    ) -> Self {
        CoOp {
            attempt: Box::new(attempt),
            fd: Box::new(move || conn.as_raw_fd()),
            readable,
            done: false,
        }
    }

    /// Makes as much progress as possible without waiting.
    ///
    /// # Errors
    ///
    /// Inside [`CoStep::Done`]: the errors of the blocking call the operation mirrors, and
    /// [`StateError::Busy`] when stepped again after it finished.
    pub fn step(&mut self) -> CoStep<T> {
        if self.done {
            return CoStep::Done(Err(StateError::Busy.into()));
        }
        match (self.attempt)() {
            Err(e) if is_poll_needed(&e) => CoStep::Poll(PollNeeded {
                fd: (self.fd)(),
                readable: self.readable,
                writable: !self.readable,
            }),
            result => {
                self.done = true;
                CoStep::Done(result)
            }
        }
    }
}

impl<P: Park> HttpConnection<P> {
    /// [`send_request`](Self::send_request) as a `co_*` operation: the head (and an in-memory
    /// body) goes out in steps, each waiting (through the caller's loop) for writability.
    /// Responses are not read by it: drive a [`co_read_response`](Self::co_read_response)
    /// alongside when the server may answer before it has read everything.
    ///
    /// # Errors
    ///
    /// As [`send_request_cofun`](Self::send_request_cofun) before anything is sent; later
    /// errors come out of [`CoOp::step`].
    pub fn co_send_request<'c>(
        &'c self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: Body<'_>,
    ) -> Result<CoOp<'c, ()>, Error> {
        let cofun = self
            .send_request_cofun(method, target, headers, body)?
            .external();
        Ok(Self::co_drive(self, cofun))
    }

    /// Streams `body` as the request body owed by the last request ([`Body::Following`] or
    /// [`Body::Chunked`]), as a `co_*` operation (the non-blocking counterpart of `write`).
    ///
    /// # Errors
    ///
    /// As [`co_sendfile`](Self::co_sendfile).
    pub fn co_write<'c, R: Read>(&'c self, body: &'c mut R) -> Result<CoOp<'c, ()>, Error> {
        let cofun = {
            let mut st = self.state()?;
            Cofun::body(self, &mut st, body)?.external()
        };
        Ok(Self::co_drive(self, cofun))
    }

    fn co_drive<'c>(conn: &'c Self, mut cofun: Cofun<'c, P>) -> CoOp<'c, ()> {
        CoOp::new(conn, false, move || loop {
            match cofun.next() {
                None => return Ok(()),
                Some(Ok(())) => continue,
                Some(Err(e)) => return Err(e),
            }
        })
    }

    /// [`read_response`](Self::read_response) as a `co_*` operation.
    pub fn co_read_response(&self) -> CoOp<'_, Response> {
        CoOp::new(self, true, move || self.read_response_parked(&External))
    }

    /// [`read`](Self::read) as a `co_*` operation.
    pub fn co_read<'c>(&'c self, buf: &'c mut [u8]) -> CoOp<'c, usize> {
        CoOp::new(self, true, move || self.read_parked(&External, buf))
    }

    /// [`read_all`](Self::read_all) as a `co_*` operation; the bytes read so far are kept
    /// across steps.
    pub fn co_read_all(&self) -> CoOp<'_, Vec<u8>> {
        let mut body = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        CoOp::new(self, true, move || loop {
            match self.read_parked(&External, &mut chunk)? {
                0 => return Ok(std::mem::take(&mut body)),
                n => body.extend_from_slice(&chunk[..n]),
            }
        })
    }
}
