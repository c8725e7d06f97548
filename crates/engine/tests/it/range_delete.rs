//! Range deletes through the public API: every layer, snapshots, reopen, bad input,
//! and the space coming back.

use std::path::Path;
use std::sync::Arc;

use strata::{Db, Error, WriteBatch, WriteOptions};
use strata_core::MemFs;

use crate::{collect, open_mem, tiny};

fn key(i: u32) -> String {
    format!("key{i:05}")
}

fn fill(db: &Db, n: u32) {
    for i in 0..n {
        db.put(key(i), format!("v{i}")).unwrap();
    }
}

fn keys(db: &Db) -> Vec<String> {
    collect(db.iter())
        .into_iter()
        .map(|(k, _)| String::from_utf8(k).unwrap())
        .collect()
}

#[test]
fn a_range_delete_hides_keys_in_every_layer_and_survives_reopen() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    // Keys spread over deep levels, L0 and the MemTable.
    fill(&db, 600);
    db.compact_range::<&[u8], _>(..).unwrap();
    for i in (0..600).step_by(3) {
        db.put(key(i), "newer").unwrap();
    }
    db.flush().unwrap();
    for i in (0..600).step_by(5) {
        db.put(key(i), "newest").unwrap();
    }
    db.delete_range(key(100)..key(500)).unwrap();
    // Written after the range delete: not affected by it.
    db.put(key(250), "after").unwrap();
    let check = |db: &Db| {
        for i in 0..600 {
            let got = db.get(key(i)).unwrap();
            let deleted = (100..500).contains(&i) && i != 250;
            assert_eq!(got.is_none(), deleted, "key {i}");
        }
        assert_eq!(db.get(key(250)).unwrap().as_deref(), Some(&b"after"[..]));
        let all = keys(db);
        assert_eq!(all.len(), 600 - 400 + 1);
        let mut rev = collect(db.iter().rev());
        rev.reverse();
        assert_eq!(collect(db.iter()), rev);
        // A range starting inside the deleted run skips it.
        let first: Vec<_> = collect(db.range(key(120)..).take(2));
        assert_eq!(first[0].0, key(250).as_bytes());
        assert_eq!(first[1].0, key(500).as_bytes());
        // And backwards from inside it.
        let last: Vec<_> = collect(db.range(..key(400)).rev().take(2));
        assert_eq!(last[0].0, key(250).as_bytes());
        assert_eq!(last[1].0, key(99).as_bytes());
    };
    check(&db);
    db.flush().unwrap();
    check(&db);
    db.close().unwrap();
    let db = open_mem(&fs);
    check(&db);
    db.compact_range::<&[u8], _>(..).unwrap();
    check(&db);
    db.close().unwrap();
}

#[test]
fn snapshots_keep_seeing_what_a_later_range_delete_hides() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    fill(&db, 300);
    let before = db.snapshot();
    db.delete_range(key(0)..key(200)).unwrap();
    let after = db.snapshot();
    db.put(key(10), "again").unwrap();
    for round in 0..3 {
        assert_eq!(collect(before.iter()).len(), 300, "round {round}");
        assert_eq!(collect(after.iter()).len(), 100, "round {round}");
        assert!(after.get(key(10)).unwrap().is_none());
        assert_eq!(before.get(key(10)).unwrap().as_deref(), Some(&b"v10"[..]));
        assert_eq!(db.get(key(10)).unwrap().as_deref(), Some(&b"again"[..]));
        // Compaction must keep what the old snapshot reads.
        match round {
            0 => db.flush().unwrap(),
            _ => db.compact_range::<&[u8], _>(..).unwrap(),
        }
    }
}

#[test]
fn range_deletes_in_a_batch_are_atomic_and_ordered_with_its_other_entries() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    fill(&db, 50);
    let mut b = WriteBatch::new();
    b.put(key(5), "before-the-range")
        .delete_range(key(0), key(20))
        .put(key(7), "after-the-range");
    db.write(b, WriteOptions { sync: true }).unwrap();
    assert!(db.get(key(5)).unwrap().is_none());
    assert_eq!(
        db.get(key(7)).unwrap().as_deref(),
        Some(&b"after-the-range"[..])
    );
    assert_eq!(keys(&db).len(), 30 + 1);
}

#[test]
fn bad_ranges_get_clear_errors_and_empty_ones_write_nothing() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    db.put("a", "1").unwrap();
    let before = db.stats().wal_bytes_written;
    db.delete_range("b".."a").unwrap();
    db.delete_range("a".."a").unwrap();
    assert_eq!(
        db.stats().wal_bytes_written,
        before,
        "an empty range writes nothing"
    );
    let long = vec![b'k'; 70 << 10];
    assert!(matches!(
        db.delete_range(long.clone()..long.clone()),
        Ok(())
    ));
    let too_long = db.delete_range(vec![b'a']..long).unwrap_err();
    assert!(matches!(too_long, Error::InvalidArgument(_)), "{too_long}");
    assert_eq!(db.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    // `..=end` deletes `end` too; `..end` from the smallest key.
    db.put("b", "2").unwrap();
    db.put("c", "3").unwrap();
    db.delete_range(..="b").unwrap();
    assert_eq!(keys(&db), ["c"]);
    let other = db.clone();
    db.close().unwrap();
    assert!(matches!(other.delete_range("a".."z"), Err(Error::Closed)));
}

#[test]
fn delete_prefix_removes_exactly_the_prefix() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    for p in ["user:", "user;", "users:", "use"] {
        for i in 0..20 {
            db.put(format!("{p}{i:02}"), "v").unwrap();
        }
    }
    db.flush().unwrap();
    db.delete_prefix("user:").unwrap();
    assert_eq!(db.prefix("user:").count(), 0);
    assert_eq!(db.prefix("user;").count(), 20);
    assert_eq!(db.prefix("users:").count(), 20);
    assert_eq!(db.prefix("use").count(), 60);
}

/// Deleting most of a large, compacted database costs one write and gives the space
/// back: the tables a newer range tombstone covers entirely are deleted without being
/// read, the rest at their next compaction.
#[test]
fn the_space_of_range_deleted_tables_comes_back() {
    let fs = MemFs::new();
    let db = tiny(Db::builder(Path::new("/db")))
        .file_system(Arc::new(fs.clone()))
        .open()
        .unwrap();
    fill(&db, 4000);
    db.compact_range::<&[u8], _>(..).unwrap();
    let size = |db: &Db| -> u64 { db.stats().levels.iter().map(|l| l.bytes).sum() };
    let full = size(&db);
    let wal_before = db.stats().wal_bytes_written;
    db.delete_range(key(0)..key(3900)).unwrap();
    assert!(
        db.stats().wal_bytes_written - wal_before < 100,
        "one small write"
    );
    db.flush().unwrap();
    db.wait_for_compaction().unwrap();
    let dropped = db.stats().files_dropped_by_range_deletes;
    assert!(dropped > 0, "no table was dropped without being read");
    db.compact_range::<&[u8], _>(..).unwrap();
    let left = size(&db);
    assert!(left * 10 < full, "{left} bytes left of {full}");
    assert_eq!(keys(&db).len(), 100);
}

/// A snapshot that still sees a table's keys keeps the table: it is dropped only once
/// the snapshot is gone.
#[test]
fn a_snapshot_keeps_covered_tables_until_it_is_dropped() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    fill(&db, 3000);
    db.compact_range::<&[u8], _>(..).unwrap();
    let snap = db.snapshot();
    db.delete_range(key(0)..key(3000)).unwrap();
    db.flush().unwrap();
    db.wait_for_compaction().unwrap();
    assert_eq!(db.stats().files_dropped_by_range_deletes, 0);
    assert_eq!(collect(snap.iter()).len(), 3000);
    drop(snap);
    // The next flush rings the compaction thread, which now may drop them.
    db.put("zz", "1").unwrap();
    db.flush().unwrap();
    db.wait_for_compaction().unwrap();
    assert!(db.stats().files_dropped_by_range_deletes > 0);
    assert_eq!(keys(&db), ["zz"]);
}

/// A range with no end covers every key written before it, whatever layer holds the
/// largest, and none written after it — across a reopen too (its end is fixed before
/// the WAL record is made).
#[test]
fn open_ended_range_deletes_cover_everything_written_before_them() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    fill(&db, 300);
    db.compact_range::<&[u8], _>(..).unwrap();
    db.put("zzz-in-the-memtable", "1").unwrap();
    db.delete_range(key(100)..).unwrap();
    db.put("zzzz-after", "2").unwrap();
    let mut b = WriteBatch::new();
    b.put([0xffu8, 0xff, 1], "in-batch-before")
        .delete_range_from([0xffu8]);
    b.put([0xffu8, 0xff, 2], "in-batch-after");
    db.write(b, WriteOptions::default()).unwrap();
    let check = |db: &Db| {
        let all: Vec<Vec<u8>> = collect(db.iter()).into_iter().map(|(k, _)| k).collect();
        let mut want: Vec<Vec<u8>> = (0..100).map(|i| key(i).into_bytes()).collect();
        want.push(b"zzzz-after".to_vec());
        want.push(vec![0xff, 0xff, 2]);
        assert_eq!(all, want);
    };
    check(&db);
    // A prefix with no successor, and the empty prefix: everything before them.
    db.put([0xffu8, 0xff, 3], "x").unwrap();
    db.delete_prefix([0xffu8, 0xff]).unwrap();
    db.put([0xffu8, 0xff, 4], "after-the-prefix").unwrap();
    assert_eq!(db.prefix([0xffu8]).count(), 1);
    db.close().unwrap();
    let db = open_mem(&fs);
    assert_eq!(db.prefix([0xffu8]).count(), 1);
    // Nothing at or after the start: nothing deleted, nothing broken.
    db.delete_range(vec![0xffu8, 0xff, 0xff]..).unwrap();
    db.delete_prefix("").unwrap();
    assert_eq!(db.iter().count(), 0);
    db.put("new", "1").unwrap();
    assert_eq!(keys(&db), ["new"]);
    db.close().unwrap();
    let db = open_mem(&fs);
    assert_eq!(keys(&db), ["new"]);
}

/// A read-only handle sees a writer's range deletes, from its WAL (not yet flushed)
/// and from its tables.
#[test]
fn read_only_handles_see_range_deletes_in_wals_and_tables() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    fill(&db, 200);
    db.flush().unwrap();
    let reader = tiny(Db::builder(Path::new("/db")))
        .file_system(Arc::new(fs.clone()))
        .read_only()
        .open()
        .unwrap();
    assert_eq!(keys(&reader).len(), 200);
    db.delete_range(key(50)..key(150)).unwrap();
    db.sync_wal().unwrap();
    reader.refresh().unwrap();
    assert_eq!(keys(&reader).len(), 100);
    assert!(reader.get(key(60)).unwrap().is_none());
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    reader.refresh().unwrap();
    assert_eq!(keys(&reader).len(), 100);
    assert!(reader.get(key(149)).unwrap().is_none());
    assert!(reader.get(key(150)).unwrap().is_some());
}

/// Range tombstones over half the keys of every table below them (so no table is
/// covered entirely) get those tables compacted without a user's compact_range: the
/// space comes back, and the tombstones go with the keys.
#[test]
fn tombstones_over_much_of_the_data_below_get_it_compacted_away() {
    for on in [true, false] {
        tombstones_over_the_data_below(on);
    }
}

/// With `range_delete_compactions(on)`; off, the tombstones and the keys they cover
/// stay until the usual size rules reach them.
fn tombstones_over_the_data_below(on: bool) {
    let fs = MemFs::new();
    let db = tiny(Db::builder(Path::new("/db")))
        .memtable_bytes(256 << 10)
        .range_delete_compactions(on)
        .file_system(Arc::new(fs.clone()))
        .open()
        .unwrap();
    fill(&db, 4000);
    db.compact_range::<&[u8], _>(..).unwrap();
    let bytes = |db: &Db| -> u64 { db.stats().levels.iter().map(|l| l.bytes).sum() };
    let full = bytes(&db);
    for r in (0..4000).step_by(200) {
        db.delete_range(key(r)..key(r + 100)).unwrap();
    }
    db.flush().unwrap();
    db.wait_for_compaction().unwrap();
    let stats = db.stats();
    let left = bytes(&db);
    let range_tombstones_left: u64 = stats.levels.iter().map(|l| l.range_tombstones).sum();
    if on {
        assert!(
            left * 10 < full * 7,
            "{left} bytes left of {full}: {stats:?}"
        );
        assert_eq!(range_tombstones_left, 0, "{stats:?}");
    } else {
        assert!(left >= full, "{left} bytes left of {full}: {stats:?}");
        assert!(range_tombstones_left > 0, "{stats:?}");
    }
    assert_eq!(keys(&db).len(), 2000);
}

/// Tables of range tombstones alone over keys no deeper table holds any more (their
/// keys' tables were dropped) hide nothing and are deleted too.
#[test]
fn tables_of_tombstones_over_nothing_are_deleted() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    fill(&db, 300);
    db.compact_range::<&[u8], _>(..).unwrap();
    for r in (0..300).step_by(30) {
        db.delete_range(key(r)..key(r + 15)).unwrap();
    }
    db.flush().unwrap();
    db.wait_for_compaction().unwrap();
    let stats = db.stats();
    let left: u64 = stats.levels.iter().map(|l| l.range_tombstones).sum();
    assert_eq!(left, 0, "{stats:?}");
    assert!(stats.files_dropped_by_range_deletes > 0);
    assert_eq!(keys(&db).len(), 150);
}
