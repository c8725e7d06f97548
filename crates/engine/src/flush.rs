//! Flushing frozen MemTables to L0 tables.
//!
//! Install order (durability rule 10): write the table → fsync it → fsync the directory
//! → append the edit to the manifest and fsync it → publish the new version → delete
//! the WAL that held the MemTable.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::path::Path;
use strata_compaction::FileMeta;

use strata_core::{FileSystem, Result, SortedIter};
use strata_memtable::MemTable;
use strata_sstable::{TableBuilder, TableOptions};

use crate::db::{DbInner, Work, lock};
use crate::edit::VersionEdit;
use crate::filename::{table_path, wal_path};
use crate::tree::Tree;

/// How often the flush thread, idle, brings the mirrored metrics up to date (read-only
/// workloads move the Bloom and cache counters without any flush or compaction).
const METRICS_INTERVAL: Duration = Duration::from_secs(1);

/// The flush thread: one pass per doorbell until told to stop.
pub(crate) fn run_flush_thread(inner: Arc<DbInner>, rx: Receiver<Work>) {
    loop {
        match rx.recv_timeout(METRICS_INTERVAL) {
            Ok(Work::Run) => {}
            Ok(Work::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                inner.publish_metrics();
                continue;
            }
        }
        while inner.error.get().is_none() {
            let Some(tree) = oldest_frozen(&inner) else {
                break;
            };
            if let Err(e) = flush_oldest(&inner, &tree) {
                inner.set_error("flushing a MemTable", &e);
            }
            inner.signal_progress();
        }
    }
}

/// The keyspace whose oldest frozen MemTable holds the oldest WAL back, if any
/// keyspace has a frozen MemTable: flushed first, so WALs go in order. MemTables a
/// checkpoint's cut holds back (`DbInner::flush_barrier`) wait.
fn oldest_frozen(inner: &DbInner) -> Option<Arc<Tree>> {
    let barrier = inner.flush_barrier.load(Ordering::Acquire);
    inner
        .trees()
        .into_iter()
        .filter_map(|t| {
            let wal = t.view().frozen.last().map(|(_, wal)| *wal)?;
            (wal < barrier).then_some((wal, t))
        })
        .min_by_key(|(wal, _)| *wal)
        .map(|(_, t)| t)
}

/// Writes `tree`'s oldest frozen MemTable as an L0 table and installs it, then deletes
/// the WALs no keyspace needs any more.
fn flush_oldest(inner: &Arc<DbInner>, tree: &Tree) -> Result<()> {
    let view = tree.view();
    let Some((mem, wal_number)) = view.frozen.last().cloned() else {
        return Ok(());
    };
    let span = tracing::info_span!(
        "strata.flush",
        db = %inner.dir.display(),
        keyspace = %tree.name,
        wal = wal_number
    );
    let _entered = span.enter();
    let memtable_bytes = mem.approximate_memory_usage();
    tracing::debug!(memtable_bytes, "flush started");
    let start = Instant::now();
    let meta = write_level0_table(inner, tree, &mem)?;
    let written = meta.as_ref().map(|m| (m.number, m.size_bytes, m.entries));
    // Every entry of this keyspace up to the table's newest is now in its tables (the
    // MemTable held all of them not flushed before; an empty one moves nothing).
    let flushed_seq = meta.as_ref().map(|m| m.largest_seq.max(tree.flushed_seq()));

    let mut manifest = lock(&inner.manifest);
    // The oldest WAL any keyspace needs once this MemTable is gone: every older one is
    // fully in tables. Other keyspaces' MemTables only ever move on meanwhile, so the
    // number can only be lower than the truth, never skip a needed WAL.
    let log_number = {
        let keyspaces = inner.keyspaces.read().unwrap_or_else(|p| p.into_inner());
        let own = tree.view().successor_wal();
        keyspaces
            .trees
            .values()
            .filter(|t| t.id != tree.id)
            .map(|t| t.view().oldest_wal())
            .fold(own, u64::min)
    };
    // The WALs that hold this MemTable's entries and stay on disk (another keyspace
    // still needs them) must be durable before the table is: otherwise a power loss
    // could cut them short while the table keeps later writes — reused sequence
    // numbers, and writes kept past a lost one. With one keyspace the range is empty:
    // the flushed MemTable's WALs are deleted below, unsynced (they need no sync).
    let next_wal = view.successor_wal();
    if log_number < next_wal {
        crate::write::sync_closed_wals_in(inner, log_number..next_wal)?;
    }
    let mut edit = VersionEdit {
        log_number: Some(log_number),
        flushed_seq,
        new_files: meta.into_iter().map(|m| (0, m)).collect(),
        ..VersionEdit::default()
    };
    let before = manifest.log_number;
    manifest.log_and_apply(inner, tree, &mut edit, |v| {
        // The flushed MemTable is the oldest frozen one.
        v.frozen.pop();
        if let Some(seq) = flushed_seq {
            tree.set_flushed_seq(seq);
        }
        // Before anyone can see it gone from the view (a `flush()` waiting for it, then
        // reading `stats()`).
        crate::write::forget_closed_wals(inner, log_number.saturating_sub(1));
        inner.stats.flushes.fetch_add(1, Ordering::Relaxed);
    })?;
    // What the manifest records now (the edit's number, or the old one if the
    // keyspace was dropped meanwhile and the edit was left out): only WALs below it
    // may go.
    let recorded = manifest.log_number;
    drop(manifest);
    let elapsed = start.elapsed();
    inner.metrics.flush_duration.record(elapsed);
    inner.publish_metrics();
    let duration_ms = elapsed.as_secs_f64() * 1e3;
    match written {
        Some((table, bytes, entries)) => {
            tracing::info!(
                table,
                bytes,
                entries,
                memtable_bytes,
                duration_ms,
                "flush finished"
            );
        }
        None => tracing::debug!(duration_ms, "flush finished: the MemTable was empty"),
    }
    // Best effort: an old WAL left behind is deleted at the next open.
    for n in before..recorded {
        let path = wal_path(&inner.dir, n);
        if inner.fs.exists(&path).unwrap_or(false) {
            let _ = inner.fs.remove(&path);
        }
    }
    inner.schedule_compaction();
    Ok(())
}

/// Writes `mem` as a new table; `None` if it holds nothing.
pub(crate) fn write_level0_table(
    inner: &DbInner,
    tree: &Tree,
    mem: &Arc<MemTable>,
) -> Result<Option<FileMeta>> {
    if mem.is_empty() {
        return Ok(None);
    }
    let number = inner.new_file_number();
    let meta = build_table(
        &*inner.fs,
        &inner.dir,
        number,
        crate::compact::table_options(
            &tree.settings().opts,
            0,
            &tree.view().version.level_entries(),
            mem.len() as u64,
        ),
        mem,
        &FlushRules {
            snapshots: &inner.snapshots.list(),
            operator: tree.settings().opts.merge_operator.as_ref().map(|m| &*m.0),
            now_ms: inner.opts.clock.0.now_ms(),
        },
    )?;
    inner
        .stats
        .flush_bytes_written
        .fetch_add(meta.size_bytes, Ordering::Relaxed);
    Ok(Some(meta))
}

/// What a flush needs to write only what some reader can still see.
pub(crate) struct FlushRules<'a> {
    /// The live snapshots' sequence numbers.
    pub snapshots: &'a [strata_core::SequenceNumber],
    /// The keyspace's merge operator.
    pub operator: Option<&'a dyn strata_core::MergeOperator>,
    /// Now, by the database's clock: the table's creation time, and the time expired
    /// values are judged at.
    pub now_ms: u64,
}

/// Writes `mem` to table `number`, fsyncs it and its directory; on failure the partial
/// file is removed. What is written is what some reader can still see, by the rules
/// compaction follows (`strata_compaction::compact_stream`): per snapshot stripe the
/// newest version of each key, runs of merge operands folded into one entry, entries a
/// range tombstone of the MemTable deletes for all their readers left out, expired
/// values as tombstones. Anything older may lie below a new level-0 table, so no
/// tombstone is dropped, and the compaction filter is not asked (compaction asks it).
pub(crate) fn build_table(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
    options: TableOptions,
    mem: &Arc<MemTable>,
    rules: &FlushRules<'_>,
) -> Result<FileMeta> {
    let path = table_path(dir, number);
    let result = (|| {
        let mut builder = TableBuilder::new(fs.create(&path)?, options)?;
        builder.set_creation_time_ms(rules.now_ms);
        let ranges = mem.range_tombstones();
        let mut gc = strata_compaction::VersionGc::new(rules.snapshots, |_: &[u8]| true);
        let stream = strata_compaction::StreamRules {
            operator: rules.operator,
            now_ms: rules.now_ms,
            filter: None,
            level: 0,
            ranges: &ranges,
        };
        let mut it = mem.iter();
        it.seek_to_first()?;
        strata_compaction::compact_stream(&mut it, &mut gc, &stream, &mut |_, key, value| {
            builder.add(key, value)
        })?;
        builder.add_range_tombstones(&ranges)?;
        let summary = builder.finish()?;
        fs.sync_dir(dir)?;
        Ok(crate::compact::file_meta(number, summary))
    })();
    if result.is_err() {
        let _ = fs.remove(&path);
    }
    result
}

/// Freezes the MemTable (if it holds anything) and waits until no frozen MemTable is
/// left, as long as `check` (whether the caller may go on: `check_writable` for a
/// user's flush, `check_healthy` for the one at close) allows.
pub(crate) fn flush_and_wait(
    inner: &Arc<DbInner>,
    check: fn(&DbInner) -> Result<()>,
) -> Result<()> {
    check(inner)?;
    {
        let mut ws = lock(&inner.write);
        let full: Vec<Arc<Tree>> = inner
            .trees()
            .into_iter()
            .filter(|t| !t.view().mem.is_empty())
            .collect();
        if !full.is_empty() {
            crate::write::rotate(inner, &mut ws, &full)?;
        }
    }
    loop {
        check(inner)?;
        if inner.trees().iter().all(|t| t.view().frozen.is_empty()) {
            return Ok(());
        }
        inner.schedule_flush();
        crate::write::wait_for_progress(inner);
    }
}
