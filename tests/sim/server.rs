//! The server model's protocol half: a strict parser of the requests the client sends (any
//! byte out of place is a mis-framed request, which the checker reports), and the responses
//! the server sends, generated from the seed, each with the body it carries.

use super::rng::Rng;

/// What the parser found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReqEvent {
    /// A request head: its id (from its target `/r<id>`), method, whether it asks for
    /// `100 Continue`, and whether a body follows.
    Head {
        id: usize,
        method: String,
        expect_continue: bool,
        has_body: bool,
    },
    /// A request's body is complete.
    Body { id: usize, body: Vec<u8> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parsing {
    Head,
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    LastChunkEnd,
}

/// A strict incremental request parser.
#[derive(Debug)]
pub(crate) struct RequestParser {
    buf: Vec<u8>,
    state: Parsing,
    id: usize,
    body: Vec<u8>,
}

impl Default for RequestParser {
    fn default() -> Self {
        RequestParser {
            buf: Vec::new(),
            state: Parsing::Head,
            id: 0,
            body: Vec::new(),
        }
    }
}

impl RequestParser {
    /// Whether the parser is between requests with nothing buffered.
    pub(crate) fn is_idle(&self) -> bool {
        self.state == Parsing::Head && self.buf.is_empty()
    }

    /// Takes `bytes`; appends what completed to `out`. An error describes a mis-framed byte.
    pub(crate) fn feed(&mut self, bytes: &[u8], out: &mut Vec<ReqEvent>) -> Result<(), String> {
        self.buf.extend_from_slice(bytes);
        loop {
            let progressed = match self.state {
                Parsing::Head => self.head(out)?,
                Parsing::Length(left) => {
                    let n = (left as usize).min(self.buf.len());
                    self.body.extend(self.buf.drain(..n));
                    if left as usize == n {
                        self.finish(out);
                        true
                    } else {
                        self.state = Parsing::Length(left - n as u64);
                        false
                    }
                }
                Parsing::ChunkSize => match find_crlf(&self.buf) {
                    None => {
                        if self.buf.len() > 32 {
                            return Err(format!("chunk size line too long: {:?}", self.buf));
                        }
                        false
                    }
                    Some(end) => {
                        let line = std::str::from_utf8(&self.buf[..end])
                            .map_err(|_| "chunk size not ASCII".to_string())?;
                        let size = u64::from_str_radix(line, 16)
                            .map_err(|_| format!("bad chunk size line {line:?}"))?;
                        self.buf.drain(..end + 2);
                        self.state = if size == 0 {
                            Parsing::LastChunkEnd
                        } else {
                            Parsing::ChunkData(size)
                        };
                        true
                    }
                },
                Parsing::ChunkData(left) => {
                    let n = (left as usize).min(self.buf.len());
                    self.body.extend(self.buf.drain(..n));
                    self.state = if left as usize == n {
                        Parsing::ChunkDataEnd
                    } else {
                        Parsing::ChunkData(left - n as u64)
                    };
                    left as usize == n
                }
                Parsing::ChunkDataEnd | Parsing::LastChunkEnd => {
                    if self.buf.len() < 2 {
                        false
                    } else if &self.buf[..2] != b"\r\n" {
                        return Err(format!("no CRLF after chunk data: {:?}", &self.buf[..2]));
                    } else {
                        self.buf.drain(..2);
                        if self.state == Parsing::LastChunkEnd {
                            self.finish(out);
                        } else {
                            self.state = Parsing::ChunkSize;
                        }
                        true
                    }
                }
            };
            if !progressed || self.buf.is_empty() && self.state == Parsing::Head {
                return Ok(());
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<ReqEvent>) {
        out.push(ReqEvent::Body {
            id: self.id,
            body: std::mem::take(&mut self.body),
        });
        self.state = Parsing::Head;
    }

    fn head(&mut self, out: &mut Vec<ReqEvent>) -> Result<bool, String> {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut headers);
        let len = match req.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(false),
            Err(e) => return Err(format!("bad request head ({e}): {:?}", self.buf)),
        };
        let method = req.method.unwrap_or_default().to_string();
        let target = req.path.unwrap_or_default();
        let id = target
            .strip_prefix("/r")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("unexpected target {target:?}"))?;
        let mut length = None;
        let mut chunked = false;
        let mut expect_continue = false;
        for h in req.headers.iter() {
            let value = std::str::from_utf8(h.value).unwrap_or("");
            if h.name.eq_ignore_ascii_case("content-length") {
                if length.is_some() {
                    return Err("two Content-Length fields".into());
                }
                length = Some(value.parse::<u64>().map_err(|_| "bad Content-Length")?);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
                if !chunked {
                    return Err(format!("unexpected Transfer-Encoding {value:?}"));
                }
            } else if h.name.eq_ignore_ascii_case("expect") {
                expect_continue = value.eq_ignore_ascii_case("100-continue");
            }
        }
        if chunked && length.is_some() {
            return Err("Content-Length with chunked".into());
        }
        self.buf.drain(..len);
        self.id = id;
        self.body.clear();
        let has_body = chunked || length.is_some_and(|n| n > 0);
        out.push(ReqEvent::Head {
            id,
            method,
            expect_continue,
            has_body,
        });
        match (chunked, length) {
            (true, _) => self.state = Parsing::ChunkSize,
            (false, Some(n)) if n > 0 => self.state = Parsing::Length(n),
            _ => self.finish(out),
        }
        Ok(true)
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// A response the server model sends: its bytes on the wire and what the client must make of
/// them.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub(crate) status: u16,
    /// Interim responses, final head, framed body (and garbage, if any) as they go out.
    pub(crate) wire: Vec<u8>,
    /// Where the final head starts in `wire`.
    pub(crate) final_at: usize,
    /// Where the final response ends in `wire` (garbage may follow).
    pub(crate) final_end: usize,
    /// Where the body starts in `wire`.
    pub(crate) body_at: usize,
    /// The body the client must read.
    pub(crate) body: Vec<u8>,
    /// The server closes the connection once this went out.
    pub(crate) close_after: bool,
    /// The body ends when the connection closes.
    pub(crate) until_close: bool,
}

/// What the server may do wrong (or merely unusual) in a response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Latitude {
    /// Close-delimited bodies, `Connection: close`, garbage after a response.
    pub(crate) faults: bool,
}

/// Generates the response to a request of `method`; `status` forces a status (an early
/// refusal of an upload), which then closes the connection.
pub(crate) fn plan_response(
    rng: &mut Rng,
    method: &str,
    latitude: Latitude,
    forced: Option<u16>,
) -> Planned {
    let mut wire = Vec::new();
    for _ in 0..rng.pick(&[0, 0, 0, 0, 0, 0, 1, 1, 2]) {
        if rng.chance(300) {
            wire.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        } else {
            wire.extend_from_slice(
                b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
            );
        }
    }
    let final_at = wire.len();
    let head_request = method == "HEAD";
    let status = forced.unwrap_or_else(|| rng.pick(&[200, 200, 200, 201, 204, 304, 404, 500]));
    let mut close_after = forced.is_some();
    let no_body = head_request || status == 204 || status == 304;
    let size = rng.size();
    let body = if no_body { Vec::new() } else { rng.bytes(size) };
    let kind = if no_body {
        0
    } else if latitude.faults && rng.chance(80) {
        2 // until close
    } else if rng.chance(400) {
        1 // chunked
    } else {
        0 // Content-Length
    };
    let until_close = kind == 2;
    close_after |= until_close;
    if latitude.faults && rng.chance(80) {
        close_after = true;
    }
    let reason = rng.pick(&["OK", "", "Fine Thanks", "Whatever"]);
    wire.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
    if rng.chance(500) {
        wire.extend_from_slice(b"Server: sim\r\n");
    }
    if close_after && !until_close || until_close && rng.chance(500) {
        wire.extend_from_slice(b"Connection: close\r\n");
    }
    match kind {
        0 if status == 204 || status == 304 && rng.chance(700) => {}
        0 => {
            // A HEAD (or 304) response tells the length of a body it does not carry.
            let length = if no_body { size } else { body.len() };
            wire.extend_from_slice(format!("Content-Length: {length}\r\n").as_bytes());
        }
        1 => wire.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        _ => {}
    }
    wire.extend_from_slice(b"\r\n");
    let body_at = wire.len();
    if kind == 1 {
        chunk(rng, &body, &mut wire);
    } else {
        wire.extend_from_slice(&body);
    }
    let final_end = wire.len();
    if latitude.faults && !until_close && rng.chance(30) {
        // Bytes no request asked for; the server closes after them.
        wire.extend_from_slice(b"junk\x00");
        let junk = rng.range(0, 20);
        wire.extend(rng.bytes(junk));
        close_after = true;
    }
    Planned {
        status,
        wire,
        final_at,
        final_end,
        body_at,
        body,
        close_after,
        until_close,
    }
}

/// `body` in random chunks, with extensions and trailers now and then.
fn chunk(rng: &mut Rng, body: &[u8], wire: &mut Vec<u8>) {
    let mut rest = body;
    while !rest.is_empty() {
        let n = rng.range(1, rest.len().min(5000));
        let size = if rng.chance(500) {
            format!("{n:x}")
        } else {
            format!("{n:X}")
        };
        wire.extend_from_slice(size.as_bytes());
        if rng.chance(100) {
            wire.extend_from_slice(b";ext=\"v\"");
        }
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(&rest[..n]);
        wire.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    wire.extend_from_slice(b"0");
    if rng.chance(100) {
        wire.extend_from_slice(b";last");
    }
    wire.extend_from_slice(b"\r\n");
    if rng.chance(150) {
        wire.extend_from_slice(b"X-Trailer: t\r\n");
    }
    wire.extend_from_slice(b"\r\n");
}
