//! The engine on the fault-injecting file system: random crashes, crash-point sweeps,
//! injected I/O errors and on-disk corruption, each checked against an oracle kept
//! outside the file system (`oracle.rs`). `docs/durability.md` lists what each test
//! proves.
#![allow(clippy::unwrap_used)]

mod backups;
mod concurrent;
mod corruption;
mod errors;
mod lifecycle;
mod oracle;
mod random;
mod regressions;
mod sweep;

use std::path::Path;
use std::sync::Arc;

use strata::{Db, DbBuilder, ErrorKind, Isolation, WriteBatch, WriteOptions};
use strata_faultfs::{CrashOptions, FaultFs};

use oracle::{History, Model, Op, Write};

/// Where every test database lives.
pub const DB: &str = "/db";

/// MemTable budget of the *roomy* shape. A MemTable's reported size is its arena's
/// chunks (the first is 64 KiB, values over 16 KiB get their own), so below 64 KiB every
/// write group freezes its MemTable; 100 KiB lets a WAL hold many records and rotates
/// after a large value or two.
pub const ROOMY_MEMTABLE: usize = 100 << 10;

/// Options so small that flushes, compactions into several levels, manifest roll-overs
/// and WAL rotations happen every few dozen writes. `roomy`: many records per WAL
/// (rotation on large values); otherwise every write group gets its own MemTable, WAL
/// and flush.
pub fn tiny(builder: DbBuilder, roomy: bool) -> DbBuilder {
    builder
        .wal_recovery(RECOVERY.with(std::cell::Cell::get))
        .memtable_bytes(if roomy { ROOMY_MEMTABLE } else { 2 << 10 })
        .table_file_bytes(4 << 10)
        .block_bytes(256)
        .level_base_bytes(8 << 10)
        .level_fanout(4)
        .l0_compaction_trigger(2)
        .manifest_roll_bytes(1 << 10)
        .block_cache_bytes(32 << 10)
        // Compactions split into up to three shares on threads of their own: a fault in
        // one share's output must leave nothing installed and no file behind.
        .max_subcompactions(3)
        // Idle at once: the side keyspace's level 0 (trigger 3) is merged as soon as it
        // holds two tables and the compaction thread wakes between writes.
        .idle_compaction(Some(std::time::Duration::ZERO))
        // Merge operands fold by appending (the side keyspace inherits it).
        .merge_operator(oracle::Concat)
        // The side keyspace is shaped apart: LZ4 below L0, its own block size and
        // L0 trigger, and in the tight shape a MemTable four times as large.
        .keyspace_options(
            oracle::SIDE,
            strata::KeyspaceOptions::new()
                .memtable_bytes(if roomy { ROOMY_MEMTABLE } else { 8 << 10 })
                .compression_per_level(&[strata::Compression::None, strata::Compression::Lz4])
                .block_bytes(512)
                .l0_compaction_trigger(3),
        )
}

thread_local! {
    /// The WAL recovery mode [`tiny`] opens with on this thread (the random crash suite
    /// runs half its seeds in point-in-time mode: after crashes alone, which only ever
    /// tear a log's tail, it must keep every invariant the default mode keeps).
    pub static RECOVERY: std::cell::Cell<strata::WalRecovery> =
        const { std::cell::Cell::new(strata::WalRecovery::TolerateTornTail) };
}

/// Opens (creating or recovering) the [`tiny`] database at [`DB`] on `fs`.
pub fn open(fs: &FaultFs, roomy: bool) -> strata::Result<Db> {
    tiny(Db::builder(Path::new(DB)), roomy)
        .file_system(Arc::new(fs.clone()))
        .open()
}

/// A database on a fault-injecting file system and the history of what it was told.
pub struct Harness {
    /// The file system the database runs on.
    pub fs: FaultFs,
    /// The database.
    pub db: Db,
    /// Every write and flush, stamped with change counts.
    pub hist: History,
    /// The state after every acknowledged write: what reads must show.
    pub live: Model,
    /// Which [`tiny`] shape the database was opened with.
    pub roomy: bool,
    /// The side keyspace (model keys under [`oracle::SIDE_PREFIX`]).
    pub side: strata::Keyspace,
}

impl Harness {
    /// Opens (creating or recovering) the database on `fs`; `base` is its state.
    pub fn open(fs: FaultFs, base: Model, roomy: bool) -> strata::Result<Self> {
        let db = open(&fs, roomy)?;
        Ok(Harness::resume(fs, db, base, roomy))
    }

    /// Continues with a database already open on `fs` holding `base`.
    pub fn resume(fs: FaultFs, db: Db, base: Model, roomy: bool) -> Self {
        // Made if missing: durable before it returns, and empty until a write names it.
        let side = db.keyspace(oracle::SIDE).expect("making the side keyspace");
        Harness {
            fs,
            db,
            roomy,
            side,
            live: base.clone(),
            hist: History::new(base),
        }
    }

    /// Applies a batch of puts and deletes (`None`), stamping it with the change
    /// counts around it.
    pub fn write(
        &mut self,
        entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        sync: bool,
    ) -> strata::Result<()> {
        self.write_ops(entries.into_iter().map(Op::from).collect(), sync)
    }

    /// Applies a batch of any entries, stamping it with the change counts around it.
    pub fn write_ops(&mut self, entries: Vec<Op>, sync: bool) -> strata::Result<()> {
        let mut batch = WriteBatch::new();
        for op in &entries {
            op.add_to(&mut batch, &self.side);
        }
        let start = self.fs.op_count();
        let result = self.db.write(batch, WriteOptions { sync });
        let acked = result.is_ok().then(|| self.fs.op_count());
        if result.is_ok() {
            for op in &entries {
                oracle::apply_op(&mut self.live, op);
            }
        }
        self.hist.writes.push(Write {
            entries,
            sync,
            start,
            acked,
        });
        result
    }

    /// Starts a transaction (snapshot isolation) whose writes [`commit`](Self::commit)
    /// records as one write of the history.
    pub fn transaction(&self) -> Txn {
        self.transaction_with(Isolation::Snapshot)
    }

    /// [`transaction`](Self::transaction) with the given isolation level.
    pub fn transaction_with(&self, isolation: Isolation) -> Txn {
        Txn {
            tx: self.db.transaction_with(isolation),
            side: self.side.clone(),
            ops: Vec::new(),
        }
    }

    /// Commits `txn`, stamping it with the change counts around it: one write of the
    /// history whose entries are the transaction's puts and deletes, so after a crash
    /// they must be all there or none (as a batch's), and there for sure once a synced
    /// commit was acknowledged.
    ///
    /// A commit refused with [`ErrorKind::Conflict`] is not recorded at all: it must
    /// have written nothing, so any of its (unique) values found later, by a live read
    /// or after a crash, matches no prefix and fails the check. Any other failure is
    /// recorded as an unacknowledged write (it may or may not have reached the disk),
    /// as [`write_ops`](Self::write_ops) does.
    pub fn commit(&mut self, txn: Txn, sync: bool) -> strata::Result<()> {
        let Txn { tx, ops, .. } = txn;
        let start = self.fs.op_count();
        let result = tx.commit_with(WriteOptions { sync });
        if result
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::Conflict)
        {
            return result;
        }
        let acked = result.is_ok().then(|| self.fs.op_count());
        if result.is_ok() {
            for op in &ops {
                oracle::apply_op(&mut self.live, op);
            }
        }
        self.hist.writes.push(Write {
            entries: ops,
            sync,
            start,
            acked,
        });
        result
    }

    /// Drops the side keyspace (durable when acknowledged, with every write before it)
    /// and makes it again, empty: one write of the history.
    pub fn drop_side(&mut self) -> strata::Result<()> {
        let start = self.fs.op_count();
        let result = self
            .db
            .drop_keyspace(oracle::SIDE)
            .and_then(|()| self.db.keyspace(oracle::SIDE));
        let acked = result.is_ok().then(|| self.fs.op_count());
        if let Ok(side) = &result {
            self.side = side.clone();
            oracle::apply_op(&mut self.live, &Op::DropSide);
        }
        self.hist.writes.push(Write {
            entries: vec![Op::DropSide],
            sync: true,
            start,
            acked,
        });
        result.map(drop)
    }

    /// Reads one model key from its keyspace.
    pub fn get(&self, k: &[u8]) -> strata::Result<Option<bytes::Bytes>> {
        match oracle::split(k) {
            (true, key) => self.side.get(key),
            (false, key) => self.db.get(key),
        }
    }

    /// Puts one key.
    pub fn put(&mut self, k: &[u8], v: &[u8], sync: bool) -> strata::Result<()> {
        self.write(vec![(k.to_vec(), Some(v.to_vec()))], sync)
    }

    /// Flushes; an acknowledged flush makes every earlier write durable.
    pub fn flush(&mut self) -> strata::Result<()> {
        let before = self.hist.writes.len();
        self.db.flush()?;
        self.hist.barriers.push((self.fs.op_count(), before));
        Ok(())
    }

    /// Compacts everything to the bottom (flushing first: also a barrier).
    pub fn compact_all(&mut self) -> strata::Result<()> {
        let before = self.hist.writes.len();
        self.db.compact_range::<&[u8], _>(..)?;
        self.hist.barriers.push((self.fs.op_count(), before));
        Ok(())
    }

    /// Checks that reads show every acknowledged write.
    pub fn check_reads(&self, universe: &[Vec<u8>]) -> Result<(), String> {
        let got = oracle::read_all(&self.db, universe)?;
        let want = &self.live;
        if got != *want {
            return Err(format!(
                "live reads disagree with the acknowledged writes: {} keys vs {}",
                got.len(),
                want.len()
            ));
        }
        Ok(())
    }
}

/// A transaction on a [`Harness`]'s database. Its methods take model keys: a key under
/// [`oracle::SIDE_PREFIX`] goes to the side keyspace through the transaction's `_in`
/// methods, any other to the default keyspace, so one transaction can span both. Its
/// puts and deletes are kept, in order, as the oracle's entries (the transaction keeps
/// the newest write per key; applying them in order gives the same state).
pub struct Txn {
    tx: strata::Transaction,
    side: strata::Keyspace,
    ops: Vec<Op>,
}

impl Txn {
    /// Reads `k` at the snapshot, with this transaction's writes (checked at commit
    /// under serializable isolation only).
    pub fn get(&mut self, k: &[u8]) -> strata::Result<Option<bytes::Bytes>> {
        match oracle::split(k) {
            (true, key) => self.tx.get_in(&self.side, key),
            (false, key) => self.tx.get(key),
        }
    }

    /// Reads `k` like [`get`](Self::get), the read checked at commit whatever the
    /// isolation level.
    pub fn get_for_update(&mut self, k: &[u8]) -> strata::Result<Option<bytes::Bytes>> {
        match oracle::split(k) {
            (true, key) => self.tx.get_for_update_in(&self.side, key),
            (false, key) => self.tx.get_for_update(key),
        }
    }

    /// The model keys in `[a, b)` (both in `a`'s keyspace) with their values, as the
    /// transaction sees them; under serializable isolation the range is checked at
    /// commit.
    pub fn scan(&mut self, a: &[u8], b: &[u8]) -> strata::Result<Model> {
        let ((in_side, start), (_, end)) = (oracle::split(a), oracle::split(b));
        let prefix: &[u8] = if in_side { oracle::SIDE_PREFIX } else { b"" };
        let iter = if in_side {
            self.tx.range_in(&self.side, start..end)
        } else {
            self.tx.range(start..end)
        };
        iter.map(|kv| kv.map(|(k, v)| ([prefix, &k].concat(), v.to_vec())))
            .collect()
    }

    /// Puts `k` when the transaction commits.
    pub fn put(&mut self, k: &[u8], v: &[u8]) {
        match oracle::split(k) {
            (true, key) => self.tx.put_in(&self.side, key, v),
            (false, key) => self.tx.put(key, v),
        }
        self.ops.push(Op::Put(k.to_vec(), v.to_vec()));
    }

    /// Deletes `k` when the transaction commits.
    pub fn delete(&mut self, k: &[u8]) {
        match oracle::split(k) {
            (true, key) => self.tx.delete_in(&self.side, key),
            (false, key) => self.tx.delete(key),
        }
        self.ops.push(Op::Delete(k.to_vec()));
    }
}

/// Crashes `fs` after its first `k` changes, reopens, reads everything back and checks
/// it against `hist`. Returns the reopened database and what it holds.
pub fn crash_and_check(
    fs: &FaultFs,
    k: usize,
    opts: &CrashOptions,
    hist: &History,
    universe: &[Vec<u8>],
    roomy: bool,
) -> Result<(FaultFs, Db, Model), String> {
    let after = fs.crash_at(k, opts);
    let context = || {
        let ops = fs.ops();
        let from = k.saturating_sub(6);
        let near: Vec<String> = ops
            .iter()
            .enumerate()
            .skip(from)
            .take(k - from + 3)
            .map(|(i, o)| format!("{}{i}: {o}", if i + 1 == k { "*" } else { " " }))
            .collect();
        format!(
            "crash after change {k} of {} ({opts:?}); changes around it:\n{}",
            ops.len(),
            near.join("\n")
        )
    };
    let db = open(&after, roomy).map_err(|e| format!("reopen failed (I4): {e}\n{}", context()))?;
    let got = oracle::read_all(&db, universe).map_err(|e| format!("{e}\n{}", context()))?;
    hist.check(&got, k, opts.is_process_crash())
        .map_err(|e| format!("{e}{}", context()))?;
    Ok((after, db, got))
}

/// `k00`..`k{n-1}`: the keys the workloads use.
pub fn universe(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("k{i:02}").into_bytes()).collect()
}

/// [`universe`]`(n)` in the default keyspace and again in the side keyspace.
pub fn universe_with_side(n: usize) -> Vec<Vec<u8>> {
    let keys = universe(n);
    let side: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| [oracle::SIDE_PREFIX, k].concat())
        .collect();
    keys.into_iter().chain(side).collect()
}
