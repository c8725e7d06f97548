//! fjall 3: one keyspace, data blocks compressed as `--compression` asks on every level
//! (none by default; lz4 through fjall's `lz4` feature; fjall has no zstd, which runs
//! uncompressed and says so), 4 KiB blocks (its default), MemTable of
//! `write_buffer_bytes`, block cache of `cache_bytes`. Each insert writes its journal
//! entry to the OS (`PersistMode::Buffer`, fjall's default); fillsync adds
//! `persist(SyncData)` (fdatasync) after each insert.
//!
//! fjall has no merge operator (`incrmerge` is skipped). For `incrtxn` the same options
//! open an `OptimisticTxDatabase` ([`FjallTxnEngine`]); the other workloads keep the
//! plain `Database`, whose inserts are not wrapped in transactions.

use std::path::Path;

use fjall::config::CompressionPolicy;
use fjall::{
    CompressionType, Database, Keyspace, KeyspaceCreateOptions, OptimisticTxDatabase,
    OptimisticTxKeyspace, PersistMode, Readable,
};

use crate::engine::{Attempt, Config, Engine, Res, counter_value, seek_entries};
use crate::setup::Codec;

/// The keyspace options of every fjall database of the harness. The policy is set for
/// every level: with the `lz4` feature fjall's own default is `[None, None, Lz4]`, which
/// would compress only from L2 on.
fn keyspace_options(cfg: &Config) -> Res<KeyspaceCreateOptions> {
    let codec = match crate::setup::compression("fjall", cfg.compression)? {
        Codec::Lz4 => CompressionType::Lz4,
        Codec::None | Codec::Zstd | Codec::Unsupported => CompressionType::None,
    };
    Ok(KeyspaceCreateOptions::default()
        .max_memtable_size(cfg.write_buffer_bytes as u64)
        .data_block_compression_policy(CompressionPolicy::all(codec)))
}

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
        let opts = keyspace_options(cfg)?;
        let ks = db.keyspace("bench", || opts)?;
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

    fn seek(&self, key: &[u8], nexts: usize) -> Res<bool> {
        seek_entries(self.ks.range(key..).map(|g| g.into_inner()), key, nexts)
    }

    fn scan(&self, reverse: bool, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Res<()> {
        scan_keyspace(&self.ks, reverse, visit)
    }

    fn settle(&self) -> Res<()> {
        // Flush the active MemTable (as Strata's settle does) and wait for the flush.
        self.ks.rotate_memtable_and_wait()?;
        Ok(())
    }

    fn get_value(&self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        Ok(self.ks.get(key)?.map(|v| v.to_vec()))
    }

    fn close(self: Box<Self>) -> Res<()> {
        self.db.persist(PersistMode::SyncAll)?;
        drop(self.ks);
        drop(self.db);
        Ok(())
    }
}

/// Feeds `visit` a keyspace's entries, front to back or back to front.
fn scan_keyspace(
    ks: &Keyspace,
    reverse: bool,
    visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Res<()> {
    let mut step = |g: fjall::Guard| -> Res<bool> {
        let (k, v) = g.into_inner()?;
        Ok(visit(&k, &v))
    };
    if reverse {
        for g in ks.iter().rev() {
            if !step(g)? {
                break;
            }
        }
    } else {
        for g in ks.iter() {
            if !step(g)? {
                break;
            }
        }
    }
    Ok(())
}

/// fjall's optimistic transactions (`OptimisticTxDatabase`, serializable snapshot
/// isolation: every read is checked at commit), for `incrtxn`. Each increment is a
/// `write_tx` that reads the counter, inserts the sum and commits (journal written to
/// the OS, `PersistMode::Buffer`, as the plain inserts).
pub struct FjallTxnEngine {
    db: OptimisticTxDatabase,
    ks: OptimisticTxKeyspace,
}

impl FjallTxnEngine {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, cfg: &Config) -> Res<Self> {
        let db = OptimisticTxDatabase::builder(dir)
            .cache_size(cfg.cache_bytes as u64)
            .open()?;
        let opts = keyspace_options(cfg)?;
        let ks = db.keyspace("bench", || opts)?;
        Ok(FjallTxnEngine { db, ks })
    }
}

impl Engine for FjallTxnEngine {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> Res<()> {
        // A one-insert transaction: what a plain insert is in this kind of database.
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

    fn seek(&self, key: &[u8], nexts: usize) -> Res<bool> {
        let entries = self.ks.inner().range(key..).map(|g| g.into_inner());
        seek_entries(entries, key, nexts)
    }

    fn scan(&self, reverse: bool, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Res<()> {
        scan_keyspace(self.ks.inner(), reverse, visit)
    }

    fn settle(&self) -> Res<()> {
        self.ks.inner().rotate_memtable_and_wait()?;
        Ok(())
    }

    fn get_value(&self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        Ok(self.ks.get(key)?.map(|v| v.to_vec()))
    }

    fn has_transactions(&self) -> bool {
        true
    }

    fn txn_add(&self, key: &[u8], delta: u64) -> Res<Attempt> {
        let mut tx = self.db.write_tx()?;
        let now = counter_value(tx.get(&self.ks, key)?.as_deref())?;
        tx.insert(&self.ks, key, now.wrapping_add(delta).to_le_bytes());
        match tx.commit()? {
            Ok(()) => Ok(Attempt::Committed),
            Err(fjall::Conflict) => Ok(Attempt::Conflict),
        }
    }

    fn close(self: Box<Self>) -> Res<()> {
        self.db.persist(PersistMode::SyncAll)?;
        drop(self.ks);
        drop(self.db);
        Ok(())
    }
}
