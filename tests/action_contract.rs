//! The action.yml contract, from what the action does: `cachehit action` runs in-process with
//! every input action.yml declares set (against the local GitHub server, on a pull request),
//! and the inputs it asked the runner for and the outputs it wrote are compared with
//! action.yml's `inputs` and `outputs`. An input the action stops reading, or an output it
//! stops writing, fails this test; so does one it starts using without declaring it.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cachehit::github::runner::Runner;
use support::github_server::GitHubServer;

const TOKEN: &str = "ghs_contractToken42";
const PR: u64 = 11;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The names under `section` (`inputs`, `outputs`) of action.yml.
fn declared(section: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml"))
        .expect("action.yml");
    let action: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("action.yml is YAML");
    action[section]
        .as_mapping()
        .unwrap_or_else(|| panic!("action.yml has no {section}"))
        .keys()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect()
}

/// Output names in a `GITHUB_OUTPUT` file (`name<<DELIMITER`, value lines, `DELIMITER`).
fn written_outputs(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut lines = text.lines();
    while let Some(head) = lines.next() {
        let (name, delimiter) = head.split_once("<<").expect("multi-line output form");
        names.insert(name.to_string());
        for line in lines.by_ref() {
            if line == delimiter {
                break;
            }
        }
    }
    names
}

#[test]
fn the_action_reads_every_declared_input_and_writes_every_declared_output() {
    let server = GitHubServer::start(TOKEN);
    let workspace = tempfile::tempdir().unwrap();
    let temp = tempfile::tempdir().unwrap();
    let ws = |name: &str| workspace.path().join(name);
    let scenario = fixture("buildkit-v0.24/p2-deps-first");
    std::fs::copy(scenario.join("v2.rawjson"), ws("build.rawjson")).unwrap();
    std::fs::copy(
        scenario.join("v2.history-record.json"),
        ws("build.history.json"),
    )
    .unwrap();
    std::fs::copy(scenario.join("Dockerfile"), ws("Dockerfile")).unwrap();
    let metadata = std::fs::read_to_string(scenario.join("v2.metadata.json")).unwrap();
    // The previous release's report, as an earlier run wrote it.
    let previous = cachehit::analysis::analyze(
        cachehit::readers::read_inputs(
            &[scenario.join("v1.rawjson")],
            &cachehit::readers::ReadOptions::default(),
        )
        .unwrap(),
    );
    std::fs::write(
        ws("previous.json"),
        cachehit::render::json::render(&previous),
    )
    .unwrap();
    let mut event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(
            "public-samples/github-event-payloads/pull_request.synchronize.GITHUB_EVENT_PATH.buildx-ghactx_pr_event.json",
        ))
        .unwrap(),
    )
    .unwrap();
    event["number"] = PR.into();
    event["pull_request"]["number"] = PR.into();
    std::fs::write(ws("event.json"), event.to_string()).unwrap();

    // A value for every input action.yml declares, and nothing else.
    let value = |input: &str| -> String {
        match input {
            "metadata" => metadata.clone(),
            "build-log" => "build.rawjson".into(),
            "build-record" => "build.history.json".into(),
            // Nothing listens there: the image is a problem in the report, not a failure.
            "image" => "127.0.0.1:9/acme/app:v2".into(),
            "baseline" => "previous.json".into(),
            "github-token" => TOKEN.into(),
            "comment" => "on".into(),
            "comment-key" => "contract".into(),
            "fail-on" => "rebuilt>1000".into(),
            "dockerfile" => "Dockerfile".into(),
            "artifact-name" => "cachehit-report".into(),
            "report-path" => "reports/cachehit.json".into(),
            // Bake and the artifact mode have tests of their own: empty is their default.
            "target" | "run-id" => String::new(),
            other => panic!("action.yml declares input `{other}`: give it a value here"),
        }
    };
    let inputs = declared("inputs");
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    let mut env: Vec<(String, String)> = vec![
        ("GITHUB_ACTIONS".into(), "true".into()),
        ("GITHUB_WORKSPACE".into(), path(workspace.path().into())),
        ("GITHUB_REPOSITORY".into(), "o/r".into()),
        ("GITHUB_API_URL".into(), server.api_url.clone()),
        ("GITHUB_EVENT_NAME".into(), "pull_request".into()),
        ("GITHUB_EVENT_PATH".into(), path(ws("event.json"))),
        ("GITHUB_REF".into(), format!("refs/pull/{PR}/merge")),
        ("GITHUB_OUTPUT".into(), path(ws("output"))),
        ("GITHUB_STEP_SUMMARY".into(), path(ws("summary"))),
        ("GITHUB_RUN_ID".into(), "7000".into()),
        ("RUNNER_TEMP".into(), path(temp.path().into())),
        ("CACHEHIT_RETRY_BASE_MS".into(), "5".into()),
    ];
    for input in &inputs {
        env.push((format!("INPUT_{}", input.to_uppercase()), value(input)));
    }
    let runner = Runner::from_vars(env);

    let code = cachehit::cli::action::run_with(&runner).expect("the action runs");

    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(runner.inputs_read(), inputs, "inputs read vs action.yml");
    let outputs = std::fs::read_to_string(ws("output")).unwrap();
    assert_eq!(
        written_outputs(&outputs),
        declared("outputs"),
        "outputs written vs action.yml"
    );
    // The inputs took effect: the comment was posted, the report compared and written where
    // asked, the unreachable image recorded.
    assert_eq!(server.comments().len(), 1);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws("reports/cachehit.json")).unwrap())
            .unwrap();
    assert_eq!(report["comparison"]["baseline_source"], "previous.json");
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["source"] == "127.0.0.1:9/acme/app:v2"),
        "{}",
        report["problems"]
    );
}
