//! Names of the files in a database directory.
//!
//! ```text
//! CURRENT           names the live manifest ("MANIFEST-000005\n")
//! LOCK              held exclusively while the database is open
//! MANIFEST-000005   log of version edits
//! 000007.log        write-ahead log
//! 000008.sst        table
//! ```
//! Anything else in the directory (temp files, `.DS_Store`) is ignored.

use std::path::{Path, PathBuf};

/// What a file in the database directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// `CURRENT`: names the live manifest.
    Current,
    /// `LOCK`: held while the database is open.
    Lock,
    /// `MANIFEST-NNNNNN`: log of version edits.
    Manifest(u64),
    /// `NNNNNN.log`: write-ahead log.
    Wal(u64),
    /// `NNNNNN.sst`: table.
    Table(u64),
}

pub(crate) const CURRENT: &str = "CURRENT";
pub(crate) const LOCK: &str = "LOCK";

pub(crate) fn wal_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.log"))
}

pub(crate) fn table_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.sst"))
}

pub(crate) fn manifest_name(number: u64) -> String {
    format!("MANIFEST-{number:06}")
}

/// Classifies a directory entry; `None` for names Strata did not write.
pub(crate) fn parse(name: &str) -> Option<FileKind> {
    let number = |digits: &str| -> Option<u64> {
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    };
    match name {
        CURRENT => Some(FileKind::Current),
        LOCK => Some(FileKind::Lock),
        _ => {
            if let Some(n) = name.strip_prefix("MANIFEST-") {
                number(n).map(FileKind::Manifest)
            } else if let Some(n) = name.strip_suffix(".log") {
                number(n).map(FileKind::Wal)
            } else if let Some(n) = name.strip_suffix(".sst") {
                number(n).map(FileKind::Table)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        let dir = Path::new("/db");
        let name = |p: PathBuf| p.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(parse(&name(wal_path(dir, 7))), Some(FileKind::Wal(7)));
        assert_eq!(
            parse(&name(table_path(dir, 1234567))),
            Some(FileKind::Table(1234567))
        );
        assert_eq!(parse(&manifest_name(3)), Some(FileKind::Manifest(3)));
        assert_eq!(parse("CURRENT"), Some(FileKind::Current));
        assert_eq!(parse("LOCK"), Some(FileKind::Lock));
        for stranger in [
            "CURRENT.tmp",
            ".DS_Store",
            "x.log",
            ".sst",
            "MANIFEST-",
            "12a.sst",
            "-1.log",
        ] {
            assert_eq!(parse(stranger), None, "{stranger}");
        }
    }
}
