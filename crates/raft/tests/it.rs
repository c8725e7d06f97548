//! openraft's own storage test suite against the Strata stores, and the properties the
//! suite does not reach: applying application entries, snapshots moving state between
//! state machines, and durability across a simulated power loss.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftSnapshotBuilder, StorageError,
    Vote,
};
use serde::{Deserialize, Serialize};
use strata::{Db, DbBuilder, FileSystem};
use strata_faultfs::{CrashOptions, FaultFs};
use strata_raft::{Apply, LogStore, StateMachine, StateTxn};

/// Sets a key; the response is the value it replaced.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Set {
    key: String,
    value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Replaced(Option<String>);

openraft::declare_raft_types!(Config: D = Set, R = Replaced);

struct Kv;

impl Apply<Config> for Kv {
    fn apply(
        &self,
        _: &LogId<u64>,
        set: &Set,
        state: &mut StateTxn<'_>,
    ) -> strata::Result<Replaced> {
        let old = state.get(&set.key)?;
        state.put(&set.key, &set.value);
        Ok(Replaced(
            old.map(|v| String::from_utf8_lossy(&v).into_owned()),
        ))
    }
}

type Stores = (LogStore<Config>, StateMachine<Config, Kv>);

/// A fresh in-memory database per store, as the suite asks for.
struct InMemory;

impl StoreBuilder<Config, LogStore<Config>, StateMachine<Config, Kv>> for InMemory {
    async fn build(
        &self,
    ) -> Result<((), LogStore<Config>, StateMachine<Config, Kv>), StorageError<u64>> {
        let db = DbBuilder::in_memory()
            .open()
            .map_err(|e| openraft::StorageIOError::write(openraft::AnyError::new(&e)))?;
        let (log, sm) = strata_raft::open(db, Kv)?;
        Ok(((), log, sm))
    }
}

/// openraft's acceptance test for storage implementations (every test of
/// `Suite::test_store`, each on fresh stores).
#[test]
fn openraft_storage_suite() {
    Suite::test_all(InMemory).expect("openraft's storage suite passes");
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn set(index: u64, key: &str, value: &str) -> Entry<Config> {
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(Set {
            key: key.into(),
            value: value.into(),
        }),
    }
}

fn membership(index: u64, nodes: &[u64]) -> Entry<Config> {
    let nodes: BTreeSet<u64> = nodes.iter().copied().collect();
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Membership(Membership::new(vec![nodes], None)),
    }
}

fn open_on(fs: &FaultFs) -> Stores {
    let db = Db::builder(Path::new("/raft"))
        .file_system(Arc::new(fs.clone()))
        .open()
        .expect("open");
    strata_raft::open(db, Kv).expect("stores")
}

fn in_memory() -> Stores {
    strata_raft::open(DbBuilder::in_memory().open().expect("open"), Kv).expect("stores")
}

#[tokio::test(flavor = "current_thread")]
async fn apply_runs_the_application_and_records_the_applied_state() {
    let (_log, mut sm) = in_memory();
    let replies = sm
        .apply([
            set(1, "a", "1"),
            set(2, "a", "2"),
            membership(3, &[1, 2]),
            set(4, "b", "3"),
        ])
        .await
        .expect("apply");
    // Entry 2 sees entry 1's write, made in the same (not yet committed) batch.
    assert_eq!(
        replies,
        vec![
            Replaced(None),
            Replaced(Some("1".into())),
            Replaced(None),
            Replaced(None)
        ]
    );
    let (applied, members) = sm.applied_state().await.expect("applied state");
    assert_eq!(applied, Some(log_id(1, 4)));
    assert_eq!(members.log_id(), &Some(log_id(1, 3)));
    let reader = sm.reader();
    assert_eq!(reader.get("a").expect("get").as_deref(), Some(&b"2"[..]));
    let keys: Vec<_> = reader.prefix(b"").map(|kv| kv.expect("scan").0).collect();
    assert_eq!(keys, vec!["a", "b"]);
}

#[tokio::test(flavor = "current_thread")]
async fn installing_a_snapshot_replaces_the_whole_state_machine() {
    let (_l1, mut leader) = in_memory();
    let (_l2, mut follower) = in_memory();
    leader
        .apply([
            set(1, "a", "leader"),
            set(2, "b", "leader"),
            membership(3, &[1]),
        ])
        .await
        .expect("apply");
    follower
        .apply([set(1, "b", "follower"), set(2, "c", "follower")])
        .await
        .expect("apply");

    let snapshot = build(&mut leader).await;
    // Later applies on the leader are not in the snapshot already built.
    leader.apply([set(4, "d", "later")]).await.expect("apply");

    let mut receiving = follower.begin_receiving_snapshot().await.expect("begin");
    *receiving = *snapshot.snapshot;
    follower
        .install_snapshot(&snapshot.meta, receiving)
        .await
        .expect("install");

    let reader = follower.reader();
    let state: Vec<(String, String)> = reader
        .prefix(b"")
        .map(|kv| {
            let (k, v) = kv.expect("scan");
            (
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();
    assert_eq!(
        state,
        vec![
            ("a".to_string(), "leader".to_string()),
            ("b".to_string(), "leader".to_string())
        ],
        "the follower's own keys are gone, the snapshot's are there"
    );
    let (applied, members) = follower.applied_state().await.expect("applied");
    assert_eq!(applied, Some(log_id(1, 3)));
    assert_eq!(members.log_id(), &Some(log_id(1, 3)));
    let current = follower
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("the installed snapshot is current");
    assert_eq!(current.meta, snapshot.meta);
}

#[tokio::test(flavor = "current_thread")]
async fn a_damaged_snapshot_is_refused_and_changes_nothing() {
    let (_l1, mut leader) = in_memory();
    let (_l2, mut follower) = in_memory();
    leader.apply([set(1, "a", "leader")]).await.expect("apply");
    follower
        .apply([set(1, "b", "follower")])
        .await
        .expect("apply");
    let snapshot = build(&mut leader).await;
    let mut bytes = snapshot.snapshot.into_inner();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let err = follower
        .install_snapshot(&snapshot.meta, Box::new(Cursor::new(bytes)))
        .await
        .expect_err("a damaged stream is refused");
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!(
        follower.reader().get("b").expect("get").as_deref(),
        Some(&b"follower"[..])
    );
    assert_eq!(
        follower.applied_state().await.expect("applied").0,
        Some(log_id(1, 1))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_database_not_made_by_this_crate_is_refused() {
    let db = DbBuilder::in_memory().open().expect("open");
    db.put("user:1", "ada").expect("put");
    let err = strata_raft::open::<Config, _>(db, Kv)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("not made by strata-raft"), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_database_of_the_first_layout_is_refused_and_left_as_it_was() {
    // Layout 1 kept the log, its metadata and the state machine in the default
    // keyspace under key prefixes; this version keeps the log in keyspaces of its own.
    let db = DbBuilder::in_memory().open().expect("open");
    db.put("m:format", "strata-raft 1").expect("put");
    db.put([b'l', 0, 0, 0, 0, 0, 0, 0, 1], "an old entry")
        .expect("put");
    let err = strata_raft::open::<Config, _>(db.clone(), Kv)
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(message.contains("layout \"strata-raft 1\""), "{message}");
    assert!(message.contains("reads \"strata-raft 3\""), "{message}");
    assert_eq!(db.list_keyspaces(), ["default"], "nothing made");
}

#[tokio::test(flavor = "current_thread")]
async fn a_database_of_the_second_layout_is_refused_and_left_as_it_was() {
    // Layout 2 kept the state machine in the default keyspace; this version keeps it in
    // `raft-sm`, so that a checkpoint of that keyspace is a snapshot.
    let db = DbBuilder::in_memory().open().expect("open");
    db.keyspace("raft-log").expect("log");
    db.keyspace("raft-meta")
        .expect("meta")
        .put("format", "strata-raft 2")
        .expect("put");
    db.put("s:key", "state of layout 2").expect("put");
    let err = strata_raft::open::<Config, _>(db.clone(), Kv)
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(message.contains("layout \"strata-raft 2\""), "{message}");
    assert_eq!(
        db.list_keyspaces(),
        ["default", "raft-log", "raft-meta"],
        "nothing made"
    );
    assert_eq!(
        db.get("s:key").expect("get").as_deref(),
        Some(&b"state of layout 2"[..])
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_log_lives_in_a_keyspace_of_its_own() {
    let db = DbBuilder::in_memory().open().expect("open");
    let (mut log, mut state) = strata_raft::open::<Config, _>(db.clone(), Kv).expect("open");
    assert_eq!(
        db.list_keyspaces(),
        ["default", "raft-log", "raft-sm", "raft-meta"]
    );
    state.apply([set(1, "a", "1")]).await.expect("apply");
    let sm = db.keyspace("raft-sm").expect("state machine keyspace");
    assert_eq!(sm.iter().count(), 2, "the key and the last applied log id");
    log.save_vote(&openraft::Vote::new(1, 7))
        .await
        .expect("vote");
    let raft_log = db.keyspace("raft-log").expect("log keyspace");
    assert_eq!(raft_log.iter().count(), 0);
    // Nothing in the default keyspace.
    assert_eq!(db.iter().count(), 0);
    assert!(
        db.keyspace("raft-meta")
            .expect("meta")
            .get("vote")
            .expect("get")
            .is_some()
    );
}

/// What `save_vote` and snapshot installs promise (fsynced before they return) and
/// what a snapshot is after a restart. (The flushed callback's promise is tested in the
/// crate's unit tests: a `LogFlushed` can only be made inside openraft.)
#[tokio::test(flavor = "current_thread")]
async fn votes_and_snapshots_survive_a_power_loss() {
    let fs = FaultFs::new();
    let (mut log, mut sm) = open_on(&fs);
    sm.apply([set(1, "a", "1"), membership(2, &[1])])
        .await
        .expect("apply");
    let built = build(&mut sm).await;
    log.save_vote(&Vote::new(1, 1)).await.expect("vote");
    // The control: a write nothing fsyncs afterwards is lost in the crash below, so
    // the crash really drops what was not synced.
    log.save_committed(Some(log_id(1, 2)))
        .await
        .expect("committed");
    let after = fs.crash(&CrashOptions::power_loss());
    drop((log, sm));

    let (mut log, mut sm) = open_on(&after);
    assert_eq!(log.read_vote().await.expect("vote"), Some(Vote::new(1, 1)));
    assert_eq!(
        log.read_committed().await.expect("committed"),
        None,
        "an unsynced write is lost: the crash is real"
    );
    // The vote's fsync covered the applies and the snapshot mark written before it.
    assert_eq!(
        sm.applied_state().await.expect("applied").0,
        Some(log_id(1, 2))
    );
    let snapshot = sm
        .get_current_snapshot()
        .await
        .expect("snapshot")
        .expect("a snapshot existed before the crash, so one is served after it");
    assert_eq!(snapshot.meta.last_log_id, built.meta.last_log_id);
    assert_eq!(snapshot.meta.last_membership, built.meta.last_membership);
}

/// A snapshot is a checkpoint of the state machine's keyspace: its stream carries the
/// checkpoint's files (tables, manifest, CURRENT), the checkpoint stays on disk as the
/// current snapshot, and a follower installing it keeps the received files as its own
/// current snapshot.
#[tokio::test(flavor = "current_thread")]
async fn a_snapshot_is_a_checkpoint_of_the_state_machine_streamed_as_files() {
    let leader_fs = FaultFs::new();
    let (_l1, mut leader) = open_on(&leader_fs);
    let entries: Vec<_> = (1..=300)
        .map(|i| set(i, &format!("key{i:04}"), &"v".repeat(50)))
        .collect();
    leader.apply(entries).await.expect("apply");
    let snapshot = build(&mut leader).await;
    let bytes = snapshot.snapshot.into_inner();
    assert_eq!(&bytes[..8], b"STRSNAP2");
    for name in [&b"CURRENT"[..], b".sst", b"MANIFEST-"] {
        assert!(
            bytes.windows(name.len()).any(|w| w == name),
            "the stream names a {:?} file",
            String::from_utf8_lossy(name)
        );
    }
    let on_disk = leader_fs
        .list(Path::new("/raft/raft-snapshot-a"))
        .expect("the checkpoint stays as the current snapshot");
    assert!(on_disk.iter().any(|n| n == "CURRENT"), "{on_disk:?}");

    // A second build uses the other directory and empties the first.
    leader.apply([set(301, "late", "x")]).await.expect("apply");
    let second = build(&mut leader).await;
    assert_eq!(second.meta.last_log_id, Some(log_id(1, 301)));
    assert!(
        leader_fs
            .list(Path::new("/raft/raft-snapshot-a"))
            .expect("list")
            .is_empty()
    );
    assert!(
        !leader_fs
            .list(Path::new("/raft/raft-snapshot-b"))
            .expect("list")
            .is_empty()
    );

    let follower_fs = FaultFs::new();
    let (_l2, mut follower) = open_on(&follower_fs);
    follower
        .install_snapshot(&second.meta, second.snapshot)
        .await
        .expect("install");
    assert_eq!(follower.reader().prefix(b"key").count(), 300);
    assert_eq!(
        follower.reader().get("late").expect("get").as_deref(),
        Some(&b"x"[..])
    );
    assert!(
        follower_fs
            .list(Path::new("/raft/raft-snapshot-a"))
            .expect("the received checkpoint is kept")
            .iter()
            .any(|n| n == "CURRENT")
    );
    let served = follower
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("the installed snapshot is served");
    assert_eq!(served.meta, second.meta);
}

/// A crash at every file-system step of an install (strict power loss and process
/// crash) leaves the follower's state machine old or new, whole: never a mix, never
/// unopenable; once `install_snapshot` returned, new.
#[tokio::test(flavor = "current_thread")]
async fn a_crash_at_every_step_of_an_install_leaves_the_old_state_or_the_new_one() {
    let (_l1, mut leader) = in_memory();
    leader
        .apply((1..=40).map(|i| set(i, &format!("new{i:02}"), "leader")))
        .await
        .expect("apply");
    let snapshot = build(&mut leader).await;

    let fs = FaultFs::new();
    let (_log, mut follower) = open_on(&fs);
    follower
        .apply((1..=5).map(|i| set(i, &format!("old{i}"), "follower")))
        .await
        .expect("apply");
    // Synced, like every install's predecessor state would be after a while.
    follower
        .install_snapshot(&snapshot.meta, Box::new(Cursor::new(Vec::new())))
        .await
        .expect_err("an empty stream is refused");
    let start = fs.op_count();
    follower
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .expect("install");
    let end = fs.op_count();
    drop((_log, follower));
    assert!(end - start > 10, "the install made {} changes", end - start);

    let old: Vec<String> = (1..=5).map(|i| format!("old{i}")).collect();
    let new: Vec<String> = (1..=40).map(|i| format!("new{i:02}")).collect();
    for k in start..=end {
        for opts in [CrashOptions::power_loss(), CrashOptions::process()] {
            let after = fs.crash_at(k, &opts);
            let (_log, mut sm) = open_on(&after);
            let keys: Vec<String> = sm
                .reader()
                .prefix(b"")
                .map(|kv| String::from_utf8_lossy(&kv.expect("scan").0).into_owned())
                .collect();
            let applied = sm.applied_state().await.expect("applied").0;
            if keys == new {
                assert_eq!(
                    applied,
                    Some(log_id(1, 40)),
                    "crash after change {k}: {opts:?}"
                );
            } else {
                assert!(k < end, "crash after the install returned: old state");
                // The old state's applies were not synced: a prefix of them survives.
                assert!(
                    keys.iter().all(|key| old.contains(key)),
                    "crash after change {k} ({opts:?}): a mix {keys:?}"
                );
            }
        }
    }
}

/// Builds a snapshot of `sm` as openraft does.
async fn build(sm: &mut StateMachine<Config, Kv>) -> openraft::Snapshot<Config> {
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build")
}
