//! Obsolete table files are closed and removed on a background thread.
//!
//! A table file becomes removable when the last version naming it is dropped, and that
//! can happen in any thread: often a reader, whose lookup held the version a compaction
//! replaced meanwhile. Removing the file there made that read pay for the unmap, the
//! close and the unlink, and on a file system that discards freed blocks synchronously
//! (ext4 mounted with `discard`) an unlink of a 64 MiB table waits for the device.
//! `perf sched` caught a reader of a 10M-key `readwhilewriting` run waiting in
//! `unlink` → `ext4_free_blocks` → `blkdev_issue_discard`; runs like it had reads of
//! 300–400 ms, gone in the run after this change (docs/benchmarks.md). So the dropping
//! thread only hands the file over.
//!
//! Crash safety is unchanged: a removal is best effort either way, and a file the
//! manifest no longer names is removed at the next open. When no remover thread runs
//! (a read-only handle, or after [`Remover::stop`]), files are removed in the calling
//! thread, as before.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use strata_core::{Error, FileSystem, Result};
use strata_sstable::Table;

use crate::db::lock;

/// A file to remove, with its reader if it was open (closed first, so that the file
/// is unmapped and has no open handle when it is unlinked: Windows refuses to delete
/// an open file, and Unix frees the blocks only at the last close).
struct Retired {
    path: PathBuf,
    table: Option<Arc<Table>>,
}

/// Files handed over and not yet removed, and a signal for each removal.
#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    done: Condvar,
}

/// The queue of files to remove, and the thread that removes them.
pub(crate) struct Remover {
    fs: Arc<dyn FileSystem>,
    tx: Mutex<Option<Sender<Retired>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pending: Arc<Pending>,
}

impl Remover {
    /// A remover that works in the calling thread until [`start`](Self::start).
    pub fn new(fs: Arc<dyn FileSystem>) -> Self {
        Remover {
            fs,
            tx: Mutex::new(None),
            thread: Mutex::new(None),
            pending: Arc::new(Pending::default()),
        }
    }

    /// Starts the background thread (`strata-remove`).
    pub fn start(&self) -> Result<()> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (fs, pending) = (Arc::clone(&self.fs), Arc::clone(&self.pending));
        let thread = std::thread::Builder::new()
            .name("strata-remove".into())
            .spawn(move || run(&*fs, &rx, &pending))
            .map_err(|e| Error::io("starting a background thread", e))?;
        *lock(&self.tx) = Some(tx);
        *lock(&self.thread) = Some(thread);
        Ok(())
    }

    /// Closes `table` (if given) and removes the file at `path`: on the background
    /// thread if it runs, else now.
    pub fn retire(&self, path: PathBuf, table: Option<Arc<Table>>) {
        let job = Retired { path, table };
        let job = match &*lock(&self.tx) {
            Some(tx) => {
                *lock(&self.pending.count) += 1;
                match tx.send(job) {
                    Ok(()) => return,
                    // The thread is gone (it panicked): do it here.
                    Err(e) => {
                        finished(&self.pending);
                        e.into_inner()
                    }
                }
            }
            None => job,
        };
        remove(&*self.fs, job);
    }

    /// Waits until every file handed over so far is removed.
    pub fn wait_idle(&self) {
        let mut count = lock(&self.pending.count);
        while *count > 0 {
            count = self
                .pending
                .done
                .wait(count)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Removes what is queued, stops the thread, and from then on removes files in the
    /// calling thread.
    pub fn stop(&self) {
        // Dropping the sender ends the thread's loop once the queue is empty.
        drop(lock(&self.tx).take());
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

fn run(fs: &dyn FileSystem, rx: &Receiver<Retired>, pending: &Pending) {
    /// Counts a job done even if removing it panics, so no waiter waits forever.
    struct Done<'a>(&'a Pending);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            finished(self.0);
        }
    }
    for job in rx {
        let _done = Done(pending);
        remove(fs, job);
    }
}

fn remove(fs: &dyn FileSystem, job: Retired) {
    drop(job.table);
    // Best effort: a file left behind is found and removed at the next open.
    if let Err(e) = fs.remove(&job.path) {
        tracing::debug!(path = %job.path.display(), error = %e, "could not remove an obsolete table");
    }
}

fn finished(pending: &Pending) {
    let mut count = lock(&pending.count);
    *count = count.saturating_sub(1);
    if *count == 0 {
        pending.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::Db;
    use crate::slow_fs::SlowSyncFs;

    fn tables(fs: &SlowSyncFs) -> Vec<String> {
        let mut names = fs.inner.list(Path::new("/db")).unwrap();
        names.retain(|n| n.ends_with(".sst"));
        names
    }

    /// The reader that drops the last reference to a table a compaction replaced does
    /// not remove its file itself: the remover's thread does, and
    /// `wait_for_compaction` waits for it.
    #[test]
    fn a_reader_dropping_the_last_reference_to_a_replaced_table_does_not_remove_it() {
        let fs = SlowSyncFs::slow_tables(Duration::ZERO);
        let db = Db::builder(Path::new("/db"))
            .file_system(Arc::new(fs.clone()))
            .open()
            .unwrap();
        for i in 0..100u32 {
            db.put(format!("k{i:03}"), "first").unwrap();
        }
        db.flush().unwrap();
        let first = tables(&fs);
        assert_eq!(first.len(), 1, "{first:?}");
        // The iterator pins the version that holds the first table.
        let mut it = db.iter();
        for i in 0..100u32 {
            db.put(format!("k{i:03}"), "second").unwrap();
        }
        db.compact_range::<&[u8], _>(..).unwrap();
        assert!(
            tables(&fs).contains(&first[0]),
            "still read by the iterator"
        );
        let (key, value) = it.next().unwrap().unwrap();
        assert_eq!((&key[..], &value[..]), (&b"k000"[..], &b"first"[..]));
        drop(it);
        // A background thread may still hold the old version for a moment (one that
        // looked at the tree while the compaction installed); the file is queued when
        // the last holder lets go, and gone once the queue is empty.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            db.wait_for_compaction().unwrap();
            if !tables(&fs).contains(&first[0]) || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!tables(&fs).contains(&first[0]), "{:?}", tables(&fs));
        let removed = fs.removed_by.lock().unwrap().clone();
        let table = removed
            .iter()
            .find(|(path, _)| path.ends_with(&first[0]))
            .unwrap_or_else(|| panic!("{removed:?}"));
        assert_eq!(table.1.as_deref(), Some("strata-remove"), "{removed:?}");
        db.close().unwrap();
    }

    /// After `stop`, and where no thread was started, files are removed in the caller.
    #[test]
    fn without_its_thread_the_remover_removes_in_the_caller() {
        let fs = SlowSyncFs::slow_tables(Duration::ZERO);
        let dir = Path::new("/r");
        fs.create_dir_all(dir).unwrap();
        for name in ["a", "b", "c"] {
            fs.create(&dir.join(name)).unwrap().sync().unwrap();
        }
        let remover = Remover::new(Arc::new(fs.clone()));
        remover.retire(dir.join("a"), None);
        remover.start().unwrap();
        remover.retire(dir.join("b"), None);
        remover.wait_idle();
        remover.stop();
        remover.retire(dir.join("c"), None);
        assert!(fs.list(dir).unwrap().is_empty());
        let by: Vec<Option<String>> = fs
            .removed_by
            .lock()
            .unwrap()
            .iter()
            .map(|(_, by)| by.clone())
            .collect();
        let here = std::thread::current().name().map(str::to_owned);
        assert_eq!(by, [here.clone(), Some("strata-remove".into()), here]);
    }
}
