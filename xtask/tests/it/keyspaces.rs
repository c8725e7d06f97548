//! Keyspaces in the tools: `db tree --keyspace` shows one keyspace's tables and the WAL
//! entries its tables lack, `manifest dump` shows keyspace edits, `wal dump` names an
//! entry's keyspace, and `verify` checks every keyspace's tables.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

/// `dir/ks`: keys `d000..d049` in the default keyspace and `s000..s029` in keyspace
/// `side`, each flushed into a table; then `s100` (side) and `d100` (default) only in
/// the WAL. Left open (never closed), so the WAL keeps them.
fn keyspace_db(dir: &Path) {
    let db = strata::Db::open(dir.join("ks")).unwrap();
    let side = db.keyspace("side").unwrap();
    for i in 0..50 {
        db.put(format!("d{i:03}"), "default value").unwrap();
    }
    for i in 0..30 {
        side.put(format!("s{i:03}"), "side value").unwrap();
    }
    db.flush().unwrap();
    side.put("s100", "unflushed").unwrap();
    db.put("d100", "unflushed").unwrap();
    db.sync_wal().unwrap();
    // As a crash: the last two writes stay in the WAL alone.
    std::mem::forget(side);
    std::mem::forget(db);
}

/// Entries per level and the keys of the unflushed WAL entries `db tree` reports.
fn tree(tmp: &Path, keyspace: &str) -> (u64, Vec<String>) {
    let j = xtask(tmp, &["db", "tree", "ks", "--keyspace", keyspace, "--json"]).json();
    let entries = j["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["entries"].as_u64().unwrap())
        .sum();
    let wal_keys = j["memtable"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| [w["smallest"].clone(), w["largest"].clone()])
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    (entries, wal_keys)
}

#[test]
fn the_tools_show_and_check_each_keyspace() {
    let tmp = tempfile::tempdir().unwrap();
    keyspace_db(tmp.path());

    let (entries, wal) = tree(tmp.path(), "default");
    assert_eq!(entries, 50);
    assert_eq!(wal, ["d100", "d100"]);
    let (entries, wal) = tree(tmp.path(), "side");
    assert_eq!(entries, 30);
    assert_eq!(wal, ["s100", "s100"]);
    // The lookup replays in the keyspace asked for.
    let j: Value = xtask(
        tmp.path(),
        &[
            "db",
            "tree",
            "ks",
            "--keyspace",
            "side",
            "--key",
            "s007",
            "--json",
        ],
    )
    .json();
    assert_eq!(j["lookup"]["result"], "found", "{j}");
    assert_eq!(j["lookup"]["value_preview"], "side value", "{j}");
    let err = xtask(tmp.path(), &["db", "tree", "ks", "--keyspace", "nope"])
        .assert_one_line_error()
        .to_owned();
    assert!(err.contains("no keyspace is named \"nope\""), "{err}");

    let manifest = std::fs::read_dir(tmp.path().join("ks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with("MANIFEST-"))
        .unwrap();
    let dump = xtask(tmp.path(), &["manifest", "dump", &format!("ks/{manifest}")]);
    assert!(
        dump.stdout.contains("new keyspace 1 \"side\""),
        "{}",
        dump.stdout
    );
    assert!(
        dump.stdout.contains("keyspace 1, flushed sequence"),
        "{}",
        dump.stdout
    );

    let wal = std::fs::read_dir(tmp.path().join("ks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .max()
        .unwrap();
    let dump = xtask(tmp.path(), &["wal", "dump", &format!("ks/{wal}")]);
    assert!(
        dump.stdout.contains("keyspace 1: 's100'"),
        "{}",
        dump.stdout
    );
    assert!(dump.stdout.contains("\n    'd100'"), "{}", dump.stdout);

    // get, scan and stats read the keyspace asked for (read-only, beside the writer).
    let get = xtask(tmp.path(), &["get", "ks", "s007", "--keyspace", "side"]);
    assert_eq!(get.stdout, "side value\n", "{}", get.stderr);
    assert_eq!(
        xtask(tmp.path(), &["get", "ks", "s007"]).code,
        1,
        "not in the default keyspace"
    );
    let scan = xtask(
        tmp.path(),
        &["scan", "ks", "--keyspace", "side", "--limit", "0", "--json"],
    )
    .json();
    assert_eq!(
        scan["entries"].as_array().unwrap().len(),
        31,
        "30 flushed and s100"
    );
    let stats = xtask(tmp.path(), &["stats", "ks", "--keyspace", "side", "--json"]).json();
    let entries: u64 = stats["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["entries"].as_u64().unwrap())
        .sum();
    assert_eq!(entries, 30);
    let err = xtask(tmp.path(), &["scan", "ks", "--keyspace", "nope"])
        .assert_one_line_error()
        .to_owned();
    assert!(
        err.contains("no keyspace is named \"nope\" (it has default, side)"),
        "{err}"
    );

    let verify = xtask(tmp.path(), &["verify", "ks"]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    assert!(verify.stdout.contains("2 live tables"), "{}", verify.stdout);
}
