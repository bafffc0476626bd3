//! [`DelayProxy`]: a TCP proxy adding a fixed one-way delay per direction
//! while keeping many segments in flight (it models latency, not a slow
//! link: a pipelined batch pays one round trip, not one per request).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::net::{self, lock, Acceptor, Registration, Shared, IO_TIMEOUT};

/// Most bytes buffered (in flight) per direction before reading pauses.
const MAX_IN_FLIGHT: usize = 16 * 1024 * 1024;
/// Longest wait between stop-flag checks.
const SLICE: Duration = Duration::from_millis(50);

/// A proxy on `127.0.0.1:0` that forwards every connection to `upstream`,
/// delivering each chunk of bytes `one_way_delay` after it arrived, in
/// both directions. EOF is forwarded as a half-close after the delayed
/// data; errors close both sides. Connection setup itself is not delayed.
/// Stops (closing every connection and joining its threads) when dropped.
#[derive(Debug)]
pub struct DelayProxy {
    acceptor: Acceptor,
}

impl DelayProxy {
    /// Starts a proxy to `upstream` with `one_way_delay` in each direction.
    pub fn start(upstream: SocketAddr, one_way_delay: Duration) -> DelayProxy {
        let acceptor = Acceptor::start("delay-proxy", move |client, shared| {
            proxy_connection(client, upstream, one_way_delay, shared);
        });
        DelayProxy { acceptor }
    }

    /// The listening address (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.acceptor.addr()
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// Unexpected errors seen so far (e.g. the upstream refusing).
    pub fn errors(&self) -> Vec<String> {
        self.acceptor.shared.errors.snapshot()
    }
}

fn proxy_connection(
    client: TcpStream,
    upstream: SocketAddr,
    delay: Duration,
    shared: &Arc<Shared>,
) {
    let up = match TcpStream::connect_timeout(&upstream, IO_TIMEOUT) {
        Ok(up) => up,
        Err(e) => {
            shared
                .errors
                .push(format!("connecting to upstream {upstream}: {e}"));
            return;
        }
    };
    let reg = shared.registry.register(&[&client, &up]);
    if let Err(e) = net::configure(&client, true).and_then(|()| net::configure(&up, true)) {
        shared
            .errors
            .push(format!("configuring proxied sockets: {e}"));
        return;
    }
    for (src, dst, name) in [(&client, &up, "up"), (&up, &client, "down")] {
        let pipe = Arc::new(Pipe::default());
        let clones = (
            src.try_clone(),
            dst.try_clone(),
            src.try_clone(),
            dst.try_clone(),
        );
        let (Ok(rs), Ok(rd), Ok(ws), Ok(wd)) = clones else {
            shared.errors.push("cloning proxied sockets failed".into());
            let _ = client.shutdown(Shutdown::Both);
            let _ = up.shutdown(Shutdown::Both);
            return;
        };
        let (p, sh, r) = (Arc::clone(&pipe), Arc::clone(shared), Arc::clone(&reg));
        shared.workers.spawn(
            &format!("delay-proxy-{name}-read"),
            &shared.errors,
            move || read_side(&rs, &rd, &p, delay, &sh, r),
        );
        let (sh, r) = (Arc::clone(shared), Arc::clone(&reg));
        shared.workers.spawn(
            &format!("delay-proxy-{name}-write"),
            &shared.errors,
            move || write_side(&ws, &wd, &pipe, &sh, r),
        );
    }
}

enum Msg {
    Data(Instant, Vec<u8>),
    Eof(Instant),
    Error(Instant),
}

#[derive(Default)]
struct PipeState {
    items: VecDeque<Msg>,
    bytes: usize,
    closed: bool,
}

/// A byte-bounded queue of timestamped chunks from a reader to a writer.
#[derive(Default)]
struct Pipe {
    state: Mutex<PipeState>,
    cv: Condvar,
}

impl Pipe {
    /// Queues `msg`, waiting while too many bytes are in flight; `false`
    /// once the writer has gone.
    fn push(&self, msg: Msg, shared: &Shared) -> bool {
        let mut st = lock(&self.state);
        while st.bytes >= MAX_IN_FLIGHT && !st.closed && !shared.stopping() {
            st = self
                .cv
                .wait_timeout(st, SLICE)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        if st.closed {
            return false;
        }
        if let Msg::Data(_, b) = &msg {
            st.bytes += b.len();
        }
        st.items.push_back(msg);
        self.cv.notify_all();
        true
    }

    /// Takes the next message; `None` once closed or stopping.
    fn pop(&self, shared: &Shared) -> Option<Msg> {
        let mut st = lock(&self.state);
        loop {
            if let Some(msg) = st.items.pop_front() {
                if let Msg::Data(_, b) = &msg {
                    st.bytes -= b.len();
                }
                self.cv.notify_all();
                return Some(msg);
            }
            if st.closed || shared.stopping() {
                return None;
            }
            st = self
                .cv
                .wait_timeout(st, SLICE)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.cv.notify_all();
    }
}

fn close_both(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

/// Reads chunks from `src` as they arrive and queues each, due `delay`
/// after its arrival.
fn read_side(
    src: &TcpStream,
    dst: &TcpStream,
    pipe: &Pipe,
    delay: Duration,
    shared: &Shared,
    _reg: Arc<Registration>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut reader = src;
    loop {
        let result = reader.read(&mut buf);
        let due = Instant::now() + delay;
        let msg = match result {
            Ok(0) => Msg::Eof(due),
            Ok(n) => Msg::Data(due, buf[..n].to_vec()),
            Err(e) if net::is_timeout(&e) && !shared.stopping() => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => Msg::Error(due),
        };
        let last = !matches!(msg, Msg::Data(..));
        if !pipe.push(msg, shared) {
            close_both(src, dst);
            return;
        }
        if last {
            return;
        }
    }
}

/// Sleeps until `due` (waking early when stopping).
fn sleep_until(due: Instant, shared: &Shared) {
    while !shared.stopping() {
        let left = due.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        thread::sleep(left.min(SLICE));
    }
}

/// Writes each queued chunk to `dst` once it is due.
fn write_side(
    src: &TcpStream,
    dst: &TcpStream,
    pipe: &Pipe,
    shared: &Shared,
    _reg: Arc<Registration>,
) {
    let mut writer = dst;
    while let Some(msg) = pipe.pop(shared) {
        match msg {
            Msg::Data(due, bytes) => {
                sleep_until(due, shared);
                if writer.write_all(&bytes).is_err() {
                    break;
                }
            }
            Msg::Eof(due) => {
                sleep_until(due, shared);
                let _ = dst.shutdown(Shutdown::Write);
                pipe.close();
                return;
            }
            Msg::Error(due) => {
                sleep_until(due, shared);
                break;
            }
        }
    }
    close_both(src, dst);
    pipe.close();
}
