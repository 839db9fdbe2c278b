//! Command-line front-ends: each subcommand parses its arguments, resolves the pipeline's
//! settings, runs it, and writes the outcome to its sinks. `report` and `compare` write to
//! the terminal (`run_to_terminal`), `action` to GitHub; `audit` reads reports only.
//! Every subcommand lives in its own file and returns an exit code; `anyhow` is used here and
//! nowhere else.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod action;
mod args;
mod audit;
mod compare;
mod report;

use crate::pipeline::{self, NO_GITHUB, Settings, Warning};
use crate::sinks::terminal::{self, Destination};

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
            terminal::error(&format!("{err:#}"));
            ExitCode::from(2)
        }
    }
}

/// The process's one async runtime.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs the pipeline and writes its outcome to the terminal: warnings, the report, the gates
/// not evaluated, the gates tripped (exit 1). Exit 2 when no report came out.
fn run_to_terminal(settings: Settings, out: &args::OutputArgs) -> anyhow::Result<ExitCode> {
    let outcome = match runtime()?.block_on(pipeline::run(&settings, NO_GITHUB)) {
        Ok(outcome) => outcome,
        Err(failure) => {
            terminal::error(&failure.to_string());
            return Ok(ExitCode::from(2));
        }
    };
    let destination = Destination::resolve(out.format.map(Into::into), out.output.as_deref());
    for warning in &outcome.warnings {
        // Each warning once: those the report lists are not repeated where it is shown.
        if !(destination.shows_problems() && matches!(warning, Warning::Problem(_))) {
            terminal::warning(&warning.to_string());
        }
    }
    terminal::write_report(&outcome.report, &destination, out.output.as_deref())?;
    for missing in &outcome.gates.unevaluated {
        terminal::warning(&format!("--fail-on {missing}"));
    }
    for reason in &outcome.gates.tripped {
        terminal::gate_failed(reason);
    }
    Ok(if outcome.gates.tripped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
