//! Reading merge operands: folding a key's history into its value.
//!
//! A point lookup that meets a merge operand as the newest visible entry of a key
//! ([`Lookup::Merge`](strata_core::Lookup::Merge)) gathers the key's history from that layer down — every operand
//! newest first, up to a put (the base value), a tombstone or a covering range
//! tombstone (no base) — and folds it with the keyspace's operator. Iterators fold the
//! same way as they pass each key ([`KeyHistory`]). Compaction folds ahead of time
//! (`strata_compaction`'s `fold` module), so histories stay short.

use bytes::Bytes;
use strata_core::{
    InternalKey, MergeOperator, ParsedInternalKey, Result, SequenceNumber, SortedIter, ValueKind,
    fold_operands,
};

use crate::tree::View;
use crate::version::Version;

/// A key's visible history being gathered, newest first: the merge operands met so
/// far and, once known, what lies below them.
pub(crate) struct KeyHistory {
    /// The time expiring values are judged at.
    now_ms: u64,
    /// Operands, newest first.
    operands: Vec<Bytes>,
    /// The value of the put that ended the history, if one did.
    base: Option<Bytes>,
    /// Whether the history is complete: a put, a tombstone or a range tombstone was
    /// met (otherwise it ends where the data does).
    complete: bool,
}

impl KeyHistory {
    /// An empty history, judging expiring values at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        KeyHistory {
            now_ms,
            operands: Vec::new(),
            base: None,
            complete: false,
        }
    }

    /// Takes the next older visible entry (its stored value); returns whether the
    /// history is complete. An expired value ends it as a tombstone would.
    pub fn push(&mut self, kind: ValueKind, value: Bytes) -> bool {
        match kind {
            ValueKind::Merge => self.operands.push(value),
            ValueKind::Put => {
                self.base = Some(value);
                self.complete = true;
            }
            ValueKind::ExpiringPut => {
                self.base = live_value(&value, self.now_ms);
                self.complete = true;
            }
            ValueKind::Delete => self.complete = true,
        }
        self.complete
    }

    /// A range tombstone newer than everything older: the history ends with no base.
    pub fn cut(&mut self) {
        self.complete = true;
    }

    /// Whether a put, tombstone or range tombstone ended the history.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The key's value: the base if no operand was met, else the operands folded onto
    /// it with `operator`. `None` for a deleted or absent key.
    pub fn resolve(
        &self,
        operator: Option<&dyn MergeOperator>,
        key: &[u8],
    ) -> Result<Option<Bytes>> {
        if self.operands.is_empty() {
            return Ok(self.base.clone());
        }
        let oldest_first: Vec<&[u8]> = self.operands.iter().rev().map(|o| &o[..]).collect();
        fold_operands(operator, key, self.base.as_deref(), &oldest_first).map(|v| Some(v.into()))
    }
}

/// Feeds `it`'s entries of `key` visible at `snapshot` (newest first) to `history`,
/// stopping where it completes or where an entry is older than `cover` (the newest
/// range tombstone of the layer, or a newer one, covering the key).
fn gather(
    it: &mut dyn SortedIter,
    key: &[u8],
    snapshot: SequenceNumber,
    cover: Option<SequenceNumber>,
    history: &mut KeyHistory,
) -> Result<()> {
    it.seek(InternalKey::for_seek(key, snapshot).as_bytes())?;
    while it.valid() {
        let Some(p) = ParsedInternalKey::parse(it.key()) else {
            return Err(strata_core::Error::corruption(
                "a table or MemTable",
                0,
                "malformed internal key while folding merge operands",
            ));
        };
        if p.user_key != key {
            break;
        }
        if cover.is_some_and(|t| t > p.seq) {
            history.cut();
            return Ok(());
        }
        if history.push(p.kind, it.value_bytes()) {
            return Ok(());
        }
        it.next()?;
    }
    if cover.is_some() {
        // The tombstone is newer than every entry of older layers.
        history.cut();
    }
    Ok(())
}

impl View {
    /// The value of `key` at `snapshot` when its newest visible entry is a merge
    /// operand: the key's history gathered layer by layer, newest first, and folded.
    pub(crate) fn get_merged(
        &self,
        key: &[u8],
        snapshot: SequenceNumber,
        now_ms: u64,
    ) -> Result<Option<Bytes>> {
        let mut history = KeyHistory::new(now_ms);
        for mem in self.memtables() {
            let cover = mem.covering_range_tombstone(key, snapshot);
            gather(&mut mem.iter(), key, snapshot, cover, &mut history)?;
            if history.is_complete() {
                return history.resolve(self.merge_operator(), key);
            }
        }
        self.version.gather(key, snapshot, &mut history)?;
        history.resolve(self.merge_operator(), key)
    }
}

impl Version {
    /// Feeds the tables' history of `key` to `history`, in the order a point lookup
    /// asks them (level 0 newest first, then one table per level).
    fn gather(&self, key: &[u8], snapshot: SequenceNumber, history: &mut KeyHistory) -> Result<()> {
        for file in self.tables_for(key) {
            let table = file.table()?;
            let cover = table.range_tombstones().covering_seq(key, snapshot);
            gather(&mut table.iter(), key, snapshot, cover, history)?;
            if history.is_complete() {
                break;
            }
        }
        Ok(())
    }
}

/// The user's value of a stored expiring value, if it has not expired at `now_ms`
/// (`None` also for one too short to hold its expiry: layers refuse those when they
/// read them, so this is never reached with one).
pub(crate) fn live_value(stored: &Bytes, now_ms: u64) -> Option<Bytes> {
    let (expires_at_ms, _) = strata_core::expiry::split_expiring(stored)?;
    (!strata_core::expiry::is_expired(expires_at_ms, now_ms))
        .then(|| stored.slice(strata_core::expiry::EXPIRY_LEN..))
}
