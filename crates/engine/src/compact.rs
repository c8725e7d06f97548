//! Background compaction: picking with the compaction crate's policy, running its job
//! with output tables written by the SSTable builder, and installing the result.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use strata_compaction::{
    CompactionEdit, CompactionJob, CompactionStats, CompactionTask, FileMeta, LeveledOptions,
    LeveledPolicy, TableOpener, TableSink, TableWriter,
};
use strata_core::{Error, FragmentedTombstones, Result, SortedIter};
use strata_sstable::{TableBuilder, TableOptions};

use crate::db::{DbInner, Work, lock};
use crate::edit::VersionEdit;
use crate::filename::table_path;
use crate::iter::KeyRange;
use crate::options::Options;
use crate::tree::Tree;
use crate::version::{NUM_LEVELS, TableFile, Version};

/// Table layout from the database options.
/// How tables written to `level` are laid out, when the tree's levels hold `levels[i]`
/// (each file's entries) and the new table joins with about `run_entries` keys.
pub(crate) fn table_options(
    opts: &Options,
    level: usize,
    levels: &[Vec<u64>],
    run_entries: u64,
) -> TableOptions {
    TableOptions {
        block_size_bytes: opts.block_bytes,
        bloom_bits_per_key: opts.bloom_bits_for(level, levels, run_entries),
        compression: opts.compression_for(level).to_table(),
        ..TableOptions::default()
    }
}

/// The compaction policy from the database options.
pub(crate) fn policy(opts: &Options) -> LeveledPolicy {
    LeveledPolicy::new(LeveledOptions {
        l0_compaction_trigger: opts.l0_compaction_trigger,
        range_delete_compactions: opts.range_delete_compactions,
        base_level_bytes: opts.level_base_bytes,
        fanout: opts.level_fanout,
        target_file_size_bytes: opts.table_file_bytes,
        ..LeveledOptions::default()
    })
}

/// The manifest entry of a finished table.
pub(crate) fn file_meta(number: u64, s: strata_sstable::TableSummary) -> FileMeta {
    FileMeta {
        number,
        size_bytes: s.file_size,
        smallest: s.smallest_key,
        largest: s.largest_key,
        smallest_seq: s.smallest_seq,
        largest_seq: s.largest_seq,
        entries: s.entry_count,
        tombstones: s.tombstone_count,
        range_tombstones: s.range_tombstone_count,
    }
}

/// Whether the database has gone without a write for `idle_compaction`: the newest
/// sequence number, as one compaction thread last saw it change.
struct QuietWatch {
    seq: u64,
    since: Instant,
}

impl QuietWatch {
    fn new(inner: &DbInner) -> Self {
        QuietWatch {
            seq: inner.visible_seq.load(Ordering::Acquire),
            since: Instant::now(),
        }
    }

    /// How long no write has been seen (zero when one has since the last call).
    fn quiet_for(&mut self, inner: &DbInner) -> Duration {
        let seq = inner.visible_seq.load(Ordering::Acquire);
        if seq != self.seq {
            self.seq = seq;
            self.since = Instant::now();
        }
        self.since.elapsed()
    }

    /// Whether the database has been quiet long enough for an idle compaction.
    fn is_idle(&mut self, inner: &DbInner) -> bool {
        inner
            .opts
            .idle_compaction
            .is_some_and(|after| self.quiet_for(inner) >= after)
    }

    /// When to look again for an idle compaction: only while some keyspace has level-0
    /// tables to merge (a flush that adds one rings the doorbell anyway).
    fn next_look(&mut self, inner: &DbInner) -> Option<Duration> {
        let after = inner.opts.idle_compaction?;
        let waiting = inner
            .trees()
            .iter()
            .any(|t| t.view().version.levels[0].len() >= IDLE_L0_FILES);
        // Idle already and still nothing picked (level 0, or the level below, is held by
        // another thread's compaction, whose end rings the doorbell): look again a whole
        // delay later, and never sooner than every few milliseconds (a zero delay, in
        // tests).
        waiting.then(|| {
            let left = after.saturating_sub(self.quiet_for(inner));
            if left.is_zero() { after } else { left }.max(Duration::from_millis(5))
        })
    }
}

/// Level-0 files an idle compaction waits for: one table alone costs a lookup no more
/// than a sorted level does, and merging it into the level below would rewrite that
/// level's overlapping tables for little.
const IDLE_L0_FILES: usize = 2;

/// A compaction thread: runs the most urgent compaction until none is needed, per doorbell.
pub(crate) fn run_compaction_thread(inner: Arc<DbInner>, rx: Receiver<Work>) {
    let mut quiet = QuietWatch::new(&inner);
    loop {
        // With periodic compaction on in some keyspace (asked each time: one may get it
        // later), the thread also wakes by itself: a database that no longer writes
        // rings no doorbell, and its old tables must still be reached. So it does to
        // find the database idle, while level 0 holds tables to merge.
        let periodic = inner
            .trees()
            .iter()
            .filter_map(|t| t.settings().opts.periodic_compaction)
            .min()
            .map(|age| (age / 4).clamp(Duration::from_secs(1), Duration::from_secs(600)));
        let wake_every = match (periodic, quiet.next_look(&inner)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let woke = match wake_every {
            Some(every) => match rx.recv_timeout(every) {
                Ok(w) => Some(w),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => Some(Work::Run),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => None,
            },
            None => rx.recv().ok(),
        };
        if !matches!(woke, Some(Work::Run)) {
            break;
        }
        loop {
            if inner.error.get().is_some() || inner.closed.load(Ordering::Acquire) {
                break;
            }
            let idle = quiet.is_idle(&inner);
            let task = {
                let mut m = lock(&inner.manifest);
                match pick(&inner, &mut m, idle) {
                    Ok(task) => task,
                    Err(e) => {
                        inner.set_error("picking a compaction", &e);
                        break;
                    }
                }
            };
            let Some((tree, task, version)) = task else {
                break;
            };
            let result = run_task(&inner, &tree, &task, &version);
            lock(&inner.manifest).in_progress(tree.id).remove(&task);
            if let Err(e) = result {
                inner.set_error("compacting", &e);
            }
            inner.signal_progress();
        }
    }
}

/// A compaction picked: its keyspace, the task, and the version it reads.
type Picked = (Arc<Tree>, CompactionTask, Arc<Version>);

/// Under the manifest lock: deletes the tables range deletes made useless, then picks
/// the most urgent compaction of any keyspace (the highest score its policy gives;
/// range-delete, periodic and — when the database is `idle` — level-0 compactions only
/// where no keyspace needs another), and marks it in progress.
fn pick(inner: &DbInner, m: &mut crate::db::ManifestState, idle: bool) -> Result<Option<Picked>> {
    let trees = inner.trees();
    for tree in &trees {
        drop_covered_files(inner, tree, m)?;
    }
    let mut best: Option<Picked> = None;
    for tree in &trees {
        let version = Arc::clone(&tree.view().version);
        let task = tree
            .settings()
            .policy
            .pick(&version.level_metas(), m.in_progress(tree.id));
        if let Some(task) = task
            && best.as_ref().is_none_or(|(_, b, _)| task.score > b.score)
        {
            best = Some((Arc::clone(tree), task, version));
        }
    }
    if best.is_none() {
        for tree in &trees {
            let version = Arc::clone(&tree.view().version);
            if let Some(task) = range_delete_task(tree, m, &version)? {
                best = Some((Arc::clone(tree), task, version));
                break;
            }
        }
    }
    if best.is_none() {
        let now_ms = inner.opts.clock.0.now_ms();
        for tree in &trees {
            let version = Arc::clone(&tree.view().version);
            if let Some(task) = periodic_task(tree, m, &version, now_ms)? {
                best = Some((Arc::clone(tree), task, version));
                break;
            }
        }
    }
    if best.is_none() && idle {
        for tree in &trees {
            let version = Arc::clone(&tree.view().version);
            if let Some(task) = idle_task(tree, m, &version) {
                best = Some((Arc::clone(tree), task, version));
                break;
            }
        }
    }
    if let Some((tree, task, _)) = &best {
        m.in_progress(tree.id).add(task);
    }
    Ok(best)
}

/// With nothing else to do and no write for `idle_compaction`: every level-0 table,
/// when there are at least [`IDLE_L0_FILES`], into the level below, so lookups and
/// iterators that follow find one sorted run where there were several — one table at a
/// time by trivial moves where a table overlaps nothing, else merged in one task.
fn idle_task(
    tree: &Tree,
    m: &mut crate::db::ManifestState,
    version: &Version,
) -> Option<CompactionTask> {
    let l0 = &version.levels[0];
    if l0.len() < IDLE_L0_FILES
        || l0
            .iter()
            .any(|f| m.in_progress(tree.id).contains_file(f.meta.number))
    {
        return None;
    }
    let policy = &tree.settings().policy;
    let levels = version.level_metas();
    // A table that overlaps no other level-0 table and nothing below (a sequential
    // load's) moves down without a rewrite, oldest first.
    let moved = l0.iter().rev().find_map(|f| {
        let (lo, hi) = (f.meta.smallest_user_key(), f.meta.largest_user_key());
        policy
            .pick_manual(&levels, m.in_progress(tree.id), 0, lo, hi)
            .filter(|t| t.trivial_move)
    });
    let mut task = match moved {
        Some(t) => t,
        None => {
            let lo = l0.iter().map(|f| f.meta.smallest_user_key()).min()?;
            let hi = l0.iter().map(|f| f.meta.largest_user_key()).max()?;
            policy.pick_manual(&levels, m.in_progress(tree.id), 0, lo, hi)?
        }
    };
    task.reason = strata_compaction::CompactionReason::Idle;
    Some(task)
}

/// Deletes, without reading them, the tables (L1 and deeper) that a newer range
/// tombstone in a level above covers entirely — for every reader: no live snapshot
/// sees any of the table's entries without also seeing the tombstone — and tables of
/// range tombstones alone over keys no deeper table holds. Their space
/// comes back at once instead of at the next compaction that reaches them (RocksDB's
/// "delete-only compaction"). Runs under the manifest lock, skipping tables a running
/// compaction reads.
fn drop_covered_files(
    inner: &DbInner,
    tree: &Tree,
    m: &mut crate::db::ManifestState,
) -> Result<()> {
    let deleted = covered_files(inner, tree, m)?;
    if deleted.is_empty() {
        return Ok(());
    }
    let count = deleted.len() as u64;
    let mut edit = VersionEdit {
        deleted_files: deleted,
        ..VersionEdit::default()
    };
    m.log_and_apply(inner, tree, &mut edit, |_| {})?;
    inner
        .stats
        .files_dropped_by_range_deletes
        .fetch_add(count, Ordering::Relaxed);
    tracing::info!(
        files = count,
        "deleted tables a newer range tombstone covers"
    );
    Ok(())
}

/// With nothing else to do: a compaction of a table of L1 or deeper whose range
/// tombstones cover at least a quarter of the bytes of the deeper tables they overlap
/// (whole data blocks inside a tombstone, from those tables' indexes: no data is read),
/// into the next level, so the keys they delete — and then the tombstones — leave the
/// tree instead of costing every read and scan until the level fills up (Pebble weighs
/// range deletions into compaction the same way). Tables covered entirely are gone
/// already ([`drop_covered_files`]).
fn range_delete_task(
    tree: &Tree,
    m: &mut crate::db::ManifestState,
    version: &Version,
) -> Result<Option<CompactionTask>> {
    if !tree.settings().opts.range_delete_compactions {
        return Ok(None);
    }
    // Weighed once per version: this runs at every idle pass of a compaction thread and
    // every poll of `wait_for_compaction`, and walks the deeper tables' indexes.
    let candidates = version.range_delete_candidates(dense_range_delete_tables)?;
    for &(level, number) in candidates {
        if m.in_progress(tree.id).contains_file(number) {
            continue;
        }
        let Some(f) = version.levels[level]
            .iter()
            .find(|f| f.meta.number == number)
        else {
            continue;
        };
        let reason = strata_compaction::CompactionReason::RangeDeletes;
        if let Some(task) = file_task(tree, m, version, level, f, reason) {
            return Ok(Some(task));
        }
    }
    Ok(None)
}

/// With nothing else to do: a compaction of the oldest table written longer ago than
/// the keyspace's periodic-compaction age (`DbBuilder::periodic_compaction`), into the
/// next level — or into itself at the last level — so expired values, what the
/// compaction filter removes and the versions the table shadows leave even a database
/// that no longer writes. A table moved down without being rewritten keeps its age and
/// is picked again until the last level rewrites it; the rewrite makes it new.
fn periodic_task(
    tree: &Tree,
    m: &mut crate::db::ManifestState,
    version: &Version,
    now_ms: u64,
) -> Result<Option<CompactionTask>> {
    let Some(age) = tree.settings().opts.periodic_compaction else {
        return Ok(None);
    };
    let age_ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
    let mut oldest: Option<(u64, usize, &TableFile)> = None;
    for (level, files) in version.levels.iter().enumerate() {
        for f in files {
            if m.in_progress(tree.id).contains_file(f.meta.number) {
                continue;
            }
            let created = f.created_ms()?;
            if now_ms.saturating_sub(created) >= age_ms
                && oldest.as_ref().is_none_or(|(c, _, _)| created < *c)
            {
                oldest = Some((created, level, f));
            }
        }
    }
    let Some((_, level, f)) = oldest else {
        return Ok(None);
    };
    let reason = strata_compaction::CompactionReason::Periodic;
    Ok(file_task(tree, m, version, level, f, reason))
}

/// A compaction of table `f` of `level` (with what it overlaps) into the next level, or
/// into itself at the last, picked for `reason`; `None` if a running one holds a file
/// it needs.
fn file_task(
    tree: &Tree,
    m: &mut crate::db::ManifestState,
    version: &Version,
    level: usize,
    f: &TableFile,
    reason: strata_compaction::CompactionReason,
) -> Option<CompactionTask> {
    let (lo, hi) = (f.meta.smallest_user_key(), f.meta.largest_user_key());
    let task = tree.settings().policy.pick_manual(
        &version.level_metas(),
        m.in_progress(tree.id),
        level,
        lo,
        hi,
    );
    task.map(|mut t| {
        t.reason = reason;
        t
    })
}

/// The `(level, file number)` of the tables of L1 and deeper (above the last level)
/// whose range tombstones cover at least a quarter of the bytes of the deeper tables
/// they overlap, in whole data blocks (see [`covered_bytes`]).
fn dense_range_delete_tables(version: &Version) -> Result<Vec<(usize, u64)>> {
    let mut found = Vec::new();
    let deepest = version.levels.len().saturating_sub(1);
    for level in (1..deepest).filter(|&l| version.has_range_tombstones(l)) {
        for f in version.levels[level]
            .iter()
            .filter(|f| f.meta.range_tombstones > 0)
        {
            let table = f.table()?;
            let ranges = table.range_tombstones();
            let (lo, hi) = (f.meta.smallest_user_key(), f.meta.largest_user_key());
            let (mut covered, mut overlapped) = (0u64, 0u64);
            for deeper in version.levels.iter().skip(level + 1) {
                let start = deeper.partition_point(|d| d.meta.largest_user_key() < lo);
                for d in deeper.iter().skip(start) {
                    if d.meta.smallest_user_key() > hi {
                        break;
                    }
                    let (c, o) = covered_bytes(&*d.table()?, d.meta.smallest_user_key(), ranges);
                    covered += c;
                    overlapped += o;
                }
            }
            if covered > 0 && covered * 4 >= overlapped {
                found.push((level, f.meta.number));
            }
        }
    }
    Ok(found)
}

/// Bytes of `table`'s data blocks lying wholly inside one of `ranges`' fragments, and
/// of all its data blocks: from its index alone. A block's keys lie between the previous
/// block's separator (or the table's smallest key) and its own.
fn covered_bytes(
    table: &strata_sstable::Table,
    smallest: &[u8],
    ranges: &FragmentedTombstones,
) -> (u64, u64) {
    let (mut covered, mut total) = (0u64, 0u64);
    let mut first_key = smallest;
    let mut hint = 0;
    for entry in table.index_entries() {
        let last_key = strata_core::key::user_key(entry.separator);
        let size = entry.handle.size;
        total += size;
        if ranges
            .fragment_at_hinted(first_key, &mut hint)
            .is_some_and(|f| last_key < f.end())
        {
            covered += size;
        }
        first_key = last_key;
    }
    (covered, total)
}

/// The `(level, file number)` of the tables [`drop_covered_files`] deletes.
fn covered_files(
    inner: &DbInner,
    tree: &Tree,
    m: &mut crate::db::ManifestState,
) -> Result<Vec<(usize, u64)>> {
    let version = Arc::clone(&tree.view().version);
    if !(0..version.levels.len()).any(|l| version.has_range_tombstones(l)) {
        return Ok(Vec::new());
    }
    // The tombstones of each level, shallowest first (L0 tables one by one).
    let mut sources: Vec<(usize, Arc<FragmentedTombstones>)> = Vec::new();
    for f in version.levels[0]
        .iter()
        .filter(|f| f.meta.range_tombstones > 0)
    {
        sources.push((0, Arc::clone(f.table()?.range_tombstones())));
    }
    for level in 1..version.levels.len() {
        if let Some(set) = version.level_range_tombstones(level)? {
            sources.push((level, set));
        }
    }
    let snapshots = inner.snapshots.list();
    let mut deleted = Vec::new();
    for (level, files) in version.levels.iter().enumerate().skip(1) {
        for f in files {
            let meta = &f.meta;
            if m.in_progress(tree.id).contains_file(meta.number) {
                continue;
            }
            let covered = sources.iter().filter(|(l, _)| *l < level).any(|(_, set)| {
                let Some(fragment) = set.fragment_at(meta.smallest_user_key()) else {
                    return false;
                };
                // The fragment spans the table's keys, and one of its tombstones is
                // newer than every entry with no snapshot in between.
                fragment.end() > meta.largest_user_key()
                    && fragment.seqs().iter().any(|&t| {
                        t > meta.largest_seq
                            && !snapshots.iter().any(|&s| s >= meta.smallest_seq && s < t)
                    })
            });
            // A table of range tombstones alone over keys no deeper table holds hides
            // nothing (shallower tables are newer): useless, whatever the snapshots.
            // (Its recorded range may end on a key it does not cover: ask the table.)
            let useless = meta.entries == 0 && {
                let table = f.table()?;
                let ranges = table.range_tombstones();
                match (ranges.smallest_start(), ranges.largest_end()) {
                    (Some(start), Some(end)) => {
                        !version.levels.iter().skip(level + 1).any(|deeper| {
                            let i = deeper.partition_point(|d| d.meta.largest_user_key() < start);
                            deeper
                                .get(i)
                                .is_some_and(|d| d.meta.smallest_user_key() < end)
                        })
                    }
                    _ => false,
                }
            };
            if covered || useless {
                deleted.push((level, meta.number));
            }
        }
    }
    Ok(deleted)
}

/// Runs one task and installs its outcome, inside a span that says what it is.
fn run_task(
    inner: &DbInner,
    tree: &Tree,
    task: &CompactionTask,
    version: &Arc<Version>,
) -> Result<()> {
    let input_files = task.inputs.len() + task.output_level_inputs.len();
    let input_bytes: u64 = task
        .inputs
        .iter()
        .chain(&task.output_level_inputs)
        .map(|f| f.size_bytes)
        .sum();
    let span = tracing::info_span!(
        "strata.compaction",
        db = %inner.dir.display(),
        keyspace = %tree.name,
        level = task.level,
        output_level = task.output_level,
        reason = ?task.reason,
        score = task.score,
    );
    let _entered = span.enter();
    if task.reason == strata_compaction::CompactionReason::Idle {
        inner.stats.idle_compactions.fetch_add(1, Ordering::Relaxed);
    }
    // A trivial move keeps the tables' bytes as they are. Moved to a level that asks
    // for another compression, they would stay in the wrong one until some later
    // compaction happened to rewrite them: rewrite them now instead.
    let settings = tree.settings();
    let recompress = settings.opts.compression_for(task.level)
        != settings.opts.compression_for(task.output_level);
    let rewritten;
    let task = if task.trivial_move && recompress {
        rewritten = CompactionTask {
            trivial_move: false,
            ..task.clone()
        };
        &rewritten
    } else {
        task
    };
    if task.trivial_move {
        apply_edit(inner, tree, version_edit(task.trivial_move_edit()))?;
        inner.stats.trivial_moves.fetch_add(1, Ordering::Relaxed);
        inner.publish_metrics();
        tracing::info!(input_files, input_bytes, "trivial move");
        return Ok(());
    }
    tracing::debug!(input_files, input_bytes, "compaction started");
    let start = Instant::now();
    inner.metrics.compactions_running.increment(1);
    let result = rewrite(inner, tree, task, version);
    inner.metrics.compactions_running.decrement(1);
    let stats = result?;
    let elapsed = start.elapsed();
    inner.metrics.compaction_duration.record(elapsed);
    inner.publish_metrics();
    tracing::info!(
        input_files,
        read_bytes = stats.input_bytes,
        output_files = stats.output_files,
        written_bytes = stats.output_bytes,
        entries_dropped = stats.versions_dropped + stats.tombstones_dropped + stats.range_deleted,
        duration_ms = elapsed.as_secs_f64() * 1e3,
        "compaction finished"
    );
    Ok(())
}

/// Runs a compaction that rewrites its inputs, and installs the outputs.
fn rewrite(
    inner: &DbInner,
    tree: &Tree,
    task: &CompactionTask,
    version: &Arc<Version>,
) -> Result<CompactionStats> {
    let files: HashMap<u64, Arc<TableFile>> = version
        .levels
        .iter()
        .flatten()
        .map(|f| (f.meta.number, Arc::clone(f)))
        .collect();
    // The inputs' range tombstones, together (tables decode them when they open).
    let mut range_tombstones = Vec::new();
    for meta in task.all_inputs().filter(|f| f.range_tombstones > 0) {
        let file = files.get(&meta.number).ok_or_else(|| {
            Error::InvalidArgument(format!("compaction input {} is not live", meta.number))
        })?;
        range_tombstones.extend(file.table()?.range_tombstones().tombstones());
    }
    let range_tombstones = FragmentedTombstones::new(range_tombstones);
    let opener: TableOpener = Arc::new(move |meta: &FileMeta| {
        let file = files.get(&meta.number).ok_or_else(|| {
            Error::InvalidArgument(format!("compaction input {} is not live", meta.number))
        })?;
        Ok(Box::new(file.table()?.iter_uncached()) as Box<dyn SortedIter + Send>)
    });
    let dir = inner.dir.clone();
    let settings = tree.settings();
    let levels = version.level_entries();
    let run_entries = task
        .inputs
        .iter()
        .chain(&task.output_level_inputs)
        .map(|f| f.entries)
        .sum();
    // One sink per subcompaction the job may run as (`max_subcompactions`).
    let mut sinks: Vec<EngineSink<'_>> = (0..inner.opts.max_subcompactions.max(1))
        .map(|_| EngineSink {
            inner,
            opts: &settings.opts,
            level: task.output_level,
            levels: levels.clone(),
            run_entries,
            created: Vec::new(),
        })
        .collect();
    let outcome = CompactionJob::new(task, opener)
        .snapshots(&inner.snapshots.list())
        .range_tombstones(range_tombstones)
        .merge_operator(
            settings
                .opts
                .merge_operator
                .as_ref()
                .map(|m| Arc::clone(&m.0)),
        )
        .compaction_filter(
            settings
                .opts
                .compaction_filter
                .as_ref()
                .map(|f| Arc::clone(&f.0)),
        )
        .now_ms(inner.opts.clock.0.now_ms())
        .file_namer(Arc::new(move |n| table_path(&dir, n)))
        .run_split(&mut sinks)
        .and_then(|outcome| {
            inner.fs.sync_dir(&inner.dir)?;
            Ok(outcome)
        });
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            for n in sinks.iter().flat_map(|s| &s.created) {
                let _ = inner.fs.remove(&table_path(&inner.dir, *n));
            }
            return Err(e);
        }
    };
    apply_edit(inner, tree, version_edit(outcome.edit))?;
    let s = &inner.stats;
    s.compactions.fetch_add(1, Ordering::Relaxed);
    s.compaction_bytes_read
        .fetch_add(outcome.stats.input_bytes, Ordering::Relaxed);
    s.compaction_bytes_written
        .fetch_add(outcome.stats.output_bytes, Ordering::Relaxed);
    Ok(outcome.stats)
}

/// The manifest edit for a compaction's change of files.
fn version_edit(e: CompactionEdit) -> VersionEdit {
    VersionEdit {
        deleted_files: e.deleted,
        new_files: e
            .added
            .into_iter()
            .map(|(l, m)| (l, (*m).clone()))
            .collect(),
        ..VersionEdit::default()
    }
}

/// Makes `edit` durable in the manifest and publishes `tree`'s new version.
fn apply_edit(inner: &DbInner, tree: &Tree, mut edit: VersionEdit) -> Result<()> {
    lock(&inner.manifest).log_and_apply(inner, tree, &mut edit, |_| {})
}

/// Output tables of a compaction, built by the SSTable builder under fresh file numbers.
struct EngineSink<'a> {
    inner: &'a DbInner,
    /// The keyspace's options (table layout).
    opts: &'a Options,
    /// The level the outputs go to (their compression and filter follow it).
    level: usize,
    /// The tree's shape when the compaction started, and the entries it rewrites: what
    /// a filter budget sizes the outputs' filters from.
    levels: Vec<Vec<u64>>,
    run_entries: u64,
    created: Vec<u64>,
}

struct EngineTableWriter {
    number: u64,
    builder: TableBuilder,
}

impl TableSink for EngineSink<'_> {
    type Writer = EngineTableWriter;

    fn create(&mut self) -> Result<EngineTableWriter> {
        let number = self.inner.new_file_number();
        self.created.push(number);
        let file = self.inner.fs.create(&table_path(&self.inner.dir, number))?;
        let mut builder = TableBuilder::new(
            file,
            table_options(self.opts, self.level, &self.levels, self.run_entries),
        )?;
        builder.set_creation_time_ms(self.inner.opts.clock.0.now_ms());
        Ok(EngineTableWriter { number, builder })
    }
}

impl TableWriter for EngineTableWriter {
    fn add(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.builder.add(key, value)
    }

    fn add_range_tombstones(&mut self, tombstones: &FragmentedTombstones) -> Result<()> {
        self.builder.add_range_tombstones(tombstones)
    }

    fn estimated_size(&self) -> u64 {
        self.builder.estimated_file_size()
    }

    fn finish(self) -> Result<strata_compaction::TableSummary> {
        let s = self.builder.finish()?;
        Ok(strata_compaction::TableSummary {
            file_number: self.number,
            size_bytes: s.file_size,
            entries: s.entry_count,
        })
    }
}

/// Compacts every level's files overlapping `range` down the tree, waiting for
/// background compactions that hold any of them.
pub(crate) fn compact_range(inner: &Arc<DbInner>, tree: &Tree, range: &KeyRange) -> Result<()> {
    for level in 0..NUM_LEVELS {
        loop {
            inner.check_writable()?;
            let picked = {
                let mut m = lock(&inner.manifest);
                let version = Arc::clone(&tree.view().version);
                let levels = version.level_metas();
                let overlapping: Vec<&Arc<FileMeta>> = levels[level]
                    .iter()
                    .filter(|f| range.overlaps(f.smallest_user_key(), f.largest_user_key()))
                    .collect();
                if overlapping.is_empty() {
                    break;
                }
                // The last non-empty level rewrites into itself once, if that can drop
                // anything: tombstones (point or range), values the compaction filter
                // removes, expired values and merge operands left unfolded (only tables
                // of format 4 hold those two). Otherwise stop there.
                let deepest = levels.iter().rposition(|l| !l.is_empty()).unwrap_or(0);
                if level == deepest && level > 0 {
                    let tombstones = overlapping
                        .iter()
                        .any(|f| f.tombstones > 0 || f.range_tombstones > 0);
                    let filtered = tree.settings().opts.compaction_filter.is_some();
                    let mut v4 = false;
                    for f in version.levels.get(level).into_iter().flatten().filter(|f| {
                        range.overlaps(f.meta.smallest_user_key(), f.meta.largest_user_key())
                    }) {
                        // A table that cannot be opened fails the call as its
                        // compaction would: the error is sticky.
                        match f.table() {
                            Ok(t) => v4 |= t.allows_merge_operands(),
                            Err(e) => {
                                inner.set_error("compacting a range", &e);
                                return Err(e);
                            }
                        }
                    }
                    if !(tombstones || filtered || v4) {
                        break;
                    }
                }
                let lo = overlapping
                    .iter()
                    .map(|f| f.smallest_user_key())
                    .min()
                    .unwrap_or_default()
                    .to_vec();
                let hi = overlapping
                    .iter()
                    .map(|f| f.largest_user_key())
                    .max()
                    .unwrap_or_default()
                    .to_vec();
                let in_progress = m.in_progress(tree.id);
                let task =
                    tree.settings()
                        .policy
                        .pick_manual(&levels, in_progress, level, &lo, &hi);
                if let Some(t) = &task {
                    in_progress.add(t);
                }
                task.map(|t| (t, version))
            };
            match picked {
                Some((task, version)) => {
                    let result = run_task(inner, tree, &task, &version);
                    lock(&inner.manifest).in_progress(tree.id).remove(&task);
                    if let Err(e) = result {
                        inner.set_error("compacting a range", &e);
                        return Err(e);
                    }
                    if task.output_level == task.level {
                        break;
                    }
                }
                // A file is busy in a background compaction: wait for it.
                None => crate::write::wait_for_progress(inner),
            }
        }
    }
    inner.schedule_compaction();
    Ok(())
}

/// `Db::wait_for_compaction`: blocks until no MemTable is frozen (waiting for or in a
/// flush), no compaction runs and the policy picks none.
pub(crate) fn wait_for_idle(inner: &DbInner) -> Result<()> {
    loop {
        inner.check_writable()?;
        let busy = {
            // Under the manifest lock, as the compaction threads pick: a task is either
            // in progress here or its edit is in the version.
            let mut m = lock(&inner.manifest);
            let mut busy = false;
            for tree in inner.trees() {
                let view = tree.view();
                busy = !view.frozen.is_empty()
                    || !m.in_progress(tree.id).is_empty()
                    || !covered_files(inner, &tree, &mut m)?.is_empty()
                    || range_delete_task(&tree, &mut m, &view.version)?.is_some()
                    || periodic_task(&tree, &mut m, &view.version, inner.opts.clock.0.now_ms())?
                        .is_some()
                    || tree
                        .settings()
                        .policy
                        .pick(&view.version.level_metas(), m.in_progress(tree.id))
                        .is_some();
                if busy {
                    break;
                }
            }
            busy
        };
        if !busy {
            return Ok(());
        }
        // Wake a thread in case a doorbell was missed; both are no-ops when it is busy.
        inner.schedule_flush();
        inner.schedule_compaction();
        crate::write::wait_for_progress(inner);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Compression, DbBuilder};

    /// Each level's tables are written with that level's compression (flushes at L0,
    /// compactions at their output level), and read back whole.
    #[test]
    fn tables_take_the_compression_of_the_level_they_are_written_to() {
        let deep = if cfg!(feature = "zstd") {
            Compression::Zstd
        } else {
            Compression::Lz4
        };
        let db = DbBuilder::in_memory()
            .compression_per_level(&[Compression::None, Compression::Lz4, deep])
            .l0_compaction_trigger(100)
            .open()
            .unwrap();
        let value = "compressible ".repeat(40);
        for i in 0..2000 {
            db.put(format!("k{i:05}"), &value).unwrap();
        }
        db.flush().unwrap();
        let codecs = |db: &crate::Db| -> Vec<Vec<strata_sstable::Compression>> {
            let view = db.inner().tree.view();
            view.version
                .levels
                .iter()
                .map(|files| {
                    files
                        .iter()
                        .map(|f| f.table().unwrap().properties().compression)
                        .collect()
                })
                .collect()
        };
        assert_eq!(codecs(&db)[0], [strata_sstable::Compression::None]);
        db.compact_range::<&[u8], _>(..).unwrap();
        // A lone database compacts straight to the bottom level (L6).
        let after = codecs(&db);
        assert!(after[..6].iter().all(Vec::is_empty), "{after:?}");
        assert!(after[6].iter().all(|c| *c == deep.to_table()), "{after:?}");
        let stats = db.stats();
        assert!(
            stats.levels[6].bytes < 2000 * value.len() as u64 / 4,
            "compressed: {} bytes for {} of values",
            stats.levels[6].bytes,
            2000 * value.len()
        );
        for i in (0..2000).step_by(97) {
            assert_eq!(
                db.get(format!("k{i:05}")).unwrap().as_deref(),
                Some(value.as_bytes())
            );
        }
        assert_eq!(db.iter().count(), 2000);
    }

    /// Under a filter budget, a small L0 table beside a large bottom level gets more
    /// bits per key than the bottom level's tables, and the bottom level fewer than the
    /// budget.
    #[test]
    fn a_filter_budget_gives_small_runs_more_bits_than_the_bottom_level() {
        let db = DbBuilder::in_memory()
            .bloom_filter_budget(10.0)
            .l0_compaction_trigger(100)
            .open()
            .unwrap();
        for i in 0..20_000 {
            db.put(format!("k{i:06}"), "v").unwrap();
        }
        db.compact_range::<&[u8], _>(..).unwrap();
        for i in 0..200 {
            db.put(format!("k{:06}", i * 100 + 1), "newer").unwrap();
        }
        db.flush().unwrap();
        let bits_per_key = |files: &[std::sync::Arc<crate::version::TableFile>]| -> f64 {
            let (bits, keys) = files.iter().fold((0u64, 0u64), |(b, k), f| {
                let t = f.table().unwrap();
                match t.filter_status() {
                    strata_sstable::FilterStatus::Loaded { bits, .. } => {
                        (b + bits, k + t.properties().distinct_user_keys)
                    }
                    other => panic!("{other:?}"),
                }
            });
            bits as f64 / keys as f64
        };
        let view = db.inner().tree.view();
        let l0 = bits_per_key(&view.version.levels[0]);
        let bottom = bits_per_key(&view.version.levels[6]);
        assert!(
            l0 > bottom + 5.0,
            "L0 {l0:.1} vs bottom {bottom:.1} bits per key"
        );
        assert!(bottom < 10.5, "bottom {bottom:.1} bits per key");
        for i in 0..200 {
            assert_eq!(
                db.get(format!("k{:06}", i * 100 + 1)).unwrap().as_deref(),
                Some(&b"newer"[..])
            );
        }
    }

    #[test]
    fn a_level_past_the_list_takes_its_last_entry() {
        let db =
            DbBuilder::in_memory().compression_per_level(&[Compression::None, Compression::Lz4]);
        assert_eq!(db.opts.compression_for(0), Compression::None);
        assert_eq!(db.opts.compression_for(1), Compression::Lz4);
        assert_eq!(db.opts.compression_for(6), Compression::Lz4);
        let bits = DbBuilder::in_memory().bloom_bits_per_key_per_level(&[14, 10, 6]);
        assert_eq!(
            (0..7)
                .map(|l| bits.opts.bloom_bits_for(l, &[], 0))
                .collect::<Vec<_>>(),
            [14, 10, 6, 6, 6, 6, 6]
        );
        let default = DbBuilder::in_memory().bloom_bits_per_key(9);
        assert_eq!(default.opts.bloom_bits_for(3, &[], 0), 9);
        // L0, which every lookup asks, gets more bits unless levels are given, and
        // none when filters are off.
        assert_eq!(default.opts.bloom_bits_for(0, &[], 0), 15);
        assert_eq!(bits.opts.bloom_bits_for(0, &[], 0), 14);
        let off = DbBuilder::in_memory().bloom_bits_per_key(0);
        assert_eq!(off.opts.bloom_bits_for(0, &[], 0), 0);
    }
}
