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
    fs::write(dir.join("chain.pem"), identity.chain_pem())?;
    fs::write(dir.join("key.pem"), identity.key_pem())
}
