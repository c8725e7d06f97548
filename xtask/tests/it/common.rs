//! Running the binary, and making databases and files to run it on.

use std::path::{Path, PathBuf};
use std::process::Command;

use strata::inspect::{FileMeta, MANIFEST_FORMAT_VERSION, VersionEdit};
use strata::{Db, WriteBatch, WriteOptions};
use strata_core::{FileSystem, InternalKey, StdFs, ValueKind};
use strata_sstable::{TableBuilder, TableOptions};
use strata_wal::{LogWriter, SyncPolicy};

/// What a run of the binary printed and how it exited.
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Run {
    /// The JSON document on stdout.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// Asserts the run failed cleanly: exit code 1, exactly one line on stderr starting
    /// with `error: `, no panic.
    pub fn assert_one_line_error(&self) -> &str {
        assert_eq!(self.code, 1, "exit code; stderr: {}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        assert_eq!(self.stderr.lines().count(), 1, "one line: {}", self.stderr);
        assert!(self.stderr.starts_with("error: "), "{}", self.stderr);
        self.stderr.trim_end()
    }

    /// Asserts success with nothing on stderr.
    pub fn assert_ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "exit code; stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        assert_eq!(self.stderr, "", "stderr");
        &self.stdout
    }
}

/// Runs `xtask args…` in `cwd`.
pub fn xtask(cwd: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(cwd)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    Run {
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Replaces the random per-table file id (text and JSON) so outputs are stable.
pub fn scrub(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.lines() {
        let line = match (line.find("file id "), line.find("\"file_id\": \"")) {
            (Some(i), _) => format!("{}file id <id>", &line[..i]),
            (None, Some(i)) => format!("{}\"file_id\": \"<id>\",", &line[..i]),
            _ => line.to_owned(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

pub fn value(i: u32, round: u32) -> Vec<u8> {
    let mut v = format!("value-{i}-{round}-").into_bytes();
    v.resize(40, b'.');
    v
}

pub fn key(i: u32) -> String {
    format!("key{i:04}")
}

/// A database made by the engine, with data in L0, in the bottom level and unflushed in
/// the WAL, copied (like a crash image) into `root/db` while it is open. Every write
/// and flush is explicit and no background compaction is triggered, so the file
/// numbers and sizes are the same on every run.
///
/// - keys 0..200 written, flushed and compacted to the bottom level;
/// - keys 50..100 overwritten and 60..65 deleted, flushed to L0;
/// - keys 150..180 overwritten, flushed to L0 (the newest L0 file);
/// - in the WAL only: `key0070` overwritten, `key0160` deleted.
pub fn engine_db(root: &Path) -> PathBuf {
    let live = root.join("live");
    let db = Db::builder(&live)
        .l0_compaction_trigger(64)
        .idle_compaction(None)
        .block_bytes(256)
        .open()
        .unwrap();
    for i in 0..200 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    let mut batch = WriteBatch::new();
    for i in 50..100 {
        batch.put(key(i), value(i, 1));
    }
    for i in 60..65 {
        batch.delete(key(i));
    }
    db.write(batch, WriteOptions::default()).unwrap();
    db.flush().unwrap();
    for i in 150..180 {
        db.put(key(i), value(i, 2)).unwrap();
    }
    db.flush().unwrap();
    db.put(key(70), value(70, 3)).unwrap();
    db.delete(key(160)).unwrap();
    crash_image(db, &live, &root.join("db"))
}

/// Copies the open database `db` (directory `live`) to `image` like a crash image, once
/// the flush thread has deleted every flushed WAL (it does so after `flush` returns),
/// so the image always holds just the live WAL; then closes `db`.
pub fn crash_image(db: Db, live: &Path, image: &Path) -> PathBuf {
    let logs = || {
        std::fs::read_dir(live)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "log")
            })
            .count()
    };
    let started = std::time::Instant::now();
    while logs() > 1 {
        assert!(
            started.elapsed().as_secs() < 10,
            "flushed WALs never deleted"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }

    std::fs::create_dir_all(image).unwrap();
    for entry in std::fs::read_dir(live).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), image.join(entry.file_name())).unwrap();
    }
    db.close().unwrap();
    image.to_path_buf()
}

/// A database made by the engine with range deletes in two L0 tables and in the WAL,
/// copied into `root/ranges` while open (like [`engine_db`]):
///
/// ```text
/// L0  000008.sst  seq 101..104  puts key0022 (101), key0030 (103);
///                 delete_range [key0020, key0040) @102, [key0036, key0045) @104,
///                 stored as 3 fragments, 4 (fragment, seq) pairs
/// L0  000010.sst  seq 105       delete_prefix "key005": [key005, key006) @105 only
/// L6  000004.sst  seq 1..100    keys 0..100
/// WAL 000011.log                delete_range [key0070, key0075) @106, put key0072 @107
/// ```
pub fn range_db(root: &Path) -> PathBuf {
    let live = root.join("ranges-live");
    // Level-0 tables stay where the tools' tests look for them.
    let db = Db::builder(&live)
        .l0_compaction_trigger(64)
        .idle_compaction(None)
        .range_delete_compactions(false)
        .block_bytes(256)
        .open()
        .unwrap();
    for i in 0..100 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    db.put(key(22), value(22, 1)).unwrap();
    // A snapshot keeps key0022's put in the table under the range tombstone over it (a
    // flush writes only what some reader can see).
    let snapshot = db.snapshot();
    db.delete_range(key(20)..key(40)).unwrap();
    db.put(key(30), value(30, 1)).unwrap();
    db.delete_range(key(36)..key(45)).unwrap();
    db.flush().unwrap();
    drop(snapshot);
    db.delete_prefix("key005").unwrap();
    db.flush().unwrap();
    let mut batch = WriteBatch::new();
    batch.delete_range(key(70), key(75));
    db.write(batch, WriteOptions::default()).unwrap();
    db.put(key(72), value(72, 3)).unwrap();
    crash_image(db, &live, &root.join("ranges"))
}

/// Writes a table of `entries` (user key, seq, kind, value), sorted by internal key,
/// at `path`; returns its manifest entry.
pub fn table(path: &Path, number: u64, entries: &[(&str, u64, ValueKind, &str)]) -> FileMeta {
    let mut sorted: Vec<_> = entries
        .iter()
        .map(|(k, seq, kind, v)| (InternalKey::new(k.as_bytes(), *seq, *kind), *v))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let options = TableOptions {
        block_size_bytes: 64,
        restart_interval: 2,
        // One probe per key: with a handful of keys in one 512-bit block, false
        // positives stay findable (≈ 1 %) for the tests that show one.
        bloom_bits_per_key: 1,
        ..TableOptions::default()
    };
    let mut b = TableBuilder::new(StdFs.create(path).unwrap(), options).unwrap();
    for (k, v) in &sorted {
        b.add(k.as_bytes(), v.as_bytes()).unwrap();
    }
    let s = b.finish().unwrap();
    FileMeta {
        number,
        size_bytes: s.file_size,
        smallest: s.smallest_key,
        largest: s.largest_key,
        smallest_seq: s.smallest_seq,
        largest_seq: s.largest_seq,
        entries: s.entry_count,
        tombstones: s.tombstone_count,
        range_tombstones: s.range_tombstone_count,
    }
}

/// A database made with the format crates, three levels deep, for lookups that visit
/// every kind of source:
///
/// ```text
/// L0  000012  apple .. cherry   seq 40..41  (cherry deleted)
/// L0  000011  banana .. fig     seq 30..32
/// L1  000008  apple .. date     seq 10..13
/// L1  000009  grape .. melon    seq 14..16
/// L2  000005  apple .. zucchini seq 1..6
/// ```
pub fn layered_db(root: &Path) -> PathBuf {
    use ValueKind::{Delete as D, Put as P};
    let dir = root.join("layered");
    std::fs::create_dir_all(&dir).unwrap();
    let t =
        |n: u64, e: &[(&str, u64, ValueKind, &str)]| table(&dir.join(format!("{n:06}.sst")), n, e);
    let l2 = t(
        5,
        &[
            ("apple", 1, P, "red"),
            ("fig", 2, P, "purple"),
            ("kiwi", 3, P, "brown"),
            ("lemon", 4, P, "yellow"),
            ("plum", 5, P, "dark"),
            ("zucchini", 6, P, "green"),
        ],
    );
    let l1a = t(
        8,
        &[
            ("apple", 10, P, "green"),
            ("banana", 11, P, "yellow"),
            ("cherry", 12, P, "red"),
            ("date", 13, P, "brown"),
        ],
    );
    let l1b = t(
        9,
        &[
            ("grape", 14, P, "green"),
            ("kiwi", 15, D, ""),
            ("melon", 16, P, "orange"),
        ],
    );
    let l0_old = t(
        11,
        &[
            ("banana", 30, P, "ripe"),
            ("cherry", 31, P, "sour"),
            ("fig", 32, P, "dried"),
        ],
    );
    let l0_new = t(12, &[("apple", 40, P, "baked"), ("cherry", 41, D, "")]);

    let snapshot = VersionEdit {
        format_version: Some(MANIFEST_FORMAT_VERSION),
        log_number: Some(13),
        next_file_number: Some(14),
        last_sequence: Some(41),
        new_files: vec![(2, l2), (1, l1a), (1, l1b), (0, l0_old.clone())],
        ..VersionEdit::default()
    };
    // A second edit: the newest flush.
    let flush = VersionEdit {
        last_sequence: Some(41),
        new_files: vec![(0, l0_new)],
        ..VersionEdit::default()
    };
    let mut log = LogWriter::new(
        StdFs.create(&dir.join("MANIFEST-000004")).unwrap(),
        SyncPolicy::Never,
    );
    for edit in [snapshot, flush] {
        let mut buf = Vec::new();
        edit.encode(&mut buf);
        log.add_record(&buf).unwrap();
    }
    log.sync().unwrap();
    std::fs::write(dir.join("CURRENT"), "MANIFEST-000004\n").unwrap();
    dir
}

/// Flips the bits of `mask` in the byte at `offset` of `path`.
pub fn flip(path: &Path, offset: u64, mask: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= mask;
    std::fs::write(path, bytes).unwrap();
}

/// Cuts `path` to `len` bytes.
/// Where a WAL's records end: just past its last nonzero byte. A live log keeps 1–2 MiB
/// of zeros written ahead of its end, which its length counts; the fixtures' last record
/// ends in a value's text, never in a zero byte.
pub fn records_end(wal: &Path) -> u64 {
    let bytes = std::fs::read(wal).unwrap();
    bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last as u64 + 1)
}

pub fn truncate(path: &Path, len: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
}

/// A temporary directory holding the engine database (`db`) and the layered one
/// (`layered`).
pub fn fixtures() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    engine_db(tmp.path());
    layered_db(tmp.path());
    tmp
}
