//! `cachehit audit`: how caching went over the last releases, from their JSON reports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::analysis::audit::{ReleaseReport, audit};
use crate::render::audit::render_markdown;
use crate::report::load::LoadError;
use crate::sinks::{job_summary, terminal};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Report files (`cachehit-report.json`) or folders of them. Releases are ordered by
    /// build time when every report records it; otherwise as given, with the files of a
    /// folder in version order (`v1.9.0` before `v1.10.0`). Each is labelled with its file stem.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// Only the last N releases.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Also append the audit to the job summary (`GITHUB_STEP_SUMMARY`).
    #[arg(long)]
    pub summary: bool,
    /// Write the markdown here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for path in &args.reports {
        collect_report_files(path, &mut files)?;
    }
    let mut releases = Vec::new();
    for file in &files {
        // One unreadable report must not hide the others.
        match read_release(file) {
            Ok(release) => releases.push(release),
            Err(err) => terminal::warning(&err.to_string()),
        }
    }
    if releases.is_empty() {
        terminal::error("no readable report among the inputs");
        return Ok(ExitCode::from(2));
    }
    order_by_build_time(&mut releases);
    if let Some(last) = args.last {
        let skip = releases.len().saturating_sub(last);
        releases.drain(..skip);
    }
    let text = render_markdown(&audit(&releases));
    terminal::write_text("audit", &text, args.output.as_deref())?;
    if args.summary {
        match std::env::var_os("GITHUB_STEP_SUMMARY") {
            Some(file) => job_summary::write_text(Path::new(&file), &text)?,
            None => terminal::warning("--summary given but GITHUB_STEP_SUMMARY is not set"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn collect_report_files(path: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if !path.is_dir() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(path)
        .with_context(|| format!("cannot list report folder {}", path.display()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    found.sort_by_cached_key(|p| version_order_key(&p.to_string_lossy()));
    files.extend(found);
    Ok(())
}

/// Oldest build first, when every report says when it was built; a stable sort keeps the
/// given order for equal times.
fn order_by_build_time(releases: &mut [ReleaseReport]) {
    let built = |r: &ReleaseReport| {
        let info = &r.report.build.build;
        info.started.or(info.completed)
    };
    if releases.iter().all(|r| built(r).is_some()) {
        releases.sort_by_key(built);
    }
}

/// Name order with runs of digits compared as numbers: `v1.9.0` sorts before `v1.10.0`.
fn version_order_key(name: &str) -> Vec<(u8, u128, String)> {
    let mut key = Vec::new();
    let mut chars = name.chars().peekable();
    while let Some(&c) = chars.peek() {
        let digits = c.is_ascii_digit();
        let mut run = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() != digits {
                break;
            }
            run.push(c);
            chars.next();
        }
        key.push(if digits {
            // Too long for a number: compare as text, after every number.
            match run.parse::<u128>() {
                Ok(n) => (0, n, String::new()),
                Err(_) => (1, 0, run),
            }
        } else {
            (2, 0, run)
        });
    }
    key
}

/// A report, labelled with its file stem; or why it cannot be read, naming the file.
fn read_release(path: &Path) -> Result<ReleaseReport, LoadError> {
    let report = crate::report::load::from_path(path)?;
    let label = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    Ok(ReleaseReport { label, report })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_files_come_in_version_order() {
        let mut names = vec![
            "reports/v1.10.0.json",
            "reports/v1.9.0.json",
            "reports/v1.9.0-rc1.json",
            "reports/v2.0.0.json",
            "reports/v1.2.0.json",
        ];
        names.sort_by_cached_key(|n| version_order_key(n));
        assert_eq!(
            names,
            [
                "reports/v1.2.0.json",
                "reports/v1.9.0-rc1.json",
                "reports/v1.9.0.json",
                "reports/v1.10.0.json",
                "reports/v2.0.0.json",
            ]
        );
    }
}
