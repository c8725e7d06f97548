//! Compaction for the Strata storage engine.
//!
//! Compaction is the second half of an LSM tree: it merges sorted runs, drops what no
//! reader can see any more, and keeps the levels in shape. This crate holds the parts
//! that need no engine:
//!
//! - [`merge`]: [`MergingIter`], one sorted stream out of any number of [`SortedIter`](strata_core::SortedIter)s
//!   (forward, backward, seek);
//! - [`level_iter`]: [`LevelIter`], a sorted run of non-overlapping tables opened lazily;
//! - [`gc`]: [`VersionGc`], the newest-wins and tombstone rules under live snapshots;
//! - [`policy`] / [`leveled`]: the [`CompactionPolicy`] seam and the leveled policy, pure
//!   functions from a description of the levels ([`FileMeta`] per file) to a
//!   [`CompactionTask`];
//! - [`job`]: [`CompactionJob`], which runs a task and writes output tables through a
//!   [`TableSink`], returning a [`CompactionEdit`] and [`CompactionStats`];
//! - [`mem`]: in-memory tables (a sink and an opener) for tests and benchmarks.
//!
//! ```
//! use std::sync::Arc;
//! use strata_compaction::mem::{Table, TableStore};
//! use strata_compaction::{CompactionJob, CompactionPolicy, InProgress, LeveledPolicy};
//! use strata_core::{InternalKey, ValueKind};
//!
//! let store = TableStore::new();
//! let table = |seq: u64| {
//!     let k = |s: &str| InternalKey::new(s.as_bytes(), seq, ValueKind::Put).into_bytes();
//!     store.add(Table::from_sorted([(k("a"), b"x"), (k("b"), b"y")])).unwrap()
//! };
//! // Four overlapping level-0 files (newest first) trigger a compaction.
//! let levels = vec![vec![table(4), table(3), table(2), table(1)], vec![], vec![]];
//! let task = LeveledPolicy::default().pick(&levels, &InProgress::new()).unwrap();
//! assert_eq!((task.level, task.output_level, task.inputs.len()), (0, 2, 4));
//!
//! let mut sink = store.clone();
//! let outcome = CompactionJob::new(&task, store.opener()).run(&mut sink).unwrap();
//! assert_eq!(outcome.stats.output_entries, 2); // the newest version of "a" and "b"
//! assert_eq!(outcome.stats.versions_dropped, 6);
//! assert_eq!(outcome.edit.deleted.len(), 4);
//! ```

pub mod file_meta;
mod fold;
pub mod gc;
pub mod job;
pub mod level_iter;
pub mod leveled;
pub mod mem;
pub mod merge;
pub mod policy;
pub mod sink;
pub mod stream;
pub mod task;

pub use file_meta::FileMeta;
pub use gc::{Decision, GcStats, VersionGc};
pub use job::{CompactionJob, CompactionOutcome, CompactionStats, FileNamer};
pub use level_iter::{LevelIter, TableOpener};
pub use leveled::{LevelTargets, LeveledOptions, LeveledPolicy};
pub use merge::MergingIter;
pub use policy::{CompactionPolicy, LevelScore};
pub use sink::{TableSink, TableSummary, TableWriter};
pub use stream::{StreamCounts, StreamRules, compact_stream};
pub use task::{CompactionEdit, CompactionReason, CompactionTask, InProgress, Levels};
