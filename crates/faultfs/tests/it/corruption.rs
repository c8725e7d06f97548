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
                Outcome::State(s) => {
                    // The damaged record may be dropped only as a torn tail: when it is
                    // the last one, and with every record before it kept.
                    let r = starts.iter().rposition(|s| *s <= at as u64);
                    assert!(
                        r.is_some_and(|r| r + 1 == starts.len() && s == f.states[f.flushed + r]),
                        "byte {at} ^ {x:#x}: records before the damage lost, or damage before the last record not reported"
                    );
                }
            }
        }
    }
    assert!(corrupt > bytes.len(), "most damage is reported: {corrupt}");
}

/// The damage an outside test found silently dropping synced writes when it hit the
/// WAL's last block (issue 13), through the engine: a WAL of 2,000 synced puts over 5
/// blocks; in every block the header of a record zeroed, the 4 KiB page holding it
/// zeroed, or two bits of its length flipped. Every one opens as `Corruption` naming
/// the WAL, or (only where nothing the writer finished follows the damage) recovers
/// every write before the damaged record — never silently fewer.
#[test]
fn wal_damage_in_any_block_before_synced_writes_is_corruption() {
    let fs = FaultFs::new();
    let db = strata::Db::builder(Path::new(DB))
        .file_system(std::sync::Arc::new(fs.clone()))
        .open()
        .unwrap();
    let entry = |i: usize| {
        (
            format!("key{i:05}").into_bytes(),
            format!("synced-value-{i:05}-{}", "v".repeat(45)).into_bytes(),
        )
    };
    for i in 0..2000 {
        let (k, v) = entry(i);
        let mut batch = strata::WriteBatch::new();
        batch.put(k, v);
        db.write(batch, strata::WriteOptions { sync: true })
            .unwrap();
    }
    // The state after the first `n` writes.
    let state = |n: usize| -> Model { (0..n).map(entry).collect() };
    let f = Fixture {
        fs: fs.crash(&CrashOptions::process()),
        states: Vec::new(),
        flushed: 0,
    };
    drop(db);
    let wal = live_wal(&f);
    let bytes = f.fs.read_file(&wal).unwrap();
    let (starts, len) = record_starts(&f.fs, &wal);
    let blocks = len.div_ceil(32 << 10);
    assert!(
        starts.len() >= 2000 && blocks >= 5,
        "{} records, {blocks} blocks",
        starts.len()
    );
    type Hit = fn(&mut [u8], usize);
    let hits: [(&str, Hit); 3] = [
        ("zeroed header", |b, at| b[at..at + 7].fill(0)),
        ("zeroed 4 KiB page", |b, at| {
            let page = at / 4096 * 4096;
            let end = (page + 4096).min(b.len());
            b[page..end].fill(0);
        }),
        ("two length bits flipped", |b, at| b[at + 4] ^= 0b0001_0100),
    ];
    for block in 0..blocks {
        let in_block: Vec<usize> = (0..starts.len())
            .filter(|&i| starts[i] / (32 << 10) == block)
            .collect();
        for r in [
            in_block[0],
            in_block[in_block.len() / 2],
            *in_block.last().unwrap(),
        ] {
            for (name, hit) in &hits {
                let mut damaged = bytes.clone();
                hit(&mut damaged, starts[r] as usize);
                // On a real disk a WAL taking synced writes is followed by preallocated
                // zeros (faultfs does not model preallocation).
                damaged.resize(bytes.len() + (64 << 10), 0);
                let ctx = format!("{name} of record {r} in block {block}");
                // The first record the hit changed (a page may start before record r).
                let first = (0..=r)
                    .find(|&i| {
                        let end = starts.get(i + 1).map_or(len, |&e| e) as usize;
                        damaged[starts[i] as usize..end] != bytes[starts[i] as usize..end]
                    })
                    .unwrap_or(r);
                match open_and_read(&f.damaged(&wal, damaged.clone())) {
                    Outcome::Corruption(file) => assert_eq!(file, wal, "{ctx}"),
                    Outcome::State(s) => {
                        // Allowed only where the damage looks exactly like a crash: the
                        // last record's length damaged with nothing after it, or zeros
                        // from the damage to the end of the file (no record of the synced
                        // length exists to tell that from preallocated space). Then
                        // every record before the damaged one is there.
                        let last = starts.len() - 1;
                        let torn_last = r == last && *name == "two length bits flipped";
                        let hit_from = match *name {
                            "zeroed 4 KiB page" => starts[r] as usize / 4096 * 4096,
                            _ => starts[r] as usize,
                        };
                        let zeros_to_end = damaged[hit_from..].iter().all(|&b| b == 0);
                        assert!(
                            (torn_last || zeros_to_end) && s == state(first),
                            "{ctx}: opened with synced writes missing"
                        );
                    }
                }
            }
        }
    }
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
