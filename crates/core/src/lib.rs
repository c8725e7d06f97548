//! Shared vocabulary of the Strata storage engine.
//!
//! Every other crate speaks in these terms:
//! - [`key`]: sequence numbers, value kinds and the *internal key* (user key + sequence +
//!   kind) with its order — user key ascending, then sequence descending;
//! - [`error`]: the one crate-wide [`Error`] and [`Result`];
//! - [`iter`]: the [`SortedIter`] trait that MemTables, tables, level and merging
//!   iterators all implement;
//! - [`fs`]: the [`FileSystem`] seam through which all I/O goes, with a real
//!   ([`StdFs`]) and an in-memory ([`MemFs`]) implementation;
//! - [`lookup`]: [`Lookup`], the Found / Deleted / Absent answer of a point lookup;
//! - [`range_del`]: range tombstones and their fragmented, searchable form;
//! - [`varint`]: LEB128 and fixed-width little-endian helpers shared by the formats.
//!
//! This crate knows nothing about WALs, tables or levels.

#![deny(clippy::indexing_slicing)]

pub mod error;
pub mod expiry;
pub mod fs;
pub mod iter;
pub mod key;
pub mod lookup;
pub mod merge;
pub mod range_del;
pub mod varint;

pub use error::{Error, ErrorKind, Result};
pub use expiry::{Clock, CompactionFilter, FilterDecision, ManualClock, SystemClock};
pub use fs::{
    FileLock, FileSystem, MemFs, RandomAccessFile, StdFs, WritableFile, atomic_replace,
    is_link_unavailable,
};
pub use iter::{SortedIter, VecIter};
pub use key::{
    InternalKey, MAX_SEQUENCE, ParsedInternalKey, SequenceNumber, ValueKind, compare_internal_keys,
};
pub use lookup::Lookup;
pub use merge::{MergeOperator, fold_operands};
pub use range_del::{FragmentedTombstones, RangeTombstone};
