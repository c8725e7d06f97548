//! Reading a table: [`Table`] opens a file, answers point lookups and makes iterators.

use std::cell::RefCell;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use strata_core::expiry::{EXPIRY_LEN, split_expiring};
use strata_core::key::encode_internal_key;
use strata_core::varint::{get_varint64, read_u32_le};
use strata_core::{
    Error, FragmentedTombstones, Lookup, MAX_SEQUENCE, ParsedInternalKey, RandomAccessFile, Result,
    SequenceNumber, SortedIter, ValueKind, compare_internal_keys,
};

use crate::block::{Block, BlockError, BlockIter, compare_keys};
use crate::cache::BlockCache;
use crate::filter::{BloomFilter, FilterDecodeError};
use crate::format::{BLOCK_TRAILER_LEN, BlockHandle, Compression, Footer, block_checksum};
use crate::iter::TableIter;
use crate::properties::TableProperties;
use crate::range_del::decode_range_del_block;

/// LZ4 cannot expand data by more than this factor (plus a small constant): any larger
/// claimed length is damage, and refusing it bounds the allocation.
const LZ4_MAX_RATIO: u64 = 255;

/// Beyond zstd's reach on any input (a frame of long runs compresses a few thousand to
/// one): bounds the allocation a damaged or crafted block can ask for.
#[cfg(feature = "zstd")]
const ZSTD_MAX_RATIO: u64 = 1 << 16;

/// A user key's filter hash (xxh3-64, what every filter kind probes with): computed
/// once for a lookup that asks several tables' filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyHash(u64);

impl KeyHash {
    /// The hash of `user_key`.
    #[inline]
    pub fn of(user_key: &[u8]) -> Self {
        KeyHash(crate::filter::key_hash(user_key))
    }
}

/// What the Bloom filter said about a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterAnswer {
    /// The key is certainly not in the table; no data block was read.
    Absent,
    /// The key may be in the table.
    MayContain,
    /// The table has no usable filter (written without one, unknown kind, or damaged):
    /// every key "may" be present.
    NoFilter,
}

/// How a point lookup was answered, for statistics ("Bloom useful", "false positive")
/// and tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupTrace {
    /// The filter's answer.
    pub filter: FilterAnswer,
    /// The data block consulted, if any.
    pub data_block: Option<BlockHandle>,
    /// Whether that block came from the block cache.
    pub cache_hit: bool,
}

/// The state of a table's filter, for inspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterStatus {
    /// A Bloom filter is loaded.
    Loaded {
        /// Size of the bit array.
        bits: u64,
        /// Probes per key (k).
        probes: u32,
        /// Bits set to one (about half at the optimal k).
        bits_set: u64,
        /// Whether all of a key's probes fall in one 512-bit block (filter kind 2,
        /// written by this build) rather than across the whole array (kind 1).
        blocked: bool,
    },
    /// The table was written without a filter.
    Empty,
    /// The filter block is intact but of a kind this build does not know (a newer
    /// writer may add kinds without a format version change): lookups ignore it, and
    /// it is not damage.
    UnknownKind {
        /// The kind byte.
        kind: u8,
    },
    /// The filter block is damaged; lookups ignore it.
    Unusable {
        /// Why.
        reason: String,
    },
}

/// One index entry, for inspection: the data block and its separator key (an internal
/// key `>=` every key in the block and `<` every key of the next block).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry<'a> {
    /// The separator, an encoded internal key.
    pub separator: &'a [u8],
    /// Where the data block lies.
    pub handle: BlockHandle,
}

/// What [`Table::verify`] checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Data blocks read and verified.
    pub data_blocks: u64,
    /// Entries decoded.
    pub entries: u64,
}

enum Filter {
    Loaded(BloomFilter),
    Empty,
    UnknownKind(u8),
    Unusable(String),
}

/// The decoded index: separators in one buffer, and each data block's handle.
struct Index {
    keys: Vec<u8>,
    /// (end of the separator in `keys`, block handle); separator `i` starts where
    /// separator `i - 1` ends.
    entries: Vec<(usize, BlockHandle)>,
    /// Per separator, the first 8 bytes of its user key (see [`user_key_prefix`]): a
    /// dense array the search runs on, touching the keys only among separators that
    /// share the target's prefix.
    prefixes: Vec<u64>,
    /// The first and the next-to-last prefix: the ends the search's first guess is
    /// interpolated between, kept here so that making it reads nothing cold (see
    /// [`Index::lower_bound`] for why not the last).
    guide: (u64, u64),
}

/// The first 8 bytes of an internal key's user key as a big-endian integer,
/// zero-padded: non-decreasing in internal-key order, so a smaller prefix means a smaller
/// key and only equal prefixes need the keys compared.
fn user_key_prefix(internal_key: &[u8]) -> u64 {
    prefix_of(strata_core::key::user_key(internal_key))
}

/// The first 8 bytes of `user_key` as a big-endian integer, zero-padded.
fn prefix_of(user_key: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    let n = user_key.len().min(8);
    if let (Some(dst), Some(src)) = (head.get_mut(..n), user_key.get(..n)) {
        dst.copy_from_slice(src);
    }
    u64::from_be_bytes(head)
}

impl Index {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn separator(&self, i: usize) -> &[u8] {
        let start = match i.checked_sub(1) {
            Some(p) => self.entries.get(p).map_or(0, |e| e.0),
            None => 0,
        };
        let end = self.entries.get(i).map_or(start, |e| e.0);
        self.keys.get(start..end).unwrap_or_default()
    }

    fn handle(&self, i: usize) -> Option<BlockHandle> {
        self.entries.get(i).map(|e| e.1)
    }

    /// The first block whose separator is `>= target`: the only block that can hold
    /// the first entry `>= target`.
    fn find(&self, target: &[u8]) -> Option<usize> {
        let tp = user_key_prefix(target);
        // Separators with a smaller prefix are below the target, with a larger one above.
        let mut lo = self.lower_bound(tp);
        let mut hi = crate::search::run_end(&self.prefixes, lo, tp);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if compare_keys(self.separator(mid), target).is_lt() {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo < self.entries.len()).then_some(lo)
    }

    /// The first separator whose prefix is `>= prefix`, or `len()`.
    ///
    /// The last separator is usually far above the table's keys: the builder makes it
    /// the shortest key past the last one (`docs/format/sstable.md`), so for 16-byte
    /// keys that begin with a counter it is a one-byte key whose prefix dwarfs every
    /// other. Interpolating up to it would guess near the start for every target and
    /// leave the search to bisect most of the index (at 50M keys, 14 cache misses a
    /// lookup). So the search runs over the others, and the last is asked only when the
    /// target lies above them all.
    fn lower_bound(&self, prefix: u64) -> usize {
        let Some((&last, body)) = self.prefixes.split_last() else {
            return 0;
        };
        let i = crate::search::lower_bound_from(body, prefix, self.first_guess(prefix));
        if i == body.len() && last < prefix {
            i + 1
        } else {
            i
        }
    }

    /// Starts loading the separators and the handle the search for `prefix` reads
    /// first (see [`Table::prefetch`]).
    fn prefetch(&self, prefix: u64) {
        let guess = self.first_guess(prefix);
        std::hint::black_box(self.prefixes.get(guess).copied());
        std::hint::black_box(self.entries.get(guess).map(|e| e.1.offset));
    }

    /// Where the search for `prefix` starts among all separators but the last (the ones
    /// [`lower_bound`](Self::lower_bound) searches, and so the ones `prefetch` loads).
    fn first_guess(&self, prefix: u64) -> usize {
        let body_len = self.prefixes.len().saturating_sub(1);
        crate::search::estimate(self.guide.0, self.guide.1, body_len, prefix)
    }
}

/// An open, immutable table file.
///
/// Holds the footer, properties, index and filter in memory; data blocks are read on
/// demand through the [`BlockCache`] if one is given. Safe to share between threads
/// (`Arc<Table>`): lookups and iterators take `&self`/an `Arc` and never lock anything
/// but a cache shard.
pub struct Table {
    file: Arc<dyn RandomAccessFile>,
    file_number: u64,
    /// The block cache data blocks go through, except those `uncached_up_to` spares.
    cache: Option<Arc<BlockCache>>,
    /// Data blocks up to this size (with their trailer) bypass the cache: a mapped
    /// table's raw blocks (see [`Table::open`]); 0 for every other table.
    uncached_up_to: usize,
    footer: Footer,
    properties: TableProperties,
    index: Index,
    filter: Filter,
    /// The range tombstones (version 3 tables; empty otherwise), decoded at open.
    range_tombstones: Arc<FragmentedTombstones>,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("path", &self.file.path())
            .field("file_number", &self.file_number)
            .field("data_blocks", &self.index.len())
            .field("entries", &self.properties.entry_count)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// Buffers for point lookups (seek key, block key), reused so a lookup allocates
    /// nothing.
    static SCRATCH: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

impl Table {
    /// Opens the table in `file`, identified as `file_number` in the block cache (so
    /// the number must be unique among the tables sharing `cache`, and never reused).
    ///
    /// Validates the footer (magic, checksum, version: a newer one is
    /// `Error::NotSupported`), then loads the properties, index and filter blocks. Any
    /// damage is `Error::Corruption` naming the file and offset — except in the filter,
    /// which is then ignored (lookups read data blocks instead; [`verify`](Self::verify)
    /// still reports it).
    pub fn open(
        file: Arc<dyn RandomAccessFile>,
        file_number: u64,
        cache: Option<Arc<BlockCache>>,
    ) -> Result<Arc<Table>> {
        let path = file.path().to_path_buf();
        let footer = Footer::read(&path, file.len(), |offset, len| {
            let mut buf = vec![0; len];
            file.read_exact_at(offset, &mut buf)?;
            Ok(buf)
        })?;
        let props = read_block_contents(&*file, footer.properties, footer.file_id)?;
        let properties = TableProperties::decode(&props)
            .map_err(|reason| Error::corruption(&path, footer.properties.offset, reason))?;
        let index = decode_index(&*file, &footer, &properties)?;
        let filter = match read_block_contents(&*file, footer.filter, footer.file_id) {
            Ok(contents) => match BloomFilter::decode(contents) {
                Ok(f) => Filter::Loaded(f),
                Err(FilterDecodeError::Empty) => Filter::Empty,
                Err(FilterDecodeError::UnknownKind(kind)) => Filter::UnknownKind(kind),
                Err(e) => Filter::Unusable(format!("{e:?}")),
            },
            // Rule: a damaged filter means "may contain", never a false negative.
            Err(e) if e.is_corruption() => Filter::Unusable(e.to_string()),
            Err(e) => return Err(e),
        };
        let range_tombstones = match footer.range_del {
            None => FragmentedTombstones::empty(),
            Some(handle) => {
                let contents = read_block_contents(&*file, handle, footer.file_id)?;
                decode_range_del_block(&contents)
                    .map_err(|e| Error::corruption(&path, handle.offset, e.to_string()))?
            }
        };
        // A mapped table's raw blocks are copied out of the page cache at memory speed,
        // which measured faster than a block-cache hit (docs/benchmarks.md): caching
        // them again would spend memory twice to read them slower. Compressed blocks
        // still go through the cache, which holds them decompressed, and so do blocks
        // too large to be read through the mapping.
        let uncached_up_to = match properties.compression {
            Compression::None => file.mapped_read_limit(),
            _ => 0,
        };
        Ok(Arc::new(Table {
            file,
            file_number,
            cache,
            uncached_up_to,
            footer,
            properties,
            index,
            filter,
            range_tombstones: Arc::new(range_tombstones),
        }))
    }

    /// Whether the table may hold `user_key`, from the Bloom filter alone (no I/O).
    /// False means certainly not.
    #[inline]
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.filter_answer(KeyHash::of(user_key)) != FilterAnswer::Absent
    }

    fn filter_answer(&self, hash: KeyHash) -> FilterAnswer {
        match &self.filter {
            Filter::Loaded(f) if f.may_contain_hash(hash.0) => FilterAnswer::MayContain,
            Filter::Loaded(_) => FilterAnswer::Absent,
            Filter::Empty | Filter::UnknownKind(_) | Filter::Unusable(_) => FilterAnswer::NoFilter,
        }
    }

    /// Starts loading what a lookup of `user_key` (whose hash is `hash`) reads first:
    /// the part of the filter it probes and the index entries its search starts at (see
    /// [`get_versioned_hashed`](Self::get_versioned_hashed)). A caller about to ask
    /// several tables for one key calls this on each of them first, so that their cache
    /// misses (in a database larger than the CPU caches, each of these is one) overlap
    /// instead of following one another.
    pub fn prefetch(&self, user_key: &[u8], hash: KeyHash) {
        if let Filter::Loaded(f) = &self.filter {
            f.prefetch_hash(hash.0);
        }
        self.index.prefetch(prefix_of(user_key));
    }

    /// The newest entry for `user_key` with sequence `<= snapshot`: its value, a
    /// tombstone, or absent. Asks the filter first; reads at most one data block.
    pub fn get(&self, user_key: &[u8], snapshot: SequenceNumber) -> Result<Lookup> {
        self.get_traced(user_key, snapshot).map(|(l, _)| l)
    }

    /// The table's range tombstones, fragmented (empty for tables without any).
    /// They are not consulted by [`get`](Self::get), which answers for point entries
    /// alone: the engine weighs them against entries of every layer.
    pub fn range_tombstones(&self) -> &Arc<FragmentedTombstones> {
        &self.range_tombstones
    }

    /// [`get`](Self::get), also saying what the filter answered and which block was
    /// read.
    pub fn get_traced(
        &self,
        user_key: &[u8],
        snapshot: SequenceNumber,
    ) -> Result<(Lookup, LookupTrace)> {
        self.get_versioned(user_key, snapshot)
            .map(|(found, trace)| (found.map_or(Lookup::Absent, |(_, l)| l), trace))
    }

    /// [`get_traced`](Self::get_traced) with the sequence number of the entry found.
    pub fn get_versioned(
        &self,
        user_key: &[u8],
        snapshot: SequenceNumber,
    ) -> Result<(Option<(SequenceNumber, Lookup)>, LookupTrace)> {
        self.get_versioned_hashed(user_key, KeyHash::of(user_key), snapshot)
    }

    /// [`get_versioned`](Self::get_versioned) with the key's filter hash computed by
    /// the caller: a lookup that asks several tables hashes the key once.
    pub fn get_versioned_hashed(
        &self,
        user_key: &[u8],
        hash: KeyHash,
        snapshot: SequenceNumber,
    ) -> Result<(Option<(SequenceNumber, Lookup)>, LookupTrace)> {
        debug_assert_eq!(hash, KeyHash::of(user_key), "a hash of another key");
        let mut trace = LookupTrace {
            filter: self.filter_answer(hash),
            data_block: None,
            cache_hit: false,
        };
        if trace.filter == FilterAnswer::Absent {
            return Ok((None, trace));
        }
        let snapshot = snapshot.min(MAX_SEQUENCE);
        let (mut target, key_buf) = SCRATCH.with(RefCell::take);
        target.clear();
        encode_internal_key(&mut target, user_key, snapshot, ValueKind::FOR_SEEK);
        let mut key_buf = Some(key_buf);
        let result = self.get_in_block(&target, user_key, snapshot, &mut trace, &mut key_buf);
        SCRATCH.with(|s| s.replace((target, key_buf.unwrap_or_default())));
        result.map(|l| (l, trace))
    }

    fn get_in_block(
        &self,
        target: &[u8],
        user_key: &[u8],
        snapshot: SequenceNumber,
        trace: &mut LookupTrace,
        key_buf: &mut Option<Vec<u8>>,
    ) -> Result<Option<(SequenceNumber, Lookup)>> {
        let Some(handle) = self.index.find(target).and_then(|i| self.index.handle(i)) else {
            return Ok(None);
        };
        trace.data_block = Some(handle);
        let (block, hit) = self.data_block(handle, true)?;
        trace.cache_hit = hit;
        let mut it = BlockIter::with_key_buffer(block, key_buf.take().unwrap_or_default());
        let found = it.seek(target);
        let answer = match found {
            Err(e) => Err(self.block_error(handle, e)),
            // Past the block's end: the separator lies between this block and the next
            // one's user key, so no version of `user_key` follows.
            Ok(()) if !it.valid() => Ok(None),
            Ok(()) => match ParsedInternalKey::parse(it.key()) {
                None => Err(Error::corruption(
                    self.path(),
                    handle.offset,
                    "malformed internal key in data block",
                )),
                Some(p) if p.user_key != user_key => Ok(None),
                Some(p) if p.seq > snapshot => Err(Error::corruption(
                    self.path(),
                    handle.offset,
                    "data block entries out of order",
                )),
                Some(p) if p.kind.needs_v4() && !self.allows_merge_operands() => {
                    Err(self.v4_kind_in_old_version(p.kind, handle.offset))
                }
                Some(p) => match p.kind {
                    ValueKind::Put => Ok(Some((p.seq, Lookup::Found(it.value_bytes())))),
                    ValueKind::Delete => Ok(Some((p.seq, Lookup::Deleted))),
                    ValueKind::Merge => Ok(Some((p.seq, Lookup::Merge))),
                    ValueKind::ExpiringPut => {
                        let stored = it.value_bytes();
                        match split_expiring(&stored) {
                            Some((expires_at_ms, _)) => Ok(Some((
                                p.seq,
                                Lookup::Expiring {
                                    expires_at_ms,
                                    value: stored.slice(EXPIRY_LEN..),
                                },
                            ))),
                            None => Err(Error::corruption(
                                self.path(),
                                handle.offset,
                                "an expiring value too short to hold its expiry",
                            )),
                        }
                    }
                },
            },
        };
        *key_buf = Some(it.into_key_buffer());
        answer
    }

    /// Whether the table's format version admits merge operands and expiring values
    /// (version 4 on): one in an older table is damage, never read as such.
    pub fn allows_merge_operands(&self) -> bool {
        self.footer.version.allows_merge_operands()
    }

    fn v4_kind_in_old_version(&self, kind: ValueKind, offset: u64) -> Error {
        let what = match kind {
            ValueKind::ExpiringPut => "expiring value",
            _ => "merge operand",
        };
        Error::corruption(
            self.path(),
            offset,
            format!(
                "{what} in a table of format version {} (it needs 4)",
                self.footer.version.as_u32()
            ),
        )
    }

    /// A data block's contents, from the cache or the file (then cached if
    /// `fill_cache`). Returns whether it was a cache hit.
    pub(crate) fn data_block(
        &self,
        handle: BlockHandle,
        fill_cache: bool,
    ) -> Result<(Block, bool)> {
        let from_mapping = usize::try_from(handle.size)
            .is_ok_and(|size| size.saturating_add(BLOCK_TRAILER_LEN) <= self.uncached_up_to);
        let cache = self.cache.as_ref().filter(|_| !from_mapping);
        if let Some(cache) = cache
            && let Some(contents) = cache.get(self.file_number, handle.offset)
        {
            return Ok((self.parse_block(contents, handle)?, true));
        }
        let contents = read_block_contents(&*self.file, handle, self.footer.file_id)?;
        let block = self.parse_block(contents.clone(), handle)?;
        if fill_cache && let Some(cache) = cache {
            cache.insert(self.file_number, handle.offset, contents);
        }
        Ok((block, false))
    }

    /// A data block from bytes the caller read itself (`raw`: the block and its trailer,
    /// as [`read_raw`](Self::read_raw) returns them): checked, decompressed and parsed,
    /// never cached.
    pub(crate) fn block_from_raw(&self, raw: Bytes, handle: BlockHandle) -> Result<Block> {
        let contents = decode_block_contents(self.path(), raw, handle, self.footer.file_id)?;
        self.parse_block(contents, handle)
    }

    /// Reads `buf.len()` bytes of the file at `offset` (a run of whole blocks with their
    /// trailers, for read-ahead).
    pub(crate) fn read_raw(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let in_file = offset
            .checked_add(buf.len() as u64)
            .is_some_and(|end| end <= self.file.len());
        if !in_file {
            return Err(Error::corruption(
                self.path(),
                offset,
                format!("read of {} bytes runs past the end of the file", buf.len()),
            ));
        }
        self.file.read_exact_at(offset, buf)
    }

    fn parse_block(&self, contents: Bytes, handle: BlockHandle) -> Result<Block> {
        Block::new(contents).map_err(|e| self.block_error(handle, e))
    }

    pub(crate) fn block_error(&self, handle: BlockHandle, e: BlockError) -> Error {
        Error::corruption(
            self.path(),
            handle.offset,
            format!("{} (byte {} of the block's contents)", e.reason, e.pos),
        )
    }

    /// A cursor over every entry, owning a reference to the table (no lifetime). Reads
    /// go through the block cache and fill it.
    pub fn iter(self: &Arc<Self>) -> TableIter {
        TableIter::new(Arc::clone(self), true)
    }

    /// Like [`iter`](Self::iter), but blocks read from the file are not added to the
    /// cache: for compaction inputs and verification, which would flush the hot set.
    pub fn iter_uncached(self: &Arc<Self>) -> TableIter {
        TableIter::new(Arc::clone(self), false)
    }

    pub(crate) fn index_len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn index_find(&self, target: &[u8]) -> Option<usize> {
        self.index.find(target)
    }

    pub(crate) fn index_handle(&self, i: usize) -> Option<BlockHandle> {
        self.index.handle(i)
    }

    /// What the table holds, as recorded by its builder.
    pub fn properties(&self) -> &TableProperties {
        &self.properties
    }

    /// The decoded footer.
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    /// The index entries, in order: one per data block.
    pub fn index_entries(&self) -> impl ExactSizeIterator<Item = IndexEntry<'_>> + '_ {
        (0..self.index.len()).map(|i| IndexEntry {
            separator: self.index.separator(i),
            handle: self.index.handle(i).unwrap_or_default(),
        })
    }

    /// The filter's state and shape.
    pub fn filter_status(&self) -> FilterStatus {
        match &self.filter {
            Filter::Loaded(f) => FilterStatus::Loaded {
                bits: f.num_bits(),
                probes: f.probes(),
                bits_set: f.bits_set(),
                blocked: f.is_blocked(),
            },
            Filter::Empty => FilterStatus::Empty,
            Filter::UnknownKind(kind) => FilterStatus::UnknownKind { kind: *kind },
            Filter::Unusable(reason) => FilterStatus::Unusable {
                reason: reason.clone(),
            },
        }
    }

    /// The number the table is known by in the block cache.
    pub fn file_number(&self) -> u64 {
        self.file_number
    }

    /// The file's length in bytes.
    pub fn file_size(&self) -> u64 {
        self.file.len()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Reads and checks one block of this table, bypassing the cache: its trailer
    /// checksum, its decompression and, decoding every entry, its layout (restart
    /// array, prefix compression, key lengths). Returns the number of entries.
    ///
    /// For inspection tools that want *every* damaged block of a table (with
    /// [`index_entries`](Self::index_entries) for the data blocks), where
    /// [`verify`](Self::verify) stops at the first. Read-only.
    pub fn verify_block(&self, handle: BlockHandle) -> Result<u64> {
        let contents = read_block_contents(&*self.file, handle, self.footer.file_id)?;
        let mut it = BlockIter::new(self.parse_block(contents, handle)?);
        it.seek_to_first()
            .map_err(|e| self.block_error(handle, e))?;
        let mut entries = 0u64;
        while it.valid() {
            entries += 1;
            it.next().map_err(|e| self.block_error(handle, e))?;
        }
        Ok(entries)
    }

    /// Reads and checks the footer of the table in `file` (magic, length, checksum,
    /// version) without loading anything else: for tools that report what can still
    /// be read of a table whose meta blocks are damaged. Read-only.
    pub fn read_footer(file: &dyn RandomAccessFile) -> Result<Footer> {
        Footer::read(file.path(), file.len(), |offset, len| {
            let mut buf = vec![0; len];
            file.read_exact_at(offset, &mut buf)?;
            Ok(buf)
        })
    }

    /// Reads and checks every block (bypassing the cache): checksums, entry
    /// encoding, key order, and the counts and key range against the properties. A
    /// damaged filter — ignored by lookups — is reported here as corruption.
    pub fn verify(self: &Arc<Self>) -> Result<VerifyReport> {
        // The filter's checksum (an unknown filter kind is not damage: a newer writer
        // may add kinds without a format version change).
        read_block_contents(&*self.file, self.footer.filter, self.footer.file_id)?;
        let mut it = self.iter_uncached();
        it.seek_to_first()?;
        let (mut entries, mut tombstones) = (0u64, 0u64);
        let mut first = None;
        let mut prev: Vec<u8> = Vec::new();
        let props_offset = self.footer.properties.offset;
        let bad = |reason: String| Error::corruption(self.path(), props_offset, reason);
        while it.valid() {
            let key = it.key();
            let parsed = ParsedInternalKey::parse(key)
                .ok_or_else(|| bad(format!("malformed key after {entries} entries")))?;
            if entries > 0 && !compare_internal_keys(&prev, key).is_lt() {
                return Err(bad(format!("keys out of order at entry {entries}")));
            }
            match parsed.kind {
                ValueKind::Delete => tombstones += 1,
                kind if kind.needs_v4() && !self.allows_merge_operands() => {
                    return Err(self.v4_kind_in_old_version(kind, props_offset));
                }
                ValueKind::ExpiringPut if split_expiring(it.value()).is_none() => {
                    return Err(bad(format!(
                        "entry {entries}: an expiring value too short to hold its expiry"
                    )));
                }
                ValueKind::Merge | ValueKind::Put | ValueKind::ExpiringPut => {}
            }
            if first.is_none() {
                first = Some(key.to_vec());
            }
            prev.clear();
            prev.extend_from_slice(key);
            entries += 1;
            it.next()?;
        }
        let p = &self.properties;
        if entries != p.entry_count || tombstones != p.tombstone_count {
            return Err(bad(format!(
                "{entries} entries ({tombstones} tombstones) found, properties say {} ({})",
                p.entry_count, p.tombstone_count
            )));
        }
        // With range tombstones the recorded range also covers them, so the entries
        // need only lie inside it.
        let in_range = if self.range_tombstones.is_empty() {
            first.as_deref() == Some(p.smallest_key.as_bytes()) && prev == p.largest_key.as_bytes()
        } else {
            let first_ok = first
                .as_deref()
                .is_none_or(|f| compare_internal_keys(p.smallest_key.as_bytes(), f).is_le());
            let last_ok =
                entries == 0 || compare_internal_keys(&prev, p.largest_key.as_bytes()).is_le();
            let bounds_ok = self
                .range_tombstones
                .key_bounds()
                .is_some_and(|(lo, hi)| p.smallest_key <= lo && hi <= p.largest_key);
            first_ok && last_ok && bounds_ok
        };
        if !in_range {
            return Err(bad("key range differs from the properties".into()));
        }
        Ok(VerifyReport {
            data_blocks: self.index.len() as u64,
            entries,
        })
    }
}

/// Reads a block, checks its trailer and returns its (decompressed) contents.
fn read_block_contents(
    file: &dyn RandomAccessFile,
    handle: BlockHandle,
    file_id: u64,
) -> Result<Bytes> {
    let end = handle
        .end_with_trailer()
        .filter(|&end| end <= file.len())
        .ok_or_else(|| {
            Error::corruption(
                file.path(),
                handle.offset,
                format!(
                    "block of {} bytes runs past the end of the file",
                    handle.size
                ),
            )
        })?;
    let raw = file.read_bytes(handle.offset, (end - handle.offset) as usize)?;
    decode_block_contents(file.path(), raw, handle, file_id)
}

/// Checks a block read with its trailer (`raw`: `handle.size` bytes, then the trailer)
/// and returns its (decompressed) contents.
fn decode_block_contents(
    path: &Path,
    raw: Bytes,
    handle: BlockHandle,
    file_id: u64,
) -> Result<Bytes> {
    let corrupt = |reason: String| Error::corruption(path, handle.offset, reason);
    let size = handle.size as usize;
    let (stored, trailer) = raw.split_at_checked(size).unwrap_or((&[], &[]));
    let (Some(&kind), Some(crc)) = (trailer.first(), read_u32_le(trailer, 1)) else {
        return Err(corrupt("short block trailer".into()));
    };
    if block_checksum(stored, kind, handle.offset, file_id) != crc {
        return Err(corrupt("block checksum mismatch".into()));
    }
    match Compression::from_u8(kind) {
        Some(Compression::None) => Ok(raw.slice(..size)),
        Some(Compression::Lz4) => {
            let (len, n) =
                get_varint64(stored).ok_or_else(|| corrupt("bad uncompressed length".into()))?;
            let input = stored.get(n..).unwrap_or_default();
            if len > (input.len() as u64).saturating_mul(LZ4_MAX_RATIO) + 64 {
                return Err(corrupt(format!(
                    "uncompressed length {len} impossible for {} compressed bytes",
                    input.len()
                )));
            }
            let mut out = vec![0u8; len as usize];
            match lz4_flex::block::decompress_into(input, &mut out) {
                Ok(written) if written as u64 == len => Ok(Bytes::from(out)),
                Ok(written) => Err(corrupt(format!(
                    "block decompressed to {written} bytes, expected {len}"
                ))),
                Err(e) => Err(corrupt(format!("LZ4 decompression failed: {e}"))),
            }
        }
        Some(Compression::Zstd) => decode_zstd(stored, &corrupt),
        None => Err(corrupt(format!("unknown compression type {kind}"))),
    }
}

/// A zstd block's contents: the uncompressed length (LEB128), then one zstd frame.
#[cfg(feature = "zstd")]
fn decode_zstd(stored: &[u8], corrupt: &dyn Fn(String) -> Error) -> Result<Bytes> {
    let (len, n) = get_varint64(stored).ok_or_else(|| corrupt("bad uncompressed length".into()))?;
    let input = stored.get(n..).unwrap_or_default();
    // The checksum already vouches for these bytes; the checks keep a crafted file
    // from making us allocate what its frame does not hold: the stored length must be
    // the one the frame declares, and within what zstd can reach from this input.
    let declared = zstd::zstd_safe::get_frame_content_size(input)
        .ok()
        .flatten();
    if declared != Some(len) || len > (input.len() as u64).saturating_mul(ZSTD_MAX_RATIO) + 64 {
        return Err(corrupt(format!(
            "uncompressed length {len} does not match the zstd frame ({declared:?}, {} bytes)",
            input.len()
        )));
    }
    thread_local! {
        // A decompression context per thread, reused: making one per block costs more
        // than decompressing a 4 KiB block (5× slower point reads when measured).
        static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let mut out = vec![0u8; len as usize];
    let decompressed = DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        match slot.as_mut() {
            Some(d) => d.decompress_to_buffer(input, &mut out),
            None => Err(std::io::Error::other("no zstd context")),
        }
    });
    match decompressed {
        Ok(written) if written as u64 == len => Ok(Bytes::from(out)),
        Ok(written) => Err(corrupt(format!(
            "block decompressed to {written} bytes, expected {len}"
        ))),
        Err(e) => Err(corrupt(format!("zstd decompression failed: {e}"))),
    }
}

/// Without the codec a zstd block cannot be read; said plainly rather than as damage
/// (the table's format version already announced zstd).
#[cfg(not(feature = "zstd"))]
fn decode_zstd(_stored: &[u8], _corrupt: &dyn Fn(String) -> Error) -> Result<Bytes> {
    Err(Error::NotSupported(
        "the table is zstd-compressed and this build lacks the `zstd` feature".into(),
    ))
}

/// Decodes and validates the index block: separators are internal keys in strictly
/// increasing order, and the data blocks they point at tile the file from offset 0 up
/// to the filter block.
fn decode_index(
    file: &dyn RandomAccessFile,
    footer: &Footer,
    properties: &TableProperties,
) -> Result<Index> {
    let handle = footer.index;
    let corrupt = |reason: String| Error::corruption(file.path(), handle.offset, reason);
    let contents = read_block_contents(file, handle, footer.file_id)?;
    let block_error =
        |e: BlockError| corrupt(format!("{} (byte {} of the index block)", e.reason, e.pos));
    let mut it = BlockIter::new(Block::new(contents).map_err(block_error)?);
    it.seek_to_first().map_err(block_error)?;
    let mut index = Index {
        keys: Vec::new(),
        entries: Vec::new(),
        prefixes: Vec::new(),
        guide: (0, 0),
    };
    let mut expected_offset = 0u64;
    let mut prev_start = 0;
    while it.valid() {
        let separator = it.key();
        if ParsedInternalKey::parse(separator).is_none() {
            return Err(corrupt(format!(
                "index entry {} has a malformed separator",
                index.len()
            )));
        }
        if !index.entries.is_empty()
            && !compare_internal_keys(index.keys.get(prev_start..).unwrap_or_default(), separator)
                .is_lt()
        {
            return Err(corrupt(format!("index entry {} out of order", index.len())));
        }
        let block = BlockHandle::decode_varint(it.value())
            .filter(|h| h.offset == expected_offset)
            .ok_or_else(|| corrupt(format!("index entry {} has a bad handle", index.len())))?;
        expected_offset = block
            .end_with_trailer()
            .filter(|&end| end <= footer.filter.offset)
            .ok_or_else(|| corrupt(format!("index entry {} points past the data", index.len())))?;
        prev_start = index.keys.len();
        index.keys.extend_from_slice(separator);
        index.entries.push((index.keys.len(), block));
        index.prefixes.push(user_key_prefix(separator));
        it.next().map_err(block_error)?;
    }
    if expected_offset != footer.filter.offset {
        return Err(corrupt(format!(
            "data blocks end at {expected_offset}, but the filter starts at {}",
            footer.filter.offset
        )));
    }
    if let Some((_, body)) = index.prefixes.split_last() {
        index.guide = (
            body.first().copied().unwrap_or_default(),
            body.last().copied().unwrap_or_default(),
        );
    }
    if index.len() as u64 != properties.data_block_count {
        return Err(corrupt(format!(
            "index has {} entries, properties say {} data blocks",
            index.len(),
            properties.data_block_count
        )));
    }
    Ok(index)
}
