//! WAL benchmarks on the real file system.
//!
//! - `append/*`: records of 100 B and 4 KiB appended without syncing (handed to the OS
//!   only), beside the floor: the same bytes appended raw through the same file seam,
//!   one `write` per record and no framing.
//! - `append_sync/*`: one record appended and fdatasynced per iteration (latency), beside
//!   a raw append + sync of the same bytes.
//!
//! Files go to `$STRATA_BENCH_DIR` (default: the system temp dir); make sure that is a
//! real disk, not tmpfs, or the sync figures mean nothing. Logs are rotated at 64 MiB
//! outside the timed region so the page cache never fills.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use strata_core::{FileSystem, StdFs, WritableFile};
use strata_wal::{LogWriter, SyncPolicy};

const SIZES: [usize; 2] = [100, 4096];
const ROTATE_AT: u64 = 64 << 20;

fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("STRATA_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).expect("creating the benchmark directory");
    tempfile::tempdir_in(base).expect("creating a temporary directory")
}

/// Either the WAL writer or a bare file, so both run through the same loop.
enum Sink {
    Log(LogWriter),
    Raw(Box<dyn WritableFile>),
}

impl Sink {
    fn open(path: &Path, raw: bool, policy: SyncPolicy) -> Sink {
        let file = StdFs.create(path).expect("creating a benchmark file");
        if raw {
            Sink::Raw(file)
        } else {
            Sink::Log(LogWriter::new(file, policy))
        }
    }

    fn len(&self) -> u64 {
        match self {
            Sink::Log(w) => w.len(),
            Sink::Raw(f) => f.len(),
        }
    }

    fn put(&mut self, record: &[u8], sync: bool) {
        match self {
            Sink::Log(w) => {
                // The policy syncs when asked to.
                w.add_record(record).expect("append");
            }
            Sink::Raw(f) => {
                f.append(record).expect("append");
                if sync {
                    f.sync().expect("sync");
                }
            }
        }
    }
}

/// Times `iters` puts, rotating to a fresh file (untimed) when the current one is big.
fn run(dir: &Path, sink: &mut Sink, raw: bool, sync: bool, record: &[u8], iters: u64) -> Duration {
    let policy = if sync {
        SyncPolicy::EveryWrite
    } else {
        SyncPolicy::Never
    };
    let path = dir.join(if raw { "raw.dat" } else { "bench.log" });
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        if sink.len() >= ROTATE_AT {
            // Remove before recreating: truncating a file with unwritten data makes ext4
            // flush it, which would leak into the next timed batch.
            let _ = StdFs.remove(&path);
            *sink = Sink::open(&path, raw, policy);
        }
        let room = (ROTATE_AT - sink.len()) / (record.len() as u64 + 7) + 1;
        let batch = left.min(room);
        let start = Instant::now();
        for _ in 0..batch {
            sink.put(black_box(record), sync);
        }
        total += start.elapsed();
        left -= batch;
    }
    total
}

fn group(c: &mut Criterion, name: &str, sync: bool) {
    let dir = bench_dir();
    let mut g = c.benchmark_group(name);
    for size in SIZES {
        let record = vec![0xA5u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        for (label, raw) in [("wal", false), ("raw_write_floor", true)] {
            let policy = if sync {
                SyncPolicy::EveryWrite
            } else {
                SyncPolicy::Never
            };
            let file = if raw { "raw.dat" } else { "bench.log" };
            let mut sink = Sink::open(&dir.path().join(file), raw, policy);
            g.bench_with_input(BenchmarkId::new(label, size), &record, |b, record| {
                b.iter_custom(|iters| run(dir.path(), &mut sink, raw, sync, record, iters));
            });
        }
    }
    g.finish();
}

fn append(c: &mut Criterion) {
    group(c, "append", false);
}

fn append_sync(c: &mut Criterion) {
    group(c, "append_sync", true);
}

// The macro generates an undocumentable public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::append, super::append_sync);
}
criterion_main!(group::benches);
