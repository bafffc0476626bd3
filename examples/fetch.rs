//! `fetch`: GET (or any method) a list of URLs from one server over one pipelined connection.
//!
//! ```text
//! cargo run --example fetch -- --depth 16 http://127.0.0.1:8080/a http://127.0.0.1:8080/b
//! cargo run --example fetch -- --cacert ca.pem https://localhost:8443/a
//! cargo run --example fetch -- --proxy http://user:pass@127.0.0.1:3128 http://example.com/
//! ```

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::Ipv6Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
#[cfg(feature = "tls")]
use dugong::rustls::RootCertStore;
use dugong::{Body, Config, HttpConnection, Origin, Proxies, Proxy, Retry, Scheme};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
use http::{HeaderMap, Method};

/// Size of the one buffer that carries upload and response bytes, and of what [`Output`]
/// holds per stream before writing it out.
const PIECE: usize = 64 * 1024;

const AFTER_HELP: &str = "\
Requests go out in command-line order over one connection, up to --depth at a time:
a request is sent while fewer than N await their response, else the next response
(head and whole body) is read. --expect-continue (or -H 'Expect: 100-continue')
forces depth 1: a request that waits for `100 Continue` cannot be pipelined, so all
pending responses are read first. If the server answers at once, the body is skipped.

Bodies go to stdout in request order, or with -o to DIR/<index>-<name>: <index>
counts requests from 0, <name> is the last segment of the URL path without the
query, or `index` if that is empty (http://h/a/ -> 0-index). DIR is created.

https:// URLs verify the server's certificate and name against the Mozilla roots built
into fetch (webpki-roots), or with --cacert FILE against the certificates in FILE only.
Nothing turns verification off. A failed handshake or a refused certificate fails the
connection like any other: exit 1, with `error: tls error: <cause>`.

With --retry N, a temporary failure (connection reset, closed or refused, a timeout, a
resolver that cannot answer now) before a response's body started is followed by a
`retry: <message>` line on stderr, and the requests without a response are sent again
on a new connection: at once after a response arrived, else after 100 ms, doubling up to
5 s, at most N times in a row with no response between them. Methods other than GET,
HEAD, PUT, DELETE, OPTIONS and TRACE are never resent.

--proxy http://[user:password@]host[:port] sends the connection through an HTTP proxy
(port 80 by default; user and password percent-decoded, sent to the proxy only):
http:// URLs as absolute-form requests, https:// URLs through a CONNECT tunnel.
Only http:// proxies are supported. --proxy-from-env reads the environment with curl's
rules, the first variable set (and not blank) winning: http:// URLs use http_proxy, never
HTTP_PROXY (in a CGI program that is a request header); https:// URLs use https_proxy,
then HTTPS_PROXY; both fall back to all_proxy, then ALL_PROXY. Hosts in no_proxy (else
NO_PROXY) go direct: a comma-separated list of names (each also matching its subdomains,
a leading dot ignored), IP addresses and CIDR networks (10.0.0.0/8, fe80::/10, where /0
means no prefix; beyond curl, IPv6 may be bracketed: [::1]); `*` alone means every host,
and an entry with a port matches nothing.
A proxy that refuses the tunnel fails the connection: exit 1, with
`error: the proxy refused the tunnel with status <status>`.

Each complete response gets a line on stderr: <status> <METHOD> <target> <body bytes>.
Output to a pipe, socket or terminal is written out before fetch waits on the network, so
a reader sees each response as it arrives; output to a regular file or /dev/null is
written in 64 KiB pieces and at exit, as C's stdio does for files.
Exit status: 0 if every response arrived complete, whatever its status; 1 otherwise,
after an `unanswered: <METHOD> <target>` line for each request without a complete
response, in request order, and an `error: <message>` line; 2 for bad arguments.";

/// Fetch URLs from one HTTP/1.1 server over one pipelined connection.
#[derive(Debug, Parser)]
#[command(name = "fetch", after_help = AFTER_HELP)]
struct Cli {
    /// Requests in flight at once (a sliding window; 1 = wait for each response)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    depth: u32,
    /// Request method
    #[arg(short = 'X', value_name = "METHOD", default_value = "GET", value_parser = parse_method)]
    method: Method,
    /// Add a request header, 'Name: value' (repeatable; Content-Length and
    /// Transfer-Encoding come from --upload)
    #[arg(short = 'H', value_name = "'Name: value'", value_parser = parse_header)]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Send FILE as the body of every request (with Content-Length)
    #[arg(long, value_name = "FILE", value_parser = parse_upload)]
    upload: Option<Upload>,
    /// Send the --upload body with Transfer-Encoding: chunked
    #[arg(long, requires = "upload")]
    chunked: bool,
    /// Add `Expect: 100-continue` to requests with a body (forces depth 1, see below)
    #[arg(long)]
    expect_continue: bool,
    /// Seconds (fractions allowed) for connecting and for each blocking read or write
    /// [default: 10 to connect, 30 per operation]
    #[arg(long, value_name = "SECS", value_parser = parse_timeout, allow_negative_numbers = true)]
    timeout: Option<Duration>,
    /// After a temporary failure (reset, timeout, close, refused connect), reconnect and
    /// resend the requests left without a response, up to N failures in a row (idempotent
    /// methods only; see below)
    #[arg(long, value_name = "N", default_value_t = 0)]
    retry: u32,
    /// Write each body to DIR/<index>-<name> instead of stdout (see below)
    #[arg(short = 'o', value_name = "DIR")]
    output: Option<PathBuf>,
    /// Trust the CA certificates in FILE (PEM, one or more) instead of the built-in roots
    /// when verifying https:// servers
    #[cfg(feature = "tls")]
    #[arg(long, value_name = "FILE", value_parser = parse_cacert)]
    cacert: Option<RootCertStore>,
    /// Send the connection through this HTTP proxy, http://[user:password@]host[:port]
    /// (see below)
    #[arg(long, value_name = "URL", value_parser = parse_proxy, conflicts_with = "proxy_from_env")]
    proxy: Option<Proxy>,
    /// Take the proxy from http_proxy, https_proxy, all_proxy and no_proxy with curl's rules
    /// (see below)
    #[arg(long)]
    proxy_from_env: bool,
    /// Print dugong's log on stderr: -v connections, request and response lines; -vv also
    /// header fields and every byte on the wire (secret header values redacted)
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// http://host[:port]/path or https://host[:port]/path URLs, all on one scheme, host and
    /// port
    #[arg(value_name = "URL", required = true, value_parser = parse_url)]
    urls: Vec<Url>,
}

/// One parsed URL: where it goes (its host lowercased) and the request target to send.
#[derive(Debug, Clone)]
struct Url {
    origin: Origin,
    target: String,
}

/// The file sent with `--upload`, with its length when the arguments were checked.
#[derive(Debug, Clone)]
struct Upload {
    path: PathBuf,
    len: u64,
}

/// Why the run stopped: a [`dugong::Error`], or a local I/O error with its context.
type Fail = Box<dyn std::error::Error>;

/// Wraps a local I/O error with what was being done.
fn local(what: String) -> impl FnOnce(io::Error) -> Fail {
    move |e| format!("{what}: {e}").into()
}

/// An error's `Display` followed by its `source()` chain, joined with `: `.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

fn parse_method(s: &str) -> Result<Method, String> {
    Method::from_bytes(s.as_bytes()).map_err(|_| "not a valid method token".into())
}

fn parse_header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = s.split_once(':').ok_or("expected 'Name: value'")?;
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| "invalid header name")?;
    if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
        return Err(format!("{name} is set by fetch itself (see --upload)"));
    }
    let value = HeaderValue::from_str(value.trim()).map_err(|_| "invalid header value")?;
    Ok((name, value))
}

fn parse_upload(s: &str) -> Result<Upload, String> {
    let meta = File::open(s).and_then(|f| f.metadata());
    let meta = meta.map_err(|e| e.to_string())?;
    let len = meta.is_file().then_some(meta.len());
    let len = len.ok_or("not a regular file")?;
    Ok(Upload {
        path: s.into(),
        len,
    })
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|_| "expected a number of seconds")?;
    Duration::try_from_secs_f64(secs).map_err(|_| "expected a finite, non-negative number".into())
}

/// Reads a URL with the library's [`Origin::parse_url`], then holds it to fetch's stricter
/// rules: a host name or IP literal, an explicit port of 1 to 65535, a printable ASCII target.
fn parse_url(s: &str) -> Result<Url, String> {
    const BAD_HOST: &str = "expected a host name, an IPv4 address or an [IPv6] address";
    const BAD_PORT: &str = "expected a port from 1 to 65535";
    let scheme_len = ["http://", "https://"]
        .into_iter()
        .find(|p| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p)))
        .map(str::len)
        .ok_or("only http:// and https:// URLs are supported")?;
    let rest = &s[scheme_len..];
    let end = rest.bytes().position(|b| matches!(b, b'/' | b'?' | b'#'));
    let authority = &rest[..end.unwrap_or(rest.len())];
    let name_byte = |b: u8| b.is_ascii_alphanumeric() || b"-._".contains(&b);
    let (origin, target) = Origin::parse_url(s).map_err(|_| {
        let host = authority
            .split_once(':')
            .map_or(authority, |(host, _)| host);
        let bad_name = !host.is_empty() && !host.contains('@') && !host.bytes().all(name_byte);
        if authority.starts_with('[') || bad_name {
            BAD_HOST
        } else {
            "expected scheme://host[:port][/path][?query]"
        }
    })?;
    let host_ok = if authority.starts_with('[') {
        origin.host.parse::<Ipv6Addr>().is_ok()
    } else {
        origin.host.bytes().all(name_byte)
    };
    if !host_ok {
        return Err(BAD_HOST.into());
    }
    if origin.port == 0 || authority.ends_with(':') {
        return Err(BAD_PORT.into());
    }
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("spaces, controls and non-ASCII must be percent-encoded".into());
    }
    if origin.scheme == Scheme::Https && cfg!(not(feature = "tls")) {
        return Err("https:// needs dugong's `tls` feature".into());
    }
    let origin = if origin.host.bytes().any(|b| b.is_ascii_uppercase()) {
        Origin::new(
            origin.scheme,
            &origin.host.to_ascii_lowercase(),
            origin.port,
        )
    } else {
        origin
    };
    Ok(Url { origin, target })
}

/// Reads `--proxy` with the library's [`Proxy::parse`].
fn parse_proxy(s: &str) -> Result<Proxy, String> {
    Proxy::parse(s).map_err(|e| chain(&e))
}

/// Reads `--cacert`: every certificate in a PEM file, as the only trust anchors.
#[cfg(feature = "tls")]
fn parse_cacert(s: &str) -> Result<RootCertStore, String> {
    use dugong::rustls::pki_types::pem::PemObject;
    use dugong::rustls::pki_types::CertificateDer;

    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(s).map_err(|e| format!("cannot read {s}: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("bad PEM in {s}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("unusable CA certificate in {s}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("no certificate (BEGIN CERTIFICATE) in {s}"));
    }
    Ok(roots)
}

/// Checks what clap cannot: one scheme, host and port for all URLs, a usable output
/// directory.
fn check(cli: &Cli) -> Result<(), String> {
    let first = &cli.urls[0].origin;
    if let Some(other) = cli.urls.iter().map(|u| &u.origin).find(|o| *o != first) {
        let host_port = |o: &Origin| format!("{}:{}", o.host, o.port);
        return Err(if other.scheme != first.scheme {
            "all URLs must use one scheme, got http:// and https://".into()
        } else {
            format!(
                "all URLs must be on one host:port, got {} and {}",
                host_port(first),
                host_port(other)
            )
        });
    }
    let Some(dir) = &cli.output else {
        return Ok(());
    };
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// stdout and stderr, each written with one `write` per flush instead of one per piece. When
/// a reader may be waiting on either (a pipe, socket or terminal), the run flushes before
/// it waits on the network, so the reader sees every response that arrived while the
/// program would otherwise sit idle; a burst of responses that are already there goes out
/// in one write per stream. A full buffer, the end of the run and drop (a panic included)
/// flush too. stdout is always flushed before stderr, so a report line never shows before
/// its body.
struct Output {
    out: Stream,
    err: Stream,
    /// stdout and stderr are one file (a terminal, `2>&1`): only one of them holds bytes at a
    /// time, so the two interleave exactly as unbuffered writes did.
    shared: bool,
}

/// One standard stream and the bytes held for it.
struct Stream {
    to: Box<dyn Write>,
    /// A reader may be waiting for these bytes: the stream is not a regular file or
    /// `/dev/null`, whose bytes nobody waits on (C's stdio buffers those fully too).
    watched: bool,
    held: Vec<u8>,
    /// `(response index, offset in held)` where each response's bytes start, in order.
    marks: Vec<(usize, usize)>,
}

/// Body bytes that did not make it to stdout. As before buffering, the response they belong
/// to and every later one count as unanswered, and their report lines are not printed.
#[derive(Debug)]
struct Unwritten {
    /// The first response not written completely.
    first: usize,
    cause: io::Error,
}

impl fmt::Display for Unwritten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "writing the body: {}", self.cause)
    }
}

impl std::error::Error for Unwritten {}

/// A failure reading a body of which some bytes may have gone out: it reads as its cause,
/// but is never resent, since the response's output has started.
#[derive(Debug)]
struct BodyStarted(dugong::Error);

impl fmt::Display for BodyStarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BodyStarted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl Stream {
    /// A duplicate of `fd`, which takes each flush in one `write` (std's stdout would cut
    /// binary bodies at line ends), and the file's identity; `std` when `fd` is closed.
    fn open(fd: BorrowedFd<'_>, std: Box<dyn Write>) -> (Stream, Option<(u64, u64)>) {
        let (to, meta): (Box<dyn Write>, _) = match fd.try_clone_to_owned().map(File::from) {
            Ok(file) => {
                let meta = file.metadata().ok();
                (Box::new(file), meta)
            }
            Err(_) => (std, None),
        };
        let watched = meta.as_ref().is_none_or(|m| {
            let null = || fs::metadata("/dev/null").is_ok_and(|n| n.rdev() == m.rdev());
            !(m.file_type().is_file() || m.file_type().is_char_device() && null())
        });
        let id = meta.map(|m| (m.dev(), m.ino()));
        let stream = Stream {
            to,
            watched,
            held: Vec::new(),
            marks: Vec::new(),
        };
        (stream, id)
    }

    fn mark(&mut self, index: usize) {
        if self.marks.last().is_none_or(|&(last, _)| last != index) {
            self.marks.push((index, self.held.len()));
        }
    }

    /// Writes out what is held. On failure, returns the first response whose bytes were not
    /// all written (`None` if the bytes belong to none).
    fn flush(&mut self) -> Result<(), (Option<usize>, io::Error)> {
        let mut written = 0;
        let result = loop {
            if written == self.held.len() {
                break Ok(());
            }
            match self.to.write(&self.held[written..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let first = self.marks.iter().rev().find(|&&(_, at)| at <= written);
        let first = first.map(|&(index, _)| index);
        self.held.clear();
        self.marks.clear();
        result.map_err(|e| (first, e))
    }
}

impl Output {
    fn new() -> Output {
        let (out, out_id) = Stream::open(io::stdout().as_fd(), Box::new(io::stdout()));
        let (err, err_id) = Stream::open(io::stderr().as_fd(), Box::new(io::stderr()));
        let shared = out_id.is_some() && out_id == err_id;
        Output { out, err, shared }
    }

    /// Whether bytes are held for a stream a reader may be waiting on: then they are
    /// written out before the run waits (both streams, stdout first).
    fn owes_a_reader(&self) -> bool {
        let owed = |s: &Stream| s.watched && !s.held.is_empty();
        owed(&self.out) || owed(&self.err)
    }

    /// Adds body bytes of response `index` for stdout.
    fn body(&mut self, index: usize, bytes: &[u8]) -> Result<(), Unwritten> {
        if self.shared {
            self.flush_err();
        }
        if self.out.held.len() + bytes.len() > PIECE {
            self.flush_out()?;
        }
        if bytes.len() < PIECE {
            self.out.mark(index);
            self.out.held.extend_from_slice(bytes);
            return Ok(());
        }
        self.out.to.write_all(bytes).map_err(|cause| Unwritten {
            first: index,
            cause,
        })
    }

    /// Adds the report line of response `index` for stderr: `<status> <METHOD> <target>
    /// <body bytes>`, put together without `fmt` (one line per response, so its cost counts).
    fn report(
        &mut self,
        index: usize,
        response: &dugong::Response,
        bytes: u64,
    ) -> Result<(), Unwritten> {
        if self.shared {
            self.flush_out()?;
        }
        self.err.mark(index);
        let line = &mut self.err.held;
        for part in [
            response.status.as_str(),
            response.method.as_str(),
            &response.path,
        ] {
            line.extend_from_slice(part.as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(itoa::Buffer::new().format(bytes).as_bytes());
        line.push(b'\n');
        if self.err.held.len() >= PIECE {
            return self.flush();
        }
        Ok(())
    }

    /// Adds a line for stderr that belongs to no response; stdout must hold nothing then.
    fn say(&mut self, line: fmt::Arguments<'_>) {
        let _ = writeln!(self.err.held, "{line}");
        if self.err.held.len() >= PIECE {
            self.flush_err();
        }
    }

    /// Writes out what both streams hold, stdout first.
    fn flush(&mut self) -> Result<(), Unwritten> {
        let out = self.flush_out();
        self.flush_err();
        out
    }

    /// Writes out what stdout holds. On failure, drops the report lines from the first
    /// response not written on, which is then where the run stopped.
    fn flush_out(&mut self) -> Result<(), Unwritten> {
        let Err((first, cause)) = self.out.flush() else {
            return Ok(());
        };
        // Bytes held for stdout always belong to a response.
        let first = first.unwrap_or_default();
        let err = &mut self.err;
        if let Some(&(_, at)) = err.marks.iter().find(|&&(index, _)| index >= first) {
            err.held.truncate(at);
            err.marks.retain(|&(index, _)| index < first);
        }
        Err(Unwritten { first, cause })
    }

    /// Writes out what stderr holds; a closed stderr is not worth a panic or an error.
    fn flush_err(&mut self) {
        let _ = self.err.flush();
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// What is known, before a read, about whether the response has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// Its request has just gone out alone on the connection and nothing was read since:
    /// the answer is rarely here yet (the library waits at once, for the same reason).
    NotYet,
    /// The connection knows, at the cost of at most one non-blocking receive.
    Unknown,
}

/// One connection and what every request shares.
struct Session<'a> {
    cli: &'a Cli,
    conn: HttpConnection,
    headers: HeaderMap,
    /// Carries upload and response bytes, so no body is ever held whole.
    buf: Vec<u8>,
    output: &'a mut Output,
    /// The request last sent if it went out with nothing else in flight ([`Arrival::NotYet`]).
    alone: Option<usize>,
    /// A response whose head was read, and maybe part of its body, while a pipelined upload
    /// was going out.
    partial: Option<Partial>,
}

impl<'a> Session<'a> {
    fn new(cli: &'a Cli, output: &'a mut Output) -> Result<Session<'a>, Fail> {
        let mut config = Config::default();
        if let Some(t) = cli.timeout {
            config = config.timeout(Some(t)).connect_timeout(Some(t));
        }
        #[cfg(feature = "tls")]
        if let Some(roots) = &cli.cacert {
            config = config.tls(dugong::TlsConfig::with_root_certificates(roots.clone())?);
        }
        if let Some(proxy) = &cli.proxy {
            config = config.proxy(proxy.clone());
        } else if cli.proxy_from_env {
            config = config.proxies(Proxies::from_env()?);
        }
        let conn = HttpConnection::open(&cli.urls[0].origin, config)?;
        let mut headers: HeaderMap = cli.headers.iter().cloned().collect();
        // RFC 9110 §10.1.1: no 100-continue expectation on a request without content.
        let content = cli
            .upload
            .as_ref()
            .is_some_and(|u| cli.chunked || u.len > 0);
        if cli.expect_continue && content {
            headers.append(EXPECT, HeaderValue::from_static("100-continue"));
        }
        Ok(Session {
            cli,
            conn,
            headers,
            buf: vec![0; PIECE],
            output,
            alone: None,
            partial: None,
        })
    }

    /// Sends request `index`, streaming the upload (if any) as its body. With `pipelined`,
    /// it is sent by cofunctions, and responses that arrive meanwhile are read (advancing
    /// `done`), so neither side's buffers ever fill up.
    fn send(&mut self, index: usize, pipelined: bool, done: &mut usize) -> Result<(), Fail> {
        let Session {
            cli,
            conn,
            headers,
            buf,
            output,
            alone,
            partial,
        } = self;
        let target = &cli.urls[index].target;
        let upload = cli.upload.as_ref();
        // Waits a send can make: for the socket to take a body, for `100 Continue`, and to
        // connect again (only with nothing in flight). A head alone is queued or taken at
        // once unless the server stopped reading, which the timeout is for.
        let idle = index == *done;
        *alone = None;
        if output.owes_a_reader() && (upload.is_some() || (idle && conn.as_raw_fd() < 0)) {
            output.flush()?;
        }
        let (body, limit) = match upload {
            None => (Body::Empty, 0),
            Some(_) if cli.chunked => (Body::Chunked, u64::MAX),
            Some(u) => (Body::Following(u.len), u.len),
        };
        let reading = |path: &std::path::Path| local(format!("reading {}", path.display()));
        let mut file = match upload {
            Some(u) => Some(File::open(&u.path).map_err(reading(&u.path))?.take(limit)),
            None => None,
        };
        // Takes one step of a response whose data arrived while this request was going out:
        // its head, or the body bytes at hand. Never more: the response may be this request's
        // own, streamed back while the server reads the upload, and waiting for its end here
        // would wait for bytes still to be sent.
        let mut read_some = |done: &mut usize| -> Result<(), Fail> {
            if *done > index {
                return Ok(());
            }
            let mut reading = match partial.take() {
                Some(reading) => reading,
                None => {
                    let reading = Partial::start(conn, cli, output, *done, Arrival::Unknown)?;
                    if conn.has_active_response() && !conn.has_buffered_data() {
                        // Its body comes on a later turn.
                        *partial = Some(reading);
                        return Ok(());
                    }
                    reading
                }
            };
            if reading.step(conn, buf, output)? {
                *partial = Some(reading);
            } else {
                reading.report(output)?;
                *done += 1;
            }
            Ok(())
        };
        if pipelined {
            for step in conn.send_request_cofun(&cli.method, target, headers, body)? {
                step?;
                read_some(done)?;
            }
            if let (Some(file), true) = (file.as_mut(), conn.is_writing_body()) {
                for step in conn.sendfile_cofun(file)? {
                    step?;
                    read_some(done)?;
                }
            }
        } else {
            conn.send_request(&cli.method, target, headers, body)?;
            // With Expect: 100-continue the server may have refused the body: nothing is owed.
            while let (Some(file), true) = (file.as_mut(), conn.is_writing_body()) {
                let path = upload
                    .map(|u| u.path.as_path())
                    .unwrap_or(std::path::Path::new(""));
                let n = file.read(buf).map_err(reading(path))?;
                if n == 0 {
                    break;
                }
                conn.write(&buf[..n])?;
            }
            if cli.chunked && conn.is_writing_body() {
                conn.finish_body()?;
            }
        }
        if conn.is_writing_body() {
            let path = upload
                .map(|u| u.path.as_path())
                .unwrap_or(std::path::Path::new(""));
            return Err(reading(path)(io::ErrorKind::UnexpectedEof.into()));
        }
        if idle && *done == index {
            *alone = Some(index);
        }
        Ok(())
    }

    /// Reads response `index` (head and whole body) and reports it.
    fn receive(&mut self, index: usize) -> Result<(), Fail> {
        let arrival = match self.alone.take() {
            Some(alone) if alone == index => Arrival::NotYet,
            _ => Arrival::Unknown,
        };
        let Session {
            cli,
            conn,
            buf,
            output,
            partial,
            ..
        } = self;
        let mut reading = match partial.take() {
            Some(reading) if reading.index == index => reading,
            _ => Partial::start(conn, cli, output, index, arrival)?,
        };
        while reading.step(conn, buf, output)? {}
        reading.report(output)
    }
}

/// Where body `index` goes with `-o`: `DIR/<index>-<last path segment or "index">`; `None`
/// for stdout.
fn body_file(cli: &Cli, index: usize) -> Result<Option<File>, Fail> {
    let Some(dir) = &cli.output else {
        return Ok(None);
    };
    let path = cli.urls[index].target.split('?').next();
    let last = path.and_then(|p| p.rsplit('/').next()).unwrap_or_default();
    let name = if last.is_empty() { "index" } else { last };
    let file = dir.join(format!("{index}-{name}"));
    match File::create(&file) {
        Ok(created) => Ok(Some(created)),
        Err(e) => Err(local(format!("creating {}", file.display()))(e)),
    }
}

/// A response being read: its head, where its body goes (its file with `-o`, else stdout),
/// and how much of it has gone there; reported on stderr once complete. Held output is
/// written out before any read that would wait.
struct Partial {
    index: usize,
    response: dugong::Response,
    file: Option<File>,
    bytes: u64,
}

impl Partial {
    /// Reads the head of response `index`.
    fn start(
        conn: &HttpConnection,
        cli: &Cli,
        output: &mut Output,
        index: usize,
        arrival: Arrival,
    ) -> Result<Partial, Fail> {
        if output.owes_a_reader() && (arrival == Arrival::NotYet || !conn.has_buffered_data()) {
            output.flush()?;
        }
        let response = conn.read_response()?;
        let file = body_file(cli, index)?;
        Ok(Partial {
            index,
            response,
            file,
            bytes: 0,
        })
    }

    /// Reads and writes out the next body bytes (waiting for some if none are at hand);
    /// `Ok(false)` once the body is complete.
    fn step(
        &mut self,
        conn: &HttpConnection,
        buf: &mut [u8],
        output: &mut Output,
    ) -> Result<bool, Fail> {
        if !conn.has_active_response() {
            return Ok(false);
        }
        if output.owes_a_reader() && !conn.has_buffered_data() {
            output.flush()?;
        }
        // Once body bytes went out, a failure must not be resent.
        let bytes = self.bytes;
        let n = conn.read(buf).map_err(|e| -> Fail {
            if bytes > 0 {
                Box::new(BodyStarted(e))
            } else {
                e.into()
            }
        })?;
        if n == 0 {
            return Ok(false);
        }
        match &mut self.file {
            Some(file) => file
                .write_all(&buf[..n])
                .map_err(local("writing the body".into()))?,
            None => output.body(self.index, &buf[..n])?,
        }
        self.bytes += n as u64;
        Ok(conn.has_active_response())
    }

    /// The report line of the complete response.
    fn report(self, output: &mut Output) -> Result<(), Fail> {
        output.report(self.index, &self.response, self.bytes)?;
        Ok(())
    }
}

/// Where a run that failed with `fail` stopped: at `done`, or at an earlier response whose
/// body did not make it to stdout.
fn stopped(done: usize, fail: &(dyn std::error::Error + 'static)) -> usize {
    fail.downcast_ref::<Unwritten>()
        .map_or(done, |u| u.first.min(done))
}

/// Runs every request through a sliding window, resending as `--retry` allows; on
/// failure, also says how many responses arrived complete.
fn run(cli: &Cli, output: &mut Output) -> Result<(), (usize, Fail)> {
    let mut session = Session::new(cli, output).map_err(|fail| (0, fail))?;
    // A request that waits for `100 Continue` cannot be pipelined behind others.
    let expect = cli.expect_continue || session.headers.contains_key(EXPECT);
    let depth = if expect { 1 } else { cli.depth as usize };
    let total = cli.urls.len();
    let retry = Retry::default().attempts(cli.retry);
    let mut run = retry.run();
    let (mut sent, mut done) = (0, 0);
    while done < total {
        let step = if sent < total && sent - done < depth {
            let mut sending = session.send(sent, depth > 1, &mut done);
            if let Err(fail) = &sending {
                // A server that stopped reading (closing, or going quiet until the send
                // timed out) may still have answered what it read.
                if let Some(
                    dugong::Error::ConnectionClosed { .. } | dugong::Error::Timeout { .. },
                ) = fail.downcast_ref()
                {
                    let mut late_fail = None;
                    while session.conn.response_pending() {
                        match session.receive(done) {
                            Ok(()) => done += 1,
                            Err(late) => {
                                done = stopped(done, &*late);
                                late_fail = Some(late);
                                break;
                            }
                        }
                    }
                    match late_fail {
                        // The request being sent was answered (early, before the server
                        // closed): nothing is owed, and the next send opens a new connection.
                        None if done > sent => sending = Ok(()),
                        // A late response cut in its body must not be resent either.
                        Some(late) if retry.attempts > 0 && !resendable(&retry, cli, &*late) => {
                            sending = Err(late);
                        }
                        _ => {}
                    }
                }
            }
            sending.map(|()| sent += 1)
        } else {
            session.receive(done).map(|()| done += 1)
        };
        let Err(fail) = step else { continue };
        let stop = stopped(done, &*fail);
        if stop == total {
            return Ok(());
        }
        if stop < done || !resendable(&retry, cli, &*fail) {
            return Err((stop, fail));
        }
        let Some(wait) = run.wait_after_failure(done) else {
            return Err((stop, fail));
        };
        session.output.say(format_args!("retry: {}", chain(&*fail)));
        session.output.flush_err();
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        // Whatever the connection's state, the next send starts on a new one.
        session.conn.disconnect();
        session.partial = None;
        sent = done;
    }
    Ok(())
}

/// Whether `fail` may be retried by resending the requests without a response: a
/// temporary failure of this crate's (see [`Retry::allows`]) before any of a response's
/// body was handed on ([`BodyStarted`] is not this crate's error).
fn resendable(retry: &Retry, cli: &Cli, fail: &(dyn std::error::Error + 'static)) -> bool {
    fail.downcast_ref::<dugong::Error>()
        .is_some_and(|e| retry.allows(e, [&cli.method]))
}

/// `-v`: log records on stderr, one line each.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = format!(
                "{} {}: {}\n",
                record.level(),
                record.target(),
                record.args()
            );
            let _ = io::stderr().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Logs at debug level for `-v`, at trace level (wire bytes included) for `-vv`.
fn start_log(verbose: u8) {
    static LOG: StderrLog = StderrLog;
    let level = match verbose {
        0 => return,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    if log::set_logger(&LOG).is_ok() {
        log::set_max_level(level);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(msg) = check(&cli) {
        Cli::command()
            .error(ErrorKind::ArgumentConflict, msg)
            .exit();
    }
    start_log(cli.verbose);
    let mut output = Output::new();
    let mut result = run(&cli, &mut output);
    // Bodies still held may yet fail to go out: the run then stopped where they start.
    if let Err(unwritten) = output.flush_out() {
        let done = match &result {
            Err((done, _)) => unwritten.first.min(*done),
            Ok(()) => unwritten.first,
        };
        result = Err((done, Box::new(unwritten)));
    }
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((done, fail)) => {
            for url in &cli.urls[done..] {
                output.say(format_args!("unanswered: {} {}", cli.method, url.target));
            }
            output.say(format_args!("error: {}", chain(&*fail)));
            ExitCode::FAILURE
        }
    };
    output.flush_err();
    code
}
