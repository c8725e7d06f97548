//! The one interface every engine is driven through, and Strata's implementation of it.
//!
//! The harness never sees an engine's own types: each workload calls these methods with
//! the same keys, values and durability for every engine, so differences in the figures
//! are differences between the engines (and between their bindings' overheads, which are
//! small next to a storage operation).

use std::path::Path;
use std::time::Duration;

use strata::{Db, WriteBatch, WriteOptions};

/// Any error an engine or the harness reports.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Result with [`BoxError`].
pub type Res<T> = std::result::Result<T, BoxError>;

/// Feeds `visit` the entries of a double-ended iterator, front to back or back to front,
/// until it returns `false`: the scan of every engine whose iterator has that shape.
pub fn visit_entries<K, V, E>(
    entries: impl DoubleEndedIterator<Item = Result<(K, V), E>>,
    reverse: bool,
    visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Res<()>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
    BoxError: From<E>,
{
    let mut visit_one = |kv: Result<(K, V), E>| -> Res<bool> {
        let (k, v) = kv?;
        Ok(visit(k.as_ref(), v.as_ref()))
    };
    if reverse {
        for kv in entries.rev() {
            if !visit_one(kv)? {
                break;
            }
        }
    } else {
        for kv in entries {
            if !visit_one(kv)? {
                break;
            }
        }
    }
    Ok(())
}

/// [`Engine::seek`] over an iterator positioned at the first key `>= key`: reads its
/// first entry and `nexts` more, checking each (a value, keys ascending).
pub fn seek_entries<K, V, E>(
    entries: impl Iterator<Item = Result<(K, V), E>>,
    key: &[u8],
    nexts: usize,
) -> Res<bool>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
    BoxError: From<E>,
{
    let mut found = false;
    let mut last: Option<Vec<u8>> = None;
    for (i, kv) in entries.take(nexts + 1).enumerate() {
        let (k, v) = kv?;
        let (k, v) = (k.as_ref(), v.as_ref());
        if v.is_empty() || last.as_deref().is_some_and(|l| l >= k) {
            return Err(format!("seek read a bad entry at step {i}").into());
        }
        if i == 0 {
            found = k == key;
        }
        last = Some(k.to_vec());
    }
    Ok(found)
}

/// The memory budget and threads every engine is given (see `docs/benchmarks.md`).
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Block cache (LSMs) or page cache of the engine (B-trees get this plus the write buffer).
    pub cache_bytes: usize,
    /// MemTable / write buffer size at which an LSM freezes and flushes it.
    pub write_buffer_bytes: usize,
    /// Table compression asked of every engine (`none`, `lz4`, `zstd`); what each engine
    /// can run of it is [`crate::setup::compression`].
    pub compression: &'static str,
    /// Strata's filter budget (bits per key on average), if sized by the tree's shape.
    pub bloom_filter_budget: Option<f64>,
    /// Strata's `max_subcompactions`.
    pub subcompactions: usize,
    /// Strata's `mmap_reads`.
    pub mmap_reads: bool,
    /// Strata's range-delete compaction rules (`DbBuilder::range_delete_compactions`).
    pub range_delete_compactions: bool,
    /// What the engine is opened for (the counter workloads need more than the rest).
    pub purpose: Purpose,
}

/// What an engine is opened for. Most workloads use the plain database; the counter
/// workloads need a merge operator or optimistic transactions, which RocksDB and fjall
/// provide through a different kind of database (`OptimisticTransactionDB`,
/// `OptimisticTxDatabase`, whose plain writes each run as a transaction). So each
/// engine is opened for those only in the counter workloads, and the other workloads'
/// figures stay those of the plain database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Purpose {
    /// Puts, gets, deletes and scans.
    #[default]
    Plain,
    /// As `Plain`, with the u64-add merge operator configured (`incrmerge`).
    Merge,
    /// The engine's optimistic-transaction database (`incrtxn`).
    Transactions,
}

/// How one optimistic transaction attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Committed: the increment is acknowledged.
    Committed,
    /// The engine refused the commit because another commit wrote the key after this
    /// transaction read it; nothing was written and the caller retries.
    Conflict,
}

/// The value of a counter as stored: absent is 0, otherwise exactly 8 bytes, u64
/// little-endian. Any other length is an error, so every counter read is checked.
pub fn counter_value(stored: Option<&[u8]>) -> Res<u64> {
    match stored {
        None => Ok(0),
        Some(b) => match <[u8; 8]>::try_from(b) {
            Ok(le) => Ok(u64::from_le_bytes(le)),
            Err(_) => Err(format!("a counter holds {} bytes, not 8", b.len()).into()),
        },
    }
}

/// The u64-add fold every engine's merge operator computes: `existing` (absent: 0)
/// plus every operand, or `None` (the engine reports a merge error) if any of them is
/// not 8 bytes. Associative, as Strata and RocksDB require.
pub fn add_u64<'a>(
    existing: Option<&[u8]>,
    operands: impl IntoIterator<Item = &'a [u8]>,
) -> Option<Vec<u8>> {
    let decode = |b: &[u8]| <[u8; 8]>::try_from(b).ok().map(u64::from_le_bytes);
    let mut sum = existing.map_or(Some(0), decode)?;
    for op in operands {
        sum = sum.wrapping_add(decode(op)?);
    }
    Some(sum.to_le_bytes().to_vec())
}

/// Strata's u64-add merge operator (`docs/merge.md`'s counter).
struct U64Add;

impl strata::MergeOperator for U64Add {
    fn name(&self) -> &str {
        "u64-add"
    }

    fn merge(&self, _key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>> {
        add_u64(existing, operands.iter().copied())
    }
}

/// A database under test, open on one directory.
///
/// Durability contract: `put`/`delete` with `sync == false` return once the write is
/// handed to the operating system (each engine's closest mode; the exceptions are
/// written in `docs/benchmarks.md`); with `sync == true` once it is on stable storage.
pub trait Engine: Send + Sync {
    /// Sets `key` to `value`.
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> Res<()>;
    /// The length of `key`'s value, if present (the value is read, then dropped).
    fn get(&self, key: &[u8]) -> Res<Option<usize>>;
    /// Deletes `key`.
    fn delete(&self, key: &[u8]) -> Res<()>;
    /// Whether [`delete_range`](Self::delete_range) is the engine's own range delete.
    /// Engines without one (fjall, sled, redb) skip the `deleterange` workload rather
    /// than emulate it with a scan and per-key deletes.
    fn has_delete_range(&self) -> bool {
        false
    }
    /// Deletes every key in `start..end` with the engine's native range delete (one
    /// range tombstone, no read of the keys).
    fn delete_range(&self, start: &[u8], end: &[u8]) -> Res<()> {
        let _ = (start, end);
        Err("this engine has no native range delete".into())
    }
    /// Positions at the first key `>= key`, reads that entry and then up to `nexts`
    /// more (db_bench's `--seek_nexts`); returns whether the first exists and equals
    /// `key`. Every entry read is checked (non-empty value, keys ascending).
    fn seek(&self, key: &[u8], nexts: usize) -> Res<bool>;
    /// Visits every entry in key order (descending if `reverse`) until `visit` returns
    /// false.
    fn scan(&self, reverse: bool, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Res<()>;
    /// Makes the state after a write workload durable in the engine's own structures
    /// (flush MemTables) and waits for the background work it can wait for.
    fn settle(&self) -> Res<()>;
    /// A picture of the engine's tree (levels), if it can give one.
    fn shape(&self) -> Option<String> {
        None
    }
    /// Compacts the whole key space down to the engine's last level and returns once it
    /// is done (db_bench's `compact`); `Ok(false)` where the harness wires no such call.
    fn compact_all(&self) -> Res<bool> {
        Ok(false)
    }
    /// The value of `key`, if present: the counter workloads read every counter back
    /// and check it.
    fn get_value(&self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        let _ = key;
        Err("this engine does not return values to the harness".into())
    }
    /// Whether [`merge_add`](Self::merge_add) is the engine's own merge operator (opened
    /// with [`Purpose::Merge`]). Engines without one skip `incrmerge` rather than emulate
    /// it with a read and a write, which would measure something else.
    fn has_merge(&self) -> bool {
        false
    }
    /// Adds `delta` to the u64 little-endian counter at `key` with the engine's merge
    /// operator: a write of the operand, no read.
    fn merge_add(&self, key: &[u8], delta: u64) -> Res<()> {
        let _ = (key, delta);
        Err("this engine has no merge operator".into())
    }
    /// Whether [`txn_add`](Self::txn_add) runs an optimistic transaction of the engine
    /// (opened with [`Purpose::Transactions`]).
    fn has_transactions(&self) -> bool {
        false
    }
    /// One attempt to add `delta` to the counter at `key` in an optimistic transaction:
    /// read the counter so that a write by another commit after the read makes the
    /// commit fail, write the sum, commit. The caller retries on
    /// [`Attempt::Conflict`].
    fn txn_add(&self, key: &[u8], delta: u64) -> Res<Attempt> {
        let _ = (key, delta);
        Err("this engine has no optimistic transactions in this harness".into())
    }
    /// Closes cleanly, releasing every file and thread.
    fn close(self: Box<Self>) -> Res<()>;
}

/// Names of the engines compiled into this binary, Strata first.
pub fn compiled() -> Vec<&'static str> {
    let mut v = vec!["strata"];
    if cfg!(feature = "rocksdb") {
        v.push("rocksdb");
    }
    if cfg!(feature = "fjall") {
        v.push("fjall");
    }
    if cfg!(feature = "sled") {
        v.push("sled");
    }
    if cfg!(feature = "redb") {
        v.push("redb");
    }
    v
}

/// The engine behind a name: `strata-baseline` (see `--range_delete_baseline`) is
/// Strata on its own directory.
pub fn base_name(name: &str) -> &str {
    name.strip_suffix("-baseline").unwrap_or(name)
}

/// Opens engine `name` on `dir` (created if missing). Its writes mark the calling thread,
/// so the timed loops can count write stalls ([`crate::tails::marked`]).
pub fn open(name: &str, dir: &Path, cfg: &Config) -> Res<Box<dyn Engine>> {
    Ok(crate::tails::marked(open_unmarked(name, dir, cfg)?))
}

fn open_unmarked(name: &str, dir: &Path, cfg: &Config) -> Res<Box<dyn Engine>> {
    std::fs::create_dir_all(dir)?;
    match name {
        "strata" => Ok(Box::new(StrataEngine::open(dir, cfg)?)),
        #[cfg(feature = "fjall")]
        "fjall" if cfg.purpose == Purpose::Transactions => Ok(Box::new(
            crate::peers::fjall::FjallTxnEngine::open(dir, cfg)?,
        )),
        #[cfg(feature = "fjall")]
        "fjall" => Ok(Box::new(crate::peers::fjall::FjallEngine::open(dir, cfg)?)),
        #[cfg(feature = "sled")]
        "sled" => Ok(Box::new(crate::peers::sled::SledEngine::open(dir, cfg)?)),
        #[cfg(feature = "redb")]
        "redb" => Ok(Box::new(crate::peers::redb::RedbEngine::open(dir, cfg)?)),
        #[cfg(feature = "rocksdb")]
        "rocksdb" if cfg.purpose == Purpose::Transactions => Ok(Box::new(
            crate::peers::rocksdb::RocksTxnEngine::open(dir, cfg)?,
        )),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Ok(Box::new(crate::peers::rocksdb::RocksEngine::open(
            dir, cfg,
        )?)),
        other => Err(format!(
            "engine {other:?} is not compiled in (compiled: {}; peers need \
             `--features peers` or `--features rocksdb`)",
            compiled().join(", ")
        )
        .into()),
    }
}

/// Strata through its public API, default options except the memory budget (and the
/// u64-add merge operator when opened for `incrmerge`). Transactions need nothing at
/// open: `Purpose::Transactions` opens the same database as `Plain`.
pub struct StrataEngine {
    db: Db,
    merge: bool,
}

impl StrataEngine {
    fn open(dir: &Path, cfg: &Config) -> Res<Self> {
        let compression = match crate::setup::compression("strata", cfg.compression)? {
            crate::setup::Codec::Lz4 => strata::Compression::Lz4,
            crate::setup::Codec::Zstd => strata::Compression::Zstd,
            crate::setup::Codec::None | crate::setup::Codec::Unsupported => {
                strata::Compression::None
            }
        };
        let mut builder = Db::builder(dir)
            .block_cache_bytes(cfg.cache_bytes)
            .memtable_bytes(cfg.write_buffer_bytes)
            .compression(compression)
            .range_delete_compactions(cfg.range_delete_compactions);
        builder = builder
            .max_subcompactions(cfg.subcompactions)
            .mmap_reads(cfg.mmap_reads);
        if let Some(budget) = cfg.bloom_filter_budget {
            builder = builder.bloom_filter_budget(budget);
        }
        let merge = cfg.purpose == Purpose::Merge;
        if merge {
            builder = builder.merge_operator(U64Add);
        }
        let db = builder.open()?;
        Ok(StrataEngine { db, merge })
    }
}

impl Engine for StrataEngine {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> Res<()> {
        if sync {
            let mut b = WriteBatch::new();
            b.put(key, value);
            self.db.write(b, WriteOptions { sync: true })?;
        } else {
            self.db.put(key, value)?;
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        Ok(self.db.get(key)?.map(|v| v.len()))
    }

    fn delete(&self, key: &[u8]) -> Res<()> {
        Ok(self.db.delete(key)?)
    }

    fn has_delete_range(&self) -> bool {
        true
    }

    fn delete_range(&self, start: &[u8], end: &[u8]) -> Res<()> {
        Ok(self.db.delete_range(start..end)?)
    }

    fn seek(&self, key: &[u8], nexts: usize) -> Res<bool> {
        seek_entries(self.db.range(key..), key, nexts)
    }

    fn scan(&self, reverse: bool, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Res<()> {
        visit_entries(self.db.iter(), reverse, visit)
    }

    fn compact_all(&self) -> Res<bool> {
        self.db.compact_range::<&[u8], _>(..)?;
        Ok(true)
    }

    fn settle(&self) -> Res<()> {
        self.db.flush()?;
        self.db.wait_for_compaction()?;
        // Then the level-0 compaction Strata runs once the database has gone a while
        // without a write (`DbBuilder::idle_compaction`, 1 s here): work the write
        // workload left behind, so its bytes and time count toward that workload's
        // write amplification and settled time, not toward the reads that follow.
        let idle_from = self.db.stats().idle_compactions;
        for _ in 0..300 {
            let s = self.db.stats();
            if s.levels[0].files < 2 || s.idle_compactions > idle_from {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.db.wait_for_compaction()?;
        Ok(())
    }

    fn shape(&self) -> Option<String> {
        let s = self.db.stats();
        let mut out = String::new();
        for (level, l) in s.levels.iter().enumerate().filter(|(_, l)| l.files > 0) {
            out.push_str(&format!(
                "    L{level}: {:>3} files {:>9.1} MiB {:>10} entries {:>9} tombstones\n",
                l.files,
                l.bytes as f64 / (1 << 20) as f64,
                l.entries,
                l.tombstones
            ));
        }
        out.push_str(&format!(
            "    flushes {}, compactions {}, idle compactions {}, trivial moves {}, engine-counted write amp {}, \
             stall {:.1?}, block cache hits/misses {}/{}, bloom useful {} of {} checks, \
             {} false positives",
            s.flushes,
            s.compactions,
            s.idle_compactions,
            s.trivial_moves,
            // Counted since this open: a read workload writes no user bytes, while the
            // compactions a previous workload left may still write.
            if s.user_bytes_written == 0 {
                "n/a (no writes since open)".to_string()
            } else {
                format!("{:.2}", s.write_amplification())
            },
            s.stall_time,
            s.block_cache_hits,
            s.block_cache_misses,
            s.bloom_useful,
            s.bloom_checks,
            s.bloom_false_positives
        ));
        if s.wal_syncs > 0 {
            out.push_str(&format!(
                "\n    synced writes {} in {} WAL syncs ({:.2} per sync)",
                s.synced_writes,
                s.wal_syncs,
                s.synced_writes as f64 / s.wal_syncs as f64
            ));
        }
        Some(out)
    }

    fn get_value(&self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn has_merge(&self) -> bool {
        self.merge
    }

    fn merge_add(&self, key: &[u8], delta: u64) -> Res<()> {
        if !self.merge {
            // Operands written without the operator would only fail at the read.
            return Err("Strata was opened without the merge operator".into());
        }
        Ok(self.db.merge(key, delta.to_le_bytes())?)
    }

    fn has_transactions(&self) -> bool {
        true
    }

    fn txn_add(&self, key: &[u8], delta: u64) -> Res<Attempt> {
        let mut tx = self.db.transaction();
        let now = counter_value(tx.get_for_update(key)?.as_deref())?;
        tx.put(key, now.wrapping_add(delta).to_le_bytes());
        match tx.commit() {
            Ok(()) => Ok(Attempt::Committed),
            Err(e) if e.kind() == strata::ErrorKind::Conflict => Ok(Attempt::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    fn close(self: Box<Self>) -> Res<()> {
        Ok(self.db.close()?)
    }
}
