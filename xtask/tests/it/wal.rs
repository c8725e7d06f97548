//! `wal dump`: records, batches, and where reading stopped.

use crate::common::*;

#[test]
fn wal_dump_shows_each_record_its_batch_and_a_clean_end() {
    let tmp = fixtures();
    let run = xtask(tmp.path(), &["wal", "dump", "db/000007.log"]);
    insta::assert_snapshot!("wal_dump", run.assert_ok());

    let json = xtask(tmp.path(), &["wal", "dump", "db/000007.log", "--json"]).json();
    let records = json["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["entries"][0]["key"], "key0070");
    assert_eq!(records[0]["entries"][0]["kind"], "put");
    assert_eq!(records[0]["entries"][0]["value_bytes"], 40);
    assert_eq!(records[1]["entries"][0]["kind"], "del");
    assert_eq!(
        records[1]["entries"][0]["seq"].as_u64().unwrap(),
        records[0]["entries"][0]["seq"].as_u64().unwrap() + 1,
        "consecutive sequence numbers"
    );
    // The live log of a crash image: its records end cleanly, then the zeros it keeps
    // written ahead of its end.
    assert_eq!(json["end"]["state"], "preallocated");
    assert_eq!(json["error"], serde_json::Value::Null);
}

#[test]
fn a_record_larger_than_a_block_is_shown_with_its_fragments() {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    let db = strata::Db::open(&live).unwrap();
    db.put("big", vec![7u8; 100 * 1024]).unwrap();
    db.put("small", "x").unwrap();
    let wal = std::fs::read_dir(&live)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .unwrap();
    std::fs::copy(&wal, tmp.path().join("big.log")).unwrap();
    db.close().unwrap();

    let json = xtask(tmp.path(), &["wal", "dump", "big.log", "--json"]).json();
    let records = json["records"].as_array().unwrap();
    // 100 KiB from offset 19: the rest of block 0, two whole blocks, and a last piece.
    assert_eq!(records[0]["fragments"], 4);
    assert_eq!(records[0]["entries"][0]["value_bytes"], 100 * 1024);
    assert_eq!(
        records[0]["entries"][0]["value_preview"],
        format!("0x{}", "07".repeat(24)),
        "JSON previews are the first 24 bytes, in the command-line form"
    );
    assert_eq!(records[1]["fragments"], 1);
    assert_eq!(json["summary"]["entries"], 2);
}

#[test]
fn a_torn_tail_is_reported_with_the_records_before_it() {
    let tmp = fixtures();
    let wal = tmp.path().join("db/000007.log");
    truncate(&wal, records_end(&wal) - 3);
    let run = xtask(tmp.path(), &["wal", "dump", "db/000007.log"]);
    let err = run.assert_one_line_error();
    assert!(
        err.contains("db/000007.log: torn tail at offset 79")
            && err.contains("read 1 record (1 entry) before it"),
        "{err}"
    );
    assert!(
        run.stdout.contains("'key0070' seq:286, type:put"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("'key0160'"), "{}", run.stdout);
    assert!(
        run.stdout.contains("end: torn tail at offset 79"),
        "{}",
        run.stdout
    );
}

#[test]
fn damage_followed_by_intact_records_stops_reading_there() {
    let tmp = fixtures();
    let wal = tmp.path().join("db/000007.log");
    flip(&wal, 19 + 20, 0x01);
    let run = xtask(tmp.path(), &["wal", "dump", "db/000007.log", "--json"]);
    let err = run.assert_one_line_error();
    assert!(
        err.contains("fragment checksum mismatch at offset 19"),
        "{err}"
    );
    assert!(err.contains("intact data after it"), "{err}");
    let json = run.json();
    assert_eq!(json["end"]["state"], "stopped");
    assert_eq!(json["end"]["damage_offset"], 19);
    assert_eq!(json["records"].as_array().unwrap().len(), 0);
}
