//! The Bloom filter decoder: a valid table whose filter block is damaged, either raw
//! (the checksum catches it: the filter is ignored and every lookup must still find
//! every key, rule "a damaged filter means may-contain") or re-sealed (the decoder sees
//! arbitrary filter bytes: it must not panic).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_fuzz::{Input, build_table, check_scan, damage, layout, lookups, open, reseal, scan};

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let (mut bytes, expected) = build_table(&mut input);
    let l = layout(&bytes);
    let sealed = input.byte() % 2 == 0;
    // The filter's stored bytes and its compression byte.
    let region = l.filter.0 as usize..(l.filter.0 + l.filter.1 + 1) as usize;
    if !damage(&mut bytes, region, &mut input) {
        return;
    }
    if sealed {
        reseal(&mut bytes, &l);
    }
    let t = open(&bytes).expect("a table with only its filter damaged still opens");
    if sealed {
        lookups(&t, &expected, false);
        let _ = t.may_contain(b"key001");
        let _ = t.filter_status();
    } else {
        assert!(
            !matches!(
                t.filter_status(),
                strata_sstable::FilterStatus::Loaded { .. }
            ),
            "a filter failing its checksum is not used"
        );
        assert!(t.verify().is_err(), "verify reports the damaged filter");
        lookups(&t, &expected, true);
        check_scan(&scan(&t), &expected);
        for k in expected.keys() {
            assert!(t.may_contain(k), "false negative from an unusable filter");
        }
    }
});
