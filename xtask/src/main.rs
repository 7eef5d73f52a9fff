//! Maintainer tasks for metrics-hub, run as `cargo xtask <task>`.
//!
//! - `ci`: everything CI checks, in the order that fails fastest.
//! - `release VERSION [--execute]`: a lockstep release, a dry run unless `--execute`.
//!
//! The logic lives in pure functions with unit tests; this file only dispatches.

mod bench;
mod ci;
mod cmd;
mod release;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  bench [--json] [--replay-only] [OPERATION...]
                              each client and a bytes-only reqwest floor against a replay
                              server (calls/s, CPU time per call) and against its emulator
                              (calls/s, ratio, peak memory); the exporter's /metrics with
                              100 000 series against prometheus-client's encoder and
                              under 10 concurrent scrapers (`Exporter`); --json for machines
  ci                          fmt, clippy, each facade feature alone, tests, docs,
                              real-server conformance, cargo package
  release VERSION [--execute] lockstep version bump, CHANGELOG section, publish order,
                              cargo package; a dry run that changes nothing unless --execute";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]).map_err(TaskError::Failed),
        Some("ci") => ci::run(&args[1..]),
        Some("release") => release::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Why a task stopped.
#[derive(Debug)]
enum TaskError {
    /// The command line was wrong; exit 2 with the usage.
    Usage(String),
    /// A step failed; exit 1.
    Failed(String),
}

impl TaskError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Failed(_) => 1,
        }
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usage(message) => write!(f, "{message}\n\n{USAGE}"),
            Self::Failed(message) => f.write_str(message),
        }
    }
}
