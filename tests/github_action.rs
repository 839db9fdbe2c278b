//! `cachehit action` run the way the runner runs it (INPUT_*/GITHUB_* variables, output and
//! summary files, the event file) against a local server that follows GitHub's REST contract.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use support::github_server::GitHubServer;

const TOKEN: &str = "ghs_secretTokenValue123";
const PR: u64 = 7;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    outputs: HashMap<String, String>,
    summary: String,
}

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new(scenario: &str, release: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let src = fixture(&format!("buildkit-v0.24/{scenario}"));
        std::fs::copy(
            src.join(format!("{release}.rawjson")),
            dir.path().join("build.rawjson"),
        )
        .unwrap();
        std::fs::copy(src.join("Dockerfile"), dir.path().join("Dockerfile")).unwrap();
        let mut event: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(
                "public-samples/github-event-payloads/pull_request.synchronize.GITHUB_EVENT_PATH.buildx-ghactx_pr_event.json",
            ))
            .unwrap(),
        )
        .unwrap();
        event["number"] = PR.into();
        event["pull_request"]["number"] = PR.into();
        event["repository"]["default_branch"] = "main".into();
        std::fs::write(dir.path().join("event.json"), event.to_string()).unwrap();
        Workspace { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, server: &GitHubServer, inputs: &[(&str, &str)]) -> Run {
        let _ = std::fs::remove_file(self.path("output"));
        let _ = std::fs::remove_file(self.path("summary"));
        let mut command = support::cachehit();
        command
            .arg("action")
            .env_clear()
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", self.dir.path())
            .env("GITHUB_REPOSITORY", "o/r")
            .env("GITHUB_API_URL", &server.url)
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", self.path("event.json"))
            .env("GITHUB_OUTPUT", self.path("output"))
            .env("GITHUB_STEP_SUMMARY", self.path("summary"))
            .env("GITHUB_RUN_ID", "5000")
            .env("RUNNER_TEMP", self.dir.path())
            .env("CACHEHIT_RETRY_BASE_MS", "5")
            .env("INPUT_GITHUB-TOKEN", TOKEN)
            .env("INPUT_BUILD-LOG", "build.rawjson")
            .env("INPUT_BASELINE", "none")
            .env("INPUT_COMMENT", "on");
        for (name, value) in inputs {
            command.env(format!("INPUT_{}", name.to_uppercase()), value);
        }
        let out = command.output().unwrap();
        let outputs_text = std::fs::read_to_string(self.path("output")).unwrap_or_default();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            outputs: parse_outputs(&outputs_text),
            summary: std::fs::read_to_string(self.path("summary")).unwrap_or_default(),
        }
    }
}

/// `name<<DELIM\nvalue\nDELIM\n` entries.
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

fn assert_token_hidden(run: &Run) {
    for line in run
        .stdout
        .lines()
        .chain(run.stderr.lines())
        .chain(run.summary.lines())
    {
        if line.contains(TOKEN) {
            assert_eq!(
                line,
                format!("::add-mask::{TOKEN}"),
                "token printed outside the mask command"
            );
        }
    }
    assert!(
        run.stdout.starts_with(&format!("::add-mask::{TOKEN}")),
        "mask comes first"
    );
    assert!(run.outputs.values().all(|v| !v.contains(TOKEN)));
}

#[test]
fn first_run_comments_and_a_rerun_updates_the_same_comment() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new("p1-copy-before-deps", "v2");
    let run = ws.run(&server, &[]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_token_hidden(&run);
    let comments = server.comments();
    assert_eq!(comments.len(), 1);
    let body = &comments[0].body;
    assert!(body.starts_with("<!-- cachehit:default -->\n"), "{body}");
    let summary_at = body.find("1/4 steps cached (25%)").expect("summary line");
    let table_at = body.find("| step |").expect("step table");
    assert!(summary_at < table_at, "summary first");
    assert!(body.contains("cache-busting-order"));
    assert_eq!(run.outputs["steps-cached"], "1");
    assert_eq!(run.outputs["steps-total"], "4");
    assert_eq!(run.outputs["cache-hit-ratio"], "0.2500");
    assert_eq!(run.outputs["rebuilt-steps"].lines().count(), 3);
    assert!(run.outputs["comment-url"].ends_with(&format!("#issuecomment-{}", comments[0].id)));
    let report_path = PathBuf::from(&run.outputs["report-path"]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report_path).unwrap()).unwrap();
    assert_eq!(report["schema_version"], 1);
    assert!(run.summary.contains("### cachehit"));
    assert!(
        run.stdout.contains("::warning file=Dockerfile,line="),
        "annotation on the Dockerfile line"
    );
    // Every request carried the token as GitHub expects.
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")))
    );

    let again = ws.run(&server, &[]);
    assert_eq!(again.code, Some(0));
    let after = server.comments();
    assert_eq!(after.len(), 1, "still one comment");
    assert_eq!(after[0].id, comments[0].id, "updated in place");
    assert!(server.requests().iter().any(|r| r.method == "PATCH"));
}

#[test]
fn the_marker_is_found_on_a_later_page_and_keys_keep_comments_apart() {
    let server = GitHubServer::start(TOKEN);
    for i in 0..120 {
        server.add_comment(PR, &format!("review comment {i}"), "someone");
    }
    let ws = Workspace::new("p2-deps-first", "v2");
    assert_eq!(ws.run(&server, &[]).code, Some(0));
    assert_eq!(ws.run(&server, &[]).code, Some(0));
    let ours = |key: &str| {
        server
            .comments()
            .iter()
            .filter(|c| c.body.starts_with(&format!("<!-- cachehit:{key} -->")))
            .count()
    };
    assert_eq!(ours("default"), 1);
    assert!(
        server.requests().iter().any(|r| r.path.contains("page=2")),
        "followed the Link header"
    );
    assert_eq!(
        ws.run(&server, &[("comment-key", "worker-image")]).code,
        Some(0)
    );
    assert_eq!((ours("default"), ours("worker-image")), (1, 1));
    // A person quoting the marker does not take the comment over.
    server.add_comment(PR, "<!-- cachehit:other -->\nmy own text", "someone");
    assert_eq!(ws.run(&server, &[("comment-key", "other")]).code, Some(0));
    assert!(
        server
            .comments()
            .iter()
            .any(|c| c.body == "<!-- cachehit:other -->\nmy own text")
    );
}

#[test]
fn two_jobs_finishing_together_leave_one_comment() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new("p2-deps-first", "v2");
    std::thread::scope(|scope| {
        let a = scope.spawn(|| ws.run(&server, &[]));
        let b = scope.spawn(|| ws.run(&server, &[]));
        assert_eq!(a.join().unwrap().code, Some(0));
        assert_eq!(b.join().unwrap().code, Some(0));
    });
    assert_eq!(server.comments().len(), 1, "{:#?}", server.comments());
}

#[test]
fn forbidden_comment_is_a_warning_and_the_summary_is_still_written() {
    let server = GitHubServer::start(TOKEN);
    server.inject("POST", "/comments", 403, &[], 1);
    let ws = Workspace::new("p2-deps-first", "v2");
    let run = ws.run(&server, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "::warning title=cachehit::GitHub refused creating the pull-request comment (403)"
        ),
        "{}",
        run.stdout
    );
    assert!(run.summary.contains("3/5 steps cached"));
    assert_eq!(run.outputs["comment-url"], "");
    assert!(server.comments().is_empty());
}

#[test]
fn server_errors_and_rate_limits_are_retried_with_bounds() {
    let server = GitHubServer::start(TOKEN);
    server.inject("GET", "/comments", 502, &[], 2);
    server.inject("POST", "/comments", 429, &[("retry-after", "0")], 1);
    let ws = Workspace::new("p2-deps-first", "v2");
    let run = ws.run(&server, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(server.comments().len(), 1, "{}", run.stdout);
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 2, "one rate-limited, one accepted");

    // A secondary rate limit: 403 with retry-after is retried, not taken as a refusal.
    let limited = GitHubServer::start(TOKEN);
    limited.inject("POST", "/comments", 403, &[("retry-after", "0")], 1);
    let run = ws.run(&limited, &[]);
    assert_eq!(limited.comments().len(), 1, "{}", run.stdout);

    // Persistent failure: bounded attempts, a warning, and the step does not fail.
    let down = GitHubServer::start(TOKEN);
    down.inject("GET", "/comments", 500, &[], 1_000);
    let run = ws.run(&down, &[]);
    assert_eq!(run.code, Some(0));
    assert!(
        run.stdout
            .contains("the pull-request comment was not posted"),
        "{}",
        run.stdout
    );
    let attempts = down
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/comments"))
        .count();
    assert_eq!(attempts, 4, "bounded retries");
    assert!(run.summary.contains("steps cached"));
}

#[test]
fn gates_fail_the_step_with_a_reason() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new("p5-cache-scope-per-tag", "v2");
    let run = ws.run(
        &server,
        &[
            ("fail-on", "diagnosis:cache-not-delivered"),
            ("comment", "off"),
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("::error title=cachehit gate::cache-not-delivered"),
        "{}",
        run.stdout
    );
    assert!(server.comments().is_empty(), "comment off");
    let run = ws.run(&server, &[("fail-on", "hit-ratio>x")]);
    assert_eq!(run.code, Some(2));
    assert!(run.stdout.contains("hit-ratio>x"));
}

#[test]
fn baseline_auto_finds_the_previous_release_artifact() {
    let server = GitHubServer::start(TOKEN);
    // The previous release's report, as an earlier run uploaded it.
    let baseline = support::cachehit()
        .args(["report", "--format", "json"])
        .arg(fixture("buildkit-v0.24/p2-deps-first/v2.rawjson"))
        .output()
        .unwrap();
    assert!(baseline.status.success());
    server.add_run(4000, "main", "success");
    server.add_artifact(
        77,
        "cachehit-report",
        4000,
        "main",
        &[("cachehit-report.json", &baseline.stdout)],
    );
    let ws = Workspace::new("p2-deps-first", "v1");
    let run = ws.run(&server, &[("baseline", "auto"), ("fail-on", "regression")]);
    // v1 was a cold build: against the cached v2 its steps regressed, and the gate says so.
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.summary);
    assert!(run.summary.contains("regressed"), "{}", run.summary);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.contains("/actions/artifacts/77/zip"))
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/blob/artifact-77"))
    );
    // Nothing to find: the report without comparison, saying so.
    let empty = GitHubServer::start(TOKEN);
    let run = ws.run(&empty, &[("baseline", "auto")]);
    assert_eq!(run.code, Some(0));
    assert!(run.summary.contains("no baseline"), "{}", run.summary);
}

#[test]
fn github_enterprise_api_path_and_missing_records() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new("p2-deps-first", "v2");
    let mut run_env = ws.run(&server, &[]);
    assert_eq!(run_env.code, Some(0));
    // The same against `/api/v3`, as GitHub Enterprise Server serves it.
    let ghes = GitHubServer::start(TOKEN);
    let url = format!("{}/api/v3", ghes.url);
    let mut command = support::cachehit();
    command
        .arg("action")
        .env_clear()
        .env("GITHUB_WORKSPACE", ws.dir.path())
        .env("GITHUB_REPOSITORY", "o/r")
        .env("GITHUB_API_URL", &url)
        .env("GITHUB_EVENT_PATH", ws.path("event.json"))
        .env("INPUT_GITHUB-TOKEN", TOKEN)
        .env("INPUT_BUILD-LOG", "build.rawjson")
        .env("INPUT_BASELINE", "none");
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        ghes.requests()
            .iter()
            .all(|r| r.path.starts_with("/api/v3/"))
    );
    assert_eq!(ghes.comments().len(), 1);
    // No records at all: a clear error, exit 2.
    run_env = ws.run(&server, &[("build-log", "missing.rawjson")]);
    assert_eq!(run_env.code, Some(2));
    assert!(
        run_env.stdout.contains("missing.rawjson"),
        "{}",
        run_env.stdout
    );
}
