//! What the engine tells operators: `tracing` events and spans (emitted where the work
//! happens), and metrics through the `metrics` facade, so whatever subscriber and
//! recorder the application installs (logs, Prometheus, ...) picks them up.
//! `docs/observability.md` lists every event and metric.
//!
//! Metric handles are registered once, at open, against the recorder installed then
//! (install it before opening a database); every metric carries a `db` label, the
//! database's path, so several databases in one process stay apart.
//!
//! Cost on the per-operation paths: reads and writes make no recorder call per
//! operation. The counters they move (Bloom filter, block cache, bytes written, WAL
//! syncs) stay the relaxed atomics of [`Stats`] and are *mirrored* into metric counters
//! by [`Metrics::publish`]: after every flush and compaction and at least once a second
//! from the flush thread. Per-lookup recorder calls would add a second shared atomic
//! (or a map lookup, depending on the recorder) per table probed, for numbers nobody
//! reads more often than a scrape interval. Operation latencies are timed for one
//! operation in [`LATENCY_SAMPLE`] per thread: two clock reads (~40 ns) on every
//! operation would be 3 % of a put (1.4 µs) and 10 % of a lookup of a missing key
//! (0.4 µs); sampled, the histogram keeps its shape (uniform sampling) at a sixteenth
//! of the cost.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use metrics::{
    Counter, Gauge, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};
use strata_compaction::InProgress;

use crate::db::DbInner;
use crate::stats::{Stats, load};
use crate::tree::Tree;
use crate::version::NUM_LEVELS;

/// One operation in this many (per thread) has its latency recorded.
pub(crate) const LATENCY_SAMPLE: u32 = 16;

/// Why a writer waited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StallCause {
    /// L0 reached its stop trigger: writes wait for a compaction.
    L0Stop,
    /// L0 reached its slowdown trigger: each write group is delayed by 1 ms.
    L0Slowdown,
    /// Every allowed frozen MemTable is waiting for its flush.
    Memtables,
    /// Every allowed frozen MemTable is waiting for its flush and the active one is
    /// half full: each write group is delayed by 1 ms, so the flush catches up before
    /// writes would have to stop.
    MemtableSlowdown,
}

impl StallCause {
    pub const ALL: [StallCause; 4] = [
        StallCause::L0Stop,
        StallCause::L0Slowdown,
        StallCause::Memtables,
        StallCause::MemtableSlowdown,
    ];

    /// The `cause` label value.
    pub fn label(self) -> &'static str {
        match self {
            StallCause::L0Stop => "l0_stop",
            StallCause::L0Slowdown => "l0_slowdown",
            StallCause::Memtables => "memtables",
            StallCause::MemtableSlowdown => "memtable_slowdown",
        }
    }

    /// Whether the cause delays a write by a fixed 1 ms instead of waiting for
    /// background work to finish.
    pub fn is_slowdown(self) -> bool {
        matches!(self, StallCause::L0Slowdown | StallCause::MemtableSlowdown)
    }
}

/// A counter of [`Stats`] mirrored into a metric: name, description, unit, field.
type Mirrored = (&'static str, &'static str, Unit, fn(&Stats) -> &AtomicU64);

const MIRRORED: [Mirrored; 16] = [
    (
        "strata_user_written_bytes_total",
        "Key and value bytes accepted by writes.",
        Unit::Bytes,
        |s| &s.user_bytes_written,
    ),
    (
        "strata_wal_written_bytes_total",
        "Bytes appended to write-ahead logs.",
        Unit::Bytes,
        |s| &s.wal_bytes_written,
    ),
    (
        "strata_wal_syncs_total",
        "Syncs of the live WAL for synced writes (one per commit group).",
        Unit::Count,
        |s| &s.wal_syncs,
    ),
    (
        "strata_synced_writes_total",
        "Writes that asked for sync.",
        Unit::Count,
        |s| &s.synced_writes,
    ),
    (
        "strata_flushes_total",
        "MemTable flushes completed.",
        Unit::Count,
        |s| &s.flushes,
    ),
    (
        "strata_flush_written_bytes_total",
        "Bytes of tables written by flushes.",
        Unit::Bytes,
        |s| &s.flush_bytes_written,
    ),
    (
        "strata_compactions_total",
        "Compactions completed that rewrote data.",
        Unit::Count,
        |s| &s.compactions,
    ),
    (
        "strata_trivial_moves_total",
        "Compactions that moved a file down a level without rewriting it.",
        Unit::Count,
        |s| &s.trivial_moves,
    ),
    (
        "strata_idle_compactions_total",
        "Level-0 compactions run because the database went without a write for a while.",
        Unit::Count,
        |s| &s.idle_compactions,
    ),
    (
        "strata_compaction_read_bytes_total",
        "Bytes of tables read by compactions.",
        Unit::Bytes,
        |s| &s.compaction_bytes_read,
    ),
    (
        "strata_compaction_written_bytes_total",
        "Bytes of tables written by compactions.",
        Unit::Bytes,
        |s| &s.compaction_bytes_written,
    ),
    (
        "strata_bloom_checks_total",
        "Table lookups that consulted a Bloom filter.",
        Unit::Count,
        |s| &s.bloom_checks,
    ),
    (
        "strata_bloom_useful_total",
        "Bloom filter answers 'not here' that saved a block read.",
        Unit::Count,
        |s| &s.bloom_useful,
    ),
    (
        "strata_bloom_false_positives_total",
        "Bloom filter answers 'may be here' for keys the table did not hold.",
        Unit::Count,
        |s| &s.bloom_false_positives,
    ),
    (
        "strata_block_cache_hits_total",
        "Point-lookup data blocks served by the block cache.",
        Unit::Count,
        |s| &s.block_cache_hits,
    ),
    (
        "strata_block_cache_misses_total",
        "Point-lookup data blocks read from the file.",
        Unit::Count,
        |s| &s.block_cache_misses,
    ),
];

/// Metric names outside [`MIRRORED`], for `describe_*` and the tests.
pub(crate) const ERRORS: &str = "strata_errors_total";
pub(crate) const STALLS: &str = "strata_stalls_total";
pub(crate) const STALL_MICROS: &str = "strata_stall_microseconds_total";
pub(crate) const FLUSH_DURATION: &str = "strata_flush_duration_seconds";
pub(crate) const COMPACTION_DURATION: &str = "strata_compaction_duration_seconds";
pub(crate) const COMPACTIONS_RUNNING: &str = "strata_compactions_running";
pub(crate) const GET_DURATION: &str = "strata_get_duration_seconds";
pub(crate) const WRITE_DURATION: &str = "strata_write_duration_seconds";
pub(crate) const LEVEL_BYTES: &str = "strata_level_bytes";
pub(crate) const LEVEL_FILES: &str = "strata_level_files";
pub(crate) const BACKLOG: &str = "strata_compaction_backlog_bytes";
pub(crate) const MEMTABLE_BYTES: &str = "strata_memtable_bytes";
pub(crate) const OPEN_TABLES: &str = "strata_open_tables";

/// Tells the installed recorder what each metric means. Cheap and idempotent, so it
/// runs at every open (a recorder installed between two opens learns them too).
fn describe() {
    for (name, help, unit, _) in MIRRORED {
        describe_counter!(name, unit, help);
    }
    describe_counter!(
        ERRORS,
        Unit::Count,
        "Unrecoverable failures (label context: what was being done); writes are refused until reopen."
    );
    describe_counter!(
        STALLS,
        Unit::Count,
        "Times a write waited for background work (label cause: l0_stop, l0_slowdown, memtables)."
    );
    describe_counter!(
        STALL_MICROS,
        Unit::Microseconds,
        "Time writes waited for background work (label cause)."
    );
    describe_histogram!(
        FLUSH_DURATION,
        Unit::Seconds,
        "Duration of each MemTable flush."
    );
    describe_histogram!(
        COMPACTION_DURATION,
        Unit::Seconds,
        "Duration of each compaction that rewrote data."
    );
    describe_gauge!(COMPACTIONS_RUNNING, Unit::Count, "Compactions running now.");
    describe_histogram!(
        GET_DURATION,
        Unit::Seconds,
        "Latency of point lookups (one in 16 per thread is timed)."
    );
    describe_histogram!(
        WRITE_DURATION,
        Unit::Seconds,
        "Latency of writes, queueing and group commit included (one in 16 per thread is timed)."
    );
    describe_gauge!(
        LEVEL_BYTES,
        Unit::Bytes,
        "Bytes of table files per level (label level)."
    );
    describe_gauge!(
        LEVEL_FILES,
        Unit::Count,
        "Table files per level (label level)."
    );
    describe_gauge!(
        BACKLOG,
        Unit::Bytes,
        "Estimated bytes compaction is behind: bytes over each level's target, all of L0 once it reaches its trigger."
    );
    describe_gauge!(MEMTABLE_BYTES, Unit::Bytes, "Live size of the MemTables.");
    describe_gauge!(OPEN_TABLES, Unit::Count, "Table readers open.");
}

/// The metric handles of one database.
pub(crate) struct Metrics {
    /// The `db` label's value: the database's path.
    db: String,
    pub flush_duration: Histogram,
    pub compaction_duration: Histogram,
    pub compactions_running: Gauge,
    pub get_duration: Histogram,
    pub write_duration: Histogram,
    stalls: [Counter; 4],
    stall_micros: [Counter; 4],
    mirrored: [Counter; MIRRORED.len()],
    /// The [`Stats`] values last mirrored, so each publish adds only what is new (two
    /// handles on one path, one after the other, then add up like one process's total).
    published: Mutex<[u64; MIRRORED.len()]>,
    level_bytes: [Gauge; NUM_LEVELS],
    level_files: [Gauge; NUM_LEVELS],
    backlog: Gauge,
    memtable_bytes: Gauge,
    open_tables: Gauge,
}

impl Metrics {
    /// Registers the handles of the database at `db` with the installed recorder.
    pub fn new(db: String) -> Self {
        describe();
        let label = || db.clone();
        let by_cause = |name: &'static str| {
            StallCause::ALL.map(|c| counter!(name, "db" => label(), "cause" => c.label()))
        };
        let by_level = |name: &'static str| {
            std::array::from_fn(|l| gauge!(name, "db" => label(), "level" => l.to_string()))
        };
        Metrics {
            flush_duration: histogram!(FLUSH_DURATION, "db" => label()),
            compaction_duration: histogram!(COMPACTION_DURATION, "db" => label()),
            compactions_running: gauge!(COMPACTIONS_RUNNING, "db" => label()),
            get_duration: histogram!(GET_DURATION, "db" => label()),
            write_duration: histogram!(WRITE_DURATION, "db" => label()),
            stalls: by_cause(STALLS),
            stall_micros: by_cause(STALL_MICROS),
            mirrored: MIRRORED.map(|(name, ..)| counter!(name, "db" => label())),
            published: Mutex::new([0; MIRRORED.len()]),
            level_bytes: by_level(LEVEL_BYTES),
            level_files: by_level(LEVEL_FILES),
            backlog: gauge!(BACKLOG, "db" => label()),
            memtable_bytes: gauge!(MEMTABLE_BYTES, "db" => label()),
            open_tables: gauge!(OPEN_TABLES, "db" => label()),
            db,
        }
    }

    /// Counts an unrecoverable failure. Rare, so the handle is made on the spot (the
    /// context is a label).
    pub fn error(&self, context: &str) {
        counter!(ERRORS, "db" => self.db.clone(), "context" => context.to_owned()).increment(1);
    }

    /// Counts one wait of a writer.
    pub fn stall(&self, cause: StallCause, waited: std::time::Duration) {
        let i = cause as usize;
        self.stalls[i].increment(1);
        self.stall_micros[i].increment(u64::try_from(waited.as_micros()).unwrap_or(u64::MAX));
    }

    /// Brings the mirrored counters and the gauges up to date.
    pub fn publish(&self, stats: &Stats, tree: &Tree, open_tables: usize) {
        let view = tree.view();
        {
            let mut published = crate::db::lock(&self.published);
            for (i, (_, _, _, field)) in MIRRORED.iter().enumerate() {
                let now = load(field(stats));
                // Read under the lock, and the atomics only grow: never below what
                // was published.
                let delta = now.saturating_sub(published[i]);
                if delta > 0 {
                    self.mirrored[i].increment(delta);
                    published[i] = now;
                }
            }
        }
        let levels = view.version.level_metas();
        for (l, files) in levels.iter().enumerate() {
            self.level_files[l].set(files.len() as f64);
            self.level_bytes[l].set(files.iter().map(|f| f.size_bytes).sum::<u64>() as f64);
        }
        let backlog: u64 = tree
            .settings()
            .policy
            .scores(&levels, &InProgress::default())
            .iter()
            .filter(|s| s.score >= 1.0)
            .map(|s| match s.target_bytes {
                Some(target) => s.size_bytes.saturating_sub(target),
                None => s.size_bytes,
            })
            .sum();
        self.backlog.set(backlog as f64);
        self.memtable_bytes.set(view.memtable_bytes() as f64);
        self.open_tables.set(open_tables as f64);
    }
}

/// Reports an unrecoverable failure (from `DbInner::set_error`) the moment it happens:
/// a background failure would otherwise surface only at the next write.
pub(crate) fn error(inner: &DbInner, context: &str, e: &dyn std::fmt::Display) {
    tracing::error!(
        db = %inner.dir.display(),
        context,
        error = %e,
        "unrecoverable failure: writes are refused until the database is reopened"
    );
    inner.metrics.error(context);
}

thread_local! {
    /// Operations this thread started, for [`sample`].
    static OPERATIONS: Cell<u32> = const { Cell::new(0) };
}

/// The start time of this operation if it is one of the sampled ones.
#[inline]
pub(crate) fn sample() -> Option<Instant> {
    OPERATIONS.with(|n| {
        let next = n.get().wrapping_add(1);
        n.set(next);
        (next % LATENCY_SAMPLE == 0).then(Instant::now)
    })
}

#[cfg(test)]
mod tests;
