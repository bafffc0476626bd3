//! Reaching a host: resolve its name within the connect deadline, then race its addresses
//! the Happy Eyeballs way (RFC 8305): IPv6 first and the families alternating, a new attempt
//! every 250 ms or as soon as one fails, the first to connect wins and the others are closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::driver::{park_until, Deadline};
use super::Driver;
use crate::error::{Error, Operation};
use crate::io::{ip_literal, Lookup, Ready, Transport, Wake, READABLE};
use crate::DnsError;

/// How long an attempt has alone before the next address is tried beside it (RFC 8305's
/// recommended Connection Attempt Delay).
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// While several attempts race, the wait is on the newest; the older ones are looked at this
/// often.
const SWEEP: Duration = Duration::from_millis(10);

/// Connects to `host:port` within `deadline`.
pub(crate) fn dial(
    d: &Driver<'_>,
    host: &str,
    port: u16,
    deadline: &mut Deadline,
) -> Result<Transport, Error> {
    let addrs = resolve(d, host, port, deadline)?;
    race(d, interleave(addrs), deadline).map_err(|failure| match failure {
        Failure::Error(e) => e,
        Failure::Connect(source) => Error::Connect {
            host: host.to_owned(),
            port,
            source,
        },
    })
}

/// The addresses of `host`: an IP literal as it is, a name through the configured resolver
/// on a thread of its own, waited for (parked) until `deadline`.
fn resolve(
    d: &Driver<'_>,
    host: &str,
    port: u16,
    deadline: &mut Deadline,
) -> Result<Vec<SocketAddr>, Error> {
    if let Some(ip) = ip_literal(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let failed = |source| Error::Resolve {
        host: host.to_owned(),
        source,
    };
    let resolver = Arc::clone(&d.config.resolver.0);
    let lookup = Lookup::start(resolver, host, port, d.park.reactor())
        .map_err(|e| failed(DnsError::Io(e)))?;
    deadline.set_operation(Operation::Resolve);
    let answer = loop {
        if let Some(answer) = lookup.answer() {
            break answer;
        }
        park_until(d.park, lookup.transport(), READABLE, deadline)?;
    };
    deadline.set_operation(Operation::Connect);
    answer.map_err(failed)
}

/// RFC 8305 §4: IPv6 first, then the families alternate, each in the resolver's order.
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let (v6, v4): (Vec<_>, Vec<_>) = addrs.into_iter().partition(SocketAddr::is_ipv6);
    let mut out = Vec::with_capacity(v6.len() + v4.len());
    let (mut v6, mut v4) = (v6.into_iter(), v4.into_iter());
    loop {
        match (v6.next(), v4.next()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// Why no attempt connected.
enum Failure {
    /// Every address refused or failed: the last one's error.
    Connect(std::io::Error),
    /// The deadline passed, or the wait was cancelled.
    Error(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

/// Connects to the first of `addrs` that answers: attempts start `ATTEMPT_DELAY` apart (at
/// once after a failure) and run side by side; the winner is returned and the rest are
/// dropped, which closes them.
fn race(
    d: &Driver<'_>,
    addrs: Vec<SocketAddr>,
    deadline: &mut Deadline,
) -> Result<Transport, Failure> {
    let writable = Ready {
        readable: false,
        writable: true,
    };
    let mut untried = addrs.into_iter();
    // Oldest first: the newest is the one waited on.
    let mut pending: Vec<Transport> = Vec::new();
    let mut last_error = None;
    let mut start_next = Some(crate::io::now());
    loop {
        let now = crate::io::now();
        if start_next.is_some_and(|at| now >= at) || pending.is_empty() {
            match untried.next() {
                Some(addr) => match d.park.open(addr) {
                    Ok((transport, true)) => return Ok(transport),
                    Ok((transport, false)) => {
                        pending.push(transport);
                        start_next = Some(now + ATTEMPT_DELAY);
                    }
                    Err(e) => {
                        last_error = Some(e);
                        start_next = Some(now);
                        continue;
                    }
                },
                None if pending.is_empty() => {
                    return Err(Failure::Connect(
                        last_error.unwrap_or_else(|| std::io::ErrorKind::NotFound.into()),
                    ));
                }
                None => start_next = None,
            }
        }
        let mut i = 0;
        while i < pending.len() {
            match pending[i].connect_state() {
                Ok(true) => return Ok(pending.remove(i)),
                Ok(false) => i += 1,
                Err(e) => {
                    pending.remove(i);
                    last_error = Some(e);
                    start_next = Some(now);
                }
            }
        }
        let Some(newest) = pending.last() else {
            continue;
        };
        let mut wait = deadline.remaining()?;
        if let Some(at) = start_next {
            let until = at.saturating_duration_since(now);
            wait = Some(wait.map_or(until, |w| w.min(until)));
        }
        if pending.len() > 1 {
            wait = Some(wait.map_or(SWEEP, |w| w.min(SWEEP)));
        }
        if let Wake::Cancelled = d.park.park(newest, writable, wait).map_err(Error::Io)? {
            return Err(Error::Cancelled.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn families_alternate_starting_with_ipv6() {
        let given = vec![
            addr("10.0.0.1:80"),
            addr("10.0.0.2:80"),
            addr("10.0.0.3:80"),
            addr("[2001:db8::1]:80"),
            addr("[2001:db8::2]:80"),
        ];
        assert_eq!(
            interleave(given),
            [
                addr("[2001:db8::1]:80"),
                addr("10.0.0.1:80"),
                addr("[2001:db8::2]:80"),
                addr("10.0.0.2:80"),
                addr("10.0.0.3:80"),
            ]
        );
        assert_eq!(interleave(vec![addr("10.0.0.1:80")]), [addr("10.0.0.1:80")]);
        assert!(interleave(Vec::new()).is_empty());
    }
}
