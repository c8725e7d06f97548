//! Write batches and their encoding, the payload of every WAL record.
//!
//! A batch is applied atomically: it becomes one WAL record and takes consecutive
//! sequence numbers. Several writers' batches committed together by group commit are
//! concatenated into one record (same encoding, summed count).
//!
//! Encoding (see `docs/format/wal.md`, "Payload: write batch"):
//!
//! ```text
//! +-----------------+----------------+---------------------------------------------+
//! | first seq       | entry count    | entries, in order                           |
//! | varint64        | varint32       |   Put:    0x01 | varint len | key | varint len | value
//! |                 |                |   Delete: 0x00 | varint len | key           |
//! |                 |                |   DeleteRange: 0x02 | varint len | start     |
//! |                 |                |                | varint len | end (exclusive)|
//! +-----------------+----------------+---------------------------------------------+
//! ```
//!
//! Entry `i` has sequence `first seq + i`. Varints keep the per-write overhead small: a
//! 16-byte key and 100-byte value cost 3 bytes of entry framing and ~4 of header.

use strata_core::varint::{
    get_length_prefixed, get_varint32, get_varint64, put_length_prefixed, put_varint32,
    put_varint64,
};
use strata_core::{SequenceNumber, ValueKind};

/// What a batch entry does. `Put` and `Delete` share their byte with
/// [`ValueKind`]; a range delete has a byte of its own (manifest format 3 and later:
/// older builds refuse the database before they could meet one in a WAL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BatchOp {
    /// Sets the key.
    Put,
    /// Deletes the key.
    Delete,
    /// Deletes every key in `[key, value)`: the entry's key is the start, its value
    /// the exclusive end.
    DeleteRange,
}

const DELETE_RANGE_BYTE: u8 = 2;

impl BatchOp {
    fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            DELETE_RANGE_BYTE => Some(BatchOp::DeleteRange),
            b => ValueKind::from_u8(b).map(|k| match k {
                ValueKind::Put => BatchOp::Put,
                ValueKind::Delete => BatchOp::Delete,
            }),
        }
    }
}

/// A set of puts and deletes applied atomically.
///
/// ```
/// let mut batch = strata::WriteBatch::new();
/// batch.put("k1", "v1");
/// batch.delete("k0");
/// assert_eq!(batch.len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    entries: Vec<u8>,
    count: u32,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `bytes` of encoded entries (about key + value + 3
    /// bytes per put).
    pub fn with_capacity(bytes: usize) -> Self {
        WriteBatch {
            entries: Vec::with_capacity(bytes),
            count: 0,
        }
    }

    /// Adds a put of `value` at `key`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.entries.push(ValueKind::Put as u8);
        put_length_prefixed(&mut self.entries, key.as_ref());
        put_length_prefixed(&mut self.entries, value.as_ref());
        self.count += 1;
        self
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.entries.push(ValueKind::Delete as u8);
        put_length_prefixed(&mut self.entries, key.as_ref());
        self.count += 1;
        self
    }

    /// Adds a delete of every key in `[start, end)`: one entry however many keys the
    /// range holds, atomic with the batch's other entries. Entries later in the batch
    /// (higher sequence numbers) are not affected by it. An empty range (`start >=
    /// end`) adds nothing.
    ///
    /// ```
    /// let mut batch = strata::WriteBatch::new();
    /// batch.delete_range("user:0100", "user:0200").put("user:0150", "new");
    /// assert_eq!(batch.len(), 2);
    /// ```
    pub fn delete_range(&mut self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> &mut Self {
        let (start, end) = (start.as_ref(), end.as_ref());
        if start < end {
            self.entries.push(DELETE_RANGE_BYTE);
            put_length_prefixed(&mut self.entries, start);
            put_length_prefixed(&mut self.entries, end);
            self.count += 1;
        }
        self
    }

    /// Number of entries (puts, deletes and range deletes).
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Removes every entry, keeping the allocation.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.count = 0;
    }

    /// Bytes of encoded entries (a cheap size estimate for memory budgets).
    pub fn encoded_len(&self) -> usize {
        self.entries.len()
    }

    /// The entries in order.
    pub(crate) fn iter(&self) -> BatchEntries<'_> {
        BatchEntries {
            rest: &self.entries,
            remaining: self.count,
        }
    }
}

/// The `[start, end)` of a range of keys: an excluded start or an included end
/// becomes its successor. An unbounded end is refused (a range tombstone's end is a
/// key); an unbounded start is the empty key, the smallest.
pub(crate) fn range_bounds<K: AsRef<[u8]>, R: std::ops::RangeBounds<K>>(
    range: &R,
) -> strata_core::Result<(Vec<u8>, Vec<u8>)> {
    use std::ops::Bound;
    use strata_core::range_del::successor;
    let start = match range.start_bound() {
        Bound::Included(k) => k.as_ref().to_vec(),
        Bound::Excluded(k) => successor(k.as_ref()),
        Bound::Unbounded => Vec::new(),
    };
    let end = match range.end_bound() {
        Bound::Excluded(k) => k.as_ref().to_vec(),
        Bound::Included(k) => successor(k.as_ref()),
        Bound::Unbounded => {
            return Err(strata_core::Error::InvalidArgument(
                "a range delete needs an end bound (`start..end` or `start..=end`)".into(),
            ));
        }
    };
    Ok((start, end))
}

/// Encodes `batches` as one WAL record payload starting at `first_seq`.
pub(crate) fn encode_record<'a>(
    dst: &mut Vec<u8>,
    first_seq: SequenceNumber,
    batches: impl Iterator<Item = &'a WriteBatch> + Clone,
) {
    let count: u32 = batches.clone().map(|b| b.count).sum();
    dst.clear();
    put_varint64(dst, first_seq);
    put_varint32(dst, count);
    for b in batches {
        dst.extend_from_slice(&b.entries);
    }
}

/// Encodes a *sync marker*: a record of no entries at `next_seq`, the sequence number
/// the next write will take. It says "every older WAL was synced before this record was
/// written" (the write path writes it after syncing rotated-out WALs; recovery relies
/// on it to tell a power-loss gap from damage). Writes never produce an empty record
/// otherwise: empty batches are not queued.
pub(crate) fn encode_sync_marker(dst: &mut Vec<u8>, next_seq: SequenceNumber) {
    encode_record(dst, next_seq, std::iter::empty());
}

/// One decoded entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchEntry<'a> {
    pub kind: BatchOp,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

impl BatchEntry<'_> {
    /// Inserts the entry into a MemTable at `seq`.
    pub fn apply(
        &self,
        writer: &mut strata_memtable::MemTableWriter<'_>,
        seq: SequenceNumber,
    ) -> strata_core::Result<()> {
        match self.kind {
            BatchOp::Put => writer.insert(self.key, seq, ValueKind::Put, self.value),
            BatchOp::Delete => writer.insert(self.key, seq, ValueKind::Delete, &[]),
            BatchOp::DeleteRange => writer.delete_range(self.key, self.value, seq),
        }
    }
}

/// Iterator over a batch's entries; yields `Err(offset)` (within the entries) on a
/// malformed entry, then stops.
#[derive(Clone, Debug)]
pub(crate) struct BatchEntries<'a> {
    rest: &'a [u8],
    remaining: u32,
}

impl<'a> BatchEntries<'a> {
    fn decode_one(&mut self) -> Option<BatchEntry<'a>> {
        let (&kind_byte, after_kind) = self.rest.split_first()?;
        let kind = BatchOp::from_u8(kind_byte)?;
        let (key, n) = get_length_prefixed(after_kind)?;
        let mut rest = after_kind.get(n..)?;
        let mut value: &[u8] = &[];
        if kind != BatchOp::Delete {
            let (v, n) = get_length_prefixed(rest)?;
            value = v;
            rest = rest.get(n..)?;
        }
        self.rest = rest;
        Some(BatchEntry { kind, key, value })
    }
}

impl<'a> Iterator for BatchEntries<'a> {
    type Item = Result<BatchEntry<'a>, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return (!self.rest.is_empty()).then(|| {
                self.rest = &[];
                Err("bytes after the last entry the count promised")
            });
        }
        self.remaining -= 1;
        match self.decode_one() {
            Some(e) => Some(Ok(e)),
            None => {
                self.remaining = 0;
                self.rest = &[];
                Some(Err("malformed or truncated entry"))
            }
        }
    }
}

/// A decoded WAL record payload.
#[derive(Clone, Debug)]
pub(crate) struct DecodedRecord<'a> {
    pub first_seq: SequenceNumber,
    pub entries: BatchEntries<'a>,
}

impl DecodedRecord<'_> {
    /// How many entries (and sequence numbers) the record holds.
    pub fn count(&self) -> u32 {
        self.entries.remaining
    }

    /// Whether this is a sync marker ([`encode_sync_marker`]).
    pub fn is_sync_marker(&self) -> bool {
        self.count() == 0
    }
}

/// Decodes a record payload's header; entries decode lazily.
pub(crate) fn decode_record(payload: &[u8]) -> Result<DecodedRecord<'_>, &'static str> {
    let (first_seq, n) = get_varint64(payload).ok_or("truncated sequence number")?;
    let rest = payload.get(n..).ok_or("truncated header")?;
    let (count, m) = get_varint32(rest).ok_or("truncated entry count")?;
    let entries = rest.get(m..).ok_or("truncated header")?;
    // Every sequence number of the record must fit the internal key's 56 bits; callers
    // count `first_seq..` without overflow checks.
    let last = first_seq.checked_add(u64::from(count.saturating_sub(1)));
    if last.is_none_or(|last| last > strata_core::MAX_SEQUENCE) {
        return Err("sequence numbers out of range");
    }
    Ok(DecodedRecord {
        first_seq,
        entries: BatchEntries {
            rest: entries,
            remaining: count,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op() -> impl Strategy<Value = (bool, Vec<u8>, Vec<u8>)> {
        (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..20),
            proptest::collection::vec(any::<u8>(), 0..200),
        )
    }

    fn batch_of(ops: &[(bool, Vec<u8>, Vec<u8>)]) -> WriteBatch {
        let mut b = WriteBatch::new();
        for (is_put, k, v) in ops {
            if *is_put {
                b.put(k, v);
            } else {
                b.delete(k);
            }
        }
        b
    }

    proptest! {
        #[test]
        fn grouped_batches_round_trip(groups in proptest::collection::vec(proptest::collection::vec(op(), 0..8), 1..4),
                                      seq in 0..strata_core::MAX_SEQUENCE - 64) {
            let batches: Vec<WriteBatch> = groups.iter().map(|g| batch_of(g)).collect();
            let mut payload = Vec::new();
            encode_record(&mut payload, seq, batches.iter());
            let rec = decode_record(&payload).unwrap();
            prop_assert_eq!(rec.first_seq, seq);
            let decoded: Vec<_> = rec.entries.map(|e| e.unwrap()).collect();
            let expected: Vec<_> = groups.iter().flatten().collect();
            prop_assert_eq!(decoded.len(), expected.len());
            for (d, (is_put, k, v)) in decoded.iter().zip(expected) {
                prop_assert_eq!(d.kind == BatchOp::Put, *is_put);
                prop_assert_eq!(d.key, &k[..]);
                prop_assert_eq!(d.value, if *is_put { &v[..] } else { &[][..] });
            }
        }

        #[test]
        fn damaged_payloads_decode_to_errors_not_panics(ops in proptest::collection::vec(op(), 1..5),
                                                        cut in any::<prop::sample::Index>(),
                                                        flip in any::<prop::sample::Index>()) {
            let mut payload = Vec::new();
            encode_record(&mut payload, 7, std::iter::once(&batch_of(&ops)));
            let truncated = &payload[..cut.index(payload.len())];
            if let Ok(rec) = decode_record(truncated) {
                // A truncated record always ends in an error, never in a shorter batch.
                prop_assert!(rec.entries.clone().any(|e| e.is_err()));
            }
            let mut flipped = payload.clone();
            let i = flip.index(flipped.len());
            flipped[i] ^= 0x80;
            if let Ok(rec) = decode_record(&flipped) {
                let _ = rec.entries.count();
            }
        }
    }

    /// Found by the `batch_decoder` fuzz target: a first sequence number of `u64::MAX`
    /// made counting the entries' sequence numbers overflow (a panic in debug builds,
    /// wrapped sequence numbers in release).
    #[test]
    fn range_deletes_round_trip_and_empty_ranges_add_nothing() {
        let mut b = WriteBatch::new();
        b.put("a", "1")
            .delete_range("b", "d")
            .delete_range("x", "x")
            .delete("e");
        assert_eq!(b.len(), 3);
        let mut payload = Vec::new();
        encode_record(&mut payload, 5, std::iter::once(&b));
        let decoded: Vec<_> = decode_record(&payload)
            .unwrap()
            .entries
            .map(|e| e.unwrap())
            .map(|e| (e.kind, e.key.to_vec(), e.value.to_vec()))
            .collect();
        assert_eq!(
            decoded,
            [
                (BatchOp::Put, b"a".to_vec(), b"1".to_vec()),
                (BatchOp::DeleteRange, b"b".to_vec(), b"d".to_vec()),
                (BatchOp::Delete, b"e".to_vec(), vec![]),
            ]
        );
        // A range delete cut short is malformed, not a shorter range.
        let cut = &payload[..payload.len() - 3];
        assert!(decode_record(cut).unwrap().entries.any(|e| e.is_err()));
    }

    #[test]
    fn sequence_numbers_past_56_bits_are_malformed() {
        let fuzz_input = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00,
        ];
        assert_eq!(
            decode_record(&fuzz_input).err(),
            Some("sequence numbers out of range")
        );
        let mut b = WriteBatch::new();
        b.put("a", "1").put("b", "2");
        let mut payload = Vec::new();
        encode_record(
            &mut payload,
            strata_core::MAX_SEQUENCE - 1,
            std::iter::once(&b),
        );
        assert!(
            decode_record(&payload).is_ok(),
            "the last two sequence numbers"
        );
        payload.clear();
        encode_record(&mut payload, strata_core::MAX_SEQUENCE, std::iter::once(&b));
        assert!(decode_record(&payload).is_err(), "one past the last");
        assert!(crate::inspect::decode_wal_batch(&fuzz_input).is_err());
    }

    #[test]
    fn small_put_overhead_is_small() {
        let mut b = WriteBatch::new();
        b.put([7u8; 16], [9u8; 100]);
        let mut payload = Vec::new();
        encode_record(&mut payload, 1_000_000, std::iter::once(&b));
        // 3 B seq varint + 1 B count + 1 B kind + 1 B + 1 B lengths.
        assert_eq!(payload.len(), 116 + 7);
    }
}
