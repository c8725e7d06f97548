//! Several writers, readers and iterators at once, with background flushes and
//! compactions: every acknowledged write is readable, every read is a written value.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use strata_core::MemFs;

use crate::open_mem;

const WRITERS: u64 = 3;
const KEYS_PER_WRITER: u64 = 50;
const ROUNDS: u64 = 30;

fn key(writer: u64, k: u64) -> String {
    format!("w{writer}-k{k:03}")
}

fn value(writer: u64, k: u64, round: u64) -> String {
    format!("w{writer}-k{k:03}-r{round:04}")
}

fn round_of(v: &[u8]) -> u64 {
    std::str::from_utf8(&v[v.len() - 4..])
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn acknowledged_writes_are_visible_to_concurrent_readers() {
    let fs = MemFs::new();
    let db = open_mem(&fs);
    // progress[w] = last round writer w finished (all its keys written at that round).
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (db, progress) = (db.clone(), Arc::clone(&progress));
            s.spawn(move || {
                for round in 1..=ROUNDS {
                    for k in 0..KEYS_PER_WRITER {
                        db.put(key(w, k), value(w, k, round)).unwrap();
                    }
                    progress[w as usize].store(round, Ordering::Release);
                }
            });
        }
        for r in 0..2u64 {
            let (db, progress, stop) = (db.clone(), Arc::clone(&progress), Arc::clone(&stop));
            s.spawn(move || {
                let mut i = r;
                while !stop.load(Ordering::Acquire) {
                    i = i
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let (w, k) = ((i >> 33) % WRITERS, (i >> 40) % KEYS_PER_WRITER);
                    let floor = progress[w as usize].load(Ordering::Acquire);
                    match db.get(key(w, k)).unwrap() {
                        Some(v) => {
                            assert!(
                                v.starts_with(format!("{}-", key(w, k)).as_bytes()),
                                "foreign value {v:?}"
                            );
                            assert!(
                                round_of(&v) >= floor,
                                "read round {} after round {floor} was acknowledged",
                                round_of(&v)
                            );
                        }
                        None => assert_eq!(floor, 0, "acknowledged key {} missing", key(w, k)),
                    }
                }
            });
        }
        {
            let (db, stop) = (db.clone(), Arc::clone(&stop));
            s.spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let mut last: Option<bytes::Bytes> = None;
                    for kv in db.iter() {
                        let (k, v) = kv.unwrap();
                        assert!(
                            last.as_ref().is_none_or(|l| *l < k),
                            "iterator out of order"
                        );
                        assert!(v.starts_with(&k), "value {v:?} under key {k:?}");
                        last = Some(k);
                    }
                }
            });
        }
        // Let the writers finish, then stop the readers.
        s.spawn(move || {
            while progress.iter().any(|p| p.load(Ordering::Acquire) < ROUNDS) {
                std::thread::yield_now();
            }
            stop.store(true, Ordering::Release);
        });
    });
    for w in 0..WRITERS {
        for k in 0..KEYS_PER_WRITER {
            assert_eq!(
                db.get(key(w, k)).unwrap().unwrap(),
                value(w, k, ROUNDS).as_bytes()
            );
        }
    }
    let stats = db.stats();
    assert!(
        stats.flushes > 0 && stats.compactions + stats.trivial_moves > 0,
        "{stats:?}"
    );
}
