//! The thread that plays a [`ScriptedServer`](super::ScriptedServer) script.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{Shared, Step};
use crate::net::{self, lock, IO_TIMEOUT};
use crate::request::{find_head_end, MAX_HEAD};

/// Longest single sleep (or accept wait) between stop-flag checks.
pub(super) const SLICE: Duration = Duration::from_millis(20);

struct Conn {
    stream: TcpStream,
    /// Received but not yet consumed by a step.
    pending: Vec<u8>,
    index: usize,
}

pub(super) struct Runner {
    listener: TcpListener,
    sh: Arc<Shared>,
    conn: Option<Conn>,
    scratch: Vec<u8>,
}

fn show(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

impl Runner {
    pub(super) fn new(listener: TcpListener, sh: Arc<Shared>) -> Runner {
        Runner {
            listener,
            sh,
            conn: None,
            scratch: vec![0; 64 * 1024],
        }
    }

    /// Plays `steps`, stopping at the first failure, then closes cleanly.
    pub(super) fn run(mut self, steps: Vec<Step>) {
        for step in steps {
            if let Err(msg) = self.step(step) {
                self.fail(msg);
                break;
            }
        }
        self.close_clean();
    }

    fn stopping(&self) -> bool {
        self.sh.stop.load(Ordering::SeqCst)
    }

    fn fail(&self, msg: String) {
        lock(&self.sh.transcript).failures.push(msg);
    }

    /// Sleeps for `d`, waking early when stopped.
    fn sleep(&self, d: Duration) {
        let deadline = Instant::now() + d;
        while !self.stopping() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            thread::sleep(left.min(SLICE));
        }
    }

    /// Accepts the next connection within `wait`; `Ok(false)` if nobody came.
    fn accept_within(&mut self, wait: Duration) -> Result<bool, String> {
        let deadline = Instant::now() + wait;
        loop {
            if self.stopping() {
                return Err("stopped while waiting for a connection".into());
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            let stream = match net::accept_slice(&self.listener) {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => return Err(format!("accept: {e}")),
            };
            net::configure(&stream, true).map_err(|e| format!("configuring connection: {e}"))?;
            let index = {
                let mut t = lock(&self.sh.transcript);
                t.received.push(Vec::new());
                t.connections += 1;
                t.connections - 1
            };
            *lock(&self.sh.current) = stream.try_clone().ok();
            self.conn = Some(Conn {
                stream,
                pending: Vec::new(),
                index,
            });
            return Ok(true);
        }
    }

    /// The open connection, accepting one first if needed.
    fn reply(&mut self, bytes: &[u8]) -> Result<(), String> {
        let c = self.conn()?;
        c.stream
            .write_all(bytes)
            .map_err(|e| format!("writing {} reply bytes: {e}", bytes.len()))
    }

    fn conn(&mut self) -> Result<&mut Conn, String> {
        if self.conn.is_none() && !self.accept_within(IO_TIMEOUT)? {
            return Err(format!("no client connected within {IO_TIMEOUT:?}"));
        }
        self.conn
            .as_mut()
            .ok_or_else(|| "no connection".to_string())
    }

    /// Reads once into the connection's pending bytes (and the transcript).
    fn read_more(&mut self) -> io::Result<usize> {
        let Some(c) = self.conn.as_mut() else {
            return Ok(0);
        };
        let n = c.stream.read(&mut self.scratch)?;
        c.pending.extend_from_slice(&self.scratch[..n]);
        lock(&self.sh.transcript).received[c.index].extend_from_slice(&self.scratch[..n]);
        Ok(n)
    }

    fn take_conn(&mut self) -> Option<Conn> {
        *lock(&self.sh.current) = None;
        self.conn.take()
    }

    /// FIN, then record whatever is already buffered, then close.
    fn close_clean(&mut self) {
        if self.conn.is_none() {
            return;
        }
        if let Some(c) = &self.conn {
            let _ = c.stream.shutdown(Shutdown::Write);
            let _ = c.stream.set_nonblocking(true);
        }
        while let Ok(n) = self.read_more() {
            if n == 0 {
                break;
            }
        }
        drop(self.take_conn());
    }

    fn step(&mut self, step: Step) -> Result<(), String> {
        if self.stopping() {
            return Err("stopped before the script ended".into());
        }
        match step {
            Step::Expect(want) => self.expect(&want),
            Step::ExpectHead => self.expect_head(),
            Step::Discard(n) => self.discard(n),
            Step::Reply(bytes) => self.reply(&bytes),
            Step::ReplyShared(bytes) => self.reply(&bytes),
            Step::Trickle { bytes, interval } => {
                for (i, b) in bytes.iter().enumerate() {
                    if i > 0 {
                        self.sleep(interval);
                    }
                    if self.stopping() || self.conn()?.stream.write_all(&[*b]).is_err() {
                        break;
                    }
                }
                Ok(())
            }
            Step::Sleep(d) => {
                self.sleep(d);
                Ok(())
            }
            Step::Close => {
                self.conn()?;
                self.close_clean();
                Ok(())
            }
            Step::Reset => {
                self.conn()?;
                if let Some(c) = self.take_conn() {
                    socket2::SockRef::from(&c.stream)
                        .set_linger(Some(Duration::ZERO))
                        .map_err(|e| format!("setting SO_LINGER: {e}"))?;
                }
                Ok(())
            }
            Step::Stall(d) => self.stall(d),
            Step::Drain(d) => self.drain(d),
            Step::Accept => {
                self.close_clean();
                self.conn()?;
                Ok(())
            }
        }
    }

    fn expect(&mut self, want: &[u8]) -> Result<(), String> {
        loop {
            let c = self.conn()?;
            let n = c.pending.len().min(want.len());
            if c.pending[..n] != want[..n] {
                return Err(format!(
                    "expected {}\n         got {}",
                    show(want),
                    show(&c.pending)
                ));
            }
            if n == want.len() {
                c.pending.drain(..n);
                return Ok(());
            }
            match self.read_more() {
                Ok(0) => {
                    let got = self.conn.as_ref().map(|c| show(&c.pending));
                    return Err(format!(
                        "connection closed after {n} of {} expected bytes: expected {}\n         got {}",
                        want.len(),
                        show(want),
                        got.unwrap_or_default()
                    ));
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(format!(
                        "reading expected bytes ({n} of {} so far): {e}",
                        want.len()
                    ))
                }
            }
        }
    }

    fn expect_head(&mut self) -> Result<(), String> {
        loop {
            let c = self.conn()?;
            if let Some(end) = find_head_end(&c.pending) {
                let head: Vec<u8> = c.pending.drain(..end).collect();
                lock(&self.sh.transcript)
                    .heads
                    .push(String::from_utf8_lossy(&head).into_owned());
                return Ok(());
            }
            if c.pending.len() > MAX_HEAD {
                return Err(format!("request head longer than {MAX_HEAD} bytes"));
            }
            match self.read_more() {
                Ok(0) => return Err("connection closed before a complete request head".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("reading a request head: {e}")),
            }
        }
    }

    fn discard(&mut self, mut n: u64) -> Result<(), String> {
        let total = n;
        loop {
            let c = self.conn()?;
            let k = c
                .pending
                .len()
                .min(usize::try_from(n).unwrap_or(usize::MAX));
            c.pending.drain(..k);
            n -= k as u64;
            if n == 0 {
                return Ok(());
            }
            match self.read_more() {
                Ok(0) => {
                    return Err(format!(
                        "connection closed with {n} of {total} bytes left to discard"
                    ))
                }
                Ok(_) => {}
                Err(e) => return Err(format!("discarding ({n} of {total} bytes left): {e}")),
            }
        }
    }

    fn stall(&mut self, d: Duration) -> Result<(), String> {
        let deadline = Instant::now() + d;
        let c = self.conn()?;
        let stream = c.stream.try_clone().map_err(|e| format!("stall: {e}"))?;
        while !self.stopping() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if stream.set_read_timeout(Some(left.min(SLICE))).is_err() {
                break;
            }
            match stream.peek(&mut [0u8; 1]) {
                Ok(0) => break,
                Ok(_) => self.sleep(left.min(SLICE)),
                Err(e) if net::is_timeout(&e) => {}
                Err(_) => break,
            }
        }
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        Ok(())
    }

    fn drain(&mut self, d: Duration) -> Result<(), String> {
        let deadline = Instant::now() + d;
        if self.conn.is_none() && !self.accept_within(d)? {
            return Ok(());
        }
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stopping() {
                break Ok(());
            }
            if let Some(c) = self.conn.as_mut() {
                c.pending.clear();
                let _ = c.stream.set_read_timeout(Some(left));
            }
            match self.read_more() {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) if net::is_timeout(&e) || net::is_disconnect(&e) => break Ok(()),
                Err(e) => break Err(format!("draining: {e}")),
            }
        };
        if let Some(c) = self.conn.as_mut() {
            c.pending.clear();
            let _ = c.stream.set_read_timeout(Some(IO_TIMEOUT));
        }
        result
    }
}
