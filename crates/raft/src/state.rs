//! The state machine, in the `raft-sm` keyspace: the application's keys under `s`, the
//! last applied log id and membership under `m:applied`; and its snapshots, each a
//! checkpoint of that keyspace kept in a directory inside the database's.

use std::io::Cursor;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, RaftTypeConfig, Snapshot,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use strata::{Bytes, Db, FileSystem, Keyspace, Transaction, WriteBatch, WriteOptions};

use crate::codec::{decode, encode};
use crate::keys::{APPLIED, SNAPSHOT, state_key};
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
    sm: &'a Keyspace,
}

impl StateTxn<'_> {
    /// The value of `key`, including this call's writes.
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> strata::Result<Option<Bytes>> {
        self.txn.get_in(self.sm, state_key(key.as_ref()))
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.txn.put_in(self.sm, state_key(key.as_ref()), value);
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.txn.delete_in(self.sm, state_key(key.as_ref()));
    }

    /// The keys starting with `prefix`, in order, including this call's writes.
    pub fn prefix(
        &mut self,
        prefix: &[u8],
    ) -> impl Iterator<Item = strata::Result<(Bytes, Bytes)>> + use<> {
        self.txn
            .prefix_in(self.sm, state_key(prefix))
            .map(|item| item.map(|(k, v)| (k.slice(1..), v)))
    }
}

/// Reads of the state machine's newest state, for the application's queries (a
/// linearizable read asks openraft first, e.g. `Raft::ensure_linearizable`, then reads
/// here).
#[derive(Clone)]
pub struct StateReader {
    sm: Keyspace,
}

impl StateReader {
    /// The value of `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> strata::Result<Option<Bytes>> {
        self.sm.get(state_key(key.as_ref()))
    }

    /// The keys starting with `prefix`, in order.
    pub fn prefix(
        &self,
        prefix: &[u8],
    ) -> impl Iterator<Item = strata::Result<(Bytes, Bytes)>> + use<> {
        self.sm
            .prefix(state_key(prefix))
            .map(|item| item.map(|(k, v)| (k.slice(1..), v)))
    }
}

/// The directories, inside the database's, that hold the current snapshot's checkpoint
/// and the next one being built or received, in turn.
const SLOTS: [&str; 2] = ["raft-snapshot-a", "raft-snapshot-b"];

/// The current snapshot: its metadata and the slot holding its checkpoint. The files
/// are read when its stream is asked for; holding it costs the hard links only.
struct Current<C: RaftTypeConfig> {
    meta: Meta<C>,
    slot: usize,
}

impl<C: RaftTypeConfig> Clone for Current<C> {
    fn clone(&self) -> Self {
        Current {
            meta: self.meta.clone(),
            slot: self.slot,
        }
    }
}

/// The snapshot files, shared by the state machine and its builders: locked across a
/// build, an install and the reading of a stream, so one slot is written while the
/// other one is read, never both at once.
struct Snapshots<C: RaftTypeConfig> {
    db: Db,
    current: Option<Current<C>>,
}

type Shared<C> = Arc<Mutex<Snapshots<C>>>;

/// The state machine ([`RaftStateMachine`]). Made by [`crate::open`].
///
/// Entries applied in one call commit in one atomic batch with the new last-applied
/// log id and membership; installing a snapshot replaces the state machine in one
/// atomic batch.
pub struct StateMachine<C: RaftTypeConfig, A> {
    db: Db,
    sm: Keyspace,
    app: Arc<A>,
    snapshots: Shared<C>,
}

/// Builds snapshots of the state machine ([`RaftSnapshotBuilder`]); openraft runs it
/// beside the state machine, which goes on applying meanwhile.
pub struct SnapshotBuilder<C: RaftTypeConfig> {
    sm: Keyspace,
    snapshots: Shared<C>,
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

fn lock<C: RaftTypeConfig>(shared: &Shared<C>) -> MutexGuard<'_, Snapshots<C>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<C: RaftTypeConfig> Snapshots<C> {
    fn slot_dir(&self, slot: usize) -> PathBuf {
        self.db.path().join(SLOTS[slot])
    }

    /// The slot not holding the current snapshot, emptied.
    fn free_slot(&self) -> strata::Result<usize> {
        let slot = self.current.as_ref().map_or(0, |c| 1 - c.slot);
        clear(&*self.db.file_system(), &self.slot_dir(slot))?;
        Ok(slot)
    }

    /// Makes the snapshot in `slot` current and empties the other slot.
    fn switch_to(&mut self, built: Current<C>) -> strata::Result<()> {
        let other = 1 - built.slot;
        self.current = Some(built);
        clear(&*self.db.file_system(), &self.slot_dir(other))
    }

    /// Opens the checkpoint in `slot` read-only.
    fn open_slot(&self, slot: usize) -> strata::Result<Db> {
        Db::builder(self.slot_dir(slot))
            .file_system(self.db.file_system())
            .read_only()
            .open()
    }
}

/// Removes every file in `dir`, if it exists (its files are a checkpoint's: no
/// subdirectories).
fn clear(fs: &dyn FileSystem, dir: &Path) -> strata::Result<()> {
    if !fs.exists(dir)? {
        return Ok(());
    }
    for name in fs.list(dir)? {
        fs.remove(&dir.join(name))?;
    }
    fs.sync_dir(dir)
}

/// Checkpoints the state machine's keyspace into the free slot and makes it the
/// current snapshot (unless one installed meanwhile is newer); returns the current one.
fn build_current<C: RaftTypeConfig>(
    sm: &Keyspace,
    snapshots: &mut Snapshots<C>,
) -> Result<Current<C>, StorageError<C::NodeId>> {
    let io = |e: strata::Error| StorageIOError::write_snapshot(None, any(&e));
    let slot = snapshots.free_slot().map_err(io)?;
    let info = sm.checkpoint(snapshots.slot_dir(slot)).map_err(io)?;
    // The checkpoint holds the data and the last applied log id of one cut (`apply`
    // writes both in one batch): the metadata is read from the checkpoint itself.
    let checkpoint = snapshots.open_slot(slot).map_err(io)?;
    let (last_log_id, last_membership) = read_applied::<C>(checkpoint.get(APPLIED))?;
    checkpoint.close().map_err(io)?;
    // The Strata sequence number tells apart two snapshots of one log id (taken
    // before and after an install of the same id, say).
    let snapshot_id = match &last_log_id {
        Some(id) => format!("{}-{}-{}", id.leader_id, id.index, info.sequence),
        None => format!("none-{}", info.sequence),
    };
    let built = Current {
        meta: SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        },
        slot,
    };
    // A snapshot installed while this one was being taken is newer: keep it.
    if let Some(newer) = snapshots
        .current
        .as_ref()
        .filter(|c| c.meta.last_log_id > built.meta.last_log_id)
    {
        let newer = newer.clone();
        clear(&*snapshots.db.file_system(), &snapshots.slot_dir(slot)).map_err(io)?;
        return Ok(newer);
    }
    // Marks that a snapshot exists, so that after a restart one is built again on
    // demand (see `get_current_snapshot`). Not synced: it is written after the
    // applies it covers, and Strata recovers a prefix of its writes.
    let marker = encode(&built.meta).map_err(|e| StorageIOError::write_snapshot(None, e))?;
    sm.put(SNAPSHOT, marker).map_err(io)?;
    snapshots.switch_to(built.clone()).map_err(io)?;
    Ok(built)
}

/// The snapshot stream of `current` (format: `crate::snapshot`): the files of its
/// checkpoint, read under the lock so that no build or install empties the slot
/// meanwhile.
fn stream<C>(
    snapshots: &Snapshots<C>,
    current: &Current<C>,
) -> Result<Snapshot<C>, StorageError<C::NodeId>>
where
    C: RaftTypeConfig<SnapshotData = Cursor<Vec<u8>>>,
{
    let signature = Some(current.meta.signature());
    let err = |e: AnyError| StorageIOError::read_snapshot(signature.clone(), e);
    let io = |e: strata::Error| StorageIOError::read_snapshot(signature.clone(), any(&e));
    let fs = snapshots.db.file_system();
    let dir = snapshots.slot_dir(current.slot);
    let mut names = fs.list(&dir).map_err(io)?;
    names.sort();
    let mut writer = Writer::new(&encode(&current.meta).map_err(err)?).map_err(err)?;
    for name in names {
        let file = fs.open(&dir.join(&name)).map_err(io)?;
        let len = usize::try_from(file.len())
            .map_err(|_| err(AnyError::error(format!("{name} is larger than memory"))))?;
        let mut content = vec![0; len];
        file.read_exact_at(0, &mut content).map_err(io)?;
        writer.file(&name, &content).map_err(err)?;
    }
    Ok(Snapshot {
        meta: current.meta.clone(),
        snapshot: Box::new(Cursor::new(writer.finish())),
    })
}

impl<C: StrataConfig, A: Apply<C>> StateMachine<C, A> {
    pub(crate) fn new(db: Db, sm: Keyspace, app: A) -> Self {
        StateMachine {
            db: db.clone(),
            sm,
            app: Arc::new(app),
            snapshots: Arc::new(Mutex::new(Snapshots { db, current: None })),
        }
    }

    /// A reader of the state machine's keys, for the application's queries.
    pub fn reader(&self) -> StateReader {
        StateReader {
            sm: self.sm.clone(),
        }
    }
}

impl<C: RaftTypeConfig<SnapshotData = Cursor<Vec<u8>>>> RaftSnapshotBuilder<C>
    for SnapshotBuilder<C>
{
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, StorageError<C::NodeId>> {
        let mut snapshots = lock(&self.snapshots);
        let current = build_current(&self.sm, &mut snapshots)?;
        stream(&snapshots, &current)
    }
}

impl<C: StrataConfig, A: Apply<C>> RaftStateMachine<C> for StateMachine<C, A> {
    type SnapshotBuilder = SnapshotBuilder<C>;

    async fn applied_state(&mut self) -> Result<Applied<C>, StorageError<C::NodeId>> {
        read_applied::<C>(self.sm.get(APPLIED))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<C::R>, StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut txn = self.db.transaction();
        let (mut last_applied, mut membership) = read_applied::<C>(txn.get_in(&self.sm, APPLIED))?;
        let mut responses = Vec::new();
        for entry in entries {
            let response = match &entry.payload {
                EntryPayload::Blank => C::R::default(),
                EntryPayload::Normal(data) => self
                    .app
                    .apply(
                        &entry.log_id,
                        data,
                        &mut StateTxn {
                            txn: &mut txn,
                            sm: &self.sm,
                        },
                    )
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
        txn.put_in(&self.sm, APPLIED, applied);
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
            sm: self.sm.clone(),
            snapshots: Arc::clone(&self.snapshots),
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
        let io = |e: strata::Error| StorageIOError::write_snapshot(signature.clone(), any(&e));
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
        let mut snapshots = lock(&self.snapshots);
        // The checkpoint's files, written into the free slot and synced: they are the
        // current snapshot once installed, served to the next follower that needs one.
        let slot = snapshots.free_slot().map_err(io)?;
        let dir = snapshots.slot_dir(slot);
        let fs = self.db.file_system();
        fs.create_dir_all(&dir).map_err(io)?;
        for (name, content) in &parsed.files {
            let mut file = fs.create(&dir.join(name)).map_err(io)?;
            file.append(content).map_err(io)?;
            file.sync().map_err(io)?;
        }
        fs.sync_dir(&dir).map_err(io)?;
        // Opening it checks its manifest; reading it checks every block's checksum.
        let checkpoint = snapshots.open_slot(slot).map_err(io)?;
        let (held_id, held_membership) = read_applied::<C>(checkpoint.get(APPLIED))?;
        if held_id != meta.last_log_id || held_membership != meta.last_membership {
            return Err(err(AnyError::error(format!(
                "the snapshot's checkpoint holds the state applied up to {held_id:?}, not {meta}"
            )))
            .into());
        }
        // One batch: every old key deleted (one range delete over the whole keyspace,
        // which the snapshot's puts after it override), every key of the checkpoint
        // written with its last applied log id, so a crash leaves the old state machine
        // or the new one, never a mix.
        let mut batch = WriteBatch::new();
        batch.delete_range_from_in(&self.sm, b"");
        for item in checkpoint.iter() {
            let (key, value) = item.map_err(io)?;
            if key.as_ref() != SNAPSHOT {
                batch.put_in(&self.sm, key, value);
            }
        }
        checkpoint.close().map_err(io)?;
        batch.put_in(&self.sm, SNAPSHOT, encode(meta).map_err(err)?);
        // Synced: openraft purges the log up to the snapshot next, and nothing else
        // would hold these entries' effects.
        self.db
            .write(batch, WriteOptions { sync: true })
            .map_err(io)?;
        snapshots
            .switch_to(Current {
                meta: meta.clone(),
                slot,
            })
            .map_err(io)?;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<C>>, StorageError<C::NodeId>> {
        let mut snapshots = lock(&self.snapshots);
        let current = match snapshots.current.clone() {
            Some(current) => current,
            None => {
                // After a restart: a snapshot existed (openraft may have purged the log
                // behind it), so build one now. The state machine holds at least
                // everything that snapshot did, so one of its present state serves.
                let marked = self
                    .sm
                    .get(SNAPSHOT)
                    .map_err(|e| StorageIOError::read_snapshot(None, any(&e)))?;
                if marked.is_none() {
                    return Ok(None);
                }
                build_current(&self.sm, &mut snapshots)?
            }
        };
        stream(&snapshots, &current).map(Some)
    }
}
