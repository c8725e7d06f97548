//! The table's Bloom filter over user keys.
//!
//! Layout of the filter block's contents (see `docs/format/sstable.md`):
//!
//! ```text
//! bits[m/8 bytes] | probes k u8 | kind u8 (1 = xxh3-64 double-hashing Bloom)
//! ```
//!
//! Bit `i` is bit `i % 8` of byte `i / 8`. A key's probes are
//! `h_j = h + j·δ (mod 2^64)` for `j = 0..k`, with `h = xxh3_64(user_key)` and
//! `δ = rotl(h, 32) | 1`; probe `j` tests bit `⌊h_j · m / 2^64⌋` (a multiply-shift
//! range reduction, cheaper than a modulo). The number of probes is
//! `k = round(bits_per_key · ln 2)`, clamped to `1..=30`, which minimises the
//! false-positive rate `(1 − e^{−k·n/m})^k` for `m/n = bits_per_key`.
//!
//! An empty filter (no bits, or `k = 0`) and a filter of an unknown kind both answer
//! "may contain": a filter can make a lookup cheaper, never wrong.

use xxhash_rust::xxh3::xxh3_64;

/// The filter kind byte this build writes and understands.
pub(crate) const BLOOM_KIND_XXH3: u8 = 1;

/// Smallest bit array written for a non-empty key set: tiny tables would otherwise get
/// filters whose false-positive rate is far from the configured one.
const MIN_BITS: u64 = 64;

/// The number of probes for `bits_per_key`: `round(bits_per_key · ln 2)` in `1..=30`.
pub fn probes_for_bits_per_key(bits_per_key: u32) -> u32 {
    let k = (f64::from(bits_per_key) * std::f64::consts::LN_2).round() as u32;
    k.clamp(1, 30)
}

/// The theoretical false-positive rate of a Bloom filter of `bits` bits holding `keys`
/// keys with `probes` probes: `(1 − e^{−k·n/m})^k`.
pub fn theoretical_fp_rate(bits: u64, keys: u64, probes: u32) -> f64 {
    if bits == 0 {
        return 1.0;
    }
    let k = f64::from(probes);
    (1.0 - (-k * keys as f64 / bits as f64).exp()).powf(k)
}

/// The hash a filter stores per key.
#[inline]
pub(crate) fn key_hash(user_key: &[u8]) -> u64 {
    xxh3_64(user_key)
}

/// Collects key hashes while a table is built and lays out the filter at the end, when
/// the number of keys (and so the size of the bit array) is known.
#[derive(Debug)]
pub(crate) struct BloomBuilder {
    bits_per_key: u32,
    hashes: Vec<u64>,
}

impl BloomBuilder {
    /// `bits_per_key = 0` builds an empty filter, which answers "may contain" always.
    pub(crate) fn new(bits_per_key: u32) -> Self {
        BloomBuilder {
            bits_per_key,
            hashes: Vec::new(),
        }
    }

    /// Adds a user key. Callers add each distinct user key once (duplicates only cost
    /// accuracy: the filter is sized by the number of calls).
    pub(crate) fn add_key(&mut self, user_key: &[u8]) {
        if self.bits_per_key > 0 {
            self.hashes.push(key_hash(user_key));
        }
    }

    /// Bytes the finished filter will take.
    pub(crate) fn estimated_len(&self) -> usize {
        self.num_bits().div_ceil(8) as usize + 2
    }

    fn num_bits(&self) -> u64 {
        if self.bits_per_key == 0 || self.hashes.is_empty() {
            return 0;
        }
        (self.hashes.len() as u64 * u64::from(self.bits_per_key))
            .max(MIN_BITS)
            .next_multiple_of(8)
    }

    /// The filter block's contents.
    pub(crate) fn finish(&self) -> Vec<u8> {
        let num_bits = self.num_bits();
        let probes = if num_bits == 0 {
            0
        } else {
            probes_for_bits_per_key(self.bits_per_key)
        };
        let mut out = vec![0u8; (num_bits / 8) as usize];
        for &h in &self.hashes {
            for bit in probe_positions(h, num_bits, probes) {
                if let Some(byte) = out.get_mut((bit / 8) as usize) {
                    *byte |= 1 << (bit % 8);
                }
            }
        }
        out.push(probes as u8);
        out.push(BLOOM_KIND_XXH3);
        out
    }
}

#[inline]
fn probe_positions(h: u64, num_bits: u64, probes: u32) -> impl Iterator<Item = u64> {
    let delta = h.rotate_left(32) | 1;
    (0..u64::from(probes)).map(move |j| {
        let x = h.wrapping_add(j.wrapping_mul(delta));
        ((u128::from(x) * u128::from(num_bits)) >> 64) as u64
    })
}

/// A loaded filter, ready to answer.
#[derive(Clone, Debug)]
pub(crate) struct BloomFilter {
    bits: bytes::Bytes,
    num_bits: u64,
    probes: u32,
}

/// Why a filter block cannot be used (the table then answers "may contain").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FilterDecodeError {
    /// The filter was written empty (no keys, or bits per key 0).
    Empty,
    /// A kind this build does not know.
    UnknownKind(u8),
    /// The block is too short to hold the two trailing bytes.
    TooShort,
}

impl BloomFilter {
    /// Parses a filter block's contents.
    pub(crate) fn decode(contents: bytes::Bytes) -> Result<Self, FilterDecodeError> {
        let n = contents.len();
        let (Some(&probes), Some(&kind)) = (
            contents.get(n.wrapping_sub(2)),
            contents.get(n.wrapping_sub(1)),
        ) else {
            return Err(FilterDecodeError::TooShort);
        };
        if kind != BLOOM_KIND_XXH3 {
            return Err(FilterDecodeError::UnknownKind(kind));
        }
        let bits = contents.slice(..n - 2);
        if bits.is_empty() || probes == 0 {
            return Err(FilterDecodeError::Empty);
        }
        Ok(BloomFilter {
            num_bits: bits.len() as u64 * 8,
            bits,
            probes: u32::from(probes),
        })
    }

    /// False only if `user_key` was certainly never added.
    #[inline]
    pub(crate) fn may_contain(&self, user_key: &[u8]) -> bool {
        self.may_contain_hash(key_hash(user_key))
    }

    #[inline]
    pub(crate) fn may_contain_hash(&self, h: u64) -> bool {
        probe_positions(h, self.num_bits, self.probes).all(|bit| {
            self.bits
                .get((bit / 8) as usize)
                .is_none_or(|byte| byte & (1 << (bit % 8)) != 0)
        })
    }

    pub(crate) fn num_bits(&self) -> u64 {
        self.num_bits
    }

    pub(crate) fn probes(&self) -> u32 {
        self.probes
    }

    pub(crate) fn bits_set(&self) -> u64 {
        self.bits.iter().map(|b| u64::from(b.count_ones())).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn build(keys: &[Vec<u8>], bits_per_key: u32) -> Vec<u8> {
        let mut b = BloomBuilder::new(bits_per_key);
        for k in keys {
            b.add_key(k);
        }
        b.finish()
    }

    #[test]
    fn probes_follow_bits_per_key() {
        assert_eq!(probes_for_bits_per_key(10), 7);
        assert_eq!(probes_for_bits_per_key(1), 1);
        assert_eq!(probes_for_bits_per_key(5), 3);
        assert_eq!(probes_for_bits_per_key(16), 11);
        assert_eq!(probes_for_bits_per_key(1000), 30);
    }

    proptest! {
        /// No false negatives, whatever the keys and the density.
        #[test]
        fn every_added_key_may_be_contained(keys in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..300),
                                            bits_per_key in 1u32..20) {
            let f = BloomFilter::decode(build(&keys, bits_per_key).into()).unwrap();
            for k in &keys {
                prop_assert!(f.may_contain(k));
            }
        }
    }

    /// The measured false-positive rate on 100k absent keys is within 25 % of
    /// `(1 − e^{−kn/m})^k` for several densities (fixed keys, so deterministic).
    #[test]
    fn false_positive_rate_matches_theory() {
        let n = 100_000u64;
        let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("key{i:012}").into_bytes()).collect();
        for bits_per_key in [6u32, 10, 14] {
            let f = BloomFilter::decode(build(&keys, bits_per_key).into()).unwrap();
            let absent = (0..n)
                .filter(|i| f.may_contain(format!("absent{i:09}").as_bytes()))
                .count();
            let measured = absent as f64 / n as f64;
            let theory = theoretical_fp_rate(f.num_bits(), n, f.probes());
            assert!(
                (measured - theory).abs() <= 0.25 * theory,
                "bits/key {bits_per_key}: measured {measured:.5}, theory {theory:.5}"
            );
        }
    }

    #[test]
    fn empty_and_unknown_filters_are_not_used() {
        assert_eq!(
            BloomFilter::decode(build(&[], 10).into()).unwrap_err(),
            FilterDecodeError::Empty
        );
        assert_eq!(
            BloomFilter::decode(build(&[b"a".to_vec()], 0).into()).unwrap_err(),
            FilterDecodeError::Empty
        );
        assert_eq!(
            BloomFilter::decode(bytes::Bytes::from_static(&[0xff, 3, 9])).unwrap_err(),
            FilterDecodeError::UnknownKind(9)
        );
        assert_eq!(
            BloomFilter::decode(bytes::Bytes::from_static(&[1])).unwrap_err(),
            FilterDecodeError::TooShort
        );
    }

    #[test]
    fn filter_is_sized_by_bits_per_key() {
        let keys: Vec<Vec<u8>> = (0..1000u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let f = BloomFilter::decode(build(&keys, 10).into()).unwrap();
        assert_eq!(f.num_bits(), 10_000);
        assert_eq!(f.probes(), 7);
        // About half the bits are set at the optimal k.
        let fill = f.bits_set() as f64 / f.num_bits() as f64;
        assert!((0.4..0.6).contains(&fill), "fill {fill}");
    }
}
