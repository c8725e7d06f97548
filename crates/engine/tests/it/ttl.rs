//! Values with a time to live and compaction filters: expired values are hidden from
//! every read at once and their space is reclaimed by compaction; filters see only
//! what no snapshot reads.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use strata::{
    CompactionFilter, Db, DbBuilder, FilterDecision, KeyspaceOptions, ManualClock, MergeOperator,
    WriteBatch, WriteOptions,
};
use strata_core::MemFs;

use crate::{collect, tiny};

const START: u64 = 1_700_000_000_000;

fn builder(fs: &MemFs, clock: &Arc<ManualClock>) -> DbBuilder {
    tiny(Db::builder(Path::new("/db")))
        .file_system(Arc::new(fs.clone()))
        .clock(Arc::clone(clock))
}

/// Entries held by the tables of every level.
fn table_entries(db: &Db) -> u64 {
    db.stats().levels.iter().map(|l| l.entries).sum()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn expired_values_vanish_from_every_read_at_once_and_compaction_reclaims_them() {
    let fs = MemFs::new();
    let clock = Arc::new(ManualClock::new(START));
    let db = builder(&fs, &clock).open().unwrap();
    for i in 0..200 {
        let k = format!("k{i:03}");
        if i % 2 == 0 {
            db.put_with_ttl(&k, format!("short{i}"), secs(10)).unwrap();
        } else {
            db.put_with_ttl(&k, format!("long{i}"), secs(1000)).unwrap();
        }
    }
    db.put("plain", "forever").unwrap();
    db.flush().unwrap();
    let before = db.snapshot();
    assert_eq!(collect(db.iter()).len(), 201);
    assert_eq!(db.get("k000").unwrap().as_deref(), Some(&b"short0"[..]));

    clock.advance(10_000);
    // Gone at once: point reads, both scan directions, and a snapshot taken before.
    assert_eq!(db.get("k000").unwrap(), None);
    assert_eq!(db.get("k001").unwrap().as_deref(), Some(&b"long1"[..]));
    assert_eq!(collect(db.iter()).len(), 101);
    assert_eq!(collect(db.iter().rev()).len(), 101);
    assert_eq!(before.get("k000").unwrap(), None);
    assert_eq!(collect(before.iter()).len(), 101);
    // An expired value does not uncover an older one below it.
    db.put("k002", "old").unwrap();
    db.put_with_ttl("k002", "new", secs(1)).unwrap();
    clock.advance(1_000);
    assert_eq!(db.get("k002").unwrap(), None);
    drop(before);

    // Compaction turns the expired values into tombstones and drops them at the bottom.
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(table_entries(&db), 101);
    db.close().unwrap();

    // The expiry is in the WAL and the tables: a reopen keeps it.
    let db = builder(&fs, &clock).open().unwrap();
    db.put_with_ttl("fresh", "v", secs(5)).unwrap();
    db.close().unwrap();
    let db = builder(&fs, &clock).open().unwrap();
    assert!(db.get("fresh").unwrap().is_some());
    clock.advance(5_000);
    assert_eq!(db.get("fresh").unwrap(), None);
    assert_eq!(db.get("k001").unwrap().as_deref(), Some(&b"long1"[..]));
}

#[test]
fn a_keyspace_ttl_applies_to_every_put_made_while_it_is_set() {
    let fs = MemFs::new();
    let clock = Arc::new(ManualClock::new(START));
    let db = builder(&fs, &clock).open().unwrap();
    let sessions = db.keyspace("sessions").unwrap();
    sessions.put("before", "kept").unwrap();
    let sessions = db
        .keyspace_with("sessions", KeyspaceOptions::new().ttl(secs(60)))
        .unwrap();
    let mut b = WriteBatch::new();
    b.put_in(&sessions, "s1", "a").put("default-key", "stays");
    db.write(b, WriteOptions::default()).unwrap();
    sessions.put("s2", "b").unwrap();
    // A write's own time to live wins over the keyspace's.
    sessions.put_with_ttl("s3", "c", secs(600)).unwrap();
    clock.advance(60_000);
    assert_eq!(sessions.get("s1").unwrap(), None);
    assert_eq!(sessions.get("s2").unwrap(), None);
    assert_eq!(sessions.get("s3").unwrap().as_deref(), Some(&b"c"[..]));
    assert_eq!(
        sessions.get("before").unwrap().as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(
        db.get("default-key").unwrap().as_deref(),
        Some(&b"stays"[..])
    );
    drop(sessions);
    db.close().unwrap();

    // The database-wide option gives the default keyspace one.
    let db = builder(&fs, &clock).ttl(secs(1)).open().unwrap();
    db.put("brief", "x").unwrap();
    assert!(db.get("brief").unwrap().is_some());
    clock.advance(1_000);
    assert_eq!(db.get("brief").unwrap(), None);
    assert_eq!(
        db.get("default-key").unwrap().as_deref(),
        Some(&b"stays"[..])
    );
}

/// Removes values that start with `drop`, upper-cases those that start with `up`.
struct Scrub;

impl CompactionFilter for Scrub {
    fn name(&self) -> &str {
        "scrub"
    }

    fn filter(&self, _level: usize, _key: &[u8], value: &[u8]) -> FilterDecision {
        if value.starts_with(b"drop") {
            FilterDecision::Remove
        } else if value.starts_with(b"up") {
            FilterDecision::Change(value.to_ascii_uppercase())
        } else {
            FilterDecision::Keep
        }
    }
}

#[test]
fn a_compaction_filter_removes_and_changes_values_but_never_what_a_snapshot_reads() {
    let fs = MemFs::new();
    let clock = Arc::new(ManualClock::new(START));
    let db = builder(&fs, &clock)
        .compaction_filter(Scrub)
        .open()
        .unwrap();
    db.put("a", "keep-me").unwrap();
    db.put("b", "old-b").unwrap();
    let snap = db.snapshot();
    db.put("b", "drop-b").unwrap();
    db.put("c", "drop-c").unwrap();
    db.put_with_ttl("d", "up-d", secs(100)).unwrap();
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    // The latest state: removed ones are gone (a tombstone hides b's older value),
    // changed ones changed (d keeps its expiry).
    assert_eq!(db.get("a").unwrap().as_deref(), Some(&b"keep-me"[..]));
    assert_eq!(db.get("b").unwrap(), None);
    assert_eq!(db.get("c").unwrap(), None);
    assert_eq!(db.get("d").unwrap().as_deref(), Some(&b"UP-D"[..]));
    // The snapshot still reads what it read: the filter never saw its values.
    assert_eq!(snap.get("b").unwrap().as_deref(), Some(&b"old-b"[..]));
    assert_eq!(snap.get("a").unwrap().as_deref(), Some(&b"keep-me"[..]));
    clock.advance(100_000);
    assert_eq!(db.get("d").unwrap(), None);
    drop(snap);
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(table_entries(&db), 1);
    assert_eq!(collect(db.iter()), [(b"a".to_vec(), b"keep-me".to_vec())]);
}

#[test]
fn merges_fold_onto_a_value_while_it_lives_and_onto_nothing_after_whatever_compaction_does() {
    struct Concat;
    impl MergeOperator for Concat {
        fn name(&self) -> &str {
            "concat"
        }
        fn merge(&self, _: &[u8], existing: Option<&[u8]>, ops: &[&[u8]]) -> Option<Vec<u8>> {
            let mut v = existing.unwrap_or_default().to_vec();
            ops.iter().for_each(|o| v.extend_from_slice(o));
            Some(v)
        }
    }
    let fs = MemFs::new();
    let clock = Arc::new(ManualClock::new(START));
    let db = builder(&fs, &clock).merge_operator(Concat).open().unwrap();
    db.put_with_ttl("k", "base", secs(10)).unwrap();
    db.merge("k", "+1").unwrap();
    db.flush().unwrap();
    db.merge("k", "+2").unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"base+1+2"[..]));
    // Compacting while the value lives must not fold the operands into it for good.
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"base+1+2"[..]));
    clock.advance(10_000);
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"+1+2"[..]));
    assert_eq!(
        collect(db.iter().rev()),
        [(b"k".to_vec(), b"+1+2".to_vec())]
    );
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"+1+2"[..]));
    assert_eq!(table_entries(&db), 1);
}

#[test]
fn a_value_at_the_size_limit_takes_a_time_to_live_and_a_zero_one_is_gone_at_once() {
    let db = DbBuilder::in_memory().max_value_bytes(64).open().unwrap();
    db.put_with_ttl("k", [7u8; 64], secs(60)).unwrap();
    assert_eq!(db.get("k").unwrap().map(|v| v.len()), Some(64));
    assert!(db.put_with_ttl("k", [7u8; 65], secs(60)).is_err());
    db.put_with_ttl("gone", "v", Duration::ZERO).unwrap();
    assert_eq!(db.get("gone").unwrap(), None);
}

#[test]
fn periodic_compaction_reclaims_expired_values_of_a_database_that_no_longer_writes() {
    let fs = MemFs::new();
    let clock = Arc::new(ManualClock::new(START));
    let db = builder(&fs, &clock)
        .periodic_compaction(secs(3600))
        .open()
        .unwrap();
    for i in 0..300 {
        db.put_with_ttl(format!("k{i:03}"), "v", secs(60)).unwrap();
    }
    db.put("plain", "stays").unwrap();
    db.flush().unwrap();
    db.wait_for_compaction().unwrap();
    let before = table_entries(&db);
    assert!(before > 300, "{before}");
    // Expired, but the tables are younger than the periodic age: nothing to do yet.
    clock.advance(60_000);
    db.wait_for_compaction().unwrap();
    assert_eq!(table_entries(&db), before);
    assert_eq!(collect(db.iter()).len(), 1);
    // Once they are older than it, compaction reaches them without a write.
    clock.advance(3_600_000);
    db.wait_for_compaction().unwrap();
    assert_eq!(table_entries(&db), 1);
    assert_eq!(collect(db.iter()), [(b"plain".to_vec(), b"stays".to_vec())]);
    // The rewritten table is new: no more periodic work until it ages again.
    let compactions = db.stats().compactions;
    db.wait_for_compaction().unwrap();
    assert_eq!(db.stats().compactions, compactions);
}
