//! [`TableIter`]: a two-level cursor (index entry, then entry within the data block)
//! over a whole table.

use std::sync::Arc;

use bytes::Bytes;
use strata_core::{Result, SortedIter};

use crate::block::{BlockError, BlockIter};
use crate::format::BlockHandle;
use crate::table::Table;

/// A cursor over a table's entries in internal-key order, both ways.
///
/// Owns an `Arc<Table>`, so it has no lifetime and keeps the table open. Values handed
/// out by [`SortedIter::value_bytes`] are views into the cached block (no copy); holding
/// one keeps its whole block in memory.
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
        let block = match self.table.data_block(handle, self.fill_cache) {
            Ok((block, _)) => block,
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
