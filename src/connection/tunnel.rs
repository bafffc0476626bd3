//! A `CONNECT` tunnel through a proxy (RFC 9110 §9.3.6): send the request, read the answer,
//! within the connect deadline. The head is written and the answer read by the protocol
//! core ([`encode_connect_head`], [`ConnectReader`]); this file only moves the bytes.

use std::io::{self, IoSlice};

use http::HeaderValue;

use super::driver::{park_until, Deadline};
use super::Driver;
use crate::error::Error;
use crate::io::READABLE;
use crate::io::{is_peer_gone, ReadBuffer, Ready, Transport};
use crate::proto::{encode_connect_head, ConnectReader, ConnectStep};
use crate::proxy::TunnelFailure;

/// Asks the proxy on `transport` for a tunnel to `authority`, sending `credentials` (to the
/// proxy only), and waits for its answer. Returns the bytes that followed the answer: they
/// came through the tunnel.
pub(crate) fn open(
    d: &Driver<'_>,
    transport: &Transport,
    authority: &HeaderValue,
    credentials: Option<&HeaderValue>,
    deadline: &mut Deadline,
) -> Result<Vec<u8>, Error> {
    let mut head = Vec::with_capacity(128);
    encode_connect_head(authority, credentials, &mut head)?;
    send_all(d, transport, &head, deadline)?;
    let early = read_answer(d, transport, deadline)?;
    super::trace::tunnel_opened(transport, authority);
    Ok(early)
}

fn send_all(
    d: &Driver<'_>,
    transport: &Transport,
    mut bytes: &[u8],
    deadline: &mut Deadline,
) -> Result<(), Error> {
    let writable = Ready {
        readable: false,
        writable: true,
    };
    while !bytes.is_empty() {
        match transport.send(&[IoSlice::new(bytes)]) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                park_until(d.park, transport, writable, deadline)?;
            }
            Err(e) if is_peer_gone(&e) => return Err(Error::ProxyTunnel(TunnelFailure::Closed)),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads the proxy's answer, skipping interim ones; bounded by the configured head limits.
fn read_answer(
    d: &Driver<'_>,
    transport: &Transport,
    deadline: &mut Deadline,
) -> Result<Vec<u8>, Error> {
    let limits = d.config.limits;
    let limit = limits.max_head_bytes.saturating_add(1);
    let mut reader = ConnectReader::new(limits);
    let mut buf = ReadBuffer::default();
    loop {
        let step = reader
            .poll(buf.data())
            .map_err(|e| Error::ProxyTunnel(TunnelFailure::Protocol(e)))?;
        match step {
            ConnectStep::Interim { len } => buf.consume(len),
            ConnectStep::Established { len } => {
                buf.consume(len);
                return Ok(buf.data().to_vec());
            }
            ConnectStep::Refused {
                status,
                proxy_authenticate,
            } => {
                return Err(Error::ProxyRefused {
                    status,
                    proxy_authenticate,
                })
            }
            ConnectStep::Partial => match buf.fill_from(transport, limit) {
                Ok(0) => return Err(Error::ProxyTunnel(TunnelFailure::Closed)),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    park_until(d.park, transport, READABLE, deadline)?;
                }
                Err(e) if is_peer_gone(&e) => {
                    return Err(Error::ProxyTunnel(TunnelFailure::Closed))
                }
                Err(e) => return Err(e.into()),
            },
        }
    }
}
