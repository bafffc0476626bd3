//! Sockets, buffers and waiting: everything between the protocol core and the OS.
//!
//! Owns the non-blocking socket and how it is waited on ([`Transport`], the [`Park`]s), the receive
//! buffer ([`ReadBuffer`]) and the [`Wait`] seam that lets one driver block or suspend. Knows
//! nothing about HTTP.

mod buffer;
mod park;
mod transport;
mod wait;
mod write;

pub(crate) use buffer::ReadBuffer;
pub(crate) use park::sealed::Sealed as ParkImpl;
pub(crate) use park::{is_poll_needed, External};
pub use park::{Blocking, Park};
pub(crate) use transport::{Reactor, Ready, Transport};
pub(crate) use wait::{drain, BlockingWait, Deadline, Wait};
pub(crate) use write::{send_io_error, write_all};

use std::io;

/// Whether an I/O error means the peer is gone (reset, aborted, broken pipe, or a zero-length
/// write), which callers report as a closed connection rather than a raw I/O error.
pub(crate) fn is_peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::WriteZero
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected
    )
}
