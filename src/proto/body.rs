//! Response body decoding: one type for every length rule of [`BodyKind`].

use std::ops::Range;

use http::HeaderMap;

use super::chunked::ChunkedDecoder;
use super::{BodyKind, ProtocolError};

/// The result of one [`BodyDecoder::decode`] step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes of the input consumed (framing and data); drop them from the buffer.
    pub consumed: usize,
    /// Body bytes: a range of the input, inside `0..consumed`.
    pub data: Range<usize>,
    /// The body ended with this step.
    pub complete: bool,
}

/// Decodes one response body from bytes fed in any split.
#[derive(Debug)]
pub struct BodyDecoder {
    kind: Decoder,
}

#[derive(Debug)]
enum Decoder {
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
    UntilClose,
}

impl BodyDecoder {
    /// A decoder for `kind`, or `None` when the body is empty and already complete.
    ///
    /// `max_trailer_bytes` and `max_fields` bound a chunked body's trailer section.
    pub fn new(kind: BodyKind, max_trailer_bytes: usize, max_fields: usize) -> Option<Self> {
        let kind = match kind {
            BodyKind::None | BodyKind::Length(0) => return None,
            BodyKind::Length(n) => Decoder::Length { remaining: n },
            BodyKind::Chunked => {
                Decoder::Chunked(ChunkedDecoder::new(max_trailer_bytes, max_fields))
            }
            BodyKind::UntilClose => Decoder::UntilClose,
        };
        Some(BodyDecoder { kind })
    }

    /// Takes framing and up to `max` body bytes from the front of `input`.
    ///
    /// Returns with empty `data` when `input` holds only framing (or nothing usable); with
    /// `max == 0` it consumes framing only, which lets a caller finish a body whose last bytes
    /// are already buffered.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] for invalid chunk framing or trailers; the stream cannot be resynchronised.
    pub fn decode(&mut self, input: &[u8], max: usize) -> Result<Decoded, ProtocolError> {
        match &mut self.kind {
            Decoder::Length { remaining } => {
                let n = (*remaining).min(input.len() as u64).min(max as u64) as usize;
                *remaining -= n as u64;
                Ok(Decoded {
                    consumed: n,
                    data: 0..n,
                    complete: *remaining == 0,
                })
            }
            Decoder::UntilClose => {
                let n = input.len().min(max);
                Ok(Decoded {
                    consumed: n,
                    data: 0..n,
                    complete: false,
                })
            }
            Decoder::Chunked(chunked) => {
                let (consumed, start, len) = chunked.decode(input, max)?;
                Ok(Decoded {
                    consumed,
                    data: start..start + len,
                    complete: chunked.is_done(),
                })
            }
        }
    }

    /// Whether the server closing the connection now ends the body cleanly (true only for a
    /// close-delimited body); otherwise the body was truncated.
    pub fn ends_at_close(&self) -> bool {
        matches!(self.kind, Decoder::UntilClose)
    }

    /// For bodies without framing bytes, how many more body bytes may be read straight from the
    /// socket into a caller's buffer; `None` for chunked bodies.
    pub fn raw_remaining(&self) -> Option<u64> {
        match self.kind {
            Decoder::Length { remaining } => Some(remaining),
            Decoder::UntilClose => Some(u64::MAX),
            Decoder::Chunked(_) => None,
        }
    }

    /// The trailer fields of a completed chunked body, if it had any.
    pub fn take_trailers(&mut self) -> Option<HeaderMap> {
        match &mut self.kind {
            Decoder::Chunked(chunked) => chunked.take_trailers(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(kind: BodyKind, input: &[u8]) -> Result<(Vec<u8>, usize, bool), ProtocolError> {
        let mut d = BodyDecoder::new(kind, 1024, 16).expect("has body");
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let step = d.decode(&input[pos..], usize::MAX)?;
            out.extend_from_slice(&input[pos..][step.data.clone()]);
            pos += step.consumed;
            if step.complete || step.consumed == 0 {
                return Ok((out, pos, step.complete));
            }
        }
    }

    #[test]
    fn length_completes_on_its_last_byte() {
        let (body, used, done) = decode_all(BodyKind::Length(3), b"abcdef").expect("ok");
        assert_eq!((body.as_slice(), used, done), (&b"abc"[..], 3, true));
    }

    #[test]
    fn chunked_decodes_with_extensions_and_trailers() {
        let wire = b"3;x=y\r\nabc\r\nA \r\n0123456789\r\n0\r\nT: 1\r\n\r\nNEXT";
        let mut d = BodyDecoder::new(BodyKind::Chunked, 1024, 16).expect("body");
        let mut out = Vec::new();
        let mut pos = 0;
        while !d.decode(&[], 0).expect("ok").complete {
            let step = d.decode(&wire[pos..], 4).expect("ok");
            out.extend_from_slice(&wire[pos..][step.data]);
            pos += step.consumed;
            if step.complete {
                break;
            }
        }
        assert_eq!(out, b"abc0123456789");
        assert_eq!(&wire[pos..], b"NEXT");
        assert_eq!(d.take_trailers().expect("trailers")["t"], "1");
    }

    #[test]
    fn chunked_accepts_bare_lf() {
        let (body, _, done) = decode_all(BodyKind::Chunked, b"2\nab\n0\n\n").expect("ok");
        assert_eq!((body.as_slice(), done), (&b"ab"[..], true));
    }

    #[test]
    fn chunked_rejects_bad_sizes_and_missing_crlf() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"-2\r\nxy\r\n", ProtocolError::InvalidChunkSize),
            (b"+2\r\nxy\r\n", ProtocolError::InvalidChunkSize),
            (b"0x2\r\nxy\r\n", ProtocolError::InvalidChunkSize),
            (b"1_0\r\n", ProtocolError::InvalidChunkSize),
            (b" 2\r\nxy\r\n", ProtocolError::InvalidChunkSize),
            (b"\r\n", ProtocolError::InvalidChunkSize),
            (b"2 x\r\n", ProtocolError::InvalidChunkSize),
            (b"2\rxy", ProtocolError::InvalidChunkSize),
            (b"fffffffffffffffff\r\n", ProtocolError::InvalidChunkSize),
            (b"3\r\nabcX\r\n0\r\n\r\n", ProtocolError::MissingChunkCrlf),
            (b"3\r\nabc\rX", ProtocolError::MissingChunkCrlf),
        ];
        for (wire, want) in cases {
            let got = decode_all(BodyKind::Chunked, wire);
            assert_eq!(
                got.map(|r| r.0),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        // The largest size that fits is fine (the data simply has not arrived).
        let (_, used, done) = decode_all(BodyKind::Chunked, b"ffffffffffffffff\r\n").expect("ok");
        assert_eq!((used, done), (18, false));
    }

    #[test]
    fn chunked_limits() {
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'x', 5000));
        assert_eq!(
            decode_all(BodyKind::Chunked, &long).map(|r| r.0),
            Err(ProtocolError::ChunkLineTooLong)
        );
        let mut d = BodyDecoder::new(BodyKind::Chunked, 8, 16).expect("body");
        assert_eq!(
            d.decode(b"0\r\nLong: trailer\r\n\r\n", 10),
            Err(ProtocolError::TrailerTooLarge { limit: 8 })
        );
        let bad = decode_all(BodyKind::Chunked, b"0\r\nno colon\r\n\r\n");
        assert_eq!(bad.map(|r| r.0), Err(ProtocolError::MalformedTrailer));
    }

    #[test]
    fn close_delimited_never_completes_by_itself() {
        let (body, _, done) = decode_all(BodyKind::UntilClose, b"all of it").expect("ok");
        assert_eq!((body.as_slice(), done), (&b"all of it"[..], false));
        assert!(BodyDecoder::new(BodyKind::UntilClose, 1, 1)
            .expect("body")
            .ends_at_close());
        assert!(BodyDecoder::new(BodyKind::Length(0), 1, 1).is_none());
    }
}
