//! Writes into a connection the peer closed (it answers our bytes with a reset, so the next
//! send fails with EPIPE, the error that raises SIGPIPE) must not kill the process, even with the default
//! SIGPIPE disposition (which Rust's runtime normally replaces with "ignore"). This file is its
//! own test binary, so changing the disposition affects nothing else.
#![allow(unsafe_code)]

mod support;

use std::io::Read;
use std::time::Duration;

use dugong::{Body, ClosePhase, Error};
use http::{HeaderMap, Method};
use support::{Front, ScriptedServer, SendPath, Step};

#[test]
fn writes_into_a_closed_and_reset_connection_return_connection_closed() {
    // SAFETY: restoring the default disposition of a signal is async-signal-safe and no other
    // thread of this binary depends on SIGPIPE being ignored.
    let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(previous, libc::SIG_ERR);

    // Plain and TLS: records written into a dead connection must not raise it either.
    for &front in Front::ALL {
        for &path in SendPath::ALL {
            let server = ScriptedServer::start(vec![Step::ExpectHead, Step::Close]);
            let (origin, config, guard) = front.open(server.addr());
            path.run_on(origin, config, move |conn| {
                let _front = guard;
                conn.send(
                    &Method::PUT,
                    "/up",
                    &HeaderMap::new(),
                    Body::Following(1 << 30),
                )
                .expect("head goes out before the close");
                server.finish();
                std::thread::sleep(Duration::from_millis(50));
                // The path's own body writer: `write` pieces, `sendfile_cofun` or `co_write`.
                let mut body = std::io::repeat(b'x').take(1 << 30);
                let outcome = conn.stream(&mut body).err();
                match outcome {
                    Some(Error::ConnectionClosed {
                        phase: ClosePhase::WhileSending,
                        ..
                    }) => {}
                    other => panic!("expected ConnectionClosed while sending, got {other:?}"),
                }
                // Still alive, and the connection says why on the next write too.
                let again = conn.write(b"y");
                assert!(
                    matches!(again, Err(Error::ConnectionClosed { .. })),
                    "the next write: {again:?}"
                );
            });
        }
    }
}
