//! Writing: every byte out, trying the socket first and waiting only when it is full.

use std::io::{self, IoSlice};

use super::{is_peer_gone, Transport, Wait};
use crate::error::{ClosePhase, Error};

/// Writes every byte of `bufs`, trying the socket first and waiting through `wait` only when
/// it is full. This is the send loop of both the blocking path and the cofunction: they differ
/// only in the wait.
///
/// # Errors
///
/// `ConnectionClosed` when the peer is gone, `Io` for other socket errors, or whatever the
/// wait reports (a timeout, a full receive buffer, a cancellation).
pub(crate) fn write_all(
    transport: &Transport,
    mut bufs: &mut [IoSlice<'_>],
    wait: &mut dyn Wait,
) -> Result<(), Error> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match transport.send(bufs) {
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait.writable(transport)?,
            Err(e) => return Err(send_io_error(e)),
        }
    }
    Ok(())
}

/// Maps an I/O error from a send to the error the caller sees: a vanished peer is a closed
/// connection, not a raw I/O error.
pub(crate) fn send_io_error(e: io::Error) -> Error {
    if is_peer_gone(&e) {
        Error::ConnectionClosed {
            phase: ClosePhase::WhileSending,
            unanswered: Vec::new(),
        }
    } else {
        Error::Io(e)
    }
}
