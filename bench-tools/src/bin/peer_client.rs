//! `peer_client`: dugong's side of the peer comparison (`benches/compare.sh`).
//!
//! One connection, one mode, one machine-readable result line on stdout:
//!
//! ```text
//! cargo run --release -p dugong-bench-tools --bin peer_client -- \
//!     --port 8080 --mode cofun --depth 16 --duration 5
//! mode=cofun depth=16 requests=81234 bytes=8123400 elapsed_s=5.000 reqs_per_sec=16246.8 \
//!   bytes_per_sec=1624680.0 peak_rss_kb=2512
//! ```
//!
//! Modes: `blocking` (GETs with `send_request`, a sliding window of `--depth`), `cofun` (GETs
//! sent with `send_request_cofun`, the loop body reading whenever response data is there,
//! at most `--depth` in flight), `get-big` (GETs of `--size` bytes read through one reused
//! 1 MiB buffer, one at a time), `put-big` (PUTs of `--size` bytes written from one reused
//! 1 MiB buffer, each answered by 204), `connect` (`--requests` fresh connections, each
//! timed from `connect()` to its return, then used for one GET; the result line adds
//! `connect_ms_median`, and the run uses that many connections). Every status and body length
//! is checked; any mismatch is an error (exit status 1).
//!
//! `--cacert FILE` speaks HTTPS, trusting only the certificates in `FILE` (PEM).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use dugong::rustls::pki_types::pem::PemObject;
use dugong::rustls::pki_types::CertificateDer;
use dugong::{Body, Config, HttpConnection, Origin, Scheme, TlsConfig};
use http::{HeaderMap, Method, StatusCode};

/// One reused buffer for big bodies.
const BIG_BUF: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// GETs with blocking `send_request`, up to --depth in flight
    Blocking,
    /// GETs with `send_request_cofun`, up to --depth in flight
    Cofun,
    /// GETs of --size bytes each through a reused 1 MiB buffer, one at a time
    GetBig,
    /// PUTs of --size bytes each from a reused 1 MiB buffer, one at a time, expecting 204
    PutBig,
    /// --requests fresh connections: connect() timed, then one GET each
    Connect,
}

/// Benchmark client for the peer comparison: one connection, one mode, one result line.
#[derive(Debug, Parser)]
#[command(name = "peer_client")]
struct Args {
    /// Server host
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port
    #[arg(long)]
    port: u16,
    /// What to do
    #[arg(long, value_enum, default_value_t = Mode::Blocking)]
    mode: Mode,
    /// Requests in flight at most (blocking and cofun)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    depth: u32,
    /// Requests to complete (at most, with --duration)
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    requests: u64,
    /// Stop sending new requests after this many seconds (the ones in flight are finished)
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Request target (default: /sink for put-big, else /)
    #[arg(long)]
    target: Option<String>,
    /// Expected response body length (GET modes) or request body length (put-big)
    #[arg(long, default_value_t = 100)]
    size: u64,
    /// Per-operation timeout in seconds
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Speak HTTPS, trusting only the CA certificates in this PEM file
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Send each request with its own syscall (`Config::coalesce_writes(false)`)
    #[arg(long)]
    no_coalesce: bool,
}

/// What a run did.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    bytes: u64,
}

type BoxResult<T> = Result<T, Box<dyn Error>>;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = format!("peer_client: error: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> BoxResult<()> {
    let timeout = Duration::from_secs_f64(args.timeout);
    let mut config = Config::default()
        .timeout(Some(timeout))
        .connect_timeout(Some(timeout))
        .coalesce_writes(!args.no_coalesce);
    let scheme = match &args.cacert {
        None => Scheme::Http,
        Some(file) => {
            config = config.tls(trusting(file)?);
            Scheme::Https
        }
    };
    let origin = Origin::new(scheme, &args.host, args.port);
    if args.mode == Mode::Connect {
        return connect_times(args, &origin, &config);
    }
    let conn = HttpConnection::open(&origin, config)?;
    conn.connect()?;
    let deadline_after = args.duration.map(Duration::from_secs_f64);
    let target = args.target.clone().unwrap_or_else(|| {
        if args.mode == Mode::PutBig {
            "/sink".to_owned()
        } else {
            "/".to_owned()
        }
    });
    let run = Run {
        conn: &conn,
        target: &target,
        size: args.size,
        depth: u64::from(args.depth),
        max_requests: args.requests,
        duration: deadline_after,
        start: Instant::now(),
    };
    let tally = match args.mode {
        Mode::Blocking => run.blocking()?,
        Mode::Cofun => run.cofun()?,
        Mode::GetBig => run.get_big()?,
        Mode::PutBig => run.put_big()?,
        Mode::Connect => unreachable!("handled above"),
    };
    let elapsed = run.start.elapsed().as_secs_f64();
    if conn.response_pending() {
        return Err("responses still pending at the end".into());
    }
    let mode = match args.mode {
        Mode::Blocking => "blocking",
        Mode::Cofun => "cofun",
        Mode::GetBig => "get-big",
        Mode::PutBig => "put-big",
        Mode::Connect => unreachable!("handled above"),
    };
    println!(
        "mode={mode} depth={} requests={} bytes={} elapsed_s={elapsed:.6} reqs_per_sec={:.1} \
         bytes_per_sec={:.1} peak_rss_kb={}",
        args.depth,
        tally.requests,
        tally.bytes,
        tally.requests as f64 / elapsed,
        tally.bytes as f64 / elapsed,
        peak_rss_kb().map_or_else(|| "unknown".to_owned(), |kb| kb.to_string()),
    );
    Ok(())
}

/// A TLS configuration trusting only the certificates in the PEM file `file`.
fn trusting(file: &Path) -> BoxResult<TlsConfig> {
    let mut roots = dugong::rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(file)? {
        roots.add(cert?)?;
    }
    if roots.is_empty() {
        return Err(format!("no certificate in {}", file.display()).into());
    }
    Ok(TlsConfig::with_root_certificates(roots)?)
}

/// `--mode connect`: `--requests` fresh connections, each `connect()` timed (TCP and, for
/// HTTPS, the TLS handshake), then one GET of `--target` checked; prints the result line
/// with the median connect time.
fn connect_times(args: &Args, origin: &Origin, config: &Config) -> BoxResult<()> {
    let target = args.target.as_deref().unwrap_or("/");
    let mut times = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut tally = Tally::default();
    let start = Instant::now();
    for _ in 0..args.requests {
        let conn = HttpConnection::open(origin, config.clone())?;
        let started = Instant::now();
        conn.connect()?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        conn.send_request(&Method::GET, target, &HeaderMap::new(), Body::Empty)?;
        let run = Run {
            conn: &conn,
            target,
            size: args.size,
            depth: 1,
            max_requests: 1,
            duration: None,
            start,
        };
        run.read_one(&mut buf, &mut tally)?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    println!(
        "mode=connect depth=1 requests={} bytes={} elapsed_s={elapsed:.6} \
         connect_ms_median={:.3} connect_ms_min={:.3} connect_ms_max={:.3} peak_rss_kb={}",
        tally.requests,
        tally.bytes,
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        peak_rss_kb().map_or_else(|| "unknown".to_owned(), |kb| kb.to_string()),
    );
    Ok(())
}

/// The parameters of one run.
struct Run<'a> {
    conn: &'a HttpConnection,
    target: &'a str,
    size: u64,
    depth: u64,
    max_requests: u64,
    duration: Option<Duration>,
    start: Instant,
}

impl Run<'_> {
    /// Whether another request may be started.
    fn may_send(&self, sent: u64) -> bool {
        sent < self.max_requests && self.duration.is_none_or(|d| self.start.elapsed() < d)
    }

    /// Checks a response head: `expected` status and, when the length is known, `self.size`.
    fn check_head(&self, response: &dugong::Response, expected: StatusCode) -> BoxResult<()> {
        if response.status != expected {
            return Err(format!(
                "{} {}: expected status {expected}, got {}",
                response.method, response.path, response.status
            )
            .into());
        }
        Ok(())
    }

    fn check_len(&self, got: u64) -> BoxResult<()> {
        if got != self.size {
            return Err(format!(
                "GET {}: expected a {}-byte body, got {got} bytes",
                self.target, self.size
            )
            .into());
        }
        Ok(())
    }

    /// Reads one whole small response (head and body) and checks it.
    fn read_one(&self, buf: &mut [u8], tally: &mut Tally) -> BoxResult<()> {
        let response = self.conn.read_response()?;
        self.check_head(&response, StatusCode::OK)?;
        let mut len = 0u64;
        loop {
            match self.conn.read(buf)? {
                0 => break,
                n => len += n as u64,
            }
        }
        self.check_len(len)?;
        tally.requests += 1;
        tally.bytes += len;
        Ok(())
    }

    /// Blocking `send_request` with a sliding window of `depth`.
    fn blocking(&self) -> BoxResult<Tally> {
        let headers = HeaderMap::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut tally = Tally::default();
        let mut sent = 0u64;
        loop {
            if sent - tally.requests < self.depth && self.may_send(sent) {
                self.conn
                    .send_request(&Method::GET, self.target, &headers, Body::Empty)?;
                sent += 1;
            } else if sent > tally.requests {
                self.read_one(&mut buf, &mut tally)?;
            } else {
                return Ok(tally);
            }
        }
    }

    /// `send_request_cofun`, reading in the loop body whenever response data is available,
    /// at most `depth` requests in flight.
    fn cofun(&self) -> BoxResult<Tally> {
        let headers = HeaderMap::new();
        let mut reader = Reader {
            run: self,
            buf: vec![0u8; 64 * 1024],
            current: 0,
            tally: Tally::default(),
        };
        let mut sent = 0u64;
        while self.may_send(sent) {
            while sent - reader.tally.requests >= self.depth {
                reader.step()?;
            }
            for step in
                self.conn
                    .send_request_cofun(&Method::GET, self.target, &headers, Body::Empty)?
            {
                step?;
                reader.step()?;
            }
            sent += 1;
        }
        while self.conn.response_pending() {
            reader.step()?;
        }
        if reader.tally.requests != sent {
            return Err(format!("sent {sent} requests, {} answered", reader.tally.requests).into());
        }
        Ok(reader.tally)
    }

    /// GETs of `size` bytes, one at a time, read through one reused 1 MiB buffer.
    fn get_big(&self) -> BoxResult<Tally> {
        let headers = HeaderMap::new();
        // Non-zero, so the whole buffer is resident from the start (the RSS rows compare a
        // 1 GiB body with a tiny one read the same way).
        let mut buf = vec![0x5au8; BIG_BUF];
        let mut tally = Tally::default();
        while self.may_send(tally.requests) {
            self.conn
                .send_request(&Method::GET, self.target, &headers, Body::Empty)?;
            self.read_one(&mut buf, &mut tally)?;
        }
        Ok(tally)
    }

    /// PUTs of `size` bytes, one at a time, written from one reused 1 MiB buffer; each must be
    /// answered by 204 with no body.
    fn put_big(&self) -> BoxResult<Tally> {
        let headers = HeaderMap::new();
        let data: Vec<u8> = (0..BIG_BUF).map(|i| (i % 251) as u8).collect();
        let mut tally = Tally::default();
        while self.may_send(tally.requests) {
            self.conn.send_request(
                &Method::PUT,
                self.target,
                &headers,
                Body::Following(self.size),
            )?;
            let mut left = self.size;
            while left > 0 {
                let n = usize::try_from(left).map_or(BIG_BUF, |l| l.min(BIG_BUF));
                self.conn.write(&data[..n])?;
                left -= n as u64;
            }
            let response = self.conn.read_response()?;
            self.check_head(&response, StatusCode::NO_CONTENT)?;
            let extra = self.conn.discard()?;
            if extra != 0 {
                return Err(format!("PUT {}: 204 with a {extra}-byte body", self.target).into());
            }
            tally.requests += 1;
            tally.bytes += self.size;
        }
        Ok(tally)
    }
}

/// The loop body of the cofunction mode: one read step whenever called.
struct Reader<'r, 'a> {
    run: &'r Run<'a>,
    buf: Vec<u8>,
    /// Body bytes of the current response so far.
    current: u64,
    tally: Tally,
}

impl Reader<'_, '_> {
    /// Reads a response head or some body bytes, checking each response when it completes.
    fn step(&mut self) -> BoxResult<()> {
        let conn = self.run.conn;
        if conn.has_active_response() {
            let n = conn.read(&mut self.buf)?;
            if n == 0 {
                return Err("body ended early".into());
            }
            self.current += n as u64;
        } else {
            let response = conn.read_response()?;
            self.run.check_head(&response, StatusCode::OK)?;
            self.current = 0;
        }
        if !conn.has_active_response() {
            self.run.check_len(self.current)?;
            self.tally.requests += 1;
            self.tally.bytes += self.current;
        }
        Ok(())
    }
}

/// The process's peak resident set size (`VmHWM`), in KiB.
fn peak_rss_kb() -> Option<u64> {
    dugong_harness::peak_rss_kib()
}
