//! `cachehit action` run the way the runner runs it (INPUT_*/GITHUB_* variables, output and
//! summary files, the event file) against a local server that follows GitHub's REST contract.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use support::github_server::{GitHubServer, Identity};

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
    /// RUNNER_TEMP: outside the workspace, as on a runner.
    temp: tempfile::TempDir,
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
        Workspace {
            dir,
            temp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, server: &GitHubServer, inputs: &[(&str, &str)]) -> Run {
        self.run_with(server, inputs, &[])
    }

    /// A run with `env` set after the defaults (event, ref, file-command paths...).
    fn run_with(
        &self,
        server: &GitHubServer,
        inputs: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Run {
        let _ = std::fs::remove_file(self.path("output"));
        let _ = std::fs::remove_file(self.path("summary"));
        let mut command = support::cachehit();
        command
            .arg("action")
            .env_clear()
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", self.dir.path())
            .env("GITHUB_REPOSITORY", "o/r")
            .env("GITHUB_API_URL", &server.api_url)
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", self.path("event.json"))
            .env("GITHUB_REF", format!("refs/pull/{PR}/merge"))
            .env("GITHUB_OUTPUT", self.path("output"))
            .env("GITHUB_STEP_SUMMARY", self.path("summary"))
            .env("GITHUB_RUN_ID", "5000")
            .env("RUNNER_TEMP", self.temp.path())
            .env("CACHEHIT_RETRY_BASE_MS", "5")
            .env("INPUT_GITHUB-TOKEN", TOKEN)
            .env("INPUT_BUILD-LOG", "build.rawjson")
            .env("INPUT_BASELINE", "none")
            .env("INPUT_COMMENT", "on");
        for (name, value) in env {
            command.env(name, value);
        }
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

    /// Replaces the event file with `event` (and the default branch `main`).
    fn set_event(&self, mut event: serde_json::Value) {
        event["repository"]["default_branch"] = "main".into();
        event["repository"]["full_name"] = "o/r".into();
        std::fs::write(self.path("event.json"), event.to_string()).unwrap();
    }

    /// The JSON report the run wrote, found through its `report-path` output as a later step
    /// in the workspace would.
    fn report(&self, run: &Run) -> serde_json::Value {
        let path = &run.outputs["report-path"];
        assert!(Path::new(path).is_relative(), "{path}");
        serde_json::from_str(&std::fs::read_to_string(self.dir.path().join(path)).unwrap()).unwrap()
    }
}

/// A JSON report of `scenario`'s `release` build, as an earlier run uploaded it.
fn report_of(scenario: &str, release: &str) -> Vec<u8> {
    let out = support::cachehit()
        .args(["report", "--format", "json"])
        .arg(fixture(&format!(
            "buildkit-v0.24/{scenario}/{release}.rawjson"
        )))
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
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
    // In the workspace, relative to it: the same file for the host's later steps.
    assert_eq!(run.outputs["report-path"], "cachehit-report.json");
    assert_eq!(ws.report(&run)["schema_version"], 1);
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
    let baseline = report_of("p2-deps-first", "v2");
    server.add_run(4000, "main", "success");
    server.add_artifact(
        77,
        "cachehit-report",
        4000,
        "main",
        &[("cachehit-report.json", &baseline)],
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
    // The zip comes from storage on another host, which never sees the token.
    let storage = server.storage_requests();
    assert!(
        storage
            .iter()
            .any(|r| r.path.starts_with("/blobs/artifact-77?")),
        "{storage:#?}"
    );
    assert!(
        storage.iter().all(|r| r.authorization.is_none()),
        "{storage:#?}"
    );
    // Nothing to find: the report without comparison, saying so.
    let empty = GitHubServer::start(TOKEN);
    let run = ws.run(&empty, &[("baseline", "auto")]);
    assert_eq!(run.code, Some(0));
    assert!(run.summary.contains("no baseline"), "{}", run.summary);
}

#[test]
fn github_enterprise_api_path_pagination_and_missing_records() {
    // GitHub Enterprise Server serves the API under /api/v3 only, and so do its Link headers.
    let ghes = GitHubServer::start_ghes(TOKEN);
    for i in 0..120 {
        ghes.add_comment(PR, &format!("review comment {i}"), "someone");
    }
    let ws = Workspace::new("p2-deps-first", "v2");
    let first = ws.run(&ghes, &[]);
    assert_eq!(first.code, Some(0), "{}", first.stdout);
    let again = ws.run(&ghes, &[]);
    assert_eq!(again.code, Some(0), "{}", again.stdout);
    assert!(first.outputs["comment-url"].contains("#issuecomment-"));
    let requests = ghes.requests();
    assert!(
        requests.iter().all(|r| r.path.starts_with("/api/v3/")),
        "{:#?}",
        requests.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert!(
        requests.iter().any(
            |r| r.path.starts_with("/api/v3/repos/o/r/issues/7/comments")
                && r.path.contains("page=2")
        ),
        "followed the Link header under /api/v3"
    );
    let ours: Vec<_> = ghes
        .comments()
        .into_iter()
        .filter(|c| c.body.starts_with("<!-- cachehit:default -->"))
        .collect();
    assert_eq!(ours.len(), 1, "the comment on page 2 was found again");

    // No records at all: a clear error, exit 2.
    let server = GitHubServer::start(TOKEN);
    let run = ws.run(&server, &[("build-log", "missing.rawjson")]);
    assert_eq!(run.code, Some(2));
    assert!(run.stdout.contains("missing.rawjson"), "{}", run.stdout);
}

#[test]
fn the_report_is_written_in_the_workspace_and_its_output_path_is_relative() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new("p2-deps-first", "v2");
    let off = [("comment", "off")];

    // Default: the workspace root, not RUNNER_TEMP (a Docker action does not share it with
    // the host's later steps).
    let run = ws.run(&server, &off);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(run.outputs["report-path"], "cachehit-report.json");
    assert!(ws.path("cachehit-report.json").is_file());
    assert_eq!(std::fs::read_dir(ws.temp.path()).unwrap().count(), 0);

    // Several images: the comment key names the file, so reports do not overwrite each other.
    let run = ws.run(&server, &[("comment", "off"), ("comment-key", "api image")]);
    assert_eq!(
        run.outputs["report-path"],
        "cachehit-report-api%20image.json"
    );
    assert_eq!(ws.report(&run)["summary"]["steps_cached"], 3);

    // A relative input is in the workspace, and stays relative.
    let run = ws.run(
        &server,
        &[("comment", "off"), ("report-path", "reports/./image.json")],
    );
    assert_eq!(run.outputs["report-path"], "reports/image.json");
    assert!(ws.path("reports/image.json").is_file());

    // An absolute path inside the workspace is given relative to it.
    let inside = ws.path("out/abs.json");
    let run = ws.run(
        &server,
        &[
            ("comment", "off"),
            ("report-path", inside.to_str().unwrap()),
        ],
    );
    assert_eq!(run.outputs["report-path"], "out/abs.json");
    assert!(
        !run.stdout.contains("outside the workspace"),
        "{}",
        run.stdout
    );

    // Outside the workspace (absolute, or through `..`): not written, with a warning; the
    // summary and the other outputs are.
    for path in [
        ws.temp.path().join("elsewhere.json"),
        PathBuf::from("reports/../../elsewhere.json"),
    ] {
        let run = ws.run(
            &server,
            &[("comment", "off"), ("report-path", path.to_str().unwrap())],
        );
        assert_eq!(run.code, Some(0));
        assert_eq!(run.outputs["report-path"], "");
        assert_eq!(run.outputs["steps-cached"], "3");
        assert!(run.summary.contains("steps cached"));
        assert!(!ws.temp.path().join("elsewhere.json").exists());
        assert!(
            !ws.dir
                .path()
                .parent()
                .unwrap()
                .join("elsewhere.json")
                .exists()
        );
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with("::warning title=cachehit::report-path ")
                    && l.contains("is outside the workspace")
                    && l.contains("the report is not written there")),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn a_github_app_token_updates_its_own_comment_and_never_a_person_s() {
    const APP_TOKEN: &str = "ghs_appInstallationToken77";
    let server = GitHubServer::start(TOKEN);
    server.add_token(APP_TOKEN, Identity::installation("my-app[bot]"));
    // A person quoted the marker in a review comment.
    server.add_comment(PR, "<!-- cachehit:default -->\nquoted by hand", "someone");
    let ws = Workspace::new("p2-deps-first", "v2");
    let token = [("github-token", APP_TOKEN)];
    for _ in 0..2 {
        let run = ws.run(&server, &token);
        assert_eq!(run.code, Some(0), "{}", run.stdout);
        assert!(!run.stdout.contains("::warning"), "{}", run.stdout);
    }
    // GitHub refused /user to the installation token, as it does.
    assert!(
        server.requests().iter().any(|r| r.path == "/user"
            && r.authorization.as_deref() == Some(&format!("Bearer {APP_TOKEN}")))
    );
    let comments = server.comments();
    let by_app: Vec<_> = comments
        .iter()
        .filter(|c| c.user == "my-app[bot]")
        .collect();
    assert_eq!(by_app.len(), 1, "one comment by the app: {comments:#?}");
    assert_eq!(by_app[0].user_type, "Bot");
    assert!(
        comments
            .iter()
            .any(|c| c.user == "someone" && c.body.ends_with("quoted by hand")),
        "the person's comment is untouched"
    );
    assert_eq!(comments.len(), 2);
}

#[test]
fn a_personal_token_matches_its_own_login() {
    const PAT: &str = "github_pat_11AAAAAAA0123456789";
    let server = GitHubServer::start(TOKEN);
    server.add_token(PAT, Identity::user("octocat"));
    // A bot's comment with the marker (another workflow's) is not this token's.
    server.add_comment_as(
        PR,
        "<!-- cachehit:default -->\nold",
        "github-actions[bot]",
        "Bot",
    );
    let ws = Workspace::new("p2-deps-first", "v2");
    for _ in 0..2 {
        let run = ws.run(&server, &[("github-token", PAT)]);
        assert_eq!(run.code, Some(0), "{}", run.stdout);
    }
    let comments = server.comments();
    let mine: Vec<_> = comments.iter().filter(|c| c.user == "octocat").collect();
    assert_eq!(mine.len(), 1, "{comments:#?}");
    assert_eq!(mine[0].user_type, "User");
    assert!(
        comments
            .iter()
            .any(|c| c.body == "<!-- cachehit:default -->\nold")
    );
}

/// A tag push or release event, as the runner describes it.
fn tag_run_env(tag: &str) -> Vec<(String, String)> {
    vec![
        ("GITHUB_EVENT_NAME".into(), "push".into()),
        ("GITHUB_REF".into(), format!("refs/tags/{tag}")),
        ("GITHUB_REF_TYPE".into(), "tag".into()),
        ("GITHUB_REF_NAME".into(), tag.into()),
    ]
}

fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn a_tag_run_compares_with_the_previous_release_tag_s_artifact() {
    let server = GitHubServer::start(TOKEN);
    let baseline = report_of("p2-deps-first", "v2");
    // Releases, oldest first: v1.2.0, v1.3.0, then 110 nightly pre-releases, so the previous
    // published release is on the second page of the list.
    server.add_release("v1.2.0", false, false, &[]);
    server.add_release("v1.3.0", false, false, &[]);
    for n in 0..110 {
        server.add_release(&format!("nightly-{n}"), false, true, &[]);
    }
    // The tag's artifact, and a newer one from a branch that is neither main nor v1.3.0.
    server.add_run(4001, "v1.3.0", "success");
    server.add_artifact(
        41,
        "cachehit-report",
        4001,
        "v1.3.0",
        &[("cachehit-report.json", &baseline)],
    );
    server.add_run(4002, "feature-x", "success");
    server.add_artifact(
        42,
        "cachehit-report",
        4002,
        "feature-x",
        &[("cachehit-report.json", b"{}")],
    );

    let ws = Workspace::new("p2-deps-first", "v1");
    ws.set_event(serde_json::json!({"ref": "refs/tags/v1.4.0", "repository": {}}));
    let env = tag_run_env("v1.4.0");
    let run = ws.run_with(&server, &[("baseline", "auto")], &env_refs(&env));
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.summary);
    let report = ws.report(&run);
    let source = report["comparison"]["baseline_source"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        source, "artifact cachehit-report (id 41) from run 4001 on v1.3.0",
        "{}",
        run.summary
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/repos/o/r/releases?") && r.path.contains("page=2")),
        "followed the releases' Link header"
    );
    // A push event has no pull request: nothing is commented.
    assert!(server.comments().is_empty());
    assert_eq!(run.outputs["comment-url"], "");
}

#[test]
fn a_release_run_takes_the_newest_earlier_release_that_has_the_asset() {
    let server = GitHubServer::start(TOKEN);
    let baseline = report_of("p2-deps-first", "v2");
    server.add_release("v1.1.0", false, false, &[("cachehit-report.json", b"{}")]);
    server.add_release(
        "v1.2.0",
        false,
        false,
        &[("cachehit-report.json", &baseline)],
    );
    server.add_release(
        "v1.3.0",
        false,
        false,
        &[("notes.txt", b"no report attached")],
    );
    server.add_release(
        "v1.4.0-rc1",
        false,
        true,
        &[("cachehit-report.json", b"{}")],
    );
    // The release this run is for: published, its asset not attached yet.
    server.add_release("v1.4.0", false, false, &[]);

    let ws = Workspace::new("p2-deps-first", "v1");
    ws.set_event(serde_json::json!({
        "action": "published",
        "release": {"tag_name": "v1.4.0", "draft": false, "prerelease": false},
        "repository": {}
    }));
    let run = ws.run_with(
        &server,
        &[("baseline", "auto")],
        &[
            ("GITHUB_EVENT_NAME", "release"),
            ("GITHUB_REF", "refs/tags/v1.4.0"),
        ],
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.summary);
    let report = ws.report(&run);
    assert_eq!(
        report["comparison"]["baseline_source"], "release v1.2.0 asset cachehit-report.json",
        "{}",
        run.summary
    );
    // The asset: metadata without the octet-stream Accept, bytes behind a redirect with it;
    // the storage host never gets the token.
    let asset_requests: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/releases/assets/"))
        .collect();
    assert_eq!(asset_requests.len(), 1, "{asset_requests:#?}");
    assert_eq!(
        asset_requests[0].accept.as_deref(),
        Some("application/octet-stream")
    );
    let storage = server.storage_requests();
    assert_eq!(storage.len(), 1, "{storage:#?}");
    assert!(storage[0].path.starts_with("/blobs/asset-"));
    assert_eq!(storage[0].authorization, None);
}

#[test]
fn a_fork_s_newer_artifact_is_never_the_baseline() {
    let server = GitHubServer::start(TOKEN);
    let genuine = report_of("p2-deps-first", "v2");
    // A report claiming everything was cached, planted by a fork's pull request from its
    // own `main`: its run is in this repository, with the fork's code.
    let planted = report_of("p2-deps-first", "v1");
    server.add_run(4000, "main", "success");
    server.add_artifact(
        70,
        "cachehit-report",
        4000,
        "main",
        &[("cachehit-report.json", &genuine)],
    );
    server.add_run_from(
        4100,
        "main",
        "success",
        "pull_request",
        support::github_server::FORK_REPOSITORY_ID,
    );
    server.add_artifact(
        71,
        "cachehit-report",
        4100,
        "main",
        &[("cachehit-report.json", &planted)],
    );
    // A pull_request_target run of the repository's own code is a pull request's run too.
    server.add_run_from(
        4200,
        "main",
        "success",
        "pull_request_target",
        support::github_server::REPOSITORY_ID,
    );
    server.add_artifact(
        72,
        "cachehit-report",
        4200,
        "main",
        &[("cachehit-report.json", &planted)],
    );
    // A workflow_run triggered by the fork's run: not a pull-request event, but the fork's
    // code all the same (`head_repository_id` is the fork's).
    server.add_run_from(
        4300,
        "main",
        "success",
        "workflow_run",
        support::github_server::FORK_REPOSITORY_ID,
    );
    server.add_artifact(
        73,
        "cachehit-report",
        4300,
        "main",
        &[("cachehit-report.json", &planted)],
    );

    let ws = Workspace::new("p2-deps-first", "v1");
    let run = ws.run(&server, &[("baseline", "auto"), ("comment", "off")]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(
        ws.report(&run)["comparison"]["baseline_source"],
        "artifact cachehit-report (id 70) from run 4000 on main"
    );
    let downloads: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/zip"))
        .map(|r| r.path)
        .collect();
    assert_eq!(downloads, ["/repos/o/r/actions/artifacts/70/zip"]);
}

#[test]
fn a_retry_after_longer_than_the_policy_is_not_retried_early() {
    let server = GitHubServer::start(TOKEN);
    // 1 s is more than the test policy's longest wait (40 ms): no retry at all, not one
    // after 40 ms.
    server.inject("POST", "/comments", 403, &[("retry-after", "1")], 1);
    let ws = Workspace::new("p2-deps-first", "v2");
    let run = ws.run(&server, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1, "retried before retry-after");
    assert!(server.comments().is_empty());
    let warning = run
        .stdout
        .lines()
        .find(|l| {
            l.starts_with("::warning title=cachehit::the pull-request comment was not posted")
        })
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        warning.contains("GitHub rate-limited creating the pull-request comment (403)"),
        "{warning}"
    );
    assert!(warning.contains("retry-after: 1"), "{warning}");
    assert!(warning.contains("so it was not retried"), "{warning}");
    assert!(!warning.contains("Fork pull requests"), "{warning}");
    assert!(run.summary.contains("steps cached"));
}

#[test]
fn an_exhausted_rate_limit_waits_for_its_reset_or_stops() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ws = Workspace::new("p2-deps-first", "v2");
    // Reset an hour ahead: stop at once, and say until when.
    let server = GitHubServer::start(TOKEN);
    let reset = (now + 3600).to_string();
    server.inject(
        "GET",
        "/comments",
        403,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-limit", "1000"),
            ("x-ratelimit-reset", &reset),
        ],
        1_000,
    );
    let run = ws.run(&server, &[]);
    assert_eq!(run.code, Some(0));
    let lists = server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/comments"))
        .count();
    assert_eq!(lists, 1, "retried before x-ratelimit-reset");
    assert!(
        run.stdout
            .contains("API rate limit exceeded for installation ID 1.")
            && run.stdout.contains("x-ratelimit-reset")
            && run.stdout.contains("so it was not retried"),
        "{}",
        run.stdout
    );

    // Reset already passed: retried, and the comment is posted.
    let server = GitHubServer::start(TOKEN);
    let reset = (now - 5).to_string();
    server.inject(
        "GET",
        "/comments",
        403,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset),
        ],
        1,
    );
    let run = ws.run(&server, &[]);
    assert_eq!(server.comments().len(), 1, "{}", run.stdout);
}

#[test]
fn a_secondary_rate_limit_without_headers_is_a_rate_limit_not_a_refusal() {
    let server = GitHubServer::start(TOKEN);
    // GitHub's message, no retry-after, no x-ratelimit-remaining: 0.
    server.inject_failure(
        "POST",
        "/comments",
        403,
        &[],
        Some("You have exceeded a secondary rate limit. Please wait a few minutes before you try again."),
        1,
    );
    let ws = Workspace::new("p2-deps-first", "v2");
    let run = ws.run(&server, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    // At least a minute is required, more than the policy allows: one request, no retry.
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1);
    assert!(
        run.stdout
            .contains("GitHub rate-limited creating the pull-request comment (403)")
            && run.stdout.contains("wait 60 s"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("Fork pull requests"), "{}", run.stdout);
}

#[test]
fn the_comment_input_takes_yaml_booleans_and_warns_on_anything_else() {
    let ws = Workspace::new("p2-deps-first", "v2");
    for off in ["off", "false", "FALSE", "Off"] {
        let server = GitHubServer::start(TOKEN);
        let run = ws.run(&server, &[("comment", off)]);
        assert_eq!(run.code, Some(0));
        assert!(server.comments().is_empty(), "comment: {off} posted");
        assert!(!run.stdout.contains("::warning"), "{}", run.stdout);
    }
    for on in ["on", "true", "True"] {
        let server = GitHubServer::start(TOKEN);
        ws.run(&server, &[("comment", on)]);
        assert_eq!(server.comments().len(), 1, "comment: {on}");
    }
    let server = GitHubServer::start(TOKEN);
    let run = ws.run(&server, &[("comment", "sometimes")]);
    assert_eq!(run.code, Some(0));
    assert!(
        run.stdout.contains(
            "::warning title=cachehit::input `comment`: `sometimes` is not one of on, off, on-regression, true, false; using the default, on"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(server.comments().len(), 1, "the default applies");
}

/// A rawjson log of `steps` cached steps whose names are mostly multi-byte characters.
fn huge_build_log(steps: usize) -> String {
    let mut log = String::new();
    for i in 1..=steps {
        let digest = format!("sha256:{i:064x}");
        let name = format!("[{i}/{steps}] RUN echo {}", "✓ük".repeat(20));
        log.push_str(
            &serde_json::json!({"vertexes": [{
                "digest": digest, "name": name,
                "started": "2026-11-22T20:36:33.1Z", "completed": "2026-11-22T20:36:34.1Z",
                "cached": i % 2 == 0
            }]})
            .to_string(),
        );
        log.push('\n');
    }
    log
}

#[test]
fn a_huge_build_s_summary_stays_under_github_s_byte_limit() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new("p2-deps-first", "v2");
    std::fs::write(ws.path("huge.rawjson"), huge_build_log(12_000)).unwrap();
    let run = ws.run(
        &server,
        &[("build-log", "huge.rawjson"), ("comment", "off")],
    );
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let bytes = run.summary.len();
    assert!(bytes < 1024 * 1024, "{bytes} bytes");
    assert!(
        bytes > 512 * 1024,
        "the table is cut, not dropped: {bytes} bytes"
    );
    assert!(
        run.summary.contains("6000/12000 steps cached"),
        "summary line kept"
    );
    assert!(run.summary.contains("more steps not shown"));
    // The report file keeps every step.
    assert_eq!(ws.report(&run)["steps"].as_array().unwrap().len(), 12_000);
}

#[test]
fn on_regression_refreshes_only_its_own_earlier_comment() {
    let server = GitHubServer::start(TOKEN);
    // A person quoted the marker; the build is clean (nothing regressed, no finding).
    server.add_comment(PR, "<!-- cachehit:default -->\nquoted", "someone");
    let ws = Workspace::new("p2-deps-first", "v2");
    let run = ws.run(&server, &[("comment", "on-regression")]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(
        server.comments().len(),
        1,
        "nothing to say, nothing of ours to refresh"
    );
    assert_eq!(run.outputs["comment-url"], "");
    // The workflow's own earlier comment is refreshed.
    let ours = server.add_comment_as(
        PR,
        "<!-- cachehit:default -->\nold news",
        "github-actions[bot]",
        "Bot",
    );
    let run = ws.run(&server, &[("comment", "on-regression")]);
    assert!(run.outputs["comment-url"].ends_with(&format!("#issuecomment-{ours}")));
    let refreshed = server
        .comments()
        .into_iter()
        .find(|c| c.id == ours)
        .unwrap();
    assert!(
        refreshed.body.contains("steps cached"),
        "{}",
        refreshed.body
    );
}

#[test]
fn keys_that_differ_only_in_dropped_characters_keep_their_own_comments() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new("p2-deps-first", "v2");
    for key in ["api image", "apiimage", "日本", "中文"] {
        assert_eq!(ws.run(&server, &[("comment-key", key)]).code, Some(0));
    }
    let mut markers: Vec<String> = server
        .comments()
        .iter()
        .map(|c| c.body.lines().next().unwrap().to_string())
        .collect();
    markers.sort();
    assert_eq!(
        markers,
        [
            "<!-- cachehit:%E4%B8%AD%E6%96%87 -->",
            "<!-- cachehit:%E6%97%A5%E6%9C%AC -->",
            "<!-- cachehit:api%20image -->",
            "<!-- cachehit:apiimage -->",
        ]
    );
}

#[test]
fn an_invalid_gate_is_reported_escaped_and_fails_the_step() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new("p2-deps-first", "v2");
    let run = ws.run(&server, &[("fail-on", "hit-ratio<50%0A::notice::injected")]);
    assert_eq!(run.code, Some(2));
    let error = run
        .stdout
        .lines()
        .find(|l| l.starts_with("::error title=cachehit::input `fail-on`:"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    // `%` escaped, so the runner cannot decode it into a new line (and a new command).
    assert!(error.contains("50%250A::notice::injected"), "{error}");
}

#[test]
fn a_gate_without_evidence_is_a_warning_not_a_silent_pass() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new("p2-deps-first", "v2");
    let run = ws.run(
        &server,
        &[
            ("baseline", "none"),
            ("fail-on", "regression,rebuilt>100"),
            ("comment", "off"),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "::warning title=cachehit::fail-on regression not evaluated: there is no baseline to compare with"
        ),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("rebuilt>100 not evaluated"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_unknown_diagnosis_kind_fails_the_step_listing_the_known_ones() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new("p2-deps-first", "v2");
    let run = ws.run(&server, &[("fail-on", "diagnosis:cache-mode-minimum")]);
    assert_eq!(run.code, Some(2), "{}", run.stdout);
    let error = run
        .stdout
        .lines()
        .find(|l| l.starts_with("::error title=cachehit::input `fail-on`:"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        error.contains("unknown diagnosis kind `cache-mode-minimum`; known kinds: "),
        "{error}"
    );
    for kind in cachehit::report::DiagnosisKind::KNOWN {
        assert!(error.contains(kind.as_str()), "{kind}: {error}");
    }
    assert!(
        server.comments().is_empty(),
        "no work before the settings are valid"
    );
}

#[test]
fn a_summary_or_output_file_that_cannot_be_written_keeps_the_report() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new("p2-deps-first", "v2");
    // The summary file is a folder: it cannot be appended to.
    std::fs::create_dir_all(ws.path("summary-dir")).unwrap();
    let summary = ws.path("summary-dir");
    let run = ws.run_with(
        &server,
        &[("comment", "off")],
        &[("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())],
    );
    assert_eq!(run.code, Some(2), "{}", run.stdout);
    let error = run
        .stdout
        .lines()
        .find(|l| l.starts_with("::error title=cachehit::cannot write the job summary to "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(error.contains(summary.to_str().unwrap()), "{error}");
    assert!(error.contains("the report was written to "), "{error}");
    // The outputs still point at the report.
    assert_eq!(run.outputs["report-path"], "cachehit-report.json");
    assert_eq!(ws.report(&run)["summary"]["steps_cached"], 3);

    std::fs::remove_file(ws.path("cachehit-report.json")).unwrap();
    let output = ws.path("summary-dir");
    let run = ws.run_with(
        &server,
        &[("comment", "off")],
        &[("GITHUB_OUTPUT", output.to_str().unwrap())],
    );
    assert_eq!(run.code, Some(2));
    assert!(
        run.stdout.lines().any(|l| l
            .starts_with("::error title=cachehit::cannot write output `cache-hit-ratio` to ")
            && l.contains(output.to_str().unwrap())
            && l.contains("cachehit-report.json")),
        "{}",
        run.stdout
    );
    assert!(ws.path("cachehit-report.json").is_file());
    assert!(run.summary.contains("steps cached"));

    // The report itself cannot be written (its path is a folder): named, and the summary
    // and the other outputs are still written.
    let run = ws.run(
        &server,
        &[("comment", "off"), ("report-path", "summary-dir")],
    );
    assert_eq!(run.code, Some(2));
    assert!(
        run.stdout.lines().any(|l| l
            .starts_with("::error title=cachehit::cannot write the report to ")
            && l.contains("summary-dir")),
        "{}",
        run.stdout
    );
    assert_eq!(run.outputs["report-path"], "");
    assert_eq!(run.outputs["steps-cached"], "3");
    assert!(run.summary.contains("steps cached"));
}
