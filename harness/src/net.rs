//! Shared socket plumbing: loopback listeners with bounded accepts, a
//! registry of live sockets (shut down when the owner is dropped), worker
//! threads joined on drop, and an error log that replaces panics.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Default bound for every blocking socket operation.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one `accept` call may block before the stop flag is rechecked.
const ACCEPT_SLICE: Duration = Duration::from_millis(250);

/// Most error lines kept by an [`ErrorLog`].
const MAX_ERRORS: usize = 1000;

/// Locks a mutex, ignoring poisoning (a panicking holder must not make
/// everything else panic too).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Connections the kernel may queue for `accept` (it caps this at
/// `net.core.somaxconn`). Std's `TcpListener::bind` asks for 128, which a
/// burst of connects overflows while the accept thread starts connection
/// threads: the kernel then drops SYNs. Seen with 1,000 tasks through a
/// [`DelayProxy`]: connects late by SYN retries (1, 2, 4 s), and some
/// connections closed before any response.
///
/// [`DelayProxy`]: crate::DelayProxy
const BACKLOG: i32 = 4096;

/// Binds `127.0.0.1:0` with a [`BACKLOG`]-deep accept queue and accepts
/// bounded by `slice` (on Linux, `SO_RCVTIMEO` bounds `accept`). Panics
/// only in the caller's thread.
pub(crate) fn bind_loopback(slice: Duration) -> TcpListener {
    let listener = listen_loopback().expect("bind 127.0.0.1:0");
    // Best effort: without it the accept loop still stops through `wake`.
    let _ = socket2::SockRef::from(&listener).set_read_timeout(Some(slice));
    listener
}

fn listen_loopback() -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    // As std does on Unix: a restarted peer may rebind a port in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Accepts one connection, waiting at most the listener's accept slice.
/// `Ok(None)` means the slice ran out.
pub(crate) fn accept_slice(listener: &TcpListener) -> io::Result<Option<TcpStream>> {
    match listener.accept() {
        Ok((stream, _)) => {
            stream.set_nonblocking(false)?;
            Ok(Some(stream))
        }
        Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => Ok(None),
        Err(e) => Err(e),
    }
}

/// Applies the default timeouts and (optionally) TCP_NODELAY.
pub(crate) fn configure(stream: &TcpStream, nodelay: bool) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    if nodelay {
        stream.set_nodelay(true)?;
    }
    Ok(())
}

/// True for the errors a timed-out blocking call returns.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// True for errors that just mean "the peer went away".
pub(crate) fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected
    )
}

/// Wakes a blocked accept loop by connecting to it (errors ignored).
pub(crate) fn wake(addr: SocketAddr) {
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
}

/// A bounded list of error descriptions recorded by background threads.
#[derive(Debug, Default)]
pub(crate) struct ErrorLog(Mutex<Vec<String>>);

impl ErrorLog {
    pub(crate) fn push(&self, what: String) {
        let mut v = lock(&self.0);
        if v.len() < MAX_ERRORS {
            v.push(what);
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<String> {
        lock(&self.0).clone()
    }
}

/// Live sockets of a component, so dropping it can shut them all down.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    next: AtomicU64,
    stopping: AtomicBool,
    live: Mutex<HashMap<u64, Vec<TcpStream>>>,
}

impl Registry {
    /// Registers clones of `streams`; the entry goes away when the returned
    /// guard (and every clone of it) is dropped.
    pub(crate) fn register(self: &Arc<Self>, streams: &[&TcpStream]) -> Arc<Registration> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let clones: Vec<TcpStream> = streams.iter().filter_map(|s| s.try_clone().ok()).collect();
        let mut live = lock(&self.live);
        if self.stopping.load(Ordering::SeqCst) {
            for s in &clones {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        live.insert(id, clones);
        Arc::new(Registration {
            id,
            registry: Arc::clone(self),
        })
    }

    /// Shuts down every registered socket (and any registered later).
    pub(crate) fn shutdown_all(&self) {
        let live = lock(&self.live);
        self.stopping.store(true, Ordering::SeqCst);
        for s in live.values().flatten() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Keeps a connection's sockets registered while alive.
#[derive(Debug)]
pub(crate) struct Registration {
    id: u64,
    registry: Arc<Registry>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.registry.live).remove(&self.id);
    }
}

/// Stack of a worker thread. Connection threads keep their buffers on the
/// heap, so a quarter of std's 2 MiB default is ample, and a test holding
/// thousands of connections (five threads each behind a [`DelayProxy`])
/// maps that much less.
///
/// [`DelayProxy`]: crate::DelayProxy
const WORKER_STACK: usize = 512 * 1024;

/// Background threads of a component, joined when it stops.
#[derive(Debug, Default)]
pub(crate) struct Workers(Mutex<Vec<JoinHandle<()>>>);

impl Workers {
    /// Spawns a named thread; a spawn failure is recorded, not panicked on.
    pub(crate) fn spawn<F>(&self, name: &str, errors: &ErrorLog, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        let builder = thread::Builder::new()
            .name(name.to_string())
            .stack_size(WORKER_STACK);
        match builder.spawn(f) {
            Ok(handle) => {
                let mut v = lock(&self.0);
                v.retain(|h| !h.is_finished());
                v.push(handle);
            }
            Err(e) => errors.push(format!("spawning {name}: {e}")),
        }
    }

    /// Joins every thread spawned so far (and any they spawn meanwhile).
    pub(crate) fn join_all(&self) {
        loop {
            let batch = std::mem::take(&mut *lock(&self.0));
            if batch.is_empty() {
                return;
            }
            for h in batch {
                let _ = h.join();
            }
        }
    }
}

/// State shared between a component's owner and its threads.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    pub(crate) registry: Arc<Registry>,
    pub(crate) workers: Workers,
    pub(crate) errors: ErrorLog,
    pub(crate) accepted: AtomicU64,
}

impl Shared {
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// An accept loop on `127.0.0.1:0` handing each connection to `on_conn` on
/// its own thread; stopped (and every thread joined) by [`Acceptor::stop`].
#[derive(Debug)]
pub(crate) struct Acceptor {
    addr: SocketAddr,
    pub(crate) shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Acceptor {
    pub(crate) fn start<F>(name: &'static str, on_conn: F) -> Acceptor
    where
        F: Fn(TcpStream, &Arc<Shared>) + Send + Sync + 'static,
    {
        let listener = bind_loopback(ACCEPT_SLICE);
        let addr = listener
            .local_addr()
            .expect("local_addr of a bound listener");
        let shared = Arc::new(Shared::default());
        let on_conn = Arc::new(on_conn);
        let sh = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name(format!("{name}-accept"))
            .spawn(move || {
                while !sh.stopping() {
                    match accept_slice(&listener) {
                        Ok(None) => {}
                        Ok(Some(stream)) => {
                            if sh.stopping() {
                                break;
                            }
                            sh.accepted.fetch_add(1, Ordering::Relaxed);
                            let (f, sh2) = (Arc::clone(&on_conn), Arc::clone(&sh));
                            sh.workers
                                .spawn(&format!("{name}-conn"), &sh.errors, move || {
                                    f(stream, &sh2)
                                });
                        }
                        Err(e) => {
                            sh.errors.push(format!("accept: {e}"));
                            thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
            })
            .expect("spawn accept thread");
        Acceptor {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, shuts every live socket down and joins all threads.
    pub(crate) fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            wake(self.addr);
            let _ = h.join();
        }
        self.shared.registry.shutdown_all();
        self.shared.workers.join_all();
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of connects to a listener that has not accepted yet waits in its queue: with
    /// std's 128 the kernel drops the SYNs past the queue and a connect times out.
    /// (Needs `net.core.somaxconn` ≥ 1000, the default since Linux 5.4.)
    #[test]
    fn a_burst_of_connects_waits_in_the_accept_queue() {
        const BURST: usize = 1000;
        let listener = bind_loopback(ACCEPT_SLICE);
        let addr = listener.local_addr().expect("local_addr");
        let mut queued = Vec::with_capacity(BURST);
        for i in 0..BURST {
            let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                .unwrap_or_else(|e| panic!("connect {i} of {BURST}: {e}"));
            queued.push(stream);
        }
        let mut accepted = 0;
        while accept_slice(&listener).expect("accept").is_some() {
            accepted += 1;
        }
        assert_eq!(accepted, BURST);
    }
}
