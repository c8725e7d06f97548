//! Checkpoints and backups through the public API: consistency under concurrent
//! writers, flushes and compactions (checked exactly against a per-writer model),
//! incremental copying, restore, verification and damage.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use strata::backup::Backup;
use strata::{Db, ErrorKind};
use strata_core::{FileSystem, MemFs};

use crate::{collect, open_mem, tiny};

const WRITERS: usize = 3;
/// Keys per writer: writer `w`'s `n`-th write (from 1) sets key `n % SLOTS` to `n`.
const SLOTS: u64 = 50;

fn key(w: usize, slot: u64) -> Vec<u8> {
    format!("w{w}-{slot:03}").into_bytes()
}

/// Writer `w`'s keys after its first `p` writes: slot `j` holds the last `n <= p` with
/// `n % SLOTS == j`.
fn writer_state(w: usize, p: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    (p.saturating_sub(SLOTS - 1).max(1)..=p)
        .map(|n| (key(w, n % SLOTS), n.to_string().into_bytes()))
        .collect()
}

/// Checks that `got` (a whole database's contents) is exactly the state after some
/// prefix of each writer's writes, each at least `acked_before[w]` long, and that the
/// prefixes add up to `sequence` (every write is one sequence number): the state of
/// one sequence number, holding every write acknowledged before the call.
fn check_consistent(
    got: &[(Vec<u8>, Vec<u8>)],
    acked_before: &[u64],
    acked_after: &[u64],
    sequence: u64,
) {
    check_consistent_weighted(got, acked_before, acked_after, sequence, &[1; WRITERS]);
}

/// [`check_consistent`] where writer `w`'s writes take `seqs_per_write[w]` sequence
/// numbers each (a batch of that many entries).
fn check_consistent_weighted(
    got: &[(Vec<u8>, Vec<u8>)],
    acked_before: &[u64],
    acked_after: &[u64],
    sequence: u64,
    seqs_per_write: &[u64],
) {
    let mut want = BTreeMap::new();
    let mut total = 0;
    for w in 0..WRITERS {
        let prefix = got
            .iter()
            .filter(|(k, _)| k.starts_with(format!("w{w}-").as_bytes()))
            .map(|(_, v)| std::str::from_utf8(v).unwrap().parse::<u64>().unwrap())
            .max()
            .unwrap_or(0);
        assert!(
            prefix >= acked_before[w],
            "writer {w}: write {} was acknowledged before the call but the copy ends at {prefix}",
            acked_before[w]
        );
        assert!(
            prefix <= acked_after[w] + 1,
            "writer {w}: the copy holds write {prefix}, never issued by the end of the call"
        );
        want.extend(writer_state(w, prefix));
        total += prefix * seqs_per_write[w];
    }
    let got: BTreeMap<_, _> = got.iter().cloned().collect();
    assert_eq!(
        got, want,
        "not the state after a prefix of each writer's writes"
    );
    assert_eq!(
        sequence, total,
        "the prefixes do not add up to the copy's sequence number"
    );
}

/// Runs writers (and a thread forcing flushes and compactions) on a tiny database,
/// calls `take` several times meanwhile, and checks what each call returned
/// (a sequence number and the copy's contents) with [`check_consistent`].
fn under_load(take: impl Fn(&Db, &MemFs, usize) -> (u64, Vec<(Vec<u8>, Vec<u8>)>)) {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(WRITERS + 2));
    let mut threads = Vec::new();
    for w in 0..WRITERS {
        let (db, acked, stop, start) = (db.clone(), acked.clone(), stop.clone(), start.clone());
        threads.push(std::thread::spawn(move || {
            start.wait();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                db.put(key(w, n % SLOTS), n.to_string()).unwrap();
                acked[w].store(n, Ordering::Release);
            }
        }));
    }
    {
        let (db, stop, start) = (db.clone(), stop.clone(), start.clone());
        threads.push(std::thread::spawn(move || {
            start.wait();
            let mut i: u32 = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                if i.is_multiple_of(3) {
                    db.compact_range::<&[u8], _>(..).unwrap();
                } else {
                    db.flush().unwrap();
                }
            }
        }));
    }
    start.wait();
    for round in 0..6 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::Acquire)).collect();
        let (sequence, got) = take(&db, &fs, round);
        let after: Vec<u64> = acked.iter().map(|a| a.load(Ordering::Acquire)).collect();
        assert!(
            before.iter().sum::<u64>() > 0,
            "the writers wrote nothing before round {round}"
        );
        check_consistent(&got, &before, &after, sequence);
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert!(db.stats().compactions + db.stats().trivial_moves > 0);
    db.close().unwrap();
}

#[test]
fn a_checkpoint_under_writers_flushes_and_compactions_is_one_consistent_prefix() {
    under_load(|db, fs, round| {
        let dir = format!("/cp{round}");
        let info = db.checkpoint(&dir).unwrap();
        assert_eq!(info.linked, info.tables, "MemFs has hard links");
        let cp = tiny(Db::builder(&dir))
            .file_system(Arc::new(fs.clone()))
            .create_if_missing(false)
            .open()
            .unwrap();
        let got = collect(cp.iter());
        cp.close().unwrap();
        (info.sequence, got)
    });
}

/// Writers 0 and 1 write each key into the default keyspace and keyspaces `a` and `b`
/// in one batch; writer 2 writes keyspace `b` alone. Every keyspace flushes on its own
/// (tiny MemTables) while checkpoints are taken: each checkpoint must hold the same
/// prefix of writers 0 and 1 in all three keyspaces (a batch is in all or none), and
/// the prefixes must add up to the checkpoint's sequence number.
#[test]
fn a_checkpoint_across_keyspaces_holds_every_batch_whole_under_writers_and_flushes() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    let (a, b) = (db.keyspace("a").unwrap(), db.keyspace("b").unwrap());
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(WRITERS + 2));
    let mut threads = Vec::new();
    for w in 0..WRITERS {
        let (db, a, b) = (db.clone(), a.clone(), b.clone());
        let (acked, stop, start) = (acked.clone(), stop.clone(), start.clone());
        threads.push(std::thread::spawn(move || {
            start.wait();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (k, v) = (key(w, n % SLOTS), n.to_string());
                if w == 2 {
                    b.put(&k, &v).unwrap();
                } else {
                    let mut batch = strata::WriteBatch::new();
                    batch.put(&k, &v);
                    batch.put_in(&a, &k, &v);
                    batch.put_in(&b, &k, &v);
                    db.write(batch, strata::WriteOptions::default()).unwrap();
                }
                acked[w].store(n, Ordering::Release);
            }
        }));
    }
    {
        let (a, stop, start) = (a.clone(), stop.clone(), start.clone());
        threads.push(std::thread::spawn(move || {
            start.wait();
            while !stop.load(Ordering::Relaxed) {
                a.compact_range::<&[u8], _>(..).unwrap();
            }
        }));
    }
    start.wait();
    for round in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        let before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::Acquire)).collect();
        let dir = format!("/cp{round}");
        let info = db.checkpoint(&dir).unwrap();
        let after: Vec<u64> = acked.iter().map(|a| a.load(Ordering::Acquire)).collect();
        let cp = open_at(&fs, &dir).unwrap();
        assert_eq!(cp.list_keyspaces(), ["default", "a", "b"]);
        let default = collect(cp.iter());
        let in_a = collect(cp.keyspace("a").unwrap().iter());
        let in_b = collect(cp.keyspace("b").unwrap().iter());
        let (b_shared, b_own): (Vec<_>, Vec<_>) =
            in_b.into_iter().partition(|(k, _)| !k.starts_with(b"w2-"));
        for (name, other) in [("a", &in_a), ("b", &b_shared)] {
            let first_difference = default.iter().zip(other.iter()).find(|(x, y)| x != y);
            assert!(
                default.len() == other.len() && first_difference.is_none(),
                "round {round}: keyspace {name} is not at the default keyspace's cut: {} and {} keys, first difference {first_difference:?}",
                default.len(),
                other.len()
            );
        }
        let mut got = default;
        got.extend(b_own);
        check_consistent_weighted(&got, &before, &after, info.sequence, &[3, 3, 1]);
        cp.close().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let stats = db.stats();
    assert!(
        stats.flushes > 12,
        "the keyspaces hardly flushed: {}",
        stats.flushes
    );
    db.close().unwrap();
}

#[test]
fn a_keyspace_checkpoint_is_a_database_of_that_keyspace_alone() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    let users = db.keyspace("users").unwrap();
    let other = db.keyspace("other").unwrap();
    let mut want = BTreeMap::new();
    for i in 0..2_000u32 {
        let (k, v) = (format!("user{i:05}"), format!("v{i}"));
        users.put(&k, &v).unwrap();
        other.put(&k, "other").unwrap();
        db.put(&k, "default").unwrap();
        want.insert(k.into_bytes(), v.into_bytes());
    }
    users.delete_range("user00100".."user00200").unwrap();
    want.retain(|k, _| !(&b"user00100"[..]..&b"user00200"[..]).contains(&k.as_slice()));
    // Some of it in tables, the rest in the MemTable the checkpoint must flush.
    users.put("late", "in the memtable").unwrap();
    want.insert(b"late".to_vec(), b"in the memtable".to_vec());
    let info = users.checkpoint("/users").unwrap();
    users.put("after", "not in the checkpoint").unwrap();
    assert!(info.tables > 1);

    let cp = open_at(&fs, "/users").unwrap();
    assert_eq!(cp.list_keyspaces(), ["default"]);
    assert_eq!(contents(&cp), want);
    cp.put("new", "writes go on").unwrap();
    cp.close().unwrap();
    let cp = open_at(&fs, "/users").unwrap();
    assert_eq!(
        cp.get("new").unwrap().as_deref(),
        Some(&b"writes go on"[..])
    );
    cp.close().unwrap();

    // The source is untouched, and a dropped keyspace's handle is refused.
    assert_eq!(
        other.get("user00000").unwrap().as_deref(),
        Some(&b"other"[..])
    );
    db.drop_keyspace("other").unwrap();
    let err = other.checkpoint("/other").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(!fs.exists(Path::new("/other/CURRENT")).unwrap());
    db.close().unwrap();
}

#[test]
fn a_backup_of_a_database_with_keyspaces_is_refused_clearly() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    db.keyspace("more").unwrap().put("k", "v").unwrap();
    let backups = Backup::open_on(Arc::new(fs.clone()), "/backups").unwrap();
    let err = backups.create(&db).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSupported);
    assert!(err.to_string().contains("keyspaces"), "{err}");
    assert!(backups.list().unwrap().is_empty());
    db.drop_keyspace("more").unwrap();
    backups.create(&db).unwrap();
}

#[test]
fn a_backup_under_writers_flushes_and_compactions_restores_one_consistent_prefix() {
    let backups = std::sync::Mutex::new(None);
    under_load(|db, fs, round| {
        let mut guard = backups.lock().unwrap();
        let bk = guard.get_or_insert_with(|| Backup::open_on(Arc::new(fs.clone()), "/bk").unwrap());
        let created = bk.create(db).unwrap();
        let target = format!("/restored{round}");
        bk.restore(created.info.id, &target).unwrap();
        let restored = tiny(Db::builder(&target))
            .file_system(Arc::new(fs.clone()))
            .create_if_missing(false)
            .open()
            .unwrap();
        let got = collect(restored.iter());
        restored.close().unwrap();
        (created.info.sequence, got)
    });
}

/// A model of the database's contents kept beside it.
struct Modelled {
    db: Db,
    model: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Modelled {
    fn put(&mut self, k: String, v: String) {
        self.db.put(&k, &v).unwrap();
        self.model.insert(k.into_bytes(), v.into_bytes());
    }

    fn delete(&mut self, k: String) {
        self.db.delete(&k).unwrap();
        self.model.remove(k.as_bytes());
    }
}

fn open_at(fs: &MemFs, dir: &str) -> strata::Result<Db> {
    tiny(Db::builder(dir))
        .file_system(Arc::new(fs.clone()))
        .create_if_missing(false)
        .open()
}

fn contents(db: &Db) -> BTreeMap<Vec<u8>, Vec<u8>> {
    collect(db.iter()).into_iter().collect()
}

/// A database with 300 keys `a...` compacted to the bottom (tables later backups can
/// share) and some `k...` keys on top, unflushed.
fn populated(fs: &MemFs) -> Modelled {
    let mut m = Modelled {
        db: open_mem(fs),
        model: BTreeMap::new(),
    };
    for i in 0..300 {
        m.put(
            format!("a{i:04}"),
            format!("static-{i}-{}", "s".repeat(i % 50)),
        );
    }
    m.db.compact_range::<&[u8], _>(..).unwrap();
    for i in 0..40 {
        m.put(format!("k{i:02}"), format!("first-{i}"));
    }
    m
}

#[test]
fn a_checkpoint_is_a_separate_database_with_the_state_at_the_call() {
    let fs = MemFs::new();
    let mut m = populated(&fs);
    let info = m.db.checkpoint("/cp").unwrap();
    assert_eq!(info.sequence, 340);
    assert!(info.tables > 1);
    let at_checkpoint = m.model.clone();
    m.put("k00".into(), "after".into());
    m.delete("a0001".into());

    let cp = open_at(&fs, "/cp").unwrap();
    assert_eq!(contents(&cp), at_checkpoint);
    // The two go separate ways: writes to one never reach the other, and the source
    // compacting away tables the checkpoint shares (hard links) takes nothing from it.
    cp.put("only-in-checkpoint", "x").unwrap();
    m.db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(contents(&m.db), m.model);
    cp.close().unwrap();
    let cp = open_at(&fs, "/cp").unwrap();
    let mut want = at_checkpoint;
    want.insert(b"only-in-checkpoint".to_vec(), b"x".to_vec());
    assert_eq!(contents(&cp), want);
}

#[test]
fn a_checkpoint_refuses_a_non_empty_directory_and_a_read_only_handle() {
    let fs = MemFs::new();
    let m = populated(&fs);
    fs.create_dir_all(Path::new("/busy")).unwrap();
    fs.create(Path::new("/busy/file")).unwrap();
    let err = m.db.checkpoint("/busy").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert_eq!(fs.list(Path::new("/busy")).unwrap(), ["file"]);
    let err = m.db.checkpoint("/db").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");

    let reader = tiny(Db::builder("/db"))
        .file_system(Arc::new(fs.clone()))
        .read_only()
        .open()
        .unwrap();
    let err = reader.checkpoint("/cp").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSupported, "{err}");
    assert!(!fs.exists(Path::new("/cp")).unwrap());
}

/// A file system without hard links (as another device would be): the checkpoint
/// copies every table instead, and is the same database.
#[derive(Debug)]
struct NoLinks(MemFs);

impl FileSystem for NoLinks {
    fn create(&self, p: &Path) -> strata::Result<Box<dyn strata::WritableFile>> {
        self.0.create(p)
    }
    fn open(&self, p: &Path) -> strata::Result<Arc<dyn strata::RandomAccessFile>> {
        self.0.open(p)
    }
    fn rename(&self, f: &Path, t: &Path) -> strata::Result<()> {
        self.0.rename(f, t)
    }
    fn remove(&self, p: &Path) -> strata::Result<()> {
        self.0.remove(p)
    }
    fn list(&self, d: &Path) -> strata::Result<Vec<String>> {
        self.0.list(d)
    }
    fn exists(&self, p: &Path) -> strata::Result<bool> {
        self.0.exists(p)
    }
    fn create_dir_all(&self, d: &Path) -> strata::Result<()> {
        self.0.create_dir_all(d)
    }
    fn sync_dir(&self, d: &Path) -> strata::Result<()> {
        self.0.sync_dir(d)
    }
    fn lock(&self, p: &Path) -> strata::Result<Box<dyn strata::FileLock>> {
        self.0.lock(p)
    }
}

#[test]
fn without_hard_links_a_checkpoint_copies_the_tables() {
    let fs = MemFs::new();
    let m = populated(&fs);
    m.db.close().unwrap();
    let db = tiny(Db::builder("/db"))
        .file_system(Arc::new(NoLinks(fs.clone())))
        .open()
        .unwrap();
    let mut progress = Vec::new();
    let info = db
        .checkpoint_with_progress("/cp", &mut |p| progress.push(p))
        .unwrap();
    assert_eq!(info.linked, 0);
    assert!(info.tables > 0);
    let last = progress.last().unwrap();
    assert_eq!(
        (last.done_bytes, last.total_bytes),
        (info.table_bytes, info.table_bytes)
    );
    assert!(
        progress
            .windows(2)
            .all(|w| w[0].done_bytes <= w[1].done_bytes)
    );
    // Copies, not links: damaging the source's table leaves the checkpoint's intact.
    for name in fs.list(Path::new("/db")).unwrap() {
        if name.ends_with(".sst") {
            fs.write_file(&Path::new("/db").join(&name), b"gone".to_vec());
        }
    }
    assert_eq!(contents(&open_at(&fs, "/cp").unwrap()), m.model);
}

#[cfg(unix)]
#[test]
fn on_the_real_file_system_tables_are_hard_links() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let db = tiny(Db::builder(tmp.path().join("db"))).open().unwrap();
    for i in 0..500 {
        db.put(format!("key{i:04}"), "value".repeat(10)).unwrap();
    }
    let info = db.checkpoint(tmp.path().join("cp")).unwrap();
    assert!(info.tables > 0);
    assert_eq!(info.linked, info.tables);
    for entry in std::fs::read_dir(tmp.path().join("cp")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().ends_with(".sst") {
            assert!(
                entry.metadata().unwrap().nlink() >= 2,
                "{entry:?} is not a link"
            );
        }
    }
    db.close().unwrap();
    let cp = Db::open(tmp.path().join("cp")).unwrap();
    assert_eq!(cp.iter().count(), 500);
}

#[test]
fn a_second_backup_copies_only_the_tables_that_changed_and_each_restores_exactly() {
    let fs = MemFs::new();
    let mut m = populated(&fs);
    let bk = Backup::open_on(Arc::new(fs.clone()), "/bk").unwrap();
    let first = bk.create(&m.db).unwrap();
    assert_eq!(first.info.id, 1);
    assert_eq!(first.copied_tables, first.info.tables.len());
    assert_eq!(first.copied_bytes, first.info.bytes());
    let state1 = m.model.clone();

    for i in 0..40 {
        m.put(format!("k{i:02}"), format!("second-{i}"));
    }
    m.delete("k07".into());
    let second = bk.create(&m.db).unwrap();
    let state2 = m.model.clone();
    let shared: Vec<_> = second
        .info
        .tables
        .iter()
        // The same file, perhaps on another level since (a trivial move).
        .filter(|t| {
            first
                .info
                .tables
                .iter()
                .any(|f| (f.number, f.checksum) == (t.number, t.checksum))
        })
        .collect();
    assert!(!shared.is_empty(), "the static tables are shared");
    assert_eq!(
        second.copied_tables,
        second.info.tables.len() - shared.len(),
        "exactly the tables the first backup lacks were copied"
    );
    assert!(second.copied_bytes < second.info.bytes() / 2, "{second:?}");

    // Once compactions have settled, a backup of an unchanged database copies nothing.
    m.db.wait_for_compaction().unwrap();
    bk.create(&m.db).unwrap();
    let fourth = bk.create(&m.db).unwrap();
    assert_eq!(fourth.copied_tables, 0);
    assert_eq!(fourth.info.sequence, second.info.sequence);

    let ids: Vec<u64> = bk.list().unwrap().iter().map(|b| b.id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    for (id, want) in [(1, &state1), (2, &state2)] {
        bk.verify(id).unwrap();
        let target = format!("/r{id}");
        let info = bk.restore(id, &target).unwrap();
        let restored = open_at(&fs, &target).unwrap();
        assert_eq!(contents(&restored), *want, "backup {id}");
        // A restored database goes on at the sequence it was taken at.
        restored.put("new", "write").unwrap();
        assert_eq!(restored.stats().levels.len(), 7);
        let _ = info;
    }

    // Purging keeps the newest and whatever they reference.
    let purged = bk.purge_old(1).unwrap();
    assert_eq!(purged.backups, [1, 2, 3]);
    assert!(purged.files > 0, "tables only the old backups held went");
    assert_eq!(bk.list().unwrap().len(), 1);
    bk.verify(4).unwrap();
    bk.restore(4, "/r4").unwrap();
    assert_eq!(contents(&open_at(&fs, "/r4").unwrap()), state2);
    assert_eq!(bk.verify(1).unwrap_err().kind(), ErrorKind::InvalidArgument);
}

#[test]
fn a_reused_table_number_with_other_content_is_a_different_table() {
    // Two databases written the same way but with other values have tables of the
    // same numbers and sizes; backed up into one directory, neither aliases the other.
    let fs = MemFs::new();
    let bk = Backup::open_on(Arc::new(fs.clone()), "/bk").unwrap();
    let mut states = Vec::new();
    for (dir, letter) in [("/one", "x"), ("/two", "y")] {
        // Default options: one flush, one table, numbered the same in both.
        let db = Db::builder(dir)
            .file_system(Arc::new(fs.clone()))
            .open()
            .unwrap();
        for i in 0..200 {
            db.put(format!("key{i:03}"), letter.repeat(20)).unwrap();
        }
        let states_before = contents(&db);
        let created = bk.create(&db).unwrap();
        assert_eq!(created.copied_tables, created.info.tables.len(), "{dir}");
        states.push((created.info.id, states_before));
    }
    let tables = |id: u64| -> Vec<(u64, u64)> {
        bk.verify(id)
            .unwrap()
            .tables
            .iter()
            .map(|t| (t.number, t.size))
            .collect()
    };
    assert_eq!(tables(1).len(), 1);
    assert_eq!(tables(1), tables(2), "same numbers and sizes");
    for (id, want) in states {
        bk.restore(id, format!("/r{id}")).unwrap();
        assert_eq!(contents(&open_at(&fs, &format!("/r{id}")).unwrap()), want);
    }
}

#[test]
fn damage_in_a_backup_is_reported_by_verify_and_refused_by_restore() {
    let fs = MemFs::new();
    let m = populated(&fs);
    let bk = Backup::open_on(Arc::new(fs.clone()), "/bk").unwrap();
    let created = bk.create(&m.db).unwrap();
    let table = &created.info.tables[0];
    let path = Path::new("/bk/tables").join(table.file_name());
    let good = fs.read_file(&path).unwrap();

    // A flipped bit anywhere in a table, a cut, a missing file.
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    let damages: Vec<Option<Vec<u8>>> =
        vec![Some(flipped), Some(good[..good.len() - 1].to_vec()), None];
    for damage in damages {
        match damage {
            Some(bytes) => fs.write_file(&path, bytes),
            None => fs.remove(&path).unwrap(),
        }
        let err = bk.verify(created.info.id).unwrap_err();
        assert!(err.is_corruption(), "{err}");
        assert!(err.to_string().contains(&table.file_name()), "{err}");
        let err = bk.restore(created.info.id, "/restored").unwrap_err();
        assert!(err.is_corruption(), "{err}");
        assert!(
            open_at(&fs, "/restored").is_err(),
            "a refused restore leaves no database"
        );
        assert!(
            fs.list(Path::new("/restored"))
                .unwrap()
                .iter()
                .all(|n| !n.ends_with(".sst")),
            "a refused restore removes what it copied"
        );
    }
    fs.write_file(&path, good);
    bk.verify(created.info.id).unwrap();

    // The backup manifest: a flipped bit is corruption naming it, for list and verify.
    let manifest = Path::new("/bk/backups/000001.backup");
    let mut bytes = fs.read_file(manifest).unwrap();
    bytes[20] ^= 1;
    fs.write_file(manifest, bytes);
    for err in [
        bk.verify(1).unwrap_err(),
        bk.list().unwrap_err(),
        bk.restore(1, "/restored2").unwrap_err(),
    ] {
        assert!(err.is_corruption(), "{err}");
        assert!(err.to_string().contains("000001.backup"), "{err}");
    }
    assert!(
        !fs.exists(Path::new("/restored2")).unwrap(),
        "nothing written"
    );
}

#[test]
fn a_backup_directory_is_locked_by_its_handle() {
    let fs = MemFs::new();
    let bk = Backup::open_on(Arc::new(fs.clone()), "/bk").unwrap();
    let err = Backup::open_on(Arc::new(fs.clone()), "/bk").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);
    drop(bk);
    Backup::open_on(Arc::new(fs), "/bk").unwrap();
}

#[test]
fn two_threads_backing_up_through_one_handle_get_two_backups() {
    // `Backup` is `Sync` and its methods take `&self`: one handle may be shared. Two
    // concurrent `create`s once both numbered their backup 1, the second manifest
    // replacing the first (and a `purge_old` meanwhile could delete a table a backup
    // in progress had copied but not yet listed).
    let fs = MemFs::new();
    let m = populated(&fs);
    let bk = Backup::open_on(Arc::new(fs.clone()), "/bk").unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (first, second) = std::thread::scope(|s| {
        let (bk, db) = (&bk, &m.db);
        let a = s.spawn(move || {
            let mut signalled = false;
            bk.create_with_progress(db, &mut |_| {
                if !signalled {
                    signalled = true;
                    started_tx.send(()).unwrap();
                    // Lets the other backup run to its end here, if it can.
                    let _ = done_rx.recv_timeout(std::time::Duration::from_millis(500));
                }
            })
            .unwrap()
        });
        started_rx.recv().unwrap();
        let second = bk.create(&m.db).unwrap();
        let _ = done_tx.send(());
        (a.join().unwrap(), second)
    });
    assert_ne!(first.info.id, second.info.id);
    let ids: Vec<u64> = bk.list().unwrap().iter().map(|b| b.id).collect();
    assert_eq!(ids, [1, 2]);
    for id in ids {
        bk.verify(id).unwrap();
    }
}
