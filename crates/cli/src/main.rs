//! `strata`: the command-line tool for Strata databases (see the library's docs).

use std::process::ExitCode;

use clap::Parser;

/// Inspect, verify and query Strata databases. Commands that open a database do so
/// read-only: safe on a database another process has open.
#[derive(Parser)]
#[command(name = "strata", version, about)]
struct Cli {
    #[command(subcommand)]
    tool: strata_cli::Tool,
}

fn main() -> ExitCode {
    match Cli::parse().tool.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
