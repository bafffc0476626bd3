//! What every driver call stands on: the connection's parts ([`Driver`]), the handle on the
//! socket a call works with ([`Held`]), deadlines, and the one deadline-and-park loop.
//!
//! The driver never keeps the connection's state borrowed while it waits: it borrows, tries
//! the socket, releases, parks, and borrows again. A coroutine's park suspends to its caller,
//! whose loop body can then read on the same connection.

use std::cell::{RefCell, RefMut};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::state::{Outgoing, State};
use super::{Config, Target};
use crate::error::{ClosePhase, Error, Operation, PoisonCause};
use crate::io::{is_peer_gone, ParkImpl, ReadBuffer, Ready, Transport, Wake, READABLE};
use crate::proto::StateError;

/// A connection's parts, and how this call waits.
pub(crate) struct Driver<'a> {
    pub(crate) cell: &'a RefCell<State>,
    pub(crate) target: &'a Target,
    pub(crate) config: &'a Config,
    pub(crate) park: &'a dyn ParkImpl,
}

/// The socket a call works with, and the link it belongs to: if the link is replaced while
/// the call waits (the loop body read a closing response, say), the call stops.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) transport: Arc<Transport>,
    pub(crate) generation: u64,
}

impl<'a> Driver<'a> {
    /// The state, for the duration of one step.
    pub(crate) fn state(&self) -> Result<RefMut<'a, State>, Error> {
        self.cell
            .try_borrow_mut()
            .map_err(|_| StateError::Busy.into())
    }

    /// The state again after a wait, if the link is still the one `held` belongs to;
    /// otherwise the dead link's error, or a close in `phase`.
    pub(crate) fn relock_in(
        &self,
        held: &Held,
        phase: ClosePhase,
    ) -> Result<RefMut<'a, State>, Error> {
        let mut st = self.state()?;
        if st.generation != held.generation {
            st.check_dead()?;
            return Err(Error::ConnectionClosed {
                phase,
                unanswered: Vec::new(),
            });
        }
        Ok(st)
    }

    /// [`relock_in`](Self::relock_in) for the receive side.
    pub(crate) fn relock(&self, held: &Held) -> Result<RefMut<'a, State>, Error> {
        self.relock_in(held, ClosePhase::BeforeResponse)
    }

    /// Waits until `transport` is ready for some of `interest`, within `deadline`; a wait
    /// for reading acknowledges what arrived at once (see [`Transport::quick_ack`]).
    pub(crate) fn wait(
        &self,
        transport: &Transport,
        interest: Ready,
        deadline: &mut Deadline,
    ) -> Result<Ready, Error> {
        if interest.readable {
            transport.quick_ack();
        }
        park_until(self.park, transport, interest, deadline)
    }

    /// One receive into the state's buffer, waiting (with the state released) while nothing
    /// has arrived; bytes that another operation took in while this one waited count as
    /// received. Returns the state and `false` at end of stream (a reset counts as one: the
    /// bytes before it are kept).
    pub(crate) fn fill(
        &self,
        mut st: RefMut<'a, State>,
        held: &Held,
        limit: usize,
        deadline: &mut Deadline,
    ) -> Result<(RefMut<'a, State>, bool), Error> {
        if let Outgoing::Stalled(operation) = st.send.outgoing {
            return Self::fill_stalled(st, held, limit, operation);
        }
        // The one request in flight has just gone out on an idle connection: its answer is
        // rarely here yet, so wait first rather than try a receive that would find nothing
        // (a wait that finds it ready costs the same one syscall), and skip the quick ACK —
        // the request carried ours.
        let just_sent = std::mem::take(&mut st.send.just_sent)
            && st.recv.buf.is_empty()
            && st.pipeline.len() == 1
            && !st.recv.reader.has_body();
        let mut how = Receive::Now;
        if just_sent {
            drop(st);
            how = self.read_wait(held, deadline, false)?;
            st = self.relock(held)?;
            if !st.recv.buf.is_empty() {
                // Taken in meanwhile by an operation beside this read (as below).
                return Ok((st, true));
            }
        }
        loop {
            let got = match how {
                Receive::Now => st.recv.buf.fill_from(&held.transport, limit),
                Receive::Waiting(timeout) => {
                    st.recv.buf.fill_blocking(&held.transport, limit, timeout)
                }
            };
            match got {
                Ok(0) => return Ok((st, false)),
                Ok(_) => return Ok((st, true)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let buffered = st.recv.buf.len();
                    drop(st);
                    how = self.read_wait(held, deadline, true)?;
                    st = self.relock(held)?;
                    if st.recv.buf.len() > buffered {
                        // A `co_*` send beside this read took response bytes in meanwhile
                        // (possibly up to the limit, so receiving again could fail).
                        return Ok((st, true));
                    }
                }
                Err(e) if is_peer_gone(&e) => {
                    st.recv.buf.set_reset();
                    return Ok((st, false));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// [`fill`](Self::fill) on a link whose server stopped reading ([`Outgoing::Stalled`]):
    /// what has arrived is taken, but nothing is waited for. When nothing more is there, the
    /// requests still without a response never will have one on this link: it is poisoned
    /// with the send's timeout, and they are reported unanswered.
    fn fill_stalled(
        mut st: RefMut<'a, State>,
        held: &Held,
        limit: usize,
        operation: Operation,
    ) -> Result<(RefMut<'a, State>, bool), Error> {
        match st.recv.buf.fill_from(&held.transport, limit) {
            Ok(0) => Ok((st, false)),
            Ok(_) => Ok((st, true)),
            Err(e) if is_peer_gone(&e) => {
                st.recv.buf.set_reset();
                Ok((st, false))
            }
            Err(e) => {
                // Reported as a dead link's error is, once, with its requests unanswered.
                let cause = PoisonCause::Timeout(operation);
                let poisoned = st.poison_sending(cause, e.into());
                Err(st.check_dead().err().unwrap_or(poisoned))
            }
        }
    }

    /// Waits for bytes to read on `held`, within `deadline`, acknowledging what arrived at
    /// once if `ack` (see [`Transport::quick_ack`]). A thread that may block does not wait
    /// here: it gets the timeout for one receive that waits ([`Transport::recv_blocking`]:
    /// one syscall instead of a `poll` and a receive).
    pub(crate) fn read_wait(
        &self,
        held: &Held,
        deadline: &mut Deadline,
        ack: bool,
    ) -> Result<Receive, Error> {
        let transport = &held.transport;
        if ack {
            transport.quick_ack();
        }
        // A zero timeout allows only the one look the park makes.
        if self.park.blocks_thread() && transport.reads_block() && !deadline.is_zero() {
            // What the park does before any wait: nothing queued may wait with us.
            let _ = transport.flush();
            crate::io::flush_thread();
            if !transport.has_queued() {
                return Ok(Receive::Waiting(deadline.remaining()?));
            }
        }
        park_until(self.park, transport, READABLE, deadline)?;
        Ok(Receive::Now)
    }
}

/// How the next receive of a read goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Receive {
    /// At once, without waiting.
    Now,
    /// Waiting up to this long for bytes (`None`: no limit).
    Waiting(Option<Duration>),
}

/// The one deadline-and-park loop: parks until `transport` is ready for some of `interest`
/// and returns what is ready; an empty result means "try again" (the caller ran, see
/// [`Wake::Resumed`]).
pub(crate) fn park_until(
    park: &dyn ParkImpl,
    transport: &Transport,
    interest: Ready,
    deadline: &mut Deadline,
) -> Result<Ready, Error> {
    // Queued bytes go out before any wait; what the socket does not take yet (and TLS
    // records to flush) makes the wait include writability.
    let _ = transport.flush();
    let interest = transport.interest(interest);
    loop {
        let left = deadline.remaining()?;
        match park.park(transport, interest, left)? {
            Wake::Ready(ready) if ready != Ready::default() => return Ok(ready),
            Wake::Resumed => {
                deadline.restart();
                return Ok(Ready::default());
            }
            Wake::Cancelled => return Err(Error::Cancelled),
            Wake::TimedOut | Wake::Ready(_) => {
                if left.is_some_and(|t| t.is_zero()) {
                    return Err(deadline.expired());
                }
            }
        }
    }
}

/// The deadline of one blocking operation: `timeout` from its first wait. The clock is read
/// only when a call actually has to wait, so the fast path never touches it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    operation: Operation,
    timeout: Option<Duration>,
    at: Option<Instant>,
}

impl Deadline {
    pub(crate) fn new(operation: Operation, timeout: Option<Duration>) -> Self {
        Deadline {
            operation,
            timeout,
            at: None,
        }
    }

    /// Time left: `Ok(None)` without a timeout, `Err(Timeout)` once it has passed. A zero
    /// timeout is not "forever": it allows exactly one non-blocking check.
    pub(crate) fn remaining(&mut self) -> Result<Option<Duration>, Error> {
        let Some(timeout) = self.timeout else {
            return Ok(None);
        };
        let now = crate::io::now();
        let at = *self.at.get_or_insert(now + timeout);
        match at.checked_duration_since(now) {
            Some(left) if !left.is_zero() || timeout.is_zero() => Ok(Some(left)),
            _ => Err(self.expired()),
        }
    }

    /// Whether the timeout is zero: "now or never", never a wait.
    pub(crate) fn is_zero(&self) -> bool {
        self.timeout == Some(Duration::ZERO)
    }

    /// Names what is being waited for in the timeout error (a connect deadline also covers
    /// resolving the name).
    pub(crate) fn set_operation(&mut self, operation: Operation) {
        self.operation = operation;
    }

    /// Starts the deadline afresh at the next wait.
    pub(crate) fn restart(&mut self) {
        self.at = None;
    }

    /// The error for this deadline having passed.
    pub(crate) fn expired(&self) -> Error {
        Error::Timeout {
            operation: self.operation,
            after: self.timeout.unwrap_or_default(),
        }
    }
}

/// Moves every byte the socket holds into `inbox`, failing once it holds `limit` bytes: what
/// a send that waits does with response bytes, so a server that answers before it reads on
/// cannot deadlock it.
pub(crate) fn drain(
    inbox: &mut ReadBuffer,
    limit: usize,
    transport: &Transport,
) -> Result<(), Error> {
    loop {
        if inbox.len() >= limit {
            return Err(Error::BufferFull { limit });
        }
        match inbox.fill_from(transport, limit) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            // The send that follows reports the reset; what arrived before it is kept.
            Err(e) if is_peer_gone(&e) => {
                inbox.set_reset();
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Maps an I/O error from a send to the error the caller sees: a vanished peer is a closed
/// connection, not a raw I/O error.
pub(crate) fn send_error(e: io::Error) -> Error {
    if is_peer_gone(&e) {
        Error::ConnectionClosed {
            phase: ClosePhase::WhileSending,
            unanswered: Vec::new(),
        }
    } else {
        Error::from(e)
    }
}
