//! Versions: immutable sets of live table files, one list per level.
//!
//! A [`Version`] never changes once built; flushes and compactions make a new one by
//! applying a [`VersionEdit`]. Readers and iterators pin the version they started with
//! (an `Arc`), so a table file stays on disk until the last version and iterator that
//! name it are gone: [`TableFile`] hands its file to the remover on drop once a
//! compaction has marked it obsolete.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use strata_compaction::FileMeta;
use strata_core::{FragmentedTombstones, Lookup, Result, SequenceNumber};
use strata_sstable::{KeyHash, Table};

use crate::edit::{MAX_LEVELS, VersionEdit};
use crate::stats::Stats;
use crate::table_cache::TableCache;

/// Number of levels a database has (L0..L6), as in LevelDB and RocksDB.
pub(crate) const NUM_LEVELS: usize = 7;
const _: () = assert!(NUM_LEVELS <= MAX_LEVELS);

/// How many of a point lookup's candidate tables have their filters loaded together
/// before the first is asked ([`Version::get`]). Enough for a settled tree's few L0
/// tables and the levels under them; more would open tables a lookup that finds its
/// key early never asks.
const PREFETCHED_TABLES: usize = 4;

/// A table a point lookup may ask, and its reader if already opened.
type Candidate<'a> = (&'a Arc<TableFile>, Option<Arc<Table>>);

/// One live table file: its manifest entry; its reader comes from the table cache.
pub(crate) struct TableFile {
    pub meta: Arc<FileMeta>,
    path: PathBuf,
    tables: Arc<TableCache>,
    obsolete: AtomicBool,
    /// The reader held for the file's whole life, if [`pin`](Self::pin) was called
    /// (read-only handles: the writer may delete the file meanwhile).
    pinned: OnceLock<Arc<Table>>,
    /// The reader the table cache gave the first time this file was opened, not owned:
    /// while the cache keeps it, [`table`](Self::table) reaches it without a lookup in
    /// the cache (a hash, a shard lock: a fifth of a lookup of an absent key, profiled).
    /// Once the cache evicts it this stays dead and every call asks the cache, so
    /// `max_open_files` still bounds what is open.
    first_opened: OnceLock<Weak<Table>>,
    /// The table's creation time, once read from its properties.
    created_ms: OnceLock<u64>,
}

impl std::fmt::Debug for TableFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableFile")
            .field("number", &self.meta.number)
            .finish()
    }
}

impl TableFile {
    pub fn new(meta: Arc<FileMeta>, path: PathBuf, tables: Arc<TableCache>) -> Self {
        TableFile {
            meta,
            path,
            tables,
            obsolete: AtomicBool::new(false),
            pinned: OnceLock::new(),
            first_opened: OnceLock::new(),
            created_ms: OnceLock::new(),
        }
    }

    /// When the table was written (ms since the UNIX epoch; 0 for tables written
    /// before tables recorded it): read from its properties once.
    pub fn created_ms(&self) -> Result<u64> {
        if let Some(ms) = self.created_ms.get() {
            return Ok(*ms);
        }
        let ms = self.table()?.properties().creation_time_ms;
        Ok(*self.created_ms.get_or_init(|| ms))
    }

    /// The open table (the pinned one, or from the table cache, opening it if needed).
    /// The cache sees no hit for a table reached through `first_opened`, so past
    /// `max_open_files` it may evict a busy table first; the next call then asks the
    /// cache again, which reopens it.
    pub fn table(&self) -> Result<Arc<Table>> {
        if let Some(table) = self.pinned.get() {
            return Ok(Arc::clone(table));
        }
        if let Some(table) = self.first_opened.get().and_then(Weak::upgrade) {
            return Ok(table);
        }
        let table = self.tables.get(self.meta.number, &self.path)?;
        let _ = self.first_opened.set(Arc::downgrade(&table));
        Ok(table)
    }

    /// Opens the table now and keeps it open as long as this handle lives, whatever
    /// the table cache evicts: a file its writer deletes meanwhile stays readable
    /// where open files outlive their names.
    pub fn pin(&self) -> Result<()> {
        if self.pinned.get().is_none() {
            let _ = self
                .pinned
                .set(self.tables.get(self.meta.number, &self.path)?);
        }
        Ok(())
    }

    /// Marks the file for removal once nothing references it any more.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }
}

impl Drop for TableFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            // Not here: this may be a reader's thread (crate::remover).
            self.tables
                .retire(self.meta.number, std::mem::take(&mut self.path));
        }
    }
}

/// An immutable set of live files. `levels[0]` is ordered newest first (its files may
/// overlap); deeper levels are sorted by key and do not overlap.
#[derive(Debug, Default)]
pub(crate) struct Version {
    pub levels: [Vec<Arc<TableFile>>; NUM_LEVELS],
    /// Per level, the range tombstones of all its tables together (`None` where no
    /// table has any): what iterators weigh a level's entries against. Built on first
    /// use, once per version.
    level_range_tombstones: OnceLock<Vec<Option<Arc<FragmentedTombstones>>>>,
    /// Whether any table of each level holds range tombstones (set by `apply`), so
    /// readers of a tree without any skip them with one load.
    levels_with_range_tombstones: [bool; NUM_LEVELS],
    /// The tables a range-delete compaction may take (`compact.rs`), weighed once per
    /// version.
    range_delete_candidates: OnceLock<Vec<(usize, u64)>>,
}

impl Version {
    /// Newest entry for `user_key` visible at `snapshot`, asking each candidate table's
    /// Bloom filter before reading it.
    pub fn get(&self, user_key: &[u8], snapshot: SequenceNumber, stats: &Stats) -> Result<Lookup> {
        // Hashed once for every table's filter; not at all if no table's range holds the
        // key. The first few candidates are opened (or found) and their filters' bits and
        // the index entries a search would start at begin loading together: a lookup that
        // misses asks every level-0 table and one per deeper level, and in a database
        // larger than the CPU caches each filter probe and index search is a cache miss.
        // Issued one after another, those misses add up; issued together they overlap
        // (50M keys: 7 % off a point read, docs/benchmarks.md). A table that fails to open
        // is left for the loop below, which reports it only if the lookup gets that far
        // (a newer table may answer first).
        let mut candidates = self.tables_for(user_key);
        let mut first: [Option<Candidate<'_>>; PREFETCHED_TABLES] = Default::default();
        let mut hash = None;
        for slot in &mut first {
            let Some(file) = candidates.next() else { break };
            let hash = *hash.get_or_insert_with(|| KeyHash::of(user_key));
            let table = file.table().ok();
            if let Some(table) = &table {
                table.prefetch(user_key, hash);
            }
            *slot = Some((file, table));
        }
        let Some(hash) = hash else {
            return Ok(Lookup::Absent);
        };
        let rest = candidates.map(|file| (file, None));
        for (file, table) in first.into_iter().flatten().chain(rest) {
            let table = match table {
                Some(table) => table,
                None => file.table()?,
            };
            let found = Self::get_in(file, &table, user_key, hash, snapshot, stats)?;
            if found.is_final() {
                return Ok(found);
            }
        }
        Ok(Lookup::Absent)
    }

    /// The tables whose key range holds `user_key`, newest first: every such level-0
    /// table, then at most one per deeper level.
    pub fn tables_for<'a>(
        &'a self,
        user_key: &'a [u8],
    ) -> impl Iterator<Item = &'a Arc<TableFile>> {
        let (l0, deeper) = self
            .levels
            .split_first()
            .map_or((&[][..], &[][..]), |(a, b)| (&a[..], b));
        let l0 = l0.iter().filter(move |f| {
            f.meta.smallest_user_key() <= user_key && user_key <= f.meta.largest_user_key()
        });
        let deeper = deeper.iter().filter_map(move |files| {
            let i = files.partition_point(|f| f.meta.largest_user_key() < user_key);
            files
                .get(i)
                .filter(|f| f.meta.smallest_user_key() <= user_key)
        });
        l0.chain(deeper)
    }

    fn get_in(
        file: &TableFile,
        table: &Table,
        user_key: &[u8],
        hash: KeyHash,
        snapshot: SequenceNumber,
        stats: &Stats,
    ) -> Result<Lookup> {
        let (point, trace) = table.get_versioned_hashed(user_key, hash, snapshot)?;
        // The file's metadata (already in cache: its key range was just compared) says
        // whether the table has range tombstones; most have none, and asking costs a
        // load from the table's own memory.
        let cover = if file.meta.range_tombstones > 0 {
            table.range_tombstones().covering_seq(user_key, snapshot)
        } else {
            None
        };
        let found = Lookup::resolve(point, cover);
        stats.record_table_lookup(
            trace.filter,
            trace.data_block.is_some(),
            trace.cache_hit,
            &found,
        );
        Ok(found)
    }

    /// A new version with `edit` applied. Files the edit removes are marked obsolete
    /// (their bytes go once no older version holds them) — unless the edit re-adds the
    /// same file on another level (a trivial move), which keeps its handle.
    pub fn apply(&self, edit: &VersionEdit, make: impl Fn(&FileMeta) -> Arc<TableFile>) -> Version {
        let mut next = Version::default();
        let mut removed: HashMap<u64, Arc<TableFile>> = HashMap::new();
        for (level, files) in self.levels.iter().enumerate() {
            for f in files {
                if edit.deleted_files.contains(&(level, f.meta.number)) {
                    removed.insert(f.meta.number, Arc::clone(f));
                } else {
                    next.levels[level].push(Arc::clone(f));
                }
            }
        }
        for (level, meta) in &edit.new_files {
            let file = removed.remove(&meta.number).unwrap_or_else(|| make(meta));
            if let Some(files) = next.levels.get_mut(*level) {
                files.push(file);
            }
        }
        for f in removed.values() {
            f.mark_obsolete();
        }
        next.levels[0].sort_by(|a, b| {
            (b.meta.largest_seq, b.meta.number).cmp(&(a.meta.largest_seq, a.meta.number))
        });
        for files in &mut next.levels[1..] {
            files.sort_by(|a, b| a.meta.smallest.cmp(&b.meta.smallest));
        }
        for (has, files) in next
            .levels_with_range_tombstones
            .iter_mut()
            .zip(&next.levels)
        {
            *has = files.iter().any(|f| f.meta.range_tombstones > 0);
        }
        next
    }

    /// The `(level, file number)` of the tables `find` picks for range-delete
    /// compactions, found on first use and kept for the version's life (it never
    /// changes). An error is returned, not kept: the next call tries again.
    pub fn range_delete_candidates(
        &self,
        find: impl FnOnce(&Version) -> Result<Vec<(usize, u64)>>,
    ) -> Result<&[(usize, u64)]> {
        if let Some(found) = self.range_delete_candidates.get() {
            return Ok(found);
        }
        let found = find(self)?;
        Ok(self.range_delete_candidates.get_or_init(|| found))
    }

    /// Whether any table of `level` holds range tombstones.
    pub fn has_range_tombstones(&self, level: usize) -> bool {
        self.levels_with_range_tombstones
            .get(level)
            .copied()
            .unwrap_or(false)
    }

    /// The range tombstones of level `level`'s tables, together (see the field).
    pub fn level_range_tombstones(
        &self,
        level: usize,
    ) -> Result<Option<Arc<FragmentedTombstones>>> {
        if !self.has_range_tombstones(level) {
            return Ok(None);
        }
        if let Some(all) = self.level_range_tombstones.get() {
            return Ok(all.get(level).cloned().flatten());
        }
        let mut all = Vec::with_capacity(NUM_LEVELS);
        for files in &self.levels {
            let mut tombstones = Vec::new();
            for f in files.iter().filter(|f| f.meta.range_tombstones > 0) {
                tombstones.extend(f.table()?.range_tombstones().tombstones());
            }
            all.push(
                (!tombstones.is_empty()).then(|| Arc::new(FragmentedTombstones::new(tombstones))),
            );
        }
        let all = self.level_range_tombstones.get_or_init(|| all);
        Ok(all.get(level).cloned().flatten())
    }

    /// Each file's entry count, level by level (for sizing new tables' filters).
    pub fn level_entries(&self) -> Vec<Vec<u64>> {
        self.levels
            .iter()
            .map(|files| files.iter().map(|f| f.meta.entries).collect())
            .collect()
    }

    /// The manifest entries of every level, for the compaction picker.
    pub fn level_metas(&self) -> Vec<Vec<Arc<FileMeta>>> {
        self.levels
            .iter()
            .map(|files| files.iter().map(|f| Arc::clone(&f.meta)).collect())
            .collect()
    }

    /// Every live file's number.
    pub fn file_numbers(&self) -> impl Iterator<Item = u64> + '_ {
        self.levels.iter().flatten().map(|f| f.meta.number)
    }

    /// `(level, manifest entry)` of every live file.
    pub fn file_metas(&self) -> Vec<(usize, FileMeta)> {
        self.levels
            .iter()
            .enumerate()
            .flat_map(|(level, files)| files.iter().map(move |f| (level, (*f.meta).clone())))
            .collect()
    }

    /// Marks every live file for removal once nothing reads it (a dropped keyspace's).
    pub fn mark_all_obsolete(&self) {
        for f in self.levels.iter().flatten() {
            f.mark_obsolete();
        }
    }
}
