//! Where a connection goes: a scheme, a host and a port, given as parts or read from a URL
//! (RFC 3986 §3, only what an HTTP client needs: no user info, no fragments kept).

use http::HeaderValue;

use super::request::{host_header_with_default, host_needs_brackets};
use super::RequestError;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// Plain HTTP, port 80 by default.
    Http,
    /// HTTP over TLS, port 443 by default.
    Https,
}

impl Scheme {
    /// The port a URL without one means.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A scheme, host and port: what one connection talks to.
///
/// ```
/// use dugong::proto::{Origin, Scheme};
///
/// let (origin, target) = Origin::parse_url("https://[::1]:8443/a/b?c=d#frag")?;
/// assert_eq!(origin, Origin::new(Scheme::Https, "::1", 8443));
/// assert_eq!(target, "/a/b?c=d");
/// let (origin, target) = Origin::parse_url("http://example.com")?;
/// assert_eq!((origin.port, target.as_str()), (80, "/"));
/// # Ok::<(), dugong::RequestError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// A name or an IP address (an IPv6 literal without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Origin {
    /// An origin from its parts; an IPv6 literal may be given with or without brackets.
    pub fn new(scheme: Scheme, host: &str, port: u16) -> Self {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Origin {
            scheme,
            host: bare.to_owned(),
            port,
        }
    }

    /// Reads `scheme://host[:port][/path][?query][#fragment]`: the origin, and the request
    /// target (path and query; `/` when there is none; the fragment is dropped).
    ///
    /// # Errors
    ///
    /// [`RequestError::InvalidUrl`] for another scheme, user info, an empty host or one with
    /// characters a host cannot have (RFC 3986 §3.2.2), a bad port, or brackets around
    /// something other than an IPv6 address.
    pub fn parse_url(url: &str) -> Result<(Origin, String), RequestError> {
        let (scheme, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
            (Scheme::Http, rest)
        } else {
            return Err(RequestError::InvalidUrl);
        };
        // Byte scans (these are ASCII delimiters): a `char` pattern costs several times more
        // per byte, and `fetch` parses every URL of its command line.
        let end = rest
            .bytes()
            .position(|b| matches!(b, b'/' | b'?' | b'#'))
            .unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(RequestError::InvalidUrl);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(RequestError::InvalidUrl)?;
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(after.strip_prefix(':').ok_or(RequestError::InvalidUrl)?),
                ),
            }
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port {
            None | Some("") => scheme.default_port(),
            Some(digits) => super::framing::parse_decimal(digits.as_bytes())
                .and_then(|port| u16::try_from(port).ok())
                .ok_or(RequestError::InvalidUrl)?,
        };
        // Inside brackets only a bare IPv6 address; outside, a name or an IPv4 address.
        if host_needs_brackets(host) != Ok(authority.starts_with('[')) {
            return Err(RequestError::InvalidUrl);
        }
        let tail = &tail[..tail.bytes().position(|b| b == b'#').unwrap_or(tail.len())];
        let target = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            format!("/{tail}")
        };
        Ok((Origin::new(scheme, host, port), target))
    }

    /// The `Host` header value for this origin (the port left out when it is the scheme's
    /// default).
    ///
    /// # Errors
    ///
    /// [`RequestError::InvalidHost`] when the host is empty or not a valid field value.
    pub fn host_header(&self) -> Result<HeaderValue, RequestError> {
        host_header_with_default(&self.host, self.port, Some(self.scheme.default_port()))
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_origin_and_target() {
        let cases = [
            ("http://h", Scheme::Http, "h", 80, "/"),
            ("HTTPS://h:8443", Scheme::Https, "h", 8443, "/"),
            ("https://h/x/y?q=1", Scheme::Https, "h", 443, "/x/y?q=1"),
            ("http://h?q", Scheme::Http, "h", 80, "/?q"),
            ("http://h:/p#f", Scheme::Http, "h", 80, "/p"),
            ("http://[::1]/p", Scheme::Http, "::1", 80, "/p"),
            ("https://[fe80::1]:1/", Scheme::Https, "fe80::1", 1, "/"),
            (
                "http://127.0.0.1:65535",
                Scheme::Http,
                "127.0.0.1",
                65535,
                "/",
            ),
        ];
        for (url, scheme, host, port, target) in cases {
            let (origin, got) = Origin::parse_url(url).expect(url);
            assert_eq!(origin, Origin::new(scheme, host, port), "{url}");
            assert_eq!(got, target, "{url}");
        }
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in [
            "ftp://h/",
            "h/x",
            "http://",
            "http://:80/",
            "http://u@h/",
            "http://h:65536/",
            "http://h:+1/",
            "http://h:x/",
            "http://h:1x/",
            "http://h:99999999999999999999999/",
            "http://[::1/",
            "http://[::1]x/",
            "http://[h]/",
            "http://a b/",
            "http://h\n/",
            "http:// :80/",
            "http://h\\x/",
        ] {
            assert_eq!(
                Origin::parse_url(url),
                Err(RequestError::InvalidUrl),
                "{url}"
            );
        }
    }

    #[test]
    fn host_headers_leave_out_the_default_port() {
        let header = |scheme, host: &str, port| {
            Origin::new(scheme, host, port)
                .host_header()
                .expect("valid")
                .to_str()
                .expect("ascii")
                .to_owned()
        };
        assert_eq!(header(Scheme::Https, "h", 443), "h");
        assert_eq!(header(Scheme::Https, "h", 80), "h:80");
        assert_eq!(header(Scheme::Http, "h", 80), "h");
        assert_eq!(header(Scheme::Https, "::1", 443), "[::1]");
    }
}
