//! Bloom filter bits per key from the live shape of the tree, under a memory budget
//! (`DbBuilder::bloom_filter_budget`): Monkey (Dayan, Athanassoulis, Idreos, SIGMOD 2017).
//!
//! A lookup of a key that is absent asks every run that may hold it — each L0 file, then
//! one file per deeper level — and each filter's false positive costs one block read.
//! With `m_r` filter bits for the `n_r` keys of run `r`, its false-positive rate is
//! about `p_r = e^(-(m_r / n_r) ln²2)`. Minimising the expected wasted reads `Σ p_r`
//! under a fixed total `Σ m_r = M` (Lagrange) gives `p_r ∝ n_r`: every run gets the same
//! bits per key *minus* `log(n_r)/ln²2`, so a level ten times larger than another gets
//! `ln 10 / ln²2 ≈ 4.8` fewer bits per key. Small, shallow runs (L0 files, upper levels)
//! get more bits, the big bottom level fewer: the same memory, fewer wasted reads,
//! while a uniform 10 bits per key gives every run the same rate.

/// Fewest and most bits per key a filter is given: at least one bit keeps a filter
/// (a run with none would be read on every lookup), and past 30 bits the rate is below
/// one in 10^9 — nothing left to save.
const MIN_BITS: f64 = 1.0;
const MAX_BITS: f64 = 30.0;

/// Bits per key for a run of `run_entries` keys, when the tree's runs (every L0 file,
/// each deeper level as a whole, the new run included) hold `runs` entries each and the
/// filters may use `budget_bits_per_key` bits per key on average over all of them.
pub(crate) fn bits_per_key(runs: &[u64], run_entries: u64, budget_bits_per_key: f64) -> u32 {
    let n: Vec<f64> = runs.iter().filter(|&&e| e > 0).map(|&e| e as f64).collect();
    let total: f64 = n.iter().sum();
    if total <= 0.0 || run_entries == 0 {
        return budget_bits_per_key.round().clamp(MIN_BITS, MAX_BITS) as u32;
    }
    let ln2_sq = std::f64::consts::LN_2 * std::f64::consts::LN_2;
    // Σ n_r ln(1/p_r) = M ln²2 with ln(1/p_r) = c - ln n_r gives c:
    let c =
        (budget_bits_per_key * total * ln2_sq + n.iter().map(|x| x * x.ln()).sum::<f64>()) / total;
    let bits = (c - (run_entries as f64).ln()) / ln2_sq;
    bits.round().clamp(MIN_BITS, MAX_BITS) as u32
}

/// The runs a lookup asks, by their entry counts: each L0 file, then each deeper
/// level's total (`levels[i]` lists level i's files' entry counts).
pub(crate) fn runs(levels: &[Vec<u64>]) -> Vec<u64> {
    let mut runs: Vec<u64> = levels.first().cloned().unwrap_or_default();
    runs.extend(levels.iter().skip(1).map(|files| files.iter().sum::<u64>()));
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected false positives of a lookup for an absent key, with `bits[i]` bits per
    /// key on run `i`.
    fn wasted_reads(bits: &[u32]) -> f64 {
        let ln2_sq = std::f64::consts::LN_2 * std::f64::consts::LN_2;
        bits.iter().map(|&b| (-(f64::from(b)) * ln2_sq).exp()).sum()
    }

    #[test]
    fn bigger_runs_get_fewer_bits_and_the_budget_is_kept() {
        // A 10M-key tree: three L0 files of 400k, L5 of 1M, L6 of 8.6M.
        let runs = [400_000, 400_000, 400_000, 1_000_000, 8_600_000];
        let bits: Vec<u32> = runs.iter().map(|&r| bits_per_key(&runs, r, 10.0)).collect();
        assert!(bits.windows(2).all(|w| w[0] >= w[1]), "{bits:?}");
        assert!(bits[0] >= 13 && bits[4] <= 10, "{bits:?}");
        let total: u64 = runs.iter().sum();
        let used: u64 = runs.iter().zip(&bits).map(|(n, b)| n * u64::from(*b)).sum();
        let average = used as f64 / total as f64;
        assert!(
            (average - 10.0).abs() < 0.6,
            "average {average} bits per key"
        );
        // Fewer wasted reads than 10 bits everywhere, for the same memory.
        let uniform = wasted_reads(&[10; 5]);
        let tuned = wasted_reads(&bits);
        assert!(tuned < uniform * 0.8, "{tuned} vs {uniform}");
    }

    #[test]
    fn one_run_gets_the_budget_and_extremes_are_clamped() {
        assert_eq!(bits_per_key(&[1_000_000], 1_000_000, 10.0), 10);
        assert_eq!(bits_per_key(&[], 5, 8.0), 8);
        // A tiny run beside a huge one would get more than 30 bits.
        assert_eq!(bits_per_key(&[10, 100_000_000], 10, 10.0), 30);
        assert_eq!(bits_per_key(&[10, 100_000_000], 100_000_000, 1.0), 1);
    }

    #[test]
    fn runs_are_each_l0_file_then_each_level() {
        let levels = vec![
            vec![5, 7],
            vec![],
            vec![10, 20],
            vec![],
            vec![],
            vec![],
            vec![100],
        ];
        assert_eq!(runs(&levels), [5, 7, 0, 30, 0, 0, 0, 100]);
    }
}
