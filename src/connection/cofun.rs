//! Cofunctions: the send driver on a coroutine, as an iterator whose loop body reads
//! responses on the same connection while the request goes out.
//!
//! The coroutine runs the same send code as the blocking path ([`send`](super::send)); this
//! module only decides, each time it would wait, whether the loop body reads first or the
//! connection's park waits.

use std::io::Read;

use super::job::{Job, Role, Step};
use super::send::{self, Prepared};
use super::state::{Link, State};
use super::HttpConnection;
use crate::coroutine::{Blocked, Resume};
use crate::error::Error;
use crate::io::READABLE;
use crate::io::{Blocking, Park, Wake};

/// A cofunction: an iterator that sends a request (or a request body) on its connection and
/// yields whenever response data is available, so the loop body can read it.
///
/// Returned by [`HttpConnection::send_request_cofun`] and [`HttpConnection::sendfile_cofun`].
/// Each `next()` resumes a coroutine that writes with non-blocking sends. It yields
/// `Some(Ok(()))` when response bytes are waiting — already buffered (checked before the
/// coroutine first runs and after each turn of the loop body that read something), or a
/// readable socket while a send would block — read them in the loop body with
/// `read_response` / `read` on the same connection. It ends with `None` once every byte is
/// handed to the OS or, for a small request with
/// [`Config::coalesce_writes`](crate::Config::coalesce_writes), queued to go out before the
/// thread next waits. An error is yielded once as `Some(Err(e))`, then the iterator ends;
/// the connection also remembers it (a broken or poisoned connection says so on its next
/// use), so a `for _ in` loop cannot lose it.
///
/// If the loop body reads nothing, the cofunction keeps the arriving response bytes in the
/// connection's buffer (bounded by [`Config::max_buffered`](crate::Config::max_buffered)), as
/// a blocking send does, so an empty loop body still completes. Time spent in the loop body
/// does not count against the send's timeout.
///
/// # Cancellation
///
/// Dropping an unfinished cofunction stops its coroutine by resuming it with a cancel input
/// until it returns (no stack unwinding, so it is safe under `panic = "abort"`). A request
/// none of whose bytes were sent is removed from the pipeline as if never sent. After a
/// partial send the connection is poisoned: reads of earlier responses fail, and the next
/// `send_request` reconnects (it reports the earlier requests that were still unanswered
/// first, if there were any; the cancelled request itself is not reported — the caller
/// knows).
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
    /// `None` for a cofunction with nothing to do.
    job: Option<Job<'c, ()>>,
    /// The loop body's last turn, if it has not been followed up yet.
    turn: Option<Turn>,
    /// `ReadBuffer::consumed` when the loop body last declined buffered bytes: they are not
    /// offered again until it reads something.
    declined_at: Option<u64>,
}

/// A turn of the loop body: how much it had consumed before, and why it got the turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Turn {
    consumed: u64,
    cause: Cause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// Response bytes were already in the connection's buffer.
    Buffered,
    /// The socket became readable while the send waited.
    Socket,
}

/// What follows a wait of the coroutine.
enum Next {
    /// The loop body reads first.
    Caller(Cause),
    /// The coroutine goes on with this.
    Resume(Resume),
}

impl<P: Park> std::fmt::Debug for Cofun<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cofun").field("job", &self.job).finish()
    }
}

impl<'c, P: Park> Cofun<'c, P> {
    /// A cofunction that puts a prepared request on the wire.
    pub(crate) fn request(
        conn: &'c HttpConnection<P>,
        prepared: Prepared<'c>,
    ) -> Result<Self, Error> {
        Ok(Self::new(conn, Some(Job::transmit(conn, None, prepared)?)))
    }

    /// A cofunction that streams `reader` as the body owed by the newest request.
    pub(crate) fn body(
        conn: &'c HttpConnection<P>,
        reader: &'c mut dyn Read,
    ) -> Result<Self, Error> {
        let target = send::stream_target(&mut *conn.state()?)?;
        let Some((held, request)) = target else {
            return Ok(Self::new(conn, None));
        };
        let job = Job::spawn(conn, Role::Sends, None, move |d| {
            send::stream_body(d, &held, request, reader)
        })?;
        Ok(Self::new(conn, Some(job)))
    }

    fn new(conn: &'c HttpConnection<P>, job: Option<Job<'c, ()>>) -> Self {
        Cofun {
            conn,
            job,
            turn: None,
            declined_at: None,
        }
    }

    /// Hands control to the loop body.
    fn give_turn(&mut self, cause: Cause) -> Option<Result<(), Error>> {
        let consumed = self
            .conn
            .state
            .try_borrow()
            .map_or(0, |st| st.recv.buf.consumed());
        self.turn = Some(Turn { consumed, cause });
        Some(Ok(()))
    }

    /// Whether buffered response bytes should go to the loop body before sending goes on.
    fn offers_buffered(&self, st: &State) -> bool {
        st.has_response_bytes()
            && (!st.pipeline.is_empty() || st.recv.reader.has_body())
            && !st.send.encoder.awaits_continue()
            && self.declined_at != Some(st.recv.buf.consumed())
    }

    /// The coroutine waits for its socket: the loop body reads first if response data is
    /// there, otherwise the connection's park waits.
    fn on_blocked(&mut self, blocked: Blocked) -> Next {
        let Ok(st) = self.conn.state.try_borrow() else {
            return Next::Resume(Ok(Wake::Ready(blocked.interest)));
        };
        if self.offers_buffered(&st) {
            return Next::Caller(Cause::Buffered);
        }
        let Link::Open(transport) = &st.link else {
            // The link is gone: the driver finds out when it looks.
            return Next::Resume(Ok(Wake::Ready(blocked.interest)));
        };
        let transport = std::sync::Arc::clone(transport);
        let awaits_continue = st.send.encoder.awaits_continue();
        drop(st);
        let wake = self
            .conn
            .park
            .park(&transport, blocked.interest, blocked.timeout);
        match wake {
            Ok(Wake::Ready(ready)) if ready.readable && !awaits_continue => {
                Next::Caller(Cause::Socket)
            }
            other => Next::Resume(other),
        }
    }

    /// What to resume with after the loop body's turn, or `None` to give it another turn for
    /// bytes it has not read yet.
    fn after_turn(&mut self, turn: Turn) -> Option<Resume> {
        let st = self.conn.state.try_borrow().ok()?;
        let consumed = st.recv.buf.consumed();
        if consumed == turn.consumed {
            // The loop body declined: the bytes stay for later readers, and a send keeps
            // taking arriving bytes in itself, like a blocking send.
            self.declined_at = Some(consumed);
            return Some(match turn.cause {
                Cause::Socket => Ok(Wake::Ready(READABLE)),
                Cause::Buffered => Ok(Wake::Resumed),
            });
        }
        if self.offers_buffered(&st) {
            return None;
        }
        Some(Ok(Wake::Resumed))
    }
}

impl<P: Park> Iterator for Cofun<'_, P> {
    type Item = Result<(), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let job = self.job.as_ref()?;
        if job.is_finished() {
            return None;
        }
        let mut input = match self.turn.take() {
            Some(turn) => match self.after_turn(turn) {
                Some(input) => input,
                None => return self.give_turn(Cause::Buffered),
            },
            None if !job.is_started() => {
                // Response bytes already buffered are read before anything goes out.
                let buffered = self
                    .conn
                    .state
                    .try_borrow()
                    .is_ok_and(|st| self.offers_buffered(&st));
                if buffered {
                    return self.give_turn(Cause::Buffered);
                }
                Ok(Wake::Resumed)
            }
            None => Ok(Wake::Resumed),
        };
        loop {
            match self.job.as_mut()?.resume(input)? {
                Step::Done(result) => return result.err().map(Err),
                Step::Blocked(blocked) => match self.on_blocked(blocked) {
                    Next::Resume(next) => input = next,
                    Next::Caller(cause) => return self.give_turn(cause),
                },
            }
        }
    }
}

impl<P: Park> std::iter::FusedIterator for Cofun<'_, P> {}
