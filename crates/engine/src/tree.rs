//! One LSM tree: the MemTables and the table files of one keyspace, what its readers
//! pin, and its compaction policy.
//!
//! The database ([`DbInner`](crate::db::DbInner)) owns what every tree shares — the
//! write-ahead log and group commit, the manifest, the caches, the sequence numbers and
//! snapshots — and the trees own what each keyspace keeps apart (see
//! `docs/keyspaces.md`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use strata_compaction::CompactionPolicy;
use strata_core::{Lookup, MergeOperator, Result, SequenceNumber};
use strata_memtable::MemTable;

use crate::hooks::MergeOperatorHandle;
use crate::options::Options;
use crate::stats::{LevelStats, Stats};
use crate::version::Version;

/// What readers pin: the MemTables and the version of table files, all immutable or
/// append-only, so a read never waits for a writer.
///
/// A MemTable's entries may span WALs: the WAL is shared by every keyspace, and a
/// keyspace's MemTable is frozen when it is full, not when another one's is. Each
/// MemTable is tagged with the first WAL that may hold its entries; a WAL may be
/// deleted once no tree holds a MemTable tagged with it or an older one.
#[derive(Clone)]
pub(crate) struct View {
    pub mem: Arc<MemTable>,
    /// The first WAL that may hold entries of `mem`.
    pub mem_wal: u64,
    /// Frozen MemTables, newest first, each with the first WAL that may hold its
    /// entries.
    pub frozen: Vec<(Arc<MemTable>, u64)>,
    pub version: Arc<Version>,
    /// The keyspace's merge operator (its options' at the time the view was made).
    pub merge: Option<MergeOperatorHandle>,
}

impl View {
    /// No table and an empty MemTable starting in WAL `mem_wal`.
    pub fn empty(mem_wal: u64) -> View {
        View {
            mem: Arc::new(MemTable::new()),
            mem_wal,
            frozen: Vec::new(),
            version: Arc::new(Version::default()),
            merge: None,
        }
    }

    /// The first WAL of the MemTable after the oldest frozen one: once that one is
    /// flushed, this tree needs no older WAL.
    pub fn successor_wal(&self) -> u64 {
        self.frozen
            .iter()
            .rev()
            .nth(1)
            .map_or(self.mem_wal, |(_, n)| *n)
    }

    /// The MemTables, newest first: the active one, then the frozen ones.
    pub fn memtables(&self) -> impl Iterator<Item = &Arc<MemTable>> {
        std::iter::once(&self.mem).chain(self.frozen.iter().map(|(m, _)| m))
    }

    /// Reads `key` at `snapshot`: newest layer first; the first that knows anything
    /// about the key (an entry, or a range tombstone covering it) decides.
    pub fn get(
        &self,
        key: &[u8],
        snapshot: SequenceNumber,
        clock: &dyn strata_core::Clock,
        stats: &Stats,
    ) -> Result<Option<Bytes>> {
        let mut found = Lookup::Absent;
        for mem in self.memtables() {
            let cover = mem.covering_range_tombstone(key, snapshot);
            found = Lookup::resolve(mem.get_versioned(key, snapshot), cover);
            if found.is_final() {
                break;
            }
        }
        if !found.is_final() {
            found = self.version.get(key, snapshot, stats)?;
        }
        match found {
            Lookup::Found(v) => Ok(Some(v)),
            Lookup::Deleted | Lookup::Absent => Ok(None),
            // The clock is read only for a value that can expire.
            Lookup::Expiring {
                expires_at_ms,
                value,
            } => Ok(
                (!strata_core::expiry::is_expired(expires_at_ms, clock.now_ms())).then_some(value),
            ),
            // The value is a fold over this layer and older ones.
            Lookup::Merge => self.get_merged(key, snapshot, clock.now_ms()),
        }
    }

    /// The keyspace's merge operator, if it has one.
    pub fn merge_operator(&self) -> Option<&dyn MergeOperator> {
        self.merge.as_ref().map(|m| &*m.0)
    }

    /// The oldest WAL this tree still needs: the one its oldest unflushed MemTable
    /// starts in.
    pub fn oldest_wal(&self) -> u64 {
        self.frozen.last().map_or(self.mem_wal, |(_, wal)| *wal)
    }

    /// Bytes held by the MemTables, active and frozen.
    pub fn memtable_bytes(&self) -> usize {
        self.memtables().map(|m| m.approximate_memory_usage()).sum()
    }

    /// Files, bytes and entries per level.
    pub fn level_stats(&self) -> Vec<LevelStats> {
        self.version
            .levels
            .iter()
            .map(|files| LevelStats {
                files: files.len(),
                bytes: files.iter().map(|f| f.meta.size_bytes).sum(),
                entries: files.iter().map(|f| f.meta.entries).sum(),
                tombstones: files.iter().map(|f| f.meta.tombstones).sum(),
                range_tombstones: files.iter().map(|f| f.meta.range_tombstones).sum(),
            })
            .collect()
    }
}

/// One keyspace's tree: the view its readers pin, swapped whole by writers, flushes
/// and compactions, and the policy that picks its compactions.
pub(crate) struct Tree {
    /// The keyspace's id: [`DEFAULT_KEYSPACE`](crate::batch::DEFAULT_KEYSPACE) or one
    /// the manifest recorded when the keyspace was made (never reused).
    pub id: u32,
    pub name: String,
    view: RwLock<Arc<View>>,
    /// Its options and the compaction policy made from them (replaced whole by
    /// `Db::keyspace_with`).
    settings: RwLock<Arc<Settings>>,
    /// Copies of the options every write group checks (`memtable_bytes`,
    /// `l0_slowdown_trigger`, `max_frozen_memtables`), read without a lock on the write
    /// path's fast path.
    fast_limits: [std::sync::atomic::AtomicUsize; 3],
    /// Set once the keyspace's drop is durable: its handles refuse every call, and its
    /// files go once nothing reads them.
    pub dropped: AtomicBool,
    /// Every entry of this keyspace with a sequence number up to this is in its tables
    /// (what the manifest records at each flush; recovery replays only newer ones).
    flushed_seq: std::sync::atomic::AtomicU64,
}

impl Tree {
    pub fn new(id: u32, name: String, view: View, opts: Options) -> Self {
        let view = View {
            merge: opts.merge_operator.clone(),
            ..view
        };
        Tree {
            id,
            name,
            view: RwLock::new(Arc::new(view)),
            fast_limits: [
                std::sync::atomic::AtomicUsize::new(opts.memtable_bytes),
                std::sync::atomic::AtomicUsize::new(opts.l0_slowdown_trigger),
                std::sync::atomic::AtomicUsize::new(opts.max_frozen_memtables),
            ],
            settings: RwLock::new(Arc::new(Settings::new(opts))),
            dropped: AtomicBool::new(false),
            flushed_seq: Default::default(),
        }
    }

    /// The tree's options and compaction policy, pinned (a flush or compaction uses
    /// one set throughout).
    pub fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the tree's options: tables written from now on follow them.
    pub fn set_options(&self, opts: Options) {
        self.fast_limits[0].store(opts.memtable_bytes, Ordering::Relaxed);
        self.fast_limits[1].store(opts.l0_slowdown_trigger, Ordering::Relaxed);
        self.fast_limits[2].store(opts.max_frozen_memtables, Ordering::Relaxed);
        let merge = opts.merge_operator.clone();
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Settings::new(opts));
        // Readers find the operator in the view they pin.
        self.update_view(|v| View { merge, ..v.clone() });
    }

    /// Whether a write group can go on without a look at this tree's thresholds in
    /// full: its MemTable under its size, its L0 under the slowdown trigger (the stop
    /// trigger is higher), and a frozen MemTable's slot free or the active MemTable
    /// under half its size (`write::memtables_nearly_full`).
    pub fn has_room(&self, view: &View) -> bool {
        let mem = view.mem.approximate_memory_usage();
        let mem_limit = self.fast_limits[0].load(Ordering::Relaxed);
        mem < mem_limit
            && view.version.levels[0].len() < self.fast_limits[1].load(Ordering::Relaxed)
            && (view.frozen.len() < self.fast_limits[2].load(Ordering::Relaxed)
                || mem < mem_limit / 2)
    }

    /// See the field: the sequence number this keyspace's tables reach.
    pub fn flushed_seq(&self) -> SequenceNumber {
        self.flushed_seq.load(Ordering::Acquire)
    }

    /// Raises [`flushed_seq`](Self::flushed_seq) to `seq` (a flush wrote a table
    /// reaching it).
    pub fn set_flushed_seq(&self, seq: SequenceNumber) {
        self.flushed_seq.fetch_max(seq, Ordering::AcqRel);
    }

    /// `InvalidArgument` once the keyspace was dropped.
    pub fn check_live(&self) -> Result<()> {
        if self.dropped.load(Ordering::Acquire) {
            return Err(strata_core::Error::InvalidArgument(format!(
                "keyspace {:?} was dropped",
                self.name
            )));
        }
        Ok(())
    }

    /// The current view, pinned.
    pub fn view(&self) -> Arc<View> {
        Arc::clone(&self.view.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the view by `f(current)`; readers see either the old or the new one.
    pub fn update_view(&self, f: impl FnOnce(&View) -> View) {
        let mut guard = self.view.write().unwrap_or_else(|p| p.into_inner());
        let next = f(&guard);
        *guard = Arc::new(next);
    }
}

/// A tree's options and the compaction policy made from them.
pub(crate) struct Settings {
    pub opts: Options,
    pub policy: Box<dyn CompactionPolicy>,
}

impl Settings {
    fn new(opts: Options) -> Self {
        let policy = Box::new(crate::compact::policy(&opts));
        Settings { opts, policy }
    }
}

/// The keyspaces of a database: its trees by id, and the next id to give.
pub(crate) struct Keyspaces {
    pub trees: std::collections::BTreeMap<u32, Arc<Tree>>,
    pub next_id: u32,
}

impl Keyspaces {
    pub fn by_name(&self, name: &str) -> Option<&Arc<Tree>> {
        self.trees.values().find(|t| t.name == name)
    }
}

/// The name of the keyspace `Db`'s own methods use.
pub(crate) const DEFAULT_NAME: &str = "default";

/// Why `name` cannot name a keyspace, if it cannot: 1 to 64 bytes of ASCII letters,
/// digits, `_`, `-` and `.`, so names are safe in tools' output and file names.
pub(crate) fn invalid_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    (!ok).then(|| format!("keyspace name {name:?}: 1 to 64 ASCII letters, digits, '_', '-' or '.'"))
}
