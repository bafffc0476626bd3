//! Request head encoding (RFC 9112 §3, §6) with validation before any byte is produced.

use http::header::{CONTENT_LENGTH, HOST, PROXY_AUTHORIZATION, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method};

use super::RequestError;

/// The body of a request, which also chooses its framing.
///
/// | variant | framing header | body bytes written by |
/// |---|---|---|
/// | `Empty` | `Content-Length: 0` for POST, PUT and PATCH, none otherwise | — |
/// | `Bytes(b)` | `Content-Length: b.len()` | `send_request` |
/// | `Following(n)` | `Content-Length: n` | later `write` calls (exactly `n` bytes) |
/// | `Chunked` | `Transfer-Encoding: chunked` | later `write` calls, then `finish_body` |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// No body. A method that carries content (`POST`, `PUT`, `PATCH`) declares it as
    /// `Content-Length: 0`, as RFC 9110 §8.6 asks; others send no framing header.
    Empty,
    /// An in-memory body sent together with the head.
    Bytes(&'a [u8]),
    /// A body of exactly this many bytes, written after the head.
    Following(u64),
    /// A body of unknown length, written after the head as chunks and ended explicitly.
    Chunked,
}

impl Body<'_> {
    /// The framing this body puts on the wire.
    pub fn framing(&self, method: &Method) -> RequestFraming {
        match *self {
            Body::Empty if expects_content(method) => RequestFraming::Length(0),
            Body::Empty => RequestFraming::None,
            Body::Bytes(b) => RequestFraming::Length(b.len() as u64),
            Body::Following(n) => RequestFraming::Length(n),
            Body::Chunked => RequestFraming::Chunked,
        }
    }
}

/// How a request body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No framing header and no body.
    None,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// RFC 9110 §8.6: a user agent should send `Content-Length` for methods that define a meaning
/// for content, even when it is empty, so the server need not wait for a body.
fn expects_content(method: &Method) -> bool {
    *method == Method::POST || *method == Method::PUT || *method == Method::PATCH
}

/// Appends a request head to `out`.
///
/// `host` is used for the `Host` header unless `headers` has one. The caller's headers are
/// written in map order and never changed; `Content-Length` / `Transfer-Encoding` come only from
/// `framing`.
///
/// # Errors
///
/// A [`RequestError`] when the target, a header name or a header value contains bytes that
/// would let it escape its field (CR, LF, NUL, other controls), or when `headers` carries a
/// framing header. `out` is unchanged then.
pub fn encode_request_head(
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    host: &HeaderValue,
    framing: RequestFraming,
    out: &mut Vec<u8>,
) -> Result<(), RequestError> {
    let head = Head {
        method,
        target,
        headers,
        host,
        proxy_authorization: None,
    };
    encode_head(&head, framing, out)
}

/// What a request head is made of: [`encode_request_head`]'s arguments, plus the proxy
/// credentials a request to a proxy carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head<'a> {
    pub(crate) method: &'a Method,
    /// Origin-form, absolute-form (to a forward proxy) or authority-form (`CONNECT`).
    pub(crate) target: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) host: &'a HeaderValue,
    /// `Proxy-Authorization` to add, unless `headers` has one (RFC 9110 §11.7.2); only for
    /// the proxy itself, never through a tunnel.
    pub(crate) proxy_authorization: Option<&'a HeaderValue>,
}

/// The one request head encoder (see [`encode_request_head`]).
pub(crate) fn encode_head(
    head: &Head<'_>,
    framing: RequestFraming,
    out: &mut Vec<u8>,
) -> Result<(), RequestError> {
    let Head {
        method,
        target,
        headers,
        host,
        proxy_authorization,
    } = *head;
    validate_target(target)?;
    // The caller's `Host` and `Proxy-Authorization` replace ours: noted in the same pass
    // (a lookup in the map hashes the name, which costs more than comparing each field).
    let (mut has_host, mut has_proxy_authorization) = (false, false);
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            return Err(RequestError::FramingHeader);
        }
        has_host |= name == HOST;
        has_proxy_authorization |= name == PROXY_AUTHORIZATION;
        validate_name(name.as_str().as_bytes())?;
        validate_value(value.as_bytes())?;
    }
    validate_value(host.as_bytes())?;
    let proxy_authorization = proxy_authorization.filter(|_| !has_proxy_authorization);
    if let Some(value) = proxy_authorization {
        validate_value(value.as_bytes())?;
    }

    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !has_host {
        put_header(out, b"host", host.as_bytes());
    }
    if let Some(value) = proxy_authorization {
        put_header(out, b"proxy-authorization", value.as_bytes());
    }
    for (name, value) in headers {
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => {
            let mut digits = [0u8; 20];
            put_header(out, b"content-length", format_u64(n, &mut digits));
        }
        RequestFraming::Chunked => put_header(out, b"transfer-encoding", b"chunked"),
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Builds the `Host` header value for `host:port` (RFC 9110 §7.2), bracketing IPv6 literals
/// and leaving out the default port 80.
///
/// # Errors
///
/// [`RequestError::InvalidHost`] when the host is empty or not a valid field value.
pub fn host_header(host: &str, port: u16) -> Result<HeaderValue, RequestError> {
    host_header_with_default(host, port, Some(80))
}

/// [`host_header`], leaving out `default_port` (443 for `https`; `None` keeps every port, as
/// a `CONNECT` target needs).
pub(crate) fn host_header_with_default(
    host: &str,
    port: u16,
    default_port: Option<u16>,
) -> Result<HeaderValue, RequestError> {
    let bracketed = host_needs_brackets(host)?;
    let text = match (bracketed, Some(port) == default_port) {
        (false, true) => host.to_owned(),
        (true, true) => format!("[{host}]"),
        (false, false) => format!("{host}:{port}"),
        (true, false) => format!("[{host}]:{port}"),
    };
    HeaderValue::from_str(&text).map_err(|_| RequestError::InvalidHost)
}

/// Checks that `host` is a host as a URL's authority has it (RFC 3986 §3.2.2): a name of
/// unreserved characters, percent-escapes and sub-delimiters, an IPv4 address, or an IPv6
/// address, bare or in brackets. Returns whether it is a bare IPv6 address, which a `Host`
/// header must bracket. Anything else — `@`, `:` outside an address, `/`, `?`, `#`, spaces,
/// controls — could make a server or proxy read another host out of the authority.
///
/// # Errors
///
/// [`RequestError::InvalidHost`] for anything else, an empty host included.
pub(crate) fn host_needs_brackets(host: &str) -> Result<bool, RequestError> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok(false),
            Err(_) => Err(RequestError::InvalidHost),
        };
    }
    if host.contains(':') {
        return match host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok(true),
            Err(_) => Err(RequestError::InvalidHost),
        };
    }
    let name_byte = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b);
    if host.is_empty() || !host.bytes().all(name_byte) {
        return Err(RequestError::InvalidHost);
    }
    Ok(false)
}

fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// RFC 9112 §3.2: origin-form and absolute-form targets are visible ASCII without spaces.
fn validate_target(target: &str) -> Result<(), RequestError> {
    let ok = !target.is_empty() && target.bytes().all(|b| b > b' ' && b < 0x7f);
    if ok {
        Ok(())
    } else {
        Err(RequestError::InvalidTarget)
    }
}

/// `http::HeaderName` is already a token; checked again because unchecked constructors exist.
fn validate_name(name: &[u8]) -> Result<(), RequestError> {
    let ok = !name.is_empty() && name.iter().all(|&b| is_tchar(b));
    if ok {
        Ok(())
    } else {
        Err(RequestError::InvalidHeaderName)
    }
}

/// RFC 9110 §5.5: field-value bytes are VCHAR, SP, HTAB or obs-text; never CR, LF or NUL.
fn validate_value(value: &[u8]) -> Result<(), RequestError> {
    let ok = value
        .iter()
        .all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f));
    if ok {
        Ok(())
    } else {
        Err(RequestError::InvalidHeaderValue)
    }
}

/// RFC 9110 §5.6.2 token characters.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(method: Method, target: &str, headers: &HeaderMap, body: Body<'_>) -> String {
        let host = host_header("example.test", 8080).expect("host");
        let mut out = Vec::new();
        encode_request_head(
            &method,
            target,
            headers,
            &host,
            body.framing(&method),
            &mut out,
        )
        .expect("encodes");
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn get_has_host_and_no_framing() {
        let head = encode(Method::GET, "/a?b=c", &HeaderMap::new(), Body::Empty);
        assert_eq!(
            head,
            "GET /a?b=c HTTP/1.1\r\nhost: example.test:8080\r\n\r\n"
        );
    }

    #[test]
    fn framing_follows_the_body() {
        let h = HeaderMap::new();
        assert!(encode(Method::PUT, "/", &h, Body::Empty).contains("content-length: 0\r\n"));
        assert!(encode(Method::PUT, "/", &h, Body::Bytes(b"abc")).contains("content-length: 3\r\n"));
        assert!(encode(Method::PUT, "/", &h, Body::Following(u64::MAX))
            .contains("content-length: 18446744073709551615\r\n"));
        assert!(
            encode(Method::POST, "/", &h, Body::Chunked).contains("transfer-encoding: chunked\r\n")
        );
        assert!(!encode(Method::DELETE, "/", &h, Body::Empty).contains("content-length"));
    }

    #[test]
    fn caller_host_wins_and_headers_are_not_mutated() {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("other"));
        h.insert("x-a", HeaderValue::from_static("1"));
        let before = h.clone();
        let head = encode(Method::PUT, "/", &h, Body::Bytes(b"xy"));
        assert_eq!(h, before);
        assert_eq!(head.matches("host:").count(), 1);
        assert!(head.contains("host: other\r\n"));
        assert!(!head.contains("content-md5"));
    }

    #[test]
    fn injection_is_rejected_before_any_byte() {
        let host = host_header("h", 80).expect("host");
        for target in ["", "/a b", "/a\r\nX: y", "/\0", "/\x7f", "/é"] {
            let mut out = Vec::new();
            let got = encode_request_head(
                &Method::GET,
                target,
                &HeaderMap::new(),
                &host,
                RequestFraming::None,
                &mut out,
            );
            assert_eq!(got, Err(RequestError::InvalidTarget), "{target:?}");
            assert!(out.is_empty());
        }
        let mut h = HeaderMap::new();
        h.insert("content-length", HeaderValue::from_static("5"));
        let mut out = Vec::new();
        let got = encode_request_head(&Method::GET, "/", &h, &host, RequestFraming::None, &mut out);
        assert_eq!(got, Err(RequestError::FramingHeader));
        assert!(out.is_empty());
    }

    #[test]
    fn header_value_bytes_are_checked() {
        // `http` refuses these in safe constructors (and panics on them in debug builds of the
        // unchecked one); the encoder checks again because release builds of the unchecked
        // constructor do not.
        for bad in [&b"a\r\nb"[..], b"a\nb", b"a\0b", b"\x01", b"\x7f"] {
            assert_eq!(validate_value(bad), Err(RequestError::InvalidHeaderValue));
        }
        assert_eq!(validate_value(b"a\tb \xff"), Ok(()));
        assert_eq!(validate_name(b"a:b"), Err(RequestError::InvalidHeaderName));
    }

    #[test]
    fn proxy_credentials_go_after_host_unless_the_caller_set_them() {
        let host = host_header("h", 8080).expect("host");
        let auth = HeaderValue::from_static("Basic dTpw");
        let encode = |headers: &HeaderMap| {
            let head = Head {
                method: &Method::GET,
                target: "http://h:8080/a",
                headers,
                host: &host,
                proxy_authorization: Some(&auth),
            };
            let mut out = Vec::new();
            encode_head(&head, RequestFraming::None, &mut out).expect("encodes");
            String::from_utf8(out).expect("ascii")
        };
        assert_eq!(
            encode(&HeaderMap::new()),
            "GET http://h:8080/a HTTP/1.1\r\nhost: h:8080\r\nproxy-authorization: Basic dTpw\r\n\r\n"
        );
        let mut own = HeaderMap::new();
        own.insert(PROXY_AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        let head = encode(&own);
        assert_eq!(head.matches("proxy-authorization").count(), 1);
        assert!(head.contains("proxy-authorization: Bearer t\r\n"));
    }

    #[test]
    fn host_header_forms() {
        assert_eq!(host_header("a.b", 80).expect("ok"), "a.b");
        assert_eq!(host_header("::1", 80).expect("ok"), "[::1]");
        assert_eq!(host_header("::1", 81).expect("ok"), "[::1]:81");
        assert_eq!(host_header("[::1]", 81).expect("ok"), "[::1]:81");
        assert_eq!(host_header("", 80), Err(RequestError::InvalidHost));
        assert_eq!(host_header("a\r\nb", 80), Err(RequestError::InvalidHost));
    }

    /// A host that would read as something else inside a URL's authority (user info, a
    /// port, a path, a query) is refused: through a forward proxy, `trusted.test@inner.test`
    /// would otherwise reach `inner.test`.
    #[test]
    fn hosts_that_change_an_authority_are_refused() {
        for bad in [
            "trusted.test@inner.test",
            "a:b",
            "a/b",
            "a?b",
            "a#b",
            "a b",
            "[a]",
            "[::1",
            "::1]",
            "[::1]:80",
            "[[::1]]",
            "\u{e9}.test",
        ] {
            assert_eq!(
                host_header(bad, 80),
                Err(RequestError::InvalidHost),
                "{bad:?}"
            );
        }
        for good in [
            "localhost",
            "127.0.0.1",
            "xn--bcher-kva.example",
            "under_score.test",
            "a~b.test",
            "%65xample.test",
            "fe80::1",
            "[2001:db8::1]",
        ] {
            assert!(host_header(good, 80).is_ok(), "{good:?}");
        }
    }
}
