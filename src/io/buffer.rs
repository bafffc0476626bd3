//! The receive buffer: bytes read from the socket and not yet consumed by the protocol core.

use std::io;

use super::Transport;

/// Initial capacity: small, so thousands of idle connections cost little memory.
const INITIAL: usize = 4 * 1024;

/// Capacity the buffer grows to on its own when reads keep filling it (pipelined small
/// responses arrive in batches); beyond this it grows only to hold one large head or what a
/// blocking send must buffer. Also the limit a body read fills up to.
pub(crate) const READ_AHEAD: usize = 64 * 1024;

/// A byte buffer with a consumed front and a filled back.
#[derive(Debug, Default)]
pub(crate) struct ReadBuffer {
    buf: Vec<u8>,
    /// INVARIANT: `start <= end <= buf.len()`; `buf[start..end]` is unread data.
    start: usize,
    end: usize,
    eof: bool,
    /// Whether the end of stream was a reset.
    reset: bool,
    /// Bytes consumed since the buffer was made; only ever grows, so a change shows that a
    /// reader took something.
    consumed: u64,
    /// The last receive found the socket empty (see [`drained`](Self::drained)).
    drained: bool,
}

impl ReadBuffer {
    /// The unread bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether the peer has closed its sending side (every byte before that is in `data`).
    pub(crate) fn is_eof(&self) -> bool {
        self.eof
    }

    /// Drops `n` bytes from the front.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.consumed += n as u64;
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Bytes of memory the buffer holds.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Counts bytes that a reader took straight from the socket, bypassing the buffer, so
    /// that [`consumed`](Self::consumed) still shows the reader made progress.
    pub(crate) fn count_bypass(&mut self, n: usize) {
        self.consumed += n as u64;
        self.drained = false;
    }

    /// Whether the last receive into this buffer found the socket empty: it returned less
    /// than it was offered, or would have blocked. Bytes that arrived before it are all in the
    /// buffer then; only a close right behind them (which TCP reports to the next receive)
    /// may be unseen. A read that bypassed the buffer, or took all it was offered, says
    /// nothing, so this is `false` after it.
    pub(crate) fn drained(&self) -> bool {
        self.drained
    }

    /// Total bytes ever consumed from this buffer (or taken past it).
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Forgets everything, for a new connection.
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        self.eof = false;
        self.reset = false;
        self.drained = false;
    }

    /// One receive into the free space, growing the buffer while it holds fewer than `limit`
    /// bytes. Returns the bytes added; `Ok(0)` means end of stream. A buffer that already
    /// holds `limit` bytes is an error (callers bound what they buffer before asking).
    /// `WouldBlock` passes through.
    pub(crate) fn fill_from(&mut self, transport: &Transport, limit: usize) -> io::Result<usize> {
        self.fill_with(limit, |buf| transport.recv(buf))
    }

    /// [`fill_from`](Self::fill_from) with a receive that waits up to `timeout` for bytes
    /// ([`Transport::recv_blocking`]); `WouldBlock` when the time passed.
    pub(crate) fn fill_blocking(
        &mut self,
        transport: &Transport,
        limit: usize,
        timeout: Option<std::time::Duration>,
    ) -> io::Result<usize> {
        self.fill_with(limit, |buf| transport.recv_blocking(buf, timeout))
    }

    fn fill_with(
        &mut self,
        limit: usize,
        recv: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        if self.end == self.buf.len() {
            self.make_room(limit);
        }
        let room = (self.buf.len() - self.end).min(limit.saturating_sub(self.len()));
        if room == 0 {
            // Never `Ok(0)`: that means end of stream.
            return Err(io::Error::other("receive buffer is at its limit"));
        }
        let got = recv(&mut self.buf[self.end..self.end + room]);
        self.drained = match &got {
            Ok(n) => *n < room,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        };
        let n = got?;
        if n == 0 {
            self.eof = true;
        }
        self.end += n;
        if n == room && self.buf.len() < READ_AHEAD.min(limit) {
            // The socket had at least as much as fitted: read more at once next time.
            let grown = (self.buf.len() * 2).min(READ_AHEAD);
            self.buf.resize(grown, 0);
        }
        Ok(n)
    }

    fn make_room(&mut self, limit: usize) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2).max(INITIAL).min(limit.max(INITIAL));
            self.buf.resize(grown, 0);
        }
    }

    /// Appends bytes that were received before the buffer was (a proxy's tunnel delivered
    /// them together with its answer to `CONNECT`).
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.make_room(self.len() + bytes.len());
        if self.buf.len() - self.end < bytes.len() {
            self.buf.resize(self.end + bytes.len(), 0);
        }
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Records a clean end of stream seen by a read that bypassed the buffer.
    pub(crate) fn set_closed(&mut self) {
        self.eof = true;
    }

    /// Records that the peer reset the connection: the stream ends here, but not cleanly,
    /// so nothing can be taken as complete because of it.
    pub(crate) fn set_reset(&mut self) {
        self.eof = true;
        self.reset = true;
    }

    /// Whether the stream ended with a reset rather than a clean close.
    pub(crate) fn was_reset(&self) -> bool {
        self.reset
    }
}
