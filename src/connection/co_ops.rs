//! `co_*` operations: driver calls as steps that a foreign event loop (polling, mio, a raw
//! `poll(2)`) drives, each step either finishing or saying which readiness of which
//! descriptor it waits for.
//!
//! Each operation runs the ordinary driver on a coroutine of the connection's; where the
//! driver would wait, the coroutine suspends and [`CoOp::step`] returns [`CoStep::Poll`].
//! Operations have no operation timeout (the loop decides how long to wait), but the wait for
//! `100 Continue` still ends after [`Config::continue_timeout`](crate::Config::continue_timeout):
//! its `Poll` carries that timeout.

use std::cell::RefCell;
use std::io::Read;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method};

use super::driver::{Deadline, Driver};
use super::job::{Job, Role, Step};
use super::send::{self, Request};
use super::state::{Link, State};
use super::{recv, Config, HttpConnection, Response};
use crate::coroutine::Resume;
use crate::error::{Error, Operation};
use crate::io::{Park, Ready, Transport, Wake};
use crate::proto::{Body, StateError};

/// Which readiness an operation waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interest {
    /// Readability.
    Read,
    /// Writability.
    Write,
}

impl Interest {
    /// Whether to wait for readability.
    pub fn is_readable(self) -> bool {
        self == Interest::Read
    }

    /// Whether to wait for writability.
    pub fn is_writable(self) -> bool {
        self == Interest::Write
    }

    /// What a foreign loop is asked to wait for, given what the driver waits for: a send
    /// that would also take in response bytes waits for writability only (reading is the
    /// loop's own business, through a `co_read*` operation).
    fn of(ready: Ready) -> Self {
        if ready.writable {
            Interest::Write
        } else {
            Interest::Read
        }
    }

    fn ready(self) -> Ready {
        Ready {
            readable: self.is_readable(),
            writable: self.is_writable(),
        }
    }
}

/// What an operation waits for: poll `fd` for `interest` (for at most `timeout`, when
/// given), then call [`CoOp::step`] again. The descriptor is borrowed from the operation, so
/// it stays open while this value lives.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct PollNeeded<'a> {
    /// The connection's socket.
    pub fd: BorrowedFd<'a>,
    /// The readiness to wait for.
    pub interest: Interest,
    /// Step again after this long even if the descriptor is not ready (the operation has a
    /// deadline of its own then, like the wait for `100 Continue`).
    pub timeout: Option<Duration>,
}

/// One step of a [`CoOp`].
#[derive(Debug)]
pub enum CoStep<'a, T> {
    /// The operation waits for the socket.
    Poll(PollNeeded<'a>),
    /// The operation finished.
    Done(Result<T, Error>),
}

/// A `co_*` operation on a connection, for a foreign event loop: call [`step`](Self::step)
/// until it returns [`CoStep::Done`]; after a [`CoStep::Poll`], step again once the
/// descriptor is ready. Several operations may be alive on one connection (a send and a read
/// driven side by side is how a foreign loop pipelines without deadlock); each step borrows
/// the connection only while it runs.
///
/// # Cancellation
///
/// Dropping an unfinished operation cancels it as dropping a [`Cofun`](crate::Cofun) does: a
/// send none of whose bytes went out is taken back; a partial send poisons the connection; a
/// read loses nothing it had not returned.
#[must_use = "an operation does nothing until it is stepped"]
pub struct CoOp<'c, T> {
    cell: &'c RefCell<State>,
    /// The running call, or why it could not start (reported by the first step).
    job: Result<Job<'c, T>, Option<Error>>,
    /// What to resume the coroutine with next.
    input: Resume,
    /// The socket of the last `Poll` and what it waits for; the socket is kept open while
    /// the caller polls it.
    watched: Option<(Arc<Transport>, Interest, Option<Duration>)>,
}

impl<T> std::fmt::Debug for CoOp<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoOp").field("job", &self.job).finish()
    }
}

/// The settings `co_*` operations run with: the connection's, without an operation timeout
/// (the caller's loop decides how long to wait).
fn settings<P: Park>(conn: &HttpConnection<P>) -> Config {
    conn.config.clone().timeout(None)
}

impl<'c, T> CoOp<'c, T> {
    fn new<P: Park>(
        conn: &'c HttpConnection<P>,
        role: Role,
        work: impl FnOnce(&Driver<'_>) -> Result<T, Error> + 'c,
    ) -> Result<Self, Error> {
        let job = Job::spawn(conn, role, Some(settings(conn)), work)?;
        Ok(Self::of(conn, job))
    }

    fn of<P: Park>(conn: &'c HttpConnection<P>, job: Job<'c, T>) -> Self {
        CoOp {
            cell: &conn.state,
            job: Ok(job),
            input: Ok(Wake::Resumed),
            watched: None,
        }
    }

    /// An operation that reads: a failure to start it is reported by its first step.
    fn reading<P: Park>(
        conn: &'c HttpConnection<P>,
        work: impl FnOnce(&Driver<'_>) -> Result<T, Error> + 'c,
    ) -> Self {
        Self::new(conn, Role::Reads, work).unwrap_or_else(|e| CoOp {
            cell: &conn.state,
            job: Err(Some(e)),
            input: Ok(Wake::Resumed),
            watched: None,
        })
    }

    /// Makes as much progress as possible without waiting.
    ///
    /// # Errors
    ///
    /// Inside [`CoStep::Done`]: the errors of the blocking call the operation mirrors, and
    /// [`StateError::Busy`] when stepped again after it finished.
    pub fn step(&mut self) -> CoStep<'_, T> {
        loop {
            let input = std::mem::replace(&mut self.input, Ok(Wake::Resumed));
            let job = match &mut self.job {
                Ok(job) => job,
                Err(why) => {
                    let e = why.take().unwrap_or_else(|| StateError::Busy.into());
                    return CoStep::Done(Err(e));
                }
            };
            let blocked = match job.resume(input) {
                None => return CoStep::Done(Err(StateError::Busy.into())),
                Some(Step::Done(result)) => return CoStep::Done(result),
                Some(Step::Blocked(blocked)) => blocked,
            };
            if blocked.timeout == Some(Duration::ZERO) {
                // Only a look, never a wait (an early response between body pieces).
                self.input = Ok(Wake::TimedOut);
                continue;
            }
            let link = self.cell.try_borrow().ok().and_then(|st| match &st.link {
                Link::Open(t) => Some(Arc::clone(t)),
                _ => None,
            });
            let Some(transport) = link else {
                // The link is gone: the driver finds out when it looks.
                self.input = Ok(Wake::Ready(blocked.interest));
                continue;
            };
            let interest = Interest::of(blocked.interest);
            // Resumed after the loop's poll: the driver tries again what it waited for.
            self.input = Ok(Wake::Ready(interest.ready()));
            self.watched = Some((transport, interest, blocked.timeout));
            break;
        }
        // The caller's loop is about to wait: nothing queued may wait with it.
        crate::io::flush_thread();
        match self.waiting_for() {
            Some(need) => CoStep::Poll(need),
            None => CoStep::Done(Err(StateError::Busy.into())),
        }
    }

    /// What the last [`step`](Self::step) said the operation waits for, while it waits (the
    /// same value as its [`CoStep::Poll`]); `None` before the first step and once finished.
    pub fn waiting_for(&self) -> Option<PollNeeded<'_>> {
        if self.job.as_ref().map_or(true, Job::is_finished) {
            return None;
        }
        let (transport, interest, timeout) = self.watched.as_ref()?;
        Some(PollNeeded {
            fd: transport.fd(),
            interest: *interest,
            timeout: *timeout,
        })
    }
}

impl<P: Park> HttpConnection<P> {
    /// [`send_request`](Self::send_request) as a `co_*` operation: the head (and an in-memory
    /// body) goes out in steps, each waiting (through the caller's loop) for writability, or
    /// for readability while it waits for `100 Continue`. Responses are not read by it: drive
    /// a [`co_read_response`](Self::co_read_response) alongside when the server may answer
    /// before it has read everything.
    ///
    /// # Errors
    ///
    /// As [`send_request_cofun`](Self::send_request_cofun) before anything is sent (this
    /// includes connecting, which blocks up to the connect timeout); later errors come out of
    /// [`CoOp::step`].
    pub fn co_send_request<'c>(
        &'c self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: Body<'c>,
    ) -> Result<CoOp<'c, ()>, Error> {
        let request = Request {
            method,
            path: target,
            headers,
            body,
        };
        let prepared = send::prepare(&self.driver(), &request)?;
        let job = Job::transmit(self, Some(settings(self)), prepared)?;
        Ok(CoOp::of(self, job))
    }

    /// Streams `body` as the request body owed by the last request ([`Body::Following`] or
    /// [`Body::Chunked`]), as a `co_*` operation (the stepped counterpart of
    /// [`sendfile_cofun`](Self::sendfile_cofun)).
    ///
    /// # Errors
    ///
    /// As [`sendfile_cofun`](Self::sendfile_cofun).
    pub fn co_write<'c, R: Read>(&'c self, body: &'c mut R) -> Result<CoOp<'c, ()>, Error> {
        let target = send::stream_target(&mut *self.state()?)?;
        CoOp::new(self, Role::Sends, move |d| match target {
            Some((held, request)) => send::stream_body(d, &held, request, body),
            None => Ok(()),
        })
    }

    /// [`read_response`](Self::read_response) as a `co_*` operation. Its first step
    /// reports [`StateError::Busy`] (or [`Error::Io`]) if no coroutine could be started for
    /// it.
    pub fn co_read_response(&self) -> CoOp<'_, Response> {
        CoOp::reading(self, |d| {
            recv::read_response(d, &mut Deadline::new(Operation::ReadResponse, None))
        })
    }

    /// [`read`](Self::read) as a `co_*` operation (see
    /// [`co_read_response`](Self::co_read_response) for a failure to start).
    pub fn co_read<'c>(&'c self, buf: &'c mut [u8]) -> CoOp<'c, usize> {
        CoOp::reading(self, move |d| {
            recv::read_body(d, buf, &mut Deadline::new(Operation::ReadBody, None))
        })
    }

    /// [`read_all`](Self::read_all) as a `co_*` operation (see
    /// [`co_read_response`](Self::co_read_response) for a failure to start).
    pub fn co_read_all(&self) -> CoOp<'_, Vec<u8>> {
        CoOp::reading(self, |d| {
            let mut body = Vec::new();
            recv::read_to_end(d, &mut body, &mut Deadline::new(Operation::ReadBody, None))?;
            Ok(body)
        })
    }
}
