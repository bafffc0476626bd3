//! Sockets, buffers and waiting: everything between the protocol core and the OS.
//!
//! Owns the non-blocking socket, its registration and its TLS session ([`Transport`]), the receive buffer
//! ([`ReadBuffer`]) and the one wait seam ([`Park`], whose outcomes are typed as [`Wake`]).
//! Knows nothing about HTTP and builds no HTTP-level errors: everything here reports
//! `io::Error`s and readiness.

mod buffer;
mod dns;
mod id_map;
mod offload;
mod park;
mod queue;
mod reactor;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "tls")]
mod tls;
mod transport;
mod wire_log;

pub(crate) use buffer::{ReadBuffer, READ_AHEAD};
pub(crate) use dns::{ip_literal, Lookup};
pub use dns::{DnsError, Resolve, SystemResolver};
pub(crate) use id_map::IdMap;
pub(crate) use offload::Offload;
pub(crate) use park::sealed::Sealed as ParkImpl;
pub(crate) use park::Wake;
pub use park::{Blocking, Park};
pub(crate) use queue::flush_thread;
pub(crate) use reactor::Reactor;
#[cfg(feature = "tls")]
pub(crate) use tls::TlsSession;
pub(crate) use transport::{Ready, Transport, READABLE};
pub(crate) use wire_log::LIFECYCLE as LOG_TARGET;

use std::io;

/// The time deadlines are measured on: the real clock, or under the `sim` feature the
/// simulation's virtual clock while one runs on this thread.
#[cfg(not(feature = "sim"))]
#[inline]
pub(crate) fn now() -> std::time::Instant {
    std::time::Instant::now()
}

#[cfg(feature = "sim")]
pub(crate) use sim::now;

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
