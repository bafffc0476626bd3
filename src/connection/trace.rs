//! What a connection logs under the `dugong` target: its lifecycle (connect, reuse, stale,
//! close, poison, disconnect) and each request and response line at debug level, their
//! header fields at trace level, secret values redacted. The bytes themselves are the
//! transport's (`dugong::wire`, see `io::wire_log`).
//!
//! Every line starts with the connection's number (`#3`). Arguments are only formatted when
//! the level is enabled: with logging off, each call here is the `log` crate's level check.

use http::StatusCode;
use log::Level;

use super::state::Link;
use super::Driver;
use crate::error::{ClosePhase, Error, PoisonCause};
use crate::io::{Transport, LOG_TARGET as TARGET};
use crate::proto::{is_secret, InFlight, ResponseHead, REDACTED};

/// The number of the link's connection, 0 when there is none.
fn id(link: &Link) -> u64 {
    match link {
        Link::Open(t) => t.log_id(),
        _ => 0,
    }
}

/// A new connection is open (numbered when its socket connected, before any tunnel or TLS
/// handshake, whose bytes the wire log shows under that number).
pub(crate) fn connected(d: &Driver<'_>, t: &Transport) {
    if log::log_enabled!(target: TARGET, Level::Debug) {
        let origin = &d.target.origin;
        let addr = t
            .peer_addr()
            .map_or_else(|| "simulated".to_owned(), |a| a.to_string());
        let security = t.tls_summary().unwrap_or_else(|| "plain TCP".to_owned());
        log::debug!(
            target: TARGET,
            "#{} connected to {}:{} ({addr}, {security})",
            t.log_id(),
            origin.host,
            origin.port
        );
    }
}

/// A proxy opened a `CONNECT` tunnel to `authority` on the new connection `t`.
pub(crate) fn tunnel_opened(t: &Transport, authority: &http::HeaderValue) {
    log::debug!(
        target: TARGET,
        "#{} tunnel to {} open through the proxy",
        t.log_id(),
        String::from_utf8_lossy(authority.as_bytes())
    );
}

/// Opening a connection failed.
pub(crate) fn connect_failed(d: &Driver<'_>, e: &Error) {
    let origin = &d.target.origin;
    log::debug!(
        target: TARGET,
        "connecting to {}:{} failed: {}",
        origin.host,
        origin.port,
        chain(e)
    );
}

/// A new request starts on an open connection with nothing in flight.
pub(crate) fn reused(link: &Link) {
    log::debug!(target: TARGET, "#{} idle connection reused", id(link));
}

/// An idle connection was found closed by the server (or holding bytes nobody asked for).
pub(crate) fn stale(link: &Link) {
    log::debug!(
        target: TARGET,
        "#{} idle connection is stale (closed by the server, or unasked-for bytes): closed",
        id(link)
    );
}

/// The server stopped taking request bytes; responses it sent may still be read.
pub(crate) fn stopped_reading(link: &Link, in_flight: usize) {
    log::debug!(
        target: TARGET,
        "#{} the server stopped reading requests, {in_flight} in flight",
        id(link)
    );
}

/// A connection whose server stopped reading is closed, every response read.
pub(crate) fn closed_after_stop(link: &Link) {
    log::debug!(
        target: TARGET,
        "#{} closed: the server stopped reading requests",
        id(link)
    );
}

/// The server ended the connection in `phase`.
pub(crate) fn closed(link: &Link, phase: ClosePhase, unanswered: usize) {
    log::debug!(
        target: TARGET,
        "#{} closed by the server {phase}, {unanswered} unanswered",
        id(link)
    );
}

/// Framing was lost.
pub(crate) fn poisoned(link: &Link, cause: PoisonCause, unanswered: usize) {
    log::debug!(
        target: TARGET,
        "#{} poisoned: {}, {unanswered} unanswered",
        id(link),
        chain(&cause)
    );
}

/// The caller closed the connection.
pub(crate) fn disconnected(link: &Link, in_flight: usize) {
    if matches!(link, Link::Open(_)) {
        log::debug!(
            target: TARGET,
            "#{} disconnected by the caller, {in_flight} in flight forgotten",
            id(link)
        );
    }
}

/// A request head went out (or was queued to go out with the next ones): its request line
/// at debug, its header fields at trace.
pub(crate) fn request(t: &Transport, head: &[u8], queued: bool) {
    if !log::log_enabled!(target: TARGET, Level::Debug) {
        return;
    }
    let id = t.log_id();
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty());
    let request_line = lines.next().unwrap_or_default().escape_ascii();
    let queued = if queued { " (queued)" } else { "" };
    log::debug!(target: TARGET, "#{id} -> {request_line}{queued}");
    if log::log_enabled!(target: TARGET, Level::Trace) {
        for field in lines {
            let split = field.iter().position(|&b| b == b':');
            let (name, value) = split.map_or((field, &b""[..]), |at| field.split_at(at));
            let value = value.get(1..).unwrap_or_default().trim_ascii();
            header(id, "->", name, value);
        }
    }
}

/// An interim (1xx) response arrived.
pub(crate) fn interim(t: &Transport, status: StatusCode) {
    log::debug!(target: TARGET, "#{} <- {status} (interim)", t.log_id());
}

/// A final response head arrived for `request`: its status line at debug, its header fields
/// at trace.
pub(crate) fn response(t: &Transport, request: &InFlight, head: &ResponseHead) {
    if !log::log_enabled!(target: TARGET, Level::Debug) {
        return;
    }
    let id = t.log_id();
    log::debug!(
        target: TARGET,
        "#{id} <- {} {} ({} {})",
        head.status.as_str(),
        head.reason.escape_default(),
        request.method,
        request.target
    );
    if log::log_enabled!(target: TARGET, Level::Trace) {
        for (name, value) in &head.headers {
            header(id, "<-", name.as_str().as_bytes(), value.as_bytes());
        }
    }
}

/// One header field at trace level, its value redacted if it is a secret.
fn header(id: u64, arrow: &str, name: &[u8], value: &[u8]) {
    let secret = is_secret(name);
    let name = name.escape_ascii();
    if secret {
        log::trace!(target: TARGET, "#{id} {arrow} {name}: {REDACTED}");
    } else {
        log::trace!(target: TARGET, "#{id} {arrow} {name}: {}", value.escape_ascii());
    }
}

/// An error and its causes, joined with `: `.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}
