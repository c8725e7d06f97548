//! The crate-wide error type.
//!
//! One `#[non_exhaustive]` enum for the whole engine, so callers match on kinds rather
//! than strings, and corruption is always reported with the file and offset it was found at.
//!
//! Errors are `Clone` (an I/O error and a poisoning cause are shared behind an `Arc`):
//! one failure is often reported to several callers — every writer of a failed commit
//! group, and every later caller refused because of it — and each of them receives the
//! original error, not a description of it. [`Error::kind`] sees through
//! [`Error::Poisoned`] to that original failure.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Result alias used across Strata.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure Strata reports.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed.
    Io {
        /// What Strata was doing, e.g. "syncing /db/000004.log".
        context: String,
        /// The underlying error, shared by every clone of this one.
        source: Arc<io::Error>,
    },

    /// Bytes read from disk are damaged or inconsistent.
    Corruption {
        /// The file holding the damaged bytes.
        file: PathBuf,
        /// Byte offset in that file where the damage was detected.
        offset: u64,
        /// What was wrong.
        reason: String,
    },

    /// The caller passed something Strata cannot accept (too-large key, bad option).
    InvalidArgument(String),

    /// The data or request needs a feature this build does not have, such as a newer
    /// on-disk format version.
    NotSupported(String),

    /// Another process (or handle) holds the exclusive lock on this path.
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// The object was closed (a database by `Db::close` on any of its handles); every
    /// later call on it fails this way.
    Closed,

    /// A transaction could not commit: another write, committed after its snapshot,
    /// touched what it depended on. Nothing of it was written; retry it.
    Conflict {
        /// The key (or the start of the range) the other write touched.
        key: Vec<u8>,
        /// What the transaction did with it: "wrote", "read" or "scanned".
        what: &'static str,
    },

    /// A key's merge operands could not be folded into a value: no merge operator is
    /// configured for its keyspace, or the operator refused them.
    Merge {
        /// The key whose operands were being folded.
        key: Vec<u8>,
        /// Why: no operator, or the operator's name and its refusal.
        reason: String,
    },

    /// A thread panicked while changing shared state, which may be half-changed: a bug
    /// (or an allocation failure). There is no error to report beyond where it happened.
    Panicked {
        /// What the panicking thread was doing, e.g. "inserting into a MemTable".
        context: String,
    },

    /// An earlier unrecoverable failure (e.g. a failed fsync) made this object refuse
    /// further writes; reopen to continue. [`Error::kind`] is the kind of that failure.
    Poisoned {
        /// Where the earlier failure happened, e.g. "writing the WAL".
        context: String,
        /// The earlier failure itself, shared by every caller refused because of it.
        cause: Arc<Error>,
    },
}

/// What kind of failure an [`Error`] is, for callers deciding what to do about it
/// (retry, free space, restore from a backup, fix the call). An [`Error::Poisoned`]
/// has the kind of the failure that poisoned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An I/O call failed (other than for lack of space).
    Io,
    /// The device or the user's quota is full (`ENOSPC`, `EDQUOT`): freeing space and
    /// reopening may help.
    StorageFull,
    /// Stored data is damaged.
    Corruption,
    /// The caller passed something Strata cannot accept.
    InvalidArgument,
    /// The request or the data needs a feature this build does not have.
    NotSupported,
    /// Another process or handle holds the database's lock.
    Locked,
    /// The database was closed.
    Closed,
    /// A transaction lost a race with another write: retry it.
    Conflict,
    /// A key's merge operands could not be folded (no operator, or it refused them).
    Merge,
    /// A bug: a panic left state unusable.
    Internal,
}

impl Error {
    /// An [`Error::Io`] with a description of the operation that failed.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source: Arc::new(source),
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

    /// An [`Error::Poisoned`] refusing work because `cause` happened while `context`.
    ///
    /// If `cause` is itself `Poisoned`, its own cause is kept instead, so a chain of
    /// refusals never nests: the message names the failure once.
    pub fn poisoned(context: impl Into<String>, cause: &Error) -> Self {
        let cause = match cause {
            Error::Poisoned { cause, .. } => Arc::clone(cause),
            other => Arc::new(other.clone()),
        };
        Error::Poisoned {
            context: context.into(),
            cause,
        }
    }

    /// What kind of failure this is; for [`Error::Poisoned`], the kind of its cause.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { source, .. } => {
                if is_storage_full(source) {
                    ErrorKind::StorageFull
                } else {
                    ErrorKind::Io
                }
            }
            Error::Corruption { .. } => ErrorKind::Corruption,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::NotSupported(_) => ErrorKind::NotSupported,
            Error::Locked { .. } => ErrorKind::Locked,
            Error::Closed => ErrorKind::Closed,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Merge { .. } => ErrorKind::Merge,
            Error::Panicked { .. } => ErrorKind::Internal,
            Error::Poisoned { cause, .. } => cause.kind(),
        }
    }

    /// True if the failure is damaged data: an [`Error::Corruption`], or an
    /// [`Error::Poisoned`] caused by one.
    pub fn is_corruption(&self) -> bool {
        self.kind() == ErrorKind::Corruption
    }
}

/// Whether an I/O error means the device or the quota is full. The kinds cover the
/// platforms' raw codes (`ENOSPC`, `EDQUOT`, `ERROR_DISK_FULL`, …), which the standard
/// library decodes into them.
fn is_storage_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "I/O error while {context}: {source}"),
            Error::Corruption {
                file,
                offset,
                reason,
            } => write!(
                f,
                "corruption in {} at offset {offset}: {reason}",
                file.display()
            ),
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Error::NotSupported(what) => write!(f, "not supported: {what}"),
            Error::Locked { path } => write!(
                f,
                "{} is locked by another process or handle",
                path.display()
            ),
            Error::Closed => f.write_str("the database is closed"),
            Error::Conflict { key, what } => write!(
                f,
                "transaction conflict: another write committed after its snapshot changed a key it {what} ({})",
                String::from_utf8_lossy(key)
            ),
            Error::Merge { key, reason } => write!(
                f,
                "cannot merge the operands of key {}: {reason}",
                String::from_utf8_lossy(key)
            ),
            Error::Panicked { context } => {
                write!(f, "a panic while {context} left its state unusable")
            }
            Error::Poisoned { context, cause } => write!(
                f,
                "refusing writes after an earlier failure: {context}: {cause}"
            ),
        }
    }
}

// Written out rather than derived: the sources are shared (`Arc`), and a caller
// downcasting a source expects the `io::Error` or `Error` itself, not the `Arc`.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(&**source),
            Error::Poisoned { cause, .. } => Some(&**cause),
            _ => None,
        }
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
        assert_eq!(e.kind(), ErrorKind::Corruption);
    }

    #[test]
    fn io_error_keeps_its_source() {
        let e = Error::io("syncing x", io::Error::other("disk on fire"));
        assert_eq!(e.to_string(), "I/O error while syncing x: disk on fire");
        assert!(std::error::Error::source(&e).is_some());
        assert!(!e.is_corruption());
        assert_eq!(e.kind(), ErrorKind::Io);
    }

    #[test]
    fn a_full_device_or_quota_is_storage_full() {
        for source in [
            io::Error::new(io::ErrorKind::StorageFull, "no space left on device"),
            io::Error::new(io::ErrorKind::QuotaExceeded, "disk quota exceeded"),
        ] {
            let e = Error::io("appending to x", source);
            assert_eq!(e.kind(), ErrorKind::StorageFull, "{e}");
        }
        #[cfg(unix)]
        {
            // What a real `write(2)` returns on a full ext4 (ENOSPC is 28 on Linux and
            // the BSDs).
            let e = Error::io("appending to x", io::Error::from_raw_os_error(28));
            assert_eq!(e.kind(), ErrorKind::StorageFull, "{e}");
        }
    }

    #[test]
    fn poisoned_keeps_its_cause_and_its_kind() {
        let full = Error::io(
            "syncing /db/000004.log",
            io::Error::new(io::ErrorKind::StorageFull, "no space left on device"),
        );
        let p = Error::poisoned("writing the WAL", &full);
        assert_eq!(p.kind(), ErrorKind::StorageFull);
        assert_eq!(
            p.to_string(),
            "refusing writes after an earlier failure: writing the WAL: \
             I/O error while syncing /db/000004.log: no space left on device"
        );
        let source = std::error::Error::source(&p).and_then(|s| s.downcast_ref::<Error>());
        assert_eq!(source.map(ToString::to_string), Some(full.to_string()));
        let io = source
            .and_then(std::error::Error::source)
            .and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(io.map(io::Error::kind), Some(io::ErrorKind::StorageFull));

        let corrupt = Error::poisoned("compacting", &Error::corruption("/db/7.sst", 9, "bad"));
        assert!(corrupt.is_corruption());

        // Refusing because of a refusal names the first failure once.
        let twice = Error::poisoned("flushing", &p);
        match &twice {
            Error::Poisoned { context, cause } => {
                assert_eq!(context, "flushing");
                assert!(matches!(**cause, Error::Io { .. }));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn clones_share_the_io_error() {
        let e = Error::io("x", io::Error::other("y"));
        let (Error::Io { source: a, .. }, Error::Io { source: b, .. }) = (&e, &e.clone()) else {
            panic!("not Io");
        };
        assert!(Arc::ptr_eq(a, b));
    }

    #[test]
    fn other_kinds() {
        assert_eq!(Error::Closed.kind(), ErrorKind::Closed);
        assert_eq!(
            Error::InvalidArgument("x".into()).kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            Error::NotSupported("x".into()).kind(),
            ErrorKind::NotSupported
        );
        assert_eq!(
            Error::Locked {
                path: "/db/LOCK".into()
            }
            .kind(),
            ErrorKind::Locked
        );
        assert_eq!(
            Error::Panicked {
                context: "x".into()
            }
            .kind(),
            ErrorKind::Internal
        );
    }
}
