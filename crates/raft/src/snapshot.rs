//! The snapshot stream (format 2): the files of a Strata checkpoint of the state
//! machine's keyspace, after the snapshot's metadata, closed by a checksum.
//!
//! ```text
//! magic        8 bytes   "STRSNAP2"
//! meta_len     u32 LE    then meta_len bytes: openraft's SnapshotMeta as JSON
//! files        u32 LE    the number of files that follow
//! file         name_len u16 LE, name (1 to 255 bytes of [A-Za-z0-9._-], not "." or ".."),
//!              len u64 LE, then len bytes: the file's content
//! checksum     u32 LE    CRC-32 (IEEE, as crc32fast computes it) of every byte before it
//! ```
//!
//! The files are a database directory (`CURRENT`, a manifest, an empty WAL, the table
//! files), as `Keyspace::checkpoint` writes it; each table also carries its own block
//! checksums, which opening and reading it checks. The stream's checksum covers a
//! stream damaged or cut short in transfer; installing refuses such a stream before
//! touching the state machine, and a name that could leave the directory it is
//! written into is refused too.

use openraft::AnyError;

const MAGIC: &[u8; 8] = b"STRSNAP2";
/// The magic of format 1 (records of keys and values), named in the error that
/// refuses it.
const MAGIC_V1: &[u8; 8] = b"STRSNAP1";

/// Appends little-endian fields; the CRC is computed over the whole stream at the end.
pub(crate) struct Writer {
    buf: Vec<u8>,
    files: u32,
    files_at: usize,
}

impl Writer {
    /// Starts a stream with `meta` (already encoded).
    pub(crate) fn new(meta: &[u8]) -> Result<Self, AnyError> {
        let mut buf = Vec::with_capacity(64 + meta.len());
        buf.extend_from_slice(MAGIC);
        let meta_len = u32::try_from(meta.len())
            .map_err(|_| AnyError::error("snapshot metadata over 4 GiB"))?;
        buf.extend_from_slice(&meta_len.to_le_bytes());
        buf.extend_from_slice(meta);
        let files_at = buf.len();
        // The file count is patched in by `finish`.
        buf.extend_from_slice(&0u32.to_le_bytes());
        Ok(Writer {
            buf,
            files: 0,
            files_at,
        })
    }

    /// Adds the file `name` with `content`.
    pub(crate) fn file(&mut self, name: &str, content: &[u8]) -> Result<(), AnyError> {
        check_name(name)?;
        // `check_name` bounds the name to 255 bytes.
        self.buf
            .extend_from_slice(&(name.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(name.as_bytes());
        self.buf
            .extend_from_slice(&(content.len() as u64).to_le_bytes());
        self.buf.extend_from_slice(content);
        self.files = self
            .files
            .checked_add(1)
            .ok_or_else(|| AnyError::error("more than 2^32 files in a snapshot"))?;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        let count = self.files.to_le_bytes();
        self.buf[self.files_at..self.files_at + 4].copy_from_slice(&count);
        let crc = crc32fast::hash(&self.buf);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

/// A file name that stays inside the directory it is written into: 1 to 255 bytes of
/// ASCII letters, digits, `.`, `_` and `-`, and not `.` or `..` (what Strata names its
/// files with).
fn check_name(name: &str) -> Result<(), AnyError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(corrupt(&format!(
            "file name {name:?} is not a plain file name"
        )))
    }
}

/// A checked stream: its metadata bytes and its files, by name.
pub(crate) struct Parsed<'a> {
    pub meta: &'a [u8],
    pub files: Vec<(&'a str, &'a [u8])>,
}

/// Checks `data` (magic, checksum, every length, every name, no name twice) and splits
/// it.
pub(crate) fn parse(data: &[u8]) -> Result<Parsed<'_>, AnyError> {
    let body_len = data
        .len()
        .checked_sub(4)
        .ok_or_else(|| corrupt("shorter than its checksum"))?;
    let (body, crc) = data.split_at(body_len);
    let stored = u32::from_le_bytes(crc.try_into().map_err(|_| corrupt("checksum"))?);
    if crc32fast::hash(body) != stored {
        return Err(corrupt("checksum mismatch (damaged or cut short)"));
    }
    let mut r = Reader { rest: body };
    let magic = r.take(MAGIC.len())?;
    if magic == MAGIC_V1 {
        return Err(corrupt(
            "format 1 (keys and values, from strata-raft before checkpoint snapshots); this version reads format 2",
        ));
    }
    if magic != MAGIC {
        return Err(corrupt(
            "not a strata-raft snapshot of format 2 (bad magic)",
        ));
    }
    let meta_len = r.u32()?;
    let meta = r.take(meta_len as usize)?;
    let count = r.u32()?;
    let mut files: Vec<(&str, &[u8])> = Vec::new();
    for _ in 0..count {
        let name_len = r.u16()?;
        let name = std::str::from_utf8(r.take(usize::from(name_len))?)
            .map_err(|_| corrupt("a file name is not UTF-8"))?;
        check_name(name)?;
        if files.iter().any(|(n, _)| *n == name) {
            return Err(corrupt(&format!("file {name:?} appears twice")));
        }
        let len = usize::try_from(r.u64()?).map_err(|_| corrupt("a file over usize"))?;
        files.push((name, r.take(len)?));
    }
    if !r.rest.is_empty() {
        return Err(corrupt("bytes after the last file"));
    }
    Ok(Parsed { meta, files })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AnyError> {
        if n > self.rest.len() {
            return Err(corrupt("a field runs past the end"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, AnyError> {
        let bytes = self.take(2)?;
        Ok(u16::from_le_bytes(
            bytes.try_into().map_err(|_| corrupt("u16"))?,
        ))
    }

    fn u32(&mut self) -> Result<u32, AnyError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes(
            bytes.try_into().map_err(|_| corrupt("u32"))?,
        ))
    }

    fn u64(&mut self) -> Result<u64, AnyError> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(
            bytes.try_into().map_err(|_| corrupt("u64"))?,
        ))
    }
}

fn corrupt(what: &str) -> AnyError {
    AnyError::error(format!("invalid snapshot stream: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<u8> {
        let mut w = Writer::new(b"{\"m\":1}").expect("meta fits");
        w.file("CURRENT", b"MANIFEST-000004\n").expect("fits");
        w.file("000003.log", b"").expect("fits");
        w.finish()
    }

    #[test]
    fn round_trips() {
        let data = stream();
        let parsed = parse(&data).expect("valid");
        assert_eq!(parsed.meta, b"{\"m\":1}");
        assert_eq!(
            parsed.files,
            vec![
                ("CURRENT", &b"MANIFEST-000004\n"[..]),
                ("000003.log", &b""[..])
            ]
        );
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_refused() {
        let data = stream();
        for len in 0..data.len() {
            assert!(parse(&data[..len]).is_err(), "cut to {len} bytes");
        }
        for i in 0..data.len() * 8 {
            let mut damaged = data.clone();
            damaged[i / 8] ^= 1 << (i % 8);
            assert!(parse(&damaged).is_err(), "bit {i} flipped");
        }
    }

    /// A stream whose checksum is right but whose names would leave the directory
    /// (or repeat) is refused: the checksum guards against damage, not against a
    /// sender writing such names.
    #[test]
    fn names_that_leave_the_directory_or_repeat_are_refused() {
        let with = |names: &[&str]| {
            let mut buf = MAGIC.to_vec();
            buf.extend_from_slice(&0u32.to_le_bytes());
            buf.extend_from_slice(&(names.len() as u32).to_le_bytes());
            for name in names {
                buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
                buf.extend_from_slice(name.as_bytes());
                buf.extend_from_slice(&0u64.to_le_bytes());
            }
            let crc = crc32fast::hash(&buf);
            buf.extend_from_slice(&crc.to_le_bytes());
            buf
        };
        assert!(parse(&with(&["CURRENT", "000001.sst"])).is_ok());
        for bad in [
            &["../x"][..],
            &[".."],
            &["."],
            &["a/b"],
            &["a\\b"],
            &[""],
            &["x", "x"],
        ] {
            let err = parse(&with(bad)).err().expect("refused");
            assert!(
                err.to_string().contains("invalid snapshot stream"),
                "{bad:?}: {err}"
            );
        }
        let mut w = Writer::new(b"").expect("meta fits");
        assert!(w.file("../escape", b"").is_err());
    }

    #[test]
    fn a_format_1_stream_is_named_as_such() {
        let mut buf = MAGIC_V1.to_vec();
        buf.extend_from_slice(&[0; 12]);
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        let err = parse(&buf).err().expect("refused");
        assert!(err.to_string().contains("format 1"), "{err}");
    }
}
