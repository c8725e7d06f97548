//! The MemTable against a `BTreeMap` of internal keys, at the real node size: random
//! interleavings of puts and deletes at increasing sequence numbers with gets at random
//! snapshots and iterator seeks and steps.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use proptest::prelude::*;
use strata_core::{InternalKey, Lookup, SortedIter, ValueKind};
use strata_memtable::MemTable;

#[derive(Clone, Debug)]
enum Op {
    Put(usize, u8),
    Delete(usize),
    Get(usize, u64),
    Seek(usize, u64, Vec<bool>),
}

fn user_key() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(&b""[..]), Just(&b"tenant/0001/"[..])],
        proptest::collection::vec(any::<u8>(), 0..10),
    )
        .prop_map(|(p, s)| [p, &s[..]].concat())
}

fn op(keys: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..keys, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        3 => (0..keys).prop_map(Op::Delete),
        2 => (0..keys, any::<u64>()).prop_map(|(k, s)| Op::Get(k, s)),
        1 => (0..keys, any::<u64>(), proptest::collection::vec(any::<bool>(), 0..80))
            .prop_map(|(k, s, m)| Op::Seek(k, s, m)),
    ]
}

fn case() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<Op>)> {
    proptest::collection::vec(user_key(), 1..400).prop_flat_map(|keys| {
        let n = keys.len();
        (Just(keys), proptest::collection::vec(op(n), 0..3000))
    })
}

fn expected_get(model: &BTreeMap<InternalKey, Vec<u8>>, key: &[u8], snap: u64) -> Lookup {
    match model.range(InternalKey::for_seek(key, snap)..).next() {
        Some((ik, v)) if ik.user_key() == key => match ik.parsed().kind {
            ValueKind::Put => Lookup::Found(v.clone().into()),
            ValueKind::Delete => Lookup::Deleted,
            ValueKind::Merge => Lookup::Merge,
            ValueKind::ExpiringPut => {
                let (expires_at_ms, value) = strata_core::expiry::split_expiring(v).unwrap();
                Lookup::Expiring {
                    expires_at_ms,
                    value: value.to_vec().into(),
                }
            }
        },
        _ => Lookup::Absent,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn memtable_matches_btreemap_model((keys, ops) in case()) {
        let table = Arc::new(MemTable::new());
        let mut model: BTreeMap<InternalKey, Vec<u8>> = BTreeMap::new();
        let mut seq = 0u64;
        for op in ops {
            match op {
                Op::Put(k, len) => {
                    seq += 1;
                    let v = vec![len; usize::from(len) % 50];
                    table.insert(&keys[k], seq, ValueKind::Put, &v).unwrap();
                    model.insert(InternalKey::new(&keys[k], seq, ValueKind::Put), v);
                }
                Op::Delete(k) => {
                    seq += 1;
                    table.insert(&keys[k], seq, ValueKind::Delete, b"").unwrap();
                    model.insert(InternalKey::new(&keys[k], seq, ValueKind::Delete), vec![]);
                }
                Op::Get(k, s) => {
                    let snap = s % (seq + 2);
                    prop_assert_eq!(table.get(&keys[k], snap), expected_get(&model, &keys[k], snap));
                }
                Op::Seek(k, s, moves) => {
                    let target = InternalKey::for_seek(&keys[k], s % (seq + 2));
                    let mut it = table.iter();
                    it.seek(target.as_bytes()).unwrap();
                    let mut at = model.range(target..).next().map(|e| e.0.clone());
                    for forward in moves {
                        prop_assert_eq!(it.valid(), at.is_some());
                        let Some(a) = at.clone() else { break };
                        prop_assert_eq!(it.key(), a.as_bytes());
                        prop_assert_eq!(it.value(), &model[&a][..]);
                        if forward {
                            it.next().unwrap();
                            at = model.range((Bound::Excluded(a), Bound::Unbounded)).next().map(|e| e.0.clone());
                        } else {
                            it.prev().unwrap();
                            at = model.range(..a).next_back().map(|e| e.0.clone());
                        }
                    }
                }
            }
        }
        prop_assert_eq!(table.len(), model.len());
        let mut it = table.iter();
        it.seek_to_first().unwrap();
        for (k, v) in &model {
            prop_assert!(it.valid());
            prop_assert_eq!(it.key(), k.as_bytes());
            prop_assert_eq!(it.value(), &v[..]);
            it.next().unwrap();
        }
        prop_assert!(!it.valid());
        it.seek_to_last().unwrap();
        for (k, _) in model.iter().rev() {
            prop_assert_eq!(it.key(), k.as_bytes());
            it.prev().unwrap();
        }
        prop_assert!(!it.valid());
    }
}
