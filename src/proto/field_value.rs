//! Header field values of responses, made into `http`'s [`HeaderValue`] without checking
//! their bytes a second time.
//!
//! httparse has already checked every byte of a value it returns against the grammar of
//! RFC 9110 §5.5 (`field-vchar`, SP and HTAB; obs-text allowed; CR, LF, NUL and DEL never),
//! which is exactly the set `HeaderValue` accepts. `HeaderValue::from_maybe_shared` would
//! walk the bytes again, a few instructions each: about 4% of a small response's cost to the
//! client. `http` offers the unchecked constructor only as an `unsafe fn`, so it is called
//! here, in this one place; debug builds (and so the fuzz targets) still check, inside
//! `http`, and panic if the two grammars ever disagree.
#![allow(unsafe_code)]

use bytes::Bytes;
use http::HeaderValue;

/// `value`, a field value exactly as httparse returned it (a slice of the head it parsed,
/// shared).
///
/// The caller must pass only bytes that httparse accepted as a field value (the
/// `the_grammars_agree_byte_for_byte` test below pins the two grammars to each other for
/// the httparse and http versions in use).
pub(crate) fn parsed_field_value(value: Bytes) -> HeaderValue {
    debug_assert!(value.iter().all(|&b| is_field_value_byte(b)));
    // SAFETY: `from_maybe_shared_unchecked` requires bytes `HeaderValue` would accept
    // (HTAB, SP through `~`, 0x80 through 0xFF); its one caller passes a value httparse
    // accepted, which allows exactly those bytes (see the test below). No memory safety
    // depends on it either way: `HeaderValue` checks its bytes again wherever it reads them
    // as text.
    unsafe { HeaderValue::from_maybe_shared_unchecked(value) }
}

/// RFC 9110 §5.5's field value bytes, as both parsers read them.
fn is_field_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= b' ' && b != 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For every byte, httparse accepts it inside a field value exactly when `HeaderValue`
    /// does, whether it lands in httparse's vectorised scan (in the middle of a long value)
    /// or its byte-at-a-time tail.
    #[test]
    fn the_grammars_agree_byte_for_byte() {
        for b in 0..=255u8 {
            if b == b'\r' || b == b'\n' {
                continue; // they end the line, not the value
            }
            for at in [0, 5, 40] {
                let mut value = vec![b'v'; 64];
                value[at] = b;
                let mut head = b"HTTP/1.1 200 OK\r\nX-Test: ".to_vec();
                head.extend_from_slice(&value);
                head.extend_from_slice(b"\r\n\r\n");
                let mut fields = [httparse::EMPTY_HEADER; 4];
                let mut response = httparse::Response::new(&mut fields);
                let by_httparse = response.parse(&head).is_ok();
                let by_http = HeaderValue::from_bytes(&value).is_ok();
                // httparse trims leading and trailing blanks; those are accepted by both.
                assert_eq!(by_httparse, by_http, "byte {b:#04x} at {at}");
                assert_eq!(by_http, is_field_value_byte(b), "byte {b:#04x}");
                if by_httparse {
                    let parsed = response.headers[0].value;
                    let made = parsed_field_value(Bytes::copy_from_slice(parsed));
                    assert_eq!(made.as_bytes(), parsed);
                    assert_eq!(made, HeaderValue::from_bytes(parsed).expect("valid"));
                }
            }
        }
    }
}
