//! Pipelines GETs over one connection with a sliding window: at most `--depth` requests in
//! flight, through blocking calls, cofunctions or a green task.
//!
//! ```text
//! cargo run --release --example pipeline -- --port 8080 --target /b100 --requests 10000 --depth 16 --mode cofun
//! ```
//!
//! Prints `requests=N bytes=M`. `tests/syscalls.rs` runs it under `strace` to count the
//! syscalls each request costs.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use dugong::{green, Body, Error, HttpConnection, Park};
use http::{HeaderMap, Method};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// `send_request` and `read_response` on a blocking connection.
    Blocking,
    /// `send_request_cofun`, reading responses in the loop body when they arrive.
    Cofun,
    /// `send_request` and `read_response` in a green task.
    Green,
}

#[derive(Debug, Parser)]
#[command(about = "Pipelines GETs over one connection with a sliding window")]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: u16,
    #[arg(long, default_value = "/")]
    target: String,
    /// Requests to send in all
    #[arg(long, default_value_t = 1000)]
    requests: u64,
    /// Requests in flight at most
    #[arg(long, default_value_t = 1)]
    depth: u64,
    #[arg(long, value_enum, default_value = "blocking")]
    mode: Mode,
}

/// Requests answered and body bytes read.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    bytes: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let tally =
        match args.mode {
            Mode::Blocking => HttpConnection::new(&args.host, args.port)
                .and_then(|conn| window(&conn, &args, false)),
            Mode::Cofun => HttpConnection::new(&args.host, args.port)
                .and_then(|conn| window(&conn, &args, true)),
            Mode::Green => {
                let (host, port) = (args.host.clone(), args.port);
                green::run(move |task| {
                    task.connect(&host, port)
                        .and_then(|conn| window(&conn, &args, false))
                })
                .unwrap_or_else(|_| Err(Error::Cancelled))
            }
        };
    match tally {
        Ok(t) => {
            println!("requests={} bytes={}", t.requests, t.bytes);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pipeline: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends `args.requests` GETs keeping at most `args.depth` in flight, reading each response
/// in full; with `cofun`, each request goes through a cofunction whose loop body reads.
fn window(conn: &HttpConnection<impl Park>, args: &Args, cofun: bool) -> Result<Tally, Error> {
    let headers = HeaderMap::new();
    let mut tally = Tally::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut read_one = |tally: &mut Tally| -> Result<(), Error> {
        conn.read_response()?;
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                break;
            }
            tally.bytes += n as u64;
        }
        tally.requests += 1;
        Ok(())
    };
    for sent in 0..args.requests {
        while sent - tally.requests >= args.depth {
            read_one(&mut tally)?;
        }
        if cofun {
            let cofun =
                conn.send_request_cofun(&Method::GET, &args.target, &headers, Body::Empty)?;
            for step in cofun {
                step?;
                read_one(&mut tally)?;
            }
        } else {
            conn.send_request(&Method::GET, &args.target, &headers, Body::Empty)?;
        }
    }
    while conn.response_pending() {
        read_one(&mut tally)?;
    }
    Ok(tally)
}
