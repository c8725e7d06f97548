//! The Raft log store: entries in keyspace `raft-log` under their big-endian index,
//! the vote, committed and purged log ids in keyspace `raft-meta`.

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::mpsc;
use std::thread::JoinHandle;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, LogId, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig, StorageError,
    StorageIOError, Vote,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use strata::{Db, Keyspace, WriteBatch, WriteOptions};

use crate::codec::{decode, encode};
use crate::keys::{COMMITTED, PURGED, VOTE, log_key};
use crate::{StrataConfig, any};

/// The Raft log store ([`RaftLogStorage`]): openraft's log entries, vote, and
/// committed and purged log ids. Made by [`crate::open`].
///
/// Appends are written without waiting for an fsync and reported durable to openraft
/// (the flushed callback) by a background thread once it has fsynced them; appends
/// that arrive while an fsync runs share the next one. Votes are fsynced before
/// [`save_vote`](RaftLogStorage::save_vote) returns. `docs/raft.md` has the full
/// durability contract.
pub struct LogStore<C: RaftTypeConfig> {
    db: Db,
    /// The entries.
    log: Keyspace,
    /// The vote, committed and purged ids.
    meta: Keyspace,
    flusher: Flusher,
    _config: PhantomData<fn() -> C>,
}

/// A reader of the log ([`RaftLogReader`]), for openraft's replication tasks: a handle
/// on the same database, reading its newest state.
pub struct LogReader<C: RaftTypeConfig> {
    log: Keyspace,
    // `fn() -> C`: the reader holds no `C`, so it is `Send` and `Sync` whatever `C` is.
    _config: PhantomData<fn() -> C>,
}

impl<C: RaftTypeConfig> Clone for LogReader<C> {
    fn clone(&self) -> Self {
        LogReader {
            log: self.log.clone(),
            _config: PhantomData,
        }
    }
}

impl<C: StrataConfig> LogStore<C> {
    pub(crate) fn new(
        db: Db,
        log: Keyspace,
        meta: Keyspace,
    ) -> Result<Self, StorageError<C::NodeId>> {
        let flusher = Flusher::start(db.clone())
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        Ok(LogStore {
            db,
            log,
            meta,
            flusher,
            _config: PhantomData,
        })
    }

    /// Writes `entries` (readable at once, not yet durable: see [`Flusher`]).
    fn write_entries(
        &self,
        entries: impl IntoIterator<Item = C::Entry>,
    ) -> Result<(), StorageError<C::NodeId>> {
        let mut batch = WriteBatch::new();
        for entry in entries {
            let index = entry.get_log_id().index;
            batch.put_in(
                &self.log,
                log_key(index),
                encode(&entry).map_err(StorageIOError::write_logs)?,
            );
        }
        if !batch.is_empty() {
            self.db
                .write(batch, WriteOptions { sync: false })
                .map_err(|e| StorageIOError::write_logs(any(&e)))?;
        }
        Ok(())
    }

    fn get_meta<T: DeserializeOwned>(
        &self,
        key: &[u8],
        err: fn(AnyError) -> StorageIOError<C::NodeId>,
    ) -> Result<Option<T>, StorageError<C::NodeId>> {
        match self.meta.get(key).map_err(|e| err(any(&e)))? {
            Some(bytes) => Ok(Some(decode(key, &bytes).map_err(err)?)),
            None => Ok(None),
        }
    }

    fn put_meta<T: Serialize>(
        &self,
        key: &[u8],
        value: &T,
        sync: bool,
        err: fn(AnyError) -> StorageIOError<C::NodeId>,
    ) -> Result<(), StorageError<C::NodeId>> {
        let mut batch = WriteBatch::new();
        batch.put_in(&self.meta, key, encode(value).map_err(err)?);
        self.db
            .write(batch, WriteOptions { sync })
            .map_err(|e| err(any(&e)).into())
    }

    /// Deletes the log entries from index `first` through `last` (to the end of the
    /// log if `None`), and applies `extra`, in one atomic batch: one range delete,
    /// O(1) however many entries it removes. Compaction then drops the tables of a
    /// purged prefix whole, without reading them.
    fn delete_log_range(
        &self,
        first: u64,
        last: Option<u64>,
        extra: impl FnOnce(&mut WriteBatch, &Keyspace),
    ) -> Result<(), StorageError<C::NodeId>> {
        let mut batch = WriteBatch::new();
        match last.and_then(|i| i.checked_add(1)) {
            Some(next) => batch.delete_range_in(&self.log, log_key(first), log_key(next)),
            // Through the end of the log, as it is when the write is made.
            None => batch.delete_range_from_in(&self.log, log_key(first)),
        };
        extra(&mut batch, &self.meta);
        // Not synced: a truncation or purge lost in a crash leaves the log as it was
        // before, which openraft had already accepted as durable; and Strata recovers a
        // prefix of its writes, so any later append that is reported durable makes
        // this write durable too.
        self.db
            .write(batch, WriteOptions { sync: false })
            .map_err(|e| StorageIOError::write_logs(any(&e)).into())
    }
}

/// The entries with indexes in `range`, in order.
fn read_entries<C>(
    log: &Keyspace,
    range: impl RangeBounds<u64>,
) -> Result<Vec<C::Entry>, StorageError<C::NodeId>>
where
    C: RaftTypeConfig<Entry: DeserializeOwned>,
{
    let start = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => match i.checked_add(1) {
            Some(i) => i,
            None => return Ok(Vec::new()),
        },
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&i) => Bound::Included(log_key(i)),
        Bound::Excluded(&i) => Bound::Excluded(log_key(i)),
        Bound::Unbounded => Bound::Included(log_key(u64::MAX)),
    };
    let mut entries = Vec::new();
    for item in log.range((Bound::Included(log_key(start)), end)) {
        let (key, value) = item.map_err(|e| StorageIOError::read_logs(any(&e)))?;
        entries.push(decode(&key, &value).map_err(StorageIOError::read_logs)?);
    }
    Ok(entries)
}

impl<C: StrataConfig> RaftLogReader<C> for LogReader<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        read_entries::<C>(&self.log, range)
    }
}

impl<C: StrataConfig> RaftLogReader<C> for LogStore<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        read_entries::<C>(&self.log, range)
    }
}

impl<C: StrataConfig> RaftLogStorage<C> for LogStore<C> {
    type LogReader = LogReader<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let last_purged_log_id: Option<LogId<C::NodeId>> =
            self.get_meta(PURGED, StorageIOError::read_logs)?;
        let last_entry = match self.log.iter().next_back() {
            Some(item) => {
                let (key, value) = item.map_err(|e| StorageIOError::read_logs(any(&e)))?;
                let entry: C::Entry = decode(&key, &value).map_err(StorageIOError::read_logs)?;
                Some(entry.get_log_id().clone())
            }
            None => None,
        };
        Ok(LogState {
            last_log_id: last_entry.or_else(|| last_purged_log_id.clone()),
            last_purged_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            log: self.log.clone(),
            _config: PhantomData,
        }
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        // openraft requires the vote on disk before this returns: a node that forgot
        // its vote after a power loss could vote twice in one term.
        self.put_meta(VOTE, vote, true, StorageIOError::write_vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        self.get_meta(VOTE, StorageIOError::read_vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        // Not synced: it only lets a restarted node re-apply committed entries sooner;
        // losing the newest value costs nothing but that.
        self.put_meta(COMMITTED, &committed, false, StorageIOError::write_logs)
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self
            .get_meta::<Option<LogId<C::NodeId>>>(COMMITTED, StorageIOError::read_logs)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Readable as soon as this returns (openraft requires it); durable only once
        // the flusher's fsync has run, which is when openraft is told.
        self.write_entries(entries)?;
        self.flusher.submit(Box::new(callback));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.delete_log_range(log_id.index, None, |_, _| {})
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let purged = encode(&log_id).map_err(StorageIOError::write_logs)?;
        // The purged id and the delete in one batch: a crash never leaves entries
        // deleted without the id that says where the log now starts.
        self.delete_log_range(0, Some(log_id.index), |batch, meta| {
            batch.put_in(meta, PURGED, &purged);
        })
    }
}

/// The background thread that makes appends durable: it waits for a callback, takes
/// every other one queued meanwhile, fsyncs the WAL once ([`Db::sync_wal`], which
/// covers every write acknowledged before it), then completes them all. So appends
/// in flight while an fsync runs share the next one.
struct Flusher {
    // `Option`s so that `drop` can close the channel, then join.
    tx: Option<mpsc::Sender<Box<dyn Flushed>>>,
    thread: Option<JoinHandle<()>>,
}

/// A completion the flusher calls once the writes before it are durable (or the fsync
/// failed): openraft's [`LogFlushed`], or a test's probe.
pub(crate) trait Flushed: Send + 'static {
    fn flushed(self: Box<Self>, result: io::Result<()>);
}

impl<C: RaftTypeConfig> Flushed for LogFlushed<C> {
    fn flushed(self: Box<Self>, result: io::Result<()>) {
        self.log_io_completed(result);
    }
}

impl Flusher {
    fn start(db: Db) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Box<dyn Flushed>>();
        let thread = std::thread::Builder::new()
            .name("strata-raft-flush".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut pending = vec![first];
                    pending.extend(rx.try_iter());
                    let result = db.sync_wal();
                    for callback in pending {
                        callback.flushed(match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(io::Error::other(format!("fsync of the Raft log: {e}"))),
                        });
                    }
                }
            })?;
        Ok(Flusher {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    fn submit(&self, callback: Box<dyn Flushed>) {
        let Some(tx) = &self.tx else { return };
        if let Err(mpsc::SendError(callback)) = tx.send(callback) {
            // The thread is gone (it only ends when the channel closes, or by a panic):
            // the entries are not known to be durable, so say so rather than hang.
            callback.flushed(Err(io::Error::other(
                "the Raft log's flusher thread has stopped",
            )));
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has completed what is queued;
        // joining means the database is no longer held by it when the store is gone
        // (so it can be reopened at once).
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::mpsc::{Sender, channel};

    use openraft::{CommittedLeaderId, Entry, EntryPayload};
    use strata_faultfs::{CrashOptions, FaultFs};

    use super::*;

    openraft::declare_raft_types!(Config);

    /// Sends the flusher's verdict, and how many unsynced bytes the file system held
    /// at that moment, to the test.
    struct Probe(Sender<(io::Result<()>, usize)>, FaultFs);

    impl Flushed for Probe {
        fn flushed(self: Box<Self>, result: io::Result<()>) {
            let _ = self.0.send((result, self.1.unsynced_bytes()));
        }
    }

    fn entry(index: u64) -> Entry<Config> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Normal(format!("entry {index}")),
        }
    }

    fn store(fs: &FaultFs) -> LogStore<Config> {
        let db = Db::builder(Path::new("/raft"))
            .file_system(Arc::new(fs.clone()))
            .open()
            .expect("open");
        let keyspaces = crate::keys::check_format::<u64>(&db).expect("layout");
        LogStore::new(db, keyspaces.log, keyspaces.meta).expect("store")
    }

    /// Sends the flusher's verdict for the append of entry `.2`, with a copy of what a
    /// power loss at that moment would keep.
    struct DurableProbe(Sender<(io::Result<()>, u64, FaultFs)>, FaultFs, u64);

    impl Flushed for DurableProbe {
        fn flushed(self: Box<Self>, result: io::Result<()>) {
            let kept = self.1.crash_at(usize::MAX, &CrashOptions::power_loss());
            let _ = self.0.send((result, self.2, kept));
        }
    }

    /// `append` is `write_entries` then `submit`: the callback comes only once the
    /// entries are fsynced, so a power loss at the moment of any callback keeps every
    /// entry appended up to it (later appends race with the fsync and may or may not
    /// be kept).
    #[test]
    fn the_flushed_callback_comes_after_the_fsync() {
        let fs = FaultFs::new();
        let log = store(&fs);
        let (tx, rx) = channel();
        for index in 1..=20 {
            log.write_entries([entry(index)]).expect("append");
            log.flusher
                .submit(Box::new(DurableProbe(tx.clone(), fs.clone(), index)));
        }
        for _ in 1..=20 {
            let (result, index, kept) = rx.recv().expect("every callback is called");
            result.expect("flushed");
            let reopened = store(&kept);
            let entries = read_entries::<Config>(&reopened.log, 0..).expect("read");
            let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
            assert!(
                indexes.len() as u64 >= index
                    && indexes.iter().copied().eq(1..=indexes.len() as u64),
                "called back for entry {index} before it was durable: a power loss keeps {indexes:?}"
            );
        }

        let after = fs.crash(&CrashOptions::power_loss());
        drop(log);
        let log = store(&after);
        let entries = read_entries::<Config>(&log.log, 0..).expect("read");
        let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
        assert_eq!(indexes, (1..=20).collect::<Vec<_>>());
    }

    /// The control for the test above: without the flusher's fsync, a power loss loses
    /// the entries (so the survival above is the fsync's doing).
    #[test]
    fn unflushed_entries_are_lost_in_a_power_loss() {
        let fs = FaultFs::new();
        let log = store(&fs);
        log.write_entries([entry(1)]).expect("append");
        let after = fs.crash(&CrashOptions::power_loss());
        drop(log);
        let log = store(&after);
        assert!(
            read_entries::<Config>(&log.log, 0..)
                .expect("read")
                .is_empty()
        );
    }

    /// A failed fsync reaches the callback as an error: the entries are not reported
    /// durable.
    #[test]
    fn a_failed_fsync_is_reported_to_the_callback() {
        let fs = FaultFs::new();
        let log = store(&fs);
        fs.inject(strata_faultfs::Fault::when(|op| {
            op.kind == strata_faultfs::OpKind::Sync
        }));
        log.write_entries([entry(1)]).expect("append");
        let (tx, rx) = channel();
        log.flusher.submit(Box::new(Probe(tx, fs.clone())));
        let (result, _) = rx.recv().expect("called");
        assert!(
            result.is_err(),
            "a failed fsync must not be reported as durable"
        );
    }

    /// Holds the flusher inside its first completion until released.
    struct Gate(Sender<()>, std::sync::mpsc::Receiver<()>);

    impl Flushed for Gate {
        fn flushed(self: Box<Self>, result: io::Result<()>) {
            result.expect("flushed");
            let _ = self.0.send(());
            let _ = self.1.recv();
        }
    }

    /// Appends that arrive while the flusher is busy share its next fsync.
    #[test]
    fn appends_in_flight_share_one_fsync() {
        let fs = FaultFs::new();
        let log = store(&fs);
        let (entered_tx, entered) = channel();
        let (release, release_rx) = channel();
        log.write_entries([entry(1)]).expect("append");
        log.flusher.submit(Box::new(Gate(entered_tx, release_rx)));
        entered.recv().expect("the flusher took the first append");
        let syncs_before = log.db.stats().wal_syncs;
        let (tx, rx) = channel();
        for index in 2..=10 {
            log.write_entries([entry(index)]).expect("append");
            log.flusher.submit(Box::new(Probe(tx.clone(), fs.clone())));
        }
        release.send(()).expect("release");
        for _ in 2..=10 {
            let (result, unsynced) = rx.recv().expect("called");
            result.expect("flushed");
            assert_eq!(unsynced, 0);
        }
        assert_eq!(
            log.db.stats().wal_syncs - syncs_before,
            1,
            "nine appends queued behind a busy flusher take one fsync"
        );
    }

    /// Purging and truncating are one small range delete however long the log, and
    /// the log reads back exactly the entries left.
    #[test]
    fn purge_and_truncate_are_one_small_write() {
        let fs = FaultFs::new();
        let mut log = store(&fs);
        for chunk in (1..=5000u64).collect::<Vec<_>>().chunks(500) {
            log.write_entries(chunk.iter().map(|&i| entry(i)))
                .expect("append");
        }
        let wal = |log: &LogStore<Config>| log.db.stats().wal_bytes_written;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let before = wal(&log);
        runtime
            .block_on(log.purge(LogId::new(CommittedLeaderId::new(1, 0), 4000)))
            .expect("purge");
        let purge_bytes = wal(&log) - before;
        let before = wal(&log);
        runtime
            .block_on(log.truncate(LogId::new(CommittedLeaderId::new(1, 0), 4500)))
            .expect("truncate");
        let truncate_bytes = wal(&log) - before;
        assert!(
            purge_bytes < 200 && truncate_bytes < 100,
            "purge wrote {purge_bytes} B, truncate {truncate_bytes} B"
        );
        let left = read_entries::<Config>(&log.log, ..).expect("read");
        let indexes: Vec<u64> = left.iter().map(|e| e.log_id.index).collect();
        assert_eq!(indexes, (4001..4500).collect::<Vec<_>>());
    }
}
