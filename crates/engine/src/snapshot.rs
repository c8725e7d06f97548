//! Snapshots: pinned sequence numbers.

use std::collections::BTreeMap;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use strata_core::{Result, SequenceNumber};

use crate::db::{DbInner, lock};
use crate::iter::{DbIter, KeyRange};
use crate::tree::View;

/// The live snapshots, counted per sequence number; compaction keeps the newest version
/// of each key visible to each of them.
#[derive(Debug, Default)]
pub(crate) struct SnapshotList {
    live: Mutex<BTreeMap<SequenceNumber, usize>>,
}

impl SnapshotList {
    fn release(&self, seq: SequenceNumber) {
        let mut live = lock(&self.live);
        if let Some(n) = live.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                live.remove(&seq);
            }
        }
    }

    /// The distinct live snapshot sequence numbers, ascending.
    pub fn list(&self) -> Vec<SequenceNumber> {
        lock(&self.live).keys().copied().collect()
    }
}

/// A consistent, read-only view of the database as of the moment it was taken. Writes
/// made later are invisible through it. Released on drop.
pub struct Snapshot {
    inner: Arc<DbInner>,
    seq: SequenceNumber,
    /// Read-only handles: the state the snapshot was taken in. A writable handle's
    /// compactions keep what registered snapshots need, but a read-only handle's
    /// writer knows nothing of its snapshots, so after a `refresh` the versions this
    /// one reads may be compacted away: it keeps its own view instead (of every
    /// keyspace, by id).
    view: Option<Arc<View>>,
    keyspace_views: Vec<(u32, Arc<View>)>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("seq", &self.seq).finish()
    }
}

impl Snapshot {
    pub(crate) fn new(inner: Arc<DbInner>) -> Self {
        // Read the sequence number under the list's lock, so a compaction that lists the
        // snapshots either sees this one or started before its sequence existed.
        // View first, then sequence: see `DbInner::get_latest` for why.
        // Every keyspace's view under the keyspaces' lock, which `refresh` holds while
        // it installs a state: one state for all of them.
        let keyspace_views: Vec<(u32, Arc<View>)> = match inner.opts.read_only {
            true => {
                let keyspaces = inner.keyspaces.read().unwrap_or_else(|p| p.into_inner());
                keyspaces.trees.values().map(|t| (t.id, t.view())).collect()
            }
            false => Vec::new(),
        };
        let view = inner.opts.read_only.then(|| {
            keyspace_views
                .iter()
                .find(|(id, _)| *id == crate::batch::DEFAULT_KEYSPACE)
                .map_or_else(|| inner.tree.view(), |(_, v)| Arc::clone(v))
        });
        let mut live = lock(&inner.snapshots.live);
        let seq = inner.visible_seq.load(std::sync::atomic::Ordering::Acquire);
        *live.entry(seq).or_default() += 1;
        drop(live);
        Snapshot {
            inner,
            seq,
            view,
            keyspace_views,
        }
    }

    /// The sequence number this snapshot reads at.
    pub fn sequence(&self) -> SequenceNumber {
        self.seq
    }

    /// The value of `key` as of the snapshot.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        match &self.view {
            Some(view) => {
                self.inner.check_open()?;
                self.inner.get_in(view, key.as_ref(), self.seq)
            }
            None => self.inner.get_at(key.as_ref(), self.seq),
        }
    }

    /// Iterates `range` as of the snapshot.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> DbIter {
        self.iter_over(KeyRange::from_bounds(range))
    }

    /// Iterates the keys starting with `prefix` as of the snapshot.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> DbIter {
        self.iter_over(KeyRange::prefix(prefix.as_ref()))
    }

    /// Iterates `range` as of the snapshot.
    pub(crate) fn iter_range(&self, range: KeyRange) -> DbIter {
        self.iter_over(range)
    }

    fn iter_over(&self, range: KeyRange) -> DbIter {
        let inner = Arc::clone(&self.inner);
        match &self.view {
            Some(view) => DbIter::in_view(inner, Arc::clone(view), self.seq, range),
            None => DbIter::new(inner, Some(self.seq), range),
        }
    }

    /// Every key as of the snapshot.
    pub fn iter(&self) -> DbIter {
        self.range::<&[u8], _>(..)
    }

    /// The value of `key` in `keyspace` as of the snapshot (a snapshot is consistent
    /// across keyspaces; a keyspace made after it is empty in it).
    pub fn get_in(
        &self,
        keyspace: &crate::Keyspace,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Bytes>> {
        let tree = keyspace.tree();
        tree.check_live()?;
        self.inner.check_open()?;
        if tree.id == crate::batch::DEFAULT_KEYSPACE {
            return self.get(key);
        }
        match self.pinned(tree.id) {
            Some(Some(view)) => self.inner.get_in(view, key.as_ref(), self.seq),
            Some(None) => Ok(None),
            None => self.inner.get_in(&tree.view(), key.as_ref(), self.seq),
        }
    }

    /// Read-only handles: the view of keyspace `id` this snapshot pinned (`Some(None)`:
    /// the keyspace did not exist yet). `None` on a writable handle, whose compactions
    /// keep what the snapshot needs in the keyspace's current view.
    fn pinned(&self, id: u32) -> Option<Option<&Arc<View>>> {
        self.inner.opts.read_only.then(|| {
            self.keyspace_views
                .iter()
                .find(|(k, _)| *k == id)
                .map(|(_, v)| v)
        })
    }

    /// Iterates `range` of `keyspace` as of the snapshot (see [`get_in`](Self::get_in)).
    pub fn range_in<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        keyspace: &crate::Keyspace,
        range: R,
    ) -> DbIter {
        self.iter_range_in(keyspace, KeyRange::from_bounds(range))
    }

    /// Iterates `range` of `keyspace` as of the snapshot.
    pub(crate) fn iter_range_in(&self, keyspace: &crate::Keyspace, range: KeyRange) -> DbIter {
        if keyspace.id() == crate::batch::DEFAULT_KEYSPACE {
            return self.iter_over(range);
        }
        match self.pinned(keyspace.id()) {
            Some(Some(view)) => {
                DbIter::in_view(Arc::clone(&self.inner), Arc::clone(view), self.seq, range)
            }
            // Made after the snapshot: nothing in it, as of the snapshot.
            Some(None) => DbIter::in_view(
                Arc::clone(&self.inner),
                Arc::new(View::empty(0)),
                self.seq,
                range,
            ),
            None => keyspace.iter_over(range, Some(self.seq)),
        }
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.inner.snapshots.release(self.seq);
    }
}
