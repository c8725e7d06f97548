//! Criterion benchmarks of the table: build throughput, point lookups (hits, misses —
//! where the Bloom filter pays), seeks, full scans and the Bloom probe itself, with a
//! `BTreeMap` lookup of the same keys as the in-memory floor.
//!
//! Keys are db_bench-shaped: 16 bytes (big-endian u64 + 8 bytes), values 100 bytes.
//! Present keys are even numbers, misses the odd numbers between them.
//!
//! Run: `cargo bench -p strata-kv-sstable -- --warm-up-time 1 --measurement-time 3`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use strata_core::{FileSystem, InternalKey, MemFs, SortedIter, ValueKind};
use strata_sstable::{BlockCache, Compression, Table, TableBuilder, TableOptions};

const ENTRIES: u64 = 200_000;
const VALUE_LEN: usize = 100;
const PROBES: usize = 1 << 16;

fn user_key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k[8..].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    k
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn entries() -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rng = Rng(7);
    (0..ENTRIES)
        .map(|i| {
            let k = InternalKey::new(&user_key(2 * i), i + 1, ValueKind::Put).into_bytes();
            let v: Vec<u8> = (0..VALUE_LEN)
                .map(|_| (rng.next() % 64) as u8 + b' ')
                .collect();
            (k, v)
        })
        .collect()
}

fn build(fs: &MemFs, path: &Path, entries: &[(Vec<u8>, Vec<u8>)], options: TableOptions) {
    let mut b = TableBuilder::new(fs.create(path).unwrap(), options).unwrap();
    for (k, v) in entries {
        b.add(k, v).unwrap();
    }
    b.finish().unwrap();
}

fn open_cached(fs: &MemFs, path: &Path) -> Arc<Table> {
    let cache = Arc::new(BlockCache::new(256 << 20));
    let table = Table::open(fs.open(path).unwrap(), 1, Some(cache)).unwrap();
    // Warm the cache: every block once.
    let mut it = table.iter();
    it.seek_to_first().unwrap();
    while it.valid() {
        it.next().unwrap();
    }
    table
}

fn random_ids(seed: u64, odd: bool) -> Vec<u64> {
    let mut rng = Rng(seed);
    (0..PROBES)
        .map(|_| 2 * (rng.next() % ENTRIES) + u64::from(odd))
        .collect()
}

fn bench_build(c: &mut Criterion) {
    let entries = entries();
    let raw: u64 = entries
        .iter()
        .map(|(k, v)| (k.len() + v.len()) as u64)
        .sum();
    let mut g = c.benchmark_group("build");
    g.throughput(Throughput::Bytes(raw));
    g.sample_size(10);
    for (name, compression) in [("none", Compression::None), ("lz4", Compression::Lz4)] {
        g.bench_function(format!("200k_entries_{name}"), |b| {
            b.iter_batched(
                MemFs::new,
                |fs| {
                    let options = TableOptions {
                        compression,
                        ..TableOptions::default()
                    };
                    build(&fs, Path::new("/t.sst"), &entries, options);
                    fs
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

fn bench_reads(c: &mut Criterion) {
    let entries = entries();
    let fs = MemFs::new();
    let path = Path::new("/t.sst");
    build(&fs, path, &entries, TableOptions::default());
    let table = open_cached(&fs, path);
    let uncached = Table::open(fs.open(path).unwrap(), 2, None).unwrap();
    let hits = random_ids(1, false);
    let misses = random_ids(2, true);

    // How many misses the filter answers without reading a data block.
    let no_block = misses
        .iter()
        .filter(|&&i| {
            let (l, trace) = table.get_traced(&user_key(i), u64::MAX).unwrap();
            assert!(!l.is_final());
            trace.data_block.is_none()
        })
        .count();
    println!(
        "get miss: {no_block} of {} misses ({:.2} %) read no data block; table {} bytes, {} data blocks",
        misses.len(),
        100.0 * no_block as f64 / misses.len() as f64,
        table.file_size(),
        table.properties().data_block_count
    );

    let mut g = c.benchmark_group("get");
    g.throughput(Throughput::Elements(1));
    let mut n = 0usize;
    g.bench_function("hit_cached", |b| {
        b.iter(|| {
            n = (n + 1) % PROBES;
            black_box(table.get(&user_key(hits[n]), u64::MAX).unwrap())
        })
    });
    g.bench_function("miss_cached", |b| {
        b.iter(|| {
            n = (n + 1) % PROBES;
            black_box(table.get(&user_key(misses[n]), u64::MAX).unwrap())
        })
    });
    g.bench_function("hit_no_cache_memfs_pread", |b| {
        b.iter(|| {
            n = (n + 1) % PROBES;
            black_box(uncached.get(&user_key(hits[n]), u64::MAX).unwrap())
        })
    });
    // The floor: the same lookups in an in-memory ordered map.
    let map: BTreeMap<Vec<u8>, Bytes> = entries
        .iter()
        .map(|(k, v)| {
            (
                strata_core::key::user_key(k).to_vec(),
                Bytes::from(v.clone()),
            )
        })
        .collect();
    g.bench_function("floor_btreemap_hit", |b| {
        b.iter(|| {
            n = (n + 1) % PROBES;
            black_box(map.get(&user_key(hits[n])[..]).cloned())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("bloom");
    g.throughput(Throughput::Elements(1));
    g.bench_function("probe_absent", |b| {
        b.iter(|| {
            n = (n + 1) % PROBES;
            black_box(table.may_contain(&user_key(misses[n])))
        })
    });
    g.bench_function("probe_present", |b| {
        b.iter(|| {
            n = (n + 1) % PROBES;
            black_box(table.may_contain(&user_key(hits[n])))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("iter");
    g.throughput(Throughput::Elements(1));
    let mut it = table.iter();
    let targets: Vec<Vec<u8>> = misses
        .iter()
        .map(|&i| InternalKey::for_seek(&user_key(i), u64::MAX >> 8).into_bytes())
        .collect();
    g.bench_function("seek_cached", |b| {
        b.iter(|| {
            n = (n + 1) % PROBES;
            it.seek(&targets[n]).unwrap();
            black_box(it.valid())
        })
    });
    g.throughput(Throughput::Elements(ENTRIES));
    g.sample_size(10);
    g.bench_function("full_scan_cached", |b| {
        b.iter(|| black_box(scan_value_bytes(&table)))
    });
    g.bench_function("full_scan_uncached_memfs", |b| {
        b.iter(|| black_box(scan_value_bytes(&uncached)))
    });
    g.finish();
}

criterion_group!(benches, bench_build, bench_reads);
criterion_main!(benches);

/// Walks a whole table, summing its value bytes.
fn scan_value_bytes(table: &Arc<Table>) -> usize {
    let mut it = table.iter();
    it.seek_to_first().unwrap();
    let mut bytes = 0usize;
    while it.valid() {
        bytes += it.value().len();
        it.next().unwrap();
    }
    bytes
}
