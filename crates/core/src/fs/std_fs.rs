//! [`FileSystem`] over the operating system's files (`std::fs`).

use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::platform;
use super::{FileLock, FileSystem, RandomAccessFile, WritableFile, eof_error};
use crate::{Error, Result};

/// The real file system. Zero-sized; clone or share freely.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

/// Wraps an I/O error with what was being done to which file. The message is built
/// only when an error happens: `append` is on every write's path.
fn ctx<'a>(what: &'a str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(format!("{what} {}", path.display()), e)
}

impl FileSystem for StdFs {
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        // Readable too: a shared writable mapping (`zero_ahead`) needs it.
        let file = platform::open_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(ctx("creating", path))?;
        Ok(Box::new(StdWritableFile {
            file,
            path: path.to_path_buf(),
            len: 0,
            zeroed_end: 0,
            synced_zeros_end: 0,
            #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
            window: None,
            #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
            append_through_window: false,
        }))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        Ok(Arc::new(StdRandomAccessFile::open(path, false)?))
    }

    /// Maps the file on 64-bit Unix (Linux, macOS; see `fs/mapped.rs` for how a file
    /// shortened under the mapping is caught). On Windows, where a mapped file cannot be
    /// deleted until unmapped, and elsewhere: [`open`](FileSystem::open).
    fn open_mapped(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        Ok(Arc::new(StdRandomAccessFile::open(path, true)?))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        fs::rename(from, to).map_err(|e| {
            Error::io(
                format!("renaming {} to {}", from.display(), to.display()),
                e,
            )
        })
    }

    fn remove(&self, path: &Path) -> Result<()> {
        fs::remove_file(path).map_err(ctx("removing", path))
    }

    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        // `link(2)` on Unix, `CreateHardLinkW` on Windows: the same call everywhere, so it
        // needs nothing from `platform`. Across devices both answer an error of kind
        // `CrossesDevices` (EXDEV, ERROR_NOT_SAME_DEVICE).
        fs::hard_link(from, to)
            .map_err(|e| Error::io(format!("linking {} to {}", to.display(), from.display()), e))
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(ctx("listing", dir))? {
            let entry = entry.map_err(ctx("listing", dir))?;
            // Names that are not UTF-8 cannot be ours; skip them rather than fail.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        path.try_exists()
            .map_err(ctx("checking existence of", path))
    }

    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(ctx("creating directory", dir))
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        platform::sync_dir(dir).map_err(ctx("syncing directory", dir))
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        let file = platform::open_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(ctx("opening lock file", path))?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(StdFileLock {
                _file: file,
                path: path.to_path_buf(),
            })),
            Err(TryLockError::WouldBlock) => Err(Error::Locked {
                path: path.to_path_buf(),
            }),
            Err(TryLockError::Error(e)) => Err(Error::io(format!("locking {}", path.display()), e)),
        }
    }
}

#[derive(Debug)]
struct StdWritableFile {
    file: File,
    path: PathBuf,
    len: u64,
    /// End of the zeros `preallocate` or `zero_ahead` wrote past `len`.
    zeroed_end: u64,
    /// End of the zeros `preallocate` made durable.
    synced_zeros_end: u64,
    /// The zeros `zero_ahead` wrote, mapped: appends that fit are copied into it.
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    window: Option<super::mapped::MappedWindow>,
    /// Whether appends use the window: since the last `zero_ahead`, not since a
    /// `preallocate`.
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    append_through_window: bool,
}

/// Zeros written per call by `preallocate`.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

impl WritableFile for StdWritableFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
        if let Some(window) = self.window.as_ref().filter(|_| self.append_through_window) {
            match window.write(self.len, data) {
                Ok(true) => {
                    self.len += data.len() as u64;
                    return Ok(());
                }
                Ok(false) => {}
                Err(super::mapped::Damaged) => {
                    self.window = None;
                    return Err(Error::io(
                        format!("appending to {}", self.path.display()),
                        std::io::Error::other("the file was shortened while mapped for appends"),
                    ));
                }
            }
        }
        // Positional, at the length this handle tracks: `preallocate` writes past the
        // end, and on Windows positional writes move the cursor, so a cursor-based
        // append would land after the zeros.
        platform::write_all_at(&self.file, data, self.len)
            .map_err(ctx("appending to", &self.path))?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        platform::sync(&self.file).map_err(ctx("syncing", &self.path))
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn preallocate(&mut self, bytes: u64) -> Result<()> {
        // A file synced often appends with `pwrite`: after each sync writes back pages
        // dirtied through a mapping, the next copy into them faults again (synced
        // writes measured 13 % slower through the window). The window stays mapped
        // for `zero_ahead` to take up again.
        #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
        {
            self.append_through_window = false;
        }
        let end = self.len.saturating_add(bytes);
        if self.synced_zeros_end.max(self.len) >= end {
            return Ok(());
        }
        // Real zeros, not `fallocate`: ext4 marks fallocated extents unwritten, and the
        // first write into one is an extent change that a sync must commit anyway.
        self.write_zeros_up_to(end, "preallocating")?;
        platform::sync(&self.file).map_err(ctx("syncing preallocated space of", &self.path))?;
        self.synced_zeros_end = end;
        Ok(())
    }

    fn zero_ahead(&mut self, bytes: u64) -> Result<()> {
        let want = self.len.saturating_add(bytes);
        self.write_zeros_up_to(want, "zeroing ahead in")?;
        #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
        {
            // Map the zeros (and the page the log's end is in): appends below them are
            // then copies into the page cache, without a system call. Without a map,
            // appends stay `pwrite`s.
            self.append_through_window = true;
            if !self
                .window
                .as_ref()
                .is_some_and(|w| w.start() <= self.len && want <= w.end())
            {
                // The old window goes first: its registry slot and mapping are freed
                // before the new one claims its own.
                self.window = None;
                self.window =
                    super::mapped::MappedWindow::new(&self.file, self.len, self.zeroed_end);
            }
        }
        Ok(())
    }
}

impl StdWritableFile {
    /// Writes zeros from the end of those written before (or of the appended data)
    /// up to `end`.
    fn write_zeros_up_to(&mut self, end: u64, doing: &str) -> Result<()> {
        let mut at = self.zeroed_end.max(self.len);
        while at < end {
            let n = (end - at).min(ZEROS.len() as u64) as usize;
            let zeros = ZEROS.get(..n).unwrap_or(&ZEROS);
            platform::write_all_at(&self.file, zeros, at).map_err(ctx(doing, &self.path))?;
            at += zeros.len() as u64;
            self.zeroed_end = at;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct StdRandomAccessFile {
    file: File,
    path: PathBuf,
    len: u64,
    /// The whole file mapped, for small reads (`open_mapped`), if it could be.
    #[cfg(all(unix, target_pointer_width = "64"))]
    mapped: Option<super::mapped::MappedFile>,
}

impl StdRandomAccessFile {
    fn open(path: &Path, map: bool) -> Result<Self> {
        let file = platform::open_options()
            .read(true)
            .open(path)
            .map_err(ctx("opening", path))?;
        let len = file
            .metadata()
            .map_err(ctx("reading metadata of", path))?
            .len();
        #[cfg(all(unix, target_pointer_width = "64"))]
        let mapped = map
            .then(|| super::mapped::MappedFile::new(&file, len))
            .flatten();
        #[cfg(not(all(unix, target_pointer_width = "64")))]
        let _ = map;
        Ok(StdRandomAccessFile {
            file,
            path: path.to_path_buf(),
            len,
            #[cfg(all(unix, target_pointer_width = "64"))]
            mapped,
        })
    }
}

impl StdRandomAccessFile {
    /// `UnexpectedEof` unless `len` bytes at `offset` lie within the file as opened.
    fn check_bounds(&self, offset: u64, len: usize) -> Result<()> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(eof_error(&self.path, offset, len, self.len)),
        }
    }

    #[cfg(all(unix, target_pointer_width = "64"))]
    fn shortened_error(&self, offset: u64, len: usize) -> Error {
        Error::corruption(
            &self.path,
            offset,
            format!(
                "the file was shortened while mapped (it had {} bytes when opened): its \
                 reads are refused, this one of {len} bytes included",
                self.len
            ),
        )
    }
}

impl RandomAccessFile for StdRandomAccessFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check_bounds(offset, buf.len())?;
        #[cfg(all(unix, target_pointer_width = "64"))]
        if let Some(mapped) = &self.mapped
            && buf.len() <= super::mapped::MAX_MAPPED_READ
        {
            // In bounds of `len`, the mapping's length: checked above.
            let at = usize::try_from(offset).unwrap_or(usize::MAX);
            return mapped
                .read(at, buf)
                .map_err(|_| self.shortened_error(offset, buf.len()));
        }
        platform::read_exact_at(&self.file, buf, offset).map_err(|e| {
            Error::io(
                format!("reading at offset {offset} of {}", self.path.display()),
                e,
            )
        })
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn read_bytes(&self, offset: u64, len: usize) -> Result<Bytes> {
        #[cfg(all(unix, target_pointer_width = "64"))]
        if let Some(mapped) = &self.mapped
            && len <= super::mapped::MAX_MAPPED_READ
        {
            self.check_bounds(offset, len)?;
            let at = usize::try_from(offset).unwrap_or(usize::MAX);
            return mapped
                .read_to_vec(at, len)
                .map(Bytes::from)
                .map_err(|_| self.shortened_error(offset, len));
        }
        let mut buf = vec![0; len];
        self.read_exact_at(offset, &mut buf)?;
        Ok(Bytes::from(buf))
    }

    fn mapped_read_limit(&self) -> usize {
        #[cfg(all(unix, target_pointer_width = "64"))]
        let limit = match self.mapped {
            Some(_) => super::mapped::MAX_MAPPED_READ,
            None => 0,
        };
        #[cfg(not(all(unix, target_pointer_width = "64")))]
        let limit = 0;
        limit
    }
}

#[derive(Debug)]
struct StdFileLock {
    // Closing the handle releases the lock (flock on Unix, LockFileEx on Windows).
    _file: File,
    path: PathBuf,
}

impl FileLock for StdFileLock {
    fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preallocated_space_is_zeros_that_appends_overwrite_without_growing_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("log");
        let mut w = StdFs.create(&p).unwrap();
        w.append(b"0123456789").unwrap();
        w.preallocate(100_000).unwrap();
        assert_eq!(w.len(), 10, "preallocation is not appended data");
        let on_disk = || std::fs::read(&p).unwrap();
        assert_eq!(on_disk().len(), 100_010);
        assert!(on_disk()[10..].iter().all(|&b| b == 0));

        w.append(b"abcde").unwrap();
        w.sync().unwrap();
        assert_eq!(w.len(), 15);
        let bytes = on_disk();
        assert_eq!(bytes.len(), 100_010, "the append overwrote zeros");
        assert_eq!(&bytes[..15], b"0123456789abcde");
        assert!(bytes[15..].iter().all(|&b| b == 0));

        // Asking for what is already there writes nothing more; asking past it extends.
        w.preallocate(50).unwrap();
        assert_eq!(on_disk().len(), 100_010);
        w.preallocate(200_000).unwrap();
        assert_eq!(on_disk().len(), 200_015);
        assert_eq!(&on_disk()[..15], b"0123456789abcde");
    }

    /// Appends of every size, into zeros written ahead (mapped on 64-bit Linux, where
    /// the ones that fit are copies into the mapping) and past them (`pwrite`), read
    /// back in order with the zeros after them.
    #[test]
    fn appends_into_zeros_written_ahead_read_back_with_the_zeros_after_them() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("log");
        let mut w = StdFs.create(&p).unwrap();
        let mut expected = Vec::new();
        let mut append = |w: &mut Box<dyn WritableFile>, data: &[u8]| {
            w.append(data).unwrap();
            expected.extend_from_slice(data);
            assert_eq!(w.len(), expected.len() as u64);
        };
        append(&mut w, b"header");
        w.zero_ahead(10_000).unwrap();
        assert_eq!(w.len(), 6, "zeros ahead are not appended data");
        assert_eq!(std::fs::read(&p).unwrap().len(), 10_006);
        // Small records up to and across the end of the zeros: the one that does not
        // fit goes past them.
        for i in 0..150u32 {
            append(&mut w, &[i as u8 + 1; 97]);
        }
        assert!(w.len() > 10_006);
        // More zeros ahead, then a record larger than them.
        w.zero_ahead(5_000).unwrap();
        append(&mut w, &[9; 3_000]);
        append(&mut w, &[8; 20_000]);
        w.zero_ahead(4_096).unwrap();
        append(&mut w, b"tail");
        w.sync().unwrap();
        let end_of_zeros = w.len() - 4 + 4_096;
        drop(w);
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len() as u64, end_of_zeros);
        assert_eq!(&bytes[..expected.len()], &expected[..]);
        assert!(bytes[expected.len()..].iter().all(|&b| b == 0));
    }
}
