//! Real soak (issue 14, part 4) against a local nginx with `keepalive_requests 100`, which
//! closes every connection after its 100th response.
//!
//! Phase 1: N GETs through cofunctions on one connection, `--depth` in flight: about N/100
//! reconnects, each resending exactly the requests the close listed unanswered. Every request
//! must be answered exactly once with its own URI as the body; RSS and open descriptors must
//! stay flat after warm-up (sampled every 100,000 answers, or every tenth of N).
//!
//! Phase 2: `--tasks` green tasks on one thread, each with its own connection doing
//! `--per-task` requests through cofunctions (`--large-percent` of them 256 KiB GETs,
//! `--post-percent` POSTs with a 128 KiB body, the rest small GETs), `--cancel-percent` of the
//! tasks cancelled one by one with `Task::cancel` at seeded random points (see
//! `green_phase.rs` for how). Every other task must get all its responses exactly once and
//! right; a cancelled one a correct prefix of them, then `Error::Cancelled`; nginx must have
//! served at least every answered request and at most those plus the ones cancelled tasks
//! left in flight; no descriptor may be left over.
//!
//! ```text
//! cargo run --release --example soak              # smoke: 20,000 GETs, 200 tasks
//! cargo run --release --example soak -- --soak    # 1,000,000 GETs, 10,000 tasks x 100
//! ```
//!
//! Options: `--requests N --depth D --tasks T --per-task K --task-depth D2 --cancel-percent P
//! --large-percent L --post-percent Q --seed S --wave W --nginx PATH`. Exit status 0 when every check passed, 1 when one failed,
//! 2 when the soak could not run (no nginx, say).

mod green_phase;
mod nginx;
mod pipeliner;
mod probe;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use dugong::HttpConnection;

use nginx::{Counters, Nginx};
use pipeliner::Pipeliner;

/// RSS growth allowed after warm-up in phase 1. The process holds about 6 MiB, and every
/// per-request structure is allocated before the first sample (the ledger with every page
/// written, buffers at their working size), so a healthy run varies by allocator noise only
/// (tens of KiB). 1 MiB still shows any leak of a byte or more per request over the 900,000
/// requests after warm-up, or of about 100 bytes per reconnect, while leaving room for the
/// allocator; a relative bound (like 25%) would be looser than that at this size.
const RSS_GROWTH_BOUND_KIB: u64 = 1024;

/// Descriptors allowed besides the soak's own: one socket per task, and a few for the
/// runtime's poller, the standard streams and the nginx child's pipes.
const FD_RESERVE: u64 = 64;

/// Real soak against nginx with `keepalive_requests 100` (issue 14, part 4)
#[derive(Debug, Parser)]
#[command(name = "soak")]
struct Args {
    /// The full soak: 1,000,000 GETs and 10,000 tasks (default: a smoke run of 20,000 and 200)
    #[arg(long)]
    soak: bool,
    /// GETs in phase 1
    #[arg(long)]
    requests: Option<u64>,
    /// Requests in flight in phase 1
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    depth: u32,
    /// Green tasks in phase 2
    #[arg(long)]
    tasks: Option<usize>,
    /// GETs per green task
    #[arg(long, default_value_t = 100)]
    per_task: u64,
    /// Requests in flight per green task
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    task_depth: u32,
    /// Share of green tasks cancelled, in percent
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=100))]
    cancel_percent: u32,
    /// Share of phase 2's requests that are GETs of a 256 KiB static file, in percent
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=100))]
    large_percent: u32,
    /// Share of phase 2's requests that are POSTs with a 128 KiB body, in percent
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=100))]
    post_percent: u32,
    /// Seed for choosing the cancelled tasks, their points and the request mix
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Green tasks alive at once at most (default: all, if descriptors allow)
    #[arg(long)]
    wave: Option<usize>,
    /// The nginx binary (default: `nginx` on PATH, else /usr/sbin/nginx)
    #[arg(long)]
    nginx: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let requests = args
        .requests
        .unwrap_or(if args.soak { 1_000_000 } else { 20_000 });
    let tasks = args.tasks.unwrap_or(if args.soak { 10_000 } else { 200 });
    let fd_limit = match probe::raise_fd_limit() {
        Ok(limit) => limit,
        Err(e) => return setup_failed(&format!("cannot read or raise RLIMIT_NOFILE: {e}")),
    };
    let nginx = match nginx::find(args.nginx.as_deref()).and_then(|b| Nginx::start(&b)) {
        Ok(nginx) => nginx,
        Err(e) => return setup_failed(&e),
    };
    println!(
        "soak: {} mode, nginx on 127.0.0.1:{} (keepalive_requests 100), open-file limit {fd_limit}",
        if args.soak { "full" } else { "smoke" },
        nginx.port()
    );
    let mut failures = Vec::new();
    let before = counters(&nginx, &mut failures);

    let phase1 = cofun_phase(&nginx, requests, args.depth as usize, before, &mut failures);

    let wave = wave_size(&args, tasks, fd_limit);
    let plan = green_phase::Plan {
        port: nginx.port(),
        tasks,
        per_task: args.per_task,
        depth: args.task_depth as usize,
        cancel_percent: args.cancel_percent,
        seed: args.seed,
        wave,
        mix: pipeliner::Mix {
            large_percent: args.large_percent,
            post_percent: args.post_percent,
            seed: args.seed,
        },
    };
    green(&nginx, plan, phase1, &mut failures);

    let log = nginx.error_log();
    if !log.trim().is_empty() {
        failures.push(format!("nginx logged errors:\n{log}"));
    }
    if failures.is_empty() {
        println!("\nverdict: PASS");
        ExitCode::SUCCESS
    } else {
        println!("\nverdict: FAIL");
        for f in &failures {
            println!("  - {f}");
        }
        ExitCode::FAILURE
    }
}

fn setup_failed(why: &str) -> ExitCode {
    eprintln!("soak: cannot run: {why}");
    ExitCode::from(2)
}

fn counters(nginx: &Nginx, failures: &mut Vec<String>) -> Counters {
    nginx.counters().unwrap_or_else(|e| {
        failures.push(format!("nginx counters: {e}"));
        Counters::default()
    })
}

/// Phase 1; returns nginx's counters after it.
fn cofun_phase(
    nginx: &Nginx,
    requests: u64,
    depth: usize,
    before: Counters,
    failures: &mut Vec<String>,
) -> Counters {
    println!("\n== phase 1: {requests} GETs through cofunctions, depth {depth}, one connection");
    let every = if requests >= 1_000_000 {
        100_000
    } else {
        requests.div_ceil(10)
    };
    let conn = match HttpConnection::new("127.0.0.1", nginx.port()) {
        Ok(conn) => conn,
        Err(e) => {
            failures.push(format!("phase 1: {e}"));
            return before;
        }
    };
    let mut pipeliner = Pipeliner::new(&conn, depth, 0, requests).sample_every(every);
    let started = Instant::now();
    let result = pipeliner.run();
    let secs = started.elapsed().as_secs_f64();
    let (tally, curve) = (
        pipeliner.tally.clone(),
        std::mem::take(&mut pipeliner.curve),
    );
    drop(conn);
    let after = counters(nginx, failures);
    // The status queries are one connection and one request each.
    let accepts = after.accepts.saturating_sub(before.accepts + 1);
    let served = after.requests.saturating_sub(before.requests + 1);

    curve.print("phase 1", "answered");
    println!(
        "phase 1: {} answered of {requests} in {secs:.1} s ({:.0}/s); {} sends, {} resends of \
         {} listed unanswered in {} lists, {} refused sends",
        tally.answered,
        tally.answered as f64 / secs,
        tally.sends,
        tally.resends,
        tally.listed,
        tally.reports,
        tally.refused_sends
    );
    println!(
        "phase 1: {} closes announced; nginx accepted {accepts} connections \
         ({} reconnects) and served {served} requests",
        tally.closes,
        accepts.saturating_sub(1)
    );
    if let Err(e) = result {
        failures.push(format!("phase 1 stopped: {e}"));
    }
    if tally.anomaly_count > 0 || tally.answered != requests {
        failures.push(format!(
            "phase 1: {} answered of {requests}, {} anomalies: {:#?}",
            tally.answered, tally.anomaly_count, tally.anomalies
        ));
    }
    if tally.resends != tally.listed {
        failures.push(format!(
            "phase 1: {} requests listed unanswered but {} resent",
            tally.listed, tally.resends
        ));
    }
    if served != requests {
        failures.push(format!(
            "phase 1: nginx served {served} requests for {requests} GETs (one served twice, or never)"
        ));
    }
    match curve.after_warm_up() {
        Some(range) => {
            let growth = range.rss_kib.1 - range.rss_kib.0;
            println!(
                "phase 1 after warm-up: rss min {} KiB max {} KiB (spread {growth} KiB, bound {RSS_GROWTH_BOUND_KIB}); fds min {} max {}",
                range.rss_kib.0, range.rss_kib.1, range.fds.0, range.fds.1
            );
            if growth > RSS_GROWTH_BOUND_KIB {
                failures.push(format!(
                    "phase 1: RSS spread {growth} KiB after warm-up, more than {RSS_GROWTH_BOUND_KIB} KiB"
                ));
            }
            // One connection, open or between a close and the reconnect when sampled.
            if range.fds.1 > range.fds.0 + 1 {
                failures.push(format!(
                    "phase 1: open fds grew from {} to {} after warm-up",
                    range.fds.0, range.fds.1
                ));
            }
        }
        None => failures.push("phase 1: no samples".into()),
    }
    after
}

/// Green tasks alive at once: all of them, unless the descriptor limits (ours, nginx's
/// inherited copy, and its `worker_connections`) say otherwise.
fn wave_size(args: &Args, tasks: usize, fd_limit: u64) -> usize {
    let fit = fd_limit
        .min(nginx::WORKER_CONNECTIONS)
        .saturating_sub(FD_RESERVE) as usize;
    let fit = fit.max(1);
    args.wave.unwrap_or(tasks).min(fit).max(1)
}

/// Phase 2.
fn green(nginx: &Nginx, plan: green_phase::Plan, before: Counters, failures: &mut Vec<String>) {
    let waves = plan.tasks.div_ceil(plan.wave.max(1));
    println!(
        "\n== phase 2: {} green tasks x {} requests (depth {}; {}% 256 KiB GETs, {}% 128 KiB POSTs), \
         {}% cancelled (seed {}), {} at once ({waves} wave{})",
        plan.tasks,
        plan.per_task,
        plan.depth,
        plan.mix.large_percent,
        plan.mix.post_percent,
        plan.cancel_percent,
        plan.seed,
        plan.wave,
        if waves == 1 { "" } else { "s" }
    );
    if plan.wave < plan.tasks {
        println!(
            "phase 2: not all {} tasks at once: descriptors allow {} (ulimit -n, nginx worker_connections {})",
            plan.tasks,
            plan.wave,
            nginx::WORKER_CONNECTIONS
        );
    }
    let fds_before = probe::open_fds();
    let rss_before = probe::rss_kib();
    let report = green_phase::run(plan);
    let fds_after = probe::open_fds();
    let after = counters(nginx, failures);
    let accepts = after.accepts.saturating_sub(before.accepts + 1);
    let served = after.requests.saturating_sub(before.requests + 1);

    report.curve.print("phase 2", "tasks");
    let t = &report.tally;
    let l = &report.landings;
    println!(
        "phase 2: {} tasks in {:.1} s: {} of {} uncancelled tasks complete; {} doomed, {} of them \
         ended as they must",
        plan.tasks,
        report.duration.as_secs_f64(),
        report.survivors_complete,
        report.survivors,
        report.doomed,
        report.doomed_correct,
    );
    println!(
        "phase 2: {} cancelled: {} before they started, {} while sending (send_request_cofun or \
         the cofunction's own wait), {} waiting for a head ({} of them in a cofunction's loop \
         body), {} in a body ({} in a loop body; {} in a 256 KiB body); {} doomed tasks finished \
         before their cancel took effect",
        report.cancelled,
        l.before_start,
        l.sending,
        l.head + l.head_in_cofun,
        l.head_in_cofun,
        l.body + l.body_in_cofun,
        l.body_in_cofun,
        l.large_body,
        l.missed
    );
    println!(
        "phase 2: cancelled tasks read {} complete responses after their cancel was issued \
         (at most {} by one task: data already there, the cancel ends the next wait)",
        report.answered_after_cancel.0, report.answered_after_cancel.1
    );
    println!(
        "phase 2: {} answered, {} sends, {} resends of {} listed unanswered in {} lists, {} \
         closes announced, {} left in flight by cancelled tasks; nginx accepted {accepts} \
         connections and served {served} requests",
        t.answered, t.sends, t.resends, t.listed, t.reports, t.closes, report.unresolved
    );
    if let Some(range) = report.curve.range() {
        println!(
            "phase 2 over the tenths: rss min {} KiB max {} KiB, fds min {} max {} \
             (before the phase: rss {rss_before} KiB, fds {fds_before})",
            range.rss_kib.0, range.rss_kib.1, range.fds.0, range.fds.1
        );
    }
    report
        .after_waves
        .print("phase 2 after the wave's runtime dropped:", "tasks");
    // Every answered request was served. A request a cancelled task left in flight may or
    // may not have reached nginx (its bytes queued, partly written, or read but the answer
    // lost); requests listed unanswered were not acted on (they followed nginx's 100th
    // response), and phase 1 checks that exactly.
    let most = t.answered + report.unresolved;
    if served < t.answered || served > most {
        failures.push(format!(
            "phase 2: nginx served {served} requests, expected from {} (answered) to {most} \
             (plus {} left in flight by cancelled tasks)",
            t.answered, report.unresolved
        ));
    }
    if t.resends != t.listed {
        failures.push(format!(
            "phase 2: {} requests listed unanswered but {} resent",
            t.listed, t.resends
        ));
    }
    if t.anomaly_count > 0 {
        failures.push(format!(
            "phase 2: {} anomalies: {:#?}",
            t.anomaly_count, t.anomalies
        ));
    }
    if report.survivors_complete != report.survivors
        || report.doomed_correct != report.doomed
        || !report.problems.is_empty()
    {
        failures.push(format!("phase 2: problems: {:#?}", report.problems));
    }
    // With several waves, what each leaves behind must not add up (the first is warm-up).
    let several_waves = report.after_waves.samples.len() > 1;
    if let Some(range) = report.after_waves.after_warm_up().filter(|_| several_waves) {
        let growth = range.rss_kib.1 - range.rss_kib.0;
        println!(
            "phase 2 after warm-up wave: rss min {} KiB max {} KiB (spread {growth} KiB, bound {RSS_GROWTH_BOUND_KIB})",
            range.rss_kib.0, range.rss_kib.1
        );
        if growth > RSS_GROWTH_BOUND_KIB {
            failures.push(format!(
                "phase 2: RSS after the waves spread {growth} KiB after the first, more than {RSS_GROWTH_BOUND_KIB} KiB"
            ));
        }
    }
    // Every wave's sockets and poller are closed with its runtime.
    for s in &report.after_waves.samples {
        if s.fds > fds_before {
            failures.push(format!(
                "phase 2: {fds_before} fds open before, {} after the wave ending at task {}: leaked descriptors",
                s.fds, s.at
            ));
        }
    }
    if fds_after > fds_before {
        failures.push(format!(
            "phase 2: {fds_before} fds open before, {fds_after} after: leaked descriptors"
        ));
    }
}
