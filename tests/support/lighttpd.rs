//! A real lighttpd for interop tests: Debian's `lighttpd`, started per test in the
//! foreground (`-D`) from a generated config in a temp dir, on a free loopback port, serving
//! a given docroot with `mod_staticfile` only, and killed (and reaped) on drop.
//!
//! lighttpd is looked up as `$DUGONG_LIGHTTPD` when set (a bogus value simulates a machine
//! without it), else on `PATH`, else at `/usr/sbin/lighttpd`. When it is missing a test skips
//! with a visible message, except under CI (`CI` set), where it panics.
#![allow(dead_code, unreachable_pub)]

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running lighttpd.
#[derive(Debug)]
pub struct Lighttpd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Lighttpd {
    /// Starts lighttpd serving `docroot` and closing a connection after
    /// `keep_alive_requests` requests (`server.max-keep-alive-requests`), or returns `None`
    /// (after printing `SKIPPED`) when it is not installed and `CI` is not set.
    pub fn start(docroot: &Path, keep_alive_requests: u32) -> Option<Lighttpd> {
        let binary = match find_daemon("DUGONG_LIGHTTPD", "lighttpd", "/usr/sbin/lighttpd") {
            Ok(binary) => binary,
            Err(why) => return missing_daemon("lighttpd", &why, "lighttpd"),
        };
        let dir = tempfile::Builder::new()
            .prefix("dugong-lighttpd-")
            .tempdir()
            .expect("temp dir");
        let log = dir.path().join("error.log");
        let conf = dir.path().join("lighttpd.conf");
        let launch = |port: u16, stderr: File| {
            fs::write(
                &conf,
                config(dir.path(), docroot, port, keep_alive_requests),
            )
            .expect("write lighttpd.conf");
            Command::new(&binary)
                .arg("-D")
                .arg("-f")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
        };
        let (child, port) =
            start_on_a_free_port("lighttpd", dir.path(), &log, launch, kill_and_reap);
        Some(Lighttpd { child, port, dir })
    }

    /// The port lighttpd listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What lighttpd logged so far.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Lighttpd {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// Static files from `docroot` (`index.html` for a directory), loopback only, the log and
/// any buffered request bodies in `dir`.
fn config(dir: &Path, docroot: &Path, port: u16, keep_alive_requests: u32) -> String {
    format!(
        "server.document-root = \"{docroot}\"\n\
         server.bind = \"127.0.0.1\"\n\
         server.port = {port}\n\
         server.errorlog = \"{log}\"\n\
         server.upload-dirs = (\"{dir}\")\n\
         server.max-keep-alive-requests = {keep_alive_requests}\n\
         server.modules = (\"mod_staticfile\")\n\
         index-file.names = (\"index.html\")\n",
        docroot = docroot.display(),
        log = dir.join("error.log").display(),
        dir = dir.display(),
    )
}

include!("daemon.rs");
