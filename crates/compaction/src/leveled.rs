//! The leveled compaction policy.
//!
//! - **Level 0** is compacted when it holds `l0_compaction_trigger` files. Its files
//!   overlap, so the task takes the oldest idle file and every L0 file overlapping it,
//!   transitively (a newer version must never land below an older one).
//! - **Deeper levels** have size targets growing by `fanout` per level; the level most
//!   over its target goes first. Within a level the file whose compaction rewrites the
//!   fewest next-level bytes per byte it moves down is chosen (RocksDB's
//!   `kMinOverlappingRatio`), which also prefers files with no overlap at all.
//! - Every task takes the overlapping files of the output level. A file with none moves
//!   down by a version edit alone (a **trivial move**) unless it would overlap too much
//!   of the level after next; this is what keeps sequential loads nearly free.
//! - **Dynamic level sizes** (RocksDB's `level_compaction_dynamic_level_bytes`): targets
//!   are derived from the size of the largest (bottom) level, dividing by the fanout per
//!   level up; the first level whose target would fall below `base_level_bytes` is the
//!   *base level*, which level 0 compacts into directly, and the levels above it stay
//!   empty. The bottom level then holds ~90 % of the data, so space amplification stays
//!   near 1.11 however big the database grows, and a small database has few levels.

use std::sync::Arc;

use crate::file_meta::user_key_range;
use crate::{
    CompactionPolicy, CompactionReason, CompactionTask, FileMeta, InProgress, LevelScore, Levels,
};

/// Tuning of [`LeveledPolicy`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeveledOptions {
    /// Level-0 file count that triggers a compaction. Default 4.
    pub l0_compaction_trigger: usize,
    /// Target size of the base level (level 1 when targets are static). Default
    /// 256 MiB, as RocksDB's `max_bytes_for_level_base`.
    pub base_level_bytes: u64,
    /// Growth of the targets from one level to the next. Default 10.
    pub fanout: u64,
    /// Derive targets from the bottom level's size. Default true.
    pub dynamic_level_bytes: bool,
    /// Compaction outputs are cut at about this size. Default 64 MiB.
    pub target_file_size_bytes: u64,
    /// An output file is also cut once it overlaps this many target file sizes of the
    /// level after next, and a trivial move is refused beyond it. Default 10.
    pub max_grandparent_overlap_factor: u64,
    /// With nothing over target, compact a level-0 table whose range tombstones cover
    /// other tables' keys down at once (`CompactionReason::RangeDeletes`). Default true.
    pub range_delete_compactions: bool,
}

impl Default for LeveledOptions {
    fn default() -> Self {
        LeveledOptions {
            l0_compaction_trigger: 4,
            base_level_bytes: 256 << 20,
            fanout: 10,
            dynamic_level_bytes: true,
            target_file_size_bytes: 64 << 20,
            max_grandparent_overlap_factor: 10,
            range_delete_compactions: true,
        }
    }
}

/// The size target of every level, as computed from the current shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelTargets {
    /// The level that level 0 compacts into.
    pub base_level: usize,
    /// Per level: its target in bytes; `None` for level 0 and for the (empty) levels
    /// between level 0 and the base level.
    pub target_bytes: Vec<Option<u64>>,
}

/// The leveled policy (LevelDB's, with RocksDB's dynamic level sizes and file choice).
#[derive(Clone, Debug, Default)]
pub struct LeveledPolicy {
    options: LeveledOptions,
}

fn level_bytes(files: &[Arc<FileMeta>]) -> u64 {
    files.iter().map(|f| f.size_bytes).sum()
}

/// The files of a sorted level overlapping the user-key range `[lo, hi]`.
fn overlapping<'a>(files: &'a [Arc<FileMeta>], lo: &[u8], hi: &[u8]) -> &'a [Arc<FileMeta>] {
    let start = files.partition_point(|f| f.largest_user_key() < lo);
    let rest = files.get(start..).unwrap_or_default();
    let len = rest.partition_point(|f| f.smallest_user_key() <= hi);
    rest.get(..len).unwrap_or_default()
}

/// The files of a sorted level overlapping `[lo, hi]`, widened until the set is closed:
/// neighbours sharing a boundary user key come along, so no user key's versions are
/// split between a compacted and an uncompacted file.
fn clean_cut(files: &[Arc<FileMeta>], lo: &[u8], hi: &[u8]) -> Vec<Arc<FileMeta>> {
    let mut set = overlapping(files, lo, hi);
    loop {
        let Some((a, b)) = user_key_range(set.iter().map(|f| &**f)) else {
            return Vec::new();
        };
        let wider = overlapping(files, a, b);
        if wider.len() == set.len() {
            return set.to_vec();
        }
        set = wider;
    }
}

/// Level-0 files overlapping `[lo, hi]` or, transitively, each other, newest first.
fn expand_l0(l0: &[Arc<FileMeta>], lo: &[u8], hi: &[u8]) -> Vec<Arc<FileMeta>> {
    let (mut lo, mut hi) = (lo.to_vec(), hi.to_vec());
    loop {
        let set: Vec<Arc<FileMeta>> = l0
            .iter()
            .filter(|f| f.overlaps_user_range(&lo, &hi))
            .cloned()
            .collect();
        let Some((a, b)) = user_key_range(set.iter().map(|f| &**f)) else {
            return set;
        };
        if a >= lo.as_slice() && b <= hi.as_slice() {
            return set;
        }
        lo = lo.min(a.to_vec());
        hi = hi.max(b.to_vec());
    }
}

impl LeveledPolicy {
    /// A policy with these options.
    pub fn new(options: LeveledOptions) -> Self {
        LeveledPolicy { options }
    }

    /// The options in force.
    pub fn options(&self) -> &LeveledOptions {
        &self.options
    }

    fn fanout(&self) -> u64 {
        self.options.fanout.max(2)
    }

    /// The base level and each level's size target for the current shape. `levels.len()`
    /// is the number of levels (at least 2).
    pub fn level_targets(&self, levels: &Levels) -> LevelTargets {
        let n = levels.len().max(2);
        let last = n - 1;
        let fanout = self.fanout();
        let base_max = self.options.base_level_bytes.max(1);
        let mut target_bytes = vec![None; n];

        let (base_level, base_size) = if !self.options.dynamic_level_bytes {
            (1, base_max)
        } else {
            let sizes: Vec<u64> = (0..n)
                .map(|l| levels.get(l).map_or(0, |f| level_bytes(f)))
                .collect();
            let first_non_empty = (1..n).find(|&l| sizes[l] > 0);
            match first_non_empty {
                // An empty tree: level 0 compacts straight into the bottom level.
                None => (last, base_max),
                Some(first) => {
                    let max_size = sizes.iter().skip(1).copied().max().unwrap_or(0);
                    let base_min = base_max / fanout;
                    // The target of `first` if the bottom level's target were its size.
                    let mut cur = max_size;
                    for _ in first..last {
                        cur /= fanout;
                    }
                    if cur <= base_min {
                        // More levels hold data than the size needs; keep them, with the
                        // smallest base target (the fanout is not met below them).
                        (first, base_min + 1)
                    } else {
                        let mut base = first;
                        while base > 1 && cur > base_max {
                            base -= 1;
                            cur /= fanout;
                        }
                        (base, cur.clamp(1, base_max))
                    }
                }
            }
        };

        let mut size = base_size;
        for (l, t) in target_bytes.iter_mut().enumerate().skip(base_level) {
            if l > base_level {
                size = size.saturating_mul(fanout);
            }
            // Never below the base target: a level smaller than level 0's compactions
            // would win the scoring and starve level 0 (RocksDB learned this).
            *t = Some(size.max(base_max));
        }
        LevelTargets {
            base_level,
            target_bytes,
        }
    }

    fn scores_with(
        &self,
        levels: &Levels,
        in_progress: &InProgress,
        targets: &LevelTargets,
    ) -> Vec<LevelScore> {
        let last = levels.len().saturating_sub(1);
        levels
            .iter()
            .enumerate()
            .map(|(level, files)| {
                let idle = files.iter().filter(|f| !in_progress.is_busy(f.number));
                let target = targets.target_bytes.get(level).copied().flatten();
                let score = if level == last {
                    // The bottom level has nowhere to go.
                    0.0
                } else if level == 0 {
                    idle.count() as f64 / self.options.l0_compaction_trigger.max(1) as f64
                } else {
                    match target {
                        Some(t) => idle.map(|f| f.size_bytes).sum::<u64>() as f64 / t as f64,
                        None => 0.0,
                    }
                };
                LevelScore {
                    level,
                    score,
                    files: files.len(),
                    size_bytes: level_bytes(files),
                    target_bytes: target,
                }
            })
            .collect()
    }

    fn max_grandparent_overlap_bytes(&self) -> u64 {
        self.options
            .target_file_size_bytes
            .saturating_mul(self.options.max_grandparent_overlap_factor)
    }

    /// Completes a task from its `level` inputs, or `None` if it collides with a running
    /// compaction.
    #[allow(clippy::too_many_arguments)]
    fn build_task(
        &self,
        levels: &Levels,
        in_progress: &InProgress,
        level: usize,
        output_level: usize,
        inputs: Vec<Arc<FileMeta>>,
        reason: CompactionReason,
        score: f64,
    ) -> Option<CompactionTask> {
        if inputs.is_empty() || inputs.iter().any(|f| in_progress.is_busy(f.number)) {
            return None;
        }
        let (lo, hi) = user_key_range(inputs.iter().map(|f| &**f))?;
        let output_level_inputs = if output_level == level {
            Vec::new()
        } else {
            clean_cut(levels.get(output_level)?, lo, hi)
        };
        if output_level_inputs
            .iter()
            .any(|f| in_progress.is_busy(f.number))
        {
            return None;
        }
        let (lo, hi) = user_key_range(inputs.iter().chain(&output_level_inputs).map(|f| &**f))?;
        if in_progress.output_overlaps(output_level, lo, hi) {
            return None;
        }
        let below: Vec<Vec<Arc<FileMeta>>> = levels
            .iter()
            .skip(output_level + 1)
            .map(|files| overlapping(files, lo, hi).to_vec())
            .collect();
        let grandparents = below.first().cloned().unwrap_or_default();
        let max_gp = self.max_grandparent_overlap_bytes();
        let trivial_move = output_level != level
            && output_level_inputs.is_empty()
            && (level != 0 || inputs.len() == 1)
            && level_bytes(&grandparents) <= max_gp;
        Some(CompactionTask {
            reason,
            score,
            level,
            output_level,
            inputs,
            output_level_inputs,
            grandparents,
            below,
            trivial_move,
            target_file_size_bytes: self.options.target_file_size_bytes,
            max_grandparent_overlap_bytes: max_gp,
        })
    }

    fn pick_l0(
        &self,
        levels: &Levels,
        in_progress: &InProgress,
        targets: &LevelTargets,
        score: f64,
    ) -> Option<CompactionTask> {
        let l0 = levels.first()?;
        // Oldest first: the oldest file must leave level 0 before any newer one that
        // overlaps it, and expansion takes those along anyway.
        for seed in l0.iter().rev().filter(|f| !in_progress.is_busy(f.number)) {
            let inputs = expand_l0(l0, seed.smallest_user_key(), seed.largest_user_key());
            let task = self.build_task(
                levels,
                in_progress,
                0,
                targets.base_level,
                inputs,
                CompactionReason::L0FileCount,
                score,
            );
            if task.is_some() {
                return task;
            }
        }
        None
    }

    /// With nothing over target: a level-0 table holding range tombstones over keys
    /// another table holds (an older level-0 one, or deeper) goes down at once (with the
    /// level-0 tables it overlaps), so the keys it deletes leave the tree now rather than when level 0
    /// next fills up. Pebble compacts for range-deletion density the same way. Tables
    /// the tombstones cover entirely are deleted before this runs (the engine's
    /// delete-only pass), so the compaction rewrites only the partly covered ones.
    fn pick_range_deletes(
        &self,
        levels: &Levels,
        in_progress: &InProgress,
        targets: &LevelTargets,
    ) -> Option<CompactionTask> {
        if !self.options.range_delete_compactions {
            return None;
        }
        let l0 = levels.first()?;
        let deeper = levels.get(1..).unwrap_or_default();
        let seeds = l0
            .iter()
            .rev()
            .filter(|f| f.range_tombstones > 0 && !in_progress.is_busy(f.number));
        for seed in seeds {
            let (lo, hi) = (seed.smallest_user_key(), seed.largest_user_key());
            let inputs = expand_l0(l0, lo, hi);
            // Keys the tombstones may delete: in another level-0 table, or deeper.
            let covers_keys = inputs.len() > 1
                || deeper
                    .iter()
                    .any(|files| !overlapping(files, lo, hi).is_empty());
            if !covers_keys {
                continue;
            }
            let task = self.build_task(
                levels,
                in_progress,
                0,
                targets.base_level,
                inputs,
                CompactionReason::RangeDeletes,
                0.0,
            );
            if task.is_some() {
                return task;
            }
        }
        None
    }

    fn pick_sorted_level(
        &self,
        levels: &Levels,
        in_progress: &InProgress,
        level: usize,
        score: f64,
    ) -> Option<CompactionTask> {
        let files = levels.get(level)?;
        let next = levels.get(level + 1)?;
        // (overlap ratio, position): smallest ratio first, then key order.
        let mut candidates: Vec<(f64, usize)> = files
            .iter()
            .enumerate()
            .filter(|(_, f)| !in_progress.is_busy(f.number))
            .map(|(i, f)| {
                let over = level_bytes(overlapping(
                    next,
                    f.smallest_user_key(),
                    f.largest_user_key(),
                ));
                (over as f64 / f.size_bytes.max(1) as f64, i)
            })
            .collect();
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (_, i) in candidates {
            let f = &files[i];
            let inputs = clean_cut(files, f.smallest_user_key(), f.largest_user_key());
            let task = self.build_task(
                levels,
                in_progress,
                level,
                level + 1,
                inputs,
                CompactionReason::LevelSize,
                score,
            );
            if task.is_some() {
                return task;
            }
        }
        None
    }
}

impl CompactionPolicy for LeveledPolicy {
    fn pick(&self, levels: &Levels, in_progress: &InProgress) -> Option<CompactionTask> {
        let targets = self.level_targets(levels);
        let mut scores = self.scores_with(levels, in_progress, &targets);
        scores.retain(|s| s.score >= 1.0);
        // Most urgent first; on a tie the upper level (level 0 stalls writers).
        scores.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.level.cmp(&b.level)));
        scores
            .into_iter()
            .find_map(|s| {
                if s.level == 0 {
                    self.pick_l0(levels, in_progress, &targets, s.score)
                } else {
                    self.pick_sorted_level(levels, in_progress, s.level, s.score)
                }
            })
            .or_else(|| self.pick_range_deletes(levels, in_progress, &targets))
    }

    fn scores(&self, levels: &Levels, in_progress: &InProgress) -> Vec<LevelScore> {
        self.scores_with(levels, in_progress, &self.level_targets(levels))
    }

    fn pick_manual(
        &self,
        levels: &Levels,
        in_progress: &InProgress,
        level: usize,
        lo: &[u8],
        hi: &[u8],
    ) -> Option<CompactionTask> {
        let files = levels.get(level)?;
        let last = levels.len().checked_sub(1)?;
        let (inputs, output_level) = if level == 0 {
            let seeds = files.iter().filter(|f| f.overlaps_user_range(lo, hi));
            let (a, b) = user_key_range(seeds.map(|f| &**f))?;
            (
                expand_l0(files, a, b),
                self.level_targets(levels).base_level,
            )
        } else {
            (clean_cut(files, lo, hi), (level + 1).min(last))
        };
        self.build_task(
            levels,
            in_progress,
            level,
            output_level,
            inputs,
            CompactionReason::Manual,
            0.0,
        )
    }
}
