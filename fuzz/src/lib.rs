//! Helpers shared by the fuzz targets: building a valid table from fuzz input, damaging
//! it (optionally re-sealing the checksums so the damage reaches the decoders behind
//! them), and exercising a table through its public API.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use strata_core::{
    FileSystem, FragmentedTombstones, InternalKey, Lookup, MemFs, RangeTombstone, SortedIter,
    ValueKind,
};
use strata_sstable::{Compression, Table, TableBuilder, TableOptions};

/// Reads bytes off the front of the fuzz input; runs dry as zeros.
pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The newest entry per user key of a table built by [`build_table`]: `None` for a
/// tombstone.
pub type Expected = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// A valid table made from the front of `input`: 1 to 64 entries over a small key
/// space, small blocks so there are several, with a filter, optionally compressed, and
/// (two times in three) 1 to 4 range tombstones over the same key space, so the table
/// is format version 3 with a range-deletion block. `Expected` is about point entries
/// only (`Table::get` and iterators do not apply range tombstones).
pub fn build_table(input: &mut Input) -> (Vec<u8>, Expected) {
    let n = 1 + (input.byte() % 64) as usize;
    let block = 32 + input.u16() as usize % 512;
    let compression = match input.byte() % 8 {
        0 | 1 => Compression::Lz4,
        2 | 3 => Compression::Zstd,
        _ => Compression::None,
    };
    let mut entries: BTreeMap<Vec<u8>, (u64, bool, Vec<u8>)> = BTreeMap::new();
    for i in 0..n {
        let k = input.byte();
        let key = format!("key{:03}", k % 200).into_bytes();
        let put = input.byte() % 5 != 0;
        let vlen = (input.byte() % 40) as usize;
        let value = if put {
            std::iter::repeat_n(k, vlen).collect()
        } else {
            Vec::new()
        };
        entries.insert(key, (i as u64 + 1, put, value));
    }
    let fs = MemFs::new();
    let path = Path::new("/1.sst");
    let opts = TableOptions {
        block_size_bytes: block,
        restart_interval: 1 + (n % 4),
        bloom_bits_per_key: 10,
        compression,
    };
    let file = fs.create(path).expect("memfs create");
    let mut b = TableBuilder::new(file, opts).expect("valid options");
    let ranges = input.byte() % 3;
    if ranges > 0 {
        let count = 1 + input.byte() % 4;
        let tombstones: Vec<RangeTombstone> = (0..count)
            .map(|_| {
                let first = input.byte() % 200;
                let len = 1 + input.byte() % 60;
                let last = first.saturating_add(len).min(200);
                RangeTombstone {
                    start: format!("key{first:03}").into_bytes(),
                    // `key200` sorts after every key written: a tombstone may reach
                    // past the last entry.
                    end: format!("key{last:03}").into_bytes(),
                    seq: 1 + u64::from(input.byte()) % 80,
                }
            })
            .collect();
        b.add_range_tombstones(&FragmentedTombstones::new(tombstones))
            .expect("small tombstones");
    }
    let mut expected = Expected::new();
    for (key, (seq, put, value)) in &entries {
        let kind = if *put {
            ValueKind::Put
        } else {
            ValueKind::Delete
        };
        b.add(InternalKey::new(key, *seq, kind).as_bytes(), value)
            .expect("sorted entries");
        expected.insert(key.clone(), put.then(|| value.clone()));
    }
    b.finish().expect("finish");
    (fs.read_file(path).expect("written"), expected)
}

/// The byte ranges `(offset, size)` of every block of a valid table (stored bytes, not
/// trailer), and the footer offset and file id.
pub struct Layout {
    pub data: Vec<(u64, u64)>,
    pub filter: (u64, u64),
    /// The range-deletion block (format version 3 tables only).
    pub range_del: Option<(u64, u64)>,
    pub properties: (u64, u64),
    pub index: (u64, u64),
    pub footer: u64,
    pub file_id: u64,
}

pub fn layout(bytes: &[u8]) -> Layout {
    let t = open(bytes).expect("a freshly built table opens");
    let f = *t.footer();
    Layout {
        data: t
            .index_entries()
            .map(|e| (e.handle.offset, e.handle.size))
            .collect(),
        filter: (f.filter.offset, f.filter.size),
        range_del: f.range_del.map(|r| (r.offset, r.size)),
        properties: (f.properties.offset, f.properties.size),
        index: (f.index.offset, f.index.size),
        footer: f.offset,
        file_id: f.file_id,
    }
}

/// Recomputes the checksum of the block at `(offset, size)` and of the footer, so
/// damage inside them passes verification and reaches the decoders.
pub fn reseal(bytes: &mut [u8], l: &Layout) {
    let blocks = l
        .data
        .iter()
        .chain([&l.filter, &l.properties, &l.index])
        .chain(l.range_del.as_ref());
    for &(offset, size) in blocks {
        let (o, s) = (offset as usize, size as usize);
        if o + s + 5 > bytes.len() {
            continue;
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes[o..o + s + 1]);
        h.update(&offset.to_le_bytes());
        h.update(&l.file_id.to_le_bytes());
        bytes[o + s + 1..o + s + 5].copy_from_slice(&h.finalize().to_le_bytes());
    }
    // The checksum covers every footer byte before it: 64 in a version-1/2 footer (76
    // bytes), 80 in a version-3 one (92 bytes, with the range-deletion handle).
    let f = l.footer as usize;
    let crc_at = if l.range_del.is_some() { 80 } else { 64 };
    if f + crc_at + 12 <= bytes.len() {
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes[f..f + crc_at]);
        h.update(&l.footer.to_le_bytes());
        bytes[f + crc_at..f + crc_at + 4].copy_from_slice(&h.finalize().to_le_bytes());
    }
}

/// XORs bytes of `bytes[range]` at positions drawn from the rest of `input`; returns
/// whether anything changed (two XORs of one byte may cancel out).
pub fn damage(bytes: &mut [u8], range: std::ops::Range<usize>, input: &mut Input) -> bool {
    let before = bytes.to_vec();
    let span = range.end.saturating_sub(range.start);
    while !input.is_empty() && span > 0 {
        let at = range.start + input.u16() as usize % span;
        let x = input.byte();
        if let Some(b) = bytes.get_mut(at) {
            *b ^= x;
        }
    }
    before != bytes
}

pub fn open(bytes: &[u8]) -> strata_core::Result<Arc<Table>> {
    let fs = MemFs::new();
    let path = Path::new("/7.sst");
    fs.write_file(path, bytes.to_vec());
    Table::open(fs.open(path)?, 7, None)
}

/// What reading a table yielded: entries read in order before any error, and whether
/// an error stopped it.
pub struct Scan {
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    pub failed: bool,
}

/// Iterates forward and backward (bounded), seeks, and verifies: never panics.
pub fn scan(t: &Arc<Table>) -> Scan {
    let mut entries = Vec::new();
    let mut it = t.iter();
    let mut failed = it.seek_to_first().is_err();
    while !failed && it.valid() && entries.len() < 10_000 {
        entries.push((it.key().to_vec(), it.value().to_vec()));
        failed = it.next().is_err();
    }
    let mut back = t.iter();
    let mut ok = back.seek_to_last().is_ok();
    let mut steps = 0;
    while ok && back.valid() && steps < 10_000 {
        let _ = (back.key(), back.value());
        ok = back.prev().is_ok();
        steps += 1;
    }
    for (k, _) in entries.iter().take(8) {
        let mut s = t.iter();
        let _ = s.seek(k);
    }
    let _ = t.verify();
    Scan { entries, failed }
}

/// Point lookups of every key in `keys` (and a few absent ones): never panics; checks
/// answers against `expected` when `trust` (damage that checksums must have caught).
pub fn lookups(t: &Table, expected: &Expected, trust: bool) {
    let absent = [&b"key"[..], b"key0005", b"zzz", b""];
    for k in expected.keys().map(Vec::as_slice).chain(absent) {
        let got = t.get(k, u64::MAX >> 8);
        if !trust {
            continue;
        }
        if let Ok(got) = got {
            let want = match expected.get(k) {
                Some(Some(v)) => Lookup::Found(bytes::Bytes::from(v.clone())),
                Some(None) => Lookup::Deleted,
                None => Lookup::Absent,
            };
            assert_eq!(got, want, "wrong answer for {k:?} from a damaged table");
        }
    }
}

/// Checks `scan` against `expected`: whatever was read before an error is exactly the
/// table's entries, in order.
pub fn check_scan(scan: &Scan, expected: &Expected) {
    let want: Vec<(Vec<u8>, Option<Vec<u8>>)> = expected
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert!(
        scan.entries.len() <= want.len(),
        "more entries than written"
    );
    if !scan.failed {
        assert_eq!(
            scan.entries.len(),
            want.len(),
            "entries lost without an error"
        );
    }
    for ((k, v), (wk, wv)) in scan.entries.iter().zip(&want) {
        let parsed = strata_core::ParsedInternalKey::parse(k).expect("a valid internal key");
        assert_eq!(parsed.user_key, &wk[..], "wrong key from a damaged table");
        match wv {
            Some(wv) => assert_eq!(v, wv, "wrong value from a damaged table"),
            None => assert_eq!(parsed.kind, ValueKind::Delete),
        }
    }
}
