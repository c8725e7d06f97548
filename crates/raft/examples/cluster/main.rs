//! Three openraft nodes on Strata in one process, talking over TCP on loopback:
//! writes through the leader, a follower that catches up from the log, one that
//! catches up from a snapshot, and the leader's failure. Every acknowledged write is
//! then read back from every node's state machine.
//!
//! ```text
//! cargo run -p strata-kv-raft --example cluster [DIR] [KEYS]
//! ```
//!
//! `DIR` (a new or empty directory; a temporary one by default, removed afterwards)
//! receives the nodes' databases, `node-1` to `node-3`. `KEYS` (200 by default) is how
//! many keys the first phase writes; each later phase writes half as many new keys and
//! overwrites a quarter. `docs/raft.md` describes the run.

mod net;
mod node;
mod scenario;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use node::Result;

/// The whole run's limit: the scenario stops by itself well before.
const LIMIT: Duration = Duration::from_secs(120);

// Several workers: the stores call Strata (and its fsyncs) on openraft's tasks, and
// three nodes share this runtime.
#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map(PathBuf::from);
    let keys = match args.next() {
        Some(keys) => keys
            .parse()
            .map_err(|e| format!("KEYS must be a number, not {keys:?}: {e}"))?,
        None => 200,
    };
    let temp = match &dir {
        Some(_) => None,
        None => Some(tempfile::tempdir()?),
    };
    let root = match (&dir, &temp) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temp)) => temp.path().to_path_buf(),
        (None, None) => return Err("no directory".into()),
    };
    std::fs::create_dir_all(&root)?;
    println!("nodes' databases in {}", root.display());
    let say = |step: &str| println!("- {step}");
    let report = tokio::time::timeout(LIMIT, scenario::run(&root, keys, &say))
        .await
        .map_err(|_| format!("the scenario did not finish in {LIMIT:?}"))??;
    println!("\n{report}");
    if dir.is_some() {
        println!("the databases stay in {}", root.display());
    }
    Ok(())
}
