//! The range-deletion block: a table's range tombstones, fragmented.
//!
//! Stored in the data-block encoding (prefix-compressed keys, restart array), one entry
//! per `(fragment, sequence)`: key = the internal key `(start, seq, kind 0)`, value =
//! the fragment's exclusive end. Entries come in internal-key order — start ascending,
//! newest first — and fragments never partly overlap (see `strata_core::range_del`).
//! The block is checksummed and framed like every other block; its handle is in the
//! version-3 footer.

use bytes::Bytes;
use strata_core::key::encode_internal_key;
use strata_core::range_del::FragmentError;
use strata_core::{FragmentedTombstones, ParsedInternalKey, ValueKind};

use crate::block::{Block, BlockBuilder, BlockError, BlockIter};

/// Restart interval of the block: fragments are few, and seeks never run on it (it is
/// decoded whole when the table opens).
const RESTART_INTERVAL: usize = 16;

/// Encodes `tombstones` as a range-deletion block's contents.
pub(crate) fn encode_block(tombstones: &FragmentedTombstones) -> Vec<u8> {
    let mut block = BlockBuilder::new(RESTART_INTERVAL);
    let mut key = Vec::new();
    for (start, end, seq) in tombstones.entries() {
        key.clear();
        encode_internal_key(&mut key, start, seq, ValueKind::Delete);
        block.add(&key, end);
    }
    block.finish().to_vec()
}

/// Why a range-deletion block's contents were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeDelBlockError {
    /// The block encoding is damaged (byte position, reason).
    Block(usize, &'static str),
    /// An entry's key is not an internal key of kind 0.
    BadKey(usize),
    /// The entries are not a valid fragmented list.
    Fragments(FragmentError),
}

impl std::fmt::Display for RangeDelBlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RangeDelBlockError::Block(pos, reason) => {
                write!(f, "range-deletion block: {reason} (byte {pos})")
            }
            RangeDelBlockError::BadKey(i) => {
                write!(f, "range-deletion block: entry {i} has a malformed key")
            }
            RangeDelBlockError::Fragments(e) => write!(f, "range-deletion block: {e}"),
        }
    }
}

impl From<BlockError> for RangeDelBlockError {
    fn from(e: BlockError) -> Self {
        RangeDelBlockError::Block(e.pos, e.reason)
    }
}

/// Decodes a range-deletion block's contents (after its checksum was verified),
/// checking every entry: keys parse, fragments are sorted and disjoint, sequence
/// numbers newest first. Never panics, whatever the bytes.
pub fn decode_range_del_block(contents: &[u8]) -> Result<FragmentedTombstones, RangeDelBlockError> {
    let mut it = BlockIter::new(Block::new(Bytes::copy_from_slice(contents))?);
    it.seek_to_first()?;
    let mut entries = Vec::new();
    while it.valid() {
        let parsed = ParsedInternalKey::parse(it.key())
            .filter(|p| p.kind == ValueKind::Delete)
            .ok_or(RangeDelBlockError::BadKey(entries.len()))?;
        entries.push((parsed.user_key.to_vec(), it.value().to_vec(), parsed.seq));
        it.next()?;
    }
    FragmentedTombstones::from_sorted_entries(entries).map_err(RangeDelBlockError::Fragments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::RangeTombstone;

    #[test]
    fn blocks_round_trip_and_damage_is_an_error_not_a_panic() {
        let t = |s: &str, e: &str, seq| RangeTombstone {
            start: s.into(),
            end: e.into(),
            seq,
        };
        let f = FragmentedTombstones::new([t("a", "m", 4), t("c", "z", 9), t("q", "r", 2)]);
        let block = encode_block(&f);
        assert_eq!(decode_range_del_block(&block), Ok(f.clone()));
        assert_eq!(
            decode_range_del_block(&encode_block(&FragmentedTombstones::empty())),
            Ok(FragmentedTombstones::empty())
        );
        for i in 0..block.len() {
            for bit in 0..8 {
                let mut bad = block.clone();
                bad[i] ^= 1 << bit;
                // Either refused or decoded to a valid (different) list; never a panic.
                if let Ok(other) = decode_range_del_block(&bad) {
                    assert!(other.fragments().iter().all(|f| f.start() < f.end()));
                }
            }
        }
        for n in 0..block.len() {
            let _ = decode_range_del_block(&block[..n]);
        }
    }
}
