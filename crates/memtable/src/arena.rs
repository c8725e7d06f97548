//! The MemTable's memory: a bump allocator over large chunks that are freed only when the
//! whole table is dropped.
//!
//! Entries and tree nodes are carved out of chunks and never move or die while the table
//! lives, which is what lets readers follow raw pointers without reference counts or
//! epochs: a reader holding the table (a borrow or an `Arc`) holds every byte it can
//! reach. The byte count reported to the engine is the sum of the chunks' sizes, i.e.
//! exactly what was asked of the global allocator.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Smallest chunk: a fresh table with a handful of entries costs this much.
const CHUNK_MIN: usize = 64 << 10;
/// Largest chunk: bounds the unused tail of the last chunk (the accounting error).
const CHUNK_MAX: usize = 1 << 20;
/// Allocations larger than this get a chunk of their own, so a big value does not
/// strand the rest of the current chunk.
const OWN_CHUNK_OVER: usize = CHUNK_MIN / 4;
/// Alignment of every chunk: tree nodes are cache-line aligned.
const CHUNK_ALIGN: usize = 64;

/// A bump allocator. Owned by the table's single writer; readers only ever read memory
/// that the writer handed out and published.
pub(crate) struct Arena {
    chunks: Vec<(NonNull<u8>, Layout)>,
    /// Next free byte of the current chunk, as an address.
    cur: usize,
    /// One past the current chunk's last byte.
    end: usize,
    /// Bytes obtained from the global allocator so far.
    allocated: usize,
}

// SAFETY: the arena owns its chunks outright (plain heap memory with no thread affinity);
// moving it to another thread moves that ownership. It is only ever mutated through
// `&mut`, i.e. by the one thread holding the table's writer lock.
unsafe impl Send for Arena {}

impl Arena {
    pub(crate) fn new() -> Self {
        Arena {
            chunks: Vec::new(),
            cur: 0,
            end: 0,
            allocated: 0,
        }
    }

    /// Bytes obtained from the global allocator (chunks only; the chunk list itself is
    /// small and counted by the table).
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.allocated
    }

    /// Returns `size` bytes aligned to `align` (a power of two ≤ 64), uninitialised,
    /// valid until the arena is dropped. The caller must initialise them before
    /// publishing a pointer into them.
    pub(crate) fn alloc(&mut self, size: usize, align: usize) -> NonNull<u8> {
        debug_assert!(align.is_power_of_two() && align <= CHUNK_ALIGN);
        let start = (self.cur + align - 1) & !(align - 1);
        if self.cur != 0 && start.checked_add(size).is_some_and(|e| e <= self.end) {
            self.cur = start + size;
            // SAFETY: `start` lies inside the current chunk (checked above), which is a
            // live, non-null allocation.
            return unsafe { NonNull::new_unchecked(start as *mut u8) };
        }
        if size > OWN_CHUNK_OVER {
            return self.new_chunk(size);
        }
        // Chunks grow with the table so a small table stays small and a big one makes
        // few allocator calls.
        let chunk = self.new_chunk((self.allocated / 4).clamp(CHUNK_MIN, CHUNK_MAX));
        // A fresh chunk is CHUNK_ALIGN-aligned and larger than OWN_CHUNK_OVER, so the
        // request fits at its start.
        self.cur = chunk.as_ptr() as usize;
        self.end = self.cur + self.chunks.last().map_or(0, |c| c.1.size());
        self.cur += size;
        chunk
    }

    fn new_chunk(&mut self, size: usize) -> NonNull<u8> {
        let layout = match Layout::from_size_align(size.max(1), CHUNK_ALIGN) {
            Ok(l) => l,
            Err(_) => panic!("MemTable allocation of {size} bytes overflows"),
        };
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        self.chunks.push((ptr, layout));
        self.allocated += layout.size();
        ptr
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for (ptr, layout) in self.chunks.drain(..) {
            // SAFETY: each pair came from `alloc::alloc` with exactly this layout and is
            // freed once; no reader can exist any more, since dropping the arena means the
            // table (which every reader borrows or holds an `Arc` of) is being dropped.
            unsafe { alloc::dealloc(ptr.as_ptr(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_disjoint_and_counted() {
        let mut a = Arena::new();
        let mut spans = Vec::new();
        for i in 0..5000usize {
            let size = [1, 7, 64, 600, 17_000, 100_000][i % 6];
            let align = [1, 4, 8, 64][i % 4];
            let p = a.alloc(size, align);
            assert_eq!(p.as_ptr() as usize % align, 0);
            // Write the whole span: under a sanitizer or a debug allocator an overrun shows.
            // SAFETY: the arena handed out `size` bytes at `p`.
            unsafe { std::ptr::write_bytes(p.as_ptr(), i as u8, size) };
            spans.push((p.as_ptr() as usize, size, i as u8));
        }
        for &(start, size, byte) in &spans {
            // SAFETY: spans stay valid while the arena lives; each was filled above.
            let s = unsafe { std::slice::from_raw_parts(start as *const u8, size) };
            assert!(
                s.iter().all(|&b| b == byte),
                "span overwritten by a later one"
            );
        }
        let requested: usize = spans.iter().map(|s| s.1).sum();
        assert!(a.allocated_bytes() >= requested);
        // Big requests take exact chunks; small ones waste at most a chunk tail each time.
        assert!(a.allocated_bytes() < requested + requested / 4 + CHUNK_MAX);
    }
}
