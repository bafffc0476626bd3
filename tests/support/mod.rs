//! Shared helpers for integration tests: the harness peers and the send paths that every
//! driver behaviour test runs through.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::time::Duration;

use dugong::{Body, Config, Error, HttpConnection, Origin, Scheme};
pub use dugong_harness::{
    pattern, DelayProxy, LoopbackServer, ScriptedServer, ServerOptions, Step, Transcript,
};
use http::{HeaderMap, Method};

mod client;

pub use client::{drive, poll_fds, Client};

/// The ways a request can be sent and its response read. Driver behaviour tests loop over
/// [`SendPath::ALL`] and run their body with [`SendPath::run`], so a behaviour is written once
/// and checked through every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendPath {
    /// `HttpConnection::send_request`, blocking the thread.
    Blocking,
    /// `send_request_cofun` / `sendfile_cofun` whose loop body reads what is available (the
    /// seed's loop); the test gets those responses as if it had read them itself.
    Cofun,
    /// `send_request_cofun` iterated with an empty loop body: the cofunction buffers arriving
    /// responses itself, as a blocking send does. Not in [`SendPath::ALL`]; for the tables
    /// about a loop body that declines.
    CofunDeclining,
    /// The whole test body in a green task (`dugong::green::run`) on a green connection,
    /// sending with `send_request`, which suspends the task.
    Green,
    /// `co_send_request` / `co_write` and `co_read_response` / `co_read` / `co_read_all`,
    /// driven by a hand-written `poll(2)` loop, with a read beside a send that waits.
    CoOps,
}

impl SendPath {
    /// Every path.
    pub const ALL: &'static [SendPath] = &[
        SendPath::Blocking,
        SendPath::Cofun,
        SendPath::Green,
        SendPath::CoOps,
    ];

    /// Every path, and a cofunction whose loop body declines, for the tables about a send
    /// that must take arriving responses in by itself.
    pub const ALL_AND_DECLINING: &'static [SendPath] = &[
        SendPath::Blocking,
        SendPath::Cofun,
        SendPath::CofunDeclining,
        SendPath::Green,
        SendPath::CoOps,
    ];

    /// Runs `body` on a new [`Client`] to 127.0.0.1:`port` sending through this path: on
    /// this thread, or for `Green` as the main task of a green runtime (hence `'static`: move
    /// owned copies in). `config`'s timeout is cut to 5 s at most, so a failing test ends.
    /// A panic in `body` names the path.
    pub fn run<R: 'static>(
        self,
        port: u16,
        config: Config,
        body: impl FnOnce(&Client<'_>) -> R + 'static,
    ) -> R {
        self.run_on(Origin::new(Scheme::Http, "127.0.0.1", port), config, body)
    }

    /// [`run`](Self::run) against any origin (an `https` one, say).
    pub fn run_on<R: 'static>(
        self,
        origin: Origin,
        config: Config,
        body: impl FnOnce(&Client<'_>) -> R + 'static,
    ) -> R {
        let _named = NamedOnPanic(self);
        let config = bounded(config);
        match self {
            SendPath::Green => dugong::green::run(move |task| {
                let conn = task.open(&origin, config).expect("valid origin");
                body(&Client::new(self, client::Conn::Green(conn)))
            })
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            _ => body(&Client::new(
                self,
                client::Conn::Plain(HttpConnection::open(&origin, config).expect("valid origin")),
            )),
        }
    }
}

/// Says which path a test failed through.
struct NamedOnPanic(SendPath);

impl Drop for NamedOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("  ... through SendPath::{:?}", self.0);
        }
    }
}

/// `config` with its timeout cut to 5 s at most.
fn bounded(config: Config) -> Config {
    let timeout = config
        .timeout
        .map_or(Duration::from_secs(5), |t| t.min(Duration::from_secs(5)));
    config.timeout(Some(timeout))
}

/// A connection to 127.0.0.1:`port` with a short operation timeout, so a failing test ends.
pub fn connection(port: u16) -> HttpConnection {
    connection_with(port, Config::default())
}

/// As [`connection`], with `config` (its timeout replaced by 5 s unless already shorter).
pub fn connection_with(port: u16, config: Config) -> HttpConnection {
    HttpConnection::with_config("127.0.0.1", port, bounded(config)).expect("valid host")
}

/// Sends a GET for every target (each `/bytes/N` or `/chunked/N/STEP` of the loopback server)
/// before reading any answer, then checks that each response answers its request with the N
/// pattern bytes, and that nothing is left pending.
pub fn pipeline_and_check(conn: &Client<'_>, targets: &[String]) {
    for target in targets {
        conn.get(target).expect("send");
    }
    for (i, target) in targets.iter().enumerate() {
        let resp = conn.read_response().expect("head");
        assert_eq!(&resp.path, target);
        let n: usize = target
            .split('/')
            .nth(2)
            .and_then(|n| n.parse().ok())
            .expect("a size in the target");
        assert_eq!(conn.read_all().expect("body"), pattern(n), "response {i}");
    }
    assert!(!conn.response_pending());
}

/// A header map from `(name, value)` pairs.
pub fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, http::HeaderValue::from_static(value));
    }
    map
}

/// Runs example `name` (debug build) with `args`; asserts that it succeeded and returns its
/// standard output.
pub fn run_example(name: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", name, "--"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    succeeded(name, output)
}

/// The standard output of a run that must have succeeded.
fn succeeded(name: &str, output: std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "example {name}: status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs example `name` built in release with `panic = "abort"` (in its own target directory,
/// so the normal build is not invalidated); asserts that it succeeded and returns its
/// standard output.
pub fn run_example_with_panic_abort(name: &str) -> String {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let target = std::path::Path::new(manifest)
        .join("target")
        .join("panic-abort");
    let output = std::process::Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--release", "--example", name])
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(manifest)
        .output()
        .expect("cargo runs");
    succeeded(name, output)
}

/// What the client talks to: a plain peer itself, or a TLS terminator in front of it (with a
/// certificate from a CA made for the test). Tables loop over [`Front::ALL`] for a TLS column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// The peer itself, over plain HTTP.
    Plain,
    /// TLS in front of the peer; the peer's close becomes `close_notify` and a close, its
    /// reset an abrupt close (a truncation to the client, as a reset is).
    #[cfg(feature = "tls")]
    Tls,
}

/// Keeps a [`Front`] running while its test runs.
#[derive(Debug)]
pub struct FrontGuard {
    #[cfg(feature = "tls")]
    _tls: Option<dugong_harness::TlsTerminator>,
}

impl Front {
    /// Every front this build supports.
    #[cfg(feature = "tls")]
    pub const ALL: &'static [Front] = &[Front::Plain, Front::Tls];
    /// Every front this build supports.
    #[cfg(not(feature = "tls"))]
    pub const ALL: &'static [Front] = &[Front::Plain];

    /// Starts this front for the peer at `peer`: the origin the client connects to, a config
    /// that trusts it, and the guard that keeps it running.
    pub fn open(self, peer: std::net::SocketAddr) -> (Origin, Config, FrontGuard) {
        self.open_with(peer, Config::default())
    }

    /// As [`open`](Self::open), with the test's own settings (timeouts, limits) in `config`;
    /// only its TLS trust is replaced.
    pub fn open_with(
        self,
        peer: std::net::SocketAddr,
        config: Config,
    ) -> (Origin, Config, FrontGuard) {
        match self {
            Front::Plain => (
                Origin::new(Scheme::Http, "127.0.0.1", peer.port()),
                config,
                FrontGuard {
                    #[cfg(feature = "tls")]
                    _tls: None,
                },
            ),
            #[cfg(feature = "tls")]
            Front::Tls => {
                use dugong_harness::{CloseMode, TestCa, TlsTerminator, Validity};
                let ca = TestCa::new();
                let identity = ca.issue(&["127.0.0.1"], Validity::Current);
                let tls = TlsTerminator::start(peer, identity, CloseMode::CloseNotify);
                let mut roots = dugong::rustls::RootCertStore::empty();
                roots.add(ca.root()).expect("test CA root");
                let trust = dugong::TlsConfig::with_root_certificates(roots).expect("tls config");
                let origin = Origin::new(Scheme::Https, "127.0.0.1", tls.port());
                (origin, config.tls(trust), FrontGuard { _tls: Some(tls) })
            }
        }
    }
}
