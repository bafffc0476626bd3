//! Stackful coroutines that send: the machinery behind cofunctions.
//!
//! Owns the corosensei coroutine that writes bytes on the socket, the wait that suspends it
//! when response data arrives ([`CoWait`]), the resume/suspend protocol, cancellation without
//! unwinding, and the stack pool. Knows nothing about HTTP or the connection's state: it is
//! handed a transport and byte buffers, and reports back through [`Step`].

mod sender;
mod stack;
mod wait;

pub(crate) use sender::{Resume, Sender, Step, Suspend};
pub(crate) use stack::StackPool;
