//! `NO_PROXY`: the hosts that go direct, with curl's rules.

use std::net::IpAddr;

/// Hosts that bypass the proxy, read from a `NO_PROXY`-style list with curl's rules:
///
/// - entries are separated by commas (surrounding spaces are ignored);
/// - `*` alone matches every host;
/// - a name matches itself and every subdomain, with or without a leading dot
///   (`example.com` and `.example.com` both match `example.com` and `www.example.com`,
///   never `badexample.com`);
/// - an IP literal matches that address only (`::1` and `[::1]` alike); no CIDR ranges;
/// - matching ignores ASCII case and a trailing dot, and entries carry no port: one given
///   (`host:8080`) is ignored, so the entry matches the host on every port.
///
/// ```
/// use dugong::NoProxy;
///
/// let no_proxy = NoProxy::parse("localhost, .corp.example, 10.0.0.7, [::1]");
/// assert!(no_proxy.matches("LOCALHOST"));
/// assert!(no_proxy.matches("build.corp.example"));
/// assert!(no_proxy.matches("corp.example"));
/// assert!(no_proxy.matches("::1"));
/// assert!(!no_proxy.matches("10.0.0.70"));
/// assert!(!no_proxy.matches("notcorp.example"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// `*`.
    Everything,
    /// An IP literal: exact match.
    Ip(IpAddr),
    /// A name, lowercase, without leading or trailing dots: itself and its subdomains.
    Domain(String),
}

impl NoProxy {
    /// Reads a comma-separated list (see the rules above). Never fails: an entry that is
    /// neither `*` nor an IP literal is a name, which may simply match nothing.
    pub fn parse(list: &str) -> NoProxy {
        let entries = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .filter_map(entry)
            .collect();
        NoProxy { entries }
    }

    /// Whether `host` (a name, or an IP literal with or without brackets) goes direct.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ip = bare.parse::<IpAddr>().ok();
        self.entries.iter().any(|entry| match entry {
            Entry::Everything => true,
            Entry::Ip(addr) => ip == Some(*addr),
            // A name never matches an address by suffix (`0.1` is not a parent of `10.0.0.1`).
            Entry::Domain(domain) => ip.is_none() && is_within(host, domain),
        })
    }

    /// Whether no host goes direct.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn entry(text: &str) -> Option<Entry> {
    if text == "*" {
        return Some(Entry::Everything);
    }
    if let Some(v6) = text.strip_prefix('[') {
        // `[addr]` or `[addr]:port`.
        let addr = v6.split_once(']').map_or(v6, |(addr, _)| addr);
        return addr.parse().ok().map(Entry::Ip);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(Entry::Ip(ip));
    }
    // `host:port`: the port is ignored.
    let name = text.split_once(':').map_or(text, |(name, _)| name);
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Some(Entry::Ip(ip));
    }
    let name = name.trim_start_matches('.').trim_end_matches('.');
    (!name.is_empty()).then(|| Entry::Domain(name.to_ascii_lowercase()))
}

/// Whether `host` is `domain` or one of its subdomains, ignoring ASCII case.
fn is_within(host: &str, domain: &str) -> bool {
    let (host, domain) = (host.as_bytes(), domain.as_bytes());
    if host.len() < domain.len() {
        return false;
    }
    let split = host.len() - domain.len();
    host[split..].eq_ignore_ascii_case(domain) && (split == 0 || host[split - 1] == b'.')
}
