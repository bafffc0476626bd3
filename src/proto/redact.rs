//! Secrets kept out of logs: which header fields carry credentials, and a redactor that finds
//! their values in raw HTTP/1.1 bytes however the stream is split.
//!
//! Sans-IO like the rest of `proto`: bytes in, one "secret or not" per byte out. Only the
//! logging code uses it; nothing here changes what goes on the wire.

/// Header fields whose values dugong never logs, lowercase: credentials going out, and
/// cookies both ways.
pub(crate) const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// What a log shows instead of a secret value.
pub(crate) const REDACTED: &str = "<redacted>";

/// Whether a header field with this name has its value redacted in logs (any case).
pub(crate) fn is_secret(name: &[u8]) -> bool {
    SECRET_HEADERS
        .iter()
        .any(|secret| secret.as_bytes().eq_ignore_ascii_case(name))
}

/// Finds the values of [`SECRET_HEADERS`] fields in one direction of a connection, fed one
/// byte at a time, so a field split across two sends or receives is still found.
///
/// It looks at line starts only: any line that begins with a secret field's name and a colon
/// has the rest of its line (after optional whitespace) marked secret. A body line that
/// happens to look like such a field is redacted too, which only ever hides more than needed.
/// Obsolete line folding is not followed: dugong never sends it, and the response parser
/// rejects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Redactor {
    /// At the start of a line.
    #[default]
    LineStart,
    /// The line so far is the first `len` bytes of `SECRET_HEADERS[which]` (any case).
    Name { which: usize, len: usize },
    /// After the colon of a secret field, before its value.
    BeforeValue,
    /// Inside a secret value, until the end of its line.
    Value,
    /// Anywhere else, until the end of the line.
    Rest,
}

impl Redactor {
    /// Takes the next byte of the stream; returns whether it belongs to a secret value.
    pub(crate) fn is_secret_byte(&mut self, b: u8) -> bool {
        let (next, secret) = match (*self, b) {
            (_, b'\n') => (Redactor::LineStart, false),
            (Redactor::Value, b'\r') | (Redactor::BeforeValue, b'\r') => (Redactor::Rest, false),
            (Redactor::Value, _) => (Redactor::Value, true),
            (Redactor::BeforeValue, b' ' | b'\t') => (Redactor::BeforeValue, false),
            (Redactor::BeforeValue, _) => (Redactor::Value, true),
            (Redactor::LineStart, _) => (Self::name_start(b), false),
            (Redactor::Name { which, len }, _) => (Self::name_next(which, len, b), false),
            (Redactor::Rest, _) => (Redactor::Rest, false),
        };
        *self = next;
        secret
    }

    /// After the first byte of a line. The secret names start with distinct letters, so one
    /// byte picks the only candidate.
    fn name_start(b: u8) -> Redactor {
        SECRET_HEADERS
            .iter()
            .position(|name| name.as_bytes()[0].eq_ignore_ascii_case(&b))
            .map_or(Redactor::Rest, |which| Redactor::Name { which, len: 1 })
    }

    /// After `len` bytes matched the name `SECRET_HEADERS[which]`, the next byte `b`.
    fn name_next(which: usize, len: usize, b: u8) -> Redactor {
        let name = SECRET_HEADERS[which].as_bytes();
        match name.get(len) {
            None if b == b':' => Redactor::BeforeValue,
            Some(expected) if expected.eq_ignore_ascii_case(&b) => Redactor::Name {
                which,
                len: len + 1,
            },
            _ => Redactor::Rest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stream with every secret byte replaced by `*`, fed in pieces cut at `cuts`.
    fn masked(stream: &[u8], cuts: &[usize]) -> String {
        let mut redactor = Redactor::default();
        let mut out = Vec::new();
        let mut start = 0;
        for end in cuts.iter().copied().chain([stream.len()]) {
            for &b in &stream[start..end] {
                out.push(if redactor.is_secret_byte(b) { b'*' } else { b });
            }
            start = end;
        }
        String::from_utf8(out).expect("ASCII test input")
    }

    const REQUEST: &str = "GET /cookie: HTTP/1.1\r\nHost: h\r\nAuthorization: Basic dXNlcg==\r\n\
        X-Authorization: shown\r\nproxy-AUTHORIZATION:\tBearer t\r\nCookie: a=1; b=2\r\n\
        Cookies: shown\r\nAccept: */*\r\n\r\n";
    const REQUEST_MASKED: &str = "GET /cookie: HTTP/1.1\r\nHost: h\r\nAuthorization: ********\
        ******\r\nX-Authorization: shown\r\nproxy-AUTHORIZATION:\t********\r\nCookie: ********\
        \r\nCookies: shown\r\nAccept: */*\r\n\r\n";

    #[test]
    fn secret_values_are_found_and_nothing_else() {
        assert_eq!(masked(REQUEST.as_bytes(), &[]), REQUEST_MASKED);
        let response = "HTTP/1.1 200 OK\nSet-Cookie: id=7\nContent-Length: 0\n\n";
        assert_eq!(
            masked(response.as_bytes(), &[]),
            "HTTP/1.1 200 OK\nSet-Cookie: ****\nContent-Length: 0\n\n"
        );
    }

    #[test]
    fn every_split_point_gives_the_same_mask() {
        let stream = REQUEST.as_bytes();
        for cut in 0..=stream.len() {
            assert_eq!(masked(stream, &[cut]), REQUEST_MASKED, "cut at {cut}");
        }
        let every_byte: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(masked(stream, &every_byte), REQUEST_MASKED);
    }

    #[test]
    fn an_empty_value_hides_nothing_and_ends_at_its_line() {
        assert_eq!(
            masked(b"Cookie:\r\nCookie:   \r\nX: y\r\n", &[]),
            "Cookie:\r\nCookie:   \r\nX: y\r\n"
        );
    }

    #[test]
    fn names_match_in_any_case() {
        assert!(is_secret(b"Authorization"));
        assert!(is_secret(b"set-cookie"));
        assert!(is_secret(b"PROXY-AUTHORIZATION"));
        assert!(!is_secret(b"cookies"));
        assert!(!is_secret(b"x-authorization"));
    }
}
