//! Proxy settings: which HTTP proxy an origin goes through, and with which credentials.
//!
//! Plain data and pure functions: parsing proxy URLs, `NO_PROXY` rules, reading the
//! environment through a lookup the caller passes. Nothing here touches a socket; the
//! connection uses a [`Proxy`] when it opens (see `connection::connect`).

mod basic;
mod env;
mod error;
mod no_proxy;
mod url;

use std::fmt;

use http::HeaderValue;

pub use error::{ProxyUrlError, TunnelFailure};
pub use no_proxy::NoProxy;

use crate::error::Error;
use crate::proto::{Origin, Scheme};

/// An HTTP proxy: its host and port, the credentials it wants, and how `http://` origins go
/// through it.
///
/// Only `http://` proxies are supported (the connection to the proxy itself is plain TCP);
/// [`parse`](Self::parse) refuses `https://` and SOCKS proxies with
/// [`ProxyUrlError::UnsupportedScheme`].
///
/// - `https://` origins always go through a `CONNECT` tunnel: the proxy sees the target's
///   host and port, never the requests, and TLS runs end to end through the tunnel.
/// - `http://` origins are sent to the proxy with absolute-form targets
///   (`GET http://host:port/path HTTP/1.1`), unless [`HttpVia::Tunnel`] asks for a tunnel.
///
/// Credentials (Basic, RFC 7617) go only to the proxy: in `Proxy-Authorization` on the
/// `CONNECT` request, or on each absolute-form request. Requests through a tunnel never carry
/// them. `Debug` does not show them.
///
/// ```
/// # let server = dugong_harness::LoopbackServer::start();
/// # let proxy_server = dugong_harness::ForwardProxy::start();
/// # let (port, proxy_port) = (server.port(), proxy_server.port());
/// use dugong::{Body, Config, HttpConnection, Proxy};
/// use http::{HeaderMap, Method};
///
/// let proxy = Proxy::parse(&format!("http://user:secret@127.0.0.1:{proxy_port}"))?;
/// let conn = HttpConnection::with_config("127.0.0.1", port, Config::default().proxy(proxy))?;
/// conn.send_request(&Method::GET, "/bytes/3", &HeaderMap::new(), Body::Empty)?;
/// conn.read_response()?;
/// assert_eq!(conn.read_all()?, b"abc");
/// # assert!(proxy_server.heads()[0].starts_with(&format!("GET http://127.0.0.1:{port}/bytes/3 ")));
/// # Ok::<(), dugong::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// A name or an IP address (an IPv6 literal without brackets).
    host: String,
    port: u16,
    /// `Basic …`, marked sensitive.
    authorization: Option<HeaderValue>,
    http_via: HttpVia,
}

/// How requests to `http://` origins go through a [`Proxy`] (`https://` origins always
/// use a tunnel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HttpVia {
    /// Each request goes to the proxy with an absolute-form target (RFC 9112 §3.2.2), and the
    /// proxy forwards it. The default.
    #[default]
    AbsoluteForm,
    /// A `CONNECT` tunnel to the origin, as for `https://`: the proxy sees only the host and
    /// port, and the requests go through unchanged (in origin-form, without credentials).
    Tunnel,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.has_credentials())
            .field("http_via", &self.http_via)
            .finish()
    }
}

impl Proxy {
    /// The proxy at `host:port`, without credentials; an IPv6 literal may be given with or
    /// without brackets. Nothing is resolved until a connection opens.
    pub fn new(host: &str, port: u16) -> Proxy {
        let host = Origin::new(Scheme::Http, host, port).host;
        Proxy {
            host,
            port,
            authorization: None,
            http_via: HttpVia::default(),
        }
    }

    /// Reads a proxy URL, `http://[user[:password]@]host[:port][/]`: port 80 by default;
    /// user and password percent-decoded. A URL without a scheme (`host:port`) is taken as
    /// `http://`, as curl does.
    ///
    /// ```
    /// let proxy = dugong::Proxy::parse("http://me:p%40ss@[::1]:3128/")?;
    /// assert_eq!((proxy.host(), proxy.port(), proxy.has_credentials()), ("::1", 3128, true));
    /// assert_eq!(dugong::Proxy::parse("proxy.example")?.port(), 80);
    /// assert!(dugong::Proxy::parse("socks5://127.0.0.1:1080").is_err());
    /// # Ok::<(), dugong::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidProxy`] with
    /// - [`ProxyUrlError::UnsupportedScheme`] for `https://`, `socks4://`, `socks5://` or
    ///   any other scheme than `http://`;
    /// - [`ProxyUrlError::InvalidUrl`] for an empty host or one a URL cannot have (as for
    ///   [`HttpConnection::new`](crate::HttpConnection::new): spaces, controls, brackets
    ///   around anything but an IPv6 address), a bad port, a path, or an unclosed IPv6
    ///   bracket;
    /// - [`ProxyUrlError::InvalidCredentials`] for bad percent-encoding in the user info.
    pub fn parse(url: &str) -> Result<Proxy, Error> {
        url::parse(url).map_err(Error::InvalidProxy)
    }

    /// Sends Basic credentials to the proxy (replacing any from the URL).
    pub fn basic_auth(mut self, user: &str, password: &str) -> Proxy {
        self.authorization = Some(basic::authorization(user.as_bytes(), password.as_bytes()));
        self
    }

    /// Chooses how `http://` origins go through the proxy (default
    /// [`HttpVia::AbsoluteForm`]).
    pub fn http_via(mut self, via: HttpVia) -> Proxy {
        self.http_via = via;
        self
    }

    /// The proxy's host (an IPv6 literal without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether credentials are sent to the proxy.
    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some()
    }

    /// How `http://` origins go through the proxy.
    pub fn via(&self) -> HttpVia {
        self.http_via
    }

    /// The `Proxy-Authorization` value, if credentials were given.
    pub(crate) fn authorization(&self) -> Option<&HeaderValue> {
        self.authorization.as_ref()
    }

    /// Whether requests to `origin` go through a tunnel rather than in absolute-form.
    pub(crate) fn tunnels(&self, origin: &Origin) -> bool {
        origin.scheme == Scheme::Https || self.http_via == HttpVia::Tunnel
    }
}

/// Which proxy each origin goes through: one for `http://` origins, one for `https://`,
/// and the hosts that go direct ([`NoProxy`]). The default is no proxy at all.
///
/// ```
/// use dugong::{NoProxy, Origin, Proxies, Proxy, Scheme};
///
/// let proxies = Proxies::all(Proxy::new("10.0.0.1", 3128))
///     .no_proxy(NoProxy::parse("localhost, .internal.example"));
/// let via = |host| proxies.for_origin(&Origin::new(Scheme::Https, host, 443)).map(Proxy::host);
/// assert_eq!(via("example.com"), Some("10.0.0.1"));
/// assert_eq!(via("db.internal.example"), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: NoProxy,
}

impl Proxies {
    /// Every origin through `proxy`.
    pub fn all(proxy: Proxy) -> Proxies {
        Proxies {
            http: Some(proxy.clone()),
            https: Some(proxy),
            no_proxy: NoProxy::default(),
        }
    }

    /// `http://` origins through `proxy` (`None`: direct).
    pub fn http(mut self, proxy: Option<Proxy>) -> Proxies {
        self.http = proxy;
        self
    }

    /// `https://` origins through `proxy` (`None`: direct).
    pub fn https(mut self, proxy: Option<Proxy>) -> Proxies {
        self.https = proxy;
        self
    }

    /// Hosts that go direct, whatever their scheme.
    pub fn no_proxy(mut self, no_proxy: NoProxy) -> Proxies {
        self.no_proxy = no_proxy;
        self
    }

    /// The proxies named by the process environment, with curl's rules: see
    /// [`from_lookup`](Self::from_lookup).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidProxy`] when a variable that is used holds a proxy URL that
    /// [`Proxy::parse`] refuses.
    pub fn from_env() -> Result<Proxies, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The proxies named by environment variables, read through `lookup` (a variable's
    /// value, or `None` when unset), with curl's rules; the first variable set wins:
    ///
    /// - `http://` origins: `http_proxy`, else `all_proxy`, else `ALL_PROXY`. Uppercase
    ///   `HTTP_PROXY` is never read, as in curl: in a CGI program it holds the request's
    ///   `Proxy:` header ("httpoxy");
    /// - `https://` origins: `https_proxy`, else `HTTPS_PROXY`, else `all_proxy`, else
    ///   `ALL_PROXY`;
    /// - hosts that go direct, whatever the scheme: `no_proxy`, else `NO_PROXY` (rules in
    ///   [`NoProxy`]).
    ///
    /// A value that is empty or only whitespace counts as unset, so the next variable is read
    /// (curl skips only empty ones); whitespace around a proxy URL is ignored.
    ///
    /// ```
    /// use dugong::{Origin, Proxies, Scheme};
    ///
    /// let env = [
    ///     ("https_proxy", "http://proxy:3128"),
    ///     ("HTTP_PROXY", "http://never-read:8080"),
    ///     ("NO_PROXY", "localhost, 10.0.0.0/8"),
    /// ];
    /// let lookup = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
    /// let proxies = Proxies::from_lookup(lookup)?;
    /// let origin = Origin::new(Scheme::Https, "example.com", 443);
    /// assert_eq!(proxies.for_origin(&origin).map(|p| p.port()), Some(3128));
    /// assert!(proxies.for_origin(&Origin::new(Scheme::Http, "example.com", 80)).is_none());
    /// assert!(proxies.for_origin(&Origin::new(Scheme::Https, "10.1.2.3", 443)).is_none());
    /// # Ok::<(), dugong::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Proxies, Error> {
        env::proxies(lookup)
    }

    /// The proxy `origin` goes through, or `None` to connect directly.
    pub fn for_origin(&self, origin: &Origin) -> Option<&Proxy> {
        let proxy = match origin.scheme {
            Scheme::Http => self.http.as_ref(),
            Scheme::Https => self.https.as_ref(),
        }?;
        (!self.no_proxy.matches(&origin.host)).then_some(proxy)
    }
}
