//! Records of today's buildx (v0.36.1, BuildKit v0.32.2): `COPY --link`, a two-target bake,
//! a failed build, and the damage a real stream can carry (a stray line, two builds in one).

use std::path::{Path, PathBuf};

use cachehit::model::{Build, StepKind, StepStatus};
use cachehit::readers::{ReadError, ReadOptions, read_inputs};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/buildx-v0.36")
        .join(rel)
}

fn read_with(paths: &[PathBuf], target: Option<&str>) -> Result<Build, ReadError> {
    read_inputs(
        paths,
        &ReadOptions {
            bake_target: target.map(str::to_string),
            ..ReadOptions::default()
        },
    )
}

fn read(rel: &str) -> Build {
    read_with(&[fixture(rel)], None).unwrap_or_else(|e| panic!("{e}"))
}

fn read_target(rel: &str, target: &str) -> Build {
    read_with(&[fixture(rel)], Some(target)).unwrap_or_else(|e| panic!("{e}"))
}

/// The bake's shared dependency install, `[base 4/5]`.
const INSTALL: &str = "[base 4/5] RUN echo \"installing shared dependencies\" && mkdir -p /opt/shared && dd if=/dev/urandom of=/opt/shared/libs.bin bs=1M count=3 2>/dev/null";

/// `(name, status)` of every step but `FROM`.
fn statuses(build: &Build) -> Vec<(String, StepStatus)> {
    build
        .steps
        .iter()
        .filter(|s| s.status != StepStatus::Base)
        .map(|s| (s.name.clone(), s.status))
        .collect()
}

fn ratio(build: &Build) -> Option<f64> {
    cachehit::analysis::analyze(build.clone())
        .summary
        .cache_hit_ratio
}

/// A temporary file holding `text`.
fn temp_file(text: &[u8]) -> tempfile::NamedTempFile {
    use std::io::Write;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text).unwrap();
    file
}

#[test]
fn copy_link_is_one_step_in_every_record_of_the_build() {
    let rawjson = read("d1-copy-link/v2.rawjson");
    let expected = statuses(&rawjson);
    assert_eq!(expected.len(), 7, "{expected:?}");
    assert!(expected.iter().all(|(name, _)| !name.contains("LINK COPY")));
    let cached = expected
        .iter()
        .filter(|(_, s)| *s == StepStatus::Cached)
        .count();
    assert_eq!(cached, 5);
    let link = rawjson
        .steps
        .iter()
        .find(|s| s.name == "[stage-0 4/8] COPY --link Cargo.toml Cargo.lock /work/")
        .unwrap();
    assert_eq!(link.status, StepStatus::Cached);
    assert_eq!(link.instruction, "COPY --link Cargo.toml Cargo.lock /work/");
    // The step's own vertex, not the merge onto the previous step.
    assert_eq!(
        link.vertex_digest.as_deref(),
        Some("sha256:32d6015ac5dbb2675748425cfb6d5e28983f76362c6fbcda8bec100a4cfca31f")
    );
    // The next step builds on the merge; it names the step, as it would any other input.
    let next = rawjson
        .steps
        .iter()
        .find(|s| s.name.starts_with("[stage-0 5/8]"))
        .unwrap();
    assert_eq!(next.inputs, [link.vertex_digest.clone().unwrap()]);
    for other in [
        "d1-copy-link/v2.history-logs.rawjson",
        "d1-copy-link/v2.dockerbuild",
        "d1-copy-link/v2.plain.log",
    ] {
        let build = read(other);
        assert_eq!(statuses(&build), expected, "{other}");
        assert_eq!(ratio(&build), ratio(&rawjson), "{other}");
    }
    assert_eq!(ratio(&rawjson), Some(5.0 / 7.0));
}

#[test]
fn a_bake_target_reports_its_own_steps_imports_and_ratio() {
    let api = read_target("d2-bake-two-targets/v2.rawjson", "api");
    assert_eq!(
        statuses(&api),
        [
            ("[base 2/5] WORKDIR /srv".to_string(), StepStatus::Cached),
            (
                "[base 3/5] COPY shared/requirements.lock ./".to_string(),
                StepStatus::Cached
            ),
            (INSTALL.to_string(), StepStatus::Cached),
            (
                "[base 5/5] COPY shared/ ./shared/".to_string(),
                StepStatus::Rebuilt
            ),
            (
                "[api 1/2] COPY api/ ./api/".to_string(),
                StepStatus::Rebuilt
            ),
            (
                "[api 2/2] RUN cat shared/common.sh api/routes.txt > /srv/api.bundle".to_string(),
                StepStatus::Rebuilt
            ),
        ]
    );
    assert_eq!(ratio(&api), Some(0.5));
    let imports: Vec<&str> = api
        .cache_imports
        .iter()
        .map(|i| i.reference.as_str())
        .collect();
    assert_eq!(
        imports,
        ["127.0.0.1:5066/d2-bake-two-targets/api:buildcache"]
    );
    assert_eq!(api.exports.len(), 1);
    assert_eq!(api.cache_exports.len(), 1);
    assert!(api.problems.is_empty(), "{:?}", api.problems);

    // With the bake's metadata file, the same target's image joins the report.
    let with_metadata = read_with(
        &[
            fixture("d2-bake-two-targets/v2.rawjson"),
            fixture("d2-bake-two-targets/v2.metadata.json"),
        ],
        Some("api"),
    )
    .unwrap();
    assert_eq!(statuses(&with_metadata), statuses(&api));
    assert!(
        with_metadata
            .build
            .image_names
            .iter()
            .all(|n| n.contains("/api:")),
        "{:?}",
        with_metadata.build.image_names
    );
}

#[test]
fn a_step_run_by_another_target_is_shared_not_a_cache_hit() {
    // v1: no cache yet; the api target ran the base steps 3-5, the worker's own vertices of
    // them say cached.
    let worker = read_target("d2-bake-two-targets/v1.rawjson", "worker");
    let shared: Vec<(&str, Option<&str>)> = worker
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Shared)
        .map(|s| (s.name.as_str(), s.built_by.as_deref()))
        .collect();
    assert_eq!(
        shared,
        [
            ("[base 3/5] COPY shared/requirements.lock ./", Some("api")),
            (INSTALL, Some("api")),
            ("[base 5/5] COPY shared/ ./shared/", Some("api")),
        ]
    );
    assert!(worker.steps.iter().all(|s| s.status != StepStatus::Cached));
    assert_eq!(ratio(&worker), Some(0.0));
    // The api target built them: rebuilt there.
    let api = read_target("d2-bake-two-targets/v1.rawjson", "api");
    assert!(
        api.steps
            .iter()
            .all(|s| matches!(s.status, StepStatus::Rebuilt | StepStatus::Base)),
        "{:?}",
        statuses(&api)
    );

    // v2: base 2-4 come from the registry cache in both; `COPY shared/` was the api's run.
    let worker = read_target("d2-bake-two-targets/v2.rawjson", "worker");
    let by_name = |name: &str| {
        worker
            .steps
            .iter()
            .find(|s| s.name.starts_with(name))
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert_eq!(by_name("[base 2/5]").status, StepStatus::Cached);
    assert_eq!(by_name("[base 4/5]").status, StepStatus::Cached);
    assert_eq!(by_name("[base 5/5]").status, StepStatus::Shared);
    assert_eq!(by_name("[base 5/5]").built_by.as_deref(), Some("api"));
    // 3 cached of the 5 that ran or came from the cache; the shared step is in neither.
    assert_eq!(ratio(&worker), Some(0.6));
}

#[test]
fn the_record_of_one_target_shows_the_shared_steps_too() {
    // The worker's own record names no target: the other run of the same step is still there.
    for record in [
        "d2-bake-two-targets/v1.worker.dockerbuild",
        "d2-bake-two-targets/v1.worker.plain.log",
    ] {
        let build = read(record);
        let shared: Vec<&str> = build
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Shared)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(shared.len(), 3, "{record}: {:?}", statuses(&build));
        assert!(shared.iter().all(|n| n.starts_with("[base ")), "{shared:?}");
        assert!(
            build
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::Shared)
                .all(|s| s.built_by.is_none() && s.status_inferred),
            "{record}"
        );
        // One step per Dockerfile step: the other target's vertex is not a step of its own.
        assert_eq!(statuses(&build).len(), 6, "{record}");
    }
}

#[test]
fn a_bake_stream_needs_a_target_when_it_holds_several() {
    let err = read_with(&[fixture("d2-bake-two-targets/v2.rawjson")], None).unwrap_err();
    assert!(matches!(err, ReadError::Malformed { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.ends_with(
            "it holds the progress of 2 bake targets (worker, api): choose one with --target"
        ),
        "{text}"
    );
    let err = read_with(&[fixture("d2-bake-two-targets/v2.rawjson")], Some("web")).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("bake target `web` is not in it (targets: worker, api)"),
        "{err}"
    );
    // A target named for a stream that is not a bake changes nothing (it is for metadata).
    let plain = read_with(&[fixture("p2-deps-first/v2.rawjson")], Some("api")).unwrap();
    assert_eq!(
        statuses(&plain),
        statuses(&read("p2-deps-first/v2.rawjson"))
    );
}

#[test]
fn the_failed_step_gets_its_line_from_the_bundle_error_details() {
    let bundle = read("p6-failed-build/v2.dockerbuild");
    let failed = bundle
        .steps
        .iter()
        .find(|s| s.status == StepStatus::Failed)
        .unwrap();
    assert!(failed.name.starts_with("[6/7] RUN sh -c 'test -f broken"));
    assert_eq!(failed.dockerfile_line, Some(6));
    assert_eq!(failed.log_tail, ["compile error: broken build"]);
    // The same as the live stream's client error text says.
    let rawjson = read("p6-failed-build/v2.rawjson");
    assert_eq!(statuses(&rawjson), statuses(&bundle));
    let live = rawjson
        .steps
        .iter()
        .find(|s| s.status == StepStatus::Failed)
        .unwrap();
    assert_eq!(live.dockerfile_line, Some(6));
}

/// p6 v2's stream with `line` inserted before buildx's error text.
fn p6_with(line: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(fixture("p6-failed-build/v2.rawjson")).unwrap();
    let (stream, trailer) = text.split_at(text.find("Dockerfile:6").unwrap());
    format!("{stream}{line}\n{trailer}").into_bytes()
}

#[test]
fn a_step_that_says_cached_after_the_failure_is_not_counted_cached() {
    // BuildKit prints steps it skipped after a failure as CACHED (moby/buildkit#5644).
    let skipped = r#"{"vertexes":[{"digest":"sha256:a0006628c75dde3eaba9b385e9247dfce64628d16e3eccb1ab968c52bb38c1a4","inputs":["sha256:b68feab72be060b430c6dcce23c91ccc342be1019fbe261ca0d43a206e3743a6"],"name":"[7/7] RUN echo \"post-step\" \u003e /app/post.txt","cached":true,"started":"2026-11-29T13:05:09.6Z","completed":"2026-11-29T13:05:09.6Z"}]}"#;
    let file = temp_file(&p6_with(skipped));
    let build = read_with(&[file.path().to_path_buf()], None).unwrap();
    let last = build.steps.last().unwrap();
    assert!(last.name.starts_with("[7/7]"));
    assert_eq!(last.status, StepStatus::NotRun);
    assert!(last.status_inferred);
    assert_eq!(ratio(&build), ratio(&read("p6-failed-build/v2.rawjson")));

    // The same flag before the failure is a cache hit.
    let before = skipped.replace("13:05:09.6Z", "13:05:00Z");
    let file = temp_file(&p6_with(&before));
    let build = read_with(&[file.path().to_path_buf()], None).unwrap();
    assert_eq!(build.steps.last().unwrap().status, StepStatus::Cached);
}

#[test]
fn a_stray_line_in_a_real_stream_is_skipped_and_named() {
    let text = std::fs::read_to_string(fixture("p2-deps-first/v2.rawjson")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(
        20,
        "http2: server connection error from localhost: connection error: PROTOCOL_ERROR",
    );
    let file = temp_file(lines.join("\n").as_bytes());
    let build = read_with(&[file.path().to_path_buf()], None).unwrap();
    let original = read("p2-deps-first/v2.rawjson");
    assert_eq!(build.steps, original.steps);
    let messages: Vec<&str> = build.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "line 21 is not JSON and was skipped: `http2: server connection error from localhost: connection error: PROTOCOL_ERROR`"
        ]
    );
}

#[test]
fn two_builds_in_one_stream_are_refused_not_merged() {
    let a = std::fs::read_to_string(fixture("p2-deps-first/v2.rawjson")).unwrap();
    let b = std::fs::read_to_string(fixture("p6-failed-build/v2.rawjson")).unwrap();
    let b: Vec<&str> = b.lines().filter(|l| l.starts_with('{')).collect();
    // Interleaved line by line, as two builds writing to one file do.
    let mut mixed = Vec::new();
    for i in 0..a.lines().count().max(b.len()) {
        mixed.extend(a.lines().nth(i));
        mixed.extend(b.get(i).copied());
    }
    let concatenated = format!("{a}{}\n", b.join("\n"));
    for text in [mixed.join("\n"), concatenated] {
        let file = temp_file(text.as_bytes());
        let err = read_with(&[file.path().to_path_buf()], None).unwrap_err();
        assert!(
            err.to_string().contains("it holds 2 builds interleaved"),
            "{err}"
        );
    }
}

#[test]
fn provenance_alone_lists_the_dockerfile_steps_with_lines_and_layers_but_no_outcome() {
    let alone = read("d3-build-arg/v2.image/attestation-714c275a6b06.json");
    let bundle = read("d3-build-arg/v2.dockerbuild");
    let dockerfile = std::fs::read_to_string(fixture("d3-build-arg/Dockerfile")).unwrap();
    let dockerfile: Vec<&str> = dockerfile.lines().collect();

    // Every step of the build, as its own record (the bundle) lists it, in Dockerfile order.
    let digests = |build: &Build| -> Vec<Option<String>> {
        build
            .steps
            .iter()
            .map(|s| s.vertex_digest.clone())
            .collect()
    };
    assert_eq!(digests(&alone), digests(&bundle));
    let lines: Vec<u32> = alone
        .steps
        .iter()
        .map(|s| s.dockerfile_line.unwrap())
        .collect();
    assert!(lines.windows(2).all(|w| w[0] < w[1]), "{lines:?}");
    for (step, theirs) in alone.steps.iter().zip(&bundle.steps) {
        assert_eq!(
            step.dockerfile_line, theirs.dockerfile_line,
            "{}",
            step.name
        );
        assert_eq!(step.layer_bytes, theirs.layer_bytes, "{}", step.name);
        assert_eq!(step.kind, theirs.kind, "{}", step.name);
        assert_eq!(step.platform, theirs.platform, "{}", step.name);
        // Named as the Dockerfile writes it (BuildKit adds the `[n/m]` label).
        let line = dockerfile[step.dockerfile_line.unwrap() as usize - 1];
        assert_eq!(
            step.instruction.split_whitespace().next(),
            line.split_whitespace().next(),
            "{}",
            step.name
        );
        // BuildKit expands build arguments and the base image's reference in its names.
        if step.kind != StepKind::From && !step.instruction.contains('$') {
            assert_eq!(step.instruction, theirs.instruction);
        }
        // Whether it was cached is not the provenance's to say.
        let expected = if step.kind == StepKind::From {
            StepStatus::Base
        } else {
            StepStatus::Unknown
        };
        assert_eq!(step.status, expected, "{}", step.name);
    }
    assert!(
        alone
            .steps
            .iter()
            .any(|s| s.layer_bytes.is_some_and(|b| b > 1_000_000))
    );

    let report = cachehit::analysis::analyze(alone);
    assert_eq!(report.summary.cache_hit_ratio, None);
    assert_eq!(report.summary.steps_cached, 0);
    let line = cachehit::render::summary_line(&report);
    assert!(line.starts_with("7 step(s) from the provenance"), "{line}");
    assert!(
        report
            .build
            .problems
            .iter()
            .any(|p| p.kind == cachehit::model::ProblemKind::NoProgress),
        "the report says where its steps come from"
    );
}

#[test]
fn with_a_progress_log_provenance_adds_lines_not_steps() {
    let both = read_with(
        &[
            fixture("d3-build-arg/v2.history-logs.rawjson"),
            fixture("d3-build-arg/v2.image/attestation-714c275a6b06.json"),
        ],
        None,
    )
    .unwrap();
    assert!(!both.steps.is_empty());
    assert!(both.steps.iter().all(|s| s.status != StepStatus::Unknown));
    assert!(
        both.steps.iter().all(|s| s.name.starts_with('[')),
        "BuildKit's names"
    );
}
