//! `cachehit compare`: a build compared with an earlier build's JSON report.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::args::{CheckArgs, OutputArgs, ReadArgs, settings};

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// JSON report of the earlier build (`-`: standard input).
    #[arg(value_name = "BASELINE")]
    pub baseline: PathBuf,
    /// The current build: its JSON report, or its records (as for `report`).
    #[command(flatten)]
    pub current: ReadArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub checks: CheckArgs,
}

pub fn run(args: CompareArgs) -> anyhow::Result<ExitCode> {
    // `compare` exists to compare: a baseline it cannot use is an error here, not a warning.
    let baseline = Some((&args.baseline, true));
    crate::cli::run_to_terminal(settings(&args.current, &args.checks, baseline)?, &args.out)
}
