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
    /// This layer holds no visible entry for the key; ask the next older one.
    Absent,
}

impl Lookup {
    /// True unless [`Lookup::Absent`]: the search can stop here.
    pub fn is_final(&self) -> bool {
        !matches!(self, Lookup::Absent)
    }

    /// The value, if found; `None` for deleted and absent alike.
    pub fn into_value(self) -> Option<Bytes> {
        match self {
            Lookup::Found(v) => Some(v),
            Lookup::Deleted | Lookup::Absent => None,
        }
    }
}
