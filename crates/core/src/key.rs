//! Sequence numbers, value kinds and internal keys.
//!
//! An *internal key* is what every layer below the engine stores and sorts:
//!
//! ```text
//! +-------------------+------------------------------------------+
//! | user key (n B)    | trailer: u64 little-endian (8 B)         |
//! |                   |   = sequence << 8 | kind                 |
//! +-------------------+------------------------------------------+
//! ```
//!
//! Order: user key ascending (bytewise), then trailer *descending* — so for one user key
//! the newest version comes first, and a seek to `(key, S, Put)` lands on the newest
//! version visible at snapshot `S`.

use std::cmp::Ordering;
use std::fmt;

/// A write's position in the database's history. Every write batch takes consecutive
/// numbers; a read at snapshot `S` sees the newest entry with sequence `<= S`.
pub type SequenceNumber = u64;

/// Largest sequence number that fits the 56 bits the trailer keeps for it.
pub const MAX_SEQUENCE: SequenceNumber = (1 << 56) - 1;

/// Bytes of the trailer appended to a user key.
pub const TRAILER_LEN: usize = 8;

/// What an entry says about its user key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ValueKind {
    /// A tombstone: the key is deleted as of this sequence number.
    Delete = 0,
    /// The key holds the entry's value as of this sequence number.
    Put = 1,
    /// A merge operand: the key's value is the keyspace's
    /// [`MergeOperator`](crate::MergeOperator) folding this and the operands since the
    /// newest older put or delete onto that put's value. Table format 4, manifest
    /// format 5 and later.
    Merge = 2,
    /// A value with an expiry: the stored value is the expiry (u64 LE, ms since the
    /// UNIX epoch) then the user's value (see [`crate::expiry`]). Reads see it until it
    /// expires and a tombstone from then on. Table format 4, manifest format 5.
    ExpiringPut = 3,
}

impl ValueKind {
    /// The kind used in seek targets: the largest, so that a target `(k, S, SEEK)`
    /// sorts before every entry of `k` with sequence `S`.
    pub const FOR_SEEK: ValueKind = ValueKind::ExpiringPut;

    /// The kind of the bounds that tables and the manifest store at sequence
    /// [`MAX_SEQUENCE`] (index separators, the edges of range tombstones). No entry takes
    /// that sequence number (it is 2^56 − 1 writes away), so `(k, MAX_SEQUENCE, bound)`
    /// sorts before every entry of `k` whatever its kind. It stays `Put`, the largest
    /// kind before merge operands, so a table without operands holds the bytes older
    /// builds wrote and read.
    pub const FOR_BOUND: ValueKind = ValueKind::Put;

    /// Decodes a kind byte; `None` for a byte no format version defines.
    pub fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            2 => Some(ValueKind::Merge),
            3 => Some(ValueKind::ExpiringPut),
            _ => None,
        }
    }

    /// Whether only table format 4 (manifest format 5) and later define this kind:
    /// merge operands and expiring values.
    pub fn needs_v4(self) -> bool {
        matches!(self, ValueKind::Merge | ValueKind::ExpiringPut)
    }

    /// Whether entries of this kind carry a value (puts, expiring puts and merge
    /// operands do; tombstones store none).
    pub fn has_value(self) -> bool {
        !matches!(self, ValueKind::Delete)
    }
}

/// Packs a sequence number and kind into the trailer's integer.
///
/// `seq` must not exceed [`MAX_SEQUENCE`]; larger values are a caller bug.
pub fn pack_trailer(seq: SequenceNumber, kind: ValueKind) -> u64 {
    debug_assert!(seq <= MAX_SEQUENCE, "sequence {seq} exceeds 56 bits");
    (seq << 8) | kind as u64
}

/// Appends the internal-key encoding of `(user_key, seq, kind)` to `dst`.
pub fn encode_internal_key(
    dst: &mut Vec<u8>,
    user_key: &[u8],
    seq: SequenceNumber,
    kind: ValueKind,
) {
    dst.reserve(user_key.len() + TRAILER_LEN);
    dst.extend_from_slice(user_key);
    dst.extend_from_slice(&pack_trailer(seq, kind).to_le_bytes());
}

/// The user-key part of an encoded internal key (the whole slice if it is too short to
/// hold a trailer, which only corrupt input can be).
pub fn user_key(internal_key: &[u8]) -> &[u8] {
    match internal_key.len().checked_sub(TRAILER_LEN) {
        Some(n) => internal_key.get(..n).unwrap_or(internal_key),
        None => internal_key,
    }
}

fn trailer(internal_key: &[u8]) -> Option<u64> {
    let n = internal_key.len().checked_sub(TRAILER_LEN)?;
    let bytes: [u8; TRAILER_LEN] = internal_key.get(n..)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Compares two encoded internal keys: user key ascending, then sequence and kind
/// descending. Slices too short to hold a trailer (corrupt input) sort bytewise so the
/// order stays total.
pub fn compare_internal_keys(a: &[u8], b: &[u8]) -> Ordering {
    match (trailer(a), trailer(b)) {
        (Some(ta), Some(tb)) => user_key(a).cmp(user_key(b)).then_with(|| tb.cmp(&ta)),
        _ => a.cmp(b),
    }
}

/// A borrowed, decoded view of an internal key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParsedInternalKey<'a> {
    /// The user's key.
    pub user_key: &'a [u8],
    /// The write's sequence number.
    pub seq: SequenceNumber,
    /// Put, tombstone, merge operand or expiring put.
    pub kind: ValueKind,
}

impl<'a> ParsedInternalKey<'a> {
    /// Decodes an internal key; `None` if it is shorter than a trailer or its kind byte
    /// is unknown. Callers that read from disk turn `None` into `Error::Corruption` with
    /// their file and offset.
    pub fn parse(internal_key: &'a [u8]) -> Option<Self> {
        let packed = trailer(internal_key)?;
        let kind = ValueKind::from_u8((packed & 0xff) as u8)?;
        Some(ParsedInternalKey {
            user_key: user_key(internal_key),
            seq: packed >> 8,
            kind,
        })
    }
}

impl fmt::Debug for ParsedInternalKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} @{} {:?}",
            self.user_key.escape_ascii().to_string(),
            self.seq,
            self.kind
        )
    }
}

/// An owned, validated internal key, ordered by [`compare_internal_keys`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct InternalKey(Vec<u8>);

impl InternalKey {
    /// Encodes `(user_key, seq, kind)`.
    pub fn new(user_key: &[u8], seq: SequenceNumber, kind: ValueKind) -> Self {
        let mut v = Vec::with_capacity(user_key.len() + TRAILER_LEN);
        encode_internal_key(&mut v, user_key, seq, kind);
        InternalKey(v)
    }

    /// The seek target for reading `user_key` at snapshot `seq`: sorts before every
    /// version of `user_key` visible at `seq` and after every newer one.
    pub fn for_seek(user_key: &[u8], seq: SequenceNumber) -> Self {
        Self::new(user_key, seq, ValueKind::FOR_SEEK)
    }

    /// Takes an encoded internal key, checking that it parses.
    pub fn from_encoded(encoded: Vec<u8>) -> Option<Self> {
        ParsedInternalKey::parse(&encoded)?;
        Some(InternalKey(encoded))
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Consumes the key, returning its encoding.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The decoded view. Infallible: construction validated the encoding.
    pub fn parsed(&self) -> ParsedInternalKey<'_> {
        ParsedInternalKey {
            user_key: user_key(&self.0),
            seq: trailer(&self.0).map_or(0, |t| t >> 8),
            kind: trailer(&self.0)
                .and_then(|t| ValueKind::from_u8((t & 0xff) as u8))
                .unwrap_or(ValueKind::Delete),
        }
    }

    /// The user-key part.
    pub fn user_key(&self) -> &[u8] {
        user_key(&self.0)
    }
}

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_internal_keys(&self.0, &other.0)
    }
}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for InternalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.parsed().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind() -> impl Strategy<Value = ValueKind> {
        prop_oneof![Just(ValueKind::Put), Just(ValueKind::Delete)]
    }

    fn key() -> impl Strategy<Value = (Vec<u8>, u64, ValueKind)> {
        (
            proptest::collection::vec(any::<u8>(), 0..12),
            0..=MAX_SEQUENCE,
            kind(),
        )
    }

    proptest! {
        #[test]
        fn encoding_round_trips((uk, seq, k) in key()) {
            let ik = InternalKey::new(&uk, seq, k);
            let p = ParsedInternalKey::parse(ik.as_bytes()).unwrap();
            prop_assert_eq!(p.user_key, &uk[..]);
            prop_assert_eq!(p.seq, seq);
            prop_assert_eq!(p.kind, k);
            prop_assert_eq!(ik.parsed(), p);
        }

        /// The order is exactly (user key asc, seq desc, kind desc), whatever the bytes.
        #[test]
        fn order_is_user_key_then_newest_first(a in key(), b in key()) {
            let ea = InternalKey::new(&a.0, a.1, a.2);
            let eb = InternalKey::new(&b.0, b.1, b.2);
            let expected = a.0.cmp(&b.0)
                .then(b.1.cmp(&a.1))
                .then((b.2 as u8).cmp(&(a.2 as u8)));
            prop_assert_eq!(compare_internal_keys(ea.as_bytes(), eb.as_bytes()), expected);
            prop_assert_eq!(ea.cmp(&eb), expected);
        }

        #[test]
        fn order_is_transitive(mut keys in proptest::collection::vec(key(), 0..20)) {
            let mut enc: Vec<InternalKey> =
                keys.iter().map(|(u, s, k)| InternalKey::new(u, *s, *k)).collect();
            enc.sort();
            keys.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then((b.2 as u8).cmp(&(a.2 as u8))));
            let decoded: Vec<_> = enc.iter().map(|k| {
                let p = k.parsed();
                (p.user_key.to_vec(), p.seq, p.kind)
            }).collect();
            prop_assert_eq!(decoded, keys);
        }

        /// A seek target at snapshot S lands on the newest version with seq <= S.
        #[test]
        fn seek_target_sorts_before_visible_versions(uk in proptest::collection::vec(any::<u8>(), 0..8),
                                                     snap in 0..1000u64, seq in 0..1000u64, k in kind()) {
            let target = InternalKey::for_seek(&uk, snap);
            let entry = InternalKey::new(&uk, seq, k);
            prop_assert_eq!(target <= entry, seq <= snap);
        }
    }

    #[test]
    fn a_prefix_user_key_sorts_first_regardless_of_trailer() {
        // "a" with the highest trailer must still sort before "a\0" with the lowest.
        let a = InternalKey::new(b"a", 0, ValueKind::Delete);
        let a0 = InternalKey::new(b"a\0", MAX_SEQUENCE, ValueKind::Put);
        assert!(a < a0);
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        assert!(ParsedInternalKey::parse(b"short").is_none());
        let mut bad = b"k".to_vec();
        bad.extend_from_slice(&((5u64 << 8) | 7).to_le_bytes());
        assert!(ParsedInternalKey::parse(&bad).is_none());
        assert!(InternalKey::from_encoded(bad).is_none());
    }
}
