//! Strata's MemTable: the in-memory sorted map of internal keys that every write lands
//! in before it is flushed to a table.
//!
//! - [`MemTable`]: insert `(user key, sequence, kind, value)`; [`MemTable::get`] at a
//!   snapshot answers Found / Deleted / Absent ([`strata_core::Lookup`]);
//!   [`MemTable::approximate_memory_usage`] is the byte count the engine freezes at.
//! - [`MemTableIter`]: a [`strata_core::SortedIter`] over encoded internal keys that owns
//!   an `Arc` of the table (no lifetime parameter) and stays valid while inserts go on.
//!
//! # Concurrency contract
//! One writer at a time, any number of readers, and readers never take a lock: inserts
//! go through an internal writer lock (uncontended in the engine, whose group-commit
//! leader is the only inserter), while [`MemTable::get`] and iterators read optimistically
//! and retry a node that changed under them (see `tree.rs` for the protocol). A reader
//! that meets a node in the middle of one insert's stores waits for that insert alone
//! (spinning briefly, then yielding), never for a lock or a whole write group. An
//! iterator may or may not see entries inserted after it was created, but never a torn or
//! misordered one. [`MemTable::freeze`] makes the table read-only for good; a frozen table
//! in an `Arc` is shared by readers and the flush.
//!
//! # Structure
//! A B+tree in an arena (nodes of 32 keys, with 8-byte key hints inline so a node search
//! rarely leaves the node's cache lines), chosen over crossbeam-skiplist by measurement:
//! see `benches/memtable.rs` and the crate's commit history for the figures.
//!
//! ```
//! use std::sync::Arc;
//! use strata_core::{InternalKey, Lookup, SortedIter, ValueKind};
//! use strata_memtable::MemTable;
//!
//! let table = Arc::new(MemTable::new());
//! table.insert(b"apple", 1, ValueKind::Put, b"red")?;
//! table.insert(b"apple", 2, ValueKind::Delete, b"")?;
//! assert_eq!(table.get(b"apple", 1), Lookup::Found("red".into()));
//! assert_eq!(table.get(b"apple", 2), Lookup::Deleted);
//! assert_eq!(table.get(b"pear", 2), Lookup::Absent);
//!
//! let mut it = table.iter();
//! it.seek(InternalKey::for_seek(b"apple", 5).as_bytes())?;
//! assert_eq!(it.key(), InternalKey::new(b"apple", 2, ValueKind::Delete).as_bytes());
//! it.next()?;
//! assert_eq!(it.value(), b"red");
//! # Ok::<(), strata_core::Error>(())
//! ```

mod arena;
mod entry;
mod iter;
mod tree;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use strata_core::expiry::split_expiring;
use strata_core::key::pack_trailer;
use strata_core::{
    Error, FragmentedTombstones, Lookup, MAX_SEQUENCE, ParsedInternalKey, RangeTombstone, Result,
    SequenceNumber, ValueKind,
};

use crate::entry::{Entry, SearchKey};
use crate::tree::{Inserted, Target, Tree, Writer};

pub use crate::iter::MemTableIter;

/// Largest user key or value the table accepts (lengths are kept in `u32`).
pub const MAX_ITEM_LEN: usize = u32::MAX as usize - strata_core::key::TRAILER_LEN;

/// A concurrent sorted map from internal key to value, with one writer at a time and
/// lock-free readers. `Send + Sync`; share it in an `Arc`.
pub struct MemTable {
    tree: Tree,
    writer: Mutex<Writer>,
    len: AtomicUsize,
    memory_bytes: AtomicUsize,
    frozen: AtomicBool,
    range_dels: RangeDels,
}

/// The table's range tombstones, beside the point entries: appended by the writer as
/// written, fragmented for readers on first use after a change. Range deletes are rare
/// next to point writes, so a reader that finds the fragmented list current pays one
/// uncontended read lock and an `Arc` clone; tables that never saw one pay an atomic
/// load.
#[derive(Default)]
struct RangeDels {
    /// As written, in sequence order.
    written: Mutex<Vec<RangeTombstone>>,
    /// How many have been written (readers compare it with the cache's count).
    count: AtomicUsize,
    /// Key bytes held, for the memory budget.
    bytes: AtomicUsize,
    /// The fragmented list and how many written tombstones it includes.
    fragmented: RwLock<(usize, Arc<FragmentedTombstones>)>,
}

impl RangeDels {
    fn fragmented(&self) -> Arc<FragmentedTombstones> {
        let count = self.count.load(Ordering::Acquire);
        {
            let cached = self.fragmented.read().unwrap_or_else(|p| p.into_inner());
            if cached.0 == count {
                return Arc::clone(&cached.1);
            }
        }
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let mut cached = self.fragmented.write().unwrap_or_else(|p| p.into_inner());
        if cached.0 != written.len() {
            *cached = (
                written.len(),
                Arc::new(FragmentedTombstones::new(written.iter().cloned())),
            );
        }
        Arc::clone(&cached.1)
    }
}

impl Default for MemTable {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemTable")
            .field("len", &self.len())
            .field("memory_bytes", &self.approximate_memory_usage())
            .field("frozen", &self.is_frozen())
            .finish()
    }
}

impl MemTable {
    /// An empty table.
    pub fn new() -> Self {
        let (tree, writer) = Tree::new();
        let table = MemTable {
            tree,
            writer: Mutex::new(writer),
            len: AtomicUsize::new(0),
            memory_bytes: AtomicUsize::new(0),
            frozen: AtomicBool::new(false),
            range_dels: RangeDels::default(),
        };
        if let Ok(w) = table.writer.lock() {
            table.publish_memory(&w);
        }
        table
    }

    /// Inserts one entry. A `Delete` stores no value (whatever `value` holds); a
    /// `Merge` stores its operand as the value. Inserting
    /// an internal key that is already present replaces its value.
    ///
    /// Takes the writer lock for this one entry; a caller inserting a group should hold
    /// [`MemTable::writer`] instead.
    ///
    /// Errors: [`Error::InvalidArgument`] if the table is frozen, `seq` exceeds
    /// [`MAX_SEQUENCE`] or a length exceeds [`MAX_ITEM_LEN`]; [`Error::Poisoned`] (of kind
    /// [`Internal`](strata_core::ErrorKind::Internal)) if an earlier insert panicked.
    pub fn insert(
        &self,
        user_key: &[u8],
        seq: SequenceNumber,
        kind: ValueKind,
        value: &[u8],
    ) -> Result<()> {
        self.writer()?.insert(user_key, seq, kind, value)
    }

    /// Takes the writer lock for a series of inserts (a write group). Readers are not
    /// affected; another writer waits.
    pub fn writer(&self) -> Result<MemTableWriter<'_>> {
        let guard = self.writer.lock().map_err(|_| {
            // The panic's payload went to the panicking thread; what is left to
            // report is where it happened.
            let panic = Error::Panicked {
                context: "inserting into a MemTable".into(),
            };
            Error::poisoned("an earlier MemTable insert", &panic)
        })?;
        Ok(MemTableWriter { table: self, guard })
    }

    /// The newest entry for `user_key` with sequence `<= snapshot`: its value, a
    /// tombstone, a merge operand (the caller folds it with older entries through an
    /// iterator), or nothing. Lock-free.
    pub fn get(&self, user_key: &[u8], snapshot: SequenceNumber) -> Lookup {
        self.get_versioned(user_key, snapshot)
            .map_or(Lookup::Absent, |(_, found)| found)
    }

    /// Like [`get`](Self::get), with the sequence number of the entry found (`None`
    /// when absent): the engine compares it with the range tombstones covering the key.
    pub fn get_versioned(
        &self,
        user_key: &[u8],
        snapshot: SequenceNumber,
    ) -> Option<(SequenceNumber, Lookup)> {
        let target = SearchKey {
            user_key,
            trailer: pack_trailer(snapshot.min(MAX_SEQUENCE), ValueKind::FOR_SEEK),
        };
        let cursor = self.tree.find(Target::AtLeast(target))?;
        let entry = cursor.entry;
        match ParsedInternalKey::parse(entry.internal_key()) {
            Some(p) if p.user_key == user_key => Some((
                p.seq,
                match p.kind {
                    ValueKind::Put => Lookup::Found(Bytes::copy_from_slice(entry.value())),
                    ValueKind::Delete => Lookup::Deleted,
                    ValueKind::Merge => Lookup::Merge,
                    // The insert checked the expiry is there.
                    ValueKind::ExpiringPut => match split_expiring(entry.value()) {
                        Some((expires_at_ms, value)) => Lookup::Expiring {
                            expires_at_ms,
                            value: Bytes::copy_from_slice(value),
                        },
                        None => Lookup::Deleted,
                    },
                },
            )),
            _ => None,
        }
    }

    /// The range tombstones written so far, fragmented (see
    /// [`strata_core::range_del`]). Lock-free while the table has none.
    pub fn range_tombstones(&self) -> Arc<FragmentedTombstones> {
        self.range_dels.fragmented()
    }

    /// The sequence number of the newest range tombstone covering `user_key` that a
    /// reader at `snapshot` sees (see [`FragmentedTombstones::covering_seq`]). A table
    /// without range deletes answers with one atomic load.
    pub fn covering_range_tombstone(
        &self,
        user_key: &[u8],
        snapshot: SequenceNumber,
    ) -> Option<SequenceNumber> {
        if self.range_tombstone_count() == 0 {
            return None;
        }
        self.range_tombstones().covering_seq(user_key, snapshot)
    }

    /// Number of range deletes written.
    pub fn range_tombstone_count(&self) -> usize {
        self.range_dels.count.load(Ordering::Acquire)
    }

    /// A cursor over the whole table in internal-key order, holding the table alive.
    /// Unpositioned until a seek.
    pub fn iter(self: &Arc<Self>) -> MemTableIter {
        MemTableIter::new(Arc::clone(self))
    }

    /// Bytes this table has taken from the allocator (arena chunks and the table's own
    /// struct); grows in steps of up to 1 MiB. The engine freezes the table when this
    /// passes its budget.
    pub fn approximate_memory_usage(&self) -> usize {
        self.memory_bytes.load(Ordering::Relaxed) + self.range_dels.bytes.load(Ordering::Relaxed)
    }

    /// Number of distinct internal keys inserted (range deletes not included).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// True if nothing was inserted and no range was deleted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.range_tombstone_count() == 0
    }

    /// Makes the table read-only: later inserts fail. Waits for an insert in progress, so
    /// when this returns every insert that will ever succeed has.
    pub fn freeze(&self) {
        // A poisoned lock means no insert can succeed anyway; freeze regardless.
        let _guard = self.writer.lock();
        self.frozen.store(true, Ordering::Release);
    }

    /// True once [`MemTable::freeze`] was called.
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    fn publish_memory(&self, w: &Writer) {
        let own = size_of::<MemTable>();
        self.memory_bytes
            .store(own + w.arena.allocated_bytes(), Ordering::Relaxed);
    }

    pub(crate) fn tree(&self) -> &Tree {
        &self.tree
    }
}

/// The writer lock of a [`MemTable`], held across a group of inserts.
pub struct MemTableWriter<'a> {
    table: &'a MemTable,
    guard: MutexGuard<'a, Writer>,
}

impl MemTableWriter<'_> {
    /// Inserts one entry; see [`MemTable::insert`].
    pub fn insert(
        &mut self,
        user_key: &[u8],
        seq: SequenceNumber,
        kind: ValueKind,
        value: &[u8],
    ) -> Result<()> {
        let table = self.table;
        self.check_writable("insert", seq)?;
        let value = if kind.has_value() { value } else { &[] };
        if kind == ValueKind::ExpiringPut && value.len() < strata_core::expiry::EXPIRY_LEN {
            return Err(Error::InvalidArgument(format!(
                "an expiring value of {} bytes has no room for its expiry",
                value.len()
            )));
        }
        if user_key.len() > MAX_ITEM_LEN || value.len() > MAX_ITEM_LEN {
            return Err(Error::InvalidArgument(format!(
                "key of {} bytes or value of {} bytes exceeds {MAX_ITEM_LEN}",
                user_key.len(),
                value.len()
            )));
        }
        let w = &mut *self.guard;
        let entry = Entry::write(&mut w.arena, user_key, pack_trailer(seq, kind), value);
        if let Inserted::New = table.tree.insert(w, entry) {
            table.len.fetch_add(1, Ordering::Relaxed);
        }
        table.publish_memory(w);
        Ok(())
    }
}

impl MemTableWriter<'_> {
    /// Refuses a write (`what`) into a frozen table or at a sequence number past the
    /// trailer's 56 bits.
    fn check_writable(&self, what: &str, seq: SequenceNumber) -> Result<()> {
        if self.table.frozen.load(Ordering::Relaxed) {
            return Err(Error::InvalidArgument(format!(
                "{what} into a frozen MemTable"
            )));
        }
        if seq > MAX_SEQUENCE {
            return Err(Error::InvalidArgument(format!(
                "sequence number {seq} exceeds {MAX_SEQUENCE}"
            )));
        }
        Ok(())
    }

    /// Records a range delete: every key in `[start, end)` deleted as of `seq`. An
    /// empty range (`start >= end`) is recorded but covers nothing.
    ///
    /// Errors: as [`insert`](Self::insert).
    pub fn delete_range(&mut self, start: &[u8], end: &[u8], seq: SequenceNumber) -> Result<()> {
        let table = self.table;
        self.check_writable("range delete", seq)?;
        let dels = &table.range_dels;
        let mut written = dels.written.lock().unwrap_or_else(|p| p.into_inner());
        written.push(RangeTombstone {
            start: start.to_vec(),
            end: end.to_vec(),
            seq,
        });
        // Vec growth and per-tombstone overhead, roughly.
        dels.bytes
            .fetch_add(start.len() + end.len() + 64, Ordering::Relaxed);
        dels.count.store(written.len(), Ordering::Release);
        Ok(())
    }
}

impl std::fmt::Debug for MemTableWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemTableWriter").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! Model tests on small nodes (`CAP` = 4 under `cfg(test)`), so a few hundred entries
    //! build a tree five levels deep and exercise every split path.

    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use strata_core::{InternalKey, SortedIter};

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        Put(usize, u8),
        Delete(usize),
        Merge(usize, u8),
        ExpiringPut(usize, u8, u64),
        Get(usize, u64),
        Seek(usize, u64),
        First,
        Last,
        Next,
        Prev,
    }

    fn user_key() -> impl Strategy<Value = Vec<u8>> {
        // Shared prefixes make the per-node prefix and hint ties matter.
        (
            prop_oneof![
                Just(&b""[..]),
                Just(&b"user"[..]),
                Just(&b"user:00000000:"[..])
            ],
            proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1), Just(b'a'), Just(0xff)],
                0..4,
            ),
        )
            .prop_map(|(p, s)| [p, &s[..]].concat())
    }

    fn op(keys: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..keys, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
            2 => (0..keys).prop_map(Op::Delete),
            2 => (0..keys, any::<u8>()).prop_map(|(k, v)| Op::Merge(k, v)),
            2 => (0..keys, any::<u8>(), any::<u64>()).prop_map(|(k, v, e)| Op::ExpiringPut(k, v, e)),
            2 => (0..keys, any::<u64>()).prop_map(|(k, s)| Op::Get(k, s)),
            1 => (0..keys, any::<u64>()).prop_map(|(k, s)| Op::Seek(k, s)),
            1 => Just(Op::First),
            1 => Just(Op::Last),
            3 => Just(Op::Next),
            2 => Just(Op::Prev),
        ]
    }

    fn case() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<Op>)> {
        proptest::collection::vec(user_key(), 1..40).prop_flat_map(|keys| {
            let n = keys.len();
            (Just(keys), proptest::collection::vec(op(n), 0..600))
        })
    }

    fn value_of(seq: u64, len: u8) -> Vec<u8> {
        (0..len).map(|i| (seq as u8).wrapping_add(i)).collect()
    }

    proptest! {
        /// Every read — get at any snapshot, seek, and next/prev of an iterator kept
        /// across inserts — agrees with a BTreeMap of internal keys.
        #[test]
        fn matches_btreemap_model((keys, ops) in case()) {
            let table = Arc::new(MemTable::new());
            let mut model: BTreeMap<InternalKey, Vec<u8>> = BTreeMap::new();
            let mut seq = 0u64;
            let mut it = table.iter();
            let mut at: Option<InternalKey> = None;
            for op in ops {
                match op {
                    Op::Put(k, len) => {
                        seq += 1;
                        let v = value_of(seq, len);
                        table.insert(&keys[k], seq, ValueKind::Put, &v).unwrap();
                        model.insert(InternalKey::new(&keys[k], seq, ValueKind::Put), v);
                    }
                    Op::Delete(k) => {
                        seq += 1;
                        table.insert(&keys[k], seq, ValueKind::Delete, b"ignored").unwrap();
                        model.insert(InternalKey::new(&keys[k], seq, ValueKind::Delete), vec![]);
                    }
                    Op::Merge(k, len) => {
                        seq += 1;
                        let v = value_of(seq, len);
                        table.insert(&keys[k], seq, ValueKind::Merge, &v).unwrap();
                        model.insert(InternalKey::new(&keys[k], seq, ValueKind::Merge), v);
                    }
                    Op::ExpiringPut(k, len, expiry) => {
                        seq += 1;
                        let v = strata_core::expiry::encode_expiring(expiry, &value_of(seq, len));
                        table.insert(&keys[k], seq, ValueKind::ExpiringPut, &v).unwrap();
                        model.insert(InternalKey::new(&keys[k], seq, ValueKind::ExpiringPut), v);
                    }
                    Op::Get(k, s) => {
                        let snap = s % (seq + 2);
                        let expected = match model.range(InternalKey::for_seek(&keys[k], snap)..).next() {
                            Some((ik, v)) if ik.user_key() == &keys[k][..] => match ik.parsed().kind {
                                ValueKind::Put => Lookup::Found(Bytes::from(v.clone())),
                                ValueKind::Delete => Lookup::Deleted,
                                ValueKind::Merge => Lookup::Merge,
                                ValueKind::ExpiringPut => {
                                    let (expires_at_ms, value) = split_expiring(v).unwrap();
                                    Lookup::Expiring { expires_at_ms, value: Bytes::copy_from_slice(value) }
                                }
                            },
                            _ => Lookup::Absent,
                        };
                        prop_assert_eq!(table.get(&keys[k], snap), expected);
                    }
                    Op::Seek(k, s) => {
                        let target = InternalKey::for_seek(&keys[k], s % (seq + 2));
                        it.seek(target.as_bytes()).unwrap();
                        at = model.range(target..).next().map(|e| e.0.clone());
                    }
                    Op::First => {
                        it.seek_to_first().unwrap();
                        at = model.keys().next().cloned();
                    }
                    Op::Last => {
                        it.seek_to_last().unwrap();
                        at = model.keys().next_back().cloned();
                    }
                    Op::Next => {
                        // Moves see the table as it is now, inserts since the seek included.
                        it.next().unwrap();
                        at = at.and_then(|a| {
                            model.range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                                .next().map(|e| e.0.clone())
                        });
                    }
                    Op::Prev => {
                        it.prev().unwrap();
                        at = at.and_then(|a| model.range(..a).next_back().map(|e| e.0.clone()));
                    }
                }
                prop_assert_eq!(it.valid(), at.is_some());
                if let Some(a) = &at {
                    prop_assert_eq!(it.key(), a.as_bytes());
                    prop_assert_eq!(it.value(), &model[a][..]);
                }
            }
            prop_assert_eq!(table.tree.check(), model.len());
            prop_assert_eq!(table.len(), model.len());
            let mut all = Vec::new();
            it.seek_to_first().unwrap();
            while it.valid() {
                all.push((it.key().to_vec(), it.value().to_vec()));
                it.next().unwrap();
            }
            let expected: Vec<_> = model.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.clone())).collect();
            prop_assert_eq!(&all, &expected);
            let mut back = Vec::new();
            it.seek_to_last().unwrap();
            while it.valid() {
                back.push((it.key().to_vec(), it.value().to_vec()));
                it.prev().unwrap();
            }
            back.reverse();
            prop_assert_eq!(back, expected);
        }
    }

    #[test]
    fn ascending_and_descending_inserts_build_valid_trees() {
        for descending in [false, true] {
            let table = MemTable::new();
            for i in 0..2000u32 {
                let k = if descending { 2000 - i } else { i };
                table
                    .insert(&k.to_be_bytes(), u64::from(i), ValueKind::Put, b"v")
                    .unwrap();
            }
            assert_eq!(table.tree.check(), 2000);
            for k in 0..2000u32 {
                assert_eq!(
                    table.get(
                        &(if descending { k + 1 } else { k }).to_be_bytes(),
                        u64::MAX
                    ),
                    Lookup::Found("v".into())
                );
            }
        }
    }

    #[test]
    fn rejects_inserts_when_frozen_or_out_of_range() {
        let table = MemTable::new();
        table.insert(b"a", 1, ValueKind::Put, b"x").unwrap();
        assert!(matches!(
            table.insert(b"a", MAX_SEQUENCE + 1, ValueKind::Put, b"x"),
            Err(Error::InvalidArgument(_))
        ));
        table.freeze();
        assert!(table.is_frozen());
        assert!(matches!(
            table.insert(b"b", 2, ValueKind::Put, b"y"),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(table.len(), 1);
        assert_eq!(table.get(b"a", 5), Lookup::Found("x".into()));
    }

    #[test]
    fn replacing_an_internal_key_keeps_one_entry() {
        let table = MemTable::new();
        table.insert(b"k", 7, ValueKind::Put, b"old").unwrap();
        table.insert(b"k", 7, ValueKind::Put, b"new").unwrap();
        assert_eq!(table.len(), 1);
        assert_eq!(table.get(b"k", 7), Lookup::Found("new".into()));
        assert_eq!(table.get(b"k", 6), Lookup::Absent);
    }

    #[test]
    fn range_deletes_sit_beside_point_entries_and_readers_see_each_new_one() {
        let table = MemTable::new();
        assert!(table.is_empty());
        table.insert(b"b", 1, ValueKind::Put, b"x").unwrap();
        let before = table.range_tombstones();
        assert!(before.is_empty());
        table.writer().unwrap().delete_range(b"a", b"c", 2).unwrap();
        // The list a reader already holds does not change under it; a new call sees
        // the tombstone.
        assert!(before.is_empty());
        assert_eq!(table.range_tombstones().covering_seq(b"b", 5), Some(2));
        assert_eq!(table.range_tombstones().covering_seq(b"b", 1), None);
        table.writer().unwrap().delete_range(b"b", b"d", 3).unwrap();
        let now = table.range_tombstones();
        assert_eq!(now.covering_seq(b"b", 5), Some(3));
        assert_eq!(now.covering_seq(b"a", 5), Some(2));
        assert_eq!(table.range_tombstone_count(), 2);
        // The point entry and its sequence are untouched: the engine compares them.
        assert_eq!(
            table.get_versioned(b"b", 5),
            Some((1, Lookup::Found("x".into())))
        );
        table.freeze();
        assert!(table.writer().unwrap().delete_range(b"x", b"y", 4).is_err());
        let only_ranges = MemTable::new();
        only_ranges
            .writer()
            .unwrap()
            .delete_range(b"a", b"b", 1)
            .unwrap();
        assert!(
            !only_ranges.is_empty(),
            "a table holding only a range delete must be flushed"
        );
    }
}
