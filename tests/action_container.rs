//! The action package: action.yml and the example workflows are valid and consistent, and the
//! action image built locally runs as the GitHub runner runs a Docker action.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

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
    assert_eq!(action["runs"]["using"].as_str(), Some("docker"));
    assert_eq!(action["runs"]["image"].as_str(), Some("Dockerfile"));
    assert!(action["branding"]["icon"].is_string() && action["branding"]["color"].is_string());
    let inputs = keys(&action["inputs"]);
    let expected_inputs = [
        "metadata",
        "build-log",
        "build-record",
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
    assert_eq!(files.len(), 4, "{files:?}");
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
    let pr = yaml(&dir.join("pr-comment.yml"));
    assert_eq!(pr["permissions"]["pull-requests"].as_str(), Some("write"));
    let build = yaml(&dir.join("build-and-report.yml"));
    assert_eq!(build["permissions"]["packages"].as_str(), Some("write"));
    assert_eq!(build["permissions"]["actions"].as_str(), Some("read"));
    // Per-step decisions need a record of the build, not just its metadata.
    assert!(text("build-and-report.yml").contains("build-record: build.dockerbuild"));
    assert!(text("pr-comment.yml").contains("--progress=rawjson"));
    assert!(text("pr-comment.yml").contains("build-log: build.rawjson"));
    assert!(text("build-and-report.yml").contains("name: cachehit-report"));
    assert!(text("audit.yml").contains("workflow_dispatch"));
    assert!(text("consume-report.yml").contains(".summary.cache_hit_ratio"));
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
                if pull_request && !matches!(input("comment"), "off" | "false") {
                    needs.push(("pull-requests", "write", "the PR comment".into()));
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

const IMAGE: &str = "cachehit-action:e2e-test";

/// Builds the image with the project's script (nothing pulled; cached after the first build).
fn build_action_image() {
    let output = Command::new(Path::new(ROOT).join("scripts/build-action-image"))
        .arg(IMAGE)
        .output()
        .expect("scripts/build-action-image runs");
    assert!(
        output.status.success(),
        "building the action image failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn action_image_runs_audit_as_the_runner_runs_a_docker_action() {
    if !support::engine_available("action_image_runs_audit_as_the_runner_runs_a_docker_action") {
        return;
    }
    build_action_image();

    let version = support::docker(&["run", "--rm", IMAGE, "--version"]);
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
        IMAGE,
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

/// `name<<DELIM ... DELIM` records of a GITHUB_OUTPUT file.
fn parse_outputs(text: &str) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let mut lines = text.lines();
    while let Some(head) = lines.next() {
        let Some((name, delim)) = head.split_once("<<") else {
            panic!("not the multi-line output form: {head}");
        };
        let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delim).collect();
        out.insert(name.to_string(), value.join("\n"));
    }
    out
}

#[test]
fn action_image_comments_on_the_pull_request_as_the_runner_runs_it() {
    if !support::engine_available("action_image_comments_on_the_pull_request_as_the_runner_runs_it")
    {
        return;
    }
    build_action_image();
    let server = support::github_server::GitHubServer::start(TOKEN);

    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("workspace");
    let commands = dir.path().join("file_commands");
    let temp = dir.path().join("runner_temp");
    for d in [&workspace, &commands, &temp] {
        std::fs::create_dir_all(d).unwrap();
    }
    let scenario = Path::new(ROOT).join("tests/fixtures/buildkit-v0.24/p1-copy-before-deps");
    std::fs::copy(scenario.join("v2.rawjson"), workspace.join("build.rawjson")).unwrap();
    std::fs::copy(scenario.join("Dockerfile"), workspace.join("Dockerfile")).unwrap();
    for file in ["output", "step_summary"] {
        std::fs::write(commands.join(file), "").unwrap();
    }
    let mut event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join(
            "tests/fixtures/public-samples/github-event-payloads/pull_request.synchronize.GITHUB_EVENT_PATH.buildx-ghactx_pr_event.json",
        ))
        .unwrap(),
    )
    .unwrap();
    event["number"] = PR.into();
    event["pull_request"]["number"] = PR.into();
    let event_file = dir.path().join("event.json");
    std::fs::write(&event_file, event.to_string()).unwrap();

    let mount = |host: &Path, inside: &str| format!("{}:{inside}", host.display());
    let env = [
        "GITHUB_ACTIONS=true".to_string(),
        "GITHUB_REPOSITORY=o/r".into(),
        format!("GITHUB_API_URL={}", server.api_url),
        "GITHUB_EVENT_NAME=pull_request".into(),
        "GITHUB_EVENT_PATH=/github/workflow/event.json".into(),
        "GITHUB_WORKSPACE=/github/workspace".into(),
        "GITHUB_OUTPUT=/github/file_commands/output".into(),
        "GITHUB_STEP_SUMMARY=/github/file_commands/step_summary".into(),
        "GITHUB_RUN_ID=6000".into(),
        "RUNNER_TEMP=/github/runner_temp".into(),
        format!("INPUT_GITHUB-TOKEN={TOKEN}"),
        "INPUT_BUILD-LOG=build.rawjson".into(),
        "INPUT_BASELINE=none".into(),
        "INPUT_COMMENT=on".into(),
        "INPUT_DOCKERFILE=Dockerfile".into(),
    ];
    let mut args: Vec<String> = [
        "run",
        "--rm",
        "--network",
        "host",
        "--workdir",
        "/github/workspace",
    ]
    .map(String::from)
    .to_vec();
    for e in &env {
        args.push("-e".into());
        args.push(e.clone());
    }
    for (host, inside) in [
        (&workspace, "/github/workspace"),
        (&commands, "/github/file_commands"),
        (&temp, "/github/runner_temp"),
        (&event_file, "/github/workflow/event.json"),
    ] {
        args.push("-v".into());
        args.push(mount(host, inside));
    }
    args.push(IMAGE.into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = support::docker(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    // Only the runner's mask command may carry the token.
    let unmasked = stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .any(|l| l.contains(TOKEN));
    assert!(!unmasked && !stderr.contains(TOKEN), "token leaked");

    let comments = server.comments();
    assert_eq!(comments.len(), 1);
    let body = &comments[0].body;
    assert!(body.starts_with("<!-- cachehit:default -->\n"), "{body}");
    assert!(body.contains("1/4 steps cached (25%)"), "{body}");
    assert!(body.contains("cache-busting-order"), "{body}");

    let outputs = parse_outputs(&std::fs::read_to_string(commands.join("output")).unwrap());
    assert_eq!(outputs["steps-cached"], "1");
    assert_eq!(outputs["steps-total"], "4");
    assert_eq!(outputs["cache-hit-ratio"], "0.2500");
    assert!(outputs["comment-url"].ends_with(&format!("#issuecomment-{}", comments[0].id)));
    // The report is in the workspace, and its path relative to it: a later step on the host,
    // which starts in the workspace (mounted elsewhere than in the container), finds it.
    assert_eq!(outputs["report-path"], "cachehit-report.json");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace.join(&outputs["report-path"])).unwrap(),
    )
    .unwrap();
    assert_eq!(report["summary"]["steps_cached"], 1);
    assert_eq!(
        std::fs::read_dir(&temp).unwrap().count(),
        0,
        "nothing left in RUNNER_TEMP"
    );

    let summary = std::fs::read_to_string(commands.join("step_summary")).unwrap();
    assert!(summary.contains("### cachehit"), "{summary}");
    assert!(
        stdout.contains("::warning file=Dockerfile,line="),
        "{stdout}"
    );
}
