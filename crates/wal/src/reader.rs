//! [`LogReader`]: decodes records and decides, per [`RecoveryMode`], what damage means.
//!
//! The reader reads the file in 1 MiB chunks of whole blocks, checks every fragment's
//! header and checksum before using it, and reassembles fragmented records. When it meets
//! damage it looks at what follows to tell a *torn tail* (a crash cut the last append
//! short: nothing intact after the damage) from *corruption* (intact records follow).

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use strata_core::{Error, RandomAccessFile, Result};

use crate::format::{
    BLOCK_SIZE, FormatVersion, FragmentType, HEADER_LEN, LOG_HEADER_PAYLOAD_LEN, MAGIC, RawHeader,
    fragment_crc,
};

/// How the reader treats damage. `docs/format/wal.md` has the full table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Damage with no intact record after it (a crash mid-append, a zero-filled tail) ends
    /// the log cleanly and is reported in [`LogEnd::TornTail`]; damage followed by an
    /// intact record is [`Error::Corruption`].
    #[default]
    TolerateTornTail,
    /// Any damage, a torn tail included, is [`Error::Corruption`].
    Absolute,
    /// Reading stops at the first damage; the log ends there and [`LogEnd`] says how many
    /// bytes were dropped. Never fails on damage, only on I/O errors, a foreign file or a
    /// newer format version.
    PointInTime,
}

/// One record read back from a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Offset of the record's first fragment header in the file.
    pub offset: u64,
    /// The record's bytes, exactly as given to [`LogWriter::add_record`](crate::LogWriter::add_record).
    /// A record that fit in one fragment shares the reader's read buffer (up to 1 MiB)
    /// instead of being copied: copy it out if it is kept for long.
    pub data: Bytes,
}

/// What was wrong where the reader found damage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DamageKind {
    /// The file ends inside a fragment, between a record's fragments, or inside a block's
    /// padding.
    Truncated,
    /// Seven zero bytes where a fragment header should be: preallocated or never-written
    /// space.
    ZeroFilled,
    /// A fragment's length runs past the end of its block.
    BadLength,
    /// A fragment's checksum does not match its type and payload.
    BadChecksum,
    /// Non-zero bytes in the padding at the end of a block.
    BadPadding,
    /// An intact fragment with a type byte no format version defines.
    UnknownType(u8),
    /// Intact fragments in an order the writer never produces (a `Middle` or `Last`
    /// without a `First`, a record that starts before the previous one ended, a second
    /// log header).
    OutOfOrder,
    /// The log's first fragment is intact but is not the log header.
    MissingHeader,
}

impl DamageKind {
    /// Whether a crash (a cut-short append, unwritten space) can produce this damage.
    /// Damage among intact fragments cannot, so it is never taken for a torn tail.
    fn crash_can_cause(self) -> bool {
        matches!(
            self,
            DamageKind::Truncated
                | DamageKind::ZeroFilled
                | DamageKind::BadLength
                | DamageKind::BadChecksum
                | DamageKind::BadPadding
        )
    }
}

impl fmt::Display for DamageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DamageKind::Truncated => f.write_str("file ends inside a record"),
            DamageKind::ZeroFilled => f.write_str("zero-filled space"),
            DamageKind::BadLength => f.write_str("fragment length runs past its block"),
            DamageKind::BadChecksum => f.write_str("fragment checksum mismatch"),
            DamageKind::BadPadding => f.write_str("non-zero block padding"),
            DamageKind::UnknownType(t) => write!(f, "unknown fragment type {t}"),
            DamageKind::OutOfOrder => f.write_str("fragments out of order"),
            DamageKind::MissingHeader => f.write_str("log does not start with a log header"),
        }
    }
}

/// Damage found while reading: where, and what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// File offset where the damage was detected.
    pub offset: u64,
    /// What was wrong there.
    pub kind: DamageKind,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.kind, self.offset)
    }
}

/// How reading a log stopped, once [`LogReader`] has yielded its last record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogEnd {
    /// The file ends exactly after the last record (or is empty, or holds only the log
    /// header).
    Clean {
        /// Length of the log.
        len: u64,
    },
    /// Damage with nothing intact after it: what a crash mid-append leaves.
    TornTail {
        /// End of the last intact record: the log's valid length. Truncate here before
        /// appending again.
        offset: u64,
        /// The damage that ended the log.
        damage: Damage,
        /// Bytes from `offset` to the end of the file.
        bytes_dropped: u64,
    },
    /// The records end at `len` and every byte after them is zero: space the writer
    /// reserved ahead of its appends ([`LogWriter::keep_preallocated`](crate::LogWriter::keep_preallocated)),
    /// not damage. Accepted in every mode.
    Preallocated {
        /// End of the last record: the log's valid length.
        len: u64,
        /// Zero bytes from `len` to the end of the file.
        zeros: u64,
    },
    /// [`RecoveryMode::PointInTime`] only: damage followed by intact data; reading
    /// stopped there.
    Stopped {
        /// End of the last intact record read.
        offset: u64,
        /// The damage that stopped reading.
        damage: Damage,
        /// Bytes from `offset` to the end of the file, intact ones included.
        bytes_dropped: u64,
    },
}

impl LogEnd {
    /// End of the last intact record: the prefix of the file that was used.
    pub fn valid_len(&self) -> u64 {
        match *self {
            LogEnd::Clean { len } | LogEnd::Preallocated { len, .. } => len,
            LogEnd::TornTail { offset, .. } | LogEnd::Stopped { offset, .. } => offset,
        }
    }
}

impl fmt::Display for LogEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogEnd::Clean { len } => write!(f, "clean end at offset {len}"),
            LogEnd::Preallocated { len, zeros } => write!(
                f,
                "clean end at offset {len}, followed by {zeros} bytes of preallocated zeros"
            ),
            LogEnd::TornTail {
                offset,
                damage,
                bytes_dropped,
            } => write!(
                f,
                "torn tail at offset {offset} ({damage}); {bytes_dropped} bytes dropped"
            ),
            LogEnd::Stopped {
                offset,
                damage,
                bytes_dropped,
            } => write!(
                f,
                "stopped at damage ({damage}) with intact data after it; \
                 {bytes_dropped} bytes dropped from offset {offset}"
            ),
        }
    }
}

/// Bytes read from the file at a time: whole blocks, so a fragment never straddles two
/// reads, and large enough that a multi-MiB record takes a handful of reads.
const CHUNK_LEN: u64 = 32 * BLOCK_SIZE as u64;

/// Reads the records of a log in order.
///
/// Use it as an iterator of `Result<Record>`; after the last record, [`end`](Self::end)
/// says how reading stopped. After an error the iterator yields nothing more.
///
/// Memory use is bounded by the file: one chunk of at most 1 MiB plus the record being
/// reassembled, which cannot be longer than the file.
pub struct LogReader {
    file: Arc<dyn RandomAccessFile>,
    mode: RecoveryMode,
    file_len: u64,
    /// The loaded chunk and its file offset.
    chunk: Bytes,
    chunk_start: u64,
    /// Offset of the next fragment.
    pos: u64,
    /// End of the last intact record (or of the log header).
    record_end: u64,
    /// A record whose `First` fragment was read: its offset and bytes so far.
    partial: Option<(u64, Vec<u8>)>,
    header_seen: bool,
    end: Option<LogEnd>,
    failed: bool,
}

impl fmt::Debug for LogReader {
    // The chunk and the partial record are buffers: show where the reader is instead.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogReader")
            .field("path", &self.file.path())
            .field("mode", &self.mode)
            .field("file_len", &self.file_len)
            .field("pos", &self.pos)
            .field("record_end", &self.record_end)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// One step of decoding.
enum Step {
    /// No more bytes.
    Eof,
    /// An intact fragment whose payload is `payload` within the loaded chunk.
    Fragment {
        offset: u64,
        ty: FragmentType,
        payload: Range<usize>,
    },
    /// Damage.
    Damaged(Damage),
}

impl LogReader {
    /// A reader of `file` from its start.
    pub fn new(file: Arc<dyn RandomAccessFile>, mode: RecoveryMode) -> Self {
        let file_len = file.len();
        LogReader {
            file,
            mode,
            file_len,
            chunk: Bytes::new(),
            chunk_start: 0,
            pos: 0,
            record_end: 0,
            partial: None,
            header_seen: false,
            end: None,
            failed: false,
        }
    }

    /// How reading stopped; `None` until the last record has been yielded (and after an
    /// error).
    pub fn end(&self) -> Option<&LogEnd> {
        self.end.as_ref()
    }

    /// The next record, `Ok(None)` at the end of the log.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        if self.end.is_some() || self.failed {
            return Ok(None);
        }
        let result = self.read_record();
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn read_record(&mut self) -> Result<Option<Record>> {
        loop {
            let (offset, ty, payload) = match self.next_fragment()? {
                Step::Eof => {
                    if self.partial.is_none() && self.record_end == self.file_len {
                        self.end = Some(LogEnd::Clean { len: self.file_len });
                        return Ok(None);
                    }
                    // Cut inside a record's fragments or inside block padding.
                    let damage = Damage {
                        offset: self.file_len,
                        kind: DamageKind::Truncated,
                    };
                    return self.damaged(damage);
                }
                Step::Damaged(damage) => return self.damaged(damage),
                Step::Fragment {
                    offset,
                    ty,
                    payload,
                } => (offset, ty, payload),
            };
            let out_of_order = Damage {
                offset,
                kind: DamageKind::OutOfOrder,
            };
            if !self.header_seen {
                if ty != FragmentType::Header {
                    let damage = Damage {
                        offset,
                        kind: DamageKind::MissingHeader,
                    };
                    return self.damaged(damage);
                }
                self.check_log_header(payload)?;
                self.header_seen = true;
                self.record_end = self.pos;
                continue;
            }
            match (ty, self.partial.take()) {
                (FragmentType::Full, None) => {
                    // Checked so the zero-copy `slice` below cannot panic.
                    self.chunk_bytes(payload.clone(), offset)?;
                    self.record_end = self.pos;
                    let data = self.chunk.slice(payload);
                    return Ok(Some(Record { offset, data }));
                }
                (FragmentType::First, None) => {
                    let bytes = self.chunk_bytes(payload, offset)?;
                    self.partial = Some((offset, bytes.to_vec()));
                }
                (FragmentType::Middle, Some((start, mut data))) => {
                    data.extend_from_slice(self.chunk_bytes(payload, offset)?);
                    self.partial = Some((start, data));
                }
                (FragmentType::Last, Some((start, mut data))) => {
                    data.extend_from_slice(self.chunk_bytes(payload, offset)?);
                    self.record_end = self.pos;
                    return Ok(Some(Record {
                        offset: start,
                        data: Bytes::from(data),
                    }));
                }
                _ => return self.damaged(out_of_order),
            }
        }
    }

    /// Checks the log header's magic and version; a foreign file or a newer version is an
    /// error in every mode (no recovery mode can make sense of it).
    fn check_log_header(&self, payload: Range<usize>) -> Result<()> {
        let p = self.chunk_bytes(payload, 0)?;
        let (magic, version) = p.split_at(p.len().min(MAGIC.len()));
        if magic != MAGIC {
            return Err(self.corruption(0, "not a Strata record log (bad magic)".into()));
        }
        let version = version
            .get(..4)
            .and_then(|v| v.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| self.corruption(0, "log header too short".into()))?;
        match FormatVersion::from_u32(version) {
            Some(FormatVersion::V1) if p.len() == LOG_HEADER_PAYLOAD_LEN => Ok(()),
            Some(FormatVersion::V1) => Err(self.corruption(
                0,
                format!("log header of {} bytes for format version 1", p.len()),
            )),
            None if version > FormatVersion::CURRENT as u32 => Err(Error::NotSupported(format!(
                "{} is record-log format version {version}; this build reads up to {}",
                self.file.path().display(),
                FormatVersion::CURRENT as u32
            ))),
            None => Err(self.corruption(0, format!("invalid log format version {version}"))),
        }
    }

    /// Decides what `damage` means in this mode, and either ends the log or fails.
    fn damaged(&mut self, damage: Damage) -> Result<Option<Record>> {
        // Nothing but zeros after the last record: the writer's own preallocated space.
        // A file of zeros alone is that too: space reserved before the log's first
        // append (header included) reached it, which leaves nothing acknowledged.
        if self.partial.is_none() && self.all_zero_from(self.record_end)? {
            self.end = Some(LogEnd::Preallocated {
                len: self.record_end,
                zeros: self.file_len - self.record_end,
            });
            return Ok(None);
        }
        if self.mode == RecoveryMode::Absolute {
            return Err(self.corruption(damage.offset, damage.kind.to_string()));
        }
        let went_on_at = if damage.kind.crash_can_cause() {
            self.log_went_on_after(damage)?
        } else {
            // The damage is itself an intact fragment: never a torn tail.
            Some(damage.offset)
        };
        let offset = self.record_end;
        let bytes_dropped = self.file_len.saturating_sub(offset);
        self.end = Some(match (self.mode, went_on_at) {
            (_, None) => LogEnd::TornTail {
                offset,
                damage,
                bytes_dropped,
            },
            (RecoveryMode::PointInTime, Some(_)) => LogEnd::Stopped {
                offset,
                damage,
                bytes_dropped,
            },
            (_, Some(at)) => {
                let reason = if at == damage.offset {
                    damage.kind.to_string()
                } else {
                    format!(
                        "{}, followed by intact log data at offset {at} (not a torn tail)",
                        damage.kind
                    )
                };
                return Err(self.corruption(damage.offset, reason));
            }
        });
        Ok(None)
    }

    /// Where the log shows it went on after damage a crash could have caused, if it
    /// does; `None` means the damage is a torn tail.
    ///
    /// A crash cuts the last append short, so a torn tail has nothing after it that the
    /// writer finished. Two things prove the log went on:
    /// - an intact fragment that starts a record (`Full`, `First`, a header), at *any*
    ///   byte after the damage, the damaged block included: a damaged length field hides
    ///   where the next fragment starts, so fragment boundaries cannot be trusted;
    /// - after a zero-filled header, any non-zero byte. Preallocated space is zeros to
    ///   the end of the file, so data after a zero run means the zeros are damage. The
    ///   one exception is an intact continuation fragment (`Middle`, `Last`) at a block
    ///   start: the tail of the last record, whose first block never reached the disk
    ///   when its append was written back out of order.
    ///
    /// Continuation fragments never prove anything by themselves: they belong to the
    /// damaged record. The search is linear in the bytes after the damage and computes a
    /// checksum only where a plausible header is found; it runs only on damage.
    fn log_went_on_after(&mut self, damage: Damage) -> Result<Option<u64>> {
        if let Some(at) = self.record_start_after(damage.offset)? {
            return Ok(Some(at));
        }
        if damage.kind == DamageKind::ZeroFilled {
            return self.data_after_zeros(damage.offset);
        }
        Ok(None)
    }

    /// Offset of the first intact fragment after `damage_offset` that is not a
    /// continuation fragment, trying every byte position.
    fn record_start_after(&mut self, damage_offset: u64) -> Result<Option<u64>> {
        let block = BLOCK_SIZE as u64;
        let mut from = damage_offset + 1;
        while from < self.file_len {
            let block_end = ((from / block + 1) * block).min(self.file_len);
            let bytes = self.load(from, (block_end - from) as usize)?;
            if let Some(i) = first_record_start(bytes) {
                return Ok(Some(from + i as u64));
            }
            from = block_end;
        }
        Ok(None)
    }

    /// After a zero-filled header at `zeros_at`: the offset of the first non-zero byte
    /// that is not an intact continuation fragment at a block start, if any.
    fn data_after_zeros(&mut self, zeros_at: u64) -> Result<Option<u64>> {
        let block = BLOCK_SIZE as u64;
        let mut p = zeros_at;
        while p < self.file_len {
            let block_end = ((p / block + 1) * block).min(self.file_len);
            let bytes = self.load(p, (block_end - p) as usize)?;
            if p.is_multiple_of(block)
                && let Some(len) = intact_continuation(bytes)
            {
                p += (HEADER_LEN + len) as u64;
                continue;
            }
            match bytes.iter().position(|&b| b != 0) {
                Some(i) => return Ok(Some(p + i as u64)),
                None => p = block_end,
            }
        }
        Ok(None)
    }

    /// Whether every byte from `from` to the end of the file is zero.
    fn all_zero_from(&mut self, from: u64) -> Result<bool> {
        let block = BLOCK_SIZE as u64;
        let mut p = from;
        while p < self.file_len {
            let block_end = ((p / block + 1) * block).min(self.file_len);
            if self
                .load(p, (block_end - p) as usize)?
                .iter()
                .any(|&b| b != 0)
            {
                return Ok(false);
            }
            p = block_end;
        }
        Ok(true)
    }

    /// Decodes the fragment at `self.pos`, skipping block padding.
    fn next_fragment(&mut self) -> Result<Step> {
        let block = BLOCK_SIZE as u64;
        loop {
            let pos = self.pos;
            if pos >= self.file_len {
                return Ok(Step::Eof);
            }
            let block_left = block - pos % block;
            let in_file = block_left.min(self.file_len - pos) as usize;
            let damaged = |kind| Ok(Step::Damaged(Damage { offset: pos, kind }));
            let bytes = self.load(pos, in_file)?;
            if block_left < HEADER_LEN as u64 {
                if bytes.iter().any(|&b| b != 0) {
                    return damaged(DamageKind::BadPadding);
                }
                self.pos += block_left;
                continue;
            }
            let Some(h) = RawHeader::decode(bytes) else {
                return damaged(DamageKind::Truncated);
            };
            if h.is_zero() {
                return damaged(DamageKind::ZeroFilled);
            }
            let payload = bytes.get(HEADER_LEN..HEADER_LEN + h.len);
            let kind = match payload {
                _ if (HEADER_LEN + h.len) as u64 > block_left => DamageKind::BadLength,
                None => DamageKind::Truncated,
                Some(p) if fragment_crc(h.type_byte, p) != h.crc => DamageKind::BadChecksum,
                Some(_) => match FragmentType::from_u8(h.type_byte) {
                    Some(ty) => {
                        let start = (pos - self.chunk_start) as usize + HEADER_LEN;
                        self.pos = pos + (HEADER_LEN + h.len) as u64;
                        return Ok(Step::Fragment {
                            offset: pos,
                            ty,
                            payload: start..start + h.len,
                        });
                    }
                    None => DamageKind::UnknownType(h.type_byte),
                },
            };
            return damaged(kind);
        }
    }

    /// The `len` bytes at `offset`, which lie within one block (so within one chunk),
    /// reading that chunk if it is not the loaded one.
    fn load(&mut self, offset: u64, len: usize) -> Result<&[u8]> {
        let loaded = offset >= self.chunk_start
            && offset + len as u64 <= self.chunk_start + self.chunk.len() as u64;
        if !loaded {
            let start = offset / CHUNK_LEN * CHUNK_LEN;
            let chunk_len = CHUNK_LEN.min(self.file_len.saturating_sub(start)) as usize;
            self.chunk = self.file.read_bytes(start, chunk_len)?;
            self.chunk_start = start;
        }
        let rel = offset.saturating_sub(self.chunk_start) as usize;
        match self.chunk.get(rel..rel.saturating_add(len)) {
            Some(bytes) => Ok(bytes),
            None => Err(self.corruption(offset, "read past the end of the log file".into())),
        }
    }

    /// Bytes of the loaded chunk; `range` was validated when the fragment was decoded, so
    /// failure here is a bug in this file, reported rather than panicking.
    fn chunk_bytes(&self, range: Range<usize>, offset: u64) -> Result<&[u8]> {
        self.chunk
            .get(range)
            .ok_or_else(|| self.corruption(offset, "fragment outside the loaded chunk".into()))
    }

    fn corruption(&self, offset: u64, reason: String) -> Error {
        Error::corruption(self.file.path(), offset, reason)
    }
}

/// The intact fragment `bytes` (the rest of one block) starts with, as its type and
/// payload length, if it starts with one.
fn intact_fragment(bytes: &[u8]) -> Option<(FragmentType, usize)> {
    let h = RawHeader::decode(bytes)?;
    let ty = FragmentType::from_u8(h.type_byte)?;
    let payload = bytes.get(HEADER_LEN..HEADER_LEN + h.len)?;
    (fragment_crc(h.type_byte, payload) == h.crc).then_some((ty, h.len))
}

/// Payload length of the intact `Middle` or `Last` fragment `bytes` starts with.
fn intact_continuation(bytes: &[u8]) -> Option<usize> {
    match intact_fragment(bytes)? {
        (FragmentType::Middle | FragmentType::Last, len) => Some(len),
        _ => None,
    }
}

/// Index of the first position in `bytes` (the rest of one block) where an intact
/// fragment that is not a continuation fragment starts. The type byte is checked first,
/// so most positions cost one comparison and few a checksum.
fn first_record_start(bytes: &[u8]) -> Option<usize> {
    let last = bytes.len().checked_sub(HEADER_LEN)?;
    (0..=last).find(|&i| {
        let starts_record = matches!(
            bytes
                .get(i + HEADER_LEN - 1)
                .copied()
                .and_then(FragmentType::from_u8),
            Some(FragmentType::Full | FragmentType::First | FragmentType::Header)
        );
        starts_record && bytes.get(i..).and_then(intact_fragment).is_some()
    })
}

impl Iterator for LogReader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}
