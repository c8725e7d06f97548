//! Bad input: a missing file, a file of another kind, a truncated or damaged file —
//! always one clear line on stderr and a non-zero exit, never a panic.

use crate::common::*;

fn error(tmp: &tempfile::TempDir, args: &[&str]) -> String {
    let run = xtask(tmp.path(), args);
    run.assert_one_line_error().to_owned()
}

#[test]
fn missing_paths_are_named() {
    let tmp = fixtures();
    for args in [
        &["wal", "dump", "nope.log"][..],
        &["sst", "dump", "nope.sst"],
        &["sst", "get", "nope.sst", "k"],
        &["manifest", "dump", "nope"],
        &["db", "tree", "nope"],
        &["verify", "nope"],
    ] {
        let e = error(&tmp, args);
        assert!(
            e.contains("nope")
                && (e.contains("no such file or directory") || e.contains("no such directory")),
            "{args:?}: {e}"
        );
    }
}

#[test]
fn files_of_another_kind_get_a_hint() {
    let tmp = fixtures();
    let cases: [(&[&str], &str); 8] = [
        (
            &["wal", "dump", "db/000004.sst"],
            "is a table, not a write-ahead log; try `cargo xtask sst dump`",
        ),
        (
            &["wal", "dump", "db/MANIFEST-000002"],
            "is a manifest, not a write-ahead log",
        ),
        (
            &["sst", "dump", "db/000007.log"],
            "is a record log (a WAL or a manifest), not a table",
        ),
        (
            &["sst", "dump", "db/CURRENT"],
            "is a CURRENT file, not a table",
        ),
        (&["sst", "dump", "db"], "is a directory, not a file"),
        (
            &["manifest", "dump", "db/000004.sst"],
            "is a table, not a manifest",
        ),
        (
            &["db", "tree", "db/000004.sst"],
            "is a file, not a database directory",
        ),
        (
            &["db", "tree", "."],
            "not a Strata database (no CURRENT file)",
        ),
    ];
    for (args, expect) in cases {
        let e = error(&tmp, args);
        assert!(e.contains(expect), "{args:?}: {e}");
    }
    // A manifest under a WAL's name: the records are not batches, and it says why.
    std::fs::copy(
        tmp.path().join("db/MANIFEST-000002"),
        tmp.path().join("000001.log"),
    )
    .unwrap();
    let e = error(&tmp, &["wal", "dump", "000001.log"]);
    assert!(
        e.contains("not a write batch") && e.contains("is this a manifest?"),
        "{e}"
    );
}

#[test]
fn bad_keys_and_garbage_are_one_line_errors() {
    let tmp = fixtures();
    assert!(error(&tmp, &["sst", "get", "db/000004.sst", "0xzz"]).contains("not hex"));
    assert!(
        error(&tmp, &["db", "tree", "db", "--key", "0x123"]).contains("odd number of hex digits")
    );
    std::fs::write(
        tmp.path().join("garbage"),
        b"just some words, nothing Strata wrote",
    )
    .unwrap();
    std::fs::write(tmp.path().join("empty.sst"), b"").unwrap();
    for args in [
        &["wal", "dump", "garbage"][..],
        &["sst", "dump", "garbage"],
        &["manifest", "dump", "garbage"],
        &["verify", "garbage"],
        &["sst", "dump", "empty.sst"],
    ] {
        error(&tmp, args);
    }
    // An empty log is a fresh WAL, not damage.
    std::fs::write(tmp.path().join("000099.log"), b"").unwrap();
    xtask(tmp.path(), &["wal", "dump", "000099.log"]).assert_ok();
}

#[test]
fn a_table_whose_index_is_damaged_says_what_still_reads() {
    let tmp = fixtures();
    let path = tmp.path().join("layered/000005.sst");
    let f = strata_sstable::Table::read_footer(
        &*strata_core::FileSystem::open(&strata_core::StdFs, &path).unwrap(),
    )
    .unwrap();
    flip(&path, f.index.offset + 2, 0x01);
    let e = error(&tmp, &["sst", "dump", "layered/000005.sst"]);
    assert_eq!(
        e,
        format!(
            "error: layered/000005.sst: corruption at offset {}: block checksum mismatch — in the index block; the footer still reads (filter @{}, properties @{}, index @{})",
            f.index.offset, f.filter.offset, f.properties.offset, f.index.offset
        )
    );
}

/// Every truncation and every byte flip of a small table, WAL and manifest: each
/// command either succeeds or fails with one line — never a panic. A file that ends in
/// zeros written ahead (the crash image's live WAL keeps 1–2 MiB of them) is cut and
/// flipped at every byte up to 64 bytes past its last nonzero one (a record header and more), and cut once at its
/// full length: the bytes further on are more of the same zeros.
#[test]
fn every_cut_and_every_flip_is_a_clean_answer() {
    let tmp = fixtures();
    let files: [(&str, &[&str]); 3] = [
        ("layered/000012.sst", &["sst", "dump", "--entries"]),
        ("db/000007.log", &["wal", "dump"]),
        ("layered/MANIFEST-000004", &["manifest", "dump"]),
    ];
    let mut runs = 0;
    for (name, command) in files {
        let path = tmp.path().join(name);
        let original = std::fs::read(&path).unwrap();
        let span = original
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last + 1 + 64)
            .min(original.len());
        // Built one at a time: a copy of a 2 MiB log per variant would not fit in memory.
        let variant = |k: usize| -> Vec<u8> {
            if k < span {
                original[..k].to_vec()
            } else if k < 2 * span {
                let mut v = original.clone();
                v[k - span] ^= 0x41;
                v
            } else {
                original.clone()
            }
        };
        for k in 0..=2 * span {
            let bytes = variant(k);
            std::fs::write(&path, &bytes).unwrap();
            for args in [command.to_vec(), vec!["verify"]] {
                let mut args = args;
                args.push(name);
                let run = xtask(tmp.path(), &args);
                assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
                match run.code {
                    0 => {}
                    1 => {
                        run.assert_one_line_error();
                    }
                    c => panic!("{args:?}: exit {c}: {}", run.stderr),
                }
                runs += 1;
            }
        }
        std::fs::write(&path, &original).unwrap();
    }
    assert!(runs > 2000, "{runs}");
}

#[test]
fn a_directory_without_strata_files_is_not_a_database() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("plain")).unwrap();
    std::fs::write(tmp.path().join("plain/notes.txt"), "hello").unwrap();
    let run = xtask(tmp.path(), &["verify", "plain"]);
    assert_eq!(
        run.assert_one_line_error(),
        "error: plain: not a Strata database (no CURRENT, manifest, WAL or table in it)"
    );
    // Strata files without CURRENT: CURRENT is named as damaged, the rest still checked.
    let tmp = fixtures();
    std::fs::remove_file(tmp.path().join("db/CURRENT")).unwrap();
    let run = xtask(tmp.path(), &["verify", "db"]);
    assert_eq!(
        run.assert_one_line_error(),
        "error: damaged: CURRENT: missing: no manifest names the live files"
    );
    assert!(run.stdout.contains("ok       000004.sst"), "{}", run.stdout);
}

#[test]
fn a_lookup_that_meets_a_missing_table_says_where_and_stops() {
    let tmp = fixtures();
    std::fs::remove_file(tmp.path().join("layered/000011.sst")).unwrap();
    let run = xtask(tmp.path(), &["db", "tree", "layered", "--key", "banana"]);
    assert_eq!(
        run.assert_one_line_error(),
        "error: lookup failed at 000011.sst: layered/000011.sst: no such file or directory"
    );
    assert!(
        run.stdout
            .contains("not visited: the lookup failed earlier"),
        "{}",
        run.stdout
    );
    // The picture is still drawn from the manifest.
    assert!(run.stdout.contains("L0 000011"), "{}", run.stdout);
}

/// A text file is not a log torn at offset 0: `wal dump` and `manifest dump` say it is
/// not a Strata record log, whatever the file is named.
#[test]
fn a_foreign_file_is_not_a_strata_log() {
    let tmp = tempfile::tempdir().unwrap();
    let text =
        b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n";
    for name in ["passwd", "000009.log", "MANIFEST-000009"] {
        std::fs::write(tmp.path().join(name), text).unwrap();
    }
    for args in [
        ["wal", "dump", "passwd"],
        ["wal", "dump", "000009.log"],
        ["manifest", "dump", "passwd"],
        ["manifest", "dump", "MANIFEST-000009"],
    ] {
        let run = xtask(tmp.path(), &args);
        let err = run.assert_one_line_error();
        assert!(err.contains("not a Strata record log"), "{args:?}: {err}");
        assert!(!err.contains("torn tail"), "{args:?}: {err}");
    }
    // A log cut inside its header is still a (torn) log, not a foreign file.
    let tmp2 = fixtures();
    let wal = tmp2.path().join("db/000007.log");
    truncate(&wal, 11);
    let run = xtask(tmp2.path(), &["wal", "dump", "db/000007.log"]);
    let err = run.assert_one_line_error();
    assert!(err.contains("torn tail at offset 0"), "{err}");
}
