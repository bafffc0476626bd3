//! Header field names of responses, made into `http`'s [`HeaderName`].
//!
//! `HeaderName::from_bytes` lowercases every name into a scratch buffer before it looks for
//! a standard one, about a hundred instructions a field, or a tenth of a small response's
//! cost to the client. Servers spell the common names one way (nginx, Apache, lighttpd and
//! most frameworks send `Content-Length`, `Date`, ...), so those exact spellings are matched
//! first, as whole byte strings; any other spelling or name takes the general parser.

use http::header::{self, HeaderName, InvalidHeaderName};

/// Not among `http`'s constants (RFC 9112 §9.3 leaves it to HTTP/1.0), yet common.
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// The field name `bytes` (as received: any case).
///
/// # Errors
///
/// [`InvalidHeaderName`] when `bytes` is not a valid token.
pub(crate) fn field_name(bytes: &[u8]) -> Result<HeaderName, InvalidHeaderName> {
    Ok(match bytes {
        b"Date" => header::DATE,
        b"Server" => header::SERVER,
        b"Content-Type" => header::CONTENT_TYPE,
        b"Content-Length" => header::CONTENT_LENGTH,
        b"Connection" => header::CONNECTION,
        b"Last-Modified" => header::LAST_MODIFIED,
        b"ETag" => header::ETAG,
        b"Accept-Ranges" => header::ACCEPT_RANGES,
        b"Cache-Control" => header::CACHE_CONTROL,
        b"Transfer-Encoding" => header::TRANSFER_ENCODING,
        b"Content-Encoding" => header::CONTENT_ENCODING,
        b"Vary" => header::VARY,
        b"Expires" => header::EXPIRES,
        b"Location" => header::LOCATION,
        b"Set-Cookie" => header::SET_COOKIE,
        b"Keep-Alive" => KEEP_ALIVE,
        _ => return HeaderName::from_bytes(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every exact spelling gives what the general parser gives, in any other case too.
    #[test]
    fn the_fast_spellings_agree_with_the_general_parser() {
        let spellings: &[&[u8]] = &[
            b"Date",
            b"Server",
            b"Content-Type",
            b"Content-Length",
            b"Connection",
            b"Last-Modified",
            b"ETag",
            b"Accept-Ranges",
            b"Cache-Control",
            b"Transfer-Encoding",
            b"Content-Encoding",
            b"Vary",
            b"Expires",
            b"Location",
            b"Set-Cookie",
            b"Keep-Alive",
        ];
        for &name in spellings {
            let general = HeaderName::from_bytes(name).expect("a valid name");
            assert_eq!(field_name(name).expect("a valid name"), general);
            assert_eq!(
                field_name(&name.to_ascii_lowercase()).expect("valid"),
                general
            );
            assert_eq!(
                field_name(&name.to_ascii_uppercase()).expect("valid"),
                general
            );
        }
        assert_eq!(
            field_name(b"X-Custom").expect("valid"),
            HeaderName::from_static("x-custom")
        );
        assert!(field_name(b"Bad Name").is_err());
        assert!(field_name(b"").is_err());
    }
}
