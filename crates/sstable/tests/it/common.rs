//! Shared helpers: a `BTreeMap` model of a table and builders on `MemFs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_core::{FileSystem, InternalKey, Lookup, MemFs, SequenceNumber, SortedIter, ValueKind};
use strata_sstable::{BlockCache, Table, TableBuilder, TableOptions, TableSummary};

/// The oracle: internal key → value, in internal-key order.
pub type Model = BTreeMap<InternalKey, Vec<u8>>;

pub fn ik(user_key: &[u8], seq: u64, kind: ValueKind) -> InternalKey {
    InternalKey::new(user_key, seq, kind)
}

/// Builds `model` into `path` on `fs`.
pub fn build(fs: &MemFs, path: &Path, model: &Model, options: TableOptions) -> TableSummary {
    let mut b = TableBuilder::new(fs.create(path).unwrap(), options).unwrap();
    for (k, v) in model {
        b.add(k.as_bytes(), v).unwrap();
    }
    b.finish().unwrap()
}

pub fn open(
    fs: &MemFs,
    path: &Path,
    cache: Option<Arc<BlockCache>>,
) -> strata_core::Result<Arc<Table>> {
    Table::open(fs.open(path)?, 7, cache)
}

/// The model's answer to `get(user_key, snapshot)`.
pub fn model_get(model: &Model, user_key: &[u8], snapshot: SequenceNumber) -> Lookup {
    let target = InternalKey::for_seek(user_key, snapshot.min(strata_core::MAX_SEQUENCE));
    match model.range(target..).next() {
        Some((k, v)) if k.user_key() == user_key => match k.parsed().kind {
            ValueKind::Put => Lookup::Found(v.clone().into()),
            ValueKind::Delete => Lookup::Deleted,
            ValueKind::Merge => Lookup::Merge,
            ValueKind::ExpiringPut => {
                let (expires_at_ms, value) = strata_core::expiry::split_expiring(v).unwrap();
                Lookup::Expiring {
                    expires_at_ms,
                    value: value.to_vec().into(),
                }
            }
        },
        _ => Lookup::Absent,
    }
}

/// Every entry, first to last.
pub fn scan_forward(it: &mut dyn SortedIter) -> strata_core::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    it.seek_to_first()?;
    while it.valid() {
        out.push((it.key().to_vec(), it.value_bytes().to_vec()));
        it.next()?;
    }
    Ok(out)
}

/// Every entry, last to first.
pub fn scan_backward(it: &mut dyn SortedIter) -> strata_core::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    it.seek_to_last()?;
    while it.valid() {
        out.push((it.key().to_vec(), it.value().to_vec()));
        it.prev()?;
    }
    Ok(out)
}

pub fn model_entries(model: &Model) -> Vec<(Vec<u8>, Vec<u8>)> {
    model
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
        .collect()
}

pub fn table_path(name: &str) -> PathBuf {
    PathBuf::from(format!("/{name}.sst"))
}

/// A small deterministic generator (splitmix64) for seeded tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Rewrites the format version in a table's footer and fixes the footer checksum, as
/// a writer of that version would have (per docs/format/sstable.md: the tail is
/// footer_len u32 | version u32 | crc u32 | magic; the crc covers the footer up to
/// itself, then the footer's offset).
pub fn set_footer_version(bytes: &mut [u8], version: u32) {
    let n = bytes.len();
    let footer_len = u32::from_le_bytes(bytes[n - 20..n - 16].try_into().unwrap()) as usize;
    bytes[n - 16..n - 12].copy_from_slice(&version.to_le_bytes());
    let footer_offset = (n - footer_len) as u64;
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[n - footer_len..n - 12]);
    h.update(&footer_offset.to_le_bytes());
    let crc = h.finalize();
    bytes[n - 12..n - 8].copy_from_slice(&crc.to_le_bytes());
}
