//! The kill -9 loop, at least 100 cycles, on tmpfs when there is one.

use std::process::Command;
use std::sync::Mutex;

/// The two tests run one at a time: one holds a database open in this process while the
/// other spawns children, and a child forked in that window briefly inherits the open
/// `LOCK` descriptor until it execs — the likely cause of a `Locked` seen once by the
/// next opener under a loaded machine.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn crashtest_survives_a_hundred_kills() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let iterations: u64 = std::env::var("STRATA_CRASHTEST_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "crashtest",
            "--iterations",
            &iterations.to_string(),
            "--seed",
            "20261124",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "crashtest failed:\n{stdout}\n{stderr}"
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("crashtest: "))
        .expect("a summary line");
    assert!(
        summary.starts_with(&format!("crashtest: {iterations} cycles")),
        "{summary}"
    );
    // The children really wrote: thousands of acknowledged writes were checked.
    let acked: u64 = summary
        .split(": ")
        .nth(2)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("an acknowledged-write count");
    assert!(acked > iterations * 10, "{summary}");
}

/// The verifier is not vacuous: a value nobody wrote (as a resurrected or invented
/// write would be) fails the next cycle.
#[test]
fn crashtest_notices_a_value_that_was_never_written() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let run = |iterations: &str| {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["crashtest", "--iterations", iterations, "--seed", "3"])
            .arg("--dir")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    assert!(run("2").status.success());
    let db = strata::Db::open(dir.path().join("db")).unwrap();
    db.put("key9999", "never written by the workload").unwrap();
    db.close().unwrap();
    let out = run("1");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("key9999"), "{stderr}");
}
