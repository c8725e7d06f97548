//! Merge operators through the engine: reads fold operands at every layer and snapshot,
//! compaction folds them ahead of time, and a missing or refusing operator is an error
//! that loses nothing.

use std::path::Path;
use std::sync::Arc;

use strata::{Db, DbBuilder, ErrorKind, KeyspaceOptions, MergeOperator, WriteBatch, WriteOptions};
use strata_core::MemFs;

use crate::{collect, tiny};

/// A little-endian u64 counter; operands are increments. Refuses operands that are
/// not 8 bytes.
struct Add;

impl MergeOperator for Add {
    fn name(&self) -> &str {
        "u64-add"
    }

    fn merge(&self, _: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>> {
        let decode = |b: &[u8]| Some(u64::from_le_bytes(b.try_into().ok()?));
        let mut sum = existing.map_or(Some(0), decode)?;
        for op in operands {
            sum = sum.wrapping_add(decode(op)?);
        }
        Some(sum.to_le_bytes().to_vec())
    }
}

fn n(x: u64) -> [u8; 8] {
    x.to_le_bytes()
}

fn builder(fs: &MemFs) -> DbBuilder {
    tiny(Db::builder(Path::new("/db"))).file_system(Arc::new(fs.clone()))
}

fn counter(db: &Db, key: &str) -> Option<u64> {
    db.get(key)
        .unwrap()
        .map(|v| u64::from_le_bytes(v[..].try_into().unwrap()))
}

/// Entries held by the tables of every level.
fn table_entries(db: &Db) -> u64 {
    db.stats().levels.iter().map(|l| l.entries).sum()
}

#[test]
fn counters_fold_across_memtables_tables_compaction_and_reopen() {
    let fs = MemFs::new();
    let db = builder(&fs).merge_operator(Add).open().unwrap();
    db.put("c0", n(100)).unwrap();
    for round in 0..200u64 {
        for k in 0..5 {
            db.merge(format!("c{k}"), n(round)).unwrap();
        }
        if round % 50 == 49 {
            db.flush().unwrap();
        }
    }
    let total: u64 = (0..200).sum();
    assert_eq!(counter(&db, "c0"), Some(100 + total));
    assert_eq!(counter(&db, "c4"), Some(total));
    // Iterators fold the same way, both directions.
    let want: Vec<(Vec<u8>, Vec<u8>)> = (0..5)
        .map(|k| {
            let v = if k == 0 { 100 + total } else { total };
            (format!("c{k}").into_bytes(), n(v).to_vec())
        })
        .collect();
    assert_eq!(collect(db.iter()), want);
    let mut rev = want.clone();
    rev.reverse();
    assert_eq!(collect(db.iter().rev()), rev);

    // Compaction folds each key's 200 operands (and c0's put) into one put.
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(table_entries(&db), 5);
    assert_eq!(collect(db.iter()), want);
    db.close().unwrap();

    let db = builder(&fs).merge_operator(Add).open().unwrap();
    assert_eq!(collect(db.iter()), want);
    db.merge("c1", n(1)).unwrap();
    assert_eq!(counter(&db, "c1"), Some(total + 1));
}

#[test]
fn merges_in_a_batch_fold_in_order_with_the_batch_puts_and_deletes() {
    let db = DbBuilder::in_memory().merge_operator(Add).open().unwrap();
    let mut b = WriteBatch::new();
    b.merge("k", n(5))
        .put("k", n(10))
        .merge("k", n(1))
        .merge("k", n(2));
    b.merge("gone", n(7)).delete("gone").merge("gone", n(3));
    db.write(b, WriteOptions::default()).unwrap();
    assert_eq!(counter(&db, "k"), Some(13));
    // A delete ends the history: later operands fold onto nothing.
    assert_eq!(counter(&db, "gone"), Some(3));
    // A range delete too.
    db.delete_range("a".."z").unwrap();
    db.merge("k", n(4)).unwrap();
    assert_eq!(counter(&db, "k"), Some(4));
    assert_eq!(collect(db.iter()).len(), 1);
}

#[test]
fn snapshots_see_the_fold_of_their_time_and_compaction_keeps_it() {
    let fs = MemFs::new();
    let db = builder(&fs).merge_operator(Add).open().unwrap();
    db.merge("k", n(1)).unwrap();
    db.merge("k", n(2)).unwrap();
    let early = db.snapshot();
    db.merge("k", n(4)).unwrap();
    db.flush().unwrap();
    let middle = db.snapshot();
    db.put("k", n(100)).unwrap();
    db.merge("k", n(8)).unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    db.merge("k", n(16)).unwrap();

    let read = |s: &strata::Snapshot| {
        s.get("k")
            .unwrap()
            .map(|v| u64::from_le_bytes(v[..].try_into().unwrap()))
    };
    assert_eq!(read(&early), Some(3));
    assert_eq!(read(&middle), Some(7));
    assert_eq!(counter(&db, "k"), Some(124));
    assert_eq!(collect(early.iter()), [(b"k".to_vec(), n(3).to_vec())]);
    assert_eq!(
        collect(middle.iter().rev()),
        [(b"k".to_vec(), n(7).to_vec())]
    );
    // Once the snapshots go, compaction folds everything into one put.
    drop((early, middle));
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(table_entries(&db), 1);
    assert_eq!(counter(&db, "k"), Some(124));
}

#[test]
fn without_an_operator_merges_are_kept_and_reads_fail_clearly_until_one_is_given() {
    let fs = MemFs::new();
    let db = builder(&fs).open().unwrap();
    db.put("k", n(10)).unwrap();
    for i in 1..=30 {
        db.merge("k", n(i)).unwrap();
    }
    db.put("plain", "v").unwrap();
    let e = db.get("k").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Merge);
    assert!(e.to_string().contains("no merge operator"), "{e}");
    // Other keys read as always; an iterator reaching the key reports the error.
    assert_eq!(db.get("plain").unwrap().as_deref(), Some(&b"v"[..]));
    let first = db.iter().next().unwrap();
    assert_eq!(first.unwrap_err().kind(), ErrorKind::Merge);
    // Compaction cannot fold them, so it keeps every operand and the put below them.
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(table_entries(&db), 32);
    db.close().unwrap();

    let db = builder(&fs).merge_operator(Add).open().unwrap();
    assert_eq!(counter(&db, "k"), Some(10 + (1..=30).sum::<u64>()));
}

#[test]
fn an_operator_refusing_operands_fails_the_read_and_compaction_keeps_them() {
    let fs = MemFs::new();
    let db = builder(&fs).merge_operator(Add).open().unwrap();
    db.merge("k", n(1)).unwrap();
    db.merge("k", b"not eight bytes").unwrap();
    db.merge("k", n(2)).unwrap();
    db.merge("ok", n(5)).unwrap();
    let e = db.get("k").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Merge);
    assert!(e.to_string().contains("\"u64-add\""), "{e}");
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    // "ok" folds; "k" keeps its three operands (the operator refused to fold them).
    assert_eq!(table_entries(&db), 4);
    assert_eq!(counter(&db, "ok"), Some(5));
    // A put over them settles the key again.
    db.put("k", n(9)).unwrap();
    assert_eq!(counter(&db, "k"), Some(9));
}

#[test]
fn each_keyspace_folds_with_its_own_operator() {
    /// Appends operands, comma-separated.
    struct Append;
    impl MergeOperator for Append {
        fn name(&self) -> &str {
            "append"
        }
        fn merge(&self, _: &[u8], existing: Option<&[u8]>, ops: &[&[u8]]) -> Option<Vec<u8>> {
            let mut parts: Vec<&[u8]> = existing.into_iter().collect();
            parts.extend_from_slice(ops);
            Some(parts.join(&b","[..]))
        }
    }
    let fs = MemFs::new();
    let db = builder(&fs).merge_operator(Add).open().unwrap();
    let lists = db
        .keyspace_with("lists", KeyspaceOptions::new().merge_operator(Append))
        .unwrap();
    let plain = db.keyspace("plain").unwrap();
    let mut b = WriteBatch::new();
    b.merge("n", n(2))
        .merge_in(&lists, "l", "a")
        .merge_in(&plain, "p", n(7));
    db.write(b, WriteOptions::default()).unwrap();
    lists.merge("l", "b").unwrap();
    db.merge("n", n(3)).unwrap();
    assert_eq!(counter(&db, "n"), Some(5));
    assert_eq!(lists.get("l").unwrap().as_deref(), Some(&b"a,b"[..]));
    // A keyspace without an operator of its own takes the database's, like every
    // option it leaves unset.
    assert_eq!(plain.get("p").unwrap().as_deref(), Some(&n(7)[..]));
    // The same operand in "lists" is appended, not added.
    lists.merge("l", n(7)).unwrap();
    assert_eq!(lists.get("l").unwrap().unwrap().len(), b"a,b,".len() + 8);
}

#[test]
fn a_flush_writes_what_readers_can_see_one_entry_per_key_and_snapshot() {
    let fs = MemFs::new();
    let db = builder(&fs)
        .merge_operator(Add)
        .memtable_bytes(1 << 20)
        .l0_compaction_trigger(100)
        .idle_compaction(None)
        .open()
        .unwrap();
    for round in 0..100u64 {
        for k in 0..10 {
            db.merge(format!("c{k}"), n(1)).unwrap();
        }
        db.put("p", n(round)).unwrap();
    }
    db.flush().unwrap();
    // Ten counters, each folded into one operand (a value may lie below a level-0
    // table), and the newest put of "p".
    assert_eq!(table_entries(&db), 11);
    assert_eq!(counter(&db, "c3"), Some(100));
    // A snapshot splits each key's history in two: one entry on each side of it.
    for k in 0..10 {
        db.merge(format!("c{k}"), n(1)).unwrap();
    }
    let snap = db.snapshot();
    for k in 0..10 {
        db.merge(format!("c{k}"), n(1)).unwrap();
    }
    db.flush().unwrap();
    assert_eq!(table_entries(&db), 11 + 20);
    let read = |s: &strata::Snapshot| {
        u64::from_le_bytes(s.get("c3").unwrap().unwrap()[..].try_into().unwrap())
    };
    assert_eq!(read(&snap), 101);
    assert_eq!(counter(&db, "c3"), Some(102));
}
