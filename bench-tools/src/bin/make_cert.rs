//! `make_cert`: the certificates for the TLS rows of the peer comparison
//! (`benches/compare.sh`). Makes a CA ([`dugong_harness::TestCa`]) and a server certificate
//! from it for `127.0.0.1` and `localhost`, and writes them in PEM:
//!
//! ```text
//! cargo run --release -p dugong-bench-tools --bin make_cert -- --out DIR
//! ```
//!
//! `DIR/ca.pem` (the CA, for clients: `curl --cacert`, `peer_client --cacert`),
//! `DIR/chain.pem` (server certificate, then the CA's: nginx's `ssl_certificate`) and
//! `DIR/key.pem` (its PKCS #8 key: `ssl_certificate_key`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use dugong_harness::{TestCa, Validity};

/// Writes a fresh CA and a server certificate for 127.0.0.1 and localhost as PEM files.
#[derive(Debug, Parser)]
#[command(name = "make_cert")]
struct Args {
    /// Directory for ca.pem, chain.pem and key.pem (created if missing)
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match write(&args.out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make_cert: error: {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}

fn write(dir: &Path) -> std::io::Result<()> {
    let ca = TestCa::new();
    let identity = ca.issue(&["127.0.0.1", "localhost"], Validity::Current);
    fs::create_dir_all(dir)?;
    fs::write(dir.join("ca.pem"), ca.root_pem())?;
    let chain: String = identity
        .chain
        .iter()
        .map(|cert| pem("CERTIFICATE", cert))
        .collect();
    fs::write(dir.join("chain.pem"), chain)?;
    fs::write(
        dir.join("key.pem"),
        pem("PRIVATE KEY", identity.key.secret_der()),
    )
}

/// `der` in PEM (RFC 7468): base64 in lines of 64 between `label` lines.
fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = Vec::with_capacity(der.len() * 4 / 3 + 4);
    for group in der.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..4 {
            text.push(if i <= group.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize]
            } else {
                b'='
            });
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
