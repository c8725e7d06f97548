//! Reading a database directory for the tools: `CURRENT`, the manifest's edits (as far
//! as they can be read), the live files per level, and the write-ahead logs.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use strata::inspect::{
    self, BatchEntry, EditError, FileKind, FileMeta, ManifestRecord, VersionEdit,
};
use strata_core::{FileSystem, StdFs};
use strata_wal::{LogEnd, LogReader, Record, RecoveryMode};

use super::{Failure, describe};

/// Reads every record of the record log at `path` in point-in-time mode, so that
/// reading stops at the first damage and [`LogEnd`] says where and why (a torn tail, or
/// damage with intact data after it). `f` may stop early (then `None` is returned).
///
/// Fails only when nothing of the file can be trusted: it cannot be opened, it is not a
/// record log (bad magic), or its format is newer than this build.
pub fn for_each_record(
    path: &Path,
    mut f: impl FnMut(Record) -> ControlFlow<()>,
) -> Result<Option<LogEnd>, Failure> {
    let file = StdFs.open(path).map_err(|e| Failure::at(path, &e))?;
    let mut reader = LogReader::new(file, RecoveryMode::PointInTime);
    loop {
        match reader.next_record() {
            Ok(Some(r)) => {
                if f(r).is_break() {
                    return Ok(None);
                }
            }
            Ok(None) => {
                let end = reader.end().copied();
                // Damage before the first record: is this a log at all?
                if end.is_some_and(|e| e.valid_len() == 0 && !matches!(e, LogEnd::Clean { .. }))
                    && !starts_like_a_log(path)
                {
                    return Err(Failure::new(format!(
                        "{}: not a Strata record log (it does not start with a log header)",
                        path.display()
                    )));
                }
                return Ok(end);
            }
            Err(e) => {
                let what = if e.is_corruption() {
                    format!("{} (not a Strata record log?)", describe(&e))
                } else {
                    describe(&e)
                };
                return Err(Failure::new(format!("{}: {what}", path.display())));
            }
        }
    }
}

/// Whether the first bytes of the file at `path` could be a record log's header
/// (intact, damaged in a few bytes, cut short, or zeros).
fn starts_like_a_log(path: &Path) -> bool {
    use std::io::Read;
    let mut start = Vec::with_capacity(strata_wal::format::LOG_HEADER_LEN);
    let read = std::fs::File::open(path).and_then(|f| {
        f.take(strata_wal::format::LOG_HEADER_LEN as u64)
            .read_to_end(&mut start)
    });
    read.is_err() || strata_wal::format::could_be_log_header(&start)
}

/// How reading a manifest ended.
#[derive(Clone, Debug)]
pub enum ManifestEnd {
    /// The record log ended (cleanly, at a torn tail, or at damage).
    Log(LogEnd),
    /// A record was intact but did not decode as a version edit.
    BadEdit {
        /// The record's offset.
        offset: u64,
        /// Why.
        reason: &'static str,
    },
}

impl ManifestEnd {
    /// One line saying how reading ended.
    pub fn text(&self) -> String {
        match self {
            ManifestEnd::Log(end) => end.to_string(),
            ManifestEnd::BadEdit { offset, reason } => {
                format!("record at offset {offset} is not a valid version edit: {reason}")
            }
        }
    }
}

/// A manifest, read as far as it can be.
#[derive(Debug)]
pub struct Manifest {
    /// Its path.
    pub path: PathBuf,
    /// The edits read, in order.
    pub records: Vec<ManifestRecord>,
    /// How reading ended.
    pub end: ManifestEnd,
}

/// Reads the manifest at `path`.
pub fn read_manifest(path: &Path) -> Result<Manifest, Failure> {
    let mut records = Vec::new();
    let mut bad = None;
    let mut newer = None;
    let end = for_each_record(path, |r| match VersionEdit::decode(&r.data) {
        Ok(edit) => {
            records.push(ManifestRecord {
                offset: r.offset,
                edit,
            });
            ControlFlow::Continue(())
        }
        Err(EditError::Malformed(reason)) => {
            bad = Some(ManifestEnd::BadEdit {
                offset: r.offset,
                reason,
            });
            ControlFlow::Break(())
        }
        Err(EditError::NewerVersion(v)) => {
            newer = Some(v);
            ControlFlow::Break(())
        }
    })?;
    if let Some(v) = newer {
        return Err(Failure::new(format!(
            "{}: manifest format version {v} is newer than this build reads ({})",
            path.display(),
            inspect::MANIFEST_FORMAT_VERSION
        )));
    }
    let end = match (bad, end) {
        (Some(bad), _) => bad,
        (None, Some(end)) => ManifestEnd::Log(end),
        (None, None) => {
            return Err(Failure::new(format!(
                "{}: reading stopped without a report",
                path.display()
            )));
        }
    };
    Ok(Manifest {
        path: path.to_path_buf(),
        records,
        end,
    })
}

/// The counters the edits set (the last value of each wins).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Counters {
    /// WALs numbered below this are flushed.
    pub log_number: u64,
    /// Next unused file number.
    pub next_file_number: u64,
    /// Last sequence number in any table.
    pub last_sequence: u64,
}

impl Manifest {
    /// Whether reading reached the end of the manifest without damage.
    pub fn ended_cleanly(&self) -> bool {
        matches!(
            self.end,
            ManifestEnd::Log(LogEnd::Clean { .. } | LogEnd::Preallocated { .. })
        )
    }

    /// How reading ended, and for a torn tail what the engine makes of it. A manifest
    /// is a record log like a WAL, but a torn tail in it is harmless only if no edit
    /// was lost that the engine had acted on; the engine checks that the live WAL the
    /// last readable edit names still exists (`open.rs`) and refuses to open otherwise.
    pub fn end_text(&self) -> String {
        let text = self.end.text();
        let ManifestEnd::Log(LogEnd::TornTail { offset, .. }) = self.end else {
            return text;
        };
        let Some(dir) = self.path.parent() else {
            return text;
        };
        let live = dir.join(format!("{:06}.log", self.counters().log_number));
        if live.exists() {
            format!(
                "{text}; a crash mid-append leaves this, and the engine opens the database \
                 with the edits before it"
            )
        } else {
            format!(
                "{text}; edits after offset {offset} were lost: the live WAL the last \
                 readable edit names ({}) is missing, so the engine refuses to open the \
                 database (Corruption)",
                super::file_name(&live)
            )
        }
    }

    /// The counters after every edit read.
    pub fn counters(&self) -> Counters {
        let mut c = Counters::default();
        for r in &self.records {
            let e = &r.edit;
            c.log_number = e.log_number.unwrap_or(c.log_number);
            c.next_file_number = e.next_file_number.unwrap_or(c.next_file_number);
            c.last_sequence = e.last_sequence.unwrap_or(c.last_sequence);
        }
        c
    }

    /// The default keyspace's live files per level after every edit read.
    pub fn levels(&self) -> Vec<Vec<FileMeta>> {
        inspect::live_files(&self.records)
    }

    /// Every keyspace's live files, per level (for checks that cover all of them).
    pub fn levels_of_every_keyspace(&self) -> Vec<Vec<FileMeta>> {
        let mut levels: Vec<Vec<FileMeta>> = Vec::new();
        for (id, _) in inspect::keyspaces(&self.records) {
            for (level, files) in inspect::live_files_in(&self.records, id)
                .into_iter()
                .enumerate()
            {
                if levels.len() <= level {
                    levels.resize(level + 1, Vec::new());
                }
                if let Some(l) = levels.get_mut(level) {
                    l.extend(files);
                }
            }
        }
        levels
    }
}

/// Checks `dir` is a database directory and returns the manifest `CURRENT` names.
pub fn current_manifest(dir: &Path) -> Result<PathBuf, Failure> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Failure::new(format!(
                "{}: is a file, not a database directory",
                dir.display()
            )));
        }
        Err(_) => {
            return Err(Failure::new(format!(
                "{}: no such directory",
                dir.display()
            )));
        }
    }
    if !dir.join("CURRENT").exists() {
        return Err(Failure::new(format!(
            "{}: not a Strata database (no CURRENT file)",
            dir.display()
        )));
    }
    let path = inspect::current_manifest(&StdFs, dir)
        .map_err(|e| Failure::new(format!("{}: CURRENT: {}", dir.display(), describe(&e))))?;
    if !path.exists() {
        return Err(Failure::new(format!(
            "{}: CURRENT names {}, which does not exist",
            dir.display(),
            super::file_name(&path)
        )));
    }
    Ok(path)
}

/// The files of `dir` Strata wrote, by kind, sorted by number (unknown names skipped).
pub fn list(dir: &Path) -> Result<Vec<(FileKind, PathBuf)>, Failure> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::new(format!("{}: listing: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Failure::new(format!("{}: listing: {e}", dir.display())))?;
        let name = entry.file_name();
        if let Some(kind) = name.to_str().and_then(inspect::classify) {
            files.push((kind, entry.path()));
        }
    }
    files.sort_by_key(|(kind, _)| sort_key(*kind));
    Ok(files)
}

fn sort_key(kind: FileKind) -> (u8, u64) {
    match kind {
        FileKind::Current => (0, 0),
        FileKind::Lock => (1, 0),
        FileKind::Manifest(n) => (2, n),
        FileKind::Wal(n) => (3, n),
        FileKind::Table(n) => (4, n),
    }
}

/// The path of table `number` in `dir`, as the engine names it.
pub fn table_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.sst"))
}

/// A write-ahead log's decoded entries (as far as it can be read).
#[derive(Debug)]
pub struct WalContents {
    /// The log.
    pub path: PathBuf,
    /// Every entry of every readable record, in log order.
    pub entries: Vec<BatchEntry>,
    /// How reading ended; or a record that did not decode (offset, reason).
    pub end: Result<LogEnd, (u64, &'static str)>,
}

/// Reads and decodes every batch of the WAL at `path`.
pub fn read_wal(path: &Path) -> Result<WalContents, Failure> {
    let mut entries = Vec::new();
    let mut bad = None;
    let end = for_each_record(path, |r| match inspect::decode_wal_batch(&r.data) {
        Ok(batch) => {
            entries.extend(batch);
            ControlFlow::Continue(())
        }
        Err(reason) => {
            bad = Some((r.offset, reason));
            ControlFlow::Break(())
        }
    })?;
    let end = match (bad, end) {
        (Some(bad), _) => Err(bad),
        (None, Some(end)) => Ok(end),
        (None, None) => Err((0, "reading stopped without a report")),
    };
    Ok(WalContents {
        path: path.to_path_buf(),
        entries,
        end,
    })
}
