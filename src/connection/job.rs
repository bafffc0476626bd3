//! A driver call running on one of the connection's coroutines, with the park that suspends
//! it: what cofunctions and `co_*` operations share. Their wrappers decide only what happens
//! while the coroutine waits.

use std::cell::RefCell;

use super::driver::Driver;
use super::send::{self, Prepared};
use super::state::{Sender, State};
use super::{Config, HttpConnection};
use crate::coroutine::{Blocked, Fiber, Resume, Resumed, Suspending};
use crate::error::Error;
use crate::io::{Park, Wake};

/// Whether a job holds the connection's send side until it finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Sends,
    Reads,
}

/// What one resume of a job ended with.
#[derive(Debug)]
pub(crate) enum Step<T> {
    /// The driver waits for its socket.
    Blocked(Blocked),
    /// The driver call returned.
    Done(Result<T, Error>),
}

/// A driver call on a coroutine.
pub(crate) struct Job<'c, T> {
    cell: &'c RefCell<State>,
    /// `None` once the call has returned and the stack went back to the pool.
    fiber: Option<Fiber<'c, Resume, Blocked, Result<T, Error>>>,
    role: Role,
    /// A request that joined the pipeline but none of whose bytes went out until the job
    /// first runs: dropping the job before then takes it back.
    unsent: Option<(u64, u64)>,
}

impl<T> std::fmt::Debug for Job<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("role", &self.role)
            .field("started", &self.is_started())
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<'c, T> Job<'c, T> {
    /// Runs `work` on a pooled stack of `conn`'s, with a park that suspends to the job's
    /// owner; `config` replaces the connection's settings when given. A sending job holds
    /// the send side: the caller's own sends and writes fail with `CofunctionActive` until
    /// it finishes.
    pub(crate) fn spawn<P: Park>(
        conn: &'c HttpConnection<P>,
        role: Role,
        config: Option<Config>,
        work: impl FnOnce(&Driver<'_>) -> Result<T, Error> + 'c,
    ) -> Result<Self, Error> {
        let stack = {
            let mut st = conn.state()?;
            let stack = st.stacks.take().map_err(Error::Io)?;
            if role == Role::Sends {
                st.send.sender = Sender::Coroutine;
            }
            stack
        };
        let fiber = Fiber::new(stack, move |yielder, first: Resume| {
            if matches!(first, Ok(Wake::Cancelled)) {
                return Err(Error::Cancelled);
            }
            let park = Suspending::new(yielder, &conn.park);
            let d = Driver {
                cell: &conn.state,
                target: &conn.target,
                config: config.as_ref().unwrap_or(&conn.config),
                park: &park,
            };
            work(&d)
        });
        Ok(Job {
            cell: &conn.state,
            fiber: Some(fiber),
            role,
            unsent: None,
        })
    }

    /// Whether the coroutine has run.
    pub(crate) fn is_started(&self) -> bool {
        self.fiber.as_ref().is_none_or(Fiber::is_started)
    }

    /// Whether the call has returned.
    pub(crate) fn is_finished(&self) -> bool {
        self.fiber.is_none()
    }

    /// Resumes the call; `None` once it has returned.
    pub(crate) fn resume(&mut self, input: Resume) -> Option<Step<T>> {
        let resumed = self.fiber.as_mut()?.resume(input);
        match resumed {
            Some(Resumed::Yield(blocked)) => Some(Step::Blocked(blocked)),
            Some(Resumed::Return(result)) => {
                self.finish();
                Some(Step::Done(result))
            }
            None => {
                self.finish();
                None
            }
        }
    }

    /// The call returned (or was cancelled): the stack goes back to the pool and the send
    /// side back to the caller.
    fn finish(&mut self) {
        let Some(fiber) = self.fiber.take() else {
            return;
        };
        let stack = fiber.into_stack();
        if let Ok(mut st) = self.cell.try_borrow_mut() {
            if let Some(stack) = stack {
                st.stacks.put(stack);
            }
            if self.role == Role::Sends {
                st.send.sender = Sender::Caller;
            }
        }
    }
}

impl<'c> Job<'c, ()> {
    /// A job that puts a prepared request on the wire. The request is taken back out of
    /// the pipeline if the job cannot start, or is dropped before it runs.
    pub(crate) fn transmit<P: Park>(
        conn: &'c HttpConnection<P>,
        config: Option<Config>,
        prepared: Prepared<'c>,
    ) -> Result<Job<'c, ()>, Error> {
        let id = prepared.id();
        match Job::spawn(conn, Role::Sends, config, move |d| {
            send::transmit(d, prepared)
        }) {
            Ok(mut job) => {
                job.unsent = Some(id);
                Ok(job)
            }
            Err(e) => {
                if let Ok(mut st) = conn.state() {
                    st.unsend(id);
                }
                Err(e)
            }
        }
    }
}

impl<T> Drop for Job<'_, T> {
    fn drop(&mut self) {
        let Some(fiber) = self.fiber.as_mut() else {
            return;
        };
        if !fiber.is_started() {
            if let (Some(request), Ok(mut st)) = (self.unsent, self.cell.try_borrow_mut()) {
                // Nothing went out: as if the request was never sent.
                st.unsend(request);
            }
        }
        // A started call returns `Cancelled` from its wait; the send driver then poisons
        // the connection, as part of the request is out.
        fiber.cancel();
        self.finish();
    }
}
