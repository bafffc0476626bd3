//! The receive half of the driver: response heads and bodies, written once in blocking style
//! against [`Wait`].

use std::io;

use super::state::{Dead, Link, State};
use super::{Env, Response};
use crate::error::{ClosePhase, Error, PoisonCause, StateError};
use crate::io::{is_peer_gone, ReadBuffer, Transport, Wait};
use crate::proto::HeadStep;

/// Caller buffers at least this large are filled straight from the socket when nothing is
/// buffered and the body has no framing bytes, saving a copy.
const DIRECT_READ_MIN: usize = 16 * 1024;

/// Receives more bytes into `buf`, waiting through `wait` while none are ready. Returns
/// `false` at end of stream (a reset counts as one: the bytes before it are kept).
pub(crate) fn fill(
    buf: &mut ReadBuffer,
    transport: &Transport,
    limit: usize,
    wait: &mut dyn Wait,
) -> Result<bool, Error> {
    loop {
        match buf.fill_from(transport, limit) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait.readable(transport)?,
            Err(e) if is_peer_gone(&e) => {
                buf.set_reset();
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads the next final response head, skipping interim ones.
pub(crate) fn read_response(
    st: &mut State,
    env: &Env<'_>,
    wait: &mut dyn Wait,
) -> Result<Response, Error> {
    st.check_dead()?;
    if st.recv.reader.has_body() {
        finish_buffered_framing(st, env, wait)?;
    }
    let Some(front) = st.pipeline.front() else {
        return Err(StateError::NoResponsePending.into());
    };
    let method = front.method.clone();
    let transport = st.transport()?;
    loop {
        match st.recv.reader.read_head(st.recv.buf.data(), &method) {
            Err(e) => {
                // The server acted on this request (it answered, badly): not "unanswered".
                st.pipeline.pop();
                return Err(st.poison(PoisonCause::Protocol(e), e.into()));
            }
            Ok(HeadStep::Interim { len, .. }) => st.recv.buf.consume(len),
            Ok(HeadStep::Final { head, framing, len }) => {
                st.recv.buf.consume(len);
                st.recv.keep_alive = framing.keep_alive;
                let Some(request) = st.pipeline.pop() else {
                    return Err(StateError::NoResponsePending.into());
                };
                let response = Response::new(request, head, framing.body);
                if !st.recv.reader.has_body() {
                    finish_response(st);
                }
                return Ok(response);
            }
            Ok(HeadStep::Partial) => {
                let limit = env.config.limits.max_head_bytes.saturating_add(1);
                if !fill(&mut st.recv.buf, &transport, limit, wait)? {
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
fn finish_buffered_framing(
    st: &mut State,
    env: &Env<'_>,
    wait: &mut dyn Wait,
) -> Result<(), Error> {
    let chunked = st
        .recv
        .reader
        .body()
        .is_some_and(|b| b.raw_remaining().is_none());
    if !chunked {
        return Err(StateError::BodyUnread.into());
    }
    let transport = st.transport()?;
    loop {
        let step = match st.recv.reader.read_body(st.recv.buf.data(), 0) {
            Ok(step) => step,
            Err(e) => return Err(st.poison(PoisonCause::Protocol(e), e.into())),
        };
        st.recv.buf.consume(step.consumed);
        if step.complete {
            finish_response(st);
            return Ok(());
        }
        if !st.recv.buf.is_empty() {
            return Err(StateError::BodyUnread.into());
        }
        if !fill(&mut st.recv.buf, &transport, env.config.max_buffered, wait)? {
            return Err(st.closed_error(ClosePhase::InBody));
        }
    }
}

/// Reads body bytes of the current response into `out`. `Ok(0)` means the body is complete
/// (or no response body is active).
pub(crate) fn read_body(
    st: &mut State,
    env: &Env<'_>,
    out: &mut [u8],
    wait: &mut dyn Wait,
) -> Result<usize, Error> {
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
    let transport = st.transport()?;
    loop {
        if !st.recv.buf.is_empty() {
            let step = match st.recv.reader.read_body(st.recv.buf.data(), out.len()) {
                Ok(step) => step,
                Err(e) => return Err(st.poison(PoisonCause::Protocol(e), e.into())),
            };
            let n = step.data.len();
            out[..n].copy_from_slice(&st.recv.buf.data()[step.data]);
            st.recv.buf.consume(step.consumed);
            if step.complete {
                finish_response(st);
                return Ok(n);
            }
            if n > 0 {
                take_buffered_framing(st);
                return Ok(n);
            }
            if step.consumed > 0 {
                continue;
            }
        } else if let Some(n) = read_direct(st, &transport, out, wait)? {
            return Ok(n);
        }
        if st.recv.buf.is_eof()
            || !fill(&mut st.recv.buf, &transport, env.config.max_buffered, wait)?
        {
            return body_at_eof(st);
        }
    }
}

/// Receives straight into the caller's buffer when that saves a copy: nothing is buffered,
/// the body has no framing bytes and the buffer is large. `None` means "not applicable".
fn read_direct(
    st: &mut State,
    transport: &Transport,
    out: &mut [u8],
    wait: &mut dyn Wait,
) -> Result<Option<usize>, Error> {
    let Some(raw) = st.recv.reader.body().and_then(|b| b.raw_remaining()) else {
        return Ok(None);
    };
    if out.len() < DIRECT_READ_MIN || st.recv.buf.is_eof() {
        return Ok(None);
    }
    let want = (out.len() as u64).min(raw) as usize;
    loop {
        match transport.recv(&mut out[..want]) {
            Ok(0) => {
                st.recv.buf.set_closed();
                return body_at_eof(st).map(Some);
            }
            Ok(n) => {
                st.recv.buf.count_bypass(n);
                let step = st
                    .recv
                    .reader
                    .read_body(&out[..n], n)
                    .map_err(Error::Protocol)?;
                if step.complete {
                    finish_response(st);
                }
                return Ok(Some(n));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait.readable(transport)?,
            Err(e) if is_peer_gone(&e) => {
                st.recv.buf.set_reset();
                return body_at_eof(st).map(Some);
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
    if !st.recv.keep_alive || st.close_after_response {
        st.close(ClosePhase::Announced);
    }
}
