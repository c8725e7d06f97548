//! What each engine is given, in words: its write buffer, its cache, what a plain write
//! waits for, and its table compression. The header, the JSON report and the timeline
//! plot print these, so a figure never travels without the configuration behind it;
//! the peers' open paths take their compression from [`compression`], so what is
//! printed is what was opened.

use serde::Serialize;

use crate::engine::{Config, Res, base_name};

/// One engine's configuration as the harness opens it (docs/benchmarks.md, "What each
/// engine is given").
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Setup {
    /// Engine name as run (`strata-baseline` included).
    pub engine: String,
    /// MemTable / write buffer, or "none" for the B-trees.
    pub write_buffer: String,
    /// Block or page cache.
    pub cache: String,
    /// What a plain (unsynced) write waits for before it returns.
    pub write_returns_after: String,
    /// The table compression the engine was opened with.
    pub compression: String,
}

/// Table compression an engine is opened with for `--compression asked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Uncompressed tables.
    None,
    /// LZ4 on every level.
    Lz4,
    /// zstd on every level.
    Zstd,
    /// The engine has no table compression (sled, redb), or not this codec (fjall and
    /// zstd): it runs uncompressed, and says so.
    Unsupported,
}

/// The codec engine `engine` runs with when `--compression asked` is given. An unknown
/// name, or zstd on an engine whose zstd this build lacks, is an error (as Strata's own
/// open refuses zstd without the `zstd` feature), so a run never silently measures
/// something other than what was asked of an engine that could do it.
pub fn compression(engine: &str, asked: &str) -> Res<Codec> {
    let codec = match asked {
        "none" => Codec::None,
        "lz4" => Codec::Lz4,
        "zstd" => Codec::Zstd,
        other => {
            return Err(format!("--compression {other}: one of none, lz4, zstd").into());
        }
    };
    Ok(match (base_name(engine), codec) {
        // The B-trees store values as given, whatever is asked.
        ("sled" | "redb", _) => Codec::Unsupported,
        (_, Codec::None) => Codec::None,
        // lsm-tree 3.1 (fjall's tables) has LZ4 and nothing else.
        ("fjall", Codec::Zstd) => Codec::Unsupported,
        ("rocksdb", Codec::Zstd) if !cfg!(feature = "zstd") => {
            return Err(
                "--compression zstd on RocksDB needs the harness built with \
                        `--features zstd` (the rocksdb crate's zstd)"
                    .into(),
            );
        }
        (_, c) => c,
    })
}

/// How `codec` is printed for `engine`.
fn codec_words(engine: &str, codec: Codec) -> String {
    match codec {
        Codec::None => "none".to_string(),
        Codec::Lz4 => "lz4 (every level)".to_string(),
        Codec::Zstd => "zstd (every level)".to_string(),
        Codec::Unsupported => match base_name(engine) {
            "fjall" => "(no zstd in fjall: uncompressed)".to_string(),
            _ => "(no compression)".to_string(),
        },
    }
}

fn mib(bytes: usize) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    }
}

/// When a plain (unsynced) Strata write returns: its WAL appends are copies into mapped
/// page-cache pages where `StdFs` maps the log (64-bit Linux), `pwrite`s elsewhere.
const STRATA_WRITE_RETURNS: &str = if cfg!(all(target_os = "linux", target_pointer_width = "64")) {
    "WAL record copied into mapped page-cache pages, no fsync"
} else {
    "WAL record write() to the OS, no fsync"
};

/// What `engine` is given under `cfg`.
pub fn setup(engine: &str, cfg: &Config) -> Setup {
    let (wb, cache) = (cfg.write_buffer_bytes, cfg.cache_bytes);
    let codec = compression(engine, cfg.compression);
    // Mapped tables stored raw bypass Strata's block cache (`Table::open`): their blocks
    // are copied out of the page cache on every read.
    let strata_cache = if cfg.mmap_reads
        && matches!(codec, Ok(Codec::None))
        && cfg!(all(unix, target_pointer_width = "64"))
    {
        format!("{} (raw tables: mapped page cache)", mib(cache))
    } else {
        format!("{} (blocks)", mib(cache))
    };
    let codec = match codec {
        Ok(c) => codec_words(engine, c),
        Err(e) => format!("error: {e}"),
    };
    let (write_buffer, cache, returns) = match base_name(engine) {
        "strata" => (
            format!("MemTable {}, up to 2 frozen", mib(wb)),
            strata_cache,
            STRATA_WRITE_RETURNS,
        ),
        "rocksdb" => (
            format!("{} x 3 (1 active + 2 immutable)", mib(wb)),
            format!("{} (LRU, blocks)", mib(cache)),
            "WAL write() to the OS, sync = false",
        ),
        "fjall" => (
            format!("MemTable {}", mib(wb)),
            mib(cache),
            "journal write() to the OS (PersistMode::Buffer)",
        ),
        "sled" => (
            "none (B-tree)".to_string(),
            format!("page cache {}", mib(cache + wb)),
            "sled's buffers only, flushed every 500 ms (weaker)",
        ),
        "redb" => (
            "none (B-tree)".to_string(),
            mib(cache + wb),
            "commit with Durability::None: memory until a durable commit (weaker)",
        ),
        _ => ("?".to_string(), "?".to_string(), "?"),
    };
    Setup {
        engine: engine.to_string(),
        write_buffer,
        cache,
        write_returns_after: returns.to_string(),
        compression: codec,
    }
}

/// Every engine's setup, in run order.
pub fn all(engines: &[&str], cfg: &Config) -> Vec<Setup> {
    engines.iter().map(|e| setup(e, cfg)).collect()
}

/// The header's compression line: each engine's codec, and how far the values compress.
pub fn compression_line(engines: &[&str], cfg: &Config, ratio: f64) -> String {
    let each: Vec<String> = all(engines, cfg)
        .into_iter()
        .map(|s| format!("{} {}", s.engine, s.compression))
        .collect();
    let values = if ratio >= 1.0 {
        "values random (--compression_ratio 1.0: nothing to compress)".to_string()
    } else {
        format!(
            "values compress to about {:.0} % (--compression_ratio {ratio})",
            ratio.max(0.0) * 100.0
        )
    };
    format!("Compression: {}; {values}", each.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Purpose;

    fn cfg(compression: &'static str) -> Config {
        Config {
            cache_bytes: 32 << 20,
            write_buffer_bytes: 64 << 20,
            compression,
            bloom_filter_budget: None,
            subcompactions: 1,
            mmap_reads: true,
            range_delete_compactions: true,
            purpose: Purpose::Plain,
        }
    }

    #[test]
    fn each_engine_gets_the_codec_it_can_run() {
        assert_eq!(compression("strata", "lz4").unwrap(), Codec::Lz4);
        assert_eq!(compression("rocksdb", "lz4").unwrap(), Codec::Lz4);
        assert_eq!(compression("fjall", "lz4").unwrap(), Codec::Lz4);
        assert_eq!(compression("fjall", "zstd").unwrap(), Codec::Unsupported);
        assert_eq!(compression("sled", "lz4").unwrap(), Codec::Unsupported);
        assert_eq!(compression("redb", "none").unwrap(), Codec::Unsupported);
        assert_eq!(compression("fjall", "none").unwrap(), Codec::None);
        assert_eq!(compression("strata-baseline", "lz4").unwrap(), Codec::Lz4);
        assert!(compression("strata", "snappy").is_err());
        assert_eq!(
            compression("rocksdb", "zstd").is_ok(),
            cfg!(feature = "zstd")
        );
    }

    #[test]
    fn the_header_states_every_engines_compression() {
        let line = compression_line(
            &["strata", "rocksdb", "fjall", "sled", "redb"],
            &cfg("lz4"),
            0.5,
        );
        assert!(line.contains("strata lz4 (every level)"), "{line}");
        assert!(line.contains("rocksdb lz4 (every level)"), "{line}");
        assert!(line.contains("fjall lz4 (every level)"), "{line}");
        assert!(line.contains("sled (no compression)"), "{line}");
        assert!(line.contains("redb (no compression)"), "{line}");
        assert!(line.contains("about 50 %"), "{line}");
        let s = setup("strata", &cfg("lz4"));
        assert_eq!(s.cache, "32 MiB (blocks)");
        let s = setup("strata", &cfg("none"));
        if cfg!(all(unix, target_pointer_width = "64")) {
            assert!(s.cache.contains("mapped page cache"), "{}", s.cache);
        }
        let s = setup("redb", &cfg("none"));
        assert_eq!(s.cache, "96 MiB");
        assert!(s.write_returns_after.contains("Durability::None"));
    }
}
