use std::path::Path;
use std::sync::Arc;

use strata::{Db, DbBuilder, Error, WriteBatch, WriteOptions};
use strata_core::{FileSystem, MemFs};

use crate::{collect, open_mem, tiny};

#[test]
fn put_get_delete_survive_reopen_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("a", "1").unwrap();
    db.put("b", "2").unwrap();
    db.delete("a").unwrap();
    assert_eq!(db.get("a").unwrap(), None);
    assert_eq!(db.get("b").unwrap().as_deref(), Some(&b"2"[..]));
    db.close().unwrap();

    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.get("a").unwrap(), None);
    assert_eq!(db.get("b").unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn writes_survive_a_drop_without_close() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    for i in 0..500u32 {
        db.put(format!("key{i:05}"), format!("value{i}")).unwrap();
    }
    drop(db);
    let db = open_mem(&fs);
    for i in 0..500u32 {
        assert_eq!(
            db.get(format!("key{i:05}")).unwrap().unwrap(),
            format!("value{i}").as_bytes()
        );
    }
    assert!(
        db.stats().levels.iter().skip(1).any(|l| l.files > 0),
        "{:?}",
        db.stats().levels
    );
}

#[test]
fn a_second_opener_is_refused_with_locked() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert!(matches!(Db::open(dir.path()), Err(Error::Locked { .. })));
    db.close().unwrap();
    Db::open(dir.path()).unwrap();
}

#[test]
fn a_directory_that_is_not_a_database_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let err = Db::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("not a Strata database"), "{err}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["notes.txt"]);
}

#[test]
fn oversized_keys_and_values_are_refused_and_nothing_is_written() {
    let fs = MemFs::new();
    let db = tiny(Db::builder(Path::new("/db")))
        .file_system(Arc::new(fs.clone()))
        .max_key_bytes(8)
        .max_value_bytes(16)
        .open()
        .unwrap();
    let mut batch = WriteBatch::new();
    batch.put("ok", "fine").put("too-long-key", "x");
    assert!(matches!(
        db.write(batch, WriteOptions::default()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.put("k", [0u8; 17]),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(
        db.get("ok").unwrap(),
        None,
        "a refused batch applies nothing"
    );
    db.put("k", [0u8; 16]).unwrap();
}

#[test]
fn a_newer_manifest_version_is_not_supported_and_nothing_is_touched() {
    let fs = MemFs::new();
    open_mem(&fs).close().unwrap();
    // A well-formed manifest (valid checksums) from a future format: tag 1 = the next
    // version.
    let manifest = Path::new("/db/MANIFEST-000999");
    let mut log = strata_wal::LogWriter::new(
        fs.create(manifest).unwrap(),
        strata_wal::SyncPolicy::EveryWrite,
    );
    let newer = strata::inspect::MANIFEST_FORMAT_VERSION + 1;
    log.add_record(&[1, newer as u8]).unwrap();
    drop(log);
    fs.write_file(Path::new("/db/CURRENT"), b"MANIFEST-000999\n".to_vec());
    let before = fs.list(Path::new("/db")).unwrap();
    let err = tiny(Db::builder("/db"))
        .file_system(Arc::new(fs.clone()))
        .open()
        .unwrap_err();
    assert!(matches!(err, Error::NotSupported(_)), "{err}");
    assert!(
        err.to_string().contains(&format!("version {newer}")),
        "{err}"
    );
    assert_eq!(fs.list(Path::new("/db")).unwrap(), before);
}

#[test]
fn a_damaged_current_file_is_corruption() {
    let fs = MemFs::new();
    open_mem(&fs).close().unwrap();
    fs.write_file(Path::new("/db/CURRENT"), b"garbage".to_vec());
    let err = tiny(Db::builder("/db"))
        .file_system(Arc::new(fs.clone()))
        .open()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, .. } if file.ends_with("CURRENT")),
        "{err}"
    );
    fs.write_file(Path::new("/db/CURRENT"), b"MANIFEST-000777\n".to_vec());
    let err = tiny(Db::builder("/db"))
        .file_system(Arc::new(fs))
        .open()
        .unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn batches_are_atomic_and_ordered() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    let mut batch = WriteBatch::new();
    batch.put("x", "1").put("x", "2").delete("y").put("z", "3");
    db.write(batch, WriteOptions { sync: true }).unwrap();
    assert_eq!(db.get("x").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(collect(db.iter()).len(), 2);
}

#[test]
fn iterators_respect_bounds_prefixes_and_direction() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    for k in ["a", "ab", "abc", "b", "b\u{ff}", "c"] {
        db.put(k, k.to_uppercase()).unwrap();
    }
    db.delete("abc").unwrap();
    let keys = |it: strata::DbIter| {
        collect(it)
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(db.prefix("a")), ["a", "ab"]);
    assert_eq!(keys(db.range("ab".."c")), ["ab", "b", "b\u{ff}"]);
    assert_eq!(keys(db.range("ab"..="c")), ["ab", "b", "b\u{ff}", "c"]);
    let rev: Vec<_> = db.range("a".."c").rev().map(|kv| kv.unwrap().0).collect();
    assert_eq!(rev, ["b\u{ff}", "b", "ab", "a"]);
    let mut both = db.iter();
    assert_eq!(&both.next().unwrap().unwrap().0[..], b"a");
    assert_eq!(&both.next_back().unwrap().unwrap().0[..], b"c");
    assert_eq!(both.count(), 3);
}

#[test]
fn snapshots_see_the_past() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    db.put("k", "old").unwrap();
    let snap = db.snapshot();
    db.put("k", "new").unwrap();
    db.delete("gone").unwrap();
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(snap.get("k").unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(collect(snap.iter()), [(b"k".to_vec(), b"old".to_vec())]);
}

#[test]
fn compaction_removes_obsolete_files_and_reclaims_deletes() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    for round in 0..4 {
        for i in 0..200u32 {
            db.put(format!("k{i:04}"), format!("round{round}-{i}"))
                .unwrap();
        }
    }
    for i in 0..200u32 {
        db.delete(format!("k{i:04}")).unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    let stats = db.stats();
    assert_eq!(collect(db.iter()).len(), 0);
    let tombstones: u64 = stats.levels.iter().map(|l| l.tombstones).sum();
    let entries: u64 = stats.levels.iter().map(|l| l.entries).sum();
    assert_eq!((entries, tombstones), (0, 0), "{stats:?}");
    drop(db);
    let live_tables = fs
        .list(Path::new("/db"))
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".sst"))
        .count();
    assert_eq!(live_tables, 0);
}

#[test]
fn inspect_reads_back_the_manifest_and_the_wal() {
    let fs = MemFs::new();
    let dir = Path::new("/db");
    // A MemTable that holds the last two writes: with `tiny`'s, each write is frozen
    // and flushed at once, and its log may be gone before it is read (seen under load).
    let db = tiny(Db::builder(dir))
        .memtable_bytes(1 << 20)
        .file_system(Arc::new(fs.clone()))
        .open()
        .unwrap();
    for i in 0..300u32 {
        db.put(format!("k{i:04}"), [b'v'; 40]).unwrap();
    }
    db.flush().unwrap();
    db.put("last", "one").unwrap();
    db.delete("k0000").unwrap();
    // The live WALs, read while the database is open (as a crash would leave them).
    let mut wals: Vec<(u64, String)> = fs
        .list(dir)
        .unwrap()
        .into_iter()
        .filter_map(|n| match strata::inspect::classify(&n) {
            Some(strata::inspect::FileKind::Wal(number)) => Some((number, n)),
            _ => None,
        })
        .collect();
    wals.sort();
    let mut entries = Vec::new();
    for (_, name) in wals {
        // A flush may delete an older log between the listing and here (seen in CI
        // under load): its entries are in a table, and the newest ones are not in it.
        let file = match fs.open(&dir.join(&name)) {
            Ok(file) => file,
            Err(_) if !fs.exists(&dir.join(&name)).unwrap() => continue,
            Err(e) => panic!("{e}"),
        };
        let mut reader = strata_wal::LogReader::new(file, strata_wal::RecoveryMode::Absolute);
        while let Some(r) = reader.next_record().unwrap() {
            entries.extend(strata::inspect::decode_wal_batch(&r.data).unwrap());
        }
    }
    // Older logs may still await deletion by the flush thread: look at the newest entries.
    let entries = &entries[entries.len() - 2..];
    let keys: Vec<_> = entries.iter().map(|e| (e.key.clone(), e.kind)).collect();
    assert_eq!(
        keys,
        [
            (b"last".to_vec(), strata::inspect::BatchOp::Put),
            (b"k0000".to_vec(), strata::inspect::BatchOp::Delete)
        ]
    );
    assert_eq!(entries[1].seq, entries[0].seq + 1);
    assert!(strata::inspect::decode_wal_batch(&[0xff]).is_err());
    db.close().unwrap();

    let manifest = strata::inspect::current_manifest(&fs, dir).unwrap();
    let (records, _end) = strata::inspect::read_manifest(&fs, &manifest).unwrap();
    assert_eq!(
        records[0].edit.format_version,
        Some(strata::inspect::MANIFEST_FORMAT_VERSION)
    );
    let live: Vec<usize> = strata::inspect::live_files(&records)
        .iter()
        .map(Vec::len)
        .collect();
    // Reopened with compaction effectively off, the engine sees the same tree.
    let db = tiny(Db::builder(dir))
        .file_system(Arc::new(fs.clone()))
        .l0_compaction_trigger(1000)
        .idle_compaction(None)
        .level_base_bytes(1 << 40)
        .open()
        .unwrap();
    let counts: Vec<usize> = db.stats().levels.iter().map(|l| l.files).collect();
    assert_eq!(live, counts);
    assert!(live.iter().sum::<usize>() > 0);
}

#[test]
fn the_table_cache_bounds_open_tables() {
    let fs = MemFs::new();
    let db = tiny(Db::builder(Path::new("/db")))
        .file_system(Arc::new(fs.clone()))
        .max_open_files(2)
        .l0_compaction_trigger(1000)
        .idle_compaction(None)
        .open()
        .unwrap();
    for i in 0..400u32 {
        db.put(format!("k{i:04}"), [b'v'; 60]).unwrap();
    }
    db.flush().unwrap();
    let files: usize = db.stats().levels.iter().map(|l| l.files).sum();
    assert!(files > 2, "{files} tables");
    for i in 0..400u32 {
        assert!(db.get(format!("k{i:04}")).unwrap().is_some());
    }
    assert_eq!(collect(db.iter()).len(), 400);
    let stats = db.stats();
    assert!(stats.open_tables <= 2, "{} open", stats.open_tables);
    assert!(stats.space_amplification() >= 1.0);
}

#[test]
fn unknown_files_in_a_database_directory_are_left_alone() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    db.put("k", "v").unwrap();
    db.close().unwrap();
    for stray in [".DS_Store", "MANIFEST-old", "notes.txt", "12x.sst"] {
        fs.write_file(&Path::new("/db").join(stray), b"not ours".to_vec());
    }
    let db = open_mem(&fs);
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    db.put("k", "v2").unwrap();
    db.close().unwrap();
    let names = fs.list(Path::new("/db")).unwrap();
    for stray in [".DS_Store", "MANIFEST-old", "notes.txt", "12x.sst"] {
        assert!(names.iter().any(|n| n == stray), "{stray} was removed");
    }
}

#[test]
fn sequence_numbers_continue_past_everything_recovered() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    db.put("k", "first").unwrap();
    let before = db.snapshot().sequence();
    drop(db); // no close: the WAL is replayed at open
    let db = open_mem(&fs);
    assert!(db.snapshot().sequence() >= before);
    db.put("k", "second").unwrap();
    assert!(db.snapshot().sequence() > before);
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"second"[..]));
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"second"[..]));
}

#[test]
fn synced_writes_go_to_preallocated_wal_space_and_a_crash_copy_recovers_them() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("db");
    let db = Db::open(&live).unwrap();
    let sync = WriteOptions { sync: true };
    for i in 0..200u32 {
        let mut batch = WriteBatch::new();
        batch.put(format!("key{i:04}"), format!("value{i}"));
        db.write(batch, sync).unwrap();
    }
    // What a power loss right now would leave: the synced files as they are, the
    // live WAL with zeros ahead of its last record.
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    let mut wal_len = 0;
    for entry in std::fs::read_dir(&live).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name == "LOCK" {
            continue;
        }
        if name.ends_with(".log") {
            wal_len = wal_len.max(entry.metadata().unwrap().len());
        }
        std::fs::copy(entry.path(), copy.join(&name)).unwrap();
    }
    assert!(
        wal_len >= 1 << 20,
        "the WAL was preallocated ({wal_len} bytes)"
    );
    let recovered = Db::open(&copy).unwrap();
    for i in 0..200u32 {
        assert_eq!(
            recovered.get(format!("key{i:04}")).unwrap().as_deref(),
            Some(format!("value{i}").as_bytes())
        );
    }
    db.close().unwrap();
}

/// Scans in both directions and from any start see exactly the keys that many range
/// tombstones leave, whether the tombstones are in the MemTable or in a table (the
/// iterator remembers where the last key fell among each set's tombstones).
#[test]
fn scans_over_many_range_tombstones_see_exactly_the_survivors() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    let key = |i: u32| format!("k{i:05}");
    for i in 0..3000u32 {
        db.put(key(i), "v").unwrap();
    }
    db.flush().unwrap();
    // Every other run of 7 keys, plus a few overlapping ranges.
    for r in (0..3000u32).step_by(14) {
        db.delete_range(key(r)..key(r + 7)).unwrap();
    }
    db.delete_range(key(1000)..key(1100)).unwrap();
    db.delete_range(key(1050)..key(1200)).unwrap();
    let alive = |i: u32| i % 14 >= 7 && !(1000..1200).contains(&i);
    let survivors: Vec<String> = (0..3000).filter(|&i| alive(i)).map(key).collect();
    fn keys<V>(it: impl Iterator<Item = Result<(bytes::Bytes, V), Error>>) -> Vec<String> {
        it.map(|kv| String::from_utf8(kv.unwrap().0.to_vec()).unwrap())
            .collect()
    }
    for flushed in [false, true] {
        if flushed {
            db.flush().unwrap();
        }
        assert_eq!(keys(db.iter()), survivors, "flushed {flushed}");
        let mut back = keys(db.iter().rev());
        back.reverse();
        assert_eq!(back, survivors, "flushed {flushed}");
        for start in [0u32, 3, 7, 13, 14, 999, 1000, 1150, 1199, 1200, 2990] {
            let want: Vec<String> = (start..3000).filter(|&i| alive(i)).map(key).collect();
            assert_eq!(keys(db.range(key(start)..)), want, "from {start}");
            let mut want_back: Vec<String> = (0..start).filter(|&i| alive(i)).map(key).collect();
            want_back.reverse();
            assert_eq!(
                keys(db.range(..key(start)).rev()),
                want_back,
                "below {start}"
            );
        }
    }
}

#[test]
fn a_damaged_older_table_fails_only_the_lookups_that_reach_it() {
    let fs = MemFs::new();
    // Default sizes: each flush below writes one table (the tiny MemTable of
    // `open_mem` would freeze after every put).
    let open = || {
        Db::builder("/db")
            .file_system(Arc::new(fs.clone()))
            .open()
            .unwrap()
    };
    let db = open();
    // Two L0 tables (two flushes, under the compaction trigger): the older spans
    // "a".."z", the newer holds "m" alone.
    db.put("a", "old-a").unwrap();
    db.put("z", "old-z").unwrap();
    db.flush().unwrap();
    let older: Vec<_> = fs
        .list(Path::new("/db"))
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".sst"))
        .collect();
    assert_eq!(older.len(), 1, "{older:?}");
    let l0_before = db.stats().levels[0].files;
    db.put("m", "new-m").unwrap();
    db.flush().unwrap();
    assert_eq!(db.stats().levels[0].files, l0_before + 1);
    db.close().unwrap();

    // The older tables' footers are overwritten: they can no longer be opened.
    for name in &older {
        let path = Path::new("/db").join(name);
        let mut bytes = fs.read_file(&path).unwrap();
        let n = bytes.len();
        bytes[n - 16..].fill(0xAB);
        fs.write_file(&path, bytes);
    }

    let db = open();
    // "m" lies in both tables' ranges; the newer answers first, so the damaged table
    // (opened ahead of time to load its filter) must not turn the read into an error.
    assert_eq!(db.get("m").unwrap().as_deref(), Some(&b"new-m"[..]));
    // "a" is only in the damaged table's range: the read reports the damage.
    let err = db.get("a").unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

/// Tables are read through a memory map by default; one shortened by someone else while
/// the database has it open must give Corruption naming it, not kill the process.
#[test]
fn a_table_shortened_while_mapped_is_corruption_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    // No block cache: every read goes to the file (through the mapping).
    let db = Db::builder(dir.path()).block_cache_bytes(0).open().unwrap();
    for i in 0..20_000u32 {
        db.put(format!("key{i:06}"), [b'v'; 100]).unwrap();
    }
    db.flush().unwrap();
    assert_eq!(
        db.get("key000123").unwrap().as_deref(),
        Some(&[b'v'; 100][..])
    );
    let table = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sst"))
        .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&table)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let err = db.get("key019999").unwrap_err();
    match &err {
        Error::Corruption { file, .. } => assert_eq!(file, &table),
        other => panic!("{other}"),
    }
    // Without the mapping, the same damage is an error too (a short read).
    drop(db);
    let db = Db::builder(dir.path()).mmap_reads(false).open().unwrap();
    assert!(db.get("key019999").is_err());
}

/// Polls `done` every 10 ms for up to 30 s (background work on a loaded machine).
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    done()
}

/// Three overlapping level-0 tables, well under the compaction trigger, reopened with
/// `idle`. (Written with idle compaction off: a pause between two flushes on a loaded
/// machine would otherwise merge the first two before the third exists.)
fn three_level_zero_tables(idle: Option<std::time::Duration>) -> Db {
    let fs = MemFs::new();
    let open = |idle| {
        Db::builder(Path::new("/db"))
            .file_system(Arc::new(fs.clone()))
            .l0_compaction_trigger(100)
            .idle_compaction(idle)
            .open()
            .unwrap()
    };
    let db = open(None);
    for round in 0..3 {
        for i in 0..100 {
            db.put(format!("k{:03}", i * 3 + round), format!("v{round}"))
                .unwrap();
        }
        db.flush().unwrap();
    }
    db.close().unwrap();
    open(idle)
}

/// A database that stops writing gets its level-0 tables merged into one sorted level
/// below; with idle compaction off they stay until the trigger.
#[test]
fn an_idle_database_merges_its_level_zero_tables() {
    let db = three_level_zero_tables(Some(std::time::Duration::from_millis(50)));
    assert!(eventually(|| db.stats().levels[0].files == 0));
    let stats = db.stats();
    assert_eq!(stats.idle_compactions, 1);
    assert!(stats.levels[1..].iter().any(|l| l.files > 0));
    assert_eq!(stats.levels.iter().map(|l| l.entries).sum::<u64>(), 300);
    let all = collect(db.iter());
    assert_eq!(all.len(), 300);
    for (i, (k, v)) in all.iter().enumerate() {
        assert_eq!(k, format!("k{i:03}").as_bytes());
        assert_eq!(v, format!("v{}", i % 3).as_bytes());
    }

    let off = three_level_zero_tables(None);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let stats = off.stats();
    assert_eq!(stats.levels[0].files, 3);
    assert_eq!(stats.idle_compactions, 0);
}

/// Writes, however small, keep a database from counting as idle: the level-0
/// compaction waits for them to stop.
#[test]
fn writes_hold_the_idle_compaction_back() {
    let db = three_level_zero_tables(Some(std::time::Duration::from_secs(1)));
    let until = std::time::Instant::now() + std::time::Duration::from_millis(2500);
    let mut i = 0;
    while std::time::Instant::now() < until {
        db.put(format!("w{i:05}"), "v").unwrap();
        i += 1;
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stats = db.stats();
    assert_eq!(stats.idle_compactions, 0);
    assert_eq!(stats.levels[0].files, 3);
    assert!(eventually(|| db.stats().idle_compactions == 1));
    assert!(eventually(|| db.stats().levels[0].files == 0));
    assert_eq!(db.get("k150").unwrap().as_deref(), Some(&b"v0"[..]));
}

/// Level-0 tables of a sequential load overlap nothing: the idle compaction moves them
/// down without rewriting a byte (until one is left).
#[test]
fn an_idle_compaction_moves_disjoint_tables_without_rewriting_them() {
    let db = DbBuilder::in_memory()
        .l0_compaction_trigger(100)
        .idle_compaction(Some(std::time::Duration::from_millis(50)))
        .open()
        .unwrap();
    for round in 0..3 {
        for i in 0..100 {
            db.put(format!("k{round}{i:03}"), "v").unwrap();
        }
        db.flush().unwrap();
    }
    assert!(eventually(|| db.stats().levels[0].files == 1));
    db.wait_for_compaction().unwrap();
    let stats = db.stats();
    assert_eq!(stats.idle_compactions, 2);
    assert_eq!(stats.trivial_moves, 2);
    assert_eq!((stats.compactions, stats.compaction_bytes_written), (0, 0));
    assert_eq!(collect(db.iter()).len(), 300);
}
