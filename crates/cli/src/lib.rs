//! Strata's command-line tools, as a library: `wal dump`, `sst dump|get`,
//! `manifest dump`, `db tree`, `verify`, `get`, `scan` and `stats` over a database,
//! and `checkpoint` and `backup create|list|verify|restore|purge` to copy one.
//! The `strata` binary of this package runs them for users (`cargo install strata-cli`);
//! the workspace's `cargo xtask` runs the same code during development.
//!
//! Commands that open a database (`get`, `scan`, `stats`) open it read-only: no lock is
//! taken and nothing is written, so they are safe on a database another process has
//! open, and they read one consistent state of it. `checkpoint` and `backup create`
//! are the exception: they open the database writable (see [`backup`]).
//!
//! Every command reads through the format crates — `strata_wal::LogReader` for record
//! framing, `strata::inspect` for write batches and version edits, `strata_sstable::Table`
//! for tables — and decodes nothing itself. Each builds a report (a `serde::Serialize`
//! value), printed as text or, with `--json`, as JSON on stdout.
//!
//! Bad input (a missing file, a file of another kind, a truncated or damaged file) never
//! panics: the command prints what it could read, then fails with one line on stderr
//! naming the file and the offset of the damage, and a non-zero exit code.

// Bytes from disk reach these modules: no panicking slice operations.
#![deny(clippy::indexing_slicing)]

pub mod backup;
pub mod manifest;
pub mod query;
pub mod sst;
pub mod tree;
pub mod verify;
pub mod wal;

mod dbdir;
mod show;

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use strata_core::Error;

/// Every tool command, for a binary to mount as its subcommands (`strata` and
/// `cargo xtask` both do).
#[derive(clap::Subcommand)]
pub enum Tool {
    /// Inspect a write-ahead log.
    #[command(subcommand)]
    Wal(wal::Command),
    /// Inspect a table (SSTable).
    #[command(subcommand)]
    Sst(sst::Command),
    /// Inspect a database's manifest.
    #[command(subcommand)]
    Manifest(manifest::Command),
    /// Picture a whole database.
    #[command(subcommand)]
    Db(tree::Command),
    /// Check every checksum of a database directory or file; exits non-zero on damage.
    Verify(verify::Args),
    /// Print the value of a key (read-only open: safe on a database in use); exits
    /// non-zero if the key is absent.
    Get(query::GetArgs),
    /// Print the entries of a key range or prefix in order (read-only open).
    Scan(query::ScanArgs),
    /// Print the shape of the tree: files, bytes, entries and tombstones per level
    /// (read-only open).
    Stats(query::StatsArgs),
    /// Write a consistent copy of a database into a new directory (hard links where
    /// possible). Opens the database writable: fails while another process has it open.
    Checkpoint(backup::CheckpointArgs),
    /// Incremental backups: create (opens the database writable), list, verify,
    /// restore, purge.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
}

impl Tool {
    /// Runs the command, printing its report; a closed stdout is not an error.
    pub fn run(&self) -> Result<(), Box<dyn std::error::Error>> {
        finish(match self {
            Tool::Wal(c) => wal::run(c),
            Tool::Sst(c) => sst::run(c),
            Tool::Manifest(c) => manifest::run(c),
            Tool::Db(c) => tree::run(c),
            Tool::Verify(args) => verify::run(args),
            Tool::Get(args) => query::get(args),
            Tool::Scan(args) => query::scan(args),
            Tool::Stats(args) => query::stats(args),
            Tool::Checkpoint(args) => backup::checkpoint(args),
            Tool::Backup(c) => backup::run(c),
        })
    }
}

/// Why a command failed: one line for stderr (the caller prefixes `error: `).
#[derive(Debug)]
pub enum Failure {
    /// Something to tell the user.
    Message(String),
    /// Stdout was closed early (`| head`): stop quietly.
    BrokenPipe,
}

impl Failure {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Failure::Message(message.into())
    }

    /// A failure reading `file`, from a library error.
    pub fn at(file: &Path, e: &Error) -> Self {
        Failure::new(format!("{}: {}", file.display(), describe(e)))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Message(m) => f.write_str(m),
            Failure::BrokenPipe => f.write_str("broken pipe"),
        }
    }
}

impl std::error::Error for Failure {}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::BrokenPipe
        } else {
            Failure::new(format!("writing output: {e}"))
        }
    }
}

/// The result of a command.
pub type CmdResult = Result<(), Failure>;

/// Converts a command's result for `main`: a closed stdout is not an error.
pub fn finish(result: CmdResult) -> Result<(), Box<dyn std::error::Error>> {
    match result {
        Ok(()) | Err(Failure::BrokenPipe) => Ok(()),
        Err(e) => Err(Box::new(e)),
    }
}

/// A library error, without the file name when it carries one (the caller names the
/// file once, first on the line).
pub(crate) fn describe(e: &Error) -> String {
    match e {
        Error::Corruption { offset, reason, .. } => {
            format!("corruption at offset {offset}: {reason}")
        }
        Error::Io { source, .. } => match source.kind() {
            io::ErrorKind::NotFound => "no such file or directory".to_owned(),
            io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            _ => e.to_string(),
        },
        other => other.to_string(),
    }
}

/// Writes the report: JSON if asked, else the text `render` produces.
pub(crate) fn emit<T: serde::Serialize>(
    json: bool,
    report: &T,
    render: impl FnOnce(&T, &mut dyn Write) -> io::Result<()>,
) -> CmdResult {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if json {
        serde_json::to_writer_pretty(&mut out, report)
            .map_err(|e| Failure::from(io::Error::from(e)))?;
        writeln!(out)?;
    } else {
        render(report, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// Checks that `path` is an existing regular file, with a one-line error otherwise.
pub(crate) fn require_file(path: &Path) -> CmdResult {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(Failure::new(format!(
            "{}: is a directory, not a file",
            path.display()
        ))),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Failure::new(format!(
            "{}: no such file or directory",
            path.display()
        ))),
        Err(e) => Err(Failure::new(format!("{}: {e}", path.display()))),
    }
}

/// What a file looks like from its first and last bytes, to say "this is a WAL, not a
/// table" instead of a bare decoding error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sniffed {
    /// Starts with a record-log header (a WAL or a manifest).
    RecordLog,
    /// Ends with the table magic.
    Table,
    /// A `CURRENT` file (`MANIFEST-…` text).
    Current,
    /// No bytes.
    Empty,
    /// None of the above.
    Unknown,
}

impl Sniffed {
    /// How to call a file of this kind in a message.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Sniffed::RecordLog => "a record log (a WAL or a manifest)",
            Sniffed::Table => "a table",
            Sniffed::Current => "a CURRENT file",
            Sniffed::Empty => "empty",
            Sniffed::Unknown => "not a Strata file (or damaged at both ends)",
        }
    }
}

/// Looks at the first bytes (a record log's header fragment carries the magic right
/// after the 7-byte fragment header) and the last 8 (the table magic).
pub(crate) fn sniff(path: &Path) -> io::Result<Sniffed> {
    use std::io::{Read, Seek, SeekFrom};
    use strata_sstable::format::TABLE_MAGIC;
    use strata_wal::format::{HEADER_LEN, MAGIC};

    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(Sniffed::Empty);
    }
    let mut head = vec![0u8; (HEADER_LEN + MAGIC.len()).min(len as usize)];
    f.read_exact(&mut head)?;
    if head.get(HEADER_LEN..) == Some(&MAGIC[..]) {
        return Ok(Sniffed::RecordLog);
    }
    if head.starts_with(b"MANIFEST-") {
        return Ok(Sniffed::Current);
    }
    if len >= TABLE_MAGIC.len() as u64 {
        let mut tail = [0u8; TABLE_MAGIC.len()];
        f.seek(SeekFrom::End(-(TABLE_MAGIC.len() as i64)))?;
        f.read_exact(&mut tail)?;
        if tail == TABLE_MAGIC {
            return Ok(Sniffed::Table);
        }
    }
    Ok(Sniffed::Unknown)
}

/// The file name of `path` (for messages and reports), or the whole path.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
