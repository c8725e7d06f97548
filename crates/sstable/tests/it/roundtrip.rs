//! Round trip against the `BTreeMap` model: build random sorted sets, read them back by
//! iteration (both ways), seek and get at random snapshots.

use std::sync::Arc;

use proptest::prelude::*;
use strata_core::{InternalKey, Lookup, MemFs, SortedIter, ValueKind, compare_internal_keys};
use strata_sstable::{BlockCache, Compression, KeyHash, TableOptions};

use crate::common::*;

fn user_key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Short keys from a tiny alphabet: shared prefixes, many versions of one key.
        6 => proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(0u8), Just(0xff)], 0..5),
        // Long keys (prefix compression across hundreds of bytes).
        1 => (proptest::collection::vec(b'k'..=b'm', 1..3), 200usize..1200)
            .prop_map(|(head, n)| { let mut k = head; k.resize(n, b'x'); k }),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(Vec::new()),
        4 => proptest::collection::vec(any::<u8>(), 1..40),
        1 => proptest::collection::vec(Just(7u8), 300..2000),
    ]
}

fn model() -> impl Strategy<Value = Model> {
    proptest::collection::vec((user_key(), 0u64..40, 0u8..6, value()), 1..160).prop_map(|es| {
        es.into_iter()
            .map(|(k, seq, kind, v)| match kind {
                0 => (ik(&k, seq, ValueKind::Delete), Vec::new()),
                1 => (ik(&k, seq, ValueKind::Merge), v),
                2 => (
                    ik(&k, seq, ValueKind::ExpiringPut),
                    strata_core::expiry::encode_expiring(seq * 1000, &v),
                ),
                _ => (ik(&k, seq, ValueKind::Put), v),
            })
            .collect()
    })
}

fn options() -> impl Strategy<Value = TableOptions> {
    let compressions = if cfg!(feature = "zstd") {
        vec![Compression::None, Compression::Lz4, Compression::Zstd]
    } else {
        vec![Compression::None, Compression::Lz4]
    };
    (
        64usize..2048,
        1usize..20,
        0u32..16,
        prop::sample::select(compressions),
    )
        .prop_map(|(block, restart, bits, compression)| TableOptions {
            block_size_bytes: block,
            restart_interval: restart,
            bloom_bits_per_key: bits,
            compression,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn table_matches_model(model in model(), options in options(), cached in any::<bool>(),
                           probes in proptest::collection::vec((user_key(), 0u64..45), 0..40)) {
        let fs = MemFs::new();
        let path = table_path("t");
        let summary = build(&fs, &path, &model, options);
        let cache = cached.then(|| Arc::new(BlockCache::new(1 << 20)));
        let table = open(&fs, &path, cache).unwrap();
        let expected = model_entries(&model);

        // Summary and properties agree with the model.
        let tombstones = model.keys().filter(|k| k.parsed().kind == ValueKind::Delete).count() as u64;
        prop_assert_eq!(summary.entry_count, model.len() as u64);
        prop_assert_eq!(summary.tombstone_count, tombstones);
        prop_assert_eq!(&summary.smallest_key, model.keys().next().unwrap());
        prop_assert_eq!(&summary.largest_key, model.keys().next_back().unwrap());
        prop_assert_eq!(summary.smallest_seq, model.keys().map(|k| k.parsed().seq).min().unwrap());
        prop_assert_eq!(summary.largest_seq, model.keys().map(|k| k.parsed().seq).max().unwrap());
        prop_assert_eq!(summary.file_size, fs.read_file(&path).unwrap().len() as u64);
        prop_assert_eq!(table.properties().entry_count, model.len() as u64);
        prop_assert_eq!(table.verify().unwrap().entries, model.len() as u64);
        // Merge operands and expiring values need version 4; a table without them keeps
        // its older version.
        let has_merge = model.keys().any(|k| k.parsed().kind.needs_v4());
        prop_assert_eq!(table.footer().version == strata_sstable::FormatVersion::V4, has_merge);

        // Iteration, both ways (twice with a cache: the second pass reads cached blocks).
        for _ in 0..if cached { 2 } else { 1 } {
            let mut it = table.iter();
            prop_assert_eq!(&scan_forward(&mut it).unwrap(), &expected);
            let mut back = scan_backward(&mut it).unwrap();
            back.reverse();
            prop_assert_eq!(&back, &expected);
        }

        // Seeks, each followed by a step back and forth.
        let mut it = table.iter_uncached();
        for (uk, seq) in &probes {
            let target = InternalKey::for_seek(uk, *seq);
            it.seek(target.as_bytes()).unwrap();
            let pos = expected.partition_point(|(k, _)| compare_internal_keys(k, target.as_bytes()).is_lt());
            match expected.get(pos) {
                Some((k, v)) => {
                    prop_assert!(it.valid());
                    prop_assert_eq!(it.key(), &k[..]);
                    prop_assert_eq!(it.value(), &v[..]);
                    it.prev().unwrap();
                    match pos.checked_sub(1) {
                        Some(p) => { prop_assert!(it.valid()); prop_assert_eq!(it.key(), &expected[p].0[..]); it.next().unwrap(); prop_assert_eq!(it.key(), &k[..]); }
                        None => prop_assert!(!it.valid()),
                    }
                }
                None => prop_assert!(!it.valid()),
            }
        }

        // Point lookups at random snapshots: present keys, then arbitrary probes.
        let present: Vec<(Vec<u8>, u64)> = model.keys().map(|k| (k.user_key().to_vec(), k.parsed().seq)).collect();
        for (uk, seq) in present.iter().chain(probes.iter()) {
            for snapshot in [*seq, seq.saturating_sub(1), seq + 1, u64::MAX] {
                let got = table.get(uk, snapshot).unwrap();
                prop_assert_eq!(&got, &model_get(&model, uk, snapshot), "get({:?}, {})", uk, snapshot);
            }
            if model.keys().any(|k| k.user_key() == &uk[..]) {
                prop_assert!(table.may_contain(uk), "false negative for {:?}", uk);
            }
        }
    }
}

#[test]
fn get_reads_at_most_one_block_and_the_cache_serves_repeats() {
    let fs = MemFs::new();
    let path = table_path("t");
    let model: Model = (0..2000u32)
        .map(|i| {
            (
                ik(format!("key{i:06}").as_bytes(), 5, ValueKind::Put),
                vec![i as u8; 50],
            )
        })
        .collect();
    build(&fs, &path, &model, TableOptions::default());
    let cache = Arc::new(BlockCache::new(1 << 20));
    let table = open(&fs, &path, Some(cache.clone())).unwrap();
    assert!(table.index_entries().len() > 20);

    let (l, t) = table.get_traced(b"key000777", 9).unwrap();
    assert_eq!(l, Lookup::Found(vec![(777 % 256) as u8; 50].into()));
    assert_eq!(t.filter, strata_sstable::FilterAnswer::MayContain);
    assert!(t.data_block.is_some() && !t.cache_hit);
    let (_, t2) = table.get_traced(b"key000777", 9).unwrap();
    assert!(t2.cache_hit);
    assert_eq!(t2.data_block, t.data_block);
    assert_eq!(cache.len(), 1);

    // A snapshot older than every version sees nothing, whatever block it reads.
    assert_eq!(table.get(b"key000777", 4).unwrap(), Lookup::Absent);

    // Absent keys inside the key range: the filter answers most of them with no block read.
    let mut no_block = 0;
    for i in 0..1000u32 {
        let (l, t) = table
            .get_traced(format!("key{i:06}x").as_bytes(), 9)
            .unwrap();
        assert_eq!(l, Lookup::Absent);
        if t.data_block.is_none() {
            assert_eq!(t.filter, strata_sstable::FilterAnswer::Absent);
            no_block += 1;
        }
    }
    assert!(
        no_block > 970,
        "only {no_block} of 1000 misses skipped the data blocks"
    );
}

#[test]
fn values_are_views_of_the_cached_block() {
    let fs = MemFs::new();
    let path = table_path("t");
    let model: Model = (0..10u32)
        .map(|i| {
            (
                ik(format!("k{i}").as_bytes(), 1, ValueKind::Put),
                vec![b'v'; 100],
            )
        })
        .collect();
    build(&fs, &path, &model, TableOptions::default());
    let cache = Arc::new(BlockCache::new(1 << 20));
    let table = open(&fs, &path, Some(cache.clone())).unwrap();
    let a = table.get(b"k3", 1).unwrap().into_value().unwrap();
    let b = table.get(b"k4", 1).unwrap().into_value().unwrap();
    let mut it = table.iter();
    it.seek(InternalKey::for_seek(b"k5", 1).as_bytes()).unwrap();
    let c = it.value_bytes();
    // All three point into the one cached block: same allocation, 100 + header bytes apart.
    let gap = |x: &bytes::Bytes, y: &bytes::Bytes| {
        (y.as_ptr() as usize).wrapping_sub(x.as_ptr() as usize)
    };
    assert!(gap(&a, &b) > 100 && gap(&a, &b) < 120, "{}", gap(&a, &b));
    assert_eq!(gap(&a, &b), gap(&b, &c));
}

#[test]
fn tables_round_trip_on_the_real_file_system() {
    use strata_core::{FileSystem, StdFs};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("000009.sst");
    let model: Model = (0..500u32)
        .map(|i| {
            (
                ik(
                    format!("key{i:05}").as_bytes(),
                    u64::from(i),
                    ValueKind::Put,
                ),
                i.to_le_bytes().to_vec(),
            )
        })
        .collect();
    let mut b =
        strata_sstable::TableBuilder::new(StdFs.create(&path).unwrap(), TableOptions::default())
            .unwrap();
    for (k, v) in &model {
        b.add(k.as_bytes(), v).unwrap();
    }
    let summary = b.finish().unwrap();
    StdFs.sync_dir(dir.path()).unwrap();
    assert_eq!(summary.file_size, std::fs::metadata(&path).unwrap().len());
    let table = strata_sstable::Table::open(StdFs.open(&path).unwrap(), 9, None).unwrap();
    assert_eq!(
        scan_forward(&mut table.iter()).unwrap(),
        model_entries(&model)
    );
    assert_eq!(
        table.get(b"key00042", 100).unwrap(),
        Lookup::Found(42u32.to_le_bytes().to_vec().into())
    );
}

/// A mapped table whose blocks are stored raw reads them from the page cache every time
/// (caching a copy would spend memory twice to read slower); a compressed one, one read
/// with `pread`, or a block too large for a mapped read goes through the block cache.
#[test]
fn only_blocks_that_cost_a_read_or_a_decompression_are_cached() {
    use strata_core::{FileSystem, StdFs};
    let dir = tempfile::tempdir().unwrap();
    // Key 777's value is larger than a mapped read (16 KiB), so its block is too.
    let value = |i: u32| vec![i as u8; if i == 777 { 20_000 } else { 50 }];
    let model: Model = (0..2000u32)
        .map(|i| {
            (
                ik(format!("key{i:06}").as_bytes(), 5, ValueKind::Put),
                value(i),
            )
        })
        .collect();
    let write = |name: &str, compression: Compression| {
        let path = dir.path().join(name);
        let options = TableOptions {
            compression,
            ..TableOptions::default()
        };
        let mut b =
            strata_sstable::TableBuilder::new(StdFs.create(&path).unwrap(), options).unwrap();
        for (k, v) in &model {
            b.add(k.as_bytes(), v).unwrap();
        }
        b.finish().unwrap();
        path
    };
    let (raw, lz4) = (
        write("raw.sst", Compression::None),
        write("lz4.sst", Compression::Lz4),
    );
    let mapped = StdFs.open_mapped(&raw).unwrap().mapped_read_limit() > 0;
    assert_eq!(mapped, cfg!(all(unix, target_pointer_width = "64")));
    assert_eq!(StdFs.open(&raw).unwrap().mapped_read_limit(), 0);

    let cases = [
        (StdFs.open_mapped(&raw).unwrap(), !mapped),
        (StdFs.open(&raw).unwrap(), true),
        (StdFs.open_mapped(&lz4).unwrap(), true),
    ];
    for (n, (file, cached)) in cases.into_iter().enumerate() {
        let cache = Arc::new(BlockCache::new(1 << 20));
        let table = strata_sstable::Table::open(file, n as u64, Some(cache.clone())).unwrap();
        for _ in 0..3 {
            let (l, t) = table.get_traced(b"key000100", 9).unwrap();
            assert_eq!(l, Lookup::Found(value(100).into()));
            assert!(t.data_block.is_some());
        }
        let (_, t) = table.get_traced(b"key000100", 9).unwrap();
        assert_eq!(t.cache_hit, cached, "case {n}");
        assert_eq!(cache.len(), usize::from(cached), "case {n}");
        // The large block is cached whatever the table.
        for _ in 0..2 {
            assert_eq!(
                table.get(b"key000777", 9).unwrap(),
                Lookup::Found(value(777).into())
            );
        }
        let (_, t) = table.get_traced(b"key000777", 9).unwrap();
        assert!(t.cache_hit, "case {n}");
        assert_eq!(cache.len(), usize::from(cached) + 1, "case {n}");
        // Iterators follow the same rule.
        assert_eq!(
            scan_forward(&mut table.iter()).unwrap(),
            model_entries(&model)
        );
        assert_eq!(cache.len() > 2, cached, "case {n}");
    }
}

#[test]
fn tables_are_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<strata_sstable::Table>();
    assert_send_sync::<BlockCache>();
    assert_send::<strata_sstable::TableIter>();

    let fs = MemFs::new();
    let path = table_path("shared");
    let model: Model = (0..3000u32)
        .map(|i| {
            (
                ik(
                    format!("key{i:06}").as_bytes(),
                    u64::from(i % 7),
                    ValueKind::Put,
                ),
                i.to_le_bytes().to_vec(),
            )
        })
        .collect();
    build(&fs, &path, &model, TableOptions::default());
    // A cache smaller than the table: lookups race with evictions.
    let table = open(&fs, &path, Some(Arc::new(BlockCache::new(16 << 10)))).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let table = Arc::clone(&table);
            s.spawn(move || {
                for i in (t..3000).step_by(3) {
                    let want = Lookup::Found(i.to_le_bytes().to_vec().into());
                    assert_eq!(
                        table.get(format!("key{i:06}").as_bytes(), 10).unwrap(),
                        want
                    );
                }
                let mut it = table.iter();
                assert_eq!(scan_forward(&mut it).unwrap().len(), 3000);
            });
        }
    });
}

/// Keys that begin with a big-endian counter, as many applications' do: the index search
/// guesses each key's block from that prefix. The last separator is the shortest key
/// past the table's keys (here one byte, `\x01`), far above every other; it must steer
/// neither the guess nor the answer.
#[test]
fn counter_keys_read_the_block_that_holds_them() {
    let fs = MemFs::new();
    let path = table_path("counters");
    let key = |i: u64| {
        let mut k = i.to_be_bytes().to_vec();
        k.extend_from_slice(b"00000000");
        k
    };
    let model: Model = (0..20_000u64)
        .map(|i| (ik(&key(i * 3), 5, ValueKind::Put), i.to_le_bytes().to_vec()))
        .collect();
    // No filter: every lookup goes to the index.
    let options = TableOptions {
        bloom_bits_per_key: 0,
        ..TableOptions::default()
    };
    build(&fs, &path, &model, options);
    let table = open(&fs, &path, None).unwrap();
    let entries: Vec<_> = table.index_entries().collect();
    assert!(entries.len() > 100, "want many blocks");
    assert_eq!(
        strata_core::key::user_key(entries.last().unwrap().separator),
        b"\x01"
    );
    // Each key, and the absent keys on either side of it, read the block whose range
    // holds them: the first whose separator is not below the key.
    let block_for = |user_key: &[u8]| {
        let target = InternalKey::for_seek(user_key, 9);
        entries
            .iter()
            .find(|e| compare_internal_keys(e.separator, target.as_bytes()).is_ge())
            .map(|e| e.handle)
    };
    for i in (0..60_001u64).step_by(7) {
        let k = key(i);
        // Loading the entries ahead (a guess from the same prefix) changes nothing.
        table.prefetch(&k, KeyHash::of(&k));
        let (found, trace) = table.get_traced(&k, 9).unwrap();
        assert_eq!(trace.data_block, block_for(&k), "key {i}");
        let expected = if i % 3 == 0 && i < 60_000 {
            Lookup::Found((i / 3).to_le_bytes().to_vec().into())
        } else {
            Lookup::Absent
        };
        assert_eq!(found, expected, "key {i}");
    }
    // Past the last key but below the last separator: the last block, which lacks it.
    let (found, trace) = table.get_traced(&key(u64::from(u32::MAX)), 9).unwrap();
    assert_eq!(found, Lookup::Absent);
    assert_eq!(trace.data_block, Some(entries.last().unwrap().handle));
    // Past the last separator: no block at all.
    for k in [&b"\x02"[..], b"", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff"] {
        table.prefetch(k, KeyHash::of(k));
    }
    let (found, trace) = table.get_traced(b"\x02", 9).unwrap();
    assert_eq!(found, Lookup::Absent);
    assert_eq!(trace.data_block, None);
}
