//! The whole action step against distant servers: `cachehit action` (the binary, as the
//! action image runs it) on a pull request, with the local GitHub server
//! (`tests/support/github_server.rs`) and a registry following the distribution API
//! (`tests/support/fake_registry.rs`) each answering every request after 100 ms. The run has
//! `baseline: auto` find the previous release's artifact (releases and artifacts listed, the
//! run checked, the zip downloaded through storage), an `image` with two platforms (index and
//! two manifests), and a comment to update (the token's identity, the comments, the update).
//!
//! Prints the median, min and max wall time of repeated runs, the requests each run made and
//! what they would cost one after another, and the same runs without latency.
//! `cargo bench --bench action_step`.

#[path = "../tests/support/fake_registry.rs"]
mod fake_registry;
#[path = "../tests/support/github_server.rs"]
mod github_server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fake_registry::{Auth, FakeRegistry};
use github_server::GitHubServer;

const TOKEN: &str = "ghs_benchToken";
const PR: u64 = 12;
const LATENCY: Duration = Duration::from_millis(100);
const TARGET: Duration = Duration::from_millis(1500);

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/buildkit-v0.24/p2-deps-first")
        .join(rel)
}

struct Setup {
    github: GitHubServer,
    registry: FakeRegistry,
    workspace: tempfile::TempDir,
    temp: tempfile::TempDir,
}

fn setup() -> Setup {
    let previous = Command::new(env!("CARGO_BIN_EXE_cachehit"))
        .args(["report", "--format", "json"])
        .arg(fixture("v1.rawjson"))
        .output()
        .expect("cachehit runs");
    assert!(previous.status.success());
    let github = GitHubServer::start(TOKEN);
    github.add_release("v1.0.0", false, false, &[]);
    github.add_run(400, "main", "success");
    github.add_artifact(
        77,
        "cachehit-report",
        400,
        "main",
        &[("cachehit-report.json", &previous.stdout)],
    );
    github.add_comment_as(
        PR,
        "<!-- cachehit:default -->\nthe previous build's report",
        "github-actions[bot]",
        "Bot",
    );
    let registry = FakeRegistry::start(2, Auth::None);
    let workspace = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("v2.rawjson"),
        workspace.path().join("build.rawjson"),
    )
    .unwrap();
    std::fs::copy(fixture("Dockerfile"), workspace.path().join("Dockerfile")).unwrap();
    let event = serde_json::json!({
        "number": PR, "pull_request": {"number": PR},
        "repository": {"default_branch": "main", "full_name": "o/r"}
    });
    std::fs::write(workspace.path().join("event.json"), event.to_string()).unwrap();
    Setup {
        github,
        registry,
        workspace,
        temp: tempfile::tempdir().unwrap(),
    }
}

/// One action step; its wall time, after checking it did everything.
fn step(setup: &Setup) -> Duration {
    let ws = setup.workspace.path();
    let _ = std::fs::remove_file(ws.join("output"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_cachehit"));
    command
        .arg("action")
        .env_clear()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", ws)
        .env("GITHUB_REPOSITORY", "o/r")
        .env("GITHUB_API_URL", &setup.github.api_url)
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", ws.join("event.json"))
        .env("GITHUB_REF", format!("refs/pull/{PR}/merge"))
        .env("GITHUB_OUTPUT", ws.join("output"))
        .env("GITHUB_STEP_SUMMARY", ws.join("summary"))
        .env("GITHUB_RUN_ID", "5000")
        .env("RUNNER_TEMP", setup.temp.path())
        .env("INPUT_GITHUB-TOKEN", TOKEN)
        .env("INPUT_BUILD-LOG", "build.rawjson")
        .env("INPUT_BASELINE", "auto")
        .env("INPUT_COMMENT", "on")
        .env(
            "INPUT_IMAGE",
            format!("{}/acme/app:v2", setup.registry.addr),
        );
    let start = Instant::now();
    let out = command.output().expect("cachehit runs");
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains("::warning"), "{stdout}");
    let outputs = std::fs::read_to_string(ws.join("output")).unwrap();
    assert!(outputs.contains("#issuecomment-"), "{outputs}");
    let report = std::fs::read_to_string(ws.join("cachehit-report.json")).unwrap();
    assert!(
        report.contains("artifact cachehit-report (id 77)"),
        "baseline found"
    );
    assert!(report.contains("linux/arm64"), "both platforms");
    let comments = setup.github.comments();
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.contains("steps cached"), "comment updated");
    elapsed
}

fn requests(setup: &Setup) -> usize {
    setup.github.requests().len()
        + setup.github.storage_requests().len()
        + setup.registry.requests().len()
}

/// Median, min, max of `runs` steps, and the requests one step makes.
fn measure(setup: &Setup, runs: usize) -> (Duration, Duration, Duration, usize) {
    let mut times = Vec::new();
    let mut per_run = 0;
    for _ in 0..runs {
        let before = requests(setup);
        times.push(step(setup));
        per_run = requests(setup) - before;
    }
    times.sort();
    (
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        per_run,
    )
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    // `cargo test` runs this unoptimized too: one run each, and say so.
    let (runs, build) = if cfg!(debug_assertions) {
        (
            1,
            " [unoptimized build; measure with `cargo bench --bench action_step`]",
        )
    } else {
        (7, "")
    };
    let setup = setup();
    let (fast, _, _, _) = measure(&setup, runs);
    setup.github.set_latency(LATENCY);
    setup.registry.set_latency(LATENCY);
    let (median, min, max, requests) = measure(&setup, runs);
    let sequential = LATENCY * requests as u32;
    println!(
        "action step, {} ms per request: median {}, min {}, max {} ({runs} runs; {requests} requests, \
         {} one after another; {} without latency); target <= {}: {}{build}",
        LATENCY.as_millis(),
        ms(median),
        ms(min),
        ms(max),
        ms(sequential),
        ms(fast),
        ms(TARGET),
        if median <= TARGET { "met" } else { "missed" },
    );
}
