//! dugong: a synchronous HTTP/1.1 client that pipelines.
//!
//! One [`HttpConnection`] talks to one host and port and may have any number of requests in
//! flight: send several with [`send_request`](HttpConnection::send_request), then read their
//! responses in order with [`read_response`](HttpConnection::read_response) and the body
//! readers. On a 5 ms round trip, 16 requests in flight are about 15 times faster than one at
//! a time. Blocking sends keep draining response bytes while the socket is full, so
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
//! # Correctness
//!
//! Responses are framed exactly per RFC 9112 §6.3 (HEAD, 1xx, 204 and 304 have no body;
//! strict `Content-Length` and chunk sizes; `Content-Length` with `Transfer-Encoding` is an
//! error), the request line and headers are validated before a byte is sent, every blocking
//! call has a deadline a trickling server cannot extend, writes never raise `SIGPIPE`, and a
//! connection that loses framing is poisoned rather than misread. When the server closes with
//! requests unanswered, the error lists them ([`Error::unanswered`]) so they can be resent.
//!
//! # Layers
//!
//! - [`proto`]: the sans-IO core (bytes in, meaning out; no sockets, no clocks), usable on
//!   its own.
//! - [`HttpConnection`]: the one driver, over a non-blocking socket with `polling` waits.
//!
//! # Out of scope (for now)
//!
//! TLS, proxies, HTTP/2, cookies, redirects, content decoding, connection pools. Coroutine
//! based sending ("cofunctions") is being built on the same driver.
//!
//! Minimum supported Rust version: 1.82.

mod connection;
mod coroutine;
mod error;
mod io;
pub mod proto;

pub use connection::{Cofun, Config, HttpConnection, Response};
pub use error::{ClosePhase, Error, Operation, PoisonCause, StateError};
pub use proto::{Body, InFlight, ProtocolError, RequestError};
