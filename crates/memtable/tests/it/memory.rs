//! `approximate_memory_usage` tracks what the allocator really hands out.

use std::sync::Arc;

use strata_core::ValueKind;
use strata_memtable::MemTable;

use crate::{splitmix, thread_net_bytes};

#[test]
fn memory_usage_is_within_20_percent_of_the_allocator_for_100k_mixed_entries() {
    let before = thread_net_bytes();
    let table = Arc::new(MemTable::new());
    let mut s = 7;
    let mut payload = 0usize;
    let mut last_usage = table.approximate_memory_usage();
    for seq in 1..=100_000u64 {
        let r = splitmix(&mut s);
        // Keys of 1..=48 bytes, values from empty to ~2 KiB with a long tail: 1 in 64
        // entries carries a 2–18 KiB value, which takes an arena chunk of its own.
        let key_len = 1 + (r % 48) as usize;
        let value_len = match r >> 58 {
            0 => 2048 + (r >> 20) as usize % 16_384,
            n if n < 16 => 0,
            _ => (r >> 8) as usize % 2048,
        };
        let key: Vec<u8> = (0..key_len).map(|i| (r >> (i % 8 * 8)) as u8).collect();
        let value = vec![b'x'; value_len];
        let kind = if r.is_multiple_of(10) {
            ValueKind::Delete
        } else {
            ValueKind::Put
        };
        table.insert(&key, seq, kind, &value).unwrap();
        payload += key.len() + if kind == ValueKind::Put { value_len } else { 0 };
        let usage = table.approximate_memory_usage();
        assert!(usage >= last_usage, "usage went down");
        last_usage = usage;
    }
    let allocated = (thread_net_bytes() - before) as f64;
    let reported = table.approximate_memory_usage() as f64;
    let error = (reported - allocated).abs() / allocated;
    assert!(
        error <= 0.20,
        "reported {reported} vs allocated {allocated}"
    );
    assert!(reported >= payload as f64);

    drop(table);
    // Dropping the table returns everything it took.
    assert_eq!(thread_net_bytes(), before);
    println!(
        "allocator {allocated:.0} B, reported {reported:.0} B, payload {payload} B, error {:.2} %",
        error * 100.0
    );
}

#[test]
fn an_empty_table_is_small() {
    let table = MemTable::new();
    assert!(table.approximate_memory_usage() <= 128 << 10);
    assert!(table.is_empty());
}
