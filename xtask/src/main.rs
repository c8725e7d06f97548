//! `cargo xtask`: Strata's developer and inspection commands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
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
        Command::Bench { args } => bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
