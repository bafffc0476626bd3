//! Pipelined GETs through cofunctions with resends, and the ledger that proves every
//! request was answered exactly once.
//!
//! Request `id` is `GET /n/{id}`; nginx answers with the body `/n/{id}\n`. The pipeliner
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

use std::collections::VecDeque;

use dugong::{ClosePhase, Error, HttpConnection, Park};
use http::{HeaderMap, Method, StatusCode};

use crate::probe::{Curve, Sample};

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
    body: Vec<u8>,
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
            body: Vec::with_capacity(64),
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
        let target = format!("/n/{id}");
        let cofun = match conn.send_request_cofun(
            &Method::GET,
            &target,
            &HeaderMap::new(),
            dugong::Body::Empty,
        ) {
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
        for step in cofun {
            match step {
                // Response data is there: the loop body reads it.
                Ok(()) => self.read_one()?,
                // Yielded once, then the iterator ends.
                Err(e) => self.on_error(e)?,
            }
        }
        Ok(())
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
        let resp = match self.conn.read_response() {
            Ok(resp) => resp,
            Err(e) => return self.on_error(e),
        };
        self.body.clear();
        let mut buf = [0u8; 256];
        loop {
            match self.conn.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.body.extend_from_slice(&buf[..n]),
                Err(e) => return self.on_error(e),
            }
        }
        let expected = self.in_flight.pop_front();
        let id = resp
            .path
            .strip_prefix("/n/")
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|id| (self.first..self.end()).contains(id));
        let Some(id) = id else {
            self.tally
                .anomaly(format!("response for a foreign target {:?}", resp.path));
            return Ok(());
        };
        if expected != Some(id) {
            self.tally.anomaly(format!(
                "response for /n/{id} where /n/{expected:?} was next"
            ));
        }
        let body_ok = self.body.strip_suffix(b"\n") == Some(resp.path.as_bytes());
        if resp.status != StatusCode::OK || !body_ok {
            self.tally.anomaly(format!(
                "/n/{id}: {} with body {:?}",
                resp.status,
                String::from_utf8_lossy(&self.body)
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
            .map(|r| {
                r.target
                    .strip_prefix("/n/")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(u64::MAX)
            })
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
