//! `db tree`: the picture, the lookup replay, and the SVG.

use serde_json::Value;

use crate::common::*;

/// Writes the fixtures to `$STRATA_FIXTURES` (for docs/tools.md): `cargo test -p xtask
/// -- --ignored write_fixtures`.
#[test]
#[ignore]
fn write_fixtures() {
    let root = std::path::PathBuf::from(std::env::var("STRATA_FIXTURES").unwrap());
    std::fs::create_dir_all(&root).unwrap();
    engine_db(&root);
    layered_db(&root);
    range_db(&root);
}

#[test]
fn tree_pictures_the_levels_and_replays_a_lookup() {
    let tmp = fixtures();
    let run = xtask(tmp.path(), &["db", "tree", "layered", "--key", "banana"]);
    insta::assert_snapshot!("tree_layered_banana", run.assert_ok());
    let run = xtask(tmp.path(), &["db", "tree", "db", "--key", "key0160"]);
    insta::assert_snapshot!("tree_engine_key0160", run.assert_ok());
    // Without a key: the picture and the file list, no lookup.
    let plain = xtask(tmp.path(), &["db", "tree", "layered"]);
    let out = plain.assert_ok();
    assert!(
        !out.contains('▼') && !out.contains("lookup of") && !out.contains('█'),
        "{out}"
    );
    assert_eq!(out.matches(".sst").count(), 5, "{out}");
}

/// (source, file, bloom, answer) of each step.
fn steps(json: &Value) -> Vec<(String, String, String, String)> {
    json["lookup"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_owned(),
                s["file"].as_str().unwrap().to_owned(),
                s["bloom"].as_str().unwrap_or("-").to_owned(),
                s["answer"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn step(source: &str, file: &str, bloom: &str, answer: &str) -> (String, String, String, String) {
    (source.into(), file.into(), bloom.into(), answer.into())
}

#[test]
fn lookups_visit_l0_newest_first_then_one_file_per_level() {
    let tmp = fixtures();
    let tree = |key: &str| {
        xtask(
            tmp.path(),
            &["db", "tree", "layered", "--key", key, "--json"],
        )
        .json()
    };

    let j = tree("banana");
    assert_eq!(
        steps(&j),
        [
            step("L0", "000012.sst", "absent", "absent"),
            step("L0", "000011.sst", "may_contain", "found"),
            step("L1", "000008.sst", "-", "not_visited"),
            step("L2", "000005.sst", "-", "not_visited"),
        ]
    );
    assert_eq!(j["lookup"]["result"], "found");
    assert_eq!(j["lookup"]["value_preview"], "ripe");
    assert_eq!(j["lookup"]["answered_by"], 2);

    let j = tree("lemon");
    assert_eq!(
        steps(&j),
        [
            step("L1", "000009.sst", "absent", "absent"),
            step("L2", "000005.sst", "may_contain", "found"),
        ]
    );
    assert_eq!(j["lookup"]["value_preview"], "yellow");

    // A tombstone stops the lookup: the older value below is never read.
    let j = tree("kiwi");
    assert_eq!(j["lookup"]["result"], "deleted");
    assert_eq!(steps(&j)[1], step("L2", "000005.sst", "-", "not_visited"));

    let j = tree("zzz");
    assert!(steps(&j).is_empty());
    assert_eq!(j["lookup"]["result"], "absent");

    // The highlighted files are exactly those whose range covers the key.
    let j = tree("cherry");
    let covering: Vec<u64> = j["levels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["files"].as_array().unwrap().clone())
        .filter(|f| f["covers_key"] == true)
        .map(|f| f["number"].as_u64().unwrap())
        .collect();
    assert_eq!(covering, [12, 11, 8, 5]);
}

#[test]
fn the_replayed_lookup_answers_as_the_engine_does() {
    let tmp = fixtures();
    let mut keys: Vec<String> = (0..200).step_by(7).map(key).collect();
    keys.extend(
        [
            "key0060", "key0070", "key0160", "key0155", "key0099", "key0500", "a",
        ]
        .map(String::from),
    );
    let mut answers = Vec::new();
    for k in &keys {
        let j = xtask(tmp.path(), &["db", "tree", "db", "--key", k, "--json"]).json();
        answers.push((
            j["lookup"]["result"].as_str().unwrap().to_owned(),
            j["lookup"]["value_preview"].as_str().map(str::to_owned),
        ));
    }
    // The oracle: the engine itself, recovering the same image (WAL replay included).
    let db = strata::Db::open(tmp.path().join("db")).unwrap();
    for (k, (result, preview)) in keys.iter().zip(answers) {
        match db.get(k).unwrap() {
            Some(v) => {
                assert_eq!(result, "found", "{k}");
                let shown = String::from_utf8(v[..24].to_vec()).unwrap();
                assert_eq!(preview.unwrap(), shown, "{k}");
            }
            None => assert!(result == "deleted" || result == "absent", "{k}: {result}"),
        }
    }
    db.close().unwrap();
}

#[test]
fn unflushed_data_is_looked_up_first_and_said_so() {
    let tmp = fixtures();
    let j = xtask(
        tmp.path(),
        &["db", "tree", "db", "--key", "key0070", "--json"],
    )
    .json();
    assert_eq!(j["memtable"][0]["file"], "000007.log");
    assert_eq!(j["memtable"][0]["entries"], 2);
    assert_eq!(
        steps(&j),
        [
            step("memtable", "000007.log", "-", "found"),
            step("L0", "000006.sst", "-", "not_visited"),
            step("L6", "000004.sst", "-", "not_visited"),
        ]
    );
    // Not in the MemTable: it says so, then goes on to the tables.
    let j = xtask(
        tmp.path(),
        &["db", "tree", "db", "--key", "key0062", "--json"],
    )
    .json();
    assert_eq!(
        steps(&j),
        [
            step("memtable", "000007.log", "-", "absent"),
            step("L0", "000006.sst", "may_contain", "deleted"),
            step("L6", "000004.sst", "-", "not_visited"),
        ]
    );
}

#[test]
fn the_svg_is_the_same_picture_and_well_formed_xml() {
    let tmp = fixtures();
    let run = xtask(
        tmp.path(),
        &[
            "db", "tree", "layered", "--key", "banana", "--svg", "tree.svg",
        ],
    );
    run.assert_ok();
    let text = std::fs::read_to_string(tmp.path().join("tree.svg")).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let files: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("file"))
        .collect();
    assert_eq!(files.len(), 5, "one bar per table");
    let fill = |number: &str| {
        files
            .iter()
            .find(|n| n.attribute("data-file") == Some(number))
            .unwrap()
            .attribute("fill")
            .unwrap()
            .to_owned()
    };
    // Visited, answered, not visited, and not covering: four different looks.
    let (visited, answered, skipped, other) = (fill("12"), fill("11"), fill("5"), fill("9"));
    assert_eq!(fill("8"), skipped);
    let looks = [&visited, &answered, &skipped, &other];
    for (i, a) in looks.iter().enumerate() {
        for b in &looks[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // Each bar carries its details as a tooltip.
    let title = files[0]
        .children()
        .find(|c| c.has_tag_name("title"))
        .unwrap();
    assert!(title.text().unwrap().contains("entries"));
    assert_eq!(
        doc.descendants()
            .filter(|n| n.attribute("class") == Some("lookup-key"))
            .count(),
        1
    );
    let steps: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("step"))
        .map(|n| n.text().unwrap().to_owned())
        .collect();
    assert_eq!(steps.len(), 4);
    assert!(
        steps[1].contains("000011.sst") && steps[1].contains("found"),
        "{steps:?}"
    );

    // Keys needing escapes stay well-formed.
    xtask(
        tmp.path(),
        &[
            "db", "tree", "layered", "--key", "<&'\">", "--svg", "odd.svg",
        ],
    )
    .assert_ok();
    let odd = std::fs::read_to_string(tmp.path().join("odd.svg")).unwrap();
    roxmltree::Document::parse(&odd).unwrap();
}

#[test]
fn an_empty_database_is_an_empty_picture() {
    let tmp = tempfile::tempdir().unwrap();
    strata::Db::open(tmp.path().join("empty"))
        .unwrap()
        .close()
        .unwrap();
    let run = xtask(
        tmp.path(),
        &["db", "tree", "empty", "--key", "k", "--svg", "e.svg"],
    );
    assert!(
        run.assert_ok()
            .contains("empty: no tables and no unflushed data"),
        "{}",
        run.stdout
    );
    let svg = std::fs::read_to_string(tmp.path().join("e.svg")).unwrap();
    roxmltree::Document::parse(&svg).unwrap();
}

/// Writes a larger database (tens of MiB, files on several levels, made by background
/// compaction, so not deterministic) to `$STRATA_FIXTURES/big` for trying the tools by
/// hand: `cargo test -p xtask -- --ignored write_big_fixture`.
#[test]
#[ignore]
fn write_big_fixture() {
    let root = std::path::PathBuf::from(std::env::var("STRATA_FIXTURES").unwrap());
    let db = strata::Db::builder(root.join("big"))
        .memtable_bytes(1 << 20)
        .table_file_bytes(1 << 20)
        .level_base_bytes(4 << 20)
        .open()
        .unwrap();
    for round in 0..3 {
        for i in 0..100_000u32 {
            let k = (i.wrapping_mul(2_654_435_761) % 100_000).to_be_bytes();
            db.put(k, value(i, round)).unwrap();
            if i % 97 == 0 {
                db.delete((i + 1).to_be_bytes()).unwrap();
            }
        }
    }
    db.close().unwrap();
}

/// The SVG says what the lookup did at each file: a block read, a Bloom filter's "no"
/// (hatched), the answer, never reached (not numbered); a lookup the MemTable answered
/// numbers no table; the title names the database; the key axis has labels between
/// its ends.
#[test]
fn the_svg_tells_what_the_lookup_did_at_each_file() {
    let tmp = fixtures();
    let svg = |dir: &str, key: &str| {
        let name = format!("{dir}-{key}.svg");
        xtask(
            tmp.path(),
            &["db", "tree", dir, "--key", key, "--svg", &name],
        )
        .assert_ok();
        std::fs::read_to_string(tmp.path().join(name)).unwrap()
    };
    let fills = |text: &str| -> std::collections::BTreeMap<String, String> {
        let doc = roxmltree::Document::parse(text).unwrap();
        doc.descendants()
            .filter(|n| n.attribute("class") == Some("file"))
            .map(|n| {
                (
                    n.attribute("data-file").unwrap().to_owned(),
                    n.attribute("fill").unwrap().to_owned(),
                )
            })
            .collect()
    };
    let numbered = |text: &str| {
        let doc = roxmltree::Document::parse(text).unwrap();
        doc.descendants()
            .filter(|n| n.has_tag_name("circle") && n.attribute("r") == Some("8"))
            .count()
    };

    // banana: 000012's Bloom filter says no, 000011 answers, L1/L2 never reached.
    let banana = svg("layered", "banana");
    let f = fills(&banana);
    assert_eq!(f["12"], "url(#filtered)");
    assert_ne!(f["11"], f["12"]);
    assert_eq!(f["8"], f["5"], "both never reached");
    assert_eq!(
        numbered(&banana),
        2,
        "only the two files visited are numbered"
    );
    let doc = roxmltree::Document::parse(&banana).unwrap();
    let title = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("title"))
        .unwrap();
    assert!(
        title
            .text()
            .unwrap()
            .starts_with("database layered (MANIFEST-000004)"),
        "{:?}",
        title.text()
    );
    let labels: Vec<&str> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("axis-label"))
        .map(|n| n.text().unwrap())
        .collect();
    assert!(!labels.is_empty(), "labels between the axis ends");

    // key0160 is answered by a tombstone in the MemTable: no table is numbered.
    let memtable = svg("db", "key0160");
    assert_eq!(numbered(&memtable), 1, "the MemTable's step only");
    assert!(memtable.contains(r#"class="memtable-answered""#));
    assert!(memtable.contains("the MemTable (unflushed writes) answered: no table was read"));

    // Without Bloom filters, a table covering the key has a block read and may not
    // hold it: that looks unlike a filter's "no" and unlike the answer.
    let dir = tmp.path().join("nofilter");
    let db = strata::Db::builder(&dir)
        .bloom_bits_per_key(0)
        .l0_compaction_trigger(64)
        .idle_compaction(None)
        .open()
        .unwrap();
    for k in ["a", "c", "e"] {
        db.put(k, "old").unwrap();
    }
    db.flush().unwrap();
    for k in ["b", "d"] {
        db.put(k, "new").unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
    let read = fills(&svg("nofilter", "c"));
    let values: std::collections::BTreeSet<&String> = read.values().collect();
    assert_eq!(values.len(), 2, "{read:?}");
    assert!(
        read.values().any(|v| v == "#fd8d3c"),
        "a block read: {read:?}"
    );
    assert!(!read.values().any(|v| v == "url(#filtered)"), "{read:?}");
}
