//! `strata-bench raft`: the openraft log store on Strata (`strata-kv-raft`) against the
//! same log store on a peer engine, side by side in one run, through a real
//! `openraft::Raft`.
//!
//! Each measurement starts a fresh cluster (one node by default; `--nodes 3` adds a
//! three-node cluster in one process), waits for a leader, makes one untimed proposal,
//! then times `count` proposals (`client_write` of a `payload`-byte string), at most
//! `concurrency` in flight. Every store gets the same state machine (`strata-kv-raft`'s
//! `StateMachine` on an in-memory database, applying nothing), so the log store is what
//! differs. `local` is no Raft at all: Strata's `Db::write` with `sync: true` at the same
//! payload and concurrency, the cost of a durable write without replication.
//!
//! Method and figures: `benches/README.md` and `docs/benchmarks.md` ("Raft log append").

// openraft's traits return its `StorageError` and `RPCError` (over 128 bytes): the
// helpers that build one return it too, as `strata-kv-raft` does.
#![allow(clippy::result_large_err)]

mod net;
// The peer log store, for the peers compiled in.
#[cfg(any(feature = "fjall", feature = "rocksdb"))]
mod peer;

#[cfg(feature = "fjall")]
mod fjall;
#[cfg(feature = "rocksdb")]
mod rocksdb;

use std::collections::BTreeSet;
use std::fmt::Write as _;
// `declare_raft_types!` names the default snapshot data type as `Cursor<Vec<u8>>`.
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openraft::{LogId, SnapshotPolicy};
use serde::Serialize;
use strata::{Db, DbBuilder, WriteBatch, WriteOptions};
use strata_raft::{Apply, StateTxn};

use crate::engine::Res;
use crate::metrics;
use crate::workload::{Outcome, histogram, progress, run_ops};
use net::Router;

openraft::declare_raft_types!(
    /// The benchmark's type config: a proposal carries its payload as a string (stored
    /// as JSON by every log store, so one byte of payload is one byte in the entry).
    pub Bench: D = String, R = ()
);

/// A node's Raft.
pub type Raft = openraft::Raft<Bench>;

/// `strata-bench raft` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct RaftArgs {
    /// Comma list of stores: strata, fjall (built with `--features fjall`), rocksdb
    /// (`--features rocksdb` or `rocksdb-system`), local
    /// (Strata's `Db::write` with sync, no Raft), or all (every compiled store and local).
    #[arg(long, default_value = "all")]
    pub stores: String,
    /// Entry payload sizes in bytes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,4096")]
    pub payloads: Vec<usize>,
    /// Proposals timed per measurement, one per payload size (the last one repeats).
    #[arg(long, value_delimiter = ',', default_value = "20000,5000")]
    pub counts: Vec<u64>,
    /// Proposals in flight (`client_write` calls awaiting their response), comma list.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub concurrency: Vec<usize>,
    /// Cluster sizes, comma list: 1 (a single node, no network) and/or 3 (three nodes
    /// in one process, RPCs as direct calls). `local` runs only with 1.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub nodes: Vec<usize>,
    /// Runs of every configuration (the stores alternate within each run).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Base directory (each measurement uses a fresh directory under it, removed after).
    /// Default: a temporary directory.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Print the results as JSON on stdout (the progress lines go to stderr).
    #[arg(long, num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    pub json: bool,
}

/// A log store under test, or `local` (no Raft).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Store {
    Strata,
    #[cfg(feature = "fjall")]
    Fjall,
    #[cfg(feature = "rocksdb")]
    Rocksdb,
    Local,
}

impl Store {
    /// Every compiled store, Strata first, then `local`.
    fn all() -> Vec<Store> {
        vec![
            Store::Strata,
            #[cfg(feature = "fjall")]
            Store::Fjall,
            #[cfg(feature = "rocksdb")]
            Store::Rocksdb,
            Store::Local,
        ]
    }

    fn name(self) -> &'static str {
        match self {
            Store::Strata => "strata",
            #[cfg(feature = "fjall")]
            Store::Fjall => "fjall",
            #[cfg(feature = "rocksdb")]
            Store::Rocksdb => "rocksdb",
            Store::Local => "local",
        }
    }

    fn parse(list: &str) -> Res<Vec<Store>> {
        if list == "all" {
            return Ok(Store::all());
        }
        list.split(',')
            .map(str::trim)
            .map(|name| {
                Store::all()
                    .into_iter()
                    .find(|s| s.name() == name)
                    .ok_or_else(|| {
                        format!(
                            "store {name:?} is not compiled in (compiled: {}); peers need \
                             their feature, e.g. `--features fjall`",
                            Store::all()
                                .iter()
                                .map(|s| s.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                        .into()
                    })
            })
            .collect()
    }
}

/// One measurement.
#[derive(Serialize, Clone, Debug)]
pub struct RaftRow {
    /// `strata`, a peer's name, or `local`.
    pub store: String,
    /// Nodes in the cluster (1 for `local`).
    pub nodes: usize,
    /// Payload bytes per proposal.
    pub payload: usize,
    /// Proposals in flight.
    pub concurrency: usize,
    /// Which run of the configuration (from 1).
    pub run: u32,
    /// Proposals timed, each answered.
    pub proposals: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Proposals per second.
    pub ops_per_sec: f64,
    /// Latency of one proposal, from `client_write` to its response, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// CPU time of the whole process (every node, thread and runtime worker) during
    /// the timed phase, per proposal, µs.
    pub cpu_us_per_op: f64,
    /// Syncs the log stores ran (every node's), per proposal: Strata's WAL fsyncs
    /// (`Stats::wal_syncs`), a peer's `sync()` calls.
    pub fsyncs_per_op: f64,
    /// The leader's last log index after the timed phase minus before it (= proposals).
    pub log_entries: Option<u64>,
}

/// A whole run.
#[derive(Serialize)]
pub struct RaftReport {
    /// The flags.
    pub parameters: String,
    /// CPU, cores, memory, kernel.
    pub machine: String,
    /// Every measurement, in the order they ran.
    pub results: Vec<RaftRow>,
}

/// Runs `strata-bench raft`.
pub fn run(args: RaftArgs) -> Res<()> {
    let (base, _tmp) = crate::base_dir(args.db.as_ref(), "strata-raftbench")?;
    crate::emit(
        args.json,
        &base,
        HEADER,
        |row: &RaftRow| row.markdown(""),
        |each| measure(&args, &base, each),
        |report: &RaftReport| report.table(),
    )
}

/// Every configuration, each store in turn within a run.
fn measure(args: &RaftArgs, base: &Path, each: &mut dyn FnMut(&RaftRow)) -> Res<RaftReport> {
    let stores = Store::parse(&args.stores)?;
    if args.payloads.is_empty() || args.counts.is_empty() || args.counts.contains(&0) {
        return Err("--payloads and --counts need at least one value, counts positive".into());
    }
    if let Some(n) = args.nodes.iter().find(|&&n| n != 1 && n != 3) {
        return Err(format!("--nodes {n}: 1 or 3").into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()?;
    let mut rows = Vec::new();
    for (i, &payload) in args.payloads.iter().enumerate() {
        let count = args
            .counts
            .get(i)
            .or(args.counts.last())
            .copied()
            .unwrap_or(1);
        let data = payload_of(payload);
        for &concurrency in &args.concurrency {
            let concurrency = concurrency.max(1);
            for run in 1..=args.repeat.max(1) {
                for &nodes in &args.nodes {
                    for &store in &stores {
                        if store == Store::Local && nodes != 1 {
                            continue;
                        }
                        let dir = base.join(format!(
                            "{}-n{nodes}-p{payload}-c{concurrency}-r{run}",
                            store.name()
                        ));
                        let _ = std::fs::remove_dir_all(&dir);
                        std::fs::create_dir_all(&dir)?;
                        let label = format!("{} n{nodes} {payload}B c{concurrency}", store.name());
                        let cpu0 = metrics::process_cpu();
                        let (outcome, syncs, entries) = if store == Store::Local {
                            let (o, s) = local(&dir, count, concurrency, &data, &label)?;
                            (o, s, None)
                        } else {
                            let (o, s, e) = runtime.block_on(replicated(
                                store,
                                nodes,
                                &dir,
                                count,
                                concurrency,
                                &data,
                            ))?;
                            (o, s, Some(e))
                        };
                        let cpu = metrics::process_cpu().saturating_sub(cpu0);
                        let _ = std::fs::remove_dir_all(&dir);
                        let row = RaftRow::new(
                            store.name(),
                            nodes,
                            payload,
                            concurrency,
                            run,
                            &outcome,
                            cpu,
                            syncs,
                            entries,
                        );
                        each(&row);
                        rows.push(row);
                        metrics::release_freed_memory();
                    }
                }
            }
        }
    }
    Ok(RaftReport {
        parameters: format!(
            "--stores={} --payloads={:?} --counts={:?} --concurrency={:?} --nodes={:?} \
             --repeat={}",
            args.stores, args.payloads, args.counts, args.concurrency, args.nodes, args.repeat
        ),
        machine: metrics::machine(),
        results: rows,
    })
}

/// A payload of `len` printable bytes (JSON stores them as they are), varied so that
/// no engine's compression makes it vanish.
fn payload_of(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(ALPHABET[(x % ALPHABET.len() as u64) as usize])
        })
        .collect()
}

/// The state machine every store gets: `strata-kv-raft`'s, on an in-memory database.
type StateMachine = strata_raft::StateMachine<Bench, Discard>;

fn state_machine() -> Res<StateMachine> {
    let memory = DbBuilder::in_memory().open()?;
    let (_, state_machine) = strata_raft::open::<Bench, _>(memory, Discard)?;
    Ok(state_machine)
}

/// What [`StateMachine`] applies: nothing (each apply still commits the last-applied
/// log id to its in-memory database).
struct Discard;

impl Apply<Bench> for Discard {
    fn apply(&self, _: &LogId<u64>, _: &String, _: &mut StateTxn<'_>) -> strata::Result<()> {
        Ok(())
    }
}

/// openraft's settings: no snapshots (nor the log purges that follow them) during a
/// measurement; elections slow enough that a busy two-core machine does not start
/// needless ones in the three-node cluster.
fn config() -> Res<Arc<openraft::Config>> {
    let config = openraft::Config {
        cluster_name: "strata-bench".into(),
        heartbeat_interval: 100,
        election_timeout_min: 1000,
        election_timeout_max: 2000,
        snapshot_policy: SnapshotPolicy::Never,
        ..Default::default()
    };
    Ok(Arc::new(config.validate()?))
}

/// What a node's log store is kept open by, and how many syncs it ran.
enum Handle {
    Strata(Db),
    #[cfg(any(feature = "fjall", feature = "rocksdb"))]
    Peer(Arc<AtomicU64>),
}

impl Handle {
    fn syncs(&self) -> u64 {
        match self {
            Handle::Strata(db) => db.stats().wal_syncs,
            #[cfg(any(feature = "fjall", feature = "rocksdb"))]
            Handle::Peer(syncs) => syncs.load(Ordering::Relaxed),
        }
    }

    fn close(self) -> Res<()> {
        match self {
            Handle::Strata(db) => Ok(db.close()?),
            #[cfg(any(feature = "fjall", feature = "rocksdb"))]
            Handle::Peer(_) => Ok(()),
        }
    }
}

/// Starts node `id` with a log store of kind `store` in `dir`.
async fn start_node(store: Store, id: u64, dir: &Path, router: &Router) -> Res<(Raft, Handle)> {
    let state_machine = state_machine()?;
    let (raft, handle) = match store {
        Store::Strata => {
            let db = Db::open(dir)?;
            let (log, _) = strata_raft::open::<Bench, _>(db.clone(), Discard)?;
            let raft = Raft::new(id, config()?, router.clone(), log, state_machine).await?;
            (raft, Handle::Strata(db))
        }
        #[cfg(feature = "fjall")]
        Store::Fjall => start_peer(fjall::FjallLog::open(dir)?, id, router, state_machine).await?,
        #[cfg(feature = "rocksdb")]
        Store::Rocksdb => {
            start_peer(rocksdb::RocksLog::open(dir)?, id, router, state_machine).await?
        }
        Store::Local => return Err("`local` has no Raft".into()),
    };
    router.add(id, raft.clone());
    Ok((raft, handle))
}

/// Starts node `id` with the peer log store on `kv`.
#[cfg(any(feature = "fjall", feature = "rocksdb"))]
async fn start_peer(
    kv: impl peer::LogKv,
    id: u64,
    router: &Router,
    state_machine: StateMachine,
) -> Res<(Raft, Handle)> {
    let log = peer::PeerLog::new(kv)?;
    let syncs = log.syncs();
    let raft = Raft::new(id, config()?, router.clone(), log, state_machine).await?;
    Ok((raft, Handle::Peer(syncs)))
}

/// Starts a cluster of `nodes` in `dir`, times `count` proposals through its leader,
/// stops it. Returns the outcome, the syncs every node's log store ran, and how many
/// entries the leader's log grew by.
async fn replicated(
    store: Store,
    nodes: usize,
    dir: &Path,
    count: u64,
    concurrency: usize,
    payload: &str,
) -> Res<(Outcome, u64, u64)> {
    let router = Router::default();
    let mut members = Vec::new();
    for id in 1..=nodes as u64 {
        let node_dir = dir.join(format!("node-{id}"));
        std::fs::create_dir_all(&node_dir)?;
        members.push(start_node(store, id, &node_dir, &router).await?);
    }
    let first = &members.first().ok_or("a cluster needs a node")?.0;
    first
        .initialize((1..=nodes as u64).collect::<BTreeSet<u64>>())
        .await?;
    let metrics = first
        .wait(Some(Duration::from_secs(30)))
        .metrics(|m| m.current_leader.is_some(), "a leader is elected")
        .await?;
    let leader_id = metrics.current_leader.ok_or("no leader")?;
    let leader = members
        .iter()
        .find(|(raft, _)| raft.metrics().borrow().id == leader_id)
        .map(|(raft, _)| raft.clone())
        .ok_or("the leader is not a member")?;
    // Untimed: the first proposal waits for the leader's own first entry to commit.
    leader.client_write(payload.to_string()).await?;

    let syncs = |members: &[(Raft, Handle)]| members.iter().map(|(_, h)| h.syncs()).sum::<u64>();
    let last_index = |raft: &Raft| raft.metrics().borrow().last_log_index.unwrap_or(0);
    let (syncs0, index0) = (syncs(&members), last_index(&leader));
    let outcome = propose(&leader, count, concurrency, payload).await?;
    let (synced, entries) = (
        syncs(&members) - syncs0,
        last_index(&leader).saturating_sub(index0),
    );

    for (raft, _) in &members {
        raft.shutdown().await?;
    }
    for (_, handle) in members {
        tokio::task::spawn_blocking(move || handle.close()).await??;
    }
    Ok((outcome, synced, entries))
}

/// Times `count` proposals of `payload` through `raft`, `concurrency` tasks each
/// proposing one at a time.
async fn propose(raft: &Raft, count: u64, concurrency: usize, payload: &str) -> Res<Outcome> {
    let next = Arc::new(AtomicU64::new(0));
    let payload: Arc<str> = payload.into();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (raft, next, payload) = (raft.clone(), Arc::clone(&next), Arc::clone(&payload));
        tasks.spawn(async move {
            let mut hist = histogram()?;
            let mut answered = 0u64;
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let t = Instant::now();
                raft.client_write(payload.to_string()).await?;
                hist.saturating_record(t.elapsed().as_nanos() as u64);
                answered += 1;
            }
            Res::Ok((hist, answered))
        });
    }
    let mut hist = histogram()?;
    let mut answered = 0;
    while let Some(done) = tasks.join_next().await {
        let (h, n) = done??;
        hist.add(&h)?;
        answered += n;
    }
    Ok(Outcome {
        ops: answered,
        found: answered,
        elapsed: start.elapsed(),
        hist,
        background_ops: 0,
        writes: None,
        // Not a db_bench workload: no timeline, no stall counts.
        tails: Default::default(),
    })
}

/// `count` writes of `payload` (keys: the big-endian index), each `Db::write` with
/// `sync: true`, on `concurrency` threads. Returns the outcome and the WAL fsyncs.
fn local(
    dir: &Path,
    count: u64,
    concurrency: usize,
    payload: &str,
    label: &str,
) -> Res<(Outcome, u64)> {
    let db = Db::open(dir)?;
    let syncs0 = db.stats().wal_syncs;
    let pb = progress(count, label);
    let outcome = run_ops(
        concurrency,
        count,
        8,
        &pb,
        |key, j| {
            key.copy_from_slice(&j.to_be_bytes());
            let mut batch = WriteBatch::new();
            batch.put(&*key, payload);
            db.write(batch, WriteOptions { sync: true })?;
            Ok(true)
        },
        None,
    )?;
    let syncs = db.stats().wal_syncs - syncs0;
    db.close()?;
    Ok((outcome, syncs))
}

impl RaftRow {
    #[allow(clippy::too_many_arguments)]
    fn new(
        store: &str,
        nodes: usize,
        payload: usize,
        concurrency: usize,
        run: u32,
        o: &Outcome,
        cpu: Duration,
        syncs: u64,
        log_entries: Option<u64>,
    ) -> RaftRow {
        let secs = o.elapsed.as_secs_f64().max(1e-9);
        let ops = o.ops.max(1) as f64;
        let q = |p: f64| o.hist.value_at_quantile(p) as f64 / 1e3;
        RaftRow {
            store: store.into(),
            nodes,
            payload,
            concurrency,
            run,
            proposals: o.ops,
            seconds: secs,
            ops_per_sec: o.ops as f64 / secs,
            p50_us: q(0.50),
            p99_us: q(0.99),
            p999_us: q(0.999),
            cpu_us_per_op: cpu.as_secs_f64() * 1e6 / ops,
            fsyncs_per_op: syncs as f64 / ops,
            log_entries,
        }
    }
}

impl RaftRow {
    /// The row as a line of the Markdown table; `ratio` fills the last column.
    fn markdown(&self, ratio: &str) -> String {
        format!(
            "| {} B | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.2} | {} |",
            self.payload,
            self.concurrency,
            self.store,
            self.nodes,
            self.run,
            self.ops_per_sec,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.cpu_us_per_op,
            self.fsyncs_per_op,
            ratio
        )
    }
}

/// The header of the Markdown table.
const HEADER: &str = "| payload | in flight | store | nodes | run | proposals/s | p50 µs | p99 µs | \
                      p99.9 µs | CPU µs/op | fsyncs/op | strata ÷ this |\n\
                      |--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|";

impl RaftReport {
    /// The measurements as a Markdown table; the last column is Strata's proposals/s
    /// ÷ this row's, in the same run with the same payload, concurrency and nodes
    /// (`local` against the single-node Strata store).
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}\n{}\n\n{HEADER}", self.parameters, self.machine);
        for r in &self.results {
            let strata = self.results.iter().find(|o| {
                o.store == "strata"
                    && (o.payload, o.concurrency, o.run, o.nodes)
                        == (r.payload, r.concurrency, r.run, r.nodes)
            });
            let ratio = match strata {
                Some(o) if !std::ptr::eq(o, r) && r.ops_per_sec > 0.0 => {
                    format!("{:.2}", o.ops_per_sec / r.ops_per_sec)
                }
                _ => String::new(),
            };
            let _ = writeln!(s, "{}", r.markdown(&ratio));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every store compiled in (and `local`, and a three-node Strata cluster) runs end
    /// to end: every proposal is answered, the leader's log grew by exactly that many
    /// entries, and the log stores synced.
    #[test]
    fn every_store_answers_every_proposal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let args = RaftArgs {
            stores: "all".into(),
            payloads: vec![100],
            counts: vec![200],
            concurrency: vec![16],
            nodes: vec![1, 3],
            repeat: 1,
            db: None,
            json: true,
        };
        let report = measure(&args, dir.path(), &mut |_| {}).expect("the benchmark runs");
        let expected = Store::all().len() * 2 - 1; // `local` runs on one node only
        assert_eq!(report.results.len(), expected);
        for r in &report.results {
            assert_eq!(r.proposals, 200, "{r:?}");
            // Each node syncs at most once per proposal (and shares syncs when 16 wait).
            assert!(
                r.fsyncs_per_op > 0.0 && r.fsyncs_per_op <= r.nodes as f64 + 0.1,
                "{r:?}"
            );
            if r.store != "local" {
                assert_eq!(r.log_entries, Some(200), "{r:?}");
            }
        }
        assert!(report.table().contains("| 100 B | 16 | strata | 3 |"));
    }

    /// Builds a peer's log store in a fresh directory (kept by the guard) with the
    /// benchmark's state machine, for openraft's storage suite.
    #[cfg(any(feature = "fjall", feature = "rocksdb"))]
    struct PeerBuilder<K>(fn(&Path) -> Res<K>);

    #[cfg(any(feature = "fjall", feature = "rocksdb"))]
    impl<K: peer::LogKv>
        openraft::testing::StoreBuilder<Bench, peer::PeerLog<K>, StateMachine, tempfile::TempDir>
        for PeerBuilder<K>
    {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, peer::PeerLog<K>, StateMachine), openraft::StorageError<u64>>
        {
            let fail = |e: &dyn std::fmt::Display| {
                openraft::StorageIOError::write(openraft::AnyError::error(e.to_string()))
            };
            let dir = tempfile::tempdir().map_err(|e| fail(&e))?;
            let kv = (self.0)(dir.path()).map_err(|e| fail(&e))?;
            let log = peer::PeerLog::new(kv).map_err(|e| fail(&e))?;
            Ok((dir, log, state_machine().map_err(|e| fail(&e))?))
        }
    }

    /// The peer log stores pass openraft's own storage suite, as Strata's does: the
    /// comparison is between correct stores.
    #[cfg(feature = "fjall")]
    #[test]
    fn the_fjall_log_store_passes_openrafts_suite() {
        openraft::testing::Suite::test_all(PeerBuilder(fjall::FjallLog::open))
            .expect("openraft's storage suite passes");
    }

    #[cfg(feature = "rocksdb")]
    #[test]
    fn the_rocksdb_log_store_passes_openrafts_suite() {
        openraft::testing::Suite::test_all(PeerBuilder(rocksdb::RocksLog::open))
            .expect("openraft's storage suite passes");
    }
}
