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
