//! sled 0.34: page cache of `cache_bytes + write_buffer_bytes` (it has no separate write
//! buffer), default flush every 500 ms. sled cannot hand each write to the OS: writes
//! sit in its log buffers until the periodic flush — weaker than the others. fillsync
//! calls `flush()` (write + fsync) after each insert.

use std::path::Path;

use crate::engine::{Config, Engine, Res, seek_entries};

/// sled behind the harness's interface.
pub struct SledEngine {
    db: sled::Db,
}

impl SledEngine {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, cfg: &Config) -> Res<Self> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity((cfg.cache_bytes + cfg.write_buffer_bytes) as u64)
            .open()?;
        Ok(SledEngine { db })
    }
}

impl Engine for SledEngine {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> Res<()> {
        self.db.insert(key, value)?;
        if sync {
            self.db.flush()?;
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        Ok(self.db.get(key)?.map(|v| v.len()))
    }

    fn delete(&self, key: &[u8]) -> Res<()> {
        self.db.remove(key)?;
        Ok(())
    }

    fn seek(&self, key: &[u8], nexts: usize) -> Res<bool> {
        seek_entries(self.db.range(key..), key, nexts)
    }

    fn scan(&self, reverse: bool, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Res<()> {
        crate::engine::visit_entries(self.db.iter(), reverse, visit)
    }

    fn settle(&self) -> Res<()> {
        self.db.flush()?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Res<()> {
        self.db.flush()?;
        Ok(())
    }
}
