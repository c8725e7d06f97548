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
