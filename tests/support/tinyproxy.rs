//! A real forward proxy for interop tests: Debian's `tinyproxy`, started per test in the
//! foreground from a generated config in a temp dir, on a free loopback port, with Basic
//! credentials [`USER`]:[`PASSWORD`] required, and killed (and reaped) on drop.
//!
//! tinyproxy is looked up as `$DUGONG_TINYPROXY` when set (a bogus value simulates a machine
//! without it), else on `PATH`, else at `/usr/bin/tinyproxy`. When it is missing a test skips
//! with a visible message, except under CI (`CI` set), where it panics.
#![allow(dead_code, unreachable_pub)]

use std::fs::{self, File};
use std::process::{Child, Command, Stdio};

/// The user tinyproxy requires.
pub const USER: &str = "user";
/// The password tinyproxy requires (its config syntax allows no `@` or spaces in it).
pub const PASSWORD: &str = "secret";

/// A running tinyproxy.
#[derive(Debug)]
pub struct Tinyproxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Starts tinyproxy, or returns `None` (after printing `SKIPPED`) when it is not
    /// installed and `CI` is not set.
    pub fn start() -> Option<Tinyproxy> {
        let binary = match find_daemon("DUGONG_TINYPROXY", "tinyproxy", "/usr/bin/tinyproxy") {
            Ok(binary) => binary,
            Err(why) => return missing_daemon("tinyproxy", &why, "tinyproxy"),
        };
        let dir = tempfile::Builder::new()
            .prefix("dugong-tinyproxy-")
            .tempdir()
            .expect("temp dir");
        // The port is free when picked but may be taken before tinyproxy binds it: retry.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port().expect("bind a free port");
            let conf = dir.path().join("tinyproxy.conf");
            fs::write(&conf, config(dir.path(), port)).expect("write tinyproxy.conf");
            let stderr_path = dir.path().join("stderr.log");
            let stderr = File::create(&stderr_path).expect("stderr log");
            let mut child = Command::new(&binary)
                .arg("-d")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            match wait_listening(&mut child, port, "tinyproxy") {
                Ok(()) => {
                    return Some(Tinyproxy {
                        child,
                        port,
                        _dir: dir,
                    })
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
                    let log =
                        fs::read_to_string(dir.path().join("tinyproxy.log")).unwrap_or_default();
                    last_error = format!("{why}\nstderr: {stderr}\nlog: {log}");
                }
            }
        }
        panic!("tinyproxy did not start: {last_error}");
    }

    /// The port tinyproxy listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// Loopback only, every `CONNECT` port allowed (no `ConnectPort` line allows all),
/// credentials required, logs in the temp dir.
fn config(dir: &std::path::Path, port: u16) -> String {
    format!(
        "Port {port}\n\
         Listen 127.0.0.1\n\
         Allow 127.0.0.1\n\
         Timeout 30\n\
         MaxClients 200\n\
         LogLevel Info\n\
         LogFile \"{log}\"\n\
         PidFile \"{pid}\"\n\
         BasicAuth {USER} {PASSWORD}\n",
        log = dir.join("tinyproxy.log").display(),
        pid = dir.join("tinyproxy.pid").display(),
    )
}

include!("daemon.rs");
