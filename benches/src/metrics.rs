//! What the harness reads from the operating system: bytes the process wrote to the
//! device, its peak resident memory, and the space a directory takes on disk.

use std::path::Path;
use std::time::{Duration, Instant};

/// Counters from `/proc/self/io` (whole process: every engine thread counts).
#[derive(Clone, Copy, Debug, Default)]
pub struct Io {
    /// Bytes handed to `write()`-like calls (page cache included).
    pub wchar: u64,
    /// Bytes the process caused to be sent to the device (accounted when a page is
    /// dirtied).
    pub write_bytes: u64,
    /// Dirty bytes that were truncated away before reaching the device.
    pub cancelled_write_bytes: u64,
}

impl Io {
    /// Reads the counters; zero if `/proc/self/io` is unavailable.
    pub fn now() -> Io {
        let mut io = Io::default();
        if let Ok(s) = std::fs::read_to_string("/proc/self/io") {
            for line in s.lines() {
                let mut parts = line.split(':');
                let (Some(k), Some(v)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let v: u64 = v.trim().parse().unwrap_or(0);
                match k {
                    "wchar" => io.wchar = v,
                    "write_bytes" => io.write_bytes = v,
                    "cancelled_write_bytes" => io.cancelled_write_bytes = v,
                    _ => {}
                }
            }
        }
        io
    }

    /// Bytes that reached (or will reach) the device since `earlier`.
    pub fn device_bytes_since(&self, earlier: &Io) -> u64 {
        let written = self.write_bytes.saturating_sub(earlier.write_bytes);
        let cancelled = self
            .cancelled_write_bytes
            .saturating_sub(earlier.cancelled_write_bytes);
        written.saturating_sub(cancelled)
    }
}

// glibc only: other C libraries (musl, macOS, Windows) have no such function, and the
// harness would not link there.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    /// glibc: returns free heap memory to the operating system.
    fn malloc_trim(pad: usize) -> i32;
}

/// Hands memory freed by a closed engine back to the OS, so the next engine's peak RSS
/// does not include the previous engine's freed-but-retained heap. Does nothing outside
/// glibc (peak RSS is only measured on Linux anyway, from /proc).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks; it takes no
    // pointers from us and is safe to call at any time from any thread.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
unsafe extern "C" {
    /// POSIX: reads clock `clock` into `*tp`; 0 on success.
    fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
}

/// CPU time the whole process has used so far (every thread: the workload's threads
/// and the engine's background flushes and compactions), from
/// `CLOCK_PROCESS_CPUTIME_ID`; zero where that clock is not wired up here.
pub fn process_cpu() -> Duration {
    #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
    {
        /// Linux's CLOCK_PROCESS_CPUTIME_ID.
        const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
        let mut ts = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec of the C layout on 64-bit Linux
        // (two 64-bit fields); clock_gettime writes only into it.
        let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        if rc == 0 {
            return Duration::new(
                ts.tv_sec.max(0) as u64,
                ts.tv_nsec.clamp(0, 999_999_999) as u32,
            );
        }
    }
    Duration::ZERO
}

/// Resets the process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size since the last [`reset_peak_rss`], in bytes.
pub fn peak_rss() -> u64 {
    status_kib("VmHWM:") * 1024
}

/// The process's resident memory now, split as the kernel counts it: anonymous (heap,
/// stacks: the engine's own memory) and file-backed (pages of mapped files, such as
/// tables read through a memory map, which belong to the page cache and are shared and
/// reclaimable), in bytes.
pub fn rss_anon_and_file() -> (u64, u64) {
    (status_kib("RssAnon:") * 1024, status_kib("RssFile:") * 1024)
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Space allocated on disk for everything under `dir` (st_blocks × 512), recursively.
/// Outside Unix, where std exposes no allocation size, the files' lengths.
pub fn allocated_bytes(dir: &Path) -> u64 {
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for e in entries.flatten() {
        let Ok(md) = e.metadata() else { continue };
        if md.is_dir() {
            total += allocated_bytes(&e.path());
        } else {
            #[cfg(unix)]
            {
                total += md.blocks() * 512;
            }
            #[cfg(not(unix))]
            {
                total += md.len();
            }
        }
    }
    total
}

/// Waits until the process has written (almost) nothing for `quiet` — background
/// flushes and compactions finished — at most `limit`. A trickle below 256 KiB per
/// window (sled's periodic log flush, RocksDB's info LOG) does not count as activity.
/// Returns how long it waited.
pub fn wait_for_quiet(quiet: Duration, limit: Duration) -> Duration {
    const TRICKLE: u64 = 256 << 10;
    let start = Instant::now();
    let mut since = Io::now().wchar;
    let mut window_start = Instant::now();
    while start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(50));
        let now = Io::now().wchar;
        if now.saturating_sub(since) >= TRICKLE {
            since = now;
            window_start = Instant::now();
        } else if window_start.elapsed() >= quiet {
            break;
        }
    }
    start.elapsed()
}

/// One line about the machine: CPU model, cores, memory, kernel.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!(
        "{cores} x {cpu}, {:.0} GiB RAM, Linux {kernel}",
        mem_kib as f64 / (1 << 20) as f64
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_memory_goes_back_and_peak_rss_resets() {
        let before = status_kib("VmRSS:");
        let mut big = vec![1u8; 64 << 20];
        big.iter_mut().step_by(4096).for_each(|b| *b = 2);
        assert!(status_kib("VmRSS:") >= before + (60 << 10));
        drop(big);
        release_freed_memory();
        reset_peak_rss();
        // The 64 MiB block is gone from the peak once it is reset.
        assert!(
            peak_rss() / 1024 < before + (32 << 10),
            "peak {} KiB",
            peak_rss() / 1024
        );
    }

    #[test]
    fn anonymous_memory_shows_in_the_anonymous_share() {
        let (anon, _) = rss_anon_and_file();
        let mut big = vec![1u8; 64 << 20];
        big.iter_mut().step_by(4096).for_each(|b| *b = 2);
        let (grown, file) = rss_anon_and_file();
        assert!(grown >= anon + (60 << 20), "{anon} -> {grown}");
        // The binary's own mapped text counts as file-backed.
        assert!(file > 0);
        drop(big);
    }

    #[test]
    fn process_cpu_time_advances_with_work() {
        let t0 = process_cpu();
        let mut x = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = process_cpu().saturating_sub(t0);
        assert!(used >= Duration::from_millis(5), "{used:?}");
    }

    #[test]
    fn io_counters_and_directory_size_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), vec![7u8; 10_000]).unwrap();
        assert!(allocated_bytes(dir.path()) >= 10_000);
        assert!(Io::now().wchar >= 10_000);
    }
}
