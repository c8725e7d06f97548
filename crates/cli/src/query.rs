//! `get`, `scan` and `stats`: a database read through the engine (RocksDB's `ldb get`,
//! `scan` and `stats`), opened read-only so they are safe on a database in use: no lock
//! is taken, nothing is written, and each command reads one consistent state.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use strata::Db;

use super::show;
use super::{CmdResult, Failure, describe, emit};

/// Arguments of `get`.
#[derive(clap::Args)]
pub struct GetArgs {
    /// The database directory.
    dir: PathBuf,
    /// The key: UTF-8, or hex after `0x`.
    key: String,
    /// The keyspace to read (default: `default`).
    #[arg(long, default_value = "default")]
    keyspace: String,
    /// Print JSON instead of the value.
    #[arg(long)]
    json: bool,
}

/// Arguments of `scan`.
#[derive(clap::Args)]
pub struct ScanArgs {
    /// The database directory.
    dir: PathBuf,
    /// First key (inclusive).
    #[arg(long)]
    from: Option<String>,
    /// Key to stop before (exclusive).
    #[arg(long)]
    to: Option<String>,
    /// Only keys starting with this prefix (instead of --from/--to).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    prefix: Option<String>,
    /// Newest key first.
    #[arg(long)]
    reverse: bool,
    /// The keyspace to read (default: `default`).
    #[arg(long, default_value = "default")]
    keyspace: String,
    /// Entries to print at most; 0 prints all.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Arguments of `stats`.
#[derive(clap::Args)]
pub struct StatsArgs {
    /// The database directory.
    dir: PathBuf,
    /// The keyspace to read (default: `default`).
    #[arg(long, default_value = "default")]
    keyspace: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Opens the database in `dir` read-only, with a one-line error naming it otherwise.
fn open(dir: &Path) -> Result<Db, Failure> {
    if !dir.join("CURRENT").exists() {
        return Err(Failure::new(format!(
            "{}: not a Strata database (no CURRENT file)",
            dir.display()
        )));
    }
    Db::builder(dir)
        .read_only()
        .open()
        .map_err(|e| Failure::new(format!("{}: {}", dir.display(), describe(&e))))
}

/// Keyspace `name` of `db` (in `dir`), or a one-line error naming the keyspaces there.
pub(crate) fn keyspace(db: &Db, dir: &Path, name: &str) -> Result<strata::Keyspace, Failure> {
    let names = db.list_keyspaces();
    if !names.iter().any(|n| n == name) {
        return Err(Failure::new(format!(
            "{}: no keyspace is named {name:?} (it has {})",
            dir.display(),
            names.join(", ")
        )));
    }
    db.keyspace(name)
        .map_err(|e| Failure::new(format!("{}: {}", dir.display(), describe(&e))))
}

fn key_arg(arg: &str) -> Result<Vec<u8>, Failure> {
    show::parse_key(arg).map_err(Failure::new)
}

#[derive(Serialize)]
struct GetReport {
    key: String,
    found: bool,
    value: Option<String>,
    value_bytes: Option<usize>,
}

/// Runs `get`: the value (as text if printable, else `0x` hex); exit status 1 if the
/// key is absent.
pub fn get(args: &GetArgs) -> CmdResult {
    let db = open(&args.dir)?;
    let ks = keyspace(&db, &args.dir, &args.keyspace)?;
    let key = key_arg(&args.key)?;
    let value = ks
        .get(&key)
        .map_err(|e| Failure::new(format!("{}: {}", args.dir.display(), describe(&e))))?;
    let report = GetReport {
        key: show::plain(&key),
        found: value.is_some(),
        value: value.as_deref().map(show::plain),
        value_bytes: value.as_ref().map(|v| v.len()),
    };
    emit(args.json, &report, |r, out| match &r.value {
        Some(v) => writeln!(out, "{v}"),
        None => Ok(()),
    })?;
    match value {
        Some(_) => Ok(()),
        None => Err(Failure::new(format!(
            "{}: key {} not found",
            args.dir.display(),
            show::key(&key)
        ))),
    }
}

#[derive(Serialize)]
struct ScanEntry {
    key: String,
    value: String,
    value_bytes: usize,
}

#[derive(Serialize)]
struct ScanReport {
    entries: Vec<ScanEntry>,
    /// Whether more entries were in range than `--limit` let through.
    truncated: bool,
}

/// Runs `scan`: `key => value` lines in key order (or reverse).
pub fn scan(args: &ScanArgs) -> CmdResult {
    let db = open(&args.dir)?;
    let ks = keyspace(&db, &args.dir, &args.keyspace)?;
    let iter = match (&args.prefix, &args.from, &args.to) {
        (Some(p), _, _) => ks.prefix(key_arg(p)?),
        (None, from, to) => {
            let lo = from.as_deref().map(key_arg).transpose()?;
            let hi = to.as_deref().map(key_arg).transpose()?;
            match (lo, hi) {
                (Some(lo), Some(hi)) => ks.range(lo..hi),
                (Some(lo), None) => ks.range(lo..),
                (None, Some(hi)) => ks.range(..hi),
                (None, None) => ks.iter(),
            }
        }
    };
    let limit = if args.limit == 0 {
        usize::MAX
    } else {
        args.limit
    };
    let iter: Box<dyn Iterator<Item = strata::Result<_>>> = if args.reverse {
        Box::new(iter.rev())
    } else {
        Box::new(iter)
    };
    let mut entries = Vec::new();
    let mut truncated = false;
    for kv in iter {
        let (k, v) =
            kv.map_err(|e| Failure::new(format!("{}: {}", args.dir.display(), describe(&e))))?;
        if entries.len() == limit {
            truncated = true;
            break;
        }
        entries.push(ScanEntry {
            key: show::plain(&k),
            value: show::plain(&v),
            value_bytes: v.len(),
        });
    }
    let report = ScanReport { entries, truncated };
    emit(args.json, &report, render_scan)
}

fn render_scan(r: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
    for e in &r.entries {
        writeln!(out, "{} => {}", show::key_from_plain(&e.key), e.value)?;
    }
    if r.truncated {
        writeln!(
            out,
            "… more entries in range (--limit {} shown; --limit 0 prints all)",
            r.entries.len()
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct LevelReport {
    level: usize,
    files: usize,
    bytes: u64,
    entries: u64,
    tombstones: u64,
}

#[derive(Serialize)]
struct StatsReport {
    levels: Vec<LevelReport>,
    table_bytes: u64,
    /// Memory of the MemTable holding the unflushed WAL records after replay (its
    /// arena included, so never quite 0).
    memtable_bytes: u64,
    open_tables: usize,
}

/// Runs `stats`: the shape of the tree (per level: files, bytes, entries,
/// tombstones) and what the WALs hold unflushed.
pub fn stats(args: &StatsArgs) -> CmdResult {
    let db = open(&args.dir)?;
    keyspace(&db, &args.dir, &args.keyspace)?;
    let s = db.stats();
    let Some(tree) = s.keyspaces.iter().find(|k| k.name == args.keyspace) else {
        return Err(Failure::new(format!(
            "{}: keyspace {:?} was dropped meanwhile",
            args.dir.display(),
            args.keyspace
        )));
    };
    let levels: Vec<LevelReport> = tree
        .levels
        .iter()
        .enumerate()
        .map(|(level, l)| LevelReport {
            level,
            files: l.files,
            bytes: l.bytes,
            entries: l.entries,
            tombstones: l.tombstones,
        })
        .collect();
    let report = StatsReport {
        table_bytes: levels.iter().map(|l| l.bytes).sum(),
        levels,
        memtable_bytes: tree.memtable_bytes,
        open_tables: s.open_tables,
    };
    emit(args.json, &report, render_stats)
}

fn render_stats(r: &StatsReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "level  files       bytes     entries  tombstones")?;
    for l in r.levels.iter().filter(|l| l.files > 0) {
        writeln!(
            out,
            "L{:<5} {:>5}  {:>10}  {:>10}  {:>10}",
            l.level,
            l.files,
            show::size(l.bytes),
            l.entries,
            l.tombstones
        )?;
    }
    writeln!(
        out,
        "tables: {} in {}; MemTable of the unflushed WAL records: {} (arena included)",
        show::size(r.table_bytes),
        show::count(
            r.levels.iter().map(|l| l.files as u64).sum::<u64>(),
            "file",
            "files"
        ),
        show::size(r.memtable_bytes)
    )
}
