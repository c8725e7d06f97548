//! The seam between the engine's scheduler and a compaction strategy.

use crate::{CompactionTask, InProgress, Levels};

/// How urgently one level needs compaction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LevelScore {
    /// The level.
    pub level: usize,
    /// `>= 1` means over target; the largest score is compacted first. Level 0 counts
    /// files against its trigger, deeper levels bytes against their targets; files
    /// already being compacted do not count.
    pub score: f64,
    /// Files in the level.
    pub files: usize,
    /// Bytes in the level.
    pub size_bytes: u64,
    /// The level's size target, if it has one (level 0 does not; under dynamic level
    /// sizes neither do the empty levels above the base level).
    pub target_bytes: Option<u64>,
}

/// A compaction strategy, as pure functions over a description of the levels: no I/O,
/// no locks, so it can be tested on synthetic shapes and simulated.
///
/// The engine calls [`pick`](Self::pick) whenever the levels change or a compaction
/// finishes, with the set of compactions still running, and runs what it gets.
pub trait CompactionPolicy: Send + Sync {
    /// The most urgent compaction that can run now alongside `in_progress`, if any level
    /// needs one.
    fn pick(&self, levels: &Levels, in_progress: &InProgress) -> Option<CompactionTask>;

    /// A score per level (all of them, in level order), for scheduling and statistics.
    fn scores(&self, levels: &Levels, in_progress: &InProgress) -> Vec<LevelScore>;

    /// A compaction of the files of `level` overlapping the user-key range `[lo, hi]`
    /// (inclusive) into the next level down, for a user's compact-range request. `None`
    /// if the level holds no such file or one of them is busy.
    fn pick_manual(
        &self,
        levels: &Levels,
        in_progress: &InProgress,
        level: usize,
        lo: &[u8],
        hi: &[u8],
    ) -> Option<CompactionTask>;
}
