//! Opening a connection: reach the server's address (see [`dial`](super::dial)), then, for
//! `https`, the TLS handshake — all within one connect deadline.

use super::dial::dial;
use super::driver::Deadline;
use super::Driver;
use crate::error::{Error, Operation};
use crate::io::Transport;

/// Opens a new connection to the driver's origin within the connect timeout.
pub(crate) fn open(d: &Driver<'_>) -> Result<Transport, Error> {
    let origin = &d.target.origin;
    let mut deadline = Deadline::new(Operation::Connect, d.config.connect_timeout);
    let transport = dial(d, &origin.host, origin.port, &mut deadline)?;
    let mut transport = secure(d, transport, &mut deadline)?;
    if d.park.blocks_thread() {
        transport.block_reads().map_err(|source| Error::Connect {
            host: origin.host.clone(),
            port: origin.port,
            source,
        })?;
    }
    Ok(transport)
}

/// For `https`, puts a TLS session over a connected socket and completes its handshake
/// within `deadline`.
#[cfg(feature = "tls")]
fn secure(
    d: &Driver<'_>,
    transport: Transport,
    deadline: &mut Deadline,
) -> Result<Transport, Error> {
    if d.target.origin.scheme != crate::proto::Scheme::Https {
        return Ok(transport);
    }
    let client = d.config.tls.client_config()?;
    let name = super::tls::server_name(&d.target.origin.host)?;
    let session = crate::io::TlsSession::new(client, name)?;
    let transport = transport.with_tls(session);
    while let Some(interest) = transport.handshake()? {
        super::driver::park_until(d.park, &transport, interest, deadline)?;
    }
    Ok(transport)
}

/// Without the `tls` feature every connection is plain (`https` is refused when the
/// connection is made).
#[cfg(not(feature = "tls"))]
fn secure(_: &Driver<'_>, transport: Transport, _: &mut Deadline) -> Result<Transport, Error> {
    Ok(transport)
}
