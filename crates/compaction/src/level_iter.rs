//! The level iterator: one sorted stream over a sorted run of non-overlapping tables.

use std::sync::Arc;

use bytes::Bytes;
use strata_core::key::compare_internal_keys;
use strata_core::{Result, SortedIter};

use crate::FileMeta;

/// Opens a table's iterator. Supplied by the engine (through its table cache), so this
/// crate never touches files itself.
pub type TableOpener = Arc<dyn Fn(&FileMeta) -> Result<Box<dyn SortedIter + Send>> + Send + Sync>;

/// A [`SortedIter`] that concatenates the tables of one level (L1 and deeper), opening
/// each lazily when the cursor first needs it.
///
/// `files` must be sorted by key and must not overlap: every key of `files[i]` is below
/// every key of `files[i + 1]`. Only one table is open at a time; moving within the open
/// table never calls the opener again.
pub struct LevelIter {
    files: Vec<Arc<FileMeta>>,
    opener: TableOpener,
    /// Index in `files` of the table `current` iterates.
    index: usize,
    current: Option<Box<dyn SortedIter + Send>>,
}

impl LevelIter {
    /// A level iterator over `files` (sorted, non-overlapping). Starts unpositioned.
    pub fn new(files: Vec<Arc<FileMeta>>, opener: TableOpener) -> Self {
        debug_assert!(
            files.windows(2).all(|w| compare_internal_keys(
                w[0].largest.as_bytes(),
                w[1].smallest.as_bytes()
            )
            .is_lt()),
            "level files overlap or are out of order"
        );
        LevelIter {
            files,
            opener,
            index: 0,
            current: None,
        }
    }

    /// The files this iterator walks.
    pub fn files(&self) -> &[Arc<FileMeta>] {
        &self.files
    }

    /// The file the cursor stands in, if valid.
    pub fn current_file(&self) -> Option<&Arc<FileMeta>> {
        if self.valid() {
            self.files.get(self.index)
        } else {
            None
        }
    }

    /// Makes `current` iterate `files[index]`, reusing it if already open. On error the
    /// iterator is left invalid.
    fn open(&mut self, index: usize) -> Result<()> {
        if self.index == index && self.current.is_some() {
            return Ok(());
        }
        self.current = None;
        let Some(meta) = self.files.get(index) else {
            panic!("LevelIter::open past the last file");
        };
        self.current = Some((self.opener)(meta)?);
        self.index = index;
        Ok(())
    }

    /// Runs a move on the open table, dropping it on error so the iterator is invalid.
    fn on_current(&mut self, f: impl FnOnce(&mut dyn SortedIter) -> Result<()>) -> Result<()> {
        if let Some(c) = self.current.as_mut()
            && let Err(e) = f(c.as_mut())
        {
            self.current = None;
            return Err(e);
        }
        Ok(())
    }

    fn open_and(
        &mut self,
        index: usize,
        f: impl FnOnce(&mut dyn SortedIter) -> Result<()>,
    ) -> Result<()> {
        self.open(index)?;
        self.on_current(f)
    }

    /// Past the end of a table: move on to the first entry of the next non-empty one.
    fn skip_forward(&mut self) -> Result<()> {
        while !self.valid() && self.current.is_some() && self.index + 1 < self.files.len() {
            self.open_and(self.index + 1, |c| c.seek_to_first())?;
        }
        Ok(())
    }

    /// Before the start of a table: move on to the last entry of the previous non-empty one.
    fn skip_backward(&mut self) -> Result<()> {
        while !self.valid() && self.current.is_some() && self.index > 0 {
            self.open_and(self.index - 1, |c| c.seek_to_last())?;
        }
        Ok(())
    }
}

impl SortedIter for LevelIter {
    fn valid(&self) -> bool {
        self.current.as_ref().is_some_and(|c| c.valid())
    }

    fn seek_to_first(&mut self) -> Result<()> {
        if self.files.is_empty() {
            return Ok(());
        }
        self.open_and(0, |c| c.seek_to_first())?;
        self.skip_forward()
    }

    fn seek_to_last(&mut self) -> Result<()> {
        let Some(last) = self.files.len().checked_sub(1) else {
            return Ok(());
        };
        self.open_and(last, |c| c.seek_to_last())?;
        self.skip_backward()
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        // The first file whose largest key is >= target is the only one that can hold
        // the first entry >= target (later files only if that one ends early).
        let index = self
            .files
            .partition_point(|f| compare_internal_keys(f.largest.as_bytes(), target).is_lt());
        if index == self.files.len() {
            // Everything is below the target.
            self.current = None;
            return Ok(());
        }
        self.open_and(index, |c| c.seek(target))?;
        self.skip_forward()
    }

    fn next(&mut self) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        self.on_current(|c| c.next())?;
        self.skip_forward()
    }

    fn prev(&mut self) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        self.on_current(|c| c.prev())?;
        self.skip_backward()
    }

    fn key(&self) -> &[u8] {
        match self.current.as_ref() {
            Some(c) => c.key(),
            None => panic!("SortedIter::key called on an invalid LevelIter"),
        }
    }

    fn value(&self) -> &[u8] {
        match self.current.as_ref() {
            Some(c) => c.value(),
            None => panic!("SortedIter::value called on an invalid LevelIter"),
        }
    }

    fn value_bytes(&self) -> Bytes {
        match self.current.as_ref() {
            Some(c) => c.value_bytes(),
            None => panic!("SortedIter::value_bytes called on an invalid LevelIter"),
        }
    }
}
