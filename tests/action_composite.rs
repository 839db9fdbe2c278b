//! The action as users run it: action.yml's composite steps, run as the runner runs them
//! (tests/harness/composite.rs), with nothing but the `metadata` input. The first step exports
//! the build record that the metadata names; the second runs the action image on it.
//!
//! buildx cannot run here, so `docker buildx history export` - the one command the action runs
//! to get the record - is a stand-in (tests/harness/docker-buildx-stand-in) that copies the real
//! bundle exported by buildx v0.36.1 from tests/fixtures/buildx-v0.36 (copied from the shared
//! fixtures, see tests/fixtures/README.md) and fails as buildx does for an unknown ref.
//! Everything else is real: the metadata, the steps, the action image, the report and the
//! GitHub REST calls (against tests/support/github_server.rs).

#[path = "harness/composite.rs"]
mod composite;
mod support;

use std::path::{Path, PathBuf};

use composite::{Job, run_action};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const P1: &str = "tests/fixtures/buildx-v0.36/p1-copy-before-deps";
const BAKE: &str = "tests/fixtures/buildx-v0.36/d2-bake-two-targets";

fn fixture(path: &str) -> PathBuf {
    Path::new(ROOT).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(fixture(path)).unwrap()
}

fn ref_of(path: &str) -> String {
    read(path).trim().to_string()
}

/// The stand-in, first on PATH as `docker`, serving the bundles in `records` (REF.dockerbuild).
struct StandIn {
    _bin: tempfile::TempDir,
    _records: tempfile::TempDir,
    calls: PathBuf,
}

impl StandIn {
    fn new(job: &mut Job, bundles: &[(&str, &str)], buildx: &str) -> StandIn {
        let bin = tempfile::tempdir().unwrap();
        std::fs::copy(
            fixture("tests/harness/docker-buildx-stand-in"),
            bin.path().join("docker"),
        )
        .unwrap();
        let records = tempfile::tempdir().unwrap();
        for (bundle, ref_file) in bundles {
            std::fs::copy(
                fixture(bundle),
                records
                    .path()
                    .join(format!("{}.dockerbuild", ref_of(ref_file))),
            )
            .unwrap();
        }
        let calls = bin.path().join("calls.log");
        job.path_prefix.push(bin.path().to_path_buf());
        job.set_env("STANDIN_RECORDS", records.path().display().to_string());
        job.set_env("STANDIN_CALLS", calls.display().to_string());
        job.set_env("STANDIN_BUILDX", buildx);
        job.set_env("STANDIN_REAL_DOCKER", support::DOCKER);
        StandIn {
            _bin: bin,
            _records: records,
            calls,
        }
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.calls)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn push_job() -> Job {
    Job::new("push", &serde_json::json!({"ref": "refs/heads/main"}))
}

fn export_only(job: &Job, with: &[(&str, &str)]) -> composite::ActionRun {
    run_action(Path::new(ROOT), with, job, Some(&["record"]))
}

fn exported(run: &composite::ActionRun) -> Vec<PathBuf> {
    run.step("record")
        .outputs
        .get("build-record")
        .map(|v| v.lines().map(PathBuf::from).collect())
        .unwrap_or_default()
}

#[test]
fn the_record_named_in_the_metadata_is_exported_on_the_runner() {
    let mut job = push_job();
    let stand_in = StandIn::new(
        &mut job,
        &[(
            "tests/fixtures/buildx-v0.36/p1-copy-before-deps/v2.dockerbuild",
            "tests/fixtures/buildx-v0.36/p1-copy-before-deps/v2.ref",
        )],
        "current",
    );
    let metadata = read(&format!("{P1}/v2.metadata.json"));
    let run = export_only(&job, &[("metadata", &metadata)]);
    let step = run.step("record");
    assert!(step.success, "{step:?}");
    assert!(run.warnings().is_empty(), "{:?}", run.warnings());

    // `buildx.build.ref` is latest/latest0/REF: the builder is asked for the record by its ref.
    let reference = ref_of(&format!("{P1}/v2.ref"));
    let files = exported(&run);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].starts_with(&job.temp),
        "{files:?} outside RUNNER_TEMP"
    );
    assert_eq!(
        files[0].file_name().unwrap().to_string_lossy(),
        format!("{reference}.dockerbuild")
    );
    assert_eq!(
        std::fs::read(&files[0]).unwrap(),
        std::fs::read(fixture(&format!("{P1}/v2.dockerbuild"))).unwrap()
    );
    assert_eq!(
        stand_in.calls(),
        [format!(
            "buildx history export --builder latest --finalize --output {} {reference}",
            files[0].display()
        )]
    );
    assert_eq!(
        step.outputs["records-dir"],
        files[0].parent().unwrap().display().to_string()
    );
}

#[test]
fn buildx_0_23_exports_without_finalize() {
    let mut job = push_job();
    let stand_in = StandIn::new(
        &mut job,
        &[(&format!("{P1}/v2.dockerbuild"), &format!("{P1}/v2.ref"))],
        "v0.23",
    );
    let run = export_only(
        &job,
        &[("metadata", &read(&format!("{P1}/v2.metadata.json")))],
    );
    assert!(run.warnings().is_empty(), "{:?}", run.warnings());
    let files = exported(&run);
    assert_eq!(files.len(), 1);
    assert!(files[0].is_file());
    let calls = stand_in.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[0].contains("--finalize") && !calls[1].contains("--finalize"));
}

#[test]
fn a_record_that_is_gone_is_a_warning_not_a_failure() {
    let mut job = push_job();
    let _stand_in = StandIn::new(&mut job, &[], "current");
    let run = export_only(
        &job,
        &[("metadata", &read(&format!("{P1}/v2.metadata.json")))],
    );
    let step = run.step("record");
    assert!(step.success, "{step:?}");
    assert!(exported(&run).is_empty());
    let reference = ref_of(&format!("{P1}/v2.ref"));
    let warnings = run.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    // The warning names the record and carries buildx's own words.
    assert!(warnings[0].starts_with("::warning title=cachehit::"));
    assert!(warnings[0].contains(&format!(
        "cannot export build record {reference} of builder latest"
    )));
    assert!(warnings[0].contains(&format!("no record found for ref \"{reference}\"")));
    // Nothing half-written is left for the report step to read.
    let dir = PathBuf::from(&step.outputs["records-dir"]);
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
}

#[test]
fn no_buildx_on_the_runner_is_a_warning() {
    let mut job = push_job();
    let _stand_in = StandIn::new(
        &mut job,
        &[(&format!("{P1}/v2.dockerbuild"), &format!("{P1}/v2.ref"))],
        "missing",
    );
    let run = export_only(
        &job,
        &[("metadata", &read(&format!("{P1}/v2.metadata.json")))],
    );
    assert!(run.step("record").success);
    assert!(exported(&run).is_empty());
    let warnings = run.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("'buildx' is not a docker command"),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("buildx >= 0.23"), "{warnings:?}");
}

#[test]
fn bake_metadata_exports_one_record_per_target() {
    let mut job = push_job();
    let stand_in = StandIn::new(
        &mut job,
        &[
            (
                &format!("{BAKE}/v2.api.dockerbuild"),
                &format!("{BAKE}/v2.api.ref"),
            ),
            (
                &format!("{BAKE}/v2.worker.dockerbuild"),
                &format!("{BAKE}/v2.worker.ref"),
            ),
        ],
        "current",
    );
    let run = export_only(
        &job,
        &[("metadata", &read(&format!("{BAKE}/v2.metadata.json")))],
    );
    assert!(run.warnings().is_empty(), "{:?}", run.warnings());
    let files = exported(&run);
    assert_eq!(files.len(), 2, "{files:?}");
    for target in ["api", "worker"] {
        let name = format!("{}.dockerbuild", ref_of(&format!("{BAKE}/v2.{target}.ref")));
        let file = files
            .iter()
            .find(|f| f.ends_with(&name))
            .unwrap_or_else(|| panic!("{target}: {name} not in {files:?}"));
        assert_eq!(
            std::fs::read(file).unwrap(),
            std::fs::read(fixture(&format!("{BAKE}/v2.{target}.dockerbuild"))).unwrap()
        );
    }
    assert_eq!(stand_in.calls().len(), 2);
}

#[test]
fn the_target_input_exports_that_target_s_record_alone() {
    let mut job = push_job();
    let stand_in = StandIn::new(
        &mut job,
        &[
            (
                &format!("{BAKE}/v2.api.dockerbuild"),
                &format!("{BAKE}/v2.api.ref"),
            ),
            (
                &format!("{BAKE}/v2.worker.dockerbuild"),
                &format!("{BAKE}/v2.worker.ref"),
            ),
        ],
        "current",
    );
    let metadata = read(&format!("{BAKE}/v2.metadata.json"));
    let run = export_only(&job, &[("metadata", &metadata), ("target", "worker")]);
    assert!(run.warnings().is_empty(), "{:?}", run.warnings());
    let files = exported(&run);
    let worker = ref_of(&format!("{BAKE}/v2.worker.ref"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].ends_with(format!("{worker}.dockerbuild")),
        "{files:?}"
    );
    let calls = stand_in.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].ends_with(&worker), "{calls:?}");

    // A target the metadata does not have: nothing exported, the report step names the
    // targets (tests/action_builds.rs).
    let run = export_only(&job, &[("metadata", &metadata), ("target", "web")]);
    assert!(run.step("record").success);
    assert!(exported(&run).is_empty());
    assert_eq!(stand_in.calls().len(), 1, "{:?}", stand_in.calls());
}

#[test]
fn an_explicit_build_record_or_log_is_used_as_given() {
    let mut job = push_job();
    let stand_in = StandIn::new(
        &mut job,
        &[(&format!("{P1}/v2.dockerbuild"), &format!("{P1}/v2.ref"))],
        "current",
    );
    let metadata = read(&format!("{P1}/v2.metadata.json"));
    let run = export_only(
        &job,
        &[
            ("metadata", &metadata),
            ("build-record", "records/build.dockerbuild"),
        ],
    );
    assert_eq!(
        run.step("record")
            .outputs
            .get("build-record")
            .map(String::as_str),
        Some("records/build.dockerbuild")
    );
    let run = export_only(
        &job,
        &[("metadata", &metadata), ("build-log", "build.rawjson")],
    );
    assert!(exported(&run).is_empty());
    assert!(run.warnings().is_empty());
    assert!(stand_in.calls().is_empty(), "{:?}", stand_in.calls());
}

#[test]
fn metadata_without_a_build_ref_is_a_warning() {
    let mut job = push_job();
    let stand_in = StandIn::new(&mut job, &[], "current");
    // A build argument whose value looks like the key is inside a JSON string: not a ref.
    let metadata = serde_json::json!({
        "containerimage.digest": "sha256:0dbb20be82124df3098ea31ccf27109e61457dd7c1a74f1f9dd31e0f588287f3",
        "buildx.build.provenance": {"invocation": {"parameters": {"args": {
            "build-arg:NOTE": "\"buildx.build.ref\": \"evil/node/ref\""
        }}}}
    })
    .to_string();
    let run = export_only(&job, &[("metadata", &metadata)]);
    assert!(run.step("record").success);
    assert!(stand_in.calls().is_empty(), "{:?}", stand_in.calls());
    let warnings = run.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("names no build record"),
        "{warnings:?}"
    );
}

const TOKEN: &str = "ghs_compositeTestToken42";
const PR: u64 = 12;

fn pull_request_event() -> serde_json::Value {
    let mut event: serde_json::Value = serde_json::from_str(&read(
        "tests/fixtures/public-samples/github-event-payloads/pull_request.synchronize.GITHUB_EVENT_PATH.buildx-ghactx_pr_event.json",
    ))
    .unwrap();
    event["number"] = PR.into();
    event["pull_request"]["number"] = PR.into();
    event
}

/// The drop-in step of the README: build-push-action's `metadata` output and nothing else (the
/// token is the default `github.token`), on a pull request.
#[test]
fn zero_wiring_reports_and_comments_from_the_metadata_alone() {
    if !support::engine_available("zero_wiring_reports_and_comments_from_the_metadata_alone") {
        return;
    }
    let image = composite::action_image();
    let server = support::github_server::GitHubServer::start(TOKEN);
    let mut job = Job::new("pull_request", &pull_request_event());
    job.github.insert("token".into(), TOKEN.into());
    job.set_env("GITHUB_API_URL", server.api_url.clone());
    job.set_env("CACHEHIT_ACTION_IMAGE", image);
    std::fs::copy(
        fixture(&format!("{P1}/Dockerfile")),
        job.workspace.join("Dockerfile"),
    )
    .unwrap();
    let stand_in = StandIn::new(
        &mut job,
        &[(&format!("{P1}/v2.dockerbuild"), &format!("{P1}/v2.ref"))],
        "current",
    );

    let metadata = read(&format!("{P1}/v2.metadata.json"));
    let run = run_action(
        Path::new(ROOT),
        &[("metadata", &metadata), ("baseline", "none")],
        &job,
        None,
    );
    let log = run.log();
    assert!(run.success, "{log}");
    assert_eq!(stand_in.calls().len(), 1);

    // Per-step statuses come from the exported record: the metadata alone has none.
    assert_eq!(run.outputs["steps-total"], "4", "{log}");
    assert_eq!(run.outputs["steps-cached"], "1", "{log}");
    assert_eq!(run.outputs["cache-hit-ratio"], "0.2500");
    assert!(
        run.outputs["rebuilt-steps"].contains("COPY . ."),
        "{:?}",
        run.outputs
    );
    assert_eq!(run.outputs["report-path"], "cachehit-report.json");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(job.workspace.join("cachehit-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["summary"]["steps_cached"], 1);

    let comments = server.comments();
    assert_eq!(comments.len(), 1, "{log}");
    assert!(
        comments[0].body.contains("1/4 steps cached (25%)"),
        "{}",
        comments[0].body
    );
    assert!(run.outputs["comment-url"].ends_with(&format!("#issuecomment-{}", comments[0].id)));
    assert!(run.summary.contains("### cachehit"), "{}", run.summary);
    let unmasked = log
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .any(|l| l.contains(TOKEN));
    assert!(!unmasked, "token leaked");
    // The exported record is removed after the report.
    let left: Vec<_> = std::fs::read_dir(&job.temp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("cachehit"))
        .collect();
    assert!(left.is_empty(), "left in RUNNER_TEMP: {left:?}");
}

/// A record that cannot be exported does not cost the report: it comes out of what exists.
#[test]
fn zero_wiring_without_the_record_still_reports() {
    if !support::engine_available("zero_wiring_without_the_record_still_reports") {
        return;
    }
    let image = composite::action_image();
    let mut job = push_job();
    job.set_env("CACHEHIT_ACTION_IMAGE", image);
    let _stand_in = StandIn::new(&mut job, &[], "current");
    let metadata = read(&format!("{P1}/v2.metadata.json"));
    let run = run_action(
        Path::new(ROOT),
        &[("metadata", &metadata), ("baseline", "none")],
        &job,
        None,
    );
    let log = run.log();
    assert!(run.success, "{log}");
    let warnings = run.warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("cannot export build record")),
        "{warnings:?}"
    );
    assert_eq!(run.outputs["report-path"], "cachehit-report.json");
    assert!(job.workspace.join("cachehit-report.json").is_file());
    assert!(run.summary.contains("### cachehit"), "{}", run.summary);
}
