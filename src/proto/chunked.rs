//! The chunked transfer coding (RFC 9112 §7.1), decoded strictly and incrementally.

use http::HeaderMap;

use super::head::parse_fields;
use super::ProtocolError;

/// Longest chunk-size line accepted, extensions included. Extensions are ignored, so a server
/// has no reason to send more.
const MAX_CHUNK_LINE: usize = 4096;

/// Where the decoder is inside the chunked stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// Reading `1*HEXDIG`; `digits` seen so far.
    Size { value: u64, digits: usize },
    /// Whitespace after the size, before `;` or the line end.
    SizeSpace { value: u64 },
    /// Inside chunk extensions, which are skipped up to LF.
    Extension { value: u64 },
    /// Saw CR ending the size line; LF must follow.
    SizeLf { value: u64 },
    /// Inside chunk data.
    Data { remaining: u64 },
    /// After chunk data: CR (or a bare LF) must follow.
    DataCr,
    /// After chunk data and CR: LF must follow.
    DataLf,
    /// Inside the trailer section; `line` bytes seen on the current line.
    Trailer { line: usize },
    /// The last chunk and trailer section are consumed.
    Done,
}

/// Incremental decoder for a chunked body.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: Chunked,
    /// Bytes of the current size line, bounded by `MAX_CHUNK_LINE`.
    line_len: usize,
    trailer: Vec<u8>,
    max_trailer_bytes: usize,
    max_fields: usize,
    trailers: Option<HeaderMap>,
}

impl ChunkedDecoder {
    pub(crate) fn new(max_trailer_bytes: usize, max_fields: usize) -> Self {
        ChunkedDecoder {
            state: Chunked::Size {
                value: 0,
                digits: 0,
            },
            line_len: 0,
            trailer: Vec::new(),
            max_trailer_bytes,
            max_fields,
            trailers: None,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == Chunked::Done
    }

    pub(crate) fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take()
    }

    /// Consumes framing from `input` until chunk data (at most `max` bytes of it) or the end.
    /// Returns `(consumed, data_start, data_len)`: data is `input[data_start..][..data_len]`.
    ///
    /// On error nothing is consumed and the decoder is as it was before the call, so the same
    /// bytes give the same error again.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        max: usize,
    ) -> Result<(usize, usize, usize), ProtocolError> {
        let saved = (self.state, self.line_len, self.trailer.len());
        let result = self.decode_inner(input, max);
        if result.is_err() {
            (self.state, self.line_len) = (saved.0, saved.1);
            self.trailer.truncate(saved.2);
        }
        result
    }

    fn decode_inner(
        &mut self,
        input: &[u8],
        max: usize,
    ) -> Result<(usize, usize, usize), ProtocolError> {
        let mut pos = 0;
        while pos < input.len() {
            if let Chunked::Data { remaining } = self.state {
                let n = remaining.min((input.len() - pos) as u64).min(max as u64) as usize;
                if n == 0 {
                    break;
                }
                let remaining = remaining - n as u64;
                self.state = if remaining == 0 {
                    Chunked::DataCr
                } else {
                    Chunked::Data { remaining }
                };
                return Ok((pos + n, pos, n));
            }
            if self.state == Chunked::Done {
                break;
            }
            self.step(input[pos])?;
            pos += 1;
        }
        Ok((pos, pos, 0))
    }

    /// Advances the framing state machine by one byte outside chunk data.
    fn step(&mut self, b: u8) -> Result<(), ProtocolError> {
        if matches!(
            self.state,
            Chunked::Size { .. }
                | Chunked::SizeSpace { .. }
                | Chunked::Extension { .. }
                | Chunked::SizeLf { .. }
        ) {
            self.line_len += 1;
            if self.line_len > MAX_CHUNK_LINE {
                return Err(ProtocolError::ChunkLineTooLong);
            }
        }
        self.state = match self.state {
            Chunked::Size { value, digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    let d = u64::from((b as char).to_digit(16).unwrap_or(0));
                    let value = value
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(d))
                        .ok_or(ProtocolError::InvalidChunkSize)?;
                    Chunked::Size {
                        value,
                        digits: digits + 1,
                    }
                }
                _ if digits == 0 => return Err(ProtocolError::InvalidChunkSize),
                b' ' | b'\t' => Chunked::SizeSpace { value },
                b';' => Chunked::Extension { value },
                b'\r' => Chunked::SizeLf { value },
                b'\n' => self.end_size_line(value),
                _ => return Err(ProtocolError::InvalidChunkSize),
            },
            Chunked::SizeSpace { value } => match b {
                b' ' | b'\t' => Chunked::SizeSpace { value },
                b';' => Chunked::Extension { value },
                b'\r' => Chunked::SizeLf { value },
                b'\n' => self.end_size_line(value),
                _ => return Err(ProtocolError::InvalidChunkSize),
            },
            Chunked::Extension { value } => match b {
                b'\n' => self.end_size_line(value),
                _ => Chunked::Extension { value },
            },
            Chunked::SizeLf { value } => match b {
                b'\n' => self.end_size_line(value),
                _ => return Err(ProtocolError::InvalidChunkSize),
            },
            Chunked::DataCr => match b {
                b'\r' => Chunked::DataLf,
                b'\n' => Chunked::Size {
                    value: 0,
                    digits: 0,
                },
                _ => return Err(ProtocolError::MissingChunkCrlf),
            },
            Chunked::DataLf => match b {
                b'\n' => Chunked::Size {
                    value: 0,
                    digits: 0,
                },
                _ => return Err(ProtocolError::MissingChunkCrlf),
            },
            Chunked::Trailer { line } => self.trailer_byte(b, line)?,
            Chunked::Data { .. } | Chunked::Done => self.state,
        };
        Ok(())
    }

    fn end_size_line(&mut self, value: u64) -> Chunked {
        self.line_len = 0;
        if value == 0 {
            Chunked::Trailer { line: 0 }
        } else {
            Chunked::Data { remaining: value }
        }
    }

    fn trailer_byte(&mut self, b: u8, line: usize) -> Result<Chunked, ProtocolError> {
        // RFC 9112 §7.1.2: the limit is on the field lines; the blank line that ends the
        // body is not one of them.
        let ends_body = line == 0 && (b == b'\r' || b == b'\n');
        if !ends_body && self.trailer.len() >= self.max_trailer_bytes {
            return Err(ProtocolError::TrailerTooLarge {
                limit: self.max_trailer_bytes,
            });
        }
        self.trailer.push(b);
        match b {
            b'\n' if line == 0 => {
                if self.trailer.len() > 2 {
                    self.trailers = Some(parse_fields(&self.trailer, self.max_fields)?);
                }
                self.trailer = Vec::new();
                Ok(Chunked::Done)
            }
            b'\n' => Ok(Chunked::Trailer { line: 0 }),
            // A CR does not count towards the line, so "\r\n" is an empty line.
            b'\r' => Ok(Chunked::Trailer { line }),
            _ => Ok(Chunked::Trailer { line: line + 1 }),
        }
    }
}
