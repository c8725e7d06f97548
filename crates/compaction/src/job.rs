//! The compaction job: merge the inputs, apply the version rules, write output tables.
//!
//! The job holds no lock and changes nothing shared: it reads immutable input tables and
//! writes new ones, then returns the edit for the engine to install. Readers keep using
//! the inputs until the engine swaps versions.
//!
//! Checks (durability rule 17): every input must yield exactly the entries its
//! [`FileMeta`] promises, in strictly increasing order, within its key range, with keys
//! that parse; and every output must hold the entries the job added. Any mismatch fails
//! the job with [`Error::Corruption`] before an edit exists, so a damaged input never
//! turns into a smaller, "repaired" output.

use std::path::PathBuf;
use std::sync::Arc;

use strata_core::key::{
    MAX_SEQUENCE, ValueKind, compare_internal_keys, encode_internal_key, user_key,
};
use strata_core::range_del::successor;
use strata_core::{
    CompactionFilter, Error, FragmentedTombstones, MergeOperator, ParsedInternalKey, Result,
    SequenceNumber, SortedIter,
};

use crate::file_meta::MetaAccumulator;
use crate::gc::GcStats;
use crate::stream::{StreamCounts, StreamRules, compact_stream};
use crate::{
    CompactionEdit, CompactionTask, FileMeta, LevelIter, MergingIter, TableOpener, TableSink,
    TableWriter, VersionGc,
};

/// What a compaction read, wrote and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// Input files.
    pub input_files: u64,
    /// Total size of the input files.
    pub input_bytes: u64,
    /// Entries read.
    pub input_entries: u64,
    /// Key and value bytes read.
    pub input_payload_bytes: u64,
    /// Output files.
    pub output_files: u64,
    /// Total size of the output files.
    pub output_bytes: u64,
    /// Entries written.
    pub output_entries: u64,
    /// Key and value bytes written.
    pub output_payload_bytes: u64,
    /// Entries dropped because a newer version shadows them for every reader.
    pub versions_dropped: u64,
    /// Tombstones dropped because nothing remained below for them to delete.
    pub tombstones_dropped: u64,
    /// Entries dropped because a range tombstone deletes them for every reader.
    pub range_deleted: u64,
    /// Merge operands folded into another entry (a put, or one operand standing for
    /// a run).
    pub merge_operands_folded: u64,
    /// Expired values turned into tombstones (or dropped with nothing below them).
    pub expired: u64,
    /// Values the compaction filter removed or changed.
    pub filtered: u64,
    /// Range tombstones (`(fragment, sequence)` pairs) of the inputs.
    pub input_range_tombstones: u64,
    /// Range tombstones written to the outputs (after fragmenting and truncating to
    /// each output's range, so possibly more than were read).
    pub output_range_tombstones: u64,
    /// The task was a trivial move: nothing was read or written.
    pub trivial_move: bool,
}

/// A finished job's result.
#[derive(Clone, Debug)]
pub struct CompactionOutcome {
    /// Files removed and added.
    pub edit: CompactionEdit,
    /// What was read, written and dropped.
    pub stats: CompactionStats,
}

/// Names an input file in corruption errors (the engine's naming; the default is
/// LevelDB's `NNNNNN.sst`).
pub type FileNamer = Arc<dyn Fn(u64) -> PathBuf + Send + Sync>;

/// Runs one [`CompactionTask`].
pub struct CompactionJob<'a> {
    task: &'a CompactionTask,
    opener: TableOpener,
    snapshots: Vec<SequenceNumber>,
    file_namer: FileNamer,
    range_tombstones: FragmentedTombstones,
    merge_operator: Option<Arc<dyn MergeOperator>>,
    now_ms: u64,
    filter: Option<Arc<dyn CompactionFilter>>,
}

impl<'a> CompactionJob<'a> {
    /// A job for `task`, reading inputs through `opener`, with no live snapshots.
    pub fn new(task: &'a CompactionTask, opener: TableOpener) -> Self {
        CompactionJob {
            task,
            opener,
            snapshots: Vec::new(),
            file_namer: Arc::new(|n| PathBuf::from(format!("{n:06}.sst"))),
            range_tombstones: FragmentedTombstones::empty(),
            merge_operator: None,
            now_ms: 0,
            filter: None,
        }
    }

    /// The range tombstones of every input table, together (the opener yields point
    /// entries only). They delete the input entries they cover where no snapshot
    /// needs them, and go to the outputs, cut to each output's key range — or are
    /// dropped at the bottom, where nothing older remains for them to delete.
    pub fn range_tombstones(mut self, tombstones: FragmentedTombstones) -> Self {
        self.range_tombstones = tombstones;
        self
    }

    /// The sequence numbers of the live snapshots (any order).
    pub fn snapshots(mut self, snapshots: &[SequenceNumber]) -> Self {
        self.snapshots = snapshots.to_vec();
        self
    }

    /// The keyspace's merge operator, which folds runs of merge operands (see
    /// the crate's `fold` module). Without one, operands are kept as they are.
    pub fn merge_operator(mut self, operator: Option<Arc<dyn MergeOperator>>) -> Self {
        self.merge_operator = operator;
        self
    }

    /// The time expiring values are judged at (ms since the UNIX epoch): one expired
    /// by then becomes a tombstone (see [`strata_core::expiry`]). The default, 0,
    /// expires nothing.
    pub fn now_ms(mut self, now_ms: u64) -> Self {
        self.now_ms = now_ms;
        self
    }

    /// The keyspace's compaction filter: asked about every value only the latest state
    /// can read (see [`CompactionFilter`]).
    pub fn compaction_filter(mut self, filter: Option<Arc<dyn CompactionFilter>>) -> Self {
        self.filter = filter;
        self
    }

    /// How input files are named in corruption errors.
    pub fn file_namer(mut self, namer: FileNamer) -> Self {
        self.file_namer = namer;
        self
    }

    /// The merged, checked stream of every input, newest first.
    fn input_iter(&self) -> MergingIter<Box<dyn SortedIter + Send>> {
        let opener = Arc::clone(&self.opener);
        let namer = Arc::clone(&self.file_namer);
        let checked: TableOpener = Arc::new(move |meta: &FileMeta| {
            let inner = opener(meta)?;
            Ok(
                Box::new(CheckedIter::new(inner, meta.clone(), namer(meta.number)))
                    as Box<dyn SortedIter + Send>,
            )
        });
        let task = self.task;
        let mut children: Vec<Box<dyn SortedIter + Send>> = Vec::new();
        if task.level == 0 {
            // Level-0 files overlap: one child each, newest first.
            for f in &task.inputs {
                children.push(Box::new(LevelIter::new(
                    vec![Arc::clone(f)],
                    Arc::clone(&checked),
                )));
            }
        } else {
            children.push(Box::new(LevelIter::new(
                task.inputs.clone(),
                Arc::clone(&checked),
            )));
        }
        if !task.output_level_inputs.is_empty() {
            children.push(Box::new(LevelIter::new(
                task.output_level_inputs.clone(),
                checked,
            )));
        }
        MergingIter::new(children)
    }

    /// Runs the job, writing outputs through `sink`. A trivial-move task returns its
    /// edit without reading or writing anything.
    pub fn run<S: TableSink>(self, sink: &mut S) -> Result<CompactionOutcome> {
        if self.task.trivial_move {
            return Ok(self.trivial_outcome());
        }
        let whole = self.run_share(sink, &Share::default())?;
        self.outcome(vec![whole])
    }

    /// Runs the job as up to `sinks.len()` **subcompactions**: the key space is cut just
    /// past input files' last user keys, evenly by rank among those ends (not by bytes:
    /// shares can be uneven when a level has few files), each merged on a
    /// thread of its own into outputs of its own sink, and the outputs of all shares make
    /// one edit, installed as one. A share holds every version of its user keys, so each
    /// applies the version rules alone; range tombstones are cut at the shares' edges
    /// like at any output's. With one sink, or inputs that give a single share, this is
    /// [`run`](Self::run). On an error the sinks' outputs are the caller's to remove.
    pub fn run_split<S: TableSink + Send>(self, sinks: &mut [S]) -> Result<CompactionOutcome> {
        if self.task.trivial_move {
            return Ok(self.trivial_outcome());
        }
        let shares = self.shares(sinks.len());
        let Some(first) = sinks.first_mut() else {
            return Err(Error::InvalidArgument(
                "a compaction needs at least one sink".into(),
            ));
        };
        if shares.len() <= 1 {
            return self.run(first);
        }
        let job = &self;
        let results: Vec<Result<ShareOutcome>> = std::thread::scope(|scope| {
            let running: Vec<_> = shares
                .iter()
                .zip(sinks.iter_mut())
                .map(|(share, sink)| scope.spawn(move || job.run_share(sink, share)))
                .collect();
            running
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::io(
                            "running a subcompaction",
                            std::io::Error::other("its thread panicked"),
                        ))
                    })
                })
                .collect()
        });
        let outcomes = results.into_iter().collect::<Result<Vec<_>>>()?;
        self.outcome(outcomes)
    }

    fn trivial_outcome(&self) -> CompactionOutcome {
        CompactionOutcome {
            edit: self.task.trivial_move_edit(),
            stats: CompactionStats {
                trivial_move: true,
                ..CompactionStats::default()
            },
        }
    }

    /// Up to `n` shares of the key space, cut just past input files' last user keys,
    /// evenly by rank among those ends. Files of the lower level of a task partition its
    /// range (L0 files and a single upper file usually span all of it), so their ends
    /// spread the shares over the keys; the largest end bounds nothing and is no cut.
    fn shares(&self, n: usize) -> Vec<Share> {
        let mut ends: Vec<&[u8]> = self
            .task
            .all_inputs()
            .map(|f| f.largest_user_key())
            .collect();
        ends.sort_unstable();
        ends.dedup();
        ends.pop();
        let count = n.min(ends.len() + 1).max(1);
        let mut shares = Vec::with_capacity(count);
        let mut lo: Option<Vec<u8>> = None;
        for i in 1..count {
            let Some(end) = ends.get(i * (ends.len() + 1) / count - 1) else {
                break;
            };
            let cut = successor(end);
            shares.push(Share {
                lo: lo.take(),
                hi: Some(cut.clone()),
            });
            lo = Some(cut);
        }
        shares.push(Share { lo, hi: None });
        shares
    }

    /// Merges the entries of `share`'s user keys into outputs through `sink`.
    fn run_share<S: TableSink>(&self, sink: &mut S, share: &Share) -> Result<ShareOutcome> {
        let task = self.task;
        let mut below = BelowCursor::new(&task.below);
        let mut gc = VersionGc::new(&self.snapshots, |uk: &[u8]| below.may_contain(uk));
        let all_ranges = &self.range_tombstones;
        let kept_ranges = collect_range_tombstones(all_ranges, &gc, &task.below);
        let mut out = OutputSplitter::new(task, &kept_ranges, share.lo.clone(), share.hi.clone());
        let mut stats = CompactionStats::default();
        let mut edit = CompactionEdit::default();
        let rules = StreamRules {
            operator: self.merge_operator.as_deref(),
            now_ms: self.now_ms,
            filter: self.filter.as_deref(),
            level: task.output_level,
            ranges: all_ranges,
        };
        let mut input = self.input_iter();
        match &share.lo {
            Some(lo) => {
                let mut target = Vec::with_capacity(lo.len() + 8);
                encode_internal_key(&mut target, lo, MAX_SEQUENCE, ValueKind::FOR_SEEK);
                input.seek(&target)?;
            }
            None => input.seek_to_first()?,
        }
        let mut input = UpToShareEnd {
            inner: input,
            hi: share.hi.as_deref(),
        };
        let counts = compact_stream(&mut input, &mut gc, &rules, &mut |parsed, key, value| {
            out.add(sink, parsed, key, value, &mut edit, &mut stats)
        })?;
        out.finish(sink, &mut edit, &mut stats)?;
        Ok(ShareOutcome {
            added: edit.added,
            stats,
            counts,
            gc: gc.stats(),
        })
    }

    /// The job's edit and statistics from its shares' (in key order), after checking
    /// that every input entry was read once and every kept entry written.
    fn outcome(&self, shares: Vec<ShareOutcome>) -> Result<CompactionOutcome> {
        let task = self.task;
        let mut edit = task.deletion_edit();
        let mut stats = CompactionStats {
            input_files: task.all_inputs().count() as u64,
            input_bytes: task.input_bytes(),
            input_range_tombstones: self.range_tombstones.len() as u64,
            ..CompactionStats::default()
        };
        let (mut counts, mut gc) = (StreamCounts::default(), GcStats::default());
        for share in shares {
            edit.added.extend(share.added);
            let s = share.stats;
            stats.output_files += s.output_files;
            stats.output_bytes += s.output_bytes;
            stats.output_entries += s.output_entries;
            stats.output_payload_bytes += s.output_payload_bytes;
            stats.output_range_tombstones += s.output_range_tombstones;
            counts.add(&share.counts);
            gc.add(&share.gc);
        }
        stats.input_entries = counts.input_entries;
        stats.input_payload_bytes = counts.input_payload_bytes;
        stats.expired = counts.expired;
        stats.filtered = counts.filtered;
        // Entries of runs left unfolded were judged shadowed but are written; values
        // that expired or were filtered away with nothing below them became tombstones
        // that were dropped.
        stats.versions_dropped = gc.versions_dropped - counts.unfolded_extra;
        stats.tombstones_dropped = gc.tombstones_dropped + counts.removed_after_keep;
        stats.range_deleted = gc.range_deleted;
        stats.merge_operands_folded = counts.operands_folded;
        let expected_entries: u64 = task.all_inputs().map(|f| f.entries).sum();
        // The rules keep a run's first operand; the fold writes one entry for the run,
        // or (unfolded) every entry of it and its base. Read in shares, the inputs' own
        // counts are checked only where a share read a table whole: this total is what
        // proves no entry was lost or read twice.
        if stats.input_entries != expected_entries
            || gc.kept + counts.unfolded_extra - counts.removed_after_keep != stats.output_entries
            || gc.entries != stats.input_entries
        {
            // Each input's count was checked as it ended, so this is a bug, not damage;
            // still never install an edit that loses entries.
            return Err(Error::corruption(
                "compaction inputs",
                0,
                format!(
                    "read {} entries of {} expected; kept {}, wrote {}",
                    stats.input_entries, expected_entries, gc.kept, stats.output_entries
                ),
            ));
        }
        Ok(CompactionOutcome { edit, stats })
    }
}

/// A part of a job's key space: user keys in `[lo, hi)` (`None`: unbounded).
#[derive(Clone, Debug, Default)]
struct Share {
    lo: Option<Vec<u8>>,
    hi: Option<Vec<u8>>,
}

/// What one share wrote and judged.
struct ShareOutcome {
    added: Vec<(usize, Arc<FileMeta>)>,
    stats: CompactionStats,
    counts: StreamCounts,
    gc: GcStats,
}

/// The merged inputs up to a share's end: invalid from the first entry whose user key
/// is `hi` or beyond (those belong to the next share).
struct UpToShareEnd<'h, I> {
    inner: I,
    hi: Option<&'h [u8]>,
}

impl<I: SortedIter> SortedIter for UpToShareEnd<'_, I> {
    fn valid(&self) -> bool {
        self.inner.valid() && self.hi.is_none_or(|hi| user_key(self.inner.key()) < hi)
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.inner.seek_to_first()
    }
    fn seek_to_last(&mut self) -> Result<()> {
        self.inner.seek_to_last()
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.inner.seek(target)
    }
    fn next(&mut self) -> Result<()> {
        self.inner.next()
    }
    fn prev(&mut self) -> Result<()> {
        self.inner.prev()
    }
    fn key(&self) -> &[u8] {
        self.inner.key()
    }
    fn value(&self) -> &[u8] {
        self.inner.value()
    }
    fn value_bytes(&self) -> bytes::Bytes {
        self.inner.value_bytes()
    }
}

/// Cuts the kept stream into output tables, only between user keys: at the target
/// size, when the current table overlaps too many grandparent bytes, or early — from
/// half the target size on — where the keys pass the end of a grandparent file.
///
/// The early cut (RocksDB's "dynamic file size") aligns output tables with the next
/// level's files, so pushing one of them down later rewrites fewer bytes of that level:
/// with random keys, a table cut anywhere straddles one more file below. The threshold
/// starts at 55 % of the target at the first boundary and rises by 5 % with each
/// boundary passed (to 90 %), so tables that meet boundaries often still grow large.
struct OutputSplitter<'t, W> {
    task: &'t CompactionTask,
    /// The range tombstones to write, each output taking the part between its
    /// neighbours' point keys.
    ranges: &'t FragmentedTombstones,
    /// Where the current output's share of `ranges` starts (`None`: the first output,
    /// from the beginning): just past the previous output's last user key.
    ranges_from: Option<Vec<u8>>,
    /// Where the last output's share of `ranges` ends: the job's share's end (`None`:
    /// to the end).
    ranges_until: Option<Vec<u8>>,
    /// The table being written, its metadata so far and its key + value bytes.
    current: Option<(W, MetaAccumulator, u64)>,
    /// Grandparents wholly passed by the output keys so far.
    grandparent_index: usize,
    /// Grandparent bytes the current output overlaps.
    overlapped_bytes: u64,
    /// Grandparent file ends the current output has passed.
    boundaries_passed: u64,
}

impl<'t, W: TableWriter> OutputSplitter<'t, W> {
    /// Outputs of the user keys in `[from, until)` (a share of the job; `None`: open).
    fn new(
        task: &'t CompactionTask,
        ranges: &'t FragmentedTombstones,
        from: Option<Vec<u8>>,
        until: Option<Vec<u8>>,
    ) -> Self {
        OutputSplitter {
            task,
            ranges,
            ranges_from: from,
            ranges_until: until,
            current: None,
            grandparent_index: 0,
            overlapped_bytes: 0,
            boundaries_passed: 0,
        }
    }

    /// Whether the table in progress should end before `key` because of grandparents
    /// (LevelDB's `ShouldStopBefore`, plus the early cut at a grandparent's end).
    fn grandparent_cut(&mut self, key: &[u8]) -> bool {
        let gps = &self.task.grandparents;
        let mut passed = 0;
        while let Some(gp) = gps.get(self.grandparent_index) {
            if compare_internal_keys(key, gp.largest.as_bytes()).is_le() {
                break;
            }
            if self.current.is_some() {
                self.overlapped_bytes += gp.size_bytes;
                passed += 1;
            }
            self.grandparent_index += 1;
        }
        if self.overlapped_bytes > self.task.max_grandparent_overlap_bytes {
            self.overlapped_bytes = 0;
            return true;
        }
        if passed == 0 {
            return false;
        }
        self.boundaries_passed += passed;
        let percent = 50 + (5 * self.boundaries_passed).min(40);
        let threshold = self.task.target_file_size_bytes / 100 * percent;
        self.current
            .as_ref()
            .is_some_and(|(w, _, _)| w.estimated_size() >= threshold)
    }

    fn add<S: TableSink<Writer = W>>(
        &mut self,
        sink: &mut S,
        parsed: ParsedInternalKey<'_>,
        key: &[u8],
        value: &[u8],
        edit: &mut CompactionEdit,
        stats: &mut CompactionStats,
    ) -> Result<()> {
        let new_user_key = match &self.current {
            Some((_, acc, _)) => user_key(acc.largest()) != parsed.user_key,
            None => true,
        };
        if new_user_key {
            let gp_cut = self.grandparent_cut(key);
            let size_cut = self
                .current
                .as_ref()
                .is_some_and(|(w, _, _)| w.estimated_size() >= self.task.target_file_size_bytes);
            if gp_cut || size_cut {
                self.cut(edit, stats)?;
            }
        }
        if self.current.is_none() {
            self.current = Some((sink.create()?, MetaAccumulator::default(), 0));
        }
        if let Some((w, acc, payload)) = self.current.as_mut() {
            w.add(key, value)?;
            acc.add(parsed, key);
            *payload += (key.len() + value.len()) as u64;
        }
        Ok(())
    }

    /// Ends the current output before the next user key: it takes the range
    /// tombstones up to just past its last user key, the next output those after.
    fn cut(&mut self, edit: &mut CompactionEdit, stats: &mut CompactionStats) -> Result<()> {
        let Some((_, acc, _)) = &self.current else {
            return Ok(());
        };
        let split = successor(user_key(acc.largest()));
        let share = self
            .ranges
            .truncated(self.ranges_from.as_deref(), Some(&split));
        self.ranges_from = Some(split);
        self.finish_current(&share, edit, stats)
    }

    /// Ends the last output, which takes every remaining range tombstone; if there is
    /// none but tombstones remain, they get an output of their own.
    fn finish<S: TableSink<Writer = W>>(
        &mut self,
        sink: &mut S,
        edit: &mut CompactionEdit,
        stats: &mut CompactionStats,
    ) -> Result<()> {
        let share = self
            .ranges
            .truncated(self.ranges_from.as_deref(), self.ranges_until.as_deref());
        if self.current.is_none() && !share.is_empty() {
            self.current = Some((sink.create()?, MetaAccumulator::default(), 0));
        }
        self.finish_current(&share, edit, stats)
    }

    fn finish_current(
        &mut self,
        ranges: &FragmentedTombstones,
        edit: &mut CompactionEdit,
        stats: &mut CompactionStats,
    ) -> Result<()> {
        let Some((mut writer, acc, payload)) = self.current.take() else {
            return Ok(());
        };
        self.overlapped_bytes = 0;
        self.boundaries_passed = 0;
        let added = acc.entries();
        writer.add_range_tombstones(ranges)?;
        let summary = writer.finish()?;
        if summary.entries != added {
            return Err(Error::corruption(
                format!("table #{}", summary.file_number),
                0,
                format!(
                    "output holds {} entries, compaction added {added}",
                    summary.entries
                ),
            ));
        }
        let meta = acc
            .finish(summary.file_number, summary.size_bytes, ranges)
            .ok_or_else(|| {
                Error::corruption(
                    format!("table #{}", summary.file_number),
                    0,
                    "output table has no valid keys",
                )
            })?;
        stats.output_files += 1;
        stats.output_bytes += summary.size_bytes;
        stats.output_entries += added;
        stats.output_payload_bytes += payload;
        stats.output_range_tombstones += meta.range_tombstones;
        edit.added.push((self.task.output_level, Arc::new(meta)));
        Ok(())
    }
}

/// The range tombstones a compaction writes out: of each fragment's sequence numbers,
/// the newest of each snapshot stripe (an older one in the same stripe hides nothing
/// the newer does not), and none in the oldest stripe where no level below the output
/// holds a key of the fragment (nothing older is left for it to delete; the entries it
/// covers in this compaction are dropped with it).
fn collect_range_tombstones<F: FnMut(&[u8]) -> bool>(
    all: &FragmentedTombstones,
    gc: &VersionGc<F>,
    below: &[Vec<Arc<FileMeta>>],
) -> FragmentedTombstones {
    let mut kept = all.clone();
    let mut last: Option<(Vec<u8>, usize)> = None;
    kept.retain(|start, end, seq| {
        let stripe = gc.stripe_of(seq);
        let same_fragment = last.as_ref().is_some_and(|(s, _)| s.as_slice() == start);
        if same_fragment && last.as_ref().is_some_and(|(_, st)| *st == stripe) {
            return false;
        }
        last = Some((start.to_vec(), stripe));
        stripe != 0 || below_overlaps(below, start, end)
    });
    kept
}

/// Whether a level below the output may hold a key of `[start, end)`.
fn below_overlaps(below: &[Vec<Arc<FileMeta>>], start: &[u8], end: &[u8]) -> bool {
    below.iter().any(|files| {
        let i = files.partition_point(|f| f.largest_user_key() < start);
        files.get(i).is_some_and(|f| f.smallest_user_key() < end)
    })
}

/// Answers "may a level below the output hold this user key?" for ascending user keys,
/// walking one cursor per level instead of searching.
struct BelowCursor<'t> {
    levels: &'t [Vec<Arc<FileMeta>>],
    positions: Vec<usize>,
}

impl<'t> BelowCursor<'t> {
    fn new(levels: &'t [Vec<Arc<FileMeta>>]) -> Self {
        BelowCursor {
            levels,
            positions: vec![0; levels.len()],
        }
    }

    fn may_contain(&mut self, user_key: &[u8]) -> bool {
        for (files, pos) in self.levels.iter().zip(&mut self.positions) {
            while let Some(f) = files.get(*pos) {
                if user_key <= f.largest_user_key() {
                    if user_key >= f.smallest_user_key() {
                        return true;
                    }
                    break;
                }
                *pos += 1;
            }
        }
        false
    }
}

/// Wraps one input table, read forward once from the start, and checks what it yields
/// against the table's [`FileMeta`].
struct CheckedIter {
    inner: Box<dyn SortedIter + Send>,
    meta: FileMeta,
    path: PathBuf,
    seen: u64,
    last_key: Vec<u8>,
    /// Read from a seek (a subcompaction's share of the key space), not from the first
    /// entry: the entries seen are a part of the table, so its entry count and its
    /// smallest key cannot be checked here (the job checks the total over every share).
    partial: bool,
}

impl CheckedIter {
    fn new(inner: Box<dyn SortedIter + Send>, meta: FileMeta, path: PathBuf) -> Self {
        CheckedIter {
            inner,
            meta,
            path,
            seen: 0,
            last_key: Vec::new(),
            partial: false,
        }
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::corruption(self.path.clone(), 0, reason)
    }

    /// Checks the entry the inner iterator stands on (or, past the end, the count).
    fn check(&mut self) -> Result<()> {
        if !self.inner.valid() {
            if self.partial {
                let past = self.seen > 0
                    && compare_internal_keys(&self.last_key, self.meta.largest.as_bytes()).is_gt();
                if past {
                    return Err(self.corrupt("an entry lies past the recorded largest key".into()));
                }
                return Ok(());
            }
            if self.seen != self.meta.entries {
                return Err(self.corrupt(format!(
                    "table yielded {} entries, its metadata says {}",
                    self.seen, self.meta.entries
                )));
            }
            // With range tombstones the recorded range covers them too: the entries
            // need only lie inside it.
            let last = compare_internal_keys(&self.last_key, self.meta.largest.as_bytes());
            let bad_last = if self.meta.range_tombstones == 0 {
                last.is_ne()
            } else {
                last.is_gt()
            };
            if self.seen > 0 && bad_last {
                return Err(self.corrupt("last key differs from the recorded largest key".into()));
            }
            return Ok(());
        }
        let key = self.inner.key();
        if ParsedInternalKey::parse(key).is_none() {
            return Err(self.corrupt(format!("entry {} has a malformed internal key", self.seen)));
        }
        let in_order = if self.seen == 0 {
            let first = compare_internal_keys(key, self.meta.smallest.as_bytes());
            if self.meta.range_tombstones == 0 && !self.partial {
                first.is_eq()
            } else {
                first.is_ge()
            }
        } else {
            compare_internal_keys(&self.last_key, key).is_lt()
        };
        if !in_order {
            return Err(self.corrupt(format!(
                "entry {} is out of order or outside the table's key range",
                self.seen
            )));
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.seen += 1;
        Ok(())
    }

    fn forward_only() -> Error {
        Error::NotSupported("compaction inputs are read forward once".into())
    }
}

impl SortedIter for CheckedIter {
    fn valid(&self) -> bool {
        self.inner.valid()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        if self.seen != 0 {
            return Err(Self::forward_only());
        }
        self.inner.seek_to_first()?;
        self.check()
    }
    fn seek_to_last(&mut self) -> Result<()> {
        Err(Self::forward_only())
    }
    /// Only as the first call: a subcompaction starts its share of the table there.
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        if self.seen != 0 {
            return Err(Self::forward_only());
        }
        self.partial = true;
        self.inner.seek(target)?;
        self.check()
    }
    fn next(&mut self) -> Result<()> {
        self.inner.next()?;
        self.check()
    }
    fn prev(&mut self) -> Result<()> {
        Err(Self::forward_only())
    }
    fn key(&self) -> &[u8] {
        self.inner.key()
    }
    fn value(&self) -> &[u8] {
        self.inner.value()
    }
    fn value_bytes(&self) -> bytes::Bytes {
        self.inner.value_bytes()
    }
}
