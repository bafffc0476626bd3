//! The wire log: every plaintext byte a transport sends or receives, logged once at trace
//! level under the `dugong::wire` target, with the connection's number and the direction.
//!
//! The transport reports each send with the bytes the connection took (not those offered)
//! and each receive with the bytes that arrived, below the send queue and above TLS: over
//! `https` the log shows plaintext, and a byte queued, retried or sent partially still shows
//! once. Secret header values are redacted on the way (see [`Redactor`]). With the target
//! disabled a report costs the `log` crate's level check: one atomic load, nothing formatted.

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use log::Level;

use crate::proto::{Redactor, REDACTED};

/// The log target of wire bytes.
pub(crate) const WIRE: &str = "dugong::wire";

/// The log target of everything else dugong logs.
pub(crate) const LIFECYCLE: &str = "dugong";

/// Most bytes shown per log line: a longer send or receive takes several lines. A line also
/// ends after each LF, so a message head shows one field per line.
const LINE_BYTES: usize = 64;

/// The next connection number: per process, from 1.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Which way bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Sent,
    Received,
}

impl Direction {
    fn arrows(self) -> &'static str {
        match self {
            Direction::Sent => ">>",
            Direction::Received => "<<",
        }
    }
}

/// A transport's part of the wire log: its number and where each direction's redactor is.
#[derive(Debug, Default)]
pub(crate) struct WireLog {
    /// The connection's number in log lines; 0 until one is assigned (a socket that never
    /// became a connection: a losing connect attempt, a name lookup's wake-up).
    id: u64,
    /// The redactors of the sent and the received bytes.
    redactors: Mutex<[Redactor; 2]>,
}

impl WireLog {
    /// Gives the connection the next number, and returns it.
    pub(crate) fn assign_id(&mut self) -> u64 {
        self.id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.id
    }

    /// The connection's number (0: none assigned).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Logs the bytes a send of `bufs` took (`result`).
    #[inline]
    pub(crate) fn sent(&self, bufs: &[IoSlice<'_>], result: &io::Result<usize>) {
        if let Ok(n @ 1..) = *result {
            if log::log_enabled!(target: WIRE, Level::Trace) {
                let mut taken = Vec::with_capacity(n);
                for buf in bufs {
                    let left = n - taken.len();
                    taken.extend_from_slice(&buf[..buf.len().min(left)]);
                }
                self.log(Direction::Sent, &taken);
            }
        }
    }

    /// Logs the bytes a receive into `buf` got (`result`), or the end of the stream.
    #[inline]
    pub(crate) fn received(&self, buf: &[u8], result: &io::Result<usize>) {
        if let Ok(n) = *result {
            if log::log_enabled!(target: WIRE, Level::Trace) {
                match buf.get(..n) {
                    Some([]) => log::trace!(target: WIRE, "#{} << end of stream", self.id),
                    Some(got) => self.log(Direction::Received, got),
                    None => {}
                }
            }
        }
    }

    /// The socket is being closed.
    pub(crate) fn closed(&self) {
        if self.id != 0 {
            log::debug!(target: LIFECYCLE, "#{} socket closed", self.id);
        }
    }

    fn redactors(&self) -> MutexGuard<'_, [Redactor; 2]> {
        // A redactor is a plain value: a panic elsewhere cannot leave it half-changed.
        self.redactors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn log(&self, direction: Direction, bytes: &[u8]) {
        let lines = {
            let mut redactors = self.redactors();
            escaped_lines(&mut redactors[direction as usize], bytes)
        };
        let (id, arrows, total) = (self.id, direction.arrows(), bytes.len());
        if let [line] = &lines[..] {
            log::trace!(target: WIRE, "#{id} {arrows} {total} bytes: \"{line}\"");
            return;
        }
        let count = lines.len();
        for (i, line) in lines.iter().enumerate() {
            let i = i + 1;
            log::trace!(target: WIRE, "#{id} {arrows} {total} bytes, {i}/{count}: \"{line}\"");
        }
    }
}

/// `bytes` in lines of at most [`LINE_BYTES`] that end after an LF, each escaped as Rust
/// escapes a byte string (`\r`, `\n`, `\"`, `\xNN`, ...), with each run of secret bytes
/// shown as [`REDACTED`].
fn escaped_lines(redactor: &mut Redactor, bytes: &[u8]) -> Vec<String> {
    let mut start = 0;
    let pieces = std::iter::from_fn(|| {
        let rest = &bytes[start..];
        let window = &rest[..rest.len().min(LINE_BYTES)];
        let len = window
            .iter()
            .position(|&b| b == b'\n')
            .map_or(window.len(), |lf| lf + 1);
        start += len;
        (len > 0).then_some(&window[..len])
    });
    pieces
        .map(|piece| {
            let mut line = String::with_capacity(piece.len() + 8);
            let mut in_secret = false;
            for &b in piece {
                let secret = redactor.is_secret_byte(b);
                if !secret {
                    line.extend(std::ascii::escape_default(b).map(char::from));
                } else if !in_secret {
                    line.push_str(REDACTED);
                }
                in_secret = secret;
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_escaped_and_split_into_lines() {
        let mut r = Redactor::default();
        let mut bytes = b"HTTP/1.1 200 OK\r\n\"q\"\x00\xff".to_vec();
        bytes.extend([b'a'; 60]);
        let lines = escaped_lines(&mut r, &bytes);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "HTTP/1.1 200 OK\\r\\n");
        assert_eq!(lines[1], format!("\\\"q\\\"\\x00\\xff{}", "a".repeat(59)));
        assert_eq!(lines[2], "a");
    }

    #[test]
    fn secret_values_show_as_redacted_in_every_line_they_touch() {
        let mut r = Redactor::default();
        let head = format!("Cookie: {}\r\nX: y\r\n", "s".repeat(100));
        let lines = escaped_lines(&mut r, head.as_bytes());
        assert_eq!(lines[0], "Cookie: <redacted>");
        assert_eq!(lines[1], "<redacted>\\r\\n");
        assert_eq!(lines[2], "X: y\\r\\n");
        assert!(lines.iter().all(|l| !l.contains('s')));
    }

    #[test]
    fn a_secret_split_across_two_sends_stays_hidden() {
        let log = WireLog::default();
        let mut r = log.redactors();
        let first = escaped_lines(&mut r[0], b"GET / HTTP/1.1\r\nAuthor");
        let second = escaped_lines(&mut r[0], b"ization: Bearer xyz\r\n\r\n");
        assert_eq!(first, ["GET / HTTP/1.1\\r\\n", "Author"]);
        assert_eq!(second, ["ization: <redacted>\\r\\n", "\\r\\n"]);
    }
}
