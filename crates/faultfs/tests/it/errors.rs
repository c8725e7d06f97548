//! Injected I/O errors: each kind of operation on each kind of file fails once (the
//! n-th such operation, for several n) while a workload writes, flushes and compacts.
//!
//! Checked for every case:
//! - the call during which the fault fired (on the caller's thread) returns an error:
//!   a write whose WAL append or sync failed is never acknowledged;
//! - once an error was returned, no later write is acknowledged, and after the fault
//!   (wherever it fired) the database refuses writes with `Error::Poisoned` — except
//!   for failed removals of obsolete files, which only leave garbage behind — whose
//!   kind is the injected error's (`ErrorKind::Io`), as is every error returned;
//! - reads still answer with every acknowledged write;
//! - reopening (after a process crash, a strict or a random power loss) recovers a
//!   state that satisfies I1–I4 (I5 for the process crash).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use strata::{Error, ErrorKind};
use strata_faultfs::{CrashOptions, Fault, FaultFs, OpInfo, OpKind};

use crate::oracle::Model;
use crate::{Harness, crash_and_check, universe};

/// Which operations the fault targets.
#[derive(Clone, Copy, Debug)]
struct Target {
    kind: OpKind,
    /// Part of the file name (`.log`, `.sst`, `MANIFEST`, `CURRENT`), or "" for any.
    file: &'static str,
}

const TARGETS: &[Target] = &[
    Target {
        kind: OpKind::Write,
        file: ".log",
    },
    Target {
        kind: OpKind::Sync,
        file: ".log",
    },
    Target {
        kind: OpKind::Create,
        file: ".log",
    },
    Target {
        kind: OpKind::Create,
        file: ".sst",
    },
    Target {
        kind: OpKind::Write,
        file: ".sst",
    },
    Target {
        kind: OpKind::Sync,
        file: ".sst",
    },
    Target {
        kind: OpKind::Read,
        file: ".sst",
    },
    Target {
        kind: OpKind::Open,
        file: ".sst",
    },
    Target {
        kind: OpKind::SyncDir,
        file: "",
    },
    Target {
        kind: OpKind::Create,
        file: "MANIFEST",
    },
    Target {
        kind: OpKind::Write,
        file: "MANIFEST",
    },
    Target {
        kind: OpKind::Sync,
        file: "MANIFEST",
    },
    Target {
        kind: OpKind::Create,
        file: "CURRENT",
    },
    Target {
        kind: OpKind::Rename,
        file: "CURRENT",
    },
    Target {
        kind: OpKind::Remove,
        file: "",
    },
];

/// A one-shot fault that remembers when and on which thread it fired.
#[derive(Default)]
struct Tripwire {
    seen: AtomicU64,
    fired: AtomicBool,
    on: Mutex<Option<ThreadId>>,
}

impl Tripwire {
    fn fault(self: &Arc<Self>, t: Target, n: u64) -> Fault {
        let me = Arc::clone(self);
        Fault::when(move |op: &OpInfo| {
            let name = op
                .to
                .as_ref()
                .unwrap_or(&op.path)
                .to_string_lossy()
                .into_owned();
            if op.kind != t.kind || !name.contains(t.file) {
                return false;
            }
            if me.seen.fetch_add(1, Ordering::SeqCst) + 1 != n {
                return false;
            }
            *me.on.lock().unwrap() = Some(std::thread::current().id());
            me.fired.store(true, Ordering::SeqCst);
            true
        })
    }

    fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    fn fired_here(&self) -> bool {
        self.fired() && *self.on.lock().unwrap() == Some(std::thread::current().id())
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("k{:02}", (i * 7) % 40).into_bytes()
}

fn run(t: Target, n: u64, roomy: bool) -> Result<bool, String> {
    let ctx = |e: String| format!("{t:?}, occurrence {n}, roomy {roomy}: {e}");
    let fs = FaultFs::new();
    let mut h = Harness::open(fs.clone(), Model::new(), roomy).map_err(|e| ctx(e.to_string()))?;
    let trip = Arc::new(Tripwire::default());
    fs.inject(trip.fault(t, n));
    let best_effort = t.kind == OpKind::Remove;
    let mut first_error: Option<String> = None;
    let big = vec![b'x'; crate::ROOMY_MEMTABLE / 3];
    for i in 0..60u64 {
        let fired_before = trip.fired();
        let r = match i % 10 {
            9 => h.flush(),
            4 if i % 20 == 4 => h.compact_all(),
            3 => h.write(
                vec![(key(i), None), (key(i + 1), Some(b"b".to_vec()))],
                i % 4 == 0,
            ),
            6 if roomy => h.put(&key(i), &big, false),
            _ => h.put(&key(i), format!("v{i}").as_bytes(), i % 4 == 0),
        };
        if !fired_before && trip.fired_here() && !best_effort && r.is_ok() {
            return Err(ctx(format!("call {i} succeeded although its I/O failed")));
        }
        match (&r, &first_error) {
            (Ok(()), Some(e)) => {
                return Err(ctx(format!("call {i} acknowledged after an error ({e})")));
            }
            (Err(e), Some(_)) if !matches!(e, Error::Poisoned { .. }) => {
                return Err(ctx(format!("call {i} after an error: {e}, not Poisoned")));
            }
            (Err(e), _) if e.kind() != ErrorKind::Io => {
                return Err(ctx(format!("call {i}: {e} is not of kind Io")));
            }
            (Err(e), None) => first_error = Some(e.to_string()),
            _ => {}
        }
    }
    if trip.fired() && !best_effort {
        // A background failure reaches the caller at the next write or flush.
        let start = Instant::now();
        loop {
            match h.db.flush() {
                Err(e @ Error::Poisoned { .. }) if e.kind() == ErrorKind::Io => break,
                Ok(()) if start.elapsed() < Duration::from_secs(5) => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                other => return Err(ctx(format!("not poisoned after the fault: {other:?}"))),
            }
        }
        match h.put(b"k00", b"after", false) {
            Err(e @ Error::Poisoned { .. }) if e.kind() == ErrorKind::Io => {}
            other => return Err(ctx(format!("a write after the fault: {other:?}"))),
        }
    }
    if best_effort && let Some(e) = first_error {
        return Err(ctx(format!("a failed removal failed a call: {e}")));
    }
    fs.clear_faults();
    let keys = universe(40);
    h.check_reads(&keys)
        .map_err(|e| ctx(format!("reads after the error: {e}")))?;
    let Harness { db, hist, side, .. } = h;
    drop(side);
    drop(db);
    for opts in [
        CrashOptions::process(),
        CrashOptions::power_loss(),
        CrashOptions::random(n),
    ] {
        crash_and_check(&fs, fs.op_count(), &opts, &hist, &keys, roomy).map_err(ctx)?;
    }
    Ok(trip.fired())
}

#[test]
fn every_kind_of_io_error_is_sticky_and_loses_nothing_acknowledged() {
    let mut failures = Vec::new();
    for &t in TARGETS {
        let mut fired = 0;
        for roomy in [false, true] {
            for n in [1, 2, 3, 5, 8, 13] {
                match run(t, n, roomy) {
                    Ok(f) => fired += usize::from(f),
                    Err(e) => failures.push(e),
                }
            }
        }
        eprintln!("{t:?}: the fault fired in {fired} of 12 runs");
        // Every target is hit by the workload (the rarest, a manifest roll-over, too).
        assert!(fired >= 2, "{t:?} fired in only {fired} runs");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A flipped bit read back from a table is `Corruption` naming that table at every
/// read that sees it, never a wrong value; with the disk healthy again, reads and a
/// reopen give everything back.
#[test]
fn bit_flips_on_read_are_corruption_never_wrong_values() {
    let fs = FaultFs::new();
    let mut h = Harness::open(fs.clone(), Model::new(), true).unwrap();
    for i in 0..40u64 {
        h.put(&key(i), format!("value-{i}").as_bytes(), false)
            .unwrap();
    }
    h.flush().unwrap();
    let table = fs
        .ops()
        .iter()
        .rev()
        .find(|o| o.kind == OpKind::Create && o.path.extension().is_some_and(|e| e == "sst"))
        .map(|o| o.path.clone())
        .unwrap();
    let len = fs.read_file(&table).unwrap().len() as u64;
    let keys = universe(40);
    let mut corrupt = 0;
    for offset in (0..len).step_by(7) {
        fs.flip_bit_on_read(&table, offset, (offset % 8) as u8);
        // A fresh handle, so nothing is served from the block cache.
        let Harness {
            db,
            hist,
            live,
            side,
            ..
        } = h;
        drop(side);
        drop(db);
        let db = crate::open(&fs, true).unwrap_or_else(|e| panic!("open with a flipped bit: {e}"));
        for k in &keys {
            match db.get(k) {
                Ok(v) => assert_eq!(
                    v.as_deref(),
                    live.get(k).map(Vec::as_slice),
                    "offset {offset}"
                ),
                Err(Error::Corruption { file, .. }) => {
                    assert_eq!(file, table);
                    corrupt += 1;
                }
                Err(e) => panic!("offset {offset}: {e}"),
            }
        }
        fs.clear_faults();
        let side = db.keyspace(crate::oracle::SIDE).unwrap();
        h = Harness {
            fs: fs.clone(),
            db,
            hist,
            live,
            roomy: true,
            side,
        };
    }
    assert!(corrupt > 0, "some flips were seen");
    h.check_reads(&keys).unwrap();
}

/// An I/O error at any step of a recovery (replay, table write, new WAL and manifest,
/// the CURRENT switch, removals) fails the open or is harmless; with the disk healthy
/// again — and after a power loss on top of the failure — the next open recovers
/// everything.
#[test]
fn io_errors_during_recovery_lose_nothing() {
    let keys = universe(40);
    let fs = FaultFs::new();
    let mut h = Harness::open(fs.clone(), Model::new(), true).unwrap();
    for i in 0..30u64 {
        h.put(&key(i), format!("v{i}").as_bytes(), false).unwrap();
        if i % 6 == 0 {
            h.write(vec![(key(i + 2), None)], false).unwrap();
        }
    }
    let state = h.live.clone();
    let crashed = fs.crash(&CrashOptions::process());
    drop(h);
    // How many changes a clean recovery makes.
    let probe = crashed.crash_at(usize::MAX, &CrashOptions::process());
    drop(crate::open(&probe, true).unwrap());
    let steps = probe.op_count() as u64;
    assert!(steps > 10);
    let hist = crate::oracle::History::new(state.clone());
    let mut failed_opens = 0;
    for k in 1..=steps {
        let disk = crashed.crash_at(usize::MAX, &CrashOptions::process());
        let seen = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&seen);
        disk.inject(Fault::when(move |op| {
            op.kind.is_mutating() && s.fetch_add(1, Ordering::SeqCst) + 1 == k
        }));
        match crate::open(&disk, true) {
            Ok(db) => {
                let got = crate::oracle::read_all(&db, &keys).unwrap();
                assert_eq!(got, state, "open succeeded despite failed change {k}");
            }
            Err(e) => {
                assert!(matches!(e, Error::Io { .. }), "change {k}: {e}");
                failed_opens += 1;
            }
        }
        disk.clear_faults();
        for opts in [CrashOptions::process(), CrashOptions::power_loss()] {
            crash_and_check(&disk, disk.op_count(), &opts, &hist, &keys, true)
                .unwrap_or_else(|e| panic!("failed change {k}: {e}"));
        }
    }
    assert!(failed_opens > steps / 2, "most failures fail the open");
}

/// The `n`-th operation of `kind` on a file whose name contains `file` fails with a
/// full device (ENOSPC).
fn inject_full_disk(fs: &FaultFs, kind: OpKind, file: &'static str) {
    let seen = AtomicU64::new(0);
    fs.inject_error(
        Fault::when(move |op: &OpInfo| {
            op.kind == kind
                && op.path.to_string_lossy().contains(file)
                && seen.fetch_add(1, Ordering::SeqCst) == 0
        }),
        std::io::ErrorKind::StorageFull,
    );
}

/// Asserts that `r` failed with `Error::Poisoned` of `kind`, with the original error as
/// its source.
fn assert_poisoned(what: &str, r: strata::Result<()>, kind: ErrorKind) {
    match r {
        Err(e @ Error::Poisoned { .. }) => {
            assert_eq!(e.kind(), kind, "{what}: {e}");
            let source = std::error::Error::source(&e).expect("Poisoned has a source");
            let cause = source
                .downcast_ref::<Error>()
                .expect("the source is an Error");
            assert!(!matches!(cause, Error::Poisoned { .. }), "{what}: {e}");
            assert_eq!(cause.kind(), kind, "{what}: {e}");
        }
        other => panic!("{what}: {other:?}, not Poisoned of kind {kind:?}"),
    }
}

/// A full device on a WAL append fails that write as `StorageFull` (an `Io` error), and
/// every later write, flush, sync and the close report it as the cause.
#[test]
fn a_full_disk_under_the_wal_reaches_every_later_caller_as_storage_full() {
    let fs = FaultFs::new();
    let db = crate::open(&fs, true).unwrap();
    db.put("before", "1").unwrap();
    inject_full_disk(&fs, OpKind::Write, ".log");
    let e = db.put("full", "2").unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::StorageFull, "{e}");
    fs.clear_faults();
    assert_poisoned("put", db.put("after", "3"), ErrorKind::StorageFull);
    assert_poisoned("flush", db.flush(), ErrorKind::StorageFull);
    assert_poisoned("sync_wal", db.sync_wal(), ErrorKind::StorageFull);
    assert_poisoned(
        "wait_for_compaction",
        db.wait_for_compaction(),
        ErrorKind::StorageFull,
    );
    assert_eq!(db.get("before").unwrap().as_deref(), Some(&b"1"[..]));
    assert_poisoned("close", db.close(), ErrorKind::StorageFull);
}

/// A full device met by the background flush is invisible to the write that froze the
/// MemTable; it reaches the next callers as `StorageFull`, and `close` reports it
/// rather than `Ok`.
#[test]
fn a_full_disk_under_a_background_flush_reaches_later_callers_and_close() {
    let fs = FaultFs::new();
    // Not roomy: every write group freezes its MemTable, so a flush follows each write.
    let db = crate::open(&fs, false).unwrap();
    db.put("k", "v").unwrap();
    inject_full_disk(&fs, OpKind::Write, ".sst");
    // Freezes the first MemTable (full after one write) for the background flush, which
    // fails. The write itself may or may not see that failure, depending on timing.
    match db.put("k2", "v") {
        Ok(()) => {}
        r => assert_poisoned("put", r, ErrorKind::StorageFull),
    }
    assert_poisoned(
        "wait_for_compaction",
        db.wait_for_compaction(),
        ErrorKind::StorageFull,
    );
    fs.clear_faults();
    assert_poisoned("put", db.put("k2", "v"), ErrorKind::StorageFull);
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_poisoned("close", db.close(), ErrorKind::StorageFull);
}

/// Damage a background compaction reads is `Corruption` for every later caller (and
/// for `close`), not an opaque refusal.
#[test]
fn a_corrupt_table_read_by_a_background_compaction_reaches_later_callers_as_corruption() {
    let fs = FaultFs::new();
    let db = crate::open(&fs, true).unwrap();
    let fill = |v: &str| {
        // Overlapping tables, so compacting them merges (reads) rather than moves.
        for k in ["a", "m", "z"] {
            db.put(k, v).unwrap();
        }
        // The second flush schedules the compaction that meets the damage, which can
        // fail before this flush returns: then the flush reports it.
        if let Err(e) = db.flush() {
            assert!(v == "2" && e.is_corruption(), "flush {v}: {e}");
        }
    };
    fill("1");
    let table = fs
        .ops()
        .iter()
        .find(|o| o.kind == OpKind::Create && o.path.extension().is_some_and(|e| e == "sst"))
        .map(|o| o.path.clone())
        .unwrap();
    // Tables start with their first data block.
    fs.flip_bit_on_read(&table, 3, 1);
    fill("2");
    let e = db.wait_for_compaction().unwrap_err();
    assert!(e.is_corruption(), "{e}");
    assert_poisoned("put", db.put("b", "3"), ErrorKind::Corruption);
    assert_poisoned("flush", db.flush(), ErrorKind::Corruption);
    let e = db.close().unwrap_err();
    assert!(e.is_corruption(), "close: {e}");
}

/// Every writer of a commit group whose WAL sync fails receives that failure itself
/// (an `Io` error of kind `StorageFull`), the leader and the followers alike; a writer
/// arriving later is refused with `Poisoned` of the same kind.
#[test]
fn leader_and_followers_of_a_failed_group_see_the_same_error() {
    let fs = FaultFs::new();
    let db = crate::open(&fs, true).unwrap();
    let syncs = AtomicU64::new(0);
    fs.inject_error(
        Fault::when(move |op: &OpInfo| {
            if op.kind != OpKind::Sync || !op.path.to_string_lossy().contains(".log") {
                return false;
            }
            match syncs.fetch_add(1, Ordering::SeqCst) {
                // The first group's sync is slow, so the writers queue up behind it
                // and commit together in the next group.
                0 => {
                    std::thread::sleep(Duration::from_millis(300));
                    false
                }
                1 => true,
                _ => false,
            }
        }),
        std::io::ErrorKind::StorageFull,
    );
    let sync = strata::WriteOptions { sync: true };
    let errors = std::thread::scope(|s| {
        let first = s.spawn(|| db.write(one("first"), sync));
        std::thread::sleep(Duration::from_millis(100));
        let rest: Vec<_> = (0..6)
            .map(|i| {
                let db = &db;
                s.spawn(move || db.write(one(&format!("w{i}")), sync))
            })
            .collect();
        first.join().unwrap().unwrap();
        rest.into_iter()
            .map(|t| t.join().unwrap().unwrap_err())
            .collect::<Vec<_>>()
    });
    for e in &errors {
        assert_eq!(e.kind(), ErrorKind::StorageFull, "{e}");
    }
    let direct = errors
        .iter()
        .filter(|e| matches!(e, Error::Io { .. }))
        .count();
    assert!(
        direct >= 2,
        "only {direct} writers got the group's own error: {errors:?}"
    );
    assert_poisoned("a later put", db.put("late", "x"), ErrorKind::StorageFull);
}

fn one(key: &str) -> strata::WriteBatch {
    let mut b = strata::WriteBatch::new();
    b.put(key, "v");
    b
}
