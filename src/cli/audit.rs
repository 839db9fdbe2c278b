//! `cachehit audit`: how caching went over the last releases, from their JSON reports.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use crate::analysis::audit::{ReleaseReport, audit};
use crate::readers::input::STDIN_NAME;
use crate::render::audit::{render_markdown, render_table};
use crate::report::Report;
use crate::report::load::{LoadError, LoadErrorKind};
use crate::sinks::job_summary;
use crate::sinks::terminal::{self, Destination, Format};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Report files (`cachehit-report.json`), or folders holding them at any depth (as
    /// `actions/download-artifact` and `gh run download` leave them); `-` reads one report
    /// from standard input. Releases are ordered by build time when every report records it;
    /// otherwise as given, with the files of a folder in version order (`v1.9.0` before
    /// `v1.10.0`). A file named after its release is labelled with its name; one named
    /// `cachehit-report*.json` with the image tag, commit and build time its report records.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// Only the last N releases.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Output format [default: table on a terminal, markdown otherwise].
    #[arg(long, value_enum)]
    pub format: Option<AuditFormat>,
    /// Also append the audit to the job summary (`GITHUB_STEP_SUMMARY`), as markdown.
    #[arg(long)]
    pub summary: bool,
    /// Write the audit here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Table,
    Markdown,
}

/// Folders are walked this deep: `download-artifact` puts each artifact in its own folder,
/// inside the folder it was asked to fill.
const MAX_DEPTH: usize = 6;
/// Report files taken from folders, at most: an audit covers releases, not a file system.
const MAX_FILES: usize = 2_000;

/// A report file and where it was found.
struct Found {
    path: PathBuf,
    /// Found by walking a folder (rather than named): a file there that is not a report is
    /// passed over quietly.
    walked: bool,
}

pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for path in &args.reports {
        collect_report_files(path, &mut files)?;
    }
    let mut releases = Vec::new();
    let mut not_reports = 0;
    for file in &files {
        // One unreadable report must not hide the others.
        match read_report(&file.path) {
            Ok(report) => releases.push(Release {
                path: file.path.clone(),
                report,
            }),
            Err(err) if file.walked && !is_report_at_all(&err.kind) => not_reports += 1,
            Err(err) => terminal::warning(&err.to_string()),
        }
    }
    if not_reports > 0 {
        terminal::warning(&format!(
            "{not_reports} JSON file(s) in the folders are not cachehit reports and were passed over"
        ));
    }
    if releases.is_empty() {
        terminal::error("no readable report among the inputs");
        return Ok(ExitCode::from(2));
    }
    let mut releases = label(releases);
    order_by_build_time(&mut releases);
    if let Some(last) = args.last {
        let skip = releases.len().saturating_sub(last);
        releases.drain(..skip);
    }
    let audited = audit(&releases);
    let markdown = render_markdown(&audited);
    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let text = match args.format {
        Some(AuditFormat::Table) => table(&audited, args.output.as_deref()),
        None if to_terminal => table(&audited, args.output.as_deref()),
        _ => markdown.clone(),
    };
    // Report text (labels, step names, findings) printed where a runner may read it.
    let text = crate::render::inert::lines(&text);
    terminal::write_text("audit", &text, args.output.as_deref())?;
    if args.summary {
        match std::env::var_os("GITHUB_STEP_SUMMARY") {
            Some(file) => job_summary::write_text(Path::new(&file), &markdown)?,
            None => terminal::warning("--summary given but GITHUB_STEP_SUMMARY is not set"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The audit as a table, laid out as the report's table is where it goes.
fn table(audited: &crate::analysis::audit::Audit, output: Option<&Path>) -> String {
    let destination = Destination::resolve(Some(Format::Table), output);
    render_table(audited, &destination.table)
}

/// Whether the file may be meant as a report (an unusable one: too new, damaged, not even
/// JSON) rather than another JSON document that lives next to reports (a metadata file).
fn is_report_at_all(kind: &LoadErrorKind) -> bool {
    !matches!(
        kind,
        LoadErrorKind::OtherRecord(_) | LoadErrorKind::NoSchemaVersion
    )
}

fn read_report(path: &Path) -> Result<Report, LoadError> {
    if path.as_os_str() == "-" {
        crate::report::load::from_reader(std::io::stdin().lock(), STDIN_NAME)
    } else {
        crate::report::load::from_path(path)
    }
}

fn collect_report_files(path: &Path, files: &mut Vec<Found>) -> anyhow::Result<()> {
    if !path.is_dir() {
        files.push(Found {
            path: path.to_path_buf(),
            walked: false,
        });
        return Ok(());
    }
    let before = files.len();
    walk(path, 0, files)?;
    if files.len() == before {
        terminal::warning(&format!(
            "{}: no .json file in this folder or the folders inside it",
            path.display()
        ));
    }
    Ok(())
}

/// The `.json` files under `folder`, each folder's files in version order before its
/// sub-folders (in version order too).
fn walk(folder: &Path, depth: usize, files: &mut Vec<Found>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(folder)
        .with_context(|| format!("cannot list report folder {}", folder.display()))?;
    let mut here: Vec<PathBuf> = Vec::new();
    let mut below: Vec<PathBuf> = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if path.is_dir() {
            if !hidden && depth < MAX_DEPTH {
                below.push(path);
            }
        } else if path.extension().is_some_and(|x| x == "json") {
            here.push(path);
        }
    }
    here.sort_by_cached_key(|p| version_order_key(&p.to_string_lossy()));
    below.sort_by_cached_key(|p| version_order_key(&p.to_string_lossy()));
    for path in here {
        if files.len() >= MAX_FILES {
            bail!(
                "more than {MAX_FILES} JSON files under the folders given: name the release reports to audit"
            );
        }
        files.push(Found { path, walked: true });
    }
    for folder in below {
        walk(&folder, depth + 1, files)?;
    }
    Ok(())
}

/// A report read, before it is labelled.
struct Release {
    path: PathBuf,
    report: Report,
}

/// The name the action gives reports (`cachehit-report.json`, `cachehit-report-KEY.json`):
/// it says nothing about the release.
fn generic_name(stem: &str) -> bool {
    stem.starts_with("cachehit-report")
}

/// Labels releases: a file named after its release by that name; a report under the action's
/// name (every release asset and artifact has it) by what the report records (image tag,
/// commit, build time). Labels that would still be equal get their path.
fn label(releases: Vec<Release>) -> Vec<ReleaseReport> {
    let mut labelled: Vec<ReleaseReport> = releases
        .iter()
        .map(|r| {
            let stem = r
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| r.path.display().to_string());
            let label = if generic_name(&stem) || r.path.as_os_str() == "-" {
                recorded_label(&r.report)
                    .or_else(|| folder_name(&r.path))
                    .unwrap_or(stem)
            } else {
                stem
            };
            ReleaseReport {
                label,
                report: r.report.clone(),
            }
        })
        .collect();
    for i in 0..labelled.len() {
        let twins = labelled
            .iter()
            .filter(|other| other.label == labelled[i].label)
            .count();
        if twins > 1 {
            let path = releases[i].path.display().to_string();
            labelled[i].label = format!("{} ({path})", labelled[i].label);
        }
    }
    labelled
}

/// `v1.4.0 (3f2a1b9, 2026-11-20 10:00)`: the image tag, the commit and the build time the
/// report records, whichever it does.
fn recorded_label(report: &Report) -> Option<String> {
    let info = &report.build.build;
    let tag = info.image_names.iter().find_map(|name| image_tag(name));
    let commit = info
        .vcs_revision
        .as_deref()
        .map(|c| c.chars().take(7).collect::<String>());
    let time = info
        .started
        .or(info.completed)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string());
    let details: Vec<String> = [commit, time].into_iter().flatten().collect();
    match (tag, details.is_empty()) {
        (Some(tag), true) => Some(tag),
        (Some(tag), false) => Some(format!("{tag} ({})", details.join(", "))),
        (None, false) => {
            let mut details = details.into_iter();
            let first = details.next()?;
            let rest: Vec<String> = details.collect();
            Some(if rest.is_empty() {
                first
            } else {
                format!("{first} ({})", rest.join(", "))
            })
        }
        (None, true) => None,
    }
}

/// The tag of an image name (`ghcr.io/acme/app:v1.4.0` → `v1.4.0`), not a registry port.
fn image_tag(name: &str) -> Option<String> {
    let name = name.split('@').next()?;
    let last = name.rsplit('/').next()?;
    let (_, tag) = last.split_once(':')?;
    (!tag.is_empty()).then(|| tag.to_string())
}

/// The folder a report sits in, unless it is the artifact's or the current folder.
fn folder_name(path: &Path) -> Option<String> {
    let name = path.parent()?.file_name()?.to_string_lossy().into_owned();
    (!generic_name(&name)).then_some(name)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags_not_registry_ports() {
        assert_eq!(
            image_tag("ghcr.io/acme/app:v1.4.0").as_deref(),
            Some("v1.4.0")
        );
        assert_eq!(image_tag("localhost:5000/app").as_deref(), None);
        assert_eq!(
            image_tag("localhost:5000/app:2@sha256:abc").as_deref(),
            Some("2")
        );
    }

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
