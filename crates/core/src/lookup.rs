//! The answer of a point lookup in one layer (MemTable or table).

use bytes::Bytes;

/// What one layer knows about a user key at a snapshot. The engine walks layers newest
/// to oldest and stops at the first answer that is not [`Lookup::Absent`]: a tombstone
/// hides every older value below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The newest visible entry is a value.
    Found(Bytes),
    /// The newest visible entry is a tombstone: the key is deleted; look no further.
    Deleted,
    /// The newest visible entry is a merge operand: the value is a fold over it and
    /// older entries, possibly in older layers. The search stops here and the caller
    /// folds the key's history (see [`crate::merge`]).
    Merge,
    /// The newest visible entry is a value with an expiry (ms since the UNIX epoch):
    /// found until then, deleted from then on ([`Lookup::at`] decides).
    Expiring {
        /// When the value expires.
        expires_at_ms: u64,
        /// The user's value.
        value: Bytes,
    },
    /// This layer holds no visible entry for the key; ask the next older one.
    Absent,
}

impl Lookup {
    /// One layer's answer from its newest visible point entry of the key (`point`:
    /// sequence and answer) and the newest visible range tombstone of the layer (or a
    /// newer one) covering the key (`cover`): a tombstone newer than the entry deletes
    /// it; with no entry, a covering tombstone deletes whatever older layers hold.
    pub fn resolve(
        point: Option<(crate::SequenceNumber, Lookup)>,
        cover: Option<crate::SequenceNumber>,
    ) -> Lookup {
        match (point, cover) {
            (Some((seq, _)), Some(t)) if t > seq => Lookup::Deleted,
            (Some((_, found)), _) => found,
            (None, Some(_)) => Lookup::Deleted,
            (None, None) => Lookup::Absent,
        }
    }

    /// The answer at time `now_ms`: an [`Lookup::Expiring`] value is found before its
    /// expiry and deleted from then on; every other answer is unchanged.
    pub fn at(self, now_ms: u64) -> Lookup {
        match self {
            Lookup::Expiring {
                expires_at_ms,
                value,
            } => {
                if crate::expiry::is_expired(expires_at_ms, now_ms) {
                    Lookup::Deleted
                } else {
                    Lookup::Found(value)
                }
            }
            other => other,
        }
    }

    /// True unless [`Lookup::Absent`]: the search can stop here.
    pub fn is_final(&self) -> bool {
        !matches!(self, Lookup::Absent)
    }

    /// The value, if found (an expiring one whatever the time: see [`Lookup::at`]);
    /// `None` for deleted and absent alike, and for a merge (whose value the caller
    /// still has to fold).
    pub fn into_value(self) -> Option<Bytes> {
        match self {
            Lookup::Found(v) => Some(v),
            Lookup::Expiring { value, .. } => Some(value),
            Lookup::Deleted | Lookup::Merge | Lookup::Absent => None,
        }
    }
}
