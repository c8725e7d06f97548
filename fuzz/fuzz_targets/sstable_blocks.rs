//! The block decoders behind valid checksums: a valid table whose data, index,
//! properties or range-deletion blocks are damaged and then re-sealed (checksums
//! recomputed), so the damage reaches the block, index, properties and range-deletion
//! decoders (the sstable crate keeps its block decoder private; this reaches it through
//! `Table`). Never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_fuzz::{Input, build_table, damage, layout, lookups, open, reseal, scan};

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let (mut bytes, expected) = build_table(&mut input);
    let l = layout(&bytes);
    // Which region: all data blocks, the properties block, the index block, the
    // range-deletion block (when the table has one), or the whole file (footer
    // included).
    let region = match (input.byte() % 5, l.range_del) {
        (0, _) => 0..l.filter.0 as usize,
        (1, _) => l.properties.0 as usize..(l.properties.0 + l.properties.1 + 1) as usize,
        (2, _) => l.index.0 as usize..(l.index.0 + l.index.1 + 1) as usize,
        (3, Some((offset, size))) => offset as usize..(offset + size + 1) as usize,
        _ => 0..bytes.len(),
    };
    damage(&mut bytes, region, &mut input);
    reseal(&mut bytes, &l);
    if let Ok(t) = open(&bytes) {
        let s = scan(&t);
        for (k, _) in s.entries.iter().take(16) {
            let _ = t.get(strata_core::key::user_key(k), u64::MAX >> 8);
        }
        // Damage behind a valid checksum can change answers; only panics matter here.
        lookups(&t, &expected, false);
    }
});
