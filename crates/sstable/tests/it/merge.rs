//! Tables with merge operands and expiring values: format version 4, and kinds 2 and 3
//! refused in older versions.

use std::path::Path;

use strata_core::{Error, FileSystem, Lookup, MemFs, SortedIter, ValueKind};
use strata_sstable::{FormatVersion, TableBuilder, TableOptions};

use crate::common::{ik, open, set_footer_version};

fn build_with_merges(fs: &MemFs, path: &Path) {
    let mut b = TableBuilder::new(fs.create(path).unwrap(), TableOptions::default()).unwrap();
    b.add(ik(b"a", 3, ValueKind::Merge).as_bytes(), b"+1")
        .unwrap();
    b.add(ik(b"a", 2, ValueKind::Merge).as_bytes(), b"+2")
        .unwrap();
    b.add(ik(b"a", 1, ValueKind::Put).as_bytes(), b"10")
        .unwrap();
    b.add(ik(b"b", 4, ValueKind::Put).as_bytes(), b"v").unwrap();
    let expiring = strata_core::expiry::encode_expiring(7_000, b"ttl");
    b.add(ik(b"c", 5, ValueKind::ExpiringPut).as_bytes(), &expiring)
        .unwrap();
    b.finish().unwrap();
}

#[test]
fn a_table_with_merge_operands_is_version_4_and_answers_merge_at_each_snapshot() {
    let fs = MemFs::new();
    let path = Path::new("/000009.sst");
    build_with_merges(&fs, path);
    let table = open(&fs, path, None).unwrap();
    assert_eq!(table.footer().version, FormatVersion::V4);
    // Version 4 has version 3's footer, with a range-deletion block that may be empty.
    assert!(table.footer().range_del.is_some());
    assert!(table.range_tombstones().is_empty());
    assert_eq!(table.get(b"a", 10).unwrap(), Lookup::Merge);
    assert_eq!(table.get(b"a", 2).unwrap(), Lookup::Merge);
    assert_eq!(table.get(b"a", 1).unwrap(), Lookup::Found("10".into()));
    assert_eq!(table.get(b"b", 10).unwrap(), Lookup::Found("v".into()));
    // The operand is the stored value, as for a put.
    let mut it = table.iter();
    it.seek_to_first().unwrap();
    assert_eq!(
        (it.key(), it.value()),
        (ik(b"a", 3, ValueKind::Merge).as_bytes(), &b"+1"[..])
    );
    // An expiring value answers with its expiry and the user's value.
    assert_eq!(
        table.get(b"c", 10).unwrap(),
        Lookup::Expiring {
            expires_at_ms: 7_000,
            value: "ttl".into()
        }
    );
    assert_eq!(table.verify().unwrap().entries, 5);
}

#[test]
fn a_merge_operand_in_a_table_of_an_older_version_is_corruption_not_an_operand() {
    let fs = MemFs::new();
    let path = Path::new("/000010.sst");
    build_with_merges(&fs, path);
    let mut bytes = fs.read_file(path).unwrap();
    // Version 3 has the same footer layout, so only the kind byte is out of place.
    set_footer_version(&mut bytes, 3);
    fs.write_file(path, bytes);
    let table = open(&fs, path, None).unwrap();
    assert_eq!(table.footer().version, FormatVersion::V3);
    let e = table.get(b"a", 10).unwrap_err();
    assert!(
        matches!(&e, Error::Corruption { reason, .. } if reason.contains("merge operand")),
        "{e}"
    );
    let e = table.get(b"c", 10).unwrap_err();
    assert!(
        matches!(&e, Error::Corruption { reason, .. } if reason.contains("expiring value")),
        "{e}"
    );
    assert!(table.verify().unwrap_err().is_corruption());
    // Keys without operands still read.
    assert_eq!(table.get(b"b", 10).unwrap(), Lookup::Found("v".into()));
}
