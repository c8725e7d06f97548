//! `cargo xtask sst dump <file> [--entries]` and `sst get <file> <key>`: a table's
//! footer, properties, index, Bloom filter and range tombstones, its entries, and how a
//! point lookup in it goes (range tombstones included, as the engine weighs them).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use strata::inspect::{self, FileKind};
use strata_core::FileSystem;
use strata_core::{Error, InternalKey, Lookup, MAX_SEQUENCE, ParsedInternalKey, SortedIter, StdFs};
use strata_sstable::filter::{blocked_fp_rate, theoretical_fp_rate};
use strata_sstable::{BlockHandle, Compression, FilterAnswer, FilterStatus, Footer, Table};

use super::show::{self, IKey};
use super::{CmdResult, Failure, Sniffed, describe, emit, file_name, require_file, sniff};

/// `cargo xtask sst …`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Print a table's footer, properties, index (block handles and separator keys),
    /// Bloom filter statistics and range tombstones; with `--entries`, every internal
    /// key and value size.
    Dump(DumpArgs),
    /// Look a key up in one table: the Bloom filter's answer, the index entry and data
    /// block read, and the result; then every version of the key the table holds.
    Get(GetArgs),
}

/// Arguments of `sst dump`.
#[derive(clap::Args)]
pub struct DumpArgs {
    /// The table file (`NNNNNN.sst`).
    file: PathBuf,
    /// Also print every entry (user key, sequence, kind, value size).
    #[arg(long)]
    entries: bool,
    /// Index entries to print (the first ones); 0 prints all. A 64 MiB table has
    /// thousands.
    #[arg(long, default_value_t = 20)]
    index_limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Arguments of `sst get`.
#[derive(clap::Args)]
pub struct GetArgs {
    /// The table file (`NNNNNN.sst`).
    file: PathBuf,
    /// The user key: UTF-8, or hex after `0x`.
    key: String,
    /// Read as of this sequence number (default: the newest).
    #[arg(long)]
    snapshot: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs an `sst` command.
pub fn run(command: &Command) -> CmdResult {
    match command {
        Command::Dump(args) => dump(args),
        Command::Get(args) => get(args),
    }
}

/// Which part of a table holds `offset`, given its footer.
pub(crate) fn region(footer: &Footer, offset: u64) -> &'static str {
    if offset >= footer.offset {
        "the footer"
    } else if offset >= footer.index.offset {
        "the index block"
    } else if offset >= footer.properties.offset {
        "the properties block"
    } else if footer.range_del.is_some_and(|r| offset >= r.offset) {
        "the range-deletion block"
    } else if offset >= footer.filter.offset {
        "the filter block"
    } else {
        "a data block"
    }
}

/// Opens the table at `path` (no block cache), with clear errors for the wrong kind of
/// file and, when the table does not open, what could still be read (its footer).
pub(crate) fn open_table(path: &Path) -> Result<Arc<Table>, Failure> {
    require_file(path)?;
    let sniffed = sniff(path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    match sniffed {
        Sniffed::RecordLog | Sniffed::Current | Sniffed::Empty => {
            let hint = match sniffed {
                Sniffed::RecordLog => "; try `cargo xtask wal dump` or `manifest dump`",
                _ => "",
            };
            return Err(Failure::new(format!(
                "{}: is {}, not a table{hint}",
                path.display(),
                sniffed.describe()
            )));
        }
        Sniffed::Table | Sniffed::Unknown => {}
    }
    let number = match path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(inspect::classify)
    {
        Some(FileKind::Table(n)) => n,
        _ => 0,
    };
    let file = StdFs.open(path).map_err(|e| Failure::at(path, &e))?;
    Table::open(Arc::clone(&file), number, None).map_err(|e| {
        let mut msg = format!("{}: {}", path.display(), describe(&e));
        if let (Error::Corruption { offset, .. }, Ok(footer)) = (&e, Table::read_footer(&*file)) {
            let range_del = footer
                .range_del
                .map(|r| format!(", range deletions @{}", r.offset))
                .unwrap_or_default();
            msg.push_str(&format!(
                " — in {}; the footer still reads (filter @{}{range_del}, properties @{}, index @{})",
                region(&footer, *offset),
                footer.filter.offset,
                footer.properties.offset,
                footer.index.offset
            ));
        }
        Failure::new(msg)
    })
}

#[derive(Serialize)]
struct Handle {
    offset: u64,
    size: u64,
}

impl From<BlockHandle> for Handle {
    fn from(h: BlockHandle) -> Self {
        Handle {
            offset: h.offset,
            size: h.size,
        }
    }
}

#[derive(Serialize)]
struct FooterReport {
    offset: u64,
    format_version: u32,
    file_id: String,
    filter: Handle,
    /// The range-deletion block (format version 3 only).
    range_del: Option<Handle>,
    properties: Handle,
    index: Handle,
}

#[derive(Serialize)]
struct Properties {
    entries: u64,
    tombstones: u64,
    /// Range tombstones in the range-deletion block: `(fragment, sequence)` pairs.
    range_tombstones: u64,
    distinct_user_keys: u64,
    smallest_key: Option<IKey>,
    largest_key: Option<IKey>,
    smallest_seq: u64,
    largest_seq: u64,
    raw_key_bytes: u64,
    raw_value_bytes: u64,
    data_blocks: u64,
    data_bytes_on_disk: u64,
    data_bytes_uncompressed: u64,
    compression: &'static str,
    bloom_bits_per_key: u32,
    block_size_bytes: u32,
    restart_interval: u32,
}

#[derive(Serialize)]
struct FilterReport {
    /// `bloom`, `none` (written without a filter) or `unusable` (damaged).
    state: &'static str,
    bits: u64,
    probes: u32,
    bits_set: u64,
    /// False-positive rate estimated from the fill ratio: `(bits_set / bits)^k`.
    estimated_fp_rate: f64,
    /// The textbook rate for this many bits, keys and probes.
    theoretical_fp_rate: f64,
    reason: Option<String>,
}

#[derive(Serialize)]
struct IndexRow {
    block: usize,
    offset: u64,
    size: u64,
    separator: Option<IKey>,
}

/// One stored range tombstone: keys `start <= k < end` deleted as of `seq`. A table
/// stores them fragmented (see `strata_core::range_del`), so these are fragments.
#[derive(Clone, Serialize)]
pub(crate) struct RangeTombstoneRow {
    pub start: String,
    pub end: String,
    pub seq: u64,
}

impl RangeTombstoneRow {
    pub(crate) fn new(start: &[u8], end: &[u8], seq: u64) -> Self {
        RangeTombstoneRow {
            start: show::plain(start),
            end: show::plain(end),
            seq,
        }
    }

    /// `['a' .. 'c') @12`, for text output.
    pub(crate) fn text(&self) -> String {
        format!(
            "[{} .. {}) @{}",
            show::key_from_plain(&self.start),
            show::key_from_plain(&self.end),
            self.seq
        )
    }
}

#[derive(Serialize)]
struct EntryRow {
    key: Option<IKey>,
    value_bytes: usize,
    value_preview: show::Preview,
}

#[derive(Serialize)]
struct SstDump {
    file: String,
    size_bytes: u64,
    footer: FooterReport,
    properties: Properties,
    filter: FilterReport,
    /// Data blocks in the index, all of them.
    index_blocks: usize,
    /// The first `--index-limit` index entries.
    index: Vec<IndexRow>,
    /// Every range tombstone of the range-deletion block: start ascending, then newest
    /// first (the order the block stores them in).
    range_tombstones: Vec<RangeTombstoneRow>,
    entries: Option<Vec<EntryRow>>,
    error: Option<String>,
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

fn filter_report(table: &Table) -> FilterReport {
    let keys = table.properties().distinct_user_keys;
    match table.filter_status() {
        FilterStatus::Loaded {
            bits,
            probes,
            bits_set,
            blocked,
        } => {
            let fill = if bits == 0 {
                1.0
            } else {
                bits_set as f64 / bits as f64
            };
            FilterReport {
                state: if blocked { "blocked bloom" } else { "bloom" },
                bits,
                probes,
                bits_set,
                estimated_fp_rate: fill.powi(probes as i32),
                theoretical_fp_rate: if blocked {
                    blocked_fp_rate(bits, keys, probes)
                } else {
                    theoretical_fp_rate(bits, keys, probes)
                },
                reason: None,
            }
        }
        FilterStatus::Empty => FilterReport {
            state: "none",
            bits: 0,
            probes: 0,
            bits_set: 0,
            estimated_fp_rate: 1.0,
            theoretical_fp_rate: 1.0,
            reason: None,
        },
        FilterStatus::UnknownKind { kind } => FilterReport {
            state: "unknown kind",
            bits: 0,
            probes: 0,
            bits_set: 0,
            estimated_fp_rate: 1.0,
            theoretical_fp_rate: 1.0,
            reason: Some(format!(
                "filter kind {kind}, written by a newer build; not damage"
            )),
        },
        FilterStatus::Unusable { reason } => FilterReport {
            state: "unusable",
            bits: 0,
            probes: 0,
            bits_set: 0,
            estimated_fp_rate: 1.0,
            theoretical_fp_rate: 1.0,
            reason: Some(reason),
        },
    }
}

fn dump(args: &DumpArgs) -> CmdResult {
    let path = &args.file;
    let table = open_table(path)?;
    let f = table.footer();
    let p = table.properties();
    let filter = filter_report(&table);
    let unusable = filter
        .reason
        .as_ref()
        .filter(|_| filter.state == "unusable");
    let mut error = unusable.map(|r| {
        format!(
            "{}: the filter block at offset {} is unusable ({r}); lookups read data blocks instead",
            path.display(),
            f.filter.offset
        )
    });
    let entries = if args.entries {
        let (rows, failed) = read_entries(&table);
        if let Some(e) = failed {
            error = Some(format!(
                "{}: {} — {} read before it",
                path.display(),
                describe(&e),
                show::count(rows.len() as u64, "entry", "entries")
            ));
        }
        Some(rows)
    } else {
        None
    };
    let report = SstDump {
        file: file_name(path),
        size_bytes: table.file_size(),
        footer: FooterReport {
            offset: f.offset,
            format_version: f.version.as_u32(),
            file_id: format!("{:016x}", f.file_id),
            filter: f.filter.into(),
            range_del: f.range_del.map(Handle::from),
            properties: f.properties.into(),
            index: f.index.into(),
        },
        properties: Properties {
            entries: p.entry_count,
            tombstones: p.tombstone_count,
            range_tombstones: table.range_tombstones().len() as u64,
            distinct_user_keys: p.distinct_user_keys,
            smallest_key: IKey::parse(p.smallest_key.as_bytes()),
            largest_key: IKey::parse(p.largest_key.as_bytes()),
            smallest_seq: p.smallest_seq,
            largest_seq: p.largest_seq,
            raw_key_bytes: p.raw_key_bytes,
            raw_value_bytes: p.raw_value_bytes,
            data_blocks: p.data_block_count,
            data_bytes_on_disk: p.data_bytes_on_disk,
            data_bytes_uncompressed: p.data_bytes_uncompressed,
            compression: compression_name(p.compression),
            bloom_bits_per_key: p.bloom_bits_per_key,
            block_size_bytes: p.block_size_bytes,
            restart_interval: p.restart_interval,
        },
        filter,
        index_blocks: table.index_entries().len(),
        index: table
            .index_entries()
            .take(match args.index_limit {
                0 => usize::MAX,
                n => n,
            })
            .enumerate()
            .map(|(block, e)| IndexRow {
                block,
                offset: e.handle.offset,
                size: e.handle.size,
                separator: IKey::parse(e.separator),
            })
            .collect(),
        range_tombstones: table
            .range_tombstones()
            .entries()
            .map(|(start, end, seq)| RangeTombstoneRow::new(start, end, seq))
            .collect(),
        entries,
        error,
    };
    emit(args.json, &report, render_dump)?;
    report.error.map_or(Ok(()), |e| Err(Failure::new(e)))
}

/// Every entry, in order, up to the first damage (returned with what was read).
fn read_entries(table: &Arc<Table>) -> (Vec<EntryRow>, Option<Error>) {
    let mut rows = Vec::new();
    let mut it = table.iter_uncached();
    let mut step = it.seek_to_first();
    while step.is_ok() && it.valid() {
        rows.push(EntryRow {
            key: IKey::parse(it.key()),
            value_bytes: it.value().len(),
            value_preview: show::Preview::of(it.value()),
        });
        step = it.next();
    }
    (rows, step.err())
}

fn handle_text(h: &Handle) -> String {
    format!("@{} ({} B)", h.offset, h.size)
}

fn ikey_text(k: &Option<IKey>) -> String {
    k.as_ref()
        .map_or_else(|| "<malformed internal key>".to_owned(), IKey::text)
}

fn percent(rate: f64) -> String {
    format!("{:.2} %", rate * 100.0)
}

fn render_dump(d: &SstDump, out: &mut dyn Write) -> io::Result<()> {
    let f = &d.footer;
    writeln!(
        out,
        "{}: table, format v{}, {} bytes ({}), file id {}",
        d.file,
        f.format_version,
        d.size_bytes,
        show::size(d.size_bytes),
        f.file_id
    )?;
    writeln!(out, "footer @{}", f.offset)?;
    writeln!(out, "  filter block      {}", handle_text(&f.filter))?;
    if let Some(r) = &f.range_del {
        writeln!(out, "  range-del block   {}", handle_text(r))?;
    }
    writeln!(out, "  properties block  {}", handle_text(&f.properties))?;
    writeln!(out, "  index block       {}", handle_text(&f.index))?;
    let p = &d.properties;
    writeln!(out, "properties")?;
    writeln!(
        out,
        "  entries           {} ({}), {}",
        p.entries,
        show::count(p.tombstones, "tombstone", "tombstones"),
        show::count(
            p.distinct_user_keys,
            "distinct user key",
            "distinct user keys"
        )
    )?;
    if f.range_del.is_some() {
        writeln!(
            out,
            "  range tombstones  {} (in the range-deletion block)",
            p.range_tombstones
        )?;
    }
    writeln!(out, "  smallest key      {}", ikey_text(&p.smallest_key))?;
    writeln!(out, "  largest key       {}", ikey_text(&p.largest_key))?;
    writeln!(
        out,
        "  sequence numbers  {}..{}",
        p.smallest_seq, p.largest_seq
    )?;
    writeln!(
        out,
        "  raw sizes         keys {}, values {}",
        show::size(p.raw_key_bytes),
        show::size(p.raw_value_bytes)
    )?;
    writeln!(
        out,
        "  data blocks       {}: {} on disk, {} uncompressed, compression {}",
        p.data_blocks,
        show::size(p.data_bytes_on_disk),
        show::size(p.data_bytes_uncompressed),
        p.compression
    )?;
    writeln!(
        out,
        "  written with      block size {} B, restart interval {}, {} Bloom bits per key",
        p.block_size_bytes, p.restart_interval, p.bloom_bits_per_key
    )?;
    let b = &d.filter;
    match b.state {
        "bloom" | "blocked bloom" => {
            writeln!(
                out,
                "filter: {}, {} bits ({}), {} probes, {} bits set ({:.1} %)",
                if b.state == "bloom" {
                    "Bloom"
                } else {
                    "Bloom in 512-bit blocks"
                },
                b.bits,
                show::size(b.bits / 8),
                b.probes,
                b.bits_set,
                if b.bits == 0 {
                    0.0
                } else {
                    100.0 * b.bits_set as f64 / b.bits as f64
                }
            )?;
            writeln!(
                out,
                "  false-positive rate: {} estimated from the fill ratio, {} in theory for {} keys",
                percent(b.estimated_fp_rate),
                percent(b.theoretical_fp_rate),
                p.distinct_user_keys
            )?;
        }
        "none" => writeln!(
            out,
            "filter: none (written without one: every lookup reads a block)"
        )?,
        "unknown kind" => writeln!(
            out,
            "filter: {}; lookups read data blocks instead",
            b.reason.as_deref().unwrap_or("?")
        )?,
        _ => writeln!(
            out,
            "filter: UNUSABLE ({}); lookups read data blocks instead",
            b.reason.as_deref().unwrap_or("?")
        )?,
    }
    writeln!(
        out,
        "index: {}",
        show::count(d.index_blocks as u64, "data block", "data blocks")
    )?;
    writeln!(
        out,
        "  {:>5}  {:>10}  {:>7}  separator",
        "block", "offset", "size"
    )?;
    for r in &d.index {
        writeln!(
            out,
            "  {:>5}  {:>10}  {:>7}  {}",
            r.block,
            r.offset,
            r.size,
            ikey_text(&r.separator)
        )?;
    }
    if d.index.len() < d.index_blocks {
        writeln!(
            out,
            "  … {} more (--index-limit 0 prints all)",
            d.index_blocks - d.index.len()
        )?;
    }
    if f.range_del.is_some() {
        writeln!(
            out,
            "range tombstones: {} (fragments; start ascending, newest first)",
            d.range_tombstones.len()
        )?;
        for r in &d.range_tombstones {
            writeln!(out, "  {}", r.text())?;
        }
    }
    if let Some(entries) = &d.entries {
        writeln!(out, "entries: {}", entries.len())?;
        for e in entries {
            let line = match &e.key {
                Some(k) if k.kind == "put" => format!(
                    "{} seq:{}, type:put => {} ({} B)",
                    show::key_from_plain(&k.user_key),
                    k.seq,
                    e.value_preview,
                    e.value_bytes
                ),
                Some(k) => format!(
                    "{} seq:{}, type:del",
                    show::key_from_plain(&k.user_key),
                    k.seq
                ),
                None => "<malformed internal key>".to_owned(),
            };
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Version {
    seq: u64,
    kind: &'static str,
    value_bytes: usize,
    value_preview: show::Preview,
}

#[derive(Serialize)]
struct SstGet {
    file: String,
    key: String,
    snapshot: Option<u64>,
    /// `may_contain`, `absent` or `no_filter`.
    bloom: &'static str,
    /// The index entry the lookup used, if it read a block.
    block: Option<IndexRow>,
    /// `found`, `deleted` or `absent`.
    result: &'static str,
    value_bytes: Option<usize>,
    value_preview: Option<show::Preview>,
    /// Every version of the key in the table, newest first (at most 20).
    versions: Vec<Version>,
    /// Whether the filter said "may contain" for a key the table does not hold.
    bloom_false_positive: bool,
    /// The newest range tombstone of the table covering the key at the snapshot.
    range_tombstone: Option<RangeTombstoneRow>,
    /// Whether that tombstone is what deletes the key (it is newer than every visible
    /// version here, or there is none).
    range_deleted: bool,
}

/// The newest range tombstone of `table` covering `key` that a reader at `snapshot`
/// sees: the fragment holding the key, with that tombstone's sequence number.
pub(crate) fn covering_tombstone(
    table: &Table,
    key: &[u8],
    snapshot: u64,
) -> Option<RangeTombstoneRow> {
    let fragment = table.range_tombstones().fragment_at(key)?;
    let seq = fragment.newest_visible(snapshot)?;
    Some(RangeTombstoneRow::new(
        fragment.start(),
        fragment.end(),
        seq,
    ))
}

pub(crate) fn bloom_name(a: FilterAnswer) -> &'static str {
    match a {
        FilterAnswer::Absent => "absent",
        FilterAnswer::MayContain => "may_contain",
        FilterAnswer::NoFilter => "no_filter",
    }
}

pub(crate) fn bloom_text(a: FilterAnswer) -> &'static str {
    match a {
        FilterAnswer::Absent => "absent (certainly not here)",
        FilterAnswer::MayContain => "may contain",
        FilterAnswer::NoFilter => "no usable filter (every key may be here)",
    }
}

/// Versions of `user_key` in the table (newest first, at most `limit`).
fn versions(table: &Arc<Table>, user_key: &[u8], limit: usize) -> Result<Vec<Version>, Error> {
    let mut it = table.iter_uncached();
    it.seek(InternalKey::for_seek(user_key, MAX_SEQUENCE).as_bytes())?;
    let mut out = Vec::new();
    while it.valid() && out.len() < limit {
        match ParsedInternalKey::parse(it.key()) {
            Some(p) if p.user_key == user_key => out.push(Version {
                seq: p.seq,
                kind: show::kind(p.kind),
                value_bytes: it.value().len(),
                value_preview: show::Preview::of(it.value()),
            }),
            _ => break,
        }
        it.next()?;
    }
    Ok(out)
}

fn get(args: &GetArgs) -> CmdResult {
    let path = &args.file;
    let key = show::parse_key(&args.key).map_err(Failure::new)?;
    let table = open_table(path)?;
    let snapshot = args.snapshot.unwrap_or(MAX_SEQUENCE);
    let (point, trace) = table
        .get_versioned(&key, snapshot)
        .map_err(|e| Failure::at(path, &e))?;
    // As the engine weighs one table: its newest visible entry of the key against the
    // newest visible range tombstone of the table covering the key.
    let cover = covering_tombstone(&table, &key, snapshot);
    let range_deleted = match (&point, &cover) {
        (Some((seq, _)), Some(t)) => t.seq > *seq,
        (None, Some(_)) => true,
        (_, None) => false,
    };
    let lookup = Lookup::resolve(point, cover.as_ref().map(|t| t.seq));
    let block = trace.data_block.map(|h| {
        let (i, separator) = table
            .index_entries()
            .enumerate()
            .find(|(_, e)| e.handle == h)
            .map_or((0, None), |(i, e)| (i, IKey::parse(e.separator)));
        IndexRow {
            block: i,
            offset: h.offset,
            size: h.size,
            separator,
        }
    });
    let versions = versions(&table, &key, 20).map_err(|e| Failure::at(path, &e))?;
    let (result, value) = match &lookup {
        Lookup::Found(v) => ("found", Some(v)),
        Lookup::Deleted => ("deleted", None),
        // The value folds this operand with older entries (see `versions`).
        Lookup::Merge => ("merge", None),
        // Shown whatever the time: `versions` gives the stored bytes, expiry first.
        Lookup::Expiring { value, .. } => ("found", Some(value)),
        Lookup::Absent => ("absent", None),
    };
    let report = SstGet {
        file: file_name(path),
        key: show::plain(&key),
        snapshot: args.snapshot,
        bloom: bloom_name(trace.filter),
        block,
        result,
        value_bytes: value.map(|v| v.len()),
        value_preview: value.map(|v| show::Preview::of(v)),
        bloom_false_positive: trace.filter == FilterAnswer::MayContain && versions.is_empty(),
        versions,
        range_tombstone: cover,
        range_deleted,
    };
    emit(args.json, &report, |g, out| {
        render_get(g, trace.filter, out)
    })
}

fn render_get(g: &SstGet, filter: FilterAnswer, out: &mut dyn Write) -> io::Result<()> {
    let key = show::key_from_plain(&g.key);
    let at = g.snapshot.map_or_else(
        || "the newest sequence".to_owned(),
        |s| format!("sequence {s}"),
    );
    writeln!(out, "{}: lookup of {key} at {at}", g.file)?;
    writeln!(out, "  Bloom filter: {}", bloom_text(filter))?;
    match &g.block {
        None if filter == FilterAnswer::Absent => {
            writeln!(out, "  no block read: the filter rules the key out")?
        }
        None => writeln!(out, "  no block read: the key sorts after every block")?,
        Some(b) => {
            writeln!(
                out,
                "  index: block {} (separator {})",
                b.block,
                ikey_text(&b.separator)
            )?;
            writeln!(out, "  block read: @{} ({} B)", b.offset, b.size)?;
        }
    }
    let result = match g.result {
        "found" => format!(
            "found {} ({} B)",
            g.value_preview
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            g.value_bytes.unwrap_or(0)
        ),
        "deleted" if g.range_deleted => format!(
            "deleted by range tombstone {} (newer than any version here: the lookup stops here, the key is not found)",
            g.range_tombstone
                .as_ref()
                .map(RangeTombstoneRow::text)
                .unwrap_or_default()
        ),
        "deleted" => {
            "deleted (a tombstone: the lookup stops here, the key is not found)".to_owned()
        }
        _ if g.bloom_false_positive => {
            "absent (the Bloom filter's \"may contain\" was a false positive)".to_owned()
        }
        _ => "absent".to_owned(),
    };
    if let Some(t) = g.range_tombstone.as_ref().filter(|_| !g.range_deleted) {
        writeln!(
            out,
            "  range tombstone {} covers the key, but an entry here is newer",
            t.text()
        )?;
    }
    writeln!(out, "  result: {result}")?;
    if g.versions.is_empty() {
        writeln!(out, "  versions in this table: none")?;
    } else {
        writeln!(out, "  versions in this table (newest first):")?;
        for v in &g.versions {
            if v.kind == "put" {
                writeln!(
                    out,
                    "    seq:{}, type:put => {} ({} B)",
                    v.seq, v.value_preview, v.value_bytes
                )?;
            } else {
                writeln!(out, "    seq:{}, type:del", v.seq)?;
            }
        }
    }
    Ok(())
}
