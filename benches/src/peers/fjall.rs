//! fjall 3: one keyspace, no compression, 4 KiB blocks (its default), MemTable of
//! `write_buffer_bytes`, block cache of `cache_bytes`. Each insert writes its journal
//! entry to the OS (`PersistMode::Buffer`, fjall's default); fillsync adds
//! `persist(SyncData)` (fdatasync) after each insert.

use std::path::Path;

use fjall::config::CompressionPolicy;
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::engine::{Config, Engine, Res};

/// fjall behind the harness's interface.
pub struct FjallEngine {
    db: Database,
    ks: Keyspace,
}

impl FjallEngine {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, cfg: &Config) -> Res<Self> {
        let db = Database::builder(dir)
            .cache_size(cfg.cache_bytes as u64)
            .open()?;
        let wb = cfg.write_buffer_bytes as u64;
        let ks = db.keyspace("bench", || {
            KeyspaceCreateOptions::default()
                .max_memtable_size(wb)
                .data_block_compression_policy(CompressionPolicy::all(CompressionType::None))
        })?;
        Ok(FjallEngine { db, ks })
    }
}

impl Engine for FjallEngine {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> Res<()> {
        self.ks.insert(key, value)?;
        if sync {
            self.db.persist(PersistMode::SyncData)?;
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        Ok(self.ks.get(key)?.map(|v| v.len()))
    }

    fn delete(&self, key: &[u8]) -> Res<()> {
        Ok(self.ks.remove(key)?)
    }

    fn seek(&self, key: &[u8]) -> Res<bool> {
        match self.ks.range(key..).next() {
            Some(g) => {
                let (k, v) = g.into_inner()?;
                Ok(*k == *key && !v.is_empty())
            }
            None => Ok(false),
        }
    }

    fn scan(&self, reverse: bool, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Res<()> {
        let mut step = |g: fjall::Guard| -> Res<bool> {
            let (k, v) = g.into_inner()?;
            Ok(visit(&k, &v))
        };
        if reverse {
            for g in self.ks.iter().rev() {
                if !step(g)? {
                    break;
                }
            }
        } else {
            for g in self.ks.iter() {
                if !step(g)? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn settle(&self) -> Res<()> {
        // Flush the active MemTable (as Strata's settle does) and wait for the flush.
        self.ks.rotate_memtable_and_wait()?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Res<()> {
        self.db.persist(PersistMode::SyncAll)?;
        drop(self.ks);
        drop(self.db);
        Ok(())
    }
}
