//! Strata's append-only record log: the write-ahead log's framing, reused by the manifest.
//!
//! A [`LogWriter`] frames each record into checksummed fragments packed in 32 KiB blocks
//! and appends it with one OS call; a [`SyncPolicy`] says when it also syncs. A
//! [`LogReader`] yields the records back with their offsets and, under a
//! [`RecoveryMode`], decides what damage means: a torn tail left by a crash, corruption
//! in the middle of the log, or a point to stop at. [`LogEnd`] says how reading stopped.
//!
//! The layer knows nothing about record contents. The byte layout, checksum scope,
//! version and recovery rules are in `docs/format/wal.md`; [`format`](mod@format) restates them.
//!
//! ```
//! use std::path::Path;
//! use strata_core::{FileSystem, MemFs};
//! use strata_wal::{LogEnd, LogReader, LogWriter, RecoveryMode, SyncPolicy};
//!
//! # fn main() -> strata_core::Result<()> {
//! let fs = MemFs::new();
//! let path = Path::new("/000001.log");
//! let mut writer = LogWriter::new(fs.create(path)?, SyncPolicy::Never);
//! writer.add_record(b"first")?;
//! writer.add_record(&vec![7; 100_000])?; // spans four blocks
//! writer.sync()?;
//!
//! let mut reader = LogReader::new(fs.open(path)?, RecoveryMode::TolerateTornTail);
//! let records: Vec<_> = reader.by_ref().collect::<Result<_, _>>()?;
//! assert_eq!(&records[0].data[..], b"first");
//! assert_eq!(records[1].data.len(), 100_000);
//! assert_eq!(reader.end(), Some(&LogEnd::Clean { len: writer.len() }));
//! # Ok(())
//! # }
//! ```

#![deny(clippy::indexing_slicing)]

pub mod format;
mod reader;
mod writer;

pub use format::FormatVersion;
pub use reader::{Damage, DamageKind, LogEnd, LogReader, Record, RecoveryMode};
pub use writer::{LogWriter, SyncPolicy};
