//! The policy and the job together on a simulated tree: flush, pick, run, install.

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_compaction::mem::TableStore;
use strata_compaction::{
    CompactionJob, CompactionPolicy, CompactionStats, FileMeta, InProgress, LeveledOptions,
    LeveledPolicy,
};
use strata_core::{InternalKey, ParsedInternalKey, SortedIter, ValueKind};

use crate::store_table;

type Levels = Vec<Vec<Arc<FileMeta>>>;

struct Tree {
    store: TableStore,
    levels: Levels,
    policy: LeveledPolicy,
    seq: u64,
    /// Sum over all jobs.
    stats: CompactionStats,
    trivial_moves: u64,
    jobs: u64,
    flushed_bytes: u64,
}

impl Tree {
    fn new(num_levels: usize) -> Self {
        Tree {
            store: TableStore::new(),
            levels: vec![Vec::new(); num_levels],
            policy: LeveledPolicy::new(LeveledOptions {
                l0_compaction_trigger: 4,
                base_level_bytes: 8 << 10,
                fanout: 4,
                dynamic_level_bytes: true,
                target_file_size_bytes: 2 << 10,
                max_grandparent_overlap_factor: 10,
                range_delete_compactions: true,
            }),
            seq: 0,
            stats: CompactionStats::default(),
            trivial_moves: 0,
            jobs: 0,
            flushed_bytes: 0,
        }
    }

    /// Flushes a "MemTable" of writes (newest per key) as a new level-0 file.
    fn flush(&mut self, writes: &[(u32, Option<u32>)]) {
        let mut mem: BTreeMap<u32, (u64, Option<u32>)> = BTreeMap::new();
        for &(k, v) in writes {
            self.seq += 1;
            mem.insert(k, (self.seq, v));
        }
        let entries = mem
            .into_iter()
            .map(|(k, (s, v))| {
                let key = k.to_be_bytes().to_vec();
                match v {
                    Some(v) => (key, s, ValueKind::Put, v.to_le_bytes().repeat(8)),
                    None => (key, s, ValueKind::Delete, Vec::new()),
                }
            })
            .collect();
        let f = store_table(&self.store, entries);
        self.flushed_bytes += f.size_bytes;
        self.levels[0].insert(0, f);
    }

    /// Runs compactions until the policy has nothing to do.
    fn settle(&mut self) {
        for _ in 0..1000 {
            let Some(task) = self.policy.pick(&self.levels, &InProgress::new()) else {
                return;
            };
            let mut sink = self.store.clone();
            let out = CompactionJob::new(&task, self.store.opener())
                .run(&mut sink)
                .unwrap();
            self.jobs += 1;
            if out.stats.trivial_move {
                self.trivial_moves += 1;
            }
            let s = &mut self.stats;
            s.input_bytes += out.stats.input_bytes;
            s.output_bytes += out.stats.output_bytes;
            s.versions_dropped += out.stats.versions_dropped;
            s.tombstones_dropped += out.stats.tombstones_dropped;
            for &(l, n) in &out.edit.deleted {
                self.levels[l].retain(|f| f.number != n);
                if !out.stats.trivial_move {
                    self.store.remove(n);
                }
            }
            for (l, f) in out.edit.added {
                self.levels[l].push(f);
            }
            for files in self.levels.iter_mut().skip(1) {
                files.sort_by(|a, b| a.smallest.cmp(&b.smallest));
                for w in files.windows(2) {
                    assert!(w[0].largest_user_key() < w[1].smallest_user_key());
                }
            }
        }
        panic!("compaction did not settle");
    }

    fn get(&self, key: u32) -> Option<Vec<u8>> {
        let target = InternalKey::for_seek(&key.to_be_bytes(), u64::MAX >> 8);
        for f in self.levels.iter().flatten() {
            if !f.may_contain_user_key(&key.to_be_bytes()) {
                continue;
            }
            let mut it = self.store.get(f.number).unwrap().iter();
            it.seek(target.as_bytes()).unwrap();
            if it.valid() {
                let p = ParsedInternalKey::parse(it.key()).unwrap();
                if p.user_key == key.to_be_bytes() {
                    return (p.kind == ValueKind::Put).then(|| it.value().to_vec());
                }
            }
        }
        None
    }

    fn bytes(&self) -> u64 {
        self.levels.iter().flatten().map(|f| f.size_bytes).sum()
    }
}

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

#[test]
fn sequential_load_is_only_trivial_moves() {
    let mut tree = Tree::new(5);
    let mut key = 0u32;
    for _ in 0..80 {
        let writes: Vec<_> = (0..40)
            .map(|_| {
                key += 1;
                (key, Some(key))
            })
            .collect();
        tree.flush(&writes);
        tree.settle();
        assert!(tree.levels[0].len() < 4);
    }
    assert!(tree.jobs > 70);
    assert_eq!(tree.trivial_moves, tree.jobs, "every compaction was a move");
    assert_eq!(tree.stats.output_bytes, 0);
    // The data spread over more than one level as the bottom grew.
    assert!(tree.levels.iter().skip(1).filter(|l| !l.is_empty()).count() >= 2);
    for k in (1..=key).step_by(97) {
        assert_eq!(tree.get(k), Some(k.to_le_bytes().repeat(8)));
    }
}

#[test]
fn random_load_stays_in_shape_and_reads_right() {
    let mut tree = Tree::new(5);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut model: BTreeMap<u32, Option<u32>> = BTreeMap::new();
    for round in 0..150 {
        let writes: Vec<_> = (0..60)
            .map(|_| {
                let k = (rng.next() % 3000) as u32;
                let v = (!rng.next().is_multiple_of(10)).then_some(round);
                (k, v)
            })
            .collect();
        for &(k, v) in &writes {
            model.insert(k, v);
        }
        tree.flush(&writes);
        tree.settle();
        assert!(tree.levels[0].len() < 4);
    }
    for (&k, v) in &model {
        assert_eq!(tree.get(k), v.map(|v| v.to_le_bytes().repeat(8)), "key {k}");
    }
    // Shape: the bottom level holds most of the data, so space stays near the live size.
    let live: u64 = model.values().filter(|v| v.is_some()).count() as u64 * (4 + 8 + 32 + 8);
    let space_amp = tree.bytes() as f64 / live as f64;
    let flushed = tree.flushed_bytes;
    let write_amp = (flushed + tree.stats.output_bytes) as f64 / flushed as f64;
    let bottom = tree
        .levels
        .last()
        .unwrap()
        .iter()
        .map(|f| f.size_bytes)
        .sum::<u64>();
    eprintln!(
        "sim: {} jobs ({} moves), space amp {space_amp:.2}, write amp {write_amp:.2}, bottom share {:.2}",
        tree.jobs,
        tree.trivial_moves,
        bottom as f64 / tree.bytes() as f64
    );
    assert!(space_amp < 1.6, "space amplification {space_amp:.2}");
    assert!(tree.stats.versions_dropped > 0 && tree.stats.tombstones_dropped > 0);
}
