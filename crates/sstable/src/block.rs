//! Data and index blocks: prefix-compressed entries with a restart array.
//!
//! Layout of a block's (uncompressed) contents — see `docs/format/sstable.md`:
//!
//! ```text
//! entry*  restart[0] u32 LE ... restart[n-1] u32 LE  n u32 LE
//! entry = shared varint32 | non_shared varint32 | value_len varint32
//!         | key[shared..] (non_shared bytes) | value (value_len bytes)
//! ```
//!
//! Every `restart_interval`-th entry is a *restart point*: it stores its whole key
//! (`shared = 0`) and its offset is listed in the restart array, so a reader can binary
//! search the restart points and then scan at most one interval. Keys are encoded
//! internal keys, in internal-key order.

use std::cmp::Ordering;

use bytes::Bytes;
use strata_core::compare_internal_keys;
use strata_core::varint::{get_varint32, put_varint32, read_u32_le};

/// [`compare_internal_keys`], deciding most comparisons on the user keys' first eight
/// bytes as one integer compare (no call into `memcmp`): the seeks' binary searches over
/// restart points and index separators are mostly such comparisons.
#[inline]
pub(crate) fn compare_keys(a: &[u8], b: &[u8]) -> Ordering {
    // An internal key of 16 bytes or more has a user key of at least 8: its first 8
    // bytes are user-key bytes, and if they differ they decide the order.
    if a.len() >= 16
        && b.len() >= 16
        && let (Some(x), Some(y)) = (a.first_chunk::<8>(), b.first_chunk::<8>())
        && x != y
    {
        return u64::from_be_bytes(*x).cmp(&u64::from_be_bytes(*y));
    }
    compare_internal_keys(a, b)
}

/// Builds one block's contents.
#[derive(Debug)]
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    since_restart: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    pub(crate) fn new(restart_interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            restart_interval: restart_interval.max(1),
            since_restart: 0,
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Appends an entry. Keys must arrive in increasing order (the table builder checks);
    /// the block's total size must stay below 4 GiB (the table builder bounds entry sizes).
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.since_restart < self.restart_interval {
            common_prefix_len(&self.last_key, key)
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.since_restart = 0;
            0
        };
        let suffix = key.get(shared..).unwrap_or_default();
        put_varint32(&mut self.buf, shared as u32);
        put_varint32(&mut self.buf, suffix.len() as u32);
        put_varint32(&mut self.buf, value.len() as u32);
        self.buf.extend_from_slice(suffix);
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(suffix);
        self.since_restart += 1;
        self.entries += 1;
    }

    /// Size of the block if it were finished now.
    pub(crate) fn estimated_len(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Appends the restart array and returns the finished contents. Call
    /// [`reset`](Self::reset) before adding again.
    pub(crate) fn finish(&mut self) -> &[u8] {
        for r in &self.restarts {
            self.buf.extend_from_slice(&r.to_le_bytes());
        }
        self.buf
            .extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        &self.buf
    }

    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.restarts.clear();
        self.restarts.push(0);
        self.since_restart = 0;
        self.last_key.clear();
        self.entries = 0;
    }
}

fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Damage found while decoding a block: the byte position inside the block's
/// (uncompressed) contents and what was wrong. The table layer adds file and offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockError {
    pub pos: usize,
    pub reason: &'static str,
}

type BlockResult<T> = std::result::Result<T, BlockError>;

fn bad<T>(pos: usize, reason: &'static str) -> BlockResult<T> {
    Err(BlockError { pos, reason })
}

/// A verified block's contents with its restart array located. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Block {
    data: Bytes,
    restarts_offset: usize,
    num_restarts: usize,
}

impl Block {
    /// Locates the restart array, checking that it fits.
    pub(crate) fn new(data: Bytes) -> BlockResult<Self> {
        let len = data.len();
        let Some(count_pos) = len.checked_sub(4) else {
            return bad(0, "block shorter than its restart count");
        };
        let num_restarts = read_u32_le(&data, count_pos).unwrap_or(0) as usize;
        let restarts_offset = num_restarts
            .checked_mul(4)
            .and_then(|n| count_pos.checked_sub(n));
        match restarts_offset {
            Some(restarts_offset) if num_restarts > 0 => Ok(Block {
                data,
                restarts_offset,
                num_restarts,
            }),
            _ => bad(count_pos, "restart count does not fit the block"),
        }
    }

    /// A stand-in holding no bytes, for an iterator that gave its block up: every
    /// position in it is invalid and every move fails cleanly.
    fn released() -> Self {
        Block {
            data: Bytes::new(),
            restarts_offset: 0,
            num_restarts: 1,
        }
    }

    /// Offset of the `i`-th restart point (checked to lie before the restart array).
    fn restart_point(&self, i: usize) -> BlockResult<usize> {
        let pos = self.restarts_offset + 4 * i;
        match read_u32_le(&self.data, pos) {
            Some(p) if (p as usize) < self.restarts_offset || self.restarts_offset == 0 => {
                Ok(p as usize)
            }
            _ => bad(pos, "restart point outside the entries"),
        }
    }

    /// The key stored whole at restart point `i`.
    fn restart_key(&self, i: usize) -> BlockResult<&[u8]> {
        let p = self.restart_point(i)?;
        let e = decode_entry(&self.data, p, self.restarts_offset)?;
        if e.shared != 0 {
            return bad(p, "restart entry shares a prefix");
        }
        Ok(self
            .data
            .get(e.key_start..e.key_start + e.non_shared)
            .unwrap_or_default())
    }
}

/// A decoded entry header: where its key suffix and value lie.
struct Entry {
    shared: usize,
    non_shared: usize,
    key_start: usize,
    value_start: usize,
    value_end: usize,
}

/// Decodes the entry at `p`, checking that it ends by `limit`.
#[inline]
fn decode_entry(data: &[u8], p: usize, limit: usize) -> BlockResult<Entry> {
    let head = data.get(p..limit).unwrap_or_default();
    let (shared, non_shared, value_len, header_len) = match head {
        // Fast path: all three numbers below 128, one byte each.
        [a, b, c, ..] if (a | b | c) < 0x80 => (*a as usize, *b as usize, *c as usize, 3),
        _ => {
            let (shared, n1) = get_varint32(head).ok_or(BlockError {
                pos: p,
                reason: "bad entry header",
            })?;
            let rest = head.get(n1..).unwrap_or_default();
            let (non_shared, n2) = get_varint32(rest).ok_or(BlockError {
                pos: p,
                reason: "bad entry header",
            })?;
            let rest = rest.get(n2..).unwrap_or_default();
            let (value_len, n3) = get_varint32(rest).ok_or(BlockError {
                pos: p,
                reason: "bad entry header",
            })?;
            (
                shared as usize,
                non_shared as usize,
                value_len as usize,
                n1 + n2 + n3,
            )
        }
    };
    let key_start = p + header_len;
    let value_start = key_start.checked_add(non_shared);
    let value_end = value_start.and_then(|v| v.checked_add(value_len));
    let (Some(value_start), Some(value_end)) = (value_start, value_end) else {
        return bad(p, "entry length overflows");
    };
    if value_end > limit {
        return bad(p, "entry runs past the entries");
    }
    Ok(Entry {
        shared,
        non_shared,
        key_start,
        value_start,
        value_end,
    })
}

/// An entry decoded while walking backwards, kept so the next `prev` pops it instead of
/// decoding its restart interval again.
#[derive(Clone, Copy, Debug)]
struct Decoded {
    current: usize,
    next: usize,
    value: (usize, usize),
    /// End of its whole key in `BlockIter::prev_keys` (it starts where the entry
    /// below's ends).
    key_end: usize,
}

/// A cursor over one block, moving both ways.
///
/// Moving backwards decodes the current entry's restart interval once, from its restart
/// point, and stacks the entries before the current one (`prev_entries`, whole keys in
/// `prev_keys`): the following `prev` calls pop them, so a backward scan decodes every
/// entry about once, as a forward one does, instead of re-scanning from the restart
/// point at every step. Any other move drops the stack.
#[derive(Debug)]
pub(crate) struct BlockIter {
    block: Block,
    /// The current entry's whole key (prefix compression undone).
    key: Vec<u8>,
    /// Offset of the current entry; `>= restarts_offset` when not on an entry.
    current: usize,
    /// Offset just past the current entry.
    next: usize,
    value: (usize, usize),
    /// Index of the restart interval holding the current entry.
    restart_index: usize,
    /// Offset of restart point `restart_index + 1` (`usize::MAX` if there is none).
    next_restart: usize,
    /// The entries of the current restart interval before the current one, in order.
    prev_entries: Vec<Decoded>,
    prev_keys: Vec<u8>,
}

impl BlockIter {
    pub(crate) fn new(block: Block) -> Self {
        Self::with_key_buffer(block, Vec::new())
    }

    /// An iterator reusing `key` (cleared) as its key buffer, to spare an allocation.
    pub(crate) fn with_key_buffer(block: Block, mut key: Vec<u8>) -> Self {
        key.clear();
        let end = block.restarts_offset;
        BlockIter {
            block,
            key,
            current: end,
            next: end,
            value: (0, 0),
            restart_index: 0,
            next_restart: usize::MAX,
            prev_entries: Vec::new(),
            prev_keys: Vec::new(),
        }
    }

    /// Points the iterator at another block, keeping its buffers.
    pub(crate) fn reset(&mut self, block: Block) {
        let end = block.restarts_offset;
        self.block = block;
        self.key.clear();
        self.current = end;
        self.next = end;
        self.value = (0, 0);
        self.restart_index = 0;
        self.next_restart = usize::MAX;
        self.drop_prev_entries();
    }

    /// Gives up the block (the iterator is then invalid until [`reset`](Self::reset)),
    /// so the caller may reuse the buffer it lives in.
    pub(crate) fn release_block(&mut self) {
        self.reset(Block::released());
    }

    fn drop_prev_entries(&mut self) {
        self.prev_entries.clear();
        self.prev_keys.clear();
    }

    /// Gives the key buffer back (for reuse by the next lookup).
    pub(crate) fn into_key_buffer(self) -> Vec<u8> {
        self.key
    }

    pub(crate) fn valid(&self) -> bool {
        self.current < self.block.restarts_offset
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    pub(crate) fn value(&self) -> &[u8] {
        self.block
            .data
            .get(self.value.0..self.value.1)
            .unwrap_or_default()
    }

    /// The value as a view of the block's bytes (no copy).
    pub(crate) fn value_bytes(&self) -> Bytes {
        self.block.data.slice(self.value.0..self.value.1)
    }

    fn invalidate(&mut self) {
        self.current = self.block.restarts_offset;
        self.next = self.block.restarts_offset;
        self.key.clear();
        self.drop_prev_entries();
    }

    fn fail<T>(&mut self, e: BlockError) -> BlockResult<T> {
        self.invalidate();
        Err(e)
    }

    fn seek_to_restart(&mut self, i: usize) -> BlockResult<()> {
        match self.block.restart_point(i) {
            Ok(p) => {
                self.key.clear();
                self.restart_index = i;
                self.next_restart = self.restart_after(i)?;
                self.current = self.block.restarts_offset;
                self.next = p;
                Ok(())
            }
            Err(e) => self.fail(e),
        }
    }

    /// Offset of restart point `i + 1`, or `usize::MAX` if `i` is the last.
    fn restart_after(&mut self, i: usize) -> BlockResult<usize> {
        if i + 1 >= self.block.num_restarts {
            return Ok(usize::MAX);
        }
        match self.block.restart_point(i + 1) {
            Ok(p) => Ok(p),
            Err(e) => self.fail(e),
        }
    }

    /// Decodes the entry at `self.next`. `Ok(false)` at the end of the block.
    fn parse_next(&mut self) -> BlockResult<bool> {
        let limit = self.block.restarts_offset;
        if self.next >= limit {
            self.invalidate();
            return Ok(false);
        }
        let p = self.next;
        let e = match decode_entry(&self.block.data, p, limit) {
            Ok(e) => e,
            Err(err) => return self.fail(err),
        };
        if e.shared > self.key.len() {
            return self.fail(BlockError {
                pos: p,
                reason: "entry shares more bytes than the previous key has",
            });
        }
        self.key.truncate(e.shared);
        self.key.extend_from_slice(
            self.block
                .data
                .get(e.key_start..e.value_start)
                .unwrap_or_default(),
        );
        self.current = p;
        self.next = e.value_end;
        self.value = (e.value_start, e.value_end);
        while self.next_restart <= p {
            self.restart_index += 1;
            self.next_restart = self.restart_after(self.restart_index)?;
        }
        Ok(true)
    }

    pub(crate) fn seek_to_first(&mut self) -> BlockResult<()> {
        self.drop_prev_entries();
        self.seek_to_restart(0)?;
        self.parse_next().map(|_| ())
    }

    pub(crate) fn seek_to_last(&mut self) -> BlockResult<()> {
        let last = self.block.num_restarts - 1;
        self.decode_interval_before(last, self.block.restarts_offset)
    }

    pub(crate) fn next(&mut self) -> BlockResult<()> {
        debug_assert!(self.valid());
        self.drop_prev_entries();
        self.parse_next().map(|_| ())
    }

    pub(crate) fn prev(&mut self) -> BlockResult<()> {
        debug_assert!(self.valid());
        if let Some(e) = self.prev_entries.pop() {
            // The entry just before the current one, decoded by an earlier `prev`.
            let start = self.prev_entries.last().map_or(0, |p| p.key_end);
            self.key.clear();
            self.key
                .extend_from_slice(self.prev_keys.get(start..e.key_end).unwrap_or_default());
            self.prev_keys.truncate(start);
            self.current = e.current;
            self.next = e.next;
            self.value = e.value;
            return Ok(());
        }
        let original = self.current;
        // Find the last restart point before the current entry.
        let mut r = self.restart_index;
        loop {
            let p = match self.block.restart_point(r) {
                Ok(p) => p,
                Err(e) => return self.fail(e),
            };
            if p < original {
                break;
            }
            if r == 0 {
                self.invalidate();
                return Ok(());
            }
            r -= 1;
        }
        self.decode_interval_before(r, original)
    }

    /// Decodes restart interval `r` up to the entry that ends at `end` (or at or past
    /// it, in a damaged block), stacking the entries before that one, and positions on
    /// it.
    fn decode_interval_before(&mut self, r: usize, end: usize) -> BlockResult<()> {
        self.drop_prev_entries();
        self.seek_to_restart(r)?;
        loop {
            if !self.parse_next()? {
                // Invalid (ran off the block): `parse_next` dropped the stack.
                return Ok(());
            }
            if self.next >= end {
                return Ok(());
            }
            self.prev_keys.extend_from_slice(&self.key);
            self.prev_entries.push(Decoded {
                current: self.current,
                next: self.next,
                value: self.value,
                key_end: self.prev_keys.len(),
            });
        }
    }

    /// Positions on the first entry whose key is `>= target` (internal-key order);
    /// invalid if every key in the block is smaller.
    pub(crate) fn seek(&mut self, target: &[u8]) -> BlockResult<()> {
        self.drop_prev_entries();
        // Binary search for the last restart point whose key is < target.
        let mut left = 0;
        let mut right = self.block.num_restarts - 1;
        while left < right {
            let mid = left + (right - left).div_ceil(2);
            let key = match self.block.restart_key(mid) {
                Ok(k) => k,
                Err(e) => return self.fail(e),
            };
            if compare_keys(key, target) == Ordering::Less {
                left = mid;
            } else {
                right = mid - 1;
            }
        }
        self.seek_to_restart(left)?;
        while self.parse_next()? {
            if compare_keys(&self.key, target) != Ordering::Less {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use strata_core::{InternalKey, ValueKind};

    fn build(entries: &[(Vec<u8>, Vec<u8>)], interval: usize) -> Block {
        let mut b = BlockBuilder::new(interval);
        for (k, v) in entries {
            b.add(k, v);
        }
        Block::new(Bytes::copy_from_slice(b.finish())).unwrap()
    }

    fn entries() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
        proptest::collection::btree_map(
            (proptest::collection::vec(0u8..4, 0..6), 0u64..5),
            proptest::collection::vec(any::<u8>(), 0..200),
            1..60,
        )
        .prop_map(|m| {
            let mut v: Vec<_> = m
                .into_iter()
                .map(|((k, s), v)| (InternalKey::new(&k, s, ValueKind::Put).into_bytes(), v))
                .collect();
            v.sort_by(|a, b| compare_internal_keys(&a.0, &b.0));
            v
        })
    }

    proptest! {
        #[test]
        fn block_iterates_both_ways_and_seeks(es in entries(), interval in 1usize..5,
                                              targets in proptest::collection::vec((proptest::collection::vec(0u8..4, 0..6), 0u64..6), 0..10)) {
            let block = build(&es, interval);
            let mut it = BlockIter::new(block);
            it.seek_to_first().unwrap();
            let mut fwd = Vec::new();
            while it.valid() {
                fwd.push((it.key().to_vec(), it.value().to_vec()));
                it.next().unwrap();
            }
            prop_assert_eq!(&fwd, &es);
            it.seek_to_last().unwrap();
            let mut back = Vec::new();
            while it.valid() {
                back.push((it.key().to_vec(), it.value_bytes().to_vec()));
                it.prev().unwrap();
            }
            back.reverse();
            prop_assert_eq!(&back, &es);
            for (k, s) in targets {
                let t = InternalKey::new(&k, s, ValueKind::Put).into_bytes();
                it.seek(&t).unwrap();
                let expected = es.iter().find(|(ek, _)| compare_internal_keys(ek, &t) != Ordering::Less);
                match expected {
                    Some((ek, ev)) => {
                        prop_assert!(it.valid());
                        prop_assert_eq!(it.key(), &ek[..]);
                        prop_assert_eq!(it.value(), &ev[..]);
                    }
                    None => prop_assert!(!it.valid()),
                }
            }
        }

        /// Random walks (moves both ways, direction switches anywhere, including on
        /// restart points, seeks in between) against a position in the sorted entries.
        #[test]
        fn block_walks_match_a_model(es in entries(), interval in 1usize..6,
                                     moves in proptest::collection::vec((0u8..8, proptest::collection::vec(0u8..4, 0..6), 0u64..6), 1..120)) {
            let mut it = BlockIter::new(build(&es, interval));
            // The model: an index into `es`, or None when invalid.
            let mut pos: Option<usize> = None;
            for (m, k, s) in moves {
                match m {
                    0 => { it.seek_to_first().unwrap(); pos = Some(0); }
                    1 => { it.seek_to_last().unwrap(); pos = Some(es.len() - 1); }
                    2 => {
                        let t = InternalKey::new(&k, s, ValueKind::Put).into_bytes();
                        it.seek(&t).unwrap();
                        let i = es.partition_point(|(ek, _)| compare_internal_keys(ek, &t) == Ordering::Less);
                        pos = (i < es.len()).then_some(i);
                    }
                    3..=5 => if let Some(p) = pos {
                        it.prev().unwrap();
                        pos = p.checked_sub(1);
                    },
                    _ => if let Some(p) = pos {
                        it.next().unwrap();
                        pos = Some(p + 1).filter(|&q| q < es.len());
                    },
                }
                match pos {
                    Some(p) => {
                        prop_assert!(it.valid());
                        prop_assert_eq!(it.key(), &es[p].0[..]);
                        prop_assert_eq!(it.value(), &es[p].1[..]);
                        prop_assert_eq!(&it.value_bytes()[..], &es[p].1[..]);
                    }
                    None => prop_assert!(!it.valid()),
                }
            }
            // A reset onto another block forgets everything of the old one.
            it.reset(build(&es[..1], interval));
            prop_assert!(!it.valid());
            it.seek_to_last().unwrap();
            prop_assert_eq!(it.key(), &es[0].0[..]);
            it.prev().unwrap();
            prop_assert!(!it.valid());
        }

        /// The fast comparison agrees with the reference one on any input, including
        /// keys too short for a trailer and user keys sharing 8-byte prefixes.
        #[test]
        fn compare_keys_matches_reference(
            a in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(0xff), any::<u8>()], 0..24),
            b in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(0xff), any::<u8>()], 0..24),
            share in 0usize..24,
        ) {
            let mut b2 = a.get(..share.min(a.len())).unwrap_or_default().to_vec();
            b2.extend_from_slice(&b);
            for (x, y) in [(&a, &b), (&a, &b2), (&b2, &a)] {
                prop_assert_eq!(compare_keys(x, y), compare_internal_keys(x, y));
            }
        }

        /// Arbitrary bytes never panic the decoder, whatever the calls.
        #[test]
        fn garbage_blocks_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200),
                                      target in proptest::collection::vec(any::<u8>(), 0..12)) {
            if let Ok(block) = Block::new(Bytes::from(data)) {
                let mut it = BlockIter::new(block);
                let mut steps = 0;
                if it.seek_to_first().is_ok() {
                    while it.valid() && steps < 1000 { let _ = it.key(); if it.next().is_err() { break; } steps += 1; }
                }
                if it.seek_to_last().is_ok() {
                    while it.valid() && steps < 2000 { let _ = it.value(); if it.prev().is_err() { break; } steps += 1; }
                }
                let _ = it.seek(&target);
            }
        }
    }

    #[test]
    fn restart_points_store_whole_keys() {
        let es: Vec<_> = (0..40u32)
            .map(|i| {
                (
                    InternalKey::new(format!("key{i:04}").as_bytes(), 1, ValueKind::Put)
                        .into_bytes(),
                    vec![],
                )
            })
            .collect();
        let block = build(&es, 16);
        assert_eq!(block.num_restarts, 3);
        for (r, i) in [(0, 0), (1, 16), (2, 32)] {
            assert_eq!(block.restart_key(r).unwrap(), &es[i].0[..]);
        }
    }

    #[test]
    fn restart_count_that_does_not_fit_is_an_error() {
        assert!(Block::new(Bytes::from_static(&[0, 0, 0])).is_err());
        assert!(Block::new(Bytes::from_static(&[0, 0, 0, 0])).is_err());
        assert!(Block::new(Bytes::from_static(&[9, 0, 0, 0])).is_err());
    }
}
