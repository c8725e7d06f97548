//! The write path: group commit, the WAL, MemTable inserts, and making room.
//!
//! Writers queue up; the writer at the head of the queue becomes the *leader*, takes the
//! whole queue (up to a size limit) as one group, writes it as ONE WAL record with at
//! most one fsync, inserts it into the MemTable and wakes the others. Sequence numbers
//! are assigned per group, consecutively, in queue order.
//!
//! Lock order: `queue` is never held across I/O; `write` (the leader's state) is held by
//! one leader at a time across the WAL write; nothing here takes `manifest`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use strata_core::{Error, Result, SequenceNumber};
use strata_memtable::MemTable;
use strata_wal::{LogWriter, SyncPolicy};

use crate::batch::{BatchEntry, BatchOp, DEFAULT_KEYSPACE, WriteBatch, encode_record};
use crate::db::{DbInner, lock};
use crate::filename::wal_path;
use crate::observe::StallCause;
use crate::options::Options;
use crate::tree::{Tree, View};
use crate::txn::ConflictCheck;

/// Zero-filled space kept ahead of a WAL that receives synced writes (extended by
/// twice this when less is left): its fdatasyncs then commit no file-size change
/// (≈ 11k/s against ≈ 8k/s appending, on this machine's ext4). Costs one extra device
/// write of the WAL's bytes, and only for WALs that see synced writes.
const WAL_PREALLOCATE_BYTES: u64 = 1 << 20;

/// Group size beyond which the leader leaves the rest of the queue to the next leader,
/// so one huge group does not delay small writers' acknowledgements too much.
const MAX_GROUP_BYTES: usize = 1 << 20;

/// One queued write and, once done, its outcome.
struct Pending {
    batch: WriteBatch,
    /// The batch with its open range deletes given their ends, if it had any (set by
    /// the leader under the write lock, before the WAL record is made).
    resolved: OnceLock<WriteBatch>,
    sync: bool,
    /// A transaction's commit: what must not have changed since its snapshot.
    check: Option<ConflictCheck>,
    /// `None` while queued; the leader stores the group's outcome: on failure, a clone
    /// of the very error it got itself.
    outcome: Mutex<Option<Result<()>>>,
}

impl Pending {
    /// What is written: the batch, with its open range deletes resolved.
    fn batch(&self) -> &WriteBatch {
        self.resolved.get().unwrap_or(&self.batch)
    }
}

/// Writers waiting their turn.
#[derive(Default)]
pub(crate) struct WriteQueue {
    queue: Mutex<VecDeque<Arc<Pending>>>,
    turn: Condvar,
    /// Writers inside [`write`] now, queued or not yet: how many a syncing leader may
    /// expect to join its group.
    writers: AtomicUsize,
    /// Whether a leader waits on `arrived` for more writers to join a synced group.
    gathering: AtomicBool,
    arrived: Condvar,
    /// How long the last WAL sync took, in nanoseconds.
    last_sync_nanos: AtomicU64,
}

/// Counts a writer in [`WriteQueue::writers`] until it returns.
struct Active<'a>(&'a AtomicUsize);

impl<'a> Active<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Active(count)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The longest a syncing leader waits for company: a fraction of a sync, so waiting
/// never costs more than the sync it shares.
const MAX_GATHER: Duration = Duration::from_millis(1);

/// The leader's state: the live WAL and the last sequence number used.
pub(crate) struct WriteState {
    pub wal: LogWriter,
    pub wal_number: u64,
    pub last_seq: SequenceNumber,
    record: Vec<u8>,
}

/// Rotated-out WALs holding records no sync has covered, oldest first. They are synced
/// lazily, just before the first synced write after them (see [`sync_closed_wals`]), so
/// a log that is flushed and deleted before anyone asks for durability never costs a
/// device write. The flush that makes one obsolete drops it ([`forget_closed_wals`]):
/// an open descriptor would keep the deleted file's dirty pages alive until the
/// kernel writes them back.
///
/// A leaf lock: nothing else is taken while it is held.
#[derive(Default)]
pub(crate) struct ClosedWals(Mutex<Vec<(u64, LogWriter)>>, Mutex<()>);

impl ClosedWals {
    /// How many rotated-out WALs are held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.0).len()
    }
}

impl WriteState {
    pub fn new(wal: LogWriter, wal_number: u64, last_seq: SequenceNumber) -> Self {
        WriteState {
            wal,
            wal_number,
            last_seq,
            record: Vec::new(),
        }
    }
}

/// Validates and applies one batch through the group-commit queue.
pub(crate) fn write(inner: &Arc<DbInner>, batch: WriteBatch, sync: bool) -> Result<()> {
    write_checked(inner, batch, sync, None)
}

/// [`write`], for a transaction's commit: the leader checks `check` inside the group
/// (against every commit since the transaction's snapshot, the group's earlier members
/// included) and leaves the batch out, failing with `Error::Conflict`, if it fails.
pub(crate) fn write_checked(
    inner: &Arc<DbInner>,
    batch: WriteBatch,
    sync: bool,
    check: Option<ConflictCheck>,
) -> Result<()> {
    validate(inner, &batch)?;
    inner.check_writable()?;
    if batch.is_empty() {
        // Nothing to order against other writers: every write acknowledged before this
        // call is in the WAL already, and `sync_wal` takes the lock their leaders hold.
        if sync {
            sync_wal(inner)?;
            inner.stats.synced_writes.fetch_add(1, Ordering::Relaxed);
        }
        return Ok(());
    }
    let me = Arc::new(Pending {
        batch,
        resolved: OnceLock::new(),
        sync,
        check,
        outcome: Mutex::new(None),
    });
    let q = &inner.queue;
    let _active = Active::enter(&q.writers);
    let mut queue = lock(&q.queue);
    queue.push_back(Arc::clone(&me));
    if q.gathering.load(Ordering::Relaxed) {
        q.arrived.notify_one();
    }
    loop {
        if let Some(outcome) = lock(&me.outcome).take() {
            return outcome;
        }
        if queue.front().is_some_and(|head| Arc::ptr_eq(head, &me)) {
            break;
        }
        queue = q.turn.wait(queue).unwrap_or_else(|p| p.into_inner());
    }
    let queue = gather(q, queue);
    // Leader: take a group from the head, leaving it queued so later arrivals wait.
    let mut bytes = 0;
    let group: Vec<Arc<Pending>> = queue
        .iter()
        .take_while(|p| {
            let first = bytes == 0;
            bytes += p.batch.encoded_len().max(1);
            first || bytes <= MAX_GROUP_BYTES
        })
        .cloned()
        .collect();
    drop(queue);

    let result = write_group(inner, &group);

    let mut queue = lock(&q.queue);
    for p in &group {
        queue.pop_front();
        if !Arc::ptr_eq(p, &me) {
            // A member left out by its conflict check has its outcome already.
            let mut outcome = lock(&p.outcome);
            if outcome.is_none() {
                *outcome = Some(result.clone());
            }
        }
    }
    let result = match lock(&me.outcome).take() {
        Some(conflict) => conflict,
        None => result,
    };
    // Only queued writers wait on `turn`; waking nobody would still cost a futex
    // syscall per write, a large part of an uncontended put.
    let anyone_waits = group.len() > 1 || !queue.is_empty();
    drop(queue);
    if anyone_waits {
        q.turn.notify_all();
    }
    result
}

/// Lets a leader whose group will be synced wait briefly for the other active writers
/// to queue up, so one fsync covers them all.
///
/// Without it, writers that sync alternate between two halves: while one group's fsync
/// runs, the rest queue up and form the next group, and the first group's writers,
/// released a moment later, miss it. Waiting up to half the last sync's duration lets
/// them catch up; one lone writer never waits.
fn gather<'a>(
    q: &'a WriteQueue,
    mut queue: MutexGuard<'a, VecDeque<Arc<Pending>>>,
) -> MutexGuard<'a, VecDeque<Arc<Pending>>> {
    if !queue.iter().any(|p| p.sync) {
        return queue;
    }
    let budget =
        Duration::from_nanos(q.last_sync_nanos.load(Ordering::Relaxed) / 2).min(MAX_GATHER);
    let deadline = Instant::now() + budget;
    q.gathering.store(true, Ordering::Relaxed);
    while queue.len() < q.writers.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        queue = q
            .arrived
            .wait_timeout(queue, deadline - now)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
    q.gathering.store(false, Ordering::Relaxed);
    queue
}

fn validate(inner: &DbInner, batch: &WriteBatch) -> Result<()> {
    if !batch.names_keyspaces_of(inner.instance) {
        return Err(crate::batch::foreign_keyspaces());
    }
    for entry in batch.iter() {
        let entry = entry.map_err(|e| Error::InvalidArgument(format!("malformed batch: {e}")))?;
        if entry.key.len() > inner.opts.max_key_bytes {
            return Err(Error::InvalidArgument(format!(
                "key of {} bytes exceeds the limit of {}",
                entry.key.len(),
                inner.opts.max_key_bytes
            )));
        }
        if entry.kind == BatchOp::DeleteRange {
            // The end is exclusive: one byte more than a key lets `..=key` end right
            // after the largest key allowed.
            if entry.value.len() > inner.opts.max_key_bytes + 1 {
                return Err(Error::InvalidArgument(format!(
                    "range end of {} bytes exceeds the key limit of {} (+1)",
                    entry.value.len(),
                    inner.opts.max_key_bytes
                )));
            }
            continue;
        }
        // A time to live or expiry leads the user's value.
        let value_len = match entry.kind {
            BatchOp::PutTtl | BatchOp::PutExpiring => entry.value.len().saturating_sub(8),
            _ => entry.value.len(),
        };
        if value_len > inner.opts.max_value_bytes {
            return Err(Error::InvalidArgument(format!(
                "value of {} bytes exceeds the limit of {}",
                value_len, inner.opts.max_value_bytes
            )));
        }
    }
    Ok(())
}

/// Writes one group: WAL record (+ fsync if any member asked), then MemTable.
fn write_group(inner: &Arc<DbInner>, group: &[Arc<Pending>]) -> Result<()> {
    let mut ws = lock(&inner.write);
    make_room(inner, &mut ws)?;
    inner.check_writable()?;
    let group = check_keyspaces(inner, group);
    let group: &[Arc<Pending>] = &group;
    let keyspace_ttls = keyspace_ttls(inner);
    if !keyspace_ttls.is_empty()
        || group
            .iter()
            .any(|p| p.batch.has_open_ranges() || p.batch.has_ttl_puts())
    {
        resolve_at_write(inner, group, &keyspace_ttls)?;
    }
    let group = check_conflicts(inner, group);
    if group.is_empty() {
        return Ok(());
    }
    let group: &[Arc<Pending>] = &group;
    let first_seq = ws.last_seq + 1;
    let state = &mut *ws;
    let sync = group.iter().any(|p| p.sync);
    let written = (|| {
        if sync {
            sync_closed_wals(inner, state)?;
            state.wal.keep_preallocated(WAL_PREALLOCATE_BYTES)?;
        } else {
            state.wal.keep_zeroed_ahead(WAL_PREALLOCATE_BYTES);
        }
        encode_record(
            &mut state.record,
            first_seq,
            group.iter().map(|p| p.batch()),
        );
        state.wal.add_record(&state.record)?;
        if sync {
            let start = Instant::now();
            state.wal.sync()?;
            let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            inner.queue.last_sync_nanos.store(nanos, Ordering::Relaxed);
            let synced = group.iter().filter(|p| p.sync).count();
            inner.stats.wal_syncs.fetch_add(1, Ordering::Relaxed);
            inner
                .stats
                .synced_writes
                .fetch_add(synced as u64, Ordering::Relaxed);
        }
        Ok(())
    })();
    if let Err(e) = written {
        inner.set_error("writing the WAL", &e);
        return Err(e);
    }
    inner
        .stats
        .wal_bytes_written
        .fetch_add(state.record.len() as u64, Ordering::Relaxed);

    // Only the leader (holding `write`) freezes MemTables, so these stay active for
    // the whole group.
    let mem = Arc::clone(&inner.tree.view().mem);
    // Other keyspaces' MemTables, when the group writes to any.
    let others: Vec<(u32, Arc<MemTable>)> = if group.iter().any(|p| p.batch().has_keyspaces()) {
        inner
            .trees()
            .iter()
            .filter(|t| t.id != DEFAULT_KEYSPACE)
            .map(|t| (t.id, Arc::clone(&t.view().mem)))
            .collect()
    } else {
        Vec::new()
    };
    let mut seq = first_seq;
    let mut user_bytes = 0;
    let inserted = (|| {
        let mut writer = mem.writer()?;
        let mut other_writers: Vec<(u32, strata_memtable::MemTableWriter<'_>)> = Vec::new();
        for p in group {
            for entry in p.batch().iter() {
                let entry =
                    entry.map_err(|e| Error::InvalidArgument(format!("malformed batch: {e}")))?;
                if entry.keyspace == DEFAULT_KEYSPACE {
                    entry.apply(&mut writer, seq)?;
                } else if let Some(w) = other_writers
                    .iter_mut()
                    .find(|(id, _)| *id == entry.keyspace)
                {
                    entry.apply(&mut w.1, seq)?;
                } else if let Some((id, m)) = others.iter().find(|(id, _)| *id == entry.keyspace) {
                    let mut w = m.writer()?;
                    entry.apply(&mut w, seq)?;
                    other_writers.push((*id, w));
                }
                // Else the keyspace was dropped after `check_keyspaces`: the entry is
                // in the WAL, which recovery skips for a dropped keyspace.
                user_bytes += entry.key.len() + entry.value.len();
                seq += 1;
            }
        }
        Ok(())
    })();
    if let Err(e) = inserted {
        // The WAL holds the group but the MemTable only part of it: readers must not
        // go on from here. Reopening replays the WAL.
        inner.set_error("inserting into the MemTable", &e);
        return Err(e);
    }
    inner
        .stats
        .user_bytes_written
        .fetch_add(user_bytes as u64, Ordering::Relaxed);
    ws.last_seq = seq - 1;
    inner.visible_seq.store(ws.last_seq, Ordering::Release);
    // Open transactions learn of these keys before the write lock is released (the
    // next leader validates commits under it).
    inner.txns.record(
        group
            .iter()
            .flat_map(|p| p.batch().iter())
            .filter_map(|e| e.ok())
            .zip(first_seq..),
    );
    Ok(())
}

/// The time to live (ms) of every keyspace that has one, by id: empty unless some
/// keyspace was ever given one (one atomic load on the common path).
fn keyspace_ttls(inner: &DbInner) -> std::collections::BTreeMap<u32, u64> {
    if !inner.any_ttl.load(Ordering::Acquire) {
        return Default::default();
    }
    inner
        .trees()
        .iter()
        .filter_map(|t| {
            let ttl = t.settings().opts.ttl?;
            Some((t.id, u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)))
        })
        .collect()
}

/// Decides what a batch leaves to write time, before the WAL record is made:
///
/// - Every open range delete of the group (`delete_range(start..)`) gets its end: just
///   past the largest key the database holds — in its MemTables, its tables, or this
///   group's batches (just past its start when no key at or after it exists). Under the
///   write lock, every write ordered before it is in the MemTable or a table already,
///   so the range covers exactly the keys written before it; a key written later has a
///   higher sequence number anyway. The WAL then holds an ordinary range delete.
/// - Every put with a time to live, and every put of a keyspace with one
///   (`keyspace_ttls`), becomes an expiring put: its expiry is the clock's time now
///   plus the time to live. The WAL holds the expiry, so recovery restores it as it
///   was.
fn resolve_at_write(
    inner: &DbInner,
    group: &[Arc<Pending>],
    keyspace_ttls: &std::collections::BTreeMap<u32, u64>,
) -> Result<()> {
    // Per keyspace with an open range: the largest key it holds or the group writes.
    let mut largest: std::collections::BTreeMap<u32, Option<Vec<u8>>> = Default::default();
    for p in group.iter().filter(|p| p.batch.has_open_ranges()) {
        for e in p.batch.iter().flatten() {
            if e.kind == BatchOp::DeleteRangeToEnd && !largest.contains_key(&e.keyspace) {
                let held = match inner.tree_by_id(e.keyspace) {
                    Some(tree) => largest_key(&tree.view())?,
                    None => None,
                };
                largest.insert(e.keyspace, held);
            }
        }
    }
    for p in group {
        for e in p.batch.iter().flatten() {
            if matches!(
                e.kind,
                BatchOp::Put
                    | BatchOp::Delete
                    | BatchOp::Merge
                    | BatchOp::PutTtl
                    | BatchOp::PutExpiring
            ) && let Some(l) = largest.get_mut(&e.keyspace)
                && l.as_deref().is_none_or(|l| e.key > l)
            {
                *l = Some(e.key.to_vec());
            }
        }
    }
    let now_ms = inner.opts.clock.0.now_ms();
    let needs_resolving = |b: &WriteBatch| {
        b.has_open_ranges()
            || b.has_ttl_puts()
            || (!keyspace_ttls.is_empty()
                && b.iter()
                    .flatten()
                    .any(|e| e.kind == BatchOp::Put && keyspace_ttls.contains_key(&e.keyspace)))
    };
    for p in group.iter().filter(|p| needs_resolving(&p.batch)) {
        // With no key at or after `start`, the range is `[start, start ‖ 0)`: it deletes
        // nothing, and the batch keeps its entry count (a record of no entries would
        // read as a sync marker).
        let end_for = |keyspace: u32, start: &[u8]| {
            let last = largest
                .get(&keyspace)
                .and_then(|l| l.as_deref())
                .filter(|l| *l >= start)
                .unwrap_or(start);
            strata_core::range_del::successor(last)
        };
        let resolved = p.batch.resolved(
            end_for,
            |keyspace| keyspace_ttls.get(&keyspace).copied(),
            now_ms,
        );
        // Set once: a group is written by one leader, once.
        let _ = p.resolved.set(resolved);
    }
    Ok(())
}

/// The largest user key a keyspace's view holds, in its MemTables or tables.
fn largest_key(view: &View) -> Result<Option<Vec<u8>>> {
    let mut largest: Option<Vec<u8>> = None;
    let mut consider = |key: &[u8]| {
        if largest.as_deref().is_none_or(|l| key > l) {
            largest = Some(key.to_vec());
        }
    };
    for mem in view.memtables() {
        use strata_core::SortedIter as _;
        let mut it = mem.iter();
        it.seek_to_last()?;
        if it.valid() {
            consider(strata_core::key::user_key(it.key()));
        }
    }
    for (level, files) in view.version.levels.iter().enumerate() {
        // Level 0's tables overlap; deeper levels are sorted: the last ends highest.
        let candidates: &[Arc<crate::version::TableFile>] = if level == 0 {
            files
        } else {
            files.last().map(std::slice::from_ref).unwrap_or_default()
        };
        for f in candidates {
            consider(f.meta.largest_user_key());
        }
    }
    Ok(largest)
}

/// The group's members whose keyspaces all exist: a batch naming a keyspace that was
/// dropped (or never made in this database) fails alone, with `InvalidArgument`.
fn check_keyspaces<'g>(
    inner: &DbInner,
    group: &'g [Arc<Pending>],
) -> std::borrow::Cow<'g, [Arc<Pending>]> {
    if group.iter().all(|p| !p.batch.has_keyspaces()) {
        return std::borrow::Cow::Borrowed(group);
    }
    let keyspaces = inner.keyspaces.read().unwrap_or_else(|p| p.into_inner());
    group
        .iter()
        .filter_map(|p| {
            let missing = p
                .batch
                .iter()
                .flatten()
                .map(|e| e.keyspace)
                .find(|id| {
                    keyspaces
                        .trees
                        .get(id)
                        .is_none_or(|t| t.dropped.load(Ordering::Acquire))
                });
            match missing {
                Some(id) => {
                    *lock(&p.outcome) = Some(Err(Error::InvalidArgument(format!(
                        "the batch writes to keyspace {id}, which this database does not hold (dropped, or made by another database)"
                    ))));
                    None
                }
                None => Some(Arc::clone(p)),
            }
        })
        .collect()
}

/// The group's members that may be written: transactions whose conflict check fails
/// are left out, with the conflict as their outcome. Members are checked in queue
/// order, each against the writes accepted before it.
fn check_conflicts<'g>(
    inner: &DbInner,
    group: &'g [Arc<Pending>],
) -> std::borrow::Cow<'g, [Arc<Pending>]> {
    // Without a transaction in the group (the common case) nothing is allocated.
    if group.iter().all(|p| p.check.is_none()) {
        return std::borrow::Cow::Borrowed(group);
    }
    let checks: Vec<Option<&ConflictCheck>> = group.iter().map(|p| p.check.as_ref()).collect();
    // Each entry carries its keyspace: the check keys conflicts by (keyspace, key).
    let written: Vec<Vec<BatchEntry<'_>>> = group
        .iter()
        .map(|p| p.batch().iter().filter_map(|e| e.ok()).collect())
        .collect();
    let verdicts = inner.txns.validate(&checks, &written);
    group
        .iter()
        .zip(verdicts)
        .filter_map(|(p, conflict)| match conflict {
            Some(e) => {
                *lock(&p.outcome) = Some(Err(e));
                None
            }
            None => Some(Arc::clone(p)),
        })
        .collect()
}

/// Waits for flushes and compactions if a keyspace's tree is too far behind, and
/// switches to a fresh WAL (and a fresh MemTable for each keyspace whose MemTable is
/// full) when one is full.
fn make_room(inner: &Arc<DbInner>, ws: &mut WriteState) -> Result<()> {
    let mut slowed = false;
    // Time waited per cause, for one event per delayed write group (not per wake-up).
    let mut waited = [Duration::ZERO; StallCause::ALL.len()];
    let mut stalled_on: Option<String> = None;
    let result = loop {
        if let Err(e) = inner.check_writable() {
            break Err(e);
        }
        // The common case, checked without allocating: every keyspace has room, and
        // none is quiet behind too many WALs (one keyspace cannot be).
        {
            let keyspaces = inner.keyspaces.read().unwrap_or_else(|p| p.into_inner());
            let roomy = keyspaces.trees.values().all(|t| t.has_room(&t.view()));
            if roomy
                && (keyspaces.trees.len() < 2 || lock(&inner.wal_starts).len() <= MAX_LIVE_WALS)
            {
                break Ok(());
            }
        }
        let trees = inner.trees();
        let views: Vec<_> = trees.iter().map(|t| t.view()).collect();
        let settings: Vec<_> = trees.iter().map(|t| t.settings()).collect();
        // Each keyspace against its own thresholds.
        let l0 = |i: usize| views[i].version.levels[0].len();
        if let Some(i) = (0..trees.len()).find(|&i| l0(i) >= settings[i].opts.l0_stop_trigger) {
            stalled_on = Some(trees[i].name.clone());
            inner.schedule_compaction();
            waited[StallCause::L0Stop as usize] += stall(inner, StallCause::L0Stop);
            continue;
        }
        let slow = (0..trees.len())
            .find(|&i| l0(i) >= settings[i].opts.l0_slowdown_trigger)
            .map(|i| (i, StallCause::L0Slowdown))
            .or_else(|| {
                (0..trees.len())
                    .find(|&i| memtables_nearly_full(&views[i], &settings[i].opts))
                    .map(|i| (i, StallCause::MemtableSlowdown))
            });
        if let Some((i, cause)) = slow
            && !slowed
        {
            stalled_on = Some(trees[i].name.clone());
            // Spread the delay over writes instead of stopping them all at once later.
            let start = Instant::now();
            std::thread::sleep(Duration::from_millis(1));
            let d = start.elapsed();
            inner.stats.add_stall(d);
            inner.stats.slowdowns.fetch_add(1, Ordering::Relaxed);
            inner.metrics.stall(cause, d);
            waited[cause as usize] += d;
            slowed = true;
            continue;
        }
        let full: Vec<usize> = (0..trees.len())
            .filter(|&i| views[i].mem.approximate_memory_usage() >= settings[i].opts.memtable_bytes)
            .collect();
        if full.is_empty() {
            break freeze_quiet_keyspaces(inner, ws, &trees, &views);
        }
        if let Some(&i) = full
            .iter()
            .find(|&&i| views[i].frozen.len() >= settings[i].opts.max_frozen_memtables)
        {
            stalled_on = Some(trees[i].name.clone());
            inner.schedule_flush();
            waited[StallCause::Memtables as usize] += stall(inner, StallCause::Memtables);
            continue;
        }
        let full: Vec<Arc<Tree>> = full.into_iter().map(|i| Arc::clone(&trees[i])).collect();
        break rotate(inner, ws, &full);
    };
    report_stall(inner, &waited, stalled_on.as_deref());
    result
}

/// Whether every frozen MemTable `view` may hold is waiting for its flush while the
/// active one is at least half full (but not yet full): the writes that fill the other
/// half would then stop until a flush finishes (hundreds of milliseconds when flushes
/// share the CPU with the writer and readers), so they are slowed down first, 1 ms per
/// write group, and the flush catches up (RocksDB's delayed writes, in the same 1 ms
/// steps as L0's). A full one waits for the flush anyway; delaying it first gains nothing.
pub(crate) fn memtables_nearly_full(view: &View, opts: &Options) -> bool {
    let used = view.mem.approximate_memory_usage();
    view.frozen.len() >= opts.max_frozen_memtables
        && used >= opts.memtable_bytes / 2
        && used < opts.memtable_bytes
}

/// How many WALs may be live before the keyspaces holding the oldest one back with
/// nothing but their active MemTable (quiet keyspaces, written to rarely) are frozen
/// and flushed, so that one never keeps every later WAL on disk (RocksDB's
/// `max_total_wal_size`, counted in WALs: each is about one MemTable's worth).
const MAX_LIVE_WALS: usize = 4;

fn freeze_quiet_keyspaces(
    inner: &Arc<DbInner>,
    ws: &mut WriteState,
    trees: &[Arc<Tree>],
    views: &[Arc<View>],
) -> Result<()> {
    if trees.len() < 2 || lock(&inner.wal_starts).len() <= MAX_LIVE_WALS {
        return Ok(());
    }
    let oldest = views
        .iter()
        .map(|v| v.oldest_wal())
        .min()
        .unwrap_or(u64::MAX);
    let quiet: Vec<Arc<Tree>> = trees
        .iter()
        .zip(views)
        .filter(|(_, v)| v.frozen.is_empty() && v.mem_wal == oldest && !v.mem.is_empty())
        .map(|(t, _)| Arc::clone(t))
        .collect();
    if quiet.is_empty() {
        return Ok(());
    }
    for tree in &quiet {
        tracing::debug!(keyspace = %tree.name, wal = oldest, "freezing a quiet keyspace holding the oldest WAL");
    }
    // With a new WAL, as every freeze: a frozen MemTable's entries are all in
    // rotated-out WALs, which its flush can sync (see `flush::flush_oldest`).
    rotate(inner, ws, &quiet)
}

/// Freezes `tree`'s active MemTable; its successor starts in WAL `live_wal`, just made
/// (so every frozen MemTable's entries are in rotated-out WALs).
fn freeze(tree: &Tree, live_wal: u64) {
    tree.update_view(|v| {
        v.mem.freeze();
        let mut next = v.clone();
        next.frozen.insert(0, (Arc::clone(&v.mem), v.mem_wal));
        next.mem = Arc::new(MemTable::new());
        next.mem_wal = live_wal;
        next
    });
}

/// Emits one event for a write group that waited, naming the cause it waited on longest
/// and the keyspace behind it.
fn report_stall(
    inner: &DbInner,
    waited: &[Duration; StallCause::ALL.len()],
    keyspace: Option<&str>,
) {
    let total: Duration = waited.iter().sum();
    if total.is_zero() {
        return;
    }
    let (cause, _) = StallCause::ALL
        .into_iter()
        .zip(waited)
        .max_by_key(|(_, d)| **d)
        .unwrap_or((StallCause::L0Slowdown, &total));
    let (db, cause, waited_ms) = (
        inner.dir.display(),
        cause.label(),
        total.as_secs_f64() * 1e3,
    );
    // A slowdown alone is routine back-pressure (1 ms per group); a stop means writes
    // outran flushes or compactions and is worth an operator's attention.
    let keyspace = keyspace.unwrap_or(crate::tree::DEFAULT_NAME);
    let slowed: Duration = StallCause::ALL
        .into_iter()
        .zip(waited)
        .filter(|(c, _)| c.is_slowdown())
        .map(|(_, d)| *d)
        .sum();
    if slowed == total {
        tracing::debug!(%db, keyspace, cause, waited_ms, "write slowed down");
    } else {
        tracing::warn!(%db, keyspace, cause, waited_ms, "write stalled");
    }
}

/// Starts a new WAL and freezes the MemTables of `full` (keyspaces whose MemTable is
/// full, or that a flush or checkpoint asks for); keyspaces with an empty MemTable no
/// longer hold the old WAL back.
pub(crate) fn rotate(inner: &Arc<DbInner>, ws: &mut WriteState, full: &[Arc<Tree>]) -> Result<()> {
    let number = inner.new_file_number();
    let result = (|| {
        // The closed log is not synced here: `sync_closed_wals` does it before the next
        // synced write, and recovery stops at a gap a power loss left in an unsynced one.
        let file = inner.fs.create(&wal_path(&inner.dir, number))?;
        inner.fs.sync_dir(&inner.dir)?;
        Ok(file)
    })();
    let file = match result {
        Ok(f) => f,
        Err(e) => {
            inner.set_error("switching to a new WAL", &e);
            return Err(e);
        }
    };
    let old_wal = std::mem::replace(&mut ws.wal, LogWriter::new(file, SyncPolicy::Never));
    let old_number = std::mem::replace(&mut ws.wal_number, number);
    lock(&inner.wal_starts).push((number, ws.last_seq + 1));
    if old_wal.has_unsynced() {
        lock(&inner.closed_wals.0).push((old_number, old_wal));
    }
    inner.live_wal.store(number, Ordering::Release);
    for tree in inner.trees() {
        if full.iter().any(|f| f.id == tree.id) {
            freeze(&tree, number);
        } else if tree.view().mem.is_empty() {
            tree.update_view(|v| {
                let mut next = v.clone();
                next.mem_wal = number;
                next
            });
        }
    }
    inner.schedule_flush();
    Ok(())
}

/// Blocks a stalled writer until a background thread reports progress; how long it
/// waited.
fn stall(inner: &DbInner, cause: StallCause) -> Duration {
    let start = Instant::now();
    wait_for_progress(inner);
    let d = start.elapsed();
    inner.stats.add_stall(d);
    inner.metrics.stall(cause, d);
    d
}

/// Blocks until a background thread reports progress, or briefly, to re-check state.
pub(crate) fn wait_for_progress(inner: &DbInner) {
    let (count, cv) = &inner.progress;
    let guard = lock(count);
    let seen = *guard;
    let _ = cv
        .wait_timeout_while(guard, Duration::from_millis(100), |c| *c == seen)
        .unwrap_or_else(|p| p.into_inner());
}

/// Syncs the rotated-out WALs numbered in `range`, which a flush is about to leave on
/// disk while its table holds entries from them (see `flush::flush_oldest`).
pub(crate) fn sync_closed_wals_in(inner: &DbInner, range: std::ops::Range<u64>) -> Result<()> {
    // After any sync of them a write leader has begun (it took them out of the list).
    let _syncing = lock(&inner.closed_wals.1);
    let mut closed = lock(&inner.closed_wals.0);
    for (number, wal) in closed.iter_mut() {
        if range.contains(number) && wal.has_unsynced() {
            wal.sync()?;
            inner.stats.wal_syncs.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Drops the rotated-out WALs numbered up to `number`, whose MemTables are in tables.
pub(crate) fn forget_closed_wals(inner: &DbInner, number: u64) {
    lock(&inner.closed_wals.0).retain(|(n, _)| *n > number);
}

/// `Db::sync_wal`: makes every acknowledged write durable, if the database is open and
/// healthy.
pub(crate) fn sync_wal(inner: &DbInner) -> Result<()> {
    inner.check_writable()?;
    sync_all_wals(inner)
}

/// Syncs every WAL holding unsynced records: the rotated-out ones, then the live one.
/// A failure is sticky: after a failed fsync the kernel may have dropped the data, so
/// a retry could report success for lost writes.
pub(crate) fn sync_all_wals(inner: &DbInner) -> Result<()> {
    let mut ws = lock(&inner.write);
    // A leader we waited for may have failed.
    inner.check_healthy()?;
    let result = (|| {
        sync_closed_wals(inner, &mut ws)?;
        if ws.wal.has_unsynced() {
            ws.wal.sync()?;
            inner.stats.wal_syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    })();
    if let Err(e) = &result {
        inner.set_error("syncing the WAL", e);
    }
    result
}

/// Makes every rotated-out WAL durable, so that a synced write in the live WAL cannot
/// outlive older writes a power loss took from them (a hole, which would break I2).
///
/// Afterwards it appends a *sync marker* (an empty record, [`encode_sync_marker`]) to
/// the live WAL: recovery treats a sequence gap between WALs as a crash-truncated
/// unsynced log and stops replaying there, unless a later WAL holds a marker, which
/// proves the truncated log had been synced, so the gap is damage (`Corruption`).
fn sync_closed_wals(inner: &DbInner, ws: &mut WriteState) -> Result<()> {
    // Taken out, not synced under the lock: a flush retiring one of them (inside the
    // view's write lock) must not wait for these fsyncs, nor readers behind it. No
    // WAL can join meanwhile: rotation needs `write`, which the caller holds. After a
    // failure the rest are dropped unsynced; the caller sets the sticky error, so no
    // later write is acknowledged.
    // Held across the fsyncs: a flush that must know these WALs durable
    // (`sync_closed_wals_in`) waits for them instead of finding the list empty.
    let _syncing = lock(&inner.closed_wals.1);
    let mut closed = std::mem::take(&mut *lock(&inner.closed_wals.0));
    if closed.is_empty() {
        return Ok(());
    }
    for (_, wal) in &mut closed {
        wal.sync()?;
    }
    drop(closed);
    crate::batch::encode_sync_marker(&mut ws.record, ws.last_seq + 1);
    ws.wal.add_record(&ws.record)?;
    inner
        .stats
        .wal_bytes_written
        .fetch_add(ws.record.len() as u64, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::slow_fs::SlowSyncFs;
    use crate::{Db, WriteBatch, WriteOptions};

    /// Average number of synced writes per WAL fsync with `threads` writers, every
    /// sync taking 4 ms.
    fn writers_per_sync(threads: usize) -> f64 {
        let slow = Duration::from_millis(4);
        let fs = SlowSyncFs::new(slow, slow, slow);
        let db = Db::builder(Path::new("/db"))
            .file_system(Arc::new(fs))
            .open()
            .unwrap();
        let sync = WriteOptions { sync: true };
        std::thread::scope(|s| {
            for t in 0..threads {
                let db = db.clone();
                s.spawn(move || {
                    for i in 0..30 {
                        let mut batch = WriteBatch::new();
                        batch.put(format!("t{t}-{i}"), "v");
                        db.write(batch, sync).unwrap();
                    }
                });
            }
        });
        let stats = db.stats();
        assert_eq!(stats.synced_writes, 30 * threads as u64);
        for t in 0..threads {
            assert!(db.get(format!("t{t}-29")).unwrap().is_some());
        }
        db.close().unwrap();
        stats.synced_writes as f64 / stats.wal_syncs as f64
    }

    #[test]
    fn one_writer_syncs_every_write() {
        assert_eq!(writers_per_sync(1), 1.0);
    }

    #[test]
    fn synced_writers_share_fsyncs_instead_of_alternating_in_halves() {
        // Without gathering, the writers released by one fsync miss the next group, so
        // groups alternate between two halves (≈ 4 of 8 per fsync). A leader that waits
        // a little for them gets nearly all 8.
        let shared = writers_per_sync(8);
        assert!(shared >= 5.5, "only {shared:.2} writers per fsync");
    }
}
