//! redb 4 (a copy-on-write B-tree): cache of `cache_bytes + write_buffer_bytes`, one
//! write transaction per put committed with `Durability::None` (no fsync; redb keeps
//! such commits in memory until a durable commit, so a process crash can lose them —
//! weaker than the others). fillsync commits each put with `Durability::Immediate`.
//! Each point read opens its own read transaction, as an application would.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::engine::{Config, Engine, Res, seek_entries};

/// One item of a table iterator.
type Entry<'a> = Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

/// redb behind the harness's interface.
pub struct RedbEngine {
    db: Database,
}

impl RedbEngine {
    /// Opens (or creates) the database file `dir/bench.redb`.
    pub fn open(dir: &Path, cfg: &Config) -> Res<Self> {
        let db = Database::builder()
            .set_cache_size(cfg.cache_bytes + cfg.write_buffer_bytes)
            .create(dir.join("bench.redb"))?;
        // Create the table so readers of an empty database find it.
        let tx = db.begin_write()?;
        tx.open_table(TABLE)?;
        tx.commit()?;
        Ok(RedbEngine { db })
    }

    fn write(
        &self,
        sync: bool,
        f: impl FnOnce(&mut redb::Table<&[u8], &[u8]>) -> Res<()>,
    ) -> Res<()> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(if sync {
            Durability::Immediate
        } else {
            Durability::None
        })?;
        {
            let mut t = tx.open_table(TABLE)?;
            f(&mut t)?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl Engine for RedbEngine {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> Res<()> {
        self.write(sync, |t| {
            t.insert(key, value)?;
            Ok(())
        })
    }

    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(TABLE)?;
        Ok(t.get(key)?.map(|v| v.value().len()))
    }

    fn delete(&self, key: &[u8]) -> Res<()> {
        self.write(false, |t| {
            t.remove(key)?;
            Ok(())
        })
    }

    fn seek(&self, key: &[u8], nexts: usize) -> Res<bool> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(TABLE)?;
        let entries = t
            .range(key..)?
            .map(|kv| kv.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())));
        seek_entries(entries, key, nexts)
    }

    fn scan(&self, reverse: bool, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Res<()> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(TABLE)?;
        let mut step = |kv: Entry| -> Res<bool> {
            let (k, v) = kv?;
            Ok(visit(k.value(), v.value()))
        };
        if reverse {
            for kv in t.iter()?.rev() {
                if !step(kv)? {
                    break;
                }
            }
        } else {
            for kv in t.iter()? {
                if !step(kv)? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn settle(&self) -> Res<()> {
        // A durable (empty) commit writes out what the non-durable commits left in memory.
        self.write(true, |_| Ok(()))
    }

    fn close(self: Box<Self>) -> Res<()> {
        self.write(true, |_| Ok(()))?;
        drop(self.db);
        Ok(())
    }
}
