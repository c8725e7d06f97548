//! Damage: torn tails, zero-filled tails, mid-log corruption, every truncation point and
//! every bit flip — in each recovery mode, on both file systems. The claim throughout:
//! never a panic, never a wrong record, and records after damage only ever come back
//! when there was no damage.

use strata_core::Error;
use strata_wal::{DamageKind, LogEnd, RecoveryMode};

use crate::common::{
    BLOCK, Env, HEADER, LOG_HEADER, MODES, bytes_of, fragment, log_header, on_both, walk_fragments,
};

/// A multi-block log exercising block padding and fragmentation: a small record, an empty
/// one, one of `spanning` bytes crossing blocks (70 000 gives First, Middle and Last;
/// 40 000 just First and Last), one that leaves 3 bytes of padding at the end of its block,
/// and two small ones in the next block.
fn multi_block_log(env: &Env, name: &str, spanning: usize) -> (Vec<Vec<u8>>, Vec<(u64, u64)>) {
    let spans_before = env.write_log(
        "probe.log",
        &[bytes_of(10, 1), vec![], bytes_of(spanning, 2)],
    );
    let len = spans_before[2].1 as usize;
    let fill = BLOCK - len % BLOCK - HEADER - 3;
    let records = vec![
        bytes_of(10, 1),
        vec![],
        bytes_of(spanning, 2),
        bytes_of(fill, 3),
        bytes_of(50, 4),
        bytes_of(1, 5),
    ];
    let spans = env.write_log(name, &records);
    assert_eq!(
        spans[3].1 as usize % BLOCK,
        BLOCK - 3,
        "padding layout changed"
    );
    (records, spans)
}

/// A log of one block's worth of small records (cheap enough to flip every bit of).
fn small_log(env: &Env, name: &str) -> (Vec<Vec<u8>>, Vec<(u64, u64)>) {
    let records: Vec<Vec<u8>> = [3, 0, 40, 120, 7, 1]
        .iter()
        .enumerate()
        .map(|(i, &n)| bytes_of(n, i as u64 + 10))
        .collect();
    let spans = env.write_log(name, &records);
    (records, spans)
}

fn as_slices(records: &[Vec<u8>]) -> Vec<&[u8]> {
    records.iter().map(|r| &r[..]).collect()
}

fn assert_corruption_in(err: &Option<Error>, env: &Env, name: &str, at_least: u64) {
    match err {
        Some(Error::Corruption { file, offset, .. }) => {
            assert_eq!(file, &env.path(name));
            assert!(
                *offset >= at_least,
                "corruption reported at {offset} < {at_least}"
            );
        }
        other => panic!("{}: expected corruption, got {other:?}", env.name),
    }
}

#[test]
fn truncation_at_every_byte_gives_a_clean_prefix() {
    on_both(|env| {
        // Every cut is read in full by three modes, so the cost grows with the square of
        // the size: two blocks and a bit are enough here.
        let (records, spans) = multi_block_log(env, "full.log", 40_000);
        let full = env.get_raw("full.log");
        for cut in 0..=full.len() as u64 {
            let kept = spans.iter().take_while(|s| s.1 <= cut).count();
            let valid_len = match kept {
                0 if cut < LOG_HEADER as u64 => 0,
                0 => LOG_HEADER as u64,
                k => spans[k - 1].1,
            };
            let clean = cut == valid_len;
            // A cut inside block padding leaves only zeros after the last record, which
            // every mode takes for preallocated space.
            let zeros_after = valid_len >= LOG_HEADER as u64
                && full[valid_len as usize..cut as usize]
                    .iter()
                    .all(|&b| b == 0);
            for mode in MODES {
                let out = env.read_prefix("full.log", cut, mode);
                assert_eq!(
                    out.data(),
                    as_slices(&records[..kept]),
                    "cut {cut} {mode:?}"
                );
                match (mode, clean) {
                    (_, true) => {
                        assert!(out.error.is_none(), "cut {cut}: {:?}", out.error);
                        assert_eq!(out.end, Some(LogEnd::Clean { len: cut }));
                    }
                    (_, false) if zeros_after => {
                        assert!(out.error.is_none(), "cut {cut}: {:?}", out.error);
                        assert_eq!(
                            out.end,
                            Some(LogEnd::Preallocated {
                                len: valid_len,
                                zeros: cut - valid_len
                            })
                        );
                    }
                    (RecoveryMode::Absolute, false) => {
                        assert_corruption_in(&out.error, env, "full.log", valid_len)
                    }
                    (_, false) => {
                        assert!(out.error.is_none(), "cut {cut} {mode:?}: {:?}", out.error);
                        assert!(
                            matches!(out.end, Some(LogEnd::TornTail { offset, bytes_dropped, .. })
                                if offset == valid_len && bytes_dropped == cut - valid_len),
                            "cut {cut} {mode:?}: {:?}",
                            out.end
                        );
                    }
                }
            }
        }
    });
}

/// Flips `bit` of byte `at` and checks every mode's answer against the rules.
fn check_flip(
    env: &Env,
    full: &[u8],
    records: &[Vec<u8>],
    spans: &[(u64, u64)],
    at: usize,
    bit: u8,
) {
    let mut damaged = full.to_vec();
    damaged[at] ^= 1 << bit;
    env.put_raw("flip.log", &damaged);

    // Which record the byte belongs to (padding belongs to the record after it), and
    // where the intact prefix ends.
    let (index, valid_len) = if at < LOG_HEADER {
        (0, 0)
    } else {
        let i = spans.iter().position(|s| s.1 as usize > at).unwrap();
        (
            i,
            if i == 0 {
                LOG_HEADER as u64
            } else {
                spans[i - 1].1
            },
        )
    };
    let intact_records_follow = if at < LOG_HEADER {
        !records.is_empty()
    } else {
        index + 1 < records.len()
    };
    let prefix = as_slices(&records[..index]);
    let ctx = format!("{} byte {at} bit {bit}", env.name);

    let absolute = env.read_log("flip.log", RecoveryMode::Absolute);
    assert_eq!(absolute.data(), prefix, "{ctx}");
    assert_corruption_in(&absolute.error, env, "flip.log", valid_len);

    let tolerant = env.read_log("flip.log", RecoveryMode::TolerateTornTail);
    assert_eq!(tolerant.data(), prefix, "{ctx}");
    let tolerant_failed = tolerant.error.is_some();
    if tolerant_failed {
        assert_corruption_in(&tolerant.error, env, "flip.log", valid_len);
    } else {
        assert!(
            matches!(tolerant.end, Some(LogEnd::TornTail { offset, .. }) if offset == valid_len),
            "{ctx}: {:?}",
            tolerant.end
        );
        // Damage followed by intact records is never taken for a torn tail (a flipped
        // length bit is repaired by the checksum, so it cannot hide what follows).
        assert!(
            !intact_records_follow,
            "{ctx}: damage taken for a torn tail"
        );
    }

    let pit = env.read_log("flip.log", RecoveryMode::PointInTime);
    assert_eq!(pit.data(), prefix, "{ctx}");
    assert!(pit.error.is_none(), "{ctx}: {:?}", pit.error);
    match pit.end {
        Some(LogEnd::Stopped {
            offset,
            bytes_dropped,
            ..
        }) if tolerant_failed => {
            assert_eq!(offset, valid_len, "{ctx}");
            assert_eq!(bytes_dropped, full.len() as u64 - valid_len, "{ctx}");
        }
        Some(LogEnd::TornTail { offset, .. }) if !tolerant_failed => {
            assert_eq!(offset, valid_len, "{ctx}")
        }
        other => panic!("{ctx}: point-in-time ended with {other:?}"),
    }
}

#[test]
fn every_bit_flip_of_a_small_log_is_detected() {
    on_both(|env| {
        let (records, spans) = small_log(env, "small.log");
        let full = env.get_raw("small.log");
        assert!(full.len() < 400);
        for at in 0..full.len() {
            for bit in 0..8 {
                check_flip(env, &full, &records, &spans, at, bit);
            }
        }
    });
}

#[test]
fn every_bit_flip_of_framing_in_a_multi_block_log_is_detected() {
    on_both(|env| {
        let (records, spans) = multi_block_log(env, "multi.log", 70_000);
        let full = env.get_raw("multi.log");
        let (fragments, padding) = walk_fragments(&full);
        assert_eq!(padding.len(), 3);
        let mut types: Vec<u8> = fragments.iter().map(|f| f.ty).collect();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types, [1, 2, 3, 4, 5], "every fragment type is covered");
        let mut bytes: Vec<usize> = padding;
        for f in &fragments {
            // The header and the first and last payload bytes of every fragment.
            bytes.extend(f.offset..f.offset + HEADER);
            if f.len > 0 {
                bytes.push(f.offset + HEADER);
                bytes.push(f.offset + HEADER + f.len - 1);
            }
        }
        for at in bytes {
            for bit in 0..8 {
                check_flip(env, &full, &records, &spans, at, bit);
            }
        }
    });
}

#[test]
fn torn_tail_keeps_durable_prefix_in_tolerant_and_point_in_time_modes() {
    on_both(|env| {
        let (records, spans) = multi_block_log(env, "full.log", 70_000);
        let full = env.get_raw("full.log");
        // Cut the spanning record (index 2) inside its last block, as a crash would.
        let cut = spans[2].1 as usize - 100;
        env.put_raw("torn.log", &full[..cut]);
        for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::PointInTime] {
            let out = env.read_log("torn.log", mode);
            assert!(out.error.is_none());
            assert_eq!(out.data(), as_slices(&records[..2]));
            let end = out.end.unwrap();
            assert_eq!(
                end,
                LogEnd::TornTail {
                    offset: spans[1].1,
                    // Detected at the header of the cut fragment, which starts block 2.
                    damage: strata_wal::Damage {
                        offset: 2 * BLOCK as u64,
                        kind: DamageKind::Truncated
                    },
                    bytes_dropped: cut as u64 - spans[1].1,
                }
            );
            assert!(
                end.to_string()
                    .contains(&format!("torn tail at offset {}", spans[1].1))
            );
        }
        let out = env.read_log("torn.log", RecoveryMode::Absolute);
        assert_eq!(out.data(), as_slices(&records[..2]));
        assert_corruption_in(&out.error, env, "torn.log", spans[1].1);
    });
}

#[test]
fn mid_log_corruption_is_an_error_unless_point_in_time() {
    on_both(|env| {
        let (records, spans) = small_log(env, "full.log");
        let mut bytes = env.get_raw("full.log");
        // A flipped payload byte in record 2 of 6.
        let at = spans[2].0 as usize + HEADER + 5;
        bytes[at] ^= 0x40;
        env.put_raw("bad.log", &bytes);

        for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::Absolute] {
            let out = env.read_log("bad.log", mode);
            assert_eq!(out.data(), as_slices(&records[..2]));
            match &out.error {
                Some(Error::Corruption {
                    file,
                    offset,
                    reason,
                }) => {
                    assert_eq!(file, &env.path("bad.log"));
                    assert_eq!(*offset, spans[2].0);
                    assert!(reason.contains("checksum"), "{reason}");
                }
                other => panic!("{mode:?}: {other:?}"),
            }
            assert_eq!(out.end, None);
        }
        let out = env.read_log("bad.log", RecoveryMode::PointInTime);
        assert!(out.error.is_none());
        assert_eq!(out.data(), as_slices(&records[..2]));
        assert_eq!(
            out.end,
            Some(LogEnd::Stopped {
                offset: spans[1].1,
                damage: strata_wal::Damage {
                    offset: spans[2].0,
                    kind: DamageKind::BadChecksum
                },
                bytes_dropped: bytes.len() as u64 - spans[1].1,
            })
        );
    });
}

#[test]
fn zeros_after_the_last_record_are_preallocated_space_in_every_mode() {
    on_both(|env| {
        let (records, spans) = multi_block_log(env, "full.log", 70_000);
        let full = env.get_raw("full.log");
        let log_len = spans.last().unwrap().1;
        for zeros in [1, 6, 7, 500, 2 * BLOCK + 3] {
            let mut bytes = full.clone();
            bytes.resize(bytes.len() + zeros, 0);
            env.put_raw("zeros.log", &bytes);
            for mode in MODES {
                let out = env.read_log("zeros.log", mode);
                assert!(
                    out.error.is_none(),
                    "{zeros} zeros {mode:?}: {:?}",
                    out.error
                );
                assert_eq!(out.data(), as_slices(&records));
                assert_eq!(
                    out.end,
                    Some(LogEnd::Preallocated {
                        len: log_len,
                        zeros: zeros as u64
                    }),
                    "{zeros} zeros {mode:?}"
                );
                assert!(
                    out.end
                        .unwrap()
                        .to_string()
                        .contains(&format!("{zeros} bytes of preallocated zeros"))
                );
            }
        }
        // A file that is all zeros holds no records: space reserved before its first
        // append (the log header included) was written, in every mode.
        env.put_raw("prealloc.log", &vec![0; BLOCK + 100]);
        for mode in MODES {
            let out = env.read_log("prealloc.log", mode);
            assert!(out.records.is_empty() && out.error.is_none(), "{mode:?}");
            assert_eq!(
                out.end,
                Some(LogEnd::Preallocated {
                    len: 0,
                    zeros: BLOCK as u64 + 100
                }),
                "{mode:?}"
            );
        }
    });
}

#[test]
fn a_zeroed_block_inside_the_log_is_corruption() {
    on_both(|env| {
        let (records, spans) = multi_block_log(env, "full.log", 70_000);
        let mut bytes = env.get_raw("full.log");
        bytes[2 * BLOCK..3 * BLOCK].fill(0);
        env.put_raw("hole.log", &bytes);
        let out = env.read_log("hole.log", RecoveryMode::TolerateTornTail);
        assert_eq!(out.data(), as_slices(&records[..2]));
        assert_corruption_in(&out.error, env, "hole.log", 2 * BLOCK as u64);
        let out = env.read_log("hole.log", RecoveryMode::PointInTime);
        assert_eq!(out.data(), as_slices(&records[..2]));
        assert!(matches!(
            out.end,
            Some(LogEnd::Stopped { offset, damage, .. })
                if offset == spans[1].1 && damage.kind == DamageKind::ZeroFilled
        ));
    });
}

/// The damage an outside test found silently losing synced records when it hit the
/// last block (issue 13): a log of 2,000 small records over 5 blocks, with, in every
/// block, one of three hits on the first record starting there, one in the middle and
/// the last one: the record's 7-byte header zeroed, the 4 KiB page holding its header
/// zeroed, two bits of its length field flipped. Whenever a record the writer finished
/// follows the damage, `TolerateTornTail` must report `Corruption` and
/// `PointInTime` must stop there; only damage with nothing intact after it may be taken
/// for a torn tail.
#[test]
fn damage_before_intact_records_is_corruption_in_every_block_the_last_included() {
    on_both(|env| {
        let records: Vec<Vec<u8>> = (0..2000u64)
            .map(|i| bytes_of(30 + (i as usize * 7) % 80, i + 1))
            .collect();
        let spans = env.write_log("synced.log", &records);
        let full = env.get_raw("synced.log");
        let blocks = full.len().div_ceil(BLOCK);
        assert_eq!(blocks, 5, "the log spans 5 blocks");
        // `(record index, what to do)` for every block: the hits the issue names.
        type Hit = fn(&mut [u8], usize);
        let hits: [(&str, Hit); 3] = [
            ("zeroed header", |b, at| b[at..at + HEADER].fill(0)),
            ("zeroed 4 KiB page", |b, at| {
                let page = at / 4096 * 4096;
                let end = (page + 4096).min(b.len());
                b[page..end].fill(0);
            }),
            ("two length bits flipped", |b, at| b[at + 4] ^= 0b0001_0100),
        ];
        for block in 0..blocks {
            let in_block: Vec<usize> = (0..records.len())
                .filter(|&i| spans[i].0 as usize / BLOCK == block)
                .collect();
            let picks = [
                in_block[0],
                in_block[in_block.len() / 2],
                *in_block.last().unwrap(),
            ];
            for &r in &picks {
                for (name, hit) in &hits {
                    let mut bytes = full.clone();
                    hit(&mut bytes, spans[r].0 as usize);
                    env.put_raw("hit.log", &bytes);
                    let ctx = format!("{}: {name} of record {r} in block {block}", env.name);
                    // The first record the hit touched: a page may reach back before `r`.
                    let first_hit = spans
                        .iter()
                        .position(|&(start, end)| {
                            bytes[start as usize..end as usize]
                                != full[start as usize..end as usize]
                        })
                        .unwrap();
                    let damaged_end = (first_hit..records.len())
                        .take_while(|&i| {
                            let (start, end) = spans[i];
                            bytes[start as usize..end as usize]
                                != full[start as usize..end as usize]
                        })
                        .last()
                        .unwrap();
                    // The log visibly went on after the damage: a record the writer
                    // finished follows, or the damaged header is zeros with data after it
                    // (preallocated space is zeros to the end of the file).
                    let at = spans[first_hit].0 as usize;
                    let zeroed_header = bytes[at..at + HEADER].iter().all(|&b| b == 0);
                    let data_after = bytes[at..].iter().any(|&b| b != 0);
                    let went_on = damaged_end + 1 < records.len() || (zeroed_header && data_after);
                    let prefix = as_slices(&records[..first_hit]);
                    // End of the intact prefix (nothing, if a page took the log header).
                    let header_hit = bytes[..LOG_HEADER] != full[..LOG_HEADER];
                    let valid_len = match first_hit {
                        _ if header_hit => 0,
                        0 => LOG_HEADER as u64,
                        i => spans[i - 1].1,
                    };

                    let tolerant = env.read_log("hit.log", RecoveryMode::TolerateTornTail);
                    assert_eq!(tolerant.data(), prefix, "{ctx}");
                    let pit = env.read_log("hit.log", RecoveryMode::PointInTime);
                    assert_eq!(pit.data(), prefix, "{ctx}");
                    assert!(pit.error.is_none(), "{ctx}: {:?}", pit.error);
                    if went_on {
                        assert_corruption_in(&tolerant.error, env, "hit.log", valid_len);
                        assert!(
                            matches!(pit.end, Some(LogEnd::Stopped { offset, .. }) if offset == valid_len),
                            "{ctx}: {:?}",
                            pit.end
                        );
                    } else {
                        // Nothing the writer finished comes after: indistinguishable from
                        // a crash, so a torn tail (or, if only zeros follow, preallocated
                        // space), keeping everything before the damage.
                        assert!(tolerant.error.is_none(), "{ctx}: {:?}", tolerant.error);
                        assert_eq!(
                            tolerant.end.map(|e| e.valid_len()),
                            Some(valid_len),
                            "{ctx}"
                        );
                    }
                    let absolute = env.read_log("hit.log", RecoveryMode::Absolute);
                    assert_eq!(absolute.data(), prefix, "{ctx}");
                    let only_zeros_follow = bytes[valid_len as usize..].iter().all(|&b| b == 0);
                    if !only_zeros_follow {
                        assert_corruption_in(&absolute.error, env, "hit.log", valid_len);
                    }
                }
            }
        }
    });
}

/// After a zeroed fragment header, data that is not an intact record start still proves
/// the zeros are damage: preallocated space is zeros to the end of the file. Here the
/// last record's header is zeroed and only its own payload follows.
#[test]
fn data_after_a_zeroed_header_is_corruption_even_without_a_record_after_it() {
    on_both(|env| {
        let records = vec![bytes_of(100, 1), bytes_of(200, 2), bytes_of(300, 3)];
        let spans = env.write_log("full.log", &records);
        let mut bytes = env.get_raw("full.log");
        let last = spans[2].0 as usize;
        bytes[last..last + HEADER].fill(0);
        // Preallocated zeros after the log, as the engine's synced WALs have.
        bytes.resize(bytes.len() + 4096, 0);
        env.put_raw("hit.log", &bytes);
        let out = env.read_log("hit.log", RecoveryMode::TolerateTornTail);
        assert_eq!(out.data(), as_slices(&records[..2]));
        match &out.error {
            Some(Error::Corruption { offset, reason, .. }) => {
                assert_eq!(*offset, spans[2].0);
                assert!(reason.contains("zero-filled"), "{reason}");
                assert!(
                    reason.contains(&format!("offset {}", last + HEADER)),
                    "{reason}"
                );
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        let out = env.read_log("hit.log", RecoveryMode::PointInTime);
        assert_eq!(out.data(), as_slices(&records[..2]));
        assert!(matches!(out.end, Some(LogEnd::Stopped { offset, .. }) if offset == spans[1].1));
    });
}

#[test]
fn last_append_reaching_disk_out_of_order_is_still_a_torn_tail() {
    on_both(|env| {
        // The last record spans blocks 0..=3; its first block never reached the disk but
        // the later ones did. Its own continuation fragments are not an intact record.
        let records = vec![bytes_of(100, 1), bytes_of(3 * BLOCK, 2)];
        let spans = env.write_log("full.log", &records);
        let mut bytes = env.get_raw("full.log");
        bytes[spans[1].0 as usize..BLOCK].fill(0);
        env.put_raw("torn.log", &bytes);
        let out = env.read_log("torn.log", RecoveryMode::TolerateTornTail);
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(out.data(), as_slices(&records[..1]));
        assert_eq!(out.end.unwrap().valid_len(), spans[0].1);
    });
}

#[test]
fn a_newer_format_version_is_not_supported_in_any_mode() {
    on_both(|env| {
        let mut bytes = log_header(2);
        bytes.extend(fragment(1, b"from the future"));
        env.put_raw("v2.log", &bytes);
        for mode in MODES {
            let out = env.read_log("v2.log", mode);
            assert!(out.records.is_empty());
            assert!(
                matches!(&out.error, Some(Error::NotSupported(m)) if m.contains("version 2")),
                "{mode:?}: {:?}",
                out.error
            );
        }
    });
}

#[test]
fn a_foreign_or_invalid_header_is_rejected() {
    on_both(|env| {
        // Intact fragment, wrong magic: not our file, whatever the mode.
        let mut bytes = fragment(5, b"SSTABLE!\x01\0\0\0");
        bytes.extend(fragment(1, b"x"));
        env.put_raw("foreign.log", &bytes);
        let mut v0 = log_header(0);
        v0.extend(fragment(1, b"x"));
        env.put_raw("v0.log", &v0);
        for mode in MODES {
            for name in ["foreign.log", "v0.log"] {
                let out = env.read_log(name, mode);
                assert!(out.records.is_empty());
                assert_corruption_in(&out.error, env, name, 0);
            }
        }
        // No header at all: an intact record at offset 0 cannot be a torn tail.
        env.put_raw("headless.log", &fragment(1, b"record"));
        let out = env.read_log("headless.log", RecoveryMode::TolerateTornTail);
        assert_corruption_in(&out.error, env, "headless.log", 0);
        let out = env.read_log("headless.log", RecoveryMode::PointInTime);
        assert!(matches!(
            out.end,
            Some(LogEnd::Stopped { offset: 0, damage, .. }) if damage.kind == DamageKind::MissingHeader
        ));
    });
}

#[test]
fn intact_fragments_out_of_order_are_corruption_not_a_torn_tail() {
    on_both(|env| {
        let header = log_header(1);
        let cases: [(&str, Vec<Vec<u8>>, DamageKind); 4] = [
            (
                "first-then-full",
                vec![fragment(2, b"a"), fragment(1, b"b")],
                DamageKind::OutOfOrder,
            ),
            (
                "orphan-last",
                vec![fragment(1, b"a"), fragment(4, b"b")],
                DamageKind::OutOfOrder,
            ),
            (
                "second-header",
                vec![fragment(1, b"a"), log_header(1)],
                DamageKind::OutOfOrder,
            ),
            (
                "unknown-type",
                vec![fragment(1, b"a"), fragment(9, b"b")],
                DamageKind::UnknownType(9),
            ),
        ];
        for (name, fragments, kind) in cases {
            let bytes: Vec<u8> = header.iter().copied().chain(fragments.concat()).collect();
            env.put_raw(name, &bytes);
            let bad_at = (header.len() + fragments[0].len()) as u64;
            let out = env.read_log(name, RecoveryMode::TolerateTornTail);
            match &out.error {
                Some(Error::Corruption { offset, .. }) => assert_eq!(*offset, bad_at, "{name}"),
                other => panic!("{name}: {other:?}"),
            }
            let out = env.read_log(name, RecoveryMode::PointInTime);
            assert!(out.error.is_none(), "{name}");
            match out.end {
                Some(LogEnd::Stopped { damage, .. }) => {
                    assert_eq!(damage.kind, kind, "{name}");
                    assert_eq!(damage.offset, bad_at, "{name}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    });
}

mod arbitrary {
    use proptest::prelude::*;
    use strata_wal::RecoveryMode;

    use crate::common::{BLOCK, MODES, bytes_of, on_both};

    /// One way of damaging a file: overwrite a range with noise or zeros, or cut it.
    #[derive(Clone, Debug)]
    enum Hit {
        Noise { at: usize, len: usize, seed: u64 },
        Zeros { at: usize, len: usize },
        Cut { at: usize },
    }

    fn hit() -> impl Strategy<Value = Hit> {
        prop_oneof![
            (any::<usize>(), 1usize..64, any::<u64>()).prop_map(|(at, len, seed)| Hit::Noise {
                at,
                len,
                seed
            }),
            (any::<usize>(), 1usize..BLOCK).prop_map(|(at, len)| Hit::Zeros { at, len }),
            any::<usize>().prop_map(|at| Hit::Cut { at }),
        ]
    }

    fn apply(bytes: &mut Vec<u8>, hit: &Hit) {
        let n = bytes.len().max(1);
        match *hit {
            Hit::Noise { at, len, seed } => {
                let at = at % n;
                let end = (at + len).min(bytes.len());
                let noise = bytes_of(end.saturating_sub(at), seed);
                bytes[at.min(end)..end].copy_from_slice(&noise);
            }
            Hit::Zeros { at, len } => {
                let at = at % n;
                let end = (at + len).min(bytes.len());
                bytes[at.min(end)..end].fill(0);
            }
            Hit::Cut { at } => bytes.truncate(at % n),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Whatever the damage, every record read back is one that was written, at the
        /// offset it was written to, in order from the first: a prefix, never a wrong
        /// or reordered record, never a panic.
        #[test]
        fn damaged_logs_only_ever_yield_a_prefix_of_what_was_written(
            lens in prop::collection::vec(prop_oneof![4 => 0usize..300, 1 => 0usize..(3 * BLOCK)], 1..10),
            hits in prop::collection::vec(hit(), 1..4),
        ) {
            on_both(|env| {
                let records: Vec<Vec<u8>> =
                    lens.iter().enumerate().map(|(i, &n)| bytes_of(n, i as u64)).collect();
                let spans = env.write_log("orig.log", &records);
                let mut bytes = env.get_raw("orig.log");
                for h in &hits {
                    apply(&mut bytes, h);
                }
                env.put_raw("hit.log", &bytes);
                for mode in MODES {
                    let out = env.read_log("hit.log", mode);
                    for (i, (offset, data)) in out.records.iter().enumerate() {
                        assert_eq!(*offset, spans[i].0, "{mode:?}");
                        assert!(data[..] == records[i][..], "{mode:?}: record {i} differs");
                    }
                    if mode == RecoveryMode::PointInTime {
                        assert!(out.error.is_none(), "{:?}", out.error);
                    }
                    if let Some(end) = out.end {
                        let kept = out.records.len();
                        let valid = end.valid_len();
                        if kept == 0 {
                            assert!(valid == 0 || valid == 19, "{mode:?}: {end}");
                        } else {
                            assert_eq!(valid, spans[kept - 1].1, "{mode:?}: {end}");
                        }
                    }
                }
                // Pure noise is never a log.
                env.put_raw("noise.log", &bytes_of(bytes.len(), 99));
                for mode in MODES {
                    let out = env.read_log("noise.log", mode);
                    assert!(out.records.is_empty());
                }
            });
        }
    }
}
