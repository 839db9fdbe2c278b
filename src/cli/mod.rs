//! Command-line interface: parses arguments and hands each subcommand to its module.
//! Every subcommand lives in its own file and returns an exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod action;
mod audit;
mod compare;
mod report;

#[derive(Debug, Parser)]
#[command(
    name = "cachehit",
    version,
    about = "Per-step BuildKit cache report: what was cached, what was rebuilt, why, and what it cost."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read what a build left behind and report, per step, what was cached and rebuilt.
    Report(report::ReportArgs),
    /// GitHub Action entry point: reads everything from the runner's environment.
    Action(action::ActionArgs),
    /// Compare a build with an earlier build's JSON report: per-step changes, pull cost, findings.
    Compare(compare::CompareArgs),
    /// Over several releases' reports: figures per release and the problems that persist.
    Audit(audit::AuditArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Report(args) => report::run(args),
        Command::Action(args) => action::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Audit(args) => audit::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("cachehit: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
