//! RocksDB through the `rocksdb` crate (bundled sources, release build): WAL on, no
//! fsync per write (`WriteOptions::sync = false`, RocksDB's default), fillsync with
//! `sync = true`. Write buffer `write_buffer_bytes`, up to 3 write buffers (1 active + 2
//! immutable, like Strata's two frozen MemTables), LRU block cache `cache_bytes`, 4 KiB
//! blocks, 10-bit Bloom filters, `--compression` on every level (none by default; lz4, and
//! zstd with the harness's `zstd` feature), 2 background jobs, everything else at
//! RocksDB's defaults (level-style compaction, L0 trigger 4, L1 256 MiB, 64 MiB files).
//!
//! For `incrmerge` the same database gets an associative u64-add merge operator
//! (`set_merge_operator_associative`); for `incrtxn` the same options open an
//! `OptimisticTransactionDB` instead ([`RocksTxnEngine`]). Every other workload opens
//! the plain `DB` with no merge operator, exactly as before these workloads existed.

use std::path::Path;

use std::time::Duration;

use rocksdb::{
    BlockBasedOptions, Cache, DB, DBCompressionType, ErrorKind, MergeOperands,
    OptimisticTransactionDB, OptimisticTransactionOptions, Options, WriteBatch, WriteOptions,
};

use crate::engine::{Attempt, Config, Engine, Purpose, Res, add_u64, counter_value};
use crate::setup::Codec;

/// The options every RocksDB database of the harness is opened with.
fn options(cfg: &Config) -> Res<Options> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.set_write_buffer_size(cfg.write_buffer_bytes);
    opts.set_max_write_buffer_number(3);
    // `compression` is every level's (flushes included) while `compression_per_level`
    // is empty and `bottommost_compression` unset, as here.
    opts.set_compression_type(
        match crate::setup::compression("rocksdb", cfg.compression)? {
            Codec::Lz4 => DBCompressionType::Lz4,
            Codec::Zstd => DBCompressionType::Zstd,
            Codec::None | Codec::Unsupported => DBCompressionType::None,
        },
    );
    opts.set_max_background_jobs(2);
    let mut table = BlockBasedOptions::default();
    table.set_block_size(4096);
    table.set_bloom_filter(10.0, false);
    table.set_block_cache(&Cache::new_lru_cache(cfg.cache_bytes));
    opts.set_block_based_table_factory(&table);
    Ok(opts)
}

/// RocksDB's full and partial merge of u64 counters (the binding calls the same
/// function for both; a partial merge has no existing value, which [`add_u64`] reads
/// as 0, correct for a sum).
fn u64_add(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    add_u64(existing, operands.iter())
}

/// RocksDB behind the harness's interface.
pub struct RocksEngine {
    db: DB,
    plain: WriteOptions,
    synced: WriteOptions,
    merge: bool,
}

impl RocksEngine {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, cfg: &Config) -> Res<Self> {
        let mut opts = options(cfg)?;
        let merge = cfg.purpose == Purpose::Merge;
        if merge {
            opts.set_merge_operator_associative("u64add", u64_add);
        }
        let db = DB::open(&opts, dir)?;
        let plain = WriteOptions::default();
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        Ok(RocksEngine {
            db,
            plain,
            synced,
            merge,
        })
    }
}

impl Engine for RocksEngine {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> Res<()> {
        let wo = if sync { &self.synced } else { &self.plain };
        self.db.put_opt(key, value, wo)?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        Ok(self.db.get_pinned(key)?.map(|v| v.len()))
    }

    fn delete(&self, key: &[u8]) -> Res<()> {
        self.db.delete_opt(key, &self.plain)?;
        Ok(())
    }

    fn has_delete_range(&self) -> bool {
        true
    }

    fn delete_range(&self, start: &[u8], end: &[u8]) -> Res<()> {
        // What `DB::DeleteRange` does inside RocksDB: a one-entry batch holding a range
        // tombstone for the default column family. (The binding's `delete_range_cf`
        // needs a column-family handle, which a database opened without naming its
        // column families does not hand out for "default".)
        let mut batch = WriteBatch::default();
        batch.delete_range(start, end);
        self.db.write_opt(batch, &self.plain)?;
        Ok(())
    }

    fn seek(&self, key: &[u8], nexts: usize) -> Res<bool> {
        raw_seek_entries(&mut self.db.raw_iterator(), key, nexts)
    }

    fn scan(&self, reverse: bool, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Res<()> {
        raw_scan(&mut self.db.raw_iterator(), reverse, visit)
    }

    fn settle(&self) -> Res<()> {
        settle(|| self.db.flush(), |name| self.db.property_int_value(name))
    }

    fn compact_all(&self) -> Res<bool> {
        self.db.compact_range::<&[u8], &[u8]>(None, None);
        Ok(true)
    }

    fn shape(&self) -> Option<String> {
        shape(|name| self.db.property_value(name).ok().flatten())
    }

    fn get_value(&self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        Ok(self.db.get(key)?)
    }

    fn has_merge(&self) -> bool {
        self.merge
    }

    fn merge_add(&self, key: &[u8], delta: u64) -> Res<()> {
        if !self.merge {
            return Err("RocksDB was opened without the merge operator".into());
        }
        self.db.merge_opt(key, delta.to_le_bytes(), &self.plain)?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Res<()> {
        drop(self.db);
        Ok(())
    }
}

/// Flushes, then polls instead of `wait_for_compact` (RocksDB ≥ 8.x only), so the
/// harness also links against an older system library (ROCKSDB_LIB_DIR) for quick
/// checks. Closures, because `DB` and `OptimisticTransactionDB` share these methods
/// through a trait the binding does not export.
fn settle(
    flush: impl Fn() -> Result<(), rocksdb::Error>,
    property: impl Fn(&str) -> Result<Option<u64>, rocksdb::Error>,
) -> Res<()> {
    flush()?;
    for _ in 0..3000 {
        let pending = property("rocksdb.compaction-pending")?;
        let running = property("rocksdb.num-running-compactions")?;
        let flushing = property("rocksdb.num-running-flushes")?;
        if pending.unwrap_or(0) + running.unwrap_or(0) + flushing.unwrap_or(0) == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Files per level, and the table properties that count entries, point and range
/// tombstones and merge operands (RocksDB's own words).
fn shape(property: impl Fn(&str) -> Option<String>) -> Option<String> {
    let levels = property("rocksdb.levelstats")?;
    let props = property("rocksdb.aggregated-table-properties").unwrap_or_default();
    let counts: Vec<&str> = props
        .split(';')
        .map(str::trim)
        .filter(|p| {
            p.starts_with("# entries")
                || p.starts_with("# deletions")
                || p.starts_with("# range deletions")
                || p.starts_with("# merge operands")
        })
        .collect();
    let mut out = String::new();
    for l in levels.lines().skip(2) {
        let mut f = l.split_whitespace();
        if let (Some(level), Some(files)) = (f.next(), f.next())
            && files != "0"
        {
            out.push_str(&format!("    L{level}: {files:>3} files\n"));
        }
    }
    out.push_str(&format!("    tables: {}", counts.join(", ")));
    Some(out)
}

/// RocksDB's `OptimisticTransactionDB` on the same options, for `incrtxn`: each
/// increment is a transaction that reads the counter with `GetForUpdate` (so a write
/// by another commit after the read fails the commit with `Busy`), puts the sum and
/// commits with the plain write options (WAL written, no fsync).
pub struct RocksTxnEngine {
    db: OptimisticTransactionDB,
    plain: WriteOptions,
    txn: OptimisticTransactionOptions,
}

impl RocksTxnEngine {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, cfg: &Config) -> Res<Self> {
        let db = OptimisticTransactionDB::open(&options(cfg)?, dir)?;
        Ok(RocksTxnEngine {
            db,
            plain: WriteOptions::default(),
            txn: OptimisticTransactionOptions::default(),
        })
    }
}

impl Engine for RocksTxnEngine {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> Res<()> {
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.put_opt(key, value, &wo)?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        Ok(self.db.get_pinned(key)?.map(|v| v.len()))
    }

    fn delete(&self, key: &[u8]) -> Res<()> {
        self.db.delete_opt(key, &self.plain)?;
        Ok(())
    }

    fn seek(&self, key: &[u8], nexts: usize) -> Res<bool> {
        raw_seek_entries(&mut self.db.raw_iterator(), key, nexts)
    }

    fn scan(&self, reverse: bool, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Res<()> {
        raw_scan(&mut self.db.raw_iterator(), reverse, visit)
    }

    fn settle(&self) -> Res<()> {
        settle(|| self.db.flush(), |name| self.db.property_int_value(name))
    }

    fn shape(&self) -> Option<String> {
        shape(|name| self.db.property_value(name).ok().flatten())
    }

    fn get_value(&self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        Ok(self.db.get(key)?)
    }

    fn has_transactions(&self) -> bool {
        true
    }

    fn txn_add(&self, key: &[u8], delta: u64) -> Res<Attempt> {
        let tx = self.db.transaction_opt(&self.plain, &self.txn);
        let now = {
            let pinned = tx.get_pinned_for_update(key, true)?;
            counter_value(pinned.as_deref())?
        };
        tx.put(key, now.wrapping_add(delta).to_le_bytes())?;
        match tx.commit() {
            Ok(()) => Ok(Attempt::Committed),
            // Busy: another commit wrote the key after the read. TryAgain: RocksDB kept
            // too little MemTable history to tell; its documented answer is to retry.
            Err(e) if matches!(e.kind(), ErrorKind::Busy | ErrorKind::TryAgain) => {
                Ok(Attempt::Conflict)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn close(self: Box<Self>) -> Res<()> {
        drop(self.db);
        Ok(())
    }
}

/// With `rocksdb-system` the harness links the system's RocksDB 7.8 (`ROCKSDB_LIB_DIR`,
/// Debian's `librocksdb-dev`, an assertion-enabled build: quick checks and db_bench
/// comparisons only, never the published figures). The binding's `Options` drop path
/// names the write-buffer-manager destructor that 7.8 lacks; the harness never creates
/// a write-buffer manager, so this stand-in is never called.
#[cfg(feature = "rocksdb-system")]
// SAFETY: the symbol does not exist in the library this feature links against (the
// linker would report a duplicate otherwise), and nothing in the process creates the
// object it would destroy, so no caller ever reaches it.
#[unsafe(no_mangle)]
pub extern "C" fn rocksdb_write_buffer_manager_destroy(_manager: *mut std::ffi::c_void) {}

#[cfg(all(test, feature = "rocksdb-system"))]
mod tests {
    #[test]
    fn the_write_buffer_manager_stand_in_does_nothing() {
        super::rocksdb_write_buffer_manager_destroy(std::ptr::null_mut());
    }
}

/// [`Engine::scan`] on a fresh RocksDB raw iterator (of either database kind).
fn raw_scan<D: rocksdb::DBAccess>(
    it: &mut rocksdb::DBRawIteratorWithThreadMode<'_, D>,
    reverse: bool,
    visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Res<()> {
    if reverse {
        it.seek_to_last();
    } else {
        it.seek_to_first();
    }
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        if !visit(k, v) {
            break;
        }
        if reverse {
            it.prev();
        } else {
            it.next();
        }
    }
    it.status()?;
    Ok(())
}

/// [`Engine::seek`] on a fresh RocksDB raw iterator (of either database kind): seeks
/// `key`, then reads its entry and `nexts` more, each checked as `seek_entries` checks
/// them.
fn raw_seek_entries<D: rocksdb::DBAccess>(
    it: &mut rocksdb::DBRawIteratorWithThreadMode<'_, D>,
    key: &[u8],
    nexts: usize,
) -> Res<bool> {
    it.seek(key);
    let mut found = false;
    let mut last: Option<Vec<u8>> = None;
    for i in 0..=nexts {
        let (Some(k), Some(v)) = (it.key(), it.value()) else {
            break;
        };
        if v.is_empty() || last.as_deref().is_some_and(|l| l >= k) {
            return Err(format!("seek read a bad entry at step {i}").into());
        }
        if i == 0 {
            found = k == key;
        }
        last = Some(k.to_vec());
        it.next();
    }
    it.status()?;
    Ok(found)
}
