//! The state machine: the application's keys under `s`, the last applied log id and
//! membership under `m:applied`, and snapshots of both.

use std::io::Cursor;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, RaftTypeConfig, Snapshot,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use strata::{Bytes, Db, Transaction, WriteBatch, WriteOptions};

use crate::codec::{decode, encode};
use crate::keys::{APPLIED, SNAPSHOT, STATE, state_key};
use crate::snapshot::{Writer, parse};
use crate::{StrataConfig, any};

type Meta<C> = SnapshotMeta<<C as RaftTypeConfig>::NodeId, <C as RaftTypeConfig>::Node>;
type Applied<C> = (
    Option<LogId<<C as RaftTypeConfig>::NodeId>>,
    StoredMembership<<C as RaftTypeConfig>::NodeId, <C as RaftTypeConfig>::Node>,
);

/// What the application's log entries do: the one piece of a replicated state machine
/// that is the application's own.
pub trait Apply<C: RaftTypeConfig>: Send + Sync + 'static {
    /// Applies one entry's data to the state machine through `state` and returns the
    /// response openraft hands to the client that proposed it.
    ///
    /// `state` sees the writes of the entries applied before this one in the same call;
    /// all of them commit atomically with the new last-applied log id. Must be
    /// deterministic: every replica applies the same entries to the same state.
    ///
    /// Return `Err` only for a storage failure: openraft stops the node on it. An
    /// application-level refusal belongs in the response.
    fn apply(
        &self,
        log_id: &LogId<C::NodeId>,
        data: &C::D,
        state: &mut StateTxn<'_>,
    ) -> strata::Result<C::R>;
}

/// The state machine, as [`Apply::apply`] sees it while entries are applied: reads see
/// the entries applied so far in this call; writes commit with them.
///
/// Keys are the application's own: the store keeps them apart from the log's.
pub struct StateTxn<'a> {
    txn: &'a mut Transaction,
}

impl StateTxn<'_> {
    /// The value of `key`, including this call's writes.
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> strata::Result<Option<Bytes>> {
        self.txn.get(state_key(key.as_ref()))
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.txn.put(state_key(key.as_ref()), value);
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.txn.delete(state_key(key.as_ref()));
    }

    /// The keys starting with `prefix`, in order, including this call's writes.
    pub fn prefix(
        &mut self,
        prefix: &[u8],
    ) -> impl Iterator<Item = strata::Result<(Bytes, Bytes)>> + use<> {
        self.txn
            .prefix(state_key(prefix))
            .map(|item| item.map(|(k, v)| (k.slice(1..), v)))
    }
}

/// Reads of the state machine's newest state, for the application's queries (a
/// linearizable read asks openraft first, e.g. `Raft::ensure_linearizable`, then reads
/// here).
#[derive(Clone)]
pub struct StateReader {
    db: Db,
}

impl StateReader {
    /// The value of `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> strata::Result<Option<Bytes>> {
        self.db.get(state_key(key.as_ref()))
    }

    /// The keys starting with `prefix`, in order.
    pub fn prefix(
        &self,
        prefix: &[u8],
    ) -> impl Iterator<Item = strata::Result<(Bytes, Bytes)>> + use<> {
        self.db
            .prefix(state_key(prefix))
            .map(|item| item.map(|(k, v)| (k.slice(1..), v)))
    }
}

/// The current snapshot: its metadata and the Strata snapshot pinning the state it was
/// taken at. Its stream is written from that state when asked for, so holding it costs
/// no copy of the data (compaction keeps the versions it needs meanwhile).
struct Current<C: RaftTypeConfig> {
    meta: Meta<C>,
    view: Arc<strata::Snapshot>,
}

impl<C: RaftTypeConfig> Clone for Current<C> {
    fn clone(&self) -> Self {
        Current {
            meta: self.meta.clone(),
            view: Arc::clone(&self.view),
        }
    }
}

type Shared<C> = Arc<Mutex<Option<Current<C>>>>;

/// The state machine ([`RaftStateMachine`]). Made by [`crate::open`].
///
/// Entries applied in one call commit in one atomic batch with the new last-applied
/// log id and membership; installing a snapshot replaces the state machine in one
/// atomic batch.
pub struct StateMachine<C: RaftTypeConfig, A> {
    db: Db,
    app: Arc<A>,
    current: Shared<C>,
}

/// Builds snapshots of the state machine ([`RaftSnapshotBuilder`]); openraft runs it
/// beside the state machine, which goes on applying meanwhile.
pub struct SnapshotBuilder<C: RaftTypeConfig> {
    db: Db,
    current: Shared<C>,
    _config: PhantomData<fn() -> C>,
}

fn read_applied<C: RaftTypeConfig>(
    value: strata::Result<Option<Bytes>>,
) -> Result<Applied<C>, StorageError<C::NodeId>> {
    match value.map_err(|e| StorageIOError::read_state_machine(any(&e)))? {
        Some(bytes) => Ok(decode(APPLIED, &bytes).map_err(StorageIOError::read_state_machine)?),
        None => Ok((None, StoredMembership::default())),
    }
}

/// Pins the state machine's current state as the current snapshot (unless a newer one
/// is already current) and returns it.
fn pin_current<C: RaftTypeConfig>(
    db: &Db,
    current: &Shared<C>,
) -> Result<Current<C>, StorageError<C::NodeId>> {
    let view = db.snapshot();
    let (last_log_id, last_membership) = read_applied::<C>(view.get(APPLIED))?;
    // The Strata sequence number tells apart two snapshots of one log id (taken
    // before and after an install of the same id, say).
    let snapshot_id = match &last_log_id {
        Some(id) => format!("{}-{}-{}", id.leader_id, id.index, view.sequence()),
        None => format!("none-{}", view.sequence()),
    };
    let built = Current {
        meta: SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        },
        view: Arc::new(view),
    };
    let marker = encode(&built.meta).map_err(|e| StorageIOError::write_snapshot(None, e))?;
    let mut guard = current.lock().unwrap_or_else(PoisonError::into_inner);
    // A snapshot installed while this one was being taken is newer: keep it.
    if let Some(newer) = guard
        .as_ref()
        .filter(|c| c.meta.last_log_id > built.meta.last_log_id)
    {
        return Ok(newer.clone());
    }
    // Marks that a snapshot exists, so that after a restart one is built again on
    // demand (see `get_current_snapshot`). Not synced: it is written after the
    // applies it covers, and Strata recovers a prefix of its writes.
    let mut batch = WriteBatch::new();
    batch.put(SNAPSHOT, marker);
    db.write(batch, WriteOptions { sync: false })
        .map_err(|e| StorageIOError::write_snapshot(None, any(&e)))?;
    *guard = Some(built.clone());
    Ok(built)
}

/// The snapshot stream of `current` (format: `crate::snapshot`).
fn stream<C>(current: &Current<C>) -> Result<Snapshot<C>, StorageError<C::NodeId>>
where
    C: RaftTypeConfig<SnapshotData = Cursor<Vec<u8>>>,
{
    let signature = Some(current.meta.signature());
    let err = |e: AnyError| StorageIOError::read_snapshot(signature.clone(), e);
    let mut writer = Writer::new(&encode(&current.meta).map_err(err)?).map_err(err)?;
    for item in current.view.prefix([STATE]) {
        let (key, value) = item.map_err(|e| err(any(&e)))?;
        writer
            .record(key.get(1..).unwrap_or_default(), &value)
            .map_err(err)?;
    }
    Ok(Snapshot {
        meta: current.meta.clone(),
        snapshot: Box::new(Cursor::new(writer.finish())),
    })
}

impl<C: StrataConfig, A: Apply<C>> StateMachine<C, A> {
    pub(crate) fn new(db: Db, app: A) -> Self {
        StateMachine {
            db,
            app: Arc::new(app),
            current: Arc::new(Mutex::new(None)),
        }
    }

    /// A reader of the state machine's keys, for the application's queries.
    pub fn reader(&self) -> StateReader {
        StateReader {
            db: self.db.clone(),
        }
    }
}

impl<C: RaftTypeConfig<SnapshotData = Cursor<Vec<u8>>>> RaftSnapshotBuilder<C>
    for SnapshotBuilder<C>
{
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, StorageError<C::NodeId>> {
        let current = pin_current(&self.db, &self.current)?;
        stream(&current)
    }
}

impl<C: StrataConfig, A: Apply<C>> RaftStateMachine<C> for StateMachine<C, A> {
    type SnapshotBuilder = SnapshotBuilder<C>;

    async fn applied_state(&mut self) -> Result<Applied<C>, StorageError<C::NodeId>> {
        read_applied::<C>(self.db.get(APPLIED))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<C::R>, StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut txn = self.db.transaction();
        let (mut last_applied, mut membership) = read_applied::<C>(txn.get(APPLIED))?;
        let mut responses = Vec::new();
        for entry in entries {
            let response = match &entry.payload {
                EntryPayload::Blank => C::R::default(),
                EntryPayload::Normal(data) => self
                    .app
                    .apply(&entry.log_id, data, &mut StateTxn { txn: &mut txn })
                    .map_err(|e| StorageIOError::apply(entry.log_id.clone(), any(&e)))?,
                EntryPayload::Membership(m) => {
                    membership = StoredMembership::new(Some(entry.log_id.clone()), m.clone());
                    C::R::default()
                }
            };
            last_applied = Some(entry.log_id);
            responses.push(response);
        }
        let applied =
            encode(&(last_applied, membership)).map_err(StorageIOError::write_state_machine)?;
        txn.put(APPLIED, applied);
        // Not synced: the entries are in the log, fsynced before openraft committed
        // them, and Strata recovers a prefix of its writes; a state machine that lost
        // its newest applies in a power loss is behind, never ahead or torn, and
        // openraft applies the rest again from the log.
        txn.commit_with(WriteOptions { sync: false })
            .map_err(|e| StorageIOError::write_state_machine(any(&e)))?;
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            current: Arc::clone(&self.current),
            _config: PhantomData,
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<C::NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta<C>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        let signature = Some(meta.signature());
        let err = |e: AnyError| StorageIOError::write_snapshot(signature.clone(), e);
        let data = snapshot.into_inner();
        let parsed = parse(&data).map_err(err)?;
        let embedded: Meta<C> = decode(b"snapshot stream metadata", parsed.meta).map_err(err)?;
        if embedded.last_log_id != meta.last_log_id
            || embedded.last_membership != meta.last_membership
        {
            return Err(err(AnyError::error(format!(
                "the snapshot stream holds the state at {embedded}, not at {meta} as its metadata says"
            )))
            .into());
        }
        // One batch: every old key deleted (one range delete over the state-machine
        // keys, which the snapshot's puts after it override), every snapshot key
        // written, and the new last-applied state, so a crash leaves the old state
        // machine or the new one, never a mix.
        let mut batch = WriteBatch::new();
        batch.delete_range([STATE], [STATE + 1]);
        for (key, value) in parsed.records {
            batch.put(state_key(key), value);
        }
        let applied: Applied<C> = (meta.last_log_id.clone(), meta.last_membership.clone());
        batch.put(APPLIED, encode(&applied).map_err(err)?);
        batch.put(SNAPSHOT, encode(meta).map_err(err)?);
        // Synced: openraft purges the log up to the snapshot next, and nothing else
        // would hold these entries' effects.
        self.db
            .write(batch, WriteOptions { sync: true })
            .map_err(|e| err(any(&e)))?;
        // Only this state machine writes its keys, so nothing can slip in between the
        // write and the pin.
        let installed = Current {
            meta: meta.clone(),
            view: Arc::new(self.db.snapshot()),
        };
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(installed);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<C>>, StorageError<C::NodeId>> {
        let held = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let current = match held {
            Some(current) => current,
            None => {
                // After a restart: a snapshot existed (openraft may have purged the log
                // behind it), so build one now. The state machine holds at least
                // everything that snapshot did, so one of its present state serves.
                let marked = self
                    .db
                    .get(SNAPSHOT)
                    .map_err(|e| StorageIOError::read_snapshot(None, any(&e)))?;
                if marked.is_none() {
                    return Ok(None);
                }
                pin_current(&self.db, &self.current)?
            }
        };
        stream(&current).map(Some)
    }
}
