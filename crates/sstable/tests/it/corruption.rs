//! Every corruption is detected: flip each bit, truncate at each offset, misplace
//! blocks, raise the version — always `Corruption` naming the file (or `NotSupported`
//! for an intact newer version) or a correct answer; never a panic, never a wrong value.

use std::path::Path;
use std::sync::Arc;

use strata_core::{Error, FileSystem, Lookup, MemFs, ValueKind};
use strata_sstable::{BlockCache, Compression, FilterStatus, TableOptions};

use crate::common::*;

fn small_model() -> Model {
    let mut m = Model::new();
    for i in 0..24u32 {
        let k = format!("key{:03}", i * 7);
        m.insert(
            ik(k.as_bytes(), 10 + u64::from(i), ValueKind::Put),
            format!("value-{i}-{}", "z".repeat(i as usize % 5)).into_bytes(),
        );
        if i % 4 == 0 {
            m.insert(ik(k.as_bytes(), 5, ValueKind::Delete), Vec::new());
        }
    }
    m
}

fn small_options(compression: Compression) -> TableOptions {
    TableOptions {
        block_size_bytes: 160,
        restart_interval: 3,
        bloom_bits_per_key: 10,
        compression,
    }
}

fn assert_names_file(e: &Error, path: &Path, file_len: u64) {
    match e {
        Error::Corruption { file, offset, .. } => {
            assert_eq!(file, path, "{e}");
            assert!(*offset <= file_len, "{e}");
        }
        other => panic!("expected corruption, got {other}"),
    }
}

/// Opens (possibly damaged) bytes and checks every answer is right or a corruption error.
/// Returns whether any corruption was reported (by open, reads, or verify).
fn check_damaged(bytes: Vec<u8>, model: &Model, path: &Path) -> bool {
    let file_len = bytes.len() as u64;
    let fs = MemFs::new();
    fs.write_file(path, bytes);
    let cache = Arc::new(BlockCache::new(1 << 20));
    let table = match open(&fs, path, Some(cache)) {
        Ok(t) => t,
        Err(e) => {
            assert_names_file(&e, path, file_len);
            return true;
        }
    };
    let mut detected = false;
    let expected = model_entries(model);
    let mut it = table.iter();
    match scan_forward(&mut it) {
        Ok(got) => assert_eq!(got, expected, "forward scan returned wrong data"),
        Err(e) => {
            assert_names_file(&e, path, file_len);
            detected = true;
        }
    }
    match scan_backward(&mut it) {
        Ok(mut got) => {
            got.reverse();
            assert_eq!(got, expected, "backward scan returned wrong data")
        }
        Err(e) => {
            assert_names_file(&e, path, file_len);
            detected = true;
        }
    }
    for k in model.keys() {
        let uk = k.user_key();
        for snap in [k.parsed().seq, u64::MAX, 7] {
            match table.get(uk, snap) {
                Ok(got) => assert_eq!(got, model_get(model, uk, snap), "get({uk:?}, {snap}) wrong"),
                Err(e) => {
                    assert_names_file(&e, path, file_len);
                    detected = true;
                }
            }
        }
    }
    for absent in [&b"key0005"[..], b"", b"zzz"] {
        match table.get(absent, u64::MAX) {
            Ok(got) => assert_eq!(got, Lookup::Absent),
            Err(e) => {
                assert_names_file(&e, path, file_len);
                detected = true;
            }
        }
    }
    match table.verify() {
        Ok(_) => detected,
        Err(e) => {
            assert_names_file(&e, path, file_len);
            true
        }
    }
}

fn flip_every_bit(compression: Compression) {
    let fs = MemFs::new();
    let path = table_path("flip");
    let model = small_model();
    build(&fs, &path, &model, small_options(compression));
    let original = fs.read_file(&path).unwrap();
    let table = open(&fs, &path, None).unwrap();
    assert!(table.index_entries().len() >= 4, "want several data blocks");
    if compression != Compression::None {
        let p = table.properties();
        assert!(
            p.data_bytes_on_disk < p.data_bytes_uncompressed,
            "nothing was compressed"
        );
    }
    assert!(
        !check_damaged(original.clone(), &model, &path),
        "intact table reported damage"
    );
    eprintln!(
        "flipping each of {} bits of a {compression:?} table ({} data blocks)",
        original.len() * 8,
        table.index_entries().len()
    );
    for byte in 0..original.len() {
        for bit in 0..8 {
            let mut damaged = original.clone();
            damaged[byte] ^= 1 << bit;
            // Every single-bit flip is caught by some checksum: by open, a read, or verify.
            assert!(
                check_damaged(damaged, &model, &path),
                "flip of byte {byte} bit {bit} went unnoticed"
            );
        }
    }
}

#[test]
fn every_bit_flip_is_detected_or_harmless() {
    flip_every_bit(Compression::None);
}

#[test]
fn every_bit_flip_in_a_compressed_table_is_detected_or_harmless() {
    flip_every_bit(Compression::Lz4);
}

/// zstd tables are format version 2: every bit of one, flipped, is caught too.
#[cfg(feature = "zstd")]
#[test]
fn every_bit_flip_in_a_zstd_table_is_detected_or_harmless() {
    let fs = MemFs::new();
    let path = table_path("zstd");
    build(&fs, &path, &small_model(), small_options(Compression::Zstd));
    let table = open(&fs, &path, None).unwrap();
    assert_eq!(table.footer().version, strata_sstable::FormatVersion::V2);
    flip_every_bit(Compression::Zstd);
}

/// Tables that do not use zstd stay format version 1, readable by every build.
#[test]
fn only_zstd_tables_are_written_as_version_2() {
    for compression in [Compression::None, Compression::Lz4] {
        let fs = MemFs::new();
        let path = table_path("v1");
        build(&fs, &path, &small_model(), small_options(compression));
        let table = open(&fs, &path, None).unwrap();
        assert_eq!(table.footer().version, strata_sstable::FormatVersion::V1);
    }
}

/// A build without the codec refuses to write zstd, rather than writing something else.
#[cfg(not(feature = "zstd"))]
#[test]
fn zstd_without_the_feature_is_not_supported() {
    let fs = MemFs::new();
    let file = fs.create(&table_path("z")).unwrap();
    let options = TableOptions {
        compression: Compression::Zstd,
        ..TableOptions::default()
    };
    let e = strata_sstable::TableBuilder::new(file, options).unwrap_err();
    assert!(matches!(e, strata_core::Error::NotSupported(_)), "{e}");
}

#[test]
fn every_truncation_is_corruption() {
    let fs = MemFs::new();
    let path = table_path("cut");
    build(&fs, &path, &small_model(), small_options(Compression::None));
    let original = fs.read_file(&path).unwrap();
    for len in 0..original.len() {
        fs.write_file(&path, original[..len].to_vec());
        let e = open(&fs, &path, None).unwrap_err();
        assert_names_file(&e, &path, len as u64);
    }
}

#[test]
fn a_damaged_filter_is_ignored_by_lookups_and_reported_by_verify() {
    let fs = MemFs::new();
    let path = table_path("filter");
    let model = small_model();
    build(&fs, &path, &model, small_options(Compression::None));
    let table = open(&fs, &path, None).unwrap();
    assert!(matches!(
        table.filter_status(),
        FilterStatus::Loaded { probes: 7, .. }
    ));
    let filter = table.footer().filter;
    let mut bytes = fs.read_file(&path).unwrap();
    bytes[filter.offset as usize] ^= 0x10;
    fs.write_file(&path, bytes);
    let table = open(&fs, &path, None).unwrap();
    assert!(matches!(
        table.filter_status(),
        FilterStatus::Unusable { .. }
    ));
    for k in model.keys() {
        assert!(table.may_contain(k.user_key()));
        assert_eq!(
            table.get(k.user_key(), u64::MAX).unwrap(),
            model_get(&model, k.user_key(), u64::MAX)
        );
    }
    let e = table.verify().unwrap_err();
    assert_names_file(&e, &path, u64::MAX);
}

#[test]
fn a_block_copied_from_another_file_fails_its_checksum() {
    // Two tables with the same entries have the same layout, differing only in their
    // file ids: a block moved between them must not verify.
    let fs = MemFs::new();
    let (a, b) = (table_path("a"), table_path("b"));
    let model = small_model();
    build(&fs, &a, &model, small_options(Compression::None));
    build(&fs, &b, &model, small_options(Compression::None));
    let (bytes_a, mut bytes_b) = (fs.read_file(&a).unwrap(), fs.read_file(&b).unwrap());
    assert_eq!(bytes_a.len(), bytes_b.len());
    let first = open(&fs, &a, None)
        .unwrap()
        .index_entries()
        .next()
        .unwrap()
        .handle;
    let end = (first.offset + first.size + 5) as usize;
    assert_eq!(
        bytes_a[..end - 4],
        bytes_b[..end - 4],
        "same contents, different checksums"
    );
    bytes_b[..end].copy_from_slice(&bytes_a[..end]);
    fs.write_file(&b, bytes_b);
    let table = open(&fs, &b, None).unwrap();
    let e = table
        .get(model.keys().next().unwrap().user_key(), u64::MAX)
        .unwrap_err();
    assert_names_file(&e, &b, u64::MAX);
    assert!(e.to_string().contains("checksum"), "{e}");
}

#[test]
fn blocks_swapped_within_a_file_fail_their_checksums() {
    // Equal-size blocks: restart interval 1 and same-length keys and values.
    let fs = MemFs::new();
    let path = table_path("swap");
    let model: Model = (0..40u32)
        .map(|i| {
            (
                ik(format!("k{i:04}").as_bytes(), 1, ValueKind::Put),
                vec![b'v'; 20],
            )
        })
        .collect();
    build(
        &fs,
        &path,
        &model,
        TableOptions {
            block_size_bytes: 100,
            restart_interval: 1,
            ..TableOptions::default()
        },
    );
    let table = open(&fs, &path, None).unwrap();
    let handles: Vec<_> = table.index_entries().map(|e| e.handle).collect();
    let (x, y) = (handles[1], handles[2]);
    assert_eq!(x.size, y.size);
    let mut bytes = fs.read_file(&path).unwrap();
    let n = (x.size + 5) as usize;
    let block_x = bytes[x.offset as usize..][..n].to_vec();
    let block_y = bytes[y.offset as usize..][..n].to_vec();
    bytes[x.offset as usize..][..n].copy_from_slice(&block_y);
    bytes[y.offset as usize..][..n].copy_from_slice(&block_x);
    fs.write_file(&path, bytes);
    let table = open(&fs, &path, None).unwrap();
    let e = scan_forward(&mut table.iter()).unwrap_err();
    assert_names_file(&e, &path, u64::MAX);
    assert!(
        matches!(e, Error::Corruption { offset, .. } if offset == x.offset),
        "{e}"
    );
}

#[test]
fn a_newer_format_version_is_not_supported() {
    let fs = MemFs::new();
    let path = table_path("v3");
    build(&fs, &path, &small_model(), TableOptions::default());
    let mut bytes = fs.read_file(&path).unwrap();
    let n = bytes.len();
    let newer = strata_sstable::FormatVersion::CURRENT.as_u32() + 1;
    crate::common::set_footer_version(&mut bytes, newer);
    fs.write_file(&path, bytes.clone());
    let e = open(&fs, &path, None).unwrap_err();
    assert!(matches!(e, Error::NotSupported(_)), "{e}");
    // The same change without fixing the checksum is damage, not a newer version.
    bytes[n - 12] ^= 1;
    fs.write_file(&path, bytes);
    assert!(open(&fs, &path, None).unwrap_err().is_corruption());
}

#[test]
fn garbage_files_never_panic() {
    let fs = MemFs::new();
    let path = table_path("garbage");
    let mut rng = Rng(42);
    for len in [0usize, 1, 19, 20, 75, 76, 77, 200, 4096] {
        for _ in 0..20 {
            let mut bytes = rng.bytes(len);
            if len >= 8 {
                bytes[len - 8..].copy_from_slice(&strata_sstable::format::TABLE_MAGIC);
            }
            fs.write_file(&path, bytes);
            let e = open(&fs, &path, None).unwrap_err();
            assert_names_file(&e, &path, len as u64);
        }
    }
}

#[test]
fn verify_block_names_every_damaged_block_and_only_those() {
    let fs = MemFs::new();
    let path = table_path("blocks");
    let model = small_model();
    build(&fs, &path, &model, small_options(Compression::None));
    let table = open(&fs, &path, None).unwrap();
    let handles: Vec<_> = table.index_entries().map(|e| e.handle).collect();
    assert!(handles.len() >= 4, "want several data blocks");
    let intact: u64 = handles
        .iter()
        .map(|&h| table.verify_block(h).unwrap())
        .sum();
    assert_eq!(intact, model.len() as u64, "entries counted per block");

    // Damage the second and the last data block: exactly those two fail, each naming
    // its own offset; the others still verify.
    let mut bytes = fs.read_file(&path).unwrap();
    let damaged = [handles[1], handles[handles.len() - 1]];
    for h in damaged {
        bytes[h.offset as usize + 1] ^= 0x20;
    }
    fs.write_file(&path, bytes);
    let table = open(&fs, &path, None).unwrap();
    for &h in &handles {
        match table.verify_block(h) {
            Ok(_) => assert!(
                !damaged.contains(&h),
                "damaged block at {} passed",
                h.offset
            ),
            Err(Error::Corruption { file, offset, .. }) => {
                assert!(damaged.contains(&h), "intact block at {} failed", h.offset);
                assert_eq!((file.as_path(), offset), (path.as_path(), h.offset));
            }
            Err(e) => panic!("expected corruption, got {e}"),
        }
    }
}

#[test]
fn read_footer_reads_an_intact_footer_of_a_table_that_will_not_open() {
    let fs = MemFs::new();
    let path = table_path("footer");
    build(&fs, &path, &small_model(), small_options(Compression::None));
    let footer = strata_sstable::Table::read_footer(&*fs.open(&path).unwrap()).unwrap();
    assert_eq!(footer, *open(&fs, &path, None).unwrap().footer());
    // Damage the index block: the table no longer opens, its footer still reads.
    let mut bytes = fs.read_file(&path).unwrap();
    bytes[footer.index.offset as usize] ^= 1;
    fs.write_file(&path, bytes.clone());
    assert!(open(&fs, &path, None).unwrap_err().is_corruption());
    let again = strata_sstable::Table::read_footer(&*fs.open(&path).unwrap()).unwrap();
    assert_eq!(again, footer);
    // A truncated file has no footer.
    bytes.truncate(bytes.len() - 3);
    fs.write_file(&path, bytes);
    let e = strata_sstable::Table::read_footer(&*fs.open(&path).unwrap()).unwrap_err();
    assert_names_file(&e, &path, u64::MAX);
}
