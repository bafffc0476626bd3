//! A foreign event loop driving dugong: 32 connections, each fetching documents through
//! `co_*` operations, all waiting in one raw `polling` poller that this example owns. Each
//! operation step either finishes or says which descriptor and readiness it waits for.
//!
//! `cargo run --release --example co_poll_loop`
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use dugong::{Body, CoOp, CoStep, HttpConnection, PollNeeded, Response};
use dugong_harness::LoopbackServer;
use http::{HeaderMap, Method};
use polling::{Event, Events, Poller};

const CONNECTIONS: usize = 32;
const DOCUMENTS_EACH: usize = 200;

/// Where one connection is in its fetch loop.
enum Stage<'c> {
    Send(CoOp<'c, ()>),
    Head(CoOp<'c, Response>),
    Body(CoOp<'c, Vec<u8>>),
    Finished,
}

struct Client<'c> {
    conn: &'c HttpConnection,
    stage: Stage<'c>,
    fetched: usize,
}

impl<'c> Client<'c> {
    /// Steps the current operation, moving on as operations finish; returns what it waits
    /// for, or `None` when this client is done.
    fn advance(&mut self, headers: &HeaderMap) -> Result<Option<PollNeeded<'_>>, dugong::Error> {
        loop {
            let (conn, fetched) = (self.conn, self.fetched);
            let step = match &mut self.stage {
                Stage::Finished => return Ok(None),
                Stage::Send(op) => op.step().map(|()| Stage::Head(conn.co_read_response())),
                Stage::Head(op) => op.step().map(|_| Stage::Body(conn.co_read_all())),
                Stage::Body(op) => {
                    let target = format!("/doc/{fetched}.html");
                    let next = fetched + 1;
                    op.step().map(|body| {
                        assert_eq!(body, format!("document {target}\n").into_bytes());
                        if next == DOCUMENTS_EACH {
                            Stage::Finished
                        } else {
                            let target = format!("/doc/{next}.html");
                            match conn.co_send_request(&Method::GET, &target, headers, Body::Empty)
                            {
                                Ok(op) => Stage::Send(op),
                                Err(e) => panic!("send: {e}"),
                            }
                        }
                    })
                }
            };
            match step {
                Progress::Wait => break,
                Progress::Next(Err(e)) => return Err(e),
                Progress::Next(Ok(next)) => {
                    if matches!(self.stage, Stage::Body(_)) {
                        self.fetched += 1;
                    }
                    self.stage = next;
                }
            }
        }
        // What the operation that just returned `Poll` waits for.
        Ok(match &self.stage {
            Stage::Send(op) => op.waiting_for(),
            Stage::Head(op) => op.waiting_for(),
            Stage::Body(op) => op.waiting_for(),
            Stage::Finished => None,
        })
    }
}

/// A step's outcome with the finished value already turned into the next stage.
enum Progress<'c> {
    Wait,
    Next(Result<Stage<'c>, dugong::Error>),
}

trait StepExt<'c, T> {
    fn map(self, next: impl FnOnce(T) -> Stage<'c>) -> Progress<'c>;
}

impl<'c, T> StepExt<'c, T> for CoStep<'_, T> {
    fn map(self, next: impl FnOnce(T) -> Stage<'c>) -> Progress<'c> {
        match self {
            CoStep::Poll(_) => Progress::Wait,
            CoStep::Done(result) => Progress::Next(result.map(next)),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = LoopbackServer::start();
    let headers = HeaderMap::new();
    let conns: Vec<HttpConnection> = (0..CONNECTIONS)
        .map(|_| HttpConnection::new("127.0.0.1", server.port()))
        .collect::<Result<_, _>>()?;
    let mut clients: Vec<Client<'_>> = conns
        .iter()
        .map(|conn| {
            let op = conn.co_send_request(&Method::GET, "/doc/0.html", &headers, Body::Empty)?;
            Ok(Client {
                conn,
                stage: Stage::Send(op),
                fetched: 0,
            })
        })
        .collect::<Result<_, dugong::Error>>()?;

    let poller = Poller::new()?;
    let mut registered: HashMap<usize, RawFd> = HashMap::new();
    let mut events = Events::new();
    let mut ready: Vec<usize> = (0..CONNECTIONS).collect();
    let mut live = CONNECTIONS;
    let start = Instant::now();
    while live > 0 {
        for key in ready.drain(..) {
            match clients[key].advance(&headers)? {
                None => live -= 1,
                Some(need) => {
                    let interest = need.interest;
                    let event = Event::new(key, interest.is_readable(), interest.is_writable());
                    let fd = need.fd.as_raw_fd();
                    match registered.get(&key) {
                        Some(&known) if known == fd => poller.modify(need.fd, event)?,
                        _ => {
                            // SAFETY: deleted below before its connection is dropped.
                            unsafe { poller.add(&need.fd, event)? };
                            registered.insert(key, fd);
                        }
                    }
                }
            }
        }
        if live == 0 {
            break;
        }
        events.clear();
        poller.wait(&mut events, Some(Duration::from_secs(10)))?;
        if events.is_empty() {
            return Err("no progress for 10 s".into());
        }
        ready.extend(events.iter().map(|ev| ev.key));
    }
    let elapsed = start.elapsed().as_secs_f64();
    for &fd in registered.values() {
        // SAFETY: every connection is still open here.
        poller.delete(unsafe { BorrowedFd::borrow_raw(fd) })?;
    }
    let total: usize = clients.iter().map(|c| c.fetched).sum();
    println!(
        "co_poll_loop: {total} documents over {CONNECTIONS} connections, one raw polling loop: {:.0} ms, {:.0} requests/s",
        elapsed * 1000.0,
        total as f64 / elapsed
    );
    assert_eq!(total, CONNECTIONS * DOCUMENTS_EACH);
    Ok(())
}
