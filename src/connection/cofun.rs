//! Cofunctions: sending as an iterator over a stackful coroutine, so the loop body can read
//! responses on the same connection while a request is going out.
//!
//! The coroutine ([`Sender`]) runs the same send loop as the blocking path; this module feeds
//! it bytes (a request head, an in-memory body, or a reader's chunks), decides when the caller
//! should read, and folds the outcome back into the connection's state.

use std::io::{self, Read};

use super::send::{self, Prepared, Request};
use super::state::{Sending, State};
use super::HttpConnection;
use crate::coroutine::{Resume, Sender, Step, Suspend};
use crate::error::{ClosePhase, Error, Operation, PoisonCause, StateError};
use crate::io::{drain, is_poll_needed, Blocking, Deadline, Park, Ready, Transport};
use std::sync::Arc;

/// Bytes read from a body source per chunk.
const CHUNK: usize = 64 * 1024;

/// Space for a chunk-size line of eight hex digits.
const SIZE_LINE_ROOM: &[u8] = b"00000000\r\n";

/// A cofunction: an iterator that sends a request (or a request body) on its connection and
/// yields whenever response data is available, so the loop body can read it.
///
/// Returned by [`HttpConnection::send_request_cofun`] and [`HttpConnection::co_sendfile`].
/// Each `next()` resumes a coroutine that writes with non-blocking sends. It yields
/// `Some(Ok(()))` when response bytes are waiting (already buffered, or the socket is
/// readable) — read them in the loop body with `read_response` / `read` on the same
/// connection — and ends with `None` once every byte is handed to the OS. An error is yielded
/// once as `Some(Err(e))`, then the iterator ends; the connection also remembers it (a broken
/// or poisoned connection says so on its next use), so a `for _ in` loop cannot lose it.
///
/// If the loop body reads nothing, the cofunction keeps the arriving response bytes in the
/// connection's buffer (bounded by [`Config::max_buffered`](crate::Config::max_buffered)), as
/// a blocking send does, so an empty loop body still completes.
///
/// # Cancellation
///
/// Dropping an unfinished cofunction stops its coroutine by resuming it with a cancel input
/// until it returns (no stack unwinding, so it is safe under `panic = "abort"`). A request
/// none of whose bytes were sent is removed from the pipeline as if never sent; after a
/// partial send the connection is poisoned and the next `send_request` reconnects.
///
/// The iterator is not `Send` (the coroutine's stack stays on its thread):
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// let conn = dugong::HttpConnection::new("127.0.0.1", 9)?;
/// let cofun = conn.send_request_cofun(&http::Method::GET, "/", &http::HeaderMap::new(), dugong::Body::Empty)?;
/// assert_send(cofun);
/// # Ok::<(), dugong::Error>(())
/// ```
#[must_use = "a cofunction sends nothing until it is iterated"]
pub struct Cofun<'c, P: Park = Blocking> {
    conn: &'c HttpConnection<P>,
    sender: Option<Sender>,
    /// The socket the coroutine writes to; waited on here, through the connection's park.
    transport: Option<Arc<Transport>>,
    operation: Operation,
    /// The deadline of the current wait for the socket; restarts after each buffer sent and
    /// after the loop body ran.
    deadline: Option<Deadline>,
    source: Source<'c>,
    /// What to resume the coroutine with next.
    input: Option<Resume>,
    /// When control was last handed to the loop body: `ReadBuffer::consumed` then, and
    /// whether it was for bytes on the socket (rather than already buffered ones).
    yielded_at: Option<(u64, Yield)>,
    /// Whether the coroutine has run at all (before that, dropping un-sends the request).
    started: bool,
    /// The connection generation this cofunction sends on.
    generation: u64,
    /// The send state once everything is out.
    after: Sending,
    /// Whether a foreign event loop does the waiting (a `co_*` operation): a blocked send is
    /// reported as "would block" instead of waited for, and reading is left to the caller.
    external: bool,
}

/// Where the bytes after the first buffer come from.
enum Source<'c> {
    /// A request: `body` follows the head after `100 Continue` (if it waits for one).
    Request {
        expect_continue: bool,
        body: Option<Vec<u8>>,
    },
    /// A request body read from a reader.
    Reader {
        reader: &'c mut dyn Read,
        framing: Framing,
    },
    /// Nothing more.
    Done,
}

/// Why control went to the loop body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Yield {
    /// Response bytes were already in the connection's buffer.
    Buffered,
    /// The socket became readable while the coroutine waited to send.
    Socket,
}

/// How a reader's bytes are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many `Content-Length` bytes are still owed.
    Length(u64),
    /// Chunks until the reader ends, then the last-chunk.
    Chunked,
}

impl<P: Park> std::fmt::Debug for Cofun<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cofun")
            .field("started", &self.started)
            .field("finished", &self.sender.is_none())
            .finish()
    }
}

impl<'c, P: Park> Cofun<'c, P> {
    /// A cofunction for a prepared request; its head is in `st.head_buf`.
    pub(crate) fn request(
        conn: &'c HttpConnection<P>,
        st: &mut State,
        prepared: Prepared,
        request: &Request<'_>,
    ) -> Result<Self, Error> {
        let mut first = std::mem::take(&mut st.head_buf);
        let mut body = None;
        if let crate::Body::Bytes(bytes) = request.body {
            if prepared.expect_continue {
                body = Some(bytes.to_vec());
            } else {
                first.extend_from_slice(bytes);
            }
        }
        let source = Source::Request {
            expect_continue: prepared.expect_continue,
            body,
        };
        let op = Operation::SendRequest;
        Self::start(
            conn,
            st,
            prepared.transport,
            op,
            first,
            source,
            prepared.after,
        )
    }

    /// A cofunction that streams `reader` as the body owed by the current request.
    pub(crate) fn body(
        conn: &'c HttpConnection<P>,
        st: &mut State,
        reader: &'c mut dyn Read,
    ) -> Result<Self, Error> {
        if st.cofun_active {
            return Err(StateError::CofunctionActive.into());
        }
        st.check_dead()?;
        let framing = match st.sending {
            Sending::Length(n) => Framing::Length(n),
            Sending::Chunked => Framing::Chunked,
            Sending::Refused => return Err(StateError::BodyRefused.into()),
            Sending::Broken => {
                return Err(crate::io::send_io_error(io::ErrorKind::BrokenPipe.into()))
            }
            // A declared empty body is complete already: nothing to stream.
            Sending::Idle if st.empty_body_sent => return Ok(Self::finished(conn)),
            Sending::Idle => return Err(StateError::NoBodyExpected.into()),
        };
        let transport = st.transport()?;
        let mut source = Source::Reader { reader, framing };
        let mut first = source
            .next_buffer(Vec::with_capacity(CHUNK + 32))?
            .unwrap_or_default();
        if !st.owed.is_empty() {
            // The rest of a chunk `write_partial` started goes first.
            first.splice(0..0, std::mem::take(&mut st.owed));
        }
        Self::start(
            conn,
            st,
            transport,
            Operation::WriteBody,
            first,
            source,
            Sending::Idle,
        )
    }

    /// A cofunction with nothing to do.
    fn finished(conn: &'c HttpConnection<P>) -> Self {
        Cofun {
            conn,
            sender: None,
            transport: None,
            operation: Operation::WriteBody,
            deadline: None,
            source: Source::Done,
            input: None,
            yielded_at: None,
            started: true,
            generation: 0,
            after: Sending::Idle,
            external: false,
        }
    }

    fn start(
        conn: &'c HttpConnection<P>,
        st: &mut State,
        transport: Arc<Transport>,
        operation: Operation,
        first: Vec<u8>,
        source: Source<'c>,
        after: Sending,
    ) -> Result<Self, Error> {
        let stack = st.stacks.take().map_err(Error::Io)?;
        let sender = Sender::new(stack, Arc::clone(&transport));
        st.cofun_active = true;
        Ok(Cofun {
            conn,
            sender: Some(sender),
            transport: Some(transport),
            operation,
            deadline: None,
            source,
            input: Some(Resume::Send(first)),
            yielded_at: None,
            started: false,
            generation: st.generation,
            after,
            external: false,
        })
    }

    /// Hands the waiting to a foreign event loop: see [`HttpConnection::co_send_request`].
    pub(crate) fn external(mut self) -> Self {
        self.external = true;
        self
    }

    /// Decides whether the loop body should run before the coroutine resumes. Returns
    /// `Ok(true)` to yield to it.
    fn response_data_first(&mut self, st: &mut State) -> Result<bool, Error> {
        if self.external {
            // The caller reads in operations of its own.
            return Ok(false);
        }
        let consumed = st.recv.buf.consumed();
        match self.yielded_at.take() {
            // The loop body read nothing while the socket held response bytes and the send
            // was blocked: take them ourselves, as a blocking send does, so an empty loop body
            // still completes.
            Some((at, Yield::Socket)) if at == consumed => {
                if let Ok(transport) = st.transport() {
                    drain(&mut st.recv.buf, self.conn.config.max_buffered, &transport)?;
                }
                Ok(false)
            }
            // It declined already-buffered bytes: send on (no need to touch the socket).
            Some((at, Yield::Buffered)) if at == consumed => Ok(false),
            _ if !st.recv.buf.is_empty() && !st.pipeline.is_empty() => {
                self.yielded_at = Some((consumed, Yield::Buffered));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// One step: `Some(Ok(()))` to let the loop body read, `None` when done.
    fn step(&mut self) -> Option<Result<(), Error>> {
        self.sender.as_ref()?;
        let conn = self.conn;
        let Ok(mut st) = conn.state.try_borrow_mut() else {
            return Some(Err(StateError::Busy.into()));
        };
        loop {
            if st.generation != self.generation {
                // The connection was reset under us (disconnect, or a read that met its end).
                let gone = Error::ConnectionClosed {
                    phase: ClosePhase::WhileSending,
                    unanswered: Vec::new(),
                };
                return self.abandon(&mut st, gone);
            }
            match self.response_data_first(&mut st) {
                Ok(true) => {
                    self.deadline = None;
                    return Some(Ok(()));
                }
                Ok(false) => {}
                Err(e) => return self.abandon(&mut st, e),
            }
            let input = self.input.take().unwrap_or(Resume::Finish);
            self.started = true;
            let sender = self.sender.as_mut()?;
            // The state stays borrowed: the coroutine never touches it, and the loop body
            // only runs after this call returns.
            match sender.resume(input) {
                Step::Suspended(Suspend::Blocked) => {
                    self.input = Some(Resume::Go);
                    match self.wait_blocked(&st) {
                        // Response data: the loop body reads before sending goes on.
                        Ok(true) => {
                            self.yielded_at = Some((st.recv.buf.consumed(), Yield::Socket));
                            return Some(Ok(()));
                        }
                        Ok(false) => {}
                        // The foreign loop waits; resuming goes on with `Go`.
                        Err(e) if self.external && is_poll_needed(&e) => return Some(Err(e)),
                        Err(e) => return self.abandon(&mut st, e),
                    }
                }
                Step::Suspended(Suspend::Sent(buf)) => {
                    // Progress: the wait deadline starts afresh.
                    self.deadline = None;
                    match self.next_input(&mut st, buf) {
                        Ok(input) => self.input = Some(input),
                        Err(e) => return self.abandon(&mut st, e),
                    }
                }
                Step::Done(result) => return self.finish(&mut st, result).err().map(Err),
            }
        }
    }

    /// The send is blocked: waits, through the connection's park and within the operation's
    /// deadline, until the socket is writable (`false`) or has response data (`true`).
    fn wait_blocked(&mut self, st: &State) -> Result<bool, Error> {
        let Some(transport) = self.transport.as_ref() else {
            return Ok(false);
        };
        if self.external {
            return Err(Error::Io(std::io::ErrorKind::WouldBlock.into()));
        }
        // Once the server has closed its side, "readable" would be reported forever.
        let interest = Ready {
            readable: !st.recv.buf.is_eof(),
            writable: true,
        };
        let (operation, timeout) = (self.operation, self.conn.config.timeout);
        let deadline = self
            .deadline
            .get_or_insert_with(|| Deadline::new(operation, timeout));
        loop {
            let left = deadline.remaining()?;
            let ready = self.conn.park.park(transport, interest, left)?;
            if ready.readable {
                self.deadline = None;
                return Ok(true);
            }
            if ready.writable {
                return Ok(false);
            }
            if left.is_some_and(|t| t.is_zero()) {
                return Err(deadline.expired());
            }
        }
    }

    /// Stops the coroutine because of `error` found outside it, and reports the error.
    fn abandon(&mut self, st: &mut State, error: Error) -> Option<Result<(), Error>> {
        if let Some(sender) = self.sender.as_mut() {
            // Its own result is only "cancelled"; `error` says why.
            let _ = sender.cancel();
        }
        Some(self.finish(st, Err(error)))
    }

    /// What follows a buffer that went out.
    fn next_input(&mut self, st: &mut State, mut buf: Vec<u8>) -> Result<Resume, Error> {
        match &mut self.source {
            Source::Request {
                expect_continue,
                body,
            } => {
                if std::mem::take(expect_continue) {
                    let transport = st.transport()?;
                    let method = st.pipeline.front().map(|r| r.method.clone());
                    let method = method.unwrap_or(http::Method::GET);
                    send::await_continue(st, &transport, &self.conn.env(), &method)?;
                }
                buf.clear();
                st.head_buf = buf;
                match body.take() {
                    Some(body) if st.sending != Sending::Refused => Ok(Resume::Send(body)),
                    _ => Ok(Resume::Finish),
                }
            }
            Source::Reader { .. } => {
                // Between buffers the socket was never waited on: look once for an early
                // response (a 413, say), so the loop body can read it before more goes out.
                st.take_arrived(self.conn.config.max_buffered);
                self.next_reader_buffer(st, buf)
            }
            Source::Done => Ok(Resume::Finish),
        }
    }

    /// The next piece of a reader's body.
    fn next_reader_buffer(&mut self, st: &mut State, buf: Vec<u8>) -> Result<Resume, Error> {
        match self.source.next_buffer(buf) {
            Ok(Some(buf)) => Ok(Resume::Send(buf)),
            Ok(None) => Ok(Resume::Finish),
            // Part of the body is out and the rest cannot follow: framing is lost.
            Err(e) => Err(st.poison(PoisonCause::BodySource, e)),
        }
    }

    /// Folds the coroutine's outcome into the connection and recycles its stack.
    fn finish(&mut self, st: &mut State, result: Result<(), Error>) -> Result<(), Error> {
        if let Some(stack) = self.sender.take().and_then(Sender::into_stack) {
            st.stacks.put(stack);
        }
        self.source = Source::Done;
        // One cofunction at a time, so the flag is this one's whatever became of the link.
        st.cofun_active = false;
        if st.generation != self.generation {
            // The link this cofunction used is gone; the state already describes that.
            return result;
        }
        match result {
            Ok(()) => {
                if st.sending != Sending::Refused {
                    st.sending = self.after;
                }
                Ok(())
            }
            Err(e) => Err(st.send_failed(e)),
        }
    }
}

impl Source<'_> {
    /// Fills `buf` with the next framed piece of a reader, `None` when the body is complete.
    fn next_buffer(&mut self, mut buf: Vec<u8>) -> Result<Option<Vec<u8>>, Error> {
        let Source::Reader { reader, framing } = self else {
            return Ok(None);
        };
        buf.clear();
        match framing {
            Framing::Length(0) => Ok(None),
            Framing::Length(owed) => {
                let want = (*owed).min(CHUNK as u64) as usize;
                let n = read_into(&mut **reader, &mut buf, want)?;
                if n == 0 {
                    return Err(StateError::SourceTooShort.into());
                }
                *owed -= n as u64;
                Ok(Some(buf))
            }
            Framing::Chunked => {
                // The size line is written in front of the data once its length is known;
                // fixed-width hex (leading zeros are valid 1*HEXDIG) avoids moving the data.
                buf.extend_from_slice(SIZE_LINE_ROOM);
                let n = read_into(&mut **reader, &mut buf, CHUNK)?;
                if n == 0 {
                    *self = Source::Done;
                    buf.clear();
                    buf.extend_from_slice(b"0\r\n\r\n");
                    return Ok(Some(buf));
                }
                let line = format!("{n:08x}\r\n");
                buf[..SIZE_LINE_ROOM.len()].copy_from_slice(line.as_bytes());
                buf.extend_from_slice(b"\r\n");
                Ok(Some(buf))
            }
        }
    }
}

/// Appends up to `want` bytes from `reader` to `buf` with one successful read.
fn read_into(reader: &mut dyn Read, buf: &mut Vec<u8>, want: usize) -> Result<usize, Error> {
    let start = buf.len();
    buf.resize(start + want, 0);
    loop {
        match reader.read(&mut buf[start..]) {
            Ok(n) => {
                buf.truncate(start + n);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                buf.truncate(start);
                return Err(Error::Io(e));
            }
        }
    }
}

impl<P: Park> Iterator for Cofun<'_, P> {
    type Item = Result<(), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step()
    }
}

impl<P: Park> std::iter::FusedIterator for Cofun<'_, P> {}

impl<P: Park> Drop for Cofun<'_, P> {
    fn drop(&mut self) {
        let Some(mut sender) = self.sender.take() else {
            return;
        };
        let Ok(mut st) = self.conn.state.try_borrow_mut() else {
            // Unreachable (the loop body cannot hold the state across a drop); the sender's own
            // drop still stops the coroutine without unwinding.
            return;
        };
        let result = if !self.started {
            // Nothing went out: un-send the request, as if it never was.
            let _ = sender.cancel();
            if st.generation == self.generation {
                if let (Source::Request { .. }, Some(Resume::Send(mut head))) =
                    (&self.source, self.input.take())
                {
                    st.pipeline.pop_newest();
                    head.clear();
                    st.head_buf = head;
                }
            }
            st.cofun_active = false;
            if let Some(stack) = sender.into_stack() {
                st.stacks.put(stack);
            }
            return;
        } else if matches!(self.input, Some(Resume::Finish)) {
            // Everything went out; only the final resume was missing.
            match sender.resume(Resume::Finish) {
                Step::Done(result) => result,
                Step::Suspended(_) => sender.cancel(),
            }
        } else {
            sender.cancel()
        };
        self.sender = Some(sender);
        let _ = self.finish(&mut st, result);
    }
}
