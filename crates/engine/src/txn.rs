//! Optimistic transactions: read at a snapshot, buffer writes, and at commit check —
//! inside the group commit, against every write committed since the snapshot — that
//! nothing the transaction depends on changed.
//!
//! **What is checked.** While any transaction is open, the write-group leader records
//! each key it commits with its sequence number (`Registry::recent`). A committing
//! transaction fails with [`Error::Conflict`] if a key it wrote, or (per isolation level)
//! a key it read or a range it scanned, has a sequence number there newer than its
//! snapshot, or is written by a transaction committed earlier in the same group. The
//! check costs one map lookup per key (a range lookup per scanned range), never a scan
//! of the database; writes pay for the record only while transactions are open.
//!
//! **Why no write can slip through.** A transaction counts itself as open, then (after a
//! full fence) reads the visible sequence number for its snapshot; a leader publishes
//! its group's sequence number, then (after a full fence) reads whether any transaction
//! is open. In every interleaving either the leader sees the transaction (and records
//! its keys before releasing the write lock, which the validating leader later takes)
//! or the transaction's snapshot includes the write.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering, fence};

use bytes::Bytes;
use strata_core::{Error, Result, SequenceNumber};

use crate::batch::{BatchEntry, BatchOp, WriteBatch};
use crate::db::{DbInner, WriteOptions, lock};
use crate::iter::{DbIter, KeyRange};
use crate::snapshot::Snapshot;

/// How much of what a transaction read is checked at commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Isolation {
    /// Snapshot isolation: every read sees the snapshot (and the transaction's own
    /// writes); commit fails if a key the transaction *wrote* was written by another
    /// commit after its snapshot (first committer wins, so no update is lost). Reads
    /// are not checked, so *write skew* is possible: two transactions that each read
    /// what the other writes can both commit. [`Transaction::get_for_update`] checks a
    /// read too.
    #[default]
    Snapshot,
    /// Serializable: snapshot isolation, and commit also fails if any key the
    /// transaction read, or any key in a range it scanned (a phantom included), was
    /// written after its snapshot. The committed transactions then have the effect of
    /// running one at a time, in commit order.
    Serializable,
}

/// The open transactions and the keys committed while any is open.
#[derive(Default)]
pub(crate) struct Registry {
    /// Open transactions: the leader's fast check (one load per group).
    open: AtomicUsize,
    state: std::sync::Mutex<RegistryState>,
}

#[derive(Default)]
struct RegistryState {
    /// Open transactions' snapshot sequence numbers, counted.
    snapshots: BTreeMap<SequenceNumber, usize>,
    /// Each key committed while a transaction was open, with its newest sequence
    /// number; pruned below the oldest open snapshot.
    recent: BTreeMap<Vec<u8>, SequenceNumber>,
    /// Each range deleted while a transaction was open: `(start, end, seq)`; pruned
    /// with `recent`. Range deletes are rare, so a list searched whole is enough.
    recent_ranges: Vec<(Vec<u8>, Vec<u8>, SequenceNumber)>,
    /// Size after the last prune: prune again once it has doubled.
    pruned_len: usize,
}

impl Registry {
    /// Registers a transaction and takes its snapshot (see the module comment for the
    /// ordering this relies on).
    fn begin(&self, inner: &Arc<DbInner>) -> Snapshot {
        let mut state = lock(&self.state);
        self.open.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let snapshot = Snapshot::new(Arc::clone(inner));
        *state.snapshots.entry(snapshot.sequence()).or_default() += 1;
        snapshot
    }

    fn end(&self, seq: SequenceNumber) {
        let mut state = lock(&self.state);
        if let Some(n) = state.snapshots.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                state.snapshots.remove(&seq);
            }
        }
        self.open.fetch_sub(1, Ordering::Relaxed);
        // Every recorded key's sequence number is at most the visible one (leaders
        // record after publishing), and a transaction begun later snapshots at least
        // that: entries at or below the oldest open snapshot serve nobody.
        match state.snapshots.first_key_value().map(|(&s, _)| s) {
            None => {
                state.recent.clear();
                state.recent_ranges.clear();
                state.pruned_len = 0;
            }
            Some(oldest)
                if state.recent.len() + state.recent_ranges.len()
                    > 1024.max(2 * state.pruned_len) =>
            {
                state.recent.retain(|_, s| *s > oldest);
                state.recent_ranges.retain(|(_, _, s)| *s > oldest);
                state.pruned_len = state.recent.len() + state.recent_ranges.len();
            }
            Some(_) => {}
        }
    }

    /// Called by the write-group leader, holding the write lock, after publishing the
    /// group's sequence numbers: records `keys` (each with its sequence number) if any
    /// transaction is open.
    pub(crate) fn record<'a>(
        &self,
        entries: impl Iterator<Item = (BatchEntry<'a>, SequenceNumber)>,
    ) {
        fence(Ordering::SeqCst);
        if self.open.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut state = lock(&self.state);
        for (entry, seq) in entries {
            let key = entry.key;
            if entry.kind == BatchOp::DeleteRange {
                state
                    .recent_ranges
                    .push((key.to_vec(), entry.value.to_vec(), seq));
                continue;
            }
            match state.recent.get_mut(key) {
                Some(s) => *s = (*s).max(seq),
                None => {
                    state.recent.insert(key.to_vec(), seq);
                }
            }
        }
    }

    /// Checks the members of a write group in order: `checks[i]` is member i's (if it
    /// is a transaction's). Returns, per member, the conflict that keeps it out of the
    /// group. `written[i]` are member i's entries, so later members are checked
    /// against earlier accepted ones.
    pub(crate) fn validate(
        &self,
        checks: &[Option<&ConflictCheck>],
        written: &[Vec<BatchEntry<'_>>],
    ) -> Vec<Option<Error>> {
        let state = lock(&self.state);
        let mut group = Written::default();
        let mut out = Vec::with_capacity(checks.len());
        for (check, entries) in checks.iter().zip(written) {
            let conflict = check.and_then(|c| c.first_conflict(&state, &group));
            if conflict.is_none() {
                for e in entries {
                    if e.kind == BatchOp::DeleteRange {
                        group.ranges.push((e.key, e.value));
                    } else {
                        group.keys.insert(e.key);
                    }
                }
            }
            out.push(conflict);
        }
        out
    }
}

/// What the members of a write group accepted so far write.
#[derive(Default)]
struct Written<'a> {
    keys: BTreeSet<&'a [u8]>,
    /// Deleted ranges, `[start, end)`.
    ranges: Vec<(&'a [u8], &'a [u8])>,
}

/// Whether `[start, end)` meets `range`.
fn meets(range: &KeyRange, start: &[u8], end: &[u8]) -> bool {
    // Keys of `[start, end)` in `range`: the range's part above `start` must begin
    // below `end`.
    let (lo, hi) = range.as_slices();
    let below_end = match lo {
        Bound::Included(lo) | Bound::Excluded(lo) => lo < end,
        Bound::Unbounded => true,
    };
    let above_start = match hi {
        Bound::Included(hi) => hi >= start,
        Bound::Excluded(hi) => hi > start,
        Bound::Unbounded => true,
    };
    below_end && above_start
}

/// What a committing transaction depends on.
pub(crate) struct ConflictCheck {
    snapshot: SequenceNumber,
    /// Keys written, then keys read (checked in that order, for the error's wording).
    keys: Vec<(Vec<u8>, &'static str)>,
    ranges: Vec<KeyRange>,
}

impl ConflictCheck {
    fn first_conflict(&self, state: &RegistryState, group: &Written<'_>) -> Option<Error> {
        let conflict = |key: &[u8], what| Error::Conflict {
            key: key.to_vec(),
            what,
        };
        let ranges_newer = || {
            state
                .recent_ranges
                .iter()
                .filter(|(_, _, s)| *s > self.snapshot)
                .map(|(a, b, _)| (a.as_slice(), b.as_slice()))
                .chain(group.ranges.iter().copied())
        };
        for (key, what) in &self.keys {
            let newer = state
                .recent
                .get(key.as_slice())
                .is_some_and(|&s| s > self.snapshot);
            let deleted = ranges_newer().any(|(a, b)| a <= key.as_slice() && key.as_slice() < b);
            if newer || deleted || group.keys.contains(key.as_slice()) {
                return Some(conflict(key, what));
            }
        }
        for range in &self.ranges {
            let bounds = range.as_slices();
            let newer = state
                .recent
                .range::<[u8], _>(bounds)
                .find(|(_, s)| **s > self.snapshot);
            if let Some((key, _)) = newer {
                return Some(conflict(key, "scanned"));
            }
            if let Some(key) = group.keys.iter().find(|k| range.contains(k)) {
                return Some(conflict(key, "scanned"));
            }
            if let Some((start, _)) = ranges_newer().find(|(a, b)| meets(range, a, b)) {
                return Some(conflict(start, "scanned"));
            }
        }
        None
    }
}

/// An optimistic transaction ([`crate::Db::transaction`]): reads at a snapshot see
/// its own writes; [`commit`](Self::commit) applies every write atomically (one WAL
/// record, through the group commit) or fails with [`Error::Conflict`] and writes
/// nothing. Dropping it without committing discards it.
///
/// ```
/// let db = strata::DbBuilder::in_memory().open()?;
/// db.put("balance", "10")?;
/// loop {
///     let mut tx = db.transaction();
///     let balance: u64 = std::str::from_utf8(&tx.get("balance")?.unwrap_or_default())
///         .unwrap_or("0")
///         .parse()
///         .unwrap_or(0);
///     tx.put("balance", (balance + 5).to_string());
///     match tx.commit() {
///         Err(e) if e.kind() == strata::ErrorKind::Conflict => continue, // retry
///         other => break other?,
///     }
/// }
/// assert_eq!(db.get("balance")?.as_deref(), Some(&b"15"[..]));
/// # Ok::<(), strata::Error>(())
/// ```
pub struct Transaction {
    inner: Arc<DbInner>,
    snapshot: Snapshot,
    isolation: Isolation,
    /// Buffered writes, newest per key; `None` deletes.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Keys whose reads are checked at commit.
    reads: BTreeSet<Vec<u8>>,
    /// Ranges whose scans are checked at commit (serializable only).
    ranges: Vec<KeyRange>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("snapshot", &self.sequence())
            .field("isolation", &self.isolation)
            .field("writes", &self.writes.len())
            .finish_non_exhaustive()
    }
}

impl Transaction {
    pub(crate) fn begin(inner: &Arc<DbInner>, isolation: Isolation) -> Transaction {
        let snapshot = inner.txns.begin(inner);
        Transaction {
            inner: Arc::clone(inner),
            snapshot,
            isolation,
            writes: BTreeMap::new(),
            reads: BTreeSet::new(),
            ranges: Vec::new(),
        }
    }

    /// The sequence number the transaction reads at.
    pub fn sequence(&self) -> SequenceNumber {
        self.snapshot.sequence()
    }

    /// The value of `key`: this transaction's own write if it made one, else the
    /// snapshot's. In serializable mode the read is checked at commit.
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let key = key.as_ref();
        if self.isolation == Isolation::Serializable {
            self.reads.insert(key.to_vec());
        }
        self.read(key)
    }

    /// [`get`](Self::get), with the read checked at commit whatever the isolation
    /// level: commit fails if another write changed `key` after the snapshot.
    pub fn get_for_update(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let key = key.as_ref();
        self.reads.insert(key.to_vec());
        self.read(key)
    }

    fn read(&self, key: &[u8]) -> Result<Option<Bytes>> {
        if let Some(own) = self.writes.get(key) {
            return Ok(own.as_ref().map(|v| Bytes::copy_from_slice(v)));
        }
        self.snapshot.get(key)
    }

    /// Sets `key` to `value` when the transaction commits.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.writes
            .insert(key.as_ref().to_vec(), Some(value.as_ref().to_vec()));
    }

    /// Deletes `key` when the transaction commits.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.writes.insert(key.as_ref().to_vec(), None);
    }

    /// The keys in `range` in order (`.rev()` for reverse) as of the snapshot, with this
    /// transaction's writes (made before this call) merged in. In serializable mode the
    /// whole range is checked at commit, so a key another commit adds to it (a phantom)
    /// is a conflict.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&mut self, range: R) -> TxnIter {
        self.iter_over(KeyRange::from_bounds(range))
    }

    /// The keys starting with `prefix`, like [`range`](Self::range).
    pub fn prefix(&mut self, prefix: impl AsRef<[u8]>) -> TxnIter {
        self.iter_over(KeyRange::prefix(prefix.as_ref()))
    }

    fn iter_over(&mut self, range: KeyRange) -> TxnIter {
        if self.isolation == Isolation::Serializable {
            self.ranges.push(range.clone());
        }
        let own: Vec<(Bytes, Option<Bytes>)> = self
            .writes
            .range::<[u8], _>(range.as_slices())
            .map(|(k, v)| {
                (
                    Bytes::copy_from_slice(k),
                    v.as_deref().map(Bytes::copy_from_slice),
                )
            })
            .collect();
        let base = self.snapshot.iter_range(range);
        TxnIter {
            base,
            base_front: None,
            base_back: None,
            own_back: own.len(),
            own,
            own_front: 0,
        }
    }

    /// Applies every write atomically, or fails with [`Error::Conflict`] (nothing
    /// written) if another commit after the snapshot touched what this transaction
    /// depends on ([`Isolation`]). With nothing written there is nothing to check.
    pub fn commit(self) -> Result<()> {
        self.commit_with(WriteOptions::default())
    }

    /// [`commit`](Self::commit) with the durability of `options`.
    pub fn commit_with(mut self, options: WriteOptions) -> Result<()> {
        let snapshot_seq = self.sequence();
        let writes = std::mem::take(&mut self.writes);
        if writes.is_empty() {
            return self.inner.check_open();
        }
        let mut batch = WriteBatch::new();
        let mut keys: Vec<(Vec<u8>, &'static str)> = Vec::new();
        for (key, value) in writes {
            match &value {
                Some(v) => batch.put(&key, v),
                None => batch.delete(&key),
            };
            keys.push((key, "wrote"));
        }
        keys.extend(
            std::mem::take(&mut self.reads)
                .into_iter()
                .map(|k| (k, "read")),
        );
        let check = ConflictCheck {
            snapshot: snapshot_seq,
            keys,
            ranges: std::mem::take(&mut self.ranges),
        };
        crate::write::write_checked(&self.inner, batch, options.sync, Some(check))
    }

    /// Discards the transaction (as dropping it does).
    pub fn rollback(self) {}
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // Committed or not, it no longer needs conflicts recorded for it (a commit
        // was validated inside its write group, before this runs).
        self.inner.txns.end(self.snapshot.sequence());
    }
}

/// A transaction's range iterator: the snapshot's entries with the transaction's own
/// writes merged in (its puts replace or add entries, its deletes hide them). Owned
/// items; both directions.
pub struct TxnIter {
    base: DbIter,
    base_front: Option<(Bytes, Bytes)>,
    base_back: Option<(Bytes, Bytes)>,
    own: Vec<(Bytes, Option<Bytes>)>,
    own_front: usize,
    own_back: usize,
}

impl std::fmt::Debug for TxnIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnIter").finish_non_exhaustive()
    }
}

impl Iterator for TxnIter {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.base_front.is_none() {
                match self.base.next() {
                    Some(Ok(kv)) => self.base_front = Some(kv),
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.base_front = self.base_back.take(),
                }
            }
            let own = (self.own_front < self.own_back)
                .then(|| self.own.get(self.own_front))
                .flatten();
            let take_own = match (&self.base_front, own) {
                (None, None) => return None,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((bk, _)), Some((ok, _))) => ok <= bk,
            };
            if !take_own {
                return self.base_front.take().map(Ok);
            }
            let (key, value) = own?.clone();
            self.own_front += 1;
            if self.base_front.as_ref().is_some_and(|(bk, _)| *bk == key) {
                self.base_front = None;
            }
            if let Some(v) = value {
                return Some(Ok((key, v)));
            }
        }
    }
}

impl DoubleEndedIterator for TxnIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        loop {
            if self.base_back.is_none() {
                match self.base.next_back() {
                    Some(Ok(kv)) => self.base_back = Some(kv),
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.base_back = self.base_front.take(),
                }
            }
            let own = (self.own_front < self.own_back)
                .then(|| self.own.get(self.own_back - 1))
                .flatten();
            let take_own = match (&self.base_back, own) {
                (None, None) => return None,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((bk, _)), Some((ok, _))) => ok >= bk,
            };
            if !take_own {
                return self.base_back.take().map(Ok);
            }
            let (key, value) = own?.clone();
            self.own_back -= 1;
            if self.base_back.as_ref().is_some_and(|(bk, _)| *bk == key) {
                self.base_back = None;
            }
            if let Some(v) = value {
                return Some(Ok((key, v)));
            }
        }
    }
}
