//! The sending coroutine and its resume/suspend protocol.

use std::io::IoSlice;
use std::sync::Arc;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::wait::CoWait;
use crate::error::Error;
use crate::io::{write_all, Transport};

/// What the caller passes in when it resumes the coroutine.
#[derive(Debug)]
pub(crate) enum Resume {
    /// Send these bytes (the buffer comes back in [`Suspend::Sent`]).
    Send(Vec<u8>),
    /// Try sending again after [`Suspend::Blocked`].
    Go,
    /// Nothing more to send: return `Ok`.
    Finish,
    /// Stop now: return `Err(Cancelled)`. Used by `Drop`, instead of unwinding the stack.
    Cancel,
}

/// Why the coroutine handed control back.
#[derive(Debug)]
pub(crate) enum Suspend {
    /// The socket is full: the caller waits (for writability, or reads response data that
    /// arrives meanwhile) and then resumes with [`Resume::Go`].
    Blocked,
    /// Every byte of this buffer went out; it is handed back for reuse.
    Sent(Vec<u8>),
}

/// The result of one resume.
#[derive(Debug)]
pub(crate) enum Step {
    /// The coroutine suspended.
    Suspended(Suspend),
    /// The coroutine returned.
    Done(Result<(), Error>),
}

type SendCoroutine = Coroutine<Resume, Suspend, Result<(), Error>, DefaultStack>;

/// A corosensei coroutine that writes the buffers it is given on `transport` with the same
/// send loop as the blocking path ([`write_all`]), suspending to its caller whenever the
/// socket is full. The caller decides how to wait and whether to read first: the coroutine
/// never blocks.
pub(crate) struct Sender {
    /// INVARIANT: `None` only after the coroutine returned and its stack was taken.
    coroutine: Option<SendCoroutine>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("done", &self.is_done())
            .finish()
    }
}

impl Sender {
    /// Creates the coroutine on `stack`; it starts running at the first [`resume`](Self::resume).
    pub(crate) fn new(stack: DefaultStack, transport: Arc<Transport>) -> Self {
        let body = move |yielder: &Yielder<Resume, Suspend>, first: Resume| {
            let mut wait = CoWait { yielder };
            let mut input = first;
            loop {
                match input {
                    Resume::Send(buf) => {
                        write_all(&transport, &mut [IoSlice::new(&buf)], &mut wait)?;
                        input = yielder.suspend(Suspend::Sent(buf));
                    }
                    Resume::Finish => return Ok(()),
                    // `Go` only answers `Blocked` inside the wait; anywhere else it is treated
                    // like `Cancel`.
                    Resume::Go | Resume::Cancel => return Err(Error::Cancelled),
                }
            }
        };
        Sender::spawn(stack, body)
    }

    /// Creates a coroutine running `body` on `stack`.
    fn spawn<F>(stack: DefaultStack, body: F) -> Self
    where
        F: FnOnce(&Yielder<Resume, Suspend>, Resume) -> Result<(), Error> + 'static,
    {
        Sender {
            coroutine: Some(Coroutine::with_stack(stack, body)),
        }
    }

    /// Runs the coroutine until it suspends or returns. A panic inside it propagates out of
    /// this call.
    pub(crate) fn resume(&mut self, input: Resume) -> Step {
        let Some(co) = self.coroutine.as_mut().filter(|co| !co.done()) else {
            return Step::Done(Err(Error::Cancelled));
        };
        match co.resume(input) {
            CoroutineResult::Yield(s) => Step::Suspended(s),
            CoroutineResult::Return(r) => Step::Done(r),
        }
    }

    /// Resumes with [`Resume::Cancel`] until the coroutine returns: its stack is left by
    /// ordinary returns, never by corosensei's forced unwinding (which aborts the process
    /// under `panic = "abort"`).
    pub(crate) fn cancel(&mut self) -> Result<(), Error> {
        loop {
            match self.resume(Resume::Cancel) {
                Step::Suspended(_) => continue,
                Step::Done(result) => return result,
            }
        }
    }

    /// Whether the coroutine has returned.
    pub(crate) fn is_done(&self) -> bool {
        self.coroutine.as_ref().is_none_or(|co| co.done())
    }

    /// The stack, for reuse (the coroutine is cancelled first if it has not returned).
    pub(crate) fn into_stack(mut self) -> Option<DefaultStack> {
        if !self.is_done() {
            // The result was not asked for: the caller has already decided the outcome.
            let _ = self.cancel();
        }
        self.coroutine.take().map(Coroutine::into_stack)
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if !self.is_done() {
            let _ = self.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack() -> DefaultStack {
        DefaultStack::new(64 * 1024).expect("stack")
    }

    #[test]
    fn a_panic_inside_the_coroutine_propagates_out_of_resume() {
        let mut sender = Sender::spawn(stack(), |yielder, _| {
            yielder.suspend(Suspend::Blocked);
            panic!("boom inside the coroutine");
        });
        assert!(matches!(
            sender.resume(Resume::Finish),
            Step::Suspended(Suspend::Blocked)
        ));
        let caught =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sender.resume(Resume::Go)));
        let message = caught.expect_err("the panic reaches the resumer");
        assert_eq!(
            message.downcast_ref::<&str>(),
            Some(&"boom inside the coroutine")
        );
        // The coroutine is finished and its stack can be reused.
        assert!(sender.is_done());
        assert!(sender.into_stack().is_some());
    }

    #[test]
    fn cancel_resumes_until_the_coroutine_returns() {
        let mut sender = Sender::spawn(stack(), |yielder, mut input| loop {
            match input {
                Resume::Cancel => return Err(Error::Cancelled),
                _ => input = yielder.suspend(Suspend::Blocked),
            }
        });
        assert!(matches!(sender.resume(Resume::Finish), Step::Suspended(_)));
        assert!(matches!(sender.cancel(), Err(Error::Cancelled)));
        assert!(sender.is_done());
        // A coroutine that never ran is cancelled without running its body past the start.
        let mut fresh = Sender::spawn(stack(), |_, input| match input {
            Resume::Cancel => Err(Error::Cancelled),
            _ => Ok(()),
        });
        assert!(matches!(fresh.cancel(), Err(Error::Cancelled)));
    }
}
