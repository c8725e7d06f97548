//! Version edits: the records of the manifest.
//!
//! The manifest is a log (the WAL record format, `docs/format/wal.md`) of version edits;
//! replaying them in order rebuilds the set of live table files per level. Each edit is
//! a sequence of tagged fields (`docs/format/manifest.md`):
//!
//! ```text
//! edit  := field*
//! field := tag: varint32, then by tag:
//!   1 FormatVersion   varint32                 (first field of a manifest's first edit)
//!   2 LogNumber       varint64                 WALs numbered below this are flushed
//!   3 NextFileNumber  varint64
//!   4 LastSequence    varint64
//!   5 DeletedFile     varint32 level | varint64 file number
//!   6 NewFile         varint32 level | varint64 number | varint64 size
//!                     | lp smallest internal key | lp largest internal key
//!                     | varint64 smallest seq | varint64 largest seq
//!                     | varint64 entries | varint64 tombstones
//!   7 NewFileWithRangeDeletes  NewFile's fields | varint64 range tombstones
//!   8 Keyspace        varint32 id              the keyspace the edit's files, flushed
//!                                              sequence and deletions belong to
//!                                              (absent: the default keyspace, id 0)
//!   9 FlushedSequence varint64                 every entry of the keyspace with a
//!                                              sequence number up to this is in its tables
//!  10 NewKeyspace     varint32 id | lp name
//!  11 DroppedKeyspace varint32 id
//!  12 NextKeyspaceId  varint32                 ids are never reused
//! lp := varint64 length | bytes
//! ```

use strata_compaction::FileMeta;
use strata_core::varint::{
    get_length_prefixed, get_varint32, get_varint64, put_length_prefixed, put_varint32,
    put_varint64,
};
use strata_core::{InternalKey, SequenceNumber};

/// The manifest format this build writes and the newest it reads.
///
/// Version 2: `LastSequence` is where WAL `LogNumber` starts, and WALs may end in a
/// sequence gap that recovery must stop at (rotated-out WALs are synced lazily). A
/// version-1 reader would replay past such a gap, so it must refuse these databases;
/// this build reads version 1 too (its larger `LastSequence` only hides gaps, which
/// version-1 writers never left).
///
/// Version 3: WAL batches may hold range deletes, tables may be table format 3 (with a
/// range-deletion block) and edits may hold `NewFileWithRangeDeletes`. A version-2
/// reader would drop a WAL's range deletes as damage or read a table without its
/// tombstones, bringing deleted keys back; it refuses the database instead. This build
/// reads versions 1 and 2 (which hold none of these) and writes 3 from its first open.
///
/// Version 4: keyspaces. WAL entries may name a keyspace (op byte with its high bit set)
/// and edits may hold fields 8 to 12. A version-3 reader would take such an entry for
/// damage or another keyspace's files for the default one's; it refuses the database
/// instead. This build reads versions 1 to 3 (one keyspace, the default one).
///
/// Version 5: merge operands. WAL batches may hold merge entries (op byte 4) and tables
/// may be table format 4 (entries of kind 2). A version-4 reader would take either for
/// damage; it refuses the database instead. This build reads versions 1 to 4 (which
/// hold none).
pub const MANIFEST_FORMAT_VERSION: u32 = 5;

const TAG_FORMAT_VERSION: u32 = 1;
const TAG_LOG_NUMBER: u32 = 2;
const TAG_NEXT_FILE_NUMBER: u32 = 3;
const TAG_LAST_SEQUENCE: u32 = 4;
const TAG_DELETED_FILE: u32 = 5;
const TAG_NEW_FILE: u32 = 6;
const TAG_NEW_FILE_WITH_RANGE_DELETES: u32 = 7;
const TAG_KEYSPACE: u32 = 8;
const TAG_FLUSHED_SEQUENCE: u32 = 9;
const TAG_NEW_KEYSPACE: u32 = 10;
const TAG_DROPPED_KEYSPACE: u32 = 11;
const TAG_NEXT_KEYSPACE_ID: u32 = 12;

/// A change to the set of live files and the database's counters: one manifest record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// Manifest format version (first field of a manifest's first edit).
    pub format_version: Option<u32>,
    /// WALs numbered below this are fully in tables.
    pub log_number: Option<u64>,
    /// The next unused file number.
    pub next_file_number: Option<u64>,
    /// At least the largest sequence number in any table.
    pub last_sequence: Option<SequenceNumber>,
    /// `(level, file number)` of files leaving a level.
    pub deleted_files: Vec<(usize, u64)>,
    /// `(level, file)` of files joining a level.
    pub new_files: Vec<(usize, FileMeta)>,
    /// The keyspace `deleted_files`, `new_files` and `flushed_seq` belong to (0: the
    /// default keyspace).
    pub keyspace: u32,
    /// Every entry of `keyspace` with a sequence number up to this is in its tables:
    /// recovery replays only the newer ones.
    pub flushed_seq: Option<SequenceNumber>,
    /// `(id, name)` of keyspaces made.
    pub new_keyspaces: Vec<(u32, String)>,
    /// Ids of keyspaces dropped.
    pub dropped_keyspaces: Vec<u32>,
    /// The next keyspace id to give.
    pub next_keyspace_id: Option<u32>,
}

/// One keyspace as a snapshot edit describes it.
pub(crate) struct TreeState<'a> {
    pub id: u32,
    pub name: &'a str,
    pub flushed_seq: SequenceNumber,
    pub files: Vec<(usize, FileMeta)>,
}

/// The edits a new manifest starts with, describing the whole database: one with the
/// format version, the counters and every keyspace but the default one, then one per
/// keyspace with its files and flushed sequence.
pub(crate) fn snapshot_edits<'a>(
    log_number: u64,
    next_file_number: u64,
    last_sequence: SequenceNumber,
    next_keyspace_id: u32,
    trees: impl Iterator<Item = TreeState<'a>>,
) -> Vec<VersionEdit> {
    let mut head = VersionEdit {
        format_version: Some(MANIFEST_FORMAT_VERSION),
        log_number: Some(log_number),
        next_file_number: Some(next_file_number),
        last_sequence: Some(last_sequence),
        next_keyspace_id: Some(next_keyspace_id),
        ..VersionEdit::default()
    };
    let mut edits = Vec::new();
    for tree in trees {
        if tree.id != crate::batch::DEFAULT_KEYSPACE {
            head.new_keyspaces.push((tree.id, tree.name.to_owned()));
        }
        edits.push(VersionEdit {
            keyspace: tree.id,
            flushed_seq: Some(tree.flushed_seq),
            new_files: tree.files,
            ..VersionEdit::default()
        });
    }
    edits.insert(0, head);
    edits
}

/// Why an edit failed to decode (the caller adds file and offset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditError {
    /// The bytes are not a valid edit.
    Malformed(&'static str),
    /// The edit declares a manifest format newer than this build reads.
    NewerVersion(u32),
}

impl VersionEdit {
    /// Appends the edit's encoding to `dst`.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        if let Some(v) = self.format_version {
            put_varint32(dst, TAG_FORMAT_VERSION);
            put_varint32(dst, v);
        }
        for (id, name) in &self.new_keyspaces {
            put_varint32(dst, TAG_NEW_KEYSPACE);
            put_varint32(dst, *id);
            put_length_prefixed(dst, name.as_bytes());
        }
        for id in &self.dropped_keyspaces {
            put_varint32(dst, TAG_DROPPED_KEYSPACE);
            put_varint32(dst, *id);
        }
        if let Some(id) = self.next_keyspace_id {
            put_varint32(dst, TAG_NEXT_KEYSPACE_ID);
            put_varint32(dst, id);
        }
        // Before the files it scopes; the default keyspace's edits leave it out, byte
        // for byte as before keyspaces.
        if self.keyspace != crate::batch::DEFAULT_KEYSPACE {
            put_varint32(dst, TAG_KEYSPACE);
            put_varint32(dst, self.keyspace);
        }
        if let Some(seq) = self.flushed_seq {
            put_varint32(dst, TAG_FLUSHED_SEQUENCE);
            put_varint64(dst, seq);
        }
        for (tag, value) in [
            (TAG_LOG_NUMBER, self.log_number),
            (TAG_NEXT_FILE_NUMBER, self.next_file_number),
            (TAG_LAST_SEQUENCE, self.last_sequence),
        ] {
            if let Some(v) = value {
                put_varint32(dst, tag);
                put_varint64(dst, v);
            }
        }
        for &(level, number) in &self.deleted_files {
            put_varint32(dst, TAG_DELETED_FILE);
            put_varint32(dst, level as u32);
            put_varint64(dst, number);
        }
        for (level, f) in &self.new_files {
            // Files without range tombstones keep the older field, byte for byte.
            let with_ranges = f.range_tombstones > 0;
            put_varint32(
                dst,
                if with_ranges {
                    TAG_NEW_FILE_WITH_RANGE_DELETES
                } else {
                    TAG_NEW_FILE
                },
            );
            put_varint32(dst, *level as u32);
            put_varint64(dst, f.number);
            put_varint64(dst, f.size_bytes);
            put_length_prefixed(dst, f.smallest.as_bytes());
            put_length_prefixed(dst, f.largest.as_bytes());
            for v in [f.smallest_seq, f.largest_seq, f.entries, f.tombstones] {
                put_varint64(dst, v);
            }
            if with_ranges {
                put_varint64(dst, f.range_tombstones);
            }
        }
    }

    /// Decodes one manifest record.
    pub fn decode(mut src: &[u8]) -> Result<Self, EditError> {
        let mut edit = VersionEdit::default();
        let mut d = Decoder { src: &mut src };
        while !d.src.is_empty() {
            match d.u32()? {
                TAG_FORMAT_VERSION => {
                    let v = d.u32()?;
                    if v > MANIFEST_FORMAT_VERSION {
                        return Err(EditError::NewerVersion(v));
                    }
                    edit.format_version = Some(v);
                }
                TAG_LOG_NUMBER => edit.log_number = Some(d.u64()?),
                TAG_NEXT_FILE_NUMBER => edit.next_file_number = Some(d.u64()?),
                TAG_LAST_SEQUENCE => edit.last_sequence = Some(d.u64()?),
                TAG_DELETED_FILE => {
                    let level = d.level()?;
                    edit.deleted_files.push((level, d.u64()?));
                }
                tag @ (TAG_NEW_FILE | TAG_NEW_FILE_WITH_RANGE_DELETES) => {
                    let level = d.level()?;
                    let number = d.u64()?;
                    let size_bytes = d.u64()?;
                    let smallest = d.internal_key()?;
                    let largest = d.internal_key()?;
                    let meta = FileMeta {
                        number,
                        size_bytes,
                        smallest,
                        largest,
                        smallest_seq: d.u64()?,
                        largest_seq: d.u64()?,
                        entries: d.u64()?,
                        tombstones: d.u64()?,
                        range_tombstones: 0,
                    };
                    let meta = if tag == TAG_NEW_FILE_WITH_RANGE_DELETES {
                        FileMeta {
                            range_tombstones: d.u64()?,
                            ..meta
                        }
                    } else {
                        meta
                    };
                    edit.new_files.push((level, meta));
                }
                TAG_KEYSPACE => {
                    let id = d.u32()?;
                    // Named once, before anything it scopes, and never as the default.
                    if id == crate::batch::DEFAULT_KEYSPACE
                        || edit.keyspace != crate::batch::DEFAULT_KEYSPACE
                        || edit.flushed_seq.is_some()
                        || !edit.new_files.is_empty()
                        || !edit.deleted_files.is_empty()
                    {
                        return Err(EditError::Malformed("misplaced keyspace field"));
                    }
                    edit.keyspace = id;
                }
                TAG_FLUSHED_SEQUENCE => edit.flushed_seq = Some(d.u64()?),
                TAG_NEW_KEYSPACE => {
                    let id = d.u32()?;
                    let (name, n) = get_length_prefixed(d.src)
                        .ok_or(EditError::Malformed("truncated keyspace name"))?;
                    let name = std::str::from_utf8(name)
                        .map_err(|_| EditError::Malformed("keyspace name is not UTF-8"))?
                        .to_owned();
                    d.advance(n)?;
                    edit.new_keyspaces.push((id, name));
                }
                TAG_DROPPED_KEYSPACE => edit.dropped_keyspaces.push(d.u32()?),
                TAG_NEXT_KEYSPACE_ID => edit.next_keyspace_id = Some(d.u32()?),
                _ => return Err(EditError::Malformed("unknown field tag")),
            }
        }
        Ok(edit)
    }
}

/// Deepest level number an edit may name: far above any real tree, low enough that a
/// corrupt level number cannot make us allocate absurd level arrays.
pub(crate) const MAX_LEVELS: usize = 16;

struct Decoder<'a, 'b> {
    src: &'b mut &'a [u8],
}

impl<'a> Decoder<'a, '_> {
    fn advance(&mut self, n: usize) -> Result<(), EditError> {
        *self.src = self
            .src
            .get(n..)
            .ok_or(EditError::Malformed("truncated field"))?;
        Ok(())
    }
    fn u32(&mut self) -> Result<u32, EditError> {
        let (v, n) = get_varint32(self.src).ok_or(EditError::Malformed("bad varint"))?;
        self.advance(n)?;
        Ok(v)
    }
    fn u64(&mut self) -> Result<u64, EditError> {
        let (v, n) = get_varint64(self.src).ok_or(EditError::Malformed("bad varint"))?;
        self.advance(n)?;
        Ok(v)
    }
    fn level(&mut self) -> Result<usize, EditError> {
        let level = self.u32()? as usize;
        if level >= MAX_LEVELS {
            return Err(EditError::Malformed("level number out of range"));
        }
        Ok(level)
    }
    fn internal_key(&mut self) -> Result<InternalKey, EditError> {
        let (bytes, n) =
            get_length_prefixed(self.src).ok_or(EditError::Malformed("truncated key"))?;
        let key = InternalKey::from_encoded(bytes.to_vec())
            .ok_or(EditError::Malformed("bad internal key"))?;
        self.advance(n)?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use strata_core::ValueKind;

    fn meta() -> impl Strategy<Value = FileMeta> {
        (
            any::<u64>(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..10),
            0..strata_core::MAX_SEQUENCE,
            any::<u64>(),
            prop_oneof![Just(0u64), any::<u64>()],
        )
            .prop_map(
                |(number, size_bytes, key, seq, entries, range_tombstones)| FileMeta {
                    number,
                    size_bytes,
                    smallest: InternalKey::new(&key, seq, ValueKind::Put),
                    largest: InternalKey::new(
                        &[key.as_slice(), b"z"].concat(),
                        0,
                        ValueKind::Delete,
                    ),
                    smallest_seq: 0,
                    largest_seq: seq,
                    entries,
                    tombstones: entries / 2,
                    range_tombstones,
                },
            )
    }

    fn edit() -> impl Strategy<Value = VersionEdit> {
        (
            proptest::option::of(1..=MANIFEST_FORMAT_VERSION),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            proptest::collection::vec((0..MAX_LEVELS, any::<u64>()), 0..4),
            proptest::collection::vec((0..MAX_LEVELS, meta()), 0..4),
            (
                prop_oneof![Just(0u32), any::<u32>()],
                proptest::option::of(any::<u64>()),
                proptest::collection::vec((any::<u32>(), "[a-z0-9_.-]{1,12}"), 0..3),
                proptest::collection::vec(any::<u32>(), 0..3),
                proptest::option::of(any::<u32>()),
            ),
        )
            .prop_map(
                |(
                    format_version,
                    log_number,
                    next_file_number,
                    last_sequence,
                    deleted_files,
                    new_files,
                    (keyspace, flushed_seq, new_keyspaces, dropped_keyspaces, next_keyspace_id),
                )| VersionEdit {
                    format_version,
                    log_number,
                    next_file_number,
                    last_sequence,
                    deleted_files,
                    new_files,
                    keyspace,
                    flushed_seq,
                    new_keyspaces,
                    dropped_keyspaces,
                    next_keyspace_id,
                },
            )
    }

    proptest! {
        #[test]
        fn edits_round_trip(e in edit()) {
            let mut buf = Vec::new();
            e.encode(&mut buf);
            prop_assert_eq!(VersionEdit::decode(&buf), Ok(e));
        }

        #[test]
        fn truncated_edits_never_decode_to_the_original(e in edit(), cut in any::<prop::sample::Index>()) {
            let mut buf = Vec::new();
            e.encode(&mut buf);
            prop_assume!(!buf.is_empty());
            let cut = cut.index(buf.len());
            if let Ok(decoded) = VersionEdit::decode(&buf[..cut]) {
                prop_assert_ne!(decoded, e);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = VersionEdit::decode(&bytes);
        }
    }

    #[test]
    fn a_newer_format_version_is_reported_as_such() {
        let mut buf = Vec::new();
        put_varint32(&mut buf, TAG_FORMAT_VERSION);
        put_varint32(&mut buf, MANIFEST_FORMAT_VERSION + 1);
        assert_eq!(
            VersionEdit::decode(&buf),
            Err(EditError::NewerVersion(MANIFEST_FORMAT_VERSION + 1))
        );
    }
}
