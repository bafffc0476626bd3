//! A coroutine on a pooled stack that is stopped by asking, never by unwinding.
//!
//! corosensei drops an unfinished coroutine by unwinding its stack, which aborts the process
//! under `panic = "abort"`. A [`Fiber`] instead resumes it with its [`Cancel`] input until it
//! returns, and leaks it (stack included) if it will not.
#![allow(unsafe_code)]

use std::marker::PhantomData;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

/// How many times a coroutine that ignores cancellation is resumed before it is leaked.
const CANCEL_ATTEMPTS: usize = 1000;

/// An input that asks a coroutine to return as soon as it can.
pub(crate) trait Cancel {
    /// The cancel input.
    fn cancel() -> Self;
}

/// What one resume ended with.
#[derive(Debug)]
pub(crate) enum Resumed<Y, R> {
    /// The coroutine suspended with this value.
    Yield(Y),
    /// The coroutine returned.
    Return(R),
}

/// A coroutine whose body may borrow anything that lives for `'a`.
pub(crate) struct Fiber<'a, I: Cancel, Y, R> {
    /// INVARIANT: `Some` until `into_stack` or `Drop` takes it.
    coroutine: Option<Coroutine<I, Y, R, DefaultStack>>,
    borrows: PhantomData<&'a mut ()>,
}

impl<I: Cancel, Y, R> std::fmt::Debug for Fiber<'_, I, Y, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fiber")
            .field("started", &self.is_started())
            .field("done", &self.is_done())
            .finish()
    }
}

impl<'a, I: Cancel, Y, R> Fiber<'a, I, Y, R> {
    /// Creates the coroutine on `stack`; `body` first runs at the first [`resume`](Self::resume),
    /// with that input.
    pub(crate) fn new<F>(stack: DefaultStack, body: F) -> Self
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'a,
    {
        // SAFETY: `with_stack_unchecked` needs what `body` borrows to stay valid until the
        // coroutine has returned or been dropped. The borrows live for `'a`, and this
        // `Fiber<'a, ..>`, the coroutine's only owner, cannot outlive `'a`. Its `Drop` runs
        // the coroutine to its return (by cancelling it) or, if it never returns, leaks it
        // with its stack: a leaked coroutine is never resumed and its stack never reused, so
        // nothing reads the borrows after `'a` ends.
        let coroutine = unsafe { Coroutine::with_stack_unchecked(stack, body) };
        Fiber {
            coroutine: Some(coroutine),
            borrows: PhantomData,
        }
    }

    /// Runs the coroutine until it suspends or returns; `None` if it had already returned.
    /// A panic inside it propagates out of this call (the coroutine has then returned).
    pub(crate) fn resume(&mut self, input: I) -> Option<Resumed<Y, R>> {
        let coroutine = self.coroutine.as_mut().filter(|co| !co.done())?;
        Some(match coroutine.resume(input) {
            CoroutineResult::Yield(y) => Resumed::Yield(y),
            CoroutineResult::Return(r) => Resumed::Return(r),
        })
    }

    /// Whether the coroutine has run at all.
    pub(crate) fn is_started(&self) -> bool {
        self.coroutine.as_ref().is_some_and(Coroutine::started)
    }

    /// Whether the coroutine has returned (or panicked).
    pub(crate) fn is_done(&self) -> bool {
        self.coroutine.as_ref().is_none_or(Coroutine::done)
    }

    /// Resumes with the cancel input until the coroutine returns, and returns what it
    /// returned; `None` if it had returned already or ignores cancellation. A coroutine that
    /// never ran starts with the cancel input, so its body must check its first input.
    pub(crate) fn cancel(&mut self) -> Option<R> {
        for _ in 0..CANCEL_ATTEMPTS {
            match self.resume(I::cancel())? {
                Resumed::Yield(_) => continue,
                Resumed::Return(r) => return Some(r),
            }
        }
        None
    }

    /// The stack, for reuse, once the coroutine has returned; `None` (and the coroutine is
    /// cancelled, or leaked) otherwise.
    pub(crate) fn into_stack(mut self) -> Option<DefaultStack> {
        if !self.is_done() {
            self.cancel();
        }
        match self.coroutine.take() {
            Some(co) if co.done() => Some(co.into_stack()),
            Some(co) => {
                std::mem::forget(co);
                None
            }
            None => None,
        }
    }
}

impl<I: Cancel, Y, R> Drop for Fiber<'_, I, Y, R> {
    fn drop(&mut self) {
        if !self.is_done() {
            self.cancel();
        }
        if let Some(co) = self.coroutine.take() {
            if !co.done() {
                // It ignores cancellation: leak it rather than unwind its stack.
                std::mem::forget(co);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum In {
        Go,
        Stop,
    }

    impl Cancel for In {
        fn cancel() -> Self {
            In::Stop
        }
    }

    fn stack() -> DefaultStack {
        DefaultStack::new(64 * 1024).expect("stack")
    }

    #[test]
    fn a_panic_inside_the_coroutine_propagates_out_of_resume() {
        let mut fiber = Fiber::new(stack(), |yielder: &Yielder<In, ()>, _| {
            yielder.suspend(());
            panic!("boom inside the coroutine");
        });
        assert!(matches!(fiber.resume(In::Go), Some(Resumed::Yield(()))));
        let caught =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fiber.resume(In::Go)));
        let message = caught.expect_err("the panic reaches the resumer");
        assert_eq!(
            message.downcast_ref::<&str>(),
            Some(&"boom inside the coroutine")
        );
        assert!(fiber.is_done());
        assert!(fiber.into_stack().is_some(), "its stack can be reused");
    }

    #[test]
    fn cancel_resumes_until_the_coroutine_returns() {
        let mut seen = Vec::new();
        {
            let seen = &mut seen;
            let mut fiber = Fiber::new(stack(), move |yielder: &Yielder<In, ()>, mut input| loop {
                seen.push(input == In::Stop);
                match input {
                    In::Stop => return "cancelled",
                    In::Go => input = yielder.suspend(()),
                }
            });
            assert!(matches!(fiber.resume(In::Go), Some(Resumed::Yield(()))));
            assert_eq!(fiber.cancel(), Some("cancelled"));
            assert!(fiber.is_done());
            assert!(fiber.into_stack().is_some());
        }
        assert_eq!(
            seen,
            [false, true],
            "the body borrowed `seen` and saw the cancel"
        );
    }

    #[test]
    fn a_fiber_cancelled_before_it_ran_starts_with_the_cancel_input() {
        let mut first = None;
        {
            let first = &mut first;
            let mut fiber = Fiber::new(stack(), move |_: &Yielder<In, ()>, input| {
                *first = Some(input);
            });
            assert_eq!(fiber.cancel(), Some(()));
            assert!(fiber.is_done());
            assert!(fiber.into_stack().is_some());
        }
        assert_eq!(first, Some(In::Stop));
    }

    #[test]
    fn a_coroutine_that_ignores_cancellation_is_leaked_not_unwound() {
        let mut fiber = Fiber::new(stack(), |yielder: &Yielder<In, ()>, _| loop {
            yielder.suspend(());
        });
        assert!(matches!(fiber.resume(In::Go), Some(Resumed::Yield(()))));
        assert_eq!(fiber.cancel(), None);
        assert!(fiber.into_stack().is_none());
    }
}
