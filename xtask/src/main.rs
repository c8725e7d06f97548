//! `cargo xtask`: Strata's developer and inspection commands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod checkpoint_bench;
mod crashtest;
mod demo;
mod engine_demo;

/// Strata's developer and inspection commands.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Demonstrate the engine (load, read, scan, reopen, with timings and the shape of the
    /// tree), then the write-ahead log on its own: write a log, read it back, tear its
    /// tail as a crash would, flip a byte, and show each recovery mode.
    Demo(demo::Args),
    /// The tools users install as `strata` (package strata-cli): wal, sst, manifest,
    /// db, verify, get, scan, stats, checkpoint, backup.
    #[command(flatten)]
    Tool(strata_cli::Tool),
    /// Kill -9 a process writing to a database at random moments, over and over, and
    /// verify after each kill that nothing acknowledged was lost.
    Crashtest(crashtest::Args),
    /// Measure what writers see while a large database (default 1 GiB) is checkpointed
    /// and backed up, and what a second backup copies (the figures in docs/backup.md).
    CheckpointBench(checkpoint_bench::Args),
    /// The process `crashtest` kills (internal).
    #[command(hide = true)]
    CrashtestChild(crashtest::ChildArgs),
    /// Run the db_bench-style comparison with peer engines (benches/, strata-bench).
    ///
    /// `cargo xtask bench [--features peers|rocksdb] [--engine all] [--num N]
    /// [--benchmarks a,b] ...`: every argument goes to strata-bench (see
    /// `cargo xtask bench --help`); without arguments: 200k keys, Strata only, a
    /// temporary directory.
    #[command(disable_help_flag = true)]
    Bench {
        /// Arguments for strata-bench, plus `--features LIST` to compile peers in.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Tool(tool) => tool.run(),
        Command::Crashtest(args) => crashtest::run(&args).map_err(|e| e.to_string().into()),
        Command::CrashtestChild(args) => return crashtest::child(&args),
        Command::Bench { args } => bench::run(&args),
        Command::CheckpointBench(args) => checkpoint_bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
