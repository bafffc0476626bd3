//! dugong: a synchronous HTTP/1.1 client that pipelines.
//!
//! One [`HttpConnection`] talks to one host and port and may have any number of requests in
//! flight: send several with [`send_request`](HttpConnection::send_request), then read their
//! responses in order with [`read_response`](HttpConnection::read_response) and the body
//! readers. On a 5 ms round trip, 16 requests in flight are about 15 times faster than one at
//! a time, and cofunctions (below) keep the connection full without choosing a depth. Blocking sends keep draining response bytes while the socket is full, so
//! pipelining cannot deadlock against a server that answers before it reads on.
//!
//! ```
//! # let server = dugong_harness::LoopbackServer::start();
//! # let port = server.port();
//! use dugong::{Body, HttpConnection};
//! use http::{HeaderMap, Method, StatusCode};
//!
//! let conn = HttpConnection::new("127.0.0.1", port)?;
//! let docs = ["/doc/1.html", "/doc/2.html", "/doc/3.html"];
//! for doc in docs {
//!     conn.send_request(&Method::GET, doc, &HeaderMap::new(), Body::Empty)?;
//! }
//! while conn.response_pending() {
//!     let resp = conn.read_response()?;
//!     assert_eq!(resp.status, StatusCode::OK);
//!     let body = conn.read_all()?;
//!     assert_eq!(body, format!("document {}\n", resp.path).into_bytes());
//! }
//! # Ok::<(), dugong::Error>(())
//! ```
//!
//! # Cofunctions
//!
//! [`send_request_cofun`](HttpConnection::send_request_cofun) returns a [`Cofun`]: an
//! iterator backed by a stackful coroutine (corosensei) that writes the request with
//! non-blocking sends. It suspends back to the `for` loop whenever response data is
//! available — bytes already in the connection's buffer, or a readable socket while the send
//! would block — and the loop body reads responses on the same connection. Sending resumes
//! when the body is done. One thread keeps a connection full and can never deadlock, whatever
//! the sizes of requests and responses. [`sendfile_cofun`](HttpConnection::sendfile_cofun) does the
//! same for a request body read from any [`std::io::Read`].
//!
//! ```
//! # let server = dugong_harness::LoopbackServer::start();
//! # let port = server.port();
//! use dugong::{Body, HttpConnection};
//! use http::{HeaderMap, Method, StatusCode};
//!
//! let conn = HttpConnection::new("127.0.0.1", port)?;
//! let mut got = Vec::new();
//! let mut read_some = |conn: &HttpConnection| -> Result<(), dugong::Error> {
//!     if conn.has_active_response() {
//!         let mut buf = [0u8; 8192];
//!         let n = conn.read(&mut buf)?;           // body bytes of the current response
//!         got.last_mut().map(|(_, len): &mut (String, usize)| *len += n);
//!     } else {
//!         let resp = conn.read_response()?;       // method, path, status, reason, headers
//!         assert_eq!(resp.status, StatusCode::NO_CONTENT);
//!         got.push((resp.path, 0));
//!     }
//!     Ok(())
//! };
//! let upload = vec![b'x'; 1 << 20];
//! for name in ["a", "b", "c"] {
//!     let target = format!("/{name}");
//!     for step in conn.send_request_cofun(&Method::PUT, &target, &HeaderMap::new(), Body::Bytes(&upload))? {
//!         step?;
//!         read_some(&conn)?;                      // runs whenever the coroutine suspends
//!     }
//! }
//! while conn.response_pending() {
//!     read_some(&conn)?;
//! }
//! assert_eq!(got.len(), 3);
//! # Ok::<(), dugong::Error>(())
//! ```
//!
//! When it suspends: before each resume if unread response bytes are buffered (and the loop
//! body read something last time), and whenever a send would block and the socket is
//! readable. A loop body that reads nothing is fine too: the cofunction then buffers the
//! response bytes itself, like a blocking send. Dropping an unfinished cofunction cancels it
//! without unwinding (see [`Cofun`]).
//!
//! Uploads use [`Body::Following`] (a known length written later with
//! [`write`](HttpConnection::write)) or [`Body::Chunked`] (ended with
//! [`finish_body`](HttpConnection::finish_body)):
//!
//! ```
//! # let server = dugong_harness::LoopbackServer::start();
//! # let port = server.port();
//! use dugong::{Body, HttpConnection};
//! use http::{HeaderMap, Method, StatusCode};
//!
//! let conn = HttpConnection::new("127.0.0.1", port)?;
//! conn.send_request(&Method::PUT, "/upload", &HeaderMap::new(), Body::Chunked)?;
//! for piece in [&b"hello "[..], b"world"] {
//!     conn.write(piece)?;
//! }
//! conn.finish_body()?;
//! let resp = conn.read_response()?;
//! assert_eq!(resp.status, StatusCode::NO_CONTENT);
//! assert_eq!(resp.headers["x-received-bytes"], "11");
//! # Ok::<(), dugong::Error>(())
//! ```
//!
//! # HTTPS
//!
//! With the `tls` feature (on by default), `https` connections run the same driver over a
//! rustls session: pipelining, cofunctions, `co_*` operations and green tasks all work, the
//! handshake counts against the connect timeout, the server's certificate is verified (by
//! default against the webpki-roots trust anchors; see `TlsConfig`), and a close without
//! `close_notify` never completes a body. `default-features = false` builds a plain-HTTP crate
//! with no TLS code.
//!
//! ```
//! # #[cfg(feature = "tls")] fn main() -> Result<(), dugong::Error> {
//! # let server = dugong_harness::LoopbackServer::start();
//! # let ca = dugong_harness::TestCa::new();
//! # let identity = ca.issue(&["127.0.0.1"], dugong_harness::Validity::Current);
//! # let tls = dugong_harness::TlsTerminator::start(server.addr(), identity, dugong_harness::CloseMode::CloseNotify);
//! # let port = tls.port();
//! use dugong::rustls::RootCertStore;
//! use dugong::{Body, Config, HttpConnection, Origin, Scheme, TlsConfig};
//! use http::{HeaderMap, Method};
//!
//! let mut roots = RootCertStore::empty();
//! roots.add(ca.root()).expect("a valid certificate"); // a private CA; the default needs none
//! let config = Config::default().tls(TlsConfig::with_root_certificates(roots)?);
//! let conn = HttpConnection::open(&Origin::new(Scheme::Https, "127.0.0.1", port), config)?;
//! for path in ["/bytes/3", "/bytes/5"] {
//!     conn.send_request(&Method::GET, path, &HeaderMap::new(), Body::Empty)?; // pipelined
//! }
//! conn.read_response()?;
//! assert_eq!(conn.read_all()?, b"abc");
//! conn.read_response()?;
//! assert_eq!(conn.read_all()?, b"abcde");
//! # Ok(()) }
//! # #[cfg(not(feature = "tls"))] fn main() {}
//! ```
//!
//! [`HttpConnection::from_url`] takes `http://` and `https://` URLs.
//!
//! # Green threads
//!
//! [`green`] runs many blocking-style tasks on one OS thread; a connection made with
//! [`green::Task::connect`] suspends its task instead of blocking. See the module docs.
//! For an event loop of your own, the `co_*` operations
//! ([`co_send_request`](HttpConnection::co_send_request),
//! [`co_read_response`](HttpConnection::co_read_response), ...) return a [`CoOp`] whose
//! steps either finish or say which readiness of which descriptor they wait for
//! ([`PollNeeded`]: a `BorrowedFd`, an [`Interest`], and a timeout when the operation has one
//! of its own).
//!
//! Names tell the kinds apart: `*_cofun` returns a [`Cofun`] (an iterator whose loop body
//! reads), `co_*` a [`CoOp`] (a stepped operation), and everything else blocks (or suspends a
//! green task).
//!
//! # Logging
//!
//! dugong logs through the [`log`] facade, as ureq does: a synchronous library needs no
//! subscriber or span machinery (`tracing` subscribers still receive the records through
//! `tracing-log`), and while no logger takes a level, each log point costs the facade's level
//! check, one atomic load: nothing is formatted or allocated. Two targets:
//!
//! - `dugong`: at debug, the connection lifecycle and each request and response line; at trace,
//!   their header fields as sent and as parsed. Lifecycle lines: a tunnel open through a proxy
//!   (`CONNECT`; its exchange is in the wire log under the connection's number), connected (the
//!   origin's host and port, the address reached — the proxy's, through one — plain TCP or the
//!   TLS version and ALPN protocol), connecting failed (the error), an
//!   idle connection reused (once per request that starts with nothing in flight, never per
//!   pipelined request), a stale idle connection closed, closed by the server (the phase and
//!   the number of unanswered requests), poisoned (the cause and the unanswered count), the
//!   server stopped reading requests, disconnected by the caller, socket closed. A request line
//!   is logged when its head goes out, with `(queued)` when it waits to go out with the next
//!   ones ([`Config::coalesce_writes`]); a response line names the request it answers.
//! - `dugong::wire`: at trace, every byte sent (`>>`) and received (`<<`), once, as the
//!   connection took it: after the send queue (a byte queued or sent partially shows once, when
//!   it is taken) and, over `https`, as plaintext. Bytes are escaped like a Rust byte string, at
//!   most 64 to a line, a line ending after each LF.
//!
//! Every line starts with the connection's number (`#1`), counted per process. The values of
//! `Authorization`, `Proxy-Authorization`, `Cookie` and `Set-Cookie` fields never appear: they
//! show as `<redacted>` in header lines and wire lines alike (in the wire log, any line that
//! starts like such a field, body lines included). `fetch -vv` (see the README) shows it:
//!
//! ```text
//! DEBUG dugong: #1 connected to 127.0.0.1:39327 (127.0.0.1:39327, plain TCP)
//! TRACE dugong::wire: #1 >> 72 bytes, 1/4: "GET /a HTTP/1.1\r\n"
//! TRACE dugong::wire: #1 >> 72 bytes, 2/4: "host: 127.0.0.1:39327\r\n"
//! TRACE dugong::wire: #1 >> 72 bytes, 3/4: "authorization: <redacted>\r\n"
//! TRACE dugong::wire: #1 >> 72 bytes, 4/4: "\r\n"
//! DEBUG dugong: #1 -> GET /a HTTP/1.1
//! TRACE dugong: #1 -> host: 127.0.0.1:39327
//! TRACE dugong: #1 -> authorization: <redacted>
//! DEBUG dugong: #1 -> GET /b HTTP/1.1 (queued)
//! ...
//! TRACE dugong::wire: #1 << 105 bytes, 1/7: "HTTP/1.1 200 OK\r\n"
//! TRACE dugong::wire: #1 << 105 bytes, 2/7: "Content-Length: 3\r\n"
//! TRACE dugong::wire: #1 << 105 bytes, 3/7: "Set-Cookie: <redacted>\r\n"
//! TRACE dugong::wire: #1 << 105 bytes, 4/7: "\r\n"
//! TRACE dugong::wire: #1 << 105 bytes, 5/7: "abcHTTP/1.1 404 Not Found\r\n"
//! ...
//! DEBUG dugong: #1 <- 200 OK (GET /a)
//! TRACE dugong: #1 <- content-length: 3
//! TRACE dugong: #1 <- set-cookie: <redacted>
//! DEBUG dugong: #1 <- 404 Not Found (GET /b)
//! DEBUG dugong: #1 socket closed
//! ```
//!
//! # Correctness
//!
//! Responses are framed exactly per RFC 9112 §6.3 (HEAD, 1xx, 204 and 304 have no body;
//! strict `Content-Length` and chunk sizes; `Content-Length` with `Transfer-Encoding` is an
//! error), the request line and headers are validated before a byte is sent, every blocking
//! call has a deadline a trickling server cannot extend, writes never raise `SIGPIPE`, and a
//! connection that loses framing is poisoned rather than misread. When the server closes with
//! requests unanswered, the error lists them ([`Error::unanswered`]) so they can be resent.
//!
//! # Names, addresses and retries
//!
//! A host name is resolved on a thread of its own within the connect timeout (a green task
//! parks meanwhile); failures are [`Error::Resolve`] with a [`DnsError`] that tells a name
//! that does not exist from a resolver that cannot answer now. [`Config::resolver`] takes any
//! [`Resolve`]. Connecting follows Happy Eyeballs (RFC 8305): IPv6 first, families
//! alternating, the next address 250 ms after the previous one, the first to connect wins and
//! the rest are closed.
//!
//! [`Error::is_temporary`] says whether a failed call may succeed if tried again.
//! [`HttpConnection::send_batch`] pipelines a list of requests and hands each response over
//! once, in order, resending what a closed connection left unanswered as a [`Retry`] policy
//! allows: idempotent methods only unless asked; at once after a connection that answered
//! something, else after a backoff that doubles.
//!
//! # Layers
//!
//! - [`proto`]: the sans-IO core (bytes in, meaning out; no sockets, no clocks), usable on
//!   its own.
//! - [`HttpConnection`]: the one driver, over a non-blocking socket. Blocking calls,
//!   cofunctions, `co_*` operations and green tasks run the same send and receive code; they
//!   differ only in how they wait: the connection's [`Park`] ([`Blocking`] in `poll(2)`, or
//!   [`green::Green`]), or a coroutine suspending to its loop body or to a foreign event loop.
//!
//! # Proxies
//!
//! [`Config::proxy`] sends every connection through an HTTP proxy ([`Proxy`]; only `http://`
//! proxies): `https://` origins through a `CONNECT` tunnel, `http://` origins with
//! absolute-form request targets (or a tunnel, with [`HttpVia::Tunnel`]). The proxy sits
//! below the driver: pipelining, cofunctions, `co_*` operations and green tasks work the same
//! through it, and a reconnect goes through it again. [`Proxies::from_env`] reads the
//! environment with curl's rules, the first variable set (and not blank) winning:
//! `http_proxy` (never uppercase `HTTP_PROXY`) or `https_proxy` then `HTTPS_PROXY`, else
//! `all_proxy` then `ALL_PROXY`; and `no_proxy` then `NO_PROXY` for the hosts that go direct
//! ([`NoProxy`]: `*` alone for every host, else names with their subdomains, addresses and
//! CIDR networks, IPv6 also in brackets beyond curl; an entry with a port matches nothing).
//! Nothing reads the environment unless asked.
//!
//! # Out of scope (for now)
//!
//! HTTPS and SOCKS proxies, HTTP/2, cookies, redirects, content decoding, connection pools.
//!
//! # Platforms
//!
//! Linux and other Unix systems: the crate waits with `poll(2)`, sends with `MSG_NOSIGNAL`
//! (`SO_NOSIGPIPE` on Apple platforms) and exposes descriptors as `AsRawFd`/`BorrowedFd`. It
//! does not build elsewhere.
//!
//! Minimum supported Rust version: 1.82.

#[cfg(not(unix))]
compile_error!(
    "dugong supports Unix platforms only: it waits with poll(2) and sends with MSG_NOSIGNAL"
);

mod connection;
mod coroutine;
mod error;
pub mod green;
mod io;
pub mod proto;
mod proxy;

#[cfg(feature = "tls")]
pub use connection::TlsConfig;
pub use connection::{
    BatchRequest, CoOp, CoStep, Cofun, Config, HttpConnection, Interest, PollNeeded, Resolver,
    Response, Retry, RetryRun,
};
pub use error::{ClosePhase, Error, Operation, PoisonCause};
/// Test-only (feature `sim`): the simulated transport and virtual clock under the driver.
#[cfg(feature = "sim")]
#[doc(hidden)]
pub use io::sim;
pub use io::{Blocking, DnsError, Park, Resolve, SystemResolver};
pub use proto::{Body, InFlight, Origin, ProtocolError, RequestError, Scheme, StateError};
pub use proxy::{HttpVia, NoProxy, Proxies, Proxy, ProxyUrlError, TunnelFailure};
#[cfg(feature = "tls")]
pub use rustls;

/// The README's code blocks, compiled as doctests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
