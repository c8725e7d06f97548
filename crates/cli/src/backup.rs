//! `checkpoint` and `backup create|list|verify|restore|purge`: copies of a database
//! through the engine (`Db::checkpoint`, `strata::backup::Backup`).
//!
//! Unlike the inspection commands, `checkpoint` and `backup create` open the source
//! database **writable**: they flush its MemTable first, which needs its lock, so they
//! fail with "locked" while another process has the database open (use the library's
//! `Db::checkpoint` and `Backup::create` inside that process instead).

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use strata::backup::{Backup, BackupInfo};
use strata::{CopyProgress, Db};

use super::{CmdResult, Failure, describe, emit};

/// Copies shorter than this draw no progress bar.
const PROGRESS_MIN_BYTES: u64 = 16 << 20;

/// Arguments of `checkpoint`.
#[derive(clap::Args)]
pub struct CheckpointArgs {
    /// The database directory. Opened writable (its lock is taken and its MemTable
    /// flushed): fails while another process has it open.
    db: PathBuf,
    /// Where to write the checkpoint: a new or empty directory. Tables are hard-linked
    /// when it is on the same file system, copied otherwise.
    dir: PathBuf,
    /// Checkpoint this keyspace alone: the checkpoint is a database whose default
    /// keyspace holds it. Without it, every keyspace is checkpointed.
    #[arg(long)]
    keyspace: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `backup` subcommands.
#[derive(clap::Subcommand)]
pub enum BackupCommand {
    /// Back up a database: copy the tables the backup directory lacks, then write the
    /// backup's manifest. Opens the database writable (takes its lock, flushes its
    /// MemTable): fails while another process has it open.
    Create {
        /// The database directory.
        db: PathBuf,
        /// The backup directory (created if missing).
        backups: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the complete backups, oldest first.
    List {
        /// The backup directory.
        backups: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check every checksum of a backup; exits non-zero on damage.
    Verify {
        /// The backup directory.
        backups: PathBuf,
        /// The backup's id (see `backup list`); the newest if omitted.
        id: Option<u64>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup into a new or empty directory, checking every table as it is
    /// copied; refuses a damaged backup.
    Restore {
        /// The backup directory.
        backups: PathBuf,
        /// The backup's id.
        id: u64,
        /// Where to restore it.
        target: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete all but the newest `--keep` backups, and every table file no kept backup
    /// references.
    Purge {
        /// The backup directory.
        backups: PathBuf,
        /// How many of the newest backups to keep.
        #[arg(long)]
        keep: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn bar(what: &'static str) -> impl FnMut(CopyProgress) {
    let mut bar: Option<ProgressBar> = None;
    move |p: CopyProgress| {
        let bar = bar.get_or_insert_with(|| {
            let target = if io::stderr().is_terminal() && p.total_bytes >= PROGRESS_MIN_BYTES {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            };
            let bar = ProgressBar::with_draw_target(Some(p.total_bytes), target);
            if let Ok(style) = ProgressStyle::with_template(&format!(
                "{what} {{bar:40}} {{binary_bytes}}/{{binary_total_bytes}}"
            )) {
                bar.set_style(style);
            }
            bar
        });
        bar.set_position(p.done_bytes);
        if p.done_bytes >= p.total_bytes {
            bar.finish_and_clear();
        }
    }
}

fn open_writable(dir: &Path) -> Result<Db, Failure> {
    Db::builder(dir)
        .create_if_missing(false)
        .open()
        .map_err(|e| Failure::new(format!("{}: {}", dir.display(), describe(&e))))
}

fn open_backups(dir: &Path) -> Result<Backup, Failure> {
    Backup::open(dir).map_err(|e| Failure::new(format!("{}: {}", dir.display(), describe(&e))))
}

/// A library error, naming its file (damage is in a file of the backup, not the
/// directory given on the command line).
fn failure(dir: &Path, e: &strata::Error) -> Failure {
    match e {
        strata::Error::Corruption { file, .. } => Failure::at(file, e),
        _ => Failure::new(format!("{}: {}", dir.display(), describe(e))),
    }
}

#[derive(Serialize)]
struct CheckpointReport {
    db: String,
    checkpoint: String,
    sequence: u64,
    tables: usize,
    table_bytes: u64,
    linked: usize,
    copied: usize,
    flush_wait_ms: f64,
    writer_pause_ms: f64,
}

/// Runs `checkpoint`.
pub fn checkpoint(args: &CheckpointArgs) -> CmdResult {
    let db = open_writable(&args.db)?;
    let info = match &args.keyspace {
        None => db.checkpoint_with_progress(&args.dir, &mut bar("checkpoint")),
        Some(name) => super::query::keyspace(&db, &args.db, name)?
            .checkpoint_with_progress(&args.dir, &mut bar("checkpoint")),
    }
    .map_err(|e| failure(&args.dir, &e))?;
    db.close().map_err(|e| failure(&args.db, &e))?;
    let report = CheckpointReport {
        db: args.db.display().to_string(),
        checkpoint: args.dir.display().to_string(),
        sequence: info.sequence,
        tables: info.tables,
        table_bytes: info.table_bytes,
        linked: info.linked,
        copied: info.tables - info.linked,
        flush_wait_ms: info.flush_wait.as_secs_f64() * 1e3,
        writer_pause_ms: info.writer_pause.as_secs_f64() * 1e3,
    };
    emit(args.json, &report, |r, out| {
        writeln!(
            out,
            "checkpoint {} at sequence {}: {} tables, {} bytes ({} linked, {} copied)",
            r.checkpoint, r.sequence, r.tables, r.table_bytes, r.linked, r.copied
        )
    })
}

#[derive(Serialize)]
struct BackupReport {
    id: u64,
    sequence: u64,
    /// Milliseconds since the Unix epoch.
    created_ms: u64,
    tables: usize,
    bytes: u64,
}

impl From<&BackupInfo> for BackupReport {
    fn from(b: &BackupInfo) -> Self {
        BackupReport {
            id: b.id,
            sequence: b.sequence,
            created_ms: millis(b.created),
            tables: b.tables.len(),
            bytes: b.bytes(),
        }
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn line(out: &mut dyn Write, b: &BackupReport) -> io::Result<()> {
    writeln!(
        out,
        "backup {}: sequence {}, {} tables, {} bytes, created {} ms after the epoch",
        b.id, b.sequence, b.tables, b.bytes, b.created_ms
    )
}

#[derive(Serialize)]
struct CreatedReport {
    #[serde(flatten)]
    backup: BackupReport,
    copied_tables: usize,
    copied_bytes: u64,
}

#[derive(Serialize)]
struct PurgeReport {
    removed_backups: Vec<u64>,
    removed_files: usize,
    removed_bytes: u64,
}

/// Runs a `backup` subcommand.
pub fn run(cmd: &BackupCommand) -> CmdResult {
    match cmd {
        BackupCommand::Create { db, backups, json } => {
            let bk = open_backups(backups)?;
            let handle = open_writable(db)?;
            let created = bk
                .create_with_progress(&handle, &mut bar("backing up"))
                .map_err(|e| failure(backups, &e))?;
            handle.close().map_err(|e| failure(db, &e))?;
            let report = CreatedReport {
                backup: BackupReport::from(&created.info),
                copied_tables: created.copied_tables,
                copied_bytes: created.copied_bytes,
            };
            emit(*json, &report, |r, out| {
                line(out, &r.backup)?;
                writeln!(
                    out,
                    "copied {} tables, {} bytes (the rest were held already)",
                    r.copied_tables, r.copied_bytes
                )
            })
        }
        BackupCommand::List { backups, json } => {
            let bk = open_backups(backups)?;
            let list = bk.list().map_err(|e| failure(backups, &e))?;
            let report: Vec<BackupReport> = list.iter().map(BackupReport::from).collect();
            emit(*json, &report, |r, out| {
                if r.is_empty() {
                    writeln!(out, "no backups")?;
                }
                r.iter().try_for_each(|b| line(out, b))
            })
        }
        BackupCommand::Verify { backups, id, json } => {
            let bk = open_backups(backups)?;
            let id = match id {
                Some(id) => *id,
                None => bk
                    .list()
                    .map_err(|e| failure(backups, &e))?
                    .last()
                    .map(|b| b.id)
                    .ok_or_else(|| Failure::new(format!("{}: no backups", backups.display())))?,
            };
            let info = bk
                .verify_with_progress(id, &mut bar("verifying"))
                .map_err(|e| failure(backups, &e))?;
            emit(*json, &BackupReport::from(&info), |r, out| {
                line(out, r)?;
                writeln!(out, "ok: every checksum matches")
            })
        }
        BackupCommand::Restore {
            backups,
            id,
            target,
            json,
        } => {
            let bk = open_backups(backups)?;
            let info = bk
                .restore_with_progress(*id, target, &mut bar("restoring"))
                .map_err(|e| failure(backups, &e))?;
            emit(*json, &BackupReport::from(&info), |r, out| {
                line(out, r)?;
                writeln!(out, "restored into {}", target.display())
            })
        }
        BackupCommand::Purge {
            backups,
            keep,
            json,
        } => {
            let bk = open_backups(backups)?;
            let purged = bk.purge_old(*keep).map_err(|e| failure(backups, &e))?;
            let report = PurgeReport {
                removed_backups: purged.backups,
                removed_files: purged.files,
                removed_bytes: purged.bytes,
            };
            emit(*json, &report, |r, out| {
                writeln!(
                    out,
                    "removed backups {:?}, {} files, {} bytes",
                    r.removed_backups, r.removed_files, r.removed_bytes
                )
            })
        }
    }
}
