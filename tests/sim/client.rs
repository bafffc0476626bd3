//! The client side of a schedule: one connection driven through one send path, sending its
//! requests in rounds and reading every response, with what it got logged per request for
//! the checker. The reading code is written once; the paths differ in how they send and
//! whether their reads run blocking, in a cofunction's loop body, or as stepped `co_*`
//! operations beside a send; the green paths run the blocking and cofunction code in a task
//! of a simulated green runtime, whose poller and timers then do the waiting.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io::Read;
use std::time::Duration;

use dugong::sim::Readiness;
use dugong::{Body, ClosePhase, CoOp, CoStep, Error, HttpConnection, Interest, Park, Response};
use http::header::EXPECT;
use http::{HeaderMap, HeaderValue, Method};

use super::rng::Rng;
use super::world::World;

/// How requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// `send_request`, `write`, `finish_body`; blocking reads.
    Blocking,
    /// `send_request_cofun` / `sendfile_cofun` whose loop body reads what is available.
    Cofun,
    /// The same with an empty loop body: the cofunction buffers responses itself.
    CofunDeclining,
    /// `co_send_request` / `co_write` stepped by a loop that runs the world, with
    /// `co_read_response` / `co_read` beside a send that waits.
    CoOps,
    /// As `Blocking`, in a green task (beside a task that keeps setting timers).
    Green,
    /// As `Cofun`, in a green task (beside a task that keeps setting timers).
    GreenCofun,
}

impl Path {
    pub(crate) const ALL: [Path; 6] = [
        Path::Blocking,
        Path::Cofun,
        Path::CofunDeclining,
        Path::CoOps,
        Path::Green,
        Path::GreenCofun,
    ];

    /// Whether the connection lives in a green task.
    pub(crate) fn is_green(self) -> bool {
        matches!(self, Path::Green | Path::GreenCofun)
    }

    /// Whether sends and reads are the plain calls (no cofunction, no `co_*`).
    fn is_plain(self) -> bool {
        matches!(self, Path::Blocking | Path::Green)
    }
}

/// How a request carries its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Empty,
    Bytes,
    Following,
    Chunked,
}

/// One request of a schedule.
#[derive(Debug, Clone)]
pub(crate) struct ReqSpec {
    pub(crate) id: usize,
    pub(crate) method: Method,
    pub(crate) body: Vec<u8>,
    pub(crate) kind: BodyKind,
    pub(crate) expect: bool,
}

/// What became of one attempt to send a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Its response, read to the end on connection `conn`.
    Answered {
        conn: usize,
        status: u16,
        body: Vec<u8>,
    },
    /// Listed as unanswered by an error; `closed` when the error was a closed connection.
    Listed { closed: bool },
    /// Reading its response failed.
    Failed(String),
}

/// Everything the client did and got.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// (round, request id) of every send attempt, in order.
    pub(crate) attempts: Vec<(usize, usize)>,
    /// Attempts whose send call returned `Ok`.
    pub(crate) sent_ok: HashSet<(usize, usize)>,
    pub(crate) outcomes: Vec<(usize, usize, Outcome)>,
    pub(crate) violations: Vec<String>,
}

impl Log {
    fn has_outcome(&self, round: usize, id: usize) -> bool {
        self.outcomes
            .iter()
            .any(|(r, i, _)| (*r, *i) == (round, id))
    }

    pub(crate) fn is_answered(&self, id: usize) -> bool {
        self.outcomes
            .iter()
            .any(|(_, i, o)| *i == id && matches!(o, Outcome::Answered { .. }))
    }
}

/// The response whose body is being read.
#[derive(Debug)]
struct Current {
    id: usize,
    conn: usize,
    status: u16,
    body: Vec<u8>,
}

/// Reads in a row that may time out before the client is considered stuck.
const TIMEOUTS_IN_A_ROW: u32 = 100;

/// A connection driven through one path.
pub(crate) struct Client<'a, P: Park> {
    path: Path,
    conn: &'a HttpConnection<P>,
    world: &'a World,
    rng: RefCell<Rng>,
    pub(crate) log: RefCell<Log>,
    round: Cell<usize>,
    current: RefCell<Option<Current>>,
    timeouts: Cell<u32>,
    /// Set when the client cannot go on (stuck); loops stop.
    stuck: Cell<bool>,
    /// Most bytes the receive buffer may hold.
    memory_bound: usize,
}

impl<'a, P: Park> Client<'a, P> {
    pub(crate) fn new(
        path: Path,
        conn: &'a HttpConnection<P>,
        world: &'a World,
        rng: Rng,
        memory_bound: usize,
    ) -> Self {
        Client {
            path,
            conn,
            world,
            rng: RefCell::new(rng),
            log: RefCell::new(Log::default()),
            round: Cell::new(0),
            current: RefCell::new(None),
            timeouts: Cell::new(0),
            stuck: Cell::new(false),
            memory_bound,
        }
    }

    fn violation(&self, what: String) {
        self.world.note(|| format!("VIOLATION: {what}"));
        self.log.borrow_mut().violations.push(what);
    }

    fn outcome(&self, id: usize, outcome: Outcome) {
        let round = self.round.get();
        self.world
            .note(|| format!("client: request {id} (round {round}): {outcome:?}"));
        self.log.borrow_mut().outcomes.push((round, id, outcome));
    }

    fn check_memory(&self) {
        let held = self.conn.receive_buffer_capacity();
        if held > self.memory_bound {
            self.violation(format!(
                "receive buffer holds {held} bytes, more than the limits allow ({})",
                self.memory_bound
            ));
        }
    }

    /// Sends `requests` in order (reading now and then in between), stopping at the first
    /// send that fails, then reads until nothing is pending.
    pub(crate) fn run_round(&self, round: usize, requests: &[&ReqSpec]) {
        self.round.set(round);
        for r in requests {
            if self.stuck.get() {
                return;
            }
            self.log.borrow_mut().attempts.push((round, r.id));
            self.world.note(|| {
                format!(
                    "client: send {} /r{} {:?} {} bytes{}",
                    r.method,
                    r.id,
                    r.kind,
                    r.body.len(),
                    if r.expect { " (expect)" } else { "" }
                )
            });
            let sent = self.send(r);
            self.check_memory();
            match sent {
                Ok(()) => {
                    self.log.borrow_mut().sent_ok.insert((round, r.id));
                }
                Err(e) => {
                    self.world
                        .note(|| format!("client: send of {} failed: {e}", r.id));
                    self.on_error(&e, Phase::Send);
                    break;
                }
            }
            if self.rng.borrow_mut().chance(300) {
                self.read_one();
            }
        }
        while self.conn.response_pending() && !self.stuck.get() {
            self.read_one();
        }
    }

    // ---------------------------------------------------------------------------------------
    // Sending
    // ---------------------------------------------------------------------------------------

    fn send(&self, r: &ReqSpec) -> Result<(), Error> {
        let mut headers = HeaderMap::new();
        let expect = r.expect && !r.body.is_empty() && !self.conn.response_pending();
        if expect {
            headers.insert(EXPECT, HeaderValue::from_static("100-continue"));
        }
        let body = match r.kind {
            BodyKind::Empty => Body::Empty,
            BodyKind::Bytes => Body::Bytes(&r.body),
            BodyKind::Following => Body::Following(r.body.len() as u64),
            BodyKind::Chunked => Body::Chunked,
        };
        let target = format!("/r{}", r.id);
        let streamed = matches!(r.kind, BodyKind::Following | BodyKind::Chunked);
        let mut source = Pieces {
            data: &r.body,
            rng: Rng::new(self.rng.borrow_mut().next_u64()),
        };
        let conn = self.conn;
        match self.path {
            Path::Blocking | Path::Green => {
                conn.send_request(&r.method, &target, &headers, body)?;
                if streamed {
                    let mut buf = vec![0u8; 8192];
                    while conn.is_writing_body() {
                        let n = source.read(&mut buf).map_err(Error::Io)?;
                        if n == 0 {
                            conn.finish_body()?;
                            break;
                        }
                        conn.write(&buf[..n])?;
                    }
                }
            }
            Path::Cofun | Path::CofunDeclining | Path::GreenCofun => {
                let reads = self.path != Path::CofunDeclining;
                for step in conn.send_request_cofun(&r.method, &target, &headers, body)? {
                    step?;
                    if reads {
                        self.read_one();
                    }
                }
                if streamed && conn.is_writing_body() {
                    for step in conn.sendfile_cofun(&mut source)? {
                        step?;
                        if reads {
                            self.read_one();
                        }
                    }
                }
            }
            Path::CoOps => {
                let mut op = conn.co_send_request(&r.method, &target, &headers, body)?;
                self.drive_send(&mut op, expect)?;
                if streamed && conn.is_writing_body() {
                    let mut op = conn.co_write(&mut source)?;
                    self.drive_send(&mut op, false)?;
                }
            }
        }
        Ok(())
    }

    /// Steps a `co_*` send to its end, running the world when it waits; while it waits to
    /// write and a response is pending, a `co_*` read runs beside it. A request that
    /// `expect`s `100 Continue` reads the answer itself: no read beside it until that wait
    /// (its first wait to read) is over, since a side read would take the interim response.
    fn drive_send(&self, send: &mut CoOp<'_, ()>, expect: bool) -> Result<(), Error> {
        let conn = self.conn;
        let mut side_reads = !expect;
        loop {
            let (interest, timeout) = match send.step() {
                CoStep::Done(result) => return result,
                CoStep::Poll(need) => (need.interest, need.timeout),
            };
            if interest.is_readable() {
                side_reads = true;
            }
            let reads = side_reads
                && interest.is_writable()
                && !self.stuck.get()
                && conn.response_pending();
            if !reads {
                self.world.wait(readiness(&[(interest, timeout)]), timeout);
                continue;
            }
            if conn.has_active_response() {
                let mut buf = vec![0u8; self.read_size()];
                match self.beside(send, conn.co_read(&mut buf)) {
                    Beside::Sent(result) => return result,
                    Beside::Read(got) => self.body_read(got.map(|n| &buf[..n])),
                }
            } else {
                match self.beside(send, conn.co_read_response()) {
                    Beside::Sent(result) => return result,
                    Beside::Read(head) => self.head_read(head),
                }
            }
        }
    }

    /// Steps `read` and `send` until one of them finishes.
    fn beside<T>(&self, send: &mut CoOp<'_, ()>, mut read: CoOp<'_, T>) -> Beside<T> {
        loop {
            let read_wait = match read.step() {
                CoStep::Done(r) => return Beside::Read(r),
                CoStep::Poll(need) => (need.interest, need.timeout),
            };
            let send_wait = send
                .waiting_for()
                .map_or((Interest::Write, None), |n| (n.interest, n.timeout));
            let timeout = match (read_wait.1, send_wait.1) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.world.wait(readiness(&[read_wait, send_wait]), timeout);
            match send.step() {
                CoStep::Done(r) => return Beside::Sent(r),
                CoStep::Poll(need) if need.interest.is_readable() => {
                    drop(read);
                    return Beside::Sent(self.drive(send));
                }
                CoStep::Poll(_) => {}
            }
        }
    }

    /// Steps `op` to its end, running the world whenever it waits.
    fn drive<T>(&self, op: &mut CoOp<'_, T>) -> Result<T, Error> {
        loop {
            match op.step() {
                CoStep::Done(result) => return result,
                CoStep::Poll(need) => {
                    let (interest, timeout) = (need.interest, need.timeout);
                    self.world.wait(readiness(&[(interest, timeout)]), timeout);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Reading
    // ---------------------------------------------------------------------------------------

    fn read_size(&self) -> usize {
        self.rng
            .borrow_mut()
            .pick(&[1, 7, 512, 4096, 20_000, 70_000])
    }

    /// Reads what comes next: body bytes of the current response, or the next head.
    fn read_one(&self) {
        if self.stuck.get() || !self.conn.response_pending() {
            return;
        }
        let conn = self.conn;
        if conn.has_active_response() {
            if self.path.is_plain() && self.rng.borrow_mut().chance(100) {
                let all = conn.read_all();
                let n = all.as_ref().map_or(0, Vec::len);
                let bytes = all.as_deref().unwrap_or_default().to_vec();
                self.body_read(all.map(|_| &bytes[..n]));
            } else {
                let mut buf = vec![0u8; self.read_size()];
                let got = match self.path {
                    Path::CoOps => self.drive(&mut conn.co_read(&mut buf)),
                    _ => conn.read(&mut buf),
                };
                self.body_read(got.map(|n| &buf[..n]));
            }
        } else {
            let head = match self.path {
                Path::CoOps => self.drive(&mut conn.co_read_response()),
                _ => conn.read_response(),
            };
            self.head_read(head);
        }
        self.check_memory();
    }

    fn head_read(&self, head: Result<Response, Error>) {
        match head {
            Ok(response) => {
                self.timeouts.set(0);
                let Some(id) = request_id(&response.path) else {
                    self.violation(format!("a response to unknown target {}", response.path));
                    return;
                };
                let current = Current {
                    id,
                    conn: self.world.conns() - 1,
                    status: response.status.as_u16(),
                    body: Vec::new(),
                };
                if self.conn.has_active_response() {
                    *self.current.borrow_mut() = Some(current);
                } else {
                    self.answered(current);
                }
            }
            Err(e) => self.on_error(&e, Phase::Head),
        }
    }

    fn body_read(&self, got: Result<&[u8], Error>) {
        let mut slot = self.current.borrow_mut();
        let Some(current) = slot.as_mut() else {
            drop(slot);
            self.violation("body bytes with no response head".into());
            return;
        };
        match got {
            Ok(bytes) => {
                self.timeouts.set(0);
                current.body.extend_from_slice(bytes);
                let (id, n, total) = (current.id, bytes.len(), current.body.len());
                self.world.note(|| {
                    format!(
                        "client: {n} body bytes of {id} ({total} so far): {:?}",
                        &bytes[..n.min(8)]
                    )
                });
                if !self.conn.has_active_response() {
                    let done = slot.take().expect("checked above");
                    drop(slot);
                    self.answered(done);
                } else if bytes.is_empty() {
                    drop(slot);
                    self.violation("read returned 0 inside a body".into());
                    self.stuck.set(true);
                }
            }
            Err(e) => {
                drop(slot);
                self.on_error(&e, Phase::Body);
            }
        }
    }

    fn answered(&self, current: Current) {
        let Current {
            id,
            conn,
            status,
            body,
        } = current;
        self.outcome(id, Outcome::Answered { conn, status, body });
    }

    /// Logs what an error reports: the requests it lists as unanswered, and the one whose
    /// response failed, if any.
    fn on_error(&self, e: &Error, phase: Phase) {
        if let Error::Timeout { .. } = e {
            let n = self.timeouts.get() + 1;
            self.timeouts.set(n);
            if phase == Phase::Body && !self.conn.has_active_response() {
                // A `read_all` that had taken part of the body poisons the connection.
                if let Some(current) = self.current.borrow_mut().take() {
                    self.outcome(current.id, Outcome::Failed(format!("{e:?}")));
                }
            }
            if n > TIMEOUTS_IN_A_ROW {
                self.violation(format!("stuck: {n} timeouts in a row ({e})"));
                self.stuck.set(true);
            }
            return;
        }
        if let Error::State(_) = e {
            self.violation(format!("unexpected misuse error: {e:?}"));
            self.stuck.set(true);
            return;
        }
        let closed = matches!(e, Error::ConnectionClosed { .. });
        let listed: Vec<usize> = e
            .unanswered()
            .iter()
            .filter_map(|r| request_id(&r.target))
            .collect();
        for &id in &listed {
            self.outcome(id, Outcome::Listed { closed });
        }
        match phase {
            Phase::Body => {
                if let Some(current) = self.current.borrow_mut().take() {
                    self.outcome(current.id, Outcome::Failed(format!("{e:?}")));
                }
            }
            // A send that waited for `100 Continue` reads the response head itself.
            Phase::Head | Phase::Send => {
                let popped = matches!(
                    e,
                    Error::Protocol(_)
                        | Error::ConnectionClosed {
                            phase: ClosePhase::InHead,
                            ..
                        }
                );
                if popped {
                    let round = self.round.get();
                    let oldest = {
                        let log = self.log.borrow();
                        log.attempts
                            .iter()
                            .filter(|(r, id)| {
                                *r == round && !listed.contains(id) && !log.has_outcome(*r, *id)
                            })
                            .map(|&(_, id)| id)
                            .next()
                    };
                    match oldest {
                        Some(id) => self.outcome(id, Outcome::Failed(e.to_string())),
                        None => self.violation(format!(
                            "{e}: failed a response though no request is in flight"
                        )),
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Send,
    Head,
    Body,
}

enum Beside<T> {
    Sent(Result<(), Error>),
    Read(Result<T, Error>),
}

/// What a `co_*` loop asks the world to wait for.
fn readiness(waits: &[(Interest, Option<Duration>)]) -> Readiness {
    Readiness {
        readable: waits.iter().any(|(i, _)| i.is_readable()),
        writable: waits.iter().any(|(i, _)| i.is_writable()),
    }
}

fn request_id(target: &str) -> Option<usize> {
    target.strip_prefix("/r")?.parse().ok()
}

/// A body source that hands out random-sized pieces.
struct Pieces<'a> {
    data: &'a [u8],
    rng: Rng,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.data.len()).min(self.rng.range(1, 9000));
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}
