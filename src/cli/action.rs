//! `cachehit action`: the GitHub Action's front-end. Everything comes from the runner's
//! environment (`github::runner`): every input of action.yml is read once into
//! [`ActionInputs`] and resolved into the pipeline's settings before any work; the outcome
//! goes to GitHub's sinks (the report file, annotations, the job summary, the pull-request
//! comment, the outputs). It works the same inside the action's container and outside.

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::analysis::gates::{GateSyntaxError, parse_gates};
use crate::github::api::{GitHub, RetryPolicy};
use crate::github::baseline::{AutoQuery, report_file_name};
use crate::github::runner::Runner;
use crate::pipeline::{
    self, BaselineChoice, CredentialPolicy, DockerfileSource, ImageSources, Outcome,
    RegistryAccess, Settings,
};
use crate::readers::ReadOptions;
use crate::sinks::pr_comment::{self, CommentMode};
use crate::sinks::workflow_log::{self, error, warning};
use crate::sinks::{job_summary, outputs, report_file};

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
    #[error("cannot write {}: {source}", .path.display())]
    Metadata {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The inputs resolved: the pipeline's settings and what the sinks need.
struct ActionSettings {
    pipeline: Settings,
    token: Option<String>,
    comment: CommentMode,
    key: String,
    location: ReportLocation,
    /// The Dockerfile as the workflow names it, for annotations.
    dockerfile: String,
    event: serde_json::Value,
    /// Holds the inline `metadata` input as a file until the pipeline has read it.
    _metadata_folder: tempfile::TempDir,
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
        Err(e) => {
            error(&e.to_string());
            return Ok(ExitCode::from(2));
        }
    };
    let github = github_client(runner, settings.token.as_deref());
    match pipeline::run(&settings.pipeline, github.as_ref()).await {
        Ok(outcome) => Ok(write_sinks(runner, &settings, github.as_ref(), &outcome).await),
        Err(failure) => {
            error(&failure.to_string());
            if let Some(file) = runner.summary_file() {
                let _ = job_summary::write_no_report(&file, &failure.to_string());
            }
            Ok(ExitCode::from(2))
        }
    }
}

fn resolve(
    runner: &Runner,
    inputs: ActionInputs,
    token: Option<String>,
) -> Result<ActionSettings, ConfigError> {
    let gates = parse_gates(&inputs.fail_on)?;
    let comment = comment_mode(inputs.comment.as_deref());
    let key = inputs.comment_key.unwrap_or_else(|| "default".into());
    let location = report_location(runner, inputs.report_path.as_deref(), &key);

    // Inputs: the metadata output comes inline; logs and records are paths in the workspace.
    let folder = tempfile::Builder::new()
        .prefix("cachehit-")
        .tempdir_in(runner.temp_dir())
        .or_else(|_| tempfile::tempdir())
        .map_err(ConfigError::TempDir)?;
    let mut paths: Vec<PathBuf> = Vec::new();
    if let Some(metadata) = inputs.metadata.filter(|m| m != "{}") {
        let path = folder.path().join("metadata.json");
        std::fs::write(&path, metadata).map_err(|source| ConfigError::Metadata {
            path: path.clone(),
            source,
        })?;
        paths.push(path);
    }
    for path in inputs.build_log.iter().chain(&inputs.build_record) {
        paths.push(runner.resolve(path));
    }
    if paths.is_empty() {
        return Err(ConfigError::NoRecords);
    }

    let event = runner.event().unwrap_or(serde_json::Value::Null);
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
            // The file name this step uploads is the one to look for in earlier runs' artifacts.
            report_file: location
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| report_file_name(&key)),
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
        pipeline: Settings {
            inputs: paths,
            read: ReadOptions::default(),
            images,
            baseline,
            dockerfile: Some(DockerfileSource {
                path: runner.resolve(&dockerfile),
                required: false,
            }),
            gates,
        },
        token,
        comment,
        key,
        location,
        dockerfile,
        event,
        _metadata_folder: folder,
    })
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

/// Writes the outcome everywhere it goes. A file that cannot be written is reported and the
/// others are still written: the report file must survive a broken summary or output file,
/// and the outputs must still point at it.
async fn write_sinks(
    runner: &Runner,
    settings: &ActionSettings,
    github: Option<&GitHub>,
    outcome: &Outcome,
) -> ExitCode {
    let report = &outcome.report;
    let note = outcome.baseline_note.as_deref();
    for problem in &outcome.warnings {
        warning(&problem.to_string());
    }
    for missing in &outcome.gates.unevaluated {
        warning(&format!("fail-on {missing}"));
    }
    let location = &settings.location;
    if location.outside_workspace {
        warning(&format!(
            "report-path {} is outside the workspace ({}): only the workspace is shared between \
             the action's container and the steps after it, so actions/upload-artifact cannot \
             find the report there; use a path inside the workspace",
            location.path.display(),
            runner.workspace().display()
        ));
    }
    let mut failures: Vec<String> = Vec::new();
    let report_written = report_file::write(&location.path, report);
    if let Err(e) = &report_written {
        failures.push(e.to_string());
    }
    workflow_log::annotate(report, &settings.dockerfile);
    if let Some(file) = runner.summary_file()
        && let Err(e) = job_summary::write(&file, report, note)
    {
        failures.push(e.to_string());
    }
    let comment = pr_comment::Comment {
        mode: settings.comment,
        key: &settings.key,
        report,
        baseline_note: note,
    };
    let comment_url = pr_comment::post(github, &settings.event, &comment).await;
    if let Some(file) = runner.output_file() {
        let written = outputs::Written {
            report_path: report_written.is_ok().then_some(location.output.as_str()),
            comment_url: comment_url.as_deref(),
        };
        if let Err(e) = outputs::write(&file, report, &written) {
            failures.push(e.to_string());
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
    for reason in &outcome.gates.tripped {
        workflow_log::gate_failed(reason);
    }
    if !failures.is_empty() {
        ExitCode::from(2)
    } else if !outcome.gates.tripped.is_empty() {
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
struct ReportLocation {
    path: PathBuf,
    /// Relative to the workspace when inside it: the action runs in a container whose
    /// workspace is mounted elsewhere than on the host, and the steps after it start in the
    /// workspace, so only a relative path means the same file to both.
    output: String,
    outside_workspace: bool,
}

/// The `report-path` input (relative paths are in the workspace), else the report file name
/// of the comment key in the workspace root. Not RUNNER_TEMP: a Docker action either does not
/// see it or sees it under another path than the host's later steps.
fn report_location(runner: &Runner, report_path: Option<&str>, key: &str) -> ReportLocation {
    let workspace = normalize(&runner.workspace());
    let path = normalize(
        &report_path
            .map(|p| runner.resolve(p))
            .unwrap_or_else(|| runner.workspace().join(report_file_name(key))),
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
