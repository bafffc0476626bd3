//! The connection's owned parts and the transitions of its link.
//!
//! `State` is a composition: the link (socket or why there is none), the send side, the
//! pipeline FIFO and the receive side. Only this module replaces the link.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use crate::coroutine::StackPool;
use crate::error::{ClosePhase, Error, Operation, PoisonCause};
use crate::io::{send_io_error, ReadBuffer, Transport};
use crate::proto::{InFlight, Pipeline, ResponseReader};

use super::{Config, Env};

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
    },
}

/// Why a link is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dead {
    Closed(ClosePhase),
    Poisoned(PoisonCause),
}

/// The send side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sending {
    /// No request body is owed.
    Idle,
    /// This many `Content-Length` body bytes are owed.
    Length(u64),
    /// A chunked body is open until `finish_body`.
    Chunked,
    /// The server answered `Expect: 100-continue` with a final response: no body may follow.
    Refused,
    /// The server stopped accepting bytes; responses already sent can still be read.
    Broken,
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
    pub(crate) sending: Sending,
    pub(crate) pipeline: Pipeline,
    pub(crate) recv: Receiving,
    /// The request whose body was refused must not leave the connection open.
    pub(crate) close_after_response: bool,
    /// Reused for encoding request heads.
    pub(crate) head_buf: Vec<u8>,
    /// Whether a cofunction is sending; sends and writes wait for it.
    pub(crate) cofun_active: bool,
    /// Counts link replacements, so a cofunction can tell that the connection it was
    /// sending on is gone.
    pub(crate) generation: u64,
    /// Stacks for cofunctions.
    pub(crate) stacks: StackPool,
    /// Whether the last request declared a `Following(0)` body, which is complete at once;
    /// streaming it with `co_sendfile` is then a no-op rather than a mistake.
    pub(crate) empty_body_sent: bool,
    /// The unsent rest of a chunk that `write_partial` committed to (its size line went
    /// out); sent before any other body byte.
    pub(crate) owed: Vec<u8>,
}

impl State {
    pub(crate) fn new(config: &Config) -> Self {
        State {
            link: Link::Idle,
            sending: Sending::Idle,
            pipeline: Pipeline::default(),
            recv: Receiving {
                reader: ResponseReader::new(config.limits),
                ..Default::default()
            },
            close_after_response: false,
            head_buf: Vec::with_capacity(256),
            cofun_active: false,
            generation: 0,
            stacks: StackPool::default(),
            empty_body_sent: false,
            owed: Vec::new(),
        }
    }

    /// The open socket, or the error that explains why there is none.
    pub(crate) fn transport(&mut self) -> Result<Arc<Transport>, Error> {
        self.check_dead()?;
        match &self.link {
            Link::Open(t) => Ok(Arc::clone(t)),
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
        let Link::Dead { why, unanswered } = &mut self.link else {
            return Ok(());
        };
        let error = dead_error(*why, std::mem::take(unanswered));
        if matches!(why, Dead::Closed(_)) {
            self.reset(Link::Idle);
        }
        Err(error)
    }

    /// Makes the link usable for a new request: reports a dead link once (if it left
    /// requests unanswered), drops a stale idle connection, and connects if needed.
    pub(crate) fn ready_to_send(&mut self, env: &Env<'_>) -> Result<(), Error> {
        if let Link::Dead { why, unanswered } = &mut self.link {
            let (why, unanswered) = (*why, std::mem::take(unanswered));
            self.reset(Link::Idle);
            if !unanswered.is_empty() {
                // Not told yet: this request is not sent, so the caller can resend in order.
                return Err(dead_error(why, unanswered));
            }
        }
        if self.sending == Sending::Broken {
            if !self.pipeline.is_empty() {
                // Responses already sent may still arrive: they must be read first.
                return Err(send_io_error(io::ErrorKind::BrokenPipe.into()));
            }
            self.reset(Link::Idle);
        }
        if let Link::Open(t) = &self.link {
            if self.pipeline.is_empty()
                && !self.recv.reader.has_body()
                && self.is_stale(&Arc::clone(t))
            {
                self.reset(Link::Idle);
            }
        }
        if matches!(self.link, Link::Idle) {
            self.connect(env)?;
        }
        Ok(())
    }

    /// Takes response bytes that have already arrived, without waiting (one non-blocking
    /// receive), when a response is expected and nothing is buffered.
    pub(crate) fn take_arrived(&mut self, limit: usize) {
        let Link::Open(transport) = &self.link else {
            return;
        };
        if self.pipeline.is_empty() || !self.recv.buf.is_empty() {
            return;
        }
        match self.recv.buf.fill_from(transport, limit) {
            Err(e) if crate::io::is_peer_gone(&e) => self.recv.buf.set_reset(),
            // Nothing there (or an error the next read will meet again).
            _ => {}
        }
    }

    /// An idle connection is stale when the server closed it or sent bytes nobody asked for
    /// (which must not be taken as the next response).
    fn is_stale(&mut self, transport: &Transport) -> bool {
        if !self.recv.buf.is_empty() {
            return true;
        }
        let probe = self.recv.buf.fill_from(transport, usize::MAX);
        !matches!(probe, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Opens a new connection, trying every resolved address in turn.
    pub(crate) fn connect(&mut self, env: &Env<'_>) -> Result<(), Error> {
        let (host, port, config, park) = (&env.target.host, env.target.port, env.config, env.park);
        let deadline = config.connect_timeout.map(|t| Instant::now() + t);
        let connect_error = |source| Error::Connect {
            host: host.to_owned(),
            port,
            source,
        };
        let addrs = Transport::resolve(host, port).map_err(connect_error)?;

        let mut last = None;
        for addr in addrs {
            match Transport::connect(addr, deadline, park.reactor(), park) {
                Ok(Some(transport)) => {
                    self.reset(Link::Open(Arc::new(transport)));
                    return Ok(());
                }
                Ok(None) => {
                    return Err(Error::Timeout {
                        operation: Operation::Connect,
                        after: config.connect_timeout.unwrap_or_default(),
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(connect_error(
            last.unwrap_or_else(|| io::ErrorKind::NotFound.into()),
        ))
    }

    /// Replaces the link and forgets everything tied to the old one.
    pub(crate) fn reset(&mut self, link: Link) {
        self.link = link;
        self.generation += 1;
        self.sending = Sending::Idle;
        self.owed.clear();
        self.recv.buf.clear();
        self.recv.reader.reset();
        self.recv.keep_alive = true;
        self.close_after_response = false;
        self.pipeline.take_all();
    }

    /// Closes the socket because the server ended the exchange; requests still in flight are
    /// kept for the caller to learn about.
    pub(crate) fn close(&mut self, phase: ClosePhase) {
        let unanswered = self.pipeline.take_all();
        if unanswered.is_empty() {
            self.reset(Link::Idle);
        } else {
            self.reset(Link::Dead {
                why: Dead::Closed(phase),
                unanswered,
            });
        }
    }

    /// Closes the socket because framing is lost, and returns the error to report now.
    pub(crate) fn poison(&mut self, cause: PoisonCause, now: Error) -> Error {
        let unanswered = self.pipeline.take_all();
        self.reset(Link::Dead {
            why: Dead::Poisoned(cause),
            unanswered,
        });
        now
    }

    /// The server closed the connection in `phase`: the error to report, after closing.
    pub(crate) fn closed_error(&mut self, phase: ClosePhase) -> Error {
        let unanswered = self.pipeline.take_all();
        self.reset(Link::Idle);
        Error::ConnectionClosed { phase, unanswered }
    }

    /// Classifies a send-side failure: a vanished peer leaves the receive side readable
    /// (responses may be buffered); anything else loses framing.
    pub(crate) fn send_failed(&mut self, e: Error) -> Error {
        match e {
            Error::ConnectionClosed { .. } => {
                self.sending = Sending::Broken;
                e
            }
            Error::Timeout { operation, .. } => self.poison(PoisonCause::Timeout(operation), e),
            Error::Io(ref io) => self.poison(PoisonCause::Io(io.kind()), e),
            Error::Protocol(p) => self.poison(PoisonCause::Protocol(p), e),
            Error::BufferFull { limit } => self.poison(PoisonCause::BufferFull { limit }, e),
            Error::Cancelled => self.poison(PoisonCause::Cancelled, e),
            other => other,
        }
    }

    /// Whether a response (head or rest of body) is waiting to be read, or an unanswered
    /// request to be reported.
    pub(crate) fn response_pending(&self) -> bool {
        match &self.link {
            Link::Dead { unanswered, .. } => !unanswered.is_empty(),
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
