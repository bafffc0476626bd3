//! One response after another from a byte stream: head, framing, body, in that order.

use http::{HeaderMap, Method, StatusCode};

use super::head::{HeadEvent, HeadReader};
use super::{BodyDecoder, Decoded, Framing, Limits, ProtocolError, ResponseHead};

/// What [`ResponseReader::read_head`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadStep {
    /// More bytes are needed; nothing was consumed.
    Partial,
    /// An interim (1xx) response of `len` bytes: drop them.
    Interim {
        /// Its status.
        status: StatusCode,
        /// Bytes to drop.
        len: usize,
    },
    /// A final head of `len` bytes: drop them. Its body (if any) is now active.
    Final {
        /// The head.
        head: ResponseHead,
        /// Its framing.
        framing: Framing,
        /// Bytes to drop.
        len: usize,
    },
}

/// Reads responses from a byte stream in order: a head, then its body, then the next head.
///
/// The reader holds no bytes: the caller owns the buffer, passes its unread front and drops
/// what each step consumed. State changes only when a whole item (head, chunk-size line,
/// data) has been taken, so any call can be repeated after more bytes arrive.
#[derive(Debug, Default)]
pub struct ResponseReader {
    limits: Limits,
    head: HeadReader,
    body: Option<BodyDecoder>,
    trailers: Option<HeaderMap>,
}

impl ResponseReader {
    /// A reader with these limits.
    pub fn new(limits: Limits) -> Self {
        ResponseReader {
            limits,
            ..ResponseReader::default()
        }
    }

    /// Whether a response body is being read.
    pub fn has_body(&self) -> bool {
        self.body.is_some()
    }

    /// The active body's decoder.
    pub fn body(&self) -> Option<&BodyDecoder> {
        self.body.as_ref()
    }

    /// Reads the next head for a request made with `method`.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] from the head or its framing.
    ///
    /// # Panics
    ///
    /// If a body is still active (a caller bug).
    pub fn read_head(&mut self, buf: &[u8], method: &Method) -> Result<HeadStep, ProtocolError> {
        assert!(self.body.is_none(), "read_head while a body is active");
        let step = self.poll_interim(buf, method)?;
        if let HeadStep::Final { framing, .. } = &step {
            self.body = BodyDecoder::new(
                framing.body,
                self.limits.max_trailer_bytes,
                self.limits.max_headers,
            );
        }
        Ok(step)
    }

    /// Looks for an interim response at the front of `buf`, as awaited after sending
    /// `Expect: 100-continue`. A final head is reported but not taken: its body does not
    /// become active, so [`read_head`](Self::read_head) takes it later from the same bytes.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] from the head or its framing.
    pub fn poll_interim(&mut self, buf: &[u8], method: &Method) -> Result<HeadStep, ProtocolError> {
        Ok(match self.head.poll(buf, &self.limits)? {
            HeadEvent::Partial => HeadStep::Partial,
            HeadEvent::Interim { status, len } => HeadStep::Interim { status, len },
            HeadEvent::Final { head, len } => {
                let framing = Framing::of(method, &head)?;
                HeadStep::Final { head, framing, len }
            }
        })
    }

    /// Reads up to `max` body bytes (see [`BodyDecoder::decode`]). With no active body it
    /// returns an empty, complete step. When the body completes it stops being active.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] for invalid chunk framing or trailers.
    pub fn read_body(&mut self, buf: &[u8], max: usize) -> Result<Decoded, ProtocolError> {
        let Some(body) = self.body.as_mut() else {
            return Ok(Decoded {
                consumed: 0,
                data: 0..0,
                complete: true,
            });
        };
        let step = body.decode(buf, max)?;
        if step.complete {
            if let Some(trailers) = body.take_trailers() {
                self.trailers = Some(trailers);
            }
            self.body = None;
        }
        Ok(step)
    }

    /// The server closed the connection. Returns whether that cleanly ended the active body
    /// (a close-delimited one), which then stops being active; `false` means the body was
    /// truncated (or no body was active).
    pub fn end_at_close(&mut self) -> bool {
        let clean = self.body.as_ref().is_some_and(BodyDecoder::ends_at_close);
        if clean {
            self.body = None;
        }
        clean
    }

    /// The trailer fields of the last completed chunked body that had any (bodies without
    /// trailers completed since do not clear them); taking them clears them.
    pub fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take()
    }

    /// Forgets all progress, for a new connection. Trailers not yet taken are kept: they
    /// belong to a response the caller has already read (one that closed the connection,
    /// say).
    pub fn reset(&mut self) {
        let trailers = self.trailers.take();
        *self = ResponseReader::new(self.limits);
        self.trailers = trailers;
    }
}
