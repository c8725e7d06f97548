//! Random workloads, crashed at random points with random amounts of unsynced data
//! kept, reopened and checked against the oracle; several crash generations per seed
//! (a crash may land in the middle of the previous recovery).
//!
//! `STRATA_CRASH_SEEDS=N` runs N seeds instead of the default 1,000;
//! `STRATA_CRASH_SEED_START=S` starts at seed S.

use std::time::Instant;

use strata_faultfs::{CrashOptions, Rng};

use crate::oracle::{Model, Op};
use crate::{Harness, ROOMY_MEMTABLE, crash_and_check, universe_with_side};

const DEFAULT_SEEDS: u64 = 1000;
const KEYS: usize = 40;
const GENERATIONS: usize = 3;

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

/// Runs `n` random operations; stops early (with `Ok`) never: every operation must
/// succeed on a healthy file system.
fn workload(h: &mut Harness, rng: &mut Rng, n: usize, keys: &[Vec<u8>]) -> Result<(), String> {
    for i in 0..n {
        let tag = rng.next_u64() >> 20;
        let key = |rng: &mut Rng| keys[rng.below(keys.len() as u64) as usize].clone();
        let sync = rng.one_in(8);
        let r = match rng.below(100) {
            0..50 => {
                let (k, v) = (key(rng), value(rng, tag, h.roomy));
                h.put(&k, &v, sync)
            }
            50..62 => {
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
    eprintln!(
        "crash seeds {first}..{}: {} failed, {:.1?}",
        first + seeds,
        failures.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
