//! Random workloads, crashed at random points with random amounts of unsynced data
//! kept, reopened and checked against the oracle; several crash generations per seed
//! (a crash may land in the middle of the previous recovery).
//!
//! The workload's writes are puts, deletes, batches, range deletes, keyspace drops and
//! optimistic transactions: read-modify-writes across both keyspaces that must commit,
//! and pairs of transactions from one snapshot whose second must be refused with a
//! conflict, leaving nothing.
//!
//! `STRATA_CRASH_SEEDS=N` runs N seeds instead of the default 1,000;
//! `STRATA_CRASH_SEED_START=S` starts at seed S.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use strata_faultfs::{CrashOptions, Rng};

use strata::{ErrorKind, Isolation};

use crate::oracle::{self, Model, Op};
use crate::{Harness, ROOMY_MEMTABLE, crash_and_check, universe_with_side};

const DEFAULT_SEEDS: u64 = 1000;
const KEYS: usize = 40;
const GENERATIONS: usize = 3;

/// Transactions committed, and second transactions of conflicting pairs refused, over
/// the run (for the summary, and to show the workload really ran them).
static COMMITTED: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn value(rng: &mut Rng, tag: u64, roomy: bool) -> Vec<u8> {
    // Mostly small values, some larger ones so tables have several blocks and levels
    // fill; in the roomy shape, now and then one big enough to rotate the WAL. The tag
    // makes every value unique, so a stale value cannot pass for a newer one.
    let len = if roomy && rng.one_in(25) {
        ROOMY_MEMTABLE as u64 / 4 + rng.below(1000)
    } else if rng.one_in(6) {
        200 + rng.below(600)
    } else {
        rng.below(40)
    } as usize;
    let mut v = format!("{tag}:").into_bytes();
    v.resize(v.len() + len, b'a' + (tag % 26) as u8);
    v
}

fn pick(rng: &mut Rng, keys: &[Vec<u8>]) -> Vec<u8> {
    keys[rng.below(keys.len() as u64) as usize].clone()
}

/// Model key `k`'s key in the other keyspace.
fn counterpart(k: &[u8]) -> Vec<u8> {
    match oracle::split(k) {
        (true, key) => key.to_vec(),
        (false, key) => [oracle::SIDE_PREFIX, key].concat(),
    }
}

/// The value a read-modify-write writes after reading `read`: unique (its tag) and
/// naming the tag of the value it read (`-`: none), so it is derived from the read.
fn derived(tag: u64, read: Option<&[u8]>) -> Vec<u8> {
    let from = read.map_or(&b"-"[..], |v| v.split(|&b| b == b':').next().unwrap_or(v));
    [format!("{tag}:after-").as_bytes(), from].concat()
}

/// Whether a transaction's read of `k` shows the acknowledged state: nothing else
/// writes while the workload's transactions are open, so their snapshot is `live`.
fn read_matches(h: &Harness, k: &[u8], read: Option<&[u8]>) -> Result<(), String> {
    if read == h.live.get(k).map(Vec::as_slice) {
        return Ok(());
    }
    Err(format!(
        "a transaction read {} as {:?}, the model has {:?}",
        String::from_utf8_lossy(k),
        read.map(String::from_utf8_lossy),
        h.live.get(k).map(|v| String::from_utf8_lossy(v))
    ))
}

/// A transaction that must commit: a read-modify-write of one key (read with
/// `get_for_update`, written with a value derived from what it read), half the time a
/// write of that key's counterpart in the other keyspace, and up to three more puts
/// and deletes in either keyspace; one in three serializable. Committed, it is one
/// write of the history: all of it or none after a crash, all of it if synced.
fn transaction(
    h: &mut Harness,
    rng: &mut Rng,
    tag: u64,
    keys: &[Vec<u8>],
    sync: bool,
) -> Result<(), String> {
    let isolation = if rng.one_in(3) {
        Isolation::Serializable
    } else {
        Isolation::Snapshot
    };
    let mut tx = h.transaction_with(isolation);
    let k = pick(rng, keys);
    let read = tx
        .get_for_update(&k)
        .map_err(|e| format!("get_for_update: {e}"))?;
    read_matches(h, &k, read.as_deref())?;
    tx.put(&k, &derived(tag, read.as_deref()));
    if rng.one_in(2) {
        let c = counterpart(&k);
        if rng.one_in(3) {
            tx.delete(&c);
        } else {
            tx.put(&c, &value(rng, tag + 1, h.roomy));
        }
    }
    for j in 0..rng.below(4) {
        let other = pick(rng, keys);
        if rng.one_in(4) {
            tx.delete(&other);
        } else {
            tx.put(&other, &value(rng, tag + 2 + j, h.roomy));
        }
    }
    h.commit(tx, sync)
        .map_err(|e| format!("a transaction's commit failed on a healthy file system: {e}"))?;
    COMMITTED.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Two transactions from one snapshot that both touch key `k`: the first (or, one time
/// in four, a plain write) commits; the second must fail with a conflict and write
/// nothing. How the second depends on `k` varies: it writes `k` (first committer wins),
/// reads it with `get_for_update`, or, serializable, reads it with a plain `get` or
/// scans a range holding it. It also writes a key and its counterpart, so it spans
/// both keyspaces. The harness records nothing for a refused commit and every value
/// is unique, so any of its writes seen later, live or after a crash, fails a check.
fn conflicting_pair(
    h: &mut Harness,
    rng: &mut Rng,
    tag: u64,
    keys: &[Vec<u8>],
    sync: bool,
) -> Result<(), String> {
    let e = |what: &'static str| move |e: strata::Error| format!("{what}: {e}");
    let k = pick(rng, keys);
    let how = rng.below(4);
    let isolation = if how >= 2 {
        Isolation::Serializable
    } else {
        Isolation::Snapshot
    };
    // Its snapshot is taken here: what the first commits below comes after it.
    let mut second = h.transaction_with(isolation);
    match how {
        0 => second.put(&k, &value(rng, tag + 1, h.roomy)),
        1 => {
            let read = second.get_for_update(&k).map_err(e("get_for_update"))?;
            read_matches(h, &k, read.as_deref())?;
        }
        2 => {
            let read = second.get(&k).map_err(e("get"))?;
            read_matches(h, &k, read.as_deref())?;
        }
        _ => {
            let x = oracle::in_keyspace_of(&k, &pick(rng, keys));
            let (a, b) = (
                k.clone().min(x.clone()),
                [k.clone().max(x), vec![0]].concat(),
            );
            let got = second.scan(&a, &b).map_err(e("scan"))?;
            let want: Model = h
                .live
                .range(a.clone()..b.clone())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if got != want {
                return Err("a transaction's scan disagrees with the model".into());
            }
        }
    }
    let other = pick(rng, keys);
    second.put(&other, &value(rng, tag + 2, h.roomy));
    second.put(&counterpart(&other), &value(rng, tag + 3, h.roomy));
    if rng.one_in(4) {
        // A plain write after the snapshot conflicts as a commit does.
        h.put(&k, &value(rng, tag, h.roomy), sync)
            .map_err(e("the plain write"))?;
    } else {
        let mut first = h.transaction();
        let read = first.get_for_update(&k).map_err(e("get_for_update"))?;
        read_matches(h, &k, read.as_deref())?;
        first.put(&k, &derived(tag, read.as_deref()));
        h.commit(first, sync).map_err(e("the first commit"))?;
        COMMITTED.fetch_add(1, Ordering::Relaxed);
    }
    match h.commit(second, sync) {
        Err(err) if err.kind() == ErrorKind::Conflict => {
            REFUSED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(()) => {
            return Err(format!(
                "the second of two conflicting transactions committed (way {how})"
            ));
        }
        Err(err) => {
            return Err(format!(
                "the second of two conflicting transactions failed with {err}, not a conflict"
            ));
        }
    }
    // Nothing of it shows (crashes check it again, through the history).
    for key in [other.clone(), counterpart(&other)] {
        let got = h.get(&key).map_err(e("get"))?;
        if got.as_deref() != h.live.get(&key).map(Vec::as_slice) {
            return Err(format!(
                "a transaction refused with a conflict wrote {}",
                String::from_utf8_lossy(&key)
            ));
        }
    }
    Ok(())
}

/// Runs `n` random operations; stops early (with `Ok`) never: every operation must
/// succeed on a healthy file system.
fn workload(h: &mut Harness, rng: &mut Rng, n: usize, keys: &[Vec<u8>]) -> Result<(), String> {
    for i in 0..n {
        let tag = rng.next_u64() >> 20;
        let key = |rng: &mut Rng| keys[rng.below(keys.len() as u64) as usize].clone();
        let sync = rng.one_in(8);
        let r = match rng.below(100) {
            0..44 => {
                let (k, v) = (key(rng), value(rng, tag, h.roomy));
                h.put(&k, &v, sync)
            }
            44..50 => {
                transaction(h, rng, tag, keys, sync).map_err(|e| format!("op {i}: {e}"))?;
                Ok(())
            }
            50..51 => {
                conflicting_pair(h, rng, tag, keys, sync).map_err(|e| format!("op {i}: {e}"))?;
                Ok(())
            }
            51..62 => {
                let k = key(rng);
                h.write(vec![(k, None)], sync)
            }
            62..78 => {
                let n = 2 + rng.below(5);
                let entries = (0..n)
                    .map(|j| {
                        let k = key(rng);
                        let v = (!rng.one_in(4)).then(|| value(rng, tag + j, h.roomy));
                        (k, v)
                    })
                    .collect();
                h.write(entries, sync)
            }
            78..80 => {
                // A range delete alone or among other entries of a batch.
                let a = key(rng);
                let b = crate::oracle::in_keyspace_of(&a, &key(rng));
                let range = if rng.one_in(4) {
                    // No end: everything from `a` on, as the database holds it then.
                    Op::DeleteFrom(a)
                } else {
                    Op::DeleteRange(a.clone().min(b.clone()), a.max(b))
                };
                let mut ops = vec![range];
                if rng.one_in(2) {
                    let k = key(rng);
                    ops.insert(rng.below(2) as usize, Op::Put(k, value(rng, tag, h.roomy)));
                }
                h.write_ops(ops, sync)
            }
            80..82 => h.flush(),
            82..83 => h.compact_all(),
            83..84 if rng.one_in(2) => h.drop_side(),
            84..88 => {
                // Merge operands, alone or among puts and deletes of the same keys:
                // each operand unique (its tag), so a lost or doubled one shows.
                let n = 1 + rng.below(4);
                let ops = (0..n)
                    .map(|j| {
                        let k = key(rng);
                        match rng.below(7) {
                            0 => Op::Put(k, value(rng, tag + j, h.roomy)),
                            6 => Op::PutTtl(k, value(rng, tag + j, h.roomy)),
                            1 => Op::Delete(k),
                            _ => Op::Merge(k, format!("+{}.{j}", tag).into_bytes()),
                        }
                    })
                    .collect();
                h.write_ops(ops, sync)
            }
            _ => {
                let k = key(rng);
                let got = h.get(&k).map_err(|e| format!("get failed: {e}"))?;
                if got.as_deref() != h.live.get(&k).map(Vec::as_slice) {
                    return Err(format!("op {i}: live get disagrees with the model"));
                }
                Ok(())
            }
        };
        r.map_err(|e| format!("op {i} failed on a healthy file system: {e}"))?;
    }
    Ok(())
}

fn crash_options(rng: &mut Rng) -> CrashOptions {
    match rng.below(4) {
        0 => CrashOptions::process(),
        1 => CrashOptions::power_loss(),
        _ => CrashOptions::random(rng.next_u64()),
    }
}

/// One seed: open, then per generation a workload, a crash at a random change, a
/// reopen and a check; the next generation starts from the recovered database.
fn run_seed(seed: u64) -> Result<(), String> {
    let mode = if seed.is_multiple_of(2) {
        strata::WalRecovery::TolerateTornTail
    } else {
        strata::WalRecovery::PointInTime
    };
    crate::RECOVERY.with(|r| r.set(mode));
    let mut rng = Rng::new(seed);
    // Both keyspaces: batches span them, and each one's MemTables fill and flush on
    // their own while the other holds WALs back.
    let keys = universe_with_side(KEYS);
    let fs = strata_faultfs::FaultFs::new();
    let roomy = rng.one_in(2);
    let mut h =
        Harness::open(fs, Model::new(), roomy).map_err(|e| format!("create failed: {e}"))?;
    for generation in 0..GENERATIONS {
        let n = 40 + rng.below(120) as usize;
        workload(&mut h, &mut rng, n, &keys)
            .map_err(|e| format!("generation {generation}: {e}"))?;
        h.check_reads(&keys)
            .map_err(|e| format!("generation {generation}: {e}"))?;
        let k = rng.up_to(h.fs.op_count());
        let opts = crash_options(&mut rng);
        // The old process dies: its background work fails instead of running on.
        h.fs.halt();
        let Harness {
            fs, db, hist, side, ..
        } = h;
        drop(side);
        drop(db);
        let (after, db, got) = crash_and_check(&fs, k, &opts, &hist, &keys, roomy)
            .map_err(|e| format!("generation {generation} (roomy: {roomy}, {mode:?}): {e}"))?;
        h = Harness::resume(after, db, got, roomy);
    }
    Ok(())
}

#[test]
fn random_workloads_survive_random_crashes() {
    let seeds = env_u64("STRATA_CRASH_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let first = env_u64("STRATA_CRASH_SEED_START").unwrap_or(0);
    let started = Instant::now();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4)) as u64;
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || {
                    let mut failed = Vec::new();
                    let mut seed = first + w;
                    while seed < first + seeds {
                        if let Err(e) = run_seed(seed) {
                            failed.push(format!("seed {seed}: {e}"));
                            if failed.len() >= 3 {
                                break;
                            }
                        }
                        seed += workers;
                    }
                    failed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let (committed, refused) = (
        COMMITTED.load(Ordering::Relaxed),
        REFUSED.load(Ordering::Relaxed),
    );
    eprintln!(
        "crash seeds {first}..{}: {} failed, {:.1?}; {committed} transactions committed, \
         {refused} refused with a conflict",
        first + seeds,
        failures.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // About 7 transactions and one conflicting pair per 100 operations, ~300 operations
    // a seed: over 100 seeds, far above these floors unless the workload stopped
    // issuing them (a few seeds may by chance have no conflicting pair).
    if seeds >= 100 {
        assert!(committed >= seeds * 5, "only {committed} transactions");
        assert!(refused >= seeds, "only {refused} conflicts refused");
    }
}
