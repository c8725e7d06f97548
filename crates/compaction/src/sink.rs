//! Where a compaction writes its output tables: the seam the engine fills with the
//! SSTable builder.

use strata_core::{FragmentedTombstones, Result};

/// What a finished table reports about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSummary {
    /// The file number the table was written under.
    pub file_number: u64,
    /// Size of the finished file on disk.
    pub size_bytes: u64,
    /// Entries the table holds, as counted by the writer. The job checks it against the
    /// entries it added (durability rule 17).
    pub entries: u64,
}

/// Creates output tables, one per call. Implemented by the engine over the SSTable
/// builder and its file-number allocator; [`crate::mem::TableStore`] implements it in
/// memory for tests and benchmarks.
///
/// If the job fails, tables it already finished are not referenced by any edit; the
/// sink's owner (which allocated their numbers) deletes them.
pub trait TableSink {
    /// The writer of one table.
    type Writer: TableWriter;

    /// Starts a new table under a fresh file number.
    fn create(&mut self) -> Result<Self::Writer>;
}

/// Writes one table. Entries arrive in strictly increasing internal-key order.
pub trait TableWriter {
    /// Appends an entry (encoded internal key, value).
    fn add(&mut self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Stores range tombstones in the table (called at most once, before
    /// [`finish`](Self::finish); possibly with an empty list).
    fn add_range_tombstones(&mut self, tombstones: &FragmentedTombstones) -> Result<()>;

    /// The file size the table would have if finished now (the job cuts files at its
    /// target size with this).
    fn estimated_size(&self) -> u64;

    /// Completes the table: writes index, filter and footer, and makes the file durable
    /// (written and fsynced; the engine fsyncs the directory before installing the edit).
    fn finish(self) -> Result<TableSummary>;
}
