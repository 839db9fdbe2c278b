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
//!
//! Nothing GitHub does can hold the rest: the comment's look-up runs while the reports are
//! made, every report file, annotation, summary section and output but `comment-url` is
//! written before the comment is posted, and `comment-url` last.

mod units;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::analysis::gates::{GateSyntaxError, parse_gates};
use crate::analysis::gha_cache::GhaRun;
use crate::github::api::{Deadlines, GitHub, RetryPolicy};
use crate::github::baseline::{AutoQuery, report_file_name};
use crate::github::records::{RecordRun, pull_request_of_run};
use crate::github::runner::{Runner, pull_request_number, triggering_run_id};
use crate::pipeline::{
    self, BaselineChoice, CredentialPolicy, DockerfileSource, EvidenceSources, GitIdentity,
    ImageSources, Outcome, RegistryAccess, Settings,
};
use crate::readers::ReadOptions;
use crate::render::github::Section;
use crate::sinks::outputs::Reported;
use crate::sinks::pr_comment::{self, CommentMode};
use crate::sinks::workflow_log::{self, error, warning};
use crate::sinks::{SinkError, job_summary, outputs, report_file};
use crate::sources::git::ContextLocation;
use units::{RecordSource, Unit};

#[derive(Debug, clap::Args)]
pub struct ActionArgs {}

pub fn run(_args: ActionArgs) -> anyhow::Result<ExitCode> {
    run_with(&Runner::from_env())
}

/// The action in `runner`'s environment, on the process's one runtime. Should cachehit
/// itself fail (a bug), the step still gets a summary saying so.
pub fn run_with(runner: &Runner) -> anyhow::Result<ExitCode> {
    let runtime = crate::cli::runtime()?;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(run_action(runner))
    })) {
        Ok(result) => result,
        Err(_) => Ok(no_report(
            runner,
            "cachehit stopped on an internal error; please report it with this log",
        )),
    }
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
    context: Option<String>,
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
            context: runner.input("context"),
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
    // Before anything else is printed: the runner hides it from every later log line.
    let given = inputs
        .github_token
        .clone()
        .or_else(|| runner.var("GITHUB_TOKEN"));
    let (token, token_usable) = match given.as_deref().map(usable_token) {
        Some(Some(token)) => (Some(token), true),
        // A token that cannot be one: nothing is asked of GitHub at all.
        Some(None) => (None, false),
        None => (None, true),
    };
    // Configuration errors fail the step: a misconfigured step must not pass unnoticed.
    let settings = match resolve(runner, inputs, token) {
        Ok(settings) => settings,
        Err(e) => return Ok(no_report(runner, &e.to_string())),
    };
    let github = token_usable
        .then(|| github_client(runner, settings.token.as_deref()))
        .flatten();
    // The comment's look-up (which pull request, whose comments, which exist) goes on while
    // the reports are made.
    let look_up = async {
        let issue = match settings.comment {
            CommentMode::Off => None,
            _ => pull_request(github.as_ref(), &settings.event).await,
        };
        pr_comment::look_up(github.as_ref(), issue, settings.comment, &settings.key).await
    };
    let reports = async {
        let units = units::build(runner, &settings, github.as_ref()).await?;
        let mut done = Vec::with_capacity(units.len());
        for unit in units {
            let outcome = pipeline::run(&unit.settings, github.as_ref()).await;
            done.push((unit, outcome));
        }
        Ok::<_, String>(done)
    };
    let (lookup, done) = tokio::join!(look_up, reports);
    match done {
        Ok(done) => Ok(write_sinks(runner, &settings, github.as_ref(), lookup, &done).await),
        Err(e) => Ok(no_report(runner, &e)),
    }
}

/// The step fails with `message`, and the job summary says there is no report.
fn no_report(runner: &Runner, message: &str) -> ExitCode {
    error(message);
    if let Some(file) = runner.summary_file() {
        let _ = job_summary::write_no_report(&file, message);
    }
    ExitCode::from(2)
}

/// The token when it can be one: a single word of visible ASCII, as GitHub's tokens are. It
/// is masked first, and anything else is masked piece by piece (so no part of it is ever
/// printed) and not used: the run goes on without GitHub, with a warning.
fn usable_token(token: &str) -> Option<String> {
    if token.chars().all(|c| c.is_ascii_graphic()) {
        workflow_log::mask(token);
        return Some(token.to_string());
    }
    for piece in token.split(|c: char| !c.is_ascii_graphic()) {
        if !piece.is_empty() {
            workflow_log::mask(piece);
        }
    }
    warning(
        "input `github-token` (or GITHUB_TOKEN) is not a token: it holds a line break, a space \
         or another character no token has; it is not used, so there is no baseline search, \
         no build-record artifact and no pull-request comment. Pass the secret alone, e.g. \
         `${{ secrets.GITHUB_TOKEN }}`",
    );
    None
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
            // The job's token opens the repository's packages in this GitHub's own container
            // registry, nothing else: every build's images are read with this policy.
            credentials: match &token {
                Some(token) => CredentialPolicy::GitHubToken {
                    token: token.clone(),
                    registry: container_registry(runner),
                },
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
            evidence: evidence_sources(runner, &event, inputs.context.as_deref(), &dockerfile),
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

/// The workspace's repository for the context changes, the runner's commit and ref, and the
/// refs this run can restore GitHub Actions caches from.
fn evidence_sources(
    runner: &Runner,
    event: &serde_json::Value,
    context: Option<&str>,
    dockerfile: &str,
) -> EvidenceSources {
    let branch = |name: &str| format!("refs/heads/{name}");
    EvidenceSources {
        context: Some(ContextLocation {
            context_dir: runner.resolve(context.unwrap_or(".")),
            dockerfile: Some(runner.resolve(dockerfile)),
        }),
        // The commit GitHub checked out and built: on pull_request events the merge commit,
        // as actions/checkout and build-push-action's Git context both build it.
        git: GitIdentity {
            commit: runner.var("GITHUB_SHA"),
            git_ref: runner.git_ref(),
        },
        gha: Some(GhaRun {
            git_ref: runner.git_ref(),
            default_branch: event
                .pointer("/repository/default_branch")
                .and_then(serde_json::Value::as_str)
                .map(branch),
            base_ref: runner.var("GITHUB_BASE_REF").as_deref().map(branch),
        }),
    }
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

/// The container registry of the GitHub the run is on: ghcr.io for github.com, and
/// `containers.HOST` for GitHub Enterprise Server (and GHE.com) at `GITHUB_SERVER_URL`.
fn container_registry(runner: &Runner) -> String {
    let server = runner
        .var("GITHUB_SERVER_URL")
        .unwrap_or_else(|| "https://github.com".into());
    let host = server
        .split_once("://")
        .map_or(server.as_str(), |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if host.is_empty() || host == "github.com" {
        "ghcr.io".into()
    } else {
        format!("containers.{host}")
    }
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
        Ok(github) => Some(github.with_deadlines(deadlines(runner))),
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

/// Writes every outcome everywhere it goes: first what needs no server (each build's report
/// file, the annotations, the job summary, every output but `comment-url`), then the
/// pull-request comment, then its URL. A file that cannot be written is reported and the
/// others are still written: the report file must survive a broken summary or output file,
/// and the outputs must still point at it.
async fn write_sinks(
    runner: &Runner,
    settings: &ActionSettings,
    github: Option<&GitHub>,
    lookup: pr_comment::Lookup,
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
    let written: Vec<bool> = reported
        .iter()
        .map(|(unit, outcome)| write_report(runner, &unit.location, &outcome.report, &mut failures))
        .collect();
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
    let output_file = runner.output_file();
    if let Some(file) = &output_file {
        let each: Vec<Reported> = reported
            .iter()
            .zip(&written)
            .map(|((unit, outcome), ok)| Reported {
                label: unit.label.as_deref(),
                report: &outcome.report,
                report_path: ok.then_some(unit.location.output.as_str()),
            })
            .collect();
        if let Err(e) = outputs::write_all(file, &each) {
            failures.push(e.to_string());
        }
    }
    let comment_url = if sections.is_empty() {
        None
    } else {
        let comment = pr_comment::Comment {
            mode: settings.comment,
            key: &settings.key,
            sections: &sections,
        };
        pr_comment::post(github, lookup, &comment).await
    };
    if let Some(file) = &output_file
        && let Err(e) = outputs::write_comment_url(file, comment_url.as_deref())
    {
        failures.push(e.to_string());
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

/// A build's report file, inside the workspace only: a path outside it, or through a
/// symbolic link, is refused with a warning (a pull request controls what the workspace
/// holds). A file that cannot be written is a failure. Whether it was written.
fn write_report(
    runner: &Runner,
    location: &ReportLocation,
    report: &crate::report::Report,
    failures: &mut Vec<String>,
) -> bool {
    let Some(relative) = &location.relative else {
        warning(&format!(
            "report-path {} is outside the workspace ({}); the report is not written there: \
             only the workspace is shared between the action's container and the steps after \
             it (actions/upload-artifact could not find it), and cachehit writes nowhere else; \
             use a path inside the workspace",
            location.path.display(),
            runner.workspace().display()
        ));
        return false;
    };
    match report_file::write_inside(&normalize(&runner.workspace()), relative, report) {
        Ok(()) => true,
        Err(e @ SinkError::Refused { .. }) => {
            warning(&e.to_string());
            false
        }
        Err(e) => {
            failures.push(e.to_string());
            false
        }
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
    /// Inside the workspace: the path relative to it. `None` outside, where nothing is
    /// written.
    pub(crate) relative: Option<PathBuf>,
    /// Relative to the workspace when inside it: the action runs in a container whose
    /// workspace is mounted elsewhere than on the host, and the steps after it start in the
    /// workspace, so only a relative path means the same file to both.
    pub(crate) output: String,
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
            relative: Some(relative.to_path_buf()),
            path,
        },
        _ => ReportLocation {
            output: path.to_string_lossy().into_owned(),
            relative: None,
            path,
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

/// Tests shrink the deadlines with `CACHEHIT_GITHUB_REQUEST_MS` and `CACHEHIT_GITHUB_BUDGET_MS`.
fn deadlines(runner: &Runner) -> Deadlines {
    let millis = |name: &str| {
        runner
            .var(name)
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
    };
    let default = Deadlines::default();
    Deadlines {
        request: millis("CACHEHIT_GITHUB_REQUEST_MS").unwrap_or(default.request),
        phase: millis("CACHEHIT_GITHUB_BUDGET_MS").unwrap_or(default.phase),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(vars: &[(&str, &str)]) -> Runner {
        Runner::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn the_token_goes_only_to_this_github_s_own_container_registry() {
        let policy = |server: Option<&str>| {
            let vars: Vec<(&str, &str)> = server
                .map(|s| ("GITHUB_SERVER_URL", s))
                .into_iter()
                .collect();
            CredentialPolicy::GitHubToken {
                token: "ghs_x".into(),
                registry: container_registry(&runner(&vars)),
            }
        };
        let github_com = policy(Some("https://github.com"));
        assert!(github_com.for_registry("ghcr.io").is_some());
        assert!(github_com.for_registry("GHCR.IO").is_some());
        assert!(github_com.for_registry("docker.io").is_none());
        assert!(
            github_com
                .for_registry("ghcr.io.attacker.example")
                .is_none()
        );
        assert!(policy(None).for_registry("ghcr.io").is_some());
        // GitHub Enterprise Server: its own registry, never ghcr.io.
        let ghes = policy(Some("https://ghes.example.com/"));
        assert!(ghes.for_registry("ghcr.io").is_none());
        assert!(ghes.for_registry("containers.ghes.example.com").is_some());
        assert!(ghes.for_registry("ghes.example.com").is_none());
        let with_port = policy(Some("https://ghes.example.com:8443"));
        assert!(
            with_port
                .for_registry("containers.ghes.example.com")
                .is_some()
        );
        let credentials = ghes.for_registry("containers.ghes.example.com").unwrap();
        assert_eq!(credentials.password, "ghs_x");
        assert!(!format!("{ghes:?}").contains("ghs_x"));
    }
}
