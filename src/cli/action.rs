//! `cachehit action`: the GitHub Action's entry point. Everything comes from the runner's
//! environment (see `github::runner`); it works the same inside the container and outside.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::analysis::{self, gates};
use crate::github::api::{ApiError, GitHub, RetryPolicy};
use crate::github::baseline::{AutoQuery, BaselineOutcome, find_auto};
use crate::github::comment;
use crate::github::runner::{Runner, annotation, append, pull_request_number, write_output};
use crate::model::{StepStatus, Transition};
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
    let gates = match gates::parse_gates(&runner.input_list("fail-on")) {
        Ok(g) => g,
        Err(e) => {
            say(&format!("::error title=cachehit::{e}"));
            return Ok(ExitCode::from(2));
        }
    };

    // Inputs: the metadata output comes inline; logs and records are paths in the workspace.
    let mut paths: Vec<PathBuf> = Vec::new();
    let temp = tempfile::Builder::new()
        .prefix("cachehit-")
        .tempdir_in(runner.temp_dir())
        .or_else(|_| tempfile::tempdir())?;
    if let Some(metadata) = runner.input("metadata")
        && metadata != "{}"
    {
        let path = temp.path().join("metadata.json");
        std::fs::write(&path, metadata)?;
        paths.push(path);
    }
    for name in ["build-log", "build-record"] {
        paths.extend(runner.input_list(name).iter().map(|p| runner.resolve(p)));
    }
    if paths.is_empty() {
        say(
            "::error title=cachehit::no build records given: set `build-log` (a rawjson or plain progress log), `build-record` or `metadata`",
        );
        return Ok(ExitCode::from(2));
    }
    let build = match read_inputs(&paths, &ReadOptions::default()) {
        Ok(build) => build,
        Err(e) => {
            say(&format!(
                "::error title=cachehit::{}",
                crate::github::runner::escape_data(&e.to_string())
            ));
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
        say(&format!(
            "::warning title=cachehit::{}",
            crate::github::runner::escape_data(&format!("{}: {}", problem.source, problem.message))
        ));
    }
    let mut report = analysis::analyze(build);
    if let Some(reference) = runner.input("image") {
        fetch_image(&reference, token.as_deref(), &mut report);
    }

    let github = match (&token, runner.repository()) {
        (token, Some((owner, repo))) => Some(GitHub::new(
            &runner.api_url(),
            token.as_deref(),
            &owner,
            &repo,
            retry_policy(),
        )?),
        _ => None,
    };
    let event = runner.event().unwrap_or(serde_json::Value::Null);
    let baseline_note = apply_baseline(&runner, github.as_ref(), &event, &mut report).await;

    let dockerfile = runner
        .input("dockerfile")
        .unwrap_or_else(|| "Dockerfile".into());
    if let Ok(text) = std::fs::read_to_string(runner.resolve(&dockerfile)) {
        analysis::dockerfile::locate_lines(&mut report, &text);
    }
    let report_path = runner
        .input("report-path")
        .map(|p| runner.resolve(&p))
        .unwrap_or_else(|| runner.temp_dir().join("cachehit-report.json"));
    std::fs::write(&report_path, crate::render::json::render(&report))?;
    for d in &report.diagnoses {
        let level = if d.severity == "notice" {
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

    let mut summary = markdown::render(&report);
    if let Some(note) = &baseline_note {
        summary.push_str(&format!("\n_{}_\n", markdown::escape_text(note)));
    }
    if let Some(file) = runner.summary_file() {
        append(&file, &summary)?;
    }

    let comment_url = post_comment(
        &runner,
        github.as_ref(),
        &event,
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
            ("report-path", report_path.display().to_string()),
            ("comment-url", comment_url.unwrap_or_default()),
        ];
        for (name, value) in outputs {
            write_output(&file, name, &value)?;
        }
    }

    let tripped = gates::evaluate(&gates, &report);
    for reason in &tripped {
        say(&format!(
            "::error title=cachehit gate::{}",
            crate::github::runner::escape_data(reason)
        ));
    }
    Ok(if tripped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
                    .get("repository")
                    .and_then(|r| r.get("default_branch"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string),
                previous_tag: None,
                current_run_id: runner.run_id(),
            };
            match find_auto(github, &query).await {
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
            Err(message) => {
                say(&format!(
                    "::warning title=cachehit::{}",
                    crate::github::runner::escape_data(&format!("baseline {path}: {message}"))
                ));
                Some(format!("No baseline: {path}: {message}."))
            }
        },
    }
}

/// Posts or updates the sticky comment; failures become warnings, never a failed step.
async fn post_comment(
    runner: &Runner,
    github: Option<&GitHub>,
    event: &serde_json::Value,
    report: &Report,
    note: Option<&str>,
) -> Option<String> {
    let mode = runner.input("comment").unwrap_or_else(|| "on".into());
    let issue = pull_request_number(event)?;
    if mode == "off" {
        return None;
    }
    let Some(github) = github else {
        say(
            "::warning title=cachehit::no GITHUB_REPOSITORY or token: the pull-request comment was skipped",
        );
        return None;
    };
    let key = runner
        .input("comment-key")
        .unwrap_or_else(|| "default".into());
    let noteworthy = !report.diagnoses.is_empty()
        || report
            .build
            .steps
            .iter()
            .any(|s| s.transition == Some(Transition::Regressed));
    if mode == "on-regression" && !noteworthy {
        // Still refresh a comment an earlier, worse build left, so it does not mislead.
        match github.list_comments(issue).await {
            Ok(comments)
                if comments
                    .iter()
                    .any(|c| c.body.starts_with(&comment::marker(&key))) => {}
            _ => return None,
        }
    }
    let body = comment::body(report, &key, note);
    match comment::upsert(github, issue, &key, &body).await {
        Ok(c) => Some(c.html_url),
        Err(e @ ApiError::Forbidden { .. }) => {
            say(&format!(
                "::warning title=cachehit::{}",
                crate::github::runner::escape_data(&format!(
                    "{e}. Fork pull requests and read-only tokens cannot comment; the report is in the job summary."
                ))
            ));
            None
        }
        Err(e) => {
            say(&format!(
                "::warning title=cachehit::{}",
                crate::github::runner::escape_data(&format!(
                    "the pull-request comment was not posted: {e}"
                ))
            ));
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
            say(&format!(
                "::warning title=cachehit::{}",
                crate::github::runner::escape_data(&format!("image layers unavailable: {e}"))
            ));
            report.build.problems.push(crate::model::Problem {
                source: reference.to_string(),
                message: format!("image layers unavailable: {e}"),
            });
        }
    }
}
