//! Reaching a host: resolve its name, connect to one of its addresses.

use std::io;

use super::driver::{park_until, Deadline};
use super::Driver;
use crate::error::Error;
use crate::io::{Ready, Transport};

/// Connects to `host:port`, trying every resolved address in turn within `deadline`.
pub(crate) fn dial(
    d: &Driver<'_>,
    host: &str,
    port: u16,
    deadline: &mut Deadline,
) -> Result<Transport, Error> {
    let connect_error = |source| Error::Connect {
        host: host.to_owned(),
        port,
        source,
    };
    let addrs = Transport::resolve(host, port).map_err(connect_error)?;
    let writable = Ready {
        readable: false,
        writable: true,
    };
    let mut last = None;
    for addr in addrs {
        match d.park.open(addr) {
            Ok((transport, true)) => return Ok(transport),
            Ok((transport, false)) => {
                park_until(d.park, &transport, writable, deadline)?;
                match transport.finish_connect() {
                    Ok(()) => return Ok(transport),
                    Err(e) => last = Some(e),
                }
            }
            Err(e) => last = Some(e),
        }
    }
    Err(connect_error(
        last.unwrap_or_else(|| io::ErrorKind::NotFound.into()),
    ))
}
