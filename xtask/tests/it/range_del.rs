//! Range deletes in the tools: `sst dump` and `sst get` show a table's range-deletion
//! block, `db tree --key` weighs range tombstones in tables as the engine does,
//! `manifest dump` and the tree's summaries count them, and `verify` checks the block.
//!
//! The database is [`range_db`]: 000006.sst (L0) holds two puts and four stored range
//! tombstones, 000008.sst (L0) one range tombstone and no entries, 000004.sst (L6) keys
//! 0..100, and the WAL 000007.log a range delete and a put.

use std::path::Path;

use serde_json::{Value, json};
use strata_core::{FileSystem, StdFs};
use strata_sstable::Table;

use crate::common::*;

fn fixture() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    range_db(tmp.path());
    tmp
}

/// A table's range tombstones as the library decodes them: `(start, end, seq)`.
fn library_tombstones(path: &Path) -> Vec<(String, String, u64)> {
    let table = Table::open(StdFs.open(path).unwrap(), 0, None).unwrap();
    table
        .range_tombstones()
        .entries()
        .map(|(s, e, q)| {
            (
                String::from_utf8(s.to_vec()).unwrap(),
                String::from_utf8(e.to_vec()).unwrap(),
                q,
            )
        })
        .collect()
}

fn json_tombstones(v: &Value) -> Vec<(String, String, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["start"].as_str().unwrap().to_owned(),
                t["end"].as_str().unwrap().to_owned(),
                t["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn t(start: &str, end: &str, seq: u64) -> (String, String, u64) {
    (start.into(), end.into(), seq)
}

fn footer(path: &Path) -> strata_sstable::Footer {
    Table::read_footer(&*StdFs.open(path).unwrap()).unwrap()
}

#[test]
fn sst_dump_shows_the_range_deletion_block_and_every_range_tombstone() {
    let tmp = fixture();
    let path = tmp.path().join("ranges/000006.sst");
    let want = vec![
        t("key0020", "key0036", 102),
        t("key0036", "key0040", 104),
        t("key0036", "key0040", 102),
        t("key0040", "key0045", 104),
    ];
    assert_eq!(library_tombstones(&path), want, "the fixture changed");
    let rd = footer(&path).range_del.expect("a version-3 footer");

    let run = xtask(tmp.path(), &["sst", "dump", "ranges/000006.sst"]);
    let out = run.assert_ok();
    assert!(out.contains("000006.sst: table, format v3, "), "{out}");
    assert!(
        out.contains(&format!(
            "  range-del block   @{} ({} B)\n",
            rd.offset, rd.size
        )),
        "{out}"
    );
    assert!(
        out.contains("  range tombstones  4 (in the range-deletion block)\n"),
        "{out}"
    );
    let listed: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("range tombstones: 4"))
        .skip(1)
        .take_while(|l| l.starts_with("  ["))
        .collect();
    assert_eq!(
        listed,
        [
            "  ['key0020' .. 'key0036') @102",
            "  ['key0036' .. 'key0040') @104",
            "  ['key0036' .. 'key0040') @102",
            "  ['key0040' .. 'key0045') @104",
        ],
        "{out}"
    );
    // Layout order: filter, range deletions, properties, index.
    let pos = |s: &str| out.find(s).unwrap();
    assert!(pos("filter block") < pos("range-del block"));
    assert!(pos("range-del block") < pos("properties block"));

    let j = xtask(tmp.path(), &["sst", "dump", "ranges/000006.sst", "--json"]).json();
    assert_eq!(j["footer"]["format_version"], 3);
    assert_eq!(
        j["footer"]["range_del"],
        json!({"offset": rd.offset, "size": rd.size})
    );
    assert_eq!(j["properties"]["range_tombstones"], 4);
    assert_eq!(j["properties"]["entries"], 2);
    assert_eq!(json_tombstones(&j["range_tombstones"]), want);

    // A table of range tombstones alone.
    let j = xtask(tmp.path(), &["sst", "dump", "ranges/000008.sst", "--json"]).json();
    assert_eq!(j["properties"]["entries"], 0);
    assert_eq!(
        json_tombstones(&j["range_tombstones"]),
        [t("key005", "key006", 105)]
    );
    assert_eq!(
        library_tombstones(&tmp.path().join("ranges/000008.sst")),
        [t("key005", "key006", 105)]
    );

    // A table without any: version 1, no block, nothing listed.
    let j = xtask(tmp.path(), &["sst", "dump", "ranges/000004.sst", "--json"]).json();
    assert_eq!(j["footer"]["format_version"], 1);
    assert_eq!(j["footer"]["range_del"], Value::Null);
    assert_eq!(j["properties"]["range_tombstones"], 0);
    assert_eq!(j["range_tombstones"], json!([]));
    let run = xtask(tmp.path(), &["sst", "dump", "ranges/000004.sst"]);
    assert!(!run.assert_ok().contains("range"), "{}", run.stdout);
}

#[test]
fn sst_get_weighs_the_tables_range_tombstones() {
    let tmp = fixture();
    let get = |key: &str, extra: &[&str]| {
        let mut args = vec!["sst", "get", "ranges/000006.sst", key];
        args.extend_from_slice(extra);
        xtask(tmp.path(), &args)
    };
    // key0022@101 is older than [key0020, key0036)@102.
    let j = get("key0022", &["--json"]).json();
    assert_eq!(j["result"], "deleted");
    assert_eq!(j["range_deleted"], true);
    assert_eq!(
        j["range_tombstone"],
        json!({"start": "key0020", "end": "key0036", "seq": 102})
    );
    assert_eq!(j["versions"][0]["seq"], 101);
    let run = get("key0022", &[]);
    assert!(
        run.assert_ok()
            .contains("result: deleted by range tombstone ['key0020' .. 'key0036') @102"),
        "{}",
        run.stdout
    );
    // key0030@103 is newer than the tombstone covering it.
    let j = get("key0030", &["--json"]).json();
    assert_eq!(j["result"], "found");
    assert_eq!(j["range_deleted"], false);
    assert_eq!(j["range_tombstone"]["seq"], 102);
    let run = get("key0030", &[]);
    assert!(
        run.assert_ok().contains(
            "range tombstone ['key0020' .. 'key0036') @102 covers the key, but an entry here is newer"
        ),
        "{}",
        run.stdout
    );
    // Before the tombstone was written, the older value shows.
    let j = get("key0022", &["--snapshot", "101", "--json"]).json();
    assert_eq!(j["result"], "found");
    assert_eq!(j["range_tombstone"], Value::Null);
    // Covered, no entry at all: deleted, and the Bloom filter's "absent" does not
    // change that.
    let j = get("key0038", &["--json"]).json();
    assert_eq!(j["result"], "deleted");
    assert_eq!(j["range_tombstone"]["seq"], 104);
}

/// (source, file, answer, range tombstone seq) of each step.
fn steps(j: &Value) -> Vec<(String, String, String, Option<u64>)> {
    j["lookup"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_owned(),
                s["file"].as_str().unwrap().to_owned(),
                s["answer"].as_str().unwrap().to_owned(),
                s["range_tombstone"]["seq"].as_u64(),
            )
        })
        .collect()
}

fn step(
    source: &str,
    file: &str,
    answer: &str,
    cover: Option<u64>,
) -> (String, String, String, Option<u64>) {
    (source.into(), file.into(), answer.into(), cover)
}

#[test]
fn db_tree_stops_at_a_tables_range_tombstone_and_says_which() {
    let tmp = fixture();
    let tree = |key: &str| xtask(tmp.path(), &["db", "tree", "ranges", "--key", key]);
    let tree_json = |key: &str| {
        xtask(
            tmp.path(),
            &["db", "tree", "ranges", "--key", key, "--json"],
        )
        .json()
    };

    // Covered in the newest table that covers the key; no entry of it there.
    let run = tree("key0025");
    let out = run.assert_ok();
    assert!(
        out.contains(
            "result: not found: deleted by range tombstone ['key0020' .. 'key0036') @102 in table 000006.sst (L0) at step 2\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "range tombstone ['key0020' .. 'key0036') @102 covers the key — the lookup stops here"
        ),
        "{out}"
    );
    let j = tree_json("key0025");
    assert_eq!(
        steps(&j),
        [
            step("memtable", "000007.log", "absent", None),
            step("L0", "000006.sst", "range_deleted", Some(102)),
            step("L6", "000004.sst", "not_visited", None),
        ]
    );
    assert_eq!(j["lookup"]["result"], "deleted");
    assert_eq!(j["lookup"]["answered_by"], 2);
    assert_eq!(
        j["lookup"]["deleted_by_range"],
        json!({"start": "key0020", "end": "key0036", "seq": 102, "file": "000006.sst", "source": "L0"})
    );

    // An entry in the same table older than the tombstone: still deleted.
    let run = tree("key0022");
    assert!(
        run.assert_ok()
            .contains("covers the key, newer than its entry seq:101 here"),
        "{}",
        run.stdout
    );
    // An entry newer than the tombstone covering it: found, and the tombstone is named.
    let j = tree_json("key0030");
    assert_eq!(j["lookup"]["result"], "found");
    assert_eq!(steps(&j)[1], step("L0", "000006.sst", "found", Some(102)));
    // The newest of two overlapping tombstones.
    let j = tree_json("key0038");
    assert_eq!(j["lookup"]["deleted_by_range"]["seq"], 104);
    // A table's key range includes its last tombstone's (exclusive) end: the table is
    // visited, the tombstone does not cover the key, the level below answers.
    let j = tree_json("key0045");
    assert_eq!(
        steps(&j),
        [
            step("memtable", "000007.log", "absent", None),
            step("L0", "000006.sst", "absent", None),
            step("L6", "000004.sst", "found", None),
        ]
    );
    // A table holding nothing but a range tombstone.
    let j = tree_json("key0055");
    assert_eq!(
        steps(&j)[1],
        step("L0", "000008.sst", "range_deleted", Some(105))
    );
    assert_eq!(j["lookup"]["deleted_by_range"]["file"], "000008.sst");
    // In the MemTable: a range delete, and a put newer than it.
    let out = tree("key0073").assert_ok().to_owned();
    assert!(
        out.contains("deleted by range tombstone ['key0070' .. 'key0075') @106 in the MemTable (000007.log) at step 1"),
        "{out}"
    );
    let j = tree_json("key0072");
    assert_eq!(
        steps(&j)[0],
        step("memtable", "000007.log", "found", Some(106))
    );

    // Summaries count range tombstones per file and per level.
    let j = tree_json("key0025");
    assert_eq!(j["levels"][0]["range_tombstones"], 5);
    let counts: Vec<(u64, u64)> = j["levels"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["number"].as_u64().unwrap(),
                f["range_tombstones"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [(8, 1), (6, 4)]);
    assert_eq!(j["memtable"][0]["range_deletes"], 1);
    assert!(
        out.contains(
            "| 491 B, 2 entries, 0 tombstones, 4 range tombstones  ← the lookup stops here"
        ) || out.contains(", 2 entries, 0 tombstones, 4 range tombstones"),
        "{out}"
    );
    assert!(
        out.contains("'key0020' .. 'key0045', 4 range tombstones\n"),
        "{out}"
    );
    assert!(out.contains("(1 put, 0 deletes, 1 range delete)"), "{out}");
}

#[test]
fn db_tree_answers_as_the_engine_does_with_range_deletes() {
    let tmp = fixture();
    let mut keys: Vec<String> = (0..100).map(key).collect();
    keys.extend(["key005", "key006", "key0100", "a"].map(String::from));
    let mut answers = Vec::new();
    for k in &keys {
        let j = xtask(tmp.path(), &["db", "tree", "ranges", "--key", k, "--json"]).json();
        answers.push((
            j["lookup"]["result"].as_str().unwrap().to_owned(),
            j["lookup"]["value_preview"].as_str().map(str::to_owned),
        ));
    }
    let db = strata::Db::open(tmp.path().join("ranges")).unwrap();
    let mut deleted = 0;
    for (k, (result, preview)) in keys.iter().zip(answers) {
        match db.get(k).unwrap() {
            Some(v) => {
                assert_eq!(result, "found", "{k}");
                let shown = String::from_utf8(v[..24].to_vec()).unwrap();
                assert_eq!(preview.unwrap(), shown, "{k}");
            }
            None => {
                // Deleted if a range delete covers the key (whether or not it was ever
                // written), else absent (never written).
                let covered = [
                    ("key0020", "key0045"),
                    ("key005", "key006"),
                    ("key0070", "key0075"),
                ]
                .iter()
                .any(|(a, b)| *a <= k.as_str() && k.as_str() < *b);
                assert_eq!(result, if covered { "deleted" } else { "absent" }, "{k}");
                deleted += usize::from(covered);
            }
        }
    }
    // [key0020, key0045) but key0030, [key0050, key0060) and key005 itself,
    // [key0070, key0075) but key0072.
    assert_eq!(deleted, 24 + 11 + 4);
    db.close().unwrap();
}

#[test]
fn manifest_dump_counts_range_tombstones() {
    let tmp = fixture();
    let run = xtask(tmp.path(), &["manifest", "dump", "ranges"]);
    let out = run.assert_ok();
    let line = |number: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("+ L0 {number}")))
            .unwrap_or_else(|| panic!("{number} in {out}"))
            .to_owned()
    };
    assert!(
        line("000006.sst").contains("0 tombstones  4 range tombstones  seq 101..104"),
        "{out}"
    );
    assert!(
        line("000008.sst").contains("0 tombstones  1 range tombstone  seq 105..105"),
        "{out}"
    );
    assert!(
        out.contains("  L0: 2 files, 719 B, 2 entries, 0 tombstones, 5 range tombstones\n")
            || out.contains(", 2 entries, 0 tombstones, 5 range tombstones\n"),
        "{out}"
    );
    assert!(
        !out.lines()
            .any(|l| l.contains("000004.sst") && l.contains("range")),
        "{out}"
    );
    let j = xtask(tmp.path(), &["manifest", "dump", "ranges", "--json"]).json();
    let new_files: Vec<(u64, u64)> = j["edits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["new_files"].as_array().unwrap().clone())
        .map(|f| {
            (
                f["number"].as_u64().unwrap(),
                f["range_tombstones"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(new_files, [(4, 0), (4, 0), (6, 4), (8, 1)]);
    assert_eq!(j["levels"][0]["range_tombstones"], 5);
}

#[test]
fn verify_checks_the_range_deletion_block() {
    let tmp = fixture();
    let run = xtask(tmp.path(), &["verify", "ranges"]);
    let out = run.assert_ok();
    assert!(
        out.contains(
            "1 data block, 2 entries, range-deletion block (4 range tombstones) (live in L0)"
        ),
        "{out}"
    );

    // A flipped bit: the block's checksum fails; the table is named, with the offset
    // and the block.
    let path = tmp.path().join("ranges/000006.sst");
    let rd = footer(&path).range_del.unwrap();
    flip(&path, rd.offset + 3, 0x10);
    let run = xtask(tmp.path(), &["verify", "ranges"]);
    let err = run.assert_one_line_error();
    assert_eq!(
        err,
        format!(
            "error: damaged: 000006.sst at offset {}: block checksum mismatch (in the range-deletion block)",
            rd.offset
        )
    );
    assert!(run.stdout.contains("DAMAGED  000006.sst"), "{}", run.stdout);
    let run = xtask(tmp.path(), &["sst", "dump", "ranges/000006.sst"]);
    assert!(
        run.assert_one_line_error().contains(
            "block checksum mismatch — in the range-deletion block; the footer still reads"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_reports_a_range_deletion_block_that_does_not_decode() {
    let tmp = fixture();
    let path = tmp.path().join("ranges/000006.sst");
    let f = footer(&path);
    let rd = f.range_del.unwrap();
    // Behind a valid checksum: a restart count far beyond the block, then the trailer
    // re-sealed (checksum over stored bytes ‖ compression byte ‖ offset ‖ file id).
    let mut bytes = std::fs::read(&path).unwrap();
    let (o, s) = (rd.offset as usize, rd.size as usize);
    bytes[o + s - 4..o + s].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[o..o + s + 1]);
    h.update(&rd.offset.to_le_bytes());
    h.update(&f.file_id.to_le_bytes());
    bytes[o + s + 1..o + s + 5].copy_from_slice(&h.finalize().to_le_bytes());
    std::fs::write(&path, bytes).unwrap();

    let run = xtask(tmp.path(), &["verify", "ranges", "--json"]);
    let err = run.assert_one_line_error().to_owned();
    assert!(
        err.starts_with(&format!(
            "error: damaged: 000006.sst at offset {}: range-deletion block: ",
            rd.offset
        )),
        "{err}"
    );
    assert!(err.ends_with("(in the range-deletion block)"), "{err}");
    let j = run.json();
    assert_eq!(j["damaged"], 1);
    // The lookup that needs the table fails, naming it.
    let run = xtask(tmp.path(), &["db", "tree", "ranges", "--key", "key0025"]);
    assert!(
        run.assert_one_line_error().contains("000006.sst"),
        "{}",
        run.stderr
    );
}
