//! `encode_request_head` on arbitrary methods, targets, hosts and header fields.
//!
//! Input: an 11-byte header, then length-prefixed fields (a length byte, then that many bytes,
//! cut short at the end of the input): method, target, host, then header name/value pairs.
//!   0: bits 0-1 framing (None, Length(n), Chunked, Length(n % 65536)); bit 2: the host is a
//!      raw `HeaderValue` instead of `host_header(host, port)`
//!   1-2: port (little endian), 3-10: n (little endian)
//! The method goes through `Method::from_bytes`, the target is read as UTF-8 (lossily), and
//! pairs that `http` refuses are skipped, as are invalid methods and hosts.
//!
//! Checks: the result is exactly the error the documented rules give (target, then each field
//! in map order, then the host), and `out` is untouched then; otherwise the bytes appended are
//! one request head that httparse parses completely into the same method and target, with
//! every given field (names case-insensitively, values as a recipient sees them: without
//! leading and trailing whitespace), the host unless given, and exactly the framing header;
//! no line holds a CR or LF, and every field line is byte-exact `name: value`.
#![no_main]

use dugong::proto::{encode_request_head, host_header, RequestError, RequestFraming};
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, rest) = self.0.split_first()?;
        let (field, rest) = rest.split_at(usize::from(len).min(rest.len()));
        self.0 = rest;
        Some(field)
    }
}

fn valid_target(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| (0x21..0x7f).contains(&b))
}

fn valid_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
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

/// The error the documented rules give, in the documented order.
fn expected_error(target: &str, headers: &HeaderMap, host: &HeaderValue) -> Option<RequestError> {
    if !valid_target(target) {
        return Some(RequestError::InvalidTarget);
    }
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            return Some(RequestError::FramingHeader);
        }
        if !valid_value(value.as_bytes()) {
            return Some(RequestError::InvalidHeaderValue);
        }
    }
    if !valid_value(host.as_bytes()) {
        return Some(RequestError::InvalidHeaderValue);
    }
    None
}

fn line(name: &[u8], value: &[u8]) -> Vec<u8> {
    [name, b": ", value].concat()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 11 {
        return;
    }
    let (hdr, rest) = data.split_at(11);
    let n = u64::from_le_bytes(hdr[3..11].try_into().expect("8 bytes"));
    let framing = match hdr[0] & 3 {
        0 => RequestFraming::None,
        1 => RequestFraming::Length(n),
        2 => RequestFraming::Chunked,
        _ => RequestFraming::Length(n % 65536),
    };
    let mut fields = Fields(rest);
    let (Some(method), Some(target), Some(host)) = (fields.next(), fields.next(), fields.next())
    else {
        return;
    };
    let Ok(method) = Method::from_bytes(method) else {
        return;
    };
    let target = String::from_utf8_lossy(target);
    let host = if hdr[0] & 4 != 0 {
        HeaderValue::from_bytes(host).ok()
    } else {
        let port = u16::from_le_bytes([hdr[1], hdr[2]]);
        host_header(&String::from_utf8_lossy(host), port).ok()
    };
    let Some(host) = host else {
        return;
    };
    let mut headers = HeaderMap::new();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }

    const PREFIX: &[u8] = b"earlier bytes\r\n";
    let mut out = PREFIX.to_vec();
    let got = encode_request_head(&method, &target, &headers, &host, framing, &mut out);
    let want = expected_error(&target, &headers, &host);
    assert_eq!(
        got.err(),
        want,
        "target {target:?}, headers {headers:?}, host {host:?}"
    );
    if want.is_some() {
        assert_eq!(out, PREFIX, "output written on error");
        return;
    }
    assert!(out.starts_with(PREFIX), "earlier output changed");
    let wire = &out[PREFIX.len()..];

    // Lines: CRLF-terminated, no CR or LF inside, one empty line at the end.
    assert!(wire.ends_with(b"\r\n\r\n"), "{wire:?}");
    let lines: Vec<&[u8]> = wire[..wire.len() - 2]
        .split_inclusive(|&b| b == b'\n')
        .map(|l| {
            l.strip_suffix(b"\r\n")
                .unwrap_or_else(|| panic!("bare LF in {wire:?}"))
        })
        .collect();
    for l in &lines {
        assert!(
            !l.is_empty() && !l.contains(&b'\r'),
            "bad line {l:?} in {wire:?}"
        );
    }
    assert_eq!(
        lines[0],
        [
            method.as_str().as_bytes(),
            b" ",
            target.as_bytes(),
            b" HTTP/1.1"
        ]
        .concat()
    );

    // Field lines, byte-exact: the caller's in map order, plus host and framing.
    let given: Vec<Vec<u8>> = headers
        .iter()
        .map(|(n, v)| line(n.as_str().as_bytes(), v.as_bytes()))
        .collect();
    let mut expect = given.clone();
    if !headers.contains_key(HOST) {
        expect.push(line(b"host", host.as_bytes()));
    }
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => expect.push(line(b"content-length", n.to_string().as_bytes())),
        RequestFraming::Chunked => expect.push(line(b"transfer-encoding", b"chunked")),
    }
    let mut written: Vec<Vec<u8>> = lines[1..].iter().map(|l| l.to_vec()).collect();
    let in_order: Vec<&Vec<u8>> = written.iter().filter(|l| given.contains(l)).collect();
    let mut given_iter = given.iter();
    for l in in_order {
        assert!(
            given_iter.any(|g| g == l),
            "caller's fields out of map order in {wire:?}"
        );
    }
    written.sort();
    expect.sort();
    assert_eq!(written, expect, "field lines of {wire:?}");

    // A strict parser reads the same request.
    let mut slots = vec![httparse::EMPTY_HEADER; headers.len() + 4];
    let mut req = httparse::Request::new(&mut slots);
    let parsed = req.parse(wire);
    assert_eq!(
        parsed,
        Ok(httparse::Status::Complete(wire.len())),
        "{wire:?}"
    );
    assert_eq!(req.method, Some(method.as_str()));
    assert_eq!(req.path, Some(&*target));
    assert_eq!(req.version, Some(1));
    let mut seen: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    let mut want_fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), trim_ows(v.as_bytes()).to_vec()))
        .collect();
    if !headers.contains_key(HOST) {
        want_fields.push(("host".into(), trim_ows(host.as_bytes()).to_vec()));
    }
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => {
            want_fields.push(("content-length".into(), n.to_string().into()))
        }
        RequestFraming::Chunked => {
            want_fields.push(("transfer-encoding".into(), b"chunked".to_vec()))
        }
    }
    seen.sort();
    want_fields.sort();
    assert_eq!(seen, want_fields, "{wire:?}");
});
