//! What can be wrong with a proxy: its URL, or the tunnel it was asked to open.

use crate::proto::ProtocolError;

/// Why a proxy URL cannot be used (see [`Proxy::parse`](crate::Proxy::parse)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyUrlError {
    /// Not an `http://` proxy: `https://` and SOCKS proxies are not supported.
    #[error("only http:// proxies are supported")]
    UnsupportedScheme,
    /// Not `http://[user[:password]@]host[:port][/]`.
    #[error("expected http://[user:password@]host[:port]")]
    InvalidUrl,
    /// The user or password has a bad percent-escape.
    #[error("invalid percent-encoding in the credentials")]
    InvalidCredentials,
}

/// How a proxy failed to open a `CONNECT` tunnel, short of refusing it with a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelFailure {
    /// The proxy closed (or reset) the connection before its answer was complete.
    #[error("the proxy closed the connection before answering CONNECT")]
    Closed,
    /// The proxy's answer is not a valid HTTP/1.1 response head (or exceeds the head limits).
    #[error("invalid answer to CONNECT")]
    Protocol(#[source] ProtocolError),
    /// Bytes arrived through the tunnel before the TLS handshake began: no TLS server speaks
    /// first, so they cannot be part of the session.
    #[error("bytes arrived through the tunnel before the TLS handshake")]
    EarlyData,
}
