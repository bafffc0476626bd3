//! A real nginx for interop tests: started per test from a generated config in a temp dir, on
//! a free loopback port, and killed (and reaped) on drop.
//!
//! The config follows `/work/shared/reference/nginx-anchor.conf`. Locations:
//!
//! - `/` static files from the docroot: `/b100` (100 bytes), `/m100` (100 MiB, sparse, with
//!   markers, see [`m100_check`]), `/f0` … `/f149` (distinct small files, [`numbered_body`]),
//!   `/ssi/t.html` (SSI, answered with `Transfer-Encoding: chunked`).
//! - `/m100` always goes out with `sendfile on` (as in the anchor config).
//! - `/r204`: `return 204` (nginx discards any request body itself).
//! - `/dav/…`: WebDAV `PUT` that writes the body to [`Nginx::dav_file`] (201, or 204 when
//!   overwriting).
//! - With the echo module only: `/sink` (reads the body, answers 204), `/echo` (echoes the
//!   request body, chunked), `/chunked` (`hello\nworld\n`, chunked).
//!
//! With [`Listener::Tls`] the server listens with `ssl` instead, on a certificate for
//! `127.0.0.1` and `localhost` from a [`TestCa`] made at start; [`Nginx::client_config`]
//! trusts that CA only.
//!
//! nginx is looked up as `$DUGONG_NGINX` when set (a bogus value simulates a machine without
//! nginx), else on `PATH`, else at `/usr/sbin/nginx`; the echo module likewise as
//! `$DUGONG_NGINX_ECHO`, else [`ECHO_MODULE`]. When it is missing a test skips with a
//! visible message, except under CI (`CI` set), where it panics.
#![allow(dead_code, unreachable_pub)]

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use dugong::{Origin, Scheme};
use dugong_harness::{Identity, TestCa, Validity};

/// The echo module as Debian's `libnginx-mod-http-echo` installs it.
pub const ECHO_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_echo_module.so";

/// Size of `/m100`.
pub const M100_LEN: u64 = 100 << 20;

/// Number of `/fN` files.
pub const NUMBERED_FILES: usize = 150;

/// The contents of `/b100`.
pub fn b100() -> Vec<u8> {
    (0..100u8).map(|i| b'A' + i % 58).collect()
}

/// The contents of `/f{i}`: distinct text and length for every `i`.
pub fn numbered_body(i: usize) -> Vec<u8> {
    format!("file {i:03};").repeat(i % 7 + 1).into_bytes()
}

/// Byte `i` of an upload body: not periodic at any small stride, so a lost, duplicated or
/// reordered block shows.
pub fn upload_byte(i: u64) -> u8 {
    ((i ^ (i >> 11) ^ (i >> 19)) % 251) as u8
}

/// `len` upload bytes starting at `offset`.
pub fn upload_bytes(offset: u64, len: usize) -> Vec<u8> {
    (offset..offset + len as u64).map(upload_byte).collect()
}

/// Where `/m100` has a marker: the 8-byte little-endian `k + 1` at `k MiB + M100_MARK`.
pub const M100_MARK: u64 = 777;

/// Checks that `data` is the `/m100` content at body offset `offset`: zeros, except the
/// markers. Uses slice comparisons so it stays fast in debug builds.
pub fn m100_check(offset: u64, data: &[u8]) -> bool {
    static ZEROS: [u8; 1 << 16] = [0; 1 << 16];
    let end = offset + data.len() as u64;
    let is_zero = |from: u64, to: u64| -> bool {
        data[(from - offset) as usize..(to - offset) as usize]
            .chunks(ZEROS.len())
            .all(|c| c == &ZEROS[..c.len()])
    };
    let mut pos = offset;
    let mut k = offset >> 20;
    loop {
        let mark = (k << 20) + M100_MARK;
        if mark >= end || mark >= M100_LEN {
            return is_zero(pos, end);
        }
        let mark_end = mark + 8;
        if mark_end > offset {
            if !is_zero(pos, mark.max(offset)) {
                return false;
            }
            let want = (k + 1).to_le_bytes();
            for at in mark.max(offset)..mark_end.min(end) {
                if data[(at - offset) as usize] != want[(at - mark) as usize] {
                    return false;
                }
            }
            pos = mark_end.min(end);
        }
        k += 1;
    }
}

/// How nginx is set up.
#[derive(Debug, Clone, Copy)]
pub struct NginxOptions {
    /// Debian's default `sendfile on; tcp_nopush on;` instead of the anchor's
    /// `sendfile off; tcp_nopush off;`.
    pub sendfile_nopush: bool,
    /// `keepalive_requests`.
    pub keepalive_requests: u64,
    /// Plain HTTP or TLS.
    pub listener: Listener,
}

/// What nginx's port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Plain HTTP.
    Plain,
    /// HTTPS (`listen … ssl`) with a certificate from a CA made at start.
    Tls,
}

impl Default for NginxOptions {
    fn default() -> Self {
        NginxOptions {
            sendfile_nopush: false,
            keepalive_requests: 100_000_000,
            listener: Listener::Plain,
        }
    }
}

/// A running nginx. Killed and reaped on drop.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    port: u16,
    echo: bool,
    /// The CA nginx's certificate is from, with [`Listener::Tls`].
    ca: Option<TestCa>,
    dir: tempfile::TempDir,
}

/// The echo module: `$DUGONG_NGINX_ECHO` when set (a bogus value simulates its absence), else
/// [`ECHO_MODULE`].
fn echo_module() -> PathBuf {
    std::env::var_os("DUGONG_NGINX_ECHO").map_or_else(|| PathBuf::from(ECHO_MODULE), PathBuf::from)
}

impl Nginx {
    /// Starts nginx with the default options, or returns `None` (after printing `SKIPPED`)
    /// when nginx is not installed and `CI` is not set.
    pub fn start() -> Option<Nginx> {
        Nginx::start_with(NginxOptions::default())
    }

    /// Starts nginx with `options`; see [`start`](Self::start).
    pub fn start_with(options: NginxOptions) -> Option<Nginx> {
        let binary = match find_daemon("DUGONG_NGINX", "nginx", "/usr/sbin/nginx") {
            Ok(b) => b,
            Err(why) => return missing_daemon("nginx", &why, "nginx-light libnginx-mod-http-echo"),
        };
        let echo_module = echo_module();
        let echo = echo_module.is_file();
        let dir = tempfile::Builder::new()
            .prefix("dugong-nginx-")
            .tempdir()
            .expect("temp dir");
        populate(dir.path()).expect("docroot files");
        let ca = match options.listener {
            Listener::Plain => None,
            Listener::Tls => {
                let ca = TestCa::new();
                let identity = ca.issue(&["127.0.0.1", "localhost"], Validity::Current);
                write_identity(dir.path(), &identity).expect("certificate files");
                Some(ca)
            }
        };
        let log = dir.path().join("logs/error.log");
        let launch = |port: u16, stderr: File| {
            let conf = config(dir.path(), port, echo.then_some(&*echo_module), options);
            fs::write(dir.path().join("nginx.conf"), conf).expect("write nginx.conf");
            Command::new(&binary)
                .arg("-e")
                .arg(&log)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(dir.path().join("nginx.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
        };
        let (child, port) = start_on_a_free_port("nginx", dir.path(), &log, launch, kill_and_reap);
        Some(Nginx {
            child,
            port,
            echo,
            ca,
            dir,
        })
    }

    /// The port nginx listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The origin to reach nginx at: `http` or `https` (per [`Listener`]) `127.0.0.1:port`.
    pub fn origin(&self) -> Origin {
        let scheme = match self.ca {
            Some(_) => Scheme::Https,
            None => Scheme::Http,
        };
        Origin::new(scheme, "127.0.0.1", self.port)
    }

    /// A client configuration for [`origin`](Self::origin): with [`Listener::Tls`], one that
    /// trusts this nginx's CA only.
    pub fn client_config(&self) -> dugong::Config {
        match &self.ca {
            None => dugong::Config::default(),
            #[cfg(feature = "tls")]
            Some(ca) => {
                let mut roots = dugong::rustls::RootCertStore::empty();
                roots.add(ca.root()).expect("a valid root");
                let tls = dugong::TlsConfig::with_root_certificates(roots).expect("tls config");
                dugong::Config::default().tls(tls)
            }
            #[cfg(not(feature = "tls"))]
            Some(_) => panic!("an https origin needs dugong's `tls` feature"),
        }
    }

    /// Whether the echo module is loaded (`/sink`, `/echo`, `/chunked` exist).
    pub fn has_echo(&self) -> bool {
        self.echo
    }

    /// `true` when the echo module is loaded; otherwise panics under CI, or prints `SKIPPED`
    /// and returns `false`.
    pub fn require_echo(&self) -> bool {
        self.echo
            || missing_daemon::<()>(
                "the nginx echo module",
                &echo_module().display().to_string(),
                "libnginx-mod-http-echo",
            )
            .is_some()
    }

    /// The docroot.
    pub fn www(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    /// The directory `PUT /dav/{name}` writes to.
    pub fn dav_dir(&self) -> PathBuf {
        self.dir.path().join("davroot/dav")
    }

    /// The file a `PUT /dav/{name}` wrote.
    pub fn dav_file(&self, name: &str) -> PathBuf {
        self.dav_dir().join(name)
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

include!("daemon.rs");

/// Writes `identity` as `tls/chain.pem` and `tls/key.pem` for `ssl_certificate` and
/// `ssl_certificate_key`.
fn write_identity(root: &Path, identity: &Identity) -> io::Result<()> {
    fs::create_dir_all(root.join("tls"))?;
    fs::write(root.join("tls/chain.pem"), identity.chain_pem())?;
    fs::write(root.join("tls/key.pem"), identity.key_pem())
}

/// Creates the docroot files and the scratch directories nginx needs.
fn populate(root: &Path) -> io::Result<()> {
    for sub in [
        "www/ssi",
        "logs",
        "body",
        "tmp/proxy",
        "tmp/fcgi",
        "tmp/uwsgi",
        "tmp/scgi",
        "davroot/.tmp",
        "davroot/dav",
    ] {
        fs::create_dir_all(root.join(sub))?;
    }
    let www = root.join("www");
    fs::write(www.join("b100"), b100())?;
    for i in 0..NUMBERED_FILES {
        fs::write(www.join(format!("f{i}")), numbered_body(i))?;
    }
    fs::write(
        www.join("ssi/t.html"),
        "<p><!--# echo var=\"request_method\" --> <!--# echo var=\"uri\" --></p>\n",
    )?;
    // 100 MiB, sparse: set_len makes the zeros, the markers catch misplaced blocks.
    let mut big = File::create(www.join("m100"))?;
    big.set_len(M100_LEN)?;
    for k in 0..(M100_LEN >> 20) {
        use std::io::{Seek, SeekFrom};
        big.seek(SeekFrom::Start((k << 20) + M100_MARK))?;
        big.write_all(&(k + 1).to_le_bytes())?;
    }
    big.sync_all()?;
    Ok(())
}

/// The nginx config (see the module docs and `nginx-anchor.conf`).
fn config(root: &Path, port: u16, echo: Option<&Path>, options: NginxOptions) -> String {
    let r = root.display();
    let load = match echo {
        Some(module) => format!("load_module {};", module.display()),
        None => String::new(),
    };
    let transfer = if options.sendfile_nopush {
        "sendfile on; tcp_nopush on;   # Debian's default"
    } else {
        "sendfile off; tcp_nopush off; # the anchor's setting for pipelining"
    };
    let (listen, tls) = match options.listener {
        Listener::Plain => (format!("127.0.0.1:{port}"), String::new()),
        Listener::Tls => (
            format!("127.0.0.1:{port} ssl"),
            format!(
                "ssl_certificate {r}/tls/chain.pem;\n        \
                 ssl_certificate_key {r}/tls/key.pem;"
            ),
        ),
    };
    let echo_locations = if echo.is_some() {
        r#"
        # PUT/POST sink: the body is read, then 204
        location = /sink { echo_status 204; echo_read_request_body; }
        # the request body echoed back (chunked); big enough to keep it in memory
        location = /echo {
            client_body_buffer_size 64m;
            echo_read_request_body;
            echo_request_body;
        }
        # a small chunked response
        location = /chunked { echo "hello"; echo "world"; }"#
    } else {
        ""
    };
    format!(
        r#"# generated by tests/support/nginx.rs
{load}
daemon off;
master_process off;
worker_processes 1;
pid {r}/logs/nginx.pid;
error_log {r}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    {transfer}
    open_file_cache max=256 inactive=600s;
    open_file_cache_valid 3600s;
    tcp_nodelay on;
    keepalive_requests {keepalive};
    keepalive_timeout 300s;
    client_max_body_size 0;
    client_body_buffer_size 1m;
    client_body_temp_path {r}/body;
    proxy_temp_path {r}/tmp/proxy;
    fastcgi_temp_path {r}/tmp/fcgi;
    uwsgi_temp_path {r}/tmp/uwsgi;
    scgi_temp_path {r}/tmp/scgi;
    types {{ }}
    default_type application/octet-stream;
    server {{
        listen {listen};
        {tls}
        root {r}/www;
        location / {{ }}
        # the big file goes out with sendfile in both variants (as in the anchor config)
        location = /m100 {{ sendfile on; }}
        # SSI output has no known length: Transfer-Encoding: chunked
        location /ssi/ {{ ssi on; ssi_types *; }}
        # return 204; nginx reads and discards a request body by itself
        location = /r204 {{ return 204; }}
        # WebDAV PUT writes the body to davroot/dav/NAME
        location /dav/ {{
            root {r}/davroot;
            dav_methods PUT DELETE;
            create_full_put_path on;
            client_body_temp_path {r}/davroot/.tmp;
        }}{echo_locations}
    }}
}}
"#,
        keepalive = options.keepalive_requests,
    )
}
