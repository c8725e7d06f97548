//! Which versions a compaction keeps: the newest-wins and tombstone rules.
//!
//! The live snapshots cut each user key's history into *stripes*: the stripe of an
//! entry with sequence `s` is the oldest snapshot that can see it (the smallest live
//! snapshot `>= s`), or "latest" if no snapshot can. Every reader of a stripe — the
//! snapshot itself or, for "latest", anyone reading the current state — sees the newest
//! entry of that stripe and nothing older, so:
//!
//! 1. **Newest per stripe.** Of each user key, the first (newest) entry of every stripe is
//!    kept; every older entry in the same stripe is shadowed and dropped.
//! 2. **Tombstones.** A kept tombstone in the *oldest* stripe (no snapshot is older than
//!    it) deletes nothing anyone can still see except older versions of its key. Those in
//!    this compaction are shadowed by it and dropped by rule 1; if no older version can
//!    exist in a level below the output (the caller answers, per user key), the tombstone
//!    itself has nothing left to hide and is dropped too.
//!
//! This is invariant 6 of the design brief. The rules see only the entries; they never
//! drop anything a snapshot or the latest state could read.

use strata_core::{ParsedInternalKey, SequenceNumber, ValueKind};

/// What the rules decided about one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The entry is the newest of its stripe: write it out.
    Keep,
    /// A newer entry of the same user key is visible to every reader that could see
    /// this one.
    DropShadowed,
    /// A tombstone in the oldest stripe with nothing left below to delete.
    DropTombstone,
    /// A range tombstone newer than the entry, in the same stripe, covers its key.
    DropRangeDeleted,
}

impl Decision {
    /// True for [`Decision::Keep`].
    pub fn is_keep(self) -> bool {
        self == Decision::Keep
    }
}

/// Counts of what [`VersionGc`] saw and decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Entries judged.
    pub entries: u64,
    /// Entries kept.
    pub kept: u64,
    /// Entries (puts or tombstones) dropped because a newer version shadows them.
    pub versions_dropped: u64,
    /// Tombstones dropped because nothing older remained for them to delete.
    pub tombstones_dropped: u64,
    /// Entries dropped because a range tombstone deletes them for every reader.
    pub range_deleted: u64,
}

impl GcStats {
    /// Adds `other`'s counts (a subcompaction's) to these.
    pub(crate) fn add(&mut self, other: &GcStats) {
        self.entries += other.entries;
        self.kept += other.kept;
        self.versions_dropped += other.versions_dropped;
        self.tombstones_dropped += other.tombstones_dropped;
        self.range_deleted += other.range_deleted;
    }
}

/// The newest-wins and tombstone rules over a merged stream, one entry at a time.
///
/// Feed it every entry of the merged inputs in internal-key order (user key ascending,
/// newest first) through [`decide`](Self::decide). `may_exist_below(user_key)` answers
/// whether a level below the compaction's output level may hold `user_key` (LevelDB's
/// `IsBaseLevelForKey`, negated); it is called only for tombstones in the oldest stripe,
/// with user keys in ascending order, so an implementation may walk the lower levels
/// with cursors instead of searching.
pub struct VersionGc<F> {
    /// Live snapshot sequence numbers, ascending, deduplicated.
    snapshots: Vec<SequenceNumber>,
    may_exist_below: F,
    /// User key of the previous entry, valid when `has_key`.
    key: Vec<u8>,
    has_key: bool,
    /// Stripe of the last entry of `key` that was not shadowed.
    stripe: usize,
    /// Sequence of the previous entry (to check the input order in debug builds).
    last_seq: SequenceNumber,
    stats: GcStats,
}

impl<F: FnMut(&[u8]) -> bool> VersionGc<F> {
    /// Rules for the given live snapshots (in any order; duplicates allowed).
    pub fn new(snapshots: &[SequenceNumber], may_exist_below: F) -> Self {
        let mut snapshots = snapshots.to_vec();
        snapshots.sort_unstable();
        snapshots.dedup();
        VersionGc {
            snapshots,
            may_exist_below,
            key: Vec::new(),
            has_key: false,
            stripe: 0,
            last_seq: 0,
            stats: GcStats::default(),
        }
    }

    /// The stripe of sequence `seq`: the index of the oldest snapshot that sees it, or
    /// `snapshots.len()` for "latest only".
    pub fn stripe_of(&self, seq: SequenceNumber) -> usize {
        self.snapshots.partition_point(|&s| s < seq)
    }

    /// The stripe of entries no snapshot can see (written after every live snapshot):
    /// only the latest state reads them.
    pub fn latest_stripe(&self) -> usize {
        self.snapshots.len()
    }

    /// Whether a level below the output may hold `user_key` (the caller's answer).
    /// Like the rules' own questions, asked for ascending user keys.
    pub fn may_exist_below(&mut self, user_key: &[u8]) -> bool {
        (self.may_exist_below)(user_key)
    }

    /// Judges the next entry of the merged stream.
    pub fn decide(&mut self, entry: ParsedInternalKey<'_>) -> Decision {
        self.decide_covered(entry, None)
    }

    /// Judges the next entry, given `cover`: the sequence number of the oldest range
    /// tombstone newer than the entry that covers its key, if any. The entry is
    /// dropped when that tombstone is in its stripe (every reader that sees the entry
    /// sees the tombstone too), like a shadowed version; older tombstones in other
    /// stripes cannot be in its stripe either.
    pub fn decide_covered(
        &mut self,
        entry: ParsedInternalKey<'_>,
        cover: Option<SequenceNumber>,
    ) -> Decision {
        self.stats.entries += 1;
        let stripe = self.stripe_of(entry.seq);
        if self.has_key && self.key == entry.user_key {
            debug_assert!(entry.seq <= self.last_seq, "versions out of order");
            self.last_seq = entry.seq;
            if stripe == self.stripe {
                self.stats.versions_dropped += 1;
                return Decision::DropShadowed;
            }
        } else {
            self.key.clear();
            self.key.extend_from_slice(entry.user_key);
            self.has_key = true;
            self.last_seq = entry.seq;
        }
        // Older entries of this key in the same stripe are shadowed by this one, whether
        // or not it is itself written out (one dropped by a range tombstone: that
        // covers them too).
        self.stripe = stripe;
        if cover.is_some_and(|t| t > entry.seq && self.stripe_of(t) == stripe) {
            self.stats.range_deleted += 1;
            return Decision::DropRangeDeleted;
        }
        if entry.kind == ValueKind::Delete && stripe == 0 && !(self.may_exist_below)(entry.user_key)
        {
            self.stats.tombstones_dropped += 1;
            return Decision::DropTombstone;
        }
        self.stats.kept += 1;
        Decision::Keep
    }

    /// What was seen and decided so far.
    pub fn stats(&self) -> GcStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use proptest::prelude::*;
    use strata_core::InternalKey;

    fn run(
        entries: &[(&str, u64, ValueKind)],
        snapshots: &[u64],
        below: &[&str],
    ) -> (Vec<Decision>, GcStats) {
        let mut gc = VersionGc::new(snapshots, |k: &[u8]| {
            below.iter().any(|b| b.as_bytes() == k)
        });
        let d = entries
            .iter()
            .map(|(k, s, kind)| {
                let ik = InternalKey::new(k.as_bytes(), *s, *kind);
                gc.decide(ik.parsed())
            })
            .collect();
        (d, gc.stats())
    }

    use Decision::{DropShadowed as Sh, DropTombstone as Tb, Keep as K};
    use ValueKind::{Delete as D, Put as P};

    #[test]
    fn without_snapshots_only_the_newest_version_survives() {
        let (d, st) = run(
            &[("a", 9, P), ("a", 5, P), ("a", 1, D), ("b", 3, P)],
            &[],
            &[],
        );
        assert_eq!(d, [K, Sh, Sh, K]);
        assert_eq!(st.versions_dropped, 2);
        assert_eq!(st.kept, 2);
    }

    #[test]
    fn each_snapshot_keeps_the_newest_version_it_sees() {
        // Snapshots at 4 and 7: stripes (..=4], (4..=7], (7..).
        let entries = [
            ("a", 9, P),
            ("a", 8, P),
            ("a", 7, P),
            ("a", 5, P),
            ("a", 4, P),
            ("a", 2, P),
        ];
        let (d, _) = run(&entries, &[7, 4], &[]);
        assert_eq!(d, [K, Sh, K, Sh, K, Sh]);
    }

    #[test]
    fn tombstone_in_oldest_stripe_dropped_only_when_nothing_below() {
        let entries = [("a", 5, D), ("a", 2, P)];
        assert_eq!(run(&entries, &[], &[]).0, [Tb, Sh]);
        assert_eq!(run(&entries, &[], &["a"]).0, [K, Sh]);
        // A snapshot older than the tombstone still sees the put, so both stay.
        assert_eq!(run(&entries, &[3], &[]).0, [K, K]);
        // A snapshot newer than the tombstone: the tombstone is in the oldest stripe.
        let (d, st) = run(&entries, &[6], &[]);
        assert_eq!(d, [Tb, Sh]);
        assert_eq!((st.tombstones_dropped, st.versions_dropped), (1, 1));
    }

    #[test]
    fn tombstone_newer_than_a_snapshot_is_kept_even_at_the_bottom() {
        let (d, _) = run(&[("a", 9, D), ("a", 3, P)], &[5], &[]);
        assert_eq!(d, [K, K]);
    }

    #[test]
    fn duplicate_internal_keys_keep_the_first() {
        let (d, _) = run(&[("a", 3, P), ("a", 3, P), ("b", 1, P)], &[], &[]);
        assert_eq!(d, [K, Sh, K]);
    }

    /// One user key's history: (seq, is_put), newest first, distinct sequences.
    fn history() -> impl Strategy<Value = Vec<(u64, bool)>> {
        proptest::collection::btree_map(1..40u64, any::<bool>(), 1..10)
            .prop_map(|m| m.into_iter().rev().collect())
    }

    /// What a read at `snap` returns from a history (newest first): Some(Some(seq)) for
    /// a put, Some(None) for a tombstone, None for nothing.
    fn read(h: &[(u64, bool)], snap: u64) -> Option<Option<u64>> {
        h.iter()
            .find(|(s, _)| *s <= snap)
            .map(|&(s, put)| put.then_some(s))
    }

    proptest! {
        /// For every snapshot and for "latest", the kept entries read exactly as the full
        /// history; and nothing removable is kept: without snapshots at the bottom, at
        /// most one put per key and no tombstone remain.
        #[test]
        fn kept_entries_read_like_the_history(
            keys in proptest::collection::vec(history(), 1..6),
            snapshots in proptest::collection::vec(0..45u64, 0..5),
            below_mask in any::<u8>(),
        ) {
            let mut kept: BTreeMap<usize, Vec<(u64, bool)>> = BTreeMap::new();
            let names: Vec<Vec<u8>> = (0..keys.len()).map(|i| vec![b'k', i as u8]).collect();
            let mut gc = VersionGc::new(&snapshots, |k: &[u8]| below_mask & (1 << k[1]) != 0);
            for (i, h) in keys.iter().enumerate() {
                for &(seq, put) in h {
                    let kind = if put { P } else { D };
                    let ik = InternalKey::new(&names[i], seq, kind);
                    if gc.decide(ik.parsed()).is_keep() {
                        kept.entry(i).or_default().push((seq, put));
                    }
                }
            }
            let st = gc.stats();
            prop_assert_eq!(st.entries, keys.iter().map(|h| h.len() as u64).sum::<u64>());
            prop_assert_eq!(st.entries, st.kept + st.versions_dropped + st.tombstones_dropped);
            for (i, h) in keys.iter().enumerate() {
                let k = kept.get(&i).cloned().unwrap_or_default();
                let below = below_mask & (1 << i) != 0;
                for &snap in snapshots.iter().chain([&u64::MAX]) {
                    let want = read(h, snap);
                    let got = read(&k, snap);
                    // A dropped tombstone reads as "nothing" here, which equals "deleted"
                    // only when nothing exists below.
                    if below {
                        prop_assert_eq!(got, want, "key {} snap {}", i, snap);
                    } else {
                        prop_assert_eq!(got.flatten(), want.flatten(), "key {} snap {}", i, snap);
                    }
                }
                // Minimality: at most one entry per stripe.
                let mut stripes: Vec<usize> = k.iter()
                    .map(|(s, _)| snapshots.iter().filter(|&&x| x < *s).count())
                    .collect();
                let n = stripes.len();
                stripes.dedup();
                prop_assert_eq!(stripes.len(), n);
                if snapshots.is_empty() && !below {
                    prop_assert!(k.iter().all(|&(_, put)| put) && k.len() <= 1);
                }
            }
        }
    }
}
