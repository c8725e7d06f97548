//! `manifest dump`: every edit, then the resulting levels.

use crate::common::*;
use strata::Db;

#[test]
fn manifest_dump_lists_edits_then_levels() {
    let tmp = fixtures();
    let run = xtask(tmp.path(), &["manifest", "dump", "layered"]);
    insta::assert_snapshot!("manifest_dump_layered", run.assert_ok());
    // The manifest file itself works as well as the directory.
    let direct = xtask(tmp.path(), &["manifest", "dump", "layered/MANIFEST-000004"]);
    assert_eq!(
        direct.assert_ok().lines().skip(1).collect::<Vec<_>>(),
        run.stdout.lines().skip(1).collect::<Vec<_>>()
    );
}

#[test]
fn an_engine_manifest_shows_flushes_and_the_move_to_the_bottom_level() {
    let tmp = fixtures();
    let json = xtask(tmp.path(), &["manifest", "dump", "db", "--json"]).json();
    assert_eq!(json["file"], "MANIFEST-000002");
    assert_eq!(json["named_by_current"], true);
    let edits = json["edits"].as_array().unwrap();
    assert_eq!(edits[0]["format_version"], 3);
    // The compaction of the first flush was a trivial move: out of L0, into L6.
    let moved = edits
        .iter()
        .find(|e| !e["deleted_files"].as_array().unwrap().is_empty())
        .unwrap();
    assert_eq!(moved["deleted_files"][0]["level"], 0);
    assert_eq!(moved["new_files"][0]["level"], 6);
    assert_eq!(
        moved["deleted_files"][0]["number"],
        moved["new_files"][0]["number"]
    );
    let levels = json["levels"].as_array().unwrap();
    assert_eq!(levels[0]["files"], 2);
    assert_eq!(levels[0]["tombstones"], 5);
    assert_eq!(levels[6]["files"], 1);
    assert_eq!(levels[6]["entries"], 200);
    // L0 newest first.
    assert!(
        levels[0]["tables"][0]["largest_seq"].as_u64()
            > levels[0]["tables"][1]["largest_seq"].as_u64()
    );
    assert_eq!(json["counters"]["log_number"], 7);
}

#[test]
fn a_damaged_manifest_shows_the_edits_before_the_damage() {
    let tmp = fixtures();
    let manifest = tmp.path().join("layered/MANIFEST-000004");
    // The first edit, with the second intact after it: damage, not a torn tail.
    flip(&manifest, 40, 0x10);
    let run = xtask(tmp.path(), &["manifest", "dump", "layered"]);
    let err = run.assert_one_line_error();
    assert!(
        err.contains(
            "layered/MANIFEST-000004: stopped at damage (fragment checksum mismatch at offset 19)"
        ) && err.contains("0 edits read before it"),
        "{err}"
    );
    assert!(run.stdout.contains("(no tables)"), "{}", run.stdout);

    // The last edit cut short: a torn tail; the first edit's levels are shown.
    let tmp = fixtures();
    let manifest = tmp.path().join("layered/MANIFEST-000004");
    let len = std::fs::metadata(&manifest).unwrap().len();
    truncate(&manifest, len - 5);
    let run = xtask(tmp.path(), &["manifest", "dump", "layered"]);
    let err = run.assert_one_line_error();
    assert!(
        err.contains("torn tail") && err.contains("1 edit read before it"),
        "{err}"
    );
    assert!(run.stdout.contains("levels after 1 edit"), "{}", run.stdout);
    assert!(run.stdout.contains("L2 000005.sst"), "{}", run.stdout);
    assert!(!run.stdout.contains("000012.sst"), "{}", run.stdout);
}

/// A manifest cut short is a torn tail as a record log, but whether it is harmless
/// depends on the edits lost: the engine refuses to open when the live WAL the last
/// readable edit names is gone. `manifest dump` says which, and the engine agrees, at
/// every cut inside every edit.
#[test]
fn a_cut_manifest_says_whether_the_engine_opens_it_and_the_engine_agrees() {
    let tmp = fixtures();
    let json = xtask(tmp.path(), &["manifest", "dump", "db", "--json"]).json();
    let offsets: Vec<u64> = json["edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["offset"].as_u64().unwrap())
        .collect();
    let manifest = tmp.path().join("db/MANIFEST-000002");
    let full = std::fs::read(&manifest).unwrap();
    let (mut refused, mut opened) = (0, 0);
    // Two bytes into each edit's fragment: that edit is lost, the ones before it stay.
    // Last, a crash while appending an edit after the last one (half a fragment header
    // at the end): every edit stays.
    let mut cuts: Vec<(u64, Vec<u8>)> = offsets
        .iter()
        .skip(1)
        .map(|&start| (start, full[..start as usize + 2].to_vec()))
        .collect();
    let mut appended = full.clone();
    appended.extend_from_slice(&full[offsets[1] as usize..offsets[1] as usize + 4]);
    cuts.push((full.len() as u64, appended));
    for (start, contents) in cuts {
        let cut = contents.len();
        let copy = tempfile::tempdir().unwrap();
        let dir = copy.path().join("db");
        std::fs::create_dir(&dir).unwrap();
        for entry in std::fs::read_dir(tmp.path().join("db")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        std::fs::write(dir.join("MANIFEST-000002"), &contents).unwrap();
        let run = xtask(copy.path(), &["manifest", "dump", "db"]);
        let err = run.assert_one_line_error().to_owned();
        assert!(
            err.contains(&format!("torn tail at offset {start}")),
            "{err}"
        );
        let engine = Db::open(&dir);
        if err.contains("the engine refuses to open") {
            refused += 1;
            assert!(
                matches!(&engine, Err(e) if e.is_corruption()),
                "cut {cut}: tool says refused, engine: {engine:?}"
            );
        } else {
            opened += 1;
            assert!(err.contains("the engine opens the database"), "{err}");
            assert!(
                engine.is_ok(),
                "cut {cut}: tool says opens, engine: {engine:?}"
            );
        }
    }
    assert!(
        refused > 0 && opened > 0,
        "both verdicts seen: {refused} refused, {opened} opened"
    );
}
