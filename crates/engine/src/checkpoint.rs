//! Online checkpoints: a consistent copy of a live database in another directory.
//!
//! Tables are immutable, so a consistent copy is the table files of one version per
//! keyspace (hard links where the file system allows, copies otherwise) plus a manifest
//! written fresh for exactly those files. The MemTables are flushed first, up to one cut
//! across every keyspace ([`pin`]), so no WAL needs copying: the checkpoint's WAL is a
//! new, empty one. `docs/backup.md` says what this guarantees and what writers pay for
//! it.
//!
//! The pieces shared with [`crate::backup`] live here too: pinning a consistent state
//! ([`pin`]), copying a file while checksumming it ([`copy_file`]), and writing the
//! WAL, manifest and `CURRENT` that make a directory of tables a database
//! ([`install_database`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use strata_compaction::FileMeta;
use strata_core::{Error, FileSystem, Result, SequenceNumber, is_link_unavailable};
use xxhash_rust::xxh3::Xxh3;

use crate::db::{Db, DbInner, lock};
use crate::filename::{table_path, wal_path};
use crate::keyspace::Keyspace;
use crate::manifest::ManifestWriter;
use crate::open::create_dir_durably;
use crate::tree::Tree;
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

/// One keyspace's tables, pinned.
pub(crate) struct PinnedTree {
    pub id: u32,
    pub name: String,
    pub version: Arc<Version>,
}

impl PinnedTree {
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

/// A consistent state of the database (or of some of its keyspaces), held: while this
/// lives, none of its table files is deleted (a
/// [`TableFile`](crate::version::TableFile) removes its file only when the last version
/// naming it is gone).
pub(crate) struct Pinned {
    /// The keyspaces pinned, by id.
    pub trees: Vec<PinnedTree>,
    /// Every pinned keyspace's tables hold exactly its writes up to this sequence
    /// number.
    pub last_sequence: SequenceNumber,
    /// Larger than every file number in the pinned versions.
    pub next_file_number: u64,
    /// Larger than every keyspace id in the database.
    pub next_keyspace_id: u32,
    pub flush_wait: Duration,
    /// How long the write lock was held to freeze the MemTables.
    pub writer_pause: Duration,
}

/// Which keyspaces [`pin`] pins.
pub(crate) enum Scope<'a> {
    /// Every keyspace: the whole database.
    All,
    /// One keyspace.
    One(&'a Arc<Tree>),
}

/// Holds the flush thread back from MemTables frozen after a checkpoint's cut (see
/// [`pin`]); lifted when dropped, however the checkpoint ends.
struct FlushBarrier<'a>(&'a DbInner);

impl Drop for FlushBarrier<'_> {
    fn drop(&mut self) {
        self.0.flush_barrier.store(u64::MAX, Ordering::Release);
        // Anything held back may go now.
        self.0.schedule_flush();
    }
}

/// Freezes the MemTables in scope at one sequence number (the cut), waits until
/// everything up to the cut is in tables, then pins those tables.
///
/// Why that state is consistent, across keyspaces too: the MemTables are frozen under
/// the write lock, between two write groups, by one WAL switch, so every entry up to
/// the cut is in a MemTable that starts in a WAL older than the new one, and every later
/// entry is in one that starts in the new WAL or later. The flush thread flushes only
/// the former while the cut is held (`DbInner::flush_barrier`), so when none of them is
/// left, each keyspace's tables hold exactly its writes up to the cut — a batch that
/// spans keyspaces is in all of them or in none. Compactions rewrite tables but never
/// add newer data, so the versions pinned then are the cut's.
///
/// Writers wait only for the freeze (one WAL creation and directory sync, as at every
/// MemTable switch); they go on during the flush, and stall only if they fill their
/// MemTables before it ends. One checkpoint or backup pins at a time.
pub(crate) fn pin(inner: &Arc<DbInner>, scope: Scope<'_>) -> Result<Pinned> {
    if inner.opts.read_only {
        return Err(Error::NotSupported(
            "a read-only handle cannot flush its MemTable for a checkpoint or backup; open the database writable".into(),
        ));
    }
    inner.check_writable()?;
    if let Scope::One(tree) = scope {
        tree.check_live()?;
    }
    let _one_at_a_time = lock(&inner.pinning);
    let in_scope = |t: &Arc<Tree>| match scope {
        Scope::All => true,
        Scope::One(only) => t.id == only.id,
    };
    let start = Instant::now();
    let (barrier, cut, writer_pause) = {
        let mut ws = lock(&inner.write);
        let held = Instant::now();
        let full: Vec<Arc<Tree>> = inner
            .trees()
            .into_iter()
            .filter(|t| in_scope(t) && !t.view().mem.is_empty())
            .collect();
        // Always a new WAL, even with nothing to freeze: it is the line between the
        // MemTables the cut needs flushed and the later ones.
        crate::write::rotate(inner, &mut ws, &full)?;
        inner.flush_barrier.store(ws.wal_number, Ordering::Release);
        (ws.wal_number, ws.last_seq, held.elapsed())
    };
    let _barrier = FlushBarrier(inner);
    loop {
        inner.check_writable()?;
        let pending = inner.trees().into_iter().filter(|t| in_scope(t)).any(|t| {
            t.view()
                .frozen
                .last()
                .is_some_and(|(_, wal)| *wal < barrier)
        });
        if !pending {
            break;
        }
        inner.schedule_flush();
        crate::write::wait_for_progress(inner);
    }
    let flush_wait = start.elapsed();
    // Under the manifest lock: no flush or compaction installs a version meanwhile, and
    // no keyspace is made or dropped.
    let _manifest = lock(&inner.manifest);
    let keyspaces = inner.keyspaces.read().unwrap_or_else(|p| p.into_inner());
    let trees = keyspaces
        .trees
        .values()
        .filter(|t| in_scope(t))
        .map(|t| PinnedTree {
            id: t.id,
            name: t.name.clone(),
            version: Arc::clone(&t.view().version),
        })
        .collect::<Vec<_>>();
    if let Scope::One(tree) = scope {
        // Dropped while its MemTable was flushed.
        tree.check_live()?;
    }
    Ok(Pinned {
        trees,
        last_sequence: cut,
        next_file_number: inner.next_file_number.load(Ordering::Acquire),
        next_keyspace_id: keyspaces.next_id,
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

/// Makes `dir`, which holds the table files of `trees` (their bytes fsynced; their
/// names are made durable here, with the WAL's, before the manifest names them), a
/// database at `last_sequence`: writes an empty WAL and a manifest naming exactly those
/// files (both numbered from `next_file_number`, above every table's), syncs them and
/// the directory, and switches `CURRENT` to the manifest last. Until that switch the
/// directory is not a database (no `CURRENT`), so an interrupted call never leaves
/// something that opens as a partial state. Each keyspace's tables hold exactly its
/// writes up to `last_sequence`, so that is every keyspace's flushed sequence.
pub(crate) fn install_database(
    fs: &dyn FileSystem,
    dir: &Path,
    trees: &[CheckpointTree],
    last_sequence: SequenceNumber,
    next_file_number: u64,
    next_keyspace_id: u32,
) -> Result<()> {
    let next = trees
        .iter()
        .flat_map(|t| &t.files)
        .map(|(_, m)| m.number + 1)
        .fold(next_file_number.max(1), u64::max);
    let (wal, manifest) = (next, next + 1);
    // The manifest's live WAL must exist (open refuses a database whose WAL is gone):
    // an empty one, whose records would start right after `last_sequence`.
    let mut log = fs.create(&wal_path(dir, wal))?;
    log.sync()?;
    drop(log);
    fs.sync_dir(dir)?;
    let next_keyspace_id = trees
        .iter()
        .map(|t| t.id + 1)
        .fold(next_keyspace_id.max(1), u32::max);
    let snapshot = crate::edit::snapshot_edits(
        wal,
        manifest + 1,
        last_sequence,
        next_keyspace_id,
        trees.iter().map(|t| crate::edit::TreeState {
            id: t.id,
            name: &t.name,
            flushed_seq: last_sequence,
            files: t.files.clone(),
        }),
    );
    // Writes and syncs the manifest, syncs the directory, then replaces `CURRENT`
    // atomically (temp file, sync, rename, directory sync).
    ManifestWriter::create(fs, dir, manifest, &snapshot)?;
    Ok(())
}

/// One keyspace of a database [`install_database`] writes.
pub(crate) struct CheckpointTree {
    pub id: u32,
    pub name: String,
    pub files: Vec<(usize, FileMeta)>,
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
    /// The MemTables of every keyspace are frozen at one sequence number and flushed
    /// first (writers wait only for the freeze, a WAL creation and directory sync; they
    /// keep writing during the flush), so a batch spanning keyspaces is in the
    /// checkpoint whole or not at all. The tables of the flushed state are then
    /// hard-linked into `dir` where it is on the same file system, copied otherwise; a manifest naming exactly those tables, an
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
        write_checkpoint(self.inner(), dir.as_ref(), Scope::All, progress)
    }
}

impl Keyspace {
    /// Writes a checkpoint of this keyspace alone into `dir` (which must not exist, or
    /// be empty): a directory that opens as a database whose default keyspace holds
    /// exactly this keyspace's writes up to one sequence number
    /// ([`CheckpointInfo::sequence`]), every write acknowledged before the call
    /// included. As [`Db::checkpoint`] does, but only this keyspace's MemTable is
    /// frozen and flushed, and only its tables are linked or copied.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = strata::Db::open(dir.path().join("db"))?;
    /// let users = db.keyspace("users")?;
    /// users.put("1", "ada")?;
    /// db.put("elsewhere", "not copied")?;
    /// users.checkpoint(dir.path().join("users"))?;
    /// db.close()?;
    ///
    /// let copy = strata::Db::open(dir.path().join("users"))?;
    /// assert_eq!(copy.get("1")?.as_deref(), Some(&b"ada"[..]));
    /// assert_eq!(copy.get("elsewhere")?, None);
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<CheckpointInfo> {
        self.checkpoint_with_progress(dir, &mut |_| {})
    }

    /// [`checkpoint`](Self::checkpoint), calling `progress` as table bytes are linked
    /// or copied.
    pub fn checkpoint_with_progress(
        &self,
        dir: impl AsRef<Path>,
        progress: &mut dyn FnMut(CopyProgress),
    ) -> Result<CheckpointInfo> {
        write_checkpoint(
            self.db().inner(),
            dir.as_ref(),
            Scope::One(self.tree()),
            progress,
        )
    }
}

/// Pins `scope` and writes it into `dir` as a database (a keyspace checkpointed alone
/// becomes the new database's default keyspace).
fn write_checkpoint(
    inner: &Arc<DbInner>,
    dir: &Path,
    scope: Scope<'_>,
    progress: &mut dyn FnMut(CopyProgress),
) -> Result<CheckpointInfo> {
    let fs = &*inner.fs;
    check_empty_target(fs, dir)?;
    let alone = matches!(scope, Scope::One(_));
    let pinned = pin(inner, scope)?;
    let span =
        tracing::info_span!("strata.checkpoint", db = %inner.dir.display(), to = %dir.display());
    let _entered = span.enter();
    create_dir_durably(fs, dir)?;
    let trees: Vec<CheckpointTree> = pinned
        .trees
        .iter()
        .map(|t| CheckpointTree {
            id: if alone {
                crate::batch::DEFAULT_KEYSPACE
            } else {
                t.id
            },
            name: if alone {
                crate::tree::DEFAULT_NAME.to_owned()
            } else {
                t.name.clone()
            },
            files: t.files(),
        })
        .collect();
    let total_bytes = trees
        .iter()
        .flat_map(|t| &t.files)
        .map(|(_, m)| m.size_bytes)
        .sum();
    let mut done_bytes = 0;
    let mut linked = 0;
    progress(CopyProgress {
        done_bytes,
        total_bytes,
    });
    for (_, meta) in trees.iter().flat_map(|t| &t.files) {
        let src = table_path(&inner.dir, meta.number);
        let dst = table_path(dir, meta.number);
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
    // Copies were synced as they were written, links share the source's synced bytes;
    // their names become durable with the directory sync that `install_database` does
    // before it writes the manifest.
    install_database(
        fs,
        dir,
        &trees,
        pinned.last_sequence,
        pinned.next_file_number,
        if alone { 1 } else { pinned.next_keyspace_id },
    )?;
    let info = CheckpointInfo {
        sequence: pinned.last_sequence,
        tables: trees.iter().map(|t| t.files.len()).sum(),
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
