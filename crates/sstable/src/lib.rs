//! Sorted string tables: Strata's immutable on-disk files of sorted internal keys.
//!
//! - [`TableBuilder`] streams entries (sorted by internal key) into a file and returns a
//!   [`TableSummary`] for the manifest;
//! - [`Table`] opens a file, answers [`Table::may_contain`] from its Bloom filter with no
//!   I/O, [`Table::get`] with at most one data block read, and makes [`TableIter`]s that
//!   implement [`strata_core::SortedIter`];
//! - [`BlockCache`] is the cache of decoded data blocks shared by every open table.
//!
//! The layout — data blocks with prefix-compressed keys and restart arrays, a Bloom
//! filter, a properties block, an index of shortened separator keys and a footer with
//! magic and version, every block checksummed together with its offset and a per-file
//! id — is specified in `docs/format/sstable.md` and restated in [`format`](mod@format).
//!
//! Bytes read from disk never cause a panic: damage is `Error::Corruption` naming the
//! file and offset; a newer format version is `Error::NotSupported`; a damaged filter
//! only makes lookups slower ("may contain"), never wrong.

#![deny(clippy::indexing_slicing)]

mod block;
mod builder;
mod cache;
pub mod filter;
pub mod format;
mod iter;
mod properties;
mod range_del;
mod search;
mod table;

pub use builder::{MAX_ENTRY_PART_BYTES, TableBuilder, TableOptions, TableSummary};
pub use cache::BlockCache;
pub use format::{BlockHandle, Compression, Footer, FormatVersion};
pub use iter::TableIter;
pub use properties::TableProperties;
pub use range_del::{RangeDelBlockError, decode_range_del_block};
pub use table::{
    FilterAnswer, FilterStatus, IndexEntry, KeyHash, LookupTrace, Table, VerifyReport,
};
