//! `sst dump` and `sst get`.

use std::sync::Arc;

use strata_core::{FileSystem, StdFs};
use strata_sstable::Table;

use crate::common::*;

fn open(path: &std::path::Path) -> Arc<Table> {
    Table::open(StdFs.open(path).unwrap(), 0, None).unwrap()
}

#[test]
fn sst_dump_shows_footer_properties_index_filter_and_entries() {
    let tmp = fixtures();
    let run = xtask(
        tmp.path(),
        &["sst", "dump", "layered/000009.sst", "--entries"],
    );
    insta::assert_snapshot!("sst_dump_entries", scrub(run.assert_ok()));
}

#[test]
fn sst_dump_json_agrees_with_the_table() {
    let tmp = fixtures();
    let path = tmp.path().join("db/000004.sst");
    let table = open(&path);
    let json = xtask(
        tmp.path(),
        &["sst", "dump", "db/000004.sst", "--json", "--entries"],
    )
    .json();
    let p = table.properties();
    assert_eq!(json["properties"]["entries"], p.entry_count);
    assert_eq!(json["properties"]["data_blocks"], p.data_block_count);
    assert_eq!(
        json["footer"]["file_id"],
        format!("{:016x}", table.footer().file_id)
    );
    assert_eq!(
        json["footer"]["index"]["offset"],
        table.footer().index.offset
    );
    let index = json["index"].as_array().unwrap();
    let blocks = table.index_entries().len();
    assert!(blocks > 20, "small blocks: many index entries ({blocks})");
    assert_eq!(json["index_blocks"], blocks);
    assert_eq!(index.len(), 20, "the default --index-limit");
    for (row, e) in index.iter().zip(table.index_entries()) {
        assert_eq!(row["offset"], e.handle.offset);
        assert_eq!(row["size"], e.handle.size);
    }
    let all = xtask(
        tmp.path(),
        &[
            "sst",
            "dump",
            "db/000004.sst",
            "--json",
            "--index-limit",
            "0",
        ],
    )
    .json();
    assert_eq!(all["index"].as_array().unwrap().len(), blocks);
    let text = xtask(tmp.path(), &["sst", "dump", "db/000004.sst"]);
    let text = text.assert_ok();
    assert!(
        text.contains(&format!("index: {blocks} data blocks")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "… {} more (--index-limit 0 prints all)",
            blocks - 20
        )),
        "{text}"
    );
    let entries = json["entries"].as_array().unwrap();
    assert_eq!(entries.len() as u64, p.entry_count);
    assert_eq!(entries[0]["key"]["user_key"], "key0000");
    assert_eq!(entries[199]["key"]["user_key"], "key0199");
    match table.filter_status() {
        strata_sstable::FilterStatus::Loaded { bits, probes, .. } => {
            assert_eq!(json["filter"]["bits"], bits);
            assert_eq!(json["filter"]["probes"], probes);
            let fp = json["filter"]["estimated_fp_rate"].as_f64().unwrap();
            assert!(fp > 0.0 && fp < 0.05, "{fp}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sst_get_shows_the_bloom_answer_the_block_read_and_the_result() {
    let tmp = fixtures();
    let found = xtask(tmp.path(), &["sst", "get", "layered/000005.sst", "kiwi"]);
    insta::assert_snapshot!("sst_get_found", found.assert_ok());
    let deleted = xtask(
        tmp.path(),
        &["sst", "get", "layered/000009.sst", "kiwi", "--json"],
    )
    .json();
    assert_eq!(deleted["result"], "deleted");
    assert_eq!(deleted["versions"][0]["kind"], "del");
    // Keys in hex are the same keys.
    let hex = xtask(
        tmp.path(),
        &["sst", "get", "layered/000005.sst", "0x6b697769", "--json"],
    )
    .json();
    assert_eq!(hex["result"], "found");
    assert_eq!(hex["value_preview"], "brown");
    // Older snapshots see older versions.
    let old = xtask(
        tmp.path(),
        &[
            "sst",
            "get",
            "db/000006.sst",
            "key0060",
            "--snapshot",
            "1",
            "--json",
        ],
    )
    .json();
    assert_eq!(old["result"], "absent");
}

#[test]
fn sst_get_names_a_bloom_false_positive_and_a_certain_no() {
    let tmp = fixtures();
    let path = tmp.path().join("layered/000005.sst");
    let table = open(&path);
    let fp = (0..10_000)
        .map(|i| format!("absent{i}"))
        .find(|k| table.may_contain(k.as_bytes()))
        .expect("some absent key passes a one-block filter");
    let no = (0..10_000)
        .map(|i| format!("absent{i}"))
        .find(|k| !table.may_contain(k.as_bytes()))
        .unwrap();

    let json = xtask(
        tmp.path(),
        &["sst", "get", "layered/000005.sst", &fp, "--json"],
    )
    .json();
    assert_eq!(json["bloom"], "may_contain");
    assert_eq!(json["result"], "absent");
    assert_eq!(json["bloom_false_positive"], true);
    let text = xtask(tmp.path(), &["sst", "get", "layered/000005.sst", &fp]);
    assert!(
        text.assert_ok().contains("false positive"),
        "{}",
        text.stdout
    );

    let json = xtask(
        tmp.path(),
        &["sst", "get", "layered/000005.sst", &no, "--json"],
    )
    .json();
    assert_eq!(json["bloom"], "absent");
    assert_eq!(json["block"], serde_json::Value::Null, "no block read");
    assert_eq!(json["bloom_false_positive"], false);
}

#[test]
fn sst_dump_entries_stops_at_a_damaged_block_with_what_it_read() {
    let tmp = fixtures();
    let path = tmp.path().join("db/000004.sst");
    let third = open(&path).index_entries().nth(2).unwrap().handle;
    flip(&path, third.offset + 3, 0x04);
    let run = xtask(tmp.path(), &["sst", "dump", "db/000004.sst", "--entries"]);
    let err = run.assert_one_line_error();
    let read_before = run
        .stdout
        .lines()
        .filter(|l| l.contains("type:put"))
        .count();
    assert!(read_before > 0);
    assert_eq!(
        err,
        format!(
            "error: db/000004.sst: corruption at offset {}: block checksum mismatch — {read_before} entries read before it",
            third.offset
        )
    );
}

#[test]
fn compressed_tables_dump_and_verify() {
    use strata_core::{InternalKey, ValueKind};
    use strata_sstable::{Compression, TableBuilder, TableOptions};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("000001.sst");
    let options = TableOptions {
        block_size_bytes: 512,
        compression: Compression::Lz4,
        ..TableOptions::default()
    };
    let mut b = TableBuilder::new(StdFs.create(&path).unwrap(), options).unwrap();
    for i in 0..500u32 {
        let k = InternalKey::new(key(i).as_bytes(), u64::from(i) + 1, ValueKind::Put);
        b.add(k.as_bytes(), &[b'z'; 200]).unwrap();
    }
    b.finish().unwrap();

    let json = xtask(
        tmp.path(),
        &["sst", "dump", "000001.sst", "--json", "--entries"],
    )
    .json();
    assert_eq!(json["properties"]["compression"], "lz4");
    assert!(
        json["properties"]["data_bytes_on_disk"].as_u64()
            < json["properties"]["data_bytes_uncompressed"].as_u64()
    );
    assert_eq!(json["entries"].as_array().unwrap().len(), 500);
    assert_eq!(json["entries"][7]["value_bytes"], 200);
    xtask(tmp.path(), &["verify", "000001.sst"]).assert_ok();
    let block = open(&path).index_entries().nth(3).unwrap().handle;
    flip(&path, block.offset + block.size / 2, 0x10);
    let err = xtask(tmp.path(), &["verify", "000001.sst"])
        .assert_one_line_error()
        .to_owned();
    assert!(
        err.contains(&format!("000001.sst at offset {}", block.offset)),
        "{err}"
    );
}
