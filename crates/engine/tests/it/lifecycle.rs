//! Closing, the empty path, and waiting for background work.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::{Db, Error, ErrorKind, WriteBatch, WriteOptions};
use strata_core::{FileSystem, MemFs};

use crate::{open_mem, tiny};

fn is_closed<T: std::fmt::Debug>(what: &str, r: strata::Result<T>) {
    match r {
        Err(Error::Closed) => {}
        other => panic!("{what} after close: {other:?}, not Closed"),
    }
}

/// After `close` on one clone, every call on every other clone fails with `Closed`,
/// iterators and snapshots taken before included, even when a later opener of the
/// same directory has rewritten it (no stale values).
#[test]
fn after_close_every_call_on_every_clone_fails_with_closed() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    for i in 0..100 {
        db.put(format!("k{i:03}"), "old").unwrap();
    }
    db.flush().unwrap();
    db.put("in-mem", "old").unwrap();
    let other = db.clone();
    let snapshot = other.snapshot();
    let mut open_iter = other.iter();
    assert!(open_iter.next().unwrap().is_ok());
    let mut open_back = other.iter();
    assert!(open_back.next_back().unwrap().is_ok());
    db.close().unwrap();

    // Another handle rewrites and compacts every key, replacing the files the old
    // handle's iterators had pinned.
    let again = open_mem(&fs);
    for i in 0..100 {
        again.put(format!("k{i:03}"), "new").unwrap();
    }
    again.compact_range::<&[u8], _>(..).unwrap();

    is_closed("get", other.get("k000"));
    is_closed("get of a MemTable key", other.get("in-mem"));
    is_closed("put", other.put("k000", "x"));
    is_closed("delete", other.delete("k000"));
    let mut batch = WriteBatch::new();
    batch.put("k", "v");
    is_closed("write", other.write(batch, WriteOptions::default()));
    is_closed(
        "empty write",
        other.write(WriteBatch::new(), WriteOptions::default()),
    );
    is_closed(
        "empty synced write",
        other.write(WriteBatch::new(), WriteOptions { sync: true }),
    );
    is_closed("flush", other.flush());
    is_closed("compact_range", other.compact_range::<&[u8], _>(..));
    is_closed("sync_wal", other.sync_wal());
    is_closed("wait_for_compaction", other.wait_for_compaction());
    for (what, mut it) in [
        ("new iterator", other.iter()),
        ("new prefix iterator", other.prefix("k")),
        ("new snapshot iterator", other.snapshot().iter()),
        ("iterator open at close", open_iter),
        ("snapshot iterator taken before close", snapshot.iter()),
    ] {
        is_closed(what, it.next().unwrap());
        assert!(it.next().is_none(), "{what} ends after Closed");
    }
    is_closed(
        "reverse iterator open at close",
        open_back.next_back().unwrap(),
    );
    is_closed(
        "reverse iterator",
        other.range("a".."z").next_back().unwrap(),
    );
    is_closed("snapshot get", snapshot.get("k000"));
    assert_eq!(
        Error::Closed.kind(),
        ErrorKind::Closed,
        "callers can match the kind"
    );

    // Closing again, on any clone, is refused the same way.
    is_closed("second close", other.clone().close());
    is_closed("close of the last clone", other.close());

    // The new handle is unaffected.
    assert_eq!(again.get("k000").unwrap().as_deref(), Some(&b"new"[..]));
    again.close().unwrap();
}

/// An empty path is refused before the file system is touched: no `LOCK` (or
/// anything else) appears in the current directory.
#[test]
fn an_empty_path_is_refused_before_touching_anything() {
    let fs = MemFs::new();
    let err = Db::builder("")
        .file_system(Arc::new(fs.clone()))
        .open()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    for name in ["LOCK", "CURRENT"] {
        assert!(!fs.exists(Path::new(name)).unwrap(), "{name} was created");
    }
    assert!(
        fs.list(Path::new(""))
            .map_or(true, |names| names.is_empty()),
        "the current directory was touched"
    );
    // The real file system too (nothing is created, so running in the test's current
    // directory is harmless).
    assert_eq!(Db::open("").unwrap_err().kind(), ErrorKind::InvalidArgument);
}

/// `wait_for_compaction` returns once flushes and compactions are done: nothing
/// changes afterwards, level 0 is below its trigger; when already idle it returns at
/// once.
#[test]
fn wait_for_compaction_returns_when_background_work_is_idle() {
    let fs = MemFs::new();
    let db = tiny(Db::builder(Path::new("/db")))
        .file_system(Arc::new(fs.clone()))
        // Above the MemTable's first 64 KiB arena chunk, so each holds hundreds of
        // writes and flushes overlap (real compactions, not only trivial moves).
        .memtable_bytes(100 << 10)
        .max_frozen_memtables(8)
        .open()
        .unwrap();
    let value = vec![b'v'; 200];
    for i in 0..5000u32 {
        // Spread over the key space so every table overlaps the others.
        db.put(format!("key{:05}", (i * 7919) % 5000), &value)
            .unwrap();
    }
    db.wait_for_compaction().unwrap();
    let settled = db.stats();
    assert!(settled.flushes >= 5, "{settled:?}");
    assert!(settled.compactions >= 2, "{settled:?}");
    assert!(
        settled.levels[0].files < 2,
        "{} L0 files over the trigger",
        settled.levels[0].files
    );
    std::thread::sleep(Duration::from_millis(200));
    let later = db.stats();
    assert_eq!(
        (later.flushes, later.compactions, later.trivial_moves),
        (settled.flushes, settled.compactions, settled.trivial_moves),
        "background work went on after the wait"
    );
    let levels = |s: &strata::DbStats| s.levels.iter().map(|l| l.files).collect::<Vec<_>>();
    assert_eq!(levels(&later), levels(&settled));

    let start = Instant::now();
    db.wait_for_compaction().unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(50),
        "an idle wait took {:?}",
        start.elapsed()
    );
    db.close().unwrap();
}
