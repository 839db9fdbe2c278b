//! `cachehit action` with inputs a pull request controls and servers that misbehave. Each
//! run must end (exit 0 with warnings, or as documented) with the report file, the job summary
//! and every output written, whatever GitHub does: a dripping or silent API, a dead one,
//! answers far too large, malformed, or paginated in a loop; a symlinked report path; a
//! Dockerfile that is a device or a FIFO; a token with a line break; step names full of
//! invisible characters and workflow commands; thousands of long step names; an artifact of
//! thousands of files.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use support::github_server::GitHubServer;
use support::hostile_server::{Behavior, HostileServer};

const TOKEN: &str = "ghs_hardeningToken77";
const PR: u64 = 9;
const OUTPUTS: [&str; 7] = [
    "cache-hit-ratio",
    "steps-cached",
    "steps-total",
    "rebuilt-steps",
    "pull-bytes",
    "report-path",
    "comment-url",
];

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

impl Run {
    fn warnings(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("::warning title=cachehit::"))
            .collect()
    }

    /// Exit 0, the summary with the report, every output, the report file at its output.
    fn assert_complete(&self, ws: &Workspace) {
        assert_eq!(self.code, Some(0), "{}\n{}", self.stdout, self.stderr);
        assert!(self.summary.contains("steps cached"), "{}", self.summary);
        for name in OUTPUTS {
            assert!(
                self.outputs.contains_key(name),
                "output {name}: {:?}",
                self.outputs
            );
        }
        let path = &self.outputs["report-path"];
        assert!(!path.is_empty(), "{}", self.stdout);
        let report = std::fs::read_to_string(ws.path(path)).unwrap();
        assert!(report.contains("\"schema_version\""));
    }
}

struct Workspace {
    dir: tempfile::TempDir,
    temp: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let src = fixture("buildkit-v0.24/p2-deps-first");
        std::fs::copy(src.join("v2.rawjson"), dir.path().join("build.rawjson")).unwrap();
        std::fs::copy(src.join("Dockerfile"), dir.path().join("Dockerfile")).unwrap();
        let event = serde_json::json!({
            "number": PR,
            "pull_request": {"number": PR},
            "repository": {"default_branch": "main", "full_name": "o/r"}
        });
        std::fs::write(dir.path().join("event.json"), event.to_string()).unwrap();
        Workspace {
            dir,
            temp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The action against the API at `api_url`, with `inputs` and `env` over the defaults
    /// (baseline auto, comment on, short deadlines).
    fn run(&self, api_url: &str, inputs: &[(&str, &str)], env: &[(&str, &str)]) -> Run {
        let _ = std::fs::remove_file(self.path("output"));
        let _ = std::fs::remove_file(self.path("summary"));
        let mut command = support::cachehit();
        command
            .arg("action")
            .env_clear()
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", self.dir.path())
            .env("GITHUB_REPOSITORY", "o/r")
            .env("GITHUB_API_URL", api_url)
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", self.path("event.json"))
            .env("GITHUB_REF", format!("refs/pull/{PR}/merge"))
            .env("GITHUB_OUTPUT", self.path("output"))
            .env("GITHUB_STEP_SUMMARY", self.path("summary"))
            .env("GITHUB_RUN_ID", "5000")
            .env("RUNNER_TEMP", self.temp.path())
            .env("CACHEHIT_RETRY_BASE_MS", "5")
            .env("CACHEHIT_GITHUB_REQUEST_MS", "1000")
            .env("INPUT_GITHUB-TOKEN", TOKEN)
            .env("INPUT_BUILD-LOG", "build.rawjson")
            .env("INPUT_BASELINE", "auto")
            .env("INPUT_COMMENT", "on");
        for (name, value) in env {
            command.env(name, value);
        }
        for (name, value) in inputs {
            command.env(format!("INPUT_{}", name.to_uppercase()), value);
        }
        let out = command.output().unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            outputs: parse_outputs(
                &std::fs::read_to_string(self.path("output")).unwrap_or_default(),
            ),
            summary: std::fs::read_to_string(self.path("summary")).unwrap_or_default(),
        }
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

#[test]
fn a_dripping_api_is_a_timeout_and_every_sink_is_written() {
    let server = HostileServer::start(|_, _| Behavior::Drip {
        every: std::time::Duration::from_millis(200),
    });
    let ws = Workspace::new();
    let run = ws.run(&server.url, &[], &[]);
    run.assert_complete(&ws);
    let warnings = run.warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("timeout: GitHub did not answer")),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("the pull-request comment was not posted")),
        "{warnings:#?}"
    );
    assert_eq!(run.outputs["comment-url"], "");
    // The calls made at once (releases, artifacts, the token's user, the comments) timed out
    // together; nothing was asked after.
    assert!(server.requests().len() <= 4, "{:#?}", server.requests());
}

#[test]
fn a_silent_or_dead_api_is_asked_once_per_call_at_most() {
    let silent = HostileServer::start(|_, _| Behavior::Silent);
    let ws = Workspace::new();
    let run = ws.run(&silent.url, &[], &[]);
    run.assert_complete(&ws);
    assert!(
        run.warnings().iter().any(|w| w.contains("timeout")),
        "{:#?}",
        run.warnings()
    );
    assert!(silent.requests().len() <= 4, "{:#?}", silent.requests());

    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let run = ws.run(&dead, &[], &[]);
    run.assert_complete(&ws);
    let warnings = run.warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("cannot reach GitHub") && w.to_lowercase().contains("refused")),
        "{warnings:#?}"
    );
    // One warning per call that was tried, none for calls never made.
    assert!(warnings.len() <= 6, "{warnings:#?}");
}

#[test]
fn a_spent_budget_is_called_a_timeout_and_the_comment_is_skipped() {
    let server = GitHubServer::start(TOKEN);
    server.set_latency(std::time::Duration::from_millis(400));
    let ws = Workspace::new();
    let run = ws.run(
        &server.url,
        &[],
        &[
            ("CACHEHIT_GITHUB_REQUEST_MS", "5000"),
            ("CACHEHIT_GITHUB_BUDGET_MS", "600"),
        ],
    );
    run.assert_complete(&ws);
    assert!(
        run.warnings()
            .iter()
            .any(|w| w.contains("timeout: ") && w.contains("cachehit gives GitHub are spent")),
        "{:#?}",
        run.warnings()
    );
    assert!(server.comments().is_empty());
}

#[test]
fn huge_malformed_or_looping_answers_are_warnings_and_the_report_comes_out() {
    const HUGE: u64 = 512 * 1024 * 1024;
    let server = HostileServer::start(|request, url| {
        let path = request.path.as_str();
        if path.starts_with("/repos/o/r/releases") {
            // A page that links to itself.
            Behavior::json(200, "[]").with_header("Link", &format!("<{url}{path}>; rel=\"next\""))
        } else if path.starts_with("/repos/o/r/actions/artifacts?") {
            Behavior::json(
                200,
                r#"{"total_count":1,"artifacts":[{"id":77,"name":"cachehit-report","expired":false,
                   "created_at":"2026-11-20T10:00:00Z",
                   "workflow_run":{"id":400,"repository_id":1,"head_repository_id":1,"head_branch":"main"}}]}"#,
            )
        } else if path == "/repos/o/r/actions/runs/400" {
            Behavior::json(
                200,
                r#"{"id":400,"conclusion":"success","head_branch":"main","event":"push",
                   "repository":{"id":1},"head_repository":{"id":1}}"#,
            )
        } else if path == "/repos/o/r/actions/artifacts/77/zip" {
            Behavior::Answer {
                status: 302,
                headers: vec![("Location".into(), format!("{url}/storage/77?sig=s"))],
                body: Vec::new(),
            }
        } else if path.starts_with("/storage/") {
            Behavior::Stream {
                len: HUGE,
                announced: false,
            }
        } else if path == "/user" {
            Behavior::json(200, "{\"login\": ")
        } else {
            Behavior::json(200, "[]")
        }
    });
    let ws = Workspace::new();
    let run = ws.run(&server.url, &[], &[("CACHEHIT_GITHUB_REQUEST_MS", "60000")]);
    run.assert_complete(&ws);
    let warnings = run.warnings().join("\n");
    assert!(
        warnings.contains("listing releases is malformed: the `Link: rel=\"next\"`"),
        "{warnings}"
    );
    assert!(
        warnings.contains("points back to a page already read"),
        "{warnings}"
    );
    assert!(
        warnings
            .contains("downloading the baseline artifact is larger than cachehit reads (32 MiB)"),
        "{warnings}"
    );
    assert!(
        warnings.contains("reading the token's user is malformed: not JSON"),
        "{warnings}"
    );
    assert!(
        server.bytes_sent() < 64 * 1024 * 1024,
        "{} bytes of the 512 MiB answer were sent",
        server.bytes_sent()
    );
    assert!(
        run.summary.contains("Compared with nothing"),
        "{}",
        run.summary
    );
}

#[test]
fn a_symlinked_report_path_is_replaced_or_refused_never_written_through() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    // The pull request commits the report file as a link out of the workspace.
    std::os::unix::fs::symlink(&victim, ws.path("cachehit-report.json")).unwrap();
    let run = ws.run(&server.url, &[("baseline", "none")], &[]);
    run.assert_complete(&ws);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let written = ws.path("cachehit-report.json");
    assert!(!written.symlink_metadata().unwrap().file_type().is_symlink());

    // A folder on the way is a link: refused with a warning; the rest is written.
    std::os::unix::fs::symlink(outside.path(), ws.path("reports")).unwrap();
    let run = ws.run(
        &server.url,
        &[("baseline", "none"), ("report-path", "reports/r.json")],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(run.outputs["report-path"], "");
    assert!(!run.outputs["steps-total"].is_empty());
    assert!(run.summary.contains("steps cached"));
    assert!(
        run.warnings()
            .iter()
            .any(|w| w.contains("the report is not written to") && w.contains("is a symbolic link")),
        "{:#?}",
        run.warnings()
    );
    assert!(!outside.path().join("r.json").exists());
}

#[test]
fn a_dockerfile_that_is_a_device_or_a_fifo_is_refused_with_a_warning() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new();
    std::fs::remove_file(ws.path("Dockerfile")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", ws.path("Dockerfile")).unwrap();
    let run = ws.run(
        &server.url,
        &[("baseline", "none"), ("comment", "off")],
        &[],
    );
    run.assert_complete(&ws);
    assert!(
        run.warnings()
            .iter()
            .any(|w| w.contains("Dockerfile") && w.contains("not a regular file")),
        "{:#?}",
        run.warnings()
    );
    std::fs::remove_file(ws.path("Dockerfile")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(ws.path("Dockerfile"))
        .status()
        .unwrap();
    assert!(made.success());
    // Opening a FIFO would wait for a writer that never comes.
    let run = ws.run(
        &server.url,
        &[("baseline", "none"), ("comment", "off")],
        &[],
    );
    run.assert_complete(&ws);
}

#[test]
fn a_token_with_a_line_break_is_masked_whole_and_not_used() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new();
    let token = "ghs_firstLine123\nsecondLine456";
    let run = ws.run(&server.url, &[("github-token", token)], &[]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "::add-mask::ghs_firstLine123");
    assert_eq!(lines[1], "::add-mask::secondLine456");
    for line in &lines[2..] {
        assert!(
            !line.contains("secondLine456") && !line.contains("ghs_firstLine123"),
            "{line}"
        );
    }
    assert!(
        run.warnings()
            .iter()
            .any(|w| w.contains("input `github-token` (or GITHUB_TOKEN) is not a token")),
        "{}",
        run.stdout
    );
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
    run.assert_complete(&ws);
}

/// A rawjson log of `steps` steps, every third rebuilt, named by `name`.
fn build_log(steps: usize, name: impl Fn(usize) -> String) -> String {
    let mut log = String::new();
    for i in 1..=steps {
        log.push_str(
            &serde_json::json!({"vertexes": [{
                "digest": format!("sha256:{i:064x}"), "name": name(i),
                "started": "2026-11-22T20:36:33.1Z", "completed": "2026-11-22T20:36:34.1Z",
                "cached": i % 3 != 0
            }]})
            .to_string(),
        );
        log.push('\n');
    }
    log
}

#[test]
fn thousands_of_long_step_names_keep_the_outputs_bounded_one_name_a_line() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new();
    let log = build_log(6_000, |i| {
        format!(
            "[{i}/6000] RUN make {}\r\n::error::spoofed\n::add-mask::x",
            "long-target-".repeat(40)
        )
    });
    std::fs::write(ws.path("long.rawjson"), log).unwrap();
    let run = ws.run(
        &server.url,
        &[
            ("build-log", "long.rawjson"),
            ("baseline", "none"),
            ("comment", "off"),
        ],
        &[],
    );
    run.assert_complete(&ws);
    let list = &run.outputs["rebuilt-steps"];
    assert!(list.len() <= 64 * 1024, "{} bytes", list.len());
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("[") || l.starts_with("… and ")),
        "{list}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains("more (the JSON report lists every step)")
    );
    let output_file = std::fs::read_to_string(ws.path("output")).unwrap();
    assert!(
        output_file.len() < 128 * 1024,
        "{} bytes",
        output_file.len()
    );
}

#[test]
fn invisible_characters_in_step_names_leave_no_live_reference_in_the_comment() {
    let server = GitHubServer::start(TOKEN);
    let ws = Workspace::new();
    let log = build_log(6, |i| match i {
        1 => "[1/6] RUN echo #\u{200b}12 GH-\u{2060}7 o/r#\u{061c}3".to_string(),
        2 => "[2/6] RUN echo @\u{00ad}admins w\u{e0041}ww.evil.example".to_string(),
        3 => "[3/6] RUN curl https:\u{3164}//evil.example/o/r/issues/1".to_string(),
        4 => "[4/6] RUN echo <\u{200d}img src=x onerror=alert(1)>".to_string(),
        5 => "[5/6] RUN echo `</details>` \u{202e}txt.exe".to_string(),
        _ => "[6/6] RUN true".to_string(),
    });
    std::fs::write(ws.path("spoof.rawjson"), log).unwrap();
    let run = ws.run(
        &server.url,
        &[("build-log", "spoof.rawjson"), ("baseline", "none")],
        &[],
    );
    run.assert_complete(&ws);
    let comments = server.comments();
    assert_eq!(comments.len(), 1, "{}", run.stdout);
    let body = &comments[0].body;
    let marker_end = body.find("-->").unwrap() + 3;
    let text = body[marker_end..].replace("&#8203;", "\u{200b}");
    for live in [
        "#12", "GH-7", "#3", "@admins", "www.evil", "https://", "<img", "\u{202e}",
    ] {
        assert!(!text.contains(live), "{live:?} is live in:\n{text}");
    }
    assert!(text.contains("evil.example"), "the text is kept: {text}");
}

#[test]
fn an_artifact_of_thousands_of_files_gives_a_short_note_and_a_comment_within_the_limit() {
    let server = GitHubServer::start(TOKEN);
    server.add_run(400, "main", "success");
    let names: Vec<String> = (0..5_000)
        .map(|i| format!("logs/{i:05}-{}.txt", "x".repeat(20)))
        .collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    server.add_artifact(77, "cachehit-report", 400, "main", &files);
    let ws = Workspace::new();
    let run = ws.run(&server.url, &[], &[]);
    run.assert_complete(&ws);
    let comments = server.comments();
    assert_eq!(comments.len(), 1, "{}", run.stdout);
    let body = &comments[0].body;
    assert!(body.chars().count() <= 65_536);
    assert!(body.contains("and 4990 more"), "{body}");
    assert!(!body.contains("logs/00010-"), "{body}");
    assert!(run.summary.len() < 16 * 1024, "{}", run.summary.len());
}
