//! `cachehit report`: read what a build left behind and report per step.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::readers::{self, InputFormat, ReadOptions};
use crate::render;
use crate::report::Report;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Markdown,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// Build records: rawjson or plain progress logs, metadata files, provenance, history
    /// records, `history inspect` JSON, .dockerbuild bundles. Several files of one build combine.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Read every input as this format instead of detecting it from the content.
    #[arg(long, value_enum)]
    pub input_format: Option<InputFormat>,
    /// Bake metadata with several targets: the target to report on.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// .dockerbuild bundle with several records: the record (ref) to report on.
    #[arg(long, value_name = "REF")]
    pub record: Option<String>,
}

impl ReadArgs {
    pub fn options(&self) -> ReadOptions {
        ReadOptions {
            forced_format: self.input_format,
            bake_target: self.target.clone(),
            record_ref: self.record.clone(),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub baseline: crate::cli::compare::BaselineArgs,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    crate::cli::compare::run_with_baseline(&args.read, &args.out, &args.baseline)
}

/// Reads and analyzes the inputs; prints problems as warnings. `None` when nothing was readable
/// (the error has been printed).
pub fn read_report(args: &ReadArgs) -> anyhow::Result<Option<Report>> {
    let build = match readers::read_inputs(&args.inputs, &args.options()) {
        Ok(build) => build,
        Err(e) => {
            eprintln!("cachehit: error: {e}");
            return Ok(None);
        }
    };
    for problem in &build.problems {
        eprintln!("cachehit: warning: {}: {}", problem.source, problem.message);
    }
    Ok(Some(crate::analysis::analyze(build)))
}

pub fn emit(report: &Report, out: &OutputArgs) -> anyhow::Result<()> {
    let to_terminal = out.output.is_none() && std::io::stdout().is_terminal();
    let format = out.format.unwrap_or(if to_terminal {
        OutputFormat::Table
    } else {
        OutputFormat::Json
    });
    let text = match format {
        OutputFormat::Table => {
            let width = to_terminal.then(terminal_width).flatten();
            render::table::render(report, width)
        }
        OutputFormat::Markdown => render::markdown::render(report),
        OutputFormat::Json => render::json::render(report),
    };
    match &out.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write the report to {}", path.display()))?,
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            if let Err(e) = stdout.write_all(text.as_bytes())
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Err(e).context("cannot write to standard output");
            }
        }
    }
    Ok(())
}

fn terminal_width() -> Option<u16> {
    std::env::var("COLUMNS").ok()?.parse().ok()
}
