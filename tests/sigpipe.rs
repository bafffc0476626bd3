//! Writes into a connection the peer closed (it answers our bytes with a reset, so the next
//! send fails with EPIPE, the error that raises SIGPIPE) must not kill the process, even with the default
//! SIGPIPE disposition (which Rust's runtime normally replaces with "ignore"). This file is its
//! own test binary, so changing the disposition affects nothing else.
#![allow(unsafe_code)]

mod support;

use std::time::Duration;

use dugong::{Body, ClosePhase, Error};
use http::{HeaderMap, Method};
use support::{connection, ScriptedServer, SendPath, Step};

#[test]
fn writes_into_a_closed_and_reset_connection_return_connection_closed() {
    // SAFETY: restoring the default disposition of a signal is async-signal-safe and no other
    // thread of this binary depends on SIGPIPE being ignored.
    let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(previous, libc::SIG_ERR);

    for &path in SendPath::ALL {
        let server = ScriptedServer::start(vec![Step::ExpectHead, Step::Close]);
        let conn = connection(server.port());
        path.send(
            &conn,
            &Method::PUT,
            "/up",
            &HeaderMap::new(),
            Body::Following(1 << 30),
        )
        .expect("head goes out before the close");
        server.finish();
        std::thread::sleep(Duration::from_millis(50));
        let piece = vec![b'x'; 64 * 1024];
        let mut outcome = None;
        for _ in 0..1000 {
            if let Err(e) = conn.write(&piece) {
                outcome = Some(e);
                break;
            }
        }
        match outcome {
            Some(Error::ConnectionClosed {
                phase: ClosePhase::WhileSending,
                ..
            }) => {}
            other => panic!("expected ConnectionClosed while sending, got {other:?}"),
        }
        // Still alive, and the connection says why on the next write too.
        assert!(matches!(
            conn.write(b"y"),
            Err(Error::ConnectionClosed { .. })
        ));
    }
}
