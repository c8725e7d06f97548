//! Merge operators: a write that says how to change a value rather than what it is.
//!
//! A merge operand is written without reading the key (a counter's increment, an
//! element appended to a list). A read folds the key's operands, oldest first, onto the
//! newest older put (or onto nothing, if the key was never written or was deleted);
//! compaction folds runs of operands ahead of time, as far as live snapshots allow, so
//! reads meet few of them.
//!
//! Folding ahead of time is what makes the operator's laws matter. Compaction sees only
//! part of a key's history: it may fold operands `o1..ok` into one operand before the
//! value below them is known, by `merge(key, Some(o1), [o2..ok])`, and later fold that
//! result with the rest. So an operator must be **associative**, with operands and
//! values of one type:
//!
//! - `merge(e, A ++ B) == merge(Some(merge(e, A)), B)` for every existing value `e`
//!   and non-empty operand lists `A`, `B`;
//! - `merge(e, [merge(Some(a1), [a2..ak])] ++ B) == merge(e, [a1..ak] ++ B)`.
//!
//! Counters (add), appends, maxima and set unions are; "set to the operand unless the
//! value is larger" is too. An operator breaking these laws gives answers that depend
//! on when compaction ran.

use crate::{Error, Result};

/// A user's associative merge operator (see the [module docs](self) for the laws it
/// must keep). Shared by every thread that reads or compacts the keyspace.
///
/// ```
/// use strata_core::MergeOperator;
///
/// /// A little-endian u64 counter; operands are increments.
/// struct Add;
///
/// impl MergeOperator for Add {
///     fn name(&self) -> &str {
///         "u64-add"
///     }
///
///     fn merge(&self, _key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>> {
///         let decode = |b: &[u8]| Some(u64::from_le_bytes(b.try_into().ok()?));
///         let mut sum = existing.map_or(Some(0), decode)?;
///         for op in operands {
///             sum = sum.wrapping_add(decode(op)?);
///         }
///         Some(sum.to_le_bytes().to_vec())
///     }
/// }
///
/// let three = Add.merge(b"k", None, &[&1u64.to_le_bytes(), &2u64.to_le_bytes()]);
/// assert_eq!(three, Some(3u64.to_le_bytes().to_vec()));
/// ```
pub trait MergeOperator: Send + Sync + 'static {
    /// A name for errors and tools, e.g. `"u64-add"`.
    fn name(&self) -> &str;

    /// Folds `operands` (oldest first, at least one) onto `existing`: the value of the
    /// newest older put, or `None` if there is none (never written, deleted, or deleted
    /// by a range delete). Compaction also calls it with an operand as `existing` to
    /// fold a run of operands into one.
    ///
    /// Returns `None` to refuse operands it cannot read; the read (or compaction) that
    /// asked fails with [`Error::Merge`].
    fn merge(&self, key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>>;
}

/// Folds `operands` (oldest first, at least one) onto `existing` with `operator`: the
/// operator's answer, or [`Error::Merge`] naming the key if there is no operator or it
/// refused.
pub fn fold_operands(
    operator: Option<&dyn MergeOperator>,
    key: &[u8],
    existing: Option<&[u8]>,
    operands: &[&[u8]],
) -> Result<Vec<u8>> {
    let Some(operator) = operator else {
        return Err(Error::Merge {
            key: key.to_vec(),
            reason: "the key has merge operands but no merge operator is configured for its \
                     keyspace"
                .into(),
        });
    };
    operator
        .merge(key, existing, operands)
        .ok_or_else(|| Error::Merge {
            key: key.to_vec(),
            reason: format!("merge operator {:?} refused the operands", operator.name()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    struct Concat;

    impl MergeOperator for Concat {
        fn name(&self) -> &str {
            "concat"
        }

        fn merge(&self, _: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>> {
            if operands.iter().any(|o| o.is_empty()) {
                return None;
            }
            let mut out = existing.unwrap_or_default().to_vec();
            for op in operands {
                out.extend_from_slice(op);
            }
            Some(out)
        }
    }

    #[test]
    fn folding_without_an_operator_or_with_a_refusal_is_a_merge_error_naming_the_key() {
        let none = fold_operands(None, b"k1", None, &[b"a"]).unwrap_err();
        assert_eq!(none.kind(), ErrorKind::Merge);
        assert!(none.to_string().contains("k1"), "{none}");
        assert!(none.to_string().contains("no merge operator"), "{none}");

        let refused = fold_operands(Some(&Concat), b"k2", None, &[b"a", b""]).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Merge);
        assert!(refused.to_string().contains("\"concat\""), "{refused}");
    }

    #[test]
    fn folding_passes_the_operands_oldest_first_onto_the_existing_value() {
        let v = fold_operands(Some(&Concat), b"k", Some(b"x"), &[b"a", b"b"]).unwrap();
        assert_eq!(v, b"xab");
    }
}
