//! `strata-bench keyspaces`: records and a secondary index (issue 14's workload) in two
//! keyspaces of Strata, in Strata's one default keyspace under key prefixes (what a
//! user did before keyspaces), and in two keyspaces of fjall, side by side in one run.
//!
//! Each engine and run starts from an empty directory:
//! - `fill`: for `i` in a seeded random permutation of `0..num`, one atomic batch of a
//!   record `user:{i:08}` → a 100-byte value in `records` and an index entry
//!   `name:{h(i):016x}` → `user:{i:08}` in `index` (`h` is a bijective 64-bit mix, so
//!   index keys are spread over the key space and never collide). No fsync.
//! - then the engine settles (flush, wait for its compactions, wait until the process
//!   writes nothing) and the size of its directory is taken;
//! - `lookup`: for `i` in another permutation, get `name:{h(i):016x}` from `index`,
//!   then the record it names from `records`; each must be found;
//! - `scan`: every entry of `records`, in order.
//!
//! Method and figures: `benches/README.md` and `docs/benchmarks.md` ("Keyspaces:
//! records and an index").

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use strata::{Db, Keyspace, WriteBatch, WriteOptions};

use crate::engine::Res;
use crate::metrics;
use crate::workload::{Outcome, Rng, Values, histogram, permutation, progress, run_ops};

/// `strata-bench keyspaces` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct KeyspacesArgs {
    /// Records (each with one index entry).
    #[arg(long, default_value_t = 200_000)]
    pub num: u64,
    /// Comma list: strata (two keyspaces), strata-prefixed (the default keyspace, keys
    /// under `r/` and `i/`), fjall (two keyspaces; built with `--features fjall`), or
    /// all (every compiled one).
    #[arg(long, default_value = "all")]
    pub engines: String,
    /// Record value size in bytes.
    #[arg(long = "value_size", default_value_t = 100)]
    pub value_size: usize,
    /// Write buffer per engine, in total: Strata with two keyspaces and fjall give each
    /// keyspace half of it; strata-prefixed gives it to its one keyspace.
    #[arg(long = "write_buffer_size", default_value_t = 64 << 20)]
    pub write_buffer_size: usize,
    /// Block cache bytes, shared by the keyspaces of an engine.
    #[arg(long = "cache_bytes", default_value_t = 32 << 20)]
    pub cache_bytes: usize,
    /// Runs; the engines go one after another in each run, in reverse order in even runs.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Seed of the orders.
    #[arg(long, default_value_t = 301)]
    pub seed: u64,
    /// Base directory (each engine and run uses a fresh directory under it, removed
    /// after). Default: a temporary directory.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Print the results as JSON on stdout (the progress lines go to stderr).
    #[arg(long, num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    pub json: bool,
}

/// An engine and layout under test.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Layout {
    /// Two Strata keyspaces, one `WriteBatch::put_in` pair per record.
    Strata,
    /// Strata's default keyspace, records under `r/`, index under `i/`.
    StrataPrefixed,
    /// Two fjall keyspaces, one fjall batch per record.
    #[cfg(feature = "fjall")]
    Fjall,
}

impl Layout {
    fn all() -> Vec<Layout> {
        vec![
            Layout::Strata,
            Layout::StrataPrefixed,
            #[cfg(feature = "fjall")]
            Layout::Fjall,
        ]
    }

    fn name(self) -> &'static str {
        match self {
            Layout::Strata => "strata",
            Layout::StrataPrefixed => "strata-prefixed",
            #[cfg(feature = "fjall")]
            Layout::Fjall => "fjall",
        }
    }

    fn parse(list: &str) -> Res<Vec<Layout>> {
        if list == "all" {
            return Ok(Layout::all());
        }
        list.split(',')
            .map(str::trim)
            .map(|name| {
                Layout::all()
                    .into_iter()
                    .find(|l| l.name() == name)
                    .ok_or_else(|| {
                        let compiled: Vec<_> = Layout::all().iter().map(|l| l.name()).collect();
                        format!(
                            "engine {name:?} is not compiled in (compiled: {}); fjall needs \
                             `--features fjall`",
                            compiled.join(", ")
                        )
                        .into()
                    })
            })
            .collect()
    }

    fn open(self, dir: &Path, args: &KeyspacesArgs) -> Res<Box<dyn Pairs>> {
        Ok(match self {
            Layout::Strata => Box::new(StrataKeyspaces::open(dir, args)?),
            Layout::StrataPrefixed => Box::new(StrataPrefixed::open(dir, args)?),
            #[cfg(feature = "fjall")]
            Layout::Fjall => Box::new(fjall::FjallKeyspaces::open(dir, args)?),
        })
    }
}

/// Records and their index, as one engine stores them.
trait Pairs: Send + Sync {
    /// Writes `record` → `value` and `index` → `record` in one atomic batch, unsynced.
    fn write(&self, record: &[u8], value: &[u8], index: &[u8]) -> Res<()>;
    /// Gets `index`, then the record it names; whether both were found.
    fn lookup(&self, index: &[u8]) -> Res<bool>;
    /// Visits every record in key order.
    fn scan_records(&self, visit: &mut dyn FnMut(&[u8], &[u8])) -> Res<()>;
    /// Entries of the index (a full scan).
    fn count_index(&self) -> Res<u64>;
    /// Flushes the MemTables and waits for the background work.
    fn settle(&self) -> Res<()>;
    /// Closes cleanly.
    fn close(self: Box<Self>) -> Res<()>;
}

/// The record key of `i`.
fn record_key(i: u64) -> String {
    format!("user:{i:08}")
}

/// The index key of `i`: a bijective mix of `i` (splitmix64's finalizer), in hex.
fn index_key(i: u64) -> String {
    let mut z = i;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    format!("name:{:016x}", z ^ (z >> 31))
}

fn strata_builder(dir: &Path, args: &KeyspacesArgs, memtable_bytes: usize) -> strata::DbBuilder {
    Db::builder(dir)
        .block_cache_bytes(args.cache_bytes)
        .memtable_bytes(memtable_bytes)
        .compression(strata::Compression::None)
}

/// Flush, then wait until no flush or compaction is left.
fn strata_settle(db: &Db) -> Res<()> {
    db.flush()?;
    db.wait_for_compaction()?;
    Ok(())
}

/// Entries of a Strata iterator.
fn count(entries: strata::DbIter) -> Res<u64> {
    let mut n = 0;
    for kv in entries {
        kv?;
        n += 1;
    }
    Ok(n)
}

/// Strata, two keyspaces of half the write buffer each.
struct StrataKeyspaces {
    db: Db,
    records: Keyspace,
    index: Keyspace,
}

impl StrataKeyspaces {
    fn open(dir: &Path, args: &KeyspacesArgs) -> Res<Self> {
        // Every keyspace takes the database's MemTable size; the default one stays empty.
        let db = strata_builder(dir, args, args.write_buffer_size / 2).open()?;
        let records = db.keyspace("records")?;
        let index = db.keyspace("index")?;
        Ok(StrataKeyspaces { db, records, index })
    }
}

impl Pairs for StrataKeyspaces {
    fn write(&self, record: &[u8], value: &[u8], index: &[u8]) -> Res<()> {
        let mut batch = WriteBatch::new();
        batch
            .put_in(&self.records, record, value)
            .put_in(&self.index, index, record);
        Ok(self.db.write(batch, WriteOptions::default())?)
    }

    fn lookup(&self, index: &[u8]) -> Res<bool> {
        Ok(match self.index.get(index)? {
            Some(record) => self.records.get(&record)?.is_some(),
            None => false,
        })
    }

    fn scan_records(&self, visit: &mut dyn FnMut(&[u8], &[u8])) -> Res<()> {
        for kv in self.records.iter() {
            let (k, v) = kv?;
            visit(&k, &v);
        }
        Ok(())
    }

    fn count_index(&self) -> Res<u64> {
        count(self.index.iter())
    }

    fn settle(&self) -> Res<()> {
        strata_settle(&self.db)
    }

    fn close(self: Box<Self>) -> Res<()> {
        let StrataKeyspaces { db, records, index } = *self;
        drop((records, index));
        Ok(db.close()?)
    }
}

/// Strata before keyspaces: one tree with the whole write buffer, keys under prefixes.
struct StrataPrefixed {
    db: Db,
}

const RECORDS_PREFIX: &[u8] = b"r/";
const INDEX_PREFIX: &[u8] = b"i/";

impl StrataPrefixed {
    fn open(dir: &Path, args: &KeyspacesArgs) -> Res<Self> {
        let db = strata_builder(dir, args, args.write_buffer_size).open()?;
        Ok(StrataPrefixed { db })
    }
}

impl Pairs for StrataPrefixed {
    fn write(&self, record: &[u8], value: &[u8], index: &[u8]) -> Res<()> {
        let mut batch = WriteBatch::new();
        batch
            .put([RECORDS_PREFIX, record].concat(), value)
            .put([INDEX_PREFIX, index].concat(), record);
        Ok(self.db.write(batch, WriteOptions::default())?)
    }

    fn lookup(&self, index: &[u8]) -> Res<bool> {
        Ok(match self.db.get([INDEX_PREFIX, index].concat())? {
            Some(record) => self.db.get([RECORDS_PREFIX, &record].concat())?.is_some(),
            None => false,
        })
    }

    fn scan_records(&self, visit: &mut dyn FnMut(&[u8], &[u8])) -> Res<()> {
        for kv in self.db.prefix(RECORDS_PREFIX) {
            let (k, v) = kv?;
            visit(k.get(RECORDS_PREFIX.len()..).unwrap_or_default(), &v);
        }
        Ok(())
    }

    fn count_index(&self) -> Res<u64> {
        count(self.db.prefix(INDEX_PREFIX))
    }

    fn settle(&self) -> Res<()> {
        strata_settle(&self.db)
    }

    fn close(self: Box<Self>) -> Res<()> {
        Ok(self.db.close()?)
    }
}

#[cfg(feature = "fjall")]
mod fjall {
    //! fjall 3: two keyspaces of half the write buffer each (`max_memtable_size`), no
    //! compression, the database's block cache; one `db.batch()` per record, committed
    //! with fjall's default durability (`PersistMode::Buffer`: to the OS, no fsync).

    use std::path::Path;
    use std::time::{Duration, Instant};

    use ::fjall::config::CompressionPolicy;
    use ::fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};

    use super::{KeyspacesArgs, Pairs};
    use crate::engine::Res;

    /// Records and index in two fjall keyspaces.
    pub struct FjallKeyspaces {
        db: Database,
        records: Keyspace,
        index: Keyspace,
    }

    impl FjallKeyspaces {
        /// Opens (or creates) the database in `dir`.
        pub fn open(dir: &Path, args: &KeyspacesArgs) -> Res<Self> {
            let db = Database::builder(dir)
                .cache_size(args.cache_bytes as u64)
                .open()?;
            let memtable = (args.write_buffer_size / 2) as u64;
            let options = || {
                KeyspaceCreateOptions::default()
                    .max_memtable_size(memtable)
                    .data_block_compression_policy(CompressionPolicy::all(CompressionType::None))
            };
            let records = db.keyspace("records", options)?;
            let index = db.keyspace("index", options)?;
            Ok(FjallKeyspaces { db, records, index })
        }
    }

    impl Pairs for FjallKeyspaces {
        fn write(&self, record: &[u8], value: &[u8], index: &[u8]) -> Res<()> {
            let mut batch = self.db.batch();
            batch.insert(&self.records, record, value);
            batch.insert(&self.index, index, record);
            Ok(batch.commit()?)
        }

        fn lookup(&self, index: &[u8]) -> Res<bool> {
            Ok(match self.index.get(index)? {
                Some(record) => self.records.get(&*record)?.is_some(),
                None => false,
            })
        }

        fn scan_records(&self, visit: &mut dyn FnMut(&[u8], &[u8])) -> Res<()> {
            for g in self.records.iter() {
                let (k, v) = g.into_inner()?;
                visit(&k, &v);
            }
            Ok(())
        }

        fn count_index(&self) -> Res<u64> {
            Ok(self.index.len()? as u64)
        }

        fn settle(&self) -> Res<()> {
            // Flush both MemTables and wait for the flushes (fjall's own, test-facing
            // call, as the db_bench harness uses), then until no compaction has run for
            // half a second (fjall has no call that waits for them).
            self.records.rotate_memtable_and_wait()?;
            self.index.rotate_memtable_and_wait()?;
            let start = Instant::now();
            let mut idle_since = Instant::now();
            while start.elapsed() < Duration::from_secs(120) {
                if self.db.active_compactions() > 0 || self.db.outstanding_flushes() > 0 {
                    idle_since = Instant::now();
                } else if idle_since.elapsed() >= Duration::from_millis(500) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        }

        fn close(self: Box<Self>) -> Res<()> {
            self.db.persist(PersistMode::SyncAll)?;
            Ok(())
        }
    }
}

/// One phase of one engine in one run.
#[derive(Serialize, Clone, Debug)]
pub struct PhaseRow {
    /// `strata`, `strata-prefixed` or `fjall`.
    pub engine: String,
    /// Which run (from 1).
    pub run: u32,
    /// `fill`, `lookup` or `scan`.
    pub phase: String,
    /// Operations: batches (fill), lookups (two gets each), entries (scan).
    pub ops: u64,
    /// Lookups that found the index entry and its record; records scanned; batches.
    pub found: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Operations per second (wall time).
    pub ops_per_sec: f64,
    /// Process CPU time over the timed phase (background threads included) per op, µs.
    pub cpu_us_per_op: f64,
    /// Median latency of one operation (scan: one entry, from batches of 1024), µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
}

/// What one engine held after one run's fill.
#[derive(Serialize, Clone, Debug)]
pub struct SizeRow {
    /// The engine.
    pub engine: String,
    /// Which run (from 1).
    pub run: u32,
    /// Allocated bytes of the engine's directory after it settled.
    pub disk_bytes: u64,
    /// Time to settle (flush, compactions, quiet process), seconds.
    pub settle_seconds: f64,
    /// Process CPU time of the fill and the settling after it (the flushes and
    /// compactions the fill left), per batch, µs.
    pub fill_settled_cpu_us_per_op: f64,
    /// Entries in `index`, counted by a full scan after the phases.
    pub index_entries: u64,
}

/// A whole run.
#[derive(Serialize)]
pub struct KeyspacesReport {
    /// The flags.
    pub parameters: String,
    /// CPU, cores, memory, kernel.
    pub machine: String,
    /// Every phase of every engine, in the order they ran.
    pub phases: Vec<PhaseRow>,
    /// Every engine's size after its fill, in the order they ran.
    pub sizes: Vec<SizeRow>,
}

/// Runs `strata-bench keyspaces`.
pub fn run(args: KeyspacesArgs) -> Res<()> {
    let (base, _tmp) = crate::base_dir(args.db.as_ref(), "strata-ksbench")?;
    crate::emit(
        args.json,
        &base,
        HEADER,
        |row: &PhaseRow| row.markdown(""),
        |each| measure(&args, &base, each),
        |report: &KeyspacesReport| report.table(),
    )
}

/// Every engine in turn, `--repeat` times.
fn measure(
    args: &KeyspacesArgs,
    base: &Path,
    each: &mut dyn FnMut(&PhaseRow),
) -> Res<KeyspacesReport> {
    let layouts = Layout::parse(&args.engines)?;
    if args.num == 0 || args.num > 100_000_000 {
        return Err("--num: between 1 and 100,000,000 (record keys have 8 digits)".into());
    }
    let values = Values::new(args.value_size, args.seed, 1.0);
    let fill_order = permutation(args.num, args.seed);
    let lookup_order = permutation(args.num, Rng::new(args.seed).next_u64());
    let mut phases = Vec::new();
    let mut sizes = Vec::new();
    for run in 1..=args.repeat.max(1) {
        // Even runs go in reverse order, so no engine is always the first of a run (the
        // first pays the process's warm-up) or always after the same one.
        let order: Vec<Layout> = if run % 2 == 0 {
            layouts.iter().rev().copied().collect()
        } else {
            layouts.clone()
        };
        for layout in order {
            let name = layout.name();
            let dir = base.join(format!("{name}-r{run}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let pairs = layout.open(&dir, args)?;
            let mut push = |phase: &str, o: &Outcome, cpu: Duration| {
                let row = PhaseRow::new(name, run, phase, o, cpu);
                each(&row);
                phases.push(row);
            };

            let (o, fill_cpu) = timed(|| {
                run_ops(
                    1,
                    args.num,
                    0,
                    &progress(args.num, &format!("{name} fill")),
                    |_, j| {
                        let i = fill_order.get(j as usize).copied().unwrap_or(j);
                        let record = record_key(i);
                        pairs.write(
                            record.as_bytes(),
                            values.get(i, 0),
                            index_key(i).as_bytes(),
                        )?;
                        Ok(true)
                    },
                    None,
                )
            })?;
            push("fill", &o, fill_cpu);

            let settle_start = Instant::now();
            let settle_cpu0 = metrics::process_cpu();
            pairs.settle()?;
            metrics::wait_for_quiet(Duration::from_millis(500), Duration::from_secs(120));
            let settle_seconds = settle_start.elapsed().as_secs_f64();
            let settle_cpu = metrics::process_cpu().saturating_sub(settle_cpu0);
            let fill_settled_cpu_us_per_op =
                (fill_cpu + settle_cpu).as_secs_f64() * 1e6 / args.num as f64;
            let disk_bytes = metrics::allocated_bytes(&dir);

            let (o, cpu) = timed(|| {
                run_ops(
                    1,
                    args.num,
                    0,
                    &progress(args.num, &format!("{name} lookup")),
                    |_, j| {
                        let i = lookup_order.get(j as usize).copied().unwrap_or(j);
                        pairs.lookup(index_key(i).as_bytes())
                    },
                    None,
                )
            })?;
            push("lookup", &o, cpu);

            let (o, cpu) = timed(|| scan(&*pairs))?;
            push("scan", &o, cpu);

            let index_entries = pairs.count_index()?;
            pairs.close()?;
            let _ = std::fs::remove_dir_all(&dir);
            metrics::release_freed_memory();
            sizes.push(SizeRow {
                engine: name.into(),
                run,
                disk_bytes,
                settle_seconds,
                fill_settled_cpu_us_per_op,
                index_entries,
            });
        }
    }
    Ok(KeyspacesReport {
        parameters: format!(
            "--num={} --engines={} --value_size={} --write_buffer_size={} --cache_bytes={} \
             --repeat={} --seed={}",
            args.num,
            args.engines,
            args.value_size,
            args.write_buffer_size,
            args.cache_bytes,
            args.repeat,
            args.seed
        ),
        machine: metrics::machine(),
        phases,
        sizes,
    })
}

/// Runs `phase` and returns its outcome with the process CPU time it took.
fn timed(phase: impl FnOnce() -> Res<Outcome>) -> Res<(Outcome, Duration)> {
    let cpu0 = metrics::process_cpu();
    let outcome = phase()?;
    Ok((outcome, metrics::process_cpu().saturating_sub(cpu0)))
}

/// Scans every record. Latency is recorded per batch of 1024 entries, divided by 1024,
/// as the db_bench harness's scans do.
fn scan(pairs: &dyn Pairs) -> Res<Outcome> {
    const STEP: u64 = 1024;
    let mut hist = histogram()?;
    let mut seen = 0u64;
    let start = Instant::now();
    let mut last = start;
    pairs.scan_records(&mut |k, v| {
        std::hint::black_box((k, v));
        seen += 1;
        if seen.is_multiple_of(STEP) {
            let now = Instant::now();
            hist.saturating_record((now - last).as_nanos() as u64 / STEP);
            last = now;
        }
    })?;
    Ok(Outcome {
        ops: seen,
        found: seen,
        elapsed: start.elapsed(),
        hist,
        background_ops: 0,
        writes: None,
        // Not a db_bench workload: no timeline, no stall counts.
        tails: Default::default(),
    })
}

impl PhaseRow {
    fn new(engine: &str, run: u32, phase: &str, o: &Outcome, cpu: Duration) -> PhaseRow {
        let secs = o.elapsed.as_secs_f64().max(1e-9);
        let q = |p: f64| o.hist.value_at_quantile(p) as f64 / 1e3;
        PhaseRow {
            engine: engine.into(),
            run,
            phase: phase.into(),
            ops: o.ops,
            found: o.found,
            seconds: secs,
            ops_per_sec: o.ops as f64 / secs,
            cpu_us_per_op: cpu.as_secs_f64() * 1e6 / o.ops.max(1) as f64,
            p50_us: q(0.50),
            p99_us: q(0.99),
        }
    }

    /// The row as a line of the Markdown table; `ratio` fills the last column.
    fn markdown(&self, ratio: &str) -> String {
        format!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} |",
            self.phase,
            self.engine,
            self.run,
            self.ops_per_sec,
            self.cpu_us_per_op,
            self.p50_us,
            self.p99_us,
            self.found,
            ratio
        )
    }
}

const HEADER: &str = "| phase | engine | run | ops/s | CPU µs/op | p50 µs | p99 µs | found | \
                      this ÷ strata (ops/s) |\n|---|---|--:|--:|--:|--:|--:|--:|--:|";

impl KeyspacesReport {
    /// The phases as a Markdown table (with each row's ops/s ÷ Strata's in the same
    /// run and phase), then the sizes after fill.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}\n{}\n\n{HEADER}", self.parameters, self.machine);
        for r in &self.phases {
            let strata = self
                .phases
                .iter()
                .find(|o| o.engine == "strata" && o.run == r.run && o.phase == r.phase);
            let ratio = match strata {
                Some(o) if !std::ptr::eq(o, r) && o.ops_per_sec > 0.0 => {
                    format!("{:.2}", r.ops_per_sec / o.ops_per_sec)
                }
                _ => String::new(),
            };
            let _ = writeln!(s, "{}", r.markdown(&ratio));
        }
        let _ = writeln!(
            s,
            "\n| engine | run | on disk after fill, MiB | settle s | fill + settle CPU µs/op | \
             index entries |\n|---|--:|--:|--:|--:|--:|"
        );
        for z in &self.sizes {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.1} | {:.2} | {} |",
                z.engine,
                z.run,
                z.disk_bytes as f64 / (1 << 20) as f64,
                z.settle_seconds,
                z.fill_settled_cpu_us_per_op,
                z.index_entries
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every compiled engine runs the workload end to end: each lookup finds its index
    /// entry and its record, and both keyspaces hold one entry per record.
    #[test]
    fn every_lookup_finds_its_record_and_both_keyspaces_hold_every_entry() {
        let dir = tempfile::tempdir().expect("temp dir");
        let args = KeyspacesArgs {
            num: 300,
            engines: "all".into(),
            value_size: 100,
            write_buffer_size: 1 << 20,
            cache_bytes: 1 << 20,
            repeat: 1,
            seed: 7,
            db: None,
            json: true,
        };
        let report = measure(&args, dir.path(), &mut |_| {}).expect("the benchmark runs");
        assert_eq!(report.phases.len(), Layout::all().len() * 3);
        for r in &report.phases {
            assert_eq!((r.ops, r.found), (300, 300), "{r:?}");
        }
        assert_eq!(report.sizes.len(), Layout::all().len());
        for z in &report.sizes {
            assert_eq!(z.index_entries, 300, "{z:?}");
            assert!(z.disk_bytes > 300 * 100, "{z:?}");
        }
        assert!(report.table().contains("| lookup | strata-prefixed | 1 |"));
    }

    #[test]
    fn index_keys_are_distinct_and_fixed_width() {
        let keys: std::collections::BTreeSet<String> = (0..10_000).map(index_key).collect();
        assert_eq!(keys.len(), 10_000);
        assert!(keys.iter().all(|k| k.len() == "name:".len() + 16));
        assert_eq!(record_key(42), "user:00000042");
    }
}
