//! The SSTable reader (open, iterate both ways, seek, get, verify) on arbitrary bytes,
//! and on valid tables (format versions 1 to 3: with and without range tombstones)
//! with raw damage: never panics, and damage the checksums cover never yields a wrong
//! key, value or range tombstone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_fuzz::{Input, build_table, check_scan, damage, lookups, open, scan};

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    if input.byte() % 2 == 0 {
        // Arbitrary bytes as a table file.
        if let Ok(t) = open(input.0) {
            let s = scan(&t);
            for (k, _) in s.entries.iter().take(16) {
                let _ = t.get(strata_core::key::user_key(k), u64::MAX >> 8);
            }
        }
        return;
    }
    // A valid table, then XOR damage anywhere: every block and the footer are
    // checksummed, so reads either fail or return exactly what was written.
    let (mut bytes, expected) = build_table(&mut input);
    let ranges = open(&bytes)
        .expect("a freshly built table opens")
        .range_tombstones()
        .clone();
    let len = bytes.len();
    damage(&mut bytes, 0..len, &mut input);
    if let Ok(t) = open(&bytes) {
        check_scan(&scan(&t), &expected);
        lookups(&t, &expected, true);
        // The range-deletion block (and the footer's handle to it) is checksummed too.
        assert_eq!(
            t.range_tombstones(),
            &ranges,
            "wrong range tombstones from a damaged table"
        );
    }
});
