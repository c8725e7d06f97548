//! The database handle and the state its threads share.

use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::Sender;
use strata_core::varint::MAX_VARINT64_LEN;
use strata_core::{Error, FileLock, FileSystem, Result, SequenceNumber};

use crate::batch::WriteBatch;
use crate::edit::VersionEdit;
use crate::iter::{DbIter, KeyRange};
use crate::manifest::ManifestWriter;
use crate::options::{DbBuilder, Options};
use crate::snapshot::{Snapshot, SnapshotList};
use crate::stats::{DbStats, Stats, load};
use crate::table_cache::TableCache;
use crate::tree::{Keyspaces, Tree, View};
use crate::write::{WriteQueue, WriteState};

/// Per-write durability.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// `true`: the write is on stable storage (WAL fsynced) before it is acknowledged and
    /// survives power loss. `false` (default): the write is handed to the operating
    /// system before it is acknowledged and survives a crash of the process, not of the
    /// machine.
    pub sync: bool,
}

/// State shared by every handle, iterator and background thread.
pub(crate) struct DbInner {
    pub opts: Options,
    pub dir: PathBuf,
    pub fs: Arc<dyn FileSystem>,
    pub tables: Arc<TableCache>,
    pub lock: Mutex<Option<Box<dyn FileLock>>>,
    /// The default keyspace's tree: its MemTables, table files and compaction policy
    /// (also in `keyspaces`, under id 0; here for the hot path's sake).
    pub tree: Arc<Tree>,
    /// Every keyspace's tree, the default one included. Changed under the manifest
    /// lock (a keyspace made or dropped is an edit).
    pub keyspaces: RwLock<Keyspaces>,
    /// Number of the live WAL (what a new keyspace's first MemTable starts in).
    pub live_wal: AtomicU64,
    /// Unique per open in this process: keyspace ids belong to one database, so a batch
    /// built with another one's handles is refused.
    pub instance: u64,
    /// Newest sequence number readers may see; advanced after a group is in the MemTable.
    pub visible_seq: AtomicU64,
    /// First sequence number of each WAL that may still be live, oldest first: a
    /// flush's edit records where the next WAL starts (`ManifestState::last_sequence`).
    pub wal_starts: Mutex<Vec<(u64, SequenceNumber)>>,
    pub closed_wals: crate::write::ClosedWals,
    pub next_file_number: AtomicU64,
    pub queue: WriteQueue,
    pub write: Mutex<WriteState>,
    pub manifest: Mutex<ManifestState>,
    pub snapshots: SnapshotList,
    /// The first unrecoverable failure, as the [`Error::Poisoned`] every later write,
    /// flush or compaction is refused with (it holds the failure itself as its cause);
    /// once set, until reopen. `close` returns it too.
    pub error: std::sync::OnceLock<Error>,
    /// Set when `close` begins, on any handle: from then on every call on every handle,
    /// iterators and snapshots included, fails with [`Error::Closed`], so nothing reads
    /// files a later opener of the directory may rewrite or delete.
    pub closed: AtomicBool,
    /// Set once any keyspace has a time to live: write groups then look up which (see
    /// `write::keyspace_ttls`). Never cleared: a stale `true` only costs that look.
    pub any_ttl: AtomicBool,
    /// Wakes writers stalled on flushes or compactions, and `flush()` callers.
    pub progress: (Mutex<u64>, Condvar),
    pub stats: Stats,
    /// While a checkpoint or backup holds its cut: MemTables starting in this WAL or a
    /// later one are not flushed (`u64::MAX`: none held back; see `checkpoint::pin`).
    pub flush_barrier: AtomicU64,
    /// Held by the checkpoint or backup that is pinning its cut: one at a time.
    pub pinning: Mutex<()>,
    /// Open transactions, and the keys committed while any is open.
    pub txns: crate::txn::Registry,
    /// Metric handles (see `observe`).
    pub metrics: crate::observe::Metrics,
    /// Doorbells of the background threads: `Work::Run` asks for a pass, `Work::Stop`
    /// ends one thread.
    pub flush_tx: Sender<Work>,
    pub compact_tx: Sender<Work>,
}

/// A message to a background thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Work {
    Run,
    Stop,
}

/// The manifest writer and the bookkeeping changed together with it.
pub(crate) struct ManifestState {
    pub writer: ManifestWriter,
    pub log_number: u64,
    /// The sequence number right before the first record of WAL `log_number`: tables
    /// hold nothing newer, and recovery expects that WAL to continue from here (a gap
    /// means a power loss truncated an unsynced WAL; see `open::Replay`).
    pub last_sequence: SequenceNumber,
    /// Compactions running, per keyspace.
    pub in_progress: std::collections::BTreeMap<u32, strata_compaction::InProgress>,
}

impl ManifestState {
    /// The compactions running in keyspace `id`.
    pub fn in_progress(&mut self, id: u32) -> &mut strata_compaction::InProgress {
        self.in_progress.entry(id).or_default()
    }

    /// Makes `edit` (of `tree`'s keyspace) durable, then publishes the version it makes
    /// (letting `also` change the rest of the tree's view in the same step), and rolls
    /// over to a fresh manifest when this one has grown past its limit.
    pub fn log_and_apply(
        &mut self,
        inner: &DbInner,
        tree: &Tree,
        edit: &mut VersionEdit,
        also: impl FnOnce(&mut View),
    ) -> Result<()> {
        if tree.dropped.load(Ordering::Acquire) {
            // The keyspace was dropped while this flush or compaction ran: its files
            // are no longer the database's (those it wrote are removed at next open).
            return Ok(());
        }
        edit.keyspace = tree.id;
        edit.next_file_number = Some(inner.next_file_number.load(Ordering::Relaxed));
        // Changed only once the edit is durable: after a failed append the version is
        // not the edit's, and a checkpoint pinning it must not report (or write into
        // its manifest) a last sequence its tables do not reach.
        let (log_number, last_sequence) = match edit.log_number {
            Some(n) => (n, inner.wal_start(n).saturating_sub(1)),
            None => (self.log_number, self.last_sequence),
        };
        edit.last_sequence = Some(last_sequence);
        self.writer.append(edit)?;
        self.log_number = log_number;
        self.last_sequence = last_sequence;
        tree.update_view(|v| {
            let mut next = v.clone();
            next.version = Arc::new(v.version.apply(edit, |meta| inner.table_file(meta)));
            also(&mut next);
            next
        });
        inner.signal_progress();
        self.roll_if_large(inner)
    }

    /// Makes `edit`, which changes no keyspace's files (a keyspace made or dropped),
    /// durable. The caller updates the keyspaces, then calls
    /// [`roll_if_large`](Self::roll_if_large).
    pub fn append(&mut self, inner: &DbInner, edit: &mut VersionEdit) -> Result<()> {
        edit.next_file_number = Some(inner.next_file_number.load(Ordering::Relaxed));
        self.writer.append(edit)
    }

    /// Rolls over to a fresh manifest when this one has grown past its limit.
    pub fn roll_if_large(&mut self, inner: &DbInner) -> Result<()> {
        if self.writer.len() >= inner.opts.manifest_roll_bytes {
            self.roll(inner)?;
        }
        Ok(())
    }

    /// Starts a new manifest holding a snapshot of the current versions, switches
    /// `CURRENT` to it and removes the old one.
    fn roll(&mut self, inner: &DbInner) -> Result<()> {
        let number = inner.new_file_number();
        let snapshot = inner.snapshot_edits(self.log_number, self.last_sequence);
        let old = self.writer.number();
        self.writer = ManifestWriter::create(&*inner.fs, &inner.dir, number, &snapshot)?;
        // Best effort: a stale manifest is removed at the next open.
        let _ = inner
            .fs
            .remove(&inner.dir.join(crate::filename::manifest_name(old)));
        Ok(())
    }
}

impl DbInner {
    /// The edits that describe the whole database as it is: the counters and the
    /// keyspaces first, then each keyspace's files (what a new manifest starts with).
    pub fn snapshot_edits(
        &self,
        log_number: u64,
        last_sequence: SequenceNumber,
    ) -> Vec<VersionEdit> {
        let keyspaces = self.keyspaces.read().unwrap_or_else(|p| p.into_inner());
        let trees: Vec<(u32, String, Arc<crate::version::Version>, SequenceNumber)> = keyspaces
            .trees
            .values()
            .map(|t| {
                let view = t.view();
                (
                    t.id,
                    t.name.clone(),
                    Arc::clone(&view.version),
                    t.flushed_seq(),
                )
            })
            .collect();
        crate::edit::snapshot_edits(
            log_number,
            self.next_file_number.load(Ordering::Relaxed),
            last_sequence,
            keyspaces.next_id,
            trees
                .iter()
                .map(|(id, name, version, flushed)| crate::edit::TreeState {
                    id: *id,
                    name,
                    flushed_seq: *flushed,
                    files: version.file_metas(),
                }),
        )
    }

    /// The tree of keyspace `id`, if it exists.
    pub fn tree_by_id(&self, id: u32) -> Option<Arc<Tree>> {
        if id == crate::batch::DEFAULT_KEYSPACE {
            return Some(Arc::clone(&self.tree));
        }
        let keyspaces = self.keyspaces.read().unwrap_or_else(|p| p.into_inner());
        keyspaces.trees.get(&id).cloned()
    }

    /// Every keyspace's tree, the default one first.
    pub fn trees(&self) -> Vec<Arc<Tree>> {
        let keyspaces = self.keyspaces.read().unwrap_or_else(|p| p.into_inner());
        keyspaces.trees.values().cloned().collect()
    }
    /// The live-file handle for a table the manifest now names.
    pub fn table_file(&self, meta: &strata_compaction::FileMeta) -> Arc<crate::version::TableFile> {
        Arc::new(crate::version::TableFile::new(
            Arc::new(meta.clone()),
            crate::filename::table_path(&self.dir, meta.number),
            Arc::clone(&self.tables),
        ))
    }

    /// The first sequence number of WAL `number`, forgetting older WALs (their
    /// MemTables are in tables once an edit names `number` as the live log).
    pub fn wal_start(&self, number: u64) -> SequenceNumber {
        let mut starts = lock(&self.wal_starts);
        starts.retain(|(n, _)| *n >= number);
        match starts.first() {
            Some(&(n, start)) if n == number => start,
            // Not recorded (cannot happen): a later start only makes recovery less
            // suspicious of gaps, never drops a write.
            _ => self.visible_seq.load(Ordering::Acquire) + 1,
        }
    }

    /// `Err(Closed)` once `close` has begun. One atomic load: every read and every
    /// iterator step pays it.
    #[inline]
    pub fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// The sticky error, if an unrecoverable failure happened.
    pub fn check_healthy(&self) -> Result<()> {
        match self.error.get() {
            Some(refusal) => Err(refusal.clone()),
            None => Ok(()),
        }
    }

    /// Whether a write (or flush, compaction, sync) may proceed: open, writable and
    /// healthy.
    pub fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if self.opts.read_only {
            return Err(crate::read_only::read_only_error());
        }
        self.check_healthy()
    }

    /// Records an unrecoverable failure (the first one wins) and wakes every waiter so
    /// none of them waits forever.
    pub fn set_error(&self, context: &str, e: &Error) {
        let _ = self.error.set(Error::poisoned(context, e));
        crate::observe::error(self, context, e);
        self.signal_progress();
    }

    /// Brings the mirrored metric counters and the gauges up to date (see `observe`).
    pub fn publish_metrics(&self) {
        self.metrics
            .publish(&self.stats, &self.tree, self.tables.len());
    }

    pub fn signal_progress(&self) {
        let (count, cv) = &self.progress;
        *lock(count) += 1;
        cv.notify_all();
    }

    /// Asks the flush thread for a pass (a no-op once it has stopped).
    pub fn schedule_flush(&self) {
        let _ = self.flush_tx.try_send(Work::Run);
    }

    /// Asks the compaction threads for a pass.
    pub fn schedule_compaction(&self) {
        let _ = self.compact_tx.try_send(Work::Run);
    }

    pub fn new_file_number(&self) -> u64 {
        self.next_file_number.fetch_add(1, Ordering::Relaxed)
    }

    /// Reads `key` at the newest state.
    ///
    /// The view is pinned *before* the sequence number is read. The other order races
    /// with compaction: between reading sequence S and pinning the view, a newer write
    /// (above S) could let a compaction drop the version S should see.
    pub fn get_latest(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.get_latest_in(&self.tree, key)
    }

    /// Reads `key` of keyspace `tree` at the newest state (see
    /// [`get_latest`](Self::get_latest)).
    pub fn get_latest_in(&self, tree: &Tree, key: &[u8]) -> Result<Option<Bytes>> {
        self.check_open()?;
        let view = tree.view();
        let seq = self.visible_seq.load(Ordering::Acquire);
        self.get_in(&view, key, seq)
    }

    /// Reads `key` at a registered snapshot (compaction keeps what it needs).
    pub fn get_at(&self, key: &[u8], snapshot: SequenceNumber) -> Result<Option<Bytes>> {
        self.check_open()?;
        self.get_in(&self.tree.view(), key, snapshot)
    }

    /// Reads `key` at `snapshot` in a pinned view of the default tree.
    pub fn get_in(
        &self,
        view: &View,
        key: &[u8],
        snapshot: SequenceNumber,
    ) -> Result<Option<Bytes>> {
        view.get(key, snapshot, &*self.opts.clock.0, &self.stats)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent before anything that can panic,
    // so a poisoned lock's data is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Background threads, owned by the handle rather than by `DbInner` (which they hold),
/// so dropping the last handle can stop them.
pub(crate) struct Workers {
    pub flush_threads: Vec<JoinHandle<()>>,
    pub compaction_threads: Vec<JoinHandle<()>>,
}

struct Handle {
    inner: Arc<DbInner>,
    workers: Mutex<Workers>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Best effort: the WAL already holds every acknowledged write.
        let _ = close_inner(&self.inner, &self.workers);
    }
}

/// An open Strata database. Cheap to clone (an `Arc`); every clone is the same database,
/// usable from any thread.
///
/// Errors: every call can fail with [`Error::Closed`] once any clone was closed, and
/// every write-side call (writes, [`flush`](Self::flush),
/// [`compact_range`](Self::compact_range), [`sync_wal`](Self::sync_wal),
/// [`wait_for_compaction`](Self::wait_for_compaction)) with [`Error::Poisoned`] after an
/// unrecoverable failure, such as a failed WAL fsync or a background flush or
/// compaction that failed; its [`kind`](Error::kind) is that failure's (e.g.
/// [`ErrorKind::StorageFull`](crate::ErrorKind::StorageFull)) and its
/// [`source`](std::error::Error::source) the failure itself. Reads go on answering
/// after such a failure; writes need a reopen.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let db = strata::Db::open(dir.path())?;
/// db.put("hello", "world")?;
/// assert_eq!(db.get("hello")?.as_deref(), Some(&b"world"[..]));
/// db.delete("hello")?;
/// assert_eq!(db.get("hello")?, None);
/// db.close()?;
/// # Ok::<(), strata::Error>(())
/// ```
#[derive(Clone)]
pub struct Db {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.handle.inner.dir)
            .finish()
    }
}

impl Db {
    /// Options for opening the database at `path`; finish with [`DbBuilder::open`].
    pub fn builder(path: impl AsRef<Path>) -> DbBuilder {
        DbBuilder::new(path.as_ref())
    }

    /// Opens (creating if needed) the database at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        Self::builder(path).open()
    }

    pub(crate) fn from_parts(inner: Arc<DbInner>, workers: Workers) -> Db {
        Db {
            handle: Arc::new(Handle {
                inner,
                workers: Mutex::new(workers),
            }),
        }
    }

    pub(crate) fn inner(&self) -> &Arc<DbInner> {
        &self.handle.inner
    }

    /// Sets `key` to `value` (written to the OS before returning; see [`WriteOptions`]).
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        let mut batch =
            WriteBatch::with_capacity(key.len() + value.len() + 2 * MAX_VARINT64_LEN + 1);
        batch.put(key, value);
        self.write(batch, WriteOptions::default())
    }

    /// Sets `key` to `value` for `ttl`: reads stop returning it once the time is up
    /// (by the database's [clock](crate::DbBuilder::clock)), and compaction reclaims
    /// its space. See [`WriteBatch::put_with_ttl`] and `docs/ttl.md`.
    pub fn put_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: std::time::Duration,
    ) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put_with_ttl(key, value, ttl);
        self.write(batch, WriteOptions::default())
    }

    /// Merges `operand` into `key`'s value without reading it: one WAL record, like a
    /// put. Reads fold the key's operands onto its newest older value with the merge
    /// operator ([`DbBuilder::merge_operator`](crate::DbBuilder::merge_operator));
    /// compaction folds them ahead of time. See [`WriteBatch::merge`] for an example and
    /// `docs/merge.md` for the operator's laws.
    pub fn merge(&self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.merge(key, operand);
        self.write(batch, WriteOptions::default())
    }

    /// Deletes `key` (a tombstone; deleting an absent key is not an error).
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete(key);
        self.write(batch, WriteOptions::default())
    }

    /// Deletes every key in `range` with one write, however many keys it holds: a
    /// *range tombstone* (one WAL entry, O(1) in the number of keys covered). Reads at
    /// later snapshots skip the covered keys at once; compaction reclaims their space.
    /// Writes after it (including later entries of the same batch) are not affected.
    ///
    /// Any range: `start..end`, `start..=end`, `..end`, `start..`, `..`. An unbounded
    /// end is fixed when the write is made — just past the largest key the database
    /// then holds — so the delete covers every key written before it and none written
    /// after it. An empty range writes nothing.
    ///
    /// ```
    /// let db = strata::DbBuilder::in_memory().open()?;
    /// for i in 0..100 {
    ///     db.put(format!("log:{i:04}"), "entry")?;
    /// }
    /// db.delete_range("log:0000".."log:0090")?;
    /// assert_eq!(db.prefix("log:").count(), 10);
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn delete_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        let (start, end) = crate::batch::range_bounds(&range);
        let mut batch = WriteBatch::new();
        match end {
            Some(end) => batch.delete_range(start, end),
            None => batch.delete_range_from(start),
        };
        if batch.is_empty() {
            return self.inner().check_writable();
        }
        self.write(batch, WriteOptions::default())
    }

    /// Deletes every key that starts with `prefix` with one write (see
    /// [`delete_range`](Self::delete_range)); the empty prefix deletes everything.
    pub fn delete_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        let range = KeyRange::prefix(prefix.as_ref());
        let (lo, hi) = range.as_slices();
        self.delete_range::<&[u8], _>((lo, hi))
    }

    /// Applies `batch` atomically: after a crash either all of it or none is present.
    ///
    /// An empty batch with [`WriteOptions::sync`] does what [`sync_wal`](Self::sync_wal)
    /// does: it makes every earlier write durable.
    ///
    /// Writers committed in one group (one WAL record and fsync) share its outcome: if
    /// it fails, each of them receives the same error.
    pub fn write(&self, batch: WriteBatch, options: WriteOptions) -> Result<()> {
        let start = crate::observe::sample();
        let result = crate::write::write(self.inner(), batch, options.sync);
        if let Some(start) = start {
            self.inner().metrics.write_duration.record(start.elapsed());
        }
        result
    }

    /// The value of `key`, if any, at the newest state.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let start = crate::observe::sample();
        let result = self.inner().get_latest(key.as_ref());
        if let Some(start) = start {
            self.inner().metrics.get_duration.record(start.elapsed());
        }
        result
    }

    /// Starts an optimistic transaction with snapshot isolation (see
    /// [`crate::Transaction`] and [`crate::Isolation`]). It reads and writes every
    /// keyspace of this database: its own methods act on the default keyspace, its
    /// `_in` methods on the one they are given.
    pub fn transaction(&self) -> crate::Transaction {
        crate::Transaction::begin(self.inner(), crate::Isolation::Snapshot)
    }

    /// Starts an optimistic transaction with the given isolation level.
    pub fn transaction_with(&self, isolation: crate::Isolation) -> crate::Transaction {
        crate::Transaction::begin(self.inner(), isolation)
    }

    /// Pins the current state: reads through the snapshot ignore later writes, and
    /// compaction keeps the versions it needs until it is dropped.
    ///
    /// Once the database is closed, reads through a snapshot fail with
    /// [`Error::Closed`], whenever it was taken.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(Arc::clone(self.inner()))
    }

    /// Iterates the keys in `range` in order (reverse with `.rev()`), at the current
    /// state. Items own their bytes; the iterator holds no lock.
    ///
    /// Once the database is closed, the iterator's next item is `Err(Error::Closed)`
    /// (then it ends), even if it was created before.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> DbIter {
        let inner = self.inner();
        DbIter::new(Arc::clone(inner), None, KeyRange::from_bounds(range))
    }

    /// Iterates every key that starts with `prefix`, stopping at the prefix's end.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> DbIter {
        DbIter::new(
            Arc::clone(self.inner()),
            None,
            KeyRange::prefix(prefix.as_ref()),
        )
    }

    /// Every key in order.
    pub fn iter(&self) -> DbIter {
        self.range::<&[u8], _>(..)
    }

    /// The keyspace named `name`, made if it does not exist (durably: the manifest
    /// records it before this returns). Names are 1 to 64 ASCII letters, digits, `_`,
    /// `-` or `.` (`InvalidArgument` otherwise); `"default"` is the keyspace `Db`'s own
    /// methods use.
    ///
    /// A keyspace takes the options [`DbBuilder::keyspace_options`](crate::DbBuilder::keyspace_options)
    /// gave for its name, else the database's; [`keyspace_with`](Self::keyspace_with)
    /// gives it others.
    ///
    /// ```
    /// let db = strata::DbBuilder::in_memory().open()?;
    /// let records = db.keyspace("records")?;
    /// let index = db.keyspace("index")?;
    /// let mut batch = strata::WriteBatch::new();
    /// batch
    ///     .put_in(&records, "user:1", "ada lovelace")
    ///     .put_in(&index, "name:ada", "user:1");
    /// db.write(batch, strata::WriteOptions::default())?; // both or neither
    /// assert_eq!(index.get("name:ada")?.as_deref(), Some(&b"user:1"[..]));
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn keyspace(&self, name: &str) -> Result<crate::Keyspace> {
        self.keyspace_made(name, None)
    }

    /// The keyspace named `name` with `options` (see [`crate::KeyspaceOptions`]), made
    /// if it does not exist. An existing keyspace takes them from now on: the tables it
    /// writes from here follow them (those already written keep theirs). Options are
    /// not stored: give them at every open, here or with
    /// [`DbBuilder::keyspace_options`](crate::DbBuilder::keyspace_options).
    ///
    /// `NotSupported` for zstd in a build without the `zstd` feature.
    pub fn keyspace_with(
        &self,
        name: &str,
        options: crate::KeyspaceOptions,
    ) -> Result<crate::Keyspace> {
        if options.wants_zstd() && !cfg!(feature = "zstd") {
            return Err(Error::NotSupported(
                "zstd compression: this build of strata-kv lacks its `zstd` feature".into(),
            ));
        }
        let opts = options.apply(&self.inner().opts);
        if opts.ttl.is_some() {
            self.inner().any_ttl.store(true, Ordering::Release);
        }
        let keyspace = self.keyspace_made(name, Some(opts.clone()))?;
        keyspace.tree().set_options(opts);
        Ok(keyspace)
    }

    /// [`keyspace`](Self::keyspace): made with `opts` if missing (else with the options
    /// given for its name at open).
    fn keyspace_made(&self, name: &str, opts: Option<Options>) -> Result<crate::Keyspace> {
        let inner = self.inner();
        inner.check_open()?;
        if let Some(reason) = crate::tree::invalid_name(name) {
            return Err(Error::InvalidArgument(reason));
        }
        let found = |inner: &DbInner| {
            let keyspaces = inner.keyspaces.read().unwrap_or_else(|p| p.into_inner());
            keyspaces.by_name(name).cloned()
        };
        if let Some(tree) = found(inner) {
            return Ok(crate::Keyspace::new(self.clone(), tree));
        }
        inner.check_writable()?;
        let mut m = lock(&inner.manifest);
        // Made by another caller while this one waited for the lock?
        if let Some(tree) = found(inner) {
            return Ok(crate::Keyspace::new(self.clone(), tree));
        }
        let id = inner
            .keyspaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .next_id;
        let next_id = id.checked_add(1).ok_or_else(|| {
            Error::InvalidArgument("every keyspace id was given out (2^32 keyspaces made)".into())
        })?;
        let mut edit = VersionEdit {
            new_keyspaces: vec![(id, name.to_owned())],
            next_keyspace_id: Some(next_id),
            ..VersionEdit::default()
        };
        if let Err(e) = m.append(inner, &mut edit) {
            // The manifest refuses every later edit: no flush can be recorded either.
            inner.set_error("recording a keyspace in the manifest", &e);
            return Err(e);
        }
        let view = View::empty(inner.live_wal.load(Ordering::Acquire));
        let opts = opts.unwrap_or_else(|| inner.opts.for_keyspace(name));
        if opts.ttl.is_some() {
            inner.any_ttl.store(true, Ordering::Release);
        }
        let tree = Arc::new(Tree::new(id, name.to_owned(), view, opts));
        {
            let mut keyspaces = inner.keyspaces.write().unwrap_or_else(|p| p.into_inner());
            keyspaces.trees.insert(id, Arc::clone(&tree));
            keyspaces.next_id = next_id;
        }
        m.roll_if_large(inner)?;
        tracing::info!(keyspace = name, id, "keyspace made");
        Ok(crate::Keyspace::new(self.clone(), tree))
    }

    /// The names of every keyspace, `"default"` first, then in the order they were
    /// made.
    pub fn list_keyspaces(&self) -> Vec<String> {
        self.inner()
            .trees()
            .iter()
            .map(|t| t.name.clone())
            .collect()
    }

    /// Drops keyspace `name`, durably: once this returns it is gone after any crash,
    /// its handles refuse every call, and its files are deleted once no iterator
    /// reads them. The name can be made again (a new, empty keyspace).
    /// `InvalidArgument` for the default keyspace or a name that is not a keyspace.
    pub fn drop_keyspace(&self, name: &str) -> Result<()> {
        let inner = self.inner();
        inner.check_writable()?;
        if name == crate::tree::DEFAULT_NAME {
            return Err(Error::InvalidArgument(
                "the default keyspace cannot be dropped".into(),
            ));
        }
        let tree = {
            let keyspaces = inner.keyspaces.read().unwrap_or_else(|p| p.into_inner());
            keyspaces.by_name(name).cloned()
        }
        .ok_or_else(|| Error::InvalidArgument(format!("no keyspace is named {name:?}")))?;
        // Refused from here on: a batch naming it that the write lock orders after this
        // fails, one ordered before is in the WAL by the time the sync below takes it.
        tree.dropped.store(true, Ordering::Release);
        // Every write before the drop durable first: a power loss must not keep the drop
        // (in the manifest, synced) and lose a write made before it (in an unsynced WAL).
        crate::write::sync_all_wals(inner)?;
        let mut m = lock(&inner.manifest);
        if !inner
            .keyspaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .trees
            .contains_key(&tree.id)
        {
            // Another caller dropped it meanwhile.
            return Ok(());
        }
        let mut edit = VersionEdit {
            dropped_keyspaces: vec![tree.id],
            ..VersionEdit::default()
        };
        if let Err(e) = m.append(inner, &mut edit) {
            // The manifest refuses every later edit: no flush can be recorded either.
            inner.set_error("recording a keyspace in the manifest", &e);
            return Err(e);
        }
        inner
            .keyspaces
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .trees
            .remove(&tree.id);
        // Its files go once no iterator reads them: stale handles keep an empty view.
        tree.view().version.mark_all_obsolete();
        tree.update_view(|v| View::empty(v.mem_wal));
        m.roll_if_large(inner)?;
        drop(m);
        tracing::info!(keyspace = name, id = tree.id, "keyspace dropped");
        // Its MemTables no longer hold WALs back: the next flush deletes those.
        inner.schedule_flush();
        Ok(())
    }

    /// Freezes every keyspace's MemTable and waits until they (and every frozen one)
    /// are in tables.
    pub fn flush(&self) -> Result<()> {
        crate::flush::flush_and_wait(self.inner(), DbInner::check_writable)
    }

    /// Makes every write acknowledged so far durable (fsyncs the write-ahead logs), as
    /// if each had been written with [`WriteOptions::sync`]: for batching durability
    /// over many unsynced writes. Returns at once if the logs hold nothing unsynced.
    ///
    /// A failed fsync is unrecoverable (the kernel may have dropped the unsynced
    /// data): it is returned here and every later write is refused with
    /// [`Error::Poisoned`].
    pub fn sync_wal(&self) -> Result<()> {
        crate::write::sync_wal(self.inner())
    }

    /// Blocks until background work is idle: no MemTable is waiting for (or in) a
    /// flush, no compaction runs, and the compaction policy has nothing to pick. For
    /// tests and benchmarks that need a settled tree (RocksDB's `WaitForCompact`).
    ///
    /// Obsolete table files are removed on a background thread once no version or
    /// iterator reads them; this also waits for every removal queued by then. A table a
    /// finished compaction replaced can outlive this call while a reader (or, for a
    /// moment, a background thread) still holds a version that names it.
    ///
    /// Does not flush the active MemTable ([`flush`](Self::flush) does). Returns the
    /// sticky error ([`Error::Poisoned`]) if background work failed, and
    /// [`Error::Closed`] once the database is closed. Writes made meanwhile by other
    /// threads can keep it waiting.
    pub fn wait_for_compaction(&self) -> Result<()> {
        crate::compact::wait_for_idle(self.inner())?;
        // Tables the compactions made obsolete are removed in the background once
        // nothing reads them; those handed over so far are gone when this returns.
        self.inner().tables.remover().wait_idle();
        Ok(())
    }

    /// Compacts every file overlapping the keys in `range` down to the bottom level, so
    /// deleted and overwritten data there is reclaimed. Flushes first.
    pub fn compact_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        self.flush()?;
        crate::compact::compact_range(
            self.inner(),
            &self.inner().tree,
            &KeyRange::from_bounds(range),
        )
    }

    /// Read-only handles ([`DbBuilder::read_only`]): loads the newest state the
    /// database's files hold (tables, and WAL records the writer has not flushed yet)
    /// and reads it from now on. Iterators and snapshots taken before keep the state
    /// they started with. [`Error::NotSupported`] on a writable handle, which always
    /// reads its newest state.
    ///
    /// Costs a read of the manifest and a replay of the unflushed WALs (up to the
    /// writer's MemTable budget), and opens tables the previous state did not hold.
    pub fn refresh(&self) -> Result<()> {
        crate::read_only::refresh(self.inner())
    }

    /// Statistics: the shape of the tree and counters since open.
    pub fn stats(&self) -> DbStats {
        let inner = self.inner();
        let view = inner.tree.view();
        let s = &inner.stats;
        DbStats {
            levels: view.level_stats(),
            user_bytes_written: load(&s.user_bytes_written),
            wal_bytes_written: load(&s.wal_bytes_written),
            wal_syncs: load(&s.wal_syncs),
            synced_writes: load(&s.synced_writes),
            flush_bytes_written: load(&s.flush_bytes_written),
            compaction_bytes_read: load(&s.compaction_bytes_read),
            compaction_bytes_written: load(&s.compaction_bytes_written),
            flushes: load(&s.flushes),
            compactions: load(&s.compactions),
            trivial_moves: load(&s.trivial_moves),
            files_dropped_by_range_deletes: load(&s.files_dropped_by_range_deletes),
            idle_compactions: load(&s.idle_compactions),
            stall_time: std::time::Duration::from_micros(load(&s.stall_micros)),
            slowdowns: load(&s.slowdowns),
            bloom_checks: load(&s.bloom_checks),
            bloom_useful: load(&s.bloom_useful),
            bloom_false_positives: load(&s.bloom_false_positives),
            block_cache_hits: load(&s.block_cache_hits),
            block_cache_misses: load(&s.block_cache_misses),
            memtable_bytes: view.memtable_bytes() as u64,
            open_tables: inner.tables.len(),
            oldest_wal_keyspace: inner
                .trees()
                .iter()
                .min_by_key(|t| (t.view().oldest_wal(), t.id))
                .map_or_else(|| crate::tree::DEFAULT_NAME.to_owned(), |t| t.name.clone()),
            keyspaces: inner
                .trees()
                .iter()
                .map(|t| {
                    let view = t.view();
                    crate::KeyspaceStats {
                        name: t.name.clone(),
                        levels: view.level_stats(),
                        memtable_bytes: view.memtable_bytes() as u64,
                    }
                })
                .collect(),
        }
    }

    /// The directory the database lives in.
    pub fn path(&self) -> &Path {
        &self.inner().dir
    }

    /// The file system the database's files are on (the one given to
    /// [`DbBuilder::file_system`](crate::DbBuilder::file_system), else the operating
    /// system's): for files kept beside the database, such as a checkpoint the
    /// application streams elsewhere.
    pub fn file_system(&self) -> Arc<dyn FileSystem> {
        Arc::clone(&self.inner().fs)
    }

    /// Flushes the MemTable, waits for background work, syncs and releases the lock.
    /// Dropping the last handle does the same, ignoring errors.
    ///
    /// Every clone of this handle is closed, from the moment the call begins: every
    /// later call on any of them (reads, writes, iterators and snapshots taken before,
    /// and `close` itself) fails with [`Error::Closed`].
    ///
    /// Returns the error the database is in, if any: the first unrecoverable failure
    /// of this session (a failed write, or a background flush or compaction that
    /// failed, as [`Error::Poisoned`]), or a failure of the final flush or sync. `Ok`
    /// means every acknowledged write is durable.
    pub fn close(self) -> Result<()> {
        close_inner(&self.handle.inner, &self.handle.workers)
    }
}

fn close_inner(inner: &Arc<DbInner>, workers: &Mutex<Workers>) -> Result<()> {
    // Closed for everyone else at once: writers arriving now are refused instead of
    // racing with the final flush and sync, and a second `close` does nothing.
    if inner.closed.swap(true, Ordering::AcqRel) {
        return Err(Error::Closed);
    }
    inner.signal_progress();
    if inner.opts.read_only {
        // Nothing was written, no thread runs, no lock is held.
        return Ok(());
    }
    // Flushing at close makes the next open replay nothing, so it is fast.
    let flushed = match inner.check_healthy() {
        Ok(()) => crate::flush::flush_and_wait(inner, DbInner::check_healthy),
        Err(e) => Err(e),
    };
    let synced = crate::write::sync_all_wals(inner);
    let mut w = lock(workers);
    let Workers {
        flush_threads,
        compaction_threads,
    } = &mut *w;
    inner.signal_progress();
    // Compactions first: a compaction in flight finishes (or fails) before we return.
    for (tx, threads) in [
        (&inner.compact_tx, compaction_threads),
        (&inner.flush_tx, flush_threads),
    ] {
        for _ in threads.iter() {
            let _ = tx.send(Work::Stop);
        }
        for t in threads.drain(..) {
            let _ = t.join();
        }
    }
    drop(w);
    // Obsolete tables queued for removal are removed while the lock is still held.
    inner.tables.remover().stop();
    *lock(&inner.lock) = None;
    // Last: a background compaction that was running when close began has now
    // finished, and its failure, too, is reported.
    flushed.and(synced).and(inner.check_healthy())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use strata_core::MemFs;

    use super::lock;
    use crate::Db;
    use crate::edit::VersionEdit;
    use crate::manifest::ManifestWriter;

    #[test]
    fn a_failed_manifest_append_leaves_the_manifest_state_as_it_was() {
        // A flush whose edit fails to append must not advance `last_sequence`: the
        // version stays the old one, and `checkpoint::pin` reads the two together.
        let db = Db::builder(Path::new("/db"))
            .file_system(Arc::new(MemFs::new()))
            .open()
            .unwrap();
        db.put("k", "v").unwrap();
        let inner = db.inner();
        let mut manifest = lock(&inner.manifest);
        let before = (manifest.log_number, manifest.last_sequence);
        let real = std::mem::replace(&mut manifest.writer, ManifestWriter::refusing());
        // A later WAL, as a rotation records it, that a flush's edit would name.
        lock(&inner.wal_starts).push((before.0 + 100, 42));
        let mut edit = VersionEdit {
            log_number: Some(before.0 + 100),
            ..VersionEdit::default()
        };
        assert!(
            manifest
                .log_and_apply(inner, &inner.tree, &mut edit, |_| {})
                .is_err()
        );
        assert_eq!((manifest.log_number, manifest.last_sequence), before);
        manifest.writer = real;
        drop(manifest);
        db.close().unwrap();
    }
}
