//! The command-line contract of `examples/fetch.rs`, tested by running the built example
//! against the harness peers (over TLS through the harness's terminator and test CA too); and a
//! smoke run of `examples/demo.rs`.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use dugong_harness::{
    pattern, CloseMode, ForwardProxy, LoopbackServer, ProxyAnswer, ScriptedServer, ServerOptions,
    Step, TestCa, TlsTerminator, Validity,
};

/// Longest any one run of an example may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The directory holding the built examples; builds them once per test process.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--example", "fetch", "--example", "demo"])
            .current_dir(manifest);
        // Cargo sets the package's variables for the test, and ring's build script reruns when
        // any of them changes: passing them on would rebuild ring and all above it, here and
        // again in the next `cargo test`, long enough for the scripted servers to stop waiting.
        for (name, _) in std::env::vars_os() {
            let name_str = name.to_string_lossy();
            if name_str.starts_with("CARGO_PKG_")
                || name_str.starts_with("CARGO_MANIFEST_")
                || ["CARGO_CRATE_NAME", "CARGO_PRIMARY_PACKAGE", "OUT_DIR"].contains(&&*name_str)
            {
                build.env_remove(&name);
            }
        }
        let status = build.status().expect("run cargo build");
        assert!(
            status.success(),
            "cargo build --example fetch --example demo failed"
        );
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(|dir| manifest.join(dir))
            .unwrap_or_else(|| manifest.join("target"));
        target.join("debug").join("examples")
    })
}

/// The examples are built before any peer starts: a peer stops waiting for its client after
/// 10 s, and a first build (on a fresh machine, or with other features unified) takes longer.
fn scripted(steps: Vec<Step>) -> ScriptedServer {
    examples_dir();
    ScriptedServer::start(steps)
}

/// See [`scripted`].
fn loopback() -> LoopbackServer {
    examples_dir();
    LoopbackServer::start()
}

/// See [`scripted`].
fn loopback_with(options: ServerOptions) -> LoopbackServer {
    examples_dir();
    LoopbackServer::start_with(options)
}

/// What a finished run of an example left behind.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    took: Duration,
}

impl Run {
    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Starts example `name` with `args`, its stdout and stderr piped.
fn spawn_example(name: &str, args: &[String]) -> Child {
    Command::new(examples_dir().join(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the example")
}

/// Starts example `name` with `args`, its stdout already closed at the reading end (a
/// socket whose peer is gone: every write fails with `EPIPE`, as into a closed pipe), its
/// stderr piped. Closing the end before the start leaves no race with the child's writes.
fn spawn_example_with_closed_stdout(name: &str, args: &[String]) -> Child {
    let (reader, writer) = std::os::unix::net::UnixStream::pair().expect("socket pair");
    drop(reader);
    Command::new(examples_dir().join(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(writer)))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the example")
}

/// Reads a child's pipe to its end on a thread.
fn read_pipe(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut v);
        }
        v
    })
}

/// Waits for `child`, collecting what it writes, killing it (and failing) after
/// [`RUN_LIMIT`].
fn collect(mut child: Child) -> Run {
    let start = Instant::now();
    let (out, err) = (
        read_pipe(child.stdout.take()),
        read_pipe(child.stderr.take()),
    );
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the example") {
            break status;
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the example did not finish within {RUN_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.code(),
        stdout: out.join().expect("stdout reader"),
        stderr: String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned(),
        took: start.elapsed(),
    }
}

/// Runs example `name` with `args` to its end (at most [`RUN_LIMIT`]).
fn run_example(name: &str, args: &[String]) -> Run {
    collect(spawn_example(name, args))
}

/// Runs `fetch` with `args` then one URL per path on `port`.
fn fetch(args: &[&str], port: u16, paths: &[&str]) -> Run {
    fetch_from(&format!("http://127.0.0.1:{port}"), args, paths)
}

/// Runs `fetch` with `args` then one URL per path under `base` (`scheme://host:port`).
fn fetch_from(base: &str, args: &[&str], paths: &[&str]) -> Run {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(paths.iter().map(|p| format!("{base}{p}")));
    run_example("fetch", &all)
}

/// A loopback server behind a TLS terminator whose certificate (for 127.0.0.1 and localhost)
/// comes from a fresh test CA, and that CA's certificate in a PEM file.
struct HttpsPeer {
    server: LoopbackServer,
    tls: TlsTerminator,
    ca_pem: PathBuf,
    _dir: tempfile::TempDir,
}

impl HttpsPeer {
    fn start() -> HttpsPeer {
        let server = loopback();
        let ca = TestCa::new();
        let identity = ca.issue(&["127.0.0.1", "localhost"], Validity::Current);
        let tls = TlsTerminator::start(server.addr(), identity, CloseMode::CloseNotify);
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ca.root_pem()).expect("write the CA file");
        HttpsPeer {
            server,
            tls,
            ca_pem,
            _dir: dir,
        }
    }

    fn ca_arg(&self) -> &str {
        self.ca_pem.to_str().expect("utf-8 temp path")
    }
}

/// A port on 127.0.0.1 that nothing listens on (it was free a moment ago).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a probe listener");
    listener.local_addr().expect("probe address").port()
}

#[track_caller]
fn assert_exit(run: &Run, code: i32) {
    assert_eq!(
        run.code,
        Some(code),
        "exit status; stderr:\n{}\nstdout: {:?}",
        run.stderr,
        run.stdout_str()
    );
}

#[test]
fn bodies_arrive_in_request_order_at_depth_1_and_16() {
    let server = loopback();
    let paths: Vec<String> = (0..20).map(|i| format!("/bytes/{i}")).collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let expected_body: Vec<u8> = (0..20).flat_map(pattern).collect();
    let expected_lines: Vec<String> = (0..20).map(|i| format!("200 GET /bytes/{i} {i}")).collect();
    for depth in ["1", "16"] {
        let run = fetch(&["--depth", depth], server.port(), &paths);
        assert_exit(&run, 0);
        assert_eq!(run.stdout, expected_body, "stdout at depth {depth}");
        assert_eq!(
            run.stderr_lines(),
            expected_lines,
            "stderr at depth {depth}"
        );
    }
    assert_eq!(server.connections_accepted(), 2, "one connection per run");
    assert!(server.errors().is_empty(), "{:?}", server.errors());
}

/// Output to regular files (which fetch writes in pieces and at exit, nobody waiting on
/// them) is complete and ordered as through pipes: into separate files, and into one file
/// for both streams (`> f 2>&1`), where each report line follows its body.
#[test]
fn output_to_files_is_complete_and_in_order() {
    let server = loopback();
    let paths: Vec<String> = (0..30).map(|i| format!("/bytes/{}", i * 97)).collect();
    let urls: Vec<String> = paths
        .iter()
        .map(|p| format!("http://127.0.0.1:{}{p}", server.port()))
        .collect();
    let line = |i: usize| format!("200 GET /bytes/{} {}\n", i * 97, i * 97);
    let dir = tempfile::tempdir().expect("temp dir");
    for depth in ["1", "16"] {
        let mut args = vec!["--depth".to_owned(), depth.to_owned()];
        args.extend(urls.iter().cloned());
        let out = dir.path().join(format!("out-{depth}"));
        let err = dir.path().join(format!("err-{depth}"));
        let both = dir.path().join(format!("both-{depth}"));
        let file = |path: &Path| File::create(path).expect("create an output file");
        let shared = file(&both);
        let runs = [
            (Stdio::from(file(&out)), Stdio::from(file(&err))),
            (
                Stdio::from(shared.try_clone().expect("dup")),
                Stdio::from(shared),
            ),
        ];
        for (stdout, stderr) in runs {
            let status = Command::new(examples_dir().join("fetch"))
                .args(&args)
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .status()
                .expect("run fetch");
            assert!(status.success(), "depth {depth}: {status:?}");
        }
        let read = |path: &Path| std::fs::read(path).expect("read an output file");
        let bodies: Vec<u8> = (0..30).flat_map(|i| pattern(i * 97)).collect();
        assert_eq!(read(&out), bodies, "stdout at depth {depth}");
        let lines: String = (0..30).map(line).collect();
        assert_eq!(
            String::from_utf8_lossy(&read(&err)),
            lines,
            "stderr at depth {depth}"
        );
        let mut interleaved = Vec::new();
        for i in 0..30 {
            interleaved.extend(pattern(i * 97));
            interleaved.extend(line(i).into_bytes());
        }
        assert!(read(&both) == interleaved, "one file at depth {depth}");
    }
    assert!(server.errors().is_empty(), "{:?}", server.errors());
}

#[test]
fn no_more_than_depth_requests_are_in_flight() {
    let ok = |body: &str| format!("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n{body}");
    let server = scripted(vec![
        Step::ExpectHead,
        Step::ExpectHead,
        // A third head sent before the first response would be swallowed here, and the
        // ExpectHead below would then fail.
        Step::Drain(Duration::from_millis(300)),
        Step::Reply(ok("1").into_bytes()),
        Step::ExpectHead,
        Step::Reply([ok("2"), ok("3")].concat().into_bytes()),
        Step::Drain(Duration::from_millis(300)),
    ]);
    let run = fetch(
        &["--depth", "2", "--timeout", "10"],
        server.port(),
        &["/1", "/2", "/3"],
    );
    assert_exit(&run, 0);
    assert_eq!(run.stdout, b"123");
    assert_eq!(
        run.stderr_lines(),
        ["200 GET /1 1", "200 GET /2 1", "200 GET /3 1"]
    );
    let transcript = server.finish();
    transcript.assert_ok();
    assert_eq!(transcript.heads.len(), 3);
}

#[test]
fn large_and_chunked_bodies_stream_to_stdout() {
    let server = loopback();
    let paths = [
        "/bytes/1000000",
        "/chunked/300000/7777",
        "/bytes/0",
        "/chunked/5",
    ];
    let run = fetch(&["--depth", "3"], server.port(), &paths);
    assert_exit(&run, 0);
    let expected: Vec<u8> = [1_000_000, 300_000, 0, 5]
        .into_iter()
        .flat_map(pattern)
        .collect();
    assert!(
        run.stdout == expected,
        "stdout differs ({} bytes)",
        run.stdout.len()
    );
    assert_eq!(
        run.stderr_lines(),
        [
            "200 GET /bytes/1000000 1000000",
            "200 GET /chunked/300000/7777 300000",
            "200 GET /bytes/0 0",
            "200 GET /chunked/5 5",
        ]
    );
}

#[test]
fn any_status_is_a_complete_response() {
    let server = loopback();
    let paths = ["/status/404", "/status/204", "/status/500", "/status/304"];
    let run = fetch(&["--depth", "4"], server.port(), &paths);
    assert_exit(&run, 0);
    assert!(run.stdout.is_empty());
    let expected = paths.map(|p| format!("{} GET {p} 0", &p[8..]));
    assert_eq!(run.stderr_lines(), expected);

    let run = fetch(
        &["-X", "HEAD", "--depth", "2"],
        server.port(),
        &["/bytes/10", "/a"],
    );
    assert_exit(&run, 0);
    assert!(run.stdout.is_empty());
    assert_eq!(
        run.stderr_lines(),
        ["200 HEAD /bytes/10 0", "200 HEAD /a 0"]
    );
}

#[test]
fn output_dir_gets_one_file_per_response() {
    let server = loopback();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("out");
    let dir_arg = dir.to_str().expect("utf-8 temp path");
    let paths = ["/bytes/3", "/docs/a.txt?x=1", "/dir/", "/", "/bytes/30"];
    let run = fetch(&["-o", dir_arg, "--depth", "2"], server.port(), &paths);
    assert_exit(&run, 0);
    assert!(
        run.stdout.is_empty(),
        "bodies must not go to stdout with -o"
    );
    assert_eq!(
        run.stderr_lines(),
        [
            "200 GET /bytes/3 3",
            "200 GET /docs/a.txt?x=1 25",
            "200 GET /dir/ 15",
            "200 GET / 11",
            "200 GET /bytes/30 30",
        ]
    );
    let expected: [(&str, Vec<u8>); 5] = [
        ("0-3", pattern(3)),
        ("1-a.txt", b"document /docs/a.txt?x=1\n".to_vec()),
        ("2-index", b"document /dir/\n".to_vec()),
        ("3-index", b"document /\n".to_vec()),
        ("4-30", pattern(30)),
    ];
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read the output dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    let mut expected_names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    expected_names.sort();
    assert_eq!(names, expected_names);
    for (name, body) in expected {
        let got = std::fs::read(dir.join(name)).expect("read an output file");
        assert_eq!(got, body, "contents of {name}");
    }
}

#[test]
fn uploads_arrive_intact_with_every_framing() {
    let server = loopback();
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("upload.bin");
    // Three and a bit 64 KiB pieces, not a repeating pattern.
    let data: Vec<u8> = (0u32..200_003)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &data).expect("write the upload file");
    let file_arg = file.to_str().expect("utf-8 temp path");
    let paths = ["/x", "/echo", "/x", "/echo", "/x"];
    for extra in [
        &[][..],
        &["--chunked"][..],
        &["--expect-continue"][..],
        &["--chunked", "--expect-continue"][..],
    ] {
        let mut args = vec!["-X", "PUT", "--depth", "4", "--upload", file_arg];
        args.extend_from_slice(extra);
        let run = fetch(&args, server.port(), &paths);
        assert_exit(&run, 0);
        let n = data.len();
        assert_eq!(
            run.stderr_lines(),
            [
                "204 PUT /x 0".to_string(),
                format!("200 PUT /echo {n}"),
                "204 PUT /x 0".to_string(),
                format!("200 PUT /echo {n}"),
                "204 PUT /x 0".to_string(),
            ],
            "with {extra:?}"
        );
        assert!(
            run.stdout.len() == 2 * n && run.stdout.chunks(n).all(|c| c == data),
            "echoed bodies differ with {extra:?} ({} bytes)",
            run.stdout.len()
        );
    }
    assert!(server.errors().is_empty(), "{:?}", server.errors());
}

#[test]
fn refused_upload_body_is_not_sent() {
    let refuse = "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n";
    let server = scripted(vec![
        Step::ExpectHead,
        Step::reply_str(refuse),
        Step::Accept,
        Step::ExpectHead,
        Step::reply_str(refuse),
        Step::Drain(Duration::from_millis(300)),
    ]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("upload.txt");
    std::fs::write(&file, "not wanted").expect("write the upload file");
    let file_arg = file.to_str().expect("utf-8 temp path");
    let args = [
        "-X",
        "POST",
        "--upload",
        file_arg,
        "--expect-continue",
        "--timeout",
        "5",
    ];
    let run = fetch(&args, server.port(), &["/a", "/b"]);
    assert_exit(&run, 0);
    assert_eq!(run.stderr_lines(), ["417 POST /a 0", "417 POST /b 0"]);
    let transcript = server.finish();
    transcript.assert_ok();
    assert_eq!(transcript.heads.len(), 2);
    for (i, head) in transcript.heads.iter().enumerate() {
        assert!(
            head.to_ascii_lowercase()
                .contains("expect: 100-continue\r\n"),
            "{head}"
        );
        assert_eq!(transcript.received_str(i), *head, "only the head was sent");
    }
}

#[test]
fn headers_and_method_go_out_as_given() {
    let server = scripted(vec![
        Step::ExpectHead,
        Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
        Step::Drain(Duration::from_millis(300)),
    ]);
    let port = server.port();
    let args = [
        "-X",
        "OPTIONS",
        "-H",
        "X-One: 1",
        "-H",
        "x-two:   two words  ",
    ];
    let run = fetch(&args, port, &["/p?q=1#frag"]);
    assert_exit(&run, 0);
    assert_eq!(run.stdout, b"hi");
    assert_eq!(run.stderr_lines(), ["200 OPTIONS /p?q=1 2"]);
    let transcript = server.finish();
    transcript.assert_ok();
    let head = transcript.heads[0].to_ascii_lowercase();
    assert!(head.starts_with("options /p?q=1 http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nx-one: 1\r\n"), "{head}");
    assert!(head.contains("\r\nx-two: two words\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nhost: 127.0.0.1:{port}\r\n")),
        "{head}"
    );
}

#[test]
fn verbose_prints_the_log_on_stderr_with_secrets_redacted() {
    let server = loopback();
    let port = server.port();
    let run = fetch(&["-v"], port, &["/bytes/3"]);
    assert_exit(&run, 0);
    assert_eq!(run.stdout, b"abc");
    let lines = run.stderr_lines();
    assert!(lines.contains(&"200 GET /bytes/3 3"), "{lines:#?}");
    let logged = |suffix: &str| {
        lines
            .iter()
            .any(|l| l.starts_with("DEBUG dugong: #") && l.ends_with(suffix))
    };
    assert!(logged(" -> GET /bytes/3 HTTP/1.1"), "{lines:#?}");
    assert!(logged(" <- 200 OK (GET /bytes/3)"), "{lines:#?}");
    assert!(!run.stderr.contains("dugong::wire"), "{lines:#?}");

    let args = ["-vv", "-H", "Authorization: Bearer TOPSECRET"];
    let run = fetch(&args, port, &["/bytes/3"]);
    assert_exit(&run, 0);
    assert_eq!(run.stdout, b"abc");
    let lines = run.stderr_lines();
    let wire = |arrows: &str, text: &str| {
        lines.iter().any(|l| {
            l.starts_with("TRACE dugong::wire: #") && l.contains(arrows) && l.contains(text)
        })
    };
    assert!(wire(" >> ", "GET /bytes/3 HTTP/1.1\\r\\n"), "{lines:#?}");
    assert!(
        wire(" >> ", "\"authorization: <redacted>\\r\\n\""),
        "{lines:#?}"
    );
    assert!(wire(" << ", "HTTP/1.1 200 OK\\r\\n"), "{lines:#?}");
    assert!(wire(" << ", "abc\""), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(" -> authorization: <redacted>")),
        "{lines:#?}"
    );
    assert!(!run.stderr.contains("TOPSECRET"), "{lines:#?}");
}

#[test]
fn argument_errors_exit_2() {
    let server = loopback();
    let url = format!("http://127.0.0.1:{}/a", server.port());
    let other_host = format!("http://127.0.0.2:{}/b", server.port());
    let other_port = format!("http://127.0.0.1:{}/b", closed_port());
    let cases: Vec<Vec<&str>> = vec![
        vec!["--bogus", &url],
        vec![],
        vec!["ftp://127.0.0.1/x"],
        vec!["127.0.0.1/x"],
        vec!["http:///x"],
        vec!["http://127.0.0.1:0/x"],
        vec!["http://127.0.0.1:99999/x"],
        vec!["http://[::1/x"],
        vec!["http://user@127.0.0.1/x"],
        vec!["http://127.0.0.1/a b"],
        vec![&url, &other_host],
        vec![&url, &other_port],
        vec!["--depth", "0", &url],
        vec!["--depth", "many", &url],
        vec!["-H", "NoColon", &url],
        vec!["-H", "Bad Name: x", &url],
        vec!["-H", "Content-Length: 3", &url],
        vec!["--upload", "/nonexistent/dugong/upload", "-X", "PUT", &url],
        vec!["--upload", "/", "-X", "PUT", &url],
        vec!["--chunked", "-X", "PUT", &url],
        vec!["--timeout", "-1", &url],
        vec!["--timeout", "soon", &url],
        vec!["-X", "BAD METHOD", &url],
    ];
    for args in cases {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let run = run_example("fetch", &args);
        assert_exit(&run, 2);
        assert!(!run.stderr.trim().is_empty(), "no message for {args:?}");
        assert!(run.stdout.is_empty(), "stdout for {args:?}");
    }
    assert_eq!(
        server.connections_accepted(),
        0,
        "argument errors send nothing"
    );
}

#[test]
fn ipv6_literals_are_accepted() {
    let url = format!("http://[::1]:{}/a", closed_port());
    let run = run_example("fetch", &["--timeout".into(), "5".into(), url]);
    assert_exit(&run, 1);
    assert_eq!(run.stderr_lines()[0], "unanswered: GET /a");
    assert!(
        run.stderr_lines()[1].starts_with("error: cannot connect to "),
        "{}",
        run.stderr
    );
}

#[test]
fn server_closing_early_reports_the_unanswered_requests() {
    let server = scripted(vec![
        Step::ExpectHead,
        Step::ExpectHead,
        Step::reply_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        // The third head was sent together with the first two: read it too, so that the
        // close is a clean FIN and not a reset.
        Step::Drain(Duration::from_millis(300)),
        Step::Close,
    ]);
    let run = fetch(
        &["--depth", "3", "--timeout", "10"],
        server.port(),
        &["/a", "/b", "/c"],
    );
    assert_exit(&run, 1);
    assert_eq!(run.stdout, b"ok");
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 4, "{}", run.stderr);
    assert_eq!(
        lines[..3],
        ["200 GET /a 2", "unanswered: GET /b", "unanswered: GET /c"]
    );
    assert!(
        lines[3].starts_with("error: connection closed by the server"),
        "{}",
        run.stderr
    );
    let transcript = server.finish();
    transcript.assert_ok();
    assert!(transcript.received_str(0).contains("GET /c HTTP/1.1\r\n"));
    assert_eq!(transcript.connections, 1);
}

#[test]
fn server_closing_after_a_limit_stops_the_pipeline() {
    let server = loopback_with(ServerOptions {
        max_requests_per_connection: Some(5),
    });
    let paths: Vec<String> = (0..12).map(|i| format!("/n/{i}")).collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();

    // Requests 5, 6 and 7 went out on the connection the server closed after request 4.
    let run = fetch(&["--depth", "4", "--timeout", "10"], server.port(), &paths);
    assert_exit(&run, 1);
    let lines = run.stderr_lines();
    let mut expected: Vec<String> = (0..5)
        .map(|i| format!("200 GET /n/{i} {}", format!("document /n/{i}\n").len()))
        .collect();
    expected.extend((5..12).map(|i| format!("unanswered: GET /n/{i}")));
    assert_eq!(lines[..lines.len() - 1], expected, "{}", run.stderr);
    let last = lines[lines.len() - 1];
    assert!(
        last.starts_with("error: connection closed by the server"),
        "{last}"
    );
    let expected_out: String = (0..5).map(|i| format!("document /n/{i}\n")).collect();
    assert_eq!(run.stdout_str(), expected_out);

    // One at a time, no request is ever left on a closed connection: the library reconnects.
    let before = server.connections_accepted();
    let run = fetch(&["--timeout", "10"], server.port(), &paths);
    assert_exit(&run, 0);
    assert_eq!(run.stderr_lines().len(), 12, "{}", run.stderr);
    assert_eq!(server.connections_accepted() - before, 3);
}

/// The server answers the first upload early and closes while its body is still going out.
/// That request has its response; the next one was never sent, so it goes out on a new
/// connection (not a resend: `PUT` needs no `--retry` for it), and every response is complete.
#[test]
fn an_early_response_to_an_upload_is_still_reported() {
    const UPLOAD: usize = 64 << 20;
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("big.bin");
    // Far more than the socket buffers hold, so the upload is cut off by the close.
    std::fs::write(&file, vec![b'x'; UPLOAD]).expect("write the upload file");
    let file_arg = file.to_str().expect("utf-8 temp path");
    for depth in ["1", "2"] {
        let server = scripted(vec![
            Step::ExpectHead,
            Step::reply_str(
                "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            ),
            Step::Close,
            Step::Accept,
            Step::ExpectHead,
            Step::Discard(UPLOAD as u64),
            Step::reply_str("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"),
        ]);
        let args = [
            "-X",
            "PUT",
            "--upload",
            file_arg,
            "--timeout",
            "10",
            "--depth",
            depth,
        ];
        let run = fetch(&args, server.port(), &["/a", "/b"]);
        assert_exit(&run, 0);
        assert_eq!(
            run.stderr_lines(),
            ["413 PUT /a 0", "201 PUT /b 2"],
            "--depth {depth}"
        );
        server.finish().assert_ok();
    }
}

/// The server answers an upload at once and then stops reading, keeping the connection
/// open: the upload times out, but the answer that arrived is reported, not lost.
#[test]
fn an_early_answer_survives_an_upload_that_times_out() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("big.bin");
    std::fs::write(&file, vec![b'x'; 64 << 20]).expect("write the upload file");
    let file_arg = file.to_str().expect("utf-8 temp path");
    for framing in ["--upload", "--chunked"] {
        let server = scripted(vec![
            Step::ExpectHead,
            Step::reply_str("HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope"),
            Step::Stall(Duration::from_secs(3)),
        ]);
        let mut args = vec!["-X", "POST", "--upload", file_arg, "--timeout", "1"];
        if framing == "--chunked" {
            args.push("--chunked");
        }
        let run = fetch(&args, server.port(), &["/x"]);
        assert_exit(&run, 0);
        assert_eq!(run.stderr_lines(), ["403 POST /x 4"], "{framing}");
        assert_eq!(run.stdout_str(), "nope");
        server.finish().assert_ok();
    }
}

/// A server that streams its answer back while it reads the upload (as node's
/// `req.pipe(res)` does) stops reading when the client stops reading. With `--depth` above
/// 1 the upload goes out through a cofunction, and what arrives meanwhile is read a step at
/// a time, never waiting for a body whose end depends on the bytes still to be sent.
#[test]
fn an_upload_echoed_while_it_is_sent_does_not_deadlock() {
    const UPLOAD: usize = 24 << 20;
    examples_dir();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let echo = thread::spawn(move || -> std::io::Result<u64> {
        let (stream, _) = listener.accept()?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().map_err(std::io::Error::other)?;
            }
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut out = stream;
        out.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
        let mut piece = vec![0u8; 64 * 1024];
        let mut echoed = 0u64;
        while (echoed as usize) < length {
            let want = piece.len().min(length - echoed as usize);
            let n = reader.read(&mut piece[..want])?;
            if n == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            // Blocks while the client does not read: then this server reads no more either.
            write!(out, "{n:x}\r\n")?;
            out.write_all(&piece[..n])?;
            out.write_all(b"\r\n")?;
            echoed += n as u64;
        }
        out.write_all(b"0\r\n\r\n")?;
        Ok(echoed)
    });
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("up.bin");
    let data = pattern(UPLOAD);
    std::fs::write(&file, &data).expect("write the upload file");
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).expect("out dir");
    let args = [
        "-X",
        "PUT",
        "--upload",
        file.to_str().expect("utf-8 temp path"),
        "--depth",
        "2",
        "--timeout",
        "10",
        "-o",
        out_dir.to_str().expect("utf-8 temp path"),
    ];
    let run = fetch(&args, port, &["/stream"]);
    assert_exit(&run, 0);
    assert_eq!(run.stderr_lines(), [format!("200 PUT /stream {UPLOAD}")]);
    let echoed = std::fs::read(out_dir.join("0-stream")).expect("the echoed body");
    assert!(echoed == data, "the echo differs from the upload");
    assert_eq!(
        echo.join().expect("echo thread").expect("echo"),
        UPLOAD as u64
    );
}

#[test]
fn a_closed_stdout_is_an_error_not_a_panic() {
    let server = loopback();
    let url = format!("http://127.0.0.1:{}/bytes/10000000", server.port());
    let run = collect(spawn_example_with_closed_stdout("fetch", &[url]));
    assert_exit(&run, 1);
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert_eq!(lines[0], "unanswered: GET /bytes/10000000");
    assert!(
        lines[1].starts_with("error: writing the body: "),
        "{}",
        run.stderr
    );
}

#[test]
fn connection_refused_lists_every_request() {
    let port = closed_port();
    let run = fetch(&["--depth", "2", "-X", "DELETE"], port, &["/a", "/b", "/c"]);
    assert_exit(&run, 1);
    assert!(run.stdout.is_empty());
    let lines = run.stderr_lines();
    assert_eq!(
        lines[..3],
        [
            "unanswered: DELETE /a",
            "unanswered: DELETE /b",
            "unanswered: DELETE /c"
        ]
    );
    assert_eq!(lines.len(), 4, "{}", run.stderr);
    let prefix = format!("error: cannot connect to 127.0.0.1:{port}: ");
    assert!(lines[3].starts_with(&prefix), "{}", run.stderr);
}

#[test]
fn a_silent_server_times_out() {
    let server = scripted(vec![Step::ExpectHead, Step::Drain(Duration::from_secs(10))]);
    let run = fetch(&["--timeout", "0.5"], server.port(), &["/slow", "/never"]);
    assert_exit(&run, 1);
    assert!(run.took < Duration::from_secs(5), "took {:?}", run.took);
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 3, "{}", run.stderr);
    assert_eq!(
        lines[..2],
        ["unanswered: GET /slow", "unanswered: GET /never"]
    );
    assert!(
        lines[2].starts_with("error: timed out after 500ms"),
        "{}",
        run.stderr
    );
    server.finish().assert_ok();
}

#[test]
fn demo_prints_its_table() {
    let run = run_example("demo", &["--requests".into(), "40".into()]);
    assert_exit(&run, 0);
    let out = run.stdout_str();
    assert!(
        out.starts_with("dugong demo: 40 GETs over one connection, 5.0 ms round trip"),
        "{out}"
    );
    assert!(out.contains("| mode "), "{out}");
    assert!(out.contains("| one at a time         |     1 |"), "{out}");
    assert!(out.contains("| pipelined             |    16 |"), "{out}");
    assert!(out.contains("| pipelined             |    64 |"), "{out}");
    assert!(out.contains("| pipelined, cofunction |   any |"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with('|')).count(),
        6,
        "{out}"
    );
}

#[test]
fn https_with_cacert_fetches_over_tls() {
    let peer = HttpsPeer::start();
    // Another CA's certificate first: every certificate in the file is trusted.
    let bundle = peer.ca_pem.with_file_name("bundle.pem");
    let pem = std::fs::read_to_string(&peer.ca_pem).expect("read the CA file");
    std::fs::write(&bundle, TestCa::new().root_pem() + &pem).expect("write the bundle");
    let bundle_arg = bundle.to_str().expect("utf-8 temp path");
    let paths = ["/bytes/5", "/chunked/70000/999", "/doc?x=1"];
    let mut expected_out = pattern(5);
    expected_out.extend(pattern(70_000));
    expected_out.extend_from_slice(b"document /doc?x=1\n");
    let expected_lines = [
        "200 GET /bytes/5 5",
        "200 GET /chunked/70000/999 70000",
        "200 GET /doc?x=1 18",
    ];
    for (host, ca) in [("127.0.0.1", peer.ca_arg()), ("localhost", bundle_arg)] {
        let base = format!("https://{host}:{}", peer.tls.port());
        let run = fetch_from(&base, &["--cacert", ca, "--timeout", "10"], &paths);
        assert_exit(&run, 0);
        assert_eq!(run.stdout, expected_out, "stdout via {host}");
        assert_eq!(run.stderr_lines(), expected_lines, "stderr via {host}");
    }
    assert!(
        peer.server.errors().is_empty(),
        "{:?}",
        peer.server.errors()
    );
    assert!(peer.tls.errors().is_empty(), "{:?}", peer.tls.errors());
}

#[test]
fn an_untrusted_certificate_fails_like_a_connection() {
    let peer = HttpsPeer::start();
    let base = format!("https://127.0.0.1:{}", peer.tls.port());
    let other_ca = peer.ca_pem.with_file_name("other.pem");
    std::fs::write(&other_ca, TestCa::new().root_pem()).expect("write the other CA file");
    let other_arg = other_ca.to_str().expect("utf-8 temp path");
    // Without --cacert the built-in roots apply, which do not include the test CA.
    for args in [&["--timeout", "10"][..], &["--cacert", other_arg][..]] {
        let run = fetch_from(&base, args, &["/a", "/b"]);
        assert_exit(&run, 1);
        assert!(run.stdout.is_empty());
        let lines = run.stderr_lines();
        assert_eq!(lines.len(), 3, "{}", run.stderr);
        assert_eq!(lines[..2], ["unanswered: GET /a", "unanswered: GET /b"]);
        assert!(
            lines[2].starts_with("error: tls error: ") && lines[2].contains("certificate"),
            "with {args:?}: {}",
            run.stderr
        );
    }
    assert_eq!(peer.server.requests_served(), 0, "no request went out");
}

#[test]
fn https_pipelines_at_depth() {
    let peer = HttpsPeer::start();
    let base = format!("https://localhost:{}", peer.tls.port());
    let paths: Vec<String> = (0..40)
        .map(|i| match i % 4 {
            0 => format!("/bytes/{}", 300_000 + i),
            1 => format!("/chunked/{}/777", i * 1000),
            _ => format!("/bytes/{i}"),
        })
        .collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let size = |p: &str| -> usize {
        p.split('/')
            .nth(2)
            .and_then(|n| n.parse().ok())
            .expect("size")
    };
    let expected_out: Vec<u8> = paths.iter().flat_map(|p| pattern(size(p))).collect();
    let expected_lines: Vec<String> = paths
        .iter()
        .map(|p| format!("200 GET {p} {}", size(p)))
        .collect();
    for depth in ["4", "16"] {
        let args = [
            "--cacert",
            peer.ca_arg(),
            "--depth",
            depth,
            "--timeout",
            "10",
        ];
        let run = fetch_from(&base, &args, &paths);
        assert_exit(&run, 0);
        assert!(
            run.stdout == expected_out,
            "stdout differs at depth {depth} ({} bytes)",
            run.stdout.len()
        );
        assert_eq!(
            run.stderr_lines(),
            expected_lines,
            "stderr at depth {depth}"
        );
    }
    // An upload, pipelined and echoed, goes through the TLS session intact both ways.
    let file = peer.ca_pem.with_file_name("upload.bin");
    let data = pattern(150_001);
    std::fs::write(&file, &data).expect("write the upload file");
    let file_arg = file.to_str().expect("utf-8 temp path");
    let args = [
        "--cacert",
        peer.ca_arg(),
        "--depth",
        "3",
        "-X",
        "PUT",
        "--upload",
        file_arg,
    ];
    let run = fetch_from(&base, &args, &["/echo", "/x", "/echo"]);
    assert_exit(&run, 0);
    assert_eq!(
        run.stderr_lines(),
        [
            "200 PUT /echo 150001",
            "204 PUT /x 0",
            "200 PUT /echo 150001"
        ]
    );
    assert!(
        run.stdout == [data.clone(), data].concat(),
        "echoed bodies differ"
    );
    assert_eq!(
        peer.server.connections_accepted(),
        3,
        "one connection per run"
    );
    assert!(
        peer.server.errors().is_empty(),
        "{:?}",
        peer.server.errors()
    );
}

#[test]
fn tls_argument_errors_exit_2() {
    let peer = HttpsPeer::start();
    let https = format!("https://127.0.0.1:{}/a", peer.tls.port());
    let http = format!("http://127.0.0.1:{}/b", peer.tls.port());
    let empty = peer.ca_pem.with_file_name("empty.pem");
    std::fs::write(&empty, "no certificates here\n").expect("write the empty file");
    let broken = peer.ca_pem.with_file_name("broken.pem");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nnot base64!\n").expect("write");
    let cases: Vec<Vec<&str>> = vec![
        vec!["--cacert", "/nonexistent/dugong/ca.pem", &https],
        vec!["--cacert", empty.to_str().expect("utf-8"), &https],
        vec!["--cacert", broken.to_str().expect("utf-8"), &https],
        vec!["--cacert"],
        vec![&https, &http],
        vec!["https://127.0.0.1:/a"],
        vec!["HTTPS://[127.0.0.1]/a"],
        vec!["https://user@127.0.0.1/a"],
    ];
    for args in cases {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let run = run_example("fetch", &args);
        assert_exit(&run, 2);
        assert!(!run.stderr.trim().is_empty(), "no message for {args:?}");
        assert!(run.stdout.is_empty(), "stdout for {args:?}");
    }
    assert_eq!(
        peer.server.connections_accepted(),
        0,
        "argument errors send nothing"
    );
}

/// Kills the child when dropped, so a failing test leaves no `fetch` behind.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server on 127.0.0.1 for one connection: it answers the first request (`first`) at once,
/// and the second (`second`) only once `go` is sent.
fn gated_server(go: mpsc::Receiver<()>) -> (u16, thread::JoinHandle<Result<(), String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the gated server");
    let port = listener.local_addr().expect("server address").port();
    let server = thread::spawn(move || {
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut conn = loop {
            match listener.accept() {
                Ok((conn, _)) => break conn,
                Err(e) if e.kind() == ErrorKind::WouldBlock && start.elapsed() < RUN_LIMIT => {
                    thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(format!("accept: {e}")),
            }
        };
        conn.set_nonblocking(false).map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(RUN_LIMIT))
            .map_err(|e| e.to_string())?;
        let mut received = Vec::new();
        let mut read_heads = |conn: &mut std::net::TcpStream, heads: usize| {
            while received.windows(4).filter(|w| w == b"\r\n\r\n").count() < heads {
                let mut piece = [0u8; 4096];
                match conn.read(&mut piece) {
                    Ok(0) => return Err(format!("closed before request head {heads}")),
                    Ok(n) => received.extend_from_slice(&piece[..n]),
                    Err(e) => return Err(format!("reading request head {heads}: {e}")),
                }
            }
            Ok(())
        };
        let reply = |body: &str| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        read_heads(&mut conn, 1)?;
        conn.write_all(reply("first").as_bytes())
            .map_err(|e| e.to_string())?;
        read_heads(&mut conn, 2)?;
        go.recv_timeout(RUN_LIMIT)
            .map_err(|_| "no go for the second response".to_string())?;
        conn.write_all(reply("second").as_bytes())
            .map_err(|e| e.to_string())?;
        // Until the client closes, so that its close is a clean FIN.
        let _ = conn.read_to_end(&mut Vec::new());
        Ok(())
    });
    (port, server)
}

#[test]
fn progress_shows_through_a_pipe_while_fetch_waits() {
    examples_dir();
    // Well within fetch's own timeout: what shows only at exit shows too late.
    let while_waiting = Duration::from_secs(20);
    // Depth 1 waits for a request it has just sent; depth 2 finds the second response not
    // there after reading the first.
    for depth in ["1", "2"] {
        let (go, gate) = mpsc::channel();
        let (port, server) = gated_server(gate);
        let args: Vec<String> = ["--depth", depth, "--timeout", "50"]
            .into_iter()
            .map(String::from)
            .chain(["/1", "/2"].map(|p| format!("http://127.0.0.1:{port}{p}")))
            .collect();
        let mut child = Reaper(spawn_example("fetch", &args));
        let (lines_tx, lines) = mpsc::channel();
        let stderr = child.0.stderr.take().expect("stderr pipe");
        let stderr_reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (pieces_tx, pieces) = mpsc::channel();
        let mut stdout = child.0.stdout.take().expect("stdout pipe");
        let stdout_reader = thread::spawn(move || {
            let mut piece = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut piece) {
                if pieces_tx.send(piece[..n].to_vec()).is_err() {
                    break;
                }
            }
        });

        // The second response is held back until both pipes have shown the first.
        let first_line = lines.recv_timeout(while_waiting);
        assert_eq!(
            first_line.as_deref(),
            Ok("200 GET /1 5"),
            "the first report line at depth {depth}, while fetch waits"
        );
        let mut out = Vec::new();
        while out.len() < 5 {
            match pieces.recv_timeout(while_waiting) {
                Ok(piece) => out.extend(piece),
                Err(e) => panic!("the first body at depth {depth}: {e} after {out:?}"),
            }
        }
        assert_eq!(out, b"first", "stdout at depth {depth}, while fetch waits");
        go.send(()).expect("the server still waits");

        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("wait for fetch") {
                break status;
            }
            assert!(start.elapsed() < RUN_LIMIT, "fetch did not finish");
            thread::sleep(Duration::from_millis(5));
        };
        stderr_reader.join().expect("stderr reader");
        stdout_reader.join().expect("stdout reader");
        assert_eq!(status.code(), Some(0), "exit status at depth {depth}");
        let rest: Vec<String> = lines.try_iter().collect();
        assert_eq!(
            rest,
            ["200 GET /2 6"],
            "the rest of stderr at depth {depth}"
        );
        out.extend(pieces.try_iter().flatten());
        assert_eq!(out, b"firstsecond", "stdout at depth {depth}");
        server
            .join()
            .expect("server thread")
            .unwrap_or_else(|e| panic!("server at depth {depth}: {e}"));
    }
}

#[test]
fn stdout_and_stderr_on_one_file_interleave_as_ever() {
    let server = loopback();
    let tmp = tempfile::tempdir().expect("temp dir");
    let paths: Vec<String> = (0..20).map(|i| format!("/bytes/{i}")).collect();
    let url = |p: &String| format!("http://127.0.0.1:{}{p}", server.port());
    let expected: Vec<u8> = (0..20)
        .flat_map(|i| [pattern(i), format!("200 GET /bytes/{i} {i}\n").into_bytes()].concat())
        .collect();
    for depth in ["1", "16"] {
        // One open file behind both streams, as with `2>&1`.
        let path = tmp.path().join(format!("both-{depth}"));
        let file = std::fs::File::create(&path).expect("create the output file");
        let other = file.try_clone().expect("duplicate the output file");
        let mut args = vec!["--depth".to_string(), depth.to_string()];
        args.extend(paths.iter().map(url));
        let child = Command::new(examples_dir().join("fetch"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(other)
            .spawn()
            .expect("spawn fetch");
        let run = collect(child);
        assert_exit(&run, 0);
        let got = std::fs::read(&path).expect("read the output file");
        assert!(
            got == expected,
            "each body then its line, at depth {depth}: {:?}",
            String::from_utf8_lossy(&got)
        );
    }
}

#[test]
fn a_closed_stdout_loses_no_report_and_no_request() {
    let server = loopback();
    let paths = ["/bytes/10", "/bytes/0", "/bytes/20"];
    let args: Vec<String> = ["--depth", "4"]
        .into_iter()
        .map(String::from)
        .chain(paths.map(|p| format!("http://127.0.0.1:{}{p}", server.port())))
        .collect();
    let run = collect(spawn_example_with_closed_stdout("fetch", &args));
    assert_exit(&run, 1);
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 4, "{}", run.stderr);
    assert_eq!(
        lines[..3],
        [
            "unanswered: GET /bytes/10",
            "unanswered: GET /bytes/0",
            "unanswered: GET /bytes/20"
        ]
    );
    assert!(
        lines[3].starts_with("error: writing the body: "),
        "{}",
        run.stderr
    );
}

/// `--retry N`: the requests a closing server left without a response are resent on a new
/// connection, each body arriving once, in order; a `retry:` line says why. Not for POST,
/// and not beyond N failures in a row.
#[test]
fn retry_resends_what_a_closing_server_left_unanswered() {
    let server = loopback_with(ServerOptions {
        max_requests_per_connection: Some(5),
    });
    let paths: Vec<String> = (0..12).map(|i| format!("/n/{i}")).collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let before = server.connections_accepted();
    let run = fetch(
        &["--depth", "4", "--timeout", "10", "--retry", "1"],
        server.port(),
        &paths,
    );
    assert_exit(&run, 0);
    let expected_out: String = (0..12).map(|i| format!("document /n/{i}\n")).collect();
    assert_eq!(run.stdout_str(), expected_out);
    let lines = run.stderr_lines();
    let reports: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with("retry: "))
        .collect();
    let expected: Vec<String> = (0..12)
        .map(|i| format!("200 GET /n/{i} {}", format!("document /n/{i}\n").len()))
        .collect();
    assert_eq!(reports, expected, "{}", run.stderr);
    let retries = lines.iter().filter(|l| l.starts_with("retry: ")).count();
    assert_eq!(
        retries, 2,
        "one retry line per closed connection: {}",
        run.stderr
    );
    assert_eq!(server.connections_accepted() - before, 3);

    // A POST is never resent: the unanswered ones are reported as without --retry.
    let run = fetch(
        &[
            "--depth",
            "4",
            "--timeout",
            "10",
            "--retry",
            "3",
            "-X",
            "POST",
        ],
        server.port(),
        &paths,
    );
    assert_exit(&run, 1);
    assert!(
        run.stderr.contains("unanswered: POST /n/11"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("retry: "), "{}", run.stderr);

    // A refused connection is temporary: N retries in a row, after 100 and 200 ms, then
    // the error.
    let started = std::time::Instant::now();
    let run = fetch(&["--retry", "2"], closed_port(), &["/x"]);
    assert_exit(&run, 1);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let lines = run.stderr_lines();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("retry: ")).count(),
        2,
        "{}",
        run.stderr
    );
    assert_eq!(lines[lines.len() - 2], "unanswered: GET /x");
}

#[test]
fn proxy_carries_plain_and_https_urls() {
    let server = loopback();
    let proxy = ForwardProxy::start();
    let proxy_url = format!("http://me:p%40ss@127.0.0.1:{}", proxy.port());
    let run = fetch(
        &["--proxy", &proxy_url, "--depth", "4"],
        server.port(),
        &["/bytes/3", "/bytes/5"],
    );
    assert_exit(&run, 0);
    assert_eq!(run.stdout, [pattern(3), pattern(5)].concat());
    assert_eq!(
        run.stderr_lines(),
        ["200 GET /bytes/3 3", "200 GET /bytes/5 5"]
    );
    let port = server.port();
    let heads = proxy.heads();
    assert_eq!(heads.len(), 2, "{heads:?}");
    for (head, target) in heads.iter().zip(["/bytes/3", "/bytes/5"]) {
        assert!(
            head.starts_with(&format!("GET http://127.0.0.1:{port}{target} HTTP/1.1\r\n")),
            "{head}"
        );
        // Basic base64("me:p@ss").
        assert!(
            head.contains("proxy-authorization: Basic bWU6cEBzcw==\r\n"),
            "{head}"
        );
    }

    let peer = HttpsPeer::start();
    let base = format!("https://127.0.0.1:{}", peer.tls.port());
    let run = fetch_from(
        &base,
        &["--proxy", &proxy_url, "--cacert", peer.ca_arg()],
        &["/bytes/7"],
    );
    assert_exit(&run, 0);
    assert_eq!(run.stdout, pattern(7));
    assert_eq!(run.stderr_lines(), ["200 GET /bytes/7 7"]);
    let connect = format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\n", peer.tls.port());
    assert!(
        proxy.heads()[2].starts_with(&connect),
        "{:?}",
        proxy.heads()
    );
}

#[test]
fn a_refused_tunnel_fails_like_a_connection() {
    let proxy = ForwardProxy::start_with(ProxyAnswer::Refuse(
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n".to_vec(),
    ));
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port());
    let run = fetch_from(
        &format!("https://127.0.0.1:{}", closed_port()),
        &["--proxy", &proxy_url, "--timeout", "5"],
        &["/a", "/b"],
    );
    assert_exit(&run, 1);
    assert_eq!(
        run.stderr_lines(),
        [
            "unanswered: GET /a",
            "unanswered: GET /b",
            "error: the proxy refused the tunnel with status 407 Proxy Authentication Required",
        ]
    );
    assert!(run.stdout.is_empty());
}

/// `--proxy-from-env` takes an http:// URL's proxy from `http_proxy`, never `HTTP_PROXY`,
/// and goes direct to hosts in `no_proxy` (curl's rules: CIDR networks, no ports).
#[test]
fn proxy_from_env_follows_http_proxy_and_no_proxy() {
    let server = loopback();
    let proxy = ForwardProxy::start();
    let url = format!("http://127.0.0.1:{}/bytes/4", server.port());
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port());
    let with_port = format!("127.0.0.1:{}", server.port());
    let rows = [
        ("http_proxy", "", 1),
        ("http_proxy", "localhost,127.0.0.1", 0),
        ("http_proxy", "127.0.0.0/8", 0),
        ("http_proxy", with_port.as_str(), 1),
        ("HTTP_PROXY", "", 0),
    ];
    for (variable, no_proxy, proxied) in rows {
        // Counted before the child starts: it may reach the proxy before this thread runs again.
        let before = proxy.heads().len();
        let child = Command::new(examples_dir().join("fetch"))
            .args(["--proxy-from-env", &url])
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .env_remove("NO_PROXY")
            .env(variable, &proxy_url)
            .env("no_proxy", no_proxy)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fetch");
        let run = collect(child);
        assert_exit(&run, 0);
        assert_eq!(run.stdout, pattern(4));
        assert_eq!(
            proxy.heads().len() - before,
            proxied,
            "{variable} no_proxy={no_proxy:?}"
        );
    }
    // Without the flag the environment is not read.
    let before = proxy.heads().len();
    let child = Command::new(examples_dir().join("fetch"))
        .arg(&url)
        .env("http_proxy", &proxy_url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fetch");
    assert_exit(&collect(child), 0);
    assert_eq!(proxy.heads().len(), before);
}

#[test]
fn proxy_argument_errors_exit_2() {
    let url = format!("http://127.0.0.1:{}/a", closed_port());
    for args in [
        vec!["--proxy", "socks5://127.0.0.1:1080", &url],
        vec!["--proxy", "https://127.0.0.1:3128", &url],
        vec!["--proxy", "http://127.0.0.1:port", &url],
        vec!["--proxy", "http://127.0.0.1:3128", "--proxy-from-env", &url],
        vec!["--proxy", "http://127.0.0.1:3128/path", &url],
    ] {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let run = run_example("fetch", &args);
        assert_exit(&run, 2);
        assert!(!run.stderr.trim().is_empty(), "no message for {args:?}");
    }
}
