//! The manifest: writing version edits durably, and reading them back at open.
//!
//! Layout on disk is `docs/format/manifest.md`: a WAL-format log whose first record is a
//! full snapshot edit (format version, counters, every live file) and whose later
//! records are incremental edits. `CURRENT` names the live manifest and is switched
//! with [`strata_core::atomic_replace`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use strata_compaction::FileMeta;
use strata_core::{Error, FileSystem, Result, SequenceNumber, atomic_replace};
use strata_wal::{LogReader, LogWriter, RecoveryMode, SyncPolicy};

use crate::edit::{EditError, MANIFEST_FORMAT_VERSION, VersionEdit};
use crate::filename::{CURRENT, manifest_name};
use crate::version::NUM_LEVELS;

/// An open manifest accepting edits. After a failed append or sync it refuses every
/// further edit (the WAL writer is poisoned): a torn edit must never be followed by
/// another in the same file.
pub(crate) struct ManifestWriter {
    number: u64,
    log: LogWriter,
    buf: Vec<u8>,
}

impl ManifestWriter {
    /// Writes a new manifest holding `snapshot` (edits describing the whole database,
    /// the first with the format version), syncs it and its directory, then points
    /// `CURRENT` at it.
    pub fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        number: u64,
        snapshot: &[VersionEdit],
    ) -> Result<Self> {
        let path = dir.join(manifest_name(number));
        let mut writer = ManifestWriter {
            number,
            log: LogWriter::new(fs.create(&path)?, SyncPolicy::EveryWrite),
            buf: Vec::new(),
        };
        // The file is not the database's manifest until `CURRENT` names it, below.
        for edit in snapshot {
            writer.append(edit)?;
        }
        fs.sync_dir(dir)?;
        atomic_replace(
            fs,
            &dir.join(CURRENT),
            format!("{}\n", manifest_name(number)).as_bytes(),
        )?;
        Ok(writer)
    }

    /// A writer that refuses every edit, for read-only handles (which hold one only
    /// because the handle's shared state is the same for both kinds).
    pub fn refusing() -> Self {
        ManifestWriter {
            number: 0,
            log: LogWriter::new(Box::new(crate::read_only::NoWrites), SyncPolicy::Never),
            buf: Vec::new(),
        }
    }

    /// Appends `edit` and syncs it; the edit is durable when this returns `Ok`.
    pub fn append(&mut self, edit: &VersionEdit) -> Result<()> {
        self.buf.clear();
        edit.encode(&mut self.buf);
        self.log.add_record(&self.buf)?;
        Ok(())
    }

    /// This manifest's file number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Bytes written so far (the manifest is rolled over when large).
    pub fn len(&self) -> u64 {
        self.log.len()
    }
}

/// What the manifest says about the database.
#[derive(Debug)]
pub(crate) struct RecoveredManifest {
    pub log_number: u64,
    pub next_file_number: u64,
    pub last_sequence: SequenceNumber,
    /// Every keyspace by id, the default one (0) included.
    pub keyspaces: BTreeMap<u32, RecoveredKeyspace>,
    pub next_keyspace_id: u32,
    /// The manifest read (`None` for a new database) and the length of its intact part.
    pub source: Option<(PathBuf, u64)>,
}

/// One keyspace as the manifest left it.
#[derive(Debug, Default)]
pub(crate) struct RecoveredKeyspace {
    pub name: String,
    /// Live files per level, in no particular order.
    pub files: Vec<(usize, FileMeta)>,
    /// Every entry with a sequence number up to this is in `files` (0: unknown, as
    /// before keyspaces: replay every entry of the WALs from the log number on).
    pub flushed_seq: SequenceNumber,
}

impl Default for RecoveredManifest {
    /// A new database: the default keyspace alone, no file.
    fn default() -> Self {
        let default = RecoveredKeyspace {
            name: crate::tree::DEFAULT_NAME.to_owned(),
            ..RecoveredKeyspace::default()
        };
        RecoveredManifest {
            log_number: 0,
            next_file_number: 1,
            last_sequence: 0,
            keyspaces: BTreeMap::from([(crate::batch::DEFAULT_KEYSPACE, default)]),
            next_keyspace_id: 1,
            source: None,
        }
    }
}

impl RecoveredManifest {
    /// Every live file of every keyspace.
    pub fn all_files(&self) -> impl Iterator<Item = &FileMeta> {
        self.keyspaces
            .values()
            .flat_map(|k| k.files.iter().map(|(_, m)| m))
    }
}

/// The manifest `CURRENT` names; `Corruption` naming `CURRENT` if it names nothing valid
/// or a file that does not exist.
pub(crate) fn current_manifest_path(fs: &dyn FileSystem, dir: &Path) -> Result<PathBuf> {
    let current_path = dir.join(CURRENT);
    let current = read_whole(fs, &current_path)?;
    let name = std::str::from_utf8(&current)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .filter(|s| !s.contains(['/', '\n']))
        .ok_or_else(|| {
            Error::corruption(&current_path, 0, "CURRENT does not hold a manifest name")
        })?;
    match crate::filename::parse(name) {
        Some(crate::filename::FileKind::Manifest(_)) => {}
        _ => {
            return Err(Error::corruption(
                &current_path,
                0,
                format!("CURRENT names {name:?}, not a manifest"),
            ));
        }
    }
    let path = dir.join(name);
    if !fs.exists(&path)? {
        return Err(Error::corruption(
            &current_path,
            0,
            format!("CURRENT names {name}, which does not exist"),
        ));
    }
    Ok(path)
}

/// Reads `CURRENT` and replays the manifest it names.
pub(crate) fn recover(fs: &dyn FileSystem, dir: &Path) -> Result<RecoveredManifest> {
    let path = current_manifest_path(fs, dir)?;
    let mut reader = LogReader::new(fs.open(&path)?, RecoveryMode::TolerateTornTail);
    // Per keyspace: its name, live files by number, flushed sequence.
    type Live = (String, BTreeMap<u64, (usize, FileMeta)>, SequenceNumber);
    let mut keyspaces: BTreeMap<u32, Live> = BTreeMap::from([(
        crate::batch::DEFAULT_KEYSPACE,
        (crate::tree::DEFAULT_NAME.to_owned(), BTreeMap::new(), 0),
    )]);
    let (mut log_number, mut next_file_number, mut last_sequence) = (None, None, None);
    let mut next_keyspace_id = 1u32;
    let mut first = true;
    while let Some(record) = reader.next_record()? {
        let edit = VersionEdit::decode(&record.data).map_err(|e| match e {
            EditError::NewerVersion(v) => Error::NotSupported(format!(
                "{} has manifest format version {v}; this build reads up to {MANIFEST_FORMAT_VERSION}",
                path.display()
            )),
            EditError::Malformed(reason) => Error::corruption(&path, record.offset, reason),
        })?;
        let bad = |what: String| Error::corruption(&path, record.offset, what);
        if first && edit.format_version.is_none() {
            return Err(bad("first edit has no format version".into()));
        }
        first = false;
        if let Some(id) = edit.next_keyspace_id {
            next_keyspace_id = id;
        }
        for (id, name) in &edit.new_keyspaces {
            if *id >= next_keyspace_id
                || keyspaces.contains_key(id)
                || keyspaces.values().any(|(n, _, _)| n == name)
            {
                return Err(bad(format!(
                    "edit makes keyspace {id} ({name:?}), which exists or was never given out"
                )));
            }
            keyspaces.insert(*id, (name.clone(), BTreeMap::new(), 0));
        }
        let Some((_, live, flushed)) = keyspaces.get_mut(&edit.keyspace) else {
            return Err(bad(format!(
                "edit changes keyspace {}, which does not exist",
                edit.keyspace
            )));
        };
        for (level, number) in &edit.deleted_files {
            if live.remove(number).is_none_or(|(l, _)| l != *level) {
                return Err(bad(format!(
                    "edit removes file {number} from L{level}, where it is not"
                )));
            }
        }
        for (level, meta) in edit.new_files {
            if level >= NUM_LEVELS {
                return Err(bad(format!("file on level {level}")));
            }
            live.insert(meta.number, (level, meta));
        }
        if let Some(seq) = edit.flushed_seq {
            *flushed = seq;
        }
        for id in &edit.dropped_keyspaces {
            if *id == crate::batch::DEFAULT_KEYSPACE || keyspaces.remove(id).is_none() {
                return Err(bad(format!(
                    "edit drops keyspace {id}, which does not exist or is the default"
                )));
            }
        }
        log_number = edit.log_number.or(log_number);
        next_file_number = edit.next_file_number.or(next_file_number);
        last_sequence = edit.last_sequence.or(last_sequence);
    }
    let missing = |what| Error::corruption(&path, 0, format!("manifest never records the {what}"));
    Ok(RecoveredManifest {
        log_number: log_number.ok_or_else(|| missing("log number"))?,
        next_file_number: next_file_number.ok_or_else(|| missing("next file number"))?,
        last_sequence: last_sequence.ok_or_else(|| missing("last sequence"))?,
        keyspaces: keyspaces
            .into_iter()
            .map(|(id, (name, live, flushed_seq))| {
                let files = live.into_values().collect();
                (
                    id,
                    RecoveredKeyspace {
                        name,
                        files,
                        flushed_seq,
                    },
                )
            })
            .collect(),
        next_keyspace_id,
        source: Some((
            path.clone(),
            reader.end().map_or(0, strata_wal::LogEnd::valid_len),
        )),
    })
}

/// Reads a small file whole.
pub(crate) fn read_whole(fs: &dyn FileSystem, path: &Path) -> Result<Vec<u8>> {
    let file = fs.open(path)?;
    let len =
        usize::try_from(file.len()).map_err(|_| Error::corruption(path, 0, "file too large"))?;
    let mut buf = vec![0; len];
    file.read_exact_at(0, &mut buf)?;
    Ok(buf)
}
