//! [`LogWriter`]: frames records into blocks and appends them, one OS call per record.
//!
//! Layout (see [`crate::format`] and `docs/format/wal.md`): 32 KiB blocks of fragments,
//! each `crc: u32 LE | len: u16 LE | type: u8 | payload`, CRC-32 over type ‖ payload;
//! a block tail shorter than a header is zero padding; a `Header` fragment
//! (`STRATLOG` + version u32 LE) opens the log.

use std::fmt;

use strata_core::{Error, Result, WritableFile};

use crate::format::{
    BLOCK_SIZE, FragmentType, HEADER_LEN, LOG_HEADER_LEN, log_header_payload, put_fragment,
};

/// When the writer makes appended records durable on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Only when [`LogWriter::sync`] is called. Appended records survive a process crash
    /// (they are in the OS) but not a power loss until synced.
    #[default]
    Never,
    /// After every record: [`LogWriter::add_record`] returns once the record is durable.
    EveryWrite,
    /// After the record that brings the bytes appended since the last sync to at least
    /// this many. `EveryBytes(0)` behaves like [`EveryWrite`](Self::EveryWrite).
    EveryBytes(u64),
}

/// Appends records to a log file.
///
/// Each [`add_record`](Self::add_record) frames the whole record (fragments, padding and,
/// for a new log, the header) into one reusable buffer and hands it to the OS with a
/// single [`WritableFile::append`]. A failed append or sync *poisons* the writer: that
/// call returns the error and every later call returns [`Error::Poisoned`], because after
/// a failed fsync the kernel may have dropped the dirty pages and a retry would report
/// success for lost data.
///
/// Not shared between threads: the engine serialises writers in front of it (group
/// commit) and hands it one combined record at a time.
pub struct LogWriter {
    file: Box<dyn WritableFile>,
    policy: SyncPolicy,
    /// Length of the log: where the next byte goes.
    len: u64,
    /// Position inside the current block (`len % BLOCK_SIZE`).
    block_offset: usize,
    /// Bytes appended since the last successful sync.
    unsynced: u64,
    /// End of the space preallocated by [`keep_preallocated`](Self::keep_preallocated).
    preallocated_end: u64,
    /// End of the zeros written by [`keep_zeroed_ahead`](Self::keep_zeroed_ahead).
    zeroed_end: u64,
    /// Whether writing zeros ahead failed once: it is not tried again on this log.
    zeroing_failed: bool,
    /// Whether the file was last asked to zero ahead (`keep_zeroed_ahead`) rather than
    /// to preallocate (`keep_preallocated`), which decides how it appends.
    zeroing_ahead: bool,
    /// Reused framing buffer: no allocation per record once it has grown.
    buf: Vec<u8>,
    /// What the writer returns for every call once something failed: an
    /// [`Error::Poisoned`] holding that failure.
    poisoned: Option<Error>,
}

impl fmt::Debug for LogWriter {
    // The framing buffer is scratch space: leave it out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogWriter")
            .field("file", &self.file)
            .field("policy", &self.policy)
            .field("len", &self.len)
            .field("unsynced", &self.unsynced)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// A framing buffer larger than this is released after use, so one huge record does not
/// pin its size for the log's lifetime.
const MAX_RETAINED_BUF: usize = 1 << 20;

impl LogWriter {
    /// A writer for a log starting at the file's current length — a fresh file from
    /// [`FileSystem::create`](strata_core::FileSystem::create) gets a new log whose
    /// header is written with the first record.
    pub fn new(file: Box<dyn WritableFile>, policy: SyncPolicy) -> Self {
        let len = file.len();
        Self::resume(file, len, policy)
    }

    /// A writer continuing a log that is already `log_len` bytes long (its header
    /// included), for a file handle opened for appending at that length. The block
    /// position is derived from `log_len`. `log_len` must be the end of the last intact
    /// record: after a torn tail, truncate the file there first (a reader would take the
    /// damage followed by new records for mid-log corruption).
    pub fn resume(file: Box<dyn WritableFile>, log_len: u64, policy: SyncPolicy) -> Self {
        LogWriter {
            file,
            policy,
            len: log_len,
            block_offset: (log_len % BLOCK_SIZE as u64) as usize,
            unsynced: 0,
            preallocated_end: 0,
            zeroed_end: 0,
            zeroing_failed: false,
            zeroing_ahead: false,
            buf: Vec::new(),
            poisoned: None,
        }
    }

    /// Appends one record (any length, including 0) and, if the policy asks, syncs.
    /// Returns the offset where the record's first fragment starts.
    pub fn add_record(&mut self, record: &[u8]) -> Result<u64> {
        self.check_poisoned()?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut block_offset = self.block_offset;
        if self.len == 0 {
            Self::frame(
                &mut buf,
                &mut block_offset,
                &log_header_payload(),
                Some(FragmentType::Header),
            );
            debug_assert_eq!(buf.len(), LOG_HEADER_LEN);
        }
        let start = Self::frame(&mut buf, &mut block_offset, record, None);
        let record_offset = self.len + start as u64;

        let appended = self.file.append(&buf);
        let framed_len = buf.len() as u64;
        if buf.capacity() <= MAX_RETAINED_BUF {
            self.buf = buf;
        }
        if let Err(e) = appended {
            return Err(self.poison("append", e));
        }
        self.len += framed_len;
        self.block_offset = block_offset;
        self.unsynced += framed_len;

        let sync_now = match self.policy {
            SyncPolicy::Never => false,
            SyncPolicy::EveryWrite => true,
            SyncPolicy::EveryBytes(n) => self.unsynced >= n,
        };
        if sync_now {
            self.sync()?;
        }
        Ok(record_offset)
    }

    /// Makes every record appended so far durable.
    pub fn sync(&mut self) -> Result<()> {
        self.check_poisoned()?;
        if let Err(e) = self.file.sync() {
            return Err(self.poison("sync", e));
        }
        self.unsynced = 0;
        Ok(())
    }

    /// Keeps at least `bytes` of zero-filled, synced space ahead of the log's end,
    /// extending it by `2 × bytes` when less is left
    /// ([`WritableFile::preallocate`](strata_core::WritableFile::preallocate)). For
    /// logs synced often: a sync of records written into such space commits no file
    /// metadata, which cuts its latency by about a quarter on ext4. A reader sees the
    /// zeros after the last record as the log's end (a zero-filled tail).
    ///
    /// A failure poisons the writer: the failed sync may have dropped the log's own
    /// unsynced pages.
    pub fn keep_preallocated(&mut self, bytes: u64) -> Result<()> {
        self.check_poisoned()?;
        let covered = self.len.saturating_add(bytes) <= self.preallocated_end;
        if covered && !self.zeroing_ahead {
            return Ok(());
        }
        // Preallocating also tells the file this log is synced often, so it appends
        // with system calls rather than through a mapping of the zeros ahead
        // (`keep_zeroed_ahead`); asking for space already there writes nothing.
        self.zeroing_ahead = false;
        let ahead = if covered {
            bytes
        } else {
            bytes.saturating_mul(2)
        };
        if let Err(e) = self.file.preallocate(ahead) {
            return Err(self.poison("preallocation", e));
        }
        if !covered {
            self.preallocated_end = self.len.saturating_add(ahead);
        }
        Ok(())
    }

    /// Keeps at least `bytes` of zeros written (not synced) ahead of the log's end,
    /// writing `2 × bytes` more when less is left
    /// ([`WritableFile::zero_ahead`](strata_core::WritableFile::zero_ahead), where the
    /// file system may map them so appends skip the system call). A reader sees the
    /// zeros after the last record as the log's end, as with
    /// [`keep_preallocated`](Self::keep_preallocated).
    ///
    /// Only a hint: a failure is dropped (and zeroing ahead stops for this log), since
    /// no record depends on the zeros; a real disk problem fails the next append.
    pub fn keep_zeroed_ahead(&mut self, bytes: u64) {
        if self.zeroing_failed || self.poisoned.is_some() {
            return;
        }
        let ahead = if self.len.saturating_add(bytes) > self.zeroed_end {
            bytes.saturating_mul(2)
        } else if !self.zeroing_ahead {
            // Back from synced writes: the zeros are there, take up their mapping.
            0
        } else {
            return;
        };
        match self.file.zero_ahead(ahead) {
            Ok(()) => {
                self.zeroing_ahead = true;
                self.zeroed_end = self.zeroed_end.max(self.len.saturating_add(ahead));
            }
            Err(_) => self.zeroing_failed = true,
        }
    }

    /// Length of the log in bytes (header, framing and padding included): what the file
    /// holds once everything appended so far is on disk. The engine rotates logs on it.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether records were appended since the last successful sync: a log without
    /// them needs no sync to be durable.
    pub fn has_unsynced(&self) -> bool {
        self.unsynced > 0
    }

    /// Whether nothing (not even the header) has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether an earlier failure made the writer refuse further work.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    fn check_poisoned(&self) -> Result<()> {
        match &self.poisoned {
            Some(refusal) => Err(refusal.clone()),
            None => Ok(()),
        }
    }

    fn poison(&mut self, what: &str, e: Error) -> Error {
        self.poisoned = Some(Error::poisoned(format!("log {what}"), &e));
        e
    }

    /// Frames `payload` as fragments into `buf`, starting at `block_offset` within the
    /// current block, and returns the index in `buf` where its first fragment starts.
    /// `single` forces one fragment of that type (the log header, which always fits).
    fn frame(
        buf: &mut Vec<u8>,
        block_offset: &mut usize,
        payload: &[u8],
        single: Option<FragmentType>,
    ) -> usize {
        let mut rest = payload;
        let mut first = true;
        let mut start = None;
        loop {
            let leftover = BLOCK_SIZE - *block_offset;
            if leftover < HEADER_LEN {
                // Too small for a header: pad with zeros and move to the next block.
                buf.resize(buf.len() + leftover, 0);
                *block_offset = 0;
            }
            let avail = BLOCK_SIZE - *block_offset - HEADER_LEN;
            let (fragment, tail) = rest.split_at(rest.len().min(avail));
            let last = tail.is_empty();
            let ty = single.unwrap_or(match (first, last) {
                (true, true) => FragmentType::Full,
                (true, false) => FragmentType::First,
                (false, false) => FragmentType::Middle,
                (false, true) => FragmentType::Last,
            });
            start.get_or_insert(buf.len());
            put_fragment(buf, ty, fragment);
            *block_offset += HEADER_LEN + fragment.len();
            rest = tail;
            first = false;
            if last {
                return start.unwrap_or(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use strata_core::{FileSystem, MemFs};

    fn mem_writer(policy: SyncPolicy) -> (MemFs, LogWriter) {
        let fs = MemFs::new();
        let file = fs.create(Path::new("/log")).unwrap();
        (fs, LogWriter::new(file, policy))
    }

    #[test]
    fn first_record_carries_the_header_and_later_ones_do_not() {
        let (fs, mut w) = mem_writer(SyncPolicy::Never);
        assert!(w.is_empty());
        assert_eq!(w.add_record(b"hello").unwrap(), LOG_HEADER_LEN as u64);
        assert_eq!(w.len(), (LOG_HEADER_LEN + HEADER_LEN + 5) as u64);
        let second = w.add_record(b"").unwrap();
        assert_eq!(second, (LOG_HEADER_LEN + HEADER_LEN + 5) as u64);
        assert_eq!(w.len(), second + HEADER_LEN as u64);
        let data = fs.read_file(Path::new("/log")).unwrap();
        assert_eq!(data.len() as u64, w.len());
        assert_eq!(&data[7..15], b"STRATLOG");
    }

    #[test]
    fn block_tail_too_small_for_a_header_is_zero_padded() {
        let (fs, mut w) = mem_writer(SyncPolicy::Never);
        // Leave exactly 3 bytes in the first block.
        let fill = BLOCK_SIZE - LOG_HEADER_LEN - HEADER_LEN - 3;
        w.add_record(&vec![7; fill]).unwrap();
        assert_eq!(w.len(), (BLOCK_SIZE - 3) as u64);
        let at = w.add_record(b"x").unwrap();
        assert_eq!(at, BLOCK_SIZE as u64);
        let data = fs.read_file(Path::new("/log")).unwrap();
        assert_eq!(&data[BLOCK_SIZE - 3..BLOCK_SIZE], &[0, 0, 0]);
        assert_eq!(data[BLOCK_SIZE + 6], FragmentType::Full as u8);
    }

    #[test]
    fn a_record_larger_than_a_block_is_split_first_middle_last() {
        let (fs, mut w) = mem_writer(SyncPolicy::Never);
        w.add_record(&vec![1; 2 * BLOCK_SIZE]).unwrap();
        let data = fs.read_file(Path::new("/log")).unwrap();
        assert_eq!(data[LOG_HEADER_LEN + 6], FragmentType::First as u8);
        assert_eq!(data[BLOCK_SIZE + 6], FragmentType::Middle as u8);
        assert_eq!(data[2 * BLOCK_SIZE + 6], FragmentType::Last as u8);
    }

    #[test]
    fn resume_continues_inside_the_block_derived_from_the_length() {
        let fs = MemFs::new();
        let mut w = LogWriter::new(fs.create(Path::new("/log")).unwrap(), SyncPolicy::Never);
        w.add_record(&vec![3; BLOCK_SIZE - 40]).unwrap();
        let len = w.len();
        let before = fs.read_file(Path::new("/log")).unwrap();
        drop(w);

        // A fresh file standing in for one reopened for append: same bytes, same length.
        let mut file = fs.create(Path::new("/log2")).unwrap();
        file.append(&before).unwrap();
        let mut resumed = LogWriter::resume(file, len, SyncPolicy::Never);
        assert_eq!(resumed.add_record(&[9; 100]).unwrap(), len);
        // 100 bytes do not fit in the block's remaining space: First here, Last next block.
        let data = fs.read_file(Path::new("/log2")).unwrap();
        assert_eq!(data[len as usize + 6], FragmentType::First as u8);
        assert_eq!(data[BLOCK_SIZE + 6], FragmentType::Last as u8);
        assert_eq!(resumed.len(), data.len() as u64);
    }

    #[test]
    fn unsynced_bytes_are_tracked_until_a_sync() {
        let (_fs, mut w) = mem_writer(SyncPolicy::Never);
        assert!(!w.has_unsynced());
        w.add_record(b"a").unwrap();
        assert!(w.has_unsynced());
        w.sync().unwrap();
        assert!(!w.has_unsynced());
        let (_fs, mut every) = mem_writer(SyncPolicy::EveryWrite);
        every.add_record(b"a").unwrap();
        assert!(!every.has_unsynced());
    }

    #[test]
    fn preallocated_logs_read_back_every_record_and_end_at_the_zeros() {
        read_back_up_to_the_zeros(|w| {
            w.keep_preallocated(4096).unwrap();
        });
    }

    /// The same with zeros written ahead but not synced (mapped for appends on 64-bit
    /// Linux), records synced or not, and without a sync before the log is read.
    #[test]
    fn logs_with_zeros_ahead_read_back_every_record_and_end_at_the_zeros() {
        let mut n = 0;
        read_back_up_to_the_zeros(|w| {
            w.keep_zeroed_ahead(4096);
            n += 1;
            if n % 3 == 0 {
                w.keep_preallocated(4096).unwrap();
            }
        });
    }

    /// Writes 300 records of varied sizes, calling `before_each` before each and
    /// syncing every other one, then reads the log back in every recovery mode.
    fn read_back_up_to_the_zeros(mut before_each: impl FnMut(&mut LogWriter)) {
        use crate::{LogEnd, LogReader, RecoveryMode};
        use strata_core::StdFs;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log");
        let mut w = LogWriter::new(StdFs.create(&path).unwrap(), SyncPolicy::Never);
        let records: Vec<Vec<u8>> = (0..300u32)
            .map(|i| vec![i as u8; (i as usize * 37) % 900])
            .collect();
        for (i, r) in records.iter().enumerate() {
            before_each(&mut w);
            w.add_record(r).unwrap();
            if i % 2 == 0 {
                w.sync().unwrap();
            }
        }
        let file_len = std::fs::metadata(&path).unwrap().len();
        assert!(file_len > w.len(), "zeros follow the log");
        assert!(file_len <= w.len() + 2 * 4096);

        // The zeros are the writer's own reservation, not damage: every mode accepts them.
        for mode in [
            RecoveryMode::TolerateTornTail,
            RecoveryMode::Absolute,
            RecoveryMode::PointInTime,
        ] {
            let mut reader = LogReader::new(StdFs.open(&path).unwrap(), mode);
            let read: Vec<Vec<u8>> = reader.by_ref().map(|r| r.unwrap().data.to_vec()).collect();
            assert_eq!(read, records);
            assert_eq!(
                reader.end(),
                Some(&LogEnd::Preallocated {
                    len: w.len(),
                    zeros: file_len - w.len()
                }),
                "{mode:?}"
            );
        }
    }
}
