//! The entry-by-entry rules of compacting one merged stream, newest version first: the
//! newest-wins and tombstone rules ([`VersionGc`]), range tombstones, folding merge
//! operands (the `fold` module), expiry and the compaction filter. Compaction jobs run
//! them over their input tables; flushes over a MemTable (where anything older may lie
//! below).

use strata_core::expiry::{encode_expiring, is_expired, split_expiring};
use strata_core::key::encode_internal_key;
use strata_core::{
    CompactionFilter, Error, FilterDecision, FragmentedTombstones, MergeOperator,
    ParsedInternalKey, Result, SortedIter, ValueKind,
};

use crate::fold::{Base, OperandRun, Output};
use crate::{Decision, VersionGc};

/// What the rules work with besides the stream and the snapshots.
pub struct StreamRules<'a> {
    /// The keyspace's merge operator (without one, operands are kept as they are).
    pub operator: Option<&'a dyn MergeOperator>,
    /// The time expiring values are judged at (0 expires nothing).
    pub now_ms: u64,
    /// The keyspace's compaction filter, asked about values only the latest state
    /// reads.
    pub filter: Option<&'a dyn CompactionFilter>,
    /// The level the output is written to (the filter is told).
    pub level: usize,
    /// The range tombstones of the inputs, together: they delete the entries they
    /// cover where every reader of the entry sees them.
    pub ranges: &'a FragmentedTombstones,
}

/// Where [`compact_stream`] hands each entry to keep: `(parsed key, encoded key,
/// value)`, in order.
pub type Emit<'e> = dyn FnMut(ParsedInternalKey<'_>, &[u8], &[u8]) -> Result<()> + 'e;

/// What [`compact_stream`] read and decided, beyond the rules' own counts.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamCounts {
    /// Entries read.
    pub input_entries: u64,
    /// Key and value bytes read.
    pub input_payload_bytes: u64,
    /// Expired values turned into tombstones (or dropped).
    pub expired: u64,
    /// Values the filter removed or changed.
    pub filtered: u64,
    /// Merge operands folded into another entry.
    pub operands_folded: u64,
    /// Entries written beyond the one the rules kept per merge run (runs left
    /// unfolded): the rules counted them shadowed.
    pub unfolded_extra: u64,
    /// Values the rules kept that became tombstones with nothing below to delete, so
    /// were not written at all.
    pub removed_after_keep: u64,
}

impl StreamCounts {
    /// Adds `other`'s counts (a subcompaction's) to these.
    pub(crate) fn add(&mut self, other: &StreamCounts) {
        self.input_entries += other.input_entries;
        self.input_payload_bytes += other.input_payload_bytes;
        self.expired += other.expired;
        self.filtered += other.filtered;
        self.operands_folded += other.operands_folded;
        self.unfolded_extra += other.unfolded_extra;
        self.removed_after_keep += other.removed_after_keep;
    }
}

/// Runs the rules over `input` (positioned at its first entry), handing every entry
/// to keep to `emit` in order: `(parsed key, encoded key, value)`. `gc` holds the live
/// snapshots and answers whether a level below may hold a key.
pub fn compact_stream<F: FnMut(&[u8]) -> bool>(
    input: &mut dyn SortedIter,
    gc: &mut VersionGc<F>,
    rules: &StreamRules<'_>,
    emit: &mut Emit<'_>,
) -> Result<StreamCounts> {
    let mut counts = StreamCounts::default();
    // The merge-operand run being folded, and what folds produced, waiting to be
    // written.
    let mut run: Option<OperandRun> = None;
    let mut pending: Vec<Output> = Vec::new();
    // Keys ascend, so the fragment covering them only moves forward.
    let mut fragment = 0usize;
    let fragments = rules.ranges.fragments();
    while input.valid() {
        let key = input.key();
        let value = input.value();
        counts.input_entries += 1;
        counts.input_payload_bytes += (key.len() + value.len()) as u64;
        // The inputs were checked as they were read; a failure here is impossible, but
        // decoded data never panics.
        let parsed = ParsedInternalKey::parse(key)
            .ok_or_else(|| Error::corruption("compaction input", 0, "unparsable key"))?;
        while fragments
            .get(fragment)
            .is_some_and(|f| f.end() <= parsed.user_key)
        {
            fragment += 1;
        }
        // The oldest covering tombstone newer than the entry: if any tombstone can
        // share the entry's stripe, that one can.
        let cover = fragments
            .get(fragment)
            .filter(|f| f.contains(parsed.user_key))
            .and_then(|f| f.seqs().iter().rev().copied().find(|&t| t > parsed.seq));
        // A run of merge operands ends where its key or stripe does.
        if let Some(r) = run
            .take_if(|r| r.user_key() != parsed.user_key || gc.stripe_of(parsed.seq) != r.stripe())
        {
            // Its key's history ends here if the next entry is another key's; then the
            // base is "nothing" unless a lower level may hold the key.
            let base = if r.user_key() != parsed.user_key && !gc.may_exist_below(r.user_key()) {
                Base::Nothing
            } else {
                Base::Unknown
            };
            end_run(&mut counts, &mut pending, r, rules.operator, base, None);
            // Written before this entry, which may be the same key's.
            drain(&mut pending, emit)?;
        }
        let decision = gc.decide_covered(parsed, cover);
        if let Some(r) = run.as_mut() {
            // An older entry of the run's key and stripe: the rules call it shadowed
            // (the run's first operand is newer), but it is part of the fold.
            debug_assert_eq!(decision, Decision::DropShadowed);
            let stripe = r.stripe();
            let deleted = cover.is_some_and(|t| t > parsed.seq && gc.stripe_of(t) == stripe);
            let ended = if deleted {
                // A range tombstone every reader of the run sees deletes this entry and
                // everything older.
                Some((Base::Nothing, None))
            } else {
                let entry = || (key.to_vec(), input.value_bytes());
                match parsed.kind {
                    ValueKind::Merge => {
                        r.push(key, input.value_bytes());
                        None
                    }
                    ValueKind::Put => Some((Base::Value(input.value_bytes()), Some(entry()))),
                    ValueKind::ExpiringPut => {
                        let stored = input.value_bytes();
                        let (expires_at_ms, _) =
                            split_expiring(&stored).ok_or_else(|| short_expiring(parsed))?;
                        if is_expired(expires_at_ms, rules.now_ms) {
                            Some((Base::Nothing, Some(entry())))
                        } else {
                            // Live: the run stays unfolded above it (see `fold`).
                            Some((Base::Unfoldable, Some(entry())))
                        }
                    }
                    ValueKind::Delete => Some((Base::Nothing, Some(entry()))),
                }
            };
            if let Some((base, base_entry)) = ended
                && let Some(r) = run.take()
            {
                end_run(
                    &mut counts,
                    &mut pending,
                    r,
                    rules.operator,
                    base,
                    base_entry,
                );
                drain(&mut pending, emit)?;
            }
        } else if decision.is_keep() {
            if parsed.kind == ValueKind::Merge {
                let stripe = gc.stripe_of(parsed.seq);
                run = Some(OperandRun::start(parsed, key, input.value_bytes(), stripe));
            } else {
                let latest = gc.stripe_of(parsed.seq) == gc.latest_stripe();
                match rewrite(rules, parsed, value, latest, &mut counts)? {
                    Rewrite::AsIs => emit(parsed, key, value)?,
                    Rewrite::Value(stored) => emit(parsed, key, &stored)?,
                    Rewrite::Tombstone => {
                        // A tombstone in the value's place; none at all where it would
                        // have nothing to delete (the tombstone rule).
                        let stripe = gc.stripe_of(parsed.seq);
                        if stripe == 0 && !gc.may_exist_below(parsed.user_key) {
                            counts.removed_after_keep += 1;
                        } else {
                            let mut tomb = Vec::with_capacity(key.len());
                            encode_internal_key(
                                &mut tomb,
                                parsed.user_key,
                                parsed.seq,
                                ValueKind::Delete,
                            );
                            let p = ParsedInternalKey {
                                kind: ValueKind::Delete,
                                ..parsed
                            };
                            emit(p, &tomb, &[])?;
                        }
                    }
                }
            }
        }
        input.next()?;
    }
    if let Some(r) = run.take() {
        let base = if gc.may_exist_below(r.user_key()) {
            Base::Unknown
        } else {
            Base::Nothing
        };
        end_run(&mut counts, &mut pending, r, rules.operator, base, None);
        drain(&mut pending, emit)?;
    }
    Ok(counts)
}

/// Ends a merge run on `base`, queueing what it writes.
fn end_run(
    counts: &mut StreamCounts,
    pending: &mut Vec<Output>,
    run: OperandRun,
    operator: Option<&dyn MergeOperator>,
    base: Base,
    base_entry: Option<Output>,
) {
    let operands = run.len() as u64;
    let out = run.finish(operator, base, base_entry);
    if out.len() == 1 {
        counts.operands_folded += operands - 1;
    }
    counts.unfolded_extra += out.len() as u64 - 1;
    pending.extend(out);
}

/// Hands the queued entries to `emit`, in order.
fn drain(pending: &mut Vec<Output>, emit: &mut Emit<'_>) -> Result<()> {
    for (key, value) in pending.drain(..) {
        let parsed = ParsedInternalKey::parse(&key)
            .ok_or_else(|| Error::corruption("compaction output", 0, "unparsable key"))?;
        emit(parsed, &key, &value)?;
    }
    Ok(())
}

/// What [`rewrite`] makes of a kept put.
enum Rewrite {
    AsIs,
    Tombstone,
    /// A new stored value (the expiry, if any, kept in front).
    Value(Vec<u8>),
}

/// What becomes of a put (expiring or not) the rules kept: an expired one is a
/// tombstone; one only the latest state reads goes through the filter.
fn rewrite(
    rules: &StreamRules<'_>,
    parsed: ParsedInternalKey<'_>,
    value: &[u8],
    latest: bool,
    counts: &mut StreamCounts,
) -> Result<Rewrite> {
    let (expiry, user_value) = match parsed.kind {
        ValueKind::Put => (None, value),
        ValueKind::ExpiringPut => {
            let (e, v) = split_expiring(value).ok_or_else(|| short_expiring(parsed))?;
            (Some(e), v)
        }
        ValueKind::Delete | ValueKind::Merge => return Ok(Rewrite::AsIs),
    };
    if expiry.is_some_and(|e| is_expired(e, rules.now_ms)) {
        counts.expired += 1;
        return Ok(Rewrite::Tombstone);
    }
    let Some(filter) = rules.filter.filter(|_| latest) else {
        return Ok(Rewrite::AsIs);
    };
    Ok(
        match filter.filter(rules.level, parsed.user_key, user_value) {
            FilterDecision::Keep => Rewrite::AsIs,
            FilterDecision::Remove => {
                counts.filtered += 1;
                Rewrite::Tombstone
            }
            FilterDecision::Change(v) => {
                counts.filtered += 1;
                Rewrite::Value(match expiry {
                    Some(e) => encode_expiring(e, &v),
                    None => v,
                })
            }
        },
    )
}

/// An expiring value too short to hold its expiry: the input checks should have
/// caught it, but decoded data never panics.
fn short_expiring(parsed: ParsedInternalKey<'_>) -> Error {
    Error::corruption(
        "compaction input",
        0,
        format!("{parsed:?}: an expiring value too short to hold its expiry"),
    )
}
