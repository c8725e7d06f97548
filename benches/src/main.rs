//! `strata-bench`: a db_bench-style comparison of Strata with RocksDB, fjall, sled and
//! redb, run side by side in one process so ratios hold on a noisy machine.
//!
//! Run it with `cargo xtask bench [--features peers] -- <db_bench flags>`; see
//! `benches/README.md` and `docs/benchmarks.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;

mod engine;
mod keyspaces;
mod metrics;
mod peers;
mod raft;
mod report;
mod setup;
mod tails;
mod workload;
mod ycsb;

use engine::{Attempt, Config, Engine, Purpose, Res};
use report::Row;
use workload::{Values, fill_key, permutation, pick, progress, run_ops, run_scan};

/// The workloads, in db_bench's names, in the order they run by default.
const DEFAULT_BENCHMARKS: &str = "fillseq,fillrandom,overwrite,reopen,readrandom,readmissing,\
readseq,readreverse,seekrandom,readwhilewriting,deleterandom,fillsync";

/// db_bench-style benchmark of Strata and its peers.
#[derive(Parser, Debug)]
#[command(
    name = "strata-bench",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// Another benchmark instead of the db_bench workloads.
    #[command(subcommand)]
    command: Option<Command>,
    /// Number of keys.
    #[arg(long, default_value_t = 200_000)]
    num: u64,
    /// Key size in bytes (a big-endian u64 followed by padding; at least 9).
    #[arg(long = "key_size", default_value_t = 16)]
    key_size: usize,
    /// Value size in bytes.
    #[arg(long = "value_size", default_value_t = 100)]
    value_size: usize,
    /// Threads per workload (readwhilewriting: reader threads, plus one writer).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Reads per read workload; operations per YCSB workload (default: --num).
    #[arg(long)]
    reads: Option<u64>,
    /// Base directory; each engine uses `<db>/<engine>`. Default: a temporary directory,
    /// removed at the end.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Do not wipe the databases before fill workloads; assume they hold --num keys.
    #[arg(long = "use_existing_db", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    use_existing_db: bool,
    /// strata | rocksdb | fjall | sled | redb | all (every compiled engine); a comma list
    /// also works.
    #[arg(long, default_value = "strata")]
    engine: String,
    /// Comma-separated workloads, run in order.
    #[arg(long, default_value = DEFAULT_BENCHMARKS, value_delimiter = ',')]
    benchmarks: Vec<String>,
    /// Block cache bytes (B-trees get this plus --write_buffer_size as their cache).
    #[arg(long = "cache_bytes", default_value_t = 32 << 20)]
    cache_bytes: usize,
    /// MemTable / write buffer bytes of the LSMs.
    #[arg(long = "write_buffer_size", default_value_t = 64 << 20)]
    write_buffer_size: usize,
    /// Table compression of every engine, every level: none, lz4 or zstd (zstd: Strata
    /// and RocksDB, with the bench built with `--features zstd`). Engines without the
    /// codec (sled, redb; fjall for zstd) run uncompressed and the header says so.
    #[arg(long, default_value = "none")]
    compression: String,
    /// How far values compress (db_bench's flag): 1.0 (default here) is random bytes,
    /// 0.5 is db_bench's default, half random and half repeated.
    #[arg(long = "compression_ratio", default_value_t = 1.0)]
    compression_ratio: f64,
    /// Strata's filters sized from the tree's shape under this average bits-per-key
    /// budget (`DbBuilder::bloom_filter_budget`, Monkey); default: 10 bits per key
    /// everywhere.
    #[arg(long = "bloom_filter_budget")]
    bloom_filter_budget: Option<f64>,
    /// Strata's subcompactions (`DbBuilder::max_subcompactions`; RocksDB's
    /// `max_subcompactions`): threads one compaction may split into. Default 1.
    #[arg(long = "subcompactions", default_value_t = 1)]
    subcompactions: usize,
    /// Strata's table reads through a memory map (`DbBuilder::mmap_reads`, on by
    /// default); `false` reads blocks with `pread`, as the other engines do.
    #[arg(long = "mmap_reads", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new(), default_value = "true")]
    mmap_reads: bool,
    /// deleterange: keys each range delete covers (`[k·2L, k·2L + L)`, every other run
    /// of L keys, so half the key space survives).
    #[arg(long = "range_delete_len", default_value_t = 100)]
    range_delete_len: u64,
    /// deleterange: how many range deletes (default: num / (2 × range_delete_len), at
    /// least 1: every other run of keys over the whole key space).
    #[arg(long = "range_deletes")]
    range_deletes: Option<u64>,
    /// Run every engine twice: as asked, and as `<engine>-baseline`, a database that
    /// never receives the keys deleterange deletes (fills write only the survivors;
    /// deleterange does nothing there). Reads then compare the same surviving keys with
    /// and without range tombstones; the table reports the ratio.
    #[arg(long = "range_delete_baseline", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    range_delete_baseline: bool,
    /// Strata's compactions for range tombstones (`DbBuilder::range_delete_compactions`):
    /// `false` keeps tombstones and the keys they cover until ordinary compaction
    /// reaches them, to measure reads while both are held.
    #[arg(long = "range_delete_compactions", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new(), default_value = "true")]
    range_delete_compactions: bool,
    /// seekrandom: entries read after each seek's first (db_bench's `--seek_nexts`), so
    /// a short range scan is `--seek_nexts 10`.
    #[arg(long = "seek_nexts", default_value_t = 0)]
    seek_nexts: usize,
    /// readrandomwriterandom: reads out of every 100 operations (db_bench's flag: the
    /// reads of each hundred come first, then the writes).
    #[arg(long = "readwritepercent", default_value_t = 90)]
    readwritepercent: u64,
    /// incrmerge / incrtxn: how many u64 counters the --num increments are spread over
    /// (uniformly at random).
    #[arg(long, default_value_t = 10_000)]
    counters: u64,
    /// Seed of the random orders.
    #[arg(long, default_value_t = 301)]
    seed: u64,
    /// Print the results as JSON on stdout (the db_bench lines go to stderr).
    #[arg(long, num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    json: bool,
    /// How long the process must write nothing before a write workload counts as settled.
    #[arg(long = "settle_quiet_ms", default_value_t = 500)]
    settle_quiet_ms: u64,
    /// Also write a bar chart of ops/s per workload and engine (SVG) to this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Latency over time (`--timeline`, `--timeline_interval_ms`, `--timeline_svg`).
    #[command(flatten)]
    tails: tails::TailArgs,
}

/// The benchmarks that are not db_bench workloads.
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// openraft log stores side by side: proposals through a real `openraft::Raft` on
    /// Strata's log store and on peers' (`strata-bench raft --help`).
    Raft(raft::RaftArgs),
    /// Records and a secondary index in two keyspaces: Strata's keyspaces, Strata's
    /// default keyspace under key prefixes, fjall's keyspaces
    /// (`strata-bench keyspaces --help`).
    Keyspaces(keyspaces::KeyspacesArgs),
}

/// What a workload does, for the bookkeeping around it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Starts from an empty database and writes every key.
    Fill,
    /// Writes or deletes over existing data.
    Update,
    /// Reads existing data.
    Read,
    /// Closes and times the open.
    Reopen,
    /// Increments counters in a fresh database of its own (`<db>/<engine>.counters`),
    /// then reads every counter back and checks the totals.
    Counters,
}

fn kind(name: &str) -> Option<Kind> {
    Some(match name {
        "fillseq" | "fillrandom" | "fillsync" => Kind::Fill,
        "overwrite" | "deleterandom" | "deleterange" | "readrandomwriterandom" => Kind::Update,
        "readrandom" | "readmissing" | "readdeleted" | "readseq" | "readreverse" | "seekrandom"
        | "readwhilewriting" => Kind::Read,
        // Both need the keys loaded and write no user bytes.
        "reopen" | "compact" => Kind::Reopen,
        "incrmerge" | "incrtxn" => Kind::Counters,
        // YCSB's core workloads; C only reads, the others write (settled, write amp).
        "ycsbc" => Kind::Read,
        "ycsba" | "ycsbb" | "ycsbd" | "ycsbe" | "ycsbf" => Kind::Update,
        _ => return None,
    })
}

/// The outcome of a workload that is one operation taking `took` (reopen, compact).
fn one_op(took: Duration) -> Res<workload::Outcome> {
    let mut hist = workload::histogram()?;
    hist.saturating_record(took.as_nanos() as u64);
    Ok(workload::Outcome {
        ops: 1,
        found: 0,
        elapsed: took,
        hist,
        background_ops: 0,
        writes: None,
        tails: tails::Tails::one_op(took),
    })
}

/// Per-engine state carried between workloads.
#[derive(Default)]
struct State {
    /// The database holds keys `0..num`.
    loaded: bool,
    /// Write rounds so far (overwrites write new values).
    round: u64,
    /// The engine's tree after each write workload.
    shapes: Vec<(String, String)>,
    /// The keys deleterange covers are absent (range-deleted, or never written by a
    /// baseline twin): reads pick from the survivors.
    deleted: bool,
    /// Keys `num..num + inserted` exist too: YCSB D and E inserted them (noted in
    /// `<db>/<engine>.ycsbinserted` for `--use_existing_db`).
    inserted: u64,
}

/// incrtxn gives up on an increment refused this many times in a row.
const MAX_RETRIES: u64 = 10_000;

/// Suffix of the twin engines `--range_delete_baseline` adds.
const BASELINE: &str = "-baseline";

/// Whether `engine` is a baseline twin (never holds the range-deleted keys).
fn is_baseline(engine: &str) -> bool {
    engine.ends_with(BASELINE)
}

/// Which keys the deleterange workload deletes: `count` runs of `len` keys, run `k`
/// being `[k·2·len, k·2·len + len)`, so every other run survives.
#[derive(Clone, Copy, Debug)]
struct Pattern {
    len: u64,
    count: u64,
}

impl Pattern {
    fn stride(&self) -> u64 {
        self.len * 2
    }

    /// Whether key `i` is one that deleterange deletes.
    fn covered(&self, i: u64) -> bool {
        i / self.stride() < self.count && i % self.stride() < self.len
    }

    /// Range `k`'s bounds as key numbers: `[start, end)`.
    fn range(&self, k: u64) -> (u64, u64) {
        let start = k * self.stride();
        (start, start + self.len)
    }
}

struct Bench {
    args: Args,
    base: PathBuf,
    cfg: Config,
    values: Values,
    reads: u64,
    pattern: Pattern,
}

fn main() -> std::process::ExitCode {
    let mut args = Args::parse();
    let result = match args.command.take() {
        Some(Command::Raft(raft_args)) => raft::run(raft_args),
        Some(Command::Keyspaces(ks_args)) => keyspaces::run(ks_args),
        None => run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Res<()> {
    if args.key_size < 9 {
        return Err("--key_size must be at least 9 (8-byte number + padding)".into());
    }
    if args.num == 0 {
        return Err("--num must be positive".into());
    }
    if args.range_delete_len == 0 {
        return Err("--range_delete_len must be positive".into());
    }
    if let Some(n) = args.range_deletes
        && (n == 0 || (n - 1).saturating_mul(args.range_delete_len * 2) >= args.num)
    {
        return Err(format!(
            "--range_deletes {n}: between 1 and {} (every range must start inside the \
             {} keys; ranges are --range_delete_len {} keys, every other run)",
            args.num.div_ceil(args.range_delete_len * 2),
            args.num,
            args.range_delete_len
        )
        .into());
    }
    if args.readwritepercent > 100 {
        return Err("--readwritepercent is a percentage: 0 to 100".into());
    }
    if args.counters == 0 {
        return Err("--counters must be positive".into());
    }
    for b in &args.benchmarks {
        if kind(b).is_none() {
            return Err(format!("unknown benchmark {b:?}").into());
        }
    }
    let engines: Vec<&'static str> = if args.engine == "all" {
        engine::compiled()
    } else {
        let compiled = engine::compiled();
        let mut v = Vec::new();
        for e in args.engine.split(',').map(str::trim) {
            match compiled.iter().find(|c| **c == e) {
                Some(c) => v.push(*c),
                None => {
                    return Err(format!(
                        "engine {e:?} is not compiled in (compiled: {}); build with \
                         `cargo xtask bench --features peers` (fjall, sled, redb) or \
                         `--features rocksdb`",
                        compiled.join(", ")
                    )
                    .into());
                }
            }
        }
        v
    };
    // Leaked once per run: engine names are 'static strings throughout.
    let engines: Vec<&'static str> = if args.range_delete_baseline {
        engines
            .into_iter()
            .flat_map(|e| {
                let twin: &'static str = Box::leak(format!("{e}{BASELINE}").into_boxed_str());
                [e, twin]
            })
            .collect()
    } else {
        engines
    };
    let (base, _tmp) = base_dir(args.db.as_ref(), "strata-bench")?;
    let bench = Bench::new(args, base);
    bench.header(&engines);
    let (out, states) = bench.measure(&engines)?;
    if bench.args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("\n{}", out.table());
    }
    // With --json the trees go to stderr, with the db_bench lines.
    for (e, s) in &states {
        for (after, shape) in &s.shapes {
            let text = match after.strip_suffix(" reads") {
                // Reopened for the workload: the counters are its reads' alone.
                Some(reads) => format!("{e}'s tree and counters during {reads}:\n{shape}"),
                None => format!("{e}'s tree after {after} (settled):\n{shape}"),
            };
            if bench.args.json {
                eprintln!("{text}");
            } else {
                println!("{text}");
            }
        }
    }
    if let Some(path) = &bench.args.svg {
        std::fs::write(path, out.svg())?;
        eprintln!("wrote {}", path.display());
    }
    for path in bench.args.tails.write(&out)? {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// A subcommand's output: the machine, the directory and `header`, then each row as
/// `measure` makes it (`line` formats it), then the whole report (`table`). With `json`
/// the lines go to stderr and the report to stdout as JSON.
fn emit<Row, Report: serde::Serialize>(
    json: bool,
    base: &std::path::Path,
    header: &str,
    line: impl Fn(&Row) -> String,
    measure: impl FnOnce(&mut dyn FnMut(&Row)) -> Res<Report>,
    table: impl FnOnce(&Report) -> String,
) -> Res<()> {
    let say = |text: String| {
        if json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    };
    say(format!("Machine:    {}", metrics::machine()));
    say(format!("Directory:  {}\n\n{header}", base.display()));
    let report = measure(&mut |row| say(line(row)))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("\n{}", table(&report));
    }
    Ok(())
}

/// The base directory: `--db`, or a new temporary directory named `prefix...`, removed
/// when the returned guard drops.
fn base_dir(db: Option<&PathBuf>, prefix: &str) -> Res<(PathBuf, Option<tempfile::TempDir>)> {
    match db {
        Some(d) => Ok((d.clone(), None)),
        None => {
            let tmp = tempfile::Builder::new()
                .prefix(prefix)
                .tempdir_in(std::env::temp_dir())?;
            Ok((tmp.path().to_path_buf(), Some(tmp)))
        }
    }
}

impl Bench {
    fn new(args: Args, base: PathBuf) -> Bench {
        let cfg = Config {
            cache_bytes: args.cache_bytes,
            write_buffer_bytes: args.write_buffer_size,
            bloom_filter_budget: args.bloom_filter_budget,
            subcompactions: args.subcompactions,
            mmap_reads: args.mmap_reads,
            range_delete_compactions: args.range_delete_compactions,
            purpose: Purpose::Plain,
            compression: match args.compression.as_str() {
                "lz4" => "lz4",
                "zstd" => "zstd",
                "none" => "none",
                // Refused with the list when the engine opens.
                _ => "unknown",
            },
        };
        let values = Values::new(args.value_size, args.seed, args.compression_ratio);
        let reads = args.reads.unwrap_or(args.num);
        let pattern = Pattern {
            len: args.range_delete_len,
            count: args
                .range_deletes
                .unwrap_or(args.num / (args.range_delete_len * 2))
                .max(1),
        };
        Bench {
            args,
            base,
            cfg,
            values,
            reads,
            pattern,
        }
    }

    /// Runs every workload on every engine in turn.
    fn measure<'e>(&self, engines: &[&'e str]) -> Res<(report::Report, BTreeMap<&'e str, State>)> {
        // The timeline's window for every timed loop started below.
        let _interval = tails::IntervalGuard::set(self.args.tails.interval());
        let mut states: BTreeMap<&str, State> = BTreeMap::new();
        let mut rows = Vec::new();
        for name in &self.args.benchmarks {
            for &e in engines {
                let state = states.entry(e).or_default();
                match self.run_one(name, e, state)? {
                    Some(row) => {
                        report::line(&row, self.args.json);
                        rows.push(row);
                    }
                    None => report::skipped(name, e, &self.skip_reason(name, e), self.args.json),
                }
            }
        }
        let mut out = report::Report::new(
            &self.args_summary(),
            metrics::machine(),
            engines.iter().map(|e| e.to_string()).collect(),
            rows,
        );
        out.setup = setup::all(engines, &self.cfg);
        Ok((out, states))
    }

    fn entry_bytes(&self) -> u64 {
        (self.args.key_size + self.args.value_size) as u64
    }

    fn args_summary(&self) -> String {
        format!(
            "--num={} --key_size={} --value_size={} --threads={} --reads={} --cache_bytes={} \
             --write_buffer_size={} --seed={}{}{}",
            self.args.num,
            self.args.key_size,
            self.args.value_size,
            self.args.threads,
            self.reads,
            self.args.cache_bytes,
            self.args.write_buffer_size,
            self.args.seed,
            if self.args.benchmarks.iter().any(|b| b == "deleterange") {
                format!(
                    " --range_delete_len={} --range_deletes={}{}",
                    self.pattern.len,
                    self.pattern.count,
                    if self.args.range_delete_baseline {
                        " --range_delete_baseline"
                    } else {
                        ""
                    }
                )
            } else {
                String::new()
            },
            {
                let has = |w: &str| self.args.benchmarks.iter().any(|b| b == w);
                let mut extra = String::new();
                if has("readrandomwriterandom") {
                    extra.push_str(&format!(
                        " --readwritepercent={}",
                        self.args.readwritepercent
                    ));
                }
                if has("incrmerge") || has("incrtxn") {
                    extra.push_str(&format!(" --counters={}", self.args.counters));
                }
                extra
            }
        )
    }

    /// Why workload `name` did not run on `engine`.
    fn skip_reason(&self, name: &str, engine: &str) -> String {
        match name {
            "incrmerge" => {
                return format!(
                    "({engine} has no merge operator here; not emulated with a read and a write)"
                );
            }
            "incrtxn" => {
                return match engine::base_name(engine) {
                    "redb" => "(redb's write transactions run one at a time: no optimistic \
                               transaction to measure)"
                        .to_string(),
                    _ => format!("({engine}'s transactions are not wired into this harness)"),
                };
            }
            "compact" => {
                return format!("({engine}: no whole-range compaction wired into this harness)");
            }
            _ if ycsb::Workload::from_name(name).is_some() => {
                return "(the records deleterange removed are missing; YCSB reads any \
                        record: fill first)"
                    .to_string();
            }
            _ => {}
        }
        if is_baseline(engine) {
            "(baseline: the covered keys were never written, nothing to delete)".to_string()
        } else {
            format!(
                "({engine} has no native range delete; reads that follow see all {} keys)",
                self.args.num
            )
        }
    }

    /// Key numbers a write workload on `engine` visits, in order: `order` (or `0..num`),
    /// without the covered keys on a baseline twin. `None`: `0..num` as is.
    fn keys_for(&self, engine: &str, order: Option<Vec<u64>>) -> Option<Vec<u64>> {
        if !is_baseline(engine) {
            return order;
        }
        let all = order.unwrap_or_else(|| (0..self.args.num).collect());
        Some(
            all.into_iter()
                .filter(|&i| !self.pattern.covered(i))
                .collect(),
        )
    }

    /// The keys deleterange deletes (`covered`) or leaves (`!covered`), in a seeded
    /// random order.
    fn shuffled(&self, covered: bool, seed: u64) -> Vec<u64> {
        let keys: Vec<u64> = (0..self.args.num)
            .filter(|&i| self.pattern.covered(i) == covered)
            .collect();
        permutation(keys.len() as u64, seed)
            .into_iter()
            .filter_map(|p| keys.get(p as usize).copied())
            .collect()
    }

    /// Where the harness notes that `engine`'s database had deleterange applied, so a
    /// later run with `--use_existing_db` reads the survivors too.
    fn marker(&self, engine: &str) -> PathBuf {
        self.base.join(format!("{engine}.rangedeleted"))
    }

    fn marker_matches(&self, engine: &str) -> bool {
        std::fs::read_to_string(self.marker(engine))
            .map(|s| s.trim() == format!("{} {}", self.pattern.len, self.pattern.count))
            .unwrap_or(false)
    }

    fn header(&self, engines: &[&str]) {
        let raw = self.args.num * self.entry_bytes();
        let lines = [
            format!("Keys:       {} bytes each", self.args.key_size),
            format!("Values:     {} bytes each", self.args.value_size),
            format!("Entries:    {}", self.args.num),
            format!("RawSize:    {:.1} MB (estimated)", raw as f64 / 1e6),
            format!("Engines:    {}", engines.join(", ")),
            format!(
                "Memory:     block cache {} MiB, write buffer {} MiB",
                self.args.cache_bytes >> 20,
                self.args.write_buffer_size >> 20
            ),
            setup::compression_line(engines, &self.cfg, self.args.compression_ratio),
            format!(
                "Reads:      strata's tables {}",
                if self.args.mmap_reads {
                    "memory-mapped (blocks copied out of the page cache; raw ones not cached again)"
                } else {
                    "read with pread (--mmap_reads false)"
                }
            ),
            format!("Threads:    {}", self.args.threads),
            format!("Machine:    {}", metrics::machine()),
            format!("Directory:  {}", self.base.display()),
            "------------------------------------------------".to_string(),
        ];
        for l in lines {
            if self.args.json {
                eprintln!("{l}");
            } else {
                println!("{l}");
            }
        }
    }

    fn dir(&self, engine: &str) -> PathBuf {
        self.base.join(engine)
    }

    /// Writes keys `0..num` in order, untimed, for a read workload on an empty database.
    fn preload(&self, engine: &str, state: &mut State) -> Res<()> {
        eprintln!(
            "({engine}: loading {} keys in order first, untimed)",
            self.args.num
        );
        let dir = self.dir(engine);
        let _ = std::fs::remove_dir_all(&dir);
        let db = engine::open(engine::base_name(engine), &dir, &self.cfg)?;
        let keys = self.keys_for(engine, None);
        let n = keys.as_ref().map_or(self.args.num, |k| k.len() as u64);
        let pb = progress(n, &format!("{engine} load"));
        run_ops(
            1,
            n,
            self.args.key_size,
            &pb,
            |key, j| {
                let i = keys
                    .as_ref()
                    .map_or(Some(j), |k| k.get(j as usize).copied());
                let i = i.unwrap_or(j);
                fill_key(key, i, false);
                db.put(key, self.values.get(i, 0), false)?;
                Ok(true)
            },
            None,
        )?;
        db.settle()?;
        db.close()?;
        metrics::release_freed_memory();
        state.loaded = true;
        state.round = 1;
        state.deleted = is_baseline(engine);
        let _ = std::fs::remove_file(self.marker(engine));
        state.inserted = 0;
        ycsb::forget_inserted(&self.base, engine);
        Ok(())
    }

    fn run_one(&self, name: &str, engine: &str, state: &mut State) -> Res<Option<Row>> {
        let kind = kind(name).ok_or("unknown benchmark")?;
        if name == "deleterange" && is_baseline(engine) {
            return Ok(None);
        }
        if kind == Kind::Counters {
            return self.run_counters(name, engine);
        }
        let dir = self.dir(engine);
        // A baseline twin never holds the covered keys.
        state.deleted |= is_baseline(engine);
        if kind == Kind::Fill && !self.args.use_existing_db {
            let _ = std::fs::remove_dir_all(&dir);
            let _ = std::fs::remove_file(self.marker(engine));
            state.loaded = false;
            state.inserted = 0;
            ycsb::forget_inserted(&self.base, engine);
        }
        if self.args.use_existing_db && !state.loaded && dir.exists() {
            state.loaded = true;
            state.round = 1;
            state.deleted = is_baseline(engine) || self.marker_matches(engine);
            state.inserted = ycsb::saved_inserted(&self.base, engine, self.args.num);
        }
        if matches!(kind, Kind::Read | Kind::Update | Kind::Reopen) && !state.loaded {
            self.preload(engine, state)?;
        }

        let opened = Instant::now();
        let db = engine::open(engine::base_name(engine), &dir, &self.cfg)?;
        let open_time = opened.elapsed();
        metrics::reset_peak_rss();
        let io0 = metrics::Io::now();
        let cpu0 = metrics::process_cpu();
        let Some((outcome, note)) = self.workload(name, engine, &*db, state, open_time)? else {
            db.close()?;
            return Ok(None);
        };
        let cpu = metrics::process_cpu().saturating_sub(cpu0);
        let mut cpu_settled = None;

        let writes = matches!(kind, Kind::Fill | Kind::Update);
        let (mut write_amp, mut space_amp) = (None, None);
        let mut settled_after = None;
        if writes {
            let settle_start = std::time::Instant::now();
            db.settle()?;
            let quiet = Duration::from_millis(self.args.settle_quiet_ms);
            metrics::wait_for_quiet(quiet, Duration::from_secs(300));
            // The last quiet window only showed the work had ended: not part of it.
            settled_after = Some(outcome.elapsed + settle_start.elapsed().saturating_sub(quiet));
            let written = metrics::Io::now().device_bytes_since(&io0);
            cpu_settled = Some(metrics::process_cpu().saturating_sub(cpu0));
            let per_op = match name {
                "deleterandom" => self.args.key_size as u64,
                // A range tombstone: its two bounds.
                "deleterange" => 2 * self.args.key_size as u64,
                _ => self.entry_bytes(),
            };
            // Mixed workloads: only the writes wrote user bytes.
            let wrote = outcome.writes.unwrap_or(outcome.ops);
            write_amp = Some(written as f64 / (wrote * per_op).max(1) as f64);
            if name != "deleterandom" {
                let live = match name {
                    "fillsync" => outcome.ops,
                    "deleterange" => self.args.num - self.covered_count(),
                    _ if is_baseline(engine) => self.args.num - self.covered_count(),
                    _ => self.args.num + state.inserted,
                } * self.entry_bytes();
                space_amp = Some(metrics::allocated_bytes(&dir) as f64 / live.max(1) as f64);
            }
            if let Some(shape) = db.shape() {
                state.shapes.push((name.to_string(), shape));
            }
        }
        if matches!(kind, Kind::Read)
            && let Some(shape) = db.shape()
        {
            // After reads, for the Bloom and cache counters of the reads alone (the
            // database was reopened for this workload, so they start at zero).
            state.shapes.push((format!("{name} reads"), shape));
        }
        let peak_rss = metrics::peak_rss();
        let rss = metrics::rss_anon_and_file();
        db.close()?;
        metrics::release_freed_memory();
        match name {
            "deleterandom" => state.loaded = false,
            "fillsync" => state.loaded = false, // holds only num/1000 keys
            "deleterange" => {
                state.deleted = true;
                std::fs::write(
                    self.marker(engine),
                    format!("{} {}\n", self.pattern.len, self.pattern.count),
                )?;
            }
            _ if writes => state.loaded = true,
            _ => {}
        }
        if !is_baseline(engine)
            && (kind == Kind::Fill || matches!(name, "overwrite" | "readwhilewriting"))
        {
            // Every key written again (a baseline twin writes only the survivors).
            state.deleted = false;
            let _ = std::fs::remove_file(self.marker(engine));
        }

        let bytes = match kind {
            Kind::Read => outcome.found * self.entry_bytes(),
            // Entries read (found) and written.
            _ if outcome.writes.is_some() => {
                (outcome.found + outcome.writes.unwrap_or(0)) * self.entry_bytes()
            }
            // The tombstones' bounds.
            _ if name == "deleterange" => outcome.ops * 2 * self.args.key_size as u64,
            _ => outcome.ops * self.entry_bytes(),
        };
        let mut row = Row::new(
            name, engine, &outcome, bytes, note, write_amp, space_amp, peak_rss,
        );
        row.set_cpu(cpu, cpu_settled);
        row.set_rss(rss);
        row.seconds_to_settled = settled_after.map(|d| d.as_secs_f64());
        row.range_deleted = state.deleted;
        Ok(Some(row))
    }

    /// The counter workloads. Each engine gets a fresh database of its own (removed
    /// after), opened for the merge operator or for transactions; `--num` increments of
    /// 1 go to counters drawn at random from `0..--counters`, split among `--threads`.
    /// Then, untimed, the engine settles and every counter is read back: each must hold
    /// exactly the increments drawn for it, and their sum the increments acknowledged.
    /// A mismatch fails the run. `None` if the engine has no merge operator
    /// (incrmerge) or no optimistic transactions (incrtxn).
    fn run_counters(&self, name: &str, engine: &str) -> Res<Option<Row>> {
        let merge = name == "incrmerge";
        let dir = self.base.join(format!("{engine}.counters"));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = Config {
            purpose: if merge {
                Purpose::Merge
            } else {
                Purpose::Transactions
            },
            ..self.cfg
        };
        let db = engine::open(engine::base_name(engine), &dir, &cfg)?;
        let runs = if merge {
            db.has_merge()
        } else {
            db.has_transactions()
        };
        if !runs {
            db.close()?;
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(None);
        }
        let ops = self.args.num;
        let counters = self.args.counters;
        let seed = self.counter_seed();
        let conflicts = std::sync::atomic::AtomicU64::new(0);
        let pb = progress(ops, &format!("{engine} {name}"));
        metrics::reset_peak_rss();
        let io0 = metrics::Io::now();
        let cpu0 = metrics::process_cpu();
        let outcome = run_ops(
            self.args.threads,
            ops,
            self.args.key_size,
            &pb,
            |key, j| {
                fill_key(key, pick(seed, j, counters), false);
                if merge {
                    db.merge_add(key, 1)?;
                } else {
                    let mut retries = 0u64;
                    while db.txn_add(key, 1)? == Attempt::Conflict {
                        retries += 1;
                        // Two threads on 10k counters conflict rarely; thousands of
                        // refusals in a row mean the engine never lets it commit.
                        if retries >= MAX_RETRIES {
                            return Err(format!(
                                "increment {j}: {retries} conflicts in a row, giving up"
                            )
                            .into());
                        }
                    }
                    conflicts.fetch_add(retries, std::sync::atomic::Ordering::Relaxed);
                }
                // Returned only once the engine acknowledged the increment: counted.
                Ok(true)
            },
            None,
        )?;
        let cpu = metrics::process_cpu().saturating_sub(cpu0);
        db.settle()?;
        metrics::wait_for_quiet(
            Duration::from_millis(self.args.settle_quiet_ms),
            Duration::from_secs(300),
        );
        let written = metrics::Io::now().device_bytes_since(&io0);
        let cpu_settled = metrics::process_cpu().saturating_sub(cpu0);
        let peak_rss = metrics::peak_rss();
        let verified = self.verify_counters(&*db, ops, outcome.found);
        let shape = db.shape();
        db.close()?;
        metrics::release_freed_memory();
        let _ = std::fs::remove_dir_all(&dir);
        let (verified, read_back) = verified.map_err(|e| format!("{name} [{engine}]: {e}"))?;
        let read_back_us = read_back.as_secs_f64() * 1e6 / counters.max(1) as f64;

        let conflicts = (!merge).then(|| conflicts.into_inner());
        let mut note = format!(
            "({} increments acknowledged) ({verified}; read back at {read_back_us:.2} µs/get)",
            outcome.found
        );
        if let Some(c) = conflicts {
            note.push_str(&format!(
                " (conflicts: {c} retried, {:.2} per 1000 increments)",
                c as f64 * 1000.0 / ops.max(1) as f64
            ));
        }
        if let Some(shape) = shape {
            let text = format!("{engine}'s counters after {name} (settled):\n{shape}");
            if self.args.json {
                eprintln!("{text}");
            } else {
                println!("{text}");
            }
        }
        // User bytes: a key and an 8-byte operand or value per increment.
        let user = outcome.ops * (self.args.key_size as u64 + 8);
        let write_amp = Some(written as f64 / user.max(1) as f64);
        let mut row = Row::new(
            name, engine, &outcome, user, note, write_amp, None, peak_rss,
        );
        row.set_cpu(cpu, Some(cpu_settled));
        row.conflicts = conflicts;
        row.read_back_us_per_get = Some(read_back_us);
        Ok(Some(row))
    }

    /// The seed of the counter draws: the same for incrmerge and incrtxn, so both
    /// produce the same counters.
    fn counter_seed(&self) -> u64 {
        self.args.seed ^ 0xC0_07E5
    }

    /// Reads every counter of `db` back after `ops` increments (the draws of
    /// [`run_counters`](Self::run_counters)), `acknowledged` of which the engine
    /// acknowledged: each counter must hold the increments drawn for it and the sum
    /// must equal `acknowledged`. Returns the check as printed and the time the reads
    /// took; an error if the check fails.
    fn verify_counters(
        &self,
        db: &dyn Engine,
        ops: u64,
        acknowledged: u64,
    ) -> Res<(String, Duration)> {
        let counters = self.args.counters;
        let seed = self.counter_seed();
        let mut expected = vec![0u64; counters as usize];
        for j in 0..ops {
            if let Some(e) = expected.get_mut(pick(seed, j, counters) as usize) {
                *e += 1;
            }
        }
        let mut key = vec![0u8; self.args.key_size];
        let (mut sum, mut off) = (0u64, 0u64);
        let mut first_off = None;
        // Timed too: a merged counter is folded when it is read, so the reads carry
        // whatever folding the writes and the flush left undone.
        let started = Instant::now();
        for (c, want) in expected.iter().enumerate() {
            fill_key(&mut key, c as u64, false);
            let got = engine::counter_value(db.get_value(&key)?.as_deref())
                .map_err(|e| format!("counter {c}: {e}"))?;
            sum = sum.wrapping_add(got);
            if got != *want {
                off += 1;
                first_off.get_or_insert((c, got, *want));
            }
        }
        let took = started.elapsed();
        let check = format!(
            "verified: {counters} counters read, sum {sum}, {acknowledged} increments \
             acknowledged, {off} counters off"
        );
        if sum != acknowledged || off > 0 {
            let first = first_off
                .map(|(c, got, want)| format!("; counter {c} holds {got}, expected {want}"))
                .unwrap_or_default();
            return Err(format!("MISMATCH: {check}{first}").into());
        }
        Ok((check, took))
    }

    /// How many keys the deleterange pattern covers inside `0..num`.
    fn covered_count(&self) -> u64 {
        (0..self.pattern.count)
            .map(|k| {
                let (lo, hi) = self.pattern.range(k);
                hi.min(self.args.num).saturating_sub(lo)
            })
            .sum()
    }

    /// Runs YCSB workload `w` on `engine` over the records it holds (`0..num`, and
    /// those D and E inserted before), `--reads` operations; `None` after deleterange.
    fn ycsb(
        &self,
        w: ycsb::Workload,
        engine: &str,
        db: &dyn Engine,
        state: &mut State,
        label: &str,
    ) -> Res<Option<(workload::Outcome, String)>> {
        // YCSB reads every record it picks and fails on a missing one: not after
        // deleterange (or on its baseline twin), which removed records.
        if state.deleted {
            return Ok(None);
        }
        let num = self.args.num;
        let round = state.round;
        if w.writes() {
            state.round += 1;
        }
        let setup = ycsb::Setup {
            workload: w,
            records: num + state.inserted,
            ops: self.reads,
            threads: self.args.threads,
            key_size: self.args.key_size,
            value_size: self.args.value_size,
            seed: self.args.seed,
            values: &self.values,
            round,
            label,
        };
        let ran = ycsb::run(db, &setup)?;
        if w.inserts() {
            state.inserted += ran.inserted;
            ycsb::save_inserted(&self.base, engine, num, state.inserted)?;
        }
        Ok(Some((ran.outcome, ran.note)))
    }

    /// Runs the timed part of workload `name`; returns the outcome and a note for the
    /// db_bench line, or `None` if the engine cannot run it.
    fn workload(
        &self,
        name: &str,
        engine: &str,
        db: &dyn Engine,
        state: &mut State,
        open_time: Duration,
    ) -> Res<Option<(workload::Outcome, String)>> {
        let num = self.args.num;
        let ks = self.args.key_size;
        let threads = self.args.threads;
        let seed = self.args.seed;
        let values = &self.values;
        let label = format!("{engine} {name}");
        if let Some(w) = ycsb::Workload::from_name(name) {
            return self.ycsb(w, engine, db, state, &label);
        }
        let out = match name {
            "fillseq" | "fillrandom" | "overwrite" | "fillsync" => {
                let sync = name == "fillsync";
                // db_bench's fillsync writes num/1000 keys; at least 1000 keep it measurable.
                let ops = if sync {
                    (num / 1000).max(1000).min(num)
                } else {
                    num
                };
                let order = match name {
                    "fillseq" => None,
                    "overwrite" => Some(permutation(num, seed + 2)),
                    _ => Some(permutation(num, seed + 1)),
                };
                // A baseline twin never writes the keys deleterange deletes.
                let order = if sync {
                    order
                } else {
                    self.keys_for(engine, order)
                };
                let ops = order.as_ref().map_or(ops, |o| ops.min(o.len() as u64));
                let round = state.round;
                state.round += 1;
                let pb = progress(ops, &label);
                let o = run_ops(
                    threads,
                    ops,
                    ks,
                    &pb,
                    |key, j| {
                        let i = order.as_ref().and_then(|p| p.get(j as usize).copied());
                        let i = i.unwrap_or(j);
                        fill_key(key, i, false);
                        db.put(key, values.get(i, round), sync)?;
                        Ok(true)
                    },
                    None,
                )?;
                (o, String::new())
            }
            "deleterandom" => {
                let order = self
                    .keys_for(engine, Some(permutation(num, seed + 5)))
                    .unwrap_or_default();
                let ops = order.len() as u64;
                let pb = progress(ops, &label);
                let o = run_ops(
                    threads,
                    ops,
                    ks,
                    &pb,
                    |key, j| {
                        fill_key(key, order.get(j as usize).copied().unwrap_or(j), false);
                        db.delete(key)?;
                        Ok(true)
                    },
                    None,
                )?;
                (o, String::new())
            }
            "deleterange" => {
                let p = self.pattern;
                let order = permutation(p.count, seed + 7);
                if !db.has_delete_range() {
                    return Ok(None);
                }
                let pb = progress(p.count, &label);
                let o = run_ops(
                    threads,
                    p.count,
                    ks,
                    &pb,
                    |key, j| {
                        let k = order.get(j as usize).copied().unwrap_or(j);
                        let (lo, hi) = p.range(k);
                        fill_key(key, lo, false);
                        // The end key on the stack (keys are rarely longer than 128 bytes).
                        let mut stack = [0u8; 128];
                        let mut heap = Vec::new();
                        let end = match stack.get_mut(..ks) {
                            Some(e) => e,
                            None => {
                                heap.resize(ks, 0);
                                &mut heap[..]
                            }
                        };
                        fill_key(end, hi, false);
                        db.delete_range(key, end)?;
                        Ok(true)
                    },
                    None,
                )?;
                let note = format!(
                    "({} ranges of {} keys, {} keys covered)",
                    p.count,
                    p.len,
                    self.covered_count()
                );
                (o, note)
            }
            "readrandom" | "readmissing" | "readdeleted" | "seekrandom" | "readwhilewriting" => {
                let missing = name == "readmissing";
                let seek = name == "seekrandom";
                let order = match name {
                    // The keys deleterange deleted (or, before it, would delete).
                    "readdeleted" => self.shuffled(true, seed + 8),
                    // Only the survivors once the covered keys are gone.
                    "readrandom" if state.deleted => self.shuffled(false, seed + 3),
                    _ => permutation(num, seed + if seek { 4 } else { 3 }),
                };
                let n = (order.len() as u64).max(1);
                let reads = match self.args.reads {
                    Some(r) => r,
                    None => order.len() as u64,
                };
                let pb = progress(reads, &label);
                let nexts = self.args.seek_nexts;
                let read = |key: &mut [u8], j: u64| -> Res<bool> {
                    let i = order.get((j % n) as usize).copied().unwrap_or(0);
                    fill_key(key, i, missing);
                    if seek {
                        db.seek(key, nexts)
                    } else {
                        Ok(db.get(key)?.is_some())
                    }
                };
                let round = state.round;
                // The writer's keys, drawn before the clock starts (and only for
                // readwhilewriting); each put is timed as a series of its own.
                let w_order = match name {
                    "readwhilewriting" => self
                        .keys_for(engine, Some(permutation(num, seed + 6)))
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                let w_num = (w_order.len() as u64).max(1);
                let writer = |key: &mut [u8], n: u64| -> Res<()> {
                    let i = w_order.get((n % w_num) as usize).copied().unwrap_or(0);
                    fill_key(key, i, false);
                    db.put(key, values.get(i, round), false)
                };
                let bg: Option<workload::Background<'_>> = if name == "readwhilewriting" {
                    state.round += 1;
                    Some(&writer)
                } else {
                    None
                };
                let o = run_ops(threads, reads, ks, &pb, read, bg)?;
                let mut note = format!("({} of {} found)", o.found, o.ops);
                if name == "readrandom" && state.deleted {
                    note.push_str(" (survivors of deleterange)");
                }
                if bg.is_some() {
                    note.push_str(&format!(
                        " (writer: {} puts, {:.0} puts/s)",
                        o.background_ops,
                        o.background_ops as f64 / o.elapsed.as_secs_f64()
                    ));
                }
                (o, note)
            }
            "readrandomwriterandom" => {
                // db_bench's: each operation takes a key drawn at random (with
                // replacement) from 0..num; of every 100 operations the first
                // --readwritepercent are gets, the rest puts of a new value.
                let ops = self.reads;
                let percent = self.args.readwritepercent;
                let value_size = self.args.value_size;
                let round = state.round;
                state.round += 1;
                let writes = std::sync::atomic::AtomicU64::new(0);
                let pb = progress(ops, &label);
                let mut o = run_ops(
                    threads,
                    ops,
                    ks,
                    &pb,
                    |key, j| {
                        let i = pick(seed + 9, j, num);
                        fill_key(key, i, false);
                        if j % 100 < percent {
                            match db.get(key)? {
                                // Every value read is checked (its length: which
                                // round's bytes it holds depends on the interleaving).
                                Some(len) if len != value_size => Err(format!(
                                    "key {i}: a value of {len} bytes, not {value_size}"
                                )
                                .into()),
                                Some(_) => Ok(true),
                                None => Ok(false),
                            }
                        } else {
                            db.put(key, values.get(i, round), false)?;
                            writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            Ok(false)
                        }
                    },
                    None,
                )?;
                let w = writes.into_inner();
                o.writes = Some(w);
                let note = format!(
                    "( reads:{} writes:{} total:{} found:{})",
                    o.ops - w,
                    w,
                    o.ops,
                    o.found
                );
                (o, note)
            }
            "readseq" | "readreverse" => {
                // Every key there is, YCSB's inserts included, unless --reads says fewer.
                let keys = num + state.inserted;
                let limit = self.args.reads.unwrap_or(keys).min(keys);
                let pb = progress(limit * threads.max(1) as u64, &label);
                let o = run_scan(db, threads, name == "readreverse", limit, &pb)?;
                let note = format!("({} entries)", o.found);
                (o, note)
            }
            "compact" => {
                let start = std::time::Instant::now();
                if !db.compact_all()? {
                    return Ok(None);
                }
                let o = one_op(start.elapsed())?;
                (o, "(everything compacted to the last level)".to_string())
            }
            "reopen" => (one_op(open_time)?, "(open after a clean close)".to_string()),
            other => return Err(format!("unknown benchmark {other:?}").into()),
        };
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(dir: &std::path::Path, extra: &[&str]) -> Bench {
        let mut argv = vec![
            "strata-bench",
            "--db",
            dir.to_str().unwrap(),
            "--settle_quiet_ms",
            "20",
            "--json",
        ];
        argv.extend_from_slice(extra);
        Bench::new(Args::try_parse_from(argv).unwrap(), dir.to_path_buf())
    }

    /// Every workload runs end to end on Strata and reports what it did.
    #[test]
    fn every_workload_runs_and_reports_consistent_counts() {
        let dir = tempfile::tempdir().unwrap();
        let num = 3000u64;
        let all_but_sync = DEFAULT_BENCHMARKS.replace(",fillsync", "");
        let b = bench(
            dir.path(),
            &["--num", "3000", "--benchmarks", &all_but_sync],
        );
        let (report, states) = b.measure(&["strata"]).unwrap();
        let row = |w: &str| report.results.iter().find(|r| r.workload == w).unwrap();
        for w in all_but_sync.split(',') {
            assert!(row(w).ops_per_sec > 0.0, "{w}");
        }
        assert_eq!(row("fillseq").ops, num);
        assert_eq!(row("readrandom").found, num);
        assert_eq!(row("readmissing").found, 0);
        assert_eq!(row("seekrandom").found, num);
        assert_eq!(row("readseq").ops, num);
        assert_eq!(row("readreverse").ops, num);
        assert_eq!(row("readwhilewriting").found, num);
        for w in ["fillseq", "fillrandom", "overwrite"] {
            let r = row(w);
            // Measured, but not bounded here: /proc/self/io counts the whole process,
            // and the tests running beside this one remove temp directories whose dirty
            // pages then count as cancelled writes, which can pull the figure below 1
            // (seen once in a full `cargo test` of this crate).
            assert!(r.write_amp.is_some(), "{w}");
            assert!(r.space_amp.unwrap() > 0.5, "{w}: {:?}", r.space_amp);
        }
        assert!(row("deleterandom").write_amp.is_some());
        // Settling flushed each fill into a table, and its shape was recorded.
        assert!(
            states["strata"]
                .shapes
                .iter()
                .any(|(w, s)| w == "fillseq" && s.contains("L0"))
        );
        assert!(report.svg().contains("<rect"));
        assert!(report.table().contains("| readmissing | strata |"));
    }

    /// deleterange deletes every other run of --range_delete_len keys; the reads after
    /// it see exactly the survivors, on the engine and on its baseline twin, and the
    /// report pairs them.
    #[test]
    fn deleterange_leaves_the_survivors_and_pairs_with_the_baseline() {
        let dir = tempfile::tempdir().unwrap();
        let b = bench(
            dir.path(),
            &[
                "--num",
                "3000",
                "--range_delete_len",
                "10",
                "--range_delete_baseline",
                "--benchmarks",
                "fillrandom,deleterange,readrandom,readdeleted,readseq,readreverse",
            ],
        );
        let (report, states) = b.measure(&["strata", "strata-baseline"]).unwrap();
        let row = |w: &str, e: &str| {
            report
                .results
                .iter()
                .find(|r| r.workload == w && r.engine == e)
                .unwrap()
        };
        // 150 ranges of 10 keys: keys 0..10, 20..30, ... are gone.
        assert_eq!(row("fillrandom", "strata").ops, 3000);
        assert_eq!(row("fillrandom", "strata-baseline").ops, 1500);
        assert_eq!(row("deleterange", "strata").ops, 150);
        assert!(row("deleterange", "strata").cpu_us_per_op_settled.is_some());
        assert!(
            !report
                .results
                .iter()
                .any(|r| r.workload == "deleterange" && r.engine == "strata-baseline")
        );
        for e in ["strata", "strata-baseline"] {
            assert_eq!(row("readrandom", e).ops, 1500, "{e}");
            assert_eq!(row("readrandom", e).found, 1500, "{e}");
            assert_eq!(row("readdeleted", e).ops, 1500, "{e}");
            assert_eq!(row("readdeleted", e).found, 0, "{e}");
            assert_eq!(row("readseq", e).found, 1500, "{e}");
            assert_eq!(row("readreverse", e).found, 1500, "{e}");
            assert!(states[e].deleted);
        }
        assert!(row("readseq", "strata").vs_baseline.is_some());
        assert!(row("readseq", "strata").vs_baseline_cpu.is_some());
        // Fills are not paired: the twin writes half the keys.
        assert!(row("fillrandom", "strata").vs_baseline.is_none());
        assert!(row("readseq", "strata-baseline").vs_baseline.is_none());
        assert!(report.table().contains("With range tombstones"));
        // A later run on the same directories knows the range deletes happened.
        let again = bench(
            dir.path(),
            &[
                "--num",
                "3000",
                "--range_delete_len",
                "10",
                "--use_existing_db",
                "--benchmarks",
                "readrandom",
            ],
        );
        let (report, _) = again.measure(&["strata"]).unwrap();
        assert_eq!(report.results[0].found, 1500);
    }

    fn find<'r>(report: &'r report::Report, w: &str, e: &str) -> Option<&'r Row> {
        report
            .results
            .iter()
            .find(|r| r.workload == w && r.engine == e)
    }

    /// readrandomwriterandom does db_bench's mix on every compiled engine: of each 100
    /// operations 90 reads, then 10 writes; after a fill every read finds a full-size
    /// value, and the database still holds every key afterwards.
    #[test]
    fn readrandomwriterandom_mixes_reads_and_writes_on_every_engine() {
        let engines = engine::compiled();
        for (threads, percent, reads) in [("1", "90", 1800), ("2", "50", 1000)] {
            let dir = tempfile::tempdir().unwrap();
            let b = bench(
                dir.path(),
                &[
                    "--num",
                    "2000",
                    "--threads",
                    threads,
                    "--readwritepercent",
                    percent,
                    "--benchmarks",
                    "fillrandom,readrandomwriterandom,readrandom",
                ],
            );
            let (report, _) = b.measure(&engines).unwrap();
            for e in &engines {
                let r = find(&report, "readrandomwriterandom", e).unwrap();
                assert_eq!(r.ops, 2000, "{e}");
                assert_eq!(r.found, reads, "{e}");
                let mix = format!("( reads:{reads} writes:{} total:2000", 2000 - reads);
                assert!(r.note.contains(&mix), "{e}: {}", r.note);
                assert!(r.write_amp.is_some(), "{e}");
                assert_eq!(find(&report, "readrandom", e).unwrap().found, 2000, "{e}");
            }
        }
    }

    /// seekrandom with `--seek_nexts`: every engine finds each seek's key and reads the
    /// entries after it, checked (a bad entry fails the run); seeks near the end read
    /// fewer.
    #[test]
    fn seekrandom_reads_the_entries_after_each_seek_on_every_engine() {
        let engines = engine::compiled();
        let dir = tempfile::tempdir().unwrap();
        let b = bench(
            dir.path(),
            &[
                "--num",
                "2000",
                "--seek_nexts",
                "10",
                "--benchmarks",
                "fillrandom,seekrandom",
            ],
        );
        let (report, _) = b.measure(&engines).unwrap();
        for e in &engines {
            assert_eq!(find(&report, "seekrandom", e).unwrap().found, 2000, "{e}");
        }
    }

    /// A count in a YCSB note: `field` of `( reads:R updates:U ... found:F)`.
    fn count(note: &str, field: &str) -> u64 {
        note.split([' ', '(', ')'])
            .find_map(|w| w.strip_prefix(field)?.strip_prefix(':')?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {note}"))
    }

    /// YCSB A–F after a fill, on every compiled engine, one and two threads: each runs
    /// --reads operations in its mix, every read finds its record (the run fails
    /// otherwise), D and E add records after --num, and the harness counts them: the
    /// workloads after them pick from the new records too, readseq scans them, and a
    /// later run on the same directories with --use_existing_db knows they are there.
    #[test]
    fn ycsb_workloads_run_their_mixes_and_keep_the_record_count() {
        let engines = engine::compiled();
        for threads in ["1", "2"] {
            let dir = tempfile::tempdir().unwrap();
            let b = bench(
                dir.path(),
                &[
                    "--num",
                    "2000",
                    "--reads",
                    "3000",
                    "--threads",
                    threads,
                    "--benchmarks",
                    "fillrandom,ycsba,ycsbb,ycsbc,ycsbd,ycsbe,ycsbf,readseq,readreverse",
                ],
            );
            let (report, states) = b.measure(&engines).unwrap();
            for e in &engines {
                let mut records = 2000;
                for (w, kinds) in [
                    ("ycsba", ["reads", "updates"]),
                    ("ycsbb", ["reads", "updates"]),
                    ("ycsbc", ["reads", "reads"]),
                    ("ycsbd", ["reads", "inserts"]),
                    ("ycsbe", ["scans", "inserts"]),
                    ("ycsbf", ["reads", "rmw"]),
                ] {
                    let r = find(&report, w, e).unwrap();
                    let n = |f: &str| count(&r.note, f);
                    assert_eq!(r.ops, 3000, "{e} {w}");
                    let all = ["reads", "updates", "inserts", "scans", "rmw"];
                    assert_eq!(all.iter().map(|f| n(f)).sum::<u64>(), 3000, "{e} {w}");
                    for f in all.iter().filter(|f| !kinds.contains(f)) {
                        assert_eq!(n(f), 0, "{e} {w}: {}", r.note);
                    }
                    for f in kinds {
                        assert!(n(f) > 0, "{e} {w}: {}", r.note);
                    }
                    let found = n("reads") + n("scans") + n("rmw");
                    assert_eq!((n("found"), r.found), (found, found), "{e} {w}");
                    assert_eq!(r.write_amp.is_some(), w != "ycsbc", "{e} {w}");
                    if n("inserts") > 0 {
                        let grew = format!("(records {records} → {})", records + n("inserts"));
                        assert!(r.note.contains(&grew), "{e} {w}: {}", r.note);
                        records += n("inserts");
                    }
                }
                // D and E insert about 5 % of 3000 operations each.
                assert!((2240..2360).contains(&records), "{e}: {records}");
                assert_eq!(states[e].inserted, records - 2000, "{e}");
                // Each thread scans every key.
                let scanned = records * threads.parse::<u64>().unwrap();
                for w in ["readseq", "readreverse"] {
                    assert_eq!(find(&report, w, e).unwrap().found, scanned, "{e} {w}");
                }
                // The same operations on every engine (one thread: the same keys too).
                let strata = find(&report, "ycsbe", "strata").unwrap();
                assert_eq!(find(&report, "ycsbe", e).unwrap().note, strata.note, "{e}");

                let again = bench(
                    dir.path(),
                    &[
                        "--num",
                        "2000",
                        "--reads",
                        "3000",
                        "--use_existing_db",
                        "--benchmarks",
                        "readseq,ycsbd",
                    ],
                );
                let (later, states) = again.measure(&[e]).unwrap();
                assert_eq!(find(&later, "readseq", e).unwrap().found, records, "{e}");
                let d = find(&later, "ycsbd", e).unwrap();
                let grew = format!("(records {records} → ");
                assert!(d.note.contains(&grew), "{e}: {}", d.note);
                assert_eq!(
                    states[e].inserted,
                    records - 2000 + count(&d.note, "inserts")
                );
            }
            assert!(
                serde_json::to_string(&report)
                    .unwrap()
                    .contains("\"ycsbf\"")
            );
        }
    }

    /// YCSB after deleterange (records removed) is skipped, not failed, and a fill
    /// forgets the records D inserted.
    #[test]
    fn ycsb_skips_after_deleterange_and_a_fill_forgets_the_inserts() {
        let dir = tempfile::tempdir().unwrap();
        let b = bench(
            dir.path(),
            &[
                "--num",
                "1000",
                "--range_delete_len",
                "10",
                "--benchmarks",
                "fillseq,ycsbd,deleterange,ycsba,fillrandom,readseq",
            ],
        );
        let (report, states) = b.measure(&["strata"]).unwrap();
        assert!(find(&report, "ycsbd", "strata").is_some());
        assert!(find(&report, "ycsba", "strata").is_none());
        assert_eq!(find(&report, "readseq", "strata").unwrap().found, 1000);
        assert_eq!(states["strata"].inserted, 0);
        assert!(!dir.path().join("strata.ycsbinserted").exists());
    }

    /// The entries a seek reads: the first and `nexts` more, each checked.
    #[test]
    fn seek_entries_checks_every_entry_it_reads() {
        type Entries = Vec<Result<(&'static [u8], &'static [u8]), std::io::Error>>;
        let ok = || -> Entries { vec![Ok((b"a", b"1")), Ok((b"b", b"2")), Ok((b"c", b"3"))] };
        assert!(engine::seek_entries(ok().into_iter(), b"a", 10).unwrap());
        assert!(!engine::seek_entries(ok().into_iter(), b"0", 1).unwrap());
        let unordered = || -> Entries { vec![Ok((b"b", b"1")), Ok((b"a", b"2"))] };
        assert!(engine::seek_entries(unordered().into_iter(), b"b", 1).is_err());
        // Not read past `nexts`: the bad second entry is never reached with 0.
        assert!(engine::seek_entries(unordered().into_iter(), b"b", 0).unwrap());
        let empty: Entries = vec![Ok((b"a", b"1")), Ok((b"b", b""))];
        assert!(engine::seek_entries(empty.into_iter(), b"a", 1).is_err());
    }

    /// Both counter workloads on every compiled engine, two threads: the engines with
    /// a merge operator (Strata, RocksDB) run incrmerge, those with optimistic
    /// transactions (Strata, RocksDB, fjall) run incrtxn, the others are skipped, and
    /// every run that happened read back exactly the increments it made — also with
    /// every increment on one counter, where the two threads' transactions collide.
    #[test]
    fn counters_add_up_through_merge_and_transactions() {
        let engines = engine::compiled();
        for counters in ["20", "1"] {
            let dir = tempfile::tempdir().unwrap();
            let b = bench(
                dir.path(),
                &[
                    "--num",
                    "2000",
                    "--counters",
                    counters,
                    "--threads",
                    "2",
                    "--benchmarks",
                    "incrmerge,incrtxn",
                ],
            );
            let (report, _) = b.measure(&engines).unwrap();
            let total = format!(
                "verified: {counters} counters read, sum 2000, 2000 increments acknowledged, 0 counters off"
            );
            for e in &engines {
                let merge = find(&report, "incrmerge", e);
                assert_eq!(merge.is_some(), matches!(*e, "strata" | "rocksdb"), "{e}");
                if let Some(r) = merge {
                    assert_eq!((r.ops, r.found), (2000, 2000), "{e}");
                    assert!(r.note.contains(&total), "{e}: {}", r.note);
                    assert!(r.conflicts.is_none(), "{e}");
                    assert!(r.cpu_us_per_op_settled.is_some(), "{e}");
                }
                let txn = find(&report, "incrtxn", e);
                let has_txn = matches!(*e, "strata" | "rocksdb" | "fjall");
                assert_eq!(txn.is_some(), has_txn, "{e}");
                if let Some(r) = txn {
                    assert_eq!((r.ops, r.found), (2000, 2000), "{e}");
                    assert!(r.note.contains(&total), "{e}: {}", r.note);
                    assert!(r.conflicts.is_some(), "{e}");
                }
                // The counters' databases are removed after each run.
                assert!(!dir.path().join(format!("{e}.counters")).exists(), "{e}");
            }
            assert!(
                report
                    .table()
                    .contains("Counter increments: transaction ÷ merge")
            );
        }
    }

    /// The read-back check fails on a sum that differs from the increments
    /// acknowledged, on a counter that holds the wrong count, and on a value that is
    /// not a u64.
    #[test]
    fn the_counter_check_catches_lost_extra_and_malformed_counters() {
        let dir = tempfile::tempdir().unwrap();
        let b = bench(dir.path(), &["--num", "100", "--counters", "10"]);
        let cfg = Config {
            purpose: Purpose::Merge,
            ..b.cfg
        };
        let db = engine::open("strata", &dir.path().join("c"), &cfg).unwrap();
        let mut key = vec![0u8; 16];
        for j in 0..100 {
            fill_key(&mut key, pick(b.counter_seed(), j, 10), false);
            db.merge_add(&key, 1).unwrap();
        }
        let (ok, _) = b.verify_counters(&*db, 100, 100).unwrap();
        assert!(
            ok.contains("sum 100, 100 increments acknowledged, 0 counters off"),
            "{ok}"
        );
        // One acknowledged increment missing from the database.
        let lost = b.verify_counters(&*db, 100, 101).unwrap_err().to_string();
        assert!(lost.contains("MISMATCH"), "{lost}");
        // The sum matches, but counter 0 got an increment the draws did not make.
        fill_key(&mut key, 0, false);
        db.merge_add(&key, 1).unwrap();
        let extra = b.verify_counters(&*db, 100, 101).unwrap_err().to_string();
        assert!(extra.contains("1 counters off; counter 0 holds"), "{extra}");
        db.put(&key, b"xyz", false).unwrap();
        let malformed = b.verify_counters(&*db, 100, 100).unwrap_err().to_string();
        assert!(
            malformed.contains("counter 0: a counter holds 3 bytes"),
            "{malformed}"
        );
        db.close().unwrap();
    }

    #[test]
    fn the_pattern_covers_every_other_run() {
        let p = Pattern { len: 3, count: 2 };
        let covered: Vec<u64> = (0..16).filter(|&i| p.covered(i)).collect();
        assert_eq!(covered, [0, 1, 2, 6, 7, 8]);
        assert_eq!(p.range(1), (6, 9));
    }

    /// fillsync writes min(num, max(num/1000, 1000)) keys, each synced; a read after it
    /// reloads the database first (fillsync leaves only its own keys).
    #[test]
    fn fillsync_then_read_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let b = bench(
            dir.path(),
            &["--num", "200", "--benchmarks", "fillsync,readrandom"],
        );
        let (report, _) = b.measure(&["strata"]).unwrap();
        assert_eq!(report.results[0].ops, 200);
        assert_eq!(report.results[1].found, 200);
    }
}
