//! `cachehit report`.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Build records: rawjson or plain progress logs, metadata files, history records, .dockerbuild bundles.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

pub fn run(_args: ReportArgs) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
