//! Keys, values and the timed loops every workload is built from.
//!
//! Keys are `big-endian u64 || padding` (the anchors' layout): key `i` sorts as `i` does,
//! so a sequential fill is a sequential fill for every engine. A *missing* key for `i`
//! has the same prefix and a different last padding byte: it sorts between key `i` and
//! key `i + 1`, inside the key range, and is never written. Random workloads visit a
//! seeded random permutation of `0..num`, the same for every engine.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::{Engine, Res};
use crate::tails::{self, FOREGROUND, Recorder, Tails, WRITER};

/// Padding byte of present keys; missing keys end in [`MISSING_PAD`] instead.
const PAD: u8 = b'0';
const MISSING_PAD: u8 = b'1';

/// Writes key `i` (or its missing twin) into `buf` (already `key_size` long).
pub fn fill_key(buf: &mut [u8], i: u64, missing: bool) {
    if let Some((head, tail)) = buf.split_at_mut_checked(8) {
        head.copy_from_slice(&i.to_be_bytes());
        tail.fill(PAD);
        if missing && let Some(last) = tail.last_mut() {
            *last = MISSING_PAD;
        }
    }
}

/// splitmix64: a small, well-mixed generator; seeded, so every engine sees the same order.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The `j`-th of a seeded stream of uniform draws from `0..n` (with replacement, as
/// db_bench's `rand.Next() % num`): stateless, so every engine and every split of the
/// operations among threads draws the same sequence.
pub fn pick(seed: u64, j: u64, n: u64) -> u64 {
    // splitmix64 seeded at `seed + j·γ` yields the stream's `j`-th output.
    let mut rng = Rng::new(seed.wrapping_add(j.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    rng.next_u64() % n.max(1)
}

/// A random permutation of `0..n` (Fisher–Yates), reproducible from `seed`.
pub fn permutation(n: u64, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut rng = Rng::new(seed);
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// Value bytes: slices of one pseudo-random buffer (like db_bench's generator), so values
/// differ from key to key and from round to round without allocating per write.
pub struct Values {
    buf: Vec<u8>,
    size: usize,
}

impl Values {
    /// Values of `size` bytes that compress to about `ratio` of their size (db_bench's
    /// `--compression_ratio`: every `size` bytes hold `ratio × size` random bytes,
    /// repeated; 1.0 is incompressible).
    pub fn new(size: usize, seed: u64, ratio: f64) -> Values {
        let mut rng = Rng::new(seed ^ 0x5EED);
        // 1 MiB: small enough to stay in the CPU caches, so copying a value out of it
        // costs what it did in every earlier run (an 8 MiB buffer added a cache miss,
        // about 0.1 µs, to every write); about 10,000 distinct 100-byte values, so a
        // 4 KiB block rarely holds one twice. Values over 16 KiB get a larger buffer,
        // at least 64 distinct values (1 MiB would hold only 16 of 64 KiB).
        let len = (1usize << 20).max(size.saturating_mul(64)) + size;
        let unique = ((size.max(1) as f64 * ratio.clamp(0.0, 1.0)).ceil() as usize).max(1);
        let mut buf = Vec::with_capacity(len + size + 8);
        while buf.len() < len {
            let mut piece = Vec::with_capacity(unique + 8);
            while piece.len() < unique {
                piece.extend_from_slice(&rng.next_u64().to_le_bytes());
            }
            piece.truncate(unique);
            let segment_end = buf.len() + size.max(1);
            while buf.len() < segment_end {
                let take = (segment_end - buf.len()).min(piece.len());
                buf.extend_from_slice(&piece[..take]);
            }
        }
        Values { buf, size }
    }

    /// The value written for key `i` in write round `round`.
    pub fn get(&self, i: u64, round: u64) -> &[u8] {
        // Values start on a segment boundary, so each holds one compressible segment
        // whole (as db_bench makes each value on its own).
        let segments = ((self.buf.len() - self.size) / self.size.max(1)).max(1) as u64;
        let at = (i
            .wrapping_mul(0x9E37_79B9)
            .wrapping_add(round.wrapping_mul(7919))
            % segments) as usize
            * self.size;
        self.buf.get(at..at + self.size).unwrap_or(&[])
    }
}

/// What a timed phase did.
pub struct Outcome {
    /// Operations timed.
    pub ops: u64,
    /// Reads that found their key (reads) or entries visited (scans).
    pub found: u64,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Per-operation latency in nanoseconds.
    pub hist: Histogram<u64>,
    /// Operations done by a background writer during the phase (readwhilewriting).
    pub background_ops: u64,
    /// Of `ops`, how many were writes, for workloads that mix reads and writes.
    pub writes: Option<u64>,
    /// Latency per window and write stalls, of the operations and of the background
    /// writer (`tails.rs`).
    pub tails: Tails,
}

/// A latency histogram in nanoseconds: 1 ns to one hour, 3 significant digits.
pub fn histogram() -> Res<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 3_600_000_000_000, 3)?)
}

/// A progress bar on stderr for `total` steps; hidden when stderr is not a terminal.
pub fn progress(total: u64, label: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{prefix:>22} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(label.to_string());
    pb
}

/// One operation of a job run beside the timed operations until they finish
/// (readwhilewriting's writer): called with a scratch key and its operation number,
/// over and over, each call timed as the foreground's are.
pub type Background<'a> = &'a (dyn Fn(&mut [u8], u64) -> Res<()> + Sync);

/// Progress is reported in steps of this many operations (an atomic add per step).
const STEP: u64 = 1024;

/// Runs `op(scratch_key, j)` for every `j` in `0..total`, split into `threads`
/// contiguous shares, timing each call. `op` returns whether a read found its key.
/// `background`, if given, runs on its own thread until the timed operations finish;
/// its operations are counted and timed as a series of their own.
pub fn run_ops<F>(
    threads: usize,
    total: u64,
    key_size: usize,
    pb: &ProgressBar,
    op: F,
    background: Option<Background<'_>>,
) -> Res<Outcome>
where
    F: Fn(&mut [u8], u64) -> Res<bool> + Sync,
{
    let threads = threads.max(1) as u64;
    let stop = AtomicBool::new(false);
    let found = AtomicU64::new(0);
    let interval = tails::interval();
    let start = Instant::now();
    type Bg = Option<(u64, tails::Part)>;
    let (parts, bg) = std::thread::scope(|s| -> Res<(Vec<tails::Part>, Bg)> {
        let bg = background.map(|f| {
            let stop = &stop;
            s.spawn(move || -> Res<(u64, tails::Part)> {
                let mut rec = Recorder::new(start, interval)?;
                let mut key = vec![0u8; key_size];
                let mut n = 0u64;
                let mut last = Instant::now();
                while !stop.load(Ordering::Acquire) {
                    f(&mut key, n)?;
                    let now = Instant::now();
                    rec.record(now, (now - last).as_nanos() as u64, tails::take_write());
                    last = now;
                    n += 1;
                }
                Ok((n, rec.finish()))
            })
        });
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (op, found) = (&op, &found);
                s.spawn(move || -> Res<tails::Part> {
                    // Per thread: the current window's histogram, rolled each interval
                    // (no lock, no shared counter per operation).
                    let mut rec = Recorder::new(start, interval)?;
                    let mut key = vec![0u8; key_size];
                    let (lo, hi) = (total * t / threads, total * (t + 1) / threads);
                    let mut hits = 0;
                    let mut last = Instant::now();
                    for j in lo..hi {
                        if op(&mut key, j)? {
                            hits += 1;
                        }
                        let now = Instant::now();
                        rec.record(now, (now - last).as_nanos() as u64, tails::take_write());
                        last = now;
                        if (j - lo) % STEP == STEP - 1 {
                            pb.inc(STEP);
                        }
                    }
                    found.fetch_add(hits, Ordering::Relaxed);
                    Ok(rec.finish())
                })
            })
            .collect();
        let mut parts = Vec::new();
        let mut first_err = None;
        for w in workers {
            match w.join() {
                Ok(Ok(p)) => parts.push(p),
                Ok(Err(e)) => first_err = first_err.or(Some(e)),
                Err(_) => first_err = first_err.or(Some("a worker thread panicked".into())),
            }
        }
        stop.store(true, Ordering::Release);
        let bg = match bg.map(|h| h.join()) {
            None => None,
            Some(Ok(Ok(done))) => Some(done),
            Some(Ok(Err(e))) => return Err(e),
            Some(Err(_)) => return Err("the background writer panicked".into()),
        };
        match first_err {
            Some(e) => Err(e),
            None => Ok((parts, bg)),
        }
    })?;
    let elapsed = start.elapsed();
    pb.finish_and_clear();
    let (hist, fg) = tails::merge(FOREGROUND, parts, interval, elapsed)?;
    let mut series = vec![fg];
    let mut background_ops = 0;
    if let Some((n, part)) = bg {
        background_ops = n;
        series.push(tails::merge(WRITER, vec![part], interval, elapsed)?.1);
    }
    Ok(Outcome {
        ops: total,
        found: found.load(Ordering::Relaxed),
        elapsed,
        hist,
        background_ops,
        writes: None,
        tails: Tails { interval, series },
    })
}

/// Scans the whole database (at most `limit` entries) on each of `threads` threads.
/// Latency is recorded per batch of [`STEP`] entries, divided by the batch size: a
/// clock read per entry would cost as much as the fastest engines' `next()`.
pub fn run_scan(
    engine: &dyn Engine,
    threads: usize,
    reverse: bool,
    limit: u64,
    pb: &ProgressBar,
) -> Res<Outcome> {
    let interval = tails::interval();
    let start = Instant::now();
    let results = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(move || -> Res<(u64, tails::Part)> {
                    let mut rec = Recorder::new(start, interval)?;
                    let mut seen = 0u64;
                    let mut last = Instant::now();
                    engine.scan(reverse, &mut |k, v| {
                        std::hint::black_box((k, v));
                        seen += 1;
                        if seen.is_multiple_of(STEP) {
                            let now = Instant::now();
                            rec.record_batch(now, (now - last).as_nanos() as u64 / STEP, STEP);
                            last = now;
                            pb.inc(STEP);
                        }
                        seen < limit
                    })?;
                    // The last, partial batch: counted in its window, not sampled (as
                    // before the timeline, so the percentiles are unchanged).
                    rec.add_ops(Instant::now(), seen % STEP);
                    Ok((seen, rec.finish()))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| "a scan thread panicked".into()))
            .collect::<Res<Vec<Res<(u64, tails::Part)>>>>()
    })?;
    let elapsed = start.elapsed();
    pb.finish_and_clear();
    let mut parts = Vec::new();
    let mut seen = 0;
    for r in results {
        let (n, p) = r?;
        seen += n;
        parts.push(p);
    }
    let (hist, fg) = tails::merge(FOREGROUND, parts, interval, elapsed)?;
    Ok(Outcome {
        ops: seen,
        found: seen,
        elapsed,
        hist,
        background_ops: 0,
        writes: None,
        tails: Tails {
            interval,
            series: vec![fg],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_their_numbers_and_missing_keys_fall_between() {
        let mut a = vec![0u8; 16];
        let mut m = vec![0u8; 16];
        let mut b = vec![0u8; 16];
        for i in [0u64, 1, 255, 256, 1 << 40] {
            fill_key(&mut a, i, false);
            fill_key(&mut m, i, true);
            fill_key(&mut b, i + 1, false);
            assert!(a < m && m < b, "key {i}");
        }
    }

    #[test]
    fn picks_are_reproducible_and_cover_the_range() {
        let draws: Vec<u64> = (0..10_000).map(|j| pick(5, j, 100)).collect();
        assert_eq!(
            draws,
            (0..10_000).map(|j| pick(5, j, 100)).collect::<Vec<_>>()
        );
        assert_ne!(
            draws,
            (0..10_000).map(|j| pick(6, j, 100)).collect::<Vec<_>>()
        );
        let mut seen = [0u32; 100];
        for d in draws {
            seen[d as usize] += 1;
        }
        // 100 draws expected per value; a uniform stream stays well inside 50..150.
        assert!(seen.iter().all(|&n| (50..150).contains(&n)), "{seen:?}");
    }

    #[test]
    fn permutation_is_a_reproducible_permutation() {
        let p = permutation(1000, 7);
        assert_eq!(p, permutation(1000, 7));
        assert_ne!(p, permutation(1000, 8));
        let mut s = p.clone();
        s.sort_unstable();
        assert_eq!(s, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn values_have_the_requested_size_and_differ_by_round() {
        let v = Values::new(100, 1, 1.0);
        assert_eq!(v.get(5, 0).len(), 100);
        assert_ne!(v.get(5, 0), v.get(5, 1));
        assert_ne!(v.get(5, 0), v.get(6, 0));
    }

    #[test]
    fn a_compression_ratio_makes_values_compress_about_that_far() {
        for ratio in [1.0, 0.5, 0.25] {
            let v = Values::new(100, 1, ratio);
            let sample: Vec<u8> = (0..1000).flat_map(|i| v.get(i, 0).to_vec()).collect();
            let packed = lz4_flex::block::compress(&sample).len() as f64 / sample.len() as f64;
            // LZ4 cannot shrink random bytes, and adds a little framing.
            assert!(
                packed > ratio * 0.8 && packed < ratio * 1.25 + 0.05,
                "{ratio}: {packed}"
            );
        }
    }
}
