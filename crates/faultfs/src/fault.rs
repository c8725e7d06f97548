//! Operations, as fault rules see them and as the journal records them.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// The kinds of file-system operation a fault can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// [`FileSystem::create`](strata_core::FileSystem::create) (and the creation of a
    /// missing lock file).
    Create,
    /// [`WritableFile::append`](strata_core::WritableFile::append).
    Write,
    /// [`WritableFile::sync`](strata_core::WritableFile::sync).
    Sync,
    /// [`FileSystem::rename`](strata_core::FileSystem::rename).
    Rename,
    /// [`FileSystem::remove`](strata_core::FileSystem::remove).
    Remove,
    /// [`FileSystem::create_dir_all`](strata_core::FileSystem::create_dir_all), once per
    /// directory it creates.
    CreateDir,
    /// [`FileSystem::sync_dir`](strata_core::FileSystem::sync_dir).
    SyncDir,
    /// [`FileSystem::open`](strata_core::FileSystem::open) (not recorded: it changes
    /// nothing).
    Open,
    /// [`RandomAccessFile::read_exact_at`](strata_core::RandomAccessFile::read_exact_at)
    /// (not recorded).
    Read,
    /// [`FileSystem::link`](strata_core::FileSystem::link): a new directory entry for
    /// an existing file (`path` is the file, `to` the new name).
    Link,
}

impl OpKind {
    /// Whether operations of this kind change the file system (and so are recorded).
    pub fn is_mutating(self) -> bool {
        !matches!(self, OpKind::Open | OpKind::Read)
    }

    pub(crate) const ALL: [OpKind; 10] = [
        OpKind::Create,
        OpKind::Write,
        OpKind::Sync,
        OpKind::Rename,
        OpKind::Remove,
        OpKind::CreateDir,
        OpKind::SyncDir,
        OpKind::Open,
        OpKind::Read,
        OpKind::Link,
    ];

    pub(crate) fn slot(self) -> usize {
        self as usize
    }
}

/// An operation about to run, as a fault rule sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpInfo {
    /// What kind of operation.
    pub kind: OpKind,
    /// The file or directory it acts on (for a rename, the source).
    pub path: PathBuf,
    /// For a rename, the target.
    pub to: Option<PathBuf>,
    /// Bytes written (appends) or read (reads); 0 otherwise.
    pub len: usize,
    /// 1-based count of operations of this kind on this file system so far, this one
    /// included (failed ones count too).
    pub nth: u64,
}

/// A recorded mutating operation: entry `i` of [`FaultFs::ops`](crate::FaultFs::ops)
/// is the `i+1`-th change; [`crash_at(k)`](crate::FaultFs::crash_at) is the state
/// after the first `k`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRecord {
    /// What kind of operation.
    pub kind: OpKind,
    /// The file or directory it acted on (for a rename, the source).
    pub path: PathBuf,
    /// For a rename, the target.
    pub to: Option<PathBuf>,
    /// Bytes appended (writes); 0 otherwise.
    pub len: usize,
}

impl fmt::Display for OpRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}", self.kind, self.path.display())?;
        if let Some(to) = &self.to {
            write!(f, " -> {}", to.display())?;
        }
        if self.kind == OpKind::Write {
            write!(f, " ({} bytes)", self.len)?;
        }
        Ok(())
    }
}

/// A predicate choosing operations to fail.
pub type FaultPredicate = Arc<dyn Fn(&OpInfo) -> bool + Send + Sync>;

/// Which operations fail with an injected I/O error.
#[derive(Clone)]
pub enum Fault {
    /// The `n`-th operation of `kind` counted from when the fault is installed (1 = the
    /// next one), once.
    Nth {
        /// The kind of operation.
        kind: OpKind,
        /// Which one, 1-based.
        n: u64,
    },
    /// Every operation the predicate accepts, until cleared.
    When(FaultPredicate),
}

impl Fault {
    /// The `n`-th (1-based) operation of `kind` from now on fails, once.
    pub fn nth(kind: OpKind, n: u64) -> Self {
        Fault::Nth { kind, n }
    }

    /// Every operation `pred` accepts fails.
    pub fn when(pred: impl Fn(&OpInfo) -> bool + Send + Sync + 'static) -> Self {
        Fault::When(Arc::new(pred))
    }
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Nth { kind, n } => write!(f, "Nth({kind:?}, {n})"),
            Fault::When(_) => f.write_str("When(..)"),
        }
    }
}

/// An installed fault and its progress.
#[derive(Debug)]
pub(crate) struct ArmedFault {
    pub fault: Fault,
    /// The kind of the I/O error a failed operation returns.
    pub error: std::io::ErrorKind,
    /// For `Nth`: matching operations seen since installation.
    pub seen: u64,
    /// A one-shot fault that has fired.
    pub spent: bool,
}

impl ArmedFault {
    /// Whether `op` fails; advances the rule's count.
    pub fn fires(&mut self, op: &OpInfo) -> bool {
        if self.spent {
            return false;
        }
        match &self.fault {
            Fault::Nth { kind, n } => {
                if op.kind != *kind {
                    return false;
                }
                self.seen += 1;
                if self.seen == *n {
                    self.spent = true;
                    return true;
                }
                false
            }
            Fault::When(pred) => pred(op),
        }
    }
}
