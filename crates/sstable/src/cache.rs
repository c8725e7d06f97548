//! The block cache shared by every open table.
//!
//! Holds verified, decompressed data blocks keyed by (file number, block offset) and
//! bounded by their total size in bytes. It is a thin wrapper over `quick_cache`'s
//! concurrent cache: sharded (lookups on different shards never contend, and a hit
//! takes only a shard's read lock), weighted by bytes, S3-FIFO eviction (resists a
//! scan flushing the hot set better than LRU), no background threads.
//!
//! File numbers are never reused, so a deleted table's blocks need no invalidation:
//! nobody asks for them again and they age out.

use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// Bytes charged per entry beyond the block itself: the key, the `Bytes` handle and the
/// cache's own bookkeeping, roughly.
const ENTRY_OVERHEAD_BYTES: u64 = 64;

/// Typical block size, used only to pre-size the cache's tables.
const TYPICAL_BLOCK_BYTES: u64 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct BlockKey {
    file_number: u64,
    offset: u64,
}

#[derive(Clone, Copy, Debug)]
struct ByteWeighter;

impl Weighter<BlockKey, Bytes> for ByteWeighter {
    fn weight(&self, _key: &BlockKey, block: &Bytes) -> u64 {
        block.len() as u64 + ENTRY_OVERHEAD_BYTES
    }
}

/// A sharded cache of decoded blocks, bounded in bytes.
///
/// Safe to share between threads (`Arc<BlockCache>`); every method takes `&self`.
pub struct BlockCache {
    inner: Cache<BlockKey, Bytes, ByteWeighter>,
    capacity_bytes: u64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity_bytes", &self.capacity_bytes)
            .field("usage_bytes", &self.usage_bytes())
            .field("blocks", &self.len())
            .finish()
    }
}

impl BlockCache {
    /// A cache holding at most about `capacity_bytes` bytes of blocks.
    pub fn new(capacity_bytes: u64) -> Self {
        let items = (capacity_bytes / (TYPICAL_BLOCK_BYTES + ENTRY_OVERHEAD_BYTES)).max(16);
        BlockCache {
            inner: Cache::with_weighter(
                usize::try_from(items).unwrap_or(usize::MAX),
                capacity_bytes,
                ByteWeighter,
            ),
            capacity_bytes,
        }
    }

    /// The cached contents of the block at `offset` of table `file_number`.
    #[inline]
    pub fn get(&self, file_number: u64, offset: u64) -> Option<Bytes> {
        self.inner.get(&BlockKey {
            file_number,
            offset,
        })
    }

    /// Caches a block's verified contents.
    pub fn insert(&self, file_number: u64, offset: u64, block: Bytes) {
        self.inner.insert(
            BlockKey {
                file_number,
                offset,
            },
            block,
        );
    }

    /// Bytes currently charged (blocks plus per-entry overhead).
    pub fn usage_bytes(&self) -> u64 {
        self.inner.weight()
    }

    /// The configured bound.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    /// Number of cached blocks.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no block is cached.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_file_and_offset() {
        let c = BlockCache::new(1 << 20);
        c.insert(1, 0, Bytes::from_static(b"a"));
        c.insert(2, 0, Bytes::from_static(b"b"));
        c.insert(1, 10, Bytes::from_static(b"c"));
        assert_eq!(c.get(1, 0).as_deref(), Some(&b"a"[..]));
        assert_eq!(c.get(2, 0).as_deref(), Some(&b"b"[..]));
        assert_eq!(c.get(1, 10).as_deref(), Some(&b"c"[..]));
        assert_eq!(c.get(2, 10), None);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn usage_stays_within_capacity() {
        let cap = 256 * 1024;
        let c = BlockCache::new(cap);
        for i in 0..1000u64 {
            c.insert(7, i * 4096, Bytes::from(vec![0u8; 4096]));
            assert!(c.usage_bytes() <= cap, "usage {} > {cap}", c.usage_bytes());
        }
        assert!(c.len() < 1000 && !c.is_empty());
    }
}
