//! Concurrent writers (group commit: one WAL record and at most one fsync for many
//! writers' batches), crashed at a random change under a random crash mode.
//!
//! Each thread owns the keys `i % THREADS == t`, so its writes are ordered; for each
//! thread the recovered state of its keys must be the state after a prefix of its
//! writes (I2), including its synced writes (I1) — and including every write any thread
//! had acknowledged before another thread's synced write (or a flush) *started*, since
//! that write's fsync covers everything before it in the log.

use std::sync::{Arc, Mutex};

use strata::{WriteBatch, WriteOptions};
use strata_faultfs::{CrashOptions, FaultFs, Rng};

use crate::oracle::{History, Model, Op, Write};
use crate::universe;

const THREADS: usize = 3;
const KEYS: usize = 39;

/// A thread's writes, and `(start, acked)` of every durability barrier any thread
/// made: acknowledged synced writes and flushes.
#[derive(Default)]
struct Log {
    writes: Vec<Vec<Write>>,
    barriers: Vec<(usize, usize)>,
}

fn run_seed(seed: u64) -> Result<(), String> {
    let fs = FaultFs::new();
    let roomy = seed.is_multiple_of(2);
    let db = crate::open(&fs, roomy).map_err(|e| e.to_string())?;
    let keys = universe(KEYS);
    let log = Arc::new(Mutex::new(Log {
        writes: vec![Vec::new(); THREADS],
        barriers: Vec::new(),
    }));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (db, fs, log, keys) = (db.clone(), fs.clone(), Arc::clone(&log), &keys);
            s.spawn(move || {
                let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(t as u64));
                let own = |rng: &mut Rng| {
                    keys[rng.below((KEYS / THREADS) as u64) as usize * THREADS + t].clone()
                };
                for i in 0..50u64 {
                    if t == 0 && rng.one_in(25) {
                        let start = fs.op_count();
                        db.flush().unwrap();
                        log.lock().unwrap().barriers.push((start, fs.op_count()));
                        continue;
                    }
                    let n = 1 + rng.below(3);
                    let entries: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..n)
                        .map(|j| {
                            let k = own(&mut rng);
                            let v = (!rng.one_in(4)).then(|| {
                                let mut v = format!("{seed}.{t}.{i}.{j}.").into_bytes();
                                let max = if rng.one_in(8) { 600 } else { 30 };
                                v.resize(v.len() + rng.below(max) as usize, b'v');
                                v
                            });
                            (k, v)
                        })
                        .collect();
                    let mut batch = WriteBatch::new();
                    for (k, v) in &entries {
                        match v {
                            Some(v) => batch.put(k, v),
                            None => batch.delete(k),
                        };
                    }
                    let sync = rng.one_in(5);
                    let start = fs.op_count();
                    db.write(batch, WriteOptions { sync }).unwrap();
                    let acked = fs.op_count();
                    let mut l = log.lock().unwrap();
                    l.writes[t].push(Write {
                        entries: entries.into_iter().map(Op::from).collect(),
                        sync,
                        start,
                        acked: Some(acked),
                    });
                    if sync {
                        l.barriers.push((start, acked));
                    }
                }
            });
        }
    });
    let mut rng = Rng::new(seed ^ 0xc0ffee);
    let k = rng.up_to(fs.op_count());
    let opts = match rng.below(3) {
        0 => CrashOptions::process(),
        1 => CrashOptions::power_loss(),
        _ => CrashOptions::random(rng.next_u64()),
    };
    fs.halt();
    drop(db);
    let after = fs.crash_at(k, &opts);
    let db = crate::open(&after, roomy).map_err(|e| format!("reopen failed (I4): {e}"))?;
    let got = crate::oracle::read_all(&db, &keys)?;
    let log = log.lock().unwrap();
    for t in 0..THREADS {
        let mut hist = History::new(Model::new());
        hist.writes = log.writes[t].clone();
        // A barrier that started after this thread's first `before` writes were
        // acknowledged makes them durable once it is acknowledged.
        for &(start, acked) in &log.barriers {
            let before = hist
                .writes
                .iter()
                .take_while(|w| w.acked.is_some_and(|a| a <= start))
                .count();
            hist.barriers.push((acked, before));
        }
        let mine: Model = got
            .iter()
            .filter(|(key, _)| {
                keys.iter()
                    .position(|x| x == *key)
                    .is_some_and(|i| i % THREADS == t)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        hist.check(&mine, k, opts.is_process_crash()).map_err(|e| {
            format!(
                "thread {t}, crash after change {k} of {} ({opts:?}): {e}",
                fs.op_count()
            )
        })?;
    }
    Ok(())
}

#[test]
fn concurrent_writers_survive_random_crashes() {
    let seeds = std::env::var("STRATA_CRASH_SEEDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(300, |n| n / 4);
    let failures: Vec<String> = (0..seeds)
        .filter_map(|seed| run_seed(seed).err().map(|e| format!("seed {seed}: {e}")))
        .take(3)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
