//! `HttpConnection`: the public face of the one driver.
//!
//! Owns the connection's state and its public API. Every method takes `&self`, and the driver
//! borrows the state only between waits, so a loop body that reads responses can run while a
//! cofunction that sends is suspended. The send and receive halves (`send`, `recv`) are
//! written once against a [`Driver`]; blocking calls pass the connection's park, cofunctions
//! and `co_*` operations ([`job`]) a park that suspends their coroutine.

mod co_ops;
mod cofun;
mod config;
mod connect;
mod dial;
mod driver;
mod job;
mod recv;
mod response;
mod retry;
mod route;
mod send;
mod state;
#[cfg(feature = "tls")]
mod tls;
mod trace;
mod tunnel;

use std::cell::{RefCell, RefMut};
use std::io::{self, Read};

use http::{HeaderMap, HeaderValue, Method};

pub use co_ops::{CoOp, CoStep, Interest, PollNeeded};
pub use cofun::Cofun;
pub use config::{Config, Resolver};
pub use response::Response;
pub use retry::{BatchRequest, Retry, RetryRun};
#[cfg(feature = "tls")]
pub use tls::TlsConfig;

use crate::error::{Error, Operation, PoisonCause};
use crate::io::{Blocking, Park};
use crate::proto::{Body, Origin, RequestError, Scheme, StateError};
use driver::{Deadline, Driver};
use state::{Link, State};

/// Where a connection goes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) origin: Origin,
    pub(crate) host_header: HeaderValue,
    /// Directly or through a proxy.
    pub(crate) route: route::Route,
}

/// An HTTP/1.1 connection to one host and port that can pipeline.
///
/// Requests are sent with [`send_request`](Self::send_request) and answered, in order, by
/// [`read_response`](Self::read_response) and the body readers. Any number of requests may
/// be sent before their responses are read. The connection opens lazily on the first send (or
/// with [`connect`](Self::connect)) and reopens on the next send after the server closes it.
///
/// All methods take `&self`; the connection is `Send` but not `Sync`.
///
/// # Examples
///
/// ```
/// # let server = dugong_harness::LoopbackServer::start();
/// # let port = server.port();
/// use dugong::{Body, HttpConnection};
/// use http::{HeaderMap, Method, StatusCode};
///
/// let conn = HttpConnection::new("127.0.0.1", port)?;
/// for path in ["/bytes/5", "/bytes/3"] {
///     conn.send_request(&Method::GET, path, &HeaderMap::new(), Body::Empty)?; // pipelined
/// }
/// let first = conn.read_response()?;
/// assert_eq!(first.status, StatusCode::OK);
/// assert_eq!(conn.read_all()?, b"abcde");
/// let second = conn.read_response()?;
/// assert_eq!((second.path.as_str(), conn.read_all()?), ("/bytes/3", b"abc".to_vec()));
/// assert!(!conn.response_pending());
/// # Ok::<(), dugong::Error>(())
/// ```
/// `P` is how the connection waits: [`Blocking`] (the default) blocks the calling thread; a
/// connection made inside a [green task](crate::green) suspends the task instead.
pub struct HttpConnection<P: Park = Blocking> {
    target: Target,
    config: Config,
    park: P,
    state: RefCell<State>,
}

impl<P: Park> std::fmt::Debug for HttpConnection<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnection")
            .field("origin", &self.target.origin)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HttpConnection {
    /// A connection to `host:port` with the default [`Config`]. Nothing is resolved or
    /// connected until the first request (or [`connect`](Self::connect)).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRequest`] when `host` cannot be used in a `Host` header: it must
    ///   be a name (letters, digits, `-._~`, percent-escapes, `!$&'()*+,;=`), an IPv4
    ///   address, or an IPv6 address with or without brackets, so that `@`, `:`, `/`, `?`,
    ///   `#`, spaces and controls never reach a server or proxy inside an authority.
    pub fn new(host: &str, port: u16) -> Result<Self, Error> {
        Self::with_config(host, port, Config::default())
    }

    /// A connection to `host:port` with `config`.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRequest`] when `host` cannot be used in a `Host` header (or in a
    ///   `CONNECT` target, through a proxy's tunnel).
    pub fn with_config(host: &str, port: u16, config: Config) -> Result<Self, Error> {
        Self::open(&Origin::new(Scheme::Http, host, port), config)
    }

    /// An `https` connection to `host:port` with the default [`Config`], which verifies the
    /// server's certificate against the webpki-roots trust anchors (see
    /// [`TlsConfig`](crate::TlsConfig)). The TLS handshake happens when it connects.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRequest`] when `host` cannot be used in a `Host` header.
    #[cfg(feature = "tls")]
    pub fn new_tls(host: &str, port: u16) -> Result<Self, Error> {
        Self::open(&Origin::new(Scheme::Https, host, port), Config::default())
    }

    /// A connection to the origin of `url`: `http://` or `https://`, a host, and a port
    /// (80 and 443 by default); any path is not used here (send it as a request target).
    ///
    /// ```
    /// let conn = dugong::HttpConnection::from_url("http://127.0.0.1:8080/index.html")?;
    /// # let _ = conn;
    /// # Ok::<(), dugong::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRequest`] for a URL that is not `http` or `https`
    ///   ([`RequestError::InvalidUrl`]), a host that cannot be used, or `https` without the
    ///   `tls` feature ([`RequestError::UnsupportedScheme`]).
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let (origin, _) = Origin::parse_url(url)?;
        Self::open(&origin, Config::default())
    }

    /// A connection to `origin` with `config`.
    ///
    /// # Errors
    ///
    /// As [`from_url`](Self::from_url).
    pub fn open(origin: &Origin, config: Config) -> Result<Self, Error> {
        Self::with_park(origin, config, Blocking)
    }
}

/// Test-only (feature `sim`): connections over a simulated network.
#[cfg(feature = "sim")]
#[doc(hidden)]
impl HttpConnection<crate::io::sim::Sim> {
    /// A connection to `origin` whose transport and clock are simulated by `park`'s network.
    ///
    /// # Errors
    ///
    /// As [`HttpConnection::open`].
    pub fn simulated(
        origin: &Origin,
        config: Config,
        park: crate::io::sim::Sim,
    ) -> Result<Self, Error> {
        Self::with_park(origin, config, park)
    }
}

impl<P: Park> HttpConnection<P> {
    /// A connection that waits with `park`.
    pub(crate) fn with_park(origin: &Origin, config: Config, park: P) -> Result<Self, Error> {
        if origin.scheme == Scheme::Https && cfg!(not(feature = "tls")) {
            return Err(RequestError::UnsupportedScheme.into());
        }
        let host_header = origin.host_header()?;
        let route = route::Route::new(origin, &host_header, &config.proxies)?;
        let target = Target {
            origin: origin.clone(),
            host_header,
            route,
        };
        let state = RefCell::new(State::new(&config));
        Ok(HttpConnection {
            target,
            config,
            park,
            state,
        })
    }

    /// The driver for a call that waits through the connection's own park.
    fn driver(&self) -> Driver<'_> {
        Driver {
            cell: &self.state,
            target: &self.target,
            config: &self.config,
            park: &self.park,
        }
    }

    fn deadline(&self, operation: Operation) -> Deadline {
        Deadline::new(operation, self.config.timeout)
    }

    /// The settings this connection was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn state(&self) -> Result<RefMut<'_, State>, Error> {
        self.state
            .try_borrow_mut()
            .map_err(|_| StateError::Busy.into())
    }

    /// Connects now if not connected: resolves the host (on a thread of its own, see
    /// [`Config::resolver`]) and races its addresses the Happy Eyeballs way (IPv6 first, the
    /// next address 250 ms later or at once after a failure), all within the connect
    /// timeout. Sending does this by itself; call it to learn about connection problems
    /// early.
    ///
    /// # Errors
    ///
    /// - [`Error::Resolve`] when the name does not resolve ([`DnsError`](crate::DnsError)
    ///   tells "no such name" from "try again later").
    /// - [`Error::Connect`] when no address accepted the connection (the last attempt's
    ///   error is the source; through a proxy, the proxy's address); [`Error::Timeout`] when
    ///   the connect timeout passed (with [`Operation::Resolve`](crate::Operation::Resolve)
    ///   while the name was still being resolved).
    /// - Through a proxy's tunnel: [`Error::ProxyRefused`] when it answered `CONNECT` with a
    ///   non-2xx status (407: credentials missing or refused), [`Error::ProxyTunnel`] when it
    ///   closed or answered with something other than HTTP.
    /// - The error of a dead connection that still has unanswered requests (reported once).
    ///
    /// # Blocking
    ///
    /// Up to the connect timeout, which covers resolving the name, a proxy's `CONNECT`
    /// exchange and the TLS handshake too.
    pub fn connect(&self) -> Result<(), Error> {
        let d = self.driver();
        let mut st = d.state()?;
        st.ready_to_send(&d)
    }

    /// Sends a request: its head and, for [`Body::Bytes`], its body. For
    /// [`Body::Following`] and [`Body::Chunked`], write the body with [`write`](Self::write)
    /// (and [`finish_body`](Self::finish_body) for chunked) before the next request.
    ///
    /// The request joins the pipeline as soon as its head starts going out, so its response
    /// can be read even while its body is still being written. Earlier responses need not have
    /// been read: while the socket is full, arriving response bytes are buffered (up to
    /// [`Config::max_buffered`]), so a server that answers before reading on cannot deadlock
    /// the sender.
    ///
    /// `Host` is added unless `headers` has one; `Content-Length` or
    /// `Transfer-Encoding: chunked` come from `body`; no other header is added and `headers`
    /// is not changed. With `Expect: 100-continue` in `headers` and a non-empty body, the call
    /// waits for `100 Continue` before the body is sent (at most
    /// [`Config::continue_timeout`], after which the body is sent anyway, as RFC 9110
    /// §10.1.1 allows); if a final response comes instead, the body is
    /// refused ([`is_writing_body`](Self::is_writing_body) is false, `write` fails with
    /// [`StateError::BodyRefused`]), the response is left for `read_response`, and the
    /// connection closes after it.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRequest`] when the target or a header would not survive on the wire
    ///   (CR, LF, NUL, other controls) or `headers` has a framing header. Nothing is sent.
    /// - [`Error::State`] when the previous request's body is unfinished, or for
    ///   `Expect: 100-continue` while responses are pending.
    /// - [`Error::ConnectionClosed`] or [`Error::Poisoned`] reporting a connection that ended
    ///   with requests unanswered (this request is not sent; the next call reconnects), or
    ///   when the server stops accepting bytes (pending responses can still be read).
    /// - [`Error::Resolve`], [`Error::Connect`], [`Error::Timeout`], [`Error::BufferFull`],
    ///   [`Error::Io`].
    /// - When it connects through a proxy's tunnel: [`Error::ProxyRefused`],
    ///   [`Error::ProxyTunnel`] (see [`connect`](Self::connect)).
    ///
    /// # Blocking
    ///
    /// Until the head (and in-memory body) is handed to the OS, bounded by the connect
    /// timeout plus the operation timeout (twice that with `Expect: 100-continue`). With
    /// [`Config::coalesce_writes`] (the default) a small request sent while earlier ones are
    /// unanswered is queued instead, without a syscall, to go out with the requests after
    /// it; it is sent before this crate waits for anything (reading its answer included), by
    /// [`flush`](Self::flush), and when the connection is dropped.
    pub fn send_request(
        &self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: Body<'_>,
    ) -> Result<(), Error> {
        let request = send::Request {
            method,
            path: target,
            headers,
            body,
        };
        send::send_request(&self.driver(), &request)
    }

    /// Sends a request through a cofunction: the same arguments and request as
    /// [`send_request`](Self::send_request), but the returned [`Cofun`] does the sending
    /// while it is iterated, and yields whenever response data is available so the loop body
    /// can read it on this same connection. One thread can so keep a connection full without
    /// ever deadlocking, whatever the sizes of requests and responses.
    ///
    /// ```
    /// # let server = dugong_harness::LoopbackServer::start();
    /// # let port = server.port();
    /// use dugong::{Body, HttpConnection};
    /// use http::{HeaderMap, Method};
    ///
    /// let conn = HttpConnection::new("127.0.0.1", port)?;
    /// let mut bodies = Vec::new();
    /// let mut read_some = |conn: &HttpConnection| -> Result<(), dugong::Error> {
    ///     if conn.has_active_response() {
    ///         let mut buf = [0u8; 8192];
    ///         let n = conn.read(&mut buf)?;
    ///         bodies.last_mut().map(|b: &mut Vec<u8>| b.extend_from_slice(&buf[..n]));
    ///     } else {
    ///         conn.read_response()?;
    ///         bodies.push(Vec::new());
    ///     }
    ///     Ok(())
    /// };
    /// for i in 0..20 {
    ///     let target = format!("/bytes/{}", 1000 * i);
    ///     for step in conn.send_request_cofun(&Method::GET, &target, &HeaderMap::new(), Body::Empty)? {
    ///         step?;
    ///         read_some(&conn)?; // runs whenever response data is available
    ///     }
    /// }
    /// while conn.response_pending() {
    ///     read_some(&conn)?;
    /// }
    /// assert_eq!(bodies.len(), 20);
    /// assert!(bodies.iter().enumerate().all(|(i, b)| b.len() == 1000 * i));
    /// # Ok::<(), dugong::Error>(())
    /// ```
    ///
    /// An in-memory [`Body::Bytes`] is borrowed for as long as the cofunction lives and sent
    /// without copying; bodies read from a file or socket go with [`Body::Following`] or
    /// [`Body::Chunked`] and [`sendfile_cofun`](Self::sendfile_cofun).
    ///
    /// # Errors
    ///
    /// As [`send_request`](Self::send_request) for everything before the first byte goes out
    /// (nothing is sent then), and [`StateError::CofunctionActive`] while another cofunction
    /// is alive. Errors while sending are yielded by the iterator.
    ///
    /// # Cancellation
    ///
    /// See [`Cofun`]: dropping it before it finishes un-sends the request if no byte went
    /// out, and otherwise poisons the connection.
    pub fn send_request_cofun<'c>(
        &'c self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: Body<'c>,
    ) -> Result<Cofun<'c, P>, Error> {
        let request = send::Request {
            method,
            path: target,
            headers,
            body,
        };
        let prepared = send::prepare(&self.driver(), &request)?;
        Cofun::request(self, prepared)
    }

    /// Streams `reader` as the body owed by the last request ([`Body::Following`] or
    /// [`Body::Chunked`]) through a cofunction that yields whenever response data is
    /// available, like [`send_request_cofun`](Self::send_request_cofun). A `Following` body
    /// gets exactly its declared length (the reader is not read past it); a chunked body is
    /// ended when the reader ends.
    ///
    /// # Errors
    ///
    /// [`StateError::NoBodyExpected`] (or `BodyRefused`, `CofunctionActive`) when no body is
    /// owed: none was declared, or the declared one is complete already (nothing is read
    /// from `reader` then). A request that declared an empty body (`Content-Length: 0`:
    /// [`Body::Following`]`(0)`, or [`Body::Empty`] on a method that carries content) takes
    /// the reader and reads nothing from it. While iterating: [`StateError::SourceTooShort`]
    /// when the reader ends before the declared length, [`Error::Io`] when it fails (both poison the connection, as part of
    /// the body went out), and the send errors of [`write`](Self::write).
    ///
    /// # Cancellation
    ///
    /// As for [`Cofun`].
    pub fn sendfile_cofun<'c, R: Read>(&'c self, reader: &'c mut R) -> Result<Cofun<'c, P>, Error> {
        Cofun::body(self, reader)
    }

    /// The seed's name for [`sendfile_cofun`](Self::sendfile_cofun).
    #[doc(hidden)]
    #[deprecated(note = "renamed `sendfile_cofun`: `co_*` names are stepped operations")]
    pub fn co_sendfile<'c, R: Read>(&'c self, reader: &'c mut R) -> Result<Cofun<'c, P>, Error> {
        self.sendfile_cofun(reader)
    }

    /// Writes request body bytes for a [`Body::Following`] or [`Body::Chunked`] request.
    /// While a body is owed, an empty `data` is a no-op (it does not end a chunked body);
    /// with none owed it is the same error as any other `data`.
    ///
    /// # Errors
    ///
    /// - [`Error::State`] when no body is being written, more bytes than the declared length
    ///   are given, or the server refused the body.
    /// - [`Error::ConnectionClosed`] when the server stopped accepting bytes;
    ///   [`Error::Timeout`] (the connection is then poisoned, as part of the body is written;
    ///   but if responses had arrived, as when a server answers an upload early and stops
    ///   reading it, those are read as usual first, without waiting for more: the requests
    ///   left without one are then reported unanswered, and the next send opens a new
    ///   connection),
    ///   [`Error::BufferFull`], [`Error::Io`].
    ///
    /// # Blocking
    ///
    /// Until every byte is handed to the OS, up to the operation timeout.
    pub fn write(&self, data: &[u8]) -> Result<(), Error> {
        send::write_body(&self.driver(), data)
    }

    /// Sends body bytes with at most one non-blocking send, never blocking, and returns how
    /// many bytes of `data` were accepted (0 when the socket is full). For poll loops: wait
    /// until [`as_raw_fd`](std::os::fd::AsRawFd::as_raw_fd) is writable, call this, and
    /// advance by the result. For a chunked body, a chunk the socket cut short counts as
    /// accepted; its rest goes out first on the next call (which then returns 0).
    ///
    /// A poll loop must also read responses that are already buffered: check
    /// [`has_buffered_data`](Self::has_buffered_data) before waiting for readability, since
    /// the descriptor does not show bytes this connection has already taken in.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write), except that it never times out.
    pub fn write_partial(&self, data: &[u8]) -> Result<usize, Error> {
        send::write_partial(&self.driver(), data)
    }

    /// Sends the request bytes waiting in the connection's queue (see
    /// [`Config::coalesce_writes`]), waiting for the socket to take them. Every wait of this
    /// crate does this by itself; call it before waiting on something else — a sleep, a
    /// channel — when a request must already be on the wire.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    ///
    /// # Blocking
    ///
    /// Until every queued byte is handed to the OS, up to the operation timeout.
    pub fn flush(&self) -> Result<(), Error> {
        send::flush(&self.driver())
    }

    /// Whether reading a response (or the rest of a body) will make progress without waiting:
    /// response bytes are buffered, or arrive in one non-blocking receive made here when a
    /// response is expected, or the server has closed (reading then reports it). Poll loops
    /// check this before waiting for readability, and after the descriptor polls readable,
    /// before they read: over TLS a readable descriptor may carry no response at all (the
    /// session tickets a TLS 1.3 server sends after the handshake), and this takes such
    /// records in.
    pub fn has_buffered_data(&self) -> bool {
        let Ok(mut st) = self.state.try_borrow_mut() else {
            return false;
        };
        if !st.has_response_bytes() {
            st.take_arrived(self.config.max_buffered);
        }
        st.has_response_bytes() || st.recv.buf.is_eof()
    }

    /// Ends a [`Body::Chunked`] request body.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write); [`StateError::BodyTooShort`] for a `Following` body that
    /// still owes bytes.
    ///
    /// # Blocking
    ///
    /// Up to the operation timeout.
    pub fn finish_body(&self) -> Result<(), Error> {
        send::finish_body(&self.driver())
    }

    /// Whether a request body is still owed through [`write`](Self::write) /
    /// [`finish_body`](Self::finish_body).
    pub fn is_writing_body(&self) -> bool {
        self.state
            .try_borrow()
            .is_ok_and(|st| st.send.encoder.is_owed())
    }

    /// Reads the head of the next response (interim 1xx responses are skipped). Its body,
    /// if any, is then read with [`read`](Self::read), [`read_all`](Self::read_all) or
    /// [`discard`](Self::discard); a response without a body is complete on return.
    ///
    /// # Errors
    ///
    /// - [`Error::State`] when no response is pending or the previous body is unread.
    /// - [`Error::Protocol`] for an invalid response; the connection is then poisoned.
    /// - [`Error::ConnectionClosed`] when the server closed the connection before this
    ///   response was complete, or after a response that announced the close; it lists the
    ///   unanswered requests, and the next send reconnects.
    /// - [`Error::Timeout`] (nothing is lost: call again to keep waiting), [`Error::Io`].
    /// - [`Error::Poisoned`] when an earlier failure poisoned the connection (a protocol
    ///   error, a write that timed out or failed partway, [`Error::BufferFull`], a cofunction
    ///   dropped mid-send, a `read_all` that timed out partway); it lists the unanswered
    ///   requests, and the next send reconnects.
    ///
    /// # Blocking
    ///
    /// Until the whole head has arrived, up to the operation timeout.
    pub fn read_response(&self) -> Result<Response, Error> {
        recv::read_response(&self.driver(), &mut self.deadline(Operation::ReadResponse))
    }

    /// Reads body bytes of the current response into `buf`. Returns `Ok(0)` when the body is
    /// complete or no body is active (unless the connection is poisoned: see below). A body
    /// whose length is known is complete, and
    /// [`has_active_response`](Self::has_active_response) false, as soon as its last byte is
    /// returned; a chunked body, once its last chunk has arrived, which may be after its
    /// last data byte was returned (the next `read` then returns `Ok(0)`).
    ///
    /// # Errors
    ///
    /// - [`Error::Protocol`] for invalid chunk framing (the connection is poisoned).
    /// - [`Error::ConnectionClosed`] when the body was cut short.
    /// - [`Error::Timeout`] (nothing is lost), [`Error::Io`].
    /// - [`Error::Poisoned`] when no body is active and an earlier failure poisoned the
    ///   connection (as for [`read_response`](Self::read_response)).
    ///
    /// # Blocking
    ///
    /// Until at least one byte is available, up to the operation timeout.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Error> {
        recv::read_body(&self.driver(), buf, &mut self.deadline(Operation::ReadBody))
    }

    /// Reads the rest of the current response body into a vector.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read). A timeout before any byte arrived loses nothing (call again);
    /// a timeout after part of the body was taken poisons the connection, because those
    /// bytes cannot be handed back (read with [`read`](Self::read) to keep partial bodies).
    ///
    /// # Blocking
    ///
    /// Until the body is complete; one operation timeout covers the whole call.
    pub fn read_all(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let mut deadline = self.deadline(Operation::ReadBody);
        match recv::read_to_end(&self.driver(), &mut out, &mut deadline) {
            Ok(()) => Ok(out),
            Err(e @ Error::Timeout { operation, .. }) if !out.is_empty() => {
                let mut st = self.state()?;
                Err(st.poison(PoisonCause::Timeout(operation), e))
            }
            Err(e) => Err(e),
        }
    }

    /// Reads and drops the rest of the current response body, returning its length.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    ///
    /// # Blocking
    ///
    /// Until the body is complete; one operation timeout covers the whole call.
    pub fn discard(&self) -> Result<u64, Error> {
        recv::discard(&self.driver(), &mut self.deadline(Operation::ReadBody))
    }

    /// Whether anything is left to read: a request awaits its response, the current
    /// response's body is not finished, or a connection that ended still has unanswered
    /// requests to report (the next `read_response` returns that error). Loops like
    /// `while conn.response_pending() { .. }` therefore read every body to its end and never
    /// drop a request silently.
    pub fn response_pending(&self) -> bool {
        self.state
            .try_borrow()
            .is_ok_and(|st| st.response_pending())
    }

    /// Whether a response body is being read (its head was returned, its end not yet). A body
    /// cut short because a send failed meanwhile (which poisons the connection) stays active
    /// until a read reports that error: false here always means the body was read to its end
    /// or its failure was reported.
    pub fn has_active_response(&self) -> bool {
        self.state
            .try_borrow()
            .is_ok_and(|st| st.has_active_response())
    }

    /// Bytes of memory held by the receive buffer: 0 until the first receive allocates it
    /// at 4 KiB. It grows, up to 64 KiB, while reads keep filling it (pipelined responses
    /// arriving in batches); beyond that only to hold one response head or what a waiting
    /// send must buffer ([`Config::max_buffered`]). Streaming a body of any size does not
    /// grow it.
    pub fn receive_buffer_capacity(&self) -> usize {
        self.state
            .try_borrow()
            .map_or(0, |st| st.recv.buf.capacity())
    }

    /// The trailer fields of the last chunked response body that had any.
    pub fn take_trailers(&self) -> Option<HeaderMap> {
        self.state
            .try_borrow_mut()
            .ok()
            .and_then(|mut st| st.recv.reader.take_trailers())
    }

    /// Closes the connection. Requests in flight are forgotten: afterwards nothing is
    /// pending, and the next send reconnects.
    pub fn disconnect(&self) {
        if let Ok(mut st) = self.state.try_borrow_mut() {
            st.disconnect();
        }
    }
}

impl<P: Park> std::os::fd::AsRawFd for HttpConnection<P> {
    /// The socket's descriptor, or -1 while not connected. It changes when the connection
    /// reopens. Queued request bytes are sent first (see [`HttpConnection::flush`]), so a
    /// loop that waits on the descriptor never waits for the answer to a request still held
    /// here; a failure to send them is reported by the connection's next call.
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        let _ = self.flush();
        match self.state.try_borrow().as_deref() {
            Ok(State {
                link: Link::Open(t),
                ..
            }) => t.raw_fd(),
            _ => -1,
        }
    }
}

impl<P: Park> Read for &HttpConnection<P> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        HttpConnection::read(self, buf).map_err(io::Error::from)
    }
}

impl<P: Park> Read for HttpConnection<P> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        HttpConnection::read(self, buf).map_err(io::Error::from)
    }
}

#[allow(dead_code)]
fn assert_send() {
    fn is_send<T: Send>() {}
    is_send::<HttpConnection>();
}
