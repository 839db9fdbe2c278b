//! The progress-stream readers on their own: rawjson in every framing BuildKit clients use,
//! damaged streams, and plain logs of the Docker Engine 20.10 client.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use cachehit::model::{Build, BuildStatus, StepKind, StepStatus};
use cachehit::readers::ReadError;
use cachehit::readers::plain::read_plain;
use cachehit::readers::rawjson::read_rawjson;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn fixture_bytes(rel: &str) -> Vec<u8> {
    std::fs::read(fixture(rel)).expect("fixture present")
}

fn rawjson(bytes: &[u8]) -> Result<Build, ReadError> {
    read_rawjson(Cursor::new(bytes), "build.rawjson")
}

fn step<'a>(build: &'a Build, name_start: &str) -> &'a cachehit::model::Step {
    build
        .steps
        .iter()
        .find(|s| s.name.starts_with(name_start))
        .unwrap_or_else(|| panic!("no step starting with {name_start:?} in {:?}", names(build)))
}

fn names(build: &Build) -> Vec<&str> {
    build.steps.iter().map(|s| s.name.as_str()).collect()
}

fn verdicts(build: &Build) -> Vec<(String, StepStatus)> {
    build
        .steps
        .iter()
        .map(|s| (s.name.clone(), s.status))
        .collect()
}

#[test]
fn pretty_printed_stream_reads_like_json_lines() {
    let lines = fixture_bytes("buildkit-v0.24/p2-deps-first/v2.rawjson");
    let text = String::from_utf8(lines.clone()).unwrap();
    // Older buildx printed each object indented over many lines.
    let mut pretty = String::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        pretty.push_str(&serde_json::to_string_pretty(&value).unwrap());
        pretty.push('\n');
    }
    let from_lines = rawjson(&lines).unwrap();
    let from_pretty = rawjson(pretty.as_bytes()).unwrap();
    assert!(!from_lines.steps.is_empty());
    assert_eq!(verdicts(&from_lines), verdicts(&from_pretty));
    assert_eq!(
        step(&from_pretty, "[4/6] RUN").status,
        StepStatus::Cached,
        "the dependency install is a remote-cache hit"
    );
    assert_eq!(
        step(&from_pretty, "[5/6] COPY . .").status,
        StepStatus::Rebuilt
    );
}

#[test]
fn aggregated_solvestatus_object_is_read() {
    let build = rawjson(&fixture_bytes(
        "public-samples/buildkit-rawjson/solvestatus.v0.moby-buildkit-LWDOW6.json",
    ))
    .unwrap();
    assert!(
        !build.steps.is_empty(),
        "steps from the single aggregated object"
    );
    assert!(build.problems.is_empty(), "{:?}", build.problems);
}

#[test]
fn trailing_client_error_names_the_failed_step_line() {
    let build = rawjson(&fixture_bytes("buildkit-v0.24/p6-failed-build/v2.rawjson")).unwrap();
    assert_eq!(build.build.status, BuildStatus::Failed);
    let failed = step(&build, "[6/7]");
    assert_eq!(failed.status, StepStatus::Failed);
    assert!(failed.dockerfile_line.is_some(), "{failed:?}");
    assert!(
        !failed.log_tail.is_empty(),
        "the failing command's output is kept"
    );
    assert!(failed.log_tail.len() <= 20);
    assert!(
        build.build.error.as_deref().unwrap_or("").contains("[6/7]") || build.build.error.is_some()
    );
    // BuildKit never announces the step after the failure: it is absent, not invented.
    assert!(
        build
            .steps
            .iter()
            .all(|s| !s.name.starts_with("[7/7]") || s.status == StepStatus::NotRun)
    );
}

#[test]
fn truncated_mid_object_keeps_what_was_read_and_says_where() {
    let whole = fixture_bytes("buildkit-v0.24/p2-deps-first/v2.rawjson");
    let cut = whole.len() * 2 / 3;
    let build = rawjson(&whole[..cut]).expect("a partial build, not an error");
    assert!(!build.steps.is_empty());
    assert_eq!(build.problems.len(), 1, "{:?}", build.problems);
    let message = &build.problems[0].message;
    assert!(
        message.contains("line") || message.contains("byte") || message.contains("offset"),
        "problem says where: {message}"
    );
}

#[test]
fn empty_and_garbage_inputs_are_clear_errors() {
    let empty = rawjson(b"").unwrap_err();
    assert!(matches!(empty, ReadError::Empty { .. }), "{empty}");
    assert!(empty.to_string().starts_with("build.rawjson: "));

    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    match rawjson(&garbage) {
        Err(error) => assert!(error.to_string().starts_with("build.rawjson: "), "{error}"),
        Ok(build) => {
            assert!(build.steps.is_empty());
            assert!(!build.problems.is_empty(), "garbage is reported");
        }
    }
}

#[test]
fn unknown_fields_and_zero_steps_are_fine() {
    let stream = br#"{"vertexes":[{"digest":"sha256:aa","name":"[internal] load build definition from Dockerfile","started":"2024-01-01T00:00:00Z","completed":"2024-01-01T00:00:01Z","future":{"x":1}}],"newTopLevel":[1,2]}
"#;
    let build = rawjson(stream).unwrap();
    assert!(build.steps.is_empty());
    assert!(build.problems.is_empty(), "{:?}", build.problems);
}

#[test]
fn engine_20_10_multistage_failure() {
    let log = fixture_bytes("engine-20.10/multistage-failure/v2.plain.log");
    let build = read_plain(Cursor::new(log), "v2.plain.log").unwrap();
    assert_eq!(build.build.status, BuildStatus::Failed);

    let install = step(&build, "[builder 4/4] RUN");
    assert_eq!(install.stage.as_deref(), Some("builder"));
    assert_eq!(install.index, Some(4));
    assert_eq!(install.kind, StepKind::Run);
    assert_eq!(install.status, StepStatus::Cached);
    assert!(!install.status_inferred, "the log says CACHED");
    assert_eq!(
        install.vertex_digest.as_deref(),
        Some("sha256:5adcb2013e6507ff1fe3f3ee31dbe06ec4b27f8c16b62a339d8620a71a06925a")
    );

    let check = step(&build, "[stage-1 3/4] RUN");
    assert_eq!(check.status, StepStatus::Failed);
    assert_eq!(check.stage.as_deref(), Some("stage-1"));
    assert!(
        check
            .error
            .as_deref()
            .unwrap_or("")
            .contains("exit code: 1")
    );
    assert_eq!(check.log_tail, vec!["checking".to_string()]);
    assert!(
        build
            .steps
            .iter()
            .all(|s| !s.name.contains("never reached"))
    );
}

#[test]
fn engine_20_10_first_build_runs_every_step() {
    let log = fixture_bytes("engine-20.10/multistage-failure/v1.plain.log");
    let build = read_plain(Cursor::new(log), "v1.plain.log").unwrap();
    assert_eq!(build.build.status, BuildStatus::Failed);
    // FROM of a local image is reported CACHED by the engine even on a cold build.
    for s in build.steps.iter().filter(|s| s.kind != StepKind::From) {
        assert_ne!(
            s.status,
            StepStatus::Cached,
            "{} cached on a cold build",
            s.name
        );
    }
}

#[test]
fn accumulated_build_snapshot() {
    let build = rawjson(&fixture_bytes("buildkit-v0.24/p2-deps-first/v2.rawjson")).unwrap();
    let summary: Vec<serde_json::Value> = build
        .steps
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "stage": s.stage,
                "platform": s.platform,
                "index": s.index,
                "kind": s.kind,
                "status": s.status,
                "status_inferred": s.status_inferred,
                "reads_context": s.reads_context,
                "remote_cache_bytes": s.remote_cache_bytes,
                "has_duration": s.duration_ms.is_some(),
            })
        })
        .collect();
    let imports: Vec<serde_json::Value> = build
        .cache_imports
        .iter()
        .map(|i| serde_json::to_value(i).unwrap())
        .map(|mut v| {
            v.as_object_mut().map(|o| o.remove("duration_ms"));
            v
        })
        .collect();
    let exports: Vec<serde_json::Value> = build
        .cache_exports
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .map(|mut v| {
            v.as_object_mut().map(|o| o.remove("duration_ms"));
            v
        })
        .collect();
    insta::assert_json_snapshot!(serde_json::json!({
        "status": build.build.status,
        "steps": summary,
        "cache_imports": imports,
        "cache_exports": exports,
    }));
}
