//! Test file systems over `MemFs`: [`SlowSyncFs`], whose syncs take as long as a slow
//! disk's, so that writers pile up behind them and locks held across them show, and
//! which records the thread that removed each file; and
//! [`OpenHookFs`], whose opens a test can answer itself (a file as another reader
//! would have seen it a moment earlier).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_core::{FileLock, FileSystem, MemFs, RandomAccessFile, Result, WritableFile};

/// How long a sync takes, by kind of file.
#[derive(Debug, Clone)]
pub(crate) struct SlowSyncFs {
    pub inner: MemFs,
    pub wal: Duration,
    pub table: Duration,
    pub other: Duration,
    /// Each file removed, and the name of the thread that removed it.
    pub removed_by: Arc<Mutex<Vec<Removal>>>,
}

/// A file [`SlowSyncFs`] removed, and the name of the thread that removed it.
pub(crate) type Removal = (PathBuf, Option<String>);

impl SlowSyncFs {
    /// A fresh `MemFs` whose syncs of WALs, tables and other files take `wal`, `table`
    /// and `other`.
    pub fn new(wal: Duration, table: Duration, other: Duration) -> Self {
        SlowSyncFs {
            inner: MemFs::new(),
            wal,
            table,
            other,
            removed_by: Arc::default(),
        }
    }

    /// A fresh `MemFs` whose table syncs take `table` and every other sync is instant:
    /// flushes and compactions slower than the writer.
    pub fn slow_tables(table: Duration) -> Self {
        SlowSyncFs::new(Duration::ZERO, table, Duration::ZERO)
    }
}

#[derive(Debug)]
struct SlowSyncFile {
    inner: Box<dyn WritableFile>,
    sync_time: Duration,
}

impl WritableFile for SlowSyncFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.inner.append(data)
    }
    fn sync(&mut self) -> Result<()> {
        std::thread::sleep(self.sync_time);
        self.inner.sync()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

impl FileSystem for SlowSyncFs {
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let sync_time = match path.extension().and_then(|e| e.to_str()) {
            Some("log") => self.wal,
            Some("sst") => self.table,
            _ => self.other,
        };
        Ok(Box::new(SlowSyncFile {
            inner: self.inner.create(path)?,
            sync_time,
        }))
    }
    fn open(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        self.inner.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> Result<()> {
        let by = std::thread::current().name().map(str::to_owned);
        self.removed_by
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((path.to_path_buf(), by));
        self.inner.remove(path)
    }
    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.link(from, to)
    }
    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        self.inner.lock(path)
    }
}

/// What [`OpenHookFs`] asks before opening a file: `Some` answers the open instead.
pub(crate) type OpenHook = dyn Fn(&Path) -> Option<Result<Arc<dyn RandomAccessFile>>> + Send + Sync;

/// `MemFs` whose `open` asks `hook` first; everything else goes to `inner`.
pub(crate) struct OpenHookFs {
    pub inner: MemFs,
    pub hook: Box<OpenHook>,
}

impl std::fmt::Debug for OpenHookFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenHookFs").finish_non_exhaustive()
    }
}

impl FileSystem for OpenHookFs {
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        self.inner.create(path)
    }
    fn open(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        match (self.hook)(path) {
            Some(answer) => answer,
            None => self.inner.open(path),
        }
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> Result<()> {
        self.inner.remove(path)
    }
    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.link(from, to)
    }
    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        self.inner.lock(path)
    }
}
