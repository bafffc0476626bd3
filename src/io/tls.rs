//! TLS inside a transport: rustls turns plaintext into records and back. This module knows
//! when the session holds records to flush or decrypted plaintext to hand out, and what it
//! waits for; it knows nothing of HTTP.
//!
//! The session never keeps a caller waiting on bytes it holds: every receive flushes pending
//! records first, and the readiness a transport asks for includes writability while records
//! wait to go out.

use std::io::{self, IoSlice, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use super::transport::Ready;

/// Plaintext and records a session buffers before `send` reports the socket full.
const BUFFER_LIMIT: usize = 64 * 1024;

/// A client TLS session over a transport's socket.
pub(crate) struct TlsSession {
    /// A mutex only because the transport is shared by `Arc` between a connection and its
    /// coroutines; they never use it at the same time.
    conn: Mutex<ClientConnection>,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession").finish_non_exhaustive()
    }
}

/// An `io::Error` carrying a rustls error, for the connection to report as `Error::Tls`.
fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsSession {
    /// A session that will verify the server as `server_name` with `config`.
    pub(crate) fn new(
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
    ) -> io::Result<Self> {
        let mut conn = ClientConnection::new(config, server_name).map_err(tls_error)?;
        conn.set_buffer_limit(Some(BUFFER_LIMIT));
        Ok(TlsSession {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ClientConnection> {
        // A panic while holding the lock leaves nothing half-done that matters here: the
        // session is either usable or reports its own error.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes pending records to `wire`. `Ok(true)` when none are left.
    fn flush(conn: &mut ClientConnection, wire: &mut dyn Write) -> io::Result<bool> {
        while conn.wants_write() {
            match conn.write_tls(wire) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Encrypts as much of `bufs` as the session takes and sends what the socket takes.
    /// Returns the plaintext bytes taken; `WouldBlock` while earlier records still wait.
    pub(crate) fn send(&self, wire: &mut dyn Write, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut conn = self.lock();
        if !Self::flush(&mut conn, wire)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = conn.writer().write_vectored(bufs)?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Self::flush(&mut conn, wire)?;
        Ok(n)
    }

    /// Hands out decrypted plaintext, receiving and decrypting records as needed. `Ok(0)` is
    /// a clean end (the server sent `close_notify`); a close without it is
    /// `UnexpectedEof`, so a truncated stream is never taken as complete.
    pub(crate) fn recv(&self, wire: &mut (impl Read + Write), buf: &mut [u8]) -> io::Result<usize> {
        let mut conn = self.lock();
        // Records of ours that still wait (a key update, say) go first; a full socket only
        // delays them.
        Self::flush(&mut conn, wire)?;
        loop {
            match conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if Self::receive(&mut conn, wire)? == 0 {
                // End of stream: the reader now says whether it was clean.
                return match conn.reader().read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        Err(io::ErrorKind::UnexpectedEof.into())
                    }
                    other => other,
                };
            }
        }
    }

    /// Advances the handshake as far as it goes without waiting: `Ok(None)` once it is
    /// complete, otherwise the readiness it waits for.
    pub(crate) fn handshake(&self, wire: &mut (impl Read + Write)) -> io::Result<Option<Ready>> {
        let mut conn = self.lock();
        loop {
            if !Self::flush(&mut conn, wire)? {
                return Ok(Some(Ready {
                    readable: false,
                    writable: true,
                }));
            }
            if !conn.is_handshaking() {
                return Ok(None);
            }
            match Self::receive(&mut conn, wire) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection during the TLS handshake",
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Some(Ready {
                        readable: true,
                        writable: false,
                    }))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One receive of records and their processing: the bytes received (`Ok(0)` at end of
    /// stream). A record the session refuses is a TLS error, and the alert saying why is
    /// sent if the socket takes it.
    fn receive(conn: &mut ClientConnection, wire: &mut (impl Read + Write)) -> io::Result<usize> {
        let got = conn.read_tls(wire)?;
        if let Err(e) = conn.process_new_packets() {
            let _ = Self::flush(conn, wire);
            return Err(tls_error(e));
        }
        Ok(got)
    }

    /// For the log: the protocol version and the ALPN protocol agreed.
    pub(crate) fn summary(&self) -> String {
        let conn = self.lock();
        let version = conn
            .protocol_version()
            .map_or_else(|| "TLS".to_owned(), |v| format!("{v:?}"));
        match conn.alpn_protocol() {
            Some(alpn) => format!("{version}, ALPN {}", alpn.escape_ascii()),
            None => version,
        }
    }

    /// Whether records wait to be written: a wait must include writability then.
    pub(crate) fn wants_write(&self) -> bool {
        self.lock().wants_write()
    }

    /// Whether decrypted plaintext is waiting to be handed out (response data that is
    /// available though the socket may not be readable).
    pub(crate) fn has_plaintext(&self) -> bool {
        let mut conn = self.lock();
        conn.process_new_packets()
            .is_ok_and(|state| state.plaintext_bytes_to_read() > 0)
    }
}
