//! The action package: action.yml and the example workflows are valid and consistent, and the
//! action image built locally runs as the GitHub runner runs the action (its composite steps,
//! through tests/harness/composite.rs) and a `docker://` step.

#[path = "harness/composite.rs"]
mod composite;
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

fn keys(map: &Value) -> BTreeSet<String> {
    map.as_mapping()
        .expect("a mapping")
        .keys()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect()
}

fn action() -> Value {
    yaml(&Path::new(ROOT).join("action.yml"))
}

#[test]
fn action_yml_declares_every_input_and_output_documented() {
    let action = action();
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    assert!(action["branding"]["icon"].is_string() && action["branding"]["color"].is_string());
    let inputs = keys(&action["inputs"]);
    let expected_inputs = [
        "metadata",
        "build-log",
        "build-record",
        "target",
        "run-id",
        "image",
        "baseline",
        "github-token",
        "comment",
        "comment-key",
        "fail-on",
        "dockerfile",
        "artifact-name",
        "report-path",
    ];
    assert_eq!(
        inputs,
        expected_inputs.iter().map(|s| s.to_string()).collect()
    );
    for name in &inputs {
        let input = &action["inputs"][name.as_str()];
        assert!(
            input["description"].as_str().is_some_and(|d| d.len() > 20),
            "input {name} needs a description"
        );
        assert!(input["default"].is_string(), "input {name} needs a default");
    }
    assert_eq!(
        action["inputs"]["baseline"]["default"].as_str(),
        Some("auto")
    );
    assert_eq!(
        action["inputs"]["github-token"]["default"].as_str(),
        Some("${{ github.token }}")
    );
    let outputs = keys(&action["outputs"]);
    for name in [
        "cache-hit-ratio",
        "steps-cached",
        "steps-total",
        "rebuilt-steps",
        "pull-bytes",
        "report-path",
        "comment-url",
        "reports",
    ] {
        assert!(outputs.contains(name), "output {name} missing");
        assert!(action["outputs"][name]["description"].is_string());
    }
}

#[test]
fn example_workflows_are_valid_and_use_the_report_contract() {
    let dir = Path::new(ROOT).join("examples/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 6, "{files:?}");
    let mut all_text = String::new();
    for file in &files {
        let workflow = yaml(file);
        assert!(workflow["name"].is_string(), "{}", file.display());
        assert!(
            workflow.get("on").is_some(),
            "{} has no trigger",
            file.display()
        );
        let jobs = workflow["jobs"].as_mapping().expect("jobs");
        assert!(!jobs.is_empty());
        for (_, job) in jobs {
            assert!(job["runs-on"].is_string());
            assert!(!job["steps"].as_sequence().expect("steps").is_empty());
        }
        all_text.push_str(&std::fs::read_to_string(file).unwrap());
    }
    let text = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let job = |name: &str| {
        let workflow = yaml(&dir.join(name));
        let (_, job) = workflow["jobs"]
            .as_mapping()
            .unwrap()
            .iter()
            .next()
            .unwrap();
        job.clone()
    };
    assert_eq!(
        job("pr-comment.yml")["permissions"]["pull-requests"].as_str(),
        Some("write")
    );
    let build = job("build-and-report.yml");
    assert_eq!(build["permissions"]["packages"].as_str(), Some("write"));
    assert_eq!(build["permissions"]["actions"].as_str(), Some("read"));
    // Zero wiring: the build's metadata output is all the action needs (it exports the record);
    // a metadata file is never passed as a build record.
    for name in ["build-and-report.yml", "pr-comment.yml"] {
        assert!(
            text(name).contains("metadata: ${{ steps.build.outputs.metadata }}"),
            "{name}"
        );
        assert!(!text(name).contains("build-record:"), "{name}");
        assert!(text(name).contains("docker/setup-buildx-action@"), "{name}");
    }
    // The build publishes what the audit and the next build read: the artifact, and on tags
    // the release asset.
    assert!(text("build-and-report.yml").contains("name: cachehit-report"));
    assert!(text("build-and-report.yml").contains("gh release upload"));
    assert!(text("audit.yml").contains("--pattern cachehit-report.json"));
    assert!(text("audit.yml").contains("workflow_dispatch"));
    assert!(text("consume-report.yml").contains(".summary.cache_hit_ratio"));
    // Forks: the build runs unprivileged and uploads its record by itself; the workflow_run
    // job reads it (the default there), never checks out the pull request's code, uploads
    // nothing, and comments.
    let fork_build = job("fork-build.yml");
    assert!(
        fork_build["permissions"]
            .as_mapping()
            .unwrap()
            .values()
            .all(|v| v.as_str() == Some("read")),
        "{:?}",
        fork_build["permissions"]
    );
    let fork_comment = text("fork-comment.yml");
    assert!(fork_comment.contains("workflow_run:"));
    assert!(fork_comment.contains("workflows: [pull request build]"));
    assert!(text("fork-build.yml").contains("name: pull request build"));
    for absent in ["actions/checkout", "upload-artifact"] {
        assert!(!fork_comment.contains(absent), "{absent}");
    }
    let comment_job = job("fork-comment.yml");
    let steps = comment_job["steps"].as_sequence().unwrap();
    let cachehit = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("cachehit/cachehit"))
        })
        .expect("a cachehit step");
    assert!(
        cachehit["with"].get("build-record").is_none(),
        "the default on workflow_run"
    );
    assert_eq!(
        job("fork-comment.yml")["permissions"]["pull-requests"].as_str(),
        Some("write")
    );
    for file in &files {
        example_has_the_permissions_it_needs(file);
    }
    // Inputs used in examples exist in action.yml.
    let inputs = keys(&action()["inputs"]);
    for file in &files {
        let workflow = yaml(file);
        for (_, job) in workflow["jobs"].as_mapping().unwrap() {
            for step in job["steps"].as_sequence().unwrap() {
                if step["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("cachehit/cachehit"))
                {
                    for key in keys(&step["with"]) {
                        assert!(
                            inputs.contains(&key),
                            "{}: unknown input {key}",
                            file.display()
                        );
                    }
                }
            }
        }
    }
}

/// `permissions.NAME` of the job, else of the workflow ("none" when not granted: a
/// workflow that lists permissions grants nothing else).
fn permission<'a>(workflow: &'a Value, job: &'a Value, name: &str) -> &'a str {
    let granted = |p: &'a Value| p.get(name).and_then(Value::as_str);
    if job.get("permissions").is_some() {
        return granted(&job["permissions"]).unwrap_or("none");
    }
    granted(&workflow["permissions"]).unwrap_or("none")
}

fn at_least(level: &str, wanted: &str) -> bool {
    match wanted {
        "read" => matches!(level, "read" | "write"),
        _ => level == "write",
    }
}

/// What the steps of an example do, the job's token may do: the PR comment needs
/// `pull-requests: write`, `baseline: auto` needs `actions: read`, ghcr.io needs `packages`
/// (write to push), releases need `contents: read`.
fn example_has_the_permissions_it_needs(file: &Path) {
    let workflow = yaml(file);
    let triggers: Vec<String> = match &workflow["on"] {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(list) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        map => keys(map).into_iter().collect(),
    };
    let pull_request = triggers
        .iter()
        .any(|t| t == "pull_request" || t == "pull_request_target");
    // A workflow_run job reads the triggering run's record artifacts and comments on its
    // pull request.
    let workflow_run = triggers.iter().any(|t| t == "workflow_run");
    for (_, job) in workflow["jobs"].as_mapping().unwrap() {
        let mut needs: Vec<(&str, &str, String)> = Vec::new();
        for step in job["steps"].as_sequence().unwrap() {
            let uses = step["uses"].as_str().unwrap_or_default();
            let with = &step["with"];
            let input = |name: &str| with.get(name).and_then(Value::as_str).unwrap_or_default();
            let run = step["run"].as_str().unwrap_or_default();
            if uses.starts_with("cachehit/cachehit") {
                if input("baseline") != "none" {
                    needs.push(("actions", "read", "baseline: auto".into()));
                    needs.push(("contents", "read", "baseline: auto release assets".into()));
                }
                if (pull_request || workflow_run) && !matches!(input("comment"), "off" | "false") {
                    needs.push(("pull-requests", "write", "the PR comment".into()));
                }
                if workflow_run || input("build-record") == "artifact" {
                    needs.push(("actions", "read", "build-record artifacts".into()));
                }
                if input("image").starts_with("ghcr.io/") {
                    needs.push(("packages", "read", "image on ghcr.io".into()));
                }
            }
            if uses.starts_with("docker/build-push-action")
                && with.get("push").and_then(Value::as_bool) == Some(true)
                && input("tags").contains("ghcr.io/")
            {
                needs.push(("packages", "write", "pushing to ghcr.io".into()));
            }
            if uses.starts_with("docker/login-action") && input("registry") == "ghcr.io" {
                needs.push(("packages", "read", "logging in to ghcr.io".into()));
            }
            if uses.starts_with("actions/download-artifact") && !input("run-id").is_empty() {
                needs.push(("actions", "read", "another run's artifact".into()));
            }
            if run.contains("gh release") {
                needs.push(("contents", "read", "gh release".into()));
            }
        }
        for (name, level, why) in needs {
            let granted = permission(&workflow, job, name);
            assert!(
                at_least(granted, level),
                "{}: {why} needs `{name}: {level}`, the job has `{granted}`",
                file.display()
            );
        }
    }
}

#[test]
fn action_image_runs_audit_as_the_runner_runs_a_docker_action() {
    if !support::engine_available("action_image_runs_audit_as_the_runner_runs_a_docker_action") {
        return;
    }
    let image = composite::action_image();

    let version = support::docker(&["run", "--rm", &image, "--version"]);
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("cachehit {}", env!("CARGO_PKG_VERSION"))
    );

    // The runner mounts the workspace and the file-command folder, and points the
    // GITHUB_* file variables inside them.
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("workspace");
    let commands = dir.path().join("file_commands");
    std::fs::create_dir_all(workspace.join("reports")).unwrap();
    std::fs::create_dir_all(&commands).unwrap();
    let summary = commands.join("step_summary");
    std::fs::write(&summary, "").unwrap();
    for (release, scenario, fixture) in [
        ("1.0.0", "p1-copy-before-deps", "v1"),
        ("1.1.0", "p1-copy-before-deps", "v2"),
    ] {
        let report = support::cachehit()
            .arg("report")
            .arg(
                Path::new(ROOT)
                    .join("tests/fixtures/buildkit-v0.24")
                    .join(scenario)
                    .join(format!("{fixture}.rawjson")),
            )
            .args(["--format", "json", "-o"])
            .arg(workspace.join("reports").join(format!("{release}.json")))
            .status()
            .unwrap();
        assert!(report.success());
    }
    let mount = |host: &Path, inside: &str| format!("{}:{inside}", host.display());
    let output = support::docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--workdir",
        "/github/workspace",
        "-e",
        "GITHUB_ACTIONS=true",
        "-e",
        "GITHUB_WORKSPACE=/github/workspace",
        "-e",
        "GITHUB_STEP_SUMMARY=/github/file_commands/step_summary",
        "-e",
        "GITHUB_EVENT_NAME=workflow_dispatch",
        "-v",
        &mount(&workspace, "/github/workspace"),
        "-v",
        &mount(&commands, "/github/file_commands"),
        &image,
        "audit",
        "--summary",
        "reports",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "audit in the container failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("| 1.0.0 | 0% | 0/4 |"), "{stdout}");
    assert!(stdout.contains("| 1.1.0 | 25% | 1/4 |"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), stdout);
}

const TOKEN: &str = "ghs_containerTestToken42";
const PR: u64 = 11;

/// The pull-request reviewer of examples/workflows/pr-comment.yml: a rawjson log given as
/// `build-log`, run through action.yml's steps with the runner's environment and files.
#[test]
fn action_comments_on_the_pull_request_as_the_runner_runs_it() {
    if !support::engine_available("action_comments_on_the_pull_request_as_the_runner_runs_it") {
        return;
    }
    let image = composite::action_image();
    let server = support::github_server::GitHubServer::start(TOKEN);

    let mut event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join(
            "tests/fixtures/public-samples/github-event-payloads/pull_request.synchronize.GITHUB_EVENT_PATH.buildx-ghactx_pr_event.json",
        ))
        .unwrap(),
    )
    .unwrap();
    event["number"] = PR.into();
    event["pull_request"]["number"] = PR.into();
    let mut job = composite::Job::new("pull_request", &event);
    job.set_env("GITHUB_API_URL", server.api_url.clone());
    job.set_env("CACHEHIT_ACTION_IMAGE", image);
    let scenario = Path::new(ROOT).join("tests/fixtures/buildkit-v0.24/p1-copy-before-deps");
    std::fs::copy(
        scenario.join("v2.rawjson"),
        job.workspace.join("build.rawjson"),
    )
    .unwrap();
    std::fs::copy(
        scenario.join("Dockerfile"),
        job.workspace.join("Dockerfile"),
    )
    .unwrap();

    let run = composite::run_action(
        Path::new(ROOT),
        &[
            ("github-token", TOKEN),
            ("build-log", "build.rawjson"),
            ("baseline", "none"),
            ("comment", "on"),
        ],
        &job,
        None,
    );
    let log = run.log();
    assert!(run.success, "{log}");
    // Only the runner's mask command may carry the token.
    let unmasked = log
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .any(|l| l.contains(TOKEN));
    assert!(!unmasked, "token leaked");

    let comments = server.comments();
    assert_eq!(comments.len(), 1);
    let body = &comments[0].body;
    assert!(body.starts_with("<!-- cachehit:default -->\n"), "{body}");
    assert!(body.contains("1/4 steps cached (25%)"), "{body}");
    assert!(body.contains("cache-busting-order"), "{body}");

    let outputs = &run.outputs;
    assert_eq!(outputs["steps-cached"], "1");
    assert_eq!(outputs["steps-total"], "4");
    assert_eq!(outputs["cache-hit-ratio"], "0.2500");
    assert!(outputs["comment-url"].ends_with(&format!("#issuecomment-{}", comments[0].id)));
    // The report is in the workspace, and its path relative to it: a later step, which starts
    // in the workspace, finds it.
    assert_eq!(outputs["report-path"], "cachehit-report.json");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(job.workspace.join(&outputs["report-path"])).unwrap(),
    )
    .unwrap();
    assert_eq!(report["summary"]["steps_cached"], 1);
    // Nothing left in RUNNER_TEMP but the runner's own folders.
    let left: Vec<String> = std::fs::read_dir(&job.temp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("_"))
        .collect();
    assert!(left.is_empty(), "left in RUNNER_TEMP: {left:?}");

    assert!(run.summary.contains("### cachehit"), "{}", run.summary);
    assert!(log.contains("::warning file=Dockerfile,line="), "{log}");
}
