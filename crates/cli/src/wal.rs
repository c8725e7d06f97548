//! `cargo xtask wal dump <file>`: every record of a write-ahead log, its decoded batch,
//! and where and why reading stopped.

use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use serde::Serialize;
use strata::inspect::{self, FileKind, VersionEdit};
use strata_wal::LogEnd;
use strata_wal::format::{BLOCK_SIZE, HEADER_LEN, MAX_FRAGMENT_PAYLOAD};

use super::dbdir::for_each_record;
use super::{CmdResult, Failure, Sniffed, emit, file_name, require_file, show, sniff};

/// `cargo xtask wal …`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Print every record of a write-ahead log (offset, length, fragments, the decoded
    /// batch with sequence numbers, puts and deletes), then where and why reading
    /// stopped: a clean end, a torn tail, or damage with intact data after it.
    Dump(DumpArgs),
}

/// Arguments of `wal dump`.
#[derive(clap::Args)]
pub struct DumpArgs {
    /// The log file (`NNNNNN.log`).
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs a `wal` command.
pub fn run(command: &Command) -> CmdResult {
    match command {
        Command::Dump(args) => dump(args),
    }
}

#[derive(Serialize)]
struct Entry {
    seq: u64,
    /// The keyspace id (0: the default keyspace; `manifest dump` names the others).
    keyspace: u32,
    kind: &'static str,
    /// The key (a range delete's start).
    key: String,
    /// A range delete's exclusive end.
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
    value_bytes: usize,
    value_preview: show::Preview,
}

#[derive(Serialize)]
struct RecordReport {
    offset: u64,
    length: usize,
    fragments: u64,
    entries: Vec<Entry>,
    /// Why the record's payload is not a write batch, if it is not.
    error: Option<String>,
}

/// How reading a log ended, for reports.
#[derive(Serialize)]
pub(crate) struct EndReport {
    /// `clean`, `preallocated` (a clean end followed by the zeros the engine reserves
    /// ahead of a WAL taking synced writes), `torn_tail`, `stopped` (damage with intact
    /// data after it) or `bad_record` (an intact record that does not decode).
    pub state: &'static str,
    /// End of the last record read.
    pub valid_length: u64,
    /// Where the damage is.
    pub damage_offset: Option<u64>,
    /// What the damage is, in words.
    pub text: String,
}

impl EndReport {
    pub(crate) fn from_log(end: &LogEnd) -> Self {
        let (state, damage_offset) = match end {
            LogEnd::Clean { .. } => ("clean", None),
            LogEnd::Preallocated { .. } => ("preallocated", None),
            LogEnd::TornTail { damage, .. } => ("torn_tail", Some(damage.offset)),
            LogEnd::Stopped { damage, .. } => ("stopped", Some(damage.offset)),
        };
        EndReport {
            state,
            valid_length: end.valid_len(),
            damage_offset,
            text: end.to_string(),
        }
    }
}

#[derive(Serialize)]
struct Summary {
    records: usize,
    entries: usize,
    puts: usize,
    deletes: usize,
    range_deletes: usize,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
}

#[derive(Serialize)]
struct WalDump {
    file: String,
    size_bytes: u64,
    records: Vec<RecordReport>,
    end: EndReport,
    summary: Summary,
    error: Option<String>,
}

/// Fragments a record of `len` bytes starting at `offset` was written as: the first
/// fills the rest of its block, each further one a whole block (`docs/format/wal.md`).
fn fragments(offset: u64, len: usize) -> u64 {
    let block = BLOCK_SIZE as u64;
    let room = (block - offset % block).saturating_sub(HEADER_LEN as u64);
    let rest = (len as u64).saturating_sub(room);
    1 + rest.div_ceil(MAX_FRAGMENT_PAYLOAD as u64)
}

fn dump(args: &DumpArgs) -> CmdResult {
    let path = &args.file;
    require_file(path)?;
    check_kind(path)?;
    let size_bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    let mut records = Vec::new();
    let mut bad: Option<(u64, String)> = None;
    let end = for_each_record(path, |r| {
        let mut report = RecordReport {
            offset: r.offset,
            length: r.data.len(),
            fragments: fragments(r.offset, r.data.len()),
            entries: Vec::new(),
            error: None,
        };
        match inspect::decode_wal_batch(&r.data) {
            Ok(batch) => {
                report.entries = batch
                    .into_iter()
                    .map(|e| {
                        let range = e.kind == strata::inspect::BatchOp::DeleteRange;
                        Entry {
                            seq: e.seq,
                            keyspace: e.keyspace,
                            kind: show::batch_kind(e.kind),
                            key: show::plain(&e.key),
                            end: range.then(|| show::plain(&e.value)),
                            value_bytes: if range { 0 } else { e.value.len() },
                            value_preview: show::Preview::of(if range { &[] } else { &e.value }),
                        }
                    })
                    .collect();
            }
            Err(reason) => {
                let mut why = format!("not a write batch: {reason}");
                if VersionEdit::decode(&r.data).is_ok() {
                    why.push_str(" (it decodes as a version edit: is this a manifest?)");
                }
                report.error = Some(why.clone());
                bad = Some((r.offset, why));
            }
        }
        records.push(report);
        if bad.is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    let end = match (&bad, end) {
        (Some((offset, why)), _) => EndReport {
            state: "bad_record",
            valid_length: *offset,
            damage_offset: Some(*offset),
            text: format!("record at offset {offset} is {why}"),
        },
        (None, Some(end)) => EndReport::from_log(&end),
        (None, None) => EndReport {
            state: "bad_record",
            valid_length: 0,
            damage_offset: None,
            text: "reading stopped without a report".into(),
        },
    };
    let entries = records.iter().flat_map(|r| &r.entries);
    let summary = Summary {
        records: records.len(),
        entries: entries.clone().count(),
        puts: entries.clone().filter(|e| e.kind == "put").count(),
        deletes: entries.clone().filter(|e| e.kind == "del").count(),
        range_deletes: entries.clone().filter(|e| e.kind == "delrange").count(),
        first_seq: entries.clone().map(|e| e.seq).min(),
        last_seq: entries.map(|e| e.seq).max(),
    };
    let error = (!matches!(end.state, "clean" | "preallocated")).then(|| {
        format!(
            "{}: {}; read {} ({}) before it",
            path.display(),
            end.text,
            show::count(
                (summary.records - usize::from(bad.is_some())) as u64,
                "record",
                "records"
            ),
            show::count(summary.entries as u64, "entry", "entries")
        )
    });
    let report = WalDump {
        file: file_name(path),
        size_bytes,
        records,
        end,
        summary,
        error,
    };
    emit(args.json, &report, render)?;
    match report.error {
        Some(e) => Err(Failure::new(e)),
        None => Ok(()),
    }
}

/// Refuses files that are clearly something else, naming the right command.
fn check_kind(path: &Path) -> CmdResult {
    let by_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(inspect::classify);
    let sniffed = sniff(path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    match (sniffed, by_name) {
        (Sniffed::RecordLog, Some(FileKind::Manifest(_))) => Err(Failure::new(format!(
            "{}: is a manifest, not a write-ahead log; try `cargo xtask manifest dump`",
            path.display()
        ))),
        (Sniffed::RecordLog, _) => Ok(()),
        (Sniffed::Table, _) => Err(Failure::new(format!(
            "{}: is a table, not a write-ahead log; try `cargo xtask sst dump`",
            path.display()
        ))),
        // Empty (a fresh log), damaged at the start, or truly foreign: the reader says
        // which.
        _ => Ok(()),
    }
}

fn render(d: &WalDump, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}: write-ahead log, {} bytes", d.file, d.size_bytes)?;
    for (i, r) in d.records.iter().enumerate() {
        let frags = show::count(r.fragments, "fragment", "fragments");
        let batch = match (r.entries.first(), r.entries.last()) {
            (Some(first), Some(last)) if first.seq == last.seq => {
                format!("seq {} (1 entry)", first.seq)
            }
            (Some(first), Some(last)) => format!(
                "seq {}..{} ({} entries)",
                first.seq,
                last.seq,
                r.entries.len()
            ),
            _ => "empty batch".to_owned(),
        };
        writeln!(
            out,
            "@{:<8} record {i}: {} bytes, {frags}, {batch}",
            r.offset, r.length
        )?;
        if let Some(e) = &r.error {
            writeln!(out, "    {e}")?;
        }
        for e in &r.entries {
            // Another keyspace's entries name it; the default keyspace's are as before.
            let key = match e.keyspace {
                0 => show::key_from_plain(&e.key),
                ks => format!("keyspace {ks}: {}", show::key_from_plain(&e.key)),
            };
            if e.kind == "put" {
                writeln!(
                    out,
                    "    {key} seq:{}, type:put => {} ({} B)",
                    e.seq, e.value_preview, e.value_bytes
                )?;
            } else if let Some(end) = &e.end {
                let end = show::key_from_plain(end);
                writeln!(out, "    [{key} .. {end}) seq:{}, type:delrange", e.seq)?;
            } else {
                writeln!(out, "    {key} seq:{}, type:del", e.seq)?;
            }
        }
    }
    writeln!(out, "end: {}", d.end.text)?;
    let s = &d.summary;
    let seqs = match (s.first_seq, s.last_seq) {
        (Some(a), Some(b)) if a == b => format!(", sequence number {a}"),
        (Some(a), Some(b)) => format!(", sequence numbers {a}..{b}"),
        _ => String::new(),
    };
    let ranges = if s.range_deletes == 0 {
        String::new()
    } else {
        format!(
            ", {}",
            show::count(s.range_deletes as u64, "range delete", "range deletes")
        )
    };
    writeln!(
        out,
        "summary: {}, {} ({}, {}{ranges}){seqs}",
        show::count(s.records as u64, "record", "records"),
        show::count(s.entries as u64, "entry", "entries"),
        show::count(s.puts as u64, "put", "puts"),
        show::count(s.deletes as u64, "delete", "deletes")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_counts_follow_the_block_layout() {
        let block = BLOCK_SIZE as u64;
        assert_eq!(fragments(19, 100), 1);
        // Exactly filling the rest of the first block is still one fragment.
        assert_eq!(fragments(19, (block - 19) as usize - HEADER_LEN), 1);
        assert_eq!(fragments(19, (block - 19) as usize - HEADER_LEN + 1), 2);
        assert_eq!(fragments(0, 3 * MAX_FRAGMENT_PAYLOAD), 3);
        assert_eq!(fragments(0, 3 * MAX_FRAGMENT_PAYLOAD + 1), 4);
    }
}
