//! A pipelined response stream decoded with `ResponseReader`, fed whole and in pieces.
//!
//! Input: a header, then the stream.
//!   0: max body step for the split run (0 means unbounded)
//!   1: bits 0-3: number of cut points; bits 4-5: limits; bit 6: the split run looks for
//!      interim responses with `poll_interim` before each `read_head`, as a connection waiting
//!      for `100 Continue` does
//!   2-5: 16 request methods, 2 bits each (GET, HEAD, PUT, CONNECT), first in the low bits
//!   then 2 bytes (little endian, modulo the stream length + 1) per cut point
//!
//! Each response is read the way the connection driver does: head (dropping interim
//! responses), then body steps, then the next head; after the last byte the server "closes"
//! (`end_at_close`). Checks: no panic, and the responses (status, body bytes, complete?) and
//! the first error are identical whether the stream arrives in one piece (unbounded body
//! steps) or in the pieces (bounded steps), and so are the bytes consumed when no error
//! stopped the stream. (After an error they may differ: a chunked trailer section is taken
//! piece by piece but parsed only at its end, so the split run has consumed part of what the
//! whole run refused in one call. The connection is unusable either way.)
#![no_main]

use dugong::proto::{HeadStep, Limits, ProtocolError, ResponseReader};
use http::Method;
use libfuzzer_sys::fuzz_target;

const MAX_RESPONSES: usize = 16;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Progress {
    status: Option<u16>,
    body: Vec<u8>,
    done: bool,
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    responses: Vec<Progress>,
    /// Bytes taken from the stream; `None` after an error.
    consumed: Option<usize>,
    error: Option<ProtocolError>,
}

struct Driver {
    reader: ResponseReader,
    buf: Vec<u8>,
    consumed: usize,
    max: usize,
    poll_interim: bool,
}

impl Driver {
    fn take(&mut self, n: usize) {
        self.buf.drain(..n);
        self.consumed += n;
    }

    /// Advances one response as far as the buffered bytes allow.
    fn advance(&mut self, method: &Method, p: &mut Progress) -> Result<(), ProtocolError> {
        while !p.done {
            if p.status.is_none() {
                if self.poll_interim {
                    // A final head is reported but left for `read_head`.
                    if let HeadStep::Interim { len, .. } =
                        self.reader.poll_interim(&self.buf, method)?
                    {
                        self.take(len);
                        continue;
                    }
                }
                match self.reader.read_head(&self.buf, method)? {
                    HeadStep::Partial => return Ok(()),
                    HeadStep::Interim { len, .. } => self.take(len),
                    HeadStep::Final { head, len, .. } => {
                        self.take(len);
                        p.status = Some(head.status.as_u16());
                        p.done = !self.reader.has_body();
                    }
                }
            } else {
                let step = self.reader.read_body(&self.buf, self.max)?;
                assert!(step.consumed <= self.buf.len());
                assert!(step.data.start <= step.data.end && step.data.end <= step.consumed);
                assert!(step.data.len() <= self.max);
                p.body.extend_from_slice(&self.buf[step.data.clone()]);
                self.take(step.consumed);
                p.done = step.complete;
                if step.consumed == 0 && !step.complete {
                    assert!(self.buf.is_empty(), "body stalled with bytes buffered");
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

fn decode(
    pieces: &[&[u8]],
    methods: &[Method],
    limits: Limits,
    max: usize,
    poll_interim: bool,
) -> Outcome {
    let mut d = Driver {
        reader: ResponseReader::new(limits),
        buf: Vec::new(),
        consumed: 0,
        max,
        poll_interim,
    };
    let mut out = vec![Progress::default()];
    let mut error = None;
    'feed: for piece in pieces {
        d.buf.extend_from_slice(piece);
        while out.len() <= methods.len() {
            let i = out.len() - 1;
            if let Err(e) = d.advance(&methods[i], &mut out[i]) {
                error = Some(e);
                break 'feed;
            }
            if !out[i].done {
                break;
            }
            out.push(Progress::default());
        }
    }
    if error.is_none() {
        // The server closes the connection after the last byte.
        if let Some(last) = out.last_mut() {
            if last.status.is_some() && !last.done && d.reader.end_at_close() {
                last.done = true;
            }
        }
    }
    if out.last() == Some(&Progress::default()) {
        out.pop();
    }
    Outcome {
        responses: out,
        consumed: error.is_none().then_some(d.consumed),
        error,
    }
}

fn limits(sel: u8) -> Limits {
    match sel & 3 {
        0 => Limits::default(),
        1 => with_limits(|l| {
            l.max_head_bytes = 40;
            l.max_headers = 1;
            l.max_interim = 0;
            l.max_trailer_bytes = 8;
        }),
        2 => with_limits(|l| {
            l.max_head_bytes = 300;
            l.max_headers = 4;
            l.max_interim = 2;
            l.max_trailer_bytes = 64;
        }),
        _ => with_limits(|l| {
            l.max_head_bytes = 1024;
            l.max_headers = 100;
            l.max_interim = 8;
            l.max_trailer_bytes = 1;
        }),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let (hdr, rest) = data.split_at(6);
    let max = match hdr[0] {
        0 => usize::MAX,
        m => usize::from(m),
    };
    let ncuts = usize::from(hdr[1] & 15);
    let limits = limits(hdr[1] >> 4);
    let bits = u32::from_le_bytes([hdr[2], hdr[3], hdr[4], hdr[5]]);
    let methods: Vec<Method> = (0..MAX_RESPONSES)
        .map(|i| match (bits >> (2 * i)) & 3 {
            0 => Method::GET,
            1 => Method::HEAD,
            2 => Method::PUT,
            _ => Method::CONNECT,
        })
        .collect();
    if rest.len() < 2 * ncuts {
        return;
    }
    let (cut_bytes, stream) = rest.split_at(2 * ncuts);
    let mut cuts: Vec<usize> = cut_bytes
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::with_capacity(ncuts + 1);
    let mut start = 0;
    for c in cuts {
        pieces.push(&stream[start..c]);
        start = c;
    }
    pieces.push(&stream[start..]);

    let whole = decode(&[stream], &methods, limits, usize::MAX, false);
    let split = decode(&pieces, &methods, limits, max, hdr[1] & 0x40 != 0);
    assert_eq!(whole, split, "whole and split decoding differ");

    let consumed = whole.consumed.unwrap_or(stream.len());
    assert!(consumed <= stream.len());
    let body_bytes: usize = whole.responses.iter().map(|p| p.body.len()).sum();
    assert!(body_bytes <= consumed);
    for (p, m) in whole.responses.iter().zip(&methods) {
        if *m == Method::HEAD || matches!(p.status, Some(204 | 304)) {
            assert!(p.body.is_empty(), "{m} {:?} has a body", p.status);
        }
    }
});

/// The default limits, changed by `set` (`Limits` is `#[non_exhaustive]`).
fn with_limits(set: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    set(&mut limits);
    limits
}
