//! One MemTable entry: an internal key and its value, written once into the arena.
//!
//! ```text
//! +----------------+------------------+------------------------------+-------------+
//! | ikey_len: u32  | value_len: u32   | internal key (ikey_len B)    | value       |
//! | native endian  | native endian    | user key + 8 B trailer       | (value_len) |
//! +----------------+------------------+------------------------------+-------------+
//! ```
//!
//! In memory only (never on disk), so native endianness is fine. An entry never changes
//! or moves after it is written; the tree publishes a pointer to it with release
//! ordering and readers load that pointer with acquire ordering, which makes the bytes
//! visible to them.

use std::cmp::Ordering;
use std::ptr::NonNull;

use strata_core::key::TRAILER_LEN;

use crate::arena::Arena;

/// Bytes before the internal key: two `u32` lengths.
pub(crate) const HEADER_LEN: usize = 4 + 4;

/// A pointer to an entry in a table's arena.
///
/// Invariant (kept by the crate, which never hands an `Entry` out): an `Entry` is only
/// dereferenced while the table whose arena holds it is alive, which the accessors
/// express by borrowing a lifetime from the caller (the tree or an iterator holding the
/// table's `Arc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry(NonNull<u8>);

/// The parts of an internal key that searches compare, without encoding it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SearchKey<'a> {
    pub(crate) user_key: &'a [u8],
    /// `seq << 8 | kind`; larger trailers sort first.
    pub(crate) trailer: u64,
}

impl<'a> SearchKey<'a> {
    /// Splits an encoded internal key. A target too short to hold a trailer (a caller
    /// bug) is taken as a bare user key sorting before all of that key's versions.
    pub(crate) fn from_encoded(internal_key: &'a [u8]) -> Self {
        match internal_key.len().checked_sub(TRAILER_LEN) {
            Some(n) => {
                let (user_key, t) = internal_key.split_at(n);
                let mut trailer = [0u8; TRAILER_LEN];
                trailer.copy_from_slice(t);
                SearchKey {
                    user_key,
                    trailer: u64::from_le_bytes(trailer),
                }
            }
            None => SearchKey {
                user_key: internal_key,
                trailer: u64::MAX,
            },
        }
    }

    /// Internal-key order of `self` against `other`.
    pub(crate) fn cmp(&self, other: &SearchKey<'_>) -> Ordering {
        self.user_key
            .cmp(other.user_key)
            .then_with(|| other.trailer.cmp(&self.trailer))
    }
}

impl Entry {
    /// Writes an entry into `arena` and returns its (not yet published) pointer.
    ///
    /// Lengths must fit `u32`; the table checks that before calling.
    pub(crate) fn write(arena: &mut Arena, user_key: &[u8], trailer: u64, value: &[u8]) -> Entry {
        let ikey_len = user_key.len() + TRAILER_LEN;
        let total = HEADER_LEN + ikey_len + value.len();
        debug_assert!(u32::try_from(ikey_len).is_ok() && u32::try_from(value.len()).is_ok());
        let p = arena.alloc(total, 4).as_ptr();
        // SAFETY: the arena handed us `total` fresh bytes at `p` that nobody else can see
        // yet; the five copies fill exactly those bytes, back to back, from slices that
        // cannot overlap fresh arena memory.
        unsafe {
            p.cast::<[u8; 4]>().write((ikey_len as u32).to_ne_bytes());
            p.add(4)
                .cast::<[u8; 4]>()
                .write((value.len() as u32).to_ne_bytes());
            let k = p.add(HEADER_LEN);
            std::ptr::copy_nonoverlapping(user_key.as_ptr(), k, user_key.len());
            k.add(user_key.len())
                .cast::<[u8; TRAILER_LEN]>()
                .write(trailer.to_le_bytes());
            std::ptr::copy_nonoverlapping(value.as_ptr(), k.add(ikey_len), value.len());
            Entry(NonNull::new_unchecked(p))
        }
    }

    /// Rebuilds an entry from a pointer loaded out of a tree slot; `None` for null.
    pub(crate) fn from_ptr(p: *mut u8) -> Option<Entry> {
        NonNull::new(p).map(Entry)
    }

    /// The raw pointer, for storing into a tree slot.
    pub(crate) fn as_ptr(self) -> *mut u8 {
        self.0.as_ptr()
    }

    fn lens(self) -> (usize, usize) {
        // SAFETY: the entry is live (type invariant) and its first 8 bytes are the two
        // lengths, written before the entry was published.
        let (k, v) = unsafe {
            (
                self.0.as_ptr().cast::<[u8; 4]>().read(),
                self.0.as_ptr().add(4).cast::<[u8; 4]>().read(),
            )
        };
        (
            u32::from_ne_bytes(k) as usize,
            u32::from_ne_bytes(v) as usize,
        )
    }

    /// The encoded internal key. The caller picks `'a` no longer than the table lives.
    pub(crate) fn internal_key<'a>(self) -> &'a [u8] {
        let (k, _) = self.lens();
        // SAFETY: the entry is live for 'a (type invariant, upheld by callers) and holds
        // `k` initialised key bytes after its header.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(HEADER_LEN), k) }
    }

    /// The value bytes (empty for a tombstone).
    pub(crate) fn value<'a>(self) -> &'a [u8] {
        let (k, v) = self.lens();
        // SAFETY: as in `internal_key`; the value's `v` bytes follow the key.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(HEADER_LEN + k), v) }
    }

    /// The key split for comparisons.
    pub(crate) fn search_key<'a>(self) -> SearchKey<'a> {
        SearchKey::from_encoded(self.internal_key())
    }
}
