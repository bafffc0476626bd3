//! The first loop of Python dugong's "Coroutine Support" chapter, in Rust: pipelined
//! downloads where the body of the `for` loop reads responses whenever the cofunction that is
//! sending suspends, on the same connection.
//!
//! Runs against the embedded loopback server and writes the documents into a temporary
//! directory: `cargo run --example seed_download`.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use dugong::{Body, Error, HttpConnection};
use dugong_harness::LoopbackServer;
use http::{HeaderMap, Method, StatusCode};

/// Downloads `documents` over one pipelined connection into `dir`.
pub(crate) fn download(port: u16, documents: &[String], dir: &Path) -> Result<(), Error> {
    let conn = HttpConnection::new("127.0.0.1", port)?;
    let mut out: Option<File> = None;
    let mut read_some = |conn: &HttpConnection| -> Result<(), Error> {
        if conn.has_active_response() {
            let mut buf = [0u8; 8192];
            let n = conn.read(&mut buf)?;
            if let Some(file) = out.as_mut() {
                file.write_all(&buf[..n])?;
            }
        } else {
            let resp = conn.read_response()?;
            assert_eq!(resp.status, StatusCode::OK);
            out = Some(File::create(dir.join(resp.path[1..].replace('/', "_")))?);
        }
        Ok(())
    };
    for doc in documents {
        for step in conn.send_request_cofun(&Method::GET, doc, &HeaderMap::new(), Body::Empty)? {
            step?;
            read_some(&conn)?; // runs whenever the coroutine suspends
        }
    }
    while conn.response_pending() {
        read_some(&conn)?;
    }
    Ok(())
}

/// The documents the example fetches: sizes from 0 bytes to a few hundred KiB.
pub(crate) fn documents() -> Vec<String> {
    (0..40).map(|i| format!("/bytes/{}", i * i * 97)).collect()
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = LoopbackServer::start();
    let dir = tempfile::tempdir()?;
    let documents = documents();
    download(server.port(), &documents, dir.path())?;
    let mut total = 0;
    for doc in &documents {
        total += std::fs::metadata(dir.path().join(doc[1..].replace('/', "_")))?.len();
    }
    println!(
        "downloaded {} documents, {total} bytes, over one pipelined connection",
        documents.len()
    );
    Ok(())
}
