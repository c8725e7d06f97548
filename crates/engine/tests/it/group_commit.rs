//! Group commit: writers that ask for `sync` share fsyncs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use strata::{Db, WriteBatch, WriteOptions};
use strata_core::{FileLock, FileSystem, MemFs, RandomAccessFile, Result, WritableFile};

/// `MemFs` whose file syncs take as long as a slow disk's, so that writers pile up
/// behind each one as they do on real hardware.
#[derive(Debug, Clone)]
struct SlowSyncFs {
    inner: MemFs,
    sync_time: Duration,
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
        Ok(Box::new(SlowSyncFile {
            inner: self.inner.create(path)?,
            sync_time: self.sync_time,
        }))
    }
    fn open(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        self.inner.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> Result<()> {
        self.inner.remove(path)
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

/// Average number of synced writes per WAL fsync with `threads` writers.
fn writers_per_sync(threads: usize) -> f64 {
    let fs = SlowSyncFs {
        inner: MemFs::new(),
        sync_time: Duration::from_millis(4),
    };
    let db = Db::builder(Path::new("/db"))
        .file_system(Arc::new(fs))
        .open()
        .unwrap();
    let sync = WriteOptions { sync: true };
    std::thread::scope(|s| {
        for t in 0..threads {
            let db = db.clone();
            s.spawn(move || {
                for i in 0..30 {
                    let mut batch = WriteBatch::new();
                    batch.put(format!("t{t}-{i}"), "v");
                    db.write(batch, sync).unwrap();
                }
            });
        }
    });
    let stats = db.stats();
    assert_eq!(stats.synced_writes, 30 * threads as u64);
    for t in 0..threads {
        assert!(db.get(format!("t{t}-29")).unwrap().is_some());
    }
    db.close().unwrap();
    stats.synced_writes as f64 / stats.wal_syncs as f64
}

#[test]
fn one_writer_syncs_every_write() {
    assert_eq!(writers_per_sync(1), 1.0);
}

#[test]
fn synced_writers_share_fsyncs_instead_of_alternating_in_halves() {
    // Without gathering, the writers released by one fsync miss the next group, so
    // groups alternate between two halves (≈ 4 of 8 per fsync). A leader that waits a
    // little for them gets nearly all 8.
    let shared = writers_per_sync(8);
    assert!(shared >= 5.5, "only {shared:.2} writers per fsync");
}
