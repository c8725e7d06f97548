//! The oracle: the history of writes the test made, kept outside the faulty file
//! system, and the check of a recovered database against it (invariants I1–I5 of
//! `docs/durability.md`).
//!
//! A write is a batch, a transaction's commit (its puts and deletes, across both
//! keyspaces: all-or-nothing like a batch's; a commit refused with a conflict is no
//! write at all) or a keyspace drop. Each write is stamped with the file system's change
//! count before it was issued and after it was acknowledged. For a crash after the
//! first `k` changes:
//! - writes issued at or after `k` cannot have reached the disk;
//! - a write acknowledged by `k` with `sync` (or followed by an acknowledged flush) must
//!   be there (I1), and after a process crash every write acknowledged by `k` (I5);
//! - in between it may or may not be, but the recovered state must equal the state
//!   after *some prefix* of the writes (I2, which also rules out resurrected deletes,
//!   I3, and values never written).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use strata::Db;

/// Key → value. Keys starting with [`SIDE_PREFIX`] are the side keyspace's (the rest
/// is the key inside it); every other key is the default keyspace's.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// The second keyspace every harness database holds.
pub const SIDE: &str = "side";

/// How a model key names the side keyspace. `~` sorts after every default-keyspace key
/// the workloads use (`k..`), so each keyspace is one run of the model.
pub const SIDE_PREFIX: &[u8] = b"~side/";

/// Whether model key `k` is the side keyspace's, and the key inside its keyspace.
pub fn split(k: &[u8]) -> (bool, &[u8]) {
    match k.strip_prefix(SIDE_PREFIX) {
        Some(rest) => (true, rest),
        None => (false, k),
    }
}

/// Whether two model keys are in the same keyspace.
pub fn same_keyspace(a: &[u8], b: &[u8]) -> bool {
    split(a).0 == split(b).0
}

/// `b`'s key in `a`'s keyspace (for ranges, which stay inside one keyspace).
pub fn in_keyspace_of(a: &[u8], b: &[u8]) -> Vec<u8> {
    let (side, rest) = split(b);
    match (split(a).0, side) {
        (true, false) => [SIDE_PREFIX, rest].concat(),
        (false, true) => rest.to_vec(),
        _ => b.to_vec(),
    }
}

/// One entry of a write.
#[derive(Clone, Debug)]
pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// Deletes every key in `[start, end)`.
    DeleteRange(Vec<u8>, Vec<u8>),
    /// Deletes every key at or after `start`.
    DeleteFrom(Vec<u8>),
    /// Appends the operand to the key's value (the harness's [`Concat`] merge
    /// operator), or sets it if the key has none.
    Merge(Vec<u8>, Vec<u8>),
    /// A put with a time to live of an hour: the model takes it as a put (nothing
    /// expires during a test), the database stores its expiry through the WAL, flushes
    /// and compactions.
    PutTtl(Vec<u8>, Vec<u8>),
    /// Drops the side keyspace and makes it again, empty (not a batch entry: a write of
    /// its own).
    DropSide,
}

impl From<(Vec<u8>, Option<Vec<u8>>)> for Op {
    fn from((k, v): (Vec<u8>, Option<Vec<u8>>)) -> Self {
        match v {
            Some(v) => Op::Put(k, v),
            None => Op::Delete(k),
        }
    }
}

impl Op {
    /// Whether the entry deletes `key`.
    fn deletes(&self, key: &[u8]) -> bool {
        match self {
            Op::Put(..) | Op::Merge(..) | Op::PutTtl(..) => false,
            Op::Delete(k) => k == key,
            Op::DeleteRange(a, b) => a.as_slice() <= key && key < b.as_slice(),
            Op::DeleteFrom(a) => same_keyspace(a, key) && a.as_slice() <= key,
            Op::DropSide => split(key).0,
        }
    }

    /// Adds the entry to `batch`, in the keyspace its keys name (`side`: the side
    /// keyspace's handle).
    pub fn add_to(&self, batch: &mut strata::WriteBatch, side: &strata::Keyspace) {
        let (in_side, k) = match self {
            Op::Put(k, _)
            | Op::Delete(k)
            | Op::DeleteRange(k, _)
            | Op::DeleteFrom(k)
            | Op::Merge(k, _)
            | Op::PutTtl(k, _) => split(k),
            Op::DropSide => panic!("a keyspace drop is not a batch entry"),
        };
        match (self, in_side) {
            (Op::Put(_, v), false) => batch.put(k, v),
            (Op::Put(_, v), true) => batch.put_in(side, k, v),
            (Op::PutTtl(_, v), false) => batch.put_with_ttl(k, v, HOUR),
            (Op::PutTtl(_, v), true) => batch.put_in_with_ttl(side, k, v, HOUR),
            (Op::Merge(_, v), false) => batch.merge(k, v),
            (Op::Merge(_, v), true) => batch.merge_in(side, k, v),
            (Op::Delete(_), false) => batch.delete(k),
            (Op::Delete(_), true) => batch.delete_in(side, k),
            (Op::DeleteRange(_, b), false) => batch.delete_range(k, b),
            (Op::DeleteRange(_, b), true) => batch.delete_range_in(side, k, split(b).1),
            (Op::DeleteFrom(_), false) => batch.delete_range_from(k),
            (Op::DeleteFrom(_), true) => batch.delete_range_from_in(side, k),
            (Op::DropSide, _) => return,
        };
    }
}

/// The time to live of [`Op::PutTtl`]: far longer than any test runs.
const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

/// The merge operator every harness database opens with: appends each operand to the
/// value (associative, as an operator must be). The model's [`Op::Merge`] does the same.
pub struct Concat;

impl strata::MergeOperator for Concat {
    fn name(&self) -> &str {
        "concat"
    }

    fn merge(&self, _: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>> {
        let mut v = existing.unwrap_or_default().to_vec();
        for op in operands {
            v.extend_from_slice(op);
        }
        Some(v)
    }
}

/// One write: its entries, in order.
#[derive(Clone, Debug)]
pub struct Write {
    pub entries: Vec<Op>,
    pub sync: bool,
    /// Change count before the write was issued.
    pub start: usize,
    /// Change count after it was acknowledged; `None` if it failed.
    pub acked: Option<usize>,
}

/// Writes since a known durable state.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The state the history starts from (durable: e.g. a recovered database).
    pub base: Model,
    pub writes: Vec<Write>,
    /// `(change count when a flush was acknowledged, writes issued before it)`: a flush
    /// makes every earlier write durable.
    pub barriers: Vec<(usize, usize)>,
}

pub fn apply(model: &mut Model, w: &Write) {
    for op in &w.entries {
        apply_op(model, op);
    }
}

pub fn apply_op(model: &mut Model, op: &Op) {
    match op {
        Op::Put(k, v) | Op::PutTtl(k, v) => {
            model.insert(k.clone(), v.clone());
        }
        Op::Delete(k) => {
            model.remove(k);
        }
        Op::Merge(k, operand) => model
            .entry(k.clone())
            .or_default()
            .extend_from_slice(operand),
        Op::DeleteRange(a, b) => model.retain(|k, _| !(a <= k && k < b)),
        Op::DeleteFrom(a) => model.retain(|k, _| !same_keyspace(a, k) || k < a),
        Op::DropSide => model.retain(|k, _| !split(k).0),
    }
}

impl History {
    pub fn new(base: Model) -> Self {
        History {
            base,
            ..History::default()
        }
    }

    /// Bounds on how many writes a crash after change `k` keeps: `(at least, at most)`.
    pub fn bounds(&self, k: usize, process_crash: bool) -> (usize, usize) {
        let most = self.writes.iter().take_while(|w| w.start < k).count();
        let durable = |w: &Write| w.acked.is_some_and(|a| a <= k) && (w.sync || process_crash);
        let mut least = self.writes.iter().rposition(durable).map_or(0, |i| i + 1);
        for &(at, before) in &self.barriers {
            if at <= k {
                least = least.max(before);
            }
        }
        (least.min(most), most)
    }

    /// Checks `recovered` against the history for a crash after change `k`; returns
    /// the prefix length it matches, or a description of what is wrong.
    pub fn check(&self, recovered: &Model, k: usize, process_crash: bool) -> Result<usize, String> {
        let (least, most) = self.bounds(k, process_crash);
        let mut model = self.base.clone();
        for w in &self.writes[..least] {
            apply(&mut model, w);
        }
        let mut closest = (usize::MAX, least, model.clone());
        for p in least..=most {
            if p > least {
                apply(&mut model, &self.writes[p - 1]);
            }
            if *recovered == model {
                return Ok(p);
            }
            let d = distance(recovered, &model);
            if d < closest.0 {
                closest = (d, p, model.clone());
            }
        }
        Err(self.explain(recovered, &closest.2, closest.1, least, most))
    }

    fn explain(&self, got: &Model, want: &Model, p: usize, least: usize, most: usize) -> String {
        let mut s = format!(
            "recovered state matches no allowed prefix (must keep {least}..={most} of {} writes); closest is prefix {p}:\n",
            self.writes.len()
        );
        let keys: std::collections::BTreeSet<&Vec<u8>> = got.keys().chain(want.keys()).collect();
        for k in keys {
            let (g, w) = (got.get(k), want.get(k));
            if g == w {
                continue;
            }
            let deleted_in_history = self
                .writes
                .iter()
                .any(|wr| wr.entries.iter().any(|op| op.deletes(k)));
            let what = match (g, w) {
                (Some(_), None) if deleted_in_history => "resurrected delete (I3)",
                (Some(_), None) => "key never written",
                (None, Some(_)) => "lost write (I1/I2)",
                _ => "wrong value",
            };
            let _ = writeln!(
                s,
                "  {}: got {:?}, want {:?}: {what}",
                String::from_utf8_lossy(k),
                g.map(|v| v.len()),
                w.map(|v| v.len())
            );
        }
        s
    }
}

fn distance(a: &Model, b: &Model) -> usize {
    a.iter().filter(|(k, v)| b.get(*k) != Some(v)).count()
        + b.keys().filter(|k| !a.contains_key(*k)).count()
}

/// Everything `db` holds, read by a forward scan, cross-checked by a reverse scan and a
/// point lookup of every key in `universe`.
pub fn read_all(db: &Db, universe: &[Vec<u8>]) -> Result<Model, String> {
    let mut m = Model::new();
    let side = db
        .list_keyspaces()
        .iter()
        .any(|n| n == SIDE)
        .then(|| db.keyspace(SIDE))
        .transpose()
        .map_err(|e| format!("opening the side keyspace failed: {e}"))?;
    let scans: Vec<(&[u8], strata::DbIter, strata::DbIter)> =
        std::iter::once((&b""[..], db.iter(), db.iter()))
            .chain(side.iter().map(|s| (SIDE_PREFIX, s.iter(), s.iter())))
            .collect();
    for (prefix, forward, backward) in scans {
        let mut part = Model::new();
        for kv in forward {
            let (k, v) = kv.map_err(|e| format!("scan failed: {e}"))?;
            part.insert([prefix, &k].concat(), v.to_vec());
        }
        let rev: Result<Vec<_>, _> = backward.rev().collect();
        let rev = rev.map_err(|e| format!("reverse scan failed: {e}"))?;
        if rev.len() != part.len()
            || rev
                .iter()
                .rev()
                .zip(&part)
                .any(|((k, v), (mk, mv))| [prefix, k].concat() != *mk || v[..] != mv[..])
        {
            return Err("reverse scan disagrees with forward scan".into());
        }
        m.extend(part);
    }
    for k in universe {
        let got = match (split(k), &side) {
            ((true, key), Some(side)) => side.get(key),
            ((true, _), None) => Ok(None),
            ((false, key), _) => db.get(key),
        }
        .map_err(|e| format!("get failed: {e}"))?;
        if got.as_deref() != m.get(k).map(Vec::as_slice) {
            return Err(format!(
                "get({}) disagrees with the scan",
                String::from_utf8_lossy(k)
            ));
        }
    }
    Ok(m)
}
