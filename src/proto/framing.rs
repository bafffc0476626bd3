//! How a response body is delimited and whether the connection survives it (RFC 9112 §6.3, §9.3).

use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, Method, StatusCode, Version};

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
        let fields = Fields::of(&head.headers);
        let persistent = fields.is_persistent(head.version);
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
        let body = fields.body_kind(head.version)?;
        let keep_alive = persistent && body != BodyKind::UntilClose;
        Ok(Framing { body, keep_alive })
    }
}

/// What the framing fields of a head say, gathered in one pass over its fields (a lookup
/// per name hashes the name and probes the map: three of those cost more than the pass).
#[derive(Debug)]
struct Fields {
    /// `Content-Length` was present; its values, all equal (§8.6: `1*DIGIT`, repeated or
    /// listed), or the first thing wrong with them.
    has_length: bool,
    length: Result<Option<u64>, ProtocolError>,
    /// `Transfer-Encoding` was present, its codings in order (§6.1).
    has_coding: bool,
    codings: Codings,
    /// `Connection` tokens (§9.3).
    close: bool,
    keep_alive: bool,
}

/// The transfer codings seen so far, as far as framing cares.
#[derive(Debug, Default)]
struct Codings {
    any: bool,
    last_is_chunked: bool,
    chunked_seen: bool,
    /// `chunked` applied twice.
    twice: bool,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            has_length: false,
            length: Ok(None),
            has_coding: false,
            codings: Codings::default(),
            close: false,
            keep_alive: false,
        }
    }
}

impl Fields {
    /// Gathered from a whole header map.
    fn of(headers: &HeaderMap) -> Fields {
        let mut fields = Fields::default();
        for (name, value) in headers {
            fields.add(name, value.as_bytes());
        }
        fields
    }

    /// Notes one field, in the order received.
    fn add(&mut self, name: &HeaderName, value: &[u8]) {
        if name == CONTENT_LENGTH {
            self.has_length = true;
            for item in list_items(value) {
                self.length = match (&self.length, parse_decimal(item)) {
                    (Err(_), _) => break,
                    (_, None) => Err(ProtocolError::InvalidContentLength),
                    (Ok(Some(prev)), Some(n)) if *prev != n => {
                        Err(ProtocolError::ConflictingContentLength)
                    }
                    (Ok(_), Some(n)) => Ok(Some(n)),
                };
            }
        } else if name == TRANSFER_ENCODING {
            self.has_coding = true;
            for coding in list_items(value) {
                let c = &mut self.codings;
                c.any = true;
                c.last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
                if c.last_is_chunked {
                    c.twice |= c.chunked_seen;
                    c.chunked_seen = true;
                }
            }
        } else if name == CONNECTION {
            for token in list_items(value) {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }

    /// §9.3: HTTP/1.1 persists unless `close`; HTTP/1.0 only with `keep-alive`.
    fn is_persistent(&self, version: Version) -> bool {
        !self.close && (version != Version::HTTP_10 || self.keep_alive)
    }

    fn body_kind(self, version: Version) -> Result<BodyKind, ProtocolError> {
        if self.has_coding {
            if self.has_length {
                return Err(ProtocolError::LengthWithTransferEncoding);
            }
            // §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
            if version == Version::HTTP_10 {
                return Err(ProtocolError::InvalidTransferEncoding);
            }
            return self.codings.body_kind();
        }
        if self.has_length {
            // A field with no items at all is as invalid as a bad one.
            return match self.length? {
                None => Err(ProtocolError::InvalidContentLength),
                Some(0) => Ok(BodyKind::None),
                Some(n) => Ok(BodyKind::Length(n)),
            };
        }
        Ok(BodyKind::UntilClose)
    }
}

impl Codings {
    /// §6.3 rule 4: chunked framing only when `chunked` is the final coding; otherwise the
    /// body runs until close.
    fn body_kind(&self) -> Result<BodyKind, ProtocolError> {
        match (self.any, self.last_is_chunked, self.chunked_seen) {
            _ if self.twice => Err(ProtocolError::InvalidTransferEncoding),
            (false, _, _) => Err(ProtocolError::InvalidTransferEncoding),
            (true, true, _) => Ok(BodyKind::Chunked),
            // chunked applied before another coding cannot be delimited.
            (true, false, true) => Err(ProtocolError::InvalidTransferEncoding),
            (true, false, false) => Ok(BodyKind::UntilClose),
        }
    }
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
        checked(&method, &head(Version::HTTP_11, status, fields))
    }

    /// `Framing::of` on `head`, checked to be what the response reader decides from the
    /// fields its parser gathers, when the same head arrives as text.
    fn checked(method: &Method, head: &ResponseHead) -> Result<Framing, ProtocolError> {
        let of = Framing::of(method, head);
        if !head.status.is_informational() {
            let mut text = format!("{:?} {} R\r\n", head.version, head.status.as_u16());
            for (name, value) in &head.headers {
                text += &format!("{name}: {}\r\n", value.to_str().expect("ASCII"));
            }
            text += "\r\n";
            let read = super::super::ResponseReader::new(super::super::Limits::default())
                .read_head(text.as_bytes(), method)
                .map(|step| match step {
                    super::super::HeadStep::Final { framing, .. } => framing,
                    other => panic!("{text:?}: {other:?}"),
                });
            assert_eq!(read, of, "{text:?}");
        }
        of
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
        let old = checked(
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
            checked(&Method::GET, &head(Version::HTTP_10, 200, fields))
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
