//! The leveled policy on synthetic level shapes.

use std::sync::Arc;

use strata_compaction::{
    CompactionPolicy, CompactionReason, FileMeta, InProgress, LeveledOptions, LeveledPolicy,
};
use strata_core::{InternalKey, ValueKind};

use crate::meta;

const MIB: u64 = 1 << 20;

fn numbers(files: &[Arc<FileMeta>]) -> Vec<u64> {
    files.iter().map(|f| f.number).collect()
}

fn static_policy() -> LeveledPolicy {
    LeveledPolicy::new(LeveledOptions {
        dynamic_level_bytes: false,
        base_level_bytes: 10 * MIB,
        target_file_size_bytes: 2 * MIB,
        ..LeveledOptions::default()
    })
}

/// Within 0.1 % (targets are divided down and multiplied back up in integers).
fn approx(target: Option<u64>, want: u64) -> bool {
    target.is_some_and(|t| t.abs_diff(want) <= want / 1000)
}

fn empty_levels(n: usize) -> Vec<Vec<Arc<FileMeta>>> {
    vec![Vec::new(); n]
}

#[test]
fn l0_triggers_at_four_files_and_takes_every_overlapping_one() {
    let p = static_policy();
    let mut levels = empty_levels(4);
    // Newest first. 13 overlaps 11 only through 12; 14 overlaps nothing.
    levels[0] = vec![
        meta(14, "x", "z", MIB),
        meta(13, "a", "c", MIB),
        meta(12, "c", "f", MIB),
    ];
    levels[1] = vec![
        meta(1, "a", "b", MIB),
        meta(2, "e", "g", MIB),
        meta(3, "h", "k", MIB),
    ];
    assert!(
        p.pick(&levels, &InProgress::new()).is_none(),
        "3 files < trigger"
    );
    assert_eq!(p.scores(&levels, &InProgress::new())[0].score, 0.75);

    levels[0].push(meta(11, "f", "h", MIB));
    let t = p.pick(&levels, &InProgress::new()).unwrap();
    assert_eq!(t.reason, CompactionReason::L0FileCount);
    assert_eq!((t.level, t.output_level), (0, 1));
    // Seeded by the oldest (11), expanded transitively to 12 and 13, newest first.
    assert_eq!(numbers(&t.inputs), [13, 12, 11]);
    // L1 files overlapping [a, h].
    assert_eq!(numbers(&t.output_level_inputs), [1, 2, 3]);
    assert!(!t.trivial_move);
}

#[test]
fn lone_l0_file_without_overlap_below_moves_trivially() {
    let p = static_policy();
    let mut levels = empty_levels(4);
    levels[0] = vec![
        meta(14, "d", "d", MIB),
        meta(13, "c", "c", MIB),
        meta(12, "b", "b", MIB),
        meta(11, "a", "a", MIB),
    ];
    levels[1] = vec![meta(1, "m", "n", MIB)];
    let t = p.pick(&levels, &InProgress::new()).unwrap();
    assert_eq!(numbers(&t.inputs), [11]);
    assert!(t.trivial_move);
    let edit = t.trivial_move_edit();
    assert_eq!(edit.deleted, [(0, 11)]);
    assert_eq!(edit.added.len(), 1);
    assert_eq!((edit.added[0].0, edit.added[0].1.number), (1, 11));
}

#[test]
fn trivial_move_refused_when_grandparent_overlap_is_large() {
    let p = static_policy(); // limit: 10 * 2 MiB of grandparents
    let mut levels = empty_levels(4);
    levels[1] = vec![meta(1, "c", "x", 30 * MIB)]; // 3x its 10 MiB target
    levels[2] = vec![meta(2, "a", "b", 11 * MIB), meta(4, "y", "z", 10 * MIB)];
    let t = p.pick(&levels, &InProgress::new()).unwrap();
    assert_eq!((t.level, t.output_level), (1, 2));
    assert!(t.output_level_inputs.is_empty(), "L2 has nothing in [c, x]");
    assert!(t.trivial_move);
    levels[3] = vec![meta(3, "a", "z", 5 * MIB)];
    let t = p.pick(&levels, &InProgress::new()).unwrap();
    assert_eq!(numbers(&t.grandparents), [3]);
    assert!(t.trivial_move, "5 MiB of grandparents is within 20 MiB");
    levels[3] = vec![meta(3, "a", "z", 21 * MIB)];
    let t = p.pick(&levels, &InProgress::new()).unwrap();
    assert!(t.output_level_inputs.is_empty());
    assert!(!t.trivial_move, "21 MiB of grandparents > 20 MiB");
}

#[test]
fn most_urgent_level_goes_first_and_l0_wins_ties() {
    let p = static_policy();
    let mut levels = empty_levels(4);
    levels[0] = (0..4).map(|i| meta(20 + i, "a", "b", MIB)).collect(); // score 1.0
    levels[1] = vec![meta(1, "a", "c", 15 * MIB)]; // score 1.5
    let t = p.pick(&levels, &InProgress::new()).unwrap();
    assert_eq!(t.level, 1);
    assert_eq!(t.reason, CompactionReason::LevelSize);
    levels[1] = vec![meta(1, "a", "c", 10 * MIB)]; // score 1.0
    assert_eq!(p.pick(&levels, &InProgress::new()).unwrap().level, 0);
    let s = p.scores(&levels, &InProgress::new());
    assert_eq!(s.len(), 4);
    assert_eq!(s[1].target_bytes, Some(10 * MIB));
    assert_eq!(s[2].target_bytes, Some(100 * MIB));
    assert_eq!(s[3].score, 0.0, "the last level is never a source");
}

#[test]
fn level_file_choice_minimises_next_level_overlap() {
    let p = static_policy();
    let mut levels = empty_levels(4);
    levels[1] = vec![
        meta(1, "a", "c", 10 * MIB),
        meta(2, "d", "f", 10 * MIB),
        meta(3, "g", "i", 10 * MIB),
    ];
    levels[2] = vec![
        meta(10, "a", "b", 8 * MIB),
        meta(11, "c", "d", 8 * MIB),
        meta(12, "e", "e", MIB),
        meta(13, "h", "h", 2 * MIB),
    ];
    levels[3] = vec![meta(30, "a", "z", MIB)];
    // Overlap ratios: #1 -> 16/10, #2 -> 9/10, #3 -> 2/10.
    let t = p.pick(&levels, &InProgress::new()).unwrap();
    assert_eq!(numbers(&t.inputs), [3]);
    assert_eq!(numbers(&t.output_level_inputs), [13]);
    assert_eq!(numbers(&t.grandparents), [30]);
    assert_eq!(t.below.len(), 1);
    assert!(!t.is_bottommost());
    // With #3 busy, the next best.
    let mut busy = InProgress::new();
    busy.add(&t);
    let t2 = p.pick(&levels, &busy).unwrap();
    assert_eq!(numbers(&t2.inputs), [2]);
    assert_eq!(numbers(&t2.output_level_inputs), [11, 12]);
    busy.add(&t2);
    // #1 overlaps #11, which t2 holds: nothing left.
    assert!(p.pick(&levels, &busy).is_none());
    busy.remove(&t2);
    busy.remove(&t);
    assert!(busy.is_empty());
}

#[test]
fn inputs_sharing_a_boundary_user_key_are_taken_together() {
    let p = static_policy();
    let mut levels = empty_levels(3);
    let split = |n, lo: &str, lo_seq, hi: &str, hi_seq, size| {
        Arc::new(FileMeta {
            number: n,
            size_bytes: size,
            smallest: InternalKey::new(lo.as_bytes(), lo_seq, ValueKind::Put),
            largest: InternalKey::new(hi.as_bytes(), hi_seq, ValueKind::Put),
            smallest_seq: 1,
            largest_seq: 9,
            entries: 2,
            tombstones: 0,
            range_tombstones: 0,
        })
    };
    // "k"@5 ends #1 and "k"@3 starts #2: one user key's versions across two files.
    levels[1] = vec![
        split(1, "a", 9, "k", 5, 11 * MIB),
        split(2, "k", 3, "p", 1, MIB),
        split(3, "q", 9, "z", 1, MIB),
    ];
    let t = p.pick(&levels, &InProgress::new()).unwrap();
    assert_eq!(numbers(&t.inputs), [1, 2]);
}

#[test]
fn busy_files_and_running_outputs_are_avoided() {
    let p = static_policy();
    let mut levels = empty_levels(3);
    levels[0] = vec![
        meta(24, "a", "c", MIB),
        meta(23, "b", "d", MIB),
        meta(22, "x", "y", MIB),
        meta(21, "c", "e", MIB),
    ];
    let first = p.pick(&levels, &InProgress::new()).unwrap();
    assert_eq!(numbers(&first.inputs), [24, 23, 21]);
    let mut running = InProgress::new();
    running.add(&first);
    // Busy files do not count toward the trigger any more.
    assert_eq!(p.scores(&levels, &running)[0].score, 0.25);
    levels[0].insert(0, meta(27, "p", "q", MIB));
    levels[0].insert(0, meta(26, "m", "n", MIB));
    levels[0].insert(0, meta(25, "b", "b", MIB)); // overlaps the running compaction
    let second = p.pick(&levels, &running).unwrap();
    assert_eq!(
        numbers(&second.inputs),
        [22],
        "oldest idle seed that is free"
    );
    running.add(&second);
    // Three idle files remain: under the trigger.
    assert!(p.pick(&levels, &running).is_none());
    // A manual compaction of [b, b] expands to the busy files and is refused.
    assert!(p.pick_manual(&levels, &running, 0, b"b", b"b").is_none());
    // A running compaction writing L1 [a, e] blocks an L1 trivial move into that range.
    let mut out = InProgress::new();
    out.add(&first);
    assert!(out.output_overlaps(1, b"e", b"f"));
    assert!(!out.output_overlaps(1, b"f", b"g"));
    assert!(!out.output_overlaps(2, b"a", b"z"));
}

#[test]
fn dynamic_targets_follow_the_bottom_level() {
    let p = LeveledPolicy::new(LeveledOptions::default()); // 256 MiB base, fanout 10
    let mut levels = empty_levels(7);
    let t = p.level_targets(&levels);
    assert_eq!(
        t.base_level, 6,
        "an empty tree compacts L0 straight to the bottom"
    );

    levels[6] = vec![meta(1, "a", "z", 1024 * MIB)];
    let t = p.level_targets(&levels);
    assert_eq!(t.base_level, 5);
    assert_eq!(t.target_bytes[..5], [None; 5]);
    assert_eq!(
        t.target_bytes[5],
        Some(256 * MIB),
        "102 MiB raised to the base floor"
    );
    assert!(approx(t.target_bytes[6], 1024 * MIB));

    levels[6] = vec![meta(1, "a", "z", 100 * 1024 * MIB)];
    let t = p.level_targets(&levels);
    // 100 GiB -> 10 GiB -> 1 GiB -> 102 MiB: base level 3.
    assert_eq!(t.base_level, 3);
    assert_eq!(t.target_bytes[3], Some(256 * MIB));
    assert!(approx(t.target_bytes[4], 1024 * MIB));
    assert!(approx(t.target_bytes[5], 10 * 1024 * MIB));
    assert!(approx(t.target_bytes[6], 100 * 1024 * MIB));

    // L0 goes to the base level, and levels above it have no target.
    levels[0] = (0..4).map(|i| meta(20 + i, "a", "b", MIB)).collect();
    levels[3] = vec![meta(2, "a", "c", 10 * MIB)];
    let task = p.pick(&levels, &InProgress::new()).unwrap();
    assert_eq!((task.level, task.output_level), (0, 3));
    assert_eq!(numbers(&task.output_level_inputs), [2]);
    assert_eq!(task.below.len(), 3);
    let s = p.scores(&levels, &InProgress::new());
    assert_eq!(s[1].target_bytes, None);

    // A small tree with more levels than it needs keeps its base at the first
    // non-empty level, at the smallest base target.
    let mut small = empty_levels(7);
    small[2] = vec![meta(1, "a", "z", MIB)];
    small[6] = vec![meta(2, "a", "z", 10 * MIB)];
    let t = p.level_targets(&small);
    assert_eq!(t.base_level, 2);
    assert_eq!(t.target_bytes[2], Some(256 * MIB));
}

#[test]
fn static_targets_grow_by_the_fanout_from_level_one() {
    let p = static_policy();
    let levels = empty_levels(5);
    let t = p.level_targets(&levels);
    assert_eq!(t.base_level, 1);
    assert_eq!(
        t.target_bytes,
        [
            None,
            Some(10 * MIB),
            Some(100 * MIB),
            Some(1000 * MIB),
            Some(10000 * MIB)
        ]
    );
}

#[test]
fn manual_compaction_of_the_last_level_rewrites_in_place() {
    let p = static_policy();
    let mut levels = empty_levels(3);
    levels[2] = vec![
        meta(1, "a", "c", MIB),
        meta(2, "d", "f", MIB),
        meta(3, "g", "i", MIB),
    ];
    let t = p
        .pick_manual(&levels, &InProgress::new(), 2, b"b", b"e")
        .unwrap();
    assert_eq!((t.level, t.output_level), (2, 2));
    assert_eq!(numbers(&t.inputs), [1, 2]);
    assert!(t.output_level_inputs.is_empty());
    assert!(!t.trivial_move);
    assert!(t.is_bottommost());
    assert!(
        p.pick_manual(&levels, &InProgress::new(), 1, b"a", b"z")
            .is_none()
    );
}

/// A level-0 table with range tombstones over keys deeper levels hold goes down at once
/// (with the level-0 tables it overlaps), though level 0 is under its trigger; one whose
/// tombstones cover nothing below, or a tree over target, is left to the usual rules.
#[test]
fn a_level0_table_with_range_tombstones_over_deeper_keys_goes_down_at_once() {
    let p = static_policy();
    let with_ranges = |number, lo, hi| {
        let mut m = (*meta(number, lo, hi, MIB)).clone();
        m.range_tombstones = 3;
        Arc::new(m)
    };
    let mut levels = empty_levels(4);
    levels[1] = vec![meta(1, "a", "b", MIB), meta(2, "m", "p", MIB)];
    // Over keys no other table holds: nothing to gain.
    levels[0] = vec![with_ranges(10, "x", "z"), meta(9, "c", "d", MIB)];
    assert!(p.pick(&levels, &InProgress::new()).is_none());
    // Over an older level-0 table's keys only.
    levels[0] = vec![with_ranges(10, "x", "z"), meta(9, "y", "y", MIB)];
    let t = p.pick(&levels, &InProgress::new()).unwrap();
    assert_eq!(t.reason, CompactionReason::RangeDeletes);
    assert_eq!(numbers(&t.inputs), [10, 9]);
    // Over L1's `m..p`, beside an L0 table it overlaps.
    levels[0] = vec![with_ranges(11, "k", "n"), meta(10, "n", "o", MIB)];
    let t = p.pick(&levels, &InProgress::new()).unwrap();
    assert_eq!(t.reason, CompactionReason::RangeDeletes);
    assert_eq!((t.level, t.output_level), (0, 1));
    assert_eq!(numbers(&t.inputs), [11, 10]);
    assert_eq!(numbers(&t.output_level_inputs), [2]);
    // Busy: not picked twice.
    let mut busy = InProgress::new();
    busy.add(&t);
    assert!(p.pick(&levels, &busy).is_none());
}
