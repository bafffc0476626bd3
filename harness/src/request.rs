//! A tiny, strict HTTP/1.1 request-head parser used by the loopback server,
//! plus the head-boundary search shared with the scripted server.
//!
//! It borrows from the read buffer and never allocates.

/// Largest request head (or chunked trailer section) accepted, in bytes.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// `Content-Length: n` (0 when absent).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head, borrowing method and target from the buffer.
#[derive(Debug)]
pub(crate) struct RequestHead<'a> {
    pub(crate) method: &'a [u8],
    pub(crate) target: &'a [u8],
    pub(crate) body: BodyKind,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    pub(crate) expect_continue: bool,
    /// The client asked for the connection to end after this exchange.
    pub(crate) close: bool,
    /// Bytes of the buffer taken by the head, blank line included.
    pub(crate) len: usize,
}

/// Returns the length of the head at the start of `buf` (up to and including
/// the blank line, CRLF or bare LF), or `None` when it is not complete yet.
pub(crate) fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(pos) = buf[from..].iter().position(|&b| b == b'\n') {
        let i = from + pos;
        match buf.get(i + 1) {
            Some(b'\n') => return Some(i + 2),
            Some(b'\r') => match buf.get(i + 2) {
                Some(b'\n') => return Some(i + 3),
                Some(_) => {}
                None => return None,
            },
            Some(_) => {}
            None => return None,
        }
        from = i + 1;
    }
    None
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Splits `buf` into lines on LF, dropping one trailing CR from each.
fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

fn comma_tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

/// Parses a decimal `u64` made only of ASCII digits.
pub(crate) fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Parses a chunk-size line (without its line ending): hex size, then
/// optional whitespace and `;extensions`, which are ignored.
pub(crate) fn parse_chunk_size(line: &[u8]) -> Result<u64, &'static str> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err("bad chunk size");
    }
    let rest = trim_ows(&line[digits..]);
    if !rest.is_empty() && rest[0] != b';' {
        return Err("bad chunk size line");
    }
    let mut size = 0u64;
    for &b in &line[..digits] {
        // Every byte is a hex digit, so `to_digit` cannot fail.
        let d = char::from(b).to_digit(16).unwrap_or(0);
        size = (size << 4) | u64::from(d);
    }
    Ok(size)
}

/// Parses the request head at the start of `buf`, skipping blank lines
/// before the request line.
///
/// `Ok(None)` means more bytes are needed; `Err` means the request is
/// malformed (answer 400 and close).
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<RequestHead<'_>>, &'static str> {
    let skip = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let rest = &buf[skip..];
    let Some(end) = find_head_end(rest) else {
        return if rest.len() > MAX_HEAD {
            Err("request head too large")
        } else {
            Ok(None)
        };
    };
    if end > MAX_HEAD {
        return Err("request head too large");
    }
    let mut it = lines(&rest[..end]);
    let request_line = it.next().ok_or("empty head")?;
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("bad request line");
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err("bad method");
    }
    if target.is_empty() || !target.iter().all(|&b| b > b' ' && b < 0x7f) {
        return Err("bad request target");
    }
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        _ => return Err("unsupported HTTP version"),
    };

    let mut length: Option<u64> = None;
    let mut te_seen = false;
    let mut chunked_last = false;
    let mut expect_continue = false;
    let mut close = false;
    let mut keep_alive = false;
    for line in it {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err("obsolete line folding");
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or("header without colon")?;
        let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err("bad header name");
        }
        if value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
            return Err("bad header value");
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_u64(value).ok_or("bad content-length")?;
            if length.is_some_and(|old| old != n) {
                return Err("conflicting content-length");
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            for coding in comma_tokens(value) {
                if chunked_last {
                    return Err("chunked is not the last transfer coding");
                }
                te_seen = true;
                chunked_last = coding.eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in comma_tokens(value) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue |= http11 && value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    let body = match (te_seen, length) {
        (true, Some(_)) => return Err("both transfer-encoding and content-length"),
        (true, None) if chunked_last => BodyKind::Chunked,
        (true, None) => return Err("unsupported transfer-encoding"),
        (false, n) => BodyKind::Length(n.unwrap_or(0)),
    };
    Ok(Some(RequestHead {
        method,
        target,
        body,
        expect_continue,
        close: close || (!http11 && !keep_alive),
        len: skip + end,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> RequestHead<'_> {
        match parse_head(s.as_bytes()) {
            Ok(Some(h)) => h,
            other => panic!("{s:?} gave {other:?}"),
        }
    }

    #[test]
    fn finds_head_end_crlf_and_lf() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nrest"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r"), None);
    }

    #[test]
    fn parses_a_simple_request() {
        let h = head("GET /bytes/10 HTTP/1.1\r\nHost: x\r\n\r\nNEXT");
        assert_eq!(h.method, b"GET");
        assert_eq!(h.target, b"/bytes/10");
        assert_eq!(h.body, BodyKind::Length(0));
        assert!(!h.close && !h.expect_continue);
        assert_eq!(h.len, 35);
    }

    #[test]
    fn parses_body_framing_and_flags() {
        let h = head("PUT /x HTTP/1.1\r\nContent-Length: 42\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n");
        assert_eq!(h.body, BodyKind::Length(42));
        assert!(h.expect_continue && h.close);
        let h = head("POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(h.body, BodyKind::Chunked);
        let h = head("\r\nGET / HTTP/1.0\r\n\r\n");
        assert!(h.close);
        assert_eq!(h.len, 20);
        let h = head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(!h.close);
    }

    #[test]
    fn rejects_malformed_heads() {
        for bad in [
            "GET  / HTTP/1.1\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
        ] {
            assert!(parse_head(bad.as_bytes()).is_err(), "{bad:?} accepted");
        }
        assert!(parse_head(&vec![b'a'; MAX_HEAD + 1]).is_err());
    }

    #[test]
    fn parses_chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1aF"), Ok(0x1af));
        assert_eq!(parse_chunk_size(b"10 ;ext=1"), Ok(16));
        assert!(parse_chunk_size(b"").is_err());
        assert!(parse_chunk_size(b"x").is_err());
        assert!(parse_chunk_size(b"10x").is_err());
        assert!(parse_chunk_size(b"11111111111111111").is_err());
    }
}
