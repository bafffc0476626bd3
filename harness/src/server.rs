//! [`LoopbackServer`]: a small, correct, pipelining HTTP/1.1 server on
//! `127.0.0.1:0` with a fixed set of routes (see the crate docs).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::net::Acceptor;

mod conn;
mod routes;

pub use routes::{pattern, pattern_byte};

/// Options of a [`LoopbackServer`].
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Close each connection after this many responses, sending
    /// `Connection: close` on the last one (like nginx `keepalive_requests`).
    /// `None` (the default) means no limit.
    pub max_requests_per_connection: Option<usize>,
}

#[derive(Debug, Default)]
struct Stats {
    served: AtomicU64,
}

/// A pipelining HTTP/1.1 server on `127.0.0.1:0`, one thread per connection
/// (routes: see the crate docs).
///
/// Responses to every complete request already read are written with one
/// write call. A connection idle for 10 s (or whose client stops reading
/// for 10 s) is closed. Stops (closing every connection and joining its
/// threads) when dropped.
#[derive(Debug)]
pub struct LoopbackServer {
    acceptor: Acceptor,
    stats: Arc<Stats>,
}

impl LoopbackServer {
    /// Starts a server with the default options.
    pub fn start() -> LoopbackServer {
        Self::start_with(ServerOptions::default())
    }

    /// Starts a server with `opts`.
    pub fn start_with(opts: ServerOptions) -> LoopbackServer {
        let stats = Arc::new(Stats::default());
        let st = Arc::clone(&stats);
        let acceptor = Acceptor::start("loopback", move |stream, shared| {
            conn::serve(stream, shared, &st, &opts);
        });
        LoopbackServer { acceptor, stats }
    }

    /// The listening address (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.acceptor.addr()
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// Total responses written (interim `100 Continue` not counted).
    pub fn requests_served(&self) -> u64 {
        self.stats.served.load(Ordering::Relaxed)
    }

    /// Total connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.acceptor.shared.accepted.load(Ordering::Relaxed)
    }

    /// Unexpected I/O errors and malformed requests seen so far (peers
    /// going away and idle timeouts are not errors).
    pub fn errors(&self) -> Vec<String> {
        self.acceptor.shared.errors.snapshot()
    }
}
