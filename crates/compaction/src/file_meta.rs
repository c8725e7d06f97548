//! What the levels know about one table file, without opening it.

use strata_core::{
    FragmentedTombstones, InternalKey, ParsedInternalKey, SequenceNumber, ValueKind,
};

/// The description of one table file that picking and the version set work from.
///
/// Everything here is known when the table is finished and never changes afterwards, so
/// versions share it behind an `Arc`.
#[derive(Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// The file number (the table's name in the database directory).
    pub number: u64,
    /// Size of the file on disk.
    pub size_bytes: u64,
    /// Smallest internal key in the file (inclusive).
    pub smallest: InternalKey,
    /// Largest internal key in the file (inclusive).
    pub largest: InternalKey,
    /// Smallest sequence number of any entry.
    pub smallest_seq: SequenceNumber,
    /// Largest sequence number of any entry.
    pub largest_seq: SequenceNumber,
    /// Number of entries (puts and tombstones).
    pub entries: u64,
    /// Number of tombstones among the entries.
    pub tombstones: u64,
    /// Range tombstones the file holds (`(fragment, sequence)` pairs). The key and
    /// sequence ranges above cover them.
    pub range_tombstones: u64,
}

impl FileMeta {
    /// User key of [`smallest`](Self::smallest).
    pub fn smallest_user_key(&self) -> &[u8] {
        self.smallest.user_key()
    }

    /// User key of [`largest`](Self::largest).
    pub fn largest_user_key(&self) -> &[u8] {
        self.largest.user_key()
    }

    /// Whether the file's user-key range intersects `[lo, hi]` (both inclusive).
    pub fn overlaps_user_range(&self, lo: &[u8], hi: &[u8]) -> bool {
        self.smallest_user_key() <= hi && self.largest_user_key() >= lo
    }

    /// Whether `user_key` lies within the file's user-key range.
    pub fn may_contain_user_key(&self, user_key: &[u8]) -> bool {
        self.overlaps_user_range(user_key, user_key)
    }
}

impl std::fmt::Debug for FileMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "#{} [{:?} .. {:?}] {} B, seq {}..={}, {} entries ({} tombstones, {} range tombstones)",
            self.number,
            self.smallest,
            self.largest,
            self.size_bytes,
            self.smallest_seq,
            self.largest_seq,
            self.entries,
            self.tombstones,
            self.range_tombstones
        )
    }
}

/// The user-key range `[lo, hi]` (inclusive) spanned by `files`; `None` if empty.
pub(crate) fn user_key_range<'a, I>(files: I) -> Option<(&'a [u8], &'a [u8])>
where
    I: IntoIterator<Item = &'a FileMeta>,
{
    let mut range: Option<(&[u8], &[u8])> = None;
    for f in files {
        let (lo, hi) = (f.smallest_user_key(), f.largest_user_key());
        range = Some(match range {
            None => (lo, hi),
            Some((a, b)) => (a.min(lo), b.max(hi)),
        });
    }
    range
}

/// Gathers a [`FileMeta`] from the keys of a table as they are added.
#[derive(Default)]
pub(crate) struct MetaAccumulator {
    smallest: Option<Vec<u8>>,
    largest: Vec<u8>,
    smallest_seq: u64,
    largest_seq: u64,
    entries: u64,
    tombstones: u64,
}

impl MetaAccumulator {
    pub(crate) fn add(&mut self, parsed: ParsedInternalKey<'_>, key: &[u8]) {
        if self.smallest.is_none() {
            self.smallest = Some(key.to_vec());
            self.smallest_seq = parsed.seq;
        }
        self.largest.clear();
        self.largest.extend_from_slice(key);
        self.smallest_seq = self.smallest_seq.min(parsed.seq);
        self.largest_seq = self.largest_seq.max(parsed.seq);
        self.entries += 1;
        self.tombstones += u64::from(parsed.kind == ValueKind::Delete);
    }

    pub(crate) fn entries(&self) -> u64 {
        self.entries
    }

    /// The last key added (empty before the first).
    pub(crate) fn largest(&self) -> &[u8] {
        &self.largest
    }

    /// The metadata of the finished table, whose point entries were added and which
    /// also holds `ranges`: its key and sequence ranges cover both. `None` if it holds
    /// nothing (or a key does not parse).
    pub(crate) fn finish(
        self,
        number: u64,
        size_bytes: u64,
        ranges: &FragmentedTombstones,
    ) -> Option<FileMeta> {
        let points = match self.smallest {
            Some(smallest) => Some((
                InternalKey::from_encoded(smallest)?,
                InternalKey::from_encoded(self.largest)?,
            )),
            None => None,
        };
        let (smallest, largest) = ranges.widen(points)?;
        let point_seqs = (self.entries > 0).then_some((self.smallest_seq, self.largest_seq));
        let (smallest_seq, largest_seq) = match (point_seqs, ranges.seq_range()) {
            (Some((a, b)), Some((c, d))) => (a.min(c), b.max(d)),
            (seqs, range_seqs) => seqs.or(range_seqs)?,
        };
        Some(FileMeta {
            number,
            size_bytes,
            smallest,
            largest,
            smallest_seq,
            largest_seq,
            entries: self.entries,
            tombstones: self.tombstones,
            range_tombstones: ranges.len() as u64,
        })
    }
}
