//! MemTable benchmarks: Strata's arena B+tree against crossbeam-skiplist (what fjall
//! uses) and `Mutex<BTreeMap>` (the floor to beat), in the same run.
//!
//! Workload as in db_bench / `shared/design/anchors.md`: 16-byte keys (a big-endian u64
//! followed by 8 more bytes), 100-byte values, `STRATA_BENCH_N` entries (default 500k).
//! Reported: insert throughput (random and sequential order), get hit/miss, full scan,
//! and memory bytes per entry beyond the 116 bytes of key + value (printed once, counted
//! by a global allocator wrapper).

#![allow(clippy::unwrap_used, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crossbeam_skiplist::SkipMap;
use strata_core::key::pack_trailer;
use strata_core::{Lookup, SortedIter, ValueKind};
use strata_memtable::MemTable;

// ---------------------------------------------------------------- allocation counter

struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), AtomicOrdering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), AtomicOrdering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size, AtomicOrdering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), AtomicOrdering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------- the three tables

/// An internal key as fjall keeps it in its skiplist: shared user-key bytes + trailer.
#[derive(Clone, PartialEq, Eq)]
struct IKey {
    user_key: Bytes,
    trailer: u64,
}

impl Ord for IKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.user_key
            .cmp(&other.user_key)
            .then_with(|| other.trailer.cmp(&self.trailer))
    }
}

impl PartialOrd for IKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn lookup_of(found: Option<(&IKey, &Bytes)>, user_key: &[u8]) -> Lookup {
    match found {
        Some((k, v)) if k.user_key == user_key => {
            if k.trailer & 0xff == ValueKind::Put as u64 {
                Lookup::Found(v.clone())
            } else {
                Lookup::Deleted
            }
        }
        _ => Lookup::Absent,
    }
}

trait Table: Send + Sync {
    const NAME: &'static str;
    fn new() -> Self;
    fn put(&self, user_key: &[u8], seq: u64, value: &[u8]);
    fn get(&self, user_key: &[u8], snapshot: u64) -> Lookup;
    /// Visits every entry, reading the first and last byte of each key and value as a
    /// flush copying them would; returns the key and value bytes seen.
    fn scan(&self) -> usize;
}

struct Strata(Arc<MemTable>);

impl Table for Strata {
    const NAME: &'static str = "strata_btree";
    fn new() -> Self {
        Strata(Arc::new(MemTable::new()))
    }
    fn put(&self, user_key: &[u8], seq: u64, value: &[u8]) {
        self.0.insert(user_key, seq, ValueKind::Put, value).unwrap();
    }
    fn get(&self, user_key: &[u8], snapshot: u64) -> Lookup {
        self.0.get(user_key, snapshot)
    }
    fn scan(&self) -> usize {
        let mut it = self.0.iter();
        it.seek_to_first().unwrap();
        let mut n = 0;
        while it.valid() {
            n += touch(it.key()) + touch(it.value());
            it.next().unwrap();
        }
        n
    }
}

struct Skiplist(SkipMap<IKey, Bytes>);

impl Table for Skiplist {
    const NAME: &'static str = "crossbeam_skiplist";
    fn new() -> Self {
        Skiplist(SkipMap::new())
    }
    fn put(&self, user_key: &[u8], seq: u64, value: &[u8]) {
        let key = IKey {
            user_key: Bytes::copy_from_slice(user_key),
            trailer: pack_trailer(seq, ValueKind::Put),
        };
        self.0.insert(key, Bytes::copy_from_slice(value));
    }
    fn get(&self, user_key: &[u8], snapshot: u64) -> Lookup {
        let target = IKey {
            user_key: Bytes::copy_from_slice(user_key),
            trailer: pack_trailer(snapshot, ValueKind::FOR_SEEK),
        };
        let e = self.0.range(target..).next();
        lookup_of(e.as_ref().map(|e| (e.key(), e.value())), user_key)
    }
    fn scan(&self) -> usize {
        self.0
            .iter()
            .map(|e| touch(&e.key().user_key) + 8 + touch(e.value()))
            .sum()
    }
}

struct LockedBTree(Mutex<BTreeMap<IKey, Bytes>>);

impl Table for LockedBTree {
    const NAME: &'static str = "mutex_btreemap";
    fn new() -> Self {
        LockedBTree(Mutex::new(BTreeMap::new()))
    }
    fn put(&self, user_key: &[u8], seq: u64, value: &[u8]) {
        let key = IKey {
            user_key: Bytes::copy_from_slice(user_key),
            trailer: pack_trailer(seq, ValueKind::Put),
        };
        self.0
            .lock()
            .unwrap()
            .insert(key, Bytes::copy_from_slice(value));
    }
    fn get(&self, user_key: &[u8], snapshot: u64) -> Lookup {
        let target = IKey {
            user_key: Bytes::copy_from_slice(user_key),
            trailer: pack_trailer(snapshot, ValueKind::FOR_SEEK),
        };
        let map = self.0.lock().unwrap();
        lookup_of(map.range(target..).next(), user_key)
    }
    fn scan(&self) -> usize {
        let map = self.0.lock().unwrap();
        map.iter()
            .map(|(k, v)| touch(&k.user_key) + 8 + touch(v))
            .sum()
    }
}

/// The length of `b`, after reading its first and last bytes.
fn touch(b: &[u8]) -> usize {
    black_box((b.first(), b.last()));
    b.len()
}

// ---------------------------------------------------------------- workload

const VALUE_LEN: usize = 100;
const KEY_LEN: usize = 16;

fn entries() -> usize {
    std::env::var("STRATA_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500_000)
}

/// db_bench's key shape: big-endian number, padded to 16 bytes.
fn key(i: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k[8..].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    k
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Even numbers 0, 2, …, 2(n-1) in the given order (odd numbers are the misses).
fn numbers(n: usize, random: bool) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n as u64).map(|i| 2 * i).collect();
    if random {
        let mut s = 42;
        for i in (1..v.len()).rev() {
            v.swap(i, (splitmix(&mut s) % (i as u64 + 1)) as usize);
        }
    }
    v
}

fn fill<T: Table>(order: &[u64]) -> T {
    let t = T::new();
    let value = [b'v'; VALUE_LEN];
    for (seq, &i) in order.iter().enumerate() {
        t.put(&key(i), seq as u64 + 1, &value);
    }
    t
}

// ---------------------------------------------------------------- benchmarks

fn bench_insert<T: Table>(c: &mut Criterion, random: bool) {
    let n = entries();
    let order = numbers(n, random);
    let mut g = c.benchmark_group(if random {
        "insert_random"
    } else {
        "insert_sequential"
    });
    g.sample_size(10).throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::from_parameter(T::NAME), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let t = fill::<T>(&order);
                total += start.elapsed();
                drop(black_box(t));
            }
            total
        })
    });
    g.finish();
}

const LOOKUPS: usize = 1000;

fn bench_reads<T: Table>(c: &mut Criterion) {
    let n = entries();
    let order = numbers(n, true);
    let table = fill::<T>(&order);
    let hits: Vec<[u8; KEY_LEN]> = order.iter().take(LOOKUPS).map(|&i| key(i)).collect();
    let misses: Vec<[u8; KEY_LEN]> = order.iter().take(LOOKUPS).map(|&i| key(i + 1)).collect();

    let mut g = c.benchmark_group("get_hit");
    g.throughput(Throughput::Elements(LOOKUPS as u64));
    g.bench_function(BenchmarkId::from_parameter(T::NAME), |b| {
        b.iter(|| {
            for k in &hits {
                let r = table.get(k, u64::MAX >> 8);
                debug_assert!(matches!(r, Lookup::Found(_)));
                black_box(r);
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("get_miss");
    g.throughput(Throughput::Elements(LOOKUPS as u64));
    g.bench_function(BenchmarkId::from_parameter(T::NAME), |b| {
        b.iter(|| {
            for k in &misses {
                let r = table.get(k, u64::MAX >> 8);
                debug_assert!(matches!(r, Lookup::Absent));
                black_box(r);
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("scan");
    g.sample_size(10).throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::from_parameter(T::NAME), |b| {
        b.iter(|| {
            let bytes = table.scan();
            assert_eq!(bytes, n * (KEY_LEN + 8 + VALUE_LEN));
            bytes
        })
    });
    g.finish();
}

/// Bytes per entry the structure costs beyond the key and value themselves.
fn report_memory<T: Table>() {
    let n = entries();
    let order = numbers(n, true);
    let before = LIVE_BYTES.load(AtomicOrdering::Relaxed);
    let t = fill::<T>(&order);
    let after = LIVE_BYTES.load(AtomicOrdering::Relaxed);
    let per_entry = (after - before) as f64 / n as f64;
    println!(
        "memory {:<20} {:>7.1} bytes/entry, {:>6.1} beyond the {} bytes of key+value ({} entries, random order)",
        T::NAME,
        per_entry,
        per_entry - (KEY_LEN + VALUE_LEN) as f64,
        KEY_LEN + VALUE_LEN,
        n
    );
    drop(t);
}

fn memory(_: &mut Criterion) {
    report_memory::<Strata>();
    report_memory::<Skiplist>();
    report_memory::<LockedBTree>();
}

fn inserts(c: &mut Criterion) {
    for random in [true, false] {
        bench_insert::<Strata>(c, random);
        bench_insert::<Skiplist>(c, random);
        bench_insert::<LockedBTree>(c, random);
    }
}

fn reads(c: &mut Criterion) {
    bench_reads::<Strata>(c);
    bench_reads::<Skiplist>(c);
    bench_reads::<LockedBTree>(c);
}

criterion_group!(benches, memory, inserts, reads);
criterion_main!(benches);
