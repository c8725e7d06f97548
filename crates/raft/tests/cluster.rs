//! The three-node example (`examples/cluster`) as a test: three openraft nodes on
//! Strata over TCP on loopback, a follower catching up from the log, one from a
//! snapshot, and a leader failover; every node's state machine must hold exactly the
//! acknowledged writes, each at its last acknowledged value.

#[path = "../examples/cluster/net.rs"]
mod net;
#[path = "../examples/cluster/node.rs"]
mod node;
#[path = "../examples/cluster/scenario.rs"]
mod scenario;

use std::time::Duration;

/// The test fails rather than hangs: far above the scenario's few seconds.
const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_keep_every_acknowledged_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = 200;
    let say = |step: &str| eprintln!("- {step}");
    let report = tokio::time::timeout(LIMIT, scenario::run(dir.path(), keys, &say))
        .await
        .expect("the scenario finishes within the limit")
        .unwrap_or_else(|e| panic!("the scenario failed: {e}"));
    eprintln!("{report}");

    // The scenario checked every node's contents against the acknowledged writes; these
    // check that it did what it says: the writes were all acknowledged...
    let (half, quarter) = (keys / 2, keys / 4);
    assert_eq!(report.keys, keys + 3 * half);
    assert_eq!(report.writes, keys + 3 * half + 4 * quarter);
    assert!(report.reads > 0);
    // ...one follower restarted behind and caught up from the log, without a snapshot...
    let log = &report.from_log;
    assert!(log.applied_at_restart < Some(log.caught_up_to));
    assert_eq!(log.snapshot, None);
    // ...the other restarted behind the leader's purged log and installed its snapshot...
    let snap = &report.from_snapshot;
    assert_ne!(snap.node, log.node);
    assert!(snap.applied_at_restart < Some(report.snapshot_index));
    assert!(snap.snapshot >= Some(report.snapshot_index));
    // ...and the leader stopped was replaced by another node.
    assert_ne!(report.old_leader, report.new_leader);
}
