//! The properties block: what a table holds, in a tagged, extensible encoding.
//!
//! Contents (see `docs/format/sstable.md`): a sequence of fields
//! `tag varint | length varint | value (length bytes)`, tags strictly increasing.
//! Integers are LEB128 inside their value; keys are raw bytes. A reader skips tags it
//! does not know, so a writer may add properties without a format version change;
//! a missing required tag is corruption.

use strata_core::varint::{get_length_prefixed, get_varint64, put_length_prefixed, put_varint64};
use strata_core::{InternalKey, SequenceNumber};

use crate::format::Compression;

/// Facts about a table, written once by the builder and read at open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableProperties {
    /// Entries (puts and tombstones).
    pub entry_count: u64,
    /// Entries that are tombstones.
    pub tombstone_count: u64,
    /// Distinct user keys (what the Bloom filter was sized for).
    pub distinct_user_keys: u64,
    /// The first internal key.
    pub smallest_key: InternalKey,
    /// The last internal key.
    pub largest_key: InternalKey,
    /// Smallest sequence number of any entry.
    pub smallest_seq: SequenceNumber,
    /// Largest sequence number of any entry.
    pub largest_seq: SequenceNumber,
    /// Sum of the internal keys' lengths as added.
    pub raw_key_bytes: u64,
    /// Sum of the values' lengths as added.
    pub raw_value_bytes: u64,
    /// Number of data blocks.
    pub data_block_count: u64,
    /// Bytes the data blocks take in the file, trailers included.
    pub data_bytes_on_disk: u64,
    /// Bytes of the data blocks' contents before compression.
    pub data_bytes_uncompressed: u64,
    /// The compression the builder was asked for (a block is stored raw when
    /// compressing it did not pay).
    pub compression: Compression,
    /// Bloom filter bits per key (0: no filter).
    pub bloom_bits_per_key: u32,
    /// Target data block size.
    pub block_size_bytes: u32,
    /// Entries between restart points in data blocks.
    pub restart_interval: u32,
    /// When the table was written (ms since the UNIX epoch, by the writer's clock);
    /// 0 if unknown (tag 17 absent: tables written before it). Periodic compaction
    /// weighs a table's age by it.
    pub creation_time_ms: u64,
}

// Tags, in the order they are written. Never reuse a number.
const ENTRY_COUNT: u64 = 1;
const TOMBSTONE_COUNT: u64 = 2;
const DISTINCT_USER_KEYS: u64 = 3;
const SMALLEST_KEY: u64 = 4;
const LARGEST_KEY: u64 = 5;
const SMALLEST_SEQ: u64 = 6;
const LARGEST_SEQ: u64 = 7;
const RAW_KEY_BYTES: u64 = 8;
const RAW_VALUE_BYTES: u64 = 9;
const DATA_BLOCK_COUNT: u64 = 10;
const DATA_BYTES_ON_DISK: u64 = 11;
const DATA_BYTES_UNCOMPRESSED: u64 = 12;
const COMPRESSION: u64 = 13;
const BLOOM_BITS_PER_KEY: u64 = 14;
const BLOCK_SIZE_BYTES: u64 = 15;
const RESTART_INTERVAL: u64 = 16;
const CREATION_TIME_MS: u64 = 17;
const TAG_COUNT: usize = 17;

fn put_u64_field(dst: &mut Vec<u8>, tag: u64, v: u64) {
    let mut val = Vec::with_capacity(10);
    put_varint64(&mut val, v);
    put_varint64(dst, tag);
    put_length_prefixed(dst, &val);
}

fn put_bytes_field(dst: &mut Vec<u8>, tag: u64, v: &[u8]) {
    put_varint64(dst, tag);
    put_length_prefixed(dst, v);
}

impl TableProperties {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + 2 * self.largest_key.as_bytes().len());
        put_u64_field(&mut out, ENTRY_COUNT, self.entry_count);
        put_u64_field(&mut out, TOMBSTONE_COUNT, self.tombstone_count);
        put_u64_field(&mut out, DISTINCT_USER_KEYS, self.distinct_user_keys);
        put_bytes_field(&mut out, SMALLEST_KEY, self.smallest_key.as_bytes());
        put_bytes_field(&mut out, LARGEST_KEY, self.largest_key.as_bytes());
        put_u64_field(&mut out, SMALLEST_SEQ, self.smallest_seq);
        put_u64_field(&mut out, LARGEST_SEQ, self.largest_seq);
        put_u64_field(&mut out, RAW_KEY_BYTES, self.raw_key_bytes);
        put_u64_field(&mut out, RAW_VALUE_BYTES, self.raw_value_bytes);
        put_u64_field(&mut out, DATA_BLOCK_COUNT, self.data_block_count);
        put_u64_field(&mut out, DATA_BYTES_ON_DISK, self.data_bytes_on_disk);
        put_u64_field(
            &mut out,
            DATA_BYTES_UNCOMPRESSED,
            self.data_bytes_uncompressed,
        );
        put_u64_field(&mut out, COMPRESSION, u64::from(self.compression.as_u8()));
        put_u64_field(
            &mut out,
            BLOOM_BITS_PER_KEY,
            u64::from(self.bloom_bits_per_key),
        );
        put_u64_field(&mut out, BLOCK_SIZE_BYTES, u64::from(self.block_size_bytes));
        put_u64_field(&mut out, RESTART_INTERVAL, u64::from(self.restart_interval));
        if self.creation_time_ms != 0 {
            put_u64_field(&mut out, CREATION_TIME_MS, self.creation_time_ms);
        }
        out
    }

    /// Decodes the block's contents; `Err(reason)` on damage (the caller adds the file
    /// and offset).
    pub(crate) fn decode(mut src: &[u8]) -> Result<Self, String> {
        let mut ints = [None::<u64>; TAG_COUNT + 1];
        let mut smallest = None;
        let mut largest = None;
        let mut last_tag = 0;
        while !src.is_empty() {
            let (tag, n) = get_varint64(src).ok_or("bad property tag")?;
            let (value, m) = src
                .get(n..)
                .and_then(get_length_prefixed)
                .ok_or("property value runs past the block")?;
            src = src.get(n + m..).unwrap_or_default();
            if tag <= last_tag {
                return Err(format!("property tag {tag} out of order"));
            }
            last_tag = tag;
            match tag {
                SMALLEST_KEY => smallest = Some(value),
                LARGEST_KEY => largest = Some(value),
                t if (t as usize) <= TAG_COUNT => {
                    let (v, used) = get_varint64(value).ok_or("bad property integer")?;
                    if used != value.len() {
                        return Err(format!("property {t} has trailing bytes"));
                    }
                    if let Some(slot) = ints.get_mut(t as usize) {
                        *slot = Some(v);
                    }
                }
                _ => {} // A newer writer's property: skip it.
            }
        }
        let int = |tag: u64| {
            ints.get(tag as usize)
                .copied()
                .flatten()
                .ok_or_else(|| format!("property {tag} missing"))
        };
        let u32_of = |tag: u64| {
            int(tag).and_then(|v| u32::try_from(v).map_err(|_| format!("property {tag} too big")))
        };
        let key = |k: Option<&[u8]>, name: &str| {
            k.and_then(|k| InternalKey::from_encoded(k.to_vec()))
                .ok_or_else(|| format!("{name} key missing or malformed"))
        };
        let compression = int(COMPRESSION)?;
        let props = TableProperties {
            entry_count: int(ENTRY_COUNT)?,
            tombstone_count: int(TOMBSTONE_COUNT)?,
            distinct_user_keys: int(DISTINCT_USER_KEYS)?,
            smallest_key: key(smallest, "smallest")?,
            largest_key: key(largest, "largest")?,
            smallest_seq: int(SMALLEST_SEQ)?,
            largest_seq: int(LARGEST_SEQ)?,
            raw_key_bytes: int(RAW_KEY_BYTES)?,
            raw_value_bytes: int(RAW_VALUE_BYTES)?,
            data_block_count: int(DATA_BLOCK_COUNT)?,
            data_bytes_on_disk: int(DATA_BYTES_ON_DISK)?,
            data_bytes_uncompressed: int(DATA_BYTES_UNCOMPRESSED)?,
            compression: u8::try_from(compression)
                .ok()
                .and_then(Compression::from_u8)
                .ok_or_else(|| format!("unknown compression {compression}"))?,
            bloom_bits_per_key: u32_of(BLOOM_BITS_PER_KEY)?,
            block_size_bytes: u32_of(BLOCK_SIZE_BYTES)?,
            restart_interval: u32_of(RESTART_INTERVAL)?,
            // Optional: tables written before it have none (0).
            creation_time_ms: ints
                .get(CREATION_TIME_MS as usize)
                .copied()
                .flatten()
                .unwrap_or(0),
        };
        props.check()?;
        Ok(props)
    }

    /// Invariants any table the builder writes satisfies.
    fn check(&self) -> Result<(), String> {
        // No entries at all is valid: a table may hold range tombstones alone.
        if self.tombstone_count > self.entry_count || self.distinct_user_keys > self.entry_count {
            return Err("inconsistent entry counts".into());
        }
        if self.smallest_key > self.largest_key || self.smallest_seq > self.largest_seq {
            return Err("smallest key or sequence exceeds the largest".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::ValueKind;

    fn sample() -> TableProperties {
        TableProperties {
            entry_count: 10,
            tombstone_count: 2,
            distinct_user_keys: 9,
            smallest_key: InternalKey::new(b"a", 5, ValueKind::Put),
            largest_key: InternalKey::new(b"z", 1, ValueKind::Delete),
            smallest_seq: 1,
            largest_seq: 9,
            raw_key_bytes: 100,
            raw_value_bytes: 1000,
            data_block_count: 1,
            data_bytes_on_disk: 1200,
            data_bytes_uncompressed: 1190,
            compression: Compression::Lz4,
            bloom_bits_per_key: 10,
            block_size_bytes: 4096,
            restart_interval: 16,
            creation_time_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn properties_round_trip() {
        let p = sample();
        assert_eq!(TableProperties::decode(&p.encode()).unwrap(), p);
    }

    #[test]
    fn unknown_tags_are_skipped_and_missing_ones_are_errors() {
        let p = sample();
        let mut enc = p.encode();
        put_bytes_field(&mut enc, 99, b"from the future");
        assert_eq!(TableProperties::decode(&enc).unwrap(), p);
        // Drop the last field (restart interval).
        let mut short = Vec::new();
        let full = p.encode();
        let mut rest = &full[..];
        while !rest.is_empty() {
            let (tag, n) = get_varint64(rest).unwrap();
            let (_, m) = get_length_prefixed(&rest[n..]).unwrap();
            if tag != RESTART_INTERVAL {
                short.extend_from_slice(&rest[..n + m]);
            }
            rest = &rest[n + m..];
        }
        assert!(TableProperties::decode(&short).unwrap_err().contains("16"));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let enc = sample().encode();
        // Cut right before the optional creation time, the rest is a whole table's
        // properties of the older form (no creation time); every other cut is damage.
        let older = TableProperties {
            creation_time_ms: 0,
            ..sample()
        };
        let without_time = older.encode().len();
        for cut in 0..enc.len() {
            match TableProperties::decode(&enc[..cut]) {
                Ok(p) => assert!(cut == without_time && p == older, "cut {cut}"),
                Err(_) => assert_ne!(cut, without_time, "cut {cut}"),
            }
        }
    }
}
