//! The merging iterator: one sorted stream out of any number of sorted inputs.
//!
//! A k-way merge on a binary heap of child indices (a min-heap moving forward, a
//! max-heap moving backward). Advancing replaces the top in place and sifts it down, so
//! a step costs one child move plus `O(log k)` key comparisons — usually one or two, as
//! runs of keys tend to come from the same child.
//!
//! Direction switches follow LevelDB's `MergingIterator`: moving forward, every child
//! stands on its first entry after the current one; moving backward, on its last entry
//! before it. Switching direction re-seeks every other child to the current key and
//! steps it once, which costs `k` seeks but only happens on a switch.

use bytes::Bytes;
use strata_core::key::{compare_internal_keys, user_key};
use strata_core::{Result, SortedIter};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Forward,
    Reverse,
}

/// A [`SortedIter`] over the union of its children's entries, in internal-key order.
///
/// **Equal keys.** Internal keys are unique across a well-formed database, but if two
/// children hold the very same internal key, both entries are yielded and the child with
/// the *lower index* comes first in forward order (last in reverse order). Callers pass
/// children newest first (MemTable, frozen MemTables, L0 newest to oldest, then L1, L2,
/// ...), so the newer copy wins wherever "first" matters.
///
/// The order of the merged stream is thus `(internal key, child index)`, a strict total
/// order, and reverse iteration yields exactly the reverse of forward iteration.
///
/// After an error from any child the iterator is invalid until repositioned.
pub struct MergingIter<I> {
    children: Vec<I>,
    /// Indices of the valid children, heap-ordered for the current direction; the top
    /// (`heap[0]`) is the current entry.
    heap: Vec<usize>,
    /// Per child: the first 8 bytes of its current user key, big-endian and zero-padded.
    /// Two children whose prefixes differ compare by prefix alone, without touching
    /// (or, for boxed children, calling into) either iterator.
    prefix: Vec<u64>,
    dir: Direction,
    /// The current key, copied on a direction switch (the switch moves the children).
    scratch: Vec<u8>,
}

impl<I: SortedIter> MergingIter<I> {
    /// Merges `children`, given newest first. The iterator starts unpositioned (invalid).
    pub fn new(children: Vec<I>) -> Self {
        let heap = Vec::with_capacity(children.len());
        let prefix = vec![0; children.len()];
        MergingIter {
            children,
            heap,
            prefix,
            dir: Direction::Forward,
            scratch: Vec::new(),
        }
    }

    /// Number of inputs.
    pub fn num_children(&self) -> usize {
        self.children.len()
    }

    /// Gives back the inputs.
    pub fn into_children(self) -> Vec<I> {
        self.children
    }

    fn top(&self) -> &I {
        match self.heap.first() {
            Some(&i) => &self.children[i],
            None => panic!("SortedIter::key/value called on an invalid MergingIter"),
        }
    }

    /// Runs a child move over every child; on error, leaves the iterator invalid.
    fn for_each_child(&mut self, mut f: impl FnMut(&mut I) -> Result<()>) -> Result<()> {
        for child in &mut self.children {
            if let Err(e) = f(child) {
                self.heap.clear();
                return Err(e);
            }
        }
        Ok(())
    }

    fn rebuild(&mut self, dir: Direction) {
        self.dir = dir;
        self.heap.clear();
        for (i, child) in self.children.iter().enumerate() {
            if child.valid() {
                self.prefix[i] = key_prefix(child.key());
                self.heap.push(i);
            }
        }
        match dir {
            Direction::Forward => heapify::<I, false>(&self.children, &self.prefix, &mut self.heap),
            Direction::Reverse => heapify::<I, true>(&self.children, &self.prefix, &mut self.heap),
        }
    }

    /// After the top child moved: restore the heap (dropping the child if exhausted).
    fn fix_top(&mut self) {
        let Some(&top) = self.heap.first() else {
            return;
        };
        let child = &self.children[top];
        if child.valid() {
            self.prefix[top] = key_prefix(child.key());
        } else {
            let last = self.heap.len() - 1;
            self.heap.swap(0, last);
            self.heap.pop();
        }
        match self.dir {
            Direction::Forward => {
                sift_down::<I, false>(&self.children, &self.prefix, &mut self.heap, 0)
            }
            Direction::Reverse => {
                sift_down::<I, true>(&self.children, &self.prefix, &mut self.heap, 0)
            }
        }
    }

    /// Moves the top child with `step`; on error, leaves the iterator invalid.
    fn step_top(&mut self, step: impl FnOnce(&mut I) -> Result<()>) -> Result<()> {
        let Some(&top) = self.heap.first() else {
            return Ok(());
        };
        if let Err(e) = step(&mut self.children[top]) {
            self.heap.clear();
            return Err(e);
        }
        self.fix_top();
        Ok(())
    }

    /// Repositions every child but the current one (`cur`, on key `scratch`) on its first
    /// entry after `(scratch, cur)` in `(key, index)` order.
    fn switch_to_forward(&mut self) -> Result<()> {
        let cur = self.heap[0];
        self.scratch.clear();
        self.scratch.extend_from_slice(self.children[cur].key());
        let key = &self.scratch;
        for (j, child) in self.children.iter_mut().enumerate() {
            if j == cur {
                continue;
            }
            let moved = child.seek(key).and_then(|()| {
                // A lower-indexed child's equal key sorts before the current entry.
                if j < cur && child.valid() && child.key() == key.as_slice() {
                    child.next()
                } else {
                    Ok(())
                }
            });
            if let Err(e) = moved {
                self.heap.clear();
                return Err(e);
            }
        }
        // Keep `cur` on top while the heap is rebuilt: it is the smallest entry now.
        self.rebuild(Direction::Forward);
        debug_assert_eq!(self.heap.first(), Some(&cur));
        Ok(())
    }

    /// Repositions every child but the current one on its last entry before
    /// `(scratch, cur)` in `(key, index)` order.
    fn switch_to_reverse(&mut self) -> Result<()> {
        let cur = self.heap[0];
        self.scratch.clear();
        self.scratch.extend_from_slice(self.children[cur].key());
        let key = &self.scratch;
        for (j, child) in self.children.iter_mut().enumerate() {
            if j == cur {
                continue;
            }
            let moved = child.seek(key).and_then(|()| {
                if !child.valid() {
                    // Every entry of this child is before the current key.
                    child.seek_to_last()
                } else if j < cur && child.key() == key.as_slice() {
                    // A lower-indexed child's equal key sorts before the current entry.
                    Ok(())
                } else {
                    child.prev()
                }
            });
            if let Err(e) = moved {
                self.heap.clear();
                return Err(e);
            }
        }
        self.rebuild(Direction::Reverse);
        debug_assert_eq!(self.heap.first(), Some(&cur));
        Ok(())
    }
}

impl<I: SortedIter> SortedIter for MergingIter<I> {
    fn valid(&self) -> bool {
        !self.heap.is_empty()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.for_each_child(|c| c.seek_to_first())?;
        self.rebuild(Direction::Forward);
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.for_each_child(|c| c.seek_to_last())?;
        self.rebuild(Direction::Reverse);
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.for_each_child(|c| c.seek(target))?;
        self.rebuild(Direction::Forward);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        if self.heap.is_empty() {
            return Ok(());
        }
        if self.dir == Direction::Reverse {
            self.switch_to_forward()?;
        }
        self.step_top(|c| c.next())
    }

    fn prev(&mut self) -> Result<()> {
        if self.heap.is_empty() {
            return Ok(());
        }
        if self.dir == Direction::Forward {
            self.switch_to_reverse()?;
        }
        self.step_top(|c| c.prev())
    }

    fn key(&self) -> &[u8] {
        self.top().key()
    }

    fn value(&self) -> &[u8] {
        self.top().value()
    }

    fn value_bytes(&self) -> Bytes {
        self.top().value_bytes()
    }
}

/// The first 8 bytes of an internal key's user key as a big-endian integer, zero-padded.
///
/// For user keys `a` and `b`, `key_prefix(a) < key_prefix(b)` implies `a < b` bytewise
/// (zero padding never sorts a key above a longer one it is a prefix of), so unequal
/// prefixes decide a comparison and only equal ones need the full keys.
#[inline]
fn key_prefix(internal_key: &[u8]) -> u64 {
    let uk = user_key(internal_key);
    if let Some(head) = uk.first_chunk::<8>() {
        return u64::from_be_bytes(*head);
    }
    // Short keys: a byte loop, as a variable-length copy would call memcpy.
    let mut p = 0u64;
    for (i, &b) in uk.iter().enumerate() {
        p |= u64::from(b) << (56 - 8 * i);
    }
    p
}

/// Whether child `a` must be above child `b` in the heap: `(key, index)` smaller moving
/// forward, larger moving backward.
#[inline(always)]
fn above<I: SortedIter, const REVERSE: bool>(
    children: &[I],
    prefix: &[u64],
    a: usize,
    b: usize,
) -> bool {
    let (pa, pb) = (prefix[a], prefix[b]);
    let ord = if pa != pb {
        pa.cmp(&pb)
    } else {
        compare_internal_keys(children[a].key(), children[b].key()).then(a.cmp(&b))
    };
    if REVERSE { ord.is_gt() } else { ord.is_lt() }
}

fn heapify<I: SortedIter, const REVERSE: bool>(children: &[I], prefix: &[u64], heap: &mut [usize]) {
    for pos in (0..heap.len() / 2).rev() {
        sift_down::<I, REVERSE>(children, prefix, heap, pos);
    }
}

#[inline]
fn sift_down<I: SortedIter, const REVERSE: bool>(
    children: &[I],
    prefix: &[u64],
    heap: &mut [usize],
    pos: usize,
) {
    let n = heap.len();
    if pos >= n {
        return;
    }
    let item = heap[pos];
    let mut hole = pos;
    loop {
        let left = 2 * hole + 1;
        if left >= n {
            break;
        }
        let right = left + 1;
        let child = if right < n && above::<I, REVERSE>(children, prefix, heap[right], heap[left]) {
            right
        } else {
            left
        };
        if above::<I, REVERSE>(children, prefix, heap[child], item) {
            heap[hole] = heap[child];
            hole = child;
        } else {
            break;
        }
    }
    heap[hole] = item;
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::{InternalKey, ValueKind, VecIter};

    fn ik(k: &str, seq: u64) -> Vec<u8> {
        InternalKey::new(k.as_bytes(), seq, ValueKind::Put).into_bytes()
    }

    fn input(entries: &[(&str, u64, &str)]) -> VecIter {
        VecIter::new(
            entries
                .iter()
                .map(|(k, s, v)| (ik(k, *s), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    fn values_forward(it: &mut MergingIter<VecIter>) -> Vec<String> {
        let mut out = Vec::new();
        it.seek_to_first().unwrap();
        while it.valid() {
            out.push(String::from_utf8(it.value().to_vec()).unwrap());
            it.next().unwrap();
        }
        out
    }

    #[test]
    fn merges_in_key_order_and_newest_version_first() {
        let mut it = MergingIter::new(vec![
            input(&[("b", 9, "b9"), ("d", 4, "d4")]),
            input(&[("a", 1, "a1"), ("b", 3, "b3")]),
            input(&[]),
            input(&[("c", 2, "c2"), ("e", 5, "e5")]),
        ]);
        assert_eq!(
            values_forward(&mut it),
            ["a1", "b9", "b3", "c2", "d4", "e5"]
        );
        it.seek(InternalKey::for_seek(b"b", 5).as_bytes()).unwrap();
        assert_eq!(it.value(), b"b3");
        it.prev().unwrap();
        assert_eq!(it.value(), b"b9");
        it.prev().unwrap();
        assert_eq!(it.value(), b"a1");
        it.prev().unwrap();
        assert!(!it.valid());
    }

    #[test]
    fn equal_internal_keys_yield_lower_index_first_and_reverse_exactly() {
        let mut it = MergingIter::new(vec![input(&[("k", 5, "new")]), input(&[("k", 5, "old")])]);
        assert_eq!(values_forward(&mut it), ["new", "old"]);
        it.seek_to_last().unwrap();
        assert_eq!(it.value(), b"old");
        it.prev().unwrap();
        assert_eq!(it.value(), b"new");
        // Switch directions on the tie in both places.
        it.next().unwrap();
        assert_eq!(it.value(), b"old");
        it.prev().unwrap();
        assert_eq!(it.value(), b"new");
        it.prev().unwrap();
        assert!(!it.valid());
    }
}
