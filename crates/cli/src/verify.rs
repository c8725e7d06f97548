//! `cargo xtask verify <dir|file>`: checks every checksum of every block and record —
//! tables (footer, meta blocks, every data block, then key order and counts), WALs and
//! manifests (every fragment, every batch or edit decoded) — and, for a database
//! directory, that the manifest's live tables exist and match what it says of them.
//!
//! Exits non-zero if anything is damaged, naming each damaged file and offset. A
//! progress bar (on stderr, only when it is a terminal) follows large databases.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use strata::inspect::{self, FileKind, FileMeta, VersionEdit};
use strata_core::{Error, FileSystem, StdFs};
use strata_sstable::{FilterStatus, Table};
use strata_wal::LogEnd;

use super::dbdir::{self, for_each_record};
use super::sst::region;
use super::{CmdResult, Failure, Sniffed, emit, file_name, require_file, show, sniff};

/// Databases at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 16 << 20;

/// Arguments of `verify`.
#[derive(clap::Args)]
pub struct Args {
    /// A database directory, or one file (table, WAL, manifest).
    path: PathBuf,
    /// Report a torn log tail (what a crash mid-write leaves, and recovery drops) as a
    /// warning instead of damage.
    #[arg(long)]
    tolerate_torn_tail: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Problem {
    offset: Option<u64>,
    reason: String,
}

#[derive(Serialize)]
struct FileCheck {
    file: String,
    /// `table`, `wal`, `manifest` or `current`.
    kind: &'static str,
    size_bytes: u64,
    /// `ok`, `warning` or `damaged`.
    status: &'static str,
    /// What was checked.
    summary: String,
    /// The file's role in the database (live level, left over, …).
    note: Option<String>,
    problems: Vec<Problem>,
}

impl FileCheck {
    fn new(path: &Path, kind: &'static str) -> Self {
        FileCheck {
            file: file_name(path),
            kind,
            size_bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
            status: "ok",
            summary: String::new(),
            note: None,
            problems: Vec::new(),
        }
    }

    fn damage(&mut self, offset: Option<u64>, reason: impl Into<String>) {
        self.status = "damaged";
        self.problems.push(Problem {
            offset,
            reason: reason.into(),
        });
    }

    fn warn(&mut self, offset: Option<u64>, reason: impl Into<String>) {
        if self.status == "ok" {
            self.status = "warning";
        }
        self.problems.push(Problem {
            offset,
            reason: reason.into(),
        });
    }

    fn library_error(&mut self, e: &Error) {
        match e {
            Error::Corruption { offset, reason, .. } => self.damage(Some(*offset), reason.clone()),
            other => self.damage(None, super::describe(other)),
        }
    }
}

#[derive(Serialize)]
struct VerifyReport {
    path: String,
    files_checked: usize,
    bytes_checked: u64,
    damaged: usize,
    warnings: usize,
    files: Vec<FileCheck>,
}

/// Runs `verify`.
pub fn run(args: &Args) -> CmdResult {
    let path = &args.path;
    let files = if path.is_dir() {
        verify_dir(path, args.tolerate_torn_tail)?
    } else {
        require_file(path)?;
        vec![verify_file(path, args.tolerate_torn_tail)?]
    };
    let report = VerifyReport {
        path: path.display().to_string(),
        files_checked: files.len(),
        bytes_checked: files.iter().map(|f| f.size_bytes).sum(),
        damaged: files.iter().filter(|f| f.status == "damaged").count(),
        warnings: files.iter().filter(|f| f.status == "warning").count(),
        files,
    };
    emit(args.json, &report, render)?;
    let first = report.files.iter().find(|f| f.status == "damaged");
    match first {
        None => Ok(()),
        Some(f) => {
            let at = f
                .problems
                .first()
                .map(|p| match p.offset {
                    Some(o) => format!(" at offset {o}: {}", p.reason),
                    None => format!(": {}", p.reason),
                })
                .unwrap_or_default();
            let others = report.damaged - 1;
            let more = if others > 0 {
                format!(
                    " (and {others} more damaged file{})",
                    if others == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            };
            Err(Failure::new(format!("damaged: {}{at}{more}", f.file)))
        }
    }
}

fn progress(total: u64) -> ProgressBar {
    let target = if io::stderr().is_terminal() && total >= PROGRESS_MIN_BYTES {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template(
        "verifying {bar:40} {binary_bytes}/{binary_total_bytes} {wide_msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn verify_dir(dir: &Path, tolerate: bool) -> Result<Vec<FileCheck>, Failure> {
    let files = dbdir::list(dir)?;
    if files.is_empty() {
        return Err(Failure::new(format!(
            "{}: not a Strata database (no CURRENT, manifest, WAL or table in it)",
            dir.display()
        )));
    }
    let total: u64 = files
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = progress(total);
    let mut checks = Vec::new();

    // CURRENT first: it decides which manifest holds the live files.
    let current = dir.join("CURRENT");
    let mut current_check = FileCheck::new(&current, "current");
    let manifest = match dbdir::current_manifest(dir) {
        Ok(p) => {
            current_check.summary = format!("names {}", file_name(&p));
            Some(p)
        }
        Err(_) if !current.exists() => {
            current_check.damage(None, "missing: no manifest names the live files");
            None
        }
        Err(e) => {
            current_check.damage(None, e.to_string());
            None
        }
    };
    checks.push(current_check);

    let mut live: HashMap<u64, (usize, FileMeta)> = HashMap::new();
    let mut log_number = 0;
    for (kind, path) in &files {
        bar.set_message(file_name(path));
        let check = match kind {
            FileKind::Current | FileKind::Lock => continue,
            FileKind::Manifest(_) => {
                let is_current = manifest.as_deref() == Some(path.as_path());
                let mut check = check_log(path, LogKind::Manifest, tolerate);
                if is_current {
                    if let Ok(m) = dbdir::read_manifest(path) {
                        log_number = m.counters().log_number;
                        // Every keyspace's tables.
                        for (level, files) in m.levels_of_every_keyspace().into_iter().enumerate() {
                            for f in files {
                                live.insert(f.number, (level, f));
                            }
                        }
                    }
                    check.note = Some(format!(
                        "current; {}",
                        show::count(live.len() as u64, "live table", "live tables")
                    ));
                } else {
                    check.note = Some("not current (left over)".into());
                }
                check
            }
            FileKind::Wal(n) => {
                let mut check = check_log(path, LogKind::Wal, tolerate);
                if manifest.is_some() {
                    check.note = Some(if *n >= log_number {
                        "unflushed".into()
                    } else {
                        "flushed (left over)".into()
                    });
                }
                check
            }
            FileKind::Table(n) => {
                let meta = live.remove(n);
                check_table(path, meta.as_ref(), manifest.is_some(), &bar)
            }
        };
        if !matches!(kind, FileKind::Table(_)) {
            bar.inc(check.size_bytes);
        }
        checks.push(check);
    }
    bar.finish_and_clear();

    let mut missing: Vec<_> = live.into_values().collect();
    missing.sort_by_key(|(_, f)| f.number);
    for (level, f) in missing {
        let path = dbdir::table_path(dir, f.number);
        let mut check = FileCheck::new(&path, "table");
        check.note = Some(format!("live in L{level}"));
        check.damage(None, "named by the manifest but missing");
        checks.push(check);
    }
    Ok(checks)
}

fn verify_file(path: &Path, tolerate: bool) -> Result<FileCheck, Failure> {
    let by_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(inspect::classify);
    let sniffed = sniff(path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    let bar = progress(std::fs::metadata(path).map_or(0, |m| m.len()));
    let check = match (by_name, sniffed) {
        (Some(FileKind::Table(_)), _) | (None, Sniffed::Table) => {
            check_table(path, None, false, &bar)
        }
        (Some(FileKind::Manifest(_)), _) => check_log(path, LogKind::Manifest, tolerate),
        (Some(FileKind::Wal(_)), _) => check_log(path, LogKind::Wal, tolerate),
        (None, Sniffed::RecordLog) => check_log(path, guess_log_kind(path), tolerate),
        (Some(FileKind::Current), _) => {
            let mut check = FileCheck::new(path, "current");
            match std::fs::read_to_string(path) {
                Ok(s) if s.starts_with("MANIFEST-") && s.ends_with('\n') => {
                    check.summary = format!("names {}", s.trim_end());
                }
                Ok(_) => check.damage(Some(0), "not of the form MANIFEST-NNNNNN and a newline"),
                Err(e) => check.damage(None, e.to_string()),
            }
            check
        }
        _ => {
            return Err(Failure::new(format!(
                "{}: is {}; verify takes a database directory, a table, a WAL or a manifest",
                path.display(),
                sniffed.describe()
            )));
        }
    };
    bar.finish_and_clear();
    Ok(check)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LogKind {
    Wal,
    Manifest,
}

/// A record log of unknown name: a manifest if its first record is a version edit and
/// not a write batch.
fn guess_log_kind(path: &Path) -> LogKind {
    let mut kind = LogKind::Wal;
    let _ = for_each_record(path, |r| {
        if inspect::decode_wal_batch(&r.data).is_err() && VersionEdit::decode(&r.data).is_ok() {
            kind = LogKind::Manifest;
        }
        ControlFlow::Break(())
    });
    kind
}

fn check_log(path: &Path, kind: LogKind, tolerate: bool) -> FileCheck {
    let mut check = FileCheck::new(
        path,
        match kind {
            LogKind::Wal => "wal",
            LogKind::Manifest => "manifest",
        },
    );
    let (mut records, mut entries) = (0u64, 0u64);
    let mut last_seq: Option<u64> = None;
    let mut bad: Option<(u64, String)> = None;
    let end = for_each_record(path, |r| {
        records += 1;
        let why = match kind {
            LogKind::Wal => match inspect::decode_wal_batch(&r.data) {
                Ok(batch) => {
                    entries += batch.len() as u64;
                    match (last_seq, batch.first()) {
                        (Some(prev), Some(first)) if first.seq <= prev => Some(format!(
                            "sequence numbers go backwards ({} after {prev})",
                            first.seq
                        )),
                        _ => {
                            last_seq = batch.last().map(|e| e.seq).or(last_seq);
                            None
                        }
                    }
                }
                Err(reason) => Some(format!("record is not a write batch: {reason}")),
            },
            LogKind::Manifest => match VersionEdit::decode(&r.data) {
                Ok(_) => None,
                Err(e) => Some(format!("record is not a version edit: {e:?}")),
            },
        };
        match why {
            Some(why) => {
                bad = Some((r.offset, why));
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    });
    let noun = match kind {
        LogKind::Wal => format!(
            "{}, {}",
            show::count(records, "record", "records"),
            show::count(entries, "entry", "entries")
        ),
        LogKind::Manifest => show::count(records, "edit", "edits"),
    };
    check.summary = noun;
    match (bad, end) {
        (Some((offset, why)), _) => check.damage(Some(offset), why),
        (None, Err(e)) => check.damage(Some(0), e.to_string()),
        (None, Ok(Some(LogEnd::Clean { .. }))) => {}
        // The engine's own reservation ahead of a WAL taking synced writes: healthy.
        (None, Ok(Some(LogEnd::Preallocated { zeros, .. }))) => {
            check.summary = format!(
                "{}, then {zeros} bytes of preallocated zeros",
                check.summary
            );
        }
        (
            None,
            Ok(Some(LogEnd::TornTail {
                damage,
                bytes_dropped,
                ..
            })),
        ) => {
            let reason = format!(
                "torn tail ({}): the last {} bytes hold no whole record; a crash mid-write \
                 leaves this, and recovery drops them",
                damage.kind, bytes_dropped
            );
            if tolerate {
                check.warn(Some(damage.offset), reason);
            } else {
                check.damage(Some(damage.offset), reason);
            }
        }
        (None, Ok(Some(LogEnd::Stopped { damage, .. }))) => {
            check.damage(
                Some(damage.offset),
                format!(
                    "{}; intact data follows, so this is damage, not a torn tail",
                    damage.kind
                ),
            );
        }
        (None, Ok(None)) => check.damage(None, "reading stopped without a report"),
    }
    check
}

/// `live`: the manifest's entry for this table, if it is live; `in_db`: whether the
/// table was found in a database directory with a readable manifest.
fn check_table(
    path: &Path,
    live: Option<&(usize, FileMeta)>,
    in_db: bool,
    bar: &ProgressBar,
) -> FileCheck {
    let mut check = FileCheck::new(path, "table");
    let size = check.size_bytes;
    check.note = match (live, in_db) {
        (Some((level, _)), _) => Some(format!("live in L{level}")),
        (None, true) => Some("not live (left over)".into()),
        (None, false) => None,
    };
    let file = match StdFs.open(path) {
        Ok(f) => f,
        Err(e) => {
            check.library_error(&e);
            bar.inc(size);
            return check;
        }
    };
    let table = match Table::open(Arc::clone(&file), 0, None) {
        Ok(t) => t,
        Err(e) => {
            check.library_error(&e);
            if let (Error::Corruption { offset, .. }, Ok(footer)) = (&e, Table::read_footer(&*file))
                && let Some(p) = check.problems.last_mut()
            {
                p.reason = format!("{} (in {})", p.reason, region(&footer, *offset));
            }
            bar.inc(size);
            return check;
        }
    };
    match table.filter_status() {
        FilterStatus::Unusable { reason } => check.damage(
            Some(table.footer().filter.offset),
            format!("filter block unusable: {reason}"),
        ),
        // Filter kinds are added without a format version change (old readers answer
        // "may contain"), so an unknown kind is a newer writer's, not damage.
        FilterStatus::UnknownKind { kind } => check.warn(
            Some(table.footer().filter.offset),
            format!("filter kind {kind} is unknown to this build (a newer writer's); lookups read data blocks instead"),
        ),
        FilterStatus::Loaded { .. } | FilterStatus::Empty => {}
    }
    let (mut blocks, mut entries) = (0u64, 0u64);
    for e in table.index_entries() {
        match table.verify_block(e.handle) {
            Ok(n) => entries += n,
            Err(err) => check.library_error(&err),
        }
        blocks += 1;
        bar.inc(
            e.handle
                .end_with_trailer()
                .unwrap_or(0)
                .saturating_sub(e.handle.offset),
        );
    }
    // Key order across blocks, counts and key range against the properties: only
    // meaningful (and only reached by the reader) when every block is intact.
    if check.problems.is_empty()
        && let Err(e) = table.verify()
    {
        check.library_error(&e);
    }
    if let Some((_, meta)) = live {
        let p = table.properties();
        let mut differs = Vec::new();
        if meta.size_bytes != table.file_size() {
            differs.push(format!(
                "size {} (manifest says {})",
                table.file_size(),
                meta.size_bytes
            ));
        }
        if (meta.entries, meta.tombstones) != (p.entry_count, p.tombstone_count) {
            differs.push(format!(
                "{} entries, {} tombstones (manifest says {}, {})",
                p.entry_count, p.tombstone_count, meta.entries, meta.tombstones
            ));
        }
        let ranges = table.range_tombstones().len() as u64;
        if meta.range_tombstones != ranges {
            differs.push(format!(
                "{ranges} range tombstones (manifest says {})",
                meta.range_tombstones
            ));
        }
        if meta.smallest != p.smallest_key || meta.largest != p.largest_key {
            differs.push(format!(
                "key range {} .. {} (manifest says {} .. {})",
                show::ikey(p.smallest_key.as_bytes()),
                show::ikey(p.largest_key.as_bytes()),
                show::ikey(meta.smallest.as_bytes()),
                show::ikey(meta.largest.as_bytes())
            ));
        }
        for d in differs {
            check.damage(None, format!("differs from the manifest: {d}"));
        }
    }
    bar.inc(size.saturating_sub(table.footer().filter.offset));
    let ranges = table.range_tombstones().len() as u64;
    check.summary = format!(
        "{}, {}{}",
        show::count(blocks, "data block", "data blocks"),
        show::count(entries, "entry", "entries"),
        if table.footer().range_del.is_some() {
            format!(
                ", range-deletion block ({})",
                show::count(ranges, "range tombstone", "range tombstones")
            )
        } else {
            String::new()
        }
    );
    check
}

fn render(r: &VerifyReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "verify {}", r.path)?;
    for f in &r.files {
        let status = match f.status {
            "ok" => "ok",
            "warning" => "warning",
            _ => "DAMAGED",
        };
        let note = f
            .note
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        writeln!(out, "  {status:<8} {:<16} {}{note}", f.file, f.summary)?;
        for p in &f.problems {
            match p.offset {
                Some(o) => writeln!(out, "{:28}at offset {o}: {}", "", p.reason)?,
                None => writeln!(out, "{:28}{}", "", p.reason)?,
            }
        }
    }
    writeln!(
        out,
        "checked {}, {}: {} damaged, {} with warnings",
        show::count(r.files_checked as u64, "file", "files"),
        show::size(r.bytes_checked),
        r.damaged,
        r.warnings
    )
}
