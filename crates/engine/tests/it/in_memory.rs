//! `DbBuilder::in_memory` and the crate-root re-exports, used only through `strata::`
//! (no `strata_core` or `bytes` import), as a user without those dependencies would.

use std::sync::Arc;

use strata::{Bytes, Db, DbBuilder, Error, FileSystem, MemFs, WriteBatch, WriteOptions};

fn total_files(db: &Db) -> usize {
    db.stats().levels.iter().map(|l| l.files).sum()
}

#[test]
fn an_in_memory_database_works_end_to_end() {
    // Small MemTables so writes go through flushes and compactions, i.e. through
    // table files written to and read back from the in-memory file system.
    let db = DbBuilder::in_memory()
        .memtable_bytes(4 << 10)
        .table_file_bytes(8 << 10)
        .l0_compaction_trigger(2)
        .open()
        .unwrap();
    for i in 0..2_000u32 {
        db.put(format!("key{i:05}"), format!("value{i}")).unwrap();
    }
    let mut batch = WriteBatch::new();
    batch.put("key00000", "replaced").delete("key00001");
    db.write(batch, WriteOptions { sync: true }).unwrap();
    db.flush().unwrap();
    db.wait_for_compaction().unwrap();
    assert!(total_files(&db) > 0, "the flush wrote no table");

    let value: Bytes = db.get("key00000").unwrap().unwrap();
    assert_eq!(value, "replaced");
    assert_eq!(db.get("key00001").unwrap(), None);
    assert_eq!(
        db.get("key01999").unwrap().as_deref(),
        Some(&b"value1999"[..])
    );
    assert_eq!(db.prefix("key").count(), 1_999);
    let (last_key, _) = db.iter().next_back().unwrap().unwrap();
    assert_eq!(last_key, "key01999");
    db.close().unwrap();
}

#[test]
fn two_in_memory_databases_are_independent() {
    // Both are open at once under the same internal path: if they shared a file
    // system, the second open would fail on the first one's lock.
    let a = DbBuilder::in_memory().open().unwrap();
    let b = DbBuilder::in_memory().open().unwrap();
    a.put("k", "from a").unwrap();
    a.put("only-in-a", "1").unwrap();
    b.put("k", "from b").unwrap();
    for db in [&a, &b] {
        db.flush().unwrap();
    }
    assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"from a"[..]));
    assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"from b"[..]));
    assert_eq!(b.get("only-in-a").unwrap(), None);
    assert_eq!(a.iter().count(), 2);
    assert_eq!(b.iter().count(), 1);

    // Closing one leaves the other usable.
    let a_clone = a.clone();
    a.close().unwrap();
    assert!(matches!(a_clone.get("k"), Err(Error::Closed)));
    assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"from b"[..]));
}

#[test]
fn a_shared_mem_fs_keeps_the_data_across_reopen() {
    let fs = MemFs::new();
    let open = || {
        Db::builder("/db")
            .file_system(Arc::new(fs.clone()))
            .open()
            .unwrap()
    };
    let db = open();
    db.put("k", "v").unwrap();
    db.close().unwrap();
    // The re-exported trait is the one the builder takes: its files are visible here.
    assert!(FileSystem::exists(&fs, "/db/CURRENT".as_ref()).unwrap());

    let db = open();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
}
