//! `cargo xtask crashtest`: kill -9 a process writing to a database, over and over, and
//! check after each kill that nothing it acknowledged was lost.
//!
//! The parent starts a child (this binary's hidden `crashtest-child` command) that opens
//! the database on the real file system and runs a random workload from several threads
//! — puts, deletes, batches, sync and non-sync writes, with small MemTables and tables so
//! flushes, compactions and manifest roll-overs run constantly — then SIGKILLs it at a
//! random moment, reopens the database and verifies it, and starts the next child on
//! the same database.
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

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata::{Db, WriteBatch, WriteOptions};
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
        .memtable_bytes(128 << 10)
        .table_file_bytes(32 << 10)
        .block_bytes(1 << 10)
        .level_base_bytes(128 << 10)
        .level_fanout(4)
        .l0_compaction_trigger(2)
        .manifest_roll_bytes(4 << 10)
        .block_cache_bytes(256 << 10)
        .open()
}

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
            let (db, side, log) = (db.clone(), side.clone(), Arc::clone(&log));
            let mut rng = Rng(args.seed ^ (t + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
            let (cycle, threads) = (args.cycle, args.threads);
            std::thread::spawn(move || -> std::result::Result<(), String> {
                let started = Instant::now();
                let per = KEYS / threads;
                let own = |rng: &mut Rng| t * per + rng.below(per);
                for op in 0u64.. {
                    if started.elapsed() > Duration::from_secs(60) {
                        return Ok(());
                    }
                    let n = if rng.below(5) == 0 {
                        2 + rng.below(4)
                    } else {
                        1
                    };
                    let mut entries: BTreeMap<u64, Option<String>> = BTreeMap::new();
                    let mut batch = WriteBatch::new();
                    let mut range = 0..0;
                    // The keyspace of the range delete, if any: it deletes the keys of
                    // its range in that keyspace only.
                    let mut range_side = false;
                    if rng.below(12) == 0 {
                        // A range delete of up to 24 of the thread's own keys; the
                        // batch's later entries (higher sequence numbers) override it.
                        let first = own(&mut rng);
                        let end = (first + 1 + rng.below(24)).min((t + 1) * per);
                        range_side = in_side(first);
                        if range_side {
                            batch.delete_range_in(&side, key(first), key(end));
                        } else {
                            batch.delete_range(key(first), key(end));
                        }
                        range = first..end;
                        for k in range.clone().filter(|&k| in_side(k) == range_side) {
                            entries.insert(k, None);
                        }
                    }
                    for _ in 0..n {
                        let k = own(&mut rng);
                        let v = (rng.below(4) != 0).then(|| {
                            let mut v = format!("{}.{cycle}.{t}.{op}.", key(k));
                            let pad = if rng.below(20) == 0 {
                                3000
                            } else {
                                rng.below(200)
                            };
                            v.extend(std::iter::repeat_n('v', pad as usize));
                            v
                        });
                        entries.insert(k, v);
                    }
                    let sync = rng.below(6) == 0;
                    let id = format!("{cycle}.{t}.{op}");
                    let mut intent = format!("I {id}");
                    for (k, v) in &entries {
                        intent.push_str(&format!(" {}={}", key(*k), v.as_deref().unwrap_or("-")));
                    }
                    // The point entries (the range delete, if any, is already first).
                    let covered = |k: u64| range.contains(&k) && in_side(k) == range_side;
                    for (k, v) in entries.iter().filter(|(k, v)| v.is_some() || !covered(**k)) {
                        match (v, in_side(*k)) {
                            (Some(v), false) => batch.put(key(*k), v),
                            (Some(v), true) => batch.put_in(&side, key(*k), v),
                            (None, false) => batch.delete(key(*k)),
                            (None, true) => batch.delete_in(&side, key(*k)),
                        };
                    }
                    intent.push('\n');
                    append(&log, &intent)?;
                    db.write(batch, WriteOptions { sync })
                        .map_err(|e| format!("write {id} failed: {e}"))?;
                    append(&log, &format!("A {id}\n"))?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "a writer thread panicked")??;
    }
    Ok(())
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
    acked: u64,
    in_flight: u64,
    in_flight_applied: u64,
    keys: u64,
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
        if let Some(status) = child.try_wait()? {
            let mut err = String::new();
            if let Some(mut s) = child.stderr.take() {
                std::io::Read::read_to_string(&mut s, &mut err)?;
            }
            if !status.success() {
                let _ = temp.map(tempfile::TempDir::keep);
                return Err(format!(
                    "cycle {cycle}: the child failed ({status}): {err}\n(dir kept: {})",
                    dir.display()
                )
                .into());
            }
            early_exits += 1;
        } else {
            child.kill()?; // SIGKILL
            child.wait()?;
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
        total.in_flight += tally.in_flight;
        total.in_flight_applied += tally.in_flight_applied;
        total.keys = tally.keys;
    }
    println!(
        "crashtest: {} cycles (seed {seed}, {} threads): {} writes acknowledged, all present; \
         {} in flight at a kill ({} of them applied, atomically); {} keys at the end; \
         {} children exited before the kill; {:.1} s",
        args.iterations,
        args.threads,
        total.acked,
        total.in_flight,
        total.in_flight_applied,
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
            (Some("I"), Some(id)) => {
                let entries = words
                    .map(|w| {
                        let (k, v) = w.split_once('=').ok_or("bad intent")?;
                        Ok((k.to_owned(), (v != "-").then(|| v.to_owned())))
                    })
                    .collect::<Result<Vec<_>>>()?;
                pending.insert(id.to_owned(), Intent { entries });
            }
            (Some("A"), Some(id)) => {
                let intent = pending.remove(id).ok_or("ack without intent")?;
                for (k, v) in intent.entries {
                    acked.insert(k, v);
                }
                tally.acked += 1;
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
    let scans = std::iter::once((false, db.iter())).chain(side.iter().map(|s| (true, s.iter())));
    for (scan_side, scan) in scans {
        for kv in scan {
            let (k, v) = kv.map_err(|e| format!("scan failed: {e}"))?;
            let k = String::from_utf8(k.to_vec()).map_err(|_| "a key that was never written")?;
            let in_right_keyspace = k
                .strip_prefix("key")
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| in_side(n) == scan_side);
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
    drop(side);
    db.close().map_err(|e| format!("close failed: {e}"))?;
    // After close: background compactions no longer change the set of live tables.
    verify_tables(dir)?;

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
    for (k, v) in &got {
        next.push_str(&format!("{k}={v}\n"));
    }
    let tmp = dir.join("baseline.tmp");
    std::fs::write(&tmp, next)?;
    std::fs::rename(&tmp, &baseline_path)?;
    std::fs::write(&log_path, "")?;
    Ok(tally)
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
