//! Proxies from environment variables, read through a lookup so that nothing here depends
//! on (or changes) the process environment.

use super::{NoProxy, Proxies, Proxy};
use crate::error::Error;

/// The variables that name the proxy for `http://` origins, first set one wins. Never
/// `HTTP_PROXY`, as in curl: in a CGI program it holds the request's `Proxy:` header
/// ("httpoxy").
const HTTP: [&str; 3] = ["http_proxy", "all_proxy", "ALL_PROXY"];
/// The variables for `https://` origins.
const HTTPS: [&str; 4] = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
/// The variables listing hosts that go direct.
const NO_PROXY: [&str; 2] = ["no_proxy", "NO_PROXY"];

/// Reads [`Proxies`] from the variables `lookup` finds (see [`Proxies::from_lookup`]).
pub(super) fn proxies(lookup: impl Fn(&str) -> Option<String>) -> Result<Proxies, Error> {
    // A blank value counts as unset, so the next variable is read.
    let first = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| lookup(name).filter(|v| !v.trim().is_empty()))
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
