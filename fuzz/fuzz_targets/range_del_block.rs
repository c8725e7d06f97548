//! The range-deletion block decoder (`strata_sstable::decode_range_del_block`) on
//! arbitrary bytes, as a table's reader sees them behind a valid checksum: never
//! panics, and whatever decodes is a valid fragmented list (fragments sorted, disjoint
//! and non-empty, each fragment's sequence numbers strictly newest first) that answers
//! every question ("which tombstone hides key k at snapshot s") exactly as the plain
//! tombstones it stands for do, before and after fragmenting them again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_core::range_del::successor;
use strata_core::{FragmentedTombstones, MAX_SEQUENCE, RangeTombstone};

/// Probes and snapshots per input, at most: the answers are checked by brute force.
const MAX_PROBES: usize = 96;
const MAX_SNAPSHOTS: usize = 12;

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = strata_sstable::decode_range_del_block(data) else {
        return;
    };
    let fragments = decoded.fragments();
    for f in fragments {
        assert!(f.start() < f.end(), "an empty fragment decoded");
        assert!(!f.seqs().is_empty(), "a fragment without sequence numbers");
        assert!(
            f.seqs().windows(2).all(|w| w[0] > w[1]),
            "sequence numbers not strictly newest first: {:?}",
            f.seqs()
        );
        assert!(f.seqs().iter().all(|&s| s <= MAX_SEQUENCE));
    }
    assert!(
        fragments.windows(2).all(|w| w[0].end() <= w[1].start()),
        "fragments overlap or are out of order"
    );
    let stored: Vec<RangeTombstone> = decoded.tombstones().collect();
    assert_eq!(stored.len(), decoded.len());

    // Fragmenting the stored tombstones again changes no answer (it may merge adjacent
    // fragments a writer would have merged, so the lists need not be equal).
    let again = FragmentedTombstones::new(stored.iter().cloned());
    assert!(again.len() <= decoded.len());
    // Every boundary, the key just after it, and the empty key.
    let mut probes: Vec<Vec<u8>> = vec![Vec::new()];
    for f in fragments.iter().take(MAX_PROBES / 4) {
        for k in [f.start(), f.end()] {
            probes.push(k.to_vec());
            probes.push(successor(k));
        }
    }
    let mut snapshots: Vec<u64> = vec![0, MAX_SEQUENCE];
    for f in fragments.iter().take(MAX_SNAPSHOTS / 2) {
        if let Some(&s) = f.seqs().first() {
            snapshots.push(s);
            snapshots.push(s.saturating_sub(1));
        }
    }
    for k in &probes {
        for &s in &snapshots {
            let naive = stored
                .iter()
                .filter(|t| t.contains(k) && t.seq <= s)
                .map(|t| t.seq)
                .max();
            assert_eq!(decoded.covering_seq(k, s), naive, "decoded, key {k:?} at {s}");
            assert_eq!(again.covering_seq(k, s), naive, "re-fragmented, key {k:?} at {s}");
        }
    }
    // The re-fragmented list is canonical: fragmenting it once more gives it back, and
    // it round-trips through the stored order's checks.
    assert_eq!(FragmentedTombstones::new(again.tombstones()), again);
    let entries = again
        .entries()
        .map(|(s, e, q)| (s.to_vec(), e.to_vec(), q));
    assert_eq!(
        FragmentedTombstones::from_sorted_entries(entries).as_ref(),
        Ok(&again)
    );
});
