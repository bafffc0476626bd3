//! Sockets, buffers and waiting: everything between the protocol core and the OS.
//!
//! Owns the non-blocking socket, its registration and its TLS session ([`Transport`]), the receive buffer
//! ([`ReadBuffer`]) and the one wait seam ([`Park`], whose outcomes are typed as [`Wake`]).
//! Knows nothing about HTTP and builds no HTTP-level errors: everything here reports
//! `io::Error`s and readiness.

mod buffer;
mod park;
mod queue;
#[cfg(feature = "tls")]
mod tls;
mod transport;

pub(crate) use buffer::ReadBuffer;
pub(crate) use park::sealed::Sealed as ParkImpl;
pub(crate) use park::Wake;
pub use park::{Blocking, Park};
pub(crate) use queue::flush_thread;
#[cfg(feature = "tls")]
pub(crate) use tls::TlsSession;
pub(crate) use transport::{Reactor, Ready, Transport};

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
