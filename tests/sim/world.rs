//! The simulated world: each connection is a pair of bounded byte pipes with the server model
//! at the far end, all on one virtual clock. It plugs into dugong's simulation seam: the
//! [`Network`] the client's park connects through, and a [`Peer`] per connection whose
//! `wait` runs the server until the client's interest is ready or its timeout passes.
//!
//! The server model is the oracle: it records every response it sent (and how far), every
//! request it received, and any byte of a request that was out of place.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, IoSlice};
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dugong::sim::{Network, Peer, Readiness};

use super::rng::Rng;
use super::server::{plan_response, Latitude, Planned, ReqEvent, RequestParser};

/// More world steps than any schedule needs: a client that keeps waiting without progress.
const STEP_LIMIT: u64 = 5_000_000;

/// How the server ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Closed,
    Reset,
}

/// A response the server sent (or started to), and how far it got.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) planned: Planned,
    pub(crate) sent: usize,
}

impl Answer {
    /// Whether a byte of the final response head went out.
    pub(crate) fn final_started(&self) -> bool {
        self.sent > self.planned.final_at
    }

    /// The body a client that read all of the response must have: the whole planned body,
    /// or for a close-delimited one what went out before the close.
    pub(crate) fn body_out(&self) -> Option<&[u8]> {
        let p = &self.planned;
        if p.until_close {
            Some(&p.wire[p.body_at.min(self.sent)..self.sent.min(p.final_end)])
        } else if self.sent >= p.final_end {
            Some(&p.body)
        } else {
            None
        }
    }
}

/// Bytes waiting to go out: a response (tracked by request id and round) or a
/// `100 Continue`.
#[derive(Debug)]
struct Item {
    id: Option<(usize, usize)>,
    bytes: Vec<u8>,
    sent: usize,
}

/// One connection: pipes, their splits, and the server's state on it.
#[derive(Debug)]
struct Pipe {
    c2s: VecDeque<u8>,
    c2s_cap: usize,
    s2c: VecDeque<u8>,
    s2c_cap: usize,
    send_split: usize,
    recv_split: usize,
    read_split: usize,
    write_split: usize,
    end: Option<End>,
    parser: RequestParser,
    /// The method of the request being received.
    method: String,
    out: VecDeque<Item>,
    /// Whether the server still reads requests.
    reading: bool,
    /// The server closes once `out` has gone.
    closing: bool,
    latitude: Latitude,
    stall_until: Option<Duration>,
    stalls_left: u32,
    stall_pm: u64,
    early_pm: u64,
    idle_close_at: Option<Duration>,
    /// A closing server that cannot get its last bytes out resets the connection then
    /// (a lingering close gives up).
    give_up_at: Option<Duration>,
    cut_out: Option<(u64, End)>,
    cut_in: Option<(u64, End)>,
    emitted: u64,
    taken: u64,
    answered_early: HashSet<usize>,
    /// (round, id) of every request head received.
    seen: Vec<(usize, usize)>,
}

/// What the world knows at the end of a schedule.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Responses by (connection, request id, round).
    pub(crate) answers: HashMap<(usize, usize, usize), Answer>,
    /// (connection, round, id) of every request head received.
    pub(crate) seen: HashSet<(usize, usize, usize)>,
    pub(crate) violations: Vec<String>,
    pub(crate) elapsed: Duration,
}

#[derive(Debug)]
struct Inner {
    rng: Rng,
    base: Instant,
    now: Duration,
    round: usize,
    faulty: bool,
    pipes: Vec<Pipe>,
    expected: HashMap<usize, Vec<u8>>,
    report: Report,
    trace: Option<Vec<String>>,
    steps: u64,
}

/// A handle on the world, shared by the test, the network and every peer.
#[derive(Debug, Clone)]
pub(crate) struct World {
    inner: Arc<Mutex<Inner>>,
}

impl World {
    pub(crate) fn new(rng: Rng, trace: bool) -> Self {
        let base = Instant::now();
        dugong::sim::set_now(Some(base));
        World {
            inner: Arc::new(Mutex::new(Inner {
                rng,
                base,
                now: Duration::ZERO,
                round: 0,
                faulty: true,
                pipes: Vec::new(),
                expected: HashMap::new(),
                report: Report::default(),
                trace: trace.then(Vec::new),
                steps: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The network the client's park connects through.
    pub(crate) fn network(&self) -> Rc<dyn Network> {
        Rc::new(self.clone())
    }

    /// The same, for a simulated green runtime.
    pub(crate) fn shared_network(&self) -> Arc<dyn Network> {
        Arc::new(self.clone())
    }

    /// Connections opened from now on belong to `round` and may misbehave if `faulty`.
    pub(crate) fn set_round(&self, round: usize, faulty: bool) {
        let mut w = self.lock();
        w.round = round;
        w.faulty = faulty;
        w.note(|| {
            format!(
                "--- round {round} ({})",
                if faulty { "faults" } else { "clean" }
            )
        });
    }

    /// The body request `id` carries.
    pub(crate) fn expect_body(&self, id: usize, body: Vec<u8>) {
        self.lock().expected.insert(id, body);
    }

    /// Connections opened so far; the newest is the client's current one.
    pub(crate) fn conns(&self) -> usize {
        self.lock().pipes.len()
    }

    /// Runs the newest connection's world, as its peer's `wait` does (for a `co_*` loop).
    pub(crate) fn wait(&self, interest: Readiness, timeout: Option<Duration>) -> Readiness {
        let conn = self.conns().saturating_sub(1);
        wait(&self.inner, conn, interest, timeout)
    }

    pub(crate) fn note(&self, line: impl FnOnce() -> String) {
        self.lock().note(line);
    }

    pub(crate) fn take_trace(&self) -> Vec<String> {
        self.lock().trace.take().unwrap_or_default()
    }

    pub(crate) fn finish(&self) -> Report {
        let mut w = self.lock();
        let mut report = std::mem::take(&mut w.report);
        report.seen = w
            .pipes
            .iter()
            .enumerate()
            .flat_map(|(c, p)| p.seen.iter().map(move |&(r, id)| (c, r, id)))
            .collect();
        report.elapsed = w.now;
        report
    }
}

impl Network for World {
    fn connect(&self) -> io::Result<Arc<dyn Peer>> {
        let mut w = self.lock();
        let pipe = w.new_pipe();
        w.pipes.push(pipe);
        let conn = w.pipes.len() - 1;
        let p = &w.pipes[conn];
        let line = format!(
            "connect #{conn}: c2s cap {} split {}/{}, s2c cap {} split {}/{}, cut out {:?} in {:?}, idle close {:?}, stalls {}x{}‰, early {}‰",
            p.c2s_cap, p.send_split, p.read_split, p.s2c_cap, p.write_split, p.recv_split,
            p.cut_out, p.cut_in, p.idle_close_at, p.stalls_left, p.stall_pm, p.early_pm
        );
        w.note(|| line);
        Ok(Arc::new(SimPeer {
            inner: Arc::clone(&self.inner),
            conn,
        }))
    }

    fn sleep(&self, duration: Duration) {
        match self.conns() {
            // The newest connection's server runs meanwhile; the client waits for nothing.
            n @ 1.. => drop(wait(
                &self.inner,
                n - 1,
                Readiness::default(),
                Some(duration),
            )),
            0 => {
                let mut w = self.lock();
                let now = w.now + duration;
                w.set_now(now);
            }
        }
    }
}

/// The client's end of one connection.
#[derive(Debug)]
struct SimPeer {
    inner: Arc<Mutex<Inner>>,
    conn: usize,
}

impl Peer for SimPeer {
    fn send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let p = &mut w.pipes[self.conn];
        match p.end {
            Some(End::Closed) => return Err(io::ErrorKind::BrokenPipe.into()),
            Some(End::Reset) => return Err(io::ErrorKind::ConnectionReset.into()),
            None => {}
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let room = p.c2s_cap - p.c2s.len();
        if total > 0 && room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = total.min(room).min(p.send_split);
        let mut left = n;
        for b in bufs {
            let take = left.min(b.len());
            p.c2s.extend(&b[..take]);
            left -= take;
        }
        let conn = self.conn;
        w.note(|| format!("client sends {n}/{total} on #{conn}"));
        Ok(n)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let p = &mut w.pipes[self.conn];
        if p.s2c.is_empty() {
            return match p.end {
                None => Err(io::ErrorKind::WouldBlock.into()),
                Some(End::Closed) => Ok(0),
                Some(End::Reset) => Err(io::ErrorKind::ConnectionReset.into()),
            };
        }
        let n = buf.len().min(p.recv_split).min(p.s2c.len());
        for (dst, src) in buf.iter_mut().zip(p.s2c.drain(..n)) {
            *dst = src;
        }
        let conn = self.conn;
        w.note(|| format!("client receives {n} on #{conn}"));
        Ok(n)
    }

    fn wait(&self, interest: Readiness, timeout: Option<Duration>) -> Readiness {
        wait(&self.inner, self.conn, interest, timeout)
    }
}

/// Runs connection `conn`'s server until `interest` is ready or `timeout` passes.
fn wait(
    inner: &Mutex<Inner>,
    conn: usize,
    interest: Readiness,
    timeout: Option<Duration>,
) -> Readiness {
    let mut w = inner.lock().unwrap_or_else(|e| e.into_inner());
    let deadline = timeout.map(|t| w.now + t);
    let mut extra: Option<usize> = None;
    loop {
        w.steps += 1;
        if w.steps > STEP_LIMIT {
            drop(w);
            panic!("livelock: more than {STEP_LIMIT} world steps");
        }
        let ready = w.readiness(conn, interest);
        if ready != Readiness::default() {
            // The server may get a little further before the client looks.
            let more = *extra.get_or_insert_with(|| {
                if w.rng.chance(500) {
                    0
                } else {
                    w.rng.range(1, 3)
                }
            });
            if more == 0 || !w.step(conn) {
                return ready;
            }
            extra = Some(more - 1);
            continue;
        }
        if timeout == Some(Duration::ZERO) {
            return ready;
        }
        if w.step(conn) {
            continue;
        }
        match w.next_timer(conn) {
            Some(t) if deadline.is_none_or(|d| t <= d) => w.set_now(t),
            _ => match deadline {
                Some(d) => {
                    let now = d.max(w.now);
                    w.set_now(now);
                    w.note(|| format!("client's wait for {interest:?} times out"));
                    return Readiness::default();
                }
                None => {
                    drop(w);
                    panic!("hang: the client waits for {interest:?} without a timeout on a server that will never act");
                }
            },
        }
    }
}

impl Inner {
    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            trace.push(format!("{:>9.3}s {}", self.now.as_secs_f64(), line()));
        }
    }

    fn set_now(&mut self, now: Duration) {
        if now != self.now {
            self.now = now;
            dugong::sim::set_now(Some(self.base + now));
        }
    }

    fn new_pipe(&mut self) -> Pipe {
        let faulty = self.faulty;
        let r = &mut self.rng;
        let caps = [1, 16, 100, 4096, 65536, 1 << 20, 1 << 20];
        let splits = [1, 5, 100, 1500, 1 << 20, 1 << 20];
        let end = |r: &mut Rng| {
            if r.chance(500) {
                End::Closed
            } else {
                End::Reset
            }
        };
        Pipe {
            c2s: VecDeque::new(),
            c2s_cap: r.pick(&caps),
            s2c: VecDeque::new(),
            s2c_cap: r.pick(&caps),
            send_split: r.pick(&splits),
            recv_split: r.pick(&splits),
            read_split: r.pick(&splits),
            write_split: r.pick(&splits),
            end: None,
            parser: RequestParser::default(),
            method: String::new(),
            out: VecDeque::new(),
            reading: true,
            closing: false,
            latitude: Latitude { faults: faulty },
            stall_until: None,
            stalls_left: if faulty { r.range(0, 3) as u32 } else { 0 },
            stall_pm: r.pick(&[5, 20, 100]),
            early_pm: if faulty { r.pick(&[0, 300]) } else { 0 },
            idle_close_at: (faulty && r.chance(150))
                .then(|| Duration::from_millis(r.range(0, 3000) as u64)),
            give_up_at: None,
            cut_out: (faulty && r.chance(250)).then(|| (r.range(0, 3000) as u64, end(r))),
            cut_in: (faulty && r.chance(100)).then(|| (r.range(0, 3000) as u64, end(r))),
            emitted: 0,
            taken: 0,
            answered_early: HashSet::new(),
            seen: Vec::new(),
        }
    }

    fn readiness(&self, conn: usize, interest: Readiness) -> Readiness {
        let p = &self.pipes[conn];
        Readiness {
            readable: interest.readable && (!p.s2c.is_empty() || p.end.is_some()),
            writable: interest.writable && (p.c2s.len() < p.c2s_cap || p.end.is_some()),
        }
    }

    /// The next moment the server of `conn` will act by itself.
    fn next_timer(&self, conn: usize) -> Option<Duration> {
        let p = &self.pipes[conn];
        if p.end.is_some() {
            return None;
        }
        [p.stall_until, p.idle_close_at, p.give_up_at]
            .into_iter()
            .flatten()
            .filter(|&t| t > self.now)
            .min()
    }

    /// One action of `conn`'s server, if it has one now.
    fn step(&mut self, conn: usize) -> bool {
        let now = self.now;
        let p = &mut self.pipes[conn];
        if p.end.is_some() || p.stall_until.is_some_and(|t| t > now) {
            return false;
        }
        p.stall_until = None;
        let idle = p.parser.is_idle() && p.out.is_empty() && p.c2s.is_empty();
        if idle && p.idle_close_at.is_some_and(|t| t <= now) {
            self.end(conn, End::Closed, "idle timeout");
            return true;
        }
        let can_read = p.reading && !p.c2s.is_empty();
        let can_write = !p.out.is_empty() && p.s2c.len() < p.s2c_cap;
        if p.closing && !can_write && !p.out.is_empty() {
            match p.give_up_at {
                Some(t) if t <= now => {
                    self.end(conn, End::Reset, "gives up writing its last bytes");
                    return true;
                }
                Some(_) => {}
                None => p.give_up_at = Some(now + Duration::from_secs(2)),
            }
        }
        let write = match (can_read, can_write) {
            (false, false) => return false,
            (true, true) => self.rng.chance(500),
            (_, w) => w,
        };
        let p = &mut self.pipes[conn];
        if p.stalls_left > 0 && self.rng.chance(p.stall_pm) {
            p.stalls_left -= 1;
            let d = Duration::from_millis(self.rng.pick(&[10, 300, 1500, 4000]));
            p.stall_until = Some(now + d);
            self.note(|| format!("server #{conn} stalls {d:?}"));
            return true;
        }
        if write {
            self.write(conn);
        } else {
            self.read(conn);
        }
        true
    }

    fn end(&mut self, conn: usize, how: End, why: &str) {
        let p = &mut self.pipes[conn];
        p.end = Some(how);
        p.out.clear();
        p.reading = false;
        self.note(|| format!("server #{conn}: {how:?} ({why})"));
    }

    fn write(&mut self, conn: usize) {
        let p = &mut self.pipes[conn];
        let mut n = p.write_split.min(p.s2c_cap - p.s2c.len());
        if let Some((at, how)) = p.cut_out {
            if p.emitted >= at {
                self.end(conn, how, "cut while writing");
                return;
            }
            n = n.min((at - p.emitted) as usize);
        }
        let item = p.out.front_mut().expect("can_write");
        let n = n.min(item.bytes.len() - item.sent);
        p.s2c.extend(&item.bytes[item.sent..item.sent + n]);
        item.sent += n;
        p.emitted += n as u64;
        let (id, sent, done) = (item.id, item.sent, item.sent == item.bytes.len());
        if done {
            p.out.pop_front();
        }
        let finished = p.out.is_empty() && p.closing;
        if let Some((id, round)) = id {
            if let Some(a) = self.report.answers.get_mut(&(conn, id, round)) {
                a.sent = sent;
            }
        }
        self.note(|| format!("server #{conn} writes {n} of {id:?} ({sent} so far)"));
        if finished {
            self.end(conn, End::Closed, "closes after its response");
        }
    }

    fn read(&mut self, conn: usize) {
        let p = &mut self.pipes[conn];
        let mut n = p.read_split.min(p.c2s.len());
        if let Some((at, how)) = p.cut_in {
            if p.taken >= at {
                self.end(conn, how, "cut while reading");
                return;
            }
            n = n.min((at - p.taken) as usize);
        }
        let bytes: Vec<u8> = p.c2s.drain(..n).collect();
        p.taken += n as u64;
        let mut events = Vec::new();
        let parsed = p.parser.feed(&bytes, &mut events);
        self.note(|| format!("server #{conn} reads {n}: {:?}", preview(&bytes)));
        if let Err(e) = parsed {
            self.report
                .violations
                .push(format!("connection #{conn}: mis-framed request bytes: {e}"));
            self.end(conn, End::Reset, "mis-framed request");
            return;
        }
        for event in events {
            self.on_request(conn, event);
        }
    }

    fn on_request(&mut self, conn: usize, event: ReqEvent) {
        self.note(|| format!("server #{conn} got {event:?}"));
        match event {
            ReqEvent::Head {
                id,
                method,
                expect_continue,
                has_body,
            } => {
                let round = self.round;
                let p = &mut self.pipes[conn];
                if p.seen.last().is_some_and(|&last| last >= (round, id)) {
                    self.report.violations.push(format!(
                        "connection #{conn}: request {id} (round {round}) after {:?}: sent twice or out of order",
                        p.seen
                    ));
                }
                p.seen.push((round, id));
                p.method = method;
                if !self.expected.contains_key(&id) {
                    self.report
                        .violations
                        .push(format!("connection #{conn}: unknown request {id}"));
                }
                if p.closing {
                    return;
                }
                let faults = p.latitude.faults;
                if expect_continue && has_body {
                    match if faults { self.rng.range(0, 2) } else { 0 } {
                        0 => p.out.push_back(Item {
                            id: None,
                            bytes: b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(),
                            sent: 0,
                        }),
                        1 => {} // ignores the expectation
                        _ => {
                            let status = self.rng.pick(&[413, 417]);
                            self.respond(conn, id, Some(status));
                            self.pipes[conn].answered_early.insert(id);
                        }
                    }
                } else if has_body && self.rng.chance(p.early_pm) {
                    self.respond(conn, id, None);
                    self.pipes[conn].answered_early.insert(id);
                }
            }
            ReqEvent::Body { id, body } => {
                if self.expected.get(&id).is_some_and(|b| *b != body) {
                    self.report.violations.push(format!(
                        "connection #{conn}: request {id} body differs from what the client was given ({} bytes)",
                        body.len()
                    ));
                }
                let p = &self.pipes[conn];
                if p.closing || p.answered_early.contains(&id) {
                    return;
                }
                self.respond(conn, id, None);
            }
        }
    }

    /// Queues the response to request `id`.
    fn respond(&mut self, conn: usize, id: usize, forced: Option<u16>) {
        let p = &self.pipes[conn];
        let planned = plan_response(&mut self.rng, &p.method, p.latitude, forced);
        let p = &mut self.pipes[conn];
        if planned.close_after {
            p.closing = true;
            p.reading = false;
        }
        p.out.push_back(Item {
            id: Some((id, self.round)),
            bytes: planned.wire.clone(),
            sent: 0,
        });
        let (status, len, close) = (planned.status, planned.wire.len(), planned.close_after);
        self.note(|| format!("server #{conn} answers {id}: {status}, {len} bytes, close {close}"));
        self.report
            .answers
            .insert((conn, id, self.round), Answer { planned, sent: 0 });
    }
}

fn preview(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .take(60)
        .map(|&b| b.escape_ascii().to_string())
        .collect();
    if bytes.len() > 60 {
        format!("{shown}…")
    } else {
        shown
    }
}
