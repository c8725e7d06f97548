//! The kill -9 loop, at least 100 cycles, on tmpfs when there is one.

use std::process::Command;

#[test]
fn crashtest_survives_a_hundred_kills() {
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
