//! LEB128 variable-length integers and fixed-width little-endian helpers, shared by the
//! on-disk formats. Decoders never panic: they return `None` on truncated or overlong
//! input and the caller reports `Error::Corruption` with its file and offset.

/// Longest LEB128 encoding of a `u64`.
pub const MAX_VARINT64_LEN: usize = 10;

/// Appends `v` as LEB128.
pub fn put_varint64(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

/// Appends `v` as LEB128.
pub fn put_varint32(dst: &mut Vec<u8>, v: u32) {
    put_varint64(dst, u64::from(v));
}

/// Decodes a LEB128 `u64` from the front of `src`, returning it and the bytes consumed.
/// `None` if `src` ends mid-number or the number does not fit 64 bits.
pub fn get_varint64(src: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in src.iter().enumerate().take(MAX_VARINT64_LEN) {
        let shift = 7 * i as u32;
        let bits = u64::from(b & 0x7f);
        if shift == 63 && bits > 1 {
            return None;
        }
        v |= bits << shift;
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Decodes a LEB128 `u32` (see [`get_varint64`]).
pub fn get_varint32(src: &[u8]) -> Option<(u32, usize)> {
    let (v, n) = get_varint64(src)?;
    Some((u32::try_from(v).ok()?, n))
}

/// Appends `data` prefixed by its LEB128 length.
pub fn put_length_prefixed(dst: &mut Vec<u8>, data: &[u8]) {
    put_varint64(dst, data.len() as u64);
    dst.extend_from_slice(data);
}

/// Decodes a length-prefixed slice, returning it and the bytes consumed.
pub fn get_length_prefixed(src: &[u8]) -> Option<(&[u8], usize)> {
    let (len, n) = get_varint64(src)?;
    let len = usize::try_from(len).ok()?;
    let end = n.checked_add(len)?;
    Some((src.get(n..end)?, end))
}

/// Reads a little-endian `u32` at `offset`.
pub fn read_u32_le(src: &[u8], offset: usize) -> Option<u32> {
    let bytes = src.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// Reads a little-endian `u64` at `offset`.
pub fn read_u64_le(src: &[u8], offset: usize) -> Option<u64> {
    let bytes = src.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varint_round_trips(v in any::<u64>(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut buf = Vec::new();
            put_varint64(&mut buf, v);
            let n = buf.len();
            buf.extend_from_slice(&tail);
            prop_assert_eq!(get_varint64(&buf), Some((v, n)));
            // Every strict prefix is truncated input, never a wrong number.
            for cut in 0..n {
                prop_assert_eq!(get_varint64(&buf[..cut]), None);
            }
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = get_varint64(&bytes);
            let _ = get_varint32(&bytes);
            let _ = get_length_prefixed(&bytes);
        }

        #[test]
        fn length_prefixed_round_trips(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut buf = Vec::new();
            put_length_prefixed(&mut buf, &data);
            prop_assert_eq!(get_length_prefixed(&buf), Some((&data[..], buf.len())));
        }
    }

    #[test]
    fn overlong_and_oversized_encodings_are_rejected() {
        assert_eq!(get_varint64(&[0xff; 11]), None);
        assert_eq!(
            get_varint64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
        assert_eq!(get_varint32(&[0x80, 0x80, 0x80, 0x80, 0x10]), None);
        assert_eq!(get_length_prefixed(&[5, 1, 2]), None);
        assert_eq!(read_u32_le(&[1, 2, 3], 0), None);
        assert_eq!(read_u64_le(&[0; 8], 1), None);
    }
}
