//! Integration tests of the engine through its public API.
#![allow(clippy::unwrap_used)]

mod basic;
mod checkpoint;
mod concurrency;
mod format_fixture;
mod in_memory;
mod keyspace;
mod lifecycle;
mod merge;
mod model;
mod range_delete;
mod read_only;
mod ttl;
mod txn;

use std::path::Path;
use std::sync::Arc;

use strata::{Db, DbBuilder};
use strata_core::MemFs;

/// Options so small that every path (freeze, flush, L0 trigger, multi-level compaction,
/// manifest roll) runs within a few hundred operations.
pub fn tiny(builder: DbBuilder) -> DbBuilder {
    builder
        .memtable_bytes(4 << 10)
        .table_file_bytes(8 << 10)
        .block_bytes(256)
        .level_base_bytes(16 << 10)
        .level_fanout(4)
        .l0_compaction_trigger(2)
        .manifest_roll_bytes(2 << 10)
        .block_cache_bytes(64 << 10)
}

/// A tiny database in memory at `/db`.
pub fn open_mem(fs: &MemFs) -> Db {
    tiny(Db::builder(Path::new("/db")))
        .file_system(Arc::new(fs.clone()))
        .open()
        .unwrap()
}

/// Collects an iterator of results into key/value strings for readable assertions.
pub fn collect(
    it: impl Iterator<Item = strata::Result<(bytes::Bytes, bytes::Bytes)>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|kv| {
        let (k, v) = kv.unwrap();
        (k.to_vec(), v.to_vec())
    })
    .collect()
}
