//! `ResponseReader::read_head` on arbitrary bytes.
//!
//! Input: byte 0 picks the request method (bits 0-1: GET, HEAD, PUT, CONNECT) and the limits
//! (bits 2-3); the rest is what the server sent. Interim responses are dropped and the next
//! head read, as the connection does.
//!
//! Checks: no panic; every reported length is non-zero and within the buffer; `Partial`
//! repeats on the same bytes; a final head parses the same from exactly its own bytes, and
//! every shorter prefix of it is `Partial`; httparse ends it at the same byte; the framing
//! obeys the no-body rules and is what `Framing::of` decides from the parsed head (the
//! reader decides from the fields its parser gathered on the way).
#![no_main]

use dugong::proto::{BodyKind, Framing, HeadStep, Limits, ProtocolError, ResponseReader};
use http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;

fn method(b: u8) -> Method {
    match b & 3 {
        0 => Method::GET,
        1 => Method::HEAD,
        2 => Method::PUT,
        _ => Method::CONNECT,
    }
}

fn limits(b: u8) -> Limits {
    match (b >> 2) & 3 {
        0 => Limits::default(),
        // Tiny: every limit is reachable with a few bytes.
        1 => with_limits(|l| {
            l.max_head_bytes = 40;
            l.max_headers = 1;
            l.max_interim = 0;
            l.max_trailer_bytes = 8;
        }),
        2 => with_limits(|l| {
            l.max_head_bytes = 300;
            l.max_headers = 4;
            l.max_interim = 2;
            l.max_trailer_bytes = 64;
        }),
        // More field slots than fit on the stack: the heap path of the head parser.
        _ => with_limits(|l| {
            l.max_headers = 200;
        }),
    }
}

fn fresh_read(limits: Limits, buf: &[u8], method: &Method) -> Result<HeadStep, ProtocolError> {
    ResponseReader::new(limits).read_head(buf, method)
}

/// Parses a head with httparse the way the library documents it: a higher `HTTP/1.x` minor
/// version is read as 1.1.
fn httparse_head(
    bytes: &[u8],
    max_headers: usize,
) -> (Option<u16>, usize, httparse::Result<usize>) {
    let mut slots = vec![httparse::EMPTY_HEADER; max_headers];
    let mut resp = httparse::Response::new(&mut slots);
    let parsed = resp.parse(bytes);
    if parsed == Err(httparse::Error::Version) {
        let start = bytes
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(0);
        if let Some([b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'2'..=b'9', b' ']) =
            bytes.get(start..start + 9)
        {
            let mut patched = bytes.to_vec();
            patched[start + 7] = b'1';
            return httparse_head(&patched, max_headers);
        }
    }
    (resp.code, resp.headers.len(), parsed)
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let method = method(sel);
    let limits = limits(sel);
    let mut reader = ResponseReader::new(limits);
    let mut interim = 0;
    loop {
        match reader.read_head(rest, &method) {
            Err(_) => return,
            Ok(HeadStep::Partial) => {
                assert!(!reader.has_body());
                assert_eq!(reader.read_head(rest, &method), Ok(HeadStep::Partial));
                return;
            }
            Ok(HeadStep::Interim { status, len }) => {
                assert!(
                    len > 0 && len <= rest.len(),
                    "interim len {len} of {}",
                    rest.len()
                );
                assert!(status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS);
                assert!(!reader.has_body());
                interim += 1;
                assert!(interim <= limits.max_interim, "interim limit not applied");
                rest = &rest[len..];
            }
            Ok(HeadStep::Final { head, framing, len }) => {
                assert!(
                    len > 0 && len <= rest.len(),
                    "final len {len} of {}",
                    rest.len()
                );
                assert!(len <= limits.max_head_bytes);
                assert!(head.headers.len() <= limits.max_headers);
                assert!(!head.status.is_informational());
                let no_body = method == Method::HEAD
                    || head.status == StatusCode::NO_CONTENT
                    || head.status == StatusCode::NOT_MODIFIED;
                if no_body {
                    assert_eq!(framing.body, BodyKind::None);
                }
                // A 2xx answer to CONNECT makes the connection a tunnel: refused, 204 included
                // (regressions/response_head/connect-204).
                assert!(
                    !(method == Method::CONNECT && head.status.is_success()),
                    "{} answer to CONNECT accepted",
                    head.status
                );
                assert_ne!(framing.body, BodyKind::Length(0));
                assert_eq!(Framing::of(&method, &head), Ok(framing));
                assert_eq!(reader.has_body(), framing.body != BodyKind::None);

                // The head is decided by its own bytes alone.
                let again = fresh_read(limits, &rest[..len], &method);
                assert_eq!(
                    again,
                    Ok(HeadStep::Final {
                        head: head.clone(),
                        framing,
                        len
                    })
                );
                // httparse, reading the same bytes, ends the head at the same byte and sees
                // the same status and number of fields.
                let (code, fields, parsed) = httparse_head(&rest[..len], limits.max_headers);
                assert_eq!(parsed, Ok(httparse::Status::Complete(len)));
                assert_eq!(code, Some(head.status.as_u16()));
                assert_eq!(fields, head.headers.len());
                // Any shorter prefix is incomplete (not an error, not another head).
                for cut in [len - 1, len / 2, (sel as usize) % len] {
                    assert_eq!(
                        fresh_read(limits, &rest[..cut], &method),
                        Ok(HeadStep::Partial),
                        "prefix of {cut} bytes of a {len}-byte head"
                    );
                }
                return;
            }
        }
    }
});

/// The default limits, changed by `set` (`Limits` is `#[non_exhaustive]`).
fn with_limits(set: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    set(&mut limits);
    limits
}
