//! Write batches and their encoding, the payload of every WAL record.
//!
//! A batch is applied atomically: it becomes one WAL record and takes consecutive
//! sequence numbers. Several writers' batches committed together by group commit are
//! concatenated into one record (same encoding, summed count).
//!
//! Encoding (see `docs/format/wal.md`, "Payload: write batch"):
//!
//! ```text
//! +-----------------+----------------+---------------------------------------------+
//! | first seq       | entry count    | entries, in order                           |
//! | varint64        | varint32       |   Put:    0x01 | varint len | key | varint len | value
//! |                 |                |   Delete: 0x00 | varint len | key           |
//! |                 |                |   DeleteRange: 0x02 | varint len | start     |
//! |                 |                |                | varint len | end (exclusive)|
//! |                 |                |   Merge:  0x04 | varint len | key | varint len | operand
//! +-----------------+----------------+---------------------------------------------+
//! ```
//!
//! An entry of a keyspace other than the default one (manifest format 4) sets the high
//! bit of its byte and names the keyspace right after it: `0x80 | op`, varint32
//! keyspace id, then the op's fields. Default-keyspace entries keep the bytes above,
//! so a database that never makes a keyspace writes the WALs it always did.
//!
//! Merge entries (`0x04`) need manifest format 5: older builds refuse the database
//! before they could meet one in a WAL.
//!
//! Entry `i` has sequence `first seq + i`. Varints keep the per-write overhead small: a
//! 16-byte key and 100-byte value cost 3 bytes of entry framing and ~4 of header.

use strata_core::varint::{
    get_length_prefixed, get_varint32, get_varint64, put_length_prefixed, put_varint32,
    put_varint64,
};
use strata_core::{SequenceNumber, ValueKind};

/// What a batch entry does. `Put` and `Delete` share their byte with
/// [`ValueKind`]; a range delete has a byte of its own (manifest format 3 and later:
/// older builds refuse the database before they could meet one in a WAL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BatchOp {
    /// Sets the key.
    Put,
    /// Deletes the key.
    Delete,
    /// Deletes every key in `[key, value)`: the entry's key is the start, its value
    /// the exclusive end.
    DeleteRange,
    /// Adds a merge operand (the value) to the key's value (see
    /// [`strata_core::merge`]).
    Merge,
    /// Sets the key until a time: the value is the expiry (u64 LE, ms since the UNIX
    /// epoch) then the user's value (see [`strata_core::expiry`]).
    PutExpiring,
    /// Sets the key for a time to live: the value is the time to live (u64 LE, ms) then
    /// the user's value. Only in a batch not yet written: the write-group leader turns
    /// it into a [`PutExpiring`](Self::PutExpiring) (a WAL entry of its byte is damage).
    PutTtl,
    /// Deletes every key at or after `key`. Only in a batch not yet written: the
    /// write-group leader turns it into a [`DeleteRange`](Self::DeleteRange) ending
    /// just past the largest key the database holds, before the WAL record is made, so
    /// a WAL never holds one (a WAL entry of its byte is damage).
    DeleteRangeToEnd,
}

const DELETE_RANGE_BYTE: u8 = 2;
const DELETE_RANGE_TO_END_BYTE: u8 = 3;
/// A merge operand's byte (not [`ValueKind::Merge`]'s 2, which range deletes took in
/// batches first).
const MERGE_BYTE: u8 = 4;
const PUT_EXPIRING_BYTE: u8 = 5;
const PUT_TTL_BYTE: u8 = 6;
/// Set on the op byte of an entry that names its keyspace (format 4).
const IN_KEYSPACE_FLAG: u8 = 0x80;

/// The id of the default keyspace: the one `Db`'s own methods read and write.
pub(crate) const DEFAULT_KEYSPACE: u32 = 0;

impl BatchOp {
    fn to_u8(self) -> u8 {
        match self {
            BatchOp::Put => ValueKind::Put as u8,
            BatchOp::Delete => ValueKind::Delete as u8,
            BatchOp::DeleteRange => DELETE_RANGE_BYTE,
            BatchOp::DeleteRangeToEnd => DELETE_RANGE_TO_END_BYTE,
            BatchOp::Merge => MERGE_BYTE,
            BatchOp::PutExpiring => PUT_EXPIRING_BYTE,
            BatchOp::PutTtl => PUT_TTL_BYTE,
        }
    }

    /// Whether the entry has a second length-prefixed field (a value, or a range end).
    fn has_value(self) -> bool {
        matches!(
            self,
            BatchOp::Put
                | BatchOp::DeleteRange
                | BatchOp::Merge
                | BatchOp::PutExpiring
                | BatchOp::PutTtl
        )
    }

    fn from_u8(byte: u8, in_memory: bool) -> Option<Self> {
        match byte {
            DELETE_RANGE_BYTE => Some(BatchOp::DeleteRange),
            DELETE_RANGE_TO_END_BYTE if in_memory => Some(BatchOp::DeleteRangeToEnd),
            MERGE_BYTE => Some(BatchOp::Merge),
            PUT_EXPIRING_BYTE => Some(BatchOp::PutExpiring),
            PUT_TTL_BYTE if in_memory => Some(BatchOp::PutTtl),
            b if b == ValueKind::Put as u8 => Some(BatchOp::Put),
            b if b == ValueKind::Delete as u8 => Some(BatchOp::Delete),
            _ => None,
        }
    }
}

/// A set of puts and deletes applied atomically.
///
/// ```
/// let mut batch = strata::WriteBatch::new();
/// batch.put("k1", "v1");
/// batch.delete("k0");
/// assert_eq!(batch.len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    entries: Vec<u8>,
    count: u32,
    /// Whether it holds a [`BatchOp::DeleteRangeToEnd`] (its end is decided when the
    /// batch is written).
    open_ranges: bool,
    /// Whether it holds a [`BatchOp::PutTtl`] (its expiry is decided when the batch is
    /// written).
    ttl_puts: bool,
    /// The database instance whose keyspace handles named keyspaces here (ids are per
    /// database), and whether handles of several did.
    origin: Option<u64>,
    mixed_origins: bool,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `bytes` of encoded entries (about key + value + 3
    /// bytes per put).
    pub fn with_capacity(bytes: usize) -> Self {
        WriteBatch {
            entries: Vec::with_capacity(bytes),
            count: 0,
            open_ranges: false,
            ttl_puts: false,
            origin: None,
            mixed_origins: false,
        }
    }

    /// Adds a put of `value` at `key`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.push(DEFAULT_KEYSPACE, BatchOp::Put, key.as_ref(), value.as_ref())
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.push(DEFAULT_KEYSPACE, BatchOp::Delete, key.as_ref(), &[])
    }

    /// Adds a merge of `operand` into `key`'s value: written without reading the key;
    /// reads fold it with the key's older operands and value through the keyspace's
    /// merge operator ([`DbBuilder::merge_operator`](crate::DbBuilder::merge_operator)).
    ///
    /// ```
    /// use strata::MergeOperator;
    ///
    /// struct Append;
    /// impl MergeOperator for Append {
    ///     fn name(&self) -> &str { "append" }
    ///     fn merge(&self, _: &[u8], existing: Option<&[u8]>, ops: &[&[u8]]) -> Option<Vec<u8>> {
    ///         let mut v = existing.unwrap_or_default().to_vec();
    ///         ops.iter().for_each(|o| v.extend_from_slice(o));
    ///         Some(v)
    ///     }
    /// }
    ///
    /// let db = strata::DbBuilder::in_memory().merge_operator(Append).open()?;
    /// let mut batch = strata::WriteBatch::new();
    /// batch.put("log", "a").merge("log", "b").merge("log", "c");
    /// db.write(batch, strata::WriteOptions::default())?;
    /// assert_eq!(db.get("log")?.as_deref(), Some(&b"abc"[..]));
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn merge(&mut self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> &mut Self {
        self.push(
            DEFAULT_KEYSPACE,
            BatchOp::Merge,
            key.as_ref(),
            operand.as_ref(),
        )
    }

    /// Adds a merge of `operand` into `key`'s value in `keyspace` (see
    /// [`merge`](Self::merge) and [`put_in`](Self::put_in)).
    pub fn merge_in(
        &mut self,
        keyspace: &crate::Keyspace,
        key: impl AsRef<[u8]>,
        operand: impl AsRef<[u8]>,
    ) -> &mut Self {
        self.note_origin(keyspace);
        self.push(
            keyspace.id(),
            BatchOp::Merge,
            key.as_ref(),
            operand.as_ref(),
        )
    }

    /// Adds a put of `value` at `key` that expires `ttl` after the batch is written:
    /// reads stop returning it then (as if deleted), and compaction reclaims its space
    /// (see `docs/ttl.md`). A `ttl` of zero writes a value that is already gone.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let clock = std::sync::Arc::new(strata::ManualClock::new(1_000));
    /// let db = strata::DbBuilder::in_memory().clock(clock.clone()).open()?;
    /// let mut batch = strata::WriteBatch::new();
    /// batch.put_with_ttl("session", "token", Duration::from_secs(60));
    /// db.write(batch, strata::WriteOptions::default())?;
    /// assert!(db.get("session")?.is_some());
    /// clock.advance(60_000);
    /// assert_eq!(db.get("session")?, None);
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn put_with_ttl(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: std::time::Duration,
    ) -> &mut Self {
        self.push_ttl(DEFAULT_KEYSPACE, key.as_ref(), value.as_ref(), ttl)
    }

    /// Adds a put with a time to live in `keyspace` (see
    /// [`put_with_ttl`](Self::put_with_ttl) and [`put_in`](Self::put_in)).
    pub fn put_in_with_ttl(
        &mut self,
        keyspace: &crate::Keyspace,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: std::time::Duration,
    ) -> &mut Self {
        self.note_origin(keyspace);
        self.push_ttl(keyspace.id(), key.as_ref(), value.as_ref(), ttl)
    }

    fn push_ttl(
        &mut self,
        keyspace: u32,
        key: &[u8],
        value: &[u8],
        ttl: std::time::Duration,
    ) -> &mut Self {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.ttl_puts = true;
        let stored = strata_core::expiry::encode_expiring(ttl_ms, value);
        self.push(keyspace, BatchOp::PutTtl, key, &stored)
    }

    /// Adds a put of `value` at `key` in `keyspace` (of the database the batch is
    /// written to; see [`Db::keyspace`](crate::Db::keyspace)). A batch may span
    /// keyspaces and is atomic across them.
    ///
    /// ```
    /// let db = strata::DbBuilder::in_memory().open()?;
    /// let index = db.keyspace("index")?;
    /// let mut batch = strata::WriteBatch::new();
    /// batch.put("user:1", "ada").put_in(&index, "name:ada", "user:1");
    /// db.write(batch, strata::WriteOptions::default())?;
    /// assert_eq!(index.get("name:ada")?.as_deref(), Some(&b"user:1"[..]));
    /// assert_eq!(db.get("name:ada")?, None); // another keyspace
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn put_in(
        &mut self,
        keyspace: &crate::Keyspace,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> &mut Self {
        self.note_origin(keyspace);
        self.push(keyspace.id(), BatchOp::Put, key.as_ref(), value.as_ref())
    }

    /// Records which database `keyspace` belongs to: a batch is written to one.
    fn note_origin(&mut self, keyspace: &crate::Keyspace) {
        let instance = keyspace.db_instance();
        match self.origin {
            None => self.origin = Some(instance),
            Some(o) if o != instance => self.mixed_origins = true,
            Some(_) => {}
        }
    }

    /// Whether the keyspaces this batch names belong to database instance `instance`.
    pub(crate) fn names_keyspaces_of(&self, instance: u64) -> bool {
        !self.mixed_origins && self.origin.is_none_or(|o| o == instance)
    }

    /// Adds a delete of `key` in `keyspace` (see [`put_in`](Self::put_in)).
    pub fn delete_in(&mut self, keyspace: &crate::Keyspace, key: impl AsRef<[u8]>) -> &mut Self {
        self.note_origin(keyspace);
        self.push(keyspace.id(), BatchOp::Delete, key.as_ref(), &[])
    }

    /// Adds a delete of every key in `[start, end)` of `keyspace` (see
    /// [`delete_range`](Self::delete_range) and [`put_in`](Self::put_in)).
    pub fn delete_range_in(
        &mut self,
        keyspace: &crate::Keyspace,
        start: impl AsRef<[u8]>,
        end: impl AsRef<[u8]>,
    ) -> &mut Self {
        let (start, end) = (start.as_ref(), end.as_ref());
        if start < end {
            self.note_origin(keyspace);
            self.push(keyspace.id(), BatchOp::DeleteRange, start, end);
        }
        self
    }

    /// Appends one entry; `value` is the end of a range delete, empty for deletes and
    /// open range deletes.
    fn push(&mut self, keyspace: u32, op: BatchOp, key: &[u8], value: &[u8]) -> &mut Self {
        let byte = op.to_u8();
        if keyspace == DEFAULT_KEYSPACE {
            self.entries.push(byte);
        } else {
            self.entries.push(IN_KEYSPACE_FLAG | byte);
            put_varint32(&mut self.entries, keyspace);
        }
        put_length_prefixed(&mut self.entries, key);
        if op.has_value() {
            put_length_prefixed(&mut self.entries, value);
        }
        if op == BatchOp::DeleteRangeToEnd {
            self.open_ranges = true;
        }
        self.count += 1;
        self
    }

    /// Adds a delete of every key in `[start, end)`: one entry however many keys the
    /// range holds, atomic with the batch's other entries. Entries later in the batch
    /// (higher sequence numbers) are not affected by it. An empty range (`start >=
    /// end`) adds nothing.
    ///
    /// ```
    /// let mut batch = strata::WriteBatch::new();
    /// batch.delete_range("user:0100", "user:0200").put("user:0150", "new");
    /// assert_eq!(batch.len(), 2);
    /// ```
    pub fn delete_range(&mut self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> &mut Self {
        let (start, end) = (start.as_ref(), end.as_ref());
        if start < end {
            self.push(DEFAULT_KEYSPACE, BatchOp::DeleteRange, start, end);
        }
        self
    }

    /// Number of entries (puts, deletes and range deletes).
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Adds a delete of every key at or after `start` (a range delete with no end):
    /// one entry, like [`delete_range`](Self::delete_range). Its end is fixed when the
    /// batch is written — just past the largest key the database then holds — so it
    /// deletes every key written before it and none written after it.
    ///
    /// ```
    /// let db = strata::DbBuilder::in_memory().open()?;
    /// db.put("a", "1")?;
    /// db.put("m", "2")?;
    /// let mut batch = strata::WriteBatch::new();
    /// batch.delete_range_from("b");
    /// db.write(batch, strata::WriteOptions::default())?;
    /// db.put("z", "3")?; // written after it: not deleted
    /// let keys: Vec<_> = db.iter().map(|kv| kv.map(|(k, _)| k)).collect::<Result<_, _>>()?;
    /// assert_eq!(keys, ["a", "z"]);
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn delete_range_from(&mut self, start: impl AsRef<[u8]>) -> &mut Self {
        self.push(
            DEFAULT_KEYSPACE,
            BatchOp::DeleteRangeToEnd,
            start.as_ref(),
            &[],
        )
    }

    /// Adds a delete of every key at or after `start` in `keyspace` (see
    /// [`delete_range_from`](Self::delete_range_from)).
    pub fn delete_range_from_in(
        &mut self,
        keyspace: &crate::Keyspace,
        start: impl AsRef<[u8]>,
    ) -> &mut Self {
        self.note_origin(keyspace);
        self.push(
            keyspace.id(),
            BatchOp::DeleteRangeToEnd,
            start.as_ref(),
            &[],
        )
    }

    /// Whether the batch holds a range delete whose end is decided at write time.
    pub(crate) fn has_open_ranges(&self) -> bool {
        self.open_ranges
    }

    /// Whether the batch holds a put whose expiry is decided at write time.
    pub(crate) fn has_ttl_puts(&self) -> bool {
        self.ttl_puts
    }

    /// The batch as the WAL records it: every open range delete given its end,
    /// `end_for(keyspace, start)` (exclusive, above `start`); every put with a time to
    /// live — and every plain put of a keyspace `keyspace_ttl` gives one (in ms) —
    /// made an expiring put, expiring that long after `now_ms`. The same entries in the
    /// same order.
    pub(crate) fn resolved(
        &self,
        mut end_for: impl FnMut(u32, &[u8]) -> Vec<u8>,
        keyspace_ttl: impl Fn(u32) -> Option<u64>,
        now_ms: u64,
    ) -> Self {
        use strata_core::expiry::{encode_expiring, split_expiring};
        let mut out = WriteBatch::with_capacity(self.entries.len() + 16);
        for e in self.iter().flatten() {
            match e.kind {
                BatchOp::DeleteRangeToEnd => {
                    let end = end_for(e.keyspace, e.key);
                    out.push(e.keyspace, BatchOp::DeleteRange, e.key, &end)
                }
                BatchOp::PutTtl => {
                    // The decoder checked the time to live is there.
                    let (ttl_ms, value) = split_expiring(e.value).unwrap_or((0, &[]));
                    let stored = encode_expiring(now_ms.saturating_add(ttl_ms), value);
                    out.push(e.keyspace, BatchOp::PutExpiring, e.key, &stored)
                }
                BatchOp::Put => match keyspace_ttl(e.keyspace) {
                    Some(ttl_ms) => {
                        let stored = encode_expiring(now_ms.saturating_add(ttl_ms), e.value);
                        out.push(e.keyspace, BatchOp::PutExpiring, e.key, &stored)
                    }
                    None => out.push(e.keyspace, BatchOp::Put, e.key, e.value),
                },
                op => out.push(e.keyspace, op, e.key, e.value),
            };
        }
        out.origin = self.origin;
        out.mixed_origins = self.mixed_origins;
        out
    }

    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Removes every entry, keeping the allocation.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.count = 0;
        self.open_ranges = false;
        self.ttl_puts = false;
        self.origin = None;
        self.mixed_origins = false;
    }

    /// Whether any entry names a keyspace other than the default one.
    pub(crate) fn has_keyspaces(&self) -> bool {
        // Only the `_in` methods name a keyspace, and each records its database.
        self.origin.is_some()
    }

    /// Bytes of encoded entries (a cheap size estimate for memory budgets).
    pub fn encoded_len(&self) -> usize {
        self.entries.len()
    }

    /// The entries in order.
    pub(crate) fn iter(&self) -> BatchEntries<'_> {
        BatchEntries {
            rest: &self.entries,
            remaining: self.count,
            in_memory: true,
        }
    }
}

/// The error for a batch (or a transaction) naming keyspaces of another database, or
/// of this one before a reopen.
pub(crate) fn foreign_keyspaces() -> strata_core::Error {
    strata_core::Error::InvalidArgument(
        "the batch names keyspaces of another database (or of this one before a reopen): keyspace ids belong to one open database".into(),
    )
}

/// The `[start, end)` of a range of keys: an excluded start or an included end
/// becomes its successor; an unbounded start is the empty key, the smallest; an
/// unbounded end is `None`.
pub(crate) fn range_bounds<K: AsRef<[u8]>, R: std::ops::RangeBounds<K>>(
    range: &R,
) -> (Vec<u8>, Option<Vec<u8>>) {
    use std::ops::Bound;
    use strata_core::range_del::successor;
    let start = match range.start_bound() {
        Bound::Included(k) => k.as_ref().to_vec(),
        Bound::Excluded(k) => successor(k.as_ref()),
        Bound::Unbounded => Vec::new(),
    };
    let end = match range.end_bound() {
        Bound::Excluded(k) => Some(k.as_ref().to_vec()),
        Bound::Included(k) => Some(successor(k.as_ref())),
        Bound::Unbounded => None,
    };
    (start, end)
}

/// Encodes `batches` as one WAL record payload starting at `first_seq`.
pub(crate) fn encode_record<'a>(
    dst: &mut Vec<u8>,
    first_seq: SequenceNumber,
    batches: impl Iterator<Item = &'a WriteBatch> + Clone,
) {
    let count: u32 = batches.clone().map(|b| b.count).sum();
    dst.clear();
    put_varint64(dst, first_seq);
    put_varint32(dst, count);
    for b in batches {
        dst.extend_from_slice(&b.entries);
    }
}

/// Encodes a *sync marker*: a record of no entries at `next_seq`, the sequence number
/// the next write will take. It says "every older WAL was synced before this record was
/// written" (the write path writes it after syncing rotated-out WALs; recovery relies
/// on it to tell a power-loss gap from damage). Writes never produce an empty record
/// otherwise: empty batches are not queued.
pub(crate) fn encode_sync_marker(dst: &mut Vec<u8>, next_seq: SequenceNumber) {
    encode_record(dst, next_seq, std::iter::empty());
}

/// One decoded entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchEntry<'a> {
    /// The keyspace the entry belongs to ([`DEFAULT_KEYSPACE`] unless named).
    pub keyspace: u32,
    pub kind: BatchOp,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

impl BatchEntry<'_> {
    /// Inserts the entry into a MemTable at `seq`.
    pub fn apply(
        &self,
        writer: &mut strata_memtable::MemTableWriter<'_>,
        seq: SequenceNumber,
    ) -> strata_core::Result<()> {
        match self.kind {
            BatchOp::Put => writer.insert(self.key, seq, ValueKind::Put, self.value),
            BatchOp::Delete => writer.insert(self.key, seq, ValueKind::Delete, &[]),
            BatchOp::Merge => writer.insert(self.key, seq, ValueKind::Merge, self.value),
            BatchOp::PutExpiring => {
                writer.insert(self.key, seq, ValueKind::ExpiringPut, self.value)
            }
            // The leader gives every time to live its expiry before anything is inserted.
            BatchOp::PutTtl => Err(strata_core::Error::InvalidArgument(
                "a put with a time to live reached the MemTable unresolved".into(),
            )),
            BatchOp::DeleteRange => writer.delete_range(self.key, self.value, seq),
            // The leader gives every open range its end before anything is inserted.
            BatchOp::DeleteRangeToEnd => Err(strata_core::Error::InvalidArgument(
                "a range delete without an end reached the MemTable".into(),
            )),
        }
    }
}

/// Iterator over a batch's entries; yields `Err(offset)` (within the entries) on a
/// malformed entry, then stops.
#[derive(Clone, Debug)]
pub(crate) struct BatchEntries<'a> {
    rest: &'a [u8],
    remaining: u32,
    /// A batch being written (not a WAL record): open range deletes may appear.
    in_memory: bool,
}

impl<'a> BatchEntries<'a> {
    fn decode_one(&mut self) -> Option<BatchEntry<'a>> {
        let (&kind_byte, mut after_kind) = self.rest.split_first()?;
        let mut keyspace = DEFAULT_KEYSPACE;
        if kind_byte & IN_KEYSPACE_FLAG != 0 {
            let (id, n) = get_varint32(after_kind)?;
            // The default keyspace is never named: one encoding per entry.
            if id == DEFAULT_KEYSPACE {
                return None;
            }
            keyspace = id;
            after_kind = after_kind.get(n..)?;
        }
        let kind = BatchOp::from_u8(kind_byte & !IN_KEYSPACE_FLAG, self.in_memory)?;
        let (key, n) = get_length_prefixed(after_kind)?;
        let mut rest = after_kind.get(n..)?;
        let mut value: &[u8] = &[];
        if kind.has_value() {
            let (v, n) = get_length_prefixed(rest)?;
            value = v;
            rest = rest.get(n..)?;
        }
        // An expiry (or a time to live) leads the value.
        if matches!(kind, BatchOp::PutExpiring | BatchOp::PutTtl)
            && value.len() < strata_core::expiry::EXPIRY_LEN
        {
            return None;
        }
        self.rest = rest;
        Some(BatchEntry {
            keyspace,
            kind,
            key,
            value,
        })
    }
}

impl<'a> Iterator for BatchEntries<'a> {
    type Item = Result<BatchEntry<'a>, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return (!self.rest.is_empty()).then(|| {
                self.rest = &[];
                Err("bytes after the last entry the count promised")
            });
        }
        self.remaining -= 1;
        match self.decode_one() {
            Some(e) => Some(Ok(e)),
            None => {
                self.remaining = 0;
                self.rest = &[];
                Some(Err("malformed or truncated entry"))
            }
        }
    }
}

/// A decoded WAL record payload.
#[derive(Clone, Debug)]
pub(crate) struct DecodedRecord<'a> {
    pub first_seq: SequenceNumber,
    pub entries: BatchEntries<'a>,
}

impl DecodedRecord<'_> {
    /// How many entries (and sequence numbers) the record holds.
    pub fn count(&self) -> u32 {
        self.entries.remaining
    }

    /// Whether this is a sync marker ([`encode_sync_marker`]).
    pub fn is_sync_marker(&self) -> bool {
        self.count() == 0
    }
}

/// Decodes a record payload's header; entries decode lazily.
pub(crate) fn decode_record(payload: &[u8]) -> Result<DecodedRecord<'_>, &'static str> {
    let (first_seq, n) = get_varint64(payload).ok_or("truncated sequence number")?;
    let rest = payload.get(n..).ok_or("truncated header")?;
    let (count, m) = get_varint32(rest).ok_or("truncated entry count")?;
    let entries = rest.get(m..).ok_or("truncated header")?;
    // Every sequence number of the record must fit the internal key's 56 bits; callers
    // count `first_seq..` without overflow checks.
    let last = first_seq.checked_add(u64::from(count.saturating_sub(1)));
    if last.is_none_or(|last| last > strata_core::MAX_SEQUENCE) {
        return Err("sequence numbers out of range");
    }
    Ok(DecodedRecord {
        first_seq,
        entries: BatchEntries {
            rest: entries,
            remaining: count,
            in_memory: false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op() -> impl Strategy<Value = (bool, Vec<u8>, Vec<u8>)> {
        (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..20),
            proptest::collection::vec(any::<u8>(), 0..200),
        )
    }

    fn batch_of(ops: &[(bool, Vec<u8>, Vec<u8>)]) -> WriteBatch {
        let mut b = WriteBatch::new();
        for (is_put, k, v) in ops {
            if *is_put {
                b.put(k, v);
            } else {
                b.delete(k);
            }
        }
        b
    }

    proptest! {
        #[test]
        fn grouped_batches_round_trip(groups in proptest::collection::vec(proptest::collection::vec(op(), 0..8), 1..4),
                                      seq in 0..strata_core::MAX_SEQUENCE - 64) {
            let batches: Vec<WriteBatch> = groups.iter().map(|g| batch_of(g)).collect();
            let mut payload = Vec::new();
            encode_record(&mut payload, seq, batches.iter());
            let rec = decode_record(&payload).unwrap();
            prop_assert_eq!(rec.first_seq, seq);
            let decoded: Vec<_> = rec.entries.map(|e| e.unwrap()).collect();
            let expected: Vec<_> = groups.iter().flatten().collect();
            prop_assert_eq!(decoded.len(), expected.len());
            for (d, (is_put, k, v)) in decoded.iter().zip(expected) {
                prop_assert_eq!(d.kind == BatchOp::Put, *is_put);
                prop_assert_eq!(d.key, &k[..]);
                prop_assert_eq!(d.value, if *is_put { &v[..] } else { &[][..] });
            }
        }

        #[test]
        fn damaged_payloads_decode_to_errors_not_panics(ops in proptest::collection::vec(op(), 1..5),
                                                        cut in any::<prop::sample::Index>(),
                                                        flip in any::<prop::sample::Index>()) {
            let mut payload = Vec::new();
            encode_record(&mut payload, 7, std::iter::once(&batch_of(&ops)));
            let truncated = &payload[..cut.index(payload.len())];
            if let Ok(rec) = decode_record(truncated) {
                // A truncated record always ends in an error, never in a shorter batch.
                prop_assert!(rec.entries.clone().any(|e| e.is_err()));
            }
            let mut flipped = payload.clone();
            let i = flip.index(flipped.len());
            flipped[i] ^= 0x80;
            if let Ok(rec) = decode_record(&flipped) {
                let _ = rec.entries.count();
            }
        }
    }

    /// Found by the `batch_decoder` fuzz target: a first sequence number of `u64::MAX`
    /// made counting the entries' sequence numbers overflow (a panic in debug builds,
    /// wrapped sequence numbers in release).
    #[test]
    fn range_deletes_round_trip_and_empty_ranges_add_nothing() {
        let mut b = WriteBatch::new();
        b.put("a", "1")
            .delete_range("b", "d")
            .delete_range("x", "x")
            .delete("e");
        assert_eq!(b.len(), 3);
        let mut payload = Vec::new();
        encode_record(&mut payload, 5, std::iter::once(&b));
        let decoded: Vec<_> = decode_record(&payload)
            .unwrap()
            .entries
            .map(|e| e.unwrap())
            .map(|e| (e.kind, e.key.to_vec(), e.value.to_vec()))
            .collect();
        assert_eq!(
            decoded,
            [
                (BatchOp::Put, b"a".to_vec(), b"1".to_vec()),
                (BatchOp::DeleteRange, b"b".to_vec(), b"d".to_vec()),
                (BatchOp::Delete, b"e".to_vec(), vec![]),
            ]
        );
        // A range delete cut short is malformed, not a shorter range.
        let cut = &payload[..payload.len() - 3];
        assert!(decode_record(cut).unwrap().entries.any(|e| e.is_err()));
    }

    #[test]
    fn sequence_numbers_past_56_bits_are_malformed() {
        let fuzz_input = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00,
        ];
        assert_eq!(
            decode_record(&fuzz_input).err(),
            Some("sequence numbers out of range")
        );
        let mut b = WriteBatch::new();
        b.put("a", "1").put("b", "2");
        let mut payload = Vec::new();
        encode_record(
            &mut payload,
            strata_core::MAX_SEQUENCE - 1,
            std::iter::once(&b),
        );
        assert!(
            decode_record(&payload).is_ok(),
            "the last two sequence numbers"
        );
        payload.clear();
        encode_record(&mut payload, strata_core::MAX_SEQUENCE, std::iter::once(&b));
        assert!(decode_record(&payload).is_err(), "one past the last");
        assert!(crate::inspect::decode_wal_batch(&fuzz_input).is_err());
    }

    #[test]
    fn small_put_overhead_is_small() {
        let mut b = WriteBatch::new();
        b.put([7u8; 16], [9u8; 100]);
        let mut payload = Vec::new();
        encode_record(&mut payload, 1_000_000, std::iter::once(&b));
        // 3 B seq varint + 1 B count + 1 B kind + 1 B + 1 B lengths.
        assert_eq!(payload.len(), 116 + 7);
    }
}
