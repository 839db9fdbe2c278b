//! `cachehit action`: the GitHub Action's front-end. Everything comes from the runner's
//! environment (`github::runner`): every input of action.yml is read once into
//! [`ActionInputs`] and resolved into the pipeline's settings before any work; the outcome
//! goes to GitHub's sinks (the report file, annotations, the job summary, the pull-request
//! comment, the outputs). It works the same inside the action's container and outside.

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::analysis::gates::{GateSyntaxError, parse_gates};
use crate::github::api::{Deadlines, GitHub, RetryPolicy};
use crate::github::baseline::{AutoQuery, report_file_name};
use crate::github::runner::{Runner, pull_request_number};
use crate::pipeline::{
    self, BaselineChoice, CredentialPolicy, DockerfileSource, ImageSources, Outcome,
    RegistryAccess, Settings,
};
use crate::readers::ReadOptions;
use crate::sinks::pr_comment::{self, CommentMode};
use crate::sinks::workflow_log::{self, error, warning};
use crate::sinks::{SinkError, job_summary, outputs, report_file};

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
        Err(_) => {
            let message = "cachehit stopped on an internal error; please report it with this log";
            error(message);
            if let Some(file) = runner.summary_file() {
                let _ = job_summary::write_no_report(&file, message);
            }
            Ok(ExitCode::from(2))
        }
    }
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
        Err(e) => {
            error(&e.to_string());
            return Ok(ExitCode::from(2));
        }
    };
    let github = token_usable
        .then(|| github_client(runner, settings.token.as_deref()))
        .flatten();
    // The comment's look-up (whose comments, which exist) goes on while the report is made.
    let issue = pull_request_number(&settings.event);
    let (lookup, result) = tokio::join!(
        pr_comment::look_up(github.as_ref(), issue, settings.comment, &settings.key),
        pipeline::run(&settings.pipeline, github.as_ref()),
    );
    match result {
        Ok(outcome) => Ok(write_sinks(runner, &settings, github.as_ref(), lookup, &outcome).await),
        Err(failure) => {
            error(&failure.to_string());
            if let Some(file) = runner.summary_file() {
                let _ = job_summary::write_no_report(&file, &failure.to_string());
            }
            Ok(ExitCode::from(2))
        }
    }
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
         or another character no token has; it is not used, so there is no baseline search and \
         no pull-request comment. Pass the secret alone, e.g. `${{ secrets.GITHUB_TOKEN }}`",
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
            // The job's token opens the repository's packages in this GitHub's own container
            // registry, nothing else.
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

/// Writes the outcome everywhere it goes: first what needs no server (the report file, the
/// annotations, the job summary, the outputs), then the pull-request comment, then its URL.
/// A file that cannot be written is reported and the others are still written: the report
/// file must survive a broken summary or output file, and the outputs must still point at it.
async fn write_sinks(
    runner: &Runner,
    settings: &ActionSettings,
    github: Option<&GitHub>,
    lookup: pr_comment::Lookup,
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
    let mut failures: Vec<String> = Vec::new();
    let report_written = write_report(runner, &settings.location, report, &mut failures);
    workflow_log::annotate(report, &settings.dockerfile);
    if let Some(file) = runner.summary_file()
        && let Err(e) = job_summary::write(&file, report, note)
    {
        failures.push(e.to_string());
    }
    let output_file = runner.output_file();
    if let Some(file) = &output_file {
        let report_path = report_written.then_some(settings.location.output.as_str());
        if let Err(e) = outputs::write(file, report, report_path) {
            failures.push(e.to_string());
        }
    }
    let comment = pr_comment::Comment {
        mode: settings.comment,
        key: &settings.key,
        report,
        baseline_note: note,
    };
    let comment_url = pr_comment::post(github, lookup, &comment).await;
    if let Some(file) = &output_file
        && let Err(e) = outputs::write_comment_url(file, comment_url.as_deref())
    {
        failures.push(e.to_string());
    }
    let kept = if report_written {
        format!(
            "; the report was written to {}",
            settings.location.path.display()
        )
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

/// The report file, inside the workspace only: a path outside it, or through a symbolic
/// link, is refused with a warning (a pull request controls what the workspace holds). A
/// file that cannot be written is a failure. Whether it was written.
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
struct ReportLocation {
    path: PathBuf,
    /// Inside the workspace: the path relative to it. `None` outside, where nothing is
    /// written.
    relative: Option<PathBuf>,
    /// Relative to the workspace when inside it: the action runs in a container whose
    /// workspace is mounted elsewhere than on the host, and the steps after it start in the
    /// workspace, so only a relative path means the same file to both.
    output: String,
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
