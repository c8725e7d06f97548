//! Damage to each kind of file on disk: WAL (middle and tail), table (data, index,
//! filter, properties, footer), manifest and CURRENT. Opening and reading must give
//! `Error::Corruption` naming the damaged file, or recover exactly as documented (a
//! torn WAL tail drops the torn record and nothing before it; a damaged filter is
//! ignored) — never a panic, never a wrong value.

use std::path::{Path, PathBuf};

use strata::Error;
use strata_core::FileSystem;
use strata_faultfs::{CrashOptions, FaultFs};
use strata_wal::{LogReader, RecoveryMode};

use crate::oracle::{Model, apply};
use crate::{DB, Harness, universe};

/// A database left by a process crash: `tables` flushed tables (the last write of the
/// first flush deletes a key of the first), then `wal_writes` writes only in the WAL.
struct Fixture {
    fs: FaultFs,
    /// State after each prefix of the writes (`states[i]` = after `i` writes).
    states: Vec<Model>,
    /// Writes that are in tables (the rest are in the live WAL, one record each).
    flushed: usize,
}

impl Fixture {
    fn new(tables: usize, wal_writes: usize) -> Self {
        let fs = FaultFs::new();
        let mut h = Harness::open(fs.clone(), Model::new(), true).unwrap();
        let mut i = 0;
        for t in 0..tables {
            for _ in 0..12 {
                h.put(&key(i), format!("t{t}-value-{i}").as_bytes(), false)
                    .unwrap();
                i += 1;
            }
            h.write(vec![(key(i * 3), None)], false).unwrap();
            h.flush().unwrap();
        }
        let flushed = h.hist.writes.len();
        for j in 0..wal_writes {
            if j % 4 == 3 {
                h.write(
                    vec![(key(j), None), (key(j + 1), Some(b"batch".to_vec()))],
                    false,
                )
                .unwrap();
            } else {
                h.put(&key(j + 5), format!("wal-{j}").as_bytes(), false)
                    .unwrap();
            }
        }
        let mut states = vec![Model::new()];
        for w in &h.hist.writes {
            let mut next = states.last().unwrap().clone();
            apply(&mut next, w);
            states.push(next);
        }
        let after = fs.crash(&CrashOptions::process());
        drop(h);
        Fixture {
            fs: after,
            states,
            flushed,
        }
    }

    fn full(&self) -> &Model {
        self.states.last().unwrap()
    }

    /// A copy of the database with `path` replaced by `contents`.
    fn damaged(&self, path: &Path, contents: Vec<u8>) -> FaultFs {
        let copy = self.fs.crash_at(usize::MAX, &CrashOptions::process());
        copy.write_file(path, contents);
        copy
    }

    /// The manifest `CURRENT` names.
    fn manifest(&self) -> PathBuf {
        strata::inspect::current_manifest(&self.fs, Path::new(DB)).unwrap()
    }

    /// The tables the manifest names (a compaction running at the crash may have left
    /// others behind, which the next open removes).
    fn live_tables(&self) -> Vec<PathBuf> {
        let (edits, _) = strata::inspect::read_manifest(&self.fs, &self.manifest()).unwrap();
        strata::inspect::live_files(&edits)
            .into_iter()
            .flatten()
            .map(|m| Path::new(DB).join(format!("{:06}.sst", m.number)))
            .collect()
    }

    fn files(&self, pick: impl Fn(&str) -> bool) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self
            .fs
            .list(Path::new(DB))
            .unwrap()
            .into_iter()
            .filter(|n| pick(n))
            .map(|n| Path::new(DB).join(n))
            .collect();
        v.sort();
        v
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("k{:02}", i % 40).into_bytes()
}

/// What a damaged database gave back.
enum Outcome {
    /// Opened and every read succeeded: the state read.
    State(Model),
    /// Corruption reported, naming this file.
    Corruption(PathBuf),
}

/// Opens and reads everything (scan, reverse scan, every key). Any error other than
/// `Corruption` fails the test; a `Corruption` from open or any read is the outcome.
fn open_and_read(fs: &FaultFs) -> Outcome {
    let corruption = |e: Error, what: &str| match e {
        Error::Corruption { file, .. } => Outcome::Corruption(file),
        other => panic!("{what}: {other} (expected Corruption)"),
    };
    let db = match crate::open(fs, true) {
        Ok(db) => db,
        Err(e) => return corruption(e, "open"),
    };
    let mut seen = Model::new();
    for kv in db.iter() {
        match kv {
            Ok((k, v)) => {
                seen.insert(k.to_vec(), v.to_vec());
            }
            Err(e) => return corruption(e, "scan"),
        }
    }
    for k in universe(40) {
        match db.get(&k) {
            Ok(v) => {
                assert_eq!(
                    v.as_deref(),
                    seen.get(&k).map(Vec::as_slice),
                    "get disagrees with scan"
                )
            }
            Err(e) => return corruption(e, "get"),
        }
    }
    drop(db);
    Outcome::State(seen)
}

fn live_wal(f: &Fixture) -> PathBuf {
    f.files(|n| n.ends_with(".log")).pop().unwrap()
}

/// Offsets where each record of the log at `path` starts, and the log's length.
fn record_starts(fs: &FaultFs, path: &Path) -> (Vec<u64>, u64) {
    let file = fs.open(path).unwrap();
    let len = file.len();
    let reader = LogReader::new(file, RecoveryMode::Absolute);
    (reader.map(|r| r.unwrap().offset).collect(), len)
}

#[test]
fn torn_wal_tail_drops_only_the_torn_record() {
    let f = Fixture::new(1, 10);
    let wal = live_wal(&f);
    let bytes = f.fs.read_file(&wal).unwrap();
    let (starts, len) = record_starts(&f.fs, &wal);
    assert_eq!(starts.len(), 10);
    for cut in 0..=len {
        let fs = f.damaged(&wal, bytes[..cut as usize].to_vec());
        // Records wholly before the cut survive; the one it tears and later ones go.
        let whole = starts
            .iter()
            .enumerate()
            .filter(|(i, _)| starts.get(i + 1).copied().unwrap_or(len) <= cut)
            .count();
        match open_and_read(&fs) {
            Outcome::State(s) => assert!(
                s == f.states[f.flushed + whole],
                "cut at {cut}: expected the first {whole} WAL records exactly"
            ),
            Outcome::Corruption(file) => panic!("cut at {cut}: corruption in {file:?}"),
        }
    }
}

#[test]
fn damage_in_the_wal_is_corruption_unless_it_is_the_tail() {
    let f = Fixture::new(1, 10);
    let wal = live_wal(&f);
    let bytes = f.fs.read_file(&wal).unwrap();
    let (starts, _) = record_starts(&f.fs, &wal);
    let mut corrupt = 0;
    let mut limit = 0;
    for at in 0..bytes.len() {
        for x in [0x01, 0x40, 0xff] {
            let mut damaged = bytes.clone();
            damaged[at] ^= x;
            let fs = f.damaged(&wal, damaged);
            match open_and_read(&fs) {
                Outcome::Corruption(file) => {
                    assert_eq!(file, wal, "byte {at} ^ {x:#x}");
                    corrupt += 1;
                }
                Outcome::State(s) if s == *f.full() => {} // e.g. a repaired length bit
                Outcome::State(s) => {
                    // The damaged record and what follows may be dropped only as a torn
                    // tail (the last record), or — a documented limit of the WAL
                    // (docs/format/wal.md, "Known limits") — when a fragment's length
                    // field lost more than one bit, which hides the rest of its block.
                    let r = starts.iter().rposition(|s| *s <= at as u64);
                    let in_length = r.is_some_and(|r| (4..6).contains(&(at as u64 - starts[r])));
                    let allowed = r.is_some_and(|r| {
                        s == f.states[f.flushed + r]
                            && (r + 1 == starts.len() || (in_length && x.count_ones() > 1))
                    });
                    assert!(
                        allowed,
                        "byte {at} ^ {x:#x}: records before the damage lost, or damage before the last record not reported"
                    );
                    limit += usize::from(r.is_some_and(|r| r + 1 < starts.len()));
                }
            }
        }
    }
    assert!(corrupt > bytes.len(), "most damage is reported: {corrupt}");
    // Exactly the multi-bit length damage of the 9 records before the last: 2 bytes
    // each, one multi-bit pattern (0xff).
    assert_eq!(limit, 9 * 2, "the documented limit is the only silent loss");
}

/// Byte ranges of a table's parts: `(name, start, end)`.
fn table_regions(fs: &FaultFs, path: &Path) -> Vec<(&'static str, u64, u64)> {
    let t = strata_sstable::Table::open(fs.open(path).unwrap(), 1, None).unwrap();
    let foot = *t.footer();
    let trailer = 5;
    vec![
        ("data", 0, foot.filter.offset),
        (
            "filter",
            foot.filter.offset,
            foot.filter.offset + foot.filter.size + trailer,
        ),
        (
            "properties",
            foot.properties.offset,
            foot.properties.offset + foot.properties.size + trailer,
        ),
        (
            "index",
            foot.index.offset,
            foot.index.offset + foot.index.size + trailer,
        ),
        ("footer", foot.offset, t.file_size()),
    ]
}

#[test]
fn damage_in_each_part_of_a_table_is_corruption_or_harmless() {
    let f = Fixture::new(1, 0);
    let table = f.live_tables().pop().unwrap();
    let bytes = f.fs.read_file(&table).unwrap();
    for (region, start, end) in table_regions(&f.fs, &table) {
        let mut corrupt = 0;
        for at in start..end {
            let mut damaged = bytes.clone();
            damaged[at as usize] ^= 1 << (at % 8);
            let fs = f.damaged(&table, damaged);
            match open_and_read(&fs) {
                Outcome::Corruption(file) => {
                    assert_eq!(file, table, "{region} byte {at}");
                    assert_ne!(region, "filter", "a damaged filter is ignored, not fatal");
                    corrupt += 1;
                }
                Outcome::State(s) => {
                    assert!(s == *f.full(), "{region} byte {at}: wrong data, no error")
                }
            }
        }
        if region != "filter" {
            assert!(corrupt > 0, "damage in the {region} is reported");
        }
    }
}

/// Damage in one data block costs only the keys in that block: every other key reads
/// back correctly through point lookups.
#[test]
fn damage_in_a_data_block_spares_the_other_blocks() {
    let fs = FaultFs::new();
    let mut h = Harness::open(fs.clone(), Model::new(), true).unwrap();
    for (i, k) in universe(40).into_iter().enumerate() {
        h.put(
            &k,
            format!("value-{i:04}-{}", "x".repeat(i)).as_bytes(),
            false,
        )
        .unwrap();
    }
    h.flush().unwrap();
    let want = h.live.clone();
    drop(h);
    let f = Fixture {
        fs,
        states: vec![want.clone()],
        flushed: 40,
    };
    let table = f.live_tables().pop().unwrap();
    let bytes = f.fs.read_file(&table).unwrap();
    let (_, _, data_end) = table_regions(&f.fs, &table)[0];
    for at in (0..data_end).step_by(5) {
        let mut damaged = bytes.clone();
        damaged[at as usize] ^= 0x20;
        let db = crate::open(&f.damaged(&table, damaged), true).unwrap();
        let (mut good, mut bad) = (0, 0);
        for k in universe(40) {
            match db.get(&k) {
                Ok(v) => {
                    assert_eq!(v.as_deref(), want.get(&k).map(Vec::as_slice), "byte {at}");
                    good += 1;
                }
                Err(Error::Corruption { file, .. }) => {
                    assert_eq!(file, table);
                    bad += 1;
                }
                Err(e) => panic!("byte {at}: {e}"),
            }
        }
        assert!(bad > 0, "byte {at}: the damage was read past");
        assert!(
            good >= 30,
            "byte {at}: keys in intact blocks still read ({good})"
        );
    }
}

#[test]
fn damage_in_the_manifest_is_corruption_never_a_silent_rollback() {
    let f = Fixture::new(3, 2);
    let manifest = f.manifest();
    let bytes = f.fs.read_file(&manifest).unwrap();
    // Lost edits are reported as corruption of the manifest, or of a table it names
    // that a lost compaction edit had already replaced and removed.
    let named = |file: &PathBuf| *file == manifest || file.extension().is_some_and(|e| e == "sst");
    let mut corrupt = 0;
    for at in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        let fs = f.damaged(&manifest, damaged);
        match open_and_read(&fs) {
            Outcome::Corruption(file) => {
                assert!(named(&file), "byte {at}: {file:?}");
                corrupt += 1;
            }
            Outcome::State(s) => assert!(s == *f.full(), "byte {at}: wrong state, no error"),
        }
    }
    assert!(corrupt > 0);
    // A manifest cut short loses edits that were durable and acted on (their WALs or
    // compaction inputs are gone): reported, never opened as an older state. (A crash
    // can only tear an edit that was never acknowledged; the crash sweeps show that such
    // a torn tail opens with everything.)
    for cut in 0..bytes.len() {
        let fs = f.damaged(&manifest, bytes[..cut].to_vec());
        match open_and_read(&fs) {
            Outcome::Corruption(file) => assert!(named(&file), "cut at {cut}: {file:?}"),
            Outcome::State(s) => assert!(s == *f.full(), "cut at {cut}: wrong state, no error"),
        }
    }
}

#[test]
fn damaged_current_is_corruption_naming_it() {
    let f = Fixture::new(1, 2);
    let current = Path::new(DB).join("CURRENT");
    let good = f.fs.read_file(&current).unwrap();
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\n".to_vec(),
        good[..good.len() - 1].to_vec(), // no newline
        b"MANIFEST-999999\n".to_vec(),   // names a missing manifest
        b"000001.log\n".to_vec(),        // names something else
        b"../MANIFEST-000001\n".to_vec(),
        vec![0xff; 16],
    ];
    for at in 0..good.len() {
        let mut d = good.clone();
        d[at] ^= 0x04;
        cases.push(d);
    }
    for contents in cases {
        let fs = f.damaged(&current, contents.clone());
        match open_and_read(&fs) {
            Outcome::Corruption(file) => assert_eq!(file, current, "{contents:?}"),
            Outcome::State(_) => panic!("{contents:?}: opened with a damaged CURRENT"),
        }
    }
    // A missing CURRENT with a database's files beside it: refused, never re-created.
    let fs = f.fs.crash_at(usize::MAX, &CrashOptions::process());
    fs.remove(&current).unwrap();
    match crate::open(&fs, true) {
        Err(Error::InvalidArgument(_)) => {}
        other => panic!("opened a database without CURRENT: {other:?}"),
    }
}

#[test]
fn a_missing_table_is_corruption_naming_it() {
    let f = Fixture::new(2, 0);
    for table in f.live_tables() {
        let fs = f.fs.crash_at(usize::MAX, &CrashOptions::process());
        fs.remove(&table).unwrap();
        match open_and_read(&fs) {
            Outcome::Corruption(file) => assert_eq!(file, table),
            Outcome::State(_) => panic!("opened without {table:?}"),
        }
    }
}
