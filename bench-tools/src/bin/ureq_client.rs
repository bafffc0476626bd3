//! `ureq_client`: the ureq peer of the comparison (`benches/compare.sh`). ureq sends one
//! request at a time (it cannot pipeline): depth-1 GETs over its pooled keep-alive
//! connection, every status and body length checked, one result line like `peer_client`'s:
//!
//! ```text
//! cargo run --release -p dugong-bench-tools --bin ureq_client -- --port 8080 --duration 5
//! mode=ureq depth=1 requests=40000 bytes=4000000 elapsed_s=5.000 reqs_per_sec=8000.0 ...
//! ```
//!
//! `--cacert FILE` speaks HTTPS (rustls, ring), trusting only the certificates in `FILE`.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::Agent;

/// Benchmark client for the peer comparison: ureq, depth-1 GETs on one pooled connection.
#[derive(Debug, Parser)]
#[command(name = "ureq_client")]
struct Args {
    /// Server host
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port
    #[arg(long)]
    port: u16,
    /// Requests to complete (at most, with --duration)
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    requests: u64,
    /// Stop after this many seconds
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Request target
    #[arg(long, default_value = "/")]
    target: String,
    /// Expected response body length
    #[arg(long, default_value_t = 100)]
    size: u64,
    /// Per-request timeout in seconds
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Speak HTTPS, trusting only the CA certificates in this PEM file
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ureq_client: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    let mut config = Agent::config_builder()
        .timeout_global(Some(Duration::from_secs_f64(args.timeout)))
        .http_status_as_error(false)
        .max_idle_connections_per_host(1);
    let scheme = match &args.cacert {
        None => "http",
        Some(file) => {
            config = config.tls_config(trusting(file)?);
            "https"
        }
    };
    let agent: Agent = config.build().into();
    let url = format!("{scheme}://{}:{}{}", args.host, args.port, args.target);
    let duration = args.duration.map(Duration::from_secs_f64);
    let start = Instant::now();
    let (mut requests, mut bytes) = (0u64, 0u64);
    while requests < args.requests && duration.is_none_or(|d| start.elapsed() < d) {
        let mut response = agent.get(&url).call()?;
        if response.status() != 200 {
            return Err(
                format!("GET {url}: expected status 200, got {}", response.status()).into(),
            );
        }
        let body = response.body_mut().read_to_vec()?;
        if body.len() as u64 != args.size {
            return Err(format!(
                "GET {url}: expected a {}-byte body, got {} bytes",
                args.size,
                body.len()
            )
            .into());
        }
        requests += 1;
        bytes += body.len() as u64;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rss =
        dugong_harness::peak_rss_kib().map_or_else(|| "unknown".to_owned(), |kib| kib.to_string());
    println!(
        "mode=ureq depth=1 requests={requests} bytes={bytes} elapsed_s={elapsed:.6} \
         reqs_per_sec={:.1} bytes_per_sec={:.1} peak_rss_kb={rss}",
        requests as f64 / elapsed,
        bytes as f64 / elapsed,
    );
    Ok(())
}

/// A TLS configuration trusting only the certificates in the PEM file `file`.
fn trusting(file: &Path) -> Result<TlsConfig, Box<dyn Error>> {
    let pem = std::fs::read(file)?;
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(cert) = item? {
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return Err(format!("no certificate in {}", file.display()).into());
    }
    Ok(TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&certs))
        .build())
}
