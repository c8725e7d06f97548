//! `tree` tests.
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
}
