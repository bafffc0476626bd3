//! The connection's owned parts and the transitions of its link.
//!
//! `State` is a composition: the link (socket or why there is none), the send side (the
//! sans-IO body encoder, bytes committed but unsent, whether the server still takes bytes),
//! the pipeline FIFO and the receive side. Only this module replaces the link.

use std::io;
use std::sync::Arc;

use super::driver::Held;
use super::trace;
use super::{Config, Driver};
use crate::coroutine::StackPool;
use crate::error::{ClosePhase, Error, Operation, PoisonCause};
use crate::io::{is_peer_gone, ReadBuffer, Transport};
use crate::proto::{BodyEncoder, InFlight, Pipeline, ResponseReader};

/// Stack size of a connection's coroutines: they run the driver and a park, but a panic
/// inside one formats a message and may capture a backtrace on this stack.
const STACK_SIZE: usize = 256 * 1024;

/// Spare stacks a connection keeps: a cofunction, or a `co_*` send and read side by side.
const SPARE_STACKS: usize = 2;

/// Whether there is a socket, and if not, what the caller still has to be told.
#[derive(Debug)]
pub(crate) enum Link {
    /// Not connected; the next send connects.
    Idle,
    /// Connected.
    Open(Arc<Transport>),
    /// The connection ended with requests unanswered, or lost framing. Reported to every
    /// read or write; the next `send_request` reports it once more and then reconnects.
    Dead {
        why: Dead,
        unanswered: Vec<InFlight>,
        /// The send side lost framing while the caller was reading a response body: that
        /// body is cut short, and stays "active" until a read reports the error, so a reader
        /// never takes it for complete.
        cut_body: bool,
    },
}

/// Why a link is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dead {
    Closed(ClosePhase),
    Poisoned(PoisonCause),
}

/// Whether the server still takes request bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outgoing {
    Open,
    /// The server stopped accepting bytes; responses it already sent can still be read.
    Broken,
    /// A send timed out after the server had answered (an early answer to an upload it
    /// will not take, say): the responses already here can still be read, but none is
    /// waited for, since a request whose bytes were cut short is never answered here.
    Stalled(Operation),
}

impl Outgoing {
    /// Whether no more request bytes may go out on this link.
    pub(crate) fn is_stopped(self) -> bool {
        self != Outgoing::Open
    }
}

/// Who may send: the caller's own calls, or one coroutine (a cofunction or a `co_*` send)
/// until it finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    Caller,
    Coroutine,
}

/// The send side.
#[derive(Debug)]
pub(crate) struct Sending {
    pub(crate) encoder: BodyEncoder,
    pub(crate) outgoing: Outgoing,
    pub(crate) sender: Sender,
    /// Bytes committed to the wire but not yet sent (the rest of a chunk `write_partial`
    /// started); they go out before any other byte.
    pub(crate) outbox: Vec<u8>,
    /// Reused for encoding request heads.
    pub(crate) head_buf: Vec<u8>,
    /// Reused for absolute-form request targets (to a forward proxy).
    pub(crate) target_buf: String,
    /// The request whose body was refused must not leave the connection open.
    pub(crate) close_after_response: bool,
    /// The one request in flight has just been sent on an idle connection: its answer cannot
    /// be here before the next wait (see `Driver::fill`).
    pub(crate) just_sent: bool,
    /// The body being written ended with its link (closed, reset or poisoned): the caller's
    /// further writes to it report the close instead of "no body owed", until the next
    /// request.
    pub(crate) body_cut: bool,
}

/// The receive side: bytes not yet consumed and the reader that consumes them.
#[derive(Debug, Default)]
pub(crate) struct Receiving {
    pub(crate) buf: ReadBuffer,
    pub(crate) reader: ResponseReader,
    /// Whether the connection stays open after the response being read.
    pub(crate) keep_alive: bool,
}

/// Everything that changes while a connection is used.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) link: Link,
    pub(crate) send: Sending,
    pub(crate) pipeline: Pipeline,
    pub(crate) recv: Receiving,
    /// Counts link replacements, so a call that waited can tell that the connection it was
    /// using is gone.
    pub(crate) generation: u64,
    /// Stacks for the connection's coroutines.
    pub(crate) stacks: StackPool,
}

impl State {
    pub(crate) fn new(config: &Config) -> Self {
        State {
            link: Link::Idle,
            send: Sending {
                encoder: BodyEncoder::default(),
                outgoing: Outgoing::Open,
                sender: Sender::Caller,
                outbox: Vec::new(),
                head_buf: Vec::with_capacity(256),
                target_buf: String::new(),
                close_after_response: false,
                just_sent: false,
                body_cut: false,
            },
            pipeline: Pipeline::default(),
            recv: Receiving {
                reader: ResponseReader::new(config.limits),
                ..Default::default()
            },
            generation: 0,
            stacks: StackPool::new(STACK_SIZE, SPARE_STACKS),
        }
    }

    /// The open socket, or the error that explains why there is none.
    pub(crate) fn held(&mut self) -> Result<Held, Error> {
        self.check_dead()?;
        match &self.link {
            Link::Open(t) => Ok(Held {
                transport: Arc::clone(t),
                generation: self.generation,
            }),
            _ => Err(Error::ConnectionClosed {
                phase: ClosePhase::BeforeResponse,
                unanswered: Vec::new(),
            }),
        }
    }

    /// Fails with the dead link's error, if the link is dead.
    ///
    /// The unanswered requests are reported once, by whichever call meets them first. After
    /// that a closed link is simply idle (the next send reconnects), while a poisoned one keeps
    /// failing reads and writes until a send or `connect` reconnects.
    pub(crate) fn check_dead(&mut self) -> Result<(), Error> {
        let Link::Dead {
            why,
            unanswered,
            cut_body,
        } = &mut self.link
        else {
            return Ok(());
        };
        *cut_body = false;
        let error = dead_error(*why, std::mem::take(unanswered));
        if matches!(why, Dead::Closed(_)) {
            self.reset(Link::Idle);
        }
        Err(error)
    }

    /// Makes the link usable for a new request: reports a dead link once (if it left
    /// requests unanswered), drops a stale idle connection, and connects if needed.
    pub(crate) fn ready_to_send(&mut self, d: &Driver<'_>) -> Result<(), Error> {
        self.send.body_cut = false;
        if let Link::Dead {
            why, unanswered, ..
        } = &mut self.link
        {
            let (why, unanswered) = (*why, std::mem::take(unanswered));
            self.reset(Link::Idle);
            if !unanswered.is_empty() {
                // Not told yet: this request is not sent, so the caller can resend in order.
                return Err(dead_error(why, unanswered));
            }
        }
        if self.send.outgoing.is_stopped() {
            if !self.pipeline.is_empty() {
                // Responses already sent may still arrive: they must be read first.
                return Err(super::driver::send_error(io::ErrorKind::BrokenPipe.into()));
            }
            trace::closed_after_stop(&self.link);
            self.reset(Link::Idle);
        }
        if let Link::Open(t) = &self.link {
            if self.pipeline.is_empty() && !self.recv.reader.has_body() {
                if self.is_stale(&Arc::clone(t)) {
                    trace::stale(&self.link);
                    self.reset(Link::Idle);
                } else {
                    trace::reused(&self.link);
                }
            }
        }
        if matches!(self.link, Link::Idle) {
            self.connect(d)?;
        }
        Ok(())
    }

    /// Takes response bytes that have already arrived, without waiting (one non-blocking
    /// receive; over TLS it also takes in records that carry no response, like session
    /// tickets), when a response or the rest of a body is expected and nothing is buffered.
    /// Returns whether response bytes are buffered now.
    pub(crate) fn take_arrived(&mut self, limit: usize) -> bool {
        let Link::Open(transport) = &self.link else {
            return false;
        };
        if self.pipeline.is_empty() && !self.recv.reader.has_body() {
            return false;
        }
        if self.recv.buf.is_empty() {
            match self.recv.buf.fill_from(transport, limit) {
                Err(e) if is_peer_gone(&e) => self.recv.buf.set_reset(),
                // Nothing there (or an error the next read will meet again).
                _ => {}
            }
        }
        !self.recv.buf.is_empty()
    }

    /// An idle connection is stale when the server closed it or sent bytes nobody asked for
    /// (which must not be taken as the next response).
    ///
    /// It is probed with one non-blocking receive, unless its last receive found the socket
    /// empty and the green runtime's poller has seen nothing arrive since
    /// ([`Transport::is_quiet`]: it polled less than a millisecond ago). What that can miss
    /// is what arrived since the poll, and a close right behind the last response: a
    /// server may close only after announcing it (RFC 9112 §9.6), and a close that races the
    /// send is possible whether probed or not. Either way it is reported as
    /// `ConnectionClosed` with the request unanswered, ready to resend.
    fn is_stale(&mut self, transport: &Transport) -> bool {
        if !self.recv.buf.is_empty() || self.recv.buf.is_eof() {
            return true;
        }
        if self.recv.buf.drained() && transport.is_quiet() {
            return false;
        }
        let probe = self.recv.buf.fill_from(transport, usize::MAX);
        !matches!(probe, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Opens a new connection (see [`connect::open`](super::connect::open)). Kept out of
    /// line: its large locals would otherwise widen the stack frame of every send.
    #[cold]
    #[inline(never)]
    fn connect(&mut self, d: &Driver<'_>) -> Result<(), Error> {
        let opened = super::connect::open(d).inspect_err(|e| trace::connect_failed(d, e))?;
        trace::connected(d, &opened.transport);
        self.reset(Link::Open(Arc::new(opened.transport)));
        // What came through a proxy's tunnel with its answer is the start of the stream.
        self.recv.buf.push(&opened.early);
        Ok(())
    }

    /// Replaces the link and forgets everything tied to the old one.
    pub(crate) fn reset(&mut self, link: Link) {
        self.send.body_cut =
            !matches!(link, Link::Open(_)) && (self.send.body_cut || self.send.encoder.is_owed());
        self.link = link;
        self.generation += 1;
        self.send.encoder.reset();
        self.send.outgoing = Outgoing::Open;
        self.send.outbox.clear();
        self.send.close_after_response = false;
        self.send.just_sent = false;
        self.recv.buf.clear();
        self.recv.reader.reset();
        self.recv.keep_alive = true;
        self.pipeline.take_all();
    }

    /// The caller's own disconnect: everything tied to the link is forgotten, including a
    /// body being written (further writes are misuse, not a close to report).
    pub(crate) fn disconnect(&mut self) {
        trace::disconnected(&self.link, self.pipeline.len());
        self.reset(Link::Idle);
        self.send.body_cut = false;
    }

    /// Closes the socket because the server ended the exchange; requests still in flight are
    /// kept for the caller to learn about.
    pub(crate) fn close(&mut self, phase: ClosePhase) {
        let unanswered = self.pipeline.take_all();
        trace::closed(&self.link, phase, unanswered.len());
        if unanswered.is_empty() {
            self.reset(Link::Idle);
        } else {
            self.reset(Link::Dead {
                why: Dead::Closed(phase),
                unanswered,
                cut_body: false,
            });
        }
    }

    /// Closes the socket because framing is lost, and returns the error to report now (to
    /// the reader, when a read lost it).
    pub(crate) fn poison(&mut self, cause: PoisonCause, now: Error) -> Error {
        let unanswered = self.pipeline.take_all();
        trace::poisoned(&self.link, cause, unanswered.len());
        self.reset(Link::Dead {
            why: Dead::Poisoned(cause),
            unanswered,
            cut_body: false,
        });
        now
    }

    /// [`poison`](Self::poison) for a failure on the send side, whose error goes to the
    /// sender: a response body being read is cut short, and its reader is told by its next
    /// read instead of finding the body complete.
    pub(crate) fn poison_sending(&mut self, cause: PoisonCause, now: Error) -> Error {
        let reading = self.recv.reader.has_body();
        let now = self.poison(cause, now);
        if let Link::Dead { cut_body, .. } = &mut self.link {
            *cut_body = reading;
        }
        now
    }

    /// The server closed the connection in `phase`: the error to report, after closing.
    pub(crate) fn closed_error(&mut self, phase: ClosePhase) -> Error {
        let unanswered = self.pipeline.take_all();
        trace::closed(&self.link, phase, unanswered.len());
        self.reset(Link::Idle);
        Error::ConnectionClosed { phase, unanswered }
    }

    /// Folds a send-side failure of the request numbered `request` (see
    /// [`Pipeline::pushed`]) into the state, if the link it happened on is still this one: a
    /// vanished peer leaves the receive side readable (responses may be buffered); anything
    /// else loses framing. A request the caller cancelled is not listed as unanswered: the
    /// caller knows.
    pub(crate) fn send_failed(&mut self, held: &Held, request: u64, e: Error) -> Error {
        if self.generation != held.generation {
            // The link is gone already; the state describes why.
            return e;
        }
        let cause = match e {
            Error::ConnectionClosed { .. } => {
                trace::stopped_reading(&self.link, self.pipeline.len());
                self.send.outgoing = Outgoing::Broken;
                return e;
            }
            // A server that answered and then stopped reading (say, an early error
            // status to an upload it will not take): what it answered stays readable, as when
            // it closes mid-send, and the next send opens a new connection once the responses
            // are read.
            Error::Timeout { operation, .. } if self.has_response_bytes() => {
                trace::stopped_reading(&self.link, self.pipeline.len());
                self.send.outgoing = Outgoing::Stalled(operation);
                return e;
            }
            Error::Timeout { operation, .. } => PoisonCause::Timeout(operation),
            Error::Io(ref io) => PoisonCause::Io(io.kind()),
            #[cfg(feature = "tls")]
            Error::Tls(_) => PoisonCause::Tls,
            Error::Protocol(p) => PoisonCause::Protocol(p),
            Error::BufferFull { limit } => PoisonCause::BufferFull { limit },
            Error::Cancelled => {
                if !self.pipeline.is_empty() && self.pipeline.pushed() == request {
                    self.pipeline.pop_newest();
                }
                PoisonCause::Cancelled
            }
            other => return other,
        };
        self.poison_sending(cause, e)
    }

    /// Whether response bytes are already here: in the receive buffer, or decrypted and
    /// held by the TLS session.
    pub(crate) fn has_response_bytes(&self) -> bool {
        !self.recv.buf.is_empty() || matches!(&self.link, Link::Open(t) if t.has_plaintext())
    }

    /// Takes back request number `request` of link `generation`, none of which was sent.
    pub(crate) fn unsend(&mut self, (request, generation): (u64, u64)) {
        if self.generation == generation && self.pipeline.pushed() == request {
            self.pipeline.pop_newest();
            self.send.encoder.reset();
        }
    }

    /// Whether a response body is being read: its head was returned and its end not yet
    /// (nor the error that cut it short).
    pub(crate) fn has_active_response(&self) -> bool {
        self.recv.reader.has_body() || matches!(self.link, Link::Dead { cut_body: true, .. })
    }

    /// Whether a response (head or rest of body) is waiting to be read, or an unanswered
    /// request or a cut-short body to be reported.
    pub(crate) fn response_pending(&self) -> bool {
        match &self.link {
            Link::Dead {
                unanswered,
                cut_body,
                ..
            } => !unanswered.is_empty() || *cut_body,
            _ => !self.pipeline.is_empty() || self.recv.reader.has_body(),
        }
    }
}

fn dead_error(why: Dead, unanswered: Vec<InFlight>) -> Error {
    match why {
        Dead::Closed(phase) => Error::ConnectionClosed { phase, unanswered },
        Dead::Poisoned(cause) => Error::Poisoned { cause, unanswered },
    }
}
