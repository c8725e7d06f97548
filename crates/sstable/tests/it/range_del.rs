//! Tables with range tombstones: the range-deletion block, format version 3, key range.

use std::path::Path;

use strata_core::{Error, FileSystem, FragmentedTombstones, MemFs, RangeTombstone, ValueKind};
use strata_sstable::{FormatVersion, Table, TableBuilder, TableOptions};

use crate::common::{ik, open};

fn t(start: &str, end: &str, seq: u64) -> RangeTombstone {
    RangeTombstone {
        start: start.into(),
        end: end.into(),
        seq,
    }
}

#[test]
fn range_tombstones_round_trip_and_widen_the_key_and_sequence_range() {
    let fs = MemFs::new();
    let path = Path::new("/000007.sst");
    let mut b = TableBuilder::new(fs.create(path).unwrap(), TableOptions::default()).unwrap();
    b.add(ik(b"d", 5, ValueKind::Put).as_bytes(), b"v").unwrap();
    b.add(ik(b"e", 6, ValueKind::Delete).as_bytes(), b"")
        .unwrap();
    let ranges = FragmentedTombstones::new([t("b", "f", 9), t("a", "c", 2), t("x", "z", 3)]);
    b.add_range_tombstones(&ranges).unwrap();
    let s = b.finish().unwrap();
    assert_eq!(s.entry_count, 2);
    assert_eq!(s.range_tombstone_count, ranges.len() as u64);
    assert_eq!(s.smallest_key, strata_core::range_del::start_bound(b"a"));
    assert_eq!(s.largest_key, strata_core::range_del::start_bound(b"z"));
    assert_eq!((s.smallest_seq, s.largest_seq), (2, 9));

    let table = open(&fs, path, None).unwrap();
    assert_eq!(table.footer().version, FormatVersion::V3);
    assert_eq!(**table.range_tombstones(), ranges);
    // Point lookups answer for point entries alone, with their sequence numbers.
    let (found, _) = table.get_versioned(b"d", 100).unwrap();
    assert_eq!(found.map(|(seq, _)| seq), Some(5));
    let report = table.verify().unwrap();
    assert_eq!(report.entries, 2);
}

#[test]
fn a_table_of_range_tombstones_alone_is_valid() {
    let fs = MemFs::new();
    let path = Path::new("/000008.sst");
    let mut b = TableBuilder::new(fs.create(path).unwrap(), TableOptions::default()).unwrap();
    b.add_range_tombstones(&FragmentedTombstones::new([t("k", "m", 4)]))
        .unwrap();
    let s = b.finish().unwrap();
    assert_eq!((s.entry_count, s.range_tombstone_count), (0, 1));
    let table = open(&fs, path, None).unwrap();
    assert_eq!(table.range_tombstones().covering_seq(b"l", 10), Some(4));
    assert_eq!(table.get(b"l", 10).unwrap(), strata_core::Lookup::Absent);
    table.verify().unwrap();
}

#[test]
fn tables_without_range_tombstones_keep_their_older_version() {
    let fs = MemFs::new();
    let path = Path::new("/000009.sst");
    let mut b = TableBuilder::new(fs.create(path).unwrap(), TableOptions::default()).unwrap();
    b.add(ik(b"a", 1, ValueKind::Put).as_bytes(), b"v").unwrap();
    b.add_range_tombstones(&FragmentedTombstones::empty())
        .unwrap();
    b.finish().unwrap();
    let table = open(&fs, path, None).unwrap();
    assert_eq!(table.footer().version, FormatVersion::V1);
    assert!(table.range_tombstones().is_empty());
}

/// Every bit of a table's range-deletion block is covered by its checksum: damage is
/// `Corruption` at open, never a table that silently lost (or changed) a tombstone.
#[test]
fn damage_to_the_range_deletion_block_is_corruption_at_open() {
    let fs = MemFs::new();
    let path = Path::new("/000010.sst");
    let mut b = TableBuilder::new(fs.create(path).unwrap(), TableOptions::default()).unwrap();
    b.add(ik(b"a", 1, ValueKind::Put).as_bytes(), b"v").unwrap();
    b.add_range_tombstones(&FragmentedTombstones::new([t("b", "c", 4), t("q", "r", 5)]))
        .unwrap();
    b.finish().unwrap();
    let bytes = fs.read_file(path).unwrap();
    let handle = Table::read_footer(&*fs.open(path).unwrap())
        .unwrap()
        .range_del
        .unwrap();
    for pos in handle.offset..handle.offset + handle.size + 5 {
        let mut damaged = bytes.clone();
        damaged[pos as usize] ^= 0x04;
        let p = Path::new("/000011.sst");
        let mut f = fs.create(p).unwrap();
        f.append(&damaged).unwrap();
        f.sync().unwrap();
        match open(&fs, p, None) {
            Err(Error::Corruption { .. }) => {}
            other => panic!("byte {pos}: {other:?}"),
        }
        fs.remove(p).unwrap();
    }
}
