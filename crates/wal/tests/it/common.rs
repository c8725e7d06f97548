//! Shared harness: both file systems, log writing and reading helpers, and a test-side
//! walker of the documented layout (independent of the crate's decoder).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use strata_core::{Error, FileSystem, MemFs, RandomAccessFile, StdFs};
use strata_wal::{LogEnd, LogReader, LogWriter, RecoveryMode, SyncPolicy};

pub const BLOCK: usize = 32 * 1024;
pub const HEADER: usize = 7;
pub const LOG_HEADER: usize = 19;
pub const MODES: [RecoveryMode; 3] = [
    RecoveryMode::TolerateTornTail,
    RecoveryMode::Absolute,
    RecoveryMode::PointInTime,
];

/// A directory on one file system.
pub struct Env {
    pub fs: Arc<dyn FileSystem>,
    pub dir: PathBuf,
    pub name: &'static str,
    _tmp: Option<tempfile::TempDir>,
}

impl Env {
    pub fn mem() -> Self {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        Env {
            fs: Arc::new(fs),
            dir: PathBuf::from("/db"),
            name: "MemFs",
            _tmp: None,
        }
    }

    pub fn std() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        Env {
            fs: Arc::new(StdFs),
            dir: tmp.path().to_path_buf(),
            name: "StdFs",
            _tmp: Some(tmp),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `records` as a new log; returns each record's `(start, end)` offsets as the
    /// writer reported them and the log's length.
    pub fn write_log(&self, name: &str, records: &[Vec<u8>]) -> Vec<(u64, u64)> {
        let mut w = LogWriter::new(self.fs.create(&self.path(name)).unwrap(), SyncPolicy::Never);
        let spans = records
            .iter()
            .map(|r| {
                let start = w.add_record(r).unwrap();
                (start, w.len())
            })
            .collect();
        w.sync().unwrap();
        spans
    }

    /// Replaces a file's bytes through the file-system seam, as outside damage would.
    /// Removes the old file first: on ext4, truncating a file with unwritten data forces
    /// it to disk (`auto_da_alloc`), which makes the byte sweeps take minutes.
    pub fn put_raw(&self, name: &str, bytes: &[u8]) {
        let path = self.path(name);
        if self.fs.exists(&path).unwrap() {
            self.fs.remove(&path).unwrap();
        }
        let mut f = self.fs.create(&path).unwrap();
        f.append(bytes).unwrap();
    }

    pub fn get_raw(&self, name: &str) -> Vec<u8> {
        let f = self.fs.open(&self.path(name)).unwrap();
        f.read_bytes(0, f.len() as usize).unwrap().to_vec()
    }

    /// Reads a whole log: every record yielded before the end or the first error, the
    /// error if any, and the reported end.
    pub fn read_log(&self, name: &str, mode: RecoveryMode) -> Outcome {
        read_file(self.fs.open(&self.path(name)).unwrap(), mode)
    }

    /// Reads the log as if the file had been cut to `len` bytes (cheaper than writing a
    /// cut copy for each of thousands of cut points; the reads still hit the real file).
    pub fn read_prefix(&self, name: &str, len: u64, mode: RecoveryMode) -> Outcome {
        let inner = self.fs.open(&self.path(name)).unwrap();
        assert!(len <= inner.len());
        read_file(Arc::new(Prefix { inner, len }), mode)
    }
}

/// A file seen as only its first `len` bytes.
#[derive(Debug)]
struct Prefix {
    inner: Arc<dyn RandomAccessFile>,
    len: u64,
}

impl RandomAccessFile for Prefix {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> strata_core::Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(Error::io(
                "reading past a cut",
                std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            ));
        }
        self.inner.read_exact_at(offset, buf)
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn path(&self) -> &Path {
        self.inner.path()
    }
}

fn read_file(file: Arc<dyn RandomAccessFile>, mode: RecoveryMode) -> Outcome {
    let mut reader = LogReader::new(file, mode);
    let mut records = Vec::new();
    let mut error = None;
    for r in reader.by_ref() {
        match r {
            Ok(rec) => records.push((rec.offset, rec.data)),
            Err(e) => error = Some(e),
        }
    }
    Outcome {
        records,
        error,
        end: reader.end().copied(),
    }
}

/// What reading a log gave.
#[derive(Debug)]
pub struct Outcome {
    pub records: Vec<(u64, Bytes)>,
    pub error: Option<Error>,
    pub end: Option<LogEnd>,
}

impl Outcome {
    pub fn data(&self) -> Vec<&[u8]> {
        self.records.iter().map(|(_, d)| &d[..]).collect()
    }
}

/// Runs `check` on a MemFs and on a StdFs in a temporary directory.
pub fn on_both(check: impl Fn(&Env)) {
    check(&Env::mem());
    check(&Env::std());
}

/// Deterministic, cheap pseudo-random bytes (xorshift), so large records need no
/// per-byte proptest generation.
pub fn bytes_of(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&x.to_le_bytes()[..take]);
    }
    out
}

/// A fragment as the format page describes it, found by walking the bytes: offset,
/// payload length, type byte. Stops at the first thing that is not a fragment.
#[derive(Clone, Copy, Debug)]
pub struct RawFragment {
    pub offset: usize,
    pub len: usize,
    pub ty: u8,
}

pub fn walk_fragments(log: &[u8]) -> (Vec<RawFragment>, Vec<usize>) {
    let mut fragments = Vec::new();
    let mut padding = Vec::new();
    let mut p = 0;
    while p < log.len() {
        let left = BLOCK - p % BLOCK;
        if left < HEADER {
            padding.extend(p..(p + left).min(log.len()));
            p += left;
            continue;
        }
        let len = u16::from_le_bytes([log[p + 4], log[p + 5]]) as usize;
        fragments.push(RawFragment {
            offset: p,
            len,
            ty: log[p + 6],
        });
        p += HEADER + len;
    }
    (fragments, padding)
}

/// A fragment framed test-side (for crafting logs the writer would never produce).
pub fn fragment(ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = crc32fast::Hasher::new();
    h.update(&[ty]);
    h.update(payload);
    let mut out = h.finalize().to_le_bytes().to_vec();
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    out.push(ty);
    out.extend_from_slice(payload);
    out
}

/// The log header fragment of format `version`.
pub fn log_header(version: u32) -> Vec<u8> {
    let mut payload = b"STRATLOG".to_vec();
    payload.extend_from_slice(&version.to_le_bytes());
    fragment(5, &payload)
}
