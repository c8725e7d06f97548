//! Strata: an embeddable LSM-tree key-value storage engine.
//!
//! ```
//! use strata::{Db, WriteBatch, WriteOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let db = Db::builder(dir.path()).block_cache_bytes(8 << 20).open()?;
//! db.put("user:1", "ada")?;
//! db.put("user:2", "grace")?;
//!
//! let mut batch = WriteBatch::new();
//! batch.put("user:3", "edsger").delete("user:1");
//! db.write(batch, WriteOptions { sync: true })?; // fsynced before it returns
//!
//! let snapshot = db.snapshot();
//! db.put("user:4", "barbara")?;
//! let names: Vec<_> = snapshot.prefix("user:").map(|kv| kv.map(|(_, v)| v)).collect::<Result<_, _>>()?;
//! assert_eq!(names, ["grace", "edsger"]);
//! assert_eq!(db.range("user:2".."user:4").rev().count(), 2);
//! db.close()?;
//! # Ok::<(), strata::Error>(())
//! ```
//!
//! Durability: a write returns once it is in the write-ahead log and handed to the
//! operating system (survives a process crash); with [`WriteOptions::sync`] it returns
//! once the log is fsynced (survives power loss); [`Db::sync_wal`] makes every earlier
//! write durable at once. See `docs/architecture.md`.
//!
//! Tests: [`DbBuilder::in_memory`] opens a database on a fresh in-memory file system
//! ([`MemFs`]); pass a [`MemFs`] of your own to [`DbBuilder::file_system`] to reopen
//! the same data. Values come back as [`Bytes`], re-exported here.
//!
//! Errors: one [`Error`] enum; [`Error::kind`] ([`ErrorKind`]) says what kind of
//! failure it is, also for [`Error::Poisoned`], the refusal after an earlier
//! unrecoverable failure, which keeps that failure as its source.

pub mod backup;
mod batch;
mod checkpoint;
mod compact;
mod db;
mod edit;
mod filename;
mod filter_budget;
mod flush;
mod hooks;
pub mod inspect;
mod iter;
mod keyspace;
mod keyspace_options;
mod manifest;
mod merge;
mod observe;
mod open;
mod options;
mod read_only;
mod remover;
#[cfg(test)]
mod slow_fs;
mod snapshot;
mod stats;
mod table_cache;
mod tree;
mod txn;
mod version;
mod write;

pub use batch::WriteBatch;
pub use checkpoint::{CheckpointInfo, CopyProgress};
pub use db::{Db, WriteOptions};
pub use iter::DbIter;
pub use keyspace::Keyspace;
pub use keyspace_options::KeyspaceOptions;
pub use options::{Compression, DbBuilder, WalRecovery};
pub use snapshot::Snapshot;
pub use stats::{DbStats, KeyspaceStats, LevelStats};
pub use strata_core::{
    Clock, CompactionFilter, Error, ErrorKind, FilterDecision, ManualClock, MergeOperator, Result,
    SystemClock,
};
pub use txn::{Isolation, Transaction, TxnIter};

/// The type of every key and value the database hands back: a cheaply clonable,
/// reference-counted byte buffer from the [`bytes`] crate, re-exported so that code
/// naming it needs no `bytes` dependency of its own (nor one at a matching version).
pub use bytes::Bytes;

// The file-system seam every byte goes through, re-exported so users can run a database
// in memory or on their own file system without depending on the engine's internal
// crates: `MemFs` for tests (see `DbBuilder::in_memory`), `StdFs` (the default), and the
// traits a custom file system implements.
pub use strata_core::{FileLock, FileSystem, MemFs, RandomAccessFile, StdFs, WritableFile};

/// The README's example, compiled and run as a doctest so it never goes stale.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
