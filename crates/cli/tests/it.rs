//! The `strata` binary on a database another handle holds open for writing: `get`,
//! `scan`, `stats` and `verify` answer from one consistent state without taking the
//! lock or writing, and the writer goes on undisturbed.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use strata::{Db, WriteBatch, WriteOptions};

struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

fn strata(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .unwrap();
    Run {
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        code: out.status.code().unwrap_or(-1),
    }
}

fn ok(args: &[&str]) -> String {
    let run = when_unlocked(args);
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    assert_eq!(run.stderr, "", "{args:?}");
    run.stdout
}

/// Runs a command; a refusal because the database is locked is retried briefly. A
/// handle this process closed can leave its lock held for a moment: another test
/// thread's freshly forked child keeps a copy of the lock's descriptor until it execs.
/// Such a refusal is the harness's, not the tool's.
fn when_unlocked(args: &[&str]) -> Run {
    let started = std::time::Instant::now();
    loop {
        let run = strata(args);
        if run.code != 0
            && run.stderr.contains("is locked")
            && started.elapsed() < std::time::Duration::from_secs(2)
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
            continue;
        }
        return run;
    }
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).unwrap()
}

/// A database with tables on two levels and unflushed, synced writes in its WAL,
/// left open.
fn live_db(dir: &Path) -> Db {
    let db = Db::builder(dir).open().unwrap();
    for i in 0..500 {
        db.put(format!("user:{i:04}"), format!("name-{i}")).unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    for i in 0..100 {
        db.put(format!("user:{i:04}"), format!("renamed-{i}"))
            .unwrap();
    }
    db.flush().unwrap();
    let mut batch = WriteBatch::new();
    batch
        .put("user:0007", "only in the WAL")
        .delete("user:0008");
    batch.put([0xff, 0x00], [0x01, 0x02]);
    db.write(batch, WriteOptions { sync: true }).unwrap();
    db
}

/// Opens `dir`, waiting out a lock that outlives its holder's close for a moment: a
/// process forked meanwhile by another test thread (to run the tool) holds a copy of
/// the lock's descriptor until it execs.
fn open_when_unlocked(dir: &std::path::Path) -> Db {
    let started = std::time::Instant::now();
    loop {
        match Db::open(dir) {
            Err(e)
                if e.kind() == strata::ErrorKind::Locked
                    && started.elapsed() < std::time::Duration::from_secs(2) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other.unwrap(),
        }
    }
}

#[test]
fn get_scan_stats_and_verify_read_a_database_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let writer = live_db(&dir);
    let d = dir.to_str().unwrap();

    assert_eq!(ok(&["get", d, "user:0007"]), "only in the WAL\n");
    assert_eq!(ok(&["get", d, "user:0050"]), "renamed-50\n");
    assert_eq!(ok(&["get", d, "user:0400"]), "name-400\n");
    assert_eq!(ok(&["get", d, "0xff00"]), "0x0102\n");
    let missing = strata(&["get", d, "user:0008"]);
    assert_eq!(missing.code, 1);
    assert_eq!(missing.stdout, "");
    assert!(
        missing.stderr.contains("key 'user:0008' not found"),
        "{}",
        missing.stderr
    );
    let got = json(&["get", d, "user:0007", "--json"]);
    assert_eq!(got["found"], true);
    assert_eq!(got["value_bytes"], 15);

    let scan = ok(&["scan", d, "--prefix", "user:000", "--limit", "0"]);
    let lines: Vec<&str> = scan.lines().collect();
    assert_eq!(
        lines.len(),
        9,
        "user:0000..0009 without the deleted 0008: {scan}"
    );
    assert_eq!(lines[0], "'user:0000' => renamed-0");
    assert_eq!(lines[7], "'user:0007' => only in the WAL");
    let back = ok(&[
        "scan",
        d,
        "--from",
        "user:0100",
        "--to",
        "user:0200",
        "--reverse",
        "--limit",
        "2",
    ]);
    assert_eq!(
        back.lines().collect::<Vec<_>>(),
        [
            "'user:0199' => name-199",
            "'user:0198' => name-198",
            "… more entries in range (--limit 2 shown; --limit 0 prints all)"
        ]
    );
    let all = json(&["scan", d, "--limit", "0", "--json"]);
    let entries = all["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 500, "500 users, one deleted, one binary key");
    assert_eq!(entries.iter().filter(|e| e["key"] == "0xff00").count(), 1);
    assert_eq!(all["truncated"], false);

    let stats = json(&["stats", d, "--json"]);
    let levels = stats["levels"].as_array().unwrap();
    let entries: u64 = levels.iter().map(|l| l["entries"].as_u64().unwrap()).sum();
    assert_eq!(entries, 600, "500 compacted + 100 flushed, each once");
    assert!(levels[0]["files"].as_u64().unwrap() >= 1, "{stats}");
    assert!(
        stats["memtable_bytes"].as_u64().unwrap() > 0,
        "the WAL's batch"
    );
    assert!(ok(&["stats", d]).contains("L0"), "text table");

    // verify: a live database with a synced (preallocated) WAL is healthy.
    assert!(ok(&["verify", d]).contains("0 damaged"));

    // The tools took no lock and wrote nothing the writer minds.
    writer.put("after", "the tools").unwrap();
    writer.close().unwrap();
    let reopened = open_when_unlocked(&dir);
    assert_eq!(
        reopened.get("user:0007").unwrap().as_deref(),
        Some(&b"only in the WAL"[..])
    );
    assert_eq!(
        reopened.get("after").unwrap().as_deref(),
        Some(&b"the tools"[..])
    );
}

#[test]
fn a_directory_that_is_not_a_database_is_one_line_of_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    for args in [["get", d, "k"].as_slice(), &["scan", d], &["stats", d]] {
        let run = strata(args);
        assert_eq!(run.code, 1, "{args:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.contains("not a Strata database"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing created"
    );
}

#[test]
fn checkpoint_and_backups_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (dbdir, bk) = (tmp.path().join("db"), tmp.path().join("bk"));
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let db = live_db(&dbdir);
    // The database is open (locked): the writable commands refuse, one line.
    let run = strata(&["checkpoint", &path(&dbdir), &path(&tmp.path().join("cp0"))]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("lock"), "{}", run.stderr);
    db.close().unwrap();

    let cp = json(&[
        "checkpoint",
        &path(&dbdir),
        &path(&tmp.path().join("cp")),
        "--json",
    ]);
    assert_eq!(cp["linked"], cp["tables"], "{cp}");
    let got = ok(&["get", &path(&tmp.path().join("cp")), "user:0007"]);
    assert_eq!(got.trim(), "only in the WAL");

    // One keyspace alone: it becomes the checkpoint's default keyspace.
    let db = open_when_unlocked(&dbdir);
    db.keyspace("side").unwrap().put("only", "in side").unwrap();
    db.close().unwrap();
    let side = tmp.path().join("cp-side");
    let missing = when_unlocked(&[
        "checkpoint",
        &path(&dbdir),
        &path(&side),
        "--keyspace",
        "nope",
    ]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("no keyspace"), "{}", missing.stderr);
    json(&[
        "checkpoint",
        &path(&dbdir),
        &path(&side),
        "--keyspace",
        "side",
        "--json",
    ]);
    assert_eq!(ok(&["get", &path(&side), "only"]).trim(), "in side");
    assert_ne!(
        strata(&["get", &path(&side), "user:0007"]).code,
        0,
        "not in keyspace side"
    );
    let db = open_when_unlocked(&dbdir);
    db.drop_keyspace("side").unwrap();
    db.close().unwrap();

    let first = json(&["backup", "create", &path(&dbdir), &path(&bk), "--json"]);
    assert_eq!(first["id"], 1);
    assert_eq!(first["copied_tables"], first["tables"]);
    let db = open_when_unlocked(&dbdir);
    db.put("user:0001", "changed").unwrap();
    db.close().unwrap();
    let second = json(&["backup", "create", &path(&dbdir), &path(&bk), "--json"]);
    assert_eq!(second["id"], 2);
    assert!(
        second["copied_tables"].as_u64().unwrap() < second["tables"].as_u64().unwrap(),
        "{second}"
    );
    let list = json(&["backup", "list", &path(&bk), "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(ok(&["backup", "verify", &path(&bk), "1"]).contains("ok"));

    let r1 = tmp.path().join("r1");
    json(&["backup", "restore", &path(&bk), "1", &path(&r1), "--json"]);
    assert_eq!(ok(&["get", &path(&r1), "user:0001"]).trim(), "renamed-1");

    // Damage: verify and restore name the file and fail.
    for table in std::fs::read_dir(bk.join("tables")).unwrap() {
        let table = table.unwrap().path();
        let mut bytes = std::fs::read(&table).unwrap();
        bytes[10] ^= 1;
        std::fs::write(&table, bytes).unwrap();
    }
    let bad: Vec<Run> = [
        strata(&["backup", "verify", &path(&bk), "1"]),
        strata(&[
            "backup",
            "restore",
            &path(&bk),
            "1",
            &path(&tmp.path().join("r2")),
        ]),
    ]
    .into_iter()
    .collect();
    for run in bad {
        assert_ne!(run.code, 0);
        assert!(run.stderr.contains("corruption"), "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }

    let purged = json(&["backup", "purge", &path(&bk), "--keep", "1", "--json"]);
    assert_eq!(purged["removed_backups"], serde_json::json!([1]));
    assert_eq!(
        json(&["backup", "list", &path(&bk), "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
