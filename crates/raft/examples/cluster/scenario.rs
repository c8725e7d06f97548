//! The scenario the example runs and `tests/cluster.rs` checks: three nodes, writes
//! through the leader, a follower that catches up from the log, one that catches up
//! from a snapshot, and the leader's failure. Every phase ends by reading every node's
//! state machine back: it must hold exactly the acknowledged writes, each key at its
//! last acknowledged value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use openraft::LogIdOptionExt;

use crate::net::Client;
use crate::node::{Cluster, NodeId, Result};

/// The longest wait for an election, a catch-up, a snapshot or a client request: far
/// above what loopback needs, so only a real failure (not a slow machine) exceeds it.
const WAIT: Duration = Duration::from_secs(20);

const IDS: [NodeId; 3] = [1, 2, 3];

/// What the scenario did, for its caller to print or check.
#[derive(Debug)]
pub struct Report {
    /// Distinct keys written, as acknowledged.
    pub keys: usize,
    /// Acknowledged writes, overwrites included.
    pub writes: usize,
    /// Keys read back through the leader (linearizable reads) after the failover.
    pub reads: usize,
    /// The follower stopped while the leader kept its log: it caught up from the log.
    pub from_log: CatchUp,
    /// The follower stopped while the leader built a snapshot and purged its log: it
    /// caught up by installing the snapshot.
    pub from_snapshot: CatchUp,
    /// The index the leader's snapshot covers, and up to which it purged its log.
    pub snapshot_index: u64,
    /// The leader that was stopped.
    pub old_leader: NodeId,
    /// The leader the two others elected.
    pub new_leader: NodeId,
    /// How long the scenario took.
    pub elapsed: Duration,
}

/// One node's return after being down.
#[derive(Debug)]
pub struct CatchUp {
    /// The node.
    pub node: NodeId,
    /// The last entry its state machine held on disk when it restarted.
    pub applied_at_restart: Option<u64>,
    /// The last acknowledged entry, which it then applied.
    pub caught_up_to: u64,
    /// The snapshot it holds afterwards (its own policy builds none, so one it
    /// installed), if any.
    pub snapshot: Option<u64>,
}

impl fmt::Display for CatchUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |index: Option<u64>| index.map_or("none".to_owned(), |i| i.to_string());
        write!(
            f,
            "node {} restarted at applied index {}, caught up to {} (snapshot: {})",
            self.node,
            show(self.applied_at_restart),
            self.caught_up_to,
            show(self.snapshot)
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} acknowledged writes to {} keys, every one present with its last value on all three nodes",
            self.writes, self.keys
        )?;
        writeln!(f, "from the log:      {}", self.from_log)?;
        writeln!(
            f,
            "from the snapshot: {} (the leader's snapshot and purge reached index {})",
            self.from_snapshot, self.snapshot_index
        )?;
        writeln!(
            f,
            "failover:          node {} stopped, node {} elected; {} keys read back through it",
            self.old_leader, self.new_leader, self.reads
        )?;
        write!(f, "elapsed:           {:.1?}", self.elapsed)
    }
}

/// The acknowledged writes: each key's last acknowledged value, and the highest log
/// index acknowledged (every node that has applied it must hold them all).
#[derive(Default)]
struct Acknowledged {
    values: BTreeMap<String, String>,
    writes: usize,
    last_index: u64,
}

fn key(i: usize) -> String {
    format!("key-{i:05}")
}

/// Sets keys `range` to values of `round` through the client, one write at a time,
/// each waited for.
async fn write(
    client: &mut Client,
    acked: &mut Acknowledged,
    range: std::ops::Range<usize>,
    round: u32,
) -> Result<()> {
    for i in range {
        let (key, value) = (key(i), format!("value {i} of round {round}"));
        let log_id = client.set(&key, &value).await?;
        acked.values.insert(key, value);
        acked.writes += 1;
        acked.last_index = acked.last_index.max(log_id.index);
    }
    Ok(())
}

/// Checks that node `id`'s state machine holds exactly the acknowledged writes: every
/// key at its last acknowledged value, and no other key.
fn verify(cluster: &Cluster, id: NodeId, acked: &Acknowledged) -> Result<()> {
    let contents = cluster.node(id)?.contents()?;
    for (key, value) in &acked.values {
        match contents.get(key) {
            Some(held) if held == value => {}
            Some(held) => {
                return Err(format!(
                    "node {id} holds {key} = {held:?}, but {value:?} was acknowledged last"
                )
                .into());
            }
            None => return Err(format!("node {id} lacks the acknowledged key {key}").into()),
        }
    }
    if let Some(extra) = contents.keys().find(|k| !acked.values.contains_key(*k)) {
        return Err(format!("node {id} holds {extra}, which no acknowledged write set").into());
    }
    Ok(())
}

/// Waits until node `id` has applied every acknowledged write, then verifies it.
async fn caught_up(cluster: &Cluster, id: NodeId, acked: &Acknowledged) -> Result<()> {
    cluster
        .node(id)?
        .wait_applied(acked.last_index, WAIT)
        .await?;
    verify(cluster, id, acked)
}

/// A follower of `leader`, other than `not` if there is a choice.
fn follower(leader: NodeId, not: Option<NodeId>) -> NodeId {
    let followers: Vec<NodeId> = IDS.into_iter().filter(|&id| id != leader).collect();
    followers
        .iter()
        .copied()
        .find(|&id| Some(id) != not)
        .or(followers.first().copied())
        .unwrap_or(leader)
}

/// Runs the scenario with three new nodes in `root` (`root/node-1` to `node-3`, which
/// must not exist): `keys` keys first, then half as many new keys and a quarter
/// overwritten in each later phase. `say` is told each step.
pub async fn run(root: &Path, keys: usize, say: &dyn Fn(&str)) -> Result<Report> {
    if keys < 4 {
        // Each later phase writes a quarter as many keys: at least one.
        return Err(format!("the scenario needs at least 4 keys, not {keys}").into());
    }
    let started = Instant::now();
    let mut cluster = Cluster::start(root, &IDS).await?;
    let result = phases(&mut cluster, keys, say, started).await;
    // Every node stops (its database closed cleanly) whatever happened.
    let stopped = cluster.stop().await;
    let report = result?;
    stopped?;
    Ok(report)
}

async fn phases(
    cluster: &mut Cluster,
    keys: usize,
    say: &dyn Fn(&str),
    started: Instant,
) -> Result<Report> {
    let (half, quarter) = (keys / 2, keys / 4);
    let mut client = cluster.client(WAIT);
    let mut acked = Acknowledged::default();

    // 1. Three nodes, writes through the leader.
    let leader = cluster.leader(WAIT).await?;
    say(&format!(
        "nodes 1, 2, 3 listen on {}; node {leader} leads",
        IDS.iter()
            .map(|&id| cluster.node(id).map(|n| n.addr.to_string()))
            .collect::<Result<Vec<_>>>()?
            .join(", ")
    ));
    write(&mut client, &mut acked, 0..keys, 1).await?;
    for id in IDS {
        caught_up(cluster, id, &acked).await?;
    }
    say(&format!(
        "{keys} keys written through the leader; all three nodes hold them"
    ));

    // 2. A follower stops and misses writes; the leader keeps its log, so the follower
    // catches up from it.
    let leader = cluster.leader(WAIT).await?;
    let lagging = follower(leader, None);
    cluster.node_mut(lagging)?.stop().await?;
    say(&format!("node {lagging} (a follower) stopped"));
    write(&mut client, &mut acked, keys..keys + half, 1).await?;
    write(&mut client, &mut acked, 0..quarter, 2).await?;
    let applied_at_restart = cluster.node_mut(lagging)?.start().await?;
    say(&format!(
        "{} more writes acknowledged by the two others; node {lagging} restarted from its directory",
        half + quarter
    ));
    if applied_at_restart >= Some(acked.last_index) {
        return Err(format!("node {lagging} missed no write while it was down").into());
    }
    caught_up(cluster, lagging, &acked).await?;
    let snapshot = cluster.node(lagging)?.metrics()?.snapshot.index();
    let leader_purged = cluster.node(leader)?.metrics()?.purged.index();
    if snapshot.is_some() || leader_purged.is_some() {
        return Err(format!(
            "node {lagging} was to catch up from the log, but it holds snapshot {snapshot:?} \
             and the leader purged its log to {leader_purged:?}"
        )
        .into());
    }
    let from_log = CatchUp {
        node: lagging,
        applied_at_restart,
        caught_up_to: acked.last_index,
        snapshot,
    };
    say(&format!("{from_log}: from the log"));

    // 3. The other follower stops; the leader builds a snapshot and purges its log up
    // to it, so that follower can only catch up by installing the snapshot.
    let leader = cluster.leader(WAIT).await?;
    let lagging = follower(leader, Some(lagging));
    cluster.node_mut(lagging)?.stop().await?;
    say(&format!("node {lagging} (the other follower) stopped"));
    write(&mut client, &mut acked, keys + half..keys + 2 * half, 1).await?;
    write(&mut client, &mut acked, quarter..2 * quarter, 2).await?;
    let leader = cluster.leader(WAIT).await?;
    let raft = cluster.node(leader)?.raft()?;
    raft.trigger().snapshot().await?;
    let target = Some(acked.last_index);
    let metrics = raft
        .wait(Some(WAIT))
        .metrics(
            |m| m.snapshot.index() >= target && m.purged.index() >= target,
            "the leader's snapshot and purge cover every acknowledged write",
        )
        .await?;
    let snapshot_index = metrics.purged.index().unwrap_or_default();
    say(&format!(
        "{} more writes; node {leader} built a snapshot at index {} and purged its log up to {snapshot_index}",
        half + quarter,
        metrics.snapshot.index().unwrap_or_default()
    ));
    let applied_at_restart = cluster.node_mut(lagging)?.start().await?;
    if applied_at_restart >= Some(snapshot_index) {
        return Err(format!(
            "node {lagging} restarted at {applied_at_restart:?}, not behind the leader's purged log ({snapshot_index})"
        )
        .into());
    }
    caught_up(cluster, lagging, &acked).await?;
    let snapshot = cluster.node(lagging)?.metrics()?.snapshot.index();
    if snapshot < Some(snapshot_index) {
        return Err(format!(
            "node {lagging} caught up past the leader's purged log without its snapshot (it holds {snapshot:?})"
        )
        .into());
    }
    let from_snapshot = CatchUp {
        node: lagging,
        applied_at_restart,
        caught_up_to: acked.last_index,
        snapshot,
    };
    say(&format!("{from_snapshot}: from the snapshot"));

    // 4. The leader stops; the two others elect a new one, which takes more writes.
    let old_leader = cluster.leader(WAIT).await?;
    cluster.node_mut(old_leader)?.stop().await?;
    say(&format!("node {old_leader} (the leader) stopped"));
    let new_leader = cluster.leader(WAIT).await?;
    say(&format!("node {new_leader} elected"));
    write(&mut client, &mut acked, keys + 2 * half..keys + 3 * half, 1).await?;
    write(&mut client, &mut acked, 2 * quarter..3 * quarter, 2).await?;
    write(&mut client, &mut acked, 0..quarter, 3).await?;
    let survivors: Vec<NodeId> = cluster.up().map(|node| node.id).collect();
    for &id in &survivors {
        caught_up(cluster, id, &acked).await?;
    }
    // Reads through the leader see the last acknowledged values too.
    let mut reads = 0;
    for (key, value) in acked.values.iter().step_by(10) {
        let read = client.get(key).await?;
        if read.as_ref() != Some(value) {
            return Err(format!("read {key} through the leader: {read:?}, not {value:?}").into());
        }
        reads += 1;
    }
    say(&format!(
        "{} more writes through node {new_leader}; nodes {survivors:?} hold every acknowledged write; {reads} keys read back through the leader",
        half + 2 * quarter
    ));

    // 5. The old leader returns and catches up.
    let applied_at_restart = cluster.node_mut(old_leader)?.start().await?;
    if applied_at_restart >= Some(acked.last_index) {
        return Err(format!("node {old_leader} missed no write while it was down").into());
    }
    caught_up(cluster, old_leader, &acked).await?;
    say(&format!(
        "node {old_leader} restarted and caught up: all three nodes hold the {} acknowledged keys",
        acked.values.len()
    ));

    Ok(Report {
        keys: acked.values.len(),
        writes: acked.writes,
        reads,
        from_log,
        from_snapshot,
        snapshot_index,
        old_leader,
        new_leader,
        elapsed: started.elapsed(),
    })
}
