//! `cachehit action`: the GitHub Action's front-end. Everything comes from the runner's
//! environment (`github::runner`): every input of action.yml is read once into
//! [`ActionInputs`] and resolved into the pipeline's settings before any work; the outcome
//! goes to GitHub's sinks (the report file, annotations, the job summary, the pull-request
//! comment, the outputs). It works the same inside the action's container and outside.
//!
//! One step can report several builds: the targets of bake metadata (one report each, one
//! section each in the comment and the summary; `target` picks one), or the build-record
//! artifacts of a run (`build-record: artifact`, and on `workflow_run` events by default:
//! the run that triggered the job). How the builds are found is in [`units`].

mod units;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::analysis::gates::{GateSyntaxError, parse_gates};
use crate::github::api::{GitHub, RetryPolicy};
use crate::github::baseline::{AutoQuery, report_file_name};
use crate::github::records::{RecordRun, pull_request_of_run};
use crate::github::runner::{Runner, pull_request_number, triggering_run_id};
use crate::pipeline::{
    self, BaselineChoice, CredentialPolicy, DockerfileSource, ImageSources, Outcome,
    RegistryAccess, Settings,
};
use crate::readers::ReadOptions;
use crate::render::github::Section;
use crate::sinks::outputs::Reported;
use crate::sinks::pr_comment::{self, CommentMode};
use crate::sinks::workflow_log::{self, error, warning};
use crate::sinks::{job_summary, outputs, report_file};
use units::{RecordSource, Unit};

#[derive(Debug, clap::Args)]
pub struct ActionArgs {}

pub fn run(_args: ActionArgs) -> anyhow::Result<ExitCode> {
    run_with(&Runner::from_env())
}

/// The action in `runner`'s environment, on the process's one runtime.
pub fn run_with(runner: &Runner) -> anyhow::Result<ExitCode> {
    crate::cli::runtime()?.block_on(run_action(runner))
}

/// Every input of action.yml, read once before any work (the names are action.yml's). The
/// fields are private and each is used, so the compiler reports an input read for nothing.
struct ActionInputs {
    metadata: Option<String>,
    build_log: Vec<String>,
    build_record: Vec<String>,
    target: Option<String>,
    run_id: Option<String>,
    image: Option<String>,
    baseline: Option<String>,
    github_token: Option<String>,
    comment: Option<String>,
    comment_key: Option<String>,
    fail_on: Vec<String>,
    dockerfile: Option<String>,
    artifact_name: Option<String>,
    report_path: Option<String>,
}

impl ActionInputs {
    fn read(runner: &Runner) -> Self {
        ActionInputs {
            metadata: runner.input("metadata"),
            build_log: runner.input_list("build-log"),
            build_record: runner.input_list("build-record"),
            target: runner.input("target"),
            run_id: runner.input("run-id"),
            image: runner.input("image"),
            baseline: runner.input("baseline"),
            github_token: runner.input("github-token"),
            comment: runner.input("comment"),
            comment_key: runner.input("comment-key"),
            fail_on: runner.input_list("fail-on"),
            dockerfile: runner.input("dockerfile"),
            artifact_name: runner.input("artifact-name"),
            report_path: runner.input("report-path"),
        }
    }
}

/// A configuration the step cannot run with: it fails (exit 2), naming the input.
#[derive(Debug, thiserror::Error)]
enum ConfigError {
    #[error("input `fail-on`: {0}")]
    FailOn(#[from] GateSyntaxError),
    #[error(
        "no build records given: set `build-log` (a rawjson or plain progress log), `build-record` or `metadata`"
    )]
    NoRecords,
    #[error("cannot create a temporary folder: {0}")]
    TempDir(std::io::Error),
    #[error("input `run-id`: `{0}` is not a workflow run id (a whole number)")]
    RunId(String),
    #[error(
        "input `build-record`: `artifact` reads a workflow run's build-record artifacts, but this \
         run has no GITHUB_RUN_ID and no `run-id` was given"
    )]
    NoRun,
    #[error("input `target`: {0}")]
    Target(String),
}

/// The inputs resolved: what every build of the run shares, and what the sinks need.
struct ActionSettings {
    /// The pipeline's settings but the inputs, which each build has its own of.
    shared: Settings,
    source: RecordSource,
    target: Option<String>,
    token: Option<String>,
    comment: CommentMode,
    key: String,
    report_path: Option<String>,
    /// The Dockerfile as the workflow names it, for annotations.
    dockerfile: String,
    event: serde_json::Value,
    /// Holds files the action writes for the pipeline (downloaded records) until it has read
    /// them.
    folder: tempfile::TempDir,
}

async fn run_action(runner: &Runner) -> anyhow::Result<ExitCode> {
    let inputs = ActionInputs::read(runner);
    let token = inputs
        .github_token
        .clone()
        .or_else(|| runner.var("GITHUB_TOKEN"));
    if let Some(token) = &token {
        // Before anything else is printed: the runner hides it from every later log line.
        workflow_log::mask(token);
    }
    // Configuration errors fail the step: a misconfigured step must not pass unnoticed.
    let settings = match resolve(runner, inputs, token) {
        Ok(settings) => settings,
        Err(e) => return Ok(no_report(runner, &e.to_string())),
    };
    let github = github_client(runner, settings.token.as_deref());
    let units = match units::build(runner, &settings, github.as_ref()).await {
        Ok(units) => units,
        Err(e) => return Ok(no_report(runner, &e)),
    };
    let mut done = Vec::with_capacity(units.len());
    for unit in units {
        let outcome = pipeline::run(&unit.settings, github.as_ref()).await;
        done.push((unit, outcome));
    }
    Ok(write_sinks(runner, &settings, github.as_ref(), &done).await)
}

/// The step fails with `message`, and the job summary says there is no report.
fn no_report(runner: &Runner, message: &str) -> ExitCode {
    error(message);
    if let Some(file) = runner.summary_file() {
        let _ = job_summary::write_no_report(&file, message);
    }
    ExitCode::from(2)
}

fn resolve(
    runner: &Runner,
    inputs: ActionInputs,
    token: Option<String>,
) -> Result<ActionSettings, ConfigError> {
    let gates = parse_gates(&inputs.fail_on)?;
    let comment = comment_mode(inputs.comment.as_deref());
    let key = inputs.comment_key.unwrap_or_else(|| "default".into());
    let event = runner.event().unwrap_or(serde_json::Value::Null);
    let source = record_source(
        runner,
        &event,
        inputs.metadata.filter(|m| m != "{}"),
        inputs.build_log,
        inputs.build_record,
        inputs.run_id,
    )?;
    let folder = tempfile::Builder::new()
        .prefix("cachehit-")
        .tempdir_in(runner.temp_dir())
        .or_else(|_| tempfile::tempdir())
        .map_err(ConfigError::TempDir)?;

    let reported_run_id = match &source {
        RecordSource::Artifacts { run, .. } => {
            Some(run.run_id).filter(|id| Some(*id) != runner.run_id())
        }
        RecordSource::Given { .. } => None,
    };
    let baseline = match inputs.baseline.as_deref().unwrap_or("auto") {
        "none" => BaselineChoice::None,
        "auto" => BaselineChoice::Auto(AutoQuery {
            artifact_name: inputs.artifact_name.unwrap_or_default(),
            default_branch: event
                .pointer("/repository/default_branch")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
            current_tag: runner.current_tag(&event),
            current_run_id: runner.run_id(),
            reported_run_id,
            // Set per build: the file name its report is uploaded under.
            report_file: String::new(),
        }),
        path => BaselineChoice::File {
            path: runner.resolve(path),
            label: path.to_string(),
            required: false,
        },
    };
    let dockerfile = inputs.dockerfile.unwrap_or_else(|| "Dockerfile".into());
    let images = ImageSources {
        current: inputs.image,
        registry: RegistryAccess {
            // The job's token opens the repository's packages on ghcr.io, nothing else.
            credentials: match &token {
                Some(token) => CredentialPolicy::GitHubToken(token.clone()),
                None => CredentialPolicy::Anonymous,
            },
            ..RegistryAccess::default()
        },
        ..ImageSources::default()
    };
    Ok(ActionSettings {
        shared: Settings {
            inputs: Vec::new(),
            read: ReadOptions::default(),
            images,
            baseline,
            dockerfile: Some(DockerfileSource {
                path: runner.resolve(&dockerfile),
                required: false,
            }),
            gates,
        },
        source,
        target: inputs.target,
        token,
        comment,
        key,
        report_path: inputs.report_path,
        dockerfile,
        event,
        folder,
    })
}

/// Where the build records come from: the inputs, or a run's build-record artifacts
/// (`build-record: artifact`; by default on `workflow_run` events when nothing else is given).
fn record_source(
    runner: &Runner,
    event: &serde_json::Value,
    metadata: Option<String>,
    logs: Vec<String>,
    records: Vec<String>,
    run_id: Option<String>,
) -> Result<RecordSource, ConfigError> {
    let asks_artifacts =
        matches!(records.as_slice(), [one] if one.eq_ignore_ascii_case("artifact"));
    let nothing_given = metadata.is_none() && logs.is_empty() && records.is_empty();
    let triggering = triggering_run_id(event);
    if !asks_artifacts && !(nothing_given && (triggering.is_some() || run_id.is_some())) {
        if nothing_given {
            return Err(ConfigError::NoRecords);
        }
        let resolve = |paths: Vec<String>| paths.iter().map(|p| runner.resolve(p)).collect();
        return Ok(RecordSource::Given {
            metadata,
            logs: resolve(logs),
            records: resolve(records),
        });
    }
    let run = match (run_id, triggering) {
        (Some(id), _) => {
            let run_id = id.parse().map_err(|_| ConfigError::RunId(id.clone()))?;
            RecordRun {
                run_id,
                described: format!("run {run_id}"),
            }
        }
        (None, Some(run_id)) => RecordRun {
            run_id,
            described: format!("run {run_id} (the run that triggered this workflow_run)"),
        },
        (None, None) => {
            let run_id = runner.run_id().ok_or(ConfigError::NoRun)?;
            RecordRun {
                run_id,
                described: format!("this workflow run ({run_id})"),
            }
        }
    };
    Ok(RecordSource::Artifacts { run, metadata })
}

/// The REST client, when the run names its repository. GitHub problems never fail the step:
/// without a client the report comes out without what needs GitHub.
fn github_client(runner: &Runner, token: Option<&str>) -> Option<GitHub> {
    let (owner, repo) = runner.repository()?;
    match GitHub::new(
        &runner.api_url(),
        token,
        &owner,
        &repo,
        retry_policy(runner),
    ) {
        Ok(github) => Some(github),
        Err(e) => {
            warning(&e.to_string());
            None
        }
    }
}

/// The pull request to comment on: the event's, or on a `workflow_run` event the one the
/// triggering run built (found through GitHub for a fork's).
async fn pull_request(github: Option<&GitHub>, event: &serde_json::Value) -> Option<u64> {
    if let Some(number) = pull_request_number(event) {
        return Some(number);
    }
    event.get("workflow_run")?;
    let github = github?;
    match pull_request_of_run(github, event).await {
        Ok(number) => number,
        Err(e) => {
            warning(&format!(
                "cannot find the pull request of the run that triggered this workflow_run: {e}"
            ));
            None
        }
    }
}

/// Warnings of several builds: one that every build gives (a shared input) is said once;
/// another names its build.
fn say_once<'a>(per_unit: impl IntoIterator<Item = (Option<&'a str>, Vec<String>)>) {
    let per_unit: Vec<(Option<&str>, Vec<String>)> = per_unit.into_iter().collect();
    let units = per_unit.len();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, messages) in &per_unit {
        let mut unique: Vec<&str> = messages.iter().map(String::as_str).collect();
        unique.sort_unstable();
        unique.dedup();
        for message in unique {
            *counts.entry(message).or_default() += 1;
        }
    }
    let mut said = std::collections::HashSet::new();
    for (label, messages) in &per_unit {
        for message in messages {
            let shared = counts.get(message.as_str()) == Some(&units);
            match label {
                Some(label) if !shared => warning(&format!("{label}: {message}")),
                _ => {
                    if said.insert(message.as_str()) {
                        warning(message);
                    }
                }
            }
        }
    }
}

/// Writes every outcome everywhere it goes. A file that cannot be written is reported and
/// the others are still written: the report file must survive a broken summary or output
/// file, and the outputs must still point at it.
async fn write_sinks(
    runner: &Runner,
    settings: &ActionSettings,
    github: Option<&GitHub>,
    done: &[(Unit, Result<Outcome, pipeline::Failure>)],
) -> ExitCode {
    let mut failures: Vec<String> = Vec::new();
    // Builds that produced no report: named, and the step fails.
    for (unit, outcome) in done {
        if let Err(failure) = outcome {
            failures.push(match &unit.label {
                Some(label) => format!("{}: {failure}", unit.heading_text(label)),
                None => failure.to_string(),
            });
        }
    }
    let reported: Vec<(&Unit, &Outcome)> = done
        .iter()
        .filter_map(|(unit, outcome)| outcome.as_ref().ok().map(|o| (unit, o)))
        .collect();
    say_once(reported.iter().map(|(unit, outcome)| {
        let mut messages: Vec<String> = outcome.warnings.iter().map(|w| w.to_string()).collect();
        messages.extend(
            outcome
                .gates
                .unevaluated
                .iter()
                .map(|missing| format!("fail-on {missing}")),
        );
        (unit.label.as_deref(), messages)
    }));
    for (unit, _) in &reported {
        let location = &unit.location;
        if location.outside_workspace {
            warning(&format!(
                "report-path {} is outside the workspace ({}): only the workspace is shared between \
                 the action's container and the steps after it, so actions/upload-artifact cannot \
                 find the report there; use a path inside the workspace",
                location.path.display(),
                runner.workspace().display()
            ));
        }
    }
    let mut written: Vec<bool> = Vec::new();
    for (unit, outcome) in &reported {
        let result = report_file::write(&unit.location.path, &outcome.report);
        if let Err(e) = &result {
            failures.push(e.to_string());
        }
        written.push(result.is_ok());
    }
    let reports: Vec<&crate::report::Report> = reported.iter().map(|(_, o)| &o.report).collect();
    workflow_log::annotate_all(&reports, &settings.dockerfile);
    let several = reported.len() > 1;
    let sections: Vec<Section> = reported
        .iter()
        .map(|(unit, outcome)| Section {
            heading: unit.label.as_deref().map(|l| unit.heading_markdown(l)),
            report: &outcome.report,
            note: outcome.baseline_note.as_deref(),
        })
        .collect();
    if let Some(file) = runner.summary_file() {
        for section in &sections {
            let result = if several {
                job_summary::write_section(&file, section, sections.len())
            } else {
                job_summary::write(&file, section.report, section.note)
            };
            if let Err(e) = result {
                failures.push(e.to_string());
                break;
            }
        }
    }
    let issue = pull_request(github, &settings.event).await;
    let comment_url = if sections.is_empty() {
        None
    } else {
        let comment = pr_comment::Comment {
            mode: settings.comment,
            key: &settings.key,
            sections: &sections,
        };
        pr_comment::post(github, issue, &comment).await
    };
    if let Some(file) = runner.output_file() {
        let each: Vec<Reported> = reported
            .iter()
            .zip(&written)
            .map(|((unit, outcome), ok)| Reported {
                label: unit.label.as_deref(),
                report: &outcome.report,
                report_path: ok.then_some(unit.location.output.as_str()),
            })
            .collect();
        if let Err(e) = outputs::write_all(&file, &each, comment_url.as_deref()) {
            failures.push(e.to_string());
        }
    }
    let kept: Vec<String> = reported
        .iter()
        .zip(&written)
        .filter(|(_, ok)| **ok)
        .map(|((unit, _), _)| unit.location.path.display().to_string())
        .collect();
    let kept = if kept.is_empty() {
        String::new()
    } else {
        format!("; the report was written to {}", kept.join(", "))
    };
    for failure in &failures {
        error(&format!("{failure}{kept}"));
    }
    let mut tripped = false;
    for (unit, outcome) in &reported {
        for reason in &outcome.gates.tripped {
            tripped = true;
            match (&unit.label, several) {
                (Some(label), true) => workflow_log::gate_failed(&format!("{label}: {reason}")),
                _ => workflow_log::gate_failed(reason),
            }
        }
    }
    if reported.is_empty()
        && let Some(file) = runner.summary_file()
    {
        let _ = job_summary::write_no_report(&file, &failures.join("; "));
    }
    if !failures.is_empty() {
        ExitCode::from(2)
    } else if tripped {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The `comment` input: `on`, `off`, `on-regression`, or a YAML boolean.
fn comment_mode(value: Option<&str>) -> CommentMode {
    let Some(value) = value else {
        return CommentMode::On;
    };
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" => CommentMode::On,
        "off" | "false" => CommentMode::Off,
        "on-regression" => CommentMode::OnRegression,
        _ => {
            warning(&format!(
                "input `comment`: `{value}` is not one of on, off, on-regression, true, false; \
                 using the default, on"
            ));
            CommentMode::On
        }
    }
}

/// Where the report goes, and the path the `report-path` output gives for it.
pub(crate) struct ReportLocation {
    pub(crate) path: PathBuf,
    /// Relative to the workspace when inside it: the action runs in a container whose
    /// workspace is mounted elsewhere than on the host, and the steps after it start in the
    /// workspace, so only a relative path means the same file to both.
    pub(crate) output: String,
    pub(crate) outside_workspace: bool,
}

/// The `report-path` input (relative paths are in the workspace), else the report file name
/// of the comment key in the workspace root. Not RUNNER_TEMP: a Docker action either does not
/// see it or sees it under another path than the host's later steps. A build among several
/// (`label`) has its label in the file name: `cachehit-report-api.json`, `reports/x-api.json`.
pub(crate) fn report_location(
    runner: &Runner,
    report_path: Option<&str>,
    key: &str,
    label: Option<&str>,
) -> ReportLocation {
    let workspace = normalize(&runner.workspace());
    let named = match (report_path, label) {
        (Some(p), None) => runner.resolve(p),
        (Some(p), Some(label)) => with_label(&runner.resolve(p), label),
        (None, None) => runner.workspace().join(report_file_name(key)),
        (None, Some(label)) => {
            let keyed = if key == "default" {
                label.to_string()
            } else {
                format!("{key}-{label}")
            };
            runner.workspace().join(report_file_name(&keyed))
        }
    };
    let path = normalize(&named);
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

/// `reports/x.json` → `reports/x-LABEL.json`.
fn with_label(path: &Path, label: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{label}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{label}"),
    };
    path.with_file_name(name)
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

/// Tests shrink the waits with `CACHEHIT_RETRY_BASE_MS`.
fn retry_policy(runner: &Runner) -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    if let Some(ms) = runner
        .var("CACHEHIT_RETRY_BASE_MS")
        .and_then(|v| v.parse().ok())
    {
        policy.first_backoff = Duration::from_millis(ms);
        policy.max_wait = Duration::from_millis(ms * 8);
    }
    policy
}
