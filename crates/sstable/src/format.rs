//! Framing shared by the builder and the reader: block handles, block trailers with
//! their context-mixed checksums, the footer and the format version.
//!
//! The full byte-level description is `docs/format/sstable.md`; in short:
//!
//! ```text
//! +--------------+-----+--------------+--------+------------+-------+--------+
//! | data block 0 | ... | data block N | filter | properties | index | footer |
//! +--------------+-----+--------------+--------+------------+-------+--------+
//! every block: [stored bytes (handle.size)] [compression u8] [checksum u32 LE]
//! checksum = crc32(stored bytes ‖ compression ‖ block offset u64 LE ‖ file id u64 LE)
//!
//! footer v1 (76 bytes, little-endian):
//!  0  filter.offset u64      8  filter.size u64
//! 16  properties.offset u64 24  properties.size u64
//! 32  index.offset u64      40  index.size u64
//! 48  file id u64
//! 56  footer length u32 (76)          -+
//! 60  format version u32 (1)           | the 20-byte tail: the same in
//! 64  footer checksum u32              | every format version
//! 68  magic "strataSS" (8 bytes)      -+
//! footer checksum = crc32(footer bytes 0..64 ‖ footer offset u64 LE)
//!
//! version 3 (tables holding range tombstones) adds a range-deletion block between the
//! filter and the properties, and its handle to the footer (92 bytes):
//!  0  filter  16  properties  32  index  48  range deletions (offset u64, size u64)
//! 64  file id u64, then the same 20-byte tail (footer length 92, version 3)
//!
//! version 4 (tables holding merge operands, kind 2) has version 3's layout; its
//! range-deletion block may be empty
//! ```
//!
//! Mixing the block offset and a per-file identifier into every checksum (as RocksDB's
//! format 6 does) makes a block that is intact but in the wrong place — another offset,
//! or another file after a misdirected write — fail verification too.

use std::path::Path;

use strata_core::varint::{get_varint64, put_varint64, read_u32_le, read_u64_le};
use strata_core::{Error, Result};

/// Bytes identifying a Strata table, the last 8 of every table file.
pub const TABLE_MAGIC: [u8; 8] = *b"strataSS";

/// Bytes after every block: compression type (1) + checksum (4).
pub const BLOCK_TRAILER_LEN: usize = 1 + 4;

/// Bytes at the end of every table in every format version:
/// footer length (4) + format version (4) + footer checksum (4) + magic (8).
pub const FOOTER_TAIL_LEN: usize = 4 + 4 + 4 + 8;

/// Bytes of a version-1 footer: three handles (3 × 16) + file id (8) + the tail.
pub const FOOTER_V1_LEN: usize = 3 * 16 + 8 + FOOTER_TAIL_LEN;

/// Bytes of a version-3 footer: four handles (4 × 16) + file id (8) + the tail.
pub const FOOTER_V3_LEN: usize = 4 * 16 + 8 + FOOTER_TAIL_LEN;

/// Largest footer length a reader accepts before it knows the version: bounds the
/// read a damaged length field could ask for.
const MAX_FOOTER_LEN: usize = 4096;

const _: () = assert!(FOOTER_V1_LEN == 76);
const _: () = assert!(FOOTER_TAIL_LEN == 20);
const _: () = assert!(FOOTER_V3_LEN == 92);

/// On-disk format versions, oldest first. A reader opens every version up to
/// [`FormatVersion::CURRENT`] and refuses newer ones with `Error::NotSupported`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FormatVersion {
    /// Prefix-compressed data blocks with restart arrays, one full-table xxh3 Bloom
    /// filter, a tagged properties block, an index of shortened separators, block
    /// checksums mixed with the block offset and the file id.
    V1 = 1,
    /// Version 1 plus compression byte 2 (zstd). Written only by tables that use zstd,
    /// so that a build which cannot decode zstd refuses them (`NotSupported`) instead of
    /// calling every block damaged; every other table is still written as version 1.
    V2 = 2,
    /// Version 2 plus a range-deletion block (fragmented range tombstones) and its
    /// handle in a longer footer. Written only by tables that hold range tombstones, so
    /// a build that does not know them refuses the table (`NotSupported`) rather than
    /// reading it without its tombstones — which would bring deleted keys back.
    V3 = 3,
    /// Version 3 plus merge operands (internal-key kind 2) and expiring values (kind 3)
    /// in data blocks; the footer and range-deletion block as in version 3 (the block
    /// may hold no tombstones). Written only by tables that hold either, so a build that
    /// does not know them refuses the table (`NotSupported`) rather than calling its
    /// keys damaged.
    V4 = 4,
}

impl FormatVersion {
    /// The newest version this build reads and writes.
    pub const CURRENT: FormatVersion = FormatVersion::V4;

    /// The version a table is written in: the oldest that defines its compression,
    /// the range-deletion block if it holds range tombstones, and merge operands if it
    /// holds any.
    pub fn for_table(
        compression: Compression,
        has_range_tombstones: bool,
        has_merge_operands: bool,
    ) -> FormatVersion {
        if has_merge_operands {
            FormatVersion::V4
        } else if has_range_tombstones {
            FormatVersion::V3
        } else {
            Self::for_compression(compression)
        }
    }

    /// Whether this version's footer holds the range-deletion block's handle.
    pub fn has_range_del_block(self) -> bool {
        self >= FormatVersion::V3
    }

    /// Whether data blocks of this version may hold merge operands and expiring
    /// values.
    pub fn allows_merge_operands(self) -> bool {
        self >= FormatVersion::V4
    }

    /// The version a table compressed with `compression` is written in: the oldest
    /// that defines it.
    pub fn for_compression(compression: Compression) -> FormatVersion {
        match compression {
            Compression::None | Compression::Lz4 => FormatVersion::V1,
            Compression::Zstd => FormatVersion::V2,
        }
    }

    /// The number stored in the footer.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// How a block's stored bytes are encoded (the trailer's first byte).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Stored as is.
    #[default]
    None,
    /// LZ4 block format (`lz4_flex`), preceded by the uncompressed length as LEB128.
    Lz4,
    /// A zstd frame (level [`ZSTD_LEVEL`]), preceded by the uncompressed length as
    /// LEB128. Format version 2; needs the crate's `zstd` feature to write or read.
    Zstd,
}

/// The zstd level tables are written with: zstd's own default, which on block-sized
/// inputs compresses about a third better than LZ4 at a few times its CPU cost.
pub const ZSTD_LEVEL: i32 = 3;

impl Compression {
    /// The trailer byte.
    pub fn as_u8(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Lz4 => 1,
            Compression::Zstd => 2,
        }
    }

    /// Decodes a trailer byte; `None` for a byte no version defines.
    pub fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Compression::None),
            1 => Some(Compression::Lz4),
            2 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Where a block lives: its offset in the file and the length of its stored bytes,
/// *excluding* the [`BLOCK_TRAILER_LEN`]-byte trailer that follows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BlockHandle {
    /// Offset of the block's first byte in the file.
    pub offset: u64,
    /// Length of the stored (possibly compressed) bytes, trailer excluded.
    pub size: u64,
}

impl BlockHandle {
    /// Offset just past the block's trailer, where the next block starts.
    /// `None` on overflow (only a damaged handle can overflow).
    pub fn end_with_trailer(&self) -> Option<u64> {
        self.offset
            .checked_add(self.size)?
            .checked_add(BLOCK_TRAILER_LEN as u64)
    }

    /// Appends the handle as two LEB128 numbers (the index block's value encoding).
    pub(crate) fn encode_varint(&self, dst: &mut Vec<u8>) {
        put_varint64(dst, self.offset);
        put_varint64(dst, self.size);
    }

    /// Decodes [`encode_varint`](Self::encode_varint)'s output, which must fill `src`.
    pub(crate) fn decode_varint(src: &[u8]) -> Option<Self> {
        let (offset, n) = get_varint64(src)?;
        let (size, m) = get_varint64(src.get(n..)?)?;
        (n + m == src.len()).then_some(BlockHandle { offset, size })
    }
}

/// The checksum stored in a block's trailer: CRC-32 over the stored bytes, the
/// compression byte, the block's offset and the file's id.
pub(crate) fn block_checksum(stored: &[u8], compression: u8, offset: u64, file_id: u64) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(stored);
    h.update(&[compression]);
    h.update(&offset.to_le_bytes());
    h.update(&file_id.to_le_bytes());
    h.finalize()
}

fn footer_checksum(covered: &[u8], footer_offset: u64) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(covered);
    h.update(&footer_offset.to_le_bytes());
    h.finalize()
}

/// Where a table's meta blocks were written (the footer's handles).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MetaHandles {
    pub filter: BlockHandle,
    pub properties: BlockHandle,
    pub index: BlockHandle,
    pub range_del: Option<BlockHandle>,
}

/// The decoded footer: where the meta blocks are, and the file's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    /// The format version the file was written in.
    pub version: FormatVersion,
    /// Random per-file identifier mixed into every block checksum.
    pub file_id: u64,
    /// The Bloom filter block.
    pub filter: BlockHandle,
    /// The properties block.
    pub properties: BlockHandle,
    /// The index block.
    pub index: BlockHandle,
    /// The range-deletion block (version 3 only).
    pub range_del: Option<BlockHandle>,
    /// Offset of the footer itself (= end of the index block's trailer).
    pub offset: u64,
}

impl Footer {
    /// Encodes a footer of `version` that will start at `footer_offset`. Versions 1 and
    /// 2 share a layout; version 3 (given `range_del`) adds the range-deletion handle.
    pub(crate) fn encode(
        version: FormatVersion,
        file_id: u64,
        handles: MetaHandles,
        footer_offset: u64,
    ) -> Vec<u8> {
        let len = if handles.range_del.is_some() {
            FOOTER_V3_LEN
        } else {
            FOOTER_V1_LEN
        };
        let mut out = Vec::with_capacity(len);
        let all = [handles.filter, handles.properties, handles.index];
        for h in all.iter().chain(handles.range_del.as_ref()) {
            out.extend_from_slice(&h.offset.to_le_bytes());
            out.extend_from_slice(&h.size.to_le_bytes());
        }
        out.extend_from_slice(&file_id.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&version.as_u32().to_le_bytes());
        let crc = footer_checksum(&out, footer_offset);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&TABLE_MAGIC);
        out
    }

    /// Decodes the footer of a file of `file_len` bytes, reading through `read`
    /// (`read(offset, len)`). Checks, in order: the magic, the footer length, the footer
    /// checksum, then the version — so damage is `Corruption`, and only an intact footer
    /// of a newer version is `NotSupported`.
    pub(crate) fn read(
        path: &Path,
        file_len: u64,
        read: impl Fn(u64, usize) -> Result<Vec<u8>>,
    ) -> Result<Footer> {
        let corrupt = |offset: u64, reason: String| Error::corruption(path, offset, reason);
        let tail_offset = file_len
            .checked_sub(FOOTER_TAIL_LEN as u64)
            .ok_or_else(|| {
                corrupt(
                    0,
                    format!("file of {file_len} bytes is too short for a table footer"),
                )
            })?;
        let tail = read(tail_offset, FOOTER_TAIL_LEN)?;
        let magic_offset = FOOTER_TAIL_LEN - TABLE_MAGIC.len();
        if tail.get(magic_offset..) != Some(&TABLE_MAGIC[..]) {
            return Err(corrupt(
                file_len - TABLE_MAGIC.len() as u64,
                "bad magic number: not a Strata table, or truncated".into(),
            ));
        }
        let footer_len = read_u32_le(&tail, 0).unwrap_or(0) as usize;
        if !(FOOTER_TAIL_LEN..=MAX_FOOTER_LEN).contains(&footer_len) || footer_len as u64 > file_len
        {
            return Err(corrupt(
                tail_offset,
                format!("footer length {footer_len} is out of range"),
            ));
        }
        let footer_offset = file_len - footer_len as u64;
        let bytes = read(footer_offset, footer_len)?;
        // The checksum sits just before the magic and covers everything before itself.
        let crc_pos = footer_len - TABLE_MAGIC.len() - 4;
        let covered = bytes.get(..crc_pos).unwrap_or_default();
        let stored_crc = read_u32_le(&bytes, crc_pos).unwrap_or(0);
        if footer_checksum(covered, footer_offset) != stored_crc {
            return Err(corrupt(footer_offset, "footer checksum mismatch".into()));
        }
        let version = read_u32_le(&tail, 4).unwrap_or(0);
        let version = match version {
            1 => FormatVersion::V1,
            2 => FormatVersion::V2,
            3 => FormatVersion::V3,
            4 => FormatVersion::V4,
            v if v > FormatVersion::CURRENT.as_u32() => {
                return Err(Error::NotSupported(format!(
                    "{} has table format version {v}; this build reads versions up to {}",
                    path.display(),
                    FormatVersion::CURRENT.as_u32()
                )));
            }
            v => {
                return Err(corrupt(
                    tail_offset + 4,
                    format!("unknown table format version {v}"),
                ));
            }
        };
        let expected_len = if version.has_range_del_block() {
            FOOTER_V3_LEN
        } else {
            FOOTER_V1_LEN
        };
        if footer_len != expected_len {
            return Err(corrupt(
                tail_offset,
                format!(
                    "a version-{} footer must be {expected_len} bytes, not {footer_len}",
                    version.as_u32()
                ),
            ));
        }
        let u64_at = |pos: usize| read_u64_le(&bytes, pos).unwrap_or(0);
        let handle_at = |pos: usize| BlockHandle {
            offset: u64_at(pos),
            size: u64_at(pos + 8),
        };
        let range_del = version.has_range_del_block().then(|| handle_at(48));
        let footer = Footer {
            version,
            filter: handle_at(0),
            properties: handle_at(16),
            index: handle_at(32),
            range_del,
            file_id: u64_at(if range_del.is_some() { 64 } else { 48 }),
            offset: footer_offset,
        };
        // The meta blocks are written back to back just before the footer; anything
        // else is damage the checksum happened to miss (or a writer bug).
        let after_filter = footer.range_del.unwrap_or(footer.properties);
        let contiguous = footer.filter.end_with_trailer() == Some(after_filter.offset)
            && footer
                .range_del
                .is_none_or(|r| r.end_with_trailer() == Some(footer.properties.offset))
            && footer.properties.end_with_trailer() == Some(footer.index.offset)
            && footer.index.end_with_trailer() == Some(footer_offset);
        if !contiguous {
            return Err(corrupt(
                footer_offset,
                "footer block handles are not contiguous before the footer".into(),
            ));
        }
        Ok(footer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_handle_varint_round_trips_and_rejects_trailing_bytes() {
        let h = BlockHandle {
            offset: 1 << 40,
            size: 4096,
        };
        let mut buf = Vec::new();
        h.encode_varint(&mut buf);
        assert_eq!(BlockHandle::decode_varint(&buf), Some(h));
        buf.push(0);
        assert_eq!(BlockHandle::decode_varint(&buf), None);
        assert_eq!(BlockHandle::decode_varint(&buf[..2]), None);
    }

    #[test]
    fn checksum_depends_on_offset_and_file_id() {
        let base = block_checksum(b"abc", 0, 100, 7);
        assert_ne!(base, block_checksum(b"abc", 0, 101, 7));
        assert_ne!(base, block_checksum(b"abc", 0, 100, 8));
        assert_ne!(base, block_checksum(b"abc", 1, 100, 7));
        assert_eq!(base, block_checksum(b"abc", 0, 100, 7));
    }

    fn handles() -> (BlockHandle, BlockHandle, BlockHandle) {
        let f = BlockHandle {
            offset: 10,
            size: 5,
        };
        let p = BlockHandle {
            offset: 20,
            size: 7,
        };
        let i = BlockHandle {
            offset: 32,
            size: 3,
        };
        (f, p, i)
    }

    fn meta(
        filter: BlockHandle,
        properties: BlockHandle,
        index: BlockHandle,
        range_del: Option<BlockHandle>,
    ) -> MetaHandles {
        MetaHandles {
            filter,
            properties,
            index,
            range_del,
        }
    }

    fn file_with_footer() -> Vec<u8> {
        let (f, p, i) = handles();
        let mut file = vec![0u8; 40];
        file.extend_from_slice(&Footer::encode(
            FormatVersion::V1,
            99,
            meta(f, p, i, None),
            40,
        ));
        file
    }

    fn read_from(file: &[u8]) -> impl Fn(u64, usize) -> Result<Vec<u8>> + '_ {
        move |off, len| Ok(file[off as usize..off as usize + len].to_vec())
    }

    #[test]
    fn footer_round_trips() {
        let file = file_with_footer();
        let footer = Footer::read(Path::new("t"), file.len() as u64, read_from(&file)).unwrap();
        let (f, p, i) = handles();
        assert_eq!(
            footer,
            Footer {
                version: FormatVersion::V1,
                file_id: 99,
                filter: f,
                properties: p,
                index: i,
                range_del: None,
                offset: 40
            }
        );
    }

    #[test]
    fn every_footer_bit_flip_is_corruption() {
        let file = file_with_footer();
        for byte in 40..file.len() {
            for bit in 0..8 {
                let mut damaged = file.clone();
                damaged[byte] ^= 1 << bit;
                let err = Footer::read(Path::new("t"), file.len() as u64, read_from(&damaged))
                    .unwrap_err();
                assert!(err.is_corruption(), "byte {byte} bit {bit}: {err}");
            }
        }
    }

    #[test]
    fn a_version_2_footer_round_trips() {
        let (f, p, i) = handles();
        let mut file = vec![0u8; 40];
        file.extend_from_slice(&Footer::encode(
            FormatVersion::V2,
            7,
            meta(f, p, i, None),
            40,
        ));
        let footer = Footer::read(Path::new("t"), file.len() as u64, read_from(&file)).unwrap();
        assert_eq!(footer.version, FormatVersion::V2);
        assert_eq!((footer.file_id, footer.index), (7, i));
    }

    #[test]
    fn a_version_3_footer_carries_the_range_deletion_handle() {
        // filter 10..20, range deletions 20..27, properties 27..39, index 39..47.
        let f = BlockHandle {
            offset: 10,
            size: 5,
        };
        let r = BlockHandle {
            offset: 20,
            size: 2,
        };
        let p = BlockHandle {
            offset: 27,
            size: 7,
        };
        let i = BlockHandle {
            offset: 39,
            size: 3,
        };
        let mut file = vec![0u8; 47];
        file.extend_from_slice(&Footer::encode(
            FormatVersion::V3,
            5,
            meta(f, p, i, Some(r)),
            47,
        ));
        assert_eq!(file.len() - 47, FOOTER_V3_LEN);
        let footer = Footer::read(Path::new("t"), file.len() as u64, read_from(&file)).unwrap();
        assert_eq!(footer.version, FormatVersion::V3);
        assert_eq!(
            (footer.file_id, footer.range_del, footer.properties),
            (5, Some(r), p)
        );
        for byte in 47..file.len() {
            let mut damaged = file.clone();
            damaged[byte] ^= 0x10;
            let err =
                Footer::read(Path::new("t"), file.len() as u64, read_from(&damaged)).unwrap_err();
            assert!(err.is_corruption(), "byte {byte}: {err}");
        }
    }

    #[test]
    fn newer_intact_version_is_not_supported() {
        let mut file = file_with_footer();
        let n = file.len();
        let newer = FormatVersion::CURRENT.as_u32() + 1;
        file[n - 16..n - 12].copy_from_slice(&newer.to_le_bytes());
        let crc = footer_checksum(&file[40..n - 12], 40);
        file[n - 12..n - 8].copy_from_slice(&crc.to_le_bytes());
        let err = Footer::read(Path::new("t"), n as u64, read_from(&file)).unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)), "{err}");
    }
}
