//! One LSM tree: the MemTables and the table files of one keyspace, what its readers
//! pin, and its compaction policy.
//!
//! The database ([`DbInner`](crate::db::DbInner)) owns what every tree shares — the
//! write-ahead log and group commit, the manifest, the caches, the sequence numbers and
//! snapshots — and the trees own what each keyspace keeps apart. Today a database has
//! one tree, the default keyspace's (see `docs/keyspaces.md` for the plan).

use std::sync::{Arc, RwLock};

use bytes::Bytes;
use strata_compaction::CompactionPolicy;
use strata_core::{Lookup, Result, SequenceNumber};
use strata_memtable::MemTable;

use crate::stats::{LevelStats, Stats};
use crate::version::Version;

/// What readers pin: the MemTables and the version of table files, all immutable or
/// append-only, so a read never waits for a writer.
#[derive(Clone)]
pub(crate) struct View {
    pub mem: Arc<MemTable>,
    /// Number of the WAL that holds `mem`.
    pub mem_wal: u64,
    /// Frozen MemTables, newest first, each with the number of the WAL that holds it.
    pub frozen: Vec<(Arc<MemTable>, u64)>,
    pub version: Arc<Version>,
}

impl View {
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
        Ok(match found {
            Lookup::Found(v) => Some(v),
            Lookup::Deleted | Lookup::Absent => None,
        })
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
    view: RwLock<Arc<View>>,
    pub policy: Box<dyn CompactionPolicy>,
}

impl Tree {
    pub fn new(view: View, policy: Box<dyn CompactionPolicy>) -> Self {
        Tree {
            view: RwLock::new(Arc::new(view)),
            policy,
        }
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
