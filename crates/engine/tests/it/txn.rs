//! Optimistic transactions: read-your-writes (gets and scans, both directions),
//! first-committer-wins on written keys, write skew allowed under snapshot isolation
//! and refused under serializable, phantoms refused under serializable, and no lost
//! update or broken invariant under concurrent retrying transactions — in the default
//! keyspace and across keyspaces (the model test reads and writes three).

use std::sync::Arc;

use strata::{Db, DbBuilder, ErrorKind, Isolation};

fn num(v: Option<bytes::Bytes>) -> i64 {
    v.map_or(0, |b| std::str::from_utf8(&b).unwrap().parse().unwrap())
}

fn db() -> Db {
    crate::tiny(DbBuilder::in_memory()).open().unwrap()
}

#[test]
fn a_transaction_reads_its_own_writes_in_gets_and_both_scan_directions() {
    let db = db();
    for k in ["a", "c", "e", "g"] {
        db.put(k, format!("db-{k}")).unwrap();
    }
    let mut tx = db.transaction();
    tx.put("b", "tx-b");
    tx.put("c", "tx-c");
    tx.delete("e");
    tx.put("h", "tx-h");
    assert_eq!(tx.get("c").unwrap().as_deref(), Some(&b"tx-c"[..]));
    assert_eq!(tx.get("e").unwrap(), None);
    assert_eq!(tx.get("a").unwrap().as_deref(), Some(&b"db-a"[..]));
    let want = [
        ("a", "db-a"),
        ("b", "tx-b"),
        ("c", "tx-c"),
        ("g", "db-g"),
        ("h", "tx-h"),
    ];
    let fwd: Vec<(String, String)> = tx
        .range::<&str, _>(..)
        .map(|kv| {
            let (k, v) = kv.unwrap();
            (
                String::from_utf8(k.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect();
    assert_eq!(fwd, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
    let back: Vec<String> = tx
        .range("b".."h")
        .rev()
        .map(|kv| String::from_utf8(kv.unwrap().0.to_vec()).unwrap())
        .collect();
    assert_eq!(back, ["g", "c", "b"]);
    // Both ends at once meet in the middle without repeating or skipping.
    let mut both = tx.range::<&str, _>(..);
    let first = both.next().unwrap().unwrap().0;
    let last = both.next_back().unwrap().unwrap().0;
    let middle: Vec<_> = both.map(|kv| kv.unwrap().0).collect();
    assert_eq!((&first[..], &last[..]), (&b"a"[..], &b"h"[..]));
    assert_eq!(
        middle,
        ["b", "c", "g"].map(|s| bytes::Bytes::from_static(s.as_bytes()))
    );
    // Nothing is visible outside before commit; everything after.
    assert_eq!(db.get("b").unwrap(), None);
    tx.commit().unwrap();
    assert_eq!(db.get("b").unwrap().as_deref(), Some(&b"tx-b"[..]));
    assert_eq!(db.get("e").unwrap(), None);
}

#[test]
fn the_second_writer_of_a_key_conflicts_and_writes_nothing() {
    let db = db();
    db.put("k", "1").unwrap();
    let mut t1 = db.transaction();
    let mut t2 = db.transaction();
    let v1 = num(t1.get("k").unwrap());
    let v2 = num(t2.get("k").unwrap());
    t1.put("k", (v1 + 1).to_string());
    t2.put("k", (v2 + 10).to_string());
    t2.put("other", "x");
    t1.commit().unwrap();
    let e = t2.commit().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("wrote"), "{e}");
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(
        db.get("other").unwrap(),
        None,
        "nothing of a conflicting commit is written"
    );
}

#[test]
fn a_plain_write_after_the_snapshot_conflicts_with_a_read_for_update() {
    let db = db();
    let mut tx = db.transaction();
    assert_eq!(tx.get_for_update("limit").unwrap(), None);
    db.put("limit", "5").unwrap();
    tx.put("derived", "from no limit");
    assert_eq!(tx.commit().unwrap_err().kind(), ErrorKind::Conflict);
    // A plain `get` is not checked under snapshot isolation.
    let mut tx = db.transaction();
    assert!(tx.get("limit").unwrap().is_some());
    db.put("limit", "6").unwrap();
    tx.put("derived", "from limit 5");
    tx.commit().unwrap();
}

/// The classic write skew: "at least one of x and y is 1". Each transaction reads
/// both and clears the other's flag if its own is set. Snapshot isolation lets both
/// commit (the invariant breaks); serializable refuses the second.
#[test]
fn write_skew_is_allowed_under_snapshot_isolation_and_refused_when_serializable() {
    for isolation in [Isolation::Snapshot, Isolation::Serializable] {
        let db = db();
        db.put("x", "1").unwrap();
        db.put("y", "1").unwrap();
        let mut t1 = db.transaction_with(isolation);
        let mut t2 = db.transaction_with(isolation);
        let (x1, y1) = (num(t1.get("x").unwrap()), num(t1.get("y").unwrap()));
        let (x2, y2) = (num(t2.get("x").unwrap()), num(t2.get("y").unwrap()));
        assert!(x1 + y1 >= 2 && x2 + y2 >= 2);
        t1.put("x", "0");
        t2.put("y", "0");
        t1.commit().unwrap();
        let second = t2.commit();
        let (x, y) = (num(db.get("x").unwrap()), num(db.get("y").unwrap()));
        match isolation {
            Isolation::Snapshot => {
                second.unwrap();
                assert_eq!(x + y, 0, "write skew: both committed");
            }
            _ => {
                assert_eq!(second.unwrap_err().kind(), ErrorKind::Conflict);
                assert_eq!(x + y, 1, "the invariant holds");
            }
        }
    }
}

/// A key added to a range a serializable transaction scanned (a phantom) is a
/// conflict; under snapshot isolation the scan is not checked.
#[test]
fn a_phantom_in_a_scanned_range_conflicts_when_serializable() {
    for isolation in [Isolation::Snapshot, Isolation::Serializable] {
        let db = db();
        db.put("order:1", "x").unwrap();
        let mut tx = db.transaction_with(isolation);
        let count = tx.prefix("order:").count();
        db.put("order:2", "y").unwrap();
        db.put("unrelated", "z").unwrap();
        tx.put("order-count", count.to_string());
        let result = tx.commit();
        if isolation == Isolation::Serializable {
            let e = result.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Conflict);
            assert!(
                e.to_string().contains("scanned") && e.to_string().contains("order:2"),
                "{e}"
            );
        } else {
            result.unwrap();
        }
    }
}

/// Concurrent transfers between accounts, retried on conflict, through the group
/// commit (several transactions share a group, so a member must be checked against
/// the ones accepted before it): no money appears or vanishes, no balance goes below
/// zero, every committed transfer is applied, and consistent readers always see the
/// total.
#[test]
fn concurrent_retrying_transfers_keep_every_invariant() {
    for isolation in [Isolation::Snapshot, Isolation::Serializable] {
        let db = Arc::new(db());
        const ACCOUNTS: usize = 6;
        for a in 0..ACCOUNTS {
            db.put(format!("acct:{a}"), "100").unwrap();
        }
        let committed = std::sync::atomic::AtomicU64::new(0);
        let conflicts = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (db, committed, conflicts) = (&db, &committed, &conflicts);
                s.spawn(move || {
                    let mut x = t.wrapping_mul(0x9E37_79B9) | 1;
                    let mut rnd = |n: u64| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x % n
                    };
                    for _ in 0..150 {
                        let (from, to) = (rnd(ACCOUNTS as u64), rnd(ACCOUNTS as u64));
                        let amount = 1 + rnd(30) as i64;
                        loop {
                            let mut tx = db.transaction_with(isolation);
                            let a = num(tx.get_for_update(format!("acct:{from}")).unwrap());
                            let b = num(tx.get_for_update(format!("acct:{to}")).unwrap());
                            if from == to || a < amount {
                                break;
                            }
                            tx.put(format!("acct:{from}"), (a - amount).to_string());
                            tx.put(format!("acct:{to}"), (b + amount).to_string());
                            match tx.commit() {
                                Ok(()) => {
                                    committed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    break;
                                }
                                Err(e) if e.kind() == ErrorKind::Conflict => {
                                    conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                });
            }
            // A reader: every transaction's snapshot sees the whole sum.
            let db = &db;
            s.spawn(move || {
                for _ in 0..200 {
                    let mut tx = db.transaction_with(isolation);
                    let sum: i64 = tx.prefix("acct:").map(|kv| num(Some(kv.unwrap().1))).sum();
                    assert_eq!(sum, 100 * ACCOUNTS as i64);
                }
            });
        });
        let balances: Vec<i64> = (0..ACCOUNTS)
            .map(|a| num(db.get(format!("acct:{a}")).unwrap()))
            .collect();
        assert_eq!(
            balances.iter().sum::<i64>(),
            100 * ACCOUNTS as i64,
            "{balances:?}"
        );
        assert!(balances.iter().all(|&b| b >= 0), "{balances:?}");
        assert!(committed.into_inner() > 100, "{isolation:?}");
        // The threads really raced: some commits lost and were retried.
        assert!(
            conflicts.into_inner() > 0,
            "{isolation:?}: no conflict ever happened"
        );
    }
}

/// Counters incremented by transactions from two threads never lose an increment.
#[test]
fn two_threads_incrementing_counters_lose_no_increment() {
    let db = db();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let db = &db;
            s.spawn(move || {
                for i in 0..300 {
                    let key = format!("counter:{}", i % 3);
                    loop {
                        let mut tx = db.transaction();
                        let n = num(tx.get(&key).unwrap());
                        tx.put(&key, (n + 1).to_string());
                        match tx.commit() {
                            Ok(()) => break,
                            Err(e) if e.kind() == ErrorKind::Conflict => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    let total: i64 = (0..3)
        .map(|c| num(db.get(format!("counter:{c}")).unwrap()))
        .sum();
    assert_eq!(total, 600);
}

/// Write skew across keyspaces: "at least one ward has a doctor on call", each ward's
/// flag in a keyspace of its own under the same key. Each transaction reads both
/// wards (by point reads, or by scans) and takes its own doctor off call. Snapshot
/// isolation lets both commit; serializable refuses the second, whose read of the
/// *other* keyspace changed.
#[test]
fn write_skew_across_keyspaces_is_allowed_under_snapshot_isolation_and_refused_when_serializable() {
    for isolation in [Isolation::Snapshot, Isolation::Serializable] {
        for by_scan in [false, true] {
            let db = db();
            let (a, b) = (
                db.keyspace("ward-a").unwrap(),
                db.keyspace("ward-b").unwrap(),
            );
            a.put("on-call", "1").unwrap();
            b.put("on-call", "1").unwrap();
            let mut t1 = db.transaction_with(isolation);
            let mut t2 = db.transaction_with(isolation);
            let on_call = |tx: &mut strata::Transaction| -> i64 {
                [&a, &b]
                    .into_iter()
                    .map(|ks| match by_scan {
                        false => num(tx.get_in(ks, "on-call").unwrap()),
                        true => tx
                            .prefix_in(ks, "on-")
                            .map(|kv| num(Some(kv.unwrap().1)))
                            .sum(),
                    })
                    .sum()
            };
            assert_eq!(on_call(&mut t1), 2);
            assert_eq!(on_call(&mut t2), 2);
            t1.put_in(&a, "on-call", "0");
            t2.put_in(&b, "on-call", "0");
            t1.commit().unwrap();
            let second = t2.commit();
            let now = num(a.get("on-call").unwrap()) + num(b.get("on-call").unwrap());
            let case = format!("{isolation:?}, by scan: {by_scan}");
            match isolation {
                Isolation::Snapshot => {
                    second.unwrap();
                    assert_eq!(now, 0, "{case}: write skew, both committed");
                }
                _ => {
                    let e = second.unwrap_err();
                    assert_eq!(e.kind(), ErrorKind::Conflict, "{case}: {e}");
                    let what = if by_scan { "scanned" } else { "read" };
                    assert!(e.to_string().contains(what), "{case}: {e}");
                    assert_eq!(now, 1, "{case}: the invariant holds");
                }
            }
            // The default keyspace never saw the key.
            assert_eq!(db.get("on-call").unwrap(), None);
        }
    }
}

/// Two threads increment counters in a non-default keyspace, and a total in a third
/// keyspace in the same transaction, retrying on conflict: no increment is lost and
/// the total always matches (the commit is atomic across keyspaces).
#[test]
fn two_threads_incrementing_counters_in_a_keyspace_lose_no_increment() {
    let db = db();
    let counters = db.keyspace("counters").unwrap();
    let totals = db.keyspace("totals").unwrap();
    let conflicts = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (db, counters, totals, conflicts) = (&db, &counters, &totals, &conflicts);
            s.spawn(move || {
                for i in 0..300 {
                    let key = format!("counter:{}", i % 3);
                    loop {
                        let mut tx = db.transaction();
                        let n = num(tx.get_in(counters, &key).unwrap());
                        let total = num(tx.get_in(totals, "all").unwrap());
                        tx.put_in(counters, &key, (n + 1).to_string());
                        tx.put_in(totals, "all", (total + 1).to_string());
                        match tx.commit() {
                            Ok(()) => break,
                            Err(e) if e.kind() == ErrorKind::Conflict => {
                                conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
        // A reader: every snapshot sees the counters and the total agree.
        let (db, counters, totals) = (&db, &counters, &totals);
        s.spawn(move || {
            for _ in 0..200 {
                let mut tx = db.transaction();
                let sum: i64 = tx
                    .prefix_in(counters, "counter:")
                    .map(|kv| num(Some(kv.unwrap().1)))
                    .sum();
                assert_eq!(sum, num(tx.get_in(totals, "all").unwrap()));
            }
        });
    });
    let sum: i64 = (0..3)
        .map(|c| num(counters.get(format!("counter:{c}")).unwrap()))
        .sum();
    assert_eq!(sum, 600);
    assert_eq!(num(totals.get("all").unwrap()), 600);
    assert_eq!(
        db.get("counter:0").unwrap(),
        None,
        "nothing in the default keyspace"
    );
    eprintln!("conflicts retried: {}", conflicts.into_inner());
}

#[test]
fn a_transaction_on_a_closed_database_fails_with_closed() {
    let db = db();
    let mut tx = db.transaction();
    tx.put("k", "v");
    db.clone().close().unwrap();
    assert_eq!(tx.commit().unwrap_err().kind(), ErrorKind::Closed);
}

mod model {
    //! A model of the conflict rules, run against the engine on random interleavings:
    //! transactions begin, read, scan and write in three keyspaces (the default one,
    //! through `Db`'s methods or its own handle, and two others) between plain writes,
    //! plain range deletes and other transactions' commits; each read must see the
    //! serial model's state as of the transaction's snapshot with its own writes, and
    //! each commit's outcome (applied or `Conflict`) and the final state of every
    //! keyspace must be exactly what the rules say, keyed by (keyspace, key).

    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;
    use strata::{DbBuilder, ErrorKind, Isolation, Keyspace, Transaction};

    #[derive(Clone, Debug)]
    enum Step {
        Begin(usize, bool),
        Get(usize, Ks, u8),
        GetForUpdate(usize, Ks, u8),
        Scan(usize, Ks, u8, u8, bool),
        Put(usize, Ks, u8, u8),
        Delete(usize, Ks, u8),
        Commit(usize),
        Plain(Ks, u8, u8),
        /// A range delete of `[a, b)` outside any transaction.
        PlainDeleteRange(Ks, u8, u8),
    }

    /// A keyspace as the steps name it: 0 is the default keyspace through `Db`'s and
    /// `Transaction`'s own methods, 1 and 2 are two other keyspaces, 3 is the default
    /// keyspace again through its handle (`_in` methods).
    type Ks = usize;
    const KS_NAMES: usize = 4;

    /// The keyspace a step's `Ks` is in the model: the default keyspace is one
    /// whichever way it is named.
    fn model_ks(ks: Ks) -> usize {
        if ks == 3 { 0 } else { ks }
    }

    const TXNS: usize = 3;
    const KEYS: u8 = 6;

    fn step() -> impl Strategy<Value = Step> {
        let t = 0..TXNS;
        let k = 0..KEYS;
        let ks = 0..KS_NAMES;
        prop_oneof![
            2 => (t.clone(), any::<bool>()).prop_map(|(t, s)| Step::Begin(t, s)),
            3 => (t.clone(), ks.clone(), k.clone()).prop_map(|(t, s, k)| Step::Get(t, s, k)),
            1 => (t.clone(), ks.clone(), k.clone()).prop_map(|(t, s, k)| Step::GetForUpdate(t, s, k)),
            1 => (t.clone(), ks.clone(), k.clone(), k.clone(), any::<bool>())
                .prop_map(|(t, s, a, b, rev)| Step::Scan(t, s, a.min(b), a.max(b), rev)),
            3 => (t.clone(), ks.clone(), k.clone(), any::<u8>()).prop_map(|(t, s, k, v)| Step::Put(t, s, k, v)),
            1 => (t.clone(), ks.clone(), k.clone()).prop_map(|(t, s, k)| Step::Delete(t, s, k)),
            2 => t.prop_map(Step::Commit),
            2 => (ks.clone(), k.clone(), any::<u8>()).prop_map(|(s, k, v)| Step::Plain(s, k, v)),
            1 => (ks, k.clone(), k).prop_map(|(s, a, b)| Step::PlainDeleteRange(s, a.min(b), a.max(b) + 1)),
        ]
    }

    fn key(k: u8) -> Vec<u8> {
        vec![b'k', b'0' + k]
    }

    /// A key of the model: (model keyspace, key).
    type MKey = (usize, Vec<u8>);

    /// The model of one open transaction.
    struct Model {
        serializable: bool,
        /// Commits (of any writer) counted since the start: a transaction's snapshot.
        snapshot: u64,
        writes: BTreeMap<MKey, Option<u8>>,
        checked_reads: BTreeSet<MKey>,
        /// Scanned `[a, b]` (inclusive) per model keyspace.
        ranges: Vec<(usize, Vec<u8>, Vec<u8>)>,
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn commits_succeed_or_conflict_exactly_as_the_rules_say(steps in prop::collection::vec(step(), 1..60)) {
            let db = DbBuilder::in_memory().open().unwrap();
            let handles: Vec<Option<Keyspace>> = vec![
                None,
                Some(db.keyspace("one").unwrap()),
                Some(db.keyspace("two").unwrap()),
                Some(db.keyspace("default").unwrap()),
            ];
            // The committed state, and for each key the commit count of its last write.
            let mut state: BTreeMap<MKey, u8> = BTreeMap::new();
            let mut last_write: BTreeMap<MKey, u64> = BTreeMap::new();
            // Range deletes: model keyspace, [a, b), commit count.
            let mut range_deletes: Vec<(usize, Vec<u8>, Vec<u8>, u64)> = Vec::new();
            let mut commits = 0u64;
            // history[c]: the state after c commits (a snapshot taken then reads it).
            let mut history = vec![state.clone()];
            let mut open: Vec<Option<(Transaction, Model)>> = (0..TXNS).map(|_| None).collect();
            for s in steps {
                match s {
                    Step::Begin(t, serializable) => {
                        let iso = if serializable { Isolation::Serializable } else { Isolation::Snapshot };
                        open[t] = Some((db.transaction_with(iso), Model {
                            serializable,
                            snapshot: commits,
                            writes: BTreeMap::new(),
                            checked_reads: BTreeSet::new(),
                            ranges: Vec::new(),
                        }));
                    }
                    Step::Plain(ks, k, v) => {
                        match &handles[ks] {
                            None => db.put(key(k), [v]).unwrap(),
                            Some(h) => h.put(key(k), [v]).unwrap(),
                        }
                        commits += 1;
                        let mk = (model_ks(ks), key(k));
                        state.insert(mk.clone(), v);
                        last_write.insert(mk, commits);
                        history.push(state.clone());
                    }
                    Step::PlainDeleteRange(ks, a, b) => {
                        let (a, b) = (key(a), key(b));
                        match &handles[ks] {
                            None => db.delete_range(a.clone()..b.clone()).unwrap(),
                            Some(h) => h.delete_range(a.clone()..b.clone()).unwrap(),
                        }
                        commits += 1;
                        let m = model_ks(ks);
                        state.retain(|(s, k), _| !(*s == m && a <= *k && *k < b));
                        range_deletes.push((m, a, b, commits));
                        history.push(state.clone());
                    }
                    Step::Get(t, ks, k) | Step::GetForUpdate(t, ks, k) => {
                        let for_update = matches!(s, Step::GetForUpdate(..));
                        if let Some((tx, m)) = open[t].as_mut() {
                            let got = match (&handles[ks], for_update) {
                                (None, false) => tx.get(key(k)),
                                (None, true) => tx.get_for_update(key(k)),
                                (Some(h), false) => tx.get_in(h, key(k)),
                                (Some(h), true) => tx.get_for_update_in(h, key(k)),
                            };
                            let got = got.unwrap().map(|v| v[0]);
                            let mk = (model_ks(ks), key(k));
                            // Its own write, else the state as of its snapshot.
                            let want = match m.writes.get(&mk) {
                                Some(own) => *own,
                                None => history[m.snapshot as usize].get(&mk).copied(),
                            };
                            prop_assert_eq!(got, want, "{:?}", s);
                            if for_update || m.serializable {
                                m.checked_reads.insert(mk);
                            }
                        }
                    }
                    Step::Scan(t, ks, a, b, rev) => {
                        if let Some((tx, m)) = open[t].as_mut() {
                            let it = match &handles[ks] {
                                None => tx.range(key(a)..=key(b)),
                                Some(h) => tx.range_in(h, key(a)..=key(b)),
                            };
                            let it: Box<dyn Iterator<Item = _>> = if rev { Box::new(it.rev()) } else { Box::new(it) };
                            let mut got: Vec<(Vec<u8>, u8)> = it
                                .map(|kv| { let (k, v) = kv.unwrap(); (k.to_vec(), v[0]) })
                                .collect();
                            if rev {
                                got.reverse();
                            }
                            let mut want = history[m.snapshot as usize].clone();
                            for (k, v) in &m.writes {
                                match v {
                                    Some(v) => { want.insert(k.clone(), *v); }
                                    None => { want.remove(k); }
                                }
                            }
                            let mk = model_ks(ks);
                            let want: Vec<(Vec<u8>, u8)> = want
                                .range((mk, key(a))..=(mk, key(b)))
                                .map(|((_, k), v)| (k.clone(), *v))
                                .collect();
                            prop_assert_eq!(got, want, "{:?}", s);
                            if m.serializable {
                                m.ranges.push((mk, key(a), key(b)));
                            }
                        }
                    }
                    Step::Put(t, ks, k, v) => {
                        if let Some((tx, m)) = open[t].as_mut() {
                            match &handles[ks] {
                                None => tx.put(key(k), [v]),
                                Some(h) => tx.put_in(h, key(k), [v]),
                            }
                            m.writes.insert((model_ks(ks), key(k)), Some(v));
                        }
                    }
                    Step::Delete(t, ks, k) => {
                        if let Some((tx, m)) = open[t].as_mut() {
                            match &handles[ks] {
                                None => tx.delete(key(k)),
                                Some(h) => tx.delete_in(h, key(k)),
                            }
                            m.writes.insert((model_ks(ks), key(k)), None);
                        }
                    }
                    Step::Commit(t) => {
                        let Some((tx, m)) = open[t].take() else { continue };
                        let after = |c: u64| c > m.snapshot;
                        let changed = |mk: &MKey| {
                            last_write.get(mk).is_some_and(|&c| after(c))
                                || range_deletes.iter().any(|(s, a, b, c)| {
                                    after(*c) && *s == mk.0 && *a <= mk.1 && mk.1 < *b
                                })
                        };
                        let scanned_changed = |(s, a, b): &(usize, Vec<u8>, Vec<u8>)| {
                            last_write
                                .range((*s, a.clone())..=(*s, b.clone()))
                                .any(|(_, &c)| after(c))
                                || range_deletes.iter().any(|(rs, ra, rb, c)| {
                                    // [ra, rb) meets [a, b]
                                    after(*c) && rs == s && ra <= b && a < rb
                                })
                        };
                        let conflict = !m.writes.is_empty()
                            && (m.writes.keys().any(changed)
                                || m.checked_reads.iter().any(changed)
                                || m.ranges.iter().any(scanned_changed));
                        let result = tx.commit();
                        if conflict {
                            prop_assert_eq!(result.unwrap_err().kind(), ErrorKind::Conflict);
                        } else {
                            result.unwrap();
                            if !m.writes.is_empty() {
                                commits += 1;
                                for (k, v) in m.writes {
                                    match v {
                                        Some(v) => { state.insert(k.clone(), v); }
                                        None => { state.remove(&k); }
                                    }
                                    last_write.insert(k, commits);
                                }
                                history.push(state.clone());
                            }
                        }
                    }
                }
            }
            let mut got: BTreeMap<MKey, u8> = BTreeMap::new();
            for (m, h) in handles.iter().enumerate().take(3) {
                let it = match h {
                    None => db.iter(),
                    Some(h) => h.iter(),
                };
                for kv in it {
                    let (k, v) = kv.unwrap();
                    got.insert((m, k.to_vec()), v[0]);
                }
            }
            prop_assert_eq!(got, state);
        }
    }
}
