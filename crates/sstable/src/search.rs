//! Lower-bound search over a table index's sorted key prefixes, guided by
//! interpolation.
//!
//! A point lookup in a large table searches an index of thousands of separators (a 64 MiB
//! table of 4 KiB blocks has 16k). A binary search halves the range per probe, and in a
//! cold index each probe is a cache miss: at 50M keys `Index::find` was 42 % of a point
//! read (docs/benchmarks.md). Keys whose first bytes are spread evenly (hashes, random
//! ids, counters) let the position be estimated from the value instead, so a few probes
//! near the estimate bracket the answer. Skewed keys only make the estimates poor, never
//! the answer wrong: after a bounded number of rounds the search finishes as a binary
//! search of what is left.
//!
//! The first guess comes from the caller ([`lower_bound_from`]), which interpolates
//! between ends it keeps beside the values: the index leaves out its last separator,
//! which lies far past the table's keys (`Index::lower_bound` in `table.rs`). When the
//! guess is good the search touches one or two cache lines.

/// Ranges at most this long are finished by binary search: a few cache lines of `u64`s.
const FINISH_BY_BISECTION: usize = 16;

/// Interpolation rounds before the rest is bisected, so that keys that defeat the
/// estimate (clustered, or a few far outliers) cost at most this many extra probes.
const MAX_ROUNDS: usize = 4;

/// Values probed on each side of the first guess before the search widens: a cache
/// line of `u64`s, where the answer lies when the guess is good (keys spread evenly over
/// the table), so that such a search touches one or two lines.
pub(crate) const NEAR: usize = 8;

/// Where `target` would sit among `len` values spread evenly from `first` to `last`:
/// an index in `0..len`, or 0 when `len` is 0. The first guess of [`lower_bound_from`];
/// a caller that keeps `first` and `last` beside the values gets it without touching
/// them, and can start loading that part of the values ahead of the search.
pub(crate) fn estimate(first: u64, last: u64, len: usize, target: u64) -> usize {
    let Some(span) = len.checked_sub(1) else {
        return 0;
    };
    if target <= first {
        return 0;
    }
    if target >= last {
        return span;
    }
    // first < target < last. In floating point (a u128 division costs several times
    // more); the estimate only steers probes, and a float-to-int cast saturates.
    let fraction = (target - first) as f64 / (last - first) as f64;
    ((fraction * span as f64) as usize).min(span)
}

/// The first index of `sorted` (non-decreasing) whose value is `>= target`, or
/// `sorted.len()`: the same answer as `sorted.partition_point(|&v| v < target)`.
#[cfg(test)]
pub(crate) fn lower_bound(sorted: &[u64], target: u64) -> usize {
    let (Some(&first), Some(&last)) = (sorted.first(), sorted.last()) else {
        return 0;
    };
    lower_bound_from(sorted, target, estimate(first, last, sorted.len(), target))
}

/// [`lower_bound`], starting from the position `guess` (any value is correct; a good
/// one is fast). The guess and a line of values beyond it on the side the answer lies
/// are probed first; if the answer is not between them, each round estimates the
/// position again from the values at the ends of what is left.
pub(crate) fn lower_bound_from(sorted: &[u64], target: u64, guess: usize) -> usize {
    // Invariant: every value before `lo` is < target, every value from `hi` on is >=
    // target, so the answer lies in lo..=hi.
    let (mut lo, mut hi) = (0usize, sorted.len());
    if let Some(&at_guess) = sorted.get(guess) {
        let beyond = if at_guess < target {
            lo = guess + 1;
            Some(guess + NEAR)
        } else {
            hi = guess;
            guess.checked_sub(NEAR)
        };
        if let Some((p, &v)) = beyond.and_then(|p| Some((p, sorted.get(p)?))) {
            if v < target {
                lo = p + 1;
            } else {
                hi = p;
            }
        }
    }
    for _ in 0..MAX_ROUNDS {
        if hi - lo <= FINISH_BY_BISECTION {
            break;
        }
        let (Some(&first), Some(&last)) = (sorted.get(lo), sorted.get(hi - 1)) else {
            break;
        };
        if target <= first {
            return lo;
        }
        if target > last {
            return hi;
        }
        let span = hi - 1 - lo;
        let estimate = lo + estimate(first, last, span + 1, target);
        // The estimate's error grows like the square root of the range for evenly spread
        // keys: probe that far on the side the answer lies, to move both bounds.
        let guard = (hi - lo).isqrt().max(FINISH_BY_BISECTION / 2);
        if sorted.get(estimate).is_some_and(|&v| v < target) {
            lo = estimate + 1;
            let probe = (estimate + guard).min(hi - 1);
            if probe >= lo {
                if sorted.get(probe).is_some_and(|&v| v < target) {
                    lo = probe + 1;
                } else {
                    hi = probe;
                }
            }
        } else {
            hi = estimate;
            let probe = estimate.saturating_sub(guard).max(lo);
            if probe < hi {
                if sorted.get(probe).is_some_and(|&v| v < target) {
                    lo = probe + 1;
                } else {
                    hi = probe;
                }
            }
        }
    }
    lo + sorted
        .get(lo..hi)
        .unwrap_or_default()
        .partition_point(|&v| v < target)
}

/// The end of the run of values equal to `target` that starts at `start` (where
/// `sorted[start..]` holds no value below `target`): the first index from `start` whose
/// value is greater, or `sorted.len()`. Gallops from `start`, so the usual empty or
/// short run costs a probe or two next to the one the lower bound made, not a binary
/// search of the whole rest.
pub(crate) fn run_end(sorted: &[u64], start: usize, target: u64) -> usize {
    let equal = |i: usize| sorted.get(i).is_some_and(|&v| v == target);
    if !equal(start) {
        return start;
    }
    // `last` is equal; find a step past the run, then bisect the gap.
    let (mut last, mut step) = (start, 1usize);
    while equal(last.saturating_add(step)) {
        last += step;
        step = step.saturating_mul(2);
    }
    let gap_end = last.saturating_add(step).min(sorted.len());
    last + 1
        + sorted
            .get(last + 1..gap_end)
            .unwrap_or_default()
            .partition_point(|&v| v == target)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{NEAR, lower_bound, lower_bound_from, run_end};

    fn check(sorted: &[u64], target: u64) {
        let lo = lower_bound(sorted, target);
        assert_eq!(
            lo,
            sorted.partition_point(|&v| v < target),
            "target {target} in {} values",
            sorted.len()
        );
        for guess in [
            0,
            lo.saturating_sub(NEAR + 1),
            lo.saturating_sub(1),
            lo + 1,
            lo + NEAR + 1,
            usize::MAX,
        ] {
            assert_eq!(lower_bound_from(sorted, target, guess), lo, "guess {guess}");
        }
        assert_eq!(
            run_end(sorted, lo, target),
            sorted.partition_point(|&v| v <= target),
            "run of {target}"
        );
    }

    #[test]
    fn edges() {
        check(&[], 5);
        check(&[5], 4);
        check(&[5], 5);
        check(&[5], 6);
        let all_equal = vec![7u64; 1000];
        for t in [0, 6, 7, 8, u64::MAX] {
            check(&all_equal, t);
        }
        let extremes: Vec<u64> = (0..1000)
            .map(|i| if i < 500 { 0 } else { u64::MAX })
            .collect();
        for t in [0, 1, u64::MAX - 1, u64::MAX] {
            check(&extremes, t);
        }
    }

    #[test]
    fn evenly_spread_keys_and_every_gap() {
        let sorted: Vec<u64> = (0..20_000u64).map(|i| i * 0x0000_d1b5_4a32_d192).collect();
        for (i, &v) in sorted.iter().enumerate().step_by(7) {
            check(&sorted, v);
            check(&sorted, v.wrapping_add(1));
            check(&sorted, v.wrapping_sub(1));
            assert_eq!(lower_bound(&sorted, v), i);
        }
    }

    /// Any sorted values, any target: the same answer as a plain binary search.
    fn sorted_values() -> impl Strategy<Value = Vec<u64>> {
        prop_oneof![
            // Spread over the whole range.
            proptest::collection::vec(any::<u64>(), 0..3000),
            // Clustered: few distinct values, long runs of duplicates.
            proptest::collection::vec(0u64..8, 0..3000),
            // Mostly small, with a few huge outliers that ruin the estimate.
            proptest::collection::vec(
                prop_oneof![20 => 0u64..1_000_000, 1 => any::<u64>()],
                0..3000
            ),
            // Exponentially spread.
            proptest::collection::vec((0u32..64, any::<u64>()).prop_map(|(s, v)| v >> s), 0..3000),
        ]
        .prop_map(|mut v| {
            v.sort_unstable();
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn matches_binary_search(sorted in sorted_values(), targets in proptest::collection::vec(any::<u64>(), 1..20), picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..20)) {
            let check = |t: u64| -> Result<(), TestCaseError> {
                let lo = lower_bound(&sorted, t);
                prop_assert_eq!(lo, sorted.partition_point(|&v| v < t));
                // Any first guess, good or bad, gives the same answer.
                for guess in [0, lo.saturating_sub(NEAR + 1), lo, lo + NEAR, sorted.len() / 3, sorted.len(), usize::MAX] {
                    prop_assert_eq!(lower_bound_from(&sorted, t, guess), lo, "guess {}", guess);
                }
                prop_assert_eq!(run_end(&sorted, lo, t), sorted.partition_point(|&v| v <= t));
                Ok(())
            };
            for t in targets {
                check(t)?;
            }
            if !sorted.is_empty() {
                for p in picks {
                    let v = sorted[p.index(sorted.len())];
                    for t in [v, v.saturating_sub(1), v.saturating_add(1)] {
                        check(t)?;
                    }
                }
            }
        }
    }
}
