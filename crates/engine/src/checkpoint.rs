//! Online checkpoints: a consistent copy of a live database in another directory.
//!
//! Tables are immutable, so a consistent copy is the table files of one version (hard
//! links where the file system allows, copies otherwise) plus a manifest written fresh
//! for exactly those files. The MemTable is flushed first, so no WAL needs copying: the
//! checkpoint's WAL is a new, empty one. `docs/backup.md` says what this guarantees and
//! what writers pay for it.
//!
//! The pieces shared with [`crate::backup`] live here too: pinning a consistent state
//! ([`pin`]), copying a file while checksumming it ([`copy_file`]), and writing the
//! WAL, manifest and `CURRENT` that make a directory of tables a database
//! ([`install_database`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use strata_compaction::FileMeta;
use strata_core::{Error, FileSystem, Result, SequenceNumber, is_link_unavailable};
use xxhash_rust::xxh3::Xxh3;

use crate::db::{Db, DbInner, lock};
use crate::filename::{table_path, wal_path};
use crate::manifest::ManifestWriter;
use crate::open::create_dir_durably;
use crate::version::Version;

/// How far a long copy has got, for progress bars: bytes of the files being copied
/// (or read) so far, out of the total the operation will copy (or read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyProgress {
    /// Bytes done so far.
    pub done_bytes: u64,
    /// Bytes the operation handles in all.
    pub total_bytes: u64,
}

/// What [`Db::checkpoint`] made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The checkpoint holds exactly the writes with sequence numbers up to this one:
    /// every write acknowledged before the call started, and none of the later ones
    /// beyond it.
    pub sequence: SequenceNumber,
    /// Table files in the checkpoint.
    pub tables: usize,
    /// Their total size.
    pub table_bytes: u64,
    /// How many of them were hard-linked (the rest were copied: another file system,
    /// or one without hard links).
    pub linked: usize,
    /// How long the call waited for the flush of the MemTable it froze. Writers do not
    /// wait for it (only for the MemTable switch itself); see `docs/backup.md`.
    pub flush_wait: Duration,
    /// How long the call held the write lock to switch MemTables: the longest any
    /// writer waited because of the checkpoint.
    pub writer_pause: Duration,
}

/// A consistent state of the database, held: while this lives, none of its table files
/// is deleted (a [`TableFile`](crate::version::TableFile) removes its file only when
/// the last version naming it is gone).
pub(crate) struct Pinned {
    pub version: Arc<Version>,
    /// The tables hold exactly the writes up to this sequence number.
    pub last_sequence: SequenceNumber,
    /// Larger than every file number in `version`.
    pub next_file_number: u64,
    pub flush_wait: Duration,
    /// How long the write lock was held to freeze the MemTable.
    pub writer_pause: Duration,
}

impl Pinned {
    /// `(level, file)` for every table, as a snapshot edit lists them.
    pub fn files(&self) -> Vec<(usize, FileMeta)> {
        self.version
            .levels
            .iter()
            .enumerate()
            .flat_map(|(level, files)| files.iter().map(move |f| (level, (*f.meta).clone())))
            .collect()
    }
}

/// Freezes the MemTable, waits until it (and every older frozen one) is in a table,
/// then pins the current version with the sequence number it covers.
///
/// Why that state is consistent: MemTables are frozen under the write lock, between two
/// write groups, so each holds a contiguous run of sequence numbers, and they are
/// flushed oldest first. The tables therefore always hold exactly the writes up to the
/// manifest's `last_sequence` (compactions rewrite tables but never add newer data), and
/// that pair — version and `last_sequence` — changes together under the manifest lock,
/// which is held while both are read. Every write acknowledged before the call is in the
/// frozen MemTable or an older one.
///
/// Writers wait only for the freeze (one WAL creation and directory sync, as at every
/// MemTable switch); the flush runs on the flush thread while they go on. Waiting for the
/// MemTables older than the one frozen here — rather than for no frozen MemTable at all,
/// as `flush()` does — ends even while writers keep freezing new ones.
pub(crate) fn pin(inner: &Arc<DbInner>) -> Result<Pinned> {
    if inner.opts.read_only {
        return Err(Error::NotSupported(
            "a read-only handle cannot flush its MemTable for a checkpoint or backup; open the database writable".into(),
        ));
    }
    inner.check_writable()?;
    if inner.trees().len() > 1 {
        return Err(Error::NotSupported(
            "checkpoints and backups of a database with keyspaces besides the default one are not built yet".into(),
        ));
    }
    let start = Instant::now();
    let (live_wal, writer_pause) = {
        let mut ws = lock(&inner.write);
        let held = Instant::now();
        if !inner.tree.view().mem.is_empty() {
            crate::write::rotate(inner, &mut ws, std::slice::from_ref(&inner.tree))?;
        }
        (ws.wal_number, held.elapsed())
    };
    loop {
        inner.check_writable()?;
        if inner
            .tree
            .view()
            .frozen
            .iter()
            .all(|(_, wal)| *wal >= live_wal)
        {
            break;
        }
        inner.schedule_flush();
        crate::write::wait_for_progress(inner);
    }
    let flush_wait = start.elapsed();
    let manifest = lock(&inner.manifest);
    let version = Arc::clone(&inner.tree.view().version);
    Ok(Pinned {
        version,
        last_sequence: manifest.last_sequence,
        next_file_number: inner.next_file_number.load(Ordering::Acquire),
        flush_wait,
        writer_pause,
    })
}

/// Bytes read or written per call while copying or hashing a file.
const CHUNK: usize = 1 << 20;

/// Reads `path` whole, calling `on_chunk` with each piece in order; returns its length.
/// Reads exactly the length the file had when opened, so a file that changes meanwhile
/// (which no table does) cannot make this read past what it checked.
fn read_chunks(
    fs: &dyn FileSystem,
    path: &Path,
    mut on_chunk: impl FnMut(&[u8]) -> Result<()>,
) -> Result<u64> {
    let file = fs.open(path)?;
    let len = file.len();
    let mut buf = vec![0; CHUNK];
    let mut at = 0;
    while at < len {
        let n = usize::try_from(len - at).map_or(CHUNK, |rest| rest.min(CHUNK));
        // `n` is at most CHUNK, the buffer's length.
        let piece = &mut buf[..n];
        file.read_exact_at(at, piece)?;
        on_chunk(piece)?;
        at += n as u64;
    }
    Ok(len)
}

/// Length and XXH3-64 checksum of the whole file, reporting each chunk's size.
pub(crate) fn hash_file(
    fs: &dyn FileSystem,
    path: &Path,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<(u64, u64)> {
    let mut hasher = Xxh3::new();
    let len = read_chunks(fs, path, |piece| {
        hasher.update(piece);
        on_bytes(piece.len() as u64);
        Ok(())
    })?;
    Ok((len, hasher.digest()))
}

/// Copies `src` (on `src_fs`) to a new file `dst` (on `dst_fs`) and syncs it; returns
/// the length and XXH3-64 checksum of the bytes copied. The caller syncs `dst`'s
/// directory. A failed copy removes what it wrote.
pub(crate) fn copy_file(
    src_fs: &dyn FileSystem,
    src: &Path,
    dst_fs: &dyn FileSystem,
    dst: &Path,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<(u64, u64)> {
    let result = (|| {
        let mut out = dst_fs.create(dst)?;
        let mut hasher = Xxh3::new();
        let len = read_chunks(src_fs, src, |piece| {
            hasher.update(piece);
            out.append(piece)?;
            on_bytes(piece.len() as u64);
            Ok(())
        })?;
        out.sync()?;
        Ok((len, hasher.digest()))
    })();
    if result.is_err() {
        let _ = dst_fs.remove(dst);
    }
    result
}

/// Refuses a target directory that exists and holds anything: a checkpoint or restore
/// never mixes its files with others.
pub(crate) fn check_empty_target(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() {
        return Err(Error::InvalidArgument("the target path is empty".into()));
    }
    if fs.exists(dir)? && !fs.list(dir)?.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{} exists and is not empty; a checkpoint or restore needs a new or empty directory",
            dir.display()
        )));
    }
    Ok(())
}

/// Makes `dir`, which holds the table files `files` (their bytes fsynced; their names
/// are made durable here, with the WAL's, before the manifest names them), a database at
/// `last_sequence`: writes an empty WAL and a manifest naming exactly those files (both
/// numbered from `next_file_number`, above every table's), syncs them and the
/// directory, and switches `CURRENT` to the manifest last. Until that switch the
/// directory is not a database (no `CURRENT`), so an interrupted call never leaves
/// something that opens as a partial state.
pub(crate) fn install_database(
    fs: &dyn FileSystem,
    dir: &Path,
    files: Vec<(usize, FileMeta)>,
    last_sequence: SequenceNumber,
    next_file_number: u64,
) -> Result<()> {
    let next = files
        .iter()
        .map(|(_, m)| m.number + 1)
        .fold(next_file_number.max(1), u64::max);
    let (wal, manifest) = (next, next + 1);
    // The manifest's live WAL must exist (open refuses a database whose WAL is gone):
    // an empty one, whose records would start right after `last_sequence`.
    let mut log = fs.create(&wal_path(dir, wal))?;
    log.sync()?;
    drop(log);
    fs.sync_dir(dir)?;
    let snapshot = crate::edit::snapshot_edits(
        wal,
        manifest + 1,
        last_sequence,
        1,
        std::iter::once(crate::edit::TreeState {
            id: crate::batch::DEFAULT_KEYSPACE,
            name: crate::tree::DEFAULT_NAME,
            flushed_seq: last_sequence,
            files,
        }),
    );
    // Writes and syncs the manifest, syncs the directory, then replaces `CURRENT`
    // atomically (temp file, sync, rename, directory sync).
    ManifestWriter::create(fs, dir, manifest, &snapshot)?;
    Ok(())
}

/// Hard-links `src` to `dst`, or copies it (synced) where no link can be made; returns
/// whether it linked.
fn link_or_copy(
    fs: &dyn FileSystem,
    src: &Path,
    dst: &Path,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<bool> {
    match fs.link(src, dst) {
        Ok(()) => Ok(true),
        Err(e) if is_link_unavailable(&e) => {
            copy_file(fs, src, fs, dst, on_bytes)?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

impl Db {
    /// Writes a checkpoint of the database into `dir` (which must not exist, or be
    /// empty) while writers go on: a directory that opens as a complete database holding
    /// exactly the writes up to one sequence number ([`CheckpointInfo::sequence`]),
    /// including every write acknowledged before the call started.
    ///
    /// The MemTable is frozen and flushed first (writers wait only for the freeze, a
    /// WAL creation and directory sync; they keep writing during the flush). The
    /// tables of the flushed state are then hard-linked into `dir` where it is on the
    /// same file system, copied otherwise; a manifest naming exactly those tables, an
    /// empty WAL and `CURRENT` are written fresh. Everything is fsynced, the directory
    /// included, before the call returns. `CURRENT` is written last: a directory left
    /// by an interrupted call has none and is refused by [`Db::open`]; delete it.
    ///
    /// Needs a writable handle ([`Error::NotSupported`] on a read-only one). A hard
    /// link shares the table's bytes with the source: damage to the disk reaches both,
    /// so a checkpoint is not a backup on other media (see [`crate::backup`]).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = strata::Db::open(dir.path().join("db"))?;
    /// db.put("k", "v")?;
    /// let cp = db.checkpoint(dir.path().join("checkpoint"))?;
    /// db.put("k", "later")?;
    /// db.close()?;
    ///
    /// let copy = strata::Db::open(dir.path().join("checkpoint"))?;
    /// assert_eq!(copy.get("k")?.as_deref(), Some(&b"v"[..]));
    /// assert_eq!(cp.sequence, 1);
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<CheckpointInfo> {
        self.checkpoint_with_progress(dir, &mut |_| {})
    }

    /// [`checkpoint`](Self::checkpoint), calling `progress` as table bytes are linked
    /// or copied (a link counts the whole file at once).
    pub fn checkpoint_with_progress(
        &self,
        dir: impl AsRef<Path>,
        progress: &mut dyn FnMut(CopyProgress),
    ) -> Result<CheckpointInfo> {
        let inner = self.inner();
        let fs = &*inner.fs;
        let dir: PathBuf = dir.as_ref().to_path_buf();
        check_empty_target(fs, &dir)?;
        let pinned = pin(inner)?;
        let span = tracing::info_span!("strata.checkpoint", db = %inner.dir.display(), to = %dir.display());
        let _entered = span.enter();
        create_dir_durably(fs, &dir)?;
        let files = pinned.files();
        let total_bytes = files.iter().map(|(_, m)| m.size_bytes).sum();
        let mut done_bytes = 0;
        let mut linked = 0;
        progress(CopyProgress {
            done_bytes,
            total_bytes,
        });
        for (_, meta) in &files {
            let src = table_path(&inner.dir, meta.number);
            let dst = table_path(&dir, meta.number);
            let mut copied = 0;
            let was_linked = link_or_copy(fs, &src, &dst, &mut |n| {
                copied += n;
                progress(CopyProgress {
                    done_bytes: done_bytes + copied,
                    total_bytes,
                });
            })?;
            linked += usize::from(was_linked);
            done_bytes += meta.size_bytes;
            progress(CopyProgress {
                done_bytes,
                total_bytes,
            });
        }
        // Copies were synced as they were written, links share the source's synced
        // bytes; their names become durable with the directory sync that
        // `install_database` does before it writes the manifest.
        install_database(
            fs,
            &dir,
            files,
            pinned.last_sequence,
            pinned.next_file_number,
        )?;
        let info = CheckpointInfo {
            sequence: pinned.last_sequence,
            tables: pinned.version.file_numbers().count(),
            table_bytes: total_bytes,
            linked,
            flush_wait: pinned.flush_wait,
            writer_pause: pinned.writer_pause,
        };
        tracing::info!(
            sequence = info.sequence,
            tables = info.tables,
            bytes = info.table_bytes,
            linked = info.linked,
            flush_wait_ms = info.flush_wait.as_secs_f64() * 1e3,
            "checkpoint written"
        );
        Ok(info)
    }
}
