//! The process's memory, for examples and benchmarks that report it.

/// The process's peak resident set size in KiB (Linux `VmHWM`), or `None` where unknown.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
