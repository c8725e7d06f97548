//! `cargo xtask demo`: a tour of the engine, then of the write-ahead log on its own,
//! through the real file system.
//!
//! It checks what it shows (records read back equal records written; each mode answers as
//! `docs/format/wal.md` says) and fails with a non-zero exit if anything differs, so
//! running it is a smoke test.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use strata_core::{FileSystem, StdFs};
use strata_wal::{LogEnd, LogReader, LogWriter, RecoveryMode, SyncPolicy};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Options of `cargo xtask demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Number of WAL records to write (at least 10).
    #[arg(long, default_value_t = 300)]
    records: usize,
    /// Number of keys the engine part writes.
    #[arg(long, default_value_t = 200_000)]
    keys: u64,
    /// Directory to write in (kept afterwards); default: a temporary directory, removed.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Record `i`: a 16-byte key and a 100-byte value, like a put; every 100th record and the
/// last one carry 50 KiB, so they span blocks.
fn record(i: usize, count: usize) -> Vec<u8> {
    let mut r = format!("key{i:013}").into_bytes();
    let value_len = if i % 100 == 99 || i + 1 == count {
        50 * 1024
    } else {
        100
    };
    r.extend((0..value_len).map(|j| b'a' + ((i + j) % 26) as u8));
    r
}

/// Records read (offset, bytes), then how reading ended or the error it ended with.
type ReadOutcome = (Vec<(u64, Vec<u8>)>, std::result::Result<LogEnd, String>);

/// Reads a whole log in `mode`.
fn read(path: &Path, mode: RecoveryMode) -> Result<ReadOutcome> {
    let mut reader = LogReader::new(StdFs.open(path)?, mode);
    let mut records = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(r)) => records.push((r.offset, r.data.to_vec())),
            Ok(None) => {
                let end = reader
                    .end()
                    .copied()
                    .ok_or("reader ended without a report")?;
                return Ok((records, Ok(end)));
            }
            Err(e) => return Ok((records, Err(e.to_string()))),
        }
    }
}

fn check(ok: bool, what: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(format!("demo check failed: {what}").into())
    }
}

/// Runs the demo.
pub fn run(args: &Args) -> Result<()> {
    check(args.records >= 10, "--records must be at least 10")?;
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            StdFs.create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let n = args.records;
    crate::engine_demo::run(&dir.join("db"), args.keys)?;
    println!("\nPart 2: the write-ahead log (strata-wal) on its own");

    // 1. Write.
    let path = dir.join("000001.log");
    let started = Instant::now();
    let records: Vec<Vec<u8>> = (0..n).map(|i| record(i, n)).collect();
    let mut writer = LogWriter::new(StdFs.create(&path)?, SyncPolicy::Never);
    let mut offsets = Vec::with_capacity(n);
    for r in &records {
        offsets.push(writer.add_record(r)?);
    }
    writer.sync()?;
    let log_len = writer.len();
    drop(writer);
    let user_bytes: usize = records.iter().map(Vec::len).sum();
    println!("1. Wrote {n} records ({user_bytes} bytes; most are a 16-byte key + 100-byte value,");
    println!(
        "   every 100th and the last are 50 KiB and span blocks) to {}",
        path.display()
    );
    println!(
        "   through StdFs, one write per record, one fsync at the end: log is {log_len} bytes \
         ({:.3}x the record bytes), {:.1} ms.",
        log_len as f64 / user_bytes as f64,
        started.elapsed().as_secs_f64() * 1e3
    );

    // 2. Read back.
    let (back, end) = read(&path, RecoveryMode::TolerateTornTail)?;
    check(back.len() == n, "all records read back")?;
    for (i, ((offset, data), want)) in back.iter().zip(&records).enumerate() {
        check(
            data == want && *offset == offsets[i],
            "records match what was written",
        )?;
    }
    let end = end?;
    check(end == LogEnd::Clean { len: log_len }, "clean end")?;
    println!(
        "2. Read back {} records, each equal to what was written: {end}.",
        back.len()
    );

    // 3. A crash tears the tail: the file ends in the middle of the last record.
    let bytes = std::fs::read(&path)?;
    let last_start = offsets[n - 1] as usize;
    let cut = (last_start + bytes.len()) / 2;
    let torn = dir.join("torn.log");
    std::fs::write(&torn, &bytes[..cut])?;
    let (kept, end) = read(&torn, RecoveryMode::TolerateTornTail)?;
    let end = end?;
    check(
        kept.len() == n - 1,
        "torn tail keeps all but the last record",
    )?;
    check(
        end.valid_len() == last_start as u64,
        "torn tail reported at the last record's start",
    )?;
    println!(
        "3. Simulated crash: cut the log to {cut} bytes, inside the last record (it starts at"
    );
    println!(
        "   offset {last_start}). Recovery in TolerateTornTail mode kept {} records: {end}.",
        kept.len()
    );

    // 4. Bit rot in the middle of the log.
    let victim = n / 2;
    let at = offsets[victim] as usize + 7 + 20;
    let mut rotten_bytes = bytes.clone();
    if let Some(b) = rotten_bytes.get_mut(at) {
        *b ^= 0x01;
    }
    let rotten = dir.join("rotten.log");
    std::fs::write(&rotten, &rotten_bytes)?;
    println!(
        "4. Bit rot: flipped one bit at offset {at}, inside record #{victim}; intact records follow."
    );
    let mut lines = String::new();
    for mode in [
        RecoveryMode::Absolute,
        RecoveryMode::TolerateTornTail,
        RecoveryMode::PointInTime,
    ] {
        let (kept, outcome) = read(&rotten, mode)?;
        check(
            kept.len() == victim,
            "no record at or after the damage is returned",
        )?;
        let answer = match (&outcome, mode) {
            (Err(e), RecoveryMode::Absolute | RecoveryMode::TolerateTornTail) => {
                format!("error: {e}")
            }
            (Ok(end @ LogEnd::Stopped { .. }), RecoveryMode::PointInTime) => format!("ok, {end}"),
            _ => return Err(format!("unexpected answer in {mode:?}: {outcome:?}").into()),
        };
        writeln!(
            lines,
            "   {:<17} {} records yielded, then {answer}",
            format!("{mode:?}:"),
            kept.len()
        )?;
    }
    print!("{lines}");

    if args.dir.is_some() {
        println!("\nFiles kept in {}.", dir.display());
    }
    println!("\nDone: the WAL behaved as docs/format/wal.md describes.");
    Ok(())
}
