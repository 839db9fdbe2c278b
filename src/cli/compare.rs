//! `cachehit compare`, and the `--baseline` / `--fail-on` options `report` shares with it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::analysis::{self, compare::check_baseline_version, gates};
use crate::cli::report::{OutputArgs, ReadArgs, emit, read_report};
use crate::model::Problem;
use crate::report::Report;

#[derive(Debug, Default, clap::Args)]
pub struct BaselineArgs {
    /// JSON report of an earlier build (the previous release) to compare with.
    #[arg(long, value_name = "REPORT")]
    pub baseline: Option<PathBuf>,
    /// Exit 1 when a condition holds: hit-ratio-drop>POINTS, hit-ratio<PERCENT,
    /// pull-bytes>SIZE, rebuilt>N, regression, regression:STEP, diagnosis:KIND, failed.
    /// Comma-separated or repeated.
    #[arg(long, value_name = "CONDITION")]
    pub fail_on: Vec<String>,
    /// The Dockerfile, to point steps and findings at their lines when the records do not.
    #[arg(long, value_name = "PATH")]
    pub dockerfile: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// JSON report of the earlier build.
    #[arg(value_name = "BASELINE")]
    pub baseline: PathBuf,
    /// The current build: its JSON report, or its records (as for `report`).
    #[command(flatten)]
    pub current: ReadArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    #[arg(long, value_name = "CONDITION")]
    pub fail_on: Vec<String>,
    #[arg(long, value_name = "PATH")]
    pub dockerfile: Option<PathBuf>,
}

pub fn run(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let baseline = BaselineArgs {
        baseline: Some(args.baseline),
        fail_on: args.fail_on,
        dockerfile: args.dockerfile,
    };
    run_with_baseline(&args.current, &args.out, &baseline)
}

/// Reads, compares, renders, and turns tripped gates into exit code 1.
pub fn run_with_baseline(
    read: &ReadArgs,
    out: &OutputArgs,
    baseline: &BaselineArgs,
) -> anyhow::Result<ExitCode> {
    let gates = gates::parse_gates(&baseline.fail_on)?;
    let Some(mut report) = read_report(read)? else {
        return Ok(ExitCode::from(2));
    };
    if let Some(path) = &baseline.baseline {
        match load_baseline(path) {
            Ok(previous) => {
                analysis::analyze_against(&mut report, &previous, &path.display().to_string());
            }
            Err(message) => {
                eprintln!(
                    "cachehit: warning: {}: {message}; reporting without comparison",
                    path.display()
                );
                report.build.problems.push(Problem {
                    source: path.display().to_string(),
                    message: format!("{message}; reported without comparison"),
                });
            }
        }
    }
    if let Some(path) = &baseline.dockerfile {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the Dockerfile {}", path.display()))?;
        analysis::dockerfile::locate_lines(&mut report, &text);
    }
    for problem in report
        .build
        .problems
        .iter()
        .filter(|p| p.message.contains("another image"))
    {
        eprintln!("cachehit: warning: {}: {}", problem.source, problem.message);
    }
    emit(&report, out)?;
    let tripped = gates::evaluate(&gates, &report);
    for reason in &tripped {
        eprintln!("cachehit: gate failed: {reason}");
    }
    Ok(if tripped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A baseline report, or why it cannot serve as one.
pub fn load_baseline(path: &Path) -> Result<Report, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read the baseline: {e}"))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("the baseline is not JSON: {e}"))?;
    let version = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or("the baseline is not a cachehit report (no schema_version)")?;
    check_baseline_version(u32::try_from(version).unwrap_or(u32::MAX))
        .map_err(|e| e.to_string())?;
    serde_json::from_value(value).map_err(|e| format!("the baseline report is damaged: {e}"))
}
