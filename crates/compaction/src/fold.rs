//! Folding merge operands during compaction.
//!
//! A merge operand kept by the [`VersionGc`](crate::VersionGc) rules (the newest entry
//! of its stripe) starts a *run*: the operands of its key and stripe that follow it,
//! newest to oldest, up to the first entry that fixes what lies below — a put (its value
//! is the base), a tombstone or a range tombstone in the stripe (the base is "nothing").
//! Every reader of the stripe sees exactly this run folded onto that base, so the run
//! becomes one entry at the newest operand's key:
//!
//! - with a base: a **put** of `merge(base, operands)`;
//! - with no base in the stripe, where nothing older of the key remains (the key's
//!   history ends in this compaction and no level below may hold it): a **put** of
//!   `merge(None, operands)`;
//! - otherwise (an older stripe or a lower level may still hold the base): one **merge
//!   operand** `merge(Some(oldest), the rest)`, which the operator's associativity
//!   makes equal to the run (see `strata_core::merge`).
//!
//! A run on a value with an expiry that has not passed is not folded either: reads fold
//! the operands onto that value while it lives and onto nothing once it expires, and
//! no single entry can say both. Once it has expired, compaction folds the run onto
//! nothing.
//!
//! Without an operator, or when the operator refuses the operands, nothing is folded:
//! the run and its base entry are written as they came (reads then report the
//! operator's error; compaction never fails or loses an operand because of it).

use bytes::Bytes;
use strata_core::key::encode_internal_key;
use strata_core::{MergeOperator, ParsedInternalKey, SequenceNumber, ValueKind};

/// What ends a run.
#[derive(Clone, Debug)]
pub(crate) enum Base {
    /// A put in the stripe: its value.
    Value(Bytes),

    /// A tombstone in the stripe, or the key's history ending with nothing below.
    Nothing,
    /// A value with an expiry still to come: the run is written unfolded.
    Unfoldable,
    /// The stripe ends but older entries of the key may remain (an older stripe, a
    /// lower level).
    Unknown,
}

/// One entry to write: internal key and value.
pub(crate) type Output = (Vec<u8>, Bytes);

/// A run of merge operands of one user key and stripe, newest first.
pub(crate) struct OperandRun {
    user_key: Vec<u8>,
    stripe: usize,
    seq: SequenceNumber,
    /// Every entry of the run as it came (internal key, value), newest first: the
    /// operands, written unchanged if they cannot be folded.
    entries: Vec<Output>,
}

impl OperandRun {
    /// A run starting at `entry`, a merge operand the rules kept, in `stripe`.
    pub fn start(entry: ParsedInternalKey<'_>, key: &[u8], value: Bytes, stripe: usize) -> Self {
        OperandRun {
            user_key: entry.user_key.to_vec(),
            stripe,
            seq: entry.seq,
            entries: vec![(key.to_vec(), value)],
        }
    }

    /// The user key the run folds.
    pub fn user_key(&self) -> &[u8] {
        &self.user_key
    }

    /// The stripe the run is in.
    pub fn stripe(&self) -> usize {
        self.stripe
    }

    /// Adds the next older operand of the run.
    pub fn push(&mut self, key: &[u8], value: Bytes) {
        self.entries.push((key.to_vec(), value));
    }

    /// Number of operands in the run.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Ends the run on `base`; `base_entry` is the entry that ended it, if one did (a
    /// put or a tombstone), written after the operands when they are not folded. The
    /// entries to write, in order.
    pub fn finish(
        self,
        operator: Option<&dyn MergeOperator>,
        base: Base,
        base_entry: Option<Output>,
    ) -> Vec<Output> {
        match operator.and_then(|op| self.fold(op, &base)) {
            Some(folded) => vec![folded],
            None => {
                let mut out = self.entries;
                out.extend(base_entry);
                out
            }
        }
    }

    /// The run folded into one entry, or `None` if the operator refused.
    fn fold(&self, operator: &dyn MergeOperator, base: &Base) -> Option<Output> {
        let oldest_first: Vec<&[u8]> = self.entries.iter().rev().map(|(_, v)| &v[..]).collect();
        let (kind, value) = match base {
            Base::Value(v) => (
                ValueKind::Put,
                operator.merge(&self.user_key, Some(v), &oldest_first)?,
            ),

            Base::Nothing => (
                ValueKind::Put,
                operator.merge(&self.user_key, None, &oldest_first)?,
            ),
            Base::Unfoldable => return None,
            Base::Unknown => {
                let (first, rest) = oldest_first.split_first()?;
                if rest.is_empty() {
                    // A single operand: nothing to fold; keep its bytes as they are.
                    return self.entries.first().cloned();
                }
                (
                    ValueKind::Merge,
                    operator.merge(&self.user_key, Some(first), rest)?,
                )
            }
        };
        let mut key = Vec::with_capacity(self.user_key.len() + strata_core::key::TRAILER_LEN);
        encode_internal_key(&mut key, &self.user_key, self.seq, kind);
        Some((key, Bytes::from(value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::InternalKey;

    /// Appends operands to the value, separated by commas.
    struct Append;

    impl MergeOperator for Append {
        fn name(&self) -> &str {
            "append"
        }

        fn merge(&self, _: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>> {
            if operands.contains(&&b"bad"[..]) {
                return None;
            }
            let mut parts: Vec<&[u8]> = existing.into_iter().collect();
            parts.extend_from_slice(operands);
            Some(parts.join(&b","[..]))
        }
    }

    fn run(seqs_values: &[(u64, &str)]) -> OperandRun {
        let ik = |s: u64| InternalKey::new(b"k", s, ValueKind::Merge).into_bytes();
        let (s0, v0) = seqs_values[0];
        let first = ik(s0);
        let parsed = ParsedInternalKey::parse(&first).unwrap();
        let mut r = OperandRun::start(parsed, &first, Bytes::copy_from_slice(v0.as_bytes()), 1);
        for &(s, v) in &seqs_values[1..] {
            r.push(&ik(s), Bytes::copy_from_slice(v.as_bytes()));
        }
        r
    }

    fn parsed(out: &Output) -> (u64, ValueKind, String) {
        let p = ParsedInternalKey::parse(&out.0).unwrap();
        (p.seq, p.kind, String::from_utf8(out.1.to_vec()).unwrap())
    }

    #[test]
    fn a_run_on_a_value_or_on_nothing_becomes_one_put_at_the_newest_operand() {
        let out = run(&[(9, "c"), (8, "b")]).finish(Some(&Append), Base::Value("a".into()), None);
        assert_eq!(
            out.iter().map(parsed).collect::<Vec<_>>(),
            [(9, ValueKind::Put, "a,b,c".into())]
        );
        let out = run(&[(9, "c"), (8, "b")]).finish(Some(&Append), Base::Nothing, None);
        assert_eq!(
            out.iter().map(parsed).collect::<Vec<_>>(),
            [(9, ValueKind::Put, "b,c".into())]
        );
    }

    #[test]
    fn a_run_with_its_base_unknown_stays_one_operand() {
        let out = run(&[(9, "c"), (8, "b"), (7, "a")]).finish(Some(&Append), Base::Unknown, None);
        assert_eq!(
            out.iter().map(parsed).collect::<Vec<_>>(),
            [(9, ValueKind::Merge, "a,b,c".into())]
        );
        // One operand is written as it came.
        let out = run(&[(5, "x")]).finish(Some(&Append), Base::Unknown, None);
        assert_eq!(
            out.iter().map(parsed).collect::<Vec<_>>(),
            [(5, ValueKind::Merge, "x".into())]
        );
    }

    #[test]
    fn without_an_operator_or_on_a_refusal_every_entry_is_kept_with_its_base() {
        let base = (
            InternalKey::new(b"k", 3, ValueKind::Put).into_bytes(),
            Bytes::from("a"),
        );
        let expect = [
            (9, ValueKind::Merge, "c".to_string()),
            (8, ValueKind::Merge, "bad".to_string()),
            (3, ValueKind::Put, "a".to_string()),
        ];
        let out =
            run(&[(9, "c"), (8, "bad")]).finish(None, Base::Value("a".into()), Some(base.clone()));
        assert_eq!(out.iter().map(parsed).collect::<Vec<_>>(), expect);
        let out =
            run(&[(9, "c"), (8, "bad")]).finish(Some(&Append), Base::Value("a".into()), Some(base));
        assert_eq!(out.iter().map(parsed).collect::<Vec<_>>(), expect);
    }
}
