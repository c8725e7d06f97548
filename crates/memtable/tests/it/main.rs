//! Integration tests of `strata-memtable` at its real node size: the model test, the
//! concurrency test (one writer, several readers) and the memory-accounting test.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

mod concurrent;
mod memory;
mod model;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the bytes each thread has allocated minus those it freed, so the memory test
/// measures its own thread while other tests run in parallel.
struct PerThreadCounting;

thread_local! {
    static NET_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    // `try_with`: the slot may be gone while the thread is being torn down.
    let _ = NET_BYTES.try_with(|c| c.set(c.get() + delta));
}

/// Bytes the current thread holds from the allocator (allocated minus freed).
pub fn thread_net_bytes() -> isize {
    NET_BYTES.with(Cell::get)
}

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes, in a
// const-initialised thread-local that itself never allocates.
unsafe impl GlobalAlloc for PerThreadCounting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: PerThreadCounting = PerThreadCounting;

/// SplitMix64: a small deterministic generator for test data.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
