//! Writing a table: [`TableBuilder`] streams sorted entries into a file.
//!
//! The file is written front to back (layout: [`crate::format`] and
//! `docs/format/sstable.md`): data blocks as they fill, then the filter, properties and
//! index blocks, then the footer. Each block goes out with its trailer — compression
//! byte and a CRC-32 mixed with the block's offset and the file's random id.

use std::time::{SystemTime, UNIX_EPOCH};

use strata_core::key::user_key;
use strata_core::{
    Error, FragmentedTombstones, InternalKey, MAX_SEQUENCE, ParsedInternalKey, Result,
    SequenceNumber, ValueKind, WritableFile, compare_internal_keys,
};

use crate::block::BlockBuilder;
use crate::filter::BloomBuilder;
#[cfg(feature = "zstd")]
use crate::format::ZSTD_LEVEL;
use crate::format::{
    BLOCK_TRAILER_LEN, BlockHandle, Compression, FOOTER_V1_LEN, Footer, FormatVersion, MetaHandles,
    block_checksum,
};
use crate::properties::TableProperties;

/// How tables are laid out. The defaults suit a general-purpose engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableOptions {
    /// Target size of a data block's contents before compression (default 4096). A block
    /// is closed once it reaches this size, so a block holding one large value can be
    /// bigger.
    pub block_size_bytes: usize,
    /// Entries between restart points in data blocks (default 16): larger saves space
    /// through prefix compression, smaller speeds up seeks within a block.
    pub restart_interval: usize,
    /// Bloom filter bits per distinct user key (default 10, ≈ 0.8 % false positives);
    /// 0 writes no filter.
    pub bloom_bits_per_key: u32,
    /// Data block compression (default none). A block is stored raw whenever
    /// compressing it saves less than an eighth.
    pub compression: Compression,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            block_size_bytes: 4096,
            restart_interval: 16,
            bloom_bits_per_key: 10,
            compression: Compression::None,
        }
    }
}

/// Largest key or value the builder accepts: keeps every block's offsets within `u32`.
pub const MAX_ENTRY_PART_BYTES: usize = 1 << 30;

/// Largest accepted `block_size_bytes`.
const MAX_BLOCK_SIZE_BYTES: usize = 1 << 30;

/// Bytes gathered before handing them to the file: fewer system calls than one per block.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

impl TableOptions {
    fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidArgument(what));
        if !(1..=MAX_BLOCK_SIZE_BYTES).contains(&self.block_size_bytes) {
            return bad(format!("block size {} out of range", self.block_size_bytes));
        }
        if !(1..=u32::MAX as usize).contains(&self.restart_interval) {
            return bad(format!(
                "restart interval {} out of range",
                self.restart_interval
            ));
        }
        if self.bloom_bits_per_key > 1000 {
            return bad(format!(
                "bloom bits per key {} out of range",
                self.bloom_bits_per_key
            ));
        }
        if self.compression == Compression::Zstd && !cfg!(feature = "zstd") {
            return Err(Error::NotSupported(
                "zstd compression: this build lacks the `zstd` feature".into(),
            ));
        }
        Ok(())
    }
}

/// What a finished table holds: everything a manifest records about a new file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSummary {
    /// Length of the file in bytes.
    pub file_size: u64,
    /// The first internal key.
    pub smallest_key: InternalKey,
    /// The last internal key.
    pub largest_key: InternalKey,
    /// Smallest sequence number of any entry.
    pub smallest_seq: SequenceNumber,
    /// Largest sequence number of any entry.
    pub largest_seq: SequenceNumber,
    /// Entries written (puts and tombstones).
    pub entry_count: u64,
    /// Tombstones among them.
    pub tombstone_count: u64,
    /// Range tombstones stored, as `(fragment, sequence)` pairs.
    pub range_tombstone_count: u64,
}

/// Streams entries, sorted by internal key, into a new table file.
///
/// ```
/// use strata_core::{FileSystem, InternalKey, MemFs, ValueKind};
/// use strata_sstable::{Table, TableBuilder, TableOptions};
/// use std::path::Path;
///
/// let fs = MemFs::new();
/// let path = Path::new("/000001.sst");
/// let mut b = TableBuilder::new(fs.create(path)?, TableOptions::default())?;
/// b.add(InternalKey::new(b"apple", 2, ValueKind::Put).as_bytes(), b"red")?;
/// b.add(InternalKey::new(b"pear", 1, ValueKind::Delete).as_bytes(), b"")?;
/// let summary = b.finish()?;
/// assert_eq!((summary.entry_count, summary.tombstone_count), (2, 1));
///
/// let table = Table::open(fs.open(path)?, 1, None)?;
/// assert_eq!(table.get(b"apple", 5)?.into_value().as_deref(), Some(&b"red"[..]));
/// assert!(!table.may_contain(b"plum"));
/// # Ok::<(), strata_core::Error>(())
/// ```
///
/// After any error the builder refuses further calls (`Error::Poisoned`); drop it and
/// remove the file.
pub struct TableBuilder {
    file: Box<dyn WritableFile>,
    options: TableOptions,
    file_id: u64,
    /// Bytes written so far, counting those still in `out`.
    offset: u64,
    out: Vec<u8>,
    data_block: BlockBuilder,
    index_block: BlockBuilder,
    /// The last data block written, waiting for the next key to pick its separator.
    pending_index: Option<BlockHandle>,
    filter: BloomBuilder,
    last_key: Vec<u8>,
    smallest_key: Option<Vec<u8>>,
    compressed: Vec<u8>,
    stats: Stats,
    /// Range tombstones to store in the range-deletion block.
    range_tombstones: FragmentedTombstones,
    /// The first failure: every later call is refused with it as the cause.
    failed: Option<Error>,
    /// Recorded in the properties (0: none).
    creation_time_ms: u64,
}

#[derive(Default)]
struct Stats {
    entries: u64,
    tombstones: u64,
    /// Merge operands and expiring values: entries only format 4 defines.
    v4_entries: u64,
    distinct_user_keys: u64,
    smallest_seq: SequenceNumber,
    largest_seq: SequenceNumber,
    raw_key_bytes: u64,
    raw_value_bytes: u64,
    data_blocks: u64,
    data_bytes_on_disk: u64,
    data_bytes_uncompressed: u64,
}

impl std::fmt::Debug for TableBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableBuilder")
            .field("file", &self.file)
            .field("offset", &self.offset)
            .field("entries", &self.stats.entries)
            .finish_non_exhaustive()
    }
}

/// A random-enough per-file identifier: not secret, only different between files.
fn new_file_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

impl TableBuilder {
    /// Starts a table in `file` (freshly created, empty).
    pub fn new(file: Box<dyn WritableFile>, options: TableOptions) -> Result<Self> {
        options.validate()?;
        let offset = file.len();
        Ok(TableBuilder {
            file,
            data_block: BlockBuilder::new(options.restart_interval),
            index_block: BlockBuilder::new(1),
            filter: BloomBuilder::new(options.bloom_bits_per_key),
            options,
            file_id: new_file_id(),
            offset,
            out: Vec::with_capacity(WRITE_BUFFER_BYTES + 8192),
            pending_index: None,
            last_key: Vec::new(),
            smallest_key: None,
            compressed: Vec::new(),
            range_tombstones: FragmentedTombstones::empty(),
            stats: Stats {
                smallest_seq: SequenceNumber::MAX,
                ..Stats::default()
            },
            failed: None,
            creation_time_ms: 0,
        })
    }

    /// Records when the table is written (ms since the UNIX epoch) in its properties;
    /// unset, the table has no creation time.
    pub fn set_creation_time_ms(&mut self, ms: u64) {
        self.creation_time_ms = ms;
    }

    fn check_usable(&self) -> Result<()> {
        match &self.failed {
            Some(e) => Err(Error::poisoned(
                "the table builder failed earlier; discard the file",
                e,
            )),
            None => Ok(()),
        }
    }

    /// Adds range tombstones to the table (any number of calls, any time before
    /// [`finish`](Self::finish)): they are stored fragmented in a range-deletion block,
    /// and the table's key range and sequence range grow to cover them. A table with
    /// range tombstones is written in format version 3.
    pub fn add_range_tombstones(&mut self, tombstones: &FragmentedTombstones) -> Result<()> {
        self.check_usable()?;
        if tombstones.is_empty() {
            return Ok(());
        }
        if tombstones
            .entries()
            .any(|(s, e, _)| s.len().max(e.len()) > MAX_ENTRY_PART_BYTES)
        {
            return Err(Error::InvalidArgument(format!(
                "a range tombstone key exceeds {MAX_ENTRY_PART_BYTES} bytes"
            )));
        }
        self.range_tombstones = if self.range_tombstones.is_empty() {
            tombstones.clone()
        } else {
            FragmentedTombstones::new(
                self.range_tombstones
                    .tombstones()
                    .chain(tombstones.tombstones()),
            )
        };
        Ok(())
    }

    /// Adds an entry. `internal_key` must be a valid encoded internal key, greater than
    /// every key added before (else `InvalidArgument`, and nothing is written).
    /// Tombstones carry an empty value by convention, but any value is kept.
    pub fn add(&mut self, internal_key: &[u8], value: &[u8]) -> Result<()> {
        self.check_usable()?;
        let parsed = ParsedInternalKey::parse(internal_key).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "not an internal key: {:?}",
                internal_key.escape_ascii().to_string()
            ))
        })?;
        if internal_key.len() > MAX_ENTRY_PART_BYTES || value.len() > MAX_ENTRY_PART_BYTES {
            return Err(Error::InvalidArgument(format!(
                "key of {} or value of {} bytes exceeds {MAX_ENTRY_PART_BYTES}",
                internal_key.len(),
                value.len()
            )));
        }
        let new_user_key = match &self.smallest_key {
            None => true,
            Some(_) => {
                if compare_internal_keys(internal_key, &self.last_key).is_le() {
                    return Err(Error::InvalidArgument(format!(
                        "key {parsed:?} added after {:?}: keys must strictly increase",
                        ParsedInternalKey::parse(&self.last_key)
                    )));
                }
                parsed.user_key != user_key(&self.last_key)
            }
        };
        let result = self.add_checked(internal_key, parsed, new_user_key, value);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn add_checked(
        &mut self,
        key: &[u8],
        parsed: ParsedInternalKey<'_>,
        new_user_key: bool,
        value: &[u8],
    ) -> Result<()> {
        if let Some(handle) = self.pending_index.take() {
            let separator = shortest_separator(&self.last_key, key);
            self.add_index_entry(&separator, handle);
        }
        if new_user_key {
            self.filter.add_key(parsed.user_key);
            self.stats.distinct_user_keys += 1;
        }
        if self.smallest_key.is_none() {
            self.smallest_key = Some(key.to_vec());
        }
        self.data_block.add(key, value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);

        let s = &mut self.stats;
        s.entries += 1;
        match parsed.kind {
            ValueKind::Delete => s.tombstones += 1,
            ValueKind::Merge | ValueKind::ExpiringPut => s.v4_entries += 1,
            ValueKind::Put => {}
        }
        s.smallest_seq = s.smallest_seq.min(parsed.seq);
        s.largest_seq = s.largest_seq.max(parsed.seq);
        s.raw_key_bytes += key.len() as u64;
        s.raw_value_bytes += value.len() as u64;

        if self.data_block.estimated_len() >= self.options.block_size_bytes {
            self.flush_data_block()?;
        }
        Ok(())
    }

    fn add_index_entry(&mut self, separator: &[u8], handle: BlockHandle) {
        let mut value = Vec::with_capacity(20);
        handle.encode_varint(&mut value);
        self.index_block.add(separator, &value);
    }

    fn flush_data_block(&mut self) -> Result<()> {
        if self.data_block.is_empty() {
            return Ok(());
        }
        let contents_len;
        let handle;
        {
            let contents = self.data_block.finish();
            contents_len = contents.len();
            let compression = self.options.compression;
            handle = write_block(
                &mut self.out,
                &mut self.offset,
                &mut self.compressed,
                contents,
                compression,
                self.file_id,
            );
        }
        self.data_block.reset();
        self.pending_index = Some(handle);
        self.stats.data_blocks += 1;
        self.stats.data_bytes_uncompressed += contents_len as u64;
        self.stats.data_bytes_on_disk += handle.size + BLOCK_TRAILER_LEN as u64;
        self.flush_out(false)
    }

    fn flush_out(&mut self, force: bool) -> Result<()> {
        if self.out.len() >= WRITE_BUFFER_BYTES || (force && !self.out.is_empty()) {
            self.file.append(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// Approximate size of the file if it were finished now: bytes written, the open
    /// data block, and the filter and index still to come. Compaction closes an output
    /// once this reaches its target size.
    pub fn estimated_file_size(&self) -> u64 {
        self.offset
            + self.data_block.estimated_len() as u64
            + self.filter.estimated_len() as u64
            + self.index_block.estimated_len() as u64
            + FOOTER_V1_LEN as u64
    }

    /// Entries added so far.
    pub fn entry_count(&self) -> u64 {
        self.stats.entries
    }

    /// Writes the remaining data, the filter, properties and index blocks and the
    /// footer, then fsyncs the file.
    ///
    /// The table is durable, but its *directory entry* is not: the caller must fsync the
    /// parent directory (`FileSystem::sync_dir`) before a manifest refers to the file.
    /// A builder with no entries gives `InvalidArgument` (an empty table has no key
    /// range; remove the file instead).
    pub fn finish(mut self) -> Result<TableSummary> {
        self.check_usable()?;
        let ranges = std::mem::take(&mut self.range_tombstones);
        let parse = |key: Vec<u8>, what: &str| {
            InternalKey::from_encoded(key)
                .ok_or_else(|| Error::InvalidArgument(format!("{what} key does not parse")))
        };
        let point_range = match self.smallest_key.take() {
            Some(smallest) => Some((
                parse(smallest, "smallest")?,
                parse(self.last_key.clone(), "largest")?,
            )),
            None => None,
        };
        // The key range covers the tombstones too.
        let Some((smallest_key, largest_key)) = ranges.widen(point_range) else {
            return Err(Error::InvalidArgument(
                "cannot finish a table with no entries".into(),
            ));
        };
        self.flush_data_block()?;
        if let Some(handle) = self.pending_index.take() {
            let separator = short_successor(&self.last_key);
            self.add_index_entry(&separator, handle);
        }

        let file_id = self.file_id;
        let filter_contents = self.filter.finish();
        let filter = self.write_meta_block(&filter_contents);
        let has_merge_operands = self.stats.v4_entries > 0;
        // Version 4 (merge operands, expiring values) always has the range-deletion
        // block, maybe empty.
        let range_del = (!ranges.is_empty() || has_merge_operands)
            .then(|| self.write_meta_block(&crate::range_del::encode_block(&ranges)));

        if let Some((lo, hi)) = ranges.seq_range() {
            self.stats.smallest_seq = self.stats.smallest_seq.min(lo);
            self.stats.largest_seq = self.stats.largest_seq.max(hi);
        }
        let s = &self.stats;
        let props = TableProperties {
            entry_count: s.entries,
            tombstone_count: s.tombstones,
            distinct_user_keys: s.distinct_user_keys,
            smallest_key: smallest_key.clone(),
            largest_key: largest_key.clone(),
            smallest_seq: s.smallest_seq,
            largest_seq: s.largest_seq,
            raw_key_bytes: s.raw_key_bytes,
            raw_value_bytes: s.raw_value_bytes,
            data_block_count: s.data_blocks,
            data_bytes_on_disk: s.data_bytes_on_disk,
            data_bytes_uncompressed: s.data_bytes_uncompressed,
            compression: self.options.compression,
            bloom_bits_per_key: self.options.bloom_bits_per_key,
            block_size_bytes: self.options.block_size_bytes as u32,
            restart_interval: self.options.restart_interval as u32,
            creation_time_ms: self.creation_time_ms,
        };
        let properties = self.write_meta_block(&props.encode());

        let index = {
            let contents = self.index_block.finish();
            write_block(
                &mut self.out,
                &mut self.offset,
                &mut self.compressed,
                contents,
                Compression::None,
                file_id,
            )
        };
        let version = FormatVersion::for_table(
            self.options.compression,
            !ranges.is_empty(),
            has_merge_operands,
        );
        let handles = MetaHandles {
            filter,
            properties,
            index,
            range_del,
        };
        let footer = Footer::encode(version, file_id, handles, self.offset);
        self.out.extend_from_slice(&footer);
        self.offset += footer.len() as u64;

        let result = self.flush_out(true).and_then(|()| self.file.sync());
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result?;
        Ok(TableSummary {
            file_size: self.offset,
            smallest_key,
            largest_key,
            smallest_seq: self.stats.smallest_seq,
            largest_seq: self.stats.largest_seq,
            entry_count: self.stats.entries,
            tombstone_count: self.stats.tombstones,
            range_tombstone_count: ranges.len() as u64,
        })
    }

    fn write_meta_block(&mut self, contents: &[u8]) -> BlockHandle {
        write_block(
            &mut self.out,
            &mut self.offset,
            &mut self.compressed,
            contents,
            Compression::None,
            self.file_id,
        )
    }
}

/// Appends a block and its trailer to `out`, compressing it if asked and worthwhile.
fn write_block(
    out: &mut Vec<u8>,
    offset: &mut u64,
    scratch: &mut Vec<u8>,
    contents: &[u8],
    compression: Compression,
    file_id: u64,
) -> BlockHandle {
    let (stored, kind): (&[u8], Compression) = match compression {
        Compression::None => (contents, Compression::None),
        #[cfg(feature = "zstd")]
        Compression::Zstd => {
            scratch.clear();
            strata_core::varint::put_varint64(scratch, contents.len() as u64);
            let header = scratch.len();
            scratch.resize(header + zstd::zstd_safe::compress_bound(contents.len()), 0);
            thread_local! {
                // One compression context per thread, reused across blocks (making one
                // per block costs about as much as compressing it).
                static CCTX: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
                    const { std::cell::RefCell::new(None) };
            }
            let compressed = scratch.get_mut(header..).and_then(|dst| {
                CCTX.with(|cell| {
                    let mut slot = cell.borrow_mut();
                    if slot.is_none() {
                        *slot = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
                    }
                    slot.as_mut()?.compress_to_buffer(contents, dst).ok()
                })
            });
            match compressed {
                Some(n) if header + n < contents.len() - contents.len() / 8 => {
                    scratch.truncate(header + n);
                    (scratch.as_slice(), Compression::Zstd)
                }
                _ => (contents, Compression::None),
            }
        }
        // `TableBuilder::new` refuses zstd in a build without the codec.
        #[cfg(not(feature = "zstd"))]
        Compression::Zstd => (contents, Compression::None),
        Compression::Lz4 => {
            scratch.clear();
            strata_core::varint::put_varint64(scratch, contents.len() as u64);
            let header = scratch.len();
            scratch.resize(
                header + lz4_flex::block::get_maximum_output_size(contents.len()),
                0,
            );
            let compressed = scratch
                .get_mut(header..)
                .and_then(|dst| lz4_flex::block::compress_into(contents, dst).ok());
            match compressed {
                // Keep the compressed form only if it saves at least an eighth.
                Some(n) if header + n < contents.len() - contents.len() / 8 => {
                    scratch.truncate(header + n);
                    (scratch.as_slice(), Compression::Lz4)
                }
                _ => (contents, Compression::None),
            }
        }
    };
    let handle = BlockHandle {
        offset: *offset,
        size: stored.len() as u64,
    };
    let crc = block_checksum(stored, kind.as_u8(), handle.offset, file_id);
    out.extend_from_slice(stored);
    out.push(kind.as_u8());
    out.extend_from_slice(&crc.to_le_bytes());
    *offset += (stored.len() + BLOCK_TRAILER_LEN) as u64;
    handle
}

/// A short internal key `s` with `last <= s < next`, for the index entry of the block
/// ending in `last` when the next block starts with `next`. Shortens the user key when
/// they differ (`"abcd…" / "abzz…"` → `"abd"`), else returns `last` itself.
fn shortest_separator(last: &[u8], next: &[u8]) -> Vec<u8> {
    let (a, b) = (user_key(last), user_key(next));
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    if let (Some(&ca), Some(&cb)) = (a.get(common), b.get(common))
        && ca < 0xff
        && ca + 1 < cb
    {
        let mut sep = a.get(..common).unwrap_or_default().to_vec();
        sep.push(ca + 1);
        // The user key grew past `a`, so the largest trailer (the first entry of that
        // user key) keeps the separator above `last` and below `next`.
        return InternalKey::new(&sep, MAX_SEQUENCE, ValueKind::FOR_BOUND).into_bytes();
    }
    last.to_vec()
}

/// A short internal key `>= last`, for the final block's index entry: the user key's
/// first byte that can be incremented is, and the rest dropped.
fn short_successor(last: &[u8]) -> Vec<u8> {
    let a = user_key(last);
    if let Some(i) = a.iter().position(|&c| c < 0xff) {
        let mut succ = a.get(..i).unwrap_or_default().to_vec();
        succ.push(a.get(i).copied().unwrap_or(0) + 1);
        return InternalKey::new(&succ, MAX_SEQUENCE, ValueKind::FOR_BOUND).into_bytes();
    }
    last.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ik(k: &[u8], seq: u64) -> Vec<u8> {
        InternalKey::new(k, seq, ValueKind::Put).into_bytes()
    }

    #[test]
    fn separators_are_short_when_user_keys_allow() {
        assert_eq!(
            shortest_separator(&ik(b"abcd", 5), &ik(b"abzz", 9)),
            InternalKey::new(b"abd", MAX_SEQUENCE, ValueKind::Put).into_bytes()
        );
        // Adjacent bytes: cannot shorten.
        assert_eq!(
            shortest_separator(&ik(b"abc", 5), &ik(b"abd", 9)),
            ik(b"abc", 5)
        );
        // Same user key: the last key itself.
        assert_eq!(shortest_separator(&ik(b"k", 9), &ik(b"k", 3)), ik(b"k", 9));
        assert_eq!(
            short_successor(&ik(b"\xff\x10zz", 1)),
            InternalKey::new(b"\xff\x11", MAX_SEQUENCE, ValueKind::Put).into_bytes()
        );
        assert_eq!(short_successor(&ik(b"\xff\xff", 1)), ik(b"\xff\xff", 1));
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1), Just(0xfe), Just(0xff), any::<u8>()],
                0..6,
            ),
            0..100u64,
        )
            .prop_map(|(k, s)| ik(&k, s))
    }

    proptest! {
        #[test]
        fn separator_lies_between(a in key(), b in key()) {
            let (lo, hi) = if compare_internal_keys(&a, &b).is_lt() { (a, b) } else { (b, a) };
            prop_assume!(compare_internal_keys(&lo, &hi).is_lt());
            let s = shortest_separator(&lo, &hi);
            prop_assert!(compare_internal_keys(&lo, &s).is_le());
            prop_assert!(compare_internal_keys(&s, &hi).is_lt());
            prop_assert!(s.len() <= lo.len());
            let t = short_successor(&lo);
            prop_assert!(compare_internal_keys(&lo, &t).is_le());
        }
    }
}
