//! [`ForwardProxy`]: an HTTP forward proxy on loopback that forwards absolute-form requests
//! and opens `CONNECT` tunnels, recording every request head it receives, or answers with
//! bytes chosen by the test (a 407, a 403, half a head).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::net::{self, lock, Acceptor, Shared, IO_TIMEOUT};
use crate::request::{parse_chunk_size, parse_head, BodyKind, MAX_HEAD};

/// How long connecting to an upstream may take.
const UPSTREAM_CONNECT: Duration = Duration::from_secs(5);

/// The answer to a failed upstream connection (or a non-loopback target).
const BAD_GATEWAY: &[u8] =
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// How a [`ForwardProxy`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyAnswer {
    /// Forward: `CONNECT` gets `HTTP/1.1 200 Connection established` and a tunnel; an
    /// absolute-form request is rewritten to origin-form (its `Proxy-Authorization`
    /// removed) and sent to the origin it names, whose answers come back unchanged.
    Forward,
    /// `CONNECT` gets these bytes as its answer (a 2xx head, perhaps followed by bytes that
    /// then seem to come through the tunnel), then a tunnel as with `Forward`.
    TunnelAfter(Vec<u8>),
    /// Every first request on a connection gets these bytes, then the connection closes:
    /// a 407 with `Proxy-Authenticate`, a 403, half a head, or nothing at all.
    Refuse(Vec<u8>),
}

/// An HTTP/1.1 forward proxy on `127.0.0.1:0`.
///
/// It connects only to loopback upstreams (`127.0.0.1`, `localhost`, `[::1]`); any other
/// target, and an upstream that refuses, gets a `502 Bad Gateway`. One client connection
/// talks to one upstream: absolute-form requests after the first must name the same one.
/// Request bodies may use `Content-Length` or chunked coding. Stops (closing every
/// connection and joining its threads) when dropped.
#[derive(Debug)]
pub struct ForwardProxy {
    acceptor: Acceptor,
    heads: Arc<Mutex<Vec<String>>>,
}

impl ForwardProxy {
    /// A proxy that forwards ([`ProxyAnswer::Forward`]).
    pub fn start() -> ForwardProxy {
        ForwardProxy::start_with(ProxyAnswer::Forward)
    }

    /// A proxy that answers as `answer` says.
    pub fn start_with(answer: ProxyAnswer) -> ForwardProxy {
        let heads = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&heads);
        let acceptor = Acceptor::start("forward-proxy", move |client, shared| {
            let session = Session {
                answer: &answer,
                heads: &recorded,
                shared,
            };
            if let Err(e) = session.serve(client) {
                if !net::is_disconnect(&e) {
                    shared.errors.push(format!("forward proxy: {e}"));
                }
            }
        });
        ForwardProxy { acceptor, heads }
    }

    /// The listening address (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.acceptor.addr()
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// Every request head received (`CONNECT` and absolute-form), as sent, in order of
    /// arrival (lossy UTF-8, blank line included).
    pub fn heads(&self) -> Vec<String> {
        lock(&self.heads).clone()
    }

    /// Client connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.acceptor.shared.accepted.load(Ordering::Relaxed)
    }

    /// Unexpected errors seen so far.
    pub fn errors(&self) -> Vec<String> {
        self.acceptor.shared.errors.snapshot()
    }
}

/// One client connection.
struct Session<'a> {
    answer: &'a ProxyAnswer,
    heads: &'a Mutex<Vec<String>>,
    shared: &'a Arc<Shared>,
}

impl Session<'_> {
    fn serve(&self, client: TcpStream) -> io::Result<()> {
        net::configure(&client, true)?;
        let _reg = self.shared.registry.register(&[&client]);
        let mut inbound = Inbound::new(client.try_clone()?);
        let Some(head) = self.next_head(&mut inbound)? else {
            return Ok(());
        };
        let mut out = &client;
        if let ProxyAnswer::Refuse(bytes) = self.answer {
            out.write_all(bytes)?;
            return client.shutdown(Shutdown::Both);
        }
        let Some(upstream) = connect_upstream(&head)? else {
            out.write_all(BAD_GATEWAY)?;
            return client.shutdown(Shutdown::Both);
        };
        net::configure(&upstream, true)?;
        let _up_reg = self.shared.registry.register(&[&upstream]);
        if head.method == "CONNECT" {
            match self.answer {
                ProxyAnswer::TunnelAfter(bytes) => out.write_all(bytes)?,
                _ => out.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?,
            }
            let early = inbound.take_buffered();
            (&upstream).write_all(&early)?;
            return splice(client, upstream, self.shared);
        }
        let down = (upstream.try_clone()?, client.try_clone()?);
        let shared = Arc::clone(self.shared);
        self.shared
            .workers
            .spawn("forward-proxy-down", &self.shared.errors, move || {
                let _ = copy(&down.0, &down.1, &shared);
            });
        let pinned = head.authority.clone();
        let mut head = head;
        loop {
            if head.authority != pinned {
                return Err(io::Error::other(format!(
                    "one connection, one upstream: {pinned}, then {}",
                    head.authority
                )));
            }
            forward(&mut inbound, &head, &upstream)?;
            match self.next_head(&mut inbound)? {
                Some(next) => head = next,
                None => return upstream.shutdown(Shutdown::Write),
            }
        }
    }

    /// Reads and records the next request head; `None` at a clean end of stream.
    fn next_head(&self, inbound: &mut Inbound) -> io::Result<Option<Head>> {
        let Some(raw) = inbound.read_head()? else {
            return Ok(None);
        };
        lock(self.heads).push(String::from_utf8_lossy(&raw).into_owned());
        Head::parse(raw).map(Some)
    }
}

/// A request head the proxy acts on.
struct Head {
    raw: Vec<u8>,
    method: String,
    /// `host:port` to connect to.
    authority: String,
    /// The origin-form target (absolute-form requests only).
    path: String,
    body: BodyKind,
}

impl Head {
    fn parse(raw: Vec<u8>) -> io::Result<Head> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let parsed = parse_head(&raw)
            .map_err(bad)?
            .ok_or_else(|| bad("partial head"))?;
        let method = String::from_utf8_lossy(parsed.method).into_owned();
        let target = String::from_utf8_lossy(parsed.target).into_owned();
        let body = parsed.body;
        let (authority, path) = if method == "CONNECT" {
            (target, String::new())
        } else {
            let rest = target
                .strip_prefix("http://")
                .ok_or_else(|| bad("not an absolute-form http:// target"))?;
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            let authority = if authority.ends_with(']') || !authority.contains(':') {
                format!("{authority}:80")
            } else {
                authority.to_owned()
            };
            let path = if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            };
            (authority, path)
        };
        Ok(Head {
            raw,
            method,
            authority,
            path,
            body,
        })
    }
}

/// Connects to the head's upstream; `None` when it is not loopback or does not answer.
fn connect_upstream(head: &Head) -> io::Result<Option<TcpStream>> {
    let (host, _) = head
        .authority
        .rsplit_once(':')
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "target without a port"))?;
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        return Ok(None);
    }
    let Some(addr) = head
        .authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        return Ok(None);
    };
    if !addr.ip().is_loopback() {
        return Ok(None);
    }
    Ok(TcpStream::connect_timeout(&addr, UPSTREAM_CONNECT).ok())
}

/// Sends an absolute-form request upstream in origin-form, without `Proxy-Authorization`,
/// and its body.
fn forward(inbound: &mut Inbound, head: &Head, upstream: &TcpStream) -> io::Result<()> {
    let text = String::from_utf8_lossy(&head.raw);
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let version = request_line.rsplit(' ').next().unwrap_or("HTTP/1.1");
    let mut out = format!("{} {} {version}\r\n", head.method, head.path);
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default();
        if !name.eq_ignore_ascii_case("proxy-authorization") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    let mut up = upstream;
    up.write_all(out.as_bytes())?;
    match head.body {
        BodyKind::Length(n) => inbound.copy_exact(n, up),
        BodyKind::Chunked => loop {
            let line = inbound.read_line()?;
            up.write_all(&line)?;
            let size = parse_chunk_size(line.strip_suffix(b"\r\n").unwrap_or(&line))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if size == 0 {
                // Trailer fields, then the blank line.
                loop {
                    let line = inbound.read_line()?;
                    up.write_all(&line)?;
                    if line == b"\r\n" {
                        return Ok(());
                    }
                }
            }
            inbound.copy_exact(size + 2, up)?;
        },
    }
}

/// Copies both ways until both sides have closed, forwarding each half-close.
fn splice(client: TcpStream, upstream: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    let (up_read, client_write) = (upstream.try_clone()?, client.try_clone()?);
    let sh = Arc::clone(shared);
    shared
        .workers
        .spawn("forward-proxy-tunnel", &shared.errors, move || {
            let _ = copy(&up_read, &client_write, &sh);
        });
    copy(&client, &upstream, shared)
}

/// Copies `from` to `to` until end of stream (then half-closes `to`) or an error (then
/// closes both); a quiet spell is not an error until the proxy stops.
fn copy(from: &TcpStream, to: &TcpStream, shared: &Shared) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut reader, mut writer) = (from, to);
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return to.shutdown(Shutdown::Write),
            Ok(n) => {
                if let Err(e) = writer.write_all(&buf[..n]) {
                    let _ = from.shutdown(Shutdown::Both);
                    return Err(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if net::is_timeout(&e) && !shared.stopping() => {}
            Err(e) => {
                let _ = to.shutdown(Shutdown::Both);
                return Err(e);
            }
        }
    }
}

/// Bytes from the client, read ahead of what has been handled.
struct Inbound {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Inbound {
    fn new(stream: TcpStream) -> Inbound {
        Inbound {
            stream,
            buf: Vec::new(),
        }
    }

    /// One read into the buffer; `Ok(0)` at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if net::is_timeout(&e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("{IO_TIMEOUT:?} without a byte"),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The next head, blank line included; `None` at end of stream before its first byte.
    fn read_head(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = crate::request::find_head_end(&self.buf) {
                return Ok(Some(self.buf.drain(..end).collect()));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
            }
            if self.fill()? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// One line, CRLF included.
    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(lf) = self.buf.iter().position(|&b| b == b'\n') {
                return Ok(self.buf.drain(..=lf).collect());
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Copies exactly `n` bytes to `to`.
    fn copy_exact(&mut self, mut n: u64, mut to: &TcpStream) -> io::Result<()> {
        while n > 0 {
            if self.buf.is_empty() && self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let take = self.buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            to.write_all(&self.buf[..take])?;
            self.buf.drain(..take);
            n -= take as u64;
        }
        Ok(())
    }

    /// What was read past the last head.
    fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}
