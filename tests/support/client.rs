//! [`Client`]: a connection as a behaviour test drives it through one [`SendPath`].
//!
//! A test calls `send`, `get`, `stream`, `write`, `read_response`, `read`, `read_all`, ... on a
//! `Client` exactly as it would on an `HttpConnection`; the client sends and reads the way its
//! path does. Two paths read responses while they send — a cofunction's loop body, and a
//! `co_*` read driven beside a `co_*` send — so the client keeps what they read ahead
//! ([`ReadAhead`]) and serves the test's reads from it first, in order, as if the test had read
//! the connection itself. The reads stop at the first error they meet, which waits for the
//! test in its place, so the connection is left as a test reading by itself would find it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use dugong::green::Green;
use dugong::{Body, CoOp, CoStep, Config, Error, HttpConnection, Interest, Response, StateError};
use http::header::EXPECT;
use http::{HeaderMap, Method};

use super::SendPath;

/// The connection under a [`Client`]: a blocking one, or one made in a green task.
#[derive(Debug)]
pub(super) enum Conn<'t> {
    Plain(HttpConnection),
    Green(HttpConnection<Green<'t>>),
}

/// Calls the same method on either kind of connection.
macro_rules! on_conn {
    ($client:expr, $c:ident => $call:expr) => {
        match &$client.conn {
            Conn::Plain($c) => $call,
            Conn::Green($c) => $call,
        }
    };
}

/// A connection driven through one send path; see the module docs.
#[derive(Debug)]
pub struct Client<'t> {
    path: SendPath,
    conn: Conn<'t>,
    ahead: RefCell<ReadAhead>,
}

/// Responses read by a loop body or a side read before the test asked for them.
///
/// INVARIANT: the connection is positioned after the last of `queue` (or after `current`
/// when `queue` is empty): only the last of them may be [`End::Open`], and then the
/// connection is inside that body.
#[derive(Debug, Default)]
struct ReadAhead {
    /// Responses whose heads the test has not asked for yet, oldest first.
    queue: VecDeque<Early>,
    /// The response whose head the test has, while body bytes or its end are still here.
    current: Option<Early>,
    /// Trailers of the last body served from here, until the test takes them.
    trailers: Option<HeaderMap>,
}

/// One response read ahead, and how far.
#[derive(Debug)]
struct Early {
    /// Its head, until the test takes it; an error ends the read-ahead.
    head: Option<Result<Response, Error>>,
    /// Body bytes not yet handed to the test.
    body: VecDeque<u8>,
    end: End,
    trailers: Option<HeaderMap>,
}

/// How far the connection got with a body read ahead.
#[derive(Debug)]
enum End {
    /// The connection is still inside it.
    Open,
    /// It is complete (or there is none).
    Done,
    /// Reading it failed with this; the read-ahead stopped there.
    Failed(Error),
}

impl Early {
    fn is_failure(&self) -> bool {
        matches!(self.head, Some(Err(_))) || matches!(self.end, End::Failed(_))
    }

    /// Whether the test still has something of it to read.
    fn is_unread(&self) -> bool {
        !self.body.is_empty() || matches!(self.end, End::Failed(_))
    }
}

impl ReadAhead {
    /// Whether an error read ahead waits for the test: nothing more is read until it is
    /// handed out.
    fn is_halted(&self) -> bool {
        self.queue
            .iter()
            .chain(&self.current)
            .any(Early::is_failure)
    }

    /// The response whose body the connection is inside.
    fn tail(&mut self) -> &mut Early {
        if self.queue.is_empty() {
            let fresh = match &self.current {
                Some(c) => {
                    assert!(
                        matches!(c.end, End::Open),
                        "harness: the connection is in a body the read-ahead has ended"
                    );
                    false
                }
                None => true,
            };
            if fresh {
                // The test read this head itself; the body continues here.
                self.current = Some(Early {
                    head: None,
                    body: VecDeque::new(),
                    end: End::Open,
                    trailers: None,
                });
            }
            return self.current.as_mut().expect("set above");
        }
        self.queue.back_mut().expect("not empty")
    }

    /// Notes a head read ahead; the body before it, if any, is complete.
    fn push_head(&mut self, head: Result<Response, Error>, has_body: bool) {
        if let Some(last) = self.queue.back_mut().or(self.current.as_mut()) {
            if matches!(last.end, End::Open) {
                last.end = End::Done;
            }
        }
        let end = if head.is_ok() && has_body {
            End::Open
        } else {
            End::Done
        };
        self.queue.push_back(Early {
            head: Some(head),
            body: VecDeque::new(),
            end,
            trailers: None,
        });
    }

    /// Notes body bytes (or a failure) read ahead.
    fn push_body(&mut self, got: Result<&[u8], Error>, ended: bool, trailers: Option<HeaderMap>) {
        let tail = self.tail();
        match got {
            Ok(bytes) => {
                tail.body.extend(bytes);
                if ended {
                    tail.end = End::Done;
                    tail.trailers = trailers;
                }
            }
            Err(e) => tail.end = End::Failed(e),
        }
    }

    /// Drops `current` once the test has read all of it.
    fn retire_current(&mut self) {
        if let Some(c) = &mut self.current {
            if !c.is_unread() && matches!(c.end, End::Done) {
                if let Some(t) = c.trailers.take() {
                    self.trailers = Some(t);
                }
                self.current = None;
            }
        }
    }
}

/// What a test read gets from the read-ahead.
enum Served {
    /// Bytes (or an empty vector for "none left").
    Bytes(Vec<u8>),
    /// The error the read-ahead stopped at.
    Failed(Error),
    /// Nothing here: read the connection.
    Connection,
}

/// How long a `co_*` operation may wait for its descriptor before the test fails: they have
/// no timeout of their own.
const STUCK: Duration = Duration::from_secs(10);

/// The buffer a loop body or side read reads body bytes into.
const READ_AHEAD_BUF: usize = 64 * 1024;

impl<'t> Client<'t> {
    pub(super) fn new(path: SendPath, conn: Conn<'t>) -> Self {
        Client {
            path,
            conn,
            ahead: RefCell::new(ReadAhead::default()),
        }
    }

    /// The path this client sends through.
    pub fn path(&self) -> SendPath {
        self.path
    }

    /// The blocking connection under the paths that have one (all but `Green`).
    pub fn plain(&self) -> Option<&HttpConnection> {
        match &self.conn {
            Conn::Plain(c) => Some(c),
            Conn::Green(_) => None,
        }
    }

    fn plain_conn(&self) -> &HttpConnection {
        self.plain().expect("a path over a blocking connection")
    }

    // -----------------------------------------------------------------------------------------
    // Sending
    // -----------------------------------------------------------------------------------------

    /// Sends a request head (and in-memory body) through this client's path.
    pub fn send(
        &self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: Body<'_>,
    ) -> Result<(), Error> {
        match self.path {
            SendPath::Blocking => self
                .plain_conn()
                .send_request(method, target, headers, body),
            SendPath::Green => on_conn!(self, c => c.send_request(method, target, headers, body)),
            SendPath::Cofun => {
                let conn = self.plain_conn();
                for step in conn.send_request_cofun(method, target, headers, body)? {
                    step?;
                    self.read_ahead_once();
                }
                Ok(())
            }
            SendPath::CofunDeclining => {
                let conn = self.plain_conn();
                for step in conn.send_request_cofun(method, target, headers, body)? {
                    step?;
                }
                Ok(())
            }
            SendPath::CoOps => {
                let conn = self.plain_conn();
                let mut op = conn.co_send_request(method, target, headers, body)?;
                // While a send waits for `100 Continue` it reads the interim (or final)
                // response itself: no read beside it.
                let side_reads = !headers.contains_key(EXPECT);
                self.drive_send(&mut op, side_reads)
            }
        }
    }

    /// Sends a GET with no headers.
    pub fn get(&self, target: &str) -> Result<(), Error> {
        self.send(&Method::GET, target, &HeaderMap::new(), Body::Empty)
    }

    /// Streams `source` as the body owed by the last request: `write` pieces (and
    /// `finish_body` if still owed at the end) for `Blocking` and `Green`, `sendfile_cofun`
    /// for the cofunction paths, `co_write` for `CoOps`.
    pub fn stream<R: Read>(&self, source: &mut R) -> Result<(), Error> {
        match self.path {
            SendPath::Blocking | SendPath::Green => {
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = source.read(&mut buf).map_err(Error::Io)?;
                    if n == 0 {
                        break;
                    }
                    self.write(&buf[..n])?;
                }
                if self.is_writing_body() {
                    self.finish_body()?;
                }
                Ok(())
            }
            SendPath::Cofun | SendPath::CofunDeclining => {
                let reads = self.path == SendPath::Cofun;
                for step in self.plain_conn().sendfile_cofun(source)? {
                    step?;
                    if reads {
                        self.read_ahead_once();
                    }
                }
                Ok(())
            }
            SendPath::CoOps => {
                let mut op = self.plain_conn().co_write(source)?;
                self.drive_send(&mut op, true)
            }
        }
    }

    /// `write`: request body bytes. Every path writes pieces with the blocking call of its
    /// connection (`co_write` streams a whole body from a reader: see [`stream`](Self::stream)).
    pub fn write(&self, data: &[u8]) -> Result<(), Error> {
        on_conn!(self, c => c.write(data))
    }

    /// `finish_body`.
    pub fn finish_body(&self) -> Result<(), Error> {
        on_conn!(self, c => c.finish_body())
    }

    /// `is_writing_body`.
    pub fn is_writing_body(&self) -> bool {
        on_conn!(self, c => c.is_writing_body())
    }

    // -----------------------------------------------------------------------------------------
    // Reading, served from the read-ahead first
    // -----------------------------------------------------------------------------------------

    /// `read_response`.
    pub fn read_response(&self) -> Result<Response, Error> {
        let mut ahead = self.ahead.borrow_mut();
        ahead.retire_current();
        if let Some(current) = &ahead.current {
            if current.is_unread() {
                return Err(StateError::BodyUnread.into());
            }
            // Still open: the connection is inside this body and says so itself.
        } else if let Some(mut early) = ahead.queue.pop_front() {
            let head = early.head.take().expect("a queued response has its head");
            if head.is_ok() {
                ahead.current = Some(early);
            }
            return head;
        }
        drop(ahead);
        self.read_response_now()
    }

    /// `read`.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Error> {
        match self.serve(Some(buf.len())) {
            Served::Bytes(bytes) => {
                buf[..bytes.len()].copy_from_slice(&bytes);
                Ok(bytes.len())
            }
            Served::Failed(e) => Err(e),
            Served::Connection => self.read_now(buf),
        }
    }

    /// `read_all`.
    pub fn read_all(&self) -> Result<Vec<u8>, Error> {
        match self.serve(None) {
            Served::Bytes(mut bytes) => {
                if self.ahead_open() {
                    bytes.extend(self.read_all_now()?);
                }
                Ok(bytes)
            }
            Served::Failed(e) => Err(e),
            Served::Connection => self.read_all_now(),
        }
    }

    /// `discard`.
    pub fn discard(&self) -> Result<u64, Error> {
        match self.serve(None) {
            Served::Bytes(bytes) => {
                let mut n = bytes.len() as u64;
                if self.ahead_open() {
                    n += self.discard_now()?;
                }
                Ok(n)
            }
            Served::Failed(e) => Err(e),
            Served::Connection => self.discard_now(),
        }
    }

    /// `response_pending`.
    pub fn response_pending(&self) -> bool {
        let ahead = self.ahead.borrow();
        !ahead.queue.is_empty()
            || ahead.current.as_ref().is_some_and(Early::is_unread)
            || on_conn!(self, c => c.response_pending())
    }

    /// `has_active_response`.
    pub fn has_active_response(&self) -> bool {
        let ahead = self.ahead.borrow();
        match &ahead.current {
            Some(c) if c.is_unread() => true,
            Some(c) if matches!(c.end, End::Open) => on_conn!(self, c => c.has_active_response()),
            _ => ahead.queue.is_empty() && on_conn!(self, c => c.has_active_response()),
        }
    }

    /// `take_trailers`.
    pub fn take_trailers(&self) -> Option<HeaderMap> {
        let mut ahead = self.ahead.borrow_mut();
        ahead.retire_current();
        ahead
            .trailers
            .take()
            .or_else(|| on_conn!(self, c => c.take_trailers()))
    }

    /// Whether response data waits: read ahead, in the connection's buffer, or on the socket
    /// (`has_buffered_data` takes in what the socket holds). The check a caller makes between
    /// pieces of an upload to notice an early response.
    pub fn has_response_data(&self) -> bool {
        let ahead = self.ahead.borrow();
        !ahead.queue.is_empty()
            || ahead.current.as_ref().is_some_and(Early::is_unread)
            || self.has_buffered_data()
    }

    /// `has_buffered_data`.
    pub fn has_buffered_data(&self) -> bool {
        on_conn!(self, c => c.has_buffered_data())
    }

    /// `receive_buffer_capacity`.
    pub fn receive_buffer_capacity(&self) -> usize {
        on_conn!(self, c => c.receive_buffer_capacity())
    }

    /// `config`.
    pub fn config(&self) -> &Config {
        on_conn!(self, c => c.config())
    }

    /// `connect`.
    pub fn connect(&self) -> Result<(), Error> {
        on_conn!(self, c => c.connect())
    }

    /// `disconnect`; what was read ahead is forgotten with the requests in flight.
    pub fn disconnect(&self) {
        *self.ahead.borrow_mut() = ReadAhead::default();
        on_conn!(self, c => c.disconnect());
    }

    /// Hands out what the read-ahead holds for the current response: up to `limit` bytes
    /// (all when `None`), else its error, else "none left", or says to read the connection.
    fn serve(&self, limit: Option<usize>) -> Served {
        let mut ahead = self.ahead.borrow_mut();
        let Some(current) = ahead.current.as_mut() else {
            return if ahead.queue.is_empty() {
                Served::Connection
            } else {
                // The test's response is over; the connection is in a later one.
                Served::Bytes(Vec::new())
            };
        };
        if !current.body.is_empty() {
            let n = limit.map_or(current.body.len(), |l| l.min(current.body.len()));
            let bytes: Vec<u8> = current.body.drain(..n).collect();
            ahead.retire_current();
            return Served::Bytes(bytes);
        }
        match std::mem::replace(&mut current.end, End::Done) {
            End::Failed(e) => {
                // Handed out once; later calls meet the connection's own state.
                ahead.current = None;
                Served::Failed(e)
            }
            End::Done => {
                ahead.retire_current();
                Served::Bytes(Vec::new())
            }
            End::Open => {
                current.end = End::Open;
                Served::Connection
            }
        }
    }

    /// Whether the connection is still inside the body of the test's current response.
    fn ahead_open(&self) -> bool {
        let ahead = self.ahead.borrow();
        ahead
            .current
            .as_ref()
            .is_some_and(|c| matches!(c.end, End::Open))
    }

    fn read_response_now(&self) -> Result<Response, Error> {
        match self.path {
            SendPath::CoOps => drive(&mut self.plain_conn().co_read_response()),
            _ => on_conn!(self, c => c.read_response()),
        }
    }

    fn read_now(&self, buf: &mut [u8]) -> Result<usize, Error> {
        match self.path {
            SendPath::CoOps => drive(&mut self.plain_conn().co_read(buf)),
            _ => on_conn!(self, c => c.read(buf)),
        }
    }

    fn read_all_now(&self) -> Result<Vec<u8>, Error> {
        match self.path {
            SendPath::CoOps => drive(&mut self.plain_conn().co_read_all()),
            _ => on_conn!(self, c => c.read_all()),
        }
    }

    fn discard_now(&self) -> Result<u64, Error> {
        match self.path {
            SendPath::CoOps => {
                let mut buf = vec![0u8; READ_AHEAD_BUF];
                let mut total = 0u64;
                loop {
                    match drive(&mut self.plain_conn().co_read(&mut buf))? {
                        0 => return Ok(total),
                        n => total += n as u64,
                    }
                }
            }
            _ => on_conn!(self, c => c.discard()),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Reading ahead while sending
    // -----------------------------------------------------------------------------------------

    /// The seed's loop body: reads what is there — body bytes of the response being read, or
    /// the next head — into the read-ahead. Reads nothing once an error waits for the test.
    fn read_ahead_once(&self) {
        if self.ahead.borrow().is_halted() {
            return;
        }
        let conn = self.plain_conn();
        if conn.has_active_response() {
            let mut buf = vec![0u8; READ_AHEAD_BUF];
            let got = conn.read(&mut buf);
            self.note_body(got.map(|n| &buf[..n]));
        } else {
            let head = conn.read_response();
            self.note_head(head);
        }
    }

    fn note_head(&self, head: Result<Response, Error>) {
        let has_body = self.plain_conn().has_active_response();
        self.ahead.borrow_mut().push_head(head, has_body);
    }

    fn note_body(&self, got: Result<&[u8], Error>) {
        let conn = self.plain_conn();
        let ended = !conn.has_active_response();
        let trailers = if ended { conn.take_trailers() } else { None };
        self.ahead.borrow_mut().push_body(got, ended, trailers);
    }

    /// Drives a `co_*` send to its end through a poll loop. While it waits for writability
    /// and a response is pending, a `co_*` read runs beside it (the server may answer before
    /// it reads on), its results kept in the read-ahead.
    fn drive_send(&self, send: &mut CoOp<'_, ()>, side_reads: bool) -> Result<(), Error> {
        let conn = self.plain_conn();
        let started = Instant::now();
        loop {
            assert!(
                started.elapsed() < 3 * STUCK,
                "harness: a co_* send never ends"
            );
            let interest = match send.step() {
                CoStep::Done(result) => return result,
                CoStep::Poll(need) => need.interest,
            };
            let reads = side_reads
                && interest.is_writable()
                && !self.ahead.borrow().is_halted()
                && conn.response_pending();
            if !reads {
                poll_ops(&[send.waiting_for()]);
                continue;
            }
            let mut buf = vec![0u8; READ_AHEAD_BUF];
            if conn.has_active_response() {
                match beside(send, conn.co_read(&mut buf)) {
                    Beside::Sent(result) => return result,
                    Beside::Read(got) => self.note_body(got.map(|n| &buf[..n])),
                }
            } else {
                match beside(send, conn.co_read_response()) {
                    Beside::Sent(result) => return result,
                    Beside::Read(head) => self.note_head(head),
                }
            }
        }
    }
}

/// How a send and a read driven side by side came out: whichever finished first.
enum Beside<T> {
    Sent(Result<(), Error>),
    Read(Result<T, Error>),
}

/// Steps `read` and `send` (which has just asked to poll) until one of them finishes; the
/// other is left as it is (a dropped read loses nothing).
fn beside<T>(send: &mut CoOp<'_, ()>, mut read: CoOp<'_, T>) -> Beside<T> {
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < 3 * STUCK, "harness: no progress");
        if let CoStep::Done(r) = read.step() {
            return Beside::Read(r);
        }
        poll_ops(&[send.waiting_for(), read.waiting_for()]);
        match send.step() {
            CoStep::Done(r) => return Beside::Sent(r),
            CoStep::Poll(need) if need.interest.is_readable() => {
                // The send now reads for itself (an interim response): leave it alone.
                drop(read);
                return Beside::Sent(drive(send));
            }
            CoStep::Poll(_) => {}
        }
    }
}

/// Steps `op` to its end, polling whenever it asks.
pub fn drive<T>(op: &mut CoOp<'_, T>) -> Result<T, Error> {
    loop {
        match op.step() {
            CoStep::Done(result) => return result,
            CoStep::Poll(_) => poll_ops(&[op.waiting_for()]),
        }
    }
}

/// Waits until one of the operations' descriptors is ready as asked, or the shortest
/// timeout among them passes; fails the test after [`STUCK`] without either.
fn poll_ops(needs: &[Option<dugong::PollNeeded<'_>>]) {
    let needs: Vec<_> = needs.iter().flatten().collect();
    let fds: Vec<(RawFd, Interest)> = needs
        .iter()
        .map(|n| (n.fd.as_raw_fd(), n.interest))
        .collect();
    let timeout = needs.iter().filter_map(|n| n.timeout).min();
    let ready = poll_fds(&fds, timeout.unwrap_or(STUCK).min(STUCK));
    assert!(ready || timeout.is_some(), "stuck for {STUCK:?}: {needs:?}");
}

/// `poll(2)` on `fds` for up to `limit`: whether one was ready.
#[allow(unsafe_code)]
pub fn poll_fds(fds: &[(RawFd, Interest)], limit: Duration) -> bool {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, interest)| libc::pollfd {
            fd,
            events: if interest.is_readable() {
                libc::POLLIN
            } else {
                libc::POLLOUT
            },
            revents: 0,
        })
        .collect();
    let millis = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: a valid, exclusively borrowed array of `pollfds.len()` initialised pollfds for
    // the duration of the call; the descriptors are borrowed by the caller's operations.
    let n = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, millis) };
    n > 0
}

impl AsRawFd for Client<'_> {
    fn as_raw_fd(&self) -> RawFd {
        on_conn!(self, c => c.as_raw_fd())
    }
}

impl Read for &Client<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Client::read(self, buf).map_err(std::io::Error::from)
    }
}
