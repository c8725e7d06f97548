//! `verify`: every checksum, every damaged file named with its offset.

use std::path::Path;

use serde_json::Value;
use strata::{Db, WriteBatch, WriteOptions};
use strata_core::{FileSystem, StdFs};
use strata_sstable::Table;

use crate::common::*;

fn footer(path: &Path) -> strata_sstable::Footer {
    Table::read_footer(&*StdFs.open(path).unwrap()).unwrap()
}

fn data_blocks(path: &Path) -> Vec<strata_sstable::BlockHandle> {
    Table::open(StdFs.open(path).unwrap(), 0, None)
        .unwrap()
        .index_entries()
        .map(|e| e.handle)
        .collect()
}

fn file<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == name)
        .unwrap_or_else(|| panic!("{name} not in {json}"))
}

#[test]
fn an_intact_database_verifies() {
    let tmp = fixtures();
    let run = xtask(tmp.path(), &["verify", "db"]);
    insta::assert_snapshot!("verify_ok", run.assert_ok());
    let json = xtask(tmp.path(), &["verify", "layered", "--json"]).json();
    assert_eq!(json["damaged"], 0);
    assert_eq!(json["files_checked"], 7, "CURRENT, manifest, five tables");
    assert_eq!(file(&json, "000005.sst")["note"], "live in L2");
}

#[test]
fn every_damaged_data_block_is_named_with_its_offset() {
    let tmp = fixtures();
    let path = tmp.path().join("db/000004.sst");
    let blocks = data_blocks(&path);
    let (a, b) = (blocks[1], blocks[blocks.len() - 2]);
    flip(&path, a.offset + 5, 0x01);
    flip(&path, b.offset + 9, 0x80);
    let run = xtask(tmp.path(), &["verify", "db", "--json"]);
    let err = run.assert_one_line_error();
    assert_eq!(
        err,
        format!(
            "error: damaged: 000004.sst at offset {}: block checksum mismatch",
            a.offset
        )
    );
    let json = run.json();
    assert_eq!(json["damaged"], 1);
    let t = file(&json, "000004.sst");
    assert_eq!(t["status"], "damaged");
    let offsets: Vec<u64> = t["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [a.offset, b.offset]);
    // The other files are still checked and fine.
    assert_eq!(file(&json, "000006.sst")["status"], "ok");
    assert_eq!(file(&json, "000007.log")["status"], "ok");
}

#[test]
fn damage_in_meta_blocks_and_truncation_are_named() {
    type Case = (&'static str, fn(&Path) -> u64, &'static str);
    let cases: [Case; 4] = [
        (
            "index",
            |p| footer(p).index.offset + 1,
            "(in the index block)",
        ),
        (
            "properties",
            |p| footer(p).properties.offset + 1,
            "(in the properties block)",
        ),
        (
            "filter",
            |p| footer(p).filter.offset + 1,
            "filter block unusable",
        ),
        (
            "footer",
            |p| footer(p).offset + 2,
            "footer checksum mismatch",
        ),
    ];
    for (what, offset, expect) in cases {
        let tmp = fixtures();
        let path = tmp.path().join("db/000006.sst");
        let at = offset(&path);
        flip(&path, at, 0x02);
        let run = xtask(tmp.path(), &["verify", "db"]);
        let err = run.assert_one_line_error().to_owned();
        assert!(
            err.starts_with("error: damaged: 000006.sst at offset "),
            "{what}: {err}"
        );
        assert!(run.stdout.contains(expect), "{what}: {}", run.stdout);
    }

    let tmp = fixtures();
    let path = tmp.path().join("db/000008.sst");
    truncate(&path, 1000);
    let run = xtask(tmp.path(), &["verify", "db/000008.sst"]);
    let err = run.assert_one_line_error();
    assert!(
        err.contains("000008.sst at offset 992: bad magic number"),
        "{err}"
    );
}

#[test]
fn wal_and_manifest_damage_fail_and_torn_tails_can_be_tolerated() {
    let tmp = fixtures();
    flip(&tmp.path().join("db/MANIFEST-000002"), 40, 0x01);
    let run = xtask(tmp.path(), &["verify", "db"]);
    let err = run.assert_one_line_error();
    assert!(err.contains("MANIFEST-000002 at offset 36"), "{err}");

    let tmp = fixtures();
    flip(&tmp.path().join("db/000007.log"), 30, 0x01);
    let err = xtask(tmp.path(), &["verify", "db"])
        .assert_one_line_error()
        .to_owned();
    assert!(
        err.contains("000007.log at offset 19: fragment checksum mismatch"),
        "{err}"
    );
    assert!(err.contains("intact data follows"), "{err}");

    let tmp = fixtures();
    let wal = tmp.path().join("db/000007.log");
    truncate(&wal, records_end(&wal) - 2);
    let run = xtask(tmp.path(), &["verify", "db"]);
    assert!(
        run.assert_one_line_error().contains("torn tail"),
        "{}",
        run.stderr
    );
    let run = xtask(
        tmp.path(),
        &["verify", "db", "--tolerate-torn-tail", "--json"],
    );
    run.assert_ok();
    let json = run.json();
    assert_eq!(json["warnings"], 1);
    assert_eq!(file(&json, "000007.log")["status"], "warning");
}

#[test]
fn tables_missing_or_differing_from_the_manifest_are_damage() {
    let tmp = fixtures();
    std::fs::remove_file(tmp.path().join("layered/000009.sst")).unwrap();
    let run = xtask(tmp.path(), &["verify", "layered"]);
    let err = run.assert_one_line_error();
    assert_eq!(
        err,
        "error: damaged: 000009.sst: named by the manifest but missing"
    );

    // An intact table in the wrong place: every checksum passes, the manifest disagrees.
    let tmp = fixtures();
    let dir = tmp.path().join("layered");
    std::fs::copy(dir.join("000011.sst"), dir.join("000009.sst")).unwrap();
    let run = xtask(tmp.path(), &["verify", "layered"]);
    let err = run.assert_one_line_error();
    assert!(
        err.contains("000009.sst: differs from the manifest"),
        "{err}"
    );
}

#[test]
fn single_files_verify_by_kind() {
    let tmp = fixtures();
    for f in [
        "db/000004.sst",
        "db/000007.log",
        "db/MANIFEST-000002",
        "db/CURRENT",
    ] {
        let run = xtask(tmp.path(), &["verify", f]);
        assert!(run.assert_ok().contains("ok"), "{f}: {}", run.stdout);
    }
    // A manifest under another name is recognised by its contents.
    std::fs::copy(
        tmp.path().join("db/MANIFEST-000002"),
        tmp.path().join("renamed"),
    )
    .unwrap();
    let json = xtask(tmp.path(), &["verify", "renamed", "--json"]).json();
    assert_eq!(json["files"][0]["kind"], "manifest");
}

/// A live, healthy database that took a synced write: its newest WAL ends in the zeros
/// the engine preallocates for synced writers. `verify` (and `db tree`, `wal dump`)
/// must call that healthy, so a health check built on them does not page falsely; the
/// same database with a damaged record still fails.
#[test]
fn a_live_database_with_a_preallocated_wal_verifies_and_damage_still_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("live");
    let db = Db::builder(&dir).open().unwrap();
    for i in 0..20 {
        let mut batch = WriteBatch::new();
        batch.put(key(i), value(i, 0));
        db.write(batch, WriteOptions { sync: true }).unwrap();
    }
    let wal = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .unwrap();
    let wal_len = std::fs::metadata(&wal).unwrap().len();
    assert!(
        wal_len >= 1 << 20,
        "synced writes preallocate the WAL: {wal_len}"
    );

    // Run against the open database, as a health check would.
    let run = xtask(tmp.path(), &["verify", "live", "--json"]);
    run.assert_ok();
    let json = run.json();
    assert_eq!(json["damaged"], 0, "{json}");
    assert_eq!(json["warnings"], 0, "{json}");
    let wal_name = wal.file_name().unwrap().to_str().unwrap();
    let summary = file(&json, wal_name)["summary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        summary.contains("20 records") && summary.contains("preallocated zeros"),
        "{summary}"
    );
    let out = xtask(tmp.path(), &["db", "tree", "live"]);
    let tree = out.assert_ok();
    assert!(
        !tree.contains("torn") && !tree.contains("zero-filled"),
        "{tree}"
    );
    let wal_arg = format!("live/{wal_name}");
    let dump = xtask(tmp.path(), &["wal", "dump", &wal_arg, "--json"]);
    dump.assert_ok();
    assert_eq!(dump.json()["end"]["state"], "preallocated");

    // Damage still is damage: a flip inside the records, past the log header, with
    // records after it (the database stays open; it never reads its live WAL again).
    flip(&wal, 19 + 9 * 60, 0x10);
    let err = xtask(tmp.path(), &["verify", "live"])
        .assert_one_line_error()
        .to_owned();
    assert!(
        err.contains(wal_name) && err.contains("intact data follows"),
        "{err}"
    );
    drop(db);
}

/// Filter kinds are added without a format version change (the format page's rule:
/// an older reader answers "may contain"), so a table whose intact filter is of a kind
/// this build does not know is not damaged: `verify` warns and exits 0, `sst dump`
/// says so. A damaged filter is still damage.
#[test]
fn an_unknown_filter_kind_is_a_warning_not_damage() {
    let tmp = fixtures();
    let path = tmp.path().join("db/000004.sst");
    let f = footer(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    let (start, size) = (f.filter.offset as usize, f.filter.size as usize);
    // The kind is the filter block's last byte; reseal the block's checksum.
    bytes[start + size - 1] = 9;
    let compression = bytes[start + size];
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[start..start + size]);
    h.update(&[compression]);
    h.update(&f.filter.offset.to_le_bytes());
    h.update(&f.file_id.to_le_bytes());
    bytes[start + size + 1..start + size + 5].copy_from_slice(&h.finalize().to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();

    let run = xtask(tmp.path(), &["verify", "db", "--json"]);
    run.assert_ok();
    let json = run.json();
    assert_eq!(json["damaged"], 0, "{json}");
    assert_eq!(json["warnings"], 1, "{json}");
    assert_eq!(file(&json, "000004.sst")["status"], "warning");
    let dump = xtask(tmp.path(), &["sst", "dump", "db/000004.sst"]);
    assert!(
        dump.assert_ok()
            .contains("filter: filter kind 9, written by a newer build; not damage"),
        "{}",
        dump.stdout
    );

    // The same byte changed without resealing the checksum: damage.
    bytes[start + size - 1] = 2;
    std::fs::write(&path, &bytes).unwrap();
    let err = xtask(tmp.path(), &["verify", "db"])
        .assert_one_line_error()
        .to_owned();
    assert!(
        err.contains("000004.sst") && err.contains("filter block unusable"),
        "{err}"
    );
}
