//! User-facing iteration: a merged view of MemTables and tables, resolved to the newest
//! visible version of each user key, with tombstones and shadowed versions skipped.

use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use strata_compaction::{FileMeta, LevelIter, MergingIter, TableOpener};
use strata_core::key::encode_internal_key;
use strata_core::{
    Error, FragmentedTombstones, InternalKey, MAX_SEQUENCE, ParsedInternalKey, Result,
    SequenceNumber, SortedIter, ValueKind, compare_internal_keys,
};
use strata_memtable::MemTableIter;
use strata_sstable::{Table, TableIter};

use crate::db::DbInner;
use crate::merge::{KeyHistory, live_value};
use crate::tree::View;

/// A range of user keys.
#[derive(Clone, Debug)]
pub(crate) struct KeyRange {
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
}

impl KeyRange {
    pub fn from_bounds<K: AsRef<[u8]>, R: RangeBounds<K>>(r: R) -> Self {
        let own = |b: Bound<&K>| match b {
            Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
            Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        KeyRange {
            lo: own(r.start_bound()),
            hi: own(r.end_bound()),
        }
    }

    /// Every key starting with `prefix`: up to, excluding, the prefix's successor (the
    /// prefix with its last non-0xff byte incremented), or unbounded if there is none.
    pub fn prefix(prefix: &[u8]) -> Self {
        let mut end = prefix.to_vec();
        while end.last() == Some(&0xff) {
            end.pop();
        }
        let hi = match end.last_mut() {
            Some(b) => {
                *b += 1;
                Bound::Excluded(end)
            }
            None => Bound::Unbounded,
        };
        KeyRange {
            lo: Bound::Included(prefix.to_vec()),
            hi,
        }
    }

    /// The bounds as slices, for a `BTreeMap<Vec<u8>, _>::range`.
    pub fn as_slices(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        fn slice(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
            match b {
                Bound::Included(k) => Bound::Included(k.as_slice()),
                Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
                Bound::Unbounded => Bound::Unbounded,
            }
        }
        (slice(&self.lo), slice(&self.hi))
    }

    fn above_lo(&self, k: &[u8]) -> bool {
        match &self.lo {
            Bound::Included(lo) => k >= lo.as_slice(),
            Bound::Excluded(lo) => k > lo.as_slice(),
            Bound::Unbounded => true,
        }
    }

    fn below_hi(&self, k: &[u8]) -> bool {
        match &self.hi {
            Bound::Included(hi) => k <= hi.as_slice(),
            Bound::Excluded(hi) => k < hi.as_slice(),
            Bound::Unbounded => true,
        }
    }

    /// Whether any key of `[lo, hi]` (inclusive) lies in the range.
    pub fn overlaps(&self, lo: &[u8], hi: &[u8]) -> bool {
        self.below_hi(lo) && self.above_lo(hi) && {
            // [lo, hi] might straddle the range entirely.
            lo <= hi
        }
    }
}

/// One input of the merged stream: an enum rather than a boxed trait object, so building
/// an iterator allocates no box per input and each step is a predictable branch instead of
/// a virtual call.
// The variants differ in size, but children live side by side in one vector allocated
// once per iterator: boxing the large variant would bring back an allocation per table.
#[allow(clippy::large_enum_variant)]
enum Child {
    Mem(MemTableIter),
    Table(TableIter),
    Level(LevelIter),
}

macro_rules! each_child {
    ($self:expr, $c:ident => $e:expr) => {
        match $self {
            Child::Mem($c) => $e,
            Child::Table($c) => $e,
            Child::Level($c) => $e,
        }
    };
}

impl SortedIter for Child {
    #[inline]
    fn valid(&self) -> bool {
        each_child!(self, c => c.valid())
    }
    fn seek_to_first(&mut self) -> Result<()> {
        each_child!(self, c => c.seek_to_first())
    }
    fn seek_to_last(&mut self) -> Result<()> {
        each_child!(self, c => c.seek_to_last())
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        each_child!(self, c => c.seek(target))
    }
    #[inline]
    fn next(&mut self) -> Result<()> {
        each_child!(self, c => c.next())
    }
    #[inline]
    fn prev(&mut self) -> Result<()> {
        each_child!(self, c => c.prev())
    }
    #[inline]
    fn key(&self) -> &[u8] {
        each_child!(self, c => c.key())
    }
    #[inline]
    fn value(&self) -> &[u8] {
        each_child!(self, c => c.value())
    }
    #[inline]
    fn value_bytes(&self) -> Bytes {
        each_child!(self, c => c.value_bytes())
    }
}

type Merged = MergingIter<Child>;

/// What one child of the merged stream reads: for deciding whether its seek may wait.
enum Source {
    Mem,
    /// An L0 table.
    Table(Arc<Table>, Arc<FileMeta>),
    /// A level (L1 and deeper) of the pinned version.
    Level(usize),
}

/// The range tombstones an iterator weighs entries against, per child of the merged
/// stream that has any.
#[derive(Default)]
struct RangeCover {
    /// `(child index, its tombstones, the fragment position of the last key asked
    /// about)`, in child order (newest first).
    sets: Vec<(usize, Arc<FragmentedTombstones>, std::cell::Cell<usize>)>,
    /// Keys around the last one asked about that no set covers.
    clear: ClearSpan,
}

/// A stretch of keys that no tombstone a snapshot sees covers, learnt from the last
/// key found uncovered: a scan's next keys mostly fall in it, and checking it costs
/// two comparisons of local bytes instead of a look at every set's fragments.
#[derive(Default)]
struct ClearSpan {
    known: bool,
    snapshot: SequenceNumber,
    /// Inclusive low bound, when `lo_bounded`.
    lo: Vec<u8>,
    lo_bounded: bool,
    /// Exclusive high bound, when `hi_bounded`.
    hi: Vec<u8>,
    hi_bounded: bool,
}

impl ClearSpan {
    /// Whether `key`, met by a cursor moving `forward` (or backward) since the key the
    /// span was learnt from, lies in it. A cursor's keys only move its one way, so one
    /// bound is all it can cross.
    fn holds(&self, key: &[u8], snapshot: SequenceNumber, forward: bool) -> bool {
        self.known
            && self.snapshot == snapshot
            && if forward {
                !self.hi_bounded || key < self.hi.as_slice()
            } else {
                !self.lo_bounded || self.lo.as_slice() <= key
            }
    }

    fn set(&mut self, snapshot: SequenceNumber, lo: Option<&[u8]>, hi: Option<&[u8]>) {
        self.known = true;
        self.snapshot = snapshot;
        for (bound, buf, bounded) in [
            (lo, &mut self.lo, &mut self.lo_bounded),
            (hi, &mut self.hi, &mut self.hi_bounded),
        ] {
            buf.clear();
            buf.extend_from_slice(bound.unwrap_or_default());
            *bounded = bound.is_some();
        }
    }
}

/// The newest visible range tombstone covering a key.
struct Cover<'a> {
    seq: SequenceNumber,
    /// The child (of the merged stream) it belongs to: every older child's entries of
    /// keys in the fragment are older than it (the tree's invariant), so deleted.
    child: usize,
    start: &'a [u8],
    end: &'a [u8],
}

impl RangeCover {
    fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// The newest tombstone covering `key` at `snapshot`, for a cursor moving `forward`
    /// (or backward): each cursor has its own `RangeCover`, and asks about its keys in
    /// its direction of travel.
    fn cover(&mut self, key: &[u8], snapshot: SequenceNumber, forward: bool) -> Option<Cover<'_>> {
        let RangeCover { sets, clear } = self;
        if clear.holds(key, snapshot, forward) {
            return None;
        }
        let mut best: Option<Cover<'_>> = None;
        // The stretch around `key` every set answers alike: where none covers it, the
        // next keys inside it need no look at the sets.
        let (mut lo, mut hi): (Option<&[u8]>, Option<&[u8]>) = (None, None);
        for (child, set, hint) in sets.iter() {
            let mut h = hint.get();
            let fragment = set.fragment_at_hinted(key, &mut h);
            hint.set(h);
            let (set_lo, set_hi) = set.span_at_hint(key, h);
            lo = lo.max(set_lo);
            hi = match (hi, set_hi) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let Some(fragment) = fragment else {
                continue;
            };
            let Some(seq) = fragment.newest_visible(snapshot) else {
                continue;
            };
            if best.as_ref().is_none_or(|b| seq > b.seq) {
                best = Some(Cover {
                    seq,
                    child: *child,
                    start: fragment.start(),
                    end: fragment.end(),
                });
            }
        }
        if best.is_none() {
            clear.set(snapshot, lo, hi);
        } else {
            clear.known = false;
        }
        best
    }
}

/// Builds the merged stream of every source in `view`, newest first, what each child
/// reads, and the children's range tombstones.
fn merged(view: &View) -> Result<(Merged, Vec<Source>, RangeCover)> {
    let levels = &view.version.levels;
    let n = 1
        + view.frozen.len()
        + levels[0].len()
        + levels.iter().skip(1).filter(|l| !l.is_empty()).count();
    let mut children = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    let mut cover = RangeCover::default();
    for m in view.memtables() {
        if m.range_tombstone_count() > 0 {
            cover
                .sets
                .push((children.len(), m.range_tombstones(), Default::default()));
        }
        children.push(Child::Mem(m.iter()));
        sources.push(Source::Mem);
    }
    for f in &view.version.levels[0] {
        let table = f.table()?;
        if !table.range_tombstones().is_empty() {
            cover.sets.push((
                children.len(),
                Arc::clone(table.range_tombstones()),
                Default::default(),
            ));
        }
        children.push(Child::Table(table.iter()));
        sources.push(Source::Table(table, Arc::clone(&f.meta)));
    }
    for (level, files) in view.version.levels.iter().enumerate().skip(1) {
        if files.is_empty() {
            continue;
        }
        if view.version.has_range_tombstones(level)
            && let Some(set) = view.version.level_range_tombstones(level)?
        {
            cover.sets.push((children.len(), set, Default::default()));
        }
        // The opener finds the file by binary search in the pinned version (sorted by
        // smallest key), so building an iterator allocates no per-level index.
        let version = Arc::clone(&view.version);
        let opener: TableOpener = Arc::new(move |meta: &FileMeta| {
            let files = &version.levels[level];
            let file = files
                .binary_search_by(|f| f.meta.smallest.cmp(&meta.smallest))
                .ok()
                .and_then(|i| files.get(i))
                .filter(|f| f.meta.number == meta.number)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("table {} is not in this version", meta.number))
                })?;
            Ok(Box::new(file.table()?.iter()) as Box<dyn SortedIter + Send>)
        });
        let metas = files.iter().map(|f| Arc::clone(&f.meta)).collect();
        children.push(Child::Level(LevelIter::new(metas, opener)));
        sources.push(Source::Level(level));
    }
    Ok((MergingIter::new(children), sources, cover))
}

/// Whether the seek of a child reading `source` to `target` (the first version of
/// `user_key`) may wait, and if so, writes into `bound` a key at or below the entry it
/// would land on (see [`MergingIter::seek_deferred`]):
///
/// - the table (or, in a level, the one table that can hold the landing entry) starts
///   at or after `target`: its smallest key is the landing entry;
/// - its Bloom filter excludes `user_key`: the landing entry has a larger user key, so
///   it is above every version of `user_key` (a filter has no false negatives).
///
/// A seek that reads no block anyway (every key below `target`) is not postponed.
fn defer_seek(
    view: &View,
    source: &Source,
    user_key: &[u8],
    target: &[u8],
    bound: &mut Vec<u8>,
) -> bool {
    let (meta, file) = match source {
        Source::Mem => return false,
        Source::Table(_, meta) => (meta, None),
        Source::Level(level) => {
            let files = &view.version.levels[*level];
            let i = files.partition_point(|f| {
                compare_internal_keys(f.meta.largest.as_bytes(), target).is_lt()
            });
            match files.get(i) {
                Some(f) => (&f.meta, Some(f)),
                None => return false,
            }
        }
    };
    if compare_internal_keys(meta.largest.as_bytes(), target).is_lt() {
        return false;
    }
    if compare_internal_keys(meta.smallest.as_bytes(), target).is_ge() {
        bound.extend_from_slice(meta.smallest.as_bytes());
        return true;
    }
    let excluded = match (source, file) {
        (Source::Table(table, _), _) => !table.may_contain(user_key),
        // A level's table comes from the table cache; if it cannot be opened, the real
        // seek reports why.
        (_, Some(f)) => f.table().is_ok_and(|t| !t.may_contain(user_key)),
        _ => false,
    };
    if excluded {
        // The largest internal key of `user_key`: sequence 0, the lowest kind.
        encode_internal_key(bound, user_key, 0, ValueKind::Delete);
    }
    excluded
}

/// `a == b`, settling most unequal keys on their first 8 bytes without a call into
/// `bcmp`: a scan compares every entry's user key with the previous one.
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    match (a.first_chunk::<8>(), b.first_chunk::<8>()) {
        (Some(x), Some(y)) if x != y => false,
        _ => a == b,
    }
}

/// One direction's cursor over the merged stream.
struct Cursor {
    it: Merged,
    sources: Vec<Source>,
    ranges: RangeCover,
    started: bool,
    /// The forward cursor stands on the entry it yielded last; it moves past it at the
    /// next call, so a caller that reads one entry (a seek) never moves the merge (which
    /// could make it read blocks of children whose seeks were postponed).
    advance: bool,
}

/// An iterator over `(key, value)` pairs in key order, reversible with `.rev()` (both
/// ends may be consumed; they stop where they meet). It owns what it reads: a pinned
/// view of MemTables and tables, so it holds no lock and outlives nothing.
///
/// Once the database is closed (on any handle), the next item is `Err(Error::Closed)`
/// and the iterator ends: it does not go on reading files a later opener of the
/// directory may change.
pub struct DbIter {
    inner: Arc<DbInner>,
    view: Arc<View>,
    seq: SequenceNumber,
    range: KeyRange,
    front: Option<Cursor>,
    back: Option<Cursor>,
    /// Whether the front has yielded an entry; its last key is then `skip` (the forward
    /// cursor returns right after recording the key it yields). The ends stop when they
    /// meet.
    front_yielded: bool,
    /// Likewise for the back: its last key is then `pending`.
    back_yielded: bool,
    /// Reused buffer: the user key the backward cursor is resolving (and, between
    /// calls, the last one it yielded).
    pending: Vec<u8>,
    /// Reused buffer: the user key the forward cursor has finished with (valid when
    /// `skip_valid`); its older versions are skipped.
    skip: Vec<u8>,
    skip_valid: bool,
    done: bool,
    /// An error to yield first (then end): the keyspace was dropped.
    refused: Option<Error>,
    /// The time expiring values are judged at: the clock's when the iterator was
    /// made, so one iteration sees one moment.
    now_ms: u64,
}

impl std::fmt::Debug for DbIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbIter").field("seq", &self.seq).finish()
    }
}

fn corrupt_key(inner: &DbInner) -> Error {
    Error::corruption(
        &inner.dir,
        0,
        "an iterator yielded a malformed internal key",
    )
}

impl DbIter {
    pub(crate) fn new(inner: Arc<DbInner>, seq: Option<SequenceNumber>, range: KeyRange) -> Self {
        let tree = Arc::clone(&inner.tree);
        Self::in_tree(inner, &tree, seq, range)
    }

    /// An iterator over keyspace `tree` at `seq` (the newest state if `None`).
    pub(crate) fn in_tree(
        inner: Arc<DbInner>,
        tree: &crate::tree::Tree,
        seq: Option<SequenceNumber>,
        range: KeyRange,
    ) -> Self {
        // View first, then sequence: see `DbInner::get_latest` for why.
        let view = tree.view();
        let seq = seq.unwrap_or_else(|| inner.visible_seq.load(Ordering::Acquire));
        Self::in_view(inner, view, seq, range)
    }

    /// An iterator over `view` (already pinned) at `seq`.
    pub(crate) fn in_view(
        inner: Arc<DbInner>,
        view: Arc<View>,
        seq: SequenceNumber,
        range: KeyRange,
    ) -> Self {
        let now_ms = inner.opts.clock.0.now_ms();
        DbIter {
            inner,
            view,
            now_ms,
            seq,
            range,
            front: None,
            back: None,
            front_yielded: false,
            back_yielded: false,
            pending: Vec::new(),
            skip: Vec::new(),
            skip_valid: false,
            done: false,
            refused: None,
        }
    }

    /// The iterator, made to yield `refusal` (if any) and end.
    pub(crate) fn refusing_if(mut self, refusal: Option<Error>) -> Self {
        self.refused = refusal;
        self
    }

    /// `Err` once the database is closed or the iterator was refused: the item to
    /// yield before ending.
    fn check(&mut self) -> Result<()> {
        if let Some(e) = self.refused.take() {
            return Err(e);
        }
        // After close a later opener may rewrite or delete the pinned files.
        self.inner.check_open()
    }

    fn cursor(view: &View, slot: &mut Option<Cursor>) -> Result<()> {
        if slot.is_none() {
            let (it, sources, ranges) = merged(view)?;
            *slot = Some(Cursor {
                it,
                sources,
                ranges,
                started: false,
                advance: false,
            });
        }
        Ok(())
    }

    fn step_forward(&mut self) -> Result<Option<(Bytes, Bytes)>> {
        Self::cursor(&self.view, &mut self.front)?;
        let Some(c) = self.front.as_mut() else {
            return Ok(None);
        };
        if !c.started {
            c.started = true;
            let lo = match &self.range.lo {
                Bound::Unbounded => None,
                Bound::Included(k) => Some(k),
                Bound::Excluded(k) => {
                    self.skip.clone_from(k);
                    self.skip_valid = true;
                    Some(k)
                }
            };
            match lo {
                None => c.it.seek_to_first()?,
                Some(k) => {
                    let target = InternalKey::for_seek(k, MAX_SEQUENCE);
                    let (view, sources) = (&self.view, &c.sources);
                    c.it.seek_deferred(target.as_bytes(), |i, bound| {
                        sources
                            .get(i)
                            .is_some_and(|s| defer_seek(view, s, k, target.as_bytes(), bound))
                    })?;
                }
            }
        } else if c.advance {
            c.advance = false;
            c.it.next()?;
        }
        while c.it.valid() {
            let p = ParsedInternalKey::parse(c.it.key()).ok_or_else(|| corrupt_key(&self.inner))?;
            if !self.range.below_hi(p.user_key) {
                return Ok(None);
            }
            if p.seq > self.seq || (self.skip_valid && same_key(p.user_key, &self.skip)) {
                c.it.next()?;
                continue;
            }
            // The newest visible entry of a new user key.
            self.skip.clear();
            self.skip.extend_from_slice(p.user_key);
            self.skip_valid = true;
            if !c.ranges.is_empty()
                && let Some(cover) = c.ranges.cover(p.user_key, self.seq, true)
                && cover.seq > p.seq
            {
                // Deleted by a range tombstone. Children older than the tombstone's
                // hold only deleted entries up to its end: they move past it at once
                // rather than one key at a time.
                let past = InternalKey::for_seek(cover.end, MAX_SEQUENCE);
                c.it.next()?;
                c.it.skip_forward_from(cover.child + 1, past.as_bytes())?;
                continue;
            }
            if p.kind == ValueKind::Delete {
                c.it.next()?;
                continue;
            }
            if p.kind == ValueKind::ExpiringPut {
                // Found until it expires; a tombstone from then on.
                let Some(value) = live_value(&c.it.value_bytes(), self.now_ms) else {
                    c.it.next()?;
                    continue;
                };
                let item = (Bytes::copy_from_slice(p.user_key), value);
                c.advance = true;
                return Ok(Some(item));
            }
            if p.kind == ValueKind::Merge {
                let key = Bytes::copy_from_slice(p.user_key);
                let cover = if c.ranges.is_empty() {
                    None
                } else {
                    c.ranges.cover(&key, self.seq, true).map(|t| t.seq)
                };
                // The cursor ends past the entries folded: on an older entry of the key
                // (skipped next time) or the next key's first.
                c.advance = false;
                let (operator, now_ms) = (self.view.merge_operator(), self.now_ms);
                match Self::fold_forward(c, &key, cover, operator, now_ms)? {
                    Some(value) => return Ok(Some((key, value))),
                    None => continue,
                }
            }
            let item = (Bytes::copy_from_slice(p.user_key), c.it.value_bytes());
            c.advance = true;
            return Ok(Some(item));
        }
        Ok(None)
    }

    /// Folds the history of `key`, whose newest visible entry (a merge operand) the
    /// forward cursor stands on: its entries newest first, up to a put, a tombstone or
    /// one older than `cover` (the newest range tombstone covering the key).
    fn fold_forward(
        c: &mut Cursor,
        key: &[u8],
        cover: Option<SequenceNumber>,
        operator: Option<&dyn strata_core::MergeOperator>,
        now_ms: u64,
    ) -> Result<Option<Bytes>> {
        let mut history = KeyHistory::new(now_ms);
        history.push(ValueKind::Merge, c.it.value_bytes());
        c.it.next()?;
        // Older entries of the key follow, newest first (all visible: older than the
        // operand).
        while c.it.valid() {
            let p = ParsedInternalKey::parse(c.it.key()).ok_or_else(|| {
                Error::corruption("a table or MemTable", 0, "malformed internal key")
            })?;
            if !same_key(p.user_key, key) {
                break;
            }
            if cover.is_some_and(|t| t > p.seq) {
                history.cut();
                break;
            }
            if history.push(p.kind, c.it.value_bytes()) {
                break;
            }
            c.it.next()?;
        }
        history.resolve(operator, key)
    }

    fn step_backward(&mut self) -> Result<Option<(Bytes, Bytes)>> {
        Self::cursor(&self.view, &mut self.back)?;
        let Some(c) = self.back.as_mut() else {
            return Ok(None);
        };
        if !c.started {
            c.started = true;
            // Position on the last entry at or below the upper bound.
            match &self.range.hi {
                Bound::Unbounded => c.it.seek_to_last()?,
                Bound::Included(k) => {
                    let mut succ = k.clone();
                    succ.push(0);
                    c.it.seek(InternalKey::for_seek(&succ, MAX_SEQUENCE).as_bytes())?;
                    if c.it.valid() {
                        c.it.prev()?
                    } else {
                        c.it.seek_to_last()?
                    }
                }
                Bound::Excluded(k) => {
                    c.it.seek(InternalKey::for_seek(k, MAX_SEQUENCE).as_bytes())?;
                    if c.it.valid() {
                        c.it.prev()?
                    } else {
                        c.it.seek_to_last()?
                    }
                }
            }
        }
        // Walking backwards meets a key's versions oldest first: the last visible one
        // seen before the user key changes is the newest visible. `self.pending` holds
        // the user key being resolved (when `has_pending`), `versions` its visible
        // entries so far.
        let mut has_pending = false;
        let mut versions = BackwardVersions::default();
        while c.it.valid() {
            let new_key = has_pending && {
                let p =
                    ParsedInternalKey::parse(c.it.key()).ok_or_else(|| corrupt_key(&self.inner))?;
                !same_key(&self.pending, p.user_key)
            };
            if new_key {
                // A new user key: the previous one is resolved.
                has_pending = false;
                let operator = (self.view.merge_operator(), self.now_ms);
                let taken = std::mem::take(&mut versions);
                match Self::resolve_backward(c, &self.pending, taken, self.seq, operator)? {
                    Resolved::Value(v) => {
                        return Ok(Some((Bytes::copy_from_slice(&self.pending), v)));
                    }
                    Resolved::Deleted => {}
                    // Older children moved: read the top again.
                    Resolved::Skipped => continue,
                }
            }
            let p = ParsedInternalKey::parse(c.it.key()).ok_or_else(|| corrupt_key(&self.inner))?;
            if !self.range.above_lo(p.user_key) {
                return Ok(None);
            }
            if !has_pending {
                has_pending = true;
                self.pending.clear();
                self.pending.extend_from_slice(p.user_key);
            }
            if p.seq <= self.seq {
                versions.push(p.kind, p.seq, c.it.value_bytes());
            }
            c.it.prev()?;
        }
        if !has_pending {
            return Ok(None);
        }
        Ok(
            match Self::resolve_backward(
                c,
                &self.pending,
                versions,
                self.seq,
                (self.view.merge_operator(), self.now_ms),
            )? {
                Resolved::Value(v) => Some((Bytes::copy_from_slice(&self.pending), v)),
                Resolved::Deleted | Resolved::Skipped => None,
            },
        )
    }

    /// What the backward cursor makes of `key`, whose visible entries are
    /// `versions`. A key deleted by a range tombstone moves the children older than the
    /// tombstone to before its start (their entries in between are deleted too).
    fn resolve_backward(
        c: &mut Cursor,
        key: &[u8],
        versions: BackwardVersions,
        snapshot: SequenceNumber,
        (operator, now_ms): (Option<&dyn strata_core::MergeOperator>, u64),
    ) -> Result<Resolved> {
        let Some(seq) = versions.newest_seq() else {
            return Ok(Resolved::Deleted);
        };
        let mut cover_seq = None;
        if !c.ranges.is_empty()
            && let Some(cover) = c.ranges.cover(key, snapshot, false)
        {
            if cover.seq > seq {
                if c.it.valid() {
                    let before = InternalKey::for_seek(cover.start, MAX_SEQUENCE);
                    c.it.skip_backward_from(cover.child + 1, before.as_bytes())?;
                    return Ok(Resolved::Skipped);
                }
                return Ok(Resolved::Deleted);
            }
            cover_seq = Some(cover.seq);
        }
        Ok(match versions.resolve(cover_seq, operator, key, now_ms)? {
            Some(v) => Resolved::Value(v),
            None => Resolved::Deleted,
        })
    }
}

/// The visible entries of the key the backward cursor is resolving, met oldest first:
/// the newest put or tombstone, and the merge operands newer than it (oldest first).
/// Without merge operands this is just the newest entry.
#[derive(Default)]
struct BackwardVersions {
    /// The newest put or tombstone so far: kind, sequence, value.
    base: Option<(ValueKind, SequenceNumber, Bytes)>,
    /// Merge operands newer than `base`, oldest first.
    operands: Vec<(SequenceNumber, Bytes)>,
}

impl BackwardVersions {
    fn push(&mut self, kind: ValueKind, seq: SequenceNumber, value: Bytes) {
        if kind == ValueKind::Merge {
            self.operands.push((seq, value));
        } else {
            self.base = Some((kind, seq, value));
            self.operands.clear();
        }
    }

    fn newest_seq(&self) -> Option<SequenceNumber> {
        match self.operands.last() {
            Some((seq, _)) => Some(*seq),
            None => self.base.as_ref().map(|(_, seq, _)| *seq),
        }
    }

    /// The key's value, given `cover`: the newest range tombstone covering it, older
    /// than its newest entry (entries older than it are deleted).
    fn resolve(
        self,
        cover: Option<SequenceNumber>,
        operator: Option<&dyn strata_core::MergeOperator>,
        key: &[u8],
        now_ms: u64,
    ) -> Result<Option<Bytes>> {
        if self.operands.is_empty() {
            return Ok(match self.base {
                Some((ValueKind::Put, _, value)) => Some(value),
                Some((ValueKind::ExpiringPut, _, value)) => live_value(&value, now_ms),
                _ => None,
            });
        }
        let mut history = KeyHistory::new(now_ms);
        for (seq, value) in self.operands.into_iter().rev() {
            if cover.is_some_and(|t| t > seq) {
                history.cut();
                break;
            }
            history.push(ValueKind::Merge, value);
        }
        if !history.is_complete() {
            match self.base {
                Some((kind, seq, value)) if cover.is_none_or(|t| t < seq) => {
                    history.push(kind, value);
                }
                _ => history.cut(),
            }
        }
        history.resolve(operator, key)
    }
}

/// How the backward cursor resolved a key.
enum Resolved {
    Value(Bytes),
    Deleted,
    /// Deleted by a range tombstone, and children skipped past it.
    Skipped,
}

impl Iterator for DbIter {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Err(e) = self.check() {
            self.done = true;
            return Some(Err(e));
        }
        match self.step_forward() {
            Ok(Some(item)) if !self.back_yielded || item.0[..] < self.pending[..] => {
                self.front_yielded = true;
                Some(Ok(item))
            }
            Ok(_) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl DoubleEndedIterator for DbIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Err(e) = self.check() {
            self.done = true;
            return Some(Err(e));
        }
        match self.step_backward() {
            Ok(Some(item)) if !self.front_yielded || item.0[..] > self.skip[..] => {
                self.back_yielded = true;
                Some(Ok(item))
            }
            Ok(_) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
