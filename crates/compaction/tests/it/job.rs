//! Compaction jobs against a model of the write history.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use strata_compaction::mem::{Table, TableStore};
use strata_compaction::{
    CompactionEdit, CompactionJob, CompactionPolicy, CompactionReason, CompactionTask, FileMeta,
    InProgress, LeveledOptions, LeveledPolicy, TableOpener, TableSink, TableSummary, TableWriter,
};
use strata_core::{
    FragmentedTombstones, InternalKey, MergeOperator, ParsedInternalKey, RangeTombstone, Result,
    SortedIter, ValueKind, compare_internal_keys,
};

use crate::{ik, store_table, store_table_with_ranges};

type Levels = Vec<Vec<Arc<FileMeta>>>;

/// One write; its sequence is its index + 1.
#[derive(Clone, Copy, Debug)]
enum Op {
    Put(u8),
    Delete(u8),
    /// A merge operand (the append operator below folds it).
    Merge(u8),
    /// A put expiring at the given time: before [`NOW`] (expired for every read and
    /// compaction here) or after it.
    PutExpiring(u8, u64),
    /// Deletes the user keys `[a] <= k < [b]`.
    DeleteRange(u8, u8),
}

impl Op {
    fn touches(self, key: u8) -> bool {
        match self {
            Op::Put(k) | Op::Delete(k) | Op::Merge(k) | Op::PutExpiring(k, _) => k == key,
            Op::DeleteRange(a, b) => a <= key && key < b,
        }
    }
}

fn value_of(seq: u64) -> Vec<u8> {
    format!("v{seq}").into_bytes()
}

/// The time reads and compactions judge expiring values at.
const NOW: u64 = 1_000;

/// Appends operands to the value, comma-separated: associative, and every fold's
/// order shows in the result.
struct Append;

impl MergeOperator for Append {
    fn name(&self) -> &str {
        "append"
    }

    fn merge(&self, _: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>> {
        let mut parts: Vec<&[u8]> = existing.into_iter().collect();
        parts.extend_from_slice(operands);
        Some(parts.join(&b","[..]))
    }
}

/// Folds a key's visible history, newest first: `(kind, value)` of each entry still
/// visible (the caller stops at a covering range tombstone). `None` if the newest
/// entry is not a value or operand.
fn fold_newest_first(history: impl IntoIterator<Item = (ValueKind, Vec<u8>)>) -> Option<Vec<u8>> {
    let mut operands = Vec::new();
    let mut base = None;
    for (kind, value) in history {
        match kind {
            ValueKind::Merge => operands.push(value),
            ValueKind::ExpiringPut => {
                let (expiry, v) = strata_core::expiry::split_expiring(&value).unwrap();
                if expiry > NOW {
                    base = Some(v.to_vec());
                }
                break;
            }
            ValueKind::Put => {
                base = Some(value);
                break;
            }
            ValueKind::Delete => break,
        }
    }
    if operands.is_empty() {
        return base;
    }
    operands.reverse();
    let ops: Vec<&[u8]> = operands.iter().map(|o| &o[..]).collect();
    Append.merge(b"", base.as_deref(), &ops)
}

/// What a read of `key` at `snap` returns according to the history.
fn model_get(ops: &[Op], key: u8, snap: u64) -> Option<Vec<u8>> {
    let history = ops
        .iter()
        .enumerate()
        .map(|(i, op)| (i as u64 + 1, *op))
        .filter(|(s, op)| op.touches(key) && *s <= snap)
        .rev()
        .map(|(s, op)| match op {
            Op::Put(_) => (ValueKind::Put, value_of(s)),
            Op::Merge(_) => (ValueKind::Merge, value_of(s)),
            Op::PutExpiring(_, e) => (
                ValueKind::ExpiringPut,
                strata_core::expiry::encode_expiring(e, &value_of(s)),
            ),
            Op::Delete(_) | Op::DeleteRange(..) => (ValueKind::Delete, Vec::new()),
        });
    fold_newest_first(history)
}

/// A point lookup through the levels, as the engine does it: level 0 newest first, then
/// each level; in each file the newest visible entry of the key is weighed against the
/// newest visible range tombstone covering it, and the first file that knows
/// anything decides.
///
/// A merge operand is folded with the older entries: each file's entries of the key
/// newest first, up to a put, a tombstone or a covering range tombstone.
fn lsm_get(store: &TableStore, levels: &Levels, key: u8, snap: u64) -> Option<Vec<u8>> {
    let target = InternalKey::for_seek(&[key], snap);
    let mut history = Vec::new();
    'files: for f in levels.iter().flatten() {
        if !f.may_contain_user_key(&[key]) {
            continue;
        }
        let table = store.get(f.number).unwrap();
        let cover = table.range_tombstones().covering_seq(&[key], snap);
        let mut it = table.iter();
        it.seek(target.as_bytes()).unwrap();
        while it.valid() {
            let p = ParsedInternalKey::parse(it.key()).unwrap();
            if p.user_key != [key] || cover.is_some_and(|t| t > p.seq) {
                break;
            }
            history.push((p.kind, it.value().to_vec()));
            if p.kind != ValueKind::Merge {
                break 'files;
            }
            it.next().unwrap();
        }
        if cover.is_some() {
            break;
        }
    }
    fold_newest_first(history)
}

/// Every range tombstone of `files`, together.
fn ranges_of<'a>(
    store: &TableStore,
    files: impl IntoIterator<Item = &'a Arc<FileMeta>>,
) -> FragmentedTombstones {
    let all: Vec<RangeTombstone> = files
        .into_iter()
        .flat_map(|f| {
            let t = store.get(f.number).unwrap();
            t.range_tombstones().tombstones().collect::<Vec<_>>()
        })
        .collect();
    FragmentedTombstones::new(all)
}

/// The visible state at `snap` by a full scan of every file merged, newest first.
fn lsm_scan(store: &TableStore, levels: &Levels, snap: u64) -> BTreeMap<u8, Vec<u8>> {
    let children: Vec<Box<dyn SortedIter + Send>> = levels
        .iter()
        .enumerate()
        .flat_map(|(l, files)| -> Vec<Box<dyn SortedIter + Send>> {
            if l == 0 {
                files
                    .iter()
                    .map(|f| Box::new(store.get(f.number).unwrap().iter()) as _)
                    .collect()
            } else {
                vec![Box::new(strata_compaction::LevelIter::new(
                    files.clone(),
                    store.opener(),
                ))]
            }
        })
        .collect();
    let ranges = ranges_of(store, levels.iter().flatten());
    let mut it = strata_compaction::MergingIter::new(children);
    // Each key's visible history, newest first, up to a covering range tombstone.
    let mut histories: BTreeMap<u8, Vec<(ValueKind, Vec<u8>)>> = BTreeMap::new();
    let mut cut: BTreeSet<u8> = BTreeSet::new();
    it.seek_to_first().unwrap();
    while it.valid() {
        let p = ParsedInternalKey::parse(it.key()).unwrap();
        let k = p.user_key[0];
        if p.seq <= snap && !cut.contains(&k) {
            let deleted = ranges
                .covering_seq(p.user_key, snap)
                .is_some_and(|t| t > p.seq);
            if deleted {
                cut.insert(k);
            } else {
                histories
                    .entry(k)
                    .or_default()
                    .push((p.kind, it.value().to_vec()));
            }
        }
        it.next().unwrap();
    }
    histories
        .into_iter()
        .filter_map(|(k, h)| fold_newest_first(h).map(|v| (k, v)))
        .collect()
}

fn check_reads(
    store: &TableStore,
    levels: &Levels,
    ops: &[Op],
    snapshots: &[u64],
    keys: u8,
    when: &str,
) -> std::result::Result<(), TestCaseError> {
    for &snap in snapshots.iter().chain([&strata_core::MAX_SEQUENCE]) {
        let mut want = BTreeMap::new();
        for k in 0..keys {
            let m = model_get(ops, k, snap);
            prop_assert_eq!(
                lsm_get(store, levels, k, snap),
                m.clone(),
                "{}: key {} at {}",
                when,
                k,
                snap
            );
            if let Some(v) = m {
                want.insert(k, v);
            }
        }
        prop_assert_eq!(
            lsm_scan(store, levels, snap),
            want,
            "{}: scan at {}",
            when,
            snap
        );
    }
    Ok(())
}

/// Applies an edit and checks the level invariants: deleted files existed; levels >= 1
/// are sorted with no user key in two files.
fn apply(levels: &mut Levels, edit: &CompactionEdit) -> std::result::Result<(), TestCaseError> {
    for &(l, n) in &edit.deleted {
        let before = levels[l].len();
        levels[l].retain(|f| f.number != n);
        prop_assert_eq!(levels[l].len() + 1, before, "deleting #{} from L{}", n, l);
    }
    for (l, f) in &edit.added {
        prop_assert!(*l > 0);
        levels[*l].push(Arc::clone(f));
    }
    for files in levels.iter_mut().skip(1) {
        files.sort_by(|a, b| a.smallest.cmp(&b.smallest));
        for w in files.windows(2) {
            prop_assert!(
                w[0].largest_user_key() < w[1].smallest_user_key(),
                "files overlap or split a user key: {:?} {:?}",
                w[0],
                w[1]
            );
        }
    }
    Ok(())
}

fn run(
    store: &TableStore,
    levels: &mut Levels,
    task: Option<CompactionTask>,
    snapshots: &[u64],
    subcompactions: usize,
) -> std::result::Result<(), TestCaseError> {
    let Some(task) = task else { return Ok(()) };
    let job = CompactionJob::new(&task, store.opener())
        .snapshots(snapshots)
        .range_tombstones(ranges_of(store, task.all_inputs()))
        .merge_operator(Some(Arc::new(Append)))
        .now_ms(NOW);
    let outcome = if subcompactions == 1 {
        job.run(&mut store.clone()).unwrap()
    } else {
        let mut sinks = vec![store.clone(); subcompactions];
        job.run_split(&mut sinks).unwrap()
    };
    // Outputs of a level are disjoint and in key order, however many shares wrote them.
    for w in outcome.edit.added.windows(2) {
        prop_assert!(
            w[0].1.largest_user_key() < w[1].1.smallest_user_key(),
            "outputs overlap"
        );
    }
    let s = outcome.stats;
    if !task.trivial_move {
        let inputs: u64 = task.all_inputs().map(|f| f.entries).sum();
        prop_assert_eq!(s.input_entries, inputs);
        prop_assert_eq!(
            s.input_entries,
            s.output_entries + s.versions_dropped + s.tombstones_dropped + s.range_deleted
        );
        let added: u64 = outcome.edit.added.iter().map(|(_, f)| f.entries).sum();
        prop_assert_eq!(s.output_entries, added);
        prop_assert_eq!(s.output_files as usize, outcome.edit.added.len());
        prop_assert_eq!(outcome.edit.deleted.len(), task.all_inputs().count());
    }
    apply(levels, &outcome.edit)
}

/// Splits sorted entries into files, `per_file` user keys each; each file takes the
/// range tombstones from just past the previous file's last key to just past its own
/// (the first from the start, the last to the end), as a compaction cuts them.
fn sorted_level(
    store: &TableStore,
    entries: Vec<(Vec<u8>, u64, ValueKind, Vec<u8>)>,
    ranges: FragmentedTombstones,
    per_file: usize,
) -> Vec<Arc<FileMeta>> {
    let mut by_key: BTreeMap<Vec<u8>, Vec<_>> = BTreeMap::new();
    for e in entries {
        by_key.entry(e.0.clone()).or_default().push(e);
    }
    let groups: Vec<Vec<_>> = by_key.into_values().collect();
    let chunks: Vec<_> = groups.chunks(per_file.max(1)).collect();
    if chunks.is_empty() {
        return if ranges.is_empty() {
            Vec::new()
        } else {
            vec![store_table_with_ranges(store, Vec::new(), ranges)]
        };
    }
    let mut from: Option<Vec<u8>> = None;
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let entries = c.concat();
            let to = (i + 1 < chunks.len()).then(|| {
                let last = entries.iter().map(|e| e.0.clone()).max().unwrap();
                strata_core::range_del::successor(&last)
            });
            let share = ranges.truncated(from.as_deref(), to.as_deref());
            from = to;
            store_table_with_ranges(store, entries, share)
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Scenario {
    keys: u8,
    ops: Vec<Op>,
    /// Fractions (percent) of the history in L2 and L1; the rest is in L0.
    l2_pct: usize,
    l1_pct: usize,
    l0_cuts: BTreeSet<usize>,
    per_file: usize,
    snapshots: Vec<u64>,
    ranges: [(u8, u8); 2],
    target_file_size: u64,
    gp_factor: u64,
    /// Subcompactions each job may run as (1: one share, `CompactionJob::run`).
    subcompactions: usize,
}

fn op(keys: u8) -> impl Strategy<Value = Op> {
    prop_oneof![
        14 => (0..keys).prop_map(Op::Put),
        5 => (0..keys).prop_map(Op::Delete),
        8 => (0..keys).prop_map(Op::Merge),
        4 => (0..keys, prop_oneof![900..1000u64, 1000..1100u64]).prop_map(|(k, e)| Op::PutExpiring(k, e)),
        1 => (0..keys, 0..=keys).prop_map(|(a, b)| Op::DeleteRange(a.min(b), a.max(b))),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (2..14u8).prop_flat_map(|keys| {
        (
            Just(keys),
            proptest::collection::vec(op(keys), 1..120),
            0..=100usize,
            0..=100usize,
            proptest::collection::btree_set(1..120usize, 0..5),
            1..4usize,
            proptest::collection::vec(0..125u64, 0..4),
            [(0..keys, 0..keys), (0..keys, 0..keys)],
            prop_oneof![Just(1u64), 20..400u64, Just(1 << 30)],
            0..4u64,
            1..5usize,
        )
            .prop_map(
                |(
                    keys,
                    ops,
                    a,
                    b,
                    l0_cuts,
                    per_file,
                    snapshots,
                    ranges,
                    target_file_size,
                    gp_factor,
                    subcompactions,
                )| Scenario {
                    keys,
                    ops,
                    l2_pct: a.min(b),
                    l1_pct: a.max(b) - a.min(b),
                    l0_cuts,
                    per_file,
                    snapshots,
                    ranges,
                    target_file_size,
                    gp_factor,
                    subcompactions,
                },
            )
    })
}

fn build(store: &TableStore, sc: &Scenario) -> Levels {
    let n = sc.ops.len();
    let l2_end = n * sc.l2_pct / 100;
    let l1_end = l2_end + n * sc.l1_pct / 100;
    let entries = |r: std::ops::Range<usize>| -> Vec<_> {
        r.filter_map(|i| {
            let seq = i as u64 + 1;
            match sc.ops[i] {
                Op::Put(k) => Some((vec![k], seq, ValueKind::Put, value_of(seq))),
                Op::Delete(k) => Some((vec![k], seq, ValueKind::Delete, Vec::new())),
                Op::Merge(k) => Some((vec![k], seq, ValueKind::Merge, value_of(seq))),
                Op::PutExpiring(k, e) => Some((
                    vec![k],
                    seq,
                    ValueKind::ExpiringPut,
                    strata_core::expiry::encode_expiring(e, &value_of(seq)),
                )),
                Op::DeleteRange(..) => None,
            }
        })
        .collect()
    };
    let ranges = |r: std::ops::Range<usize>| {
        FragmentedTombstones::new(r.filter_map(|i| match sc.ops[i] {
            Op::DeleteRange(a, b) => Some(RangeTombstone {
                start: vec![a],
                end: vec![b],
                seq: i as u64 + 1,
            }),
            _ => None,
        }))
    };
    let mut levels: Levels = vec![Vec::new(); 3];
    levels[2] = sorted_level(store, entries(0..l2_end), ranges(0..l2_end), sc.per_file);
    levels[1] = sorted_level(
        store,
        entries(l2_end..l1_end),
        ranges(l2_end..l1_end),
        sc.per_file,
    );
    // Level 0: contiguous runs of the newest writes, newest file first.
    let mut start = l1_end;
    for &c in sc.l0_cuts.iter().chain([&n]) {
        if c > start && c <= n {
            let (e, r) = (entries(start..c), ranges(start..c));
            if !e.is_empty() || !r.is_empty() {
                levels[0].insert(0, store_table_with_ranges(store, e, r));
            }
            start = c;
        }
    }
    levels
}

fn ordered(r: (u8, u8)) -> ([u8; 1], [u8; 1]) {
    ([r.0.min(r.1)], [r.0.max(r.1)])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::cases(2000)))]

    /// Random histories over overlapping tables in three levels, compacted partially and
    /// then fully: at every step every key reads as the history says, at every snapshot
    /// and at the latest state; at the end the bottom level holds the minimum.
    #[test]
    fn compaction_preserves_every_snapshot_view(sc in scenario()) {
        let store = TableStore::new();
        let mut levels = build(&store, &sc);
        let snaps = &sc.snapshots;
        check_reads(&store, &levels, &sc.ops, snaps, sc.keys, "before")?;
        let policy = LeveledPolicy::new(LeveledOptions {
            dynamic_level_bytes: false,
            target_file_size_bytes: sc.target_file_size,
            max_grandparent_overlap_factor: sc.gp_factor,
            ..LeveledOptions::default()
        });
        let none = InProgress::new();

        let (lo, hi) = ordered(sc.ranges[0]);
        let task = policy.pick_manual(&levels, &none, 0, &lo, &hi);
        run(&store, &mut levels, task, snaps, sc.subcompactions)?;
        check_reads(&store, &levels, &sc.ops, snaps, sc.keys, "partial L0")?;

        let (lo, hi) = ordered(sc.ranges[1]);
        let task = policy.pick_manual(&levels, &none, 1, &lo, &hi);
        run(&store, &mut levels, task, snaps, sc.subcompactions)?;
        check_reads(&store, &levels, &sc.ops, snaps, sc.keys, "partial L1")?;

        for level in 0..3 {
            let task = policy.pick_manual(&levels, &none, level, &[0], &[255]);
            run(&store, &mut levels, task, snaps, sc.subcompactions)?;
            check_reads(&store, &levels, &sc.ops, snaps, sc.keys, &format!("full L{level}"))?;
        }
        prop_assert!(levels[0].is_empty() && levels[1].is_empty());

        // Everything is in the bottom level, rewritten once in place: per user key at
        // most one entry per snapshot stripe — but for operands left unfolded over a
        // live expiring value — and no tombstone older than every snapshot.
        let mut sorted_snaps = snaps.clone();
        sorted_snaps.sort_unstable();
        sorted_snaps.dedup();
        for f in &levels[2] {
            let table = store.get(f.number).unwrap();
            let mut stripes: BTreeMap<(Vec<u8>, usize), Vec<ValueKind>> = BTreeMap::new();
            for (k, _) in table.entries() {
                let p = ParsedInternalKey::parse(k).unwrap();
                let stripe = sorted_snaps.partition_point(|&s| s < p.seq);
                stripes.entry((p.user_key.to_vec(), stripe)).or_default().push(p.kind);
            }
            for ((_, stripe), kinds) in &stripes {
                let (last, above) = kinds.split_last().unwrap();
                let over_expiring = *last == ValueKind::ExpiringPut
                    && above.iter().all(|k| *k == ValueKind::Merge);
                prop_assert!(above.is_empty() || over_expiring, "two versions in one stripe: {:?}", kinds);
                // Nothing is below the bottom: an operand there folds into a put.
                prop_assert!(!(*last == ValueKind::Merge && *stripe == 0), "unfolded operand at the bottom");
            }
            for (k, v) in table.entries() {
                let p = ParsedInternalKey::parse(k).unwrap();
                let stripe = sorted_snaps.partition_point(|&s| s < p.seq);
                prop_assert!(!(p.kind == ValueKind::Delete && stripe == 0), "droppable tombstone kept");
                // An expired value is gone from the bottom (a tombstone there would be
                // dropped, as checked above).
                if p.kind == ValueKind::ExpiringPut {
                    let (expiry, _) = strata_core::expiry::split_expiring(v).unwrap();
                    prop_assert!(expiry > NOW, "expired value kept at the bottom");
                }
            }
            for fragment in table.range_tombstones().fragments() {
                let stripes: Vec<usize> = fragment
                    .seqs()
                    .iter()
                    .map(|&s| sorted_snaps.partition_point(|&x| x < s))
                    .collect();
                prop_assert!(!stripes.contains(&0), "droppable range tombstone kept");
                prop_assert!(stripes.windows(2).all(|w| w[0] != w[1]), "two range tombstones in one stripe");
            }
            if snaps.is_empty() {
                prop_assert_eq!(f.tombstones, 0);
            }
        }
    }
}

fn put(k: &str, seq: u64) -> (Vec<u8>, u64, ValueKind, Vec<u8>) {
    (k.as_bytes().to_vec(), seq, ValueKind::Put, value_of(seq))
}

fn del(k: &str, seq: u64) -> (Vec<u8>, u64, ValueKind, Vec<u8>) {
    (k.as_bytes().to_vec(), seq, ValueKind::Delete, Vec::new())
}

fn task(
    level: usize,
    inputs: Vec<Arc<FileMeta>>,
    output_level_inputs: Vec<Arc<FileMeta>>,
) -> CompactionTask {
    CompactionTask {
        reason: CompactionReason::Manual,
        score: 0.0,
        level,
        output_level: level + 1,
        inputs,
        output_level_inputs,
        grandparents: Vec::new(),
        below: Vec::new(),
        trivial_move: false,
        target_file_size_bytes: 1 << 30,
        max_grandparent_overlap_bytes: u64::MAX,
    }
}

#[test]
fn tombstone_kept_while_an_older_version_may_exist_below() {
    let store = TableStore::new();
    let l0 = store_table(&store, vec![del("a", 9), put("b", 8)]);
    let l1 = store_table(&store, vec![put("a", 5), put("b", 4)]);
    let deeper = store_table(&store, vec![put("a", 1)]);
    let mut t = task(0, vec![l0], vec![l1]);
    t.below = vec![vec![deeper]];
    let mut sink = store.clone();
    let out = CompactionJob::new(&t, store.opener())
        .run(&mut sink)
        .unwrap();
    assert_eq!(out.stats.tombstones_dropped, 0);
    assert_eq!(out.stats.versions_dropped, 2);
    let f = &out.edit.added[0].1;
    assert_eq!((f.entries, f.tombstones), (2, 1));
    // At the bottom the same tombstone goes, with the version it shadowed.
    t.below.clear();
    let out = CompactionJob::new(&t, store.opener())
        .run(&mut sink)
        .unwrap();
    assert_eq!(out.stats.tombstones_dropped, 1);
    assert_eq!(out.stats.output_entries, 1);
}

#[test]
fn outputs_split_at_target_size_only_between_user_keys() {
    let store = TableStore::new();
    // Three versions of each of 20 keys, kept by snapshots.
    let entries: Vec<_> = (0..20u8)
        .flat_map(|k| {
            let name = format!("k{k:02}");
            (0..3u64).map(move |v| put(&name, 100 + u64::from(k) * 3 + v))
        })
        .collect();
    let snaps: Vec<u64> = (0..20u64)
        .flat_map(|k| [100 + k * 3, 100 + k * 3 + 1])
        .collect();
    let input = store_table(&store, entries);
    let mut t = task(1, vec![input], Vec::new());
    t.target_file_size_bytes = 1;
    let mut sink = store.clone();
    let out = CompactionJob::new(&t, store.opener())
        .snapshots(&snaps)
        .run(&mut sink)
        .unwrap();
    assert_eq!(out.stats.output_entries, 60);
    assert_eq!(
        out.edit.added.len(),
        20,
        "one user key per file at a 1-byte target"
    );
    for (_, f) in &out.edit.added {
        assert_eq!(f.entries, 3);
        assert_eq!(f.smallest_user_key(), f.largest_user_key());
    }
    t.target_file_size_bytes = 200; // ~2 keys' worth of 3 versions
    let out = CompactionJob::new(&t, store.opener())
        .snapshots(&snaps)
        .run(&mut sink)
        .unwrap();
    let sizes: Vec<u64> = out.edit.added.iter().map(|(_, f)| f.entries).collect();
    assert!(sizes.iter().all(|&n| n % 3 == 0), "{sizes:?}");
    assert!(out.edit.added.len() > 2 && out.edit.added.len() < 20);
}

#[test]
fn outputs_split_where_they_would_overlap_too_many_grandparents() {
    let store = TableStore::new();
    let keys: Vec<String> = (b'a'..=b'z').map(|c| (c as char).to_string()).collect();
    let input = store_table(&store, keys.iter().map(|k| put(k, 5)).collect());
    let gps: Vec<Arc<FileMeta>> = keys
        .iter()
        .skip(1)
        .step_by(2)
        .map(|k| store_table(&store, vec![put(k, 1)]))
        .collect(); // b, d, f, ..., z
    let mut t = task(1, vec![input], Vec::new());
    t.grandparents = gps.clone();
    t.below = vec![gps];
    t.max_grandparent_overlap_bytes = 0;
    let mut sink = store.clone();
    let out = CompactionJob::new(&t, store.opener())
        .run(&mut sink)
        .unwrap();
    let ranges: Vec<(Vec<u8>, Vec<u8>)> = out
        .edit
        .added
        .iter()
        .map(|(_, f)| {
            (
                f.smallest_user_key().to_vec(),
                f.largest_user_key().to_vec(),
            )
        })
        .collect();
    assert_eq!(ranges.len(), 13, "{ranges:?}");
    assert_eq!(ranges[0], (b"a".to_vec(), b"b".to_vec()));
    assert_eq!(ranges[12], (b"y".to_vec(), b"z".to_vec()));
}

#[test]
fn outputs_end_early_where_a_grandparent_ends_once_half_the_target_is_written() {
    let store = TableStore::new();
    // 40 keys of equal size; grandparents end after k09, k19 and k29.
    let key = |i: u32| format!("k{i:02}");
    let input = store_table(&store, (0..40).map(|i| put(&key(i), 5)).collect());
    let gps: Vec<Arc<FileMeta>> = [(0, 9), (10, 19), (20, 29)]
        .iter()
        .map(|&(a, b)| store_table(&store, vec![put(&key(a), 1), put(&key(b), 1)]))
        .collect();
    let mut t = task(1, vec![input], Vec::new());
    t.grandparents = gps.clone();
    t.below = vec![gps];
    let mut sink = store.clone();
    let run = |t: &CompactionTask, sink: &mut TableStore| {
        let out = CompactionJob::new(t, store.opener()).run(sink).unwrap();
        out.edit
            .added
            .iter()
            .map(|(_, f)| String::from_utf8(f.largest_user_key().to_vec()).unwrap())
            .collect::<Vec<_>>()
    };
    // Measure one key's share of a table, then aim at 16 keys per table.
    let mut one = task(
        1,
        vec![store_table(&store, vec![put("k00", 5)])],
        Vec::new(),
    );
    one.target_file_size_bytes = u64::MAX;
    let per_key = CompactionJob::new(&one, store.opener())
        .run(&mut sink)
        .unwrap()
        .stats
        .output_bytes;
    assert!(per_key > 0);
    t.target_file_size_bytes = 16 * per_key;
    // Without grandparents: cut at the target only, mid-way through their ranges.
    let mut plain = t.clone();
    plain.grandparents.clear();
    plain.below.clear();
    let ends_plain = run(&plain, &mut sink);
    assert!(
        ends_plain
            .iter()
            .all(|k| !["k09", "k19", "k29"].contains(&k.as_str())),
        "{ends_plain:?}"
    );
    // With them: 10 keys (over 55 % of 16) reach the end of the first grandparent, so
    // the table ends there; likewise at k19 and k29.
    let ends = run(&t, &mut sink);
    assert_eq!(ends, ["k09", "k19", "k29", "k39"], "{ends_plain:?}");
}

#[test]
fn trivial_move_task_rewrites_nothing() {
    let store = TableStore::new();
    let f = store_table(&store, vec![put("a", 1)]);
    let mut t = task(1, vec![Arc::clone(&f)], Vec::new());
    t.trivial_move = true;
    let mut sink = store.clone();
    let before = store.numbers();
    let out = CompactionJob::new(&t, store.opener())
        .run(&mut sink)
        .unwrap();
    assert!(out.stats.trivial_move);
    assert_eq!(out.edit.deleted, [(1, f.number)]);
    assert_eq!(out.edit.added[0].0, 2);
    assert_eq!(store.numbers(), before, "no table written");
}

// ---- corruption: a damaged input fails the job, never a smaller output ----

/// A raw iterator with no order checks, to stand in for a damaged table.
struct Raw {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    pos: Option<usize>,
}

impl SortedIter for Raw {
    fn valid(&self) -> bool {
        self.pos.is_some()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.pos = (!self.entries.is_empty()).then_some(0);
        Ok(())
    }
    fn seek_to_last(&mut self) -> Result<()> {
        self.pos = self.entries.len().checked_sub(1);
        Ok(())
    }
    fn seek(&mut self, t: &[u8]) -> Result<()> {
        let i = self
            .entries
            .iter()
            .position(|(k, _)| compare_internal_keys(k, t).is_ge());
        self.pos = i;
        Ok(())
    }
    fn next(&mut self) -> Result<()> {
        self.pos = self.pos.map(|p| p + 1).filter(|&p| p < self.entries.len());
        Ok(())
    }
    fn prev(&mut self) -> Result<()> {
        self.pos = self.pos.and_then(|p| p.checked_sub(1));
        Ok(())
    }
    fn key(&self) -> &[u8] {
        &self.entries[self.pos.unwrap()].0
    }
    fn value(&self) -> &[u8] {
        &self.entries[self.pos.unwrap()].1
    }
}

/// Compacts two good tables and a third whose contents `damage` rewrites.
fn compact_with_damage(
    damage: impl Fn(&mut Vec<(Vec<u8>, Vec<u8>)>) + Send + Sync + 'static,
) -> Result<strata_compaction::CompactionOutcome> {
    let store = TableStore::new();
    let a = store_table(&store, vec![put("a", 30), put("m", 31)]);
    let b = store_table(&store, vec![put("b", 20), put("n", 21)]);
    let c = store_table(
        &store,
        (0..10u64).map(|i| put(&format!("c{i}"), 10 - i)).collect(),
    );
    let bad = c.number;
    let good = store.opener();
    let src = store.clone();
    let opener: TableOpener = Arc::new(move |m: &FileMeta| {
        if m.number != bad {
            return good(m);
        }
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = src
            .get(m.number)
            .unwrap()
            .entries()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        damage(&mut entries);
        Ok(Box::new(Raw { entries, pos: None }) as Box<dyn SortedIter + Send>)
    });
    let t = task(0, vec![a, b, c], Vec::new());
    let mut sink = store.clone();
    CompactionJob::new(&t, opener).run(&mut sink)
}

#[test]
fn undamaged_inputs_compact() {
    let out = compact_with_damage(|_| {}).unwrap();
    assert_eq!(out.stats.output_entries, 14);
}

#[test]
fn table_missing_entries_fails_the_job() {
    let err = compact_with_damage(|e| {
        e.remove(4);
    })
    .unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains("000003.sst"), "{err}");
    let err = compact_with_damage(|e| {
        e.pop();
    })
    .unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn table_out_of_order_fails_the_job() {
    let err = compact_with_damage(|e| e.swap(3, 6)).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains("out of order"), "{err}");
}

#[test]
fn table_key_outside_its_range_fails_the_job() {
    let err = compact_with_damage(|e| e[0].0 = ik(b"a", 1, ValueKind::Put)).unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn malformed_internal_key_fails_the_job() {
    let err = compact_with_damage(|e| {
        let k = &mut e[5].0;
        let n = k.len();
        k[n - 8] = 7; // unknown kind byte
    })
    .unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains("malformed"), "{err}");
}

/// A sink whose tables silently lose their last entry.
struct LossySink(TableStore);
struct LossyWriter(strata_compaction::mem::TableBuilder, usize);

impl TableSink for LossySink {
    type Writer = LossyWriter;
    fn create(&mut self) -> Result<LossyWriter> {
        Ok(LossyWriter(self.0.create()?, 0))
    }
}

impl TableWriter for LossyWriter {
    fn add(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.1 += 1;
        if self.1 == 2 {
            Ok(())
        } else {
            self.0.add(key, value)
        }
    }
    fn add_range_tombstones(&mut self, t: &strata_core::FragmentedTombstones) -> Result<()> {
        self.0.add_range_tombstones(t)
    }
    fn estimated_size(&self) -> u64 {
        self.0.estimated_size()
    }
    fn finish(self) -> Result<TableSummary> {
        self.0.finish()
    }
}

#[test]
fn output_table_losing_entries_fails_the_job() {
    let store = TableStore::new();
    let a = store_table(&store, vec![put("a", 3), put("b", 2), put("c", 1)]);
    let t = task(1, vec![a], Vec::new());
    let err = CompactionJob::new(&t, store.opener())
        .run(&mut LossySink(store.clone()))
        .unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn l0_duplicate_internal_keys_keep_the_newer_file() {
    // Identical internal keys in two level-0 files: the newer file (first) wins.
    let store = TableStore::new();
    let newer = store
        .add(Table::from_sorted([(
            ik(b"k", 5, ValueKind::Put),
            b"new".to_vec(),
        )]))
        .unwrap();
    let older = store
        .add(Table::from_sorted([(
            ik(b"k", 5, ValueKind::Put),
            b"old".to_vec(),
        )]))
        .unwrap();
    let t = task(0, vec![newer, older], Vec::new());
    let mut sink = store.clone();
    let out = CompactionJob::new(&t, store.opener())
        .run(&mut sink)
        .unwrap();
    let table = store.get(out.edit.added[0].1.number).unwrap();
    let values: Vec<&[u8]> = table.entries().map(|(_, v)| v).collect();
    assert_eq!(values, [b"new".as_slice()]);
}

#[test]
fn policy_task_runs_end_to_end() {
    let store = TableStore::new();
    let l0: Vec<_> = (0..4u64)
        .rev()
        .map(|i| store_table(&store, vec![put("k", 10 + i), del("z", 20 + i)]))
        .collect();
    let levels: Levels = vec![l0, Vec::new(), Vec::new()];
    let policy = LeveledPolicy::default();
    let t = policy.pick(&levels, &InProgress::new()).unwrap();
    assert_eq!(
        t.output_level, 2,
        "dynamic base level of an empty tree is the bottom"
    );
    let mut sink = store.clone();
    let out = CompactionJob::new(&t, store.opener())
        .run(&mut sink)
        .unwrap();
    assert_eq!(
        out.stats.output_entries, 1,
        "only k@13 survives at the bottom"
    );
    assert_eq!(out.stats.tombstones_dropped, 1);
    assert_eq!(out.stats.versions_dropped, 6);
    assert_eq!(out.stats.input_files, 4);
}

/// A sink that counts the tables it was asked for, over a shared store.
struct CountingSink {
    store: TableStore,
    created: usize,
}

impl TableSink for CountingSink {
    type Writer = <TableStore as TableSink>::Writer;

    fn create(&mut self) -> Result<Self::Writer> {
        self.created += 1;
        self.store.create()
    }
}

#[test]
fn subcompactions_split_the_key_space_and_write_what_one_job_writes() {
    let store = TableStore::new();
    let name = |k: u32| format!("k{k:03}");
    // L1: every key, newer; L2: four files of older versions and tombstones. Key
    // "k049\0" is the first key at or past the first cut (just past "k049", the end of
    // the first L2 file): its versions in both levels must all go to the second share.
    let edge = "k049\0";
    let mut upper: Vec<_> = (0..200)
        .map(|k| put(&name(k), 1000 + u64::from(k)))
        .collect();
    upper.insert(50, put(edge, 2000));
    let l1 = store_table(&store, upper);
    let l2: Vec<_> = (0..4u32)
        .map(|f| {
            let mut entries: Vec<_> = (f * 50..f * 50 + 50)
                .map(|k| {
                    if k % 7 == 0 {
                        del(&name(k), u64::from(k) + 1)
                    } else {
                        put(&name(k), u64::from(k) + 1)
                    }
                })
                .collect();
            if f == 1 {
                entries.insert(0, put(edge, 60));
            }
            store_table(&store, entries)
        })
        .collect();
    let t = task(1, vec![l1], l2);
    let contents = |edit: &CompactionEdit| -> Vec<(Vec<u8>, Vec<u8>)> {
        edit.added
            .iter()
            .flat_map(|(_, f)| {
                let table = store.get(f.number).unwrap();
                table
                    .entries()
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let one = CompactionJob::new(&t, store.opener())
        .run(&mut store.clone())
        .unwrap();
    let mut sinks: Vec<CountingSink> = (0..4)
        .map(|_| CountingSink {
            store: store.clone(),
            created: 0,
        })
        .collect();
    let split = CompactionJob::new(&t, store.opener())
        .run_split(&mut sinks)
        .unwrap();
    // Four shares, cut at the ends of the L2 files: each sink wrote a table.
    assert_eq!(
        sinks.iter().map(|s| s.created).collect::<Vec<_>>(),
        [1, 1, 1, 1]
    );
    assert_eq!(split.edit.added.len(), 4);
    for w in split.edit.added.windows(2) {
        assert!(w[0].1.largest_user_key() < w[1].1.smallest_user_key());
    }
    assert_eq!(contents(&split.edit), contents(&one.edit));
    let edge_versions: Vec<_> = contents(&split.edit)
        .into_iter()
        .filter(|(k, _)| ParsedInternalKey::parse(k).unwrap().user_key == edge.as_bytes())
        .collect();
    assert_eq!(
        edge_versions.len(),
        1,
        "the newest version of the edge key, once"
    );
    assert_eq!(split.stats.input_entries, one.stats.input_entries);
    assert_eq!(split.stats.output_entries, one.stats.output_entries);
    assert_eq!(split.stats.versions_dropped, one.stats.versions_dropped);
    assert_eq!(split.edit.deleted, one.edit.deleted);
}
