//! Request body framing (RFC 9112 §6.2, §7.1, RFC 9110 §10.1.1): which body a connection
//! owes, how each piece of it is framed on the wire, and the `100 Continue` handshake.
//!
//! Sans-IO like the response side: the encoder never sees the body bytes, only their lengths,
//! and hands back the framing that goes around them, so a caller can send framing and data in
//! one gathering write without copying the data.

use super::{RequestFraming, StateError};

/// The last chunk and an empty trailer section (RFC 9112 §7.1).
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The send side of one connection: what the body of the newest request still owes.
///
/// [`start`](Self::start) declares a request's body when its head is encoded;
/// [`frame`](Self::frame) accounts for each piece of it and returns the bytes that frame it;
/// [`finish`](Self::finish) ends a chunked body. Misuse (bytes nobody declared, more than the
/// declared length, a body the server refused) is refused with a [`StateError`] and changes
/// nothing.
///
/// ```
/// use dugong::proto::{BodyEncoder, RequestFraming};
///
/// let mut encoder = BodyEncoder::default();
/// encoder.start(RequestFraming::Chunked, false)?;
/// let frame = encoder.frame(5)?;
/// let mut wire = frame.prefix().to_vec();
/// wire.extend_from_slice(b"hello");
/// wire.extend_from_slice(frame.suffix());
/// wire.extend_from_slice(encoder.finish()?);
/// assert_eq!(wire, b"5\r\nhello\r\n0\r\n\r\n");
/// assert!(!encoder.is_owed());
/// # Ok::<(), dugong::StateError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BodyEncoder {
    owed: Owed,
}

/// What the newest request's body still owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Owed {
    /// The request declared no body (or there was no request yet).
    #[default]
    Nothing,
    /// The declared body is complete: all of it was framed.
    Complete,
    /// The head declared an empty body (`Content-Length: 0`): complete at once, with
    /// nothing to frame.
    Empty,
    /// The head went out with `Expect: 100-continue`: the body (framed as given) waits for
    /// the server's answer.
    Continue(Declared),
    /// This many `Content-Length` bytes are still owed (never zero).
    Length(u64),
    /// A chunked body is open until its last chunk.
    Chunked,
    /// The server answered the expectation with a final response: no body may follow.
    Refused,
}

/// A body declared by a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Declared {
    Length(u64),
    Chunked,
}

impl Declared {
    fn owed(self) -> Owed {
        match self {
            Declared::Length(0) => Owed::Empty,
            Declared::Length(n) => Owed::Length(n),
            Declared::Chunked => Owed::Chunked,
        }
    }
}

/// The framing around one piece of a request body: a chunk-size line before it and CRLF
/// after it for a chunked body, nothing for a `Content-Length` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// `1*HEXDIG CRLF`, right-aligned.
    line: [u8; 18],
    /// INVARIANT: `start <= 18`; `line[start..]` is the prefix.
    start: usize,
    suffix: &'static [u8],
}

impl Frame {
    const NONE: Frame = Frame {
        line: [0; 18],
        start: 18,
        suffix: b"",
    };

    /// The chunk-size line for a chunk of `len > 0` bytes, in lowercase hex.
    fn chunk(len: usize) -> Frame {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut line = [0u8; 18];
        line[16] = b'\r';
        line[17] = b'\n';
        let mut start = 16;
        let mut n = len;
        loop {
            start -= 1;
            line[start] = HEX[n & 0xf];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        Frame {
            line,
            start,
            suffix: b"\r\n",
        }
    }

    /// Bytes that go before the piece.
    pub fn prefix(&self) -> &[u8] {
        &self.line[self.start..]
    }

    /// Bytes that go after the piece.
    pub fn suffix(&self) -> &'static [u8] {
        self.suffix
    }
}

impl BodyEncoder {
    /// Declares the body of a request whose head is about to go out, framed as `framing`.
    /// With `expect_continue` (and a non-empty body), the body then waits for
    /// [`continue_granted`](Self::continue_granted) or
    /// [`continue_refused`](Self::continue_refused).
    ///
    /// # Errors
    ///
    /// [`StateError::BodyIncomplete`] while the previous request's body is still owed (or
    /// still waits for `100 Continue`); nothing changes then.
    pub fn start(
        &mut self,
        framing: RequestFraming,
        expect_continue: bool,
    ) -> Result<(), StateError> {
        self.check_new_request()?;
        let declared = match framing {
            RequestFraming::None => {
                self.owed = Owed::Nothing;
                return Ok(());
            }
            RequestFraming::Length(n) => Declared::Length(n),
            RequestFraming::Chunked => Declared::Chunked,
        };
        self.owed = if expect_continue && declared != Declared::Length(0) {
            Owed::Continue(declared)
        } else {
            declared.owed()
        };
        Ok(())
    }

    /// Whether a new request may start now.
    ///
    /// # Errors
    ///
    /// [`StateError::BodyIncomplete`] while the previous body is owed.
    pub fn check_new_request(&self) -> Result<(), StateError> {
        match self.owed {
            Owed::Length(_) | Owed::Chunked | Owed::Continue(_) => Err(StateError::BodyIncomplete),
            Owed::Nothing | Owed::Complete | Owed::Empty | Owed::Refused => Ok(()),
        }
    }

    /// Whether body bytes are owed now (a `Content-Length` body with bytes left, or an open
    /// chunked body).
    pub fn is_owed(&self) -> bool {
        matches!(self.owed, Owed::Length(_) | Owed::Chunked)
    }

    /// Whether the body waits for the server's answer to `Expect: 100-continue`.
    pub fn awaits_continue(&self) -> bool {
        matches!(self.owed, Owed::Continue(_))
    }

    /// Whether the last request declared a body and all of it was framed (an empty declared
    /// body is complete at once).
    pub fn is_complete(&self) -> bool {
        matches!(self.owed, Owed::Complete | Owed::Empty)
    }

    /// Whether the last request declared an empty body (`Content-Length: 0`), which is
    /// complete without a byte written.
    pub fn is_declared_empty(&self) -> bool {
        self.owed == Owed::Empty
    }

    /// Whether the server refused the body of the last request.
    pub fn is_refused(&self) -> bool {
        self.owed == Owed::Refused
    }

    /// `Content-Length` bytes still owed, if the body has a length.
    pub fn remaining(&self) -> Option<u64> {
        match self.owed {
            Owed::Length(n) => Some(n),
            Owed::Continue(Declared::Length(n)) => Some(n),
            Owed::Complete | Owed::Empty => Some(0),
            _ => None,
        }
    }

    /// The server sent `100 Continue`, or waiting for it took too long (RFC 9110 §10.1.1
    /// lets the client send the body anyway): the body is owed from now on. A no-op when
    /// nothing waits.
    pub fn continue_granted(&mut self) {
        if let Owed::Continue(declared) = self.owed {
            self.owed = declared.owed();
        }
    }

    /// The server answered with a final response instead of `100 Continue`: the body must
    /// not be sent. A no-op when nothing waits.
    pub fn continue_refused(&mut self) {
        if let Owed::Continue(_) = self.owed {
            self.owed = Owed::Refused;
        }
    }

    /// Checks that a piece of `len` body bytes may be sent now, without accounting for it.
    ///
    /// # Errors
    ///
    /// As [`frame`](Self::frame).
    pub fn check(&self, len: usize) -> Result<(), StateError> {
        match self.owed {
            Owed::Length(owed) if len as u64 > owed => Err(StateError::BodyTooLong),
            Owed::Length(_) | Owed::Chunked => Ok(()),
            Owed::Continue(_) => Err(StateError::AwaitingContinue),
            Owed::Refused => Err(StateError::BodyRefused),
            Owed::Nothing | Owed::Complete | Owed::Empty => Err(StateError::NoBodyExpected),
        }
    }

    /// Accounts for a piece of `len` body bytes and returns its framing. An empty piece is
    /// a no-op with no framing (an empty chunk would end a chunked body).
    ///
    /// # Errors
    ///
    /// - [`StateError::NoBodyExpected`] when no body is owed.
    /// - [`StateError::BodyTooLong`] for more bytes than the `Content-Length` still owed.
    /// - [`StateError::AwaitingContinue`] while the body waits for `100 Continue`.
    /// - [`StateError::BodyRefused`] after the server refused the body.
    pub fn frame(&mut self, len: usize) -> Result<Frame, StateError> {
        self.check(len)?;
        if len == 0 {
            return Ok(Frame::NONE);
        }
        match self.owed {
            Owed::Length(owed) => {
                let left = owed - len as u64;
                self.owed = if left == 0 {
                    Owed::Complete
                } else {
                    Owed::Length(left)
                };
                Ok(Frame::NONE)
            }
            _ => Ok(Frame::chunk(len)),
        }
    }

    /// Ends a chunked body: returns the last chunk (no trailers) to send.
    ///
    /// # Errors
    ///
    /// - [`StateError::BodyTooShort`] for a `Content-Length` body that still owes bytes.
    /// - Otherwise as [`frame`](Self::frame).
    pub fn finish(&mut self) -> Result<&'static [u8], StateError> {
        match self.owed {
            Owed::Chunked => {
                self.owed = Owed::Complete;
                Ok(LAST_CHUNK)
            }
            Owed::Length(_) => Err(StateError::BodyTooShort),
            _ => self.check(0).map(|()| LAST_CHUNK),
        }
    }

    /// Forgets everything, for a new connection.
    pub fn reset(&mut self) {
        self.owed = Owed::Nothing;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::proto::{BodyDecoder, BodyKind};

    fn chunked() -> BodyEncoder {
        let mut e = BodyEncoder::default();
        e.start(RequestFraming::Chunked, false).expect("start");
        e
    }

    /// Frames `pieces` as one body and returns the wire bytes.
    fn encode(encoder: &mut BodyEncoder, pieces: &[&[u8]]) -> Vec<u8> {
        let mut wire = Vec::new();
        for piece in pieces {
            let frame = encoder.frame(piece.len()).expect("frame");
            wire.extend_from_slice(frame.prefix());
            wire.extend_from_slice(piece);
            wire.extend_from_slice(frame.suffix());
        }
        wire
    }

    #[test]
    fn chunk_size_lines_are_lowercase_hex() {
        assert_eq!(Frame::chunk(1).prefix(), b"1\r\n");
        assert_eq!(Frame::chunk(0x1f2e).prefix(), b"1f2e\r\n");
        assert_eq!(Frame::chunk(usize::MAX).prefix(), b"ffffffffffffffff\r\n");
        assert_eq!(Frame::chunk(3).suffix(), b"\r\n");
    }

    #[test]
    fn content_length_bodies_are_counted_and_never_exceeded() {
        let mut e = BodyEncoder::default();
        e.start(RequestFraming::Length(5), false).expect("start");
        assert!(e.is_owed());
        assert_eq!(e.check_new_request(), Err(StateError::BodyIncomplete));
        assert_eq!(e.frame(6), Err(StateError::BodyTooLong));
        assert_eq!(e.remaining(), Some(5), "a refused piece changes nothing");
        assert_eq!(e.frame(3).expect("3 of 5"), Frame::NONE);
        assert_eq!(e.finish(), Err(StateError::BodyTooShort));
        assert_eq!(e.frame(2).expect("the rest"), Frame::NONE);
        assert!(e.is_complete() && !e.is_owed());
        assert!(
            !e.is_declared_empty(),
            "written to its end, not declared empty"
        );
        assert_eq!(e.frame(1), Err(StateError::NoBodyExpected));
        assert_eq!(e.finish(), Err(StateError::NoBodyExpected));
        assert_eq!(e.check_new_request(), Ok(()));
    }

    #[test]
    fn empty_declared_bodies_are_complete_at_once() {
        let mut e = BodyEncoder::default();
        e.start(RequestFraming::Length(0), true).expect("start");
        assert!(e.is_complete(), "no 100-continue wait for an empty body");
        assert!(e.is_declared_empty());
        e.start(RequestFraming::None, false).expect("next request");
        assert!(!e.is_complete() && !e.is_owed() && !e.is_declared_empty());
        assert_eq!(e.frame(1), Err(StateError::NoBodyExpected));
    }

    #[test]
    fn an_empty_piece_of_a_chunked_body_is_not_the_last_chunk() {
        let mut e = chunked();
        assert_eq!(e.frame(0).expect("empty"), Frame::NONE);
        assert!(e.is_owed());
        let mut wire = encode(&mut e, &[b"ab", b"", b"c"]);
        wire.extend_from_slice(e.finish().expect("finish"));
        assert_eq!(wire, b"2\r\nab\r\n1\r\nc\r\n0\r\n\r\n");
        assert!(e.is_complete());
        assert_eq!(e.finish(), Err(StateError::NoBodyExpected));
    }

    #[test]
    fn continue_holds_the_body_until_granted_or_refused() {
        for framing in [RequestFraming::Length(4), RequestFraming::Chunked] {
            let mut e = BodyEncoder::default();
            e.start(framing, true).expect("start");
            assert!(e.awaits_continue() && !e.is_owed());
            assert_eq!(e.frame(1), Err(StateError::AwaitingContinue));
            assert_eq!(e.finish(), Err(StateError::AwaitingContinue));
            assert_eq!(e.check_new_request(), Err(StateError::BodyIncomplete));
            let mut granted = e;
            granted.continue_granted();
            assert!(granted.is_owed());
            e.continue_refused();
            assert!(e.is_refused());
            assert_eq!(e.frame(1), Err(StateError::BodyRefused));
            assert_eq!(e.check_new_request(), Ok(()), "a refused body is not owed");
        }
    }

    #[test]
    fn reset_forgets_the_owed_body() {
        let mut e = chunked();
        e.reset();
        assert_eq!(e, BodyEncoder::default());
    }

    /// Decodes a chunked body with the crate's own decoder, fed one byte at a time: every
    /// prefix is incomplete, and the whole is complete.
    fn decode_bytewise(wire: &[u8]) -> (Vec<u8>, bool) {
        let mut decoder = BodyDecoder::new(BodyKind::Chunked, 1024, 16).expect("body");
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for (i, &b) in wire.iter().enumerate() {
            buf.push(b);
            loop {
                let step = decoder.decode(&buf, usize::MAX).expect("valid framing");
                out.extend_from_slice(&buf[step.data.clone()]);
                buf.drain(..step.consumed);
                if step.complete {
                    assert_eq!(i + 1, wire.len(), "complete only at the last byte");
                    return (out, true);
                }
                if step.consumed == 0 {
                    break;
                }
            }
        }
        (out, false)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any split of a body into pieces encodes to a chunked stream that decodes to the
        /// body, completing exactly at its last byte.
        #[test]
        fn chunked_pieces_round_trip(
            body in proptest::collection::vec(any::<u8>(), 0..400),
            cuts in proptest::collection::vec(0usize..400, 0..12),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([body.len()]) {
                pieces.push(&body[at..cut]);
                at = cut;
            }
            let mut e = chunked();
            let mut wire = encode(&mut e, &pieces);
            wire.extend_from_slice(e.finish().expect("finish"));
            let (decoded, complete) = decode_bytewise(&wire);
            prop_assert!(complete);
            prop_assert_eq!(decoded, body);
        }

        /// A `Content-Length` body accepts exactly its length, in any pieces.
        #[test]
        fn length_pieces_add_up(len in 0u64..10_000, pieces in proptest::collection::vec(0usize..3000, 0..10)) {
            let mut e = BodyEncoder::default();
            e.start(RequestFraming::Length(len), false).expect("start");
            let mut sent = 0u64;
            for piece in pieces {
                match e.frame(piece) {
                    Ok(_) => sent += piece as u64,
                    Err(StateError::BodyTooLong) => prop_assert!(sent + piece as u64 > len),
                    Err(StateError::NoBodyExpected) => prop_assert_eq!(sent, len),
                    Err(other) => prop_assert!(false, "unexpected {other:?}"),
                }
            }
            prop_assert!(sent <= len);
            prop_assert_eq!(e.remaining(), Some(len - sent));
        }
    }
}
