//! [`FaultFs`]: the file system the crash tests run the engine on.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use strata_core::{Error, FileLock, FileSystem, RandomAccessFile, Result, WritableFile};

use crate::crash::CrashOptions;
use crate::fault::{ArmedFault, Fault, OpInfo, OpKind, OpRecord};
use crate::machine::{Entry, Inode, Machine, Rec};

/// An in-memory [`FileSystem`] that knows what a crash would keep, fails chosen
/// operations, flips bits on read, and records every change so a test can crash after
/// any one of them.
///
/// Clones share one tree. Semantics follow POSIX where an engine depends on them:
/// - [`WritableFile::append`] hands bytes to the "OS": they survive a process crash,
///   not a power loss; [`WritableFile::sync`] makes them durable;
/// - creating, renaming and removing a file (and creating a directory) changes the
///   directory at once for the running process, durably only after
///   [`FileSystem::sync_dir`] of its parent;
/// - [`link`](FileSystem::link) adds a name for an existing file (inode): both names
///   share its bytes; the new name is durable after `sync_dir` of its parent;
/// - `create` always makes a new file (inode): on an existing name it is as if the old
///   file were unlinked first, so an open reader keeps the old bytes;
/// - an open reader sees the file's length as of `open`.
///
/// [`crash`](Self::crash) and [`crash_at`](Self::crash_at) return a *new* file system
/// holding what survives (everything in it durable, no lock held), as after a reboot.
#[derive(Clone, Debug, Default)]
pub struct FaultFs {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// Bytes of every inode ever created; an inode only grows.
    data: Vec<Vec<u8>>,
    /// The state the journal starts from.
    base: Machine,
    /// Every change since `base`, in order.
    journal: Vec<(Rec, OpRecord)>,
    /// The state now (= `base` + the whole journal).
    now: Machine,
    faults: Vec<ArmedFault>,
    /// Operations seen per kind (index `OpKind::slot`), for `OpInfo::nth`.
    counts: [u64; OpKind::ALL.len()],
    /// `(path, byte offset, bit)`: reads covering the byte see that bit flipped.
    flips: Vec<(PathBuf, u64, u8)>,
    locks: BTreeSet<PathBuf>,
    /// After a crash of this handle's process: every operation fails.
    halted: bool,
}

/// Lexically normalises a path so `a/./b` and `a/b` name one file.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn io_error(kind: io::ErrorKind, context: String, msg: &str) -> Error {
    Error::io(context, io::Error::new(kind, msg.to_owned()))
}

fn not_found(what: &str, path: &Path) -> Error {
    io_error(
        io::ErrorKind::NotFound,
        format!("{what} {}", path.display()),
        "no such file or directory",
    )
}

fn is_root(p: &Path) -> bool {
    p.as_os_str().is_empty() || p.parent().is_none()
}

impl State {
    /// Counts `op`, and fails it if the machine is halted or a fault fires.
    fn admit(&mut self, kind: OpKind, path: &Path, to: Option<&Path>, len: usize) -> Result<()> {
        let slot = kind.slot();
        self.counts[slot] += 1;
        if self.halted {
            return Err(io_error(
                io::ErrorKind::Other,
                format!("{kind:?} {}", path.display()),
                "the simulated machine has crashed",
            ));
        }
        let info = OpInfo {
            kind,
            path: path.to_path_buf(),
            to: to.map(Path::to_path_buf),
            len,
            nth: self.counts[slot],
        };
        // Every rule sees every operation, so `Nth` counts stay exact even when an
        // earlier rule fires.
        // The first rule that fires decides the error.
        let mut fired = None;
        for f in &mut self.faults {
            if f.fires(&info) {
                fired = fired.or(Some(f.error));
            }
        }
        if let Some(error) = fired {
            let msg = match error {
                io::ErrorKind::Other => "injected fault".to_owned(),
                other => format!("injected fault: {other}"),
            };
            return Err(io_error(
                error,
                format!("{kind:?} {}", path.display()),
                &msg,
            ));
        }
        Ok(())
    }

    fn record(&mut self, rec: Rec, kind: OpKind, path: &Path, to: Option<&Path>, len: usize) {
        self.now.apply(&rec);
        self.journal.push((
            rec,
            OpRecord {
                kind,
                path: path.to_path_buf(),
                to: to.map(Path::to_path_buf),
                len,
            },
        ));
    }

    fn dir_exists(&self, dir: &Path) -> bool {
        is_root(dir) || self.now.live.get(dir) == Some(&Entry::Dir)
    }

    fn check_parent(&self, path: &Path, what: &str) -> Result<()> {
        if self.dir_exists(path.parent().unwrap_or(Path::new(""))) {
            Ok(())
        } else {
            Err(not_found(
                &format!("{what} (missing parent directory)"),
                path,
            ))
        }
    }

    fn file(&self, path: &Path) -> Option<Inode> {
        match self.now.live.get(path) {
            Some(Entry::File(i)) => Some(*i),
            _ => None,
        }
    }

    fn create_inode(&mut self, path: &Path) -> Inode {
        let inode = self.data.len();
        self.data.push(Vec::new());
        self.record(
            Rec::Create {
                path: path.to_path_buf(),
                inode,
            },
            OpKind::Create,
            path,
            None,
            0,
        );
        inode
    }

    /// A new file system holding what `machine` keeps through a crash.
    fn crashed(&self, machine: &Machine, opts: &CrashOptions) -> FaultFs {
        let (names, kept) = machine.crash(opts);
        let mut renumber = BTreeMap::new();
        let mut data = Vec::with_capacity(kept.len());
        for (old, len) in kept {
            renumber.insert(old, data.len());
            data.push(self.data[old][..len].to_vec());
        }
        let names = names
            .into_iter()
            .map(|(p, e)| {
                let e = match e {
                    Entry::File(i) => Entry::File(renumber[&i]),
                    Entry::Dir => Entry::Dir,
                };
                (p, e)
            })
            .collect();
        let base = Machine::settled(data.iter().map(Vec::len).collect(), names);
        FaultFs {
            state: Arc::new(Mutex::new(State {
                data,
                now: base.clone(),
                base,
                ..State::default()
            })),
        }
    }
}

impl FaultFs {
    /// An empty file system (the root directory exists).
    pub fn new() -> Self {
        Self::default()
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // Every mutation leaves the state consistent before anything can panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Installs a fault; it applies to operations from now on, which fail with an
    /// I/O error of kind [`Other`](io::ErrorKind::Other).
    pub fn inject(&self, fault: Fault) {
        self.inject_error(fault, io::ErrorKind::Other);
    }

    /// Installs a fault whose operations fail with an I/O error of kind `error`: e.g.
    /// [`StorageFull`](io::ErrorKind::StorageFull) for a full device (`ENOSPC`).
    pub fn inject_error(&self, fault: Fault, error: io::ErrorKind) {
        self.lock_state().faults.push(ArmedFault {
            fault,
            error,
            seen: 0,
            spent: false,
        });
    }

    /// Removes every installed fault and read bit flip.
    pub fn clear_faults(&self) {
        let mut s = self.lock_state();
        s.faults.clear();
        s.flips.clear();
    }

    /// Every read of `path` covering byte `offset` sees bit `bit` (0..8) of it flipped,
    /// as from a bad sector, until [`clear_faults`](Self::clear_faults).
    pub fn flip_bit_on_read(&self, path: impl AsRef<Path>, offset: u64, bit: u8) {
        self.lock_state()
            .flips
            .push((normalize(path.as_ref()), offset, bit % 8));
    }

    /// How many operations of `kind` ran (or were attempted) so far.
    pub fn count(&self, kind: OpKind) -> u64 {
        self.lock_state().counts[kind.slot()]
    }

    /// Number of recorded changes so far: [`crash_at`](Self::crash_at) accepts
    /// `0..=op_count()`.
    pub fn op_count(&self) -> usize {
        self.lock_state().journal.len()
    }

    /// The recorded changes, oldest first.
    pub fn ops(&self) -> Vec<OpRecord> {
        self.lock_state()
            .journal
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Bytes handed to the OS but not yet synced, over every file.
    pub fn unsynced_bytes(&self) -> usize {
        self.lock_state().now.unsynced_bytes()
    }

    /// Directory changes not yet made durable by a directory sync.
    pub fn unsynced_dir_ops(&self) -> usize {
        self.lock_state().now.pending_dir_ops()
    }

    /// Crashes the machine now: returns the file system as it is after a reboot, and
    /// makes every later operation on this one (and its clones, and files open on it)
    /// fail, as the dead process's would.
    pub fn crash(&self, opts: &CrashOptions) -> FaultFs {
        let mut s = self.lock_state();
        s.halted = true;
        s.crashed(&s.now, opts)
    }

    /// The file system as it would be after a crash right after the first `k`
    /// recorded changes (`k` is clamped to [`op_count`](Self::op_count)). This file
    /// system goes on unaffected.
    pub fn crash_at(&self, k: usize, opts: &CrashOptions) -> FaultFs {
        let s = self.lock_state();
        let mut m = s.base.clone();
        for (rec, _) in s.journal.iter().take(k) {
            m.apply(rec);
        }
        s.crashed(&m, opts)
    }

    /// Makes every later operation fail, as if the process had died.
    pub fn halt(&self) {
        self.lock_state().halted = true;
    }

    /// A copy of a file's current contents (everything handed to the OS), if it exists.
    pub fn read_file(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let s = self.lock_state();
        let inode = s.file(&normalize(path.as_ref()))?;
        Some(s.data[inode][..s.now.lens[inode]].to_vec())
    }

    /// Replaces (or creates) a file's contents directly, as damage from outside would.
    /// The whole current state becomes durable and the new starting point: earlier
    /// crash points are forgotten ([`op_count`](Self::op_count) restarts at 0).
    pub fn write_file(&self, path: impl AsRef<Path>, contents: Vec<u8>) {
        let path = normalize(path.as_ref());
        let mut s = self.lock_state();
        let inode = s.data.len();
        s.data.push(contents);
        let mut lens = s.now.lens.clone();
        lens.push(s.data[inode].len());
        let mut names = s.now.live.clone();
        names.insert(path, Entry::File(inode));
        s.base = Machine::settled(lens, names);
        s.now = s.base.clone();
        s.journal.clear();
    }
}

impl FileSystem for FaultFs {
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let path = normalize(path);
        let mut s = self.lock_state();
        s.admit(OpKind::Create, &path, None, 0)?;
        s.check_parent(&path, "creating")?;
        if s.now.live.get(&path) == Some(&Entry::Dir) {
            return Err(io_error(
                io::ErrorKind::IsADirectory,
                format!("creating {}", path.display()),
                "is a directory",
            ));
        }
        let inode = s.create_inode(&path);
        Ok(Box::new(FaultWritableFile {
            fs: self.clone(),
            inode,
            path,
        }))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        let path = normalize(path);
        let mut s = self.lock_state();
        s.admit(OpKind::Open, &path, None, 0)?;
        let inode = s.file(&path).ok_or_else(|| not_found("opening", &path))?;
        let len = s.now.lens[inode] as u64;
        Ok(Arc::new(FaultRandomAccessFile {
            fs: self.clone(),
            inode,
            path,
            len,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let (from, to) = (normalize(from), normalize(to));
        let mut s = self.lock_state();
        s.admit(OpKind::Rename, &from, Some(&to), 0)?;
        s.check_parent(&to, "renaming")?;
        if s.file(&from).is_none() {
            return Err(not_found("renaming", &from));
        }
        s.record(
            Rec::Rename {
                from: from.clone(),
                to: to.clone(),
            },
            OpKind::Rename,
            &from,
            Some(&to),
            0,
        );
        Ok(())
    }

    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        let (from, to) = (normalize(from), normalize(to));
        let mut s = self.lock_state();
        s.admit(OpKind::Link, &from, Some(&to), 0)?;
        s.check_parent(&to, "linking")?;
        let inode = s.file(&from).ok_or_else(|| not_found("linking", &from))?;
        if s.now.live.contains_key(&to) || is_root(&to) {
            return Err(io_error(
                io::ErrorKind::AlreadyExists,
                format!("linking {} to {}", to.display(), from.display()),
                "the new name exists",
            ));
        }
        // A new directory entry for the same inode: the bytes are shared (and as
        // durable as the inode's last sync), the name is durable after `sync_dir` of
        // its parent, like a creation.
        s.record(
            Rec::Link {
                path: to.clone(),
                inode,
            },
            OpKind::Link,
            &from,
            Some(&to),
            0,
        );
        Ok(())
    }

    fn remove(&self, path: &Path) -> Result<()> {
        let path = normalize(path);
        let mut s = self.lock_state();
        s.admit(OpKind::Remove, &path, None, 0)?;
        if s.file(&path).is_none() {
            return Err(not_found("removing", &path));
        }
        s.record(
            Rec::Remove { path: path.clone() },
            OpKind::Remove,
            &path,
            None,
            0,
        );
        Ok(())
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        let dir = normalize(dir);
        let s = self.lock_state();
        if s.halted {
            return Err(io_error(
                io::ErrorKind::Other,
                format!("listing {}", dir.display()),
                "the simulated machine has crashed",
            ));
        }
        if !s.dir_exists(&dir) {
            return Err(not_found("listing", &dir));
        }
        Ok(s.now
            .live
            .keys()
            .filter(|p| p.parent() == Some(dir.as_path()))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        let path = normalize(path);
        let s = self.lock_state();
        Ok(s.now.live.contains_key(&path) || is_root(&path))
    }

    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        let dir = normalize(dir);
        let mut s = self.lock_state();
        let mut missing = Vec::new();
        for a in dir.ancestors() {
            if is_root(a) {
                break;
            }
            match s.now.live.get(a) {
                Some(Entry::Dir) => break,
                Some(Entry::File(_)) => {
                    return Err(io_error(
                        io::ErrorKind::AlreadyExists,
                        format!("creating directory {}", dir.display()),
                        "a file is in the way",
                    ));
                }
                None => missing.push(a.to_path_buf()),
            }
        }
        for d in missing.into_iter().rev() {
            s.admit(OpKind::CreateDir, &d, None, 0)?;
            s.record(
                Rec::Mkdir { dir: d.clone() },
                OpKind::CreateDir,
                &d,
                None,
                0,
            );
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        let dir = normalize(dir);
        let mut s = self.lock_state();
        s.admit(OpKind::SyncDir, &dir, None, 0)?;
        if !s.dir_exists(&dir) {
            return Err(not_found("syncing directory", &dir));
        }
        s.record(
            Rec::SyncDir { dir: dir.clone() },
            OpKind::SyncDir,
            &dir,
            None,
            0,
        );
        Ok(())
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        let path = normalize(path);
        let mut s = self.lock_state();
        s.check_parent(&path, "locking")?;
        if s.halted {
            return Err(io_error(
                io::ErrorKind::Other,
                format!("locking {}", path.display()),
                "the simulated machine has crashed",
            ));
        }
        if s.locks.contains(&path) {
            return Err(Error::Locked { path });
        }
        if s.file(&path).is_none() {
            s.admit(OpKind::Create, &path, None, 0)?;
            s.create_inode(&path);
        }
        s.locks.insert(path.clone());
        Ok(Box::new(FaultFileLock {
            fs: self.clone(),
            path,
        }))
    }
}

#[derive(Debug)]
struct FaultWritableFile {
    fs: FaultFs,
    inode: Inode,
    path: PathBuf,
}

impl WritableFile for FaultWritableFile {
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        let mut s = self.fs.lock_state();
        s.admit(OpKind::Write, &self.path, None, bytes.len())?;
        s.data[self.inode].extend_from_slice(bytes);
        let len = s.data[self.inode].len();
        let path = self.path.clone();
        s.record(
            Rec::Append {
                inode: self.inode,
                len,
            },
            OpKind::Write,
            &path,
            None,
            bytes.len(),
        );
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        let mut s = self.fs.lock_state();
        s.admit(OpKind::Sync, &self.path, None, 0)?;
        let path = self.path.clone();
        s.record(
            Rec::Sync { inode: self.inode },
            OpKind::Sync,
            &path,
            None,
            0,
        );
        Ok(())
    }

    fn len(&self) -> u64 {
        let s = self.fs.lock_state();
        s.now.lens[self.inode] as u64
    }
}

#[derive(Debug)]
struct FaultRandomAccessFile {
    fs: FaultFs,
    inode: Inode,
    path: PathBuf,
    len: u64,
}

impl RandomAccessFile for FaultRandomAccessFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut s = self.fs.lock_state();
        s.admit(OpKind::Read, &self.path, None, buf.len())?;
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|e| *e <= self.len);
        let src = end
            .and_then(|_| {
                let start = usize::try_from(offset).ok()?;
                s.data[self.inode].get(start..start + buf.len())
            })
            .ok_or_else(|| {
                io_error(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "reading {} bytes at offset {offset} of {}",
                        buf.len(),
                        self.path.display()
                    ),
                    &format!("file is only {} bytes long", self.len),
                )
            })?;
        buf.copy_from_slice(src);
        for (path, at, bit) in &s.flips {
            if *path == self.path
                && (offset..offset + buf.len() as u64).contains(at)
                && let Some(b) = buf.get_mut((at - offset) as usize)
            {
                *b ^= 1 << bit;
            }
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Debug)]
struct FaultFileLock {
    fs: FaultFs,
    path: PathBuf,
}

impl FileLock for FaultFileLock {
    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FaultFileLock {
    fn drop(&mut self) {
        self.fs.lock_state().locks.remove(&self.path);
    }
}

#[cfg(test)]
mod tests;
