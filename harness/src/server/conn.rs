//! One loopback-server connection: parse pipelined requests, read their
//! bodies, batch their responses.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::routes::{pattern_at, reason, route, Route, PIECE};
use super::{ServerOptions, Stats};
use crate::net::{self, Shared};
use crate::request::{self, BodyKind, MAX_HEAD};

/// Longest chunk-size line accepted in a chunked request body.
const MAX_CHUNK_LINE: usize = 4096;
/// Upper bound on the lingering close (draining the client after our FIN).
const LINGER: Duration = Duration::from_secs(2);

pub(super) fn serve(stream: TcpStream, shared: &Arc<Shared>, stats: &Stats, opts: &ServerOptions) {
    let _reg = shared.registry.register(&[&stream]);
    if let Err(e) = net::configure(&stream, true) {
        shared.errors.push(format!("configuring connection: {e}"));
        return;
    }
    let mut conn = Conn {
        stream,
        buf: vec![0; PIECE],
        start: 0,
        end: 0,
        out: Vec::with_capacity(PIECE),
        target: Vec::new(),
        echo: Vec::new(),
        stats,
        limit: opts.max_requests_per_connection.map(|n| n.max(1)),
        responses: 0,
    };
    match conn.run() {
        Ok(Ending::PeerClosed) => {}
        Ok(Ending::WeClose) => conn.linger_close(),
        Err(Stop::Bad(why)) => {
            shared.errors.push(format!("400 sent: {why}"));
            conn.out.extend_from_slice(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            conn.stats.served.fetch_add(1, Ordering::Relaxed);
            conn.linger_close();
        }
        Err(Stop::Io(e)) if net::is_timeout(&e) || net::is_disconnect(&e) => {}
        Err(Stop::Io(e)) => shared.errors.push(format!("connection: {e}")),
    }
}

enum Stop {
    Io(io::Error),
    /// Malformed request: answer 400 and close.
    Bad(&'static str),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

enum Ending {
    /// The client closed (or half-closed) between requests.
    PeerClosed,
    /// A response said `Connection: close`.
    WeClose,
}

struct Conn<'s> {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    target: Vec<u8>,
    echo: Vec<u8>,
    stats: &'s Stats,
    limit: Option<usize>,
    responses: usize,
}

impl Conn<'_> {
    fn run(&mut self) -> Result<Ending, Stop> {
        loop {
            let parsed = request::parse_head(&self.buf[self.start..self.end]).map_err(Stop::Bad)?;
            let Some(head) = parsed else {
                if !self.fill()? {
                    return Ok(Ending::PeerClosed);
                }
                continue;
            };
            // Origin-form path: drop any scheme/authority and the query.
            let mut target = head.target;
            if let Some(rest) = target.strip_prefix(b"http://") {
                let slash = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
                target = &rest[slash..];
            }
            let path = target.split(|&b| b == b'?').next().unwrap_or(target);
            let route = route(head.method, path);
            let head_only = head.method == b"HEAD";
            let (body, expect, client_close) = (head.body, head.expect_continue, head.close);
            self.target.clear();
            self.target.extend_from_slice(target);
            self.start += head.len;

            let has_body = body != BodyKind::Length(0);
            if expect && has_body {
                self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            self.echo.clear();
            let echo = matches!(route, Route::Echo);
            let (count, sum) = match body {
                BodyKind::Length(n) => self.read_body(n, echo, 0, 0)?,
                BodyKind::Chunked => self.read_chunked(echo)?,
            };

            self.responses += 1;
            let close = client_close
                || matches!(route, Route::Close(_))
                || self.limit.is_some_and(|l| self.responses >= l);
            self.respond(route, head_only, close, count, sum)?;
            self.stats.served.fetch_add(1, Ordering::Relaxed);
            if close {
                return Ok(Ending::WeClose);
            }
        }
    }

    /// Flushes pending output, then reads more; `Ok(false)` on EOF.
    fn fill(&mut self) -> Result<bool, Stop> {
        self.flush()?;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < 2 * MAX_HEAD {
                self.buf.resize(self.buf.len() * 2, 0);
            } else {
                return Err(Stop::Bad("request head too large"));
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n > 0)
    }

    fn fill_or_eof(&mut self) -> Result<(), Stop> {
        if self.fill()? {
            Ok(())
        } else {
            Err(Stop::Io(io::ErrorKind::UnexpectedEof.into()))
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// Consumes `n` body bytes, counting and summing them (and keeping
    /// them when echoing).
    fn read_body(
        &mut self,
        mut n: u64,
        echo: bool,
        mut count: u64,
        mut sum: u64,
    ) -> Result<(u64, u64), Stop> {
        while n > 0 {
            if self.start == self.end {
                self.fill_or_eof()?;
            }
            let k = (self.end - self.start).min(usize::try_from(n).unwrap_or(usize::MAX));
            let piece = &self.buf[self.start..self.start + k];
            sum = piece.iter().fold(sum, |s, &b| s.wrapping_add(u64::from(b)));
            if echo {
                self.echo.extend_from_slice(piece);
            }
            self.start += k;
            count += k as u64;
            n -= k as u64;
        }
        Ok((count, sum))
    }

    /// Reads one line (without its CRLF/LF) and returns its range in `buf`.
    fn read_line(&mut self, max: usize) -> Result<(usize, usize), Stop> {
        loop {
            let avail = &self.buf[self.start..self.end];
            if let Some(pos) = avail.iter().position(|&b| b == b'\n') {
                let (s, mut e) = (self.start, self.start + pos);
                if e > s && self.buf[e - 1] == b'\r' {
                    e -= 1;
                }
                self.start += pos + 1;
                return Ok((s, e));
            }
            if avail.len() > max {
                return Err(Stop::Bad("line too long in chunked body"));
            }
            self.fill_or_eof()?;
        }
    }

    fn read_chunked(&mut self, echo: bool) -> Result<(u64, u64), Stop> {
        let (mut count, mut sum) = (0, 0);
        loop {
            let (s, e) = self.read_line(MAX_CHUNK_LINE)?;
            let size = request::parse_chunk_size(&self.buf[s..e]).map_err(Stop::Bad)?;
            if size == 0 {
                break;
            }
            (count, sum) = self.read_body(size, echo, count, sum)?;
            let (s, e) = self.read_line(2)?;
            if s != e {
                return Err(Stop::Bad("missing CRLF after chunk data"));
            }
        }
        let mut trailers = 0;
        loop {
            let (s, e) = self.read_line(MAX_HEAD)?;
            if s == e {
                return Ok((count, sum));
            }
            trailers += e - s;
            if trailers > MAX_HEAD || !self.buf[s..e].contains(&b':') {
                return Err(Stop::Bad("bad trailer section"));
            }
        }
    }

    fn status_line(&mut self, code: u16, close: bool) {
        let _ = write!(self.out, "HTTP/1.1 {code} {}\r\n", reason(code));
        if close {
            self.out.extend_from_slice(b"Connection: close\r\n");
        }
    }

    /// Appends `n` pattern bytes to `out` (as chunks of `chunk` bytes when
    /// given), flushing every 64 KiB.
    fn pattern_body(&mut self, n: u64, chunk: Option<u64>) -> io::Result<()> {
        let mut off = 0;
        while off < n {
            let k = chunk.unwrap_or(PIECE as u64).min(n - off);
            if chunk.is_some() {
                let _ = write!(self.out, "{k:x}\r\n");
            }
            let mut done = 0;
            while done < k {
                let len = (k - done).min(PIECE as u64) as usize;
                self.out.extend_from_slice(pattern_at(off + done, len));
                done += len as u64;
                if self.out.len() >= PIECE {
                    self.flush()?;
                }
            }
            if chunk.is_some() {
                self.out.extend_from_slice(b"\r\n");
            }
            off += k;
        }
        if chunk.is_some() {
            self.out.extend_from_slice(b"0\r\n\r\n");
        }
        Ok(())
    }

    fn respond(
        &mut self,
        route: Route,
        head_only: bool,
        close: bool,
        count: u64,
        sum: u64,
    ) -> io::Result<()> {
        let with_body = !head_only;
        match route {
            Route::Bytes(n) => {
                self.status_line(200, close);
                let _ = write!(self.out, "Content-Length: {n}\r\n\r\n");
                if with_body {
                    self.pattern_body(n, None)?;
                }
            }
            Route::Chunked(n, k) => {
                self.status_line(200, close);
                self.out
                    .extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                if with_body {
                    self.pattern_body(n, Some(k))?;
                }
            }
            Route::Close(n) => {
                self.status_line(200, true);
                self.out.extend_from_slice(b"\r\n");
                if with_body {
                    self.pattern_body(n, None)?;
                }
            }
            Route::Status(code) => {
                self.status_line(code, close);
                if code != 204 && code != 304 {
                    self.out.extend_from_slice(b"Content-Length: 0\r\n");
                }
                self.out.extend_from_slice(b"\r\n");
            }
            Route::Sink => {
                self.status_line(204, close);
                let _ = write!(
                    self.out,
                    "X-Received-Bytes: {count}\r\nX-Body-Sum: {sum}\r\n\r\n"
                );
            }
            Route::Echo => {
                self.status_line(200, close);
                let _ = write!(self.out, "Content-Length: {}\r\n\r\n", self.echo.len());
                if with_body {
                    self.out.extend_from_slice(&self.echo);
                }
            }
            Route::Document => {
                self.status_line(200, close);
                let len = b"document \n".len() + self.target.len();
                let _ = write!(
                    self.out,
                    "Content-Type: text/plain\r\nContent-Length: {len}\r\n\r\n"
                );
                if with_body {
                    self.out.extend_from_slice(b"document ");
                    self.out.extend_from_slice(&self.target);
                    self.out.push(b'\n');
                }
            }
        }
        if self.out.len() >= PIECE {
            self.flush()?;
        }
        Ok(())
    }

    /// Flushes, sends FIN, then drains the client for a bounded time so
    /// that unread pipelined requests do not turn our close into a reset.
    fn linger_close(&mut self) {
        if self.flush().is_err() || self.stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match self.stream.read(&mut self.buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}
