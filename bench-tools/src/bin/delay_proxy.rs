//! `delay_proxy`: runs `dugong_harness::DelayProxy` as a process for `benches/compare.sh`.
//! Prints `port=<N>` once listening, then forwards until killed.
//!
//! ```text
//! cargo run --release -p dugong-bench-tools --bin delay_proxy -- \
//!     --upstream 127.0.0.1:8080 --rtt-ms 5
//! port=40123
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use dugong_harness::DelayProxy;

/// A TCP proxy on 127.0.0.1 that delays every byte by half the round trip in each direction.
#[derive(Debug, Parser)]
#[command(name = "delay_proxy")]
struct Args {
    /// Where to forward connections (IP:PORT)
    #[arg(long)]
    upstream: SocketAddr,
    /// Round-trip time added, in milliseconds (half of it each way)
    #[arg(long, default_value_t = 5.0)]
    rtt_ms: f64,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let one_way = Duration::from_secs_f64(args.rtt_ms.max(0.0) / 2000.0);
    let proxy = DelayProxy::start(args.upstream, one_way);
    let mut out = std::io::stdout().lock();
    writeln!(out, "port={}", proxy.port())?;
    out.flush()?;
    drop(out);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
        for e in proxy.errors() {
            eprintln!("delay_proxy: {e}");
        }
    }
}
