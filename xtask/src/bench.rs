//! `cargo xtask bench`: runs the db_bench-style harness (`benches/`, package
//! `strata-bench`) in release, so peers are compiled only when asked for and never by
//! the default build or `cargo test --workspace`.
//!
//! Every argument is passed to `strata-bench` (its `--help` lists them), except
//! `--features LIST`, which selects the peers compiled in. Without `--features`, the
//! engines named by `--engine` choose them: `fjall`, `sled`, `redb` or `rocksdb` each
//! enable their own feature, and `all` enables `peers` (fjall, sled, redb; RocksDB's C++
//! build takes ≈ 15 minutes, so it is only built when asked for by name or by
//! `--features rocksdb`).

use std::error::Error;
use std::process::Command;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Splits `--features X` / `--features=X` out of the arguments.
fn take_features(args: &[String]) -> (Option<String>, Vec<String>) {
    let mut features = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--features" {
            features = it.next().cloned();
        } else if let Some(f) = a.strip_prefix("--features=") {
            features = Some(f.to_string());
        } else if a != "--" {
            rest.push(a.clone());
        }
    }
    (features, rest)
}

/// The features the `--engine` argument needs.
fn features_for_engines(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    let mut engines = None;
    while let Some(a) = it.next() {
        if a == "--engine" {
            engines = it.next().cloned();
        } else if let Some(e) = a.strip_prefix("--engine=") {
            engines = Some(e.to_string());
        }
    }
    let engines = engines?;
    let features: Vec<&str> = engines
        .split(',')
        .filter_map(|e| match e.trim() {
            "all" => Some("peers"),
            e @ ("fjall" | "sled" | "redb" | "rocksdb") => Some(e),
            _ => None,
        })
        .collect();
    (!features.is_empty()).then(|| features.join(","))
}

/// Runs `cargo run --release -p strata-bench [--features F] -- ARGS`.
pub fn run(args: &[String]) -> Result<()> {
    let (features, rest) = take_features(args);
    let features = features.or_else(|| features_for_engines(&rest));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["run", "--release", "--quiet", "-p", "strata-bench"]);
    if let Some(f) = &features {
        cmd.args(["--features", f]);
    }
    cmd.arg("--").args(&rest);
    let status = cmd.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("strata-bench failed ({status})").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn features_are_taken_out_and_the_rest_passed_on() {
        let (f, rest) = take_features(&strings(&["--num", "5", "--features", "fjall", "--json"]));
        assert_eq!(f.as_deref(), Some("fjall"));
        assert_eq!(rest, strings(&["--num", "5", "--json"]));
        let (f, rest) = take_features(&strings(&["--features=peers,rocksdb", "--", "--num=1"]));
        assert_eq!(f.as_deref(), Some("peers,rocksdb"));
        assert_eq!(rest, strings(&["--num=1"]));
    }

    #[test]
    fn engines_choose_features() {
        assert_eq!(features_for_engines(&strings(&["--num", "1"])), None);
        assert_eq!(
            features_for_engines(&strings(&["--engine", "strata"])),
            None
        );
        assert_eq!(
            features_for_engines(&strings(&["--engine=all"])).as_deref(),
            Some("peers")
        );
        assert_eq!(
            features_for_engines(&strings(&["--engine", "strata,rocksdb,sled"])).as_deref(),
            Some("rocksdb,sled")
        );
    }
}
