//! Options of one keyspace: what its tree does differently from the database's defaults.

use crate::options::{Compression, DbBuilder, Options};

/// Options of one keyspace ([`Db::keyspace_with`](crate::Db::keyspace_with),
/// [`DbBuilder::keyspace_options`]): each one left unset takes the database's
/// ([`DbBuilder`]'s method of the same name, whose documentation gives the default and
/// the reason for it). They shape the keyspace's own tree — its MemTables, tables and
/// compactions; what every keyspace shares (the WAL, the caches, the compaction
/// threads, key and value limits) stays the database's.
///
/// Options are not stored in the database: give them each time it is opened
/// ([`DbBuilder::keyspace_options`], before any flush or compaction of the keyspace),
/// or when the keyspace is first used ([`Db::keyspace_with`](crate::Db::keyspace_with),
/// from then on). Tables already written keep the layout they were written with;
/// every table says its own.
///
/// ```
/// use strata::{Compression, KeyspaceOptions};
///
/// let db = strata::DbBuilder::in_memory().open()?;
/// // A log: large sequential writes, read rarely, compressed hard below L1.
/// let log = db.keyspace_with(
///     "log",
///     KeyspaceOptions::new()
///         .memtable_bytes(8 << 20)
///         .compression_per_level(&[Compression::None, Compression::None, Compression::Lz4])
///         .bloom_bits_per_key(0),
/// )?;
/// log.put("0001", "entry")?;
/// # Ok::<(), strata::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyspaceOptions {
    settings: Vec<Setting>,
}

/// One option set, applied through the [`DbBuilder`] method of the same name (so the
/// same limits apply).
#[derive(Clone, Debug, PartialEq)]
enum Setting {
    MemtableBytes(usize),
    MaxFrozenMemtables(usize),
    TableFileBytes(u64),
    BlockBytes(usize),
    BloomBitsPerKey(u32),
    BloomBitsPerKeyPerLevel(Vec<u32>),
    BloomFilterBudget(f64),
    Compression(Vec<Compression>),
    L0CompactionTrigger(usize),
    LevelBaseBytes(u64),
    LevelFanout(u64),
    RangeDeleteCompactions(bool),
    MergeOperator(crate::hooks::MergeOperatorHandle),
    CompactionFilter(crate::hooks::FilterHandle),
    Ttl(std::time::Duration),
    PeriodicCompaction(std::time::Duration),
}

impl KeyspaceOptions {
    /// Every option the database's.
    pub fn new() -> Self {
        Self::default()
    }

    fn with(mut self, setting: Setting) -> Self {
        self.settings.push(setting);
        self
    }

    /// See [`DbBuilder::memtable_bytes`]: this keyspace's MemTables freeze at this size.
    pub fn memtable_bytes(self, bytes: usize) -> Self {
        self.with(Setting::MemtableBytes(bytes))
    }

    /// See [`DbBuilder::max_frozen_memtables`].
    pub fn max_frozen_memtables(self, n: usize) -> Self {
        self.with(Setting::MaxFrozenMemtables(n))
    }

    /// See [`DbBuilder::table_file_bytes`].
    pub fn table_file_bytes(self, bytes: u64) -> Self {
        self.with(Setting::TableFileBytes(bytes))
    }

    /// See [`DbBuilder::block_bytes`].
    pub fn block_bytes(self, bytes: usize) -> Self {
        self.with(Setting::BlockBytes(bytes))
    }

    /// See [`DbBuilder::bloom_bits_per_key`].
    pub fn bloom_bits_per_key(self, bits: u32) -> Self {
        self.with(Setting::BloomBitsPerKey(bits))
    }

    /// See [`DbBuilder::bloom_bits_per_key_per_level`].
    pub fn bloom_bits_per_key_per_level(self, bits: &[u32]) -> Self {
        self.with(Setting::BloomBitsPerKeyPerLevel(bits.to_vec()))
    }

    /// See [`DbBuilder::bloom_filter_budget`].
    pub fn bloom_filter_budget(self, bits_per_key: f64) -> Self {
        self.with(Setting::BloomFilterBudget(bits_per_key))
    }

    /// See [`DbBuilder::compression`].
    pub fn compression(self, compression: Compression) -> Self {
        self.with(Setting::Compression(vec![compression]))
    }

    /// See [`DbBuilder::compression_per_level`].
    pub fn compression_per_level(self, levels: &[Compression]) -> Self {
        self.with(Setting::Compression(levels.to_vec()))
    }

    /// See [`DbBuilder::l0_compaction_trigger`] (the write stall thresholds follow it).
    pub fn l0_compaction_trigger(self, files: usize) -> Self {
        self.with(Setting::L0CompactionTrigger(files))
    }

    /// See [`DbBuilder::level_base_bytes`].
    pub fn level_base_bytes(self, bytes: u64) -> Self {
        self.with(Setting::LevelBaseBytes(bytes))
    }

    /// See [`DbBuilder::level_fanout`].
    pub fn level_fanout(self, fanout: u64) -> Self {
        self.with(Setting::LevelFanout(fanout))
    }

    /// See [`DbBuilder::range_delete_compactions`].
    pub fn range_delete_compactions(self, on: bool) -> Self {
        self.with(Setting::RangeDeleteCompactions(on))
    }

    /// See [`DbBuilder::merge_operator`]: this keyspace's merge operator.
    pub fn merge_operator(self, operator: impl crate::MergeOperator) -> Self {
        self.with(Setting::MergeOperator(crate::hooks::MergeOperatorHandle(
            std::sync::Arc::new(operator),
        )))
    }

    /// See [`DbBuilder::compaction_filter`]: this keyspace's compaction filter.
    pub fn compaction_filter(self, filter: impl crate::CompactionFilter) -> Self {
        self.with(Setting::CompactionFilter(crate::hooks::FilterHandle(
            std::sync::Arc::new(filter),
        )))
    }

    /// See [`DbBuilder::ttl`]: every put of this keyspace expires `ttl` after its
    /// write (writes made while it is set).
    pub fn ttl(self, ttl: std::time::Duration) -> Self {
        self.with(Setting::Ttl(ttl))
    }

    /// See [`DbBuilder::periodic_compaction`]: this keyspace's tables older than `age`
    /// are compacted when nothing else is due.
    pub fn periodic_compaction(self, age: std::time::Duration) -> Self {
        self.with(Setting::PeriodicCompaction(age))
    }

    /// The database's options `base` with these applied over them, in the order they
    /// were set.
    pub(crate) fn apply(&self, base: &Options) -> Options {
        let mut b = DbBuilder { opts: base.clone() };
        for s in &self.settings {
            b = match s.clone() {
                Setting::MemtableBytes(n) => b.memtable_bytes(n),
                Setting::MaxFrozenMemtables(n) => b.max_frozen_memtables(n),
                Setting::TableFileBytes(n) => b.table_file_bytes(n),
                Setting::BlockBytes(n) => b.block_bytes(n),
                Setting::BloomBitsPerKey(n) => b.bloom_bits_per_key(n),
                Setting::BloomBitsPerKeyPerLevel(v) => b.bloom_bits_per_key_per_level(&v),
                Setting::BloomFilterBudget(x) => b.bloom_filter_budget(x),
                Setting::Compression(v) => b.compression_per_level(&v),
                Setting::L0CompactionTrigger(n) => b.l0_compaction_trigger(n),
                Setting::LevelBaseBytes(n) => b.level_base_bytes(n),
                Setting::LevelFanout(n) => b.level_fanout(n),
                Setting::RangeDeleteCompactions(on) => b.range_delete_compactions(on),
                Setting::MergeOperator(op) => {
                    b.opts.merge_operator = Some(op);
                    b
                }
                Setting::CompactionFilter(f) => {
                    b.opts.compaction_filter = Some(f);
                    b
                }
                Setting::Ttl(ttl) => b.ttl(ttl),
                Setting::PeriodicCompaction(age) => b.periodic_compaction(age),
            };
        }
        b.opts
    }

    /// Whether any option asks for zstd.
    pub(crate) fn wants_zstd(&self) -> bool {
        self.settings
            .iter()
            .any(|s| matches!(s, Setting::Compression(v) if v.contains(&Compression::Zstd)))
    }
}
