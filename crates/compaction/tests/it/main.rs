//! Integration tests of strata-compaction: iterators against a sorted-vector model,
//! picking on synthetic level shapes, and compaction jobs against a history model.
#![allow(clippy::unwrap_used)]

mod iter;
mod job;
mod picker;
mod sim;

use std::sync::Arc;

use strata_compaction::FileMeta;
use strata_compaction::mem::{Table, TableStore};
use strata_core::{FragmentedTombstones, InternalKey, ValueKind};

/// Encoded internal key.
pub fn ik(user_key: &[u8], seq: u64, kind: ValueKind) -> Vec<u8> {
    InternalKey::new(user_key, seq, kind).into_bytes()
}

/// A synthetic file description (no table behind it), for picker tests.
pub fn meta(number: u64, lo: &str, hi: &str, size_bytes: u64) -> Arc<FileMeta> {
    Arc::new(FileMeta {
        number,
        size_bytes,
        smallest: InternalKey::new(lo.as_bytes(), 100, ValueKind::Put),
        largest: InternalKey::new(hi.as_bytes(), 1, ValueKind::Put),
        smallest_seq: 1,
        largest_seq: 100,
        entries: 1,
        tombstones: 0,
        range_tombstones: 0,
    })
}

/// Stores a table of `(user key, seq, kind, value)` entries (sorted here).
pub fn store_table(
    store: &TableStore,
    entries: Vec<(Vec<u8>, u64, ValueKind, Vec<u8>)>,
) -> Arc<FileMeta> {
    store_table_with_ranges(store, entries, FragmentedTombstones::empty())
}

/// Stores a table of entries (sorted here) and range tombstones.
pub fn store_table_with_ranges(
    store: &TableStore,
    mut entries: Vec<(Vec<u8>, u64, ValueKind, Vec<u8>)>,
    ranges: FragmentedTombstones,
) -> Arc<FileMeta> {
    entries.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    store
        .add(
            Table::from_sorted(
                entries
                    .into_iter()
                    .map(|(k, s, kind, v)| (ik(&k, s, kind), v)),
            )
            .with_range_tombstones(ranges),
        )
        .unwrap()
}

/// Proptest case count: `default`, or `PROPTEST_CASES` when set (for long soak runs).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
