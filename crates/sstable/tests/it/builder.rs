//! The builder's contract: order checks, options, size estimates, summary.

use strata_core::{Error, FileSystem, InternalKey, MemFs, ValueKind};
use strata_sstable::{Compression, TableBuilder, TableOptions};

use crate::common::*;

fn key(k: &str, seq: u64) -> Vec<u8> {
    InternalKey::new(k.as_bytes(), seq, ValueKind::Put).into_bytes()
}

#[test]
fn out_of_order_keys_are_rejected_without_damaging_the_table() {
    let fs = MemFs::new();
    let path = table_path("order");
    let mut b = TableBuilder::new(fs.create(&path).unwrap(), TableOptions::default()).unwrap();
    b.add(&key("b", 5), b"1").unwrap();
    for bad in [key("a", 9), key("b", 5), key("b", 6)] {
        assert!(matches!(b.add(&bad, b"x"), Err(Error::InvalidArgument(_))));
    }
    assert!(matches!(
        b.add(b"short", b"x"),
        Err(Error::InvalidArgument(_))
    ));
    b.add(&key("b", 4), b"2").unwrap();
    b.add(&key("c", 1), b"3").unwrap();
    let s = b.finish().unwrap();
    assert_eq!(s.entry_count, 3);
    let t = open(&fs, &path, None).unwrap();
    assert_eq!(t.verify().unwrap().entries, 3);
}

#[test]
fn an_empty_table_cannot_be_finished() {
    let fs = MemFs::new();
    let b = TableBuilder::new(
        fs.create(&table_path("e")).unwrap(),
        TableOptions::default(),
    )
    .unwrap();
    assert!(matches!(b.finish(), Err(Error::InvalidArgument(_))));
}

#[test]
fn bad_options_are_rejected() {
    let fs = MemFs::new();
    for options in [
        TableOptions {
            block_size_bytes: 0,
            ..TableOptions::default()
        },
        TableOptions {
            restart_interval: 0,
            ..TableOptions::default()
        },
        TableOptions {
            bloom_bits_per_key: 5000,
            ..TableOptions::default()
        },
    ] {
        let r = TableBuilder::new(fs.create(&table_path("o")).unwrap(), options);
        assert!(matches!(r, Err(Error::InvalidArgument(_))));
    }
}

#[test]
fn estimated_size_tracks_the_final_size() {
    let fs = MemFs::new();
    let path = table_path("est");
    let mut b = TableBuilder::new(fs.create(&path).unwrap(), TableOptions::default()).unwrap();
    let mut last = 0;
    let mut rng = Rng(1);
    for i in 0..20_000u32 {
        b.add(&key(&format!("key{i:08}"), 1), &rng.bytes(100))
            .unwrap();
        let est = b.estimated_file_size();
        assert!(est >= last, "estimate shrank");
        last = est;
    }
    let s = b.finish().unwrap();
    let ratio = last as f64 / s.file_size as f64;
    assert!(
        (0.98..1.02).contains(&ratio),
        "estimate {last} vs size {}",
        s.file_size
    );
}

#[test]
fn lz4_shrinks_compressible_blocks_and_keeps_incompressible_ones_raw() {
    let fs = MemFs::new();
    let (a, b) = (table_path("lz4"), table_path("raw"));
    let compressible: Model = (0..2000u32)
        .map(|i| {
            (
                ik(format!("key{i:06}").as_bytes(), 1, ValueKind::Put),
                vec![b'x'; 100],
            )
        })
        .collect();
    let lz4 = TableOptions {
        compression: Compression::Lz4,
        ..TableOptions::default()
    };
    let small = build(&fs, &a, &compressible, lz4.clone());
    let big = build(&fs, &b, &compressible, TableOptions::default());
    assert!(
        small.file_size * 3 < big.file_size,
        "{} vs {}",
        small.file_size,
        big.file_size
    );
    let t = open(&fs, &a, None).unwrap();
    assert_eq!(
        scan_forward(&mut t.iter()).unwrap(),
        model_entries(&compressible)
    );

    let mut rng = Rng(9);
    let random: Model = (0..2000u32)
        .map(|i| {
            (
                ik(format!("key{i:06}").as_bytes(), 1, ValueKind::Put),
                rng.bytes(100),
            )
        })
        .collect();
    build(&fs, &a, &random, lz4);
    let p = open(&fs, &a, None).unwrap().properties().clone();
    assert_eq!(
        p.data_bytes_on_disk,
        p.data_bytes_uncompressed + 5 * p.data_block_count,
        "random data stored raw"
    );
}

#[test]
fn the_inspection_api_shows_the_layout() {
    let fs = MemFs::new();
    let path = table_path("inspect");
    let model: Model = (0..300u32)
        .map(|i| {
            (
                ik(format!("user{i:04}").as_bytes(), 9, ValueKind::Put),
                vec![0; 30],
            )
        })
        .collect();
    let s = build(&fs, &path, &model, TableOptions::default());
    let t = open(&fs, &path, None).unwrap();
    let f = t.footer();
    assert_eq!(f.version, strata_sstable::FormatVersion::V1);
    assert_eq!(f.offset + 76, s.file_size);
    let entries: Vec<_> = t.index_entries().collect();
    assert_eq!(entries.len() as u64, t.properties().data_block_count);
    assert_eq!(entries[0].handle.offset, 0);
    for w in entries.windows(2) {
        assert_eq!(
            w[0].handle.offset + w[0].handle.size + 5,
            w[1].handle.offset
        );
        // Separators are shortened: "user0012" | "user0013" shortens to nothing, but the
        // separator is never longer than the block's last key.
        assert!(strata_core::compare_internal_keys(w[0].separator, w[1].separator).is_lt());
    }
    // The last separator is the successor of the last user key, shortened: "v".
    assert_eq!(
        strata_core::key::user_key(entries.last().unwrap().separator),
        b"v"
    );
}
