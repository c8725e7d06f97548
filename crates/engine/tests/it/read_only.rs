//! Read-only opens (`DbBuilder::read_only`): a reader beside a live writer, in this
//! process and in others. The claims: the reader sees one consistent state (a prefix of
//! the writer's acknowledged writes), exactly the writer's state after a `refresh`,
//! never writes a byte, never takes the lock, and keeps reading what it loaded while
//! the writer compacts the files away.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use proptest::prelude::*;
use strata::{Db, ErrorKind, WriteBatch, WriteOptions};
use strata_core::MemFs;

use crate::tiny;

fn reader(dir: &Path) -> Db {
    Db::builder(dir).read_only().open().unwrap()
}

/// Every file in `dir` with its length and modification time.
fn listing(dir: &Path) -> BTreeMap<String, (u64, SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (
                e.file_name().into_string().unwrap(),
                (m.len(), m.modified().unwrap()),
            )
        })
        .collect()
}

fn scan(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.iter()
        .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_reader_beside_a_live_writer_sees_its_state_until_refreshed_and_never_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let writer = tiny(Db::builder(dir)).open().unwrap();
    for i in 0..300 {
        writer.put(format!("k{i:04}"), format!("v{i}")).unwrap();
    }
    writer.flush().unwrap();
    writer.wait_for_compaction().unwrap();
    // Some in tables, some only in the writer's WAL.
    writer.put("k0000", "rewritten").unwrap();
    writer.delete("k0001").unwrap();

    writer.wait_for_compaction().unwrap();

    // While the writer is idle, the reader's whole life (open, reads, refresh, refused
    // writes, close) leaves every file as it was.
    let before = listing(dir);
    let r = reader(dir);
    assert_eq!(r.get("k0000").unwrap().as_deref(), Some(&b"rewritten"[..]));
    assert_eq!(r.get("k0001").unwrap(), None);
    assert_eq!(r.get("k0299").unwrap().as_deref(), Some(&b"v299"[..]));
    assert_eq!(scan(&r), scan(&writer));
    assert_eq!(r.iter().rev().count(), 299);
    r.refresh().unwrap();
    let refused = [
        r.put("x", "y"),
        r.delete("x"),
        r.write(WriteBatch::new(), WriteOptions { sync: true }),
        r.flush(),
        r.compact_range::<&[u8], _>(..),
        r.sync_wal(),
        r.wait_for_compaction(),
    ];
    for e in refused {
        let e = e.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
        assert!(e.to_string().contains("read-only"), "{e}");
    }
    // A writable handle has nothing to refresh.
    assert_eq!(
        writer.refresh().unwrap_err().kind(),
        ErrorKind::NotSupported
    );
    r.close().unwrap();
    assert_eq!(
        listing(dir),
        before,
        "the reader wrote, created or removed a file"
    );

    // Later writes are invisible until refresh, then visible exactly.
    let r = reader(dir);
    writer.put("k0002", "later").unwrap();
    writer.put("new", "key").unwrap();
    assert_eq!(r.get("k0002").unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(r.get("new").unwrap(), None);
    r.refresh().unwrap();
    assert_eq!(r.get("k0002").unwrap().as_deref(), Some(&b"later"[..]));
    assert_eq!(r.get("new").unwrap().as_deref(), Some(&b"key"[..]));
    assert_eq!(scan(&r), scan(&writer));
    writer.close().unwrap();
    // The writer's close flushed and deleted the WAL the reader replayed: it still
    // reads what it loaded.
    assert_eq!(r.get("new").unwrap().as_deref(), Some(&b"key"[..]));
}

#[test]
fn a_read_only_open_takes_no_lock_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // Two read-only handles beside the writer: no `Locked`.
    let writer = Db::open(tmp.path()).unwrap();
    writer.put("a", "1").unwrap();
    let (r1, r2) = (reader(tmp.path()), reader(tmp.path()));
    assert_eq!(r1.get("a").unwrap(), r2.get("a").unwrap());
    drop((r1, r2));
    writer.close().unwrap();

    // Nothing there: an error, and still nothing there.
    let missing = tmp.path().join("missing");
    let e = Db::builder(&missing).read_only().open().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(!missing.exists());
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(Db::builder(&empty).read_only().open().is_err());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

#[test]
fn iterators_and_snapshots_keep_their_state_while_the_writer_compacts_it_away() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = tiny(Db::builder(tmp.path())).open().unwrap();
    for i in 0..200 {
        writer.put(format!("k{i:03}"), "old").unwrap();
    }
    writer.flush().unwrap();
    // One open table at a time in the table cache: every table the reader loaded but
    // the cache evicts must stay readable after the writer deletes it.
    let r = Db::builder(tmp.path())
        .read_only()
        .max_open_files(1)
        .open()
        .unwrap();
    let snapshot = r.snapshot();
    let mut it = r.iter();
    assert_eq!(it.next().unwrap().unwrap().1.as_ref(), b"old");

    // The writer overwrites everything and compacts: the tables the reader loaded are
    // deleted from the directory.
    let tables_before: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .collect();
    for i in 0..200 {
        writer.put(format!("k{i:03}"), "new").unwrap();
    }
    writer.compact_range::<&[u8], _>(..).unwrap();
    writer.wait_for_compaction().unwrap();
    // A table file goes when the last version naming it does; a background thread may
    // hold one a moment after the compaction it finished.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while tables_before.iter().any(|p| p.exists()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        tables_before.iter().all(|p| !p.exists()),
        "the old tables were compacted away"
    );

    // The open iterator, the snapshot and plain reads still give the old state.
    assert_eq!(it.by_ref().count(), 199);
    assert!(snapshot.iter().all(|kv| kv.unwrap().1.as_ref() == b"old"));
    for i in (0..200).rev() {
        assert_eq!(
            r.get(format!("k{i:03}")).unwrap().as_deref(),
            Some(&b"old"[..])
        );
    }

    // After refresh, the new state; the snapshot taken before still reads the old one.
    r.refresh().unwrap();
    assert_eq!(r.get("k100").unwrap().as_deref(), Some(&b"new"[..]));
    assert!(r.iter().all(|kv| kv.unwrap().1.as_ref() == b"new"));
    assert_eq!(snapshot.get("k100").unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(snapshot.iter().count(), 200);
    writer.close().unwrap();
}

/// One step of the writer in the model test.
#[derive(Clone, Debug)]
enum Step {
    Put(u8, u8),
    Delete(u8),
    Flush,
    Compact,
    Refresh,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Step::Put(k % 64, v)),
        2 => any::<u8>().prop_map(|k| Step::Delete(k % 64)),
        1 => Just(Step::Flush),
        1 => Just(Step::Compact),
        3 => Just(Step::Refresh),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A writer runs puts, deletes, flushes and compactions; after every refresh the
    /// read-only handle reads exactly the model of the acknowledged writes (gets and
    /// both scans), and between refreshes exactly the model as of the last refresh.
    #[test]
    fn after_every_refresh_the_reader_reads_the_writers_model(steps in prop::collection::vec(step(), 1..120)) {
        let fs = MemFs::new();
        let open = |b: strata::DbBuilder| b.file_system(Arc::new(fs.clone()));
        let writer = open(tiny(Db::builder("/db"))).open().unwrap();
        let r = open(Db::builder("/db")).read_only().open().unwrap();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut seen = model.clone();
        for s in steps {
            match s {
                Step::Put(k, v) => {
                    writer.put([k], [v]).unwrap();
                    model.insert(vec![k], vec![v]);
                }
                Step::Delete(k) => {
                    writer.delete([k]).unwrap();
                    model.remove(&vec![k]);
                }
                Step::Flush => writer.flush().unwrap(),
                Step::Compact => writer.compact_range::<&[u8], _>(..).unwrap(),
                Step::Refresh => {
                    r.refresh().unwrap();
                    seen = model.clone();
                }
            }
            let got: BTreeMap<Vec<u8>, Vec<u8>> = scan(&r).into_iter().collect();
            prop_assert_eq!(&got, &seen);
            let mut back: Vec<_> = r.iter().rev().map(|kv| kv.unwrap().0.to_vec()).collect();
            back.reverse();
            prop_assert_eq!(back, seen.keys().cloned().collect::<Vec<_>>());
            for k in 0..64u8 {
                prop_assert_eq!(r.get([k]).unwrap().map(|v| v.to_vec()), seen.get(&vec![k]).cloned());
            }
        }
        writer.close().unwrap();
    }
}

// --- Several processes: one writer, three read-only readers. ---

/// Keys written per round; each round also deletes the keys of the round `KEEP` back.
const PER_ROUND: u32 = 20;
const KEEP: u32 = 5;

fn round_key(round: u32, j: u32) -> String {
    format!("r{round:06}-{j:03}")
}

fn round_value(round: u32, j: u32) -> String {
    format!("value of {round}/{j} {}", "x".repeat(40))
}

/// Runs the test binary's `child_process` test in a new process with `role`.
fn spawn(role: &str, dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "read_only::child_process",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("STRATA_CHILD_ROLE", role)
        .env("STRATA_CHILD_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A writer process and three reader processes on one directory. Each round the
/// writer writes 20 keys, deletes the keys of five rounds back and sets `round`, in one
/// batch, with flushes and compactions running (small MemTables). Each reader refreshes
/// in a loop and checks, in one snapshot, that the state is exactly the one after some
/// round (the keys of the last five rounds, nothing older, `round` agreeing) and that
/// rounds never go backwards.
#[test]
fn readers_in_other_processes_follow_a_writer_consistently() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let writer = spawn("writer", &dir);
    let started = Instant::now();
    while !dir.join("CURRENT").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "writer never created the database"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let readers: Vec<Child> = (0..3).map(|_| spawn("reader", &dir)).collect();
    let outputs: Vec<String> = readers.into_iter().map(finish).collect();
    finish(writer);
    // Each reader saw the writer move (several distinct rounds), so the test checked
    // states mid-flight, not just the end.
    for out in &outputs {
        let line = out
            .lines()
            .find(|l| l.contains("reader:"))
            .unwrap_or_else(|| panic!("{out}"));
        let distinct: u32 = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("distinct_rounds="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(distinct >= 3, "{line}");
    }
}

/// Waits for `child`; its stdout, once it has exited successfully.
fn finish(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    stdout
}

/// The body of a child process (ignored unless `STRATA_CHILD_ROLE` says what to be).
#[test]
#[ignore = "run by readers_in_other_processes_follow_a_writer_consistently in a child process"]
fn child_process() {
    let (Ok(role), Ok(dir)) = (
        std::env::var("STRATA_CHILD_ROLE"),
        std::env::var("STRATA_CHILD_DIR"),
    ) else {
        return;
    };
    let dir = PathBuf::from(dir);
    match role.as_str() {
        "writer" => run_writer(&dir),
        "reader" => run_reader(&dir),
        other => panic!("unknown role {other}"),
    }
}

fn run_writer(dir: &Path) {
    let db = Db::builder(dir)
        .memtable_bytes(32 << 10)
        .table_file_bytes(32 << 10)
        .l0_compaction_trigger(2)
        .level_base_bytes(128 << 10)
        .open()
        .unwrap();
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < Duration::from_secs(3) || round < 200 {
        round += 1;
        let mut batch = WriteBatch::new();
        for j in 0..PER_ROUND {
            batch.put(round_key(round, j), round_value(round, j));
            if round > KEEP {
                batch.delete(round_key(round - KEEP, j));
            }
        }
        batch.put("round", round.to_string());
        db.write(batch, WriteOptions::default()).unwrap();
        std::thread::sleep(Duration::from_micros(500));
    }
    db.put("done", "1").unwrap();
    db.close().unwrap();
    println!("writer: rounds={round}");
}

fn run_reader(dir: &Path) {
    let db = Db::builder(dir).read_only().open().unwrap();
    let (mut last, mut distinct, mut refreshes) = (0u32, 0u32, 0u32);
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the writer never finished"
        );
        let snapshot = db.snapshot();
        let done = snapshot.get("done").unwrap().is_some();
        let round: u32 = snapshot
            .get("round")
            .unwrap()
            .map(|v| std::str::from_utf8(&v).unwrap().parse().unwrap())
            .unwrap_or(0);
        assert!(round >= last, "round went back from {last} to {round}");
        if round > last {
            distinct += 1;
        }
        last = round;
        let expected: Vec<(String, String)> = (round.saturating_sub(KEEP - 1).max(1)..=round)
            .filter(|&r| r > 0)
            .flat_map(|r| (0..PER_ROUND).map(move |j| (round_key(r, j), round_value(r, j))))
            .collect();
        let got: Vec<(String, String)> = snapshot
            .prefix("r0")
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (
                    String::from_utf8(k.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect();
        assert!(
            got == expected,
            "state after round {round} is not the writer's: {} keys, expected {}",
            got.len(),
            expected.len()
        );
        if done {
            break;
        }
        db.refresh().unwrap();
        refreshes += 1;
    }
    println!("reader: refreshes={refreshes} distinct_rounds={distinct} last_round={last}");
}
