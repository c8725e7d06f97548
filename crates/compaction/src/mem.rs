//! In-memory tables: a [`TableSink`] and a [`TableOpener`] without files, for tests and
//! benchmarks of compaction (and of the engine's scheduling) that should not do I/O.
//!
//! A table is one flat buffer of its entries plus an index, so building one costs about
//! what a real table builder's block copies cost, not an allocation per entry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use strata_core::{
    FragmentedTombstones, ParsedInternalKey, Result, SortedIter, compare_internal_keys,
};

use crate::file_meta::MetaAccumulator;
use crate::{FileMeta, TableOpener, TableSink, TableSummary, TableWriter};

/// Bytes of per-entry overhead [`TableBuilder::estimated_size`] adds, standing in for a
/// real table's lengths, restart points and index share.
const ENTRY_OVERHEAD_BYTES: u64 = 8;

/// An immutable, sorted in-memory table.
#[derive(Clone, Debug, Default)]
pub struct Table {
    buf: Vec<u8>,
    /// Per entry: (key start, value start = key end, value end) in `buf`.
    index: Vec<(usize, usize, usize)>,
    range_tombstones: FragmentedTombstones,
}

impl Table {
    /// A table of `entries` (encoded internal key, value), which must be sorted by
    /// internal key with no duplicates.
    pub fn from_sorted<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut t = Table::default();
        for (k, v) in entries {
            t.push(k.as_ref(), v.as_ref());
        }
        debug_assert!(
            (1..t.len()).all(|i| compare_internal_keys(t.key(i - 1), t.key(i)).is_lt()),
            "table entries out of order"
        );
        t
    }

    fn push(&mut self, key: &[u8], value: &[u8]) {
        let k = self.buf.len();
        self.buf.extend_from_slice(key);
        let v = self.buf.len();
        self.buf.extend_from_slice(value);
        self.index.push((k, v, self.buf.len()));
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Key and value bytes held.
    pub fn payload_bytes(&self) -> u64 {
        self.buf.len() as u64
    }

    fn key(&self, i: usize) -> &[u8] {
        let (k, v, _) = self.index[i];
        &self.buf[k..v]
    }

    fn value(&self, i: usize) -> &[u8] {
        let (_, v, e) = self.index[i];
        &self.buf[v..e]
    }

    /// The table with `tombstones` as its range tombstones.
    pub fn with_range_tombstones(mut self, tombstones: FragmentedTombstones) -> Self {
        self.range_tombstones = tombstones;
        self
    }

    /// The table's range tombstones.
    pub fn range_tombstones(&self) -> &FragmentedTombstones {
        &self.range_tombstones
    }

    /// The entries, in order.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        (0..self.len()).map(|i| (self.key(i), self.value(i)))
    }

    /// The table's description under file number `number`; `None` if it holds nothing
    /// or a key does not parse.
    pub fn meta(&self, number: u64) -> Option<FileMeta> {
        let mut acc = MetaAccumulator::default();
        for (k, _) in self.entries() {
            acc.add(ParsedInternalKey::parse(k)?, k);
        }
        acc.finish(
            number,
            self.payload_bytes() + ENTRY_OVERHEAD_BYTES * self.len() as u64,
            &self.range_tombstones,
        )
    }

    /// A cursor over the table.
    pub fn iter(self: &Arc<Self>) -> TableIter {
        TableIter {
            table: Arc::clone(self),
            pos: None,
        }
    }
}

/// A [`SortedIter`] over a shared [`Table`].
#[derive(Clone)]
pub struct TableIter {
    table: Arc<Table>,
    pos: Option<usize>,
}

impl SortedIter for TableIter {
    fn valid(&self) -> bool {
        self.pos.is_some()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.pos = (!self.table.is_empty()).then_some(0);
        Ok(())
    }
    fn seek_to_last(&mut self) -> Result<()> {
        self.pos = self.table.len().checked_sub(1);
        Ok(())
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let t = &self.table;
        let i = t
            .index
            .partition_point(|&(k, v, _)| compare_internal_keys(&t.buf[k..v], target).is_lt());
        self.pos = (i < t.len()).then_some(i);
        Ok(())
    }
    fn next(&mut self) -> Result<()> {
        self.pos = self.pos.map(|p| p + 1).filter(|&p| p < self.table.len());
        Ok(())
    }
    fn prev(&mut self) -> Result<()> {
        self.pos = self.pos.and_then(|p| p.checked_sub(1));
        Ok(())
    }
    fn key(&self) -> &[u8] {
        match self.pos {
            Some(p) => self.table.key(p),
            None => panic!("SortedIter::key called on an invalid TableIter"),
        }
    }
    fn value(&self) -> &[u8] {
        match self.pos {
            Some(p) => self.table.value(p),
            None => panic!("SortedIter::value called on an invalid TableIter"),
        }
    }
}

#[derive(Default)]
struct StoreInner {
    next_number: u64,
    tables: BTreeMap<u64, Arc<Table>>,
}

/// A shared set of numbered in-memory tables: the [`TableSink`] compaction writes to and
/// the source of a [`TableOpener`] that reads them back. Clones share the same tables.
#[derive(Clone, Default)]
pub struct TableStore {
    inner: Arc<Mutex<StoreInner>>,
}

impl TableStore {
    /// An empty store that hands out file numbers from 1.
    pub fn new() -> Self {
        let s = TableStore::default();
        s.lock().next_number = 1;
        s
    }

    fn lock(&self) -> MutexGuard<'_, StoreInner> {
        // A panic while holding the lock cannot leave the map half-updated (each
        // operation is a single insert or remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn allocate(&self) -> u64 {
        let mut g = self.lock();
        g.next_number = g.next_number.max(1);
        let n = g.next_number;
        g.next_number += 1;
        n
    }

    /// Stores `table` under a fresh number and returns its description (`None` for an
    /// empty table, which a level cannot hold).
    pub fn add(&self, table: Table) -> Option<Arc<FileMeta>> {
        let number = self.allocate();
        let meta = table.meta(number)?;
        self.lock().tables.insert(number, Arc::new(table));
        Some(Arc::new(meta))
    }

    /// The table stored under `number`.
    pub fn get(&self, number: u64) -> Option<Arc<Table>> {
        self.lock().tables.get(&number).cloned()
    }

    /// Forgets the table `number` (as the engine deletes an obsolete file).
    pub fn remove(&self, number: u64) -> Option<Arc<Table>> {
        self.lock().tables.remove(&number)
    }

    /// Numbers of the stored tables, ascending.
    pub fn numbers(&self) -> Vec<u64> {
        self.lock().tables.keys().copied().collect()
    }

    /// An opener that reads tables of this store; opening a number the store lacks is
    /// an `InvalidArgument` error.
    pub fn opener(&self) -> TableOpener {
        let store = self.clone();
        Arc::new(move |meta: &FileMeta| {
            let table = store.get(meta.number).ok_or_else(|| {
                strata_core::Error::InvalidArgument(format!("no in-memory table #{}", meta.number))
            })?;
            Ok(Box::new(table.iter()) as Box<dyn SortedIter + Send>)
        })
    }
}

impl TableSink for TableStore {
    type Writer = TableBuilder;

    fn create(&mut self) -> Result<TableBuilder> {
        Ok(TableBuilder {
            store: self.clone(),
            number: self.allocate(),
            table: Table::default(),
        })
    }
}

/// Builds one in-memory table; [`finish`](TableWriter::finish) stores it.
pub struct TableBuilder {
    store: TableStore,
    number: u64,
    table: Table,
}

impl TableWriter for TableBuilder {
    fn add(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.table.push(key, value);
        Ok(())
    }

    fn add_range_tombstones(&mut self, tombstones: &FragmentedTombstones) -> Result<()> {
        self.table.range_tombstones = tombstones.clone();
        Ok(())
    }

    fn estimated_size(&self) -> u64 {
        self.table.payload_bytes() + ENTRY_OVERHEAD_BYTES * self.table.len() as u64
    }

    fn finish(self) -> Result<TableSummary> {
        let summary = TableSummary {
            file_number: self.number,
            size_bytes: self.estimated_size(),
            entries: self.table.len() as u64,
        };
        self.store
            .lock()
            .tables
            .insert(self.number, Arc::new(self.table));
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::{InternalKey, ValueKind};

    #[test]
    fn store_round_trips_a_table_and_its_meta() {
        let store = TableStore::new();
        let t = Table::from_sorted([
            (
                InternalKey::new(b"a", 7, ValueKind::Put).into_bytes(),
                b"x".to_vec(),
            ),
            (
                InternalKey::new(b"b", 3, ValueKind::Delete).into_bytes(),
                Vec::new(),
            ),
        ]);
        let meta = store.add(t).unwrap();
        assert_eq!((meta.smallest_seq, meta.largest_seq), (3, 7));
        assert_eq!((meta.entries, meta.tombstones), (2, 1));
        assert_eq!(meta.smallest_user_key(), b"a");
        assert_eq!(meta.largest_user_key(), b"b");
        let mut it = (store.opener())(&meta).unwrap();
        it.seek_to_last().unwrap();
        assert_eq!(ParsedInternalKey::parse(it.key()).unwrap().user_key, b"b");
        it.prev().unwrap();
        assert_eq!(it.value(), b"x");
        assert!(store.add(Table::default()).is_none());
        let missing = FileMeta {
            number: 99,
            ..(*meta).clone()
        };
        assert!((store.opener())(&missing).is_err());
    }
}
