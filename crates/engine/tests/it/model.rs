//! Model-based test: random operation sequences against a `BTreeMap`, across flushes,
//! compactions, snapshots, closes and drops, with merge operands and values that expire
//! on a clock the test moves.

use std::collections::BTreeMap;
use std::ops::Bound;

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use strata::{Clock, Compression, Db, ManualClock, Snapshot, WriteBatch, WriteOptions};
use strata_core::MemFs;

use crate::collect;

/// Key → what the key holds. Reads see [`visible`] at the clock's time.
type Model = BTreeMap<Vec<u8>, Entry>;

/// What a key holds: a value, or a value with an expiry and the merge operands
/// written onto it since (they fold onto the value while it lives, onto nothing once
/// it has expired).
#[derive(Clone, Debug)]
enum Entry {
    Plain(Vec<u8>),
    Expiring {
        base: Vec<u8>,
        expires_ms: u64,
        /// The operands since, concatenated; `None` if none was written (an empty
        /// operand is still one).
        operands: Option<Vec<u8>>,
    },
}

impl Entry {
    fn read(&self, now_ms: u64) -> Option<Vec<u8>> {
        match self {
            Entry::Plain(v) => Some(v.clone()),
            Entry::Expiring {
                base,
                expires_ms,
                operands,
            } => {
                if now_ms < *expires_ms {
                    Some([base.as_slice(), operands.as_deref().unwrap_or_default()].concat())
                } else {
                    // Expired: like a delete, with any operands since folded onto nothing.
                    operands.clone()
                }
            }
        }
    }
}

/// The model as reads see it at `now_ms`.
fn visible(m: &Model, now_ms: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    m.iter()
        .filter_map(|(k, e)| Some((k.clone(), e.read(now_ms)?)))
        .collect()
}

/// The clock every open of the model's database shares; ops move it.
const START_MS: u64 = 1_000_000;

#[derive(Clone, Debug)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    /// Appends to the key's value (the `Concat` merge operator).
    Merge(u8, Vec<u8>),
    /// A put that expires this many ms after it is written.
    PutTtl(u8, Vec<u8>, u64),
    /// Moves the clock forward by this many ms.
    Advance(u64),
    /// Deletes keys `[key(a), key(b))`, or through `key(b)` when the flag is set.
    DeleteRange(u8, u8, bool),
    DeletePrefix(u8),
    /// Deletes every key from `key(a)` on (a range with no end).
    DeleteFrom(u8),
    Batch(Vec<BatchOp>),
    Get(u8),
    Range(u8, u8, bool),
    Prefix(u8, bool),
    /// A range consumed from both ends, `true` = next, `false` = next_back, until the
    /// ends meet.
    BothEnds(u8, u8, Vec<bool>),
    TakeSnapshot,
    ReadSnapshot(usize, u8),
    ScanSnapshot(usize),
    DropSnapshot(usize),
    Flush,
    CompactAll,
    Close,
    DropWithoutClose,
}

#[derive(Clone, Debug)]
enum BatchOp {
    Put(u8, Vec<u8>),
    Delete(u8),
    Merge(u8, Vec<u8>),
    PutTtl(u8, Vec<u8>, u64),
    DeleteRange(u8, u8),
}

fn key(k: u8) -> Vec<u8> {
    // A small key space so keys collide, are overwritten and deleted often; some keys
    // share prefixes.
    format!("k{:02}", k % 60).into_bytes()
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => proptest::collection::vec(any::<u8>(), 300..1200),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (any::<u8>(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        8 => any::<u8>().prop_map(Op::Delete),
        10 => (any::<u8>(), value()).prop_map(|(k, v)| Op::Merge(k, v)),
        6 => (any::<u8>(), value(), 1..200u64).prop_map(|(k, v, t)| Op::PutTtl(k, v, t)),
        3 => (1..120u64).prop_map(Op::Advance),
        3 => (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(a, b, i)| Op::DeleteRange(a, b, i)),
        1 => any::<u8>().prop_map(Op::DeletePrefix),
        1 => any::<u8>().prop_map(Op::DeleteFrom),
        5 => proptest::collection::vec(prop_oneof![
                6 => (any::<u8>(), value()).prop_map(|(k, v)| BatchOp::Put(k, v)),
                2 => any::<u8>().prop_map(BatchOp::Delete),
                3 => (any::<u8>(), value()).prop_map(|(k, v)| BatchOp::Merge(k, v)),
                2 => (any::<u8>(), value(), 1..200u64).prop_map(|(k, v, t)| BatchOp::PutTtl(k, v, t)),
                1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| BatchOp::DeleteRange(a, b)),
            ], 1..6).prop_map(Op::Batch),
        10 => any::<u8>().prop_map(Op::Get),
        4 => (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(a, b, r)| Op::Range(a, b, r)),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(p, r)| Op::Prefix(p, r)),
        2 => (any::<u8>(), any::<u8>(), proptest::collection::vec(any::<bool>(), 1..80))
            .prop_map(|(a, b, s)| Op::BothEnds(a, b, s)),
        2 => Just(Op::TakeSnapshot),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, k)| Op::ReadSnapshot(i, k)),
        1 => any::<usize>().prop_map(Op::ScanSnapshot),
        1 => any::<usize>().prop_map(Op::DropSnapshot),
        1 => Just(Op::Flush),
        1 => Just(Op::CompactAll),
        1 => Just(Op::Close),
        1 => Just(Op::DropWithoutClose),
    ]
}

fn expiring(base: Vec<u8>, expires_ms: u64) -> Entry {
    Entry::Expiring {
        base,
        expires_ms,
        operands: None,
    }
}

/// Appends each operand to the value: associative, as merge operators must be.
struct Concat;

impl strata::MergeOperator for Concat {
    fn name(&self) -> &str {
        "concat"
    }

    fn merge(&self, _: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>> {
        let mut v = existing.unwrap_or_default().to_vec();
        for op in operands {
            v.extend_from_slice(op);
        }
        Some(v)
    }
}

/// The model's merge: the operand appended to the value (or to nothing).
fn model_merge(model: &mut Model, k: Vec<u8>, operand: &[u8]) {
    match model.entry(k).or_insert_with(|| Entry::Plain(Vec::new())) {
        Entry::Plain(v) => v.extend_from_slice(operand),
        Entry::Expiring { operands, .. } => operands
            .get_or_insert_with(Vec::new)
            .extend_from_slice(operand),
    }
}

fn model_range(m: &Model, now_ms: u64, lo: &[u8], hi: &[u8], rev: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut v: Vec<_> = m
        .range::<[u8], _>((Bound::Included(lo), Bound::Excluded(hi)))
        .filter_map(|(k, e)| Some((k.clone(), e.read(now_ms)?)))
        .collect();
    if rev {
        v.reverse();
    }
    v
}

/// Opens the model's database: MemTables either frozen after every write group (every
/// write is a flush) or holding many entries (the MemTable's arena grows in 64 KiB
/// chunks, so its size counts in those).
fn open(
    fs: &MemFs,
    clock: &Arc<ManualClock>,
    memtable_bytes: usize,
    compression: &[Compression],
) -> Db {
    // With more than one level's compression, level 0 waits for three tables and
    // the database counts as idle at once: idle compactions then merge two (racing
    // flushes and the other compactions) wherever the compaction thread wakes between
    // writes.
    let (l0_trigger, idle) = if compression.len() > 1 {
        (3, Some(std::time::Duration::ZERO))
    } else {
        (2, None)
    };
    crate::tiny(Db::builder("/db"))
        .l0_compaction_trigger(l0_trigger)
        .idle_compaction(idle)
        .clock(Arc::clone(clock))
        .memtable_bytes(memtable_bytes)
        .compression_per_level(compression)
        // 1 to 3 with the case's level count: the model also runs compactions split
        // into subcompactions.
        .max_subcompactions(compression.len())
        .merge_operator(Concat)
        .file_system(std::sync::Arc::new(fs.clone()))
        .open()
        .unwrap()
}

/// Compression of each level: none, LZ4 or zstd, or a mix of them down the levels.
fn compression() -> impl Strategy<Value = Vec<Compression>> {
    let mut codecs = vec![Compression::None, Compression::Lz4];
    if cfg!(feature = "zstd") {
        codecs.push(Compression::Zstd);
    }
    proptest::collection::vec(proptest::sample::select(codecs), 1..4)
}

fn run(ops: Vec<Op>, memtable_bytes: usize, compression: &[Compression]) {
    let fs = MemFs::new();
    let clock = Arc::new(ManualClock::new(START_MS));
    let open_mem = |fs: &MemFs| open(fs, &clock, memtable_bytes, compression);
    let mut db: Option<Db> = Some(open_mem(&fs));
    let mut model = Model::new();
    let mut snaps: Vec<(Snapshot, Model)> = Vec::new();
    for op in ops {
        let d = db.get_or_insert_with(|| open_mem(&fs));
        let now = clock.now_ms();
        match op {
            Op::Put(k, v) => {
                d.put(key(k), &v).unwrap();
                model.insert(key(k), Entry::Plain(v));
            }
            Op::PutTtl(k, v, ttl) => {
                d.put_with_ttl(key(k), &v, Duration::from_millis(ttl))
                    .unwrap();
                model.insert(key(k), expiring(v, now + ttl));
            }
            Op::Advance(ms) => clock.advance(ms),
            Op::Delete(k) => {
                d.delete(key(k)).unwrap();
                model.remove(&key(k));
            }
            Op::Merge(k, v) => {
                d.merge(key(k), &v).unwrap();
                model_merge(&mut model, key(k), &v);
            }
            Op::DeleteRange(a, b, inclusive) => {
                let (lo, hi) = (key(a).min(key(b)), key(a).max(key(b)));
                if inclusive {
                    d.delete_range(lo.clone()..=hi.clone()).unwrap();
                    model.retain(|k, _| !(lo <= *k && *k <= hi));
                } else {
                    d.delete_range(lo.clone()..hi.clone()).unwrap();
                    model.retain(|k, _| !(lo <= *k && *k < hi));
                }
            }
            Op::DeleteFrom(a) => {
                d.delete_range(key(a)..).unwrap();
                model.retain(|k, _| *k < key(a));
            }
            Op::DeletePrefix(p) => {
                let prefix = format!("k{}", p % 6).into_bytes();
                d.delete_prefix(&prefix).unwrap();
                model.retain(|k, _| !k.starts_with(&prefix));
            }
            Op::Batch(entries) => {
                let mut b = WriteBatch::new();
                for e in entries {
                    match e {
                        BatchOp::Put(k, v) => {
                            b.put(key(k), &v);
                            model.insert(key(k), Entry::Plain(v));
                        }
                        BatchOp::PutTtl(k, v, ttl) => {
                            b.put_with_ttl(key(k), &v, Duration::from_millis(ttl));
                            model.insert(key(k), expiring(v, now + ttl));
                        }
                        BatchOp::Delete(k) => {
                            b.delete(key(k));
                            model.remove(&key(k));
                        }
                        BatchOp::Merge(k, v) => {
                            b.merge(key(k), &v);
                            model_merge(&mut model, key(k), &v);
                        }
                        BatchOp::DeleteRange(x, y) => {
                            let (lo, hi) = (key(x).min(key(y)), key(x).max(key(y)));
                            b.delete_range(&lo, &hi);
                            model.retain(|k, _| !(lo <= *k && *k < hi));
                        }
                    }
                }
                d.write(b, WriteOptions::default()).unwrap();
            }
            Op::Get(k) => {
                assert_eq!(
                    d.get(key(k)).unwrap().map(|v| v.to_vec()),
                    model.get(&key(k)).and_then(|e| e.read(now)),
                    "get {k}"
                );
            }
            Op::Range(a, b, rev) => {
                let (lo, hi) = (key(a).min(key(b)), key(a).max(key(b)));
                let it = d.range(lo.clone()..hi.clone());
                let got = if rev { collect(it.rev()) } else { collect(it) };
                assert_eq!(got, model_range(&model, now, &lo, &hi, rev));
            }
            Op::Prefix(p, rev) => {
                let prefix = format!("k{}", p % 6).into_bytes();
                let it = d.prefix(&prefix);
                let got = if rev { collect(it.rev()) } else { collect(it) };
                let mut want: Vec<_> = visible(&model, now)
                    .into_iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .collect();
                if rev {
                    want.reverse();
                }
                assert_eq!(got, want);
            }
            Op::BothEnds(a, b, sides) => {
                let (lo, hi) = (key(a).min(key(b)), key(a).max(key(b)));
                let mut want: std::collections::VecDeque<_> =
                    model_range(&model, now, &lo, &hi, false).into();
                let mut it = d.range(lo..=hi.clone());
                if let Some(v) = model.get(&hi).and_then(|e| e.read(now)) {
                    want.push_back((hi.clone(), v));
                }
                // Cycle through the pattern until both ends are exhausted.
                for front in sides.iter().cycle().take(sides.len().max(1) * 200) {
                    let got = if *front { it.next() } else { it.next_back() };
                    let expected = if *front {
                        want.pop_front()
                    } else {
                        want.pop_back()
                    };
                    let got = got.map(|r| {
                        let (k, v) = r.unwrap();
                        (k.to_vec(), v.to_vec())
                    });
                    assert_eq!(got, expected, "front {front}");
                    if expected.is_none() {
                        break;
                    }
                }
                assert!(it.next().is_none() && it.next_back().is_none());
            }
            Op::TakeSnapshot => snaps.push((d.snapshot(), model.clone())),
            Op::ReadSnapshot(i, k) if !snaps.is_empty() => {
                let (s, m) = &snaps[i % snaps.len()];
                // A snapshot sees the writes of its time, expiring by the clock's now.
                assert_eq!(
                    s.get(key(k)).unwrap().map(|v| v.to_vec()),
                    m.get(&key(k)).and_then(|e| e.read(now))
                );
            }
            Op::ScanSnapshot(i) if !snaps.is_empty() => {
                let (s, m) = &snaps[i % snaps.len()];
                let want: Vec<_> = visible(m, now).into_iter().collect();
                assert_eq!(collect(s.iter()), want);
            }
            Op::DropSnapshot(i) if !snaps.is_empty() => {
                snaps.remove(i % snaps.len());
            }
            Op::ReadSnapshot(..) | Op::ScanSnapshot(_) | Op::DropSnapshot(_) => {}
            Op::Flush => d.flush().unwrap(),
            Op::CompactAll => d.compact_range::<&[u8], _>(..).unwrap(),
            Op::Close => {
                snaps.clear();
                db.take().unwrap().close().unwrap();
            }
            Op::DropWithoutClose => {
                snaps.clear();
                drop(db.take());
            }
        }
    }
    let d = db.get_or_insert_with(|| open_mem(&fs));
    let want: Vec<_> = visible(&model, clock.now_ms()).into_iter().collect();
    assert_eq!(collect(d.iter()), want);
    let mut rev = want.clone();
    rev.reverse();
    assert_eq!(collect(d.iter().rev()), rev);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn engine_matches_a_btreemap_model(ops in proptest::collection::vec(op(), 1..400),
                                       memtable_bytes in prop_oneof![Just(4 << 10), Just(80 << 10)],
                                       compression in compression()) {
        run(ops, memtable_bytes, &compression);
    }
}
