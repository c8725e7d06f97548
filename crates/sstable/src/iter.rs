//! [`TableIter`]: a two-level cursor (index entry, then entry within the data block)
//! over a whole table.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use strata_core::{Result, SortedIter};

use crate::block::{BlockError, BlockIter};
use crate::format::BlockHandle;
use crate::table::Table;

/// Loads of adjacent blocks in a row after which a cursor reads ahead.
const READAHEAD_AFTER: u32 = 2;
/// Size of the first read-ahead; each next one doubles, up to [`READAHEAD_MAX`].
const READAHEAD_MIN: usize = 16 << 10;
/// Largest read-ahead.
const READAHEAD_MAX: usize = 128 << 10;

/// A cursor over a table's entries in internal-key order, both ways.
///
/// Owns an `Arc<Table>`, so it has no lifetime and keeps the table open. Values handed
/// out by [`SortedIter::value_bytes`] are views into the block (no copy); holding one
/// keeps its whole block — or read-ahead buffer, below — in memory.
///
/// **Scans read ahead.** After two loads in a row of the block next to
/// the previous one (either way), the cursor reads a run of blocks in the direction of
/// travel with one read (16 KiB, doubling up to 128 KiB) and takes the following blocks
/// from that buffer; the buffer is reused when nothing else holds it. Blocks read ahead
/// are checked like any other but neither looked up in nor added to the block cache: a
/// scan would flush the hot set (RocksDB's `fill_cache = false`), and the page cache
/// already holds the file. Seeks and the first blocks of a scan go through the cache.
pub struct TableIter {
    table: Arc<Table>,
    fill_cache: bool,
    /// Index entry of the loaded block.
    block_index: usize,
    handle: BlockHandle,
    /// The loaded block's cursor; `None` before the first positioning call and after an
    /// error.
    block: Option<BlockIter>,
    /// The key buffer, kept across blocks and errors.
    spare_key: Vec<u8>,
    readahead: Readahead,
}

/// The read-ahead state of a [`TableIter`].
#[derive(Debug, Default)]
struct Readahead {
    /// Bytes `[start, start + buf.len())` of the file: whole blocks with their trailers.
    buf: Bytes,
    start: u64,
    /// The block loaded last, and how many loads in a row were of a block adjacent to
    /// the one before.
    last: Option<usize>,
    run: u32,
    /// Size of the next read-ahead (0 before the first).
    size: usize,
    /// The buffer before `buf`, kept for reuse: a backward scan still holds a value of
    /// the buffer it leaves when it reads the next one (it resolves a key's versions one
    /// step ahead), so two buffers alternate.
    spare: Bytes,
}

impl Readahead {
    /// Block `handle` with its trailer, if the buffer holds all of it.
    fn covering(&self, handle: BlockHandle) -> Option<Bytes> {
        let from = usize::try_from(handle.offset.checked_sub(self.start)?).ok()?;
        let to = usize::try_from(handle.end_with_trailer()?.checked_sub(self.start)?).ok()?;
        (to <= self.buf.len()).then(|| self.buf.slice(from..to))
    }

    /// Records a load of block `i`; returns whether it continues a sequential run long
    /// enough to read ahead, and whether the run moves forward.
    fn record(&mut self, i: usize) -> (bool, bool) {
        let forward = self.last.is_none_or(|l| l < i);
        let adjacent = self
            .last
            .is_some_and(|l| l.checked_add(1) == Some(i) || i.checked_add(1) == Some(l));
        self.run = if adjacent {
            self.run.saturating_add(1)
        } else {
            0
        };
        self.last = Some(i);
        (self.run >= READAHEAD_AFTER, forward)
    }
}

impl std::fmt::Debug for TableIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableIter")
            .field("table", &self.table.path())
            .field("block_index", &self.block_index)
            .field("valid", &self.valid())
            .finish()
    }
}

impl TableIter {
    pub(crate) fn new(table: Arc<Table>, fill_cache: bool) -> Self {
        TableIter {
            table,
            fill_cache,
            block_index: 0,
            handle: BlockHandle::default(),
            block: None,
            spare_key: Vec::new(),
            readahead: Readahead::default(),
        }
    }

    /// The table being read.
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }

    fn invalidate(&mut self) {
        if let Some(b) = self.block.take() {
            self.spare_key = b.into_key_buffer();
        }
    }

    /// Loads data block `i` into the cursor (unpositioned within it).
    fn load(&mut self, i: usize) -> Result<bool> {
        let Some(handle) = self.table.index_handle(i) else {
            self.invalidate();
            return Ok(false);
        };
        let (sequential, forward) = self.readahead.record(i);
        let block = if let Some(raw) = self.readahead.covering(handle) {
            self.table.block_from_raw(raw, handle)
        } else if sequential {
            self.read_ahead(i, handle, forward)
                .and_then(|raw| self.table.block_from_raw(raw, handle))
        } else {
            self.table
                .data_block(handle, self.fill_cache)
                .map(|(block, _)| block)
        };
        let block = match block {
            Ok(block) => block,
            Err(e) => {
                self.invalidate();
                return Err(e);
            }
        };
        match &mut self.block {
            Some(it) => it.reset(block),
            None => {
                self.block = Some(BlockIter::with_key_buffer(
                    block,
                    std::mem::take(&mut self.spare_key),
                ));
            }
        }
        self.block_index = i;
        self.handle = handle;
        Ok(true)
    }

    /// Reads block `i` (at `handle`) and its neighbours in the direction of travel, up
    /// to the read-ahead size, into the read-ahead buffer; returns block `i` with its
    /// trailer.
    fn read_ahead(&mut self, i: usize, handle: BlockHandle, forward: bool) -> Result<Bytes> {
        let size = self.readahead.size.clamp(READAHEAD_MIN, READAHEAD_MAX) as u64;
        let table = &self.table;
        let end_of = |h: BlockHandle| h.end_with_trailer().unwrap_or(u64::MAX);
        // The blocks tile the file (the index is checked to say so when the table is
        // opened), so a run of them is one contiguous range.
        let (start, end) = if forward {
            let mut end = end_of(handle);
            let mut j = i + 1;
            while let Some(h) = table.index_handle(j) {
                let e = end_of(h);
                if h.offset != end || e.saturating_sub(handle.offset) > size {
                    break;
                }
                end = e;
                j += 1;
            }
            (handle.offset, end)
        } else {
            let mut start = handle.offset;
            let mut j = i;
            while let Some(h) = j.checked_sub(1).and_then(|p| table.index_handle(p)) {
                if end_of(h) != start || end_of(handle).saturating_sub(h.offset) > size {
                    break;
                }
                start = h.offset;
                j -= 1;
            }
            (start, end_of(handle))
        };
        let len = usize::try_from(end.saturating_sub(start)).unwrap_or(usize::MAX);
        // Let go of the block being left, so the buffer it lives in can be reused.
        if let Some(it) = self.block.as_mut() {
            it.release_block();
        }
        let mut buf = match std::mem::take(&mut self.readahead.buf).try_into_mut() {
            Ok(buf) => buf,
            Err(held) => std::mem::replace(&mut self.readahead.spare, held)
                .try_into_mut()
                .unwrap_or_default(),
        };
        if buf.len() >= len {
            // Already initialised: the read overwrites it.
            buf.truncate(len);
        } else {
            if buf.capacity() < len {
                // Growing would copy the old contents: start afresh.
                buf = BytesMut::with_capacity(len);
            }
            buf.resize(len, 0);
        }
        self.table.read_raw(start, &mut buf)?;
        self.readahead.buf = buf.freeze();
        self.readahead.start = start;
        self.readahead.size = (size as usize * 2).min(READAHEAD_MAX);
        // The buffer starts with block `i` (forward) or ends with it (backward).
        self.readahead.covering(handle).ok_or_else(|| {
            strata_core::Error::corruption(
                self.table.path(),
                handle.offset,
                "read-ahead does not cover the block",
            )
        })
    }

    /// Runs a move on the block cursor, turning a decode failure into corruption
    /// named by file and block offset.
    fn step(
        &mut self,
        f: impl FnOnce(&mut BlockIter) -> std::result::Result<(), BlockError>,
    ) -> Result<()> {
        let Some(it) = self.block.as_mut() else {
            return Ok(());
        };
        if let Err(e) = f(it) {
            let err = self.table.block_error(self.handle, e);
            self.invalidate();
            return Err(err);
        }
        Ok(())
    }

    /// While the block cursor ran off its block's end, moves to the next block's start.
    fn skip_forward(&mut self) -> Result<()> {
        while self.block.as_ref().is_some_and(|b| !b.valid()) {
            if !self.load(self.block_index + 1)? {
                return Ok(());
            }
            self.step(BlockIter::seek_to_first)?;
        }
        Ok(())
    }

    /// While the block cursor ran off its block's start, moves to the previous block's
    /// end.
    fn skip_backward(&mut self) -> Result<()> {
        while self.block.as_ref().is_some_and(|b| !b.valid()) {
            let Some(prev) = self.block_index.checked_sub(1) else {
                self.invalidate();
                return Ok(());
            };
            self.load(prev)?;
            self.step(BlockIter::seek_to_last)?;
        }
        Ok(())
    }

    fn current(&self) -> &BlockIter {
        match &self.block {
            Some(b) if b.valid() => b,
            _ => panic!("TableIter::key/value called on an invalid iterator"),
        }
    }
}

impl SortedIter for TableIter {
    fn valid(&self) -> bool {
        self.block.as_ref().is_some_and(BlockIter::valid)
    }

    fn seek_to_first(&mut self) -> Result<()> {
        if self.load(0)? {
            self.step(BlockIter::seek_to_first)?;
            self.skip_forward()?;
        }
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        let Some(last) = self.table.index_len().checked_sub(1) else {
            self.invalidate();
            return Ok(());
        };
        if self.load(last)? {
            self.step(BlockIter::seek_to_last)?;
            self.skip_backward()?;
        }
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let Some(i) = self.table.index_find(target) else {
            self.invalidate();
            return Ok(());
        };
        // A target in the block already loaded (a merged scan moving a child a few keys
        // on) needs no second read of it.
        if self.block.is_some() && self.block_index == i {
            self.step(|b| b.seek(target))?;
            return self.skip_forward();
        }
        if self.load(i)? {
            self.step(|b| b.seek(target))?;
            self.skip_forward()?;
        }
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        self.step(BlockIter::next)?;
        self.skip_forward()
    }

    fn prev(&mut self) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        self.step(BlockIter::prev)?;
        self.skip_backward()
    }

    fn key(&self) -> &[u8] {
        self.current().key()
    }

    fn value(&self) -> &[u8] {
        self.current().value()
    }

    fn value_bytes(&self) -> Bytes {
        self.current().value_bytes()
    }
}
