//! Proxies from environment variables, read through a lookup so that nothing here depends
//! on (or changes) the process environment.

use super::{NoProxy, Proxies, Proxy};
use crate::error::Error;

/// The variables that name the proxy for `http://` origins, first set one wins.
const HTTP: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];
/// The variables for `https://` origins.
const HTTPS: [&str; 4] = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
/// The variables listing hosts that go direct.
const NO_PROXY: [&str; 2] = ["no_proxy", "NO_PROXY"];

/// Reads [`Proxies`] from the variables `lookup` finds (see [`Proxies::from_lookup`]).
pub(super) fn proxies(lookup: impl Fn(&str) -> Option<String>) -> Result<Proxies, Error> {
    let value = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    // In a CGI program `HTTP_PROXY` comes from the request's `Proxy:` header ("httpoxy").
    let cgi = value("REQUEST_METHOD").is_some();
    let first = |names: &[&str]| {
        names
            .iter()
            .filter(|name| !(cgi && **name == "HTTP_PROXY"))
            .find_map(|name| value(name))
    };
    let proxy = |names: &[&str]| first(names).map(|url| Proxy::parse(url.trim())).transpose();
    Ok(Proxies {
        http: proxy(&HTTP)?,
        https: proxy(&HTTPS)?,
        no_proxy: first(&NO_PROXY)
            .map(|list| NoProxy::parse(&list))
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::proto::{Origin, Scheme};
    use crate::proxy::ProxyUrlError;

    /// `(http proxy "host:port", https proxy "host:port")` that `env` gives for origins on
    /// `example.com`.
    fn read(env: &[(&str, &str)]) -> Result<(Option<String>, Option<String>), Error> {
        let proxies = proxies(|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })?;
        let via = |scheme| {
            proxies
                .for_origin(&Origin::new(scheme, "example.com", 1))
                .map(|p| format!("{}:{}", p.host(), p.port()))
        };
        Ok((via(Scheme::Http), via(Scheme::Https)))
    }

    #[test]
    fn environment_table() {
        let some = |s: &str| Some(s.to_owned());
        let rows: &[(&[(&str, &str)], Option<String>, Option<String>)] = &[
            (&[], None, None),
            (&[("http_proxy", "http://h:1")], some("h:1"), None),
            (&[("HTTP_PROXY", "http://H:2")], some("H:2"), None),
            // Lowercase wins, as in curl.
            (
                &[
                    ("HTTP_PROXY", "http://up:2"),
                    ("http_proxy", "http://low:1"),
                ],
                some("low:1"),
                None,
            ),
            (
                &[("HTTPS_PROXY", "up:2"), ("https_proxy", "low:1")],
                None,
                some("low:1"),
            ),
            (&[("https_proxy", "http://s:3")], None, some("s:3")),
            // Empty is unset.
            (
                &[("http_proxy", ""), ("HTTP_PROXY", "http://up:2")],
                some("up:2"),
                None,
            ),
            (&[("http_proxy", "  ")], None, None),
            // ALL_PROXY is the fallback for both.
            (&[("ALL_PROXY", "a:4")], some("a:4"), some("a:4")),
            (
                &[("all_proxy", "a:4"), ("https_proxy", "s:3")],
                some("a:4"),
                some("s:3"),
            ),
            // NO_PROXY applies to both schemes; lowercase wins.
            (
                &[("all_proxy", "a:4"), ("NO_PROXY", "example.com")],
                None,
                None,
            ),
            (
                &[
                    ("all_proxy", "a:4"),
                    ("no_proxy", "other.test"),
                    ("NO_PROXY", "example.com"),
                ],
                some("a:4"),
                some("a:4"),
            ),
            (&[("all_proxy", "a:4"), ("no_proxy", "*")], None, None),
            // httpoxy: in a CGI program, HTTP_PROXY is a request header.
            (
                &[("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "evil:1")],
                None,
                None,
            ),
            (
                &[("REQUEST_METHOD", "GET"), ("http_proxy", "ok:1")],
                some("ok:1"),
                None,
            ),
            // Surrounding spaces and a trailing slash are fine; the default port is 80.
            (&[("http_proxy", " http://h/ ")], some("h:80"), None),
        ];
        for (env, http, https) in rows {
            assert_eq!(
                read(env).expect("valid"),
                (http.clone(), https.clone()),
                "{env:?}"
            );
        }
    }

    #[test]
    fn unusable_proxy_urls_are_errors() {
        for (env, want) in [
            (
                ("https_proxy", "socks5://s:1080"),
                ProxyUrlError::UnsupportedScheme,
            ),
            (
                ("HTTP_PROXY", "https://h:443"),
                ProxyUrlError::UnsupportedScheme,
            ),
            (("http_proxy", "http://h:port"), ProxyUrlError::InvalidUrl),
        ] {
            match read(&[env]) {
                Err(Error::InvalidProxy(got)) => assert_eq!(got, want, "{env:?}"),
                other => panic!("{env:?}: {other:?}"),
            }
        }
    }
}
