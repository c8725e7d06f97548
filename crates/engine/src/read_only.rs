//! Read-only opens: reading a database that another process may hold open for writing,
//! without taking its lock and without writing a byte (RocksDB's read-only and
//! secondary instances).
//!
//! A read-only handle loads one consistent state, as the writer left it at one moment:
//! `CURRENT` → manifest (the live tables) → every WAL the manifest does not cover,
//! replayed into an in-memory MemTable that is never written anywhere. [`refresh`]
//! loads the state again and swaps it in; iterators and snapshots keep the state they
//! started with.
//!
//! The writer goes on meanwhile, so every step can find the ground moved: the manifest
//! `CURRENT` named was rolled over and removed, a WAL the manifest names was flushed and
//! deleted, a table was compacted away. Each of those means a newer state exists, so
//! loading starts over from `CURRENT` (a few times, then gives up with an error that
//! says so). Once loaded, every table of the state is held open, so a table the writer
//! deletes later stays readable through this handle on file systems where an open file
//! outlives its name (POSIX); elsewhere its reads fail with an I/O error, never with
//! wrong data. A WAL the writer is appending to ends in a torn tail, which replay
//! tolerates: the state loaded is a prefix of the writer's acknowledged writes.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use strata_core::{Error, FileSystem, Result, SequenceNumber, WritableFile};
use strata_memtable::MemTable;
use strata_wal::{LogWriter, SyncPolicy};

use crate::db::{Db, DbInner, Workers};
use crate::edit::VersionEdit;
use crate::filename::{self, CURRENT, FileKind, wal_path};
use crate::manifest::{self, ManifestWriter};
use crate::open::{Parts, Replay, ReplayInto};
use crate::options::Options;
use crate::tree::View;
use crate::version::Version;

/// Times loading starts over because the writer moved on, before giving up. Each
/// restart means the writer completed a flush, compaction or manifest roll-over while
/// this one load ran, so several in a row need a writer far faster than a load.
const MAX_LOAD_ATTEMPTS: usize = 16;

/// One consistent state of the database, as loaded from its files.
pub(crate) struct Loaded {
    /// `(id, name, view)` of every keyspace, the default one first.
    pub trees: Vec<(u32, String, View)>,
    pub next_keyspace_id: u32,
    /// The newest sequence number in it.
    pub last_seq: SequenceNumber,
}

/// Why one attempt to load failed: the writer moved on (try again), or a real error.
enum Attempt {
    Moved(String),
    /// Damage met replaying a WAL. The writer may have been appending into the WAL's
    /// preallocated zeros while it was read (records after zeros look like mid-log
    /// damage): damage is reported only if the next attempt finds it again.
    Damaged(Error),
    Failed(Error),
}

impl From<Error> for Attempt {
    fn from(e: Error) -> Self {
        // A file named by the state being loaded vanished: the writer replaced it.
        match &e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Attempt::Moved(e.to_string())
            }
            _ => Attempt::Failed(e),
        }
    }
}

/// Loads the newest consistent state of the database in `dir`, starting over while the
/// writer keeps replacing the files being read.
pub(crate) fn load(inner_parts: &LoadContext<'_>) -> Result<Loaded> {
    let mut last_reason = String::new();
    let mut last_damage: Option<String> = None;
    for _ in 0..MAX_LOAD_ATTEMPTS {
        match try_load(inner_parts) {
            Ok(loaded) => return Ok(loaded),
            Err(Attempt::Failed(e)) => return Err(e),
            Err(Attempt::Moved(reason)) => last_reason = reason,
            Err(Attempt::Damaged(e)) => {
                let reason = e.to_string();
                if last_damage.as_ref() == Some(&reason) {
                    return Err(e);
                }
                last_damage = Some(reason.clone());
                last_reason = reason;
            }
        }
    }
    Err(Error::io(
        format!(
            "loading {} read-only: the writer replaced the files being read {MAX_LOAD_ATTEMPTS} times in a row (last: {last_reason})",
            inner_parts.dir.display()
        ),
        std::io::Error::from(std::io::ErrorKind::Interrupted),
    ))
}

/// What loading needs from the handle.
pub(crate) struct LoadContext<'a> {
    pub fs: &'a Arc<dyn FileSystem>,
    pub wal_recovery: crate::options::WalRecovery,
    pub dir: &'a Path,
    pub make_file: &'a dyn Fn(&strata_compaction::FileMeta) -> Arc<crate::version::TableFile>,
}

fn try_load(cx: &LoadContext<'_>) -> Result<Loaded, Attempt> {
    let (fs, dir) = (&**cx.fs, cx.dir);
    if !fs.exists(&dir.join(CURRENT))? {
        return Err(Attempt::Failed(Error::InvalidArgument(format!(
            "{} holds no Strata database (no CURRENT file); a read-only open creates nothing",
            dir.display()
        ))));
    }
    // `CURRENT` as read before the manifest: if the manifest it names is gone by the
    // time it is opened (`recover` calls that `Corruption`, which it is for a writer),
    // a changed `CURRENT` says the writer rolled the manifest over meanwhile.
    let current = manifest::read_whole(fs, &dir.join(CURRENT))?;
    let recovered = manifest::recover(fs, dir).map_err(|e| {
        let moved = e.is_corruption()
            && manifest::read_whole(fs, &dir.join(CURRENT)).is_ok_and(|now| now != current);
        if moved {
            Attempt::Moved(e.to_string())
        } else {
            Attempt::from(e)
        }
    })?;
    let wals: BTreeSet<u64> = fs
        .list(dir)?
        .iter()
        .filter_map(|n| match filename::parse(n) {
            Some(FileKind::Wal(n)) => Some(n),
            _ => None,
        })
        .collect();
    // The live WAL the manifest names exists until an edit naming a newer one is
    // durable: if it is gone, the manifest read is already out of date.
    if !wals.contains(&recovered.log_number) {
        return Err(Attempt::Moved(format!(
            "WAL {} was flushed and removed",
            wal_path(dir, recovered.log_number).display()
        )));
    }
    let into = ReplayInto::new(&recovered);
    let mut replay = Replay::new(recovered.last_sequence, cx.wal_recovery);
    for &n in wals.range(recovered.log_number..) {
        replay
            .wal(fs, &wal_path(dir, n), &into)
            .map_err(|e| match e.is_corruption() {
                true => Attempt::Damaged(e),
                false => Attempt::from(e),
            })?;
    }
    let last_seq = recovered.last_sequence.max(replay.max_seq);
    let mut trees = Vec::with_capacity(recovered.keyspaces.len());
    for (id, k) in recovered.keyspaces {
        let edit = VersionEdit {
            new_files: k.files,
            ..VersionEdit::default()
        };
        let version = Version::default().apply(&edit, cx.make_file);
        // Open every table now and hold it: a table the writer compacts away later
        // stays readable through the descriptor (POSIX), and one already gone means the
        // state is out of date.
        for file in version.levels.iter().flatten() {
            file.pin()?;
        }
        let mem = into
            .memtable(id)
            .cloned()
            .unwrap_or_else(|| Arc::new(MemTable::new()));
        mem.freeze();
        let view = View {
            mem,
            mem_wal: recovered.log_number,
            frozen: Vec::new(),
            version: Arc::new(version),
            // Set from the keyspace's options by `Tree::new`.
            merge: None,
        };
        trees.push((id, k.name, view));
    }
    Ok(Loaded {
        trees,
        next_keyspace_id: recovered.next_keyspace_id,
        last_seq,
    })
}

/// Opens a read-only handle: no lock, no background thread, nothing written.
pub(crate) fn open(opts: Options) -> Result<Db> {
    let tables = crate::open::table_cache(&opts);
    let (inner, _, _) = crate::open::assemble(Parts {
        opts,
        tables,
        lock: None,
        trees: Vec::new(),
        next_keyspace_id: 1,
        last_seq: 0,
        wal: LogWriter::new(Box::new(NoWrites), SyncPolicy::Never),
        wal_number: 0,
        manifest: ManifestWriter::refusing(),
        next_file: 0,
    });
    refresh(&inner)?;
    Ok(Db::from_parts(
        inner,
        Workers {
            flush_threads: Vec::new(),
            compaction_threads: Vec::new(),
        },
    ))
}

/// Loads the newest state of a read-only handle's database and swaps it in.
pub(crate) fn refresh(inner: &Arc<DbInner>) -> Result<()> {
    inner.check_open()?;
    if !inner.opts.read_only {
        return Err(Error::NotSupported(
            "refresh() is for read-only handles; a writable handle always reads its newest state"
                .into(),
        ));
    }
    // One refresh at a time, load and install together: two overlapping ones could
    // otherwise install the older state last, and reads would go back in time. (A
    // read-only handle never writes, so the write path's lock is free for this.)
    let _one_at_a_time = crate::db::lock(&inner.write);
    let make_file = |meta: &strata_compaction::FileMeta| inner.table_file(meta);
    let loaded = load(&LoadContext {
        fs: &inner.fs,
        wal_recovery: inner.opts.wal_recovery,
        dir: &inner.dir,
        make_file: &make_file,
    })?;
    // Sequence number first, then the view. A read-only view is immutable and holds
    // nothing newer than its own last sequence number, so a reader that pins the old
    // view and then reads the new number still sees exactly the old state; a reader
    // that pins the new view (readers pin the view first) reads the new number, as the
    // view's lock orders it after this store. The other order could pair the new view
    // with the old number, where versions the writer has since compacted away are
    // missing.
    inner
        .visible_seq
        .fetch_max(loaded.last_seq, Ordering::AcqRel);
    let mut keyspaces = inner.keyspaces.write().unwrap_or_else(|p| p.into_inner());
    let live: BTreeSet<u32> = loaded.trees.iter().map(|(id, _, _)| *id).collect();
    // Keyspaces the writer dropped meanwhile: their handles refuse from now on.
    keyspaces.trees.retain(|id, tree| {
        let keep = live.contains(id);
        if !keep {
            tree.dropped.store(true, Ordering::Release);
        }
        keep
    });
    for (id, name, view) in loaded.trees {
        match keyspaces.trees.get(&id) {
            Some(tree) => tree.update_view(|_| view),
            None => {
                let opts = inner.opts.for_keyspace(&name);
                let tree = crate::tree::Tree::new(id, name, view, opts);
                keyspaces.trees.insert(id, Arc::new(tree));
            }
        }
    }
    keyspaces.next_id = loaded.next_keyspace_id;
    Ok(())
}

/// The write end of a read-only handle's (never used) WAL and manifest writers: every
/// write is refused. Entry points refuse first with a clearer message; this is the
/// backstop that makes a missed check an error instead of a write.
#[derive(Debug)]
pub(crate) struct NoWrites;

impl WritableFile for NoWrites {
    fn append(&mut self, _data: &[u8]) -> Result<()> {
        Err(read_only_error())
    }

    fn sync(&mut self) -> Result<()> {
        Ok(())
    }

    fn len(&self) -> u64 {
        0
    }
}

/// The error every write, flush, compaction or sync on a read-only handle returns.
pub(crate) fn read_only_error() -> Error {
    Error::NotSupported("the database is open read-only".into())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use strata_core::{FileSystem, MemFs, RandomAccessFile, Result};

    use crate::Db;
    use crate::filename::CURRENT;
    use crate::slow_fs::OpenHookFs;

    const DIR: &str = "/db";

    /// `fs` whose first `stale_reads` opens of `CURRENT` return `stale` instead: what a
    /// reader sees when it reads `CURRENT` just before the writer rolls the manifest over
    /// (new manifest, `CURRENT` switched, old manifest removed).
    fn stale_current(fs: MemFs, stale: Vec<u8>, stale_reads: usize) -> OpenHookFs {
        let left = AtomicUsize::new(stale_reads);
        OpenHookFs {
            inner: fs,
            hook: Box::new(move |path| {
                let take = path == Path::new(DIR).join(CURRENT)
                    && left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                take.then(|| {
                    let other = MemFs::new();
                    other.write_file(Path::new("/stale"), stale.clone());
                    other.open(Path::new("/stale"))
                })
            }),
        }
    }

    /// A database whose manifest was rolled over once, and the `CURRENT` it had before.
    fn rolled_over() -> (MemFs, Vec<u8>) {
        let fs = MemFs::new();
        let open = || {
            Db::builder(PathBuf::from(DIR))
                .file_system(Arc::new(fs.clone()))
                .open()
                .unwrap()
        };
        let db = open();
        db.put("k", "v").unwrap();
        db.close().unwrap();
        let stale = fs.read_file(&Path::new(DIR).join(CURRENT)).unwrap();
        // Reopening writes a new manifest, switches CURRENT and removes the old one.
        let db = open();
        db.put("k2", "v2").unwrap();
        db.close().unwrap();
        assert_ne!(fs.read_file(&Path::new(DIR).join(CURRENT)).unwrap(), stale);
        (fs, stale)
    }

    fn read_only(fs: OpenHookFs) -> crate::Result<Db> {
        Db::builder(PathBuf::from(DIR))
            .file_system(Arc::new(fs))
            .read_only()
            .open()
    }

    /// Found in review: `CURRENT` read, then the writer rolls the manifest over and
    /// removes the one read, was reported as `Corruption` ("CURRENT names ..., which
    /// does not exist") instead of starting over like every other file the writer
    /// replaces under a loading reader.
    #[test]
    fn a_manifest_rolled_over_between_reading_current_and_opening_it_starts_over() {
        let (fs, stale) = rolled_over();
        let db = read_only(stale_current(fs, stale, 2)).unwrap();
        assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(db.get("k2").unwrap().as_deref(), Some(&b"v2"[..]));
    }

    /// A WAL file whose zeros fill with records after its first read: the writer's
    /// appends into its preallocated space, racing a reader's scan.
    #[derive(Debug)]
    struct FillingWal {
        reads: AtomicUsize,
        first: Vec<u8>,
        after: Vec<u8>,
        path: PathBuf,
    }

    impl RandomAccessFile for FillingWal {
        fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
            let data = match self.reads.fetch_add(1, Ordering::SeqCst) {
                0 => &self.first,
                _ => &self.after,
            };
            let range = offset as usize..offset as usize + buf.len();
            buf.copy_from_slice(&data[range]);
            Ok(())
        }
        fn len(&self) -> u64 {
            self.after.len() as u64
        }
        fn path(&self) -> &Path {
            &self.path
        }
    }

    /// Found in review: a reader scanning the live WAL of a writer that syncs (so keeps
    /// zeros preallocated ahead of its end) met the zeros after the last record, then,
    /// reading on past its first 1 MiB chunk, the records the writer appended there
    /// meanwhile, and called the zeros mid-log corruption: a read-only open or refresh
    /// beside a busy writer failed with `Corruption`. A load now starts over once when
    /// the WAL replay meets damage, and reports it only if it is found again.
    #[test]
    fn records_appended_into_preallocated_zeros_during_a_load_are_not_corruption() {
        let fs = MemFs::new();
        let db = Db::builder(PathBuf::from(DIR))
            .file_system(Arc::new(fs.clone()))
            .open()
            .unwrap();
        let wal = fs
            .list(Path::new(DIR))
            .unwrap()
            .into_iter()
            .find(|n| n.ends_with(".log"))
            .map(|n| Path::new(DIR).join(n))
            .unwrap();
        let mut i = 0;
        while fs.read_file(&wal).unwrap().len() < (1 << 20) - 3000 {
            db.put(format!("k{i:06}"), [7u8; 1000]).unwrap();
            i += 1;
        }
        let mut first = fs.read_file(&wal).unwrap();
        for j in 0..10 {
            db.put(format!("late{j}"), [8u8; 1000]).unwrap();
        }
        let mut after = fs.read_file(&wal).unwrap();
        let preallocated = 2 << 20;
        first.resize(preallocated, 0);
        after.resize(preallocated, 0);
        let contents = Mutex::new(Some((first, after)));
        let reader = Db::builder(PathBuf::from(DIR))
            .file_system(Arc::new(OpenHookFs {
                inner: fs.clone(),
                // The first open of the WAL returns one whose zeros fill after a read.
                hook: Box::new(move |path| {
                    if path != wal {
                        return None;
                    }
                    let (first, after) = contents.lock().ok()?.take()?;
                    Some(Ok(Arc::new(FillingWal {
                        reads: AtomicUsize::new(0),
                        first,
                        after,
                        path: path.to_path_buf(),
                    }) as Arc<dyn RandomAccessFile>))
                }),
            }))
            .read_only()
            .open()
            .unwrap();
        assert!(reader.get(format!("k{:06}", i - 1)).unwrap().is_some());
        drop(db);
    }

    /// A `CURRENT` that names a missing manifest for good is still damage.
    #[test]
    fn a_current_naming_a_missing_manifest_for_good_is_still_corruption() {
        let (fs, stale) = rolled_over();
        fs.write_file(&Path::new(DIR).join(CURRENT), stale);
        let e = read_only(stale_current(fs, Vec::new(), 0)).unwrap_err();
        assert!(e.is_corruption(), "{e}");
    }
}
