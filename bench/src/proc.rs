//! What the machine and the server process are doing, from /proc: RSS, CPU time, load average and how
//! busy the CPUs were just before a run (Linux only; every reader returns `None` elsewhere).

use std::time::{Duration, Instant};

/// Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on every mainstream Linux build).
const TICKS_PER_SECOND: f64 = 100.0;

/// A `VmXxx:` field of /proc/<pid>/status, in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 overall.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// User plus system CPU seconds of a process.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// User plus system CPU seconds of this process.
pub fn self_cpu_seconds() -> Option<f64> {
    stat_cpu_seconds(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// The 1-minute load average.
pub fn load1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let values: Vec<u64> = line.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let total: u64 = values.iter().sum();
    // idle + iowait
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total, idle))
}

/// Percentage of all CPUs busy over `window`, measured while we sleep: anything above a few percent
/// is another process competing with the benchmark.
pub async fn busy_percent(window: Duration) -> Option<f64> {
    let (total0, idle0) = cpu_ticks()?;
    tokio::time::sleep(window).await;
    let (total1, idle1) = cpu_ticks()?;
    let total = total1.checked_sub(total0)?;
    let idle = idle1.checked_sub(idle0)?;
    (total > 0).then(|| 100.0 * (total - idle) as f64 / total as f64)
}

/// Samples the VmRSS of `pid` every 100 ms until `end`, and returns the highest value in KiB.
pub async fn sample_rss_until(pid: u32, end: Instant) -> Option<u64> {
    let mut peak = status_kib(pid, "VmRSS");
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(status_kib(pid, "VmRSS"));
    }
    peak
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let stat = "42 (tokio (rt)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(stat_cpu_seconds(stat), Some(3.0));
    }

    #[test]
    fn this_process_has_a_resident_set() {
        assert!(status_kib(std::process::id(), "VmRSS").is_some_and(|kib| kib > 0));
    }
}
