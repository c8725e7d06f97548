//! Latency over time and write stalls (issue items 6 and 7's tails).
//!
//! A whole-run histogram hides *when* the slow operations happened: a write stall of two
//! seconds and a steady 1 % of slow reads give the same p99. So every timed loop keeps,
//! per thread, a histogram of the current window (`--timeline_interval_ms`, one second
//! by default) and rolls it when an operation completes past the window's end: the
//! window's non-empty buckets are kept (a few hundred pairs), its counts are added to
//! the thread's whole-run histogram, and it is cleared. Per operation that is one
//! comparison of two instants more than before, and no lock; the threads' windows are
//! merged once the phase is over. An operation belongs to the window in which it
//! completes, so a stall shows as windows with no operation followed by one whose max is
//! the stall.
//!
//! **Write stalls** are counted the same way for every engine, by the harness: each
//! operation during which the harness asked the engine to write (put, delete, range
//! delete, merge, transaction: [`marked`] notes it in a thread-local flag) and which
//! took more than 1 ms counts as a stall, more than 10 ms as a long one, and the stall
//! time is the sum of those operations' latencies. Reads never count, so a mixed
//! workload counts its writes only and readwhilewriting its writer's.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::engine::{Attempt, Engine, Res};

pub mod plot;

#[cfg(test)]
mod e2e;

/// Series name of a workload's own (timed) operations.
pub const FOREGROUND: &str = "foreground";
/// Series name of readwhilewriting's background writer.
pub const WRITER: &str = "writer";

/// A write slower than this is a stall.
pub const STALL_NS: u64 = 1_000_000;
/// A write slower than this is a long stall.
pub const LONG_STALL_NS: u64 = 10_000_000;

/// The timeline flags (db_bench reports per-interval statistics with `--stats_interval`;
/// these names say what is written).
#[derive(clap::Args, Debug, Clone)]
pub struct TailArgs {
    /// Write latency over time as CSV to this file: per engine, workload, series
    /// (`foreground`; readwhilewriting also `writer`) and window: operations completed,
    /// p50, p99, p99.9 and max latency in µs.
    #[arg(long)]
    pub timeline: Option<PathBuf>,
    /// Window of the timeline, in milliseconds.
    #[arg(long = "timeline_interval_ms", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeline_interval_ms: u64,
    /// Also plot the timeline (p99 and max per window, log scale, one panel per workload
    /// and series, each engine's configuration written on the image) as SVG.
    #[arg(long = "timeline_svg")]
    pub timeline_svg: Option<PathBuf>,
}

impl TailArgs {
    /// The window length.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.timeline_interval_ms.max(1))
    }

    /// Writes the files asked for; returns what was written, for the log.
    pub fn write(&self, report: &crate::report::Report) -> Res<Vec<PathBuf>> {
        let mut wrote = Vec::new();
        let mut put = |path: &Path, text: String| -> Res<()> {
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            wrote.push(path.to_path_buf());
            Ok(())
        };
        if let Some(p) = &self.timeline {
            put(p, plot::csv(report))?;
        }
        if let Some(p) = &self.timeline_svg {
            put(p, plot::svg(report))?;
        }
        Ok(wrote)
    }
}

thread_local! {
    /// The window length of the timed loops started from this thread.
    static INTERVAL: Cell<Duration> = const { Cell::new(Duration::from_secs(1)) };
    /// The operation running on this thread asked the engine to write.
    static WROTE: Cell<bool> = const { Cell::new(false) };
}

/// Sets the window length for the timed loops this thread starts, until dropped. A
/// thread-local rather than a parameter: every workload's loop (and any added later)
/// reads it without a new argument, and tests on parallel threads do not see each
/// other's setting.
pub struct IntervalGuard(Duration);

impl IntervalGuard {
    /// Windows of `interval` from now until the guard drops.
    pub fn set(interval: Duration) -> IntervalGuard {
        IntervalGuard(INTERVAL.replace(interval.max(Duration::from_nanos(1))))
    }
}

impl Drop for IntervalGuard {
    fn drop(&mut self) {
        INTERVAL.set(self.0);
    }
}

/// The window length for loops started from this thread.
pub fn interval() -> Duration {
    INTERVAL.get()
}

/// Whether the engine was asked to write since the last call on this thread (and clears
/// it): the timed loops call it after each operation.
#[inline]
pub fn take_write() -> bool {
    WROTE.replace(false)
}

#[inline]
fn mark_write() {
    WROTE.set(true);
}

/// Writes over the stall thresholds among the writes of a phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stalls {
    /// Operations that wrote.
    pub writes: u64,
    /// Of them, those slower than 1 ms.
    pub over_1ms: u64,
    /// Of them, those slower than 10 ms.
    pub over_10ms: u64,
    /// The summed latency of the writes slower than 1 ms, ns.
    pub stall_ns: u64,
}

impl Stalls {
    /// Counts one write of `ns`.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.writes += 1;
        if ns > STALL_NS {
            self.over_1ms += 1;
            self.stall_ns += ns;
            if ns > LONG_STALL_NS {
                self.over_10ms += 1;
            }
        }
    }

    fn add(&mut self, o: &Stalls) {
        self.writes += o.writes;
        self.over_1ms += o.over_1ms;
        self.over_10ms += o.over_10ms;
        self.stall_ns += o.stall_ns;
    }
}

/// Latency of one window, ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// The slowest operation (exact, not a histogram bucket).
    pub max: u64,
}

/// One window of a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Operations that completed in the window (a scan's: entries).
    pub ops: u64,
    /// Their latency; `None` when nothing was timed in the window.
    pub latency: Option<Latency>,
}

/// The windows of one series of operations.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// [`FOREGROUND`] or [`WRITER`].
    pub name: &'static str,
    /// Window `i` covers `[i·interval, (i+1)·interval)` from the start of the phase.
    pub windows: Vec<Window>,
    /// The series' writes over the stall thresholds.
    pub stalls: Stalls,
}

/// Latency over time of one timed phase.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tails {
    /// Window length.
    pub interval: Duration,
    /// The foreground operations, then the background writer if there was one.
    pub series: Vec<Series>,
}

impl Tails {
    /// A phase of one operation of `took` (reopen: the open), nothing written.
    pub fn one_op(took: Duration) -> Tails {
        let ns = took.as_nanos() as u64;
        let interval = interval();
        let last = (took.as_nanos() / interval.as_nanos().max(1)) as usize;
        let mut windows = vec![
            Window {
                ops: 0,
                latency: None
            };
            last + 1
        ];
        if let Some(w) = windows.last_mut() {
            *w = Window {
                ops: 1,
                latency: Some(Latency {
                    p50: ns,
                    p99: ns,
                    p999: ns,
                    max: ns,
                }),
            };
        }
        Tails {
            interval,
            series: vec![Series {
                name: FOREGROUND,
                windows,
                stalls: Stalls::default(),
            }],
        }
    }

    /// The writes of every series over the stall thresholds; `None` if nothing wrote.
    pub fn write_stalls(&self) -> Option<Stalls> {
        let mut all = Stalls::default();
        for s in &self.series {
            all.add(&s.stalls);
        }
        (all.writes > 0).then_some(all)
    }
}

/// A rolled window of one thread: its non-empty buckets.
struct Rolled {
    index: u64,
    ops: u64,
    max: u64,
    buckets: Vec<(u64, u64)>,
}

/// What one thread recorded over a phase.
pub struct Part {
    total: Histogram<u64>,
    rolled: Vec<Rolled>,
    stalls: Stalls,
}

/// One thread's recorder: the current window's histogram, rolled when an operation
/// completes past the window's end.
pub struct Recorder {
    start: Instant,
    interval: Duration,
    /// End of the current window.
    boundary: Instant,
    index: u64,
    live: Histogram<u64>,
    live_ops: u64,
    live_max: u64,
    total: Histogram<u64>,
    rolled: Vec<Rolled>,
    stalls: Stalls,
}

impl Recorder {
    /// A recorder whose windows start at `start` (the phase's start, shared by its
    /// threads) and last `interval`.
    pub fn new(start: Instant, interval: Duration) -> Res<Recorder> {
        let interval = interval.max(Duration::from_nanos(1));
        Ok(Recorder {
            start,
            interval,
            boundary: start + interval,
            index: 0,
            live: crate::workload::histogram()?,
            live_ops: 0,
            live_max: 0,
            total: crate::workload::histogram()?,
            rolled: Vec::new(),
            stalls: Stalls::default(),
        })
    }

    /// One operation that completed at `now` after `ns`; `wrote`: it asked the engine to
    /// write (counted for the stalls).
    #[inline]
    pub fn record(&mut self, now: Instant, ns: u64, wrote: bool) {
        if now >= self.boundary {
            self.roll(now);
        }
        self.live.saturating_record(ns);
        self.live_ops += 1;
        self.live_max = self.live_max.max(ns);
        if wrote {
            self.stalls.record(ns);
        }
    }

    /// `ops` operations that completed by `now`, timed together at `ns` each (a scan's
    /// batch: one histogram sample, as the whole-run histogram has always recorded it).
    pub fn record_batch(&mut self, now: Instant, ns: u64, ops: u64) {
        if now >= self.boundary {
            self.roll(now);
        }
        self.live.saturating_record(ns);
        self.live_ops += ops;
        self.live_max = self.live_max.max(ns);
    }

    /// `ops` operations that completed by `now` without a latency sample (a scan's last,
    /// partial batch), so the windows still add up to the phase's operations.
    pub fn add_ops(&mut self, now: Instant, ops: u64) {
        if now >= self.boundary {
            self.roll(now);
        }
        self.live_ops += ops;
    }

    /// Closes the current window and opens the one `now` falls in (windows in between,
    /// in which this thread completed nothing, are left out; the merge fills them in).
    #[cold]
    fn roll(&mut self, now: Instant) {
        self.close_window();
        let nanos = self.interval.as_nanos().max(1);
        self.index = ((now - self.start).as_nanos() / nanos) as u64;
        let end = nanos.saturating_mul(u128::from(self.index) + 1);
        self.boundary = self.start + Duration::from_nanos(u64::try_from(end).unwrap_or(u64::MAX));
    }

    fn close_window(&mut self) {
        if self.live_ops == 0 {
            return;
        }
        let mut buckets = Vec::new();
        for v in self.live.iter_recorded() {
            // The bucket's highest equivalent value: recorded again (into the run's
            // histogram now, into the merged window later) it lands in the same bucket.
            let (value, count) = (v.value_iterated_to(), v.count_at_value());
            self.total.saturating_record_n(value, count);
            buckets.push((value, count));
        }
        self.rolled.push(Rolled {
            index: self.index,
            ops: self.live_ops,
            max: self.live_max,
            buckets,
        });
        self.live.reset();
        self.live_ops = 0;
        self.live_max = 0;
    }

    /// The thread's windows and its whole-phase histogram.
    pub fn finish(mut self) -> Part {
        self.close_window();
        Part {
            total: self.total,
            rolled: self.rolled,
            stalls: self.stalls,
        }
    }
}

/// Merges the threads' recordings of series `name` over a phase of `elapsed`: the
/// whole-phase histogram (every thread's samples) and the series, one window per
/// `interval` from the phase's start to its end (windows in which nothing completed
/// included, with no operations).
pub fn merge(
    name: &'static str,
    parts: Vec<Part>,
    interval: Duration,
    elapsed: Duration,
) -> Res<(Histogram<u64>, Series)> {
    let mut total = crate::workload::histogram()?;
    let mut stalls = Stalls::default();
    let mut rolled = Vec::new();
    for p in parts {
        total.add(&p.total)?;
        stalls.add(&p.stalls);
        rolled.extend(p.rolled);
    }
    rolled.sort_by_key(|r| r.index);
    let nanos = interval.as_nanos().max(1);
    let by_time = elapsed.as_nanos().div_ceil(nanos) as usize;
    let by_data = rolled.last().map_or(0, |r| r.index as usize + 1);
    let mut windows = vec![
        Window {
            ops: 0,
            latency: None
        };
        by_time.max(by_data)
    ];
    let mut hist = crate::workload::histogram()?;
    let mut rest = rolled.as_slice();
    while let Some(first) = rest.first() {
        let same = rest.iter().take_while(|r| r.index == first.index).count();
        let (group, tail) = rest.split_at(same);
        rest = tail;
        hist.reset();
        let (mut ops, mut max) = (0, 0);
        for r in group {
            ops += r.ops;
            max = max.max(r.max);
            for &(value, count) in &r.buckets {
                hist.saturating_record_n(value, count);
            }
        }
        // A percentile is its bucket's highest value, which can exceed the exact
        // maximum within the histogram's precision: never report it above the max.
        let q = |p: f64| hist.value_at_quantile(p).min(max);
        let latency = (!hist.is_empty()).then(|| Latency {
            p50: q(0.50),
            p99: q(0.99),
            p999: q(0.999),
            max,
        });
        if let Some(w) = windows.get_mut(first.index as usize) {
            *w = Window { ops, latency };
        }
    }
    Ok((
        total,
        Series {
            name,
            windows,
            stalls,
        },
    ))
}

/// Wraps an engine so that each write it is asked for marks the calling thread (see
/// [`take_write`]); everything else goes straight through.
pub fn marked(engine: Box<dyn Engine>) -> Box<dyn Engine> {
    Box::new(Marked(engine))
}

/// An engine whose writes mark the calling thread. It must forward every method of
/// [`Engine`]: a method left to the trait's default would hide the engine's own (a test
/// below compares the two lists).
struct Marked(Box<dyn Engine>);

impl Engine for Marked {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> Res<()> {
        mark_write();
        self.0.put(key, value, sync)
    }

    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        self.0.get(key)
    }

    fn delete(&self, key: &[u8]) -> Res<()> {
        mark_write();
        self.0.delete(key)
    }

    fn has_delete_range(&self) -> bool {
        self.0.has_delete_range()
    }

    fn delete_range(&self, start: &[u8], end: &[u8]) -> Res<()> {
        mark_write();
        self.0.delete_range(start, end)
    }

    fn seek(&self, key: &[u8], nexts: usize) -> Res<bool> {
        self.0.seek(key, nexts)
    }

    fn scan(&self, reverse: bool, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Res<()> {
        self.0.scan(reverse, visit)
    }

    fn settle(&self) -> Res<()> {
        self.0.settle()
    }

    fn shape(&self) -> Option<String> {
        self.0.shape()
    }

    fn compact_all(&self) -> Res<bool> {
        mark_write();
        self.0.compact_all()
    }

    fn get_value(&self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        self.0.get_value(key)
    }

    fn has_merge(&self) -> bool {
        self.0.has_merge()
    }

    fn merge_add(&self, key: &[u8], delta: u64) -> Res<()> {
        mark_write();
        self.0.merge_add(key, delta)
    }

    fn has_transactions(&self) -> bool {
        self.0.has_transactions()
    }

    fn txn_add(&self, key: &[u8], delta: u64) -> Res<Attempt> {
        mark_write();
        self.0.txn_add(key, delta)
    }

    fn close(self: Box<Self>) -> Res<()> {
        self.0.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// A recorder fed operations at chosen instants: windows of 1 s from `t0`.
    fn feed(ops: &[(u64, u64, bool)]) -> Part {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, Duration::from_secs(1)).unwrap();
        for &(at_ms, ns, wrote) in ops {
            r.record(t0 + Duration::from_millis(at_ms), ns, wrote);
        }
        r.finish()
    }

    /// Operations land in the window they complete in; each window's percentiles come
    /// from its own operations; a window with none is kept, empty; the windows add up
    /// to the operations and the merged histogram holds them all.
    #[test]
    fn windows_split_by_completion_time_and_sum_to_the_ops() {
        let mut ops = Vec::new();
        // Window 0: 1000 operations of 1..=1000 µs.
        for i in 1..=1000u64 {
            ops.push((i * 900 / 1000, i * 1000, false));
        }
        // Window 1: nothing (a stall); window 2: one 1.5 s write and 9 fast ones.
        ops.push((2100, 1500 * MS, true));
        for _ in 0..9 {
            ops.push((2200, 10_000, true));
        }
        let part = feed(&ops);
        let (total, s) = merge(
            FOREGROUND,
            vec![part],
            Duration::from_secs(1),
            Duration::from_millis(2500),
        )
        .unwrap();
        assert_eq!(s.windows.len(), 3);
        assert_eq!(s.windows.iter().map(|w| w.ops).sum::<u64>(), 1010);
        assert_eq!(total.len(), 1010);
        let w0 = s.windows[0].latency.unwrap();
        // HdrHistogram with 3 significant digits: within 0.1 %.
        let near =
            |got: u64, want: u64| (got as f64 - want as f64).abs() <= want as f64 * 0.001 + 1.0;
        assert!(near(w0.p50, 500_000), "{w0:?}");
        assert!(near(w0.p99, 990_000), "{w0:?}");
        assert!(near(w0.p999, 999_000), "{w0:?}");
        assert_eq!(w0.max, 1_000_000);
        assert_eq!(
            s.windows[1],
            Window {
                ops: 0,
                latency: None
            }
        );
        let w2 = s.windows[2].latency.unwrap();
        assert_eq!(s.windows[2].ops, 10);
        assert!(near(w2.p50, 10_000), "{w2:?}");
        assert_eq!(w2.max, 1500 * MS);
        // Only the 10 writes count, and one of them stalled (over 10 ms too).
        assert_eq!(
            s.stalls,
            Stalls {
                writes: 10,
                over_1ms: 1,
                over_10ms: 1,
                stall_ns: 1500 * MS
            }
        );
    }

    /// Threads' windows of the same index merge into one, with percentiles over both;
    /// the series runs to the end of the phase even if the last windows are empty.
    #[test]
    fn threads_merge_per_window() {
        let a = feed(&[(100, 1000, false), (1100, 1000, false)]);
        let b = feed(&[(200, 3000, false), (300, 5000, false)]);
        let (total, s) = merge(
            FOREGROUND,
            vec![a, b],
            Duration::from_secs(1),
            Duration::from_millis(3900),
        )
        .unwrap();
        assert_eq!(total.len(), 4);
        assert_eq!(s.windows.len(), 4);
        assert_eq!(
            s.windows.iter().map(|w| w.ops).collect::<Vec<_>>(),
            [3, 1, 0, 0]
        );
        let w0 = s.windows[0].latency.unwrap();
        assert_eq!((w0.max, s.windows[1].latency.unwrap().max), (5000, 1000));
        assert!(w0.p50 >= 2997 && w0.p50 <= 3003, "{w0:?}");
        assert_eq!(s.stalls.writes, 0);
    }

    #[test]
    fn stalls_count_writes_over_each_threshold() {
        let mut s = Stalls::default();
        for ns in [
            1000,
            STALL_NS,
            STALL_NS + 1,
            5 * MS,
            LONG_STALL_NS,
            LONG_STALL_NS + 1,
            200 * MS,
        ] {
            s.record(ns);
        }
        assert_eq!(s.writes, 7);
        assert_eq!(s.over_1ms, 5);
        assert_eq!(s.over_10ms, 2);
        assert_eq!(
            s.stall_ns,
            STALL_NS + 1 + 5 * MS + LONG_STALL_NS + LONG_STALL_NS + 1 + 200 * MS
        );
    }

    /// Scans: a batch is one sample of many operations; a partial batch adds operations
    /// without a sample.
    #[test]
    fn batches_count_their_operations() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, Duration::from_millis(100)).unwrap();
        r.record_batch(t0 + Duration::from_millis(10), 50, 1024);
        r.record_batch(t0 + Duration::from_millis(150), 70, 1024);
        r.add_ops(t0 + Duration::from_millis(160), 17);
        let (total, s) = merge(
            FOREGROUND,
            vec![r.finish()],
            Duration::from_millis(100),
            Duration::from_millis(160),
        )
        .unwrap();
        assert_eq!(total.len(), 2);
        assert_eq!(
            s.windows.iter().map(|w| w.ops).collect::<Vec<_>>(),
            [1024, 1041]
        );
    }

    #[test]
    fn the_interval_is_per_thread_and_restored() {
        assert_eq!(interval(), Duration::from_secs(1));
        {
            let _g = IntervalGuard::set(Duration::from_millis(250));
            assert_eq!(interval(), Duration::from_millis(250));
            let t = Tails::one_op(Duration::from_millis(600));
            assert_eq!(t.series[0].windows.len(), 3);
            assert_eq!(t.series[0].windows[2].ops, 1);
            std::thread::spawn(|| assert_eq!(interval(), Duration::from_secs(1)))
                .join()
                .unwrap();
        }
        assert_eq!(interval(), Duration::from_secs(1));
    }

    /// The engine's writes mark the thread, its reads do not.
    #[test]
    fn writes_through_the_wrapper_mark_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::engine::Config {
            cache_bytes: 1 << 20,
            write_buffer_bytes: 1 << 20,
            compression: "none",
            bloom_filter_budget: None,
            subcompactions: 1,
            mmap_reads: true,
            range_delete_compactions: true,
            purpose: crate::engine::Purpose::Plain,
        };
        let db = crate::engine::open("strata", dir.path(), &cfg).unwrap();
        take_write();
        db.get(b"k").unwrap();
        assert!(!take_write());
        db.put(b"k", b"v", false).unwrap();
        assert!(take_write());
        assert!(!take_write());
        db.delete(b"k").unwrap();
        assert!(take_write());
        db.close().unwrap();
    }

    /// `Marked` forwards every method of `Engine`: a method added to the trait and not
    /// forwarded would silently run the trait's default for every engine (a `has_*`
    /// answering false, a workload skipped).
    #[test]
    fn the_wrapper_forwards_every_engine_method() {
        let names = |src: &str, start: &str| -> Vec<String> {
            let body = &src[src.find(start).unwrap()..];
            let mut depth = 0i32;
            let mut end = body.len();
            for (i, c) in body.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let mut v: Vec<String> = body[..end]
                .split("fn ")
                .skip(1)
                .filter_map(|s| s.split(['(', '<']).next())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_'))
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let trait_fns = names(include_str!("engine.rs"), "pub trait Engine");
        let forwarded = names(include_str!("tails.rs"), "impl Engine for Marked");
        assert!(trait_fns.len() >= 15, "{trait_fns:?}");
        assert_eq!(trait_fns, forwarded);
    }
}
