//! `cachehit audit`: how caching went over the last releases, from their JSON reports.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::analysis::audit::{Audit, ReleaseReport, audit};
use crate::render::{
    self,
    markdown::{code_span, escape_text, with_code_spans},
};

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
            Err(err) => eprintln!("cachehit: warning: {err:#}"),
        }
    }
    if releases.is_empty() {
        eprintln!("cachehit: error: no readable report among the inputs");
        return Ok(ExitCode::from(2));
    }
    order_by_build_time(&mut releases);
    if let Some(last) = args.last {
        let skip = releases.len().saturating_sub(last);
        releases.drain(..skip);
    }
    let text = render_markdown(&audit(&releases));
    match &args.output {
        Some(path) => std::fs::write(path, &text)
            .with_context(|| format!("cannot write the audit to {}", path.display()))?,
        None => {
            // A closed pipe is not worth an error.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
    if args.summary {
        append_step_summary(&text)?;
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

fn read_release(path: &Path) -> anyhow::Result<ReleaseReport> {
    let report = crate::report::load::from_path(path)?;
    let label = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    Ok(ReleaseReport { label, report })
}

fn append_step_summary(text: &str) -> anyhow::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        eprintln!("cachehit: warning: --summary given but GITHUB_STEP_SUMMARY is not set");
        return Ok(());
    };
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open the job summary {}", Path::new(&path).display()))?;
    file.write_all(text.as_bytes())
        .context("cannot append to the job summary")?;
    Ok(())
}

const BAR_WIDTH: usize = 30;

/// The audit as GitHub markdown: a table, a bar chart of hit ratios, and recurring diagnoses.
pub fn render_markdown(audit: &Audit) -> String {
    let mut out = String::from("## cachehit audit\n\n");
    out.push_str(
        "| Release | Cache hit ratio | Cached / total | Rebuilt steps | Pull cost | Build time |\n",
    );
    out.push_str("|---|---:|---:|---|---:|---:|\n");
    for row in &audit.rows {
        let rebuilt = if row.rebuilt_steps.is_empty() {
            "none".to_string()
        } else {
            row.rebuilt_steps
                .iter()
                .map(|s| code_span(s))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        out.push_str(&format!(
            "| {} | {} | {}/{} | {} | {} | {} |\n",
            escape_text(&row.label),
            row.cache_hit_ratio.map_or("n/a".into(), render::percent),
            row.steps_cached,
            row.steps_total,
            rebuilt.replace('|', "\\|"),
            row.pull_bytes.map_or("n/a".into(), render::bytes),
            row.duration_ms.map_or("n/a".into(), render::duration),
        ));
    }
    // A text chart renders the same in a terminal, a PR comment and a job summary.
    out.push_str("\nCache hit ratio per release:\n\n```text\n");
    let label_width = audit
        .rows
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(0);
    for row in &audit.rows {
        // Inside a fenced block: a line of backticks could close it early.
        let label = row.label.replace('`', "'").replace(['\n', '\r'], " ");
        match row.cache_hit_ratio {
            Some(ratio) => {
                let filled = (ratio.clamp(0.0, 1.0) * BAR_WIDTH as f64).round() as usize;
                out.push_str(&format!(
                    "{label:<label_width$} {}{} {}\n",
                    "█".repeat(filled),
                    "░".repeat(BAR_WIDTH - filled),
                    render::percent(ratio)
                ));
            }
            None => out.push_str(&format!("{label:<label_width$} (no finished step)\n")),
        }
    }
    out.push_str("```\n\n");
    if audit.persistent.is_empty() {
        out.push_str("No diagnosis came back in consecutive releases.\n");
        return out;
    }
    out.push_str("### Problems that persist across releases\n\n");
    for found in &audit.persistent {
        let step = found
            .step
            .as_deref()
            .map(|s| format!(" on {}", code_span(s)))
            .unwrap_or_default();
        let wasted = found
            .wasted_ms
            .map(|ms| format!(", {} of rebuilds", render::duration(ms)))
            .unwrap_or_default();
        out.push_str(&format!(
            "- **{}** ({}){step}: in {} consecutive releases ({}){wasted}. {} Fix: {}\n",
            escape_text(found.kind.as_str()),
            escape_text(found.severity.as_str()),
            found.releases.len(),
            escape_text(&found.releases.join(", ")),
            with_code_spans(&found.message),
            with_code_spans(&found.fix),
        ));
    }
    out
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
