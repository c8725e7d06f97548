//! The Raft log on RocksDB (its default options, as a user would open it), as
//! openraft's RocksDB example stores it: entries in column family `logs`, metadata in
//! `meta`; a batch is one `WriteBatch` written without sync, a sync is
//! `flush_wal(true)` (fdatasync of the WAL, RocksDB's default `use_fsync = false`);
//! truncate and purge are one range delete.
//!
//! With `rocksdb-system` this is Debian's librocksdb 7.8, built with assertions on: a
//! quick check, not a figure to quote.

use std::path::Path;

use rocksdb::{ColumnFamily, DB, Direction, IteratorMode, Options, WriteBatch};

use super::peer::LogKv;
use crate::engine::Res;

/// RocksDB's half of the peer log store.
pub struct RocksLog {
    db: DB,
}

const LOGS: &str = "logs";
const META: &str = "meta";

impl RocksLog {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path) -> Res<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let db = DB::open_cf(&opts, dir, [LOGS, META])?;
        Ok(RocksLog { db })
    }

    fn cf(&self, name: &str) -> Res<&ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| format!("no column family {name}").into())
    }
}

impl LogKv for RocksLog {
    fn write(&self, entries: Vec<(u64, Vec<u8>)>) -> Res<()> {
        let logs = self.cf(LOGS)?;
        let mut batch = WriteBatch::default();
        for (index, entry) in entries {
            batch.put_cf(logs, index.to_be_bytes(), entry);
        }
        Ok(self.db.write(batch)?)
    }

    fn read(&self, first: u64, last: u64) -> Res<Vec<Vec<u8>>> {
        let from = first.to_be_bytes();
        let mut out = Vec::new();
        for item in self.db.iterator_cf(
            self.cf(LOGS)?,
            IteratorMode::From(&from, Direction::Forward),
        ) {
            let (key, value) = item?;
            if *key > last.to_be_bytes()[..] {
                break;
            }
            out.push(value.into_vec());
        }
        Ok(out)
    }

    fn last(&self) -> Res<Option<Vec<u8>>> {
        match self
            .db
            .iterator_cf(self.cf(LOGS)?, IteratorMode::End)
            .next()
        {
            Some(item) => Ok(Some(item?.1.into_vec())),
            None => Ok(None),
        }
    }

    fn delete(&self, first: u64, last: u64) -> Res<()> {
        // The end is exclusive: past `last`, or past every 8-byte key (9 bytes of 0xff).
        let end = match last.checked_add(1) {
            Some(next) => next.to_be_bytes().to_vec(),
            None => vec![0xff; 9],
        };
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(LOGS)?, &first.to_be_bytes()[..], &end[..]);
        Ok(self.db.write(batch)?)
    }

    fn get_meta(&self, key: &str) -> Res<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(META)?, key)?)
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Res<()> {
        Ok(self.db.put_cf(self.cf(META)?, key, value)?)
    }

    fn sync(&self) -> Res<()> {
        Ok(self.db.flush_wal(true)?)
    }
}
