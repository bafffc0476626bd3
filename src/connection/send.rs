//! The send half of the driver, written once: request heads, body pieces framed by the
//! sans-IO [`BodyEncoder`](crate::proto::BodyEncoder), `100 Continue`, and bodies streamed
//! from a reader. Blocking calls, cofunctions and `co_*` operations all run this code; they
//! differ only in the park of the [`Driver`] they pass.

use std::io::{self, IoSlice, Read};

use http::header::EXPECT;
use http::{HeaderMap, Method, StatusCode};

use super::driver::{drain, send_error, Deadline, Driver, Held};
use super::state::{Link, Sender, State};
use super::trace;
use crate::error::{ClosePhase, Error, Operation, PoisonCause};
use crate::io::{Ready, Wake, READABLE};
use crate::proto::{encode_head, Body, Head, HeadStep, InFlight, StateError};

/// Bytes read from a body source per piece.
const PIECE: usize = 64 * 1024;

/// The arguments of `send_request`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a, 'b> {
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: Body<'b>,
}

/// A request that passed validation, whose head is encoded and which has joined the
/// pipeline: what is left is putting it on the wire ([`transmit`]).
#[derive(Debug)]
pub(crate) struct Prepared<'b> {
    held: Held,
    /// Its number in the pipeline ([`Pipeline::pushed`](crate::proto::Pipeline::pushed)).
    request: u64,
    head: Vec<u8>,
    method: Method,
    body: Body<'b>,
    expect_continue: bool,
}

impl Prepared<'_> {
    /// The request's number in the pipeline, and the link it joined.
    pub(crate) fn id(&self) -> (u64, u64) {
        (self.request, self.held.generation)
    }
}

/// Everything before the first byte of a request goes out: validation and encoding (so a bad
/// request sends nothing), connecting or reconnecting, and joining the pipeline.
pub(crate) fn prepare<'b>(
    d: &Driver<'_>,
    request: &Request<'_, 'b>,
) -> Result<Prepared<'b>, Error> {
    let mut st = d.state()?;
    check_caller_sends(&st)?;
    if !st.send.outgoing.is_stopped() {
        // On a link the server stopped reading, a body still owed can never be finished:
        // `ready_to_send` replaces that link (once its responses are read) instead.
        st.send.encoder.check_new_request()?;
    }
    let body = request.body;
    let empty_body = matches!(body, Body::Empty | Body::Following(0)) || body == Body::Bytes(&[]);
    let expect_continue = wants_continue(request.headers) && !empty_body;
    if expect_continue && st.response_pending() {
        return Err(StateError::ContinueWhilePipelining.into());
    }
    let framing = body.framing(request.method);
    let mut head = std::mem::take(&mut st.send.head_buf);
    head.clear();
    let mut target_buf = std::mem::take(&mut st.send.target_buf);
    let route = &d.target.route;
    let encoded = encode_head(
        &Head {
            method: request.method,
            target: route.request_target(request.path, &mut target_buf),
            headers: request.headers,
            host: &d.target.host_header,
            proxy_authorization: route.request_credentials(),
        },
        framing,
        &mut head,
    );
    st.send.target_buf = target_buf;
    let ready = encoded
        .map_err(Error::from)
        .and_then(|()| st.ready_to_send(d))
        .and_then(|()| st.held());
    let held = match ready {
        Ok(held) => held,
        Err(e) => {
            st.send.head_buf = head;
            return Err(e);
        }
    };
    st.send.encoder.start(framing, expect_continue)?;
    st.pipeline.push(InFlight {
        method: request.method.clone(),
        target: request.path.to_owned(),
    });
    Ok(Prepared {
        held,
        request: st.pipeline.pushed(),
        head,
        method: request.method.clone(),
        body,
        expect_continue,
    })
}

/// Sends a prepared request: its head, an in-memory body (after `100 Continue`, if it waits
/// for one).
pub(crate) fn transmit(d: &Driver<'_>, prepared: Prepared<'_>) -> Result<(), Error> {
    let Prepared {
        held,
        request,
        head,
        method,
        body,
        expect_continue,
    } = prepared;
    let inline = match body {
        Body::Bytes(bytes) if !expect_continue => bytes,
        _ => &[],
    };
    // A cofunction's loop body may have run since the request was prepared, and read a
    // response that closed the link: then nothing goes out, on the old socket least of all.
    let may_wait = {
        let mut st = d.relock_in(&held, ClosePhase::WhileSending)?;
        if !inline.is_empty() {
            st.send.encoder.frame(inline.len())?;
        }
        // A request complete in memory, behind earlier ones still unanswered, may wait to go
        // out with the next ones: the caller reads (and so sends it) to get those answers.
        // The first request on an idle connection, and one whose body the caller writes
        // next (or sends after `100 Continue`), go out now.
        !expect_continue && !st.send.encoder.is_owed() && st.pipeline.len() > 1
    };
    let mut bufs = [IoSlice::new(&head), IoSlice::new(inline)];
    let queued = d.config.coalesce_writes && may_wait && held.transport.queue(&bufs);
    if !queued {
        write_all(d, &held, request, &mut bufs, Operation::SendRequest)?;
        if let Ok(mut st) = d.state() {
            st.send.just_sent = st.pipeline.len() == 1 && !st.send.encoder.is_owed();
        }
    }
    trace::request(&held.transport, &head, queued);
    if let Ok(mut st) = d.state() {
        if st.send.head_buf.capacity() < head.capacity() {
            let mut head = head;
            head.clear();
            st.send.head_buf = head;
        }
    }
    if expect_continue {
        await_continue(d, &held, request, &method)?;
        if let Body::Bytes(bytes) = body {
            if d.relock_in(&held, ClosePhase::WhileSending)?
                .send
                .encoder
                .is_owed()
            {
                put_body(d, &held, request, bytes)?;
            }
        }
    }
    Ok(())
}

/// Sends every queued byte (see [`Config::coalesce_writes`](crate::Config::coalesce_writes)),
/// waiting for the socket to take them.
pub(crate) fn flush(d: &Driver<'_>) -> Result<(), Error> {
    let (held, request) = {
        let mut st = d.state()?;
        match &st.link {
            Link::Open(t) if t.has_queued() => {}
            _ => return Ok(()),
        }
        (st.held()?, st.pipeline.pushed())
    };
    let mut deadline = Deadline::new(Operation::SendRequest, d.config.timeout);
    let flushed = loop {
        match held.transport.flush() {
            Ok(true) => break Ok(()),
            Ok(false) => {
                if let Err(e) = wait_to_send(d, &held, &mut deadline) {
                    break Err(e);
                }
            }
            Err(e) => break Err(send_error(e)),
        }
    };
    flushed.map_err(|e| fold(d, &held, request, e))
}

/// Sends a request: [`prepare`] then [`transmit`].
pub(crate) fn send_request(d: &Driver<'_>, request: &Request<'_, '_>) -> Result<(), Error> {
    let prepared = prepare(d, request)?;
    transmit(d, prepared)
}

/// RFC 9110 §10.1.1: waits for `100 Continue`, or until `continue_timeout` passes (then the
/// body goes anyway). A final response instead leaves the body refused (and the connection to
/// close after that response, since the server cannot know whether the body will follow); the
/// response stays buffered for `read_response`.
fn await_continue(d: &Driver<'_>, held: &Held, request: u64, method: &Method) -> Result<(), Error> {
    let patience = d.config.continue_timeout.or(d.config.timeout);
    let mut deadline = Deadline::new(Operation::AwaitContinue, patience);
    let mut st = d.relock_in(held, ClosePhase::WhileSending)?;
    loop {
        let recv = &mut st.recv;
        match recv.reader.poll_interim(recv.buf.data(), method) {
            Err(e) => {
                // The server answered this request, badly: not "unanswered" (as in
                // `read_response`).
                st.pipeline.pop();
                return Err(st.poison(PoisonCause::Protocol(e), e.into()));
            }
            Ok(HeadStep::Interim { status, len }) => {
                st.recv.buf.consume(len);
                trace::interim(&held.transport, status);
                if status == StatusCode::CONTINUE {
                    st.send.encoder.continue_granted();
                    return Ok(());
                }
            }
            Ok(HeadStep::Final { .. }) => {
                st.send.encoder.continue_refused();
                st.send.close_after_response = true;
                return Ok(());
            }
            Ok(HeadStep::Partial) => {
                let limit = d.config.limits.max_head_bytes.saturating_add(1);
                match d.fill(st, held, limit, &mut deadline) {
                    Ok((next, true)) => st = next,
                    Ok((mut next, false)) => {
                        if next.recv.buf.is_empty() {
                            return Err(next.closed_error(ClosePhase::BeforeResponse));
                        }
                        // A response had started: the server acted on this request, which
                        // is not "unanswered" (as in `read_response`).
                        next.pipeline.pop();
                        return Err(next.closed_error(ClosePhase::InHead));
                    }
                    Err(Error::Timeout { .. }) if d.config.continue_timeout.is_some() => {
                        d.relock_in(held, ClosePhase::WhileSending)?
                            .send
                            .encoder
                            .continue_granted();
                        return Ok(());
                    }
                    Err(e) => return Err(fold(d, held, request, e)),
                }
            }
        }
    }
}

fn wants_continue(headers: &HeaderMap) -> bool {
    headers
        .get_all(EXPECT)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// The checks every body write of the caller's starts with.
fn check_caller_sends(st: &State) -> Result<(), Error> {
    if st.send.sender == Sender::Coroutine {
        return Err(StateError::CofunctionActive.into());
    }
    Ok(())
}

/// Where a body write goes: the open link, after the misuse checks.
fn body_target(st: &mut State, len: usize) -> Result<(Held, u64), Error> {
    check_caller_sends(st)?;
    st.check_dead()?;
    if st.send.outgoing.is_stopped() || st.send.body_cut {
        return Err(send_error(io::ErrorKind::BrokenPipe.into()));
    }
    st.send.encoder.check(len)?;
    Ok((st.held()?, st.pipeline.pushed()))
}

/// Where a body streamed from a reader goes; `None` when the request declared an empty body,
/// which takes nothing from the reader (as a `Following` body never reads past its length).
/// Otherwise a body must be owed, as for `write`: one already complete takes no reader,
/// whose bytes could not be sent.
pub(crate) fn stream_target(st: &mut State) -> Result<Option<(Held, u64)>, Error> {
    check_caller_sends(st)?;
    if st.send.encoder.is_declared_empty() {
        return Ok(None);
    }
    body_target(st, 0).map(Some)
}

/// Writes request body bytes for a `Following` or `Chunked` body.
pub(crate) fn write_body(d: &Driver<'_>, data: &[u8]) -> Result<(), Error> {
    let (held, request) = body_target(&mut *d.state()?, data.len())?;
    if data.is_empty() {
        return Ok(());
    }
    put_body(d, &held, request, data)
}

/// Ends a chunked body (the last chunk, no trailers).
pub(crate) fn finish_body(d: &Driver<'_>) -> Result<(), Error> {
    let (held, request, last, outbox) = {
        let mut st = d.state()?;
        let (held, request) = body_target(&mut st, 0)?;
        let last = st.send.encoder.finish()?;
        (held, request, last, std::mem::take(&mut st.send.outbox))
    };
    let mut bufs = [IoSlice::new(&outbox), IoSlice::new(last)];
    write_all(d, &held, request, &mut bufs, Operation::WriteBody)
}

/// At most one non-blocking send of body bytes; see `HttpConnection::write_partial`.
pub(crate) fn write_partial(d: &Driver<'_>, data: &[u8]) -> Result<usize, Error> {
    let mut st = d.state()?;
    let (held, request) = body_target(&mut st, data.len())?;
    let st = &mut *st;
    if !st.send.outbox.is_empty() {
        // The rest of a chunk the socket cut short last time goes first.
        return match held.transport.send(&[IoSlice::new(&st.send.outbox)]) {
            Ok(n) => {
                st.send.outbox.drain(..n);
                Ok(0)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(st.send_failed(&held, request, send_error(e))),
        };
    }
    if data.is_empty() {
        return Ok(0);
    }
    if st.send.encoder.remaining().is_some() {
        // Content-Length: only what the socket took is accounted for.
        return match held.transport.send(&[IoSlice::new(data)]) {
            Ok(sent) => {
                st.send.encoder.frame(sent)?;
                Ok(sent)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(st.send_failed(&held, request, send_error(e))),
        };
    }
    let frame = st.send.encoder.frame(data.len())?;
    let pieces = [frame.prefix(), data, frame.suffix()];
    let bufs = pieces.map(IoSlice::new);
    let sent = match held.transport.send(&bufs) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
        Err(e) => return Err(st.send_failed(&held, request, send_error(e))),
    };
    // A chunk's size line promises all of `data`: whatever of the chunk did not fit is kept
    // and sent first next time, and all of `data` counts as accepted.
    let mut skip = sent;
    for piece in pieces {
        let taken = skip.min(piece.len());
        st.send.outbox.extend_from_slice(&piece[taken..]);
        skip -= taken;
    }
    Ok(data.len())
}

/// Streams `reader` as the body owed by the newest request: a `Content-Length` body gets
/// exactly its remaining length (the reader is not read past it), a chunked body ends when
/// the reader does. Between pieces, a response that has already arrived (an early 413, say)
/// is offered to the caller before more goes out.
pub(crate) fn stream_body(
    d: &Driver<'_>,
    held: &Held,
    request: u64,
    reader: &mut dyn Read,
) -> Result<(), Error> {
    let mut buf = vec![0u8; PIECE];
    loop {
        let want = {
            let st = d.relock_in(held, ClosePhase::WhileSending)?;
            match st.send.encoder.remaining() {
                Some(left) => left.min(PIECE as u64) as usize,
                None if st.send.encoder.is_owed() => PIECE,
                None => 0,
            }
        };
        if want == 0 {
            return Ok(());
        }
        let n = match read_source(reader, &mut buf[..want]) {
            Ok(n) => n,
            Err(e) => return Err(source_failed(d, held, e)),
        };
        if n == 0 {
            let (last, outbox) = {
                let mut st = d.relock_in(held, ClosePhase::WhileSending)?;
                match st.send.encoder.finish() {
                    Ok(last) => (last, std::mem::take(&mut st.send.outbox)),
                    Err(StateError::BodyTooShort) => {
                        drop(st);
                        return Err(source_failed(d, held, StateError::SourceTooShort.into()));
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            let mut bufs = [IoSlice::new(&outbox), IoSlice::new(last)];
            return write_all(d, held, request, &mut bufs, Operation::WriteBody);
        }
        put_body(d, held, request, &buf[..n])?;
        offer_arrived(d, held).map_err(|e| fold(d, held, request, e))?;
    }
}

/// One successful read from a body source.
fn read_source(reader: &mut dyn Read, buf: &mut [u8]) -> Result<usize, Error> {
    loop {
        match reader.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        }
    }
}

/// The body source failed after the head declared its body: framing is lost.
fn source_failed(d: &Driver<'_>, held: &Held, e: Error) -> Error {
    match d.relock_in(held, ClosePhase::WhileSending) {
        Ok(mut st) => st.poison_sending(PoisonCause::BodySource, e),
        Err(_) => e,
    }
}

/// If response bytes have arrived, lets the caller read them now (a cofunction's loop body
/// runs; a blocking park just looks and returns).
fn offer_arrived(d: &Driver<'_>, held: &Held) -> Result<(), Error> {
    let arrived = d
        .relock_in(held, ClosePhase::WhileSending)?
        .take_arrived(d.config.max_buffered);
    if !arrived {
        return Ok(());
    }
    match d
        .park
        .park(&held.transport, READABLE, Some(std::time::Duration::ZERO))?
    {
        Wake::Cancelled => Err(Error::Cancelled),
        _ => Ok(()),
    }
}

/// Frames `data` as the next piece of the owed body and writes it, after any bytes committed
/// earlier.
fn put_body(d: &Driver<'_>, held: &Held, request: u64, data: &[u8]) -> Result<(), Error> {
    let (frame, outbox) = {
        let mut st = d.relock_in(held, ClosePhase::WhileSending)?;
        let frame = st.send.encoder.frame(data.len())?;
        (frame, std::mem::take(&mut st.send.outbox))
    };
    let pieces = [&outbox[..], frame.prefix(), data, frame.suffix()];
    let mut bufs = pieces.map(IoSlice::new);
    write_all(d, held, request, &mut bufs, Operation::WriteBody)
}

/// Writes every byte of `bufs`, trying the socket first and waiting through the driver's
/// park only when it is full; response bytes that arrive meanwhile are taken in. A failure
/// is folded into the state (broken or poisoned) and returned.
fn write_all(
    d: &Driver<'_>,
    held: &Held,
    request: u64,
    bufs: &mut [IoSlice<'_>],
    operation: Operation,
) -> Result<(), Error> {
    let mut deadline = Deadline::new(operation, d.config.timeout);
    send_all(d, held, bufs, &mut deadline).map_err(|e| fold(d, held, request, e))
}

fn send_all(
    d: &Driver<'_>,
    held: &Held,
    mut bufs: &mut [IoSlice<'_>],
    deadline: &mut Deadline,
) -> Result<(), Error> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match held.transport.send(bufs) {
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_to_send(d, held, deadline)?,
            Err(e) => return Err(send_error(e)),
        }
    }
    Ok(())
}

/// The socket is full: waits until it takes bytes again, moving response bytes that arrive
/// meanwhile into the receive buffer (bounded), so a server that answers before it reads on
/// cannot deadlock the send.
fn wait_to_send(d: &Driver<'_>, held: &Held, deadline: &mut Deadline) -> Result<(), Error> {
    // Once the server has closed its side, "readable" would be reported forever.
    let readable = !d
        .relock_in(held, ClosePhase::WhileSending)?
        .recv
        .buf
        .is_eof();
    let interest = Ready {
        readable,
        writable: true,
    };
    let ready = d.wait(&held.transport, interest, deadline)?;
    // The wait may have let the caller read (a cofunction's loop body, `Wake::Resumed`): if
    // that closed the link, no more of the request goes out on its socket.
    let mut st = d.relock_in(held, ClosePhase::WhileSending)?;
    if ready.readable {
        drain(&mut st.recv.buf, d.config.max_buffered, &held.transport)?;
    }
    Ok(())
}

/// Folds a send-side failure into the state.
fn fold(d: &Driver<'_>, held: &Held, request: u64, e: Error) -> Error {
    match d.state() {
        Ok(mut st) => st.send_failed(held, request, e),
        Err(_) => e,
    }
}
