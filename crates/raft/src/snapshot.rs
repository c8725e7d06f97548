//! The snapshot stream (format 1): the state machine's keys and values at one Strata
//! snapshot, after the snapshot's metadata, closed by a checksum.
//!
//! ```text
//! magic        8 bytes   "STRSNAP1"
//! meta_len     u32 LE    then meta_len bytes: openraft's SnapshotMeta as JSON
//! records      u64 LE    the number of records that follow
//! record       key_len u32 LE, key, value_len u32 LE, value   (application keys, in order)
//! checksum     u32 LE    CRC-32 (IEEE, as crc32fast computes it) of every byte before it
//! ```
//!
//! The checksum covers a stream damaged or cut short in transfer; installing refuses
//! such a stream before touching the state machine.

use openraft::AnyError;

const MAGIC: &[u8; 8] = b"STRSNAP1";

/// Appends little-endian fields, tracking the CRC of everything written.
pub(crate) struct Writer {
    buf: Vec<u8>,
    records: u64,
    records_at: usize,
}

impl Writer {
    /// Starts a stream with `meta` (already encoded).
    pub(crate) fn new(meta: &[u8]) -> Result<Self, AnyError> {
        let mut buf = Vec::with_capacity(64 + meta.len());
        buf.extend_from_slice(MAGIC);
        put_len(&mut buf, meta.len())?;
        buf.extend_from_slice(meta);
        let records_at = buf.len();
        // The record count is patched in by `finish`.
        buf.extend_from_slice(&0u64.to_le_bytes());
        Ok(Writer {
            buf,
            records: 0,
            records_at,
        })
    }

    pub(crate) fn record(&mut self, key: &[u8], value: &[u8]) -> Result<(), AnyError> {
        put_len(&mut self.buf, key.len())?;
        self.buf.extend_from_slice(key);
        put_len(&mut self.buf, value.len())?;
        self.buf.extend_from_slice(value);
        self.records += 1;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        let count = self.records.to_le_bytes();
        self.buf[self.records_at..self.records_at + 8].copy_from_slice(&count);
        let crc = crc32fast::hash(&self.buf);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

fn put_len(buf: &mut Vec<u8>, len: usize) -> Result<(), AnyError> {
    let len = u32::try_from(len)
        .map_err(|_| AnyError::error(format!("a snapshot field of {len} bytes exceeds 4 GiB")))?;
    buf.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

/// A checked stream: its metadata bytes and its records.
pub(crate) struct Parsed<'a> {
    pub meta: &'a [u8],
    pub records: Vec<(&'a [u8], &'a [u8])>,
}

/// Checks `data` (magic, checksum, every length) and splits it.
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
    if r.take(MAGIC.len())? != MAGIC {
        return Err(corrupt(
            "not a strata-raft snapshot of format 1 (bad magic)",
        ));
    }
    let meta_len = r.u32()?;
    let meta = r.take(meta_len as usize)?;
    let count = r.u64()?;
    let mut records = Vec::new();
    for _ in 0..count {
        let key_len = r.u32()?;
        let key = r.take(key_len as usize)?;
        let value_len = r.u32()?;
        let value = r.take(value_len as usize)?;
        records.push((key, value));
    }
    if !r.rest.is_empty() {
        return Err(corrupt("bytes after the last record"));
    }
    Ok(Parsed { meta, records })
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
        w.record(b"a", b"1").expect("fits");
        w.record(b"b", b"").expect("fits");
        w.finish()
    }

    #[test]
    fn round_trips() {
        let data = stream();
        let parsed = parse(&data).expect("valid");
        assert_eq!(parsed.meta, b"{\"m\":1}");
        assert_eq!(
            parsed.records,
            vec![(&b"a"[..], &b"1"[..]), (&b"b"[..], &b""[..])]
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
}
