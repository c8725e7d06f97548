//! Merge throughput of k inputs and a whole compaction job, in memory.
//!
//! Entries are 16-byte user keys (+ 8-byte trailer) with 100-byte values, db_bench's
//! default shape. The `scan_*` rows (one input, no merge) are the floor the merges are
//! read against.

// criterion's macros generate undocumented items; benchmarks may unwrap.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use strata_compaction::mem::{Table, TableIter, TableStore};
use strata_compaction::{CompactionJob, CompactionReason, CompactionTask, LevelIter, MergingIter};
use strata_core::{InternalKey, SortedIter, ValueKind, VecIter};

const VALUE_LEN: usize = 100;
const MERGE_ENTRIES: usize = 400_000;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn user_key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k[8..].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    k
}

fn entry(i: u64, seq: u64) -> (Vec<u8>, Vec<u8>) {
    (
        InternalKey::new(&user_key(i), seq, ValueKind::Put).into_bytes(),
        vec![(i % 251) as u8; VALUE_LEN],
    )
}

/// `MERGE_ENTRIES` distinct keys dealt at random to `k` sorted inputs.
fn merge_inputs(k: usize) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut inputs = vec![Vec::new(); k];
    for i in 0..MERGE_ENTRIES as u64 {
        inputs[(rng.next() % k as u64) as usize].push(entry(i, 1));
    }
    inputs
}

/// A full forward scan that reads every key's first bytes (as any consumer must).
fn scan(it: &mut impl SortedIter) -> usize {
    let mut n = 0;
    it.seek_to_first().unwrap();
    while it.valid() {
        black_box(it.key().first_chunk::<8>());
        black_box(it.value());
        n += 1;
        it.next().unwrap();
    }
    n
}

fn scan_reverse(it: &mut impl SortedIter) -> usize {
    let mut n = 0;
    it.seek_to_last().unwrap();
    while it.valid() {
        black_box(it.key().first_chunk::<8>());
        black_box(it.value());
        n += 1;
        it.prev().unwrap();
    }
    n
}

fn flat(entries: &[(Vec<u8>, Vec<u8>)]) -> TableIter {
    Arc::new(Table::from_sorted(entries.iter().map(|(k, v)| (k, v)))).iter()
}

/// Inputs are `VecIter`s (an allocation per key and value) and flat in-memory tables
/// (keys and values in one buffer, like decoded blocks). The `scan_*` rows are the
/// floor: one input holding every entry, no merge.
fn bench_merge(c: &mut Criterion) {
    let mut g = c.benchmark_group("merge");
    g.throughput(Throughput::Elements(MERGE_ENTRIES as u64));
    g.sample_size(20);

    let all = merge_inputs(1).pop().unwrap();
    g.bench_function("scan_vec", |b| {
        let mut it = VecIter::new(all.clone());
        b.iter(|| assert_eq!(scan(&mut it), MERGE_ENTRIES))
    });
    g.bench_function("scan_flat", |b| {
        let mut it = flat(&all);
        b.iter(|| assert_eq!(scan(&mut it), MERGE_ENTRIES))
    });
    drop(all);
    for k in [2usize, 4, 16] {
        let inputs = merge_inputs(k);
        g.bench_function(format!("k{k}_vec"), |b| {
            let mut it = MergingIter::new(inputs.iter().cloned().map(VecIter::new).collect());
            b.iter(|| assert_eq!(scan(&mut it), MERGE_ENTRIES))
        });
        g.bench_function(format!("k{k}_flat"), |b| {
            let mut it = MergingIter::new(inputs.iter().map(|i| flat(i)).collect());
            b.iter(|| assert_eq!(scan(&mut it), MERGE_ENTRIES))
        });
        if k == 4 {
            g.bench_function("k4_flat_boxed", |b| {
                let children: Vec<Box<dyn SortedIter + Send>> =
                    inputs.iter().map(|i| Box::new(flat(i)) as _).collect();
                let mut it = MergingIter::new(children);
                b.iter(|| assert_eq!(scan(&mut it), MERGE_ENTRIES))
            });
            g.bench_function("k4_flat_reverse", |b| {
                let mut it = MergingIter::new(inputs.iter().map(|i| flat(i)).collect());
                b.iter(|| assert_eq!(scan_reverse(&mut it), MERGE_ENTRIES))
            });
        }
    }
    g.finish();
}

/// A level-0 -> level-1 compaction: four overlapping L0 tables of overwrites and deletes
/// over an L1 of 2 MiB tables. About 36 MiB of key and value bytes.
fn job_task(store: &TableStore) -> CompactionTask {
    const L1_KEYS: u64 = 200_000;
    const L0_KEYS: u64 = 25_000;
    let mut l1 = Vec::new();
    let per_file = (2 << 20) / (24 + VALUE_LEN as u64);
    let mut i = 0;
    while i < L1_KEYS {
        let end = (i + per_file).min(L1_KEYS);
        l1.push(
            store
                .add(Table::from_sorted((i..end).map(|j| entry(j, 1))))
                .unwrap(),
        );
        i = end;
    }
    let mut rng = Rng(42);
    let mut l0 = Vec::new();
    for t in 0..4u64 {
        let mut keys: Vec<u64> = (0..L0_KEYS).map(|_| rng.next() % L1_KEYS).collect();
        keys.sort_unstable();
        keys.dedup();
        let seq = 10 + t;
        let entries = keys.into_iter().map(|k| {
            if k.is_multiple_of(10) {
                (
                    InternalKey::new(&user_key(k), seq, ValueKind::Delete).into_bytes(),
                    Vec::new(),
                )
            } else {
                entry(k, seq)
            }
        });
        l0.insert(0, store.add(Table::from_sorted(entries)).unwrap());
    }
    // user_key() sorts by its big-endian prefix, so index order is key order.
    CompactionTask {
        reason: CompactionReason::L0FileCount,
        score: 1.0,
        level: 0,
        output_level: 1,
        inputs: l0,
        output_level_inputs: l1,
        grandparents: Vec::new(),
        // A lower level covering every key, so tombstones must be kept (the common case
        // above the bottom).
        below: vec![vec![
            store
                .add(Table::from_sorted([entry(0, 0), entry(u64::MAX >> 1, 0)]))
                .unwrap(),
        ]],
        trivial_move: false,
        target_file_size_bytes: 2 << 20,
        max_grandparent_overlap_bytes: u64::MAX,
    }
}

fn bench_job(c: &mut Criterion) {
    let store = TableStore::new();
    let task = job_task(&store);
    let payload: u64 = task
        .all_inputs()
        .map(|f| store.get(f.number).unwrap().payload_bytes())
        .sum();
    let mut g = c.benchmark_group("job");
    g.throughput(Throughput::Bytes(payload));
    g.sample_size(10);
    g.bench_function("l0_to_l1_36MiB", |b| {
        b.iter_batched(
            TableStore::new,
            |mut sink| {
                let out = CompactionJob::new(&task, store.opener())
                    .run(&mut sink)
                    .unwrap();
                black_box(out.stats.output_entries);
                sink
            },
            BatchSize::PerIteration,
        )
    });
    // The floor: merging the same inputs without the rules or any writing.
    g.bench_function("l0_to_l1_merge_only", |b| {
        b.iter(|| {
            let mut children: Vec<Box<dyn SortedIter + Send>> = task
                .inputs
                .iter()
                .map(|f| Box::new(store.get(f.number).unwrap().iter()) as _)
                .collect();
            children.push(Box::new(LevelIter::new(
                task.output_level_inputs.clone(),
                store.opener(),
            )));
            black_box(scan(&mut MergingIter::new(children)))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_merge, bench_job);
criterion_main!(benches);
