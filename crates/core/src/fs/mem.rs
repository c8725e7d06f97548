//! [`FileSystem`] held in memory, for tests and tools.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::{FileLock, FileSystem, RandomAccessFile, WritableFile, eof_error};
use crate::{Error, Result};

type FileData = Arc<RwLock<Vec<u8>>>;

/// An in-memory file system. Clones share the same tree, so a test can keep one handle
/// while the code under test uses another.
///
/// It behaves like a POSIX file system where that matters to an engine: creating a file
/// needs its parent directory, an open reader keeps seeing a file after it is removed or
/// renamed over, and locks are exclusive. Everything is durable at once (syncs are
/// no-ops); crash behaviour is simulated by the fault-injecting file system instead.
#[derive(Clone, Debug, Default)]
pub struct MemFs {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<PathBuf, FileData>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
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

fn not_found(what: &str, path: &Path) -> Error {
    Error::io(
        format!("{what} {}", path.display()),
        io::Error::new(io::ErrorKind::NotFound, "no such file or directory"),
    )
}

impl MemFs {
    /// An empty file system (the root directory exists).
    pub fn new() -> Self {
        Self::default()
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock can only come from a bug in this file; the
        // state it guards is still consistent (every mutation is a single map operation).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of a file's current contents, if it exists (a test helper: damage a file
    /// by reading, changing and [`write_file`](Self::write_file)-ing it back).
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.lock_state();
        let data = state.files.get(&normalize(path))?;
        let bytes = data.read().unwrap_or_else(|p| p.into_inner()).clone();
        Some(bytes)
    }

    /// Replaces (or creates) a file's contents directly, as damage from outside would.
    pub fn write_file(&self, path: &Path, contents: Vec<u8>) {
        let mut state = self.lock_state();
        state
            .files
            .insert(normalize(path), Arc::new(RwLock::new(contents)));
    }
}

impl State {
    fn dir_exists(&self, dir: &Path) -> bool {
        dir.as_os_str().is_empty() || dir.parent().is_none() || self.dirs.contains(dir)
    }

    fn check_parent(&self, path: &Path) -> Result<()> {
        let parent = path.parent().unwrap_or(Path::new(""));
        if self.dir_exists(parent) {
            Ok(())
        } else {
            Err(not_found("creating (missing parent directory)", path))
        }
    }
}

impl FileSystem for MemFs {
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let path = normalize(path);
        let mut state = self.lock_state();
        state.check_parent(&path)?;
        let data: FileData = Arc::default();
        state.files.insert(path.clone(), Arc::clone(&data));
        Ok(Box::new(MemWritableFile { data }))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        let path = normalize(path);
        let state = self.lock_state();
        let data = state
            .files
            .get(&path)
            .ok_or_else(|| not_found("opening", &path))?;
        let len = data.read().unwrap_or_else(|p| p.into_inner()).len() as u64;
        Ok(Arc::new(MemRandomAccessFile {
            data: Arc::clone(data),
            path,
            len,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let (from, to) = (normalize(from), normalize(to));
        let mut state = self.lock_state();
        state.check_parent(&to)?;
        let data = state
            .files
            .remove(&from)
            .ok_or_else(|| not_found("renaming", &from))?;
        state.files.insert(to, data);
        Ok(())
    }

    fn remove(&self, path: &Path) -> Result<()> {
        let path = normalize(path);
        let mut state = self.lock_state();
        state
            .files
            .remove(&path)
            .map(|_| ())
            .ok_or_else(|| not_found("removing", &path))
    }

    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        let (from, to) = (normalize(from), normalize(to));
        let mut state = self.lock_state();
        state.check_parent(&to)?;
        if state.files.contains_key(&to) || state.dirs.contains(&to) {
            return Err(Error::io(
                format!("linking {} to {}", to.display(), from.display()),
                io::Error::new(io::ErrorKind::AlreadyExists, "the new name exists"),
            ));
        }
        let data = state
            .files
            .get(&from)
            .map(Arc::clone)
            .ok_or_else(|| not_found("linking", &from))?;
        // The same shared buffer under two names, as two directory entries share an inode.
        state.files.insert(to, data);
        Ok(())
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        let dir = normalize(dir);
        let state = self.lock_state();
        if !state.dir_exists(&dir) {
            return Err(not_found("listing", &dir));
        }
        let children = state
            .files
            .keys()
            .chain(state.dirs.iter())
            .filter(|p| p.parent() == Some(dir.as_path()))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        Ok(children)
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        let path = normalize(path);
        let state = self.lock_state();
        Ok(state.files.contains_key(&path) || state.dir_exists(&path))
    }

    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        let dir = normalize(dir);
        let mut state = self.lock_state();
        for ancestor in dir.ancestors() {
            if state.files.contains_key(ancestor) {
                return Err(Error::io(
                    format!("creating directory {}", dir.display()),
                    io::Error::new(io::ErrorKind::AlreadyExists, "a file is in the way"),
                ));
            }
            if !ancestor.as_os_str().is_empty() && ancestor.parent().is_some() {
                state.dirs.insert(ancestor.to_path_buf());
            }
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        let dir = normalize(dir);
        if self.lock_state().dir_exists(&dir) {
            Ok(())
        } else {
            Err(not_found("syncing directory", &dir))
        }
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        let path = normalize(path);
        let mut state = self.lock_state();
        state.check_parent(&path)?;
        if !state.locks.insert(path.clone()) {
            return Err(Error::Locked { path });
        }
        state.files.entry(path.clone()).or_default();
        Ok(Box::new(MemFileLock {
            fs: self.clone(),
            path,
        }))
    }
}

#[derive(Debug)]
struct MemWritableFile {
    data: FileData,
}

impl WritableFile for MemWritableFile {
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.data
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        Ok(())
    }

    fn len(&self) -> u64 {
        self.data.read().unwrap_or_else(|p| p.into_inner()).len() as u64
    }
}

#[derive(Debug)]
struct MemRandomAccessFile {
    data: FileData,
    path: PathBuf,
    len: u64,
}

impl RandomAccessFile for MemRandomAccessFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let data = self.data.read().unwrap_or_else(|p| p.into_inner());
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| data.get(start..start.checked_add(buf.len())?))
            .filter(|_| offset + buf.len() as u64 <= self.len)
            .ok_or_else(|| eof_error(&self.path, offset, buf.len(), self.len))?;
        buf.copy_from_slice(src);
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
struct MemFileLock {
    fs: MemFs,
    path: PathBuf,
}

impl FileLock for MemFileLock {
    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for MemFileLock {
    fn drop(&mut self) {
        self.fs.lock_state().locks.remove(&self.path);
    }
}
