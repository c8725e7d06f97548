//! Database options, with documented defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_core::{FileSystem, MemFs, StdFs};

/// How a database is opened and tuned. Built with [`crate::Db::builder`]; every field has a
/// default chosen for a single-process embedded store on an SSD, and the reason is given.
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) path: PathBuf,
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) create_if_missing: bool,
    pub(crate) memtable_bytes: usize,
    pub(crate) max_frozen_memtables: usize,
    pub(crate) table_file_bytes: u64,
    pub(crate) block_bytes: usize,
    pub(crate) bloom_bits_per_key: u32,
    pub(crate) block_cache_bytes: usize,
    pub(crate) l0_compaction_trigger: usize,
    pub(crate) range_delete_compactions: bool,
    pub(crate) l0_slowdown_trigger: usize,
    pub(crate) l0_stop_trigger: usize,
    pub(crate) level_base_bytes: u64,
    pub(crate) level_fanout: u64,
    pub(crate) compaction_threads: usize,
    /// Threads one compaction may split into (`DbBuilder::max_subcompactions`).
    pub(crate) max_subcompactions: usize,
    pub(crate) max_key_bytes: usize,
    pub(crate) max_value_bytes: usize,
    pub(crate) manifest_roll_bytes: u64,
    pub(crate) max_open_files: usize,
    /// Whether table reads go through a memory map (`DbBuilder::mmap_reads`).
    pub(crate) mmap_reads: bool,
    pub(crate) read_only: bool,
    pub(crate) wal_recovery: WalRecovery,
    /// Per level (L0, L1, ...); the last entry also covers every deeper level.
    pub(crate) compression: Vec<Compression>,
    /// Bloom bits per key per level, like `compression`; empty: `bloom_bits_per_key`.
    pub(crate) bloom_bits_per_level: Vec<u32>,
    /// Monkey sizing under this average bits-per-key budget (overrides the two above).
    pub(crate) bloom_filter_budget: Option<f64>,
    /// Folds merge operands (`None`: reading one is an error).
    pub(crate) merge_operator: Option<crate::hooks::MergeOperatorHandle>,
    /// Asked about every value compaction writes that only the latest state reads.
    pub(crate) compaction_filter: Option<crate::hooks::FilterHandle>,
    /// Time to live of every put (`None`: values live until deleted).
    pub(crate) ttl: Option<std::time::Duration>,
    /// Tables older than this are compacted when nothing else is due.
    pub(crate) periodic_compaction: Option<std::time::Duration>,
    /// After this long without a write, level 0 is compacted down (`None`: never).
    pub(crate) idle_compaction: Option<std::time::Duration>,
    /// The time expiring values are judged by.
    pub(crate) clock: crate::hooks::ClockHandle,
    /// Options of keyspaces by name, given at open.
    pub(crate) keyspace_options: std::collections::BTreeMap<String, crate::KeyspaceOptions>,
}

impl Options {
    /// The compression of tables written to `level`.
    pub(crate) fn compression_for(&self, level: usize) -> Compression {
        per_level(&self.compression, level).unwrap_or(Compression::None)
    }

    /// The Bloom bits per key of tables written to `level`, when the tree's levels hold
    /// `levels[i]` (each file's entries) and the new table joins with `run_entries`.
    pub(crate) fn bloom_bits_for(
        &self,
        level: usize,
        levels: &[Vec<u64>],
        run_entries: u64,
    ) -> u32 {
        let Some(budget) = self.bloom_filter_budget else {
            return per_level(&self.bloom_bits_per_level, level).unwrap_or(match level {
                0 if self.bloom_bits_per_key > 0 => {
                    self.bloom_bits_per_key.saturating_add(L0_EXTRA_BLOOM_BITS)
                }
                _ => self.bloom_bits_per_key,
            });
        };
        let mut runs = crate::filter_budget::runs(levels);
        let l0_files = levels.first().map_or(0, Vec::len);
        match level {
            // A new L0 file is a run of its own.
            0 => runs.push(run_entries),
            // A compaction's output joins its level's run.
            l => {
                if let Some(r) = runs.get_mut(l0_files + l - 1) {
                    *r = (*r).max(run_entries);
                }
            }
        }
        let own = match level {
            0 => run_entries,
            l => runs.get(l0_files + l - 1).copied().unwrap_or(run_entries),
        };
        crate::filter_budget::bits_per_key(&runs, own, budget)
    }
}

/// The entry for `level`: its own, or the last one given for deeper levels.
/// Bits per key L0 tables get on top of [`DbBuilder::bloom_bits_per_key`] unless bits are
/// given per level. Every lookup asks every L0 table whose range holds its key, and
/// after a burst of writes those are several tables spanning the whole key space: 6
/// more bits cut their false positives about elevenfold (blocked filter: 0.96 % at 10
/// bits, 0.086 % at 16) for 6 bits per key of the few keys L0 holds.
const L0_EXTRA_BLOOM_BITS: u32 = 6;

fn per_level<T: Copy>(values: &[T], level: usize) -> Option<T> {
    values.get(level).or(values.last()).copied()
}

/// How table blocks are compressed ([`DbBuilder::compression`]). Each block is stored
/// compressed only if that saves at least an eighth of it; the WAL is never compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// Stored as is: no CPU on reads or compactions.
    #[default]
    None,
    /// LZ4 (pure Rust, `lz4_flex`): fast to decompress, a moderate ratio.
    Lz4,
    /// zstd level 3 (the reference C library): about a third smaller than LZ4 for a few
    /// times its CPU. Needs the `zstd` feature (opening fails with `NotSupported`
    /// without it); tables that use it are table format version 2, which builds before
    /// it refuse rather than misread.
    Zstd,
}

impl Compression {
    pub(crate) fn to_table(self) -> strata_sstable::Compression {
        match self {
            Compression::None => strata_sstable::Compression::None,
            Compression::Lz4 => strata_sstable::Compression::Lz4,
            Compression::Zstd => strata_sstable::Compression::Zstd,
        }
    }
}

/// What opening a database does with damage in its write-ahead logs
/// ([`DbBuilder::wal_recovery`]). Damage a crash can leave (the last append cut short,
/// unwritten space) is told from damage a crash cannot leave (anything the writer
/// finished after it) as `docs/format/wal.md` describes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalRecovery {
    /// A torn tail (what a crash leaves) ends the log, and the writes before it are
    /// recovered; any other damage refuses to open with [`crate::Error::Corruption`].
    /// Every acknowledged write survives a process crash, and every synced write a
    /// power loss.
    #[default]
    TolerateTornTail,
    /// Any damage refuses to open, a torn tail included: for logs known to have been
    /// closed cleanly (the database was closed, or every write was synced and the
    /// machine did not lose power mid-append). Zeros the engine preallocated after the
    /// last record are not damage.
    Absolute,
    /// Recovery stops at the first damage of any kind and opens with every write
    /// before it, dropping the rest (later WALs included): the database as of a point
    /// in time, even when synced writes after the damage are lost. For getting a
    /// damaged database open at all; the writes dropped are counted in the open's
    /// `tracing` warning.
    PointInTime,
}

/// The options a database is opened with, and the call that opens it; see
/// [`crate::Db::builder`].
///
/// Defaults, and why:
///
/// | option | default | why |
/// |---|---|---|
/// | `memtable_bytes` | 64 MiB | a flush writes a table worth a compaction's time, while replaying its WAL after a crash stays well under a second |
/// | `max_frozen_memtables` | 2 | one flush runs while another MemTable waits, absorbing bursts; more only raises memory use and replay time |
/// | `table_file_bytes` | 64 MiB | few files (and descriptors) for GiB-sized databases, while one compaction output stays a sub-second unit of work |
/// | `block_bytes` | 4 KiB | one page-cache page per point read |
/// | `bloom_bits_per_key` | 10 (L0: 16) | about 1 % false positives: the usual balance of filter memory against wasted block reads; L0 tables, which every lookup asks and which hold few keys, get 6 more bits (0.09 %) |
/// | `block_cache_bytes` | 32 MiB | modest for an embedded library; raise it for read-heavy use of compressed tables, or with `mmap_reads` off (mapped tables stored raw do not use it) |
/// | `max_open_files` | 1000 | LevelDB's: bounds descriptors and the memory of indexes and filters |
/// | `mmap_reads` | on (64-bit Linux and macOS) | a block read copies from the page cache without a system call: 30–40 % faster point reads when tables are in the page cache, and raw blocks read this way beat a block-cache hit, so they skip the cache; a table shortened under the mapping is still reported as corruption |
/// | `l0_compaction_trigger` | 8 (slowdown 16, stop 24) | each L0 compaction carries twice RocksDB's 4 tables into the base level for one rewrite of it: at 10M keys 2.47 bytes written per byte against 3.97 with 4 and a 256 MiB base (`docs/benchmarks.md`); lookups that would ask up to 8 L0 tables get them merged once writes pause (`idle_compaction`) |
/// | `idle_compaction` | after 1 s without a write | a database that stops writing gets one sorted level to read instead of several level-0 tables, at the cost of at most one early level-0 compaction per quiet period |
/// | `range_delete_compactions` | on | tables whose range tombstones cover much of the data below them are compacted when nothing else is due, so the deleted keys stop costing space and reads (`docs/range-deletes.md`); off leaves them to the usual size rules |
/// | `level_base_bytes` | 512 MiB | twice RocksDB's: with 8 L0 tables of 64 MiB per L0 compaction, the base level holds what a few of them bring before it is pushed down (measured together with the trigger at 3M, 10M and 30M keys) |
/// | `level_fanout` | 10 | the classic leveled ratio: ~1.1 space amplification, write amplification ~ fanout per level |
/// | `compaction_threads` | 1 | leaves a core for the application on small machines |
/// | `max_subcompactions` | 1 | RocksDB's default: a compaction takes one core unless the application gives it more |
/// | `max_key_bytes` / `max_value_bytes` | 64 KiB / 64 MiB | larger writes are almost always a bug, and every value sits in memory once in the MemTable |
/// | `manifest_roll_bytes` | 4 MiB | tens of thousands of edits: replay stays fast and rewriting a snapshot stays rare |
/// | `compression` (per level) | none everywhere | reads and compactions pay no CPU for it; LZ4 or zstd trade CPU for space where the data is compressible (see `docs/benchmarks.md` for the measured cost) |
/// | `bloom_bits_per_key_per_level` | `bloom_bits_per_key`, 6 more on L0 | misses ask every L0 table; deeper levels get one rule until a workload shows its misses are worth more bits on the shallow levels |
/// | `wal_recovery` | [`WalRecovery::TolerateTornTail`] | recovers every acknowledged write a crash can leave behind, and refuses (rather than silently drops) anything damage took |
#[derive(Clone, Debug)]
pub struct DbBuilder {
    pub(crate) opts: Options,
}

impl DbBuilder {
    pub(crate) fn new(path: &Path) -> Self {
        // Why each default: the table on `DbBuilder`.
        DbBuilder {
            opts: Options {
                path: path.to_path_buf(),
                fs: Arc::new(StdFs),
                create_if_missing: true,
                memtable_bytes: 64 << 20,
                max_frozen_memtables: 2,
                table_file_bytes: 64 << 20,
                block_bytes: 4 << 10,
                bloom_bits_per_key: 10,
                block_cache_bytes: 32 << 20,
                l0_compaction_trigger: 8,
                range_delete_compactions: true,
                l0_slowdown_trigger: 16,
                l0_stop_trigger: 24,
                level_base_bytes: 512 << 20,
                level_fanout: 10,
                compaction_threads: 1,
                max_subcompactions: 1,
                max_key_bytes: 64 << 10,
                max_value_bytes: 64 << 20,
                manifest_roll_bytes: 4 << 20,
                max_open_files: 1000,
                mmap_reads: true,
                read_only: false,
                wal_recovery: WalRecovery::TolerateTornTail,
                compression: vec![Compression::None],
                bloom_bits_per_level: Vec::new(),
                bloom_filter_budget: None,
                merge_operator: None,
                compaction_filter: None,
                ttl: None,
                periodic_compaction: None,
                idle_compaction: Some(std::time::Duration::from_secs(1)),
                clock: crate::hooks::ClockHandle(Arc::new(strata_core::SystemClock)),
                keyspace_options: Default::default(),
            },
        }
    }

    /// A builder for a database held in memory, on a fresh [`MemFs`] of its own: for
    /// tests, with no directory to create or clean up. Each call gets a new, empty file
    /// system, so two in-memory databases never see each other's data or locks. The data
    /// lives as long as the database (and any clone of it); to close and reopen the same
    /// data, pass a [`MemFs`] of your own to [`file_system`](Self::file_system) instead.
    ///
    /// Every other option keeps its default and can be changed as usual.
    ///
    /// ```
    /// use strata::DbBuilder;
    ///
    /// let db = DbBuilder::in_memory().memtable_bytes(1 << 20).open()?;
    /// db.put("user:1", "ada")?;
    /// assert_eq!(db.get("user:1")?.as_deref(), Some(&b"ada"[..]));
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn in_memory() -> Self {
        // The path only names the database inside its own file system; nothing on disk
        // is touched, so any fixed name will do.
        DbBuilder::new(Path::new("/strata")).file_system(Arc::new(MemFs::new()))
    }

    /// Runs all I/O through `fs` instead of the operating system's file system
    /// (tests, fault injection).
    ///
    /// A [`MemFs`] keeps its files while any clone of it lives, so a test can close a
    /// database and open it again, as a process would after a restart:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use strata::{Db, MemFs};
    ///
    /// let fs = MemFs::new();
    /// let db = Db::builder("/db").file_system(Arc::new(fs.clone())).open()?;
    /// db.put("k", "v")?;
    /// db.close()?;
    ///
    /// let db = Db::builder("/db").file_system(Arc::new(fs)).open()?;
    /// assert_eq!(db.get("k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn file_system(mut self, fs: Arc<dyn FileSystem>) -> Self {
        self.opts.fs = fs;
        self
    }

    /// Opens the database read-only: without taking its lock, so another process (or
    /// handle) may hold it open for writing, and without writing a byte (no WAL, no
    /// manifest, no flush or compaction, nothing created or deleted). The handle reads
    /// one consistent state of the database, the newest its files held at open
    /// (unflushed WAL records included); [`crate::Db::refresh`] catches up with the
    /// writer. Writes, `flush`, `compact_range`, `sync_wal` and `wait_for_compaction`
    /// return [`crate::Error::NotSupported`].
    ///
    /// Every table of the state loaded is held open until the next `refresh` (one file
    /// descriptor each, whatever `max_open_files` says), so tables the writer deletes
    /// meanwhile stay readable where open files outlive their names (Linux, macOS).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let writer = strata::Db::open(dir.path())?;
    /// writer.put("k", "v1")?;
    /// let reader = strata::Db::builder(dir.path()).read_only().open()?;
    /// assert_eq!(reader.get("k")?.as_deref(), Some(&b"v1"[..]));
    /// writer.put("k", "v2")?;
    /// assert_eq!(reader.get("k")?.as_deref(), Some(&b"v1"[..])); // until refreshed
    /// reader.refresh()?;
    /// assert_eq!(reader.get("k")?.as_deref(), Some(&b"v2"[..]));
    /// assert!(reader.put("k", "v3").is_err());
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn read_only(mut self) -> Self {
        self.opts.read_only = true;
        self
    }

    /// Compresses the blocks of every table with `compression` (default
    /// [`Compression::None`]); [`compression_per_level`](Self::compression_per_level)
    /// chooses per level. Applies to tables written from now on; existing tables are
    /// read as they were written and rewritten as compaction reaches them.
    ///
    /// ```
    /// use strata::{Compression, DbBuilder};
    ///
    /// let db = DbBuilder::in_memory().compression(Compression::Lz4).open()?;
    /// db.put("k", "v".repeat(1000))?;
    /// db.flush()?;
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn compression(mut self, compression: Compression) -> Self {
        self.opts.compression = vec![compression];
        self
    }

    /// The compression of tables written to each level: `levels[0]` for L0, `levels[1]`
    /// for L1, and so on; the last entry also covers every deeper level. A common
    /// choice is none for the small, often rewritten upper levels and a codec below,
    /// where most data lives: `&[None, None, Lz4]`.
    ///
    /// ```
    /// use strata::{Compression::{Lz4, None, Zstd}, DbBuilder};
    ///
    /// # #[cfg(feature = "zstd")]
    /// let db = DbBuilder::in_memory().compression_per_level(&[None, None, Lz4, Lz4, Zstd]).open()?;
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn compression_per_level(mut self, levels: &[Compression]) -> Self {
        self.opts.compression = if levels.is_empty() {
            vec![Compression::None]
        } else {
            levels.to_vec()
        };
        self
    }

    /// Bloom filter bits per key for each level, like
    /// [`compression_per_level`](Self::compression_per_level): `bits[0]` for L0, the
    /// last entry for every deeper level (default: [`bloom_bits_per_key`](Self::bloom_bits_per_key)
    /// everywhere, and 6 more bits on L0). Shallow levels are few keys but are asked on every lookup: more
    /// bits there cost little memory and save block reads; the deepest level holds
    /// most keys, and a lookup that reaches it for a key that exists reads a block anyway.
    pub fn bloom_bits_per_key_per_level(mut self, bits: &[u32]) -> Self {
        self.opts.bloom_bits_per_level = bits.to_vec();
        self
    }

    /// Sizes every table's Bloom filter from the live shape of the tree instead of a
    /// fixed rate (Monkey, SIGMOD 2017): `bits_per_key` on average over all keys, shared
    /// out for the fewest wasted block reads per lookup of an absent key. Each L0 file
    /// and each shallow level (few keys, asked on every lookup) gets more bits per key,
    /// the large bottom level fewer — about 4.8 fewer per tenfold size. Overrides
    /// [`bloom_bits_per_key`](Self::bloom_bits_per_key) and its per-level form. A
    /// table's filter is sized when the table is written, from the tree as it is then.
    ///
    /// ```
    /// let db = strata::DbBuilder::in_memory().bloom_filter_budget(10.0).open()?;
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn bloom_filter_budget(mut self, bits_per_key: f64) -> Self {
        self.opts.bloom_filter_budget = Some(bits_per_key.clamp(0.0, 64.0));
        self
    }

    /// What opening does with damage in the write-ahead logs (default
    /// [`WalRecovery::TolerateTornTail`]).
    ///
    /// ```
    /// use strata::{Db, WalRecovery};
    /// # let dir = tempfile::tempdir()?;
    /// // After a report of damage: open with every write before it.
    /// let db = Db::builder(dir.path()).wal_recovery(WalRecovery::PointInTime).open()?;
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn wal_recovery(mut self, mode: WalRecovery) -> Self {
        self.opts.wal_recovery = mode;
        self
    }

    /// Whether to create the database if the directory holds none (default `true`).
    pub fn create_if_missing(mut self, yes: bool) -> Self {
        self.opts.create_if_missing = yes;
        self
    }

    /// MemTable size that triggers a freeze and flush (default 64 MiB).
    pub fn memtable_bytes(mut self, bytes: usize) -> Self {
        self.opts.memtable_bytes = bytes.max(1);
        self
    }

    /// Frozen MemTables allowed before writes wait for flushes (default 2). With that
    /// many waiting and the active MemTable half full, each write group is delayed by
    /// 1 ms (a slowdown, counted in [`DbStats::slowdowns`](crate::DbStats::slowdowns)) so the oldest
    /// flush can finish before the active MemTable fills and writes would stop.
    pub fn max_frozen_memtables(mut self, n: usize) -> Self {
        self.opts.max_frozen_memtables = n.max(1);
        self
    }

    /// Target size of a table file written by compaction (default 64 MiB).
    pub fn table_file_bytes(mut self, bytes: u64) -> Self {
        self.opts.table_file_bytes = bytes.max(1);
        self
    }

    /// Target size of a data block (default 4 KiB).
    pub fn block_bytes(mut self, bytes: usize) -> Self {
        self.opts.block_bytes = bytes.max(64);
        self
    }

    /// Bloom filter bits per key (default 10, about 1% false positives; 0 disables).
    /// L0 tables get 6 more unless
    /// [`bloom_bits_per_key_per_level`](Self::bloom_bits_per_key_per_level) says otherwise:
    /// every lookup asks each of them.
    pub fn bloom_bits_per_key(mut self, bits: u32) -> Self {
        self.opts.bloom_bits_per_key = bits;
        self
    }

    /// Capacity of the shared block cache in bytes (default 32 MiB). It holds the data
    /// blocks of tables read with `pread` and the decompressed blocks of compressed
    /// tables; a mapped table stored raw ([`mmap_reads`](Self::mmap_reads)) reads its
    /// blocks from the page cache instead.
    pub fn block_cache_bytes(mut self, bytes: usize) -> Self {
        self.opts.block_cache_bytes = bytes;
        self
    }

    /// The merge operator of the default keyspace (default none): it folds the operands
    /// written by [`Db::merge`](crate::Db::merge) and [`WriteBatch::merge`] into values,
    /// on reads and in compaction. Other keyspaces take theirs from
    /// [`KeyspaceOptions::merge_operator`](crate::KeyspaceOptions::merge_operator).
    ///
    /// The operator is not stored in the database: give the same one at every open.
    /// Without one, merges are still written, but reading a key whose newest entry is
    /// an operand fails with [`Error::Merge`](crate::Error::Merge), and compaction
    /// keeps operands as they are. See `docs/merge.md` for the laws an operator keeps.
    ///
    /// [`WriteBatch::merge`]: crate::WriteBatch::merge
    pub fn merge_operator(mut self, operator: impl crate::MergeOperator) -> Self {
        self.opts.merge_operator = Some(crate::hooks::MergeOperatorHandle(Arc::new(operator)));
        self
    }

    /// The default keyspace's compaction filter (default none): asked, during
    /// compaction, about every value no snapshot can read, it keeps, removes (a
    /// tombstone takes its place) or changes each one. Other keyspaces take theirs from
    /// [`KeyspaceOptions::compaction_filter`](crate::KeyspaceOptions::compaction_filter).
    /// Not stored in the database: give it at every open. See `docs/ttl.md`.
    pub fn compaction_filter(mut self, filter: impl crate::CompactionFilter) -> Self {
        self.opts.compaction_filter = Some(crate::hooks::FilterHandle(Arc::new(filter)));
        self
    }

    /// A time to live for every put of the default keyspace (default none): each value
    /// written while it is set expires `ttl` after its write — reads stop returning it
    /// at once, compaction reclaims its space. Keyspaces take theirs from
    /// [`KeyspaceOptions::ttl`](crate::KeyspaceOptions::ttl); a single write can set
    /// its own ([`WriteBatch::put_with_ttl`](crate::WriteBatch::put_with_ttl)). Values
    /// written before it was set keep living; not stored in the database.
    pub fn ttl(mut self, ttl: std::time::Duration) -> Self {
        self.opts.ttl = Some(ttl);
        self
    }

    /// Compacts tables written longer ago than `age` when nothing else is due (default
    /// off), so a database that no longer writes still gets its expired values,
    /// filtered values and overwritten versions out of its files: each such table is
    /// compacted into the next level, and at the last level rewritten in place (which
    /// makes it new). Tables' ages come from the creation time each records (tables of
    /// builds before it count as old: each is compacted once). Checked at every idle
    /// pass of the compaction threads and, with this on, at least every quarter of
    /// `age` (between 1 s and 10 min). RocksDB's `periodic_compaction_seconds`.
    pub fn periodic_compaction(mut self, age: std::time::Duration) -> Self {
        self.opts.periodic_compaction = Some(age);
        self
    }

    /// How long the database must go without a write (to any keyspace) before a
    /// keyspace's level-0 tables, when there are two or more, are compacted down
    /// (default 1 s; `None`: only when `l0_compaction_trigger` is reached). Every point lookup asks each level-0 table's
    /// filter and every iterator positions each of them, while one sorted level below
    /// costs one table per lookup; a database that stops writing — a bulk load followed
    /// by reads, a burst between quiet periods — gets that shape back without waiting for
    /// more writes to fill level 0 up. Costs at most one extra level-0 compaction per
    /// quiet period; a database that never pauses never runs one.
    /// [`Db::wait_for_compaction`](crate::Db::wait_for_compaction) does not wait for it.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let db = strata::DbBuilder::in_memory()
    ///     .idle_compaction(Some(Duration::from_millis(200)))
    ///     .open()?;
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn idle_compaction(mut self, after: Option<std::time::Duration>) -> Self {
        self.opts.idle_compaction = after;
        self
    }

    /// The clock values expire by (default the system's wall clock, in ms since the
    /// UNIX epoch). A clock that goes backwards brings expired values back until
    /// compaction removes them; [`ManualClock`](crate::ManualClock) is for tests.
    pub fn clock(mut self, clock: impl crate::Clock) -> Self {
        self.opts.clock = crate::hooks::ClockHandle(Arc::new(clock));
        self
    }

    /// Whether tables whose range tombstones cover much of the data below them are
    /// compacted when nothing else is due (default on): a level-0 table over other
    /// tables' keys, or a deeper one covering at least a quarter of the bytes it
    /// overlaps below. Off, they wait for the usual size rules (the deleted keys then
    /// keep their space, and reads step over them, until then). Tables a tombstone
    /// covers entirely are deleted either way.
    pub fn range_delete_compactions(mut self, on: bool) -> Self {
        self.opts.range_delete_compactions = on;
        self
    }

    /// L0 file count that triggers a compaction (default 8); writes slow down at twice
    /// and stop at three times this count.
    pub fn l0_compaction_trigger(mut self, files: usize) -> Self {
        let files = files.max(1);
        self.opts.l0_compaction_trigger = files;
        self.opts.l0_slowdown_trigger = files * 2;
        self.opts.l0_stop_trigger = files * 3;
        self
    }

    /// Target size of L1 (default 512 MiB); deeper levels grow by the fanout.
    pub fn level_base_bytes(mut self, bytes: u64) -> Self {
        self.opts.level_base_bytes = bytes.max(1);
        self
    }

    /// Size ratio between adjacent levels (default 10).
    pub fn level_fanout(mut self, fanout: u64) -> Self {
        self.opts.level_fanout = fanout.max(2);
        self
    }

    /// Background compaction threads (default 1).
    pub fn compaction_threads(mut self, n: usize) -> Self {
        self.opts.compaction_threads = n.max(1);
        self
    }

    /// Threads one compaction may split into (default 1): a compaction that rewrites
    /// more than one input file is cut at input-file boundaries into up to `n` key
    /// ranges, merged at once on threads of their own, and installed as one change
    /// (RocksDB's subcompactions). Each thread reads and writes its own share, so a
    /// large L0 compaction, the one that holds writers back, finishes up to `n` times
    /// sooner on `n` free cores; the bytes written are the same.
    ///
    /// ```
    /// let db = strata::DbBuilder::in_memory().max_subcompactions(4).open()?;
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn max_subcompactions(mut self, n: usize) -> Self {
        self.opts.max_subcompactions = n.max(1);
        self
    }

    /// Largest key accepted (default 64 KiB).
    pub fn max_key_bytes(mut self, bytes: usize) -> Self {
        self.opts.max_key_bytes = bytes;
        self
    }

    /// Manifest size at which it is rewritten as a snapshot (default 4 MiB).
    pub fn manifest_roll_bytes(mut self, bytes: u64) -> Self {
        self.opts.manifest_roll_bytes = bytes;
        self
    }

    /// Table readers kept open (default 1000, LevelDB's): each holds a descriptor and
    /// its index and filter in memory.
    pub fn max_open_files(mut self, n: usize) -> Self {
        self.opts.max_open_files = n.max(1);
        self
    }

    /// Whether table blocks are read through a memory map (default `true`) or with
    /// positional reads (`pread`). Either way a block is copied into memory of Strata's
    /// own and checksummed before use, so the answers are the same; a mapped read skips
    /// the system call and the kernel's page-cache lookup (30–40 % faster point reads on a
    /// database whose tables are in the page cache, `docs/benchmarks.md`).
    ///
    /// A mapped table stored raw (no compression) does not use the block cache: copying a
    /// block out of the page cache and checking it measured faster than a block-cache
    /// hit (whose block sits cold in memory of its own), so a second copy would cost
    /// memory and time. The page cache is then its cache, and its hits and misses count
    /// as `block_cache_misses` in [`Db::stats`](crate::Db::stats). Compressed tables keep
    /// their decompressed blocks in the block cache.
    ///
    /// A table file shortened by someone else while mapped is reported as
    /// [`Error::Corruption`](crate::Error::Corruption), never a crash: Strata installs a
    /// `SIGBUS` handler for it (`docs/durability.md`, "Memory-mapped reads").
    ///
    /// Mapped only on 64-bit Linux and macOS, through the real file system; elsewhere (and
    /// on Windows, where a mapped file cannot be deleted until unmapped) this is `pread`.
    /// Mapped pages a process has touched count in its resident set size (they are the
    /// page cache's, shared and reclaimable), so RSS reads higher than with `pread`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let db = strata::Db::builder(dir.path()).mmap_reads(false).open()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mmap_reads(mut self, yes: bool) -> Self {
        self.opts.mmap_reads = yes;
        self
    }

    /// Largest value accepted (default 64 MiB).
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.opts.max_value_bytes = bytes;
        self
    }

    /// The options of keyspace `name` from this open on (see [`crate::KeyspaceOptions`]):
    /// its flushes and compactions follow them from the first, where
    /// [`Db::keyspace_with`](crate::Db::keyspace_with) applies them only from its call.
    /// A name that is not a keyspace of the database is made with them when first
    /// asked for.
    ///
    /// ```
    /// use strata::{Compression, KeyspaceOptions};
    ///
    /// let db = strata::DbBuilder::in_memory()
    ///     .keyspace_options("index", KeyspaceOptions::new().compression(Compression::Lz4))
    ///     .open()?;
    /// db.keyspace("index")?.put("k", "v")?;
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn keyspace_options(mut self, name: &str, options: crate::KeyspaceOptions) -> Self {
        self.opts.keyspace_options.insert(name.to_owned(), options);
        self
    }
}

impl Options {
    /// The options of keyspace `name`: the database's, with those given for it applied.
    pub(crate) fn for_keyspace(&self, name: &str) -> Options {
        match self.keyspace_options.get(name) {
            Some(k) => k.apply(self),
            None => self.clone(),
        }
    }
}
