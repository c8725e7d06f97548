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
    // Transactions ran too: own-key ones among the writes, and transfers, some of them
    // refused with a conflict and retried.
    let number_before = |what: &str| -> u64 {
        let at = summary.find(what).expect(what);
        let digits: String = summary[..at]
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .chars()
            .rev()
            .collect::<String>()
            .parse()
            .expect(what)
    };
    assert!(
        number_before(" of them transactions") > iterations,
        "{summary}"
    );
    let transfers: u64 = summary
        .split("transfers: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a transfer count");
    assert!(transfers > iterations, "{summary}");
    assert!(
        number_before(" attempts refused with a conflict") > 0,
        "{summary}"
    );
    // Merge operands too: appends to the per-thread merge logs, checked in order.
    assert!(
        number_before(" appends acknowledged, all present in order") > iterations,
        "{summary}"
    );
}

/// The transfer check is not vacuous: one account changed alone (half a transfer, as a
/// commit torn across the two keyspaces would leave) fails the next cycle, whether the
/// child reads it first or the parent does after the kill.
#[test]
fn crashtest_notices_half_a_transfer() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let run = |iterations: &str| {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["crashtest", "--iterations", iterations, "--seed", "4"])
            .arg("--dir")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let first = run("2");
    assert!(first.status.success(), "{first:?}");
    let db = strata::Db::open(dir.path().join("db")).unwrap();
    let a = db
        .get("acct-a")
        .unwrap()
        .expect("two cycles made transfers");
    let a = String::from_utf8(a.to_vec()).unwrap();
    let (n, rest) = a.split_once('.').unwrap();
    let n: u64 = n.parse().unwrap();
    db.put("acct-a", format!("{}.{rest}", n + 1)).unwrap();
    db.close().unwrap();
    let out = run("1");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("two different transfers"), "{stderr}");
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
