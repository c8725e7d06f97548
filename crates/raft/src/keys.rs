//! The key layout: three key ranges in one database, told apart by their first byte.
//!
//! Strata has no keyspaces yet, so the log, the metadata and the state machine share
//! one ordered key space:
//!
//! | keys | holds |
//! | --- | --- |
//! | `l` + index (8 bytes, big-endian) | the log entry at that index (big-endian, so key order is index order) |
//! | `m:format` | the layout version, [`FORMAT`] |
//! | `m:vote`, `m:committed`, `m:purged` | the log store's vote, committed log id, last purged log id |
//! | `m:applied` | the state machine's last applied log id and membership |
//! | `m:snapshot` | the metadata of the last snapshot built or installed |
//! | `s` + application key | the state machine's data |

use openraft::{AnyError, NodeId, StorageError, StorageIOError};
use strata::{Db, WriteBatch, WriteOptions};

/// First byte of every log key.
pub(crate) const LOG: u8 = b'l';
/// First byte of every state-machine key.
pub(crate) const STATE: u8 = b's';

pub(crate) const FORMAT_KEY: &[u8] = b"m:format";
pub(crate) const VOTE: &[u8] = b"m:vote";
pub(crate) const COMMITTED: &[u8] = b"m:committed";
pub(crate) const PURGED: &[u8] = b"m:purged";
pub(crate) const APPLIED: &[u8] = b"m:applied";
pub(crate) const SNAPSHOT: &[u8] = b"m:snapshot";

/// The layout version written to `m:format`: bump it when the keys or their encodings
/// change, so an older database is refused instead of misread.
pub(crate) const FORMAT: &[u8] = b"strata-raft 1";

/// The key of the log entry at `index`.
pub(crate) fn log_key(index: u64) -> [u8; 9] {
    let mut key = [LOG; 9];
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The state-machine key of the application's `key`.
pub(crate) fn state_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(STATE);
    k.extend_from_slice(key);
    k
}

/// Marks a new database with [`FORMAT`]; refuses one marked otherwise, or one holding
/// keys without a mark (not made by this crate).
pub(crate) fn check_format<NID: NodeId>(db: &Db) -> Result<(), StorageError<NID>> {
    let read_err = |e: strata::Error| StorageIOError::read(crate::any(&e));
    match db.get(FORMAT_KEY).map_err(read_err)? {
        Some(found) if found.as_ref() == FORMAT => Ok(()),
        Some(found) => Err(StorageIOError::read(AnyError::error(format!(
            "the database holds Raft storage of layout {:?}; this version reads {:?}",
            String::from_utf8_lossy(&found),
            String::from_utf8_lossy(FORMAT),
        )))
        .into()),
        None => {
            if let Some(first) = db.iter().next() {
                let (key, _) = first.map_err(read_err)?;
                return Err(StorageIOError::read(AnyError::error(format!(
                    "the database is not empty (it holds {key:?}) and was not made by strata-raft: \
                     give the Raft node a database of its own"
                )))
                .into());
            }
            let mut batch = WriteBatch::new();
            batch.put(FORMAT_KEY, FORMAT);
            db.write(batch, WriteOptions { sync: true })
                .map_err(|e| StorageIOError::write(crate::any(&e)))?;
            Ok(())
        }
    }
}
