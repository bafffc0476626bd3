//! Plain-data errors of the protocol core: `Copy + Eq`, so tests can `assert_eq!` on them.

/// The server sent bytes that do not form a valid HTTP/1.1 response.
///
/// Every variant means framing can no longer be trusted: the connection that produced it is
/// closed or poisoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The response head did not end within the configured number of bytes.
    #[error("response head exceeds the limit of {limit} bytes")]
    HeadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The response head (or a chunked body's trailer section) has more header fields than
    /// configured.
    #[error("response head has more than {limit} header fields")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// The status line or a header line is malformed (the text says which part).
    #[error("malformed response head: {0}")]
    MalformedHead(&'static str),
    /// More interim (1xx) responses arrived before the final one than configured.
    #[error("more than {limit} interim (1xx) responses")]
    TooManyInterimResponses {
        /// The configured limit.
        limit: usize,
    },
    /// The server answered `101 Switching Protocols`; protocol upgrades are not supported.
    #[error("101 switching protocols is not supported")]
    SwitchingProtocols,
    /// The server answered a `CONNECT` with 2xx; tunnels are not supported.
    #[error("CONNECT tunnels are not supported")]
    Tunnel,
    /// A `Content-Length` value is not `1*DIGIT` within u64.
    #[error("invalid content-length")]
    InvalidContentLength,
    /// Several `Content-Length` values that differ.
    #[error("conflicting content-length values")]
    ConflictingContentLength,
    /// Both `Content-Length` and `Transfer-Encoding` (a request-smuggling pattern).
    #[error("both content-length and transfer-encoding")]
    LengthWithTransferEncoding,
    /// A `Transfer-Encoding` that applies `chunked` more than once.
    #[error("invalid transfer-encoding")]
    InvalidTransferEncoding,
    /// A chunk size that is not `1*HEXDIG` or does not fit in u64.
    #[error("invalid chunk size")]
    InvalidChunkSize,
    /// A chunk-size line (with its extensions) longer than 4096 bytes.
    #[error("chunk-size line too long")]
    ChunkLineTooLong,
    /// Chunk data not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    MissingChunkCrlf,
    /// Trailer fields larger than configured.
    #[error("trailer section exceeds the limit of {limit} bytes")]
    TrailerTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A trailer line that is not a valid header field.
    #[error("malformed trailer section")]
    MalformedTrailer,
}

/// A request that cannot be sent as given. Nothing was written when this is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The request target is empty or contains a space, a control character or a non-ASCII byte.
    #[error("invalid request target")]
    InvalidTarget,
    /// A header name is not a token.
    #[error("invalid header name")]
    InvalidHeaderName,
    /// A header value contains CR, LF, NUL or another control character.
    #[error("invalid header value")]
    InvalidHeaderValue,
    /// `Content-Length` or `Transfer-Encoding` was passed as a header; framing comes from the
    /// [`Body`](crate::Body) argument.
    #[error("content-length and transfer-encoding are set from the body argument")]
    FramingHeader,
    /// The host name cannot be used in a `Host` header.
    #[error("invalid host")]
    InvalidHost,
    /// A URL that is not `http://` or `https://`, then a host, an optional port and an
    /// optional path.
    #[error("invalid url")]
    InvalidUrl,
    /// `https` in a build without dugong's `tls` feature.
    #[error("https needs the tls feature")]
    UnsupportedScheme,
}

/// API misuse: the call does not fit the connection's state. Nothing was sent or consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// `read_response` with no request waiting for a response.
    #[error("no response is pending")]
    NoResponsePending,
    /// `read_response` while the previous response body has not been read to its end.
    #[error("the previous response body has not been read")]
    BodyUnread,
    /// `write` or `finish_body` with no request body being written.
    #[error("no request body is being written")]
    NoBodyExpected,
    /// `write` of more bytes than the `Content-Length` still owed.
    #[error("write exceeds the declared content-length")]
    BodyTooLong,
    /// `finish_body` before all `Content-Length` bytes were written.
    #[error("request body is shorter than its declared content-length")]
    BodyTooShort,
    /// `send_request` while the previous request body is still owed.
    #[error("the previous request body has not been completed")]
    BodyIncomplete,
    /// `write` after the server answered an `Expect: 100-continue` request with a final
    /// response instead of `100 Continue`: the body must not be sent.
    #[error("the server refused the request body")]
    BodyRefused,
    /// `write` or `finish_body` while the request still waits for the server's answer to
    /// `Expect: 100-continue`.
    #[error("the request body waits for 100 continue")]
    AwaitingContinue,
    /// `Expect: 100-continue` while other responses are still pending.
    #[error("expect: 100-continue needs all earlier responses read first")]
    ContinueWhilePipelining,
    /// A cofunction is still sending on this connection: finish (or drop) it before sending
    /// or writing anything else. Reading is allowed.
    #[error("a cofunction is still sending on this connection")]
    CofunctionActive,
    /// The request body source ended before the declared `Content-Length`.
    #[error("the body source ended before the declared content-length")]
    SourceTooShort,
    /// The connection is in use by an operation that has not returned.
    #[error("the connection is busy")]
    Busy,
}
