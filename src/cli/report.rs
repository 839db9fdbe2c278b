//! `cachehit report`: read what a build left behind and report per step.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::args::{CheckArgs, OutputArgs, ReadArgs, settings};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    /// JSON report of an earlier build (the previous release) to compare with.
    #[arg(long, value_name = "REPORT")]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub checks: CheckArgs,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    // A baseline that cannot be used is a warning here: the report comes out without it.
    let baseline = args.baseline.as_ref().map(|path| (path, false));
    crate::cli::run_to_terminal(settings(&args.read, &args.checks, baseline)?, &args.out)
}
