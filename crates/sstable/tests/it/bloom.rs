//! The Bloom filter through the table: no false negatives, and a false-positive rate
//! within 25 % of theory.

use proptest::prelude::*;
use strata_core::{MemFs, ValueKind};
use strata_sstable::filter::blocked_fp_rate;
use strata_sstable::{FilterStatus, TableOptions};

use crate::common::*;

#[test]
fn measured_false_positive_rate_is_within_a_quarter_of_theory() {
    let fs = MemFs::new();
    let path = table_path("bloom");
    let mut rng = Rng(0x5eed);
    let n = 100_000u64;
    let model: Model = (0..n)
        .map(|_| (ik(&rng.bytes(16), 1, ValueKind::Put), Vec::new()))
        .collect();
    build(
        &fs,
        &path,
        &model,
        TableOptions {
            bloom_bits_per_key: 10,
            ..TableOptions::default()
        },
    );
    let table = open(&fs, &path, None).unwrap();
    let FilterStatus::Loaded {
        bits,
        probes,
        blocked,
        ..
    } = table.filter_status()
    else {
        panic!("no filter")
    };
    assert_eq!(probes, 7, "k = round(10 ln 2)");
    assert!(blocked);
    assert_eq!(bits, (n * 10).next_multiple_of(512));
    let mut absent_rng = Rng(0xab5e17);
    let false_positives = (0..n)
        .filter(|_| table.may_contain(&absent_rng.bytes(16)))
        .count();
    let measured = false_positives as f64 / n as f64;
    let theory = blocked_fp_rate(bits, n, probes);
    eprintln!("bloom 10 bits/key: measured FP {measured:.5}, theory {theory:.5}");
    assert!(
        (measured - theory).abs() <= 0.25 * theory,
        "measured {measured}, theory {theory}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn the_table_filter_has_no_false_negatives(keys in proptest::collection::btree_set(proptest::collection::vec(any::<u8>(), 0..24), 1..400),
                                                bits in 1u32..24) {
        let fs = MemFs::new();
        let path = table_path("fn");
        let model: Model = keys.iter().map(|k| (ik(k, 3, ValueKind::Put), Vec::new())).collect();
        build(&fs, &path, &model, TableOptions { bloom_bits_per_key: bits, ..TableOptions::default() });
        let table = open(&fs, &path, None).unwrap();
        for k in &keys {
            prop_assert!(table.may_contain(k));
        }
    }
}

#[test]
fn zero_bits_per_key_writes_no_filter() {
    let fs = MemFs::new();
    let path = table_path("nofilter");
    let model: Model = (0..10u8)
        .map(|i| (ik(&[i], 1, ValueKind::Put), Vec::new()))
        .collect();
    build(
        &fs,
        &path,
        &model,
        TableOptions {
            bloom_bits_per_key: 0,
            ..TableOptions::default()
        },
    );
    let table = open(&fs, &path, None).unwrap();
    assert_eq!(table.filter_status(), FilterStatus::Empty);
    assert!(table.may_contain(b"anything"));
    let (_, trace) = table.get_traced(b"\x05", 1).unwrap();
    assert_eq!(trace.filter, strata_sstable::FilterAnswer::NoFilter);
}
