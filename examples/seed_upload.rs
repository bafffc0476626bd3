//! The second loop of Python dugong's "Coroutine Support" chapter, in Rust: pipelined uploads
//! whose bodies follow their heads, sent with `sendfile_cofun` — and the same by hand, with a
//! poll loop on the connection's descriptor and `write_partial`.
//!
//! Runs against the embedded loopback server: `cargo run --example seed_upload`.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use dugong::{Body, Error, HttpConnection};
use dugong_harness::LoopbackServer;
use http::{HeaderMap, Method, StatusCode};

/// Reads one upload's response: `204 No Content`, and the server saw every byte.
fn read_put_response(conn: &HttpConnection, sizes: &mut Vec<(String, u64)>) -> Result<(), Error> {
    let resp = conn.read_response()?;
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
    assert_eq!(conn.read(&mut [0u8; 42])?, 0);
    let received = resp.headers["x-received-bytes"]
        .to_str()
        .unwrap_or("?")
        .to_owned();
    sizes.push((resp.path, received.parse().unwrap_or(u64::MAX)));
    Ok(())
}

/// Uploads `files` with cofunctions: `send_request_cofun`, then `sendfile_cofun` for the body.
/// Returns what the server received per target.
pub(crate) fn upload(port: u16, files: &[PathBuf]) -> Result<Vec<(String, u64)>, Error> {
    let conn = HttpConnection::new("127.0.0.1", port)?;
    let mut received = Vec::new();
    for name in files {
        let len = std::fs::metadata(name)?.len();
        let target = format!("/{}", file_name(name));
        let body = Body::Following(len);
        for step in conn.send_request_cofun(&Method::PUT, &target, &HeaderMap::new(), body)? {
            step?;
            read_put_response(&conn, &mut received)?;
        }
        let mut fh = File::open(name)?;
        for step in conn.sendfile_cofun(&mut fh)? {
            step?;
            read_put_response(&conn, &mut received)?;
        }
    }
    while conn.response_pending() {
        read_put_response(&conn, &mut received)?;
    }
    Ok(received)
}

/// The same uploads by hand: wait for the descriptor to be readable or writable, read
/// responses when there is response data (buffered or on the socket), and write with
/// `write_partial`, which never blocks.
pub(crate) fn upload_by_hand(port: u16, files: &[PathBuf]) -> Result<Vec<(String, u64)>, Error> {
    let conn = HttpConnection::new("127.0.0.1", port)?;
    let mut received = Vec::new();
    for name in files {
        let len = std::fs::metadata(name)?.len();
        let target = format!("/{}", file_name(name));
        conn.send_request(
            &Method::PUT,
            &target,
            &HeaderMap::new(),
            Body::Following(len),
        )?;
        let mut fh = File::open(name)?;
        let mut buf = vec![0u8; 8192];
        let (mut start, mut end) = (0, 0);
        while conn.is_writing_body() {
            // Never wait on the socket for data this connection already holds.
            let (readable, writable) = if conn.has_buffered_data() {
                (true, false)
            } else {
                wait_ready(conn.as_raw_fd())?
            };
            // A readable descriptor is not always a response (over TLS it may be session
            // tickets): `has_buffered_data` takes in what arrived and says.
            if readable && conn.response_pending() && conn.has_buffered_data() {
                read_put_response(&conn, &mut received)?;
            }
            if !writable {
                continue;
            }
            if start == end {
                end = fh.read(&mut buf)?;
                start = 0;
                if end == 0 {
                    break;
                }
            }
            start += conn.write_partial(&buf[start..end])?;
        }
    }
    while conn.response_pending() {
        read_put_response(&conn, &mut received)?;
    }
    Ok(received)
}

/// `poll(2)` on one descriptor for reading and writing, up to 10 s.
fn wait_ready(fd: std::os::fd::RawFd) -> std::io::Result<(bool, bool)> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN | libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: `pfd` is a valid, exclusively borrowed pollfd array of length 1 for the call.
    #[allow(unsafe_code)]
    let n = unsafe { libc::poll(&mut pfd, 1, 10_000) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let readable = pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
    Ok((readable, pfd.revents & libc::POLLOUT != 0))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes `count` files of varied sizes (up to a few MiB) into `dir`.
pub(crate) fn make_files(dir: &Path, count: usize) -> std::io::Result<Vec<PathBuf>> {
    (0..count)
        .map(|i| {
            let path = dir.join(format!("file_{i}.tgz"));
            let len = (i * i * 7919) % (3 << 20);
            std::fs::write(&path, dugong_harness::pattern(len))?;
            Ok(path)
        })
        .collect()
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = LoopbackServer::start();
    let dir = tempfile::tempdir()?;
    let files = make_files(dir.path(), 10)?;
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let with_cofun = upload(server.port(), &files)?;
    let by_hand = upload_by_hand(server.port(), &files)?;
    assert_eq!(with_cofun, by_hand);
    println!(
        "uploaded {} files, {total} bytes, twice: with sendfile_cofun and by hand",
        files.len()
    );
    Ok(())
}
