//! The sorted-iterator trait every layer implements.
//!
//! MemTable iterators, table iterators, level (concatenating) iterators and the merging
//! iterator all speak this one small interface, so the engine builds every read from it.
//! Keys are encoded internal keys ([`crate::key`]) in internal-key order.

use bytes::Bytes;

use crate::Result;

/// A cursor over entries sorted by internal key, moving both ways.
///
/// Positioning calls return `Err` when the source fails (I/O, corruption); after an error
/// the iterator is invalid until repositioned. [`key`](Self::key) and
/// [`value`](Self::value) may only be called while [`valid`](Self::valid) is true;
/// implementations may panic otherwise, as that is a caller bug, not bad data.
pub trait SortedIter {
    /// Whether the cursor is on an entry.
    fn valid(&self) -> bool;

    /// Positions on the first entry (invalid if there is none).
    fn seek_to_first(&mut self) -> Result<()>;

    /// Positions on the last entry (invalid if there is none).
    fn seek_to_last(&mut self) -> Result<()>;

    /// Positions on the first entry whose internal key is `>= target` (an encoded internal
    /// key; see [`crate::InternalKey::for_seek`]).
    fn seek(&mut self, target: &[u8]) -> Result<()>;

    /// Moves to the next entry; invalid past the last one.
    fn next(&mut self) -> Result<()>;

    /// Moves to the previous entry; invalid before the first one.
    fn prev(&mut self) -> Result<()>;

    /// The current entry's encoded internal key.
    fn key(&self) -> &[u8];

    /// The current entry's value (empty for tombstones).
    fn value(&self) -> &[u8];

    /// The current value as shared bytes. Sources that hold values in `Bytes` (a cached
    /// block, a MemTable arena) override this to avoid the copy.
    fn value_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.value())
    }
}

impl<I: SortedIter + ?Sized> SortedIter for Box<I> {
    fn valid(&self) -> bool {
        (**self).valid()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        (**self).seek_to_first()
    }
    fn seek_to_last(&mut self) -> Result<()> {
        (**self).seek_to_last()
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        (**self).seek(target)
    }
    fn next(&mut self) -> Result<()> {
        (**self).next()
    }
    fn prev(&mut self) -> Result<()> {
        (**self).prev()
    }
    fn key(&self) -> &[u8] {
        (**self).key()
    }
    fn value(&self) -> &[u8] {
        (**self).value()
    }
    fn value_bytes(&self) -> Bytes {
        (**self).value_bytes()
    }
}

/// A [`SortedIter`] over an in-memory sorted vector of `(internal key, value)` pairs.
///
/// Small and obviously correct: the reference implementation that tests compare the real
/// iterators against, and a convenient input for merge and compaction tests.
#[derive(Clone, Debug, Default)]
pub struct VecIter {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    pos: Option<usize>,
}

impl VecIter {
    /// Wraps entries that are already sorted by internal key.
    pub fn new(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        debug_assert!(entries.windows(2).all(|w| match w {
            [a, b] => crate::compare_internal_keys(&a.0, &b.0).is_lt(),
            _ => true,
        }));
        VecIter { entries, pos: None }
    }

    fn current(&self) -> &(Vec<u8>, Vec<u8>) {
        match self.pos.and_then(|p| self.entries.get(p)) {
            Some(e) => e,
            None => panic!("SortedIter::key/value called on an invalid iterator"),
        }
    }
}

impl SortedIter for VecIter {
    fn valid(&self) -> bool {
        self.pos.is_some_and(|p| p < self.entries.len())
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.pos = (!self.entries.is_empty()).then_some(0);
        Ok(())
    }
    fn seek_to_last(&mut self) -> Result<()> {
        self.pos = self.entries.len().checked_sub(1);
        Ok(())
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let i = self
            .entries
            .partition_point(|(k, _)| crate::compare_internal_keys(k, target).is_lt());
        self.pos = (i < self.entries.len()).then_some(i);
        Ok(())
    }
    fn next(&mut self) -> Result<()> {
        self.pos = self.pos.map(|p| p + 1).filter(|&p| p < self.entries.len());
        Ok(())
    }
    fn prev(&mut self) -> Result<()> {
        self.pos = self.pos.and_then(|p| p.checked_sub(1));
        Ok(())
    }
    fn key(&self) -> &[u8] {
        &self.current().0
    }
    fn value(&self) -> &[u8] {
        &self.current().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InternalKey, ValueKind};

    fn ik(k: &str, seq: u64) -> Vec<u8> {
        InternalKey::new(k.as_bytes(), seq, ValueKind::Put).into_bytes()
    }

    #[test]
    fn vec_iter_walks_both_ways_and_seeks() {
        let mut it: Box<dyn SortedIter> = Box::new(VecIter::new(vec![
            (ik("a", 3), b"1".to_vec()),
            (ik("b", 9), b"2".to_vec()),
            (ik("b", 2), b"3".to_vec()),
        ]));
        it.seek(InternalKey::for_seek(b"b", 5).as_bytes()).unwrap();
        assert_eq!(it.value(), b"3");
        it.prev().unwrap();
        assert_eq!(it.value(), b"2");
        it.seek_to_last().unwrap();
        it.next().unwrap();
        assert!(!it.valid());
        it.seek_to_first().unwrap();
        it.prev().unwrap();
        assert!(!it.valid());
        it.seek(InternalKey::for_seek(b"c", 1).as_bytes()).unwrap();
        assert!(!it.valid());
        assert_eq!(VecIter::default().seek_to_last().map(|_| ()).ok(), Some(()));
    }
}
