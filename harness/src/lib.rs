//! Loopback test peers for the dugong HTTP/1.1 client.
//!
//! Every component binds `127.0.0.1:0` only, bounds every blocking socket
//! operation in time, records I/O errors instead of panicking in its
//! threads, and stops by itself (joining its threads) when dropped.
//!
//! - [`ScriptedServer`]: plays a script of [`Step`]s ("expect these request
//!   bytes, reply these bytes, then close / reset / stall / trickle") and
//!   returns a [`Transcript`] of what it received.
//! - [`LoopbackServer`]: a small, correct, pipelining HTTP/1.1 server, the
//!   peer for examples, tests and benchmarks. Responses carry no `Date`
//!   header. Routes, in order of precedence:
//!   - `POST`/`PUT /echo`: 200, the request body echoed with
//!     `Content-Length`.
//!   - `/status/NNN` (any method, 200 ≤ NNN ≤ 599): status NNN with
//!     `Content-Length: 0`, or no length and no body for 204 and 304.
//!   - `POST`/`PUT` anything else: the body is read and answered with
//!     `204 No Content`, `X-Received-Bytes: n` and `X-Body-Sum: s` (the
//!     wrapping `u64` sum of the body bytes).
//!   - `/bytes/N`: 200, `Content-Length: N`, body [`pattern`]`(N)` (byte i
//!     is `b'a' + i % 26`).
//!   - `/chunked/N` and `/chunked/N/K`: the same N bytes, chunked in chunks
//!     of K bytes (default 1000).
//!   - `/close/N`: the same N bytes with `Connection: close` and no length;
//!     the body ends when the connection closes.
//!   - anything else: 200, `Content-Type: text/plain`, body
//!     `document <target>\n` (the origin-form request target, query
//!     included).
//!
//!   `HEAD` gets the `GET` headers without a body. Request bodies may use
//!   `Content-Length` or chunked coding (trailers allowed);
//!   `Expect: 100-continue` is answered with `100 Continue` before the body
//!   is read; `Connection: close` (and HTTP/1.0 without keep-alive) closes
//!   after the response; a malformed request gets `400` and a close.
//! - [`DelayProxy`]: a TCP proxy adding a fixed one-way delay per direction
//!   with many segments in flight, to model round-trip time.
//! - [`ForwardProxy`]: an HTTP forward proxy (absolute-form requests and `CONNECT`
//!   tunnels, to loopback upstreams only) that records the request heads it receives, or
//!   answers with bytes the test chooses ([`ProxyAnswer`]).
//! - [`TlsTerminator`]: TLS in front of any of them (certificates from a
//!   [`TestCa`] made at test time), ending with or without `close_notify`.
//!
//! ```
//! use std::io::{Read, Write};
//! use dugong_harness::LoopbackServer;
//!
//! let server = LoopbackServer::start();
//! let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
//! s.write_all(b"GET /bytes/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
//! let mut response = String::new();
//! s.read_to_string(&mut response).unwrap();
//! assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(response.ends_with("\r\n\r\nabc"));
//! ```
#![warn(missing_docs)]

mod forward_proxy;
mod memory;
mod net;
mod proxy;
mod request;
mod scripted;
mod server;
mod tls;

pub use forward_proxy::{ForwardProxy, ProxyAnswer};
pub use memory::peak_rss_kib;
pub use proxy::DelayProxy;
pub use scripted::{ScriptedServer, Step, Transcript};
pub use server::{pattern, pattern_byte, LoopbackServer, ServerOptions};
pub use tls::{CloseMode, Handshake, Identity, TestCa, TlsTerminator, Validity};
