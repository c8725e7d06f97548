//! Read-only access to Strata's on-disk structures, for inspection tools (`cargo xtask`)
//! and fuzzing. Nothing here writes; every decoder returns an error for damaged bytes
//! and never panics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use strata_core::{Error, FileSystem, Result, SequenceNumber};
use strata_wal::{LogEnd, LogReader, RecoveryMode};

pub use crate::batch::BatchOp;
pub use crate::edit::{EditError, MANIFEST_FORMAT_VERSION, VersionEdit};
pub use crate::filename::FileKind;
pub use strata_compaction::FileMeta;

/// One entry of a decoded write batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchEntry {
    /// The entry's sequence number.
    pub seq: SequenceNumber,
    /// The keyspace id the entry belongs to (0: the default keyspace; the manifest's
    /// `NewKeyspace` edits name the others).
    pub keyspace: u32,
    /// Put, delete or range delete.
    pub kind: BatchOp,
    /// The user key (a range delete's start).
    pub key: Vec<u8>,
    /// The value (empty for deletes; a range delete's exclusive end).
    pub value: Vec<u8>,
}

/// Decodes a WAL record's payload (a write group: one or more batches). Damage is
/// reported as the reason string; the caller knows the file and offset.
pub fn decode_wal_batch(payload: &[u8]) -> std::result::Result<Vec<BatchEntry>, &'static str> {
    let record = crate::batch::decode_record(payload)?;
    (record.first_seq..)
        .zip(record.entries)
        .map(|(seq, e)| {
            e.map(|e| BatchEntry {
                seq,
                keyspace: e.keyspace,
                kind: e.kind,
                key: e.key.to_vec(),
                value: e.value.to_vec(),
            })
        })
        .collect()
}

/// Classifies a file name of a database directory; `None` for names Strata never writes.
pub fn classify(file_name: &str) -> Option<FileKind> {
    crate::filename::parse(file_name)
}

/// The manifest `CURRENT` names in `dir`.
pub fn current_manifest(fs: &dyn FileSystem, dir: &Path) -> Result<PathBuf> {
    crate::manifest::current_manifest_path(fs, dir)
}

/// One manifest record.
#[derive(Clone, Debug)]
pub struct ManifestRecord {
    /// Offset of the record in the manifest.
    pub offset: u64,
    /// The decoded edit.
    pub edit: VersionEdit,
}

/// Every edit of the manifest at `path`, and how reading ended (read in the WAL's
/// tolerate-torn-tail mode, as recovery does).
pub fn read_manifest(fs: &dyn FileSystem, path: &Path) -> Result<(Vec<ManifestRecord>, LogEnd)> {
    let mut reader = LogReader::new(fs.open(path)?, RecoveryMode::TolerateTornTail);
    let mut records = Vec::new();
    while let Some(r) = reader.next_record()? {
        let edit = VersionEdit::decode(&r.data).map_err(|e| match e {
            EditError::Malformed(reason) => Error::corruption(path, r.offset, reason),
            EditError::NewerVersion(v) => {
                Error::NotSupported(format!("manifest format version {v}"))
            }
        })?;
        records.push(ManifestRecord {
            offset: r.offset,
            edit,
        });
    }
    let end = reader
        .end()
        .copied()
        .ok_or_else(|| Error::corruption(path, 0, "manifest reader ended without a report"))?;
    Ok((records, end))
}

/// The default keyspace's live files per level after applying `edits` in order (L0
/// newest first, deeper levels by smallest key), as recovery computes them; see
/// [`live_files_in`] for the other keyspaces.
pub fn live_files(edits: &[ManifestRecord]) -> Vec<Vec<FileMeta>> {
    live_files_in(edits, crate::batch::DEFAULT_KEYSPACE)
}

/// `(id, name)` of every keyspace `edits` leave (the default one, id 0, first).
pub fn keyspaces(edits: &[ManifestRecord]) -> Vec<(u32, String)> {
    let mut live = BTreeMap::from([(
        crate::batch::DEFAULT_KEYSPACE,
        crate::tree::DEFAULT_NAME.to_owned(),
    )]);
    for r in edits {
        for (id, name) in &r.edit.new_keyspaces {
            live.insert(*id, name.clone());
        }
        for id in &r.edit.dropped_keyspaces {
            live.remove(id);
        }
    }
    live.into_iter().collect()
}

/// The sequence number keyspace `keyspace`'s tables reach after `edits` (its entries
/// at or below it in a WAL are in its tables already); 0 when no edit says.
pub fn flushed_seq(edits: &[ManifestRecord], keyspace: u32) -> SequenceNumber {
    let mut seq = 0;
    for r in edits {
        if r.edit.new_keyspaces.iter().any(|(id, _)| *id == keyspace) {
            seq = 0;
        }
        if r.edit.keyspace == keyspace
            && let Some(s) = r.edit.flushed_seq
        {
            seq = s;
        }
    }
    seq
}

/// Keyspace `keyspace`'s live files per level after applying `edits` in order (see
/// [`live_files`]); none for a keyspace dropped or never made.
pub fn live_files_in(edits: &[ManifestRecord], keyspace: u32) -> Vec<Vec<FileMeta>> {
    let mut live: BTreeMap<u64, (usize, FileMeta)> = BTreeMap::new();
    for r in edits {
        if r.edit.new_keyspaces.iter().any(|(id, _)| *id == keyspace)
            || r.edit.dropped_keyspaces.contains(&keyspace)
        {
            // Made afresh or dropped: nothing before this edit is its.
            live.clear();
        }
        if r.edit.keyspace != keyspace {
            continue;
        }
        for (_, number) in &r.edit.deleted_files {
            live.remove(number);
        }
        for (level, meta) in &r.edit.new_files {
            live.insert(meta.number, (*level, meta.clone()));
        }
    }
    let mut levels = vec![Vec::new(); crate::version::NUM_LEVELS];
    for (level, meta) in live.into_values() {
        if let Some(files) = levels.get_mut(level) {
            files.push(meta);
        }
    }
    for (level, files) in levels.iter_mut().enumerate() {
        if level == 0 {
            files.sort_by_key(|f| std::cmp::Reverse((f.largest_seq, f.number)));
        } else {
            files.sort_by(|a, b| a.smallest.cmp(&b.smallest));
        }
    }
    levels
}
