//! How a connection reaches its origin: directly, or through a proxy — forwarding each
//! request in absolute-form, or through a `CONNECT` tunnel. Chosen once, when the connection
//! is made; everything above the socket (the driver) only asks it for the request target.

use http::HeaderValue;

use crate::error::Error;
use crate::proto::{connect_authority, Origin};
use crate::{Proxies, Proxy};

/// The way to the origin.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    /// Straight to the origin.
    Direct,
    /// To the proxy, which forwards each request: targets in absolute-form (RFC 9112
    /// §3.2.2), the proxy's credentials on every request.
    Forward {
        proxy: Proxy,
        /// `http://host[:port]`, which the origin-form target follows.
        prefix: String,
    },
    /// To the proxy, then a `CONNECT` tunnel to the origin; requests go through unchanged.
    Tunnel {
        proxy: Proxy,
        /// `host:port` of the origin, the `CONNECT` target.
        authority: HeaderValue,
    },
}

impl Route {
    /// The route to `origin` (whose `Host` header is `host_header`) under `proxies`.
    pub(crate) fn new(
        origin: &Origin,
        host_header: &HeaderValue,
        proxies: &Proxies,
    ) -> Result<Route, Error> {
        let Some(proxy) = proxies.for_origin(origin) else {
            return Ok(Route::Direct);
        };
        let proxy = proxy.clone();
        if proxy.tunnels(origin) {
            let authority = connect_authority(&origin.host, origin.port)?;
            return Ok(Route::Tunnel { proxy, authority });
        }
        // The `Host` header is visible ASCII (checked when it was made).
        let host = host_header
            .to_str()
            .map_err(|_| crate::proto::RequestError::InvalidHost)?;
        Ok(Route::Forward {
            proxy,
            prefix: format!("http://{host}"),
        })
    }

    /// The host and port to connect to: the proxy's, or the origin's.
    pub(crate) fn first_hop<'a>(&'a self, origin: &'a Origin) -> (&'a str, u16) {
        match self {
            Route::Direct => (&origin.host, origin.port),
            Route::Forward { proxy, .. } | Route::Tunnel { proxy, .. } => {
                (proxy.host(), proxy.port())
            }
        }
    }

    /// The request target to send for the caller's `target`: unchanged, or (to a forward
    /// proxy) in absolute-form, written into `buf`. An origin-form target gets the prefix;
    /// `*` becomes the bare prefix (RFC 9112 §3.2.4); anything else (already absolute) is
    /// sent as given.
    pub(crate) fn request_target<'a>(&self, target: &'a str, buf: &'a mut String) -> &'a str {
        let Route::Forward { prefix, .. } = self else {
            return target;
        };
        let path = match target {
            "*" => "",
            t if t.starts_with('/') => t,
            _ => return target,
        };
        buf.clear();
        buf.push_str(prefix);
        buf.push_str(path);
        buf
    }

    /// The credentials every request carries: a forward proxy's (a tunnel's go on the
    /// `CONNECT` only).
    pub(crate) fn request_credentials(&self) -> Option<&HeaderValue> {
        match self {
            Route::Forward { proxy, .. } => proxy.authorization(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Scheme;
    use crate::HttpVia;

    fn route(origin: &Origin, proxy: Proxy) -> Route {
        let host = origin.host_header().expect("valid");
        Route::new(origin, &host, &Proxies::all(proxy)).expect("valid")
    }

    #[test]
    fn absolute_form_targets() {
        let proxy = Proxy::new("p", 3128);
        let mut buf = String::new();
        for (origin, target, want) in [
            (
                Origin::new(Scheme::Http, "h", 8080),
                "/a?b",
                "http://h:8080/a?b",
            ),
            (Origin::new(Scheme::Http, "h", 80), "/", "http://h/"),
            (
                Origin::new(Scheme::Http, "::1", 8080),
                "/x",
                "http://[::1]:8080/x",
            ),
            (Origin::new(Scheme::Http, "::1", 80), "/x", "http://[::1]/x"),
            (Origin::new(Scheme::Http, "h", 81), "*", "http://h:81"),
            (
                Origin::new(Scheme::Http, "h", 81),
                "http://h:81/y",
                "http://h:81/y",
            ),
        ] {
            let route = route(&origin, proxy.clone());
            assert_eq!(route.request_target(target, &mut buf), want);
            assert_eq!(route.first_hop(&origin), ("p", 3128));
        }
    }

    #[test]
    fn tunnels_for_https_and_on_request() {
        let proxy = Proxy::new("p", 3128).basic_auth("u", "p");
        let https = Origin::new(Scheme::Https, "::1", 443);
        let http = Origin::new(Scheme::Http, "h", 80);
        let mut buf = String::new();
        for (origin, proxy, authority) in [
            (&https, proxy.clone(), "[::1]:443"),
            (&http, proxy.clone().http_via(HttpVia::Tunnel), "h:80"),
        ] {
            let route = route(origin, proxy);
            assert!(matches!(&route, Route::Tunnel { authority: a, .. } if a == authority));
            assert_eq!(route.request_target("/a", &mut buf), "/a");
            assert!(
                route.request_credentials().is_none(),
                "never through a tunnel"
            );
        }
        let forward = super::Route::new(
            &http,
            &http.host_header().expect("valid"),
            &Proxies::all(proxy),
        );
        assert!(forward.expect("valid").request_credentials().is_some());
    }

    #[test]
    fn no_proxy_and_unset_schemes_go_direct() {
        let origin = Origin::new(Scheme::Https, "h", 443);
        let host = origin.host_header().expect("valid");
        let proxies = Proxies::default().http(Some(Proxy::new("p", 1)));
        assert!(matches!(
            Route::new(&origin, &host, &proxies),
            Ok(Route::Direct)
        ));
        let proxies = Proxies::all(Proxy::new("p", 1)).no_proxy(crate::NoProxy::parse("h"));
        assert!(matches!(
            Route::new(&origin, &host, &proxies),
            Ok(Route::Direct)
        ));
    }
}
