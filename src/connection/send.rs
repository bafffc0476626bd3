//! The send half of the driver: request heads, bodies and `100 Continue`, written once in
//! blocking style against [`Wait`].

use std::io::{self, IoSlice};
use std::sync::Arc;

use http::header::EXPECT;
use http::{HeaderMap, Method, StatusCode};

use super::recv::fill;
use super::state::{Sending, State};
use super::Env;
use crate::error::{ClosePhase, Error, Operation, PoisonCause, StateError};
use crate::io::{send_io_error, write_all, BlockingWait, Deadline, Transport};
use crate::proto::{encode_request_head, Body, HeadStep, InFlight};

/// A request that passed validation and whose connection is open: its head is encoded in
/// `State::head_buf` and it has joined the pipeline.
pub(crate) struct Prepared {
    pub(crate) transport: Arc<Transport>,
    pub(crate) expect_continue: bool,
    /// The send state once the head (and any in-memory body) is out.
    pub(crate) after: Sending,
}

/// Everything before the first byte of a request goes out, shared by every send path:
/// validation and encoding (so a bad request sends nothing), connecting or reconnecting, and
/// joining the pipeline.
pub(crate) fn prepare(
    st: &mut State,
    env: &Env<'_>,
    request: &Request<'_>,
) -> Result<Prepared, Error> {
    if st.cofun_active {
        return Err(StateError::CofunctionActive.into());
    }
    if !matches!(
        st.sending,
        Sending::Idle | Sending::Refused | Sending::Broken
    ) {
        return Err(StateError::BodyIncomplete.into());
    }
    let body = request.body;
    let empty_body = matches!(body, Body::Empty | Body::Following(0)) || body == Body::Bytes(&[]);
    let expect_continue = wants_continue(request.headers) && !empty_body;
    if expect_continue && st.response_pending() {
        return Err(StateError::ContinueWhilePipelining.into());
    }
    st.head_buf.clear();
    let framing = body.framing(request.method);
    let (method, path, headers) = (request.method, request.path, request.headers);
    encode_request_head(
        method,
        path,
        headers,
        &env.target.host_header,
        framing,
        &mut st.head_buf,
    )?;

    st.ready_to_send(env)?;
    let transport = st.transport()?;
    st.pipeline.push(InFlight {
        method: method.clone(),
        target: path.to_owned(),
    });
    st.empty_body_sent = body == Body::Following(0);
    let after = match body {
        Body::Following(n) if n > 0 => Sending::Length(n),
        Body::Chunked => Sending::Chunked,
        _ => Sending::Idle,
    };
    Ok(Prepared {
        transport,
        expect_continue,
        after,
    })
}

/// The arguments of `send_request`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: Body<'a>,
}

/// Sends a request head (and an in-memory body), connecting first if needed.
pub(crate) fn send_request(
    st: &mut State,
    env: &Env<'_>,
    request: &Request<'_>,
) -> Result<(), Error> {
    let Prepared {
        transport,
        expect_continue,
        after,
    } = prepare(st, env, request)?;
    st.sending = after;
    let inline = match request.body {
        Body::Bytes(bytes) if !expect_continue => bytes,
        _ => &[],
    };
    let deadline = Deadline::new(Operation::SendRequest, env.config.timeout);
    let head = std::mem::take(&mut st.head_buf);
    let mut bufs = [IoSlice::new(&head), IoSlice::new(inline)];
    let result = write_blocking(st, env, &transport, deadline, &mut bufs);
    st.head_buf = head;
    result?;

    if expect_continue {
        await_continue(st, &transport, env, request.method)?;
        if let (Body::Bytes(bytes), Sending::Idle) = (request.body, st.sending) {
            write_blocking(st, env, &transport, deadline, &mut [IoSlice::new(bytes)])?;
        }
    }
    Ok(())
}

/// Writes `bufs` through the connection's park, keeping response bytes that arrive
/// meanwhile; a failure updates the send state (broken or poisoned) and is returned.
fn write_blocking(
    st: &mut State,
    env: &Env<'_>,
    transport: &Transport,
    deadline: Deadline,
    bufs: &mut [IoSlice<'_>],
) -> Result<(), Error> {
    let limit = env.config.max_buffered;
    let mut wait = BlockingWait::sending(deadline, env.park, &mut st.recv.buf, limit);
    let result = write_all(transport, bufs, &mut wait);
    result.map_err(|e| st.send_failed(e))
}

/// RFC 9110 §10.1.1: waits for `100 Continue`, or until `continue_timeout` passes (then the
/// body goes anyway). A final response instead leaves the body refused (and the connection to
/// close after that response, since the server cannot know whether the body will follow); the
/// response stays buffered for `read_response`.
pub(crate) fn await_continue(
    st: &mut State,
    transport: &Transport,
    env: &Env<'_>,
    method: &Method,
) -> Result<(), Error> {
    let patience = env.config.continue_timeout.or(env.config.timeout);
    let mut wait =
        BlockingWait::reading(env.park, Deadline::new(Operation::AwaitContinue, patience));
    loop {
        match st.recv.reader.poll_interim(st.recv.buf.data(), method) {
            Err(e) => return Err(st.poison(PoisonCause::Protocol(e), e.into())),
            Ok(HeadStep::Interim { status, len }) => {
                st.recv.buf.consume(len);
                if status == StatusCode::CONTINUE {
                    return Ok(());
                }
            }
            Ok(HeadStep::Final { .. }) => {
                st.sending = Sending::Refused;
                st.close_after_response = true;
                return Ok(());
            }
            Ok(HeadStep::Partial) => {
                let limit = env.config.limits.max_head_bytes.saturating_add(1);
                match fill(&mut st.recv.buf, transport, limit, &mut wait) {
                    Ok(true) => {}
                    Ok(false) => {
                        let phase = if st.recv.buf.is_empty() {
                            ClosePhase::BeforeResponse
                        } else {
                            ClosePhase::InHead
                        };
                        return Err(st.closed_error(phase));
                    }
                    Err(Error::Timeout { .. }) if env.config.continue_timeout.is_some() => {
                        return Ok(())
                    }
                    Err(e) => return Err(st.send_failed(e)),
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

/// How `data` goes out as the next piece of the owed body: the framing before and after it,
/// and the send state once all of it is out.
fn frame_piece<'a>(
    sending: Sending,
    data: &[u8],
    size_line: &'a mut [u8; 18],
) -> Result<(&'a [u8], &'static [u8], Sending), Error> {
    match sending {
        Sending::Length(owed) => {
            let len = data.len() as u64;
            if len > owed {
                return Err(StateError::BodyTooLong.into());
            }
            let next = if len == owed {
                Sending::Idle
            } else {
                Sending::Length(owed - len)
            };
            Ok((&[], b"", next))
        }
        Sending::Chunked => Ok((
            chunk_size_line(data.len(), size_line),
            b"\r\n",
            Sending::Chunked,
        )),
        other => Err(sending_misuse(other)),
    }
}

/// The checks every body write starts with.
fn check_body_write(st: &mut State) -> Result<(), Error> {
    if st.cofun_active {
        return Err(StateError::CofunctionActive.into());
    }
    st.check_dead()
}

/// Writes request body bytes for a `Following` or `Chunked` body.
pub(crate) fn write_body(st: &mut State, env: &Env<'_>, data: &[u8]) -> Result<(), Error> {
    check_body_write(st)?;
    let mut size_line = [0u8; 18];
    let (before, after, next) = frame_piece(st.sending, data, &mut size_line)?;
    if data.is_empty() {
        // An empty chunk would end a chunked body; an empty write is a no-op.
        return Ok(());
    }
    let transport = st.transport()?;
    let owed = std::mem::take(&mut st.owed);
    let deadline = Deadline::new(Operation::WriteBody, env.config.timeout);
    let mut bufs = [
        IoSlice::new(&owed),
        IoSlice::new(before),
        IoSlice::new(data),
        IoSlice::new(after),
    ];
    write_blocking(st, env, &transport, deadline, &mut bufs)?;
    st.sending = next;
    Ok(())
}

/// At most one non-blocking send of body bytes; see `HttpConnection::write_partial`.
pub(crate) fn write_partial(st: &mut State, data: &[u8]) -> Result<usize, Error> {
    check_body_write(st)?;
    let transport = st.transport()?;
    if !st.owed.is_empty() {
        // The rest of a chunk the socket cut short last time goes first.
        match transport.send(&[IoSlice::new(&st.owed)]) {
            Ok(n) => drop(st.owed.drain(..n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(st.send_failed(send_io_error(e))),
        }
        return Ok(0);
    }
    let mut size_line = [0u8; 18];
    let (before, after, _) = frame_piece(st.sending, data, &mut size_line)?;
    if data.is_empty() {
        return Ok(0);
    }
    let bufs = [
        IoSlice::new(before),
        IoSlice::new(data),
        IoSlice::new(after),
    ];
    let sent = match transport.send(&bufs) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
        Err(e) => return Err(st.send_failed(send_io_error(e))),
    };
    match st.sending {
        Sending::Length(owed) => {
            let left = owed - sent as u64;
            st.sending = if left == 0 {
                Sending::Idle
            } else {
                Sending::Length(left)
            };
            Ok(sent)
        }
        _ => {
            // A chunk's size line promises all of `data`: whatever of the chunk did not fit
            // is kept and sent first next time, and all of `data` counts as accepted.
            let total = before.len() + data.len() + after.len();
            if sent < total {
                let chunk = [before, data, after].concat();
                st.owed.extend_from_slice(&chunk[sent..]);
            }
            Ok(data.len())
        }
    }
}

/// Ends a chunked body (the last-chunk, no trailers).
pub(crate) fn finish_body(st: &mut State, env: &Env<'_>) -> Result<(), Error> {
    check_body_write(st)?;
    match st.sending {
        Sending::Chunked => {}
        Sending::Length(_) => return Err(StateError::BodyTooShort.into()),
        other => return Err(sending_misuse(other)),
    }
    let transport = st.transport()?;
    let deadline = Deadline::new(Operation::WriteBody, env.config.timeout);
    let owed = std::mem::take(&mut st.owed);
    let mut bufs = [IoSlice::new(&owed), IoSlice::new(b"0\r\n\r\n")];
    write_blocking(st, env, &transport, deadline, &mut bufs)?;
    st.sending = Sending::Idle;
    Ok(())
}

fn sending_misuse(sending: Sending) -> Error {
    match sending {
        Sending::Refused => StateError::BodyRefused.into(),
        Sending::Broken => send_io_error(io::ErrorKind::BrokenPipe.into()),
        _ => StateError::NoBodyExpected.into(),
    }
}

/// `1*HEXDIG CRLF` for a chunk of `len` bytes.
fn chunk_size_line(len: usize, buf: &mut [u8; 18]) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut i = 16;
    let mut n = len;
    loop {
        i -= 1;
        buf[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    buf[16] = b'\r';
    buf[17] = b'\n';
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::chunk_size_line;

    #[test]
    fn chunk_size_lines_are_lowercase_hex() {
        let mut buf = [0u8; 18];
        assert_eq!(chunk_size_line(1, &mut buf), b"1\r\n");
        assert_eq!(chunk_size_line(0x1f2e, &mut buf), b"1f2e\r\n");
        assert_eq!(
            chunk_size_line(usize::MAX, &mut buf),
            b"ffffffffffffffff\r\n"
        );
    }
}
