//! A node of the example cluster (its Raft, its Strata database, its TCP server) and
//! the cluster of three.

use std::collections::BTreeMap;
// `declare_raft_types!` names the default snapshot data type as `Cursor<Vec<u8>>`.
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openraft::storage::RaftStateMachine;
use openraft::{BasicNode, Config, LogId, RaftMetrics, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use strata::Db;
use strata_raft::{Apply, StateReader, StateTxn};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::net::{Client, Network, Serving, Slot, serve};

/// Any error of the example, as a message and its sources.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The example's results: [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A node's id.
pub type NodeId = u64;

/// The one write of the key-value API: set `key` to `value`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Set {
    /// The key.
    pub key: String,
    /// Its new value.
    pub value: String,
}

openraft::declare_raft_types!(
    /// The example's openraft type config: entries carry [`Set`]s, applying one answers
    /// nothing (the client learns the log id it was committed at), nodes are known by
    /// their TCP address.
    pub Kv: D = Set, R = ()
);

/// A node's Raft.
pub type Raft = openraft::Raft<Kv>;

/// What a [`Set`] does to the state machine.
pub struct KvApply;

impl Apply<Kv> for KvApply {
    fn apply(&self, _: &LogId<NodeId>, set: &Set, state: &mut StateTxn<'_>) -> strata::Result<()> {
        state.put(&set.key, &set.value);
        Ok(())
    }
}

/// The example's Raft timing and snapshot settings.
pub fn config() -> Result<Arc<Config>> {
    let config = Config {
        cluster_name: "strata-example".into(),
        // Generous for loopback, so that a loaded machine (a CI box running builds
        // beside the test) does not make followers start needless elections: a leader's
        // failure is noticed after 1 to 2 s.
        heartbeat_interval: 100,
        election_timeout_min: 1000,
        election_timeout_max: 2000,
        // The scenario builds snapshots itself (`Raft::trigger().snapshot()`), so that
        // which follower catches up from the log and which from a snapshot is certain;
        // a service would build one every so many entries (`LogsSinceLast(n)`).
        snapshot_policy: SnapshotPolicy::Never,
        // Purge the log up to each snapshot at once, in batches of any size: a follower
        // behind the snapshot then cannot catch up from the log.
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        ..Config::default()
    };
    Ok(Arc::new(config.validate()?))
}

/// One node: an address that stays bound for the node's lifetime (as a host's
/// configured port would), a directory holding its Strata database, and, while it is
/// up, its Raft.
pub struct Node {
    /// The node's id.
    pub id: NodeId,
    /// Where its peers and clients reach it.
    pub addr: SocketAddr,
    dir: PathBuf,
    config: Arc<Config>,
    slot: Slot,
    server: JoinHandle<()>,
    running: Option<Running>,
}

struct Running {
    raft: Raft,
    reader: StateReader,
    db: Db,
}

impl Node {
    /// Binds a loopback address (the port the OS picks) and starts answering on it;
    /// the node is down (its server closes every connection) until [`Node::start`].
    pub async fn bind(id: NodeId, dir: PathBuf, config: Arc<Config>) -> Result<Node> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let slot: Slot = Arc::new(Mutex::new(None));
        let server = tokio::spawn(serve(listener, Arc::clone(&slot)));
        Ok(Node {
            id,
            addr,
            dir,
            config,
            slot,
            server,
            running: None,
        })
    }

    /// Opens (or creates) the node's database, builds the Raft stores on it and starts
    /// the node's Raft. Returns the index of the last entry the state machine had
    /// applied on disk before the node started: where it resumes from.
    pub async fn start(&mut self) -> Result<Option<u64>> {
        if self.running.is_some() {
            return Err(format!("node {} is already running", self.id).into());
        }
        let dir = self.dir.clone();
        // Opening replays the write-ahead log: file I/O, off the async workers.
        let db = tokio::task::spawn_blocking(move || Db::open(dir)).await??;
        let (log_store, mut state_machine) = strata_raft::open::<Kv, _>(db.clone(), KvApply)?;
        let (applied, _) = state_machine.applied_state().await?;
        let reader = state_machine.reader();
        let network = Network { id: self.id };
        let raft = Raft::new(
            self.id,
            Arc::clone(&self.config),
            network,
            log_store,
            state_machine,
        )
        .await?;
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Serving {
            raft: raft.clone(),
            reader: reader.clone(),
        });
        self.running = Some(Running { raft, reader, db });
        Ok(applied.map(|id| id.index))
    }

    /// Stops the node: its server stops answering, its Raft shuts down, and its
    /// database is closed (every handle of it, including those openraft's tasks still
    /// hold), so that [`Node::start`] can open it again.
    pub async fn stop(&mut self) -> Result<()> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = None;
        running.raft.shutdown().await?;
        // Close flushes and syncs: file I/O, off the async workers.
        tokio::task::spawn_blocking(move || running.db.close()).await??;
        Ok(())
    }

    /// The node's Raft, while it runs.
    pub fn raft(&self) -> Result<&Raft> {
        match &self.running {
            Some(running) => Ok(&running.raft),
            None => Err(format!("node {} is down", self.id).into()),
        }
    }

    /// Whether the node runs.
    pub fn is_up(&self) -> bool {
        self.running.is_some()
    }

    /// The node's latest metrics (its role, term, leader, log, snapshot).
    pub fn metrics(&self) -> Result<RaftMetrics<NodeId, BasicNode>> {
        Ok(self.raft()?.metrics().borrow().clone())
    }

    /// Every key of the node's state machine with its value, read from its Strata
    /// database.
    pub fn contents(&self) -> Result<BTreeMap<String, String>> {
        let Some(running) = &self.running else {
            return Err(format!("node {} is down", self.id).into());
        };
        let mut contents = BTreeMap::new();
        for item in running.reader.prefix(b"") {
            let (key, value) = item?;
            contents.insert(
                String::from_utf8(key.to_vec())?,
                String::from_utf8(value.to_vec())?,
            );
        }
        Ok(contents)
    }

    /// Waits until the node has applied the entry at `index` (and every one before).
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<()> {
        self.raft()?
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), format!("node {} applies {index}", self.id))
            .await?;
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Drops the listener and every connection the server accepted.
        self.server.abort();
    }
}

/// Nodes on loopback, each with its own directory under one root.
pub struct Cluster {
    nodes: BTreeMap<NodeId, Node>,
}

impl Cluster {
    /// Starts nodes `ids`, each in `root/node-<id>`, and initializes the cluster with
    /// all of them as voters.
    pub async fn start(root: &Path, ids: &[NodeId]) -> Result<Cluster> {
        let config = config()?;
        let mut nodes = BTreeMap::new();
        for &id in ids {
            let dir = root.join(format!("node-{id}"));
            if dir.exists() {
                return Err(format!(
                    "{} exists: the cluster starts from empty directories",
                    dir.display()
                )
                .into());
            }
            let mut node = Node::bind(id, dir, Arc::clone(&config)).await?;
            node.start().await?;
            nodes.insert(id, node);
        }
        let members: BTreeMap<NodeId, BasicNode> = nodes
            .iter()
            .map(|(&id, node)| (id, BasicNode::new(node.addr)))
            .collect();
        let first = nodes.values().next().ok_or("a cluster needs a node")?;
        first.raft()?.initialize(members).await?;
        Ok(Cluster { nodes })
    }

    /// Node `id`.
    pub fn node(&self, id: NodeId) -> Result<&Node> {
        self.nodes
            .get(&id)
            .ok_or_else(|| format!("no node {id}").into())
    }

    /// Node `id`, to stop or start it.
    pub fn node_mut(&mut self, id: NodeId) -> Result<&mut Node> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| format!("no node {id}").into())
    }

    /// The nodes that run.
    pub fn up(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values().filter(|node| node.is_up())
    }

    /// A client that knows every node's address.
    pub fn client(&self, deadline: Duration) -> Client {
        let addrs = self
            .nodes
            .iter()
            .map(|(&id, node)| (id, node.addr))
            .collect();
        Client::new(addrs, deadline)
    }

    /// Waits until a running node leads with a majority of the cluster following it
    /// (reporting it as their leader), and returns its id.
    pub async fn leader(&self, timeout: Duration) -> Result<NodeId> {
        let majority = self.nodes.len() / 2 + 1;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            for node in self.up() {
                let metrics = node.metrics()?;
                if metrics.state != ServerState::Leader {
                    continue;
                }
                let following = self
                    .up()
                    .filter(|other| {
                        other
                            .metrics()
                            .is_ok_and(|m| m.current_leader == Some(node.id))
                    })
                    .count();
                if following >= majority {
                    return Ok(node.id);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("no leader with a majority within {timeout:?}").into());
            }
            // Polls the nodes' metrics (no event covers "a majority agrees").
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every node.
    pub async fn stop(&mut self) -> Result<()> {
        for node in self.nodes.values_mut() {
            node.stop().await?;
        }
        Ok(())
    }
}
