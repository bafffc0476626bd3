//! `NO_PROXY`: the hosts that go direct, with curl's rules.

use std::net::{IpAddr, Ipv6Addr};

/// Hosts that bypass the proxy, read from a `NO_PROXY`-style list with curl's rules
/// (curl 8.18 and later):
///
/// - the whole list being `*` (blanks around it allowed) matches every host; a `*` among
///   other entries is no wildcard and matches nothing;
/// - entries are separated by commas, with blanks (spaces, tabs) around them ignored; a blank
///   inside an entry ends the list, as in curl (`a.test b.test, c.test` is just `a.test`);
/// - for a host name, an entry matches the name itself and every subdomain, ignoring ASCII
///   case (`example.com` matches `www.example.com`, never `badexample.com`); one leading and
///   one trailing dot on the entry are ignored (`.example.com` matches `example.com` too), and
///   one trailing dot on the host;
/// - for an IP address host (IPv6 with or without brackets), an entry is an address that must
///   equal it, or a network in CIDR form (`10.0.0.0/8`, `fe80::/10`). A prefix longer than the
///   address (`/33` for IPv4, `/129` for IPv6) or not made of digits matches nothing, and `/0`
///   counts as no prefix (the whole address must match), as in curl. IPv4 and IPv6 never
///   match each other (`::ffff:10.0.0.1` is not `10.0.0.1`);
/// - a name entry never matches an address host, nor an address entry a host name;
/// - an entry with a port (`example.com:8080`, `10.0.0.1:80`, `[::1]:443`) matches nothing;
/// - beyond curl: an IPv6 entry may be bracketed (`[::1]`, `[fe80::]/10`).
///
/// ```
/// use dugong::NoProxy;
///
/// let no_proxy = NoProxy::parse("localhost, .corp.example, 10.0.0.0/8, [::1], proxy:3128");
/// assert!(no_proxy.matches("LOCALHOST"));
/// assert!(no_proxy.matches("build.corp.example"));
/// assert!(no_proxy.matches("corp.example"));
/// assert!(no_proxy.matches("10.1.2.3"));
/// assert!(no_proxy.matches("::1"));
/// assert!(!no_proxy.matches("11.0.0.1"));
/// assert!(!no_proxy.matches("notcorp.example"));
/// assert!(!no_proxy.matches("proxy"));
/// assert!(!NoProxy::parse("localhost, *").matches("example.com"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// The whole list was `*`.
    Everything,
    /// An address or a network: matches address hosts only.
    Network(Network),
    /// A name, lowercase, without its leading and trailing dot: itself and its subdomains.
    Name(String),
}

/// An address and how many of its leading bits a host must share with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    addr: IpAddr,
    /// INVARIANT: `1..=width(addr)`.
    bits: u32,
}

impl NoProxy {
    /// Reads a comma-separated list (see the rules above). Never fails: an entry that can
    /// match no host is left out.
    pub fn parse(list: &str) -> NoProxy {
        if list.trim_matches(is_blank) == "*" {
            return NoProxy {
                entries: vec![Entry::Everything],
            };
        }
        let entries = entries(list).into_iter().filter_map(entry).collect();
        NoProxy { entries }
    }

    /// Whether `host` (a name, or an IP address with or without brackets) goes direct. An
    /// empty host never does, even with `*`, as in curl.
    pub fn matches(&self, host: &str) -> bool {
        if host.is_empty() {
            return false;
        }
        let name = host.strip_suffix('.').unwrap_or(host);
        // `10.0.0.1.` is still that address (curl matches it as a name, to the same effect).
        let ip = ip_address(host).or_else(|| ip_address(name));
        self.entries.iter().any(|entry| match entry {
            Entry::Everything => true,
            Entry::Network(network) => ip.is_some_and(|ip| network.contains(ip)),
            // A name never matches an address by suffix (`0.1` is not a parent of `10.0.0.1`).
            Entry::Name(domain) => ip.is_none() && is_within(name, domain),
        })
    }

    /// Whether no host goes direct.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Space and tab, the blanks curl skips around entries.
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The entries of `list` that curl reads: the text between commas without the blanks around
/// it, up to the first entry with a blank inside, which ends the list at that blank.
fn entries(list: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    for item in list.split(',').map(|item| item.trim_matches(is_blank)) {
        if let Some((last, _)) = item.split_once(is_blank) {
            entries.push(last);
            break;
        }
        entries.push(item);
    }
    entries
}

/// The entry `text` makes, or `None` when no host can match it.
fn entry(text: &str) -> Option<Entry> {
    if let Some(network) = Network::parse(text) {
        return Some(Entry::Network(network));
    }
    // `*` is a wildcard only as the whole list; a port (`host:8080`) or a bad prefix
    // (`10.0.0.0/33`) leaves an entry that no host can match.
    if text == "*" || text.contains([':', '/']) {
        return None;
    }
    let name = text.strip_suffix('.').unwrap_or(text);
    let name = name.strip_prefix('.').unwrap_or(name);
    (!name.is_empty()).then(|| Entry::Name(name.to_ascii_lowercase()))
}

impl Network {
    /// Reads `addr` or `addr/bits`, where an IPv6 address may be bracketed.
    fn parse(text: &str) -> Option<Network> {
        let (addr, bits) = match text.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits)),
            None => (text, None),
        };
        let addr = ip_address(addr)?;
        let bits: u32 = match bits {
            None => 0,
            Some(bits) if bits.bytes().all(|b| b.is_ascii_digit()) => bits.parse().ok()?,
            Some(_) => return None,
        };
        // No prefix, or `/0`, which curl reads as none: the whole address must match.
        let bits = if bits == 0 { width(addr) } else { bits };
        (bits <= width(addr)).then_some(Network { addr, bits })
    }

    /// Whether `ip` is in the network: same family, same leading `bits`.
    fn contains(&self, ip: IpAddr) -> bool {
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        (as_number(ip) ^ as_number(self.addr)) >> (width(ip) - self.bits) == 0
    }
}

/// An IP address, IPv6 with or without brackets.
fn ip_address(text: &str) -> Option<IpAddr> {
    match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => text.parse().ok(),
    }
}

/// The number of bits in `ip`'s family's addresses.
fn width(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `ip` as an unsigned number, in the low `width(ip)` bits.
fn as_number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4).into(),
        IpAddr::V6(v6) => v6.into(),
    }
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
