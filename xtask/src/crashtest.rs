//! `cargo xtask crashtest`: kill -9 a process writing to a database, over and over, and
//! check after each kill that nothing it acknowledged was lost.
//!
//! The parent starts a child (this binary's hidden `crashtest-child` command) that opens
//! the database on the real file system and runs a random workload from several threads
//! — puts, deletes, batches, transactions, sync and non-sync writes, with small
//! MemTables and tables so flushes, compactions and manifest roll-overs run constantly —
//! then SIGKILLs it at a random moment, reopens the database and verifies it, and starts
//! the next child on the same database.
//!
//! **Expected state.** Each child thread owns a contiguous run of keys (`threads` equal
//! runs), so writes to a key are ordered by one thread, and a range delete — some
//! batches start with one, over a run of the thread's own keys — touches no other
//! thread's keys; the intent line spells it out as a delete of each key it covers. Before each write the thread appends an
//! *intent* line (`I <op> <key>=<value|-> ...`: the whole batch) to `expected.log`, and
//! after the write is acknowledged an *ack* line (`A <op>`), each with one `write(2)` to
//! a file opened for appending: the OS keeps it when the process is killed (a kill can
//! cut only the very last write short, at a page boundary: the parent ignores an
//! unterminated last line). Values are
//! unique (`<key>.<cycle>.<thread>.<op>` plus padding), so a value names the write that
//! made it. After a kill, for each key the parent allows exactly: the value of its last
//! acknowledged write (I5: a process crash loses nothing acknowledged, synced or not;
//! absent if that write was a delete — no resurrection), or the value of the one write
//! in flight when the child died. An in-flight batch must be all there or not at all.
//! Keys never written must be absent. The state the parent observed (and verified)
//! becomes `baseline` for the next cycle, and `expected.log` starts afresh.
//!
//! Verification also checks every live table's checksums and a full scan against point
//! lookups.
//!
//! **Keyspaces.** Odd keys live in a second keyspace (`side`), even ones in the default
//! keyspace: batches span both, a range delete deletes its range's keys in one of them,
//! and each keyspace's MemTables fill, freeze and flush on their own while the other
//! holds WALs back. A key found in the wrong keyspace is an error.
//!
//! **Transactions.** One write in ten is an optimistic transaction over the thread's own
//! keys (intent line `T`, checked after a kill as a batch is: all or nothing): a
//! read-modify-write of one key with `get_for_update`, whose new value names the write
//! it read (`after-<cycle>-<thread>-<op>`, or `after-none`), a put or delete of its
//! neighbour in the other keyspace, and more. The parent checks, as it replays the log,
//! that the write it read is the key's last acknowledged one. Another one in ten is a
//! *transfer* between two accounts every thread shares, `acct-a` in the default keyspace
//! and `acct-b` in the side one, each `<n>.<balance>.<attempt>`: both read with
//! `get_for_update`, an amount moved, both written with `n + 1`. Threads race for them,
//! so commits fail with a conflict and are retried (`M <attempt> <a> <b>` before the
//! commit, then `A` or `C <attempt>` for a conflict). After a kill both accounts must
//! come from one transfer (same `n`, balances adding up to the total): the last
//! acknowledged one, or one in flight after it; and the acknowledged transfers must have
//! counted distinct `n`s above the baseline's (a lost update repeats one). A child
//! thread that reads half a transfer, or gets a conflict on its own keys, exits the
//! child with an error, which fails the run.
//!
//! **Merge operands.** One write in ten appends a token (`<cycle>.<thread>.<op>,`) to
//! the thread's merge log, `mlog-<thread>`, in both keyspaces in one batch — as merge
//! operands, or now and then as puts that restart the log (intent line `G <id> <key>
//! <M|P> <token>`). The database folds them with an appending merge operator. After a
//! kill each log must read the same in both keyspaces (a batch is atomic across them)
//! and equal the baseline's log with every acknowledged token appended in order — plus
//! at most the one in flight: no operand lost, doubled or reordered, through flushes
//! and compactions that fold them.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata::{Db, Keyspace, WriteBatch, WriteOptions};
use strata_core::{FileSystem, StdFs};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Options of `cargo xtask crashtest`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kill/verify cycles to run.
    #[arg(long, default_value_t = 100)]
    pub iterations: u64,
    /// Seed of the kill times and the children's workloads (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Directory for the database and the expected state (default: a fresh temporary
    /// directory, on /dev/shm when it exists). Kept after a failure.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Writer threads in the child.
    #[arg(long, default_value_t = 4)]
    pub threads: u64,
    /// Longest time a child runs before it is killed, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub max_run_ms: u64,
}

/// Options of the hidden child command.
#[derive(clap::Args, Debug)]
pub struct ChildArgs {
    /// Directory holding `db/`, `expected.log`.
    #[arg(long)]
    pub dir: PathBuf,
    /// Seed of this child's workload.
    #[arg(long)]
    pub seed: u64,
    /// Cycle number, part of every value.
    #[arg(long)]
    pub cycle: u64,
    /// Writer threads.
    #[arg(long)]
    pub threads: u64,
}

/// Keys the workload uses.
const KEYS: u64 = 600;

/// SplitMix64: a seed reproduces a run's kill times and workloads.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n.max(1))) >> 64) as u64
    }
}

fn key(i: u64) -> String {
    format!("key{i:04}")
}

/// The second keyspace: odd keys live there, even keys in the default keyspace, so
/// batches span both and each keyspace's MemTables fill and flush on their own.
const SIDE: &str = "side";

fn in_side(i: u64) -> bool {
    i % 2 == 1
}

/// Small everything, so a child flushes, compacts and rolls the manifest constantly.
/// (A MemTable's size counts its 64 KiB arena chunks, so 128 KiB holds ~64 KiB.)
fn open_db(path: &Path) -> strata::Result<Db> {
    Db::builder(path)
        .merge_operator(Append)
        .memtable_bytes(128 << 10)
        .table_file_bytes(32 << 10)
        .block_bytes(1 << 10)
        .level_base_bytes(128 << 10)
        .level_fanout(4)
        // Level 0 waits for three tables, but counts as idle at once: the compaction
        // thread merges two (`idle_compaction`) whenever it wakes between writes, so
        // kills land inside those compactions too.
        .l0_compaction_trigger(3)
        .idle_compaction(Some(std::time::Duration::ZERO))
        .manifest_roll_bytes(4 << 10)
        .block_cache_bytes(256 << 10)
        .open()
}

/// The merge operator of the crashtest's database: appends each operand to the value.
struct Append;

impl strata::MergeOperator for Append {
    fn name(&self) -> &str {
        "append"
    }

    fn merge(&self, _: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>> {
        let mut v = existing.unwrap_or_default().to_vec();
        for op in operands {
            v.extend_from_slice(op);
        }
        Some(v)
    }
}

/// Prefix of the per-thread merge logs (`mlog-<thread>`, in both keyspaces).
const MERGE_LOG: &str = "mlog-";

// ---------------------------------------------------------------- child

/// The child: writes until killed (or for a minute, should the parent be gone).
pub fn child(args: &ChildArgs) -> ExitCode {
    match run_child(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crashtest child: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_child(args: &ChildArgs) -> Result<()> {
    // The lock can be held for a moment after its holder closed: a process forked by
    // another thread of the holder's process (the test harness spawns processes from
    // many threads) keeps a copy of the descriptor until it execs. Wait that out.
    let started = Instant::now();
    let db = loop {
        match open_db(&args.dir.join("db")) {
            Err(e)
                if e.kind() == strata::ErrorKind::Locked
                    && started.elapsed() < Duration::from_secs(2) =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => break other?,
        }
    };
    let side = db.keyspace(SIDE)?;
    let log = Arc::new(Mutex::new(
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(args.dir.join("expected.log"))?,
    ));
    let threads: Vec<_> = (0..args.threads)
        .map(|t| {
            let mut writer = Writer {
                db: db.clone(),
                side: side.clone(),
                log: Arc::clone(&log),
                rng: Rng(args.seed ^ (t + 1).wrapping_mul(0x2545_f491_4f6c_dd1d)),
                cycle: args.cycle,
                t,
                per: KEYS / args.threads,
            };
            std::thread::spawn(move || {
                if let Err(e) = writer.run() {
                    // Now, not at the join: the parent only sees a child that exits by
                    // itself, and another thread would keep this one's error unseen
                    // until the kill.
                    eprintln!("crashtest child: thread {t}: {e}");
                    std::process::exit(2);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "a writer thread panicked")?;
    }
    Ok(())
}

/// One writer thread of the child.
struct Writer {
    db: Db,
    side: Keyspace,
    log: Arc<Mutex<File>>,
    rng: Rng,
    cycle: u64,
    t: u64,
    /// Keys per thread: thread `t` owns `t * per .. (t + 1) * per`.
    per: u64,
}

type ChildResult<T> = std::result::Result<T, String>;

impl Writer {
    /// Writes until killed (or for a minute): of ten writes, one transfer between the
    /// shared accounts, one transaction over the thread's own keys, one append to the
    /// thread's merge log, seven batches.
    fn run(&mut self) -> ChildResult<()> {
        let started = Instant::now();
        for op in 0u64.. {
            if started.elapsed() > Duration::from_secs(60) {
                return Ok(());
            }
            match self.rng.below(10) {
                0 => self.transfer(op)?,
                1 => self.transaction(op)?,
                2 => self.merge(op)?,
                _ => self.batch(op)?,
            }
        }
        Ok(())
    }

    fn own(&mut self) -> u64 {
        self.t * self.per + self.rng.below(self.per)
    }

    /// A unique value for `key(k)` written by operation `op`: `<key>.<cycle>.<t>.<op>.`,
    /// then `extra`, then padding (now and then 3000 bytes, so tables fill).
    fn value(&mut self, k: u64, op: u64, extra: &str) -> String {
        let mut v = format!("{}.{}.{}.{op}.{extra}", key(k), self.cycle, self.t);
        let pad = if self.rng.below(20) == 0 {
            3000
        } else {
            self.rng.below(200)
        };
        v.extend(std::iter::repeat_n('v', pad as usize));
        v
    }

    /// A batch of puts and deletes of the thread's own keys, sometimes after a range
    /// delete; its intent line is `I`.
    fn batch(&mut self, op: u64) -> ChildResult<()> {
        let n = if self.rng.below(5) == 0 {
            2 + self.rng.below(4)
        } else {
            1
        };
        let mut entries: BTreeMap<u64, Option<String>> = BTreeMap::new();
        let mut batch = WriteBatch::new();
        let mut range = 0..0;
        // The keyspace of the range delete, if any: it deletes the keys of its range in
        // that keyspace only.
        let mut range_side = false;
        if self.rng.below(12) == 0 {
            // A range delete of up to 24 of the thread's own keys; the batch's later
            // entries (higher sequence numbers) override it.
            let first = self.own();
            let end = (first + 1 + self.rng.below(24)).min((self.t + 1) * self.per);
            range_side = in_side(first);
            if range_side {
                batch.delete_range_in(&self.side, key(first), key(end));
            } else {
                batch.delete_range(key(first), key(end));
            }
            range = first..end;
            for k in range.clone().filter(|&k| in_side(k) == range_side) {
                entries.insert(k, None);
            }
        }
        for _ in 0..n {
            let k = self.own();
            let v = (self.rng.below(4) != 0).then(|| self.value(k, op, ""));
            entries.insert(k, v);
        }
        let sync = self.rng.below(6) == 0;
        // The point entries (the range delete, if any, is already first).
        let covered = |k: u64| range.contains(&k) && in_side(k) == range_side;
        // One batch in four writes its puts with a day to live: stored with an expiry
        // through WAL, flushes and compactions, read back as the value.
        let ttl = (self.rng.below(4) == 0).then_some(Duration::from_secs(86_400));
        for (k, v) in entries.iter().filter(|(k, v)| v.is_some() || !covered(**k)) {
            match (v, in_side(*k), ttl) {
                (Some(v), false, None) => batch.put(key(*k), v),
                (Some(v), true, None) => batch.put_in(&self.side, key(*k), v),
                (Some(v), false, Some(ttl)) => batch.put_with_ttl(key(*k), v, ttl),
                (Some(v), true, Some(ttl)) => batch.put_in_with_ttl(&self.side, key(*k), v, ttl),
                (None, false, _) => batch.delete(key(*k)),
                (None, true, _) => batch.delete_in(&self.side, key(*k)),
            };
        }
        let id = self.id(op);
        self.intent("I", &id, &entries)?;
        self.db
            .write(batch, WriteOptions { sync })
            .map_err(|e| format!("write {id} failed: {e}"))?;
        append(&self.log, &format!("A {id}\n"))
    }

    /// A transaction over the thread's own keys, in both keyspaces: a read-modify-write
    /// of one key (read with `get_for_update`; the new value names the write it read,
    /// `after-<cycle>-<thread>-<op>` or `after-none`, so the parent can check the read
    /// saw the key's last acknowledged write), a write of its neighbour in the other
    /// keyspace and up to two more puts or deletes. Its intent line is `T`; after a
    /// kill it must be all there or not at all, as a batch. No other thread writes these
    /// keys, so a conflict here would be a false one: the child fails.
    fn transaction(&mut self, op: u64) -> ChildResult<()> {
        let id = self.id(op);
        let mut tx = self.db.transaction();
        let k = self.own();
        let read = if in_side(k) {
            tx.get_for_update_in(&self.side, key(k))
        } else {
            tx.get_for_update(key(k))
        }
        .map_err(|e| format!("transaction {id}: get_for_update: {e}"))?;
        let from = match &read {
            Some(v) => {
                let v = std::str::from_utf8(v).map_err(|_| "a value that was never written")?;
                let read_id = write_id(v).ok_or("a value that was never written")?;
                format!("after-{}.", read_id.replace('.', "-"))
            }
            None => "after-none.".to_owned(),
        };
        let mut entries: BTreeMap<u64, Option<String>> = BTreeMap::new();
        entries.insert(k, Some(self.value(k, op, &from)));
        // The neighbour inside the thread's run, of the other parity: the other keyspace.
        let neighbour = if k + 1 < (self.t + 1) * self.per {
            k + 1
        } else {
            k - 1
        };
        let more = 1 + self.rng.below(3);
        for j in 0..more {
            let other = if j == 0 { neighbour } else { self.own() };
            if other != k {
                let v = (self.rng.below(4) != 0).then(|| self.value(other, op, ""));
                entries.insert(other, v);
            }
        }
        for (k, v) in &entries {
            match (v, in_side(*k)) {
                (Some(v), false) => tx.put(key(*k), v),
                (Some(v), true) => tx.put_in(&self.side, key(*k), v),
                (None, false) => tx.delete(key(*k)),
                (None, true) => tx.delete_in(&self.side, key(*k)),
            }
        }
        let sync = self.rng.below(6) == 0;
        self.intent("T", &id, &entries)?;
        tx.commit_with(WriteOptions { sync })
            .map_err(|e| format!("transaction {id} failed: {e}"))?;
        append(&self.log, &format!("A {id}\n"))
    }

    /// A transfer between the two accounts every thread shares ([`ACCOUNT_A`] in the
    /// default keyspace, [`ACCOUNT_B`] in the side one): read both with
    /// `get_for_update`, move an amount, write both with the transfer count `n` one
    /// higher. Threads race for the accounts, so commits conflict; a refused attempt is
    /// logged (`C`) and retried from a new snapshot. Its intent line is
    /// `M <id> <value a> <value b>`; the id names the attempt.
    fn transfer(&mut self, op: u64) -> ChildResult<()> {
        for attempt in 0u64.. {
            let id = format!("{}.{attempt}", self.id(op));
            let mut tx = self.db.transaction();
            let a = tx
                .get_for_update(ACCOUNT_A)
                .map_err(|e| format!("transfer {id}: get_for_update: {e}"))?;
            let b = tx
                .get_for_update_in(&self.side, ACCOUNT_B)
                .map_err(|e| format!("transfer {id}: get_for_update: {e}"))?;
            let utf8 = |v: Option<strata::Bytes>| {
                v.map(|v| {
                    String::from_utf8(v.to_vec()).map_err(|_| "an account value never written")
                })
                .transpose()
            };
            let accounts = Accounts::read(utf8(a)?.as_deref(), utf8(b)?.as_deref())
                .map_err(|e| format!("transfer {id} read {e}"))?;
            let (n, mut a, mut b) = accounts.map_or((0, TOTAL, 0), |x| (x.n, x.a, x.b));
            let amount = self.rng.below(50);
            if self.rng.below(2) == 0 {
                let amount = amount.min(a);
                (a, b) = (a - amount, b + amount);
            } else {
                let amount = amount.min(b);
                (a, b) = (a + amount, b - amount);
            }
            let (va, vb) = (format!("{}.{a}.{id}", n + 1), format!("{}.{b}.{id}", n + 1));
            tx.put(ACCOUNT_A, &va);
            tx.put_in(&self.side, ACCOUNT_B, &vb);
            let sync = self.rng.below(6) == 0;
            append(&self.log, &format!("M {id} {va} {vb}\n"))?;
            match tx.commit_with(WriteOptions { sync }) {
                Ok(()) => return append(&self.log, &format!("A {id}\n")),
                Err(e) if e.kind() == strata::ErrorKind::Conflict => {
                    append(&self.log, &format!("C {id}\n"))?;
                }
                Err(e) => return Err(format!("transfer {id} failed: {e}")),
            }
        }
        Ok(())
    }

    /// Appends this op's token to the thread's merge log in both keyspaces, in one
    /// batch: as merge operands, or (one in forty) as puts that restart the log, so it
    /// stays short. Its intent line is `G <id> <key> <M|P> <token>`.
    fn merge(&mut self, op: u64) -> ChildResult<()> {
        let id = self.id(op);
        let k = format!("{MERGE_LOG}{}", self.t);
        let token = format!("{id},");
        let restart = self.rng.below(40) == 0;
        let mut batch = WriteBatch::new();
        if restart {
            batch.put(&k, &token).put_in(&self.side, &k, &token);
        } else {
            batch.merge(&k, &token).merge_in(&self.side, &k, &token);
        }
        let sync = self.rng.below(6) == 0;
        let mode = if restart { "P" } else { "M" };
        append(&self.log, &format!("G {id} {k} {mode} {token}\n"))?;
        self.db
            .write(batch, WriteOptions { sync })
            .map_err(|e| format!("merge {id} failed: {e}"))?;
        append(&self.log, &format!("A {id}\n"))
    }

    fn id(&self, op: u64) -> String {
        format!("{}.{}.{op}", self.cycle, self.t)
    }

    /// Appends the intent line `<kind> <id> <key>=<value|-> ...`.
    fn intent(
        &self,
        kind: &str,
        id: &str,
        entries: &BTreeMap<u64, Option<String>>,
    ) -> ChildResult<()> {
        let mut intent = format!("{kind} {id}");
        for (k, v) in entries {
            intent.push_str(&format!(" {}={}", key(*k), v.as_deref().unwrap_or("-")));
        }
        intent.push('\n');
        append(&self.log, &intent)
    }
}

/// The write that made `value` (`<key>.<cycle>.<thread>.<op>. ...`): `<cycle>.<thread>.<op>`.
fn write_id(value: &str) -> Option<&str> {
    let start = value.find('.')? + 1;
    let mut dots = value[start..].match_indices('.').map(|(i, _)| start + i);
    let end = dots.nth(2)?;
    Some(&value[start..end])
}

/// The two accounts every child thread transfers between: `acct-a` in the default
/// keyspace, `acct-b` in the side one (not `key....`: no thread owns them). Each value
/// is `<n>.<balance>.<attempt id>`: `n` transfers so far, the same in both accounts
/// after every transfer; the balances add up to [`TOTAL`]; the id names the attempt
/// that wrote it.
const ACCOUNT_A: &str = "acct-a";
const ACCOUNT_B: &str = "acct-b";
/// What the two accounts hold together; absent accounts are `TOTAL` and 0, `n` 0.
const TOTAL: u64 = 1_000_000;

/// The accounts as one transfer left them.
#[derive(Debug, PartialEq)]
struct Accounts {
    n: u64,
    a: u64,
    b: u64,
}

impl Accounts {
    /// Parses the two values: `None` if neither account exists; an error for one without
    /// the other, two different transfer counts or a broken total (half a transfer).
    fn read(a: Option<&str>, b: Option<&str>) -> std::result::Result<Option<Accounts>, String> {
        let parse = |v: &str| -> Option<(u64, u64)> {
            let mut it = v.split('.');
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        };
        let (a, b) = match (a, b) {
            (None, None) => return Ok(None),
            (Some(a), Some(b)) => (a, b),
            _ => return Err(format!("one account without the other: {a:?}, {b:?}")),
        };
        let ((na, a_bal), (nb, b_bal)) = parse(a)
            .zip(parse(b))
            .ok_or_else(|| format!("account values never written: {a:?}, {b:?}"))?;
        if na != nb || a_bal + b_bal != TOTAL {
            return Err(format!(
                "accounts from two different transfers, or not adding up to {TOTAL}: {a:?}, {b:?}"
            ));
        }
        Ok(Some(Accounts {
            n: na,
            a: a_bal,
            b: b_bal,
        }))
    }
}

/// One `write(2)` of the whole line to a file opened for appending: a kill never tears
/// it, and the OS keeps it.
fn append(log: &Mutex<File>, line: &str) -> std::result::Result<(), String> {
    let mut f = log.lock().map_err(|_| "log lock poisoned")?;
    f.write_all(line.as_bytes())
        .map_err(|e| format!("writing the expected state: {e}"))
}

// ---------------------------------------------------------------- parent

/// What a cycle's verification found.
#[derive(Default)]
struct Tally {
    /// Batches and own-key transactions acknowledged.
    acked: u64,
    /// Of them, transactions.
    txns: u64,
    in_flight: u64,
    in_flight_applied: u64,
    keys: u64,
    /// Transfers acknowledged.
    transfers: u64,
    /// Transfer attempts refused with a conflict (and retried).
    conflicts: u64,
    /// Appends to the merge logs acknowledged (merge operands or restarts).
    merges: u64,
    transfers_in_flight: u64,
    transfers_applied: u64,
}

pub fn run(args: &Args) -> Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let (dir, temp) = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            (d.clone(), None)
        }
        None => {
            let shm = Path::new("/dev/shm");
            let t = if shm.is_dir() {
                tempfile::Builder::new()
                    .prefix("strata-crashtest")
                    .tempdir_in(shm)?
            } else {
                tempfile::Builder::new()
                    .prefix("strata-crashtest")
                    .tempdir()?
            };
            (t.path().to_path_buf(), Some(t))
        }
    };
    let exe = std::env::current_exe()?;
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut total = Tally::default();
    let mut early_exits = 0;
    for cycle in 0..args.iterations {
        let mut child = Command::new(&exe)
            .arg("crashtest-child")
            .arg("--dir")
            .arg(&dir)
            .args(["--seed", &rng.next().to_string()])
            .args(["--cycle", &cycle.to_string()])
            .args(["--threads", &args.threads.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(rng.below(args.max_run_ms + 1)));
        let status = match child.try_wait()? {
            Some(status) => {
                early_exits += u64::from(status.success());
                status
            }
            None => {
                child.kill()?; // SIGKILL
                child.wait()?
            }
        };
        // Killed, a child has no exit code. One that exited by itself with a failure
        // (a writer's error: a write failed, a transfer read half a transfer, a false
        // conflict), before the kill or in the moment before it, fails the run.
        if status.code().is_some_and(|c| c != 0) {
            let mut err = String::new();
            if let Some(mut s) = child.stderr.take() {
                std::io::Read::read_to_string(&mut s, &mut err)?;
            }
            let _ = temp.map(tempfile::TempDir::keep);
            return Err(format!(
                "cycle {cycle}: the child failed ({status}): {err}\n(dir kept: {})",
                dir.display()
            )
            .into());
        }
        let tally = match verify(&dir) {
            Ok(t) => t,
            Err(e) => {
                // Keep the evidence.
                let _ = temp.map(tempfile::TempDir::keep);
                return Err(format!(
                    "cycle {cycle} (seed {seed}): {e}\n(dir kept: {})",
                    dir.display()
                )
                .into());
            }
        };
        total.acked += tally.acked;
        total.txns += tally.txns;
        total.in_flight += tally.in_flight;
        total.in_flight_applied += tally.in_flight_applied;
        total.keys = tally.keys;
        total.transfers += tally.transfers;
        total.conflicts += tally.conflicts;
        total.merges += tally.merges;
        total.transfers_in_flight += tally.transfers_in_flight;
        total.transfers_applied += tally.transfers_applied;
    }
    println!(
        "crashtest: {} cycles (seed {seed}, {} threads): {} writes acknowledged, all present \
         ({} of them transactions); {} in flight at a kill ({} of them applied, atomically); \
         transfers: {} acknowledged, {} attempts refused with a conflict, {} in flight at a \
         kill ({} applied, whole); merge logs: {} appends acknowledged, all present in \
         order; {} keys at the end; {} children exited before the kill; {:.1} s",
        args.iterations,
        args.threads,
        total.acked,
        total.txns,
        total.in_flight,
        total.in_flight_applied,
        total.transfers,
        total.conflicts,
        total.transfers_in_flight,
        total.transfers_applied,
        total.merges,
        total.keys,
        early_exits,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One intended write, as the expected-state log records it.
struct Intent {
    entries: Vec<(String, Option<String>)>,
}

/// The transfers of a cycle's log: `(value of acct-a, value of acct-b)` each.
#[derive(Default)]
struct Transfers {
    /// Acknowledged, in log order.
    acked: Vec<(String, String)>,
    /// Intended, neither acknowledged nor refused: in flight at the kill.
    pending: BTreeMap<String, (String, String)>,
}

/// Reads the baseline and the cycle's log, opens the database, checks it, and makes
/// what it holds the next baseline.
fn verify(dir: &Path) -> Result<Tally> {
    let baseline_path = dir.join("baseline");
    let log_path = dir.join("expected.log");
    let mut acked: HashMap<String, Option<String>> = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(&baseline_path) {
        for line in text.lines() {
            let (k, v) = line.split_once('=').ok_or("bad baseline line")?;
            acked.insert(k.to_owned(), Some(v.to_owned()));
        }
    }
    // The accounts are checked on their own (every thread writes them).
    let base_accounts = (
        acked.remove(ACCOUNT_A).flatten(),
        acked.remove(ACCOUNT_B).flatten(),
    );
    // The merge logs too: their tokens are checked in order.
    let mut logs: BTreeMap<String, String> = BTreeMap::new();
    acked.retain(|k, v| match (k.strip_prefix(MERGE_LOG), v) {
        (Some(_), Some(v)) => {
            logs.insert(k.clone(), std::mem::take(v));
            false
        }
        _ => true,
    });
    // Appends intended and not yet acknowledged: (key, restart, token).
    let mut pending_merges: BTreeMap<String, (String, bool, String)> = BTreeMap::new();
    let mut transfers = Transfers::default();
    let mut pending: BTreeMap<String, Intent> = BTreeMap::new();
    let mut tally = Tally::default();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    // SIGKILL can cut the last write short at a page boundary (the kernel stops copying
    // once a fatal signal is pending): an unterminated last line was never completed.
    // A torn intent means the write was never issued; a torn ack leaves it in flight.
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    for line in complete.lines() {
        let mut words = line.split(' ');
        match (words.next(), words.next()) {
            (Some(kind @ ("I" | "T")), Some(id)) => {
                let entries = words
                    .map(|w| {
                        let (k, v) = w.split_once('=').ok_or("bad intent")?;
                        Ok((k.to_owned(), (v != "-").then(|| v.to_owned())))
                    })
                    .collect::<Result<Vec<_>>>()?;
                if kind == "T" {
                    check_read(&acked, id, &entries)?;
                    tally.txns += 1;
                }
                pending.insert(id.to_owned(), Intent { entries });
            }
            (Some("M"), Some(id)) => {
                let (a, b) = words
                    .next()
                    .zip(words.next())
                    .ok_or("bad transfer intent")?;
                transfers
                    .pending
                    .insert(id.to_owned(), (a.to_owned(), b.to_owned()));
            }
            (Some("G"), Some(id)) => {
                let (k, mode, token) = match (words.next(), words.next(), words.next()) {
                    (Some(k), Some(m @ ("M" | "P")), Some(t)) => (k, m, t),
                    _ => return Err(format!("bad merge intent {line:?}").into()),
                };
                pending_merges.insert(id.to_owned(), (k.to_owned(), mode == "P", token.to_owned()));
            }
            (Some("A"), Some(id)) => {
                if let Some(intent) = pending.remove(id) {
                    for (k, v) in intent.entries {
                        acked.insert(k, v);
                    }
                    tally.acked += 1;
                } else if let Some((k, restart, token)) = pending_merges.remove(id) {
                    let log = logs.entry(k).or_default();
                    if restart {
                        log.clear();
                    }
                    log.push_str(&token);
                    tally.merges += 1;
                } else {
                    let transfer = transfers.pending.remove(id).ok_or("ack without intent")?;
                    transfers.acked.push(transfer);
                    tally.transfers += 1;
                }
            }
            (Some("C"), Some(id)) => {
                transfers
                    .pending
                    .remove(id)
                    .ok_or("conflict without intent")?;
                tally.conflicts += 1;
            }
            _ => return Err(format!("bad expected-state line {line:?}").into()),
        }
    }

    let db = open_db(&dir.join("db")).map_err(|e| format!("reopen failed: {e}"))?;
    // A kill before the first child made it leaves no side keyspace: nothing in it.
    let side = if db.list_keyspaces().iter().any(|n| n == SIDE) {
        Some(db.keyspace(SIDE)?)
    } else {
        None
    };
    let mut got: BTreeMap<String, String> = BTreeMap::new();
    // The merge logs found, per keyspace (default, side).
    let mut got_logs: [BTreeMap<String, String>; 2] = Default::default();
    let scans = std::iter::once((false, db.iter())).chain(side.iter().map(|s| (true, s.iter())));
    for (scan_side, scan) in scans {
        for kv in scan {
            let (k, v) = kv.map_err(|e| format!("scan failed: {e}"))?;
            let k = String::from_utf8(k.to_vec()).map_err(|_| "a key that was never written")?;
            if k.starts_with(MERGE_LOG) {
                let v = String::from_utf8(v.to_vec()).map_err(|_| "a merge log never written")?;
                got_logs[usize::from(scan_side)].insert(k, v);
                continue;
            }
            let in_right_keyspace = match k.as_str() {
                ACCOUNT_A => !scan_side,
                ACCOUNT_B => scan_side,
                _ => k
                    .strip_prefix("key")
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| in_side(n) == scan_side),
            };
            if !in_right_keyspace {
                return Err(format!("{k} found in the wrong keyspace").into());
            }
            got.insert(
                k,
                String::from_utf8(v.to_vec()).map_err(|_| "a value that was never written")?,
            );
        }
    }
    for i in 0..KEYS {
        let k = key(i);
        let v = match (&side, in_side(i)) {
            (Some(side), true) => side.get(&k),
            (None, true) => Ok(None),
            (_, false) => db.get(&k),
        }
        .map_err(|e| format!("get {k} failed: {e}"))?;
        if v.as_deref() != got.get(&k).map(String::as_bytes) {
            return Err(format!("get({k}) disagrees with the scan").into());
        }
    }
    let a = db.get(ACCOUNT_A)?;
    let b = side
        .as_ref()
        .map(|s| s.get(ACCOUNT_B))
        .transpose()?
        .flatten();
    let accounts = (got.remove(ACCOUNT_A), got.remove(ACCOUNT_B));
    if a.as_deref() != accounts.0.as_ref().map(String::as_bytes)
        || b.as_deref() != accounts.1.as_ref().map(String::as_bytes)
    {
        return Err("a get of an account disagrees with the scan".into());
    }
    verify_merge_logs(&db, side.as_ref(), &got_logs, &logs, &pending_merges)?;
    drop(side);
    db.close().map_err(|e| format!("close failed: {e}"))?;
    // After close: background compactions no longer change the set of live tables.
    verify_tables(dir)?;
    verify_transfers(&base_accounts, &transfers, &accounts, &mut tally)?;

    // What may be there: the last acknowledged value, or the in-flight one.
    let mut in_flight: HashMap<&str, &Option<String>> = HashMap::new();
    for intent in pending.values() {
        tally.in_flight += 1;
        let mut applied = 0;
        let mut distinct = 0;
        for (k, v) in &intent.entries {
            in_flight.insert(k, v);
            let old = acked.get(k).cloned().flatten();
            if *v != old {
                distinct += 1;
                applied += usize::from(got.get(k) == v.as_ref());
            }
        }
        if applied != 0 && applied != distinct {
            return Err(format!(
                "a batch in flight was applied in part ({applied} of {distinct} entries): {:?}",
                intent.entries
            )
            .into());
        }
        tally.in_flight_applied += u64::from(applied > 0);
    }
    for (k, v) in &got {
        let want = acked.get(k).cloned().flatten();
        let flight = in_flight.get(k.as_str()).copied();
        if Some(v) != want.as_ref() && flight.is_none_or(|f| f.as_ref() != Some(v)) {
            return Err(format!(
                "{k} = {:.40}… is neither its last acknowledged value ({:.40?}) nor the one in flight ({:.40?})",
                v, want, flight
            )
            .into());
        }
    }
    for (k, v) in &acked {
        if let Some(v) = v
            && !got.contains_key(k)
            && in_flight.get(k.as_str()).is_none_or(|f| f.is_some())
        {
            return Err(format!("{k}: acknowledged value {v:.40}… lost (I5)").into());
        }
    }
    // Resurrected deletes show up above as a value that is not the acknowledged one.
    tally.keys = got.len() as u64;
    let mut next = String::new();
    let accounts = [(ACCOUNT_A, accounts.0), (ACCOUNT_B, accounts.1)];
    let accounts = accounts.iter().filter_map(|(k, v)| Some((*k, v.as_ref()?)));
    let merge_logs = got_logs[0].iter().map(|(k, v)| (k.as_str(), v));
    for (k, v) in got
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .chain(accounts)
        .chain(merge_logs)
    {
        next.push_str(&format!("{k}={v}\n"));
    }
    let tmp = dir.join("baseline.tmp");
    std::fs::write(&tmp, next)?;
    std::fs::rename(&tmp, &baseline_path)?;
    std::fs::write(&log_path, "")?;
    Ok(tally)
}

/// Each thread's merge log must read the same in both keyspaces, by scan and by point
/// lookup (a batch spans them atomically), and be the baseline's log with every
/// acknowledged append applied in order — or with the one append in flight at the kill
/// applied too (I5: a process crash loses nothing acknowledged).
fn verify_merge_logs(
    db: &Db,
    side: Option<&Keyspace>,
    got: &[BTreeMap<String, String>; 2],
    acked: &BTreeMap<String, String>,
    pending: &BTreeMap<String, (String, bool, String)>,
) -> Result<()> {
    let keys: std::collections::BTreeSet<&String> = got[0]
        .keys()
        .chain(got[1].keys())
        .chain(acked.keys())
        .collect();
    for k in keys {
        let (default, in_side) = (got[0].get(k), got[1].get(k));
        if default != in_side {
            return Err(format!(
                "{k} differs between the keyspaces ({:.60?} vs {:.60?}): a batch applied in part",
                default, in_side
            )
            .into());
        }
        let by_get = db.get(k)?;
        let by_get_side = side.map(|s| s.get(k)).transpose()?.flatten();
        if by_get.as_deref() != default.map(String::as_bytes)
            || (side.is_some() && by_get_side.as_deref() != in_side.map(String::as_bytes))
        {
            return Err(format!("a get of {k} disagrees with the scan").into());
        }
        let want = acked.get(k);
        let mut allowed = vec![want.cloned()];
        for (key, restart, token) in pending.values() {
            if key == k {
                let base = if *restart {
                    ""
                } else {
                    want.map_or("", String::as_str)
                };
                allowed.push(Some(format!("{base}{token}")));
            }
        }
        if !allowed.contains(&default.cloned()) {
            return Err(format!(
                "{k} = …{} is neither its acknowledged log (…{}) nor that plus the append in \
                 flight",
                tail(default.map_or("(absent)", String::as_str)),
                tail(want.map_or("(absent)", String::as_str)),
            )
            .into());
        }
    }
    Ok(())
}

/// The last 60 characters of a merge log, for messages.
fn tail(s: &str) -> &str {
    let start = s.len().saturating_sub(60);
    s.get(start..).unwrap_or(s)
}

/// A `T` intent's read-modify-write entry (its value holds `.after-<id>.`) names the
/// write its `get_for_update` saw: it must be the key's last acknowledged write (`none`:
/// absent), which the replay has reached — only the transaction's thread writes the key,
/// and it had every earlier write of its acknowledged before it began.
fn check_read(
    acked: &HashMap<String, Option<String>>,
    id: &str,
    entries: &[(String, Option<String>)],
) -> Result<()> {
    let mut reads = 0;
    for (k, v) in entries {
        let Some((_, rest)) = v.as_deref().and_then(|v| v.split_once(".after-")) else {
            continue;
        };
        reads += 1;
        let saw = rest.split('.').next().unwrap_or(rest);
        let want = match acked.get(k) {
            Some(Some(v)) => write_id(v)
                .ok_or_else(|| format!("{k} = {v:.40}: a value never written"))?
                .replace('.', "-"),
            _ => "none".to_owned(),
        };
        if saw != want {
            return Err(format!(
                "transaction {id} read {k} as written by {saw}, but its last acknowledged \
                 write was {want}"
            )
            .into());
        }
    }
    if reads != 1 {
        return Err(format!("transaction {id} has {reads} read-modify-writes, not one").into());
    }
    Ok(())
}

/// The accounts after a kill must be both from one transfer: the last acknowledged one
/// (the baseline's, if none was), or one in flight after it (I5: nothing acknowledged is
/// lost; all or nothing across the two keyspaces). And acknowledged transfers each
/// counted a different `n`, above the baseline's: two that read the same state and
/// both committed (a lost update, a missed conflict) would repeat one.
fn verify_transfers(
    base: &(Option<String>, Option<String>),
    transfers: &Transfers,
    got: &(Option<String>, Option<String>),
    tally: &mut Tally,
) -> Result<()> {
    let count = |a: Option<&str>, b: Option<&str>| -> Result<u64> {
        Ok(Accounts::read(a, b)?.map_or(0, |x| x.n))
    };
    let base_n = count(base.0.as_deref(), base.1.as_deref())
        .map_err(|e| format!("the baseline's accounts: {e}"))?;
    let mut last = (base.0.as_deref(), base.1.as_deref(), base_n);
    let mut counts = std::collections::BTreeSet::new();
    for (a, b) in &transfers.acked {
        let n = count(Some(a), Some(b)).map_err(|e| format!("a transfer's intent: {e}"))?;
        if n <= base_n || !counts.insert(n) {
            return Err(format!(
                "transfer ({a}, {b}) acknowledged with count {n}, which the baseline \
                 ({base_n}) or another acknowledged transfer already had: a lost update"
            )
            .into());
        }
        if n > last.2 {
            last = (Some(a), Some(b), n);
        }
    }
    tally.transfers_in_flight = transfers.pending.len() as u64;
    let got = (got.0.as_deref(), got.1.as_deref());
    Accounts::read(got.0, got.1).map_err(|e| format!("after the kill, {e}"))?;
    if got == (last.0, last.1) {
        return Ok(());
    }
    let in_flight = transfers.pending.values().any(|(a, b)| {
        got == (Some(a), Some(b)) && count(Some(a), Some(b)).is_ok_and(|n| n > last.2)
    });
    if !in_flight {
        return Err(format!(
            "the accounts hold {got:?}: neither the last acknowledged transfer's \
             ({:?}, {:?}) nor one in flight after it",
            last.0, last.1
        )
        .into());
    }
    tally.transfers_applied += 1;
    Ok(())
}

/// Every live table's checksums, through the manifest `CURRENT` names.
fn verify_tables(dir: &Path) -> Result<()> {
    let db = dir.join("db");
    let fs = StdFs;
    let manifest = strata::inspect::current_manifest(&fs, &db)?;
    let (records, _) = strata::inspect::read_manifest(&fs, &manifest)?;
    let every_keyspace = strata::inspect::keyspaces(&records)
        .into_iter()
        .flat_map(|(id, _)| strata::inspect::live_files_in(&records, id));
    for level in every_keyspace {
        for meta in level {
            let path = db.join(format!("{:06}.sst", meta.number));
            let table = strata_sstable::Table::open(fs.open(&path)?, meta.number, None)?;
            table
                .verify()
                .map_err(|e| format!("verify {}: {e}", path.display()))?;
        }
    }
    Ok(())
}
