//! One test per engine bug these suites found, named after the fix.

use strata_core::FileSystem;
use strata_faultfs::{CrashOptions, FaultFs};

use crate::oracle::Model;
use crate::{Harness, crash_and_check, universe};

/// `Db::open` created the database directory without syncing its parent, so a power
/// loss could take the directory, and every synced write in it, away.
#[test]
fn creating_a_database_syncs_the_new_directory_entry() {
    let fs = FaultFs::new();
    let mut h = Harness::open(fs.clone(), Model::new(), true).unwrap();
    h.put(b"k00", b"synced", true).unwrap();
    let keys = universe(1);
    let (after, _db, got) = crash_and_check(
        &fs,
        fs.op_count(),
        &CrashOptions::power_loss(),
        &h.hist,
        &keys,
        true,
    )
    .unwrap();
    assert_eq!(
        got.get(&b"k00"[..]).map(Vec::as_slice),
        Some(&b"synced"[..])
    );
    assert!(after.exists(std::path::Path::new(crate::DB)).unwrap());
}

/// A crash while `Db::open` created a database (WAL and manifest written, `CURRENT` not
/// yet) left a directory that every later open refused as "not a Strata database".
#[test]
fn a_crash_while_creating_a_database_does_not_brick_the_directory() {
    let fs = FaultFs::new();
    drop(crate::open(&fs, true).unwrap());
    let creation = fs
        .ops()
        .iter()
        .position(|o| o.to.as_ref().is_some_and(|t| t.ends_with("CURRENT")))
        .unwrap();
    for k in 0..=creation + 1 {
        for opts in [CrashOptions::process(), CrashOptions::power_loss()] {
            let after = fs.crash_at(k, &opts);
            let db = crate::open(&after, true)
                .unwrap_or_else(|e| panic!("crash after change {k} ({opts:?}): {e}"));
            assert_eq!(db.iter().count(), 0);
            db.put("k", "v").unwrap();
            drop(db);
            let db = crate::open(&after, true).unwrap();
            assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        }
    }
}
