//! The receive half of the driver, written once: response heads and bodies. The state is
//! borrowed only between waits ([`Driver::fill`] releases it), so `co_*` reads and sends can
//! be driven side by side.

use std::cell::RefMut;
use std::io;

use super::driver::{Deadline, Driver, Held, Receive};
use super::state::{Dead, Link, State};
use super::trace;
use super::Response;
use crate::error::{ClosePhase, Error, PoisonCause};
use crate::io::{is_peer_gone, READ_AHEAD};
use crate::proto::{HeadStep, StateError};

/// Caller buffers at least this large are filled straight from the socket when nothing is
/// buffered and the body has no framing bytes, saving a copy.
const DIRECT_READ_MIN: usize = 16 * 1024;

/// Reads the next final response head, skipping interim ones.
pub(crate) fn read_response(d: &Driver<'_>, deadline: &mut Deadline) -> Result<Response, Error> {
    let mut st = d.state()?;
    st.check_dead()?;
    if st.recv.reader.has_body() {
        st = finish_buffered_framing(d, st, deadline)?;
    }
    let Some(front) = st.pipeline.front() else {
        return Err(StateError::NoResponsePending.into());
    };
    let method = front.method.clone();
    let held = st.held()?;
    loop {
        let recv = &mut st.recv;
        match recv.reader.read_head(recv.buf.data(), &method) {
            Err(e) => {
                // The server acted on this request (it answered, badly): not "unanswered".
                st.pipeline.pop();
                return Err(st.poison(PoisonCause::Protocol(e), e.into()));
            }
            Ok(HeadStep::Interim { status, len }) => {
                st.recv.buf.consume(len);
                trace::interim(&held.transport, status);
            }
            Ok(HeadStep::Final { head, framing, len }) => {
                st.recv.buf.consume(len);
                st.recv.keep_alive = framing.keep_alive;
                let Some(request) = st.pipeline.pop() else {
                    return Err(StateError::NoResponsePending.into());
                };
                trace::response(&held.transport, &request, &head);
                let response = Response::new(request, head, framing.body);
                if !st.recv.reader.has_body() {
                    finish_response(&mut st);
                }
                return Ok(response);
            }
            Ok(HeadStep::Partial) => {
                let limit = d.config.limits.max_head_bytes.saturating_add(1);
                let (next, more) = d.fill(st, &held, limit, deadline)?;
                st = next;
                if !more {
                    if st.recv.buf.is_empty() {
                        return Err(st.closed_error(ClosePhase::BeforeResponse));
                    }
                    // The response had started: the server acted on this request.
                    st.pipeline.pop();
                    return Err(st.closed_error(ClosePhase::InHead));
                }
            }
        }
    }
}

/// A chunked body whose data has all been read may still have its last-chunk and trailers
/// on the way: take them. Any other unread body is the caller's mistake.
fn finish_buffered_framing<'a>(
    d: &Driver<'a>,
    mut st: RefMut<'a, State>,
    deadline: &mut Deadline,
) -> Result<RefMut<'a, State>, Error> {
    let chunked = st
        .recv
        .reader
        .body()
        .is_some_and(|b| b.raw_remaining().is_none());
    if !chunked {
        return Err(StateError::BodyUnread.into());
    }
    let held = st.held()?;
    loop {
        let recv = &mut st.recv;
        let step = match recv.reader.read_body(recv.buf.data(), 0) {
            Ok(step) => step,
            Err(e) => return Err(st.poison(PoisonCause::Protocol(e), e.into())),
        };
        st.recv.buf.consume(step.consumed);
        if step.complete {
            finish_response(&mut st);
            return Ok(st);
        }
        if !st.recv.buf.is_empty() {
            return Err(StateError::BodyUnread.into());
        }
        let (next, more) = d.fill(st, &held, READ_AHEAD, deadline)?;
        st = next;
        if !more {
            return Err(st.closed_error(ClosePhase::InBody));
        }
    }
}

/// Reads body bytes of the current response into `out`. `Ok(0)` means the body is complete
/// (or no response body is active).
pub(crate) fn read_body(
    d: &Driver<'_>,
    out: &mut [u8],
    deadline: &mut Deadline,
) -> Result<usize, Error> {
    let mut st = d.state()?;
    if !st.recv.reader.has_body() {
        if let Link::Dead {
            why: Dead::Poisoned(_),
            ..
        } = st.link
        {
            st.check_dead()?;
        }
        return Ok(0);
    }
    if out.is_empty() {
        return Ok(0);
    }
    let held = st.held()?;
    loop {
        if !st.recv.buf.is_empty() {
            let recv = &mut st.recv;
            let step = match recv.reader.read_body(recv.buf.data(), out.len()) {
                Ok(step) => step,
                Err(e) => return Err(st.poison(PoisonCause::Protocol(e), e.into())),
            };
            let n = step.data.len();
            out[..n].copy_from_slice(&st.recv.buf.data()[step.data]);
            st.recv.buf.consume(step.consumed);
            if step.complete {
                finish_response(&mut st);
                return Ok(n);
            }
            if n > 0 {
                take_buffered_framing(&mut st);
                return Ok(n);
            }
            if step.consumed > 0 {
                continue;
            }
        } else if direct_read_fits(&st, out.len()) {
            drop(st);
            match read_direct(d, &held, out, deadline)? {
                Direct::Read(n) => return Ok(n),
                Direct::Buffered(next) => {
                    st = next;
                    continue;
                }
            }
        }
        if st.recv.buf.is_eof() {
            return body_at_eof(&mut st);
        }
        let (next, more) = d.fill(st, &held, READ_AHEAD, deadline)?;
        st = next;
        if !more {
            return body_at_eof(&mut st);
        }
    }
}

/// Whether receiving straight into the caller's buffer saves a copy: nothing is buffered,
/// the body has no framing bytes and the buffer is large.
fn direct_read_fits(st: &State, len: usize) -> bool {
    let raw = st.recv.reader.body().and_then(|b| b.raw_remaining());
    raw.is_some() && len >= DIRECT_READ_MIN && !st.recv.buf.is_eof()
}

/// How a direct read ended.
enum Direct<'a> {
    /// This many bytes were received into the caller's buffer.
    Read(usize),
    /// While it waited, response bytes were taken into the receive buffer (by a `co_*`
    /// send beside this read): they come first, so the read goes through the buffer.
    Buffered(RefMut<'a, State>),
}

/// Receives body bytes straight into `out` (see [`direct_read_fits`]).
fn read_direct<'a>(
    d: &Driver<'a>,
    held: &Held,
    out: &mut [u8],
    deadline: &mut Deadline,
) -> Result<Direct<'a>, Error> {
    let mut how = Receive::Now;
    loop {
        let mut st = d.relock(held)?;
        if !st.recv.buf.is_empty() {
            return Ok(Direct::Buffered(st));
        }
        let Some(raw) = st.recv.reader.body().and_then(|b| b.raw_remaining()) else {
            return Ok(Direct::Read(0));
        };
        let want = (out.len() as u64).min(raw) as usize;
        let got = match how {
            Receive::Now => held.transport.recv(&mut out[..want]),
            Receive::Waiting(timeout) => held.transport.recv_blocking(&mut out[..want], timeout),
        };
        match got {
            Ok(0) => {
                st.recv.buf.set_closed();
                return body_at_eof(&mut st).map(Direct::Read);
            }
            Ok(n) => {
                st.recv.buf.count_bypass(n);
                let step = st
                    .recv
                    .reader
                    .read_body(&out[..n], n)
                    .map_err(Error::Protocol)?;
                if step.complete {
                    finish_response(&mut st);
                }
                return Ok(Direct::Read(n));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                drop(st);
                how = d.read_wait(held, deadline, true)?;
            }
            Err(e) if is_peer_gone(&e) => {
                st.recv.buf.set_reset();
                return body_at_eof(&mut st).map(Direct::Read);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// After delivering data, consumes chunk framing that is already buffered, so a body whose
/// end has arrived is complete without another call. Errors are left for the next read.
fn take_buffered_framing(st: &mut State) {
    while !st.recv.buf.is_empty() {
        let Ok(step) = st.recv.reader.read_body(st.recv.buf.data(), 0) else {
            return;
        };
        st.recv.buf.consume(step.consumed);
        if step.complete {
            finish_response(st);
            return;
        }
        if step.consumed == 0 {
            return;
        }
    }
}

/// The server closed the connection during a body: the end of a close-delimited body,
/// otherwise (or after a reset, which cannot vouch for completeness) a truncation.
fn body_at_eof(st: &mut State) -> Result<usize, Error> {
    if !st.recv.buf.was_reset() && st.recv.reader.end_at_close() {
        finish_response(st);
        Ok(0)
    } else {
        Err(st.closed_error(ClosePhase::InBody))
    }
}

/// A response is complete: close the connection if it said so.
fn finish_response(st: &mut State) {
    if !st.recv.keep_alive || st.send.close_after_response {
        st.close(ClosePhase::Announced);
    }
}

/// Reads the rest of the current response body onto the end of `out`, straight into its
/// spare capacity (sized from `Content-Length` when the body has one).
pub(crate) fn read_to_end(
    d: &Driver<'_>,
    out: &mut Vec<u8>,
    deadline: &mut Deadline,
) -> Result<(), Error> {
    const STEP: usize = 64 * 1024;
    let hint = d
        .state()?
        .recv
        .reader
        .body()
        .and_then(|b| b.raw_remaining())
        .map_or(8 * 1024, |left| left.min(STEP as u64) as usize);
    out.reserve(hint.max(1));
    loop {
        if !d.state()?.recv.reader.has_body() {
            // Complete (or never started: `read_body` reports a poisoned link then).
            return read_body(d, &mut [], deadline).map(drop);
        }
        if out.len() == out.capacity() {
            out.reserve(out.len().clamp(8 * 1024, STEP));
        }
        let start = out.len();
        // Zero only the room one read can fill, never the whole spare capacity again.
        let room = (out.capacity() - start).min(STEP);
        out.resize(start + room, 0);
        let read = read_body(d, &mut out[start..], deadline);
        let n = *read.as_ref().unwrap_or(&0);
        out.truncate(start + n);
        if read? == 0 {
            return Ok(());
        }
    }
}

/// Reads and drops the rest of the current response body, returning its length.
pub(crate) fn discard(d: &Driver<'_>, deadline: &mut Deadline) -> Result<u64, Error> {
    let mut chunk = [0u8; DIRECT_READ_MIN];
    let mut total = 0u64;
    loop {
        match read_body(d, &mut chunk, deadline)? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}
