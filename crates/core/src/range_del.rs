//! Range tombstones: "every key in `[start, end)` is deleted as of sequence `seq`".
//!
//! A range delete is one entry however many keys it covers. Each layer (a MemTable, a
//! table) keeps its range tombstones beside its point entries, *fragmented*: cut at
//! every start and end so that any two fragments either cover exactly the same keys or
//! none in common. A fragment then carries the sequence numbers of every tombstone that
//! covers it, newest first, and "which tombstone hides key `k` at snapshot `S`" is one
//! binary search for the fragment holding `k` and a scan of its (few) sequence numbers.
//! RocksDB (`FragmentedRangeTombstoneList`) and Pebble (`keyspan.Fragmenter`) store
//! them the same way.
//!
//! Semantics: a tombstone `[start, end) @ T` hides every entry of a key `k` with
//! `start <= k < end` and sequence `< T`, from every reader whose snapshot is `>= T`.
//! Ends are exclusive and always finite; `start < end`.

use crate::{InternalKey, MAX_SEQUENCE, SequenceNumber, ValueKind};

/// One range delete as written: keys `start <= k < end` deleted as of `seq`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RangeTombstone {
    /// First key deleted (inclusive).
    pub start: Vec<u8>,
    /// First key *not* deleted (exclusive); greater than `start`.
    pub end: Vec<u8>,
    /// Sequence number of the write.
    pub seq: SequenceNumber,
}

impl RangeTombstone {
    /// Whether the tombstone covers `key` (at any snapshot).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.start.as_slice() <= key && key < self.end.as_slice()
    }
}

/// A key range `[start, end)` and the sequence numbers of the tombstones covering
/// exactly it, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    start: Vec<u8>,
    end: Vec<u8>,
    /// Descending, without duplicates, never empty.
    seqs: Vec<SequenceNumber>,
}

impl Fragment {
    /// First key covered.
    pub fn start(&self) -> &[u8] {
        &self.start
    }

    /// First key past the fragment.
    pub fn end(&self) -> &[u8] {
        &self.end
    }

    /// Sequence numbers of the tombstones covering the fragment, newest first.
    pub fn seqs(&self) -> &[SequenceNumber] {
        &self.seqs
    }

    /// The newest tombstone sequence visible at `snapshot` (`<= snapshot`).
    pub fn newest_visible(&self, snapshot: SequenceNumber) -> Option<SequenceNumber> {
        self.seqs.iter().copied().find(|&s| s <= snapshot)
    }

    /// Whether `key` lies in the fragment.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.start.as_slice() <= key && key < self.end.as_slice()
    }
}

/// A layer's range tombstones, fragmented: non-overlapping fragments sorted by start
/// key. Immutable once built; cheap to query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FragmentedTombstones {
    fragments: Vec<Fragment>,
    index: EndIndex,
}

/// A dense search index over the fragments' ends, so a lookup's binary search runs on
/// an array of integers instead of chasing each fragment's heap-allocated key: the
/// bytes every end shares (`common`), then per fragment the next 8 bytes of its end as
/// a big-endian integer, zero-padded. Ends ascend, so the integers never decrease; a
/// key compares with an end by integer first and by bytes only on a tie.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct EndIndex {
    common: Vec<u8>,
    words: Vec<u64>,
}

/// 8 bytes of `key` from `skip` on, big-endian, zero-padded.
fn word_at(key: &[u8], skip: usize) -> u64 {
    let mut w = [0u8; 8];
    let tail = key.get(skip..).unwrap_or_default();
    let n = tail.len().min(8);
    if let (Some(dst), Some(src)) = (w.get_mut(..n), tail.get(..n)) {
        dst.copy_from_slice(src);
    }
    u64::from_be_bytes(w)
}

impl EndIndex {
    fn build(fragments: &[Fragment]) -> Self {
        let Some(first) = fragments.first() else {
            return EndIndex::default();
        };
        let mut common = first.end.len();
        for f in fragments {
            let shared = first
                .end
                .iter()
                .zip(&f.end)
                .take_while(|(a, b)| a == b)
                .count();
            common = common.min(shared);
        }
        EndIndex {
            common: first.end.get(..common).unwrap_or_default().to_vec(),
            words: fragments.iter().map(|f| word_at(&f.end, common)).collect(),
        }
    }
}

/// Why a decoded list of fragments was refused (the caller names file and offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragmentError {
    /// A fragment's end is not above its start.
    EmptyRange,
    /// Fragments are not sorted by start, or two of them partly overlap.
    Overlap,
    /// A fragment's sequence numbers are not strictly descending.
    SeqOrder,
}

impl std::fmt::Display for FragmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FragmentError::EmptyRange => "a range tombstone's end is not above its start",
            FragmentError::Overlap => "range tombstone fragments overlap or are out of order",
            FragmentError::SeqOrder => "a fragment's sequence numbers are not newest first",
        })
    }
}

impl FragmentedTombstones {
    /// No tombstones.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Fragments any set of tombstones (overlapping, unsorted, duplicated). Tombstones
    /// with `start >= end` cover nothing and are ignored.
    pub fn new(tombstones: impl IntoIterator<Item = RangeTombstone>) -> Self {
        let mut ts: Vec<RangeTombstone> =
            tombstones.into_iter().filter(|t| t.start < t.end).collect();
        if ts.is_empty() {
            return Self::empty();
        }
        ts.sort_by(|a, b| a.start.cmp(&b.start));
        // Every start and end is a cut point; between two consecutive cut points the
        // set of covering tombstones is constant.
        let mut cuts: Vec<&[u8]> = ts
            .iter()
            .flat_map(|t| [t.start.as_slice(), t.end.as_slice()])
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut fragments: Vec<Fragment> = Vec::new();
        // Tombstones whose start has been passed: `(end, seq)`.
        let mut active: Vec<(&[u8], SequenceNumber)> = Vec::new();
        let mut next = 0;
        for pair in cuts.windows(2) {
            let [lo, hi] = pair else { continue };
            while let Some(t) = ts.get(next).filter(|t| t.start.as_slice() <= *lo) {
                active.push((t.end.as_slice(), t.seq));
                next += 1;
            }
            active.retain(|(end, _)| *end > *lo);
            if active.is_empty() {
                continue;
            }
            let mut seqs: Vec<SequenceNumber> = active.iter().map(|(_, s)| *s).collect();
            seqs.sort_unstable_by(|a, b| b.cmp(a));
            seqs.dedup();
            match fragments.last_mut() {
                // Adjacent and covered by the same tombstones: one fragment.
                Some(last) if last.end.as_slice() == *lo && last.seqs == seqs => {
                    last.end = hi.to_vec();
                }
                _ => fragments.push(Fragment {
                    start: lo.to_vec(),
                    end: hi.to_vec(),
                    seqs,
                }),
            }
        }
        Self::with_index(fragments)
    }

    fn with_index(fragments: Vec<Fragment>) -> Self {
        let index = EndIndex::build(&fragments);
        FragmentedTombstones { fragments, index }
    }

    /// Takes fragments that are already fragmented (as a table stores them), checking
    /// that they are: each non-empty, sorted, pairwise disjoint, seqs newest first.
    /// `entries` are `(start, end, seq)` in block order: start ascending, then seq
    /// descending; entries sharing a start must share the end.
    pub fn from_sorted_entries(
        entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>, SequenceNumber)>,
    ) -> Result<Self, FragmentError> {
        let mut fragments: Vec<Fragment> = Vec::new();
        for (start, end, seq) in entries {
            if start >= end {
                return Err(FragmentError::EmptyRange);
            }
            match fragments.last_mut() {
                Some(last) if last.start == start => {
                    if last.end != end {
                        return Err(FragmentError::Overlap);
                    }
                    if last.seqs.last().is_some_and(|&prev| prev <= seq) {
                        return Err(FragmentError::SeqOrder);
                    }
                    last.seqs.push(seq);
                }
                Some(last) if last.end > start => return Err(FragmentError::Overlap),
                _ => fragments.push(Fragment {
                    start,
                    end,
                    seqs: vec![seq],
                }),
            }
        }
        Ok(Self::with_index(fragments))
    }

    /// Whether there are no tombstones.
    pub fn is_empty(&self) -> bool {
        self.fragments.is_empty()
    }

    /// Number of `(fragment, sequence)` pairs: what a table stores.
    pub fn len(&self) -> usize {
        self.fragments.iter().map(|f| f.seqs.len()).sum()
    }

    /// The fragments, sorted by start.
    pub fn fragments(&self) -> &[Fragment] {
        &self.fragments
    }

    /// Every `(start, end, seq)`, start ascending then newest first: the order a table
    /// stores them in.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8], SequenceNumber)> + '_ {
        self.fragments.iter().flat_map(|f| {
            f.seqs
                .iter()
                .map(move |&s| (f.start.as_slice(), f.end.as_slice(), s))
        })
    }

    /// The fragments as plain tombstones (for merging several layers' lists).
    pub fn tombstones(&self) -> impl Iterator<Item = RangeTombstone> + '_ {
        self.entries().map(|(s, e, seq)| RangeTombstone {
            start: s.to_vec(),
            end: e.to_vec(),
            seq,
        })
    }

    /// Index of the fragment holding `key`, if any.
    pub fn position(&self, key: &[u8]) -> Option<usize> {
        let i = self.first_ending_past(key);
        self.fragments
            .get(i)
            .is_some_and(|f| f.start.as_slice() <= key)
            .then_some(i)
    }

    /// The index of the first fragment whose end is above `key` (the only one that can
    /// hold it), by the dense index.
    fn first_ending_past(&self, key: &[u8]) -> usize {
        let n = self.fragments.len();
        let common = &self.index.common;
        let head = key.get(..common.len()).unwrap_or(key);
        match head.cmp(common.get(..head.len()).unwrap_or_default()) {
            // Below every end.
            std::cmp::Ordering::Less => return 0,
            // Above every end.
            std::cmp::Ordering::Greater => return n,
            // A proper prefix of the shared bytes: below every end.
            std::cmp::Ordering::Equal if head.len() < common.len() => return 0,
            std::cmp::Ordering::Equal => {}
        }
        let w = word_at(key, common.len());
        let words = &self.index.words;
        let lo = words.partition_point(|&x| x < w);
        let ties = words
            .get(lo..)
            .unwrap_or_default()
            .partition_point(|&x| x == w);
        let tied = self.fragments.get(lo..lo + ties).unwrap_or_default();
        lo + tied.partition_point(|f| f.end.as_slice() <= key)
    }

    /// Like [`fragment_at`](Self::fragment_at), starting from `hint` — the answer
    /// for a nearby key, which the call updates: a scan's keys move one way, so most
    /// calls find their fragment (or gap) at the hint or next to it with two
    /// comparisons instead of a binary search.
    pub fn fragment_at_hinted(&self, key: &[u8], hint: &mut usize) -> Option<&Fragment> {
        let frags = &self.fragments;
        // `i` is the first fragment ending past `key`, as a binary search finds it.
        let is_first_past = |i: usize| {
            let prev_done = match i.checked_sub(1) {
                None => true,
                Some(p) => frags.get(p).is_some_and(|f| f.end.as_slice() <= key),
            };
            prev_done && frags.get(i).is_none_or(|f| key < f.end.as_slice())
        };
        let i = if is_first_past(*hint) {
            *hint
        } else if is_first_past(*hint + 1) {
            *hint + 1
        } else if hint.checked_sub(1).is_some_and(is_first_past) {
            *hint - 1
        } else {
            self.first_ending_past(key)
        };
        *hint = i;
        frags.get(i).filter(|f| f.start.as_slice() <= key)
    }

    /// The stretch of keys around `key` that [`fragment_at_hinted`](Self::fragment_at_hinted)
    /// answers alike, once that call left `hint` at `key`'s position: the fragment's own
    /// bounds, or the gap between two fragments. `(inclusive low, exclusive high)`;
    /// `None` is unbounded.
    pub fn span_at_hint(&self, key: &[u8], hint: usize) -> (Option<&[u8]>, Option<&[u8]>) {
        let frags = &self.fragments;
        match frags.get(hint) {
            Some(f) if f.start.as_slice() <= key => (Some(&f.start), Some(&f.end)),
            next => (
                hint.checked_sub(1)
                    .and_then(|p| frags.get(p))
                    .map(|f| f.end.as_slice()),
                next.map(|f| f.start.as_slice()),
            ),
        }
    }

    /// The fragment holding `key`, if any.
    pub fn fragment_at(&self, key: &[u8]) -> Option<&Fragment> {
        self.position(key).and_then(|i| self.fragments.get(i))
    }

    /// The sequence number of the newest tombstone covering `key` that a reader at
    /// `snapshot` sees. An entry of `key` older than it is deleted for that reader.
    pub fn covering_seq(&self, key: &[u8], snapshot: SequenceNumber) -> Option<SequenceNumber> {
        self.fragment_at(key)?.newest_visible(snapshot)
    }

    /// Smallest start key, if any.
    pub fn smallest_start(&self) -> Option<&[u8]> {
        self.fragments.first().map(|f| f.start.as_slice())
    }

    /// Largest end key (exclusive), if any.
    pub fn largest_end(&self) -> Option<&[u8]> {
        self.fragments.last().map(|f| f.end.as_slice())
    }

    /// The internal-key range a table holding these tombstones spans: from
    /// [`start_bound`] of the first start to [`end_bound`] of the last end.
    pub fn key_bounds(&self) -> Option<(InternalKey, InternalKey)> {
        Some((
            start_bound(self.smallest_start()?),
            end_bound(self.largest_end()?),
        ))
    }

    /// A table's key range widened from its point entries' (`points`, if it has any)
    /// to cover these tombstones too; `None` if it holds neither.
    pub fn widen(
        &self,
        points: Option<(InternalKey, InternalKey)>,
    ) -> Option<(InternalKey, InternalKey)> {
        match (points, self.key_bounds()) {
            (Some((ps, pl)), Some((rs, rl))) => Some((ps.min(rs), pl.max(rl))),
            (points, ranges) => points.or(ranges),
        }
    }

    /// Smallest and largest sequence number of any tombstone.
    pub fn seq_range(&self) -> Option<(SequenceNumber, SequenceNumber)> {
        let all = self.fragments.iter().flat_map(|f| f.seqs.iter().copied());
        all.fold(None, |acc, s| match acc {
            None => Some((s, s)),
            Some((lo, hi)) => Some((lo.min(s), hi.max(s))),
        })
    }

    /// The part covering keys in `[lo, hi)` (`None` = unbounded on that side):
    /// fragments cut at the bounds, what lies outside dropped. Reads inside the bounds
    /// see exactly what they saw before.
    pub fn truncated(&self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> Self {
        let mut fragments = Vec::new();
        for f in &self.fragments {
            let start = match lo {
                Some(lo) if lo > f.start.as_slice() => lo,
                _ => f.start.as_slice(),
            };
            let end = match hi {
                Some(hi) if hi < f.end.as_slice() => hi,
                _ => f.end.as_slice(),
            };
            if start < end {
                fragments.push(Fragment {
                    start: start.to_vec(),
                    end: end.to_vec(),
                    seqs: f.seqs.clone(),
                });
            }
        }
        Self::with_index(fragments)
    }

    /// Keeps, of each fragment's sequence numbers, those `keep(fragment, seq)` accepts;
    /// fragments left with none disappear.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &[u8], SequenceNumber) -> bool) {
        for f in &mut self.fragments {
            let (start, end) = (f.start.as_slice(), f.end.as_slice());
            f.seqs.retain(|&s| keep(start, end, s));
        }
        self.fragments.retain(|f| !f.seqs.is_empty());
        self.index = EndIndex::build(&self.fragments);
    }

    /// Whether some fragment overlaps the user-key range `[lo, hi]` (inclusive).
    pub fn overlaps(&self, lo: &[u8], hi: &[u8]) -> bool {
        let i = self.fragments.partition_point(|f| f.end.as_slice() <= lo);
        self.fragments
            .get(i)
            .is_some_and(|f| f.start.as_slice() <= hi)
    }
}

/// The smallest internal key a table holding a tombstone that starts at `start` must
/// include: below every entry of `start`.
pub fn start_bound(start: &[u8]) -> InternalKey {
    InternalKey::new(start, MAX_SEQUENCE, ValueKind::FOR_BOUND)
}

/// The largest internal key a table holding a tombstone that ends (exclusively) at
/// `end` must include. Where `end` is a [`successor`] (ends in a zero byte), the last
/// key covered is `end` without it, and the bound is that key's last internal key:
/// exact, so the next table of a level may start right at `end`. Otherwise the bound
/// is just below every entry of `end` (whose user key it carries: a table's user-key
/// range then includes `end`, one key more than it covers).
pub fn end_bound(end: &[u8]) -> InternalKey {
    match end.split_last() {
        Some((0, covered_up_to)) => InternalKey::new(covered_up_to, 0, ValueKind::Delete),
        _ => InternalKey::new(end, MAX_SEQUENCE, ValueKind::FOR_BOUND),
    }
}

/// The smallest key greater than `key` in bytewise order: `key` followed by a zero
/// byte. Turns an inclusive end into an exclusive one.
pub fn successor(key: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(key.len() + 1);
    s.extend_from_slice(key);
    s.push(0);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(start: &str, end: &str, seq: u64) -> RangeTombstone {
        RangeTombstone {
            start: start.as_bytes().to_vec(),
            end: end.as_bytes().to_vec(),
            seq,
        }
    }

    /// The reference: the newest visible tombstone covering `key`, by brute force.
    fn naive(ts: &[RangeTombstone], key: &[u8], snapshot: u64) -> Option<u64> {
        ts.iter()
            .filter(|t| t.contains(key) && t.seq <= snapshot)
            .map(|t| t.seq)
            .max()
    }

    fn tombstones() -> impl Strategy<Value = Vec<RangeTombstone>> {
        proptest::collection::vec(
            (
                proptest::collection::vec(0u8..6, 0..3),
                proptest::collection::vec(0u8..6, 0..3),
                1u64..20,
            )
                .prop_map(|(start, end, seq)| RangeTombstone { start, end, seq }),
            0..12,
        )
    }

    fn probe_keys() -> Vec<Vec<u8>> {
        let mut keys = vec![vec![]];
        for a in 0u8..7 {
            keys.push(vec![a]);
            for b in 0u8..7 {
                keys.push(vec![a, b]);
                keys.push(vec![a, b, 0]);
            }
        }
        keys
    }

    #[test]
    fn overlapping_tombstones_are_cut_into_disjoint_fragments() {
        let f = FragmentedTombstones::new([t("a", "e", 5), t("c", "g", 9)]);
        let got: Vec<_> = f
            .fragments()
            .iter()
            .map(|f| (f.start(), f.end(), f.seqs().to_vec()))
            .collect();
        assert_eq!(
            got,
            [
                (&b"a"[..], &b"c"[..], vec![5]),
                (&b"c"[..], &b"e"[..], vec![9, 5]),
                (&b"e"[..], &b"g"[..], vec![9]),
            ]
        );
        assert_eq!(f.len(), 4);
        assert_eq!(f.covering_seq(b"d", 100), Some(9));
        assert_eq!(f.covering_seq(b"d", 8), Some(5));
        assert_eq!(f.covering_seq(b"d", 4), None);
        assert_eq!(f.covering_seq(b"g", 100), None);
    }

    #[test]
    fn decoding_refuses_overlaps_empty_ranges_and_misordered_seqs() {
        let e = |s: &str, e: &str, q: u64| (s.as_bytes().to_vec(), e.as_bytes().to_vec(), q);
        assert!(
            FragmentedTombstones::from_sorted_entries([e("a", "c", 5), e("c", "d", 1)]).is_ok()
        );
        assert_eq!(
            FragmentedTombstones::from_sorted_entries([e("a", "c", 5), e("b", "d", 1)]),
            Err(FragmentError::Overlap)
        );
        assert_eq!(
            FragmentedTombstones::from_sorted_entries([e("a", "c", 5), e("a", "d", 1)]),
            Err(FragmentError::Overlap)
        );
        assert_eq!(
            FragmentedTombstones::from_sorted_entries([e("b", "a", 5)]),
            Err(FragmentError::EmptyRange)
        );
        assert_eq!(
            FragmentedTombstones::from_sorted_entries([e("a", "c", 5), e("a", "c", 5)]),
            Err(FragmentError::SeqOrder)
        );
    }

    proptest! {
        /// Fragmenting never changes which tombstone hides a key at any snapshot.
        #[test]
        fn fragmentation_preserves_every_answer(ts in tombstones(), snapshot in 0u64..22) {
            let f = FragmentedTombstones::new(ts.clone());
            for k in probe_keys() {
                prop_assert_eq!(f.covering_seq(&k, snapshot), naive(&ts, &k, snapshot), "key {:?}", k);
            }
            // Stored order round-trips through the decoder's checks.
            let entries: Vec<_> = f.entries().map(|(s, e, q)| (s.to_vec(), e.to_vec(), q)).collect();
            let decoded = FragmentedTombstones::from_sorted_entries(entries);
            prop_assert_eq!(decoded.as_ref(), Ok(&f));
            // Fragmenting the fragments changes nothing.
            prop_assert_eq!(FragmentedTombstones::new(f.tombstones()), f.clone());
            // The dense index finds what a plain binary search finds.
            for k in probe_keys() {
                let naive = f.fragments().partition_point(|x| x.end() <= k.as_slice());
                prop_assert_eq!(f.first_ending_past(&k), naive, "key {:?}", k);
            }
            // Hinted lookups answer as plain ones, whatever the hint and the order.
            let mut hint = 0;
            let keys = probe_keys();
            for k in keys.iter().chain(keys.iter().rev()).chain(keys.iter().step_by(7)) {
                prop_assert_eq!(f.fragment_at_hinted(k, &mut hint), f.fragment_at(k));
                // Every key of the span the hint gives is answered alike, and `k` is in it.
                let (lo, hi) = f.span_at_hint(k, hint);
                let inside = |x: &[u8]| lo.is_none_or(|l| l <= x) && hi.is_none_or(|h| x < h);
                prop_assert!(inside(k), "key {:?} outside its span {:?}..{:?}", k, lo, hi);
                for k2 in keys.iter().filter(|x| inside(x)) {
                    prop_assert_eq!(f.fragment_at(k2), f.fragment_at(k), "{:?} and {:?}", k, k2);
                }
            }
        }

        /// Truncation keeps every answer inside the bounds and none outside.
        #[test]
        fn truncation_changes_no_answer_inside_its_bounds(
            ts in tombstones(),
            lo in proptest::collection::vec(0u8..6, 0..2),
            hi in proptest::collection::vec(0u8..6, 0..3),
            snapshot in 0u64..22,
        ) {
            let f = FragmentedTombstones::new(ts.clone());
            let cut = f.truncated(Some(&lo), Some(&hi));
            for k in probe_keys() {
                let inside = lo.as_slice() <= k.as_slice() && k < hi;
                let expect = if inside { naive(&ts, &k, snapshot) } else { None };
                prop_assert_eq!(cut.covering_seq(&k, snapshot), expect, "key {:?}", k);
            }
            // Cutting a list into pieces at any point and merging the pieces back
            // answers like the whole.
            let left = f.truncated(None, Some(&lo));
            let right = f.truncated(Some(&lo), None);
            let joined = FragmentedTombstones::new(left.tombstones().chain(right.tombstones()));
            for k in probe_keys() {
                prop_assert_eq!(joined.covering_seq(&k, snapshot), f.covering_seq(&k, snapshot));
            }
        }
    }

    #[test]
    fn table_bounds_enclose_exactly_what_a_tombstone_covers() {
        use crate::compare_internal_keys as cmp;
        // [a, b\0) covers keys up to b: the bound is b's last internal key, below the
        // next table's first possible entry (b\0 at the newest sequence).
        let end = end_bound(&successor(b"b"));
        assert_eq!(end.user_key(), b"b");
        assert!(
            cmp(
                InternalKey::new(b"b", 0, ValueKind::Delete).as_bytes(),
                end.as_bytes()
            )
            .is_le()
        );
        assert!(end < start_bound(&successor(b"b")));
        // Any other end: just below every entry of it.
        let end = end_bound(b"c");
        assert!(end < InternalKey::new(b"c", crate::MAX_SEQUENCE - 1, ValueKind::Put));
        assert!(InternalKey::new(b"bzzz", 0, ValueKind::Delete) < end);
        assert!(
            start_bound(b"a") < InternalKey::new(b"a", crate::MAX_SEQUENCE - 1, ValueKind::Put)
        );
    }

    /// Keys with a long shared prefix (db_bench's zero-padded numbers): the dense
    /// index skips the shared bytes and still finds what a binary search finds.
    #[test]
    fn lookups_over_keys_with_a_long_shared_prefix() {
        let k = |i: u64| format!("0000000000{i:06}").into_bytes();
        let f = FragmentedTombstones::new((0..500).map(|r| RangeTombstone {
            start: k(r * 20),
            end: k(r * 20 + 10),
            seq: r + 1,
        }));
        assert_eq!(f.index.common, b"000000000000".to_vec());
        for i in 0..10_050 {
            let want = (i % 20 < 10 && i < 10_000).then_some(i / 20 + 1);
            assert_eq!(f.covering_seq(&k(i), u64::MAX), want, "key {i}");
        }
        assert_eq!(f.covering_seq(b"000", u64::MAX), None);
        assert_eq!(f.covering_seq(b"1", u64::MAX), None);
        assert_eq!(f.covering_seq(b"", u64::MAX), None);
    }

    #[test]
    fn successor_is_the_next_key() {
        assert!(successor(b"a").as_slice() > &b"a"[..]);
        assert!(successor(b"a").as_slice() < &b"a\x00\x00"[..]);
        assert!(successor(b"a").as_slice() < &b"b"[..]);
    }
}
