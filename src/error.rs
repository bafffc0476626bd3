//! The public error type: what went wrong at this level, with the cause in `source()`.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::proto::{InFlight, ProtocolError, RequestError, StateError};
use crate::proxy::{ProxyUrlError, TunnelFailure};

/// Everything that can go wrong in a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No address of the host accepted a connection (the last attempt's error is the source).
    #[error("cannot connect to {}", authority(host, *port))]
    Connect {
        /// The host as given.
        host: String,
        /// The port.
        port: u16,
        /// Why the last attempt failed.
        #[source]
        source: io::Error,
    },
    /// The host name did not resolve (the source says whether it does not exist or the
    /// resolver could not answer now). A lookup that runs out of connect time is
    /// [`Error::Timeout`] with [`Operation::Resolve`].
    #[error("cannot resolve {host}")]
    Resolve {
        /// The host as given.
        host: String,
        /// Why.
        #[source]
        source: crate::DnsError,
    },
    /// A socket operation failed in a way not covered by another variant.
    #[error("i/o error")]
    Io(#[source] io::Error),
    /// The TLS session failed: the server's certificate was not accepted (unknown issuer,
    /// wrong name, expired: see the source), the handshake failed, or the server's records
    /// were invalid (a server that answers plain HTTP on a TLS port, say).
    #[cfg(feature = "tls")]
    #[error("tls error")]
    Tls(#[source] rustls::Error),
    /// The server's bytes are not valid HTTP/1.1; the connection is closed.
    #[error("invalid response")]
    Protocol(#[from] ProtocolError),
    /// The request cannot be sent as given; nothing was written.
    #[error("invalid request")]
    InvalidRequest(#[from] RequestError),
    /// A blocking call did not finish before its deadline.
    #[error("timed out after {after:?} {operation}")]
    Timeout {
        /// What was being waited for.
        operation: Operation,
        /// The configured timeout.
        after: Duration,
    },
    /// The server closed or reset the connection. Requests whose response never started
    /// arriving are listed, oldest first, so the caller can resend them on a new connection;
    /// a response cut off in its head or body is this error's own subject (see `phase`), not
    /// listed, since the server acted on its request.
    ///
    /// Every unanswered request is reported exactly once: by the first call that meets the
    /// closed connection.
    #[error(
        "connection closed by the server {phase}{}",
        unanswered_note(unanswered)
    )]
    ConnectionClosed {
        /// Where in the exchange the close happened.
        phase: ClosePhase,
        /// Requests that were sent (at least partly) and whose response never started.
        unanswered: Vec<InFlight>,
    },
    /// An earlier error left the connection without framing; reads and writes fail with this
    /// until it reconnects (the next `send_request` does). The requests behind the failed
    /// response are listed by the first such error only; a request whose send the caller
    /// cancelled (by dropping its cofunction or `co_*` operation) is not listed, since the
    /// caller knows. With nothing to list, the next `send_request` reconnects at once.
    #[error(
        "connection unusable after an earlier error{}",
        unanswered_note(unanswered)
    )]
    Poisoned {
        /// The earlier failure.
        #[source]
        cause: PoisonCause,
        /// Requests behind the failed response, oldest first (listed once).
        unanswered: Vec<InFlight>,
    },
    /// While a send waited for the server to take more bytes (a blocking send, or a
    /// cofunction whose loop body did not read them), the server sent more response bytes
    /// than [`Config::max_buffered`](crate::Config::max_buffered) allows. The connection is
    /// poisoned.
    #[error("more than {limit} response bytes arrived while sending")]
    BufferFull {
        /// The configured bound.
        limit: usize,
    },
    /// The operation was cancelled: a cofunction or `co_*` operation dropped before it
    /// finished (its send was abandoned), or a green task's runtime dropped while the task
    /// waited.
    #[error("cancelled")]
    Cancelled,
    /// The connection was used in a way its current state does not allow (the source says
    /// how). Nothing was sent or consumed.
    #[error("the call does not fit the connection's state")]
    State(#[from] StateError),
    /// A proxy URL cannot be used (the source says why): given to
    /// [`Proxy::parse`](crate::Proxy::parse) or found in the environment.
    #[error("invalid proxy url")]
    InvalidProxy(#[source] ProxyUrlError),
    /// The proxy answered `CONNECT` with a final status other than 2xx: there is no tunnel,
    /// and the connection to the proxy is closed. A `407 Proxy Authentication Required` means
    /// credentials are missing or refused; `proxy_authenticate` then says which schemes the
    /// proxy accepts.
    #[error("the proxy refused the tunnel with status {status}")]
    ProxyRefused {
        /// The proxy's status.
        status: http::StatusCode,
        /// The proxy's `Proxy-Authenticate` values, in order (usually only with a 407).
        proxy_authenticate: Vec<http::HeaderValue>,
    },
    /// The proxy failed while opening a `CONNECT` tunnel (the source says how): it closed
    /// the connection, or its answer was not valid HTTP. The connection to it is closed.
    #[error("the proxy failed to open a tunnel")]
    ProxyTunnel(#[source] TunnelFailure),
}

impl Error {
    /// Whether the same call may succeed if tried again later, on a new connection: the
    /// network or the server failed for now — timeouts, resets, refused connections, a
    /// server that closed with requests unanswered, a resolver that could not answer. The
    /// rest would fail the same way again: invalid responses, certificate errors, a name that
    /// does not exist, misuse, limits.
    ///
    /// It answers "may I retry?", not "is it safe to": resend only what the server did not
    /// act on ([`unanswered`](Self::unanswered)), and only idempotent requests unless you
    /// know better.
    ///
    /// ```
    /// use std::time::Duration;
    /// use dugong::{Error, Operation};
    ///
    /// let timeout = Error::Timeout { operation: Operation::ReadResponse, after: Duration::from_secs(1) };
    /// assert!(timeout.is_temporary());
    /// assert!(!Error::Cancelled.is_temporary());
    /// ```
    pub fn is_temporary(&self) -> bool {
        // No wildcard: a new variant does not compile until it is classified.
        match self {
            Error::Connect { source, .. } => is_temporary_io(source.kind()),
            Error::Resolve { source, .. } => source.is_temporary(),
            Error::Io(e) => is_temporary_io(e.kind()),
            #[cfg(feature = "tls")]
            Error::Tls(_) => false,
            Error::Protocol(_) | Error::InvalidRequest(_) => false,
            Error::Timeout { .. } | Error::ConnectionClosed { .. } => true,
            Error::Poisoned { cause, .. } => cause.is_temporary(),
            Error::BufferFull { .. } | Error::Cancelled | Error::State(_) => false,
            Error::InvalidProxy(_) => false,
            // The proxy could not reach the origin, or is overloaded, for now.
            Error::ProxyRefused { status, .. } => matches!(status.as_u16(), 408 | 429 | 502..=504),
            Error::ProxyTunnel(failure) => match failure {
                TunnelFailure::Closed => true,
                TunnelFailure::Protocol(_) | TunnelFailure::EarlyData => false,
            },
        }
    }

    /// Requests that were sent but not answered, for errors that report them.
    pub fn unanswered(&self) -> &[InFlight] {
        match self {
            Error::ConnectionClosed { unanswered, .. } | Error::Poisoned { unanswered, .. } => {
                unanswered
            }
            _ => &[],
        }
    }
}

/// Whether a socket error of this kind is the network's or the peer's passing failure.
fn is_temporary_io(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | BrokenPipe
            | TimedOut
            | Interrupted
            | WouldBlock
            | UnexpectedEof
            | WriteZero
            | HostUnreachable
            | NetworkUnreachable
            | NetworkDown
            | AddrNotAvailable
            | ResourceBusy
    )
}

/// `host:port`, with an IPv6 literal in brackets.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn unanswered_note(unanswered: &[InFlight]) -> String {
    match unanswered.len() {
        0 => String::new(),
        1 => format!(" with 1 request unanswered ({})", unanswered[0]),
        n => format!(" with {n} requests unanswered (first: {})", unanswered[0]),
    }
}

impl From<io::Error> for Error {
    /// An I/O error, or the TLS error the transport carried inside one.
    fn from(e: io::Error) -> Self {
        #[cfg(feature = "tls")]
        if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
            let kind = e.kind();
            return match e
                .into_inner()
                .map(|inner| inner.downcast::<rustls::Error>())
            {
                Some(Ok(tls)) => Error::Tls(*tls),
                Some(Err(other)) => Error::Io(io::Error::new(kind, other)),
                None => Error::Io(kind.into()),
            };
        }
        Error::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Io(inner) => inner.kind(),
            Error::Connect { source, .. } => source.kind(),
            Error::Resolve { source, .. } => match source {
                crate::DnsError::NotFound => io::ErrorKind::NotFound,
                crate::DnsError::Io(inner) => inner.kind(),
                _ => io::ErrorKind::Other,
            },
            Error::Timeout { .. } => io::ErrorKind::TimedOut,
            Error::ConnectionClosed { .. } => io::ErrorKind::ConnectionAborted,
            Error::Protocol(_) | Error::Poisoned { .. } => io::ErrorKind::InvalidData,
            Error::InvalidRequest(_) => io::ErrorKind::InvalidInput,
            #[cfg(feature = "tls")]
            Error::Tls(_) => io::ErrorKind::InvalidData,
            Error::State(_) | Error::BufferFull { .. } => io::ErrorKind::Other,
            Error::Cancelled => io::ErrorKind::Interrupted,
            Error::InvalidProxy(_) => io::ErrorKind::InvalidInput,
            Error::ProxyRefused { .. } => io::ErrorKind::ConnectionRefused,
            Error::ProxyTunnel(TunnelFailure::Closed) => io::ErrorKind::ConnectionAborted,
            Error::ProxyTunnel(_) => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// The blocking operation that ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Resolving the host name (within the connect timeout).
    Resolve,
    /// Connecting.
    Connect,
    /// Sending a request head or in-memory body.
    SendRequest,
    /// Waiting for `100 Continue`.
    AwaitContinue,
    /// Writing a request body.
    WriteBody,
    /// Reading a response head.
    ReadResponse,
    /// Reading a response body.
    ReadBody,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Resolve => "resolving the host name",
            Operation::Connect => "connecting",
            Operation::SendRequest => "sending a request",
            Operation::AwaitContinue => "waiting for 100 Continue",
            Operation::WriteBody => "writing a request body",
            Operation::ReadResponse => "reading a response head",
            Operation::ReadBody => "reading a response body",
        })
    }
}

/// Where the server closed the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClosePhase {
    /// Before any byte of the next response.
    BeforeResponse,
    /// Inside a response head.
    InHead,
    /// Inside a response body, which is therefore truncated.
    InBody,
    /// While a request was being written.
    WhileSending,
    /// After a response that announced the close (`Connection: close`, or HTTP/1.0 without
    /// keep-alive); the requests behind it were never processed.
    Announced,
}

impl fmt::Display for ClosePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClosePhase::BeforeResponse => "before the response",
            ClosePhase::InHead => "inside a response head",
            ClosePhase::InBody => "inside a response body",
            ClosePhase::WhileSending => "while a request was being sent",
            ClosePhase::Announced => "as announced by an earlier response",
        })
    }
}

/// Why a connection was poisoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoisonCause {
    /// The server broke the protocol.
    #[error("invalid response")]
    Protocol(#[source] ProtocolError),
    /// A timeout hit after part of a request had been written.
    #[error("timed out {0}")]
    Timeout(Operation),
    /// A socket error with this kind.
    #[error("i/o error: {0}")]
    Io(io::ErrorKind),
    /// Too many response bytes arrived while a request was being sent.
    #[error("more than {limit} response bytes arrived while sending")]
    BufferFull {
        /// The configured bound.
        limit: usize,
    },
    /// A request body's source (the reader given to `sendfile_cofun`) failed or ended before the
    /// declared length, after part of the body went out.
    #[error("the request body source failed")]
    BodySource,
    /// The TLS session failed after part of a request or response went through it.
    #[error("tls error")]
    Tls,
    /// A cofunction was dropped after part of its bytes went out.
    #[error("a cofunction was dropped mid-send")]
    Cancelled,
    /// The server closed the connection in the middle of a response.
    #[error("connection closed {0}")]
    Closed(ClosePhase),
}

impl PoisonCause {
    /// Whether the failure that poisoned the connection may pass (see
    /// [`Error::is_temporary`]).
    pub fn is_temporary(&self) -> bool {
        match self {
            PoisonCause::Timeout(_) | PoisonCause::Closed(_) => true,
            PoisonCause::Io(kind) => is_temporary_io(*kind),
            PoisonCause::Protocol(_)
            | PoisonCause::BufferFull { .. }
            | PoisonCause::BodySource
            | PoisonCause::Tls
            | PoisonCause::Cancelled => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message in an error's chain, outermost first.
    fn chain(e: &dyn std::error::Error) -> Vec<String> {
        let mut out = vec![e.to_string()];
        let mut next = e.source();
        while let Some(cause) = next {
            out.push(cause.to_string());
            next = cause.source();
        }
        out
    }

    /// No level of an error chain repeats the message of the level below it: each Display
    /// says only what happened at its own level. A new variant must be added here.
    #[test]
    fn no_variant_repeats_its_cause() {
        let request = InFlight {
            method: http::Method::GET,
            target: "/a".into(),
        };
        let errors = [
            Error::Connect {
                host: "::1".into(),
                port: 80,
                source: io::ErrorKind::ConnectionRefused.into(),
            },
            Error::Resolve {
                host: "gone.test".into(),
                source: crate::DnsError::NotFound,
            },
            Error::Io(io::Error::other("disk on fire")),
            Error::Protocol(ProtocolError::InvalidChunkSize),
            Error::InvalidRequest(RequestError::InvalidTarget),
            Error::Timeout {
                operation: Operation::ReadBody,
                after: Duration::from_secs(1),
            },
            Error::ConnectionClosed {
                phase: ClosePhase::InBody,
                unanswered: vec![request.clone()],
            },
            Error::Poisoned {
                cause: PoisonCause::Protocol(ProtocolError::MissingChunkCrlf),
                unanswered: vec![request],
            },
            Error::BufferFull { limit: 10 },
            Error::Cancelled,
            Error::State(StateError::BodyTooLong),
            Error::InvalidProxy(ProxyUrlError::UnsupportedScheme),
            Error::ProxyRefused {
                status: http::StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                proxy_authenticate: vec![http::HeaderValue::from_static("Basic realm=\"p\"")],
            },
            Error::ProxyTunnel(TunnelFailure::Closed),
            Error::ProxyTunnel(TunnelFailure::Protocol(ProtocolError::SwitchingProtocols)),
        ];
        for e in &errors {
            let messages = chain(e);
            for pair in messages.windows(2) {
                assert!(
                    !pair[0].contains(&pair[1]),
                    "{e:?}: {:?} repeats its cause {:?}",
                    pair[0],
                    pair[1]
                );
            }
            assert!(messages.iter().all(|m| !m.is_empty() && !m.ends_with('.')));
            // Nothing is lost on the way through io::Error.
            let io = io::Error::from(match e {
                Error::Cancelled => Error::Cancelled,
                Error::State(s) => Error::State(*s),
                _ => continue,
            });
            assert!(io.get_ref().is_some());
        }
        assert_eq!(
            chain(&errors[10]),
            [
                "the call does not fit the connection's state",
                "write exceeds the declared content-length"
            ]
        );
    }

    /// `fn $name(&$ty) -> &'static str`, naming the variant by an exhaustive match, and
    /// `fn $all() -> Vec<&'static str>`, every name that match can give: one list makes both,
    /// so a variant named in the match is in the list.
    macro_rules! names {
        ($name:ident, $all:ident, $ty:ty; $($(#[$attr:meta])* $pat:pat => $text:literal,)*) => {
            fn $name(e: &$ty) -> &'static str {
                match e {
                    $($(#[$attr])* $pat => $text,)*
                }
            }

            // Pushes, not `vec![]`: a variant's `#[cfg]` can leave out a statement.
            #[allow(clippy::vec_init_then_push)]
            fn $all() -> Vec<&'static str> {
                let mut all = Vec::new();
                $($(#[$attr])* all.push($text);)*
                all
            }
        };
    }

    names! { error_name, error_names, Error;
        Error::Connect { .. } => "Connect",
        Error::Resolve { .. } => "Resolve",
        Error::Io(_) => "Io",
        #[cfg(feature = "tls")]
        Error::Tls(_) => "Tls",
        Error::Protocol(_) => "Protocol",
        Error::InvalidRequest(_) => "InvalidRequest",
        Error::Timeout { .. } => "Timeout",
        Error::ConnectionClosed { .. } => "ConnectionClosed",
        Error::Poisoned { .. } => "Poisoned",
        Error::BufferFull { .. } => "BufferFull",
        Error::Cancelled => "Cancelled",
        Error::State(_) => "State",
        Error::InvalidProxy(_) => "InvalidProxy",
        Error::ProxyRefused { .. } => "ProxyRefused",
        Error::ProxyTunnel(_) => "ProxyTunnel",
    }

    names! { dns_name, dns_names, crate::DnsError;
        crate::DnsError::NotFound => "Resolve::NotFound",
        crate::DnsError::Temporary => "Resolve::Temporary",
        crate::DnsError::Failed(_) => "Resolve::Failed",
        crate::DnsError::Io(_) => "Resolve::Io",
    }

    names! { poison_name, poison_names, PoisonCause;
        PoisonCause::Protocol(_) => "Poisoned::Protocol",
        PoisonCause::Timeout(_) => "Poisoned::Timeout",
        PoisonCause::Io(_) => "Poisoned::Io",
        PoisonCause::BufferFull { .. } => "Poisoned::BufferFull",
        PoisonCause::BodySource => "Poisoned::BodySource",
        PoisonCause::Tls => "Poisoned::Tls",
        PoisonCause::Cancelled => "Poisoned::Cancelled",
        PoisonCause::Closed(_) => "Poisoned::Closed",
    }

    names! { tunnel_name, tunnel_names, TunnelFailure;
        TunnelFailure::Closed => "ProxyTunnel::Closed",
        TunnelFailure::Protocol(_) => "ProxyTunnel::Protocol",
        TunnelFailure::EarlyData => "ProxyTunnel::EarlyData",
    }

    /// The variant of `e`, and of the cause it carries where `is_temporary` asks the cause.
    fn variants(e: &Error) -> Vec<&'static str> {
        let inner = match e {
            Error::Resolve { source, .. } => Some(dns_name(source)),
            Error::Poisoned { cause, .. } => Some(poison_name(cause)),
            Error::ProxyTunnel(failure) => Some(tunnel_name(failure)),
            _ => None,
        };
        [error_name(e)].into_iter().chain(inner).collect()
    }

    /// `is_temporary` over every variant (its `match` has no wildcard, so a new variant
    /// must be classified there first, then named in `names!`, and then given a row here).
    #[test]
    fn temporary_and_permanent_errors() {
        let request = InFlight {
            method: http::Method::GET,
            target: "/a".into(),
        };
        let connect = |kind: io::ErrorKind| Error::Connect {
            host: "h".into(),
            port: 1,
            source: kind.into(),
        };
        let resolve = |source| Error::Resolve {
            host: "h".into(),
            source,
        };
        let poisoned = |cause| Error::Poisoned {
            cause,
            unanswered: vec![request.clone()],
        };
        let refused = |status: u16| Error::ProxyRefused {
            status: http::StatusCode::from_u16(status).expect("a status"),
            proxy_authenticate: Vec::new(),
        };
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut table: Vec<(Error, bool)> = vec![
            (connect(io::ErrorKind::ConnectionRefused), true),
            (connect(io::ErrorKind::TimedOut), true),
            (connect(io::ErrorKind::NetworkUnreachable), true),
            (connect(io::ErrorKind::HostUnreachable), true),
            (connect(io::ErrorKind::PermissionDenied), false),
            (resolve(crate::DnsError::Temporary), true),
            (
                resolve(crate::DnsError::Io(io::ErrorKind::Other.into())),
                true,
            ),
            (resolve(crate::DnsError::NotFound), false),
            (resolve(crate::DnsError::Failed("x".into())), false),
            (Error::Io(io::ErrorKind::ConnectionReset.into()), true),
            (Error::Io(io::ErrorKind::BrokenPipe.into()), true),
            (Error::Io(io::ErrorKind::InvalidData.into()), false),
            (Error::Protocol(ProtocolError::InvalidChunkSize), false),
            (Error::InvalidRequest(RequestError::InvalidTarget), false),
            (
                Error::Timeout {
                    operation: Operation::Resolve,
                    after: Duration::from_secs(1),
                },
                true,
            ),
            (
                Error::ConnectionClosed {
                    phase: ClosePhase::BeforeResponse,
                    unanswered: vec![request.clone()],
                },
                true,
            ),
            (poisoned(PoisonCause::Timeout(Operation::ReadBody)), true),
            (poisoned(PoisonCause::Closed(ClosePhase::InBody)), true),
            (
                poisoned(PoisonCause::Io(io::ErrorKind::ConnectionReset)),
                true,
            ),
            (poisoned(PoisonCause::Io(io::ErrorKind::InvalidData)), false),
            (
                poisoned(PoisonCause::Protocol(ProtocolError::InvalidChunkSize)),
                false,
            ),
            (poisoned(PoisonCause::BufferFull { limit: 1 }), false),
            (poisoned(PoisonCause::BodySource), false),
            (poisoned(PoisonCause::Tls), false),
            (poisoned(PoisonCause::Cancelled), false),
            (Error::BufferFull { limit: 1 }, false),
            (Error::Cancelled, false),
            (Error::State(StateError::BodyTooLong), false),
            (Error::InvalidProxy(ProxyUrlError::UnsupportedScheme), false),
            (refused(407), false),
            (refused(403), false),
            (refused(502), true),
            (refused(503), true),
            (refused(504), true),
            (Error::ProxyTunnel(TunnelFailure::Closed), true),
            (Error::ProxyTunnel(TunnelFailure::EarlyData), false),
            (
                Error::ProxyTunnel(TunnelFailure::Protocol(ProtocolError::InvalidChunkSize)),
                false,
            ),
        ];
        #[cfg(feature = "tls")]
        table.push((
            Error::Tls(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
            false,
        ));
        for (e, temporary) in &table {
            assert_eq!(e.is_temporary(), *temporary, "{e:?}");
        }
        // Every variant, and every variant of the causes it carries, has a row.
        let mut rows: Vec<&str> = table.iter().flat_map(|(e, _)| variants(e)).collect();
        rows.sort_unstable();
        rows.dedup();
        let mut all = [error_names(), dns_names(), poison_names(), tunnel_names()].concat();
        all.sort_unstable();
        assert_eq!(rows, all);
    }
}
