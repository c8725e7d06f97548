//! End to end: the timeline and stall counts of real runs on every compiled engine, the
//! files `--timeline` and `--timeline_svg` write, and `--compression` reaching each
//! engine's tables.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Parser;

use crate::engine::{self, Config, Purpose};
use crate::tails::{FOREGROUND, WRITER};
use crate::workload::{Values, fill_key};
use crate::{Args, Bench};

fn bench(dir: &Path, extra: &[&str]) -> Bench {
    let mut argv = vec![
        "strata-bench",
        "--db",
        dir.to_str().unwrap(),
        "--settle_quiet_ms",
        "20",
        "--json",
    ];
    argv.extend_from_slice(extra);
    Bench::new(Args::try_parse_from(argv).unwrap(), dir.to_path_buf())
}

/// fillrandom and readwhilewriting on every compiled engine with 20 ms windows: the CSV
/// has one row per window of each series, from 0 without a gap, the windows' operations
/// add up to the workload's (and to the writer's puts), the writes are counted for the
/// stalls and the reads are not, and the SVG is well-formed XML naming every engine and
/// its configuration.
#[test]
fn a_timeline_run_writes_every_window_of_every_engine() {
    let engines = engine::compiled();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    let svg = dir.path().join("t.svg");
    let b = bench(
        dir.path(),
        &[
            // Enough operations for several 20 ms windows even at 1 µs a write (the
            // plot draws a line only through two windows or more).
            "--num",
            "100000",
            "--benchmarks",
            "fillrandom,readwhilewriting",
            "--timeline",
            csv.to_str().unwrap(),
            "--timeline_svg",
            svg.to_str().unwrap(),
            "--timeline_interval_ms",
            "20",
        ],
    );
    let (report, _) = b.measure(&engines).unwrap();
    let wrote = b.args.tails.write(&report).unwrap();
    assert_eq!(wrote, [csv.clone(), svg.clone()]);

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(crate::tails::plot::CSV_HEADER));
    // (engine, workload, series) -> [(second, ops)]
    let mut series: BTreeMap<(String, String, String), Vec<(f64, u64)>> = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 9, "{line}");
        let ops: u64 = f[4].parse().unwrap();
        if ops > 0 {
            let p50: f64 = f[5].parse().unwrap();
            let p99: f64 = f[6].parse().unwrap();
            let p999: f64 = f[7].parse().unwrap();
            let max: f64 = f[8].parse().unwrap();
            assert!(p50 <= p99 && p99 <= p999 && p999 <= max, "{line}");
        } else {
            assert_eq!(&f[5..], ["", "", "", ""], "{line}");
        }
        series
            .entry((f[0].into(), f[1].into(), f[2].into()))
            .or_default()
            .push((f[3].parse().unwrap(), ops));
    }
    for e in &engines {
        for (w, s) in [
            ("fillrandom", FOREGROUND),
            ("readwhilewriting", FOREGROUND),
            ("readwhilewriting", WRITER),
        ] {
            let rows = &series[&(e.to_string(), w.to_string(), s.to_string())];
            for (i, (second, _)) in rows.iter().enumerate() {
                assert!(
                    (second - 0.02 * i as f64).abs() < 1e-9,
                    "{e} {w} {s}: {rows:?}"
                );
            }
            let row = report
                .results
                .iter()
                .find(|r| r.engine == *e && r.workload == w)
                .unwrap();
            // One window per 20 ms of the phase, the last one partial.
            let windows = (row.seconds / 0.02).ceil() as usize;
            assert!(
                rows.len().abs_diff(windows) <= 1,
                "{e} {w} {s}: {} rows, {} s",
                rows.len(),
                row.seconds
            );
            let ops: u64 = rows.iter().map(|r| r.1).sum();
            if s == FOREGROUND {
                assert_eq!(ops, row.ops, "{e} {w}");
            } else {
                let puts: u64 = row
                    .note
                    .split("(writer: ")
                    .nth(1)
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(ops, puts, "{e} {w}: {}", row.note);
            }
        }
        let fill = report
            .results
            .iter()
            .find(|r| r.engine == *e && r.workload == "fillrandom")
            .unwrap();
        assert_eq!(fill.writes_timed, Some(100000), "{e}");
        assert!(
            fill.writes_over_1ms.unwrap() >= fill.writes_over_10ms.unwrap(),
            "{e}"
        );
        assert!(
            fill.write_stall_ms.unwrap() >= fill.writes_over_1ms.unwrap() as f64,
            "{e}"
        );
        // readwhilewriting: the writer's puts are the writes, the reads are not.
        let rww = report
            .results
            .iter()
            .find(|r| r.engine == *e && r.workload == "readwhilewriting")
            .unwrap();
        assert_eq!(
            rww.writes_timed,
            Some(
                rww.timeline.series[1]
                    .windows
                    .iter()
                    .map(|w| w.ops)
                    .sum::<u64>()
            ),
            "{e}"
        );
    }
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["results"][0]["writes_over_1ms"].is_u64());
    assert!(json["results"][0].get("timeline").is_none());
    assert_eq!(json["setup"].as_array().unwrap().len(), engines.len());

    let svg = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: String = doc
        .descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("\n");
    for e in &engines {
        assert!(texts.contains(e), "{e}");
    }
    for what in [
        "compression: none",
        "a write returns after",
        "write buffer",
        "cache",
        "fillrandom",
        "readwhilewriting — writer",
    ] {
        assert!(texts.contains(what), "{what}");
    }
    assert!(doc.descendants().any(|n| n.has_tag_name("polyline")));
    assert!(report.table().contains("Write stalls"));
}

/// Apparent bytes of an engine's table files (WAL, journal and metadata left out: they
/// hold the values uncompressed, or are preallocated).
fn table_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            total += table_bytes(&path);
            continue;
        }
        let in_tables = path
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "tables");
        if in_tables || path.extension().is_some_and(|x| x == "sst") {
            total += entry.metadata().unwrap().len();
        }
    }
    total
}

/// `--compression lz4` reaches each LSM that has it: the same 3000 values, compressible
/// to a quarter, take well under half the table bytes they take uncompressed (sled and
/// redb have no compression and are left out). With `rocksdb` or `fjall` compiled, this
/// checks their open paths; Strata's always.
#[test]
fn lz4_shrinks_every_lsms_tables() {
    let values = Values::new(1000, 7, 0.25);
    let mut key = vec![0u8; 16];
    for e in engine::compiled()
        .into_iter()
        .filter(|e| matches!(*e, "strata" | "rocksdb" | "fjall"))
    {
        let mut bytes = BTreeMap::new();
        for codec in ["none", "lz4"] {
            let dir = tempfile::tempdir().unwrap();
            let cfg = Config {
                cache_bytes: 1 << 20,
                write_buffer_bytes: 16 << 20,
                compression: codec,
                bloom_filter_budget: None,
                subcompactions: 1,
                mmap_reads: true,
                range_delete_compactions: true,
                purpose: Purpose::Plain,
            };
            let db = engine::open(e, dir.path(), &cfg).unwrap();
            for i in 0..3000 {
                fill_key(&mut key, i, false);
                db.put(&key, values.get(i, 0), false).unwrap();
            }
            db.settle().unwrap();
            db.close().unwrap();
            bytes.insert(codec, table_bytes(dir.path()));
        }
        assert!(bytes["none"] > 3000 * 1000, "{e}: {bytes:?}");
        assert!(bytes["lz4"] * 2 < bytes["none"], "{e}: {bytes:?}");
    }
}

/// Large values (issue item 7) on every compiled engine: each write, read, scan and
/// overwrite of 4 KiB and 64 KiB values runs and finds every key, and the mixed
/// workload's length check holds.
#[test]
fn large_values_run_on_every_engine() {
    let engines = engine::compiled();
    for size in ["4096", "65536"] {
        let dir = tempfile::tempdir().unwrap();
        let b = bench(
            dir.path(),
            &[
                "--num",
                "300",
                "--value_size",
                size,
                "--benchmarks",
                "fillrandom,readrandom,readseq,overwrite,readrandomwriterandom",
            ],
        );
        let (report, _) = b.measure(&engines).unwrap();
        for e in &engines {
            let row = |w: &str| {
                report
                    .results
                    .iter()
                    .find(|r| r.engine == *e && r.workload == w)
                    .unwrap()
            };
            assert_eq!(row("fillrandom").ops, 300, "{e} {size}");
            assert_eq!(row("readrandom").found, 300, "{e} {size}");
            assert_eq!(row("readseq").found, 300, "{e} {size}");
            assert_eq!(row("overwrite").writes_timed, Some(300), "{e} {size}");
            assert_eq!(row("readrandomwriterandom").found, 270, "{e} {size}");
        }
    }
}
