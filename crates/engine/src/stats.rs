//! Counters the engine keeps while it runs, and the [`DbStats`] snapshot users read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use strata_core::Lookup;
use strata_sstable::FilterAnswer;

/// Live counters, updated with relaxed atomics from any thread.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub user_bytes_written: AtomicU64,
    pub wal_bytes_written: AtomicU64,
    pub wal_syncs: AtomicU64,
    pub synced_writes: AtomicU64,
    pub flush_bytes_written: AtomicU64,
    pub compaction_bytes_read: AtomicU64,
    pub compaction_bytes_written: AtomicU64,
    pub flushes: AtomicU64,
    pub compactions: AtomicU64,
    pub trivial_moves: AtomicU64,
    pub files_dropped_by_range_deletes: AtomicU64,
    pub idle_compactions: AtomicU64,
    pub stall_micros: AtomicU64,
    pub slowdowns: AtomicU64,
    pub bloom_checks: AtomicU64,
    pub bloom_useful: AtomicU64,
    pub bloom_false_positives: AtomicU64,
    pub block_cache_hits: AtomicU64,
    pub block_cache_misses: AtomicU64,
}

impl Stats {
    /// Accounts one table lookup: what the filter said and whether a block was read.
    pub fn record_table_lookup(
        &self,
        filter: FilterAnswer,
        read_block: bool,
        cache_hit: bool,
        found: &Lookup,
    ) {
        match filter {
            FilterAnswer::Absent => {
                self.bloom_checks.fetch_add(1, Relaxed);
                self.bloom_useful.fetch_add(1, Relaxed);
            }
            FilterAnswer::MayContain => {
                self.bloom_checks.fetch_add(1, Relaxed);
                if !found.is_final() {
                    self.bloom_false_positives.fetch_add(1, Relaxed);
                }
            }
            FilterAnswer::NoFilter => {}
        }
        if read_block {
            let counter = if cache_hit {
                &self.block_cache_hits
            } else {
                &self.block_cache_misses
            };
            counter.fetch_add(1, Relaxed);
        }
    }

    pub fn add_stall(&self, d: Duration) {
        self.stall_micros.fetch_add(d.as_micros() as u64, Relaxed);
    }
}

/// Per-level shape of the tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LevelStats {
    /// Table files on the level.
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Entries (puts and tombstones) they hold.
    pub entries: u64,
    /// Tombstones among those entries.
    pub tombstones: u64,
    /// Range tombstones they hold (`(fragment, sequence)` pairs).
    pub range_tombstones: u64,
}

/// A snapshot of the database's statistics; see [`crate::Db::stats`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct DbStats {
    /// One entry per level, L0 first.
    pub levels: Vec<LevelStats>,
    /// Key and value bytes accepted by writes.
    pub user_bytes_written: u64,
    /// Bytes appended to write-ahead logs.
    pub wal_bytes_written: u64,
    /// Syncs of the live WAL on behalf of synced writes (group commit: one per group),
    /// `Db::sync_wal` and close.
    pub wal_syncs: u64,
    /// Writes that asked for `sync` (an empty one included); divided by `wal_syncs`,
    /// how many share an fsync.
    pub synced_writes: u64,
    /// Bytes of tables written by flushes.
    pub flush_bytes_written: u64,
    /// Bytes of tables read by compactions.
    pub compaction_bytes_read: u64,
    /// Bytes of tables written by compactions.
    pub compaction_bytes_written: u64,
    /// MemTable flushes completed.
    pub flushes: u64,
    /// Compactions completed that rewrote data.
    pub compactions: u64,
    /// Compactions that moved a file down a level without rewriting it.
    pub trivial_moves: u64,
    /// Table files deleted without being read because a newer range tombstone in a
    /// level above covered every key they hold, for every reader.
    pub files_dropped_by_range_deletes: u64,
    /// Compactions (rewrites and moves) of level 0 run because the database went
    /// without a write for `DbBuilder::idle_compaction`.
    pub idle_compactions: u64,
    /// Time writers spent waiting for flushes and compactions (stop and slowdown).
    pub stall_time: Duration,
    /// Write groups delayed 1 ms by a slowdown: L0 at its slowdown trigger, or every
    /// allowed frozen MemTable waiting for its flush with the active one half full.
    pub slowdowns: u64,
    /// Table lookups that consulted a Bloom filter.
    pub bloom_checks: u64,
    /// Filter answers "not here" that saved a block read.
    pub bloom_useful: u64,
    /// Filter answers "may be here" for keys the table did not hold.
    pub bloom_false_positives: u64,
    /// Point-lookup data blocks served by the block cache.
    pub block_cache_hits: u64,
    /// Point-lookup data blocks read from the file (every block of a mapped table stored
    /// raw: those skip the block cache, `DbBuilder::mmap_reads`).
    pub block_cache_misses: u64,
    /// Live size of the MemTables in bytes.
    pub memtable_bytes: u64,
    /// Table readers currently open (bounded by `max_open_files`).
    pub open_tables: usize,
    /// The keyspace whose unflushed writes hold the oldest WAL on disk (the default
    /// keyspace's name when none does). Per keyspace, see [`keyspaces`](Self::keyspaces).
    pub oldest_wal_keyspace: String,
    /// Every keyspace: its name, and the shape of its tree (`levels` and
    /// `memtable_bytes` above are the default keyspace's).
    pub keyspaces: Vec<KeyspaceStats>,
}

/// The shape of one keyspace's tree ([`DbStats::keyspaces`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyspaceStats {
    /// The keyspace's name.
    pub name: String,
    /// Per level, as [`DbStats::levels`].
    pub levels: Vec<LevelStats>,
    /// Live size of its MemTables in bytes.
    pub memtable_bytes: u64,
}

impl DbStats {
    /// Bytes written to disk (WAL, flushes, compactions) per user byte written.
    pub fn write_amplification(&self) -> f64 {
        let disk =
            self.wal_bytes_written + self.flush_bytes_written + self.compaction_bytes_written;
        disk as f64 / self.user_bytes_written.max(1) as f64
    }

    /// Total bytes in table files.
    pub fn table_bytes(&self) -> u64 {
        self.levels.iter().map(|l| l.bytes).sum()
    }

    /// Estimated space amplification: table bytes ÷ the bytes of the deepest non-empty
    /// level. Leveled compaction keeps almost all live data in the deepest level, so this
    /// approaches the true ratio (disk bytes ÷ live bytes) from below; an exact figure
    /// would need a full scan. 1.0 for an empty database.
    pub fn space_amplification(&self) -> f64 {
        match self.levels.iter().rev().find(|l| l.bytes > 0) {
            Some(bottom) => self.table_bytes() as f64 / bottom.bytes as f64,
            None => 1.0,
        }
    }
}

pub(crate) fn load(c: &AtomicU64) -> u64 {
    c.load(Relaxed)
}
