//! The response value handed to callers.

use http::{HeaderMap, Method, StatusCode, Version};

use crate::proto::{BodyKind, InFlight, ResponseHead};

/// A response head, with the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// Method of the request this answers.
    pub method: Method,
    /// Target of the request this answers, as the caller gave it (through a forward proxy
    /// the request line carries it in absolute form, `http://host:port` before it).
    pub path: String,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// Status code.
    pub status: StatusCode,
    /// Reason phrase (empty if absent).
    pub reason: String,
    /// Header fields.
    pub headers: HeaderMap,
    /// Body length when known in advance: `Some(0)` for no body, `None` for chunked or
    /// close-delimited bodies.
    pub length: Option<u64>,
}

impl Response {
    pub(crate) fn new(request: InFlight, head: ResponseHead, body: BodyKind) -> Self {
        let length = match body {
            BodyKind::None => Some(0),
            BodyKind::Length(n) => Some(n),
            BodyKind::Chunked | BodyKind::UntilClose => None,
        };
        Response {
            method: request.method,
            path: request.target,
            version: head.version,
            status: head.status,
            reason: head.reason,
            headers: head.headers,
            length,
        }
    }
}
