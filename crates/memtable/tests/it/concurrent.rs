//! One writer inserts while several readers get and iterate: readers only ever see
//! complete entries, in order, and never miss an entry that was inserted before they
//! looked.
//!
//! The writer replays a schedule that readers can recompute: `ROUNDS` rounds, each
//! writing all `KEYS` keys in one fixed shuffled order, so operation `i` (sequence
//! `i + 1`) writes key `order[i % KEYS]` in round `i / KEYS`, as a tombstone for some
//! (round, key) pairs. Every value encodes its key and sequence number, so a torn or
//! misplaced entry shows. The writer publishes the last sequence it finished; a reader
//! that saw `s` published knows exactly which entries must exist.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use strata_core::key::compare_internal_keys;
use strata_core::{InternalKey, Lookup, ParsedInternalKey, SortedIter, ValueKind};
use strata_memtable::MemTable;

use crate::splitmix;

const KEYS: usize = 20_000;
const ROUNDS: usize = 20;
const READERS: usize = 3;

struct Schedule {
    keys: Vec<Vec<u8>>,
    /// `order[p]`: the key written at position `p` of every round.
    order: Vec<usize>,
    /// `position[k]`: where key `k` sits in `order`.
    position: Vec<usize>,
}

impl Schedule {
    fn new() -> Self {
        let mut s = 99;
        // Half binary keys, half with a long shared prefix, so hint ties and prefix
        // changes happen under concurrency too.
        let keys: Vec<Vec<u8>> = (0..KEYS)
            .map(|i| {
                let r = splitmix(&mut s);
                if i % 2 == 0 {
                    r.to_be_bytes().repeat(2)
                } else {
                    format!("user:{:012}", r % 1_000_000_000_000).into_bytes()
                }
            })
            .collect();
        let mut order: Vec<usize> = (0..KEYS).collect();
        for i in (1..KEYS).rev() {
            order.swap(i, (splitmix(&mut s) % (i as u64 + 1)) as usize);
        }
        let mut position = vec![0; KEYS];
        for (p, &k) in order.iter().enumerate() {
            position[k] = p;
        }
        Schedule {
            keys,
            order,
            position,
        }
    }

    fn op(&self, i: usize) -> (usize, u64, ValueKind) {
        let key = self.order[i % KEYS];
        let round = i / KEYS;
        let kind = if (key + round * 7).is_multiple_of(5) {
            ValueKind::Delete
        } else {
            ValueKind::Put
        };
        (key, i as u64 + 1, kind)
    }

    /// What a reader at snapshot `s` (all operations with sequence ≤ `s` done) must see.
    fn expected(&self, key: usize, s: u64) -> Lookup {
        let p = self.position[key] as u64;
        if s <= p {
            return Lookup::Absent;
        }
        let round = (s - 1 - p) / KEYS as u64;
        let (k, seq, kind) = self.op((round * KEYS as u64 + p) as usize);
        debug_assert_eq!(k, key);
        match kind {
            ValueKind::Put => Lookup::Found(value(&self.keys[key], seq).into()),
            ValueKind::Delete => Lookup::Deleted,
            ValueKind::Merge => Lookup::Merge,
            // The writers here put and delete only.
            ValueKind::ExpiringPut => unreachable!("no expiring puts are written"),
        }
    }
}

/// A value that names its key and sequence; its length varies with them.
fn value(key: &[u8], seq: u64) -> Vec<u8> {
    let mut v = seq.to_le_bytes().to_vec();
    v.extend_from_slice(key);
    v.resize(v.len() + (seq % 40) as usize, (seq % 251) as u8);
    v
}

/// Checks one entry is whole: its value matches its key and sequence.
fn check_entry(ikey: &[u8], v: &[u8]) -> u64 {
    let p = ParsedInternalKey::parse(ikey).expect("entry key does not parse");
    match p.kind {
        ValueKind::Put | ValueKind::Merge | ValueKind::ExpiringPut => {
            assert_eq!(v, value(p.user_key, p.seq), "torn or misplaced value")
        }
        ValueKind::Delete => assert!(v.is_empty()),
    }
    p.seq
}

fn reader(
    table: Arc<MemTable>,
    sched: Arc<Schedule>,
    published: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    id: u64,
) -> usize {
    let mut s = 1000 + id;
    let mut checks = 0;
    let mut round = 0u64;
    while !done.load(Ordering::Acquire) || round < 2 {
        round += 1;
        let snap = published.load(Ordering::Acquire);
        // Point reads at the published snapshot.
        for _ in 0..200 {
            let k = (splitmix(&mut s) % KEYS as u64) as usize;
            assert_eq!(
                table.get(&sched.keys[k], snap),
                sched.expected(k, snap),
                "get of key {k} at snapshot {snap}"
            );
            checks += 1;
        }
        // A short walk from a random key, forwards or backwards: strictly ordered,
        // whole entries.
        let mut it = table.iter();
        let k = (splitmix(&mut s) % KEYS as u64) as usize;
        it.seek(InternalKey::for_seek(&sched.keys[k], snap).as_bytes())
            .unwrap();
        let forward = splitmix(&mut s).is_multiple_of(2);
        let mut last: Option<Vec<u8>> = None;
        for _ in 0..300 {
            if !it.valid() {
                break;
            }
            check_entry(it.key(), it.value());
            if let Some(l) = &last {
                let o = compare_internal_keys(l, it.key());
                assert!(
                    if forward { o.is_lt() } else { o.is_gt() },
                    "iterator out of order"
                );
            }
            last = Some(it.key().to_vec());
            if forward {
                it.next().unwrap()
            } else {
                it.prev().unwrap()
            }
            checks += 1;
        }
        // Now and then a full scan, alternating direction: every entry with sequence
        // ≤ snap must be there, exactly once, in order.
        if round % 8 == (id % 8) {
            let mut it = table.iter();
            let backwards = round % 16 < 8;
            if backwards {
                it.seek_to_last().unwrap()
            } else {
                it.seek_to_first().unwrap()
            }
            let mut seen = 0u64;
            let mut last: Option<Vec<u8>> = None;
            while it.valid() {
                let seq = check_entry(it.key(), it.value());
                if seq <= snap {
                    seen += 1;
                }
                if let Some(l) = &last {
                    let o = compare_internal_keys(l, it.key());
                    assert!(
                        if backwards { o.is_gt() } else { o.is_lt() },
                        "scan out of order"
                    );
                }
                last = Some(it.key().to_vec());
                if backwards {
                    it.prev().unwrap()
                } else {
                    it.next().unwrap()
                }
            }
            assert_eq!(
                seen, snap,
                "a full scan missed entries (backwards: {backwards})"
            );
            checks += 1;
        }
    }
    checks
}

#[test]
fn readers_see_only_whole_ordered_entries_while_one_writer_inserts() {
    let sched = Arc::new(Schedule::new());
    let table = Arc::new(MemTable::new());
    let published = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS as u64)
        .map(|id| {
            let (t, sc, p, d) = (
                table.clone(),
                sched.clone(),
                published.clone(),
                done.clone(),
            );
            thread::spawn(move || reader(t, sc, p, d, id))
        })
        .collect();

    // The writer inserts in groups of 1..=16, as a group-commit leader would, and
    // publishes the group's last sequence once it is all in.
    let mut s = 5;
    let mut i = 0;
    while i < KEYS * ROUNDS {
        let group = 1 + (splitmix(&mut s) % 16) as usize;
        let mut w = table.writer().unwrap();
        for _ in 0..group.min(KEYS * ROUNDS - i) {
            let (k, seq, kind) = sched.op(i);
            let key = &sched.keys[k];
            w.insert(key, seq, kind, &value(key, seq)).unwrap();
            i += 1;
        }
        drop(w);
        published.store(i as u64, Ordering::Release);
    }
    done.store(true, Ordering::Release);
    table.freeze();

    for r in readers {
        let checks = r.join().expect("a reader failed");
        assert!(
            checks > 1000,
            "a reader did too little to prove anything: {checks}"
        );
    }
    assert_eq!(table.len(), KEYS * ROUNDS);
    for k in 0..KEYS {
        assert_eq!(
            table.get(&sched.keys[k], u64::MAX),
            sched.expected(k, (KEYS * ROUNDS) as u64)
        );
    }
}

#[test]
fn a_frozen_table_is_shared_by_threads_and_outlived_by_its_iterators() {
    let table = Arc::new(MemTable::new());
    for i in 0..5000u32 {
        table
            .insert(
                &i.to_be_bytes(),
                u64::from(i) + 1,
                ValueKind::Put,
                &i.to_le_bytes(),
            )
            .unwrap();
    }
    table.freeze();
    let iters: Vec<_> = (0..2).map(|_| table.iter()).collect();
    drop(table);
    let handles: Vec<_> = iters
        .into_iter()
        .map(|mut it| {
            thread::spawn(move || {
                it.seek_to_first().unwrap();
                let mut n = 0u32;
                while it.valid() {
                    assert_eq!(
                        it.key(),
                        InternalKey::new(&n.to_be_bytes(), u64::from(n) + 1, ValueKind::Put)
                            .as_bytes()
                    );
                    assert_eq!(it.value(), n.to_le_bytes());
                    n += 1;
                    it.next().unwrap();
                }
                n
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 5000);
    }
}
