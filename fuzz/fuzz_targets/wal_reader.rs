//! The WAL reader on arbitrary bytes, in every recovery mode: never panics, and the
//! modes agree where their rules overlap.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strata_core::{FileSystem, MemFs};
use strata_wal::{LogEnd, LogReader, RecoveryMode};

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

fuzz_target!(|data: &[u8]| {
    let fs = MemFs::new();
    fs.write_file(Path::new("/000001.log"), data.to_vec());
    let len = data.len() as u64;
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
});
