//! Syscalls per request, counted with `strace -f -c` on `examples/pipeline.rs` (5,000 GETs
//! over one connection to the loopback server of this test process), for blocking calls,
//! cofunctions and a green task at depth 1, 16 and 64.
//!
//! What is asserted is what the library achieves today, so a change that adds a syscall to
//! the hot path fails here:
//!
//! | depth | blocking / cofunction | green task |
//! |---|---|---|
//! | 1 | 3 in all: the stale-connection probe, `sendmsg`, and one `recvfrom` that waits | 3: `sendmsg`, one `epoll_wait` (edge-triggered, never re-armed) and `recvfrom`; no probe, as the poller vouches for the idle connection |
//! | 16, 64 | at most 0.25 `sendmsg` (coalesced writes) and 0.5 in all | the same |
//!
//! Needs `strace` on `PATH` (`.ci/run` installs it); without it the test says so and passes,
//! except under `CI`, where it fails.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use support::LoopbackServer;

const REQUESTS: u64 = 5_000;

/// The syscalls of one run of the pipeline example, by name.
fn count(port: u16, mode: &str, depth: u64) -> BTreeMap<String, u64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("strace.txt");
    let output = Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(&out)
        .arg(example())
        .args(["--port", &port.to_string(), "--target", "/bytes/100"])
        .args([
            "--requests",
            &REQUESTS.to_string(),
            "--depth",
            &depth.to_string(),
        ])
        .args(["--mode", mode])
        .output()
        .expect("strace runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{mode} depth {depth}: {:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.trim(),
        format!("requests={REQUESTS} bytes={}", REQUESTS * 100),
        "{mode} depth {depth}"
    );
    // Lines: % time, seconds, usecs/call, calls, [errors], syscall.
    let table = std::fs::read_to_string(&out).expect("strace output");
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let name = *fields.last()?;
            let calls = fields.get(3)?.parse().ok()?;
            (name != "total").then(|| (name.to_owned(), calls))
        })
        .collect()
}

/// The pipeline example, built for this test.
fn example() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", "pipeline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the pipeline example builds");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("debug").join("examples").join("pipeline")
}

/// Network and waiting syscalls per request.
fn per_request(counts: &BTreeMap<String, u64>, names: &[&str]) -> f64 {
    let calls: u64 = counts
        .iter()
        .filter(|(name, _)| names.iter().any(|n| name.starts_with(n)))
        .map(|(_, calls)| calls)
        .sum();
    calls as f64 / REQUESTS as f64
}

/// Every syscall a request's exchange can make: sends, receives, waits and their set-up.
const IO: &[&str] = &[
    "send",
    "recv",
    "read",
    "write",
    "poll",
    "epoll",
    "timerfd",
    "setsockopt",
];

#[test]
fn syscalls_per_request_stay_within_their_bounds() {
    if Command::new("strace").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "strace is not on PATH (.ci/run installs it)"
        );
        eprintln!("SKIPPED: syscall counts need strace on PATH");
        return;
    }
    let server = LoopbackServer::start();
    let mut report = String::new();
    for mode in ["blocking", "cofun", "green"] {
        for depth in [1, 16, 64] {
            let counts = count(server.port(), mode, depth);
            let sends = per_request(&counts, &["sendmsg", "sendto", "write"]);
            let all = per_request(&counts, IO);
            report.push_str(&format!(
                "{mode} depth {depth}: {sends:.3} sends, {all:.3} in all per request\n"
            ));
            let bound = if depth == 1 { 3.0 } else { 0.5 };
            if depth > 1 {
                assert!(
                    sends <= 0.25,
                    "{mode} depth {depth}: {sends} sends per request"
                );
            }
            assert!(
                all <= bound + 0.01,
                "{mode} depth {depth}: {all} syscalls per request: {counts:?}"
            );
        }
    }
    println!("{report}");
}
