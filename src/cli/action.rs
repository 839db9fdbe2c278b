//! `cachehit action`: the GitHub Action's entry point. Everything comes from the runner's
//! environment (see `github::runner`); it works the same inside the container and outside.

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::analysis::{self, gates};
use crate::github::api::{ApiError, GitHub, RetryPolicy};
use crate::github::baseline::{self, AutoQuery, BaselineOutcome, find_auto};
use crate::github::comment;
use crate::github::runner::{
    Runner, annotation, append, escape_data, pull_request_number, write_output,
};
use crate::model::StepStatus;
use crate::readers::{ReadOptions, read_inputs};
use crate::render::markdown;
use crate::report::Report;

#[derive(Debug, clap::Args)]
pub struct ActionArgs {}

pub fn run(_args: ActionArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_action(Runner::from_env()))
}

fn say(line: &str) {
    println!("{line}");
}

async fn run_action(runner: Runner) -> anyhow::Result<ExitCode> {
    let token = runner
        .input("github-token")
        .or_else(|| std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty()));
    if let Some(token) = &token {
        // Before anything else is printed: the runner hides it from every later log line.
        say(&format!("::add-mask::{token}"));
    }
    // Configuration errors fail the step: a misconfigured step must not pass unnoticed.
    let gates = match gates::parse_gates(&runner.input_list("fail-on")) {
        Ok(g) => g,
        Err(e) => {
            error(&format!("input `fail-on`: {e}"));
            return Ok(ExitCode::from(2));
        }
    };
    let mode = comment_mode(&runner);
    let key = runner
        .input("comment-key")
        .unwrap_or_else(|| "default".into());

    // Inputs: the metadata output comes inline; logs and records are paths in the workspace.
    let mut paths: Vec<PathBuf> = Vec::new();
    let temp = tempfile::Builder::new()
        .prefix("cachehit-")
        .tempdir_in(runner.temp_dir())
        .or_else(|_| tempfile::tempdir())
        .context("cannot create a temporary folder")?;
    if let Some(metadata) = runner.input("metadata")
        && metadata != "{}"
    {
        let path = temp.path().join("metadata.json");
        std::fs::write(&path, metadata)
            .with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    for name in ["build-log", "build-record"] {
        paths.extend(runner.input_list(name).iter().map(|p| runner.resolve(p)));
    }
    if paths.is_empty() {
        error(
            "no build records given: set `build-log` (a rawjson or plain progress log), `build-record` or `metadata`",
        );
        return Ok(ExitCode::from(2));
    }
    let build = match read_inputs(&paths, &ReadOptions::default()) {
        Ok(build) => build,
        Err(e) => {
            error(&e.to_string());
            if let Some(summary) = runner.summary_file() {
                let _ = append(
                    &summary,
                    &format!(
                        "### cachehit\n\nNo report: {}\n",
                        markdown::escape_text(&e.to_string())
                    ),
                );
            }
            return Ok(ExitCode::from(2));
        }
    };
    for problem in &build.problems {
        warn(&format!("{}: {}", problem.source, problem.message));
    }
    let mut report = analysis::analyze(build);
    if let Some(reference) = runner.input("image") {
        fetch_image(&reference, token.as_deref(), &mut report);
    }

    let github = match runner.repository() {
        Some((owner, repo)) => match GitHub::new(
            &runner.api_url(),
            token.as_deref(),
            &owner,
            &repo,
            retry_policy(),
        ) {
            Ok(github) => Some(github),
            Err(e) => {
                // GitHub problems never fail the step: the report comes out without it.
                warn(&e.to_string());
                None
            }
        },
        None => None,
    };
    let event = runner.event().unwrap_or(serde_json::Value::Null);
    let location = report_location(&runner, &baseline::report_file_name(&key));
    // The file name this step uploads is the one to look for in earlier runs' artifacts.
    let report_file = location
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| baseline::report_file_name(&key));
    let baseline_note =
        apply_baseline(&runner, github.as_ref(), &event, &report_file, &mut report).await;

    let dockerfile = runner
        .input("dockerfile")
        .unwrap_or_else(|| "Dockerfile".into());
    if let Ok(text) = std::fs::read_to_string(runner.resolve(&dockerfile)) {
        analysis::dockerfile::locate_lines(&mut report, &text);
    }

    // From here on, a file that cannot be written is reported and the others are still
    // written: the report file must survive a broken summary or output file, and the
    // outputs must still point at it.
    let mut failures: Vec<String> = Vec::new();
    if location.outside_workspace {
        warn(&format!(
            "report-path {} is outside the workspace ({}): only the workspace is shared between \
             the action's container and the steps after it, so actions/upload-artifact cannot \
             find the report there; use a path inside the workspace",
            location.path.display(),
            runner.workspace().display()
        ));
    }
    let report_written = write_report(&location.path, &report);
    if let Err(e) = &report_written {
        failures.push(format!("{e:#}"));
    }
    for d in &report.diagnoses {
        let level = if d.severity == crate::report::Severity::Notice {
            "notice"
        } else {
            "warning"
        };
        say(&annotation(
            level,
            Some(&dockerfile),
            d.dockerfile_line,
            &format!("cachehit: {}", d.kind),
            &format!("{} Fix: {}", d.message, d.fix),
        ));
    }

    if let Some(file) = runner.summary_file() {
        let summary = summary_within(&report, baseline_note.as_deref(), SUMMARY_TARGET_BYTES);
        if let Err(e) = append(&file, &summary) {
            failures.push(format!(
                "cannot write the job summary to {}: {e}",
                file.display()
            ));
        }
    }

    let comment_url = post_comment(
        github.as_ref(),
        &event,
        mode,
        &key,
        &report,
        baseline_note.as_deref(),
    )
    .await;

    if let Some(file) = runner.output_file() {
        let s = &report.summary;
        let rebuilt: Vec<&str> = report
            .build
            .steps
            .iter()
            .filter(|st| matches!(st.status, StepStatus::Rebuilt | StepStatus::Failed))
            .map(|st| st.name.as_str())
            .collect();
        let outputs = [
            (
                "cache-hit-ratio",
                s.cache_hit_ratio
                    .map(|r| format!("{r:.4}"))
                    .unwrap_or_default(),
            ),
            ("steps-cached", s.steps_cached.to_string()),
            ("steps-total", s.steps_total.to_string()),
            ("rebuilt-steps", rebuilt.join("\n")),
            (
                "pull-bytes",
                s.pull_bytes.map(|b| b.to_string()).unwrap_or_default(),
            ),
            (
                "report-path",
                if report_written.is_ok() {
                    location.output.clone()
                } else {
                    String::new()
                },
            ),
            ("comment-url", comment_url.unwrap_or_default()),
        ];
        for (name, value) in outputs {
            if let Err(e) = write_output(&file, name, &value) {
                failures.push(format!("{e:#}"));
                break;
            }
        }
    }

    let kept = if report_written.is_ok() {
        format!("; the report was written to {}", location.path.display())
    } else {
        String::new()
    };
    for failure in &failures {
        error(&format!("{failure}{kept}"));
    }
    let tripped = gates::evaluate(&gates, &report);
    for reason in &tripped {
        say(&format!(
            "::error title=cachehit gate::{}",
            escape_data(reason)
        ));
    }
    Ok(if !failures.is_empty() {
        ExitCode::from(2)
    } else if !tripped.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn warn(message: &str) {
    say(&format!(
        "::warning title=cachehit::{}",
        escape_data(message)
    ));
}

fn error(message: &str) {
    say(&format!("::error title=cachehit::{}", escape_data(message)));
}

/// The `comment` input: `on`, `off`, `on-regression`, or a YAML boolean.
#[derive(Clone, Copy, Debug, PartialEq)]
enum CommentMode {
    On,
    Off,
    OnRegression,
}

fn comment_mode(runner: &Runner) -> CommentMode {
    let Some(value) = runner.input("comment") else {
        return CommentMode::On;
    };
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" => CommentMode::On,
        "off" | "false" => CommentMode::Off,
        "on-regression" => CommentMode::OnRegression,
        _ => {
            warn(&format!(
                "input `comment`: `{value}` is not one of on, off, on-regression, true, false; \
                 using the default, on"
            ));
            CommentMode::On
        }
    }
}

/// Where the report goes, and the path the `report-path` output gives for it.
struct ReportLocation {
    path: PathBuf,
    /// Relative to the workspace when inside it: the action runs in a container whose
    /// workspace is mounted elsewhere than on the host, and the steps after it start in the
    /// workspace, so only a relative path means the same file to both.
    output: String,
    outside_workspace: bool,
}

/// The `report-path` input (relative paths are in the workspace), else the report file name
/// in the workspace root. Not RUNNER_TEMP: a Docker action either does not see it or sees it
/// under another path than the host's later steps.
fn report_location(runner: &Runner, default_name: &str) -> ReportLocation {
    let workspace = normalize(&runner.workspace());
    let path = normalize(
        &runner
            .input("report-path")
            .map(|p| runner.resolve(&p))
            .unwrap_or_else(|| runner.workspace().join(default_name)),
    );
    match path.strip_prefix(&workspace) {
        Ok(relative) if !relative.as_os_str().is_empty() => ReportLocation {
            output: relative.to_string_lossy().into_owned(),
            path,
            outside_workspace: false,
        },
        _ => ReportLocation {
            output: path.to_string_lossy().into_owned(),
            path,
            outside_workspace: true,
        },
    }
}

/// `.` and `..` resolved without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn write_report(path: &Path, report: &Report) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| {
            format!(
                "cannot create the folder of the report {}",
                parent.display()
            )
        })?;
    }
    std::fs::write(path, crate::render::json::render(report))
        .with_context(|| format!("cannot write the report to {}", path.display()))
}

/// GitHub refuses a step's summary above 1 MiB (counted in bytes).
const SUMMARY_LIMIT_BYTES: usize = 1024 * 1024;
/// What cachehit writes at most, well under the limit.
const SUMMARY_TARGET_BYTES: usize = SUMMARY_LIMIT_BYTES - 64 * 1024;
/// A baseline note longer than this is cut: it is one sentence, or an error message.
const NOTE_MAX_CHARS: usize = 2_000;

/// The markdown report plus the baseline note, within `max_bytes` bytes: the table is cut
/// first, the summary line kept. The renderer counts characters, so its budget shrinks
/// until the bytes fit.
fn summary_within(report: &Report, note: Option<&str>, max_bytes: usize) -> String {
    let note = note
        .map(|n| {
            let n: String = n.chars().take(NOTE_MAX_CHARS).collect();
            format!("\n_{}_\n", markdown::escape_text(&n))
        })
        .unwrap_or_default();
    let target = max_bytes.saturating_sub(note.len());
    // A character is at least one byte: a budget of `target` characters is the most that
    // can fit.
    let mut budget = target;
    let mut text = markdown::render_within(report, budget);
    for _ in 0..16 {
        if text.len() <= target {
            break;
        }
        let scaled = (budget as u128 * target as u128 / text.len() as u128) as usize;
        budget = scaled.saturating_sub(scaled / 100 + 1);
        text = markdown::render_within(report, budget);
    }
    if text.len() > target {
        let mut cut = target;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text.push_str(&note);
    text
}

/// Tests shrink the waits with `CACHEHIT_RETRY_BASE_MS`.
fn retry_policy() -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    if let Some(ms) = std::env::var("CACHEHIT_RETRY_BASE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        policy.first_backoff = Duration::from_millis(ms);
        policy.max_wait = Duration::from_millis(ms * 8);
    }
    policy
}

/// Compares with the baseline the `baseline` input names; returns a note when there is none.
async fn apply_baseline(
    runner: &Runner,
    github: Option<&GitHub>,
    event: &serde_json::Value,
    report_file: &str,
    report: &mut Report,
) -> Option<String> {
    let choice = runner.input("baseline").unwrap_or_else(|| "auto".into());
    match choice.as_str() {
        "none" => None,
        "auto" => {
            let Some(github) = github else {
                return Some("No baseline: no repository or token to look it up with.".into());
            };
            let query = AutoQuery {
                artifact_name: runner.input("artifact-name").unwrap_or_default(),
                default_branch: event
                    .pointer("/repository/default_branch")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string),
                current_tag: runner.current_tag(event),
                current_run_id: runner.run_id(),
                report_file: report_file.to_string(),
            };
            let search = find_auto(github, &query).await;
            for problem in &search.problems {
                warn(&format!("baseline search: {problem}"));
            }
            match search.outcome {
                BaselineOutcome::Found {
                    report: baseline,
                    source,
                } => {
                    analysis::analyze_against(report, &baseline, &source);
                    None
                }
                BaselineOutcome::NotFound { reason } => {
                    Some(format!("{reason}. Compared with nothing."))
                }
            }
        }
        path => match crate::cli::compare::load_baseline(&runner.resolve(path)) {
            Ok(baseline) => {
                analysis::analyze_against(report, &baseline, path);
                None
            }
            Err(e) => {
                let message = e.detail();
                warn(&format!("baseline {path}: {message}"));
                Some(format!("No baseline: {path}: {message}."))
            }
        },
    }
}

/// Posts or updates the sticky comment on pull-request events; failures become warnings,
/// never a failed step.
async fn post_comment(
    github: Option<&GitHub>,
    event: &serde_json::Value,
    mode: CommentMode,
    key: &str,
    report: &Report,
    note: Option<&str>,
) -> Option<String> {
    let issue = pull_request_number(event)?;
    if mode == CommentMode::Off {
        return None;
    }
    let Some(github) = github else {
        warn("no GITHUB_REPOSITORY or token: the pull-request comment was skipped");
        return None;
    };
    let result = async {
        let owner = comment::Owner::of(github).await?;
        let noteworthy = !report.diagnoses.is_empty()
            || report
                .comparison
                .as_ref()
                .is_some_and(|c| c.steps_regressed > 0);
        // Still refresh a comment an earlier, worse build left, so it does not mislead.
        if mode == CommentMode::OnRegression
            && !noteworthy
            && comment::find_ours(github, issue, key, &owner)
                .await?
                .is_empty()
        {
            return Ok(None);
        }
        let body = comment::body(report, key, note);
        comment::upsert(github, issue, key, &body, &owner)
            .await
            .map(|c| Some(c.html_url))
    }
    .await;
    match result {
        Ok(url) => url,
        Err(e @ ApiError::Forbidden { .. }) => {
            warn(&format!(
                "{e}. Fork pull requests and read-only tokens cannot comment; the report is in the job summary."
            ));
            None
        }
        Err(e) => {
            warn(&format!("the pull-request comment was not posted: {e}"));
            None
        }
    }
}

/// Layers of the pushed image, for sizes and the pull cost. ghcr.io takes the job's token.
fn fetch_image(reference: &str, token: Option<&str>, report: &mut Report) {
    use crate::sources::registry::{Credentials, ImageRef, RegistryClient};
    let result = ImageRef::parse(reference).and_then(|image| {
        let credentials = (image.registry == "ghcr.io")
            .then_some(token)
            .flatten()
            .map(|t| Credentials {
                username: "x-access-token".into(),
                password: t.to_string(),
            });
        RegistryClient::new(credentials, false, Duration::from_secs(20))
            .images(&image)
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(images) if !images.is_empty() => {
            report.build.images = images;
            report.summary.image_bytes = analysis::summary::summarize(&report.build).image_bytes;
        }
        Ok(_) => {}
        Err(e) => {
            warn(&format!("image layers unavailable: {e}"));
            report.build.problems.push(crate::model::Problem {
                source: reference.to_string(),
                kind: crate::model::ProblemKind::ImageSource,
                message: format!("image layers unavailable: {e}"),
            });
        }
    }
}
