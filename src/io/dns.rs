//! Name resolution: the [`Resolve`] seam, the system resolver (`getaddrinfo(3)`), and a
//! lookup that runs off the caller's thread so that waiting for it can be bounded by a
//! deadline and parked like any socket wait.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::offload::Offload;
use super::reactor::Reactor;
use super::transport::Transport;

/// Why a host name did not resolve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The name does not exist, or has no address (`EAI_NONAME`, `EAI_NODATA`): asking
    /// again will not help.
    #[error("no such host")]
    NotFound,
    /// The resolver could not answer now (`EAI_AGAIN`: no name server reachable, or it
    /// answered "try again"): asking again later may succeed.
    #[error("temporary failure in name resolution")]
    Temporary,
    /// The resolver failed for good (`EAI_FAIL` and other codes), with its message.
    #[error("name resolution failed: {0}")]
    Failed(String),
    /// A system error inside the resolver (`EAI_SYSTEM`, or out of memory).
    #[error("resolver error")]
    Io(#[source] io::Error),
}

impl DnsError {
    /// Whether asking again later may succeed.
    pub fn is_temporary(&self) -> bool {
        // No wildcard: a new variant does not compile until it is classified.
        match self {
            DnsError::Temporary | DnsError::Io(_) => true,
            DnsError::NotFound | DnsError::Failed(_) => false,
        }
    }
}

/// Turns a host name into socket addresses. The default is [`SystemResolver`]; set another
/// with [`Config::resolver`](crate::Config::resolver) (a fixed table, a DNS-over-HTTPS client,
/// a cache).
///
/// A connection calls it on a thread of its own, so it may block: the connection waits for
/// the answer only until its connect timeout (and a green task parks meanwhile instead of
/// blocking its runtime). A lookup still running when the deadline passes finishes on its
/// thread and is discarded. IP literals never reach the resolver.
///
/// ```
/// use std::net::SocketAddr;
/// use dugong::{DnsError, Resolve};
///
/// /// Every name is this machine.
/// #[derive(Debug)]
/// struct Loopback;
///
/// impl Resolve for Loopback {
///     fn resolve(&self, _host: &str, port: u16) -> Result<Vec<SocketAddr>, DnsError> {
///         Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
///     }
/// }
///
/// let config = dugong::Config::default().resolver(Loopback);
/// # let _ = config;
/// ```
pub trait Resolve: std::fmt::Debug + Send + Sync + 'static {
    /// The addresses of `host` (a name, never an IP literal), with `port` set.
    ///
    /// # Errors
    ///
    /// [`DnsError`]: tell "no such name" ([`DnsError::NotFound`]) from "cannot tell now"
    /// ([`DnsError::Temporary`]), since callers retry only the latter.
    fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, DnsError>;
}

/// The operating system's resolver: `getaddrinfo(3)`, which reads `/etc/hosts`, asks the
/// configured name servers and orders the answers (RFC 6724).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, DnsError> {
        let name = CString::new(host).map_err(|_| DnsError::NotFound)?;
        // SAFETY: an all-zero `addrinfo` is a valid "no hints" value; the fields set below
        // are plain integers.
        let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
        hints.ai_family = libc::AF_UNSPEC;
        hints.ai_socktype = libc::SOCK_STREAM;
        let mut list: *mut libc::addrinfo = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated and outlives the call; a null service is allowed;
        // `list` receives a list this function frees below.
        let code = unsafe { libc::getaddrinfo(name.as_ptr(), std::ptr::null(), &hints, &mut list) };
        if code != 0 {
            return Err(gai_error(code));
        }
        let mut addrs = Vec::new();
        let mut entry = list;
        while !entry.is_null() {
            // SAFETY: `entry` is a node of the list getaddrinfo returned, not yet freed.
            let info = unsafe { &*entry };
            // SAFETY: `ai_addr` points to `ai_addrlen` bytes of a socket address of family
            // `ai_family`, as getaddrinfo documents.
            if let Some(addr) = unsafe { socket_addr(info) } {
                let addr = SocketAddr::new(addr, port);
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
            entry = info.ai_next;
        }
        // SAFETY: `list` came from a successful getaddrinfo and is freed once.
        unsafe { libc::freeaddrinfo(list) };
        if addrs.is_empty() {
            return Err(DnsError::NotFound);
        }
        Ok(addrs)
    }
}

/// The IP address of one `getaddrinfo` answer, if it is IPv4 or IPv6.
///
/// # Safety
///
/// `info.ai_addr` must point to `info.ai_addrlen` readable bytes of a socket address.
unsafe fn socket_addr(info: &libc::addrinfo) -> Option<IpAddr> {
    let len = info.ai_addrlen as usize;
    match info.ai_family {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the caller's promise, and the length was checked.
            let v4 = unsafe { &*(info.ai_addr as *const libc::sockaddr_in) };
            Some(IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above.
            let v6 = unsafe { &*(info.ai_addr as *const libc::sockaddr_in6) };
            Some(IpAddr::from(v6.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

/// The typed form of a `getaddrinfo` failure.
fn gai_error(code: libc::c_int) -> DnsError {
    match code {
        libc::EAI_NONAME | libc::EAI_NODATA => DnsError::NotFound,
        libc::EAI_AGAIN => DnsError::Temporary,
        libc::EAI_SYSTEM => DnsError::Io(io::Error::last_os_error()),
        libc::EAI_MEMORY => DnsError::Io(io::ErrorKind::OutOfMemory.into()),
        _ => {
            // SAFETY: gai_strerror returns a static NUL-terminated message for any code.
            let message = unsafe { CStr::from_ptr(libc::gai_strerror(code)) };
            DnsError::Failed(message.to_string_lossy().into_owned())
        }
    }
}

/// `host` as an IP address, if it is a literal (an IPv6 one with or without brackets).
pub(crate) fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// A lookup running on its own thread ([`Offload`]), so that any park can wait for it with a
/// timeout. A resolver that panics gives [`DnsError::Failed`].
pub(crate) struct Lookup(Offload<Result<Vec<SocketAddr>, DnsError>>);

impl Lookup {
    /// Starts resolving `host`; the wait side is registered with `reactor` if there is one.
    pub(crate) fn start(
        resolver: Arc<dyn Resolve>,
        host: &str,
        port: u16,
        reactor: Option<&Arc<Reactor>>,
    ) -> io::Result<Self> {
        let host = host.to_owned();
        let work = move || resolver.resolve(&host, port);
        Offload::start("dugong-dns", work, reactor).map(Lookup)
    }

    /// What to park on: readable once the answer is in.
    pub(crate) fn transport(&self) -> &Transport {
        self.0.transport()
    }

    /// The answer, if it is in.
    pub(crate) fn answer(&self) -> Option<Result<Vec<SocketAddr>, DnsError>> {
        Some(
            self.0
                .take()?
                .unwrap_or_else(|_| Err(DnsError::Failed("the resolver panicked".into()))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getaddrinfo_codes_map_to_kinds() {
        assert!(matches!(gai_error(libc::EAI_NONAME), DnsError::NotFound));
        assert!(matches!(gai_error(libc::EAI_NODATA), DnsError::NotFound));
        assert!(matches!(gai_error(libc::EAI_AGAIN), DnsError::Temporary));
        assert!(matches!(gai_error(libc::EAI_FAIL), DnsError::Failed(m) if !m.is_empty()));
        assert!(matches!(gai_error(libc::EAI_MEMORY), DnsError::Io(_)));
        assert!(DnsError::Temporary.is_temporary());
        assert!(!DnsError::NotFound.is_temporary());
        assert!(!DnsError::Failed("x".into()).is_temporary());
    }

    #[test]
    fn literals_are_recognised_with_or_without_brackets() {
        assert_eq!(ip_literal("127.0.0.1"), Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(
            ip_literal("[::1]"),
            Some(IpAddr::from(std::net::Ipv6Addr::LOCALHOST))
        );
        assert_eq!(
            ip_literal("::1"),
            Some(IpAddr::from(std::net::Ipv6Addr::LOCALHOST))
        );
        assert_eq!(ip_literal("localhost"), None);
        assert_eq!(ip_literal("1.2.3"), None);
    }

    /// A resolver that panics gives a typed error: the lookup's waiter is not left to wait
    /// for an answer that never comes.
    #[test]
    fn a_panicking_resolver_gives_an_error() {
        #[derive(Debug)]
        struct Panics;
        impl Resolve for Panics {
            fn resolve(&self, _: &str, _: u16) -> Result<Vec<SocketAddr>, DnsError> {
                panic!("resolver bug")
            }
        }
        let lookup = Lookup::start(Arc::new(Panics), "example.test", 80, None).expect("start");
        let answer = (0..100).find_map(|_| {
            let _ = lookup.transport().poll_one(
                super::super::READABLE,
                Some(std::time::Duration::from_millis(100)),
            );
            lookup.answer()
        });
        assert!(
            matches!(answer, Some(Err(DnsError::Failed(ref m))) if m.contains("panicked")),
            "{answer:?}"
        );
    }

    #[test]
    fn the_system_resolver_reads_etc_hosts() {
        // `localhost` is in /etc/hosts on every machine this runs on: no packet is sent.
        let addrs = SystemResolver
            .resolve("localhost", 8080)
            .expect("localhost");
        assert!(addrs
            .iter()
            .all(|a| a.port() == 8080 && a.ip().is_loopback()));
    }

    #[test]
    fn a_name_with_a_nul_byte_is_not_found() {
        assert!(matches!(
            SystemResolver.resolve("a\0b", 80),
            Err(DnsError::NotFound)
        ));
    }
}
