//! The Raft log on fjall 3 (its defaults, as a user would open it, except data blocks
//! uncompressed: the harness builds fjall with `lz4`, whose default policy would compress
//! from L2 on, and the log was measured without): entries in keyspace
//! `logs`, metadata in keyspace `meta`; a batch is one fjall write batch, a sync is
//! `persist(SyncData)` (fdatasync of the journal, as Strata's WAL sync); fjall has no
//! range delete, so truncate and purge delete the entries key by key in one batch.

use std::path::Path;

use fjall::config::CompressionPolicy;
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::peer::LogKv;
use crate::engine::Res;

/// fjall's half of the peer log store.
pub struct FjallLog {
    db: Database,
    logs: Keyspace,
    meta: Keyspace,
}

impl FjallLog {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path) -> Res<Self> {
        let db = Database::builder(dir).open()?;
        let uncompressed = || {
            KeyspaceCreateOptions::default()
                .data_block_compression_policy(CompressionPolicy::all(CompressionType::None))
        };
        let logs = db.keyspace("logs", uncompressed)?;
        let meta = db.keyspace("meta", uncompressed)?;
        Ok(FjallLog { db, logs, meta })
    }
}

impl LogKv for FjallLog {
    fn write(&self, entries: Vec<(u64, Vec<u8>)>) -> Res<()> {
        let mut batch = self.db.batch();
        for (index, entry) in entries {
            batch.insert(&self.logs, &index.to_be_bytes()[..], entry);
        }
        Ok(batch.commit()?)
    }

    fn read(&self, first: u64, last: u64) -> Res<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for guard in self.logs.range(first.to_be_bytes()..=last.to_be_bytes()) {
            out.push(guard.value()?.to_vec());
        }
        Ok(out)
    }

    fn last(&self) -> Res<Option<Vec<u8>>> {
        match self.logs.last_key_value() {
            Some(guard) => Ok(Some(guard.value()?.to_vec())),
            None => Ok(None),
        }
    }

    fn delete(&self, first: u64, last: u64) -> Res<()> {
        let mut batch = self.db.batch();
        for guard in self.logs.range(first.to_be_bytes()..=last.to_be_bytes()) {
            batch.remove(&self.logs, guard.key()?);
        }
        Ok(batch.commit()?)
    }

    fn get_meta(&self, key: &str) -> Res<Option<Vec<u8>>> {
        Ok(self.meta.get(key)?.map(|v| v.to_vec()))
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Res<()> {
        Ok(self.meta.insert(key, value)?)
    }

    fn sync(&self) -> Res<()> {
        Ok(self.db.persist(PersistMode::SyncData)?)
    }
}
