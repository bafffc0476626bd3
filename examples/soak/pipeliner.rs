//! Pipelined GETs through cofunctions with resends, and the ledger that proves every
//! request was answered exactly once.
//!
//! Request `id` is `GET /n/{id}`; nginx answers with the body `/n/{id}\n`. With a [`Mix`]
//! (phase 2), a seeded share of the ids are instead `GET /big/{k}?{id}` (one of nginx's
//! static files of [`LARGE_BYTES`], `k = id % LARGE_FILES`, each with its own bytes) or
//! `POST /n/{id}` with a [`POST_BYTES`] body (nginx answers before it has read the body, so
//! the response arrives while the cofunction is still sending). Every body is checked byte
//! by byte as it is read. The pipeliner
//! keeps up to `depth` requests in flight. A response is read in the cofunction's loop body
//! whenever one is available, and between sends when the window is full. When an error lists
//! unanswered requests (`ConnectionClosed` / `Poisoned`: the library lists each exactly once,
//! by the first call that meets the dead connection), exactly those go back to the front of
//! the send queue, in order, and the next send reconnects.
//!
//! The pipeliner mirrors the connection's pipeline in `in_flight`: a request enters when
//! `send_request_cofun` returns a cofunction (the request has then joined the library's
//! pipeline, whatever happens to its bytes) and leaves when its response is read or it is
//! listed unanswered. So every list must be exactly `in_flight`, and once the connection says
//! nothing is pending, `in_flight` must be empty. Anything else is an anomaly: a lost,
//! duplicated, misordered, wrong or cut response.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::OnceLock;

use dugong::{Body, ClosePhase, Error, HttpConnection, Park};
use http::{HeaderMap, Method, StatusCode};

use crate::probe::{Curve, Sample};

/// Size of each of nginx's large static files.
pub(crate) const LARGE_BYTES: usize = 256 * 1024;
/// Number of distinct large files: two large requests of a task closer than this in id ask
/// for different bytes, so a body handed to the wrong one of them shows.
pub(crate) const LARGE_FILES: u64 = 16;
/// Body of a `POST /n/{id}`: larger than a fresh loopback socket takes at once.
pub(crate) const POST_BYTES: usize = 128 * 1024;

/// Byte `offset` of large file `k`.
pub(crate) fn large_byte(k: u64, offset: usize) -> u8 {
    let o = offset as u64;
    (o.wrapping_mul(7) ^ (o >> 9) ^ k.wrapping_mul(0x9d)) as u8
}

/// Which requests are large GETs and POSTs (the rest are small GETs).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mix {
    pub(crate) large_percent: u32,
    pub(crate) post_percent: u32,
    pub(crate) seed: u64,
}

/// What request `id` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    Large(u64),
    Post,
}

impl Mix {
    /// Request `id`'s kind: a function of the id alone, so a resend asks for the same.
    fn kind(&self, id: u64) -> Kind {
        if self.large_percent == 0 && self.post_percent == 0 {
            return Kind::Get;
        }
        // splitmix64 of the id and seed
        let mut z = id ^ self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if z % 100 < u64::from(self.large_percent) {
            Kind::Large(id % LARGE_FILES)
        } else if (z / 100) % 100 < u64::from(self.post_percent) {
            Kind::Post
        } else {
            Kind::Get
        }
    }

    /// Whether request `id` is a GET of a large file.
    pub(crate) fn is_large(&self, id: u64) -> bool {
        matches!(self.kind(id), Kind::Large(_))
    }

    /// Whether request `id` is a POST.
    pub(crate) fn is_post(&self, id: u64) -> bool {
        self.kind(id) == Kind::Post
    }

    fn target(&self, id: u64) -> String {
        match self.kind(id) {
            Kind::Large(k) => format!("/big/{k}?{id}"),
            Kind::Get | Kind::Post => format!("/n/{id}"),
        }
    }
}

fn post_body() -> &'static [u8] {
    static BODY: OnceLock<Vec<u8>> = OnceLock::new();
    BODY.get_or_init(|| (0..POST_BYTES).map(|i| b'a' + (i % 26) as u8).collect())
}

/// The id a response's target names: `/n/{id}` or `/big/{k}?{id}`.
fn id_of(path: &str) -> Option<u64> {
    if let Some(n) = path.strip_prefix("/n/") {
        return n.parse().ok();
    }
    let (_, id) = path.strip_prefix("/big/")?.split_once('?')?;
    id.parse().ok()
}

/// Which library call a task is in (or last made).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Where {
    /// Not in a call yet.
    #[default]
    Idle,
    /// `send_request_cofun` (which reconnects if needed), or the cofunction's own `next()`.
    Sending,
    /// `read_response`.
    Head,
    /// `read` of a response body.
    Body,
}

/// What a pipeliner shows of its progress while it runs (a green task's canceller reads it).
#[derive(Debug, Default)]
pub(crate) struct Probe {
    pub(crate) answered: Cell<u64>,
    /// Requests in the connection's pipeline, as the pipeliner mirrors it.
    pub(crate) in_flight: Cell<u64>,
    pub(crate) at: Cell<Where>,
    /// Whether a cofunction is being iterated (a read is then in its loop body).
    pub(crate) in_cofun: Cell<bool>,
    /// Whether the body being read is a large one.
    pub(crate) large_body: Cell<bool>,
}

/// A callback after each answered response.
#[derive(Clone, Copy)]
struct OnAnswer<'c>(&'c dyn Fn(u64));

impl std::fmt::Debug for OnAnswer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnAnswer")
    }
}

/// Where a request stands. The discriminants are non-zero on purpose: `vec![NotSent; n]`
/// then writes every page of the ledger at once, so the ledger does not show up as RSS
/// growth while the soak runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Standing {
    NotSent = 1,
    /// In the connection's pipeline.
    Sent = 2,
    /// Listed unanswered; waits to be resent.
    Unanswered = 3,
    Answered = 4,
}

/// Anomalies kept in full; beyond that only counted.
const KEEP_ANOMALIES: usize = 10;

/// What a run of the pipeliner did.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    /// Responses read and checked.
    pub(crate) answered: u64,
    /// `send_request_cofun` calls that returned a cofunction.
    pub(crate) sends: u64,
    /// Of those, requests sent again after being listed unanswered.
    pub(crate) resends: u64,
    /// Errors that listed unanswered requests.
    pub(crate) reports: u64,
    /// Requests those errors listed, in all: each must be resent exactly once.
    pub(crate) listed: u64,
    /// Responses that announced the close (`Connection: close`).
    pub(crate) closes: u64,
    /// Sends refused before any byte went out (the request waits and is sent later).
    pub(crate) refused_sends: u64,
    pub(crate) anomaly_count: u64,
    pub(crate) anomalies: Vec<String>,
}

impl Tally {
    pub(crate) fn add(&mut self, other: &Tally) {
        self.answered += other.answered;
        self.sends += other.sends;
        self.resends += other.resends;
        self.reports += other.reports;
        self.listed += other.listed;
        self.closes += other.closes;
        self.refused_sends += other.refused_sends;
        self.anomaly_count += other.anomaly_count;
        for a in &other.anomalies {
            if self.anomalies.len() < KEEP_ANOMALIES {
                self.anomalies.push(a.clone());
            }
        }
    }

    fn anomaly(&mut self, what: String) {
        self.anomaly_count += 1;
        if self.anomalies.len() < KEEP_ANOMALIES {
            self.anomalies.push(what);
        }
    }
}

/// Sends requests `first .. first + count` over one connection; see the module docs.
#[derive(Debug)]
pub(crate) struct Pipeliner<'c, P: Park> {
    conn: &'c HttpConnection<P>,
    depth: usize,
    first: u64,
    ledger: Vec<Standing>,
    /// Ids in the connection's pipeline, oldest first.
    in_flight: VecDeque<u64>,
    /// Ids listed unanswered, to be sent before any new one, oldest first.
    resend: VecDeque<u64>,
    /// The next id never sent.
    fresh: u64,
    /// A send was refused because the server stopped reading: the responses in flight
    /// are read before the next send (which then reconnects).
    read_first: bool,
    /// Failed sends in a row that left nothing to read.
    failed_in_a_row: u32,
    mix: Mix,
    probe: Option<&'c Probe>,
    /// Called with the number of responses answered after each one.
    on_answer: Option<OnAnswer<'c>>,
    pub(crate) tally: Tally,
    /// Sample RSS and fds every this many answers.
    sample_every: Option<u64>,
    pub(crate) curve: Curve,
}

impl<'c, P: Park> Pipeliner<'c, P> {
    pub(crate) fn new(conn: &'c HttpConnection<P>, depth: usize, first: u64, count: u64) -> Self {
        Pipeliner {
            conn,
            depth: depth.max(1),
            first,
            ledger: vec![Standing::NotSent; count as usize],
            in_flight: VecDeque::with_capacity(depth + 1),
            resend: VecDeque::with_capacity(depth + 1),
            fresh: first,
            read_first: false,
            failed_in_a_row: 0,
            mix: Mix::default(),
            probe: None,
            on_answer: None,
            tally: Tally::default(),
            sample_every: None,
            curve: Curve::default(),
        }
    }

    /// Samples RSS and open fds after every `every` answers.
    pub(crate) fn sample_every(mut self, every: u64) -> Self {
        self.sample_every = Some(every.max(1));
        self
    }

    /// Which requests are large or POSTs.
    pub(crate) fn mix(mut self, mix: Mix) -> Self {
        self.mix = mix;
        self
    }

    /// Shows progress in `probe` and calls `on_answer` after each response.
    pub(crate) fn watched(mut self, probe: &'c Probe, on_answer: &'c dyn Fn(u64)) -> Self {
        self.probe = Some(probe);
        self.on_answer = Some(OnAnswer(on_answer));
        self
    }

    fn at(&self, at: Where) {
        if let Some(p) = self.probe {
            p.at.set(at);
        }
    }

    fn in_cofun(&self, on: bool) {
        if let Some(p) = self.probe {
            p.in_cofun.set(on);
        }
    }

    fn show_in_flight(&self) {
        if let Some(p) = self.probe {
            p.in_flight.set(self.in_flight.len() as u64);
        }
    }

    /// Whether the answered requests are exactly the first ones, with no gap.
    pub(crate) fn answered_prefix(&self) -> bool {
        let n = self.tally.answered as usize;
        n <= self.ledger.len()
            && self.ledger[..n].iter().all(|&s| s == Standing::Answered)
            && self.ledger[n..].iter().all(|&s| s != Standing::Answered)
    }

    fn end(&self) -> u64 {
        self.first + self.ledger.len() as u64
    }

    fn standing(&mut self, id: u64) -> &mut Standing {
        &mut self.ledger[(id - self.first) as usize]
    }

    /// Runs until every request is answered. Errors other than a close or poisoning (that
    /// list what to resend) end the run: with a local nginx they mean something is wrong.
    pub(crate) fn run(&mut self) -> Result<(), Error> {
        loop {
            let pending = !self.in_flight.is_empty() || self.conn.response_pending();
            let next = self
                .resend
                .front()
                .copied()
                .or((self.fresh < self.end()).then_some(self.fresh));
            let may_send = self.in_flight.len() < self.depth && !(self.read_first && pending);
            match next {
                Some(id) if may_send => self.send(id)?,
                _ if pending => {
                    self.read_first = false;
                    self.read_one()?;
                }
                _ => break,
            }
        }
        self.check_complete();
        Ok(())
    }

    /// Sends request `id` through a cofunction, reading responses in its loop body.
    fn send(&mut self, id: u64) -> Result<(), Error> {
        let conn = self.conn;
        let target = self.mix.target(id);
        let (method, body) = match self.mix.kind(id) {
            Kind::Post => (Method::POST, Body::Bytes(post_body())),
            Kind::Get | Kind::Large(_) => (Method::GET, Body::Empty),
        };
        self.at(Where::Sending);
        let cofun = match conn.send_request_cofun(&method, &target, &HeaderMap::new(), body) {
            Ok(cofun) => cofun,
            Err(e) => {
                // Not sent. Whatever the error lists is older, so it goes first.
                self.tally.refused_sends += 1;
                let listed = !e.unanswered().is_empty();
                self.on_error(e)?;
                self.read_first = !listed;
                if !listed && self.in_flight.is_empty() && !conn.response_pending() {
                    self.failed_in_a_row += 1;
                    if self.failed_in_a_row > 3 {
                        return Err(Error::Io(std::io::Error::other(format!(
                            "{target}: sends keep failing with nothing to read"
                        ))));
                    }
                }
                return Ok(());
            }
        };
        self.failed_in_a_row = 0;
        if self.resend.front() == Some(&id) {
            self.resend.pop_front();
        } else {
            self.fresh += 1;
        }
        self.tally.sends += 1;
        match *self.standing(id) {
            Standing::NotSent => {}
            Standing::Unanswered => self.tally.resends += 1,
            other => self.tally.anomaly(format!("{target} sent while {other:?}")),
        }
        *self.standing(id) = Standing::Sent;
        self.in_flight.push_back(id);
        self.show_in_flight();
        self.in_cofun(true);
        let sent = self.drive(cofun);
        self.in_cofun(false);
        sent
    }

    /// Iterates a cofunction, reading responses in its loop body.
    fn drive(&mut self, mut cofun: dugong::Cofun<'_, P>) -> Result<(), Error> {
        loop {
            self.at(Where::Sending);
            match cofun.next() {
                None => return Ok(()),
                // Response data is there: the loop body reads it.
                Some(Ok(())) => self.read_one()?,
                // Yielded once, then the iterator ends.
                Some(Err(e)) => self.on_error(e)?,
            }
        }
    }

    /// Reads and checks one whole response, if one is pending.
    fn read_one(&mut self) -> Result<(), Error> {
        if !self.conn.response_pending() {
            if !self.in_flight.is_empty() {
                let lost: Vec<u64> = self.in_flight.iter().copied().collect();
                self.tally.anomaly(format!(
                    "lost: {} requests in flight ({:?}…) but the connection has nothing pending",
                    lost.len(),
                    &lost[..lost.len().min(4)]
                ));
                self.requeue_in_flight();
            }
            return Ok(());
        }
        self.at(Where::Head);
        let resp = match self.conn.read_response() {
            Ok(resp) => resp,
            Err(e) => return self.on_error(e),
        };
        // Popped once the body is complete: a body cut short is handled by `on_error`.
        let expected = self.in_flight.front().copied();
        let id = id_of(&resp.path).filter(|id| (self.first..self.end()).contains(id));
        // The body's bytes as they should be; a wrong target gets the path's own body.
        let kind = id.map_or(Kind::Get, |id| self.mix.kind(id));
        let small = format!("{}\n", resp.path).into_bytes();
        let want_len = match kind {
            Kind::Large(_) => LARGE_BYTES,
            Kind::Get | Kind::Post => small.len(),
        };
        if let Some(p) = self.probe {
            p.large_body.set(matches!(kind, Kind::Large(_)));
        }
        let mut got = 0usize;
        let mut first_bad = None;
        let mut buf = [0u8; 2048];
        loop {
            self.at(Where::Body);
            match self.conn.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if first_bad.is_none() {
                        first_bad = buf[..n]
                            .iter()
                            .enumerate()
                            .find(|&(i, &b)| {
                                let at = got + i;
                                let want = match kind {
                                    Kind::Large(k) => (at < LARGE_BYTES).then(|| large_byte(k, at)),
                                    Kind::Get | Kind::Post => small.get(at).copied(),
                                };
                                want != Some(b)
                            })
                            .map(|(i, _)| got + i);
                    }
                    got += n;
                }
                Err(e) => return self.on_error(e),
            }
        }
        self.in_flight.pop_front();
        self.show_in_flight();
        let Some(id) = id else {
            self.tally
                .anomaly(format!("response for a foreign target {:?}", resp.path));
            return Ok(());
        };
        if expected != Some(id) {
            self.tally.anomaly(format!(
                "response for {} where /n/{expected:?} was next",
                resp.path
            ));
        }
        if resp.path != self.mix.target(id) {
            self.tally.anomaly(format!(
                "response for {:?}, but request {id} was {:?}",
                resp.path,
                self.mix.target(id)
            ));
        }
        if resp.status != StatusCode::OK || got != want_len || first_bad.is_some() {
            self.tally.anomaly(format!(
                "{}: {} with {got} body bytes (want {want_len}), first wrong byte at {first_bad:?}",
                resp.path, resp.status
            ));
        }
        match *self.standing(id) {
            Standing::Sent => {}
            Standing::Answered => self.tally.anomaly(format!("/n/{id} answered twice")),
            other => self
                .tally
                .anomaly(format!("/n/{id} answered while {other:?}")),
        }
        *self.standing(id) = Standing::Answered;
        if resp
            .headers
            .get(http::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
        {
            self.tally.closes += 1;
        }
        self.tally.answered += 1;
        if let Some(p) = self.probe {
            p.answered.set(self.tally.answered);
        }
        if let Some(OnAnswer(on_answer)) = self.on_answer {
            on_answer(self.tally.answered);
        }
        if let Some(every) = self.sample_every {
            if self.tally.answered % every == 0 {
                self.curve.push(Sample::take(self.tally.answered));
            }
        }
        Ok(())
    }

    /// Takes in an error: the requests it lists go back to the front of the send queue, in
    /// order. Returns the errors that end the run.
    fn on_error(&mut self, e: Error) -> Result<(), Error> {
        let cut = match &e {
            Error::ConnectionClosed { phase, .. } => is_inside_response(*phase),
            // Lists the requests behind an earlier failure; that failure's own error (a
            // protocol error, a reset, a timeout) ended the run already.
            Error::Poisoned { .. } => false,
            _ => return Err(e),
        };
        let listed: Vec<u64> = e
            .unanswered()
            .iter()
            .map(|r| id_of(&r.target).unwrap_or(u64::MAX))
            .collect();
        if cut {
            // A response cut off inside its head or body: its request is not listed (the
            // server acted on it). nginx closes only after a complete response, so this
            // is unexpected; the request is resent so the ledger stays whole.
            let front = self.in_flight.front().copied();
            self.tally
                .anomaly(format!("response to /n/{front:?} cut short: {e}"));
            if let Some(id) = self.in_flight.pop_front() {
                *self.standing(id) = Standing::Unanswered;
                self.resend.push_front(id);
            }
        }
        if listed.is_empty() {
            // Nothing listed now: a send that found the server gone; the responses in
            // flight are still read, and the read that meets the close lists the rest.
            return Ok(());
        }
        self.tally.reports += 1;
        self.tally.listed += listed.len() as u64;
        if !listed.iter().eq(self.in_flight.iter()) {
            self.tally.anomaly(format!(
                "listed unanswered {} requests ({:?}…), in flight {} ({:?}…): {e}",
                listed.len(),
                &listed[..listed.len().min(4)],
                self.in_flight.len(),
                self.in_flight.iter().take(4).collect::<Vec<_>>()
            ));
        }
        for &id in listed.iter().rev() {
            if !(self.first..self.end()).contains(&id) || *self.standing(id) != Standing::Sent {
                self.tally
                    .anomaly(format!("/n/{id} listed unanswered but not in flight"));
                continue;
            }
            *self.standing(id) = Standing::Unanswered;
            self.resend.push_front(id);
        }
        self.in_flight.retain(|id| !listed.contains(id));
        self.show_in_flight();
        // Whatever is still in flight was not listed: reported as lost by the next read.
        Ok(())
    }

    /// After a loss: what was in flight is sent again, so the run can go on.
    fn requeue_in_flight(&mut self) {
        while let Some(id) = self.in_flight.pop_back() {
            *self.standing(id) = Standing::Unanswered;
            self.resend.push_front(id);
        }
    }

    /// Every request answered exactly once.
    fn check_complete(&mut self) {
        let unanswered = self
            .ledger
            .iter()
            .filter(|&&s| s != Standing::Answered)
            .count();
        if unanswered > 0 {
            self.tally
                .anomaly(format!("{unanswered} requests never answered"));
        }
    }
}

fn is_inside_response(phase: ClosePhase) -> bool {
    matches!(phase, ClosePhase::InHead | ClosePhase::InBody)
}
