//! Opening a connection: reach the first hop (see [`dial`](super::dial)) — the server, or
//! its proxy — then, through a proxy, open a tunnel if the route needs one (see
//! [`tunnel`](super::tunnel)), then, for `https`, the TLS handshake; all within one connect
//! deadline.

use super::dial::dial;
use super::driver::Deadline;
use super::route::Route;
use super::Driver;
use crate::error::{Error, Operation};
use crate::io::Transport;

/// A new connection, and the bytes that already came through it (from a tunnel, with the
/// proxy's answer): the start of the stream.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) transport: Transport,
    pub(crate) early: Vec<u8>,
}

/// Opens a new connection to the driver's origin within the connect timeout.
pub(crate) fn open(d: &Driver<'_>) -> Result<Opened, Error> {
    let origin = &d.target.origin;
    let mut deadline = Deadline::new(Operation::Connect, d.config.connect_timeout);
    let (host, port) = d.target.route.first_hop(origin);
    let mut transport = dial(d, host, port, &mut deadline)?;
    // Numbered from here, so the log shows a tunnel's exchange under the connection's number.
    transport.assign_log_id();
    let early = match &d.target.route {
        Route::Tunnel { proxy, authority } => super::tunnel::open(
            d,
            &transport,
            authority,
            proxy.authorization(),
            &mut deadline,
        )?,
        Route::Direct | Route::Forward { .. } => Vec::new(),
    };
    let mut transport = secure(d, transport, &early, &mut deadline)?;
    if d.park.blocks_thread() {
        transport.block_reads().map_err(|source| Error::Connect {
            host: host.to_owned(),
            port,
            source,
        })?;
    }
    Ok(Opened { transport, early })
}

/// For `https`, puts a TLS session over a connected socket (or tunnel) and completes its
/// handshake within `deadline`. Bytes that came through a tunnel before the handshake cannot
/// belong to it (the server never speaks first).
#[cfg(feature = "tls")]
fn secure(
    d: &Driver<'_>,
    transport: Transport,
    early: &[u8],
    deadline: &mut Deadline,
) -> Result<Transport, Error> {
    if d.target.origin.scheme != crate::proto::Scheme::Https {
        return Ok(transport);
    }
    handshake(d, transport, early, deadline)
}

/// [`secure`]'s work for `https`. Not inlined: its frame (a TLS session is built in it) would
/// otherwise deepen every connect, and the stack a green task touches stays resident.
#[cfg(feature = "tls")]
#[inline(never)]
fn handshake(
    d: &Driver<'_>,
    transport: Transport,
    early: &[u8],
    deadline: &mut Deadline,
) -> Result<Transport, Error> {
    if !early.is_empty() {
        return Err(Error::ProxyTunnel(crate::proxy::TunnelFailure::EarlyData));
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
fn secure(
    _: &Driver<'_>,
    transport: Transport,
    _: &[u8],
    _: &mut Deadline,
) -> Result<Transport, Error> {
    Ok(transport)
}
