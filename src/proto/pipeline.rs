//! The FIFO of requests in flight, matched to responses in order (RFC 9112 §9.3.2).

use std::collections::VecDeque;
use std::fmt;

use http::Method;

/// A request that was sent (or started going out) and awaits its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// The request method; it decides whether the response has a body.
    pub method: Method,
    /// The request target, as sent.
    pub target: String,
}

impl fmt::Display for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.target)
    }
}

/// Requests in flight, oldest first.
#[derive(Debug, Default)]
pub struct Pipeline {
    queue: VecDeque<InFlight>,
    /// Requests ever pushed and not taken back with `pop_newest`.
    pushed: u64,
}

impl Pipeline {
    /// Adds a request whose head has started going out.
    pub fn push(&mut self, request: InFlight) {
        self.queue.push_back(request);
        self.pushed += 1;
    }

    /// How many requests were ever pushed (and not taken back): the sequence number of the
    /// newest one, counting from 1.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// The request the next response answers.
    pub fn front(&self) -> Option<&InFlight> {
        self.queue.front()
    }

    /// Removes the request whose response has arrived.
    pub fn pop(&mut self) -> Option<InFlight> {
        self.queue.pop_front()
    }

    /// Removes the newest request (one that turned out not to be sent after all).
    pub fn pop_newest(&mut self) -> Option<InFlight> {
        let newest = self.queue.pop_back()?;
        self.pushed -= 1;
        Some(newest)
    }

    /// Requests still waiting for a response.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no request waits for a response.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Empties the FIFO, returning what was in flight, oldest first.
    pub fn take_all(&mut self) -> Vec<InFlight> {
        self.queue.drain(..).collect()
    }
}
