//! The record-log framing, shared by [`LogWriter`](crate::LogWriter) (encoder) and
//! [`LogReader`](crate::LogReader) (decoder). Specified in `docs/format/wal.md`.
//!
//! A log is a sequence of 32 KiB blocks (the last one may be short). A block holds
//! *fragments*, each a 7-byte header followed by its payload; a fragment never crosses a
//! block boundary. A block's last 1–6 bytes, too few for a header, are zero padding.
//!
//! ```text
//! fragment:  +----------+----------+------+---------------------+
//!            | crc: u32 | len: u16 | type | payload (len bytes) |
//!            |  LE, 4 B |  LE, 2 B | 1 B  |                     |
//!            +----------+----------+------+---------------------+
//!            crc = CRC-32 (IEEE, as crc32fast computes it) over type ‖ payload
//! ```
//!
//! A record is one `Full` fragment, or `First`, zero or more `Middle`s and a `Last` in
//! consecutive positions. The first fragment of every log is a `Header` fragment whose
//! payload is the 8-byte magic `STRATLOG` and the format version as a `u32` LE; a reader
//! checks it before trusting anything else. Type 0 is never written: a header of seven
//! zero bytes is a zero-filled (preallocated or never-written) region.
//!
//! This layer knows nothing about what records contain: the WAL puts write batches in
//! them and the manifest puts version edits.

/// Bytes per block. A reader can resynchronise at any multiple of this offset, because
/// every block starts with a fragment header (or is padding-free empty space at the end).
pub const BLOCK_SIZE: usize = 32 * 1024;

/// Bytes of a fragment header: crc + length + type.
pub const HEADER_LEN: usize = 4 + 2 + 1;

/// Largest payload one fragment can carry (a whole block minus its header).
pub const MAX_FRAGMENT_PAYLOAD: usize = BLOCK_SIZE - HEADER_LEN;

// The length field is a u16, so a fragment payload must fit in it.
const _: () = assert!(MAX_FRAGMENT_PAYLOAD <= u16::MAX as usize);
const _: () = assert!(HEADER_LEN == 7);

/// Magic bytes opening the payload of the log's `Header` fragment.
pub const MAGIC: [u8; 8] = *b"STRATLOG";

/// Payload of the `Header` fragment: magic + version.
pub const LOG_HEADER_PAYLOAD_LEN: usize = MAGIC.len() + 4;

/// Bytes the `Header` fragment occupies at the start of every log.
pub const LOG_HEADER_LEN: usize = HEADER_LEN + LOG_HEADER_PAYLOAD_LEN;

/// On-disk versions of the record-log format, oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum FormatVersion {
    /// 32 KiB blocks; Full/First/Middle/Last fragments with a 7-byte header
    /// (CRC-32 over type ‖ payload, u16 length, type); a `Header` fragment at offset 0.
    V1 = 1,
}

impl FormatVersion {
    /// The version this build writes.
    pub const CURRENT: FormatVersion = FormatVersion::V1;

    /// The version numbered `v`, if this build knows it.
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(FormatVersion::V1),
            _ => None,
        }
    }
}

/// What a fragment is. Values are the on-disk type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FragmentType {
    /// A whole record in one fragment.
    Full = 1,
    /// The first fragment of a record spanning blocks.
    First = 2,
    /// An inner fragment of a record spanning three or more blocks.
    Middle = 3,
    /// The last fragment of a record spanning blocks.
    Last = 4,
    /// The log header (magic + version); only at offset 0.
    Header = 5,
}

impl FragmentType {
    /// Decodes a type byte; `None` for 0 (zero fill) and bytes no version defines.
    pub fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(FragmentType::Full),
            2 => Some(FragmentType::First),
            3 => Some(FragmentType::Middle),
            4 => Some(FragmentType::Last),
            5 => Some(FragmentType::Header),
            _ => None,
        }
    }
}

/// CRC-32 of `type ‖ payload`.
pub(crate) fn fragment_crc(type_byte: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[type_byte]);
    h.update(payload);
    h.finalize()
}

/// Appends one fragment (header + payload) to `dst`. `payload` must fit the space left
/// in the block; the caller (the writer) guarantees it.
pub(crate) fn put_fragment(dst: &mut Vec<u8>, ty: FragmentType, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_FRAGMENT_PAYLOAD);
    let crc = fragment_crc(ty as u8, payload);
    dst.extend_from_slice(&crc.to_le_bytes());
    dst.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    dst.push(ty as u8);
    dst.extend_from_slice(payload);
}

/// The payload of the log's `Header` fragment.
pub(crate) fn log_header_payload() -> [u8; LOG_HEADER_PAYLOAD_LEN] {
    let mut p = [0; LOG_HEADER_PAYLOAD_LEN];
    let (magic, version) = p.split_at_mut(MAGIC.len());
    magic.copy_from_slice(&MAGIC);
    version.copy_from_slice(&(FormatVersion::CURRENT as u32).to_le_bytes());
    p
}

/// Whether `start`, the first bytes of a file (up to [`LOG_HEADER_LEN`] of them), could
/// be a record log's header: the header itself, one damaged in a few bytes, one a crash
/// cut short, or zeros (not written yet). Anything else is another kind of file, which
/// tools should name as such rather than as a log torn at offset 0.
///
/// ```
/// use strata_wal::format::could_be_log_header;
/// assert!(!could_be_log_header(b"root:x:0:0:root:/root:/bin/bash"));
/// assert!(could_be_log_header(&[0; 19]));
/// ```
pub fn could_be_log_header(start: &[u8]) -> bool {
    let mut expected = Vec::with_capacity(LOG_HEADER_LEN);
    put_fragment(&mut expected, FragmentType::Header, &log_header_payload());
    let start = start.get(..LOG_HEADER_LEN).unwrap_or(start);
    let differing = start.iter().zip(&expected).filter(|(a, b)| a != b).count();
    // A torn or damaged header keeps most of its bytes; another kind of file shares a
    // byte here and there by chance.
    start.iter().all(|&b| b == 0) || differing * 2 <= start.len()
}

/// A fragment header as stored, not yet checked against its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawHeader {
    pub crc: u32,
    pub len: usize,
    pub type_byte: u8,
}

impl RawHeader {
    /// Decodes the first [`HEADER_LEN`] bytes of `src`; `None` if `src` is shorter.
    pub fn decode(src: &[u8]) -> Option<Self> {
        let h: &[u8; HEADER_LEN] = src.get(..HEADER_LEN)?.try_into().ok()?;
        let [c0, c1, c2, c3, l0, l1, type_byte] = *h;
        Some(RawHeader {
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
            len: usize::from(u16::from_le_bytes([l0, l1])),
            type_byte,
        })
    }

    /// Seven zero bytes: preallocated or never-written space, not a fragment.
    pub fn is_zero(&self) -> bool {
        self.crc == 0 && self.len == 0 && self.type_byte == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_encodes_as_documented() {
        let mut buf = Vec::new();
        put_fragment(&mut buf, FragmentType::Full, b"abc");
        assert_eq!(buf.len(), HEADER_LEN + 3);
        let expected_crc = crc32fast::hash(&[1, b'a', b'b', b'c']);
        assert_eq!(&buf[..4], &expected_crc.to_le_bytes());
        assert_eq!(&buf[4..6], &[3, 0]);
        assert_eq!(buf[6], 1);
        assert_eq!(&buf[7..], b"abc");
        let h = RawHeader::decode(&buf).unwrap();
        assert_eq!(
            h,
            RawHeader {
                crc: expected_crc,
                len: 3,
                type_byte: 1
            }
        );
        assert!(!h.is_zero());
        assert!(RawHeader::decode(&buf[..6]).is_none());
    }

    #[test]
    fn log_header_is_magic_then_version() {
        let p = log_header_payload();
        assert_eq!(&p[..8], b"STRATLOG");
        assert_eq!(&p[8..], &1u32.to_le_bytes());
        assert_eq!(LOG_HEADER_LEN, 19);
    }

    #[test]
    fn type_bytes_round_trip_and_zero_is_not_a_type() {
        for ty in [
            FragmentType::Full,
            FragmentType::First,
            FragmentType::Middle,
            FragmentType::Last,
            FragmentType::Header,
        ] {
            assert_eq!(FragmentType::from_u8(ty as u8), Some(ty));
        }
        assert_eq!(FragmentType::from_u8(0), None);
        assert_eq!(FragmentType::from_u8(6), None);
        assert_eq!(FormatVersion::from_u32(1), Some(FormatVersion::V1));
        assert_eq!(FormatVersion::from_u32(2), None);
    }
}
