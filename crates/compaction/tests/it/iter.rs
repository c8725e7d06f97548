//! MergingIter and LevelIter against a sorted-vector model, both directions.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use strata_compaction::mem::{Table, TableStore};
use strata_compaction::{FileMeta, LevelIter, MergingIter, TableOpener};
use strata_core::{
    Error, InternalKey, Result, SortedIter, ValueKind, VecIter, compare_internal_keys,
};

use crate::ik;

#[derive(Clone, Debug)]
enum Op {
    First,
    Last,
    Seek(u8, u64),
    Next,
    Prev,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::First),
        1 => Just(Op::Last),
        2 => (0..22u8, 0..9u64).prop_map(|(k, s)| Op::Seek(k, s)),
        4 => Just(Op::Next),
        4 => Just(Op::Prev),
    ]
}

/// Entries of one input: unique (user key, seq) pairs.
fn input() -> impl Strategy<Value = BTreeSet<(u8, u64)>> {
    proptest::collection::btree_set((0..20u8, 0..8u64), 0..25)
}

/// User key `k`: 2, 6 or 10 bytes, in an order unlike `k`'s, with shared prefixes, so
/// merges compare keys whose first 8 bytes differ in several places, tie, or are
/// zero-padded.
fn ukey(k: u8) -> Vec<u8> {
    let mut uk = vec![b'p'; usize::from(k % 3) * 4];
    uk.extend_from_slice(&[k.wrapping_mul(97), k]);
    uk
}

fn sorted_entries(set: &BTreeSet<(u8, u64)>, tag: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut v: Vec<(Vec<u8>, Vec<u8>)> = set
        .iter()
        .map(|&(k, s)| {
            (
                ik(&ukey(k), s, ValueKind::Put),
                format!("{tag}:{k}:{s}").into_bytes(),
            )
        })
        .collect();
    v.sort_by(|a, b| compare_internal_keys(&a.0, &b.0));
    v
}

/// The model: every entry in `(internal key, input index)` order and a cursor.
struct Model {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    pos: Option<usize>,
}

impl Model {
    fn new(inputs: &[Vec<(Vec<u8>, Vec<u8>)>]) -> Self {
        let mut entries: Vec<(Vec<u8>, usize, Vec<u8>)> = inputs
            .iter()
            .enumerate()
            .flat_map(|(i, es)| es.iter().map(move |(k, v)| (k.clone(), i, v.clone())))
            .collect();
        entries.sort_by(|a, b| compare_internal_keys(&a.0, &b.0).then(a.1.cmp(&b.1)));
        Model {
            entries: entries.into_iter().map(|(k, _, v)| (k, v)).collect(),
            pos: None,
        }
    }

    fn apply(&mut self, op: &Op) {
        let n = self.entries.len();
        self.pos = match *op {
            Op::First => (n > 0).then_some(0),
            Op::Last => n.checked_sub(1),
            Op::Seek(k, s) => {
                let t = InternalKey::for_seek(&ukey(k), s);
                let i = self
                    .entries
                    .partition_point(|(key, _)| compare_internal_keys(key, t.as_bytes()).is_lt());
                (i < n).then_some(i)
            }
            Op::Next => self.pos.map(|p| p + 1).filter(|&p| p < n),
            Op::Prev => self.pos.and_then(|p| p.checked_sub(1)),
        };
    }
}

fn apply(it: &mut dyn SortedIter, op: &Op) -> Result<()> {
    match *op {
        Op::First => it.seek_to_first(),
        Op::Last => it.seek_to_last(),
        Op::Seek(k, s) => it.seek(InternalKey::for_seek(&ukey(k), s).as_bytes()),
        Op::Next => it.next(),
        Op::Prev => it.prev(),
    }
}

fn check_against_model(
    it: &mut dyn SortedIter,
    model: &mut Model,
    ops: &[Op],
) -> std::result::Result<(), TestCaseError> {
    for (step, op) in ops.iter().enumerate() {
        apply(it, op).unwrap();
        model.apply(op);
        prop_assert_eq!(it.valid(), model.pos.is_some(), "step {} {:?}", step, op);
        if let Some(p) = model.pos {
            prop_assert_eq!(it.key(), &model.entries[p].0[..], "step {} {:?}", step, op);
            prop_assert_eq!(
                it.value(),
                &model.entries[p].1[..],
                "step {} {:?}",
                step,
                op
            );
            prop_assert_eq!(&it.value_bytes()[..], &model.entries[p].1[..]);
        }
    }
    Ok(())
}

/// Stores `entries` cut into non-empty tables at the given cut points.
fn level_files(
    store: &TableStore,
    entries: &[(Vec<u8>, Vec<u8>)],
    cuts: &BTreeSet<usize>,
) -> Vec<Arc<FileMeta>> {
    let mut files = Vec::new();
    let mut start = 0;
    for &c in cuts.iter().chain([&entries.len()]) {
        if c > start && c <= entries.len() {
            files.push(
                store
                    .add(Table::from_sorted(entries[start..c].iter().cloned()))
                    .unwrap(),
            );
            start = c;
        }
    }
    files
}

/// Counts calls to the wrapped opener.
fn counting(opener: TableOpener, opens: Arc<AtomicUsize>) -> TableOpener {
    Arc::new(move |m: &FileMeta| {
        opens.fetch_add(1, Ordering::Relaxed);
        opener(m)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::cases(256)))]

    /// Any mix of seeks, steps and direction switches reads exactly the sorted union,
    /// with equal internal keys in input order.
    #[test]
    fn merging_iter_matches_sorted_union(
        inputs in proptest::collection::vec(input(), 0..6),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let inputs: Vec<_> = inputs.iter().enumerate().map(|(i, s)| sorted_entries(s, i)).collect();
        let mut model = Model::new(&inputs);
        let mut it = MergingIter::new(inputs.into_iter().map(VecIter::new).collect());
        check_against_model(&mut it, &mut model, &ops)?;
    }

    /// A seek with some children postponed (bounds: the target itself, the child's exact
    /// landing entry, or "past this user key" for children without it), then any moves,
    /// reads exactly what a plain seek does.
    #[test]
    fn deferred_seeks_match_plain_seeks(
        inputs in proptest::collection::vec(input(), 0..6),
        target in (0..22u8, 0..9u64),
        choices in proptest::collection::vec(0..4u8, 6),
        ops in proptest::collection::vec(op(), 0..40),
    ) {
        let inputs: Vec<_> = inputs.iter().enumerate().map(|(i, s)| sorted_entries(s, i)).collect();
        let mut model = Model::new(&inputs);
        let t = InternalKey::for_seek(&ukey(target.0), target.1);
        let past_user_key = InternalKey::new(&ukey(target.0), 0, ValueKind::Delete);
        let landing: Vec<Option<Vec<u8>>> = inputs.iter().map(|es| {
            es.iter().map(|(k, _)| k.clone()).find(|k| compare_internal_keys(k, t.as_bytes()).is_ge())
        }).collect();
        let has_user_key: Vec<bool> = inputs.iter().map(|es| {
            es.iter().any(|(k, _)| strata_core::key::user_key(k) == ukey(target.0).as_slice())
        }).collect();
        let mut it = MergingIter::new(inputs.into_iter().map(VecIter::new).collect());
        it.seek_deferred(t.as_bytes(), |i, bound| match choices[i] {
            1 => { bound.extend_from_slice(t.as_bytes()); true }
            2 => {
                bound.extend_from_slice(landing[i].as_deref().unwrap_or(t.as_bytes()));
                true
            }
            3 if !has_user_key[i] => { bound.extend_from_slice(past_user_key.as_bytes()); true }
            _ => false,
        }).unwrap();
        let seek = Op::Seek(target.0, target.1);
        model.apply(&seek);
        prop_assert_eq!(it.valid(), model.pos.is_some());
        if let Some(p) = model.pos {
            prop_assert_eq!(it.key(), &model.entries[p].0[..]);
            prop_assert_eq!(it.value(), &model.entries[p].1[..]);
        }
        check_against_model(&mut it, &mut model, &ops)?;
    }

    /// A full forward scan and a full backward scan are exact mirror images.
    #[test]
    fn merging_iter_reverse_is_mirror_of_forward(inputs in proptest::collection::vec(input(), 1..5)) {
        let inputs: Vec<_> = inputs.iter().enumerate().map(|(i, s)| sorted_entries(s, i)).collect();
        let mut it = MergingIter::new(inputs.into_iter().map(VecIter::new).collect());
        let mut fwd = Vec::new();
        it.seek_to_first().unwrap();
        while it.valid() { fwd.push(it.value().to_vec()); it.next().unwrap(); }
        let mut bwd = Vec::new();
        it.seek_to_last().unwrap();
        while it.valid() { bwd.push(it.value().to_vec()); it.prev().unwrap(); }
        bwd.reverse();
        prop_assert_eq!(fwd, bwd);
    }

    /// A level split into tables anywhere (including between versions of one user key)
    /// reads like the unsplit run.
    #[test]
    fn level_iter_matches_concatenation(
        set in proptest::collection::btree_set((0..20u8, 0..8u64), 0..40),
        cuts in proptest::collection::btree_set(1..40usize, 0..8),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let entries = sorted_entries(&set, 0);
        let store = TableStore::new();
        let files = level_files(&store, &entries, &cuts);
        let mut model = Model::new(&[entries]);
        let mut it = LevelIter::new(files, store.opener());
        check_against_model(&mut it, &mut model, &ops)?;
    }

    /// Level iterators and plain tables mix inside a merging iterator.
    #[test]
    fn merging_over_level_iters(
        a in input(), b in input(),
        cuts in proptest::collection::btree_set(1..25usize, 0..5),
        ops in proptest::collection::vec(op(), 1..50),
    ) {
        let (ea, eb) = (sorted_entries(&a, 0), sorted_entries(&b, 1));
        let store = TableStore::new();
        let files = level_files(&store, &eb, &cuts);
        let mut model = Model::new(&[ea.clone(), eb]);
        let children: Vec<Box<dyn SortedIter + Send>> = vec![
            Box::new(VecIter::new(ea)),
            Box::new(LevelIter::new(files, store.opener())),
        ];
        let mut it = MergingIter::new(children);
        check_against_model(&mut it, &mut model, &ops)?;
    }
}

/// Counts seeks of the wrapped iterator.
struct CountingSeeks(VecIter, Arc<AtomicUsize>);

impl SortedIter for CountingSeeks {
    fn valid(&self) -> bool {
        self.0.valid()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.0.seek_to_first()
    }
    fn seek_to_last(&mut self) -> Result<()> {
        self.0.seek_to_last()
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.1.fetch_add(1, Ordering::Relaxed);
        self.0.seek(target)
    }
    fn next(&mut self) -> Result<()> {
        self.0.next()
    }
    fn prev(&mut self) -> Result<()> {
        self.0.prev()
    }
    fn key(&self) -> &[u8] {
        self.0.key()
    }
    fn value(&self) -> &[u8] {
        self.0.value()
    }
}

#[test]
fn deferred_children_are_sought_only_when_reached() {
    let kv = |k: &[u8], s| (ik(k, s, ValueKind::Put), k.to_vec());
    let seeks: Vec<_> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let children = vec![
        CountingSeeks(
            VecIter::new(vec![kv(b"b", 1), kv(b"d", 1)]),
            Arc::clone(&seeks[0]),
        ),
        CountingSeeks(
            VecIter::new(vec![kv(b"a", 2), kv(b"c", 1)]),
            Arc::clone(&seeks[1]),
        ),
        CountingSeeks(VecIter::new(vec![kv(b"e", 1)]), Arc::clone(&seeks[2])),
    ];
    let mut it = MergingIter::new(children);
    let past_b = InternalKey::new(b"b", 0, ValueKind::Delete);
    let target = InternalKey::for_seek(b"b", 9);
    // Children 1 and 2 hold no "b": postponed, with bounds past "b" and at "e".
    it.seek_deferred(target.as_bytes(), |i, bound| match i {
        1 => {
            bound.extend_from_slice(past_b.as_bytes());
            true
        }
        2 => {
            bound.extend_from_slice(&ik(b"e", 1, ValueKind::Put));
            true
        }
        _ => false,
    })
    .unwrap();
    assert_eq!(it.value(), b"b");
    let counts = || {
        seeks
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(), [1, 0, 0]);
    it.next().unwrap();
    assert_eq!(it.value(), b"c");
    assert_eq!(counts(), [1, 1, 0]);
    it.next().unwrap();
    assert_eq!(it.value(), b"d");
    assert_eq!(counts(), [1, 1, 0]);
    it.next().unwrap();
    assert_eq!(it.value(), b"e");
    assert_eq!(counts(), [1, 1, 1]);
}

#[test]
fn level_iter_opens_tables_lazily_and_once_while_inside() {
    let entries: Vec<_> = (0..30u8)
        .map(|k| (ik(&[k], 1, ValueKind::Put), vec![k]))
        .collect();
    let store = TableStore::new();
    let files = level_files(&store, &entries, &[10, 20].into_iter().collect());
    let opens = Arc::new(AtomicUsize::new(0));
    let mut it = LevelIter::new(files, counting(store.opener(), Arc::clone(&opens)));
    assert_eq!(
        opens.load(Ordering::Relaxed),
        0,
        "construction opens nothing"
    );
    it.seek(InternalKey::for_seek(&[12], 9).as_bytes()).unwrap();
    assert_eq!(it.value(), [12]);
    assert_eq!(
        opens.load(Ordering::Relaxed),
        1,
        "a seek opens only its table"
    );
    for _ in 0..5 {
        it.next().unwrap();
        it.prev().unwrap();
    }
    it.seek(InternalKey::for_seek(&[15], 9).as_bytes()).unwrap();
    assert_eq!(
        opens.load(Ordering::Relaxed),
        1,
        "moves inside a table reuse it"
    );
    while it.valid() {
        it.next().unwrap();
    }
    assert_eq!(opens.load(Ordering::Relaxed), 2);
    assert_eq!(it.current_file().map(|f| f.number), None);
}

/// An input that fails on its `fail_at`-th move.
struct Failing {
    inner: VecIter,
    moves: usize,
    fail_at: usize,
}

impl Failing {
    fn step(&mut self, f: impl FnOnce(&mut VecIter) -> Result<()>) -> Result<()> {
        self.moves += 1;
        if self.moves == self.fail_at {
            return Err(Error::corruption("bad.sst", 42, "injected"));
        }
        f(&mut self.inner)
    }
}

impl SortedIter for Failing {
    fn valid(&self) -> bool {
        self.inner.valid()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.step(|i| i.seek_to_first())
    }
    fn seek_to_last(&mut self) -> Result<()> {
        self.step(|i| i.seek_to_last())
    }
    fn seek(&mut self, t: &[u8]) -> Result<()> {
        self.step(|i| i.seek(t))
    }
    fn next(&mut self) -> Result<()> {
        self.step(|i| i.next())
    }
    fn prev(&mut self) -> Result<()> {
        self.step(|i| i.prev())
    }
    fn key(&self) -> &[u8] {
        self.inner.key()
    }
    fn value(&self) -> &[u8] {
        self.inner.value()
    }
}

#[test]
fn merging_iter_reports_child_errors_and_is_invalid_after() {
    let mk = |tag: u8| {
        VecIter::new(
            (0..5u8)
                .map(|k| (ik(&[k], u64::from(tag), ValueKind::Put), vec![tag]))
                .collect(),
        )
    };
    // The failing child's 4th move is its 3rd next().
    let mut it = MergingIter::new(vec![
        Failing {
            inner: mk(2),
            moves: 0,
            fail_at: 4,
        },
        Failing {
            inner: mk(1),
            moves: 0,
            fail_at: usize::MAX,
        },
    ]);
    it.seek_to_first().unwrap();
    let mut err = None;
    for _ in 0..10 {
        if let Err(e) = it.next() {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("the injected error surfaces");
    assert!(err.is_corruption());
    assert!(!it.valid());
    it.next().unwrap(); // a move on an invalid iterator is a no-op, not a panic
    it.seek_to_last().unwrap();
    assert!(it.valid());
    assert_eq!(it.value(), [1]);
}

#[test]
fn level_iter_reports_opener_errors() {
    let store = TableStore::new();
    let entries: Vec<_> = (0..4u8)
        .map(|k| (ik(&[k], 1, ValueKind::Put), vec![k]))
        .collect();
    let files = level_files(&store, &entries, &[2].into_iter().collect());
    let gone = files[1].number;
    store.remove(gone);
    let mut it = LevelIter::new(files, store.opener());
    it.seek_to_first().unwrap();
    it.next().unwrap();
    assert!(it.next().is_err(), "crossing into the missing table fails");
    assert!(!it.valid());
    it.seek_to_first().unwrap();
    assert_eq!(it.value(), [0]);
}
