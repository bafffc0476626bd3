//! Shared helpers for integration tests: the harness peers and the send paths that every
//! driver behaviour test runs through.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::time::Duration;

use dugong::{Body, Config, Error, HttpConnection};
pub use dugong_harness::{
    pattern, DelayProxy, LoopbackServer, ScriptedServer, ServerOptions, Step, Transcript,
};
use http::{HeaderMap, Method};

/// The ways a request can be sent. Driver behaviour tests loop over [`SendPath::ALL`], so a
/// behaviour is written once and checked through every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendPath {
    /// `HttpConnection::send_request`.
    Blocking,
    /// `HttpConnection::send_request_cofun`, iterated with an empty loop body (the
    /// cofunction then buffers arriving responses itself, as a blocking send does).
    Cofun,
}

impl SendPath {
    /// Every path.
    pub const ALL: &'static [SendPath] = &[SendPath::Blocking, SendPath::Cofun];

    /// Sends a request head (and in-memory body) through this path.
    pub fn send(
        self,
        conn: &HttpConnection,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: Body<'_>,
    ) -> Result<(), Error> {
        match self {
            SendPath::Blocking => conn.send_request(method, target, headers, body),
            SendPath::Cofun => {
                for step in conn.send_request_cofun(method, target, headers, body)? {
                    step?;
                }
                Ok(())
            }
        }
    }

    /// Sends a GET with no headers.
    pub fn get(self, conn: &HttpConnection, target: &str) -> Result<(), Error> {
        self.send(conn, &Method::GET, target, &HeaderMap::new(), Body::Empty)
    }
}

/// A connection to 127.0.0.1:`port` with a short operation timeout, so a failing test ends.
pub fn connection(port: u16) -> HttpConnection {
    connection_with(port, Config::default())
}

/// As [`connection`], with `config` (its timeout replaced by 5 s unless already shorter).
pub fn connection_with(port: u16, config: Config) -> HttpConnection {
    let timeout = config
        .get_timeout()
        .map_or(Duration::from_secs(5), |t| t.min(Duration::from_secs(5)));
    HttpConnection::with_config("127.0.0.1", port, config.timeout(Some(timeout)))
        .expect("valid host")
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
