//! `Db::sync_wal` and the empty synced write: what they make durable against a power
//! loss, and what a failed sync does.

use strata::{Db, Error, ErrorKind, WriteBatch, WriteOptions};
use strata_faultfs::{CrashOptions, Fault, FaultFs, OpKind};

/// Whether an unsynced write survives a power loss that strikes after `then` ran.
fn survives_power_loss(then: impl Fn(&Db)) -> bool {
    let fs = FaultFs::new();
    // Roomy: the write stays in the live WAL (no rotation, no flush to a table).
    let db = crate::open(&fs, true).unwrap();
    db.put("k", "unsynced").unwrap();
    then(&db);
    let after = fs.crash(&CrashOptions::power_loss());
    drop(db);
    let db = crate::open(&after, true).unwrap();
    db.get("k").unwrap().is_some()
}

#[test]
fn sync_wal_and_an_empty_synced_write_make_earlier_writes_durable() {
    assert!(
        !survives_power_loss(|_| {}),
        "without a sync the write is lost (else this test shows nothing)"
    );
    assert!(survives_power_loss(|db| db.sync_wal().unwrap()));
    assert!(survives_power_loss(|db| {
        db.write(WriteBatch::new(), WriteOptions { sync: true })
            .unwrap()
    }));
    assert!(
        !survives_power_loss(|db| db
            .write(WriteBatch::new(), WriteOptions::default())
            .unwrap()),
        "an empty unsynced write syncs nothing"
    );
}

/// Writes spread over several rotated-out WALs (one per write group) all become
/// durable: `sync_wal` syncs the closed logs, not only the live one.
#[test]
fn sync_wal_covers_rotated_out_wals() {
    let fs = FaultFs::new();
    let db = crate::open(&fs, false).unwrap();
    for i in 0..20 {
        db.put(format!("k{i:02}"), "v").unwrap();
    }
    db.sync_wal().unwrap();
    let after = fs.crash(&CrashOptions::power_loss());
    drop(db);
    let db = crate::open(&after, false).unwrap();
    for i in 0..20 {
        assert!(db.get(format!("k{i:02}")).unwrap().is_some(), "k{i:02}");
    }
}

#[test]
fn sync_wal_counts_one_fsync_and_none_when_nothing_is_unsynced() {
    let fs = FaultFs::new();
    let db = crate::open(&fs, true).unwrap();
    db.put("k", "v").unwrap();
    let before = db.stats().wal_syncs;
    let log_syncs = || {
        fs.ops()
            .iter()
            .filter(|o| o.kind == OpKind::Sync && o.path.to_string_lossy().ends_with(".log"))
            .count()
    };
    let synced_before = log_syncs();
    db.sync_wal().unwrap();
    assert_eq!(db.stats().wal_syncs, before + 1);
    assert_eq!(log_syncs(), synced_before + 1);
    db.sync_wal().unwrap();
    db.write(WriteBatch::new(), WriteOptions { sync: true })
        .unwrap();
    assert_eq!(db.stats().wal_syncs, before + 1, "nothing new to sync");
    assert_eq!(log_syncs(), synced_before + 1);
}

/// A failed fsync may have dropped the data: `sync_wal` reports it and the database
/// refuses every later write, even once the device works again.
#[test]
fn a_failed_sync_wal_poisons_the_database() {
    let fs = FaultFs::new();
    let db = crate::open(&fs, true).unwrap();
    db.put("k", "v").unwrap();
    fs.inject(Fault::when(|op| {
        op.kind == OpKind::Sync && op.path.to_string_lossy().ends_with(".log")
    }));
    let e = db.sync_wal().unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    fs.clear_faults();
    for r in [
        db.sync_wal(),
        db.write(WriteBatch::new(), WriteOptions { sync: true }),
        db.put("k2", "v"),
    ] {
        match r {
            Err(e @ Error::Poisoned { .. }) => assert_eq!(e.kind(), ErrorKind::Io),
            other => panic!("{other:?}"),
        }
    }
}
