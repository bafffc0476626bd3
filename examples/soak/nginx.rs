//! The soak's own nginx: a generated config in a temp dir, a free loopback port, killed and
//! reaped on drop. Two locations matter: `/n/…` answers every request with its own URI (so
//! each response names its request; a POST's body is discarded, and the answer may go out
//! before nginx has read it), and `/big/{k}` serves large static file `k` from the temp
//! dir's `www/` (the query string, which names the request, is ignored).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use dugong::{Body, HttpConnection};
use http::{HeaderMap, Method};

/// nginx's connection limit. Each green task holds one client connection.
pub(crate) const WORKER_CONNECTIONS: u64 = 20_000;

/// A running nginx.
#[derive(Debug)]
pub(crate) struct Nginx {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// nginx's counters (`stub_status`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub(crate) accepts: u64,
    pub(crate) requests: u64,
}

/// `explicit`, else `nginx` on `PATH`, else `/usr/sbin/nginx`.
pub(crate) fn find(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let forced = explicit.map(|path| (path.to_owned(), format!("--nginx {}", path.display())));
    let on_path = forced.is_none();
    find_binary(forced, "nginx", "/usr/sbin/nginx").map_err(|why| {
        if on_path {
            "nginx not found on PATH nor at /usr/sbin/nginx (apt-get install nginx-light, or pass --nginx PATH)".to_owned()
        } else {
            why
        }
    })
}

impl Nginx {
    /// Starts `binary` with the soak's config.
    pub(crate) fn start(binary: &Path) -> Result<Nginx, String> {
        let dir = tempfile::Builder::new()
            .prefix("dugong-soak-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        fs::create_dir_all(dir.path().join("logs")).map_err(|e| format!("logs dir: {e}"))?;
        write_large_files(&dir.path().join("www")).map_err(|e| format!("www dir: {e}"))?;
        // The port is free when picked but may be taken before nginx binds it: retry.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port().map_err(|e| format!("free port: {e}"))?;
            let conf = dir.path().join("nginx.conf");
            fs::write(&conf, config(dir.path(), port))
                .map_err(|e| format!("write nginx.conf: {e}"))?;
            let log = dir.path().join("logs/error.log");
            let stderr = File::create(dir.path().join("logs/stderr.log"))
                .map_err(|e| format!("stderr log: {e}"))?;
            let mut child = Command::new(binary)
                .arg("-e")
                .arg(&log)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr))
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
            match wait_listening(&mut child, port, "nginx") {
                Ok(()) => return Ok(Nginx { child, port, dir }),
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let stderr =
                        fs::read_to_string(dir.path().join("logs/stderr.log")).unwrap_or_default();
                    let log = fs::read_to_string(&log).unwrap_or_default();
                    last_error = format!("{why}\nstderr: {stderr}\nerror.log: {log}");
                    if !last_error.contains("Address already in use") {
                        break;
                    }
                }
            }
        }
        Err(format!("nginx did not start: {last_error}"))
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// nginx's accepted connections and requests so far, the query's own included.
    pub(crate) fn counters(&self) -> Result<Counters, String> {
        let conn = HttpConnection::new("127.0.0.1", self.port).map_err(|e| e.to_string())?;
        conn.send_request(&Method::GET, "/status", &HeaderMap::new(), Body::Empty)
            .and_then(|()| conn.read_response())
            .and_then(|_| conn.read_all())
            .map_err(|e| format!("GET /status: {e}"))
            .and_then(|body| parse_status(&String::from_utf8_lossy(&body)))
    }

    /// `[alert]` and `[crit]` lines of nginx's error log (it logs at `crit` and above).
    pub(crate) fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `stub_status` output: "Active connections: 1 \nserver accepts handled requests\n a h r \n…".
fn parse_status(text: &str) -> Result<Counters, String> {
    let numbers: Vec<u64> = text
        .lines()
        .nth(2)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    match numbers[..] {
        [accepts, _handled, requests] => Ok(Counters { accepts, requests }),
        _ => Err(format!("unexpected stub_status output: {text:?}")),
    }
}

/// The large static files `www/0 .. www/{LARGE_FILES - 1}`, each of their own bytes.
fn write_large_files(www: &Path) -> std::io::Result<()> {
    use crate::pipeliner::{large_byte, LARGE_BYTES, LARGE_FILES};
    fs::create_dir_all(www)?;
    for k in 0..LARGE_FILES {
        let bytes: Vec<u8> = (0..LARGE_BYTES).map(|i| large_byte(k, i)).collect();
        File::create(www.join(k.to_string()))?.write_all(&bytes)?;
    }
    Ok(())
}

include!("../../tests/support/daemon.rs");

/// The config. One process (`master_process off`), so nginx runs as whoever started it, is
/// stopped with one kill, and inherits the soak's raised descriptor limit
/// (`worker_rlimit_nofile` is applied by worker processes only, so it is not set).
fn config(root: &Path, port: u16) -> String {
    let r = root.display();
    format!(
        r#"# generated by examples/soak
daemon off;
master_process off;
worker_processes 1;
pid {r}/logs/nginx.pid;
error_log {r}/logs/error.log crit;
events {{ worker_connections {WORKER_CONNECTIONS}; }}
http {{
    access_log off;
    tcp_nodelay on;
    # the subject of the soak: every connection closes after its 100th response
    keepalive_requests 100;
    keepalive_timeout 300s;
    client_body_temp_path {r}/body;
    proxy_temp_path {r}/proxy;
    fastcgi_temp_path {r}/fastcgi;
    uwsgi_temp_path {r}/uwsgi;
    scgi_temp_path {r}/scgi;
    default_type text/plain;
    server {{
        # the green phase connects thousands of tasks at once
        # a small receive buffer: a POST's 128 KiB body goes out in many writes, the
        # cofunction waiting for the socket between them
        listen 127.0.0.1:{port} backlog=65535 rcvbuf=8k;
        # each response names its request
        location /n/ {{ return 200 "$request_uri\n"; }}
        # large bodies, paced after the first 32 KiB: a read of one spans many waits, and
        # requests pipelined behind one (a POST's body) wait in the socket buffers meanwhile
        location /big/ {{
            alias {r}/www/;
            limit_rate_after 32k;
            limit_rate 4m;
        }}
        location = /status {{ stub_status; }}
    }}
}}
"#
    )
}
