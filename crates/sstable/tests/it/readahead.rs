//! Scans read ahead: long runs of blocks in either direction, direction switches and
//! seeks in the middle of a read-ahead buffer, values held across buffer reuse, and the
//! block cache left alone by a scan.

use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use strata_core::{InternalKey, MemFs, SortedIter, ValueKind, compare_internal_keys};
use strata_sstable::{BlockCache, Compression, TableOptions};

use crate::common::*;

/// `n` keys in small blocks: hundreds of blocks, so read-ahead grows to its largest size.
fn many_blocks(n: u32, compression: Compression) -> (MemFs, Model) {
    let model: Model = (0..n)
        .map(|i| {
            (
                ik(format!("key{i:06}").as_bytes(), 3, ValueKind::Put),
                format!("value-{i}-{}", "v".repeat(i as usize % 40)).into_bytes(),
            )
        })
        .collect();
    let fs = MemFs::new();
    build(
        &fs,
        &table_path("t"),
        &model,
        TableOptions {
            block_size_bytes: 256,
            restart_interval: 4,
            bloom_bits_per_key: 10,
            compression,
        },
    );
    (fs, model)
}

#[test]
fn a_scan_fills_the_cache_with_its_first_blocks_only() {
    let (fs, model) = many_blocks(6000, Compression::None);
    let cache = Arc::new(BlockCache::new(64 << 20));
    let table = open(&fs, &table_path("t"), Some(Arc::clone(&cache))).unwrap();
    assert!(table.properties().data_block_count > 500);
    let expected = model_entries(&model);
    let mut it = table.iter();
    assert_eq!(scan_forward(&mut it).unwrap(), expected);
    let after_forward = cache.len();
    assert!(
        after_forward <= 2,
        "{after_forward} blocks cached by a scan"
    );
    let mut back = scan_backward(&mut it).unwrap();
    back.reverse();
    assert_eq!(back, expected);
    assert!(
        cache.len() <= 4,
        "{} blocks cached by two scans",
        cache.len()
    );
    // Seeks (no sequential run) still go through the cache.
    for i in (0..6000).step_by(500) {
        let t = InternalKey::for_seek(format!("key{i:06}").as_bytes(), 9);
        let mut it = table.iter();
        it.seek(t.as_bytes()).unwrap();
        assert_eq!(it.key(), expected[i].0);
    }
    assert!(cache.len() >= 10, "seeks did not fill the cache");
}

#[test]
fn values_held_across_read_ahead_buffers_stay_intact() {
    for compression in [Compression::None, Compression::Lz4] {
        let (fs, model) = many_blocks(4000, compression);
        let table = open(&fs, &table_path("t"), None).unwrap();
        let expected = model_entries(&model);
        // Hold every value of a forward then a backward scan; the buffers they point
        // into must not be reused underneath them.
        let mut held: Vec<Bytes> = Vec::new();
        let mut it = table.iter();
        it.seek_to_first().unwrap();
        while it.valid() {
            held.push(it.value_bytes());
            it.next().unwrap();
        }
        it.seek_to_last().unwrap();
        while it.valid() {
            held.push(it.value_bytes());
            it.prev().unwrap();
        }
        let n = expected.len();
        assert_eq!(held.len(), 2 * n);
        for (i, v) in held.iter().enumerate() {
            let want = if i < n {
                &expected[i].1
            } else {
                &expected[2 * n - 1 - i].1
            };
            assert_eq!(&v[..], &want[..], "value {i}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Long runs both ways (read-ahead in each direction), with direction switches and
    /// seeks anywhere, against a position in the model.
    #[test]
    fn long_walks_match_the_model(
        moves in proptest::collection::vec((0u8..6, 1usize..400, 0u32..3000), 1..40),
        lz4 in any::<bool>(),
    ) {
        let compression = if lz4 { Compression::Lz4 } else { Compression::None };
        let (fs, model) = many_blocks(3000, compression);
        let cache = Arc::new(BlockCache::new(256 << 10));
        let table = open(&fs, &table_path("t"), Some(cache)).unwrap();
        let expected = model_entries(&model);
        let mut it = table.iter();
        let mut pos: Option<usize> = None;
        for (m, steps, k) in moves {
            match m {
                0 => { it.seek_to_first().unwrap(); pos = Some(0); }
                1 => { it.seek_to_last().unwrap(); pos = Some(expected.len() - 1); }
                2 => {
                    let t = InternalKey::for_seek(format!("key{k:06}").as_bytes(), 2);
                    it.seek(t.as_bytes()).unwrap();
                    let i = expected.partition_point(|(ek, _)| compare_internal_keys(ek, t.as_bytes()).is_lt());
                    pos = (i < expected.len()).then_some(i);
                }
                3 | 4 => for _ in 0..steps {
                    let Some(p) = pos else { break };
                    it.next().unwrap();
                    pos = Some(p + 1).filter(|&q| q < expected.len());
                    if let Some(q) = pos { prop_assert_eq!(it.key(), &expected[q].0[..]); }
                },
                _ => for _ in 0..steps {
                    let Some(p) = pos else { break };
                    it.prev().unwrap();
                    pos = p.checked_sub(1);
                    if let Some(q) = pos { prop_assert_eq!(it.key(), &expected[q].0[..]); }
                },
            }
            match pos {
                Some(p) => {
                    prop_assert!(it.valid());
                    prop_assert_eq!(it.key(), &expected[p].0[..]);
                    prop_assert_eq!(&it.value_bytes()[..], &expected[p].1[..]);
                }
                None => prop_assert!(!it.valid()),
            }
        }
    }
}
