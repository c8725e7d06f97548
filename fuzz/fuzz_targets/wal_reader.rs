//! The WAL reader in every recovery mode, on arbitrary bytes and on valid logs (built
//! from the input, records up to a few blocks long) with XOR damage and a cut: never
//! panics, the modes agree where their rules overlap, and whatever is read from a
//! damaged valid log is a prefix of what was written.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strata_core::{FileSystem, MemFs};
use strata_fuzz::Input;
use strata_wal::{LogEnd, LogReader, LogWriter, RecoveryMode, SyncPolicy};

/// Records read in `mode`, and how reading ended (`None`: an error).
fn read(fs: &MemFs, mode: RecoveryMode) -> (Vec<(u64, Vec<u8>)>, Option<LogEnd>) {
    let path = Path::new("/000001.log");
    let mut reader = LogReader::new(fs.open(path).expect("open"), mode);
    let mut records = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(r)) => records.push((r.offset, r.data.to_vec())),
            Ok(None) => return (records, reader.end().copied()),
            Err(_) => return (records, None),
        }
    }
}

/// A valid log of records drawn from `input`, then damaged and cut as the rest of the
/// input says. Returns the log's bytes and the records written.
fn damaged_log(input: &mut Input) -> (Vec<u8>, Vec<Vec<u8>>) {
    let fs = MemFs::new();
    let path = Path::new("/000002.log");
    let mut w = LogWriter::new(fs.create(path).expect("create"), SyncPolicy::Never);
    let n = 1 + input.byte() % 12;
    let mut records = Vec::new();
    for i in 0..n {
        let len = match input.byte() % 8 {
            0 => 32768 - 7 * 2 + input.byte() as usize % 32, // around a block boundary
            1 => 40_000 + input.u16() as usize,              // spans blocks
            _ => input.byte() as usize,
        };
        let r: Vec<u8> = (0..len).map(|j| (i as usize * 31 + j) as u8).collect();
        w.add_record(&r).expect("append");
        records.push(r);
    }
    let mut bytes = fs.read_file(path).expect("written");
    let len = bytes.len();
    let cut = if input.byte() % 3 == 0 {
        len - input.u16() as usize % (len + 1)
    } else {
        len
    };
    while !input.is_empty() {
        let at = input.u16() as usize * 3 % len.max(1);
        let x = input.byte();
        if let Some(b) = bytes.get_mut(at) {
            *b ^= x;
        }
    }
    bytes.truncate(cut);
    (bytes, records)
}

fuzz_target!(|data: &[u8]| {
    let fs = MemFs::new();
    let mut input = Input(data);
    let (bytes, written) = if input.byte() % 2 == 0 {
        (input.0.to_vec(), None)
    } else {
        let (b, r) = damaged_log(&mut input);
        (b, Some(r))
    };
    fs.write_file(Path::new("/000001.log"), bytes.clone());
    let len = bytes.len() as u64;
    let (torn, torn_end) = read(&fs, RecoveryMode::TolerateTornTail);
    let (strict, strict_end) = read(&fs, RecoveryMode::Absolute);
    let (pit, pit_end) = read(&fs, RecoveryMode::PointInTime);
    for (records, end) in [(&torn, torn_end), (&strict, strict_end), (&pit, pit_end)] {
        let mut last = None;
        for (offset, _) in records {
            assert!(*offset < len, "record offset past the end");
            assert!(last < Some(*offset), "records out of order");
            last = Some(*offset);
        }
        if let Some(end) = end {
            assert!(end.valid_len() <= len, "valid length past the end");
        }
    }
    // Point-in-time stops at the first damage, so every other mode's records start
    // with its records, and one that read the whole log cleanly read the same ones.
    assert!(
        torn.starts_with(&pit),
        "tolerant mode disagrees before the first damage"
    );
    assert!(strict.starts_with(&pit) || strict_end.is_none());
    if strict_end.is_some() {
        assert_eq!(strict, torn, "a clean log reads the same in every mode");
        assert_eq!(strict, pit);
    }
    if let Some(end) = torn_end {
        assert_eq!(torn, pit, "a torn tail ends where point-in-time stops");
        assert!(!matches!(end, LogEnd::Stopped { .. }));
    }
    // Checksums protect every fragment: a damaged log yields a prefix of what was
    // written, never a changed or invented record.
    if let Some(written) = written {
        for records in [&torn, &strict, &pit] {
            assert!(records.len() <= written.len(), "more records than written");
            for ((_, got), want) in records.iter().zip(&written) {
                assert!(got == want, "a record changed by damage was returned");
            }
        }
    }
});
