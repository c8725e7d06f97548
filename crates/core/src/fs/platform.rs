//! Everything [`StdFs`](super::StdFs) does differently per operating system, in one
//! place. `std_fs.rs` is written against these functions only; `docs/durability.md`
//! ("Per platform") says what each means for what survives a power loss.
//!
//! | | Linux (and other Unix) | macOS (Apple targets) | Windows |
//! |---|---|---|---|
//! | positional read, write | `pread`, `pwrite` | same | `ReadFile`, `WriteFile` at an offset (they also move the file cursor, which nothing here uses) |
//! | [`sync`] a file | `fdatasync` | `fcntl(F_FULLFSYNC)`; `fsync` where the file system does not support it | `FlushFileBuffers` |
//! | [`sync_dir`] | `fsync` of the directory | `fcntl(F_FULLFSYNC)` of the directory, same fallback | not available: only checks that the directory exists |
//! | share modes ([`open_options`]) | none | none | read, write and **delete** shared, so an open file can be removed or renamed over |
//!
//! Short reads and writes are retried by [`read_exact_at`] and [`write_all_at`] on every
//! platform, so the loop that Windows needs (its positional calls may transfer less
//! than asked) is the one the Linux test suite runs.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Options to open or create any file with: `OpenOptions::new()` plus the platform's
/// share mode.
pub(super) fn open_options() -> OpenOptions {
    imp::open_options()
}

/// Makes the file's written bytes durable (and whatever metadata is needed to read them
/// back, such as its length): the strongest flush the platform offers for one file.
pub(super) fn sync(file: &File) -> io::Result<()> {
    imp::sync(file)
}

/// Makes the creations, renames and removals of entries in `dir` durable, as far as the
/// platform allows; fails if `dir` does not exist.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    imp::sync_dir(dir)
}

/// Fills `buf` from `offset` without using or depending on the file cursor, so that
/// many threads may read one file at once.
pub(super) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    fill_at(buf, offset, |b, at| imp::read_at(file, b, at))
}

/// Writes all of `buf` at `offset` without using or depending on the file cursor.
pub(super) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    drain_at(buf, offset, |b, at| imp::write_at(file, b, at))
}

/// Calls `read` until `buf` is full: a read may return fewer bytes than asked, and is
/// retried when interrupted by a signal. Zero bytes means the file ended.
fn fill_at(
    mut buf: &mut [u8],
    mut offset: u64,
    mut read: impl FnMut(&mut [u8], u64) -> io::Result<usize>,
) -> io::Result<()> {
    while !buf.is_empty() {
        match read(buf, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file ended before the buffer was filled",
                ));
            }
            Ok(n) => {
                buf = std::mem::take(&mut buf)
                    .get_mut(n..)
                    .ok_or_else(|| overrun(n))?;
                offset = offset.saturating_add(n as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Calls `write` until all of `buf` is written; the write counterpart of [`fill_at`].
fn drain_at(
    mut buf: &[u8],
    mut offset: u64,
    mut write: impl FnMut(&[u8], u64) -> io::Result<usize>,
) -> io::Result<()> {
    while !buf.is_empty() {
        match write(buf, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the operating system accepted no bytes",
                ));
            }
            Ok(n) => {
                buf = buf.get(n..).ok_or_else(|| overrun(n))?;
                offset = offset.saturating_add(n as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// An operating system claiming to have moved more bytes than asked is broken; say so
/// rather than panic on the slice.
fn overrun(n: usize) -> io::Error {
    io::Error::other(format!(
        "the operating system reported {n} bytes transferred, more than asked"
    ))
}

#[cfg(unix)]
mod imp {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::unix::fs::FileExt;
    use std::path::Path;

    pub fn open_options() -> OpenOptions {
        OpenOptions::new()
    }

    pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        file.read_at(buf, offset)
    }

    pub fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
        file.write_at(buf, offset)
    }

    #[cfg(not(target_vendor = "apple"))]
    pub fn sync(file: &File) -> io::Result<()> {
        // fdatasync: the data and the metadata needed to read it (the size), not the
        // modification time.
        file.sync_data()
    }

    #[cfg(not(target_vendor = "apple"))]
    pub fn sync_dir(dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    #[cfg(target_vendor = "apple")]
    pub fn sync(file: &File) -> io::Result<()> {
        full_fsync(file)
    }

    #[cfg(target_vendor = "apple")]
    pub fn sync_dir(dir: &Path) -> io::Result<()> {
        full_fsync(&File::open(dir)?)
    }

    /// On Apple systems `fsync` only hands the data to the drive, whose volatile cache
    /// may lose it (or reorder it) at power loss; `F_FULLFSYNC` also flushes that cache
    /// (fsync(2) and fcntl(2) man pages). It is called here by name rather than trusting
    /// that `File::sync_data` does it (the standard library does today, but documents
    /// `sync_data` only as `fdatasync`), and through rustix's safe wrapper, so there is
    /// no `unsafe` to get wrong.
    ///
    /// File systems without the call (some network and FUSE mounts) answer "not
    /// supported"; for those, `fsync` is the most they offer, as SQLite also concludes.
    /// Any other error (EIO above all) is returned, never papered over with an `fsync`
    /// that could report success for pages the kernel already dropped.
    #[cfg(target_vendor = "apple")]
    fn full_fsync(file: &File) -> io::Result<()> {
        use rustix::io::Errno;
        let unsupported = [Errno::NOTSUP, Errno::OPNOTSUPP, Errno::NOTTY, Errno::INVAL];
        loop {
            match rustix::fs::fcntl_fullfsync(file) {
                Ok(()) => return Ok(()),
                Err(Errno::INTR) => {}
                Err(e) if unsupported.contains(&e) => break,
                Err(e) => return Err(e.into()),
            }
        }
        loop {
            match rustix::fs::fsync(file) {
                Ok(()) => return Ok(()),
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(windows)]
mod imp {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::windows::fs::{FileExt, OpenOptionsExt};
    use std::path::Path;

    // winnt.h; std does not export them.
    const FILE_SHARE_READ: u32 = 0x1;
    const FILE_SHARE_WRITE: u32 = 0x2;
    const FILE_SHARE_DELETE: u32 = 0x4;

    /// Every handle shares delete access, so removing a file that is still open — a
    /// table an iterator is reading, a WAL being retired — succeeds as on Unix instead
    /// of failing with a sharing violation. On Windows 10 1903 and later (NTFS) the name
    /// goes at once; on older systems it stays, "delete pending", until the last handle
    /// closes, and opening or re-creating that name fails meanwhile. Strata never reuses
    /// a numbered file name, and its one reused temporary name (`CURRENT.tmp`) is closed
    /// before it is renamed or removed, so neither blocks it. Sharing delete access also
    /// lets `rename` replace `CURRENT` while a reader has it open. This is the standard
    /// library's default today; it is set here so that the removal rule does not hang
    /// on a default.
    pub fn open_options() -> OpenOptions {
        let mut options = OpenOptions::new();
        options.share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE);
        options
    }

    /// `seek_read` moves the file cursor as a side effect; every read and write here is
    /// positional, so the cursor's position never matters.
    pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        file.seek_read(buf, offset)
    }

    pub fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
        file.seek_write(buf, offset)
    }

    /// `FlushFileBuffers`: the file's data and metadata, and a flush of the device's
    /// write cache.
    pub fn sync(file: &File) -> io::Result<()> {
        file.sync_data()
    }

    /// Windows has no documented way to flush a directory (`FlushFileBuffers` is
    /// documented for files and, with administrator rights, volumes). NTFS journals
    /// directory changes and commits them in order, lazily or when a file's flush needs
    /// the journal (docs/durability.md says what that leaves to chance). Checking that
    /// the directory exists keeps the error a caller gets for a wrong path the same as
    /// on the other platforms.
    pub fn sync_dir(dir: &Path) -> io::Result<()> {
        std::fs::metadata(dir).map(drop)
    }
}

#[cfg(not(any(unix, windows)))]
compile_error!(
    "StdFs supports Unix and Windows; another target needs its own `imp` in \
     crates/core/src/fs/platform.rs (or use MemFs)"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `len` bytes whose byte at `i` is `i as u8`, read at most `step` bytes
    /// at a time, interrupted before every other read.
    fn chunky_reader(len: u64, step: usize) -> impl FnMut(&mut [u8], u64) -> io::Result<usize> {
        let mut calls = 0;
        move |buf, offset| {
            calls += 1;
            if calls % 2 == 1 {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            let n = buf.len().min(step).min(len.saturating_sub(offset) as usize);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = (offset + i as u64) as u8;
            }
            Ok(n)
        }
    }

    #[test]
    fn short_and_interrupted_reads_are_retried_until_the_buffer_is_full() {
        let mut buf = [0; 10];
        fill_at(&mut buf, 100, chunky_reader(1000, 3)).unwrap();
        assert_eq!(buf, [100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
    }

    #[test]
    fn a_read_that_reaches_the_end_is_unexpected_eof() {
        let mut buf = [0; 10];
        let err = fill_at(&mut buf, 995, chunky_reader(1000, 3)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn short_and_interrupted_writes_are_retried_until_everything_is_written() {
        let mut file = [0u8; 20];
        let mut calls = 0;
        drain_at(b"0123456789", 5, |buf, offset| {
            calls += 1;
            if calls % 3 == 0 {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            let n = buf.len().min(4);
            let at = offset as usize;
            file[at..at + n].copy_from_slice(&buf[..n]);
            Ok(n)
        })
        .unwrap();
        assert_eq!(&file[5..15], b"0123456789");
        assert!(file[..5].iter().chain(&file[15..]).all(|&b| b == 0));
    }

    #[test]
    fn a_write_of_nothing_is_an_error_not_a_hang() {
        let err = drain_at(b"abc", 0, |_, _| Ok(0)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
    }

    #[test]
    fn other_errors_and_overruns_end_the_loop_without_panicking() {
        let mut buf = [0; 4];
        let err = fill_at(&mut buf, 0, |_, _| Err(io::Error::other("EIO"))).unwrap_err();
        assert_eq!(err.to_string(), "EIO");
        assert!(fill_at(&mut buf, 0, |b, _| Ok(b.len() + 1)).is_err());
        assert!(drain_at(b"abc", 0, |b, _| Ok(b.len() + 1)).is_err());
    }

    #[test]
    fn sync_and_sync_dir_succeed_on_real_files_and_sync_dir_refuses_a_missing_directory() {
        // On macOS this runs F_FULLFSYNC on a file and a directory; CI runs it on Linux
        // only (fdatasync and fsync).
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        let file = open_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        write_all_at(&file, b"abc", 0).unwrap();
        sync(&file).unwrap();
        sync_dir(tmp.path()).unwrap();
        assert!(sync_dir(&tmp.path().join("missing")).is_err());
    }
}
