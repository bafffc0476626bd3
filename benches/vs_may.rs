//! dugong's green threads side by side with the `may` crate (`cargo bench --bench vs_may`),
//! printed as one markdown table:
//!
//! - `spawn`: spawn + run + join of trivial tasks on one worker, in waves of 1,000 (may's
//!   coroutine pool holds 1,000, and may maps a stack and its guard page per *spawned*
//!   coroutine: 100,000 at once would need some 200,000 mappings, over Linux's default
//!   `vm.max_map_count` of 65,530), after one warm-up pass so both stack pools are warm;
//! - `switch`: two tasks on one worker taking turns with `yield_now`, per switch;
//! - `gets`: 64 connections, each its own task, each making 2,000 sequential `GET /bytes/100`
//!   (one request in flight per connection, `Connection: keep-alive`), on one worker and on
//!   two: dugong with `green::run` (one worker) or `green::Pool::new(2)`, each task an
//!   `HttpConnection` from `task.connect`; may with one `may::net::TcpStream` per coroutine
//!   and a minimal hand-written HTTP/1.1 exchange (write the request, read until the head and
//!   `Content-Length` bytes are in, head parsed by `httparse`). Every status and body is
//!   checked, on both sides. Both have 30 s I/O timeouts (dugong's default; may's set).
//! - `idle`: peak RSS growth (`VmHWM`) per task of 10,000 tasks each holding an open
//!   connection with a request sent and no answer coming (the may coroutine with a 4 KiB read
//!   buffer, as its `gets` client has), from before the runtime is made (may's scheduler
//!   starts at the first spawn, with a pool of 1,000 coroutines that the tasks then use);
//! - `syscalls`: the one-worker `gets` child under `strace -f -c`, once with 64 x 200
//!   requests and once with none (start-up, connects, teardown): the difference in system
//!   calls, of every thread, divided by the 12,800 requests, and likewise for the four
//!   calls the requests added most of. Skipped, with a note, without `strace`. Then the
//!   same under `perf stat -e raw_syscalls:sys_enter` (a total only, but counted without
//!   stopping the client at each call, as strace does: slowed several times over, dugong's
//!   green client probes idle connections it would otherwise skip); skipped without a
//!   `perf` that can count that tracepoint.
//!
//! Each figure is the median of 5 runs (3 with `--quick`), each run a child process (this
//! binary re-run with `--child LIB MEASUREMENT ...`), dugong's and may's runs alternating:
//! may's worker count is global configuration fixed at its first use, so each may setup
//! needs a process of its own, and dugong's runs get the same treatment for symmetry. A cell
//! shows the median and, in brackets, the lowest and highest run. The `syscalls` row is one
//! traced run per library and request count. The ratio column (of the medians) is oriented
//! so that > 1 means dugong is better: may/dugong for costs (time, memory, calls), dugong/may
//! for rates.
//!
//! The HTTP server is nginx when found (`$DUGONG_NGINX`, `PATH`, `/usr/sbin/nginx`; one
//! worker process, `return 200` with the 100 bytes from its config), else dugong-harness's
//! `LoopbackServer` in a child process; the table's preamble says which. With `taskset` on
//! `PATH`, the server (and the idle connections' server) runs on CPU 0 and every one-worker
//! client on CPU 1; two-worker clients get both CPUs. may pins its workers to the CPUs it is
//! allowed (its default, kept); dugong leaves placement to the OS.
//!
//! `-- --only NAME` runs one group (spawn, switch, gets, idle, syscalls); `-- --quick` runs
//! each briefly (well under a minute in all); `-- --runs N` takes the median of N runs (the
//! GET rows vary by ±20% from run to run on a shared machine).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dugong::green::{self, Task};
use dugong::Body;
use http::header::{HeaderValue, CONNECTION};
use http::{HeaderMap, Method, StatusCode};

/// Connections (tasks) in the `gets` rows.
const CONNECTIONS: usize = 64;
/// What every GET asks for, and the length of the answer's body.
const TARGET: &str = "/bytes/100";
const BODY_LEN: usize = 100;
/// Tasks spawned before they are joined, in the `spawn` rows.
const WAVE: usize = 1_000;
/// I/O timeout of may's streams: the same as dugong's default operation timeout, so both
/// clients keep a timer per wait and neither can hang on a stalled server.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a measurement child may take before it is killed and the bench fails.
const CHILD_DEADLINE: Duration = Duration::from_secs(300);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return; // criterion-style probes from `cargo bench` list targets
    }
    if let Some(role) = value(&args, "--serve") {
        return serve(role);
    }
    if let Some(at) = args.iter().position(|a| a == "--child") {
        return child(&args[at + 1..]);
    }
    parent(&args);
}

/// The argument after `flag`.
fn value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

/// The number after `flag`, or `default`.
fn number(args: &[String], flag: &str, default: usize) -> usize {
    value(args, flag).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{flag} wants a number, not {v:?}"))
    })
}

/// The body every `GET /bytes/100` must return (dugong-harness's pattern; nginx is
/// configured with the same bytes).
fn expected_body() -> Vec<u8> {
    dugong_harness::pattern(BODY_LEN)
}

// ---------------------------------------------------------------------------------------
// The parent: plans the runs, starts the servers, prints the table.
// ---------------------------------------------------------------------------------------

/// What the parent found and was asked for.
struct Plan {
    exe: PathBuf,
    runs: usize,
    taskset: Option<PathBuf>,
}

/// Which library a child measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lib {
    Dugong,
    May,
}

impl Lib {
    fn name(self) -> &'static str {
        match self {
            Lib::Dugong => "dugong",
            Lib::May => "may",
        }
    }
}

/// How a figure compares: lower is better (a cost) or higher is (a rate).
#[derive(Clone, Copy)]
enum Better {
    Lower,
    Higher,
}

fn parent(args: &[String]) {
    let quick = args.iter().any(|a| a == "--quick");
    let only = value(args, "--only");
    let run = |name: &str| only.is_none_or(|o| o == name);
    let plan = Plan {
        exe: std::env::current_exe().expect("the bench's own path, to re-run it as a child"),
        runs: value(args, "--runs")
            .map(|n| n.parse().expect("--runs takes a number"))
            .unwrap_or(if quick { 3 } else { 5 }),
        taskset: find_binary(None, "taskset", "/usr/bin/taskset").ok(),
    };
    let started = Instant::now();

    // Both HTTP groups use one server, started once.
    let server = (run("gets") || run("syscalls")).then(|| http_server(&plan));
    println!(
        "dugong vs may 0.3.51{}: median of {} runs per figure, each run a child process; \
         may with {} KiB coroutine stacks and its workers pinned (its defaults), dugong with \
         128 KiB task stacks (both touched lazily).",
        if quick { " (--quick)" } else { "" },
        plan.runs,
        // may's stack size is counted in words.
        may::config().get_stack_size() * std::mem::size_of::<usize>() / 1024,
    );
    match &plan.taskset {
        Some(_) => println!(
            "Pinning: servers on CPU 0, one-worker clients on CPU 1 (taskset); two-worker \
             clients on both CPUs."
        ),
        None => println!("Pinning: none (no taskset on PATH)."),
    }
    if let Some(server) = &server {
        println!("HTTP server: {}.", server.name);
    }
    println!();
    println!("| measurement | dugong | may | ratio (> 1: dugong better) |");
    println!("|---|---|---|---|");

    if run("spawn") {
        let tasks = if quick { 10_000 } else { 100_000 };
        let (d, m) = pair(&plan, true, &["spawn", "--tasks", &tasks.to_string()]);
        row(
            &format!(
                "spawn + join, 1 worker ({} tasks in waves of {}), per task",
                thousands(tasks as f64),
                thousands(WAVE as f64)
            ),
            &d,
            &m,
            Better::Lower,
            |ns| format!("{ns:.0} ns"),
        );
    }
    if run("switch") {
        let rounds = if quick { 20_000 } else { 200_000 };
        let (d, m) = pair(&plan, true, &["switch", "--rounds", &rounds.to_string()]);
        row(
            "context switch, 1 worker (2 tasks ping-ponging with yield_now), per switch",
            &d,
            &m,
            Better::Lower,
            |ns| format!("{ns:.0} ns"),
        );
    }
    if let (true, Some(server)) = (run("gets"), &server) {
        let per = if quick { 100 } else { 2_000 };
        for workers in [1, 2] {
            let port = server.port.to_string();
            let (d, m) = pair(
                &plan,
                workers == 1,
                &[
                    "gets",
                    "--workers",
                    &workers.to_string(),
                    "--per",
                    &per.to_string(),
                    "--port",
                    &port,
                ],
            );
            row(
                &format!(
                    "{CONNECTIONS} conns x {} sequential 100-byte GETs, {workers} worker{}",
                    thousands(per as f64),
                    if workers == 1 { "" } else { "s" }
                ),
                &d,
                &m,
                Better::Higher,
                |rate| format!("{} req/s", thousands(rate)),
            );
        }
    }
    if run("idle") {
        let tasks = if quick { 500 } else { 10_000 };
        let (d, m) = idle_pair(&plan, tasks);
        row(
            &format!(
                "{} idle tasks each holding a connection: peak RSS growth per task",
                thousands(tasks as f64)
            ),
            &d,
            &m,
            Better::Lower,
            |kib| format!("{kib:.1} KiB"),
        );
    }
    if let (true, Some(server)) = (run("syscalls"), &server) {
        let per = if quick { 50 } else { 200 };
        syscalls(&plan, server.port, per);
        perf_syscalls(&plan, server.port, per);
    }
    println!();
    println!("Took {:.1} s.", started.elapsed().as_secs_f64());
}

/// Runs dugong's and may's child for `measurement` `plan.runs` times each, alternating, and
/// returns their figures (dugong's, may's).
fn pair(plan: &Plan, pin: bool, measurement: &[&str]) -> (Vec<f64>, Vec<f64>) {
    let (mut d, mut m) = (Vec::new(), Vec::new());
    for _ in 0..plan.runs {
        for (lib, figures) in [(Lib::Dugong, &mut d), (Lib::May, &mut m)] {
            let mut args = vec![lib.name()];
            args.extend_from_slice(measurement);
            figures.push(measure(plan, pin, &args, None));
        }
    }
    (d, m)
}

/// As [`pair`] for the idle tasks: each run gets a fresh server child for its connections
/// (a server holds every connection it accepted until it stops, and 20,000 descriptors is
/// this machine's limit).
fn idle_pair(plan: &Plan, tasks: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut d, mut m) = (Vec::new(), Vec::new());
    for _ in 0..plan.runs {
        for (lib, figures) in [(Lib::Dugong, &mut d), (Lib::May, &mut m)] {
            let server = self_server(plan, "idle");
            let args = [
                lib.name(),
                "idle",
                "--tasks",
                &tasks.to_string(),
                "--port",
                &server.port.to_string(),
            ];
            figures.push(measure(plan, true, &args, None));
        }
    }
    (d, m)
}

/// Prints one table row: each side's median with its range, and the ratio of the medians.
fn row(name: &str, d: &[f64], m: &[f64], better: Better, show: impl Fn(f64) -> String) {
    let (dm, mm) = (median(d), median(m));
    let cell = |figures: &[f64], mid: f64| {
        let lo = figures.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = figures.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{} [{} – {}]", show(mid), show(lo), show(hi))
    };
    let ratio = match better {
        Better::Lower => format!("{:.2} (may/dugong)", mm / dm),
        Better::Higher => format!("{:.2} (dugong/may)", dm / mm),
    };
    println!("| {name} | {} | {} | {ratio} |", cell(d, dm), cell(m, mm));
    // Rows appear as they are measured, also when stdout is a pipe.
    let _ = std::io::stdout().flush();
}

fn median(figures: &[f64]) -> f64 {
    let mut sorted = figures.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// `12345.6` as `12,346`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A command running this binary with `args`, on `cpu` when given (and taskset exists).
fn self_command(plan: &Plan, cpu: Option<&str>, args: &[&str]) -> Command {
    match (&plan.taskset, cpu) {
        (Some(taskset), Some(cpu)) => {
            let mut command = Command::new(taskset);
            command.args(["-c", cpu]).arg(&plan.exe).args(args);
            command
        }
        _ => {
            let mut command = Command::new(&plan.exe);
            command.args(args);
            command
        }
    }
}

/// A program a measurement child runs under, writing its counts to a file.
#[derive(Clone, Copy)]
enum Counter<'a> {
    /// `strace -f -c`: every call by name, but it stops the child at each call.
    Strace(&'a Path),
    /// `perf stat -e raw_syscalls:sys_enter`: one total, counted in the kernel without
    /// stopping the child.
    Perf(&'a Path),
}

/// Runs one measurement child (`--child ARGS`), pinned to CPU 1 when `pin`, under `counter`
/// when given (with the file it writes), and returns the figure it printed (its `result`
/// line).
fn measure(plan: &Plan, pin: bool, args: &[&str], counter: Option<(Counter<'_>, &Path)>) -> f64 {
    let mut child_args = vec!["--child"];
    child_args.extend_from_slice(args);
    let inner = self_command(plan, pin.then_some("1"), &child_args);
    let mut command = match counter {
        // The counter itself is not pinned: it would take turns with the client on CPU 1.
        Some((Counter::Strace(strace), out)) => {
            let mut command = Command::new(strace);
            command.args(["-f", "-c", "-o"]).arg(out);
            command.arg(inner.get_program()).args(inner.get_args());
            command
        }
        Some((Counter::Perf(perf), out)) => {
            let mut command = Command::new(perf);
            command.args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "-o"]);
            command.arg(out).arg("--");
            command.arg(inner.get_program()).args(inner.get_args());
            command
        }
        None => inner,
    };
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    let what = args.join(" ");
    let mut child = Reaped(command.spawn().expect("start a measurement child"));
    let mut stdout = child.0.stdout.take().expect("the child's stdout");
    // Read on a thread so the wait below can give up at the deadline.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + CHILD_DEADLINE;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for a measurement child") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "child `{what}` did not finish within {CHILD_DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = reader.join().expect("the reader thread");
    assert!(status.success(), "child `{what}` failed ({status}): {text}");
    text.lines()
        .find_map(|l| l.strip_prefix("result "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("child `{what}` printed no result: {text:?}"))
}

/// A child process that is killed (if still running) and reaped when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server in a child process, on 127.0.0.1:`port`; killed and reaped when dropped.
struct Server {
    _process: Reaped,
    port: u16,
    name: String,
    /// nginx's config and logs, removed after the process is gone (field order).
    _dir: Option<tempfile::TempDir>,
}

/// nginx if found, else dugong-harness's `LoopbackServer` in a child process.
fn http_server(plan: &Plan) -> Server {
    let forced = std::env::var_os("DUGONG_NGINX").map(|path| {
        let path = PathBuf::from(path);
        let named_by = format!("DUGONG_NGINX={}", path.display());
        (path, named_by)
    });
    match find_binary(forced, "nginx", "/usr/sbin/nginx") {
        Ok(binary) => nginx(plan, &binary),
        Err(why) => {
            println!("nginx not found ({why}): falling back to LoopbackServer.");
            self_server(plan, "loopback")
        }
    }
}

/// This binary as a server child (`--serve ROLE`) on CPU 0: it prints its port, and stops
/// when its stdin closes (so also when this process dies) or when killed.
fn self_server(plan: &Plan, role: &str) -> Server {
    let mut command = self_command(plan, Some("0"), &["--serve", role]);
    command.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut process = Reaped(command.spawn().expect("start a server child"));
    let mut port = String::new();
    BufReader::new(process.0.stdout.take().expect("the server's stdout"))
        .read_line(&mut port)
        .expect("the server's port");
    let port = port
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the {role} server printed no port: {port:?}"));
    Server {
        _process: process,
        port,
        name: format!("dugong-harness LoopbackServer ({role}, child process)"),
        _dir: None,
    }
}

/// nginx from a config in a temp dir on a free loopback port (retrying when another process
/// takes the port first), pinned to CPU 0 when taskset exists.
fn nginx(plan: &Plan, binary: &Path) -> Server {
    let dir = tempfile::Builder::new()
        .prefix("dugong-vs-may-")
        .tempdir()
        .expect("a temp dir for nginx");
    let root = dir.path();
    for sub in ["logs", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).expect("nginx's directories");
    }
    let body = String::from_utf8(expected_body()).expect("the pattern is ASCII letters");
    let mut last_error = String::new();
    for _ in 0..5 {
        let port = free_port().expect("a free port");
        std::fs::write(root.join("nginx.conf"), nginx_config(root, port, &body))
            .expect("write nginx.conf");
        let mut command = match &plan.taskset {
            Some(taskset) => {
                let mut command = Command::new(taskset);
                command.args(["-c", "0"]).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .arg("-e")
            .arg(root.join("logs/error.log"))
            .arg("-p")
            .arg(root)
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut process = Reaped(command.spawn().expect("start nginx"));
        match wait_listening(&mut process.0, port, "nginx") {
            Ok(()) => {
                return Server {
                    _process: process,
                    port,
                    name: format!("nginx ({}, one worker process)", binary.display()),
                    _dir: Some(dir),
                }
            }
            Err(why) => {
                drop(process);
                let log = std::fs::read_to_string(root.join("logs/error.log")).unwrap_or_default();
                last_error = format!("{why}\nerror.log: {log}");
                if !last_error.contains("Address already in use") {
                    break;
                }
            }
        }
    }
    panic!("nginx did not start: {last_error}");
}

/// One worker process, no logging, keep-alive without limit, and the 100 bytes answered
/// from the config (no file system work per request).
fn nginx_config(root: &Path, port: u16, body: &str) -> String {
    let r = root.display();
    format!(
        r#"# generated by benches/vs_may.rs
daemon off;
master_process off;
worker_processes 1;
pid {r}/logs/nginx.pid;
error_log {r}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path {r}/tmp/body;
    proxy_temp_path {r}/tmp/proxy;
    fastcgi_temp_path {r}/tmp/fcgi;
    uwsgi_temp_path {r}/tmp/uwsgi;
    scgi_temp_path {r}/tmp/scgi;
    types {{ }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        location = {TARGET} {{ return 200 "{body}"; }}
        location / {{ return 404; }}
    }}
}}
"#
    )
}

/// The `syscalls` row: the one-worker `gets` child of each library under `strace -f -c`,
/// with `per` requests per connection and with none; the difference per request.
fn syscalls(plan: &Plan, port: u16, per: usize) {
    let Ok(strace) = find_binary(None, "strace", "/usr/bin/strace") else {
        println!("| system calls per request | (skipped: no strace on PATH) | | |");
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir for strace's output");
    let requests = (CONNECTIONS * per) as f64;
    // The calls of one traced run, by name (with `total`).
    let traced = |lib: Lib, per: usize| {
        let out = dir.path().join(format!("{}-{per}", lib.name()));
        counted_gets(plan, lib, port, per, (Counter::Strace(&strace), &out));
        strace_counts(&std::fs::read_to_string(&out).expect("strace's summary"))
    };
    let mut cells = Vec::new();
    for lib in [Lib::Dugong, Lib::May] {
        let with = traced(lib, per);
        let without = traced(lib, 0);
        // What the requests added, call by call.
        let mut added: Vec<(&str, f64)> = with
            .iter()
            .map(|(name, &calls)| {
                let before = without.get(name).copied().unwrap_or(0);
                (
                    name.as_str(),
                    calls.saturating_sub(before) as f64 / requests,
                )
            })
            .collect();
        added.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total = added.iter().find(|(name, _)| *name == "total").map(|a| a.1);
        let top = added
            .iter()
            .filter(|&&(name, per_request)| name != "total" && per_request >= 0.005)
            .take(4)
            .map(|(name, per_request)| format!("{name} {per_request:.2}"))
            .collect::<Vec<_>>()
            .join(", ");
        cells.push((total.expect("a total in strace's summary"), top));
    }
    let ((d, d_top), (m, m_top)) = (&cells[0], &cells[1]);
    println!(
        "| system calls per request, 1 worker ({CONNECTIONS} x {per} GETs under strace -f -c, \
         less a run without requests) | {d:.2} ({d_top}) | {m:.2} ({m_top}) | {:.2} \
         (may/dugong) |",
        m / d
    );
}

/// The `syscalls` row again, counted by `perf stat` instead: strace stops the client at each
/// call, slowing it several times over, which changes what it does (dugong's green
/// connections skip their stale-connection probe only within a millisecond of the last
/// poll). Skipped, with a note, without a `perf` that counts the tracepoint.
fn perf_syscalls(plan: &Plan, port: u16, per: usize) {
    let Ok(perf) = find_binary(None, "perf", "/usr/bin/perf") else {
        println!("| system calls per request, counted by perf | (skipped: no perf on PATH) | | |");
        return;
    };
    let works = Command::new(&perf)
        .args(["stat", "-e", "raw_syscalls:sys_enter", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        println!(
            "| system calls per request, counted by perf | (skipped: perf cannot count \
             raw_syscalls:sys_enter here) | | |"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir for perf's output");
    let requests = (CONNECTIONS * per) as f64;
    let counted = |lib: Lib, per: usize| {
        let out = dir.path().join(format!("perf-{}-{per}", lib.name()));
        counted_gets(plan, lib, port, per, (Counter::Perf(&perf), &out));
        perf_count(&std::fs::read_to_string(&out).expect("perf's output"))
    };
    let [d, m] = [Lib::Dugong, Lib::May]
        .map(|lib| counted(lib, per).saturating_sub(counted(lib, 0)) as f64 / requests);
    println!(
        "| system calls per request, 1 worker ({CONNECTIONS} x {per} GETs, perf stat -e \
         raw_syscalls:sys_enter, less a run without requests) | {d:.2} | {m:.2} | {:.2} \
         (may/dugong) |",
        m / d
    );
}

/// The one-worker `gets` child of `lib`, `per` requests per connection, under `counter`
/// (which writes its counts to the path given with it).
fn counted_gets(plan: &Plan, lib: Lib, port: u16, per: usize, counter: (Counter<'_>, &Path)) {
    let (per, port) = (per.to_string(), port.to_string());
    let args = [
        lib.name(),
        "gets",
        "--workers",
        "1",
        "--per",
        &per,
        "--port",
        &port,
    ];
    measure(plan, true, &args, Some(counter));
}

/// The count in `perf stat -x,` output: the first field of the event's line.
fn perf_count(output: &str) -> u64 {
    output
        .lines()
        .find(|line| line.contains("raw_syscalls:sys_enter"))
        .and_then(|line| line.split(',').next()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in perf's output: {output:?}"))
}

/// The calls counted in an `strace -c` summary, by system call name, and its `total`.
fn strace_counts(summary: &str) -> std::collections::HashMap<String, u64> {
    // Rows: `% time  seconds  usecs/call  calls  [errors]  syscall`; the last is `total`.
    summary
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let calls = fields.get(3)?.parse().ok()?;
            Some((fields.last()?.to_string(), calls))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Server children.
// ---------------------------------------------------------------------------------------

/// `--serve loopback` (the HTTP server when there is no nginx) or `--serve idle` (accepts
/// connections and holds them, never reading). Prints the port, runs until stdin closes.
fn serve(role: &str) {
    let stop = stdin_closed();
    match role {
        "loopback" => {
            let server = dugong_harness::LoopbackServer::start();
            announce(server.port());
            let _ = stop.recv();
        }
        "idle" => hold_idle_connections(&stop),
        other => panic!("unknown server role {other:?}"),
    }
}

fn announce(port: u16) {
    println!("{port}");
    std::io::stdout().flush().expect("flush the port");
}

// ---------------------------------------------------------------------------------------
// Measurement children: `--child LIB MEASUREMENT [--workers N] [--tasks N] [--rounds N]
// [--per N] [--port P]`. Each prints `result FIGURE`.
// ---------------------------------------------------------------------------------------

fn child(args: &[String]) {
    let lib = match args.first().map(String::as_str) {
        Some("dugong") => Lib::Dugong,
        Some("may") => Lib::May,
        other => panic!("--child wants dugong or may, not {other:?}"),
    };
    let measurement = args.get(1).map_or("", String::as_str);
    let workers = number(args, "--workers", 1);
    let port = || u16::try_from(number(args, "--port", 0)).expect("--port wants a port");
    if lib == Lib::May {
        // Global, and read once when may's scheduler starts (at the first spawn).
        may::config().set_workers(workers);
    }
    let figure = match (lib, measurement) {
        (Lib::Dugong, "spawn") => dugong_spawn(number(args, "--tasks", 100_000)),
        (Lib::May, "spawn") => may_spawn(number(args, "--tasks", 100_000)),
        (Lib::Dugong, "switch") => yield_switch_ns(number(args, "--rounds", 200_000)),
        (Lib::May, "switch") => may_switch(number(args, "--rounds", 200_000)),
        (Lib::Dugong, "gets") => dugong_gets(port(), workers, number(args, "--per", 2_000)),
        (Lib::May, "gets") => may_gets(port(), number(args, "--per", 2_000)),
        (Lib::Dugong, "idle") => dugong_idle(port(), number(args, "--tasks", 10_000)),
        (Lib::May, "idle") => may_idle(port(), number(args, "--tasks", 10_000)),
        (_, other) => panic!("unknown measurement {other:?}"),
    };
    println!("result {figure}");
}

fn peak_rss_kib() -> u64 {
    dugong_harness::peak_rss_kib().expect("VmHWM from /proc/self/status")
}

/// ns per spawn + run + join, second pass.
fn dugong_spawn(tasks: usize) -> f64 {
    let elapsed = green::run(move |task| {
        let pass = |task: &Task<'_>| {
            let start = Instant::now();
            for _ in 0..tasks / WAVE {
                let handles: Vec<_> = (0..WAVE).map(|i| task.spawn(move |_| i)).collect();
                for handle in handles {
                    task.join(handle).expect("a trivial task");
                }
            }
            start.elapsed()
        };
        pass(task); // warms the stack pool
        pass(task)
    })
    .expect("the main task");
    elapsed.as_secs_f64() * 1e9 / tasks as f64
}

/// As [`dugong_spawn`], from inside a coroutine (so spawns go to the worker's own queue).
fn may_spawn(tasks: usize) -> f64 {
    let elapsed = may::go!(move || {
        let pass = || {
            let start = Instant::now();
            for _ in 0..tasks / WAVE {
                let handles: Vec<_> = (0..WAVE).map(|i| may::go!(move || i)).collect();
                for handle in handles {
                    handle.join().expect("a trivial coroutine");
                }
            }
            start.elapsed()
        };
        pass(); // warms the coroutine pool
        pass()
    })
    .join()
    .expect("the main coroutine");
    elapsed.as_secs_f64() * 1e9 / tasks as f64
}

fn may_switch(rounds: usize) -> f64 {
    let elapsed = may::go!(move || {
        let other = may::go!(move || {
            for _ in 0..rounds {
                may::coroutine::yield_now();
            }
        });
        let start = Instant::now();
        for _ in 0..rounds {
            may::coroutine::yield_now();
        }
        other.join().expect("the other coroutine");
        start.elapsed()
    })
    .join()
    .expect("the main coroutine");
    elapsed.as_secs_f64() * 1e9 / (2 * rounds) as f64
}

/// Requests per second: [`CONNECTIONS`] tasks, each making `per` GETs on its connection.
fn dugong_gets(port: u16, workers: usize, per: usize) -> f64 {
    let start = Instant::now();
    if workers == 1 {
        green::run(move |task| {
            let handles: Vec<_> = (0..CONNECTIONS)
                .map(|_| task.spawn(move |task| dugong_connection(task, port, per)))
                .collect();
            for handle in handles {
                task.join(handle).expect("a GET task");
            }
        })
        .expect("the main task");
    } else {
        let pool = green::Pool::new(workers).expect("a green pool");
        let handles: Vec<_> = (0..CONNECTIONS)
            .map(|_| pool.spawn(move |task| dugong_connection(task, port, per)))
            .collect();
        for handle in handles {
            handle.join().expect("a GET task");
        }
    }
    (CONNECTIONS * per) as f64 / start.elapsed().as_secs_f64()
}

/// `per` GETs, one at a time, each answer checked.
fn dugong_connection(task: &Task<'_>, port: u16, per: usize) {
    let expected = expected_body();
    let mut headers = HeaderMap::new();
    headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
    let conn = task.connect("127.0.0.1", port).expect("a connection");
    // dugong dials at the first request; dial now, as may's `connect` does, so both time
    // (and trace) the same work.
    conn.connect().expect("connect");
    for _ in 0..per {
        conn.send_request(&Method::GET, TARGET, &headers, Body::Empty)
            .expect("send a GET");
        let response = conn.read_response().expect("a response head");
        assert_eq!(response.status, StatusCode::OK);
        let body = conn.read_all().expect("a response body");
        assert!(body == expected, "a wrong body: {body:?}");
    }
}

fn may_gets(port: u16, per: usize) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..CONNECTIONS)
        .map(|_| may::go!(move || may_connection(port, per)))
        .collect();
    for handle in handles {
        handle.join().expect("a GET coroutine");
    }
    (CONNECTIONS * per) as f64 / start.elapsed().as_secs_f64()
}

/// `per` GETs, one at a time, each answer checked: what a may user would write with
/// `httparse` for a fixed-length answer.
fn may_connection(port: u16, per: usize) {
    let expected = expected_body();
    let request = format!(
        "GET {TARGET} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: keep-alive\r\n\r\n"
    );
    let mut stream = may::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
    let mut buf = vec![0u8; 4096];
    // Bytes in `buf` not yet consumed (the start of a next response, were there one).
    let mut filled = 0;
    for _ in 0..per {
        stream.write_all(request.as_bytes()).expect("send a GET");
        let (body, end) = loop {
            if filled > 0 {
                if let Some((body, end)) = complete_response(&buf[..filled]) {
                    break (body, end);
                }
            }
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let n = stream.read(&mut buf[filled..]).expect("read a response");
            assert!(n > 0, "the server closed the connection");
            filled += n;
        };
        assert!(buf[body..end] == expected[..], "a wrong body");
        buf.copy_within(end..filled, 0);
        filled -= end;
    }
}

/// Where the body of the response at the start of `data` starts and ends, once the whole
/// response is there. Panics on anything but a `200` with a `Content-Length`.
fn complete_response(data: &[u8]) -> Option<(usize, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(data).expect("a valid response head") {
        httparse::Status::Complete(head) => head,
        httparse::Status::Partial => return None,
    };
    assert_eq!(response.code, Some(200), "the response status");
    let length: usize = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
        .expect("a Content-Length");
    (data.len() >= head + length).then_some((head, head + length))
}

/// KiB of peak RSS growth per task: `tasks` tasks, each connected, its request sent, and
/// waiting for an answer that never comes.
fn dugong_idle(port: u16, tasks: usize) -> f64 {
    let before = peak_rss_kib();
    let mut runtime = green::Runtime::new().expect("a runtime");
    let waiting = Rc::new(std::cell::Cell::new(0usize));
    for _ in 0..tasks {
        let waiting = Rc::clone(&waiting);
        drop(runtime.spawn(move |task| {
            let conn = task.connect("127.0.0.1", port).expect("connect");
            conn.send_request(&Method::GET, "/", &HeaderMap::new(), Body::Empty)
                .expect("send");
            waiting.set(waiting.get() + 1);
            // Ends with Cancelled when the runtime is dropped (or with a timeout at 30 s).
            let _ = conn.read_response();
        }));
    }
    let all_in = Rc::clone(&waiting);
    let probe = runtime.spawn(move |task| {
        // Up to 30 s for every task to be in; then a moment for the last ones to park.
        for _ in 0..3000 {
            if all_in.get() == tasks {
                break;
            }
            task.sleep(Duration::from_millis(10));
        }
        task.sleep(Duration::from_millis(100));
    });
    runtime.block_on(probe).expect("the probe task");
    let in_ = waiting.get();
    assert_eq!(
        in_, tasks,
        "only {in_} of {tasks} tasks got their connection"
    );
    (peak_rss_kib() - before) as f64 / tasks as f64
}

fn may_idle(port: u16, tasks: usize) -> f64 {
    // Before may's scheduler starts (at the first spawn): its pool of 1,000 ready
    // coroutines, with their stacks, is memory the first 1,000 tasks use.
    let before = peak_rss_kib();
    let waiting = Arc::new(AtomicUsize::new(0));
    for _ in 0..tasks {
        let waiting = Arc::clone(&waiting);
        // Detached: the coroutines stay parked in their reads until this process exits.
        drop(may::go!(move || {
            let mut stream = may::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            stream
                .set_read_timeout(Some(IO_TIMEOUT))
                .expect("read timeout");
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .expect("send");
            waiting.fetch_add(1, Ordering::Relaxed);
            // The read buffer `may_connection` has, as dugong's connection has its own.
            let mut buf = vec![0u8; 4096];
            let _ = stream.read(&mut buf);
        }));
    }
    for _ in 0..3000 {
        if waiting.load(Ordering::Relaxed) == tasks {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let in_ = waiting.load(Ordering::Relaxed);
    assert_eq!(
        in_, tasks,
        "only {in_} of {tasks} coroutines got their connection"
    );
    (peak_rss_kib() - before) as f64 / tasks as f64
}

// The task switch measured as benches/green.rs measures it.
include!("common/switch.rs");

// The idle connections' server child, as benches/green.rs runs it.
include!("common/idle_server.rs");

// find_binary, free_port, wait_listening: shared with the tests' daemon launchers.
include!("../tests/support/daemon.rs");
