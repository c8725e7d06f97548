//! Exhaustive crash-point sweeps: each scripted scenario runs once on a recording file
//! system; then, for every prefix of its changes, the machine is crashed there (process
//! crash, strict power loss, and two random power losses), the database reopened and
//! checked against the oracle.

use std::time::{Duration, Instant};

use strata_faultfs::{CrashOptions, FaultFs, OpKind};

use crate::oracle::Model;
use crate::{Harness, crash_and_check, universe_with_side};

fn key(i: usize) -> Vec<u8> {
    format!("k{:02}", i % 40).into_bytes()
}

/// Runs `scenario` on a fresh database, closes it, and checks a crash after every
/// recorded change. Returns the recorded changes for the scenario's own assertions.
fn sweep(roomy: bool, scenario: impl FnOnce(&mut Harness)) -> Vec<strata_faultfs::OpRecord> {
    let fs = FaultFs::new();
    let mut h = Harness::open(fs.clone(), Model::new(), roomy).unwrap();
    scenario(&mut h);
    let Harness { db, hist, side, .. } = h;
    drop(side);
    db.close().unwrap();
    let keys = universe_with_side(40);
    let ops = fs.ops();
    let mut failures = Vec::new();
    for k in 0..=ops.len() {
        for opts in [
            CrashOptions::process(),
            CrashOptions::power_loss(),
            CrashOptions::random(k as u64),
            CrashOptions::random(!(k as u64)),
        ] {
            if let Err(e) = crash_and_check(&fs, k, &opts, &hist, &keys, roomy) {
                failures.push(e);
            }
        }
        assert!(failures.len() < 3, "{}", failures.join("\n\n"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!(
        "sweep: {} crash points × 4 crash modes checked",
        ops.len() + 1
    );
    ops
}

fn count(ops: &[strata_faultfs::OpRecord], kind: OpKind, name_has: &str) -> usize {
    ops.iter()
        .filter(|o| {
            o.kind == kind
                && o.to
                    .as_ref()
                    .unwrap_or(&o.path)
                    .to_string_lossy()
                    .contains(name_has)
        })
        .count()
}

fn wait_for(h: &Harness, what: &str, done: impl Fn(&strata::DbStats) -> bool) {
    let start = Instant::now();
    while !done(&h.db.stats()) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn create_and_first_synced_write() {
    let ops = sweep(true, |h| h.put(b"k00", b"first", true).unwrap());
    assert_eq!(
        count(&ops, OpKind::Rename, "CURRENT"),
        1,
        "CURRENT set at creation"
    );
    assert_eq!(
        count(&ops, OpKind::Create, ".sst"),
        1,
        "close flushed the write"
    );
}

#[test]
fn puts_deletes_and_batches_with_and_without_sync() {
    sweep(true, |h| {
        for i in 0..24 {
            let sync = i % 3 == 0;
            match i % 4 {
                0 | 1 => h.put(&key(i), format!("v{i}").as_bytes(), sync).unwrap(),
                2 => h.write(vec![(key(i - 2), None)], sync).unwrap(),
                _ => h
                    .write(
                        vec![
                            (key(i), Some(b"b".to_vec())),
                            (key(i + 1), None),
                            (key(i + 2), Some(vec![])),
                        ],
                        sync,
                    )
                    .unwrap(),
            }
        }
    });
}

#[test]
fn flush() {
    let ops = sweep(true, |h| {
        for i in 0..10 {
            h.put(&key(i), b"before", i == 4).unwrap();
        }
        h.flush().unwrap();
        for i in 5..12 {
            h.put(&key(i), b"after", false).unwrap();
        }
        h.write(vec![(key(0), None)], false).unwrap();
        h.flush().unwrap();
    });
    assert!(count(&ops, OpKind::Create, ".sst") >= 2);
}

#[test]
fn l0_to_l1_compaction_with_tombstones_over_older_values() {
    let ops = sweep(true, |h| {
        for i in 0..12 {
            h.put(&key(i), format!("old{i}").as_bytes(), false).unwrap();
        }
        h.flush().unwrap();
        // Tombstones in the second table over values in the first: after the L0→L1
        // compaction they shadow (or drop) them; a crash must never bring one back.
        for i in 0..12 {
            if i % 2 == 0 {
                h.write(vec![(key(i), None)], false).unwrap();
            } else {
                h.put(&key(i), format!("new{i}").as_bytes(), false).unwrap();
            }
        }
        h.flush().unwrap();
        wait_for(h, "the L0→L1 compaction", |s| {
            s.compactions + s.trivial_moves >= 1
        });
        h.compact_all().unwrap();
    });
    assert!(
        count(&ops, OpKind::Create, ".sst") >= 3,
        "flushes and a compaction output"
    );
}

#[test]
fn manifest_roll_over() {
    // One write group per MemTable: every write is a flush and a manifest edit, and the
    // 1 KiB manifest rolls over every few dozen edits.
    let ops = sweep(false, |h| {
        for i in 0..40 {
            h.put(&key(i), format!("v{i}").as_bytes(), i % 7 == 0)
                .unwrap();
        }
    });
    assert!(
        count(&ops, OpKind::Create, "MANIFEST") >= 3,
        "the manifest rolled over (creation + roll + close)"
    );
}

#[test]
fn wal_rotation_on_large_values() {
    let big = vec![b'x'; crate::ROOMY_MEMTABLE / 3];
    let ops = sweep(true, |h| {
        for i in 0..8 {
            h.put(&key(i), &big, i == 5).unwrap();
            h.put(&key(i + 10), b"small", false).unwrap();
        }
    });
    assert!(count(&ops, OpKind::Create, ".log") >= 3, "the WAL rotated");
}

/// A crash at any point of a recovery (replaying WALs into a table, the new manifest,
/// the switch of CURRENT, the removal of old files) keeps every write.
#[test]
fn crash_during_recovery() {
    let keys = crate::universe(40);
    for roomy in [true, false] {
        let fs = FaultFs::new();
        let mut h = Harness::open(fs.clone(), Model::new(), roomy).unwrap();
        for i in 0..30 {
            h.put(&key(i), format!("v{i}").as_bytes(), false).unwrap();
            if i % 5 == 0 {
                h.write(vec![(key(i + 3), None)], false).unwrap();
            }
        }
        let state = h.live.clone();
        // A process crash keeps everything; the next open has WALs to replay.
        let crashed = fs.crash(&CrashOptions::process());
        drop(h);
        let db = crate::open(&crashed, roomy).unwrap();
        drop(db);
        let hist = crate::oracle::History::new(state);
        for k in 0..=crashed.op_count() {
            for opts in [CrashOptions::power_loss(), CrashOptions::random(k as u64)] {
                crash_and_check(&crashed, k, &opts, &hist, &keys, roomy).unwrap();
            }
        }
    }
}

/// Range deletes through every stage: in the WAL (alone and in batches), flushed into
/// a table's range-deletion block, then an L0→L1 compaction that applies them to
/// older tables and a full compaction that drops them at the bottom. A crash at any
/// point must never bring a range-deleted key back or lose a later write.
#[test]
fn range_deletes_through_flush_and_compaction() {
    use crate::oracle::Op;
    let ops = sweep(true, |h| {
        for i in 0..16 {
            h.put(&key(i), format!("old{i}").as_bytes(), false).unwrap();
        }
        h.flush().unwrap();
        h.write_ops(vec![Op::DeleteRange(key(2), key(9))], false)
            .unwrap();
        h.write_ops(
            vec![
                Op::Put(key(20), b"in-batch".to_vec()),
                Op::DeleteRange(key(11), key(14)),
                Op::Put(key(12), b"after-the-range".to_vec()),
            ],
            true,
        )
        .unwrap();
        h.put(&key(4), b"rewritten", false).unwrap();
        h.flush().unwrap();
        wait_for(h, "the L0→L1 compaction", |s| {
            s.compactions + s.trivial_moves >= 1
        });
        h.write_ops(vec![Op::DeleteRange(key(0), key(30))], false)
            .unwrap();
        h.put(&key(5), b"survivor", false).unwrap();
        h.compact_all().unwrap();
    });
    assert!(
        count(&ops, OpKind::Create, ".sst") >= 3,
        "flushes and compaction outputs"
    );
}

/// Merge operands through every stage: appended to a value and to nothing, in batches
/// with puts, deletes and a put with a time to live, in both keyspaces, synced and
/// not, then flushed, compacted
/// (folded into puts at the bottom) and merged onto again. A crash at any point
/// recovers a prefix of the writes with each key's operands folded in order.
#[test]
fn merges_through_flush_and_compaction() {
    use crate::oracle::{Op, SIDE_PREFIX};
    let side = |i: usize| [SIDE_PREFIX, &key(i)].concat();
    let merge = |k: Vec<u8>, operand: &str| Op::Merge(k, operand.as_bytes().to_vec());
    let ops = sweep(true, |h| {
        for i in 0..6 {
            h.put(&key(i), format!("base{i}").as_bytes(), false)
                .unwrap();
        }
        for round in 0..4 {
            h.write_ops(
                vec![
                    merge(key(round), &format!("+a{round}")),
                    merge(key(7), &format!("+b{round}")),
                    merge(side(round), &format!("+s{round}")),
                ],
                round % 2 == 1,
            )
            .unwrap();
        }
        h.flush().unwrap();
        h.write_ops(
            vec![
                merge(key(1), "+before-delete"),
                Op::Delete(key(1)),
                merge(key(1), "+after-delete"),
                Op::Put(key(2), b"reset".to_vec()),
                merge(key(2), "+after-put"),
                // An expiring value (an hour to live): its expiry through every stage.
                Op::PutTtl(key(9), b"expiring".to_vec()),
                merge(key(9), "+onto-expiring"),
            ],
            true,
        )
        .unwrap();
        h.flush().unwrap();
        h.compact_all().unwrap();
        h.write_ops(vec![merge(key(0), "+late"), merge(side(0), "+late")], false)
            .unwrap();
    });
    assert!(
        count(&ops, OpKind::Create, ".sst") >= 3,
        "flushes and compaction outputs"
    );
}

/// Two keyspaces through every stage: batches spanning both, a quiet keyspace holding
/// the oldest WAL while the other one's MemTables fill and flush (in the roomy shape,
/// so WALs hold many records and outlive the MemTables flushed from them), a range
/// delete in the side keyspace, a flush of both and a full compaction. A crash at any
/// point keeps both keyspaces at one prefix of the writes.
#[test]
fn keyspaces_sharing_wals_through_flushes() {
    use crate::oracle::{Op, SIDE_PREFIX};
    let side = |i: usize| [SIDE_PREFIX, &key(i)].concat();
    for roomy in [true, false] {
        let ops = sweep(roomy, |h| {
            h.put(&side(1), b"quiet", false).unwrap();
            for i in 0..12 {
                // Large values fill the roomy MemTable every few writes.
                let big = vec![b'a' + i as u8; 30 << 10];
                h.put(&key(i), &big, false).unwrap();
                // A side write between each two: lost with its WAL's unsynced tail,
                // while the default keyspace's later writes may sit in a table.
                h.put(&side(i % 5 + 6), format!("between{i}").as_bytes(), false)
                    .unwrap();
                if i % 4 == 0 {
                    h.write_ops(
                        vec![
                            Op::Put(side(i + 2), format!("s{i}").into_bytes()),
                            Op::Put(key(i + 20), format!("d{i}").into_bytes()),
                            Op::Delete(side(1)),
                        ],
                        i == 11,
                    )
                    .unwrap();
                }
                if roomy && (i == 4 || i == 8) {
                    // A flush of the default keyspace's MemTable, whose WALs the side
                    // keyspace keeps on disk, before the next writes.
                    let n = (i / 4) as u64;
                    wait_for(h, "a flush", |s| s.flushes >= n);
                }
            }
            h.write_ops(vec![Op::DeleteRange(side(0), side(5))], false)
                .unwrap();
            h.put(&side(3), b"after-the-range", false).unwrap();
            h.flush().unwrap();
            h.compact_all().unwrap();
        });
        assert!(count(&ops, OpKind::Create, ".log") >= 3, "the WAL rotated");
    }
}

/// A keyspace made, written, dropped and made again, with writes to the default
/// keyspace around each step: a crash at any point keeps one prefix of it all — never
/// a dropped keyspace's keys back, never a write before the drop lost while the drop
/// stays.
#[test]
fn keyspace_create_and_drop() {
    use crate::oracle::{Op, SIDE_PREFIX};
    let side = |i: usize| [SIDE_PREFIX, &key(i)].concat();
    for roomy in [true, false] {
        sweep(roomy, |h| {
            for i in 0..4 {
                h.write_ops(
                    vec![
                        Op::Put(side(i), format!("first{i}").into_bytes()),
                        Op::Put(key(i), format!("d{i}").into_bytes()),
                    ],
                    false,
                )
                .unwrap();
            }
            h.flush().unwrap();
            h.put(&side(9), b"unflushed", false).unwrap();
            h.put(&key(9), b"before the drop", false).unwrap();
            h.drop_side().unwrap();
            h.put(&key(10), b"after the drop", false).unwrap();
            h.put(&side(2), b"second", false).unwrap();
            h.drop_side().unwrap();
            h.put(&side(3), b"third", false).unwrap();
            h.flush().unwrap();
        });
    }
}

/// Transactions through WAL, flush and compaction, in both shapes: read-modify-writes
/// of a counter (read with `get_for_update`, the next value derived from it), each
/// commit also putting and deleting keys of both keyspaces, synced and not; a pair of
/// transactions from one snapshot whose second must be refused with a conflict (the
/// harness records nothing for it, so a leaked write of it fails the oracle); then
/// serializable ones after a flush. A crash at any point keeps one prefix of the
/// commits, each whole, with every acknowledged synced commit in it.
#[test]
fn transactions_across_keyspaces() {
    use crate::oracle::SIDE_PREFIX;
    let side = |i: usize| [SIDE_PREFIX, &key(i)].concat();
    for roomy in [true, false] {
        sweep(roomy, |h| {
            // The counter is k00 in the default keyspace; its value is "<n>:<i>".
            let bump = |h: &mut crate::Harness, i: usize, sync: bool| {
                let mut tx = h.transaction();
                let read = tx.get_for_update(&key(0)).unwrap();
                let n: u64 = read.as_deref().map_or(0, |v| {
                    let v = std::str::from_utf8(v).unwrap();
                    v.split(':').next().unwrap().parse().unwrap()
                });
                tx.put(&key(0), format!("{}:{i}", n + 1).as_bytes());
                tx.put(&side(i), format!("count{}", n + 1).as_bytes());
                tx.put(&key(i + 1), format!("d{i}").as_bytes());
                if i >= 2 {
                    tx.delete(&side(i - 2));
                }
                h.commit(tx, sync).unwrap();
                n + 1
            };
            for i in 0..6 {
                assert_eq!(bump(h, i, i % 3 == 2), i as u64 + 1);
            }
            // The conflicting pair: both read the counter at one snapshot.
            let mut loser = h.transaction();
            loser.get_for_update(&key(0)).unwrap();
            loser.put(&key(0), b"lost update");
            loser.put(&side(20), b"loser");
            loser.put(&key(20), b"loser");
            assert_eq!(bump(h, 6, false), 7);
            let err = h.commit(loser, true).unwrap_err();
            assert_eq!(err.kind(), strata::ErrorKind::Conflict, "{err}");
            h.flush().unwrap();
            for i in 7..10 {
                let mut tx = h.transaction_with(strata::Isolation::Serializable);
                let seen = tx.scan(&side(0), &side(40)).unwrap();
                assert_eq!(
                    seen.len(),
                    h.live.range(side(0)..side(40)).count(),
                    "the scan sees the side keyspace as acknowledged"
                );
                tx.put(&side(30 + i), format!("saw{}", seen.len()).as_bytes());
                tx.delete(&key(i - 5));
                h.commit(tx, i == 8).unwrap();
                bump(h, i, i == 9);
            }
        });
    }
}
