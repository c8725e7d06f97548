//! The file-system seam.
//!
//! All of Strata's I/O goes through [`FileSystem`], so the same WAL, table and manifest
//! code runs on the real disk ([`StdFs`]), in memory ([`MemFs`]) and, in the crash tests,
//! on a file system that drops unsynced bytes or fails chosen operations.
//!
//! Contracts every implementation keeps:
//! - [`WritableFile::append`] hands the bytes to the operating system before returning
//!   (no user-space buffering), so an acknowledged append survives a process crash;
//! - [`WritableFile::sync`] returns only once the bytes are durable (fdatasync on
//!   Linux, `F_FULLFSYNC` on macOS, `FlushFileBuffers` on Windows);
//! - a created, renamed or removed file's *directory entry* is durable only after
//!   [`FileSystem::sync_dir`] on its parent (on Windows, which cannot sync a directory,
//!   only once NTFS commits its journal: see `docs/durability.md`, "Per platform");
//! - [`RandomAccessFile`] reads are positional and may run from many threads at once.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::{Error, Result};

#[cfg(all(unix, target_pointer_width = "64"))]
mod mapped;
mod mem;
mod platform;
mod std_fs;

pub use mem::MemFs;
pub use std_fs::StdFs;

/// A directory tree of files: the operations a storage engine needs, no more.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Creates `path` for writing, truncating an existing file.
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>>;

    /// Opens an existing file for positional reads.
    fn open(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>>;

    /// Opens an existing file that nobody writes any more (a table) for many small
    /// positional reads, memory-mapped where the file system can do so safely. The
    /// reads behave as [`open`](Self::open)'s — bounds-checked copies into the
    /// caller's buffer — and a file shortened by someone else under the mapping gives
    /// [`Error::Corruption`], never a crash. The default is `open`: file systems
    /// without mappings (or, like [`MemFs`], without a cost to save) need nothing more.
    fn open_mapped(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        self.open(path)
    }

    /// Renames `from` to `to`, replacing `to` if it exists. Durable after
    /// [`sync_dir`](Self::sync_dir) of the parent.
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;

    /// Removes a file.
    fn remove(&self, path: &Path) -> Result<()>;

    /// Makes `to` a second name (a hard link) of the existing file `from`; `to` must not
    /// exist. Both names then reach the same bytes. Durable after
    /// [`sync_dir`](Self::sync_dir) of `to`'s parent, like a creation.
    ///
    /// Fails with an I/O error of kind [`CrossesDevices`](std::io::ErrorKind::CrossesDevices)
    /// when the two paths are on different file systems, and of kind
    /// [`Unsupported`](std::io::ErrorKind::Unsupported) where the file system has no
    /// hard links — the default, so that file systems written before this method keep
    /// compiling. Callers that only need the bytes at `to` copy the file then (see
    /// [`is_link_unavailable`]).
    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        Err(Error::io(
            format!("linking {} to {}", to.display(), from.display()),
            std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this file system has no hard links",
            ),
        ))
    }

    /// Names (not paths) of the entries directly inside `dir`, in no particular order.
    fn list(&self, dir: &Path) -> Result<Vec<String>>;

    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> Result<bool>;

    /// Creates `dir` and any missing parents.
    fn create_dir_all(&self, dir: &Path) -> Result<()>;

    /// Makes the entries of `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> Result<()>;

    /// Takes an exclusive lock on `path` (creating the file if needed), held until the
    /// returned guard drops. A path already locked — by another process or by another
    /// handle in this one — gives [`Error::Locked`].
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>>;
}

/// A file being written from start to end.
pub trait WritableFile: Send + fmt::Debug {
    /// Appends `data`, handing it to the operating system before returning.
    fn append(&mut self, data: &[u8]) -> Result<()>;

    /// Makes everything appended so far durable.
    fn sync(&mut self) -> Result<()>;

    /// Bytes appended so far (the file's length).
    fn len(&self) -> u64;

    /// Writes zeros over the `bytes` that follow what was appended so far (where not
    /// done already) and makes them durable; `len` does not change. Later appends
    /// overwrite blocks that are allocated and written, so a `sync` after them has no
    /// file-size or extent change to commit: on ext4 an fdatasync of such a file skips
    /// the journal commit an appending one waits for. Readers see the zeros after the
    /// appended data. Appends stop using the mapping [`zero_ahead`](Self::zero_ahead)
    /// may have made, until the next `zero_ahead`: a file synced often appends with
    /// system calls. The default does nothing, for file systems without that cost.
    fn preallocate(&mut self, bytes: u64) -> Result<()> {
        let _ = bytes;
        Ok(())
    }

    /// Writes zeros over the `bytes` that follow what was appended so far (where not
    /// done already), without making them durable; `len` does not change. For a file
    /// of many small appends (a log): [`StdFs`] on 64-bit Linux then maps that space,
    /// and appends that fit are copied into the page cache without a system call
    /// (a process crash keeps them, as it keeps a `pwrite`'s; `sync` makes them
    /// durable). Readers may see the zeros after the appended data. `zero_ahead(0)`
    /// takes up the mapping again after a [`preallocate`](Self::preallocate). The
    /// default does nothing.
    fn zero_ahead(&mut self, bytes: u64) -> Result<()> {
        let _ = bytes;
        Ok(())
    }

    /// Whether nothing has been appended.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file read at arbitrary offsets, shareable across threads.
pub trait RandomAccessFile: Send + Sync + fmt::Debug {
    /// Fills `buf` from `offset`; reading past the end is an error of kind
    /// `UnexpectedEof`.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// The file's length when it was opened.
    fn len(&self) -> u64;

    /// Whether the file was empty when opened.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The path the file was opened at, for error messages.
    fn path(&self) -> &Path;

    /// The largest read that copies straight out of a memory mapping of the file (the
    /// page cache) rather than making a system call; 0 when none does (the default).
    /// Caching what such a read returns, in memory of the reader's own, gains nothing.
    fn mapped_read_limit(&self) -> usize {
        0
    }

    /// Reads `len` bytes at `offset` into shared bytes. Implementations backed by a
    /// memory map may return a view without copying.
    fn read_bytes(&self, offset: u64, len: usize) -> Result<Bytes> {
        let mut buf = vec![0; len];
        self.read_exact_at(offset, &mut buf)?;
        Ok(Bytes::from(buf))
    }
}

/// An exclusive lock, released when dropped.
pub trait FileLock: Send + Sync + fmt::Debug {
    /// The locked file.
    fn path(&self) -> &Path;
}

/// Replaces the contents of `path` atomically and durably: writes `path.tmp`, syncs it,
/// renames it over `path`, then syncs the directory. After a crash at any point, `path`
/// holds either its old contents or `contents`, never a mix.
pub fn atomic_replace(fs: &dyn FileSystem, path: &Path, contents: &[u8]) -> Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::InvalidArgument(format!("{} has no file name", path.display())))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = fs.create(&tmp)?;
        file.append(contents)?;
        file.sync()?;
        drop(file);
        fs.rename(&tmp, path)?;
        fs.sync_dir(parent_dir(path))
    })();
    if result.is_err() {
        // Best effort: a leftover temp file is harmless (readers never look at it).
        let _ = fs.remove(&tmp);
    }
    result
}

/// Whether a failed [`FileSystem::link`] means only that no link can be made there —
/// the paths are on different file systems, the file system has no hard links, or
/// refuses them (FAT and exFAT on Linux answer `EPERM`) — so a copy is the way to get
/// the bytes to the new name. Any other error (a missing source, an existing target, a
/// failing device) is a real failure.
pub fn is_link_unavailable(error: &Error) -> bool {
    use std::io::ErrorKind as K;
    match error {
        Error::Io { source, .. } => matches!(
            source.kind(),
            K::CrossesDevices | K::Unsupported | K::PermissionDenied
        ),
        _ => false,
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

pub(crate) fn eof_error(path: &Path, offset: u64, len: usize, file_len: u64) -> Error {
    Error::io(
        format!(
            "reading {len} bytes at offset {offset} of {}",
            path.display()
        ),
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("file is only {file_len} bytes long"),
        ),
    )
}

#[cfg(test)]
mod tests;
