//! The merging iterator: one sorted stream out of any number of sorted inputs.
//!
//! A k-way merge on a *loser tree* (tournament tree): each internal node remembers the
//! loser of the match played there and the root the overall winner, the current entry.
//! When the winner's child moves, it replays only the matches on its own path to the
//! root: at most `ceil(log2 k)` comparisons per step, about half of what a binary heap's
//! sift-down needs (two per level). Comparisons look at a cached 8-byte key prefix per
//! child first, so most never touch, or call into, the children.
//!
//! Direction switches follow LevelDB's `MergingIterator`: moving forward, every child
//! stands on its first entry after the current one; moving backward, on its last entry
//! before it. Switching direction re-seeks every other child to the current key and
//! steps it once, which costs `k` seeks but only happens on a switch.
//!
//! **Deferred seeks.** [`MergingIter::seek_deferred`] lets the caller postpone a child's
//! seek when it knows a lower bound of where the seek would land (a table's smallest
//! key, or "past this user key" when the table's Bloom filter excludes it). The child
//! then plays its matches with the bound in place of a key, and is only really sought
//! when it wins, i.e. when the merged cursor gets that far. A point-like seek (`range(k..)`
//! read for one entry) thus reads the data blocks of the tables that may hold `k`
//! only.

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
    /// `tree[0]`: the winner (the child holding the current entry); `tree[n]` for
    /// `1 <= n < k`: the loser of the match at internal node `n`. Child `i` is the leaf
    /// at node `k + i`; node `n`'s parent is `n / 2`. `tree[k..3k]` is scratch for
    /// rebuilding: `tree[k + n]` is the winner at node `n` (one allocation for both).
    tree: Vec<usize>,
    /// Per child: what its matches are decided on.
    slots: Vec<Slot>,
    dir: Direction,
    valid: bool,
    /// The current key, copied on a direction switch (the switch moves the children).
    scratch: Vec<u8>,
    /// The target of postponed seeks, then their bounds, end to end (see
    /// [`Slot::bound`]).
    bounds: Vec<u8>,
    /// The target of postponed seeks is `bounds[..target_len]`.
    target_len: usize,
    any_deferred: bool,
}

/// The cached state of one child.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// The first 8 bytes of its current user key, big-endian and zero-padded. Two
    /// children whose prefixes differ compare by prefix alone.
    prefix: u64,
    /// Whether it is valid (an exhausted child loses every match).
    live: bool,
    /// Whether its seek (to `bounds[..target_len]`) is postponed; it then plays with
    /// `bounds[bound.0..bound.1]`, a key at or below the entry the seek will reach.
    deferred: bool,
    bound: (usize, usize),
}

impl<I: SortedIter> MergingIter<I> {
    /// Merges `children`, given newest first. The iterator starts unpositioned (invalid).
    pub fn new(children: Vec<I>) -> Self {
        let k = children.len();
        MergingIter {
            children,
            tree: vec![0; 3 * k],
            slots: vec![Slot::default(); k],
            dir: Direction::Forward,
            valid: false,
            scratch: Vec::new(),
            bounds: Vec::new(),
            target_len: 0,
            any_deferred: false,
        }
    }

    /// Positions on the first entry `>= target`, like [`SortedIter::seek`], but lets
    /// `defer` postpone the seek of child `i`: `defer(i, bound)` returns true after
    /// appending to `bound` an internal key at or below the first entry of child `i`
    /// that is `>= target` (any key if the child has none). The child is then only
    /// sought when the merged cursor reaches its bound.
    ///
    /// A bound above the child's real entry breaks the merge order: the caller must know
    /// it (from the child's smallest key, or a filter excluding a user key: then every
    /// entry the seek can reach is above the largest internal key of that user key).
    pub fn seek_deferred(
        &mut self,
        target: &[u8],
        mut defer: impl FnMut(usize, &mut Vec<u8>) -> bool,
    ) -> Result<()> {
        self.any_deferred = false;
        // One buffer, one allocation: the target, then every bound.
        self.bounds.clear();
        self.bounds.extend_from_slice(target);
        self.target_len = target.len();
        for i in 0..self.children.len() {
            let start = self.bounds.len();
            let postpone = defer(i, &mut self.bounds);
            if !postpone {
                self.bounds.truncate(start);
            }
            let slot = &mut self.slots[i];
            slot.deferred = postpone;
            slot.bound = (start, self.bounds.len());
            if postpone {
                self.any_deferred = true;
            } else if let Err(e) = self.children[i].seek(target) {
                self.valid = false;
                return Err(e);
            }
        }
        self.rebuild(Direction::Forward);
        self.settle()
    }

    /// Seeks postponed children for real while one of them is the winner, so the
    /// winner always stands on an entry.
    fn settle(&mut self) -> Result<()> {
        while self.any_deferred && self.valid && self.slots[self.tree[0]].deferred {
            let w = self.tree[0];
            self.slots[w].deferred = false;
            let target = self.bounds.get(..self.target_len).unwrap_or_default();
            if let Err(e) = self.children[w].seek(target) {
                self.valid = false;
                return Err(e);
            }
            self.refresh(w);
            self.replay::<false>(w);
        }
        Ok(())
    }

    /// Forgets postponed seeks (every child is about to be repositioned).
    fn clear_deferred(&mut self) {
        if self.any_deferred {
            for slot in &mut self.slots {
                slot.deferred = false;
            }
            self.any_deferred = false;
        }
    }

    /// Moving forward: repositions every child from index `from` on whose next entry
    /// lies below `target` on its first entry `>= target`, as if the entries in
    /// between had been stepped over, and plays the matches again. For callers that
    /// know those entries are of no interest (keys a range tombstone deletes in every
    /// child older than it). Does nothing while moving backward or when invalid.
    pub fn skip_forward_from(&mut self, from: usize, target: &[u8]) -> Result<()> {
        if self.dir != Direction::Forward || from >= self.children.len() {
            return Ok(());
        }
        let mut moved = false;
        for i in from..self.children.len() {
            let slot = self.slots[i];
            let behind = if slot.deferred {
                true
            } else {
                self.children[i].valid()
                    && compare_internal_keys(self.children[i].key(), target).is_lt()
            };
            if !behind {
                continue;
            }
            // A postponed seek is overtaken: the target is past its own.
            self.slots[i].deferred = false;
            if let Err(e) = self.children[i].seek(target) {
                self.valid = false;
                return Err(e);
            }
            moved = true;
        }
        if moved {
            self.any_deferred = self.slots.iter().any(|s| s.deferred);
            self.rebuild(Direction::Forward);
            self.settle()?;
        }
        Ok(())
    }

    /// Moving backward: repositions every child from index `from` on whose current
    /// entry lies at or above `target` on its last entry below `target`, and plays the
    /// matches again (the mirror of [`skip_forward_from`](Self::skip_forward_from)).
    pub fn skip_backward_from(&mut self, from: usize, target: &[u8]) -> Result<()> {
        if self.dir != Direction::Reverse || from >= self.children.len() {
            return Ok(());
        }
        let mut moved = false;
        for i in from..self.children.len() {
            let child = &mut self.children[i];
            if !child.valid() || compare_internal_keys(child.key(), target).is_lt() {
                continue;
            }
            let step = child.seek(target).and_then(|()| {
                if child.valid() {
                    child.prev()
                } else {
                    child.seek_to_last()
                }
            });
            if let Err(e) = step {
                self.valid = false;
                return Err(e);
            }
            moved = true;
        }
        if moved {
            self.rebuild(Direction::Reverse);
        }
        Ok(())
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
        if !self.valid {
            panic!("SortedIter::key/value called on an invalid MergingIter");
        }
        &self.children[self.tree[0]]
    }

    /// Runs a child move over every child; on error, leaves the iterator invalid.
    fn for_each_child(&mut self, mut f: impl FnMut(&mut I) -> Result<()>) -> Result<()> {
        self.clear_deferred();
        for child in &mut self.children {
            if let Err(e) = f(child) {
                self.valid = false;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Refreshes the cached state of child `i` after it moved.
    #[inline]
    fn refresh(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if slot.deferred {
            slot.live = true;
            slot.prefix = key_prefix(
                self.bounds
                    .get(slot.bound.0..slot.bound.1)
                    .unwrap_or_default(),
            );
            return;
        }
        let child = &self.children[i];
        slot.live = child.valid();
        if slot.live {
            slot.prefix = key_prefix(child.key());
        }
    }

    /// Plays every match again, for direction `dir`.
    fn rebuild(&mut self, dir: Direction) {
        self.dir = dir;
        for i in 0..self.children.len() {
            self.refresh(i);
        }
        match dir {
            Direction::Forward => self.build::<false>(),
            Direction::Reverse => self.build::<true>(),
        }
    }

    fn build<const REVERSE: bool>(&mut self) {
        let k = self.children.len();
        if k == 0 {
            self.valid = false;
            return;
        }
        let m = Matches {
            children: &self.children,
            slots: &self.slots,
            bounds: &self.bounds,
        };
        let (tree, winners) = self.tree.split_at_mut(k);
        for i in 0..k {
            winners[k + i] = i;
        }
        for n in (1..k).rev() {
            let (a, b) = (winners[2 * n], winners[2 * n + 1]);
            let (win, lose) = if m.beats::<REVERSE>(b, a) {
                (b, a)
            } else {
                (a, b)
            };
            winners[n] = win;
            tree[n] = lose;
        }
        tree[0] = if k == 1 { 0 } else { winners[1] };
        self.valid = self.slots[tree[0]].live;
    }

    /// Replays the matches on the path of child `w` (the winner, which just moved).
    #[inline]
    fn replay<const REVERSE: bool>(&mut self, w: usize) {
        let m = Matches {
            children: &self.children,
            slots: &self.slots,
            bounds: &self.bounds,
        };
        let mut winner = w;
        let mut node = (self.children.len() + w) / 2;
        while node > 0 {
            let other = self.tree[node];
            if m.beats::<REVERSE>(other, winner) {
                self.tree[node] = winner;
                winner = other;
            }
            node /= 2;
        }
        self.tree[0] = winner;
        self.valid = self.slots[winner].live;
    }

    /// Moves the winning child with `step`; on error, leaves the iterator invalid.
    fn step_top(&mut self, step: impl FnOnce(&mut I) -> Result<()>) -> Result<()> {
        let w = self.tree[0];
        if let Err(e) = step(&mut self.children[w]) {
            self.valid = false;
            return Err(e);
        }
        self.refresh(w);
        match self.dir {
            Direction::Forward => {
                self.replay::<false>(w);
                self.settle()
            }
            Direction::Reverse => {
                self.replay::<true>(w);
                Ok(())
            }
        }
    }

    /// Repositions every child but the current one (`cur`) on its first entry after the
    /// current `(key, cur)` in `(key, index)` order.
    fn switch_to_forward(&mut self) -> Result<()> {
        self.clear_deferred();
        let cur = self.tree[0];
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
                self.valid = false;
                return Err(e);
            }
        }
        self.rebuild(Direction::Forward);
        debug_assert_eq!(self.tree.first(), Some(&cur));
        Ok(())
    }

    /// Repositions every child but the current one on its last entry before the current
    /// `(key, cur)` in `(key, index)` order.
    fn switch_to_reverse(&mut self) -> Result<()> {
        // Every other child is sought to the current key below: postponed seeks die.
        self.clear_deferred();
        let cur = self.tree[0];
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
                self.valid = false;
                return Err(e);
            }
        }
        self.rebuild(Direction::Reverse);
        debug_assert_eq!(self.tree.first(), Some(&cur));
        Ok(())
    }
}

impl<I: SortedIter> SortedIter for MergingIter<I> {
    fn valid(&self) -> bool {
        self.valid
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
        if !self.valid {
            return Ok(());
        }
        if self.dir == Direction::Reverse {
            self.switch_to_forward()?;
        }
        self.step_top(|c| c.next())
    }

    fn prev(&mut self) -> Result<()> {
        if !self.valid {
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

/// The state a match is decided on.
struct Matches<'a, I> {
    children: &'a [I],
    slots: &'a [Slot],
    bounds: &'a [u8],
}

impl<I: SortedIter> Matches<'_, I> {
    /// Child `i`'s key, or its bound while its seek is postponed.
    #[inline]
    fn key(&self, i: usize) -> &[u8] {
        let slot = &self.slots[i];
        if slot.deferred {
            self.bounds
                .get(slot.bound.0..slot.bound.1)
                .unwrap_or_default()
        } else {
            self.children[i].key()
        }
    }

    /// Whether child `a` wins against child `b`: valid, and `(key, index)` smaller
    /// moving forward, larger moving backward. An exhausted child never wins.
    #[inline(always)]
    fn beats<const REVERSE: bool>(&self, a: usize, b: usize) -> bool {
        let (sa, sb) = (&self.slots[a], &self.slots[b]);
        if !sa.live {
            return false;
        }
        if !sb.live {
            return true;
        }
        let (pa, pb) = (sa.prefix, sb.prefix);
        let ord = if pa != pb {
            pa.cmp(&pb)
        } else {
            compare_internal_keys(self.key(a), self.key(b)).then(a.cmp(&b))
        };
        if REVERSE { ord.is_gt() } else { ord.is_lt() }
    }
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
