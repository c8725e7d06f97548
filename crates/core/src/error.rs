//! The crate-wide error type.
//!
//! One `#[non_exhaustive]` enum for the whole engine, so callers match on kinds rather
//! than strings, and corruption is always reported with the file and offset it was found at.

use std::io;
use std::path::PathBuf;

/// Result alias used across Strata.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure Strata reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What Strata was doing, e.g. "syncing /db/000004.log".
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Bytes read from disk are damaged or inconsistent.
    #[error("corruption in {} at offset {offset}: {reason}", file.display())]
    Corruption {
        /// The file holding the damaged bytes.
        file: PathBuf,
        /// Byte offset in that file where the damage was detected.
        offset: u64,
        /// What was wrong.
        reason: String,
    },

    /// The caller passed something Strata cannot accept (too-large key, bad option).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The data or request needs a feature this build does not have, such as a newer
    /// on-disk format version.
    #[error("not supported: {0}")]
    NotSupported(String),

    /// Another process (or handle) holds the exclusive lock on this path.
    #[error("{} is locked by another process or handle", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// An earlier unrecoverable failure (e.g. a failed fsync) made this object refuse
    /// further writes; reopen to continue.
    #[error("refusing writes after an earlier failure: {0}")]
    Poisoned(String),
}

impl Error {
    /// An [`Error::Io`] with a description of the operation that failed.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An [`Error::Corruption`] at `offset` of `file`.
    pub fn corruption(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}

impl From<io::Error> for Error {
    fn from(source: io::Error) -> Self {
        Error::io("an unnamed operation", source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruption_display_names_file_and_offset() {
        let e = Error::corruption("/db/000007.sst", 4096, "bad block checksum");
        assert_eq!(
            e.to_string(),
            "corruption in /db/000007.sst at offset 4096: bad block checksum"
        );
        assert!(e.is_corruption());
    }

    #[test]
    fn io_error_keeps_its_source() {
        let e = Error::io("syncing x", io::Error::other("disk on fire"));
        assert_eq!(e.to_string(), "I/O error while syncing x: disk on fire");
        assert!(std::error::Error::source(&e).is_some());
        assert!(!e.is_corruption());
    }
}
