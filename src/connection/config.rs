//! Connection settings: timeouts and the limits that bound what a server can make us buffer.

use std::sync::Arc;
use std::time::Duration;

use crate::io::{Resolve, SystemResolver};
use crate::proto::Limits;
use crate::{Proxies, Proxy};

/// Settings for an [`HttpConnection`](crate::HttpConnection).
///
/// Built from [`Config::default`] with the builder methods, each named after the field it
/// sets; the fields are public to read (and to set in place). `#[non_exhaustive]`: settings
/// will be added, so start from the default.
///
/// ```
/// use std::time::Duration;
/// let config = dugong::Config::default()
///     .timeout(Some(Duration::from_secs(5)))
///     .max_head_bytes(16 * 1024);
/// assert_eq!(config.timeout, Some(Duration::from_secs(5)));
/// assert_eq!(config.limits.max_head_bytes, 16 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Time allowed to connect (see [`Config::connect_timeout`](Self::connect_timeout())).
    pub connect_timeout: Option<Duration>,
    /// Time allowed for each blocking call (see [`Config::timeout`](Self::timeout())).
    pub timeout: Option<Duration>,
    /// Wait for `100 Continue` (see
    /// [`Config::continue_timeout`](Self::continue_timeout())).
    pub continue_timeout: Option<Duration>,
    /// Bounds on response heads and trailers.
    pub limits: Limits,
    /// Response bytes held while a send waits (see
    /// [`Config::max_buffered`](Self::max_buffered())).
    pub max_buffered: usize,
    /// Whether small request heads and bodies wait to go out together (see
    /// [`Config::coalesce_writes`](Self::coalesce_writes())).
    pub coalesce_writes: bool,
    /// How `https` connections verify the server (see [`TlsConfig`](crate::TlsConfig)).
    #[cfg(feature = "tls")]
    pub tls: crate::TlsConfig,
    /// The proxy each origin goes through (see [`Config::proxies`](Self::proxies())).
    pub proxies: Proxies,
    /// How host names become addresses (see [`Config::resolver`](Self::resolver())).
    pub resolver: Resolver,
}

/// The [`Resolve`] a connection uses, shared. Two are equal when they are the same
/// resolver (the same `Arc`).
#[derive(Debug, Clone)]
pub struct Resolver(pub Arc<dyn Resolve>);

impl PartialEq for Resolver {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Resolver {}

impl Default for Resolver {
    /// The [`SystemResolver`], one shared instance per process.
    fn default() -> Self {
        static SYSTEM: std::sync::OnceLock<Arc<dyn Resolve>> = std::sync::OnceLock::new();
        Resolver(Arc::clone(SYSTEM.get_or_init(|| Arc::new(SystemResolver))))
    }
}

impl Default for Config {
    /// Connect timeout 10 s (it covers the TLS handshake), operation timeout 30 s, 1 s to
    /// wait for `100 Continue`, the [`Limits`] defaults, 16 MiB of response data buffered
    /// while a send waits, coalesced writes, the default `TlsConfig` (with the `tls` feature), and
    /// no proxy (the environment is not read), and the [`SystemResolver`].
    fn default() -> Self {
        Config {
            connect_timeout: Some(Duration::from_secs(10)),
            timeout: Some(Duration::from_secs(30)),
            continue_timeout: Some(Duration::from_secs(1)),
            limits: Limits::default(),
            max_buffered: 16 * 1024 * 1024,
            coalesce_writes: true,
            #[cfg(feature = "tls")]
            tls: crate::TlsConfig::default(),
            proxies: Proxies::default(),
            resolver: Resolver::default(),
        }
    }
}

impl Config {
    /// Time allowed to establish a connection, over all addresses of the host. `None` waits
    /// as long as the OS does; `Some(Duration::ZERO)` is not "forever" but "now or never".
    /// Through a proxy it bounds connecting to the proxy, the `CONNECT` exchange and the TLS
    /// handshake together.
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for each blocking call (`send_request`, `write`, `read_response`, one
    /// `read`, a whole `read_all`), measured from when the call first has to wait. The
    /// deadline is fixed when the call starts waiting, so a server trickling bytes cannot
    /// extend it. `None` disables it; zero allows only calls that need not wait.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a request with `Expect: 100-continue` waits for `100 Continue` before sending
    /// its body anyway (RFC 9110 §10.1.1: servers that ignore the expectation never send it).
    /// `None` waits up to the operation timeout and then fails with
    /// [`Error::Timeout`](crate::Error::Timeout). Default 1 s.
    pub fn continue_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.continue_timeout = timeout;
        self
    }

    /// All the protocol limits at once (see [`Limits`]; the methods below set one each).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Maximum bytes of a response head (default 64 KiB).
    pub fn max_head_bytes(mut self, n: usize) -> Self {
        self.limits.max_head_bytes = n;
        self
    }

    /// Maximum header fields in a response head or trailer section (default 100).
    pub fn max_headers(mut self, n: usize) -> Self {
        self.limits.max_headers = n;
        self
    }

    /// Maximum interim (1xx) responses before a final one (default 8).
    pub fn max_interim_responses(mut self, n: usize) -> Self {
        self.limits.max_interim = n;
        self
    }

    /// Maximum bytes of a chunked body's trailer section (default 16 KiB).
    pub fn max_trailer_bytes(mut self, n: usize) -> Self {
        self.limits.max_trailer_bytes = n;
        self
    }

    /// How `https` connections verify the server: a private CA's roots, or a whole rustls
    /// configuration (default: the webpki-roots trust anchors).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// Maximum response bytes held in memory while a send waits for the socket to drain
    /// (default 16 MiB): a blocking send, or a cofunction whose loop body does not read.
    /// Buffering them is what keeps pipelining from deadlocking against a server that answers
    /// before it reads on; exceeding the bound is
    /// [`Error::BufferFull`](crate::Error::BufferFull).
    pub fn max_buffered(mut self, n: usize) -> Self {
        self.max_buffered = n;
        self
    }

    /// Whether a pipelined request may wait in the connection's queue to go out together
    /// with the requests after it, in one send (default: on). Pipelined requests then cost
    /// one `sendmsg` per batch instead of one each.
    ///
    /// Only a request sent while earlier ones are unanswered, complete in memory (its head
    /// with an empty or [`Body::Bytes`](crate::Body::Bytes) body, up to 16 KiB queued in all,
    /// without `Expect: 100-continue`), is queued: the caller reads to get the earlier
    /// answers, and reading sends the queue. The first request on an idle connection goes
    /// out at once, so a server works on it while the caller does something else.
    ///
    /// Queued bytes never make anyone wait: they go out when the connection next receives or
    /// waits, when [`as_raw_fd`](std::os::fd::AsRawFd::as_raw_fd) or
    /// [`flush`](crate::HttpConnection::flush) is called, when the connection is dropped, or
    /// when the thread waits on any other connection of this crate (a blocking wait, a green
    /// runtime's poll, a `co_*` operation returning [`CoStep::Poll`](crate::CoStep::Poll)).
    /// Only a wait the crate cannot see — `std::thread::sleep`, a channel — needs a
    /// `flush()` first if a request sent just before it must already be on the wire.
    pub fn coalesce_writes(mut self, on: bool) -> Self {
        self.coalesce_writes = on;
        self
    }

    /// Sends every connection through `proxy`: `https://` origins through a `CONNECT`
    /// tunnel, `http://` origins with absolute-form targets (see [`Proxy`]). Shorthand for
    /// `proxies(Proxies::all(proxy))`.
    ///
    /// ```
    /// let proxy = dugong::Proxy::parse("http://user:pass@127.0.0.1:3128")?;
    /// let config = dugong::Config::default().proxy(proxy);
    /// # let _ = config;
    /// # Ok::<(), dugong::Error>(())
    /// ```
    pub fn proxy(self, proxy: Proxy) -> Self {
        self.proxies(Proxies::all(proxy))
    }

    /// Which proxy each origin goes through, per scheme, with hosts that go direct (default:
    /// none). [`Proxies::from_env`] reads them from the environment with curl's rules, the
    /// first variable set (and not blank) winning: `http_proxy` (never `HTTP_PROXY`) or
    /// `https_proxy` then `HTTPS_PROXY`, else `all_proxy` then `ALL_PROXY`; and `no_proxy`
    /// then `NO_PROXY` ([`NoProxy`](crate::NoProxy) has the matching rules).
    ///
    /// ```no_run
    /// let config = dugong::Config::default().proxies(dugong::Proxies::from_env()?);
    /// # let _ = config;
    /// # Ok::<(), dugong::Error>(())
    /// ```
    pub fn proxies(mut self, proxies: Proxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// How host names become addresses (default: [`SystemResolver`], `getaddrinfo(3)`). The
    /// lookup runs on a thread of its own and counts against the connect timeout; IP
    /// literals skip it.
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Resolver(Arc::new(resolver));
        self
    }
}
