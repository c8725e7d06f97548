//! The sorted structure: a B+tree in the arena with one writer and optimistic,
//! lock-free readers.
//!
//! # Why a B+tree and not a skiplist
//! A random insert into a skiplist of ~0.5M entries follows 15–20 dependent pointers,
//! each a likely cache miss. Here a node holds up to [`CAP`] keys, so the same table is
//! 4–5 levels deep, and each key slot carries an 8-byte *hint* — the big-endian bytes of
//! the user key right after the prefix every key in the node shares — so a binary search
//! inside a node reads the node's own cache lines and dereferences an entry only when two
//! hints tie. See `benches/memtable.rs` for the measurement against crossbeam-skiplist.
//!
//! # Concurrency protocol
//! Exactly one writer at a time (the caller holds the table's writer lock and passes its
//! [`Writer`] state as `&mut`). Readers take no lock. Every node has a `version`: even
//! when stable, odd while the writer is changing the node. The writer makes a node odd
//! before its first store into it and even again (one step further) after its last
//! store, and keeps *every* node it changes during one insert odd until the whole insert
//! is done, so a split's parent and children change as one step for readers.
//!
//! A reader reads a node's version (waiting while it is odd), reads what it needs with
//! atomic loads, then checks the version again; a changed version means it read a
//! mixture, and it restarts from the root. Descending, it checks the parent's version
//! again after reading the child's (lock coupling), so it never follows a child pointer
//! that a split made stale. This is the seqlock pattern: readers' loads are atomics
//! (no data race), the writer's `Release` fence after making a node odd orders that
//! before its stores, and the reader's `Acquire` fence before the re-check orders its
//! loads before it.
//!
//! Memory safety does not depend on validation: every slot only ever holds null or a
//! pointer to a live entry or node of this table's arena, nothing is freed before the
//! table, and counts are clamped to [`CAP`], so even a torn read dereferences valid
//! memory; validation only decides whether the answer is kept.
//!
//! # Invariants
//! - Inner node: `count` separators `s[0..n]` and `n + 1` children; child `i` holds the
//!   keys `k` with `s[i-1] <= k < s[i]`. A separator is the first key of its right
//!   subtree when it was made, and keys are never removed, so that subtree always
//!   contains the separator's entry.
//! - Leaf: `count` entry pointers in internal-key order, no duplicates.
//! - `prefix` is the length of the longest common prefix of the user keys of the node's
//!   lower and upper fences (0 when either is infinite), hence of every user key in it.

use std::cmp::Ordering as CmpOrdering;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering, fence};

use crate::arena::Arena;
use crate::entry::{Entry, SearchKey};

/// Keys per node. Small under `cfg(test)` so unit tests build deep trees from little data.
pub(crate) const CAP: usize = if cfg!(test) { 4 } else { 32 };

/// Where a node's lower half ends when it splits, unless the insert is an append.
const SPLIT_AT: usize = CAP.div_ceil(2);

/// A tree node. Leaves are bare `Node`s; inner nodes are [`InnerNode`]s, which begin
/// with a `Node`, so a `*const Node` with `leaf == false` may be cast to `*const InnerNode`.
#[repr(C, align(64))]
pub(crate) struct Node {
    version: AtomicU64,
    count: AtomicU32,
    prefix: AtomicU32,
    /// Set before the node is published and never changed.
    leaf: bool,
    hints: [AtomicU64; CAP],
    /// Entries (leaf) or separator entries (inner).
    keys: [AtomicPtr<u8>; CAP],
}

#[repr(C, align(64))]
struct InnerNode {
    node: Node,
    children: [AtomicPtr<Node>; CAP + 1],
}

impl Node {
    fn empty(leaf: bool, prefix: u32) -> Node {
        Node {
            version: AtomicU64::new(0),
            count: AtomicU32::new(0),
            prefix: AtomicU32::new(prefix),
            leaf,
            hints: [const { AtomicU64::new(0) }; CAP],
            keys: [const { AtomicPtr::new(ptr::null_mut()) }; CAP],
        }
    }

    fn count(&self) -> usize {
        (self.count.load(Ordering::Relaxed) as usize).min(CAP)
    }

    fn prefix(&self) -> usize {
        self.prefix.load(Ordering::Relaxed) as usize
    }

    fn key(&self, i: usize) -> Option<Entry> {
        Entry::from_ptr(self.keys[i].load(Ordering::Acquire))
    }

    fn inner(&self) -> Option<&InnerNode> {
        if self.leaf {
            return None;
        }
        // SAFETY: a node with `leaf == false` was allocated and initialised as an
        // `InnerNode` (see `Tree::alloc_inner`), whose `repr(C)` layout starts with this
        // `Node`; the reference keeps the borrow's lifetime.
        Some(unsafe { &*(self as *const Node).cast::<InnerNode>() })
    }

    /// Waits out a writer that is mid-way through changing this node and returns the
    /// stable version. The writer's window is a few dozen stores; after a short spin the
    /// reader yields, in case the writer thread was descheduled inside it.
    fn stable_version(&self) -> u64 {
        let mut spins = 0u32;
        loop {
            let v = self.version.load(Ordering::Acquire);
            if v & 1 == 0 {
                return v;
            }
            spins += 1;
            if spins < 128 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// True if nothing changed the node since `version` was read; orders every load made
    /// since then before the check.
    fn unchanged(&self, version: u64) -> bool {
        fence(Ordering::Acquire);
        self.version.load(Ordering::Relaxed) == version
    }

    /// The number of the first `n` keys ordered before `key` (or equal to it, with
    /// `or_equal`): binary search on hints, dereferencing an entry only on a tie.
    fn rank(&self, n: usize, key: &SearchKey<'_>, or_equal: bool) -> usize {
        let h = hint(key.user_key, self.prefix());
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let before = match self.hints[mid].load(Ordering::Relaxed).cmp(&h) {
                CmpOrdering::Less => true,
                CmpOrdering::Greater => false,
                CmpOrdering::Equal => match self.key(mid) {
                    Some(e) => {
                        let o = e.search_key().cmp(key);
                        o.is_lt() || (or_equal && o.is_eq())
                    }
                    // Only a torn read sees an empty slot; validation will reject it.
                    None => false,
                },
            };
            if before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    // ---- writer-side helpers (callers hold `&mut Writer`) ----

    fn lock(&self) -> u64 {
        let v = self.version.load(Ordering::Relaxed);
        debug_assert!(v & 1 == 0, "node locked twice in one insert");
        self.version.store(v + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        v
    }

    fn set_slot(&self, i: usize, e: Entry, prefix: usize) {
        self.hints[i].store(hint(e.search_key().user_key, prefix), Ordering::Relaxed);
        self.keys[i].store(e.as_ptr(), Ordering::Release);
    }

    /// Stores `slots` from index 0. Their hints were made for `old_prefix`; they are
    /// reused when the node's prefix is unchanged, which spares a cache miss per entry.
    fn fill(&self, slots: &[(Entry, u64)], old_prefix: u32, prefix: u32) {
        for (j, &(e, h)) in slots.iter().enumerate() {
            let h = if prefix == old_prefix {
                h
            } else {
                hint(e.search_key().user_key, prefix as usize)
            };
            self.hints[j].store(h, Ordering::Relaxed);
            self.keys[j].store(e.as_ptr(), Ordering::Release);
        }
    }

    fn entry_at(&self, i: usize) -> Entry {
        match self.key(i) {
            Some(e) => e,
            None => unreachable!("writer found an empty slot below count"),
        }
    }
}

impl InnerNode {
    fn child(&self, i: usize) -> Option<&Node> {
        let p = self.children[i].load(Ordering::Acquire);
        // SAFETY: child slots hold null or a pointer to a live node of the same arena,
        // published with release ordering after it was initialised; nodes are never
        // freed before the table, which outlives the borrow of `self`.
        unsafe { p.as_ref() }
    }

    fn child_ptr(&self, i: usize) -> *mut Node {
        self.children[i].load(Ordering::Relaxed)
    }
}

/// Asks the CPU to start loading every cache line of the node at `p` (a leaf's lines,
/// or an inner node's separators and children), so a binary search inside it waits for
/// one memory latency instead of one per probe. A hint only: it never faults.
#[inline]
fn prefetch(p: *const Node) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let size = size_of::<Node>();
        let mut off = 0;
        while off < size {
            // SAFETY: prefetching is a hint with no architectural effect; it does not
            // fault even on an invalid address (and `p` is a live node here).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>().wrapping_add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// How many entries ahead of a scanning iterator to prefetch. Entries sit in the arena
/// in insertion order, so after random inserts each one a scan visits is a cache miss;
/// keeping several in flight turns a latency-bound walk into a bandwidth-bound one.
const SCAN_AHEAD: usize = 12;

/// Prefetches the first lines of the entry at `p` (null or a live entry of this arena:
/// slot contents). A hint only.
#[inline]
fn prefetch_entry(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // Header, key and the start of the value; a 16 B key and 100 B value span three.
        for off in [0, 64, 128] {
            // SAFETY: prefetching is a hint with no architectural effect; it does not
            // fault on any address, null included.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>().wrapping_add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The 8 bytes of `user_key` after `prefix`, big-endian, zero-padded: monotone in the
/// user key among keys sharing the prefix, so unequal hints decide an order.
fn hint(user_key: &[u8], prefix: usize) -> u64 {
    let tail = user_key.get(prefix..).unwrap_or_default();
    let mut b = [0u8; 8];
    let n = tail.len().min(8);
    b[..n].copy_from_slice(&tail[..n]);
    u64::from_be_bytes(b)
}

/// Length of the common prefix of two fences' user keys; 0 if either is unbounded.
fn fence_prefix(lower: Option<Entry>, upper: Option<Entry>) -> u32 {
    match (lower, upper) {
        (Some(a), Some(b)) => {
            let (a, b) = (a.search_key().user_key, b.search_key().user_key);
            let n = a.iter().zip(b).take_while(|(x, y)| x == y).count();
            u32::try_from(n).unwrap_or(u32::MAX)
        }
        _ => 0,
    }
}

/// Where a reader wants to land.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    /// First entry `>= key`.
    AtLeast(SearchKey<'a>),
    /// First entry `> key`.
    After(SearchKey<'a>),
    /// Last entry `< key`.
    Before(SearchKey<'a>),
    First,
    Last,
}

/// A reader's position: an entry and the leaf slot it was found in, valid for cheap
/// stepping while the leaf's version is unchanged.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor {
    leaf: NonNull<Node>,
    version: u64,
    idx: usize,
    pub(crate) entry: Entry,
    /// The leaf's upper fence as of `version` (the first entry of the next leaf).
    upper: Option<Entry>,
}

enum Landing {
    At(Cursor),
    /// The answer is the leaf's upper fence (or nothing, if the leaf is the last).
    Beyond(Option<Entry>),
    Nothing,
}

/// One step of the writer's descent.
#[derive(Clone, Copy)]
struct PathStep {
    node: *const InnerNode,
    child: usize,
    lower: Option<Entry>,
    upper: Option<Entry>,
}

/// Writer-only state: the arena and scratch space reused across inserts.
pub(crate) struct Writer {
    pub(crate) arena: Arena,
    path: Vec<PathStep>,
    locked: Vec<(*const Node, u64)>,
}

// SAFETY: `path` and `locked` are scratch lists of pointers into the arena, empty between
// inserts; they carry no thread affinity, and the arena is `Send`.
unsafe impl Send for Writer {}

/// The tree: a root pointer into memory owned by the writer's arena.
pub(crate) struct Tree {
    root: AtomicPtr<Node>,
}

/// What an insert did.
pub(crate) enum Inserted {
    New,
    /// The same internal key was present; its entry now points at the new value.
    Replaced,
}

impl Tree {
    /// An empty tree (one empty leaf) and the writer state that owns its memory.
    pub(crate) fn new() -> (Tree, Writer) {
        let mut writer = Writer {
            arena: Arena::new(),
            path: Vec::new(),
            locked: Vec::new(),
        };
        let root = Self::alloc_leaf(&mut writer.arena, 0);
        (
            Tree {
                root: AtomicPtr::new(root),
            },
            writer,
        )
    }

    fn alloc_leaf(arena: &mut Arena, prefix: u32) -> *mut Node {
        let p = arena
            .alloc(size_of::<Node>(), align_of::<Node>())
            .cast::<Node>();
        // SAFETY: fresh arena memory of the right size and alignment, unpublished.
        unsafe { p.write(Node::empty(true, prefix)) };
        p.as_ptr()
    }

    fn alloc_inner(arena: &mut Arena, prefix: u32) -> *mut InnerNode {
        let p = arena
            .alloc(size_of::<InnerNode>(), align_of::<InnerNode>())
            .cast::<InnerNode>();
        // SAFETY: fresh arena memory of the right size and alignment, unpublished.
        unsafe {
            p.write(InnerNode {
                node: Node::empty(false, prefix),
                children: [const { AtomicPtr::new(ptr::null_mut()) }; CAP + 1],
            })
        };
        p.as_ptr()
    }

    fn root(&self) -> &Node {
        // SAFETY: the root is never null (a tree starts with an empty leaf) and always a
        // live node of this table's arena, published with release ordering.
        unsafe { &*self.root.load(Ordering::Acquire) }
    }

    // ------------------------------------------------------------------ readers

    /// Finds `target`. Lock-free: restarts from the root if a node changed under it.
    pub(crate) fn find(&self, target: Target<'_>) -> Option<Cursor> {
        let mut target = target;
        loop {
            match self.descend(target) {
                Landing::At(c) => return Some(c),
                Landing::Nothing | Landing::Beyond(None) => return None,
                // The fence is a real entry and keys are never removed, so this second
                // descent lands on it (or on a newer entry inserted just before it).
                Landing::Beyond(Some(fence)) => {
                    target = Target::AtLeast(fence.search_key());
                }
            }
        }
    }

    fn descend(&self, target: Target<'_>) -> Landing {
        'restart: loop {
            let mut node = self.root();
            let mut version = node.stable_version();
            if !ptr::eq(node, self.root()) {
                // The root split between the two loads; the old root is now a left half.
                continue 'restart;
            }
            let mut upper: Option<Entry> = None;
            loop {
                let n = node.count();
                let Some(inner) = node.inner() else {
                    let landing = Self::in_leaf(node, n, version, target, upper);
                    if !node.unchanged(version) {
                        continue 'restart;
                    }
                    return landing;
                };
                let i = match target {
                    Target::AtLeast(k) | Target::After(k) => node.rank(n, &k, true),
                    Target::Before(k) => node.rank(n, &k, false),
                    Target::First => 0,
                    Target::Last => n,
                };
                let child = inner.child(i);
                if let Some(c) = child {
                    prefetch(c);
                }
                let child_upper = if i < n { node.key(i) } else { upper };
                if !node.unchanged(version) {
                    continue 'restart;
                }
                let Some(child) = child else {
                    continue 'restart;
                };
                let child_version = child.stable_version();
                // Lock coupling: the child pointer must still be current now that we
                // hold the child's version (the Acquire load above orders this one).
                if node.version.load(Ordering::Relaxed) != version {
                    continue 'restart;
                }
                node = child;
                version = child_version;
                upper = child_upper;
            }
        }
    }

    fn in_leaf(
        leaf: &Node,
        n: usize,
        version: u64,
        target: Target<'_>,
        upper: Option<Entry>,
    ) -> Landing {
        let idx = match target {
            Target::AtLeast(k) => leaf.rank(n, &k, false),
            Target::After(k) => leaf.rank(n, &k, true),
            Target::Before(k) => match leaf.rank(n, &k, false).checked_sub(1) {
                Some(i) => i,
                None => return Landing::Nothing,
            },
            Target::First => 0,
            Target::Last => match n.checked_sub(1) {
                Some(i) => i,
                None => return Landing::Nothing,
            },
        };
        if idx >= n {
            return match target {
                Target::AtLeast(_) | Target::After(_) => Landing::Beyond(upper),
                _ => Landing::Nothing,
            };
        }
        match leaf.key(idx) {
            Some(entry) => Landing::At(Cursor {
                leaf: NonNull::from(leaf),
                version,
                idx,
                entry,
                upper,
            }),
            // Torn; the caller's validation restarts.
            None => Landing::Nothing,
        }
    }

    fn leaf_of(&self, c: &Cursor) -> &Node {
        // SAFETY: cursors are made only from live leaves of this tree, whose nodes live
        // as long as the table and hence as the borrow of `self`.
        unsafe { c.leaf.as_ref() }
    }

    /// The entry after `c`'s, if any: a step inside the leaf when it is unchanged, else
    /// a new descent from `c`'s key.
    pub(crate) fn next(&self, c: &Cursor) -> Option<Cursor> {
        let leaf = self.leaf_of(c);
        if leaf.version.load(Ordering::Acquire) == c.version {
            let n = leaf.count();
            let idx = c.idx + 1;
            if idx < n {
                let e = leaf.key(idx);
                if let Some(ahead) = idx.checked_add(SCAN_AHEAD).filter(|&i| i < n) {
                    prefetch_entry(leaf.keys[ahead].load(Ordering::Relaxed));
                }
                if let (Some(entry), true) = (e, leaf.unchanged(c.version)) {
                    return Some(Cursor { idx, entry, ..*c });
                }
            } else if leaf.unchanged(c.version) {
                return c
                    .upper
                    .and_then(|u| self.find(Target::AtLeast(u.search_key())))
                    .inspect(|c| self.prefetch_run(c, true));
            }
        }
        self.find(Target::After(c.entry.search_key()))
            .inspect(|c| self.prefetch_run(c, true))
    }

    /// The entry before `c`'s, if any.
    pub(crate) fn prev(&self, c: &Cursor) -> Option<Cursor> {
        let leaf = self.leaf_of(c);
        if c.idx > 0 && leaf.version.load(Ordering::Acquire) == c.version {
            let idx = c.idx - 1;
            let e = leaf.key(idx);
            if let Some(ahead) = idx.checked_sub(SCAN_AHEAD) {
                prefetch_entry(leaf.keys[ahead].load(Ordering::Relaxed));
            }
            if let (Some(entry), true) = (e, leaf.unchanged(c.version)) {
                return Some(Cursor { idx, entry, ..*c });
            }
        }
        self.find(Target::Before(c.entry.search_key()))
            .inspect(|c| self.prefetch_run(c, false))
    }

    /// On arriving in a leaf during a scan, starts loading the entries the next
    /// [`SCAN_AHEAD`] steps will read; each later step then prefetches one more.
    fn prefetch_run(&self, c: &Cursor, forward: bool) {
        let leaf = self.leaf_of(c);
        let n = leaf.count();
        for d in 1..=SCAN_AHEAD {
            let i = if forward {
                c.idx + d
            } else {
                match c.idx.checked_sub(d) {
                    Some(i) => i,
                    None => break,
                }
            };
            if i >= n {
                break;
            }
            prefetch_entry(leaf.keys[i].load(Ordering::Relaxed));
        }
    }

    // ------------------------------------------------------------------ writer

    /// Inserts `entry` (already written to `w.arena`). The caller holds the table's
    /// writer lock, which `&mut Writer` stands for: no other insert runs concurrently.
    pub(crate) fn insert(&self, w: &mut Writer, entry: Entry) -> Inserted {
        let key = entry.search_key();
        w.path.clear();
        // SAFETY (for the raw derefs below): the root and every child pointer are live
        // nodes of `w.arena`; only this writer changes them, and it is running here.
        let mut node: &Node = self.root();
        let (mut lower, mut upper) = (None, None);
        while let Some(inner) = node.inner() {
            let n = node.count();
            let i = node.rank(n, &key, true);
            w.path.push(PathStep {
                node: inner,
                child: i,
                lower,
                upper,
            });
            if i > 0 {
                lower = Some(node.entry_at(i - 1));
            }
            if i < n {
                upper = Some(node.entry_at(i));
            }
            node = match inner.child(i) {
                Some(c) => {
                    prefetch(c);
                    c
                }
                None => unreachable!("inner node without child {i}"),
            };
        }
        let leaf = node;
        let n = leaf.count();
        let pos = leaf.rank(n, &key, false);
        let new_hint = hint(key.user_key, leaf.prefix());
        // Equal internal keys have equal hints; only a tie needs the entry itself.
        if pos < n
            && leaf.hints[pos].load(Ordering::Relaxed) == new_hint
            && leaf.entry_at(pos).search_key().cmp(&key).is_eq()
        {
            let v = leaf.lock();
            leaf.keys[pos].store(entry.as_ptr(), Ordering::Release);
            leaf.version.store(v + 2, Ordering::Release);
            return Inserted::Replaced;
        }
        if n < CAP {
            let v = leaf.lock();
            for j in (pos..n).rev() {
                let h = leaf.hints[j].load(Ordering::Relaxed);
                leaf.hints[j + 1].store(h, Ordering::Relaxed);
                let k = leaf.keys[j].load(Ordering::Relaxed);
                leaf.keys[j + 1].store(k, Ordering::Release);
            }
            leaf.hints[pos].store(new_hint, Ordering::Relaxed);
            leaf.keys[pos].store(entry.as_ptr(), Ordering::Release);
            leaf.count.store(n as u32 + 1, Ordering::Relaxed);
            leaf.version.store(v + 2, Ordering::Release);
            return Inserted::New;
        }
        self.split_leaf(w, leaf, pos, (entry, new_hint), lower, upper);
        Inserted::New
    }

    fn split_leaf(
        &self,
        w: &mut Writer,
        leaf: &Node,
        pos: usize,
        new: (Entry, u64),
        lower: Option<Entry>,
        upper: Option<Entry>,
    ) {
        let old_prefix = leaf.prefix.load(Ordering::Relaxed);
        let mut all = [new; CAP + 1];
        for j in 0..CAP {
            all[j + usize::from(j >= pos)] =
                (leaf.entry_at(j), leaf.hints[j].load(Ordering::Relaxed));
        }
        // An append keeps the left leaf full, so ascending inserts fill leaves completely.
        let m = if pos == CAP { CAP } else { SPLIT_AT };
        let sep = all[m].0;

        let right_prefix = fence_prefix(Some(sep), upper);
        let right_ptr = Self::alloc_leaf(&mut w.arena, right_prefix);
        // SAFETY: just allocated and initialised, not yet published: only we see it.
        let right = unsafe { &*right_ptr };
        right.fill(&all[m..], old_prefix, right_prefix);
        right.count.store((CAP + 1 - m) as u32, Ordering::Relaxed);

        w.locked.clear();
        w.locked.push((ptr::from_ref(leaf), leaf.lock()));
        let left_prefix = fence_prefix(lower, Some(sep));
        leaf.prefix.store(left_prefix, Ordering::Relaxed);
        leaf.fill(&all[..m], old_prefix, left_prefix);
        leaf.count.store(m as u32, Ordering::Relaxed);

        self.insert_separator(w, leaf, sep, right_ptr);
        for &(node, v) in &w.locked {
            // SAFETY: every locked node is a live node of this arena.
            unsafe { (*node).version.store(v + 2, Ordering::Release) };
        }
        w.locked.clear();
    }

    /// Hangs `right` (a new node whose first key is `sep`) next to `left` in the parent,
    /// splitting parents upward as needed and growing a new root at the top.
    fn insert_separator(&self, w: &mut Writer, left: &Node, sep: Entry, right: *mut Node) {
        let (mut left, mut sep, mut right) = (left as *const Node, sep, right);
        while let Some(step) = w.path.pop() {
            // SAFETY: path nodes are live inner nodes of this arena (see `insert`).
            let parent = unsafe { &*step.node };
            let p = &parent.node;
            let n = p.count();
            let i = step.child;
            debug_assert!(ptr::eq(parent.child_ptr(i), left));
            if n < CAP {
                w.locked.push((ptr::from_ref(p), p.lock()));
                let prefix = p.prefix();
                for j in (i..n).rev() {
                    let h = p.hints[j].load(Ordering::Relaxed);
                    p.hints[j + 1].store(h, Ordering::Relaxed);
                    let k = p.keys[j].load(Ordering::Relaxed);
                    p.keys[j + 1].store(k, Ordering::Release);
                }
                for j in (i + 1..=n).rev() {
                    let c = parent.child_ptr(j);
                    parent.children[j + 1].store(c, Ordering::Release);
                }
                p.set_slot(i, sep, prefix);
                parent.children[i + 1].store(right, Ordering::Release);
                p.count.store(n as u32 + 1, Ordering::Relaxed);
                return;
            }

            // The parent is full: split it around the middle separator, which moves up.
            let old_prefix = p.prefix.load(Ordering::Relaxed);
            let mut seps = [(sep, hint(sep.search_key().user_key, old_prefix as usize)); CAP + 1];
            for j in 0..CAP {
                seps[j + usize::from(j >= i)] = (p.entry_at(j), p.hints[j].load(Ordering::Relaxed));
            }
            let mut kids = [right; CAP + 2];
            for j in 0..=CAP {
                kids[j + usize::from(j > i)] = parent.child_ptr(j);
            }
            let mid = if i == CAP { CAP } else { SPLIT_AT };
            let up = seps[mid].0;

            let new_prefix = fence_prefix(Some(up), step.upper);
            let new_ptr = Self::alloc_inner(&mut w.arena, new_prefix);
            // SAFETY: just allocated and initialised, not yet published.
            let new = unsafe { &*new_ptr };
            new.node.fill(&seps[mid + 1..], old_prefix, new_prefix);
            for (j, c) in kids[mid + 1..].iter().enumerate() {
                new.children[j].store(*c, Ordering::Release);
            }
            new.node.count.store((CAP - mid) as u32, Ordering::Relaxed);

            w.locked.push((ptr::from_ref(p), p.lock()));
            let left_prefix = fence_prefix(step.lower, Some(up));
            p.prefix.store(left_prefix, Ordering::Relaxed);
            p.fill(&seps[..mid], old_prefix, left_prefix);
            for (j, c) in kids[..=mid].iter().enumerate() {
                parent.children[j].store(*c, Ordering::Release);
            }
            p.count.store(mid as u32, Ordering::Relaxed);

            left = p;
            sep = up;
            right = new_ptr.cast::<Node>();
        }
        // `left` was the root: grow the tree by one level.
        let root_ptr = Self::alloc_inner(&mut w.arena, 0);
        // SAFETY: just allocated and initialised, not yet published.
        let root = unsafe { &*root_ptr };
        root.node.set_slot(0, sep, 0);
        root.children[0].store(left.cast_mut(), Ordering::Release);
        root.children[1].store(right, Ordering::Release);
        root.node.count.store(1, Ordering::Relaxed);
        // Readers that loaded the old root see it odd (it is locked) or, once it is even
        // again, see that the root pointer moved, and restart.
        self.root.store(root_ptr.cast::<Node>(), Ordering::Release);
    }

    /// Checks the structural invariants (order, fences, prefixes, hints) of the whole
    /// tree; for tests, with no writer running. Returns the number of entries.
    #[cfg(test)]
    pub(crate) fn check(&self) -> usize {
        fn walk(
            node: &Node,
            lower: Option<Entry>,
            upper: Option<Entry>,
            depth: usize,
            leaf_depth: &mut Option<usize>,
        ) -> usize {
            let n = node.count();
            assert_eq!(node.version.load(Ordering::Relaxed) & 1, 0);
            assert_eq!(
                node.prefix.load(Ordering::Relaxed),
                fence_prefix(lower, upper)
            );
            let keys: Vec<Entry> = (0..n).map(|i| node.entry_at(i)).collect();
            for (i, k) in keys.iter().enumerate() {
                let sk = k.search_key();
                assert_eq!(
                    node.hints[i].load(Ordering::Relaxed),
                    hint(sk.user_key, node.prefix())
                );
                if let Some(l) = lower {
                    assert!(l.search_key().cmp(&sk).is_le());
                }
                if let Some(u) = upper {
                    assert!(sk.cmp(&u.search_key()).is_lt());
                }
            }
            for w in keys.windows(2) {
                assert!(w[0].search_key().cmp(&w[1].search_key()).is_lt());
            }
            match node.inner() {
                None => {
                    assert!(n > 0 || (lower.is_none() && upper.is_none()));
                    assert_eq!(*leaf_depth.get_or_insert(depth), depth, "unbalanced");
                    if let Some(l) = lower {
                        assert!(
                            keys[0].search_key().cmp(&l.search_key()).is_eq(),
                            "a leaf lost its separator's key"
                        );
                    }
                    n
                }
                Some(inner) => (0..=n)
                    .map(|i| {
                        let lo = if i > 0 { Some(keys[i - 1]) } else { lower };
                        let hi = if i < n { Some(keys[i]) } else { upper };
                        let child = inner.child(i).expect("missing child");
                        walk(child, lo, hi, depth + 1, leaf_depth)
                    })
                    .sum(),
            }
        }
        walk(self.root(), None, None, 0, &mut None)
    }
}
