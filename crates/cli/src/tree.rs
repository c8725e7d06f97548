//! `cargo xtask db tree <dir> [--key K] [--svg out.svg]`: the database as a picture of
//! its levels.
//!
//! Each level's tables are bars placed along the key space by their smallest and largest
//! user keys (L0's files, which overlap, one row each, newest first; deeper levels one
//! row each). With `--key`, the lookup of K is replayed as `Db::get` does it: unflushed
//! data in the WALs first (what the MemTable holds after recovery), then every L0 file
//! whose range covers K, newest first, then at most one file per deeper level — each
//! with its Bloom filter's answer and the block it read, until an entry (a value or a
//! tombstone) or a range tombstone stops the search. Each source weighs its newest
//! entry of K against its newest range tombstone covering K, as the engine does
//! (`Lookup::resolve`). `--svg` writes the same picture as an SVG file.

mod svg;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use strata::inspect::{BatchEntry, BatchOp, FileKind, FileMeta};
use strata_core::{InternalKey, MAX_SEQUENCE, ParsedInternalKey, SortedIter, ValueKind};
use strata_sstable::{FilterAnswer, Table};

use super::dbdir::{self, Counters};
use super::manifest::FileReport;
use super::sst::{RangeTombstoneRow, bloom_name, bloom_text, covering_tombstone, open_table};
use super::{CmdResult, Failure, emit, file_name, show};

/// `cargo xtask db …`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Draw the database's levels: each table as a bar placed along the key space by
    /// its smallest and largest keys, with sizes, entry and tombstone counts. With
    /// `--key K`, highlight the files covering K in the order a lookup visits them,
    /// each with its Bloom filter's answer, and say where the lookup stopped.
    Tree(TreeArgs),
}

/// Arguments of `db tree`.
#[derive(clap::Args)]
pub struct TreeArgs {
    /// The database directory.
    dir: PathBuf,
    /// Replay the lookup of this key (UTF-8, or hex after `0x`).
    #[arg(long)]
    key: Option<String>,
    /// The keyspace whose tree to show (default: the `default` keyspace).
    #[arg(long, default_value = "default")]
    keyspace: String,
    /// Also write the picture as an SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Width of the key axis in terminal columns.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u16).range(10..=400))]
    width: u16,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs a `db` command.
pub fn run(command: &Command) -> CmdResult {
    match command {
        Command::Tree(args) => tree(args),
    }
}

/// Positions keys along the picture's axis, in proportion to the key space as the
/// keys themselves use it.
///
/// After the common prefix of all keys shown, each byte position is a digit in a mixed
/// radix whose alphabet is the range of byte values seen there (plus "no byte" for
/// shorter keys). So `key0000 .. key0199` spread evenly (digits `0..=9`, not `0..=255`),
/// as do big-endian integers and words; and the order of keys is always kept.
struct KeySpace {
    smallest: Vec<u8>,
    largest: Vec<u8>,
    prefix: usize,
    /// Per byte position after the prefix: (smallest code, radix); code = byte + 1,
    /// 0 for "the key has ended".
    digits: Vec<(u16, f64)>,
    lo: f64,
    span: f64,
}

/// Byte positions after the prefix that place a key (16 keeps f64 precision useful).
const KEY_DIGITS: usize = 16;

impl KeySpace {
    fn new<'a>(keys: impl Iterator<Item = &'a [u8]> + Clone) -> Option<Self> {
        let smallest = keys.clone().min()?;
        let largest = keys.clone().max()?;
        let prefix = smallest
            .iter()
            .zip(largest)
            .take_while(|(a, b)| a == b)
            .count();
        let mut ranges = vec![(u16::MAX, 0u16); KEY_DIGITS];
        for k in keys {
            for (i, r) in ranges.iter_mut().enumerate() {
                let c = code(k, prefix + i);
                *r = (r.0.min(c), r.1.max(c));
            }
        }
        let mut space = KeySpace {
            smallest: smallest.to_vec(),
            largest: largest.to_vec(),
            prefix,
            digits: ranges
                .into_iter()
                .map(|(lo, hi)| (lo, f64::from(hi.saturating_sub(lo)) + 1.0))
                .collect(),
            lo: 0.0,
            span: 0.0,
        };
        space.lo = space.number(smallest);
        space.span = space.number(largest) - space.lo;
        Some(space)
    }

    /// The key's digits after the prefix as a mixed-radix number.
    fn number(&self, key: &[u8]) -> f64 {
        self.digits
            .iter()
            .enumerate()
            .fold(0.0, |acc, (i, &(lo, radix))| {
                let digit =
                    f64::from(code(key, self.prefix + i).saturating_sub(lo)).min(radix - 1.0);
                acc * radix + digit
            })
    }

    /// Where `key` lies, from 0 (smallest) to 1 (largest).
    fn pos(&self, key: &[u8]) -> f64 {
        if key <= self.smallest.as_slice() {
            return 0.0;
        }
        if key >= self.largest.as_slice() {
            return 1.0;
        }
        if self.span <= 0.0 {
            return 0.5;
        }
        ((self.number(key) - self.lo) / self.span).clamp(0.0, 1.0)
    }
}

/// Byte `i` of `key` plus one, or 0 past its end (a shorter key sorts first).
fn code(key: &[u8], i: usize) -> u16 {
    key.get(i).map_or(0, |&b| u16::from(b) + 1)
}

/// Rounds a position for reports (stable JSON, no float noise).
fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[derive(Serialize)]
struct KeySpaceReport {
    smallest: String,
    largest: String,
    common_prefix: String,
}

/// A WAL whose data is not in any table yet: what the MemTable holds after recovery.
#[derive(Serialize)]
struct WalReport {
    file: String,
    entries: usize,
    puts: usize,
    /// Point deletes.
    deletes: usize,
    /// Of `deletes`, the range deletes.
    range_deletes: usize,
    smallest: Option<String>,
    largest: Option<String>,
    end: String,
    /// Positions of the keys (0..1), for the picture.
    #[serde(skip)]
    positions: Vec<f64>,
    #[serde(skip)]
    lookup_step: Option<usize>,
}

#[derive(Serialize)]
struct TreeFile {
    #[serde(flatten)]
    meta: FileReport,
    /// Left and right ends of the bar (0..1 along the key space).
    x0: f64,
    x1: f64,
    /// Whether the file's key range covers the lookup key.
    covers_key: bool,
    /// The file's place in the lookup's order, when the lookup visited it.
    lookup_step: Option<usize>,
    /// The file covers the key but the lookup stopped (or failed) before it.
    not_visited: bool,
}

#[derive(Serialize)]
struct LevelRow {
    level: usize,
    size_bytes: u64,
    entries: u64,
    tombstones: u64,
    range_tombstones: u64,
    files: Vec<TreeFile>,
}

#[derive(Serialize)]
struct Handle {
    offset: u64,
    size: u64,
}

#[derive(Serialize)]
struct Step {
    /// Place in the lookup's order; `None` for a file the lookup never reached.
    step: Option<usize>,
    /// `memtable` or `L<n>`.
    source: String,
    file: String,
    /// The Bloom filter's answer (tables only).
    bloom: Option<&'static str>,
    /// The data block read, if any.
    block: Option<Handle>,
    /// `found`, `deleted`, `range_deleted` (a range tombstone hides the key),
    /// `absent`, `not_visited` or `error`.
    answer: &'static str,
    /// Sequence number of the entry found (of the range tombstone, for
    /// `range_deleted`).
    seq: Option<u64>,
    /// The newest range tombstone of this source covering the key, whether or not it
    /// decided the answer (an entry newer than it wins).
    range_tombstone: Option<RangeTombstoneRow>,
    detail: String,
}

/// The range tombstone that hides the key, and where it is.
#[derive(Serialize)]
struct RangeDeletion {
    #[serde(flatten)]
    tombstone: RangeTombstoneRow,
    /// The table (or WAL) holding it.
    file: String,
    /// `memtable` or `L<n>`.
    source: String,
}

#[derive(Serialize)]
struct LookupReport {
    key: String,
    position: f64,
    steps: Vec<Step>,
    /// `found`, `deleted`, `absent` or `error`.
    result: &'static str,
    value_bytes: Option<usize>,
    value_preview: Option<show::Preview>,
    /// The step that answered.
    answered_by: Option<usize>,
    /// Merge operands met before the answer (their sequence numbers, newest first):
    /// the value is the application's merge operator folding them onto the answer
    /// (`merged`; this tool has no operator to fold with).
    merge_operands: Vec<u64>,
    /// When the result is `deleted` by a range tombstone: which one, and where.
    deleted_by_range: Option<RangeDeletion>,
}

#[derive(Serialize)]
struct DbTree {
    /// The database directory, as given.
    database: String,
    manifest: String,
    counters: Counters,
    key_space: Option<KeySpaceReport>,
    memtable: Vec<WalReport>,
    levels: Vec<LevelRow>,
    lookup: Option<LookupReport>,
    warnings: Vec<String>,
    /// Keys to label the picture's key axis with, between its two ends: (position,
    /// key as typed).
    #[serde(skip)]
    axis_ticks: Vec<(f64, String)>,
}

/// What a step of the lookup found, before it is numbered.
enum Answer {
    Found(u64, Vec<u8>),
    Deleted(u64),
    /// A range tombstone newer than every visible entry of the key in the source (the
    /// sequence number of the newest such entry, if any, is the second field).
    RangeDeleted(RangeTombstoneRow, Option<u64>),
    /// Merge operands of the key (sequence numbers, newest first), then what ended
    /// them in the same source, if anything did (a put, a tombstone, a range
    /// tombstone); otherwise the lookup goes on to older sources.
    Merged(Vec<u64>, Option<Box<Answer>>),
    Absent,
}

impl Answer {
    /// Whether the lookup stops at this answer.
    fn is_final(&self) -> bool {
        !matches!(self, Answer::Absent | Answer::Merged(_, None))
    }
}

/// One source's answer, as the engine decides it (`Lookup::resolve`, then the folding
/// of merge operands): the key's visible entries in the source, newest first
/// (`(seq, kind, value)`), against the newest visible covering range tombstone, which
/// wins over every entry older than itself.
fn resolve(
    history: impl IntoIterator<Item = (u64, ValueKind, Vec<u8>)>,
    cover: Option<&RangeTombstoneRow>,
) -> Answer {
    let mut operands = Vec::new();
    let with_operands = |operands: Vec<u64>, end: Answer| {
        if operands.is_empty() {
            end
        } else {
            Answer::Merged(operands, Some(Box::new(end)))
        }
    };
    for (seq, kind, value) in history {
        if let Some(t) = cover.filter(|t| t.seq > seq) {
            return with_operands(operands, Answer::RangeDeleted(t.clone(), Some(seq)));
        }
        let end = match kind {
            ValueKind::Merge => {
                operands.push(seq);
                continue;
            }
            ValueKind::Put => Answer::Found(seq, value),
            // Shown as found whatever the time (the tool does not judge expiry): the
            // user's value, without the expiry in front of it.
            ValueKind::ExpiringPut => Answer::Found(
                seq,
                value
                    .get(strata_core::expiry::EXPIRY_LEN..)
                    .unwrap_or_default()
                    .to_vec(),
            ),
            ValueKind::Delete => Answer::Deleted(seq),
        };
        return with_operands(operands, end);
    }
    match cover {
        Some(t) => with_operands(operands, Answer::RangeDeleted(t.clone(), None)),
        None if operands.is_empty() => Answer::Absent,
        None => Answer::Merged(operands, None),
    }
}

/// The key in a WAL's entries (what the MemTable holds after replaying it): the newest
/// point entry against the newest range delete covering the key.
fn wal_lookup(entries: &[BatchEntry], key: &[u8]) -> (Answer, Option<RangeTombstoneRow>) {
    let mut history: Vec<(u64, ValueKind, Vec<u8>)> = entries
        .iter()
        .filter(|e| e.kind != BatchOp::DeleteRange && e.key == key && e.seq <= MAX_SEQUENCE)
        .map(|e| {
            let kind = match e.kind {
                BatchOp::Put => ValueKind::Put,
                BatchOp::Merge => ValueKind::Merge,
                BatchOp::PutExpiring => ValueKind::ExpiringPut,
                _ => ValueKind::Delete,
            };
            (e.seq, kind, e.value.clone())
        })
        .collect();
    history.sort_by_key(|e| std::cmp::Reverse(e.0));
    let cover = entries
        .iter()
        .filter(|e| {
            e.kind == BatchOp::DeleteRange
                && e.key.as_slice() <= key
                && key < e.value.as_slice()
                && e.seq <= MAX_SEQUENCE
        })
        .max_by_key(|e| e.seq)
        .map(|e| RangeTombstoneRow::new(&e.key, &e.value, e.seq));
    (resolve(history, cover.as_ref()), cover)
}

fn tree(args: &TreeArgs) -> CmdResult {
    let dir = &args.dir;
    let key = args
        .key
        .as_deref()
        .map(show::parse_key)
        .transpose()
        .map_err(Failure::new)?;
    let manifest_path = dbdir::current_manifest(dir)?;
    let manifest = dbdir::read_manifest(&manifest_path)?;
    let mut warnings = Vec::new();
    if !manifest.ended_cleanly() {
        warnings.push(format!(
            "{}: {}; the tree shows the {} before it",
            file_name(&manifest_path),
            manifest.end_text(),
            show::count(manifest.records.len() as u64, "edit", "edits")
        ));
    }
    let counters = manifest.counters();
    let keyspace = strata::inspect::keyspaces(&manifest.records)
        .into_iter()
        .find(|(_, name)| *name == args.keyspace)
        .map(|(id, _)| id)
        .ok_or_else(|| {
            Failure::new(format!(
                "{}: no keyspace is named {:?}",
                dir.display(),
                args.keyspace
            ))
        })?;
    let levels = strata::inspect::live_files_in(&manifest.records, keyspace);
    // WAL entries of this keyspace its tables do not hold yet.
    let flushed = strata::inspect::flushed_seq(&manifest.records, keyspace);

    // Unflushed WALs, newest first (the active MemTable's log, then frozen ones').
    let mut wals = Vec::new();
    for (kind, path) in dbdir::list(dir)?.into_iter().rev() {
        if let FileKind::Wal(n) = kind
            && n >= counters.log_number
        {
            let mut contents = dbdir::read_wal(&path)?;
            contents
                .entries
                .retain(|e| e.keyspace == keyspace && e.seq > flushed);
            match &contents.end {
                Ok(strata_wal::LogEnd::Clean { .. } | strata_wal::LogEnd::Preallocated { .. }) => {}
                Ok(end) => warnings.push(format!("{}: {end}", file_name(&path))),
                Err((offset, why)) => warnings.push(format!(
                    "{}: record at offset {offset} is not a write batch: {why}",
                    file_name(&path)
                )),
            }
            if !contents.entries.is_empty() {
                wals.push(contents);
            }
        }
    }

    let space = KeySpace::new(
        levels
            .iter()
            .flatten()
            .flat_map(|f| [f.smallest_user_key(), f.largest_user_key()])
            .chain(
                wals.iter()
                    .flat_map(|w| w.entries.iter().map(|e| e.key.as_slice())),
            )
            .chain(key.as_deref()),
    );

    let axis_ticks = space
        .as_ref()
        .map(|s| {
            axis_ticks(
                s,
                levels
                    .iter()
                    .flatten()
                    .flat_map(|f| [f.smallest_user_key(), f.largest_user_key()]),
            )
        })
        .unwrap_or_default();
    let mut report = DbTree {
        database: dir.display().to_string(),
        manifest: file_name(&manifest_path),
        counters,
        key_space: space.as_ref().map(|s| KeySpaceReport {
            smallest: show::plain(&s.smallest),
            largest: show::plain(&s.largest),
            common_prefix: show::plain(s.smallest.get(..s.prefix).unwrap_or_default()),
        }),
        memtable: wals
            .iter()
            .map(|w| {
                let keys = w.entries.iter().map(|e| e.key.as_slice());
                WalReport {
                    file: file_name(&w.path),
                    entries: w.entries.len(),
                    puts: w.entries.iter().filter(|e| e.kind == BatchOp::Put).count(),
                    deletes: w
                        .entries
                        .iter()
                        .filter(|e| e.kind == BatchOp::Delete)
                        .count(),
                    range_deletes: w
                        .entries
                        .iter()
                        .filter(|e| e.kind == BatchOp::DeleteRange)
                        .count(),
                    smallest: keys.clone().min().map(show::plain),
                    largest: keys.clone().max().map(show::plain),
                    end: match &w.end {
                        Ok(end) => end.to_string(),
                        Err((offset, why)) => format!("bad record at offset {offset}: {why}"),
                    },
                    positions: space
                        .as_ref()
                        .map(|s| keys.map(|k| round(s.pos(k))).collect())
                        .unwrap_or_default(),
                    lookup_step: None,
                }
            })
            .collect(),
        levels: levels
            .iter()
            .enumerate()
            .filter(|(_, files)| !files.is_empty())
            .map(|(level, files)| level_row(level, files, space.as_ref(), key.as_deref()))
            .collect(),
        lookup: None,
        warnings,
        axis_ticks,
    };

    if let Some(key) = &key {
        report.lookup = Some(lookup(
            dir,
            key,
            &wals,
            &mut report,
            space.as_ref().map_or(0.5, |s| s.pos(key)),
        ));
    }

    if let Some(svg_path) = &args.svg {
        let picture = svg::render(&report);
        std::fs::write(svg_path, picture)
            .map_err(|e| Failure::new(format!("{}: writing the SVG: {e}", svg_path.display())))?;
    }
    let width = usize::from(args.width);
    emit(args.json, &report, |r, out| render(r, width, out))?;
    let failed_step = report
        .lookup
        .as_ref()
        .and_then(|l| l.steps.iter().find(|s| s.answer == "error"))
        .map(|s| format!("{}: {}", s.file, s.detail));
    match (failed_step, report.warnings.first()) {
        (Some(e), _) => Err(Failure::new(format!("lookup failed at {e}"))),
        (None, Some(w)) => Err(Failure::new(w.clone())),
        (None, None) => Ok(()),
    }
}

/// Up to three keys to label the key axis with between its ends: for each of the
/// quarter marks, the file boundary key placed nearest to it, skipping any that would
/// crowd a label already placed (or an end).
fn axis_ticks<'a>(space: &KeySpace, keys: impl Iterator<Item = &'a [u8]>) -> Vec<(f64, String)> {
    let placed: Vec<(f64, &[u8])> = keys.map(|k| (round(space.pos(k)), k)).collect();
    let mut ticks: Vec<(f64, String)> = Vec::new();
    for target in [0.25, 0.5, 0.75] {
        let nearest = placed
            .iter()
            .filter(|(p, _)| *p > 0.08 && *p < 0.92)
            .min_by(|a, b| (a.0 - target).abs().total_cmp(&(b.0 - target).abs()));
        if let Some(&(p, k)) = nearest
            && (p - target).abs() < 0.125
            && ticks.iter().all(|(q, _)| (p - q).abs() > 0.12)
        {
            ticks.push((p, show::plain(k)));
        }
    }
    ticks
}

fn level_row(
    level: usize,
    files: &[FileMeta],
    space: Option<&KeySpace>,
    key: Option<&[u8]>,
) -> LevelRow {
    LevelRow {
        level,
        size_bytes: files.iter().map(|f| f.size_bytes).sum(),
        entries: files.iter().map(|f| f.entries).sum(),
        tombstones: files.iter().map(|f| f.tombstones).sum(),
        range_tombstones: files.iter().map(|f| f.range_tombstones).sum(),
        files: files
            .iter()
            .map(|f| {
                let (x0, x1) = space.map_or((0.0, 1.0), |s| {
                    (
                        round(s.pos(f.smallest_user_key())),
                        round(s.pos(f.largest_user_key())),
                    )
                });
                TreeFile {
                    meta: FileReport::new(level, f),
                    x0,
                    x1,
                    covers_key: key
                        .is_some_and(|k| f.smallest_user_key() <= k && k <= f.largest_user_key()),
                    lookup_step: None,
                    not_visited: false,
                }
            })
            .collect(),
    }
}

/// Replays `Db::get(key)` over the files, numbering the steps in `report` as it goes.
fn lookup(
    dir: &Path,
    key: &[u8],
    wals: &[dbdir::WalContents],
    report: &mut DbTree,
    position: f64,
) -> LookupReport {
    let mut steps: Vec<Step> = Vec::new();
    let mut answer: Option<(usize, Answer)> = None;
    let mut merge_operands: Vec<u64> = Vec::new();
    let mut failed = false;

    for (w, wal_report) in wals.iter().zip(&mut report.memtable) {
        if answer.is_some() {
            break;
        }
        let step = steps.len() + 1;
        wal_report.lookup_step = Some(step);
        let (found, cover) = wal_lookup(&w.entries, key);
        let (ans, seq, detail) = describe_answer(&found, false, cover.as_ref());
        steps.push(Step {
            step: Some(step),
            source: "memtable".into(),
            file: file_name(&w.path),
            bloom: None,
            block: None,
            answer: ans,
            seq,
            range_tombstone: cover,
            detail,
        });
        note_answer(&mut answer, &mut merge_operands, step, found);
    }

    // L0: every covering file, newest first; deeper levels: the one covering file.
    for row in &mut report.levels {
        for f in row.files.iter_mut().filter(|f| f.covers_key) {
            let name = format!("{:06}.sst", f.meta.number);
            let source = format!("L{}", row.level);
            if answer.is_some() || failed {
                // Listed, but not numbered: the lookup never reached it.
                f.not_visited = true;
                steps.push(Step {
                    step: None,
                    source,
                    file: name,
                    bloom: None,
                    block: None,
                    answer: "not_visited",
                    seq: None,
                    range_tombstone: None,
                    detail: if failed {
                        "not visited: the lookup failed earlier".into()
                    } else {
                        "not visited: the lookup stopped earlier".into()
                    },
                });
                continue;
            }
            let step = steps.len() + 1;
            f.lookup_step = Some(step);
            let path = dbdir::table_path(dir, f.meta.number);
            match table_step(&path, key) {
                Ok((found, cover, filter, block)) => {
                    let (ans, seq, detail) =
                        describe_answer(&found, filter == FilterAnswer::MayContain, cover.as_ref());
                    let detail = match (filter, &block) {
                        (FilterAnswer::Absent, _) if cover.is_none() => {
                            "skipped: no block read".to_owned()
                        }
                        (FilterAnswer::Absent, _) => format!("no block read; {detail}"),
                        (_, None) if cover.is_some() => {
                            format!("no block can hold the key; {detail}")
                        }
                        (_, None) => format!("no block can hold the key ({detail})"),
                        (_, Some(b)) => {
                            format!("read block @{} ({} B): {detail}", b.offset, b.size)
                        }
                    };
                    steps.push(Step {
                        step: Some(step),
                        source,
                        file: name,
                        bloom: Some(bloom_name(filter)),
                        block,
                        answer: ans,
                        seq,
                        range_tombstone: cover,
                        detail,
                    });
                    note_answer(&mut answer, &mut merge_operands, step, found);
                }
                Err(e) => {
                    failed = true;
                    steps.push(Step {
                        step: Some(step),
                        source,
                        file: name,
                        bloom: None,
                        block: None,
                        answer: "error",
                        seq: None,
                        range_tombstone: None,
                        detail: e,
                    });
                }
            }
        }
    }

    let (result, value, answered_by) = match (&answer, failed) {
        (_, true) => ("error", None, None),
        // The value is the application's fold: shown as the operands and what they
        // fold onto, not as bytes.
        (Some((step, _)), _) if !merge_operands.is_empty() => ("merged", None, Some(*step)),
        (None, _) if !merge_operands.is_empty() => ("merged", None, None),
        (Some((step, Answer::Found(_, v))), _) => ("found", Some(v.as_slice()), Some(*step)),
        (Some((step, Answer::Deleted(_) | Answer::RangeDeleted(..))), _) => {
            ("deleted", None, Some(*step))
        }
        _ => ("absent", None, None),
    };
    let deleted_by_range = match (&answer, failed) {
        (Some((step, Answer::RangeDeleted(t, _))), false) => steps
            .iter()
            .find(|s| s.step == Some(*step))
            .map(|s| RangeDeletion {
                tombstone: t.clone(),
                file: s.file.clone(),
                source: s.source.clone(),
            }),
        _ => None,
    };
    LookupReport {
        key: show::plain(key),
        position: round(position),
        steps,
        result,
        value_bytes: value.map(<[u8]>::len),
        value_preview: value.map(show::Preview::of),
        answered_by,
        merge_operands,
        deleted_by_range,
    }
}

/// Takes one source's answer into the lookup: merge operands are noted and the lookup
/// goes on unless the source also said what they fold onto; any other answer but
/// "absent" ends it.
fn note_answer(
    answer: &mut Option<(usize, Answer)>,
    merge_operands: &mut Vec<u64>,
    step: usize,
    found: Answer,
) {
    let found = match found {
        Answer::Merged(ops, end) => {
            merge_operands.extend(ops);
            match end {
                Some(end) => *end,
                None => return,
            }
        }
        other => other,
    };
    if found.is_final() {
        *answer = Some((step, found));
    }
}

/// (answer name, sequence, words), noting a Bloom false positive and a covering range
/// tombstone (`cover`) that an entry outranks.
fn describe_answer(
    found: &Answer,
    bloom_said_maybe: bool,
    cover: Option<&RangeTombstoneRow>,
) -> (&'static str, Option<u64>, String) {
    let older_cover = |seq: u64| {
        cover.filter(|t| t.seq < seq).map_or_else(String::new, |t| {
            format!(
                " (newer than the range tombstone {} covering the key)",
                t.text()
            )
        })
    };
    match found {
        Answer::Found(seq, v) => (
            "found",
            Some(*seq),
            format!(
                "found seq:{seq} put, {} B{} — the lookup stops here",
                v.len(),
                older_cover(*seq)
            ),
        ),
        Answer::Deleted(seq) => (
            "deleted",
            Some(*seq),
            format!(
                "tombstone seq:{seq}{} — the lookup stops here: not found",
                older_cover(*seq)
            ),
        ),
        Answer::RangeDeleted(t, hidden) => (
            "range_deleted",
            Some(t.seq),
            format!(
                "range tombstone {} covers the key{} — the lookup stops here: not found",
                t.text(),
                match hidden {
                    Some(seq) => format!(", newer than its entry seq:{seq} here"),
                    None => String::new(),
                }
            ),
        ),
        Answer::Merged(ops, end) => {
            let seqs: Vec<String> = ops.iter().map(|s| format!("seq:{s}")).collect();
            let head = format!("merge operands {} (newest first)", seqs.join(", "));
            let newest = ops.first().copied();
            match end {
                None => (
                    "merge",
                    newest,
                    format!("{head}: they fold onto older entries — the lookup goes on"),
                ),
                Some(end) => {
                    let (_, _, words) = describe_answer(end, false, cover);
                    ("merge", newest, format!("{head}, folded onto: {words}"))
                }
            }
        }
        Answer::Absent if bloom_said_maybe => (
            "absent",
            None,
            "no entry for the key: the Bloom filter's \"may contain\" was a false positive"
                .to_owned(),
        ),
        Answer::Absent => ("absent", None, "no entry for the key".to_owned()),
    }
}

/// What one table says of the key: its answer, the newest range tombstone of the table
/// covering the key, the filter's answer and the block read.
type TableStep = (
    Answer,
    Option<RangeTombstoneRow>,
    FilterAnswer,
    Option<Handle>,
);

/// Looks `key` up in one table as the engine does (`Version::get_in`): the table's
/// newest visible entry of the key against the newest visible range tombstone of the
/// table covering it.
fn table_step(path: &Path, key: &[u8]) -> Result<TableStep, String> {
    let table = open_table(path).map_err(|e| e.to_string())?;
    let (point, trace) = table
        .get_versioned(key, MAX_SEQUENCE)
        .map_err(|e| format!("{}: {}", path.display(), super::describe(&e)))?;
    // The key's entries in the table, newest first, when the lookup reached them.
    let history = match point {
        Some(_) => key_history(&table, key)
            .map_err(|e| format!("{}: {}", path.display(), super::describe(&e)))?,
        None => Vec::new(),
    };
    let cover = covering_tombstone(&table, key, MAX_SEQUENCE);
    let answer = resolve(history, cover.as_ref());
    let block = trace.data_block.map(|h| Handle {
        offset: h.offset,
        size: h.size,
    });
    Ok((answer, cover, trace.filter, block))
}

/// Every entry of `key` in `table`, newest first: `(seq, kind, value)`.
fn key_history(
    table: &Arc<Table>,
    key: &[u8],
) -> Result<Vec<(u64, ValueKind, Vec<u8>)>, strata::Error> {
    let mut it = table.iter_uncached();
    it.seek(InternalKey::for_seek(key, MAX_SEQUENCE).as_bytes())?;
    let mut out = Vec::new();
    while it.valid() {
        match ParsedInternalKey::parse(it.key()) {
            Some(p) if p.user_key == key => out.push((p.seq, p.kind, it.value().to_vec())),
            _ => break,
        }
        it.next()?;
    }
    Ok(out)
}

/// `, 3 range tombstones` for a count above zero; nothing for zero (most tables).
fn range_count(n: u64, one: &str, many: &str) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(", {}", show::count(n, one, many))
    }
}

/// Text columns of a position on an axis `width` wide.
fn col(x: f64, width: usize) -> usize {
    ((x * width as f64) as usize).min(width.saturating_sub(1))
}

/// One bar row: `cells` with `(x0, x1, fill)` drawn in order.
fn bar_row(width: usize, bars: impl Iterator<Item = (f64, f64, char)>) -> String {
    let mut cells = vec![' '; width];
    for (x0, x1, fill) in bars {
        let (a, b) = (col(x0, width), col(x1, width).max(col(x0, width)));
        for c in cells.iter_mut().take(b + 1).skip(a) {
            *c = fill;
        }
    }
    cells.into_iter().collect()
}

/// Fill characters: files alternate two light shades so neighbours stay apart; files
/// covering the lookup key are solid.
const FILLS: [char; 2] = ['░', '▒'];
const HIGHLIGHT: char = '█';

fn fill(i: usize, covers: bool) -> char {
    if covers {
        HIGHLIGHT
    } else if i.is_multiple_of(2) {
        FILLS[0]
    } else {
        FILLS[1]
    }
}

fn render(t: &DbTree, width: usize, out: &mut dyn Write) -> io::Result<()> {
    let c = &t.counters;
    writeln!(
        out,
        "database: {} ({}) — log number {}, next file {}, last sequence {}",
        t.database, t.manifest, c.log_number, c.next_file_number, c.last_sequence
    )?;
    for w in &t.warnings {
        writeln!(out, "warning: {w}")?;
    }
    let ks = match &t.key_space {
        Some(ks) if !(t.levels.is_empty() && t.memtable.is_empty()) => ks,
        _ => {
            writeln!(out, "empty: no tables and no unflushed data")?;
            return render_lookup(t, out);
        }
    };
    let prefix = if ks.common_prefix.is_empty() {
        String::new()
    } else {
        format!(
            ", bars placed by the bytes after the common prefix {}",
            show::key_from_plain(&ks.common_prefix)
        )
    };
    writeln!(
        out,
        "key space: {} .. {}{prefix}",
        show::key_from_plain(&ks.smallest),
        show::key_from_plain(&ks.largest)
    )?;
    writeln!(out)?;

    let steps = t.lookup.is_some();
    let label_w = 14;
    let gutter = label_w + if steps { 4 } else { 0 } + 1; // + '|'
    let step_col = |s: Option<usize>| match (steps, s) {
        (false, _) => String::new(),
        (true, Some(n)) => format!("{:>4}", format!("[{n}]")),
        (true, None) => "    ".to_owned(),
    };
    // Where the lookup stopped, at the end of that row.
    let answered = t.lookup.as_ref().and_then(|l| l.answered_by);
    let stop = |s: Option<usize>| {
        if s.is_some() && s == answered {
            "  ← the lookup stops here"
        } else {
            ""
        }
    };

    // Axis labels.
    let left = show::key_short(
        &show::parse_key(&ks.smallest).unwrap_or_default(),
        width / 2 - 1,
    );
    let right = show::key_short(
        &show::parse_key(&ks.largest).unwrap_or_default(),
        width / 2 - 1,
    );
    let pad = width.saturating_sub(left.chars().count() + right.chars().count());
    writeln!(out, "{:gutter$}{left}{:pad$}{right}", "", "")?;
    let marker = t.lookup.as_ref().map(|l| gutter + col(l.position, width));
    if let (Some(m), Some(l)) = (marker, &t.lookup) {
        writeln!(
            out,
            "{:m$}▼ {}",
            "",
            show::key_short(&show::parse_key(&l.key).unwrap_or_default(), 30)
        )?;
    }

    for w in &t.memtable {
        let row = bar_row(width, w.positions.iter().map(|&x| (x, x, '•')));
        writeln!(
            out,
            "{:<label_w$}{}|{row}| {}: {} unflushed ({}, {}{}){}",
            "memtable",
            step_col(w.lookup_step),
            w.file,
            show::count(w.entries as u64, "entry", "entries"),
            show::count(w.puts as u64, "put", "puts"),
            show::count(w.deletes as u64, "delete", "deletes"),
            range_count(w.range_deletes as u64, "range delete", "range deletes"),
            stop(w.lookup_step)
        )?;
    }
    for l in &t.levels {
        if l.level == 0 {
            for (i, f) in l.files.iter().enumerate() {
                let row = bar_row(width, std::iter::once((f.x0, f.x1, fill(i, f.covers_key))));
                writeln!(
                    out,
                    "{:<label_w$}{}|{row}| {}, {}, {}{}{}",
                    format!("L0 {:06}", f.meta.number),
                    step_col(f.lookup_step),
                    show::size(f.meta.size_bytes),
                    show::count(f.meta.entries, "entry", "entries"),
                    show::count(f.meta.tombstones, "tombstone", "tombstones"),
                    range_count(
                        f.meta.range_tombstones,
                        "range tombstone",
                        "range tombstones"
                    ),
                    stop(f.lookup_step)
                )?;
            }
        } else {
            let row = bar_row(
                width,
                l.files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.x0, f.x1, fill(i, f.covers_key))),
            );
            let label = format!(
                "L{} {}",
                l.level,
                show::count(l.files.len() as u64, "file", "files")
            );
            let step = l.files.iter().find_map(|f| f.lookup_step);
            writeln!(
                out,
                "{label:<label_w$}{}|{row}| {}, {}, {}{}{}",
                step_col(step),
                show::size(l.size_bytes),
                show::count(l.entries, "entry", "entries"),
                show::count(l.tombstones, "tombstone", "tombstones"),
                range_count(l.range_tombstones, "range tombstone", "range tombstones"),
                stop(step)
            )?;
        }
    }
    if let Some(m) = marker {
        writeln!(out, "{:m$}▲", "")?;
    }

    writeln!(out, "\nfiles (L0 newest first, deeper levels by key):")?;
    for l in &t.levels {
        for f in &l.files {
            let key = |k: &Option<show::IKey>| {
                k.as_ref()
                    .map_or_else(|| "?".to_owned(), |k| show::key_from_plain(&k.user_key))
            };
            writeln!(
                out,
                "  L{} {:06}.sst {:>10} {:>15} {:>14}  {} .. {}{}",
                l.level,
                f.meta.number,
                show::size(f.meta.size_bytes),
                show::count(f.meta.entries, "entry", "entries"),
                show::count(f.meta.tombstones, "tombstone", "tombstones"),
                key(&f.meta.smallest),
                key(&f.meta.largest),
                range_count(
                    f.meta.range_tombstones,
                    "range tombstone",
                    "range tombstones"
                )
            )?;
        }
    }

    render_lookup(t, out)
}

fn render_lookup(t: &DbTree, out: &mut dyn Write) -> io::Result<()> {
    if let Some(l) = &t.lookup {
        writeln!(
            out,
            "\nlookup of {}, newest data first:",
            show::key_from_plain(&l.key)
        )?;
        if l.steps.is_empty() {
            writeln!(out, "  no MemTable data and no file covers the key")?;
        }
        for s in &l.steps {
            let num = match s.step {
                None => "  -".to_owned(),
                Some(n) => format!("{n:>3}."),
            };
            let bloom = s
                .bloom
                .map(|b| {
                    let answer = match b {
                        "absent" => FilterAnswer::Absent,
                        "may_contain" => FilterAnswer::MayContain,
                        _ => FilterAnswer::NoFilter,
                    };
                    format!("Bloom: {}; ", bloom_text(answer))
                })
                .unwrap_or_default();
            writeln!(
                out,
                "{num} {:<8} {:<11} {bloom}{}",
                s.source, s.file, s.detail
            )?;
        }
        let result = match (l.result, l.answered_by) {
            ("found", Some(step)) => format!(
                "found {} ({} B) at step {step}",
                l.value_preview
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                l.value_bytes.unwrap_or(0)
            ),
            ("deleted", Some(step)) => match &l.deleted_by_range {
                Some(d) if d.source == "memtable" => format!(
                    "not found: deleted by range tombstone {} in the MemTable ({}) at step {step}",
                    d.tombstone.text(),
                    d.file
                ),
                Some(d) => format!(
                    "not found: deleted by range tombstone {} in table {} ({}) at step {step}",
                    d.tombstone.text(),
                    d.file,
                    d.source
                ),
                None => format!("not found: deleted by the tombstone at step {step}"),
            },
            ("merged", step) => format!(
                "the application's merge operator folds {} onto {}",
                show::count(
                    l.merge_operands.len() as u64,
                    "merge operand",
                    "merge operands"
                ),
                match step {
                    Some(step) => format!("the answer at step {step}"),
                    None => "nothing (no older value)".to_owned(),
                }
            ),
            ("error", _) => "the lookup failed (see above)".to_owned(),
            _ => "not found: no source holds the key".to_owned(),
        };
        writeln!(out, "result: {result}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_the_key_space_after_the_common_prefix() {
        let keys: Vec<Vec<u8>> = (0..=100u64)
            .map(|i| format!("user{:08}", i * 100).into_bytes())
            .collect();
        let s = KeySpace::new(keys.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(s.pos(&keys[0]), 0.0);
        assert_eq!(s.pos(&keys[100]), 1.0);
        let mid = s.pos(&keys[50]);
        assert!(
            (mid - 0.5).abs() < 0.01,
            "decimal keys spread evenly: {mid}"
        );
        // Order is kept, and keys outside the range clamp.
        assert!(s.pos(&keys[10]) < s.pos(&keys[11]));
        assert_eq!(s.pos(b"a"), 0.0);
        assert_eq!(s.pos(b"zzz"), 1.0);
        // A single key: everything sits at the ends or the middle, never NaN.
        let one = KeySpace::new([&b"k"[..]].iter().copied()).unwrap();
        assert_eq!(one.pos(b"k"), 0.0);
    }

    #[test]
    fn bars_cover_at_least_one_column_and_stay_inside() {
        assert_eq!(bar_row(10, [(0.0, 0.0, '#')].into_iter()), "#         ");
        assert_eq!(bar_row(10, [(0.95, 1.0, '#')].into_iter()), "         #");
        assert_eq!(bar_row(4, [(0.0, 1.0, '#')].into_iter()), "####");
    }
}
