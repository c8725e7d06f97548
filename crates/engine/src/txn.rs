//! Optimistic transactions: read at a snapshot, buffer writes, and at commit check —
//! inside the group commit, against every write committed since the snapshot — that
//! nothing the transaction depends on changed.
//!
//! **What is checked.** While any transaction is open, the write-group leader records
//! each key it commits, under its keyspace's id, with its sequence number
//! (`Registry::recent`). A committing transaction fails with [`Error::Conflict`] if a
//! key it wrote, or (per isolation level) a key it read or a range it scanned, has a
//! sequence number there — in the same keyspace — newer than its snapshot, or is written
//! by a transaction committed earlier in the same group. The check costs one map lookup
//! per key (a range lookup per scanned range), never a scan of the database; writes pay
//! for the record only while transactions are open.
//!
//! **Why no write can slip through.** A transaction counts itself as open, then (after a
//! full fence) reads the visible sequence number for its snapshot; a leader publishes
//! its group's sequence number, then (after a full fence) reads whether any transaction
//! is open. In every interleaving either the leader sees the transaction (and records
//! its keys before releasing the write lock, which the validating leader later takes)
//! or the transaction's snapshot includes the write.
//!
//! **Keyspaces.** A transaction keeps its reads, writes and scans per keyspace id and
//! commits one batch naming each keyspace ([`WriteBatch::put_in`]). Handles are checked
//! as the batch path checks them: a dropped keyspace or another database's handle is
//! `InvalidArgument` on reads at once, and on writes at commit.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering, fence};

use bytes::Bytes;
use strata_core::{Error, Result, SequenceNumber};

use crate::Keyspace;
use crate::batch::{BatchEntry, BatchOp, DEFAULT_KEYSPACE, WriteBatch};
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
    /// Per keyspace id, what was committed while a transaction was open; pruned below
    /// the oldest open snapshot. Keyed by id, never by name: ids are never reused, so
    /// a dropped keyspace's entries cannot be taken for a re-made one's.
    recent: BTreeMap<u32, Written<Vec<u8>>>,
    /// Keys and ranges in `recent`, counted.
    len: usize,
    /// `len` after the last prune: prune again once it has doubled.
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
                state.len = 0;
                state.pruned_len = 0;
            }
            Some(oldest) if state.len > 1024.max(2 * state.pruned_len) => {
                state.recent.retain(|_, w| {
                    w.keys.retain(|_, s| *s > oldest);
                    w.ranges.retain(|(_, _, s)| *s > oldest);
                    !w.keys.is_empty() || !w.ranges.is_empty()
                });
                state.len = state.recent.values().map(Written::len).sum();
                state.pruned_len = state.len;
            }
            Some(_) => {}
        }
    }

    /// Called by the write-group leader, holding the write lock, after publishing the
    /// group's sequence numbers: records `entries` (each with its sequence number, in
    /// its keyspace) if any transaction is open.
    pub(crate) fn record<'a>(
        &self,
        entries: impl Iterator<Item = (BatchEntry<'a>, SequenceNumber)>,
    ) {
        fence(Ordering::SeqCst);
        if self.open.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut state = lock(&self.state);
        let mut added = 0;
        for (entry, seq) in entries {
            let written = state.recent.entry(entry.keyspace).or_default();
            added += usize::from(written.add(&entry, seq, <[u8]>::to_vec));
        }
        state.len += added;
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
        // What the members accepted so far write, per keyspace. Their sequence numbers
        // are not given yet; `IN_THIS_GROUP` is newer than any snapshot.
        let mut group: BTreeMap<u32, Written<&[u8]>> = BTreeMap::new();
        let mut out = Vec::with_capacity(checks.len());
        for (check, entries) in checks.iter().zip(written) {
            let conflict = check.and_then(|c| c.first_conflict(&state.recent, &group));
            if conflict.is_none() {
                for e in entries {
                    let w = group.entry(e.keyspace).or_default();
                    w.add(e, IN_THIS_GROUP, |k| k);
                }
            }
            out.push(conflict);
        }
        out
    }
}

/// The sequence number given to writes of the group being validated: newer than any
/// snapshot, which is what a conflict check asks.
const IN_THIS_GROUP: SequenceNumber = SequenceNumber::MAX;

/// What was written in one keyspace: each key with the sequence number of its newest
/// write, and each deleted range. `K` owns the key (the registry) or borrows it (the
/// write group being validated).
struct Written<K> {
    keys: BTreeMap<K, SequenceNumber>,
    /// Deleted ranges, `[start, end)`, with their sequence numbers. Range deletes are
    /// rare, so a list searched whole is enough.
    ranges: Vec<(K, K, SequenceNumber)>,
}

impl<K> Default for Written<K> {
    fn default() -> Self {
        Written {
            keys: BTreeMap::new(),
            ranges: Vec::new(),
        }
    }
}

impl<K: Borrow<[u8]> + Ord> Written<K> {
    fn len(&self) -> usize {
        self.keys.len() + self.ranges.len()
    }

    /// Adds `entry` (its keyspace is this one's) written at `seq`, making keys with
    /// `own`; whether a key or range was added (rather than a sequence number raised).
    fn add<'a>(
        &mut self,
        entry: &BatchEntry<'a>,
        seq: SequenceNumber,
        own: impl Fn(&'a [u8]) -> K,
    ) -> bool {
        if entry.kind == BatchOp::DeleteRange {
            self.ranges.push((own(entry.key), own(entry.value), seq));
            return true;
        }
        match self.keys.get_mut(entry.key) {
            Some(s) => {
                *s = (*s).max(seq);
                false
            }
            None => {
                self.keys.insert(own(entry.key), seq);
                true
            }
        }
    }

    /// Whether `key` was written, or deleted by a range, after `snapshot`.
    fn changed(&self, key: &[u8], snapshot: SequenceNumber) -> bool {
        self.keys.get(key).is_some_and(|&s| s > snapshot)
            || self
                .ranges
                .iter()
                .any(|(a, b, s)| *s > snapshot && a.borrow() <= key && key < b.borrow())
    }

    /// A key of `range` written after `snapshot`, or the start of a range deleted after
    /// it that meets `range`.
    fn changed_in(&self, range: &KeyRange, snapshot: SequenceNumber) -> Option<&[u8]> {
        let key = self
            .keys
            .range::<[u8], _>(range.as_slices())
            .find(|(_, s)| **s > snapshot)
            .map(|(k, _)| k.borrow());
        key.or_else(|| {
            self.ranges
                .iter()
                .find(|(a, b, s)| *s > snapshot && meets(range, a.borrow(), b.borrow()))
                .map(|(a, _, _)| a.borrow())
        })
    }
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

/// What a committing transaction depends on, per keyspace id: a write in another
/// keyspace, of the same key bytes or not, is no conflict.
pub(crate) struct ConflictCheck {
    snapshot: SequenceNumber,
    /// Keys written, then keys read (checked in that order, for the error's wording),
    /// each with its keyspace.
    keys: Vec<(u32, Vec<u8>, &'static str)>,
    /// Ranges scanned, each with its keyspace.
    ranges: Vec<(u32, KeyRange)>,
}

impl ConflictCheck {
    /// The first conflict with what was committed (`recent`) or accepted earlier in
    /// this group (`group`): one map lookup per key, a range lookup per scanned range.
    fn first_conflict(
        &self,
        recent: &BTreeMap<u32, Written<Vec<u8>>>,
        group: &BTreeMap<u32, Written<&[u8]>>,
    ) -> Option<Error> {
        let conflict = |key: &[u8], what| Error::Conflict {
            key: key.to_vec(),
            what,
        };
        for (id, key, what) in &self.keys {
            let committed = recent
                .get(id)
                .is_some_and(|w| w.changed(key, self.snapshot));
            if committed || group.get(id).is_some_and(|w| w.changed(key, self.snapshot)) {
                return Some(conflict(key, what));
            }
        }
        for (id, range) in &self.ranges {
            let committed = recent
                .get(id)
                .and_then(|w| w.changed_in(range, self.snapshot));
            let changed = committed.or_else(|| {
                group
                    .get(id)
                    .and_then(|w| w.changed_in(range, self.snapshot))
            });
            if let Some(key) = changed {
                return Some(conflict(key, "scanned"));
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
/// It may span keyspaces: `get`, `put`, `range`, ... act on the default keyspace, and
/// [`get_in`](Self::get_in), [`put_in`](Self::put_in), [`range_in`](Self::range_in),
/// ... on the keyspace they are given. Conflicts are per keyspace: the same key in two
/// keyspaces is two keys.
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
    /// What the transaction read and wrote, per keyspace id (the default one's too).
    parts: BTreeMap<u32, Part>,
    /// Why commit must fail: a write named a keyspace of another database, or a
    /// dropped one (`put_in` and `delete_in` return nothing, like `put`).
    refused: Option<Error>,
}

/// What a transaction did in one keyspace.
#[derive(Default)]
struct Part {
    /// The handle it was given, for a keyspace other than the default one: commit
    /// writes through it and checks it was not dropped.
    keyspace: Option<Keyspace>,
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
            .field(
                "writes",
                &self.parts.values().map(|p| p.writes.len()).sum::<usize>(),
            )
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
            parts: BTreeMap::new(),
            refused: None,
        }
    }

    /// The sequence number the transaction reads at.
    pub fn sequence(&self) -> SequenceNumber {
        self.snapshot.sequence()
    }

    /// The id of `keyspace` (`None`: the default one), or `InvalidArgument` if it was
    /// dropped or belongs to another database (or to this one before a reopen): ids
    /// are per open database, so another's would name an unrelated keyspace here.
    fn keyspace_id(&self, keyspace: Option<&Keyspace>) -> Result<u32> {
        let Some(keyspace) = keyspace else {
            return Ok(DEFAULT_KEYSPACE);
        };
        if keyspace.db_instance() != self.inner.instance {
            return Err(crate::batch::foreign_keyspaces());
        }
        keyspace.tree().check_live()?;
        Ok(keyspace.id())
    }

    /// The part of keyspace `id`, made if missing.
    fn part(&mut self, id: u32, keyspace: Option<&Keyspace>) -> &mut Part {
        self.parts.entry(id).or_insert_with(|| Part {
            keyspace: keyspace.filter(|_| id != DEFAULT_KEYSPACE).cloned(),
            ..Part::default()
        })
    }

    /// The value of `key`: this transaction's own write if it made one, else the
    /// snapshot's. In serializable mode the read is checked at commit.
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.read(
            None,
            key.as_ref(),
            self.isolation == Isolation::Serializable,
        )
    }

    /// [`get`](Self::get), with the read checked at commit whatever the isolation
    /// level: commit fails if another write changed `key` after the snapshot.
    pub fn get_for_update(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.read(None, key.as_ref(), true)
    }

    /// The value of `key` in `keyspace` (see [`get`](Self::get)). `InvalidArgument` if
    /// the keyspace was dropped or belongs to another database.
    ///
    /// ```
    /// let db = strata::DbBuilder::in_memory().open()?;
    /// let stock = db.keyspace("stock")?;
    /// let orders = db.keyspace("orders")?;
    /// stock.put("widget", "3")?;
    ///
    /// let mut tx = db.transaction_with(strata::Isolation::Serializable);
    /// let left: u32 = std::str::from_utf8(&tx.get_in(&stock, "widget")?.unwrap_or_default())
    ///     .unwrap_or("0")
    ///     .parse()
    ///     .unwrap_or(0);
    /// tx.put_in(&stock, "widget", (left - 1).to_string());
    /// tx.put_in(&orders, "order:1", "widget");
    /// assert_eq!(tx.get_in(&stock, "widget")?.as_deref(), Some(&b"2"[..])); // its own write
    /// assert_eq!(tx.get("widget")?, None); // the default keyspace is another one
    /// tx.commit()?; // both keyspaces, atomically
    /// assert_eq!(orders.get("order:1")?.as_deref(), Some(&b"widget"[..]));
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn get_in(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let checked = self.isolation == Isolation::Serializable;
        self.read(Some(keyspace), key.as_ref(), checked)
    }

    /// [`get_for_update`](Self::get_for_update) in `keyspace`: commit fails if another
    /// write changed `key` there after the snapshot (the same key in another keyspace
    /// does not count).
    pub fn get_for_update_in(
        &mut self,
        keyspace: &Keyspace,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Bytes>> {
        self.read(Some(keyspace), key.as_ref(), true)
    }

    /// Reads `key` of `keyspace`, recording it for the commit's check if `checked`.
    fn read(
        &mut self,
        keyspace: Option<&Keyspace>,
        key: &[u8],
        checked: bool,
    ) -> Result<Option<Bytes>> {
        let id = self.keyspace_id(keyspace)?;
        let own = self.parts.get(&id).and_then(|p| p.writes.get(key));
        let value = match (own, keyspace) {
            (Some(own), _) => own.as_deref().map(Bytes::copy_from_slice),
            (None, None) => self.snapshot.get(key)?,
            (None, Some(keyspace)) => self.snapshot.get_in(keyspace, key)?,
        };
        if checked {
            self.part(id, keyspace).reads.insert(key.to_vec());
        }
        Ok(value)
    }

    /// Sets `key` to `value` when the transaction commits.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.write(None, key.as_ref(), Some(value.as_ref()));
    }

    /// Deletes `key` when the transaction commits.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.write(None, key.as_ref(), None);
    }

    /// Sets `key` to `value` in `keyspace` when the transaction commits (see
    /// [`get_in`](Self::get_in) for an example). A keyspace dropped before the commit,
    /// or one of another database, makes the commit fail with `InvalidArgument`,
    /// writing nothing.
    pub fn put_in(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.write(Some(keyspace), key.as_ref(), Some(value.as_ref()));
    }

    /// Deletes `key` in `keyspace` when the transaction commits (see
    /// [`put_in`](Self::put_in)).
    ///
    /// ```
    /// let db = strata::DbBuilder::in_memory().open()?;
    /// let sessions = db.keyspace("sessions")?;
    /// sessions.put("s1", "ada")?;
    /// let mut tx = db.transaction();
    /// tx.delete_in(&sessions, "s1");
    /// assert_eq!(tx.get_in(&sessions, "s1")?, None);
    /// tx.commit()?;
    /// assert_eq!(sessions.get("s1")?, None);
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn delete_in(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>) {
        self.write(Some(keyspace), key.as_ref(), None);
    }

    fn write(&mut self, keyspace: Option<&Keyspace>, key: &[u8], value: Option<&[u8]>) {
        match self.keyspace_id(keyspace) {
            Ok(id) => {
                self.part(id, keyspace)
                    .writes
                    .insert(key.to_vec(), value.map(<[u8]>::to_vec));
            }
            // Reported by the commit, which must then write nothing.
            Err(e) => {
                self.refused.get_or_insert(e);
            }
        }
    }

    /// The keys in `range` in order (`.rev()` for reverse) as of the snapshot, with this
    /// transaction's writes (made before this call) merged in. In serializable mode the
    /// whole range is checked at commit, so a key another commit adds to it (a phantom)
    /// is a conflict.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&mut self, range: R) -> TxnIter {
        self.iter_over(None, KeyRange::from_bounds(range))
    }

    /// The keys starting with `prefix`, like [`range`](Self::range).
    pub fn prefix(&mut self, prefix: impl AsRef<[u8]>) -> TxnIter {
        self.iter_over(None, KeyRange::prefix(prefix.as_ref()))
    }

    /// The keys in `range` of `keyspace`, with this transaction's writes to that
    /// keyspace merged in (see [`range`](Self::range)); in serializable mode, a key
    /// another commit adds to this range *of this keyspace* is a conflict. The
    /// iterator yields `InvalidArgument` and ends if the keyspace was dropped or
    /// belongs to another database.
    ///
    /// ```
    /// let db = strata::DbBuilder::in_memory().open()?;
    /// let index = db.keyspace("index")?;
    /// index.put("name:ada", "1")?;
    /// index.put("name:grace", "2")?;
    /// let mut tx = db.transaction();
    /// tx.put_in(&index, "name:alan", "3");
    /// tx.delete_in(&index, "name:grace");
    /// let names: Vec<_> = tx
    ///     .range_in(&index, "name:".."name;")
    ///     .map(|kv| kv.map(|(k, _)| k))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(names, ["name:ada", "name:alan"]);
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn range_in<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &mut self,
        keyspace: &Keyspace,
        range: R,
    ) -> TxnIter {
        self.iter_over(Some(keyspace), KeyRange::from_bounds(range))
    }

    /// The keys of `keyspace` starting with `prefix`, like [`range_in`](Self::range_in).
    pub fn prefix_in(&mut self, keyspace: &Keyspace, prefix: impl AsRef<[u8]>) -> TxnIter {
        self.iter_over(Some(keyspace), KeyRange::prefix(prefix.as_ref()))
    }

    fn iter_over(&mut self, keyspace: Option<&Keyspace>, range: KeyRange) -> TxnIter {
        let id = match self.keyspace_id(keyspace) {
            Ok(id) => id,
            Err(e) => {
                let base = self.snapshot.iter_range(range).refusing_if(Some(e));
                return TxnIter::new(base, Vec::new());
            }
        };
        let own: Vec<(Bytes, Option<Bytes>)> = self
            .parts
            .get(&id)
            .into_iter()
            .flat_map(|p| p.writes.range::<[u8], _>(range.as_slices()))
            .map(|(k, v)| {
                (
                    Bytes::copy_from_slice(k),
                    v.as_deref().map(Bytes::copy_from_slice),
                )
            })
            .collect();
        let base = match keyspace {
            None => self.snapshot.iter_range(range.clone()),
            Some(keyspace) => self.snapshot.iter_range_in(keyspace, range.clone()),
        };
        if self.isolation == Isolation::Serializable {
            self.part(id, keyspace).ranges.push(range);
        }
        TxnIter::new(base, own)
    }

    /// Applies every write atomically, or fails with [`Error::Conflict`] (nothing
    /// written) if another commit after the snapshot touched what this transaction
    /// depends on ([`Isolation`]). With nothing written there is nothing to check.
    ///
    /// `InvalidArgument`, nothing written, if a keyspace the transaction used was
    /// dropped meanwhile, or a write named a keyspace of another database.
    pub fn commit(self) -> Result<()> {
        self.commit_with(WriteOptions::default())
    }

    /// [`commit`](Self::commit) with the durability of `options`.
    pub fn commit_with(mut self, options: WriteOptions) -> Result<()> {
        if let Some(e) = self.refused.take() {
            return Err(e);
        }
        // What it read or wrote in a dropped keyspace is gone: nothing to commit on.
        // (A drop after this check is ordered after the commit, or refuses its batch in
        // the write group.)
        for keyspace in self.parts.values().filter_map(|p| p.keyspace.as_ref()) {
            keyspace.tree().check_live()?;
        }
        let mut batch = WriteBatch::new();
        let mut keys: Vec<(u32, Vec<u8>, &'static str)> = Vec::new();
        let mut reads = Vec::new();
        let mut ranges = Vec::new();
        for (id, part) in std::mem::take(&mut self.parts) {
            for (key, value) in part.writes {
                match (&part.keyspace, &value) {
                    (None, Some(v)) => batch.put(&key, v),
                    (None, None) => batch.delete(&key),
                    (Some(ks), Some(v)) => batch.put_in(ks, &key, v),
                    (Some(ks), None) => batch.delete_in(ks, &key),
                };
                keys.push((id, key, "wrote"));
            }
            reads.extend(part.reads.into_iter().map(|k| (id, k, "read")));
            ranges.extend(part.ranges.into_iter().map(|r| (id, r)));
        }
        if batch.is_empty() {
            return self.inner.check_open();
        }
        keys.extend(reads);
        let check = ConflictCheck {
            snapshot: self.sequence(),
            keys,
            ranges,
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

impl TxnIter {
    /// `base` with `own` (sorted, in `base`'s range; `None` deletes) merged in.
    fn new(base: DbIter, own: Vec<(Bytes, Option<Bytes>)>) -> Self {
        TxnIter {
            base,
            base_front: None,
            base_back: None,
            own_back: own.len(),
            own,
            own_front: 0,
        }
    }
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
