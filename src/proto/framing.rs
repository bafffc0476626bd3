//! How a response body is delimited and whether the connection survives it (RFC 9112 §6.3, §9.3).

use http::header::{GetAll, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};

use super::{ProtocolError, ResponseHead};

/// The length rule for one response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body at all (HEAD, 204, 304, or `Content-Length: 0`).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// The framing of one response: its body rule and whether the connection stays open after it.
/// `#[non_exhaustive]`: an output of the protocol core that may learn more (an upgrade, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Framing {
    /// How the body is delimited.
    pub body: BodyKind,
    /// Whether another response may follow on this connection.
    pub keep_alive: bool,
}

impl Framing {
    /// Applies RFC 9112 §6.3 to a final response head for a request made with `method`.
    ///
    /// The no-body rules come first, so a bad `Content-Length` on a HEAD, 204 or 304 response
    /// is ignored rather than fatal.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] for an invalid or conflicting `Content-Length`, both
    /// `Content-Length` and `Transfer-Encoding`, a `Transfer-Encoding` on an HTTP/1.0 response
    /// or with `chunked` applied twice, or a 2xx answer to `CONNECT`.
    pub fn of(method: &Method, head: &ResponseHead) -> Result<Framing, ProtocolError> {
        // RFC 9110 §9.3.6: any 2xx to CONNECT (even 204) turns the connection into a tunnel.
        if *method == Method::CONNECT && head.status.is_success() {
            return Err(ProtocolError::Tunnel);
        }
        let persistent = is_persistent(head.version, &head.headers);
        let no_body = *method == Method::HEAD
            || head.status == StatusCode::NO_CONTENT
            || head.status == StatusCode::NOT_MODIFIED
            || head.status.is_informational();
        if no_body {
            return Ok(Framing {
                body: BodyKind::None,
                keep_alive: persistent,
            });
        }
        let body = body_kind(head)?;
        let keep_alive = persistent && body != BodyKind::UntilClose;
        Ok(Framing { body, keep_alive })
    }
}

fn body_kind(head: &ResponseHead) -> Result<BodyKind, ProtocolError> {
    // One lookup per field name, each kept for reading the values.
    let te = head.headers.get_all(TRANSFER_ENCODING);
    let cl = head.headers.get_all(CONTENT_LENGTH);
    let has_te = te.iter().next().is_some();
    let has_cl = cl.iter().next().is_some();
    if has_te {
        if has_cl {
            return Err(ProtocolError::LengthWithTransferEncoding);
        }
        // §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
        if head.version == Version::HTTP_10 {
            return Err(ProtocolError::InvalidTransferEncoding);
        }
        return transfer_coding(te);
    }
    if has_cl {
        return content_length(cl).map(|n| match n {
            0 => BodyKind::None,
            n => BodyKind::Length(n),
        });
    }
    Ok(BodyKind::UntilClose)
}

/// §6.3 rule 4: chunked framing only when `chunked` is the final coding; otherwise the body
/// runs until close.
fn transfer_coding(values: GetAll<'_, HeaderValue>) -> Result<BodyKind, ProtocolError> {
    let mut chunked_seen = false;
    let mut last_is_chunked = false;
    let mut any = false;
    for value in values {
        for coding in list_items(value.as_bytes()) {
            any = true;
            last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
            if last_is_chunked {
                if chunked_seen {
                    return Err(ProtocolError::InvalidTransferEncoding);
                }
                chunked_seen = true;
            }
        }
    }
    match (any, last_is_chunked, chunked_seen) {
        (false, _, _) => Err(ProtocolError::InvalidTransferEncoding),
        (true, true, _) => Ok(BodyKind::Chunked),
        // chunked applied before another coding cannot be delimited.
        (true, false, true) => Err(ProtocolError::InvalidTransferEncoding),
        (true, false, false) => Ok(BodyKind::UntilClose),
    }
}

/// §8.6: `1*DIGIT`; repeated or listed values must all be equal.
fn content_length(values: GetAll<'_, HeaderValue>) -> Result<u64, ProtocolError> {
    let mut found: Option<u64> = None;
    for value in values {
        for item in list_items(value.as_bytes()) {
            let n = parse_decimal(item).ok_or(ProtocolError::InvalidContentLength)?;
            match found {
                Some(prev) if prev != n => return Err(ProtocolError::ConflictingContentLength),
                _ => found = Some(n),
            }
        }
    }
    found.ok_or(ProtocolError::InvalidContentLength)
}

/// Strict `1*DIGIT` within u64: no sign, no whitespace, no separators, no overflow.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = b.is_ascii_digit().then(|| u64::from(b - b'0'))?;
        acc.checked_mul(10)?.checked_add(d)
    })
}

/// §9.3: HTTP/1.1 persists unless `close`; HTTP/1.0 only with `keep-alive`.
fn is_persistent(version: Version, headers: &HeaderMap) -> bool {
    let has = |token: &[u8]| {
        headers
            .get_all(CONNECTION)
            .iter()
            .any(|v| list_items(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(token)))
    };
    if has(b"close") {
        return false;
    }
    version != Version::HTTP_10 || has(b"keep-alive")
}

/// Items of a comma-separated list (RFC 9110 §5.6.1), trimmed, empty ones skipped.
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn head(
        version: Version,
        status: u16,
        fields: &[(&'static str, &'static str)],
    ) -> ResponseHead {
        let mut headers = HeaderMap::new();
        for (n, v) in fields {
            headers.append(*n, HeaderValue::from_static(v));
        }
        ResponseHead {
            version,
            status: StatusCode::from_u16(status).expect("status"),
            reason: String::new(),
            headers,
        }
    }

    fn framing(
        method: Method,
        status: u16,
        fields: &[(&'static str, &'static str)],
    ) -> Result<Framing, ProtocolError> {
        Framing::of(&method, &head(Version::HTTP_11, status, fields))
    }

    #[test]
    fn no_body_rules_come_first() {
        for (method, status) in [(Method::HEAD, 200), (Method::GET, 204), (Method::GET, 304)] {
            let got = framing(method, status, &[("content-length", "-1")]);
            assert_eq!(
                got,
                Ok(Framing {
                    body: BodyKind::None,
                    keep_alive: true
                })
            );
        }
    }

    #[test]
    fn content_length_is_strict() {
        let ok = |v| framing(Method::GET, 200, &[("content-length", v)]);
        assert_eq!(ok("10").map(|f| f.body), Ok(BodyKind::Length(10)));
        assert_eq!(ok("0").map(|f| f.body), Ok(BodyKind::None));
        assert_eq!(ok("7, 7").map(|f| f.body), Ok(BodyKind::Length(7)));
        assert_eq!(
            ok("18446744073709551615").map(|f| f.body),
            Ok(BodyKind::Length(u64::MAX))
        );
        for bad in [
            "-1",
            "+3",
            "1_0",
            "1 0",
            "0x10",
            "18446744073709551616",
            "",
            "a",
        ] {
            assert_eq!(ok(bad), Err(ProtocolError::InvalidContentLength), "{bad:?}");
        }
        assert_eq!(ok("3, 4"), Err(ProtocolError::ConflictingContentLength));
        let dup = framing(
            Method::GET,
            200,
            &[("content-length", "3"), ("content-length", "4")],
        );
        assert_eq!(dup, Err(ProtocolError::ConflictingContentLength));
        let same = framing(
            Method::GET,
            200,
            &[("content-length", "3"), ("content-length", "3")],
        );
        assert_eq!(same.map(|f| f.body), Ok(BodyKind::Length(3)));
    }

    #[test]
    fn transfer_encoding_rules() {
        let te = |v| framing(Method::GET, 200, &[("transfer-encoding", v)]);
        assert_eq!(
            te("chunked"),
            Ok(Framing {
                body: BodyKind::Chunked,
                keep_alive: true
            })
        );
        assert_eq!(te("gzip, Chunked").map(|f| f.body), Ok(BodyKind::Chunked));
        assert_eq!(
            te("gzip"),
            Ok(Framing {
                body: BodyKind::UntilClose,
                keep_alive: false
            })
        );
        assert_eq!(
            te("chunked, gzip"),
            Err(ProtocolError::InvalidTransferEncoding)
        );
        assert_eq!(
            te("chunked, chunked"),
            Err(ProtocolError::InvalidTransferEncoding)
        );
        let both = framing(
            Method::GET,
            200,
            &[("transfer-encoding", "chunked"), ("content-length", "3")],
        );
        assert_eq!(both, Err(ProtocolError::LengthWithTransferEncoding));
        let old = Framing::of(
            &Method::GET,
            &head(Version::HTTP_10, 200, &[("transfer-encoding", "chunked")]),
        );
        assert_eq!(old, Err(ProtocolError::InvalidTransferEncoding));
    }

    #[test]
    fn neither_means_until_close() {
        assert_eq!(
            framing(Method::GET, 200, &[]),
            Ok(Framing {
                body: BodyKind::UntilClose,
                keep_alive: false
            })
        );
    }

    #[test]
    fn connection_tokens_and_versions() {
        let cl = ("content-length", "1");
        assert!(
            !framing(Method::GET, 200, &[cl, ("connection", "foo, Close")])
                .expect("ok")
                .keep_alive
        );
        assert!(
            framing(Method::GET, 200, &[cl, ("connection", "closed")])
                .expect("ok")
                .keep_alive
        );
        let v10 = |fields: &[(&'static str, &'static str)]| {
            Framing::of(&Method::GET, &head(Version::HTTP_10, 200, fields))
                .expect("ok")
                .keep_alive
        };
        assert!(!v10(&[cl]));
        assert!(v10(&[cl, ("connection", "Keep-Alive")]));
        assert!(!v10(&[("connection", "keep-alive")]));
    }

    #[test]
    fn connect_tunnels_are_refused() {
        assert_eq!(
            framing(Method::CONNECT, 200, &[]),
            Err(ProtocolError::Tunnel)
        );
    }
}
