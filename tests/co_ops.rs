//! `co_*` operations driven by a hand-written `poll(2)` loop, as a foreign event loop would.
#![allow(unsafe_code)]

mod support;

use std::time::Duration;

use dugong::{Body, CoOp, CoStep, Error, PollNeeded};
use http::{HeaderMap, Method, StatusCode};
use support::{connection, pattern, LoopbackServer, ScriptedServer, Step};

/// Waits (up to 5 s) until one of the descriptors is ready as asked.
fn poll_any(needs: &[PollNeeded<'_>]) {
    use std::os::fd::AsRawFd;
    let mut fds: Vec<libc::pollfd> = needs
        .iter()
        .map(|n| libc::pollfd {
            fd: n.fd.as_raw_fd(),
            events: if n.interest.is_readable() {
                libc::POLLIN
            } else {
                libc::POLLOUT
            },
            revents: 0,
        })
        .collect();
    // SAFETY: a valid, exclusively borrowed array of pollfds for the duration of the call.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 5000) };
    assert!(ready > 0, "stuck: {needs:?}");
}

/// Steps `op` to its end, polling whenever it asks; counts the polls.
fn drive<T>(op: &mut CoOp<'_, T>, polls: &mut usize) -> Result<T, Error> {
    loop {
        match op.step() {
            CoStep::Done(result) => return result,
            CoStep::Poll(need) => {
                *polls += 1;
                poll_any(&[need]);
            }
        }
    }
}

#[test]
fn every_co_op_completes_through_a_poll_loop() {
    let server = LoopbackServer::start();
    let conn = connection(server.port());
    let h = HeaderMap::new();
    let mut polls = 0;
    // Pipelined: send three, then read them.
    for target in ["/bytes/10", "/chunked/300000/4000", "/bytes/5"] {
        let mut send = conn
            .co_send_request(&Method::GET, target, &h, Body::Empty)
            .expect("start");
        drive(&mut send, &mut polls).expect("sent");
    }
    let mut head = conn.co_read_response();
    assert_eq!(
        drive(&mut head, &mut polls).expect("head").path,
        "/bytes/10"
    );
    let mut buf = [0u8; 4];
    let mut read = conn.co_read(&mut buf);
    assert_eq!(drive(&mut read, &mut polls).expect("read"), 4);
    drop(read);
    assert_eq!(&buf, b"abcd");
    let mut rest = conn.co_read_all();
    assert_eq!(
        drive(&mut rest, &mut polls).expect("rest"),
        pattern(10)[4..]
    );
    let mut head = conn.co_read_response();
    assert_eq!(drive(&mut head, &mut polls).expect("head").length, None);
    let mut all = conn.co_read_all();
    assert_eq!(
        drive(&mut all, &mut polls).expect("chunked"),
        pattern(300_000)
    );
    let mut head = conn.co_read_response();
    assert_eq!(drive(&mut head, &mut polls).expect("head").path, "/bytes/5");
    let mut all = conn.co_read_all();
    assert_eq!(drive(&mut all, &mut polls).expect("body"), b"abcde");
    // Reads had to wait for the server at least once.
    assert!(polls > 0);

    // A body that follows its head, streamed with co_write.
    let data = pattern(3 << 20);
    let mut send = conn
        .co_send_request(
            &Method::PUT,
            "/echo",
            &h,
            Body::Following(data.len() as u64),
        )
        .expect("start");
    drive(&mut send, &mut polls).expect("head");
    let mut source = &data[..];
    let mut write = conn.co_write(&mut source).expect("body owed");
    // The echo comes back while the upload goes out: drive the write and a read side by side.
    let mut read = conn.co_read_response();
    let (mut wrote, mut head) = (None, None);
    while wrote.is_none() || head.is_none() {
        if wrote.is_none() {
            if let CoStep::Done(r) = write.step() {
                r.expect("upload");
                wrote = Some(());
            }
        }
        if head.is_none() {
            if let CoStep::Done(r) = read.step() {
                head = Some(r.expect("response"));
            }
        }
        // Poll only when every unfinished operation waits.
        let needs: Vec<_> = [write.waiting_for(), read.waiting_for()]
            .into_iter()
            .flatten()
            .collect();
        if !needs.is_empty()
            && needs.len() == usize::from(wrote.is_none()) + usize::from(head.is_none())
        {
            poll_any(&needs);
        }
    }
    assert_eq!(head.expect("head").status, StatusCode::OK);
    let mut echo = conn.co_read_all();
    assert_eq!(drive(&mut echo, &mut polls).expect("echo"), data);
}

/// A server that answers every request with 1 MiB before it reads the next one: a send op and
/// a read op driven side by side never deadlock.
#[test]
fn a_send_and_a_read_side_by_side_do_not_deadlock() {
    const N: usize = 20;
    let upload = vec![b'u'; 256 * 1024];
    let mut reply = b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n".to_vec();
    reply.extend(std::iter::repeat_n(b'r', 1 << 20));
    let reply: std::sync::Arc<[u8]> = reply.into();
    let mut steps = Vec::new();
    for _ in 0..N {
        steps.extend([
            Step::ExpectHead,
            Step::Discard(upload.len() as u64),
            Step::ReplyShared(reply.clone()),
        ]);
    }
    let server = ScriptedServer::start(steps);
    let conn = connection(server.port());
    let h = HeaderMap::new();
    let (mut sent, mut read) = (0, 0);
    let mut send: Option<CoOp<'_, ()>> = None;
    let mut head: Option<CoOp<'_, dugong::Response>> = None;
    let mut body: Option<CoOp<'_, Vec<u8>>> = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while read < N {
        assert!(std::time::Instant::now() < deadline, "no progress");
        if send.is_none() && sent < N {
            let target = format!("/{sent}");
            send = Some(
                conn.co_send_request(&Method::PUT, &target, &h, Body::Bytes(&upload))
                    .expect("start"),
            );
        }
        if let Some(op) = send.as_mut() {
            if let CoStep::Done(r) = op.step() {
                r.expect("sent");
                sent += 1;
                send = None;
            }
        }
        if head.is_none() && body.is_none() && read < sent + usize::from(send.is_some()) {
            head = Some(conn.co_read_response());
        }
        if let Some(op) = head.as_mut() {
            if let CoStep::Done(r) = op.step() {
                assert_eq!(r.expect("head").path, format!("/{read}"));
                head = None;
                body = Some(conn.co_read_all());
            }
        }
        if let Some(op) = body.as_mut() {
            if let CoStep::Done(r) = op.step() {
                assert_eq!(r.expect("body").len(), 1 << 20);
                body = None;
                read += 1;
            }
        }
        // Poll only when every live operation waits.
        let needs: Vec<_> = [
            send.as_ref().and_then(CoOp::waiting_for),
            head.as_ref().and_then(CoOp::waiting_for),
            body.as_ref().and_then(CoOp::waiting_for),
        ]
        .into_iter()
        .flatten()
        .collect();
        let live = [send.is_some(), head.is_some(), body.is_some()];
        if !needs.is_empty() && needs.len() == live.iter().filter(|&&l| l).count() {
            poll_any(&needs);
        }
    }
    server.finish().assert_ok();
}

#[test]
fn the_co_poll_loop_example_drives_32_connections() {
    let stdout = support::run_example("co_poll_loop", &[]);
    assert!(
        stdout.contains("6400 documents over 32 connections, one raw polling loop"),
        "{stdout}"
    );
}

/// Steps `op` to its end like [`drive`], noting of each poll whether it asked to write.
fn interests<T>(op: &mut CoOp<'_, T>) -> (Result<T, Error>, Vec<bool>) {
    let mut seen = Vec::new();
    loop {
        match op.step() {
            CoStep::Done(result) => return (result, seen),
            CoStep::Poll(need) => {
                seen.push(need.interest.is_writable());
                poll_any(&[need]);
            }
        }
    }
}

/// `PollNeeded` asks for what the connection waits on, over plain TCP and TLS alike: to
/// write while an upload is stuck behind a server that stopped reading (over TLS, records
/// the session holds), to read while the response is due. The loop polls only for what was
/// asked, with a 5 s limit, so a wrong interest would stall it.
#[test]
fn poll_needed_asks_for_what_the_connection_waits_on_over_every_front() {
    let upload = vec![b'u'; 8 << 20];
    for &front in support::Front::ALL {
        let server = ScriptedServer::start(vec![
            Step::ExpectHead,
            Step::Stall(Duration::from_millis(300)),
            Step::Discard(upload.len() as u64),
            // Long enough that the client asks for the response before it is there.
            Step::Sleep(Duration::from_millis(500)),
            Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ]);
        let (origin, config, _guard) = front.open(server.addr());
        let conn = dugong::HttpConnection::open(&origin, config).expect("conn");
        let mut send = conn
            .co_send_request(&Method::PUT, "/up", &HeaderMap::new(), Body::Bytes(&upload))
            .expect("start");
        let (sent, writes) = interests(&mut send);
        sent.expect("sent");
        drop(send);
        assert!(
            writes.contains(&true),
            "{front:?}: the upload waited to write: {writes:?}"
        );
        let mut head = conn.co_read_response();
        let (response, reads) = interests(&mut head);
        assert_eq!(response.expect("head").status, StatusCode::OK);
        drop(head);
        assert!(
            !reads.is_empty() && !reads.contains(&true),
            "{front:?}: the response was waited for by reading: {reads:?}"
        );
        assert_eq!(conn.read_all().expect("body"), b"ok");
        drop(conn);
        server.finish().assert_ok();
    }
}
