//! Opening a tunnel through a proxy, sans-IO: the `CONNECT` request head (RFC 9110 §9.3.6,
//! RFC 9112 §3.2.3) and the reading of the proxy's answer.
//!
//! The head is written by the one request head encoder; the answer is read by the one
//! response head reader, under the same limits as any response head.

use http::header::PROXY_AUTHENTICATE;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::head::{HeadEvent, HeadReader};
use super::request::{encode_head, host_header_with_default, Head};
use super::{Limits, ProtocolError, RequestError, RequestFraming};

/// The authority-form target of a `CONNECT` to `host:port`: the port always, an IPv6
/// literal in brackets. It is the `Host` header of the `CONNECT` too.
///
/// # Errors
///
/// [`RequestError::InvalidHost`] when the host is empty or not a valid field value.
pub(crate) fn connect_authority(host: &str, port: u16) -> Result<HeaderValue, RequestError> {
    host_header_with_default(host, port, None)
}

/// Appends `CONNECT authority HTTP/1.1` with `Host: authority` and, if given, the proxy's
/// credentials.
///
/// # Errors
///
/// A [`RequestError`] when `authority` or the credentials are not valid in a head.
pub(crate) fn encode_connect_head(
    authority: &HeaderValue,
    proxy_authorization: Option<&HeaderValue>,
    out: &mut Vec<u8>,
) -> Result<(), RequestError> {
    let target = authority
        .to_str()
        .map_err(|_| RequestError::InvalidTarget)?;
    let head = Head {
        method: &Method::CONNECT,
        target,
        headers: &HeaderMap::new(),
        host: authority,
        proxy_authorization,
    };
    encode_head(&head, RequestFraming::None, out)
}

/// What the proxy's answer to `CONNECT` says so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ConnectStep {
    /// More bytes are needed; nothing was consumed.
    Partial,
    /// An interim (1xx) answer of `len` bytes: drop them and read on.
    Interim { len: usize },
    /// A 2xx: the tunnel is open after the head's `len` bytes. Any bytes after them come
    /// from the other end of the tunnel (RFC 9110 §9.3.6: a 2xx to `CONNECT` has no
    /// content, whatever its framing headers say).
    Established { len: usize },
    /// Any other final status: no tunnel. `Proxy-Authenticate` values are kept for a 407
    /// (and any other status that carries them).
    Refused {
        status: StatusCode,
        proxy_authenticate: Vec<HeaderValue>,
    },
}

/// Reads the answer to one `CONNECT` from the front of a buffer.
#[derive(Debug, Default)]
pub(crate) struct ConnectReader {
    head: HeadReader,
    limits: Limits,
}

impl ConnectReader {
    /// A reader bounded by `limits` (head bytes, fields, interim answers).
    pub(crate) fn new(limits: Limits) -> Self {
        ConnectReader {
            head: HeadReader::default(),
            limits,
        }
    }

    /// Looks at the front of `buf`. The caller drops `len` bytes after `Interim` and
    /// `Established`, and none after `Partial`.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] when the answer is not a valid response head, is too large, or is
    /// a `101`.
    pub(crate) fn poll(&mut self, buf: &[u8]) -> Result<ConnectStep, ProtocolError> {
        Ok(match self.head.poll(buf, &self.limits)? {
            HeadEvent::Partial => ConnectStep::Partial,
            HeadEvent::Interim { len, .. } => ConnectStep::Interim { len },
            HeadEvent::Final { head, len } if head.status.is_success() => {
                ConnectStep::Established { len }
            }
            HeadEvent::Final { head, .. } => ConnectStep::Refused {
                status: head.status,
                proxy_authenticate: head
                    .headers
                    .get_all(PROXY_AUTHENTICATE)
                    .iter()
                    .cloned()
                    .collect(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(authority: &HeaderValue, auth: Option<&HeaderValue>) -> String {
        let mut out = Vec::new();
        encode_connect_head(authority, auth, &mut out).expect("encodes");
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn connect_head_is_authority_form_with_host() {
        let authority = connect_authority("example.test", 443).expect("valid");
        assert_eq!(
            head(&authority, None),
            "CONNECT example.test:443 HTTP/1.1\r\nhost: example.test:443\r\n\r\n"
        );
        let auth = HeaderValue::from_static("Basic dTpw");
        assert_eq!(
            head(&authority, Some(&auth)),
            "CONNECT example.test:443 HTTP/1.1\r\nhost: example.test:443\r\n\
             proxy-authorization: Basic dTpw\r\n\r\n"
        );
    }

    #[test]
    fn ipv6_literals_are_bracketed_and_the_port_always_given() {
        for (host, port, want) in [
            ("::1", 443, "[::1]:443"),
            ("[::1]", 80, "[::1]:80"),
            ("fe80::1", 8080, "[fe80::1]:8080"),
            ("h", 80, "h:80"),
        ] {
            let authority = connect_authority(host, port).expect("valid");
            assert_eq!(authority, want);
            assert!(head(&authority, None).starts_with(&format!("CONNECT {want} HTTP/1.1\r\n")));
        }
        assert_eq!(connect_authority("", 1), Err(RequestError::InvalidHost));
        assert_eq!(connect_authority("a b", 1), Err(RequestError::InvalidHost));
    }

    /// Every prefix of an answer is `Partial`; the whole of it gives the step.
    fn read_all_prefixes(answer: &[u8]) -> Result<ConnectStep, ProtocolError> {
        for end in 0..answer.len() {
            let mut reader = ConnectReader::new(Limits::default());
            let prefix = &answer[..end];
            match reader.poll(prefix) {
                Ok(ConnectStep::Partial) => {}
                Ok(ConnectStep::Interim { .. }) if answer.starts_with(b"HTTP/1.1 1") => {}
                other => panic!("prefix {end}: {other:?}"),
            }
        }
        ConnectReader::new(Limits::default()).poll(answer)
    }

    #[test]
    fn any_2xx_opens_the_tunnel_and_later_bytes_are_left() {
        for answer in [
            &b"HTTP/1.1 200 Connection established\r\n\r\n"[..],
            b"HTTP/1.0 200 OK\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
            b"HTTP/1.1 299 Whatever\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(
                read_all_prefixes(answer),
                Ok(ConnectStep::Established { len: answer.len() }),
                "{answer:?}"
            );
            let mut with_tail = answer.to_vec();
            with_tail.extend_from_slice(b"tunnel bytes");
            assert_eq!(
                ConnectReader::new(Limits::default()).poll(&with_tail),
                Ok(ConnectStep::Established { len: answer.len() })
            );
        }
    }

    #[test]
    fn refusals_carry_status_and_proxy_authenticate() {
        let answer = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
            Proxy-Authenticate: Basic realm=\"p\"\r\nProxy-Authenticate: Bearer\r\n\
            Content-Length: 3\r\n\r\nabc";
        assert_eq!(
            ConnectReader::new(Limits::default()).poll(answer),
            Ok(ConnectStep::Refused {
                status: StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                proxy_authenticate: vec![
                    HeaderValue::from_static("Basic realm=\"p\""),
                    HeaderValue::from_static("Bearer"),
                ],
            })
        );
        assert_eq!(
            read_all_prefixes(b"HTTP/1.1 502 Bad Gateway\r\n\r\n"),
            Ok(ConnectStep::Refused {
                status: StatusCode::BAD_GATEWAY,
                proxy_authenticate: Vec::new(),
            })
        );
    }

    #[test]
    fn interim_answers_are_skipped_and_bad_ones_fail() {
        let mut reader = ConnectReader::new(Limits::default());
        let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(
            reader.poll(interim),
            Ok(ConnectStep::Interim { len: interim.len() })
        );
        assert_eq!(
            reader.poll(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            Err(ProtocolError::SwitchingProtocols)
        );
        assert!(matches!(
            ConnectReader::new(Limits::default()).poll(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(ProtocolError::MalformedHead(_))
        ));
    }

    #[test]
    fn the_answer_is_bounded_by_the_head_limit() {
        let limits = Limits {
            max_head_bytes: 64,
            ..Limits::default()
        };
        let mut endless = b"HTTP/1.1 200 OK\r\nX-A: ".to_vec();
        endless.resize(64, b'b');
        assert_eq!(
            ConnectReader::new(limits).poll(&endless),
            Ok(ConnectStep::Partial)
        );
        endless.push(b'b');
        assert_eq!(
            ConnectReader::new(limits).poll(&endless),
            Err(ProtocolError::HeadTooLarge { limit: 64 })
        );
    }
}
