//! An openraft log store on a peer engine, written for the benchmark, the way openraft's
//! own examples store a log in a general-purpose key-value engine: entries keyed by
//! big-endian index in one keyspace, the vote, committed and purged log ids (serde
//! JSON, as `strata-kv-raft` encodes them) in another; truncate and purge delete key by
//! key where the engine has no range delete.
//!
//! Appends are made durable exactly as `strata-kv-raft`'s are, so that the engines are
//! what differs: the entries of one `append` are one unsynced batch, and one flusher
//! thread takes every append queued meanwhile, runs one durable sync (fsync) for all
//! of them, then calls their openraft callbacks. (openraft's fjall example instead
//! spawns a thread per append, each syncing; sharing one sync is never slower.)

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Bench;
use crate::engine::Res;

type Entry = openraft::Entry<Bench>;

/// The little a log store needs from an engine. Every write is unsynced until
/// [`LogKv::sync`]; indexes are inclusive.
pub trait LogKv: Send + Sync + 'static {
    /// Writes the entries (index, encoded entry) atomically.
    fn write(&self, entries: Vec<(u64, Vec<u8>)>) -> Res<()>;
    /// The encoded entries with indexes `first..=last`, in order.
    fn read(&self, first: u64, last: u64) -> Res<Vec<Vec<u8>>>;
    /// The encoded entry with the highest index.
    fn last(&self) -> Res<Option<Vec<u8>>>;
    /// Deletes the entries with indexes `first..=last`.
    fn delete(&self, first: u64, last: u64) -> Res<()>;
    /// A metadata value.
    fn get_meta(&self, key: &str) -> Res<Option<Vec<u8>>>;
    /// Sets a metadata value.
    fn put_meta(&self, key: &str, value: &[u8]) -> Res<()>;
    /// Makes every write before it durable (fsync or fdatasync).
    fn sync(&self) -> Res<()>;
}

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";

/// The log store (and its own reader: every clone reads the same engine).
pub struct PeerLog<K: LogKv> {
    kv: Arc<K>,
    flusher: Arc<Flusher>,
    syncs: Arc<AtomicU64>,
}

impl<K: LogKv> Clone for PeerLog<K> {
    fn clone(&self) -> Self {
        PeerLog {
            kv: Arc::clone(&self.kv),
            flusher: Arc::clone(&self.flusher),
            syncs: Arc::clone(&self.syncs),
        }
    }
}

impl<K: LogKv> PeerLog<K> {
    /// A log store on `kv`, with its flusher thread (it ends when the last clone goes).
    pub fn new(kv: K) -> Res<Self> {
        let kv = Arc::new(kv);
        let syncs = Arc::new(AtomicU64::new(0));
        let flusher = Flusher::start(Arc::clone(&kv), Arc::clone(&syncs))?;
        Ok(PeerLog {
            kv,
            flusher: Arc::new(flusher),
            syncs,
        })
    }

    /// The syncs the store has asked of its engine so far (appends and votes).
    pub fn syncs(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.syncs)
    }
}

fn io_err(e: impl ToString) -> AnyError {
    AnyError::error(e.to_string())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, AnyError> {
    serde_json::to_vec(value).map_err(|e| AnyError::new(&e))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AnyError> {
    serde_json::from_slice(bytes).map_err(|e| AnyError::new(&e))
}

impl<K: LogKv> PeerLog<K> {
    fn get_meta<T: DeserializeOwned>(
        &self,
        key: &str,
        err: fn(AnyError) -> StorageIOError<u64>,
    ) -> Result<Option<T>, StorageError<u64>> {
        match self.kv.get_meta(key).map_err(|e| err(io_err(e)))? {
            Some(bytes) => Ok(Some(decode(&bytes).map_err(err)?)),
            None => Ok(None),
        }
    }

    fn put_meta<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        err: fn(AnyError) -> StorageIOError<u64>,
    ) -> Result<(), StorageError<u64>> {
        let bytes = encode(value).map_err(err)?;
        self.kv
            .put_meta(key, &bytes)
            .map_err(|e| err(io_err(e)).into())
    }
}

impl<K: LogKv> RaftLogReader<Bench> for PeerLog<K> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<u64>> {
        let first = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let last = match range.end_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&0) => return Ok(Vec::new()),
            Bound::Excluded(&i) => i - 1,
            Bound::Unbounded => u64::MAX,
        };
        if first > last {
            return Ok(Vec::new());
        }
        let read = self
            .kv
            .read(first, last)
            .map_err(|e| StorageIOError::read_logs(io_err(e)))?;
        read.iter()
            .map(|bytes| decode(bytes).map_err(|e| StorageIOError::read_logs(e).into()))
            .collect()
    }
}

impl<K: LogKv> RaftLogStorage<Bench> for PeerLog<K> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<Bench>, StorageError<u64>> {
        let purged: Option<LogId<u64>> = self.get_meta(PURGED, StorageIOError::read_logs)?;
        let last = match self
            .kv
            .last()
            .map_err(|e| StorageIOError::read_logs(io_err(e)))?
        {
            Some(bytes) => {
                let entry: Entry = decode(&bytes).map_err(StorageIOError::read_logs)?;
                Some(entry.log_id)
            }
            None => None,
        };
        Ok(LogState {
            last_log_id: last.or(purged),
            last_purged_log_id: purged,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        self.put_meta(VOTE, vote, StorageIOError::write_vote)?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.kv
            .sync()
            .map_err(|e| StorageIOError::write_vote(io_err(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        self.get_meta(VOTE, StorageIOError::read_vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        self.put_meta(COMMITTED, &committed, StorageIOError::write_logs)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(self
            .get_meta::<Option<LogId<u64>>>(COMMITTED, StorageIOError::read_logs)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<Bench>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = Vec::new();
        for entry in entries {
            batch.push((
                entry.log_id.index,
                encode(&entry).map_err(StorageIOError::write_logs)?,
            ));
        }
        self.kv
            .write(batch)
            .map_err(|e| StorageIOError::write_logs(io_err(e)))?;
        self.flusher.submit(callback);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.kv
            .delete(log_id.index, u64::MAX)
            .map_err(|e| StorageIOError::write_logs(io_err(e)).into())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        // The purged id first: openraft ignores entries at and below it, so a crash
        // between the two writes leaves nothing it would read.
        self.put_meta(PURGED, &log_id, StorageIOError::write_logs)?;
        self.kv
            .delete(0, log_id.index)
            .map_err(|e| StorageIOError::write_logs(io_err(e)).into())
    }
}

/// The thread that makes appends durable: it takes every callback queued, syncs once,
/// and completes them all (as `strata-kv-raft`'s flusher does with `Db::sync_wal`).
struct Flusher {
    tx: Option<mpsc::Sender<LogFlushed<Bench>>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    fn start<K: LogKv>(kv: Arc<K>, syncs: Arc<AtomicU64>) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel::<LogFlushed<Bench>>();
        let thread = std::thread::Builder::new()
            .name("peer-raft-flush".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut pending = vec![first];
                    pending.extend(rx.try_iter());
                    syncs.fetch_add(1, Ordering::Relaxed);
                    let result = kv.sync().map_err(|e| e.to_string());
                    for callback in pending {
                        callback.log_io_completed(result.clone().map_err(io::Error::other));
                    }
                }
            })?;
        Ok(Flusher {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    fn submit(&self, callback: LogFlushed<Bench>) {
        let Some(tx) = &self.tx else { return };
        if let Err(mpsc::SendError(callback)) = tx.send(callback) {
            callback.log_io_completed(Err(io::Error::other("the flusher thread has stopped")));
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
