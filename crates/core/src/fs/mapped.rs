//! Memory-mapped reads of immutable files ([`StdFs::open_mapped`](super::StdFs)), and
//! what keeps a file truncated under its mapping from killing the process.
//!
//! A small read (a table's block) copies straight out of the page cache through the
//! mapping: no system call, no kernel page-cache lookup. Measured on a 1M-key database
//! whose tables sit in the page cache, point reads were 30–40 % faster than with
//! `pread` (docs/benchmarks.md). The bytes are still copied into memory of our own and
//! checksummed by the caller, so nothing handed out points into the mapping.
//!
//! The hazard of a mapping is a file shortened by someone else (a tool, an operator, a
//! full disk's repair): touching a page past the new end raises `SIGBUS`, whose default
//! action kills the process. So the first mapping installs a `SIGBUS` handler. For an
//! address inside one of the registered mappings, it maps a page of zeros over the
//! faulting page (the interrupted copy then goes on, reading zeros) and marks that
//! mapping damaged; the reader sees the mark after its copy and reports
//! [`Error::Corruption`](crate::Error::Corruption) naming the file and offset. Any other
//! `SIGBUS` goes to the handler that was installed before (Rust's own, which handles
//! stack guard pages), or to the default action.
//!
//! Limits: an application that installs its own `SIGBUS` handler after Strata maps a
//! file replaces this one (a truncated table then kills the process, as with any
//! mapping). At most [`SLOTS`] files are mapped at once per process; beyond that,
//! files are read with `pread`. Large reads (scans' read-ahead) use `pread` too: the
//! kernel's read-ahead serves them better than page faults.

use std::fs::File;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How many files may be mapped at once in this process (the registry the signal
/// handler searches is a fixed array: it may not allocate or lock).
pub(crate) const SLOTS: usize = 4096;

/// Reads up to this size are copied out of the mapping; larger ones use `pread`.
pub(crate) const MAX_MAPPED_READ: usize = 16 << 10;

/// One registered mapping: `[start, end)` in the address space (0, 0 when free) and
/// whether the handler had to patch a page of it.
struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    damaged: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to initialise `REGISTRY`
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    damaged: AtomicBool::new(false),
};

static REGISTRY: [Slot; SLOTS] = [FREE; SLOTS];

/// The system page size, read once before the handler is installed.
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The `SIGBUS` disposition before ours, to hand other faults to.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Whether the handler is installed (false: installing failed, so nothing is mapped).
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// A read-only mapping of a whole file, registered with the `SIGBUS` handler for as
/// long as it lives.
pub(crate) struct MappedFile {
    map: memmap2::Mmap,
    slot: &'static Slot,
}

impl std::fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedFile")
            .field("len", &self.map.len())
            .finish()
    }
}

impl MappedFile {
    /// Maps `file` (`len` bytes, its length when opened), or `None` where a mapping
    /// cannot be made safely: an empty file, the handler not installed, no free slot,
    /// or the system refusing the mapping. The caller then reads with `pread`.
    pub(crate) fn new(file: &File, len: u64) -> Option<MappedFile> {
        if len == 0 || !install_handler() {
            return None;
        }
        let len = usize::try_from(len).ok()?;
        // SAFETY: the mapping is read-only and private to this struct. Another process
        // may change or shorten the file under it: changes show up as different bytes,
        // which the caller checksums; a shortened file's pages raise SIGBUS, which the
        // handler installed above turns into pages of zeros and a damage mark checked
        // after every read (`read`). Nothing hands out references into the mapping.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(file) }.ok()?;
        // Point reads touch one page each; read-around would pull in 32 for each fault
        // on a cold file.
        let _ = map.advise(memmap2::Advice::Random);
        let start = map.as_ptr() as usize;
        let slot = register(start, start + len)?;
        Some(MappedFile { map, slot })
    }

    /// Copies `buf.len()` bytes at `offset` (bounds checked by the caller) into `buf`.
    /// `Err(())` if the file was found shortened under the mapping, now or before: the
    /// bytes read are then zeros where the file had ended.
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), Damaged> {
        self.copy_out(offset, buf.len(), |src| buf.copy_from_slice(src))
    }

    /// [`read`](Self::read) into a new vector, which is not zeroed first: its only
    /// bytes are the ones copied out of the mapping.
    pub(crate) fn read_to_vec(&self, offset: usize, len: usize) -> Result<Vec<u8>, Damaged> {
        self.copy_out(offset, len, <[u8]>::to_vec)
    }

    /// Hands the `len` mapped bytes at `offset` to `copy`, then checks that no fault
    /// patched them meanwhile.
    fn copy_out<T>(
        &self,
        offset: usize,
        len: usize,
        copy: impl FnOnce(&[u8]) -> T,
    ) -> Result<T, Damaged> {
        let src = offset
            .checked_add(len)
            .and_then(|end| self.map.get(offset..end))
            .ok_or(Damaged)?;
        let copied = copy(src);
        self.check()?;
        Ok(copied)
    }

    /// Whether the file has been found shortened under the mapping. The handler marks
    /// the slot before it returns to a faulting copy, so a fault during a copy that
    /// came before is seen here.
    fn check(&self) -> Result<(), Damaged> {
        if self.slot.damaged.load(Ordering::Acquire) {
            return Err(Damaged);
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
/// A writable shared mapping of part of a file being appended to (a log's zeros
/// ahead of its end), registered with the `SIGBUS` handler for as long as it lives.
pub(crate) struct MappedWindow {
    map: memmap2::MmapMut,
    /// File offset of the mapping's first byte (page aligned).
    start: u64,
    slot: &'static Slot,
}

#[cfg(target_os = "linux")]
impl std::fmt::Debug for MappedWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedWindow")
            .field("start", &self.start)
            .field("len", &self.map.len())
            .finish()
    }
}

#[cfg(target_os = "linux")]
impl MappedWindow {
    /// Maps `file` from the page holding offset `from` up to `end` (which the file
    /// already reaches), or `None` where that cannot be done safely (see
    /// [`MappedFile::new`]).
    pub(crate) fn new(file: &File, from: u64, end: u64) -> Option<MappedWindow> {
        if !install_handler() {
            return None;
        }
        let page = PAGE_SIZE.load(Ordering::Acquire) as u64;
        let start = from - from % page;
        let len = usize::try_from(end.checked_sub(start)?).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: the mapping is private to this struct and only written through
        // `write`, which bounds-checks. Another process may change or shorten the
        // file under it: a changed log fails its checksums when read; a shortened
        // file's pages raise SIGBUS, which the handler turns into pages of anonymous
        // memory and a damage mark `write` checks after each copy.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(start)
                .len(len)
                .map_mut(file)
        }
        .ok()?;
        let addr = map.as_ptr() as usize;
        let slot = register(addr, addr + len)?;
        Some(MappedWindow { map, start, slot })
    }

    /// File offset of the window's first byte.
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// File offset just past the window.
    pub(crate) fn end(&self) -> u64 {
        self.start + self.map.len() as u64
    }

    /// Copies `data` to file offset `at`: `Ok(false)` (nothing written) if that does
    /// not lie inside the window, `Err` if the file was found shortened under it.
    pub(crate) fn write(&self, at: u64, data: &[u8]) -> Result<bool, Damaged> {
        let Some(offset) = at
            .checked_sub(self.start)
            .and_then(|o| usize::try_from(o).ok())
        else {
            return Ok(false);
        };
        let Some(end) = offset.checked_add(data.len()) else {
            return Ok(false);
        };
        if end > self.map.len() {
            return Ok(false);
        }
        // SAFETY: `offset..end` lies inside the mapping (checked above), which lives as
        // long as `self`; the map is only written here, by the one handle that owns it,
        // and `data` cannot overlap it.
        unsafe { copy_in_order(self.map.as_ptr().cast_mut().add(offset), data) };
        if self.slot.damaged.load(Ordering::Acquire) {
            return Err(Damaged);
        }
        Ok(true)
    }
}

#[cfg(target_os = "linux")]
/// Copies `src` to `dst` with stores in ascending address order, so a process killed
/// part-way leaves a prefix of `src` in the page cache, never a later part without an
/// earlier one. A `pwrite` gives that for free (the kernel copies forwards and a fatal
/// signal stops it only between pages); `memcpy` does not (glibc copies the head and
/// the tail of a buffer first), and a log reader takes a record with a hole in it,
/// followed by intact bytes, for damage inside the log rather than a torn tail.
/// Volatile stores are neither reordered nor merged by the compiler, and an interrupt
/// ends the process between two instructions, with every earlier store kept.
///
/// # Safety
/// `dst..dst + src.len()` is valid for writes and does not overlap `src`.
unsafe fn copy_in_order(dst: *mut u8, src: &[u8]) {
    let (head, rest) = src.split_at(dst.align_offset(8).min(src.len()));
    let mut at = dst;
    for &b in head {
        // SAFETY: inside `dst`'s range (the caller's contract).
        unsafe {
            at.write_volatile(b);
            at = at.add(1);
        }
    }
    let mut words = rest.chunks_exact(8);
    for word in words.by_ref() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        // SAFETY: inside `dst`'s range, and 8-aligned: `head` ended at the first
        // 8-aligned address.
        unsafe {
            at.cast::<u64>().write_volatile(u64::from_ne_bytes(bytes));
            at = at.add(8);
        }
    }
    for &b in words.remainder() {
        // SAFETY: inside `dst`'s range.
        unsafe {
            at.write_volatile(b);
            at = at.add(1);
        }
    }
}

#[cfg(target_os = "linux")]
impl Drop for MappedWindow {
    fn drop(&mut self) {
        release(self.slot);
    }
}

/// The mapped file was shortened by someone else while mapped.
#[derive(Debug)]
pub(crate) struct Damaged;

impl Drop for MappedFile {
    fn drop(&mut self) {
        // Unregistered before `map` is unmapped (fields drop after this body). Nothing
        // reads the mapping any more, so no fault inside it can be in flight.
        release(self.slot);
    }
}

/// Frees a slot whose mapping is about to be unmapped.
fn release(slot: &Slot) {
    slot.end.store(0, Ordering::Release);
    slot.damaged.store(false, Ordering::Release);
    slot.start.store(0, Ordering::Release);
}

/// Claims a free slot for `[start, end)`.
fn register(start: usize, end: usize) -> Option<&'static Slot> {
    for slot in &REGISTRY {
        if slot
            .start
            .compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            slot.damaged.store(false, Ordering::Release);
            slot.end.store(end, Ordering::Release);
            return Some(slot);
        }
    }
    None
}

/// Installs the `SIGBUS` handler once per process; whether it is in place.
fn install_handler() -> bool {
    *INSTALLED.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let Ok(page) = usize::try_from(page) else {
            return false;
        };
        if !page.is_power_of_two() {
            return false;
        }
        PAGE_SIZE.store(page, Ordering::Release);
        // SAFETY: a zeroed sigaction is a valid "no handler, no flags" value; the one
        // installed points at `on_sigbus`, whose signature is the SA_SIGINFO one. The
        // previous disposition is kept before any fault can reach our handler, which
        // reads it through the OnceLock.
        unsafe {
            let mut ours: libc::sigaction = std::mem::zeroed();
            ours.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
            ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut ours.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
                return false;
            }
            let _ = PREVIOUS.set(previous);
            libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut()) == 0
        }
    })
}

/// The faulting address of a `SIGBUS`.
///
/// # Safety
/// `info` is the `siginfo_t` the kernel passed to an SA_SIGINFO handler.
unsafe fn fault_address(info: *const libc::siginfo_t) -> usize {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: per the function's contract; `si_addr` is valid for SIGBUS.
    let addr = unsafe { (*info).si_addr() };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: per the function's contract.
    let addr = unsafe { (*info).si_addr };
    addr as usize
}

/// The `SIGBUS` handler: async-signal-safe (atomics, `mmap`, `sigaction`; no locks,
/// no allocation).
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let addr = unsafe { fault_address(info) };
    let page = PAGE_SIZE.load(Ordering::Acquire);
    if page != 0 {
        for slot in &REGISTRY {
            let start = slot.start.load(Ordering::Acquire);
            if start == 0 || addr < start || addr >= slot.end.load(Ordering::Acquire) {
                continue;
            }
            // Mark first: once the patched page is in place the copy goes on and the
            // reader checks the mark right after it.
            slot.damaged.store(true, Ordering::Release);
            let at = addr & !(page - 1);
            // SAFETY: `at` is a page inside a live mapping this module owns (registered
            // until its unmapping); replacing that page by private zeros changes only
            // what those addresses read. mmap is a plain system call on the platforms
            // this module builds for.
            let patched = unsafe {
                libc::mmap(
                    at as *mut libc::c_void,
                    page,
                    // Writable: an append's copy into a window goes on too.
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if patched != libc::MAP_FAILED {
                return;
            }
            break;
        }
    }
    // Not ours, or the page could not be patched: what would have happened without us.
    // SAFETY: PREVIOUS is the disposition the kernel reported; a function handler in
    // it has the signature its flags say.
    unsafe {
        match PREVIOUS.get() {
            Some(prev)
                if prev.sa_sigaction != libc::SIG_DFL && prev.sa_sigaction != libc::SIG_IGN =>
            {
                if prev.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        std::mem::transmute(prev.sa_sigaction);
                    f(sig, info, ctx);
                } else {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(prev.sa_sigaction);
                    f(sig);
                }
            }
            // Default (or ignored, which for a fault would retry forever): restore the
            // default action; returning re-runs the access, which now ends the process
            // as it would have without Strata.
            _ => {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
            }
        }
    }
}
