//! `cargo xtask manifest dump <dir|file>`: every version edit of the manifest, then the
//! levels they add up to.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use strata::inspect::FileMeta;

use super::dbdir::{self, Counters, Manifest};
use super::show::{self, IKey};
use super::{CmdResult, Failure, Sniffed, emit, file_name, sniff};

/// `cargo xtask manifest …`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Print every version edit of a database's manifest (the one `CURRENT` names, or a
    /// manifest file given directly), then the live files per level they add up to.
    Dump(DumpArgs),
}

/// Arguments of `manifest dump`.
#[derive(clap::Args)]
pub struct DumpArgs {
    /// The database directory, or a `MANIFEST-NNNNNN` file.
    path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs a `manifest` command.
pub fn run(command: &Command) -> CmdResult {
    match command {
        Command::Dump(args) => dump(args),
    }
}

/// A table as the manifest describes it.
#[derive(Serialize)]
pub(crate) struct FileReport {
    pub level: usize,
    pub number: u64,
    pub size_bytes: u64,
    pub entries: u64,
    pub tombstones: u64,
    /// Range tombstones (`(fragment, sequence)` pairs) in the table's range-deletion
    /// block; the key and sequence ranges cover them.
    pub range_tombstones: u64,
    pub smallest_seq: u64,
    pub largest_seq: u64,
    pub smallest: Option<IKey>,
    pub largest: Option<IKey>,
}

impl FileReport {
    pub(crate) fn new(level: usize, m: &FileMeta) -> Self {
        FileReport {
            level,
            number: m.number,
            size_bytes: m.size_bytes,
            entries: m.entries,
            tombstones: m.tombstones,
            range_tombstones: m.range_tombstones,
            smallest_seq: m.smallest_seq,
            largest_seq: m.largest_seq,
            smallest: IKey::parse(m.smallest.as_bytes()),
            largest: IKey::parse(m.largest.as_bytes()),
        }
    }

    fn text(&self) -> String {
        let key = |k: &Option<IKey>| k.as_ref().map_or_else(|| "?".to_owned(), IKey::text);
        let ranges = if self.range_tombstones == 0 {
            String::new()
        } else {
            format!(
                "  {}",
                show::count(self.range_tombstones, "range tombstone", "range tombstones")
            )
        };
        format!(
            "L{} {:06}.sst  {:>9}  {:>15}  {:>14}{ranges}  seq {}..{}  {} .. {}",
            self.level,
            self.number,
            show::size(self.size_bytes),
            show::count(self.entries, "entry", "entries"),
            show::count(self.tombstones, "tombstone", "tombstones"),
            self.smallest_seq,
            self.largest_seq,
            key(&self.smallest),
            key(&self.largest)
        )
    }
}

#[derive(Serialize)]
struct EditReport {
    offset: u64,
    format_version: Option<u32>,
    log_number: Option<u64>,
    next_file_number: Option<u64>,
    last_sequence: Option<u64>,
    /// The keyspace the edit's files belong to (0: the default keyspace).
    keyspace: u32,
    flushed_seq: Option<u64>,
    next_keyspace_id: Option<u32>,
    new_keyspaces: Vec<NewKeyspace>,
    dropped_keyspaces: Vec<u32>,
    deleted_files: Vec<DeletedFile>,
    new_files: Vec<FileReport>,
}

#[derive(Serialize)]
struct NewKeyspace {
    id: u32,
    name: String,
}

#[derive(Serialize)]
struct DeletedFile {
    level: usize,
    number: u64,
}

#[derive(Serialize)]
struct LevelReport {
    level: usize,
    files: usize,
    size_bytes: u64,
    entries: u64,
    tombstones: u64,
    range_tombstones: u64,
    tables: Vec<FileReport>,
}

#[derive(Serialize)]
struct ManifestDump {
    file: String,
    named_by_current: bool,
    size_bytes: u64,
    edits: Vec<EditReport>,
    end: String,
    counters: Counters,
    levels: Vec<LevelReport>,
    error: Option<String>,
}

fn dump(args: &DumpArgs) -> CmdResult {
    let (path, named_by_current) = resolve(&args.path)?;
    let manifest = dbdir::read_manifest(&path)?;
    let report = report(&manifest, named_by_current);
    emit(args.json, &report, render)?;
    report.error.map_or(Ok(()), |e| Err(Failure::new(e)))
}

/// A directory's current manifest, or a manifest file given directly (refusing other
/// kinds of file with a hint).
fn resolve(path: &Path) -> Result<(PathBuf, bool), Failure> {
    if path.is_dir() {
        return Ok((dbdir::current_manifest(path)?, true));
    }
    super::require_file(path)?;
    let sniffed = sniff(path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    match sniffed {
        Sniffed::RecordLog | Sniffed::Unknown => Ok((path.to_path_buf(), false)),
        Sniffed::Current => Err(Failure::new(format!(
            "{}: is a CURRENT file; give the database directory instead",
            path.display()
        ))),
        other => Err(Failure::new(format!(
            "{}: is {}, not a manifest{}",
            path.display(),
            other.describe(),
            if other == Sniffed::Table {
                "; try `cargo xtask sst dump`"
            } else {
                ""
            }
        ))),
    }
}

fn report(m: &Manifest, named_by_current: bool) -> ManifestDump {
    let edits = m
        .records
        .iter()
        .map(|r| {
            let e = &r.edit;
            EditReport {
                offset: r.offset,
                format_version: e.format_version,
                log_number: e.log_number,
                next_file_number: e.next_file_number,
                last_sequence: e.last_sequence,
                keyspace: e.keyspace,
                flushed_seq: e.flushed_seq,
                next_keyspace_id: e.next_keyspace_id,
                new_keyspaces: e
                    .new_keyspaces
                    .iter()
                    .map(|(id, name)| NewKeyspace {
                        id: *id,
                        name: name.clone(),
                    })
                    .collect(),
                dropped_keyspaces: e.dropped_keyspaces.clone(),
                deleted_files: e
                    .deleted_files
                    .iter()
                    .map(|&(level, number)| DeletedFile { level, number })
                    .collect(),
                new_files: e
                    .new_files
                    .iter()
                    .map(|(level, f)| FileReport::new(*level, f))
                    .collect(),
            }
        })
        .collect();
    let levels = m
        .levels()
        .iter()
        .enumerate()
        .map(|(level, files)| LevelReport {
            level,
            files: files.len(),
            size_bytes: files.iter().map(|f| f.size_bytes).sum(),
            entries: files.iter().map(|f| f.entries).sum(),
            tombstones: files.iter().map(|f| f.tombstones).sum(),
            range_tombstones: files.iter().map(|f| f.range_tombstones).sum(),
            tables: files.iter().map(|f| FileReport::new(level, f)).collect(),
        })
        .collect();
    let end = m.end_text();
    let error = (!m.ended_cleanly()).then(|| {
        format!(
            "{}: {end}; {} read before it",
            m.path.display(),
            show::count(m.records.len() as u64, "edit", "edits")
        )
    });
    ManifestDump {
        file: file_name(&m.path),
        named_by_current,
        size_bytes: std::fs::metadata(&m.path).map_or(0, |md| md.len()),
        edits,
        end,
        counters: m.counters(),
        levels,
        error,
    }
}

fn render(d: &ManifestDump, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{}{}: {} bytes, {}",
        d.file,
        if d.named_by_current {
            " (named by CURRENT)"
        } else {
            ""
        },
        d.size_bytes,
        show::count(d.edits.len() as u64, "edit", "edits")
    )?;
    for (i, e) in d.edits.iter().enumerate() {
        let mut fields = Vec::new();
        if let Some(v) = e.format_version {
            fields.push(format!("format v{v}"));
        }
        if let Some(v) = e.log_number {
            fields.push(format!("log number {v}"));
        }
        if let Some(v) = e.next_file_number {
            fields.push(format!("next file {v}"));
        }
        if let Some(v) = e.last_sequence {
            fields.push(format!("last sequence {v}"));
        }
        if let Some(v) = e.next_keyspace_id {
            fields.push(format!("next keyspace id {v}"));
        }
        for k in &e.new_keyspaces {
            fields.push(format!("new keyspace {} {:?}", k.id, k.name));
        }
        for id in &e.dropped_keyspaces {
            fields.push(format!("dropped keyspace {id}"));
        }
        if e.keyspace != 0 {
            fields.push(format!("keyspace {}", e.keyspace));
        }
        if let Some(v) = e.flushed_seq {
            fields.push(format!("flushed sequence {v}"));
        }
        let fields = if fields.is_empty() {
            String::new()
        } else {
            format!(": {}", fields.join(", "))
        };
        writeln!(out, "@{:<8} edit {i}{fields}", e.offset)?;
        for f in &e.deleted_files {
            writeln!(out, "    - L{} {:06}.sst", f.level, f.number)?;
        }
        for f in &e.new_files {
            writeln!(out, "    + {}", f.text())?;
        }
    }
    writeln!(out, "end: {}", d.end)?;
    let c = &d.counters;
    writeln!(
        out,
        "\nlevels after {} (log number {}, next file {}, last sequence {}):",
        show::count(d.edits.len() as u64, "edit", "edits"),
        c.log_number,
        c.next_file_number,
        c.last_sequence
    )?;
    let mut any = false;
    for l in d.levels.iter().filter(|l| l.files > 0) {
        any = true;
        let ranges = if l.range_tombstones == 0 {
            String::new()
        } else {
            format!(
                ", {}",
                show::count(l.range_tombstones, "range tombstone", "range tombstones")
            )
        };
        writeln!(
            out,
            "  L{}: {}, {}, {}, {}{ranges}",
            l.level,
            show::count(l.files as u64, "file", "files"),
            show::size(l.size_bytes),
            show::count(l.entries, "entry", "entries"),
            show::count(l.tombstones, "tombstone", "tombstones")
        )?;
        for f in &l.tables {
            writeln!(out, "    {}", f.text())?;
        }
    }
    if !any {
        writeln!(out, "  (no tables)")?;
    }
    Ok(())
}
