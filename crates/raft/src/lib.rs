//! [openraft](https://docs.rs/openraft/0.9) storage on Strata: a Raft log store
//! ([`LogStore`], with its [`LogReader`]) and a state machine ([`StateMachine`], with
//! its [`SnapshotBuilder`]) kept in one Strata database.
//!
//! openraft runs the consensus protocol; it asks its user for these two stores. This
//! crate implements them (openraft 0.9's `storage-v2` traits) for any type config
//! whose entries are [`openraft::Entry`], whose application data and responses
//! serialize with serde, and whose snapshot data is `Cursor<Vec<u8>>` (openraft's
//! default). The application supplies only what its entries do, through [`Apply`].
//!
//! ```
//! use std::io::Cursor;
//! use openraft::LogId;
//! use serde::{Deserialize, Serialize};
//! use strata_raft::{Apply, StateTxn};
//!
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! pub struct Set { key: String, value: String }
//!
//! openraft::declare_raft_types!(pub Config: D = Set, R = ());
//!
//! struct Kv;
//! impl Apply<Config> for Kv {
//!     fn apply(&self, _: &LogId<u64>, set: &Set, state: &mut StateTxn<'_>) -> strata::Result<()> {
//!         state.put(&set.key, &set.value);
//!         Ok(())
//!     }
//! }
//!
//! let db = strata::DbBuilder::in_memory().open()?;
//! let (log_store, state_machine) = strata_raft::open::<Config, _>(db, Kv)?;
//! // Hand both to `openraft::Raft::new(node_id, config, network, log_store, state_machine)`.
//! # let _ = (log_store, state_machine);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `docs/raft.md` in the repository says what is fsynced when, the snapshot format,
//! and the limits of this first version.

// openraft's traits return its `StorageError` (185 bytes and more): the helpers that
// build one return it too, rather than a smaller error converted at every call.
#![allow(clippy::result_large_err)]

mod codec;
mod keys;
mod log;
mod snapshot;
mod state;

use std::io::Cursor;

use openraft::{AnyError, Entry, RaftTypeConfig, StorageError};
use strata::Db;

pub use log::{LogReader, LogStore};
pub use state::{Apply, SnapshotBuilder, StateMachine, StateReader, StateTxn};

/// The type configs this crate stores: openraft's own [`Entry`] (its payload is
/// serialized with serde, so the application's data must be serde too: openraft's
/// `serde` feature, enabled by this crate, requires it) and snapshots as an in-memory
/// byte stream (openraft's default `SnapshotData`). Implemented for every such config.
pub trait StrataConfig:
    RaftTypeConfig<Entry = Entry<Self>, SnapshotData = Cursor<Vec<u8>>, R: Default>
{
}

impl<C> StrataConfig for C where
    C: RaftTypeConfig<Entry = Entry<C>, SnapshotData = Cursor<Vec<u8>>, R: Default>
{
}

/// The two stores of one Raft node, as [`open`] returns them.
pub type Stores<C, A> = (LogStore<C>, StateMachine<C, A>);

/// Opens the log store and the state machine on `db`, which they share: one write-ahead
/// log orders every write of both (see `docs/raft.md`, "Durability").
///
/// `db` must be dedicated to this Raft node: the stores own every key in it. A new
/// database is marked with the layout version; a database marked with another version
/// (or holding no mark but other keys) is refused rather than misread.
///
/// Starts one thread, which fsyncs appended log entries before openraft is told they
/// are durable; it ends when the [`LogStore`] is dropped.
pub fn open<C, A>(db: Db, app: A) -> Result<Stores<C, A>, StorageError<C::NodeId>>
where
    C: StrataConfig,
    A: Apply<C>,
{
    let keyspaces = keys::check_format(&db)?;
    let log = LogStore::new(db.clone(), keyspaces.log, keyspaces.meta)?;
    let state = StateMachine::new(db, keyspaces.sm, app);
    Ok((log, state))
}

/// The snapshot stream's decoder, for the fuzz target (`fuzz/fuzz_targets/
/// raft_snapshot_stream.rs`); not part of the crate's supported API.
#[doc(hidden)]
pub mod fuzzing {
    /// Decodes `data` as a snapshot stream. Whatever decodes must re-encode to a stream
    /// that decodes to the same metadata and files (panics otherwise); returns whether
    /// `data` decoded.
    pub fn snapshot_stream_round_trip(data: &[u8]) -> bool {
        let Ok(parsed) = crate::snapshot::parse(data) else {
            return false;
        };
        let mut writer = crate::snapshot::Writer::new(parsed.meta).expect("decoded metadata fits");
        for (name, content) in &parsed.files {
            writer
                .file(name, content)
                .expect("a decoded name is a plain file name");
        }
        let again = writer.finish();
        let reparsed = crate::snapshot::parse(&again).expect("a re-encoded stream decodes");
        assert_eq!(reparsed.meta, parsed.meta, "metadata round trip");
        assert_eq!(reparsed.files, parsed.files, "files round trip");
        true
    }
}

/// An error of the engine, as openraft's errors carry it (`AnyError` keeps the message
/// and the chain of sources; openraft stops the node on any storage error).
pub(crate) fn any(e: &strata::Error) -> AnyError {
    AnyError::new(e)
}
