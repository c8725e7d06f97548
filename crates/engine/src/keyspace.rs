//! Keyspace handles: separate, independently compacted trees in one database.

use std::ops::RangeBounds;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::WriteBatch;
use crate::db::{Db, WriteOptions};
use crate::iter::{DbIter, KeyRange};
use crate::tree::Tree;
use crate::{Result, Snapshot};

/// One keyspace of a database (a *column family*): a sorted key space of its own, with
/// its own MemTables, levels and compactions, sharing the database's write-ahead log,
/// group commit, caches and sequence numbers. A [`WriteBatch`] may span keyspaces
/// ([`WriteBatch::put_in`]) and is atomic across them; a [`Snapshot`] is consistent
/// across them ([`Snapshot::get_in`]); a [`Transaction`](crate::Transaction) reads and
/// writes it atomically with others ([`Transaction::get_in`](crate::Transaction::get_in),
/// [`Transaction::put_in`](crate::Transaction::put_in)).
///
/// Made (or found) by [`Db::keyspace`]; cheap to clone, usable from any thread. `Db`'s
/// own methods act on the keyspace named `"default"`. After
/// [`Db::drop_keyspace`], every call on a handle of it fails with
/// [`Error::InvalidArgument`](crate::Error::InvalidArgument).
///
/// ```
/// let db = strata::DbBuilder::in_memory().open()?;
/// let users = db.keyspace("users")?;
/// users.put("1", "ada")?;
/// assert_eq!(users.get("1")?.as_deref(), Some(&b"ada"[..]));
/// assert_eq!(db.get("1")?, None); // the default keyspace is another one
/// assert_eq!(db.list_keyspaces(), ["default", "users"]);
/// # Ok::<(), strata::Error>(())
/// ```
#[derive(Clone)]
pub struct Keyspace {
    db: Db,
    tree: Arc<Tree>,
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace")
            .field("name", &self.tree.name)
            .finish()
    }
}

impl Keyspace {
    pub(crate) fn new(db: Db, tree: Arc<Tree>) -> Self {
        Keyspace { db, tree }
    }

    /// The keyspace's name.
    pub fn name(&self) -> &str {
        &self.tree.name
    }

    pub(crate) fn id(&self) -> u32 {
        self.tree.id
    }

    /// The database instance (one per open) the keyspace belongs to.
    pub(crate) fn db_instance(&self) -> u64 {
        self.db.inner().instance
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn tree(&self) -> &Arc<Tree> {
        &self.tree
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        self.tree.check_live()?;
        self.db.write(batch, WriteOptions::default())
    }

    /// Sets `key` to `value` (see [`Db::put`]).
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put_in(self, key, value);
        self.write(batch)
    }

    /// Sets `key` to `value` for `ttl` (see [`Db::put_with_ttl`]).
    pub fn put_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: std::time::Duration,
    ) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put_in_with_ttl(self, key, value, ttl);
        self.write(batch)
    }

    /// Merges `operand` into `key`'s value with this keyspace's merge operator
    /// ([`KeyspaceOptions::merge_operator`](crate::KeyspaceOptions::merge_operator); see
    /// [`Db::merge`]).
    pub fn merge(&self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.merge_in(self, key, operand);
        self.write(batch)
    }

    /// Deletes `key` (see [`Db::delete`]).
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete_in(self, key);
        self.write(batch)
    }

    /// Deletes every key in `range` with one write (see [`Db::delete_range`]).
    pub fn delete_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        let (start, end) = crate::batch::range_bounds(&range);
        let mut batch = WriteBatch::new();
        match end {
            Some(end) => batch.delete_range_in(self, start, end),
            None => batch.delete_range_from_in(self, start),
        };
        if batch.is_empty() {
            self.tree.check_live()?;
            return self.db.inner().check_writable();
        }
        self.write(batch)
    }

    /// Deletes every key that starts with `prefix` with one write.
    pub fn delete_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        let range = KeyRange::prefix(prefix.as_ref());
        let (lo, hi) = range.as_slices();
        self.delete_range::<&[u8], _>((lo, hi))
    }

    /// The value of `key`, if any, at the newest state.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.tree.check_live()?;
        self.db.inner().get_latest_in(&self.tree, key.as_ref())
    }

    /// Iterates the keys in `range` in order (see [`Db::range`]).
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> DbIter {
        self.iter_over(KeyRange::from_bounds(range), None)
    }

    /// Iterates every key that starts with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> DbIter {
        self.iter_over(KeyRange::prefix(prefix.as_ref()), None)
    }

    /// Every key in order.
    pub fn iter(&self) -> DbIter {
        self.range::<&[u8], _>(..)
    }

    pub(crate) fn iter_over(&self, range: KeyRange, seq: Option<u64>) -> DbIter {
        DbIter::in_tree(Arc::clone(self.db.inner()), &self.tree, seq, range)
            .refusing_if(self.tree.check_live().err())
    }

    /// Compacts the keys in `range` of this keyspace down to the bottom level (see
    /// [`Db::compact_range`]).
    pub fn compact_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        self.tree.check_live()?;
        self.db.flush()?;
        crate::compact::compact_range(self.db.inner(), &self.tree, &KeyRange::from_bounds(range))
    }

    /// Pins the current state of the whole database (see [`Db::snapshot`]); read this
    /// keyspace through it with [`Snapshot::get_in`] and [`Snapshot::range_in`].
    pub fn snapshot(&self) -> Snapshot {
        self.db.snapshot()
    }
}
