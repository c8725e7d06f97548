//! What a policy picks (a [`CompactionTask`]), what running it changes (a
//! [`CompactionEdit`]), and what is already running ([`InProgress`]).

use std::collections::HashSet;
use std::sync::Arc;

use crate::FileMeta;
use crate::file_meta::user_key_range;

/// The files of every level, index = level number. Level 0 is ordered newest first;
/// every deeper level is sorted by key and its files do not overlap.
pub type Levels = [Vec<Arc<FileMeta>>];

/// Why a task was picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompactionReason {
    /// Level 0 holds too many files.
    L0FileCount,
    /// A level holds more bytes than its target.
    LevelSize,
    /// The user asked for a range to be compacted.
    Manual,
    /// A level-0 table holds range tombstones over keys deeper levels hold: compacting
    /// it drops the covered keys (space, and reads that no longer step over them).
    RangeDeletes,
    /// A table is older than the keyspace's periodic-compaction age.
    Periodic,
    /// The database stopped writing with more than one file in level 0.
    Idle,
}

/// One compaction to run: inputs from `level` (and the overlapping files of
/// `output_level`) merged into new files of `output_level`.
#[derive(Clone, Debug)]
pub struct CompactionTask {
    /// Why it was picked.
    pub reason: CompactionReason,
    /// The urgency score of `level` when picked (>= 1 means over target).
    pub score: f64,
    /// The level the compaction starts from.
    pub level: usize,
    /// The level the outputs go to (usually `level + 1`; the base level for L0 under
    /// dynamic level sizes; `level` itself when a manual compaction rewrites the last
    /// level).
    pub output_level: usize,
    /// Files of `level`. From level 0 they are kept newest first.
    pub inputs: Vec<Arc<FileMeta>>,
    /// Files of `output_level` overlapping the inputs (empty if `output_level == level`).
    pub output_level_inputs: Vec<Arc<FileMeta>>,
    /// Files of `output_level + 1` overlapping the compaction: the job ends an output
    /// file early when it would overlap too many of them, so a later compaction of that
    /// file stays small.
    pub grandparents: Vec<Arc<FileMeta>>,
    /// Per level below `output_level` (index 0 = `output_level + 1`), the files whose
    /// key range overlaps the compaction: where an older version of a key may live. The
    /// tombstone rule asks these.
    pub below: Vec<Vec<Arc<FileMeta>>>,
    /// The inputs move down by a version edit alone, without being rewritten.
    pub trivial_move: bool,
    /// Output files are cut at about this size.
    pub target_file_size_bytes: u64,
    /// An output file is also cut once it overlaps this many bytes of grandparents.
    pub max_grandparent_overlap_bytes: u64,
}

impl CompactionTask {
    /// Every input file, `inputs` then `output_level_inputs`.
    pub fn all_inputs(&self) -> impl Iterator<Item = &Arc<FileMeta>> + '_ {
        self.inputs.iter().chain(&self.output_level_inputs)
    }

    /// Total size of the input files.
    pub fn input_bytes(&self) -> u64 {
        self.all_inputs().map(|f| f.size_bytes).sum()
    }

    /// The user-key range `[lo, hi]` (inclusive) the task covers.
    pub fn user_key_range(&self) -> Option<(&[u8], &[u8])> {
        user_key_range(self.all_inputs().map(|f| &**f))
    }

    /// Whether no level below the output may hold any key of the task: tombstones can
    /// then be dropped wherever no snapshot needs them.
    pub fn is_bottommost(&self) -> bool {
        self.below.iter().all(|l| l.is_empty())
    }

    /// The edit of a trivial move: the inputs leave `level` and enter `output_level`
    /// unchanged.
    pub fn trivial_move_edit(&self) -> CompactionEdit {
        CompactionEdit {
            deleted: self.inputs.iter().map(|f| (self.level, f.number)).collect(),
            added: self
                .inputs
                .iter()
                .map(|f| (self.output_level, Arc::clone(f)))
                .collect(),
        }
    }

    /// The edit that removes every input, to which the job adds its outputs.
    pub(crate) fn deletion_edit(&self) -> CompactionEdit {
        CompactionEdit {
            deleted: self
                .inputs
                .iter()
                .map(|f| (self.level, f.number))
                .chain(
                    self.output_level_inputs
                        .iter()
                        .map(|f| (self.output_level, f.number)),
                )
                .collect(),
            added: Vec::new(),
        }
    }
}

/// The change a finished compaction makes to the levels: the engine turns it into a
/// version edit for its manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionEdit {
    /// `(level, file number)` of every file removed.
    pub deleted: Vec<(usize, u64)>,
    /// `(level, file)` of every file added, in key order.
    pub added: Vec<(usize, Arc<FileMeta>)>,
}

/// The compactions currently running, so a policy never picks a file twice or lets two
/// compactions write overlapping files into one level.
#[derive(Clone, Debug, Default)]
pub struct InProgress {
    files: HashSet<u64>,
    /// `(output level, lo, hi)` user-key ranges being written.
    outputs: Vec<(usize, Vec<u8>, Vec<u8>)>,
}

impl InProgress {
    /// Nothing running.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether file `number` is an input of a running task.
    pub fn contains_file(&self, number: u64) -> bool {
        self.files.contains(&number)
    }

    /// Records a task as running.
    pub fn add(&mut self, task: &CompactionTask) {
        self.files.extend(task.all_inputs().map(|f| f.number));
        if let Some((lo, hi)) = task.user_key_range() {
            self.outputs
                .push((task.output_level, lo.to_vec(), hi.to_vec()));
        }
    }

    /// Records a task as finished (or abandoned).
    pub fn remove(&mut self, task: &CompactionTask) {
        for f in task.all_inputs() {
            self.files.remove(&f.number);
        }
        if let Some((lo, hi)) = task.user_key_range() {
            let found = self
                .outputs
                .iter()
                .position(|(l, a, b)| *l == task.output_level && a == lo && b == hi);
            if let Some(i) = found {
                self.outputs.swap_remove(i);
            }
        }
    }

    /// Whether nothing is running.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.outputs.is_empty()
    }

    /// Whether file `number` is an input of a running compaction.
    pub fn is_busy(&self, number: u64) -> bool {
        self.files.contains(&number)
    }

    /// Whether a running compaction writes into `level` within `[lo, hi]`.
    pub fn output_overlaps(&self, level: usize, lo: &[u8], hi: &[u8]) -> bool {
        self.outputs
            .iter()
            .any(|(l, a, b)| *l == level && a.as_slice() <= hi && b.as_slice() >= lo)
    }
}
