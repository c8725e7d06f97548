//! The table cache: open table readers, bounded in number.
//!
//! Opening a table reads its footer, properties, index and filter, so readers are kept
//! open between lookups; the bound (`max_open_files`) caps file descriptors and the
//! memory of indexes and filters. An evicted table stays usable by whoever still holds
//! its `Arc` (an iterator); the next lookup reopens it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use quick_cache::sync::Cache;
use strata_core::{FileSystem, Result};
use strata_sstable::{BlockCache, Table};

use crate::remover::Remover;

/// Shared by every version's table files.
pub(crate) struct TableCache {
    fs: Arc<dyn FileSystem>,
    blocks: Option<Arc<BlockCache>>,
    open: Cache<u64, Arc<Table>>,
    /// Whether tables are opened memory-mapped (`FileSystem::open_mapped`).
    mapped: bool,
    /// Where obsolete tables go to be closed and removed.
    remover: Remover,
}

impl std::fmt::Debug for TableCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableCache")
            .field("open", &self.open.len())
            .finish()
    }
}

impl TableCache {
    pub fn new(
        fs: Arc<dyn FileSystem>,
        blocks: Option<Arc<BlockCache>>,
        max_open_files: usize,
        mapped: bool,
    ) -> Self {
        TableCache {
            remover: Remover::new(Arc::clone(&fs)),
            fs,
            blocks,
            open: Cache::new(max_open_files.max(1)),
            mapped,
        }
    }

    /// The reader of table `number` at `path`, opening it if it is not open.
    pub fn get(&self, number: u64, path: &Path) -> Result<Arc<Table>> {
        self.open.get_or_insert_with(&number, || {
            let file = if self.mapped {
                self.fs.open_mapped(path)?
            } else {
                self.fs.open(path)?
            };
            Table::open(file, number, self.blocks.clone())
        })
    }

    /// Forgets table `number` and has its file at `path` closed and removed (on the
    /// remover's thread once [`remover`](Self::remover) is started).
    pub fn retire(&self, number: u64, path: PathBuf) {
        let table = self.open.remove(&number).map(|(_, table)| table);
        self.remover.retire(path, table);
    }

    /// The remover of obsolete tables.
    pub fn remover(&self) -> &Remover {
        &self.remover
    }

    /// Tables currently open.
    pub fn len(&self) -> usize {
        self.open.len()
    }
}
