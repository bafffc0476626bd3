//! A real Apache httpd for interop tests: Debian's `apache2` with the event MPM, started per
//! test in the foreground (`-DFOREGROUND`) from a generated config in a temp dir, on a free
//! loopback port, serving a given docroot with the default handler, and stopped on drop.
//!
//! apache2 forks its workers, so it runs in a process group of its own, and drop signals the
//! whole group and reaps the parent (which reaps its workers): no apache2 process outlives
//! the test. Started as root it must drop to a user for its workers (it refuses to run them
//! as root): `www-data`, hence a temp dir that user can write and a docroot it can read.
//!
//! apache2 is looked up as `$DUGONG_APACHE2` when set (a bogus value simulates a machine
//! without it), else on `PATH`, else at `/usr/sbin/apache2`. When it is missing a test skips
//! with a visible message, except under CI (`CI` set), where it panics.
#![allow(dead_code, unreachable_pub)]

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs apache2's modules.
pub const MODULES: &str = "/usr/lib/apache2/modules";

/// A running apache2 (its parent process, leader of the group its workers are in).
#[derive(Debug)]
pub struct Apache2 {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Apache2 {
    /// Starts apache2 serving `docroot` and closing a connection after
    /// `keep_alive_requests` keep-alive requests (`MaxKeepAliveRequests`), or returns `None`
    /// (after printing `SKIPPED`) when it is not installed and `CI` is not set.
    pub fn start(docroot: &Path, keep_alive_requests: u32) -> Option<Apache2> {
        let binary = match find_daemon("DUGONG_APACHE2", "apache2", "/usr/sbin/apache2") {
            Ok(binary) => binary,
            Err(why) => return missing_daemon("apache2", &why, "apache2"),
        };
        let dir = tempfile::Builder::new()
            .prefix("dugong-apache2-")
            .tempdir()
            .expect("temp dir");
        // Its mutex file and any file a worker makes go here, as `www-data` when run as root.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod dir");
        let log = dir.path().join("error.log");
        let conf = dir.path().join("apache2.conf");
        let launch = |port: u16, stderr: File| {
            fs::write(
                &conf,
                config(dir.path(), docroot, port, keep_alive_requests),
            )
            .expect("write apache2.conf");
            let mut command = Command::new(&binary);
            command
                .arg("-f")
                .arg(&conf)
                .arg("-DFOREGROUND")
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr));
            stop_with_the_test(&mut command);
            command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
        };
        let (child, port) = start_on_a_free_port("apache2", dir.path(), &log, launch, stop);
        Some(Apache2 { child, port, dir })
    }

    /// The port apache2 listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What apache2 logged so far.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Apache2 {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Static files from `docroot` (`index.html` for a directory), loopback only, everything
/// apache2 writes in `dir`. Only the modules that takes: no logging of requests, no
/// Debian site configs (`-f` replaces `apache2.conf`; `ServerRoot` is for relative paths).
fn config(dir: &Path, docroot: &Path, port: u16, keep_alive_requests: u32) -> String {
    let user = if is_root() {
        "User www-data\nGroup www-data\n"
    } else {
        ""
    };
    format!(
        "ServerRoot \"/etc/apache2\"\n\
         PidFile \"{dir}/apache2.pid\"\n\
         Mutex file:{dir} default\n\
         LoadModule mpm_event_module {MODULES}/mod_mpm_event.so\n\
         LoadModule authz_core_module {MODULES}/mod_authz_core.so\n\
         LoadModule mime_module {MODULES}/mod_mime.so\n\
         LoadModule dir_module {MODULES}/mod_dir.so\n\
         TypesConfig /etc/mime.types\n\
         {user}\
         Listen 127.0.0.1:{port}\n\
         ServerName localhost\n\
         ErrorLog \"{dir}/error.log\"\n\
         DocumentRoot \"{docroot}\"\n\
         KeepAlive On\n\
         MaxKeepAliveRequests {keep_alive_requests}\n\
         <Directory \"{docroot}\">\n\
         \x20   Require all granted\n\
         </Directory>\n",
        dir = dir.display(),
        docroot = docroot.display(),
    )
}

/// Whether this process runs as root (apache2 then needs `User` and `Group`).
#[allow(unsafe_code)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Makes the kernel send apache2 `SIGTERM` when the thread that starts it ends, so a test
/// process killed before its drops ran (Ctrl-C reaches only the foreground process group,
/// which apache2 has left) leaves no server behind.
#[allow(unsafe_code)]
fn stop_with_the_test(command: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: `prctl` is a plain system call, and the closure
    // allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Stops apache2: `SIGTERM` to its process group (the parent and every worker), waiting up
/// to 10 s for the parent, which reaps its workers as it stops, else `SIGKILL` to the group;
/// then `SIGKILL` to any apache2 process still in the group.
fn stop(child: &mut Child) {
    let group = child.id() as libc::pid_t;
    // A parent already reaped (one that exited at startup) no longer holds the group's id,
    // which may have been reused: signal the group only while the parent is unreaped.
    if matches!(child.try_wait(), Ok(None)) {
        signal_group(group, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while matches!(child.try_wait(), Ok(None)) {
        if Instant::now() >= deadline {
            // Before the parent is reaped, while the group's id cannot be reused.
            signal_group(group, libc::SIGKILL);
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for pid in stragglers(group) {
        signal_process(pid, libc::SIGKILL);
    }
}

/// The apache2 processes in process group `group` (Linux's `/proc`; elsewhere none are
/// found).
fn stragglers(group: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: libc::pid_t = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
            let (head, tail) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1;
            let pgrp: libc::pid_t = tail.split_whitespace().nth(2)?.parse().ok()?;
            (pgrp == group && comm == "apache2").then_some(pid)
        })
        .collect()
}

/// Sends `signal` to every process in process group `group` (none left is not an error).
fn signal_group(group: libc::pid_t, signal: libc::c_int) {
    // A negative pid names the group.
    signal_process(-group, signal);
}

/// kill(2): `signal` to process `pid`, or to process group `-pid`.
#[allow(unsafe_code)]
fn signal_process(pid: libc::pid_t, signal: libc::c_int) {
    assert!(pid.abs() > 1, "never all processes, nor init's group");
    // SAFETY: kill(2) takes plain integers and touches no memory of this process.
    unsafe {
        libc::kill(pid, signal);
    }
}

include!("daemon.rs");
