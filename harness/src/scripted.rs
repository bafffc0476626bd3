//! [`ScriptedServer`]: plays a fixed script of reads and writes against the
//! connections it accepts, recording everything it receives.

use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::net::{self, lock};

mod runner;

use runner::Runner;

/// Base time [`ScriptedServer::finish`] waits, on top of the script's own
/// sleeps, stalls, drains and trickles.
const FINISH_BUDGET: Duration = Duration::from_secs(30);

/// One step of a [`ScriptedServer`] script.
///
/// Steps that need a connection while none is open first accept the next
/// one (waiting up to 10 s; nobody connecting is a failure, except for
/// [`Step::Drain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read exactly these bytes from the client; a mismatch is recorded as a
    /// failure (with both byte strings, lossy UTF-8) and ends the script.
    Expect(Vec<u8>),
    /// Read one request head (up to and including the blank line, CRLF or
    /// bare LF) and record it in [`Transcript::heads`].
    ExpectHead,
    /// Read and discard exactly n bytes (e.g. an upload body).
    Discard(u64),
    /// Write these bytes (all of them).
    Reply(Vec<u8>),
    /// Write these bytes; shared, so a script can repeat a large reply many times without
    /// holding a copy per step.
    ReplyShared(std::sync::Arc<[u8]>),
    /// Write these bytes one byte at a time, sleeping `interval` between
    /// bytes; stop quietly if the client goes away.
    Trickle {
        /// The bytes to write.
        bytes: Vec<u8>,
        /// Pause between two bytes.
        interval: Duration,
    },
    /// Sleep.
    Sleep(Duration),
    /// Shut down and close the connection cleanly (FIN).
    Close,
    /// Close with SO_LINGER=0 so the client sees a reset (RST).
    Reset,
    /// Keep the connection open but stop reading (the client's uploads will
    /// fill the buffers) until the client closes it or `duration` passes.
    /// A close is only noticed while nothing unread is buffered.
    Stall(Duration),
    /// Read everything the client sends until it closes (EOF) or the
    /// duration passes. With no connection open, first waits (within the
    /// same duration) for one; nobody connecting is not a failure.
    Drain(Duration),
    /// Close the current connection (if open) and accept the next one; later
    /// steps apply to it.
    Accept,
}

impl Step {
    /// `Step::Reply` of a string's bytes.
    pub fn reply_str(s: &str) -> Step {
        Step::Reply(s.as_bytes().to_vec())
    }

    /// `Step::Expect` of a string's bytes.
    pub fn expect_str(s: &str) -> Step {
        Step::Expect(s.as_bytes().to_vec())
    }

    /// Time the step may legitimately spend sleeping.
    fn planned_time(&self) -> Duration {
        match self {
            Step::Sleep(d) | Step::Stall(d) | Step::Drain(d) => *d,
            Step::Trickle { bytes, interval } => {
                interval.saturating_mul(u32::try_from(bytes.len()).unwrap_or(u32::MAX))
            }
            _ => Duration::ZERO,
        }
    }
}

/// What a [`ScriptedServer`] saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    /// Every byte received on each accepted connection, in order (index =
    /// connection number).
    pub received: Vec<Vec<u8>>,
    /// Request heads read by [`Step::ExpectHead`], in order (lossy UTF-8).
    pub heads: Vec<String>,
    /// Script failures (mismatched Expect, I/O errors, timeouts); empty when
    /// the script ran as written.
    pub failures: Vec<String>,
    /// Number of connections accepted.
    pub connections: usize,
}

impl Transcript {
    /// Panics, listing the failures and what was received, unless the script
    /// ran as written.
    #[track_caller]
    pub fn assert_ok(&self) {
        if self.failures.is_empty() {
            return;
        }
        let mut msg = String::from("scripted server failures:\n");
        for f in &self.failures {
            msg.push_str(&format!("  - {f}\n"));
        }
        for (i, r) in self.received.iter().enumerate() {
            let shown = &r[..r.len().min(2048)];
            msg.push_str(&format!(
                "connection {i} received {} bytes: {:?}\n",
                r.len(),
                String::from_utf8_lossy(shown)
            ));
        }
        panic!("{msg}");
    }

    /// Everything received on connection `i` as lossy UTF-8 (empty if there
    /// was no such connection).
    pub fn received_str(&self, i: usize) -> String {
        self.received
            .get(i)
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .unwrap_or_default()
    }
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    transcript: Mutex<Transcript>,
    /// A clone of the open connection, so `finish` can unblock the script.
    current: Mutex<Option<TcpStream>>,
}

/// A server that plays a script of [`Step`]s on `127.0.0.1:0`, one thread.
///
/// Every read and write is bounded (10 s); a connection still open when the
/// script ends is closed cleanly, and the listener is closed too (later
/// connection attempts are refused). Dropping it stops the script.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    done: Receiver<()>,
    budget: Duration,
    thread: Option<JoinHandle<()>>,
}

impl ScriptedServer {
    /// Binds `127.0.0.1:0` and starts playing `steps`; the first step that
    /// needs a connection accepts the first one.
    pub fn start(steps: Vec<Step>) -> ScriptedServer {
        let listener = net::bind_loopback(runner::SLICE);
        let addr = listener
            .local_addr()
            .expect("local_addr of a bound listener");
        let budget = steps
            .iter()
            .fold(FINISH_BUDGET, |b, s| b.saturating_add(s.planned_time()));
        let shared = Arc::new(Shared::default());
        let (tx, done) = mpsc::channel();
        let sh = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("scripted-server".into())
            .spawn(move || {
                Runner::new(listener, sh).run(steps);
                let _ = tx.send(());
            })
            .expect("spawn scripted server thread");
        ScriptedServer {
            addr,
            shared,
            done,
            budget,
            thread: Some(thread),
        }
    }

    /// The listening address (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits (30 s plus the script's planned sleeps at most) for the script
    /// to finish and returns what happened; a script still running then is
    /// stopped and recorded as a failure.
    pub fn finish(mut self) -> Transcript {
        if let Err(RecvTimeoutError::Timeout) = self.done.recv_timeout(self.budget) {
            lock(&self.shared.transcript)
                .failures
                .push(format!("script did not finish within {:?}", self.budget));
        }
        self.stop();
        std::mem::take(&mut *lock(&self.shared.transcript))
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(s) = lock(&self.shared.current).as_ref() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                lock(&self.shared.transcript)
                    .failures
                    .push("script thread panicked".into());
            }
        }
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.stop();
    }
}
