//! Merge operands and expiring values in the tools: `db tree --key` walks the lookup
//! through operands to their base as the engine does, `sst dump`/`sst get` show kinds
//! `merge` and `put-ttl` and table format 4, `get` without the application's operator
//! says why it cannot answer, and `verify` accepts the tables.
//!
//! The database is [`merge_db`]: an L0 table with puts of `a` and `b`, a newer L0 table
//! with operands of `a` and `c`, and the WAL one more operand of `a`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use strata::{Db, MergeOperator};

use crate::common::*;

/// Appends operands, comma-separated.
struct Append;

impl MergeOperator for Append {
    fn name(&self) -> &str {
        "append"
    }

    fn merge(&self, _: &[u8], existing: Option<&[u8]>, ops: &[&[u8]]) -> Option<Vec<u8>> {
        let mut parts: Vec<&[u8]> = existing.into_iter().collect();
        parts.extend_from_slice(ops);
        Some(parts.join(&b","[..]))
    }
}

fn merge_db(root: &Path) -> PathBuf {
    let live = root.join("merges-live");
    let db = Db::builder(&live)
        .l0_compaction_trigger(64)
        .idle_compaction(None)
        .merge_operator(Append)
        .open()
        .unwrap();
    db.put("a", "base").unwrap();
    db.put("b", "solo").unwrap();
    db.flush().unwrap();
    db.merge("a", "x").unwrap();
    db.merge("c", "only").unwrap();
    db.put_with_ttl("t", "lives-a-day", std::time::Duration::from_secs(86_400))
        .unwrap();
    db.flush().unwrap();
    db.merge("a", "y").unwrap();
    assert_eq!(db.get("a").unwrap().as_deref(), Some(&b"base,x,y"[..]));
    crash_image(db, &live, &root.join("merges"))
}

/// (source, answer) of each step of a `db tree --key` lookup.
fn steps(j: &Value) -> Vec<(String, String)> {
    j["lookup"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_owned(),
                s["answer"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn db_tree_follows_operands_down_to_their_base() {
    let tmp = tempfile::tempdir().unwrap();
    merge_db(tmp.path());
    let j = xtask(
        tmp.path(),
        &["db", "tree", "merges", "--key", "a", "--json"],
    )
    .json();
    let l = &j["lookup"];
    assert_eq!(l["result"], "merged", "{j:#}");
    assert_eq!(
        steps(&j),
        [
            ("memtable".to_owned(), "merge".to_owned()),
            ("L0".to_owned(), "merge".to_owned()),
            ("L0".to_owned(), "found".to_owned()),
        ]
    );
    // Operands newest first: the WAL's (seq 6), then the table's (seq 3); the put
    // below them (seq 1) answered at step 3.
    assert_eq!(l["merge_operands"], serde_json::json!([6, 3]));
    assert_eq!(l["answered_by"], 3);
    let text = xtask(tmp.path(), &["db", "tree", "merges", "--key", "a"]);
    assert!(
        text.assert_ok().contains(
            "the application's merge operator folds 2 merge operands onto the answer at step 3"
        ),
        "{}",
        text.stdout
    );

    // An operand with nothing below it folds onto nothing.
    let c = xtask(
        tmp.path(),
        &["db", "tree", "merges", "--key", "c", "--json"],
    )
    .json();
    assert_eq!(c["lookup"]["result"], "merged");
    assert_eq!(c["lookup"]["answered_by"], Value::Null);
    assert_eq!(c["lookup"]["merge_operands"], serde_json::json!([4]));
    // A plain put is found as before.
    let b = xtask(
        tmp.path(),
        &["db", "tree", "merges", "--key", "b", "--json"],
    )
    .json();
    assert_eq!(b["lookup"]["result"], "found");
}

#[test]
fn sst_tools_show_operands_and_table_format_4() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = merge_db(tmp.path());
    // The newer table holds the operands.
    let mut tables: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".sst"))
        .collect();
    tables.sort();
    let newer = format!("merges/{}", tables.last().unwrap());
    let dump = xtask(tmp.path(), &["sst", "dump", &newer, "--json", "--entries"]).json();
    assert_eq!(dump["footer"]["format_version"], 4, "{dump:#}");
    let kinds: Vec<&str> = dump["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["merge", "merge", "put-ttl"]);
    let get = xtask(tmp.path(), &["sst", "get", &newer, "a", "--json"]).json();
    assert_eq!(get["result"], "merge");
    assert_eq!(get["versions"][0]["kind"], "merge");
    xtask(tmp.path(), &["verify", "merges"]).assert_ok();
}

#[test]
fn get_without_the_operator_says_it_cannot_fold() {
    let tmp = tempfile::tempdir().unwrap();
    merge_db(tmp.path());
    let run = xtask(tmp.path(), &["get", "merges", "a"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("no merge operator"), "{}", run.stderr);
    // Keys without operands read as always; an expiring value reads as its value.
    assert_eq!(
        xtask(tmp.path(), &["get", "merges", "b"])
            .assert_ok()
            .trim(),
        "solo"
    );
    assert_eq!(
        xtask(tmp.path(), &["get", "merges", "t"])
            .assert_ok()
            .trim(),
        "lives-a-day"
    );
    let t = xtask(
        tmp.path(),
        &["db", "tree", "merges", "--key", "t", "--json"],
    )
    .json();
    assert_eq!(t["lookup"]["result"], "found");
    assert_eq!(t["lookup"]["value_preview"], "lives-a-day");
}
