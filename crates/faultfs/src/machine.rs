//! The model of a machine's storage: what the running process sees, what is durable,
//! and the journal of operations that leads from one to the other.
//!
//! Files are inodes that only grow (every `create` makes a fresh inode), so the state
//! after any prefix of the journal is fully described by per-inode lengths (bytes handed
//! to the OS, bytes synced) and two namespaces: the *live* one the process sees, and the
//! *durable* one holding directory entries as of the last `sync_dir` of their parent.
//! Replaying a prefix of the journal therefore needs no copy of file data: the bytes of
//! inode `i` after any prefix are a prefix of its current bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::crash::{CrashOptions, UnsyncedData, UnsyncedDirs};
use crate::rng::Rng;

/// Index of an inode in [`Machine::lens`] and in the file system's data.
pub(crate) type Inode = usize;

/// A directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    File(Inode),
    Dir,
}

/// A change to a directory, durable once that directory is synced.
#[derive(Clone, Debug)]
enum DirOp {
    Link(PathBuf, Entry),
    Unlink(PathBuf),
    Rename(PathBuf, PathBuf),
}

impl DirOp {
    /// The directory whose sync makes this change durable (for a rename: the target's).
    fn dir(&self) -> &Path {
        let path = match self {
            DirOp::Link(p, _) | DirOp::Unlink(p) | DirOp::Rename(_, p) => p,
        };
        path.parent().unwrap_or(Path::new(""))
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, Entry>) {
        match self {
            DirOp::Link(p, e) => {
                names.insert(p.clone(), *e);
            }
            DirOp::Unlink(p) => {
                names.remove(p);
            }
            DirOp::Rename(from, to) => {
                if let Some(e) = names.remove(from) {
                    names.insert(to.clone(), e);
                }
            }
        }
    }
}

/// One recorded mutating operation, as the model replays it.
#[derive(Clone, Debug)]
pub(crate) enum Rec {
    /// A new, empty inode bound to `path`.
    Create {
        path: PathBuf,
        inode: Inode,
    },
    /// The inode's length is now `len`.
    Append {
        inode: Inode,
        len: usize,
    },
    /// Everything appended to the inode so far is durable.
    Sync {
        inode: Inode,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    /// A second name for an existing inode (a hard link).
    Link {
        path: PathBuf,
        inode: Inode,
    },
    Remove {
        path: PathBuf,
    },
    Mkdir {
        dir: PathBuf,
    },
    SyncDir {
        dir: PathBuf,
    },
}

/// Storage state at one point of the journal.
#[derive(Clone, Debug, Default)]
pub(crate) struct Machine {
    /// Bytes handed to the OS, per inode.
    pub lens: Vec<usize>,
    /// Bytes durable (synced), per inode; never more than `lens`.
    pub synced: Vec<usize>,
    /// The namespace the process sees.
    pub live: BTreeMap<PathBuf, Entry>,
    /// Directory entries as of their parent's last sync.
    durable: BTreeMap<PathBuf, Entry>,
    /// Directory changes not yet durable, in order: `durable` + all of them = `live`.
    pending: Vec<DirOp>,
}

impl Machine {
    /// A machine where everything in `names` is durable, inodes of the given lengths.
    pub fn settled(lens: Vec<usize>, names: BTreeMap<PathBuf, Entry>) -> Self {
        Machine {
            synced: lens.clone(),
            lens,
            durable: names.clone(),
            live: names,
            pending: Vec::new(),
        }
    }

    pub fn apply(&mut self, rec: &Rec) {
        match rec {
            Rec::Create { path, inode } => {
                debug_assert_eq!(*inode, self.lens.len());
                self.lens.push(0);
                self.synced.push(0);
                self.dir_op(DirOp::Link(path.clone(), Entry::File(*inode)));
            }
            Rec::Append { inode, len } => {
                if let Some(l) = self.lens.get_mut(*inode) {
                    *l = *len;
                }
            }
            Rec::Sync { inode } => {
                if let (Some(s), Some(l)) = (self.synced.get_mut(*inode), self.lens.get(*inode)) {
                    *s = *l;
                }
            }
            Rec::Rename { from, to } => self.dir_op(DirOp::Rename(from.clone(), to.clone())),
            Rec::Link { path, inode } => {
                self.dir_op(DirOp::Link(path.clone(), Entry::File(*inode)))
            }
            Rec::Remove { path } => self.dir_op(DirOp::Unlink(path.clone())),
            Rec::Mkdir { dir } => self.dir_op(DirOp::Link(dir.clone(), Entry::Dir)),
            Rec::SyncDir { dir } => {
                let (now, later): (Vec<DirOp>, Vec<DirOp>) = std::mem::take(&mut self.pending)
                    .into_iter()
                    .partition(|op| op.dir() == dir.as_path());
                for op in &now {
                    op.apply(&mut self.durable);
                }
                self.pending = later;
            }
        }
    }

    fn dir_op(&mut self, op: DirOp) {
        op.apply(&mut self.live);
        self.pending.push(op);
    }

    /// Number of directory changes a crash could still lose.
    pub fn pending_dir_ops(&self) -> usize {
        self.pending.len()
    }

    /// Bytes handed to the OS but not synced, over every inode.
    pub fn unsynced_bytes(&self) -> usize {
        self.lens.iter().zip(&self.synced).map(|(l, s)| l - s).sum()
    }

    /// What survives a crash: the namespace and, per surviving inode, how many bytes.
    pub fn crash(&self, opts: &CrashOptions) -> (BTreeMap<PathBuf, Entry>, Vec<(Inode, usize)>) {
        let mut rng = Rng::new(opts.seed);
        let mut names = match opts.dirs {
            UnsyncedDirs::Keep => self.live.clone(),
            UnsyncedDirs::Revert => self.durable.clone(),
            UnsyncedDirs::RandomPrefix => {
                // A journaling file system commits directory changes in order: some
                // prefix of the unsynced ones made it.
                let mut names = self.durable.clone();
                let keep = rng.up_to(self.pending.len());
                for op in self.pending.iter().take(keep) {
                    op.apply(&mut names);
                }
                names
            }
        };
        // An entry whose directory did not survive went with it.
        let dirs: std::collections::BTreeSet<PathBuf> = names
            .iter()
            .filter(|(_, e)| **e == Entry::Dir)
            .map(|(p, _)| p.clone())
            .collect();
        names.retain(|p, _| {
            p.ancestors()
                .skip(1)
                .all(|a| a.parent().is_none() || a.as_os_str().is_empty() || dirs.contains(a))
        });
        let mut inodes: Vec<Inode> = names
            .values()
            .filter_map(|e| match e {
                Entry::File(i) => Some(*i),
                Entry::Dir => None,
            })
            .collect();
        inodes.sort_unstable();
        inodes.dedup();
        let kept = inodes
            .into_iter()
            .map(|i| {
                let (len, synced) = (self.lens[i], self.synced[i]);
                let extra = match opts.data {
                    UnsyncedData::Drop => 0,
                    UnsyncedData::Keep => len - synced,
                    // Write-back happens in order within a file (page by page); keep
                    // it simple: some prefix of the unsynced suffix reached the disk.
                    UnsyncedData::RandomPrefix => rng.up_to(len - synced),
                };
                (i, synced + extra)
            })
            .collect();
        (names, kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn sync_dir_makes_only_its_own_entries_durable() {
        let mut m = Machine::settled(Vec::new(), BTreeMap::new());
        m.apply(&Rec::Mkdir { dir: p("/a") });
        m.apply(&Rec::Mkdir { dir: p("/b") });
        m.apply(&Rec::SyncDir { dir: p("/") });
        m.apply(&Rec::Create {
            path: p("/a/x"),
            inode: 0,
        });
        m.apply(&Rec::Create {
            path: p("/b/y"),
            inode: 1,
        });
        m.apply(&Rec::SyncDir { dir: p("/a") });
        assert_eq!(m.pending_dir_ops(), 1);
        let (names, _) = m.crash(&CrashOptions::power_loss());
        assert!(names.contains_key(&p("/a/x")));
        assert!(!names.contains_key(&p("/b/y")));
        assert!(names.contains_key(&p("/b")));
    }

    #[test]
    fn a_link_is_durable_only_after_its_directory_is_synced_and_shares_the_inode() {
        let mut m = Machine::settled(Vec::new(), BTreeMap::new());
        m.apply(&Rec::Mkdir { dir: p("/a") });
        m.apply(&Rec::Mkdir { dir: p("/b") });
        m.apply(&Rec::SyncDir { dir: p("/") });
        m.apply(&Rec::Create {
            path: p("/a/x"),
            inode: 0,
        });
        m.apply(&Rec::Append { inode: 0, len: 5 });
        m.apply(&Rec::Sync { inode: 0 });
        m.apply(&Rec::SyncDir { dir: p("/a") });
        m.apply(&Rec::Link {
            path: p("/b/y"),
            inode: 0,
        });
        // Syncing the source's directory does not make the new name durable.
        m.apply(&Rec::SyncDir { dir: p("/a") });
        let (names, _) = m.crash(&CrashOptions::power_loss());
        assert!(!names.contains_key(&p("/b/y")));
        m.apply(&Rec::SyncDir { dir: p("/b") });
        let (names, kept) = m.crash(&CrashOptions::power_loss());
        assert_eq!(names.get(&p("/b/y")), Some(&Entry::File(0)));
        assert_eq!(names.get(&p("/a/x")), Some(&Entry::File(0)));
        assert_eq!(kept, [(0, 5)], "one inode, kept once");
    }

    #[test]
    fn a_lost_directory_takes_its_synced_entries_with_it() {
        let mut m = Machine::settled(Vec::new(), BTreeMap::new());
        m.apply(&Rec::Mkdir { dir: p("/db") });
        m.apply(&Rec::Create {
            path: p("/db/f"),
            inode: 0,
        });
        m.apply(&Rec::SyncDir { dir: p("/db") });
        let (names, kept) = m.crash(&CrashOptions::power_loss());
        assert!(names.is_empty(), "{names:?}");
        assert!(kept.is_empty());
    }
}
