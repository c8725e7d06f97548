//! The layout: the log, its metadata and the state machine in keyspaces of their own.
//!
//! | keyspace | keys | holds |
//! | --- | --- | --- |
//! | `raft-log` | index (8 bytes, big-endian, so key order is index order) | the log entry at that index |
//! | `raft-meta` | `format` | the layout version, [`FORMAT`] |
//! | `raft-meta` | `vote`, `committed`, `purged` | the log store's vote, committed log id, last purged log id |
//! | `raft-sm` | `m:applied` | the state machine's last applied log id and membership |
//! | `raft-sm` | `m:snapshot` | the metadata of the last snapshot built or installed |
//! | `raft-sm` | `s` + application key | the state machine's data |
//!
//! The log's keyspace holds nothing else, so a purge's range delete covers whole
//! tables, which compaction then drops without reading them. The state machine's
//! keyspace holds its data and its last applied log id together, so a checkpoint of
//! that keyspace alone is a snapshot (`crate::state`); `apply` writes it in one
//! transaction.

use openraft::{AnyError, NodeId, StorageError, StorageIOError};
use strata::{Db, Keyspace, WriteBatch, WriteOptions};

/// The keyspace of the log entries.
pub(crate) const LOG_KEYSPACE: &str = "raft-log";
/// The keyspace of the log store's metadata and the layout version.
pub(crate) const META_KEYSPACE: &str = "raft-meta";
/// The keyspace of the state machine.
pub(crate) const SM_KEYSPACE: &str = "raft-sm";

/// First byte of every state-machine key.
pub(crate) const STATE: u8 = b's';

pub(crate) const FORMAT_KEY: &[u8] = b"format";
pub(crate) const VOTE: &[u8] = b"vote";
pub(crate) const COMMITTED: &[u8] = b"committed";
pub(crate) const PURGED: &[u8] = b"purged";
pub(crate) const APPLIED: &[u8] = b"m:applied";
pub(crate) const SNAPSHOT: &[u8] = b"m:snapshot";

/// Where layout 1 kept its version (in the default keyspace, before keyspaces).
const FORMAT_KEY_V1: &[u8] = b"m:format";

/// The layout version written to `format` in [`META_KEYSPACE`]: bump it when the keys
/// or their encodings change, so an older database is refused instead of misread.
/// Layout 1 kept everything in the default keyspace under key prefixes; layout 2 kept
/// the state machine there.
pub(crate) const FORMAT: &[u8] = b"strata-raft 3";

/// The key of the log entry at `index`.
pub(crate) fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The state-machine key of the application's `key`.
pub(crate) fn state_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(STATE);
    k.extend_from_slice(key);
    k
}

/// The keyspaces of one Raft node's storage.
pub(crate) struct Keyspaces {
    pub log: Keyspace,
    pub meta: Keyspace,
    pub sm: Keyspace,
}

/// Marks a new database with [`FORMAT`] (making its keyspaces) and returns them;
/// refuses a database marked otherwise, or one holding keys without a mark (not made by
/// this crate).
pub(crate) fn check_format<NID: NodeId>(db: &Db) -> Result<Keyspaces, StorageError<NID>> {
    let read_err = |e: strata::Error| StorageIOError::read(crate::any(&e));
    let write_err = |e: strata::Error| StorageIOError::write(crate::any(&e));
    let refuse =
        |why: String| -> StorageError<NID> { StorageIOError::read(AnyError::error(why)).into() };
    let unsupported = |found: &[u8]| {
        refuse(format!(
            "the database holds Raft storage of layout {:?}; this version reads {:?}",
            String::from_utf8_lossy(found),
            String::from_utf8_lossy(FORMAT),
        ))
    };
    if db.list_keyspaces().iter().any(|k| k == META_KEYSPACE) {
        let meta = db.keyspace(META_KEYSPACE).map_err(read_err)?;
        return match meta.get(FORMAT_KEY).map_err(read_err)? {
            Some(found) if found.as_ref() == FORMAT => Ok(Keyspaces {
                log: db.keyspace(LOG_KEYSPACE).map_err(read_err)?,
                meta,
                sm: db.keyspace(SM_KEYSPACE).map_err(read_err)?,
            }),
            Some(found) => Err(unsupported(&found)),
            None => Err(refuse(format!(
                "the database has a {META_KEYSPACE:?} keyspace without a layout version: not made by strata-raft"
            ))),
        };
    }
    // Nothing is made before the checks: a database that is refused is left as it was.
    if let Some(found) = db.get(FORMAT_KEY_V1).map_err(read_err)? {
        return Err(unsupported(&found));
    }
    if let Some(first) = db.iter().next() {
        let (key, _) = first.map_err(read_err)?;
        return Err(refuse(format!(
            "the database is not empty (it holds {key:?}) and was not made by strata-raft: \
             give the Raft node a database of its own"
        )));
    }
    let log = db.keyspace(LOG_KEYSPACE).map_err(write_err)?;
    let sm = db.keyspace(SM_KEYSPACE).map_err(write_err)?;
    let meta = db.keyspace(META_KEYSPACE).map_err(write_err)?;
    let mut batch = WriteBatch::new();
    batch.put_in(&meta, FORMAT_KEY, FORMAT);
    db.write(batch, WriteOptions { sync: true })
        .map_err(write_err)?;
    Ok(Keyspaces { log, meta, sm })
}
