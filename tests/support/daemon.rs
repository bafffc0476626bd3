// What the launchers of real daemons share (nginx, tinyproxy, lighttpd and apache2 for the
// tests, nginx for the soak): finding the binary, picking a port, waiting until the daemon
// listens. Included (`include!`) by `nginx.rs`, `tinyproxy.rs`, `lighttpd.rs`, `apache2.rs`
// and `examples/soak/nginx.rs`, which are also compiled on their own (by benches and
// examples), so they cannot share a module.

/// `forced` (a path and what named it, for the error) if given, else `name` on `PATH`, else
/// `fallback`.
fn find_binary(
    forced: Option<(std::path::PathBuf, String)>,
    name: &str,
    fallback: &str,
) -> Result<std::path::PathBuf, String> {
    if let Some((path, named_by)) = forced {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{named_by} does not exist"))
        };
    }
    let on_path: Vec<std::path::PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([std::path::PathBuf::from(fallback)])
        .find(|p| p.is_file())
        .ok_or_else(|| format!("not on PATH nor at {fallback}"))
}

/// `$env` when set (a bogus value simulates a machine without the daemon), else `name` on
/// `PATH`, else `fallback`.
#[allow(dead_code)]
fn find_daemon(env: &str, name: &str, fallback: &str) -> Result<std::path::PathBuf, String> {
    let forced = std::env::var_os(env).map(|path| {
        let path = std::path::PathBuf::from(path);
        let named_by = format!("{env}={}", path.display());
        (path, named_by)
    });
    find_binary(forced, name, fallback)
}

/// `what` is not installed: panics under CI (`.ci/run` installs `packages`), else prints a
/// visible skip line. Returns `None` for `?`-style early return.
#[allow(dead_code)]
fn missing_daemon<T>(what: &str, why: &str, packages: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("{what} not found ({why}); .ci/run installs {packages}");
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of passing tests.
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!("SKIPPED: {what} not found (apt-get install {packages}): {why}\n"),
    );
    None
}

/// Starts daemon `name` on a loopback port that was free when picked, trying another port
/// (five in all) when the daemon lost it to someone else. `launch(port, stderr)` writes the
/// daemon's config for `port` and spawns it with `stderr` as its standard error; `stop` ends
/// a child that did not come up; `log` is the daemon's own error log in `dir`, shown with its
/// stderr when it fails.
#[allow(dead_code)]
fn start_on_a_free_port(
    name: &str,
    dir: &std::path::Path,
    log: &std::path::Path,
    mut launch: impl FnMut(u16, std::fs::File) -> std::process::Child,
    stop: impl Fn(&mut std::process::Child),
) -> (std::process::Child, u16) {
    let mut last_error = String::new();
    for _ in 0..5 {
        let port = free_port().expect("bind a free port");
        let _ = std::fs::remove_file(log);
        let stderr_path = dir.join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log");
        let mut child = launch(port, stderr);
        match wait_listening(&mut child, port, name) {
            Ok(()) => return (child, port),
            Err(why) => {
                stop(&mut child);
                let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                let log = std::fs::read_to_string(log).unwrap_or_default();
                last_error = format!("{why}\nstderr: {stderr}\nerror log: {log}");
                let clash = last_error.contains("Address already in use")
                    || last_error.contains("but not from this");
                if !clash {
                    break;
                }
            }
        }
    }
    panic!("{name} did not start: {last_error}");
}

/// Stops a daemon started for a test: kill, then reap.
#[allow(dead_code)]
fn kill_and_reap(child: &mut std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A loopback port that was free a moment ago (a daemon given it may still lose it: its
/// launcher retries, and [`wait_listening`] tells).
fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
}

/// Waits (at most 10 s) until `child` (`name`) accepts connections on 127.0.0.1:`port`.
/// Fails when the child exits first, or when the port answers but the listening socket is
/// not the child's: a launcher picks a free port by binding port 0 and closing it, so two
/// tests may pick the same one, and the second daemon's failure to bind would go unseen
/// while the first one answers for it (until that test stops its daemon).
fn wait_listening(child: &mut std::process::Child, port: u16, name: &str) -> Result<(), String> {
    use std::time::{Duration, Instant};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{name} exited at startup: {status}"));
        }
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return if owns_listener(child.id(), port) {
                Ok(())
            } else {
                Err(format!("port {port} answers, but not from this {name}"))
            };
        }
        if Instant::now() >= deadline {
            return Err(format!("{name} did not accept on port {port} within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port` (Linux's `/proc`;
/// elsewhere it cannot be told, and is assumed).
fn owns_listener(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return true;
    };
    let local = format!("0100007F:{port:04X}");
    let sockets: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Field 3 is the state: 0A is LISTEN; field 9 the socket's inode.
            let listening = fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A");
            let inode = fields.get(9).filter(|_| listening)?;
            Some(format!("socket:[{inode}]"))
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| sockets.iter().any(|s| target.as_os_str() == s.as_str()))
    })
}
