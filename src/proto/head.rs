//! Response heads: an incremental end-of-head scan, then one httparse pass (RFC 9112 §2, §4).

use std::mem::MaybeUninit;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Version};

use super::{Limits, ProtocolError};

/// A parsed final response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// The status code.
    pub status: StatusCode,
    /// The reason phrase (empty if absent or not UTF-8).
    pub reason: String,
    /// The header fields, in order.
    pub headers: HeaderMap,
}

/// What [`HeadReader::poll`] found at the front of the buffer: not complete yet, an interim
/// (1xx) response, or the final head, with the bytes each occupied.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadEvent {
    Partial,
    Interim { status: StatusCode, len: usize },
    Final { head: ResponseHead, len: usize },
}

/// Finds and parses one response head at the front of a buffer, remembering how far it has
/// already scanned so a head that arrives in many small reads is not rescanned from byte 0.
///
/// A head that is already whole when first polled (the usual case) is parsed in one
/// httparse pass, without the scan; only a head that arrives in pieces is scanned for its
/// end, and parsed once complete.
#[derive(Debug, Default)]
pub(crate) struct HeadReader {
    /// INVARIANT: no head terminator starts before this offset of the current buffer front.
    scanned: usize,
    /// The current head was polled before (and was not whole then): it is scanned for, so
    /// a head trickling in is not parsed again from byte 0 with every piece.
    partial: bool,
    interim_seen: usize,
}

/// Heads with at most this many fields are parsed with field slots on the stack; one with
/// more (as many as the limit allows) is parsed again with slots on the heap.
const STACK_FIELDS: usize = 32;

impl HeadReader {
    /// Looks for a complete head at the start of `buf`.
    ///
    /// The caller must drop `len` bytes from the front of its buffer after `Interim` or `Final`,
    /// and must not drop any bytes after `Partial`.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] when the head is malformed, too large, has too many fields, is a
    /// `101`, or is one interim response too many.
    pub(crate) fn poll(&mut self, buf: &[u8], limits: &Limits) -> Result<HeadEvent, ProtocolError> {
        if !self.partial && !buf.is_empty() {
            self.partial = true;
            // Anything but a whole head takes the scan, errors included: a head is judged
            // only once its blank line is in, so the outcome never depends on how the bytes
            // were split (an invalid byte in a head that never ends is no error, either way).
            if let Ok(Parsed::Head(head, len)) = parse_head(buf, limits) {
                return self.complete(head, len, limits);
            }
        }
        loop {
            let end = match find_head_end(buf, self.scanned) {
                Ok(end) => end,
                Err(resume) => {
                    self.scanned = resume;
                    if buf.len() > limits.max_head_bytes {
                        return Err(ProtocolError::HeadTooLarge {
                            limit: limits.max_head_bytes,
                        });
                    }
                    return Ok(HeadEvent::Partial);
                }
            };
            if end > limits.max_head_bytes {
                return Err(ProtocolError::HeadTooLarge {
                    limit: limits.max_head_bytes,
                });
            }
            match parse_head_at_most(&buf[..end], limits)? {
                // Only empty lines so far (tolerated before a status line): keep scanning.
                None => self.scanned = end,
                Some(head) => return self.complete(head, end, limits),
            }
        }
    }

    /// The head of `len` bytes is complete: the next poll starts a new head.
    fn complete(
        &mut self,
        head: ResponseHead,
        len: usize,
        limits: &Limits,
    ) -> Result<HeadEvent, ProtocolError> {
        if len > limits.max_head_bytes {
            return Err(ProtocolError::HeadTooLarge {
                limit: limits.max_head_bytes,
            });
        }
        self.scanned = 0;
        self.partial = false;
        self.classify(head, len, limits)
    }

    fn classify(
        &mut self,
        head: ResponseHead,
        len: usize,
        limits: &Limits,
    ) -> Result<HeadEvent, ProtocolError> {
        if head.status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(ProtocolError::SwitchingProtocols);
        }
        if head.status.is_informational() {
            self.interim_seen += 1;
            if self.interim_seen > limits.max_interim {
                return Err(ProtocolError::TooManyInterimResponses {
                    limit: limits.max_interim,
                });
            }
            return Ok(HeadEvent::Interim {
                status: head.status,
                len,
            });
        }
        self.interim_seen = 0;
        Ok(HeadEvent::Final { head, len })
    }
}

/// Returns the end offset of the first blank line at or after `from` (CRLF or bare LF, RFC 9112
/// §2.2), or the offset to resume scanning from once more bytes arrive.
fn find_head_end(buf: &[u8], from: usize) -> Result<usize, usize> {
    let mut i = from;
    while let Some(off) = buf[i..].iter().position(|&b| b == b'\n') {
        let lf = i + off;
        match (buf.get(lf + 1), buf.get(lf + 2)) {
            (Some(b'\n'), _) => return Ok(lf + 2),
            (Some(b'\r'), Some(b'\n')) => return Ok(lf + 3),
            (None, _) | (Some(b'\r'), None) => return Err(lf),
            _ => i = lf + 1,
        }
    }
    Err(buf.len())
}

/// What one httparse pass over the front of a buffer found.
enum Parsed {
    /// A whole head, and the bytes it took (leading empty lines included).
    Head(ResponseHead, usize),
    /// No whole head yet.
    Incomplete,
    /// A version httparse does not know (`HTTP/1.2`, or a bad one).
    UnknownVersion,
}

/// Parses the head at the front of `bytes` (which may go on past it). The header values
/// share one copy of the head, rather than one allocation each.
fn parse_head(bytes: &[u8], limits: &Limits) -> Result<Parsed, ProtocolError> {
    // Slots left uninitialised: httparse writes the ones it fills.
    let mut stack = [const { MaybeUninit::uninit() }; STACK_FIELDS];
    let slots = limits.max_headers.min(STACK_FIELDS);
    match parse_head_in(bytes, limits, &mut stack[..slots]) {
        Err(ProtocolError::TooManyHeaders { .. }) if limits.max_headers > STACK_FIELDS => {
            let mut heap = Vec::new();
            heap.resize_with(limits.max_headers, MaybeUninit::uninit);
            parse_head_in(bytes, limits, &mut heap)
        }
        parsed => parsed,
    }
}

/// [`parse_head`] with `slots` for the fields: too few is [`ProtocolError::TooManyHeaders`].
fn parse_head_in<'b>(
    bytes: &'b [u8],
    limits: &Limits,
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Parsed, ProtocolError> {
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, bytes, slots);
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Incomplete),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ProtocolError::TooManyHeaders {
                limit: limits.max_headers,
            })
        }
        Err(httparse::Error::Version) => return Ok(Parsed::UnknownVersion),
        Err(e) => return Err(ProtocolError::MalformedHead(describe(e))),
    };
    let version = match resp.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let code = resp
        .code
        .ok_or(ProtocolError::MalformedHead("missing status"))?;
    let status =
        StatusCode::from_u16(code).map_err(|_| ProtocolError::MalformedHead("invalid status"))?;
    let shared = shared_copy(&bytes[..len]);
    // Where `part` (a slice of `bytes[..len]`) sits in `shared`.
    let share = |part: &[u8]| {
        let at = part.as_ptr() as usize - bytes.as_ptr() as usize;
        shared.slice(at..at + part.len())
    };
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    for field in resp.headers.iter() {
        let name = super::field_name::field_name(field.name.as_bytes())
            .map_err(|_| ProtocolError::MalformedHead("invalid header name"))?;
        headers.append(
            name,
            super::field_value::parsed_field_value(share(field.value)),
        );
    }
    let reason = resp.reason.unwrap_or("").to_owned();
    let head = ResponseHead {
        version,
        status,
        reason,
        headers,
    };
    Ok(Parsed::Head(head, len))
}

/// Heads up to this long (nginx's: 163 bytes for a `return 200`, 252 for a static file)
/// are copied for their field values into one allocation that also holds its reference
/// count. Larger ones take the general copy: the owner is moved into its box whole, so a
/// larger size would cost more cache lines than the allocation it saves (cachegrind).
const SMALL_HEAD: usize = 256;

/// A copy of `head` for its field values to share. `Bytes::copy_from_slice` would take two
/// allocations, the copy and then, at the first value sliced from it, a shared count;
/// a small head takes one, inline in `bytes`' owner box (which stays within the
/// allocator's per-thread cache).
fn shared_copy(head: &[u8]) -> Bytes {
    /// A head of at most [`SMALL_HEAD`] bytes, by value.
    struct Small {
        len: usize,
        bytes: [u8; SMALL_HEAD],
    }
    impl AsRef<[u8]> for Small {
        fn as_ref(&self) -> &[u8] {
            &self.bytes[..self.len]
        }
    }
    if head.len() > SMALL_HEAD {
        return Bytes::copy_from_slice(head);
    }
    let mut small = Small {
        len: head.len(),
        bytes: [0; SMALL_HEAD],
    };
    small.bytes[..head.len()].copy_from_slice(head);
    Bytes::from_owner(small)
}

/// Parses a head known to end at the end of `bytes` (its blank line found by the scan).
/// `Ok(None)` means the bytes were only leading empty lines.
fn parse_head_at_most(
    bytes: &[u8],
    limits: &Limits,
) -> Result<Option<ResponseHead>, ProtocolError> {
    match parse_head(bytes, limits)? {
        Parsed::Head(head, _) => Ok(Some(head)),
        Parsed::Incomplete if bytes.iter().all(|&b| b == b'\r' || b == b'\n') => Ok(None),
        Parsed::Incomplete => Err(ProtocolError::MalformedHead("incomplete head")),
        Parsed::UnknownVersion => match as_http_11(bytes) {
            Some(patched) => parse_head_at_most(&patched, limits),
            None => Err(ProtocolError::MalformedHead(describe(
                httparse::Error::Version,
            ))),
        },
    }
}

/// RFC 9110 §2.5: a response with a higher minor version of HTTP/1 is read as HTTP/1.1.
/// httparse knows only 1.0 and 1.1, so such a head is re-parsed from a patched copy (a rare
/// path, so the copy does not matter).
fn as_http_11(bytes: &[u8]) -> Option<Vec<u8>> {
    let start = bytes.iter().position(|&b| b != b'\r' && b != b'\n')?;
    match bytes.get(start..start + 9)? {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'2'..=b'9', b' '] => {
            let mut patched = bytes.to_vec();
            patched[start + 7] = b'1';
            Some(patched)
        }
        _ => None,
    }
}

/// Parses trailer fields (RFC 9112 §7.1.2), `bytes` ending with the blank line.
pub(crate) fn parse_fields(bytes: &[u8], max_fields: usize) -> Result<HeaderMap, ProtocolError> {
    let mut slots = vec![httparse::EMPTY_HEADER; max_fields];
    let fields = match httparse::parse_headers(bytes, &mut slots) {
        Ok(httparse::Status::Complete((_, fields))) => fields,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ProtocolError::TooManyHeaders { limit: max_fields })
        }
        _ => return Err(ProtocolError::MalformedTrailer),
    };
    let mut map = HeaderMap::with_capacity(fields.len());
    for field in fields {
        let name = super::field_name::field_name(field.name.as_bytes())
            .map_err(|_| ProtocolError::MalformedTrailer)?;
        let value = Bytes::copy_from_slice(field.value);
        map.append(name, super::field_value::parsed_field_value(value));
    }
    Ok(map)
}

fn describe(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status code",
        httparse::Error::Token => "invalid token",
        httparse::Error::Version => "invalid HTTP version",
        _ => "invalid head",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_all(bytes: &[u8]) -> Result<HeadEvent, ProtocolError> {
        HeadReader::default().poll(bytes, &Limits::default())
    }

    fn final_head(bytes: &[u8]) -> ResponseHead {
        match poll_all(bytes) {
            Ok(HeadEvent::Final { head, len }) => {
                assert_eq!(len, bytes.len());
                head
            }
            other => panic!("expected a final head, got {other:?}"),
        }
    }

    /// Heads on both sides of the one-allocation size give the same fields, which stay
    /// right after the bytes they were parsed from are gone.
    #[test]
    fn heads_small_and_large_share_one_copy_of_their_fields() {
        for total in [SMALL_HEAD - 1, SMALL_HEAD, SMALL_HEAD + 1, 4 * SMALL_HEAD] {
            let start = b"HTTP/1.1 200 OK\r\nA: first\r\nLong: ";
            let end = b"\r\nZ: last\r\n\r\n";
            let long = vec![b'v'; total - start.len() - end.len()];
            let mut bytes = start.to_vec();
            bytes.extend_from_slice(&long);
            bytes.extend_from_slice(end);
            assert_eq!(bytes.len(), total);
            let head = final_head(&bytes);
            drop(bytes);
            assert_eq!(head.headers["a"], "first");
            assert_eq!(head.headers["long"].as_bytes(), &long[..]);
            assert_eq!(head.headers["z"], "last");
            let copy = head.headers.clone();
            drop(head);
            assert_eq!(copy["z"], "last", "a clone outlives the head");
        }
    }

    #[test]
    fn parses_status_reason_and_fields() {
        let head = final_head(b"HTTP/1.1 404 Not Found\r\nA: 1\r\nA: 2\r\nB:x\r\n\r\n");
        assert_eq!(head.status, StatusCode::NOT_FOUND);
        assert_eq!(head.reason, "Not Found");
        assert_eq!(head.headers.get_all("a").iter().count(), 2);
        assert_eq!(head.headers["b"], "x");
        assert_eq!(head.version, Version::HTTP_11);
    }

    #[test]
    fn bare_lf_and_leading_empty_line_are_accepted() {
        let head = final_head(b"HTTP/1.0 200 OK\nA: 1\n\n");
        assert_eq!(head.version, Version::HTTP_10);
        let head = final_head(b"\r\nHTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(head.status, StatusCode::OK);
    }

    #[test]
    fn incremental_scan_resumes_where_it_stopped() {
        let bytes = b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\n";
        let mut reader = HeadReader::default();
        for end in 0..bytes.len() {
            let got = reader.poll(&bytes[..end], &Limits::default());
            assert_eq!(got, Ok(HeadEvent::Partial), "prefix of {end} bytes");
            assert!(reader.scanned <= end);
        }
        assert!(matches!(
            reader.poll(bytes, &Limits::default()),
            Ok(HeadEvent::Final { len, .. }) if len == bytes.len()
        ));
    }

    #[test]
    fn a_whole_head_parses_as_one_that_arrived_in_pieces() {
        let many_fields = format!("HTTP/1.1 200 OK\r\n{}\r\n", "A: 1\r\n".repeat(101));
        let cases: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\nA: 1\r\nB: two words\r\n\r\nbody bytes",
            b"\r\n\nHTTP/1.0 404 Gone\nA: 1\n\nHTTP/1.1 200",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.2 200 OK\r\nA: 1\r\n\r\n",
            b"HTTP/2.0 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 101 Switching\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad\xff: 1\r\n",
            b"HTTP/1.1 200 OK\r\nA: 1\r\n\xffnot a field",
            many_fields.as_bytes(),
        ];
        let limits = Limits {
            max_headers: 100,
            ..Limits::default()
        };
        for bytes in cases {
            let whole = HeadReader::default().poll(bytes, &limits);
            let mut pieces = HeadReader::default();
            assert_eq!(pieces.poll(&bytes[..1], &limits), Ok(HeadEvent::Partial));
            assert_eq!(
                pieces.poll(bytes, &limits),
                whole,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn higher_http_1_minor_versions_read_as_1_1() {
        let head = final_head(b"HTTP/1.2 200 OK\r\nA: 1\r\n\r\n");
        assert_eq!(
            (head.version, head.status),
            (Version::HTTP_11, StatusCode::OK)
        );
        for bad in [&b"HTTP/2.0 200 OK\r\n\r\n"[..], b"HTTP/1.10 200 OK\r\n\r\n"] {
            assert!(matches!(
                poll_all(bad),
                Err(ProtocolError::MalformedHead(_))
            ));
        }
    }

    #[test]
    fn malformed_heads_are_errors() {
        let cases: &[&[u8]] = &[
            b"HTTP/1.1 +200 OK\r\n\r\n",
            b"HTTP/1x 200 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"http/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA : 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
            b"garbage\r\n\r\n",
        ];
        for case in cases {
            let got = poll_all(case);
            assert!(
                matches!(got, Err(ProtocolError::MalformedHead(_))),
                "{:?} gave {got:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn limits_apply() {
        let limits = Limits {
            max_head_bytes: 64,
            max_headers: 2,
            max_interim: 1,
            ..Limits::default()
        };
        let mut r = HeadReader::default();
        let long = [b'x'; 100];
        assert_eq!(
            r.poll(&long, &limits),
            Err(ProtocolError::HeadTooLarge { limit: 64 })
        );
        let many = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            HeadReader::default().poll(many, &limits),
            Err(ProtocolError::TooManyHeaders { limit: 2 })
        );
        let big = Limits {
            max_headers: 1000,
            ..Limits::default()
        };
        let mut text = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..500 {
            text.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
        }
        text.extend_from_slice(b"\r\n");
        assert!(matches!(
            HeadReader::default().poll(&text, &big),
            Ok(HeadEvent::Final { .. })
        ));
    }

    /// Around the stack's field slots: a head with more fields than they hold is parsed again
    /// with slots for the limit, whole or in pieces, and the limit still holds.
    #[test]
    fn fields_beyond_the_stack_slots_are_parsed_up_to_the_limit() {
        let head = |fields: usize| {
            let mut text = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..fields {
                text.extend_from_slice(format!("h{i}: v{i}\r\n").as_bytes());
            }
            text.extend_from_slice(b"\r\n");
            text
        };
        let limits = Limits::default();
        for fields in [
            STACK_FIELDS - 1,
            STACK_FIELDS,
            STACK_FIELDS + 1,
            limits.max_headers,
        ] {
            let text = head(fields);
            let Ok(Parsed::Head(parsed, len)) = parse_head(&text, &limits) else {
                panic!("{fields} fields: no head");
            };
            assert_eq!((parsed.headers.len(), len), (fields, text.len()));
            let last = format!("h{}", fields - 1);
            assert_eq!(parsed.headers[last.as_str()], format!("v{}", fields - 1));
            let mut pieces = HeadReader::default();
            assert!(matches!(
                pieces.poll(&text[..10], &limits),
                Ok(HeadEvent::Partial)
            ));
            assert!(matches!(
                pieces.poll(&text, &limits),
                Ok(HeadEvent::Final { .. })
            ));
        }
        let over = head(limits.max_headers + 1);
        assert!(matches!(
            parse_head(&over, &limits),
            Err(ProtocolError::TooManyHeaders { limit: 100 })
        ));
        let small = Limits {
            max_headers: STACK_FIELDS - 2,
            ..Limits::default()
        };
        assert!(matches!(
            parse_head(&head(STACK_FIELDS - 1), &small),
            Err(ProtocolError::TooManyHeaders { limit }) if limit == STACK_FIELDS - 2
        ));
    }

    #[test]
    fn interim_responses_are_counted_and_101_refused() {
        let limits = Limits {
            max_interim: 2,
            ..Limits::default()
        };
        let mut r = HeadReader::default();
        let interim = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n";
        for _ in 0..2 {
            assert_eq!(
                r.poll(interim, &limits),
                Ok(HeadEvent::Interim {
                    status: StatusCode::EARLY_HINTS,
                    len: interim.len()
                })
            );
        }
        assert_eq!(
            r.poll(interim, &limits),
            Err(ProtocolError::TooManyInterimResponses { limit: 2 })
        );
        assert_eq!(
            poll_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"),
            Err(ProtocolError::SwitchingProtocols)
        );
    }
}
