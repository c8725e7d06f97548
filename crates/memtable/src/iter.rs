//! The MemTable's sorted iterator.

use std::sync::Arc;

use bytes::Bytes;
use strata_core::{Result, SortedIter};

use crate::MemTable;
use crate::entry::SearchKey;
use crate::tree::{Cursor, Target};

/// A [`SortedIter`] over a [`MemTable`], in internal-key order. Owns an `Arc` of the
/// table, so it has no lifetime parameter and may outlive every other handle.
///
/// Stable while inserts go on: each move starts from the current entry's key, so it never
/// skips or repeats an entry that existed when the iterator was positioned, and may or
/// may not see entries inserted since. Moves never fail. `Send + Sync`.
pub struct MemTableIter {
    table: Arc<MemTable>,
    cursor: Option<Cursor>,
}

// SAFETY: the cursor points into the arena of `table`, which this iterator keeps alive
// through its `Arc`; the pointed-to memory is only read (with atomic loads where a writer
// may change it), so moving or sharing the iterator across threads is as safe as sharing
// the `MemTable` itself, which is `Send + Sync`.
unsafe impl Send for MemTableIter {}
// SAFETY: as above; `&MemTableIter` only allows reads of immutable entry bytes.
unsafe impl Sync for MemTableIter {}

impl MemTableIter {
    pub(crate) fn new(table: Arc<MemTable>) -> Self {
        MemTableIter {
            table,
            cursor: None,
        }
    }

    fn current(&self) -> &Cursor {
        match &self.cursor {
            Some(c) => c,
            None => panic!("SortedIter::key/value called on an invalid MemTableIter"),
        }
    }
}

impl std::fmt::Debug for MemTableIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemTableIter")
            .field("valid", &self.valid())
            .finish_non_exhaustive()
    }
}

impl SortedIter for MemTableIter {
    fn valid(&self) -> bool {
        self.cursor.is_some()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.cursor = self.table.tree().find(Target::First);
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.cursor = self.table.tree().find(Target::Last);
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let key = SearchKey::from_encoded(target);
        self.cursor = self.table.tree().find(Target::AtLeast(key));
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        self.cursor = self.cursor.and_then(|c| self.table.tree().next(&c));
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        self.cursor = self.cursor.and_then(|c| self.table.tree().prev(&c));
        Ok(())
    }

    fn key(&self) -> &[u8] {
        // The entry lives in `self.table`'s arena, which outlives this borrow of `self`.
        self.current().entry.internal_key()
    }

    fn value(&self) -> &[u8] {
        self.current().entry.value()
    }

    fn value_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.value())
    }
}
