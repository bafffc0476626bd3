//! Routing of the loopback server and the generated body pattern.

use crate::request;

/// Size of the read buffer and of each streamed response piece.
pub(super) const PIECE: usize = 64 * 1024;

static PATTERN: [u8; PIECE + 26] = {
    let mut p = [0u8; PIECE + 26];
    let mut i = 0;
    while i < p.len() {
        p[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    p
};

/// Byte `i` of every generated body: `b'a' + (i % 26)`.
pub fn pattern_byte(i: u64) -> u8 {
    b'a' + (i % 26) as u8
}

/// The first `len` bytes of the generated body pattern, as served by
/// `/bytes/N`, `/chunked/N` and `/close/N`.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64).map(pattern_byte).collect()
}

/// `len` (≤ 64 KiB) pattern bytes starting at body offset `offset`.
pub(super) fn pattern_at(offset: u64, len: usize) -> &'static [u8] {
    let start = (offset % 26) as usize;
    &PATTERN[start..start + len]
}

/// What a request asks for (see the crate docs for the routes).
#[derive(Clone, Copy)]
pub(super) enum Route {
    Bytes(u64),
    Chunked(u64, u64),
    Close(u64),
    Status(u16),
    Sink,
    Echo,
    Document,
}

fn num(s: &[u8]) -> Option<u64> {
    request::parse_u64(s)
}

pub(super) fn route(method: &[u8], path: &[u8]) -> Route {
    let upload = method == b"POST" || method == b"PUT";
    if upload && path == b"/echo" {
        return Route::Echo;
    }
    if let Some(code) = path.strip_prefix(b"/status/").and_then(num) {
        if (200..=599).contains(&code) {
            return Route::Status(code as u16);
        }
    }
    if upload {
        return Route::Sink;
    }
    if let Some(n) = path.strip_prefix(b"/bytes/").and_then(num) {
        return Route::Bytes(n);
    }
    if let Some(n) = path.strip_prefix(b"/close/").and_then(num) {
        return Route::Close(n);
    }
    if let Some(rest) = path.strip_prefix(b"/chunked/") {
        let mut it = rest.splitn(2, |&b| b == b'/');
        match (it.next().and_then(num), it.next().map(num)) {
            (Some(n), None) => return Route::Chunked(n, 1000),
            (Some(n), Some(Some(k))) if k > 0 => return Route::Chunked(n, k),
            _ => {}
        }
    }
    Route::Document
}

pub(super) fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
