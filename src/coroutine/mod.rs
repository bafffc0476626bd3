//! Stackful coroutines: the one machinery behind cofunctions, `co_*` operations and green
//! tasks.
//!
//! Owns the corosensei coroutine wrapper ([`Fiber`]: resume, cancel without unwinding, stack
//! recycling), the stack pool, and the park that suspends a coroutine to its caller instead
//! of waiting ([`Suspending`]). Knows nothing about HTTP or the connection's state.

mod fiber;
mod stack;
mod suspend;

pub(crate) use fiber::{Cancel, Fiber, Resumed};
pub(crate) use stack::StackPool;
pub(crate) use suspend::{Blocked, Resume, Suspending};
