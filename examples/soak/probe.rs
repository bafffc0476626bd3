//! What the soak watches in its own process: resident memory, open descriptors, and the
//! descriptor limit (raised to the hard limit at start, since the green phase holds one
//! socket per task).

use std::fs;

/// One point of a curve: after `at` requests (or tasks), the process's RSS and open fds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) at: u64,
    pub(crate) rss_kib: u64,
    pub(crate) fds: u64,
}

impl Sample {
    /// Measures now.
    pub(crate) fn take(at: u64) -> Sample {
        Sample {
            at,
            rss_kib: rss_kib(),
            fds: open_fds(),
        }
    }
}

/// Samples in the order taken.
#[derive(Debug, Default)]
pub(crate) struct Curve {
    pub(crate) samples: Vec<Sample>,
}

/// Smallest and largest RSS and fd count over some samples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub(crate) rss_kib: (u64, u64),
    pub(crate) fds: (u64, u64),
}

impl Curve {
    pub(crate) fn push(&mut self, sample: Sample) {
        self.samples.push(sample);
    }

    /// The range over all samples.
    pub(crate) fn range(&self) -> Option<Range> {
        range_of(&self.samples)
    }

    /// The range over the samples after the first (the warm-up), or over all of them when
    /// there is only one.
    pub(crate) fn after_warm_up(&self) -> Option<Range> {
        self.samples
            .get(1..)
            .and_then(range_of)
            .or_else(|| self.range())
    }

    /// Prints one line per sample, `what` naming the unit of `at`.
    pub(crate) fn print(&self, prefix: &str, what: &str) {
        for s in &self.samples {
            println!(
                "{prefix}  {what} {:>9}  rss {:>7} KiB  fds {:>5}",
                s.at, s.rss_kib, s.fds
            );
        }
    }
}

fn range_of(samples: &[Sample]) -> Option<Range> {
    let span = |f: fn(&Sample) -> u64| {
        let values = samples.iter().map(f);
        Some((values.clone().min()?, values.max()?))
    };
    Some(Range {
        rss_kib: span(|s| s.rss_kib)?,
        fds: span(|s| s.fds)?,
    })
}

/// The process's resident set (Linux `VmRSS`) in KiB, or 0 where unknown.
pub(crate) fn rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Open descriptors of the process (entries of `/proc/self/fd`, less the one reading it).
pub(crate) fn open_fds() -> u64 {
    fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count().saturating_sub(1) as u64)
}

/// Raises the soft limit on open descriptors to the hard limit and returns the new soft
/// limit. nginx, started afterwards, inherits it too.
#[allow(unsafe_code)] // getrlimit/setrlimit have no safe wrapper among the dependencies
pub(crate) fn raise_fd_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `rlimit` for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid `rlimit` read by the call only.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // `rlim_t` is `u64` on 64-bit Linux, narrower elsewhere.
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(limit.rlim_cur))
}
