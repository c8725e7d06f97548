//! Databases written by earlier builds open and read unchanged: manifest format 2
//! (tables of format 1, a WAL to replay; takes range deletes and is upgraded) and
//! manifest format 3 (range tombstones in a table and in the WAL), the format before
//! keyspaces.

use std::path::Path;

use crate::collect;

fn copy_fixture(name: &str) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

fn expected() -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut want = Vec::new();
    for i in 0..3000u32 {
        if i % 7 != 0 {
            let v = format!("value-{i}-{}", "x".repeat((i % 50) as usize));
            want.push((format!("key{i:05}").into_bytes(), v.into_bytes()));
        }
    }
    for i in 3000..3100u32 {
        want.push((
            format!("key{i:05}").into_bytes(),
            format!("late-{i}").into_bytes(),
        ));
    }
    want
}

#[test]
fn a_database_written_before_range_deletes_opens_reads_and_upgrades() {
    let dir = copy_fixture("made-by-0.1-manifest-v2");
    let fs = strata_core::StdFs;
    let before = strata::inspect::current_manifest(&fs, dir.path()).unwrap();
    let (old, _) = strata::inspect::read_manifest(&fs, &before).unwrap();
    assert_eq!(
        old.first().unwrap().edit.format_version,
        Some(2),
        "the fixture is a version-2 database"
    );
    let db = strata::Db::open(dir.path()).unwrap();
    assert_eq!(collect(db.iter()), expected());
    assert_eq!(db.get("key00007").unwrap(), None);
    assert_eq!(
        db.get("key03050").unwrap().as_deref(),
        Some(&b"late-3050"[..])
    );

    db.delete_range("key01000".."key02000").unwrap();
    db.flush().unwrap();
    db.close().unwrap();

    // The open wrote a new manifest in the current format: a build that cannot read
    // range deletes now refuses the database instead of misreading it.
    let after = strata::inspect::current_manifest(&fs, dir.path()).unwrap();
    assert_ne!(before, after);
    let (records, _) = strata::inspect::read_manifest(&fs, &after).unwrap();
    assert_eq!(
        records.first().unwrap().edit.format_version,
        Some(strata::inspect::MANIFEST_FORMAT_VERSION)
    );

    let db = strata::Db::open(dir.path()).unwrap();
    let want: Vec<_> = expected()
        .into_iter()
        .filter(|(k, _)| !(k.as_slice() >= &b"key01000"[..] && k.as_slice() < &b"key02000"[..]))
        .collect();
    assert_eq!(collect(db.iter()), want);
    db.close().unwrap();
}

/// What `made-by-0.1-manifest-v3` holds: the version-2 fixture's keys, less two
/// range-deleted runs (one in a level-0 table, one only in the WAL).
fn expected_v3() -> Vec<(Vec<u8>, Vec<u8>)> {
    let deleted = |k: &[u8]| {
        (&b"key01000"[..]..&b"key01100"[..]).contains(&k)
            || (&b"key02000"[..]..&b"key02050"[..]).contains(&k)
    };
    expected()
        .into_iter()
        .filter(|(k, _)| !deleted(k))
        .collect()
}

#[test]
fn a_database_written_before_keyspaces_opens_and_reads_unchanged() {
    let dir = copy_fixture("made-by-0.1-manifest-v3");
    let fs = strata_core::StdFs;
    let before = strata::inspect::current_manifest(&fs, dir.path()).unwrap();
    let (old, _) = strata::inspect::read_manifest(&fs, &before).unwrap();
    assert_eq!(
        old.first().unwrap().edit.format_version,
        Some(3),
        "the fixture is a version-3 database"
    );
    // One level-0 table holds a range tombstone over the compacted keys below it.
    let with_tombstones = old
        .iter()
        .flat_map(|r| &r.edit.new_files)
        .filter(|(_, f)| f.range_tombstones > 0)
        .count();
    assert_eq!(with_tombstones, 1);

    let db = strata::Db::open(dir.path()).unwrap();
    let want = expected_v3();
    assert_eq!(collect(db.iter()), want);
    let mut rev = want.clone();
    rev.reverse();
    assert_eq!(collect(db.iter().rev()), rev);
    for key in ["key01000", "key01099", "key02000", "key02049", "key00007"] {
        assert_eq!(db.get(key).unwrap(), None, "{key}");
    }
    for key in ["key01100", "key02050", "key03099"] {
        assert!(db.get(key).unwrap().is_some(), "{key}");
    }
    // Compacting everything applies both tombstones for good.
    db.compact_range::<&[u8], _>(..).unwrap();
    db.close().unwrap();
    let db = strata::Db::open(dir.path()).unwrap();
    assert_eq!(collect(db.iter()), want);
    assert_eq!(
        db.stats()
            .levels
            .iter()
            .map(|l| l.range_tombstones)
            .sum::<u64>(),
        0
    );
    db.close().unwrap();
}
