//! `cachehit action` when one step reports several builds or reads them from elsewhere, run
//! as the runner runs it (INPUT_*/GITHUB_* variables, output, summary and event files) against
//! a local server following GitHub's REST contract (tests/support/github_server.rs):
//!
//! - bake metadata with two targets (real records of buildx v0.36.1: the metadata file and one
//!   `.dockerbuild` bundle per target): a report, an output entry and a comment section per
//!   target, or the `target` input's alone; configuration errors name the input;
//! - the build-record artifact docker/build-push-action uploads, read by a later job: zipped
//!   (v6) or unzipped (v7, `skipArchive`), behind a redirect to a separate storage origin,
//!   from the same run or from the run that triggered a `workflow_run`, whose pull request
//!   (a fork's) gets the comment; runs triggered by `workflow_run` never serve as baselines.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use support::github_server::{FORK_REPOSITORY_ID, GitHubServer, REPOSITORY_ID};

const TOKEN: &str = "ghs_buildsTestToken77";
const BAKE: &str = "buildx-v0.36/d2-bake-two-targets";
const P1: &str = "buildx-v0.36/p1-copy-before-deps";

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(fixture(rel)).unwrap()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    outputs: HashMap<String, String>,
    summary: String,
}

impl Run {
    fn log(&self) -> &str {
        &self.stdout
    }

    fn warnings(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("::warning"))
            .collect()
    }
}

struct Job {
    workspace: tempfile::TempDir,
    temp: tempfile::TempDir,
    event_name: String,
}

impl Job {
    fn new(event_name: &str, event: serde_json::Value) -> Job {
        let workspace = tempfile::tempdir().unwrap();
        let mut event = event;
        event["repository"]["default_branch"] = "main".into();
        event["repository"]["full_name"] = "o/r".into();
        std::fs::write(workspace.path().join("event.json"), event.to_string()).unwrap();
        Job {
            workspace,
            temp: tempfile::tempdir().unwrap(),
            event_name: event_name.into(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.workspace.path().join(name)
    }

    fn copy(&self, rel: &str, name: &str) {
        std::fs::copy(fixture(rel), self.path(name)).unwrap();
    }

    fn run(&self, server: &GitHubServer, run_id: u64, inputs: &[(&str, &str)]) -> Run {
        let _ = std::fs::remove_file(self.path("output"));
        let _ = std::fs::remove_file(self.path("summary"));
        let mut command = support::cachehit();
        command
            .arg("action")
            .env_clear()
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", self.workspace.path())
            .env("GITHUB_REPOSITORY", "o/r")
            .env("GITHUB_API_URL", &server.api_url)
            .env("GITHUB_EVENT_NAME", &self.event_name)
            .env("GITHUB_EVENT_PATH", self.path("event.json"))
            .env("GITHUB_OUTPUT", self.path("output"))
            .env("GITHUB_STEP_SUMMARY", self.path("summary"))
            .env("GITHUB_RUN_ID", run_id.to_string())
            .env("RUNNER_TEMP", self.temp.path())
            .env("CACHEHIT_RETRY_BASE_MS", "5")
            .env("INPUT_GITHUB-TOKEN", TOKEN)
            .env("INPUT_BASELINE", "none");
        for (name, value) in inputs {
            command.env(format!("INPUT_{}", name.to_uppercase()), value);
        }
        let out = command.output().unwrap();
        let outputs = std::fs::read_to_string(self.path("output")).unwrap_or_default();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
            outputs: parse_outputs(&outputs),
            summary: std::fs::read_to_string(self.path("summary")).unwrap_or_default(),
        }
    }

    fn report(&self, relative: &str) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.path(relative)).unwrap()).unwrap()
    }

    /// Nothing of the action's is left in RUNNER_TEMP.
    fn temp_is_clean(&self) -> bool {
        std::fs::read_dir(self.temp.path())
            .unwrap()
            .next()
            .is_none()
    }
}

fn parse_outputs(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut lines = text.lines();
    while let Some(head) = lines.next() {
        let (name, delim) = head.split_once("<<").expect("multi-line output form");
        let mut value = Vec::new();
        for line in lines.by_ref() {
            if line == delim {
                break;
            }
            value.push(line);
        }
        out.insert(name.to_string(), value.join("\n"));
    }
    out
}

fn pull_request_event(number: u64) -> serde_json::Value {
    let mut event: serde_json::Value = serde_json::from_str(&read(
        "public-samples/github-event-payloads/pull_request.synchronize.GITHUB_EVENT_PATH.buildx-ghactx_pr_event.json",
    ))
    .unwrap();
    event["number"] = number.into();
    event["pull_request"]["number"] = number.into();
    event
}

/// The workspace of a bake job: the metadata output inline, the two exported records.
fn bake_job() -> Job {
    let job = Job::new("pull_request", pull_request_event(9));
    job.copy(&format!("{BAKE}/v2.api.dockerbuild"), "api.dockerbuild");
    job.copy(
        &format!("{BAKE}/v2.worker.dockerbuild"),
        "worker.dockerbuild",
    );
    job.copy(&format!("{BAKE}/Dockerfile"), "Dockerfile");
    job
}

#[test]
fn bake_reports_every_target_with_a_section_each() {
    let server = GitHubServer::start(TOKEN);
    let job = bake_job();
    let metadata = read(&format!("{BAKE}/v2.metadata.json"));
    let run = job.run(
        &server,
        5000,
        &[
            ("metadata", &metadata),
            ("build-record", "api.dockerbuild\nworker.dockerbuild"),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.log());
    // Each target's record went to its own report: no record was taken for another build.
    assert!(run.warnings().is_empty(), "{:?}", run.warnings());
    let api = job.report("cachehit-report-api.json");
    let worker = job.report("cachehit-report-worker.json");
    assert_eq!(
        api["build"]["image_names"][0],
        "127.0.0.1:5066/d2-bake-two-targets/api:v2"
    );
    assert_eq!(
        worker["build"]["image_names"][0],
        "127.0.0.1:5066/d2-bake-two-targets/worker:v2"
    );
    let inputs = |report: &serde_json::Value| -> Vec<String> {
        report["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(inputs(&api).iter().any(|p| p.ends_with("api.dockerbuild")));
    assert!(
        !inputs(&api)
            .iter()
            .any(|p| p.ends_with("worker.dockerbuild"))
    );
    assert!(inputs(&api).contains(&"input `metadata`".to_string()));

    // Outputs: every target together, and each on its own.
    assert_eq!(
        run.outputs["report-path"],
        "cachehit-report-api.json\ncachehit-report-worker.json"
    );
    let cached = |r: &serde_json::Value| r["summary"]["steps_cached"].as_u64().unwrap();
    let total = |r: &serde_json::Value| r["summary"]["steps_total"].as_u64().unwrap();
    assert_eq!(
        run.outputs["steps-cached"],
        (cached(&api) + cached(&worker)).to_string()
    );
    assert_eq!(
        run.outputs["steps-total"],
        (total(&api) + total(&worker)).to_string()
    );
    let each: serde_json::Value = serde_json::from_str(&run.outputs["reports"]).unwrap();
    assert_eq!(each["api"]["steps-cached"], api["summary"]["steps_cached"]);
    assert_eq!(each["worker"]["report-path"], "cachehit-report-worker.json");
    assert!(run.outputs["rebuilt-steps"].contains("api: [api 1/2] COPY api/ ./api/"));

    // One sticky comment, one section per target.
    let comments = server.comments();
    assert_eq!(comments.len(), 1, "{}", run.log());
    let body = &comments[0].body;
    let api_at = body.find("## bake target `api`").expect(body);
    let worker_at = body.find("## bake target `worker`").expect(body);
    assert!(api_at < worker_at);
    assert!(body.contains("### cachehit: 127.0.0.1:5066/d2-bake-two-targets/worker:v2"));
    assert_eq!(
        run.summary.matches("## bake target").count(),
        2,
        "{}",
        run.summary
    );

    // A rerun updates that comment.
    let rerun = job.run(
        &server,
        5001,
        &[
            ("metadata", &metadata),
            ("build-record", "api.dockerbuild\nworker.dockerbuild"),
        ],
    );
    assert_eq!(rerun.code, Some(0));
    assert_eq!(server.comments().len(), 1);
    assert!(job.temp_is_clean());
}

/// The outputs' names in the order they were written.
fn output_order(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut lines = text.lines();
    while let Some(head) = lines.next() {
        let (name, delim) = head.split_once("<<").expect("multi-line output form");
        names.push(name.to_string());
        for line in lines.by_ref() {
            if line == delim {
                break;
            }
        }
    }
    names
}

#[test]
fn every_target_s_outputs_are_written_before_the_comment_and_its_url_last() {
    let server = GitHubServer::start(TOKEN);
    let job = bake_job();
    server.watch_on_comment(&job.path("output"));
    let metadata = read(&format!("{BAKE}/v2.metadata.json"));
    let run = job.run(
        &server,
        5000,
        &[
            ("metadata", &metadata),
            ("build-record", "api.dockerbuild\nworker.dockerbuild"),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.log());
    // When the comment was written, every other output of both targets already was.
    let seen = server.watched_at_comment();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let before = parse_outputs(&seen[0]);
    assert!(!before.contains_key("comment-url"), "{before:?}");
    for name in [
        "cache-hit-ratio",
        "steps-cached",
        "steps-total",
        "rebuilt-steps",
        "pull-bytes",
        "report-path",
        "reports",
    ] {
        assert_eq!(before.get(name), run.outputs.get(name), "{name}");
    }
    let each: serde_json::Value = serde_json::from_str(&before["reports"]).unwrap();
    assert_eq!(each["api"]["report-path"], "cachehit-report-api.json");
    assert_eq!(each["worker"]["report-path"], "cachehit-report-worker.json");
    let written = std::fs::read_to_string(job.path("output")).unwrap();
    assert_eq!(
        output_order(&written).last().map(String::as_str),
        Some("comment-url")
    );
    let comment = &server.comments()[0];
    assert_eq!(
        run.outputs["comment-url"],
        format!("https://github.com/o/r/pull/9#issuecomment-{}", comment.id)
    );
}

#[test]
fn each_target_s_report_outside_the_workspace_or_through_a_link_is_refused() {
    let server = GitHubServer::start(TOKEN);
    let job = bake_job();
    let metadata = read(&format!("{BAKE}/v2.metadata.json"));
    let inputs = |report_path: &'static str| {
        vec![
            ("metadata", metadata.clone()),
            (
                "build-record",
                "api.dockerbuild\nworker.dockerbuild".to_string(),
            ),
            ("report-path", report_path.to_string()),
        ]
    };
    let run_with = |inputs: &[(&str, String)]| {
        let inputs: Vec<(&str, &str)> = inputs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        job.run(&server, 5000, &inputs)
    };
    let outside = job.workspace.path().parent().unwrap().to_path_buf();
    let run = run_with(&inputs("../elsewhere.json"));
    assert_eq!(run.code, Some(0), "{}", run.log());
    let refused: Vec<&str> = run
        .warnings()
        .into_iter()
        .filter(|w| w.contains("is outside the workspace"))
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    for target in ["api", "worker"] {
        assert!(
            refused
                .iter()
                .any(|w| w.contains(&format!("elsewhere-{target}.json"))),
            "{refused:?}"
        );
        assert!(!outside.join(format!("elsewhere-{target}.json")).exists());
    }
    assert_eq!(run.outputs["report-path"], "");
    let each: serde_json::Value = serde_json::from_str(&run.outputs["reports"]).unwrap();
    assert_eq!(each["api"]["report-path"], serde_json::Value::Null);
    assert_eq!(each["worker"]["report-path"], serde_json::Value::Null);
    assert!(!run.outputs["steps-total"].is_empty());
    assert_eq!(run.summary.matches("## bake target").count(), 2);
    assert_eq!(server.comments().len(), 1);

    // A folder on the way that is a link out of the workspace: refused for each target.
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), job.path("reports")).unwrap();
    let run = run_with(&inputs("reports/r.json"));
    assert_eq!(run.code, Some(0), "{}", run.log());
    let refused = run
        .warnings()
        .into_iter()
        .filter(|w| w.contains("the report is not written to") && w.contains("is a symbolic link"))
        .count();
    assert_eq!(refused, 2, "{:?}", run.warnings());
    assert_eq!(run.outputs["report-path"], "");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

#[test]
fn the_target_input_reports_that_target_alone() {
    let server = GitHubServer::start(TOKEN);
    let job = bake_job();
    let metadata = read(&format!("{BAKE}/v2.metadata.json"));
    let run = job.run(
        &server,
        5000,
        &[
            ("metadata", &metadata),
            ("build-record", "api.dockerbuild, worker.dockerbuild"),
            ("target", "worker"),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.log());
    assert!(run.warnings().is_empty(), "{:?}", run.warnings());
    assert_eq!(run.outputs["report-path"], "cachehit-report.json");
    let report = job.report("cachehit-report.json");
    assert_eq!(
        report["build"]["image_names"][0],
        "127.0.0.1:5066/d2-bake-two-targets/worker:v2"
    );
    let each: serde_json::Value = serde_json::from_str(&run.outputs["reports"]).unwrap();
    assert_eq!(each["default"]["report-path"], "cachehit-report.json");
    let body = &server.comments()[0].body;
    assert!(!body.contains("bake target"), "{body}");
    assert!(body.contains("worker:v2"), "{body}");
}

#[test]
fn bake_configuration_errors_name_the_input() {
    let server = GitHubServer::start(TOKEN);
    let job = bake_job();
    let metadata = read(&format!("{BAKE}/v2.metadata.json"));
    let run = job.run(
        &server,
        5000,
        &[
            ("metadata", &metadata),
            ("build-record", "api.dockerbuild"),
            ("target", "web"),
        ],
    );
    assert_eq!(run.code, Some(2), "{}", run.log());
    assert!(
        run.log().contains(
            "::error title=cachehit::input `target`: `web` is not a target of the `metadata` \
             input (its targets: api, worker)"
        ),
        "{}",
        run.log()
    );
    assert!(run.summary.contains("No report"), "{}", run.summary);

    // Inline metadata that is not JSON: the input is named, not the file it was kept in.
    let temp = job.temp.path().display().to_string();
    let run = job.run(
        &server,
        5000,
        &[("metadata", "{\"api\": {\"buildx.build.ref\": ")],
    );
    assert_eq!(run.code, Some(2), "{}", run.log());
    assert!(
        run.log()
            .contains("::error title=cachehit::input `metadata`: the JSON ends early"),
        "{}",
        run.log()
    );
    assert!(!run.log().contains(&temp), "{}", run.log());
    assert!(!run.log().contains("/tmp/"), "{}", run.log());
    // Beside a record it is a warning naming the input, and the report comes out.
    let run = job.run(
        &server,
        5000,
        &[
            ("metadata", "not json"),
            ("build-record", "api.dockerbuild"),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.log());
    assert!(
        run.warnings()
            .iter()
            .any(|w| w.contains("input `metadata`: not valid JSON")),
        "{:?}",
        run.warnings()
    );
    assert!(!run.log().contains(&temp));
}

/// A fork's pull request #21 (branch `fix-cache` of `forker/r`), its build run 4242 triggered
/// by `pull_request`, and the `workflow_run` event of the job that runs after it.
fn fork_pull_request(server: &GitHubServer, head_sha: &str) -> serde_json::Value {
    server.add_run_from(
        4242,
        "fix-cache",
        "success",
        "pull_request",
        FORK_REPOSITORY_ID,
    );
    server.add_pull(21, "forker/r", "fix-cache", head_sha);
    serde_json::json!({
        "action": "completed",
        "workflow_run": {
            "id": 4242, "name": "build", "event": "pull_request", "status": "completed",
            "conclusion": "success", "head_branch": "fix-cache", "head_sha": head_sha,
            // GitHub lists only the repository's own branches here: empty for a fork.
            "pull_requests": [],
            "repository": {"id": REPOSITORY_ID, "full_name": "o/r"},
            "head_repository": {"id": FORK_REPOSITORY_ID, "full_name": "forker/r",
                                "owner": {"login": "forker"}}
        },
        "workflow": {"name": "build"}
    })
}

const FORK_SHA: &str = "5d1c0bb5e0b3a5d5b7a1c2e3f4a5b6c7d8e9f012";

#[test]
fn a_workflow_run_job_reports_the_fork_s_record_and_comments_on_its_pull_request() {
    let server = GitHubServer::start(TOKEN);
    let event = fork_pull_request(&server, FORK_SHA);
    // build-push-action v7: the bundle uploaded unzipped.
    let bundle = std::fs::read(fixture(&format!("{P1}/v2.dockerbuild"))).unwrap();
    server.add_artifact_unzipped(801, "o~r~IOX0G8.dockerbuild", 4242, &bundle);
    // A report the fork's run uploaded as the baseline artifact: never taken.
    let planted = std::fs::read(fixture("buildkit-v0.24/p1-copy-before-deps/v1.rawjson")).unwrap();
    server.add_artifact(
        802,
        "cachehit-report",
        4242,
        "main",
        &[("x.rawjson", &planted)],
    );
    let job = Job::new("workflow_run", event);
    job.copy(&format!("{P1}/Dockerfile"), "Dockerfile");

    // Nothing but the token: on workflow_run the triggering run's record is read.
    let run = job.run(&server, 9000, &[("baseline", "auto")]);
    assert_eq!(run.code, Some(0), "{}", run.log());
    assert_eq!(run.outputs["steps-total"], "4", "{}", run.log());
    assert_eq!(run.outputs["steps-cached"], "1");
    let comments = server.comments();
    assert_eq!(comments.len(), 1, "{}", run.log());
    assert_eq!(comments[0].issue, 21);
    assert!(
        comments[0].body.contains("1/4 steps cached (25%)"),
        "{}",
        comments[0].body
    );
    assert!(run.outputs["comment-url"].contains("/pull/21#issuecomment-"));

    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/repos/o/r/actions/runs/4242/artifacts"))
    );
    assert!(
        paths
            .iter()
            .any(|p| p == "/repos/o/r/actions/artifacts/801/zip")
    );
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with(&format!("/repos/o/r/commits/{FORK_SHA}/pulls"))),
        "{paths:#?}"
    );
    // The fork's report artifact was never fetched as a baseline.
    assert!(
        !paths.iter().any(|p| p.contains("/artifacts/802/")),
        "{paths:#?}"
    );
    // The bytes come from storage, on another origin, without the token.
    let storage = server.storage_requests();
    assert!(
        storage
            .iter()
            .any(|r| r.path.starts_with("/blobs/artifact-801?"))
    );
    assert!(storage.iter().all(|r| r.authorization.is_none()));
    assert!(job.temp_is_clean());
}

#[test]
fn the_fork_s_pull_request_is_found_by_its_branch_when_the_commit_moved_on() {
    let server = GitHubServer::start(TOKEN);
    // The pull request's head moved on since the run: its commit lists no pull request.
    let event = fork_pull_request(&server, "0000000000000000000000000000000000000001");
    {
        let mut state = server.state.lock().unwrap();
        state.pulls[0]["head"]["sha"] = "0000000000000000000000000000000000000002".into();
    }
    let bundle = std::fs::read(fixture(&format!("{P1}/v2.dockerbuild"))).unwrap();
    server.add_artifact_unzipped(801, "o~r~IOX0G8.dockerbuild", 4242, &bundle);
    let job = Job::new("workflow_run", event);
    let run = job.run(&server, 9000, &[]);
    assert_eq!(run.code, Some(0), "{}", run.log());
    assert_eq!(server.comments().len(), 1, "{}", run.log());
    assert_eq!(server.comments()[0].issue, 21);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.contains("/pulls?") && r.path.contains("head=forker%3Afix-cache")),
        "{:#?}",
        server.requests()
    );
}

#[test]
fn a_later_job_of_the_same_run_reads_the_zipped_record_artifact() {
    let server = GitHubServer::start(TOKEN);
    server.add_run(6000, "main", "in_progress");
    // build-push-action v6: the bundle as the one file of a zip.
    let bundle = std::fs::read(fixture(&format!("{P1}/v2.dockerbuild"))).unwrap();
    server.add_artifact(
        901,
        "o~r~IOX0G8.dockerbuild",
        6000,
        "main",
        &[("o~r~IOX0G8.dockerbuild", &bundle)],
    );
    let job = Job::new("push", serde_json::json!({"ref": "refs/heads/main"}));
    let run = job.run(&server, 6000, &[("build-record", "artifact")]);
    assert_eq!(run.code, Some(0), "{}", run.log());
    assert_eq!(run.outputs["steps-total"], "4");
    assert_eq!(run.outputs["report-path"], "cachehit-report.json");
    let report = job.report("cachehit-report.json");
    assert_eq!(report["summary"]["steps_cached"], 1);
    // A push has no pull request: no comment.
    assert!(server.comments().is_empty());

    // Two builds in the run (a matrix): a report each, named by the record's ref.
    let other = std::fs::read(fixture(&format!("{BAKE}/v2.worker.dockerbuild"))).unwrap();
    server.add_artifact_unzipped(902, "o~r~MQZ9K1.dockerbuild", 6000, &other);
    let run = job.run(&server, 6000, &[("build-record", "artifact")]);
    assert_eq!(run.code, Some(0), "{}", run.log());
    assert_eq!(
        run.outputs["report-path"],
        "cachehit-report-iox0g8.json\ncachehit-report-mqz9k1.json"
    );
    assert!(
        run.summary
            .contains("## build record `o~r~MQZ9K1.dockerbuild`"),
        "{}",
        run.summary
    );
}

#[test]
fn a_run_without_a_record_artifact_fails_saying_why() {
    let server = GitHubServer::start(TOKEN);
    server.add_run(6000, "main", "success");
    server.add_artifact(903, "other", 6000, "main", &[("a.txt", b"x")]);
    let job = Job::new("push", serde_json::json!({"ref": "refs/heads/main"}));
    let run = job.run(
        &server,
        7000,
        &[("build-record", "artifact"), ("run-id", "6000")],
    );
    assert_eq!(run.code, Some(2), "{}", run.log());
    assert!(
        run.log().contains(
            "::error title=cachehit::run 6000 has no build-record artifact (`*.dockerbuild`)"
        ),
        "{}",
        run.log()
    );
    let run = job.run(
        &server,
        7000,
        &[("build-record", "artifact"), ("run-id", "six")],
    );
    assert_eq!(run.code, Some(2));
    assert!(
        run.log()
            .contains("input `run-id`: `six` is not a workflow run id")
    );
    // An artifact that is no record: said, with its name.
    server.add_artifact_unzipped(904, "o~r~BROKEN.dockerbuild", 6000, b"<html>not it</html>");
    let run = job.run(
        &server,
        7000,
        &[("build-record", "artifact"), ("run-id", "6000")],
    );
    assert_eq!(run.code, Some(2));
    assert!(
        run.log()
            .contains("artifact o~r~BROKEN.dockerbuild: neither a zip nor a gzip"),
        "{}",
        run.log()
    );
}

#[test]
fn a_report_made_in_a_workflow_run_job_is_never_a_baseline() {
    let server = GitHubServer::start(TOKEN);
    let genuine = {
        let out = support::cachehit()
            .args(["report", "--format", "json"])
            .arg(fixture("buildkit-v0.24/p1-copy-before-deps/v2.rawjson"))
            .output()
            .unwrap();
        out.stdout
    };
    server.add_run(4000, "main", "success");
    server.add_artifact(
        70,
        "cachehit-report",
        4000,
        "main",
        &[("cachehit-report.json", &genuine)],
    );
    // The privileged job of a fork's pull request: the repository's own code on main, but
    // its report is the fork's build.
    server.add_run_from(4500, "main", "success", "workflow_run", REPOSITORY_ID);
    server.add_artifact(
        75,
        "cachehit-report",
        4500,
        "main",
        &[("cachehit-report.json", &genuine)],
    );
    let job = Job::new("push", serde_json::json!({"ref": "refs/heads/main"}));
    job.copy(
        "buildkit-v0.24/p1-copy-before-deps/v2.rawjson",
        "build.rawjson",
    );
    let run = job.run(
        &server,
        7000,
        &[("build-log", "build.rawjson"), ("baseline", "auto")],
    );
    assert_eq!(run.code, Some(0), "{}", run.log());
    assert_eq!(
        job.report("cachehit-report.json")["comparison"]["baseline_source"],
        "artifact cachehit-report (id 70) from run 4000 on main"
    );
}

#[test]
fn a_branch_s_pull_request_comes_from_the_event_and_only_this_repository_s() {
    let server = GitHubServer::start(TOKEN);
    server.add_run(4300, "feature", "success");
    let bundle = std::fs::read(fixture(&format!("{P1}/v2.dockerbuild"))).unwrap();
    server.add_artifact_unzipped(811, "o~r~IOX0G8.dockerbuild", 4300, &bundle);
    let sha = "7e3a9c1d5f2b4a6c8e0d1f3a5b7c9d1e3f5a7b9c";
    let event = serde_json::json!({
        "action": "completed",
        "workflow_run": {
            "id": 4300, "event": "pull_request", "conclusion": "success",
            "head_branch": "feature", "head_sha": sha,
            "repository": {"id": REPOSITORY_ID, "full_name": "o/r"},
            "head_repository": {"id": REPOSITORY_ID, "full_name": "o/r", "owner": {"login": "o"}},
            "pull_requests": [
                // Another repository's pull request from a branch of the same name.
                {"number": 99, "head": {"sha": sha}, "base": {"repo": {"id": 555}}},
                {"number": 30, "head": {"sha": sha}, "base": {"repo": {"id": REPOSITORY_ID}}}
            ]
        }
    });
    let job = Job::new("workflow_run", event);
    let run = job.run(&server, 9100, &[]);
    assert_eq!(run.code, Some(0), "{}", run.log());
    let comments = server.comments();
    assert_eq!(comments.len(), 1, "{}", run.log());
    assert_eq!(comments[0].issue, 30);
    // The event named it: no pull request was looked up.
    assert!(
        !server.requests().iter().any(|r| r.path.contains("/pulls")),
        "{:#?}",
        server.requests()
    );
}
